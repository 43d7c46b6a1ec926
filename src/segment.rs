//! Segment files: creation, the in-memory view of each segment (raw or
//! sealed) and its sparse index.

use crate::error::{Corruption, Error, Result};
use crate::format::names::{segment_file_name, TMP_SUFFIX};
use crate::format::{
    ChainPos, SealedIndex, SegmentHeader, SystemEvent, SEGMENT_AT, SEGMENT_HEADER_LEN,
};
use crate::state::Visible;
use crate::storage::{write_atomically, ReadFile, Storage, WriteFile};
use crate::walk::{BatchedDigest, FrameWalker};
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A sparse index entry is kept at least every this many bytes of a segment.
pub(crate) const INDEX_INTERVAL: u64 = 64 << 10;

/// Creates a segment holding only `header`, atomically: written under a
/// temporary name, synced, renamed, and the directory synced, so a segment
/// name never points at a torn header.
fn create_segment_file(
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

/// Where the valid prefix of an active segment ends: its length, the last
/// record in it (or the position its header continues), how many records
/// it holds, and the digest of its bytes. A writer appends from here; a
/// read-only follower reads on from here.
pub(crate) struct SegmentEnd {
    pub segment: Arc<Segment>,
    pub len: u64,
    pub at: ChainPos,
    pub records: u64,
    /// BLAKE3 of every byte of the segment through `len`, for its seal
    /// record: fed in 64 KiB pieces, where BLAKE3 hashes several chunks at
    /// once, not a group (often one record) at a time.
    pub digest: BatchedDigest,
}

impl SegmentEnd {
    /// A segment holding its header alone.
    pub fn empty(segment: Arc<Segment>) -> SegmentEnd {
        let digest = BatchedDigest::of_header(&segment.header);
        SegmentEnd {
            at: segment.header.start(),
            len: SEGMENT_HEADER_LEN as u64,
            records: 0,
            digest,
            segment,
        }
    }

    /// What readers may see when this is the end of the log.
    pub fn visible(&self) -> Visible {
        Visible {
            head: self.at,
            active_segment: self.segment.number,
            active_len: self.len,
        }
    }

    /// The seal record that closes the segment here.
    pub fn seal_event(&mut self) -> SystemEvent {
        SystemEvent::Sealed {
            segment: self.segment.number,
            records: self.records,
            last_seq: self.at.seq,
            last_hash: self.at.hash,
            bytes: self.len,
            digest: self.digest.finalize().into(),
        }
    }
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
    pub sealed: Option<SealedMeta>,
}

/// What a sealed file's trailer says, kept in memory while it is open.
#[derive(Debug, Clone)]
pub(crate) struct SealedMeta {
    pub index: SealedIndex,
    pub compressed_len: u64,
    /// Bytes of zstd data frames (where the index frame begins).
    pub data_len: u64,
    /// Where each data frame's content begins in the raw segment, in order
    /// (the first at 0): frames hold whole records, so each later one
    /// begins at a record.
    pub frame_starts: Vec<u64>,
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
                SEGMENT_AT as u64,
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

    /// Creates the segment `header` describes (see `create_segment_file`)
    /// as the log's new active segment; returns it and its append handle.
    pub fn create_active(
        storage: &dyn Storage,
        dir: &Path,
        header: SegmentHeader,
    ) -> Result<(Arc<Segment>, Box<dyn WriteFile>)> {
        let (path, file) = create_segment_file(storage, dir, &header)?;
        let read = storage
            .open_read(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        Ok((Arc::new(Segment::new_active(path, header, read)), file))
    }

    fn new_active(path: PathBuf, header: SegmentHeader, file: Arc<dyn ReadFile>) -> Segment {
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
        let mut walk = FrameWalker::new(self.file.clone(), SEGMENT_HEADER_LEN as u64, limit);
        while let Some((offset, f)) = walk
            .next_checked()
            .map_err(|e| e.into_error(&self.path, None))?
        {
            let f = f.head();
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
