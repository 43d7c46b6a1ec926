//! Plain state and record types that the layers above share: what a record
//! read back looks like, where its frame lies, what readers may see, and
//! the counters and reports the public API returns. No I/O here.

use crate::format::{ChainPos, FrameHead, Hash, RecordKind, RetentionRule, SystemEvent};
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

/// Proof that a record is in the log: its seq, chain hash and commit time,
/// returned once it is committed.
pub type Receipt = ChainPos;

/// The last committed record: its seq, chain hash and commit time.
pub type Head = ChainPos;

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
    pub(crate) fn of(segment: u64, offset: u64, f: &FrameHead) -> Self {
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
    /// The record a checked frame of segment `segment` at `offset` holds.
    pub(crate) fn from_frame(segment: u64, offset: u64, f: &FrameHead, payload: Bytes) -> Record {
        Record {
            seq: f.seq,
            timestamp_ns: f.timestamp_ns,
            kind: f.kind,
            payload,
            hash: f.hash,
            frame: FrameInfo::of(segment, offset, f),
        }
    }

    /// The record's sequence number (the log's first record is 1).
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Commit time, ns since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp_ns
    }
    /// The record's kind: [`RecordKind::User`] for appended records.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }
    /// The record's bytes: what was appended, or an engine record's encoded
    /// payload (see [`Record::system_event`]).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    /// The record's bytes, owned: no copy when this record holds the only
    /// reference to them (a read decodes each record into its own buffer
    /// unless it came from the shared cache of a sealed file).
    pub fn into_payload(self) -> Vec<u8> {
        Vec::from(self.payload)
    }
    /// The record's chain hash as stored (BLAKE3, 32 bytes). A read checks
    /// the frame's CRC; `Log::verify` checks the chain.
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
    /// Checkpoints signed for proved appends (one per group commit at
    /// most: `Log::append_proved`).
    pub proof_signatures: u64,
    /// Time spent in those fdatasync calls, in ns.
    pub sync_ns: u64,
    /// Their durations: `sync_histogram[i]` counts the calls that took at
    /// most `SYNC_BUCKET_MIN_US << i` µs and more than the bucket before
    /// (the last bucket: everything longer). For a server's metrics.
    pub sync_histogram: [u64; SYNC_BUCKETS],
}

/// Buckets of `WriteStats::sync_histogram`.
pub const SYNC_BUCKETS: usize = 16;

/// The upper bound of its first bucket, in µs: bucket `i < SYNC_BUCKETS - 1`
/// ends at `SYNC_BUCKET_MIN_US << i` (32 µs to 0.52 s); the last holds the
/// rest.
pub const SYNC_BUCKET_MIN_US: u64 = 32;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub writes: AtomicU64,
    pub syncs: AtomicU64,
    pub bytes: AtomicU64,
    pub proof_signatures: AtomicU64,
    pub sync_ns: AtomicU64,
    pub sync_histogram: [AtomicU64; SYNC_BUCKETS],
}

impl Counters {
    /// Counts one fdatasync that took `took`.
    pub fn synced(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.syncs.fetch_add(1, Relaxed);
        self.sync_ns.fetch_add(took.as_nanos() as u64, Relaxed);
        let us = took.as_micros() as u64;
        let bucket = (0..SYNC_BUCKETS - 1)
            .find(|i| us <= SYNC_BUCKET_MIN_US << i)
            .unwrap_or(SYNC_BUCKETS - 1);
        self.sync_histogram[bucket].fetch_add(1, Relaxed);
    }
}

/// One segment of a log, as [`Log::segments`](crate::Log::segments) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment's number; a log's numbers are contiguous.
    pub number: u64,
    /// Its file: the raw `.wlog` or the sealed `.wlog.zst`.
    pub path: PathBuf,
    /// Whether this is the segment appends go to.
    pub active: bool,
    /// Whether it is a sealed (compressed, read-only) file.
    pub sealed: bool,
    /// The chain hash its first record continues (its header's).
    pub prev_hash: Hash,
    /// Seq of its first record (or of the one it will hold first).
    pub first_seq: u64,
    /// Seq of its last committed record (`first_seq - 1` when it has none).
    pub last_seq: u64,
    /// Creation time: no record in it is earlier.
    pub created_ns: u64,
    /// Chain hash of its last record.
    pub last_hash: Hash,
    /// Bytes its file takes: the compressed length of a sealed file.
    pub bytes_on_disk: u64,
    /// Length of the segment's raw bytes (for the active segment, as far as
    /// readers may see).
    pub bytes_uncompressed: u64,
}

impl SegmentInfo {
    /// How many committed records it holds (engine records included).
    pub fn records(&self) -> u64 {
        self.last_seq + 1 - self.first_seq
    }
}

/// How the cache of decompressed sealed frames is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of decompressed frames held now.
    pub bytes: usize,
    /// The most it holds (`Options::sealed_cache_bytes`).
    pub capacity: usize,
    /// Lookups that found their frame, since the log was opened.
    pub hits: u64,
    /// Lookups that had to decompress, since the log was opened.
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

/// What a log's shipper did since the log was opened (`Log::ship_status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipStatus {
    /// Objects copied off the host.
    pub objects_shipped: u64,
    /// Shipping runs that ended well.
    pub runs: u64,
    /// Failed runs since the last that ended well (the shipper backs off).
    pub failures_in_a_row: u32,
    /// Why the last run failed, while it is the latest outcome.
    pub last_error: Option<String>,
    /// The last record whose copy is confirmed after the last run that
    /// ended well: its seq and commit time (ns since 1970), where the
    /// shipper knows it. With the head, how far behind the copy is.
    pub shipped_through: Option<(u64, u64)>,
    /// As of that run, every record the copy did not hold yet was committed
    /// at or after this time (ns since 1970): the oldest such record's
    /// commit time, or, where the copy held the head, when the run ended.
    /// How long records have waited to leave the host.
    pub unshipped_since: Option<u64>,
}

/// The legal hold and the retention policy in force at a point of the
/// chain, as its records say (format-spec.md, 4.2: log-state). The records
/// are the truth; the hold file is a cache of `hold`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogState {
    pub hold: Option<String>,
    pub policy: Option<RetentionRule>,
}

impl LogState {
    /// Takes in a record that changes the state (or states it whole).
    pub fn apply(&mut self, event: &SystemEvent) {
        match event {
            SystemEvent::LegalHoldSet { reason } => self.hold = Some(reason.clone()),
            SystemEvent::LegalHoldCleared => self.hold = None,
            SystemEvent::RetentionPolicySet { policy } => self.policy = *policy,
            SystemEvent::LogState { hold, policy } => {
                self.hold = hold.clone();
                self.policy = *policy;
            }
            _ => {}
        }
    }

    /// What a version-3 tag over a record committed at `time_ns` seals
    /// besides its chain position: that time and this state's policy floor.
    pub fn tag_facts(&self, time_ns: u64) -> crate::format::TagFacts {
        crate::format::TagFacts {
            time_ns,
            floor: self.policy.map(|p| (p.min_age_ns, p.clock_ahead_max_ns)),
        }
    }

    /// The log-state record that states this state.
    pub fn event(&self) -> SystemEvent {
        SystemEvent::LogState {
            hold: self.hold.clone(),
            policy: self.policy,
        }
    }
}

/// What `Log::open` found and did to the log before it took appends
/// (`Log::recovery`): whether the last run closed it, what recovery cut
/// or moved aside, and how long it took. Its `Display` is one line to log
/// at startup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The log was created by this open.
    pub created: bool,
    /// The last run closed the log (`Log::close`, or a drop): no writer
    /// stopped mid-write. False after a crash, a kill or a power cut, and
    /// for a log opened read-only while a writer has it.
    pub closed_cleanly: bool,
    /// Torn tails cut: one per cut, in the order made.
    pub cuts: Vec<TailCut>,
    /// Damaged segments moved aside (`Options::repair`).
    pub repairs: Vec<Repair>,
    /// How long the open took, recovery included.
    pub took: std::time::Duration,
}

/// A torn tail recovery cut: bytes no record of which was acknowledged
/// (a write that a crash interrupted), recorded in the log as a
/// `tail-cut` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    /// The segment cut.
    pub segment: u64,
    /// Where the cut began.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// The seq the next record takes (the first the cut bytes would have
    /// held).
    pub next_seq: u64,
    /// Where the cut bytes were kept (`.cut-OFFSET`), unless all zero.
    pub saved_as: Option<PathBuf>,
}

/// A damaged segment `Options::repair` moved aside: durable records from
/// `seq` on could not be read, and the whole file was copied aside first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The damaged segment.
    pub segment: u64,
    /// Where the damage begins.
    pub offset: u64,
    /// The first seq not readable there.
    pub seq: u64,
    /// The copy of the whole damaged file (`.damaged-TIME`).
    pub moved_to: PathBuf,
    /// The damage, for people.
    pub what: String,
}

impl RecoveryReport {
    /// Nothing to report: the log was closed cleanly (or just created) and
    /// nothing was cut or moved aside.
    pub fn is_clean(&self) -> bool {
        self.closed_cleanly && self.cuts.is_empty() && self.repairs.is_empty()
    }

    /// From the engine records recovery queued and whether the log ended
    /// with a clean close.
    pub(crate) fn from_events(
        dir: &std::path::Path,
        events: &[SystemEvent],
        closed_cleanly: bool,
    ) -> RecoveryReport {
        let mut report = RecoveryReport {
            closed_cleanly,
            ..RecoveryReport::default()
        };
        for e in events {
            match e {
                SystemEvent::LogCreated { .. } => report.created = true,
                SystemEvent::TailCut {
                    segment,
                    offset,
                    bytes,
                    expected_seq,
                    saved_as,
                } => report.cuts.push(TailCut {
                    segment: *segment,
                    offset: *offset,
                    bytes: *bytes,
                    next_seq: *expected_seq,
                    saved_as: (!saved_as.is_empty()).then(|| dir.join(saved_as)),
                }),
                SystemEvent::Repaired {
                    segment,
                    offset,
                    seq,
                    moved_to,
                    what,
                } => report.repairs.push(Repair {
                    segment: *segment,
                    offset: *offset,
                    seq: *seq,
                    moved_to: dir.join(moved_to),
                    what: what.clone(),
                }),
                _ => {}
            }
        }
        report
    }
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.took.as_secs_f64() * 1e3;
        if self.created {
            return write!(f, "log created in {ms:.1} ms");
        }
        if self.is_clean() {
            return write!(
                f,
                "clean start: the last run closed the log; opened in {ms:.1} ms"
            );
        }
        if !self.closed_cleanly {
            write!(f, "the last run did not close the log (a crash or kill)")?;
        }
        for c in &self.cuts {
            write!(
                f,
                "; cut a torn tail of {} bytes at offset {} of segment {} (no acknowledged \
                 record; the next is seq {})",
                c.bytes, c.offset, c.segment, c.next_seq
            )?;
            if let Some(p) = &c.saved_as {
                write!(f, ", kept in {}", p.display())?;
            }
        }
        if self.cuts.is_empty() && !self.closed_cleanly {
            write!(f, "; nothing torn to cut")?;
        }
        for r in &self.repairs {
            write!(
                f,
                "; REPAIRED segment {}: damage at offset {} (seq {}: {}), the whole file kept \
                 in {}",
                r.segment,
                r.offset,
                r.seq,
                r.what,
                r.moved_to.display()
            )?;
        }
        write!(f, "; opened in {ms:.1} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_fdatasync_lands_in_the_bucket_of_its_duration() {
        let c = Counters::default();
        for us in [10, 32, 33, 64, 1_000_000, 5_000_000] {
            c.synced(Duration::from_micros(us));
        }
        let h: Vec<u64> = c
            .sync_histogram
            .iter()
            .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        assert_eq!(h[0], 2, "10 and 32 us: at most 32 us");
        assert_eq!(h[1], 2, "33 and 64 us");
        assert_eq!(
            h[15], 2,
            "1 s and 5 s: past 32 us << 14 = 0.52 s, the last bucket"
        );
        assert_eq!(c.syncs.load(std::sync::atomic::Ordering::Relaxed), 6);
    }
}
