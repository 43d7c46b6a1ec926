//! The public handle: open, append, read, sync, close.

use crate::anchor;
use crate::checkpoint::{Checkpoint, CheckpointKey, RetentionPoint};
use crate::engine::{Engine, Mode};
use crate::error::{Corruption, Error, Result};
use crate::format::names::is_engine_file_name;
use crate::format::RetentionRule;
use crate::format::{
    anchor_genesis, epoch_of, hex, key_at, key_id, AnchorEntry, FssKeyFile, PreviousEra,
    SystemEvent, VerificationKey, FORMAT_VERSION,
};
use crate::merkle::{self, ConsistencyProof, InclusionProof, TlogExport, TreeHead};
use crate::options::Options;
use crate::read::{self, Iter};
use crate::recovery::{self, Follow, Recovered};
use crate::retention::{self, RetentionReport};
use crate::sealed::{FrameCache, SealedReads};
use crate::segment::SegmentEnd;
use crate::shared::Shared;
use crate::state::{
    CacheStats, Head, Receipt, Record, RecoveryReport, SegmentInfo, ShipStatus, WriteStats,
};
use crate::storage::FilePool;
use crate::tree::Tree;
use crate::upkeep;
use crate::verify::{self, VerifyProgress, VerifyReport};
use crate::writer::Writer;
use parking_lot::Mutex;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An open log. `Send + Sync`: share it between threads (by reference or
/// in an `Arc`); appends from many threads commit together.
pub struct Log {
    inner: Arc<Engine>,
    closed: bool,
    recovery: RecoveryReport,
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
    /// Only one writer may have a log open: a second `open` of the same
    /// directory fails with [`Error::Locked`].
    ///
    /// ```rust
    /// use wormlog::{Error, Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path().join("audit"), Options::default())?;
    /// // A new log starts with two engine records: log-created (seq 1) and
    /// // log-opened (seq 2).
    /// assert_eq!(log.head().seq, 2);
    /// assert!(matches!(
    ///     Log::open(dir.path().join("audit"), Options::default()),
    ///     Err(Error::Locked { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        let Mode::Read(end) = &self.inner.mode else {
            return Ok(false);
        };
        let mut end = end.lock();
        let before = shared.visible.read().head;
        match recovery::follow_active(&shared.options, &shared.dir, &mut end)? {
            Follow::Same => return Ok(false),
            Follow::Grew => shared.publish(end.at, end.segment.number, end.len),
            Follow::Reopen => {
                let r = recovery::recover(&shared.dir, &shared.options, &shared.reads, true)?;
                self.take_reopened(r, &mut end, before)?;
            }
        }
        Ok(shared.visible.read().head.seq != before.seq)
    }

    /// A read-only log's `refresh` found the log rolled on: takes in the
    /// log as `r` found it, which must go on from `before`, the head this
    /// reader saw.
    fn take_reopened(&self, r: Recovered, end: &mut SegmentEnd, before: Head) -> Result<()> {
        let shared = &self.inner.shared;
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
                hex(r.log_id),
                hex(shared.log_id)
            ));
        }
        if r.end.at.seq < before.seq {
            return moved(format!(
                "the log now ends at seq {}, this reader saw it reach {}",
                r.end.at.seq, before.seq
            ));
        }
        *shared.anchor.lock() = r.anchor;
        let first_kept = r.segments.first().map_or(0, |s| s.number);
        let old = std::mem::replace(&mut *shared.segments.write(), r.segments);
        // Segments retention dropped meanwhile: close their files, or the
        // pool keeps their disk space in use.
        for s in old.iter().filter(|s| s.number < first_kept) {
            shared.reads.files.forget(&s.path);
        }
        *shared.visible.write() = r.end.visible();
        *end = r.end;
        if before.seq >= shared.first_seq() && before.seq > 0 {
            let then = self.get(before.seq)?;
            if then.hash() != &before.hash {
                return moved(format!(
                    "seq {} had chain hash {} and now has {}",
                    before.seq,
                    hex(before.hash),
                    hex(then.hash())
                ));
            }
        }
        Ok(())
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
        let started = std::time::Instant::now();
        let r = recovery::recover(&dir, &options, &reads, read_only)?;
        let mut report = RecoveryReport::from_events(&dir, &r.events, r.ends_closed);
        let tree = open_tree(&options, &dir, &r)?;
        let mut shared = Shared::new(
            dir,
            options,
            r.log_id,
            r.segments,
            r.end.visible(),
            reads,
            r.anchor,
        );
        shared.tree = Mutex::new(tree);
        shared.read_only = read_only;
        let Some(file) = r.file else {
            let mut log = reader_log(shared, r.end, r.state.policy);
            report.took = started.elapsed();
            log.recovery = report;
            return Ok(log);
        };
        let head_ns = r.end.at.timestamp_ns;
        let active = r.end.segment.path.clone();
        let mut writer = Writer::new(file, r.end, r.state);
        writer.note_durable(&shared);
        if shared.options.preallocate {
            // Where the segment cannot be written in place (storage without
            // positional writes, an append-only attribute), the writer
            // appends as without the option: failing here, after recovery
            // cut a torn tail and before its tail-cut record is written,
            // would leave the cut unrecorded in the chain.
            if let Ok(file) = crate::storage::open_write(&*shared.options.storage, &active) {
                writer.write_in_place(file, &shared)?;
            }
        }
        let tag_scan = r.tag_scan;
        if let Some(key) = load_sealing_key(&shared, tag_scan)? {
            writer.set_sealing_key(key);
        }
        // Whatever names an earlier run left in the directory (a roll or a
        // seal whose directory fsync failed: fsyncgate holds for
        // directories too) are made durable before any record is written
        // into them: an append acknowledged into a file whose name a power
        // cut can take would be lost. An open that cannot fails.
        shared
            .options
            .storage
            .sync_dir(&shared.dir)
            .map_err(|e| Error::io("fsync directory", &shared.dir, e))?;
        finish_rotation(&shared, &mut writer, tag_scan)?;
        let mut events = r.events;
        events.push(SystemEvent::LogOpened {
            format_version: FORMAT_VERSION,
            pid: std::process::id(),
            engine: concat!("wormlog ", env!("CARGO_PKG_VERSION")).into(),
            durability: shared.options.durability,
        });
        writer.write_system(&shared, &events)?;
        for t in &r.truncate_after_open {
            recovery::finish_truncation(&*shared.options.storage, t)?;
        }
        if writer.segment_version() < FORMAT_VERSION {
            // A log written by an older format goes on in a new segment of
            // this format: its segment-rolled record says so, and no
            // segment ever holds records its header's version lacks.
            writer.roll_now(&shared)?;
        }
        reconcile_hold(&shared, &mut writer)?;
        record_policy_and_clock(&shared, &mut writer, head_ns)?;
        let inner = Arc::new(Engine::new(
            shared,
            Mode::Write(Box::new(Mutex::new(writer))),
            r.lock,
            head_ns,
        ));
        upkeep::start_jobs(&inner)?;
        // Segments closed before a crash (or by an earlier run that stopped
        // before sealing them) are sealed now.
        inner.shared.segment_closed();
        inner.seal_inline_if_due();
        report.took = started.elapsed();
        Ok(Log {
            inner,
            closed: false,
            recovery: report,
        })
    }

    /// What this open found and did: a clean start, or a crash's torn tail
    /// cut, or damage moved aside (`Options::repair`), and the time it
    /// took. One line to log at startup:
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// assert!(log.recovery().created);
    /// log.close()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// assert!(log.recovery().is_clean());
    /// println!("audit log: {}", log.recovery()); // "clean start: ..."
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Closes the active segment and seals every closed segment now; returns
    /// how many this call sealed (under `Sealing::Background` the background
    /// sealer may have sealed some of them first). Appends continue in a new
    /// segment. When it returns, every closed segment is a sealed file.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// let r = log.append(b"before the seal")?;
    /// log.seal()?;
    /// let segments = log.segments()?;
    /// assert!(segments[0].sealed && segments[1].active);
    /// assert_eq!(log.get(r.seq)?.payload(), b"before the seal");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn seal(&self) -> Result<usize> {
        self.inner.seal_now()
    }

    /// With `Options::shipping`: ships what is not shipped yet now, on this
    /// thread (the background shipper waits meanwhile), and returns how
    /// many objects it copied.
    pub fn ship_now(&self) -> Result<usize> {
        let shared = &self.inner.shared;
        let Some(shipping) = &shared.options.shipping else {
            return Err(Error::InvalidOptions(
                "ship_now: the log has no Options::shipping".into(),
            ));
        };
        self.inner.ship_once(shipping)
    }

    /// What the shipper did (`Options::shipping`): objects copied, and the
    /// last failure while it backs off.
    pub fn ship_status(&self) -> ShipStatus {
        self.inner.ship_status.lock().clone()
    }

    /// The retention policy the log's records state (format-spec.md, 4.2):
    /// what verification judges drops by, whatever the options say.
    pub fn retention_policy(&self) -> Option<RetentionRule> {
        self.inner.recorded_policy()
    }

    /// Drops whole sealed segments, oldest first, that `Options::retention`
    /// lets go at time `now_ns`: never the active segment, never one younger
    /// than `min_age`, nothing while a legal hold is set. Each run is first
    /// recorded in the anchor file and as a retention-applied record, so the
    /// remaining log still verifies. `now_ns` is ns since the Unix epoch, at
    /// most `Retention::clock_ahead_max` ahead of the log's own time.
    ///
    /// ```rust
    /// use std::time::Duration;
    /// use wormlog::{Log, Options, Retention};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options =
    ///     Options::default().retention(Retention::default().max_age(Duration::from_secs(60)));
    /// let log = Log::open(dir.path(), options)?;
    /// log.append(b"old event")?;
    /// log.seal()?; // segment 1 is now a sealed file; segment 2 is active
    /// // An hour later, segment 1's records are past the minute kept.
    /// let later = log.head().timestamp_ns + 3_600_000_000_000;
    /// let report = log.apply_retention(later)?;
    /// assert_eq!(report.dropped_segments, vec![1]);
    /// assert_eq!(log.segments()?[0].number, 2);
    /// log.verify()?; // what remains still verifies, from the anchor file
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        self.inner.set_legal_hold(reason)
    }

    /// Records that `who` read or exported the log: `what` says the range
    /// or query, `why` the reason (a ticket, a case; may be empty). An
    /// accessed record (format-spec.md 4.2) in the chain like any other, so
    /// the trail of who looked at the trail is itself tamper-evident.
    /// Needs the writer; returns the record's seq. Each string is kept up
    /// to 65,535 bytes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let log = wormlog::Log::open(dir.path(), wormlog::Options::default())?;
    /// let seq = log.record_access("auditor", "export seqs 1..=100", "SOC 2 sample")?;
    /// assert_eq!(log.get(seq)?.kind(), wormlog::RecordKind::Accessed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_access(&self, who: &str, what: &str, why: &str) -> Result<u64> {
        self.inner.record_access(who, what, why)
    }

    /// Clears the legal hold (recorded in the chain first).
    pub fn clear_legal_hold(&self) -> Result<()> {
        self.inner.clear_legal_hold()
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
            .filter(|n| !is_engine_file_name(n))
            .collect();
        names.sort_unstable();
        Ok(names.into_iter().map(|n| shared.dir.join(n)).collect())
    }

    /// The legal hold's reason, if one is set.
    pub fn legal_hold(&self) -> Result<Option<String>> {
        let shared = &self.inner.shared;
        anchor::read_hold(&*shared.options.storage, &shared.dir)
    }

    /// The last failure of background sealing, if any (sealing is retried
    /// at the next roll, `seal` and open).
    pub fn seal_error(&self) -> Option<String> {
        self.inner.shared.seal_error.lock().clone()
    }

    /// Appends one record; returns once it is committed (durable under
    /// `Durability::Sync`). The receipt holds the record's seq, chain hash
    /// and commit time.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// let a = log.append(br#"{"actor":"alice","action":"login"}"#)?;
    /// let b = log.append(br#"{"actor":"alice","action":"logout"}"#)?;
    /// assert_eq!(b.seq, a.seq + 1);
    /// assert!(b.timestamp_ns >= a.timestamp_ns);
    /// assert_eq!(log.head(), b);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append(&self, payload: &[u8]) -> Result<Receipt> {
        let mut receipts = self.append_batch(&[payload])?;
        debug_assert_eq!(receipts.len(), 1);
        receipts.pop().ok_or_else(|| Error::Poisoned {
            cause: "no receipt returned".into(),
        })
    }

    /// Appends records as one unit: contiguous seqs, committed together
    /// (one write, and under `Durability::Sync` one fdatasync). Every
    /// payload is checked against `Options::payload_bytes_max` before any is
    /// written.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// let receipts = log.append_batch(&[&b"one"[..], b"two", b"three"])?;
    /// assert_eq!(receipts.len(), 3);
    /// assert_eq!(receipts[2].seq, receipts[0].seq + 2);
    /// // Committed together: one commit time.
    /// assert_eq!(receipts[0].timestamp_ns, receipts[2].timestamp_ns);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Vec<Receipt>> {
        let owned = payloads.iter().map(|p| p.as_ref().to_vec()).collect();
        self.inner.append_batch(owned)
    }

    /// Appends a record and returns, with its receipt, a C2SP tlog-proof
    /// that it is in the log (format-spec.md §18.1): its leaf index, its
    /// inclusion path, and a checkpoint signed with the key given to
    /// [`Options::proofs`] (an error without one). Returns once the record
    /// is durable, whatever the durability mode. One signature serves a
    /// whole group commit. Anyone with the log's public key checks the
    /// proof offline ([`TlogProof::verify`](crate::TlogProof::verify)).
    ///
    /// ```rust
    /// use wormlog::{CheckpointKey, Log, Options};
    ///
    /// let key = CheckpointKey::generate("audit.example")?;
    /// let public = key.public();
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default().proofs(key))?;
    /// let proved = log.append_proved(b"alice logged in")?;
    /// // Offline, with the public key alone:
    /// let leaf = proved.proof.verify(&public)?;
    /// assert_eq!(leaf.seq, proved.receipt.seq);
    /// assert!(leaf.binds_payload(b"alice logged in"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "signing")]
    pub fn append_proved(&self, payload: &[u8]) -> Result<crate::Proved> {
        let mut proved = self.append_batch_proved(&[payload])?;
        proved.pop().ok_or_else(|| Error::Poisoned {
            cause: "no proof returned".into(),
        })
    }

    /// [`append_batch`](Self::append_batch) with a proof for each record,
    /// as [`append_proved`](Self::append_proved).
    #[cfg(feature = "signing")]
    pub fn append_batch_proved<P: AsRef<[u8]>>(
        &self,
        payloads: &[P],
    ) -> Result<Vec<crate::Proved>> {
        let owned = payloads.iter().map(|p| p.as_ref().to_vec()).collect();
        crate::prover::append_proved(&self.inner, owned)
    }

    /// The proofs again, each against one checkpoint that covers them all
    /// and that every witness cosigned (C2SP tlog-witness, format-spec.md
    /// §18.4): what a verifier with a trust policy (`--policy`) accepts.
    /// A checkpoint already cosigned is reused; witnesses are asked one
    /// round at a time. `Error::WitnessConflict` when a witness has seen
    /// another history of this log.
    #[cfg(feature = "signing")]
    pub fn witness_proofs(
        &self,
        proofs: &[crate::Proved],
        witnesses: &[crate::Witness],
    ) -> Result<Vec<crate::Proved>> {
        crate::prover::witness(&self.inner, proofs, witnesses)
    }

    /// Makes every committed record durable (an fdatasync, if anything is unsynced).
    pub fn sync(&self) -> Result<()> {
        self.inner.writer()?.sync(&self.inner.shared)
    }

    /// The last committed record.
    pub fn head(&self) -> Head {
        // A failed write poisons the log; the head is then what was written.
        let _ = self.inner.write_out();
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
            proof_signatures: c.proof_signatures.load(Ordering::Relaxed),
            sync_ns: c.sync_ns.load(Ordering::Relaxed),
            sync_histogram: std::array::from_fn(|i| c.sync_histogram[i].load(Ordering::Relaxed)),
        }
    }

    /// The segments, oldest first, with their seq ranges and sizes.
    pub fn segments(&self) -> Result<Vec<SegmentInfo>> {
        self.inner.write_out()?;
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
                prev_hash: s.header.prev_hash,
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
    pub fn anchor_entries(&self) -> Result<Vec<AnchorEntry>> {
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

    /// The log directory, as given to `open`.
    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Committed records with seqs in `range` (engine records included; see
    /// [`Record::is_system`]), oldest first. Records committed after this
    /// call are not included.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// log.append_batch(&[&b"a"[..], b"b", b"c"])?;
    /// let mut user = Vec::new();
    /// for record in log.read(..)? {
    ///     let record = record?;
    ///     if !record.is_system() {
    ///         user.push(record.payload().to_vec());
    ///     }
    /// }
    /// assert_eq!(user, [b"a", b"b", b"c"]);
    /// // Seq 1 is the engine's log-created record.
    /// let first = log.read(1..=1)?.next().expect("seq 1 exists")?;
    /// assert!(first.is_system());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self, range: impl RangeBounds<u64>) -> Result<Iter> {
        self.inner.write_out()?;
        read::iter(&self.inner.shared, range)
    }

    /// The record with sequence number `seq`.
    pub fn get(&self, seq: u64) -> Result<Record> {
        self.inner.write_out()?;
        read::get(&self.inner.shared, seq)
    }

    /// The first record committed at or after `timestamp_ns` (ns since the
    /// Unix epoch), if any. Engine records count.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// let r = log.append(b"event")?;
    /// let found = log.first_at_or_after(r.timestamp_ns)?.expect("the event is at that time");
    /// // Records committed at the same nanosecond come first, oldest first.
    /// assert!(found.seq() <= r.seq && found.timestamp() >= r.timestamp_ns);
    /// assert!(log.first_at_or_after(r.timestamp_ns + 1)?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_at_or_after(&self, timestamp_ns: u64) -> Result<Option<Record>> {
        self.inner.write_out()?;
        read::first_at_or_after(&self.inner.shared, timestamp_ns)
    }

    /// Sets up forward-secure sealing: a new verification key (returned,
    /// and nowhere else: keep it off this host), the key of epoch 1 in the
    /// log directory's `wormlog.fss` (mode 0600), and a sealing-started
    /// record. From then on the writer tags each epoch of `interval` as it
    /// ends, and `verify_sealed` with the verification key detects any
    /// change to records of an epoch tagged before the host was taken.
    /// Fails if sealing is already set up (delete `wormlog.fss` first to
    /// re-key: the log records the new start, and verification takes both
    /// keys).
    pub fn setup_sealing(&self, interval: std::time::Duration) -> Result<VerificationKey> {
        self.setup_sealing_with(interval, |_| Ok(()))
    }

    /// [`Log::setup_sealing`], handing the verification key to `keep` (to
    /// print it, write it off the host) before anything of the setup is
    /// written: should `keep` fail, nothing is set up, and once the log's
    /// key file is announced, its verification key has been kept. Without
    /// this, a crash between the announcement and the caller's own write
    /// of the returned key lost the key of a log sealed under it.
    pub fn setup_sealing_with(
        &self,
        interval: std::time::Duration,
        keep: impl FnOnce(&VerificationKey) -> std::io::Result<()>,
    ) -> Result<VerificationKey> {
        let shared = &self.inner.shared;
        let interval_ns = u64::try_from(interval.as_nanos())
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::InvalidOptions("the sealing interval must be > 0".into()))?;
        let mut writer = self.inner.writer()?;
        // A rotation: the key in use tags every epoch through the current
        // one first, so that its era's tags reach the new start (a
        // verifier requires it: format-spec.md 10a, "Re-keying").
        let previous = match writer.sealing_key().map(|k| k.key_id) {
            Some(old) => {
                writer.tag_ended_epochs_now(shared)?;
                PreviousEra::Rotated(old)
            }
            None if crate::fss::load(&*shared.options.storage, &shared.dir)?.is_some() => {
                return Err(Error::InvalidOptions(
                    "a sealing key file the writer did not take up is in the way".into(),
                ));
            }
            None => PreviousEra::NoKeyFile,
        };
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| {
            Error::io(
                "read random bytes for a sealing key",
                "",
                std::io::Error::other(e.to_string()),
            )
        })?;
        // The head under the guard already held: `Log::head` would take the
        // writer's lock again to flush a Buffered log (not re-entrant).
        let head_ns = writer.head_flushed(shared).timestamp_ns;
        let start_ns = (shared.options.clock)().max(head_ns);
        let verification = VerificationKey {
            key: seed,
            start_ns,
            interval_ns,
            log_id: Some(shared.log_id),
        };
        // The host gets epoch 1's key, never epoch 0's (the verification
        // key); the key file first, so a crash before the record leaves a
        // key that the next open tags with, not a record with no key.
        let key = FssKeyFile {
            start_ns,
            interval_ns,
            epoch: 1,
            key: key_at(&seed, 1),
            key_id: key_id(&seed),
            announced: false,
        };
        debug_assert_eq!(epoch_of(start_ns, interval_ns, start_ns), 1);
        keep(&verification).map_err(|e| Error::io("keep the verification key", "", e))?;
        let storage = &*shared.options.storage;
        let rotation = matches!(previous, PreviousEra::Rotated(_));
        // A rotation keeps the old key until its final tag is durable (the
        // next open finishes one a crash cut short: `finish_rotation`).
        if rotation {
            crate::fss::store_next(storage, &shared.dir, &key)?;
        } else {
            crate::fss::store(storage, &shared.dir, &key)?;
        }
        writer.write_system(
            shared,
            &[SystemEvent::SealingStarted {
                start_ns,
                interval_ns,
                key_id: verification.id(),
                previous: Some(previous),
            }],
        )?;
        // Only now, the record durable, is the key file the log's: a crash
        // before this leaves one that the next open discards (its
        // verification key was never returned).
        let key = FssKeyFile {
            announced: true,
            ..key
        };
        if rotation {
            // The old key seals the rotation's record: only the holder of
            // its key of this epoch can end its era here.
            writer.seal_for_rotation(shared)?;
            crate::fss::install_next(storage, &shared.dir, &key)?;
        } else {
            crate::fss::store(storage, &shared.dir, &key)?;
        }
        writer.set_sealing_key(key);
        self.inner.sealing_on.store(true, Ordering::Relaxed);
        Ok(verification)
    }

    /// [`Log::verify`], and forward-secure sealing checked with `keys` (the
    /// verification keys the log was sealed under): every epoch tag, the
    /// epochs without a gap, and the sealing key file (or, without one, the
    /// time now) against the last tag. The report says through which epoch,
    /// time and seq the log is sealed, and how many records after are not.
    pub fn verify_sealed(&self, keys: &[VerificationKey]) -> Result<VerifyReport> {
        self.verify_sealed_with_progress(keys, |_| ())
    }

    /// [`Log::verify_sealed`] with progress reports.
    pub fn verify_sealed_with_progress(
        &self,
        keys: &[VerificationKey],
        progress: impl Fn(VerifyProgress) + Sync,
    ) -> Result<VerifyReport> {
        self.verify_now(keys, &progress)
    }

    /// Checks every committed record: frames, CRCs, seqs, timestamps and the
    /// hash chain from the genesis hash (or, once retention dropped
    /// segments, from where the anchor file vouches for) through the head.
    /// A chain alone does not catch a log rewritten whole: see
    /// [`Log::verify_against`] with a checkpoint kept elsewhere.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// log.append(b"event")?;
    /// let report = log.verify()?;
    /// assert_eq!(report.first_seq, 1);
    /// assert_eq!(report.head, log.head());
    /// assert_eq!(report.records, 3); // log-created, log-opened, the event
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_progress(|_| ())
    }

    /// [`Log::verify`], calling `progress` as segments are checked. Calls
    /// come from several threads and may arrive slightly out of order.
    pub fn verify_with_progress(
        &self,
        progress: impl Fn(VerifyProgress) + Sync,
    ) -> Result<VerifyReport> {
        self.verify_now(&[], &progress)
    }

    /// Verifies the log's end as of now: the key file read first, then
    /// (read-only) the writer's newest records taken in, so that no epoch
    /// tag the key file's epoch follows is outside the check.
    fn verify_now(
        &self,
        keys: &[VerificationKey],
        progress: &(dyn Fn(VerifyProgress) + Sync),
    ) -> Result<VerifyReport> {
        let key_file = verify::key_file_for_verify(&self.inner.shared)?;
        self.inner.write_out()?;
        self.refresh()?;
        verify::verify_log(&self.inner.shared, keys, key_file.as_ref(), progress)
    }

    /// The head as a checkpoint, to sign (`Checkpoint::sign`) and keep
    /// somewhere the log's writer cannot reach.
    ///
    /// ```rust
    /// use wormlog::{Checkpoint, CheckpointKey, Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// log.append(b"event")?;
    /// let key = CheckpointKey::generate("audit.example")?;
    /// let checkpoint = log.checkpoint()?;
    /// let note = checkpoint.sign(&key);
    /// // Later, elsewhere, with only the public key and the note:
    /// let checked = Checkpoint::verify_note(&note, &key.public())?;
    /// assert_eq!(checked, checkpoint);
    /// assert_eq!(checked.seq, log.head().seq);
    /// log.verify_against(&checked)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    /// What it names is made durable first (a writer syncs; a read-only
    /// handle fdatasyncs the active segment it read), so no crash leaves
    /// the log shorter than a checkpoint of it. Its tree root is read from
    /// the tree's files: to sign a checkpoint of a log that verified, use
    /// [`Log::checkpoint_verified`].
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        // No write_out first: making it durable syncs a writer's buffer.
        self.inner.checkpoint(None)
    }

    /// The checkpoint of what `report` (this log's verification) checked:
    /// its head, and the tree root it computed from the records walked
    /// (`VerifyReport::tree_root`), not the tree's files read again after
    /// the check, which whoever holds the host could change meanwhile.
    /// What `wormctl checkpoint` signs. Made durable first, as `checkpoint`.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// log.append(b"event")?;
    /// let report = log.verify()?;
    /// let checkpoint = log.checkpoint_verified(&report)?;
    /// assert_eq!(checkpoint.seq, report.head.seq);
    /// assert_eq!(checkpoint.tree_root, report.tree_root);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint_verified(&self, report: &VerifyReport) -> Result<Checkpoint> {
        self.inner.checkpoint(Some(report))
    }

    /// The head of the Merkle tree over every committed record (RFC 6962,
    /// SHA-256; format-spec.md §14): size = the head's seq.
    pub fn tree_head(&self) -> Result<TreeHead> {
        self.inner.write_out()?;
        let size = self.inner.shared.visible.read().head.seq;
        merkle::head_at(&self.inner.shared, size, false)
    }

    /// The head of the tree of records 1..=`size`.
    pub fn tree_head_at(&self, size: u64) -> Result<TreeHead> {
        self.inner.write_out()?;
        merkle::head_at(&self.inner.shared, size, false)
    }

    /// That record `seq` is in the tree of records 1..=`tree_size` (an
    /// inclusion proof, RFC 9162 §2.1.3). Check it with
    /// [`InclusionProof::verify`] against a checkpoint's root, with no log.
    ///
    /// ```rust
    /// use wormlog::{Log, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Options::default())?;
    /// let r = log.append(b"event")?;
    /// log.append(b"a later event")?;
    /// let head = log.tree_head()?;
    /// let proof = log.prove_inclusion(r.seq, head.size)?;
    /// assert!(proof.verify(&head.root));
    /// // The proof is of this record: its leaf binds seq, time, kind and hash.
    /// let record = log.get(r.seq)?;
    /// let before = log.get(r.seq - 1)?;
    /// assert!(proof.binds(&record, before.hash()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prove_inclusion(&self, seq: u64, tree_size: u64) -> Result<InclusionProof> {
        self.inner.write_out()?;
        merkle::prove_inclusion(&self.inner.shared, seq, tree_size)
    }

    /// Hash tile `index` of tree level `level` holding its first `width`
    /// hashes (1..=256): what C2SP tlog-tiles serves at `tile/<L>/<N>`
    /// (`tile/<L>/<N>.p/<W>` when `width` < 256), 32 bytes a hash when
    /// concatenated. For serving the tree to proof clients over HTTP, and
    /// for checking tiles kept elsewhere against the records. An error if
    /// the tree does not reach that far. The tree covers every committed
    /// record; under `Batched` or `Buffered` durability a crash may still
    /// cut the newest, so serve as immutable (as C2SP clients cache tiles)
    /// only tiles over records that are durable, such as those of sealed
    /// segments (`Log::segments`), as the shipper does.
    ///
    /// ```rust
    /// let dir = tempfile::tempdir()?;
    /// let log = wormlog::Log::open(dir.path(), wormlog::Options::default())?;
    /// log.append(b"one")?;
    /// let head = log.tree_head_at(log.head().seq)?;
    /// let tile = log.tile(0, 0, head.size)?; // every leaf hash so far
    /// assert_eq!(tile.len() as u64, head.size);
    /// assert!(log.tile(0, 0, head.size + 1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tile(&self, level: u32, index: u64, width: u64) -> Result<Vec<crate::format::Hash>> {
        self.inner.write_out()?;
        merkle::tile(&self.inner.shared, level, index, width)
    }

    /// Writes the log as a static C2SP tlog (<https://c2sp.org/tlog-tiles>)
    /// into the directory `out`: `checkpoint` (the head's checkpoint,
    /// signed with `key` where given, else its unsigned body), hash tiles
    /// `tile/<L>/<N>` with the partial tiles of its size, and entry bundles
    /// `tile/entries/<N>` of 49-byte leaf data (format-spec.md §14.5).
    /// Bundles holding records retention dropped are left out.
    ///
    /// The log is verified first, and the checkpoint is of that
    /// verification (`checkpoint_verified`): its root is the one computed
    /// from the records, never the tree files read again after the check
    /// (the fifteenth red team raced an export that read them again).
    pub fn export_tlog(&self, out: &Path, key: Option<&CheckpointKey>) -> Result<TlogExport> {
        let report = self.verify()?;
        let cp = self.checkpoint_verified(&report)?;
        if cp.tree_root.is_none() {
            return Err(Error::TreeUnavailable {
                detail: "retention dropped this log's first records before it had a tree".into(),
            });
        }
        let note = match key {
            Some(k) => cp.sign(k),
            None => cp.body(),
        };
        merkle::export_tlog(&self.inner.shared, out, &note, cp.seq)
    }

    /// Has `note` (this log's signed checkpoint of `checkpoint`) cosigned by
    /// each witness (C2SP tlog-witness, format-spec.md §18.4): each gets the
    /// note with a consistency proof from the size it last cosigned, and
    /// the note comes back with every witness's cosignature line, each
    /// checked against its key. `Error::WitnessConflict` when a witness has
    /// seen another history of this log; `Error::WitnessAhead` when one has
    /// cosigned a newer checkpoint this log extends (sign a newer one);
    /// `Error::WitnessUnreachable` when one could not be asked. `key` is the
    /// log's public key, which checks what a witness says it cosigned.
    #[cfg(feature = "signing")]
    pub fn cosign_checkpoint(
        &self,
        key: &crate::CheckpointPublicKey,
        checkpoint: &Checkpoint,
        note: &str,
        witnesses: &[crate::Witness],
    ) -> Result<String> {
        let consistency = |old: u64, new: u64| Ok(self.prove_consistency(old, new)?.hashes);
        // The log as it is now, not as this handle opened it: a witness
        // ahead of the head signed is most often another round of this
        // same log, which a reader sees only once refreshed (a red team's
        // race called a faithful log forked).
        let root_at = |n: u64| {
            self.inner.write_out()?;
            self.refresh()?;
            merkle::root_at(&self.inner.shared, n)
        };
        let log = crate::witness::LogView {
            key,
            consistency: &consistency,
            root_at: &root_at,
        };
        crate::witness::cosign_note(note, checkpoint.seq, witnesses, &log)
    }

    /// That the tree of `new_size` records extends that of `old_size`
    /// (a consistency proof, RFC 9162 §2.1.4): no record of the older tree
    /// was changed, dropped from the tree or reordered.
    pub fn prove_consistency(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof> {
        self.inner.write_out()?;
        merkle::prove_consistency(&self.inner.shared, old_size, new_size)
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
            return Err(Error::CheckpointOfAnotherLog {
                path: self.dir().to_path_buf(),
                checkpoint_log: hex(cp.log_id),
                log: hex(self.log_id()),
            });
        }
        if cp.seq > report.head.seq {
            return mismatch(format!(
                "the log ends at seq {}, before the checkpoint's seq {} (truncated or rolled back)",
                report.head.seq, cp.seq
            ));
        }
        let since = match &cp.retention {
            Some(rp) => Some(self.check_retention_point(rp, &report)?),
            None => None,
        };
        // The tree the checkpoint signed must be the first `seq` leaves of
        // the tree this verification computed from the records (its root
        // at the head; a smaller size through a consistency proof to it).
        // Then the tree vouches for record `seq` (its leaf holds the chain
        // hash) even where retention dropped it.
        let verified = match (&cp.tree_root, report.tree_root) {
            (Some(_), None) => {
                // No tree here to compute: the error says why.
                self.tree_head_at(cp.seq)?;
                return Err(Error::TreeUnavailable {
                    detail: "the tree could not be checked".into(),
                });
            }
            (_, root) => root.map(|r| (report.head.seq, r)),
        };
        let mut tree_vouches = false;
        if let (Some(root), Some(verified)) = (&cp.tree_root, verified) {
            let now = merkle::root_under(&self.inner.shared, cp.seq, verified)?;
            let Some(now) = now else {
                return Err(Error::corrupt(
                    self.dir().join(crate::format::names::tree_file_name(0)),
                    0,
                    None,
                    Corruption::TreeState {
                        detail: format!(
                            "the tree files give no root for records 1..={} consistent with the \
                             tree verification computed from the records: they changed during the check",
                            cp.seq
                        ),
                    },
                ));
            };
            if now != *root {
                return mismatch(format!(
                    "the Merkle tree of records 1..={} has root {}, the checkpoint says {} \
                     (the log was rewritten: records up to it were changed, dropped or reordered)",
                    cp.seq,
                    hex(now),
                    hex(root)
                ));
            }
            tree_vouches = true;
        }
        if let Some(since) = since {
            let tree = verified.filter(|_| tree_vouches);
            verify::check_drops_since(&self.inner.shared, cp, since, tree)?;
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
        // The root vouches for every leaf; the leaf must be this record's.
        let leaf_vouched = match verified.filter(|_| tree_vouches && held.is_none()) {
            Some(v) => merkle::leaf_is(&self.inner.shared, cp.seq, cp.timestamp_ns, &cp.hash, v)?,
            None => false,
        };
        match held {
            None if leaf_vouched => Ok(report),
            None => mismatch(format!(
                "seq {} was dropped by retention and the anchor does not record its hash",
                cp.seq
            )),
            Some((hash, _)) if hash != cp.hash => mismatch(format!(
                "record {} has chain hash {}, the checkpoint says {} (the log was rewritten)",
                cp.seq,
                hex(hash),
                hex(cp.hash)
            )),
            Some((_, Some(ts))) if ts != cp.timestamp_ns => mismatch(format!(
                "record {} was committed at {ts}, the checkpoint says {}",
                cp.seq, cp.timestamp_ns
            )),
            Some(_) => Ok(report),
        }
    }

    /// A checkpoint's retention state must still be the past of the log's:
    /// its newest anchor entry is still in the anchor file (entries after it
    /// are the drops since, each checked by verification against the hold
    /// and policy in force), and the log starts no earlier than it did.
    /// Gives how many anchor entries the checkpoint knew.
    fn check_retention_point(&self, rp: &RetentionPoint, report: &VerifyReport) -> Result<usize> {
        let shared = &self.inner.shared;
        let anchor = shared.anchor_on_disk()?;
        let known = if rp.anchor_head == anchor_genesis(&shared.log_id) {
            Some(0)
        } else {
            anchor
                .entries
                .iter()
                .position(|(_, h)| *h == rp.anchor_head)
                .map(|i| i + 1)
        };
        let Some(known) = known else {
            return Err(Error::CheckpointMismatch {
                detail: format!(
                    "the anchor file no longer holds entry {}, the newest when the checkpoint was \
                     taken (the anchor was rewritten)",
                    hex(rp.anchor_head)
                ),
            });
        };
        if report.first_seq < rp.first_seq {
            return Err(Error::CheckpointMismatch {
                detail: format!(
                    "the log starts at seq {}, before seq {} where it started when the \
                     checkpoint was taken (segments were put back or the anchor rolled back)",
                    report.first_seq, rp.first_seq
                ),
            });
        }
        Ok(known)
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
        // A shipping run under way stops between objects (what it shipped
        // is recorded); a seal under way finishes; nothing starts again.
        self.inner.ship_signal.lock().stop = true;
        if let Some(jobs) = self.inner.jobs.get() {
            jobs.stop_all_but_commit();
            if jobs.control.is_some() {
                crate::control::stop(&self.inner);
            }
        }
        self.inner.barrier.close();
        if let Some(commit) = self.inner.jobs.get().and_then(|j| j.commit.as_ref()) {
            commit.stop();
        }
        let mut writer = self.inner.writer()?;
        writer.trim_preallocation(&self.inner.shared)?;
        writer.write_system(&self.inner.shared, &[SystemEvent::LogClosed])?;
        // A sealed close: the log's end is sealed, and no tags are owed
        // until it is opened again.
        writer.seal_close(&self.inner.shared)?;
        drop(writer);
        // The tree is derived from the records: a failure here loses nothing
        // that the next open cannot recompute.
        let _ = merkle::catch_up(&self.inner.shared);
        self.inner.auto_checkpoint(true);
        Ok(())
    }

    /// Why the last automatic checkpoint could not be made or handed to
    /// its sink, if one could not (`Options::auto_checkpoints`).
    pub fn checkpoint_error(&self) -> Option<String> {
        self.inner.checkpoint_error.lock().clone()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Feature `serde`: typed events. The payload is the event's compact JSON,
/// so `wormctl dump --json` shows it as an object and any JSON tool reads
/// it.
#[cfg(feature = "serde")]
impl Log {
    /// Appends `event` as one JSON record.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Login { actor: String, ok: bool }
    /// let dir = tempfile::tempdir()?;
    /// let log = wormlog::Log::open(dir.path(), wormlog::Options::default())?;
    /// let r = log.append_json(&Login { actor: "alice".into(), ok: true })?;
    /// let events: Vec<_> = log.events::<Login>(..)?.collect::<Result<_, _>>()?;
    /// assert_eq!(events.len(), 1);
    /// assert_eq!(events[0].seq, r.seq);
    /// assert_eq!(events[0].data, Login { actor: "alice".into(), ok: true });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_json<T: serde::Serialize + ?Sized>(&self, event: &T) -> Result<Receipt> {
        self.append(&crate::json::encode(event)?)
    }

    /// Appends events together, as `append_batch` does.
    pub fn append_json_batch<T: serde::Serialize>(&self, events: &[T]) -> Result<Vec<Receipt>> {
        let payloads = events
            .iter()
            .map(crate::json::encode)
            .collect::<Result<Vec<_>>>()?;
        self.append_batch(&payloads)
    }

    /// The user events of `range`, decoded as `T` (engine records skipped).
    pub fn events<T: serde::de::DeserializeOwned>(
        &self,
        range: impl RangeBounds<u64>,
    ) -> Result<crate::json::Events<T>> {
        Ok(crate::json::Events {
            records: self.read(range)?,
            _t: std::marker::PhantomData,
        })
    }
}

/// Feature `async`: appends and reads for async code, with no async
/// runtime in the engine. An append's future completes when its group is
/// committed as `Options::durability` says (the group-commit waiter gets a
/// waker; a committer thread of the log's writes and syncs for async
/// callers); reads run on the engine's small read pool. Neither blocks the
/// executor. Each future owns what it needs, so it is `Send + 'static`.
#[cfg(feature = "async")]
impl Log {
    /// Appends one record; completes with its receipt once it is durable
    /// (as `append` returns). A poisoned log fails it with `Error::Poisoned`:
    /// drop the log and open it again.
    pub fn append_async(&self, payload: impl Into<Vec<u8>>) -> Append {
        self.append_batch_async(vec![payload.into()])
    }

    /// Appends records together, in order, as `append_batch` does.
    pub fn append_batch_async(&self, payloads: Vec<Vec<u8>>) -> Append {
        let inner = &self.inner;
        let max = inner.shared.options.payload_bytes_max;
        let state = if let Some(p) = payloads.iter().find(|p| p.len() > max) {
            AppendState::Ready(Err(Error::PayloadTooLarge { len: p.len(), max }))
        } else if payloads.is_empty() {
            AppendState::Ready(Ok(Vec::new()))
        } else if let Err(e) = inner.shared.check_writable() {
            AppendState::Ready(Err(e))
        } else if !matches!(inner.mode, Mode::Write(_)) {
            AppendState::Ready(Err(Error::ReadOnly {
                path: inner.shared.dir.clone(),
            }))
        } else {
            let req = crate::writer::Request::new(crate::format::RecordKind::User, payloads);
            let weight = req.bytes();
            match inner.barrier.submit(req, weight) {
                Ok(s) => AppendState::Waiting(s),
                Err(e) => AppendState::Ready(Err(e)),
            }
        };
        Append { state }
    }

    /// [`append_batch_proved`](Self::append_batch_proved) on the engine's
    /// pool: the future completes with each record's receipt and proof
    /// once they are durable and proved (feature `signing` too).
    #[cfg(feature = "signing")]
    pub fn append_batch_proved_async(
        &self,
        payloads: Vec<Vec<u8>>,
    ) -> crate::task::Task<Result<Vec<crate::Proved>>> {
        let inner = self.inner.clone();
        crate::task::run(move || crate::prover::append_proved(&inner, payloads))
    }

    /// `get` on the read pool.
    pub fn get_async(&self, seq: u64) -> crate::task::Task<Result<Record>> {
        let inner = self.inner.clone();
        crate::task::run(move || {
            inner.write_out()?;
            read::get(&inner.shared, seq)
        })
    }

    /// The records of `range` (at most `limit` of them), read on the pool.
    pub fn read_async(
        &self,
        range: std::ops::Range<u64>,
        limit: usize,
    ) -> crate::task::Task<Result<Vec<Record>>> {
        let inner = self.inner.clone();
        crate::task::run(move || {
            inner.write_out()?;
            read::iter(&inner.shared, range)?.take(limit).collect()
        })
    }

    /// `first_at_or_after` on the read pool: where a time window starts.
    pub fn first_at_or_after_async(
        &self,
        timestamp_ns: u64,
    ) -> crate::task::Task<Result<Option<Record>>> {
        let inner = self.inner.clone();
        crate::task::run(move || {
            inner.write_out()?;
            read::first_at_or_after(&inner.shared, timestamp_ns)
        })
    }
}

/// Features `async` and `serde` together: typed events from async code.
#[cfg(all(feature = "async", feature = "serde"))]
impl Log {
    /// Appends one event as JSON (as `append_json`), completing once it is
    /// durable (as `append_async`). An event that does not serialize
    /// completes at once with `Error::Json`.
    pub fn append_json_async<T: serde::Serialize + ?Sized>(&self, event: &T) -> Append {
        match crate::json::encode(event) {
            Ok(payload) => self.append_async(payload),
            Err(e) => Append {
                state: AppendState::Ready(Err(e)),
            },
        }
    }

    /// Appends events together (as `append_json_batch`), asynchronously.
    pub fn append_json_batch_async<T: serde::Serialize>(&self, events: &[T]) -> Append {
        match events.iter().map(crate::json::encode).collect() {
            Ok(payloads) => self.append_batch_async(payloads),
            Err(e) => Append {
                state: AppendState::Ready(Err(e)),
            },
        }
    }

    /// The user events of `range` decoded as `T` (engine records skipped),
    /// at most `limit` records looked at, read on the read pool: a page of
    /// `Log::events`. The next page starts after the last record looked
    /// at, which the second value says (`None` once the range is done).
    pub fn events_async<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        range: std::ops::Range<u64>,
        limit: usize,
    ) -> crate::task::Task<Result<crate::json::EventPage<T>>> {
        let inner = self.inner.clone();
        crate::task::run(move || {
            inner.write_out()?;
            let end = range.end;
            let limit = limit.max(1);
            let mut events = Vec::new();
            let mut next = None;
            for (i, r) in read::iter(&inner.shared, range)?.enumerate() {
                let r = r?;
                if i == limit {
                    next = Some(r.seq()).filter(|s| *s < end);
                    break;
                }
                if !r.is_system() {
                    events.push(crate::json::decode(&r)?);
                }
            }
            Ok((events, next))
        })
    }
}

/// The future of `Log::append_async`: the receipts of its records.
#[cfg(feature = "async")]
#[must_use = "an append is only acknowledged when its future completes"]
pub struct Append {
    state: AppendState,
}

#[cfg(feature = "async")]
enum AppendState {
    Ready(Result<Vec<Receipt>>),
    Waiting(crate::barrier::Submitted<crate::writer::Request, Vec<Receipt>>),
    Done,
}

#[cfg(feature = "async")]
impl std::fmt::Debug for Append {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append").finish_non_exhaustive()
    }
}

#[cfg(feature = "async")]
impl Append {
    /// The receipts of a batch (`append_batch_async`), in order.
    pub async fn batch(mut self) -> Result<Vec<Receipt>> {
        std::future::poll_fn(|cx| self.poll_receipts(cx)).await
    }

    fn poll_receipts(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Vec<Receipt>>> {
        use std::task::Poll;
        match std::mem::replace(&mut self.state, AppendState::Done) {
            AppendState::Ready(r) => Poll::Ready(r),
            AppendState::Waiting(s) => match s.poll_outcome(cx.waker()) {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    self.state = AppendState::Waiting(s);
                    Poll::Pending
                }
            },
            AppendState::Done => panic!("an append future polled after it completed"),
        }
    }
}

#[cfg(feature = "async")]
impl std::future::Future for Append {
    type Output = Result<Receipt>;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Receipt>> {
        self.get_mut().poll_receipts(cx).map(|r| {
            r.and_then(|mut v| {
                debug_assert_eq!(v.len(), 1);
                v.pop().ok_or_else(|| Error::Poisoned {
                    cause: "no receipt returned".into(),
                })
            })
        })
    }
}

/// Makes the hold file say what the chain says, where a crash between the
/// two steps of a hold change (format-spec.md, 8.4) left them apart: a hold
/// file without its record gets the record (setting a hold only protects),
/// and a hold the chain records is written back to its file. Either way the
/// chain is the truth, and what changed is in it.
fn reconcile_hold(shared: &Shared, writer: &mut Writer) -> Result<()> {
    let storage = &*shared.options.storage;
    let file = anchor::read_hold(storage, &shared.dir)?;
    let chain = writer.state().hold.clone();
    match (&chain, file) {
        (None, Some(reason)) => {
            writer.write_system(shared, &[SystemEvent::LegalHoldSet { reason }])
        }
        (Some(reason), file) if file.as_deref() != Some(reason.as_str()) => {
            anchor::write_hold(storage, &shared.dir, reason)
        }
        _ => Ok(()),
    }
}

/// The Merkle tree's files as recovery left the log. A reader is not kept
/// from the records by a derived file it cannot open (a symlink or FIFO
/// where a tile file belongs): the tree is then unavailable to it, which
/// proofs and verification report.
fn open_tree(options: &Options, dir: &Path, r: &Recovered) -> Result<Tree> {
    let first_seq = r.segments.first().map_or(1, |s| s.header.first_seq);
    let writable = r.file.is_some();
    match Tree::open(
        options.storage.clone(),
        dir,
        writable,
        r.end.at.seq,
        first_seq,
    ) {
        Ok(t) => Ok(t),
        Err(_) if !writable => Ok(Tree::empty(options.storage.clone(), dir)),
        Err(e) => Err(e),
    }
}

/// A read-only handle: no writer, no threads.
fn reader_log(shared: Shared, end: SegmentEnd, policy: Option<RetentionRule>) -> Log {
    let head_ns = end.at.timestamp_ns;
    let mut inner = Engine::new(shared, Mode::Read(Box::new(Mutex::new(end))), None, head_ns);
    inner.policy_at_open = policy;
    Log {
        inner: Arc::new(inner),
        closed: true,
        recovery: RecoveryReport::default(),
    }
}

/// Format 3, at a writer's open: a policy the writer was opened with is
/// recorded now, before any drop needs it, so that the tags after it seal
/// it (one weaker than the chain's is refused: the open fails); and a wall
/// clock more than `clock_jump_max` past the log's last record `head_ns`
/// is recorded as a clock jump (across a restart an idle log and a leap
/// look alike; both are said, and the verifier judges with its own clock).
fn record_policy_and_clock(shared: &Shared, writer: &mut Writer, head_ns: u64) -> Result<()> {
    let mut events = Vec::new();
    if let Some(p) = &shared.options.retention {
        let rule = p.rule();
        retention::check_not_weaker(writer.state().policy, rule)?;
        if writer.state().policy != Some(rule) {
            events.push(SystemEvent::RetentionPolicySet { policy: Some(rule) });
        }
    }
    let clock = (shared.options.clock)();
    let bound = u64::try_from(shared.options.clock_jump_max.as_nanos()).unwrap_or(u64::MAX);
    if head_ns > 0 && clock.saturating_sub(head_ns) > bound {
        events.push(SystemEvent::ClockJumped {
            last_ns: head_ns,
            clock_ns: clock,
        });
    }
    if events.is_empty() || writer.segment_version() < 3 {
        return Ok(());
    }
    writer.write_system(shared, &events)
}

/// A rotation a crash cut short (format-spec.md 10a, "Re-keying"): its new
/// key waits in `wormlog.fss.next`. Where its sealing-started record is
/// durable, the old key (still the key file's) makes its final tag if it
/// had not, and the new key is installed; where it is not, the rotation
/// never happened and the interim file goes; where the new key is already
/// installed, only the interim file is left to remove.
fn finish_rotation(
    shared: &Shared,
    writer: &mut Writer,
    scan: crate::recovery::TagScan,
) -> Result<()> {
    let storage = &*shared.options.storage;
    let Some(next) = crate::fss::load_next(storage, &shared.dir)? else {
        return Ok(());
    };
    let current = crate::fss::load(storage, &shared.dir)?;
    let installed = current.is_some_and(|c| c.key_id == next.key_id);
    if installed || scan.started != Some(next.key_id) || writer.sealing_key().is_none() {
        return crate::fss::remove_next(storage, &shared.dir);
    }
    if scan.old_key_final == Some(None) {
        writer.seal_for_rotation(shared)?;
    }
    let key = FssKeyFile {
        announced: true,
        ..next
    };
    crate::fss::install_next(storage, &shared.dir, &key)?;
    writer.set_sealing_key(key);
    // The new key's epochs that ended since its start are sealed at once,
    // through the current one: the old key's final tag above is a record
    // of this epoch, which a tag of ended epochs only would not cover (the
    // eighteenth red team: a reopen epochs after such a crash read as
    // tampering for ever).
    writer.seal_close(shared)
}

/// The sealing key file, if sealing is set up, moved past the epochs the
/// log's last tag sealed: a crash between a tag and the key's evolution
/// leaves the old key, which must not tag those epochs again.
fn load_sealing_key(shared: &Shared, scan: crate::recovery::TagScan) -> Result<Option<FssKeyFile>> {
    let last_tag = scan.epoch;
    let storage = &*shared.options.storage;
    let Some(mut key) = crate::fss::load(storage, &shared.dir)? else {
        return Ok(None);
    };
    if !key.announced && scan.started == Some(key.key_id) {
        // A setup a crash cut short after its sealing-started record was
        // durable: the caller kept the verification key before anything
        // was written (`setup_sealing_with`), so the setup is finished
        // here, not undone (the eleventh red team: undoing it left a log
        // sealed under a key that verify then found no key file for).
        key.announced = true;
        crate::fss::store(storage, &shared.dir, &key)?;
    }
    if !key.announced {
        // A setup that did not finish: nobody holds its verification key.
        let path = shared.dir.join(crate::format::names::FSS_KEY_FILE);
        storage
            .remove_file(&path)
            .map_err(|e| Error::io("remove", &path, e))?;
        storage
            .sync_dir(&shared.dir)
            .map_err(|e| Error::io("fsync directory", &shared.dir, e))?;
        return Ok(None);
    }
    if let Some(tagged) = last_tag.filter(|t| *t >= key.epoch) {
        // A forged tag's epoch must not make the open evolve for ever.
        if tagged - key.epoch > 1 << 24 {
            return Err(Error::corrupt(
                shared.dir.join(crate::format::names::FSS_KEY_FILE),
                0,
                None,
                Corruption::SealBroken {
                    detail: format!(
                        "the log's last tag claims epoch {tagged}, the key is at epoch {}",
                        key.epoch
                    ),
                },
            ));
        }
        while key.epoch <= tagged {
            key = key.evolved();
        }
        crate::fss::store(storage, &shared.dir, &key)?;
    }
    Ok(Some(key))
}
