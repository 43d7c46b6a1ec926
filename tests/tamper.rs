//! Tampering with a copy of a log, in every way we can name, is detected
//! and named (file, offset, seq) by opening or verifying it.

mod common;
use common::*;
use std::path::PathBuf;
use wormlog::format::{decode_frame, encode_frame, Decoded, RecordKind};
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Error, Log, Sealing};

/// A closed log: sealed segments, then a raw closed segment, then the active one.
fn log_with_every_kind_of_segment() -> (MemStorage, Vec<PathBuf>) {
    let storage = MemStorage::new();
    let opts = mem_options(&storage)
        .segment_bytes_max(8 << 10)
        .seal_frame_bytes(4096);
    let log = Log::open(mem_dir(), opts).unwrap();
    for i in 0..200 {
        log.append(format!("audit event {i:05}: user{} read record {}", i % 7, i * 13).as_bytes())
            .unwrap();
    }
    log.seal().unwrap(); // everything so far sealed
    for i in 0..150 {
        log.append(format!("later event {i:05}").as_bytes())
            .unwrap();
    }
    drop(log);
    let mut files = storage.file_paths();
    files.retain(|p| p.to_string_lossy().contains("seg-"));
    (storage, files)
}

fn raw_closed(files: &[PathBuf]) -> PathBuf {
    let raw: Vec<_> = files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".wlog"))
        .collect();
    assert!(
        raw.len() >= 2,
        "fixture needs a raw closed segment: {files:?}"
    );
    raw[raw.len() - 2].clone()
}

fn active(files: &[PathBuf]) -> PathBuf {
    files
        .iter()
        .rfind(|p| p.to_string_lossy().ends_with(".wlog"))
        .unwrap()
        .clone()
}

fn sealed(files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".zst"))
        .cloned()
        .collect()
}

/// Opens and verifies a tampered copy; returns the error, which must exist.
fn detect(storage: &MemStorage, change: impl FnOnce(&MemStorage), what: &str) -> Error {
    let copy = storage.crash_image(Tear::KeepUnsynced, 0);
    change(&copy);
    let outcome = Log::open(mem_dir(), mem_options(&copy)).and_then(|log| log.verify());
    let err = outcome.expect_err(&format!("{what} went unnoticed"));
    // A writer's open that meets it in the active segment says so, with
    // the damage inside.
    let err = match err {
        Error::NeedsRepair { damage } => *damage,
        e => e,
    };
    assert!(matches!(err, Error::Corrupt { .. }), "{what}: {err}");
    err
}

fn edit(copy: &MemStorage, path: &std::path::Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = copy.read_file(path).unwrap();
    f(&mut b);
    copy.write_file(path, b);
}

#[test]
fn intact_fixture_verifies() {
    let (storage, files) = log_with_every_kind_of_segment();
    assert!(sealed(&files).len() >= 2);
    let log = Log::open(
        mem_dir(),
        mem_options(&storage.crash_image(Tear::KeepUnsynced, 0)),
    )
    .unwrap();
    log.verify().unwrap();
}

#[test]
fn flipped_byte_in_sealed_raw_or_active_segment_is_detected() {
    let (storage, files) = log_with_every_kind_of_segment();
    // (A flip in the active segment's last group is indistinguishable from a
    // torn write; recovery cuts it and logs the cut: see tests/corruption.rs.)
    let active_path = active(&files);
    for path in [
        sealed(&files)[0].clone(),
        raw_closed(&files),
        active_path.clone(),
    ] {
        let len = storage.read_file(&path).unwrap().len();
        let near_end = if path == active_path {
            len / 4
        } else {
            len - 40
        };
        for at in [len / 3, len / 2, near_end] {
            let err = detect(
                &storage,
                |c| edit(c, &path, |b| b[at] ^= 0x04),
                &format!("{} byte {at}", path.display()),
            );
            assert!(
                matches!(&err, Error::Corrupt { path: p, .. } if p == &path),
                "{err}"
            );
        }
    }
}

#[test]
fn deleted_inserted_or_swapped_records_are_detected_with_their_seq() {
    let (storage, files) = log_with_every_kind_of_segment();
    for path in [raw_closed(&files), active(&files)] {
        let bytes = storage.read_file(&path).unwrap();
        let frames = frame_map(&bytes);
        let (o, l, seq) = frames[3];
        let (o2, l2, _) = frames[4];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("deleted", [&bytes[..o], &bytes[o + l..]].concat()),
            ("inserted", [&bytes[..o + l], &bytes[o..]].concat()),
            (
                "swapped",
                [
                    &bytes[..o],
                    &bytes[o2..o2 + l2],
                    &bytes[o..o + l],
                    &bytes[o2 + l2..],
                ]
                .concat(),
            ),
        ];
        for (what, tampered) in cases {
            let err = detect(&storage, |c| c.write_file(&path, tampered), what);
            assert!(
                matches!(&err, Error::Corrupt { path: p, seq: Some(s), .. } if p == &path && *s >= seq && *s <= seq + 1),
                "{what} in {}: {err}",
                path.display()
            );
        }
    }
}

#[test]
fn truncated_or_foreign_sealed_file_is_detected() {
    let (storage, files) = log_with_every_kind_of_segment();
    let victim = sealed(&files)[1].clone();
    detect(
        &storage,
        |c| edit(c, &victim, |b| b.truncate(b.len() / 2)),
        "truncated sealed file",
    );
    // The same segment number from another log.
    let (other, other_files) = log_with_every_kind_of_segment();
    let theirs = other.read_file(&sealed(&other_files)[1]).unwrap();
    let err = detect(
        &storage,
        |c| c.write_file(&victim, theirs),
        "foreign sealed file",
    );
    assert!(
        err.to_string().contains(&victim.display().to_string()),
        "{err}"
    );
}

#[test]
fn deleted_middle_segment_is_detected() {
    let (storage, files) = log_with_every_kind_of_segment();
    let err = detect(
        &storage,
        |c| assert!(c.delete_file(&sealed(&files)[1])),
        "middle segment deleted",
    );
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn altered_seal_record_is_detected() {
    let (storage, files) = log_with_every_kind_of_segment();
    let path = raw_closed(&files);
    let bytes = storage.read_file(&path).unwrap();
    let (o, _, seq) = *frame_map(&bytes).last().unwrap();
    let Decoded::Frame(f) = decode_frame(&bytes[o..]) else {
        panic!()
    };
    assert_eq!(f.kind, RecordKind::Sealed);
    // Change the digest and re-frame it with a valid CRC (the chain still holds the truth).
    let mut payload = f.payload.to_vec();
    *payload.last_mut().unwrap() ^= 1;
    let mut frame = Vec::new();
    encode_frame(
        &mut frame,
        f.seq,
        f.timestamp_ns,
        f.synced_through,
        f.kind,
        &payload,
        &f.hash,
    );
    let tampered = [&bytes[..o], &frame[..]].concat();
    let err = detect(
        &storage,
        |c| c.write_file(&path, tampered),
        "seal record altered",
    );
    assert!(
        matches!(&err, Error::Corrupt { seq: Some(s), .. } if *s == seq),
        "{err}"
    );
}

#[test]
fn malformed_engine_record_is_detected_even_with_its_chain_recomputed() {
    // An engine record (here the segment-rolled record that opens the
    // active segment) given a durability mode the spec does not define,
    // every hash and CRC after it recomputed: the chain holds, the payload
    // no longer follows the spec.
    let (storage, files) = log_with_every_kind_of_segment();
    let path = active(&files);
    let bytes = storage.read_file(&path).unwrap();
    let (o, _, seq) = frame_map(&bytes)[0];
    let Decoded::Frame(f) = decode_frame(&bytes[o..]) else {
        panic!()
    };
    assert_eq!(f.kind, RecordKind::SegmentRolled);
    // Durability mode u8, then max_delay_ns u64, end the payload (4.2).
    let mut bad_mode = f.payload.to_vec();
    let mode_at = bad_mode.len() - 9;
    bad_mode[mode_at] = 0xEE;
    let forged = forge_bytes(&bytes, f.payload, &bad_mode);
    let err = detect(
        &storage,
        |c| c.write_file(&path, forged),
        "malformed segment-rolled payload",
    );
    assert!(
        matches!(&err, Error::Corrupt { seq: Some(s), offset, .. } if *s == seq && *offset == o as u64),
        "{err}"
    );
    assert!(err.to_string().contains("segment-rolled"), "{err}");
}

/// Rewriting a record and recomputing every hash after it yields a log that
/// verifies on its own; only a head kept elsewhere (a checkpoint) catches it.
/// This is the hook wormctl's signed checkpoints build on.
#[test]
fn rewritten_chain_verifies_alone_but_not_against_a_trusted_head() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage).sealing(Sealing::Manual)).unwrap();
    for i in 0..20 {
        log.append(format!("transfer {i}: $100").as_bytes())
            .unwrap();
    }
    let trusted = log.head();
    drop(log);
    let path = active(&storage.file_paths());
    forge_payload(&storage, &path, b"transfer 7: $100", b"transfer 7: $900");
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let report = log
        .verify()
        .expect("a consistent forgery verifies on its own");
    assert!(all_records(&log)
        .iter()
        .any(|r| r.payload() == b"transfer 7: $900"));
    let at_trusted = log.get(trusted.seq).unwrap();
    assert_ne!(
        at_trusted.hash(),
        &trusted.hash,
        "the trusted head exposes the rewrite"
    );
    assert!(report.head.seq > trusted.seq);
}

#[test]
fn files_wormlog_did_not_write_are_listed_and_left_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        wormlog::Options::default().sealing(Sealing::Inline),
    )
    .unwrap();
    for i in 0..50 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.seal().unwrap();
    assert!(
        log.foreign_files().unwrap().is_empty(),
        "a log of its own files"
    );
    drop(log);
    let head = Log::open_read_only(dir.path(), wormlog::Options::default())
        .unwrap()
        .head();
    let seg = files_with(dir.path(), ".wlog").pop().unwrap();
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    // Foreign: an operator's note, and a segment copied under another name.
    std::fs::write(dir.path().join("notes.txt"), b"rotated by hand").unwrap();
    std::fs::copy(&seg, dir.path().join(format!("{name}.old"))).unwrap();
    // The engine's own names, even when it is not what wrote them.
    std::fs::write(dir.path().join(format!("{name}.cut-4096")), b"x").unwrap();
    std::fs::write(dir.path().join("wormlog.anchor.tmp"), b"").unwrap();
    let log = Log::open_read_only(dir.path(), wormlog::Options::default()).unwrap();
    let foreign: Vec<String> = log
        .foreign_files()
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        foreign,
        vec!["notes.txt".to_string(), format!("{name}.old")]
    );
    // Listed, not read: the log is what it was.
    let report = log.verify().unwrap();
    assert_eq!(report.head, head);
}
