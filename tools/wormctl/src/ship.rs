//! `wormctl ship DIR --to s3://bucket/prefix`: copies the log's sealed
//! files and anchor to an S3 bucket under Object Lock (format-spec.md §15);
//! `wormctl verify s3://bucket/prefix [--state DIR]` checks the copy alone,
//! `wormctl verify DIR --remote s3://…` checks the log against it, and
//! `wormctl restore s3://… DIR` brings it back. Endpoint, region and
//! credentials come from `--endpoint-url`, `--region` and `--profile`, then
//! the standard AWS environment and profiles (`S3Target::from_env_with`).

use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wormlog_s3::{self as ship, LockMode, S3Overrides, S3Target};

/// The global `--profile`, `--endpoint-url` and `--region`.
static OVERRIDES: OnceLock<S3Overrides> = OnceLock::new();

pub fn set_overrides(o: S3Overrides) {
    // Set once, before any command runs.
    let _ = OVERRIDES.set(o);
}

/// The bucket at `url` as the flags, the environment and the profile say.
fn target(url: &str) -> Result<S3Target, wormlog::Error> {
    S3Target::from_env_with(url, OVERRIDES.get_or_init(S3Overrides::default))
}

/// `target`, a bad URL or missing credentials being the operator's.
pub fn target_for(url: &str) -> Result<S3Target, Fail> {
    target(url).map_err(Fail::usage)
}

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// Where: s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Lock each object at least until TIME (RFC 3339, or a duration from
    /// now like 400d). Without it, the lock period is the one the log's
    /// recorded retention policy implies (its min_age, else its max_age).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    retain_until: Option<u64>,
    /// GOVERNANCE mode (users with s3:BypassGovernanceRetention may delete);
    /// the default is COMPLIANCE (no one may).
    #[arg(long)]
    governance: bool,
    /// Ship the Merkle tree's tiles too (tile/<L>/<N>, C2SP tlog-tiles), so
    /// that a third party with a checkpoint note proves records from the
    /// bucket alone. A PUT per 256 records.
    #[arg(long)]
    tiles: bool,
    /// Ship the active segment's tail too: what was appended since the last
    /// tail object, whole frames only, made durable first (format-spec.md
    /// §15.6). Without it, records not yet sealed stay on this host.
    #[arg(long)]
    tail: bool,
    /// After shipping, sign a checkpoint of the verified log with this
    /// private key (from `wormctl keygen`) and ship it too
    /// (`checkpoints/…`, locked like the rest): what `verify s3://…
    /// --pubkey` checks the copy against. With --tail it covers the head;
    /// without, the copy reaches it once the head is sealed and shipped.
    #[arg(long, value_name = "FILE")]
    checkpoint_key: Option<PathBuf>,
}

pub fn parse_until(s: &str) -> Result<u64, String> {
    if let Ok(d) = out::parse_duration(s) {
        return Ok(out::now_ns().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
    }
    out::parse_time(s)
}

/// Signs a checkpoint of the log in `dir` (verified first, as `wormctl
/// checkpoint` does) and puts it under the copy, locked until `until_ns`.
fn ship_checkpoint(
    dir: &Path,
    key: &Path,
    target: &S3Target,
    until_ns: u64,
) -> Result<String, Fail> {
    let text = crate::verify::read_small(key, "private key")?;
    let key = wormlog::CheckpointKey::from_private_string(text.trim())
        .map_err(|e| Fail::usage(format!("{}: {e}", key.display())))?;
    let log = crate::open::read_only(dir)?;
    let report = log.verify()?;
    let checkpoint = log.checkpoint_verified(&report)?;
    let note = checkpoint.sign(&key);
    let sink = target.clone().retain_until(until_ns);
    wormlog::CheckpointSink::put(&sink, &note)
        .map_err(|e| Fail::io(format!("shipping the checkpoint to {}", target.url()), e))?;
    Ok(format!(
        "shipped a checkpoint at seq {} signed by {}",
        checkpoint.seq,
        key.public().name()
    ))
}

fn remote_fail(e: wormlog::Error) -> Fail {
    match e {
        wormlog::Error::Remote { op: "verify", .. } => Fail::tampered(e),
        other => Fail::log(other),
    }
}

pub fn run(a: Args) -> Result<(), Fail> {
    let mode = if a.governance {
        LockMode::Governance
    } else {
        LockMode::Compliance
    };
    let mut target = target(&a.to)
        .map_err(Fail::usage)?
        .lock_mode(mode)
        .with_tiles(a.tiles)
        .with_tail(a.tail);
    if let Some(t) = a.retain_until {
        target = target.retain_until(t);
    }
    // The policy the records state, not one given here: the copy is locked
    // at least as long as the log must keep its records.
    let policy = wormlog::Log::open_read_only(&a.dir, wormlog::Options::default())
        .map_err(Fail::log)?
        .retention_policy();
    let r = ship::ship(&a.dir, &target, policy.as_ref()).map_err(remote_fail)?;
    let mut out = Out::new();
    // A tile per 256 records: counted, not listed.
    let is_tile = |o: &&ship::ShippedObject| {
        o.key.match_indices("tile/").any(|(i, _)| {
            (i == 0 || o.key[..i].ends_with('/'))
                && wormlog::format::merkle::parse_tile_path(&o.key[i..]).is_some()
        })
    };
    let mut tiles = 0;
    for o in r.uploaded.iter().chain(&r.adopted) {
        if is_tile(&o) {
            tiles += 1;
            continue;
        }
        out.line(format!(
            "shipped {} version {} ({} bytes)",
            o.key, o.version_id, o.bytes
        ))?;
    }
    if tiles > 0 {
        out.line(format!("shipped {tiles} Merkle tiles"))?;
    }
    out.line(format!(
        "{} uploaded, {} found from an interrupted run, {} already shipped, locked until {}",
        r.uploaded.len(),
        r.adopted.len(),
        r.already,
        out::rfc3339(r.retain_until_ns)
    ))?;
    if let Some(key) = &a.checkpoint_key {
        out.line(ship_checkpoint(&a.dir, key, &target, r.retain_until_ns)?)?;
    }
    if !a.tail {
        // What stayed here: the records after the last sealed one.
        let log =
            wormlog::Log::open_read_only(&a.dir, wormlog::Options::default()).map_err(Fail::log)?;
        let head = log.head().seq;
        let sealed_through = log
            .segments()
            .map_err(Fail::log)?
            .iter()
            .filter(|s| s.sealed)
            .map(|s| s.last_seq)
            .max()
            .unwrap_or(0);
        if head > sealed_through {
            out.line(format!(
                "records {}..={} are not sealed and stayed on this host: `--tail` ships them \
                 (or `wormctl seal` first)",
                sealed_through + 1,
                head
            ))?;
        }
    }
    out.flush()
}

/// `wormctl verify s3://…`: the copy alone, or against the log's
/// record of what it shipped (`--state DIR`); with `--pubkey`, also the
/// checkpoint notes shipped beside it.
pub fn verify(url: &str, state: Option<&Path>, pubkey: Option<&Path>) -> Result<(), Fail> {
    let target = target(url).map_err(Fail::usage)?;
    let r = ship::verify_remote(&target, state).map_err(remote_fail)?;
    let mut out = Out::new();
    if !r.shadowed.is_empty() {
        return Err(Fail::tampered(format!(
            "{}: objects with versions or delete markers over what was shipped: {}",
            url,
            r.shadowed.join(", ")
        )));
    }
    if !r.unrecorded.is_empty() {
        return Err(Fail::tampered(format!(
            "{}: objects the log's record does not name (it never shipped them): {}",
            url,
            r.unrecorded.join(", ")
        )));
    }
    out.line(format!(
        "OK: {} sealed segments in {} (seqs {}..={}), chain linked across them, {} anchor objects",
        r.segments, url, r.first_seq, r.last_seq, r.anchors
    ))?;
    out.line(tail_line(&r))?;
    if state.is_none() && pubkey.is_none() {
        out.line(
            "   without --state DIR or --pubkey FILE this cannot rule out segments added at the \
             end by someone with write access to the bucket (the chain has no key)",
        )?;
    }
    if let Some(key) = pubkey {
        // The copy reaches its tail's last record where tails were shipped.
        let reach = r.tail_last_seq.map_or(r.last_seq, |t| t.max(r.last_seq));
        out.line(verify_checkpoints(&target, url, key, reach)?)?;
    }
    out.flush()
}

/// Every checkpoint note shipped under the copy must carry a good
/// signature by `key`; the copy, restored, must hold what the latest note
/// it reaches commits to (its records, tree and retention state).
fn verify_checkpoints(
    target: &S3Target,
    url: &str,
    key: &Path,
    last_seq: u64,
) -> Result<String, Fail> {
    let key_text = crate::verify::read_small(key, "public key")?;
    let key = wormlog::CheckpointPublicKey::from_vkey_string(key_text.trim())
        .map_err(|e| Fail::usage(format!("{}: {e}", key.display())))?;
    let notes = ship::checkpoints(target).map_err(remote_fail)?;
    let mut latest: Option<wormlog::Checkpoint> = None;
    let mut beyond = 0;
    // Notes no line of which names the key given: all of them, and the
    // operator gave another key (exit 2); some among notes the key signed,
    // and someone with write access put them there (exit 1).
    let mut foreign: Vec<String> = Vec::new();
    let mut signed = 0;
    for (k, note) in &notes {
        let cp = match wormlog::Checkpoint::verify_note(note, &key) {
            Ok(cp) => cp,
            Err(e @ wormlog::CheckpointError::NotSignedByKey { .. }) => {
                foreign.push(format!("{k}: {e}"));
                continue;
            }
            Err(e) => return Err(Fail::tampered(format!("{k}: {e}"))),
        };
        signed += 1;
        if cp.seq > last_seq {
            beyond += 1; // commits to records not sealed and shipped yet
        } else if latest.as_ref().is_none_or(|l| cp.seq >= l.seq) {
            latest = Some(cp);
        }
    }
    match (signed, foreign.first()) {
        (0, Some(first)) => return Err(Fail::usage(first.clone())),
        (_, Some(_)) => {
            return Err(Fail::tampered(format!(
                "{url}: checkpoint notes not signed by the key, beside {signed} that are: {}",
                foreign.join("; ")
            )))
        }
        _ => {}
    }
    // No note to check the copy against is nothing found wrong, and
    // nothing checked: the operator's to fix (exit 2), with how.
    let Some(cp) = latest else {
        return Err(Fail::usage(if notes.is_empty() {
            format!(
                "{url}: the copy holds no checkpoint notes to check with --pubkey: ship one \
                 (`wormctl ship DIR --to {url} --checkpoint-key KEY`, or automatic checkpoints \
                 to the bucket), or verify without --pubkey"
            )
        } else {
            format!(
                "{url}: none of the {} checkpoint notes is within the copy: each commits to \
                 records after seq {last_seq}, the last the copy holds ({beyond} beyond it); \
                 seal and ship further, then verify again",
                notes.len()
            )
        }));
    };
    let (tmp, _) = restore_to_temp(url)?;
    let log =
        wormlog::Log::open_read_only(tmp.path(), wormlog::Options::default()).map_err(Fail::log)?;
    log.verify().map_err(Fail::log)?;
    // The copy keeps what the host's retention dropped, so the note's
    // retention point (where the host's log started) does not apply to it;
    // its records and tree do.
    let rec = log.get(cp.seq).map_err(Fail::log)?;
    if *rec.hash() != cp.hash {
        return Err(Fail::tampered(format!(
            "{url}: record {} has chain hash {}, the checkpoint says {}",
            cp.seq,
            wormlog::format::hex(rec.hash()),
            wormlog::format::hex(cp.hash)
        )));
    }
    if let Some(root) = cp.tree_root {
        let now = log.tree_head_at(cp.seq).map_err(Fail::log)?;
        if now.root != root {
            return Err(Fail::tampered(format!(
                "{url}: the Merkle tree of records 1..={} differs from the checkpoint's",
                cp.seq
            )));
        }
    }
    let tiles = check_tiles(target, url, &log, cp.seq)?;
    // What the copy holds past the newest note it reaches: records a
    // checkpoint kept elsewhere does not vouch for yet (issue 28).
    let past = last_seq.saturating_sub(cp.seq);
    Ok(format!(
        "checkpoints: {} notes signed by the key; the copy holds what the one at seq {} commits to ({beyond} commit to records past the copy); the copy reaches {past} record(s) past that note\n{tiles}",
        notes.len(),
        cp.seq
    ))
}

/// Every hash tile in the bucket must be the tile of the tree the copy's
/// records make (`log`, restored from the copy); tiles past the copy's
/// records cannot be checked yet and are counted. Says whether the bucket
/// holds every tile a proof at `size` (the checkpoint's) needs. One tile
/// in memory at a time.
fn check_tiles(
    target: &S3Target,
    url: &str,
    log: &wormlog::Log,
    size: u64,
) -> Result<String, Fail> {
    // Level L of a tree of `size` leaves has size / 256^L entries: tiles
    // below entries / 256 full, and one partial tile at the edge.
    let entries_at = |level: u32| size.checked_shr(8 * level).unwrap_or(0);
    let needed = |level: u32, index: u64, width: u64| {
        let e = entries_at(level);
        (width == 256 && index < e / 256) || (width < 256 && (index, width) == (e / 256, e % 256))
    };
    let expected = wormlog::format::merkle::tiles_of_size_count(size);
    let (mut matching, mut beyond, mut present) = (0u64, 0u64, 0u64);
    let mut bad = None;
    let mut last_key = String::new();
    ship::for_each_tile(target, &mut |t| {
        // One latest version per key; a listing that repeats one must not
        // count a tile twice (and so cover for a missing one).
        if t.key == last_key {
            return Ok(());
        }
        last_key.clone_from(&t.key);
        if needed(t.level, t.index, t.width) {
            present += 1;
        }
        match log.tile(t.level, t.index, t.width) {
            Ok(hashes) if hashes == t.hashes => matching += 1,
            Ok(_) => {
                bad.get_or_insert(t.key);
            }
            Err(wormlog::Error::TreeUnavailable { .. }) => beyond += 1,
            Err(e) => return Err(e),
        }
        Ok(())
    })
    .map_err(remote_fail)?;
    if let Some(key) = bad {
        return Err(Fail::tampered(format!(
            "{url}: tile {key} differs from the tree of the copy's records"
        )));
    }
    let serves = if present == expected {
        format!("every tile a proof at tree size {size} needs is there")
    } else {
        format!(
            "{} tiles a proof at tree size {size} needs are not shipped yet",
            expected - present.min(expected)
        )
    };
    Ok(format!(
        "tiles: {matching} in the bucket are the tree of the copy's records ({beyond} past them); {serves}"
    ))
}

/// `wormctl verify DIR --remote s3://…`: the copy verifies with DIR's
/// record, and DIR's files have the bytes of their copies.
pub fn compare(dir: &Path, url: &str) -> Result<(), Fail> {
    let target = target(url).map_err(Fail::usage)?;
    let c = ship::compare_local(dir, &target).map_err(remote_fail)?;
    if !c.remote.shadowed.is_empty() {
        return Err(Fail::tampered(format!(
            "{}: objects with versions or delete markers over what was shipped: {}",
            url,
            c.remote.shadowed.join(", ")
        )));
    }
    let mut out = Out::new();
    out.line(format!(
        "OK: {} local files equal their copies in {url}; the copy holds {} sealed segments (seqs {}..={}), chain linked",
        c.matching, c.remote.segments, c.remote.first_seq, c.remote.last_seq
    ))?;
    if !c.unshipped.is_empty() {
        out.line(format!("not shipped yet: {}", c.unshipped.join(", ")))?;
    }
    out.flush()
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// Where the copy is: s3://bucket/prefix.
    from: String,
    /// A new (absent or empty) directory to restore the log into.
    dir: PathBuf,
    /// The log directory whose record (wormlog.ship) names the versions to
    /// take; without it, the latest of each object.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
}

/// `wormctl restore s3://bucket/prefix DIR`: the copy, verified as it comes
/// in, then the restored log verified whole.
pub fn restore(a: RestoreArgs) -> Result<(), Fail> {
    let target = target(&a.from).map_err(Fail::usage)?;
    let r = ship::restore(&target, &a.dir, a.state.as_deref()).map_err(remote_fail)?;
    let log =
        wormlog::Log::open_read_only(&a.dir, wormlog::Options::default()).map_err(Fail::log)?;
    let v = log.verify().map_err(Fail::log)?;
    let mut out = Out::new();
    out.line(format!(
        "restored {} sealed segments (seqs {}..={}) from {} into {}; verified {} records",
        r.segments,
        r.first_seq,
        r.last_seq,
        a.from,
        a.dir.display(),
        v.records
    ))?;
    out.line(tail_line(&r))?;
    if !r.shadowed.is_empty() {
        out.line(format!(
            "warning: objects with versions or delete markers: {}",
            r.shadowed.join(", ")
        ))?;
    }
    out.flush()
}

/// The copy at `url`, restored (and so verified) into a temporary
/// directory, for dump, stat and the other read-only commands.
pub fn restore_to_temp(url: &str) -> Result<(tempfile::TempDir, ship::RemoteReport), Fail> {
    let target = target(url).map_err(Fail::usage)?;
    let tmp = tempfile::tempdir().map_err(|e| Fail::io("temporary directory", e))?;
    let r = ship::restore(&target, tmp.path(), None).map_err(remote_fail)?;
    Ok((tmp, r))
}

#[derive(clap::Args)]
pub struct BucketArgs {
    #[command(subcommand)]
    action: BucketAction,
}

#[derive(clap::Subcommand)]
enum BucketAction {
    /// Create a bucket with Object Lock on (and so versioning), as `ship`
    /// needs; a bucket that exists is checked instead: with Object Lock it
    /// will do, without it it cannot (S3 gives a bucket Object Lock only at
    /// creation).
    Create {
        /// s3://BUCKET (a prefix, if given, is ignored).
        url: String,
    },
    /// Say whether the bucket has Object Lock on.
    Check {
        /// s3://BUCKET.
        url: String,
    },
}

/// `wormctl bucket create|check s3://BUCKET`.
pub fn bucket(a: BucketArgs) -> Result<(), Fail> {
    let (url, create) = match a.action {
        BucketAction::Create { url } => (url, true),
        BucketAction::Check { url } => (url, false),
    };
    let t = target(&url).map_err(Fail::usage)?;
    if create {
        t.create_bucket_with_object_lock().map_err(Fail::log)?;
    }
    let bucket = t.url();
    let bucket = bucket.trim_end_matches('/');
    if !t.object_lock_enabled().map_err(Fail::log)? {
        return Err(Fail::usage(format!(
            "{bucket} has no Object Lock: ship refuses to copy into it (nothing there could \
             be kept from deletion), and S3 gives a bucket Object Lock only when it is created; \
             create another with `wormctl bucket create s3://NEW-BUCKET`"
        )));
    }
    let mut out = Out::new();
    out.line(format!(
        "{bucket}: Object Lock on{}; ship to it with `wormctl ship DIR --to {bucket}/PREFIX`",
        if create {
            " (created, or already there)"
        } else {
            ""
        }
    ))?;
    out.flush()
}

/// What the copy's tail objects hold, or that it has none.
pub fn tail_line(r: &ship::RemoteReport) -> String {
    let left_out = r.tail_left_out.map_or_else(String::new, |s| {
        format!(
            "; the tail of segment {s} is left out until the segment before it is sealed and \
             shipped (a roll closed it before its last tail run)"
        )
    });
    let line = match (r.tail_segment, r.tail_last_seq, r.tail_last_ns) {
        (Some(seg), Some(seq), Some(ns)) => format!(
            "   tail: segment {seg} rebuilt from {} tail object(s), chained to the sealed files, \
             through seq {seq} committed at {}: the newest record the copy holds",
            r.tail_objects,
            out::rfc3339(ns)
        ),
        _ => format!(
            "   tail: none shipped; the copy ends at seq {}, the last sealed record (ship --tail, \
             or a writer shipping with its tail, copies what comes after)",
            r.last_seq
        ),
    };
    line + &left_out
}
