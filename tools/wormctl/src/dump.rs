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
    #[command(flatten)]
    output: OutputArgs,
    /// Add frame locations (segment, offset, length, CRC) and chain hashes.
    #[arg(long)]
    raw: bool,
    /// First seq to print.
    #[arg(long, value_name = "SEQ")]
    from: Option<u64>,
    /// Last seq to print.
    #[arg(long, value_name = "SEQ")]
    to: Option<u64>,
    /// Records committed at or after TIME (RFC 3339 with Z or an offset, a
    /// local time or date, a time of day (06:40), today, yesterday, @SECONDS or
    /// NSns since 1970, or a duration
    /// ago like 1h or -15m).
    #[arg(long, value_name = "TIME", value_parser = out::parse_time, allow_hyphen_values = true)]
    since: Option<u64>,
    /// Records committed at or before TIME.
    #[arg(long, value_name = "TIME", value_parser = out::parse_time, allow_hyphen_values = true)]
    until: Option<u64>,
    /// Include the engine's own records (log opened, segment rolled, sealed, ...).
    #[arg(long)]
    system: bool,
    /// Only the last N records that pass the other filters.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<usize>,
    /// Newest first (a log directory is read one segment at a time, backwards).
    #[arg(short = 'r', long)]
    reverse: bool,
    /// Only records whose payload (as text) matches this regular expression.
    #[arg(long, value_name = "REGEX")]
    grep: Option<String>,
    /// Only records whose payload is a JSON object with FIELD equal to VALUE
    /// (a string, or a number or boolean written as text); repeatable, all
    /// must hold. FIELD may be a dotted path (`actor.name`).
    #[arg(long = "match", value_name = "FIELD=VALUE")]
    matches: Vec<String>,
    /// Write to stdout even on a terminal (by default a terminal gets the
    /// output through $WORMCTL_PAGER, $PAGER or less).
    #[arg(long)]
    no_pager: bool,
    #[command(flatten)]
    access: crate::access::AccessArgs,
}

/// What to print: seq and time bounds (inclusive), engine records or not,
/// and the payload filters.
struct Filter {
    from: u64,
    to: u64,
    since: u64,
    until: u64,
    system: bool,
    grep: Option<regex::Regex>,
    matches: Vec<wormlog::json::FieldMatch>,
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
            || !self.payload_passes(r.payload())
        {
            Step::Skip
        } else {
            Step::Print
        }
    }

    fn payload_passes(&self, payload: &[u8]) -> bool {
        if let Some(re) = &self.grep {
            if !re.is_match(&String::from_utf8_lossy(payload)) {
                return false;
            }
        }
        wormlog::json::FieldMatch::all_pass(&self.matches, payload)
    }
}

fn parse_matches(list: &[String]) -> Result<Vec<wormlog::json::FieldMatch>, Fail> {
    list.iter()
        .map(|m| {
            wormlog::json::FieldMatch::parse(m).map_err(|e| Fail::usage(format!("--match {e}")))
        })
        .collect()
}

/// Prints records as a table (with a header before the first) or JSON lines.
/// `--json` and `-o MODE`, as dump and tail both take them.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// One JSON object per record (as `-o json`).
    #[arg(long)]
    json: bool,
    /// Output mode, as journalctl's: short (the table, default), json (one
    /// object per line), json-pretty, cat (payloads only).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "MODE",
        value_enum,
        conflicts_with = "json"
    )]
    output: Option<OutputMode>,
}

impl OutputArgs {
    /// The mode asked for (`--json` is `-o json`).
    pub fn mode(&self) -> OutputMode {
        match (self.output, self.json) {
            (Some(m), _) => m,
            (None, true) => OutputMode::Json,
            (None, false) => OutputMode::Short,
        }
    }
}

/// `-o MODE`, journalctl's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    /// The table.
    Short,
    /// One JSON object per line.
    Json,
    /// One indented JSON object per record.
    JsonPretty,
    /// Payloads only, one per line.
    Cat,
}

struct Printer {
    out: Out,
    mode: OutputMode,
    raw: bool,
    header_done: bool,
    printed: u64,
}

impl Printer {
    fn record(&mut self, r: &Record) -> Result<(), Fail> {
        self.printed += 1;
        match self.mode {
            OutputMode::Json => return self.out.record_json(r, self.raw),
            OutputMode::JsonPretty => return self.out.record_json_pretty(r, self.raw),
            OutputMode::Cat => return self.out.payload_line(r),
            OutputMode::Short => {}
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

/// The seqs of the last `n` records `filter` lets through: a first pass
/// that keeps seqs, not records, so that `-n N` holds one payload at a time
/// whatever N and the records' sizes (issue 22, hole 5: holding the last N
/// records held N payloads, and the one being read besides).
fn last_seqs(
    records: impl Iterator<Item = wormlog::Result<Record>>,
    filter: &Filter,
    to_fail: fn(wormlog::Error) -> Fail,
    n: usize,
) -> Result<std::collections::VecDeque<u64>, Fail> {
    let mut kept = std::collections::VecDeque::new();
    for r in records {
        let r = r.map_err(to_fail)?;
        match filter.step(&r) {
            Step::Stop => break,
            Step::Skip => {}
            Step::Print => {
                if kept.len() == n {
                    kept.pop_front();
                }
                if n > 0 {
                    kept.push_back(r.seq());
                }
            }
        }
    }
    Ok(kept)
}

/// Prints the records of `records` whose seqs are `seqs` (ascending): the
/// second pass of `-n N`.
fn print_seqs(
    records: impl Iterator<Item = wormlog::Result<Record>>,
    mut seqs: std::collections::VecDeque<u64>,
    printer: &mut Printer,
    to_fail: fn(wormlog::Error) -> Fail,
) -> Result<(), Fail> {
    for r in records {
        let Some(&next) = seqs.front() else { break };
        let r = r.map_err(to_fail)?;
        if r.seq() == next {
            seqs.pop_front();
            printer.record(&r)?;
        }
    }
    Ok(())
}

/// Prints what `filter` lets through of the records `open` gives, or with
/// `last` only the last that many, in two passes of `open` (see
/// `last_seqs`).
fn print_from<I: Iterator<Item = wormlog::Result<Record>>>(
    open: impl Fn() -> Result<I, Fail>,
    filter: &Filter,
    printer: &mut Printer,
    to_fail: fn(wormlog::Error) -> Fail,
    last: Option<usize>,
) -> Result<(), Fail> {
    match last {
        None => print_all(open()?, filter, printer, to_fail),
        Some(n) => {
            let seqs = last_seqs(open()?, filter, to_fail, n)?;
            print_seqs(open()?, seqs, printer, to_fail)
        }
    }
}

/// Newest first, from a log directory: newest segment first, each read
/// forward for the seqs that pass, whose records are then read again one at
/// a time and printed backward, so memory is one payload and one segment's
/// seqs, not the segment's records.
fn print_reversed(
    log: &wormlog::Log,
    filter: &Filter,
    printer: &mut Printer,
    last: Option<usize>,
) -> Result<(), Fail> {
    let mut printed = 0usize;
    for seg in log.segments()?.iter().rev() {
        if seg.last_seq < seg.first_seq || seg.first_seq > filter.to || seg.last_seq < filter.from {
            continue;
        }
        let mut seqs = Vec::new();
        for r in log.read(seg.first_seq.max(filter.from)..=seg.last_seq.min(filter.to))? {
            let r = r?;
            if matches!(filter.step(&r), Step::Print) {
                seqs.push(r.seq());
            }
        }
        for &seq in seqs.iter().rev() {
            if last.is_some_and(|n| printed >= n) {
                return Ok(());
            }
            if let Some(r) = log.read(seq..=seq)?.next() {
                printer.record(&r?)?;
            }
            printed += 1;
        }
    }
    Ok(())
}

pub fn run(a: Args) -> Result<(), Fail> {
    if let (Some(since), Some(until)) = (a.since, a.until) {
        if since > until {
            return Err(Fail::usage("--since is after --until: no record can match"));
        }
    }
    let grep = a
        .grep
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| Fail::usage(format!("--grep: {e}")))?;
    let filter = Filter {
        from: a.from.unwrap_or(0),
        to: a.to.unwrap_or(u64::MAX),
        since: a.since.unwrap_or(0),
        until: a.until.unwrap_or(u64::MAX),
        system: a.system,
        grep,
        matches: parse_matches(&a.matches)?,
    };
    let mode = a.output.mode();
    let mut printer = Printer {
        out: Out::paged(a.no_pager),
        mode,
        raw: a.raw,
        header_done: false,
        printed: 0,
    };
    let done = dump(&a, filter, &mut printer);
    // As journalctl: an empty result says so, where a person reads it.
    if done.is_ok() && printer.printed == 0 && matches!(mode, OutputMode::Short | OutputMode::Cat) {
        printer.out.line("-- No entries --")?;
    }
    done
}

/// The records `filter` lets through, from whatever `a.path` names.
fn dump(a: &Args, filter: Filter, printer: &mut Printer) -> Result<(), Fail> {
    let bucket = a.path.to_str().is_some_and(|p| p.starts_with("s3://"));
    if a.access.who.is_some() && !bucket && (a.path.as_os_str() == "-" || !a.path.is_dir()) {
        eprintln!(
            "wormctl: access NOT recorded: only a log directory's writer records one, \
             not a single file or standard input"
        );
    }
    if a.path.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            return Err(Fail::usage(
                "dump -: standard input is a terminal; pipe a raw segment in \
                 (zstd -dc seg-....wlog.zst | wormctl dump -)",
            ));
        }
        if a.reverse {
            return Err(Fail::usage("dump -: --reverse needs a log directory"));
        }
        if a.lines.is_some() {
            return Err(Fail::usage(
                "dump -: -n reads the records twice, which standard input cannot give; \
                 decompress to a file and dump that (zstd -d seg-....wlog.zst -o seg.wlog)",
            ));
        }
        let file = SegmentFile::from_reader("<stdin>", std::io::stdin()).map_err(Fail::file)?;
        return print_all(file, &filter, printer, Fail::file);
    }
    let remote = a.path.to_str().is_some_and(|p| p.starts_with("s3://"));
    let meta = match remote {
        true => None,
        false => Some(std::fs::metadata(&a.path).map_err(|e| Fail::io(a.path.display(), e))?),
    };
    if meta.is_some_and(|m| !m.is_dir()) {
        if a.reverse {
            return Err(Fail::usage("--reverse needs a log directory"));
        }
        let open = || SegmentFile::open(&a.path).map_err(Fail::file);
        return print_from(open, &filter, printer, Fail::file, a.lines);
    }
    if !remote {
        crate::access::record(&a.path, &a.access, &what(a))?;
    } else if a.access.who.is_some() {
        eprintln!("wormctl: access NOT recorded: a bucket's copy takes no records");
    }
    let log = crate::open::read_only(&a.path)?;
    if a.reverse {
        return print_reversed(&log, &filter, printer, a.lines);
    }
    // Start at the first record the bounds allow, found through the index.
    let mut start = filter.from;
    if filter.since > 0 {
        match log.first_at_or_after(filter.since)? {
            Some(r) => start = start.max(r.seq()),
            None => return Ok(()),
        }
    }
    if a.lines.is_none() {
        return print_around_damage(&log, start, &filter, printer);
    }
    let open = || Ok(log.read(start..=filter.to)?);
    print_from(open, &filter, printer, Fail::log, a.lines)
}

/// Every readable record of a log directory from `start`, in order: where
/// a record cannot be read (damage, a changed byte), the damage is said on
/// standard error where it lies and the dump goes on at the next record it
/// can read, so that forensics gets everything readable (issue 27: the
/// dump stopped at the first damage). Exit 1 after, if any was found.
fn print_around_damage(
    log: &wormlog::Log,
    start: u64,
    filter: &Filter,
    printer: &mut Printer,
) -> Result<(), Fail> {
    let mut from = start;
    let mut damage: Option<Fail> = None;
    // The run of unreadable records being passed: first, last, where, why.
    let mut run: Option<(u64, u64, String)> = None;
    let say = |run: &mut Option<(u64, u64, String)>| {
        if let Some((first, last, why)) = run.take() {
            let which = match first == last {
                true => format!("record {first}"),
                false => format!("records {first}..={last}"),
            };
            eprintln!("wormctl: -- {which} cannot be read: {why} --");
        }
    };
    'reading: while from <= filter.to {
        for r in log.read(from..=filter.to)? {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    let at = match &e {
                        wormlog::Error::Corrupt { seq: Some(s), .. } => (*s).max(from),
                        _ => from,
                    };
                    match &mut run {
                        Some((_, last, _)) if *last + 1 == at => *last = at,
                        _ => {
                            say(&mut run);
                            run = Some((at, at, e.to_string()));
                        }
                    }
                    damage.get_or_insert(Fail::log(e));
                    // On with the next record (the first of the next
                    // readable frame, when a whole frame is damaged).
                    from = at + 1;
                    continue 'reading;
                }
            };
            say(&mut run);
            from = r.seq() + 1;
            match filter.step(&r) {
                Step::Stop => break 'reading,
                Step::Skip => {}
                Step::Print => printer.record(&r)?,
            }
        }
        break;
    }
    say(&mut run);
    damage.map_or(Ok(()), Err)
}

/// What a dump reads, in words, for its access record.
fn what(a: &Args) -> String {
    let mut w = String::from("dump");
    let mut add = |k: &str, v: String| {
        w.push_str(&format!(" {k} {v}"));
    };
    if let Some(v) = a.from {
        add("--from", v.to_string());
    }
    if let Some(v) = a.to {
        add("--to", v.to_string());
    }
    if let Some(v) = a.since {
        add("--since", crate::out::rfc3339(v));
    }
    if let Some(v) = a.until {
        add("--until", crate::out::rfc3339(v));
    }
    if let Some(v) = &a.grep {
        add("--grep", format!("{v:?}"));
    }
    for m in &a.matches {
        add("--match", format!("{m:?}"));
    }
    if let Some(n) = a.lines {
        add("-n", n.to_string());
    }
    if a.system {
        w.push_str(" --system");
    }
    w
}
