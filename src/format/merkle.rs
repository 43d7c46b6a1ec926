//! The Merkle tree over the log (format-spec.md §14): RFC 6962 hashing
//! (SHA-256) over fixed-size leaf data, the C2SP tlog-tiles geometry, and
//! the proofs of RFC 9162 §2.1.3–2.1.4, built from any source of stored
//! subtree hashes and checked with no log at hand.

use super::hash::Hash;
use sha2::{Digest, Sha256};

/// Bytes of a leaf's data: seq, commit time, kind and chain hash.
pub const LEAF_DATA_LEN: usize = 49;
/// Hashes per full tile (C2SP: tile height 8).
pub const TILE_WIDTH: u64 = 256;
/// Levels of the tree one tile spans (C2SP tile height): 2^8 = 256 hashes.
pub const TILE_HEIGHT: u32 = 8;
/// Bytes of a full tile.
pub const TILE_BYTES: usize = TILE_WIDTH as usize * 32;
/// Levels a tree of up to 2^64 leaves can need (8 bits each).
pub const LEVELS_MAX: usize = 8;

/// A leaf's data: `seq u64 LE || timestamp_ns u64 LE || kind u8 ||
/// chain_hash [32]`. Fixed-size, so hashing a leaf costs the same whatever
/// the payload; the chain hash binds the payload (and the whole chain
/// before it), so a proof consumer who has the record and the chain hash
/// before it recomputes the chain hash from the payload and compares.
pub fn leaf_data(seq: u64, timestamp_ns: u64, kind: u8, hash: &Hash) -> [u8; LEAF_DATA_LEN] {
    let mut d = [0u8; LEAF_DATA_LEN];
    d[0..8].copy_from_slice(&seq.to_le_bytes());
    d[8..16].copy_from_slice(&timestamp_ns.to_le_bytes());
    d[16] = kind;
    d[17..49].copy_from_slice(hash.as_bytes());
    d
}

/// The fields of leaf data, where `data` is exactly `LEAF_DATA_LEN` bytes.
pub fn parse_leaf_data(data: &[u8]) -> Option<(u64, u64, u8, Hash)> {
    if data.len() != LEAF_DATA_LEN {
        return None;
    }
    let seq = u64::from_le_bytes(data[0..8].try_into().ok()?);
    let ts = u64::from_le_bytes(data[8..16].try_into().ok()?);
    let h = Hash::from_slice(&data[17..49])?;
    Some((seq, ts, data[16], h))
}

/// RFC 6962: SHA-256(0x00 || leaf data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash::from_bytes(h.finalize().into())
}

/// RFC 6962: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    Hash::from_bytes(h.finalize().into())
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Hash::from_bytes(Sha256::digest([]).into())
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// RFC 6962's MTH over `hashes` taken as the hashes of consecutive
/// subtrees of equal size (leaf hashes, or a tile's entries): the root of
/// the tree they are the bottom of. Empty input gives the empty root.
pub fn root_of(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => empty_root(),
        1 => hashes[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of(&hashes[..k]), &root_of(&hashes[k..]))
        }
    }
}

/// Where a tree's hashes come from: `subtree(start, size)` is the MTH of
/// leaves `start..start + size`, for `size` a power of two and `start` a
/// multiple of it, within the tree.
pub trait HashSource {
    /// Why a hash could not be had.
    type Error;
    /// The MTH of leaves `start..start + size`.
    fn subtree(&self, start: u64, size: u64) -> Result<Hash, Self::Error>;
}

/// MTH of leaves `start..end` (end > start), by RFC 6962's recursion: the
/// left part is the largest power of two below the range's size.
pub fn range_hash<S: HashSource>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() {
        return src.subtree(start, n);
    }
    let k = split_point(n);
    let left = src.subtree(start, k)?;
    let right = range_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of the first `size` leaves.
pub fn tree_root<S: HashSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` (0-based) in the
/// tree of the first `size` leaves, nearest the leaf first.
pub fn inclusion_proof<S: HashSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    debug_assert!(index < size);
    let mut proof = Vec::new();
    path(src, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// PATH(m, D[start:end]), appending nearest-first.
fn path<S: HashSource>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(src.subtree(start, k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1: the consistency proof from the tree of the first
/// `old` leaves to that of the first `new` (0 < old ≤ new).
pub fn consistency_proof<S: HashSource>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    debug_assert!(0 < old && old <= new);
    let mut proof = Vec::new();
    if old < new {
        subproof(src, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

/// SUBPROOF(m, D[start:end], b), appending in the RFC's order.
fn subproof<S: HashSource>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    b: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !b {
            out.push(range_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, start + k, b, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(src.subtree(start, k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: whether `proof` shows that the leaf hashing to
/// `leaf` is leaf `index` of the tree of `size` leaves with root `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

/// RFC 9162 §2.1.4.2: whether `proof` shows that the tree of `new` leaves
/// with root `new_root` extends the tree of `old` leaves with `old_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        // Every tree extends the empty one; RFC 9162 sends no proof.
        return proof.is_empty() && old_root == &empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &fr == old_root && &sr == new_root
}

/// The C2SP path of tile `index` at `level` (`tile/<L>/<N>`, with
/// `.p/<W>` for a partial tile of `width` < 256 hashes), or of an entry
/// bundle when `level` is `None` (`tile/entries/<N>`).
pub fn tile_path(level: Option<u32>, index: u64, width: u64) -> String {
    let mut n = String::new();
    let digits = format!("{index}");
    // Groups of three digits from the right, zero-padded, all but the
    // last with an `x`.
    let padded = format!("{:0>w$}", digits, w = digits.len().div_ceil(3) * 3);
    let groups: Vec<&str> = (0..padded.len() / 3)
        .map(|i| &padded[i * 3..i * 3 + 3])
        .collect();
    for (i, g) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            n.push('x');
        }
        n.push_str(g);
        if i + 1 < groups.len() {
            n.push('/');
        }
    }
    let level = match level {
        Some(l) => l.to_string(),
        None => "entries".to_string(),
    };
    if width < TILE_WIDTH {
        format!("tile/{level}/{n}.p/{width}")
    } else {
        format!("tile/{level}/{n}")
    }
}

/// Every hash tile (level, index, width) a tree of `size` leaves has: the
/// full tiles of each level and the partial tile at its right edge, which
/// is what a tlog-tiles client fetches to prove anything at that size.
pub fn tiles_of_size(size: u64) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    // Level L has size / 256^L entries.
    let mut entries = size;
    let mut level = 0u32;
    while entries > 0 {
        out.extend((0..entries / TILE_WIDTH).map(|n| (level, n, TILE_WIDTH)));
        if !entries.is_multiple_of(TILE_WIDTH) {
            out.push((level, entries / TILE_WIDTH, entries % TILE_WIDTH));
        }
        entries /= TILE_WIDTH;
        level += 1;
    }
    out
}

/// How many tiles `tiles_of_size(size)` lists, without listing them.
pub fn tiles_of_size_count(size: u64) -> u64 {
    let mut count = 0;
    let mut entries = size;
    while entries > 0 {
        count += entries / TILE_WIDTH + u64::from(!entries.is_multiple_of(TILE_WIDTH));
        entries /= TILE_WIDTH;
    }
    count
}

/// The partial tiles (level, index, width) at the right edge of a tree of
/// `size` leaves: one per level whose entry count is not a multiple of
/// 256, so at most `LEVELS_MAX`.
pub fn edge_tiles(size: u64) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    let mut entries = size;
    let mut level = 0u32;
    while entries > 0 {
        if !entries.is_multiple_of(TILE_WIDTH) {
            out.push((level, entries / TILE_WIDTH, entries % TILE_WIDTH));
        }
        entries /= TILE_WIDTH;
        level += 1;
    }
    out
}

/// The level, index and width of the hash tile at C2SP path `path` (as
/// [`tile_path`] writes them, exactly: one spelling per tile); `None` for
/// anything else, entry bundles included.
pub fn parse_tile_path(path: &str) -> Option<(u32, u64, u64)> {
    let rest = path.strip_prefix("tile/")?;
    let (level, rest) = rest.split_once('/')?;
    let level: u32 = level.parse().ok()?;
    if level as usize >= LEVELS_MAX {
        return None;
    }
    let (index_part, width) = match rest.split_once(".p/") {
        Some((i, w)) => (i, w.parse::<u64>().ok()?),
        None => (rest, TILE_WIDTH),
    };
    let mut index: u64 = 0;
    for group in index_part.split('/') {
        let digits = group.strip_prefix('x').unwrap_or(group);
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    if width == 0 || width > TILE_WIDTH {
        return None;
    }
    // Its last entry, and the byte after it in the level's file, must be
    // countable: an index near 2^64 names no tile.
    index
        .checked_mul(TILE_WIDTH)?
        .checked_add(width)?
        .checked_mul(32)?;
    // Only the canonical spelling: `tile/0/0001` or `tile/0/x000/001`
    // would otherwise name the same tile as a second object.
    (tile_path(Some(level), index, width) == path).then_some((level, index, width))
}

/// The hashes that stand for leaves `begin..end` of a tree (a compact
/// range): the largest aligned perfect subtrees that cover it, left to
/// right, each as its height and MTH. O(log n) hashes for any range; two
/// adjacent ranges join into one, and the range `0..n` gives the root of
/// the tree of `n` leaves. Verification builds one over the leaves it
/// computes from the records, so that the root it reports comes from what
/// it checked, not from the tree's files read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactRange {
    begin: u64,
    end: u64,
    nodes: Vec<(u32, Hash)>,
}

impl CompactRange {
    /// The empty range at leaf index `at`.
    pub fn new(at: u64) -> CompactRange {
        CompactRange {
            begin: at,
            end: at,
            nodes: Vec::new(),
        }
    }

    /// The first leaf index past the range.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The first leaf index of the range.
    pub fn begin(&self) -> u64 {
        self.begin
    }

    /// Extends the range by one leaf.
    pub fn push_leaf(&mut self, leaf: Hash) {
        self.push_subtree(0, leaf);
    }

    /// Extends the range by the perfect subtree of height `height` that
    /// starts at its end (which must be a multiple of `2^height`).
    fn push_subtree(&mut self, height: u32, hash: Hash) {
        debug_assert!(self.end.is_multiple_of(1u64 << height));
        self.nodes.push((height, hash));
        self.end += 1 << height;
        // Two last nodes of one height join where the left one starts at a
        // multiple of their joint size (and within the range).
        while let [.., (hl, left), (hr, right)] = self.nodes[..] {
            let size = 1u64 << hl;
            let left_start = self.end - (1u64 << hr) - size;
            if hl != hr || !left_start.is_multiple_of(2 * size) || left_start < self.begin {
                break;
            }
            self.nodes.truncate(self.nodes.len() - 2);
            self.nodes.push((hl + 1, node_hash(&left, &right)));
        }
    }

    /// Extends the range by `next`, which must start where this one ends.
    pub fn append(&mut self, next: &CompactRange) {
        assert_eq!(self.end, next.begin, "compact ranges must be adjacent");
        for (h, hash) in &next.nodes {
            self.push_subtree(*h, *hash);
        }
    }

    /// The range `0..size` from a tree's hashes: one subtree per set bit of
    /// `size`, highest first.
    pub fn of_prefix<S: HashSource>(src: &S, size: u64) -> Result<CompactRange, S::Error> {
        let mut range = CompactRange::new(0);
        for h in (0..64u32).rev() {
            if size & (1u64 << h) != 0 {
                let hash = src.subtree(range.end, 1u64 << h)?;
                range.push_subtree(h, hash);
            }
        }
        Ok(range)
    }

    /// The root of the tree of leaves `0..end`; `None` for a range that
    /// does not start at leaf 0.
    pub fn root(&self) -> Option<Hash> {
        if self.begin != 0 {
            return None;
        }
        let mut nodes = self.nodes.iter().rev();
        let Some((_, last)) = nodes.next() else {
            return Some(empty_root());
        };
        Some(nodes.fold(*last, |acc, (_, left)| node_hash(left, &acc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_has_full_tiles_and_one_partial_tile_per_level_at_its_edge() {
        assert!(tiles_of_size(0).is_empty());
        assert_eq!(tiles_of_size(5), vec![(0, 0, 5)]);
        assert_eq!(tiles_of_size(256), vec![(0, 0, 256), (1, 0, 1)]);
        let t = tiles_of_size(256 * 256 + 3);
        assert_eq!(t.iter().filter(|x| x.0 == 0 && x.2 == 256).count(), 256);
        assert!(t.contains(&(0, 256, 3)) && t.contains(&(1, 0, 256)) && t.contains(&(2, 0, 1)));
        assert_eq!(t.len(), 256 + 1 + 1 + 1);
        for size in [0, 1, 255, 256, 257, 65_536, 65_539, u64::MAX] {
            let edge: Vec<_> = tiles_of_size(size.min(70_000))
                .into_iter()
                .filter(|t| t.2 < TILE_WIDTH)
                .collect();
            if size <= 70_000 {
                assert_eq!(edge_tiles(size), edge, "{size}");
            }
            assert!(edge_tiles(size).len() <= LEVELS_MAX);
            if size <= 70_000 {
                assert_eq!(tiles_of_size_count(size), tiles_of_size(size).len() as u64);
            }
        }
    }

    #[test]
    fn tile_paths_parse_back_and_only_in_their_one_spelling() {
        for (l, n, w) in [(0, 0, 256), (0, 1234067, 256), (3, 999, 1), (7, 1000, 255)] {
            assert_eq!(parse_tile_path(&tile_path(Some(l), n, w)), Some((l, n, w)));
        }
        for bad in [
            "tile/0/0001",
            "tile/0/x000/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/300",
            "tile/8/001",
            "tile/00/001",
            "tile/entries/001",
            "tile/0/001/",
            "tile/0/abc",
            "tiles/0/001",
            "tile/0/x001",
            "tile/0/x018/x446/x744/x073/x709/x551/615",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }

    /// `h` with byte `at` changed.
    fn flip(h: Hash, at: usize) -> Hash {
        let mut b = h.to_bytes();
        b[at] ^= 0x80;
        Hash::from_bytes(b)
    }

    /// Leaf hashes kept in memory: the simplest source, to check proofs
    /// against brute force.
    struct Leaves(Vec<Hash>);

    impl HashSource for Leaves {
        type Error = ();
        fn subtree(&self, start: u64, size: u64) -> Result<Hash, ()> {
            assert!(size.is_power_of_two() && start.is_multiple_of(size));
            Ok(root_of(&self.0[start as usize..(start + size) as usize]))
        }
    }

    fn leaves(n: u64) -> Leaves {
        Leaves((0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect())
    }

    #[test]
    fn rfc6962_test_vector_roots() {
        // The eight-leaf tree of RFC 6962's reference tests (certificate-
        // transparency-go merkletree tests): leaves "", 00, 10, 2021, 3031,
        // 40414243, 5051525354555657, 606162636465666768696a6b6c6d6e6f.
        let data: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let hex = |h: Hash| crate::format::hex(h);
        assert_eq!(
            hex(root_of(&hashes[..1])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex(root_of(&hashes[..8])),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        assert_eq!(
            hex(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_changed_one_does_not() {
        for size in 1..=70u64 {
            let src = leaves(size);
            let root = tree_root(&src, size).unwrap();
            assert_eq!(root, root_of(&src.0));
            for i in 0..size {
                let proof = inclusion_proof(&src, i, size).unwrap();
                assert!(verify_inclusion(i, size, &src.0[i as usize], &proof, &root));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = flip(bad[0], 0);
                    assert!(!verify_inclusion(i, size, &src.0[i as usize], &bad, &root));
                    assert!(!verify_inclusion(i, size, first, &proof, &root) || proof.len() > 1);
                }
                if size > 1 {
                    let other = (i + 1) % size;
                    assert!(!verify_inclusion(
                        other,
                        size,
                        &src.0[i as usize],
                        &proof,
                        &root
                    ));
                }
                // A proof is of one tree: not of the next one's root.
                let bigger = leaves(size + 1);
                let next_root = root_of(&bigger.0);
                assert!(!verify_inclusion(
                    i,
                    size + 1,
                    &src.0[i as usize],
                    &proof,
                    &next_root
                ));
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewritten_history_does_not() {
        let src = leaves(80);
        for new in 1..=80u64 {
            let new_root = tree_root(&src, new).unwrap();
            for old in 1..=new {
                let old_root = tree_root(&src, old).unwrap();
                let proof = consistency_proof(&src, old, new).unwrap();
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "{old} -> {new}"
                );
                let forged = flip(old_root, 5);
                assert!(!verify_consistency(old, new, &forged, &new_root, &proof));
                if let Some(last) = proof.len().checked_sub(1) {
                    let mut bad = proof.clone();
                    bad[last] = flip(bad[last], 0);
                    assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                }
            }
        }
    }

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_path(Some(0), 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(Some(1), 0, 256), "tile/1/000");
        assert_eq!(tile_path(Some(2), 5, 17), "tile/2/005.p/17");
        assert_eq!(tile_path(None, 1000, 256), "tile/entries/x001/000");
    }

    #[test]
    fn leaf_data_round_trips_and_is_fixed_size() {
        let d = leaf_data(7, 99, 3, &Hash::from_bytes([9; 32]));
        assert_eq!(d.len(), LEAF_DATA_LEN);
        assert_eq!(
            parse_leaf_data(&d),
            Some((7, 99, 3, Hash::from_bytes([9; 32])))
        );
        assert_eq!(parse_leaf_data(&d[..48]), None);
    }

    #[test]
    fn a_compact_range_joined_from_any_pieces_gives_the_trees_root() {
        let leaves: Vec<Hash> = (0..300u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for n in [0usize, 1, 2, 3, 5, 8, 13, 255, 256, 257, 300] {
            let mut whole = CompactRange::new(0);
            for l in &leaves[..n] {
                whole.push_leaf(*l);
            }
            assert_eq!(whole.root(), Some(root_of(&leaves[..n])), "n = {n}");
            // Split at every point (and a second split), joined back.
            for a in (0..=n).step_by(7) {
                for b in (a..=n).step_by(11) {
                    let piece = |from: usize, to: usize| {
                        let mut r = CompactRange::new(from as u64);
                        for l in &leaves[from..to] {
                            r.push_leaf(*l);
                        }
                        r
                    };
                    let mut joined = piece(0, a);
                    joined.append(&piece(a, b));
                    joined.append(&piece(b, n));
                    assert_eq!(joined.root(), whole.root(), "n = {n}, split {a}, {b}");
                }
            }
        }
    }

    #[test]
    fn a_compact_range_of_a_prefix_read_from_a_tree_gives_its_root() {
        struct Leaves(Vec<Hash>);
        impl HashSource for Leaves {
            type Error = ();
            fn subtree(&self, start: u64, size: u64) -> Result<Hash, ()> {
                Ok(root_of(&self.0[start as usize..(start + size) as usize]))
            }
        }
        let leaves = Leaves((0..600u64).map(|i| leaf_hash(&i.to_be_bytes())).collect());
        for n in [0u64, 1, 6, 256, 511, 600] {
            let mut range = CompactRange::of_prefix(&leaves, n).unwrap();
            assert_eq!(range.root(), Some(root_of(&leaves.0[..n as usize])));
            range.push_leaf(leaves.0[0]);
            let mut more = leaves.0[..n as usize].to_vec();
            more.push(leaves.0[0]);
            assert_eq!(range.root(), Some(root_of(&more)));
        }
    }
}
