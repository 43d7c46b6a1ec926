//! Every public `Log` call, in every durability mode, with and without
//! forward-secure sealing, automatic checkpoints (the tree's signer) and
//! shipping, from two threads at once: none may hang. Each combination runs
//! under a watchdog that fails the test (rather than hanging CI) when the
//! calls do not finish. `Log::setup_sealing` on a Buffered log deadlocked
//! before its fix (it locked the writer twice).

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use wormlog::format::RetentionRule;
use wormlog::{CheckpointKey, Durability, FileSink, Log, Options, Sealing, Shipper, Shipping};

/// A shipper that copies nothing and calls every sealed file shipped, so
/// retention never waits on it.
#[derive(Debug)]
struct EveryFileShipped;

impl Shipper for EveryFileShipped {
    fn ship(
        &self,
        _dir: &Path,
        _policy: Option<&RetentionRule>,
        _stop: &dyn Fn() -> bool,
    ) -> wormlog::Result<usize> {
        Ok(0)
    }
    fn shipped_files(&self, dir: &Path) -> wormlog::Result<Vec<String>> {
        let names = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        Ok(names)
    }
}

/// Every public call that takes `&self`, once; errors are fine (a read-only
/// call on a busy log may race a seal), hanging is not.
fn every_call(log: &Log, who: usize) {
    let r = log.append(format!("thread {who}").as_bytes());
    assert!(r.is_ok(), "append: {r:?}");
    let _ = log.append_batch(&[b"a".as_slice(), b"b".as_slice()]);
    let _ = log.head();
    let _ = log.stats();
    let _ = log.segments();
    let _ = log.anchor_entries();
    let _ = log.cache_stats();
    let _ = log.get(1);
    let _ = log.read(..).map(|it| it.count());
    let _ = log.first_at_or_after(0);
    let _ = log.sync();
    let _ = log.seal();
    let _ = log.ship_status();
    let _ = log.retention_policy();
    let _ = log.retention_plan(0);
    let _ = log.apply_retention(0);
    let _ = log.set_legal_hold("matrix");
    let _ = log.legal_hold();
    let _ = log.clear_legal_hold();
    let _ = log.record_access("matrix", "every call", "lock order");
    let _ = log.foreign_files();
    let _ = log.seal_error();
    let _ = log.checkpoint_error();
    let _ = log.tree_head();
    let _ = log.checkpoint();
    let _ = log.prove_inclusion(1, log.head().seq);
    let _ = log.prove_consistency(1, log.head().seq);
    let _ = log.verify();
    // One of the two threads sets sealing up; the other is refused.
    let _ = log.setup_sealing(Duration::from_millis(50));
    let _ = log.ship_now();
    let _ = log.refresh();
    let _ = log.append(b"last");
}

fn run_combination(durability: Durability, fss: bool, checkpoints: bool, shipping: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default()
        .durability(durability)
        .segment_bytes_max(4096)
        .sealing(Sealing::Background);
    if checkpoints {
        let sink = Arc::new(FileSink {
            path: dir.path().join("notes"),
        });
        options = options.auto_checkpoints(
            CheckpointKey::generate("matrix").unwrap(),
            Duration::from_millis(5),
            sink,
        );
    }
    if shipping {
        options =
            options.shipping(Shipping::new(EveryFileShipped).interval(Duration::from_millis(5)));
    }
    let log = Arc::new(Log::open(dir.path().join("log"), options).unwrap());
    if fss {
        log.setup_sealing(Duration::from_millis(20)).unwrap();
    }
    let (done, finished) = mpsc::channel();
    let mut threads = Vec::new();
    for who in 0..2 {
        let (log, done) = (log.clone(), done.clone());
        threads.push(std::thread::spawn(move || {
            for _ in 0..3 {
                every_call(&log, who);
            }
            done.send(()).unwrap();
        }));
    }
    let what = format!("{durability:?} fss={fss} checkpoints={checkpoints} shipping={shipping}");
    for _ in 0..2 {
        // A hang is a failure, not a stuck CI run.
        finished
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("public calls hung: {what}"));
    }
    for t in threads {
        t.join().unwrap();
    }
    let log = Arc::try_unwrap(log).unwrap();
    log.close().unwrap_or_else(|e| panic!("close: {what}: {e}"));
}

#[test]
fn no_public_call_hangs_in_any_mode() {
    let modes = [
        Durability::Sync,
        Durability::Batched {
            max_delay: Duration::from_millis(2),
        },
        Durability::Buffered,
    ];
    for durability in modes {
        for fss in [false, true] {
            for checkpoints in [false, true] {
                for shipping in [false, true] {
                    run_combination(durability, fss, checkpoints, shipping);
                }
            }
        }
    }
}

#[test]
fn setup_sealing_on_a_buffered_log_returns() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        Options::default().durability(Durability::Buffered),
    )
    .unwrap();
    log.append(b"waits in the buffer").unwrap();
    let log = Arc::new(log);
    let (done, finished) = mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        done.send(l.setup_sealing(Duration::from_secs(60)).map(|_| ()))
            .unwrap();
    });
    let r = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("setup_sealing hung on a Buffered log");
    r.unwrap();
}
