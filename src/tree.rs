//! The log's Merkle tree as stored (format-spec.md §14): per level `L` a
//! file `wormlog.tiles-L` of the level's entries, 32 bytes each, back to
//! back, so that C2SP tile `N` of level `L` is bytes `N*8192..(N+1)*8192`
//! of it (and a partial tile its tail), and `wormlog.tree` saying how many
//! entries of each file were synced. The tree is derived data: the records are the
//! truth, and whatever the files lack is recomputed from them (see
//! merkle.rs, which feeds it). Memory: the partial tiles (under 8 KiB per
//! level) and the entries not yet written; for a log opened read-only,
//! every entry its files lack.

use crate::error::{Corruption, Error, Result};
use crate::format::merkle::{root_of, HashSource, LEVELS_MAX, TILE_WIDTH};
use crate::format::names::{tree_file_name, TREE_STATE_FILE, TREE_STATE_TMP_FILE};
use crate::format::tree_state::TreeState;
use crate::format::Hash;
use crate::storage::{write_atomically, ReadFile, Storage, WriteFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Level {
    path: PathBuf,
    read: Option<Arc<dyn ReadFile>>,
    append: Option<Box<dyn WriteFile>>,
    /// Entries in the file that count (synced and vouched for, or written
    /// and synced by this run).
    on_disk: u64,
    /// Entries after those, not yet written (or, read-only, never).
    unwritten: Vec<u8>,
    /// The entries of the level's incomplete tile (fewer than 256; also
    /// counted in `on_disk` or `unwritten`).
    partial: Vec<Hash>,
}

impl Level {
    fn new(path: PathBuf) -> Level {
        Level {
            path,
            read: None,
            append: None,
            on_disk: 0,
            unwritten: Vec::new(),
            partial: Vec::new(),
        }
    }
    fn entries(&self) -> u64 {
        self.on_disk + (self.unwritten.len() / 32) as u64
    }
}

/// See the module docs.
pub(crate) struct Tree {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    writable: bool,
    levels: Vec<Level>,
    /// Roots of complete subtrees of 16 leaves or more, as computed: they
    /// never change (the tree only grows), and a proof or root near the
    /// head asks for the same large ones again and again (each costs up to
    /// 127 SHA-256 and a read of a tile). Cleared when large.
    memo: std::cell::RefCell<std::collections::HashMap<(u64, u64), Hash>>,
}

/// Subtrees smaller than this are hashed again when asked.
const MEMO_MIN: u64 = 16;
/// Subtree roots the memo holds at most (40 bytes each and the map's own).
const MEMO_MAX: usize = 4_096;

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("dir", &self.dir)
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

fn tree_corrupt(path: &Path, offset: u64, detail: String) -> Error {
    Error::corrupt(path, offset, None, Corruption::TreeState { detail })
}

impl Tree {
    /// Opens the tree files of the log in `dir` whose last record is
    /// `head_seq` and whose first held record is `first_seq`: the entries
    /// `wormlog.tree` vouches for (and no more than the records cover),
    /// with every partial tile above level 0 recomputed from the level
    /// below. Without a state file that reads, it vouches only for the
    /// entries of records retention dropped (which nothing could rebuild);
    /// the records rebuild the rest. Writable, it cuts the files to what it
    /// takes and says so in `wormlog.tree`; read-only, it changes nothing.
    /// Level 0's partial tile is left to the caller to fill from the records.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        writable: bool,
        head_seq: u64,
        first_seq: u64,
    ) -> Result<Tree> {
        let state_path = dir.join(TREE_STATE_FILE);
        let read_state = || -> Result<Option<TreeState>> {
            let f = match storage.open_read(&state_path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("open", &state_path, e)),
            };
            let mut buf = vec![0u8; TreeState::LEN_MAX];
            let n = f
                .read_full_at(&mut buf, 0)
                .map_err(|e| Error::io("read", &state_path, e))?;
            // Damaged (a crash cannot tear it: it is replaced by rename):
            // the same as missing; verification checks what is kept.
            Ok(TreeState::decode(&buf[..n]).ok())
        };
        let state = read_state()?;
        let dropped = first_seq.saturating_sub(1);
        let mut tree = Tree {
            dir: dir.to_path_buf(),
            storage,
            writable,
            levels: Vec::new(),
            memo: Default::default(),
        };
        // Entries that count, level by level: what the state file vouches
        // for, what the file holds, and what the level below can have made
        // (level 0: a leaf per record; above: an entry per full tile below).
        let mut allowed = head_seq;
        for l in 0..LEVELS_MAX {
            let path = dir.join(tree_file_name(l));
            let read = match tree.storage.open_read(&path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            let in_file = match &read {
                Some(f) => f.len().map_err(|e| Error::io("stat", &path, e))? / 32,
                None => 0,
            };
            let per = TILE_WIDTH.saturating_pow(l as u32);
            let vouched = match &state {
                Some(s) => s.entries.get(l).copied().unwrap_or(0),
                None => dropped / per,
            };
            let mut level = Level::new(path);
            level.read = read;
            level.on_disk = vouched.min(in_file).min(allowed);
            allowed = level.on_disk / TILE_WIDTH;
            tree.levels.push(level);
        }
        if writable {
            for l in 0..tree.levels.len() {
                tree.cut_file(l)?;
            }
            let kept: Vec<u64> = tree.levels.iter().map(|l| l.on_disk).collect();
            if state.as_ref().map(|s| &s.entries) != Some(&kept) {
                tree.write_state()?;
            }
        }
        for l in 0..tree.levels.len() {
            let n = tree.levels[l].on_disk;
            let from = n - n % TILE_WIDTH;
            tree.levels[l].partial = tree.entries(l, from, n - from)?;
        }
        // Entries above level 0 that full tiles below have made but the
        // files do not hold.
        for l in 1..tree.levels.len() {
            let have = tree.levels[l].entries();
            let made = tree.levels[l - 1].entries() / TILE_WIDTH;
            for t in have..made {
                let tile = tree.tile(l - 1, t)?;
                tree.add_entry(l, root_of(&tile));
            }
        }
        Ok(tree)
    }

    /// A tree with no files and no entries, writing nothing.
    pub fn empty(storage: Arc<dyn Storage>, dir: &Path) -> Tree {
        Tree {
            dir: dir.to_path_buf(),
            storage,
            writable: false,
            levels: Vec::new(),
            memo: Default::default(),
        }
    }

    /// Cuts level `l`'s file to the tiles that count (writable trees only).
    fn cut_file(&mut self, l: usize) -> Result<()> {
        let level = &mut self.levels[l];
        let Some(read) = &level.read else {
            return Ok(());
        };
        let want = level.on_disk * 32;
        let len = read.len().map_err(|e| Error::io("stat", &level.path, e))?;
        if len > want {
            let mut f = crate::storage::open_append(&*self.storage, &level.path)?;
            f.truncate(want)
                .map_err(|e| Error::io("truncate", &level.path, e))?;
            f.sync_data()
                .map_err(|e| Error::io("fdatasync", &level.path, e))?;
        }
        Ok(())
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, Level::entries)
    }

    /// Whether this tree writes its files (a writer's) or only reads them.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Bytes of entries held in memory, not yet written.
    pub fn unwritten_bytes(&self) -> usize {
        self.levels.iter().map(|l| l.unwritten.len()).sum()
    }

    /// Entries of level `l` (0 for a level the tree has not reached).
    pub fn level_entries(&self, l: usize) -> u64 {
        self.levels.get(l).map_or(0, Level::entries)
    }

    /// Adds the next leaf's hash.
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut l = 0;
        let mut h = leaf;
        while let Some(root) = self.add_entry(l, h) {
            l += 1;
            h = root;
        }
    }

    /// Adds an entry to level `l`; returns the root of the tile it
    /// completes, which is the next entry of the level above.
    fn add_entry(&mut self, l: usize, h: Hash) -> Option<Hash> {
        while self.levels.len() <= l {
            let n = self.levels.len();
            self.levels
                .push(Level::new(self.dir.join(tree_file_name(n))));
        }
        let level = &mut self.levels[l];
        level.unwritten.extend_from_slice(h.as_bytes());
        level.partial.push(h);
        if level.partial.len() as u64 == TILE_WIDTH {
            let root = root_of(&level.partial);
            level.partial.clear();
            return Some(root);
        }
        None
    }

    /// Full tile `t` of level `l`.
    pub fn tile(&self, l: usize, t: u64) -> Result<Vec<Hash>> {
        self.entries(l, t * TILE_WIDTH, TILE_WIDTH)
    }

    /// Entries `start..start + count` of level `l`, which must exist.
    pub fn entries(&self, l: usize, start: u64, count: u64) -> Result<Vec<Hash>> {
        let level = self.levels.get(l).ok_or_else(|| self.missing(l, start))?;
        if start + count > level.entries() {
            return Err(self.missing(l, start + count - 1));
        }
        let mut out = Vec::with_capacity(count as usize);
        let end = start + count;
        let mut i = start;
        if i < level.on_disk {
            let upto = end.min(level.on_disk);
            let mut buf = vec![0u8; ((upto - i) * 32) as usize];
            let file = level.read.as_ref().ok_or_else(|| self.missing(l, i))?;
            let got = file
                .read_full_at(&mut buf, i * 32)
                .map_err(|e| Error::io("read", &level.path, e))?;
            if got < buf.len() {
                return Err(tree_corrupt(
                    &level.path,
                    i * 32 + got as u64,
                    "the file is shorter than wormlog.tree says".into(),
                ));
            }
            out.extend(buf.chunks_exact(32).map(to_hash));
            i = upto;
        }
        if i < end {
            let from = ((i - level.on_disk) * 32) as usize;
            let to = ((end - level.on_disk) * 32) as usize;
            out.extend(level.unwritten[from..to].chunks_exact(32).map(to_hash));
        }
        Ok(out)
    }

    fn missing(&self, level: usize, index: u64) -> Error {
        Error::TreeUnavailable {
            detail: format!(
                "entry {index} of level {level} is not in the tree (size {})",
                self.size()
            ),
        }
    }

    /// Writes the full tiles held in memory to their files, syncs them, and
    /// then records them in `wormlog.tree` (atomically): only tiles that
    /// are durable are ever vouched for. Nothing to do read-only.
    pub fn persist(&mut self) -> Result<()> {
        if !self.writable || self.levels.iter().all(|l| l.unwritten.is_empty()) {
            return Ok(());
        }
        for l in 0..self.levels.len() {
            if self.levels[l].unwritten.is_empty() {
                continue;
            }
            let storage = self.storage.clone();
            let level = &mut self.levels[l];
            if level.append.is_none() {
                if level.read.is_none() {
                    drop(
                        storage
                            .create_new(&level.path)
                            .map_err(|e| Error::io("create", &level.path, e))?,
                    );
                    level.read = Some(
                        storage
                            .open_read(&level.path)
                            .map_err(|e| Error::io("open", &level.path, e))?,
                    );
                }
                level.append = Some(crate::storage::open_write(&*storage, &level.path)?);
            }
            // At the offset the entries belong at, not at the file's end: a
            // write or sync that failed may have left some of them, and the
            // retry writes the same bytes over them.
            let f = level.append.as_mut().expect("opened above");
            f.write_at(&level.unwritten, level.on_disk * 32)
                .and_then(|()| f.sync_data())
                .map_err(|e| Error::io("write", &level.path, e))?;
            level.on_disk += (level.unwritten.len() / 32) as u64;
            level.unwritten.clear();
        }
        self.write_state()
    }

    /// Replaces `wormlog.tree` with the entries on disk now (all synced).
    fn write_state(&self) -> Result<()> {
        let state = TreeState {
            entries: self.levels.iter().map(|l| l.on_disk).collect(),
        };
        write_atomically(
            &*self.storage,
            &self.dir,
            &self.dir.join(TREE_STATE_TMP_FILE),
            &self.dir.join(TREE_STATE_FILE),
            &state.encode(),
        )
    }
}

/// What the tree needs of one record (its leaf's input, §14.1), as the
/// writer encoded it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LeafInput {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub kind: u8,
    pub hash: crate::format::Hash,
}

/// The leaf inputs of records the writer published and the tree has not
/// taken yet, in seq order: the tree is fed from memory rather than by
/// reading the records back (and, once sealed, decompressing them). Only a
/// shortcut: bounded, it forgets its oldest entries when full, and the tree
/// reads whatever the queue no longer holds from the segments.
#[derive(Debug, Default)]
pub(crate) struct PendingLeaves {
    queue: std::collections::VecDeque<LeafInput>,
    /// The newest published records' seqs and chain hashes, kept after
    /// the tree takes them: a proved append's previous hash, without
    /// reading the record back.
    recent: std::collections::VecDeque<(u64, Hash)>,
}

impl PendingLeaves {
    /// At most this many entries (56 bytes each) are held.
    pub const CAP: usize = 16_384;
    /// The tree is asked to take them once this many wait.
    pub const WAKE: usize = 4_096;
    /// Recent chain hashes kept (40 bytes each).
    pub const RECENT: usize = 4_096;

    /// The chain hash of record `seq`, if it is among the newest published.
    #[cfg(feature = "signing")]
    pub fn recent_hash(&self, seq: u64) -> Option<Hash> {
        let first = self.recent.front()?.0;
        let (s, h) = *self
            .recent
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)?;
        (s == seq).then_some(h)
    }

    /// Adds `new` (the next seqs after those held, in order), dropping the
    /// oldest past `CAP`; returns whether the tree should take them now.
    pub fn extend(&mut self, new: &mut Vec<LeafInput>) -> bool {
        debug_assert!(match (self.queue.back(), new.first()) {
            (Some(b), Some(f)) => f.seq == b.seq + 1,
            _ => true,
        });
        self.recent.extend(new.iter().map(|l| (l.seq, l.hash)));
        let old = self.recent.len().saturating_sub(Self::RECENT);
        self.recent.drain(..old);
        self.queue.extend(new.drain(..));
        // The writer's buffer for them, kept small after a large batch.
        new.shrink_to(Self::WAKE);
        let over = self.queue.len().saturating_sub(Self::CAP);
        self.queue.drain(..over);
        self.queue.len() >= Self::WAKE
    }

    /// Forgets the entries before `next`, then moves those from `next`
    /// through `upto` into `out`; returns the seq of the first entry left
    /// held, if any (where a gap the caller must read from disk ends).
    pub fn take(&mut self, next: u64, upto: u64, out: &mut Vec<LeafInput>) -> Option<u64> {
        while self.queue.front().is_some_and(|l| l.seq < next) {
            self.queue.pop_front();
        }
        if self.queue.front().is_some_and(|l| l.seq == next) {
            while self.queue.front().is_some_and(|l| l.seq <= upto) {
                out.extend(self.queue.pop_front());
            }
        }
        if self.queue.is_empty() {
            // An idle log holds little memory for this (many logs may be
            // open in one process).
            self.queue.shrink_to(256);
        }
        self.queue.front().map(|l| l.seq)
    }
}

fn to_hash(c: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(c);
    Hash::from_bytes(h)
}

impl HashSource for Tree {
    type Error = Error;

    /// A complete subtree of `size` = 2^k leaves: the root of 2^(k mod 8)
    /// consecutive entries of level k / 8 (a tile's worth at most).
    fn subtree(&self, start: u64, size: u64) -> Result<Hash> {
        debug_assert!(size.is_power_of_two() && start.is_multiple_of(size));
        if size >= MEMO_MIN {
            if let Some(h) = self.memo.borrow().get(&(start, size)) {
                return Ok(*h);
            }
        }
        let k = size.trailing_zeros();
        let l = (k / 8) as usize;
        let per = 1u64 << (8 * l as u32);
        let entries = self.entries(l, start / per, size / per)?;
        let root = root_of(&entries);
        if size >= MEMO_MIN {
            let mut memo = self.memo.borrow_mut();
            if memo.len() >= MEMO_MAX {
                memo.clear();
            }
            memo.insert((start, size), root);
        }
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(seqs: std::ops::RangeInclusive<u64>) -> Vec<LeafInput> {
        seqs.map(|seq| LeafInput {
            seq,
            timestamp_ns: seq * 10,
            kind: 0,
            hash: Hash::from_bytes([seq as u8; 32]),
        })
        .collect()
    }

    #[test]
    fn pending_leaves_hand_out_only_a_run_from_the_seq_asked_and_forget_the_oldest_when_full() {
        let mut p = PendingLeaves::default();
        assert!(!p.extend(&mut leaves(1..=10)), "few: no wake");
        let mut out = Vec::new();
        // Seqs before `next` are gone; only through `upto` is taken.
        assert_eq!(p.take(4, 7, &mut out), Some(8));
        assert_eq!(out, leaves(4..=7));
        // A seq the queue starts after is a gap: nothing taken, and the
        // caller learns where the held run begins.
        out.clear();
        assert_eq!(p.take(2, 10, &mut out), Some(8));
        assert!(out.is_empty());
        assert_eq!(p.take(8, 10, &mut out), None);
        assert_eq!(out, leaves(8..=10));
        // Past CAP, the oldest go, and a wake is asked for.
        let cap = PendingLeaves::CAP as u64;
        assert!(p.extend(&mut leaves(11..=10 + cap + 5)));
        out.clear();
        assert_eq!(p.take(11, 11, &mut out), Some(16), "11..=15 forgotten");
        assert!(out.is_empty());
    }
}
