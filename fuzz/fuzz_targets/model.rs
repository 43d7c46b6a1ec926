//! The engine against a plain model, on the in-memory storage: the input is
//! a program of appends, batches, syncs, crashes (with a chosen tear),
//! reopens, seals and verifications. After every step: no acknowledged
//! record is lost, reads equal the model, verification passes, and a
//! read-only follower, refreshed, holds a prefix of the model that never
//! shrinks (and all of it once the writer has synced).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Durability, Log, Options, Sealing};

fn options(storage: &MemStorage, durability: Durability) -> Options {
    Options::default()
        .storage(Arc::new(storage.clone()))
        .sealing(Sealing::Inline)
        .segment_bytes_max(4096)
        .seal_frame_bytes(4096)
        .durability(durability)
}

fn user_records(log: &Log) -> Vec<Vec<u8>> {
    log.read(..)
        .unwrap()
        .map(|r| r.expect("reads back"))
        .filter(|r| !r.is_system())
        .map(|r| r.payload().to_vec())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("/log");
    let durability = match data.first().copied().unwrap_or(0) % 3 {
        0 => Durability::Sync,
        1 => Durability::Buffered,
        _ => Durability::Batched {
            max_delay: std::time::Duration::from_secs(3600),
        },
    };
    let mut storage = MemStorage::new();
    let mut log = Some(Log::open(dir, options(&storage, durability)).unwrap());
    let mut reader = Log::open_read_only(dir, options(&storage, durability)).unwrap();
    let mut followed = 0usize;
    // The model: every record appended so far, and how many are durable.
    let mut appended: Vec<Vec<u8>> = Vec::new();
    let mut durable = 0usize;
    let mut acked = 0usize;
    let mut ops = data.get(1..).unwrap_or_default().chunks(2);
    for (step, op) in ops.by_ref().enumerate().take(64) {
        let (code, arg) = (op[0], *op.get(1).unwrap_or(&0));
        let Some(l) = log.as_ref() else { break };
        match code % 8 {
            0 | 1 => {
                let p = vec![step as u8; arg as usize * 3];
                appended.push(p.clone());
                l.append(&p).unwrap();
                acked = appended.len();
            }
            2 => {
                let batch: Vec<Vec<u8>> = (0..arg % 5 + 1).map(|i| vec![i; arg as usize]).collect();
                appended.extend(batch.iter().cloned());
                l.append_batch(&batch).unwrap();
                acked = appended.len();
            }
            3 => {
                l.sync().unwrap();
                durable = acked;
            }
            4 => {
                // Crash: the process dies, the disk keeps what a power cut leaves.
                if durability == Durability::Sync {
                    durable = acked;
                }
                let tear = [
                    Tear::LoseUnsynced,
                    Tear::KeepUnsynced,
                    Tear::KeepPrefix,
                    Tear::Sectors,
                ][arg as usize % 4];
                storage.crash_after(storage.mutations());
                drop(log.take());
                storage = storage.crash_image(tear, u64::from(arg));
                let reopened =
                    Log::open(dir, options(&storage, durability)).expect("reopens after a crash");
                reader = Log::open_read_only(dir, options(&storage, durability)).unwrap();
                followed = 0;
                let got = user_records(&reopened);
                assert!(got.len() >= durable, "lost a durable record");
                assert_eq!(&got[..], &appended[..got.len()], "not a prefix");
                appended.truncate(got.len());
                acked = got.len();
                durable = got.len();
                log = Some(reopened);
            }
            5 => {
                l.seal().unwrap();
                durable = acked;
            }
            6 => {
                l.verify().expect("verifies");
            }
            _ => {
                drop(log.take());
                if durability == Durability::Sync {
                    durable = acked;
                }
                let reopened = Log::open(dir, options(&storage, durability)).unwrap();
                durable = durable.max(acked); // a clean close syncs
                log = Some(reopened);
            }
        }
        if let Some(l) = log.as_ref() {
            assert_eq!(user_records(l), appended, "reads equal the model");
        }
        reader.refresh().expect("a follower keeps up");
        let seen = user_records(&reader);
        assert!(seen.len() >= followed, "the follower's view shrank");
        assert_eq!(
            &seen[..],
            &appended[..seen.len()],
            "the follower holds a prefix"
        );
        if code % 8 == 3 || code % 8 == 5 {
            assert_eq!(
                seen.len(),
                appended.len(),
                "synced records reach the follower"
            );
        }
        followed = seen.len();
    }
    if let Some(l) = log.as_ref() {
        l.verify().expect("verifies at the end");
    }
    let _ = durable;
});
