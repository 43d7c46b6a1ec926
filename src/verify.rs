//! Full verification: every frame, CRC, seq, timestamp and chain link, seal
//! records and whole-segment digests, sealed files' indexes, and the links
//! between segments, from the genesis hash (or the retention anchor) to the
//! head. Segments are checked independently on all cores (each carries the
//! hash its chain starts from), then linked in order.

use crate::anchor::{check_log_start, read_hold, Anchor};
use crate::error::{Corruption, Error, Result};
use crate::format::merkle::{leaf_data, leaf_hash, CompactRange, TILE_WIDTH};
use crate::format::names::{
    parse_sealed_file_name, parse_segment_file_name, tree_file_name, ANCHOR_FILE, TREE_STATE_FILE,
};
use crate::format::{
    genesis_hash, hex, ChainPos, FrameHead, Hash, IndexPoint, SystemEvent, CREATED_AT,
    FIRST_SEQ_AT, INDEX_POINT_INTERVAL, LOG_ID_AT, PREV_HASH_AT, ZSTD_FRAME_MAGIC,
};
use crate::format::{FssKeyFile, VerificationKey};
use crate::sealed::{compressed_digest, open_sealed};
use crate::segment::{SealedMeta, Segment};
use crate::shared::Shared;
use crate::state::Head;
use crate::storage::{FsStorage, Storage};
use crate::tree::Tree;
use crate::walk::{BatchedDigest, Check, FrameWalker, Walked};

mod rules;
mod sealing;
use parking_lot::Mutex;
use rules::{ChainRules, Noted};
pub use sealing::SealingReport;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Of `segments`, how many are sealed files.
    pub sealed_segments: u64,
    /// Records checked, engine records included.
    pub records: u64,
    /// Uncompressed bytes of segments checked (headers and frames).
    pub bytes: u64,
    /// The first record checked, and the chain hash it continues from.
    pub first_seq: u64,
    /// Chain hash of record `first_seq - 1` (the genesis hash for seq 1).
    pub start_hash: Hash,
    /// The last record checked; for a log, its head when the check began.
    pub head: Head,
    /// Bytes of the active segment after its last intact record, which the
    /// check did not cover: a tail a live writer is writing, or one a crash
    /// tore (the next writer's open cuts and logs it), or bytes someone
    /// added; zeros at the very end (a preallocating writer's space written
    /// ahead) are not counted. Only a log opened read-only can have them; never silently
    /// dropped, so tools show them.
    pub unchecked_tail_bytes: u64,
    /// Forward-secure sealing, where the log is sealed.
    pub sealing: Option<SealingReport>,
    /// Where the log has a Merkle tree: its root over records
    /// `1..=head.seq`, made of the leaves this check computed from the
    /// records it walked and, for records retention dropped, the hashes
    /// that stand for them read once from the tree's files and checked
    /// against the root the newest anchor entry recorded. Not the tree's
    /// files read again after the check: a checkpoint signs this root.
    pub tree_root: Option<Hash>,
    /// The hash of the newest anchor entry this check read (the anchor's
    /// genesis value where it has none): the retention line a checkpoint
    /// of this verification states.
    pub anchor_head: Hash,
}

/// What one segment holds, as found by checking it alone.
#[derive(Debug)]
struct Summary {
    /// From the segment's header: what its records' stated values must say.
    log_id: [u8; 16],
    version: u16,
    records: u64,
    bytes: u64,
    /// Its last record (or the position its header continues).
    last: ChainPos,
    /// The segment ends with a seal record.
    sealed_record: bool,
    /// The first record's event after any epoch tags, if it is an engine
    /// record (its opening record).
    first_event: Option<SystemEvent>,
    /// Epoch tags before the opening record: a writer whose open finishes a
    /// roll a crash cut short tags the epochs that ended meanwhile before
    /// the new segment's first record (each tag must precede any record of
    /// a later epoch, and the opening records are of the epoch of the open).
    leading_tags: u64,
    /// The commit time of its first record.
    first_ns: Option<u64>,
    /// The commit time of the first record (not a tag) since its last tag,
    /// or since its start: what the next tag covers from.
    since_tag_ns: Option<u64>,
    /// Records that make or state the log's state (holds, policy, drops),
    /// in order, for the pass over the whole chain (rules.rs).
    noted: Vec<Noted>,
    /// Where the log has a tree: the leaves of the segment's records.
    leaves: Option<CompactRange>,
}

/// How far a verification has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyProgress {
    /// Uncompressed segment bytes checked so far.
    pub bytes_checked: u64,
    /// Uncompressed segment bytes the verification will check.
    pub bytes_total: u64,
}

/// Bytes of the active segment after `end` (its last intact record) up to
/// its last non-zero byte: zeros there are a preallocating writer's space
/// written ahead (format-spec.md 6.1), not bytes to warn about.
fn unchecked_tail(active: &Segment, end: u64) -> Result<u64> {
    const CHUNK: u64 = 64 << 10;
    let len = active.file_len()?;
    let mut upto = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while upto > end {
        let from = upto.saturating_sub(CHUNK).max(end);
        let n = (upto - from) as usize;
        let got = active
            .file
            .read_full_at(&mut buf[..n], from)
            .map_err(|e| Error::io("read", &active.path, e))?;
        if let Some(i) = buf[..got].iter().rposition(|b| *b != 0) {
            return Ok(from + i as u64 + 1 - end);
        }
        upto = from;
    }
    Ok(0)
}

/// Checks the leaves of a segment's records against level 0 of the tree,
/// a tile's worth at a time.
struct LeafCheck<'a> {
    tree: &'a Mutex<Tree>,
    /// Level 0's file, to name in an error.
    path: std::path::PathBuf,
    first_seq: u64,
    leaves: Vec<Hash>,
    /// The segment's leaves as computed from its records: the verified
    /// root is made of these, not of level 0 read again.
    range: CompactRange,
}

impl<'a> LeafCheck<'a> {
    fn new(tree: &'a Mutex<Tree>, dir: &Path, first_seq: u64) -> Self {
        LeafCheck {
            tree,
            path: dir.join(tree_file_name(0)),
            first_seq: 0,
            leaves: Vec::with_capacity(TILE_WIDTH as usize),
            range: CompactRange::new(first_seq - 1),
        }
    }

    fn push(&mut self, at: ChainPos, kind: u8) -> Result<()> {
        if self.leaves.is_empty() {
            self.first_seq = at.seq;
        }
        let leaf = leaf_hash(&leaf_data(at.seq, at.timestamp_ns, kind, &at.hash));
        self.range.push_leaf(leaf);
        self.leaves.push(leaf);
        if self.leaves.len() as u64 == TILE_WIDTH {
            self.compare()?;
        }
        Ok(())
    }

    fn compare(&mut self) -> Result<()> {
        if self.leaves.is_empty() {
            return Ok(());
        }
        let start = self.first_seq - 1;
        let stored = self
            .tree
            .lock()
            .entries(0, start, self.leaves.len() as u64)?;
        if let Some(i) = (0..stored.len()).find(|&i| stored[i] != self.leaves[i]) {
            let seq = self.first_seq + i as u64;
            return Err(Error::corrupt(
                &self.path,
                (seq - 1) * 32,
                Some(seq),
                Corruption::TreeState {
                    detail: format!("the tree's leaf for record {seq} is not its hash"),
                },
            ));
        }
        self.leaves.clear();
        Ok(())
    }
}

/// Reports progress every this many bytes of a segment.
const PROGRESS_STEP: u64 = 4 << 20;

/// The sealing key file a verification checks the tags against (none for
/// a copy: see `link_segments`). Read before the log's end is taken
/// (`verify_log`'s snapshot, and for a read-only log a `refresh` after
/// this): a writer stores an evolved key only once the tag it wrote before
/// is published, so a key file read first is never ahead of the tags the
/// snapshot holds. Read after, a tag and a key written in between (the
/// epoch tick of a live log during its verification) made an intact log
/// read as cut back after its tags.
pub(crate) fn key_file_for_verify(shared: &Shared) -> Result<Option<FssKeyFile>> {
    // A copy is checked through its last tag, never against a key file:
    // a backup of a live log may hold one copied before or after the
    // segments (the fifteenth red team's cp of a running log read as a
    // cut tail, exit 1); the key file is the host's, not the copy's.
    if shared.options.verify_as_copy {
        return Ok(None);
    }
    crate::fss::load(&*shared.options.storage, &shared.dir)
}

/// Verifies the log as it is now, the key file `key_file` read before (see
/// `key_file_for_verify`).
pub(crate) fn verify_log(
    shared: &Shared,
    keys: &[VerificationKey],
    key_file: Option<&FssKeyFile>,
    progress: &(dyn Fn(VerifyProgress) + Sync),
) -> Result<VerifyReport> {
    // A snapshot: the segments and the visible end as of now. Frames being
    // written past `active_len` are not looked at, so they are never
    // mistaken for damage.
    crate::permissions::refuse_symlinks(&*shared.options.storage, &shared.dir)?;
    refuse_other_logs_keys(shared, keys)?;
    let visible = *shared.visible.read();
    check_tree_files(shared)?;
    let segments: Vec<Arc<Segment>> = shared
        .segments
        .read()
        .iter()
        .filter(|s| s.number <= visible.active_segment)
        .cloned()
        .collect();
    let Some(first) = segments.first() else {
        return Err(Error::NotFound {
            path: shared.dir.clone(),
        });
    };
    // The tree is brought up to the snapshot's head from the records, then
    // each record's leaf is checked against it as the record is walked.
    let tree = match crate::merkle::catch_up_in_memory(shared) {
        Ok(size) if size >= visible.head.seq => Some(&shared.tree),
        Ok(_) | Err(Error::TreeUnavailable { .. }) => None,
        Err(e) => return Err(e),
    };
    let mut summaries = walk_segments(shared, &segments, &visible, tree, progress)?;
    let anchor = shared.anchor_on_disk()?;
    check_anchored_roots(shared, &anchor, tree.is_some())?;
    check_log_start(first, &anchor)?;
    check_newest_anchor(shared, &segments, &anchor)?;
    let start = first.header.start();
    if start.seq == 0 && start.hash != genesis_hash(&shared.log_id) {
        return Err(Error::corrupt(
            &first.path,
            PREV_HASH_AT as u64,
            Some(1),
            Corruption::SegmentDiscontinuity {
                detail: "the first segment does not continue this log's genesis hash".into(),
            },
        ));
    }
    let mut report = VerifyReport {
        segments: 0,
        sealed_segments: 0,
        records: 0,
        bytes: 0,
        first_seq: start.next_seq(),
        start_hash: start.hash,
        head: visible.head,
        unchecked_tail_bytes: 0,
        sealing: None,
        tree_root: None,
        anchor_head: anchor.last_hash(&shared.log_id),
    };
    let mut ranges: Vec<Option<CompactRange>> = summaries
        .iter_mut()
        .map(|s| s.as_mut().ok().and_then(|s| s.leaves.take()))
        .collect();
    let end = link_segments(
        shared,
        &segments,
        summaries,
        &anchor,
        Keys {
            given: keys,
            file: key_file,
        },
        start,
        &mut report,
    )?;
    if shared.read_only {
        let active = &segments[segments.len() - 1];
        report.unchecked_tail_bytes = unchecked_tail(active, visible.active_len)?;
    }
    if end.seq != visible.head.seq || end.hash != visible.head.hash {
        let last = &segments[segments.len() - 1];
        return Err(Error::corrupt(
            &last.path,
            visible.active_len,
            Some(visible.head.seq),
            Corruption::ChainBroken {
                stored: hex(visible.head.hash),
                computed: hex(end.hash),
            },
        ));
    }
    if let Some(tree) = tree {
        report.tree_root = verified_root(shared, tree, &anchor, start.seq, &mut ranges)?;
    }
    Ok(report)
}

/// A key that names another log is the operator's mistake, said before
/// anything is checked.
fn refuse_other_logs_keys(shared: &Shared, keys: &[VerificationKey]) -> Result<()> {
    let Some(k) = keys
        .iter()
        .find(|k| k.log_id.is_some_and(|id| id != shared.log_id))
    else {
        return Ok(());
    };
    Err(Error::KeyNotUsed {
        path: shared.dir.clone(),
        key: hex(k.id()),
        reason: format!(
            "was set up for log {}, and this is log {}: give this log's key (or the \
             directory holds another log than the key's)",
            hex(k.log_id.unwrap_or_default()),
            hex(shared.log_id)
        ),
    })
}

/// Checks every segment of the snapshot alone (in parallel, with progress),
/// and beside them the tree's levels above 0 on another thread. A bad
/// level is reported once every record's leaf has been found in level 0
/// (a bad leaf is the more precise report: it names the record).
fn walk_segments(
    shared: &Shared,
    segments: &[Arc<Segment>],
    visible: &crate::state::Visible,
    tree: Option<&Mutex<Tree>>,
    progress: &(dyn Fn(VerifyProgress) + Sync),
) -> Result<Vec<Result<Summary>>> {
    let limits: Vec<Option<u64>> = segments
        .iter()
        .map(|s| (s.number == visible.active_segment).then_some(visible.active_len))
        .collect();
    let mut bytes_total = 0;
    for (s, l) in segments.iter().zip(&limits) {
        bytes_total += match l {
            Some(l) => *l,
            None => s.file_len()?,
        };
    }
    let checked = AtomicU64::new(0);
    let report_bytes = |n: u64| {
        let done = checked.fetch_add(n, Ordering::Relaxed) + n;
        progress(VerifyProgress {
            bytes_checked: done.min(bytes_total),
            bytes_total,
        });
    };
    let storage = &*shared.options.storage;
    let (summaries, levels) = std::thread::scope(|s| {
        let levels = tree.map(|t| s.spawn(move || crate::merkle::check_levels(t)));
        let summaries = check_all(storage, segments, &limits, tree, &report_bytes);
        let levels = levels.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        (summaries, levels)
    });
    if let Some(Err(detail)) = levels.filter(|_| summaries.iter().all(|s| s.is_ok())) {
        return Err(Error::corrupt(
            shared.dir.join(TREE_STATE_FILE),
            0,
            None,
            Corruption::TreeState { detail },
        ));
    }
    Ok(summaries)
}

/// The tree's root over the records `verify_log` checked (see
/// `VerifyReport::tree_root`): the compact range of the `dropped` records
/// before the first kept one, read once from the tree's files, then the
/// leaves each segment's walk computed, in order (the segments are linked
/// by then). The newest anchor entry's recorded root over records
/// `1..=S` must then be the first `S` leaves of that root (a consistency
/// proof from the files to it): that vouches for the prefix read, whether
/// `S` is the kept start (a finished drop) or past it (a run cut short
/// between deletions, 8.3; the thirteenth red team swapped a dropped leaf
/// there, after the check of the entry's root and before the prefix was
/// read). `None` where a segment's leaves are missing.
fn verified_root(
    shared: &Shared,
    tree: &Mutex<Tree>,
    anchor: &Anchor,
    dropped: u64,
    ranges: &mut [Option<CompactRange>],
) -> Result<Option<Hash>> {
    let mut range = CompactRange::of_prefix(&*tree.lock(), dropped)?;
    for next in ranges.iter_mut() {
        match next.take() {
            Some(next) if next.begin() == range.end() => range.append(&next),
            _ => return Ok(None),
        }
    }
    let Some(root) = range.root() else {
        return Ok(None);
    };
    let head = range.end();
    if let Some((size, recorded)) = anchor.entries.last().and_then(|(e, _)| e.ext?.tree) {
        let found = crate::merkle::root_under(shared, size, (head, root))?;
        if found != Some(recorded) {
            return Err(Error::corrupt(
                shared.dir.join(tree_file_name(0)),
                0,
                None,
                Corruption::TreeState {
                    detail: format!(
                        "the newest anchor entry records the tree of records 1..={size} with \
                         root {recorded}, which is not the start of the tree verification \
                         computed: the tree files changed during the check"
                    ),
                },
            ));
        }
    }
    Ok(Some(root))
}

/// The verification keys given, and the log's key file read before the
/// snapshot.
struct Keys<'a> {
    given: &'a [VerificationKey],
    file: Option<&'a FssKeyFile>,
}

/// Links the segments, each checked alone, in order from `start`: every
/// header continues where the segment before ended, every closed segment
/// ends with its seal record (or was repaired), and every retention record
/// names an entry of the anchor file. Returns where the chain ends.
fn link_segments(
    shared: &Shared,
    segments: &[Arc<Segment>],
    summaries: Vec<Result<Summary>>,
    anchor: &Anchor,
    keys: Keys<'_>,
    start: ChainPos,
    report: &mut VerifyReport,
) -> Result<ChainPos> {
    check_format_3_after_extension(anchor, segments)?;
    let mut rules = ChainRules::new(anchor, keys.given, keys.file, start, &shared.dir)?;
    rules.as_copy(shared.options.verify_as_copy);
    let mut prev: Option<(&Segment, Summary)> = None;
    let mut expect = ChainPos {
        timestamp_ns: 0,
        ..start
    };
    for (seg, summary) in segments.iter().zip(summaries) {
        check_link(shared, seg, &expect)?;
        if let Some((p, ps)) = &prev {
            check_closed_end(p, ps, seg, &summary)?;
            check_version_order(p, seg)?;
        }
        let summary = summary?;
        if let Some((p, ps)) = &prev {
            check_opening(p, ps, seg, &summary)?;
        }
        let last = seg.number == segments[segments.len() - 1].number;
        rules.first_record(summary.first_ns);
        rules.segment(seg, &summary.noted, summary.records, last)?;
        rules.segment_end(summary.since_tag_ns);
        report.segments += 1;
        report.sealed_segments += u64::from(seg.sealed.is_some());
        report.records += summary.records;
        report.bytes += summary.bytes;
        expect = summary.last;
        prev = Some((seg, summary));
    }
    let storage = &*shared.options.storage;
    let hold_file = read_hold(storage, &shared.dir)?;
    let now_ns = (shared.options.clock)();
    let floor_ns = floor_ns(&shared.options);
    report.sealing = rules.finish(
        &shared.dir,
        segments,
        &hold_file,
        (expect.seq, keys.file, now_ns),
        floor_ns,
    )?;
    Ok(expect)
}

/// The auditor's compliance floor (`Options::verify_min_age`), in ns; 0
/// when none was given.
fn floor_ns(options: &crate::options::Options) -> u64 {
    options
        .verify_min_age
        .map_or(0, |f| u64::try_from(f.as_nanos()).unwrap_or(u64::MAX))
}

/// The drops made after a checkpoint was signed (the anchor entries after
/// the one it names, `since`), judged by what the checkpoint commits to
/// (format-spec.md, 10): each by at least the minimum age the log's records
/// stated then (a policy recorded later may only be stricter), and each
/// dated no earlier than the checkpoint lets it be. The newest record a drop
/// removed is the checkpoint's or later when the drop reaches past the
/// checkpoint's seq (its time is then no earlier than the checkpoint's), and
/// otherwise has the time the checkpoint's tree commits to, which `tree`
/// (the root verification computed over the records, and its size, where
/// the checkpoint's root was found to be of that tree) lets the entry's
/// stated time be checked against. Without this,
/// whoever holds the host states both the policy and the times of a drop
/// made after the checkpoint: a wipe of everything then verified against a
/// checkpoint from before it.
pub(crate) fn check_drops_since(
    shared: &Shared,
    cp: &crate::checkpoint::Checkpoint,
    since: usize,
    tree: Option<(u64, Hash)>,
) -> Result<()> {
    let anchor = shared.anchor_on_disk()?;
    let now_ns = (shared.options.clock)();
    let floor_ns = floor_ns(&shared.options);
    let min_age = cp
        .retention
        .and_then(|r| r.min_age_ns)
        .unwrap_or(0)
        .max(floor_ns);
    // A note that states a minimum age is of a format-3 log (10), which
    // only format-3 writers go on with: each drop since carries the
    // extension, whose newest_ns dates it.
    let format_3 = cp.retention.is_some_and(|r| r.min_age_ns.is_some());
    let log_start = shared.first_seq();
    for (e, _) in anchor.entries.iter().skip(since) {
        let last = e.first_seq - 1;
        if format_3 && e.ext.is_none() {
            return mismatch(format!(
                "a drop since the checkpoint (records through seq {last}) has an anchor entry \
                 without format 3's extension, which every writer of a format-3 log records: \
                 the entry was rewritten"
            ));
        }
        // What the run removed: up to the log's start where a crash cut it
        // short (nothing at all where it stopped before its first deletion:
        // a crash state, not a drop; format-spec.md 8.3).
        let from = e.dropped.first().map_or(e.first_seq, |d| d.first_seq);
        let gone = last.min(log_start - 1);
        if gone < from {
            continue;
        }
        let Some(newest) = drop_date(shared, cp, e, gone, tree)? else {
            continue;
        };
        if min_age > 0 && now_ns < newest.saturating_add(min_age) {
            return mismatch(format!(
                "a drop since the checkpoint removed records through seq {gone}, from {newest}, \
                 younger than the minimum age of {min_age} ns the log stated at the checkpoint \
                 (or the verifier's floor)"
            ));
        }
    }
    Ok(())
}

fn mismatch(detail: String) -> Result<()> {
    Err(Error::CheckpointMismatch { detail })
}

/// The time a drop since checkpoint `cp` is dated by: no earlier than its
/// newest removed record (seq `gone`) can have been. Past the checkpoint's
/// record, no earlier than that record; before it, the time the note's
/// tree fixes for that record (checked against the entry's `newest_ns`),
/// or, for a note without a tree, the time of the record after it, which
/// the note's chain hash fixes (no older record is younger). `None` where
/// the record after it went in a later drop, which is dated no earlier and
/// judged in its turn.
fn drop_date(
    shared: &Shared,
    cp: &crate::checkpoint::Checkpoint,
    e: &crate::format::AnchorEntry,
    gone: u64,
    tree: Option<(u64, Hash)>,
) -> Result<Option<u64>> {
    let stated = e.ext.map(|x| x.newest_ns);
    let complete = gone == e.first_seq - 1;
    if gone >= cp.seq {
        if complete && stated.is_some_and(|n| n < cp.timestamp_ns) {
            mismatch(format!(
                "a drop since the checkpoint removed records through seq {gone}, its anchor \
                 entry says the newest from {}, before the checkpoint's record {} ({})",
                stated.unwrap_or(0),
                cp.seq,
                cp.timestamp_ns
            ))?;
        }
        return Ok(Some(stated.unwrap_or(0).max(cp.timestamp_ns)));
    }
    if let (Some(verified), true) = (tree, complete) {
        if let Some(n) = stated {
            if !crate::merkle::leaf_is(shared, gone, n, &e.prev_hash, verified)? {
                mismatch(format!(
                    "a drop since the checkpoint says its newest record {gone} is from {n}, \
                     which the checkpoint's tree does not hold"
                ))?;
            }
            return Ok(Some(n));
        }
    }
    if gone + 1 < shared.first_seq() {
        return Ok(None);
    }
    let next = crate::read::get(shared, gone + 1)?;
    Ok(Some(stated.unwrap_or(0).max(next.timestamp())))
}

/// The tree's files as a writer leaves them (format-spec.md, 14.3):
/// `wormlog.tree`, where present, decodes (it is replaced by rename, so no
/// crash tears it), and each level's file holds at least the entries it
/// vouches for (they were synced before it). It may vouch for leaves of
/// records a crash cut (Batched durability syncs the tree apart from the
/// records), so not more than the log has is allowed. Anything else is
/// damage or an edit, which the tree's recomputation from the records
/// would otherwise hide.
fn check_tree_files(shared: &Shared) -> Result<()> {
    use crate::format::tree_state::TreeState;
    let storage = &*shared.options.storage;
    let path = shared.dir.join(TREE_STATE_FILE);
    let damaged = |path: &Path, detail: String| {
        Error::corrupt(path, 0, None, Corruption::TreeState { detail })
    };
    let f = match storage.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // The verifier's own limits (permissions) are its operator's to
        // mend: exit 2, not tampering.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::io("open", &path, e))
        }
        Err(e) => return Err(damaged(&path, format!("cannot be read as a file: {e}"))),
    };
    let mut buf = vec![0u8; TreeState::LEN_MAX + 1];
    let n = f
        .read_full_at(&mut buf, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    let state = TreeState::decode(&buf[..n]).map_err(|d| damaged(&path, d))?;
    for (l, &vouched) in state.entries.iter().enumerate().filter(|(_, v)| **v > 0) {
        let tiles = shared.dir.join(tree_file_name(l));
        let held = match storage.open_read(&tiles) {
            Ok(f) => f.len().map_err(|e| Error::io("stat", &tiles, e))? / 32,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::io("open", &tiles, e))
            }
            Err(e) => {
                return Err(damaged(
                    &tiles,
                    format!("wormlog.tree vouches for {vouched} entries of level {l}, and the file cannot be read: {e}"),
                ))
            }
        };
        if held < vouched {
            return Err(damaged(
                &tiles,
                format!("holds {held} entries of level {l}; wormlog.tree vouches for {vouched}"),
            ));
        }
    }
    Ok(())
}

/// Every format-3 anchor entry records the tree's root over the records
/// before the start it kept, computed from those records before they went:
/// the tree files must still give that root (format-spec.md, 16.4 (c)). A
/// tree that cannot be read where an entry records a root is a mismatch,
/// not a tree the check may skip.
fn check_anchored_roots(shared: &Shared, anchor: &Anchor, have_tree: bool) -> Result<()> {
    for (i, (e, _)) in anchor.entries.iter().enumerate() {
        let Some(ext) = e.ext else { continue };
        let Some((size, root)) = ext.tree else {
            // No tree over the dropped records is possible only where the
            // tree cannot cover them (a format-1 start dropped before it
            // began): a log whose tree does is not that log.
            if have_tree && e.first_seq > 1 {
                return Err(Error::corrupt(
                    shared.dir.join(ANCHOR_FILE),
                    0,
                    Some(e.first_seq - 1),
                    Corruption::Anchor {
                        detail: format!(
                            "anchor entry {i} records no tree over records 1..={}, but the \
                             log's tree covers them: the entry was rewritten",
                            e.first_seq - 1
                        ),
                    },
                ));
            }
            continue;
        };
        let found = if have_tree {
            crate::merkle::head_at(shared, size, false).map(|h| h.root)
        } else {
            Err(Error::TreeUnavailable {
                detail: "the tree files cannot be read".into(),
            })
        };
        let detail = match found {
            Ok(r) if r == root => continue,
            Ok(r) => format!(
                "anchor entry {i} records the tree of records 1..={size} with root {root}; the \
                 tree files give {r}: a leaf of a dropped record was changed"
            ),
            Err(Error::TreeUnavailable { detail }) => format!(
                "anchor entry {i} records the tree of records 1..={size} with root {root}, but \
                 the tree cannot give it ({detail}): the tree files were damaged or removed"
            ),
            Err(e) => return Err(e),
        };
        return Err(Error::corrupt(
            shared.dir.join(ANCHOR_FILE),
            0,
            Some(size),
            Corruption::Anchor { detail },
        ));
    }
    Ok(())
}

/// The newest anchor entry says where the retained log begins; a segment
/// must begin exactly there, continuing the hash it names.
fn check_newest_anchor(shared: &Shared, segments: &[Arc<Segment>], anchor: &Anchor) -> Result<()> {
    let Some((newest, _)) = anchor.entries.last() else {
        return Ok(());
    };
    let found = segments
        .iter()
        .find(|s| s.header.first_seq == newest.first_seq);
    match found {
        Some(s) if s.header.prev_hash == newest.prev_hash => Ok(()),
        _ => Err(Error::corrupt(
            shared.dir.join(ANCHOR_FILE),
            anchor.len,
            Some(newest.first_seq),
            Corruption::Anchor {
                detail: format!(
                    "the newest entry says the log continues at seq {} from {}, and no segment does",
                    newest.first_seq,
                    hex(newest.prev_hash)
                ),
            },
        )),
    }
}

/// Checks each segment on its own, on all cores.
fn check_all(
    storage: &dyn Storage,
    segments: &[Arc<Segment>],
    limits: &[Option<u64>],
    tree: Option<&Mutex<Tree>>,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Result<Summary>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(segments.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Summary>>>> =
        segments.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seg) = segments.get(i) else { break };
                *results[i].lock() = Some(check_segment(storage, seg, limits[i], tree, progress));
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("every segment was checked"))
        .collect()
}

/// The header continues the chain where the previous segment (or the start
/// of the log) left it: `prev` is the record before its first.
fn check_link(shared: &Shared, seg: &Segment, prev: &ChainPos) -> Result<()> {
    let h = &seg.header;
    let next_seq = prev.next_seq();
    let bad = |offset: usize, what| {
        Err(Error::corrupt(
            &seg.path,
            offset as u64,
            Some(next_seq),
            what,
        ))
    };
    if h.log_id != shared.log_id {
        return bad(
            LOG_ID_AT,
            Corruption::ForeignSegment {
                expected: hex(shared.log_id),
                found: hex(h.log_id),
            },
        );
    }
    if h.first_seq != next_seq {
        return bad(
            FIRST_SEQ_AT,
            Corruption::SeqGap {
                expected: next_seq,
                found: h.first_seq,
            },
        );
    }
    if h.created_ns < prev.timestamp_ns {
        return bad(
            CREATED_AT,
            Corruption::TimeWentBackward {
                previous: prev.timestamp_ns,
                found: h.created_ns,
            },
        );
    }
    if h.prev_hash != prev.hash {
        return bad(
            PREV_HASH_AT,
            Corruption::SegmentDiscontinuity {
                detail: format!(
                    "header continues chain hash {}, previous record's is {}",
                    hex(h.prev_hash),
                    hex(prev.hash)
                ),
            },
        );
    }
    Ok(())
}

/// A segment after another begins by saying how: a segment-rolled record
/// naming both and the closed one's length, or a repaired record naming
/// the damaged one. (A segment whose first record never became durable is
/// the active one of a crashed log: nothing to check yet.)
fn check_opening(
    prev: &Segment,
    summary: &Summary,
    next: &Segment,
    next_summary: &Summary,
) -> Result<()> {
    let bad = |detail: String| {
        Err(Error::corrupt(
            &next.path,
            crate::format::SEGMENT_HEADER_LEN as u64,
            Some(next.header.first_seq),
            Corruption::SegmentDiscontinuity { detail },
        ))
    };
    match &next_summary.first_event {
        None if next_summary.records == 0 => Ok(()),
        Some(SystemEvent::SegmentRolled {
            from_segment,
            to_segment,
            from_bytes,
            ..
        }) => {
            if (*from_segment, *to_segment, *from_bytes)
                != (prev.number, next.number, summary.bytes)
            {
                return bad(format!(
                    "segment-rolled record says segment {from_segment} closed at {from_bytes} \
                     bytes and {to_segment} began; the log has segment {} of {} bytes, then {}",
                    prev.number, summary.bytes, next.number
                ));
            }
            Ok(())
        }
        Some(SystemEvent::Repaired { segment, .. }) if *segment == prev.number => Ok(()),
        other => bad(format!(
            "segment {} begins with {}, not a segment-rolled or repaired record",
            next.number,
            other
                .as_ref()
                .map_or("a user record".to_string(), |e| e.kind().name().to_string())
        )),
    }
}

/// Segment versions never go down: a writer rolls an older active segment
/// into its own version and never writes an older one. (The version is not
/// in the chain; a segment relabelled older would pick rules without
/// format 3's checks: a downgrade.)
fn check_version_order(prev: &Segment, seg: &Segment) -> Result<()> {
    if seg.header.version >= prev.header.version {
        return Ok(());
    }
    Err(Error::corrupt(
        &seg.path,
        8,
        Some(seg.header.first_seq),
        Corruption::SegmentDiscontinuity {
            detail: format!(
                "segment {} is format {} after segment {} of format {}: no writer goes back a \
                 version",
                seg.number, seg.header.version, prev.number, prev.header.version
            ),
        },
    ))
}

/// An anchor entry with format 3's extension is made only by a format-3
/// writer, whose active segment is of format 3 (a writer rolls an older
/// one into it at open) and, versions never going down, every segment
/// after: the log's last segment is of format 3. The eleventh red team
/// relabelled every kept segment format 2 after a forged drop, where
/// format 3's checks of a tag's epochs did not apply.
fn check_format_3_after_extension(anchor: &Anchor, segments: &[Arc<Segment>]) -> Result<()> {
    let Some(last) = segments.last() else {
        return Ok(());
    };
    if last.header.version >= 3 || !anchor.entries.iter().any(|(e, _)| e.ext.is_some()) {
        return Ok(());
    }
    Err(Error::corrupt(
        &last.path,
        8,
        Some(last.header.first_seq),
        Corruption::SegmentDiscontinuity {
            detail: format!(
                "the anchor holds an entry only a format-3 writer makes, and the log's last \
                 segment is of format {}: no writer goes back a version",
                last.header.version
            ),
        },
    ))
}

/// A closed segment ends with its seal record, unless recovery repaired it
/// (then the next segment begins by saying so).
fn check_closed_end(
    prev: &Segment,
    summary: &Summary,
    next: &Segment,
    next_summary: &Result<Summary>,
) -> Result<()> {
    if summary.sealed_record {
        return Ok(());
    }
    let repaired = matches!(
        next_summary,
        Ok(Summary { first_event: Some(SystemEvent::Repaired { segment, .. }), .. }) if *segment == prev.number
    );
    if repaired {
        return Ok(());
    }
    Err(Error::corrupt(
        &prev.path,
        summary.bytes,
        Some(summary.last.next_seq()),
        Corruption::SealMismatch {
            detail: format!(
                "closed segment has no seal record, and segment {} does not say it was repaired",
                next.number
            ),
        },
    ))
}

/// Checks one segment alone: its frames from its header's chain hash to
/// `limit` (the whole segment when `None`), its seal record, and, for a
/// sealed file, the trailer's index against the frames.
fn check_segment(
    storage: &dyn Storage,
    seg: &Segment,
    limit: Option<u64>,
    tree: Option<&Mutex<Tree>>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary> {
    let dir = seg.path.parent().unwrap_or(Path::new(""));
    let first_seq = seg.header.start().next_seq();
    let mut leaves = tree.map(|t| LeafCheck::new(t, dir, first_seq));
    // A sealed file is read through a private reader: verification streams
    // every frame once and would only evict what readers keep cached.
    let private;
    let seg = match &seg.sealed {
        Some(_) => {
            private = open_sealed(storage, &seg.path, Some(seg.number), None)?;
            &private
        }
        None => seg,
    };
    let limit = match limit {
        Some(l) => l,
        None => seg.file_len()?,
    };
    let mut s = Summary {
        log_id: seg.header.log_id,
        version: seg.header.version,
        records: 0,
        bytes: limit,
        last: seg.header.start(),
        sealed_record: false,
        first_event: None,
        leading_tags: 0,
        first_ns: None,
        since_tag_ns: None,
        noted: Vec::new(),
        leaves: None,
    };
    let mut points = PointCheck {
        points: seg.sealed.as_ref().map_or(&[], |m| &m.index.points[..]),
        next: 0,
        frame_starts: seg
            .sealed
            .as_ref()
            .map_or(&[], |m| m.frame_starts.get(1..).unwrap_or_default()),
        next_frame: 0,
        last_point: None,
    };
    let mut walk = FrameWalker::segment(seg.file.clone(), &seg.header, limit, Check::Chain)
        .digest_from(BatchedDigest::of_header(&seg.header), 0)
        .checking_seal(seg.number);
    let mut reported = 0;
    loop {
        if walk.offset() - reported >= PROGRESS_STEP {
            progress(walk.offset() - reported);
            reported = walk.offset();
        }
        let before = walk.at();
        let expected = before.next_seq();
        // Payloads are not needed here (engine records' always come): a
        // large record streams through the checks, never held.
        let (offset, f) = match walk.next_checked() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Err(e.into_error(&seg.path, Some(expected))),
        };
        let bad = |what| Error::corrupt(&seg.path, offset, Some(expected), what);
        s.note(offset, &f, before).map_err(bad)?;
        points.check(offset, &f.head()).map_err(bad)?;
        if let Some(l) = &mut leaves {
            let kind = f.head().kind as u8;
            l.push(walk.at(), kind)?;
        }
    }
    if let Some(l) = &mut leaves {
        l.compare()?;
    }
    s.leaves = leaves.map(|l| l.range);
    s.last = walk.at();
    debug_assert_eq!(s.records, walk.records());
    if let Some(meta) = &seg.sealed {
        check_trailer(storage, seg, meta, &s, &points, walk.offset())?;
    }
    progress(limit.saturating_sub(reported));
    Ok(s)
}

impl Summary {
    /// Takes in a frame the walk has checked. An engine record is part of
    /// the proof (what was opened, cut, repaired, dropped): one whose
    /// payload does not follow its layout is damage even though its chain
    /// hash holds.
    fn note(
        &mut self,
        offset: u64,
        walked: &Walked<'_>,
        before: ChainPos,
    ) -> Result<(), Corruption> {
        let event = walked.system_event().transpose()?;
        let f = walked.head();
        match &event {
            Some(SystemEvent::Sealed { .. }) => self.sealed_record = true,
            Some(SystemEvent::LogCreated {
                format_version,
                log_id,
                ..
            }) if (*format_version, *log_id) != (self.version, self.log_id)
                || self.records != 0 =>
            {
                return Err(Corruption::SegmentDiscontinuity {
                    detail: format!(
                        "log-created record (format {format_version}, log {}) is not the first \
                         record of a format-{} segment of log {}",
                        hex(log_id),
                        self.version,
                        hex(self.log_id)
                    ),
                })
            }
            Some(SystemEvent::LogOpened { format_version, .. })
                if *format_version < self.version =>
            {
                return Err(Corruption::SegmentDiscontinuity {
                    detail: format!(
                        "log-opened by a format-{format_version} writer in a format-{} segment",
                        self.version
                    ),
                })
            }
            Some(SystemEvent::LogState { .. }) if self.records != self.leading_tags + 1 => {
                return Err(Corruption::RetentionBreach {
                    detail: "a log-state record that is not its segment's second record".into(),
                })
            }
            Some(
                e @ (SystemEvent::LogState { .. }
                | SystemEvent::LegalHoldSet { .. }
                | SystemEvent::LegalHoldCleared
                | SystemEvent::RetentionPolicySet { .. }
                | SystemEvent::RetentionApplied { .. }
                | SystemEvent::SealingStarted { .. }
                | SystemEvent::EpochTag { .. }
                | SystemEvent::LogClosed),
            ) => self.noted.push(Noted {
                offset,
                seq: f.seq,
                timestamp_ns: f.timestamp_ns,
                before,
                event: e.clone(),
                covered_from_ns: self.since_tag_ns,
            }),
            _ => {}
        }
        match &event {
            Some(SystemEvent::EpochTag { .. }) => self.since_tag_ns = None,
            _ => {
                self.since_tag_ns.get_or_insert(f.timestamp_ns);
            }
        }
        if self.records == 0 {
            self.first_ns = Some(f.timestamp_ns);
        }
        if self.records == self.leading_tags {
            if matches!(event, Some(SystemEvent::EpochTag { .. })) && self.version >= 3 {
                self.leading_tags += 1;
            } else {
                self.first_event = event;
            }
        }
        self.records += 1;
        Ok(())
    }
}

/// A sealed file's layout (format-spec.md, 7.1 and 7.2), record by record:
/// every data frame after the first begins at a record (frames hold whole
/// records), and the index has a point exactly at the first record, at the
/// first record of each frame, and at the first record at or after
/// `INDEX_POINT_INTERVAL` bytes past the point before, with that record's
/// seq and time; no other. One that named anything else would send readers
/// to the wrong place, and a missing one would make them read far.
struct PointCheck<'a> {
    points: &'a [IndexPoint],
    next: usize,
    /// Data frames' starts after the first, and the next one due.
    frame_starts: &'a [u64],
    next_frame: usize,
    last_point: Option<u64>,
}

impl PointCheck<'_> {
    fn check(&mut self, offset: u64, f: &FrameHead) -> Result<(), Corruption> {
        if self.points.is_empty() && self.frame_starts.is_empty() {
            return Ok(()); // a raw segment
        }
        let bad = |detail: String| Err(Corruption::SealedTrailer { detail });
        let mut starts_frame = false;
        while let Some(&start) = self.frame_starts.get(self.next_frame) {
            if start > offset {
                break;
            }
            if start < offset {
                return bad(format!(
                    "data frame begins at {start}, inside a record (the next begins at {offset})"
                ));
            }
            starts_frame = true;
            self.next_frame += 1;
        }
        let due = starts_frame
            || self
                .last_point
                .is_none_or(|p| offset >= p + INDEX_POINT_INTERVAL);
        match self.points.get(self.next) {
            Some(p) if p.offset < offset => bad(format!(
                "index point at offset {} is not a record's start",
                p.offset
            )),
            Some(p) if p.offset == offset && !due => bad(format!(
                "index point at {offset} where none is due (the previous is at {})",
                self.last_point.unwrap_or(0)
            )),
            Some(p) if p.offset == offset => {
                if p.seq != f.seq || p.timestamp_ns != f.timestamp_ns {
                    return bad(format!(
                        "index point says seq {} at {}, record is seq {}",
                        p.seq, p.offset, f.seq
                    ));
                }
                self.next += 1;
                self.last_point = Some(offset);
                Ok(())
            }
            _ if due => bad(format!(
                "no index point for the record at {offset}, where one is due"
            )),
            _ => Ok(()),
        }
    }
}

/// A sealed file's trailer must describe the frames it holds: their
/// compressed digest, its index points, and its record count and end.
fn check_trailer(
    storage: &dyn Storage,
    seg: &Segment,
    meta: &SealedMeta,
    s: &Summary,
    points: &PointCheck<'_>,
    len: u64,
) -> Result<()> {
    let i = &meta.index;
    let digest = compressed_digest(storage, seg, meta.data_len)?;
    let detail = if digest != i.compressed_digest {
        format!(
            "compressed frames hash to {}, index says {}",
            hex(digest),
            hex(i.compressed_digest)
        )
    } else if points.next_frame != points.frame_starts.len() {
        format!(
            "data frame begins at {}, inside the last record",
            points.frame_starts[points.next_frame]
        )
    } else if points.next != points.points.len() {
        format!(
            "{} index points past the last record",
            points.points.len() - points.next
        )
    } else if (
        i.uncompressed_len,
        i.record_count,
        i.last_seq,
        i.last_hash,
        i.last_timestamp_ns,
    ) != (len, s.records, s.last.seq, s.last.hash, s.last.timestamp_ns)
    {
        format!(
            "index says {} records through seq {} in {} bytes, file holds {} through {} in {len}",
            i.record_count, i.last_seq, i.uncompressed_len, s.records, s.last.seq
        )
    } else {
        return Ok(());
    };
    Err(Error::corrupt(
        &seg.path,
        meta.compressed_len,
        Some(s.last.seq),
        Corruption::SealedTrailer { detail },
    ))
}

/// Verifies one segment file on its own, raw or sealed: its header, every
/// frame and chain link from the hash its header continues, its seal record
/// and digest, and a sealed file's trailer. It cannot tell whether the file
/// belongs where it is found: verify the whole log for that.
pub fn verify_file(path: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_file_with(&FsStorage, path.as_ref())
}

/// [`verify_file`] on any storage.
pub fn verify_file_with(storage: &dyn Storage, path: &Path) -> Result<VerifyReport> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Raw or sealed is told by the first bytes; a file taken out of its log
    // may have any name, and then its header (or index) is trusted.
    let mut magic = [0u8; 4];
    let n = storage
        .open_read(path)
        .and_then(|f| f.read_full_at(&mut magic, 0))
        .map_err(|e| Error::io("read", path, e))?;
    let seg = if n == 4 && magic == ZSTD_FRAME_MAGIC {
        open_sealed(storage, path, parse_sealed_file_name(name), None)?
    } else {
        Segment::open(storage, path.to_path_buf(), parse_segment_file_name(name))?
    };
    let summary = check_segment(storage, &seg, None, None, &|_| ())?;
    Ok(VerifyReport {
        segments: 1,
        sealed_segments: u64::from(seg.sealed.is_some()),
        records: summary.records,
        bytes: summary.bytes,
        first_seq: seg.header.first_seq,
        start_hash: seg.header.prev_hash,
        head: summary.last,
        unchecked_tail_bytes: 0,
        sealing: None,
        tree_root: None,
        anchor_head: Hash::ZERO,
    })
}
