//! Group commit. Appending threads queue their records; one of them leads,
//! writing every queued record with one write call and (under
//! `Durability::Sync`) one fdatasync, then hands each waiter its receipts.
//! Any write or sync failure fails every record of the group and poisons the
//! log: after a failed fdatasync the kernel may have dropped the dirty pages,
//! so neither a retry nor a later success would prove the data durable.

use crate::error::{Error, Result};
use crate::format::{
    chain_hash, encode_frame, frame_padded_len, Hash, RecordKind, SegmentHeader, SystemEvent,
    SEGMENT_HEADER_LEN,
};
use crate::log::{Receipt, Shared};
use crate::options::Durability;
use crate::segment::{create_segment_file, Segment, INDEX_INTERVAL};
use crate::storage::WriteFile;
use parking_lot::{Condvar, Mutex};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One caller's append: its records commit together, with contiguous seqs.
pub(crate) struct Request {
    kind: RecordKind,
    payloads: Vec<Vec<u8>>,
    bytes: usize,
    outcome: Mutex<Option<Result<Vec<Receipt>>>>,
    /// Signalled (under the queue lock) when the outcome is set, or when this
    /// request is first in the queue and no one leads: waking only the
    /// threads concerned keeps 64 writers from stampeding at every commit.
    wake: Condvar,
}

impl Request {
    pub fn new(kind: RecordKind, payloads: Vec<Vec<u8>>) -> Arc<Request> {
        let bytes = payloads.iter().map(|p| frame_padded_len(p.len())).sum();
        Arc::new(Request {
            kind,
            payloads,
            bytes,
            outcome: Mutex::new(None),
            wake: Condvar::new(),
        })
    }
}

impl Request {
    /// Sets the outcome and wakes the waiter; called with the queue locked.
    fn finish(&self, outcome: Result<Vec<Receipt>>) {
        *self.outcome.lock() = Some(outcome);
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Queue {
    pending: Vec<Arc<Request>>,
    leader: bool,
    closed: bool,
}

/// The queue and the writer. Lock order: `writer` before `queue` (the leader
/// never holds `queue` while it writes).
pub(crate) struct Committer {
    queue: Mutex<Queue>,
    /// Signalled whenever a leader finishes (for `close_queue`).
    leader_done: Condvar,
    pub writer: Mutex<Writer>,
}

impl Committer {
    pub fn new(writer: Writer) -> Self {
        Committer {
            queue: Mutex::new(Queue::default()),
            leader_done: Condvar::new(),
            writer: Mutex::new(writer),
        }
    }

    /// Queues `req` and returns once its group has committed or failed.
    pub fn commit(&self, shared: &Shared, req: Arc<Request>) -> Result<Vec<Receipt>> {
        let mut q = self.queue.lock();
        if q.closed {
            return Err(Error::Closed);
        }
        shared.check_poison()?;
        q.pending.push(req.clone());
        loop {
            if let Some(outcome) = req.outcome.lock().take() {
                return outcome;
            }
            if q.leader {
                req.wake.wait(&mut q);
                continue;
            }
            q.leader = true;
            let group = take_group(&mut q.pending, shared.options.batch_bytes_max);
            drop(q);
            let result = self.writer.lock().write_group(shared, &group);
            q = self.queue.lock();
            q.leader = false;
            match result {
                Ok(receipts) => {
                    for (r, receipts) in group.iter().zip(receipts) {
                        r.finish(Ok(receipts));
                    }
                }
                Err(e) => {
                    for r in &group {
                        r.finish(Err(e.for_waiter()));
                    }
                    // The log is poisoned: fail what is still queued too.
                    for r in q.pending.drain(..) {
                        r.finish(Err(e.for_waiter()));
                    }
                }
            }
            // Hand the lead to the oldest waiting request.
            if let Some(next) = q.pending.first() {
                next.wake.notify_one();
            }
            self.leader_done.notify_all();
        }
    }

    /// Refuses new appends and waits for the current leader to finish.
    pub fn close_queue(&self) {
        let mut q = self.queue.lock();
        q.closed = true;
        while q.leader {
            self.leader_done.wait(&mut q);
        }
        for r in q.pending.drain(..) {
            r.finish(Err(Error::Closed));
        }
    }
}

/// Takes queued requests in order up to `bytes_max` (always at least one).
fn take_group(pending: &mut Vec<Arc<Request>>, bytes_max: usize) -> Vec<Arc<Request>> {
    let mut total = 0;
    let mut n = 0;
    for r in pending.iter() {
        if n > 0 && total + r.bytes > bytes_max {
            break;
        }
        total += r.bytes;
        n += 1;
    }
    pending.drain(..n).collect()
}

/// The state only the leader touches: the active file and the chain's end.
pub(crate) struct Writer {
    pub file: Box<dyn WriteFile>,
    pub segment: Arc<Segment>,
    /// Bytes in the active segment.
    pub len: u64,
    /// Bytes of the active segment covered by the last successful fdatasync.
    pub synced_len: u64,
    pub next_seq: u64,
    pub prev_hash: Hash,
    pub last_ts: u64,
    /// BLAKE3 of every byte of the active segment so far, for its seal record.
    pub digest: blake3::Hasher,
    /// Records in the active segment.
    pub records: u64,
    /// The offset from which the active segment's next index entry is due,
    /// so the index lock is taken once per 64 KiB, not once per record.
    index_due_at: u64,
    buf: Vec<u8>,
    /// Records encoded into `buf`.
    buf_records: u64,
}

impl Writer {
    /// A writer at the end of the active segment, whose bytes so far hash
    /// (BLAKE3) to `digest` and hold `records` records.
    pub fn new(
        file: Box<dyn WriteFile>,
        segment: Arc<Segment>,
        len: u64,
        chain: (u64, Hash, u64),
        digest: blake3::Hasher,
        records: u64,
    ) -> Self {
        let (next_seq, prev_hash, last_ts) = chain;
        let index_due_at = segment
            .index
            .read()
            .entries
            .last()
            .map_or(0, |e| e.offset + INDEX_INTERVAL);
        Writer {
            file,
            segment,
            len,
            synced_len: len,
            next_seq,
            prev_hash,
            last_ts,
            digest,
            records,
            index_due_at,
            buf: Vec::new(),
            buf_records: 0,
        }
    }

    /// Writes the records of `group` (one request after another), syncs as
    /// the durability mode says, and publishes them to readers.
    pub fn write_group(
        &mut self,
        shared: &Shared,
        group: &[Arc<Request>],
    ) -> Result<Vec<Vec<Receipt>>> {
        shared.check_poison()?;
        let ts = self.next_timestamp(shared);
        let bytes: u64 = group.iter().map(|r| r.bytes as u64).sum();
        self.start_group();
        if self.len > SEGMENT_HEADER_LEN as u64
            && self.len + bytes > shared.options.segment_bytes_max
        {
            self.roll(shared, ts)?;
        }
        let mut receipts = Vec::with_capacity(group.len());
        for r in group {
            let mut mine = Vec::with_capacity(r.payloads.len());
            for p in &r.payloads {
                mine.push(self.encode(r.kind, p, ts));
            }
            receipts.push(mine);
        }
        self.write_buffer(shared, shared.options.durability == Durability::Sync)?;
        shared.seal_inline_if_due();
        Ok(receipts)
    }

    /// Writes engine records as one group and makes them durable.
    pub fn write_system(&mut self, shared: &Shared, events: &[SystemEvent]) -> Result<()> {
        shared.check_poison()?;
        let ts = self.next_timestamp(shared);
        self.start_group();
        for e in events {
            self.encode(e.kind(), &e.encode(), ts);
        }
        self.write_buffer(shared, true)
    }

    /// fdatasyncs whatever was written and not yet synced.
    pub fn sync(&mut self, shared: &Shared) -> Result<()> {
        shared.check_poison()?;
        if self.synced_len < self.len {
            let path = self.segment.path.clone();
            self.file
                .sync_data()
                .map_err(|e| shared.poison(Error::io("fdatasync", path, e)))?;
            self.synced_len = self.len;
            shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Empties the group buffer for the next group.
    fn start_group(&mut self) {
        self.buf.clear();
        self.buf_records = 0;
    }

    fn next_timestamp(&mut self, shared: &Shared) -> u64 {
        // Commit timestamps never go backward, even when the wall clock does.
        let ts = (shared.options.clock)().max(self.last_ts);
        debug_assert!(ts >= self.last_ts);
        self.last_ts = ts;
        ts
    }

    /// Appends one frame to the group buffer, advancing seq and chain.
    fn encode(&mut self, kind: RecordKind, payload: &[u8], ts: u64) -> Receipt {
        let seq = self.next_seq;
        let hash = chain_hash(&self.prev_hash, seq, ts, kind as u8, payload);
        let offset = self.len + self.buf.len() as u64;
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
            self.segment.index.write().note(seq, ts, offset);
            self.index_due_at = offset + INDEX_INTERVAL;
        }
        self.next_seq += 1;
        self.prev_hash = hash;
        self.records += 1;
        self.buf_records += 1;
        Receipt {
            seq,
            timestamp_ns: ts,
            hash,
        }
    }

    fn write_buffer(&mut self, shared: &Shared, sync: bool) -> Result<()> {
        let path: PathBuf = self.segment.path.clone();
        if let Err(e) = self.file.append(&self.buf) {
            return Err(shared.poison(Error::io("write", path, e)));
        }
        self.len += self.buf.len() as u64;
        self.digest.update(&self.buf);
        let c = &shared.counters;
        c.records.fetch_add(self.buf_records, Ordering::Relaxed);
        c.writes.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        if sync {
            self.sync(shared)?;
        }
        shared.publish(
            self.next_seq - 1,
            self.prev_hash,
            self.last_ts,
            self.segment.number,
            self.len,
        );
        Ok(())
    }

    /// Closes the active segment with a seal record (synced) and starts the
    /// next one, whose first record says so. Called with an empty group
    /// buffer; leaves the segment-rolled record in it.
    fn roll(&mut self, shared: &Shared, ts: u64) -> Result<()> {
        debug_assert!(self.buf.is_empty());
        let seal = SystemEvent::Sealed {
            segment: self.segment.number,
            records: self.records,
            last_seq: self.next_seq - 1,
            last_hash: self.prev_hash,
            bytes: self.len,
            digest: *self.digest.finalize().as_bytes(),
        };
        self.encode(seal.kind(), &seal.encode(), ts);
        self.write_buffer(shared, true)?;
        self.start_group();
        let header = SegmentHeader {
            log_id: shared.log_id,
            segment: self.segment.number + 1,
            first_seq: self.next_seq,
            created_ns: ts,
            prev_hash: self.prev_hash,
        };
        let storage = &*shared.options.storage;
        let (path, file) =
            create_segment_file(storage, &shared.dir, &header).map_err(|e| shared.poison(e))?;
        let read = storage
            .open_read(&path)
            .map_err(|e| shared.poison(Error::io("open", &path, e)))?;
        let segment = Arc::new(Segment::new_active(path, header.clone(), read));
        shared.segments.write().push(segment.clone());
        let event = SystemEvent::SegmentRolled {
            from_segment: self.segment.number,
            to_segment: segment.number,
            from_bytes: self.len,
            durability: shared.options.durability,
        };
        self.file = file;
        self.segment = segment;
        self.len = SEGMENT_HEADER_LEN as u64;
        self.synced_len = self.len;
        self.digest = blake3::Hasher::new();
        self.digest.update(&header.encode());
        self.records = 0;
        self.index_due_at = 0;
        self.encode(event.kind(), &event.encode(), ts);
        shared.segment_closed();
        Ok(())
    }

    /// Rolls now (for `Log::seal`), whatever the active segment's size.
    pub fn roll_now(&mut self, shared: &Shared) -> Result<()> {
        shared.check_poison()?;
        let ts = self.next_timestamp(shared);
        self.start_group();
        self.roll(shared, ts)?;
        self.write_buffer(shared, true)?;
        shared.seal_inline_if_due();
        Ok(())
    }
}
