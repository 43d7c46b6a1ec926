//! The segment header (format-spec.md, "Segment header").

use super::chain::Hash;
use super::{le_u16, le_u32, le_u64};
use crate::error::Corruption;

/// `0x89` keeps text tools from taking a segment for text; the rest names us.
pub const SEGMENT_MAGIC: [u8; 8] = *b"\x89WORMLOG";
/// Bumped whenever old files would read differently (format-spec.md, "Version history").
pub const FORMAT_VERSION: u16 = 1;
pub const SEGMENT_HEADER_LEN: usize = 96;
const CRC_AT: usize = 92;
const _: () = assert!(CRC_AT + 4 == SEGMENT_HEADER_LEN);

/// The fixed header at offset 0 of every segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub log_id: [u8; 16],
    pub segment: u64,
    /// Seq of the first record this segment holds (or will hold).
    pub first_seq: u64,
    /// Commit-clock time when the segment was created; no record in it is earlier.
    pub created_ns: u64,
    /// Chain hash of record `first_seq - 1` (the genesis hash for the first segment).
    pub prev_hash: Hash,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        // 12..16 flags: zero in version 1.
        b[16..32].copy_from_slice(&self.log_id);
        b[32..40].copy_from_slice(&self.segment.to_le_bytes());
        b[40..48].copy_from_slice(&self.first_seq.to_le_bytes());
        b[48..56].copy_from_slice(&self.created_ns.to_le_bytes());
        b[56..88].copy_from_slice(&self.prev_hash);
        // 88..92 reserved: zero.
        let crc = crc32fast::hash(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates a header. `buf` may be shorter than a header
    /// (a truncated file); that is an error, not a panic.
    pub fn decode(buf: &[u8]) -> Result<Self, Corruption> {
        if buf.len() >= SEGMENT_MAGIC.len() && buf[..8] != SEGMENT_MAGIC {
            return Err(Corruption::BadMagic);
        }
        if buf.len() < SEGMENT_HEADER_LEN {
            if buf.len() < 8 && !SEGMENT_MAGIC.starts_with(buf) {
                return Err(Corruption::BadMagic);
            }
            return Err(Corruption::HeaderTruncated {
                len: buf.len() as u64,
                needed: SEGMENT_HEADER_LEN as u64,
            });
        }
        let version = le_u16(buf, 8);
        if version != FORMAT_VERSION {
            return Err(Corruption::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored = le_u32(buf, CRC_AT);
        let computed = crc32fast::hash(&buf[..CRC_AT]);
        if stored != computed {
            return Err(Corruption::HeaderCrc { stored, computed });
        }
        let header_len = le_u16(buf, 10);
        if usize::from(header_len) != SEGMENT_HEADER_LEN {
            return Err(field("header_len", format!("{header_len}, must be 96")));
        }
        let flags = le_u32(buf, 12);
        if flags != 0 {
            return Err(field("flags", format!("{flags:#x}, must be 0")));
        }
        if le_u32(buf, 88) != 0 {
            return Err(field("reserved", "must be 0".into()));
        }
        let first_seq = le_u64(buf, 40);
        if first_seq == 0 {
            return Err(field("first_seq", "0, sequence numbers start at 1".into()));
        }
        let mut log_id = [0u8; 16];
        log_id.copy_from_slice(&buf[16..32]);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&buf[56..88]);
        Ok(SegmentHeader {
            log_id,
            segment: le_u64(buf, 32),
            first_seq,
            created_ns: le_u64(buf, 48),
            prev_hash,
        })
    }
}

fn field(field: &'static str, detail: String) -> Corruption {
    Corruption::HeaderField { field, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentHeader {
        SegmentHeader {
            log_id: [3; 16],
            segment: 9,
            first_seq: 77,
            created_ns: 1_700_000_000_000_000_000,
            prev_hash: [0xab; 32],
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(SegmentHeader::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn every_single_bit_flip_in_header_is_rejected() {
        let bytes = sample().encode();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&b).is_err(), "bit {bit} passed");
        }
    }

    #[test]
    fn every_truncation_of_header_is_rejected() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(SegmentHeader::decode(&bytes[..len]).is_err(), "len {len}");
        }
    }
}
