//! The Merkle tree over the log (format-spec.md §14): every record has an
//! inclusion proof, any two tree sizes a consistency proof, both checked
//! with no log at hand; the tree files survive reopening, are rebuilt from
//! the records when lost or torn, and a changed tile is caught by verify.

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;
use wormlog::format::merkle::{leaf_hash, TILE_BYTES};
use wormlog::{Checkpoint, CheckpointKey, Error, Hash, Log, Options, Retention, Sealing};

fn log_with(dir: &Path, n: usize) -> Log {
    let log = Log::open(
        dir,
        Options::default()
            .sealing(Sealing::Inline)
            .segment_bytes_max(32 << 10),
    )
    .unwrap();
    let batch: Vec<Vec<u8>> = (0..n).map(|i| format!("event {i}").into_bytes()).collect();
    for chunk in batch.chunks(50) {
        log.append_batch(chunk).unwrap();
    }
    log
}

#[test]
fn every_record_has_an_inclusion_proof_that_checks_against_the_tree_head() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 700);
    let head = log.tree_head().unwrap();
    assert_eq!(head.size, log.head().seq);
    let records = all_records(&log);
    let mut prev = records[0].hash().to_owned();
    for (i, r) in records.iter().enumerate() {
        let proof = log.prove_inclusion(r.seq(), head.size).unwrap();
        assert!(proof.verify(&head.root), "record {}", r.seq());
        if i > 0 {
            assert!(proof.binds(r, &prev), "the proof is of record {}", r.seq());
            let other = &records[i - 1];
            assert!(!proof.binds(other, &prev), "and of no other");
        }
        prev = *r.hash();
        // Against another root, or moved to another seq, it fails.
        let mut wrong = head.root.to_bytes();
        wrong[0] ^= 1;
        let wrong = Hash::from_bytes(wrong);
        assert!(!proof.verify(&wrong));
        let mut moved = proof.clone();
        moved.seq = if r.seq() > 1 { r.seq() - 1 } else { 2 };
        assert!(!moved.verify(&head.root));
    }
    // A smaller tree: proofs of its records check against its own root.
    let small = log.tree_head_at(300).unwrap();
    let p = log.prove_inclusion(123, 300).unwrap();
    assert!(p.verify(&small.root));
    assert!(!p.verify(&head.root));
    assert!(matches!(
        log.prove_inclusion(301, 300),
        Err(Error::TreeUnavailable { .. })
    ));
}

#[test]
fn consistency_proofs_link_every_older_tree_to_every_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 600);
    let size = log.head().seq;
    let sizes = [1, 2, 3, 255, 256, 257, 300, 511, 512, 513, size];
    for &old in &sizes {
        for &new in sizes.iter().filter(|&&n| n >= old) {
            let (a, b) = (
                log.tree_head_at(old).unwrap(),
                log.tree_head_at(new).unwrap(),
            );
            let proof = log.prove_consistency(old, new).unwrap();
            assert!(proof.verify(&a.root, &b.root), "{old} -> {new}");
            if old < new {
                let mut forged = a.root.to_bytes();
                forged[31] ^= 0x10;
                let forged = Hash::from_bytes(forged);
                assert!(!proof.verify(&forged, &b.root), "{old} -> {new} forged");
            }
        }
    }
}

#[test]
fn the_tree_survives_reopening_and_is_rebuilt_the_same_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 1000);
    let head = log.tree_head().unwrap();
    log.close().unwrap();
    let tiles = dir.path().join("wormlog.tiles-0");
    assert!(
        std::fs::metadata(&tiles).unwrap().len() >= 3 * TILE_BYTES as u64,
        "full tiles are on disk"
    );
    let log = Log::open(dir.path(), Options::default()).unwrap();
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.close().unwrap();
    // Lost: rebuilt from the records, to the same root.
    std::fs::remove_file(&tiles).unwrap();
    std::fs::remove_file(dir.path().join("wormlog.tree")).unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.verify().unwrap();
    log.close().unwrap();
    // Bytes a crash left after what wormlog.tree vouches for are cut; a
    // file shorter than it says is taken as far as it goes; either way
    // the rest is rebuilt from the records.
    let vouched = std::fs::read(&tiles).unwrap();
    let mut longer = vouched.clone();
    longer.extend_from_slice(&[0xee; 5000]);
    std::fs::write(&tiles, &longer).unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    assert_eq!(std::fs::read(&tiles).unwrap(), vouched, "cut back");
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.verify().unwrap();
    log.close().unwrap();
    std::fs::write(&tiles, &vouched[..vouched.len() - 100]).unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.verify().unwrap();
    // A read-only open of the same files agrees.
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(reader.tree_head_at(head.size).unwrap(), head);
}

#[test]
fn a_changed_leaf_in_a_tile_file_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 600);
    log.close().unwrap();
    let tiles = dir.path().join("wormlog.tiles-0");
    let mut bytes = std::fs::read(&tiles).unwrap();
    // Leaf of record 100 (index 99).
    bytes[99 * 32] ^= 0x01;
    std::fs::write(&tiles, &bytes).unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    let err = reader.verify().unwrap_err();
    match &err {
        Error::Corrupt { seq, what, .. } => {
            assert_eq!(*seq, Some(100));
            assert!(
                matches!(what, wormlog::Corruption::TreeState { .. }),
                "{err}"
            );
        }
        other => panic!("{other}"),
    }
    // A leaf swapped for the hash of other data is caught the same way.
    bytes[99 * 32] ^= 0x01;
    bytes[99 * 32..100 * 32].copy_from_slice(leaf_hash(b"forged").as_bytes());
    std::fs::write(&tiles, &bytes).unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert!(reader.verify().is_err());
}

#[test]
fn a_damaged_tree_state_file_vouches_for_nothing_and_the_records_rebuild_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 300);
    let head = log.tree_head().unwrap();
    log.close().unwrap();
    let state = dir.path().join("wormlog.tree");
    let mut bytes = std::fs::read(&state).unwrap();
    bytes[17] ^= 0xff;
    std::fs::write(&state, &bytes).unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.verify().unwrap();
    log.close().unwrap();
    assert_ne!(std::fs::read(&state).unwrap(), bytes, "written anew");
}

#[test]
fn a_checkpoint_from_before_retention_gets_a_consistency_proof_to_one_after() {
    let storage = wormlog::storage::MemStorage::new();
    let (now, clock) = manual_clock(1_800_000_000_000_000_000);
    let log = Log::open(
        mem_dir(),
        mem_options(&storage)
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .clock(clock)
            .retention(Retention::default().max_age(Duration::from_secs(100))),
    )
    .unwrap();
    let key = CheckpointKey::generate("auditor").unwrap();
    let append = |n: u64| {
        for i in 0..n {
            now.fetch_add(1_000_000_000, std::sync::atomic::Ordering::SeqCst);
            log.append(format!("event {i:04} with padding to fill segments").as_bytes())
                .unwrap();
        }
    };
    append(300);
    let old_note = log.checkpoint().unwrap().sign(&key);
    append(300);
    let r = log
        .apply_retention(now.load(std::sync::atomic::Ordering::SeqCst))
        .unwrap();
    assert!(r.first_seq > 100, "retention dropped the start: {r:?}");
    let new_note = log.checkpoint().unwrap().sign(&key);
    // An auditor with the two notes and the proof, and no log.
    let old = Checkpoint::verify_note(&old_note, &key.public()).unwrap();
    let new = Checkpoint::verify_note(&new_note, &key.public()).unwrap();
    let proof = log.prove_consistency(old.seq, new.seq).unwrap();
    assert!(proof.verify(&old.tree_root.unwrap(), &new.tree_root.unwrap()));
    // And the log still answers for the old checkpoint.
    log.verify_against(&old).unwrap();
    // Records retention dropped have no inclusion proof (their data is gone).
    assert!(log.prove_inclusion(1, new.seq).is_err());
    let kept = r.first_seq + 1;
    assert!(log
        .prove_inclusion(kept, new.seq)
        .unwrap()
        .verify(&new.tree_root.unwrap()));
}

#[test]
fn a_log_that_dropped_records_before_it_had_a_tree_keeps_chain_checkpoints() {
    // The v1 fixture ran retention under format 1, before trees existed.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/log"),
        dir.path(),
    );
    let log = Log::open(dir.path(), Options::default().sealing(Sealing::Manual)).unwrap();
    assert!(matches!(
        log.tree_head(),
        Err(Error::TreeUnavailable { .. })
    ));
    let cp = log.checkpoint().unwrap();
    assert!(cp.tree_root.is_none());
    log.verify_against(&cp).unwrap();
    log.verify().unwrap();
}

#[test]
fn a_changed_entry_of_an_upper_level_is_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 1100);
    log.close().unwrap();
    let level1 = dir.path().join("wormlog.tiles-1");
    let mut bytes = std::fs::read(&level1).unwrap();
    assert!(
        bytes.len() >= 4 * 32,
        "entries for the four full level-0 tiles"
    );
    bytes[2 * 32 + 7] ^= 0x20;
    std::fs::write(&level1, &bytes).unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    let err = reader.verify().unwrap_err();
    assert!(err.to_string().contains("entry 2 of level 1"), "{err}");
}

#[test]
fn a_tree_write_that_failed_is_written_again_at_its_place() {
    use wormlog::storage::{MemStorage, Op};
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    for i in 0..700 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    // The tree's next write (a checkpoint writes the tree first) fails,
    // half of it written as a failed write may; the next writes it again.
    storage.fail_nth(Op::Append, storage.count(Op::Append) + 1);
    assert!(log.checkpoint().is_err());
    let cp = log.checkpoint().unwrap();
    let head = log.tree_head().unwrap();
    assert_eq!(Some(head.root), cp.tree_root);
    log.verify().unwrap();
    drop(log);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.verify().unwrap();
}

#[test]
fn a_lost_tree_state_file_keeps_the_leaves_of_dropped_records() {
    let storage = wormlog::storage::MemStorage::new();
    let (now, clock) = manual_clock(1_800_000_000_000_000_000);
    let options = || {
        mem_options(&storage)
            .sealing(Sealing::Inline)
            .segment_bytes_max(8 << 10)
            .clock(clock.clone())
            .retention(Retention::default().max_age(Duration::from_secs(100)))
    };
    let log = Log::open(mem_dir(), options()).unwrap();
    for i in 0..600 {
        now.fetch_add(1_000_000_000, std::sync::atomic::Ordering::SeqCst);
        log.append(format!("event {i:04} with padding to fill segments").as_bytes())
            .unwrap();
    }
    let before = log.checkpoint().unwrap();
    let r = log
        .apply_retention(now.load(std::sync::atomic::Ordering::SeqCst))
        .unwrap();
    assert!(r.first_seq > 300);
    drop(log);
    // wormlog.tree gone (or damaged): the dropped records' leaves, which
    // nothing could rebuild, are kept; the rest is rebuilt from records.
    for damage in [None, Some(b"garbage".to_vec())] {
        let path = mem_dir().join("wormlog.tree");
        match &damage {
            None => {
                use wormlog::storage::Storage;
                storage.remove_file(&path).unwrap()
            }
            Some(bytes) => storage.write_file(&path, bytes.clone()),
        }
        let log = Log::open(mem_dir(), options()).unwrap();
        assert_eq!(
            log.tree_head_at(before.seq).unwrap().root,
            before.tree_root.unwrap()
        );
        log.verify().unwrap();
        log.verify_against(&before).unwrap();
    }
}

#[test]
fn a_buffered_log_whose_write_failed_still_reads_what_was_written() {
    use wormlog::storage::{MemStorage, Op};
    let storage = MemStorage::new();
    let log = Log::open(
        mem_dir(),
        mem_options(&storage).durability(wormlog::Durability::Buffered),
    )
    .unwrap();
    for i in 0..100 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    let written = log.head().seq;
    log.append(b"waits in the buffer").unwrap();
    storage.fail_nth(Op::Append, storage.count(Op::Append) + 1);
    assert!(log.sync().is_err(), "the buffer's write fails");
    assert!(matches!(log.append(b"x"), Err(Error::Poisoned { .. })));
    // Reads go on over what reached the file.
    let records = all_records(&log);
    assert_eq!(records.last().unwrap().seq(), written);
    assert_eq!(log.head().seq, written);
}

/// The tree is fed from the leaf inputs the writer queued in memory
/// (tree.rs `PendingLeaves`); what the bounded queue forgot (one batch of
/// more records than it holds) is read back from the segments. Either way
/// the root is the one computed from the records themselves, and it stays
/// so after a reopen (which reads everything back).
#[test]
fn a_tree_fed_from_memory_has_the_root_of_the_records_read_back() {
    use wormlog::format::merkle::{leaf_data, root_of};
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().segment_bytes_max(256 << 10)).unwrap();
    let big: Vec<Vec<u8>> = (0..20_000).map(|i| format!("b {i}").into_bytes()).collect();
    log.append_batch(&big).unwrap();
    for i in 0..3000 {
        log.append(format!("s {i}").as_bytes()).unwrap();
    }
    let head = log.tree_head().unwrap();
    let records = all_records(&log);
    assert_eq!(head.size, records.len() as u64);
    let leaves: Vec<Hash> = records
        .iter()
        .map(|r| leaf_hash(&leaf_data(r.seq(), r.timestamp(), r.kind() as u8, r.hash())))
        .collect();
    assert_eq!(head.root, root_of(&leaves));
    log.close().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    assert_eq!(log.tree_head_at(head.size).unwrap(), head);
    log.verify().unwrap();
}

/// The review of the tree's feed from memory: records the log says it
/// holds but cannot give (the active segment cut at a frame boundary behind
/// the reader's back) made the feed loop for ever holding the tree's lock.
/// It now returns an error, and the call returns.
#[test]
fn a_tree_that_cannot_read_its_records_fails_rather_than_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open(dir.path(), Options::default().sealing(Sealing::Manual)).unwrap();
    let batch: Vec<Vec<u8>> = (0..3000).map(|i| format!("r {i}").into_bytes()).collect();
    writer.append_batch(&batch).unwrap();
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    drop(writer);
    for f in ["wormlog.tree", "wormlog.tiles-0", "wormlog.tiles-1"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let active = files_with(dir.path(), ".wlog").pop().unwrap();
    let bytes = std::fs::read(&active).unwrap();
    let frames = frame_map(&bytes);
    let cut = frames[frames.len() / 2].0;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(reader.tree_head().map(|h| h.size));
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tree_head returned instead of looping");
    assert!(outcome.is_err(), "{outcome:?}");
}
