//! The segment header (format-spec.md, "Segment header").

use super::chain::{genesis_hash, ChainPos};
use super::hash::{Hash, HASH_LEN};
use super::{le_u16, le_u32, le_u64};
use crate::error::Corruption;

/// `0x89` keeps text tools from taking a segment for text; the rest names us.
pub const SEGMENT_MAGIC: [u8; 8] = *b"\x89WORMLOG";
/// Bumped whenever old files would read differently (format-spec.md, "Version
/// history"). A writer starts every new segment at this version; a reader
/// reads every version from 1 up to it.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest version a reader still reads.
pub const FORMAT_VERSION_MIN: u16 = 1;

// Field offsets, each derived from the one before and its size (the table in
// format-spec.md, "Segment header"); every encoder, decoder and error offset
// uses these names.
const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + SEGMENT_MAGIC.len();
const HEADER_LEN_AT: usize = VERSION_AT + 2;
const FLAGS_AT: usize = HEADER_LEN_AT + 2;
/// Offset of `log_id` in the segment header.
pub const LOG_ID_AT: usize = FLAGS_AT + 4;
/// Offset of the segment number in the segment header.
pub const SEGMENT_AT: usize = LOG_ID_AT + 16;
/// Offset of `first_seq` in the segment header.
pub const FIRST_SEQ_AT: usize = SEGMENT_AT + 8;
/// Offset of `created_ns` in the segment header.
pub const CREATED_AT: usize = FIRST_SEQ_AT + 8;
/// Offset of `prev_hash` in the segment header.
pub const PREV_HASH_AT: usize = CREATED_AT + 8;
const RESERVED_AT: usize = PREV_HASH_AT + HASH_LEN;
const CRC_AT: usize = RESERVED_AT + 4;
/// Length of the segment header in bytes (96); the first frame follows it.
pub const SEGMENT_HEADER_LEN: usize = CRC_AT + 4;
const _: () = assert!(SEGMENT_HEADER_LEN == 96);

/// The fixed header at offset 0 of every segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The format version the segment was written in: which record kinds
    /// it may hold (format-spec.md, 4.1).
    pub version: u16,
    /// The log's random id, the same in every segment of the log.
    pub log_id: [u8; 16],
    /// This segment's number (from 1); equals the number in the file name.
    pub segment: u64,
    /// Seq of the first record this segment holds (or will hold).
    pub first_seq: u64,
    /// Commit-clock time when the segment was created; no record in it is earlier.
    pub created_ns: u64,
    /// Chain hash of record `first_seq - 1` (the genesis hash for the first segment).
    pub prev_hash: Hash,
}

impl SegmentHeader {
    /// The header of a new log's first segment.
    pub fn first(log_id: [u8; 16], created_ns: u64) -> SegmentHeader {
        SegmentHeader {
            version: FORMAT_VERSION,
            log_id,
            segment: 1,
            first_seq: 1,
            created_ns,
            prev_hash: genesis_hash(&log_id),
        }
    }

    /// The header of the segment after this one, whose chain continues from
    /// `last` (this segment's last record), created at `created_ns`.
    pub fn successor(&self, last: ChainPos, created_ns: u64) -> SegmentHeader {
        debug_assert!(created_ns >= last.timestamp_ns, "time never goes backward");
        SegmentHeader {
            version: FORMAT_VERSION,
            log_id: self.log_id,
            segment: self.segment + 1,
            first_seq: last.next_seq(),
            created_ns,
            prev_hash: last.hash,
        }
    }

    /// The chain position this segment's first record continues from.
    pub fn start(&self) -> ChainPos {
        ChainPos {
            seq: self.first_seq - 1,
            hash: self.prev_hash,
            timestamp_ns: self.created_ns,
        }
    }

    /// The header's 96 bytes, CRC included.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[MAGIC_AT..VERSION_AT].copy_from_slice(&SEGMENT_MAGIC);
        b[VERSION_AT..HEADER_LEN_AT].copy_from_slice(&self.version.to_le_bytes());
        b[HEADER_LEN_AT..FLAGS_AT].copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        // Flags: zero in version 1.
        b[LOG_ID_AT..SEGMENT_AT].copy_from_slice(&self.log_id);
        b[SEGMENT_AT..FIRST_SEQ_AT].copy_from_slice(&self.segment.to_le_bytes());
        b[FIRST_SEQ_AT..CREATED_AT].copy_from_slice(&self.first_seq.to_le_bytes());
        b[CREATED_AT..PREV_HASH_AT].copy_from_slice(&self.created_ns.to_le_bytes());
        b[PREV_HASH_AT..RESERVED_AT].copy_from_slice(self.prev_hash.as_bytes());
        // Reserved: zero.
        let crc = crc32fast::hash(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates a header. `buf` may be shorter than a header
    /// (a truncated file); that is an error, not a panic.
    pub fn decode(buf: &[u8]) -> Result<Self, Corruption> {
        if buf.len() >= SEGMENT_MAGIC.len() && buf[MAGIC_AT..VERSION_AT] != SEGMENT_MAGIC {
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
        let version = le_u16(buf, VERSION_AT);
        if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
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
        let header_len = le_u16(buf, HEADER_LEN_AT);
        if usize::from(header_len) != SEGMENT_HEADER_LEN {
            return Err(field("header_len", format!("{header_len}, must be 96")));
        }
        let flags = le_u32(buf, FLAGS_AT);
        if flags != 0 {
            return Err(field("flags", format!("{flags:#x}, must be 0")));
        }
        if le_u32(buf, RESERVED_AT) != 0 {
            return Err(field("reserved", "must be 0".into()));
        }
        let first_seq = le_u64(buf, FIRST_SEQ_AT);
        if first_seq == 0 {
            return Err(field("first_seq", "0, sequence numbers start at 1".into()));
        }
        let mut log_id = [0u8; 16];
        log_id.copy_from_slice(&buf[LOG_ID_AT..SEGMENT_AT]);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&buf[PREV_HASH_AT..RESERVED_AT]);
        Ok(SegmentHeader {
            version,
            log_id,
            segment: le_u64(buf, SEGMENT_AT),
            first_seq,
            created_ns: le_u64(buf, CREATED_AT),
            prev_hash: Hash::from_bytes(prev_hash),
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
            version: FORMAT_VERSION,
            log_id: [3; 16],
            segment: 9,
            first_seq: 77,
            created_ns: 1_700_000_000_000_000_000,
            prev_hash: Hash::from_bytes([0xab; 32]),
        }
    }

    #[test]
    fn header_round_trips() {
        let h = sample();
        assert_eq!(SegmentHeader::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn a_version_1_header_reads_back_as_version_1_byte_for_byte() {
        let h = SegmentHeader {
            version: 1,
            ..sample()
        };
        let bytes = h.encode();
        assert_eq!(&bytes[VERSION_AT..HEADER_LEN_AT], &[1, 0]);
        assert_eq!(SegmentHeader::decode(&bytes).unwrap(), h);
    }

    #[test]
    fn an_unknown_version_is_refused() {
        for v in [0u16, FORMAT_VERSION + 1, u16::MAX] {
            let mut bytes = SegmentHeader {
                version: v,
                ..sample()
            }
            .encode();
            bytes[VERSION_AT..HEADER_LEN_AT].copy_from_slice(&v.to_le_bytes());
            assert!(matches!(
                SegmentHeader::decode(&bytes),
                Err(Corruption::UnsupportedVersion { .. })
            ));
        }
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
