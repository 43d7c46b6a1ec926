//! Pure encodings of the on-disk structures: bytes to structs and back, no I/O.
//! format-spec.md is the source of truth; each constant names its section there.
//!
//! **Unstable.** Public for tools that read the files themselves (wormctl,
//! the fuzz targets, third-party readers checking their work against ours)
//! and for tests; it follows the format, not semver. The stable API is the
//! crate root: `Log`, `Options`, the record, report and proof types, and
//! `hex`/`unhex` here, which stay.

mod anchor;
mod chain;
pub mod control;
mod durability;
mod frame;
mod fss;
mod hash;
mod header;
pub mod merkle;
pub mod names;
mod sealed;
mod system;
pub mod tree_state;

pub use anchor::{
    anchor_genesis, decode_anchor_header, encode_anchor_header, AnchorEntry, AnchorExt,
    DroppedSegment, RecordedTag, SealingState, ANCHOR_HEADER_LEN, ANCHOR_LOG_ID_AT, ANCHOR_MAGIC,
};
pub use chain::{chain_hash, genesis_hash, ChainPos};
pub use durability::Durability;
pub use frame::{
    decode_frame, encode_frame, frame_extent, frame_padded_len, Decoded, FrameRef, RecordKind,
    FRAME_ALIGN, FRAME_HEADER_LEN, FRAME_OVERHEAD, PAYLOAD_LEN_MAX,
};
pub(crate) use frame::{FrameDecoder, FrameHead};
pub use fss::{
    epoch_of, epoch_tag, epoch_tag_for, epoch_tag_v3, evolve_key, key_at, key_id, FssKey,
    FssKeyFile, TagFacts, VerificationKey, FSS_KEY_FILE_LEN, FSS_KEY_MAGIC,
};
pub use hash::{Hash, ParseHashError, HASH_LEN};
pub use header::{
    SegmentHeader, CREATED_AT, FIRST_SEQ_AT, FORMAT_VERSION, FORMAT_VERSION_MIN, LOG_ID_AT,
    PREV_HASH_AT, SEGMENT_AT, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};
pub use sealed::{
    decode_seek_table, encode_seek_table, seek_table_len, IndexPoint, SealedIndex, SeekEntry,
    INDEX_FRAME_MAGIC, INDEX_POINT_INTERVAL, SEALED_FRAME_BYTES_MAX, SEEKABLE_MAGIC,
    SEEK_FOOTER_LEN, SEEK_TABLE_MAGIC, ZSTD_FRAME_MAGIC,
};
pub use system::{PreviousEra, RetentionRule, SystemEvent};

/// Formats a hash (or any bytes) as lowercase hex.
pub fn hex(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    // By table, not `write!("{:02x}")`: dumps print one hash per record.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses hex (either case) back into bytes; `None` for an odd length or
/// a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(super::hex([0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(super::hex([]), "");
    }
}
