//! Retention's plan: which whole sealed segments, oldest first, the policy
//! lets go, and the anchor entry that records their dropping so that what
//! remains still verifies (format-spec.md, "Retention"). The anchor and
//! hold files themselves are anchor.rs; carrying a run out is log.rs.

use crate::error::{Corruption, Error, Result};
use crate::format::{AnchorEntry, DroppedSegment, Hash, FIRST_SEQ_AT};
use crate::options::Retention;
use crate::segment::Segment;
use std::sync::Arc;
use std::time::Duration;

/// What a retention run did (or, for a plan, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// A legal hold stopped the run: nothing was dropped.
    pub held: bool,
    /// Numbers of the segments dropped, oldest first.
    pub dropped_segments: Vec<u64>,
    /// How many records those segments held.
    pub dropped_records: u64,
    /// The bytes their sealed files took on disk.
    pub freed_bytes: u64,
    /// The first seq the log holds afterwards.
    pub first_seq: u64,
    /// Segments the policy lets go that stay until their copy off the host
    /// is confirmed (`Shipping::retention_waits`).
    pub awaiting_ship: Vec<u64>,
}

/// The oldest sealed segments the policy lets go, and the bytes they free.
pub(crate) fn plan(
    segments: &[Arc<Segment>],
    policy: &Retention,
    now_ns: u64,
) -> Result<Vec<Arc<Segment>>> {
    let mut total: u64 = 0;
    for s in segments {
        total += match &s.sealed {
            Some(m) => m.compressed_len,
            None => s.file_len()?,
        };
    }
    let mut drop = Vec::new();
    // Never the last segment (the active one), never past a raw one.
    for s in &segments[..segments.len().saturating_sub(1)] {
        let Some(meta) = &s.sealed else { break };
        let age = Duration::from_nanos(now_ns.saturating_sub(meta.index.last_timestamp_ns));
        if age < policy.min_age {
            break;
        }
        let expired = policy.max_age.is_some_and(|m| age >= m);
        let over_budget = policy.max_total_bytes.is_some_and(|m| total > m);
        if !(expired || over_budget) {
            break;
        }
        total -= meta.compressed_len;
        drop.push(s.clone());
    }
    Ok(drop)
}

/// The anchor entry for dropping `drop`, the segments before `keep`.
pub(crate) fn entry_for(
    drop: &[Arc<Segment>],
    keep: &Segment,
    now_ns: u64,
    prev_entry_hash: Hash,
) -> Result<AnchorEntry> {
    let mut dropped = Vec::with_capacity(drop.len());
    for s in drop {
        let meta = s.sealed.as_ref().expect("only sealed segments are dropped");
        dropped.push(DroppedSegment {
            segment: s.number,
            first_seq: s.header.first_seq,
            last_seq: meta.index.last_seq,
            last_hash: meta.index.last_hash,
        });
    }
    let last = dropped.last().expect("at least one segment is dropped");
    // Never anchor a chain that does not hold together.
    if keep.header.first_seq != last.last_seq + 1 || keep.header.prev_hash != last.last_hash {
        return Err(Error::corrupt(
            &keep.path,
            FIRST_SEQ_AT as u64,
            Some(keep.header.first_seq),
            Corruption::SegmentDiscontinuity {
                detail: format!(
                    "does not continue segment {} (seq {}), so retention will not drop it",
                    last.segment, last.last_seq
                ),
            },
        ));
    }
    Ok(AnchorEntry {
        time_ns: now_ns,
        first_seq: keep.header.first_seq,
        prev_hash: keep.header.prev_hash,
        prev_entry_hash,
        dropped,
    })
}
