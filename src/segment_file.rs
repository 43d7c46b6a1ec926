//! One segment file read on its own, outside its log: a raw segment, a
//! sealed file, or a raw segment's bytes from any reader (a pipe from
//! `zstd -dc`, say). Inspection tools use it to dump what a file holds.
//!
//! Every frame is checked as it is read (length, CRC, fixed fields, seq,
//! time and the chain from the hash the header continues), and the first
//! failure ends the iteration with an error naming the file, the frame's
//! offset and the seq expected there. Whether the file belongs in a given
//! log is not checked here: verify the log for that.

use crate::error::{Corruption, Error, Result};
use crate::format::names::parse_segment_file_name;
use crate::format::{
    Hash, SegmentHeader, SEGMENT_AT, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, ZSTD_FRAME_MAGIC,
};
use crate::sealed::open_sealed;
use crate::state::Record;
use crate::storage::{FsStorage, ReadFile, Storage};
use crate::walk::{Check, FrameWalker, StreamFile};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a segment file's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFileInfo {
    /// The id of the log the file says it belongs to.
    pub log_id: [u8; 16],
    /// The segment's number.
    pub segment: u64,
    /// Seq of the file's first record.
    pub first_seq: u64,
    /// When the segment was created, ns since the Unix epoch; no record in
    /// it is earlier.
    pub created_ns: u64,
    /// The chain hash the file's first record continues.
    pub prev_hash: Hash,
    /// Whether the file is a sealed (compressed) one.
    pub sealed: bool,
}

/// The records of one segment file, oldest first; see the module docs.
/// Holds at most one frame in memory, however large the input.
pub struct SegmentFile {
    path: PathBuf,
    info: SegmentFileInfo,
    walk: FrameWalker,
    done: bool,
}

impl std::fmt::Debug for SegmentFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentFile")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("offset", &self.walk.offset())
            .finish_non_exhaustive()
    }
}

impl SegmentFile {
    /// Opens a raw segment or a sealed file, told apart by their first bytes.
    pub fn open(path: impl AsRef<Path>) -> Result<SegmentFile> {
        SegmentFile::open_with(&FsStorage, path.as_ref())
    }

    /// [`SegmentFile::open`] on any storage.
    pub fn open_with(storage: &dyn Storage, path: &Path) -> Result<SegmentFile> {
        let file = storage
            .open_read(path)
            .map_err(|e| Error::io("open", path, e))?;
        let mut magic = [0u8; 4];
        let n = file
            .read_full_at(&mut magic, 0)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 4 && magic == ZSTD_FRAME_MAGIC {
            let seg = open_sealed(storage, path, None, None)?;
            let len = seg.sealed.as_ref().map_or(0, |m| m.index.uncompressed_len);
            let source = PositionalReader {
                file: seg.file.clone(),
                offset: 0,
                len,
            };
            return SegmentFile::start(path.to_path_buf(), Box::new(source), true, Some(len));
        }
        let len = file.len().map_err(|e| Error::io("stat", path, e))?;
        let source = PositionalReader {
            file,
            offset: 0,
            len,
        };
        // A raw file may be growing (an active segment): read on to its end.
        let file = SegmentFile::start(path.to_path_buf(), Box::new(source), false, None)?;
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_file_name);
        match named {
            Some(n) if n != file.info.segment => Err(Error::corrupt(
                path,
                SEGMENT_AT as u64,
                None,
                Corruption::HeaderField {
                    field: "segment",
                    detail: format!("{} but the file is named for {n}", file.info.segment),
                },
            )),
            _ => Ok(file),
        }
    }

    /// Reads a raw segment's bytes from `reader` (standard input, say);
    /// `name` is what errors call it.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        reader: impl Read + Send + 'static,
    ) -> Result<SegmentFile> {
        SegmentFile::start(name.into(), Box::new(reader), false, None)
    }

    /// Reads frames from `source` after its header; `len`, when fixed (a
    /// sealed file's), is where they end, so a large record's payload is
    /// allocated once at its size (the bytes are there, whatever a length
    /// field claims); otherwise it grows as the bytes arrive.
    fn start(
        path: PathBuf,
        mut source: Box<dyn Read + Send>,
        sealed: bool,
        len: Option<u64>,
    ) -> Result<Self> {
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        let n = read_up_to(&mut source, &mut buf).map_err(|e| Error::io("read", &path, e))?;
        if n >= 4 && buf[..4] == ZSTD_FRAME_MAGIC && !sealed {
            return Err(Error::corrupt(
                &path,
                0,
                None,
                Corruption::HeaderField {
                    field: "magic",
                    detail: "zstd-compressed data: decompress it first (zstd -dc FILE)".into(),
                },
            ));
        }
        if n > 0 && n < SEGMENT_MAGIC.len() && buf[..n] != SEGMENT_MAGIC[..n] {
            return Err(Error::corrupt(&path, 0, None, Corruption::BadMagic));
        }
        let header = SegmentHeader::decode(&buf[..n])
            .map_err(|what| Error::corrupt(&path, 0, None, what))?;
        // The header has been read: frames follow it, read on as a stream.
        let file = Arc::new(StreamFile::new(source, SEGMENT_HEADER_LEN as u64));
        Ok(SegmentFile {
            info: SegmentFileInfo {
                log_id: header.log_id,
                segment: header.segment,
                first_seq: header.first_seq,
                created_ns: header.created_ns,
                prev_hash: header.prev_hash,
                sealed,
            },
            walk: FrameWalker::segment(file, &header, len.unwrap_or(u64::MAX), Check::Chain),
            path,
            done: false,
        })
    }

    /// What the file's header says.
    pub fn info(&self) -> SegmentFileInfo {
        self.info
    }

    /// The file as given to `open` (or the name given for a reader).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn step(&mut self) -> Result<Option<Record>> {
        let expected = self.walk.at().next_seq();
        match self.walk.next_owned() {
            Ok(Some((offset, f))) => Ok(Some(f.into_record(self.info.segment, offset))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into_error(&self.path, Some(expected))),
        }
    }
}

impl Iterator for SegmentFile {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

/// Fills `buf` as far as the reader goes; returns how many bytes it got.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Sequential reads over a positional file, up to `len`.
struct PositionalReader {
    file: Arc<dyn ReadFile>,
    offset: u64,
    len: u64,
}

impl Read for PositionalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.len.saturating_sub(self.offset);
        let want = (buf.len() as u64).min(room) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}
