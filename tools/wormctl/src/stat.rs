//! `wormctl stat DIR`: one line per segment (file, state, seqs, times,
//! records, bytes on disk and uncompressed, ratio, final hash), totals, the
//! head, the retention anchor and the legal hold.

use crate::fail::Fail;
use crate::out::{self, Out};
use serde_json::json;
use std::ops::RangeBounds;
use std::path::PathBuf;
use wormlog::format::hex;
use wormlog::{Durability, Log, RecordKind, SegmentInfo, SystemEvent};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Count the access records too. This reads every engine record of
    /// the log (all segments); without it stat looks only as far back as
    /// the newest access record.
    #[arg(long)]
    accesses: bool,
}

struct Row {
    info: SegmentInfo,
    /// Commit times of its first and last records, when it has any.
    times: Option<(u64, u64)>,
}

pub fn state(s: &SegmentInfo) -> &'static str {
    if s.active {
        "active"
    } else if s.sealed {
        "sealed"
    } else {
        "closed"
    }
}

/// The head, with the commit time of its record. An active segment that
/// holds no record yet (a copy restored from a bucket, before a writer
/// opens it) has only its header's creation time, which is when it was
/// made, not when the head was committed: stat showed the restore's time
/// as the last record's (issue 27).
fn head_of(log: &Log) -> Result<wormlog::Head, Fail> {
    let mut head = log.head();
    let segments = log.segments()?;
    let empty_active = segments
        .last()
        .is_some_and(|s| s.active && s.records() == 0);
    if empty_active && head.seq > 0 {
        head.timestamp_ns = log.get(head.seq)?.timestamp();
    }
    Ok(head)
}

fn rows(log: &Log) -> Result<Vec<Row>, Fail> {
    let mut rows = Vec::new();
    let head = head_of(log)?;
    for info in log.segments()? {
        let times = if info.records() > 0 {
            // A segment begins with an engine record and a closed one ends
            // with its seal record; the log's last record may be a large
            // user record, and the head says its time without reading it.
            let first = log.get(info.first_seq)?.timestamp();
            let last = if info.last_seq == head.seq {
                head.timestamp_ns
            } else {
                log.get(info.last_seq)?.timestamp()
            };
            Some((first, last))
        } else {
            None
        };
        rows.push(Row { info, times });
    }
    Ok(rows)
}

/// The newest record that names the writer's durability (log-opened, or
/// segment-rolled, which begins every later segment): its seq, time and the
/// durability.
struct DurabilityRecord {
    seq: u64,
    time_ns: u64,
    durability: Durability,
    event: SystemEvent,
}

/// Segments searched, newest first; each segment names its durability in
/// its own records, so the newest one with records normally answers.
const DURABILITY_SEARCH_SEGMENTS: usize = 4;

fn durability_record(log: &Log, rows: &[Row]) -> Result<Option<DurabilityRecord>, Fail> {
    for row in rows.iter().rev().take(DURABILITY_SEARCH_SEGMENTS) {
        let s = &row.info;
        if s.records() == 0 {
            continue;
        }
        let mut found = None;
        // Engine records only: a segment's user records may be large.
        for r in log.read(s.first_seq..=s.last_seq)?.system_only() {
            let r = r?;
            if !matches!(r.kind(), RecordKind::LogOpened | RecordKind::SegmentRolled) {
                continue;
            }
            if let Some(Ok(event)) = r.system_event() {
                let durability = match &event {
                    SystemEvent::LogOpened { durability, .. }
                    | SystemEvent::SegmentRolled { durability, .. } => *durability,
                    _ => continue,
                };
                found = Some(DurabilityRecord {
                    seq: r.seq(),
                    time_ns: r.timestamp(),
                    durability,
                    event,
                });
            }
        }
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

fn durability_text(found: &Option<DurabilityRecord>) -> String {
    let Some(d) = found else {
        return format!(
            "not found: no log-opened or segment-rolled record in the newest \
             {DURABILITY_SEARCH_SEGMENTS} segments"
        );
    };
    let mode = match d.durability {
        Durability::Sync => "sync (acknowledged = fdatasynced)".to_string(),
        Durability::Batched { max_delay } => format!(
            "batched (acknowledged = written; fdatasync {} after the last ended)",
            humantime::format_duration(max_delay)
        ),
        Durability::Buffered => {
            "buffered (acknowledged = written; fdatasync on roll, sync and close)".into()
        }
    };
    format!(
        "{mode}, as recorded at seq {} ({}): {}",
        d.seq,
        out::rfc3339(d.time_ns),
        d.event
    )
}

fn durability_json(found: &Option<DurabilityRecord>) -> serde_json::Value {
    let Some(d) = found else {
        return serde_json::Value::Null;
    };
    let mut v = match d.durability {
        Durability::Sync => json!({"mode": "sync"}),
        Durability::Batched { max_delay } => json!({
            "mode": "batched",
            "max_delay_ns": u64::try_from(max_delay.as_nanos()).unwrap_or(u64::MAX),
        }),
        Durability::Buffered => json!({"mode": "buffered"}),
    };
    v["recorded_at_seq"] = json!(d.seq);
    v["recorded_at"] = json!(out::rfc3339(d.time_ns));
    v
}

/// The last access record: seq, time, who, what, why.
type Access = (u64, u64, String, String, String);

/// The access records of seqs `range`, in order.
fn accesses_in(log: &Log, range: impl RangeBounds<u64>) -> Result<Vec<Access>, Fail> {
    let mut found = Vec::new();
    // Engine records only: user records may be large and are not read.
    for r in log.read(range)?.system_only() {
        let r = r?;
        if r.kind() != RecordKind::Accessed {
            continue;
        }
        if let Some(Ok(SystemEvent::Accessed { who, what, why })) = r.system_event() {
            found.push((r.seq(), r.timestamp(), who, what, why));
        }
    }
    Ok(found)
}

/// How many access records the log holds (`None` unless `count`), and the
/// last. The last is searched newest segment first and the search stops
/// at the first segment that has one, so on a log that is read now and
/// then stat reads one or two segments, not the log; only counting reads
/// every segment (and so does a log that was never read under `--as`).
fn accesses(log: &Log, rows: &[Row], count: bool) -> Result<(Option<u64>, Option<Access>), Fail> {
    if count {
        let all = accesses_in(log, ..)?;
        return Ok((Some(all.len() as u64), all.into_iter().last()));
    }
    for row in rows.iter().rev() {
        let s = &row.info;
        if s.records() == 0 {
            continue;
        }
        if let Some(last) = accesses_in(log, s.first_seq..=s.last_seq)?.pop() {
            return Ok((None, Some(last)));
        }
    }
    Ok((None, None))
}

fn ratio(s: &SegmentInfo) -> f64 {
    s.bytes_uncompressed as f64 / s.bytes_on_disk.max(1) as f64
}

/// What `stat` shows, gathered once for the table and the JSON.
struct Gathered {
    /// The log directory (for an s3:// URL, the copy restored from it).
    dir: std::path::PathBuf,
    log: crate::open::ReadLog,
    rows: Vec<Row>,
    anchor: Vec<wormlog::format::AnchorEntry>,
    hold: Option<String>,
    foreign: Vec<std::path::PathBuf>,
    /// Records, bytes on disk and bytes uncompressed, over the segments.
    totals: (u64, u64, u64),
    found: Option<DurabilityRecord>,
    accesses: (Option<u64>, Option<Access>),
}

pub fn run(a: Args) -> Result<(), Fail> {
    let log = crate::open::read_only(&a.dir)?;
    let rows = rows(&log)?;
    let totals = rows.iter().fold((0, 0, 0), |(r, d, u), row| {
        (
            r + row.info.records(),
            d + row.info.bytes_on_disk,
            u + row.info.bytes_uncompressed,
        )
    });
    let g = Gathered {
        dir: log.dir().to_path_buf(),
        anchor: log.anchor_entries()?,
        hold: log.legal_hold()?,
        foreign: log.foreign_files()?,
        found: durability_record(&log, &rows)?,
        accesses: accesses(&log, &rows, a.accesses)?,
        totals,
        rows,
        log,
    };
    let mut out = Out::new();
    if a.json {
        return print_json(&a, &g, &mut out);
    }
    print_table(&a, &g, &mut out)?;
    print_summary(&g, &mut out)
}

/// `stat --json`: one object.
fn print_json(a: &Args, g: &Gathered, out: &mut Out) -> Result<(), Fail> {
    let (records, on_disk, raw) = g.totals;
    let head = head_of(&g.log)?;
    let segments: Vec<_> = g
        .rows
        .iter()
        .map(|r| {
            let s = &r.info;
            json!({
                "file": s.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                "number": s.number,
                "state": state(s),
                "first_seq": s.first_seq,
                "last_seq": s.last_seq,
                "records": s.records(),
                "first_time": r.times.map(|t| out::rfc3339(t.0)),
                "last_time": r.times.map(|t| out::rfc3339(t.1)),
                "bytes_on_disk": s.bytes_on_disk,
                "bytes_uncompressed": s.bytes_uncompressed,
                "ratio": ratio(s),
                "last_hash": hex(s.last_hash),
            })
        })
        .collect();
    let anchor_json: Vec<_> = g
        .anchor
        .iter()
        .map(|e| {
            json!({
                "time": out::rfc3339(e.time_ns),
                "first_seq": e.first_seq,
                "prev_hash": hex(e.prev_hash),
                "dropped_segments": e.dropped.iter().map(|d| d.segment).collect::<Vec<_>>(),
            })
        })
        .collect();
    let accesses = &g.accesses;
    out.json(&json!({
        "dir": a.dir.display().to_string(),
        "log_id": hex(g.log.log_id()),
        "head": {"seq": head.seq, "hash": hex(head.hash), "time": out::rfc3339(head.timestamp_ns)},
        "segments": segments,
        "totals": {"segments": g.rows.len(), "records": records, "bytes_on_disk": on_disk, "bytes_uncompressed": raw},
        "anchor": anchor_json,
        "legal_hold": g.hold,
        "durability": durability_json(&g.found),
        "foreign_files": out::paths_json(&g.foreign),
        "accesses": {
            "count": accesses.0,
            "counted": accesses.0.is_some(),
            "last": accesses.1.as_ref().map(|(seq, ns, who, what, why)| json!({
                "seq": seq, "time": out::rfc3339(*ns), "who": who, "what": what, "why": why,
            })),
        },
    }))
}

/// The table of segments, one line each.
fn print_table(a: &Args, g: &Gathered, out: &mut Out) -> Result<(), Fail> {
    out.line(format!(
        "log {}  in {}",
        hex(g.log.log_id()),
        out::path_text(&a.dir)
    ))?;
    out.line(format!(
        "{:<34} {:<6} {:>21} {:>9} {:<24} {:<24} {:>10} {:>10} {:>6}  last hash",
        "file",
        "state",
        "seqs",
        "records",
        "first record",
        "last record",
        "on disk",
        "raw",
        "ratio"
    ))?;
    for r in &g.rows {
        let s = &r.info;
        let (first, last) = match r.times {
            Some((f, l)) => (out::rfc3339_seconds(f), out::rfc3339_seconds(l)),
            None => ("-".into(), "-".into()),
        };
        out.line(format!(
            "{:<34} {:<6} {:>21} {:>9} {:<24} {:<24} {:>10} {:>10} {:>6.2}  {}",
            s.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            state(s),
            // An empty segment (a restored copy's, before a writer opens
            // it) holds no seqs: say which comes next, not an empty range.
            match s.records() {
                0 => format!("next {}", s.first_seq),
                _ => format!("{}..={}", s.first_seq, s.last_seq),
            },
            s.records(),
            first,
            last,
            out::size(s.bytes_on_disk),
            out::size(s.bytes_uncompressed),
            ratio(s),
            &hex(s.last_hash)[..16],
        ))?;
    }
    Ok(())
}

/// How far the off-host copy reaches, where the log ships (its
/// `wormlog.ship` names confirmed objects): the newest record the copy
/// holds, and how many records and seconds the head is ahead of it.
#[cfg(feature = "s3")]
fn shipped_line(dir: &std::path::Path, head: &wormlog::Head) -> Option<String> {
    if !dir.join(wormlog::format::names::SHIP_STATE_FILE).exists() {
        return None;
    }
    Some(match wormlog_s3::shipped_through_any(dir) {
        Ok(Some((seq, ns))) => format!(
            "shipped: the copy reaches seq {seq} ({}): the head is {} record(s) and {:.1} s ahead",
            out::rfc3339(ns),
            head.seq.saturating_sub(seq),
            head.timestamp_ns.saturating_sub(ns) as f64 / 1e9
        ),
        Ok(None) => "shipped: nothing confirmed yet".to_string(),
        Err(e) => format!("shipped: cannot tell ({e})"),
    })
}

#[cfg(not(feature = "s3"))]
fn shipped_line(_: &std::path::Path, _: &wormlog::Head) -> Option<String> {
    None
}

/// The lines after the table: totals, head, anchor, hold, durability,
/// accesses and files that are not the log's.
fn print_summary(g: &Gathered, out: &mut Out) -> Result<(), Fail> {
    let (records, on_disk, raw) = g.totals;
    let head = head_of(&g.log)?;
    out.line(format!(
        "total: {} segments ({} sealed), {records} records, {} on disk, {} uncompressed, ratio {:.2}",
        g.rows.len(),
        g.rows.iter().filter(|r| r.info.sealed).count(),
        out::size(on_disk),
        out::size(raw),
        raw as f64 / on_disk.max(1) as f64
    ))?;
    out.line(format!(
        "head: seq {} at {}, chain hash {}",
        head.seq,
        out::rfc3339(head.timestamp_ns),
        hex(head.hash)
    ))?;
    if let Some(line) = shipped_line(&g.dir, &head) {
        out.line(line)?;
    }
    let dropped_segments: usize = g.anchor.iter().map(|e| e.dropped.len()).sum();
    match g.anchor.last() {
        None => out.line("anchor: none (retention has dropped nothing; the chain starts at the genesis hash)")?,
        Some(e) => out.line(format!(
            "anchor: {} retention run(s) dropped {dropped_segments} segment(s); the log continues at seq {} from {}",
            g.anchor.len(),
            e.first_seq,
            hex(e.prev_hash)
        ))?,
    }
    match &g.hold {
        Some(reason) => out.line(format!(
            "legal hold: SET ({}); retention drops nothing",
            out::terminal_text(reason)
        ))?,
        None => out.line("legal hold: none")?,
    }
    out.line(format!("durability: {}", durability_text(&g.found)))?;
    print_accesses(&g.accesses, out)?;
    if !g.foreign.is_empty() {
        out.line(format!(
            "not wormlog's: {} file(s) the log ignores: {}",
            g.foreign.len(),
            out::file_list(&g.foreign)
        ))?;
    }
    Ok(())
}

fn print_accesses(accesses: &(Option<u64>, Option<Access>), out: &mut Out) -> Result<(), Fail> {
    let counted = match accesses.0 {
        Some(n) => format!("{n}; "),
        None => String::new(),
    };
    match &accesses.1 {
        None => out.line("accesses recorded: none (dump --as NAME records one)"),
        Some((seq, ns, who, what, why)) => out.line(format!(
            "accesses recorded: {counted}the last by {} at {} (seq {seq}): {}{}{}",
            out::terminal_text(&format!("{who:?}")),
            out::rfc3339_seconds(*ns),
            out::terminal_text(what),
            if why.is_empty() {
                String::new()
            } else {
                format!(", because {}", out::terminal_text(why))
            },
            if accesses.0.is_none() {
                " (stat --accesses counts them)"
            } else {
                ""
            }
        )),
    }
}
