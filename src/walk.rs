//! The one frame walker: reads the frames of a segment's uncompressed bytes
//! one after another and checks each as far as its caller asks. Recovery,
//! verification, sealing, reads, index building and single-file reads all
//! walk frames through it, so a frame is judged the same way everywhere.
//!
//! Checks, each including the one before:
//! - always: the frame decodes (length, CRC, fixed fields; format/frame.rs);
//! - [`Check::Seq`]: its seq continues the walk's position;
//! - [`Check::Chain`]: its time does not go back, its `synced_through` lies
//!   within the file before it, and its chain hash continues the previous
//!   record's.
//!
//! With [`FrameWalker::digest_from`] the walker also feeds every frame's
//! bytes to a segment digest; with [`FrameWalker::checking_seal`] it checks
//! a seal record against the records and bytes before it, and that no
//! record follows it.
//!
//! Memory: a frame is normally buffered whole and decoded in one pass
//! ([`FrameWalker::next`]). A caller that does not need a large user
//! record's payload (verification, recovery's scan, index building) asks
//! with [`FrameWalker::next_checked`], and such a frame streams through the
//! same checks (CRC-32 and the keyed BLAKE3 chain hash are incremental), so
//! the walk holds O(64 KiB) whatever the record size; a reader asks with
//! [`FrameWalker::next_owned`] and holds the payload once. Engine records
//! are always buffered: their payloads are decoded, and a valid one is a
//! few hundred bytes. Sealing uses `next`: it copies the frame's bytes into
//! a zstd frame, which is compressed whole (its content size goes in its
//! header), so it holds the frame anyway.

use crate::error::{Corruption, Error};
use crate::format::{
    chain_hash, decode_frame, frame_extent, hex, ChainPos, Decoded, FrameDecoder, FrameHead,
    FrameRef, Hash, RecordKind, SegmentHeader, SystemEvent, FORMAT_VERSION, FRAME_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use crate::state::Record;
use crate::storage::ReadFile;
use bytes::Bytes;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Bytes the walker reads at first: a point read touches little.
const CHUNK_MIN: usize = 16 << 10;
/// Bytes the walker reads at a time once it is streaming.
const CHUNK_MAX: usize = 256 << 10;
/// A frame longer than what is buffered is read this much at a time, so a
/// hostile length claim in a stream allocates only as its bytes arrive.
const GROW_MAX: usize = 1 << 20;
/// A user record's frame longer than this is streamed through the checks
/// by [`FrameWalker::next_checked`] and [`FrameWalker::next_owned`] rather
/// than buffered whole, so a walk holds O(this) whatever the record size.
/// Audit records are a few hundred bytes: they keep the buffered path,
/// which decodes a frame in one pass over bytes already in memory.
const STREAM_MIN: usize = 64 << 10;
/// Bytes a streamed frame is read at a time.
const STREAM_CHUNK: usize = 64 << 10;

/// A frame the walker checked.
#[derive(Debug)]
pub(crate) enum Walked<'a> {
    /// Decoded from the walker's buffer, bytes and all.
    Whole(FrameRef<'a>),
    /// A large user record's frame, streamed through the checks: its payload
    /// when the walk was asked for it ([`FrameWalker::next_owned`]), else
    /// nothing (it was never held).
    Streamed(FrameHead, Option<Vec<u8>>),
}

impl Walked<'_> {
    pub fn head(&self) -> FrameHead {
        match self {
            Walked::Whole(f) => f.head(),
            Walked::Streamed(h, _) => *h,
        }
    }

    /// The record of segment `segment` this frame at `offset` holds; the
    /// frame must have been walked with its payload.
    pub fn into_record(self, segment: u64, offset: u64) -> Record {
        let (head, payload) = match self {
            Walked::Whole(f) => (f.head(), Bytes::copy_from_slice(f.payload)),
            Walked::Streamed(h, Some(p)) => (h, Bytes::from(p)),
            Walked::Streamed(_, None) => unreachable!("walked without its payload"),
        };
        Record::from_frame(segment, offset, &head, payload)
    }

    /// What an engine record says (`None` for a user record). Engine
    /// records are never streamed, so their payload is always there.
    pub fn system_event(&self) -> Option<Result<SystemEvent, Corruption>> {
        match self {
            Walked::Whole(f) => SystemEvent::decode(f.kind, f.payload),
            Walked::Streamed(h, _) => {
                debug_assert_eq!(h.kind, RecordKind::User, "only user records stream");
                None
            }
        }
    }
}

/// What a walk keeps of a large frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The frame's bytes, buffered whole.
    Bytes,
    /// Nothing: the frame is streamed through the checks.
    Nothing,
    /// The payload alone, collected as the frame streams.
    Payload,
}

/// How much the walker checks of each frame (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Frame,
    Seq,
    Chain,
}

/// Why a walk stopped early.
#[derive(Debug)]
pub(crate) enum WalkError {
    Io(io::Error),
    /// The frame at `offset` failed a check. `certain` when the frame
    /// decoded (its CRC holds) but does not continue the walk: such a frame
    /// was written whole, so it cannot be a torn write.
    Bad {
        offset: u64,
        what: Corruption,
        certain: bool,
    },
}

impl WalkError {
    /// The error for a walk over `path`, where `seq` was expected next.
    pub fn into_error(self, path: &Path, seq: Option<u64>) -> Error {
        match self {
            WalkError::Io(e) => Error::from_read(path, seq, e),
            WalkError::Bad { offset, what, .. } => Error::corrupt(path, offset, seq, what),
        }
    }
}

/// The seal-record state of a walk that checks seals.
struct SealCheck {
    segment: u64,
    /// Offset of the seal record, once one was walked.
    sealed_at: Option<u64>,
}

/// Reads frames from `start` up to `limit` through a bounded buffer: it
/// holds at most one frame plus a chunk (a chunk alone for a streamed
/// frame), and never allocates for a frame that would run past `limit`.
pub(crate) struct FrameWalker {
    file: Arc<dyn ReadFile>,
    buf: Vec<u8>,
    buf_offset: u64,
    pos: usize,
    limit: u64,
    chunk: usize,
    check: Check,
    /// The segment's format version: which record kinds it may hold.
    version: u16,
    /// The last record walked (with `Check::Seq` or `Check::Chain`).
    at: ChainPos,
    /// Records walked.
    records: u64,
    /// Boxed: the digest state is 2 KiB, and walkers are moved about.
    digest: Option<Box<BatchedDigest>>,
    seal: Option<SealCheck>,
}

impl FrameWalker {
    /// A walker that only decodes frames.
    pub fn new(file: Arc<dyn ReadFile>, start: u64, limit: u64) -> Self {
        FrameWalker {
            file,
            buf: Vec::new(),
            buf_offset: start,
            pos: 0,
            limit,
            chunk: CHUNK_MIN,
            check: Check::Frame,
            version: FORMAT_VERSION,
            at: ChainPos {
                seq: 0,
                hash: Hash::ZERO,
                timestamp_ns: 0,
            },
            records: 0,
            digest: None,
            seal: None,
        }
    }

    /// A walker over a whole segment from its first frame, checking `check`
    /// from the position its header continues.
    pub fn segment(
        file: Arc<dyn ReadFile>,
        header: &SegmentHeader,
        limit: u64,
        check: Check,
    ) -> Self {
        let mut walk = FrameWalker::new(file, SEGMENT_HEADER_LEN as u64, limit)
            .checking(check, header.start());
        walk.version = header.version;
        walk
    }

    /// Walks a segment of format `version` (which record kinds it may hold).
    pub fn of_version(mut self, version: u16) -> Self {
        self.version = version;
        self
    }

    /// Checks `check` from here on, the previous record being `at`.
    pub fn checking(mut self, check: Check, at: ChainPos) -> Self {
        self.check = check;
        self.at = at;
        self
    }

    /// Feeds every frame to `digest`, which has been given the segment's
    /// bytes before the walk's start (header included); `records` records
    /// precede the walk's start.
    pub fn digest_from(mut self, digest: BatchedDigest, records: u64) -> Self {
        self.records = records;
        self.digest = Some(Box::new(digest));
        self
    }

    /// Checks a seal record against the digest and records before it (the
    /// walk must digest from the segment's start), and that no record
    /// follows it; `segment` is the segment's number.
    pub fn checking_seal(mut self, segment: u64) -> Self {
        debug_assert!(
            self.digest.is_some(),
            "a seal is checked against the digest"
        );
        debug_assert!(
            self.check != Check::Frame,
            "a seal is checked against the chain"
        );
        self.seal = Some(SealCheck {
            segment,
            sealed_at: None,
        });
        self
    }

    /// File offset of the next frame: where the walk's valid bytes end.
    pub fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// The last record walked (meaningful with `Check::Seq` or `Chain`).
    pub fn at(&self) -> ChainPos {
        self.at
    }

    /// Records walked, counting those before the start given to `digest_from`.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The digest of every byte walked so far (with `digest_from`).
    pub fn into_digest(self) -> Option<BatchedDigest> {
        self.digest.map(|d| *d)
    }

    /// The next frame and its offset, checked, its bytes buffered whole;
    /// `None` at `limit`. For a caller that needs the frame's bytes as
    /// stored (sealing copies them into a zstd frame).
    pub fn next(&mut self) -> Result<Option<(u64, FrameRef<'_>)>, WalkError> {
        match self.step(Keep::Bytes)? {
            None => Ok(None),
            Some((offset, Walked::Whole(f))) => Ok(Some((offset, f))),
            Some((_, Walked::Streamed(..))) => unreachable!("a walk keeping bytes never streams"),
        }
    }

    /// The next frame, checked, for a caller that does not need the payload
    /// of a large user record: such a frame is streamed through the checks
    /// (the same checks, with the same errors) and never held.
    pub fn next_checked(&mut self) -> Result<Option<(u64, Walked<'_>)>, WalkError> {
        self.step(Keep::Nothing)
    }

    /// The next frame, checked, with its payload; a large user record's is
    /// collected as its frame streams, so the walk holds it once.
    pub fn next_owned(&mut self) -> Result<Option<(u64, Walked<'_>)>, WalkError> {
        self.step(Keep::Payload)
    }

    fn step(&mut self, keep: Keep) -> Result<Option<(u64, Walked<'_>)>, WalkError> {
        let offset = self.offset();
        if keep != Keep::Bytes {
            if let Some(need) = self.streams(offset)? {
                let (head, payload) = self.stream(offset, need, keep == Keep::Payload)?;
                return Ok(Some((offset, Walked::Streamed(head, payload))));
            }
        }
        if !self.buffer_frame(offset)? {
            return Ok(None);
        }
        let f = match decode_frame(&self.buf[self.pos..]) {
            Decoded::Frame(f) => f,
            Decoded::Invalid(what) => {
                return Err(WalkError::Bad {
                    offset,
                    what,
                    certain: false,
                })
            }
            Decoded::NeedMore(n) => unreachable!("frame_extent said {n} bytes were buffered"),
        };
        let certain = |what| WalkError::Bad {
            offset,
            what,
            certain: true,
        };
        let head = f.head();
        check_version(self.version, head.kind).map_err(certain)?;
        let prev = &self.at;
        let computed = || chain_hash(&prev.hash, f.seq, f.timestamp_ns, f.kind as u8, f.payload);
        check_frame(self.check, prev, offset, &head, computed).map_err(certain)?;
        if let (Some(seal), Some(digest)) = (&mut self.seal, &mut self.digest) {
            seal.step(self.records, &self.at, offset, &head, f.payload, digest)
                .map_err(certain)?;
        }
        if let Some(digest) = &mut self.digest {
            digest.update(f.raw);
        }
        self.pos += f.padded_len;
        advance(self.check, &mut self.records, &mut self.at, &head);
        Ok(Some((offset, Walked::Whole(f))))
    }

    /// The length of the frame at `offset` when it is to be streamed: a
    /// user record's frame longer than `STREAM_MIN` (judged by its header,
    /// before its CRC is: a damaged header only picks the path, and either
    /// path reports the damage alike), not buffered whole already, whose
    /// bytes lie before `limit` (else the buffered path reports it cut).
    fn streams(&mut self, offset: u64) -> Result<Option<usize>, WalkError> {
        if offset >= self.limit {
            return Ok(None);
        }
        if self.buf.len() - self.pos < FRAME_HEADER_LEN
            && self.limit - offset >= FRAME_HEADER_LEN as u64
        {
            self.fill(FRAME_HEADER_LEN)?;
        }
        let head = &self.buf[self.pos..];
        if head.len() < FRAME_HEADER_LEN || head[32] != RecordKind::User as u8 {
            return Ok(None);
        }
        Ok(frame_extent(head).filter(|&need| {
            need > STREAM_MIN && need > head.len() && need as u64 <= self.limit - offset
        }))
    }

    /// Streams the `need` bytes of the frame at `offset` (the buffer holds
    /// its start) through the checks `step` makes of a buffered frame, in
    /// the same order: the frame's own, then seq, time and chain, then the
    /// seal rules; the digest takes it in only once it passed them all.
    /// With `keep`, collects the payload.
    fn stream(
        &mut self,
        offset: u64,
        need: usize,
        keep: bool,
    ) -> Result<(FrameHead, Option<Vec<u8>>), WalkError> {
        let chain_from = (self.check == Check::Chain).then_some(&self.at.hash);
        let Some(mut decoder) = FrameDecoder::new(&self.buf[self.pos..], chain_from) else {
            unreachable!("streams() read a length in range")
        };
        // The digest goes on in a copy until the frame is known good: a
        // walk that stops at a bad frame digests the bytes before it only.
        let mut digest = self.digest.as_mut().map(|d| {
            let mut forked = d.hasher().clone();
            forked.update(&self.buf[self.pos..self.pos + FRAME_HEADER_LEN]);
            forked
        });
        let mut payload = keep.then(|| {
            // A walk with a known end has the bytes: the payload is
            // allocated once at its size. A stream's length claim is not
            // trusted: the payload grows as its bytes arrive.
            let exact = if self.limit == u64::MAX {
                0
            } else {
                decoder.payload_len()
            };
            Vec::with_capacity(exact)
        });
        let mut take = |bytes: &[u8], decoder: &mut FrameDecoder| {
            let p = decoder.update(bytes);
            if let Some(payload) = &mut payload {
                payload.extend_from_slice(p);
            }
            if let Some(d) = &mut digest {
                d.update(bytes);
            }
        };
        let buffered = (self.buf.len() - self.pos).min(need);
        take(
            &self.buf[self.pos + FRAME_HEADER_LEN..self.pos + buffered],
            &mut decoder,
        );
        // The rest is read past the buffer, which keeps the frame's start
        // (`offset()` stays there should the frame fail).
        let mut chunk = vec![0u8; STREAM_CHUNK.min(decoder.remaining())];
        let mut at = self.buf_offset + self.buf.len() as u64;
        while decoder.remaining() > 0 {
            let n = decoder.remaining().min(chunk.len());
            let got = self
                .file
                .read_full_at(&mut chunk[..n], at)
                .map_err(WalkError::Io)?;
            take(&chunk[..got], &mut decoder);
            at += got as u64;
            if got < n {
                // The file is shorter than `limit`, as `fill` finds it.
                self.limit = at;
                return Err(WalkError::Bad {
                    offset,
                    what: Corruption::FrameTruncated {
                        needed: need as u64,
                        available: at - offset,
                    },
                    certain: false,
                });
            }
        }
        let (head, computed) = decoder.finish().map_err(|what| WalkError::Bad {
            offset,
            what,
            certain: false,
        })?;
        let certain = |what| WalkError::Bad {
            offset,
            what,
            certain: true,
        };
        check_version(self.version, head.kind).map_err(certain)?;
        let computed = || computed.expect("the chain was hashed");
        check_frame(self.check, &self.at, offset, &head, computed).map_err(certain)?;
        if let (Some(seal), Some(d)) = (&mut self.seal, &mut self.digest) {
            // Never a seal record (those are engine records, not streamed);
            // this says whether one came before.
            seal.step(self.records, &self.at, offset, &head, &[], d)
                .map_err(certain)?;
        }
        if let (Some(d), Some(forked)) = (&mut self.digest, digest) {
            d.continue_with(forked);
        }
        // The frame is walked: the buffer starts after it.
        self.buf.clear();
        self.buf_offset = offset + need as u64;
        self.pos = 0;
        advance(self.check, &mut self.records, &mut self.at, &head);
        Ok((head, payload))
    }

    /// Buffers the whole frame at `offset` (or as much as a bad length
    /// needs for decode to report it); false at `limit`.
    fn buffer_frame(&mut self, offset: u64) -> Result<bool, WalkError> {
        loop {
            if offset >= self.limit {
                return Ok(false);
            }
            let avail = self.buf.len() - self.pos;
            let need = match frame_extent(&self.buf[self.pos..]) {
                Some(need) if need > avail => need,
                _ => return Ok(true),
            };
            let available = self.limit - offset;
            if need as u64 > available {
                return Err(WalkError::Bad {
                    offset,
                    what: Corruption::FrameTruncated {
                        needed: need as u64,
                        available,
                    },
                    certain: false,
                });
            }
            self.fill(need)?;
        }
    }

    /// Reads towards `need` bytes from the current position: a chunk at a
    /// time, and at most `GROW_MAX` more than is buffered per call.
    fn fill(&mut self, need: usize) -> Result<(), WalkError> {
        self.buf.drain(..self.pos);
        self.buf_offset += self.pos as u64;
        self.pos = 0;
        let room = self.limit - self.buf_offset;
        let have = self.buf.len();
        let want = need
            .max(self.chunk)
            .min(have + GROW_MAX.max(self.chunk))
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        self.chunk = (self.chunk * 2).min(CHUNK_MAX);
        if want <= have {
            return Ok(());
        }
        self.buf.resize(want, 0);
        let read_at = self.buf_offset + have as u64;
        let n = self
            .file
            .read_full_at(&mut self.buf[have..], read_at)
            .map_err(WalkError::Io)?;
        self.buf.truncate(have + n);
        if have + n < want {
            // The file is shorter than `limit`: what is there is all there is.
            self.limit = self.buf_offset + self.buf.len() as u64;
        }
        Ok(())
    }
}

/// Counts a frame that passed every check (`records`), now the walk's last
/// (`at`).
fn advance(check: Check, records: &mut u64, at: &mut ChainPos, head: &FrameHead) {
    *records += 1;
    if check != Check::Frame {
        debug_assert_eq!(head.seq, at.seq + 1, "seqs are contiguous");
        *at = ChainPos {
            seq: head.seq,
            hash: head.hash,
            timestamp_ns: head.timestamp_ns,
        };
    }
}

/// A segment of format `version` holds only the record kinds it knew.
fn check_version(version: u16, kind: RecordKind) -> Result<(), Corruption> {
    if kind.since_version() > version {
        return Err(Corruption::FrameField {
            field: "kind",
            detail: format!(
                "{} records are format {}, the segment is format {version}",
                kind.name(),
                kind.since_version(),
            ),
        });
    }
    Ok(())
}

/// The checks a frame at `offset` must pass after the record at `prev`;
/// `computed` gives the chain hash of its payload (computed only when
/// checked).
fn check_frame(
    check: Check,
    prev: &ChainPos,
    offset: u64,
    f: &FrameHead,
    computed: impl FnOnce() -> Hash,
) -> Result<(), Corruption> {
    if check == Check::Frame {
        return Ok(());
    }
    let expected = prev.next_seq();
    if f.seq != expected {
        return Err(Corruption::SeqGap {
            expected,
            found: f.seq,
        });
    }
    if check == Check::Seq {
        return Ok(());
    }
    if f.timestamp_ns < prev.timestamp_ns {
        return Err(Corruption::TimeWentBackward {
            previous: prev.timestamp_ns,
            found: f.timestamp_ns,
        });
    }
    if f.synced_through > offset || f.synced_through < SEGMENT_HEADER_LEN as u64 {
        return Err(Corruption::FrameField {
            field: "synced_through",
            detail: format!(
                "{} is not within {SEGMENT_HEADER_LEN}..={offset}",
                f.synced_through
            ),
        });
    }
    let computed = computed();
    if computed != f.hash {
        return Err(Corruption::ChainBroken {
            stored: hex(f.hash),
            computed: hex(computed),
        });
    }
    Ok(())
}

impl SealCheck {
    /// Checks the frame at `offset` against the seal rules; `records`
    /// records, the last at `prev`, precede it and hash to `digest`.
    fn step(
        &mut self,
        records: u64,
        prev: &ChainPos,
        offset: u64,
        f: &FrameHead,
        payload: &[u8],
        digest: &mut BatchedDigest,
    ) -> Result<(), Corruption> {
        if let Some(at) = self.sealed_at {
            return Err(Corruption::SealMismatch {
                detail: format!("a record follows the seal record at offset {at}"),
            });
        }
        if f.kind == RecordKind::Sealed {
            check_seal_record(
                payload,
                self.segment,
                records,
                prev,
                offset,
                digest.hasher(),
            )?;
            self.sealed_at = Some(offset);
        }
        Ok(())
    }
}

/// A seal record must describe exactly the records and bytes before it:
/// `records` records through `last`, `offset` bytes hashing to `digest`.
fn check_seal_record(
    payload: &[u8],
    segment: u64,
    records: u64,
    last: &ChainPos,
    offset: u64,
    digest: &blake3::Hasher,
) -> Result<(), Corruption> {
    let not_seal = || Corruption::SealMismatch {
        detail: "not a seal record".into(),
    };
    let Some(Ok(SystemEvent::Sealed {
        segment: s,
        records: r,
        last_seq,
        last_hash,
        bytes,
        digest: d,
    })) = SystemEvent::decode(RecordKind::Sealed, payload)
    else {
        return Err(not_seal());
    };
    let computed = *digest.finalize().as_bytes();
    let mismatch = if s != segment {
        format!("names segment {s}")
    } else if r != records || last_seq != last.seq || last_hash != last.hash {
        format!(
            "says {r} records through seq {last_seq}, segment has {records} through {}",
            last.seq
        )
    } else if bytes != offset {
        format!("covers {bytes} bytes, the seal record is at {offset}")
    } else if d != computed {
        format!(
            "segment digest {} but the bytes hash to {}",
            hex(d),
            hex(computed)
        )
    } else {
        return Ok(());
    };
    Err(Corruption::SealMismatch { detail: mismatch })
}

/// A BLAKE3 digest fed in large slices. Frames arrive a few hundred bytes
/// at a time; BLAKE3 hashes many 1 KiB chunks at once (SIMD) only when it is
/// given many at once, so frames are gathered into a buffer first.
#[derive(Clone)]
pub(crate) struct BatchedDigest {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
}

impl BatchedDigest {
    const BATCH: usize = 64 << 10;

    /// A digest that has taken in a segment's header.
    pub fn of_header(header: &SegmentHeader) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(&header.encode());
        BatchedDigest::from_hasher(h)
    }

    /// Goes on from `hasher`, which has been given the bytes before.
    pub fn from_hasher(hasher: blake3::Hasher) -> Self {
        BatchedDigest {
            hasher,
            pending: Vec::with_capacity(Self::BATCH),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if self.pending.is_empty() && bytes.len() >= Self::BATCH {
            // Large enough already: no copy.
            self.hasher.update(bytes);
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= Self::BATCH {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// The digest of everything given so far.
    pub fn finalize(&mut self) -> blake3::Hash {
        self.hasher().finalize()
    }

    /// The hasher with everything given so far.
    pub fn hasher(&mut self) -> &blake3::Hasher {
        self.hasher.update(&self.pending);
        self.pending.clear();
        &self.hasher
    }

    /// Goes on from `hasher`, which has been given everything this digest
    /// was and more.
    pub fn continue_with(&mut self, hasher: blake3::Hasher) {
        self.pending.clear();
        self.hasher = hasher;
    }
}

/// A sequential reader seen as a positional file, so that the walker can
/// read frames from a pipe: reads must come in order, each starting where
/// the last ended (the walker reads no other way).
pub(crate) struct StreamFile {
    inner: parking_lot::Mutex<(Box<dyn io::Read + Send>, u64)>,
}

impl StreamFile {
    /// `reader` positioned at offset `at` of the bytes it streams.
    pub fn new(reader: Box<dyn io::Read + Send>, at: u64) -> Self {
        StreamFile {
            inner: parking_lot::Mutex::new((reader, at)),
        }
    }
}

impl ReadFile for StreamFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut g = self.inner.lock();
        let (reader, at) = &mut *g;
        if offset != *at {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("a stream read at {offset}, the stream is at {at}"),
            ));
        }
        let n = reader.read(buf)?;
        *at += n as u64;
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a stream's length is not known before its end",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_frame, FRAME_OVERHEAD};

    /// A file of bytes in memory.
    struct Bytes(Vec<u8>);

    impl ReadFile for Bytes {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let at = (offset as usize).min(self.0.len());
            let n = buf.len().min(self.0.len() - at);
            buf[..n].copy_from_slice(&self.0[at..at + n]);
            Ok(n)
        }
        fn len(&self) -> io::Result<u64> {
            Ok(self.0.len() as u64)
        }
    }

    const START: u64 = SEGMENT_HEADER_LEN as u64;
    const BIG: usize = 100_001; // streams; its frame has padding

    /// A segment body: a small record, a big one (streamed), a small one;
    /// returns the bytes and where the big frame starts.
    fn segment() -> (Vec<u8>, usize) {
        let mut out = vec![0u8; SEGMENT_HEADER_LEN];
        let mut prev = Hash::from_bytes([1u8; 32]);
        let mut big_at = 0;
        for (seq, len) in [(1u64, 10usize), (2, BIG), (3, 20)] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + seq as usize) as u8).collect();
            let hash = chain_hash(&prev, seq, 100 * seq, 0, &payload);
            if len == BIG {
                big_at = out.len();
            }
            encode_frame(
                &mut out,
                seq,
                100 * seq,
                96,
                RecordKind::User,
                &payload,
                &hash,
            );
            prev = hash;
        }
        (out, big_at)
    }

    /// Recomputes the CRC of the frame at `at` (a writer's own mistake).
    fn recrc(b: &mut [u8], at: usize) {
        let padded = frame_extent(&b[at..]).unwrap();
        let crc = crc32fast::hash(&b[at + 8..at + padded]);
        b[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// What a walk over `bytes` sees, frame by frame, then where it ends.
    fn walk(bytes: &[u8], keep: Keep) -> Vec<String> {
        let start = ChainPos {
            seq: 0,
            hash: Hash::from_bytes([1; 32]),
            timestamp_ns: 0,
        };
        let mut w = FrameWalker::new(Arc::new(Bytes(bytes.to_vec())), START, bytes.len() as u64)
            .checking(Check::Chain, start)
            .digest_from(BatchedDigest::from_hasher(blake3::Hasher::new()), 0);
        let mut seen = Vec::new();
        loop {
            match w.step(keep) {
                Ok(Some((offset, f))) => {
                    let payload = match &f {
                        Walked::Whole(f) => Some(f.payload.len()),
                        Walked::Streamed(_, p) => p.as_ref().map(Vec::len),
                    };
                    seen.push(format!("{offset} {:?}", f.head()));
                    if keep != Keep::Nothing {
                        seen.push(format!("payload {payload:?}"));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    seen.push(format!("{e:?}"));
                    break;
                }
            }
        }
        let end = w.offset();
        let digest = w.into_digest().unwrap().finalize();
        seen.push(format!("end {end} digest {digest}"));
        seen
    }

    fn same_every_way(bytes: &[u8], case: &str) {
        let whole = walk(bytes, Keep::Bytes);
        assert_eq!(walk(bytes, Keep::Payload), whole, "{case}");
        let mut checked = whole.clone();
        checked.retain(|l| !l.starts_with("payload"));
        assert_eq!(walk(bytes, Keep::Nothing), checked, "{case}");
    }

    #[test]
    fn a_streamed_frame_is_judged_as_a_buffered_one() {
        let (good, at) = segment();
        let len = BIG + FRAME_OVERHEAD;
        assert!(frame_extent(&good[at..]).unwrap() > STREAM_MIN);
        same_every_way(&good, "intact");
        assert!(walk(&good, Keep::Nothing)
            .iter()
            .all(|l| !l.contains("Bad")));
        // Damage anywhere in the big frame, and a cut anywhere in it.
        for pos in [
            0,
            4,
            8,
            20,
            32,
            33,
            38,
            40,
            41,
            5000,
            40 + BIG - 1,
            40 + BIG,
            len - 1,
            len,
        ] {
            let mut b = good.clone();
            b[at + pos] ^= 0x10;
            same_every_way(&b, &format!("flip at {pos}"));
        }
        for cut in [at + 3, at + 40, at + 70_000, at + len - 1, at + len + 3] {
            same_every_way(&good[..cut], &format!("cut at {cut}"));
        }
        // Frames a faulty writer made (their CRC holds).
        let fields: [(&str, usize, u8); 7] = [
            ("seq", 8, 1),
            ("time", 16 + 7, 0x80),
            ("synced_through", 24 + 6, 1),
            ("flags", 33, 1),
            ("reserved", 35, 1),
            ("payload_len", 36, 1),
            ("hash", 40 + BIG + 3, 1),
        ];
        for (case, pos, bit) in fields {
            let mut b = good.clone();
            b[at + pos] ^= bit;
            recrc(&mut b, at);
            same_every_way(&b, case);
        }
        let mut b = good.clone();
        b[at + len] = 1; // padding
        recrc(&mut b, at);
        same_every_way(&b, "padding");
        let mut b = good.clone();
        b[at + 32] = RecordKind::LogClosed as u8; // buffered: not a user record
        recrc(&mut b, at);
        same_every_way(&b, "kind");
    }
}
