//! Sealing: a closed segment becomes a read-only Zstandard file in the
//! seekable format (format-spec.md, "Sealed segment file"), and sealed files
//! are read back one frame at a time through a bounded cache.

use crate::error::{Corruption, Error, Result};
use crate::format::{
    decode_seek_table, encode_seek_table, hex, seek_table_len, IndexPoint, RecordKind, SealedIndex,
    SeekEntry, SystemEvent, SEALED_FRAME_BYTES_MAX, SEEK_FOOTER_LEN, SEGMENT_HEADER_LEN,
};
use crate::segment::{
    sealed_file_name, BatchedDigest, FrameScanner, IndexEntry, Segment, SparseIndex, TMP_SUFFIX,
};
use crate::storage::{FilePool, PooledFile, ReadFile, Storage};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An index point at least every this many uncompressed bytes.
const INDEX_POINT_INTERVAL: u64 = 64 << 10;

/// How closed segments are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// A background thread seals each segment after it rolls; appends go on
    /// into the next segment meanwhile.
    Background,
    /// The writer seals a segment as it rolls, before the next append returns
    /// (deterministic; for tests and tools).
    Inline,
    /// Closed segments stay uncompressed until `Log::seal` is called.
    Manual,
}

/// What a sealed file's trailer says, kept in memory while it is open.
#[derive(Debug, Clone)]
pub(crate) struct SealedMeta {
    pub index: SealedIndex,
    pub compressed_len: u64,
    /// Bytes of zstd data frames (where the index frame begins).
    pub data_len: u64,
}

/// Damage found while decompressing a sealed file, carried inside an
/// `io::Error` through the `ReadFile` trait and turned back into
/// `Error::Corrupt` by [`io_to_error`].
#[derive(Debug)]
pub(crate) struct SealedDamage {
    pub frame: u64,
    pub offset: u64,
    pub detail: String,
}

impl std::fmt::Display for SealedDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sealed frame {} at offset {}: {}",
            self.frame, self.offset, self.detail
        )
    }
}

impl std::error::Error for SealedDamage {}

/// Maps a read error to `Error::Corrupt` when it is damage in a sealed file.
pub(crate) fn io_to_error(path: &Path, seq: Option<u64>, e: io::Error) -> Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<SealedDamage>()) {
        Some(d) => Error::corrupt(
            path,
            d.offset,
            seq,
            Corruption::SealedFrame {
                frame: d.frame,
                detail: d.detail.clone(),
            },
        ),
        None => Error::io("read", path, e),
    }
}

/// Decompressed frames of sealed files, least recently used evicted first,
/// bounded in bytes, plus the frame stored last whatever its size (so a
/// sequential scan decompresses each frame once even when the cache is too
/// small to hold one). Shared by all sealed segments of a log: nothing is
/// kept per segment, so memory does not grow with the number of segments.
#[derive(Debug)]
pub(crate) struct FrameCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
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
}

impl SealedReader {
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
        let damage = |detail: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                SealedDamage {
                    frame: i as u64,
                    offset: f.compressed_offset,
                    detail,
                },
            )
        };
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
    let trailer_fault =
        |detail: String| bad(compressed_offset, Corruption::SealedTrailer { detail });
    if index.uncompressed_len != offset {
        return Err(trailer_fault(format!(
            "index says {} uncompressed bytes, seek table {offset}",
            index.uncompressed_len
        )));
    }
    // A file taken out of its log may have any name: then trust its index.
    let number = number.unwrap_or(index.header.segment);
    if index.header.segment != number {
        return Err(trailer_fault(format!(
            "holds segment {}, the file is named for {number}",
            index.header.segment
        )));
    }
    if frames
        .first()
        .is_none_or(|f| u64::from(f.size) < SEGMENT_HEADER_LEN as u64)
        || index
            .points
            .iter()
            .any(|p| p.offset >= offset || p.offset < SEGMENT_HEADER_LEN as u64)
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
    let reader = SealedReader {
        file,
        segment: number,
        frames,
        len: offset,
        cache,
        last: Mutex::new(None),
    };
    let sparse = SparseIndex {
        entries: index
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
        header: index.header.clone(),
        file: Arc::new(reader),
        index: RwLock::new(sparse),
        sealed: Some(SealedMeta {
            index,
            compressed_len: file_len,
            data_len: compressed_offset,
        }),
    })
}

/// Settings for [`seal_segment`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealSettings {
    pub level: i32,
    pub frame_bytes: usize,
    pub immutable: bool,
}

/// Compresses a closed raw segment into its sealed file and removes the raw
/// file. Crash-safe at every step: the sealed file is written under a
/// temporary name, synced, made read-only and renamed into place (and the
/// directory synced) before the raw file is removed, so either the raw file
/// or a complete sealed file (or both) exists at any moment.
///
/// The segment's frames are checked as they are read (CRC, contiguous seqs,
/// and the seal record's digest), so damage is never sealed in.
pub(crate) fn seal_segment(
    storage: &dyn Storage,
    dir: &Path,
    seg: &Segment,
    settings: SealSettings,
    reads: Option<&SealedReads>,
) -> Result<Segment> {
    debug_assert!(
        seg.sealed.is_none(),
        "a sealed segment is never sealed again"
    );
    let final_path = dir.join(sealed_file_name(seg.number));
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", sealed_file_name(seg.number)));
    // A temporary file left by an interrupted attempt is started over.
    match storage.remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io("remove", &tmp, e));
        }
        _ => {}
    }
    let mut out = storage
        .create_new(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let mut compressed_digest = blake3::Hasher::new();
    let mut built = compress_frames(seg, settings, &mut |bytes: &[u8]| {
        compressed_digest.update(bytes);
        out.append(bytes).map_err(|e| Error::io("write", &tmp, e))
    })?;
    built.index.compressed_digest = *compressed_digest.finalize().as_bytes();
    out.append(&built.index.encode())
        .map_err(|e| Error::io("write", &tmp, e))?;
    out.append(&encode_seek_table(&built.seek))
        .map_err(|e| Error::io("write", &tmp, e))?;
    out.sync_data()
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    drop(out);
    storage
        .set_readonly(&tmp)
        .map_err(|e| Error::io("chmod 0444", &tmp, e))?;
    storage
        .rename(&tmp, &final_path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    if settings.immutable {
        set_immutable_if_permitted(storage, &final_path, true)?;
    }
    storage
        .remove_file(&seg.path)
        .map_err(|e| Error::io("remove", &seg.path, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    open_sealed(storage, &final_path, Some(seg.number), reads)
}

/// Sets or clears the immutable attribute; where the process lacks the
/// capability or the file system lacks the attribute, does nothing.
pub(crate) fn set_immutable_if_permitted(
    storage: &dyn Storage,
    path: &Path,
    on: bool,
) -> Result<()> {
    match storage.set_immutable(path, on) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
            ) || matches!(e.raw_os_error(), Some(1 | 25 | 95)) =>
        {
            // EPERM, ENOTTY, EOPNOTSUPP: not ours to set here.
            Ok(())
        }
        Err(e) => Err(Error::io("set immutable attribute", path, e)),
    }
}

struct Built {
    index: SealedIndex,
    seek: Vec<SeekEntry>,
}

/// Reads the segment frame by frame and emits compressed zstd frames of
/// whole records, about `frame_bytes` of input each.
fn compress_frames(
    seg: &Segment,
    settings: SealSettings,
    emit: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Built> {
    let len = seg.file_len()?;
    let header_bytes = seg.header.encode();
    let mut compressor = zstd::bulk::Compressor::new(settings.level)
        .map_err(|e| Error::io("zstd init", &seg.path, e))?;
    let mut seek = Vec::new();
    let mut points: Vec<IndexPoint> = Vec::new();
    let mut pending: Vec<u8> = header_bytes.to_vec();
    let mut digest = BatchedDigest::new();
    digest.update(&header_bytes);
    let mut flush = |pending: &mut Vec<u8>, seek: &mut Vec<SeekEntry>| -> Result<()> {
        let compressed = compressor
            .compress(pending)
            .map_err(|e| Error::io("zstd compress", &seg.path, e))?;
        emit(&compressed)?;
        seek.push(SeekEntry {
            compressed_size: compressed.len() as u32,
            decompressed_size: pending.len() as u32,
        });
        pending.clear();
        Ok(())
    };
    let mut expected = seg.header.first_seq;
    let (mut last_seq, mut last_hash, mut last_ts) = (
        seg.header.first_seq - 1,
        seg.header.prev_hash,
        seg.header.created_ns,
    );
    let mut records = 0u64;
    let mut sealed_at: Option<u64> = None;
    let mut scan = FrameScanner::new(seg.file.clone(), SEGMENT_HEADER_LEN as u64, len);
    loop {
        let (offset, f) = match scan.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Err(e.into_error(&seg.path, Some(expected))),
        };
        let bad = |what| Err(Error::corrupt(&seg.path, offset, Some(expected), what));
        if f.seq != expected {
            return bad(Corruption::SeqGap {
                expected,
                found: f.seq,
            });
        }
        if let Some(at) = sealed_at {
            return bad(Corruption::SealMismatch {
                detail: format!("record after the seal record at offset {at}"),
            });
        }
        if f.kind == RecordKind::Sealed {
            if let Err(what) = check_seal_record(
                f.payload,
                seg,
                records,
                last_seq,
                &last_hash,
                offset,
                digest.hasher(),
            ) {
                return bad(what);
            }
            sealed_at = Some(offset);
        }
        digest.update(f.raw);
        let starts_frame = pending.is_empty();
        let due = points
            .last()
            .is_none_or(|p| offset >= p.offset + INDEX_POINT_INTERVAL);
        if starts_frame || due {
            points.push(IndexPoint {
                seq: f.seq,
                timestamp_ns: f.timestamp_ns,
                offset,
            });
        }
        pending.extend_from_slice(f.raw);
        (last_seq, last_hash, last_ts) = (f.seq, f.hash, f.timestamp_ns);
        records += 1;
        expected += 1;
        if pending.len() >= settings.frame_bytes {
            flush(&mut pending, &mut seek)?;
        }
    }
    if !pending.is_empty() || seek.is_empty() {
        flush(&mut pending, &mut seek)?;
    }
    debug_assert!(seek
        .iter()
        .all(|e| e.decompressed_size <= SEALED_FRAME_BYTES_MAX));
    Ok(Built {
        index: SealedIndex {
            header: seg.header.clone(),
            uncompressed_len: scan.offset(),
            record_count: records,
            last_seq,
            last_hash,
            last_timestamp_ns: last_ts,
            compressed_digest: [0; 32],
            points,
        },
        seek,
    })
}

/// A seal record must describe exactly the records and bytes before it.
pub(crate) fn check_seal_record(
    payload: &[u8],
    seg: &Segment,
    records: u64,
    last_seq: u64,
    last_hash: &[u8; 32],
    offset: u64,
    digest: &blake3::Hasher,
) -> std::result::Result<(), Corruption> {
    let event = SystemEvent::decode(RecordKind::Sealed, payload).unwrap_or_else(|| {
        Err(Corruption::SealMismatch {
            detail: "not a seal record".into(),
        })
    })?;
    let SystemEvent::Sealed {
        segment,
        records: r,
        last_seq: ls,
        last_hash: lh,
        bytes,
        digest: d,
    } = event
    else {
        return Err(Corruption::SealMismatch {
            detail: "not a seal record".into(),
        });
    };
    let computed = *digest.finalize().as_bytes();
    let mismatch = if segment != seg.number {
        Some(format!("names segment {segment}"))
    } else if r != records || ls != last_seq || &lh != last_hash {
        Some(format!(
            "says {r} records through seq {ls}, segment has {records} through {last_seq}"
        ))
    } else if bytes != offset {
        Some(format!(
            "covers {bytes} bytes, the seal record is at {offset}"
        ))
    } else if d != computed {
        Some(format!(
            "segment digest {} but the bytes hash to {}",
            hex(&d),
            hex(&computed)
        ))
    } else {
        None
    };
    match mismatch {
        Some(detail) => Err(Corruption::SealMismatch { detail }),
        None => Ok(()),
    }
}

/// Seals every closed raw segment, oldest first, replacing each in the
/// segment list once its sealed file is in place. Readers holding the raw
/// segment keep reading it (an unlinked file stays readable while open).
pub(crate) fn seal_closed_segments(shared: &crate::log::Shared) -> Result<usize> {
    let _one_sealer = shared.seal_lock.lock();
    let mut sealed = 0;
    loop {
        let next = {
            let segs = shared.segments.read();
            let active = segs.last().map(|s| s.number);
            segs.iter()
                .find(|s| s.sealed.is_none() && Some(s.number) != active)
                .cloned()
        };
        let Some(seg) = next else {
            return Ok(sealed);
        };
        let done = seal_segment(
            &*shared.options.storage,
            &shared.dir,
            &seg,
            shared.options.seal_settings(),
            Some(&shared.reads),
        )?;
        let mut segs = shared.segments.write();
        if let Some(slot) = segs.iter_mut().find(|s| s.number == seg.number) {
            *slot = Arc::new(done);
        }
        sealed += 1;
    }
}

/// BLAKE3 of a sealed file's data frames, read in chunks.
pub(crate) fn compressed_digest(
    storage: &dyn Storage,
    seg: &Segment,
    data_len: u64,
) -> Result<[u8; 32]> {
    let file = storage
        .open_read(&seg.path)
        .map_err(|e| Error::io("open", &seg.path, e))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < data_len {
        let n = (data_len - at).min(buf.len() as u64) as usize;
        let got = file
            .read_full_at(&mut buf[..n], at)
            .map_err(|e| Error::io("read", &seg.path, e))?;
        h.update(&buf[..got]);
        if got < n {
            break;
        }
        at += n as u64;
    }
    Ok(*h.finalize().as_bytes())
}
