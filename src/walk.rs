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

use crate::error::{Corruption, Error};
use crate::format::{
    chain_hash, decode_frame, frame_extent, hex, ChainPos, Decoded, FrameRef, RecordKind,
    SegmentHeader, SystemEvent, FORMAT_VERSION, SEGMENT_HEADER_LEN,
};
use crate::storage::ReadFile;
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
/// holds at most one frame plus a chunk, and never allocates for a frame
/// that would run past `limit`.
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
    digest: Option<BatchedDigest>,
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
                hash: [0; 32],
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
        self.digest = Some(digest);
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
        self.digest
    }

    /// The next frame and its offset, checked; `None` at `limit`.
    pub fn next(&mut self) -> Result<Option<(u64, FrameRef<'_>)>, WalkError> {
        let offset = self.offset();
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
        if f.kind.since_version() > self.version {
            return Err(certain(Corruption::FrameField {
                field: "kind",
                detail: format!(
                    "{} records are format {}, the segment is format {}",
                    f.kind.name(),
                    f.kind.since_version(),
                    self.version
                ),
            }));
        }
        check_frame(self.check, &self.at, offset, &f).map_err(certain)?;
        if let (Some(seal), Some(digest)) = (&mut self.seal, &mut self.digest) {
            seal.step(self.records, &self.at, offset, &f, digest)
                .map_err(certain)?;
        }
        if let Some(digest) = &mut self.digest {
            digest.update(f.raw);
        }
        self.pos += f.padded_len;
        self.records += 1;
        if self.check != Check::Frame {
            debug_assert_eq!(f.seq, self.at.seq + 1, "seqs are contiguous");
            self.at = ChainPos {
                seq: f.seq,
                hash: f.hash,
                timestamp_ns: f.timestamp_ns,
            };
        }
        Ok(Some((offset, f)))
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

/// The checks a frame at `offset` must pass after the record at `prev`.
fn check_frame(
    check: Check,
    prev: &ChainPos,
    offset: u64,
    f: &FrameRef<'_>,
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
    let computed = chain_hash(&prev.hash, f.seq, f.timestamp_ns, f.kind as u8, f.payload);
    if computed != f.hash {
        return Err(Corruption::ChainBroken {
            stored: hex(&f.hash),
            computed: hex(&computed),
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
        f: &FrameRef<'_>,
        digest: &mut BatchedDigest,
    ) -> Result<(), Corruption> {
        if let Some(at) = self.sealed_at {
            return Err(Corruption::SealMismatch {
                detail: format!("a record follows the seal record at offset {at}"),
            });
        }
        if f.kind == RecordKind::Sealed {
            check_seal_record(
                f.payload,
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
            hex(&d),
            hex(&computed)
        )
    } else {
        return Ok(());
    };
    Err(Corruption::SealMismatch { detail: mismatch })
}

/// A BLAKE3 digest fed in large slices. Frames arrive a few hundred bytes
/// at a time; BLAKE3 hashes many 1 KiB chunks at once (SIMD) only when it is
/// given many at once, so frames are gathered into a buffer first.
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
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= Self::BATCH {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// The hasher with everything given so far.
    pub fn hasher(&mut self) -> &blake3::Hasher {
        self.hasher.update(&self.pending);
        self.pending.clear();
        &self.hasher
    }

    /// The hasher with everything given so far, to go on with.
    pub fn into_hasher(mut self) -> blake3::Hasher {
        self.hasher.update(&self.pending);
        self.hasher
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
