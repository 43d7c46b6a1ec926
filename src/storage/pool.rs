//! A bounded set of open read handles, shared by a log's sealed segments.
//!
//! A log kept for years has thousands of sealed segments; a descriptor held
//! for each would run into the process's open-file limit (1024 by default on
//! Linux) in the writer and in every reader. A sealed file never changes
//! once it is renamed into place, so its handle can be closed and opened
//! again at will: the pool keeps the `capacity` most recently used open and
//! closes the rest. A handle in use by a read stays open until that read is
//! done (it is an `Arc`), so the pool bounds the idle handles, and the
//! in-flight ones are bounded by the number of concurrent reads.

use super::{ReadFile, Storage};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct FilePool {
    storage: Arc<dyn Storage>,
    capacity: usize,
    inner: Mutex<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    open: HashMap<PathBuf, Slot>,
    /// Bumped on every use; the slot with the smallest `used` goes first.
    tick: u64,
}

struct Slot {
    file: Arc<dyn ReadFile>,
    used: u64,
}

impl FilePool {
    pub fn new(storage: Arc<dyn Storage>, capacity: usize) -> Self {
        FilePool {
            storage,
            capacity: capacity.max(1),
            inner: Mutex::new(PoolInner::default()),
        }
    }

    /// A handle on `path`, opened if the pool holds none. A file opened anew
    /// must still be `expect_len` bytes long: a sealed file that changed
    /// size since its trailer was read is not the file that was checked.
    pub fn get(&self, path: &Path, expect_len: u64) -> io::Result<Arc<dyn ReadFile>> {
        {
            let mut g = self.inner.lock();
            g.tick += 1;
            let tick = g.tick;
            if let Some(slot) = g.open.get_mut(path) {
                slot.used = tick;
                return Ok(slot.file.clone());
            }
        }
        // Opened without the lock: opening is a system call, and other
        // readers should not wait for it.
        let file = self.storage.open_read(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(
                io::ErrorKind::NotFound,
                "reopening: the file was removed after the log was opened (retention dropped it?)",
            ),
            _ => e,
        })?;
        let len = file.len()?;
        if len != expect_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {len} bytes, it was {expect_len} when opened",
                    path.display()
                ),
            ));
        }
        Ok(self.adopt(path, file))
    }

    /// Keeps `file` (already open on `path`) in the pool, and returns the
    /// handle to use: the one already pooled if another thread got there
    /// first.
    pub fn adopt(&self, path: &Path, file: Arc<dyn ReadFile>) -> Arc<dyn ReadFile> {
        let evicted;
        let file = {
            let mut g = self.inner.lock();
            g.tick += 1;
            let tick = g.tick;
            let slot = g
                .open
                .entry(path.to_path_buf())
                .or_insert(Slot { file, used: tick });
            slot.used = tick;
            let file = slot.file.clone();
            evicted = evict(&mut g, self.capacity);
            file
        };
        // Closed outside the lock.
        drop(evicted);
        file
    }

    /// Closes the pool's handle on `path` (the file was removed: its disk
    /// space comes back once no read holds it).
    pub fn forget(&self, path: &Path) {
        let slot = self.inner.lock().open.remove(path);
        drop(slot);
    }

    /// How many handles the pool holds open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().open.len()
    }
}

fn evict(g: &mut PoolInner, capacity: usize) -> Vec<Slot> {
    let mut out = Vec::new();
    while g.open.len() > capacity {
        // Linear in the pool's size, which is small, and only on an open.
        let oldest = g
            .open
            .iter()
            .min_by_key(|(_, s)| s.used)
            .map(|(p, _)| p.clone())
            .expect("pool is over capacity, so not empty");
        out.extend(g.open.remove(&oldest));
    }
    debug_assert!(g.open.len() <= capacity);
    out
}

/// A file read through the pool: each read borrows the pooled handle,
/// opening it again if it was closed meanwhile.
pub(crate) struct PooledFile {
    pub pool: Arc<FilePool>,
    pub path: PathBuf,
    pub len: u64,
}

impl ReadFile for PooledFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.pool.get(&self.path, self.len)?.read_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.len)
    }

    fn read_full_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        // One pool lookup for the whole read, not one per short read.
        self.pool
            .get(&self.path, self.len)?
            .read_full_at(buf, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn pool_with_files(n: usize, capacity: usize) -> (MemStorage, FilePool, Vec<PathBuf>) {
        let mem = MemStorage::new();
        let dir = Path::new("/p");
        mem.create_dir_all(dir).unwrap();
        let paths: Vec<PathBuf> = (0..n).map(|i| dir.join(format!("f{i}"))).collect();
        for (i, p) in paths.iter().enumerate() {
            let mut w = mem.create_new(p).unwrap();
            w.append(&[i as u8; 10]).unwrap();
        }
        let pool = FilePool::new(Arc::new(mem.clone()), capacity);
        (mem, pool, paths)
    }

    #[test]
    fn pool_never_holds_more_than_its_capacity_open() {
        let (mem, pool, paths) = pool_with_files(50, 4);
        for round in 0..3 {
            for (i, p) in paths.iter().enumerate() {
                let f = pool.get(p, 10).unwrap();
                let mut b = [0u8; 1];
                f.read_full_at(&mut b, 3).unwrap();
                assert_eq!(b[0], i as u8, "round {round}: wrong file behind {p:?}");
                drop(f);
                assert!(pool.len() <= 4);
                assert!(mem.open_read_handles() <= 4, "{}", mem.open_read_handles());
            }
        }
    }

    #[test]
    fn pool_keeps_the_most_recently_used_handle() {
        let (mem, pool, paths) = pool_with_files(3, 2);
        pool.get(&paths[0], 10).unwrap();
        pool.get(&paths[1], 10).unwrap();
        pool.get(&paths[0], 10).unwrap();
        let opened = mem.read_opens();
        // paths[1] is the least recently used now: opening paths[2] evicts it.
        pool.get(&paths[2], 10).unwrap();
        pool.get(&paths[0], 10).unwrap();
        assert_eq!(mem.read_opens(), opened + 1, "paths[0] was reopened");
        pool.get(&paths[1], 10).unwrap();
        assert_eq!(mem.read_opens(), opened + 2, "paths[1] was kept");
    }

    #[test]
    fn pool_refuses_a_file_that_changed_size_since_it_was_opened() {
        let (mem, pool, paths) = pool_with_files(1, 1);
        let mut w = mem.open_append(&paths[0]).unwrap();
        w.append(b"grown").unwrap();
        let e = pool
            .get(&paths[0], 10)
            .err()
            .expect("a grown file is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("15 bytes"), "{e}");
    }

    #[test]
    fn a_removed_file_is_a_clear_not_found() {
        let (mem, pool, paths) = pool_with_files(2, 1);
        pool.get(&paths[0], 10).unwrap();
        pool.get(&paths[1], 10).unwrap(); // paths[0] evicted
        mem.remove_file(&paths[0]).unwrap();
        let e = pool.get(&paths[0], 10).err().expect("removed");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            e.to_string().contains("removed after the log was opened"),
            "{e}"
        );
    }

    #[test]
    fn forgotten_handle_is_closed() {
        let (mem, pool, paths) = pool_with_files(2, 4);
        pool.get(&paths[0], 10).unwrap();
        pool.get(&paths[1], 10).unwrap();
        assert_eq!(mem.open_read_handles(), 2);
        pool.forget(&paths[0]);
        assert_eq!(mem.open_read_handles(), 1);
    }
}
