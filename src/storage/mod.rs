//! All file I/O goes through [`Storage`], so that tests can swap the real
//! file system ([`FsStorage`]) for one that loses unsynced bytes, tears
//! writes and fails any call on demand ([`MemStorage`]).

mod fs;
mod mem;
mod pool;

pub use fs::FsStorage;
pub use mem::{MemStorage, Op, SplitMix, Tear};
pub(crate) use pool::{FilePool, PooledFile};

use crate::format::names::parse_sealed_file_name;
use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The file-system operations the engine uses, and no others.
pub trait Storage: Send + Sync + Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// `Ok(false)` when `dir` does not exist.
    fn dir_exists(&self, dir: &Path) -> io::Result<bool>;
    /// Names (not paths) of the entries in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a new file for appending; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Opens an existing file for appending (O_APPEND).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes write permission away from everyone (mode 0444).
    fn set_readonly(&self, path: &Path) -> io::Result<()>;
    /// Sets or clears the file system's immutable attribute, which stops even
    /// root from writing, renaming or deleting the file (Linux
    /// FS_IOC_SETFLAGS; needs CAP_LINUX_IMMUTABLE).
    fn set_immutable(&self, path: &Path, on: bool) -> io::Result<()>;
    /// Takes the exclusive writer lock of `dir`. Fails with
    /// `ErrorKind::WouldBlock` while another holder has it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn DirLock>>;
}

/// A file opened for appending.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a collection's
pub trait WriteFile: Send + Sync {
    /// Writes all of `buf` at the end of the file.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// fdatasync: the file's data (and size) are durable when this returns Ok.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (used only by recovery, before any append).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
}

/// A file opened for positional reads; shared by readers.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a collection's
pub trait ReadFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn len(&self) -> io::Result<u64>;

    /// Fills `buf` from `offset`, or returns how many bytes were available.
    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Held while a log is open for writing; dropping it releases the lock.
pub trait DirLock: Send + Sync {}

/// Opens one of the engine's writable files (a raw segment, the anchor file)
/// to append. A sealed file is never opened for writing: only a bug in the
/// engine could ask for it, and it must not get it.
pub(crate) fn open_append(storage: &dyn Storage, path: &Path) -> crate::Result<Box<dyn WriteFile>> {
    assert!(
        path.file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| parse_sealed_file_name(n).is_none()),
        "a sealed file is never opened for writing: {}",
        path.display()
    );
    storage
        .open_append(path)
        .map_err(|e| crate::Error::io("open", path, e))
}

/// Calls `each` with bytes `from..to` of `file` (the file at `path`), a
/// mebibyte at a time, until it returns false or the file ends.
pub(crate) fn read_chunks(
    file: &dyn ReadFile,
    path: &Path,
    from: u64,
    to: u64,
    each: &mut dyn FnMut(&[u8]) -> crate::Result<bool>,
) -> crate::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut chunk = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK) as usize;
        let got = file
            .read_full_at(&mut chunk[..n], at)
            .map_err(|e| crate::Error::io("read", path, e))?;
        if !each(&chunk[..got])? || got < n {
            break;
        }
        at += n as u64;
    }
    Ok(())
}

/// Puts `bytes` at `path` atomically: written to `tmp` (a leftover from an
/// interrupted attempt is replaced), fdatasync'ed, renamed over `path`, and
/// the directory fsync'ed, so `path` never names a torn file.
pub(crate) fn write_atomically(
    storage: &dyn Storage,
    dir: &Path,
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
) -> crate::Result<()> {
    use crate::Error;
    match storage.remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(Error::io("remove", tmp, e)),
        _ => {}
    }
    let mut file = storage
        .create_new(tmp)
        .map_err(|e| Error::io("create", tmp, e))?;
    file.append(bytes).map_err(|e| Error::io("write", tmp, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", tmp, e))?;
    drop(file);
    storage
        .rename(tmp, path)
        .map_err(|e| Error::io("rename", tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates `dest` holding what `fill` appends, and makes it durable (its
/// data, then its directory entry). A file left at `dest` by an earlier,
/// interrupted try is replaced. If any step fails the new file is removed
/// again: recovery writes these copies before it changes anything, so a
/// copy that could not be finished (on a full disk, most often) would
/// otherwise stay behind as debris, one for each failed open.
pub(crate) fn write_new_file(
    storage: &dyn Storage,
    dest: &Path,
    fill: &mut dyn FnMut(&mut dyn WriteFile) -> crate::Result<()>,
) -> crate::Result<()> {
    use crate::Error;
    let mut out = match storage.create_new(dest) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            storage
                .remove_file(dest)
                .map_err(|e| Error::io("remove", dest, e))?;
            storage
                .create_new(dest)
                .map_err(|e| Error::io("create", dest, e))?
        }
        Err(e) => return Err(Error::io("create", dest, e)),
    };
    let dir = dest.parent().unwrap_or(Path::new("."));
    let written = fill(&mut *out)
        .and_then(|()| out.sync_data().map_err(|e| Error::io("fdatasync", dest, e)))
        .and_then(|()| {
            storage
                .sync_dir(dir)
                .map_err(|e| Error::io("fsync directory", dir, e))
        });
    if written.is_err() {
        drop(out);
        // The first error is the one to report; a removal that fails too
        // leaves a file the next try replaces.
        let _ = storage.remove_file(dest);
        let _ = storage.sync_dir(dir);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "a sealed file is never opened for writing")]
    fn a_sealed_file_is_never_opened_for_writing() {
        let storage = MemStorage::new();
        let path = Path::new("/log").join(crate::format::names::sealed_file_name(3));
        storage.create_dir_all(Path::new("/log")).unwrap();
        storage.create_new(&path).unwrap();
        let _ = open_append(&storage, &path);
    }

    #[test]
    fn a_raw_segment_opens_for_appending() {
        let storage = MemStorage::new();
        let path = Path::new("/log").join(crate::format::names::segment_file_name(3));
        storage.create_dir_all(Path::new("/log")).unwrap();
        storage.create_new(&path).unwrap();
        assert!(open_append(&storage, &path).is_ok());
    }
}
