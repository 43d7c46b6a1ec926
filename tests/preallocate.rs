//! `Options::preallocate`: the active segment is written in place into
//! zeros written ahead of it. Readers never see the zeros as records,
//! closed segments and cleanly closed logs keep none, and a crash's zero
//! tail is cut and logged like any torn tail.

mod common;
use common::*;
use std::path::Path;
use wormlog::storage::{Entries, MemStorage, Tear};
use wormlog::{Log, Options, RecordKind, Sealing};

fn prealloc() -> Options {
    // Sync, the default: each append is one write and one fdatasync.
    Options::default().preallocate(true)
}

fn active_file_len(log: &Log) -> u64 {
    let segs = log.segments().unwrap();
    let active = segs.iter().find(|s| s.active).unwrap();
    std::fs::metadata(&active.path).unwrap().len()
}

#[test]
fn preallocated_segment_is_written_in_place_ahead_of_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), prealloc()).unwrap();
    for i in 0..100 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    let segs = log.segments().unwrap();
    let end = segs.last().unwrap().bytes_uncompressed;
    let len = active_file_len(&log);
    assert!(len >= 4 << 20, "zeros written ahead: file is {len} bytes");
    assert!(end < len, "the log ends at {end}, before the file does");
    assert_eq!(user_payloads(&log).len(), 100);
    let report = log.verify().unwrap();
    assert_eq!(report.head.seq, log.head().seq);
    log.close().unwrap();
}

#[test]
fn a_cleanly_closed_preallocated_log_keeps_no_zero_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), prealloc()).unwrap();
    for i in 0..50 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    let report = reader.verify().unwrap();
    assert_eq!(report.unchecked_tail_bytes, 0);
    let seg = reader.segments().unwrap().pop().unwrap();
    assert_eq!(
        std::fs::metadata(&seg.path).unwrap().len(),
        seg.bytes_uncompressed,
        "the file ends at its last frame"
    );
    drop(reader);
    // Reopened, it neither cuts a tail nor loses a record, and goes on in place.
    let log = Log::open(dir.path(), prealloc()).unwrap();
    assert!(!all_records(&log)
        .iter()
        .any(|r| r.kind() == RecordKind::TailCut));
    log.append(b"after reopen").unwrap();
    assert_eq!(user_payloads(&log).len(), 51);
    log.close().unwrap();
}

#[test]
fn closed_segments_keep_no_zeros_and_seal() {
    let dir = tempfile::tempdir().unwrap();
    let options = prealloc()
        .segment_bytes_max(64 << 10)
        .sealing(Sealing::Manual);
    let log = Log::open(dir.path(), options).unwrap();
    for i in 0..2000 {
        log.append(format!("event {i:0>100}").as_bytes()).unwrap();
    }
    let segs = log.segments().unwrap();
    assert!(segs.len() > 3);
    for s in segs.iter().filter(|s| !s.active) {
        assert_eq!(
            std::fs::metadata(&s.path).unwrap().len(),
            s.bytes_uncompressed,
            "closed segment {} ends at its seal record",
            s.number
        );
    }
    assert!(log.seal().unwrap() >= 3);
    log.verify().unwrap();
    assert_eq!(user_payloads(&log).len(), 2000);
    log.close().unwrap();
}

fn zero_tail_len(storage: &MemStorage, seg: &Path) -> usize {
    let bytes = storage.read_file(seg).unwrap();
    bytes.iter().rev().take_while(|b| **b == 0).count()
}

#[test]
fn a_crash_leaves_a_zero_tail_that_recovery_cuts_keeping_every_record() {
    let storage = MemStorage::new();
    let options = || mem_options(&storage).preallocate(true);
    let log = Log::open(mem_dir(), options()).unwrap();
    for i in 0..30 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    let image = storage.crash_image(Tear::LoseUnsynced, 1);
    drop(log);
    let seg = segment_paths(&image, &mem_dir()).pop().unwrap();
    assert!(
        zero_tail_len(&image, &seg) > 1 << 20,
        "the crashed segment ends in the zeros written ahead"
    );
    let log = Log::open(mem_dir(), mem_options(&image).preallocate(true)).unwrap();
    let records = all_records(&log);
    let cut = records
        .iter()
        .find(|r| r.kind() == RecordKind::TailCut)
        .expect("the zero tail is cut and logged");
    match wormlog::SystemEvent::decode(cut.kind(), cut.payload())
        .unwrap()
        .unwrap()
    {
        wormlog::SystemEvent::TailCut {
            saved_as, bytes, ..
        } => {
            assert!(saved_as.is_empty(), "zeros are not saved aside");
            assert!(bytes > 1 << 20);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(user_payloads(&log).len(), 30);
    log.append(b"after the crash").unwrap();
    log.verify().unwrap();
}

#[test]
fn a_reader_of_a_live_preallocated_log_does_not_count_the_zeros_ahead_as_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), prealloc()).unwrap();
    for i in 0..20 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(reader.verify().unwrap().unchecked_tail_bytes, 0);
    // Bytes someone put among the zeros are counted, up to the last of them.
    let seg = log.segments().unwrap().pop().unwrap();
    let end = seg.bytes_uncompressed;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .unwrap();
        f.write_all_at(b"XY", end + 1000).unwrap();
    }
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(reader.verify().unwrap().unchecked_tail_bytes, 1002);
}

/// A power cut at each step of a roll of a preallocated segment, with
/// in-place writes durable and the earlier trim (ftruncate) not, or the
/// other way round: every acknowledged record survives, and the recovered
/// log verifies intact, before and after it takes more appends. Before the
/// fix, the recovery that finished the roll began the new segment with its
/// tail-cut record, and verify called the log tampered from then on.
#[test]
fn a_crash_around_a_preallocated_roll_never_reads_as_tampered() {
    let options = |s: &MemStorage| mem_options(s).preallocate(true).segment_bytes_max(16384);
    // Small records, then one large enough to roll, leaving zeros past the
    // seal record once the trim is undone.
    let payload = |i: usize| vec![b'a' + (i % 26) as u8; if i == 90 { 6000 } else { 60 }];
    let run = |crash_at: Option<u64>| {
        let storage = MemStorage::new();
        let log = Log::open(mem_dir(), options(&storage)).unwrap();
        let mut acked = Vec::new();
        for i in 0..=90 {
            if i == 90 {
                if let Some(n) = crash_at {
                    storage.crash_after(storage.mutations() + n);
                }
            }
            match log.append(&payload(i)) {
                Ok(_) => acked.push(payload(i)),
                Err(_) => break,
            }
        }
        (storage, log, acked)
    };
    let (storage, log, _) = run(None);
    assert_eq!(
        segment_paths(&storage, &mem_dir()).len(),
        2,
        "the last append rolls"
    );
    drop(log);
    for n in 0..8 {
        let (storage, log, acked) = run(Some(n));
        for seed in 0..16 {
            let fates = [
                // The data written durable, the trim before it not (ext4
                // may commit the data block before the size change).
                (Tear::KeepUnsynced, Entries::LoseUnsynced),
                (Tear::KeepPrefix, Entries::Random),
                (Tear::Sectors, Entries::Random),
                (Tear::LoseUnsynced, Entries::LoseUnsynced),
            ];
            for (tear, entries) in fates {
                let image = storage.crash_image_with(tear, entries, seed);
                let what =
                    format!("crash after {n} steps of the roll, {tear:?} {entries:?}, seed {seed}");
                let log = Log::open(mem_dir(), options(&image))
                    .unwrap_or_else(|e| panic!("{what}: open: {e}"));
                let kept = user_payloads(&log);
                assert!(
                    kept.len() >= acked.len(),
                    "{what}: lost an acknowledged record"
                );
                assert_eq!(kept[..acked.len()], acked[..], "{what}");
                log.verify()
                    .unwrap_or_else(|e| panic!("{what}: verify after recovery: {e}"));
                log.append(b"after the crash").unwrap();
                log.verify()
                    .unwrap_or_else(|e| panic!("{what}: verify after an append: {e}"));
                log.close().unwrap();
            }
        }
        drop(log);
    }
}
