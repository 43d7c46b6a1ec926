//! The state one open log's handle and its background jobs share: the
//! write path's entry (group commit into the writer), retention, automatic
//! checkpoints and shipping runs. `log` is the public API over it; `upkeep`
//! runs its periodic work on the shared pool.

use crate::anchor;
use crate::background::Job;
use crate::barrier::Barrier;
use crate::checkpoint::{Checkpoint, RetentionPoint};
use crate::error::{Error, Result};
use crate::format::{RecordKind, RetentionRule, SystemEvent};
use crate::merkle;
use crate::options::{Durability, Sealing, Shipping};
use crate::retention::{self, RetentionReport};
use crate::seal;
use crate::segment::SegmentEnd;
use crate::shared::Shared;
use crate::state::{Receipt, ShipStatus};
use crate::storage::DirLock;
use crate::verify::VerifyReport;
use crate::writer::{Request, Writer};
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// How the log was opened.
pub(crate) enum Mode {
    /// For writing: groups of appends go through the barrier to the writer.
    /// (Both kinds are boxed: a segment's digest state is 2 KiB.)
    Write(Box<Mutex<Writer>>),
    /// Read-only: where this reader's view of the active segment ends. Its
    /// lock also keeps two refreshes from interleaving.
    Read(Box<Mutex<SegmentEnd>>),
}

pub(crate) struct Engine {
    pub(crate) shared: Shared,
    pub(crate) barrier: Barrier<Request, Vec<Receipt>>,
    pub(crate) mode: Mode,
    /// When this handle opened the log, and the time of the log's last
    /// record then: the log's own clock, for retention.
    pub(crate) opened: (Instant, u64),
    /// Forward-secure sealing is set up: the epoch timer has work.
    pub(crate) sealing_on: AtomicBool,
    /// When the last automatic checkpoint was made, and of which seq.
    pub(crate) last_auto_checkpoint: Mutex<(Instant, u64)>,
    /// Why the last automatic checkpoint could not be made or put, if so.
    pub(crate) checkpoint_error: Mutex<Option<String>>,
    /// This log's work on the shared background pool (a writer's only).
    pub(crate) jobs: std::sync::OnceLock<Jobs>,
    /// The retention policy the records stated when a reader opened the
    /// log (a writer asks its writer's state).
    pub(crate) policy_at_open: Option<RetentionRule>,
    /// The shipper's state between its runs (see `ShipSignal`).
    pub(crate) ship_signal: Mutex<ShipSignal>,
    /// One shipping run at a time (the thread's, or `Log::ship_now`).
    pub(crate) ship_lock: Mutex<()>,
    pub(crate) ship_status: Mutex<ShipStatus>,
    /// The newest checkpoint proved appends signed: its tree size and its
    /// note (prover.rs). Held while one is signed, so that one group's
    /// appends share one signature.
    #[cfg(feature = "signing")]
    pub(crate) proved: Mutex<Option<(u64, crate::format::Hash, Arc<str>)>>,
    /// The newest checkpoint witnesses cosigned for proofs: its size and
    /// the cosigned note. Held for a whole round, so that each witness
    /// sees this log's sizes only grow.
    #[cfg(feature = "signing")]
    pub(crate) witnessed: Mutex<Option<(u64, Arc<str>)>>,
    /// When automatic checkpoints may ask their witnesses again, and the
    /// wait after the next failure (doubling up to an hour).
    #[cfg(feature = "signing")]
    pub(crate) witness_backoff: Mutex<(Option<Instant>, std::time::Duration)>,
    _lock: Option<Box<dyn DirLock>>,
}

impl Engine {
    /// The writer, to change the log; fails for a read-only or poisoned log.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Writer>> {
        self.shared.check_writable()?;
        match &self.mode {
            Mode::Write(w) => Ok(w.lock()),
            Mode::Read(_) => Err(Error::ReadOnly {
                path: self.shared.dir.clone(),
            }),
        }
    }

    /// Under `Durability::Buffered`, writes the records that wait in the
    /// writer's buffer, so that readers see every acknowledged record.
    pub(crate) fn write_out(&self) -> Result<()> {
        // A poisoned log reads as far as it was written.
        if self.shared.check_poison().is_err() {
            return Ok(());
        }
        if let Mode::Write(w) = &self.mode {
            if self.shared.options.durability == Durability::Buffered {
                let mut w = w.lock();
                if w.has_unwritten() {
                    // A failed write poisons the log (the records it held
                    // were acknowledged and are lost, as after a failed
                    // fdatasync); the read goes on over what was written.
                    let _ = w.flush(&self.shared);
                }
            }
        }
        Ok(())
    }

    /// `Log::append_batch`, on owned payloads (also the control channel's).
    pub(crate) fn append_batch(&self, payloads: Vec<Vec<u8>>) -> Result<Vec<Receipt>> {
        match self.user_request(payloads)? {
            Some(req) => self.commit(req),
            None => Ok(Vec::new()),
        }
    }

    /// User payloads as a request, each within `Options::payload_bytes_max`
    /// (`None` for none).
    fn user_request(&self, payloads: Vec<Vec<u8>>) -> Result<Option<Request>> {
        let max = self.shared.options.payload_bytes_max;
        if let Some(p) = payloads.iter().find(|p| p.len() > max) {
            return Err(Error::PayloadTooLarge { len: p.len(), max });
        }
        Ok((!payloads.is_empty()).then(|| Request::new(RecordKind::User, payloads)))
    }

    /// `Log::seal`: rolls, seals every closed segment, ships if set up.
    pub(crate) fn seal_now(&self) -> Result<usize> {
        self.writer()?.roll_now(&self.shared)?;
        let n = seal::seal_closed_segments(&self.shared)?;
        self.ship_due();
        Ok(n)
    }

    /// `Log::set_legal_hold`: the hold file, then the record.
    pub(crate) fn set_legal_hold(&self, reason: &str) -> Result<()> {
        let shared = &self.shared;
        shared.check_writable()?;
        let _g = shared.retention_lock.lock();
        anchor::write_hold(&*shared.options.storage, &shared.dir, reason)?;
        let event = SystemEvent::LegalHoldSet {
            reason: reason.to_string(),
        };
        self.writer()?.write_system(shared, &[event])
    }

    /// `Log::clear_legal_hold`: the record, then the hold file.
    pub(crate) fn clear_legal_hold(&self) -> Result<()> {
        let shared = &self.shared;
        let _g = shared.retention_lock.lock();
        self.writer()?
            .write_system(shared, &[SystemEvent::LegalHoldCleared])?;
        anchor::remove_hold(&*shared.options.storage, &shared.dir)
    }

    /// `Log::record_access`: an accessed record; returns its seq.
    pub(crate) fn record_access(&self, who: &str, what: &str, why: &str) -> Result<u64> {
        let shared = &self.shared;
        let mut writer = self.writer()?;
        writer.write_system(
            shared,
            &[SystemEvent::Accessed {
                who: who.into(),
                what: what.into(),
                why: why.into(),
            }],
        )?;
        // Read under the writer's lock: an append right after would move
        // the head.
        let seq = shared.visible.read().head.seq;
        drop(writer);
        Ok(seq)
    }

    /// Commits `req` with whatever else is queued (group commit).
    pub(crate) fn commit(&self, req: Request) -> Result<Vec<Receipt>> {
        self.shared.check_writable()?;
        self.wait_for_the_copy(true)?;
        self.commit_now(req)
    }

    /// `commit` without waiting for the copy (`Shipping::max_lag` is still
    /// checked): for the control channel, which runs on a pool worker the
    /// shipper may need.
    pub(crate) fn append_batch_now(&self, payloads: Vec<Vec<u8>>) -> Result<Vec<Receipt>> {
        let Some(req) = self.user_request(payloads)? else {
            return Ok(Vec::new());
        };
        self.wait_for_the_copy(false)?;
        self.commit_now(req)
    }

    fn commit_now(&self, req: Request) -> Result<Vec<Receipt>> {
        self.shared.check_writable()?;
        let Mode::Write(writer) = &self.mode else {
            return Err(Error::ReadOnly {
                path: self.shared.dir.clone(),
            });
        };
        let weight = req.bytes();
        let receipts = self.barrier.enter(
            req,
            weight,
            self.shared.options.batch_bytes_max,
            &mut |group| writer.lock().write_group(&self.shared, group),
        )?;
        self.written();
        Ok(receipts)
    }

    /// `Shipping::max_lag`: while the copy is further behind than allowed,
    /// wakes the shipper and waits, at most the lag again, then fails.
    fn wait_for_the_copy(&self, wait: bool) -> Result<()> {
        let Some(max) = self
            .shared
            .options
            .shipping
            .as_ref()
            .and_then(|s| s.max_lag)
        else {
            return Ok(());
        };
        let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        let give_up = Instant::now() + max;
        loop {
            let now = (self.shared.options.clock)();
            let head = self.shared.visible.read().head.seq;
            // Only the three fields this needs (an append reads them each
            // time): no copy of the status's error text.
            let (runs, through, unshipped_since) = {
                let st = self.ship_status.lock();
                (st.runs, st.shipped_through, st.unshipped_since)
            };
            // A shipper that cannot say how far its copy reaches is not
            // held to a lag it cannot show.
            if runs > 0 && through.is_none() {
                return Ok(());
            }
            let seq = through.map_or(0, |(seq, _)| seq);
            // Before the first run, the records waited since the open.
            let opened = now.saturating_sub(
                u64::try_from(self.opened.0.elapsed().as_nanos()).unwrap_or(u64::MAX),
            );
            let since = unshipped_since.unwrap_or(opened);
            let behind = now.saturating_sub(since);
            if head <= seq || behind <= max_ns {
                return Ok(());
            }
            if !wait || Instant::now() >= give_up {
                return Err(Error::CopyBehind {
                    behind_ms: behind / 1_000_000,
                    shipped_seq: seq,
                });
            }
            self.ship_due();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// After a group: what it leaves to background work is scheduled (the
    /// Batched fdatasync or Buffered write `max_delay` on), and under
    /// `Sealing::Inline` what it closed is sealed now.
    pub(crate) fn written(&self) {
        if let Some((job, delay)) = self.jobs.get().and_then(|j| j.flush.as_ref()) {
            job.wake_after(*delay);
        }
        self.seal_inline_if_due();
    }

    /// Under `Sealing::Inline`, seals what rolling closed. A failure is kept
    /// for `Log::seal_error` (the appends that rolled are already durable).
    pub(crate) fn seal_inline_if_due(&self) {
        let shared = &self.shared;
        if shared.options.sealing == Sealing::Inline && shared.take_sealing_due() {
            shared.record_seal_outcome(seal::seal_closed_segments(shared));
            self.ship_due();
        }
    }

    /// A segment was sealed: the shipper, if any, has work.
    pub(crate) fn ship_due(&self) {
        if self.shared.options.shipping.is_some() {
            self.ship_signal.lock().due = true;
            if let Some(job) = self.jobs.get().and_then(|j| j.ship.as_ref()) {
                job.wake();
            }
        }
    }

    /// The retention policy the log's records state now.
    pub(crate) fn recorded_policy(&self) -> Option<RetentionRule> {
        match &self.mode {
            Mode::Write(w) => w.lock().state().policy,
            Mode::Read(_) => self.policy_at_open,
        }
    }

    /// One shipping run: copies what is not shipped yet, and keeps the
    /// outcome for `Log::ship_status`.
    pub(crate) fn ship_once(&self, shipping: &Shipping) -> Result<usize> {
        let _one = self.ship_lock.lock();
        // The longer of the policy the records state and the one this
        // writer was opened with: the records state a policy only from the
        // first drop under it, and a copy must not be locked for less than
        // either says the log keeps its records.
        let policy = longer_policy(
            self.recorded_policy(),
            self.shared.options.retention.as_ref().map(|r| r.rule()),
        );
        // A close does not wait for a whole backlog: the run stops between
        // objects (what it shipped is recorded; the next open goes on).
        let stop = || self.ship_signal.lock().stop;
        let outcome = shipping
            .shipper
            .ship(&self.shared.dir, policy.as_ref(), &stop);
        let through = match &outcome {
            Ok(_) => shipping
                .shipper
                .shipped_through(&self.shared.dir)
                .ok()
                .flatten(),
            Err(_) => None,
        };
        // When the records the copy lacks began to wait.
        let unshipped_since = through.map(|(seq, _)| {
            let now = (self.shared.options.clock)();
            match crate::read::get(&self.shared, seq + 1) {
                Ok(r) => r.timestamp(),
                Err(_) => now,
            }
        });
        let mut status = self.ship_status.lock();
        match &outcome {
            Ok(n) => {
                if through.is_some() {
                    status.shipped_through = through;
                    status.unshipped_since = unshipped_since;
                }
                status.objects_shipped += *n as u64;
                status.runs += 1;
                status.failures_in_a_row = 0;
                status.last_error = None;
            }
            Err(e) => {
                status.failures_in_a_row += 1;
                status.last_error = Some(e.to_string());
            }
        }
        outcome
    }

    /// Whether a legal hold stops retention now. The chain says whether a
    /// hold is set; the hold file must agree, or someone changed one of them
    /// behind the engine's back and retention refuses to run. Also refuses
    /// a `now_ns` further ahead of the log's last record than the policy
    /// allows: a clock set forward must not age segments early.
    pub(crate) fn held(&self, now_ns: u64, policy: &crate::options::Retention) -> Result<bool> {
        let shared = &self.shared;
        let file = anchor::read_hold(&*shared.options.storage, &shared.dir)?;
        let chain = match &self.mode {
            Mode::Write(w) => w.lock().state().hold.clone(),
            // A reader's plan has only the file to go by.
            Mode::Read(_) => file.clone(),
        };
        if file != chain {
            return Err(anchor::hold_mismatch(&shared.dir, &chain, &file));
        }
        // The log's own time: its last record before this run opened it,
        // advanced by the time that has passed since by the monotonic
        // clock, which setting the wall clock does not move.
        let (opened, head_ns) = self.opened;
        let elapsed = u64::try_from(opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last_ns = head_ns.saturating_add(elapsed);
        let bound = policy.rule().clock_ahead_max_ns;
        if now_ns.saturating_sub(last_ns) > bound {
            return Err(Error::ClockAhead {
                now_ns,
                last_ns,
                bound_ns: bound,
            });
        }
        Ok(chain.is_some())
    }

    /// Drops the sealed segments the retention policy lets go (see
    /// `Log::apply_retention`); with `dry_run`, only says which.
    pub(crate) fn apply_retention(&self, now_ns: u64, dry_run: bool) -> Result<RetentionReport> {
        let shared = &self.shared;
        if !dry_run {
            shared.check_writable()?;
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
        retention::check_not_weaker(self.recorded_policy(), policy.rule())?;
        if self.held(now_ns, policy)? {
            report.held = true;
            return Ok(report);
        }
        let mut drop = retention::plan(&segs, policy, now_ns)?;
        // Only segments with a confirmed copy off the host, oldest first:
        // one never shipped is never dropped. With shipping set up, its
        // shipper says which; without (a `wormctl retention`, a writer
        // opened without it), a log that has shipped before still waits
        // for the copies its wormlog.ship records, to any bucket.
        let shipped = match &shared.options.shipping {
            Some(s) if s.retention_waits => Some(s.shipper.shipped_files(&shared.dir)?),
            Some(_) => None,
            None => recorded_shipped_files(shared)?,
        };
        if let Some(shipped) = shipped {
            let confirmed = drop
                .iter()
                .take_while(|s| {
                    let name = crate::format::names::sealed_file_name(s.number);
                    shipped.contains(&name)
                })
                .count();
            report.awaiting_ship = drop[confirmed..].iter().map(|s| s.number).collect();
            drop.truncate(confirmed);
        }
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
        if !dry_run {
            // The tree must hold, durably, every record about to go: it is
            // computed from the records, and these will be gone.
            match merkle::catch_up(shared) {
                Ok(_) | Err(Error::TreeUnavailable { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if dry_run {
            return Ok(report);
        }
        // Record first, in the anchor file and then in the chain; delete last.
        let key_hint = crate::fss::load(storage, &shared.dir)?.map(|k| k.key_id);
        let hash = {
            let mut anchor = shared.anchor.lock();
            let prev = anchor.entries.last().and_then(|(e, _)| e.ext?.sealing);
            let ext = retention::ext_for(shared, &drop, keep, prev, key_hint)?;
            let prev_hash = anchor.last_hash(&shared.log_id);
            let entry = retention::entry_for(&drop, keep, now_ns, prev_hash, Some(ext))?;
            anchor::append_anchor(storage, &shared.dir, &shared.log_id, &mut anchor, entry)?
        };
        let event = SystemEvent::RetentionApplied {
            from_segment: drop[0].number,
            to_segment: last.number,
            first_seq: drop[0].header.first_seq,
            last_seq: keep.header.first_seq - 1,
            anchor_entry_hash: hash,
        };
        // The policy that governed the drop goes into the chain before it,
        // if it is not already the one in force there.
        let mut writer = self.writer()?;
        let rule = Some(policy.rule());
        let mut events = Vec::with_capacity(2);
        if writer.state().policy != rule {
            events.push(SystemEvent::RetentionPolicySet { policy: rule });
        }
        events.push(event);
        writer.write_system(shared, &events)?;
        std::mem::drop(writer);
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

/// The sealed files a `wormlog.ship` in the log's directory records as
/// shipped (to any bucket), or `None` when the log never shipped. Lines
/// are `key version sha256 bytes target` (format-spec.md §15); the file
/// name is the key's last part. A torn last line is left out.
pub(crate) fn recorded_shipped_files(shared: &Shared) -> Result<Option<Vec<String>>> {
    let path = shared.dir.join(crate::format::names::SHIP_STATE_FILE);
    let file = match shared.options.storage.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let len = file.len().map_err(|e| Error::io("read", &path, e))?;
    // Read a piece at a time: with Merkle tiles shipped the record has a
    // line per 256 records, and a hostile file must not make us hold it
    // whole. A line is a few hundred bytes; one longer than a piece is
    // not a record's.
    const PIECE: usize = 1 << 20;
    let mut names = Vec::new();
    let mut buf = Vec::with_capacity(PIECE);
    let mut at = 0u64;
    while at < len {
        let kept = buf.len();
        let want = PIECE.min(usize::try_from(len - at).unwrap_or(PIECE));
        buf.resize(kept + want, 0);
        let n = file
            .read_full_at(&mut buf[kept..], at)
            .map_err(|e| Error::io("read", &path, e))?;
        buf.truncate(kept + n);
        if n == 0 {
            break;
        }
        at += n as u64;
        // Whole lines only; a torn last line waits (and at the end is
        // left out).
        let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in buf[..whole].split(|&b| b == b'\n') {
            let key = line.split(|&b| b == b' ').next().unwrap_or(&[]);
            let name = key.rsplit(|&b| b == b'/').next().unwrap_or(&[]);
            let name = String::from_utf8_lossy(name);
            if crate::format::names::parse_sealed_file_name(&name).is_some() {
                names.push(name.into_owned());
            }
        }
        buf.drain(..whole);
        if buf.len() >= PIECE {
            return Err(Error::io(
                "read",
                &path,
                std::io::Error::other(format!("a line of over {PIECE} bytes at byte {at}")),
            ));
        }
    }
    Ok(Some(names))
}

pub(crate) fn longer_policy(
    a: Option<RetentionRule>,
    b: Option<RetentionRule>,
) -> Option<RetentionRule> {
    let period = |p: &RetentionRule| {
        if p.min_age_ns > 0 {
            p.min_age_ns
        } else {
            p.max_age_ns
        }
    };
    match (a, b) {
        (Some(a), Some(b)) => Some(if period(&b) > period(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

impl Engine {
    /// The head as a checkpoint, with the retention state it commits to;
    /// with `verified`, the head that verification checked and the tree
    /// root it computed from the records (never the tree's files read
    /// again after the check: format-spec.md 16.4 (c)). What it names is
    /// made durable first, so that no crash can leave a log shorter than a
    /// checkpoint its host signed: a writer syncs, a reader fdatasyncs the
    /// active segment it read.
    pub(crate) fn checkpoint(&self, verified: Option<&VerifyReport>) -> Result<Checkpoint> {
        let shared = &self.shared;
        self.make_durable()?;
        let h = match verified {
            Some(r) => r.head,
            None => shared.visible.read().head,
        };
        // A log whose first records retention dropped before it had a tree
        // has none: its checkpoints keep the older shape.
        // Written to disk first: a checkpoint never names a tree the disk
        // cannot prove (for a reader, the records on disk prove it).
        // The segments' lock is let go before the writer's is taken (the
        // writer takes them in the other order: Shared's lock order).
        let format_3 = shared
            .segments
            .read()
            .last()
            .is_some_and(|s| s.header.version >= 3);
        let tree_root = match verified {
            Some(r) => r.tree_root,
            None => match merkle::head_at(shared, h.seq, true) {
                Ok(t) => Some(t.root),
                Err(Error::TreeUnavailable { .. }) => None,
                Err(e) => return Err(e),
            },
        };
        Ok(Checkpoint {
            log_id: shared.log_id,
            seq: h.seq,
            hash: h.hash,
            timestamp_ns: h.timestamp_ns,
            retention: Some(RetentionPoint {
                first_seq: verified.map_or_else(|| shared.first_seq(), |r| r.first_seq),
                anchor_head: match verified {
                    Some(r) => r.anchor_head,
                    None => shared.anchor.lock().last_hash(&shared.log_id),
                },
                // Stated for a format-3 log only (its active segment is of
                // format 3): the field also says every later drop carries
                // the anchor extension, which only format-3 writers make.
                min_age_ns: format_3.then(|| self.recorded_policy().map_or(0, |p| p.min_age_ns)),
            }),
            tree_root,
        })
    }

    /// Makes everything a checkpoint names durable: the records (a
    /// writer's sync; for a reader beside a live writer, or of a log a
    /// writer left, an fdatasync of the active segment), and the anchor
    /// file and the directory's entries (a retention run may have written
    /// an entry not yet synced: the thirteenth red team cut it away after
    /// a checkpoint named it).
    fn make_durable(&self) -> Result<()> {
        let shared = &self.shared;
        let storage = &*shared.options.storage;
        match &self.mode {
            Mode::Write(_) => self.writer()?.sync(shared)?,
            Mode::Read(_) => {
                let active = shared.segments.read().last().cloned();
                if let Some(seg) = active.filter(|s| s.sealed.is_none()) {
                    storage
                        .sync_file(&seg.path)
                        .map_err(|e| Error::io("fdatasync", &seg.path, e))?;
                }
            }
        }
        let anchor = shared.dir.join(crate::format::names::ANCHOR_FILE);
        match storage.sync_file(&anchor) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.map_err(|e| Error::io("fdatasync", &anchor, e))?,
        }
        storage
            .sync_dir(&shared.dir)
            .map_err(|e| Error::io("fsync directory", &shared.dir, e))
    }

    /// Signs the head and hands the note to the sink, where automatic
    /// checkpoints are set up and one is due (or `now`, on close) and the
    /// head moved since the last one. A failure is kept for
    /// `Log::checkpoint_error`; the log goes on.
    pub(crate) fn auto_checkpoint(&self, now: bool) {
        let Some(auto) = &self.shared.options.auto_checkpoints else {
            return;
        };
        let mut last = self.last_auto_checkpoint.lock();
        let seq = self.shared.visible.read().head.seq;
        let due = now || last.0.elapsed() >= auto.interval;
        if !due || seq == last.1 {
            return;
        }
        let cp = match self.checkpoint(None) {
            Ok(cp) => cp,
            Err(e) => {
                *self.checkpoint_error.lock() = Some(e.to_string());
                return;
            }
        };
        let note = cp.sign(&auto.key);
        #[cfg(feature = "signing")]
        let note = self.witness_auto(&cp, note, now);
        match auto.sink.put(&note) {
            Ok(()) => *last = (Instant::now(), cp.seq),
            Err(e) => *self.checkpoint_error.lock() = Some(e.to_string()),
        }
    }

    /// A witness conflict goes into the chain (format 3's witness-conflict
    /// record), so that whoever reads the log later sees it, not only the
    /// application that got the error. Other errors are not recorded.
    #[cfg(feature = "signing")]
    pub(crate) fn record_conflict(&self, e: &Error) {
        let Error::WitnessConflict { witness, detail } = e else {
            return;
        };
        let event = SystemEvent::WitnessConflict {
            witness: witness.clone(),
            detail: detail.clone(),
        };
        if let Ok(mut w) = self.writer() {
            if w.segment_version() >= event.kind().since_version() {
                // A failure poisons the log and is met by the next append.
                let _ = w.write_system(&self.shared, &[event]);
            }
        }
    }

    /// An automatic checkpoint's note cosigned by `Options::checkpoint_witnesses`,
    /// or the note as it is while they back off or refuse (the reason kept
    /// for `Log::checkpoint_error`).
    #[cfg(feature = "signing")]
    fn witness_auto(&self, cp: &Checkpoint, note: String, closing: bool) -> String {
        let witnesses = &self.shared.options.witnesses;
        let Some(auto) = &self.shared.options.auto_checkpoints else {
            return note;
        };
        if witnesses.is_empty() {
            return note;
        }
        let mut backoff = self.witness_backoff.lock();
        if backoff.0.is_some_and(|at| Instant::now() < at) {
            return note;
        }
        let shared = &self.shared;
        let consistency =
            |old: u64, new: u64| Ok(merkle::prove_consistency(shared, old, new)?.hashes);
        let root_at = |n: u64| merkle::root_at(shared, n);
        let key = auto.key.public();
        let log = crate::witness::LogView {
            key: &key,
            consistency: &consistency,
            root_at: &root_at,
        };
        match crate::witness::cosign_note(&note, cp.seq, witnesses, &log) {
            Ok(cosigned) => {
                *backoff = (None, auto.interval);
                *self.checkpoint_error.lock() = None;
                cosigned
            }
            Err(e) => {
                // Not after a close's last record: the log's end is sealed.
                if !closing {
                    self.record_conflict(&e);
                }
                // A conflict is not retried sooner: it will not go away.
                let wait = backoff.1.max(auto.interval);
                *backoff = (
                    Some(Instant::now() + wait),
                    (wait * 2).min(std::time::Duration::from_secs(3600)),
                );
                *self.checkpoint_error.lock() = Some(e.to_string());
                note
            }
        }
    }

    pub(crate) fn new(
        shared: Shared,
        mode: Mode,
        lock: Option<Box<dyn DirLock>>,
        head_ns: u64,
    ) -> Engine {
        let sealing_on = match &mode {
            Mode::Write(w) => w.lock().sealing_key().is_some(),
            Mode::Read(_) => false,
        };
        Engine {
            last_auto_checkpoint: Mutex::new((Instant::now(), 0)),
            checkpoint_error: Mutex::new(None),
            sealing_on: AtomicBool::new(sealing_on),
            opened: (Instant::now(), head_ns),
            shared,
            barrier: Barrier::new(),
            mode,
            jobs: std::sync::OnceLock::new(),
            policy_at_open: None,
            ship_signal: Mutex::new(ShipSignal {
                due: true,
                ..ShipSignal::default()
            }),
            ship_lock: Mutex::new(()),
            ship_status: Mutex::new(ShipStatus::default()),
            #[cfg(feature = "signing")]
            proved: Mutex::new(None),
            #[cfg(feature = "signing")]
            witnessed: Mutex::new(None),
            #[cfg(feature = "signing")]
            witness_backoff: Mutex::new((None, std::time::Duration::ZERO)),
            _lock: lock,
        }
    }
}

/// A log's work on the shared background pool (`background`): each job
/// holds the log weakly, so a log dropped without a close is not kept
/// alive by its jobs, and the pool's timer drops the jobs of a log gone.
pub(crate) struct Jobs {
    /// Under Batched, the fdatasync; under Buffered, the write of the
    /// buffer: woken `delay` after a group leaves work for it.
    pub(crate) flush: Option<(Arc<Job>, std::time::Duration)>,
    /// Under `Sealing::Background`: seals what rolling closed (woken by
    /// `Shared::segment_closed`).
    pub(crate) seal: Option<Arc<Job>>,
    /// Feeds the tree from memory when many records wait for it (woken by
    /// `Shared::pending_leaves`).
    pub(crate) tree: Arc<Job>,
    /// The control socket's poll (control.rs), where it is served.
    pub(crate) control: Option<Arc<Job>>,
    /// Every second: tags the epochs that ended, makes the automatic
    /// checkpoints that are due, and has the tree follow the records.
    pub(crate) epochs: Arc<Job>,
    /// With `Options::shipping`: a shipping run when one is due.
    pub(crate) ship: Option<Arc<Job>>,
    /// Feature `async`: leads the groups of async appends.
    pub(crate) commit: Option<Arc<Job>>,
}

impl Jobs {
    /// Stops every job but the committer (which the barrier's close ends).
    pub(crate) fn stop_all_but_commit(&self) {
        let jobs = [self.flush.as_ref().map(|(j, _)| j), self.seal.as_ref()];
        for job in jobs.into_iter().flatten() {
            job.stop();
        }
        self.epochs.stop();
        self.tree.stop();
        if let Some(control) = &self.control {
            control.stop();
        }
        if let Some(ship) = &self.ship {
            ship.stop();
        }
    }
}

/// The shipper's state between its runs.
#[derive(Debug, Default)]
pub(crate) struct ShipSignal {
    /// A seal (or the open) made work for it.
    pub(crate) due: bool,
    /// The log is closing: no new run, and a run under way stops between
    /// objects.
    pub(crate) stop: bool,
    /// When the last run ended.
    pub(crate) last: Option<Instant>,
    /// Zero, or how long to wait after the last run failed.
    pub(crate) backoff: std::time::Duration,
}
