//! The forward-secure sealing key file (`wormlog.fss`, format-spec.md,
//! "Forward-secure sealing"): loaded at open and replaced, atomically and
//! readable by its owner alone, each time the key evolves.

use crate::error::{Error, Result};
use crate::format::names::{
    FSS_KEY_FILE, FSS_KEY_TMP_FILE, FSS_NEXT_KEY_FILE, FSS_NEXT_KEY_TMP_FILE,
};
use crate::format::FssKeyFile;
use crate::storage::Storage;
use std::io;
use std::path::Path;

/// Only the writer's user may read the sealing key.
const KEY_FILE_MODE: u32 = 0o600;

/// The sealing key file, if forward-secure sealing is set up.
pub(crate) fn load(storage: &dyn Storage, dir: &Path) -> Result<Option<FssKeyFile>> {
    load_named(storage, dir, FSS_KEY_FILE)
}

/// A rotation's new key, while the rotation is unfinished (`store_next`).
pub(crate) fn load_next(storage: &dyn Storage, dir: &Path) -> Result<Option<FssKeyFile>> {
    load_named(storage, dir, FSS_NEXT_KEY_FILE)
}

/// Keeps a rotation's new key beside the old one until the old key's final
/// tag is durable (format-spec.md 10a, "Re-keying"): the old key must
/// still be there to make it after a crash.
pub(crate) fn store_next(storage: &dyn Storage, dir: &Path, key: &FssKeyFile) -> Result<()> {
    store_named(
        storage,
        dir,
        (FSS_NEXT_KEY_TMP_FILE, FSS_NEXT_KEY_FILE),
        key,
    )
}

/// Ends a rotation: the new key replaces the old one, then its interim
/// file goes.
pub(crate) fn install_next(storage: &dyn Storage, dir: &Path, key: &FssKeyFile) -> Result<()> {
    store(storage, dir, key)?;
    remove_next(storage, dir)
}

/// Removes a rotation's interim key file (and syncs the directory).
pub(crate) fn remove_next(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let path = dir.join(FSS_NEXT_KEY_FILE);
    match storage.remove_file(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(|e| Error::io("remove", &path, e))?,
    }
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

fn load_named(storage: &dyn Storage, dir: &Path, name: &str) -> Result<Option<FssKeyFile>> {
    let path = dir.join(name);
    let file = match storage.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    // One byte more than a key file: a longer file is not one.
    let mut buf = [0u8; crate::format::FSS_KEY_FILE_LEN + 1];
    let n = file
        .read_full_at(&mut buf, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    FssKeyFile::decode(&buf[..n])
        .map(Some)
        .map_err(|what| Error::corrupt(&path, 0, None, what))
}

/// Replaces the key file with `key`: written under a temporary name made
/// owner-only before the key is in it, fdatasynced, renamed over the old
/// one and the directory fsynced. A crash leaves the old key or the new
/// one, never neither; the old one's bytes are gone from the file system's
/// namespace (the blocks that held them may survive on the device until
/// reused: full-disk encryption covers that).
pub(crate) fn store(storage: &dyn Storage, dir: &Path, key: &FssKeyFile) -> Result<()> {
    store_named(storage, dir, (FSS_KEY_TMP_FILE, FSS_KEY_FILE), key)
}

fn store_named(
    storage: &dyn Storage,
    dir: &Path,
    (tmp, path): (&str, &str),
    key: &FssKeyFile,
) -> Result<()> {
    let tmp = dir.join(tmp);
    let path = dir.join(path);
    match storage.remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io("remove", &tmp, e)),
        _ => {}
    }
    let mut f = storage
        .create_new(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    storage
        .set_mode(&tmp, KEY_FILE_MODE)
        .map_err(|e| Error::io("chmod 0600", &tmp, e))?;
    f.append(&key.encode())
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
    drop(f);
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}
