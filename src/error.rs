//! Typed errors. Every error that concerns a file names it; every error that
//! concerns a record names its offset and, where known, its sequence number.

use std::io;
use std::path::PathBuf;

/// What is wrong with bytes that were read back. Carried by [`Error::Corrupt`],
/// which adds where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    #[error("bad magic: not a wormlog segment")]
    BadMagic,
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("header field `{field}` is invalid: {detail}")]
    HeaderField { field: &'static str, detail: String },
    #[error("file ends inside the segment header ({len} of {needed} bytes)")]
    HeaderTruncated { len: u64, needed: u64 },
    #[error("frame length {len} is outside the valid range {min}..={max}")]
    FrameLength { len: u64, min: u64, max: u64 },
    #[error("frame runs past the end of the file (needs {needed} bytes, {available} left)")]
    FrameTruncated { needed: u64, available: u64 },
    #[error("frame CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    FrameCrc { stored: u32, computed: u32 },
    #[error("frame field `{field}` is invalid: {detail}")]
    FrameField { field: &'static str, detail: String },
    #[error("unknown record kind {kind:#04x}")]
    UnknownKind { kind: u8 },
    #[error("sequence number {found} where {expected} was expected")]
    SeqGap { expected: u64, found: u64 },
    #[error("timestamp {found} is earlier than the previous record's {previous}")]
    TimeWentBackward { previous: u64, found: u64 },
    #[error("chain hash mismatch: stored {stored}, computed {computed}")]
    ChainBroken { stored: String, computed: String },
    #[error("segment belongs to another log (log id {found}, expected {expected})")]
    ForeignSegment { expected: String, found: String },
    #[error("segment {missing} is missing between segments {before} and {after}")]
    SegmentMissing {
        missing: u64,
        before: u64,
        after: u64,
    },
    #[error("segment header does not continue the previous segment: {detail}")]
    SegmentDiscontinuity { detail: String },
    #[error("sealed file trailer is invalid: {detail}")]
    SealedTrailer { detail: String },
    #[error("sealed file frame {frame} is damaged: {detail}")]
    SealedFrame { frame: u64, detail: String },
    #[error("seal record does not match the segment: {detail}")]
    SealMismatch { detail: String },
    #[error("anchor file is invalid: {detail}")]
    Anchor { detail: String },
    #[error("system record payload is malformed: {detail}")]
    SystemPayload { detail: String },
    /// The hold file and the chain's hold records disagree.
    #[error("legal hold file does not match the log: {detail}")]
    HoldMismatch { detail: String },
    /// Forward-secure sealing does not hold: a tag, the epochs, or the key.
    #[error("forward-secure seal broken: {detail}")]
    SealBroken { detail: String },
    /// A drop, a hold or a policy that the chain's own records rule out.
    #[error("retention record breaks the rules in force: {detail}")]
    RetentionBreach { detail: String },
    /// The Merkle tree's files disagree with each other or with the records.
    #[error("Merkle tree does not match the log: {detail}")]
    TreeState { detail: String },
}

/// The engine's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Recovery must cut a torn tail but could not keep a copy of its bytes
    /// (on a full disk, most often). Nothing was cut or left behind; the
    /// open can succeed once the copy fits.
    #[error(
        "{path}: the torn tail of {bytes} bytes at offset {offset} must be cut, but its copy \
         {copy} could not be written ({source}); nothing was cut: make room and open the log again"
    )]
    TailNotKept {
        path: PathBuf,
        offset: u64,
        bytes: u64,
        copy: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another `Log` (in this or another process) holds the directory's lock.
    #[error("{path} is locked by another writer (only one process may open a log for writing)")]
    Locked { path: PathBuf },
    /// The directory does not exist and `Options::create_if_missing` is off.
    #[error("{path}: no such log directory (Options::create_if_missing is off)")]
    NotFound { path: PathBuf },
    /// Bytes that were durable do not read back as written.
    #[error("{path}: corrupt at offset {offset}{}: {what}", seq_suffix(*.seq))]
    Corrupt {
        path: PathBuf,
        offset: u64,
        seq: Option<u64>,
        what: Corruption,
    },
    /// The payload is larger than `Options::payload_bytes_max`.
    #[error(
        "payload of {len} bytes exceeds the limit of {max} bytes (Options::payload_bytes_max)"
    )]
    PayloadTooLarge { len: usize, max: usize },
    /// An earlier write or fdatasync failed; the log accepts no more writes
    /// until it is reopened (which runs recovery).
    #[error("log refuses writes after an earlier I/O failure ({cause}); reopen it to recover")]
    Poisoned { cause: String },
    /// An off-host store refused or failed a request (feature `s3`).
    #[error("{op} {what}: {detail}")]
    Remote {
        op: &'static str,
        what: String,
        detail: String,
    },
    /// The Merkle tree cannot answer: a size or seq beyond it, or a log
    /// whose first records retention dropped before it had a tree.
    #[error("Merkle tree unavailable: {detail}")]
    TreeUnavailable { detail: String },
    /// A checkpoint or checkpoint key could not be read or verified.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The log does not hold, unchanged, what a checkpoint says it held.
    #[error("log does not match the checkpoint: {detail}")]
    CheckpointMismatch { detail: String },
    /// The log was opened with `Log::open_read_only`.
    #[error("{path}: the log was opened read-only")]
    ReadOnly { path: PathBuf },
    /// The log was closed.
    #[error("log is closed")]
    Closed,
    /// A sequence number outside the log.
    #[error("no record with sequence number {seq} (the log holds {first}..={last})")]
    SeqOutOfRange { seq: u64, first: u64, last: u64 },
    /// Retention was asked to run at a time too far ahead of the log's last
    /// record (see `Retention::clock_ahead_max`).
    #[error(
        "retention refused: the time given ({now_ns} ns) is more than {bound_ns} ns ahead of the log's last record ({last_ns} ns); check the clock, or raise Retention::clock_ahead_max (recorded in the log)"
    )]
    ClockAhead {
        now_ns: u64,
        last_ns: u64,
        bound_ns: u64,
    },
    /// Options that cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A symbolic link where a log's file belongs. Followed, it would let
    /// whoever planted it have the writer append to, or a reader print, any
    /// file the process can reach; so it is refused, never followed.
    #[error("{path} is a symbolic link; wormlog never follows links in a log directory (remove it, and find out who put it there)")]
    Symlink { path: PathBuf },
    /// The log directory or one of its files is writable by other users or
    /// owned by another user: they could change the log behind the writer.
    /// `detail` says what is wrong and what to do.
    #[error("{path}: unsafe permissions: {detail}")]
    UnsafePermissions { path: PathBuf, detail: String },
}

fn seq_suffix(seq: Option<u64>) -> String {
    match seq {
        Some(seq) => format!(" (seq {seq})"),
        None => String::new(),
    }
}

impl Error {
    /// An I/O error on `path`. ELOOP is what an open with O_NOFOLLOW (every
    /// open of a file in a log directory) gives for a symbolic link: it
    /// says a link is where a file belongs, not that the disk failed.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            return Error::Symlink { path: path.into() };
        }
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        seq: Option<u64>,
        what: Corruption,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            seq,
            what,
        }
    }

    /// The sequence number the error concerns, where it is known.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Error::Corrupt { seq, .. } => *seq,
            Error::SeqOutOfRange { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// Why a checkpoint, a key, or a log against a checkpoint did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("malformed key: {0}")]
    BadKey(String),
    #[error("no valid signature by key {key_name} on the checkpoint")]
    NoValidSignature { key_name: String },
}

/// Damage found while decompressing a sealed file, carried inside an
/// `io::Error` through the `ReadFile` trait and turned back into
/// `Error::Corrupt` by [`Error::from_read`].
#[derive(Debug)]
pub(crate) struct SealedDamage {
    pub frame: u64,
    pub offset: u64,
    pub detail: String,
}

impl std::fmt::Display for SealedDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sealed frame {} at offset {}: {}",
            self.frame, self.offset, self.detail
        )
    }
}

impl std::error::Error for SealedDamage {}

impl Error {
    /// A failed read of `path`: `Error::Corrupt` when it is damage found in
    /// a sealed file, `Error::Io` otherwise.
    pub(crate) fn from_read(path: &std::path::Path, seq: Option<u64>, e: io::Error) -> Error {
        match e.get_ref().and_then(|i| i.downcast_ref::<SealedDamage>()) {
            Some(d) => Error::corrupt(
                path,
                d.offset,
                seq,
                Corruption::SealedFrame {
                    frame: d.frame,
                    detail: d.detail.clone(),
                },
            ),
            None => Error::io("read", path, e),
        }
    }

    /// The same failure, for each waiter of a failed group (io::Error is not Clone).
    pub(crate) fn for_waiter(&self) -> Error {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Closed => Error::Closed,
            other => Error::Poisoned {
                cause: other.to_string(),
            },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
