//! The security argument (format-spec.md, 16) by attack: each test is one
//! way of breaking a claim that an earlier version let through (issue 22),
//! made as an attacker holding the host would make it, from the spec: every
//! file, the current sealing key, the clock. Each asserts that verify (with
//! the verification key where the claim needs it) catches it.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wormlog::format::{
    chain_hash, decode_frame, encode_frame, epoch_tag_for, Decoded, FssKeyFile, Hash, RecordKind,
    SegmentHeader, SystemEvent, TagFacts, SEGMENT_HEADER_LEN,
};
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Corruption, Error, Log, Options, Retention, Sealing, VerificationKey};

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * SEC;
/// In the past, so that the verifier's own clock (now) is later than the
/// log's: a verifier judges drops no later than its now.
const T0: u64 = 1_700_000_000 * SEC;
const EPOCH: Duration = Duration::from_secs(60);

/// Small sealed segments on `storage` under `clock`, and a retention policy
/// that lets any of them go a second after its newest record.
fn dropping_options(storage: &MemStorage, clock: wormlog::Clock) -> Options {
    mem_options(storage)
        .clock(clock)
        .sealing(Sealing::Inline)
        .segment_bytes_max(8 << 10)
        .retention(Retention::default().max_age(Duration::from_secs(1)))
}

/// Appends `n` records `"{label} {i:04} with padding for the segments"`,
/// the first at `first_ns` and each `step_ns` after the one before (the
/// clock moved to each); returns the last one's time.
fn append_events(
    log: &Log,
    now: &AtomicU64,
    first_ns: u64,
    step_ns: u64,
    n: u64,
    label: &str,
) -> u64 {
    let mut t = first_ns;
    for i in 0..n {
        t = first_ns + i * step_ns;
        now.store(t, Ordering::SeqCst);
        log.append(format!("{label} {i:04} with padding for the segments").as_bytes())
            .unwrap();
    }
    t
}

/// The anchor file a retention run at `at_ns` writes, run on a copy of the
/// disk (a crash image of `storage` as it is): what a run cut short leaves
/// of itself when only its anchor entry came back. It must drop something.
fn anchor_of_a_run_on_a_copy(
    storage: &MemStorage,
    now: &AtomicU64,
    clock: &wormlog::Clock,
    at_ns: u64,
) -> Vec<u8> {
    let copy = storage.crash_image(Tear::KeepUnsynced, 0);
    let log = Log::open(mem_dir(), dropping_options(&copy, clock.clone())).unwrap();
    now.store(at_ns, Ordering::SeqCst);
    let report = log.apply_retention(at_ns).unwrap();
    assert!(
        !report.dropped_segments.is_empty(),
        "the run drops something"
    );
    drop(log);
    copy.read_file(&mem_dir().join("wormlog.anchor")).unwrap()
}

/// A retention run cut short after deleting only the first of the
/// segments `dropped`: the others come back from `before` (the disk as it
/// was before the run).
fn restore_all_but_the_first_dropped(storage: &MemStorage, before: &MemStorage, dropped: &[u64]) {
    let restored: Vec<_> = before
        .file_paths()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            dropped[1..]
                .iter()
                .any(|n| name.starts_with(&format!("seg-{n:020}")))
        })
        .collect();
    assert!(!restored.is_empty());
    for p in &restored {
        storage.write_file(p, before.read_file(p).unwrap());
    }
}

/// One record of a segment as an attacker edits it: kind, time, payload.
#[derive(Clone)]
struct Rec {
    kind: RecordKind,
    ts: u64,
    payload: Vec<u8>,
    synced_through: u64,
}

/// The records of a raw segment.
fn records_of(bytes: &[u8]) -> Vec<Rec> {
    frame_map(bytes)
        .into_iter()
        .map(|(o, _, _)| {
            let Decoded::Frame(f) = decode_frame(&bytes[o..]) else {
                panic!("intact")
            };
            Rec {
                kind: f.kind,
                ts: f.timestamp_ns,
                payload: f.payload.to_vec(),
                synced_through: f.synced_through,
            }
        })
        .collect()
}

/// A raw segment with `recs` in place of its records: seqs, chain hashes and
/// CRCs recomputed from its header on (what anyone can do without a key).
/// `tag_with` makes an epoch-tag record's payload over the chain position
/// before it, as the attacker's key allows.
fn rewritten(
    bytes: &[u8],
    recs: &[Rec],
    tag_with: &dyn Fn(u64, &wormlog::Hash, u64) -> Vec<u8>,
) -> Vec<u8> {
    let header = SegmentHeader::decode(bytes).unwrap();
    let mut out = bytes[..SEGMENT_HEADER_LEN].to_vec();
    let (mut seq, mut prev, mut prev_ts) = (header.first_seq, header.prev_hash, 0);
    for r in recs {
        let payload = if r.kind == RecordKind::EpochTag && r.payload.is_empty() {
            tag_with(seq - 1, &prev, prev_ts)
        } else {
            r.payload.clone()
        };
        let h = chain_hash(&prev, seq, r.ts, r.kind as u8, &payload);
        let at = out.len() as u64;
        encode_frame(
            &mut out,
            seq,
            r.ts,
            r.synced_through.min(at),
            r.kind,
            &payload,
            &h,
        );
        (seq, prev, prev_ts) = (seq + 1, h, r.ts);
    }
    out
}

/// An epoch-tag payload (section 4.2): first_epoch, epoch, tag.
fn tag_payload(first: u64, last: u64, tag: [u8; 32]) -> Vec<u8> {
    SystemEvent::EpochTag {
        first_epoch: first,
        epoch: last,
        tag,
    }
    .encode()
}

/// The host's current sealing key, as the attacker reads it.
fn host_key(storage: &MemStorage) -> FssKeyFile {
    FssKeyFile::decode(&storage.read_file(&mem_dir().join("wormlog.fss")).unwrap()).unwrap()
}

fn active_segment(storage: &MemStorage) -> PathBuf {
    segment_paths(storage, &mem_dir())
        .into_iter()
        .rfind(|p| p.to_string_lossy().ends_with(".wlog"))
        .unwrap()
}

/// Keeps the tree's level-0 entries of the first `entries` records and
/// nothing above (fewer than 256: no level 1), so the next open recomputes
/// the rest from the records: the attacker rebuilds the tree of what it
/// rewrote and leaves the dropped records' leaves alone.
fn keep_tree_prefix(storage: &MemStorage, dir: &Path, entries: u64) {
    assert!(entries < 256);
    let t0 = dir.join("wormlog.tiles-0");
    let mut leaves = storage.read_file(&t0).unwrap();
    leaves.truncate(entries as usize * 32);
    storage.write_file(&t0, leaves);
    let mut state = b"wlogtree".to_vec();
    state.extend_from_slice(&1u32.to_le_bytes());
    state.extend_from_slice(&1u32.to_le_bytes());
    state.extend_from_slice(&entries.to_le_bytes());
    let crc = crc32fast::hash(&state);
    state.extend_from_slice(&crc.to_le_bytes());
    storage.write_file(&dir.join("wormlog.tree"), state);
    let t1 = dir.join("wormlog.tiles-1");
    if storage.read_file(&t1).is_some() {
        storage.write_file(&t1, Vec::new());
    }
}

fn assert_caught(r: wormlog::Result<wormlog::VerifyReport>, attack: &str) -> String {
    match r {
        Err(Error::Corrupt { what, .. }) => {
            let detail = what.to_string();
            eprintln!("{attack}: caught: {detail}");
            detail
        }
        other => panic!("{attack}: expected tampering to be caught, got {other:?}"),
    }
}

/// A sealed log from T0 (one-minute epochs, a record every 6 s) whose old
/// segments retention dropped, sealing-started record included: what is
/// left is the active segment alone, written over several more epochs.
fn sealed_log_after_retention(storage: &MemStorage) -> (Arc<AtomicU64>, VerificationKey) {
    let (now, clock) = manual_clock(T0);
    let options = dropping_options(storage, clock);
    let log = Log::open(mem_dir(), options).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    for i in 0..120 {
        t += 6 * SEC;
        now.store(t, Ordering::SeqCst);
        log.append(format!("event {i:04} before the drop").as_bytes())
            .unwrap();
    }
    log.seal().unwrap();
    t += 10 * SEC;
    now.store(t, Ordering::SeqCst);
    let report = log.apply_retention(t).unwrap();
    assert!(
        !report.dropped_segments.is_empty(),
        "retention dropped the start"
    );
    for i in 0..30 {
        t += 6 * SEC;
        now.store(t, Ordering::SeqCst);
        log.append(format!("event {i:04} after the drop").as_bytes())
            .unwrap();
    }
    assert_eq!(
        log.segments().unwrap().len(),
        1,
        "the active segment alone is kept"
    );
    assert!(log.head().seq > report.first_seq);
    log.verify_sealed(std::slice::from_ref(&key)).unwrap();
    drop(log);
    (now, key)
}

/// Issue 22, hole 1: after retention, the attacker rewrites every kept
/// record (edits one sealed epochs ago, deletes another, removes every old
/// tag) and appends one tag for epochs m..=m made with the host's key
/// K(m). The earlier engine checked the kept tags from the first one on
/// and said "sealed through epoch m". The anchor entry now records the
/// tag the dropped records ended with: the kept tags must continue it.
#[test]
fn after_retention_the_kept_tags_must_continue_the_dropped_ones() {
    let storage = MemStorage::new();
    let (_, key) = sealed_log_after_retention(&storage);
    let first_kept = Log::open_read_only(mem_dir(), mem_options(&storage))
        .unwrap()
        .segments()
        .unwrap()[0]
        .first_seq;
    let k = host_key(&storage);
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let version = SegmentHeader::decode(&bytes).unwrap().version;
    let mut recs: Vec<Rec> = records_of(&bytes)
        .into_iter()
        .filter(|r| r.kind != RecordKind::EpochTag)
        .filter(|r| r.payload != b"event 0003 after the drop")
        .collect();
    for r in &mut recs {
        if r.payload == b"event 0001 after the drop" {
            r.payload = b"event 0001 REWRITTEN".to_vec();
        }
    }
    let last_ts = recs.last().unwrap().ts;
    recs.push(Rec {
        kind: RecordKind::EpochTag,
        ts: last_ts,
        payload: Vec::new(),
        synced_through: u64::MAX,
    });
    let facts = |ts| TagFacts {
        time_ns: ts,
        floor: Some((0, DAY)),
    };
    let forged = rewritten(&bytes, &recs, &|seq, hash, ts| {
        let tag = epoch_tag_for(version, &k.key, k.epoch, k.epoch, seq, hash, &facts(ts));
        tag_payload(k.epoch, k.epoch, tag)
    });
    storage.write_file(&path, forged);
    keep_tree_prefix(&storage, &mem_dir(), first_kept - 1);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify_sealed(&[key]), "rewrite after retention");
    assert!(detail.contains("epoch"), "{detail}");
    // Without the key too: the anchor says where the tags must go on.
    assert_caught(reader.verify(), "rewrite after retention, no key");
}

/// Hole 2: a leaf of a dropped record, below the first complete tile, is
/// replaced in `wormlog.tiles-0` by the leaf of a record that never
/// existed. The earlier engine checked those leaves against nothing, so an
/// honest checkpoint signed the forged root and a proof of the invented
/// record held. The anchor entry now records the root over the dropped
/// records.
#[test]
fn a_dropped_records_leaf_cannot_be_replaced() {
    let storage = MemStorage::new();
    let (_, key) = sealed_log_after_retention(&storage);
    let t0 = mem_dir().join("wormlog.tiles-0");
    let mut leaves = storage.read_file(&t0).unwrap();
    leaves[5 * 32..6 * 32].copy_from_slice(&[0x5a; 32]);
    storage.write_file(&t0, leaves);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "dropped leaf replaced");
    assert!(detail.contains("root"), "{detail}");
    assert_caught(
        reader.verify_sealed(&[key]),
        "dropped leaf replaced, with the key",
    );
    // A tree file turned into something unreadable does not turn the
    // check off: the anchor says there was a tree.
    storage.write_file(&t0, vec![1, 2, 3]);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_caught(reader.verify(), "tiles truncated");
}

/// A record appended at the end of the raw active segment (a chain an
/// attacker extends without the engine).
fn append_raw(storage: &MemStorage, path: &Path, kind: RecordKind, ts: u64, payload: Vec<u8>) {
    let bytes = storage.read_file(path).unwrap();
    let mut recs = records_of(&bytes);
    recs.push(Rec {
        kind,
        ts,
        payload,
        synced_through: u64::MAX,
    });
    storage.write_file(path, rewritten(&bytes, &recs, &|_, _, _| unreachable!()));
}

/// Hole 3: a recorded minimum age of 365 days can be raised, never
/// lowered: the engine refuses a retention run with a lower one (the
/// earlier engine dropped the segments), and a retention-policy-set record
/// that lowers it, appended without the engine, is a breach.
#[test]
fn a_recorded_minimum_age_cannot_be_lowered() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let strict = Retention::default()
        .max_age(Duration::from_secs(400 * 86_400))
        .min_age(Duration::from_secs(365 * 86_400));
    let options = |r: Retention| {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .retention(r)
    };
    let log = Log::open(mem_dir(), options(strict)).unwrap();
    for i in 0..200 {
        now.store(T0 + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04} with padding for segments").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    let lax = Retention::default()
        .max_age(Duration::from_secs(1))
        .min_age(Duration::ZERO);
    match Log::open(mem_dir(), options(lax.clone())) {
        Err(Error::InvalidOptions(m)) => assert!(m.contains("minimum age"), "{m}"),
        other => panic!(
            "a writer with a lower minimum age opened: {:?}",
            other.map(drop)
        ),
    }
    // A reader's plan is refused too.
    let reader = Log::open_read_only(mem_dir(), options(lax)).unwrap();
    assert!(matches!(
        reader.retention_plan(T0 + 300 * SEC),
        Err(Error::InvalidOptions(_))
    ));
    drop(reader);
    // Without the engine: a retention-policy-set of min_age 0.
    let weaker = SystemEvent::RetentionPolicySet {
        policy: Some(wormlog::format::RetentionRule {
            max_age_ns: 1,
            max_total_bytes: 0,
            min_age_ns: 0,
            clock_ahead_max_ns: DAY,
        }),
    };
    let path = active_segment(&storage);
    append_raw(
        &storage,
        &path,
        RecordKind::RetentionPolicySet,
        T0 + 300 * SEC,
        weaker.encode(),
    );
    forget_tree(&storage, &mem_dir());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "policy lowered");
    assert!(detail.contains("weakened"), "{detail}");
}

/// Hole 4, the clock in two steps: a writer opened with the clock 730 days
/// ahead sets and clears a hold (no clock-jumped record was written across
/// a restart before), then retention with the same clock drops minutes-old
/// segments under a 365-day minimum age. The open now records the leap, and
/// a verifier judges the drop against its own clock: caught.
#[test]
fn a_clock_set_ahead_across_a_restart_does_not_age_segments() {
    let storage = MemStorage::new();
    // Now, by the machine's clock: the verifier's now is the same.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 3600 * SEC;
    let (now, clock) = manual_clock(start);
    let policy = Retention::default()
        .max_age(Duration::from_secs(400 * 86_400))
        .min_age(Duration::from_secs(365 * 86_400));
    let options = || {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .retention(policy.clone())
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    for i in 0..200 {
        now.store(start + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04} with padding for segments").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    let ahead = start + 730 * DAY;
    now.store(ahead, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.set_legal_hold("step one").unwrap();
    log.clear_legal_hold().unwrap();
    assert!(
        all_records(&log)
            .iter()
            .any(|r| r.kind() == RecordKind::ClockJumped),
        "the open recorded the leap"
    );
    log.close().unwrap();
    let log = Log::open(mem_dir(), options()).unwrap();
    // The host's own clock says 730 days have passed, and the engine,
    // which has only that clock, drops (format-spec.md 16.4 (b)): the
    // claim is the verifier's, whose clock is its own.
    let report = log.apply_retention(ahead).unwrap();
    drop(log);
    assert!(!report.dropped_segments.is_empty());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "two-step clock");
    assert!(detail.contains("minimum age"), "{detail}");
}

/// journald's CVE-2023-31438, as a class: the log cut back to an earlier
/// tag and continued with the host's key through epochs nobody tagged.
/// Caught by the tags' contiguity, with the key and without it.
#[test]
fn a_log_cut_back_and_continued_through_untagged_epochs_is_caught() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(
        mem_dir(),
        mem_options(&storage)
            .clock(clock)
            .segment_bytes_max(64 << 20),
    )
    .unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..60u64 {
        now.store(T0 + (i + 1) * 6 * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04}").as_bytes()).unwrap();
    }
    drop(log);
    let k = host_key(&storage);
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let version = SegmentHeader::decode(&bytes).unwrap().version;
    let recs = records_of(&bytes);
    // Cut after the second tag, then go on as if in epoch m.
    let second = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RecordKind::EpochTag)
        .nth(1)
        .unwrap()
        .0;
    let mut kept: Vec<Rec> = recs[..=second].to_vec();
    let ts = recs.last().unwrap().ts;
    kept.push(Rec {
        kind: RecordKind::User,
        ts,
        payload: b"written after the cut".to_vec(),
        synced_through: u64::MAX,
    });
    kept.push(Rec {
        kind: RecordKind::EpochTag,
        ts,
        payload: Vec::new(),
        synced_through: u64::MAX,
    });
    let forged = rewritten(&bytes, &kept, &|seq, hash, ts| {
        let facts = TagFacts {
            time_ns: ts,
            floor: None,
        };
        let tag = epoch_tag_for(version, &k.key, k.epoch, k.epoch, seq, hash, &facts);
        tag_payload(k.epoch, k.epoch, tag)
    });
    storage.write_file(&path, forged);
    forget_tree(&storage, &mem_dir());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify_sealed(&[key]), "cut and continued");
    assert!(detail.contains("skip"), "{detail}");
    assert_caught(reader.verify(), "cut and continued, no key");
}

/// journald's CVE-2023-31439, as a class: old records re-sealed with a
/// newer key (every tag from the second on removed, one tag of epoch m
/// over everything, an old record edited). Caught with the key and
/// without it.
#[test]
fn old_records_resealed_with_a_newer_key_are_caught() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(
        mem_dir(),
        mem_options(&storage)
            .clock(clock)
            .segment_bytes_max(64 << 20),
    )
    .unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..60u64 {
        now.store(T0 + (i + 1) * 6 * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04}").as_bytes()).unwrap();
    }
    drop(log);
    let k = host_key(&storage);
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let version = SegmentHeader::decode(&bytes).unwrap().version;
    let mut tags_seen = 0;
    let mut recs: Vec<Rec> = records_of(&bytes)
        .into_iter()
        .filter(|r| {
            tags_seen += usize::from(r.kind == RecordKind::EpochTag);
            !(r.kind == RecordKind::EpochTag && tags_seen >= 2)
        })
        .collect();
    for r in &mut recs {
        if r.payload == b"event 0015" {
            r.payload = b"event 0015 EDITED".to_vec();
        }
    }
    let ts = recs.last().unwrap().ts;
    recs.push(Rec {
        kind: RecordKind::EpochTag,
        ts,
        payload: Vec::new(),
        synced_through: u64::MAX,
    });
    let forged = rewritten(&bytes, &recs, &|seq, hash, ts| {
        let facts = TagFacts {
            time_ns: ts,
            floor: None,
        };
        let tag = epoch_tag_for(version, &k.key, k.epoch, k.epoch, seq, hash, &facts);
        tag_payload(k.epoch, k.epoch, tag)
    });
    storage.write_file(&path, forged);
    forget_tree(&storage, &mem_dir());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_caught(reader.verify_sealed(&[key]), "re-sealed with a newer key");
    assert_caught(reader.verify(), "re-sealed with a newer key, no key");
}

/// A faithful log passes every one of these checks: the honest run of the
/// retention scenario verifies with its key and without, and a writer
/// reopening it goes on.
#[test]
fn an_honest_log_after_retention_verifies_with_and_without_the_key() {
    let storage = MemStorage::new();
    let (_, key) = sealed_log_after_retention(&storage);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader.verify().unwrap();
    let r = reader.verify_sealed(&[key]).unwrap();
    assert!(r.sealing.unwrap().checked);
}

/// The machine's clock now, less an hour: logs written from here are in
/// the verifier's past.
fn an_hour_ago() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 3600 * SEC
}

/// A log under a recorded 30-day minimum age (60-day maximum), of three
/// segments, the first two sealed and seconds old; then, with the clock
/// 60 days ahead, one record and a retention run that drops them (the host
/// owner's clock: the engine cannot tell).
fn young_segments_dropped_with_the_clock_ahead(storage: &MemStorage) -> VerificationKey {
    young_segments_dropped(storage, 30 * DAY, 61 * DAY)
}

/// As above, with the minimum age `min_age` (maximum twice that) and the
/// clock `ahead` past the log's records for the drop.
fn young_segments_dropped(storage: &MemStorage, min_age: u64, ahead: u64) -> VerificationKey {
    let start = an_hour_ago();
    let (now, clock) = manual_clock(start);
    let policy = Retention::default()
        .max_age(Duration::from_nanos(min_age))
        .min_age(Duration::from_nanos(min_age));
    let options = || {
        mem_options(storage)
            .clock(clock.clone())
            .sealing(Sealing::Manual)
            .retention(policy.clone())
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    let key = log.setup_sealing(Duration::from_secs(5)).unwrap();
    for round in 0..3u64 {
        for i in 0..10 {
            now.store(start + (round * 10 + i) * SEC, Ordering::SeqCst);
            log.append(format!("event {round}.{i}").as_bytes()).unwrap();
        }
        if round < 2 {
            log.seal().unwrap();
        }
    }
    log.close().unwrap();
    now.store(start + ahead, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.append(b"written sixty days ahead").unwrap();
    log.close().unwrap();
    // A separate run (`wormctl retention`): the log's own time is now the
    // record written ahead.
    let log = Log::open(mem_dir(), options()).unwrap();
    let report = log.apply_retention(start + ahead).unwrap();
    assert_eq!(report.dropped_segments.len(), 2, "{report:?}");
    log.close().unwrap();
    key
}

/// Red team, round 1: the drop above, then the kept segment's header
/// `created_ns` lowered to 2020 (only its header CRC covers it). Section 9
/// took `created_ns` as the newest dropped record's time, so the drop
/// looked 30 days old and verify passed, with the key too. A format-3
/// entry records the newest dropped record's time, and its recorded tag
/// seals one (a thief who rewrites the entry too is caught with the key).
#[test]
fn a_lowered_segment_creation_time_does_not_age_a_drop() {
    use wormlog::format::CREATED_AT;
    let storage = MemStorage::new();
    let key = young_segments_dropped_with_the_clock_ahead(&storage);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_caught(reader.verify(), "young segments dropped");
    drop(reader);
    let first = segment_paths(&storage, &mem_dir())[0].clone();
    let mut bytes = storage.read_file(&first).unwrap();
    let mut header = SegmentHeader::decode(&bytes).unwrap();
    header.created_ns = 1_577_836_800 * SEC;
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    assert_eq!(
        u64::from_le_bytes(bytes[CREATED_AT..CREATED_AT + 8].try_into().unwrap()),
        header.created_ns
    );
    storage.write_file(&first, bytes);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    // The entry records the newest dropped record's time (format 3), and
    // the recorded tag seals one: caught without the key and with it.
    let detail = assert_caught(reader.verify(), "created_ns lowered");
    assert!(detail.contains("minimum age"), "{detail}");
    assert_caught(
        reader.verify_sealed(&[key]),
        "created_ns lowered, with the key",
    );
}

/// The fourth red team's false positive: a crash between a segment's seal
/// record and the next segment's creation, the host back three days later
/// (recovery finishes the roll, the new segment created then), and an
/// honest retention run under a 2-day minimum age. Judging the drop by the
/// kept segment's first record (written at recovery) failed it for ever.
#[test]
fn an_honest_drop_after_a_crash_mid_roll_and_downtime_verifies() {
    let storage = MemStorage::new();
    let start = an_hour_ago() - 10 * DAY;
    let (now, clock) = manual_clock(start);
    let policy = Retention::default()
        .max_age(Duration::from_secs(2 * 86_400))
        .min_age(Duration::from_secs(2 * 86_400))
        // The run after the downtime measures ages against the clock, three
        // days past the log's last record (a writer's open after downtime
        // is otherwise refused by the default one-day bound).
        .clock_ahead_max(Duration::from_secs(7 * 86_400));
    let options = || {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Manual)
            .segment_bytes_max(4096)
            .retention(policy.clone())
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    let mut i = 0u64;
    while log.segments().unwrap().len() < 2 {
        i += 1;
        now.store(start + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04} with padding for the segment").as_bytes())
            .unwrap();
    }
    drop(log);
    // The crash: the next segment's creation (and what went into it) lost.
    let second = segment_paths(&storage, &mem_dir()).pop().unwrap();
    assert!(storage.delete_file(&second));
    now.store(start + 3 * DAY, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.seal().unwrap();
    let report = log.apply_retention(start + 3 * DAY).unwrap();
    assert_eq!(report.dropped_segments, vec![1], "{report:?}");
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify()
        .expect("an honest drop after a crash and downtime");
}

/// The anchor file with each entry passed through `edit`, re-chained and
/// re-encoded; returns the old and new hash of each entry.
fn edit_anchor(
    storage: &MemStorage,
    edit: &dyn Fn(&mut wormlog::format::AnchorEntry),
) -> Vec<(wormlog::Hash, wormlog::Hash)> {
    use wormlog::format::{AnchorEntry, ANCHOR_HEADER_LEN};
    let path = mem_dir().join("wormlog.anchor");
    let bytes = storage.read_file(&path).unwrap();
    let mut out = bytes[..ANCHOR_HEADER_LEN].to_vec();
    let mut at = ANCHOR_HEADER_LEN;
    let mut prev = None;
    let mut hashes = Vec::new();
    while let Some((mut e, len)) = AnchorEntry::decode(&bytes[at..]).unwrap() {
        let old = e.hash();
        if let Some(p) = prev {
            e.prev_entry_hash = p;
        }
        edit(&mut e);
        out.extend_from_slice(&e.encode());
        prev = Some(e.hash());
        hashes.push((old, e.hash()));
        at += len;
    }
    storage.write_file(&path, out);
    hashes
}

/// The retention-applied records of the raw active segment re-pointed at
/// the anchor's new entry hashes, and the chain after them recomputed.
fn repoint_retention_records(storage: &MemStorage, hashes: &[(wormlog::Hash, wormlog::Hash)]) {
    let path = active_segment(storage);
    let bytes = storage.read_file(&path).unwrap();
    let mut recs = records_of(&bytes);
    for r in &mut recs {
        if let Some(Ok(SystemEvent::RetentionApplied {
            from_segment,
            to_segment,
            first_seq,
            last_seq,
            anchor_entry_hash,
        })) = SystemEvent::decode(r.kind, &r.payload)
        {
            let new = hashes
                .iter()
                .find(|(o, _)| *o == anchor_entry_hash)
                .map_or(anchor_entry_hash, |(_, n)| *n);
            r.payload = SystemEvent::RetentionApplied {
                from_segment,
                to_segment,
                first_seq,
                last_seq,
                anchor_entry_hash: new,
            }
            .encode();
        }
    }
    storage.write_file(&path, rewritten(&bytes, &recs, &|_, _, _| unreachable!()));
}

/// A log of sealed segments whose retention run dropped the first ones,
/// the retention record in the raw active segment (no sealing: the
/// attacker's rewrite needs no key), and the leaf of a dropped record then
/// replaced.
fn dropped_then_leaf_replaced(storage: &MemStorage) {
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(storage, clock)).unwrap();
    append_events(&log, &now, T0, SEC, 150, "event");
    log.seal().unwrap();
    now.store(T0 + 200 * SEC, Ordering::SeqCst);
    assert!(!log
        .apply_retention(T0 + 200 * SEC)
        .unwrap()
        .dropped_segments
        .is_empty());
    log.close().unwrap();
    let t0 = mem_dir().join("wormlog.tiles-0");
    let mut leaves = storage.read_file(&t0).unwrap();
    leaves[4 * 32..5 * 32].copy_from_slice(&[0x66; 32]);
    storage.write_file(&t0, leaves);
}

/// Red team, round 1: the anchor entry downgraded to format 1's shape
/// (flags 0, no extension) or its tree root zeroed, the retention record
/// re-pointed, a dropped leaf replaced: verify accepted it and a checkpoint
/// signed the forged root. A format-3 retention record must name an entry
/// with the extension, and a log whose tree covers the dropped records
/// must have their root recorded.
#[test]
fn an_anchor_entry_cannot_shed_its_tree_root() {
    for variant in ["flags 0", "tree size 0"] {
        let storage = MemStorage::new();
        dropped_then_leaf_replaced(&storage);
        let hashes = edit_anchor(&storage, &|e| match variant {
            "flags 0" => e.ext = None,
            _ => {
                if let Some(x) = &mut e.ext {
                    x.tree = None;
                }
            }
        });
        repoint_retention_records(&storage, &hashes);
        // The tree of the rewritten records is rebuilt by the next open;
        // the dropped leaves (one of them forged) stay.
        let first_kept = Log::open_read_only(mem_dir(), mem_options(&storage))
            .unwrap()
            .segments()
            .unwrap()[0]
            .first_seq;
        keep_tree_prefix(&storage, &mem_dir(), first_kept - 1);
        let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
        assert_caught(reader.verify(), variant);
    }
}

/// Red team, round 1 (a faithful log called tampered): a retention run cut
/// short while deleting its segments, oldest first, leaves the newer
/// dropped segments in place; the spec (8.3) vouches for that state. On a
/// sealed log verify said the tags skipped epochs (the anchor's sealing
/// state is that of the range's end). Now the kept tags must reach it.
#[test]
fn a_retention_run_cut_short_between_deletions_still_verifies() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(&storage, clock)).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..200u64 {
        now.store(T0 + i * 6 * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04} with padding for the segments").as_bytes())
            .unwrap();
    }
    log.seal().unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> = storage
        .file_paths()
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .map(|p| (p.clone(), storage.read_file(&p).unwrap()))
        .collect();
    now.store(T0 + 1300 * SEC, Ordering::SeqCst);
    let report = log.apply_retention(T0 + 1300 * SEC).unwrap();
    assert!(report.dropped_segments.len() >= 3, "{report:?}");
    drop(log);
    // As if the run stopped after deleting the first dropped segment.
    for (p, bytes) in before.iter().filter(|(p, _)| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        report.dropped_segments[1..]
            .iter()
            .any(|n| name.contains(&format!("{n:020}")))
    }) {
        storage.write_file(p, bytes.clone());
    }
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader.verify().expect("a run cut short verifies");
    reader
        .verify_sealed(std::slice::from_ref(&key))
        .expect("and with its key");
}

/// Red team, round 2: a drop judged against the verifier's clock plus the
/// policy's clock bound let segments go up to that bound (1 day) younger
/// than the minimum age: a 1-day minimum protected nothing. The verifier's
/// clock now takes no slack.
#[test]
fn the_clock_bound_gives_no_slack_against_the_verifiers_clock() {
    let storage = MemStorage::new();
    young_segments_dropped(&storage, DAY, DAY + 60 * SEC);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "dropped a day early");
    assert!(detail.contains("minimum age"), "{detail}");
}

/// Red team, round 2: every tag gone with the dropped records and the
/// anchor entry saying sealing never began, while the key file says it
/// did: verify said "no epoch sealed yet". A sealed log whose start was
/// dropped must have its sealing state in the anchor.
#[test]
fn a_wiped_sealed_log_cannot_pass_for_one_never_sealed() {
    let storage = MemStorage::new();
    let (_, key) = sealed_log_after_retention(&storage);
    let hashes = edit_anchor(&storage, &|e| {
        if let Some(x) = &mut e.ext {
            x.sealing = None;
        }
    });
    repoint_retention_records(&storage, &hashes);
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let recs: Vec<Rec> = records_of(&bytes)
        .into_iter()
        .filter(|r| r.kind != RecordKind::EpochTag)
        .collect();
    storage.write_file(&path, rewritten(&bytes, &recs, &|_, _, _| unreachable!()));
    let first_kept = Log::open_read_only(mem_dir(), mem_options(&storage))
        .unwrap()
        .segments()
        .unwrap()[0]
        .first_seq;
    keep_tree_prefix(&storage, &mem_dir(), first_kept - 1);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_caught(reader.verify_sealed(&[key]), "wiped, with the key");
    assert_caught(reader.verify(), "wiped, no key");
}

/// Red team, round 2: a dropped record's leaf changed in the tree's files
/// before an honest retention run was recorded by it as the truth, and a
/// proof of an invented record then held. Retention now checks the leaves
/// of what it drops against the records first, and refuses.
#[test]
fn retention_does_not_record_a_root_over_a_changed_leaf() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(&storage, clock)).unwrap();
    append_events(&log, &now, T0, SEC, 150, "event");
    log.seal().unwrap();
    log.close().unwrap();
    let t0 = mem_dir().join("wormlog.tiles-0");
    let mut leaves = storage.read_file(&t0).unwrap();
    leaves[4 * 32..5 * 32].copy_from_slice(&[0x66; 32]);
    storage.write_file(&t0, leaves);
    now.store(T0 + 200 * SEC, Ordering::SeqCst);
    let log = Log::open(
        mem_dir(),
        dropping_options(&storage, clock_at(T0 + 200 * SEC)),
    )
    .unwrap();
    match log.apply_retention(T0 + 200 * SEC) {
        Err(Error::Corrupt {
            what: Corruption::TreeState { .. },
            ..
        }) => {}
        other => panic!("retention over a changed leaf: {other:?}"),
    }
}

fn clock_at(t: u64) -> wormlog::Clock {
    Arc::new(move || t)
}

/// The third red team's attack: every sealed segment deleted, and an
/// anchor entry written whose recorded tag the thief makes with the key it
/// holds (epochs m..=m, so its MAC checks), its policy none, the kept
/// segment's stated policy lowered to none, a kept record edited and the
/// kept tags re-made from K(m+1). `recorded_ns` is the time the forged tag
/// says it seals.
fn wipe_with_a_tag_of_the_stolen_key(
    storage: &MemStorage,
    recorded_ns: Option<u64>,
) -> (VerificationKey, u64, wormlog::Checkpoint) {
    wipe_with_a_tag_of_version(storage, recorded_ns, 3)
}

/// The wipe above, its recorded tag made and labelled as format `version`.
fn wipe_with_a_tag_of_version(
    storage: &MemStorage,
    recorded_ns: Option<u64>,
    version: u16,
) -> (VerificationKey, u64, wormlog::Checkpoint) {
    use wormlog::format::{
        anchor_genesis, encode_anchor_header, epoch_of, AnchorEntry, AnchorExt, DroppedSegment,
        RecordedTag, SealingState,
    };
    let start = an_hour_ago();
    let (now, clock) = manual_clock(start);
    let policy = Retention::default()
        .max_age(Duration::from_secs(400 * 86_400))
        .min_age(Duration::from_secs(30 * 86_400));
    let log = Log::open(
        mem_dir(),
        mem_options(storage)
            .clock(clock)
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .retention(policy),
    )
    .unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    let mut t = start;
    let mut checkpoint = None;
    for i in 0..120 {
        t += 6 * SEC;
        now.store(t, Ordering::SeqCst);
        log.append(format!("event {i:04} sealed before the theft").as_bytes())
            .unwrap();
        if i == 30 {
            // An auditor's checkpoint, kept off the host.
            checkpoint = Some(log.checkpoint().unwrap());
        }
    }
    let segs = log.segments().unwrap();
    let active = segs.last().unwrap().clone();
    let first = active.first_seq;
    let root = log.tree_head_at(first - 1).unwrap().root;
    assert!(first - 1 < 256);
    drop(log);
    // The thief: K(m) from the key file; every segment before the active
    // one deleted.
    let k = host_key(storage);
    for s in &segs[..segs.len() - 1] {
        for p in storage.file_paths() {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&format!("seg-{:020}", s.number)) {
                storage.delete_file(&p);
            }
        }
    }
    let epoch_start = |e: u64| k.start_ns + (e - 1) * k.interval_ns;
    let facts = TagFacts {
        time_ns: recorded_ns.unwrap_or(epoch_start(k.epoch)),
        floor: None,
    };
    let prev = SegmentHeader::decode(&storage.read_file(&active.path).unwrap())
        .unwrap()
        .prev_hash;
    let tag = epoch_tag_for(version, &k.key, k.epoch, k.epoch, first - 1, &prev, &facts);
    let entry = AnchorEntry {
        time_ns: t,
        first_seq: first,
        prev_hash: prev,
        prev_entry_hash: anchor_genesis(&active_log_id(storage)),
        dropped: segs[..segs.len() - 1]
            .iter()
            .map(|s| DroppedSegment {
                segment: s.number,
                first_seq: s.first_seq,
                last_seq: s.last_seq,
                last_hash: s.last_hash,
            })
            .collect(),
        ext: Some(AnchorExt {
            tree: Some((first - 1, root)),
            sealing: Some(SealingState {
                key_id: k.key_id,
                last_tag: Some(RecordedTag {
                    version,
                    first_epoch: k.epoch,
                    epoch: k.epoch,
                    seq: first - 1,
                    hash: prev,
                    facts,
                    tag,
                }),
            }),
            newest_ns: facts.time_ns,
        }),
    };
    let log_id = active_log_id(storage);
    storage.write_file(
        &mem_dir().join("wormlog.anchor"),
        [&encode_anchor_header(&log_id)[..], &entry.encode()].concat(),
    );
    // The kept segment: its policy gone, a record edited, the drop
    // recorded, the tags re-made from K(m+1).
    let bytes = storage.read_file(&active.path).unwrap();
    let mut recs: Vec<Rec> = Vec::new();
    for r in records_of(&bytes) {
        match r.kind {
            RecordKind::EpochTag => continue,
            RecordKind::LogState => recs.push(Rec {
                payload: SystemEvent::LogState {
                    hold: None,
                    policy: Some(wormlog::format::RetentionRule {
                        max_age_ns: 1,
                        max_total_bytes: 0,
                        min_age_ns: 0,
                        clock_ahead_max_ns: DAY,
                    }),
                }
                .encode(),
                ..r
            }),
            _ if r.payload == b"event 0119 sealed before the theft" => recs.push(Rec {
                payload: b"EVIL".to_vec(),
                ..r
            }),
            _ => recs.push(r),
        }
    }
    // Dated to the epochs the thief's keys can seal (the records it keeps
    // are its own to write: they were not sealed when it took the host).
    let next = k.evolved();
    for r in &mut recs {
        r.ts = r.ts.max(epoch_start(next.epoch));
    }
    let last_ts = recs.last().unwrap().ts;
    let drop_record = SystemEvent::RetentionApplied {
        from_segment: segs[0].number,
        to_segment: segs[segs.len() - 2].number,
        first_seq: 1,
        last_seq: first - 1,
        anchor_entry_hash: entry.hash(),
    };
    recs.push(Rec {
        kind: RecordKind::RetentionApplied,
        ts: last_ts,
        payload: drop_record.encode(),
        synced_through: u64::MAX,
    });
    let epoch = epoch_of(k.start_ns, k.interval_ns, last_ts).max(next.epoch);
    recs.push(Rec {
        kind: RecordKind::EpochTag,
        ts: last_ts,
        payload: Vec::new(),
        synced_through: u64::MAX,
    });
    let forged = rewritten(&bytes, &recs, &|seq, hash, ts| {
        // The policy the rewritten log-state states.
        let facts = TagFacts {
            time_ns: ts,
            floor: Some((0, DAY)),
        };
        let tag = epoch_tag_for(3, &next.key, next.epoch, epoch, seq, hash, &facts);
        tag_payload(next.epoch, epoch, tag)
    });
    storage.write_file(&active.path, forged);
    let mut after = next.clone();
    while after.epoch <= epoch {
        after = after.evolved();
    }
    storage.write_file(&mem_dir().join("wormlog.fss"), after.encode().to_vec());
    keep_tree_prefix(storage, &mem_dir(), first - 1);
    (key, k.epoch, checkpoint.unwrap())
}

fn active_log_id(storage: &MemStorage) -> [u8; 16] {
    SegmentHeader::decode(&storage.read_file(&active_segment(storage)).unwrap())
        .unwrap()
        .log_id
}

/// The wipe, with the forged tag dating what it seals to before its own
/// epoch (to make the drop look old): a version-3 tag seals the time of
/// what it seals, which must lie in its epochs.
#[test]
fn a_recorded_tag_of_the_stolen_key_cannot_date_the_drop_back() {
    let storage = MemStorage::new();
    let (key, _, _) = wipe_with_a_tag_of_the_stolen_key(&storage, Some(an_hour_ago() - 400 * DAY));
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify_sealed(&[key]), "wipe, tag dated back");
    assert!(detail.contains("outside its epochs"), "{detail}");
}

/// The wipe, with the forged tag honest about its time (epoch m): only a
/// compliance floor kept off the host can show the drop was early, since
/// the log's own statement of its policy is the thief's. With the
/// auditor's floor (`verify --min-age`), caught.
#[test]
fn the_auditors_compliance_floor_catches_a_wipe_with_a_stolen_key() {
    let storage = MemStorage::new();
    let (key, _, _) = wipe_with_a_tag_of_the_stolen_key(&storage, None);
    // Without the floor the thief's statement stands (spec 16.4 (b), what
    // cannot be stopped): the test's forgery is otherwise complete.
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify_sealed(std::slice::from_ref(&key))
        .expect("without a floor kept off the host, the wipe verifies");
    let floor = Duration::from_secs(30 * 86_400);
    let reader =
        Log::open_read_only(mem_dir(), mem_options(&storage).verify_min_age(floor)).unwrap();
    let detail = assert_caught(reader.verify_sealed(&[key]), "wipe, floor given");
    assert!(detail.contains("minimum age"), "{detail}");
}

/// The fifth red team: the wipe, its recorded tag labelled format 2 (whose
/// MAC seals no time) and stating a time two years back. The time a format-2
/// tag states is the host's word, so it dates the drop no earlier than two
/// epochs before the tag's first: the auditor's floor catches the wipe.
/// Passed before (exit 0 with --verify-key --min-age 365d).
#[test]
fn a_recorded_format_2_tag_of_the_stolen_key_cannot_date_the_drop_back() {
    let storage = MemStorage::new();
    let (key, _, _) = wipe_with_a_tag_of_version(&storage, Some(an_hour_ago() - 730 * DAY), 2);
    let floor = Duration::from_secs(365 * 86_400);
    let reader =
        Log::open_read_only(mem_dir(), mem_options(&storage).verify_min_age(floor)).unwrap();
    let detail = assert_caught(
        reader.verify_sealed(&[key]),
        "wipe, format-2 tag dated back",
    );
    assert!(detail.contains("minimum age"), "{detail}");
}

/// The fourth red team's attack, without the key: the wipe above verified
/// against a checkpoint signed before it, as the drop's policy and dates
/// were the thief's word. The checkpoint now commits to the minimum age the
/// log stated (its retention line), and a drop since it is dated no earlier
/// than the checkpoint's record: caught, with or without the key. Failed
/// before (the wipe held the checkpoint).
#[test]
fn a_wipe_after_a_checkpoint_is_judged_by_the_checkpoints_policy() {
    let storage = MemStorage::new();
    let (key, _, cp) = wipe_with_a_tag_of_the_stolen_key(&storage, None);
    assert_eq!(cp.retention.unwrap().min_age_ns, Some(30 * DAY));
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    for (with_key, r) in [
        (false, reader.verify_against(&cp)),
        (
            true,
            reader
                .verify_sealed(std::slice::from_ref(&key))
                .and_then(|_| reader.verify_against(&cp)),
        ),
    ] {
        match r {
            Err(wormlog::Error::CheckpointMismatch { detail }) => {
                assert!(detail.contains("minimum age"), "{detail}")
            }
            other => panic!("with key {with_key}: the wipe held the checkpoint: {other:?}"),
        }
    }
}

/// An honest drop after a checkpoint, once its records are old enough,
/// holds the checkpoint.
#[test]
fn an_honest_drop_after_a_checkpoint_holds_it() {
    let storage = MemStorage::new();
    let start = an_hour_ago() - 40 * DAY;
    let (now, clock) = manual_clock(start);
    let policy = Retention::default()
        .max_age(Duration::from_secs(35 * 86_400))
        .min_age(Duration::from_secs(30 * 86_400));
    let options = || {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .retention(policy.clone())
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    for i in 0..120 {
        log.append(format!("event {i:04}").as_bytes()).unwrap();
    }
    let cp = log.checkpoint().unwrap();
    log.seal().unwrap();
    drop(log);
    // Forty days on, a record a day (a writer's own time moves with the
    // monotonic clock, which the test's clock does not: each open must be
    // within the clock bound of the last record).
    let mut later = start;
    for day in 1..=40 {
        later = start + day * (DAY - SEC);
        now.store(later, Ordering::SeqCst);
        let log = Log::open(mem_dir(), options()).unwrap();
        log.append(format!("day {day}").as_bytes()).unwrap();
    }
    let log = Log::open(mem_dir(), options()).unwrap();
    log.seal().unwrap();
    let report = log.apply_retention(later).unwrap();
    assert!(
        report.first_seq > cp.seq,
        "the drop reached past the checkpoint: {report:?}"
    );
    drop(log);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify_against(&cp)
        .expect("an honest drop holds the checkpoint");
}

/// The fifth red team (both teams, independently): after a checkpoint of a
/// format-3 log, its drop's anchor entry stripped of the extension and the
/// kept segment relabelled format 2, so that no rule asked for the
/// extension and the drop was dated by the kept segment's creation time,
/// which nothing seals. A checkpoint whose retention line states a minimum
/// age is of a format-3 log, which only format-3 writers can go on with:
/// every later entry must carry the extension. Held the checkpoint before.
#[test]
fn a_drop_after_a_format_3_checkpoint_must_carry_the_extension() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(&storage, clock)).unwrap();
    append_events(&log, &now, T0, SEC, 150, "event");
    let cp = log.checkpoint().unwrap();
    assert!(cp.retention.unwrap().min_age_ns.is_some());
    log.seal().unwrap();
    now.store(T0 + 200 * SEC, Ordering::SeqCst);
    let report = log.apply_retention(T0 + 200 * SEC).unwrap();
    assert!(report.first_seq > cp.seq, "{report:?}");
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify_against(&cp)
        .expect("the honest drop holds the checkpoint");
    drop(reader);
    let hashes = edit_anchor(&storage, &|e| e.ext = None);
    repoint_retention_records(&storage, &hashes);
    let kept = segment_paths(&storage, &mem_dir());
    assert_eq!(kept.len(), 1, "only the raw active segment is kept");
    let mut bytes = storage.read_file(&kept[0]).unwrap();
    let mut header = SegmentHeader::decode(&bytes).unwrap();
    header.version = 2;
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    storage.write_file(&kept[0], bytes);
    // The kept records' leaves rebuilt from the rewritten chain.
    keep_tree_prefix(&storage, &mem_dir(), report.first_seq - 1);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    match reader.verify_against(&cp) {
        Err(wormlog::Error::CheckpointMismatch { detail }) => {
            assert!(detail.contains("extension"), "{detail}")
        }
        other => panic!("the relabelled drop held the checkpoint: {other:?}"),
    }
}

/// The fifth red team: a sealed log cut back to the record before its
/// sealing-started record, the key file kept, new records written after the
/// cut. Verify with the key said sealing was "not checked" (Ok). An
/// announced key file with no sealing-started record is now tampering, key
/// or no key; an unannounced one (a setup cut short, or the flag reset) is
/// an error with the key given: the log cannot show it was sealed under it.
#[test]
fn a_log_cut_back_before_its_sealing_started_record_is_caught() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), mem_options(&storage).clock(clock)).unwrap();
    for i in 0..5 {
        log.append(format!("before sealing {i}").as_bytes())
            .unwrap();
    }
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..20u64 {
        now.store(T0 + (i + 1) * 20 * SEC, Ordering::SeqCst);
        log.append(format!("sealed {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let mut recs: Vec<Rec> = records_of(&bytes)
        .into_iter()
        .take_while(|r| r.kind != RecordKind::SealingStarted)
        .collect();
    assert!(recs.len() < records_of(&bytes).len(), "the log was sealed");
    let last_ts = recs.last().unwrap().ts;
    recs.push(Rec {
        kind: RecordKind::User,
        ts: last_ts,
        payload: b"written after the cut".to_vec(),
        synced_through: u64::MAX,
    });
    storage.write_file(&path, rewritten(&bytes, &recs, &|_, _, _| unreachable!()));
    keep_tree_prefix(&storage, &mem_dir(), 0);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "cut before sealing-started, no key");
    assert!(detail.contains("no sealing-started"), "{detail}");
    let detail = assert_caught(
        reader.verify_sealed(std::slice::from_ref(&key)),
        "cut before sealing-started, with the key",
    );
    assert!(detail.contains("no sealing-started"), "{detail}");
    drop(reader);
    // The thief resets the announced flag of the key it holds (epoch 7):
    // only an announced key evolves, so this is tampering, with or
    // without the key (the twelfth red team: it was exit 0 without it).
    let mut k = host_key(&storage);
    assert!(k.epoch > 1);
    k.announced = false;
    storage.write_file(&mem_dir().join("wormlog.fss"), k.encode().to_vec());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(
        reader.verify_sealed(std::slice::from_ref(&key)),
        "unannounced key file past epoch 1, with the key",
    );
    assert!(detail.contains("evolved"), "{detail}");
    assert_caught(reader.verify(), "unannounced key file past epoch 1");
    drop(reader);
    // An unannounced key file at epoch 1 is what a setup cut short leaves:
    // with a key given, the log cannot show it was sealed (exit 2, run
    // setup-keys again); without, a crash state.
    k.epoch = 1;
    storage.write_file(&mem_dir().join("wormlog.fss"), k.encode().to_vec());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    match reader.verify_sealed(std::slice::from_ref(&key)) {
        Err(wormlog::Error::SealingUnfinished { .. }) => {}
        other => panic!("unannounced key file and no start, with the key: {other:?}"),
    }
    reader.verify().expect("a setup cut short is a crash state");
}

/// The sixth red team's false positive: a crash between a roll's sealed
/// record and the next segment's creation, then a writer's open epochs
/// later. The open finishes the roll and owes tags for the epochs that
/// ended meanwhile, which must come before any record of the open's epoch:
/// the new segment begins with the tag, then segment-rolled and log-state.
/// Verify called that tampering for ever ("a log-state record that is not
/// its segment's second record"); now epoch tags may precede a version-3
/// segment's opening record.
#[test]
fn a_roll_finished_at_an_open_epochs_after_a_crash_verifies() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Manual)
            .segment_bytes_max(4096)
            .retention(Retention::default().min_age(Duration::from_secs(30 * 86_400)))
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    let mut i = 0u64;
    while log.segments().unwrap().len() < 2 {
        i += 1;
        now.store(T0 + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04} with padding for the segment").as_bytes())
            .unwrap();
    }
    // The crash: the disk as it was, less the new segment's creation.
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    let second = segment_paths(&image, &mem_dir()).pop().unwrap();
    assert!(image.delete_file(&second));
    now.store(T0 + 10 * EPOCH.as_nanos() as u64, Ordering::SeqCst);
    let opts = || {
        mem_options(&image)
            .clock(clock.clone())
            .sealing(Sealing::Manual)
            .segment_bytes_max(4096)
    };
    let log = Log::open(mem_dir(), opts()).unwrap();
    log.append(b"after the crash").unwrap();
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), opts()).unwrap();
    reader.verify().expect("a finished roll verifies");
    reader
        .verify_sealed(std::slice::from_ref(&key))
        .expect("and with the key");
}

/// A log of sealed segments at T0, a checkpoint taken after the seal (so
/// the drop ends before its seq), then a drop 31 days on (the policy's
/// clock bound allows the run's time that far past the log's). Returns the
/// checkpoint.
fn dropped_after_a_checkpoint(
    storage: &MemStorage,
    now: &AtomicU64,
    clock: wormlog::Clock,
) -> wormlog::Checkpoint {
    let policy = Retention::default()
        .max_age(Duration::from_secs(1))
        .clock_ahead_max(Duration::from_secs(60 * 86_400));
    let options = dropping_options(storage, clock).retention(policy);
    let log = Log::open(mem_dir(), options).unwrap();
    append_events(&log, now, T0, SEC, 150, "event");
    log.seal().unwrap();
    let cp = log.checkpoint().unwrap();
    now.store(T0 + 31 * DAY, Ordering::SeqCst);
    let report = log.apply_retention(T0 + 31 * DAY).unwrap();
    assert!(!report.dropped_segments.is_empty() && report.first_seq <= cp.seq);
    log.close().unwrap();
    cp
}

/// The sixth red team: a checkpoint of the older shape (no tree root, a
/// two-field retention line) leaves a drop before its seq dated by the
/// entry's newest_ns, the host's word: set 400 days back, a drop of
/// days-old records held it with a 30-day floor. Such a drop is now dated
/// no earlier than the record after it, which the note's chain hash fixes.
/// The honest drop, 31 days on, holds it; the same drop judged 20 days
/// after the records (as the forged date would allow) does not.
#[test]
fn an_old_shape_checkpoint_dates_a_drop_by_the_chain_it_fixes() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let cp = dropped_after_a_checkpoint(&storage, &now, clock.clone());
    let old_shape = wormlog::Checkpoint {
        tree_root: None,
        retention: cp.retention.map(|r| wormlog::RetentionPoint {
            min_age_ns: None,
            ..r
        }),
        ..cp
    };
    let floor = Duration::from_secs(30 * 86_400);
    let reader = |at: u64| {
        let options = mem_options(&storage)
            .clock(clock_at(at))
            .verify_min_age(floor);
        Log::open_read_only(mem_dir(), options).unwrap()
    };
    reader(T0 + 32 * DAY)
        .verify_against(&old_shape)
        .expect("an honest drop a month on holds the old-shape checkpoint");
    let hashes = edit_anchor(&storage, &|e| {
        if let Some(x) = &mut e.ext {
            x.newest_ns = T0 - 400 * DAY;
        }
    });
    repoint_retention_records(&storage, &hashes);
    let first = reader(T0 + 32 * DAY).segments().unwrap()[0].first_seq;
    // The kept records' leaves rebuilt from the rewritten chain.
    keep_tree_prefix(&storage, &mem_dir(), first - 1);
    match reader(T0 + 20 * DAY).verify_against(&old_shape) {
        Err(wormlog::Error::CheckpointMismatch { detail }) => {
            assert!(detail.contains("minimum age"), "{detail}")
        }
        other => panic!("a drop dated back held the old-shape checkpoint: {other:?}"),
    }
}

/// The sixth red team's false positive: a retention run cut short after its
/// anchor entry became durable and before it deleted anything (or wrote
/// its record) is a crash state that dropped nothing; checked against a
/// checkpoint it was judged a drop, too young for the floor.
#[test]
fn a_retention_run_cut_short_before_deleting_holds_a_checkpoint() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(&storage, clock.clone())).unwrap();
    append_events(&log, &now, T0, SEC, 150, "event");
    log.seal().unwrap();
    let cp = log.checkpoint().unwrap();
    // The run on a copy of the disk; only its anchor file comes back: the
    // entry durable, no segment deleted, no retention record.
    drop(log);
    let anchor = mem_dir().join("wormlog.anchor");
    let run = anchor_of_a_run_on_a_copy(&storage, &now, &clock, T0 + 200 * SEC);
    storage.write_file(&anchor, run);
    let options = mem_options(&storage)
        .clock(clock_at(T0 + 300 * SEC))
        .verify_min_age(Duration::from_secs(30 * 86_400));
    let reader = Log::open_read_only(mem_dir(), options).unwrap();
    reader
        .verify_against(&cp)
        .expect("a run that dropped nothing is no drop");
}

/// The seventh red team: a re-keyed log whose first era retention dropped,
/// its anchor entry's sealing state replaced by the new key's fresh state
/// (no tag yet), so that no recorded tag dated the drop. The state the
/// dropped records ended in is of a key whose sealing began before them: a
/// state naming a key whose sealing-started record is kept is forged.
#[test]
fn an_anchor_cannot_record_a_later_keys_state_for_a_dropped_era() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || dropping_options(&storage, clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era A");
    log.close().unwrap();
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    t += 60 * SEC;
    now.store(t, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.seal().unwrap();
    let b = log.setup_sealing(EPOCH).unwrap();
    log.append(b"era B, one record").unwrap();
    // Ten seconds on, every sealed segment (all of era A) may go.
    now.store(t + 10 * SEC, Ordering::SeqCst);
    let report = log.apply_retention(t + 10 * SEC).unwrap();
    assert!(!report.dropped_segments.is_empty());
    // The thief takes the host now: no tag of key B after the drop yet.
    let storage = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify_sealed(&[a.clone(), b.clone()])
        .expect("the honest drop of era A verifies with both keys");
    drop(reader);
    let b_id = b.id();
    let hashes = edit_anchor(&storage, &|e| {
        if let Some(x) = &mut e.ext {
            x.sealing = Some(wormlog::format::SealingState {
                key_id: b_id,
                last_tag: None,
            });
        }
    });
    repoint_retention_records(&storage, &hashes);
    keep_tree_prefix(&storage, &mem_dir(), report.first_seq - 1);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(
        reader.verify_sealed(&[a, b]),
        "a later key's state recorded",
    );
    assert!(detail.contains("sealing began after them"), "{detail}");
}

/// The seventh red team's false positive: a re-key (the key file deleted,
/// sealing set up again) that a crash cut short after its sealing-started
/// record and announced key file, then a writer's open epochs later. The
/// open took the old key's last tag for the new key's and moved the new key
/// past it: no tags were written, and verify, even without a key, failed
/// for ever ("the sealing key reached epoch 13, but the log's tags stop at
/// epoch 0"). Tags before a sealing-started record are an earlier key's.
#[test]
fn a_rekey_cut_short_then_a_writer_epochs_later_verifies() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = |s: &MemStorage| mem_options(s).clock(clock.clone());
    let log = Log::open(mem_dir(), options(&storage)).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    for i in 0..12 {
        t += EPOCH.as_nanos() as u64;
        now.store(t, Ordering::SeqCst);
        log.append(format!("era A {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    let log = Log::open(mem_dir(), options(&storage)).unwrap();
    let b = log.setup_sealing(EPOCH).unwrap();
    // The crash: setup done (its record durable, its key announced), no
    // close and no tag of the new key yet.
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    now.store(t + 10 * EPOCH.as_nanos() as u64, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options(&image)).unwrap();
    log.append(b"after the crash").unwrap();
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), options(&image)).unwrap();
    reader.verify().expect("without a key");
    reader.verify_sealed(&[a, b]).expect("with both keys");
}

/// The seventh red team: `wormctl setup-keys` killed after the log
/// announced its key and before it showed the key left a log sealed under a
/// key nobody holds, which no later setup could mend. The key is now handed
/// to the caller (shown, written, synced) before any of the setup is
/// written: when `keep` runs there is no key file yet; if it fails, nothing
/// is set up; a crash right after the setup leaves a log its kept key
/// verifies.
#[test]
fn setup_keeps_the_verification_key_before_announcing_it() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.append(b"before sealing").unwrap();
    let fss = mem_dir().join("wormlog.fss");
    let failed = log.setup_sealing_with(EPOCH, |_| Err(std::io::Error::other("disk full")));
    assert!(failed.is_err());
    assert!(storage.read_file(&fss).is_none(), "nothing set up");
    let kept = std::sync::Mutex::new(None);
    let key = log
        .setup_sealing_with(EPOCH, |k| {
            assert!(
                storage.read_file(&fss).is_none(),
                "kept before any key file"
            );
            *kept.lock().unwrap() = Some(k.clone());
            Ok(())
        })
        .unwrap();
    let kept = kept.into_inner().unwrap().expect("the key was kept");
    assert_eq!(kept.to_text(), key.to_text());
    let image = storage.crash_image(Tear::LoseUnsynced, 0);
    drop(log);
    let reader = Log::open_read_only(mem_dir(), mem_options(&image)).unwrap();
    reader
        .verify_sealed(&[kept])
        .expect("the kept key verifies the log a crash left");
}

/// The seventh red team's false positive: a power cut during a sealed
/// close's tag kept the tag frame's first sector and lost the next, which
/// held its kind byte (zeros read as a user record): the log would not
/// open, and verify called it tampered. A frame head whose kind lies in a
/// lost (zero) sector is a torn tail: cut, and the log opens and verifies.
#[test]
fn a_close_tag_torn_across_a_sector_boundary_is_a_torn_tail() {
    let mut tried = 0;
    for pad in (0..600usize).step_by(8) {
        let storage = MemStorage::new();
        let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
        let key = log.setup_sealing(EPOCH).unwrap();
        log.append(&vec![b'p'; pad]).unwrap();
        // The crash comes before the tag is durable: the key file is still
        // the one before the close evolved it.
        let fss = mem_dir().join("wormlog.fss");
        let key_before = storage.read_file(&fss).unwrap();
        log.close().unwrap();
        storage.write_file(&fss, key_before);
        let path = active_segment(&storage);
        let mut bytes = storage.read_file(&path).unwrap();
        let recs = records_of(&bytes);
        let tag = recs.last().unwrap();
        assert_eq!(
            tag.kind,
            RecordKind::EpochTag,
            "a sealed close ends with its tag"
        );
        let mut one = Vec::new();
        encode_frame(
            &mut one,
            1,
            0,
            0,
            tag.kind,
            &tag.payload,
            &wormlog::Hash::from_bytes([0; 32]),
        );
        let offset = bytes.len() - one.len();
        let boundary = (offset + 32) / 512 * 512;
        if boundary <= offset {
            continue;
        }
        tried += 1;
        for b in &mut bytes[boundary..] {
            *b = 0;
        }
        storage.write_file(&path, bytes);
        let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
        reader.verify().unwrap_or_else(|e| panic!("pad {pad}: {e}"));
        drop(reader);
        let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
        log.append(b"after the power cut").unwrap();
        log.close().unwrap();
        let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
        reader
            .verify_sealed(&[key])
            .unwrap_or_else(|e| panic!("pad {pad}: {e}"));
    }
    assert!(
        tried > 0,
        "no padding put the tag's kind in the next sector"
    );
}

/// The eighth red team: a re-keyed log (key A's era, the key file
/// deleted, key B set up in a new segment), A's whole era dropped days
/// after it was written, under a 30-day policy, and the anchor entry
/// recording A's state with `state` (no tag, or A's first tag) and a
/// newest_ns of 1970. No kept tag of A bounds how young the dropped records
/// were, so the drop is dated by the first kept record: caught with both
/// keys and the floor. Passed before (exit 0).
#[test]
fn a_dropped_era_no_kept_tag_continues_is_dated_by_the_kept_start() {
    use wormlog::format::{
        encode_anchor_header, AnchorEntry, AnchorExt, DroppedSegment, SealingState,
    };
    let storage = MemStorage::new();
    let start = an_hour_ago() - 6 * DAY;
    let (now, clock) = manual_clock(start);
    let policy = Retention::default()
        .max_age(Duration::from_secs(400 * 86_400))
        .min_age(Duration::from_secs(30 * 86_400));
    let options = || {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .retention(policy.clone())
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = start;
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 100, "era A");
    log.close().unwrap();
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    t += DAY;
    now.store(t, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.seal().unwrap();
    let b = log.setup_sealing(EPOCH).unwrap();
    for i in 0..10 {
        t += 6 * SEC;
        now.store(t, Ordering::SeqCst);
        log.append(format!("era B {i}").as_bytes()).unwrap();
    }
    let segs = log.segments().unwrap();
    let kept = segs.last().unwrap().clone();
    let first = kept.first_seq;
    let root = log.tree_head_at(first - 1).unwrap().root;
    log.close().unwrap();
    // The thief, hours later: A's era gone, the anchor states A's fresh
    // state and a newest record of 1970, the drop recorded at the tail.
    let dropped: Vec<_> = segs.iter().filter(|s| s.number < kept.number).collect();
    for s in &dropped {
        assert!(storage.delete_file(&s.path), "{}", s.path.display());
    }
    let entry = AnchorEntry {
        time_ns: t,
        first_seq: first,
        prev_hash: kept.prev_hash,
        prev_entry_hash: wormlog::format::anchor_genesis(&active_log_id(&storage)),
        dropped: dropped
            .iter()
            .map(|s| DroppedSegment {
                segment: s.number,
                first_seq: s.first_seq,
                last_seq: s.last_seq,
                last_hash: s.last_hash,
            })
            .collect(),
        ext: Some(AnchorExt {
            tree: Some((first - 1, root)),
            sealing: Some(SealingState {
                key_id: a.id(),
                last_tag: None,
            }),
            newest_ns: 1_000_000_000,
        }),
    };
    storage.write_file(
        &mem_dir().join("wormlog.anchor"),
        [
            &encode_anchor_header(&active_log_id(&storage))[..],
            &entry.encode(),
        ]
        .concat(),
    );
    let drop_record = SystemEvent::RetentionApplied {
        from_segment: dropped[0].number,
        to_segment: dropped[dropped.len() - 1].number,
        first_seq: 1,
        last_seq: first - 1,
        anchor_entry_hash: entry.hash(),
    };
    append_raw(
        &storage,
        &kept.path,
        RecordKind::RetentionApplied,
        t,
        drop_record.encode(),
    );
    keep_tree_prefix(&storage, &mem_dir(), first - 1);
    let floor = Duration::from_secs(30 * 86_400);
    let options = mem_options(&storage)
        .clock(clock_at(t + 3600 * SEC))
        .verify_min_age(floor);
    let reader = Log::open_read_only(mem_dir(), options).unwrap();
    let detail = assert_caught(
        reader.verify_sealed(&[a, b]),
        "a re-keyed era dropped young",
    );
    assert!(detail.contains("minimum age"), "{detail}");
}

/// The ninth red team: after 40 days closed, a writer's first tag covers
/// the gap's epochs and seals the record from before it; records written
/// after that tag, in the same epoch, went into segments a drop then
/// removed, with that gap tag recorded as the last dropped tag and a
/// newest_ns stated from before the gap. The records after a tag were
/// committed no earlier than its last epoch's start: the drop is dated so.
/// Passed before (Ok with the key and a 30-day floor).
#[test]
fn a_gap_tag_does_not_date_the_records_after_it_back() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let policy = Retention::default()
        .max_age(Duration::from_secs(1))
        .clock_ahead_max(Duration::from_secs(60 * 86_400));
    let options = || dropping_options(&storage, clock.clone()).retention(policy.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..3 {
        log.append(format!("before the gap {i}").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    let t = T0 + 40 * DAY;
    now.store(t, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    for i in 0..150 {
        log.append(format!("event {i:04} after the gap, with padding").as_bytes())
            .unwrap();
    }
    log.seal().unwrap();
    now.store(t + 10 * SEC, Ordering::SeqCst);
    let report = log.apply_retention(t + 10 * SEC).unwrap();
    assert!(!report.dropped_segments.is_empty());
    // The thief takes the host now (no tag after the drop yet).
    let storage = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    let floor = Duration::from_secs(30 * 86_400);
    let reader_at = |at: u64| {
        let options = mem_options(&storage)
            .clock(clock_at(at))
            .verify_min_age(floor);
        Log::open_read_only(mem_dir(), options).unwrap()
    };
    // Honest: the drop was of minutes-old records, which the floor refuses.
    assert_caught(
        reader_at(t + 3600 * SEC).verify_sealed(std::slice::from_ref(&key)),
        "honest",
    );
    let hashes = edit_anchor(&storage, &|e| {
        if let Some(x) = &mut e.ext {
            x.newest_ns = T0;
        }
    });
    repoint_retention_records(&storage, &hashes);
    keep_tree_prefix(&storage, &mem_dir(), report.first_seq - 1);
    let detail = assert_caught(
        reader_at(t + 3600 * SEC).verify_sealed(&[key]),
        "newest_ns dated back to before the gap",
    );
    assert!(detail.contains("minimum age"), "{detail}");
}

/// The ninth red team's false positive: a retention run cut short between
/// its deletions, whose range spans a re-key (the new key's sealing-started
/// record in a segment it had still to delete). The anchor's state is of
/// the range's end, which the log still holds: the kept records before it
/// continue no recorded state. Verify called it tampered (the anchored key
/// "began after" the drop, and the old key's tags checked on the new key's
/// schedule) until a later run finished the drop.
#[test]
fn a_retention_run_cut_short_across_a_rekey_verifies() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || dropping_options(&storage, clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era A");
    log.close().unwrap();
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    t += 60 * SEC;
    now.store(t, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    let b = log.setup_sealing(EPOCH).unwrap();
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era B");
    log.seal().unwrap();
    let before = storage.crash_image(Tear::KeepUnsynced, 0);
    now.store(t + 10 * SEC, Ordering::SeqCst);
    let report = log.apply_retention(t + 10 * SEC).unwrap();
    assert!(report.dropped_segments.len() >= 3, "{report:?}");
    log.close().unwrap();
    // The crash: only the first segment was deleted; the rest come back.
    restore_all_but_the_first_dropped(&storage, &before, &report.dropped_segments);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader.verify().expect("a run cut short, no key");
    reader
        .verify_sealed(&[a, b])
        .expect("a run cut short, with both keys");
}

/// Issue 27: a faithful copy of a sealed log (a restore from its bucket, a
/// backup) has no sealing key file, and verify with the key called it cut
/// back ("the sealing key file is missing"). Verified as a copy (the
/// verifier's word, `Options::verify_as_copy`, `wormctl verify --copy`),
/// it verifies through its last tag; a record edited in it still fails.
#[test]
fn a_copy_without_the_key_file_verifies_as_a_copy() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), mem_options(&storage).clock(clock.clone())).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..20u64 {
        now.store(T0 + i * 10 * SEC, Ordering::SeqCst);
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let copy = storage.crash_image(Tear::KeepUnsynced, 0);
    assert!(copy.delete_file(&mem_dir().join("wormlog.fss")));
    let later = clock_at(T0 + 30 * DAY);
    let reader = Log::open_read_only(mem_dir(), mem_options(&copy).clock(later.clone())).unwrap();
    assert_caught(
        reader.verify_sealed(std::slice::from_ref(&key)),
        "no key file, not said a copy",
    );
    let as_copy = mem_options(&copy).clock(later).verify_as_copy(true);
    let reader = Log::open_read_only(mem_dir(), as_copy.clone()).unwrap();
    let report = reader
        .verify_sealed(std::slice::from_ref(&key))
        .expect("a faithful copy");
    let sealing = report.sealing.unwrap();
    assert!(sealing.checked && sealing.sealed_through_seq.is_some());
    drop(reader);
    let path = active_segment(&copy);
    let bytes = copy.read_file(&path).unwrap();
    let recs: Vec<Rec> = records_of(&bytes)
        .into_iter()
        .map(|r| match r.payload.as_slice() {
            b"event 3" => Rec {
                payload: b"EVIL 3".to_vec(),
                ..r
            },
            _ => r,
        })
        .collect();
    copy.write_file(&path, rewritten(&bytes, &recs, &|_, _, _| unreachable!()));
    let reader = Log::open_read_only(mem_dir(), as_copy).unwrap();
    assert_caught(reader.verify_sealed(&[key]), "an edited copy");
}

/// The tenth red team: segments from before sealing was set up, dropped
/// seconds after they were written, under an anchor entry that truthfully
/// records no sealing state and states a newest record of 400 days ago.
/// No recorded tag dates such a drop: with a key given it is dated by the
/// first kept record (sealed by the kept tags). Passed before (Ok with the
/// key and a 365-day floor).
#[test]
fn a_drop_from_before_sealing_is_dated_by_the_kept_start() {
    use wormlog::format::{encode_anchor_header, AnchorEntry, AnchorExt, DroppedSegment};
    let storage = MemStorage::new();
    let start = an_hour_ago();
    let (now, clock) = manual_clock(start);
    let options = || {
        mem_options(&storage)
            .clock(clock.clone())
            .sealing(Sealing::Manual)
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    for i in 0..10 {
        log.append(format!("before sealing {i}").as_bytes())
            .unwrap();
    }
    log.seal().unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    let mut t = start;
    for i in 0..5 {
        t += EPOCH.as_nanos() as u64;
        now.store(t, Ordering::SeqCst);
        log.append(format!("sealed {i}").as_bytes()).unwrap();
    }
    let segs = log.segments().unwrap();
    let (dropped, kept) = (segs[0].clone(), segs[1].clone());
    let root = log.tree_head_at(kept.first_seq - 1).unwrap().root;
    log.close().unwrap();
    // The thief: segment 1 gone, an entry recording no sealing state and a
    // newest record of 400 days ago, the drop recorded at the tail.
    assert!(storage.delete_file(&dropped.path));
    let log_id = active_log_id(&storage);
    let entry = AnchorEntry {
        time_ns: t,
        first_seq: kept.first_seq,
        prev_hash: kept.prev_hash,
        prev_entry_hash: wormlog::format::anchor_genesis(&log_id),
        dropped: vec![DroppedSegment {
            segment: dropped.number,
            first_seq: dropped.first_seq,
            last_seq: dropped.last_seq,
            last_hash: dropped.last_hash,
        }],
        ext: Some(AnchorExt {
            tree: Some((kept.first_seq - 1, root)),
            sealing: None,
            newest_ns: start - 400 * DAY,
        }),
    };
    storage.write_file(
        &mem_dir().join("wormlog.anchor"),
        [&encode_anchor_header(&log_id)[..], &entry.encode()].concat(),
    );
    let drop_record = SystemEvent::RetentionApplied {
        from_segment: dropped.number,
        to_segment: dropped.number,
        first_seq: 1,
        last_seq: kept.first_seq - 1,
        anchor_entry_hash: entry.hash(),
    };
    let policy = SystemEvent::RetentionPolicySet {
        policy: Some(wormlog::format::RetentionRule {
            max_age_ns: 1,
            max_total_bytes: 0,
            min_age_ns: 365 * DAY,
            clock_ahead_max_ns: DAY,
        }),
    };
    let active = active_segment(&storage);
    append_raw(
        &storage,
        &active,
        RecordKind::RetentionPolicySet,
        t,
        policy.encode(),
    );
    append_raw(
        &storage,
        &active,
        RecordKind::RetentionApplied,
        t,
        drop_record.encode(),
    );
    keep_tree_prefix(&storage, &mem_dir(), kept.first_seq - 1);
    let floor = Duration::from_secs(365 * 86_400);
    let options = mem_options(&storage)
        .clock(clock_at(t + 60 * SEC))
        .verify_min_age(floor);
    let reader = Log::open_read_only(mem_dir(), options).unwrap();
    let detail = assert_caught(reader.verify_sealed(&[key]), "a drop from before sealing");
    assert!(detail.contains("minimum age"), "{detail}");
}

/// The eleventh red team: after a drop recorded by a format-3 writer (an
/// anchor entry with the extension), every kept segment relabelled format
/// 2, where format 3's checks of a tag's epochs did not apply. A format-3
/// writer's last segment is of format 3, and versions never go down.
#[test]
fn kept_segments_cannot_be_relabelled_format_2_after_a_format_3_drop() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(&storage, clock)).unwrap();
    append_events(&log, &now, T0, SEC, 150, "event");
    log.seal().unwrap();
    now.store(T0 + 200 * SEC, Ordering::SeqCst);
    assert!(!log
        .apply_retention(T0 + 200 * SEC)
        .unwrap()
        .dropped_segments
        .is_empty());
    log.close().unwrap();
    let kept = segment_paths(&storage, &mem_dir());
    assert_eq!(kept.len(), 1, "only the active segment is kept");
    let mut bytes = storage.read_file(&kept[0]).unwrap();
    let mut header = SegmentHeader::decode(&bytes).unwrap();
    header.version = 2;
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    storage.write_file(&kept[0], bytes);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "kept segments relabelled format 2");
    assert!(detail.contains("only a format-3 writer makes"), "{detail}");
}

/// The eleventh red team's false positive: a setup a crash cut short after
/// its sealing-started record was durable and before its key file was
/// marked announced. The key was kept first (`setup_sealing_with`), yet the
/// next writer's open deleted the key file as a setup nobody held the key
/// of, and verify with every key then failed for ever. The open now
/// finishes such a setup: the log's sealing-started record names the key.
#[test]
fn a_setup_cut_short_after_its_record_is_finished_by_the_next_open() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || mem_options(&storage).clock(clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    log.append(b"before sealing").unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    // The crash: the record durable, the key file not yet announced.
    let fss = mem_dir().join("wormlog.fss");
    let mut k = FssKeyFile::decode(&image.read_file(&fss).unwrap()).unwrap();
    k.announced = false;
    image.write_file(&fss, k.encode().to_vec());
    now.store(T0 + 5 * EPOCH.as_nanos() as u64, Ordering::SeqCst);
    let options = || mem_options(&image).clock(clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    log.append(b"after the crash").unwrap();
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), options()).unwrap();
    let report = reader
        .verify_sealed(&[key])
        .expect("the setup was finished");
    assert_eq!(report.sealing.unwrap().unsealed_records, 0);
}

/// The third red team's false positives: a crash state is not tampering.
/// An anchor entry torn to zeros (sectors lost) and a hold set whose
/// record the crash kept from being written (the file is written first)
/// read as tampered to a reader; a writer's open finishes both.
#[test]
fn a_torn_anchor_entry_and_an_unfinished_hold_are_crash_states_not_tampering() {
    let storage = MemStorage::new();
    sealed_log_after_retention(&storage);
    let anchor = mem_dir().join("wormlog.anchor");
    let mut bytes = storage.read_file(&anchor).unwrap();
    bytes.extend_from_slice(&[0u8; 100]);
    storage.write_file(&anchor, bytes);
    storage.write_file(&mem_dir().join("wormlog.hold"), b"case being set".to_vec());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader.verify().expect("crash states verify");
    drop(reader);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.verify().expect("and after a writer finished them");
}

/// The fifth red team's false positive: two sealed closes within one epoch
/// (the second moved the key two epochs ahead), then a reopen epochs later
/// whose catch-up tag sealed records two epochs before its first, which
/// verify refuses. The writer now makes no close tag while its key is
/// ahead of its clock.
#[test]
fn closes_within_one_epoch_then_a_late_reopen_verify() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || mem_options(&storage).clock(clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    log.append(b"one").unwrap();
    log.close().unwrap();
    now.store(T0 + 10 * SEC, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.append(b"two").unwrap();
    log.close().unwrap();
    now.store(T0 + 20 * SEC, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.append(b"three").unwrap();
    log.close().unwrap();
    now.store(T0 + 250 * SEC, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    log.append(b"four").unwrap();
    log.verify_sealed(std::slice::from_ref(&key))
        .expect("closes within an epoch, then a late reopen");
    log.close().unwrap();
}

/// The fifth red team: a segment relabelled format 2 after format-3 ones
/// picks rules without format 3's checks (an anchor entry without the
/// extension, no tree root). No writer goes back a version.
#[test]
fn a_segment_cannot_be_relabelled_an_older_format() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage).segment_bytes_max(4096)).unwrap();
    for i in 0..100 {
        log.append(format!("event {i:04} with padding for the segments").as_bytes())
            .unwrap();
    }
    drop(log);
    let last = segment_paths(&storage, &mem_dir()).pop().unwrap();
    let mut bytes = storage.read_file(&last).unwrap();
    let mut header = SegmentHeader::decode(&bytes).unwrap();
    assert_eq!(header.version, 3);
    header.version = 2;
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    storage.write_file(&last, bytes);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_caught(reader.verify(), "relabelled format 2");
    assert!(detail.contains("goes back a version"), "{detail}");
}

/// Sealing set up again (the key file deleted, a second key) and then
/// retention dropping the first key's era: the anchor records the state
/// the dropped records ended in, and the log verifies with both keys.
/// (The fifth red team's forgery records none there: caught by the rule
/// that every key given whose start is gone needs a recorded state.)
#[test]
fn a_rekeyed_log_whose_first_era_retention_dropped_verifies_with_both_keys() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || dropping_options(&storage, clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era A");
    log.close().unwrap();
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    t += 60 * SEC;
    now.store(t, Ordering::SeqCst);
    let log = Log::open(mem_dir(), options()).unwrap();
    let b = log.setup_sealing(EPOCH).unwrap();
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era B");
    log.seal().unwrap();
    let report = log.apply_retention(t).unwrap();
    assert!(!report.dropped_segments.is_empty());
    log.verify_sealed(&[a.clone(), b.clone()]).unwrap();
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader.verify_sealed(&[a, b]).expect("both keys");
}

/// Twelfth red team: `wormctl checkpoint` verified the tree's files
/// against the records, then read them again to compute the root it
/// signed; swapping a leaf (and its level-1 entry) in between got an
/// honest checkpoint over a forged tree, and a proof of a record that
/// never existed then held. The checkpoint of a verification now signs
/// the root the verification computed from the records it walked. Here
/// the swap is made after `verify` returns (the moment the race hit).
#[test]
fn a_checkpoint_signs_the_tree_its_verification_computed_not_the_files_after() {
    use wormlog::format::merkle::root_of;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    for i in 0..300 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    let report = reader.verify().unwrap();
    // The honest root from another handle: a handle keeps the subtree
    // roots it computed (tree.rs, memo), and this one must read the files
    // only once they are forged.
    let honest = Log::open_read_only(dir.path(), Options::default())
        .unwrap()
        .tree_head()
        .unwrap();
    assert_eq!(report.tree_root, Some(honest.root));
    // The forged tree: leaf 5 of tile 0 replaced, its level-1 entry made
    // the forged tile's root, both written in place.
    let t0 = dir.path().join("wormlog.tiles-0");
    let mut level0 = std::fs::read(&t0).unwrap();
    level0[5 * 32..6 * 32].copy_from_slice(&[0x5a; 32]);
    let tile: Vec<Hash> = level0[..256 * 32]
        .chunks(32)
        .map(|c| Hash::from_bytes(c.try_into().unwrap()))
        .collect();
    let write_at = |path: &Path, at: u64, bytes: &[u8]| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(bytes, at).unwrap();
    };
    write_at(&t0, 5 * 32, &[0x5a; 32]);
    write_at(
        &dir.path().join("wormlog.tiles-1"),
        0,
        root_of(&tile).as_bytes(),
    );
    let forged = reader.tree_head().unwrap();
    assert_ne!(forged.root, honest.root, "the files now give a forged root");
    let cp = reader.checkpoint_verified(&report).unwrap();
    assert_eq!(cp.seq, report.head.seq);
    assert_eq!(
        cp.tree_root,
        Some(honest.root),
        "the checkpoint signs the verified root, not the files' forged one"
    );
}

/// Twelfth red team: a read-only `wormctl checkpoint` beside a live
/// writer signed records the writer had written but not yet synced; a
/// power cut then left the log shorter than the checkpoint, and verify
/// with it called an honest crash state tampered. What a checkpoint names
/// is now made durable before it is made, by a reader (an fdatasync of
/// the active segment it read) and by a writer (a sync).
#[test]
fn a_checkpoint_never_names_records_a_crash_can_take_back() {
    let storage = MemStorage::new();
    let batched = wormlog::Durability::Batched {
        max_delay: Duration::from_secs(3600),
    };
    let writer = Log::open(mem_dir(), mem_options(&storage).durability(batched)).unwrap();
    for i in 0..20 {
        writer.append(format!("event {i}").as_bytes()).unwrap();
    }
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let report = reader.verify().unwrap();
    assert_eq!(
        report.head,
        writer.head(),
        "the reader sees the unsynced records"
    );
    let by_reader = reader.checkpoint_verified(&report).unwrap();
    for i in 20..30 {
        writer.append(format!("event {i}").as_bytes()).unwrap();
    }
    let by_writer = writer.checkpoint().unwrap();
    for seed in 0..8 {
        let image = storage.crash_image(Tear::LoseUnsynced, seed);
        let after = Log::open_read_only(mem_dir(), mem_options(&image)).unwrap();
        for cp in [&by_reader, &by_writer] {
            after
                .verify_against(cp)
                .unwrap_or_else(|e| panic!("seed {seed}, checkpoint at {}: {e}", cp.seq));
        }
    }
    writer.close().unwrap();
}

/// Twelfth red team: a log cut back to before its sealing-started record
/// (key A's whole sealed era deleted), written on and re-keyed (key B, as
/// the README's rotation does); verify with both keys passed, A silently
/// unused, and with A alone said "a re-keyed log needs every era's key"
/// (exit 2), which led the auditor to the thief's B. A key names its log
/// now: one of this log, set up after its first kept record, whose
/// sealing-started record the log does not hold is a removed era.
#[test]
fn a_removed_era_is_caught_when_its_key_is_given() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = |s: &MemStorage| mem_options(s).clock(clock.clone());
    let log = Log::open(mem_dir(), options(&storage)).unwrap();
    let mut t = T0;
    let mut tick = |log: &Log, what: &str| {
        t += EPOCH.as_nanos() as u64;
        now.store(t, Ordering::SeqCst);
        log.append(what.as_bytes()).unwrap();
    };
    tick(&log, "before sealing");
    log.close().unwrap();
    // The thief's starting point: the log as it was before A's setup (the
    // records from the setup on cut away; the same files, the same log).
    let cut = storage.crash_image(Tear::KeepUnsynced, 0);
    let log = Log::open(mem_dir(), options(&storage)).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    assert_eq!(a.log_id, Some(log.log_id()), "a key names its log");
    for i in 0..5 {
        tick(&log, &format!("era A {i}"));
    }
    log.close().unwrap();
    Log::open_read_only(mem_dir(), options(&storage))
        .unwrap()
        .verify_sealed(std::slice::from_ref(&a))
        .expect("the honest log verifies with its key");
    // The forgery: go on from the cut, and re-key.
    let log = Log::open(mem_dir(), options(&cut)).unwrap();
    tick(&log, "the thief's record");
    let b = log.setup_sealing(EPOCH).unwrap();
    for i in 0..3 {
        tick(&log, &format!("era B {i}"));
    }
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), options(&cut)).unwrap();
    for keys in [vec![a.clone(), b.clone()], vec![a.clone()]] {
        let detail = assert_caught(reader.verify_sealed(&keys), "era A removed");
        assert!(detail.contains("era"), "{detail}");
    }
    // B alone is this log's, and sealed all it holds: that is what the
    // thief's log can show without A, and why A must be given.
    reader.verify_sealed(&[b]).expect("the thief's own era");
    // Another log's key is the operator's mistake, not tampering.
    let other = MemStorage::new();
    let elsewhere = Log::open(mem_dir(), mem_options(&other)).unwrap();
    let foreign = elsewhere.setup_sealing(EPOCH).unwrap();
    match reader.verify_sealed(&[foreign]) {
        Err(Error::KeyNotUsed { reason, .. }) => assert!(reason.contains("this log's key")),
        other => panic!("another log's key: {other:?}"),
    }
}

/// Thirteenth red team: a checkpoint taken while a retention run had
/// written its anchor entry but not yet synced it named that entry as the
/// anchor's head; a power cut then lost the entry, and verify with the
/// checkpoint called the honest crash state a rewritten anchor (exit 1).
/// A checkpoint now syncs the anchor file (and the directory) first.
#[test]
fn a_checkpoint_never_names_an_anchor_entry_a_crash_can_take_back() {
    use wormlog::storage::Storage;
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), dropping_options(&storage, clock.clone())).unwrap();
    append_events(&log, &now, T0, SEC, 150, "event");
    log.seal().unwrap();
    now.store(T0 + 200 * SEC, Ordering::SeqCst);
    assert!(!log
        .apply_retention(T0 + 200 * SEC)
        .unwrap()
        .dropped_segments
        .is_empty());
    append_events(&log, &now, T0 + 210 * SEC, SEC, 150, "later");
    log.seal().unwrap();
    drop(log);
    // A second run on a copy; only its anchor entry comes back, written
    // and not yet synced (no segment deleted, no retention record: the
    // state of a run between its anchor write and its fdatasync).
    let anchor = mem_dir().join("wormlog.anchor");
    let after = anchor_of_a_run_on_a_copy(&storage, &now, &clock, T0 + 500 * SEC);
    let before = storage.read_file(&anchor).unwrap();
    let mut file = storage.open_append(&anchor).unwrap();
    file.append(&after[before.len()..]).unwrap();
    drop(file);
    let options = || mem_options(&storage).clock(clock_at(T0 + 600 * SEC));
    let reader = Log::open_read_only(mem_dir(), options()).unwrap();
    let report = reader.verify().unwrap();
    let cp = reader.checkpoint_verified(&report).unwrap();
    for seed in 0..4 {
        let image = storage.crash_image(Tear::LoseUnsynced, seed);
        let opts = mem_options(&image).clock(clock_at(T0 + 600 * SEC));
        let after_crash = Log::open_read_only(mem_dir(), opts).unwrap();
        after_crash
            .verify_against(&cp)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    // And the checkpoint states the anchor head its verification read.
    let mut other = report.clone();
    other.anchor_head = Hash::from_bytes([9; 32]);
    let cp = reader.checkpoint_verified(&other).unwrap();
    assert_eq!(cp.retention.unwrap().anchor_head, other.anchor_head);
}

/// Thirteenth red team: tags had to be contiguous within one key only, so
/// the last tags of an era (and the records they sealed) could be cut
/// just before a re-key's sealing-started record, before the new key's
/// first tag existed (a crash during the re-key, or a thief holding the
/// new key's epoch-1 key), and verify with both keys passed. A rotation
/// now tags the old key through its current epoch first and says so in
/// the new sealing-started record; the old era's tags must reach the new
/// start. A re-key that found no key file is reported as an era whose end
/// is not proven, never passed in silence.
#[test]
fn an_old_eras_tail_cut_before_a_rotation_is_caught() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = |s: &MemStorage| mem_options(s).clock(clock.clone());
    let log = Log::open(mem_dir(), options(&storage)).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    for i in 0..6 {
        t += EPOCH.as_nanos() as u64;
        now.store(t, Ordering::SeqCst);
        log.append(format!("era A {i}").as_bytes()).unwrap();
    }
    let before_rotation = storage.crash_image(Tear::KeepUnsynced, 0);
    let b = log.setup_sealing(EPOCH).unwrap();
    now.store(t + SEC, Ordering::SeqCst);
    log.append(b"era B 0").unwrap();
    // A crash before the new key's first tag.
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    let keys = [a.clone(), b.clone()];
    let honest = Log::open_read_only(mem_dir(), options(&image))
        .unwrap()
        .verify_sealed(&keys)
        .expect("an honest rotation cut short by a crash");
    assert!(honest.sealing.unwrap().unproven_era_ends.is_empty());
    // The cut: era A's records and tags after its second tag, up to the
    // re-key's record, the chain recomputed (the old key's final tag,
    // after the re-key's record, no longer holds, nor can the thief's key
    // make one that continues the tags kept).
    let path = active_segment(&image);
    let orig = image.read_file(&path).unwrap();
    let recs = records_of(&orig);
    let at = |kind| -> Vec<usize> { (0..recs.len()).filter(|&i| recs[i].kind == kind).collect() };
    let (tags, started) = (at(RecordKind::EpochTag), at(RecordKind::SealingStarted));
    assert!(tags.len() >= 4 && started.len() == 2);
    let cut = |recs: &[Rec], from: usize| -> Vec<Rec> {
        recs[..=tags[1]]
            .iter()
            .chain(&recs[from..])
            .cloned()
            .collect()
    };
    image.write_file(
        &path,
        rewritten(&orig, &cut(&recs, started[1]), &|_, _, _| unreachable!()),
    );
    if image
        .read_file(&mem_dir().join("wormlog.tiles-0"))
        .is_some()
    {
        keep_tree_prefix(&image, &mem_dir(), 0);
    }
    let reader = Log::open_read_only(mem_dir(), options(&image)).unwrap();
    assert_caught(
        reader.verify_sealed(&keys),
        "era A's tail cut before the rotation",
    );
    drop(reader);
    // The fourteenth red team's form: cut the tail, then rotate for real
    // with the clock set back to where the kept tags stop (the thief holds
    // the key file, at a later epoch). The old key's final tag must
    // continue its kept tags, which the thief's key cannot.
    let stolen = before_rotation.crash_image(Tear::KeepUnsynced, 0);
    let path = active_segment(&stolen);
    let bytes = stolen.read_file(&path).unwrap();
    let recs = records_of(&bytes);
    let tags: Vec<usize> = (0..recs.len())
        .filter(|&i| recs[i].kind == RecordKind::EpochTag)
        .collect();
    let kept: Vec<Rec> = recs[..=tags[1]].to_vec();
    stolen.write_file(&path, rewritten(&bytes, &kept, &|_, _, _| unreachable!()));
    if stolen
        .read_file(&mem_dir().join("wormlog.tiles-0"))
        .is_some()
    {
        keep_tree_prefix(&stolen, &mem_dir(), 0);
    }
    let back = kept.last().unwrap().ts + SEC;
    let (_, back_clock) = manual_clock(back);
    let thief = Log::open(mem_dir(), mem_options(&stolen).clock(back_clock.clone())).unwrap();
    let c = thief.setup_sealing(EPOCH).unwrap();
    thief.append(b"the thief's record").unwrap();
    thief.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&stolen).clock(back_clock)).unwrap();
    assert_caught(
        reader.verify_sealed(&[a.clone(), c]),
        "a backdated rotation after the tail was cut",
    );
    drop(reader);
    // The re-key's record rewritten to say it found no key file, the old
    // key's final tag dropped with it: an era whose end is not proven,
    // which verify says.
    let mut recs = cut(&records_of(&orig), started[1]);
    let rekey = tags[1] + 1;
    let Ok(SystemEvent::SealingStarted {
        start_ns,
        interval_ns,
        key_id,
        ..
    }) = SystemEvent::decode(RecordKind::SealingStarted, &recs[rekey].payload).unwrap()
    else {
        panic!("the re-key's record")
    };
    recs[rekey].payload = SystemEvent::SealingStarted {
        start_ns,
        interval_ns,
        key_id,
        previous: Some(wormlog::PreviousEra::NoKeyFile),
    }
    .encode();
    recs.retain(|r| r.kind != RecordKind::EpochTag || r.ts < start_ns);
    image.write_file(&path, rewritten(&orig, &recs, &|_, _, _| unreachable!()));
    let reader = Log::open_read_only(mem_dir(), options(&image)).unwrap();
    let report = reader.verify_sealed(&keys).unwrap();
    let ends = report.sealing.unwrap().unproven_era_ends;
    assert_eq!(ends.len(), 1, "the era's end is reported");
    assert_eq!(ends[0].0, a.id());
}

/// A rotation a crash cuts short at any step leaves a log that verifies:
/// with the old key alone where the new key's record did not become
/// durable (its key was handed out but seals nothing: not to be given),
/// and with both where it did (the next open makes the old key's final tag
/// if it was missing, and installs the new key). Power cuts at every
/// mutation of the rotation, unsynced bytes and entries lost.
#[test]
fn a_rotation_cut_short_at_any_step_verifies_after_the_next_open() {
    for step in 1.. {
        let storage = MemStorage::new();
        let (now, clock) = manual_clock(T0);
        let options = |s: &MemStorage| mem_options(s).clock(clock.clone());
        let log = Log::open(mem_dir(), options(&storage)).unwrap();
        let a = log.setup_sealing(EPOCH).unwrap();
        for i in 0..3 {
            now.store(T0 + (i + 1) * EPOCH.as_nanos() as u64, Ordering::SeqCst);
            log.append(format!("era A {i}").as_bytes()).unwrap();
        }
        let kept = std::sync::Mutex::new(None);
        storage.crash_after(storage.mutations() + step);
        let done = log.setup_sealing_with(EPOCH, |k| {
            *kept.lock().unwrap() = Some(k.clone());
            Ok(())
        });
        let image = storage.crash_image(Tear::LoseUnsynced, step);
        drop(log);
        // The next open comes epochs later (the eighteenth red team: the
        // new key's catch-up tag then did not cover the old key's final
        // tag the open had just made).
        now.fetch_add(5 * EPOCH.as_nanos() as u64, Ordering::SeqCst);
        let reopened = Log::open(mem_dir(), options(&image)).unwrap();
        reopened.append(b"after the crash").unwrap();
        reopened.close().unwrap();
        let reader = Log::open_read_only(mem_dir(), options(&image)).unwrap();
        let b = kept.lock().unwrap().clone();
        let with_both = b.map(|b| reader.verify_sealed(&[a.clone(), b]));
        match with_both {
            Some(Ok(r)) => assert!(r.sealing.unwrap().unproven_era_ends.is_empty()),
            other => {
                reader
                    .verify_sealed(std::slice::from_ref(&a))
                    .unwrap_or_else(|e| {
                        panic!("step {step}: with the old key: {e}; with both: {other:?}")
                    });
            }
        }
        if done.is_ok() {
            break;
        }
    }
}

/// Fifteenth red team: `export_tlog` signed the root it read from the tree
/// files after `wormctl export-tlog`'s own verification, so a leaf swapped
/// in between was published under an honest signature (a false proof then
/// held). The export now verifies and signs the root its verification
/// computed: a tree that does not match the records is never published.
#[test]
fn an_export_never_signs_a_tree_that_does_not_match_the_records() {
    use wormlog::format::merkle::root_of;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    for i in 0..300 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let t0 = dir.path().join("wormlog.tiles-0");
    let mut level0 = std::fs::read(&t0).unwrap();
    level0[5 * 32..6 * 32].copy_from_slice(&[0x5a; 32]);
    let tile: Vec<Hash> = level0[..256 * 32]
        .chunks(32)
        .map(|c| Hash::from_bytes(c.try_into().unwrap()))
        .collect();
    std::fs::write(&t0, &level0).unwrap();
    std::fs::write(
        dir.path().join("wormlog.tiles-1"),
        root_of(&tile).as_bytes(),
    )
    .unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    let key = wormlog::CheckpointKey::generate("auditor").unwrap();
    let out = tempfile::tempdir().unwrap();
    match reader.export_tlog(&out.path().join("tlog"), Some(&key)) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("a forged tree was published: {other:?}"),
    }
}

/// Fifteenth red team: a backup of a running log (cp, rsync or tar copy
/// one file after another) held a sealing key file copied after the
/// segments, epochs ahead of the copy's last tag, and `verify --copy` with
/// the key read it as records cut after that tag (exit 1). A copy is now
/// checked through its last tag whatever key file it holds.
#[test]
fn a_live_backup_with_a_later_key_file_verifies_as_a_copy() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), mem_options(&storage).clock(clock.clone())).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    append_events(&log, &now, T0 + SEC, 20 * SEC, 10, "before the backup");
    // The segments are copied now; the key file a few epochs later.
    let copy = storage.crash_image(Tear::KeepUnsynced, 0);
    append_events(&log, &now, T0 + 300 * SEC, 20 * SEC, 10, "after the backup");
    let fss = mem_dir().join("wormlog.fss");
    copy.write_file(&fss, storage.read_file(&fss).unwrap());
    log.close().unwrap();
    let later = clock_at(T0 + DAY);
    let reader = Log::open_read_only(mem_dir(), mem_options(&copy).clock(later.clone())).unwrap();
    assert_caught(
        reader.verify_sealed(std::slice::from_ref(&key)),
        "a key file ahead of the tags, not said a copy",
    );
    let as_copy = mem_options(&copy).clock(later).verify_as_copy(true);
    let reader = Log::open_read_only(mem_dir(), as_copy).unwrap();
    reader
        .verify_sealed(std::slice::from_ref(&key))
        .expect("a faithful copy of a live log");
}

/// Sixteenth red team: the same crash state across a rotation (setup run
/// again, the key file in place, the old key's final tag after the new
/// key's record) read as tampering, with and without the keys ("epoch tags
/// skip from epoch 0 to epoch N"): in a log that starts inside its entry's
/// range the final tag was checked as the new key's.
#[test]
fn a_retention_run_cut_short_across_a_rotation_verifies() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let options = || dropping_options(&storage, clock.clone());
    let log = Log::open(mem_dir(), options()).unwrap();
    let a = log.setup_sealing(EPOCH).unwrap();
    let mut t = T0;
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era A");
    t += 60 * SEC;
    now.store(t, Ordering::SeqCst);
    let b = log.setup_sealing(EPOCH).unwrap();
    t = append_events(&log, &now, t + 6 * SEC, 6 * SEC, 80, "era B");
    log.seal().unwrap();
    let before = storage.crash_image(Tear::KeepUnsynced, 0);
    now.store(t + 10 * SEC, Ordering::SeqCst);
    let report = log.apply_retention(t + 10 * SEC).unwrap();
    assert!(report.dropped_segments.len() >= 3, "{report:?}");
    log.close().unwrap();
    restore_all_but_the_first_dropped(&storage, &before, &report.dropped_segments);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify()
        .expect("a run cut short across a rotation, no key");
    let r = reader
        .verify_sealed(&[a, b.clone()])
        .expect("a run cut short across a rotation, with both keys");
    assert!(r.sealing.unwrap().unproven_era_ends.is_empty());
    // The earlier era's key left out: the operator's to give (exit 2), as
    // where a sealing-started record names it (seventeenth red team).
    match reader.verify_sealed(&[b]) {
        Err(Error::NotThisLogsKey { .. }) => {}
        other => panic!("the earlier era's key left out: {other:?}"),
    }
}

/// Sixteenth red team: `wormctl prove --checkpoint` printed a record whose
/// payload was rewritten in place (its chain recomputed, the tree left)
/// beside the signed root and a path, exit 0; only check-proof found the
/// path led elsewhere. A proof is now handed out only where the record's
/// own leaf leads through it to the tree's root.
#[test]
fn a_proof_of_a_changed_record_is_refused() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    for i in 0..300 {
        log.append(format!("event {i:04}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let recs: Vec<Rec> = records_of(&bytes)
        .into_iter()
        .map(|r| match r.payload.as_slice() {
            b"event 0250" => Rec {
                payload: b"event 9999".to_vec(),
                ..r
            },
            _ => r,
        })
        .collect();
    storage.write_file(&path, rewritten(&bytes, &recs, &|_, _, _| unreachable!()));
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let seq = reader
        .read(..)
        .unwrap()
        .map(|r| r.unwrap())
        .find(|r| r.payload() == b"event 9999")
        .unwrap()
        .seq();
    let size = reader.head().seq;
    match reader.prove_inclusion(seq, size) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("a proof of a changed record: {other:?}"),
    }
    reader
        .prove_inclusion(seq - 1, size)
        .expect("an unchanged record's proof");
}

/// Nineteenth red team: records cut after a tag, and the key file's key id
/// changed to one nobody holds (its key bytes and epoch kept, its CRC
/// fixed): the key file's epoch, which shows the cut, was checked only
/// against a key file naming the log's key, and verify passed. An
/// announced key file naming another key is tampering.
#[test]
fn a_key_file_renamed_to_another_key_does_not_hide_a_cut() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), mem_options(&storage).clock(clock.clone())).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..6u64 {
        now.store(T0 + (i + 1) * EPOCH.as_nanos() as u64, Ordering::SeqCst);
        log.append(format!("sealed {i}").as_bytes()).unwrap();
    }
    log.close().unwrap();
    let path = active_segment(&storage);
    let bytes = storage.read_file(&path).unwrap();
    let recs = records_of(&bytes);
    let first_tag = recs
        .iter()
        .position(|r| r.kind == RecordKind::EpochTag)
        .unwrap();
    storage.write_file(&path, bytes[..frame_map(&bytes)[first_tag + 1].0].to_vec());
    if storage
        .read_file(&mem_dir().join("wormlog.tiles-0"))
        .is_some()
    {
        keep_tree_prefix(&storage, &mem_dir(), 0);
    }
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_caught(
        reader.verify_sealed(std::slice::from_ref(&key)),
        "the cut, key file as it was",
    );
    drop(reader);
    let mut k = host_key(&storage);
    k.key_id = [0x11; 8];
    storage.write_file(&mem_dir().join("wormlog.fss"), k.encode().to_vec());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_caught(
        reader.verify_sealed(std::slice::from_ref(&key)),
        "the cut, key file renamed",
    );
    assert_caught(reader.verify(), "the cut, key file renamed, no key");
}
