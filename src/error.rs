//! Typed errors. Every error that concerns a file names it; every error that
//! concerns a record names its offset and, where known, its sequence number.

use std::io;
use std::path::PathBuf;

/// What is wrong with bytes that were read back. Carried by [`Error::Corrupt`],
/// which adds where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// The file does not start with the segment magic `\x89WORMLOG`.
    #[error("bad magic: not a wormlog segment")]
    BadMagic,
    /// The segment header's format version is not one this build reads.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
        /// The newest version this build reads (it also reads the older ones).
        supported: u16,
    },
    /// The segment header's CRC-32 does not match its bytes.
    #[error("header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderCrc {
        /// The CRC-32 the header holds.
        stored: u32,
        /// The CRC-32 of the header's bytes as read.
        computed: u32,
    },
    /// A header field breaks its rule: a segment header's (format-spec.md,
    /// section 3), or the sealing key file's (section 10a).
    #[error("header field `{field}` is invalid: {detail}")]
    HeaderField {
        /// The field's name, as in the spec (or `sealing key file`).
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The file is shorter than the 96-byte segment header.
    #[error("file ends inside the segment header ({len} of {needed} bytes)")]
    HeaderTruncated {
        /// The file's length in bytes.
        len: u64,
        /// The header's length in bytes (96).
        needed: u64,
    },
    /// A frame's `frame_len` is outside the range the format allows.
    #[error("frame length {len} is outside the valid range {min}..={max}")]
    FrameLength {
        /// The `frame_len` read.
        len: u64,
        /// The smallest valid `frame_len` (72, an empty payload).
        min: u64,
        /// The largest valid `frame_len` (72 + 256 MiB, the format's limit).
        max: u64,
    },
    /// A frame's bytes run past the end of the file.
    #[error("frame runs past the end of the file (needs {needed} bytes, {available} left)")]
    FrameTruncated {
        /// The bytes the frame needs, padding included.
        needed: u64,
        /// The bytes the file holds from the frame's start.
        available: u64,
    },
    /// A frame's CRC-32 does not match its bytes.
    #[error("frame CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    FrameCrc {
        /// The CRC-32 the frame holds.
        stored: u32,
        /// The CRC-32 of the frame's bytes as read.
        computed: u32,
    },
    /// A frame field breaks its rule (format-spec.md, section 4).
    #[error("frame field `{field}` is invalid: {detail}")]
    FrameField {
        /// The field's name, as in the spec.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A record kind the segment's format version does not define.
    #[error("unknown record kind {kind:#04x}")]
    UnknownKind {
        /// The kind byte read.
        kind: u8,
    },
    /// A record or segment does not carry the next sequence number.
    #[error("sequence number {found} where {expected} was expected")]
    SeqGap {
        /// The seq that continues the log.
        expected: u64,
        /// The seq read.
        found: u64,
    },
    /// A commit time earlier than the one before it; commit times never go
    /// backward.
    #[error("timestamp {found} is earlier than the previous record's {previous}")]
    TimeWentBackward {
        /// The previous record's commit time, ns since the Unix epoch.
        previous: u64,
        /// The time read, ns since the Unix epoch.
        found: u64,
    },
    /// A record's stored chain hash is not the one its bytes and the record
    /// before it give.
    #[error("chain hash mismatch: stored {stored}, computed {computed}")]
    ChainBroken {
        /// The hash stored, in hex.
        stored: String,
        /// The hash computed, in hex.
        computed: String,
    },
    /// A segment whose log id is not the log's.
    #[error("segment belongs to another log (log id {found}, expected {expected})")]
    ForeignSegment {
        /// The log's id, in hex.
        expected: String,
        /// The segment's log id, in hex.
        found: String,
    },
    /// Segment numbers are not contiguous.
    #[error("segment {missing} is missing between segments {before} and {after}")]
    SegmentMissing {
        /// The number of the first missing segment.
        missing: u64,
        /// The segment present before the gap.
        before: u64,
        /// The segment present after the gap.
        after: u64,
    },
    /// A segment header does not continue the segment before it (first seq,
    /// creation time or previous hash).
    #[error("segment header does not continue the previous segment: {detail}")]
    SegmentDiscontinuity {
        /// What does not continue.
        detail: String,
    },
    /// A sealed file's index or seek table frame is invalid (format-spec.md,
    /// sections 7.2 and 7.3).
    #[error("sealed file trailer is invalid: {detail}")]
    SealedTrailer {
        /// What is wrong with it.
        detail: String,
    },
    /// A data frame of a sealed file does not decompress as its seek table
    /// says.
    #[error("sealed file frame {frame} is damaged: {detail}")]
    SealedFrame {
        /// The data frame's index in the file, from 0.
        frame: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// A sealed record's count, last seq, last hash, offset or digest is not
    /// what the segment's bytes before it give.
    #[error("seal record does not match the segment: {detail}")]
    SealMismatch {
        /// What does not match.
        detail: String,
    },
    /// The anchor file's header or an entry is invalid, or the log does not
    /// start where the anchor vouches for.
    #[error("anchor file is invalid: {detail}")]
    Anchor {
        /// What is wrong.
        detail: String,
    },
    /// A system record's payload is not laid out as its kind requires
    /// (format-spec.md, section 4.2).
    #[error("system record payload is malformed: {detail}")]
    SystemPayload {
        /// What is wrong with it.
        detail: String,
    },
    /// The hold file and the chain's hold records disagree.
    #[error("legal hold file does not match the log: {detail}")]
    HoldMismatch {
        /// How they disagree.
        detail: String,
    },
    /// Forward-secure sealing does not hold: a tag, the epochs, or the key.
    #[error("forward-secure seal broken: {detail}")]
    SealBroken {
        /// What does not hold.
        detail: String,
    },
    /// A drop, a hold or a policy that the chain's own records rule out.
    #[error("retention record breaks the rules in force: {detail}")]
    RetentionBreach {
        /// Which rule is broken, and where.
        detail: String,
    },
    /// The Merkle tree's files disagree with each other or with the records.
    #[error("Merkle tree does not match the log: {detail}")]
    TreeState {
        /// What disagrees.
        detail: String,
    },
}

/// The engine's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation that failed (`open`, `read`, `stat`, ...).
        op: &'static str,
        /// The file or directory it was on.
        path: PathBuf,
        /// The operating system's error.
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
        /// The segment with the torn tail.
        path: PathBuf,
        /// Byte offset in the segment where the tail starts.
        offset: u64,
        /// Length of the tail in bytes.
        bytes: u64,
        /// The `.cut-OFFSET` copy that could not be written.
        copy: PathBuf,
        /// Why the copy failed.
        #[source]
        source: io::Error,
    },
    /// Another `Log` (in this or another process) holds the directory's lock.
    #[error("{path} is locked by another writer (only one process may open a log for writing)")]
    Locked {
        /// The log directory.
        path: PathBuf,
    },
    /// The directory does not exist and `Options::create_if_missing` is off.
    #[error("{path}: no such log directory (Options::create_if_missing is off)")]
    NotFound {
        /// The directory asked for.
        path: PathBuf,
    },
    /// Bytes that were durable do not read back as written.
    #[error("{path}: corrupt at offset {offset}{}: {what}", seq_suffix(*.seq))]
    Corrupt {
        /// The file the damage is in.
        path: PathBuf,
        /// Byte offset in that file where it was found.
        offset: u64,
        /// The seq expected at that offset, where known.
        seq: Option<u64>,
        /// What is wrong.
        what: Corruption,
    },
    /// A writer's open found durable records of the active segment damaged
    /// (`damage`, an [`Error::Corrupt`]): nothing was changed. Opened with
    /// `Options::repair(true)` (`wormctl repair DIR`), the whole file is
    /// copied aside, the segment is cut before the damage, and the log goes
    /// on in a new segment whose `repaired` record says what was lost.
    #[error(
        "{damage}; nothing was changed. To open the log anyway, Options::repair(true) \
         (`wormctl repair DIR`, with --dry-run to see first) copies the damaged file aside \
         and goes on after the last intact record"
    )]
    NeedsRepair {
        /// The damage found.
        damage: Box<Error>,
    },
    /// `Shipping::max_lag`: the off-host copy is further behind than the
    /// option allows, and did not catch up while the append waited; the
    /// append committed nothing.
    #[error(
        "the off-host copy is {behind_ms} ms behind (its newest record is seq {shipped_seq}), \
         more than Shipping::max_lag allows: nothing was appended; see Log::ship_status for why \
         the shipper is behind"
    )]
    CopyBehind {
        /// How long ago the copy's newest record was committed, in ms.
        behind_ms: u64,
        /// That record's seq (0: nothing confirmed yet).
        shipped_seq: u64,
    },
    /// The payload is larger than `Options::payload_bytes_max`.
    #[error(
        "payload of {len} bytes exceeds the limit of {max} bytes (Options::payload_bytes_max)"
    )]
    PayloadTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// An earlier write or fdatasync failed; the log accepts no more writes
    /// until it is reopened (which runs recovery).
    #[error("log refuses writes after an earlier I/O failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: String,
    },
    /// An off-host store refused or failed a request (crate `wormlog-s3`).
    #[error("{op} {what}: {detail}")]
    Remote {
        /// The operation (`PUT`, `configure`, `verify`, ...).
        op: &'static str,
        /// What it was on: a key, a bucket or a URL.
        what: String,
        /// The store's answer or the failure.
        detail: String,
    },
    /// The Merkle tree cannot answer: a size or seq beyond it, or a log
    /// whose first records retention dropped before it had a tree.
    #[error("Merkle tree unavailable: {detail}")]
    TreeUnavailable {
        /// Why it cannot answer.
        detail: String,
    },
    /// A checkpoint or checkpoint key could not be read or verified.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The log does not hold, unchanged, what a checkpoint says it held.
    #[error("log does not match the checkpoint: {detail}")]
    CheckpointMismatch {
        /// What the log does not hold.
        detail: String,
    },
    /// The log was opened with `Log::open_read_only`.
    #[error("{path}: the log was opened read-only")]
    ReadOnly {
        /// The log directory.
        path: PathBuf,
    },
    /// The log was closed.
    #[error("log is closed")]
    Closed,
    /// A sequence number outside the log.
    #[error("no record with sequence number {seq} (the log holds {first}..={last})")]
    SeqOutOfRange {
        /// The seq asked for.
        seq: u64,
        /// The first seq the log holds (past 1 once retention dropped records).
        first: u64,
        /// The last seq the log holds.
        last: u64,
    },
    /// Retention was asked to run at a time too far ahead of the log's last
    /// record (see `Retention::clock_ahead_max`).
    #[error(
        "retention refused: the time given ({now_ns} ns) is more than {bound_ns} ns ahead of the log's last record ({last_ns} ns). If the log has only been idle that long, append a record (or run retention from the log's own writer, whose time moves on while it runs) and run it again: ages are measured from the log's own time, so that a clock set forward cannot age segments; otherwise check the clock"
    )]
    ClockAhead {
        /// The time retention was asked to run at, ns since the Unix epoch.
        now_ns: u64,
        /// The log's own time, ns since the Unix epoch: its last record's
        /// commit time when opened, advanced by the monotonic clock since.
        last_ns: u64,
        /// How far ahead of it a run may be, in ns (`clock_ahead_max`).
        bound_ns: u64,
    },
    /// Options that cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A witness has seen another history of this log (C2SP tlog-witness:
    /// it cosigned a larger tree, or finds the checkpoint inconsistent with
    /// the one it cosigned): the log was rolled back, forked or rewritten,
    /// or the checkpoint is of another copy of it. Never retried away.
    #[error("witness {witness} refuses the checkpoint: {detail}")]
    WitnessConflict {
        /// The witness's URL.
        witness: String,
        /// What it answered.
        detail: String,
    },
    /// A witness has cosigned a newer checkpoint of this log than the one
    /// sent, signed by the log's key and extended by the log (another
    /// round got there first): sign a newer checkpoint and ask again.
    #[error("witness {witness} has cosigned a newer checkpoint of this log ({size} records), which this log extends: sign a newer checkpoint and ask again")]
    WitnessAhead {
        /// The witness's URL.
        witness: String,
        /// The size it cosigned.
        size: u64,
    },
    /// A witness could not be asked, or its answer was not a cosignature
    /// by its key (down, misconfigured, or another witness at that URL).
    #[error("witness {witness} did not cosign: {detail}")]
    WitnessUnreachable {
        /// The witness's URL.
        witness: String,
        /// Why.
        detail: String,
    },
    /// An event could not be encoded as JSON, or a record's payload is not
    /// the JSON the caller asked for (feature `serde`).
    #[error("{}JSON: {detail}", seq.map(|s| format!("record {s}: ")).unwrap_or_default())]
    Json {
        /// The record whose payload did not decode; `None` when encoding.
        seq: Option<u64>,
        /// What serde_json said.
        detail: String,
    },
    /// A symbolic link where a log's file belongs. Followed, it would let
    /// whoever planted it have the writer append to, or a reader print, any
    /// file the process can reach; so it is refused, never followed.
    #[error("{path} is a symbolic link; wormlog never follows links in a log directory (remove it, and find out who put it there)")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// None of the verification keys given is the one the log was first
    /// sealed under: the operator's key is most often another log's or
    /// another era's. (A log re-sealed under a thief's key reads so too; it
    /// does not verify either way.)
    #[error("{path}: the log is sealed under verification key {sealed_under}, and the key(s) given ({}) are not it: give the key setup-keys printed for this log (a re-keyed log needs every era's key); if that is the key you gave, the log was re-sealed under another key", given.join(", "))]
    NotThisLogsKey {
        /// Where the log names its key (a segment or the anchor file).
        path: PathBuf,
        /// The id of the key the log names, hex.
        sealed_under: String,
        /// The ids of the keys given, hex.
        given: Vec<String>,
    },
    /// A checkpoint given to hold a log against is of another log (its
    /// log id): most often the operator's pairing of files, or the
    /// directory's log was replaced wholesale; either way nothing of this
    /// log was checked against it.
    #[error("{path}: the checkpoint is of log {checkpoint_log}, and this directory holds log {log}: give this log's checkpoint (if it is, the directory's log was replaced)")]
    CheckpointOfAnotherLog {
        /// The log directory.
        path: PathBuf,
        /// The log id the checkpoint names, hex.
        checkpoint_log: String,
        /// This log's id, hex.
        log: String,
    },
    /// A verification key given is not one this log was sealed under, and
    /// nothing says it is this log's: it names another log (the operator's
    /// mistake: a key of another log), or, a key of the older text form
    /// that names no log, the log holds no record of it (another log's
    /// key, or the records of its era were removed). A key that names this
    /// log and is missing from it is tampering (`Corrupt`), not this.
    #[error("{path}: verification key {key} {reason}")]
    KeyNotUsed {
        /// The log directory.
        path: PathBuf,
        /// The key's id, hex.
        key: String,
        /// Why it is not this log's, and what to do.
        reason: String,
    },
    /// A verification key was given, but the log holds no sealing-started
    /// record and its sealing key file was never announced: a setup cut
    /// short (run `setup-keys` again), or records removed from the setup
    /// on. Either way the log cannot show it was sealed under the key.
    #[error("{path}: sealing was never announced and the log holds no sealing-started record: setup-keys did not finish (run it again and keep its new key), or the log's records from its setup on were removed; the log cannot be verified with this key")]
    SealingUnfinished {
        /// The sealing key file.
        path: PathBuf,
    },
    /// A FIFO, directory, device or socket where a log's file belongs. The
    /// engine never makes one there, so, like a symbolic link, it was put
    /// there: a reader reports it as tampering with the directory.
    #[error("{path} is not a regular file (a FIFO, directory, device or socket where the log keeps a file); wormlog never makes one there (find out who put it there)")]
    NotRegular {
        /// The entry that is not a regular file.
        path: PathBuf,
    },
    /// The log directory or one of its files is writable by other users or
    /// owned by another user: they could change the log behind the writer.
    /// `detail` says what is wrong and what to do.
    #[error("{path}: unsafe permissions: {detail}")]
    UnsafePermissions {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
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
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            return Error::Symlink { path: path.into() };
        }
        if source.raw_os_error() == Some(rustix::io::Errno::ISDIR.raw_os_error())
            || source.get_ref().is_some_and(|e| e.is::<NotRegularFile>())
        {
            return Error::NotRegular { path: path.into() };
        }
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Damage in `path` at `offset` (the record expected there, where
    /// known): what an extension reports for a log file it reads.
    pub fn corrupt(
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
            Error::NeedsRepair { damage } => damage.seq(),
            Error::SeqOutOfRange { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// Why a checkpoint, a key, or a log against a checkpoint did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The note is not a checkpoint in the form format-spec.md, section 10,
    /// gives; the string says what is wrong.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// A signer or verifier key is not in Go's `note` key form; the string
    /// says what is wrong.
    #[error("malformed key: {0}")]
    BadKey(String),
    /// A signature line by the verifier's key (its name and key id) does
    /// not verify: the note was changed after it was signed.
    #[error("no valid signature by key {key_name} on the checkpoint: its line by that key does not verify (the note was changed)")]
    NoValidSignature {
        /// The verifier key's name.
        key_name: String,
    },
    /// No signature line names the verifier's key (its name and key id):
    /// the note was signed by another key than the one given, most often
    /// the wrong public key file.
    #[error("the checkpoint is signed by {signers}, not by the key given ({key_name}, key id {key_id}): check --pubkey")]
    NotSignedByKey {
        /// The verifier key's name.
        key_name: String,
        /// The verifier key's id (C2SP signed-note), in hex.
        key_id: String,
        /// Who signed the note, as its signature lines name them (name
        /// and key id each; not verified).
        signers: String,
    },
    /// A trust policy (C2SP tlog-policy) that does not parse or breaks a
    /// rule of format-spec.md 18.3; the string names the line and why.
    #[error("malformed policy: {0}")]
    BadPolicy(String),
    /// A tlog-proof that is not in the form format-spec.md 18.1 gives.
    #[error("malformed tlog-proof: {0}")]
    BadProof(String),
    /// A tlog-proof whose note verifies does not prove its record: its
    /// leaf or path does not lead to the note's root. The string says how.
    #[error("the proof does not hold: {0}")]
    ProofDoesNotHold(String),
    /// The checkpoint lacks the cosignatures its trust policy asks for
    /// (C2SP tlog-policy): the witnesses named did not cosign it.
    #[error("the checkpoint does not meet the policy's quorum ({quorum}): no valid cosignature from {missing}")]
    QuorumNotMet {
        /// The policy's quorum, as written.
        quorum: String,
        /// The policy's names of the witnesses without a valid
        /// cosignature on the note.
        missing: String,
    },
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

/// `std::result::Result` with the engine's [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error a `Storage` wraps in an [`std::io::Error`] when a name the
/// log keeps a file under holds something else (a FIFO, directory, device
/// or socket): the engine reports it as [`Error::NotRegular`], which
/// a reader treats as tampering, not as a failing disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRegularFile;

impl std::fmt::Display for NotRegularFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a regular file (a FIFO, directory, device or socket where a file belongs)")
    }
}

impl std::error::Error for NotRegularFile {}
