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
    chain_hash, encode_frame, frame_padded_len, ChainPos, RecordKind, SystemEvent,
    SEGMENT_HEADER_LEN,
};
use crate::options::Durability;
use crate::segment::{Segment, SegmentEnd, INDEX_INTERVAL};
use crate::shared::Shared;
use crate::state::Receipt;
use crate::storage::WriteFile;
use std::sync::atomic::Ordering;

/// One caller's append: its records commit together, with contiguous seqs.
pub(crate) struct Request {
    pub kind: RecordKind,
    pub payloads: Vec<Vec<u8>>,
}

impl Request {
    /// Bytes its frames take in a segment: what a group's size is counted in.
    pub fn bytes(&self) -> usize {
        self.payloads
            .iter()
            .map(|p| frame_padded_len(p.len()))
            .sum()
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
    buf: Vec<u8>,
    /// Records encoded into `buf`.
    buf_records: u64,
}

impl Writer {
    /// A writer appending to `file` at `end` (all of it durable).
    pub fn new(file: Box<dyn WriteFile>, end: SegmentEnd) -> Self {
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
        }
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
        let ts = self.next_timestamp(shared);
        let bytes: u64 = group.iter().map(|r| r.bytes() as u64).sum();
        self.start_group();
        if self.end.len > SEGMENT_HEADER_LEN as u64
            && self.end.len + bytes > shared.options.segment_bytes_max
        {
            self.roll(shared, ts)?;
        }
        let receipts = group
            .iter()
            .map(|r| {
                r.payloads
                    .iter()
                    .map(|p| self.encode(r.kind, p, ts))
                    .collect()
            })
            .collect();
        self.write_buffer(shared, shared.options.durability == Durability::Sync)?;
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
        if self.synced_len < self.end.len {
            let path = &self.end.segment.path;
            self.file
                .sync_data()
                .map_err(|e| shared.poison(Error::io("fdatasync", path, e)))?;
            self.synced_len = self.end.len;
            shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Rolls now (for `Log::seal`), whatever the active segment's size.
    pub fn roll_now(&mut self, shared: &Shared) -> Result<()> {
        shared.check_poison()?;
        let ts = self.next_timestamp(shared);
        self.start_group();
        self.roll(shared, ts)?;
        self.write_buffer(shared, true)
    }

    /// Empties the group buffer for the next group.
    fn start_group(&mut self) {
        self.buf.clear();
        self.buf_records = 0;
    }

    fn next_timestamp(&mut self, shared: &Shared) -> u64 {
        // Commit timestamps never go backward, even when the wall clock does.
        let last = self.end.at.timestamp_ns;
        let ts = (shared.options.clock)().max(last);
        debug_assert!(ts >= last);
        ts
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
        self.end.at
    }

    fn write_buffer(&mut self, shared: &Shared, sync: bool) -> Result<()> {
        if let Err(e) = self.file.append(&self.buf) {
            let path = &self.end.segment.path;
            return Err(shared.poison(Error::io("write", path, e)));
        }
        self.end.len += self.buf.len() as u64;
        self.end.digest.update(&self.buf);
        let c = &shared.counters;
        c.records.fetch_add(self.buf_records, Ordering::Relaxed);
        c.writes.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        if sync {
            self.sync(shared)?;
        }
        shared.publish(self.end.at, self.end.segment.number, self.end.len);
        Ok(())
    }

    /// Closes the active segment with a seal record (synced) and starts the
    /// next one, whose first record says so. Called with an empty group
    /// buffer; leaves the segment-rolled record in it.
    fn roll(&mut self, shared: &Shared, ts: u64) -> Result<()> {
        debug_assert!(self.buf.is_empty());
        let seal = self.end.seal_event();
        self.encode(seal.kind(), &seal.encode(), ts);
        self.write_buffer(shared, true)?;
        self.start_group();
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
        self.synced_len = self.end.len;
        self.index_due_at = 0;
        self.encode(event.kind(), &event.encode(), ts);
        shared.segment_closed();
        Ok(())
    }
}
