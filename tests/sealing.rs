//! Forward-secure sealing: an attacker who takes the host, current sealing
//! key included, cannot rewrite, drop or truncate records of an epoch that
//! ended before; what they write after the last tag is reported unsealed;
//! a crash at any step of a key's evolution leaves a log that reopens,
//! continues and verifies. A fake clock makes epochs a minute long.

mod common;
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wormlog::storage::{Entries, MemStorage, Tear};
use wormlog::{Corruption, Error, Log, Options, RecordKind, VerificationKey};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * SEC;
const EPOCH: Duration = Duration::from_secs(60);

fn opts(storage: &MemStorage, clock: wormlog::Clock) -> Options {
    // One segment: a forgery that recomputes the chain verifies alone.
    mem_options(storage)
        .clock(clock)
        .segment_bytes_max(64 << 20)
}

/// A log sealed from T0, with `epochs` epochs of 10 records each (one
/// every 6 s), still open.
fn sealed_log(storage: &MemStorage, epochs: u64) -> (Arc<AtomicU64>, Log, VerificationKey) {
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), opts(storage, clock)).unwrap();
    let key = log.setup_sealing(EPOCH).unwrap();
    for i in 0..epochs * 10 {
        now.store(T0 + (i + 1) * 6 * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04}").as_bytes()).unwrap();
    }
    (now, log, key)
}

fn tags(log: &Log) -> Vec<wormlog::Record> {
    all_records(log)
        .into_iter()
        .filter(|r| r.kind() == RecordKind::EpochTag)
        .collect()
}

fn assert_seal_broken(r: wormlog::Result<wormlog::VerifyReport>, attack: &str) -> String {
    match r {
        Err(Error::Corrupt {
            what: Corruption::SealBroken { detail },
            ..
        }) => detail,
        other => panic!("{attack}: expected a broken seal, got {other:?}"),
    }
}

#[test]
fn every_ended_epoch_is_tagged_and_a_sealed_close_seals_the_end() {
    let storage = MemStorage::new();
    let (_, log, key) = sealed_log(&storage, 5);
    let tagged = tags(&log);
    assert!(
        tagged.len() >= 4,
        "one tag per ended epoch: {}",
        tagged.len()
    );
    let r = log.verify_sealed(std::slice::from_ref(&key)).unwrap();
    let s = r.sealing.unwrap();
    assert!(s.checked);
    assert_eq!(s.sealed_through_seq, Some(tagged.last().unwrap().seq()));
    assert!(
        s.unsealed_records > 0,
        "the current epoch is not sealed yet"
    );
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let s = reader.verify_sealed(&[key]).unwrap().sealing.unwrap();
    assert_eq!(s.unsealed_records, 0, "a sealed close seals the end");
    assert_eq!(s.key_file_epoch, s.sealed_through_epoch.map(|e| e + 1));
}

#[test]
fn rewriting_a_record_of_a_past_epoch_with_the_chain_recomputed_breaks_its_seal() {
    let storage = MemStorage::new();
    let (_, log, key) = sealed_log(&storage, 5);
    drop(log);
    // The attacker holds the host, the current key included, and rewrites
    // an early record, recomputing every chain hash and CRC after it.
    let path = segment_paths(&storage, &mem_dir()).pop().unwrap();
    forge_payload(&storage, &path, b"event 0003", b"event 9999");
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader
        .verify()
        .expect("the rewritten chain verifies on its own");
    let detail = assert_seal_broken(reader.verify_sealed(&[key]), "rewrite");
    assert!(detail.contains("epochs 1..=1"), "{detail}");
}

#[test]
fn cutting_the_tail_at_a_record_boundary_shows_against_the_key_file_or_the_clock() {
    let storage = MemStorage::new();
    let (now, log, key) = sealed_log(&storage, 6);
    let cut_after = tags(&log)[2].seq();
    drop(log);
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    let path = segment_paths(&image, &mem_dir()).pop().unwrap();
    let bytes = image.read_file(&path).unwrap();
    // Everything after the third tag goes: a clean prefix, chain intact.
    let keep = frame_map(&bytes)
        .into_iter()
        .find(|(_, _, seq)| *seq == cut_after + 1)
        .unwrap()
        .0;
    image.write_file(&path, bytes[..keep].to_vec());
    let reader = Log::open_read_only(mem_dir(), mem_options(&image)).unwrap();
    // The key file's epoch against the tags needs no key (issue 22, 7):
    // before, the clean prefix verified without it.
    let detail = assert_seal_broken(reader.verify(), "cut, no key");
    assert!(detail.contains("were removed"), "{detail}");
    let detail = assert_seal_broken(reader.verify_sealed(std::slice::from_ref(&key)), "cut");
    assert!(detail.contains("were removed"), "{detail}");
    // Without the key file, the time now says how far tags must reach.
    assert!(image.delete_file(&mem_dir().join("wormlog.fss")));
    let (_, late) = manual_clock(now.load(Ordering::SeqCst) + 10 * 60 * SEC);
    let reader = Log::open_read_only(mem_dir(), mem_options(&image).clock(late)).unwrap();
    let detail = assert_seal_broken(reader.verify_sealed(&[key]), "cut, key deleted");
    assert!(detail.contains("missing"), "{detail}");
}

#[test]
fn records_an_attacker_adds_after_the_last_tag_are_reported_unsealed() {
    let storage = MemStorage::new();
    let (now, log, key) = sealed_log(&storage, 3);
    let sealed = log.verify_sealed(std::slice::from_ref(&key)).unwrap();
    let before = sealed.sealing.unwrap().unsealed_records;
    // Within the current epoch, with the host's key: not sealed yet.
    now.fetch_add(SEC, Ordering::SeqCst);
    log.append(b"written by whoever holds the host now")
        .unwrap();
    let s = log.verify_sealed(&[key]).unwrap().sealing.unwrap();
    assert_eq!(s.unsealed_records, before + 1);
}

#[test]
fn the_wrong_verification_key_is_refused() {
    let storage = MemStorage::new();
    let (_, log, _) = sealed_log(&storage, 2);
    let other = VerificationKey {
        key: [7; 32],
        start_ns: T0,
        interval_ns: 60 * SEC,
        log_id: None,
    };
    // Issue 27: another log's key is the operator's mistake (wormctl exit
    // 2, naming the key the log is sealed under), not a broken seal.
    match log.verify_sealed(&[other]) {
        Err(Error::NotThisLogsKey { sealed_under, .. }) => {
            assert_eq!(sealed_under, wormlog::format::hex(key_of(&log)))
        }
        other => panic!("wrong key: {other:?}"),
    }
}

/// The id of the key the log's sealing-started record names.
fn key_of(log: &Log) -> [u8; 8] {
    all_records(log)
        .into_iter()
        .find_map(|r| match r.system_event() {
            Some(Ok(wormlog::SystemEvent::SealingStarted { key_id, .. })) => Some(key_id),
            _ => None,
        })
        .expect("a sealing-started record")
}

#[test]
fn the_verification_key_reads_back_from_its_text_and_never_sits_in_the_log_directory() {
    let storage = MemStorage::new();
    let (_, log, key) = sealed_log(&storage, 1);
    let text = key.to_text();
    assert_eq!(
        VerificationKey::from_text(&format!(" {text}\n")).unwrap(),
        key
    );
    let secret = wormlog::format::hex(key.key);
    for p in storage.file_paths() {
        let bytes = storage.read_file(&p).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == key.key),
            "{} holds the verification key",
            p.display()
        );
        assert!(!String::from_utf8_lossy(&bytes).contains(&secret));
    }
    drop(log);
}

#[test]
fn a_crash_at_every_step_of_a_tag_and_its_key_evolution_reopens_continues_and_verifies() {
    // The mutating calls of one epoch crossing: tag write + sync, key file
    // tmp create, chmod, write, sync, rename, dir sync, then the append.
    for step in 0..14u64 {
        for (tear, entries) in [
            (Tear::LoseUnsynced, Entries::LoseUnsynced),
            (Tear::KeepUnsynced, Entries::KeepUnsynced),
            (Tear::KeepPrefix, Entries::Random),
        ] {
            let storage = MemStorage::new();
            let (now, log, key) = sealed_log(&storage, 2);
            now.store(T0 + 10 * 60 * SEC, Ordering::SeqCst);
            storage.crash_after(storage.mutations() + step);
            let _ = log.append(b"crossing an epoch");
            drop(log);
            let image = storage.crash_image_with(tear, entries, step);
            let (_, clock) = manual_clock(T0 + 11 * 60 * SEC);
            let log = Log::open(mem_dir(), opts(&image, clock))
                .unwrap_or_else(|e| panic!("step {step} {tear:?}: reopen: {e}"));
            log.append(b"after the crash").unwrap();
            log.verify_sealed(std::slice::from_ref(&key))
                .unwrap_or_else(|e| panic!("step {step} {tear:?}: {e}"));
            log.close().unwrap();
            let reader = Log::open_read_only(mem_dir(), mem_options(&image)).unwrap();
            reader
                .verify_sealed(&[key])
                .unwrap_or_else(|e| panic!("step {step} {tear:?} after close: {e}"));
        }
    }
}

#[test]
fn a_log_rekeyed_after_its_sealing_key_was_lost_verifies_with_both_keys() {
    let storage = MemStorage::new();
    let (now, log, first) = sealed_log(&storage, 3);
    log.close().unwrap();
    // The sealing key is lost: the log goes on, unsealed, until the
    // operator sets sealing up again (a new sealing-started record).
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    let (_, clock) = manual_clock(now.load(Ordering::SeqCst));
    let log = Log::open(mem_dir(), opts(&storage, clock)).unwrap();
    log.append(b"while no key was set up").unwrap();
    let second = log.setup_sealing(EPOCH).unwrap();
    assert_ne!(first.id(), second.id());
    log.append(b"under the second key").unwrap();
    log.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let s = reader
        .verify_sealed(&[first.clone(), second.clone()])
        .unwrap()
        .sealing
        .unwrap();
    assert_eq!(s.key_id, second.id());
    assert_eq!(s.unsealed_records, 0);
    // With only the new key, the first key's part cannot be checked: the
    // operator must give every era's key (exit 2, not tampering).
    assert!(matches!(
        reader.verify_sealed(&[second]),
        Err(Error::NotThisLogsKey { .. })
    ));
}

/// Cuts the log's only segment just before its record `seq`.
fn cut_before(storage: &MemStorage, seq: u64) {
    let path = segment_paths(storage, &mem_dir()).pop().unwrap();
    let bytes = storage.read_file(&path).unwrap();
    let at = frame_map(&bytes)
        .into_iter()
        .find(|(_, _, s)| *s == seq)
        .unwrap()
        .0;
    storage.write_file(&path, bytes[..at].to_vec());
}

#[test]
fn history_cut_before_sealing_began_and_written_anew_with_the_stolen_key_is_caught() {
    let storage = MemStorage::new();
    let (now, log, key) = sealed_log(&storage, 5);
    log.close().unwrap();
    let started = {
        let r = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
        all_records(&r)
            .into_iter()
            .find(|r| r.kind() == RecordKind::SealingStarted)
            .unwrap()
            .seq()
    };
    // The attacker keeps the key file (the current key), cuts every sealed
    // record away, and writes new history that the stolen key tags.
    cut_before(&storage, started);
    let (_, clock) = manual_clock(now.load(Ordering::SeqCst) + 60 * SEC);
    let forged = Log::open(mem_dir(), opts(&storage, clock)).unwrap();
    forged.append(b"forged history").unwrap();
    forged.close().unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_seal_broken(reader.verify_sealed(std::slice::from_ref(&key)), "rewrite");
    assert!(detail.contains("no sealing-started"), "{detail}");
    // With the key file deleted too, a verifier holding the key still fails.
    assert!(storage.delete_file(&mem_dir().join("wormlog.fss")));
    cut_before(&storage, started);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let detail = assert_seal_broken(reader.verify_sealed(&[key]), "stripped");
    assert!(detail.contains("no"), "{detail}");
}

#[test]
fn a_setup_that_crashed_before_its_record_leaves_no_key_behind() {
    use wormlog::storage::Op;
    let storage = MemStorage::new();
    let (_, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), opts(&storage, clock.clone())).unwrap();
    // The record's write fails after the (unannounced) key file is stored.
    storage.fail_nth(Op::Append, storage.count(Op::Append) + 2);
    assert!(log.setup_sealing(EPOCH).is_err());
    assert!(
        storage.read_file(&mem_dir().join("wormlog.fss")).is_some(),
        "the failure came after the key file was stored, before its record"
    );
    drop(log);
    let log = Log::open(mem_dir(), opts(&storage, clock)).unwrap();
    assert!(storage.read_file(&mem_dir().join("wormlog.fss")).is_none());
    log.append(b"unsealed, and verify says so plainly").unwrap();
    assert!(log.verify().unwrap().sealing.is_none());
}

#[test]
fn an_idle_writer_tags_each_epoch_as_it_ends() {
    let storage = MemStorage::new();
    let (now, log, key) = sealed_log(&storage, 2);
    let before = tags(&log).len();
    // No appends: the writer's timer (every second) sees the epoch end.
    now.fetch_add(5 * 60 * SEC, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tags(&log).len() == before {
        assert!(std::time::Instant::now() < deadline, "no tag while idle");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = log.verify_sealed(&[key]).unwrap().sealing.unwrap();
    assert_eq!(
        s.unsealed_records, 0,
        "the idle tag seals everything before it"
    );
}

/// A verifier that took the log's end before the writer tagged an epoch
/// and evolved its key (the epoch tick of a live log, between a reader's
/// open and its verify; `wormctl demo`'s own verify met it in-process)
/// read the key file ahead of the tags it held and called an intact log
/// cut back. The key file is read first, the end after.
#[test]
fn a_tag_and_key_evolution_during_a_verification_is_not_a_cut_tail() {
    let storage = MemStorage::new();
    let (now, log, key) = sealed_log(&storage, 3);
    let (_, clock) = manual_clock(now.load(Ordering::SeqCst));
    let reader = Log::open_read_only(mem_dir(), opts(&storage, clock)).unwrap();
    // Two epochs later, the writer tags the ended ones and evolves its key
    // past them, after the reader took the log's end.
    let before = tags(&log).len();
    now.fetch_add(2 * 60 * SEC, Ordering::SeqCst);
    log.append(b"later").unwrap();
    assert!(
        tags(&log).len() > before,
        "the append tagged the ended epochs"
    );
    let report = reader.verify_sealed(std::slice::from_ref(&key)).unwrap();
    assert!(report.sealing.unwrap().checked);
    log.close().unwrap();
}
