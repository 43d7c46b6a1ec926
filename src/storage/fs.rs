//! The real file system.

use super::{
    DirLock, FileMeta, NotRegularFile, ReadFile, Storage, WriteFile, DIR_MODE, FILE_MODE,
    SEALED_MODE,
};
use crate::format::names::LOCK_FILE;
use rustix::fs::{fchmod, Mode, OFlags};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

/// [`Storage`] on the real file system: what a log uses unless
/// `Options::storage` says otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

/// Opens `path` with `options`, refusing anything but a regular file. A
/// FIFO or device named like a segment (hostile, or a mistake) must give an
/// error, not block: opening a FIFO waits for a writer that may never come,
/// so the open is non-blocking, and blocking again once the file is known
/// to be regular. A symbolic link is refused (ELOOP) rather than followed:
/// a link in a log directory would let whoever planted it send appends, or
/// a root reader's output, to any file on the system.
fn open_regular(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl};
    let file = options
        .custom_flags((OFlags::NONBLOCK | OFlags::NOFOLLOW).bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, NotRegularFile));
    }
    fcntl_setfl(&file, fcntl_getfl(&file)? - OFlags::NONBLOCK)?;
    Ok(file)
}

struct FsWrite {
    file: File,
    /// Opened with O_APPEND (every write goes to the end).
    append: bool,
}

impl WriteFile for FsWrite {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.append {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "pwrite on an O_APPEND descriptor appends (Linux); open it with open_write",
            ));
        }
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

struct FsRead {
    file: File,
}

impl ReadFile for FsRead {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

/// Creates `path` with `mode` exactly: the mode given to open(2) is only
/// what the umask lets through (too wide under umask 000, too narrow under
/// 077), so it is set again on the descriptor.
fn create_exclusive(options: &mut OpenOptions, path: &Path, mode: u32) -> io::Result<File> {
    let file = options
        .create_new(true)
        .mode(mode)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    fchmod(&file, Mode::from_raw_mode(mode))?;
    Ok(file)
}

fn meta(m: &fs::Metadata) -> FileMeta {
    FileMeta {
        uid: m.uid(),
        mode: m.mode() & 0o7777,
        symlink: m.file_type().is_symlink(),
    }
}

fn absent_is_none(r: io::Result<fs::Metadata>) -> io::Result<Option<FileMeta>> {
    match r {
        Ok(m) => Ok(Some(meta(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// flock(2) on the lock file: released by the kernel when the process dies,
/// so a crashed writer never leaves a stale lock behind.
struct FsLock {
    file: File,
}

impl DirLock for FsLock {}

impl Drop for FsLock {
    /// Unlocks before the descriptor closes. Closing alone is not enough: a
    /// child process that another thread is spawning holds a copy of every
    /// descriptor from fork until exec closes it (O_CLOEXEC), and a copy of
    /// this one keeps the lock, so a log closed and reopened at that moment
    /// would find itself locked out. `flock(LOCK_UN)` releases the lock for
    /// every copy.
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let existed = fs::metadata(dir).is_ok();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        if !existed {
            // As in create_exclusive: the umask must not decide the mode.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
        }
        Ok(())
    }
    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(true),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "exists and is not a directory",
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = create_exclusive(OpenOptions::new().append(true), path, FILE_MODE)?;
        Ok(Box::new(FsWrite { file, append: true }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = open_regular(OpenOptions::new().append(true), path)?;
        Ok(Box::new(FsWrite { file, append: true }))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = open_regular(OpenOptions::new().write(true), path)?;
        Ok(Box::new(FsWrite {
            file,
            append: false,
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        Ok(Arc::new(FsRead {
            file: open_regular(OpenOptions::new().read(true), path)?,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        // fdatasync(2) works on a descriptor opened read-only: it writes
        // the file's dirty pages whoever dirtied them. Opened as every read
        // is (no link followed, a regular file only: the fifteenth red team
        // swapped a symlink in here).
        open_regular(OpenOptions::new().read(true), path)?.sync_data()
    }
    fn set_readonly(&self, path: &Path) -> io::Result<()> {
        self.set_mode(path, SEALED_MODE)
    }
    fn file_meta(&self, path: &Path) -> io::Result<Option<FileMeta>> {
        absent_is_none(fs::symlink_metadata(path))
    }
    fn dir_meta(&self, dir: &Path) -> io::Result<Option<FileMeta>> {
        absent_is_none(fs::metadata(dir))
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let file = if fs::metadata(path)?.is_dir() {
            File::open(path)?
        } else {
            open_regular(OpenOptions::new().read(true), path)?
        };
        Ok(fchmod(&file, Mode::from_raw_mode(mode))?)
    }
    fn effective_uid(&self) -> u32 {
        rustix::process::geteuid().as_raw()
    }
    fn listen_control(&self, path: &Path) -> io::Result<Option<UnixListener>> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        match fs::symlink_metadata(path) {
            // Only the writer (which holds the log's lock now) makes one:
            // this is a dead writer's.
            Ok(m) if m.file_type().is_socket() => fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "something other than a socket is at the control socket's name",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        // Owner only, whatever the umask gave it; the writer also checks
        // each peer's uid.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Some(listener))
    }
    fn set_immutable(&self, path: &Path, on: bool) -> io::Result<()> {
        use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
        let file = open_regular(OpenOptions::new().read(true), path)?;
        let flags = ioctl_getflags(&file)?;
        let flags = if on {
            flags | IFlags::IMMUTABLE
        } else {
            flags - IFlags::IMMUTABLE
        };
        Ok(ioctl_setflags(&file, flags)?)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn DirLock>> {
        let path = dir.join(LOCK_FILE);
        let file = match create_exclusive(OpenOptions::new().write(true), &path, FILE_MODE) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                open_regular(OpenOptions::new().write(true), &path)?
            }
            other => other?,
        };
        match file.try_lock() {
            Ok(()) => Ok(Box::new(FsLock { file })),
            Err(TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}
