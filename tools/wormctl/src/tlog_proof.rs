//! `wormctl check-proof FILE.tlog-proof --pubkey LOG.pub | --policy FILE
//! [--payload FILE]`: a C2SP tlog-proof checked offline (format-spec.md
//! §18.1): the note signed by the log's key (or by one of the policy's logs
//! and cosigned by its quorum), the path from the record's leaf to the
//! note's root, and, with the payload, the record's chain hash. Exit 0 it
//! holds, 1 it does not, 2 the operator's input (a wrong key, a file that
//! is not a proof).

use crate::fail::Fail;
use crate::out::{self, Out};
use crate::proof::CheckProofArgs;
use crate::verify::{load_policy, read_small};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::path::Path;
use wormlog::format::hex;
use wormlog::{CheckpointPublicKey, ProvedLeaf, TlogProof};

pub fn check(path: &Path, text: &str, a: &CheckProofArgs) -> Result<(), Fail> {
    if a.checkpoint().is_some() {
        return Err(Fail::usage(
            "a tlog-proof carries its checkpoint: leave out --checkpoint",
        ));
    }
    let proof = TlogProof::parse(text)
        .map_err(|e| Fail::usage(format!("{}: {e}", out::path_text(path))))?;
    let within = |e: wormlog::CheckpointError| Fail::log(e.into()).within(out::path_text(path));
    let (leaf, signer, cosigners) = match (a.pubkey(), a.policy()) {
        (_, Some(policy)) => {
            let (leaf, accepted) = proof
                .verify_with_policy(&load_policy(policy)?)
                .map_err(within)?;
            let cosigners: Vec<String> = accepted
                .cosigners
                .iter()
                .map(|(name, t)| {
                    format!(
                        "{name} at {}",
                        out::rfc3339(t.saturating_mul(1_000_000_000))
                    )
                })
                .collect();
            (leaf, accepted.log, cosigners)
        }
        (Some(key), None) => {
            let key = load_key(key)?;
            (
                proof.verify(&key).map_err(within)?,
                key.name().to_string(),
                Vec::new(),
            )
        }
        (None, None) => return Err(Fail::usage("give --pubkey FILE or --policy FILE")),
    };
    let bound = match a.payload() {
        Some(p) => {
            let payload = std::fs::read(p).map_err(|e| Fail::io(p.display(), e))?;
            if !leaf.binds_payload(&payload) {
                return Err(Fail::unproven(format!(
                    "{}: the proof is of record {}, whose chain hash is not that of the payload \
                     in {}",
                    out::path_text(path),
                    leaf.seq,
                    out::path_text(p)
                )));
            }
            true
        }
        None => false,
    };
    report(&leaf, &signer, &cosigners, bound)
}

fn load_key(path: &Path) -> Result<CheckpointPublicKey, Fail> {
    let text = read_small(path, "public key")?;
    CheckpointPublicKey::from_vkey_string(text.trim())
        .map_err(|e| Fail::usage(format!("{}: {e}", out::path_text(path))))
}

fn report(leaf: &ProvedLeaf, signer: &str, cosigners: &[String], bound: bool) -> Result<(), Fail> {
    let cp = &leaf.checkpoint;
    let kind = wormlog::RecordKind::from_u8(leaf.kind).map_or("unknown", |k| k.name());
    let mut out = Out::new();
    out.line(format!(
        "proof holds: record {} ({kind}, {}) is leaf {} of the tree of {} records of log {}",
        leaf.seq,
        out::rfc3339(leaf.timestamp_ns),
        leaf.seq - 1,
        cp.seq,
        hex(cp.log_id)
    ))?;
    let root = cp.tree_root.unwrap_or_default();
    out.line(format!(
        "root        {} (base64 {})",
        hex(root),
        B64.encode(root.as_bytes())
    ))?;
    out.line(format!("chain hash  {}", hex(leaf.chain_hash)))?;
    out.line(format!("signed by   {signer}"))?;
    if !cosigners.is_empty() {
        out.line(format!("cosigned by {}", cosigners.join(", ")))?;
    }
    out.line(if bound {
        "payload     bound: its chain hash is the record's".to_string()
    } else {
        "payload     not given (--payload FILE binds it)".to_string()
    })?;
    out.flush()
}
