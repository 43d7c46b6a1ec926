//! `wormctl tail DIR [-n N] [-f]`: the last N records; with -f, new records
//! as they commit, until interrupted. Following reopens the log read-only
//! every poll, so it never holds the writer's lock and sees only what was
//! committed.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;
use wormlog::{Log, Record};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// How many records to print first.
    #[arg(short = 'n', long = "lines", default_value_t = 10)]
    lines: usize,
    /// Keep printing records as they are committed, until interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// How often to look for new records while following, e.g. 200ms or 2s.
    #[arg(long, default_value = "250ms", value_parser = out::parse_duration)]
    interval: Duration,
    /// One JSON object per record.
    #[arg(long)]
    json: bool,
    /// Include the engine's own records.
    #[arg(long)]
    system: bool,
}

/// The last `n` records that `a` shows, found by reading backwards in
/// widening windows (engine records may be skipped, so a window of n seqs
/// need not hold n shown records).
fn last_records(log: &Log, a: &Args) -> Result<Vec<Record>, Fail> {
    let head = log.head().seq;
    let first = log.segments()?.first().map_or(1, |s| s.first_seq);
    let mut window = (a.lines as u64).saturating_mul(2).max(16);
    loop {
        let start = head.saturating_sub(window).max(first);
        let mut last: VecDeque<Record> = VecDeque::with_capacity(a.lines.min(1 << 16));
        for r in log.read(start..=head)? {
            let r = r?;
            if a.system || !r.is_system() {
                if last.len() == a.lines {
                    last.pop_front();
                }
                if a.lines > 0 {
                    last.push_back(r);
                }
            }
        }
        if last.len() == a.lines || start == first {
            return Ok(last.into());
        }
        window = window.saturating_mul(4);
    }
}

fn print(out: &mut Out, a: &Args, r: &Record) -> Result<(), Fail> {
    if !a.system && r.is_system() {
        return Ok(());
    }
    if a.json {
        out.json(&out::record_json(r, false))
    } else {
        out.line(out::table_row(r, false))
    }
}

pub fn run(a: Args) -> Result<(), Fail> {
    let log = crate::open::read_only(&a.dir)?;
    let mut out = Out::new();
    for r in last_records(&log, &a)? {
        print(&mut out, &a, &r)?;
    }
    out.flush()?;
    if !a.follow {
        return Ok(());
    }
    let mut next = log.head().seq + 1;
    drop(log);
    loop {
        std::thread::sleep(a.interval);
        let log = match Log::open_read_only(&a.dir, wormlog::Options::default()) {
            Ok(log) => log,
            // Retention may delete a segment between listing and opening it;
            // the next poll sees the directory as it is then.
            Err(wormlog::Error::NotFound { .. }) | Err(wormlog::Error::Io { .. }) => continue,
            Err(e) => return Err(Fail::log(e)),
        };
        for r in log.read(next..)? {
            let r = r?;
            next = r.seq() + 1;
            print(&mut out, &a, &r)?;
        }
        out.flush()?;
    }
}
