//! `wormctl dump PATH`: the records of a log directory, of one segment file
//! (raw or sealed), or of a raw segment on standard input (`-`), as a table
//! or JSON lines, filtered by seq and time.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::io::IsTerminal;
use std::path::PathBuf;
use wormlog::{Record, SegmentFile};

#[derive(clap::Args)]
pub struct Args {
    /// A log directory, a segment file (.wlog or .wlog.zst), or `-` for a
    /// raw segment on standard input (e.g. `zstd -dc seg.wlog.zst | wormctl dump -`).
    path: PathBuf,
    /// One JSON object per record.
    #[arg(long)]
    json: bool,
    /// Add frame locations (segment, offset, length, CRC) and chain hashes.
    #[arg(long)]
    raw: bool,
    /// First seq to print.
    #[arg(long, value_name = "SEQ")]
    from: Option<u64>,
    /// Last seq to print.
    #[arg(long, value_name = "SEQ")]
    to: Option<u64>,
    /// Records committed at or after TIME (RFC 3339, ns since 1970, or a duration ago like 1h).
    #[arg(long, value_name = "TIME", value_parser = out::parse_time)]
    since: Option<u64>,
    /// Records committed at or before TIME.
    #[arg(long, value_name = "TIME", value_parser = out::parse_time)]
    until: Option<u64>,
    /// Include the engine's own records (log opened, segment rolled, sealed, ...).
    #[arg(long)]
    system: bool,
}

/// What to print: seq and time bounds (inclusive), engine records or not.
struct Filter {
    from: u64,
    to: u64,
    since: u64,
    until: u64,
    system: bool,
}

enum Step {
    Skip,
    Print,
    /// Past the end: seqs and times only grow, so nothing later is wanted.
    Stop,
}

impl Filter {
    fn step(&self, r: &Record) -> Step {
        if r.seq() > self.to || r.timestamp() > self.until {
            Step::Stop
        } else if r.seq() < self.from
            || r.timestamp() < self.since
            || (r.is_system() && !self.system)
        {
            Step::Skip
        } else {
            Step::Print
        }
    }
}

/// Prints records as a table (with a header before the first) or JSON lines.
struct Printer {
    out: Out,
    json: bool,
    raw: bool,
    header_done: bool,
}

impl Printer {
    fn record(&mut self, r: &Record) -> Result<(), Fail> {
        if self.json {
            return self.out.record_json(r, self.raw);
        }
        if !self.header_done {
            self.header_done = true;
            self.out.line(out::table_header(self.raw))?;
        }
        self.out.table_row(r, self.raw)
    }
}

/// Prints what `filter` lets through, stopping past its end; a read error
/// becomes a failure through `to_fail` (the records before it are printed).
fn print_all(
    records: impl Iterator<Item = wormlog::Result<Record>>,
    filter: &Filter,
    printer: &mut Printer,
    to_fail: fn(wormlog::Error) -> Fail,
) -> Result<(), Fail> {
    for r in records {
        let r = r.map_err(to_fail)?;
        match filter.step(&r) {
            Step::Stop => break,
            Step::Skip => {}
            Step::Print => printer.record(&r)?,
        }
    }
    Ok(())
}

pub fn run(a: Args) -> Result<(), Fail> {
    let filter = Filter {
        from: a.from.unwrap_or(0),
        to: a.to.unwrap_or(u64::MAX),
        since: a.since.unwrap_or(0),
        until: a.until.unwrap_or(u64::MAX),
        system: a.system,
    };
    let mut printer = Printer {
        out: Out::new(),
        json: a.json,
        raw: a.raw,
        header_done: false,
    };
    if a.path.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            return Err(Fail::usage(
                "dump -: standard input is a terminal; pipe a raw segment in \
                 (zstd -dc seg-....wlog.zst | wormctl dump -)",
            ));
        }
        let file = SegmentFile::from_reader("<stdin>", std::io::stdin()).map_err(Fail::file)?;
        return print_all(file, &filter, &mut printer, Fail::file);
    }
    let meta = std::fs::metadata(&a.path).map_err(|e| Fail::io(a.path.display(), e))?;
    if !meta.is_dir() {
        let file = SegmentFile::open(&a.path).map_err(Fail::file)?;
        return print_all(file, &filter, &mut printer, Fail::file);
    }
    let log = crate::open::read_only(&a.path)?;
    // Start at the first record the bounds allow, found through the index.
    let mut start = filter.from;
    if filter.since > 0 {
        match log.first_at_or_after(filter.since)? {
            Some(r) => start = start.max(r.seq()),
            None => return Ok(()),
        }
    }
    print_all(
        log.read(start..=filter.to)?,
        &filter,
        &mut printer,
        Fail::log,
    )
}
