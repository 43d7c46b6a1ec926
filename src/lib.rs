//! wormlog: an embedded write-once-read-many log for tamper-evident audit
//! trails. Records are appended to segment files, framed with a length, a
//! CRC-32 and a BLAKE3 hash chained to the record before; appends from many
//! threads share one write and one fdatasync (group commit); recovery cuts
//! only a torn tail and reports damage to durable data.
//!
//! ```no_run
//! let log = wormlog::Log::open("audit", wormlog::Options::default())?;
//! let r = log.append(br#"{"actor":"alice","action":"login"}"#)?;
//! assert_eq!(log.get(r.seq)?.payload(), br#"{"actor":"alice","action":"login"}"#);
//! log.verify()?;
//! # Ok::<(), wormlog::Error>(())
//! ```
//!
//! The on-disk format is specified in `format-spec.md`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_debug_implementations)]
#![deny(missing_docs)]

// Layers, lowest first. A module imports only modules listed before it
// (a module of a lower layer, or an earlier one of its own); nothing imports
// `log` (test helpers for users are the crate wormlog-testing, above this
// one). `.ci/layers` checks this list against the `use crate::` lines.
//
// 1. error      the error types
// 2. format     pure encodings of every on-disk structure and file name; no I/O
// 3. storage    the I/O trait, the real and the crash-simulating file systems,
//               the handle pool; knows no segment
// 4. background, checkpoint, cosign, policy, tlog_proof, witness, options, state
//               the engine's shared worker threads and timer (knows no
//               log); signed notes of a log's head; witness cosignatures,
//               trust policies, the tlog-proof text a proved append
//               returns and the tlog-witness client (feature signing); how
//               a log is opened; plain record, position and report types
// 5. walk       the one frame walker (decode, seq and chain checks, digest, seal)
//    segment    segment files, their in-memory view and sparse index
//    sealed     reading sealed files through the shared frame cache
//    anchor     the anchor and legal-hold files
//    fss        the forward-secure sealing key file
//    permissions
//               owners, modes and links the writer accepts in a log directory
//    tree       the Merkle tree's tiles as stored (files and partial tiles)
// 6. shared     what a log's writer, readers and threads share
//    barrier    group commit's leader/follower hand-off; knows no file
//    task       blocking work on the engine's threads for async callers
//    writer     encodes, writes, syncs, rolls and publishes a group
// 7. read, merkle, seal, retention, recovery, verify, segment_file, ext, json
//               the operations, each on the layers below (ext: what an
//               extension crate such as wormlog-s3 needs of the files; json:
//               typed events and the JSON-lines schema, feature serde)
// 8. engine     what a log's handle and its jobs share: group commit into
//               the writer, retention, automatic checkpoints, shipping runs
//    prover     proved appends: one signed checkpoint per group, a proof each
//    control    the live writer's control socket (wormctl reaches a running log)
//    upkeep     the log's background jobs on the shared pool (flushes,
//               sealing, epoch tags, tree catch-up, shipping, async commits)
// 9. log        the public handle: the API, its open and close
mod anchor;
mod background;
mod barrier;
mod checkpoint;
mod control;
#[cfg(feature = "signing")]
mod cosign;
mod engine;
mod error;
pub mod ext;
pub mod format;
mod fss;
#[cfg(feature = "serde")]
pub mod json;
mod log;
mod merkle;
mod options;
mod permissions;
#[cfg(feature = "signing")]
mod policy;
#[cfg(feature = "signing")]
mod prover;
mod read;
mod recovery;
mod retention;
mod seal;
mod sealed;
mod segment;
mod segment_file;
mod shared;
mod state;
pub mod storage;
#[cfg(feature = "async")]
mod task;
#[cfg(feature = "signing")]
mod tlog_proof;
mod tree;
mod upkeep;
mod verify;
mod walk;
#[cfg(feature = "signing")]
mod witness;
mod writer;

#[cfg(feature = "signing")]
pub use checkpoint::CheckpointPublicKey;
pub use checkpoint::{
    AutoCheckpoints, Checkpoint, CheckpointKey, CheckpointSink, FileSink, RetentionPoint,
};
#[cfg(feature = "signing")]
pub use cosign::{cosigned_message, Cosigned, WitnessKey, WitnessPublicKey};
pub use error::{CheckpointError, Corruption, Error, Result};
pub use format::{
    ChainPos, Hash, ParseHashError, PreviousEra, RecordKind, SystemEvent, VerificationKey,
};
#[cfg(feature = "async")]
pub use log::Append;
pub use log::Log;
pub use merkle::{ConsistencyProof, InclusionProof, TlogExport, TreeHead};
pub use options::{Clock, Durability, Options, Retention, Sealing, Shipper, Shipping};
#[cfg(feature = "signing")]
pub use policy::{Accepted, Policy};
#[cfg(feature = "signing")]
pub use prover::Proved;
pub use read::Iter;
pub use retention::RetentionReport;
pub use segment_file::{SegmentFile, SegmentFileInfo};
pub use state::{
    CacheStats, FrameInfo, Head, Receipt, Record, RecoveryReport, Repair, SegmentInfo, ShipStatus,
    TailCut, WriteStats, SYNC_BUCKETS, SYNC_BUCKET_MIN_US,
};
#[cfg(feature = "async")]
pub use task::Task;
#[cfg(feature = "signing")]
pub use tlog_proof::{ProvedLeaf, TlogProof};
pub use verify::{verify_file, verify_file_with, SealingReport, VerifyProgress, VerifyReport};
#[cfg(feature = "signing")]
pub use witness::{cosign_note, Witness};
