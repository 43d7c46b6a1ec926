//! `wormctl tail DIR [-n N] [-f]`: the last N records; with -f, new records
//! as they commit, until interrupted. Following reopens the log read-only
//! every poll, so it never holds the writer's lock and sees only what was
//! committed.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::{Path, PathBuf};
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
        out.line(out::record_json(r, false))
    } else {
        out.line(out::table_row(r, false))
    }
}

/// Consecutive failed reopens before following gives up.
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
    let mut active = active_path(&log);
    // Taken before each open: a commit after it changes what the next poll
    // sees, so no record is skipped.
    let mut seen: Option<Footprint> = None;
    let mut failures = 0;
    drop(log);
    loop {
        std::thread::sleep(a.interval);
        // Opening runs a read-only recovery scan of the active segment: skip
        // it while nothing in the directory has changed.
        let now = active.as_ref().and_then(|p| Footprint::of(&a.dir, p));
        if now.is_some() && now == seen {
            continue;
        }
        let log = match Log::open_read_only(&a.dir, wormlog::Options::default()) {
            Ok(log) => log,
            // Retention may delete a segment between listing and opening it;
            // the next poll sees the directory as it is then. An error that
            // persists (the directory is gone) ends the command.
            Err(e @ (wormlog::Error::NotFound { .. } | wormlog::Error::Io { .. })) => {
                failures += 1;
                if failures >= FAILURES_MAX {
                    return Err(Fail::log(e));
                }
                continue;
            }
            Err(e) => return Err(Fail::log(e)),
        };
        failures = 0;
        for r in log.read(next..)? {
            let r = r?;
            next = r.seq() + 1;
            print(&mut out, &a, &r)?;
        }
        out.flush()?;
        let opened_active = active_path(&log);
        // A footprint of another active segment says nothing about this one.
        seen = if opened_active == active { now } else { None };
        active = opened_active;
    }
}

fn active_path(log: &Log) -> Option<PathBuf> {
    Some(log.segments().ok()?.into_iter().find(|s| s.active)?.path)
}

/// What changes when anything is committed: the active segment's length,
/// and the directory's entries (a roll, a seal, a retention run).
#[derive(PartialEq, Eq)]
struct Footprint {
    active_len: u64,
    entries: Vec<std::ffi::OsString>,
}

impl Footprint {
    fn of(dir: &Path, active: &Path) -> Option<Footprint> {
        Some(Footprint {
            active_len: std::fs::metadata(active).ok()?.len(),
            entries: entries(dir)?,
        })
    }
}

fn entries(dir: &Path) -> Option<Vec<std::ffi::OsString>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    v.sort();
    Some(v)
}
