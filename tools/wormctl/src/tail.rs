//! `wormctl tail DIR [-n N] [-f]`: the last N records; with -f, new records
//! as they commit, until interrupted. Following keeps the log open
//! read-only and refreshes it every poll, so it never holds the writer's
//! lock and sees only what was committed.

use crate::fail::Fail;
use crate::out::{self, Out};
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

/// Prints the last `a.lines` records that `a` shows. Engine records may be
/// skipped, so a window of n seqs need not hold n shown records: windows
/// widen (counting, holding nothing) until one does, then it is printed,
/// so memory stays flat whatever N is.
fn print_last(out: &mut Out, log: &Log, a: &Args) -> Result<(), Fail> {
    let head = log.head().seq;
    let first = log.segments()?.first().map_or(1, |s| s.first_seq);
    let want = a.lines as u64;
    let shown = |r: &Record| a.system || !r.is_system();
    let mut window = want.saturating_mul(2).max(16);
    let (start, count) = loop {
        let start = head.saturating_sub(window - 1).max(first);
        let mut count = 0u64;
        for r in log.read(start..=head)? {
            count += u64::from(shown(&r?));
        }
        if count >= want || start == first {
            break (start, count);
        }
        window = window.saturating_mul(4);
    };
    let mut skip = count.saturating_sub(want);
    for r in log.read(start..=head)? {
        let r = r?;
        if !shown(&r) {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        print(out, a, &r)?;
    }
    Ok(())
}

fn print(out: &mut Out, a: &Args, r: &Record) -> Result<(), Fail> {
    if !a.system && r.is_system() {
        return Ok(());
    }
    if a.json {
        out.record_json(r, false)
    } else {
        out.table_row(r, false)
    }
}

/// Consecutive failed refreshes before following gives up.
const FAILURES_MAX: u32 = 20;

pub fn run(a: Args) -> Result<(), Fail> {
    let log = crate::open::read_only(&a.dir)?;
    let mut out = Out::new();
    print_last(&mut out, &log, &a)?;
    out.flush()?;
    if !a.follow {
        return Ok(());
    }
    let mut next = log.head().seq + 1;
    let mut failures = 0;
    loop {
        std::thread::sleep(a.interval);
        // A refresh reads only what was committed since the last one (and
        // opens the log anew after a roll), so following costs what the
        // writer writes.
        match log.refresh() {
            Ok(false) => continue,
            Ok(true) => failures = 0,
            // Retention may delete a segment while a refresh after a roll
            // opens the log anew; the next poll sees the directory as it is
            // then. An error that persists (the directory is gone) ends the
            // command, as does damage or a log that no longer continues what
            // was printed.
            Err(e @ (wormlog::Error::NotFound { .. } | wormlog::Error::Io { .. })) => {
                failures += 1;
                if failures >= FAILURES_MAX {
                    return Err(Fail::log(e));
                }
                continue;
            }
            Err(e) => return Err(Fail::log(e)),
        }
        for r in log.read(next..)? {
            let r = r?;
            next = r.seq() + 1;
            print(&mut out, &a, &r)?;
        }
        out.flush()?;
    }
}
