//! All file I/O goes through [`Storage`], so that tests can swap the real
//! file system ([`FsStorage`]) for one that loses unsynced bytes, tears
//! writes and fails any call on demand ([`MemStorage`]).
//!
//! **Unstable** beyond `Options::storage(Arc::new(MemStorage::new()))`,
//! `MemStorage`'s crash images and fault injection, and `Tear`: the trait's
//! methods follow what the engine needs.

mod fs;
mod mem;
mod pool;

pub use fs::FsStorage;
pub use mem::{Entries, MemStorage, Op, SplitMix, Tear};
pub(crate) use pool::{FilePool, PooledFile};

use crate::format::names::parse_sealed_file_name;
use std::fmt::Debug;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

/// The file-system operations the engine uses, and no others.
///
/// # What survives a crash
///
/// Each call says below what it promises if the machine loses power (or the
/// kernel panics) after it returns. The promises are those of POSIX file
/// systems as they really behave, not as they often seem to: the
/// crash-consistency study "All File Systems Are Not Created Equal"
/// (Pillai et al., OSDI 2014) found that ext3, ext4, btrfs and xfs in their
/// common modes may each lose an appended tail, keep an append's new size
/// with garbage or zeros in it, persist directory operations out of order,
/// and lose a create, rename or unlink that no directory fsync covered. In
/// short:
///
/// - File data and size are volatile until [`WriteFile::sync_data`] of that
///   file returns Ok; until then a crash may keep none, a prefix, or torn
///   512-byte sectors (zeros where data was written) of the unsynced bytes.
/// - A file's *name* is volatile until [`Storage::sync_dir`] of its
///   directory returns Ok, however often its data was synced: a crash may
///   lose each unsynced [`create_new`](Storage::create_new),
///   [`rename`](Storage::rename) and [`remove_file`](Storage::remove_file),
///   or keep it, each on its own, and not necessarily in the order they were
///   made. A lost creation takes the file's data with it; a lost rename
///   leaves the file under its old name; a lost removal brings the file back.
///   A rename is atomic: the file is found under one of its two names,
///   never under neither (within one directory).
/// - A call that fails promises nothing about what it was asked to do, and a
///   failed `sync_data` may also have dropped the file's other unsynced
///   pages (Linux marks them clean after a writeback error), so retrying it
///   proves nothing: the writer must treat its unsynced bytes as lost.
///
/// [`MemStorage`] models all of this (and its [`MemStorage::crash_image`]
/// shows what a crash could leave); [`FsStorage`] is the real thing.
pub trait Storage: Send + Sync + Debug {
    /// Creates `dir` and its missing ancestors with mode [`DIR_MODE`],
    /// whatever the umask. The new directories' own entries in their
    /// parents are as volatile as a file's name (until the parent is
    /// synced); [`MemStorage`] keeps them at once.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// `Ok(false)` when `dir` does not exist.
    fn dir_exists(&self, dir: &Path) -> io::Result<bool>;
    /// Names (not paths) of the entries in `dir` as a running program sees
    /// them, synced or not.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a new, empty file for appending with mode [`FILE_MODE`],
    /// whatever the umask; fails if it exists (a symbolic link included).
    /// After a crash the file may not exist at all (data included) unless
    /// `sync_dir` of its directory returned Ok after this call.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Opens an existing file for appending (O_APPEND). Changes nothing
    /// durable. Like every open of a file in a log directory, never through
    /// a symbolic link: one fails with ELOOP, as O_NOFOLLOW makes open(2)
    /// fail.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Opens an existing file for positional writes ([`WriteFile::write_at`];
    /// no O_APPEND), for a segment written in place into pre-zeroed space
    /// (`Options::preallocate`). Changes nothing durable; never through a
    /// symbolic link. Storage that cannot write in place keeps the default,
    /// which refuses.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{}: this storage cannot write in place", path.display()),
        ))
    }
    /// Opens a file for positional reads. The handle keeps reading the same
    /// file after it is renamed or removed, as on Unix.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>>;
    /// Renames a file, replacing `to` if it exists. Atomic for a running
    /// program; after a crash, until `sync_dir` of the directory returns Ok,
    /// the file may be found under `from` (and a replaced `to` be back)
    /// or under `to`, never under neither. The file's data are as durable
    /// as its own `sync_data` made them: rename does not sync them.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Unlinks a file. After a crash, until `sync_dir` of its directory
    /// returns Ok, the file may be back (with the data it had durably).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// fsync of the directory: when it returns Ok, every creation, rename
    /// and removal made in `dir` before the call survives a crash. Says
    /// nothing of the files' data (each file's `sync_data` does that) nor
    /// of other directories, `dir`'s own entry in its parent included. On
    /// Err, the entries made since the last successful call stay volatile.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// fdatasync of a file another handle (or process) wrote, opened here
    /// for reading only: when it returns Ok, the bytes the file held when
    /// it was called survive a crash. A reader that vouches for what it
    /// read (a checkpoint) makes it durable first. The default opens the
    /// file for writing, which a reader may not be allowed to.
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.open_write(path)?.sync_data()
    }
    /// Takes write permission away from everyone (mode 0444). Durable with
    /// the file's metadata; the engine makes no promise rest on it alone.
    fn set_readonly(&self, path: &Path) -> io::Result<()>;
    /// The owner and mode of `path` as lstat(2) gives them: a symbolic link
    /// is reported as one, not followed. `Ok(None)` when it does not exist.
    fn file_meta(&self, path: &Path) -> io::Result<Option<FileMeta>>;
    /// The same for the log directory, whose own path may be a symbolic
    /// link (format-spec.md §1): it is followed.
    fn dir_meta(&self, dir: &Path) -> io::Result<Option<FileMeta>>;
    /// Sets the permission bits of a file (never through a symbolic link)
    /// or of the log directory (its path followed, as in `dir_meta`).
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// The effective user id files are created and opened as: the owner a
    /// writer expects of every file in its log.
    fn effective_uid(&self) -> u32;
    /// Sets or clears the file system's immutable attribute, which stops even
    /// root from writing, renaming or deleting the file (Linux
    /// FS_IOC_SETFLAGS; needs CAP_LINUX_IMMUTABLE).
    fn set_immutable(&self, path: &Path, on: bool) -> io::Result<()>;
    /// Takes the exclusive writer lock of `dir`. Fails with
    /// `ErrorKind::WouldBlock` while another holder has it. A lock does not
    /// outlive the process (or, in [`MemStorage`], a crash image).
    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn DirLock>>;
    /// Listens at `path` for the live writer's control channel
    /// (`wormlog.ctl`): a Unix socket of mode 0600, non-blocking, in place
    /// of a stale one a writer that died left (never of anything else).
    /// `None` where the storage has no such sockets (the in-memory one).
    fn listen_control(&self, _path: &Path) -> io::Result<Option<UnixListener>> {
        Ok(None)
    }
}

/// Mode of a log directory the engine creates.
pub const DIR_MODE: u32 = 0o750;
/// Mode of the files the engine writes to: segments, the anchor, hold and
/// lock files, and the copies recovery keeps aside.
pub const FILE_MODE: u32 = 0o640;
/// Mode of a sealed file.
pub const SEALED_MODE: u32 = 0o444;

/// Owner and type of a file, and its permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// The owner's user id.
    pub uid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Whether it is a symbolic link (lstat: the link itself, not its target).
    pub symlink: bool,
}

/// A file opened for appending.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a collection's
pub trait WriteFile: Send + Sync {
    /// Writes all of `buf` at the end of the file. Volatile until
    /// `sync_data`: a crash may keep none, a prefix or torn sectors of it.
    /// On Err, part of `buf` may have been written.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Writes all of `buf` at `offset` (a handle from `Storage::open_write`;
    /// on an O_APPEND handle Linux would append instead, so those refuse).
    /// Volatile until `sync_data`, even where it overwrites synced bytes: a
    /// crash may leave the old bytes, the new, or a mix by sectors.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let _ = (buf, offset);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a handle opened for appending cannot write in place",
        ))
    }
    /// fdatasync: when this returns Ok, the file's data and size are durable
    /// (the bytes appended or written before the call survive a crash). Its name is
    /// not: that takes `Storage::sync_dir` of its directory. On Err, the
    /// unsynced bytes may be gone even from what later reads return, and a
    /// later Ok does not bring them back.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (used only by recovery, before any
    /// append). Durable after the next `sync_data`; until then a crash may
    /// leave the old length.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// The file's length as a running program sees it, synced or not.
    fn len(&self) -> io::Result<u64>;
}

/// A file opened for positional reads; shared by readers.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a collection's
pub trait ReadFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at end of file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The file's length in bytes (for a sealed file, the uncompressed
    /// segment's).
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

pub use crate::error::NotRegularFile;

/// Opens one of the engine's writable files (a raw segment, the anchor file)
/// to append. A sealed file is never opened for writing: only a bug in the
/// engine could ask for it, and it must not get it.
pub(crate) fn open_append(storage: &dyn Storage, path: &Path) -> crate::Result<Box<dyn WriteFile>> {
    assert_not_sealed(path);
    storage
        .open_append(path)
        .map_err(|e| crate::Error::io("open", path, e))
}

/// [`Storage::open_write`], with the same invariant as [`open_append`].
pub(crate) fn open_write(storage: &dyn Storage, path: &Path) -> crate::Result<Box<dyn WriteFile>> {
    assert_not_sealed(path);
    storage
        .open_write(path)
        .map_err(|e| crate::Error::io("open for writing in place", path, e))
}

fn assert_not_sealed(path: &Path) {
    assert!(
        path.file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| parse_sealed_file_name(n).is_none()),
        "a sealed file is never opened for writing: {}",
        path.display()
    );
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
