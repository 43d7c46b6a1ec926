//! Tail objects (format-spec.md §15.6): the active segment's bytes shipped
//! while it is written, so that losing the host loses at most one shipping
//! interval of the trail rather than everything since the last seal. Each
//! run uploads what was appended since the segment's last tail object,
//! whole frames only, as `tail/<segment>/<from>` (both 20 decimal digits;
//! `from` the byte offset in the raw segment where the object's bytes
//! begin, 0 for the first, which holds the header), locked like the rest
//! and never overwritten. Restore rebuilds the active segment from them;
//! verify checks them contiguous and chained to the sealed files.

use super::{
    download, put_locked, record, recorded_for, remote, versions, LimitedWriter, RemoteReport,
    RemoteVersion, S3Target, ShipStep, ShippedObject,
};
use std::path::{Path, PathBuf};
use wormlog::format::names::{parse_sealed_file_name, parse_segment_file_name, segment_file_name};
use wormlog::format::ChainPos;
use wormlog::{Error, Result};

/// The key name (under the prefix) of the tail object of `segment` that
/// begins at byte `from`.
pub(crate) fn tail_name(segment: u64, from: u64) -> String {
    format!("tail/{segment:020}/{from:020}")
}

/// `(segment, from)` of a tail object's name under the prefix.
pub(crate) fn parse_tail_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("tail/")?;
    let (seg, from) = rest.split_once('/')?;
    let ok = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    (ok(seg) && ok(from)).then(|| Some((seg.parse().ok()?, from.parse().ok()?)))?
}

/// The raw segment files with no sealed file, oldest first: the active
/// segment, and any a roll closed that is not sealed yet.
fn unsealed_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut raw = Vec::new();
    let mut sealed = std::collections::HashSet::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let e = e.map_err(|e| Error::io("list", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = parse_segment_file_name(&name) {
            raw.push(n);
        } else if let Some(n) = parse_sealed_file_name(&name) {
            sealed.insert(n);
        }
    }
    raw.retain(|n| !sealed.contains(n));
    raw.sort_unstable();
    Ok(raw)
}

/// Ships what each unsealed segment gained since its last tail object,
/// oldest first (a segment a roll closed first, so that the copy never
/// holds a newer segment's tail without the end of the one before); the
/// objects shipped.
pub(crate) fn ship_tail(
    dir: &Path,
    target: &S3Target,
    until: &str,
    step: &mut dyn FnMut(ShipStep<'_>) -> Result<()>,
) -> Result<Vec<ShippedObject>> {
    let mut shipped = Vec::new();
    for segment in unsealed_segments(dir)? {
        if let Some(object) = ship_segment_tail(dir, target, segment, until, step)? {
            shipped.push(object);
        }
    }
    Ok(shipped)
}

/// Ships what raw segment `segment` gained since its last tail object.
fn ship_segment_tail(
    dir: &Path,
    target: &S3Target,
    segment: u64,
    until: &str,
    step: &mut dyn FnMut(ShipStep<'_>) -> Result<()>,
) -> Result<Option<ShippedObject>> {
    let under = target.key(&format!("tail/{segment:020}/"));
    let from = recorded_for(dir, target)?
        .iter()
        .filter(|o| o.key.starts_with(&under))
        .filter_map(|o| {
            let name = o.key.strip_prefix(&target.key(""))?;
            let (_, from) = parse_tail_name(name)?;
            Some(from + o.bytes)
        })
        .max()
        .unwrap_or(0);
    let to = wormlog::ext::whole_frames_end(dir, segment, from)?;
    // A header with no frame after it yet is nothing to ship: a copy that
    // holds one would end at no record.
    if to <= from || to <= wormlog::format::SEGMENT_HEADER_LEN as u64 {
        return Ok(None);
    }
    let path = dir.join(segment_file_name(segment));
    let bytes = read_range(&path, from, to - from)?;
    let key = target.key(&tail_name(segment, from));
    step(ShipStep::Put(&key))?;
    let agent = super::agent();
    let object = match put_locked(target, &agent, &key, &bytes, until) {
        Ok((object, _)) => object,
        // A run that crashed after its upload and before its record left
        // an object here, of the bytes it saw then (a prefix of ours, the
        // segment only grows): adopt it; the next run goes on from its end.
        Err(Error::Remote { detail, .. }) if detail.contains("other bytes") => {
            adopt(target, &key, &bytes)?
        }
        Err(e) => return Err(e),
    };
    step(ShipStep::Record(&key))?;
    record(dir, &object)?;
    Ok(Some(object))
}

/// `len` bytes of `path` from `at`.
fn read_range(path: &Path, at: u64, len: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, at)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}

/// The object a crashed run left at `key`, if its bytes begin `local`'s;
/// anything else there is not ours (exit 1 material).
fn adopt(target: &S3Target, key: &str, local: &[u8]) -> Result<ShippedObject> {
    let found = versions(target, key)?
        .into_iter()
        .find(|v| !v.delete_marker && v.is_latest)
        .ok_or_else(|| remote("ship", key, "refused as existing, but no version is there"))?;
    let mut buf = Vec::new();
    let mut w = LimitedWriter {
        out: &mut buf,
        left: local.len(),
    };
    let (sha, len) = download(target, key, &found.version_id, &mut w)?;
    if !local.starts_with(&buf) || buf.is_empty() {
        return Err(remote(
            "verify",
            key,
            "a tail object with bytes the active segment does not hold is already at this key",
        ));
    }
    Ok(ShippedObject {
        target: target.id(),
        key: key.to_string(),
        version_id: found.version_id,
        sha256: sha,
        bytes: len,
    })
}

/// The tail objects among `chosen` (the walk's versions), by segment, each
/// sorted by offset.
pub(crate) fn tails_by_segment<'a>(
    target: &S3Target,
    chosen: impl Iterator<Item = &'a RemoteVersion>,
) -> std::collections::BTreeMap<u64, Vec<(u64, &'a RemoteVersion)>> {
    let under = target.key("");
    let mut by: std::collections::BTreeMap<u64, Vec<(u64, &RemoteVersion)>> = Default::default();
    for v in chosen {
        if let Some((seg, from)) = v.key.strip_prefix(&under).and_then(parse_tail_name) {
            by.entry(seg).or_default().push((from, v));
        }
    }
    for list in by.values_mut() {
        list.sort_by_key(|(from, _)| *from);
    }
    by
}

/// Rebuilds raw segment `segment` into `into` from its tail objects, which
/// must begin at 0 and each begin where the one before ended, then checks
/// it alone and as the continuation of `prev` (the last sealed file's
/// number and head). Returns the path (removed unless `keep`) and the
/// segment's last record.
pub(crate) fn fetch_tail(
    target: &S3Target,
    into: &Path,
    keep: bool,
    segment: u64,
    objects: &[(u64, &RemoteVersion)],
    prev: Option<(u64, ChainPos)>,
    report: &mut RemoteReport,
) -> Result<Option<ChainPos>> {
    let path: PathBuf = into.join(segment_file_name(segment));
    let mut f = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
    let mut at = 0u64;
    for (from, v) in objects {
        if *from != at {
            let _ = std::fs::remove_file(&path);
            return Err(remote(
                "verify",
                &v.key,
                format!(
                    "tail objects of segment {segment} are not contiguous: this one begins at \
                     byte {from}, the ones before end at {at}"
                ),
            ));
        }
        let (_, len) = download(target, &v.key, &v.version_id, &mut f)?;
        at += len;
    }
    if keep {
        f.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
    }
    drop(f);
    let checked = wormlog::verify_file(&path);
    if !keep || checked.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let r = checked.map_err(|e| {
        remote(
            "verify",
            target.key(&format!("tail/{segment:020}/")),
            format!("the active segment its tail objects make does not verify: {e}"),
        )
    })?;
    if let Some((n, head)) = prev {
        // The segment before was copied only in part (a roll closed it
        // before its last tail run, and its sealed file is not shipped
        // yet): this one cannot be linked, and is left out, not blamed.
        if n + 1 == segment && r.first_seq > head.seq + 1 {
            let _ = std::fs::remove_file(&path);
            report.tail_left_out = Some(segment);
            return Ok(None);
        }
        if n + 1 != segment || r.first_seq != head.seq + 1 || r.start_hash != head.hash {
            return Err(remote(
                "verify",
                target.key(&format!("tail/{segment:020}/")),
                format!(
                    "the tail of segment {segment} does not continue sealed segment {n} \
                     (seq {}, or its hash)",
                    head.seq
                ),
            ));
        }
    }
    report.tail_segment = Some(segment);
    report.tail_objects += objects.len() as u64;
    report.tail_last_seq = Some(r.head.seq);
    report.tail_last_ns = Some(r.head.timestamp_ns);
    Ok(Some(r.head))
}

/// The last record whose copy under `target` the record in `dir` confirms:
/// the newest of the sealed files' last records and of what the tail
/// objects of the active segment reach. Its seq and commit time.
pub(crate) fn shipped_through(dir: &Path, target: &S3Target) -> Result<Option<(u64, u64)>> {
    let under = target.key("");
    let names = recorded_for(dir, target)?
        .into_iter()
        .filter_map(|o| Some((o.key.strip_prefix(&under)?.to_string(), o.bytes)))
        .collect::<Vec<_>>();
    reach(dir, &names)
}

/// As `shipped_through`, over every target the record names (what
/// `wormctl stat` says of a log whatever bucket it ships to).
pub fn shipped_through_any(dir: &Path) -> Result<Option<(u64, u64)>> {
    let names = super::shipped(dir)?
        .into_iter()
        .filter_map(|o| {
            // The name under the prefix: a tail's from its `tail/`, a
            // sealed file's its last component.
            let name = match o.key.rfind("tail/") {
                Some(i) => o.key[i..].to_string(),
                None => o.key.rsplit('/').next()?.to_string(),
            };
            Some((name, o.bytes))
        })
        .collect::<Vec<_>>();
    reach(dir, &names)
}

/// The newest record the shipped objects `names` (name under the prefix,
/// length) hold, as the local files say.
fn reach(dir: &Path, names: &[(String, u64)]) -> Result<Option<(u64, u64)>> {
    let mut best: Option<(u64, u64)> = None;
    let mut tail_end: std::collections::BTreeMap<u64, u64> = Default::default();
    for (name, bytes) in names {
        if let Some(n) = parse_sealed_file_name(name) {
            // A sealed file retention since dropped here is older than the
            // rest: its records are not the newest.
            if let Ok(last) = wormlog::ext::sealed_last(dir, n) {
                best = best.max(Some(last));
            }
        } else if let Some((seg, from)) = parse_tail_name(name) {
            let end = tail_end.entry(seg).or_default();
            *end = (*end).max(from + bytes);
        }
    }
    if let Some((&seg, &end)) = tail_end.iter().next_back() {
        if let Ok(Some(last)) = wormlog::ext::last_record_within(dir, seg, end) {
            best = best.max(Some(last));
        }
    }
    Ok(best)
}

/// Tail objects of a segment whose sealed file the copy holds (at `sealed`,
/// already checked) are superseded, but must agree with it: rebuilt, they
/// must verify and end at a record the sealed file holds with the same
/// chain hash (which commits to every record before it). A tail that does
/// not is someone's, not the shipper's: an error naming it.
pub(crate) fn check_superseded(
    target: &S3Target,
    into: &Path,
    segment: u64,
    objects: &[(u64, &RemoteVersion)],
    sealed: &Path,
) -> Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("wormlog-tail-")
        .tempdir_in(into)
        .map_err(|e| Error::io("create", into, e))?;
    let mut report = RemoteReport::default();
    let head = fetch_tail(
        target,
        scratch.path(),
        false,
        segment,
        objects,
        None,
        &mut report,
    )?
    .expect("with no segment before, none is left out");
    let holds = wormlog::SegmentFile::open(sealed)?
        .filter_map(|r| r.ok())
        .find(|r| r.seq() == head.seq)
        .is_some_and(|r| *r.hash() == head.hash);
    if !holds {
        return Err(remote(
            "verify",
            target.key(&format!("tail/{segment:020}/")),
            format!(
                "the tail objects of segment {segment} end at record {} with a chain hash its \
                 sealed file does not hold there: they contradict the sealed file",
                head.seq
            ),
        ));
    }
    Ok(())
}
