//! How a log is opened: durability, limits, and the storage it lives on.

use crate::checkpoint::{AutoCheckpoints, CheckpointKey, CheckpointSink};
pub use crate::format::Durability;
use crate::format::RetentionRule;
use crate::storage::{FsStorage, Storage};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How closed segments are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// A background thread seals each segment after it rolls; appends go on
    /// into the next segment meanwhile.
    Background,
    /// The writer seals a segment as it rolls, before the next append returns
    /// (deterministic; for tests and tools).
    Inline,
    /// Closed segments stay uncompressed until `Log::seal` is called.
    Manual,
}

/// Copies a log's sealed files off the host (`wormlog_s3::S3Target`, of
/// the crate `wormlog-s3`, is one). A writer with `Options::shipping` calls it from a
/// background thread, never from an append.
pub trait Shipper: Send + Sync + fmt::Debug {
    /// Copies what the log in `dir` has not shipped yet; returns how many
    /// objects it copied. `policy` is the retention policy in force, from
    /// which a copy's lock period may derive. `stop` turns true when the
    /// log closes: the run should end at the next object boundary.
    fn ship(
        &self,
        dir: &Path,
        policy: Option<&RetentionRule>,
        stop: &dyn Fn() -> bool,
    ) -> crate::Result<usize>;
    /// The names of the files in `dir` whose copy is confirmed (recorded
    /// durably after the server stored it).
    fn shipped_files(&self, dir: &Path) -> crate::Result<Vec<String>>;
    /// The last record whose copy is confirmed, its seq and commit time
    /// (`None` if nothing is): how far the copy reaches, for
    /// `ShipStatus::shipped_through`. By default, not known.
    fn shipped_through(&self, _dir: &Path) -> crate::Result<Option<(u64, u64)>> {
        Ok(None)
    }
}

/// Shipping in the writer (`Options::shipping`).
#[derive(Debug, Clone)]
pub struct Shipping {
    pub(crate) shipper: Arc<dyn Shipper>,
    pub(crate) retention_waits: bool,
    pub(crate) interval: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_lag: Option<Duration>,
}

impl Shipping {
    /// Ships with `shipper` after every seal, and every `interval` (default
    /// one minute) to catch up.
    pub fn new(shipper: impl Shipper + 'static) -> Self {
        Shipping {
            shipper: Arc::new(shipper),
            retention_waits: true,
            interval: Duration::from_secs(60),
            backoff_max: Duration::from_secs(300),
            max_lag: None,
        }
    }
    /// Retention drops only segments whose copy is confirmed (default on):
    /// a segment that was never shipped is never dropped.
    pub fn retention_waits(mut self, yes: bool) -> Self {
        self.retention_waits = yes;
        self
    }
    /// How often the shipper looks for work when no seal wakes it.
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }
    /// Backpressure, for a policy that says records must be off the host
    /// within `lag` (default none): while the newest record whose copy is
    /// confirmed (`ShipStatus::shipped_through`; before the first run, the
    /// open) was committed more than `lag` ago and the log holds records
    /// after it, an append (`append`, `append_batch`, the JSON forms; not
    /// the async ones) wakes the shipper and waits, up to `lag` again; then
    /// it fails with `Error::CopyBehind`, committing nothing. Needs a
    /// shipper that says how far its copy reaches (`Shipper::shipped_through`;
    /// `wormlog-s3` with tail shipping does).
    pub fn max_lag(mut self, lag: Duration) -> Self {
        self.max_lag = Some(lag);
        self
    }
    /// After failures the shipper waits 1 s, 2 s, 4 s, … up to this
    /// (default five minutes) before it tries again.
    pub fn backoff_max(mut self, most: Duration) -> Self {
        self.backoff_max = most;
        self
    }
}

/// How sealing compresses and protects a segment (from `Options`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealSettings {
    pub level: i32,
    pub frame_bytes: usize,
    pub immutable: bool,
}

/// Which sealed segments may be dropped. A segment's age is the time since
/// its newest record. The policy is recorded in the log (a
/// retention-policy-set record before the first drop under a policy other
/// than the one in force), so verification judges every drop against the
/// policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
    pub(crate) min_age: Duration,
    pub(crate) apply_on_roll: bool,
    pub(crate) clock_ahead_max: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: None,
            max_total_bytes: None,
            min_age: Duration::ZERO,
            apply_on_roll: false,
            clock_ahead_max: Duration::from_secs(86_400),
        }
    }
}

impl Retention {
    /// Retention refuses to run while the time it is given is more than
    /// this ahead of the log's last committed record (default one day): a
    /// clock set forward must not age segments before their time. Part of
    /// the recorded policy, so raising it shows in the log.
    pub fn clock_ahead_max(mut self, bound: Duration) -> Self {
        self.clock_ahead_max = bound;
        self
    }

    /// The policy as the log records it.
    pub(crate) fn rule(&self) -> RetentionRule {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        RetentionRule {
            max_age_ns: self.max_age.map_or(0, ns),
            max_total_bytes: self.max_total_bytes.unwrap_or(0),
            min_age_ns: ns(self.min_age),
            clock_ahead_max_ns: ns(self.clock_ahead_max),
        }
    }

    /// Drop segments whose newest record is older than this.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }
    /// Drop the oldest segments while the log's files take more than this.
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.max_total_bytes = Some(bytes);
        self
    }
    /// The compliance floor: no segment younger than this is ever dropped,
    /// whatever `max_age` or `max_total_bytes` say.
    pub fn min_age(mut self, age: Duration) -> Self {
        self.min_age = age;
        self
    }
    /// Apply retention each time background sealing finishes a segment.
    pub fn apply_on_roll(mut self, yes: bool) -> Self {
        self.apply_on_roll = yes;
        self
    }
}

/// Supplies commit timestamps in nanoseconds since the Unix epoch. The engine
/// never lets a timestamp go backward, whatever the clock says.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Options for [`crate::Log::open`], built with chained setters.
#[derive(Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) segment_bytes_max: u64,
    pub(crate) payload_bytes_max: usize,
    pub(crate) batch_bytes_max: usize,
    pub(crate) create_if_missing: bool,
    pub(crate) repair: bool,
    pub(crate) control: bool,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) clock: Clock,
    pub(crate) sealing: Sealing,
    pub(crate) seal_level: i32,
    pub(crate) seal_frame_bytes: usize,
    pub(crate) immutable_attr: bool,
    pub(crate) sealed_cache_bytes: usize,
    pub(crate) sealed_files_open: usize,
    pub(crate) retention: Option<Retention>,
    pub(crate) clock_jump_max: Duration,
    pub(crate) auto_checkpoints: Option<AutoCheckpoints>,
    pub(crate) proofs: Option<Arc<CheckpointKey>>,
    #[cfg(feature = "signing")]
    pub(crate) witnesses: Vec<crate::witness::Witness>,
    pub(crate) preallocate: bool,
    pub(crate) shipping: Option<Shipping>,
    pub(crate) verify_min_age: Option<Duration>,
    pub(crate) verify_as_copy: bool,
    pub(crate) background_threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            segment_bytes_max: 64 << 20,
            payload_bytes_max: 16 << 20,
            batch_bytes_max: 4 << 20,
            create_if_missing: true,
            repair: false,
            control: true,
            storage: Arc::new(FsStorage),
            clock: Arc::new(system_clock_ns),
            sealing: Sealing::Background,
            seal_level: 3,
            seal_frame_bytes: 1 << 20,
            immutable_attr: false,
            sealed_cache_bytes: 32 << 20,
            sealed_files_open: 64,
            retention: None,
            clock_jump_max: Duration::from_secs(3600),
            auto_checkpoints: None,
            proofs: None,
            #[cfg(feature = "signing")]
            witnesses: Vec::new(),
            preallocate: false,
            shipping: None,
            verify_min_age: None,
            verify_as_copy: false,
            background_threads: crate::background::THREADS_DEFAULT,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("segment_bytes_max", &self.segment_bytes_max)
            .field("payload_bytes_max", &self.payload_bytes_max)
            .field("batch_bytes_max", &self.batch_bytes_max)
            .field("create_if_missing", &self.create_if_missing)
            .field("repair", &self.repair)
            .field("control", &self.control)
            .field("storage", &self.storage)
            .field("sealing", &self.sealing)
            .field("seal_level", &self.seal_level)
            .field("seal_frame_bytes", &self.seal_frame_bytes)
            .field("immutable_attr", &self.immutable_attr)
            .field("sealed_cache_bytes", &self.sealed_cache_bytes)
            .field("sealed_files_open", &self.sealed_files_open)
            .field("retention", &self.retention)
            .field("auto_checkpoints", &self.auto_checkpoints)
            .field("proofs", &self.proofs)
            .field("witnesses", &self.witnesses_text())
            .field("preallocate", &self.preallocate)
            .field("shipping", &self.shipping)
            .field("verify_min_age", &self.verify_min_age)
            .field("verify_as_copy", &self.verify_as_copy)
            .field("background_threads", &self.background_threads)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// When an append is acknowledged (default [`Durability::Sync`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
    /// A segment rolls to a new file once it would grow past this (default 64 MiB).
    pub fn segment_bytes_max(mut self, bytes: u64) -> Self {
        self.segment_bytes_max = bytes;
        self
    }
    /// Larger payloads are refused with `Error::PayloadTooLarge` (default 16 MiB,
    /// at most 256 MiB, the format's limit).
    pub fn payload_bytes_max(mut self, bytes: usize) -> Self {
        self.payload_bytes_max = bytes;
        self
    }

    /// The largest payload a record may hold under these options (see
    /// [`payload_bytes_max`](Self::payload_bytes_max)).
    pub fn payload_bytes_max_value(&self) -> usize {
        self.payload_bytes_max
    }
    /// The engine's background workers, shared by every log of the process
    /// (default 8, at most 31; with the timer thread, at most 32 threads
    /// however many logs are open): half run timely work (Batched syncs,
    /// Buffered writes, epoch tags, async appends' groups), half slow work
    /// (sealing, shipping, retention on roll). The pool keeps the largest
    /// number any log of the process was opened with.
    pub fn background_threads(mut self, threads: usize) -> Self {
        self.background_threads = threads;
        self
    }
    /// A group commit takes queued appends up to this many bytes (default 4 MiB;
    /// one oversized `append_batch` still commits whole, alone).
    pub fn batch_bytes_max(mut self, bytes: usize) -> Self {
        self.batch_bytes_max = bytes;
        self
    }
    /// Create the directory and a new log when none exists (default true).
    pub fn create_if_missing(mut self, yes: bool) -> Self {
        self.create_if_missing = yes;
        self
    }
    /// When recovery finds damage in durable data of the active segment, move
    /// the file aside (never delete it), keep its intact prefix, and go on in
    /// a new segment whose first record says what happened. Off by default:
    /// damage then fails the open.
    pub fn repair(mut self, yes: bool) -> Self {
        self.repair = yes;
        self
    }
    /// Serve the control channel (default on): a writer listens on the Unix
    /// socket `wormlog.ctl` in the log directory (mode 0600; each peer's
    /// uid must be the writer's), through which `wormctl` sets and clears
    /// a legal hold, seals, records an access and appends while this
    /// process holds the log (format-spec.md §17). Off, those commands
    /// find the log locked. Polled every quarter second on the shared
    /// pool: no thread of its own.
    pub fn control(mut self, yes: bool) -> Self {
        self.control = yes;
        self
    }
    /// Where the files live (default: the real file system).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }
    /// Source of commit timestamps (default: the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// When closed segments are compressed into sealed files (default:
    /// in the background after each roll).
    pub fn sealing(mut self, sealing: Sealing) -> Self {
        self.sealing = sealing;
        self
    }
    /// zstd level for sealed files (default 3).
    pub fn seal_level(mut self, level: i32) -> Self {
        self.seal_level = level;
        self
    }
    /// Uncompressed bytes per zstd frame of a sealed file (default 1 MiB): a
    /// read from a sealed segment decompresses one frame.
    pub fn seal_frame_bytes(mut self, bytes: usize) -> Self {
        self.seal_frame_bytes = bytes;
        self
    }
    /// Write the active segment in place into zeros written ahead of it
    /// (4 MiB at a time), instead of appending with O_APPEND (off by
    /// default). An fdatasync after an overwrite has no file size to
    /// commit, so under `Durability::Sync` each commit costs about half as
    /// much on ext4 (see the README's performance section). The trade: the
    /// active segment is opened without O_APPEND, so the append-only file
    /// attribute (`chattr +a`) cannot guard it, and a crash leaves a zero
    /// tail that the next open cuts (a tail-cut record of zero bytes saved).
    /// Closed segments never keep zeros: they are cut to their last frame
    /// before the seal record is written, as the log is before its close
    /// record.
    pub fn preallocate(mut self, yes: bool) -> Self {
        self.preallocate = yes;
        self
    }
    /// Also set the file system's immutable attribute on sealed files, where
    /// the process may (CAP_LINUX_IMMUTABLE); off by default.
    pub fn immutable_attr(mut self, yes: bool) -> Self {
        self.immutable_attr = yes;
        self
    }
    /// A forward leap of the wall clock larger than this (beyond the time
    /// that passed, by the monotonic clock, since the writer's last group)
    /// is written to the log as a clock-jumped record (default one hour).
    pub fn clock_jump_max(mut self, bound: Duration) -> Self {
        self.clock_jump_max = bound;
        self
    }
    /// Sign the head with `key` every `interval` while it moves, and on
    /// close, and hand each note to `sink` (see [`crate::FileSink`]).
    /// `Log::checkpoint_error` tells of a note that could not be made or put.
    pub fn auto_checkpoints(
        mut self,
        key: CheckpointKey,
        interval: Duration,
        sink: Arc<dyn CheckpointSink>,
    ) -> Self {
        self.auto_checkpoints = Some(AutoCheckpoints {
            key: Arc::new(key),
            interval,
            sink,
        });
        self
    }
    /// Proved appends (`Log::append_proved`, format-spec.md §18.1): each
    /// returns, with its receipt, a C2SP tlog-proof of its record against
    /// a checkpoint signed with `key`. One checkpoint is signed per group
    /// commit (the first proved append of a group signs; the rest reuse
    /// it), over records an fdatasync has covered, so a crash cannot take
    /// back anything a proof shows.
    pub fn proofs(mut self, key: CheckpointKey) -> Self {
        self.proofs = Some(Arc::new(key));
        self
    }
    /// Witnesses that cosign each automatic checkpoint (C2SP tlog-witness,
    /// format-spec.md §18.4) before it goes to the sink. A witness that
    /// cannot be reached is retried with back-off (the interval, doubled
    /// up to an hour) and the note goes to the sink signed by the log
    /// alone meanwhile; appends never wait for a witness. A witness that
    /// has seen another history of this log (a rollback, a fork) is a
    /// conflict, kept for `Log::checkpoint_error` until a later checkpoint
    /// is cosigned.
    #[cfg(feature = "signing")]
    pub fn checkpoint_witnesses(mut self, witnesses: Vec<crate::witness::Witness>) -> Self {
        self.witnesses = witnesses;
        self
    }
    #[cfg(feature = "signing")]
    fn witnesses_text(&self) -> Vec<&str> {
        self.witnesses.iter().map(|w| w.url.as_str()).collect()
    }
    #[cfg(not(feature = "signing"))]
    fn witnesses_text(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Bytes of decompressed sealed frames kept in memory (default 32 MiB).
    pub fn sealed_cache_bytes(mut self, bytes: usize) -> Self {
        self.sealed_cache_bytes = bytes;
        self
    }

    /// Sealed files kept open between reads (default 64, at least 1); the
    /// rest are opened again when read. Every other segment (the active one,
    /// and closed ones not yet sealed) holds one descriptor while open, so a
    /// log with thousands of sealed segments stays far below the process's
    /// open-file limit.
    pub fn sealed_files_open(mut self, files: usize) -> Self {
        self.sealed_files_open = files;
        self
    }

    /// Which sealed segments `Log::apply_retention` may drop (default: none).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The compliance floor the verifier holds (`wormctl verify
    /// --min-age`): verification judges every drop by at least this
    /// minimum age, whatever the log's records say. Once retention has
    /// dropped everything sealed, the policy the log states is only what
    /// whoever holds the host wrote (format-spec.md 16.4 (b)); a floor kept
    /// off the host is not.
    pub fn verify_min_age(mut self, floor: Duration) -> Self {
        self.verify_min_age = Some(floor);
        self
    }

    /// Verify the directory as a copy of a log (a restore from its bucket,
    /// a backup): a copy has no sealing key file (it never leaves the
    /// host), which on the host itself would show records removed after
    /// the last tag. A copy is checked through its last tag, and the report
    /// says how many records after it are unsealed; what the host wrote
    /// after the copy was made, a copy cannot show. The verifier says so;
    /// nothing on disk can (a flag there would be the thief's).
    pub fn verify_as_copy(mut self, yes: bool) -> Self {
        self.verify_as_copy = yes;
        self
    }

    /// Copy sealed files off the host in the background (see `Shipping`).
    pub fn shipping(mut self, shipping: Shipping) -> Self {
        self.shipping = Some(shipping);
        self
    }

    pub(crate) fn seal_settings(&self) -> SealSettings {
        SealSettings {
            level: self.seal_level,
            frame_bytes: self.seal_frame_bytes,
            immutable: self.immutable_attr,
        }
    }

    /// Whether these options can open a log: `Err` names the first that
    /// cannot (what `Log::open` reports as `Error::InvalidOptions`). For a
    /// tool that checks a configuration before it opens anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.payload_bytes_max > crate::format::PAYLOAD_LEN_MAX {
            return Err(format!(
                "payload_bytes_max {} exceeds the format's limit {}",
                self.payload_bytes_max,
                crate::format::PAYLOAD_LEN_MAX
            ));
        }
        if !(1..=22).contains(&self.seal_level) {
            return Err(format!(
                "seal_level {} is not a zstd level 1..=22",
                self.seal_level
            ));
        }
        if !(4096..=64 << 20).contains(&self.seal_frame_bytes) {
            return Err("seal_frame_bytes must be between 4 KiB and 64 MiB".into());
        }
        if self.sealed_files_open == 0 {
            return Err("sealed_files_open must be at least 1".into());
        }
        if self.segment_bytes_max < 4096 {
            return Err("segment_bytes_max must be at least 4096".into());
        }
        if let Durability::Batched { max_delay } = self.durability {
            if max_delay.is_zero() {
                return Err("Batched max_delay must be more than zero".into());
            }
        }
        Ok(())
    }
}

pub(crate) fn system_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
