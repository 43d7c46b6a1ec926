//! Feature `async`: appends complete as futures (the group-commit waiter is
//! woken, a committer thread of the log's writes and syncs), share group
//! commits with each other and with blocking appends, and fail as blocking
//! appends do. No async runtime: a tiny executor here polls the futures.
#![cfg(feature = "async")]

mod common;
use common::*;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use wormlog::storage::{MemStorage, Op};
use wormlog::{Error, Log, Options};

/// Wakes count how often the engine woke a future.
struct Counter(AtomicUsize, std::thread::Thread);
impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1.unpark();
    }
}

/// Polls every future on this one thread until all are ready; the thread
/// parks between rounds, so only a wake from the engine moves it on.
fn join_all<F: Future + Unpin>(mut futures: Vec<F>) -> (Vec<F::Output>, usize) {
    let counter = Arc::new(Counter(AtomicUsize::new(0), std::thread::current()));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    while out.iter().any(Option::is_none) {
        for (f, o) in futures.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                if let Poll::Ready(v) = Pin::new(f).poll(&mut cx) {
                    *o = Some(v);
                }
            }
        }
        if out.iter().any(Option::is_none) {
            std::thread::park_timeout(std::time::Duration::from_millis(100));
        }
    }
    (
        out.into_iter().map(Option::unwrap).collect(),
        counter.0.load(Ordering::SeqCst),
    )
}

#[test]
fn many_async_appends_from_one_thread_commit_together_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    let before = log.stats();
    let futures: Vec<_> = (0..200)
        .map(|i| log.append_async(format!("event {i}")))
        .collect();
    let (receipts, wakes) = join_all(futures);
    let seqs: Vec<u64> = receipts.iter().map(|r| r.as_ref().unwrap().seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous, in the order submitted: {seqs:?}"
    );
    let after = log.stats();
    assert!(
        after.syncs - before.syncs < 200,
        "one thread's 200 appends shared fdatasyncs: {} syncs",
        after.syncs - before.syncs
    );
    assert!(wakes >= 1, "the engine woke the executor");
    for (i, r) in receipts.iter().enumerate() {
        let r = r.as_ref().unwrap();
        assert_eq!(
            log.get(r.seq).unwrap().payload(),
            format!("event {i}").as_bytes()
        );
    }
    log.verify().unwrap();
}

#[test]
fn async_and_blocking_appends_interleave_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    let blocking = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = &log;
                s.spawn(move || {
                    (0..50)
                        .map(|i| log.append(format!("t{t} {i}").as_bytes()).unwrap().seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let futures: Vec<_> = (0..200)
            .map(|i| log.append_async(format!("a {i}")))
            .collect();
        let (async_receipts, _) = join_all(futures);
        let mut all: Vec<u64> = async_receipts.into_iter().map(|r| r.unwrap().seq).collect();
        for t in threads {
            all.extend(t.join().unwrap());
        }
        all
    });
    let mut seqs = blocking;
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 400, "every append got its own seq");
    let users = log
        .read(..)
        .unwrap()
        .filter(|r| !r.as_ref().unwrap().is_system())
        .count();
    assert_eq!(users, 400);
    log.verify().unwrap();
}

#[test]
fn a_failed_fdatasync_fails_the_async_append_and_poisons_the_log() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let (ok, _) = join_all(vec![log.append_async(b"before".to_vec())]);
    let ok = ok[0].as_ref().unwrap().seq;
    storage.fail_nth(Op::Sync, storage.count(Op::Sync) + 1);
    let (doomed, _) = join_all(vec![log.append_async(b"doomed".to_vec())]);
    assert!(
        matches!(
            doomed[0],
            Err(Error::Io {
                op: "fdatasync",
                ..
            })
        ),
        "{:?}",
        doomed[0]
    );
    let (after, _) = join_all(vec![log.append_async(b"after".to_vec())]);
    assert!(
        matches!(after[0], Err(Error::Poisoned { .. })),
        "{:?}",
        after[0]
    );
    assert_eq!(log.head().seq, ok, "nothing failed was published");
}

#[test]
fn async_reads_and_refusals_behave_as_the_blocking_calls() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().payload_bytes_max(64)).unwrap();
    let (r, _) = join_all(vec![log.append_async(b"x".repeat(65))]);
    assert!(matches!(
        r[0],
        Err(Error::PayloadTooLarge { len: 65, max: 64 })
    ));
    let (r, _) = join_all(vec![log.append_async(b"hello".to_vec())]);
    let seq = r[0].as_ref().unwrap().seq;
    let (got, _) = join_all(vec![log.get_async(seq)]);
    assert_eq!(got[0].as_ref().unwrap().payload(), b"hello");
    let (range, _) = join_all(vec![log.read_async(1..seq + 1, 100)]);
    assert_eq!(range[0].as_ref().unwrap().len() as u64, seq);
    let (first, _) = join_all(vec![log.first_at_or_after_async(0)]);
    assert_eq!(first[0].as_ref().unwrap().as_ref().unwrap().seq(), 1);
    // Futures own what they need: they can move to another thread.
    fn send_static<T: Send + 'static>(_: &T) {}
    let f = log.append_async(b"moved".to_vec());
    send_static(&f);
    send_static(&log.get_async(1));
    let (r, _) = join_all(vec![f]);
    assert!(r[0].is_ok());
    let ro = Log::open_read_only(dir.path(), Options::default()).unwrap();
    let (r, _) = join_all(vec![ro.append_async(b"no".to_vec())]);
    assert!(matches!(r[0], Err(Error::ReadOnly { .. })));
}

/// Features `async` and `serde` together (issue 27: typed + async is the
/// backend developer's first combination, and neither existed): typed
/// events appended as futures, read back a page at a time on the read
/// pool, engine records skipped; decoding an engine record says so.
#[cfg(feature = "serde")]
#[test]
fn typed_events_append_and_read_back_asynchronously() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Login {
        actor: String,
    }
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    let (one, _) = join_all(vec![log.append_json_async(&Login { actor: "a".into() })]);
    let more =
        log.append_json_batch_async(&[Login { actor: "b".into() }, Login { actor: "c".into() }]);
    let (more, _) = join_all(vec![Box::pin(more.batch())]);
    let mut receipts = vec![one[0].as_ref().unwrap().seq];
    receipts.extend(more[0].as_ref().unwrap().iter().map(|r| r.seq));
    assert_eq!(receipts.len(), 3);
    // Pages of 2 records looked at: engine records (log created, opened)
    // count against the page but are not events.
    let mut got = Vec::new();
    let mut from = 1;
    loop {
        let (page, next) = join_all(vec![log.events_async::<Login>(from..u64::MAX, 2)])
            .0
            .pop()
            .unwrap()
            .unwrap();
        got.extend(page.into_iter().map(|e| e.data.actor));
        match next {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(got, ["a", "b", "c"]);
    let engine_record = log.get(1).unwrap();
    let e = wormlog::json::decode::<Login>(&engine_record).unwrap_err();
    assert!(e.to_string().contains("an engine record"), "{e}");
}

/// Proved appends from async code: each future completes with receipts
/// and proofs that verify offline and bind their payloads.
#[test]
fn proved_appends_from_async_code_complete_with_proofs_that_bind_their_payloads() {
    let key = wormlog::CheckpointKey::generate("audit.example/log").unwrap();
    let public = key.public();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().proofs(key)).unwrap();
    let batches: Vec<Vec<Vec<u8>>> = (0..8)
        .map(|i| (0..3).map(|j| format!("{i}/{j}").into_bytes()).collect())
        .collect();
    let futures = batches
        .iter()
        .map(|b| log.append_batch_proved_async(b.clone()))
        .collect();
    let (done, _) = join_all(futures);
    for (batch, proved) in batches.iter().zip(done) {
        let proved = proved.unwrap();
        for (payload, p) in batch.iter().zip(&proved) {
            let leaf = p.proof.verify(&public).unwrap();
            assert!(leaf.binds_payload(payload));
            assert_eq!(log.get(leaf.seq).unwrap().payload(), &payload[..]);
        }
    }
}
