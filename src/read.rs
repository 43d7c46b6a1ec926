//! Reads by sequence number and by time, across segments, through each
//! segment's sparse index. Readers see a snapshot: only what was committed
//! when the read began.

use crate::error::{Corruption, Error, Result};
use crate::format::SEGMENT_HEADER_LEN;
use crate::segment::Segment;
use crate::shared::Shared;
use crate::state::{Record, Visible};
use crate::walk::FrameWalker;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// Iterator over committed records, oldest first. Stops after the first error.
pub struct Iter {
    segments: Vec<Arc<Segment>>,
    visible: Visible,
    seg_idx: usize,
    walk: Option<FrameWalker>,
    next_seq: u64,
    last_seq: u64,
    done: bool,
    /// Engine records only (see [`Iter::system_only`]).
    system_only: bool,
}

pub(crate) fn iter(shared: &Shared, range: impl RangeBounds<u64>) -> Result<Iter> {
    let visible = *shared.visible.read();
    let segments = shared.segments.read().clone();
    let first = segments.first().map_or(1, |s| s.header.first_seq);
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    }
    .max(first);
    let last_seq = match range.end_bound() {
        Bound::Included(&e) => e,
        Bound::Excluded(&e) => e.saturating_sub(1),
        Bound::Unbounded => u64::MAX,
    }
    .min(visible.head.seq);
    // The segment holding `start`: the last whose first seq is <= start.
    let seg_idx = segments
        .partition_point(|s| s.header.first_seq <= start)
        .saturating_sub(1);
    Ok(Iter {
        segments,
        visible,
        seg_idx,
        walk: None,
        next_seq: start,
        last_seq,
        done: start > last_seq,
        system_only: false,
    })
}

pub(crate) fn get(shared: &Shared, seq: u64) -> Result<Record> {
    let out_of_range = || Error::SeqOutOfRange {
        seq,
        first: shared.first_seq(),
        last: shared.visible.read().head.seq,
    };
    match iter(shared, seq..=seq)?.next() {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(e),
        None => Err(out_of_range()),
    }
}

pub(crate) fn first_at_or_after(shared: &Shared, timestamp_ns: u64) -> Result<Option<Record>> {
    let visible = *shared.visible.read();
    if timestamp_ns > visible.head.timestamp_ns {
        return Ok(None);
    }
    let segments = shared.segments.read().clone();
    // A segment's creation time bounds its records from below and every
    // earlier segment's records from above, so the answer lies in the last
    // segment created before `timestamp_ns`, or a later one.
    let i = segments
        .partition_point(|s| s.header.created_ns < timestamp_ns)
        .saturating_sub(1);
    let Some(seg) = segments.get(i) else {
        return Ok(None);
    };
    seg.ensure_index(limit_of(seg, &visible)?)?;
    let start = seg
        .index
        .read()
        .seek_time(timestamp_ns)
        .map_or(seg.header.first_seq, |e| e.seq);
    for rec in iter(shared, start..)? {
        let rec = rec?;
        if rec.timestamp() >= timestamp_ns {
            return Ok(Some(rec));
        }
    }
    Ok(None)
}

/// Bytes of `seg` that readers may look at.
fn limit_of(seg: &Segment, visible: &Visible) -> Result<u64> {
    if seg.number == visible.active_segment {
        Ok(visible.active_len)
    } else {
        seg.file_len()
    }
}

impl Iter {
    fn open_walk(&mut self) -> Result<FrameWalker> {
        let seg = &self.segments[self.seg_idx];
        let limit = limit_of(seg, &self.visible)?;
        let mut start = SEGMENT_HEADER_LEN as u64;
        if self.next_seq > seg.header.first_seq {
            seg.ensure_index(limit)?;
            if let Some(e) = seg.index.read().seek_seq(self.next_seq) {
                start = e.offset;
            }
        }
        Ok(FrameWalker::new(seg.file.clone(), start, limit))
    }

    fn step(&mut self) -> Result<Option<Record>> {
        loop {
            if self.next_seq > self.last_seq || self.seg_idx >= self.segments.len() {
                return Ok(None);
            }
            // A closed segment ends where the next one begins.
            if let Some(next) = self.segments.get(self.seg_idx + 1) {
                if self.next_seq >= next.header.first_seq {
                    self.seg_idx += 1;
                    self.walk = None;
                    continue;
                }
            }
            // Not `take` and put back: that moved the walker (and its
            // digest state, 2 KiB) twice per record, which doubled the cost
            // of a point read.
            if self.walk.is_none() {
                self.walk = Some(self.open_walk()?);
            }
            let Some(walk) = self.walk.as_mut() else {
                unreachable!("set above");
            };
            let seg = &self.segments[self.seg_idx];
            let frame = if self.system_only {
                walk.next_checked()
            } else {
                walk.next_owned()
            };
            let frame = frame.map_err(|e| e.into_error(&seg.path, Some(self.next_seq)))?;
            let Some((offset, f)) = frame else {
                // End of this segment: the next must start where it stopped.
                self.seg_idx += 1;
                self.walk = None;
                if let Some(next) = self.segments.get(self.seg_idx) {
                    if next.header.first_seq > self.next_seq {
                        return Err(Error::corrupt(
                            &seg.path,
                            seg.file_len()?,
                            Some(self.next_seq),
                            Corruption::SeqGap {
                                expected: self.next_seq,
                                found: next.header.first_seq,
                            },
                        ));
                    }
                }
                continue;
            };
            let seq = f.head().seq;
            if seq < self.next_seq {
                continue;
            }
            if seq != self.next_seq {
                return Err(Error::corrupt(
                    &seg.path,
                    offset,
                    Some(self.next_seq),
                    Corruption::SeqGap {
                        expected: self.next_seq,
                        found: seq,
                    },
                ));
            }
            self.next_seq += 1;
            if self.system_only && !f.head().kind.is_system() {
                continue;
            }
            return Ok(Some(f.into_record(seg.number, offset)));
        }
    }
}

impl Iter {
    /// Yields engine records only: user records are still checked as the
    /// walk passes them, but their payloads are not read into records (a
    /// large one streams past, never held). For tools that look for what
    /// the engine recorded (durability, holds) in segments of any records.
    pub fn system_only(mut self) -> Iter {
        self.system_only = true;
        self
    }
}

impl Iterator for Iter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("next_seq", &self.next_seq)
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}
