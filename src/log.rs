//! The public handle: open, append, read, sync, close.

use crate::checkpoint::Checkpoint;
use crate::commit::{Committer, Request};
use crate::error::{Corruption, Error, Result};
use crate::format::{hex, Hash, RecordKind, SystemEvent};
use crate::options::{Durability, Options, Sealing};
use crate::read::{self, Iter};
use crate::recovery;
use crate::retention::{self, load_anchor, Anchor, RetentionReport};
use crate::seal::{self, FrameCache, SealedReads};
use crate::segment::Segment;
use crate::storage::{DirLock, FilePool};
use crate::verify::{self, VerifyProgress, VerifyReport};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Proof that a record is in the log: returned once it is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    /// Commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// Chain hash of this record.
    pub hash: Hash,
}

/// The last committed record: its seq, chain hash and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
    pub timestamp_ns: u64,
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub(crate) seq: u64,
    pub(crate) timestamp_ns: u64,
    pub(crate) kind: RecordKind,
    pub(crate) payload: Bytes,
    pub(crate) hash: Hash,
    pub(crate) frame: FrameInfo,
}

/// Where a record's frame lies, for debugging and inspection tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The segment holding it.
    pub segment: u64,
    /// Offset of the frame in the segment's uncompressed bytes.
    pub offset: u64,
    /// The frame's length field (header, payload and hash; no padding).
    pub len: u32,
    /// Bytes the frame occupies, padding to 8 included.
    pub padded_len: u32,
    /// The frame CRC-32 as stored (it was checked when the frame was read).
    pub crc: u32,
}

impl FrameInfo {
    pub(crate) fn of(segment: u64, offset: u64, f: &crate::format::FrameRef<'_>) -> Self {
        FrameInfo {
            segment,
            offset,
            len: f.frame_len,
            // A padded frame is at most PAYLOAD_LEN_MAX plus overhead: < 2^32.
            padded_len: f.padded_len as u32,
            crc: f.crc,
        }
    }
}

impl Record {
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Commit time, ns since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp_ns
    }
    pub fn kind(&self) -> RecordKind {
        self.kind
    }
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
    pub fn hash(&self) -> &Hash {
        &self.hash
    }
    /// Where the record's frame lies.
    pub fn frame(&self) -> FrameInfo {
        self.frame
    }
    /// Whether the engine wrote this record (log opened, tail cut, ...).
    pub fn is_system(&self) -> bool {
        self.kind.is_system()
    }
    /// What an engine record says; `None` for user records.
    pub fn system_event(&self) -> Option<std::result::Result<SystemEvent, crate::Corruption>> {
        SystemEvent::decode(self.kind, &self.payload)
    }
}

/// Counters of the work the writer did since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Records written (user and engine).
    pub records: u64,
    /// Write calls: one per group commit.
    pub writes: u64,
    /// fdatasync calls on segment files.
    pub syncs: u64,
    /// Bytes written to segment files.
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub writes: AtomicU64,
    pub syncs: AtomicU64,
    pub bytes: AtomicU64,
}

/// One segment of a log, as [`Log::segments`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub number: u64,
    pub path: PathBuf,
    /// Whether this is the segment appends go to.
    pub active: bool,
    /// Whether it is a sealed (compressed, read-only) file.
    pub sealed: bool,
    pub first_seq: u64,
    /// Seq of its last committed record (`first_seq - 1` when it has none).
    pub last_seq: u64,
    /// Creation time: no record in it is earlier.
    pub created_ns: u64,
    /// Chain hash of its last record.
    pub last_hash: Hash,
    pub bytes_on_disk: u64,
    pub bytes_uncompressed: u64,
}

impl SegmentInfo {
    pub fn records(&self) -> u64 {
        self.last_seq + 1 - self.first_seq
    }
}

/// How the cache of decompressed sealed frames is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub bytes: usize,
    pub capacity: usize,
    pub hits: u64,
    pub misses: u64,
}

/// What readers may see: everything through `head`, and in the active
/// segment no byte past `active_len`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Visible {
    pub head: Head,
    pub active_segment: u64,
    pub active_len: u64,
}

/// State shared by writers and readers.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub options: Options,
    pub log_id: [u8; 16],
    pub segments: RwLock<Vec<Arc<Segment>>>,
    pub visible: RwLock<Visible>,
    pub counters: Counters,
    /// Opened with `Log::open_read_only`: every change is refused.
    pub read_only: bool,
    poison: Mutex<Option<String>>,
    /// The frame cache and open files of sealed segments.
    pub reads: SealedReads,
    /// Held while a segment is being sealed: one sealer at a time.
    pub seal_lock: Mutex<()>,
    seal_signal: Mutex<SealSignal>,
    seal_wake: Condvar,
    /// The last background sealing failure, if any.
    pub seal_error: Mutex<Option<String>>,
    /// The anchor file's entries (retention's record).
    pub anchor: Mutex<Anchor>,
    /// Held by a retention run or a legal-hold change.
    pub retention_lock: Mutex<()>,
}

#[derive(Debug, Default)]
struct SealSignal {
    requested: bool,
    stop: bool,
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
        Shared {
            dir,
            options,
            log_id,
            segments: RwLock::new(segments),
            visible: RwLock::new(visible),
            counters: Counters::default(),
            read_only: false,
            poison: Mutex::new(None),
            reads,
            seal_lock: Mutex::new(()),
            seal_signal: Mutex::new(SealSignal::default()),
            seal_wake: Condvar::new(),
            seal_error: Mutex::new(None),
            anchor: Mutex::new(anchor),
            retention_lock: Mutex::new(()),
        }
    }

    /// The anchor file as it is on disk now (for verification, which must
    /// not trust what was read at open).
    pub fn anchor_on_disk(&self) -> Result<Anchor> {
        load_anchor(&*self.options.storage, &self.dir, &self.log_id, false)
    }

    /// A segment was closed: it is due for sealing.
    pub fn segment_closed(&self) {
        self.seal_signal.lock().requested = true;
        self.seal_wake.notify_all();
    }

    /// Under `Sealing::Inline`, seals what rolling closed. A failure is kept
    /// in `seal_error` (the appends that rolled are already durable).
    pub fn seal_inline_if_due(&self) {
        if self.options.sealing != Sealing::Inline {
            return;
        }
        let due = std::mem::take(&mut self.seal_signal.lock().requested);
        if due {
            self.record_seal_outcome(seal::seal_closed_segments(self));
        }
    }

    /// Blocks until a segment is due for sealing (true) or the log closes (false).
    fn wait_for_sealing_work(&self) -> bool {
        let mut sig = self.seal_signal.lock();
        loop {
            if sig.stop {
                return false;
            }
            if std::mem::take(&mut sig.requested) {
                return true;
            }
            self.seal_wake.wait(&mut sig);
        }
    }

    fn stop_sealer(&self) {
        self.seal_signal.lock().stop = true;
        self.seal_wake.notify_all();
    }

    fn record_seal_outcome(&self, outcome: Result<usize>) {
        if let Err(e) = outcome {
            *self.seal_error.lock() = Some(e.to_string());
        }
    }

    /// Errors if the log may not be changed: opened read-only, or poisoned.
    pub fn check_poison(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly {
                path: self.dir.clone(),
            });
        }
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

    pub fn publish(&self, seq: u64, hash: Hash, timestamp_ns: u64, segment: u64, len: u64) {
        let mut v = self.visible.write();
        debug_assert!(seq >= v.head.seq, "seqs are published in order");
        debug_assert!(
            timestamp_ns >= v.head.timestamp_ns,
            "time never goes backward"
        );
        *v = Visible {
            head: Head {
                seq,
                hash,
                timestamp_ns,
            },
            active_segment: segment,
            active_len: len,
        };
    }
}

impl Error {
    /// The same failure, for each waiter of a failed group (io::Error is not Clone).
    pub(crate) fn for_waiter(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            other => Error::Poisoned {
                cause: other.to_string(),
            },
        }
    }
}

pub(crate) struct Inner {
    pub shared: Shared,
    pub committer: Committer,
    syncer_stop: Mutex<bool>,
    syncer_wake: Condvar,
    _lock: Option<Box<dyn DirLock>>,
}

impl Inner {
    /// Drops the sealed segments the retention policy lets go (see
    /// `Log::apply_retention`); with `dry_run`, only says which.
    fn apply_retention(&self, now_ns: u64, dry_run: bool) -> Result<RetentionReport> {
        let shared = &self.shared;
        if !dry_run {
            shared.check_poison()?;
        }
        let storage = &*shared.options.storage;
        let _one_at_a_time = shared.retention_lock.lock();
        let segs = shared.segments.read().clone();
        let mut report = RetentionReport {
            first_seq: segs.first().map_or(1, |s| s.header.first_seq),
            ..RetentionReport::default()
        };
        let Some(policy) = &shared.options.retention else {
            return Ok(report);
        };
        if retention::read_hold(storage, &shared.dir)?.is_some() {
            report.held = true;
            return Ok(report);
        }
        let drop = retention::plan(&segs, policy, now_ns)?;
        let Some(last) = drop.last() else {
            return Ok(report);
        };
        let keep = &segs[drop.len()];
        report.dropped_segments = drop.iter().map(|s| s.number).collect();
        report.dropped_records = keep.header.first_seq - drop[0].header.first_seq;
        report.freed_bytes = drop
            .iter()
            .filter_map(|s| s.sealed.as_ref().map(|m| m.compressed_len))
            .sum();
        report.first_seq = keep.header.first_seq;
        if dry_run {
            return Ok(report);
        }
        // Record first, in the anchor file and then in the chain; delete last.
        let hash = {
            let mut anchor = shared.anchor.lock();
            let entry =
                retention::entry_for(&drop, keep, now_ns, anchor.last_hash(&shared.log_id))?;
            retention::append_anchor(storage, &shared.dir, &shared.log_id, &mut anchor, entry)?
        };
        let event = SystemEvent::RetentionApplied {
            from_segment: drop[0].number,
            to_segment: last.number,
            first_seq: drop[0].header.first_seq,
            last_seq: keep.header.first_seq - 1,
            anchor_entry_hash: hash,
        };
        self.committer
            .writer
            .lock()
            .write_system(shared, &[event])?;
        for s in &drop {
            if shared.options.immutable_attr {
                seal::set_immutable_if_permitted(storage, &s.path, false)?;
            }
            storage
                .remove_file(&s.path)
                .map_err(|e| Error::io("remove", &s.path, e))?;
            // One removal at a time: unsynced unlinks may reach the disk in
            // any order, and a crash must leave the dropped segments that
            // remain contiguous, oldest gone first, for recovery to finish.
            storage
                .sync_dir(&shared.dir)
                .map_err(|e| Error::io("fsync directory", &shared.dir, e))?;
            // The pool's handle would keep the removed file's blocks in use.
            shared.reads.files.forget(&s.path);
        }
        shared
            .segments
            .write()
            .retain(|s| !report.dropped_segments.contains(&s.number));
        Ok(report)
    }
}

/// An open log. `Send + Sync`: share it between threads (by reference or
/// in an `Arc`); appends from many threads commit together.
pub struct Log {
    inner: Arc<Inner>,
    syncer: Option<JoinHandle<()>>,
    sealer: Option<JoinHandle<()>>,
    closed: bool,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.inner.shared.dir)
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens the log in `dir`, creating it if it does not exist (unless
    /// `Options::create_if_missing` is off) and recovering it if it does.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Log> {
        Log::open_mode(dir.as_ref(), options, false)
    }

    /// Opens an existing log for reading alone, whether or not a writer has
    /// it open (in this process or another): no lock, no recovery writes,
    /// no sealing. The log is a snapshot of what was committed when it was
    /// opened (a tail being written is left out); `refresh` takes in what
    /// was committed since.
    /// Appends and other changes fail with `Error::ReadOnly`; reads and
    /// `verify` work, and damage to durable data is an error as for a writer.
    pub fn open_read_only(dir: impl AsRef<Path>, options: Options) -> Result<Log> {
        Log::open_mode(dir.as_ref(), options, true)
    }

    /// For a log opened read-only: takes in the records a writer has
    /// committed since the open or the last refresh, and returns whether the
    /// head moved. New records in the active segment are read from where the
    /// last look stopped, so following a busy log costs what it writes, not
    /// a scan of the whole active segment; after a roll the log is opened
    /// anew. The log must go on from the head this reader saw: a log that
    /// is now shorter, or holds another record at that seq, is an error.
    /// A log opened for writing is always current: `Ok(false)`.
    pub fn refresh(&self) -> Result<bool> {
        let shared = &self.inner.shared;
        if !shared.read_only {
            return Ok(false);
        }
        // The read-only writer only marks where this reader's view ends; its
        // lock also keeps two refreshes from interleaving.
        let mut at = self.inner.committer.writer.lock();
        let before = shared.visible.read().head;
        match recovery::follow_active(&shared.options, &shared.dir, &mut at)? {
            recovery::Follow::Same => return Ok(false),
            recovery::Follow::Grew => {
                shared.publish(
                    at.next_seq - 1,
                    at.prev_hash,
                    at.last_ts,
                    at.segment.number,
                    at.len,
                );
            }
            recovery::Follow::Reopen => {
                let r = recovery::recover(&shared.dir, &shared.options, &shared.reads, true)?;
                let moved = |detail: String| {
                    Err(Error::corrupt(
                        &shared.dir,
                        0,
                        Some(before.seq),
                        Corruption::SegmentDiscontinuity { detail },
                    ))
                };
                if r.log_id != shared.log_id {
                    return moved(format!(
                        "the directory now holds log {}, not log {}",
                        hex(&r.log_id),
                        hex(&shared.log_id)
                    ));
                }
                if r.visible.head.seq < before.seq {
                    return moved(format!(
                        "the log now ends at seq {}, this reader saw it reach {}",
                        r.visible.head.seq, before.seq
                    ));
                }
                *shared.anchor.lock() = r.anchor;
                let first_kept = r.segments.first().map_or(0, |s| s.number);
                let old = std::mem::replace(&mut *shared.segments.write(), r.segments);
                // Segments retention dropped meanwhile: close their files, or
                // the pool keeps their disk space in use.
                for s in old.iter().filter(|s| s.number < first_kept) {
                    shared.reads.files.forget(&s.path);
                }
                *shared.visible.write() = r.visible;
                *at = r.writer;
                drop(at);
                let first = shared
                    .segments
                    .read()
                    .first()
                    .map_or(1, |s| s.header.first_seq);
                if before.seq >= first && before.seq > 0 {
                    let then = self.get(before.seq)?;
                    if then.hash() != &before.hash {
                        return moved(format!(
                            "seq {} had chain hash {} and now has {}",
                            before.seq,
                            hex(&before.hash),
                            hex(then.hash())
                        ));
                    }
                }
            }
        }
        Ok(shared.visible.read().head.seq != before.seq)
    }

    fn open_mode(dir: &Path, options: Options, read_only: bool) -> Result<Log> {
        options.validate().map_err(Error::InvalidOptions)?;
        let dir = dir.to_path_buf();
        let reads = SealedReads {
            cache: Arc::new(FrameCache::new(options.sealed_cache_bytes)),
            files: Arc::new(FilePool::new(
                options.storage.clone(),
                options.sealed_files_open,
            )),
        };
        let recovered = recovery::recover(&dir, &options, &reads, read_only)?;
        let mut shared = Shared::new(
            dir,
            options,
            recovered.log_id,
            recovered.segments,
            recovered.visible,
            reads,
            recovered.anchor,
        );
        let mut writer = recovered.writer;
        if read_only {
            shared.read_only = true;
            return Ok(Log {
                inner: Arc::new(Inner {
                    shared,
                    committer: Committer::new(writer),
                    syncer_stop: Mutex::new(false),
                    syncer_wake: Condvar::new(),
                    _lock: None,
                }),
                syncer: None,
                sealer: None,
                closed: true,
            });
        }
        let mut events = recovered.events;
        events.push(SystemEvent::LogOpened {
            format_version: crate::format::FORMAT_VERSION,
            pid: std::process::id(),
            engine: concat!("wormlog ", env!("CARGO_PKG_VERSION")).into(),
            durability: shared.options.durability,
        });
        writer.write_system(&shared, &events)?;
        for (path, len) in &recovered.truncate_after_open {
            recovery::finish_truncation(&*shared.options.storage, path, *len)?;
        }
        let inner = Arc::new(Inner {
            shared,
            committer: Committer::new(writer),
            syncer_stop: Mutex::new(false),
            syncer_wake: Condvar::new(),
            _lock: recovered.lock,
        });
        let syncer = match inner.shared.options.durability {
            Durability::Batched { max_delay } => {
                let inner = inner.clone();
                Some(
                    std::thread::Builder::new()
                        .name("wormlog-sync".into())
                        .spawn(move || run_syncer(&inner, max_delay))
                        .map_err(|e| Error::io("spawn sync thread", "", e))?,
                )
            }
            _ => None,
        };
        let sealer = match inner.shared.options.sealing {
            Sealing::Background => {
                let inner = inner.clone();
                Some(
                    std::thread::Builder::new()
                        .name("wormlog-seal".into())
                        .spawn(move || run_sealer(&inner))
                        .map_err(|e| Error::io("spawn seal thread", "", e))?,
                )
            }
            _ => None,
        };
        // Segments closed before a crash (or by an earlier run that stopped
        // before sealing them) are sealed now.
        inner.shared.segment_closed();
        inner.shared.seal_inline_if_due();
        Ok(Log {
            inner,
            syncer,
            sealer,
            closed: false,
        })
    }

    /// Closes the active segment and seals every closed segment now; returns
    /// how many were sealed. Appends continue in a new segment.
    pub fn seal(&self) -> Result<usize> {
        self.inner
            .committer
            .writer
            .lock()
            .roll_now(&self.inner.shared)?;
        seal::seal_closed_segments(&self.inner.shared)
    }

    /// Drops whole sealed segments, oldest first, that `Options::retention`
    /// lets go at time `now_ns`: never the active segment, never one younger
    /// than `min_age`, nothing while a legal hold is set. Each run is first
    /// recorded in the anchor file and as a retention-applied record, so the
    /// remaining log still verifies.
    pub fn apply_retention(&self, now_ns: u64) -> Result<RetentionReport> {
        self.inner.apply_retention(now_ns, false)
    }

    /// What `apply_retention(now_ns)` would drop, without dropping it.
    pub fn retention_plan(&self, now_ns: u64) -> Result<RetentionReport> {
        self.inner.apply_retention(now_ns, true)
    }

    /// Sets a legal hold: retention drops nothing until it is cleared. The
    /// hold is kept in a file (so it survives restarts) and recorded in the
    /// chain.
    pub fn set_legal_hold(&self, reason: &str) -> Result<()> {
        let shared = &self.inner.shared;
        shared.check_poison()?;
        let _g = shared.retention_lock.lock();
        retention::write_hold(&*shared.options.storage, &shared.dir, reason)?;
        let event = SystemEvent::LegalHoldSet {
            reason: reason.to_string(),
        };
        self.inner
            .committer
            .writer
            .lock()
            .write_system(shared, &[event])
    }

    /// Clears the legal hold (recorded in the chain first).
    pub fn clear_legal_hold(&self) -> Result<()> {
        let shared = &self.inner.shared;
        shared.check_poison()?;
        let _g = shared.retention_lock.lock();
        self.inner
            .committer
            .writer
            .lock()
            .write_system(shared, &[SystemEvent::LegalHoldCleared])?;
        retention::remove_hold(&*shared.options.storage, &shared.dir)
    }

    /// Files in the log directory that wormlog does not write (anything not
    /// in format-spec.md §1), sorted. The log ignores them and verification
    /// does not read them; an auditor may still want to know, since a
    /// segment renamed out of the way shows up here.
    pub fn foreign_files(&self) -> Result<Vec<PathBuf>> {
        let shared = &self.inner.shared;
        let mut names: Vec<String> = shared
            .options
            .storage
            .list_dir(&shared.dir)
            .map_err(|e| Error::io("list", &shared.dir, e))?
            .into_iter()
            .filter(|n| !crate::segment::is_engine_file_name(n))
            .collect();
        names.sort_unstable();
        Ok(names.into_iter().map(|n| shared.dir.join(n)).collect())
    }

    /// The legal hold's reason, if one is set.
    pub fn legal_hold(&self) -> Result<Option<String>> {
        let shared = &self.inner.shared;
        retention::read_hold(&*shared.options.storage, &shared.dir)
    }

    /// The last failure of background sealing, if any (sealing is retried
    /// at the next roll, `seal` and open).
    pub fn seal_error(&self) -> Option<String> {
        self.inner.shared.seal_error.lock().clone()
    }

    /// Appends one record; returns once it is committed (durable under
    /// `Durability::Sync`).
    pub fn append(&self, payload: &[u8]) -> Result<Receipt> {
        let mut receipts = self.append_batch(&[payload])?;
        debug_assert_eq!(receipts.len(), 1);
        receipts.pop().ok_or_else(|| Error::Poisoned {
            cause: "no receipt returned".into(),
        })
    }

    /// Appends records as one unit: contiguous seqs, committed together.
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Vec<Receipt>> {
        let max = self.inner.shared.options.payload_bytes_max;
        let mut owned = Vec::with_capacity(payloads.len());
        for p in payloads {
            let p = p.as_ref();
            if p.len() > max {
                return Err(Error::PayloadTooLarge { len: p.len(), max });
            }
            owned.push(p.to_vec());
        }
        if owned.is_empty() {
            return Ok(Vec::new());
        }
        let req = Request::new(RecordKind::User, owned);
        self.inner.committer.commit(&self.inner.shared, req)
    }

    /// Makes every committed record durable (an fdatasync, if anything is unsynced).
    pub fn sync(&self) -> Result<()> {
        self.inner.committer.writer.lock().sync(&self.inner.shared)
    }

    /// The last committed record.
    pub fn head(&self) -> Head {
        self.inner.shared.visible.read().head
    }

    /// Work done by the writer since open: group commits, syncs, bytes.
    pub fn stats(&self) -> WriteStats {
        let c = &self.inner.shared.counters;
        WriteStats {
            records: c.records.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }

    /// The segments, oldest first, with their seq ranges and sizes.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        let shared = &self.inner.shared;
        let visible = *shared.visible.read();
        let segs = shared.segments.read().clone();
        let mut out = Vec::with_capacity(segs.len());
        for (i, s) in segs.iter().enumerate() {
            let active = s.number == visible.active_segment;
            let (last_seq, last_hash) = match (&s.sealed, segs.get(i + 1)) {
                (Some(m), _) => (m.index.last_seq, m.index.last_hash),
                (None, _) if active => (visible.head.seq, visible.head.hash),
                (None, Some(next)) => (next.header.first_seq - 1, next.header.prev_hash),
                // A segment past the visible one (being created): nothing committed.
                (None, None) => (s.header.first_seq - 1, s.header.prev_hash),
            };
            let uncompressed = if active {
                visible.active_len
            } else {
                s.file_len()?
            };
            let on_disk = match &s.sealed {
                Some(m) => m.compressed_len,
                None => uncompressed,
            };
            out.push(SegmentInfo {
                number: s.number,
                path: s.path.clone(),
                active,
                sealed: s.sealed.is_some(),
                first_seq: s.header.first_seq,
                last_seq,
                created_ns: s.header.created_ns,
                last_hash,
                bytes_on_disk: on_disk,
                bytes_uncompressed: uncompressed,
            });
        }
        Ok(out)
    }

    /// The retention anchor's entries as they are on disk, oldest first:
    /// one per retention run that dropped segments (empty if none has).
    pub fn anchor_entries(&self) -> Result<Vec<crate::format::AnchorEntry>> {
        let anchor = self.inner.shared.anchor_on_disk()?;
        Ok(anchor.entries.into_iter().map(|(e, _)| e).collect())
    }

    /// The decompressed-frame cache's size and hit counts.
    pub fn cache_stats(&self) -> CacheStats {
        let c = &self.inner.shared.reads.cache;
        CacheStats {
            bytes: c.bytes(),
            capacity: self.inner.shared.options.sealed_cache_bytes,
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
        }
    }

    /// The log's 16-byte id, fixed at creation and bound into its genesis hash.
    pub fn log_id(&self) -> [u8; 16] {
        self.inner.shared.log_id
    }

    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Committed records with seqs in `range` (engine records included; see
    /// [`Record::is_system`]), oldest first. Records committed after this
    /// call are not included.
    pub fn read(&self, range: impl RangeBounds<u64>) -> Result<Iter> {
        read::iter(&self.inner.shared, range)
    }

    /// The record with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Result<Record> {
        read::get(&self.inner.shared, seq)
    }

    /// The first record committed at or after `timestamp_ns`, if any.
    pub fn first_at_or_after(&self, timestamp_ns: u64) -> Result<Option<Record>> {
        read::first_at_or_after(&self.inner.shared, timestamp_ns)
    }

    /// Checks every committed record: frames, CRCs, seqs, timestamps and the
    /// hash chain from the genesis hash through the head.
    pub fn verify(&self) -> Result<VerifyReport> {
        verify::verify_log(&self.inner.shared, &|_| ())
    }

    /// [`Log::verify`], calling `progress` as segments are checked. Calls
    /// come from several threads and may arrive slightly out of order.
    pub fn verify_with_progress(
        &self,
        progress: impl Fn(VerifyProgress) + Sync,
    ) -> Result<VerifyReport> {
        verify::verify_log(&self.inner.shared, &progress)
    }

    /// The head as a checkpoint, to sign (`Checkpoint::sign`) and keep
    /// somewhere the log's writer cannot reach.
    pub fn checkpoint(&self) -> Checkpoint {
        let h = self.head();
        Checkpoint {
            log_id: self.log_id(),
            seq: h.seq,
            hash: h.hash,
            timestamp_ns: h.timestamp_ns,
        }
    }

    /// Verifies the whole log, then that it still holds, unchanged, every
    /// record up to `checkpoint`: same log id, not shorter, and record
    /// `checkpoint.seq` has the checkpoint's chain hash and time (for a seq
    /// that retention dropped, the anchor file must record that hash). A
    /// log rewritten with every hash recomputed verifies alone but fails here.
    pub fn verify_against(&self, checkpoint: &Checkpoint) -> Result<VerifyReport> {
        self.verify_against_with_progress(checkpoint, |_| ())
    }

    /// [`Log::verify_against`] with progress reports as in
    /// [`Log::verify_with_progress`].
    pub fn verify_against_with_progress(
        &self,
        checkpoint: &Checkpoint,
        progress: impl Fn(VerifyProgress) + Sync,
    ) -> Result<VerifyReport> {
        let report = self.verify_with_progress(progress)?;
        let mismatch = |detail: String| Err(Error::CheckpointMismatch { detail });
        let cp = checkpoint;
        if cp.log_id != self.log_id() {
            return mismatch(format!(
                "the checkpoint is for log {}, this is log {}",
                hex(&cp.log_id),
                hex(&self.log_id())
            ));
        }
        if cp.seq > report.head.seq {
            return mismatch(format!(
                "the log ends at seq {}, before the checkpoint's seq {} (truncated or rolled back)",
                report.head.seq, cp.seq
            ));
        }
        let held = if cp.seq >= report.first_seq {
            let rec = self.get(cp.seq)?;
            Some((*rec.hash(), Some(rec.timestamp())))
        } else if cp.seq + 1 == report.first_seq {
            Some((report.start_hash, None))
        } else {
            let anchor = self.inner.shared.anchor_on_disk()?;
            anchor
                .entries
                .iter()
                .flat_map(|(e, _)| e.dropped.iter())
                .find(|d| d.last_seq == cp.seq)
                .map(|d| (d.last_hash, None))
        };
        match held {
            None => mismatch(format!(
                "seq {} was dropped by retention and the anchor does not record its hash",
                cp.seq
            )),
            Some((hash, _)) if hash != cp.hash => mismatch(format!(
                "record {} has chain hash {}, the checkpoint says {} (the log was rewritten)",
                cp.seq,
                hex(&hash),
                hex(&cp.hash)
            )),
            Some((_, Some(ts))) if ts != cp.timestamp_ns => mismatch(format!(
                "record {} was committed at {ts}, the checkpoint says {}",
                cp.seq, cp.timestamp_ns
            )),
            Some(_) => Ok(report),
        }
    }

    /// Closes the log: writes a log-closed record and syncs. Dropping the log
    /// does the same, ignoring errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        *self.inner.syncer_stop.lock() = true;
        self.inner.syncer_wake.notify_all();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        self.inner.shared.stop_sealer();
        if let Some(t) = self.sealer.take() {
            let _ = t.join();
        }
        self.inner.committer.close_queue();
        let mut writer = self.inner.committer.writer.lock();
        writer.write_system(&self.inner.shared, &[SystemEvent::LogClosed])
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Under `Sealing::Background`: seals closed segments whenever one is
/// closed, until the log is closed. A segment being sealed when the log
/// closes is finished; the rest wait for the next open.
fn run_sealer(inner: &Inner) {
    let shared = &inner.shared;
    while shared.wait_for_sealing_work() {
        let sealed = seal::seal_closed_segments(shared);
        let on_roll = shared
            .options
            .retention
            .as_ref()
            .is_some_and(|r| r.apply_on_roll);
        let outcome = match sealed {
            Ok(n) if on_roll => inner
                .apply_retention((shared.options.clock)(), false)
                .map(|_| n),
            other => other,
        };
        shared.record_seal_outcome(outcome);
    }
}

/// Under `Durability::Batched`, syncs at least every `max_delay`. A failed
/// sync poisons the log (inside `Writer::sync`) and ends the thread.
fn run_syncer(inner: &Inner, max_delay: std::time::Duration) {
    loop {
        {
            let mut stop = inner.syncer_stop.lock();
            if *stop {
                return;
            }
            inner.syncer_wake.wait_for(&mut stop, max_delay);
            if *stop {
                return;
            }
        }
        if inner.committer.writer.lock().sync(&inner.shared).is_err() {
            return;
        }
    }
}
