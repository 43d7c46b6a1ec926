//! An insider with write access to the log directory tries to hide, drop or
//! rewrite history (issue 11). Each test is one attack, and asserts that
//! verification (or the engine) catches it. Attacks that need a chain
//! rewritten with every hash recomputed are out of reach of a verifier
//! without a secret or a checkpoint kept elsewhere; tests/tamper.rs and
//! tests/checkpoint.rs cover those.

mod common;
use common::*;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wormlog::format::{
    anchor_genesis, encode_anchor_header, AnchorEntry, DroppedSegment, RecordKind, SystemEvent,
};
use wormlog::storage::MemStorage;
use wormlog::{Corruption, Error, Hash, Log, Options, Retention, Sealing, SegmentInfo};

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * SEC;
const T0: u64 = 1_800_000_000 * SEC;

fn opts(storage: &MemStorage, clock: wormlog::Clock) -> Options {
    mem_options(storage)
        .sealing(Sealing::Inline)
        .segment_bytes_max(8 << 10)
        .seal_frame_bytes(4096)
        .clock(clock)
}

/// A log of several sealed segments, one record a second from T0.
fn written(options: Options, records: u64) -> Log {
    let log = Log::open(mem_dir(), options).unwrap();
    for i in 0..records {
        log.append(format!("audit event {i:05} with some padding to fill segments").as_bytes())
            .unwrap();
    }
    assert!(log.segments().unwrap().len() >= 5, "enough segments");
    log
}

fn anchor_path() -> PathBuf {
    mem_dir().join("wormlog.anchor")
}

fn hold_path() -> PathBuf {
    mem_dir().join("wormlog.hold")
}

/// The anchor entry a forger would write for dropping `segs` (the oldest
/// segments), computed from what the segments themselves say.
fn forged_entry(segs: &[SegmentInfo], keep: &SegmentInfo, prev_entry_hash: Hash) -> AnchorEntry {
    AnchorEntry {
        time_ns: T0 + DAY,
        first_seq: keep.first_seq,
        prev_hash: segs.last().unwrap().last_hash,
        prev_entry_hash,
        dropped: segs
            .iter()
            .map(|s| DroppedSegment {
                segment: s.number,
                first_seq: s.first_seq,
                last_seq: s.last_seq,
                last_hash: s.last_hash,
            })
            .collect(),
        ext: None,
    }
}

/// Verified by a reader whose clock reads the log's future (the log is
/// written at T0, which may lie ahead of the machine's clock: a verifier
/// judges drops no later than its own now).
fn verify_read_only(storage: &MemStorage) -> wormlog::Result<wormlog::VerifyReport> {
    let later: wormlog::Clock = std::sync::Arc::new(|| T0 + 1000 * DAY);
    Log::open_read_only(mem_dir(), mem_options(storage).clock(later))?.verify()
}

fn assert_anchor_error(r: wormlog::Result<wormlog::VerifyReport>, what: &str) {
    match r {
        Err(Error::Corrupt {
            what: Corruption::Anchor { detail },
            ..
        }) => eprintln!("{what}: caught: {detail}"),
        other => panic!("{what}: expected an anchor error, got {other:?}"),
    }
}

#[test]
fn oldest_segments_deleted_behind_a_forged_anchor_fail_verification_even_with_a_checkpoint() {
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let log = written(opts(&storage, clock), 600);
    let checkpoint = log.checkpoint().unwrap();
    let segs = log.segments().unwrap();
    log.close().unwrap();
    // The forger deletes segments 1..=2 (log-created included) and writes a
    // well-formed anchor entry for them.
    let (gone, keep) = (&segs[..2], &segs[2]);
    let log_id = Log::open_read_only(mem_dir(), mem_options(&storage))
        .unwrap()
        .log_id();
    let entry = forged_entry(gone, keep, anchor_genesis(&log_id));
    let mut anchor = encode_anchor_header(&log_id).to_vec();
    anchor.extend_from_slice(&entry.encode());
    storage.write_file(&anchor_path(), anchor);
    for s in gone {
        assert!(storage.delete_file(&s.path));
    }
    assert_anchor_error(verify_read_only(&storage), "forged anchor");
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert!(reader.verify_against(&checkpoint).is_err());
}

#[test]
fn a_forged_entry_appended_to_a_real_anchor_cannot_hide_a_deleted_segment_or_its_hold() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let policy = Retention::default().max_age(Duration::from_secs(60));
    let options = opts(&storage, clock).retention(policy);
    let log = Log::open(mem_dir(), options.clone()).unwrap();
    for i in 0..300u64 {
        now.store(T0 + i * SEC, Ordering::SeqCst);
        log.append(format!("before the run {i:05} with padding to fill").as_bytes())
            .unwrap();
    }
    let run = log.apply_retention(T0 + 300 * SEC).unwrap();
    assert!(!run.dropped_segments.is_empty());
    // A hold is set and cleared in the next segments; the forger wants the
    // segment that holds the hold-set record gone.
    log.set_legal_hold("case 17").unwrap();
    for i in 0..200u64 {
        log.append(format!("after the run {i:05} with padding to fill").as_bytes())
            .unwrap();
    }
    log.clear_legal_hold().unwrap();
    for i in 0..200u64 {
        log.append(format!("later still {i:05} with padding to fill").as_bytes())
            .unwrap();
    }
    let segs = log.segments().unwrap();
    let anchor_entries = log.anchor_entries().unwrap();
    log.close().unwrap();
    verify_read_only(&storage).expect("the honest log verifies");
    // Forge: append an entry dropping the oldest remaining segment, which
    // holds the retention record and the hold-set record, and delete it.
    let (gone, keep) = (&segs[..1], &segs[1]);
    let prev = anchor_entries.last().unwrap().hash();
    let mut bytes = storage.read_file(&anchor_path()).unwrap();
    bytes.extend_from_slice(&forged_entry(gone, keep, prev).encode());
    storage.write_file(&anchor_path(), bytes);
    assert!(storage.delete_file(&gone[0].path));
    assert_anchor_error(verify_read_only(&storage), "forged appended entry");
}

#[test]
fn a_deleted_hold_file_fails_verification_and_the_writer_restores_it_so_retention_stays_held() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let policy = Retention::default().max_age(Duration::from_secs(60));
    let options = opts(&storage, clock).retention(policy);
    let log = written(options.clone(), 600);
    log.set_legal_hold("litigation 2026-4").unwrap();
    log.close().unwrap();
    assert!(
        storage.delete_file(&hold_path()),
        "the insider removes the hold file"
    );
    match verify_read_only(&storage) {
        Err(Error::Corrupt {
            what: Corruption::HoldMismatch { .. },
            path,
            ..
        }) => assert_eq!(path, hold_path()),
        other => panic!("expected a hold mismatch, got {other:?}"),
    }
    // The chain is the truth: a writer puts the file back, and retention
    // (which would drop every segment by age) drops nothing.
    now.store(T0 + 700 * SEC, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options).unwrap();
    assert_eq!(
        log.legal_hold().unwrap().as_deref(),
        Some("litigation 2026-4")
    );
    let r = log.apply_retention(T0 + 700 * SEC).unwrap();
    assert!(r.held && r.dropped_segments.is_empty(), "{r:?}");
    log.verify().unwrap();
}

#[test]
fn a_rewritten_hold_file_fails_verification() {
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let log = written(opts(&storage, clock), 600);
    log.set_legal_hold("case A").unwrap();
    log.close().unwrap();
    storage.write_file(&hold_path(), b"case B".to_vec());
    assert!(matches!(
        verify_read_only(&storage),
        Err(Error::Corrupt {
            what: Corruption::HoldMismatch { .. },
            ..
        })
    ));
}

#[test]
fn retention_refuses_to_run_while_the_hold_file_disagrees_with_the_chain() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let policy = Retention::default().max_age(Duration::from_secs(60));
    let log = written(opts(&storage, clock).retention(policy), 600);
    log.set_legal_hold("case 9").unwrap();
    // Removed behind the open writer's back.
    assert!(storage.delete_file(&hold_path()));
    now.store(T0 + 700 * SEC, Ordering::SeqCst);
    let before = log.segments().unwrap();
    assert!(matches!(
        log.apply_retention(T0 + 700 * SEC),
        Err(Error::Corrupt {
            what: Corruption::HoldMismatch { .. },
            ..
        })
    ));
    assert_eq!(log.segments().unwrap(), before, "nothing dropped");
}

#[test]
fn a_clock_set_two_years_ahead_for_the_retention_run_alone_drops_nothing() {
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let policy = Retention::default()
        .max_age(Duration::from_secs(86_400))
        .min_age(Duration::from_secs(365 * 86_400));
    let log = written(opts(&storage, clock).retention(policy), 600);
    let before = log.segments().unwrap();
    match log.apply_retention(T0 + 730 * DAY) {
        Err(Error::ClockAhead { now_ns, .. }) => assert_eq!(now_ns, T0 + 730 * DAY),
        other => panic!("expected ClockAhead, got {other:?}"),
    }
    assert_eq!(log.segments().unwrap(), before);
    log.verify().unwrap();
}

#[test]
fn a_forward_clock_leap_is_written_to_the_log() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), opts(&storage, clock)).unwrap();
    log.append(b"before").unwrap();
    now.store(T0 + 3650 * DAY, Ordering::SeqCst);
    log.set_legal_hold("set with the clock ten years ahead")
        .unwrap();
    log.append(b"after").unwrap();
    let jumps: Vec<_> = all_records(&log)
        .into_iter()
        .filter(|r| r.kind() == RecordKind::ClockJumped)
        .map(|r| r.system_event().unwrap().unwrap())
        .collect();
    assert_eq!(jumps.len(), 1, "{jumps:?}");
    assert!(matches!(
        jumps[0],
        SystemEvent::ClockJumped { clock_ns, .. } if clock_ns == T0 + 3650 * DAY
    ));
    log.verify().unwrap();
}

#[test]
fn the_retention_policy_that_governed_a_drop_is_in_the_chain_before_it() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let policy = Retention::default()
        .max_age(Duration::from_secs(60))
        .min_age(Duration::from_secs(30));
    let log = Log::open(mem_dir(), opts(&storage, clock).retention(policy)).unwrap();
    for i in 0..600u64 {
        now.store(T0 + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:05} with padding to fill the segments").as_bytes())
            .unwrap();
    }
    assert!(!log
        .apply_retention(T0 + 600 * SEC)
        .unwrap()
        .dropped_segments
        .is_empty());
    let events: Vec<SystemEvent> = all_records(&log)
        .into_iter()
        .filter_map(|r| r.system_event().map(|e| e.unwrap()))
        .collect();
    let applied = events
        .iter()
        .position(|e| matches!(e, SystemEvent::RetentionApplied { .. }))
        .unwrap();
    // Format 3 records it when the writer opens, before any drop needs it
    // (so the tags after it seal it); segments after state it.
    let stated = events[..applied].iter().rev().find_map(|e| match e {
        SystemEvent::RetentionPolicySet { policy } | SystemEvent::LogState { policy, .. } => {
            Some(*policy)
        }
        _ => None,
    });
    match stated {
        Some(Some(p)) => {
            assert_eq!(p.max_age_ns, 60 * SEC);
            assert_eq!(p.min_age_ns, 30 * SEC);
        }
        other => panic!("expected the policy in force before the drop, got {other:?}"),
    }
    log.verify().unwrap();
}

#[test]
fn a_checkpoint_commits_to_the_retention_state_and_catches_an_anchor_rolled_back_behind_it() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let policy = Retention::default().max_age(Duration::from_secs(60));
    let log = Log::open(mem_dir(), opts(&storage, clock).retention(policy)).unwrap();
    for i in 0..400u64 {
        now.store(T0 + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:05} with padding to fill the segments").as_bytes())
            .unwrap();
    }
    let before = log.checkpoint().unwrap();
    let r = before
        .retention
        .expect("a checkpoint says where the log starts");
    assert_eq!(r.first_seq, 1);
    log.apply_retention(T0 + 400 * SEC).unwrap();
    let after = log.checkpoint().unwrap();
    let ra = after.retention.unwrap();
    assert!(ra.first_seq > 1);
    assert_eq!(
        ra.anchor_head,
        log.anchor_entries().unwrap().last().unwrap().hash()
    );
    // Both checkpoints hold: drops after a checkpoint are its future.
    log.verify_against(&before).unwrap();
    log.verify_against(&after).unwrap();
    // A checkpoint naming an anchor entry the anchor lacks (the anchor was
    // rewritten since), or a start the log has since gone back before, is
    // a mismatch even though the log verifies alone.
    let rewritten = wormlog::Checkpoint {
        retention: Some(wormlog::RetentionPoint {
            anchor_head: Hash::from_bytes([0x5a; 32]),
            ..ra
        }),
        ..after
    };
    assert!(matches!(
        log.verify_against(&rewritten),
        Err(Error::CheckpointMismatch { .. })
    ));
    let later_start = wormlog::Checkpoint {
        retention: Some(wormlog::RetentionPoint {
            first_seq: ra.first_seq + 1,
            ..ra
        }),
        ..after
    };
    assert!(matches!(
        log.verify_against(&later_start),
        Err(Error::CheckpointMismatch { .. })
    ));
}

#[test]
fn a_raw_copy_beside_its_sealed_file_must_hold_the_same_bytes() {
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let options = opts(&storage, clock).sealing(Sealing::Manual);
    let log = written(options.clone(), 600);
    let first = log.segments().unwrap()[0].clone();
    assert!(!first.sealed);
    let mut raw = storage.read_file(&first.path).unwrap();
    log.seal().unwrap();
    log.close().unwrap();
    // "Sealing was interrupted": a raw copy beside the sealed file, with
    // one payload byte changed (its CRC no longer matters: the copy is
    // compared, not decoded).
    let at = raw.len() / 2;
    raw[at] ^= 0x20;
    storage.write_file(&first.path, raw);
    match Log::open(mem_dir(), options) {
        Err(Error::Corrupt { path, .. }) => {
            assert!(path.to_string_lossy().ends_with(".wlog.zst"), "{path:?}")
        }
        other => panic!("a differing raw copy must be refused, got {other:?}"),
    }
    assert!(
        storage.read_file(&first.path).is_some(),
        "the raw copy is kept for forensics"
    );
}

#[test]
fn a_sealed_index_missing_a_due_point_fails_verification() {
    use wormlog::format::{decode_seek_table, seek_table_len, SealedIndex, SEEK_FOOTER_LEN};
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let options = opts(&storage, clock)
        .sealing(Sealing::Manual)
        .segment_bytes_max(128 << 10);
    let log = written(options, 5000);
    log.seal().unwrap();
    log.close().unwrap();
    let sealed = storage
        .file_paths()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".wlog.zst"))
        .unwrap();
    let bytes = storage.read_file(&sealed).unwrap();
    let len = bytes.len() as u64;
    let table_len = seek_table_len(&bytes[bytes.len() - SEEK_FOOTER_LEN..], len).unwrap();
    let table_at = (len - table_len) as usize;
    let data_len: usize = decode_seek_table(&bytes[table_at..])
        .unwrap()
        .iter()
        .map(|e| e.compressed_size as usize)
        .sum();
    let index = SealedIndex::decode(&bytes[data_len..table_at]).unwrap();
    assert!(index.points.len() > 3, "a segment of several index points");
    let with_points = |points: Vec<wormlog::format::IndexPoint>| {
        let mut i = index.clone();
        i.points = points;
        let mut out = bytes[..data_len].to_vec();
        out.extend_from_slice(&i.encode());
        out.extend_from_slice(&bytes[table_at..]);
        out
    };
    verify_read_only(&storage).expect("the sealed log verifies");
    // A due point left out: readers would scan far for those records.
    let mut fewer = index.points.clone();
    fewer.remove(2);
    storage.write_file(&sealed, with_points(fewer));
    let e = verify_read_only(&storage).unwrap_err();
    assert!(e.to_string().contains("index point"), "{e}");
    // The first point, which is always due, left out.
    let mut fewer = index.points.clone();
    fewer.remove(0);
    storage.write_file(&sealed, with_points(fewer));
    assert!(verify_read_only(&storage).is_err());
    storage.write_file(&sealed, bytes.clone());
    verify_read_only(&storage).expect("the original file verifies again");
}

#[test]
fn after_a_clean_close_only_a_torn_opening_is_forgiven_as_a_torn_tail() {
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let options = opts(&storage, clock).segment_bytes_max(64 << 20);
    let log = Log::open(mem_dir(), options.clone()).unwrap();
    for i in 0..20u64 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let path = segment_paths(&storage, &mem_dir()).pop().unwrap();
    let closed = storage.read_file(&path).unwrap();
    // The next writer's log-opened record, torn: forgiven, cut and logged.
    let opened_at = frame_map(&closed)
        .into_iter()
        .find(|(at, _, _)| closed[at + 32] == RecordKind::LogOpened as u8)
        .unwrap()
        .0;
    let mut torn = closed.clone();
    torn.extend_from_slice(&closed[opened_at..opened_at + 40]);
    storage.write_file(&path, torn);
    let log = Log::open(mem_dir(), options.clone()).expect("a torn opening is a torn tail");
    assert!(all_records(&log)
        .iter()
        .any(|r| r.kind() == RecordKind::TailCut));
    log.close().unwrap();
    // Bytes no writer writes after a close: damage, not a torn tail.
    let closed = storage.read_file(&path).unwrap();
    let mut added = closed.clone();
    added.extend_from_slice(&[0x5a; 120]);
    storage.write_file(&path, added);
    match Log::open(mem_dir(), options) {
        Err(Error::NeedsRepair { damage }) => {
            assert!(matches!(*damage, Error::Corrupt { path: p, .. } if p == path))
        }
        other => panic!("bytes after a clean close must not be cut as torn: {other:?}"),
    }
}
