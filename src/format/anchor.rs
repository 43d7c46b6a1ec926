//! The anchor file (format-spec.md, "Anchor file"): an append-only list of
//! retention events, each saying where the retained chain now begins and
//! which segments were dropped, each CRC'd and hash-chained to the one before.

use super::fss::TagFacts;
use super::hash::{Hash, HASH_LEN};
use super::{le_u16, le_u32, le_u64};
use crate::error::Corruption;

/// The anchor file's first 8 bytes (format-spec.md, section 8.1).
pub const ANCHOR_MAGIC: [u8; 8] = *b"WLANCHOR";
pub const ANCHOR_VERSION: u16 = 1;
// Anchor header fields, each offset derived from the one before.
const ANCHOR_VERSION_AT: usize = ANCHOR_MAGIC.len();
const ANCHOR_RESERVED_AT: usize = ANCHOR_VERSION_AT + 2;
/// Offset of the log id in the anchor file header.
pub const ANCHOR_LOG_ID_AT: usize = ANCHOR_RESERVED_AT + 2;
const ANCHOR_CRC_AT: usize = ANCHOR_LOG_ID_AT + 16;
/// Length of the anchor file header in bytes (32); entries follow it.
pub const ANCHOR_HEADER_LEN: usize = ANCHOR_CRC_AT + 4;
const _: () = assert!(ANCHOR_HEADER_LEN == 32);
const ENTRY_FIXED_LEN: usize = 96;
const DROPPED_LEN: usize = 24 + HASH_LEN;
/// Length of a format-3 entry's extension (after the dropped items).
const EXT_LEN: usize = 184;
/// No entry is larger (a retention run drops at most this many segments'
/// worth: about 299,000); a reader never allocates more for one entry.
pub const ANCHOR_ENTRY_LEN_MAX: usize = 16 << 20;
/// BLAKE3 `derive_key` context of the hash the first entry chains to.
const ANCHOR_GENESIS_CONTEXT: &str = "wormlog v1 anchor genesis";
/// Domain separator of entry hashes.
const ENTRY_CONTEXT: &[u8; 18] = b"wormlog v1 anchor\0";

/// One dropped segment, as an anchor entry records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedSegment {
    /// The segment's number.
    pub segment: u64,
    /// Seq of its first record.
    pub first_seq: u64,
    /// Seq of its last record.
    pub last_seq: u64,
    /// Chain hash of its last record.
    pub last_hash: Hash,
}

/// An epoch tag recorded whole in an anchor entry: the last tag among (or
/// before) the records a drop removed, so that the tags kept can be shown
/// to continue it (format-spec.md, 8.2 and 16.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedTag {
    /// The format of the segment the tag was in (2 or 3): which MAC it is.
    pub version: u16,
    /// The first epoch it sealed (its key's epoch).
    pub first_epoch: u64,
    /// The last epoch it sealed.
    pub epoch: u64,
    /// Seq of the record it sealed (the one just before it).
    pub seq: u64,
    /// That record's chain hash.
    pub hash: Hash,
    /// That record's commit time and the policy in force there (covered by
    /// the MAC of a version-3 tag only).
    pub facts: TagFacts,
    /// The MAC.
    pub tag: [u8; 32],
}

/// The forward-secure sealing state the dropped records ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealingState {
    /// The id of the verification key sealing was set up with.
    pub key_id: [u8; 8],
    /// The last tag under that key; `None` if none was made yet (the next
    /// tag then seals from epoch 1).
    pub last_tag: Option<RecordedTag>,
}

impl SealingState {
    /// The first epoch the next tag under this key must seal.
    pub fn next_epoch(&self) -> u64 {
        self.last_tag.map_or(1, |t| t.epoch + 1)
    }
}

/// What a format-3 anchor entry records beyond format 1's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnchorExt {
    /// The Merkle tree over every record before the kept start: its size
    /// (`first_seq - 1`) and root; `None` where the log had no tree over
    /// them (a format-1 start dropped before the tree existed).
    pub tree: Option<(u64, Hash)>,
    /// The sealing state; `None` where sealing was never set up before the
    /// drop.
    pub sealing: Option<SealingState>,
    /// The commit time of the newest record the drop removed (the last
    /// dropped segment's last record): what its age is measured from. The
    /// kept segment's creation time is no bound (recovery that finishes a
    /// roll after downtime creates it later).
    pub newest_ns: u64,
}

/// One retention event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorEntry {
    /// When retention ran, ns since the Unix epoch.
    pub time_ns: u64,
    /// The first seq the log keeps after this event.
    pub first_seq: u64,
    /// The chain hash of record `first_seq - 1`: what the kept log continues.
    pub prev_hash: Hash,
    /// Hash of the entry before (or the anchor genesis hash).
    pub prev_entry_hash: Hash,
    /// The segments this event dropped, oldest first.
    pub dropped: Vec<DroppedSegment>,
    /// Format 3's extension (tree root and sealing state); `None` in an
    /// entry an older writer made.
    pub ext: Option<AnchorExt>,
}

/// The hash the first anchor entry chains to.
pub fn anchor_genesis(log_id: &[u8; 16]) -> Hash {
    Hash::from_bytes(blake3::derive_key(ANCHOR_GENESIS_CONTEXT, log_id))
}

/// The 32-byte anchor file header for `log_id`, CRC included.
pub fn encode_anchor_header(log_id: &[u8; 16]) -> [u8; ANCHOR_HEADER_LEN] {
    let mut b = [0u8; ANCHOR_HEADER_LEN];
    b[..ANCHOR_VERSION_AT].copy_from_slice(&ANCHOR_MAGIC);
    b[ANCHOR_VERSION_AT..ANCHOR_RESERVED_AT].copy_from_slice(&ANCHOR_VERSION.to_le_bytes());
    b[ANCHOR_LOG_ID_AT..ANCHOR_CRC_AT].copy_from_slice(log_id);
    let crc = crc32fast::hash(&b[..ANCHOR_CRC_AT]);
    b[ANCHOR_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The log id an anchor file belongs to.
pub fn decode_anchor_header(b: &[u8]) -> Result<[u8; 16], Corruption> {
    let bad = |detail: &str| Corruption::Anchor {
        detail: detail.into(),
    };
    if b.len() < ANCHOR_HEADER_LEN || b[..ANCHOR_VERSION_AT] != ANCHOR_MAGIC {
        return Err(bad("not an anchor file (magic)"));
    }
    if crc32fast::hash(&b[..ANCHOR_CRC_AT]) != le_u32(b, ANCHOR_CRC_AT) {
        return Err(bad("header CRC mismatch"));
    }
    if le_u16(b, ANCHOR_VERSION_AT) != ANCHOR_VERSION || le_u16(b, ANCHOR_RESERVED_AT) != 0 {
        return Err(bad("unsupported anchor version"));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[ANCHOR_LOG_ID_AT..ANCHOR_CRC_AT]);
    Ok(id)
}

impl AnchorEntry {
    /// The entry's bytes (96 + 56 per dropped segment), length and CRC-32
    /// filled in.
    pub fn encode(&self) -> Vec<u8> {
        let ext_len = if self.ext.is_some() { EXT_LEN } else { 0 };
        let len = ENTRY_FIXED_LEN + self.dropped.len() * DROPPED_LEN + ext_len;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&self.time_ns.to_le_bytes());
        b.extend_from_slice(&self.first_seq.to_le_bytes());
        b.extend_from_slice(self.prev_hash.as_bytes());
        b.extend_from_slice(self.prev_entry_hash.as_bytes());
        b.extend_from_slice(&(self.dropped.len() as u32).to_le_bytes());
        b.extend_from_slice(&u32::from(self.ext.is_some()).to_le_bytes());
        for d in &self.dropped {
            b.extend_from_slice(&d.segment.to_le_bytes());
            b.extend_from_slice(&d.first_seq.to_le_bytes());
            b.extend_from_slice(&d.last_seq.to_le_bytes());
            b.extend_from_slice(d.last_hash.as_bytes());
        }
        if let Some(ext) = &self.ext {
            encode_ext(&mut b, ext);
        }
        let crc = crc32fast::hash(&b[8..]);
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// This entry's hash, the next entry's `prev_entry_hash`:
    /// BLAKE3-keyed(key = prev_entry_hash, ENTRY_CONTEXT || bytes 8.. of the entry).
    pub fn hash(&self) -> Hash {
        let bytes = self.encode();
        let mut h = blake3::Hasher::new_keyed(self.prev_entry_hash.as_bytes());
        h.update(ENTRY_CONTEXT);
        h.update(&bytes[8..]);
        h.finalize().into()
    }

    /// Decodes the entry at the start of `buf`; returns it and its length.
    /// `Ok(None)` when `buf` holds only part of an entry (a torn append).
    pub fn decode(buf: &[u8]) -> Result<Option<(AnchorEntry, usize)>, Corruption> {
        let bad = |detail: String| Corruption::Anchor { detail };
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = le_u32(buf, 0) as usize;
        if !(ENTRY_FIXED_LEN..=ANCHOR_ENTRY_LEN_MAX).contains(&len) {
            return Err(bad(format!("entry length {len} is invalid")));
        }
        if buf.len() < len {
            return Ok(None);
        }
        let e = &buf[..len];
        let stored = le_u32(e, 4);
        let computed = crc32fast::hash(&e[8..]);
        if stored != computed {
            return Err(bad(format!(
                "entry CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let count = le_u32(e, 88) as usize;
        let ext_len = match le_u32(e, 92) {
            0 => 0,
            1 => EXT_LEN,
            f => return Err(bad(format!("entry flags {f} are not 0 or 1"))),
        };
        if Some(len)
            != count
                .checked_mul(DROPPED_LEN)
                .map(|d| ENTRY_FIXED_LEN + d + ext_len)
        {
            return Err(bad(format!(
                "entry claims {count} dropped segments in {len} bytes"
            )));
        }
        let items_end = len - ext_len;
        let hash_at = |at: usize| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(&e[at..at + HASH_LEN]);
            Hash::from_bytes(h)
        };
        let ext = (ext_len > 0)
            .then(|| decode_ext(&e[items_end..]))
            .transpose()
            .map_err(bad)?;
        let dropped = e[ENTRY_FIXED_LEN..items_end]
            .chunks_exact(DROPPED_LEN)
            .map(|d| DroppedSegment {
                segment: le_u64(d, 0),
                first_seq: le_u64(d, 8),
                last_seq: le_u64(d, 16),
                last_hash: {
                    let mut h = [0u8; HASH_LEN];
                    h.copy_from_slice(&d[24..24 + HASH_LEN]);
                    Hash::from_bytes(h)
                },
            })
            .collect();
        Ok(Some((
            AnchorEntry {
                time_ns: le_u64(e, 8),
                first_seq: le_u64(e, 16),
                prev_hash: hash_at(24),
                prev_entry_hash: hash_at(56),
                dropped,
                ext,
            },
            len,
        )))
    }
}

/// Format 3's extension, 184 bytes (format-spec.md, 8.2).
fn encode_ext(b: &mut Vec<u8>, ext: &AnchorExt) {
    let (size, root) = ext.tree.unwrap_or((0, Hash::from_bytes([0; HASH_LEN])));
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(root.as_bytes());
    let (key_id, next) = ext
        .sealing
        .map_or(([0; 8], 0), |s| (s.key_id, s.next_epoch()));
    b.extend_from_slice(&key_id);
    b.extend_from_slice(&next.to_le_bytes());
    let t = ext.sealing.and_then(|s| s.last_tag);
    let version = t.map_or(0, |t| t.version);
    let floor = t.and_then(|t| t.facts.floor);
    b.extend_from_slice(&version.to_le_bytes());
    b.push(u8::from(floor.is_some()));
    b.extend_from_slice(&[0; 5]);
    let t = t.unwrap_or(RecordedTag {
        version: 0,
        first_epoch: 0,
        epoch: 0,
        seq: 0,
        hash: Hash::from_bytes([0; HASH_LEN]),
        facts: TagFacts::default(),
        tag: [0; 32],
    });
    let (min_age, ahead) = floor.unwrap_or((0, 0));
    for v in [t.first_epoch, t.epoch, t.seq] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(t.hash.as_bytes());
    for v in [t.facts.time_ns, min_age, ahead] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&t.tag);
    b.extend_from_slice(&ext.newest_ns.to_le_bytes());
}

/// Reads format 3's extension; every field that has no value must be zero,
/// and the values must agree with one another.
fn decode_ext(x: &[u8]) -> Result<AnchorExt, String> {
    let h = |at: usize| {
        let mut v = [0u8; HASH_LEN];
        v.copy_from_slice(&x[at..at + HASH_LEN]);
        Hash::from_bytes(v)
    };
    let zero = |r: std::ops::Range<usize>| x[r].iter().all(|b| *b == 0);
    let size = le_u64(x, 0);
    let tree = match size {
        0 if zero(8..40) => None,
        0 => return Err("the extension has a tree root for a tree of size 0".into()),
        n => Some((n, h(8))),
    };
    let mut key_id = [0u8; 8];
    key_id.copy_from_slice(&x[40..48]);
    let next = le_u64(x, 48);
    let version = le_u16(x, 56);
    let flag = x[58];
    if !zero(59..64) || flag > 1 || !matches!(version, 0 | 2 | 3) {
        return Err(
            "the extension's tag version, policy flag or reserved bytes are invalid".into(),
        );
    }
    let tag = RecordedTag {
        version,
        first_epoch: le_u64(x, 64),
        epoch: le_u64(x, 72),
        seq: le_u64(x, 80),
        hash: h(88),
        facts: TagFacts {
            time_ns: le_u64(x, 120),
            floor: (flag == 1).then(|| (le_u64(x, 128), le_u64(x, 136))),
        },
        tag: {
            let mut t = [0u8; 32];
            t.copy_from_slice(&x[144..176]);
            t
        },
    };
    if key_id == [0; 8] {
        return if next == 0 && zero(56..176) {
            Ok(AnchorExt {
                tree,
                sealing: None,
                newest_ns: le_u64(x, 176),
            })
        } else {
            Err("the extension records a tag but no sealing key".into())
        };
    }
    let last_tag = match version {
        0 if zero(56..176) => None,
        0 => return Err("the extension's tag fields are set with no tag".into()),
        _ if !(1..=tag.epoch).contains(&tag.first_epoch) => {
            return Err(format!(
                "the extension's tag seals epochs {}..={}",
                tag.first_epoch, tag.epoch
            ))
        }
        _ if (version < 3 && flag != 0) || (flag == 0 && !zero(128..144)) => {
            return Err("the extension's policy fields do not match its flag".into())
        }
        _ => Some(tag),
    };
    let sealing = SealingState { key_id, last_tag };
    if next != sealing.next_epoch() {
        return Err(format!(
            "the extension's next epoch {next} does not follow its tag (expected {})",
            sealing.next_epoch()
        ));
    }
    Ok(AnchorExt {
        tree,
        sealing: Some(sealing),
        newest_ns: le_u64(x, 176),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AnchorEntry {
        AnchorEntry {
            time_ns: 7,
            first_seq: 100,
            prev_hash: Hash::from_bytes([1; 32]),
            prev_entry_hash: Hash::from_bytes([2; 32]),
            dropped: vec![DroppedSegment {
                segment: 1,
                first_seq: 1,
                last_seq: 99,
                last_hash: Hash::from_bytes([1; 32]),
            }],
            ext: None,
        }
    }

    #[test]
    fn anchor_entry_round_trips() {
        let e = entry();
        let bytes = e.encode();
        assert_eq!(AnchorEntry::decode(&bytes).unwrap(), Some((e, bytes.len())));
    }

    #[test]
    fn every_bit_flip_in_an_entry_is_caught_or_changes_its_hash() {
        let e = entry();
        let bytes = e.encode();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            if let Ok(Some((d, _))) = AnchorEntry::decode(&b) {
                panic!("bit {bit} decoded as {d:?}");
            }
        }
    }

    #[test]
    fn partial_entry_is_torn_not_an_error() {
        let bytes = entry().encode();
        for len in 0..bytes.len() {
            assert!(
                matches!(AnchorEntry::decode(&bytes[..len]), Ok(None)),
                "len {len}"
            );
        }
    }

    #[test]
    fn header_round_trips_and_rejects_flips() {
        let h = encode_anchor_header(&[9; 16]);
        assert_eq!(decode_anchor_header(&h).unwrap(), [9; 16]);
        for bit in 0..h.len() * 8 {
            let mut b = h;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_anchor_header(&b).is_err(), "bit {bit}");
        }
    }
}
