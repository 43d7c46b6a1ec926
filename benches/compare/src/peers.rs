//! The real crates beside wormlog (feature `peers`): okaywal and
//! raft-engine, each with its own write path and format, one 256 B record
//! per durable append from K threads, against wormlog with
//! `preallocate(true)` (issue 23). Throughput rows, and CPU per record at
//! 64 writers (every thread of the process, as the cost rows count it).

use crate::{case, run_threads, Case, RECORD};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wormlog::{Durability, Options};

/// okaywal asks its user to checkpoint what it wrote; nothing to do here.
#[derive(Debug)]
struct NoCheckpoint;

impl okaywal::LogManager for NoCheckpoint {
    fn recover(&mut self, _entry: &mut okaywal::Entry<'_>) -> std::io::Result<()> {
        Ok(())
    }
    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// One durable record: okaywal's entry of one chunk, committed (an
/// fdatasync shared by the entries committing together).
fn okaywal_rate(k: usize, secs: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let wal = okaywal::WriteAheadLog::recover(dir.path(), NoCheckpoint).unwrap();
    let payload = vec![b'a'; RECORD];
    run_threads(k, secs, || {
        let mut entry = wal.begin_entry().unwrap();
        entry.write_chunk(&payload).unwrap();
        entry.commit().unwrap();
        1
    })
}

/// One durable record: raft-engine's log batch of one put, written with
/// sync (its writers group behind one leader's fdatasync).
fn raft_engine_rate(k: usize, secs: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let cfg = raft_engine::Config {
        dir: dir.path().to_string_lossy().into_owned(),
        ..Default::default()
    };
    let engine = raft_engine::Engine::open(cfg).unwrap();
    let payload = vec![b'a'; RECORD];
    let next = AtomicU64::new(0);
    run_threads(k, secs, || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let mut batch = raft_engine::LogBatch::default();
        batch
            .put(1 + n % 64, n.to_le_bytes().to_vec(), payload.clone())
            .unwrap();
        engine.write(&mut batch, true).unwrap();
        1
    })
}

fn wormlog_rate(k: usize, secs: Duration) -> f64 {
    let options = Options::default()
        .durability(Durability::Sync)
        .preallocate(true);
    crate::wormlog_appends(k, secs, options)
}

/// CPU time of the whole process per record while `rate` runs: ns.
fn cpu_per_record(secs: Duration, rate: impl FnOnce(Duration) -> f64) -> f64 {
    let (t0, c0) = (std::time::Instant::now(), crate::cost::process_cpu_ns());
    let r = rate(secs);
    let cpu = crate::cost::process_cpu_ns() - c0;
    let records = r * t0.elapsed().as_secs_f64();
    cpu as f64 / records.max(1.0)
}

pub fn peer_cases(cases: &mut Vec<Case>) {
    for k in [1usize, 16, 64] {
        cases.push(case(&format!("sync/{k} okaywal"), "rec/s", move |secs| {
            okaywal_rate(k, secs)
        }));
        cases.push(case(
            &format!("sync/{k} raft-engine"),
            "rec/s",
            move |secs| raft_engine_rate(k, secs),
        ));
    }
    cases.push(case("cpu/64 wormlog preallocate", "ns CPU/rec", |secs| {
        cpu_per_record(secs, |s| wormlog_rate(64, s))
    }));
    cases.push(case("cpu/64 okaywal", "ns CPU/rec", |secs| {
        cpu_per_record(secs, |s| okaywal_rate(64, s))
    }));
    cases.push(case("cpu/64 raft-engine", "ns CPU/rec", |secs| {
        cpu_per_record(secs, |s| raft_engine_rate(64, s))
    }));
}

pub fn peer_ratios(cases: &[Case]) {
    for k in [1, 16, 64] {
        let target = if k == 1 { ">= 0.95" } else { ">= 1.3" };
        for peer in ["okaywal", "raft-engine"] {
            crate::ratio(
                cases,
                &format!("sync/{k} wormlog preallocate / {peer}"),
                &format!("sync/{k} wormlog preallocate"),
                &format!("sync/{k} {peer}"),
                target,
            );
        }
    }
    for peer in ["okaywal", "raft-engine"] {
        crate::ratio(
            cases,
            &format!("CPU per record at 64 writers, wormlog / {peer}"),
            "cpu/64 wormlog preallocate",
            &format!("cpu/64 {peer}"),
            "wormlog <= 8000 ns",
        );
    }
}
