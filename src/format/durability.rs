//! The durability mode, as log-opened and segment-rolled records carry it
//! (format-spec.md, their payload tables): which acknowledgement a writer gave.

use std::time::Duration;

/// When an append is acknowledged, and when data reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `append` returns after an fdatasync covers the record. A crash loses
    /// no acknowledged record.
    Sync,
    /// `append` returns once the record is written to the OS; a background
    /// thread starts an fdatasync `max_delay` after the previous one ended,
    /// and `Log::sync` forces one. A crash can lose the records acknowledged
    /// in the last `max_delay` plus one fdatasync's duration before it (and
    /// any group write that fdatasync waited for): a record is durable only
    /// when the fdatasync after it returns. It never leaves a gap: the log
    /// stays a prefix.
    Batched {
        /// How long after an fdatasync ends the next one starts.
        max_delay: Duration,
    },
    /// `append` returns once the record is in the log's write buffer,
    /// which is written to the OS when it holds 64 KiB, 10 ms after the
    /// last write at the latest, and before any read, sync, roll or close
    /// of this `Log` (one write syscall for many records). fdatasync only
    /// when a segment rolls, on `Log::sync` and on close. A crash of the
    /// process alone can lose the records of the last 10 ms; a crash of the
    /// machine, those since the last fdatasync. Never a gap: the log stays
    /// a prefix.
    Buffered,
}

pub(super) struct DurabilityText<'a>(pub(super) &'a Durability);

impl std::fmt::Display for DurabilityText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Durability::Sync => write!(f, "sync"),
            Durability::Batched { max_delay } => {
                write!(f, "batched (fdatasync {max_delay:?} after the last)")
            }
            Durability::Buffered => write!(f, "buffered"),
        }
    }
}

/// Durability on disk: a mode byte (0 sync, 1 batched, 2 buffered) and the
/// batched mode's delay in ns (0 for the others).
pub(super) fn put_durability(out: &mut Vec<u8>, d: &Durability) {
    let (mode, delay) = match d {
        Durability::Sync => (0u8, 0u64),
        Durability::Batched { max_delay } => {
            (1, u64::try_from(max_delay.as_nanos()).unwrap_or(u64::MAX))
        }
        Durability::Buffered => (2, 0),
    };
    out.push(mode);
    out.extend_from_slice(&delay.to_le_bytes());
}
