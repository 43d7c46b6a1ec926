//! What one open log shares between its writer, its readers and its
//! background threads: the segment list, the visible end of the log, the
//! poison flag, the sealed-read cache, the anchor, and the signals that wake
//! the sealer. It knows no file format and starts no thread.

use crate::anchor::{load_anchor, Anchor};
use crate::error::{Error, Result};
use crate::format::ChainPos;
use crate::options::Options;
use crate::sealed::SealedReads;
use crate::segment::Segment;
use crate::state::{Counters, Visible};
use crate::tree::{LeafInput, PendingLeaves, Tree};
use parking_lot::{Mutex, RwLock};
use std::path::PathBuf;
use std::sync::Arc;

/// State shared by writers and readers.
///
/// Lock order (a thread holding one may take only those after it):
/// `Log`'s ship lock, then `retention_lock`, then `anchor`, then the
/// writer (`Log`'s `Mode::Write` mutex), then `seal_lock`, then `tree`, then
/// `poison`, `seal_signal`, `seal_error`, and last the leaf locks
/// `segments`, `visible`, `durable` and `pending_leaves` (held for a copy
/// or a swap, never across a call). A proved append's signer lock
/// (`Engine::proved`) comes before the tree's and takes no writer. None is re-entrant: code that holds the writer's guard calls the
/// `Writer` methods that take it (`Writer::head_flushed`, not `Log::head`).
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: Options,
    pub log_id: [u8; 16],
    pub segments: RwLock<Vec<Arc<Segment>>>,
    pub visible: RwLock<Visible>,
    /// The newest record an fdatasync has covered (set by the writer after
    /// each sync; the head found at open, which recovery leaves durable):
    /// the largest tree a proved append may sign, since a crash cannot take
    /// it back.
    /// With it, the retention policy the records up to it state (what a
    /// checkpoint of that head commits to).
    pub durable: Mutex<(
        crate::format::ChainPos,
        Option<crate::format::RetentionRule>,
    )>,
    pub counters: Counters,
    /// Opened with `Log::open_read_only`: every change is refused.
    pub read_only: bool,
    poison: Mutex<Option<String>>,
    /// The frame cache and open files of sealed segments.
    pub reads: SealedReads,
    /// Held while a segment is being sealed: one sealer at a time.
    pub seal_lock: Mutex<()>,
    seal_signal: Mutex<SealSignal>,
    /// Under `Sealing::Background`: the pool's job that seals, woken when
    /// a segment closes.
    pub seal_job: std::sync::OnceLock<Arc<crate::background::Job>>,
    /// The last background sealing failure, if any.
    pub seal_error: Mutex<Option<String>>,
    /// The anchor file's entries (retention's record).
    pub anchor: Mutex<Anchor>,
    /// Held by a retention run or a legal-hold change.
    pub retention_lock: Mutex<()>,
    /// The Merkle tree over the records (fed by merkle.rs).
    pub tree: Mutex<Tree>,
    /// Leaf inputs the writer published, waiting for the tree.
    pub pending_leaves: Mutex<PendingLeaves>,
    /// The job that feeds them to the tree (in memory) when many wait.
    pub tree_job: std::sync::OnceLock<Arc<crate::background::Job>>,
}

#[derive(Debug, Default)]
struct SealSignal {
    requested: bool,
}

impl Shared {
    pub fn new(
        dir: PathBuf,
        options: Options,
        log_id: [u8; 16],
        segments: Vec<Arc<Segment>>,
        visible: Visible,
        reads: SealedReads,
        anchor: Anchor,
    ) -> Self {
        // The caller opens the tree's files once recovery has run.
        let tree = Tree::empty(options.storage.clone(), &dir);
        Shared {
            dir,
            options,
            log_id,
            segments: RwLock::new(segments),
            durable: Mutex::new((visible.head, None)),
            visible: RwLock::new(visible),
            counters: Counters::default(),
            read_only: false,
            poison: Mutex::new(None),
            reads,
            seal_lock: Mutex::new(()),
            seal_signal: Mutex::new(SealSignal::default()),
            seal_job: std::sync::OnceLock::new(),
            seal_error: Mutex::new(None),
            anchor: Mutex::new(anchor),
            retention_lock: Mutex::new(()),
            tree: Mutex::new(tree),
            pending_leaves: Mutex::new(PendingLeaves::default()),
            tree_job: std::sync::OnceLock::new(),
        }
    }

    /// The anchor file as it is on disk now (for verification, which must
    /// not trust what was read at open).
    pub fn anchor_on_disk(&self) -> Result<Anchor> {
        load_anchor(&*self.options.storage, &self.dir, &self.log_id, false)
    }

    /// The seq of the oldest record the log still holds.
    pub fn first_seq(&self) -> u64 {
        self.segments
            .read()
            .first()
            .map_or(1, |s| s.header.first_seq)
    }

    /// A segment was closed: it is due for sealing.
    pub fn segment_closed(&self) {
        self.seal_signal.lock().requested = true;
        if let Some(job) = self.seal_job.get() {
            job.wake();
        }
    }

    /// Whether a segment was closed since the last call (and clears it).
    pub fn take_sealing_due(&self) -> bool {
        std::mem::take(&mut self.seal_signal.lock().requested)
    }

    /// Keeps a sealing failure for `Log::seal_error` (the appends that
    /// closed the segment are already durable).
    pub fn record_seal_outcome(&self, outcome: Result<usize>) {
        if let Err(e) = outcome {
            *self.seal_error.lock() = Some(e.to_string());
        }
    }

    /// Errors if the log may not be changed: opened read-only, or poisoned.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.dir.clone(),
            });
        }
        self.check_poison()
    }

    /// Errors once a write or fdatasync has failed.
    pub fn check_poison(&self) -> Result<()> {
        match &*self.poison.lock() {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Marks the log as refusing writes; returns the error for the caller.
    pub fn poison(&self, error: Error) -> Error {
        let mut p = self.poison.lock();
        if p.is_none() {
            *p = Some(error.to_string());
        }
        error
    }

    /// Hands the tree the leaf inputs of records about to be published
    /// (`publish` next), waking its job when many wait.
    pub fn pending_leaves(&self, new: &mut Vec<LeafInput>) {
        if new.is_empty() {
            return;
        }
        if self.pending_leaves.lock().extend(new) {
            if let Some(job) = self.tree_job.get() {
                job.wake();
            }
        }
    }

    /// Readers may now see everything through `head`, which ends `len`
    /// bytes into the active segment `segment`.
    pub fn publish(&self, head: ChainPos, segment: u64, len: u64) {
        let mut v = self.visible.write();
        debug_assert!(head.seq >= v.head.seq, "seqs are published in order");
        debug_assert!(
            head.timestamp_ns >= v.head.timestamp_ns,
            "time never goes backward"
        );
        *v = Visible {
            head,
            active_segment: segment,
            active_len: len,
        };
    }
}
