//! What a crate that extends the engine needs of a log directory's files
//! beyond the handle (`Log`) and the format (`format`): the off-host copy
//! crate (`wormlog-s3`) uses these to bound what it ships and to make a
//! restored copy a log again. Each reads or writes files as the engine
//! does, so an extension never re-implements a format rule.

use crate::error::{Error, Result};
use crate::format::names::sealed_file_name;
use crate::format::ChainPos;
use crate::sealed::open_sealed;
use crate::segment::Segment;
use crate::storage::FsStorage;
use std::path::Path;

/// The last seq sealed file `number` in `dir` holds, from its index (the
/// file's records are not read). Every record up to it is durable: a
/// sealed file is synced before it is renamed into place.
pub fn sealed_last_seq(dir: &Path, number: u64) -> Result<u64> {
    let path = dir.join(sealed_file_name(number));
    let sealed = open_sealed(&FsStorage, &path, Some(number), None)?;
    Ok(sealed.sealed.map_or(0, |m| m.index.last_seq))
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
