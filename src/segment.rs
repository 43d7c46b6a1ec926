//! Segment files: names, creation, the in-memory view of each segment, and
//! the sequential frame scanner that recovery, reads and verification share.

use crate::error::{Corruption, Error, Result};
use crate::format::{
    chain_hash, decode_frame, frame_extent, hex, Decoded, FrameRef, Hash, SegmentHeader,
    SEGMENT_HEADER_LEN,
};
use crate::storage::{write_atomically, ReadFile, Storage, WriteFile};
use parking_lot::RwLock;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".wlog";
/// A sealed segment: the same name with `.zst` added.
const SEALED_SUFFIX: &str = ".wlog.zst";
/// Suffix of a segment being created; such files are removed at open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// A sparse index entry is kept at least every this many bytes of a segment.
pub(crate) const INDEX_INTERVAL: u64 = 64 << 10;
/// Bytes the scanner reads at first: a point read touches little.
const SCAN_CHUNK_MIN: usize = 16 << 10;
/// Bytes the scanner reads at a time once it is streaming.
const SCAN_CHUNK_MAX: usize = 256 << 10;

pub(crate) fn segment_file_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:020}{SEGMENT_SUFFIX}")
}

pub(crate) fn sealed_file_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:020}{SEALED_SUFFIX}")
}

/// The segment number a file name stands for, if it is a segment's name.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_digits(
        name.strip_prefix(SEGMENT_PREFIX)?
            .strip_suffix(SEGMENT_SUFFIX)?,
    )
}

/// The segment number a sealed file's name stands for.
pub(crate) fn parse_sealed_file_name(name: &str) -> Option<u64> {
    parse_digits(
        name.strip_prefix(SEGMENT_PREFIX)?
            .strip_suffix(SEALED_SUFFIX)?,
    )
}

fn parse_digits(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn is_tmp_segment_name(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX) && name.ends_with(TMP_SUFFIX)
}

/// The base name an aside copy was made from: `NAME.cut-OFFSET` and
/// `NAME.damaged-TIME` (format-spec.md §1) give `NAME`.
fn aside_base(name: &str) -> Option<&str> {
    [".cut-", ".damaged-"].iter().find_map(|marker| {
        let (base, tail) = name.rsplit_once(marker)?;
        (!tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())).then_some(base)
    })
}

/// Whether wormlog writes files of this name in a log directory (the table
/// in format-spec.md §1): segments and sealed files, the anchor, hold and
/// lock files, their temporary names, and the copies recovery keeps aside.
pub(crate) fn is_engine_file_name(name: &str) -> bool {
    let base = name
        .strip_suffix(TMP_SUFFIX)
        .or_else(|| aside_base(name))
        .unwrap_or(name);
    parse_segment_file_name(base).is_some()
        || parse_sealed_file_name(base).is_some()
        || [
            crate::retention::ANCHOR_FILE,
            crate::retention::HOLD_FILE,
            crate::storage::LOCK_FILE,
        ]
        .contains(&base)
}

/// Creates a segment holding only `header`, atomically: written under a
/// temporary name, synced, renamed, and the directory synced, so a segment
/// name never points at a torn header.
pub(crate) fn create_segment_file(
    storage: &dyn Storage,
    dir: &Path,
    header: &SegmentHeader,
) -> Result<(PathBuf, Box<dyn WriteFile>)> {
    let path = dir.join(segment_file_name(header.segment));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment_file_name(header.segment)));
    write_atomically(storage, dir, &tmp, &path, &header.encode())?;
    let file = crate::storage::open_append(storage, &path)?;
    Ok((path, file))
}

/// Where a record sits, kept every `INDEX_INTERVAL` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub offset: u64,
}

/// A sparse index of one segment. Memory: one entry per 64 KiB of segment.
#[derive(Debug, Default)]
pub(crate) struct SparseIndex {
    pub entries: Vec<IndexEntry>,
    /// Whether the entries cover the whole segment (false until a closed
    /// segment is scanned for the first time).
    pub complete: bool,
}

impl SparseIndex {
    pub fn note(&mut self, seq: u64, timestamp_ns: u64, offset: u64) {
        let due = match self.entries.last() {
            None => true,
            Some(last) => offset >= last.offset + INDEX_INTERVAL,
        };
        if due {
            self.entries.push(IndexEntry {
                seq,
                timestamp_ns,
                offset,
            });
        }
    }

    /// The last entry at or before `seq`.
    pub fn seek_seq(&self, seq: u64) -> Option<IndexEntry> {
        let i = self.entries.partition_point(|e| e.seq <= seq);
        i.checked_sub(1).map(|i| self.entries[i])
    }

    /// The last entry strictly before `timestamp_ns` (the first record at or
    /// after it can only come later), else the first entry.
    pub fn seek_time(&self, timestamp_ns: u64) -> Option<IndexEntry> {
        let i = self
            .entries
            .partition_point(|e| e.timestamp_ns < timestamp_ns);
        self.entries.get(i.saturating_sub(1)).copied()
    }
}

/// One segment as the engine sees it: `file` reads its uncompressed bytes,
/// straight from a raw segment or through the frames of a sealed one.
pub(crate) struct Segment {
    pub number: u64,
    /// The raw segment file, or the sealed file.
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub file: Arc<dyn ReadFile>,
    pub index: RwLock<SparseIndex>,
    pub sealed: Option<crate::seal::SealedMeta>,
}

impl Segment {
    /// Opens a raw segment and reads its header, which must name segment
    /// `number` when one is given (the number in the file's name).
    pub fn open(storage: &dyn Storage, path: PathBuf, number: Option<u64>) -> Result<Segment> {
        let file = storage
            .open_read(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        let n = file
            .read_full_at(&mut buf, 0)
            .map_err(|e| Error::io("read", &path, e))?;
        let header = SegmentHeader::decode(&buf[..n])
            .map_err(|what| Error::corrupt(&path, 0, None, what))?;
        let number = number.unwrap_or(header.segment);
        if header.segment != number {
            return Err(Error::corrupt(
                &path,
                32,
                None,
                Corruption::HeaderField {
                    field: "segment",
                    detail: format!("{} but the file is named for {number}", header.segment),
                },
            ));
        }
        Ok(Segment {
            number,
            path,
            header,
            file,
            index: RwLock::new(SparseIndex::default()),
            sealed: None,
        })
    }

    pub fn new_active(path: PathBuf, header: SegmentHeader, file: Arc<dyn ReadFile>) -> Segment {
        Segment {
            number: header.segment,
            path,
            header,
            file,
            index: RwLock::new(SparseIndex {
                entries: Vec::new(),
                complete: true,
            }),
            sealed: None,
        }
    }

    /// Builds the sparse index of a closed segment by scanning it, once.
    pub fn ensure_index(&self, limit: u64) -> Result<()> {
        if self.index.read().complete {
            return Ok(());
        }
        let mut index = SparseIndex::default();
        let mut scan = FrameScanner::new(self.file.clone(), SEGMENT_HEADER_LEN as u64, limit);
        while let Some((offset, f)) = scan.next().map_err(|e| e.into_error(&self.path, None))? {
            index.note(f.seq, f.timestamp_ns, offset);
        }
        index.complete = true;
        *self.index.write() = index;
        Ok(())
    }

    pub fn file_len(&self) -> Result<u64> {
        self.file
            .len()
            .map_err(|e| Error::io("stat", &self.path, e))
    }
}

/// Why a scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanError {
    Io(io::Error),
    /// The bytes at `offset` are not a valid frame.
    Bad {
        offset: u64,
        what: Corruption,
    },
}

impl ScanError {
    pub fn into_error(self, path: &Path, seq: Option<u64>) -> Error {
        match self {
            ScanError::Io(e) => crate::seal::io_to_error(path, seq, e),
            ScanError::Bad { offset, what } => Error::corrupt(path, offset, seq, what),
        }
    }
}

/// Reads frames one after another from `start` up to `limit`, through a
/// bounded buffer: it never holds more than one frame plus a chunk, and never
/// allocates for a frame that would run past `limit`.
pub(crate) struct FrameScanner {
    file: Arc<dyn ReadFile>,
    buf: Vec<u8>,
    buf_offset: u64,
    pos: usize,
    limit: u64,
    chunk: usize,
}

impl FrameScanner {
    pub fn new(file: Arc<dyn ReadFile>, start: u64, limit: u64) -> Self {
        FrameScanner {
            file,
            buf: Vec::new(),
            buf_offset: start,
            pos: 0,
            limit,
            chunk: SCAN_CHUNK_MIN,
        }
    }

    /// File offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// The next frame and its offset; `None` at `limit`.
    pub fn next(&mut self) -> Result<Option<(u64, FrameRef<'_>)>, ScanError> {
        let offset = self.offset();
        loop {
            if offset >= self.limit {
                return Ok(None);
            }
            let avail = self.buf.len() - self.pos;
            let need = match frame_extent(&self.buf[self.pos..]) {
                Some(need) if need > avail => need,
                _ => break, // whole frame buffered, or a bad length for decode to report
            };
            let available = self.limit - offset;
            if need as u64 > available {
                return Err(ScanError::Bad {
                    offset,
                    what: Corruption::FrameTruncated {
                        needed: need as u64,
                        available,
                    },
                });
            }
            self.fill(need)?;
        }
        match decode_frame(&self.buf[self.pos..]) {
            Decoded::Frame(f) => {
                self.pos += f.padded_len;
                Ok(Some((offset, f)))
            }
            Decoded::Invalid(what) => Err(ScanError::Bad { offset, what }),
            Decoded::NeedMore(n) => unreachable!("frame_extent said {n} bytes were buffered"),
        }
    }

    /// Makes at least `need` bytes from the current position available.
    fn fill(&mut self, need: usize) -> Result<(), ScanError> {
        self.buf.drain(..self.pos);
        self.buf_offset += self.pos as u64;
        self.pos = 0;
        let room = self.limit - self.buf_offset;
        let want = (need.max(self.chunk) as u64).min(room) as usize;
        self.chunk = (self.chunk * 2).min(SCAN_CHUNK_MAX);
        let have = self.buf.len();
        if want <= have {
            return Ok(());
        }
        self.buf.resize(want, 0);
        let read_at = self.buf_offset + have as u64;
        let n = self
            .file
            .read_full_at(&mut self.buf[have..], read_at)
            .map_err(ScanError::Io)?;
        self.buf.truncate(have + n);
        if have + n < want {
            // The file is shorter than `limit`: what is there is all there is.
            self.limit = self.buf_offset + self.buf.len() as u64;
        }
        Ok(())
    }
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

    pub fn new() -> Self {
        BatchedDigest {
            hasher: blake3::Hasher::new(),
            pending: Vec::with_capacity(Self::BATCH),
        }
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

/// The checks every frame of a segment must pass given the record before
/// it: the next seq, a time no earlier, a `synced_through` inside the file
/// and before the frame, and a chain hash that continues the previous one.
/// Verification and single-file reads share it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainWalker {
    pub last_seq: u64,
    pub last_hash: Hash,
    pub last_ts: u64,
}

impl ChainWalker {
    /// Starts where a segment's header says its chain continues.
    pub fn new(header: &SegmentHeader) -> Self {
        ChainWalker {
            last_seq: header.first_seq - 1,
            last_hash: header.prev_hash,
            last_ts: header.created_ns,
        }
    }

    /// Checks the frame at `offset` and steps past it.
    pub fn step(&mut self, offset: u64, f: &FrameRef<'_>) -> Result<(), Corruption> {
        let expected = self.last_seq + 1;
        if f.seq != expected {
            return Err(Corruption::SeqGap {
                expected,
                found: f.seq,
            });
        }
        if f.timestamp_ns < self.last_ts {
            return Err(Corruption::TimeWentBackward {
                previous: self.last_ts,
                found: f.timestamp_ns,
            });
        }
        if f.synced_through > offset || f.synced_through < SEGMENT_HEADER_LEN as u64 {
            return Err(Corruption::FrameField {
                field: "synced_through",
                detail: format!("{} is not within 96..={offset}", f.synced_through),
            });
        }
        let computed = chain_hash(
            &self.last_hash,
            f.seq,
            f.timestamp_ns,
            f.kind as u8,
            f.payload,
        );
        if computed != f.hash {
            return Err(Corruption::ChainBroken {
                stored: hex(&f.hash),
                computed: hex(&computed),
            });
        }
        debug_assert_eq!(f.seq, self.last_seq + 1, "seqs are contiguous");
        self.last_seq = f.seq;
        self.last_hash = f.hash;
        self.last_ts = f.timestamp_ns;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_spec_lists_is_the_engines_and_lookalikes_are_not() {
        let seg = segment_file_name(3);
        let sealed = sealed_file_name(3);
        for name in [
            seg.clone(),
            sealed.clone(),
            format!("{seg}.tmp"),
            format!("{sealed}.tmp"),
            format!("{seg}.cut-4096"),
            format!("{seg}.damaged-1795000000000000000"),
            "wormlog.anchor".into(),
            "wormlog.anchor.tmp".into(),
            "wormlog.anchor.cut-184".into(),
            "wormlog.hold".into(),
            "wormlog.hold.tmp".into(),
            "wormlog.lock".into(),
        ] {
            assert!(is_engine_file_name(&name), "{name}");
        }
        for name in [
            format!("{seg}.old"),
            format!("{seg}.cut-"),
            format!("{seg}.cut-12x"),
            format!("{sealed}.bak"),
            "seg-3.wlog".into(),
            "notes.txt".into(),
            "wormlog.anchor.orig".into(),
            ".wormlog.lock.swp".into(),
        ] {
            assert!(!is_engine_file_name(&name), "{name}");
        }
    }

    #[test]
    fn segment_names_round_trip_and_reject_lookalikes() {
        assert_eq!(parse_segment_file_name(&segment_file_name(7)), Some(7));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "seg-1.wlog",
            "seg-0000000000000000000x.wlog",
            "x.wlog",
            "seg-00000000000000000001.wlog.tmp",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
