//! Reading one segment file alone (`SegmentFile`): a raw segment, a sealed
//! file and a raw segment's bytes from a pipe all yield exactly the records
//! the log holds, with their frame locations; damaged, truncated, foreign
//! and hostile input ends in an error naming the offset and seq, after the
//! records before it. Also: verification reports progress up to its total.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use wormlog::{Corruption, Error, Log, Options, Record, Sealing, SegmentFile};

fn payload(i: u64) -> Vec<u8> {
    format!(r#"{{"i":{i},"actor":"svc-{}","action":"export"}}"#, i % 5).into_bytes()
}

/// A log of three segments: two closed (the first sealed), one active.
fn make_log(dir: &std::path::Path) -> Log {
    let log = Log::open(
        dir,
        Options::default()
            .sealing(Sealing::Manual)
            .segment_bytes_max(16 << 10)
            .seal_frame_bytes(4 << 10),
    )
    .unwrap();
    for i in 0..800 {
        log.append(&payload(i)).unwrap();
    }
    log
}

#[track_caller]
fn assert_truncated(err: &Error) {
    assert!(
        matches!(
            err,
            Error::Corrupt {
                what: Corruption::FrameTruncated { .. },
                ..
            }
        ),
        "{err}"
    );
}

fn read_all(file: SegmentFile) -> Vec<Record> {
    file.map(|r| r.unwrap()).collect()
}

#[test]
fn every_file_of_a_log_reads_back_as_the_log_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = make_log(dir.path());
    let segs = log.segments().unwrap();
    assert!(segs.len() >= 3, "{} segments", segs.len());
    log.seal().unwrap();
    let segs = log.segments().unwrap();
    let whole: Vec<Record> = log.read(..).unwrap().map(|r| r.unwrap()).collect();
    let mut from_files = Vec::new();
    for s in &segs {
        let file = SegmentFile::open(&s.path).unwrap();
        let info = file.info();
        assert_eq!(info.segment, s.number);
        assert_eq!(info.sealed, s.sealed);
        assert_eq!(info.first_seq, s.first_seq);
        assert_eq!(info.log_id, log.log_id());
        let recs = read_all(file);
        for r in &recs {
            assert_eq!(r.frame().segment, s.number);
        }
        from_files.extend(recs);
    }
    assert!(segs.iter().any(|s| s.sealed) && segs.iter().any(|s| !s.sealed));
    // Same records, and the same frame locations as the log reports.
    assert_eq!(from_files, whole);
}

#[test]
fn a_decompressed_sealed_file_reads_back_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let log = make_log(dir.path());
    log.seal().unwrap();
    let sealed = log
        .segments()
        .unwrap()
        .into_iter()
        .find(|s| s.sealed)
        .unwrap();
    let raw = zstd::decode_all(std::fs::File::open(&sealed.path).unwrap()).unwrap();
    let from_pipe = read_all(SegmentFile::from_reader("<stdin>", Cursor::new(raw)).unwrap());
    let from_file = read_all(SegmentFile::open(&sealed.path).unwrap());
    assert_eq!(from_pipe, from_file);
    assert_eq!(from_pipe.len() as u64, sealed.records());
}

fn raw_segment_bytes(dir: &std::path::Path) -> (Vec<u8>, Vec<Record>) {
    let log = make_log(dir);
    let first = &log.segments().unwrap()[0];
    assert!(!first.sealed);
    let bytes = std::fs::read(&first.path).unwrap();
    let recs = read_all(SegmentFile::open(&first.path).unwrap());
    (bytes, recs)
}

#[test]
fn a_flipped_byte_stops_the_read_at_that_frame_with_its_offset_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, recs) = raw_segment_bytes(dir.path());
    let victim = &recs[recs.len() / 2];
    let at = victim.frame().offset as usize + 45; // inside the payload
    bytes[at] ^= 0x20;
    let mut file = SegmentFile::from_reader("piped", Cursor::new(bytes)).unwrap();
    let mut good = 0;
    let err = loop {
        match file.next().expect("the damage is reported") {
            Ok(_) => good += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(good, recs.len() / 2);
    assert!(file.next().is_none(), "the read ends at the first error");
    match err {
        Error::Corrupt {
            offset, seq, what, ..
        } => {
            assert_eq!(offset, victim.frame().offset);
            assert_eq!(seq, Some(victim.seq()));
            assert!(matches!(what, Corruption::FrameCrc { .. }), "{what}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn a_truncated_file_is_an_error_after_the_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, recs) = raw_segment_bytes(dir.path());
    let cut = recs[10].frame().offset as usize + 20;
    let mut file = SegmentFile::from_reader("piped", Cursor::new(bytes[..cut].to_vec())).unwrap();
    for r in &recs[..10] {
        assert_eq!(&file.next().unwrap().unwrap(), r);
    }
    let err = file.next().unwrap().unwrap_err();
    assert_eq!(err.seq(), Some(recs[10].seq()));
    assert_truncated(&err);
}

#[test]
fn a_reordered_pair_of_frames_breaks_the_chain_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, recs) = raw_segment_bytes(dir.path());
    let (a, b) = (recs[5].frame(), recs[6].frame());
    let mut swapped = bytes[..a.offset as usize].to_vec();
    let b_end = (b.offset + u64::from(b.padded_len)) as usize;
    swapped.extend_from_slice(&bytes[b.offset as usize..b_end]);
    swapped.extend_from_slice(&bytes[a.offset as usize..b.offset as usize]);
    swapped.extend_from_slice(&bytes[b_end..]);
    let err = SegmentFile::from_reader("piped", Cursor::new(swapped))
        .unwrap()
        .find_map(|r| r.err())
        .unwrap();
    assert_eq!(err.seq(), Some(recs[5].seq()));
}

#[test]
fn foreign_empty_and_compressed_input_is_refused_at_the_header() {
    for (what, bytes) in [
        ("empty", Vec::new()),
        (
            "text",
            b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass".to_vec(),
        ),
        ("zstd", zstd::encode_all(&b"hello"[..], 3).unwrap()),
        ("short", b"\x89WORM".to_vec()),
    ] {
        let err = SegmentFile::from_reader("in", Cursor::new(bytes)).unwrap_err();
        match err {
            Error::Corrupt { offset: 0, .. } => {}
            e => panic!("{what}: {e}"),
        }
    }
}

#[test]
fn a_hostile_length_claim_past_the_input_is_a_truncation_error() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, recs) = raw_segment_bytes(dir.path());
    // Keep the header and one frame, then claim a 256 MiB frame and stop.
    let end = (recs[0].frame().offset + u64::from(recs[0].frame().padded_len)) as usize;
    let mut hostile = bytes[..end].to_vec();
    hostile.extend_from_slice(&((256u32 << 20) + 72).to_le_bytes());
    hostile.extend_from_slice(&[0u8; 60]);
    let mut file = SegmentFile::from_reader("in", Cursor::new(hostile)).unwrap();
    assert!(file.next().unwrap().is_ok());
    let err = file.next().unwrap().unwrap_err();
    assert_truncated(&err);
}

#[test]
fn verification_progress_reaches_its_total() {
    let dir = tempfile::tempdir().unwrap();
    let log = make_log(dir.path());
    log.seal().unwrap();
    let (max, total, calls) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let report = log
        .verify_with_progress(|p| {
            assert!(p.bytes_checked <= p.bytes_total);
            max.fetch_max(p.bytes_checked, Ordering::Relaxed);
            total.store(p.bytes_total, Ordering::Relaxed);
            calls.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(max.load(Ordering::Relaxed), report.bytes);
    assert_eq!(total.load(Ordering::Relaxed), report.bytes);
    assert!(calls.load(Ordering::Relaxed) >= report.segments);
}
