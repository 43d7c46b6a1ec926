//! The record frame (format-spec.md, "Record frame").

use super::chain::chain_hasher;
use super::hash::{Hash, HASH_LEN};
use super::{le_u32, le_u64};
use crate::error::Corruption;

/// Bytes of a frame before its payload: length, CRC, seq, time,
/// `synced_through`, kind, flags, reserved and payload length.
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
    /// The legal hold was cleared.
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
    /// Format 2: someone read or exported the log (who, what, why).
    Accessed = 0x10,
    /// Format 3: a witness refused a checkpoint of this log because it has
    /// seen another history of it (format-spec.md 18.4).
    WitnessConflict = 0x11,
}

impl RecordKind {
    /// The kind with this byte value; `None` for a value no format version
    /// defines. Whether the segment's version allows it is
    /// [`since_version`](Self::since_version)'s question.
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
            0x10 => RecordKind::Accessed,
            0x11 => RecordKind::WitnessConflict,
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
            | RecordKind::EpochTag
            | RecordKind::Accessed => 2,
            RecordKind::WitnessConflict => 3,
            _ => 1,
        }
    }

    /// Whether this is one of the engine's own records (any kind but
    /// [`User`](Self::User)).
    pub fn is_system(self) -> bool {
        self != RecordKind::User
    }

    /// The kind's name as format-spec.md, section 4.1, writes it
    /// (`log-opened`, `epoch-tag`, ...).
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
            RecordKind::Accessed => "accessed",
            RecordKind::WitnessConflict => "witness-conflict",
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
    out.extend_from_slice(hash.as_bytes());
    out.resize(start + padded, 0);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded frame borrowing its payload from the buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// The record's sequence number.
    pub seq: u64,
    /// Commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// The segment length an fdatasync had covered when the frame was
    /// written; used only by recovery, not hashed.
    pub synced_through: u64,
    /// The record's kind.
    pub kind: RecordKind,
    /// The record's payload.
    pub payload: &'a [u8],
    /// The stored chain hash (not yet checked against the record before).
    pub hash: Hash,
    /// The stored frame CRC-32, which matched the bytes.
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
    /// An intact frame.
    Frame(FrameRef<'a>),
    /// The buffer is shorter than the frame: this many bytes (from the frame's
    /// start) are needed. Never more than `frame_padded_len(PAYLOAD_LEN_MAX)`.
    NeedMore(usize),
    /// The bytes are not an intact frame: a bad length, CRC or field.
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
    let hash_at = FRAME_HEADER_LEN + payload_len;
    let padding_zero = buf[hash_at + HASH_LEN..padded].iter().all(|&b| b == 0);
    let kind = match check_fields(buf, payload_len, padding_zero) {
        Ok(kind) => kind,
        Err(what) => return Decoded::Invalid(what),
    };
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(&buf[hash_at..hash_at + HASH_LEN]);
    Decoded::Frame(FrameRef {
        seq: le_u64(buf, 8),
        timestamp_ns: le_u64(buf, 16),
        synced_through: le_u64(buf, 24),
        kind,
        payload: &buf[FRAME_HEADER_LEN..hash_at],
        hash: Hash::from_bytes(hash),
        crc: stored,
        frame_len,
        padded_len: padded,
        raw: &buf[..padded],
    })
}

/// The checks of a frame whose CRC passed, on its header `h`: they catch
/// frames written by a faulty or hostile writer, not damage.
fn check_fields(
    h: &[u8],
    payload_len: usize,
    padding_zero: bool,
) -> Result<RecordKind, Corruption> {
    let field = |field, detail: String| Err(Corruption::FrameField { field, detail });
    let Some(kind) = RecordKind::from_u8(h[32]) else {
        return Err(Corruption::UnknownKind { kind: h[32] });
    };
    if h[33] != 0 {
        return field("flags", format!("{:#04x}, must be 0", h[33]));
    }
    if h[34] != 0 || h[35] != 0 {
        return field("reserved", "must be 0".into());
    }
    let stored_payload_len = le_u32(h, 36) as usize;
    if stored_payload_len != payload_len {
        return field(
            "payload_len",
            format!("{stored_payload_len}, frame_len says {payload_len}"),
        );
    }
    if !padding_zero {
        return field("padding", "must be zero".into());
    }
    Ok(kind)
}

/// What a decoded frame is besides its bytes: its fixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHead {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub synced_through: u64,
    pub kind: RecordKind,
    pub hash: Hash,
    pub crc: u32,
    pub frame_len: u32,
    pub padded_len: usize,
}

impl FrameRef<'_> {
    pub(crate) fn head(&self) -> FrameHead {
        FrameHead {
            seq: self.seq,
            timestamp_ns: self.timestamp_ns,
            synced_through: self.synced_through,
            kind: self.kind,
            hash: self.hash,
            crc: self.crc,
            frame_len: self.frame_len,
            padded_len: self.padded_len,
        }
    }
}

/// Decodes a frame fed to it in pieces, holding none of them, for frames
/// too large to hold: the CRC-32 and (when asked) the chain hash are
/// computed as the bytes pass. Its checks, their order and their errors are
/// those of [`decode_frame`], which decodes a frame it holds whole.
pub(crate) struct FrameDecoder {
    header: [u8; FRAME_HEADER_LEN],
    payload_len: usize,
    padded: usize,
    /// Bytes of the frame taken in so far.
    at: usize,
    crc: crc32fast::Hasher,
    chain: Option<blake3::Hasher>,
    /// The stored hash as its bytes arrive.
    hash: [u8; HASH_LEN],
    padding_zero: bool,
}

impl FrameDecoder {
    /// Starts on the frame whose first bytes (at least `FRAME_HEADER_LEN`)
    /// begin `buf`, taking in its header; `None` when its length is out of
    /// range (which [`decode_frame`] reports from the first four bytes).
    /// With `chain_from`, the payload is hashed as section 5 says, keyed
    /// with the previous record's hash.
    pub fn new(buf: &[u8], chain_from: Option<&Hash>) -> Option<FrameDecoder> {
        let h = buf.get(..FRAME_HEADER_LEN)?;
        let padded = frame_extent(h)?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(h);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header[8..]);
        let chain = chain_from.map(|prev| chain_hasher(prev, le_u64(h, 8), le_u64(h, 16), h[32]));
        Some(FrameDecoder {
            header,
            payload_len: le_u32(h, 0) as usize - FRAME_OVERHEAD,
            padded,
            at: FRAME_HEADER_LEN,
            crc,
            chain,
            hash: [0; HASH_LEN],
            padding_zero: true,
        })
    }

    /// Bytes of the frame not taken in yet.
    pub fn remaining(&self) -> usize {
        self.padded - self.at
    }

    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// Takes in the frame's next bytes (at most `remaining()`); returns
    /// the part of them that is payload.
    pub fn update<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        debug_assert!(bytes.len() <= self.remaining());
        self.crc.update(bytes);
        let (start, end) = (self.at, self.at + bytes.len());
        self.at = end;
        // Where the payload, the hash and the padding lie in `bytes`.
        let part = |from: usize, to: usize| {
            let (a, b) = (from.clamp(start, end), to.clamp(start, end));
            &bytes[a - start..b - start]
        };
        let hash_at = FRAME_HEADER_LEN + self.payload_len;
        let payload = part(FRAME_HEADER_LEN, hash_at);
        if let Some(chain) = &mut self.chain {
            chain.update(payload);
        }
        let hash = part(hash_at, hash_at + HASH_LEN);
        if !hash.is_empty() {
            let from = start.max(hash_at) - hash_at;
            self.hash[from..from + hash.len()].copy_from_slice(hash);
        }
        if part(hash_at + HASH_LEN, self.padded)
            .iter()
            .any(|&b| b != 0)
        {
            self.padding_zero = false;
        }
        payload
    }

    /// Once every byte was taken in: the frame's fields and, when asked
    /// for, the chain hash its payload computes; or what [`decode_frame`]
    /// says of the same bytes.
    pub fn finish(self) -> Result<(FrameHead, Option<Hash>), Corruption> {
        debug_assert_eq!(self.remaining(), 0, "the whole frame was taken in");
        let h = &self.header;
        let stored = le_u32(h, 4);
        let computed = self.crc.finalize();
        if stored != computed {
            return Err(Corruption::FrameCrc { stored, computed });
        }
        let kind = check_fields(h, self.payload_len, self.padding_zero)?;
        let head = FrameHead {
            seq: le_u64(h, 8),
            timestamp_ns: le_u64(h, 16),
            synced_through: le_u64(h, 24),
            kind,
            hash: Hash::from_bytes(self.hash),
            crc: stored,
            frame_len: le_u32(h, 0),
            padded_len: self.padded,
        };
        Ok((head, self.chain.map(|c| c.finalize().into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::chain_hash;

    fn one(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            42,
            1000,
            96,
            RecordKind::User,
            payload,
            &Hash::from_bytes([9; 32]),
        );
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

    /// What the incremental decoder says of `bytes` fed `piece` at a time,
    /// in the terms of `decode_frame`.
    fn streamed(
        bytes: &[u8],
        piece: usize,
        prev: &Hash,
    ) -> Result<(FrameHead, Hash, Vec<u8>), Corruption> {
        let mut d = FrameDecoder::new(bytes, Some(prev)).expect("length in range");
        let mut payload = Vec::new();
        let mut at = FRAME_HEADER_LEN;
        while d.remaining() > 0 {
            let n = piece.min(d.remaining());
            payload.extend_from_slice(d.update(&bytes[at..at + n]));
            at += n;
        }
        let (head, chain) = d.finish()?;
        Ok((head, chain.expect("asked for"), payload))
    }

    #[test]
    fn the_incremental_decoder_agrees_with_decode_frame() {
        let prev = Hash::from_bytes([3u8; 32]);
        for n in [0usize, 1, 7, 8, 100, 3000] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut bytes = Vec::new();
            let hash = chain_hash(&prev, 42, 1000, 0, &payload);
            encode_frame(&mut bytes, 42, 1000, 96, RecordKind::User, &payload, &hash);
            let mut flips = vec![None];
            flips.extend((0..bytes.len() * 8).step_by(5).map(Some));
            for flip in flips {
                let mut b = bytes.clone();
                if let Some(bit) = flip {
                    b[bit / 8] ^= 1 << (bit % 8);
                }
                if frame_extent(&b) != Some(b.len()) {
                    continue; // a length the walker would not stream
                }
                let whole = match decode_frame(&b) {
                    Decoded::Frame(f) => Ok((
                        f.head(),
                        chain_hash(&prev, f.seq, f.timestamp_ns, f.kind as u8, f.payload),
                        f.payload.to_vec(),
                    )),
                    Decoded::Invalid(what) => Err(what),
                    Decoded::NeedMore(_) => unreachable!(),
                };
                for piece in [1, 5, 64, 1 << 20] {
                    assert_eq!(
                        streamed(&b, piece, &prev),
                        whole,
                        "payload {n}, flip {flip:?}, pieces of {piece}"
                    );
                }
            }
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
