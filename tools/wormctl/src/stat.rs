//! `wormctl stat DIR`: one line per segment (file, state, seqs, times,
//! records, bytes on disk and uncompressed, ratio, final hash), totals, the
//! head, the retention anchor and the legal hold.

use crate::fail::Fail;
use crate::out::{self, Out};
use serde_json::json;
use std::path::PathBuf;
use wormlog::format::hex;
use wormlog::{Log, SegmentInfo};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
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

fn rows(log: &Log) -> Result<Vec<Row>, Fail> {
    let mut rows = Vec::new();
    for info in log.segments()? {
        let times = if info.records() > 0 {
            let first = log.get(info.first_seq)?.timestamp();
            let last = log.get(info.last_seq)?.timestamp();
            Some((first, last))
        } else {
            None
        };
        rows.push(Row { info, times });
    }
    Ok(rows)
}

fn ratio(s: &SegmentInfo) -> f64 {
    s.bytes_uncompressed as f64 / s.bytes_on_disk.max(1) as f64
}

pub fn run(a: Args) -> Result<(), Fail> {
    let log = crate::open::read_only(&a.dir)?;
    let rows = rows(&log)?;
    let head = log.head();
    let anchor = log.anchor_entries()?;
    let hold = log.legal_hold()?;
    let (records, on_disk, raw) = rows.iter().fold((0, 0, 0), |(r, d, u), row| {
        (
            r + row.info.records(),
            d + row.info.bytes_on_disk,
            u + row.info.bytes_uncompressed,
        )
    });
    let dropped_segments: usize = anchor.iter().map(|e| e.dropped.len()).sum();
    let mut out = Out::new();
    if a.json {
        let segments: Vec<_> = rows
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
                    "last_hash": hex(&s.last_hash),
                })
            })
            .collect();
        let anchor_json: Vec<_> = anchor
            .iter()
            .map(|e| {
                json!({
                    "time": out::rfc3339(e.time_ns),
                    "first_seq": e.first_seq,
                    "prev_hash": hex(&e.prev_hash),
                    "dropped_segments": e.dropped.iter().map(|d| d.segment).collect::<Vec<_>>(),
                })
            })
            .collect();
        return out.json(&json!({
            "dir": a.dir.display().to_string(),
            "log_id": hex(&log.log_id()),
            "head": {"seq": head.seq, "hash": hex(&head.hash), "time": out::rfc3339(head.timestamp_ns)},
            "segments": segments,
            "totals": {"segments": rows.len(), "records": records, "bytes_on_disk": on_disk, "bytes_uncompressed": raw},
            "anchor": anchor_json,
            "legal_hold": hold,
            "durability": "a writer option, not recorded in the log",
        }));
    }
    out.line(format!(
        "log {}  in {}",
        hex(&log.log_id()),
        a.dir.display()
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
    for r in &rows {
        let s = &r.info;
        let (first, last) = match r.times {
            Some((f, l)) => (short_time(f), short_time(l)),
            None => ("-".into(), "-".into()),
        };
        out.line(format!(
            "{:<34} {:<6} {:>21} {:>9} {:<24} {:<24} {:>10} {:>10} {:>6.2}  {}",
            s.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            state(s),
            format!("{}..={}", s.first_seq, s.last_seq),
            s.records(),
            first,
            last,
            out::size(s.bytes_on_disk),
            out::size(s.bytes_uncompressed),
            ratio(s),
            &hex(&s.last_hash)[..16],
        ))?;
    }
    out.line(format!(
        "total: {} segments ({} sealed), {records} records, {} on disk, {} uncompressed, ratio {:.2}",
        rows.len(),
        rows.iter().filter(|r| r.info.sealed).count(),
        out::size(on_disk),
        out::size(raw),
        raw as f64 / on_disk.max(1) as f64
    ))?;
    out.line(format!(
        "head: seq {} at {}, chain hash {}",
        head.seq,
        out::rfc3339(head.timestamp_ns),
        hex(&head.hash)
    ))?;
    match anchor.last() {
        None => out.line("anchor: none (retention has dropped nothing; the chain starts at the genesis hash)")?,
        Some(e) => out.line(format!(
            "anchor: {} retention run(s) dropped {dropped_segments} segment(s); the log continues at seq {} from {}",
            anchor.len(),
            e.first_seq,
            hex(&e.prev_hash)
        ))?,
    }
    match hold {
        Some(reason) => out.line(format!(
            "legal hold: SET ({reason}); retention drops nothing"
        ))?,
        None => out.line("legal hold: none")?,
    }
    out.line(
        "durability: chosen by the writer when it opens the log (not recorded in the log); \
         every record shown here was committed",
    )
}

/// RFC 3339 to the second, for the table.
fn short_time(ns: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
        .to_string()
}
