//! What a crate that extends the engine needs of a log directory's files
//! beyond the handle (`Log`) and the format (`format`): the off-host copy
//! crate (`wormlog-s3`) uses these to bound what it ships and to make a
//! restored copy a log again. Each reads or writes files as the engine
//! does, so an extension never re-implements a format rule.

use crate::error::{Error, Result};
use crate::format::names::{sealed_file_name, segment_file_name};
use crate::format::{ChainPos, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::sealed::open_sealed;
use crate::segment::Segment;
use crate::storage::FsStorage;
use crate::storage::Storage;
use crate::walk::FrameWalker;
use std::path::Path;

/// The last seq sealed file `number` in `dir` holds, from its index (the
/// file's records are not read). Every record up to it is durable: a
/// sealed file is synced before it is renamed into place.
pub fn sealed_last_seq(dir: &Path, number: u64) -> Result<u64> {
    Ok(sealed_last(dir, number)?.0)
}

/// The last seq sealed file `number` in `dir` holds and its commit time,
/// from its index.
pub fn sealed_last(dir: &Path, number: u64) -> Result<(u64, u64)> {
    let path = dir.join(sealed_file_name(number));
    let sealed = open_sealed(&FsStorage, &path, Some(number), None)?;
    Ok(sealed
        .sealed
        .map_or((0, 0), |m| (m.index.last_seq, m.index.last_timestamp_ns)))
}

/// Makes `dir`, holding sealed files restored from a copy whose newest is
/// `number` and ends at `head`, a log a writer can open and append to: it
/// creates the active segment after that file, continuing its chain, with
/// creation time `now_ns` (no earlier than `head`'s time). Fails if the
/// active segment exists already.
pub fn create_active_after(dir: &Path, number: u64, head: ChainPos, now_ns: u64) -> Result<()> {
    let path = dir.join(sealed_file_name(number));
    let sealed = open_sealed(&FsStorage, &path, Some(number), None)?;
    if sealed.sealed.is_none() {
        return Err(Error::io(
            "open",
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a sealed file"),
        ));
    }
    let header = sealed.header.successor(head, now_ns.max(head.timestamp_ns));
    Segment::create_active(&FsStorage, dir, header)?;
    Ok(())
}

/// How far raw segment `number` in `dir` holds whole frames from `from`
/// (0, or the end of a frame): the end of the last frame that passes its
/// own checks (length, CRC, fields), its header included, made durable
/// (an fdatasync after the scan) before it is returned. What a shipper may
/// copy of an active segment while it is written: a frame being written, a
/// torn one, or zeros written ahead are not whole; and a byte shipped that
/// a power cut could still take from this host would let the copy hold
/// records the log then writes anew (format-spec.md §6, §15.6).
pub fn whole_frames_end(dir: &Path, number: u64, from: u64) -> Result<u64> {
    let Some(Raw {
        path,
        file,
        len,
        header,
    }) = open_raw(dir, number)?
    else {
        return Ok(0);
    };
    let start = from.max(SEGMENT_HEADER_LEN as u64);
    let mut walk = FrameWalker::new(file, start, len).of_version(header.version);
    while let Ok(Some(_)) = walk.next() {}
    let end = walk.offset();
    if end > start {
        std::fs::File::open(&path)
            .and_then(|f| f.sync_data())
            .map_err(|e| Error::io("fdatasync", &path, e))?;
    }
    Ok(end)
}

/// The last whole record of raw segment `number` in `dir` that ends at or
/// before byte `end`: its seq and commit time (`None` if none does). What a
/// shipper's tail objects reach.
pub fn last_record_within(dir: &Path, number: u64, end: u64) -> Result<Option<(u64, u64)>> {
    let Some(Raw {
        file, len, header, ..
    }) = open_raw(dir, number)?
    else {
        return Ok(None);
    };
    let mut walk =
        FrameWalker::new(file, SEGMENT_HEADER_LEN as u64, len.min(end)).of_version(header.version);
    let mut last = None;
    while let Ok(Some((_, f))) = walk.next() {
        let h = f.head();
        last = Some((h.seq, h.timestamp_ns));
    }
    Ok(last)
}

/// A raw segment file opened to read, with its length and header.
struct Raw {
    path: std::path::PathBuf,
    file: std::sync::Arc<dyn crate::storage::ReadFile>,
    len: u64,
    header: SegmentHeader,
}

/// Raw segment `number` of `dir`; `None` if it is shorter than a header.
fn open_raw(dir: &Path, number: u64) -> Result<Option<Raw>> {
    let path = dir.join(segment_file_name(number));
    let file = FsStorage
        .open_read(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    if len < SEGMENT_HEADER_LEN as u64 {
        return Ok(None);
    }
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    file.read_full_at(&mut head, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    let header =
        SegmentHeader::decode(&head).map_err(|what| Error::corrupt(&path, 0, None, what))?;
    Ok(Some(Raw {
        path,
        file,
        len,
        header,
    }))
}
