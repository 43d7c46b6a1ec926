//! Opening a log: create it, or find its segments, check their headers, and
//! recover the active segment's tail (format-spec.md, "Recovery").
//!
//! Only the active segment is read in full; closed segments are read as far
//! as their headers. A torn tail (bytes that were never durable) is cut and
//! the cut is logged; damage to bytes that were durable fails the open, or,
//! with `Options::repair`, is moved aside.

use crate::anchor::{check_log_start, load_anchor, read_hold, Anchor};
use crate::error::{Corruption, Error, Result};
use crate::format::names::{
    is_tmp_segment_name, parse_sealed_file_name, parse_segment_file_name, sealed_file_name,
    segment_file_name, LOCK_FILE,
};
use crate::format::{
    decode_frame, frame_padded_len, hex, ChainPos, Decoded, RecordKind, SegmentHeader, SystemEvent,
    FIRST_SEQ_AT, FORMAT_VERSION, LOG_ID_AT, SEGMENT_HEADER_LEN,
};
use crate::options::Options;
use crate::sealed::{open_sealed, SealedReads};
use crate::segment::{Segment, SegmentEnd, SparseIndex};
use crate::state::LogState;
use crate::storage::{read_chunks, write_new_file, DirLock, ReadFile, Storage, WriteFile};
use crate::walk::{BatchedDigest, Check, FrameWalker, WalkError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the active segment says of forward-secure sealing, for the
/// writer's open: the epoch of its last tag, and the key of its last
/// sealing-started record (tags before it are an earlier key's).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TagScan {
    /// The last tag's last epoch, after the last sealing-started record.
    pub epoch: Option<u64>,
    /// The key id of the last sealing-started record.
    pub started: Option<[u8; 8]>,
    /// Where that record is a rotation's: `Some(None)` until the old
    /// key's final tag, then `Some(Some(its last epoch))`. That tag is the
    /// old key's, not counted in `epoch` (format-spec.md 10a).
    pub old_key_final: Option<Option<u64>>,
}

pub(crate) struct Recovered {
    /// `None` for a read-only open, which takes no lock.
    pub lock: Option<Box<dyn DirLock>>,
    pub log_id: [u8; 16],
    pub segments: Vec<Arc<Segment>>,
    /// Where the log ends: appends (or a follower's reads) go on from here.
    pub end: SegmentEnd,
    /// The active segment opened to append; `None` for a read-only open.
    pub file: Option<Box<dyn WriteFile>>,
    /// Engine records to write (durably) before the log takes appends.
    pub events: Vec<SystemEvent>,
    /// Repairs to finish once `events` are durable: cut these files here.
    pub truncate_after_open: Vec<Truncation>,
    pub anchor: Anchor,
    /// The active segment's last tag and sealing-started record: a crash
    /// between a tag and its key's evolution leaves the old key, and one
    /// between a setup's record and its announcement an unannounced key.
    pub tag_scan: TagScan,
    /// The hold and retention policy in force at the end of the log, as the
    /// records say (for a log whose active segment is format 1, which has
    /// no log-state record: the hold file, and no policy).
    pub state: LogState,
    /// The log ended with a clean close (or was just created).
    pub ends_closed: bool,
}

/// A file to cut back to `len` bytes.
pub(crate) struct Truncation {
    pub path: PathBuf,
    pub len: u64,
}

/// A segment file found in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SegmentName {
    number: u64,
    sealed: bool,
}

/// How many times a read-only open looks again at a directory that a
/// writer changed while it was being read.
const SNAPSHOT_ATTEMPTS: u32 = 5;

/// Opens the log in `dir` for writing, or with `read_only` for reading
/// alone: then nothing is created, locked, removed, cut or written, and the
/// log is taken as it is now (a tail being written, or torn, is left out).
///
/// A reader takes no lock, so a running writer may roll, seal or drop
/// segments between its listing the directory and opening the files: the
/// newest listed segment is found sealed (its successor was created after
/// the listing), or a listed file is gone. Such an open is tried again from
/// a fresh listing; what persists is reported as it is.
pub(crate) fn recover(
    dir: &Path,
    options: &Options,
    reads: &SealedReads,
    read_only: bool,
) -> Result<Recovered> {
    if !read_only {
        return recover_once(dir, options, reads, false);
    }
    let mut attempt = 1;
    loop {
        match recover_once(dir, options, reads, true) {
            Err(e) if attempt < SNAPSHOT_ATTEMPTS && moved_under_reader(&e) => {
                std::thread::sleep(std::time::Duration::from_millis(5 << attempt));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Errors a concurrent writer's roll, seal or retention can cause in a
/// lock-free reader.
fn moved_under_reader(e: &Error) -> bool {
    match e {
        Error::Corrupt {
            what: Corruption::SegmentMissing { .. },
            ..
        } => true,
        Error::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

fn recover_once(
    dir: &Path,
    options: &Options,
    reads: &SealedReads,
    read_only: bool,
) -> Result<Recovered> {
    let storage = &*options.storage;
    let lock = open_dir(dir, options, read_only)?;
    let names = list_segments(storage, dir, read_only)?;
    let mut segments = open_segments(storage, dir, &names, reads)?;
    if read_only {
        catch_up(storage, dir, reads, &mut segments)?;
    }
    let Some(active) = segments.last().cloned() else {
        return match lock {
            Some(lock) => create_log(dir, options, lock),
            None => Err(Error::NotFound { path: dir.into() }),
        };
    };
    if active.sealed.is_some() {
        // Sealing always follows the creation of the next segment, so the
        // newest segment is never sealed: the active one was removed.
        return Err(Error::corrupt(
            &active.path,
            0,
            None,
            Corruption::SegmentMissing {
                missing: active.number + 1,
                before: active.number,
                after: active.number + 1,
            },
        ));
    }
    let log_id = active.header.log_id;
    let anchor = load_anchor(storage, dir, &log_id, !read_only)?;
    check_log_start(&segments[0], &anchor)?;
    let tail = if read_only {
        read_only_tail(options, segments, active)?
    } else {
        recover_active(dir, options, segments, active)?
    };
    Ok(Recovered {
        lock,
        log_id,
        segments: tail.segments,
        end: tail.end,
        file: tail.file,
        events: tail.events,
        truncate_after_open: tail.truncate_after_open,
        anchor,
        state: tail.state,
        tag_scan: tail.tag_scan,
        ends_closed: tail.ends_closed,
    })
}

/// Checks that the log directory exists (a writer creates it where the
/// options allow) and, for a writer, takes its lock.
fn open_dir(dir: &Path, options: &Options, read_only: bool) -> Result<Option<Box<dyn DirLock>>> {
    let storage = &*options.storage;
    let exists = storage
        .dir_exists(dir)
        .map_err(|e| Error::io("stat", dir, e))?;
    if !exists {
        if !options.create_if_missing || read_only {
            return Err(Error::NotFound { path: dir.into() });
        }
        storage
            .create_dir_all(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
        // The new directory's own entry is durable only once its parent is
        // synced: without it a crash could lose the whole new log.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            storage
                .sync_dir(parent)
                .map_err(|e| Error::io("fsync directory", parent, e))?;
        }
    }
    if read_only {
        // A reader may be an auditor of another uid, or read a copy whose
        // owners and modes no longer say anything: it judges the bytes.
        return Ok(None);
    }
    // Before the lock: the lock file is one of the files judged, and a
    // directory another user owns may refuse us its lock with a bare EACCES.
    crate::permissions::check_for_writer(storage, dir)?;
    let lock = storage.lock_dir(dir).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Error::Locked { path: dir.into() },
        _ => Error::io("lock", dir.join(LOCK_FILE), e),
    })?;
    Ok(Some(lock))
}

fn create_log(dir: &Path, options: &Options, lock: Box<dyn DirLock>) -> Result<Recovered> {
    let log_id = new_log_id()?;
    let header = SegmentHeader::first(log_id, (options.clock)());
    let (segment, file) = Segment::create_active(&*options.storage, dir, header)?;
    Ok(Recovered {
        lock: Some(lock),
        log_id,
        segments: vec![segment.clone()],
        end: SegmentEnd::empty(segment),
        file: Some(file),
        events: vec![created_event(log_id)],
        truncate_after_open: Vec::new(),
        anchor: Anchor::default(),
        state: LogState::default(),
        tag_scan: TagScan::default(),
        ends_closed: true,
    })
}

fn created_event(log_id: [u8; 16]) -> SystemEvent {
    SystemEvent::LogCreated {
        format_version: FORMAT_VERSION,
        log_id,
        engine: concat!("wormlog ", env!("CARGO_PKG_VERSION")).into(),
    }
}

/// Where both a raw segment and its sealed file exist, sealing was
/// interrupted after the sealed file was complete and renamed into place:
/// check that it holds this segment, and finish by removing the raw file.
fn finish_interrupted_seals(
    storage: &dyn Storage,
    dir: &Path,
    raw: &mut Vec<u64>,
    sealed: &[u64],
) -> Result<()> {
    let mut kept = Vec::with_capacity(raw.len());
    for &n in raw.iter() {
        if sealed.binary_search(&n).is_err() {
            kept.push(n);
            continue;
        }
        let raw_path = dir.join(segment_file_name(n));
        let sealed_path = dir.join(sealed_file_name(n));
        let raw_seg = Segment::open(storage, raw_path.clone(), Some(n))?;
        let sealed_seg = open_sealed(storage, &sealed_path, Some(n), None)?;
        if sealed_seg.header != raw_seg.header
            || sealed_seg.file_len()? != raw_seg.file_len()?
            || !same_bytes(&raw_seg, &sealed_seg)?
        {
            return Err(Error::corrupt(
                &sealed_path,
                0,
                None,
                Corruption::SealedTrailer {
                    detail: format!("does not hold the same segment as {}", raw_path.display()),
                },
            ));
        }
        storage
            .remove_file(&raw_path)
            .map_err(|e| Error::io("remove", &raw_path, e))?;
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync directory", dir, e))?;
    }
    *raw = kept;
    Ok(())
}

/// Whether two views of one segment hold the same bytes (both the same
/// length): a raw segment and the sealed file made from it must, or one of
/// them is damaged or was replaced, and taking either would hide it.
fn same_bytes(a: &Segment, b: &Segment) -> Result<bool> {
    let mut other = vec![0u8; 1 << 20];
    let mut at = 0u64;
    let mut same = true;
    read_chunks(&*a.file, &a.path, 0, a.file_len()?, &mut |chunk| {
        let got = b
            .file
            .read_full_at(&mut other[..chunk.len()], at)
            .map_err(|e| Error::from_read(&b.path, None, e))?;
        same = got == chunk.len() && other[..got] == *chunk;
        at += chunk.len() as u64;
        Ok(same)
    })?;
    Ok(same)
}

/// The segments in `dir`, oldest first, each with whether it is sealed. A
/// writer first removes what an interrupted creation left and finishes
/// interrupted seals; a reader changes nothing and takes a sealed file over
/// the raw one it is being made from.
fn list_segments(storage: &dyn Storage, dir: &Path, read_only: bool) -> Result<Vec<SegmentName>> {
    let mut raw = Vec::new();
    let mut sealed = Vec::new();
    for name in storage
        .list_dir(dir)
        .map_err(|e| Error::io("list", dir, e))?
    {
        if is_tmp_segment_name(&name) && !read_only {
            // A segment or sealed file whose creation did not finish: the
            // file it was made from (if any) is still in place.
            let path = dir.join(&name);
            storage
                .remove_file(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        } else if let Some(n) = parse_segment_file_name(&name) {
            raw.push(n);
        } else if let Some(n) = parse_sealed_file_name(&name) {
            sealed.push(n);
        }
    }
    raw.sort_unstable();
    sealed.sort_unstable();
    if read_only {
        // Where sealing is being finished, the sealed file is complete.
        raw.retain(|n| sealed.binary_search(n).is_err());
    } else {
        finish_interrupted_seals(storage, dir, &mut raw, &sealed)?;
    }
    let mut names: Vec<SegmentName> = raw
        .iter()
        .map(|&number| SegmentName {
            number,
            sealed: false,
        })
        .chain(sealed.iter().map(|&number| SegmentName {
            number,
            sealed: true,
        }))
        .collect();
    names.sort_unstable();
    Ok(names)
}

/// A reader lists the directory, then opens segment after segment while a
/// writer may go on rolling and sealing. When the newest segment it opened
/// turns out sealed, the writer created a later one after the listing:
/// list again and open the newer ones, until the newest is raw. (Bounded:
/// a writer that outruns it that often leaves the error to be reported.)
fn catch_up(
    storage: &dyn Storage,
    dir: &Path,
    reads: &SealedReads,
    segments: &mut Vec<Arc<Segment>>,
) -> Result<()> {
    for _ in 0..64 {
        let Some(last) = segments.last() else {
            return Ok(());
        };
        if last.sealed.is_none() {
            return Ok(());
        }
        let last = last.number;
        let newer: Vec<SegmentName> = list_segments(storage, dir, true)?
            .into_iter()
            .filter(|n| n.number > last)
            .collect();
        if newer.first().map(|n| n.number) != Some(last + 1) {
            // Nothing newer (or a gap): the check after this reports it.
            return Ok(());
        }
        segments.extend(open_segments(storage, dir, &newer, reads)?);
    }
    Ok(())
}

/// Opens every segment named, oldest first, and checks that each header
/// follows the one before.
fn open_segments(
    storage: &dyn Storage,
    dir: &Path,
    names: &[SegmentName],
    reads: &SealedReads,
) -> Result<Vec<Arc<Segment>>> {
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(names.len());
    for &name in names {
        let seg = open_segment(storage, dir, name, reads)?;
        if let Some(prev) = segments.last() {
            check_follows(prev, &seg)?;
        }
        segments.push(Arc::new(seg));
    }
    Ok(segments)
}

fn open_segment(
    storage: &dyn Storage,
    dir: &Path,
    name: SegmentName,
    reads: &SealedReads,
) -> Result<Segment> {
    let n = name.number;
    let sealed_path = dir.join(sealed_file_name(n));
    if name.sealed {
        return open_sealed(storage, &sealed_path, Some(n), Some(reads));
    }
    match Segment::open(storage, dir.join(segment_file_name(n)), Some(n)) {
        // A writer sealed it after we listed the directory (only a reader
        // can see that: a writer holds the lock).
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            open_sealed(storage, &sealed_path, Some(n), Some(reads))
        }
        other => other,
    }
}

/// A segment's header must follow its predecessor's: the next number, the
/// same log, and no earlier first seq or creation time.
fn check_follows(prev: &Segment, seg: &Segment) -> Result<()> {
    if seg.number != prev.number + 1 {
        return Err(Error::corrupt(
            &seg.path,
            0,
            None,
            Corruption::SegmentMissing {
                missing: prev.number + 1,
                before: prev.number,
                after: seg.number,
            },
        ));
    }
    if seg.header.log_id != prev.header.log_id {
        return Err(Error::corrupt(
            &seg.path,
            LOG_ID_AT as u64,
            None,
            Corruption::ForeignSegment {
                expected: hex(prev.header.log_id),
                found: hex(seg.header.log_id),
            },
        ));
    }
    if seg.header.first_seq < prev.header.first_seq
        || seg.header.created_ns < prev.header.created_ns
    {
        return Err(Error::corrupt(
            &seg.path,
            FIRST_SEQ_AT as u64,
            Some(seg.header.first_seq),
            Corruption::SegmentDiscontinuity {
                detail: format!(
                    "first seq {} / created {} precede segment {}'s {} / {}",
                    seg.header.first_seq,
                    seg.header.created_ns,
                    prev.number,
                    prev.header.first_seq,
                    prev.header.created_ns
                ),
            },
        ));
    }
    Ok(())
}

/// The active segment as recovery leaves it.
struct Tail {
    segments: Vec<Arc<Segment>>,
    end: SegmentEnd,
    file: Option<Box<dyn WriteFile>>,
    events: Vec<SystemEvent>,
    truncate_after_open: Vec<Truncation>,
    state: LogState,
    tag_scan: TagScan,
    /// The active segment ended with a clean close.
    ends_closed: bool,
}

/// Where a scan of the active segment stopped early, and why.
#[derive(Debug, Clone)]
struct Damage {
    offset: u64,
    what: Corruption,
    /// The bytes there are known to be as written: a CRC-valid frame that
    /// does not continue the chain cannot be a torn write.
    certain: bool,
}

/// A repaired record found in the active segment: segment `segment` was
/// cut back to `offset` bytes, or is still to be.
#[derive(Debug, Clone, Copy)]
struct RepairDone {
    segment: u64,
    offset: u64,
}

/// The valid prefix of the active segment, and what ended it.
struct Scan {
    /// Bytes of the valid prefix.
    end: u64,
    /// The prefix's last record (or what the header continues).
    at: ChainPos,
    records: u64,
    index: SparseIndex,
    repaired: Vec<RepairDone>,
    /// BLAKE3 of the valid prefix's bytes.
    digest: BatchedDigest,
    /// Kind of the prefix's last record.
    last_kind: Option<RecordKind>,
    damage: Option<Damage>,
    /// The state the prefix's records tell, once a log-state record was
    /// read (format 2 segments); `None` before.
    state: Option<LogState>,
    /// The epoch the prefix's last epoch-tag record sealed through.
    tag_scan: TagScan,
    /// The prefix ends with a clean close: no writer was writing after it.
    ends_closed: bool,
}

impl Scan {
    /// The end of the log once this scan's prefix, cut at `len`, is the
    /// active segment `seg`.
    fn into_end(self, seg: Arc<Segment>, len: u64) -> (SegmentEnd, SparseIndex) {
        let end = SegmentEnd {
            segment: seg,
            len,
            at: self.at,
            records: self.records,
            digest: self.digest,
        };
        (end, self.index)
    }
}

fn scan_active(seg: &Segment, file_len: u64) -> Result<Scan> {
    let digest = BatchedDigest::of_header(&seg.header);
    let start = seg.header.start();
    scan_from(seg, SEGMENT_HEADER_LEN as u64, start, 0, digest, file_len)
}

/// Scans frames from `from` (where the chain stands at `at` after
/// `records` records whose bytes `digest` has been given) up to
/// `file_len`, as far as they are valid.
fn scan_from(
    seg: &Segment,
    from: u64,
    at: ChainPos,
    records: u64,
    digest: BatchedDigest,
    file_len: u64,
) -> Result<Scan> {
    let mut walk = FrameWalker::new(seg.file.clone(), from, file_len)
        .of_version(seg.header.version)
        .checking(Check::Chain, at)
        .digest_from(digest, records);
    let mut index = SparseIndex {
        entries: Vec::new(),
        complete: true,
    };
    let mut repaired = Vec::new();
    let mut last_kind = None;
    let mut ends_closed = false;
    let mut state: Option<LogState> = None;
    let mut tag_scan = TagScan::default();
    let damage = loop {
        let (offset, f) = match walk.next_checked() {
            Ok(Some(x)) => x,
            Ok(None) => break None,
            Err(WalkError::Io(e)) => return Err(Error::io("read", &seg.path, e)),
            Err(WalkError::Bad {
                offset,
                what,
                certain,
            }) => {
                break Some(Damage {
                    offset,
                    what,
                    certain,
                })
            }
        };
        // A format-2 segment begins in the default state unless its
        // log-state record says otherwise.
        if state.is_none() && seg.header.version >= 2 && offset == SEGMENT_HEADER_LEN as u64 {
            state = Some(LogState::default());
        }
        let event = f.system_event();
        let f = f.head();
        match event {
            Some(Ok(SystemEvent::Repaired {
                segment, offset, ..
            })) => repaired.push(RepairDone { segment, offset }),
            Some(Ok(SystemEvent::EpochTag { epoch, .. })) => match tag_scan.old_key_final {
                Some(None) => tag_scan.old_key_final = Some(Some(epoch)),
                _ => tag_scan.epoch = Some(epoch),
            },
            // Tags before a sealing-started record are an earlier key's
            // (a re-keyed log), and so is a rotation's first tag after it:
            // the key file is not to evolve past them.
            Some(Ok(SystemEvent::SealingStarted {
                key_id, previous, ..
            })) => {
                let rotation = matches!(previous, Some(crate::format::PreviousEra::Rotated(_)));
                tag_scan = TagScan {
                    epoch: None,
                    started: Some(key_id),
                    old_key_final: rotation.then_some(None),
                }
            }
            Some(Ok(e @ SystemEvent::LogState { .. })) => {
                state.get_or_insert_with(LogState::default).apply(&e)
            }
            Some(Ok(e)) => {
                if let Some(st) = &mut state {
                    st.apply(&e);
                }
            }
            _ => {}
        }
        index.note(f.seq, f.timestamp_ns, offset);
        // A clean close ends with log-closed (and, where the log is sealed,
        // the tag of its sealed close right after).
        ends_closed = f.kind == RecordKind::LogClosed
            || (f.kind == RecordKind::EpochTag && last_kind == Some(RecordKind::LogClosed));
        last_kind = Some(f.kind);
    };
    Ok(Scan {
        ends_closed,
        end: walk.offset(),
        at: walk.at(),
        records: walk.records(),
        index,
        repaired,
        last_kind,
        damage,
        state,
        tag_scan,
        digest: walk.into_digest().expect("the walk digests"),
    })
}

/// The active segment as a reader finds it: its valid prefix. Damage in
/// durable bytes is an error, as for a writer; a tail that does not parse
/// (being written right now, or torn) is left out and left alone.
fn read_only_tail(
    options: &Options,
    segments: Vec<Arc<Segment>>,
    seg: Arc<Segment>,
) -> Result<Tail> {
    let file_len = seg.file_len()?;
    let scan = scan_active(&seg, file_len)?;
    if let Some(d) = durable_damage(&seg, &scan, file_len, options)? {
        return Err(Error::corrupt(
            &seg.path,
            d.offset,
            Some(scan.at.next_seq()),
            d.what,
        ));
    }
    let len = scan.end;
    let tag_scan = scan.tag_scan;
    // What the records say of the hold and policy in force (a reader's
    // retention plan is held to the recorded policy too).
    let state = resolve_state(
        options,
        seg.path.parent().unwrap_or(Path::new("")),
        &segments,
        &seg,
        scan.state.clone(),
    )?;
    let ends_closed = scan.ends_closed;
    let (end, index) = scan.into_end(seg.clone(), len);
    *seg.index.write() = index;
    Ok(Tail {
        segments,
        end,
        file: None,
        events: Vec::new(),
        truncate_after_open: Vec::new(),
        state,
        tag_scan,
        ends_closed,
    })
}

/// What a read-only log finds when it looks again (see [`follow_active`]).
pub(crate) enum Follow {
    /// Nothing new.
    Same,
    /// New records in the active segment; the end has moved past them.
    Grew,
    /// A newer segment exists, or the active segment is not as it was
    /// read: the log must be opened anew.
    Reopen,
}

/// For a read-only log: takes in what a writer committed to the active
/// segment since `end`, reading on from there (the bytes before are not
/// read again), and moves `end` past it. Damage in durable bytes is an
/// error, as on open; a tail still being written is left for the next look.
pub(crate) fn follow_active(options: &Options, dir: &Path, end: &mut SegmentEnd) -> Result<Follow> {
    let seg = end.segment.clone();
    let file_len = seg.file_len()?;
    if file_len < end.len {
        return Ok(Follow::Reopen);
    }
    let mut follow = Follow::Same;
    let mut last_kind = None;
    if file_len > end.len {
        let digest = end.digest.clone();
        let scan = scan_from(&seg, end.len, end.at, end.records, digest, file_len)?;
        if let Some(d) = durable_damage(&seg, &scan, file_len, options)? {
            return Err(Error::corrupt(
                &seg.path,
                d.offset,
                Some(scan.at.next_seq()),
                d.what,
            ));
        }
        if scan.end > end.len {
            debug_assert!(scan.at.seq > end.at.seq, "new bytes hold new records");
            last_kind = scan.last_kind;
            let len = scan.end;
            let (grown, index) = scan.into_end(seg.clone(), len);
            let mut kept = seg.index.write();
            for e in &index.entries {
                kept.note(e.seq, e.timestamp_ns, e.offset);
            }
            *end = grown;
            follow = Follow::Grew;
        }
    }
    // A writer rolls after the seal record; a repair rolls with none, and
    // then the active segment stops growing. Either way a newer segment is
    // in the directory.
    let may_have_rolled = matches!(follow, Follow::Same) || last_kind == Some(RecordKind::Sealed);
    if may_have_rolled
        && list_segments(&*options.storage, dir, true)?
            .iter()
            .any(|n| n.number > seg.number)
    {
        return Ok(Follow::Reopen);
    }
    Ok(follow)
}

/// The damage that ended the scan, if it hit bytes that had been durable;
/// `None` when the scan ended cleanly or at a torn tail.
fn durable_damage(
    seg: &Segment,
    scan: &Scan,
    file_len: u64,
    options: &Options,
) -> Result<Option<Damage>> {
    let Some(d) = scan.damage.clone() else {
        return Ok(None);
    };
    let durable = d.certain
        || (scan.ends_closed && !torn_opening(seg, d.offset, file_len)?)
        || damage_was_durable(
            &*seg.file,
            &seg.path,
            d.offset,
            file_len,
            scan.at.next_seq(),
            frame_padded_len(options.payload_bytes_max),
        )?;
    Ok(durable.then_some(d))
}

/// After a clean close the only bytes a crash can have torn are the next
/// writer's first group, which begins with its log-opened record, or the
/// tail-cut record of a recovery that cut an earlier such tear, or (for a
/// sealed log) the tag of the epochs it was closed for: bytes that are all
/// zero so far, or whose first frame header says one of those kinds.
/// Anything else after a close was not being written by anyone.
fn torn_opening(seg: &Segment, offset: u64, file_len: u64) -> Result<bool> {
    const KIND_AT: usize = 32;
    let mut head = [0u8; KIND_AT + 1];
    let n = (file_len - offset).min(head.len() as u64) as usize;
    let got = seg
        .file
        .read_full_at(&mut head[..n], offset)
        .map_err(|e| Error::io("read", &seg.path, e))?;
    let head = &head[..got];
    Ok(head.iter().all(|&b| b == 0)
        || head.get(KIND_AT).is_none()
        || [
            RecordKind::LogOpened as u8,
            RecordKind::EpochTag as u8,
            RecordKind::TailCut as u8,
        ]
        .contains(&head[KIND_AT])
        || kind_in_a_lost_sector(head, offset))
}

/// Whether the frame head `head` (read at `offset`) crosses into a sector
/// that came back as zeros at or before its kind byte: a power cut can keep
/// a frame's first sector and lose the next (format-spec.md 11), which
/// leaves the kind unreadable, not a user record's (the seventh red team
/// found a sealed close's tag torn so, which made the log unopenable).
fn kind_in_a_lost_sector(head: &[u8], offset: u64) -> bool {
    const SECTOR: u64 = 512;
    let kind_at = head.len() as u64 - 1;
    let boundary = (offset + kind_at) / SECTOR * SECTOR;
    boundary > offset && head[(boundary - offset) as usize..].iter().all(|&b| b == 0)
}

fn damage_was_durable(
    file: &dyn ReadFile,
    path: &Path,
    damage_at: u64,
    file_len: u64,
    expected_seq: u64,
    frame_bytes_max: usize,
) -> Result<bool> {
    const WINDOW: u64 = 1 << 20;
    let mut buf = Vec::new();
    let mut win_start = damage_at + 8;
    while win_start < file_len {
        // Read the window plus room for a typical frame that starts near its end.
        let win_end = (win_start + WINDOW + 64 * 1024).min(file_len);
        buf.resize((win_end - win_start) as usize, 0);
        let n = file
            .read_full_at(&mut buf, win_start)
            .map_err(|e| Error::io("read", path, e))?;
        buf.truncate(n);
        let mut at = 0usize;
        while (at as u64) < WINDOW && at < buf.len() {
            let candidate = match decode_frame(&buf[at..]) {
                Decoded::Frame(f) => Some((f.seq, f.synced_through)),
                // A candidate longer than this log's records can be is noise;
                // skipping it keeps a hostile file from making us read
                // hundreds of megabytes per offset.
                Decoded::NeedMore(need)
                    if need <= frame_bytes_max
                        && win_start + at as u64 + need as u64 <= file_len =>
                {
                    let mut big = vec![0u8; need];
                    let got = file
                        .read_full_at(&mut big, win_start + at as u64)
                        .map_err(|e| Error::io("read", path, e))?;
                    match decode_frame(&big[..got]) {
                        Decoded::Frame(f) => Some((f.seq, f.synced_through)),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some((seq, synced_through)) = candidate {
                if seq >= expected_seq && synced_through > damage_at {
                    return Ok(true);
                }
            }
            at += 8;
        }
        win_start += WINDOW;
    }
    Ok(false)
}

/// Recovers the active segment `seg` for a writer: its valid prefix is
/// kept, a torn tail after it is cut (and logged), damage to durable bytes
/// fails the open or, with `Options::repair`, is moved aside.
fn recover_active(
    dir: &Path,
    options: &Options,
    segments: Vec<Arc<Segment>>,
    seg: Arc<Segment>,
) -> Result<Tail> {
    let file_len = seg.file_len()?;
    let scan = scan_active(&seg, file_len)?;
    if let Some(d) = durable_damage(&seg, &scan, file_len, options)? {
        if !options.repair {
            return Err(Error::NeedsRepair {
                damage: Box::new(Error::corrupt(
                    &seg.path,
                    d.offset,
                    Some(scan.at.next_seq()),
                    d.what,
                )),
            });
        }
        return repair(dir, options, segments, seg, scan, d);
    }
    // A segment's first group is its opening record and, where the state is
    // not the default, a log-state record. A torn first group may have kept
    // the one and lost the other: then the segment does not tell the state,
    // the segment before does, and the log-state record is written now, as
    // the segment's second record.
    let first_group_torn = seg.header.version >= 2 && scan.records <= 1;
    let scanned = (!first_group_torn).then(|| scan.state.clone()).flatten();
    let state = resolve_state(options, dir, &segments, &seg, scanned)?;
    let mut events = Vec::new();
    if scan.records == 0 {
        // The segment was created but its first record never became durable:
        // write the record that should have opened it.
        events.push(opening_event(options, &segments, &seg)?);
    }
    if first_group_torn && state != LogState::default() {
        events.push(state.event());
    }
    let truncate_after_open = scan
        .repaired
        .iter()
        .filter_map(|r| {
            let prev = segments.iter().find(|s| s.number == r.segment)?;
            Some(Truncation {
                path: prev.path.clone(),
                len: r.offset,
            })
        })
        .collect();
    // What remains of the damage is a torn tail: cut it, and say so.
    let mut len = scan.end;
    if let Some(d) = &scan.damage {
        events.push(cut_torn_tail(
            &*options.storage,
            &seg,
            d.offset,
            file_len,
            &scan,
        )?);
        len = d.offset;
    }
    let mut file = crate::storage::open_append(&*options.storage, &seg.path)?;
    // Whatever a crashed writer left in the page cache is made durable before
    // new frames claim (in `synced_through`) that it is.
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &seg.path, e))?;
    let sealed_last = scan.last_kind == Some(RecordKind::Sealed);
    let tag_scan = scan.tag_scan;
    let ends_closed = scan.ends_closed;
    let (end, index) = scan.into_end(seg.clone(), len);
    *seg.index.write() = index;
    let mut tail = Tail {
        segments,
        end,
        file: Some(file),
        events,
        truncate_after_open,
        state,
        tag_scan,
        ends_closed,
    };
    if sealed_last {
        // A crash came between the seal record and the next segment's
        // creation: the segment is complete, so finish the roll.
        finish_roll(dir, options, &mut tail)?;
    }
    Ok(tail)
}

/// The hold and retention policy in force at the end of the active segment
/// `seg`: what its records say (format 2), else what the segment before it
/// ended with, else (format 1, which records no state) the hold file's
/// hold and no policy.
fn resolve_state(
    options: &Options,
    dir: &Path,
    segments: &[Arc<Segment>],
    seg: &Segment,
    scanned: Option<LogState>,
) -> Result<LogState> {
    if let Some(state) = scanned {
        return Ok(state);
    }
    let prev = segments.iter().rev().find(|s| s.number < seg.number);
    if let Some(prev) = prev.filter(|p| p.header.version >= 2) {
        if let Some(state) = state_of(prev)? {
            return Ok(state);
        }
    }
    Ok(LogState {
        hold: read_hold(&*options.storage, dir)?,
        policy: None,
    })
}

/// The state a closed format-2 segment's records tell at its end (it
/// begins in the default state unless its log-state record says other);
/// `None` for a segment without records.
fn state_of(seg: &Segment) -> Result<Option<LogState>> {
    let mut walk = FrameWalker::new(seg.file.clone(), SEGMENT_HEADER_LEN as u64, seg.file_len()?);
    let mut state = LogState::default();
    let mut any = false;
    while let Some((_, f)) = walk
        .next_checked()
        .map_err(|e| e.into_error(&seg.path, None))?
    {
        any = true;
        if let Some(Ok(e)) = f.system_event() {
            state.apply(&e);
        }
    }
    Ok(any.then_some(state))
}

/// The record that should open `seg`, the log's active segment: log
/// created for the first segment, segment rolled for a later one.
fn opening_event(
    options: &Options,
    segments: &[Arc<Segment>],
    seg: &Segment,
) -> Result<SystemEvent> {
    let prev = segments.iter().rev().find(|s| s.number < seg.number);
    Ok(match prev {
        None => created_event(seg.header.log_id),
        Some(prev) => SystemEvent::SegmentRolled {
            from_segment: prev.number,
            to_segment: seg.number,
            from_bytes: prev.file_len()?,
            durability: options.durability,
        },
    })
}

/// Cuts the torn tail of `seg` at `offset` (keeping a copy of any non-zero
/// bytes) and returns the tail-cut record that logs it.
fn cut_torn_tail(
    storage: &dyn Storage,
    seg: &Segment,
    offset: u64,
    file_len: u64,
    scan: &Scan,
) -> Result<SystemEvent> {
    let saved_as = save_cut_bytes(storage, seg, offset, file_len)?;
    let mut file = crate::storage::open_append(storage, &seg.path)?;
    file.truncate(offset)
        .map_err(|e| Error::io("truncate", &seg.path, e))?;
    Ok(SystemEvent::TailCut {
        segment: seg.number,
        offset,
        bytes: file_len - offset,
        expected_seq: scan.at.next_seq(),
        saved_as,
    })
}

/// The active segment ends with its seal record: create the next segment
/// and go on there, logging the roll.
fn finish_roll(dir: &Path, options: &Options, tail: &mut Tail) -> Result<()> {
    let from = tail.end.segment.clone();
    // Created at the time of the roll the crash cut short (its last
    // record's), not at this open's: epoch tags the open owes for the
    // epochs that ended meanwhile come before the new segment's opening
    // records (each tag precedes any record of a later epoch), and they
    // seal the segment's start, which must lie within their epochs.
    let ts = tail.end.at.timestamp_ns;
    let header = from.header.successor(tail.end.at, ts);
    let (active, file) = Segment::create_active(&*options.storage, dir, header)?;
    // The new segment begins with its segment-rolled record, whatever
    // recovery queued before (a tail-cut of the old segment's preallocated
    // zeros, say): verify requires it first, and an intact log that a power
    // cut left this way must not read as tampered.
    let mut opening = vec![SystemEvent::SegmentRolled {
        from_segment: from.number,
        to_segment: active.number,
        from_bytes: tail.end.len,
        durability: options.durability,
    }];
    let state_event = tail.state.event();
    if tail.state != LogState::default() && !tail.events.contains(&state_event) {
        opening.push(state_event);
    }
    tail.events.splice(0..0, opening);
    tail.segments.push(active.clone());
    tail.end = SegmentEnd::empty(active);
    tail.file = Some(file);
    Ok(())
}

/// Copies the cut bytes aside unless they are all zero (a preallocated or
/// zero-filled tail); returns the copy's file name, or "".
fn save_cut_bytes(
    storage: &dyn Storage,
    seg: &Segment,
    offset: u64,
    file_len: u64,
) -> Result<String> {
    let mut any = false;
    read_chunks(&*seg.file, &seg.path, offset, file_len, &mut |chunk| {
        any = chunk.iter().any(|&b| b != 0);
        Ok(!any)
    })?;
    if !any {
        return Ok(String::new());
    }
    let name = format!("{}.cut-{offset}", segment_file_name(seg.number));
    let copy = seg.path.with_file_name(&name);
    // Without room for the copy the open fails and nothing is cut: the bytes
    // stay in the segment until an open can keep them (format-spec.md 6.2).
    copy_range(storage, seg, offset, file_len, &copy).map_err(|e| match e {
        // Any failure but reading the segment is one of writing the copy.
        Error::Io { path, source, .. } if path != seg.path => Error::TailNotKept {
            path: seg.path.clone(),
            offset,
            bytes: file_len - offset,
            copy,
            source,
        },
        other => other,
    })?;
    Ok(name)
}

/// Copies bytes `from..to` of a segment into a new file, durably; a copy
/// that cannot be finished is removed (see `write_new_file`).
fn copy_range(storage: &dyn Storage, seg: &Segment, from: u64, to: u64, dest: &Path) -> Result<()> {
    write_new_file(storage, dest, &mut |out| {
        read_chunks(&*seg.file, &seg.path, from, to, &mut |chunk| {
            out.append(chunk).map_err(|e| Error::io("write", dest, e))?;
            Ok(true)
        })
    })
}

/// Damage in durable data of the active segment, with `Options::repair`:
/// copy the whole file aside, start a new segment that continues the chain
/// from the last intact record and says what happened, and (once that
/// record is durable) cut the damaged file back to its intact prefix.
fn repair(
    dir: &Path,
    options: &Options,
    segments: Vec<Arc<Segment>>,
    seg: Arc<Segment>,
    scan: Scan,
    damage: Damage,
) -> Result<Tail> {
    let storage = &*options.storage;
    let file_len = seg.file_len()?;
    let now = (options.clock)().max(scan.at.timestamp_ns);
    let aside = format!("{}.damaged-{now}", segment_file_name(seg.number));
    copy_range(storage, &seg, 0, file_len, &seg.path.with_file_name(&aside))?;
    let event = SystemEvent::Repaired {
        segment: seg.number,
        offset: damage.offset,
        seq: scan.at.next_seq(),
        moved_to: aside,
        what: damage.what.to_string(),
    };
    let state = resolve_state(options, dir, &segments, &seg, scan.state.clone())?;
    let len = scan.end;
    let tag_scan = scan.tag_scan;
    let (end, index) = scan.into_end(seg.clone(), len);
    *seg.index.write() = index;
    let mut tail = Tail {
        segments,
        end,
        file: None,
        state,
        tag_scan,
        ends_closed: false,
        events: Vec::new(),
        truncate_after_open: vec![Truncation {
            path: seg.path.clone(),
            len: damage.offset,
        }],
    };
    // The clock may stand before the last intact record: the new segment
    // is created no earlier than it.
    let header = seg.header.successor(tail.end.at, now);
    let (active, file) = Segment::create_active(storage, dir, header)?;
    tail.segments.push(active.clone());
    tail.end = SegmentEnd::empty(active);
    tail.file = Some(file);
    tail.events.push(event);
    if tail.state != LogState::default() {
        tail.events.push(tail.state.event());
    }
    Ok(tail)
}

/// Cuts `path` back to `len` bytes if it is longer (idempotent).
pub(crate) fn finish_truncation(storage: &dyn Storage, t: &Truncation) -> Result<()> {
    let mut file = crate::storage::open_append(storage, &t.path)?;
    let cur = file.len().map_err(|e| Error::io("stat", &t.path, e))?;
    if cur > t.len {
        file.truncate(t.len)
            .map_err(|e| Error::io("truncate", &t.path, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", &t.path, e))?;
    }
    Ok(())
}

/// 16 bytes from the operating system's random source. Without randomness
/// two logs could share an id (and a genesis hash), so a failure is an
/// error, not a fallback.
fn new_log_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).map_err(|e| {
        Error::io(
            "read random bytes for a log id",
            "",
            io::Error::other(e.to_string()),
        )
    })?;
    Ok(id)
}
