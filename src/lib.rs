//! wormlog: an embedded write-once-read-many log for tamper-evident audit
//! trails. Records are appended to segment files, framed with a length, a
//! CRC-32 and a BLAKE3 hash chained to the record before; appends from many
//! threads share one write and one fdatasync (group commit); recovery cuts
//! only a torn tail and reports damage to durable data.
//!
//! ```no_run
//! let log = wormlog::Log::open("audit", wormlog::Options::default())?;
//! let r = log.append(br#"{"actor":"alice","action":"login"}"#)?;
//! assert_eq!(log.get(r.seq)?.payload().as_ref(), br#"{"actor":"alice","action":"login"}"#);
//! log.verify()?;
//! # Ok::<(), wormlog::Error>(())
//! ```
//!
//! The on-disk format is specified in `format-spec.md`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_debug_implementations)]

mod checkpoint;
mod commit;
mod error;
pub mod format;
mod log;
mod options;
mod read;
mod recovery;
mod retention;
mod seal;
mod segment;
mod segment_file;
pub mod storage;
mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointKey, CheckpointPublicKey};
pub use error::{Corruption, Error, Result};
pub use format::{RecordKind, SystemEvent};
pub use log::{CacheStats, FrameInfo, Head, Log, Receipt, Record, SegmentInfo, WriteStats};
pub use options::{Clock, Durability, Options, Retention, Sealing};
pub use read::Iter;
pub use retention::RetentionReport;
pub use segment_file::{SegmentFile, SegmentFileInfo};
pub use verify::{verify_file, verify_file_with, VerifyProgress, VerifyReport};
