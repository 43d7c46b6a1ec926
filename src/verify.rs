//! Full verification: every frame, CRC, seq, timestamp and chain link, seal
//! records and whole-segment digests, sealed files' indexes, and the links
//! between segments, from the genesis hash (or the retention anchor) to the
//! head. Segments are checked independently on all cores (each carries the
//! hash its chain starts from), then linked in order.

use crate::error::{Corruption, Error, Result};
use crate::format::{
    genesis_hash, hex, Hash, RecordKind, SystemEvent, SEGMENT_HEADER_LEN, ZSTD_FRAME_MAGIC,
};
use crate::log::{Head, Shared};
use crate::recovery::check_log_start;
use crate::retention::Anchor;
use crate::seal::{check_seal_record, compressed_digest, open_sealed};
use crate::segment::{parse_sealed_file_name, BatchedDigest, ChainWalker, FrameScanner, Segment};
use crate::storage::{FsStorage, Storage};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: u64,
    /// Of `segments`, how many are sealed files.
    pub sealed_segments: u64,
    pub records: u64,
    /// Uncompressed bytes of segments checked (headers and frames).
    pub bytes: u64,
    /// The first record checked, and the chain hash it continues from.
    pub first_seq: u64,
    pub start_hash: Hash,
    /// The last record checked; for a log, its head when the check began.
    pub head: Head,
}

/// What one segment holds, as found by checking it alone.
#[derive(Debug)]
struct Summary {
    records: u64,
    bytes: u64,
    last_seq: u64,
    last_hash: Hash,
    last_ts: u64,
    /// The segment ends with a seal record.
    sealed_record: bool,
    /// The first record's event, if it is an engine record.
    first_event: Option<SystemEvent>,
    /// Anchor entries that retention records name: (offset, seq, entry hash).
    anchor_refs: Vec<(u64, u64, Hash)>,
}

/// How far a verification has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyProgress {
    /// Uncompressed segment bytes checked so far.
    pub bytes_checked: u64,
    /// Uncompressed segment bytes the verification will check.
    pub bytes_total: u64,
}

/// Reports progress every this many bytes of a segment.
const PROGRESS_STEP: u64 = 4 << 20;

pub(crate) fn verify_log(
    shared: &Shared,
    progress: &(dyn Fn(VerifyProgress) + Sync),
) -> Result<VerifyReport> {
    // A snapshot: the segments and the visible end as of now. Frames being
    // written past `active_len` are not looked at, so they are never
    // mistaken for damage.
    let visible = *shared.visible.read();
    let segments: Vec<Arc<Segment>> = shared
        .segments
        .read()
        .iter()
        .filter(|s| s.number <= visible.active_segment)
        .cloned()
        .collect();
    let storage = &*shared.options.storage;
    let limits: Vec<Option<u64>> = segments
        .iter()
        .map(|s| (s.number == visible.active_segment).then_some(visible.active_len))
        .collect();
    let mut bytes_total = 0;
    for (s, l) in segments.iter().zip(&limits) {
        bytes_total += match l {
            Some(l) => *l,
            None => s.file_len()?,
        };
    }
    let checked = AtomicU64::new(0);
    let report_bytes = |n: u64| {
        let done = checked.fetch_add(n, Ordering::Relaxed) + n;
        progress(VerifyProgress {
            bytes_checked: done.min(bytes_total),
            bytes_total,
        });
    };
    let summaries = check_all(storage, &segments, &limits, &report_bytes);
    let first = &segments[0];
    let anchor = shared.anchor_on_disk()?;
    check_log_start(first, &anchor)?;
    check_newest_anchor(shared, &segments, &anchor)?;
    let (first_seq, start_hash) = (first.header.first_seq, first.header.prev_hash);
    if first_seq == 1 && start_hash != genesis_hash(&shared.log_id) {
        return Err(Error::corrupt(
            &first.path,
            56,
            Some(1),
            Corruption::SegmentDiscontinuity {
                detail: "the first segment does not continue this log's genesis hash".into(),
            },
        ));
    }
    let mut report = VerifyReport {
        segments: 0,
        sealed_segments: 0,
        records: 0,
        bytes: 0,
        first_seq,
        start_hash,
        head: visible.head,
    };
    let mut prev: Option<(&Segment, Summary)> = None;
    let mut expect = (first_seq, start_hash, 0u64);
    for (seg, summary) in segments.iter().zip(summaries) {
        check_link(shared, seg, expect)?;
        if let Some((p, ps)) = &prev {
            check_closed_end(p, ps, seg, &summary)?;
        }
        let summary = summary?;
        for (offset, seq, hash) in &summary.anchor_refs {
            if !anchor.entries.iter().any(|(_, h)| h == hash) {
                return Err(Error::corrupt(
                    &seg.path,
                    *offset,
                    Some(*seq),
                    Corruption::Anchor {
                        detail: format!(
                            "retention record names anchor entry {}, which the anchor file lacks",
                            hex(hash)
                        ),
                    },
                ));
            }
        }
        report.segments += 1;
        report.sealed_segments += u64::from(seg.sealed.is_some());
        report.records += summary.records;
        report.bytes += summary.bytes;
        expect = (summary.last_seq + 1, summary.last_hash, summary.last_ts);
        prev = Some((seg, summary));
    }
    let (next_seq, last_hash, _) = expect;
    if next_seq - 1 != visible.head.seq || last_hash != visible.head.hash {
        let last = &segments[segments.len() - 1];
        return Err(Error::corrupt(
            &last.path,
            visible.active_len,
            Some(visible.head.seq),
            Corruption::ChainBroken {
                stored: hex(&visible.head.hash),
                computed: hex(&last_hash),
            },
        ));
    }
    Ok(report)
}

/// The newest anchor entry says where the retained log begins; a segment
/// must begin exactly there, continuing the hash it names.
fn check_newest_anchor(shared: &Shared, segments: &[Arc<Segment>], anchor: &Anchor) -> Result<()> {
    let Some((newest, _)) = anchor.entries.last() else {
        return Ok(());
    };
    let found = segments
        .iter()
        .find(|s| s.header.first_seq == newest.first_seq);
    match found {
        Some(s) if s.header.prev_hash == newest.prev_hash => Ok(()),
        _ => Err(Error::corrupt(
            shared.dir.join(crate::retention::ANCHOR_FILE),
            anchor.len,
            Some(newest.first_seq),
            Corruption::Anchor {
                detail: format!(
                    "the newest entry says the log continues at seq {} from {}, and no segment does",
                    newest.first_seq,
                    hex(&newest.prev_hash)
                ),
            },
        )),
    }
}

/// Checks each segment on its own, on all cores.
fn check_all(
    storage: &dyn Storage,
    segments: &[Arc<Segment>],
    limits: &[Option<u64>],
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Result<Summary>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(segments.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Summary>>>> =
        segments.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seg) = segments.get(i) else { break };
                *results[i].lock() = Some(check_segment(storage, seg, limits[i], progress));
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("every segment was checked"))
        .collect()
}

/// The header continues the chain where the previous segment (or the start
/// of the log) left it.
fn check_link(shared: &Shared, seg: &Segment, expect: (u64, Hash, u64)) -> Result<()> {
    let (next_seq, prev_hash, last_ts) = expect;
    let h = &seg.header;
    let bad = |offset, what| Err(Error::corrupt(&seg.path, offset, Some(next_seq), what));
    if h.log_id != shared.log_id {
        return bad(
            16,
            Corruption::ForeignSegment {
                expected: hex(&shared.log_id),
                found: hex(&h.log_id),
            },
        );
    }
    if h.first_seq != next_seq {
        return bad(
            40,
            Corruption::SeqGap {
                expected: next_seq,
                found: h.first_seq,
            },
        );
    }
    if h.created_ns < last_ts {
        return bad(
            48,
            Corruption::TimeWentBackward {
                previous: last_ts,
                found: h.created_ns,
            },
        );
    }
    if h.prev_hash != prev_hash {
        return bad(
            56,
            Corruption::SegmentDiscontinuity {
                detail: format!(
                    "header continues chain hash {}, previous record's is {}",
                    hex(&h.prev_hash),
                    hex(&prev_hash)
                ),
            },
        );
    }
    Ok(())
}

/// A closed segment ends with its seal record, unless recovery repaired it
/// (then the next segment begins by saying so).
fn check_closed_end(
    prev: &Segment,
    summary: &Summary,
    next: &Segment,
    next_summary: &Result<Summary>,
) -> Result<()> {
    if summary.sealed_record {
        return Ok(());
    }
    let repaired = matches!(
        next_summary,
        Ok(Summary { first_event: Some(SystemEvent::Repaired { segment, .. }), .. }) if *segment == prev.number
    );
    if repaired {
        return Ok(());
    }
    Err(Error::corrupt(
        &prev.path,
        summary.bytes,
        Some(summary.last_seq + 1),
        Corruption::SealMismatch {
            detail: format!(
                "closed segment has no seal record, and segment {} does not say it was repaired",
                next.number
            ),
        },
    ))
}

/// Checks one segment alone: its frames from its header's chain hash to
/// `limit` (the whole segment when `None`), its seal record, and, for a
/// sealed file, the trailer's index against the frames.
fn check_segment(
    storage: &dyn Storage,
    seg: &Segment,
    limit: Option<u64>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary> {
    // A sealed file is read through a private reader: verification streams
    // every frame once and would only evict what readers keep cached.
    let private;
    let seg = match &seg.sealed {
        Some(_) => {
            private = open_sealed(storage, &seg.path, Some(seg.number), None)?;
            &private
        }
        None => seg,
    };
    let limit = match limit {
        Some(l) => l,
        None => seg.file_len()?,
    };
    let h = &seg.header;
    let mut digest = BatchedDigest::new();
    digest.update(&h.encode());
    let mut s = Summary {
        records: 0,
        bytes: limit,
        last_seq: h.first_seq - 1,
        last_hash: h.prev_hash,
        last_ts: h.created_ns,
        sealed_record: false,
        first_event: None,
        anchor_refs: Vec::new(),
    };
    let points = seg
        .sealed
        .as_ref()
        .map(|m| &m.index.points[..])
        .unwrap_or(&[]);
    let mut next_point = 0;
    let mut scan = FrameScanner::new(seg.file.clone(), SEGMENT_HEADER_LEN as u64, limit);
    let mut walker = ChainWalker::new(h);
    let mut reported = 0;
    loop {
        if scan.offset() - reported >= PROGRESS_STEP {
            progress(scan.offset() - reported);
            reported = scan.offset();
        }
        let expected = walker.last_seq + 1;
        let (offset, f) = match scan.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(e) => return Err(e.into_error(&seg.path, Some(expected))),
        };
        let bad = |what| Err(Error::corrupt(&seg.path, offset, Some(expected), what));
        // The seal record is checked against the records before it.
        let before = walker;
        if let Err(what) = walker.step(offset, &f) {
            return bad(what);
        }
        if s.sealed_record {
            return bad(Corruption::SealMismatch {
                detail: "a record follows the seal record".into(),
            });
        }
        if f.kind == RecordKind::Sealed {
            if let Err(what) = check_seal_record(
                f.payload,
                seg,
                s.records,
                before.last_seq,
                &before.last_hash,
                offset,
                digest.hasher(),
            ) {
                return bad(what);
            }
            s.sealed_record = true;
        }
        // An engine record is part of the proof (what was opened, cut,
        // repaired, dropped): one whose payload does not follow 4.2 is damage
        // even though its chain hash holds.
        let event = match SystemEvent::decode(f.kind, f.payload) {
            None => None,
            Some(Ok(event)) => Some(event),
            Some(Err(what)) => return bad(what),
        };
        if let Some(SystemEvent::RetentionApplied {
            anchor_entry_hash, ..
        }) = event
        {
            s.anchor_refs.push((offset, f.seq, anchor_entry_hash));
        }
        if s.records == 0 {
            s.first_event = event;
        }
        // Index points name frame starts in order; one that names anything
        // else would send readers to the wrong place.
        if let Some(p) = points.get(next_point) {
            if p.offset < offset {
                return bad(Corruption::SealedTrailer {
                    detail: format!("index point at offset {} is not a record's start", p.offset),
                });
            }
            if p.offset == offset {
                if p.seq != f.seq || p.timestamp_ns != f.timestamp_ns {
                    return bad(Corruption::SealedTrailer {
                        detail: format!(
                            "index point says seq {} at {}, record is seq {}",
                            p.seq, p.offset, f.seq
                        ),
                    });
                }
                next_point += 1;
            }
        }
        digest.update(f.raw);
        s.records += 1;
        s.last_seq = f.seq;
        s.last_hash = f.hash;
        s.last_ts = f.timestamp_ns;
    }
    if let Some(meta) = &seg.sealed {
        let i = &meta.index;
        let digest = compressed_digest(storage, seg, meta.data_len)?;
        let mismatch =
            if digest != i.compressed_digest {
                Some(format!(
                    "compressed frames hash to {}, index says {}",
                    hex(&digest),
                    hex(&i.compressed_digest)
                ))
            } else if next_point != points.len() {
                Some(format!(
                    "{} index points past the last record",
                    points.len() - next_point
                ))
            } else if (
                i.uncompressed_len,
                i.record_count,
                i.last_seq,
                i.last_hash,
                i.last_timestamp_ns,
            ) != (scan.offset(), s.records, s.last_seq, s.last_hash, s.last_ts)
            {
                Some(format!(
                "index says {} records through seq {} in {} bytes, file holds {} through {} in {}",
                i.record_count, i.last_seq, i.uncompressed_len, s.records, s.last_seq, scan.offset()
            ))
            } else {
                None
            };
        if let Some(detail) = mismatch {
            return Err(Error::corrupt(
                &seg.path,
                meta.compressed_len,
                Some(s.last_seq),
                Corruption::SealedTrailer { detail },
            ));
        }
    }
    progress(limit.saturating_sub(reported));
    Ok(s)
}

/// Verifies one segment file on its own, raw or sealed: its header, every
/// frame and chain link from the hash its header continues, its seal record
/// and digest, and a sealed file's trailer. It cannot tell whether the file
/// belongs where it is found: verify the whole log for that.
pub fn verify_file(path: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_file_with(&FsStorage, path.as_ref())
}

/// [`verify_file`] on any storage.
pub fn verify_file_with(storage: &dyn Storage, path: &Path) -> Result<VerifyReport> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // Raw or sealed is told by the first bytes; a file taken out of its log
    // may have any name, and then its header (or index) is trusted.
    let mut magic = [0u8; 4];
    let n = storage
        .open_read(path)
        .and_then(|f| f.read_full_at(&mut magic, 0))
        .map_err(|e| Error::io("read", path, e))?;
    let seg = if n == 4 && magic == ZSTD_FRAME_MAGIC {
        open_sealed(storage, path, parse_sealed_file_name(name), None)?
    } else {
        Segment::open(
            storage,
            path.to_path_buf(),
            crate::segment::parse_segment_file_name(name),
        )?
    };
    let summary = check_segment(storage, &seg, None, &|_| ())?;
    Ok(VerifyReport {
        segments: 1,
        sealed_segments: u64::from(seg.sealed.is_some()),
        records: summary.records,
        bytes: summary.bytes,
        first_seq: seg.header.first_seq,
        start_hash: seg.header.prev_hash,
        head: Head {
            seq: summary.last_seq,
            hash: summary.last_hash,
            timestamp_ns: summary.last_ts,
        },
    })
}
