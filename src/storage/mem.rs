//! An in-memory file system for crash and fault tests. It keeps each file's
//! synced bytes apart from the bytes written since the last `sync_data`, and
//! each directory's synced entries apart from the creations, renames and
//! removals made since its last `sync_dir`; it can fail the n-th call of any
//! operation, can "crash" after n mutating calls, and can produce the image a
//! power cut would leave behind.
//!
//! What it models: lost, partly kept and sector-torn unsynced data; a failed
//! fdatasync that drops the unsynced pages (as Linux does); and directory
//! entries that are volatile until their directory is synced, each unsynced
//! create, rename or unlink lost or kept on its own in a crash image (see
//! [`Entries`]); and a truncation that is not durable until the file's next
//! fdatasync (a power cut may bring back the synced bytes it cut, while a
//! later in-place write survives: ext4 can commit a data block before the
//! size change). What it does not: directories themselves are durable as
//! soon as `create_dir_all` returns, and permission changes are durable at
//! once.

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
    /// A write to a file: an append or a positional write.
    Append,
    /// An fdatasync of a file.
    Sync,
    /// A file's creation.
    Create,
    /// A rename.
    Rename,
    /// A file's removal.
    Remove,
    /// A file cut to a length.
    Truncate,
    /// An fsync of a directory.
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

/// What happens in a crash image to the directory entries created, renamed
/// or removed since their directory was last synced, and to truncations
/// made since their file was last synced (metadata both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// Every unsynced create, rename and unlink is lost: the directories hold
    /// exactly what `sync_dir` made durable.
    LoseUnsynced,
    /// Every unsynced create, rename and unlink survives.
    KeepUnsynced,
    /// Each unsynced create, rename and unlink is kept or lost by a coin
    /// toss, except that an operation on a name whose earlier operation was
    /// lost is lost too (see [`MemStorage::crash_image_with`]).
    Random,
}

impl Entries {
    /// The entry behaviour [`MemStorage::crash_image`] pairs with `tear`:
    /// the two extremes stay extremes (so `KeepUnsynced` still copies the
    /// storage as it is), the random tears lose entries at random too.
    pub fn for_tear(tear: Tear) -> Self {
        match tear {
            Tear::LoseUnsynced => Entries::LoseUnsynced,
            Tear::KeepUnsynced => Entries::KeepUnsynced,
            Tear::KeepPrefix | Tear::Sectors => Entries::Random,
        }
    }
}

const SECTOR: usize = 512;

/// A file (an inode): shared by every name, pending entry operation and
/// handle that refers to it, so that it outlives its names while any of
/// them holds it, as on Unix.
type File = Arc<Mutex<MemFile>>;

#[derive(Debug, Clone)]
struct MemFile {
    data: Vec<u8>,
    synced: usize,
    /// Ranges below `synced` that `write_at` overwrote since the last sync,
    /// each with the bytes it replaced (oldest first): a crash may bring
    /// those back, sector by sector.
    overwritten: Vec<(usize, Vec<u8>)>,
    /// A truncation since the last sync that cut synced bytes: where the
    /// lowest such cut was made, and the synced bytes from there to the
    /// file's synced end before it. A crash may bring them back.
    uncut: Option<(usize, Vec<u8>)>,
    immutable: bool,
    uid: u32,
    mode: u32,
    /// A symbolic link where a file belongs: every open refuses it, as
    /// FsStorage's O_NOFOLLOW does.
    symlink: bool,
}

impl MemFile {
    fn with(data: Vec<u8>, uid: u32) -> File {
        let synced = data.len();
        Arc::new(Mutex::new(MemFile {
            data,
            synced,
            overwritten: Vec::new(),
            uncut: None,
            immutable: false,
            uid,
            mode: FILE_MODE,
            symlink: false,
        }))
    }
    fn readonly(&self) -> bool {
        self.mode & 0o222 == 0
    }

    /// Writes `buf` at `offset`, remembering what it replaced of the synced bytes.
    fn write_at(&mut self, buf: &[u8], offset: usize) {
        let end = offset + buf.len();
        if offset < self.synced {
            let upto = end.min(self.synced);
            self.overwritten
                .push((offset, self.data[offset..upto].to_vec()));
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset..end].copy_from_slice(buf);
    }

    /// The synced bytes of `[from, to)` as they were before the overwrites
    /// made since the last sync.
    fn synced_bytes(&self, from: usize, to: usize) -> Vec<u8> {
        let mut v = self.data[from..to].to_vec();
        for (at, old) in self.overwritten.iter().rev() {
            let (s, e) = ((*at).max(from), (at + old.len()).min(to));
            if s < e {
                v[s - from..e - from].copy_from_slice(&old[s - at..e - at]);
            }
        }
        v
    }

    /// Cuts the file to `len`; the synced bytes cut stay recoverable by a
    /// crash until the next sync.
    fn truncate(&mut self, len: usize) {
        if len < self.synced {
            let mut cut = self.synced_bytes(len, self.synced);
            self.uncut = Some(match self.uncut.take() {
                Some((at, older)) if at <= len => (at, older),
                Some((at, older)) if at <= self.synced => {
                    cut.extend_from_slice(&older[self.synced - at..]);
                    (len, cut)
                }
                _ => (len, cut),
            });
        }
        self.data.resize(len, 0);
        self.synced = self.synced.min(len);
        self.overwritten.retain(|(at, _)| *at < len);
        for (at, old) in &mut self.overwritten {
            old.truncate(len - *at);
        }
    }

    /// What a failed fdatasync leaves (the kernel drops the dirty pages):
    /// the synced bytes, as they were.
    fn drop_unsynced(&mut self) {
        for (at, old) in self.overwritten.drain(..).rev() {
            self.data[at..at + old.len()].copy_from_slice(&old);
        }
        let synced = self.synced;
        self.data.truncate(synced);
    }
}

fn denied(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what} {}: file is read-only or immutable", path.display()),
    )
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// A change to a directory entry that is not durable until its directory
/// is synced.
#[derive(Debug)]
enum EntryOp {
    /// A creation, or the arrival half of a rename between directories.
    Link { path: PathBuf, file: File },
    /// A rename within one directory: atomic, so both names change together.
    Rename {
        from: PathBuf,
        to: PathBuf,
        file: File,
    },
    /// A removal, or the departure half of a rename between directories.
    Unlink { path: PathBuf },
}

impl EntryOp {
    /// The directory whose `sync_dir` makes this durable.
    fn dir(&self) -> &Path {
        match self {
            EntryOp::Link { path, .. } | EntryOp::Unlink { path } => parent(path),
            EntryOp::Rename { to, .. } => parent(to),
        }
    }

    fn names(&self) -> Vec<&Path> {
        match self {
            EntryOp::Link { path, .. } | EntryOp::Unlink { path } => vec![path],
            EntryOp::Rename { from, to, .. } => vec![from, to],
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, File>) {
        match self {
            EntryOp::Link { path, file } => {
                names.insert(path.clone(), file.clone());
            }
            EntryOp::Rename { from, to, file } => {
                names.remove(from);
                names.insert(to.clone(), file.clone());
            }
            EntryOp::Unlink { path } => {
                names.remove(path);
            }
        }
    }
}

#[derive(Debug, Default)]
struct MemFs {
    /// The names a running program sees.
    files: BTreeMap<PathBuf, File>,
    /// The names as of the last `sync_dir` of each directory: what survives
    /// any crash.
    durable: BTreeMap<PathBuf, File>,
    /// Entry operations since the last `sync_dir` of their directory, in the
    /// order they were made; `durable` with all of them applied is `files`.
    pending: Vec<EntryOp>,
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

    fn file(&self, path: &Path) -> io::Result<&File> {
        self.files.get(path).ok_or_else(|| not_found(path))
    }

    /// The file at `path` to open: not through a symbolic link.
    fn open(&self, path: &Path) -> io::Result<&File> {
        let f = self.file(path)?;
        if f.lock().symlink {
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

    /// Makes every pending entry operation in `dir` durable.
    fn sync_entries(&mut self, dir: &Path) {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|op| op.dir() == dir);
        for op in &now {
            op.apply(&mut self.durable);
        }
        self.pending = later;
    }

    /// Sets `path` to `file` (or removes it) at once and for good, as the
    /// tampering helpers need: as if its directory were synced first and
    /// again after, so that no crash image undoes the change.
    fn replace_durably(&mut self, path: &Path, file: Option<File>) {
        self.sync_entries(parent(path));
        match file {
            Some(f) => {
                self.files.insert(path.to_path_buf(), f.clone());
                self.durable.insert(path.to_path_buf(), f);
            }
            None => {
                self.files.remove(path);
                self.durable.remove(path);
            }
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
        if let Some(f) = fs.files.get(path) {
            let mut f = f.lock();
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
        let fs = self.fs.lock();
        let mut f = fs.files.get(path).expect("file exists").lock();
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

    fn open_writable(&self, path: &Path, append: bool) -> io::Result<Box<dyn WriteFile>> {
        let fs = self.fs.lock();
        let file = fs.open(path)?.clone();
        let f = file.lock();
        if f.readonly() || f.immutable {
            return Err(denied("open for writing", path));
        }
        drop(f);
        Ok(Box::new(MemWrite {
            fs: self.fs.clone(),
            file,
            path: path.to_path_buf(),
            append,
        }))
    }

    /// The files a power cut at this moment would leave: synced bytes intact,
    /// unsynced bytes treated as `tear` says, unsynced directory entries as
    /// [`Entries::for_tear`] says (random choices drawn from `seed`). Locks
    /// and fault settings are not carried over.
    pub fn crash_image(&self, tear: Tear, seed: u64) -> MemStorage {
        self.crash_image_with(tear, Entries::for_tear(tear), seed)
    }

    /// [`crash_image`](Self::crash_image) with the fate of unsynced directory
    /// entries chosen apart from that of unsynced bytes.
    ///
    /// With [`Entries::Random`], each unsynced operation is kept or lost on
    /// its own, but for every name the kept operations are a prefix of those
    /// made on it (a rename counts for both its names). Not a prefix of all
    /// operations: file systems without ordered metadata (ext2, and others
    /// in some modes, per "All File Systems Are Not Created Equal", OSDI
    /// 2014) persist the entries of different names out of order, so the
    /// engine must not lean on the order. But one name's later state never
    /// reaches the disk without its earlier ones, and a rename is atomic,
    /// which the same study found every journaling file system keeps: so a
    /// file never shows up under a new name unless its creation survived,
    /// and a lost rename leaves the old name with its data.
    pub fn crash_image_with(&self, tear: Tear, entries: Entries, seed: u64) -> MemStorage {
        let fs = self.fs.lock();
        let mut rng = SplitMix(seed);
        let mut names = fs.durable.clone();
        let mut stopped: BTreeSet<&Path> = BTreeSet::new();
        for op in &fs.pending {
            let keep = match entries {
                Entries::LoseUnsynced => false,
                Entries::KeepUnsynced => true,
                Entries::Random => {
                    !op.names().iter().any(|n| stopped.contains(n)) && rng.below(2) == 0
                }
            };
            if keep {
                op.apply(&mut names);
            } else {
                stopped.extend(op.names());
            }
        }
        let mut files = BTreeMap::new();
        for (path, f) in names {
            let f = f.lock();
            let mut data = f.data.clone();
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
            // Overwrites since the last sync: each sector comes back as it
            // was, or stays as written, as the tear says.
            for (at, old) in f.overwritten.iter().rev() {
                for (i, sector) in old.chunks(SECTOR).enumerate() {
                    let restore = match tear {
                        Tear::LoseUnsynced => true,
                        Tear::KeepUnsynced => false,
                        Tear::KeepPrefix | Tear::Sectors => rng.below(2) == 0,
                    };
                    let from = at + i * SECTOR;
                    if restore && from + sector.len() <= data.len() {
                        data[from..from + sector.len()].copy_from_slice(sector);
                    }
                }
            }
            // A truncation not yet synced: lost, the file is as long as
            // before it, its cut bytes back past whatever was written since.
            if let Some((at, old)) = &f.uncut {
                // A size change is metadata: its fate goes with the
                // directory entries', apart from the data's.
                let lose = match entries {
                    Entries::LoseUnsynced => true,
                    Entries::KeepUnsynced => false,
                    Entries::Random => rng.below(2) == 0,
                };
                let old_end = at + old.len();
                if lose && data.len() >= *at && data.len() < old_end {
                    let from = data.len() - at;
                    data.extend_from_slice(&old[from..]);
                }
            }
            let file = MemFile::with(data, f.uid);
            {
                let mut g = file.lock();
                g.immutable = f.immutable;
                g.mode = f.mode;
                g.symlink = f.symlink;
            }
            files.insert(path, file);
        }
        let image = MemFs {
            durable: files.clone(),
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

    /// Directory entry operations (creations, renames, removals) not yet
    /// made durable by a `sync_dir` of their directory.
    pub fn unsynced_entries(&self) -> usize {
        self.fs.lock().pending.len()
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
            .map(|f| f.lock().data.clone())
    }

    /// Replaces a file's bytes, all counted as synced, and its name as
    /// durable (for tampering tests).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) {
        let mut fs = self.fs.lock();
        let uid = fs.euid;
        fs.replace_durably(path, Some(MemFile::with(data, uid)));
    }

    /// Removes a file, whatever its permissions, durably (for tampering
    /// tests).
    pub fn delete_file(&self, path: &Path) -> bool {
        let mut fs = self.fs.lock();
        let existed = fs.files.contains_key(path);
        fs.replace_durably(path, None);
        existed
    }

    /// Whether a file was made read-only, and immutable.
    pub fn permissions(&self, path: &Path) -> Option<(bool, bool)> {
        self.fs.lock().files.get(path).map(|f| {
            let f = f.lock();
            (f.readonly(), f.immutable)
        })
    }

    /// Paths of all files, sorted.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.fs.lock().files.keys().cloned().collect()
    }
}

/// Writes through a handle reach the file whatever its names are now.
struct MemWrite {
    fs: Arc<Mutex<MemFs>>,
    file: File,
    path: PathBuf,
    /// Opened for appending (`write_at` refuses, as on Linux it would append).
    append: bool,
}

impl WriteFile for MemWrite {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        if let Err(e) = fs.check(Op::Append, &self.path) {
            // A failed write may still have written part of the buffer.
            if fs.crash_after.is_none() {
                let half = buf.len() / 2;
                self.file.lock().data.extend_from_slice(&buf[..half]);
            }
            return Err(e);
        }
        self.file.lock().data.extend_from_slice(buf);
        Ok(())
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.append {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "pwrite on an O_APPEND descriptor appends (Linux); open it with open_write",
            ));
        }
        let offset = usize::try_from(offset).map_err(io::Error::other)?;
        let mut fs = self.fs.lock();
        if let Err(e) = fs.check(Op::Append, &self.path) {
            if fs.crash_after.is_none() {
                let half = buf.len() / 2;
                self.file.lock().write_at(&buf[..half], offset);
            }
            return Err(e);
        }
        self.file.lock().write_at(buf, offset);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut fs = self.fs.lock();
        let mut f = self.file.lock();
        if let Err(e) = fs.check(Op::Sync, &self.path) {
            if fs.crash_after.is_none() {
                // After a failed fdatasync the kernel may drop the dirty
                // pages: the unsynced bytes are gone.
                f.drop_unsynced();
            }
            return Err(e);
        }
        f.synced = f.data.len();
        f.overwritten.clear();
        f.uncut = None;
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Truncate, &self.path)?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.file.lock().truncate(len);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.lock().data.len() as u64)
    }
}

struct MemRead {
    file: File,
    handles: Arc<HandleCount>,
}

impl Drop for MemRead {
    fn drop(&mut self) {
        self.handles.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ReadFile for MemRead {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let f = self.file.lock();
        let data = &f.data;
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
        Ok(self.file.lock().data.len() as u64)
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
        fs.files.insert(path.to_path_buf(), file.clone());
        fs.pending.push(EntryOp::Link {
            path: path.to_path_buf(),
            file: file.clone(),
        });
        Ok(Box::new(MemWrite {
            fs: self.fs.clone(),
            file,
            path: path.to_path_buf(),
            append: true,
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.open_writable(path, true)
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        self.open_writable(path, false)
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let file = self.fs.lock().open(path)?.clone();
        self.handles.opened.fetch_add(1, Ordering::SeqCst);
        let live = self.handles.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.handles.peak.fetch_max(live, Ordering::SeqCst);
        Ok(Arc::new(MemRead {
            file,
            handles: self.handles.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Rename, from)?;
        fs.parent_exists(to)?;
        let file = fs.file(from)?.clone();
        if file.lock().immutable || fs.files.get(to).is_some_and(|f| f.lock().immutable) {
            return Err(denied("rename", from));
        }
        fs.files.remove(from);
        fs.files.insert(to.to_path_buf(), file.clone());
        let (from, to) = (from.to_path_buf(), to.to_path_buf());
        if parent(&from) == parent(&to) {
            fs.pending.push(EntryOp::Rename { from, to, file });
        } else {
            // Each directory's half becomes durable with its own sync, so a
            // crash can keep both names or neither: more than a journaling
            // file system would lose, and the engine never does this.
            fs.pending.push(EntryOp::Unlink { path: from });
            fs.pending.push(EntryOp::Link { path: to, file });
        }
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Remove, path)?;
        if fs.file(path)?.lock().immutable {
            return Err(denied("remove", path));
        }
        fs.files.remove(path);
        fs.pending.push(EntryOp::Unlink {
            path: path.to_path_buf(),
        });
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::SyncDir, dir)?;
        if !fs.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        fs.sync_entries(dir);
        Ok(())
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Sync, path)?;
        let file = fs.open(path)?.clone();
        let mut f = file.lock();
        f.synced = f.data.len();
        f.overwritten.clear();
        f.uncut = None;
        Ok(())
    }
    fn set_readonly(&self, path: &Path) -> io::Result<()> {
        self.set_mode(path, SEALED_MODE)
    }
    fn file_meta(&self, path: &Path) -> io::Result<Option<FileMeta>> {
        let fs = self.fs.lock();
        if let Some(f) = fs.files.get(path) {
            let f = f.lock();
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
        fs.open(path)?.lock().mode = mode;
        Ok(())
    }
    fn effective_uid(&self) -> u32 {
        self.fs.lock().euid
    }
    fn set_immutable(&self, path: &Path, on: bool) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.check(Op::Chmod, path)?;
        fs.open(path)?.lock().immutable = on;
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
    /// The next number of the sequence; the state advances.
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: u64 = 64;

    fn dir() -> &'static Path {
        Path::new("/d")
    }

    fn storage() -> MemStorage {
        let s = MemStorage::new();
        s.create_dir_all(dir()).unwrap();
        s
    }

    /// A file at `name` holding `data`, its bytes synced but its name not.
    fn put(s: &MemStorage, name: &str, data: &[u8]) -> PathBuf {
        let path = dir().join(name);
        let mut f = s.create_new(&path).unwrap();
        f.append(data).unwrap();
        f.sync_data().unwrap();
        path
    }

    /// What each random crash image holds at `path`, over many seeds.
    fn outcomes(s: &MemStorage, path: &Path) -> BTreeSet<Option<Vec<u8>>> {
        (0..SEEDS)
            .map(|seed| s.crash_image(Tear::Sectors, seed).read_file(path))
            .collect()
    }

    #[test]
    fn an_unsynced_create_is_lost_in_some_crash_images_and_kept_in_others() {
        let s = storage();
        let path = put(&s, "a", b"data");
        let seen = outcomes(&s, &path);
        assert!(seen.contains(&None), "never lost: {seen:?}");
        assert!(seen.contains(&Some(b"data".to_vec())), "never kept");
        assert_eq!(
            s.crash_image(Tear::LoseUnsynced, 0).read_file(&path),
            None,
            "a lost creation takes the file's synced data with it"
        );
    }

    #[test]
    fn a_create_survives_every_crash_once_its_directory_is_synced() {
        let s = storage();
        let path = put(&s, "a", b"data");
        s.sync_dir(dir()).unwrap();
        assert_eq!(s.unsynced_entries(), 0);
        for seed in 0..SEEDS {
            for tear in [Tear::LoseUnsynced, Tear::KeepPrefix, Tear::Sectors] {
                let image = s.crash_image(tear, seed);
                assert_eq!(image.read_file(&path), Some(b"data".to_vec()));
            }
        }
    }

    #[test]
    fn syncing_another_directory_leaves_the_entry_volatile() {
        let s = storage();
        s.create_dir_all(Path::new("/other")).unwrap();
        let path = put(&s, "a", b"data");
        s.sync_dir(Path::new("/other")).unwrap();
        assert_eq!(s.crash_image(Tear::LoseUnsynced, 0).read_file(&path), None);
    }

    #[test]
    fn a_lost_rename_keeps_the_file_under_its_old_name() {
        let s = storage();
        let tmp = put(&s, "tmp", b"new");
        s.sync_dir(dir()).unwrap();
        let to = dir().join("to");
        s.rename(&tmp, &to).unwrap();
        let image = s.crash_image(Tear::LoseUnsynced, 0);
        assert_eq!(image.read_file(&tmp), Some(b"new".to_vec()));
        assert_eq!(image.read_file(&to), None);
        for seed in 0..SEEDS {
            let image = s.crash_image(Tear::Sectors, seed);
            let names = (image.read_file(&tmp), image.read_file(&to));
            assert!(
                matches!(&names, (Some(_), None) | (None, Some(_))),
                "a rename is atomic: {names:?}"
            );
        }
    }

    #[test]
    fn a_lost_rename_over_a_file_brings_the_replaced_file_back() {
        let s = storage();
        let old = put(&s, "name", b"old");
        let tmp = put(&s, "tmp", b"new");
        s.sync_dir(dir()).unwrap();
        s.rename(&tmp, &old).unwrap();
        let image = s.crash_image(Tear::LoseUnsynced, 0);
        assert_eq!(image.read_file(&old), Some(b"old".to_vec()));
        assert_eq!(image.read_file(&tmp), Some(b"new".to_vec()));
        let image = s.crash_image(Tear::KeepUnsynced, 0);
        assert_eq!(image.read_file(&old), Some(b"new".to_vec()));
        assert_eq!(image.read_file(&tmp), None);
    }

    #[test]
    fn a_rename_of_an_unsynced_file_survives_only_with_its_creation() {
        let s = storage();
        let tmp = put(&s, "tmp", b"x");
        let to = dir().join("to");
        s.rename(&tmp, &to).unwrap();
        let seen: BTreeSet<_> = (0..SEEDS)
            .map(|seed| {
                let image = s.crash_image(Tear::Sectors, seed);
                (
                    image.read_file(&tmp).is_some(),
                    image.read_file(&to).is_some(),
                )
            })
            .collect();
        // Neither (create lost), the old name (rename lost), the new name
        // (both kept); never both names.
        let all: BTreeSet<_> = [(false, false), (true, false), (false, true)]
            .into_iter()
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn a_lost_unlink_restores_the_file_with_its_synced_data() {
        let s = storage();
        let path = put(&s, "a", b"data");
        s.sync_dir(dir()).unwrap();
        s.remove_file(&path).unwrap();
        assert_eq!(s.read_file(&path), None);
        let image = s.crash_image(Tear::LoseUnsynced, 0);
        assert_eq!(image.read_file(&path), Some(b"data".to_vec()));
        let seen = outcomes(&s, &path);
        assert!(seen.contains(&None) && seen.len() == 2, "{seen:?}");
        s.sync_dir(dir()).unwrap();
        assert_eq!(s.crash_image(Tear::LoseUnsynced, 0).read_file(&path), None);
    }

    #[test]
    fn operations_on_one_name_survive_only_in_order() {
        // The name ends as some prefix of its operations left it: the first
        // file, no file, or the second; every one of them is reachable.
        let s = storage();
        let path = put(&s, "a", b"first");
        s.sync_dir(dir()).unwrap();
        s.remove_file(&path).unwrap();
        put(&s, "a", b"second");
        let seen = outcomes(&s, &path);
        let all: BTreeSet<_> = [None, Some(b"first".to_vec()), Some(b"second".to_vec())]
            .into_iter()
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn unsynced_bytes_of_a_kept_file_still_tear() {
        let s = storage();
        let path = put(&s, "a", b"synced");
        s.sync_dir(dir()).unwrap();
        let mut f = s.open_append(&path).unwrap();
        f.append(b" and not").unwrap();
        assert_eq!(
            s.crash_image(Tear::LoseUnsynced, 0).read_file(&path),
            Some(b"synced".to_vec())
        );
        assert_eq!(
            s.crash_image(Tear::KeepUnsynced, 0).read_file(&path),
            Some(b"synced and not".to_vec())
        );
    }

    #[test]
    fn a_handle_writes_to_its_file_after_the_file_is_renamed() {
        let s = storage();
        let tmp = put(&s, "tmp", b"a");
        let mut f = s.open_append(&tmp).unwrap();
        let to = dir().join("to");
        s.rename(&tmp, &to).unwrap();
        f.append(b"b").unwrap();
        assert_eq!(s.read_file(&to), Some(b"ab".to_vec()));
    }

    #[test]
    fn a_failed_directory_sync_leaves_entries_volatile() {
        let s = storage();
        let path = put(&s, "a", b"data");
        s.fail_nth(Op::SyncDir, 1);
        assert!(s.sync_dir(dir()).is_err());
        assert_eq!(s.unsynced_entries(), 1);
        assert_eq!(s.crash_image(Tear::LoseUnsynced, 0).read_file(&path), None);
    }

    #[test]
    fn tampering_helpers_are_durable_at_once() {
        let s = storage();
        let path = dir().join("a");
        s.write_file(&path, b"forged".to_vec());
        assert_eq!(
            s.crash_image(Tear::LoseUnsynced, 0).read_file(&path),
            Some(b"forged".to_vec())
        );
        assert!(s.delete_file(&path));
        assert_eq!(s.crash_image(Tear::LoseUnsynced, 0).read_file(&path), None);
    }

    #[test]
    fn an_unsynced_overwrite_of_synced_bytes_may_be_lost_by_sectors() {
        let s = storage();
        let path = put(&s, "a", &[0u8; 2 * SECTOR]);
        s.sync_dir(dir()).unwrap();
        let mut f = s.open_write(&path).unwrap();
        f.write_at(&[7u8; 2 * SECTOR], 0).unwrap();
        let read = |image: &MemStorage| image.read_file(&path).unwrap();
        assert_eq!(
            read(&s.crash_image(Tear::LoseUnsynced, 0)),
            vec![0u8; 2 * SECTOR]
        );
        assert_eq!(
            read(&s.crash_image(Tear::KeepUnsynced, 0)),
            vec![7u8; 2 * SECTOR]
        );
        // By sectors: each comes back whole, old or new, and over many
        // seeds both fates are seen.
        let mut fates = BTreeSet::new();
        for seed in 0..64 {
            let data = read(&s.crash_image(Tear::Sectors, seed));
            for sector in data.chunks(SECTOR) {
                assert!(
                    sector.iter().all(|b| *b == sector[0]),
                    "a sector is not torn"
                );
                fates.insert(sector[0]);
            }
        }
        assert_eq!(fates, BTreeSet::from([0, 7]));
        f.sync_data().unwrap();
        assert_eq!(
            read(&s.crash_image(Tear::LoseUnsynced, 0)),
            vec![7u8; 2 * SECTOR],
            "synced, the overwrite stays"
        );
    }

    #[test]
    fn a_failed_sync_brings_back_what_unsynced_overwrites_replaced() {
        let s = storage();
        let path = put(&s, "a", &[1u8; 64]);
        let mut f = s.open_write(&path).unwrap();
        f.write_at(&[9u8; 32], 16).unwrap();
        f.write_at(&[9u8; 32], 64).unwrap();
        s.fail_nth(Op::Sync, s.count(Op::Sync) + 1);
        assert!(f.sync_data().is_err());
        assert_eq!(s.read_file(&path).unwrap(), vec![1u8; 64]);
    }

    #[test]
    fn an_append_handle_refuses_positional_writes() {
        let s = storage();
        let path = put(&s, "a", b"data");
        let mut f = s.open_append(&path).unwrap();
        assert_eq!(
            f.write_at(b"x", 0).unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
    }

    #[test]
    fn crash_image_with_sets_entries_apart_from_bytes() {
        let s = storage();
        let path = put(&s, "a", b"data");
        assert_eq!(
            s.crash_image_with(Tear::KeepUnsynced, Entries::LoseUnsynced, 0)
                .read_file(&path),
            None
        );
        assert_eq!(
            s.crash_image_with(Tear::LoseUnsynced, Entries::KeepUnsynced, 0)
                .read_file(&path),
            Some(b"data".to_vec())
        );
    }
}
