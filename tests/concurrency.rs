//! Many threads appending at once: seqs are unique and contiguous, commit
//! timestamps never decrease, each thread's records keep its own order, and
//! everything reads back after a reopen.

mod common;
use common::*;
use std::collections::HashMap;
use wormlog::{Durability, Log, Options};

fn hammer(durability: Durability, threads: usize, per_thread: usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        Options::default()
            .durability(durability)
            .segment_bytes_max(8 << 20),
    )
    .unwrap();
    let receipts: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = &log;
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let r = log.append(format!("t{t} i{i}").as_bytes()).unwrap();
                            (r.seq, r.timestamp_ns)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for mine in &receipts {
        assert!(
            mine.windows(2).all(|w| w[0].0 < w[1].0),
            "a thread's records keep its order"
        );
    }
    let mut all: Vec<(u64, u64)> = receipts.iter().flatten().copied().collect();
    all.sort_unstable();
    assert!(all.windows(2).all(|w| w[0].0 != w[1].0), "seqs are unique");
    assert!(
        all.windows(2).all(|w| w[0].1 <= w[1].1),
        "timestamps never decrease in seq order"
    );
    drop(log);

    let log = Log::open(dir.path(), Options::default()).unwrap();
    let records = all_records(&log);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq(), i as u64 + 1, "seqs are contiguous from 1");
    }
    assert!(records
        .windows(2)
        .all(|w| w[0].timestamp() <= w[1].timestamp()));
    let by_seq: HashMap<u64, &wormlog::Record> = records.iter().map(|r| (r.seq(), r)).collect();
    for (t, mine) in receipts.iter().enumerate() {
        for (i, (seq, _)) in mine.iter().enumerate() {
            assert_eq!(by_seq[seq].payload(), format!("t{t} i{i}").as_bytes());
        }
    }
    let users = records.iter().filter(|r| !r.is_system()).count();
    assert_eq!(users, threads * per_thread);
    log.verify().unwrap();
}

#[test]
fn sixteen_sync_writers_get_contiguous_ordered_seqs() {
    hammer(Durability::Sync, 16, 10_000);
}

#[test]
fn concurrent_batched_writers_get_contiguous_ordered_seqs() {
    hammer(
        Durability::Batched {
            max_delay: std::time::Duration::from_millis(5),
        },
        8,
        5_000,
    );
}

#[test]
fn readers_see_only_committed_records_while_writers_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().segment_bytes_max(64 << 10)).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let log = &log;
            s.spawn(move || {
                for i in 0..2_000 {
                    log.append(format!("w{t}-{i}").as_bytes()).unwrap();
                }
            });
        }
        let log = &log;
        s.spawn(move || {
            for _ in 0..50 {
                let head = log.head();
                let got: Vec<_> = log.read(..).unwrap().map(|r| r.unwrap()).collect();
                assert!(
                    got.len() as u64 >= head.seq,
                    "a read sees at least the head it started after"
                );
                for (i, r) in got.iter().enumerate() {
                    assert_eq!(r.seq(), i as u64 + 1);
                }
                log.verify().unwrap();
            }
        });
    });
}
