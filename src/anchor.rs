//! The anchor file (retention's record of dropped segments) and the legal
//! hold file: loading, checking and appending them durably
//! (format-spec.md, "Anchor file" and "Legal hold").

use crate::error::{Corruption, Error, Result};
use crate::format::names::{ANCHOR_FILE, HOLD_FILE, HOLD_TMP_FILE};
use crate::format::{
    anchor_genesis, decode_anchor_header, encode_anchor_header, AnchorEntry, Hash,
    ANCHOR_HEADER_LEN, ANCHOR_LOG_ID_AT, FIRST_SEQ_AT, PREV_HASH_AT,
};
use crate::segment::Segment;
use crate::storage::{write_atomically, write_new_file, Storage};
use std::io;
use std::path::Path;

/// An anchor file larger than this is not one we wrote (it would take
/// millions of retention runs).
const ANCHOR_FILE_MAX: u64 = 256 << 20;

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
            ANCHOR_LOG_ID_AT as u64,
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
        let decoded = match AnchorEntry::decode(&bytes[at..]) {
            // A last entry whose append a crash tore can hold anything where
            // its sectors were lost (zeros, old bytes): it was never durable,
            // so no retention record names it and no segment was deleted
            // for it. A writer cuts it aside like a short one. (If it was in
            // fact a durable entry someone damaged, the record naming it
            // finds it gone and verification fails.)
            // A reader leaves it as it is (spec 8.2), and reads the entries
            // before it.
            Err(_) => Ok(None),
            other => other,
        };
        match decoded.map_err(|w| bad(at as u64, w))? {
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
        write_new_file(storage, &aside, &mut |f| {
            f.append(tail).map_err(|e| Error::io("write", &aside, e))
        })?;
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
            PREV_HASH_AT as u64,
            Some(h.first_seq),
            Corruption::Anchor {
                detail: "the anchor entry for this segment names another chain hash".into(),
            },
        )),
        None => Err(Error::corrupt(
            &first.path,
            FIRST_SEQ_AT as u64,
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
        &dir.join(HOLD_TMP_FILE),
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

/// The error for a hold file that says other than the chain's hold
/// records (the truth; the file is their cache).
pub(crate) fn hold_mismatch(dir: &Path, chain: &Option<String>, file: &Option<String>) -> Error {
    let say = |h: &Option<String>| match h {
        Some(r) => format!("a hold ({r:?})"),
        None => "no hold".to_string(),
    };
    Error::corrupt(
        dir.join(HOLD_FILE),
        0,
        None,
        Corruption::HoldMismatch {
            detail: format!(
                "the log's records say {}, the hold file says {} (changed behind the engine's \
                 back, or a hold change interrupted: a writer's open finishes it)",
                say(chain),
                say(file)
            ),
        },
    )
}
