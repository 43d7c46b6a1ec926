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
    /// statistics. Each family's lines form one group, as the format
    /// requires (a scraper may drop a family split across the page).
    /// `server_wide`: the counters of no one log (errors, refusals,
    /// syslog), for a token that administers every log.
    pub fn render(
        &self,
        logs: &[(&str, &LogMetrics, wormlog::WriteStats)],
        server_wide: bool,
    ) -> String {
        let mut o = String::new();
        let per_log: [(&str, &str, &str, LogValue); 6] = [
            (
                "wormd_appends_total",
                "counter",
                "Records acknowledged.",
                |m, _| get(&m.appends),
            ),
            (
                "wormd_append_bytes_total",
                "counter",
                "Payload bytes acknowledged.",
                |m, _| get(&m.bytes),
            ),
            (
                "wormd_queue_depth",
                "gauge",
                "Append requests waiting on or in the log.",
                |m, _| get(&m.queued),
            ),
            (
                "wormd_busy_total",
                "counter",
                "Requests refused with 429: queue full.",
                |m, _| get(&m.refused_busy),
            ),
            (
                "wormd_engine_writes_total",
                "counter",
                "Group writes (records / writes = mean group size).",
                |_, s| s.writes,
            ),
            (
                "wormd_engine_syncs_total",
                "counter",
                "fdatasync calls on segment files.",
                |_, s| s.syncs,
            ),
        ];
        for (name, kind, help, value) in per_log {
            family(&mut o, name, kind, help);
            for (log, m, s) in logs {
                let _ = writeln!(o, "{name}{{log=\"{log}\"}} {}", value(m, s));
            }
        }
        render_histograms(&mut o, logs);
        if server_wide {
            self.render_server(&mut o);
        }
        o
    }

    fn render_server(&self, o: &mut String) {
        family(o, "wormd_errors_total", "counter", "Errors, by kind.");
        for (kind, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(o, "wormd_errors_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            o,
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
            o,
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
            o,
            "wormd_syslog_bad_frames_total",
            "counter",
            "syslog connections closed for a bad frame.",
        );
        let _ = writeln!(
            o,
            "wormd_syslog_bad_frames_total {}",
            get(&self.syslog_bad_frames)
        );
    }
}

/// Each log's acknowledgement and fdatasync histograms.
fn render_histograms(o: &mut String, logs: &[(&str, &LogMetrics, wormlog::WriteStats)]) {
    family(
        o,
        "wormd_ack_seconds",
        "histogram",
        "Request to durable acknowledgement.",
    );
    for (log, m, _) in logs {
        let counts: Vec<u64> = m.buckets.iter().map(get).collect();
        let bounds: Vec<f64> = BUCKETS.to_vec();
        let sum = get(&m.latency_sum_us) as f64 / 1e6;
        histogram(
            o,
            "wormd_ack_seconds",
            log,
            &bounds,
            &counts,
            get(&m.latency_count),
            sum,
        );
    }
    family(
        o,
        "wormd_fsync_seconds",
        "histogram",
        "The engine's fdatasync calls on segment files.",
    );
    for (log, _, s) in logs {
        // The engine counts per bucket; the format wants at-most counts.
        let counts: Vec<u64> = s
            .sync_histogram
            .iter()
            .scan(0, |below, n| {
                *below += n;
                Some(*below)
            })
            .take(s.sync_histogram.len() - 1)
            .collect();
        let bounds: Vec<f64> = (0..counts.len())
            .map(|i| (wormlog::SYNC_BUCKET_MIN_US << i) as f64 / 1e6)
            .collect();
        histogram(
            o,
            "wormd_fsync_seconds",
            log,
            &bounds,
            &counts,
            s.syncs,
            s.sync_ns as f64 / 1e9,
        );
    }
}

/// A per-log value from its counters or the engine's statistics.
type LogValue = fn(&LogMetrics, &wormlog::WriteStats) -> u64;

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One log's histogram lines: `counts[i]` requests took at most
/// `bounds[i]` seconds (cumulative), `count` in all, `sum` seconds.
fn histogram(
    o: &mut String,
    name: &str,
    log: &str,
    bounds: &[f64],
    counts: &[u64],
    count: u64,
    sum: f64,
) {
    for (b, n) in bounds.iter().zip(counts) {
        let _ = writeln!(o, "{name}_bucket{{log=\"{log}\",le=\"{b}\"}} {n}");
    }
    let _ = writeln!(o, "{name}_bucket{{log=\"{log}\",le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "{name}_sum{{log=\"{log}\"}} {sum}");
    let _ = writeln!(o, "{name}_count{{log=\"{log}\"}} {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_familys_lines_form_one_group_with_several_logs() {
        let (a, b) = (LogMetrics::default(), LogMetrics::default());
        a.acknowledged(3, 30, std::time::Duration::from_millis(2));
        let stats = wormlog::WriteStats::default();
        let text = Metrics::default().render(&[("a", &a, stats), ("b", &b, stats)], true);
        let mut seen: Vec<String> = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            if seen.last().map(String::as_str) != Some(base) {
                assert!(!seen.iter().any(|s| s == base), "{base} is split:\n{text}");
                seen.push(base.to_string());
            }
        }
        assert!(text.contains("wormd_appends_total{log=\"a\"} 3"));
        assert!(text.contains("wormd_ack_seconds_bucket{log=\"a\",le=\"0.002\"} 1"));
        assert!(text.contains("wormd_ack_seconds_bucket{log=\"a\",le=\"0.001\"} 0"));
    }
}
