//! Sealing: a closed segment becomes a read-only Zstandard file in the
//! seekable format (format-spec.md, "Sealed segment file"). Reading sealed
//! files back is sealed.rs.

use crate::error::{Error, Result};
use crate::format::names::{sealed_file_name, TMP_SUFFIX};
use crate::format::{
    encode_seek_table, FrameRef, Hash, IndexPoint, SealedIndex, SeekEntry, INDEX_POINT_INTERVAL,
    SEALED_FRAME_BYTES_MAX,
};
use crate::options::SealSettings;
use crate::sealed::{open_sealed, SealedReads};
use crate::segment::Segment;
use crate::shared::Shared;
use crate::storage::Storage;
use crate::walk::{BatchedDigest, Check, FrameWalker};
use std::io;
use std::path::Path;
use std::sync::Arc;

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
    built.index.compressed_digest = compressed_digest.finalize().into();
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
    match storage.remove_file(&seg.path) {
        // An earlier attempt removed it and then failed to sync the
        // directory: the segment is still listed raw, its file is gone (the
        // open handle read it all the same), and the sealed file holds it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => other.map_err(|e| Error::io("remove", &seg.path, e))?,
    }
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

/// Whole records gathered into zstd frames of about `frame_bytes` of input,
/// with an index point at each frame's first record and at least every
/// `INDEX_POINT_INTERVAL` bytes.
struct FrameBuilder<'a> {
    compressor: zstd::bulk::Compressor<'static>,
    frame_bytes: usize,
    pending: Vec<u8>,
    seek: Vec<SeekEntry>,
    points: Vec<IndexPoint>,
    path: &'a Path,
}

impl FrameBuilder<'_> {
    fn push(
        &mut self,
        offset: u64,
        f: &FrameRef<'_>,
        emit: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let starts_frame = self.pending.is_empty();
        let due = self
            .points
            .last()
            .is_none_or(|p| offset >= p.offset + INDEX_POINT_INTERVAL);
        if starts_frame || due {
            self.points.push(IndexPoint {
                seq: f.seq,
                timestamp_ns: f.timestamp_ns,
                offset,
            });
        }
        self.pending.extend_from_slice(f.raw);
        if self.pending.len() >= self.frame_bytes {
            self.flush(emit)?;
        }
        Ok(())
    }

    fn flush(&mut self, emit: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let compressed = self
            .compressor
            .compress(&self.pending)
            .map_err(|e| Error::io("zstd compress", self.path, e))?;
        emit(&compressed)?;
        self.seek.push(SeekEntry {
            compressed_size: compressed.len() as u32,
            decompressed_size: self.pending.len() as u32,
        });
        self.pending.clear();
        Ok(())
    }
}

/// Reads the segment frame by frame and emits compressed zstd frames of
/// whole records, about `frame_bytes` of input each. The walk checks seqs
/// and the seal record (not the chain: verification does that), so damage
/// is never sealed in.
fn compress_frames(
    seg: &Segment,
    settings: SealSettings,
    emit: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Built> {
    let len = seg.file_len()?;
    let mut out = FrameBuilder {
        compressor: zstd::bulk::Compressor::new(settings.level)
            .map_err(|e| Error::io("zstd init", &seg.path, e))?,
        frame_bytes: settings.frame_bytes,
        pending: seg.header.encode().to_vec(),
        seek: Vec::new(),
        points: Vec::new(),
        path: &seg.path,
    };
    let mut walk = FrameWalker::segment(seg.file.clone(), &seg.header, len, Check::Seq)
        .digest_from(BatchedDigest::of_header(&seg.header), 0)
        .checking_seal(seg.number);
    loop {
        let expected = walk.at().next_seq();
        match walk.next() {
            Ok(Some((offset, f))) => out.push(offset, &f, emit)?,
            Ok(None) => break,
            Err(e) => return Err(e.into_error(&seg.path, Some(expected))),
        }
    }
    if !out.pending.is_empty() || out.seek.is_empty() {
        out.flush(emit)?;
    }
    debug_assert!(out
        .seek
        .iter()
        .all(|e| e.decompressed_size <= SEALED_FRAME_BYTES_MAX));
    let last = walk.at();
    Ok(Built {
        index: SealedIndex {
            header: seg.header.clone(),
            uncompressed_len: walk.offset(),
            record_count: walk.records(),
            last_seq: last.seq,
            last_hash: last.hash,
            last_timestamp_ns: last.timestamp_ns,
            compressed_digest: Hash::ZERO,
            points: out.points,
        },
        seek: out.seek,
    })
}

/// Seals every closed raw segment, oldest first, replacing each in the
/// segment list once its sealed file is in place. Readers holding the raw
/// segment keep reading it (an unlinked file stays readable while open).
pub(crate) fn seal_closed_segments(shared: &Shared) -> Result<usize> {
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
