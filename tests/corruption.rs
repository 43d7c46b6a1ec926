//! Damage to bytes that were durable is detected and named (file, offset,
//! seq); a torn tail is cut and the cut is logged; repair moves damage aside.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use wormlog::format::SEGMENT_HEADER_LEN;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Error, Log, RecordKind, SystemEvent};

/// A closed log of two segments (the first closed by a roll), in memory.
fn small_log() -> (MemStorage, Vec<PathBuf>) {
    let storage = MemStorage::new();
    let opts = mem_options(&storage).segment_bytes_max(4096);
    {
        let log = Log::open(mem_dir(), opts).unwrap();
        log.append(&[b'a'; 1750]).unwrap();
        log.append(&[b'b'; 1700]).unwrap();
        log.append(b"short").unwrap(); // rolls: 96 + 3 frames would pass 4096
        log.append_batch(&[b"x".as_slice(), b"yz"]).unwrap();
    }
    let segs = segment_paths(&storage, &mem_dir());
    assert_eq!(segs.len(), 2, "fixture has a closed and an active segment");
    (storage, segs)
}

fn tail_cuts(log: &Log) -> Vec<SystemEvent> {
    all_records(log)
        .into_iter()
        .filter(|r| r.kind() == RecordKind::TailCut)
        .map(|r| r.system_event().unwrap().unwrap())
        .collect()
}

#[test]
fn every_bit_flip_in_a_synced_segment_is_reported_with_its_seq() {
    let (storage, segs) = small_log();
    for (si, path) in segs.iter().enumerate() {
        let original = storage.read_file(path).unwrap();
        let frames = frame_map(&original);
        let last = *frames.last().unwrap();
        let is_active = si == segs.len() - 1;
        for bit in 0..original.len() * 8 {
            let byte = bit / 8;
            let copy = storage.crash_image(Tear::KeepUnsynced, 0);
            let mut bytes = original.clone();
            bytes[byte] ^= 1 << (bit % 8);
            copy.write_file(path, bytes);
            let frame = frames
                .iter()
                .find(|(o, l, _)| (*o..o + l).contains(&byte))
                .copied();
            let ctx = format!(
                "{} bit {bit} (byte {byte}, frame {frame:?})",
                path.display()
            );
            let opened = Log::open(mem_dir(), mem_options(&copy));
            match frame {
                None => {
                    // Header: the open fails, naming the file and an offset in the header.
                    let err = opened.expect_err(&ctx);
                    assert!(
                        matches!(&err, Error::Corrupt { path: p, offset, .. } if p == path && *offset < SEGMENT_HEADER_LEN as u64),
                        "{ctx}: {err}"
                    );
                }
                Some((offset, _, seq)) if is_active && offset == last.0 => {
                    // The last frame is the last batch: nothing later proves it
                    // was durable, so it is cut as a torn tail, and the cut is
                    // logged with its offset and seq.
                    let log = opened.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    let cuts = tail_cuts(&log);
                    assert!(
                        matches!(cuts.as_slice(), [SystemEvent::TailCut { offset: o, expected_seq: s, .. }] if *o == offset as u64 && *s == seq),
                        "{ctx}: {cuts:?}"
                    );
                }
                Some((offset, _, seq)) => {
                    let err = match opened {
                        // Damage in the active segment: the open says to
                        // repair, carrying the damage found.
                        Err(Error::NeedsRepair { damage }) if is_active => *damage,
                        Err(e) => e,
                        // A closed segment is read in full by verify, not by open.
                        Ok(log) => log.verify().expect_err(&ctx),
                    };
                    assert!(
                        matches!(&err, Error::Corrupt { path: p, offset: o, seq: Some(s), .. }
                            if p == path && *o == offset as u64 && *s == seq),
                        "{ctx}: {err}"
                    );
                }
            }
        }
    }
}

#[test]
fn corruption_fails_open_and_changes_nothing() {
    let (storage, segs) = small_log();
    let active = segs.last().unwrap();
    let mut bytes = storage.read_file(active).unwrap();
    let frames = frame_map(&bytes);
    bytes[frames[0].0 + 50] ^= 0x40;
    storage.write_file(active, bytes.clone());
    let before = storage.file_paths();
    let err = Log::open(mem_dir(), mem_options(&storage)).unwrap_err();
    assert_eq!(err.seq(), Some(frames[0].2));
    assert!(
        err.to_string().contains(&active.display().to_string()),
        "{err}"
    );
    assert_eq!(
        storage.read_file(active).unwrap(),
        bytes,
        "nothing truncated"
    );
    assert_eq!(storage.file_paths(), before, "no file created or removed");
}

#[test]
fn repair_moves_damaged_segment_aside_and_continues_chain() {
    let (storage, segs) = small_log();
    let active = segs.last().unwrap();
    let original = storage.read_file(active).unwrap();
    let frames = frame_map(&original);
    let (bad_at, _, bad_seq) = frames[1];
    let mut bytes = original.clone();
    bytes[bad_at + 45] ^= 1;
    storage.write_file(active, bytes.clone());
    let log = Log::open(mem_dir(), mem_options(&storage).repair(true)).unwrap();
    let repaired: Vec<_> = all_records(&log)
        .into_iter()
        .filter(|r| r.kind() == RecordKind::Repaired)
        .map(|r| r.system_event().unwrap().unwrap())
        .collect();
    let [SystemEvent::Repaired {
        offset,
        seq,
        moved_to,
        ..
    }] = repaired.as_slice()
    else {
        panic!("expected one repaired record, got {repaired:?}")
    };
    assert_eq!((*offset, *seq), (bad_at as u64, bad_seq));
    let aside = active.with_file_name(moved_to);
    assert_eq!(
        storage.read_file(&aside).unwrap(),
        bytes,
        "damaged file kept whole"
    );
    assert_eq!(
        storage.read_file(active).unwrap(),
        original[..bad_at],
        "the active segment keeps its intact prefix"
    );
    log.verify().unwrap();
    log.append(b"after repair").unwrap();
    drop(log);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.verify().unwrap();
    assert_eq!(log.get(bad_seq).unwrap().kind(), RecordKind::Repaired);
}

#[test]
fn torn_tail_is_cut_logged_and_saved_aside() {
    let (storage, segs) = small_log();
    let active = segs.last().unwrap();
    let mut bytes = storage.read_file(active).unwrap();
    // A writer that crashed (no log-closed record: after a clean close no
    // tail is forgiven, see tests/insider.rs) mid-way through a group.
    let (closed_at, _, _) = *frame_map(&bytes).last().unwrap();
    bytes.truncate(closed_at);
    let good_len = bytes.len();
    bytes.extend_from_slice(&[0xAB; 300]); // half-written garbage after the last frame
    storage.write_file(active, bytes);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let cuts = tail_cuts(&log);
    let [SystemEvent::TailCut {
        offset,
        bytes,
        saved_as,
        ..
    }] = cuts.as_slice()
    else {
        panic!("{cuts:?}")
    };
    assert_eq!((*offset, *bytes), (good_len as u64, 300));
    let saved = storage.read_file(&active.with_file_name(saved_as)).unwrap();
    assert_eq!(saved, vec![0xAB; 300]);
    log.verify().unwrap();
}

#[test]
fn zero_filled_tail_is_cut_without_a_copy() {
    let (storage, segs) = small_log();
    let active = segs.last().unwrap();
    let mut bytes = storage.read_file(active).unwrap();
    let good_len = bytes.len();
    bytes.resize(good_len + 8192, 0); // preallocated space
    storage.write_file(active, bytes);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let cuts = tail_cuts(&log);
    assert!(
        matches!(cuts.as_slice(), [SystemEvent::TailCut { offset, bytes: 8192, saved_as, .. }] if *offset == good_len as u64 && saved_as.is_empty()),
        "{cuts:?}"
    );
    log.verify().unwrap();
}

#[test]
fn deleted_middle_segment_fails_open_naming_it() {
    let storage = MemStorage::new();
    {
        let log = Log::open(mem_dir(), mem_options(&storage).segment_bytes_max(4096)).unwrap();
        for i in 0..100 {
            log.append(format!("{i:0>200}").as_bytes()).unwrap();
        }
    }
    let segs = segment_paths(&storage, &mem_dir());
    assert!(segs.len() >= 3);
    let copy = storage.crash_image(Tear::KeepUnsynced, 0);
    let victim = &segs[1];
    // Replace the file with nothing: remove it by writing it under another name.
    let bytes = copy.read_file(victim).unwrap();
    copy.write_file(&victim.with_extension("moved"), bytes);
    let image = without(&copy, victim);
    let err = Log::open(mem_dir(), mem_options(&image)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Corrupt {
                what: wormlog::Corruption::SegmentMissing { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// A copy of `storage` without `path`.
fn without(storage: &MemStorage, path: &Path) -> MemStorage {
    let out = MemStorage::new();
    use wormlog::storage::Storage;
    out.create_dir_all(&mem_dir()).unwrap();
    for p in storage.file_paths() {
        if p != path {
            out.write_file(&p, storage.read_file(&p).unwrap());
        }
    }
    out
}

#[test]
fn foreign_file_with_segment_name_is_rejected() {
    let storage = MemStorage::new();
    drop(Log::open(mem_dir(), mem_options(&storage)).unwrap());
    let seg = &segment_paths(&storage, &mem_dir())[0];
    storage.write_file(seg, b"{\"not\": \"a wormlog segment\"}\n".to_vec());
    let err = Log::open(mem_dir(), mem_options(&storage)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Corrupt {
                what: wormlog::Corruption::BadMagic,
                offset: 0,
                ..
            }
        ),
        "{err}"
    );
}

/// Runs `f` on another thread; a call still blocked after a minute fails
/// the test instead of hanging it.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("blocked: opening a FIFO waited for a writer")
}

#[test]
fn a_fifo_named_like_a_segment_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("seg-00000000000000000001.wlog");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(made.success());
    for read_only in [true, false] {
        let d = dir.path().to_path_buf();
        let result = within_a_minute(move || {
            if read_only {
                Log::open_read_only(&d, wormlog::Options::default()).map(drop)
            } else {
                Log::open(&d, wormlog::Options::default()).map(drop)
            }
        });
        match result {
            Err(Error::NotRegular { path }) => assert_eq!(path, fifo),
            other => panic!("read_only {read_only}: {other:?}"),
        }
    }
    let f = fifo.clone();
    let one_file = within_a_minute(move || wormlog::verify_file(&f).map(drop));
    assert!(
        matches!(one_file, Err(Error::NotRegular { .. })),
        "{one_file:?}"
    );
}

/// `Log::recovery` tells the application what the open found: a created
/// log, a clean start, a crash whose torn tail was cut (bytes, where, the
/// next seq), a repair; and a writer's open that meets damage says, in its
/// error, how to open anyway. (Issue 27: the open returned nothing, and the
/// damage error did not say what to do.)
#[test]
fn the_recovery_report_tells_a_clean_start_from_a_cut_tail_and_a_repair() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    assert!(log.recovery().created);
    log.append(b"one").unwrap();
    log.close().unwrap();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let r = log.recovery().clone();
    assert!(r.is_clean() && !r.created, "{r:?}");
    assert!(r.to_string().starts_with("clean start"), "{r}");
    // A crash with a torn group at the end.
    log.append(b"two").unwrap();
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    drop(log);
    let active = segment_paths(&image, &mem_dir()).pop().unwrap();
    let mut bytes = image.read_file(&active).unwrap();
    let torn_at = bytes.len() as u64;
    bytes.extend_from_slice(&[0x17; 50]);
    image.write_file(&active, bytes);
    let log = Log::open(mem_dir(), mem_options(&image)).unwrap();
    let r = log.recovery().clone();
    assert!(!r.closed_cleanly && !r.is_clean(), "{r:?}");
    assert_eq!(r.cuts.len(), 1, "{r:?}");
    assert_eq!((r.cuts[0].offset, r.cuts[0].bytes), (torn_at, 50));
    assert_eq!(
        r.cuts[0].next_seq,
        log.get(r.cuts[0].next_seq).unwrap().seq()
    );
    assert!(r.to_string().contains("cut a torn tail of 50 bytes"), "{r}");
    log.close().unwrap();
    // Damage to a durable record: the open refuses, saying how to repair;
    // with repair, the report says what was moved aside.
    let mut bytes = image.read_file(&active).unwrap();
    let frames = frame_map(&bytes);
    bytes[frames[1].0 + 40] ^= 1;
    image.write_file(&active, bytes);
    let err = Log::open(mem_dir(), mem_options(&image)).unwrap_err();
    assert!(matches!(err, Error::NeedsRepair { .. }), "{err}");
    assert_eq!(err.seq(), Some(frames[1].2));
    assert!(err.to_string().contains("Options::repair(true)"), "{err}");
    let log = Log::open(mem_dir(), mem_options(&image).repair(true)).unwrap();
    let r = log.recovery().clone();
    assert_eq!(r.repairs.len(), 1, "{r:?}");
    assert_eq!(r.repairs[0].seq, frames[1].2);
    assert!(image.read_file(&r.repairs[0].moved_to).is_some());
    assert!(r.to_string().contains("REPAIRED"), "{r}");
    log.verify().unwrap();
}
