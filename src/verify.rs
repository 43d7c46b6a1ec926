//! Full verification: every frame, CRC, seq, timestamp and chain link, from
//! the genesis hash to the head, across segments.

use crate::error::{Corruption, Error, Result};
use crate::format::{chain_hash, genesis_hash, hex, Hash, SEGMENT_HEADER_LEN};
use crate::log::{Head, Shared};
use crate::segment::{FrameScanner, Segment};
use std::sync::Arc;

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: u64,
    pub records: u64,
    /// Bytes of segment files checked (headers and frames).
    pub bytes: u64,
    /// The last record checked; equals the log's head at the time of the call.
    pub head: Head,
}

/// Chain state carried from one record to the next.
struct Cursor {
    next_seq: u64,
    prev_hash: Hash,
    last_ts: u64,
}

pub(crate) fn verify_log(shared: &Shared) -> Result<VerifyReport> {
    // A snapshot: the segments and the visible end as of now. Frames being
    // written past `active_len` are not looked at, so they are never
    // mistaken for damage.
    let visible = *shared.visible.read();
    let segments: Vec<Arc<Segment>> = shared.segments.read().clone();
    let mut cur = Cursor {
        next_seq: 1,
        prev_hash: genesis_hash(&shared.log_id),
        last_ts: 0,
    };
    let mut report = VerifyReport {
        segments: 0,
        records: 0,
        bytes: 0,
        head: visible.head,
    };
    for (i, seg) in segments.iter().enumerate() {
        let limit = if seg.number == visible.active_segment {
            visible.active_len
        } else {
            seg.file_len()?
        };
        check_header(shared, seg, &cur)?;
        let is_last = i + 1 == segments.len() || seg.number == visible.active_segment;
        let end_seq = if is_last {
            visible.head.seq
        } else {
            segments[i + 1].header.first_seq - 1
        };
        report.records += verify_frames(seg, limit, end_seq, &mut cur)?;
        report.bytes += limit;
        report.segments += 1;
        if is_last {
            break;
        }
    }
    debug_assert_eq!(cur.next_seq - 1, visible.head.seq);
    if cur.prev_hash != visible.head.hash {
        return Err(Error::corrupt(
            &segments[segments.len() - 1].path,
            visible.active_len,
            Some(visible.head.seq),
            Corruption::ChainBroken {
                stored: hex(&visible.head.hash),
                computed: hex(&cur.prev_hash),
            },
        ));
    }
    Ok(report)
}

fn check_header(shared: &Shared, seg: &Segment, cur: &Cursor) -> Result<()> {
    let h = &seg.header;
    let bad = |offset, what| Err(Error::corrupt(&seg.path, offset, Some(cur.next_seq), what));
    if h.log_id != shared.log_id {
        return bad(
            16,
            Corruption::ForeignSegment {
                expected: hex(&shared.log_id),
                found: hex(&h.log_id),
            },
        );
    }
    if h.first_seq != cur.next_seq {
        return bad(
            40,
            Corruption::SeqGap {
                expected: cur.next_seq,
                found: h.first_seq,
            },
        );
    }
    if h.created_ns < cur.last_ts {
        return bad(
            48,
            Corruption::TimeWentBackward {
                previous: cur.last_ts,
                found: h.created_ns,
            },
        );
    }
    if h.prev_hash != cur.prev_hash {
        return bad(
            56,
            Corruption::SegmentDiscontinuity {
                detail: format!(
                    "header continues chain hash {}, previous record's is {}",
                    hex(&h.prev_hash),
                    hex(&cur.prev_hash)
                ),
            },
        );
    }
    Ok(())
}

/// Checks a segment's frames from its header to `limit`; they must run
/// exactly through `end_seq`.
fn verify_frames(seg: &Segment, limit: u64, end_seq: u64, cur: &mut Cursor) -> Result<u64> {
    let mut scan = FrameScanner::new(seg.file.clone(), SEGMENT_HEADER_LEN as u64, limit);
    let mut records = 0;
    let mut last_ts = cur.last_ts.max(seg.header.created_ns);
    loop {
        let expected = cur.next_seq;
        let (offset, f) = match scan.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Err(e.into_error(&seg.path, Some(expected))),
        };
        let bad = |what| Err(Error::corrupt(&seg.path, offset, Some(expected), what));
        if f.seq != expected || f.seq > end_seq {
            return bad(Corruption::SeqGap {
                expected,
                found: f.seq,
            });
        }
        if f.timestamp_ns < last_ts {
            return bad(Corruption::TimeWentBackward {
                previous: last_ts,
                found: f.timestamp_ns,
            });
        }
        if f.synced_through > offset || f.synced_through < SEGMENT_HEADER_LEN as u64 {
            return bad(Corruption::FrameField {
                field: "synced_through",
                detail: format!("{} is not within 96..={offset}", f.synced_through),
            });
        }
        let computed = chain_hash(
            &cur.prev_hash,
            f.seq,
            f.timestamp_ns,
            f.kind as u8,
            f.payload,
        );
        if computed != f.hash {
            return bad(Corruption::ChainBroken {
                stored: hex(&f.hash),
                computed: hex(&computed),
            });
        }
        cur.next_seq += 1;
        cur.prev_hash = f.hash;
        last_ts = f.timestamp_ns;
        records += 1;
    }
    cur.last_ts = last_ts;
    if cur.next_seq != end_seq + 1 {
        return Err(Error::corrupt(
            &seg.path,
            scan.offset(),
            Some(cur.next_seq),
            Corruption::SeqGap {
                expected: end_seq + 1,
                found: cur.next_seq,
            },
        ));
    }
    Ok(records)
}
