//! Reading sealed files (format-spec.md, "Sealed segment file"): the
//! trailer is parsed and checked when a file is opened, and the segment's
//! uncompressed bytes are read one zstd frame at a time through a bounded
//! cache shared by all sealed segments of a log.

use crate::error::{Corruption, Error, Result, SealedDamage};
use crate::format::{
    decode_seek_table, seek_table_len, Hash, SealedIndex, SEEK_FOOTER_LEN, SEGMENT_HEADER_LEN,
};
use crate::segment::{IndexEntry, SealedMeta, Segment, SparseIndex};
use crate::storage::{read_chunks, FilePool, PooledFile, ReadFile, Storage};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Decompressed frames of sealed files, least recently used evicted first,
/// bounded in bytes, plus the frame stored last whatever its size (so a
/// sequential scan decompresses each frame once even when the cache is too
/// small to hold one). Shared by all sealed segments of a log: nothing is
/// kept per segment, so memory does not grow with the number of segments.
#[derive(Debug)]
pub(crate) struct FrameCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
    /// Large frames being read in order, for all segments of the log (so
    /// their number does not grow with the segments read).
    streams: Streams,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

type FrameKey = (u64, usize);

#[derive(Debug, Default)]
struct CacheInner {
    /// (segment, frame) to (frame bytes, last use).
    entries: HashMap<FrameKey, (Arc<Vec<u8>>, u64)>,
    bytes: usize,
    tick: u64,
    /// The frame stored last, outside `bytes`.
    recent: Option<(FrameKey, Arc<Vec<u8>>)>,
}

impl FrameCache {
    pub fn new(capacity: usize) -> Self {
        FrameCache {
            capacity,
            inner: Mutex::new(CacheInner::default()),
            streams: Streams::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn get(&self, key: (u64, usize)) -> Option<Arc<Vec<u8>>> {
        let mut c = self.inner.lock();
        c.tick += 1;
        let tick = c.tick;
        let hit = match c.entries.get_mut(&key) {
            Some((v, t)) => {
                *t = tick;
                Some(v.clone())
            }
            None => c
                .recent
                .as_ref()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.clone()),
        };
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    fn insert(&self, key: (u64, usize), value: Arc<Vec<u8>>) {
        let mut c = self.inner.lock();
        c.recent = Some((key, value.clone()));
        if value.len() > self.capacity {
            return;
        }
        while c.bytes + value.len() > self.capacity {
            // Frames are large (about 1 MiB), so the cache holds few entries
            // and a linear scan for the oldest is cheap.
            let Some((&old, _)) = c.entries.iter().min_by_key(|(_, (_, t))| *t) else {
                break;
            };
            if let Some((v, _)) = c.entries.remove(&old) {
                c.bytes -= v.len();
            }
        }
        c.tick += 1;
        let tick = c.tick;
        c.bytes += value.len();
        if let Some((old, _)) = c.entries.insert(key, (value, tick)) {
            c.bytes -= old.len();
        }
    }

    /// Bytes of decompressed frames held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

/// A data frame that decompresses to more than this is not decompressed
/// whole (nor cached): reads in order stream it through a zstd decoder,
/// which holds its window (a few MiB at the levels sealing uses), not the
/// frame. Sealing makes frames of about 1 MiB; only a frame holding a
/// record larger than this gets this big.
const STREAM_FRAME_MIN: u32 = 4 << 20;
/// Large frames being streamed at once, per log (or per private reader):
/// readers that take turns each keep their place.
const STREAMS_MAX: usize = 4;

/// The compressed bytes of one data frame, read in order.
struct Section {
    file: Arc<dyn ReadFile>,
    at: u64,
    end: u64,
}

/// An error reading the file under a zstd decoder, told apart from the
/// decoder's own (damage) on the way out.
#[derive(Debug)]
struct FileError(io::Error);

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FileError {}

impl io::Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.end - self.at).unwrap_or(usize::MAX));
        if n == 0 {
            return Ok(0);
        }
        let got = self
            .file
            .read_at(&mut buf[..n], self.at)
            .map_err(|e| io::Error::new(e.kind(), FileError(e)))?;
        if got == 0 {
            // Damage, as the decoder reports it: the frame is cut short.
            return Ok(0);
        }
        self.at += got as u64;
        Ok(got)
    }
}

/// A large frame being decompressed in order, and how far it got.
struct FrameStream {
    segment: u64,
    frame: usize,
    /// Bytes of the frame's content produced so far.
    pos: u64,
    decoder: zstd::stream::read::Decoder<'static, io::BufReader<Section>>,
    last_use: u64,
}

#[derive(Default)]
struct Streams {
    open: Mutex<(Vec<FrameStream>, u64)>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("open", &self.open.lock().0.len())
            .finish()
    }
}

impl Streams {
    /// The stream of `frame` of `segment` that has not gone past `at`.
    fn take(&self, segment: u64, frame: usize, at: u64) -> Option<FrameStream> {
        let mut open = self.open.lock();
        let i = open
            .0
            .iter()
            .position(|s| s.segment == segment && s.frame == frame && s.pos <= at)?;
        Some(open.0.swap_remove(i))
    }

    /// Keeps `s` for the next read, dropping the least recently used
    /// stream beyond `STREAMS_MAX`.
    fn put(&self, mut s: FrameStream) {
        let mut open = self.open.lock();
        open.1 += 1;
        s.last_use = open.1;
        if open.0.len() >= STREAMS_MAX {
            if let Some(i) = (0..open.0.len()).min_by_key(|&i| open.0[i].last_use) {
                open.0.swap_remove(i);
            }
        }
        open.0.push(s);
    }
}

#[derive(Debug, Clone, Copy)]
struct ZFrame {
    compressed_offset: u64,
    compressed_size: u32,
    offset: u64,
    size: u32,
}

/// What the sealed segments of one open log share when read: the cache of
/// decompressed frames and the pool of open files.
#[derive(Clone)]
pub(crate) struct SealedReads {
    pub cache: Arc<FrameCache>,
    pub files: Arc<FilePool>,
}

/// The uncompressed bytes of a sealed segment, as a `ReadFile`: each read
/// decompresses (or finds in the cache) only the frames it touches.
pub(crate) struct SealedReader {
    file: Arc<dyn ReadFile>,
    segment: u64,
    frames: Vec<ZFrame>,
    len: u64,
    cache: Option<Arc<FrameCache>>,
    /// Without a cache (a reader of its own: one file, verification), the
    /// last frame read, so a sequential scan decompresses each frame once.
    /// With one, nothing: a frame kept per segment would make memory grow
    /// with the number of segments a log's readers have touched.
    last: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
    /// Without a cache, the large frames being streamed (with one, the
    /// cache's).
    streams: Streams,
}

impl SealedReader {
    fn streams(&self) -> &Streams {
        self.cache.as_ref().map_or(&self.streams, |c| &c.streams)
    }

    /// Reads from frame `i` at `at` (of its content), a large frame, through
    /// a stream: one that has not passed `at` goes on, skipping to it;
    /// otherwise a new one starts at the frame's beginning.
    fn read_streaming(&self, i: usize, buf: &mut [u8], at: u64) -> io::Result<usize> {
        let f = self.frames[i];
        let damage = |detail: String| self.damage(i, detail);
        let mut s = match self.streams().take(self.segment, i, at) {
            Some(s) => s,
            None => {
                let section = Section {
                    file: self.file.clone(),
                    at: f.compressed_offset,
                    end: f.compressed_offset + u64::from(f.compressed_size),
                };
                // Not `single_frame`: like the whole-frame path, whatever
                // the seek table counts in this frame's compressed bytes is
                // decoded, so bytes beyond a first zstd frame are damage.
                FrameStream {
                    segment: self.segment,
                    frame: i,
                    pos: 0,
                    decoder: zstd::stream::read::Decoder::new(section)?,
                    last_use: 0,
                }
            }
        };
        let zstd_err = |e: io::Error| {
            if !e.get_ref().is_some_and(|e| e.is::<FileError>()) {
                return damage(format!("zstd: {e}"));
            }
            match e.into_inner().map(|e| e.downcast::<FileError>()) {
                Some(Ok(file)) => file.0,
                _ => unreachable!("checked to be a FileError"),
            }
        };
        if s.pos < at {
            let skip = at - s.pos;
            let skipped = io::copy(&mut io::Read::take(&mut s.decoder, skip), &mut io::sink())
                .map_err(zstd_err)?;
            s.pos += skipped;
        }
        let want = buf
            .len()
            .min(usize::try_from(u64::from(f.size) - at).unwrap_or(usize::MAX));
        let mut n = 0;
        if s.pos == at {
            while n < want {
                match io::Read::read(&mut s.decoder, &mut buf[n..want]) {
                    Ok(0) => break,
                    Ok(got) => n += got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(zstd_err(e)),
                }
            }
            s.pos += n as u64;
        }
        if n < want {
            return Err(damage(format!(
                "decompressed to {} bytes, seek table says {}",
                s.pos, f.size
            )));
        }
        if s.pos == u64::from(f.size) {
            // The frame's end: it must end here too. The stream is done
            // with, and its window freed.
            let mut more = [0u8; 1];
            if io::Read::read(&mut s.decoder, &mut more).map_err(zstd_err)? != 0 {
                return Err(damage(format!(
                    "decompresses to more than the {} bytes the seek table says",
                    f.size
                )));
            }
        } else {
            self.streams().put(s);
        }
        Ok(n)
    }

    fn damage(&self, i: usize, detail: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            SealedDamage {
                frame: i as u64,
                offset: self.frames[i].compressed_offset,
                detail,
            },
        )
    }

    fn frame(&self, i: usize) -> io::Result<Arc<Vec<u8>>> {
        if let Some(cache) = &self.cache {
            let key = (self.segment, i);
            if let Some(d) = cache.get(key) {
                return Ok(d);
            }
            let d = Arc::new(self.decompress(i)?);
            cache.insert(key, d.clone());
            return Ok(d);
        }
        if let Some((j, data)) = &*self.last.lock() {
            if *j == i {
                return Ok(data.clone());
            }
        }
        let data = Arc::new(self.decompress(i)?);
        *self.last.lock() = Some((i, data.clone()));
        Ok(data)
    }

    fn decompress(&self, i: usize) -> io::Result<Vec<u8>> {
        let f = self.frames[i];
        let damage = |detail: String| self.damage(i, detail);
        let mut compressed = vec![0u8; f.compressed_size as usize];
        let got = self
            .file
            .read_full_at(&mut compressed, f.compressed_offset)?;
        if got < compressed.len() {
            return Err(damage(format!(
                "file ends after {got} of {} compressed bytes",
                f.compressed_size
            )));
        }
        // The capacity bounds the output: a frame that decompresses to more
        // than the seek table declared is an error, not an allocation.
        let out = zstd::bulk::decompress(&compressed, f.size as usize)
            .map_err(|e| damage(format!("zstd: {e}")))?;
        if out.len() != f.size as usize {
            return Err(damage(format!(
                "decompressed to {} bytes, seek table says {}",
                out.len(),
                f.size
            )));
        }
        Ok(out)
    }
}

impl ReadFile for SealedReader {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.frames.partition_point(|f| f.offset <= offset) - 1;
        let f = self.frames[i];
        if f.size > STREAM_FRAME_MIN {
            return self.read_streaming(i, buf, offset - f.offset);
        }
        let data = self.frame(i)?;
        let at = (offset - f.offset) as usize;
        let n = buf.len().min(data.len() - at);
        buf[..n].copy_from_slice(&data[at..at + n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}

/// Opens a sealed file: parses and checks its trailer (never trusting a
/// count or size before checking it against the file), and returns the
/// segment with a reader over its uncompressed bytes. With `reads`, the
/// reader shares the log's frame cache and pool of open files; without, it
/// holds its own descriptor and caches only the last frame read.
pub(crate) fn open_sealed(
    storage: &dyn Storage,
    path: &Path,
    number: Option<u64>,
    reads: Option<&SealedReads>,
) -> Result<Segment> {
    let file = storage
        .open_read(path)
        .map_err(|e| Error::io("open", path, e))?;
    let file_len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let t = read_trailer(&*file, path, file_len)?;
    let trailer_fault = |detail: String| {
        Error::corrupt(path, t.data_len, None, Corruption::SealedTrailer { detail })
    };
    // A file taken out of its log may have any name: then trust its index.
    let number = number.unwrap_or(t.index.header.segment);
    if t.index.header.segment != number {
        return Err(trailer_fault(format!(
            "holds segment {}, the file is named for {number}",
            t.index.header.segment
        )));
    }
    let len = t.index.uncompressed_len;
    if t.frames
        .first()
        .is_none_or(|f| u64::from(f.size) < SEGMENT_HEADER_LEN as u64)
        || t.index
            .points
            .iter()
            .any(|p| p.offset >= len || p.offset < SEGMENT_HEADER_LEN as u64)
    {
        return Err(trailer_fault("index points outside the segment".into()));
    }
    let (file, cache): (Arc<dyn ReadFile>, _) = match reads {
        Some(r) => {
            r.files.adopt(path, file);
            let pooled = PooledFile {
                pool: r.files.clone(),
                path: path.to_path_buf(),
                len: file_len,
            };
            (Arc::new(pooled), Some(r.cache.clone()))
        }
        None => (file, None),
    };
    let frame_starts = t.frames.iter().map(|f| f.offset).collect();
    let reader = SealedReader {
        file,
        segment: number,
        frames: t.frames,
        len,
        cache,
        last: Mutex::new(None),
        streams: Streams::default(),
    };
    let sparse = SparseIndex {
        entries: t
            .index
            .points
            .iter()
            .map(|p| IndexEntry {
                seq: p.seq,
                timestamp_ns: p.timestamp_ns,
                offset: p.offset,
            })
            .collect(),
        complete: true,
    };
    Ok(Segment {
        number,
        path: path.to_path_buf(),
        header: t.index.header.clone(),
        file: Arc::new(reader),
        index: RwLock::new(sparse),
        sealed: Some(SealedMeta {
            index: t.index,
            compressed_len: file_len,
            data_len: t.data_len,
            frame_starts,
        }),
    })
}

/// What a sealed file's trailer says, checked against the file's size and
/// against itself.
struct Trailer {
    frames: Vec<ZFrame>,
    index: SealedIndex,
    /// Bytes of zstd data frames (where the index frame begins).
    data_len: u64,
}

/// Reads the seek table from the end of the file and the index frame
/// before it, never trusting a count or size before checking it against
/// the file's length.
fn read_trailer(file: &dyn ReadFile, path: &Path, file_len: u64) -> Result<Trailer> {
    let bad = |offset: u64, what: Corruption| Error::corrupt(path, offset, None, what);
    let read = |offset: u64, len: u64| -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len as usize];
        let got = file
            .read_full_at(&mut buf, offset)
            .map_err(|e| Error::io("read", path, e))?;
        buf.truncate(got);
        Ok(buf)
    };
    let footer_at = file_len.saturating_sub(SEEK_FOOTER_LEN as u64);
    let footer = read(footer_at, file_len.min(SEEK_FOOTER_LEN as u64))?;
    let table_len = seek_table_len(&footer, file_len).map_err(|w| bad(footer_at, w))?;
    let table_at = file_len - table_len;
    let seek = decode_seek_table(&read(table_at, table_len)?).map_err(|w| bad(table_at, w))?;
    let mut frames = Vec::with_capacity(seek.len());
    let (mut compressed_offset, mut offset) = (0u64, 0u64);
    for e in &seek {
        frames.push(ZFrame {
            compressed_offset,
            compressed_size: e.compressed_size,
            offset,
            size: e.decompressed_size,
        });
        compressed_offset += u64::from(e.compressed_size);
        offset += u64::from(e.decompressed_size);
    }
    // The index frame sits between the last data frame and the seek table.
    if compressed_offset + 8 > table_at {
        return Err(bad(
            table_at,
            Corruption::SealedTrailer {
                detail: format!(
                    "frames claim {compressed_offset} bytes, only {table_at} precede the seek table"
                ),
            },
        ));
    }
    let index_bytes = read(compressed_offset, table_at - compressed_offset)?;
    let index = SealedIndex::decode(&index_bytes).map_err(|w| bad(compressed_offset, w))?;
    if index.uncompressed_len != offset {
        return Err(bad(
            compressed_offset,
            Corruption::SealedTrailer {
                detail: format!(
                    "index says {} uncompressed bytes, seek table {offset}",
                    index.uncompressed_len
                ),
            },
        ));
    }
    Ok(Trailer {
        frames,
        index,
        data_len: compressed_offset,
    })
}

/// BLAKE3 of a sealed file's data frames, read in chunks.
pub(crate) fn compressed_digest(
    storage: &dyn Storage,
    seg: &Segment,
    data_len: u64,
) -> Result<Hash> {
    let file = storage
        .open_read(&seg.path)
        .map_err(|e| Error::io("open", &seg.path, e))?;
    let mut h = blake3::Hasher::new();
    read_chunks(&*file, &seg.path, 0, data_len, &mut |chunk| {
        h.update(chunk);
        Ok(true)
    })?;
    Ok(h.finalize().into())
}
