//! Retention's plan: which whole sealed segments, oldest first, the policy
//! lets go, and the anchor entry that records their dropping so that what
//! remains still verifies (format-spec.md, "Retention"). The anchor and
//! hold files themselves are anchor.rs; carrying a run out is log.rs.

use crate::error::{Corruption, Error, Result};
use crate::format::{
    AnchorEntry, AnchorExt, DroppedSegment, Hash, RecordKind, RecordedTag, SealingState,
    SystemEvent, FIRST_SEQ_AT,
};
use crate::options::Retention;
use crate::segment::Segment;
use crate::shared::Shared;
use crate::state::LogState;
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

/// Refuses a policy weaker than the one the chain records: a minimum age
/// can be raised and never lowered, a clock bound lowered and never raised
/// (a WORM policy is COMPLIANCE-mode, format-spec.md 16.4 (b)).
pub(crate) fn check_not_weaker(
    recorded: Option<crate::format::RetentionRule>,
    asked: crate::format::RetentionRule,
) -> Result<()> {
    let Some(r) = recorded else {
        return Ok(());
    };
    if asked.min_age_ns < r.min_age_ns || asked.clock_ahead_max_ns > r.clock_ahead_max_ns {
        return Err(Error::InvalidOptions(format!(
            "the log's recorded retention policy has a minimum age of {} and a clock bound of \
             {}; a policy may raise the minimum age and lower the bound, never the other way \
             (asked: minimum age {}, clock bound {})",
            say_ns(r.min_age_ns),
            say_ns(r.clock_ahead_max_ns),
            say_ns(asked.min_age_ns),
            say_ns(asked.clock_ahead_max_ns)
        )));
    }
    Ok(())
}

/// A duration in ns as people read it (`365d`, `3h`, `1500ms`, `7ns`).
fn say_ns(ns: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1, "ns"),
    ];
    let (n, u) = UNITS
        .iter()
        .find(|(n, _)| ns.is_multiple_of(*n) && ns >= *n)
        .unwrap_or(&(1, "ns"));
    format!("{}{u}", ns / n)
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

/// What a format-3 anchor entry for dropping `drop` (the segments before
/// `keep`) records beyond the dropped list, read from the records about to
/// go: the tree's root over every record before `keep`, and the sealing
/// state they end in, continuing `prev` (the newest entry's) and, for a
/// tag whose sealing-started record an older drop removed, `key_hint` (the
/// key file's key id).
pub(crate) fn ext_for(
    shared: &Shared,
    drop: &[Arc<Segment>],
    keep: &Segment,
    prev: Option<SealingState>,
    key_hint: Option<[u8; 8]>,
) -> Result<AnchorExt> {
    let size = keep.header.first_seq - 1;
    let tree = match crate::merkle::head_at(shared, size, false) {
        Ok(head) => Some((size, head.root)),
        Err(Error::TreeUnavailable { .. }) => None,
        Err(e) => return Err(e),
    };
    let mut sealing = prev;
    let mut state = LogState::default();
    let mut before = drop[0].header.start();
    let version_of = |seq: u64| {
        drop.iter()
            .rev()
            .find(|s| s.header.first_seq <= seq)
            .map_or(0, |s| s.header.version)
    };
    // Memory: one record at a time, whatever the dropped segments hold.
    for r in crate::read::iter(shared, drop[0].header.first_seq..keep.header.first_seq)? {
        let r = r?;
        // The root recorded is the tree's; its leaves of the records about
        // to go are checked against them first, or a leaf changed in the
        // files would be recorded as the truth (a red team's finding).
        // (The tree was fed to the head by `head_at` above.)
        if tree.is_some() && !crate::merkle::holds_leaf_of(shared, &r)? {
            return Err(Error::corrupt(
                shared.dir.join(crate::format::names::tree_file_name(0)),
                (r.seq() - 1) * 32,
                Some(r.seq()),
                Corruption::TreeState {
                    detail: format!(
                        "the tree's leaf for record {} is not its hash: retention will not \
                         record a root over it",
                        r.seq()
                    ),
                },
            ));
        }
        let event = match SystemEvent::decode(r.kind(), r.payload()) {
            Some(Ok(e)) => Some(e),
            Some(Err(_)) | None => None,
        };
        match &event {
            Some(SystemEvent::SealingStarted { key_id, .. }) => {
                sealing = Some(SealingState {
                    key_id: *key_id,
                    last_tag: None,
                });
            }
            Some(SystemEvent::EpochTag {
                first_epoch,
                epoch,
                tag,
            }) if r.kind() == RecordKind::EpochTag => {
                let key_id = sealing.map(|s| s.key_id).or(key_hint);
                sealing = key_id.map(|key_id| SealingState {
                    key_id,
                    last_tag: Some(RecordedTag {
                        version: version_of(r.seq()),
                        first_epoch: *first_epoch,
                        epoch: *epoch,
                        seq: before.seq,
                        hash: before.hash,
                        facts: state.tag_facts(before.timestamp_ns),
                        tag: *tag,
                    }),
                });
            }
            Some(e) => state.apply(e),
            None => {}
        }
        before = crate::format::ChainPos {
            seq: r.seq(),
            hash: *r.hash(),
            timestamp_ns: r.timestamp(),
        };
    }
    let newest_ns = drop
        .last()
        .and_then(|s| s.sealed.as_ref())
        .map_or(before.timestamp_ns, |m| m.index.last_timestamp_ns);
    Ok(AnchorExt {
        tree,
        sealing,
        newest_ns,
    })
}

/// The anchor entry for dropping `drop`, the segments before `keep`.
pub(crate) fn entry_for(
    drop: &[Arc<Segment>],
    keep: &Segment,
    now_ns: u64,
    prev_entry_hash: Hash,
    ext: Option<AnchorExt>,
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
        ext,
    })
}
