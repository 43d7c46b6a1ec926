//! A log written by format version 1 keeps reading, verifying and taking
//! appends under today's code. tests/fixtures/v1/log is a small log as the
//! engine wrote it to disk (sealed segments, closed raw segments, the active
//! segment, an anchor from a retention run and a legal hold file); a change
//! that reads those bytes differently fails here, and must bump the format
//! version (format-spec.md, "Version history") and add a new fixture rather
//! than rewrite this one.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wormlog::format::hex;
use wormlog::{Log, Options, Retention, Sealing};

const T0: u64 = 1_764_000_000_000_000_000;
/// User records written before the retention run, and after it.
const BEFORE: usize = 120;
const AFTER: usize = 50;
const HOLD: &str = "fixture hold: case 2026-17";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/log")
}

fn expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/expected.txt")
}

fn expected() -> std::collections::HashMap<String, String> {
    fixture_expected(&expected_path())
}

#[test]
#[ignore = "writes tests/fixtures/v1; run by hand only when adding a new format version's fixture"]
fn write_v1_fixture() {
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
    for i in BEFORE..BEFORE + AFTER {
        now.fetch_add(1_000_000_000, Ordering::SeqCst);
        log.append(&fixture_payload(i)).unwrap();
    }
    drop(log);
    // The lock file is the writer's; a checkout needs none.
    std::fs::remove_file(dir.join("wormlog.lock")).unwrap();
    let log = Log::open_read_only(&dir, Options::default()).unwrap();
    let v = log.verify().unwrap();
    assert!(files_with(&dir, ".wlog.zst").len() >= 2, "sealed segments");
    assert!(files_with(&dir, ".wlog").len() >= 2, "closed raw segments");
    std::fs::write(
        expected_path(),
        format!(
            "first_seq {}\nhead_seq {}\nhead_hash {}\nsegments {}\n",
            v.first_seq,
            v.head.seq,
            hex(v.head.hash),
            v.segments
        ),
    )
    .unwrap();
}

#[test]
fn a_v1_log_reads_and_verifies_to_the_head_it_was_written_with() {
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

    let records = all_records(&log);
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
fn a_v1_log_takes_appends_and_seals_under_todays_writer() {
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
