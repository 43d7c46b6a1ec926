//! Proved appends (format-spec.md §18.1): an append that returns, with its
//! receipt, a C2SP tlog-proof of its record against a signed checkpoint.
//!
//! One signature per group commit: the first proved append to find the
//! newest signed checkpoint too small takes the signer's lock, signs the
//! durable head (which covers its whole group, and any group synced since),
//! and the appends after it reuse that note. The head signed is the one
//! the writer last made durable (`Shared::durable`), never one merely
//! written: a crash cannot cut a record a handed-out proof shows, so no
//! later record can take its seq and contradict the proof.

use crate::checkpoint::{Checkpoint, CheckpointKey, RetentionPoint};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::merkle::{leaf_data, LEAF_DATA_LEN};
use crate::format::{genesis_hash, Hash, RecordKind};
use crate::merkle;
use crate::options::Durability;
use crate::read;
use crate::state::Receipt;
use crate::tlog_proof::TlogProof;
use std::sync::Arc;

/// A record appended with its proof.
#[derive(Debug, Clone)]
pub struct Proved {
    /// The record's receipt (seq, chain hash, commit time).
    pub receipt: Receipt,
    /// Its proof: leaf index, inclusion path and the signed checkpoint.
    pub proof: TlogProof,
}

/// `Log::append_batch_proved`: appends as one unit, then proves each.
pub(crate) fn append_proved(engine: &Engine, payloads: Vec<Vec<u8>>) -> Result<Vec<Proved>> {
    let Some(key) = engine.shared.options.proofs.clone() else {
        return Err(Error::InvalidOptions(
            "proved appends need a checkpoint key: open the log with Options::proofs(key)".into(),
        ));
    };
    let receipts = engine.append_batch(payloads)?;
    prove(engine, &key, &receipts)
}

/// Proofs of `receipts` (contiguous user records, just committed).
pub(crate) fn prove(
    engine: &Engine,
    key: &CheckpointKey,
    receipts: &[Receipt],
) -> Result<Vec<Proved>> {
    let (Some(first), Some(last)) = (receipts.first(), receipts.last()) else {
        return Ok(Vec::new());
    };
    let shared = &engine.shared;
    if shared.options.durability != Durability::Sync {
        // Acknowledged is not yet durable: a proof waits for the sync.
        engine.writer()?.sync(shared)?;
    }
    let (size, root, note) = signed_head(engine, key, last.seq)?;
    let mut prev = prev_hash(engine, first.seq)?;
    let mut out = Vec::with_capacity(receipts.len());
    for r in receipts {
        let leaf = leaf_data(r.seq, r.timestamp_ns, RecordKind::User as u8, &r.hash);
        let hashes = merkle::path_of_leaf(shared, r.seq, size, &leaf, &root)?;
        out.push(Proved {
            receipt: *r,
            proof: TlogProof::new(&leaf, &prev, r.seq, hashes, &note),
        });
        prev = r.hash;
    }
    Ok(out)
}

/// `Log::witness_proofs`: the proofs again, against one checkpoint that
/// covers them all and that every witness cosigned. One round at a time
/// (`Engine::witnessed`), so each witness sees this log's sizes grow; a
/// checkpoint already cosigned is reused.
pub(crate) fn witness(
    engine: &Engine,
    proofs: &[Proved],
    witnesses: &[crate::witness::Witness],
) -> Result<Vec<Proved>> {
    let Some(key) = engine.shared.options.proofs.clone() else {
        return Err(Error::InvalidOptions(
            "witnessed proofs need a checkpoint key: open the log with Options::proofs(key)".into(),
        ));
    };
    let Some(need) = proofs.iter().map(|p| p.receipt.seq).max() else {
        return Ok(Vec::new());
    };
    let shared = &engine.shared;
    let public = key.public();
    let consistency = |old: u64, new: u64| Ok(merkle::prove_consistency(shared, old, new)?.hashes);
    let root_at = |n: u64| merkle::root_at(shared, n);
    let log = crate::witness::LogView {
        key: &public,
        consistency: &consistency,
        root_at: &root_at,
    };
    let mut cosigned = engine.witnessed.lock();
    let mut need = need;
    // A witness ahead of the head signed (another handle's round) asks
    // for a newer one: sign the durable head again, a few times at most.
    let (size, root, note) = loop {
        let (size, root, note) = signed_head(engine, &key, need)?;
        if let Some((s, n)) = &*cosigned {
            if *s == size {
                break (size, root, n.clone());
            }
        }
        match crate::witness::cosign_note(&note, size, witnesses, &log) {
            Ok(n) => {
                let n: Arc<str> = n.into();
                *cosigned = Some((size, n.clone()));
                break (size, root, n);
            }
            Err(Error::WitnessAhead { size: theirs, .. }) if theirs > need => need = theirs,
            Err(e) => {
                engine.record_conflict(&e);
                return Err(e);
            }
        }
    };
    drop(cosigned);
    proofs
        .iter()
        .map(|p| {
            let extra = p.proof.extra.as_deref().unwrap_or_default();
            let leaf: [u8; LEAF_DATA_LEN] = extra
                .get(..LEAF_DATA_LEN)
                .and_then(|l| l.try_into().ok())
                .ok_or_else(|| Error::InvalidOptions("a proof without its leaf data".into()))?;
            let prev = extra
                .get(LEAF_DATA_LEN..)
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .map(Hash::from_bytes)
                .ok_or_else(|| Error::InvalidOptions("a proof without its previous hash".into()))?;
            let hashes = merkle::path_of_leaf(shared, p.receipt.seq, size, &leaf, &root)?;
            Ok(Proved {
                receipt: p.receipt,
                proof: TlogProof::new(&leaf, &prev, p.receipt.seq, hashes, &note),
            })
        })
        .collect()
}

/// The newest signed checkpoint if it covers `need`, else a new one of the
/// durable head (which covers it: `need` was synced before this is asked).
fn signed_head(engine: &Engine, key: &CheckpointKey, need: u64) -> Result<(u64, Hash, Arc<str>)> {
    let shared = &engine.shared;
    let mut latest = engine.proved.lock();
    if let Some((size, root, note)) = &*latest {
        if *size >= need {
            return Ok((*size, *root, note.clone()));
        }
    }
    let (head, policy) = *shared.durable.lock();
    if head.seq < need {
        return Err(Error::Poisoned {
            cause: format!(
                "record {need} was acknowledged but the durable head is {}",
                head.seq
            ),
        });
    }
    let tree = merkle::head_at(shared, head.seq, false)?;
    let format_3 = shared
        .segments
        .read()
        .last()
        .is_some_and(|s| s.header.version >= 3);
    let checkpoint = Checkpoint {
        log_id: shared.log_id,
        seq: head.seq,
        hash: head.hash,
        timestamp_ns: head.timestamp_ns,
        retention: Some(RetentionPoint {
            first_seq: shared.first_seq(),
            anchor_head: shared.anchor.lock().last_hash(&shared.log_id),
            min_age_ns: format_3.then(|| policy.map_or(0, |p| p.min_age_ns)),
        }),
        tree_root: Some(tree.root),
    };
    let note: Arc<str> = checkpoint.sign(key).into();
    *latest = Some((head.seq, tree.root, note.clone()));
    shared
        .counters
        .proof_signatures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok((head.seq, tree.root, note))
}

/// The chain hash of record `seq - 1` (the genesis hash before record 1).
fn prev_hash(engine: &Engine, seq: u64) -> Result<Hash> {
    if seq <= 1 {
        return Ok(genesis_hash(&engine.shared.log_id));
    }
    if let Some(h) = engine.shared.pending_leaves.lock().recent_hash(seq - 1) {
        return Ok(h);
    }
    Ok(*read::get(&engine.shared, seq - 1)?.hash())
}
