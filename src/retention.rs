//! Retention drops whole sealed segments, oldest first, after recording them
//! in the anchor file, so that what remains still verifies; a legal hold
//! stops it. (format-spec.md, "Retention" and "Anchor file".)

use crate::error::{Corruption, Error, Result};
use crate::format::{
    anchor_genesis, decode_anchor_header, encode_anchor_header, AnchorEntry, DroppedSegment, Hash,
    ANCHOR_HEADER_LEN,
};
use crate::segment::Segment;
use crate::storage::{write_atomically, Storage};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const ANCHOR_FILE: &str = "wormlog.anchor";
pub(crate) const HOLD_FILE: &str = "wormlog.hold";
const HOLD_TMP: &str = "wormlog.hold.tmp";
/// An anchor file larger than this is not one we wrote (it would take
/// millions of retention runs).
const ANCHOR_FILE_MAX: u64 = 256 << 20;

/// Which sealed segments may be dropped. A segment's age is the time since
/// its newest record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
    pub(crate) min_age: Duration,
    pub(crate) apply_on_roll: bool,
}

impl Retention {
    /// Drop segments whose newest record is older than this.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }
    /// Drop the oldest segments while the log's files take more than this.
    pub fn max_total_bytes(mut self, bytes: u64) -> Self {
        self.max_total_bytes = Some(bytes);
        self
    }
    /// The compliance floor: no segment younger than this is ever dropped,
    /// whatever `max_age` or `max_total_bytes` say.
    pub fn min_age(mut self, age: Duration) -> Self {
        self.min_age = age;
        self
    }
    /// Apply retention each time background sealing finishes a segment.
    pub fn apply_on_roll(mut self, yes: bool) -> Self {
        self.apply_on_roll = yes;
        self
    }
}

/// What a retention run did (or, for a plan, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// A legal hold stopped the run: nothing was dropped.
    pub held: bool,
    pub dropped_segments: Vec<u64>,
    pub dropped_records: u64,
    pub freed_bytes: u64,
    /// The first seq the log holds afterwards.
    pub first_seq: u64,
}

/// The anchor file as loaded: its entries with their hashes, and its length.
#[derive(Debug, Clone, Default)]
pub(crate) struct Anchor {
    pub entries: Vec<(AnchorEntry, Hash)>,
    pub len: u64,
}

impl Anchor {
    /// Whether the anchor vouches for a log that begins at `first_seq`,
    /// continuing `prev_hash`: where an entry says the kept log begins, or
    /// at a segment an entry lists as dropped that is still there (a run cut
    /// short between recording the drop and deleting every file).
    pub fn vouches_for(&self, first_seq: u64, prev_hash: &Hash) -> Option<bool> {
        let mut found = None;
        for (e, _) in &self.entries {
            if e.first_seq == first_seq {
                found = Some(found.unwrap_or(false) || e.prev_hash == *prev_hash);
            }
            for w in e.dropped.windows(2) {
                if w[1].first_seq == first_seq {
                    found = Some(found.unwrap_or(false) || w[0].last_hash == *prev_hash);
                }
            }
        }
        found
    }

    pub fn last_hash(&self, log_id: &[u8; 16]) -> Hash {
        self.entries
            .last()
            .map_or_else(|| anchor_genesis(log_id), |(_, h)| *h)
    }
}

/// Reads and checks the anchor file (absent: no entries). A partial last
/// entry is a torn append from a crash before retention deleted anything;
/// with `cut_torn` it is copied aside and cut, otherwise it is ignored.
pub(crate) fn load_anchor(
    storage: &dyn Storage,
    dir: &Path,
    log_id: &[u8; 16],
    cut_torn: bool,
) -> Result<Anchor> {
    let path = dir.join(ANCHOR_FILE);
    let file = match storage.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Anchor::default()),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    let bad = |offset: u64, what: Corruption| Error::corrupt(&path, offset, None, what);
    if len > ANCHOR_FILE_MAX {
        return Err(bad(
            0,
            Corruption::Anchor {
                detail: format!("{len} bytes is larger than any anchor file"),
            },
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    let got = file
        .read_full_at(&mut bytes, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    bytes.truncate(got);
    let id = decode_anchor_header(&bytes).map_err(|w| bad(0, w))?;
    if &id != log_id {
        return Err(bad(
            12,
            Corruption::Anchor {
                detail: "the anchor file belongs to another log".into(),
            },
        ));
    }
    let mut anchor = Anchor {
        entries: Vec::new(),
        len: ANCHOR_HEADER_LEN as u64,
    };
    let mut at = ANCHOR_HEADER_LEN;
    let mut prev = anchor_genesis(log_id);
    while at < bytes.len() {
        match AnchorEntry::decode(&bytes[at..]).map_err(|w| bad(at as u64, w))? {
            Some((entry, n)) => {
                if entry.prev_entry_hash != prev {
                    return Err(bad(
                        at as u64,
                        Corruption::Anchor {
                            detail: "entry does not chain to the entry before it (one was removed or edited)"
                                .into(),
                        },
                    ));
                }
                prev = entry.hash();
                anchor.entries.push((entry, prev));
                at += n;
                anchor.len = at as u64;
            }
            None if cut_torn => {
                cut_torn_tail(storage, &path, &bytes[at..], at as u64)?;
                break;
            }
            None => break,
        }
    }
    Ok(anchor)
}

fn cut_torn_tail(storage: &dyn Storage, path: &Path, tail: &[u8], at: u64) -> Result<()> {
    if tail.iter().any(|&b| b != 0) {
        let aside = path.with_file_name(format!("{ANCHOR_FILE}.cut-{at}"));
        let _ = storage.remove_file(&aside);
        let mut f = storage
            .create_new(&aside)
            .map_err(|e| Error::io("create", &aside, e))?;
        f.append(tail).map_err(|e| Error::io("write", &aside, e))?;
        f.sync_data()
            .map_err(|e| Error::io("fdatasync", &aside, e))?;
    }
    let mut f = crate::storage::open_append(storage, path)?;
    f.truncate(at).map_err(|e| Error::io("truncate", path, e))?;
    f.sync_data().map_err(|e| Error::io("fdatasync", path, e))
}

/// Appends `entry` durably (creating the file if needed); returns its hash.
pub(crate) fn append_anchor(
    storage: &dyn Storage,
    dir: &Path,
    log_id: &[u8; 16],
    anchor: &mut Anchor,
    entry: AnchorEntry,
) -> Result<Hash> {
    let path = dir.join(ANCHOR_FILE);
    let bytes = entry.encode();
    if anchor.len == 0 {
        // Created whole under a temporary name and renamed, so the anchor
        // file never exists with a torn header.
        let tmp = dir.join(format!("{ANCHOR_FILE}.tmp"));
        let mut first = encode_anchor_header(log_id).to_vec();
        first.extend_from_slice(&bytes);
        write_atomically(storage, dir, &tmp, &path, &first)?;
        anchor.len = ANCHOR_HEADER_LEN as u64;
    } else {
        let mut file = crate::storage::open_append(storage, &path)?;
        file.append(&bytes)
            .map_err(|e| Error::io("write", &path, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", &path, e))?;
    }
    let hash = entry.hash();
    anchor.len += bytes.len() as u64;
    anchor.entries.push((entry, hash));
    Ok(hash)
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
            40,
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

/// The reason of the legal hold, if one is set.
pub(crate) fn read_hold(storage: &dyn Storage, dir: &Path) -> Result<Option<String>> {
    let path = dir.join(HOLD_FILE);
    let file = match storage.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let mut buf = vec![0u8; 64 << 10];
    let n = file
        .read_full_at(&mut buf, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    buf.truncate(n);
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Writes the hold file atomically (temporary file, fdatasync, rename,
/// directory fsync).
pub(crate) fn write_hold(storage: &dyn Storage, dir: &Path, reason: &str) -> Result<()> {
    write_atomically(
        storage,
        dir,
        &dir.join(HOLD_TMP),
        &dir.join(HOLD_FILE),
        reason.as_bytes(),
    )
}

pub(crate) fn remove_hold(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let path = dir.join(HOLD_FILE);
    match storage.remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("remove", &path, e)),
    }
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync directory", dir, e))
}
