//! An in-memory file system for crash and fault tests. It keeps each file's
//! synced bytes apart from the bytes written since the last `sync_data`, can
//! fail the n-th call of any operation, can "crash" after n mutating calls,
//! and can produce the image a power cut would leave behind.
//!
//! What it models: lost, partly kept and sector-torn unsynced data, and a
//! failed fdatasync that drops the unsynced pages (as Linux does). What it
//! does not: loss of directory entries; creations, renames and removals are
//! durable at once. The engine still calls `sync_dir` wherever the real file
//! system needs it.

use super::{DirLock, FileMeta, ReadFile, Storage, WriteFile, DIR_MODE, FILE_MODE, SEALED_MODE};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A mutating operation, for fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Append,
    Sync,
    Create,
    Rename,
    Remove,
    Truncate,
    SyncDir,
    /// Permission and attribute changes.
    Chmod,
}

/// What happens to each file's unsynced bytes in a crash image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// All unsynced bytes are lost.
    LoseUnsynced,
    /// All unsynced bytes survive.
    KeepUnsynced,
    /// A random prefix of the unsynced bytes survives.
    KeepPrefix,
    /// The file keeps a random length; each 512-byte sector of the unsynced
    /// region independently holds the new bytes or zeros, so later sectors
    /// can survive while earlier ones are lost.
    Sectors,
}

const SECTOR: usize = 512;

/// A file's bytes are shared with its read handles, so that a file removed
/// while open stays readable through them, as on Unix.
#[derive(Debug, Clone)]
struct MemFile {
    data: Arc<Mutex<Vec<u8>>>,
    synced: usize,
    immutable: bool,
    uid: u32,
    mode: u32,
    /// A symbolic link where a file belongs: every open refuses it, as
    /// FsStorage's O_NOFOLLOW does.
    symlink: bool,
}

impl MemFile {
    fn with(data: Vec<u8>, uid: u32) -> Self {
        let synced = data.len();
        MemFile {
            data: Arc::new(Mutex::new(data)),
            synced,
            immutable: false,
            uid,
            mode: FILE_MODE,
            symlink: false,
        }
    }
    fn len(&self) -> usize {
        self.data.lock().len()
    }
    fn readonly(&self) -> bool {
        self.mode & 0o222 == 0
    }
}

fn denied(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what} {}: file is read-only or immutable", path.display()),
    )
}

#[derive(Debug, Default)]
struct MemFs {
    files: BTreeMap<PathBuf, MemFile>,
    dirs: BTreeSet<PathBuf>,
    /// Owner and mode of each directory.
    dir_meta: BTreeMap<PathBuf, (u32, u32)>,
    /// The uid this "process" runs as.
    euid: u32,
    locks: BTreeSet<PathBuf>,
    counts: BTreeMap<Op, u64>,
    mutations: u64,
    fail_nth: Vec<(Op, u64)>,
    crash_after: Option<u64>,
}

impl MemFs {
    /// Counts a mutating call and says whether it must fail.
    fn check(&mut self, op: Op, path: &Path) -> io::Result<()> {
        self.mutations += 1;
        let n = self.counts.entry(op).or_insert(0);
        *n += 1;
        let n = *n;
        if self.crash_after.is_some_and(|c| self.mutations > c) {
            return Err(io::Error::other(format!(
                "simulated crash: {op:?} {} not done",
                path.display()
            )));
        }
        if self.fail_nth.contains(&(op, n)) {
            return Err(io::Error::other(format!(
                "injected failure of {op:?} #{n} on {}",
                path.display()
            )));
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) -> io::Result<&mut MemFile> {
        self.files
            .get_mut(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    /// The file at `path` to open: not through a symbolic link.
    fn open(&mut self, path: &Path) -> io::Result<&mut MemFile> {
        let f = self.file(path)?;
        if f.symlink {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::LOOP.raw_os_error(),
            ));
        }
        Ok(f)
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if !self.dirs.contains(p) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", p.display()),
            )),
            _ => Ok(()),
        }
    }
}

/// In-memory [`Storage`]. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    fs: Arc<Mutex<MemFs>>,
    handles: Arc<HandleCount>,
}

/// Read handles opened, and open now (what a descriptor limit would count).
#[derive(Debug, Default)]
struct HandleCount {
    opened: AtomicU64,
    live: AtomicUsize,
    peak: AtomicUsize,
    bytes_read: AtomicU64,
}

impl MemStorage {
    /// Files are created owned by uid 1000 (see `set_effective_uid`).
    pub fn new() -> Self {
        let storage = Self::default();
        storage.fs.lock().euid = 1000;
        storage
    }

    /// The uid this storage's "process" runs as from now on: files it
    /// creates are that user's, and a writer expects its files to be.
    pub fn set_effective_uid(&self, uid: u32) {
        self.fs.lock().euid = uid;
    }

    /// Gives a file or directory another owner and mode (for tests of what
    /// a writer accepts; FsStorage needs root and chown for the same).
    pub fn set_owner_and_mode(&self, path: &Path, uid: u32, mode: u32) {
        let mut fs = self.fs.lock();
        if let Some(f) = fs.files.get_mut(path) {
            f.uid = uid;
            f.mode = mode;
        } else {
            assert!(fs.dirs.contains(path), "no such file: {}", path.display());
            fs.dir_meta.insert(path.to_path_buf(), (uid, mode));
        }
    }

    /// Turns a file into a symbolic link (to a copy of its bytes
    /// elsewhere): what an attacker who can write the directory plants.
    pub fn make_symlink(&self, path: &Path) {
        let mut fs = self.fs.lock();
        let f = fs.files.get_mut(path).expect("file exists");
        f.symlink = true;
        f.mode = 0o777;
    }

    /// The `n`-th call (1-based, counted since this storage was created)
    /// of `op` fails with an I/O error.
    pub fn fail_nth(&self, op: Op, n: u64) {
        self.fs.lock().fail_nth.push((op, n));
    }

    /// How many calls of `op` were made so far.
    pub fn count(&self, op: Op) -> u64 {
        self.fs.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// Mutating calls made so far.
    pub fn mutations(&self) -> u64 {
        self.fs.lock().mutations
    }

    /// Every mutating call after the first `n` fails, as if the machine had
    /// stopped there; the files stay as they were at that moment.
    pub fn crash_after(&self, n: u64) {
        self.fs.lock().crash_after = Some(n);
    }

    /// The files a power cut at this moment would leave: synced bytes intact,
    /// unsynced bytes treated as `tear` says (random choices drawn from
    /// `seed`). Locks and fault settings are not carried over.
    pub fn crash_image(&self, tear: Tear, seed: u64) -> MemStorage {
        let fs = self.fs.lock();
        let mut rng = SplitMix(seed);
        let mut files = BTreeMap::new();
        for (path, f) in &fs.files {
            let mut data = f.data.lock().clone();
            let synced = f.synced.min(data.len());
            let unsynced = data.len() - synced;
            match tear {
                Tear::LoseUnsynced => data.truncate(synced),
                Tear::KeepUnsynced => {}
                Tear::KeepPrefix => data.truncate(synced + rng.below(unsynced as u64 + 1) as usize),
                Tear::Sectors => {
                    data.truncate(synced + rng.below(unsynced as u64 + 1) as usize);
                    let mut start = synced;
                    while start < data.len() {
                        let end = ((start / SECTOR) + 1) * SECTOR;
                        let end = end.min(data.len());
                        if rng.below(2) == 0 {
                            data[start..end].fill(0);
                        }
                        start = end;
                    }
                }
            }
            let mut file = MemFile::with(data, f.uid);
            file.immutable = f.immutable;
            file.mode = f.mode;
            file.symlink = f.symlink;
            files.insert(path.clone(), file);
        }
        let image = MemFs {
            files,
            dirs: fs.dirs.clone(),
            dir_meta: fs.dir_meta.clone(),
            euid: fs.euid,
            ..MemFs::default()
        };
        MemStorage {
            fs: Arc::new(Mutex::new(image)),
            handles: Arc::default(),
        }
    }

    /// Read handles open now (opened by `open_read` and not yet dropped).
    pub fn open_read_handles(&self) -> usize {
        self.handles.live.load(Ordering::SeqCst)
    }

    /// The most read handles ever open at once.
    pub fn peak_read_handles(&self) -> usize {
        self.handles.peak.load(Ordering::SeqCst)
    }

    /// Starts counting the peak again from the handles open now.
    pub fn reset_peak_read_handles(&self) {
        let live = self.handles.live.load(Ordering::SeqCst);
        self.handles.peak.store(live, Ordering::SeqCst);
    }

    /// Bytes returned by reads through read handles so far.
    pub fn bytes_read(&self) -> u64 {
        self.handles.bytes_read.load(Ordering::SeqCst)
    }

    /// Read handles opened so far.
    pub fn read_opens(&self) -> u64 {
        self.handles.opened.load(Ordering::SeqCst)
    }

    /// A file's current bytes (synced or not).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        self.fs
            .lock()
            .files
            .get(path)
            .map(|f| f.data.lock().clone())
    }

    /// Replaces a file's bytes, all counted as synced (for tampering tests).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) {
        let mut fs = self.fs.lock();
        let uid = fs.euid;
        fs.files
            .insert(path.to_path_buf(), MemFile::with(data, uid));
    }

    /// Removes a file, whatever its permissions (for tampering tests).
    pub fn delete_file(&self, path: &Path) -> bool {
        self.fs.lock().files.remove(path).is_some()
    }

    /// Whether a file was made read-only, and immutable.
    pub fn permissions(&self, path: &Path) -> Option<(bool, bool)> {
        self.fs
            .lock()
            .files
            .get(path)
            .map(|f| (f.readonly(), f.immutable))
    }

    /// Paths of all files, sorted.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.fs.lock().files.keys().cloned().collect()
    }
}

struct MemWrite {
    fs: Arc<Mutex<MemFs>>,
    path: PathBuf,
}

impl WriteFile for MemWrite {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        if let Err(e) = fs.check(Op::Append, &self.path) {
            // A failed write may still have written part of the buffer.
            if fs.crash_after.is_none() {
                let half = buf.len() / 2;
                fs.file(&self.path)?
                    .data
                    .lock()
                    .extend_from_slice(&buf[..half]);
            }
            return Err(e);
        }
        fs.file(&self.path)?.data.lock().extend_from_slice(buf);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut fs = self.fs.lock();
        if let Err(e) = fs.check(Op::Sync, &self.path) {
            if fs.crash_after.is_none() {
                // After a failed fdatasync the kernel may drop the dirty
                // pages: the unsynced bytes are gone.
                let f = fs.file(&self.path)?;
                let synced = f.synced;
                f.data.lock().truncate(synced);
            }
            return Err(e);
        }
        let f = fs.file(&self.path)?;
        f.synced = f.len();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Truncate, &self.path)?;
        let f = fs.file(&self.path)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        f.data.lock().resize(len, 0);
        f.synced = f.synced.min(len);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.fs.lock().file(&self.path)?.len() as u64)
    }
}

struct MemRead {
    data: Arc<Mutex<Vec<u8>>>,
    handles: Arc<HandleCount>,
}

impl Drop for MemRead {
    fn drop(&mut self) {
        self.handles.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ReadFile for MemRead {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = self.data.lock();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.handles
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.data.lock().len() as u64)
    }
}

struct MemLock {
    fs: Arc<Mutex<MemFs>>,
    dir: PathBuf,
}

impl DirLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.fs.lock().locks.remove(&self.dir);
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        for a in dir.ancestors() {
            if fs.files.contains_key(a) {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is a file", a.display()),
                ));
            }
        }
        let euid = fs.euid;
        for a in dir.ancestors() {
            if fs.dirs.insert(a.to_path_buf()) {
                fs.dir_meta.insert(a.to_path_buf(), (euid, DIR_MODE));
            }
        }
        Ok(())
    }
    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        Ok(self.fs.lock().dirs.contains(dir))
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.lock();
        if !fs.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(fs
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut fs = self.fs.lock();
        fs.check(Op::Create, path)?;
        fs.parent_exists(path)?;
        if fs.files.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let file = MemFile::with(Vec::new(), fs.euid);
        fs.files.insert(path.to_path_buf(), file);
        Ok(Box::new(MemWrite {
            fs: self.fs.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut fs = self.fs.lock();
        let f = fs.open(path)?;
        if f.readonly() || f.immutable {
            return Err(denied("open for writing", path));
        }
        Ok(Box::new(MemWrite {
            fs: self.fs.clone(),
            path: path.to_path_buf(),
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let data = self.fs.lock().open(path)?.data.clone();
        self.handles.opened.fetch_add(1, Ordering::SeqCst);
        let live = self.handles.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.handles.peak.fetch_max(live, Ordering::SeqCst);
        Ok(Arc::new(MemRead {
            data,
            handles: self.handles.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Rename, from)?;
        fs.parent_exists(to)?;
        if fs.file(from)?.immutable || fs.files.get(to).is_some_and(|f| f.immutable) {
            return Err(denied("rename", from));
        }
        let f = fs
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        fs.files.insert(to.to_path_buf(), f);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Remove, path)?;
        if fs.file(path)?.immutable {
            return Err(denied("remove", path));
        }
        fs.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.fs.lock().check(Op::SyncDir, dir)
    }
    fn set_readonly(&self, path: &Path) -> io::Result<()> {
        self.set_mode(path, SEALED_MODE)
    }
    fn file_meta(&self, path: &Path) -> io::Result<Option<FileMeta>> {
        let fs = self.fs.lock();
        if let Some(f) = fs.files.get(path) {
            return Ok(Some(FileMeta {
                uid: f.uid,
                mode: f.mode,
                symlink: f.symlink,
            }));
        }
        Ok(fs.dir_meta.get(path).map(|&(uid, mode)| FileMeta {
            uid,
            mode,
            symlink: false,
        }))
    }
    fn dir_meta(&self, dir: &Path) -> io::Result<Option<FileMeta>> {
        self.file_meta(dir)
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Chmod, path)?;
        if let Some(m) = fs.dir_meta.get_mut(path) {
            m.1 = mode;
            return Ok(());
        }
        fs.open(path)?.mode = mode;
        Ok(())
    }
    fn effective_uid(&self) -> u32 {
        self.fs.lock().euid
    }
    fn set_immutable(&self, path: &Path, on: bool) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Chmod, path)?;
        fs.open(path)?.immutable = on;
        Ok(())
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn DirLock>> {
        let mut fs = self.fs.lock();
        if !fs.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if !fs.locks.insert(dir.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(MemLock {
            fs: self.fs.clone(),
            dir: dir.to_path_buf(),
        }))
    }
}

/// SplitMix64: a tiny seeded generator, enough for reproducible crash images
/// (and for tests that must replay from a printed seed).
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform-enough value in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}
