//! The BLAKE3 hash chain (format-spec.md, "Chain hash").

use super::hash::Hash;

/// Domain separation for record hashes: fed first, before the record fields.
const RECORD_CONTEXT: &[u8; 18] = b"wormlog v1 record\0";
/// BLAKE3 `derive_key` context for a log's genesis hash.
const GENESIS_CONTEXT: &str = "wormlog v1 genesis";

/// hash(n) = BLAKE3-keyed(key = hash(n-1), RECORD_CONTEXT || seq || timestamp || kind || payload).
/// Keyed mode costs one compression less per record than hashing the
/// previous hash as a prefix, and every fixed-width field precedes the one
/// variable-length field, so the input is unambiguous.
pub fn chain_hash(prev: &Hash, seq: u64, timestamp_ns: u64, kind: u8, payload: &[u8]) -> Hash {
    let mut h = chain_hasher(prev, seq, timestamp_ns, kind);
    h.update(payload);
    h.finalize().into()
}

/// The hasher of [`chain_hash`] given everything but the payload, which
/// follows last: a payload too large to hold is fed to it in pieces.
pub(crate) fn chain_hasher(prev: &Hash, seq: u64, timestamp_ns: u64, kind: u8) -> blake3::Hasher {
    let mut h = blake3::Hasher::new_keyed(prev.as_bytes());
    h.update(RECORD_CONTEXT);
    h.update(&seq.to_le_bytes());
    h.update(&timestamp_ns.to_le_bytes());
    h.update(&[kind]);
    h
}

/// The hash that the first record of a log chains to: bound to the log id,
/// so a segment from another log cannot continue this one.
pub fn genesis_hash(log_id: &[u8; 16]) -> Hash {
    Hash::from_bytes(blake3::derive_key(GENESIS_CONTEXT, log_id))
}

/// A position in the chain: a record's seq, its chain hash and its commit
/// time. It is what a receipt proves, what a log's head is, and where a
/// walk over frames stands. Before a segment's first record the position is
/// the one its header continues (`first_seq - 1`, `prev_hash`, `created_ns`);
/// before a log's first record it is seq 0 and the genesis hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPos {
    /// The record's seq (0 before a log's first record).
    pub seq: u64,
    /// Chain hash of record `seq`.
    pub hash: Hash,
    /// Commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
}

impl ChainPos {
    /// The seq of the record that would continue the chain from here.
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let prev = Hash::from_bytes([7u8; 32]);
        let base = chain_hash(&prev, 5, 100, 0, b"abc");
        assert_ne!(
            base,
            chain_hash(&Hash::from_bytes([8u8; 32]), 5, 100, 0, b"abc")
        );
        assert_ne!(base, chain_hash(&prev, 6, 100, 0, b"abc"));
        assert_ne!(base, chain_hash(&prev, 5, 101, 0, b"abc"));
        assert_ne!(base, chain_hash(&prev, 5, 100, 1, b"abc"));
        assert_ne!(base, chain_hash(&prev, 5, 100, 0, b"abd"));
        assert_eq!(base, chain_hash(&prev, 5, 100, 0, b"abc"));
    }

    #[test]
    fn genesis_depends_on_log_id() {
        assert_ne!(genesis_hash(&[0; 16]), genesis_hash(&[1; 16]));
    }
}
