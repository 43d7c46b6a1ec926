//! The Merkle tree's upkeep, proofs and check (format-spec.md §14). The
//! tree (tree.rs) is derived from the committed records: `catch_up` feeds
//! it every record it lacks, in seq order, and syncs the tiles it
//! completes. It takes the records' leaf inputs from the queue the writer
//! fills as it publishes (`Shared::pending_leaves`), and reads back from
//! the segments only what that bounded queue does not hold (after a reopen,
//! a batch larger than the queue, or for a read-only log). It runs when a
//! checkpoint, proof or verification needs the tree, on close, once a
//! second on the shared pool, and (in memory) whenever many leaves wait, so
//! appends never wait for it.

use crate::error::{Error, Result};
use crate::format::merkle::{
    consistency_proof, inclusion_proof, leaf_data, leaf_hash, root_of, tree_root,
    verify_consistency, verify_inclusion, LEAF_DATA_LEN, LEVELS_MAX, TILE_WIDTH,
};
use crate::format::Hash;
use crate::read;
use crate::shared::Shared;
use crate::state::Record;
use crate::tree::Tree;
use parking_lot::Mutex;

/// The tree head: how many records it covers (records 1..=size) and its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Records covered: the seq of the last one.
    pub size: u64,
    /// RFC 6962 root (SHA-256) of the tree of `size` leaves.
    pub root: Hash,
}

/// That record `seq` is leaf `seq - 1` of the tree of `tree_size` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The record proved (leaf `seq - 1`).
    pub seq: u64,
    /// The size of the tree the proof leads to the root of.
    pub tree_size: u64,
    /// The leaf's data (format-spec.md §14.1): seq, time, kind, chain hash.
    pub leaf: [u8; LEAF_DATA_LEN],
    /// Sibling hashes, nearest the leaf first (RFC 9162 §2.1.3).
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Whether the proof leads from its leaf to `root`.
    pub fn verify(&self, root: &Hash) -> bool {
        let Some(index) = self.seq.checked_sub(1) else {
            return false;
        };
        crate::format::merkle::parse_leaf_data(&self.leaf).is_some_and(|(seq, ..)| seq == self.seq)
            && crate::format::merkle::verify_inclusion(
                index,
                self.tree_size,
                &leaf_hash(&self.leaf),
                &self.hashes,
                root,
            )
    }

    /// Whether the proof is of `record`: its seq, time, kind and chain
    /// hash are the leaf's, and `prev_hash` (the chain hash of the record
    /// before it) with the record's payload gives that chain hash.
    pub fn binds(&self, record: &Record, prev_hash: &crate::format::Hash) -> bool {
        let chain = crate::format::chain_hash(
            prev_hash,
            record.seq(),
            record.timestamp(),
            record.kind() as u8,
            record.payload(),
        );
        chain == *record.hash()
            && self.leaf
                == leaf_data(
                    record.seq(),
                    record.timestamp(),
                    record.kind() as u8,
                    record.hash(),
                )
    }
}

/// That the tree of `new_size` leaves extends the tree of `old_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The earlier tree's size.
    pub old_size: u64,
    /// The later tree's size (`>= old_size`).
    pub new_size: u64,
    /// RFC 9162 §2.1.4 order.
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Whether the proof shows that the tree with root `new_root` extends
    /// the one with root `old_root` (RFC 9162 §2.1.4.2).
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> bool {
        crate::format::merkle::verify_consistency(
            self.old_size,
            self.new_size,
            old_root,
            new_root,
            &self.hashes,
        )
    }
}

fn unavailable(detail: String) -> Error {
    Error::TreeUnavailable { detail }
}

/// Feeds the tree every committed record it lacks and writes and syncs
/// what it added; returns the tree's size.
pub(crate) fn catch_up(shared: &Shared) -> Result<u64> {
    feed(shared, true)
}

/// Feeds the tree every committed record it lacks, in memory only (up to
/// the writer's periodic writes): for reads, proofs and verification,
/// which change nothing on disk and so cannot fail for a write.
pub(crate) fn catch_up_in_memory(shared: &Shared) -> Result<u64> {
    feed(shared, false)
}

fn feed(shared: &Shared, persist: bool) -> Result<u64> {
    /// A writer writes what it has every this many bytes of entries, so a
    /// first catch-up over a large log holds little in memory.
    const PERSIST_BYTES: usize = 32 << 20;
    let head = shared.visible.read().head.seq;
    let mut tree = shared.tree.lock();
    let first = shared.first_seq();
    if tree.size() + 1 < first && !tree.writable() {
        // A reader that followed the log past a retention run: the writer
        // kept the dropped records' leaves in the files; read them again.
        let storage = shared.options.storage.clone();
        *tree = Tree::open(storage, &shared.dir, false, head, first)?;
    }
    let size = tree.size();
    if size < head {
        if size + 1 < first {
            return Err(unavailable(format!(
                "the tree holds {size} records, and retention dropped records {}..{first} \
                 before the tree held them (a log older than its tree)",
                size + 1
            )));
        }
        let mut taken = Vec::new();
        while tree.size() < head {
            let before = tree.size();
            let next = tree.size() + 1;
            let held_from = shared.pending_leaves.lock().take(next, head, &mut taken);
            for l in taken.drain(..) {
                debug_assert_eq!(l.seq, tree.size() + 1, "leaves in seq order");
                tree.push_leaf(leaf_hash(&leaf_data(
                    l.seq,
                    l.timestamp_ns,
                    l.kind,
                    &l.hash,
                )));
            }
            // What the queue no longer (or never) held: read back.
            let next = tree.size() + 1;
            let gap_end = match held_from {
                Some(f) if f > next => head.min(f - 1),
                _ => head,
            };
            if next <= gap_end {
                for r in read::iter(shared, next..=gap_end)? {
                    let r = r?;
                    debug_assert_eq!(r.seq(), tree.size() + 1, "leaves in seq order");
                    tree.push_leaf(leaf_of(&r));
                    if persist && tree.unwritten_bytes() >= PERSIST_BYTES {
                        tree.persist()?;
                    }
                }
            }
            if persist && tree.unwritten_bytes() >= PERSIST_BYTES {
                tree.persist()?;
            }
            // Records the log says it holds and cannot give (a segment
            // cut behind the writer's back ends a read early, without an
            // error): no loop, which would hold the tree's lock for ever.
            if tree.size() == before {
                return Err(unavailable(format!(
                    "records {}..={head} could not be read to feed the tree",
                    before + 1
                )));
            }
        }
    }
    if persist {
        tree.persist()?;
    }
    Ok(tree.size())
}

fn leaf_of(r: &Record) -> Hash {
    leaf_hash(&leaf_data(r.seq(), r.timestamp(), r.kind() as u8, r.hash()))
}

/// Whether leaf `seq - 1` is the leaf of a record `seq` committed at
/// `timestamp_ns` with chain hash `hash` (of any kind), in the tree whose
/// root over `verified.0` leaves a verification computed (`verified.1`):
/// the tree vouching for a record that retention dropped. The leaf is read
/// from the tree's files with its inclusion proof, and counts only where
/// the proof leads to that root, so files changed since the check cannot
/// vouch for anything.
pub(crate) fn leaf_is(
    shared: &Shared,
    seq: u64,
    timestamp_ns: u64,
    hash: &Hash,
    verified: (u64, Hash),
) -> Result<bool> {
    let (size, root) = verified;
    if seq == 0 || seq > size {
        return Ok(false);
    }
    catch_up_in_memory(shared)?;
    let tree = shared.tree.lock();
    let stored = tree.entries(0, seq - 1, 1)?[0];
    let proof = inclusion_proof(&*tree, seq - 1, size)?;
    if !verify_inclusion(seq - 1, size, &stored, &proof, &root) {
        return Ok(false);
    }
    Ok((0..=u8::MAX).any(|kind| leaf_hash(&leaf_data(seq, timestamp_ns, kind, hash)) == stored))
}

/// The root of the tree of the first `size` leaves, read from the tree's
/// files and accepted only with a consistency proof (also read from them)
/// to the root over `verified.0` leaves that a verification computed
/// (`verified.1`); `None` where the files do not lead to it.
pub(crate) fn root_under(
    shared: &Shared,
    size: u64,
    verified: (u64, Hash),
) -> Result<Option<Hash>> {
    let (head, head_root) = verified;
    if size == head {
        return Ok(Some(head_root));
    }
    if size == 0 {
        return Ok(Some(crate::format::merkle::empty_root()));
    }
    if size > head {
        return Ok(None);
    }
    catch_up_in_memory(shared)?;
    let tree = shared.tree.lock();
    let root = tree_root(&*tree, size)?;
    let proof = consistency_proof(&*tree, size, head)?;
    Ok(verify_consistency(size, head, &root, &head_root, &proof).then_some(root))
}

/// Whether the tree's leaf of record `r` is that record's (its exact kind):
/// retention checks what it drops before recording the root over it. The
/// tree must already hold the record (fed by the caller).
pub(crate) fn holds_leaf_of(shared: &Shared, r: &Record) -> Result<bool> {
    let stored = shared.tree.lock().entries(0, r.seq() - 1, 1)?[0];
    Ok(stored == leaf_of(r))
}

/// The root of the tree of the first `size` records (caught up first;
/// written to disk first with `persist`, as a checkpoint needs).
/// The root of the tree of `size` records, in memory; `None` where the log
/// holds fewer (what a witness round asks of the log).
#[cfg(feature = "signing")]
pub(crate) fn root_at(shared: &Shared, size: u64) -> Result<Option<Hash>> {
    match head_at(shared, size, false) {
        Ok(h) => Ok(Some(h.root)),
        Err(Error::TreeUnavailable { .. }) if size > shared.visible.read().head.seq => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn head_at(shared: &Shared, size: u64, persist: bool) -> Result<TreeHead> {
    let have = feed(shared, persist)?;
    if size > have {
        return Err(unavailable(format!(
            "tree size {size} asked, the log holds {have}"
        )));
    }
    let tree = shared.tree.lock();
    Ok(TreeHead {
        size,
        root: tree_root(&*tree, size)?,
    })
}

/// The inclusion path of the record whose leaf data is `leaf` (record
/// `seq`) in the tree of `size` records, whose root the caller computed as
/// `root` (`head_at`): for a proved append, which has the leaf from its
/// receipt and need not read the record back. Checked against `root`
/// before it is handed out, as `prove_inclusion` checks.
#[cfg(feature = "signing")]
pub(crate) fn path_of_leaf(
    shared: &Shared,
    seq: u64,
    size: u64,
    leaf: &[u8; LEAF_DATA_LEN],
    root: &Hash,
) -> Result<Vec<Hash>> {
    let tree = shared.tree.lock();
    if seq == 0 || seq > size || size > tree.size() {
        return Err(unavailable(format!(
            "record {seq} is not in a tree of {size} records (the tree holds {})",
            tree.size()
        )));
    }
    // The tree's leaf for the record must be the receipt's (one lookup,
    // where checking the whole path against the root cost 17 SHA-256 a
    // record: 0.5 of a core at 64 writers). The path and the root come
    // from the same tree, whose levels are checked as they are built.
    let stored = tree.entries(0, seq - 1, 1)?[0];
    let hashes = inclusion_proof(&*tree, seq - 1, size)?;
    drop(tree);
    if stored != leaf_hash(leaf) {
        return Err(unavailable(format!(
            "record {seq} is not the leaf the tree holds for it"
        )));
    }
    debug_assert!(verify_inclusion(
        seq - 1,
        size,
        &leaf_hash(leaf),
        &hashes,
        root
    ));
    Ok(hashes)
}

pub(crate) fn prove_inclusion(shared: &Shared, seq: u64, tree_size: u64) -> Result<InclusionProof> {
    if seq == 0 || seq > tree_size {
        return Err(unavailable(format!(
            "record {seq} is not in a tree of {tree_size} records"
        )));
    }
    let have = catch_up_in_memory(shared)?;
    if tree_size > have {
        return Err(unavailable(format!(
            "tree size {tree_size} asked, the log holds {have}"
        )));
    }
    let r = read::get(shared, seq)?;
    let tree = shared.tree.lock();
    let leaf = leaf_data(r.seq(), r.timestamp(), r.kind() as u8, r.hash());
    let hashes = inclusion_proof(&*tree, seq - 1, tree_size)?;
    // A proof is handed out only where it holds: the record's own leaf,
    // through the path, to the tree's root. A record changed in place
    // (its chain recomputed, the tree not) would otherwise be shown beside
    // a signed root it is not under (the sixteenth red team).
    let root = tree_root(&*tree, tree_size)?;
    if !verify_inclusion(seq - 1, tree_size, &leaf_hash(&leaf), &hashes, &root) {
        return Err(Error::corrupt(
            shared.dir.join(crate::format::names::tree_file_name(0)),
            (seq - 1) * 32,
            Some(seq),
            crate::error::Corruption::TreeState {
                detail: format!(
                    "record {seq} is not the leaf the tree holds for it: the record or the \
                     tree was changed"
                ),
            },
        ));
    }
    Ok(InclusionProof {
        seq,
        tree_size,
        leaf,
        hashes,
    })
}

pub(crate) fn prove_consistency(
    shared: &Shared,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof> {
    if old_size == 0 || old_size > new_size {
        return Err(unavailable(format!(
            "no consistency proof from size {old_size} to {new_size}"
        )));
    }
    let have = catch_up_in_memory(shared)?;
    if new_size > have {
        return Err(unavailable(format!(
            "tree size {new_size} asked, the log holds {have}"
        )));
    }
    let tree = shared.tree.lock();
    Ok(ConsistencyProof {
        old_size,
        new_size,
        hashes: consistency_proof(&*tree, old_size, new_size)?,
    })
}

/// Every entry above level 0 is the root of its tile in the level below
/// (verification; level 0 is checked against the records as they are
/// walked).
/// It runs beside the walk over the records (on another core), so it
/// takes the tree's lock only to read, 64 tiles at a time.
pub(crate) fn check_levels(tree: &Mutex<Tree>) -> std::result::Result<(), String> {
    const TILES: u64 = 64;
    let mut l = 1;
    loop {
        let above = tree.lock().level_entries(l);
        if above == 0 {
            return Ok(());
        }
        let mut i = 0;
        while i < above {
            let n = TILES.min(above - i);
            let (below, entries) = {
                let t = tree.lock();
                let below = t
                    .entries(l - 1, i * TILE_WIDTH, n * TILE_WIDTH)
                    .map_err(|e| e.to_string())?;
                (below, t.entries(l, i, n).map_err(|e| e.to_string())?)
            };
            for (k, tile) in below.chunks(TILE_WIDTH as usize).enumerate() {
                if root_of(tile) != entries[k] {
                    let j = i + k as u64;
                    return Err(format!(
                        "entry {j} of level {l} is not the root of tile {j} of level {}",
                        l - 1
                    ));
                }
            }
            i += n;
        }
        l += 1;
    }
}

/// What `Log::export_tlog` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogExport {
    /// The tree size of the exported checkpoint.
    pub tree_size: u64,
    /// Hash tiles written, partial ones included.
    pub tiles: u64,
    /// Entry bundles written.
    pub bundles: u64,
    /// The first entry index whose bundle was written: bundles holding
    /// records that retention dropped are left out (C2SP pruning).
    pub first_index: u64,
}

/// Hash tile `index` of `level` with its first `width` hashes (C2SP
/// `tile/<L>/<N>`, or `.p/<W>` for a partial one).
pub(crate) fn tile(shared: &Shared, level: u32, index: u64, width: u64) -> Result<Vec<Hash>> {
    if level as usize >= LEVELS_MAX || width == 0 || width > TILE_WIDTH {
        return Err(unavailable(format!(
            "no tile {level}/{index} of width {width}: levels are 0..{LEVELS_MAX}, widths 1..=256"
        )));
    }
    catch_up_in_memory(shared)?;
    let tree = shared.tree.lock();
    let have = tree.level_entries(level as usize);
    let end = index
        .checked_mul(TILE_WIDTH)
        .and_then(|start| start.checked_add(width));
    match end {
        Some(end) if end <= have => tree.entries(level as usize, index * TILE_WIDTH, width),
        _ => Err(unavailable(format!(
            "tile {level}/{index} of width {width} is beyond the tree's {have} entries at level {level}"
        ))),
    }
}

/// Writes the static C2SP tlog (format-spec.md §14.5) of the tree of the
/// first `size` records into `out`: `checkpoint` (the `note` given), every
/// hash tile and the partial tiles of `size`, and the entry bundles of the
/// records the log still holds.
pub(crate) fn export_tlog(
    shared: &Shared,
    out: &std::path::Path,
    note: &str,
    size: u64,
) -> Result<TlogExport> {
    use crate::format::merkle::tile_path;
    let have = catch_up_in_memory(shared)?;
    if size > have || size == 0 {
        return Err(unavailable(format!(
            "tree size {size} asked, the log holds {have}"
        )));
    }
    let write = |rel: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, e))
    };
    write("checkpoint", note.as_bytes())?;
    let mut report = TlogExport {
        tree_size: size,
        tiles: 0,
        bundles: 0,
        first_index: 0,
    };
    // Level L has size / 256^L entries at this size.
    let mut entries = size;
    let mut level = 0u32;
    while entries > 0 {
        let tree = shared.tree.lock();
        for n in 0..entries.div_ceil(TILE_WIDTH) {
            let w = TILE_WIDTH.min(entries - n * TILE_WIDTH);
            let hashes = tree.entries(level as usize, n * TILE_WIDTH, w)?;
            write_tile(&write, &tile_path(Some(level), n, w), &hashes)?;
            report.tiles += 1;
        }
        drop(tree);
        entries /= TILE_WIDTH;
        level += 1;
    }
    // Entry bundles: the leaf data of every record, as u16-BE-prefixed
    // entries, 256 to a bundle.
    let first_held = shared.first_seq();
    let bundles = size.div_ceil(TILE_WIDTH);
    let first_bundle = (first_held - 1).div_ceil(TILE_WIDTH);
    report.first_index = first_bundle * TILE_WIDTH;
    for n in first_bundle..bundles {
        let lo = n * TILE_WIDTH + 1;
        let hi = ((n + 1) * TILE_WIDTH).min(size);
        let mut bytes = Vec::with_capacity((hi - lo + 1) as usize * (LEAF_DATA_LEN + 2));
        for r in read::iter(shared, lo..=hi)? {
            let r = r?;
            bytes.extend_from_slice(&(LEAF_DATA_LEN as u16).to_be_bytes());
            bytes.extend_from_slice(&leaf_data(r.seq(), r.timestamp(), r.kind() as u8, r.hash()));
        }
        write(&tile_path(None, n, hi - lo + 1), &bytes)?;
        report.bundles += 1;
    }
    Ok(report)
}

fn write_tile(write: &dyn Fn(&str, &[u8]) -> Result<()>, rel: &str, hashes: &[Hash]) -> Result<()> {
    let bytes: Vec<u8> = hashes.iter().flat_map(|h| *h.as_bytes()).collect();
    write(rel, &bytes)
}
