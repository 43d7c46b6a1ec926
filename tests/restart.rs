//! Records survive close and reopen; the chain verifies; seqs continue.

mod common;
use common::*;
use wormlog::storage::MemStorage;
use wormlog::{Durability, Error, Log, Options, RecordKind, SystemEvent};

/// Appends, closes, reopens: everything reads back, the chain verifies, and
/// appends continue at the next seq.
fn restart_round_trip(dir: &std::path::Path, opts: Options) {
    let mut receipts = Vec::new();
    {
        let log = Log::open(dir, opts.clone()).unwrap();
        for i in 0..100u32 {
            receipts.push(log.append(format!("event {i}").as_bytes()).unwrap());
        }
        receipts.extend(log.append_batch(&[b"a".as_slice(), b"b", b"c"]).unwrap());
    }
    let log = Log::open(dir, opts.clone()).unwrap();
    for (i, r) in receipts.iter().enumerate() {
        let rec = log.get(r.seq).unwrap();
        assert_eq!(rec.hash(), &r.hash);
        assert_eq!(rec.timestamp(), r.timestamp_ns);
        if i < 100 {
            assert_eq!(rec.payload(), format!("event {i}").as_bytes());
        }
    }
    let report = log.verify().unwrap();
    assert_eq!(report.head, log.head());
    // Created, Opened, 103 user records, Closed, Opened.
    assert_eq!(report.records, 107);
    let next = log.append(b"after reopen").unwrap();
    assert_eq!(next.seq, log.head().seq);
    assert_eq!(
        next.seq,
        receipts.last().unwrap().seq + 3,
        "closed + opened in between"
    );
    let kinds: Vec<RecordKind> = all_records(&log).iter().map(|r| r.kind()).collect();
    assert_eq!(kinds[0], RecordKind::LogCreated);
    assert_eq!(kinds[1], RecordKind::LogOpened);
    assert_eq!(kinds[105], RecordKind::LogClosed);
    assert_eq!(kinds[106], RecordKind::LogOpened);
}

#[test]
fn records_read_back_after_reopen_and_appends_continue_at_next_seq() {
    let dir = tempfile::tempdir().unwrap();
    restart_round_trip(dir.path(), Options::default());
}

#[test]
fn records_read_back_after_reopen_on_in_memory_storage() {
    restart_round_trip(&mem_dir(), mem_options(&MemStorage::new()));
}

#[test]
fn batch_gets_contiguous_seqs() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let rs = log
        .append_batch(&[b"1".as_slice(), b"2", b"3", b"4"])
        .unwrap();
    for w in rs.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
        assert_eq!(
            w[1].timestamp_ns, w[0].timestamp_ns,
            "one group, one commit time"
        );
    }
}

#[test]
fn segments_roll_and_the_chain_continues_across_them() {
    let storage = MemStorage::new();
    let opts = mem_options(&storage).segment_bytes_max(4096);
    let payloads: Vec<Vec<u8>> = (0..500)
        .map(|i| format!("record number {i}").into_bytes())
        .collect();
    {
        let log = Log::open(mem_dir(), opts.clone()).unwrap();
        for p in &payloads {
            log.append(p).unwrap();
        }
        assert!(segment_paths(&storage, &mem_dir()).len() > 5);
        log.verify().unwrap();
    }
    let log = Log::open(mem_dir(), opts).unwrap();
    assert_eq!(user_payloads(&log), payloads);
    let report = log.verify().unwrap();
    assert_eq!(
        report.segments as usize,
        segment_paths(&storage, &mem_dir()).len()
    );
    let rolled = all_records(&log)
        .iter()
        .filter(|r| r.kind() == RecordKind::SegmentRolled)
        .count();
    assert_eq!(
        rolled + 1,
        report.segments as usize,
        "every segment but the first says it rolled"
    );
    // Every seq reads back by number, also from closed segments.
    for seq in 1..=log.head().seq {
        assert_eq!(log.get(seq).unwrap().seq(), seq);
    }
}

#[test]
fn time_lookup_finds_first_record_at_or_after() {
    let storage = MemStorage::new();
    let now = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1_000));
    let clock = now.clone();
    let opts = mem_options(&storage)
        .segment_bytes_max(4096)
        .clock(std::sync::Arc::new(move || {
            clock.load(std::sync::atomic::Ordering::SeqCst)
        }));
    let log = Log::open(mem_dir(), opts).unwrap();
    let mut receipts = Vec::new();
    for i in 0..300u64 {
        now.store(10_000 + i * 10, std::sync::atomic::Ordering::SeqCst);
        receipts.push(log.append(format!("{i}").as_bytes()).unwrap());
    }
    // The answer is the first record (user or engine) whose time is >= t:
    // its own time is >= t, and the record before it is earlier than t.
    let check = |t: u64, want_at_most: u64| {
        let got = log.first_at_or_after(t).unwrap().unwrap();
        assert!(got.timestamp() >= t);
        assert!(
            got.seq() <= want_at_most,
            "t={t}: got seq {} past {want_at_most}",
            got.seq()
        );
        if got.seq() > 1 {
            assert!(
                log.get(got.seq() - 1).unwrap().timestamp() < t,
                "t={t}: not the first"
            );
        }
    };
    for r in &receipts {
        check(r.timestamp_ns, r.seq);
        check(r.timestamp_ns - 5, r.seq);
    }
    assert!(log.first_at_or_after(u64::MAX).unwrap().is_none());
    assert_eq!(log.first_at_or_after(0).unwrap().unwrap().seq(), 1);
}

#[test]
fn timestamps_never_go_backward_when_the_clock_does() {
    let storage = MemStorage::new();
    let now = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(5_000_000));
    let clock = now.clone();
    let opts = mem_options(&storage).clock(std::sync::Arc::new(move || {
        clock.load(std::sync::atomic::Ordering::SeqCst)
    }));
    let log = Log::open(mem_dir(), opts).unwrap();
    let a = log.append(b"a").unwrap();
    now.store(1_000, std::sync::atomic::Ordering::SeqCst); // the clock jumps back
    let b = log.append(b"b").unwrap();
    assert!(b.timestamp_ns >= a.timestamp_ns);
    log.verify().unwrap();
}

#[test]
fn empty_payload_is_a_valid_record() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let r = log.append(b"").unwrap();
    assert!(log.get(r.seq).unwrap().payload().is_empty());
    log.verify().unwrap();
}

#[test]
fn oversized_payload_is_refused_and_nothing_is_written() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage).payload_bytes_max(1000)).unwrap();
    let head = log.head();
    let err = log.append(&[7u8; 1001]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PayloadTooLarge {
                len: 1001,
                max: 1000
            }
        ),
        "{err}"
    );
    let err = log
        .append_batch(&[vec![1u8; 10], vec![2u8; 1001]])
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err}");
    assert_eq!(log.head(), head, "a refused append leaves no trace");
    assert!(
        log.append(&[7u8; 1000]).is_ok(),
        "the limit itself is allowed"
    );
}

#[test]
fn payload_limit_above_format_limit_is_an_invalid_option() {
    let err = Log::open(
        mem_dir(),
        mem_options(&MemStorage::new()).payload_bytes_max(1 << 30),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidOptions(_)), "{err}");
}

#[test]
fn missing_directory_is_created_or_refused_as_configured() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("a/b/audit");
    let err = Log::open(&dir, Options::default().create_if_missing(false)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(!dir.exists());
    let log = Log::open(&dir, Options::default()).unwrap();
    log.append(b"x").unwrap();
    assert!(dir.is_dir());
}

#[test]
fn unwritable_directory_is_an_io_error_naming_the_path() {
    let base = tempfile::tempdir().unwrap();
    let file = base.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = Log::open(file.join("audit"), Options::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(msg.contains("plain-file"), "{msg}");
    let err = Log::open(&file, Options::default()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn second_writer_gets_locked_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    let err = Log::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"));
    drop(log);
    Log::open(dir.path(), Options::default()).expect("lock released on close");
}

#[test]
fn second_writer_in_another_process_gets_locked_error() {
    // flock locks belong to the open file description, so a child process
    // (which is what "another writer" usually is) is refused the same way.
    let dir = tempfile::tempdir().unwrap();
    let _log = Log::open(dir.path(), Options::default()).unwrap();
    let out = std::process::Command::new("flock")
        .args(["-n", "-x"])
        .arg(dir.path().join("wormlog.lock"))
        .arg("true")
        .output()
        .expect("flock(1) must be installed (.ci/run installs util-linux)");
    assert!(!out.status.success(), "flock(1) took a lock the log holds");
}

#[test]
fn system_records_decode() {
    let storage = MemStorage::new();
    let log = Log::open(
        mem_dir(),
        mem_options(&storage).durability(Durability::Buffered),
    )
    .unwrap();
    let recs = all_records(&log);
    match recs[0].system_event().unwrap().unwrap() {
        SystemEvent::LogCreated { log_id, .. } => assert_eq!(log_id, log.log_id()),
        other => panic!("first record is {other:?}"),
    }
    assert!(matches!(
        recs[1].system_event().unwrap().unwrap(),
        SystemEvent::LogOpened {
            durability: Durability::Buffered,
            ..
        }
    ));
}

#[test]
fn each_open_records_the_durability_it_acknowledges_under() {
    let storage = MemStorage::new();
    let modes = [
        Durability::Sync,
        Durability::Batched {
            max_delay: std::time::Duration::from_millis(7),
        },
        Durability::Buffered,
    ];
    for mode in modes {
        let log = Log::open(mem_dir(), mem_options(&storage).durability(mode)).unwrap();
        log.append(b"x").unwrap();
        log.close().unwrap();
    }
    let log = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let recorded: Vec<Durability> = all_records(&log)
        .iter()
        .filter_map(|r| match r.system_event()?.unwrap() {
            SystemEvent::LogOpened { durability, .. } => Some(durability),
            _ => None,
        })
        .collect();
    assert_eq!(recorded, modes);
}

#[test]
fn every_rolled_segment_names_the_durability_in_its_first_record() {
    let storage = MemStorage::new();
    let mode = Durability::Batched {
        max_delay: std::time::Duration::from_millis(3),
    };
    let log = Log::open(
        mem_dir(),
        mem_options(&storage)
            .durability(mode)
            .segment_bytes_max(8 << 10),
    )
    .unwrap();
    for i in 0..400u32 {
        log.append(&i.to_le_bytes().repeat(16)).unwrap();
    }
    let segments = log.segments().unwrap();
    assert!(segments.len() > 3);
    for s in &segments[1..] {
        let first = log.get(s.first_seq).unwrap();
        match first.system_event().unwrap().unwrap() {
            SystemEvent::SegmentRolled { durability, .. } => assert_eq!(durability, mode),
            other => panic!("segment {} begins with {other:?}", s.number),
        }
    }
}

#[test]
fn a_closed_log_reopens_at_once_while_other_threads_spawn_processes() {
    // A child being spawned holds copies of the parent's descriptors until
    // its exec; closing the log must release the lock all the same, or a
    // reopen at that moment fails with Locked.
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawners: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::process::Command::new("true").status();
                }
            })
        })
        .collect();
    let result = (0..300).try_for_each(|i| {
        let log =
            Log::open(dir.path(), Options::default()).map_err(|e| format!("open {i}: {e}"))?;
        drop(log);
        Ok::<(), String>(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spawners {
        s.join().unwrap();
    }
    result.unwrap();
}
