//! `/v1/logs/NAME/records`: appends answered once durable, and reads
//! streamed as JSON lines in `wormctl dump --json`'s schema (never built
//! whole: a blocking reader sends 64 KiB chunks through a channel of four,
//! so a slow client holds at most that much), with `follow`.

use crate::app::{ApiError, Shared};
use crate::config::Scope;
use crate::logs::Served;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::sync::mpsc;
use wormlog::json::{FieldMatch, RecordLine};
use wormlog::Record;

/// A streamed read sends what it has past this many bytes.
const CHUNK: usize = 64 << 10;

/// How often a follower looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// One receipt as a JSON object's text: `seq`, `time_ns` (a string: JSON
/// readers round integers past 2^53), `hash`, and `proof` where the log
/// proves. Written directly, not through `serde_json::Value`: at 100
/// receipts a request the map building cost as much as the append.
fn receipt_json(r: &wormlog::Receipt, proof: Option<String>) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(128);
    let _ = write!(
        s,
        r#"{{"seq":{},"time_ns":"{}","hash":"{}""#,
        r.seq, r.timestamp_ns, r.hash
    );
    if let Some(p) = proof {
        s.push_str(",\"proof\":");
        s.push_str(&serde_json::Value::String(p).to_string());
    }
    s.push('}');
    s
}

/// How a body becomes records, by its Content-Type.
fn payloads(
    headers: &HeaderMap,
    body: &Bytes,
    max: usize,
) -> Result<(Vec<Vec<u8>>, bool), ApiError> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if body.is_empty() {
        return Err(ApiError::bad_request("empty body: nothing to append"));
    }
    match kind.as_str() {
        "application/json" => {
            check_json(body, None)?;
            Ok((vec![trim(body).to_vec()], false))
        }
        "application/x-ndjson" | "application/jsonl" | "application/json-lines" => {
            let mut out = Vec::new();
            for (n, line) in body.split(|b| *b == b'\n').enumerate() {
                let line = trim(line);
                if line.is_empty() {
                    continue;
                }
                if out.len() == max {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_many_records",
                        format!("more than batch_records_max ({max}) records in one request"),
                    ));
                }
                check_json(line, Some(n + 1))?;
                out.push(line.to_vec());
            }
            if out.is_empty() {
                return Err(ApiError::bad_request("no JSON lines in the body"));
            }
            Ok((out, true))
        }
        _ => Ok((vec![body.to_vec()], false)),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Deepest nesting of arrays and objects a JSON payload may have: the
/// readers of these records (`match=`, `wormctl dump`, jq) recurse.
const JSON_DEPTH_MAX: usize = 64;

/// Whether `b`'s arrays and objects nest deeper than `max` (brackets in
/// strings skipped).
fn nests_deeper_than(b: &[u8], max: usize) -> bool {
    // Fast path (a counting loop the compiler vectorises): nesting is no
    // deeper than the number of openers.
    if b.iter().filter(|&&c| c == b'[' || c == b'{').count() <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &c in b {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A JSON body must be strict JSON (`wormlog::json::check_strict`) and
/// nest at most `JSON_DEPTH_MAX` deep.
fn check_json(b: &[u8], line: Option<usize>) -> Result<(), ApiError> {
    let at = line.map_or(String::new(), |n| format!("line {n}: "));
    if nests_deeper_than(b, JSON_DEPTH_MAX) {
        return Err(ApiError::bad_request(format!(
            "{at}JSON nested deeper than {JSON_DEPTH_MAX} levels"
        )));
    }
    // Strict: UTF-8 throughout, and no key twice in an object (readers
    // disagree on which of the two a record says).
    wormlog::json::check_strict(b)
        .map_err(|e| ApiError::bad_request(format!("{at}not strict JSON: {e}")))
}

/// `POST /v1/logs/NAME/records`.
pub async fn append(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (_, served) = app.allow(&headers, Scope::Append, &name)?;
    let body = app.read_body(body).await?;
    let max = app.cfg.server.batch_records_max;
    let (records, batch) = payloads(&headers, &body, max).map_err(|e| app.count(e))?;
    let receipts = append_to(&app, &served, records).await?;
    let body = if batch {
        format!("{{\"receipts\":[{}]}}", receipts.join(","))
    } else {
        receipts.into_iter().next().unwrap_or_default()
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// Appends `records` to `served` in its queue; the receipts once durable.
/// Shared by the HTTP, OTLP and syslog paths.
pub async fn append_to(
    app: &Shared,
    served: &Arc<Served>,
    records: Vec<Vec<u8>>,
) -> Result<Vec<String>, ApiError> {
    if app.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(app.count(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the server is shutting down",
        )));
    }
    let Some(_slot) = served.enter() else {
        served
            .metrics
            .refused_busy
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(app.count(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("log {:?}: queue full; retry after a second", served.name),
        )));
    };
    let started = Instant::now();
    let n = records.len() as u64;
    let bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
    let out = if served.proofs {
        let proved = served
            .log
            .append_batch_proved_async(records)
            .await
            .map_err(|e| app.count(ApiError::engine(e)))?;
        proved
            .iter()
            .map(|p| receipt_json(&p.receipt, Some(p.proof.to_text())))
            .collect()
    } else {
        let receipts = served
            .log
            .append_batch_async(records)
            .batch()
            .await
            .map_err(|e| app.count(ApiError::engine(e)))?;
        receipts.iter().map(|r| receipt_json(r, None)).collect()
    };
    served.metrics.acknowledged(n, bytes, started.elapsed());
    Ok(out)
}

/// A read's parameters (`?from=&to=&since=&until=&match=&grep=&limit=
/// &follow=&system=`).
#[derive(Debug, Default)]
struct ReadQuery {
    from: u64,
    to: u64,
    since: u64,
    until: u64,
    matches: Vec<FieldMatch>,
    grep: Option<regex::Regex>,
    limit: Option<u64>,
    follow: bool,
    system: bool,
}

impl ReadQuery {
    fn parse(raw: Option<&str>) -> Result<ReadQuery, ApiError> {
        let mut q = ReadQuery {
            from: 1,
            to: u64::MAX,
            until: u64::MAX,
            ..ReadQuery::default()
        };
        let bad = |k: &str, v: &str, why: &str| ApiError::bad_request(format!("{k}={v}: {why}"));
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| bad(&k, &v, "not a whole number"))
            };
            match k.as_ref() {
                "from" => q.from = num()?.max(1),
                "to" => q.to = num()?,
                "since" => q.since = time(&v).map_err(|e| bad(&k, &v, &e))?,
                "until" => q.until = time(&v).map_err(|e| bad(&k, &v, &e))?,
                "limit" => q.limit = Some(num()?),
                "follow" => q.follow = flag(&v).map_err(|e| bad(&k, &v, e))?,
                "system" => q.system = flag(&v).map_err(|e| bad(&k, &v, e))?,
                "match" => q
                    .matches
                    .push(FieldMatch::parse(&v).map_err(|e| bad(&k, &v, &e))?),
                "grep" => {
                    let re = regex::RegexBuilder::new(&v)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| bad(&k, &v, &e.to_string()))?;
                    q.grep = Some(re);
                }
                _ => return Err(bad(&k, &v, "unknown parameter")),
            }
        }
        // since after until selects nothing: an empty answer, as any
        // filter that matches nothing.
        Ok(q)
    }

    fn describe(&self) -> String {
        let mut s = format!("read records from seq {}", self.from);
        if self.to != u64::MAX {
            s += &format!(" to {}", self.to);
        }
        if self.since > 0 || self.until != u64::MAX {
            s += &format!(" time {}..{} ns", self.since, self.until);
        }
        if self.follow {
            s += ", following";
        }
        s
    }

    fn passes(&self, r: &Record) -> bool {
        if r.timestamp() < self.since || (r.is_system() && !self.system) {
            return false;
        }
        if let Some(re) = &self.grep {
            if !re.is_match(&String::from_utf8_lossy(r.payload())) {
                return false;
            }
        }
        FieldMatch::all_pass(&self.matches, r.payload())
    }
}

fn flag(v: &str) -> Result<bool, &'static str> {
    match v {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err("expected true or false"),
    }
}

/// ns since the epoch, or RFC 3339 with `Z` or an offset. A time before
/// 1970 is 0 and one past 2554 the last ns: bounds of a filter, whatever
/// they are, select no record outside them.
fn time(v: &str) -> Result<u64, String> {
    if v.is_empty() {
        return Err("empty: give RFC 3339 or ns since 1970".into());
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(v.parse().unwrap_or(u64::MAX));
    }
    let t: jiff::Timestamp = v.parse().map_err(|e: jiff::Error| e.to_string())?;
    Ok(u64::try_from(t.as_nanosecond().max(0)).unwrap_or(u64::MAX))
}

/// `GET /v1/logs/NAME/records`: writes an access record naming the
/// token's principal, then streams.
pub async fn read(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (who, served) = app.allow(&headers, Scope::Read, &name)?;
    let q = ReadQuery::parse(raw.as_deref()).map_err(|e| app.count(e))?;
    // Places per log (a reader of one log cannot take another log's),
    // and the server's own bound on blocking workers held by reads.
    let (Ok(place), Ok(server_place)) = (
        served.reads.clone().try_acquire_owned(),
        app.reads.clone().try_acquire_owned(),
    ) else {
        return Err(app.count(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "reads_busy",
            format!(
                "log {name:?}: {} reads are streaming (reads_max); retry",
                app.cfg.server.reads_max
            ),
        )));
    };
    access(&app, &served, &who.name, q.describe()).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let log = served.log.clone();
    let app = app.clone();
    let stall = app.cfg.server.body_timeout();
    tokio::task::spawn_blocking(move || {
        let _places = (place, server_place);
        let tx = Sender { tx, stall };
        stream(&log, &q, &tx, &app.stopping)
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Writes the access record of a read by `who` (in the chain before any
/// record leaves).
pub async fn access(
    app: &Shared,
    served: &Served,
    who: &str,
    what: String,
) -> Result<(), ApiError> {
    let log = served.log.clone();
    let who = who.to_string();
    app.blocking(move || log.record_access(&who, &what, "wormd request"))
        .await
        .map(|_| ())
}

/// A read's channel to its response body. A client that takes nothing for
/// `stall` (body_timeout_secs) loses its read: it would otherwise hold a
/// place and a blocking worker for as long as it liked.
struct Sender {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    stall: Duration,
}

impl Sender {
    /// Sends `bytes`; false once the client is gone or stalled.
    fn send(&self, bytes: Bytes) -> bool {
        let deadline = Instant::now() + self.stall;
        let mut item = Ok(bytes);
        loop {
            match self.tx.try_send(item) {
                Ok(()) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

type Tx = Sender;

/// The read's blocking half: ends when the range or limit is done, or the
/// client went away (the channel closed), or the server stops (`stop`).
fn stream(log: &wormlog::Log, q: &ReadQuery, tx: &Tx, stop: &std::sync::atomic::AtomicBool) {
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    let mut sent = 0u64;
    let mut next = q.from;
    if q.limit == Some(0) {
        return;
    }
    loop {
        let more = match send_range(log, q, tx, &mut buf, &mut sent, &mut next) {
            Ok(more) => more,
            Err(e) => {
                // The error ends the stream as its last line: the status
                // (200) went out with the first bytes.
                let line = serde_json::json!({ "error": e.to_string() }).to_string();
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
                false
            }
        };
        if !buf.is_empty() && !tx.send(Bytes::from(std::mem::take(&mut buf))) {
            return;
        }
        if !more || !q.follow {
            return;
        }
        // Follow: wait for the head to pass what was sent, or the client
        // to leave.
        while log.head().seq < next {
            if tx.is_closed() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// Sends records `*next..` that pass; `Ok(false)` once nothing more is
/// wanted (limit, `to`, `until`, client gone).
fn send_range(
    log: &wormlog::Log,
    q: &ReadQuery,
    tx: &Tx,
    buf: &mut Vec<u8>,
    sent: &mut u64,
    next: &mut u64,
) -> wormlog::Result<bool> {
    let head = log.head().seq;
    if *next > head {
        return Ok(*next <= q.to);
    }
    let first = log
        .segments()?
        .first()
        .map_or(1, |s| s.first_seq)
        .max(*next);
    for r in log.read(first..=head.min(q.to))? {
        let r = r?;
        *next = r.seq() + 1;
        if r.timestamp() > q.until {
            return Ok(false);
        }
        if !q.passes(&r) {
            continue;
        }
        let line = RecordLine::new(&r, rfc3339);
        serde_json::to_writer(&mut *buf, &line).map_err(|e| wormlog::Error::Json {
            seq: Some(r.seq()),
            detail: e.to_string(),
        })?;
        buf.push(b'\n');
        *sent += 1;
        if buf.len() >= CHUNK && !tx.send(Bytes::from(std::mem::take(buf))) {
            return Ok(false);
        }
        if q.limit.is_some_and(|l| *sent >= l) {
            return Ok(false);
        }
    }
    Ok(*next <= q.to)
}

/// ns since the epoch in RFC 3339 UTC with nanoseconds (as wormctl).
pub fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// Where the log's copy off the host stands (`null` without `ship_to`).
fn shipping(log: &wormlog::Log) -> serde_json::Value {
    let s = log.ship_status();
    if s.runs == 0 && s.failures_in_a_row == 0 && s.objects_shipped == 0 {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "objects_shipped": s.objects_shipped,
        "runs": s.runs,
        "failures_in_a_row": s.failures_in_a_row,
        "last_error": s.last_error,
        "shipped_through_seq": s.shipped_through.map(|(seq, _)| seq),
    })
}

/// `GET /v1/logs/NAME`: the log's head, size and state.
pub async fn stat(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, served) = app.allow(&headers, Scope::Read, &name)?;
    let log = served.log.clone();
    let v = app
        .blocking(move || -> wormlog::Result<serde_json::Value> {
        let head = log.head();
        let segs = log.segments()?;
        let stats = log.stats();
        Ok(serde_json::json!({
            "name": name,
            "log_id": wormlog::format::hex(log.log_id()),
            "head": { "seq": head.seq, "time_ns": head.timestamp_ns.to_string(), "hash": head.hash.to_hex() },
            "first_seq": segs.first().map_or(1, |s| s.first_seq),
            "segments": segs.len(),
            "sealed_segments": segs.iter().filter(|s| s.sealed).count(),
            "bytes": segs.iter().map(|s| s.bytes_on_disk).sum::<u64>(),
            "legal_hold": log.legal_hold()?,
            "writes": { "records": stats.records, "writes": stats.writes, "syncs": stats.syncs },
            "shipping": shipping(&log),
            "seal_error": log.seal_error(),
            "checkpoint_error": log.checkpoint_error(),
        }))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(nests_deeper_than(deep.as_bytes(), 64));
        let flat_but_many = format!("[{}]", vec!["[]"; 100].join(","));
        assert!(!nests_deeper_than(flat_but_many.as_bytes(), 64));
        let in_string = format!("{{\"s\":\"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(!nests_deeper_than(in_string.as_bytes(), 64), "{in_string}");
    }
}
