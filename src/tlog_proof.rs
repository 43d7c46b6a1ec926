//! The proof a proved append hands back (format-spec.md §18.1; C2SP
//! tlog-proof@v1): the record's leaf index, its inclusion path, and the
//! signed checkpoint of a tree that holds it, verbatim. The `extra` line
//! carries the record's leaf data (seq, time, kind, chain hash: 49 bytes)
//! and the chain hash of the record before it (32 bytes), so that whoever
//! holds the payload can bind it: the leaf hash is SHA-256(0x00 || leaf
//! data), and the chain hash is keyed BLAKE3 over the previous hash, seq,
//! time, kind and payload. `extra` is not signed; it is bound through the
//! inclusion path (its leaf data) and the chain hash (its previous hash).

use crate::checkpoint::{Checkpoint, CheckpointPublicKey, NOTE_BYTES_MAX};
use crate::error::CheckpointError;
use crate::format::merkle::{leaf_hash, parse_leaf_data, verify_inclusion, LEAF_DATA_LEN};
use crate::format::{chain_hash, Hash};
use crate::policy::{Accepted, Policy};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The spec's bound on inclusion path lines (a tree of < 2^63 leaves).
const HASHES_MAX: usize = 63;
/// Leaf data and the previous record's chain hash.
const EXTRA_LEN: usize = LEAF_DATA_LEN + 32;
/// No proof we accept is longer: a note, 63 hashes, the header lines.
pub const PROOF_BYTES_MAX: usize = NOTE_BYTES_MAX + 4096;

/// A `c2sp.org/tlog-proof@v1` proof, as text or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Zero-based leaf index: the record's seq minus one.
    pub index: u64,
    /// The opaque extra data (wormlog's: leaf data, then the previous
    /// record's chain hash).
    pub extra: Option<Vec<u8>>,
    /// The inclusion path, the leaf's sibling first.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint, verbatim (cosignatures included).
    pub note: String,
}

/// What a proof that holds proves: this record is in the checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvedLeaf {
    /// The record's seq.
    pub seq: u64,
    /// Its commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// Its kind byte (0x00: a user record; format-spec.md §4.1).
    pub kind: u8,
    /// Its chain hash.
    pub chain_hash: Hash,
    /// The chain hash of the record before it (from `extra`; bound by
    /// `binds_payload`).
    pub prev_hash: Hash,
    /// The checkpoint whose tree holds it.
    pub checkpoint: Checkpoint,
}

impl ProvedLeaf {
    /// Whether `payload` is this record's payload: its chain hash is the
    /// one the proved leaf holds.
    pub fn binds_payload(&self, payload: &[u8]) -> bool {
        chain_hash(
            &self.prev_hash,
            self.seq,
            self.timestamp_ns,
            self.kind,
            payload,
        ) == self.chain_hash
    }
}

impl TlogProof {
    /// A proof of the record whose leaf data is `leaf` (previous chain
    /// hash `prev`), with `hashes` up to the root of the tree `note` signs.
    pub(crate) fn new(
        leaf: &[u8; LEAF_DATA_LEN],
        prev: &Hash,
        seq: u64,
        hashes: Vec<Hash>,
        note: &str,
    ) -> TlogProof {
        let mut extra = leaf.to_vec();
        extra.extend_from_slice(prev.as_bytes());
        TlogProof {
            index: seq - 1,
            extra: Some(extra),
            hashes,
            note: note.to_string(),
        }
    }

    /// The proof as text (what a `.tlog-proof` file holds).
    pub fn to_text(&self) -> String {
        let mut s = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            s.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            s.push_str(&B64.encode(h.as_bytes()));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.note);
        s
    }

    /// Whether `text` starts as a tlog-proof does (to tell it from the
    /// other proof files a tool reads).
    pub fn looks_like(text: &str) -> bool {
        text.starts_with(HEADER)
    }

    /// Parses a proof; the note is kept verbatim and checked when the
    /// proof is verified.
    pub fn parse(text: &str) -> Result<TlogProof, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadProof(m.to_string());
        if text.len() > PROOF_BYTES_MAX {
            return Err(bad("longer than any proof"));
        }
        let Some(split) = text.find("\n\n") else {
            return Err(bad("no blank line before the checkpoint"));
        };
        let (head, note) = (&text[..split], &text[split + 2..]);
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("the first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let mut extra = None;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(e).map_err(|_| bad("extra is not base64"))?);
            line = lines.next().ok_or_else(|| bad("no index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .filter(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (n.len() == 1 || !n.starts_with('0'))
            })
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("no `index <n>` line"))?;
        let mut hashes = Vec::new();
        for l in lines {
            if hashes.len() == HASHES_MAX {
                return Err(bad("more than 63 inclusion path hashes"));
            }
            let h: [u8; 32] = B64
                .decode(l)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| bad("an inclusion path line is not 32 bytes of base64"))?;
            hashes.push(Hash::from_bytes(h));
        }
        Ok(TlogProof {
            index,
            extra,
            hashes,
            note: note.to_string(),
        })
    }

    /// Checks the proof against the log's public key: the note is signed
    /// by `key`, carries a tree root, and the path leads from the leaf in
    /// `extra` (whose seq is `index + 1`) to that root.
    pub fn verify(&self, key: &CheckpointPublicKey) -> Result<ProvedLeaf, CheckpointError> {
        let checkpoint = Checkpoint::verify_note(&self.note, key)?;
        self.holds(checkpoint)
    }

    /// As [`verify`](Self::verify), under a trust policy: one of its logs
    /// signed the note and a quorum of its witnesses cosigned it.
    pub fn verify_with_policy(
        &self,
        policy: &Policy,
    ) -> Result<(ProvedLeaf, Accepted), CheckpointError> {
        let accepted = policy.check_note(&self.note)?;
        let leaf = self.holds(accepted.checkpoint)?;
        Ok((leaf, accepted))
    }

    fn holds(&self, checkpoint: Checkpoint) -> Result<ProvedLeaf, CheckpointError> {
        let fails = |m: String| CheckpointError::ProofDoesNotHold(m);
        let root = checkpoint.tree_root.ok_or_else(|| {
            fails("the checkpoint carries no tree root (not a wormlog/<id>/v2 note)".into())
        })?;
        // A proof without wormlog's extra is not one of ours (exit 2, as any
        // malformed proof), not one that fails to hold.
        let extra = match self.extra.as_deref() {
            Some(e) if e.len() == EXTRA_LEN => e,
            Some(e) => {
                return Err(CheckpointError::BadProof(format!(
                    "the extra line holds {} bytes, not wormlog's {EXTRA_LEN} (leaf data and \
                     the previous chain hash)",
                    e.len()
                )))
            }
            None => {
                return Err(CheckpointError::BadProof(
                    "no extra line: wormlog's proofs carry the record's leaf data there".into(),
                ))
            }
        };
        let (seq, timestamp_ns, kind, chain) = parse_leaf_data(&extra[..LEAF_DATA_LEN])
            .ok_or_else(|| fails("the extra line's leaf data does not parse".into()))?;
        if seq != self.index.wrapping_add(1) {
            return Err(fails(format!(
                "the leaf is record {seq}, the index says record {}",
                self.index.wrapping_add(1)
            )));
        }
        if !verify_inclusion(
            self.index,
            checkpoint.seq,
            &leaf_hash(&extra[..LEAF_DATA_LEN]),
            &self.hashes,
            &root,
        ) {
            return Err(fails(format!(
                "the inclusion path does not lead from record {seq} to the root of the \
                 checkpoint's tree of {} records",
                checkpoint.seq
            )));
        }
        let prev: [u8; 32] = extra[LEAF_DATA_LEN..]
            .try_into()
            .map_err(|_| fails("extra too short".into()))?;
        Ok(ProvedLeaf {
            seq,
            timestamp_ns,
            kind,
            chain_hash: chain,
            prev_hash: Hash::from_bytes(prev),
            checkpoint,
        })
    }
}
