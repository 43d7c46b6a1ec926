//! The trailer of a sealed segment file (format-spec.md, "Sealed segment
//! file"): wormlog's index frame and the Zstandard seekable-format seek
//! table, both skippable frames that stock zstd tools pass over.
//!
//! Everything here parses untrusted bytes: every count and size is checked
//! against the bytes actually present before anything is allocated.

use super::hash::{Hash, HASH_LEN};
use super::header::{SegmentHeader, SEGMENT_HEADER_LEN};
use super::{le_u16, le_u32, le_u64};
use crate::error::Corruption;

/// Skippable-frame magic of the seek table (zstd seekable format).
pub const SEEK_TABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic at the very end of a seekable file.
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// First four bytes of every zstd frame, so of every sealed file.
pub const ZSTD_FRAME_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Skippable-frame magic of wormlog's index frame.
pub const INDEX_FRAME_MAGIC: u32 = 0x184D_2A57;
/// First bytes of the index frame's content.
pub const INDEX_MAGIC: [u8; 4] = *b"WLSX";
pub const INDEX_VERSION: u16 = 1;
/// Footer of the seek table: frame count, descriptor, seekable magic.
pub const SEEK_FOOTER_LEN: usize = 9;
/// The seekable format's limit on frames, which we enforce before allocating.
pub const SEEKABLE_FRAMES_MAX: u32 = 0x0800_0000;
/// A sealed file's index has a point at the first record at or after each
/// this many bytes past the previous point (format-spec.md, 7.2).
pub const INDEX_POINT_INTERVAL: u64 = 64 << 10;
/// The largest decompressed frame a reader accepts: one maximal record plus
/// the segment header, rounded up (256 MiB + 1 MiB).
pub const SEALED_FRAME_BYTES_MAX: u32 = (super::PAYLOAD_LEN_MAX + (1 << 20)) as u32;
const INDEX_FIXED_LEN: usize = 208;
const INDEX_ENTRY_LEN: usize = 24;
const _: () = assert!(INDEX_FIXED_LEN == 8 + SEGMENT_HEADER_LEN + 8 * 4 + 2 * HASH_LEN + 8);

/// One zstd frame of a sealed file, from the seek table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekEntry {
    /// The frame's length in the file, in bytes (never 0).
    pub compressed_size: u32,
    /// The length of its content, in bytes.
    pub decompressed_size: u32,
}

/// Where a record starts in the uncompressed segment, from the index frame.
/// There is one for the first record of every zstd frame and at least one
/// every 64 KiB, so a lookup decompresses one frame and scans a few KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexPoint {
    /// The record's seq.
    pub seq: u64,
    /// Its commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// Offset in the uncompressed segment.
    pub offset: u64,
}

/// What the index frame says of the whole segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedIndex {
    /// A copy of the segment's header.
    pub header: SegmentHeader,
    /// Length of the uncompressed segment.
    pub uncompressed_len: u64,
    /// Records in the segment, the seal record included.
    pub record_count: u64,
    /// Seq of the segment's last record.
    pub last_seq: u64,
    /// Chain hash of the segment's last record.
    pub last_hash: Hash,
    /// Commit time of the segment's last record, ns since the Unix epoch.
    pub last_timestamp_ns: u64,
    /// BLAKE3 of the file's bytes before this frame (the zstd data frames),
    /// so that verification notices any changed byte, even one that would
    /// decompress to the same data.
    pub compressed_digest: Hash,
    /// In increasing order of seq and offset.
    pub points: Vec<IndexPoint>,
}

impl SealedIndex {
    /// The whole skippable frame: magic, size, content.
    pub fn encode(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(INDEX_FIXED_LEN + self.points.len() * INDEX_ENTRY_LEN + 4);
        c.extend_from_slice(&INDEX_MAGIC);
        c.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        c.extend_from_slice(&[0, 0]);
        c.extend_from_slice(&self.header.encode());
        c.extend_from_slice(&self.uncompressed_len.to_le_bytes());
        c.extend_from_slice(&self.record_count.to_le_bytes());
        c.extend_from_slice(&self.last_seq.to_le_bytes());
        c.extend_from_slice(&self.last_timestamp_ns.to_le_bytes());
        c.extend_from_slice(self.last_hash.as_bytes());
        c.extend_from_slice(self.compressed_digest.as_bytes());
        c.extend_from_slice(&(self.points.len() as u32).to_le_bytes());
        c.extend_from_slice(&[0; 4]);
        debug_assert_eq!(c.len(), INDEX_FIXED_LEN);
        for p in &self.points {
            c.extend_from_slice(&p.seq.to_le_bytes());
            c.extend_from_slice(&p.timestamp_ns.to_le_bytes());
            c.extend_from_slice(&p.offset.to_le_bytes());
        }
        let crc = crc32fast::hash(&c);
        c.extend_from_slice(&crc.to_le_bytes());
        let mut out = Vec::with_capacity(c.len() + 8);
        out.extend_from_slice(&INDEX_FRAME_MAGIC.to_le_bytes());
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(&c);
        out
    }

    /// Decodes the whole skippable frame (magic and size included).
    pub fn decode(buf: &[u8]) -> Result<Self, Corruption> {
        let bad = |detail: String| Corruption::SealedTrailer { detail };
        if buf.len() < 8 || le_u32(buf, 0) != INDEX_FRAME_MAGIC {
            return Err(bad("index frame magic missing".into()));
        }
        let size = le_u32(buf, 4) as usize;
        if size != buf.len() - 8 {
            return Err(bad(format!(
                "index frame says {size} bytes, {} present",
                buf.len() - 8
            )));
        }
        let c = &buf[8..];
        if c.len() < INDEX_FIXED_LEN + 4 {
            return Err(bad(format!(
                "index frame of {} bytes is too short",
                c.len()
            )));
        }
        let stored = le_u32(c, c.len() - 4);
        let computed = crc32fast::hash(&c[..c.len() - 4]);
        if stored != computed {
            return Err(bad(format!(
                "index CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        if c[0..4] != INDEX_MAGIC {
            return Err(bad("index magic is not WLSX".into()));
        }
        let version = le_u16(c, 4);
        if version != INDEX_VERSION || le_u16(c, 6) != 0 {
            return Err(bad(format!("unsupported index version {version}")));
        }
        let header = SegmentHeader::decode(&c[8..8 + SEGMENT_HEADER_LEN])?;
        let at = 8 + SEGMENT_HEADER_LEN;
        let count = le_u32(c, at + 96) as usize;
        if le_u32(c, at + 100) != 0 {
            return Err(bad("index reserved field is not zero".into()));
        }
        let entries = &c[at + 104..c.len() - 4];
        if entries.len() != count.saturating_mul(INDEX_ENTRY_LEN) {
            return Err(bad(format!(
                "index claims {count} points but holds {} bytes of entries",
                entries.len()
            )));
        }
        let points: Vec<IndexPoint> = entries
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(|e| IndexPoint {
                seq: le_u64(e, 0),
                timestamp_ns: le_u64(e, 8),
                offset: le_u64(e, 16),
            })
            .collect();
        let ordered = points.windows(2).all(|w| {
            w[0].seq < w[1].seq
                && w[0].offset < w[1].offset
                && w[0].timestamp_ns <= w[1].timestamp_ns
        });
        if !ordered {
            return Err(bad("index points are not in increasing order".into()));
        }
        let mut last_hash = [0u8; HASH_LEN];
        last_hash.copy_from_slice(&c[at + 32..at + 64]);
        let mut compressed_digest = [0u8; HASH_LEN];
        compressed_digest.copy_from_slice(&c[at + 64..at + 96]);
        Ok(SealedIndex {
            compressed_digest: Hash::from_bytes(compressed_digest),
            header,
            uncompressed_len: le_u64(c, at),
            record_count: le_u64(c, at + 8),
            last_seq: le_u64(c, at + 16),
            last_timestamp_ns: le_u64(c, at + 24),
            last_hash: Hash::from_bytes(last_hash),
            points,
        })
    }
}

/// The seek table as a whole skippable frame.
pub fn encode_seek_table(entries: &[SeekEntry]) -> Vec<u8> {
    let size = entries.len() * 8 + SEEK_FOOTER_LEN;
    let mut out = Vec::with_capacity(size + 8);
    out.extend_from_slice(&SEEK_TABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.compressed_size.to_le_bytes());
        out.extend_from_slice(&e.decompressed_size.to_le_bytes());
    }
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.push(0); // descriptor: no checksums
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    out
}

/// Reads the seek table's footer (the last 9 bytes of the file) and returns
/// how many bytes the whole seek-table frame takes at the end of the file,
/// checking the frame count against `file_len` before anything is allocated.
pub fn seek_table_len(footer: &[u8], file_len: u64) -> Result<u64, Corruption> {
    let bad = |detail: String| Corruption::SealedTrailer { detail };
    if footer.len() != SEEK_FOOTER_LEN {
        return Err(bad(format!(
            "file of {file_len} bytes has no seek table footer"
        )));
    }
    if le_u32(footer, 5) != SEEKABLE_MAGIC {
        return Err(bad("seekable magic missing at end of file".into()));
    }
    let descriptor = footer[4];
    if descriptor != 0 {
        return Err(bad(format!(
            "seek table descriptor {descriptor:#04x}, wormlog writes 0"
        )));
    }
    let frames = le_u32(footer, 0);
    if frames == 0 || frames > SEEKABLE_FRAMES_MAX {
        return Err(bad(format!("seek table claims {frames} frames")));
    }
    let len = 8 + u64::from(frames) * 8 + SEEK_FOOTER_LEN as u64;
    if len > file_len {
        return Err(bad(format!(
            "seek table of {frames} frames needs {len} bytes, file has {file_len}"
        )));
    }
    Ok(len)
}

/// Decodes the whole seek-table frame (as sized by [`seek_table_len`]).
pub fn decode_seek_table(buf: &[u8]) -> Result<Vec<SeekEntry>, Corruption> {
    let bad = |detail: String| Corruption::SealedTrailer { detail };
    if buf.len() < 8 + SEEK_FOOTER_LEN || le_u32(buf, 0) != SEEK_TABLE_MAGIC {
        return Err(bad("seek table frame magic missing".into()));
    }
    if le_u32(buf, 4) as usize != buf.len() - 8 {
        return Err(bad(
            "seek table frame size disagrees with its frame count".into()
        ));
    }
    let body = &buf[8..buf.len() - SEEK_FOOTER_LEN];
    if !body.len().is_multiple_of(8) {
        return Err(bad("seek table entries are not 8 bytes each".into()));
    }
    let mut entries = Vec::with_capacity(body.len() / 8);
    for e in body.chunks_exact(8) {
        let entry = SeekEntry {
            compressed_size: le_u32(e, 0),
            decompressed_size: le_u32(e, 4),
        };
        if entry.decompressed_size > SEALED_FRAME_BYTES_MAX || entry.compressed_size == 0 {
            return Err(bad(format!(
                "frame {} claims {} compressed / {} decompressed bytes",
                entries.len(),
                entry.compressed_size,
                entry.decompressed_size
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SealedIndex {
        SealedIndex {
            header: SegmentHeader {
                version: crate::format::FORMAT_VERSION,
                log_id: [1; 16],
                segment: 3,
                first_seq: 10,
                created_ns: 5,
                prev_hash: Hash::from_bytes([2; 32]),
            },
            uncompressed_len: 5000,
            record_count: 20,
            last_seq: 29,
            last_hash: Hash::from_bytes([3; 32]),
            last_timestamp_ns: 99,
            compressed_digest: Hash::from_bytes([4; 32]),
            points: vec![
                IndexPoint {
                    seq: 10,
                    timestamp_ns: 6,
                    offset: 96,
                },
                IndexPoint {
                    seq: 20,
                    timestamp_ns: 50,
                    offset: 4000,
                },
            ],
        }
    }

    #[test]
    fn index_round_trips() {
        let i = index();
        assert_eq!(SealedIndex::decode(&i.encode()).unwrap(), i);
    }

    #[test]
    fn every_bit_flip_or_truncation_of_index_is_rejected() {
        let bytes = index().encode();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SealedIndex::decode(&b).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(SealedIndex::decode(&bytes[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn seek_table_round_trips() {
        let entries = vec![
            SeekEntry {
                compressed_size: 100,
                decompressed_size: 1000,
            },
            SeekEntry {
                compressed_size: 7,
                decompressed_size: 9,
            },
        ];
        let t = encode_seek_table(&entries);
        let len = seek_table_len(&t[t.len() - SEEK_FOOTER_LEN..], 1 << 20).unwrap();
        assert_eq!(len as usize, t.len());
        assert_eq!(decode_seek_table(&t).unwrap(), entries);
    }

    #[test]
    fn hostile_frame_count_is_rejected_before_allocation() {
        let mut footer = [0u8; SEEK_FOOTER_LEN];
        footer[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        footer[5..9].copy_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        assert!(seek_table_len(&footer, 1 << 30).is_err());
        footer[0..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(
            seek_table_len(&footer, 100).is_err(),
            "more frames than the file can hold"
        );
    }

    #[test]
    fn huge_claimed_frame_is_rejected() {
        let t = encode_seek_table(&[SeekEntry {
            compressed_size: 10,
            decompressed_size: u32::MAX,
        }]);
        assert!(decode_seek_table(&t).is_err());
    }
}
