//! The segment writer: encodes a group's records into frames, appends them
//! with one write, syncs as the durability mode says, keeps the active
//! segment's sparse index and digest, rolls to a new segment when one is
//! full, and publishes what it committed to readers. Group commit (who
//! writes when) is barrier.rs; the writer is run by the group's leader.
//!
//! Any write or sync failure poisons the log: after a failed fdatasync the
//! kernel may have dropped the dirty pages, so neither a retry nor a later
//! success would prove the data durable.

use crate::error::{Error, Result};
use crate::format::{
    chain_hash, encode_frame, epoch_of, epoch_tag_for, frame_padded_len, ChainPos, FssKeyFile,
    RecordKind, SystemEvent, SEGMENT_HEADER_LEN,
};
use crate::fss;
use crate::options::Durability;
use crate::segment::{Segment, SegmentEnd, INDEX_INTERVAL};
use crate::shared::Shared;
use crate::state::{LogState, Receipt};
use crate::storage::WriteFile;
use crate::tree::LeafInput;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Under `Durability::Buffered`, the buffer is written once it holds this
/// much (and by the flusher thread, and before reads, syncs and rolls).
pub(crate) const BUFFERED_WRITE_BYTES: usize = 64 << 10;

/// Under `Options::preallocate`, zeros are written this far ahead of the
/// active segment's end (never past `segment_bytes_max`): the fdatasync
/// after that write commits the new size once, and the commits of the next
/// 4 MiB overwrite zeros, with no size to commit.
const PREALLOCATE_BYTES: u64 = 4 << 20;
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One caller's append: its records commit together, with contiguous seqs.
pub(crate) struct Request {
    kind: RecordKind,
    payloads: Vec<Vec<u8>>,
    /// Bytes its frames take in a segment: what a group's size is counted
    /// in (by the barrier and by the roll check), worked out once.
    bytes: usize,
}

impl Request {
    pub fn new(kind: RecordKind, payloads: Vec<Vec<u8>>) -> Request {
        let bytes = payloads.iter().map(|p| frame_padded_len(p.len())).sum();
        Request {
            kind,
            payloads,
            bytes,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The state only the group's leader touches: the active file and the
/// chain's end.
pub(crate) struct Writer {
    file: Box<dyn WriteFile>,
    /// Where the active segment ends, as written (not necessarily synced).
    end: SegmentEnd,
    /// Bytes of the active segment covered by the last successful fdatasync.
    synced_len: u64,
    /// The offset from which the active segment's next index entry is due,
    /// so the index lock is taken once per 64 KiB, not once per record.
    index_due_at: u64,
    /// Frames encoded and not yet written: a group's, or under
    /// `Durability::Buffered` several groups' (acknowledged, not yet
    /// visible to readers, written before any read).
    buf: Vec<u8>,
    /// Records encoded into `buf`.
    buf_records: u64,
    /// The hold and retention policy in force, as the chain says: stated
    /// again at the start of every segment.
    state: LogState,
    /// When the last group's time was read, by the monotonic clock and by
    /// the wall clock: a leap of the wall clock is measured against it.
    last_clock: Option<(Instant, u64)>,
    /// Forward-secure sealing: the current epoch's key, where it is set up.
    fss: Option<FssKeyFile>,
    /// `Options::preallocate`: the active segment is written in place
    /// (positional writes), and while `preallocating`, into zeros written
    /// ahead through `zeroed_to` (the file's length).
    in_place: bool,
    preallocating: bool,
    zeroed_to: u64,
    /// The leaf inputs of the records encoded since the last publish, for
    /// the tree (`Shared::pending_leaves`).
    leaves: Vec<LeafInput>,
}

impl Writer {
    /// A writer appending to `file` at `end` (all of it durable), where the
    /// chain's state is `state`.
    pub fn new(file: Box<dyn WriteFile>, end: SegmentEnd, state: LogState) -> Self {
        let index_due_at = end
            .segment
            .index
            .read()
            .entries
            .last()
            .map_or(0, |e| e.offset + INDEX_INTERVAL);
        Writer {
            file,
            synced_len: end.len,
            end,
            index_due_at,
            buf: Vec::new(),
            buf_records: 0,
            state,
            last_clock: None,
            fss: None,
            in_place: false,
            preallocating: false,
            zeroed_to: 0,
            leaves: Vec::new(),
        }
    }

    /// Writes the active segment in place from now on through `file`
    /// (opened with `Storage::open_write`), into zeros written ahead.
    pub fn write_in_place(&mut self, file: Box<dyn WriteFile>, shared: &Shared) -> Result<()> {
        let len = file
            .len()
            .map_err(|e| Error::io("stat", &self.end.segment.path, e))?;
        debug_assert!(len >= self.end.len, "recovery cut what follows the end");
        self.file = file;
        self.in_place = true;
        self.preallocating = shared.options.preallocate;
        self.zeroed_to = len;
        Ok(())
    }

    /// Cuts the zeros written ahead of the active segment's end: before its
    /// seal record and before the log's close record, so that no closed
    /// segment and no cleanly closed log keeps a zero tail. Durable with
    /// the next fdatasync, which writing that record does.
    pub fn trim_preallocation(&mut self, shared: &Shared) -> Result<()> {
        self.flush(shared)?;
        self.preallocating = false;
        if self.in_place && self.zeroed_to > self.end.len {
            let path = &self.end.segment.path;
            self.file
                .truncate(self.end.len)
                .map_err(|e| shared.poison(Error::io("truncate", path, e)))?;
            self.zeroed_to = self.end.len;
        }
        Ok(())
    }

    /// Writes zeros ahead so that `[end.len, upto)` lies in zeroed space.
    fn zero_ahead(&mut self, shared: &Shared, upto: u64) -> std::io::Result<()> {
        if !self.preallocating || upto <= self.zeroed_to {
            return Ok(());
        }
        let target =
            upto.max((self.zeroed_to + PREALLOCATE_BYTES).min(shared.options.segment_bytes_max));
        let mut at = self.zeroed_to.max(upto);
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            self.file.write_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        self.zeroed_to = target;
        Ok(())
    }

    /// Seals the log's epochs with `key` from now on.
    pub fn set_sealing_key(&mut self, key: FssKeyFile) {
        self.fss = Some(key);
    }

    /// The current epoch's sealing key, where sealing is set up.
    pub fn sealing_key(&self) -> Option<&FssKeyFile> {
        self.fss.as_ref()
    }

    /// Tags the epochs that have ended by now (the idle timer's work).
    pub fn tag_ended_epochs_now(&mut self, shared: &Shared) -> Result<()> {
        shared.check_poison()?;
        let ts = (shared.options.clock)().max(self.end.at.timestamp_ns);
        self.tag_ended_epochs(shared, ts)
    }

    /// A sealed close: tags every epoch through the current one, so that
    /// the log's end is sealed and no tags are owed while it is closed.
    pub fn seal_close(&mut self, shared: &Shared) -> Result<()> {
        // A close earlier in this epoch sealed it and moved the key on: a
        // tag from it now, or a later one over these records, would seal
        // records committed two epochs before its first, which a verifier
        // refuses (a later key than theirs; one epoch's lag is a sealed
        // close's own). These records stay unsealed until the next epoch's
        // tag seals them.
        self.seal_through_now(shared, false)
    }

    /// A rotation's final tag of the old key: one tag over everything so
    /// far (the new key's sealing-started record included), through the
    /// current epoch, or through the key's own epoch where a sealed close
    /// earlier in this epoch already moved it on (one epoch's lag, which a
    /// verifier allows). Always written: the verifier requires it.
    pub fn seal_for_rotation(&mut self, shared: &Shared) -> Result<()> {
        self.seal_through_now(shared, true)
    }

    /// Tags through the current epoch; where the key is already past it,
    /// through the key's own epoch if `always`, else not at all.
    fn seal_through_now(&mut self, shared: &Shared, always: bool) -> Result<()> {
        shared.check_poison()?;
        let Some(k) = &self.fss else {
            return Ok(());
        };
        let ts = (shared.options.clock)().max(self.end.at.timestamp_ns);
        let now = epoch_of(k.start_ns, k.interval_ns, ts);
        if k.epoch > now && !always {
            return Ok(());
        }
        let last = now.max(k.epoch);
        self.tag_through(shared, last, ts)
    }

    /// Where epochs have ended since the key's epoch, tags them (one tag
    /// record, its own group, synced) and evolves the key past them. Work
    /// per epoch, not per record: one comparison per group otherwise.
    fn tag_ended_epochs(&mut self, shared: &Shared, ts: u64) -> Result<()> {
        let Some(k) = &self.fss else {
            return Ok(());
        };
        let now = epoch_of(k.start_ns, k.interval_ns, ts);
        if now <= k.epoch || self.segment_version() < 2 {
            return Ok(());
        }
        self.tag_through(shared, now - 1, ts)
    }

    /// Writes the tag of epochs `key.epoch..=last` and only then (the tag
    /// durable) replaces the key with that of epoch `last + 1`: a crash in
    /// between leaves the old key and a tag that recovery sees.
    fn tag_through(&mut self, shared: &Shared, last: u64, ts: u64) -> Result<()> {
        let Some(k) = self.fss.clone() else {
            return Ok(());
        };
        debug_assert!(last >= k.epoch);
        let tag = epoch_tag_for(
            self.segment_version(),
            &k.key,
            k.epoch,
            last,
            self.end.at.seq,
            &self.end.at.hash,
            &self.state.tag_facts(self.end.at.timestamp_ns),
        );
        let event = SystemEvent::EpochTag {
            first_epoch: k.epoch,
            epoch: last,
            tag,
        };
        self.encode_event(&event, ts);
        self.write_buffer(shared, true)?;
        let mut next = k;
        while next.epoch <= last {
            next = next.evolved();
        }
        fss::store(&*shared.options.storage, &shared.dir, &next).map_err(|e| shared.poison(e))?;
        self.fss = Some(next);
        Ok(())
    }

    /// The hold and retention policy in force, as the chain says.
    pub fn state(&self) -> &LogState {
        &self.state
    }

    /// The format version of the segment appends go to.
    pub fn segment_version(&self) -> u16 {
        self.end.segment.header.version
    }

    /// Writes the records of `group` (one request after another), rolling
    /// first if they would overfill the segment, syncs as the durability
    /// mode says, and publishes them to readers.
    pub fn write_group(
        &mut self,
        shared: &Shared,
        group: &[&Request],
    ) -> Result<Vec<Vec<Receipt>>> {
        shared.check_poison()?;
        let (ts, jump) = self.read_clock(shared);
        self.tag_ended_epochs(shared, ts)?;
        let bytes: u64 = group.iter().map(|r| r.bytes() as u64).sum();
        let len = self.end.len + self.buf.len() as u64;
        if len > SEGMENT_HEADER_LEN as u64 && len + bytes > shared.options.segment_bytes_max {
            self.roll(shared, ts)?;
        }
        self.encode_jump(jump, ts);
        let receipts = group
            .iter()
            .map(|r| {
                r.payloads
                    .iter()
                    .map(|p| self.encode(r.kind, p, ts))
                    .collect()
            })
            .collect();
        match shared.options.durability {
            Durability::Sync => self.write_buffer(shared, true)?,
            Durability::Batched { .. } => self.write_buffer(shared, false)?,
            // Small groups gather in the buffer: one write per 64 KiB, not
            // one per record (a write syscall costs more than a record's
            // encoding and hashing together).
            Durability::Buffered if self.buf.len() >= BUFFERED_WRITE_BYTES => {
                self.write_buffer(shared, false)?
            }
            Durability::Buffered => {}
        }
        Ok(receipts)
    }

    /// Writes engine records as one group and makes them durable.
    pub fn write_system(&mut self, shared: &Shared, events: &[SystemEvent]) -> Result<()> {
        shared.check_poison()?;
        let (ts, jump) = self.read_clock(shared);
        self.tag_ended_epochs(shared, ts)?;
        self.encode_jump(jump, ts);
        for e in events {
            debug_assert!(e.kind().since_version() <= self.segment_version());
            self.encode_event(e, ts);
        }
        self.write_buffer(shared, true)
    }

    /// Writes what the buffer holds (under `Durability::Buffered`, records
    /// acknowledged but not yet written to the OS), and publishes it.
    pub fn flush(&mut self, shared: &Shared) -> Result<()> {
        shared.check_poison()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.write_buffer(shared, false)
    }

    /// The head after writing out the buffer, for a caller that already
    /// holds the writer's guard (`Log::head` would lock it again: the
    /// mutex is not re-entrant). A failed write poisons the log; the head
    /// is then what was written.
    pub fn head_flushed(&mut self, shared: &Shared) -> crate::state::Head {
        if self.has_unwritten() {
            let _ = self.flush(shared);
        }
        shared.visible.read().head
    }

    /// Whether acknowledged records wait in the buffer, unwritten.
    pub fn has_unwritten(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Writes what the buffer holds, then fdatasyncs whatever was written
    /// and not yet synced.
    pub fn sync(&mut self, shared: &Shared) -> Result<()> {
        self.flush(shared)?;
        self.sync_file(shared)?;
        self.note_durable(shared);
        Ok(())
    }

    /// fdatasyncs whatever was written and not yet synced.
    fn sync_file(&mut self, shared: &Shared) -> Result<()> {
        if self.synced_len < self.end.len {
            let path = &self.end.segment.path;
            let started = std::time::Instant::now();
            self.file
                .sync_data()
                .map_err(|e| shared.poison(Error::io("fdatasync", path, e)))?;
            self.synced_len = self.end.len;
            shared.counters.synced(started.elapsed());
        }
        Ok(())
    }

    /// Everything written is synced (after a sync, or at open): the head,
    /// and the state its records state, are durable.
    /// Only once published: the tree, which a proof's checkpoint needs,
    /// follows the published head (a durable head ahead of it failed a
    /// proved append at 64 writers: "tree size 6834 asked, the log holds
    /// 6830").
    pub fn note_durable(&self, shared: &Shared) {
        debug_assert_eq!(self.synced_len, self.end.len);
        debug_assert!(
            shared.visible.read().head.seq >= self.end.at.seq,
            "durable before published"
        );
        *shared.durable.lock() = (self.end.at, self.state.policy);
    }

    /// Rolls now (for `Log::seal`), whatever the active segment's size.
    pub fn roll_now(&mut self, shared: &Shared) -> Result<()> {
        shared.check_poison()?;
        let (ts, jump) = self.read_clock(shared);
        self.tag_ended_epochs(shared, ts)?;
        self.roll(shared, ts)?;
        self.encode_jump(jump, ts);
        self.write_buffer(shared, true)
    }

    /// The next group's commit time, and a clock-jumped record when the
    /// clock has leapt forward past `Options::clock_jump_max`. Commit times
    /// never go backward, even when the wall clock does; a leap forward
    /// cannot be undone (later times are clamped to it), so it is recorded
    /// for an auditor to see.
    fn read_clock(&mut self, shared: &Shared) -> (u64, Option<SystemEvent>) {
        let last = self.end.at.timestamp_ns;
        let clock = (shared.options.clock)();
        let ts = clock.max(last);
        debug_assert!(ts >= last);
        let now = Instant::now();
        // Only within one writer's run: across a restart the monotonic clock
        // says nothing, and a log idle for a week did not see its clock jump.
        let jumped = self.last_clock.is_some_and(|(then, wall)| {
            let expected = wall.saturating_add(nanos(now - then));
            clock.saturating_sub(expected) > nanos(shared.options.clock_jump_max)
        });
        self.last_clock = Some((now, clock));
        let jump = jumped.then_some(SystemEvent::ClockJumped {
            last_ns: last,
            clock_ns: clock,
        });
        (ts, jump)
    }

    /// Encodes a clock-jumped record, where the segment's format has one.
    fn encode_jump(&mut self, jump: Option<SystemEvent>, ts: u64) {
        if let Some(e) = jump {
            if e.kind().since_version() <= self.segment_version() {
                self.encode_event(&e, ts);
            }
        }
    }

    /// Encodes an engine record and takes in what it changes of the state.
    fn encode_event(&mut self, e: &SystemEvent, ts: u64) {
        self.encode(e.kind(), &e.encode(), ts);
        self.state.apply(e);
    }

    /// Appends one frame to the group buffer, advancing seq and chain.
    fn encode(&mut self, kind: RecordKind, payload: &[u8], ts: u64) -> Receipt {
        let seq = self.end.at.next_seq();
        let hash = chain_hash(&self.end.at.hash, seq, ts, kind as u8, payload);
        let offset = self.end.len + self.buf.len() as u64;
        encode_frame(
            &mut self.buf,
            seq,
            ts,
            self.synced_len,
            kind,
            payload,
            &hash,
        );
        if offset >= self.index_due_at {
            self.end.segment.index.write().note(seq, ts, offset);
            self.index_due_at = offset + INDEX_INTERVAL;
        }
        debug_assert!(ts >= self.end.at.timestamp_ns, "time never goes backward");
        self.end.at = ChainPos {
            seq,
            hash,
            timestamp_ns: ts,
        };
        self.end.records += 1;
        self.buf_records += 1;
        self.leaves.push(LeafInput {
            seq,
            timestamp_ns: ts,
            kind: kind as u8,
            hash,
        });
        self.end.at
    }

    /// Writes the buffer with one write (empty afterwards), fdatasyncs if
    /// `sync`, and publishes the new end to readers.
    fn write_buffer(&mut self, shared: &Shared, sync: bool) -> Result<()> {
        let written = if self.in_place {
            let upto = self.end.len + self.buf.len() as u64;
            self.zero_ahead(shared, upto).and_then(|()| {
                let at = self.end.len;
                self.zeroed_to = self.zeroed_to.max(upto);
                self.file.write_at(&self.buf, at)
            })
        } else {
            self.file.append(&self.buf)
        };
        if let Err(e) = written {
            let path = &self.end.segment.path;
            return Err(shared.poison(Error::io("write", path, e)));
        }
        self.end.len += self.buf.len() as u64;
        self.end.digest.update(&self.buf);
        let c = &shared.counters;
        c.records.fetch_add(self.buf_records, Ordering::Relaxed);
        c.writes.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.buf.clear();
        self.buf_records = 0;
        if sync {
            self.sync_file(shared)?;
        }
        shared.pending_leaves(&mut self.leaves);
        shared.publish(self.end.at, self.end.segment.number, self.end.len);
        if sync {
            self.note_durable(shared);
        }
        Ok(())
    }

    /// Closes the active segment with a seal record (synced) and starts the
    /// next one, whose first record says so. Writes what the buffer holds
    /// first; leaves the segment-rolled record in it.
    fn roll(&mut self, shared: &Shared, ts: u64) -> Result<()> {
        self.trim_preallocation(shared)?;
        let seal = self.end.seal_event();
        self.encode(seal.kind(), &seal.encode(), ts);
        self.write_buffer(shared, true)?;
        let header = self.end.segment.header.successor(self.end.at, ts);
        let storage = &*shared.options.storage;
        let (segment, file) =
            Segment::create_active(storage, &shared.dir, header).map_err(|e| shared.poison(e))?;
        shared.segments.write().push(segment.clone());
        let event = SystemEvent::SegmentRolled {
            from_segment: self.end.segment.number,
            to_segment: segment.number,
            from_bytes: self.end.len,
            durability: shared.options.durability,
        };
        self.file = file;
        self.end = SegmentEnd::empty(segment);
        if self.in_place {
            // As at open: where this file cannot be written in place, the
            // writer appends to it instead.
            if let Ok(file) = crate::storage::open_write(storage, &self.end.segment.path) {
                self.write_in_place(file, shared)
                    .map_err(|e| shared.poison(e))?;
            } else {
                self.in_place = false;
            }
        }
        self.synced_len = self.end.len;
        self.index_due_at = 0;
        // A new segment says how it began, then the state in force unless
        // it is the default (no hold, no policy), so that any segment tells
        // the log's state without the segments before it.
        self.encode_event(&event, ts);
        if self.state != LogState::default() {
            let state = self.state.event();
            self.encode_event(&state, ts);
        }
        shared.segment_closed();
        Ok(())
    }
}
