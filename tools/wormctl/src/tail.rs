//! `wormctl tail DIR [-n N | --since TIME] [-f]`: the last N records (or
//! every record since TIME); with -f, new records
//! as they commit, until interrupted. Following keeps the log open
//! read-only and refreshes it every poll, so it never holds the writer's
//! lock and sees only what was committed. It ends (exit 2, saying which)
//! when the directory is removed or comes to hold another log.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wormlog::format::{hex, SegmentHeader, SEGMENT_HEADER_LEN};
use wormlog::{Log, Record};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// How many records to print first.
    #[arg(short = 'n', long = "lines", default_value_t = 10)]
    lines: usize,
    /// Print first every record committed at or after TIME instead of the
    /// last N (RFC 3339 with Z or an offset, a local time or date, today,
    /// yesterday, a time of day (06:40), @SECONDS or NSns since 1970, or a
    /// duration ago like 1h or -15m).
    #[arg(
        long,
        value_name = "TIME",
        value_parser = out::parse_time,
        allow_hyphen_values = true,
        conflicts_with = "lines"
    )]
    since: Option<u64>,
    /// Keep printing records as they are committed, until interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// How often to look for new records while following, e.g. 200ms or 2s.
    #[arg(long, default_value = "250ms", value_parser = out::parse_duration)]
    interval: Duration,
    #[command(flatten)]
    output: crate::dump::OutputArgs,
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
    use crate::dump::OutputMode;
    match a.output.mode() {
        OutputMode::Json => out.record_json(r, false),
        OutputMode::JsonPretty => out.record_json_pretty(r, false),
        OutputMode::Cat => out.payload_line(r),
        OutputMode::Short => out.table_row(r, false),
    }
}

/// Consecutive failed refreshes (or looks finding no segment file) before
/// following gives up.
const FAILURES_MAX: u32 = 20;

/// The log being followed, as its directory showed it at the start: a
/// refresh reads on through files it already holds open, so a directory
/// removed, or replaced by one holding another log, would otherwise go
/// unnoticed for as long as the command runs.
struct Followed {
    /// (device, inode) of the directory.
    dir: Option<(u64, u64)>,
    log_id: [u8; 16],
}

/// What the directory's newest segment header says now.
enum Found {
    Log([u8; 16]),
    /// No segment file at all.
    NoLog,
    /// Not now (a file went away between listing and reading it).
    Unknown,
    /// The directory itself went away.
    Gone,
}

#[cfg(unix)]
fn dir_identity(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn dir_identity(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The log id in the header of the newest raw segment in `dir`; the
/// active segment is the newest and always raw (format-spec.md §1).
fn newest_log_id(dir: &Path) -> Result<Found, Fail> {
    use std::io::Read;
    let io = |e| Fail::io(out::path_text(dir), e);
    let mut newest: Option<(u64, PathBuf)> = None;
    let mut any = false;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Gone),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Gone),
            Err(e) => return Err(io(e)),
        };
        // Opening a FIFO put in a segment's place would block the command.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // `seg-` and 20 digits, then `.wlog` or `.wlog.zst` (§1).
        let Some(number) = name.strip_prefix("seg-").and_then(|r| r.get(..20)) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match name.get(24..).unwrap_or_default() {
            ".wlog" if newest.as_ref().is_none_or(|(n, _)| number > *n) => {
                newest = Some((number, dir.join(name)));
            }
            ".wlog" | ".wlog.zst" => {}
            _ => continue,
        }
        any = true;
    }
    let Some((_, path)) = newest else {
        return Ok(if any { Found::Unknown } else { Found::NoLog });
    };
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let read = std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut header));
    Ok(
        match read.ok().and_then(|()| SegmentHeader::decode(&header).ok()) {
            Some(h) => Found::Log(h.log_id),
            None => Found::Unknown,
        },
    )
}

/// Ends following (exit 2, saying which) when the directory is gone or
/// holds another log than the one followed; counts a directory without
/// segment files in `empty`, ending when that persists.
fn check_followed(dir: &Path, f: &Followed, empty: &mut u32) -> Result<(), Fail> {
    let was = hex(f.log_id);
    let shown = out::path_text(dir);
    let removed = || {
        Err(Fail::usage(format!(
            "{shown}: the log directory was removed while log {was} was being followed"
        )))
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return removed(),
        Err(e) => return Err(Fail::io(shown, e)),
    };
    let replaced = dir_identity(&meta) != f.dir;
    let now = newest_log_id(dir)?;
    let how = if replaced {
        "the log directory was removed and made anew"
    } else {
        "the log directory"
    };
    match now {
        Found::Gone => removed(),
        Found::Log(id) if id != f.log_id => Err(Fail::usage(format!(
            "{shown}: {how} now holds another log, {}, not log {was} that was being followed",
            hex(id)
        ))),
        Found::Log(_) if replaced => Err(Fail::usage(format!(
            "{shown}: {how}, holding log {was} again (a copy?); run tail again to follow it there"
        ))),
        Found::NoLog if replaced => Err(Fail::usage(format!(
            "{shown}: {how} and holds no log; log {was} was being followed"
        ))),
        Found::NoLog => {
            *empty += 1;
            if *empty >= FAILURES_MAX {
                return Err(Fail::usage(format!(
                    "{shown}: the segment files of log {was} are gone from the directory"
                )));
            }
            Ok(())
        }
        Found::Log(_) | Found::Unknown => {
            *empty = 0;
            Ok(())
        }
    }
}

pub fn run(a: Args) -> Result<(), Fail> {
    // The directory's identity is taken before the log is read, so that a
    // directory replaced after the first lines are out is always told.
    let dir = std::fs::metadata(&a.dir)
        .map(|m| dir_identity(&m))
        .unwrap_or(None);
    let log = crate::open::read_only(&a.dir)?;
    let mut out = Out::new();
    match a.since {
        Some(since) => {
            if let Some(first) = log.first_at_or_after(since)? {
                for r in log.read(first.seq()..=log.head().seq)? {
                    print(&mut out, &a, &r?)?;
                }
            }
        }
        None => print_last(&mut out, &log, &a)?,
    }
    out.flush()?;
    if !a.follow {
        return Ok(());
    }
    let followed = Followed {
        dir,
        log_id: log.log_id(),
    };
    let mut next = log.head().seq + 1;
    let mut failures = 0;
    let mut empty = 0;
    loop {
        std::thread::sleep(a.interval);
        check_followed(&a.dir, &followed, &mut empty)?;
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
                    check_followed(&a.dir, &followed, &mut empty)?;
                    return Err(Fail::log(e));
                }
                continue;
            }
            Err(e) => {
                // The directory may have been replaced since the look above:
                // that, not the reader's view of it, is the news.
                check_followed(&a.dir, &followed, &mut empty)?;
                return Err(Fail::log(e));
            }
        }
        for r in log.read(next..)? {
            let r = r?;
            next = r.seq() + 1;
            print(&mut out, &a, &r)?;
        }
        out.flush()?;
    }
}
