//! The server's counters, and `/metrics` in Prometheus's text format.
//! Per log: appends, bytes, the time from request to durable
//! acknowledgement (a histogram: it holds the group's fdatasync), queue
//! depth, and the engine's own write statistics (group size = records /
//! writes; its fdatasync durations as a histogram). Per server: errors by kind and refused credentials.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the acknowledgement-latency histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// One log's counters.
#[derive(Default)]
pub struct LogMetrics {
    /// Records acknowledged.
    pub appends: AtomicU64,
    /// Payload bytes acknowledged.
    pub bytes: AtomicU64,
    /// Requests waiting on or in the log now.
    pub queued: AtomicU64,
    /// Requests refused because the queue was full.
    pub refused_busy: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl LogMetrics {
    /// Notes one acknowledgement that took `took`.
    pub fn acknowledged(&self, records: u64, bytes: u64, took: Duration) {
        self.appends.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests with no or an unknown token (401).
    pub unauthenticated: AtomicU64,
    /// Requests whose token lacks the scope or log (403).
    pub forbidden: AtomicU64,
    /// syslog messages appended.
    pub syslog_messages: AtomicU64,
    /// syslog connections closed for a bad frame.
    pub syslog_bad_frames: AtomicU64,
}

impl Metrics {
    /// Counts one error of `kind` (a short fixed name).
    pub fn error(&self, kind: &'static str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    /// The text format: `logs` gives each log's name, counters and engine
    /// statistics (records, writes, syncs).
    pub fn render(&self, logs: &[(&str, &LogMetrics, wormlog::WriteStats)]) -> String {
        let mut o = String::new();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut o,
            "wormd_appends_total",
            "counter",
            "Records acknowledged.",
        );
        family(
            &mut o,
            "wormd_append_bytes_total",
            "counter",
            "Payload bytes acknowledged.",
        );
        family(
            &mut o,
            "wormd_queue_depth",
            "gauge",
            "Append requests waiting on or in the log.",
        );
        family(
            &mut o,
            "wormd_busy_total",
            "counter",
            "Requests refused with 429: queue full.",
        );
        family(
            &mut o,
            "wormd_engine_writes_total",
            "counter",
            "Group writes (records / writes = mean group size).",
        );
        family(
            &mut o,
            "wormd_engine_syncs_total",
            "counter",
            "fdatasync calls.",
        );
        family(
            &mut o,
            "wormd_ack_seconds",
            "histogram",
            "Request to durable acknowledgement.",
        );
        for (name, m, s) in logs {
            let l = format!("log=\"{name}\"");
            let _ = writeln!(o, "wormd_appends_total{{{l}}} {}", get(&m.appends));
            let _ = writeln!(o, "wormd_append_bytes_total{{{l}}} {}", get(&m.bytes));
            let _ = writeln!(o, "wormd_queue_depth{{{l}}} {}", get(&m.queued));
            let _ = writeln!(o, "wormd_busy_total{{{l}}} {}", get(&m.refused_busy));
            let _ = writeln!(o, "wormd_engine_writes_total{{{l}}} {}", s.writes);
            let _ = writeln!(o, "wormd_engine_syncs_total{{{l}}} {}", s.syncs);
            for (i, b) in BUCKETS.iter().enumerate() {
                let n = get(&m.buckets[i]);
                let _ = writeln!(o, "wormd_ack_seconds_bucket{{{l},le=\"{b}\"}} {n}");
            }
            let count = get(&m.latency_count);
            let _ = writeln!(o, "wormd_ack_seconds_bucket{{{l},le=\"+Inf\"}} {count}");
            let sum = get(&m.latency_sum_us) as f64 / 1e6;
            let _ = writeln!(o, "wormd_ack_seconds_sum{{{l}}} {sum}");
            let _ = writeln!(o, "wormd_ack_seconds_count{{{l}}} {count}");
            let mut below = 0;
            for (i, n) in s.sync_histogram.iter().enumerate() {
                below += n;
                if i + 1 < s.sync_histogram.len() {
                    let le = (wormlog::SYNC_BUCKET_MIN_US << i) as f64 / 1e6;
                    let _ = writeln!(o, "wormd_fsync_seconds_bucket{{{l},le=\"{le}\"}} {below}");
                }
            }
            let _ = writeln!(o, "wormd_fsync_seconds_bucket{{{l},le=\"+Inf\"}} {below}");
            let _ = writeln!(
                o,
                "wormd_fsync_seconds_sum{{{l}}} {}",
                s.sync_ns as f64 / 1e9
            );
            let _ = writeln!(o, "wormd_fsync_seconds_count{{{l}}} {}", s.syncs);
        }
        family(&mut o, "wormd_errors_total", "counter", "Errors, by kind.");
        for (kind, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(o, "wormd_errors_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            &mut o,
            "wormd_auth_refused_total",
            "counter",
            "Requests refused: 401 (no or unknown token), 403 (scope).",
        );
        let _ = writeln!(
            o,
            "wormd_auth_refused_total{{status=\"401\"}} {}",
            get(&self.unauthenticated)
        );
        let _ = writeln!(
            o,
            "wormd_auth_refused_total{{status=\"403\"}} {}",
            get(&self.forbidden)
        );
        family(
            &mut o,
            "wormd_syslog_messages_total",
            "counter",
            "syslog messages appended.",
        );
        let _ = writeln!(
            o,
            "wormd_syslog_messages_total {}",
            get(&self.syslog_messages)
        );
        family(
            &mut o,
            "wormd_syslog_bad_frames_total",
            "counter",
            "syslog connections closed for a bad frame.",
        );
        let _ = writeln!(
            o,
            "wormd_syslog_bad_frames_total {}",
            get(&self.syslog_bad_frames)
        );
        o
    }
}
