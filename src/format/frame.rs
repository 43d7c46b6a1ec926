//! The record frame (format-spec.md, "Record frame").

use super::chain::{Hash, HASH_LEN};
use super::{le_u32, le_u64};
use crate::error::Corruption;

pub const FRAME_HEADER_LEN: usize = 40;
/// Bytes of a frame besides its payload: the 40-byte header and the 32-byte hash.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + HASH_LEN;
/// Frames start at multiples of 8 bytes, so a scan for the next intact frame
/// after damage tries one offset in eight.
pub const FRAME_ALIGN: usize = 8;
/// The format's own payload limit, whatever `Options` say: a reader never
/// allocates more than this for one frame.
pub const PAYLOAD_LEN_MAX: usize = 256 << 20;
const _: () = assert!(FRAME_OVERHEAD == 72);
// The first frame follows the header, so the header keeps frames aligned.
const _: () = assert!(super::SEGMENT_HEADER_LEN.is_multiple_of(FRAME_ALIGN));

/// What a record is. Values are part of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum RecordKind {
    /// A caller's record.
    User = 0x00,
    /// First record of a new log.
    LogCreated = 0x01,
    /// The engine opened the log for writing (after any recovery).
    LogOpened = 0x02,
    /// Recovery cut a torn tail.
    TailCut = 0x03,
    /// The engine started a new segment.
    SegmentRolled = 0x04,
    /// Recovery moved a damaged segment aside (`Options::repair`).
    Repaired = 0x05,
    /// The log was closed cleanly.
    LogClosed = 0x06,
    /// Last record of a segment that is complete and will be sealed.
    Sealed = 0x07,
    /// Retention dropped whole segments (after recording them in the anchor file).
    RetentionApplied = 0x08,
    /// A legal hold was set: retention drops nothing until it is cleared.
    LegalHoldSet = 0x09,
    LegalHoldCleared = 0x0A,
    /// Format 2: the hold and retention policy in force, second record of
    /// every segment.
    LogState = 0x0B,
    /// Format 2: the retention policy was set or changed.
    RetentionPolicySet = 0x0C,
    /// Format 2: the wall clock jumped forward past the bound.
    ClockJumped = 0x0D,
    /// Format 2: forward-secure sealing begins, under a verification key.
    SealingStarted = 0x0E,
    /// Format 2: a forward-secure tag seals every record before it.
    EpochTag = 0x0F,
}

impl RecordKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x00 => RecordKind::User,
            0x01 => RecordKind::LogCreated,
            0x02 => RecordKind::LogOpened,
            0x03 => RecordKind::TailCut,
            0x04 => RecordKind::SegmentRolled,
            0x05 => RecordKind::Repaired,
            0x06 => RecordKind::LogClosed,
            0x07 => RecordKind::Sealed,
            0x08 => RecordKind::RetentionApplied,
            0x09 => RecordKind::LegalHoldSet,
            0x0A => RecordKind::LegalHoldCleared,
            0x0B => RecordKind::LogState,
            0x0C => RecordKind::RetentionPolicySet,
            0x0D => RecordKind::ClockJumped,
            0x0E => RecordKind::SealingStarted,
            0x0F => RecordKind::EpochTag,
            _ => return None,
        })
    }

    /// The first format version whose segments may hold this kind.
    pub fn since_version(self) -> u16 {
        match self {
            RecordKind::LogState
            | RecordKind::RetentionPolicySet
            | RecordKind::ClockJumped
            | RecordKind::SealingStarted
            | RecordKind::EpochTag => 2,
            _ => 1,
        }
    }

    pub fn is_system(self) -> bool {
        self != RecordKind::User
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordKind::User => "user",
            RecordKind::LogCreated => "log-created",
            RecordKind::LogOpened => "log-opened",
            RecordKind::TailCut => "tail-cut",
            RecordKind::SegmentRolled => "segment-rolled",
            RecordKind::Repaired => "repaired",
            RecordKind::LogClosed => "log-closed",
            RecordKind::Sealed => "sealed",
            RecordKind::RetentionApplied => "retention-applied",
            RecordKind::LegalHoldSet => "legal-hold-set",
            RecordKind::LegalHoldCleared => "legal-hold-cleared",
            RecordKind::LogState => "log-state",
            RecordKind::RetentionPolicySet => "retention-policy-set",
            RecordKind::ClockJumped => "clock-jumped",
            RecordKind::SealingStarted => "sealing-started",
            RecordKind::EpochTag => "epoch-tag",
        }
    }
}

/// Bytes a frame occupies on disk, padding included.
pub fn frame_padded_len(payload_len: usize) -> usize {
    (FRAME_OVERHEAD + payload_len).next_multiple_of(FRAME_ALIGN)
}

/// Appends one frame to `out`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    seq: u64,
    timestamp_ns: u64,
    synced_through: u64,
    kind: RecordKind,
    payload: &[u8],
    hash: &Hash,
) {
    debug_assert!(payload.len() <= PAYLOAD_LEN_MAX);
    let start = out.len();
    let frame_len = FRAME_OVERHEAD + payload.len();
    let padded = frame_padded_len(payload.len());
    out.extend_from_slice(&(frame_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // CRC, filled below
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&timestamp_ns.to_le_bytes());
    out.extend_from_slice(&synced_through.to_le_bytes());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(hash);
    out.resize(start + padded, 0);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded frame borrowing its payload from the buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub synced_through: u64,
    pub kind: RecordKind,
    pub payload: &'a [u8],
    pub hash: Hash,
    pub crc: u32,
    /// Unpadded frame length as stored.
    pub frame_len: u32,
    /// Bytes the frame occupies, padding included.
    pub padded_len: usize,
    /// The frame's bytes as stored, padding included.
    pub raw: &'a [u8],
}

/// Bytes the frame at the start of `buf` occupies, judged by its length
/// field alone (at least `FRAME_OVERHEAD` while fewer than 4 bytes are
/// there); `None` when the length is out of range.
pub fn frame_extent(buf: &[u8]) -> Option<usize> {
    if buf.len() < 4 {
        return Some(FRAME_OVERHEAD);
    }
    let len = le_u32(buf, 0) as usize;
    (FRAME_OVERHEAD..=FRAME_OVERHEAD + PAYLOAD_LEN_MAX)
        .contains(&len)
        .then(|| frame_padded_len(len - FRAME_OVERHEAD))
}

/// Outcome of decoding a frame at the start of a buffer.
#[derive(Debug)]
pub enum Decoded<'a> {
    Frame(FrameRef<'a>),
    /// The buffer is shorter than the frame: this many bytes (from the frame's
    /// start) are needed. Never more than `frame_padded_len(PAYLOAD_LEN_MAX)`.
    NeedMore(usize),
    Invalid(Corruption),
}

/// Decodes the frame at the start of `buf`, checking its length, CRC and
/// fixed fields (not its seq or chain hash: that needs the previous record).
pub fn decode_frame(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < 4 {
        return Decoded::NeedMore(FRAME_OVERHEAD);
    }
    let frame_len = le_u32(buf, 0);
    let len = frame_len as usize;
    if !(FRAME_OVERHEAD..=FRAME_OVERHEAD + PAYLOAD_LEN_MAX).contains(&len) {
        return Decoded::Invalid(Corruption::FrameLength {
            len: u64::from(frame_len),
            min: FRAME_OVERHEAD as u64,
            max: (FRAME_OVERHEAD + PAYLOAD_LEN_MAX) as u64,
        });
    }
    let payload_len = len - FRAME_OVERHEAD;
    let padded = frame_padded_len(payload_len);
    if buf.len() < padded {
        return Decoded::NeedMore(padded);
    }
    let stored = le_u32(buf, 4);
    let computed = crc32fast::hash(&buf[8..padded]);
    if stored != computed {
        return Decoded::Invalid(Corruption::FrameCrc { stored, computed });
    }
    // The CRC passed, so the remaining checks catch frames written by a
    // faulty or hostile writer, not damage.
    let field = |field, detail: String| Decoded::Invalid(Corruption::FrameField { field, detail });
    let Some(kind) = RecordKind::from_u8(buf[32]) else {
        return Decoded::Invalid(Corruption::UnknownKind { kind: buf[32] });
    };
    if buf[33] != 0 {
        return field("flags", format!("{:#04x}, must be 0", buf[33]));
    }
    if buf[34] != 0 || buf[35] != 0 {
        return field("reserved", "must be 0".into());
    }
    let stored_payload_len = le_u32(buf, 36) as usize;
    if stored_payload_len != payload_len {
        return field(
            "payload_len",
            format!("{stored_payload_len}, frame_len says {payload_len}"),
        );
    }
    let hash_at = FRAME_HEADER_LEN + payload_len;
    if buf[hash_at + HASH_LEN..padded].iter().any(|&b| b != 0) {
        return field("padding", "must be zero".into());
    }
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(&buf[hash_at..hash_at + HASH_LEN]);
    Decoded::Frame(FrameRef {
        seq: le_u64(buf, 8),
        timestamp_ns: le_u64(buf, 16),
        synced_through: le_u64(buf, 24),
        kind,
        payload: &buf[FRAME_HEADER_LEN..hash_at],
        hash,
        crc: stored,
        frame_len,
        padded_len: padded,
        raw: &buf[..padded],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, 42, 1000, 96, RecordKind::User, payload, &[9; 32]);
        out
    }

    #[test]
    fn frame_round_trips_for_every_padding() {
        for n in 0..20 {
            let payload: Vec<u8> = (0..n as u8).collect();
            let bytes = one(&payload);
            assert_eq!(bytes.len() % FRAME_ALIGN, 0);
            let Decoded::Frame(f) = decode_frame(&bytes) else {
                panic!("payload {n} did not decode")
            };
            assert_eq!((f.seq, f.timestamp_ns, f.synced_through), (42, 1000, 96));
            assert_eq!(f.payload, &payload[..]);
            assert_eq!(f.hash, [9; 32]);
            assert_eq!(f.padded_len, bytes.len());
        }
    }

    #[test]
    fn every_single_bit_flip_in_frame_is_rejected() {
        let bytes = one(b"hello, auditor");
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode_frame(&b), Decoded::Frame(_)),
                "bit {bit} passed"
            );
        }
    }

    #[test]
    fn every_truncation_asks_for_more() {
        let bytes = one(b"abc");
        for len in 0..bytes.len() {
            assert!(
                matches!(decode_frame(&bytes[..len]), Decoded::NeedMore(n) if n > len),
                "len {len}"
            );
        }
    }

    #[test]
    fn zero_filled_tail_is_invalid_not_a_frame() {
        assert!(matches!(
            decode_frame(&[0u8; 128]),
            Decoded::Invalid(Corruption::FrameLength { len: 0, .. })
        ));
    }

    #[test]
    fn huge_claimed_length_is_invalid_before_any_allocation() {
        let mut b = one(b"x");
        b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&b),
            Decoded::Invalid(Corruption::FrameLength { .. })
        ));
    }
}
