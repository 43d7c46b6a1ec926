//! The engine against a plain model, on the in-memory storage: the input is
//! a program of appends, batches, syncs, crashes (with a chosen tear),
//! reopens, seals, verifications, and armed I/O failures (the n-th write,
//! fdatasync, rename, create, unlink or directory fsync from now fails, as
//! a countdown-failing backend does in redb's fuzzer). After every step: no
//! acknowledged record is lost, reads hold every acknowledged record and
//! nothing that was not appended, verification passes, and a read-only
//! follower, refreshed, holds a prefix of the model that never shrinks (and
//! all of it once the writer has synced). A failed append is not
//! acknowledged and poisons the log: it refuses writes until reopened.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;
use wormlog::storage::{MemStorage, Op, Tear};
use wormlog::{Durability, Error, Log, Options, Sealing};

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

/// Only an armed failure (`tripped`: one that fired since the log was
/// opened) may make a call fail; from then on the log may refuse
/// everything. Says whether the call succeeded.
fn check(
    storage: &MemStorage,
    armed: Option<(Op, u64)>,
    tripped: bool,
    failed: &mut bool,
    r: Result<(), Error>,
) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            assert!(
                tripped || fired(storage, armed),
                "failed with no failure armed: {e}"
            );
            *failed = true;
            false
        }
    }
}

fn fired(storage: &MemStorage, armed: Option<(Op, u64)>) -> bool {
    armed.is_some_and(|(op, n)| storage.count(op) >= n)
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
    // The model: every record appended so far (the last may be from a failed
    // append, neither acknowledged nor surely lost), how many were
    // acknowledged, and how many are durable.
    let mut appended: Vec<Vec<u8>> = Vec::new();
    let mut durable = 0usize;
    let mut acked = 0usize;
    // The one armed failure (operation, call number), and whether the log
    // has failed since it was last opened.
    let mut armed: Option<(Op, u64)> = None;
    let mut failed = false;
    let mut tripped = false;
    let mut ops = data.get(1..).unwrap_or_default().chunks(2);
    for (step, op) in ops.by_ref().enumerate().take(64) {
        let (code, arg) = (op[0], *op.get(1).unwrap_or(&0));
        let Some(l) = log.as_ref() else { break };
        let mut ok = true;
        match code % 10 {
            0..=2 => {
                let batch: Vec<Vec<u8>> = if code % 10 == 2 {
                    (0..arg % 5 + 1).map(|i| vec![i; arg as usize]).collect()
                } else {
                    vec![vec![step as u8; arg as usize * 3]]
                };
                let was_failed = failed;
                let result = l.append_batch(&batch).map(drop);
                // Refused whole by a poisoned log: nothing of it written.
                let refused = matches!(result, Err(Error::Poisoned { .. }));
                ok = check(&storage, armed, tripped, &mut failed, result);
                if ok {
                    appended.truncate(acked);
                    appended.extend(batch);
                    acked = appended.len();
                } else if !refused {
                    // Maybe written, never acknowledged. Also after an
                    // earlier failure: a failed seal (a directory sync,
                    // say) does not poison the log, so this append's
                    // records may have been written before its own failure,
                    // and a clean close may make them durable. (Records
                    // past `acked` are only ever from a failed append,
                    // which poisons: so here there are none to keep.)
                    appended.truncate(acked);
                    appended.extend(batch);
                    if !was_failed {
                        let refused = l.append(b"after a failure").unwrap_err();
                        assert!(
                            matches!(refused, Error::Poisoned { .. }),
                            "a failed append poisons the log: {refused}"
                        );
                    }
                }
            }
            3 => {
                ok = check(&storage, armed, tripped, &mut failed, l.sync());
                if ok {
                    durable = acked;
                }
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
                armed = None;
            }
            5 => {
                ok = check(&storage, armed, tripped, &mut failed, l.seal().map(drop));
                if ok && !failed {
                    durable = acked;
                }
            }
            6 if !failed => {
                l.verify().expect("verifies");
            }
            6 => {}
            7 => {
                drop(log.take());
                if durability == Durability::Sync {
                    durable = acked;
                }
                // A clean close syncs, unless the log failed (the close
                // too), or a failure fired where no call returned it (the
                // Buffered flush thread's write) and poisoned it.
                if !failed && !tripped && !fired(&storage, armed) {
                    durable = acked;
                }
            }
            _ if armed.is_none() || fired(&storage, armed) => {
                // A failure may fire where no call returns it (a close, a
                // background sync); the log may refuse writes from then on.
                tripped |= fired(&storage, armed);
                let op = [
                    Op::Append,
                    Op::Sync,
                    Op::Rename,
                    Op::Create,
                    Op::SyncDir,
                    Op::Remove,
                ][arg as usize % 6];
                let n = storage.count(op) + 1 + u64::from(arg / 6 % 4);
                storage.fail_nth(op, n);
                armed = Some((op, n));
            }
            _ => {}
        }
        if log.is_none() {
            // Reopen (after a crash or a close); the armed failure may fail
            // the first attempt, never the second.
            let reopened = Log::open(dir, options(&storage, durability))
                .or_else(|e| {
                    assert!(fired(&storage, armed), "open failed: {e}");
                    Log::open(dir, options(&storage, durability))
                })
                .expect("reopens");
            reader = Log::open_read_only(dir, options(&storage, durability)).unwrap();
            followed = 0;
            let got = user_records(&reopened);
            assert!(got.len() >= durable, "lost a durable record");
            assert_eq!(&got[..], &appended[..got.len()], "not a prefix");
            appended.truncate(got.len());
            acked = got.len();
            durable = got.len();
            failed = false;
            tripped = false;
            if fired(&storage, armed) {
                armed = None;
            }
            log = Some(reopened);
        }
        if let Some(l) = log.as_ref() {
            let got = user_records(l);
            // A failed fdatasync may drop pages of acknowledged records
            // that were not durable yet (Batched), and a failed write the
            // records Buffered held in its buffer (the write may fire in a
            // read, which writes the buffer first, or in the flush thread).
            let kept = if failed || tripped || fired(&storage, armed) {
                durable
            } else {
                acked
            };
            assert!(got.len() >= kept, "reads lack an acknowledged record");
            assert_eq!(&got[..], &appended[..got.len()], "reads hold the model");
        }
        if tripped || fired(&storage, armed) {
            // Unsynced pages the failure dropped may have been seen by the
            // follower, which then rightly reports that the log shrank.
            continue;
        }
        reader.refresh().expect("a follower keeps up");
        let seen = user_records(&reader);
        assert!(seen.len() >= followed, "the follower's view shrank");
        assert_eq!(
            &seen[..],
            &appended[..seen.len()],
            "the follower holds a prefix"
        );
        if ok && !failed && (code % 10 == 3 || code % 10 == 5) {
            assert_eq!(seen.len(), acked, "synced records reach the follower");
        }
        followed = seen.len();
    }
    if let Some(l) = log.as_ref() {
        if !failed {
            l.verify().expect("verifies at the end");
        }
    }
    let _ = durable;
});
