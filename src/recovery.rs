//! Opening a log: create it, or find its segments, check their headers, and
//! recover the active segment's tail (format-spec.md, "Recovery").
//!
//! Only the active segment is read in full; closed segments are read as far
//! as their headers. A torn tail (bytes that were never durable) is cut and
//! the cut is logged; damage to bytes that were durable fails the open, or,
//! with `Options::repair`, is moved aside.

use crate::commit::Writer;
use crate::error::{Corruption, Error, Result};
use crate::format::{
    decode_frame, frame_padded_len, genesis_hash, hex, Decoded, Hash, RecordKind, SegmentHeader,
    SystemEvent, FORMAT_VERSION, SEGMENT_HEADER_LEN,
};
use crate::log::{Head, Visible};
use crate::options::Options;
use crate::retention::{load_anchor, Anchor};
use crate::seal::{open_sealed, SealedReads};
use crate::segment::{
    create_segment_file, is_tmp_segment_name, parse_sealed_file_name, parse_segment_file_name,
    sealed_file_name, segment_file_name, BatchedDigest, ChainWalker, FrameScanner, ScanError,
    Segment, SparseIndex,
};
use crate::storage::{DirLock, ReadFile, Storage, LOCK_FILE};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Recovered {
    /// `None` for a read-only open, which takes no lock.
    pub lock: Option<Box<dyn DirLock>>,
    pub log_id: [u8; 16],
    pub segments: Vec<Arc<Segment>>,
    pub visible: Visible,
    pub writer: Writer,
    /// Engine records to write (durably) before the log takes appends.
    pub events: Vec<SystemEvent>,
    /// Repairs to finish once `events` are durable: cut these files here.
    pub truncate_after_open: Vec<(PathBuf, u64)>,
    pub anchor: Anchor,
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
    }
    let lock = if read_only {
        None
    } else {
        Some(storage.lock_dir(dir).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Error::Locked { path: dir.into() },
            _ => Error::io("lock", dir.join(LOCK_FILE), e),
        })?)
    };
    let numbers = list_segments(storage, dir, read_only)?;
    if numbers.is_empty() {
        return match lock {
            Some(lock) => create_log(dir, options, lock),
            None => Err(Error::NotFound { path: dir.into() }),
        };
    }
    let mut segments = open_segments(storage, dir, &numbers, reads)?;
    if read_only {
        catch_up(storage, dir, reads, &mut segments)?;
    }
    let active = segments.last().expect("numbers is not empty").clone();
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
        read_only_tail(options, segments)?
    } else {
        recover_active(dir, options, &segments)?
    };
    Ok(Recovered {
        lock,
        log_id,
        segments: tail.segments,
        visible: tail.visible,
        writer: tail.writer,
        events: tail.events,
        truncate_after_open: tail.truncate_after_open,
        anchor,
    })
}

fn create_log(dir: &Path, options: &Options, lock: Box<dyn DirLock>) -> Result<Recovered> {
    let lock = Some(lock);
    let log_id = new_log_id();
    let created_ns = (options.clock)();
    let header = SegmentHeader {
        log_id,
        segment: 1,
        first_seq: 1,
        created_ns,
        prev_hash: genesis_hash(&log_id),
    };
    let (segment, file) = new_active_segment(&*options.storage, dir, header)?;
    let visible = Visible {
        head: Head {
            seq: 0,
            hash: segment.header.prev_hash,
            timestamp_ns: created_ns,
        },
        active_segment: 1,
        active_len: SEGMENT_HEADER_LEN as u64,
    };
    let writer = Writer::new(
        file,
        segment.clone(),
        SEGMENT_HEADER_LEN as u64,
        (1, segment.header.prev_hash, created_ns),
        header_digest(&segment.header),
        0,
    );
    Ok(Recovered {
        lock,
        log_id,
        segments: vec![segment],
        visible,
        writer,
        events: vec![created_event(log_id)],
        truncate_after_open: Vec::new(),
        anchor: Anchor::default(),
    })
}

/// A log begins at seq 1, or where an anchor entry says retention left it:
/// segments missing at the front with no anchor entry are a shorter log
/// than was written, and the open fails rather than hide it.
pub(crate) fn check_log_start(first: &Segment, anchor: &Anchor) -> Result<()> {
    let h = &first.header;
    if h.first_seq == 1 {
        return Ok(());
    }
    match anchor.vouches_for(h.first_seq, &h.prev_hash) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::corrupt(
            &first.path,
            56,
            Some(h.first_seq),
            Corruption::Anchor {
                detail: "the anchor entry for this segment names another chain hash".into(),
            },
        )),
        None => Err(Error::corrupt(
            &first.path,
            40,
            Some(h.first_seq),
            Corruption::Anchor {
                detail: format!(
                    "the log starts at seq {} but no anchor entry records the removal of the segments before it",
                    h.first_seq
                ),
            },
        )),
    }
}

fn created_event(log_id: [u8; 16]) -> SystemEvent {
    SystemEvent::LogCreated {
        format_version: FORMAT_VERSION,
        log_id,
        engine: concat!("wormlog ", env!("CARGO_PKG_VERSION")).into(),
    }
}

fn new_active_segment(
    storage: &dyn Storage,
    dir: &Path,
    header: SegmentHeader,
) -> Result<(Arc<Segment>, Box<dyn crate::storage::WriteFile>)> {
    let (path, file) = create_segment_file(storage, dir, &header)?;
    let read = storage
        .open_read(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    Ok((Arc::new(Segment::new_active(path, header, read)), file))
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
        if sealed_seg.header != raw_seg.header || sealed_seg.file_len()? != raw_seg.file_len()? {
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

/// Opens every segment and checks that the headers belong together.
/// The segments in `dir`, oldest first, each with whether it is sealed. A
/// writer first removes what an interrupted creation left and finishes
/// interrupted seals; a reader changes nothing and takes a sealed file over
/// the raw one it is being made from.
fn list_segments(storage: &dyn Storage, dir: &Path, read_only: bool) -> Result<Vec<(u64, bool)>> {
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
    let mut numbers: Vec<(u64, bool)> = raw.iter().map(|&n| (n, false)).collect();
    numbers.extend(sealed.iter().map(|&n| (n, true)));
    numbers.sort_unstable();
    Ok(numbers)
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
        let last = segments.last().expect("at least one segment");
        if last.sealed.is_none() {
            return Ok(());
        }
        let newer: Vec<(u64, bool)> = list_segments(storage, dir, true)?
            .into_iter()
            .filter(|&(n, _)| n > last.number)
            .collect();
        if newer.first().map(|&(n, _)| n) != Some(last.number + 1) {
            // Nothing newer (or a gap): the check after this reports it.
            return Ok(());
        }
        segments.extend(open_segments(storage, dir, &newer, reads)?);
    }
    Ok(())
}

fn open_segments(
    storage: &dyn Storage,
    dir: &Path,
    numbers: &[(u64, bool)],
    reads: &SealedReads,
) -> Result<Vec<Arc<Segment>>> {
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(numbers.len());
    for &(n, is_sealed) in numbers {
        let sealed_path = dir.join(sealed_file_name(n));
        let seg = if is_sealed {
            open_sealed(storage, &sealed_path, Some(n), Some(reads))?
        } else {
            match Segment::open(storage, dir.join(segment_file_name(n)), Some(n)) {
                // A writer sealed it after we listed the directory (only a
                // reader can see that: a writer holds the lock).
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    open_sealed(storage, &sealed_path, Some(n), Some(reads))?
                }
                other => other?,
            }
        };
        if let Some(prev) = segments.last() {
            if n != prev.number + 1 {
                return Err(Error::corrupt(
                    &seg.path,
                    0,
                    None,
                    Corruption::SegmentMissing {
                        missing: prev.number + 1,
                        before: prev.number,
                        after: n,
                    },
                ));
            }
            if seg.header.log_id != prev.header.log_id {
                return Err(Error::corrupt(
                    &seg.path,
                    16,
                    None,
                    Corruption::ForeignSegment {
                        expected: hex(&prev.header.log_id),
                        found: hex(&seg.header.log_id),
                    },
                ));
            }
            if seg.header.first_seq < prev.header.first_seq
                || seg.header.created_ns < prev.header.created_ns
            {
                return Err(Error::corrupt(
                    &seg.path,
                    40,
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
        }
        segments.push(Arc::new(seg));
    }
    Ok(segments)
}

struct Tail {
    segments: Vec<Arc<Segment>>,
    visible: Visible,
    writer: Writer,
    events: Vec<SystemEvent>,
    truncate_after_open: Vec<(PathBuf, u64)>,
}

/// The valid prefix of the active segment, and what ended it.
struct Scan {
    end: u64,
    next_seq: u64,
    prev_hash: [u8; 32],
    last_ts: u64,
    records: u64,
    index: SparseIndex,
    repaired: Vec<(u64, u64)>,
    /// BLAKE3 of the valid prefix's bytes.
    digest: BatchedDigest,
    /// Kind of the prefix's last record.
    last_kind: Option<RecordKind>,
    /// Where the prefix stopped, why, and whether the bytes there are known
    /// to be intact-as-written (a CRC-valid frame that does not continue the
    /// chain cannot be a torn write).
    damage: Option<(u64, Corruption, bool)>,
}

impl Scan {
    /// What readers may see once this scan's prefix is the log's active
    /// segment `segment`, `len` bytes long.
    fn visible(&self, segment: u64, len: u64) -> Visible {
        Visible {
            head: Head {
                seq: self.next_seq - 1,
                hash: self.prev_hash,
                timestamp_ns: self.last_ts,
            },
            active_segment: segment,
            active_len: len,
        }
    }

    /// A scan that goes on from `end`, where the chain stands at
    /// (`next_seq`, `prev_hash`, `last_ts`) after `records` records whose
    /// bytes `digest` has been given.
    fn starting_at(
        end: u64,
        (next_seq, prev_hash, last_ts): (u64, Hash, u64),
        records: u64,
        digest: BatchedDigest,
    ) -> Scan {
        Scan {
            end,
            next_seq,
            prev_hash,
            last_ts,
            records,
            index: SparseIndex {
                entries: Vec::new(),
                complete: true,
            },
            repaired: Vec::new(),
            digest,
            last_kind: None,
            damage: None,
        }
    }
}

fn scan_active(seg: &Segment, file_len: u64) -> Result<Scan> {
    let h = &seg.header;
    let mut digest = BatchedDigest::new();
    digest.update(&h.encode());
    let start = Scan::starting_at(
        SEGMENT_HEADER_LEN as u64,
        (h.first_seq, h.prev_hash, h.created_ns),
        0,
        digest,
    );
    scan_on(seg, start, file_len)
}

/// Scans frames from where `s` ends (its chain state there) up to
/// `file_len`, as far as they are valid.
fn scan_on(seg: &Segment, mut s: Scan, file_len: u64) -> Result<Scan> {
    let mut scan = FrameScanner::new(seg.file.clone(), s.end, file_len);
    loop {
        let (offset, f) = match scan.next() {
            Ok(Some(x)) => x,
            Ok(None) => break,
            Err(ScanError::Io(e)) => return Err(Error::io("read", &seg.path, e)),
            Err(ScanError::Bad { offset, what }) => {
                s.damage = Some((offset, what, false));
                break;
            }
        };
        // A CRC-valid frame that does not continue the chain is not a torn
        // write: the damage is certain.
        let mut walker = ChainWalker {
            last_seq: s.next_seq - 1,
            last_hash: s.prev_hash,
            last_ts: s.last_ts,
        };
        if let Err(what) = walker.step(offset, &f) {
            s.damage = Some((offset, what, true));
            break;
        }
        if f.kind == RecordKind::Repaired {
            if let Some(Ok(SystemEvent::Repaired {
                segment, offset, ..
            })) = SystemEvent::decode(f.kind, f.payload)
            {
                s.repaired.push((segment, offset));
            }
        }
        s.index.note(f.seq, f.timestamp_ns, offset);
        s.digest.update(f.raw);
        s.last_kind = Some(f.kind);
        s.next_seq += 1;
        s.prev_hash = f.hash;
        s.last_ts = f.timestamp_ns;
        s.records += 1;
        s.end = scan.offset();
    }
    Ok(s)
}

/// The active segment as a reader finds it: its valid prefix. Damage in
/// durable bytes is an error, as for a writer; a tail that does not parse
/// (being written right now, or torn) is left out and left alone.
fn read_only_tail(options: &Options, segments: Vec<Arc<Segment>>) -> Result<Tail> {
    let seg = segments.last().expect("at least one segment").clone();
    let file_len = seg.file_len()?;
    let scan = scan_active(&seg, file_len)?;
    if let Some((offset, what)) = durable_damage(&seg, &scan, file_len, options)? {
        return Err(Error::corrupt(&seg.path, offset, Some(scan.next_seq), what));
    }
    let visible = scan.visible(seg.number, scan.end);
    *seg.index.write() = scan.index;
    let writer = Writer::new(
        Box::new(crate::storage::NoWrites),
        seg,
        scan.end,
        (scan.next_seq, scan.prev_hash, scan.last_ts),
        scan.digest.into_hasher(),
        scan.records,
    );
    Ok(Tail {
        segments,
        visible,
        writer,
        events: Vec::new(),
        truncate_after_open: Vec::new(),
    })
}

/// What a read-only log finds when it looks again (see [`follow_active`]).
pub(crate) enum Follow {
    /// Nothing new.
    Same,
    /// New records in the active segment; the writer (a marker of where the
    /// reader's view ends) has moved past them.
    Grew,
    /// A newer segment exists, or the active segment is not as it was
    /// read: the log must be opened anew.
    Reopen,
}

/// For a read-only log: takes in what a writer committed to the active
/// segment since `at` marks, reading on from there (the bytes before are not
/// read again), and moves `at` past it. Damage in durable bytes is an error,
/// as on open; a tail still being written is left for the next look.
pub(crate) fn follow_active(options: &Options, dir: &Path, at: &mut Writer) -> Result<Follow> {
    let seg = at.segment.clone();
    let file_len = seg.file_len()?;
    if file_len < at.len {
        return Ok(Follow::Reopen);
    }
    let mut follow = Follow::Same;
    let mut last_kind = None;
    if file_len > at.len {
        let start = Scan::starting_at(
            at.len,
            (at.next_seq, at.prev_hash, at.last_ts),
            at.records,
            BatchedDigest::from_hasher(at.digest.clone()),
        );
        let scan = scan_on(&seg, start, file_len)?;
        if let Some((offset, what)) = durable_damage(&seg, &scan, file_len, options)? {
            return Err(Error::corrupt(&seg.path, offset, Some(scan.next_seq), what));
        }
        if scan.end > at.len {
            debug_assert!(scan.next_seq > at.next_seq, "new bytes hold new records");
            let mut index = seg.index.write();
            for e in &scan.index.entries {
                index.note(e.seq, e.timestamp_ns, e.offset);
            }
            drop(index);
            at.len = scan.end;
            at.synced_len = scan.end;
            at.next_seq = scan.next_seq;
            at.prev_hash = scan.prev_hash;
            at.last_ts = scan.last_ts;
            at.records = scan.records;
            at.digest = scan.digest.into_hasher();
            last_kind = scan.last_kind;
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
            .any(|&(n, _)| n > seg.number)
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
) -> Result<Option<(u64, Corruption)>> {
    let Some((offset, what, certain)) = scan.damage.clone() else {
        return Ok(None);
    };
    let durable = certain
        || damage_was_durable(
            &*seg.file,
            &seg.path,
            offset,
            file_len,
            scan.next_seq,
            frame_padded_len(options.payload_bytes_max),
        )?;
    Ok(durable.then_some((offset, what)))
}

/// Whether any intact frame after `damage_at` proves that the bytes at
/// `damage_at` had been synced: each frame records how far its file was
/// synced when it was written.
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

fn recover_active(dir: &Path, options: &Options, segments: &[Arc<Segment>]) -> Result<Tail> {
    let storage = &*options.storage;
    let mut segments = segments.to_vec();
    let seg = segments.last().expect("at least one segment").clone();
    let file_len = seg.file_len()?;
    let scan = scan_active(&seg, file_len)?;
    let mut events = Vec::new();
    if scan.records == 0 {
        // The segment was created but its first record never became durable:
        // write the record that should have opened it.
        match segments.len().checked_sub(2).map(|i| &segments[i]) {
            None => events.push(created_event(seg.header.log_id)),
            Some(prev) => events.push(SystemEvent::SegmentRolled {
                from_segment: prev.number,
                to_segment: seg.number,
                from_bytes: prev.file_len()?,
                durability: options.durability,
            }),
        }
    }
    let mut truncate_after_open = Vec::new();
    for (n, offset) in &scan.repaired {
        if let Some(prev) = segments.iter().find(|s| s.number == *n) {
            truncate_after_open.push((prev.path.clone(), *offset));
        }
    }
    let mut end = scan.end;
    if let Some((offset, what)) = durable_damage(&seg, &scan, file_len, options)? {
        if !options.repair {
            return Err(Error::corrupt(&seg.path, offset, Some(scan.next_seq), what));
        }
        return repair(dir, options, segments, scan, offset, what);
    }
    // What remains of the damage is a torn tail: cut it, and say so.
    if let Some((offset, _, _)) = scan.damage.clone() {
        let saved_as = save_cut_bytes(storage, &seg, offset, file_len)?;
        let mut file = crate::storage::open_append(storage, &seg.path)?;
        file.truncate(offset)
            .map_err(|e| Error::io("truncate", &seg.path, e))?;
        events.push(SystemEvent::TailCut {
            segment: seg.number,
            offset,
            bytes: file_len - offset,
            expected_seq: scan.next_seq,
            saved_as,
        });
        end = offset;
    }
    let mut file = crate::storage::open_append(storage, &seg.path)?;
    // Whatever a crashed writer left in the page cache is made durable before
    // new frames claim (in `synced_through`) that it is.
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &seg.path, e))?;
    let visible = scan.visible(seg.number, end);
    *seg.index.write() = scan.index;
    if scan.last_kind == Some(RecordKind::Sealed) {
        // A crash came between the seal record and the next segment's
        // creation: the segment is complete, so finish the roll.
        drop(file);
        let ts = (options.clock)().max(scan.last_ts);
        let header = SegmentHeader {
            log_id: seg.header.log_id,
            segment: seg.number + 1,
            first_seq: scan.next_seq,
            created_ns: ts,
            prev_hash: scan.prev_hash,
        };
        let from_segment = seg.number;
        let (segments, visible, writer) =
            continue_in_new_segment(storage, dir, segments, header, ts)?;
        events.push(SystemEvent::SegmentRolled {
            from_segment,
            to_segment: visible.active_segment,
            from_bytes: end,
            durability: options.durability,
        });
        return Ok(Tail {
            segments,
            visible,
            writer,
            events,
            truncate_after_open,
        });
    }
    let writer = Writer::new(
        file,
        seg,
        end,
        (scan.next_seq, scan.prev_hash, scan.last_ts),
        scan.digest.into_hasher(),
        scan.records,
    );
    segments.shrink_to_fit();
    Ok(Tail {
        segments,
        visible,
        writer,
        events,
        truncate_after_open,
    })
}

/// Copies the cut bytes aside unless they are all zero (a preallocated or
/// zero-filled tail); returns the copy's file name, or "".
fn save_cut_bytes(
    storage: &dyn Storage,
    seg: &Segment,
    offset: u64,
    file_len: u64,
) -> Result<String> {
    let mut chunk = vec![0u8; 1 << 20];
    let mut any = false;
    let mut at = offset;
    while at < file_len && !any {
        let n = (file_len - at).min(chunk.len() as u64) as usize;
        let got = seg
            .file
            .read_full_at(&mut chunk[..n], at)
            .map_err(|e| Error::io("read", &seg.path, e))?;
        any = chunk[..got].iter().any(|&b| b != 0);
        if got < n {
            break;
        }
        at += n as u64;
    }
    if !any {
        return Ok(String::new());
    }
    let name = format!("{}.cut-{offset}", segment_file_name(seg.number));
    copy_range(
        storage,
        seg,
        offset,
        file_len,
        &seg.path.with_file_name(&name),
    )?;
    Ok(name)
}

/// Copies bytes `from..to` of a segment into a new file, durably.
fn copy_range(storage: &dyn Storage, seg: &Segment, from: u64, to: u64, dest: &Path) -> Result<()> {
    let mut out = match storage.create_new(dest) {
        Ok(f) => f,
        // A copy from an earlier, interrupted recovery: start it over.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            storage
                .remove_file(dest)
                .map_err(|e| Error::io("remove", dest, e))?;
            storage
                .create_new(dest)
                .map_err(|e| Error::io("create", dest, e))?
        }
        Err(e) => return Err(Error::io("create", dest, e)),
    };
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = (to - at).min(chunk.len() as u64) as usize;
        let got = seg
            .file
            .read_full_at(&mut chunk[..n], at)
            .map_err(|e| Error::io("read", &seg.path, e))?;
        out.append(&chunk[..got])
            .map_err(|e| Error::io("write", dest, e))?;
        if got < n {
            break;
        }
        at += n as u64;
    }
    out.sync_data()
        .map_err(|e| Error::io("fdatasync", dest, e))?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Damage in durable data of the active segment, with `Options::repair`:
/// copy the whole file aside, start a new segment that continues the chain
/// from the last intact record and says what happened, and (once that
/// record is durable) cut the damaged file back to its intact prefix.
fn repair(
    dir: &Path,
    options: &Options,
    segments: Vec<Arc<Segment>>,
    scan: Scan,
    offset: u64,
    what: Corruption,
) -> Result<Tail> {
    let storage = &*options.storage;
    let seg = segments.last().expect("at least one segment").clone();
    let file_len = seg.file_len()?;
    let now = (options.clock)().max(scan.last_ts);
    let aside = format!("{}.damaged-{now}", segment_file_name(seg.number));
    copy_range(storage, &seg, 0, file_len, &seg.path.with_file_name(&aside))?;
    *seg.index.write() = scan.index;
    let header = SegmentHeader {
        log_id: seg.header.log_id,
        segment: seg.number + 1,
        first_seq: scan.next_seq,
        created_ns: now,
        prev_hash: scan.prev_hash,
    };
    let (segments, visible, writer) = continue_in_new_segment(storage, dir, segments, header, now)?;
    Ok(Tail {
        segments,
        visible,
        writer,
        events: vec![SystemEvent::Repaired {
            segment: seg.number,
            offset,
            seq: scan.next_seq,
            moved_to: aside,
            what: what.to_string(),
        }],
        truncate_after_open: vec![(seg.path.clone(), offset)],
    })
}

/// Creates the segment `header` describes and a writer at its start: the
/// chain goes on from its `prev_hash` at seq `first_seq`, no earlier than `ts`.
fn continue_in_new_segment(
    storage: &dyn Storage,
    dir: &Path,
    mut segments: Vec<Arc<Segment>>,
    header: SegmentHeader,
    ts: u64,
) -> Result<(Vec<Arc<Segment>>, Visible, Writer)> {
    let (next_seq, prev_hash) = (header.first_seq, header.prev_hash);
    let (active, file) = new_active_segment(storage, dir, header)?;
    segments.push(active.clone());
    let visible = Visible {
        head: Head {
            seq: next_seq - 1,
            hash: prev_hash,
            timestamp_ns: ts,
        },
        active_segment: active.number,
        active_len: SEGMENT_HEADER_LEN as u64,
    };
    let digest = header_digest(&active.header);
    let writer = Writer::new(
        file,
        active,
        SEGMENT_HEADER_LEN as u64,
        (next_seq, prev_hash, ts),
        digest,
        0,
    );
    Ok((segments, visible, writer))
}

/// A digest that has taken in a segment's header.
fn header_digest(header: &SegmentHeader) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(&header.encode());
    h
}

/// Cuts `path` back to `len` bytes if it is longer (idempotent).
pub(crate) fn finish_truncation(storage: &dyn Storage, path: &Path, len: u64) -> Result<()> {
    let mut file = crate::storage::open_append(storage, path)?;
    let cur = file.len().map_err(|e| Error::io("stat", path, e))?;
    if cur > len {
        file.truncate(len)
            .map_err(|e| Error::io("truncate", path, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", path, e))?;
    }
    Ok(())
}

/// 16 random bytes: the kernel's randomness where it can be read, mixed with
/// time and process id so that two logs never share an id even without it.
fn new_log_id() -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("wormlog v1 log id");
    let mut rnd = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = io::Read::read_exact(&mut f, &mut rnd);
    }
    h.update(&rnd);
    h.update(&crate::options::system_clock_ns().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    let local = 0u8;
    h.update(&(std::ptr::addr_of!(local) as usize).to_le_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}
