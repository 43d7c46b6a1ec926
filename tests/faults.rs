//! A failed write or fdatasync acknowledges nothing, reaches every waiting
//! writer, and poisons the log until it is reopened.

mod common;
use common::*;
use std::sync::mpsc;
use std::time::Duration;
use wormlog::storage::{MemStorage, Op};
use wormlog::{Durability, Error, Log};

#[test]
fn failed_fdatasync_acknowledges_nothing_and_poisons_the_log() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let ok = log.append(b"before").unwrap();
    storage.fail_nth(Op::Sync, storage.count(Op::Sync) + 1);
    let err = log.append(b"doomed").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{err}"
    );
    let err = log.append(b"after").unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert!(matches!(log.sync().unwrap_err(), Error::Poisoned { .. }));
    assert_eq!(
        log.head().seq,
        ok.seq,
        "the failed record was never published"
    );
    drop(log);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let users = user_payloads(&log);
    assert_eq!(
        users,
        vec![b"before".to_vec()],
        "the unacknowledged record is gone with the dropped pages"
    );
    log.append(b"reopened").unwrap();
    log.verify().unwrap();
}

#[test]
fn failed_write_acknowledges_nothing_and_poisons_the_log() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.append(b"before").unwrap();
    storage.fail_nth(Op::Append, storage.count(Op::Append) + 1);
    let err = log.append(b"doomed").unwrap_err();
    assert!(matches!(err, Error::Io { op: "write", .. }), "{err}");
    assert!(matches!(
        log.append(b"x").unwrap_err(),
        Error::Poisoned { .. }
    ));
    drop(log);
    // The partial write left a torn tail; recovery cuts it.
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    assert_eq!(user_payloads(&log), vec![b"before".to_vec()]);
    log.verify().unwrap();
}

#[test]
fn every_waiting_writer_learns_of_a_failed_sync_and_none_hangs() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    // Fail a sync a little way into a burst from many threads.
    storage.fail_nth(Op::Sync, storage.count(Op::Sync) + 20);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for t in 0..16 {
            let log = &log;
            let tx = tx.clone();
            s.spawn(move || {
                let mut acked = Vec::new();
                let mut first_err = None;
                for i in 0..200 {
                    match log.append(format!("{t}-{i}").as_bytes()) {
                        Ok(r) => acked.push(r.seq),
                        Err(e) => {
                            first_err = Some(e.to_string());
                            break;
                        }
                    }
                }
                tx.send((acked, first_err)).unwrap();
            });
        }
        drop(tx);
        let mut all_acked = Vec::new();
        for _ in 0..16 {
            let (acked, err) = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("a writer hung after the failed sync");
            assert!(err.is_some(), "every writer eventually sees the failure");
            all_acked.extend(acked);
        }
        all_acked.sort_unstable();
        let head = log.head().seq;
        assert!(
            all_acked.iter().all(|&s| s <= head),
            "nothing past the head was acknowledged"
        );
    });
    drop(log);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.verify().unwrap();
}

#[test]
fn failed_background_sync_poisons_batched_log() {
    let storage = MemStorage::new();
    let log = Log::open(
        mem_dir(),
        mem_options(&storage).durability(Durability::Batched {
            max_delay: Duration::from_millis(2),
        }),
    )
    .unwrap();
    storage.fail_nth(Op::Sync, storage.count(Op::Sync) + 1);
    log.append(b"written, not yet synced").unwrap();
    // The background thread's next sync fails; from then on appends are refused.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match log.append(b"more") {
            Err(Error::Poisoned { .. }) => break,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => {
                assert!(std::time::Instant::now() < deadline, "log never poisoned");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[test]
fn failed_segment_roll_poisons_and_reopen_recovers() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage).segment_bytes_max(4096)).unwrap();
    storage.fail_nth(Op::Rename, storage.count(Op::Rename) + 1);
    let mut acked = Vec::new();
    let err = loop {
        match log.append(&[7u8; 500]) {
            Ok(r) => acked.push(r.seq),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Io { op: "rename", .. }), "{err}");
    drop(log);
    let log = Log::open(mem_dir(), mem_options(&storage).segment_bytes_max(4096)).unwrap();
    assert_eq!(user_payloads(&log).len(), acked.len());
    log.verify().unwrap();
    log.append(&[8u8; 500]).unwrap();
}
