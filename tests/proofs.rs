//! Proved appends (format-spec.md §18.1): each append's C2SP tlog-proof
//! verifies offline with the log's public key, binds its payload, costs one
//! signature per group commit, and is never contradicted by the log a
//! crash leaves, at any crash point and under every durability mode.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{CheckpointKey, Durability, Error, Log, Options, Proved, Sealing, TlogProof};

fn key() -> CheckpointKey {
    CheckpointKey::generate("audit.example/log").unwrap()
}

#[test]
fn every_proof_from_many_threads_verifies_offline_and_binds_its_payload() {
    let key = key();
    let public = key.public();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), Options::default().proofs(key)).unwrap());
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        let payload = format!("thread {t} event {i}").into_bytes();
                        (payload.clone(), log.append_proved(&payload).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let proved: Vec<(Vec<u8>, Proved)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    for (payload, p) in &proved {
        // Through its text, as a client would receive it.
        let proof = TlogProof::parse(&p.proof.to_text()).unwrap();
        let leaf = proof.verify(&public).unwrap();
        assert_eq!(leaf.seq, p.receipt.seq);
        assert_eq!(leaf.chain_hash, p.receipt.hash);
        assert!(leaf.checkpoint.seq >= leaf.seq);
        assert!(leaf.binds_payload(payload));
        assert!(!leaf.binds_payload(b"another payload"));
        // The log agrees: the record is there, and its tree at the
        // checkpoint's size has the signed root.
        assert_eq!(log.get(leaf.seq).unwrap().payload(), &payload[..]);
        let head = log.tree_head_at(leaf.checkpoint.seq).unwrap();
        assert_eq!(Some(head.root), leaf.checkpoint.tree_root);
    }
    // One signature per group commit at most (several appends share one).
    let stats = log.stats();
    assert!(
        stats.proof_signatures <= stats.writes,
        "{} signatures for {} group writes",
        stats.proof_signatures,
        stats.writes
    );
    assert!(stats.proof_signatures < proved.len() as u64 || stats.writes == proved.len() as u64);
}

#[test]
fn a_batch_gets_one_signature_and_a_proof_for_each_record() {
    let key = key();
    let public = key.public();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().proofs(key)).unwrap();
    log.append(b"unproved first").unwrap();
    let batch: Vec<Vec<u8>> = (0..50).map(|i| format!("b{i}").into_bytes()).collect();
    let proved = log.append_batch_proved(&batch).unwrap();
    assert_eq!(proved.len(), 50);
    assert_eq!(log.stats().proof_signatures, 1);
    for (p, payload) in proved.iter().zip(&batch) {
        let leaf = p.proof.verify(&public).unwrap();
        assert!(leaf.binds_payload(payload));
        assert_eq!(p.proof.note, proved[0].proof.note, "one checkpoint");
    }
    // A changed path, index or leaf does not hold.
    let mut bad = proved[3].proof.clone();
    bad.index += 1;
    assert!(matches!(
        bad.verify(&public),
        Err(wormlog::CheckpointError::ProofDoesNotHold(_))
    ));
    let mut bad = proved[3].proof.clone();
    bad.hashes[0] = wormlog::Hash::from_bytes([0; 32]);
    assert!(bad.verify(&public).is_err());
    let mut bad = proved[3].proof.clone();
    bad.extra.as_mut().unwrap()[20] ^= 1;
    assert!(bad.verify(&public).is_err());
}

#[test]
fn a_proved_append_without_a_key_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    let before = log.head().seq;
    assert!(matches!(
        log.append_proved(b"x"),
        Err(Error::InvalidOptions(m)) if m.contains("Options::proofs")
    ));
    assert_eq!(log.head().seq, before);
}

#[test]
fn a_proof_under_buffered_durability_waits_for_the_sync() {
    let key = key();
    let public = key.public();
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .durability(Durability::Buffered)
        .proofs(key);
    let log = Log::open(dir.path(), opts).unwrap();
    let syncs = log.stats().syncs;
    let p = log.append_proved(b"buffered").unwrap();
    assert!(log.stats().syncs > syncs, "the proof came before a sync");
    p.proof.verify(&public).unwrap();
}

struct Handed {
    proofs: Vec<(Vec<u8>, TlogProof)>,
}

fn run_until_crash(
    storage: &MemStorage,
    durability: Durability,
    rng: &mut Rng,
    key: &str,
) -> Handed {
    let mut out = Handed { proofs: Vec::new() };
    let key = CheckpointKey::from_private_string(key).unwrap();
    let opts = mem_options(storage)
        .sealing(Sealing::Inline)
        .durability(durability)
        .segment_bytes_max(4096)
        .proofs(key);
    let Ok(log) = Log::open(mem_dir(), opts) else {
        return out;
    };
    for round in 0..30 {
        let n = 1 + rng.below(3) as usize;
        let batch: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                format!(
                    "round {round} record {i} {}",
                    "x".repeat(rng.below(300) as usize)
                )
                .into_bytes()
            })
            .collect();
        if rng.below(3) == 0 {
            // Unproved appends between proved ones, left unsynced.
            if log.append_batch(&batch).is_err() {
                break;
            }
            continue;
        }
        match log.append_batch_proved(&batch) {
            Ok(proved) => out
                .proofs
                .extend(batch.into_iter().zip(proved.into_iter().map(|p| p.proof))),
            Err(_) => break,
        }
    }
    out
}

fn crash_runs(test: &str, durability: Durability, runs: u64) {
    let key = key();
    let public = key.public();
    let private = key.to_private_string();
    let mut rng = Rng(seed(test));
    let mut checked = 0;
    for run in 0..runs {
        let storage = MemStorage::new();
        storage.crash_after(rng.below(200));
        let handed = run_until_crash(&storage, durability, &mut rng, &private);
        let tear = [Tear::LoseUnsynced, Tear::KeepPrefix, Tear::Sectors][rng.below(3) as usize];
        let image = storage.crash_image(tear, rng.next_u64());
        let log = Log::open(mem_dir(), mem_options(&image).sealing(Sealing::Inline))
            .unwrap_or_else(|e| panic!("{test} run {run}: reopen: {e}"));
        // The recovered log goes on; nothing it writes may contradict a proof.
        log.append(b"after the crash").unwrap();
        for (payload, proof) in &handed.proofs {
            let leaf = proof.verify(&public).unwrap();
            let record = log.get(leaf.seq).unwrap_or_else(|e| {
                panic!("{test} run {run}: proved record {} lost: {e}", leaf.seq)
            });
            assert_eq!(record.payload(), &payload[..], "{test} run {run}");
            assert_eq!(record.hash(), &leaf.chain_hash, "{test} run {run}");
            let head = log.tree_head_at(leaf.checkpoint.seq).unwrap_or_else(|e| {
                panic!("{test} run {run}: the log is shorter than a proof's checkpoint: {e}")
            });
            assert_eq!(
                Some(head.root),
                leaf.checkpoint.tree_root,
                "{test} run {run}: the recovered tree contradicts a signed root"
            );
            checked += 1;
        }
        log.verify().unwrap();
    }
    eprintln!("{test}: {runs} crash points, {checked} handed-out proofs checked");
    assert!(checked as u64 >= runs, "too few proofs reached the check");
}

#[test]
fn no_proof_handed_out_is_contradicted_after_a_crash_in_sync_mode() {
    crash_runs("proofs-sync", Durability::Sync, 300);
}

#[test]
fn no_proof_handed_out_is_contradicted_after_a_crash_in_batched_mode() {
    let batched = Durability::Batched {
        max_delay: Duration::from_secs(3600),
    };
    crash_runs("proofs-batched", batched, 300);
}

#[test]
fn no_proof_handed_out_is_contradicted_after_a_crash_in_buffered_mode() {
    crash_runs("proofs-buffered", Durability::Buffered, 300);
}
