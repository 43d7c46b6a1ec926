//! A log written by format version 2 keeps reading, verifying and taking
//! appends under today's code. tests/fixtures/v2/log is a small log as the
//! engine wrote it to disk (sealed segments, closed raw segments, the active
//! segment, an anchor from a retention run, the recorded retention policy,
//! a legal hold stated by log-state records at segment starts, and a
//! clock-jumped record); a change that reads those bytes differently fails
//! here. Format 2 is closed: the ignored test below is how the engine of
//! format 2 wrote it (today's writes format 3: tests/format_v3_fixture.rs).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wormlog::format::hex;
use wormlog::{Log, Options, RecordKind, Retention, Sealing};

const T0: u64 = 1_764_000_000_000_000_000;
/// User records written before the retention run, and after it.
const BEFORE: usize = 120;
const AFTER: usize = 50;
const HOLD: &str = "fixture hold: case 2026-17";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2/log")
}

fn expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2/expected.txt")
}

fn expected() -> std::collections::HashMap<String, String> {
    fixture_expected(&expected_path())
}

#[test]
#[ignore = "wrote tests/fixtures/v2 with the engine of format 2; today's engine writes format 3, so never run it again"]
fn write_v2_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (now, clock) = manual_clock(T0);
    let options = Options::default()
        .clock(clock)
        .sealing(Sealing::Manual)
        .segment_bytes_max(4096)
        .seal_frame_bytes(4096)
        .retention(Retention::default().max_age(Duration::from_secs(60)));
    let log = Log::open(&dir, options.clone()).unwrap();
    for i in 0..BEFORE {
        now.fetch_add(1_000_000_000, Ordering::SeqCst);
        log.append(&fixture_payload(i)).unwrap();
    }
    log.seal().unwrap();
    // Drop the sealed segments older than a minute: the anchor file.
    let report = log.apply_retention(now.load(Ordering::SeqCst)).unwrap();
    assert!(
        !report.dropped_segments.is_empty(),
        "retention dropped something"
    );
    log.set_legal_hold(HOLD).unwrap();
    // Someone looked at the log and said so (an accessed record).
    log.record_access("auditor", "dump seqs 1..=40", "fixture")
        .unwrap();
    // A clock leap forward, which the writer records.
    now.fetch_add(2 * 3600 * 1_000_000_000, Ordering::SeqCst);
    for i in BEFORE..BEFORE + AFTER {
        now.fetch_add(1_000_000_000, Ordering::SeqCst);
        log.append(&fixture_payload(i)).unwrap();
    }
    drop(log);
    // The lock file is the writer's; a checkout needs none.
    std::fs::remove_file(dir.join("wormlog.lock")).unwrap();
    let log = Log::open_read_only(&dir, Options::default()).unwrap();
    let v = log.verify().unwrap();
    let tree = log.tree_head().unwrap();
    assert!(
        dir.join("wormlog.tiles-0").exists(),
        "the Merkle tree's tiles"
    );
    assert!(files_with(&dir, ".wlog.zst").len() >= 2, "sealed segments");
    assert!(files_with(&dir, ".wlog").len() >= 2, "closed raw segments");
    std::fs::write(
        expected_path(),
        format!(
            "first_seq {}\nhead_seq {}\nhead_hash {}\nsegments {}\ntree_root {}\n",
            v.first_seq,
            v.head.seq,
            hex(v.head.hash),
            v.segments,
            hex(tree.root)
        ),
    )
    .unwrap();
}

#[test]
fn a_v2_log_reads_and_verifies_to_the_head_it_was_written_with() {
    let want = expected();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), work.path());
    let log = Log::open_read_only(work.path(), Options::default()).unwrap();
    let v = log.verify().unwrap();
    assert_eq!(v.first_seq.to_string(), want["first_seq"]);
    assert_eq!(v.head.seq.to_string(), want["head_seq"]);
    assert_eq!(hex(v.head.hash), want["head_hash"]);
    assert_eq!(v.segments.to_string(), want["segments"]);
    assert!(v.first_seq > 1, "the fixture starts at a retention anchor");
    assert_eq!(log.anchor_entries().unwrap().len(), 1);
    assert_eq!(log.legal_hold().unwrap().as_deref(), Some(HOLD));
    // The Merkle tree (format 2, section 14) covers records retention
    // dropped: its root over every record the log ever held.
    let tree = log.tree_head().unwrap();
    assert_eq!(tree.size.to_string(), want["head_seq"]);
    assert_eq!(hex(tree.root), want["tree_root"]);
    let p = log.prove_consistency(1, tree.size).unwrap();
    assert!(p.verify(&log.tree_head_at(1).unwrap().root, &tree.root));

    let records = all_records(&log);
    // Format 2's own records are there: the policy before the drop, the
    // hold stated at later segments' starts, the clock leap.
    for kind in [
        RecordKind::RetentionPolicySet,
        RecordKind::LogState,
        RecordKind::ClockJumped,
        RecordKind::Accessed,
    ] {
        assert!(
            records.iter().any(|r| r.kind() == kind),
            "a {} record",
            kind.name()
        );
    }
    for f in files_with(work.path(), ".wlog") {
        let head = std::fs::read(&f).unwrap();
        assert_eq!(&head[8..10], &[2, 0], "{}: format 2", f.display());
    }
    assert_eq!(records.first().unwrap().seq(), v.first_seq);
    assert_eq!(records.last().unwrap().seq(), v.head.seq);
    assert!(records.windows(2).all(|w| w[1].seq() == w[0].seq() + 1));
    assert!(records
        .windows(2)
        .all(|w| w[1].timestamp() >= w[0].timestamp()));
    // The user records left are the last ones written, in order, intact.
    let users: Vec<&[u8]> = records
        .iter()
        .filter(|r| !r.is_system())
        .map(|r| r.payload())
        .collect();
    let total = BEFORE + AFTER;
    assert!(users.len() > AFTER && users.len() < total);
    for (k, got) in users.iter().enumerate() {
        let i = total - users.len() + k;
        assert_eq!(*got, fixture_payload(i).as_slice(), "user record {i}");
    }
    // And every file verifies on its own.
    for f in files_with(work.path(), ".wlog")
        .into_iter()
        .chain(files_with(work.path(), ".wlog.zst"))
    {
        wormlog::verify_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn a_v2_log_takes_appends_and_seals_under_todays_writer() {
    let want = expected();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), work.path());
    let log = Log::open(work.path(), Options::default().sealing(Sealing::Inline)).unwrap();
    let r = log.append(b"written by today's engine").unwrap();
    assert!(r.seq > want["head_seq"].parse::<u64>().unwrap());
    log.seal().unwrap();
    let v = log.verify().unwrap();
    // Sealing adds its own records after ours.
    assert!(v.head.seq > r.seq);
    assert_eq!(v.first_seq.to_string(), want["first_seq"]);
    assert_eq!(
        log.get(r.seq).unwrap().payload(),
        b"written by today's engine"
    );
    // The old head is still there, with the hash it was written with.
    let old = log.get(want["head_seq"].parse().unwrap()).unwrap();
    assert_eq!(hex(old.hash()), want["head_hash"]);
    assert!(files_with(work.path(), ".wlog.zst").len() >= 3);
}
