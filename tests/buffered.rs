//! `Durability::Buffered` gathers records in the writer's buffer and writes
//! them with one write per 64 KiB; every acknowledged record is still seen by
//! this log's readers at once, and reaches the OS without any read or sync.

mod common;
use common::*;
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options};

fn buffered() -> Options {
    Options::default().durability(Durability::Buffered)
}

#[test]
fn buffered_appends_share_one_write_per_64_kib() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), buffered()).unwrap();
    let before = log.stats();
    let n = 2000u64;
    for i in 0..n {
        log.append(format!("event {i:0>120}").as_bytes()).unwrap();
    }
    let writes = log.stats().writes - before.writes;
    // 2000 frames of 200 bytes are 400 KB: about 6 writes of 64 KiB (and
    // perhaps a few by the flush timer on a slow machine), not 2000.
    assert!(writes <= 60, "{writes} writes for {n} records");
    assert_eq!(user_payloads(&log).len(), n as usize);
    log.close().unwrap();
}

#[test]
fn buffered_records_are_seen_by_this_log_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), buffered()).unwrap();
    let r = log.append(b"just acknowledged").unwrap();
    assert_eq!(log.head().seq, r.seq, "the head includes it");
    assert_eq!(log.get(r.seq).unwrap().payload(), b"just acknowledged");
    let last = log.read(r.seq..).unwrap().last().unwrap().unwrap();
    assert_eq!(last.seq(), r.seq);
    assert_eq!(log.verify().unwrap().head.seq, r.seq);
    assert_eq!(log.checkpoint().unwrap().seq, r.seq);
    log.close().unwrap();
}

#[test]
fn buffered_records_reach_the_os_without_a_read_or_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), buffered()).unwrap();
    let r = log.append(b"written by the flush timer").unwrap();
    // Another handle reads the files: it sees the record only once the
    // writer's buffer has been written to the OS.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
        if reader.head().seq >= r.seq {
            let got = reader.get(r.seq).unwrap();
            assert_eq!(got.payload(), b"written by the flush timer");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "record {} never reached the file without a read or sync",
            r.seq
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    log.close().unwrap();
}
