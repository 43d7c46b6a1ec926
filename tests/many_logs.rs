//! Many logs in one process (issue 23): every open log's background work
//! (Buffered writes, sealing, epoch tags) runs on the engine's shared pool,
//! so 520 open logs run at most 32 engine threads, and each still has its
//! buffer written, its closed segments sealed and its epochs tagged. The
//! one test in this binary, so that the thread count is this test's.

use std::path::Path;
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options, RecordKind, Sealing};

const LOGS: usize = 520;

/// A field of /proc/self/status (`Threads`, `VmRSS` in kB).
fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Polls `done` until it holds, failing after a generous minute: a check
/// that the work happens at all, not a timing goal.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not done after two minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes of the active segment on disk (what a Buffered log wrote out).
fn active_bytes(log: &Log) -> u64 {
    let active = log
        .segments()
        .unwrap()
        .into_iter()
        .find(|s| s.active)
        .unwrap();
    std::fs::metadata(&active.path).map_or(0, |m| m.len())
}

fn open(dir: &Path) -> Log {
    let options = Options::default()
        .durability(Durability::Buffered)
        .sealing(Sealing::Background)
        .segment_bytes_max(4096);
    Log::open(dir, options).unwrap()
}

#[test]
fn five_hundred_logs_share_at_most_32_threads_and_each_flushes_seals_and_tags() {
    let root = tempfile::tempdir().unwrap();
    let threads_before = status("Threads");
    let rss_before = status("VmRSS");
    let logs: Vec<Log> = (0..LOGS)
        .map(|i| open(&root.path().join(format!("log-{i:03}"))))
        .collect();
    let rss_idle = status("VmRSS");
    let engine_threads = status("Threads") - threads_before;
    println!(
        "{LOGS} idle open logs: {engine_threads} engine threads, {} KiB of memory each \
         (resident set, {} KiB before, {} KiB after)",
        (rss_idle.saturating_sub(rss_before)) / LOGS as u64,
        rss_before,
        rss_idle
    );
    assert!(
        engine_threads <= 32,
        "{engine_threads} engine threads for {LOGS} logs"
    );
    for log in &logs {
        log.setup_sealing(Duration::from_secs(1)).unwrap();
    }
    let written: Vec<u64> = logs.iter().map(active_bytes).collect();
    for log in &logs {
        // More than a segment holds: each log rolls at least once.
        for i in 0..60 {
            log.append(format!("event {i:03} with some padding to fill").as_bytes())
                .unwrap();
        }
    }
    assert!(status("Threads") - threads_before <= 32);
    // Buffered: the pool writes each buffer out without a call to flush.
    for (i, log) in logs.iter().enumerate() {
        eventually("a buffered log's records written out", || {
            active_bytes(log) > written[i] || log.segments().unwrap().len() > 1
        });
    }
    // Background sealing: every closed segment becomes a sealed file.
    for log in &logs {
        eventually("closed segments sealed", || {
            let segs = log.segments().unwrap();
            segs.len() > 1 && segs.iter().all(|s| s.active || s.sealed)
        });
    }
    // Epochs end while no one appends: each log tags them.
    for log in &logs {
        eventually("an ended epoch tagged", || {
            log.read(..)
                .unwrap()
                .any(|r| r.is_ok_and(|r| r.kind() == RecordKind::EpochTag))
        });
    }
    assert!(status("Threads") - threads_before <= 32);
    for log in logs {
        log.close().unwrap();
    }
}
