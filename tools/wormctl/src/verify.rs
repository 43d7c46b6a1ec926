//! `wormctl verify PATH`: full verification of a log directory (optionally
//! against a signed checkpoint) or of one segment file. Exit 0 intact, 1
//! tampered or corrupt (the first failure named), 2 usage or I/O error.

use crate::fail::Fail;
use crate::out::{self, Out};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wormlog::format::hex;
use wormlog::{Checkpoint, CheckpointPublicKey, VerifyProgress, VerifyReport};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("signer").args(["pubkey", "policy"])))]
pub struct Args {
    /// A log directory, or one segment file (.wlog or .wlog.zst).
    path: PathBuf,
    /// A signed checkpoint (from `wormctl checkpoint`): the log must still
    /// hold, unchanged, everything up to it. Repeat to check several (each
    /// signed by --pubkey's key, or as --policy says).
    #[arg(long, value_name = "FILE", requires = "signer")]
    checkpoint: Vec<PathBuf>,
    /// A trust policy (C2SP tlog-policy: `log`, `witness`, `group`,
    /// `quorum` lines): each --checkpoint must be signed by one of its logs
    /// and cosigned by a quorum of its witnesses (instead of --pubkey).
    #[arg(long, value_name = "FILE", conflicts_with = "pubkey")]
    policy: Option<PathBuf>,
    /// The public key (from `wormctl keygen`) that signed the checkpoint;
    /// with an s3:// PATH, the checkpoints shipped there are checked with
    /// it (each signature, and the copy against the latest it reaches).
    #[arg(long, value_name = "FILE")]
    pubkey: Option<PathBuf>,
    /// The verification key (from `wormctl setup-keys`, a file holding its
    /// one line): check forward-secure sealing. Repeat for a log sealed
    /// under several keys over time.
    #[arg(long = "verify-key", value_name = "FILE")]
    verify_key: Vec<PathBuf>,
    /// The compliance floor the auditor holds (e.g. 365d): every drop the
    /// log records is judged by at least this minimum age, whatever policy
    /// the log states (what the host wrote once everything sealed is gone).
    #[arg(long = "min-age", value_name = "DURATION", value_parser = crate::out::parse_duration)]
    min_age: Option<std::time::Duration>,
    /// The directory is a copy of a log (a restore from its bucket, a
    /// backup), which has no sealing key file: check it through its last
    /// tag (what the host wrote after the copy, a copy cannot show).
    #[arg(long)]
    copy: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// With an s3:// PATH: the log directory whose record of what it
    /// shipped (wormlog.ship) the copy is checked against.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// With a log directory: also check it against its copy at
    /// s3://bucket/prefix (the copy verifies, and each local file the log
    /// shipped has its copy's bytes).
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

/// Reads a small text file (a key or a checkpoint), refusing large ones.
pub fn read_small(path: &Path, what: &str) -> Result<String, Fail> {
    use std::io::Read;
    const MAX: u64 = 64 << 10;
    let io = |e| Fail::io(path.display(), e);
    // Read through a limit, not by the size metadata reports: a device or a
    // pipe (/dev/zero, <(yes)) says 0 bytes and never ends.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX {
        return Err(Fail::usage(format!(
            "{}: more than {MAX} bytes is too large for a {what}",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Fail::usage(format!("{}: a {what} is text; this is not", path.display())))
}

pub fn load_checkpoint(cp: &Path, key: &Path) -> Result<(Checkpoint, CheckpointPublicKey), Fail> {
    let key_text = read_small(key, "public key")?;
    let key = CheckpointPublicKey::from_vkey_string(key_text.trim())
        .map_err(|e| Fail::usage(format!("{}: {e}", key.display())))?;
    let note = read_small(cp, "checkpoint")?;
    let checkpoint = Checkpoint::verify_note(&note, &key)
        .map_err(|e| Fail::log(e.into()).within(cp.display()))?;
    Ok((checkpoint, key))
}

/// A trust policy file (C2SP tlog-policy); a malformed one is the
/// operator's (2).
pub fn load_policy(path: &Path) -> Result<wormlog::Policy, Fail> {
    let text = read_small(path, "policy")?;
    wormlog::Policy::parse(&text).map_err(|e| Fail::usage(format!("{}: {e}", out::path_text(path))))
}

/// A checkpoint accepted by `policy`: signed by one of its logs, cosigned
/// by a quorum of its witnesses (a quorum not met, or a cosignature that
/// does not verify, is exit 1); with the log key that signed it.
pub fn load_checkpoint_with_policy(
    cp: &Path,
    policy: &wormlog::Policy,
) -> Result<(Checkpoint, CheckpointPublicKey), Fail> {
    let note = read_small(cp, "checkpoint")?;
    let accepted = policy
        .check_note(&note)
        .map_err(|e| Fail::log(e.into()).within(cp.display()))?;
    let key = policy
        .logs()
        .iter()
        .find(|k| k.name() == accepted.log)
        .cloned()
        .ok_or_else(|| Fail::usage("the policy's log key vanished"))?;
    Ok((accepted.checkpoint, key))
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "verifying {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

pub fn run(a: Args) -> Result<(), Fail> {
    let result = check(&a).and_then(|()| match &a.remote {
        #[cfg(feature = "s3")]
        Some(url) => crate::ship::compare(&a.path, url),
        #[cfg(not(feature = "s3"))]
        Some(url) => Err(Fail::usage(format!(
            "{url}: this wormctl was built without the s3 feature"
        ))),
        None => Ok(()),
    });
    if let (true, Err(f)) = (a.json, &result) {
        // Machines get the verdict on stdout too, as one JSON object.
        Out::new().json(&serde_json::json!({
            "path": a.path.display().to_string(),
            "intact": false,
            "tampered": f.code() == crate::fail::TAMPERED,
            "error": f.message(),
        }))?;
    }
    result
}

fn check(a: &Args) -> Result<(), Fail> {
    if let Some(url) = a.path.to_str().filter(|p| p.starts_with("s3://")) {
        #[cfg(feature = "s3")]
        return crate::ship::verify(url, a.state.as_deref(), a.pubkey.as_deref());
        #[cfg(not(feature = "s3"))]
        return Err(Fail::usage(format!(
            "{url}: this wormctl was built without the s3 feature"
        )));
    }
    if a.policy.is_some() && a.checkpoint.is_empty() {
        return Err(Fail::usage(
            "--policy needs --checkpoint FILE: it says which checkpoints to trust",
        ));
    }
    if a.pubkey.is_some() && a.checkpoint.is_empty() {
        return Err(Fail::usage(
            "--pubkey needs --checkpoint FILE (or an s3:// path, whose shipped checkpoints it checks)",
        ));
    }
    let started = Instant::now();
    let meta = std::fs::metadata(&a.path).map_err(|e| Fail::io(a.path.display(), e))?;
    let mut out = Out::new();
    if !meta.is_dir() {
        if !a.checkpoint.is_empty() {
            return Err(Fail::usage(
                "--checkpoint needs a log directory: a checkpoint covers the whole log",
            ));
        }
        let report = wormlog::verify_file(&a.path).map_err(Fail::file)?;
        return summary(&mut out, a, &report, &[], &[], started);
    }
    let mut checkpoints = Vec::with_capacity(a.checkpoint.len());
    if let Some(key) = &a.pubkey {
        for cp in &a.checkpoint {
            checkpoints.push(load_checkpoint(cp, key)?);
        }
    }
    if let Some(path) = &a.policy {
        let policy = load_policy(path)?;
        for cp in &a.checkpoint {
            checkpoints.push(load_checkpoint_with_policy(cp, &policy)?);
        }
    }
    let mut options = wormlog::Options::default();
    if let Some(floor) = a.min_age {
        options = options.verify_min_age(floor);
    }
    options = options.verify_as_copy(a.copy);
    let log = crate::open::read_only_with(&a.path, options)?;
    let bar = progress_bar();
    let progress = |p: VerifyProgress| {
        if let Some(b) = &bar {
            b.set_length(p.bytes_total);
            // Reports come from several threads; the bar only moves forward.
            if p.bytes_checked > b.position() {
                b.set_position(p.bytes_checked);
            }
        }
    };
    let mut keys = Vec::with_capacity(a.verify_key.len());
    for path in &a.verify_key {
        let text = read_small(path, "verification key")?;
        keys.push(
            wormlog::VerificationKey::from_text(&text)
                .map_err(|e| Fail::usage(format!("{}: {e}", out::path_text(path))))?,
        );
    }
    let result = match checkpoints.first() {
        Some((cp, _)) => log.verify_against_with_progress(cp, progress),
        None if !keys.is_empty() => log.verify_sealed_with_progress(&keys, progress),
        None => log.verify_with_progress(progress),
    };
    // Each further checkpoint, and with keys the sealing, is a pass of its
    // own.
    let result = checkpoints
        .iter()
        .skip(1)
        .fold(result, |r, (cp, _)| r.and_then(|_| log.verify_against(cp)));
    let result = match (checkpoints.is_empty(), result) {
        (false, Ok(_)) if !keys.is_empty() => log.verify_sealed(&keys),
        (_, r) => r,
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = result?;
    let foreign = log.foreign_files()?;
    summary(&mut out, a, &report, &checkpoints, &foreign, started)
}

fn summary(
    out: &mut Out,
    a: &Args,
    r: &VerifyReport,
    checkpoints: &[(Checkpoint, CheckpointPublicKey)],
    foreign: &[PathBuf],
    started: Instant,
) -> Result<(), Fail> {
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        return out.json(&summary_json(a, r, checkpoints, foreign, secs));
    }
    out.line(format!(
        "OK {}: {} records, seq {}..={}, in {} segment(s) ({} sealed), {} checked in {secs:.2} s",
        out::path_text(&a.path),
        r.records,
        r.first_seq,
        r.head.seq,
        r.segments,
        r.sealed_segments,
        out::size(r.bytes),
    ))?;
    out.line(format!(
        "   chain from {} at seq {} to head {} ({})",
        hex(r.start_hash),
        r.first_seq.saturating_sub(1),
        hex(r.head.hash),
        out::rfc3339(r.head.timestamp_ns)
    ))?;
    if !foreign.is_empty() {
        out.line(format!(
            "   note: {} file(s) here are not wormlog's and were not checked: {}",
            foreign.len(),
            out::file_list(foreign)
        ))?;
    }
    if let Some(s) = &r.sealing {
        out.line(sealing_line(s))?;
        for (key, seq) in &s.unproven_era_ends {
            out.line(format!(
                "   warning: the sealing era of key {} ends unproven: the re-key at seq {seq} \
                 found no key file of it, and its tags stop short of the re-key (the key file \
                 was lost, or removed with the records after its last tag; a checkpoint from \
                 before the re-key tells which)",
                hex(*key)
            ))?;
        }
    }
    if r.unchecked_tail_bytes > 0 {
        out.line(format!(
            "   warning: {} after the last intact record of the active segment were not \
             checked (a live writer's tail, a crash's torn tail that the next writer's open \
             cuts and logs, or bytes someone added)",
            out::size(r.unchecked_tail_bytes)
        ))?;
    }
    for (cp, key) in checkpoints {
        out.line(format!(
            "   holds checkpoint seq {} hash {} signed by {} unchanged",
            cp.seq,
            hex(cp.hash),
            key.name()
        ))?;
    }
    match checkpoints.first() {
        Some(_) => {}
        None if r.sealing.as_ref().is_some_and(|s| s.checked) => out.line(
            "   sealed records cannot be changed, removed or reordered unseen, even by whoever \
             holds this host now; the unsealed ones after them can",
        )?,
        None => out.line(
            "   without a checkpoint kept elsewhere (--checkpoint, --pubkey) this cannot rule \
             out a log rewritten with every hash recomputed, records cut from its end, or the \
             whole directory rolled back to an older copy",
        )?,
    }
    Ok(())
}

/// `verify --json`'s verdict: one object.
fn summary_json(
    a: &Args,
    r: &VerifyReport,
    checkpoints: &[(Checkpoint, CheckpointPublicKey)],
    foreign: &[PathBuf],
    secs: f64,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "path": a.path.display().to_string(),
        "intact": true,
        "segments": r.segments,
        "sealed_segments": r.sealed_segments,
        "records": r.records,
        "bytes": r.bytes,
        "first_seq": r.first_seq,
        "start_hash": hex(r.start_hash),
        "head_seq": r.head.seq,
        "head_hash": hex(r.head.hash),
        "head_time": out::rfc3339(r.head.timestamp_ns),
        "seconds": secs,
        "foreign_files": out::paths_json(foreign),
        "unchecked_tail_bytes": r.unchecked_tail_bytes,
        "checkpoint_checked": !checkpoints.is_empty(),
    });
    if let Some(s) = &r.sealing {
        v["sealing"] = serde_json::json!({
            "key_id": hex(s.key_id),
            "checked": s.checked,
            "sealed_through_epoch": s.sealed_through_epoch,
            "sealed_through_seq": s.sealed_through_seq,
            "sealed_through_time": s.sealed_through_ns.map(out::rfc3339),
            "unsealed_records": s.unsealed_records,
            "key_file_epoch": s.key_file_epoch,
            "unproven_era_ends": s.unproven_era_ends.iter()
                .map(|(k, seq)| serde_json::json!({"key_id": hex(*k), "rekey_seq": seq}))
                .collect::<Vec<_>>(),
        });
    }
    let held: Vec<_> = checkpoints
        .iter()
        .map(|(cp, key)| {
            serde_json::json!({
                "seq": cp.seq, "hash": hex(cp.hash), "signed_by": key.name(), "held": true,
            })
        })
        .collect();
    if let Some(first) = held.first() {
        v["checkpoint"] = first.clone();
        v["checkpoints"] = serde_json::Value::Array(held);
    }
    v
}

/// The forward-secure sealing line of the summary.
fn sealing_line(s: &wormlog::SealingReport) -> String {
    if !s.checked {
        return format!(
            "   forward-secure sealing under key {}: not checked (give --verify-key)",
            hex(s.key_id)
        );
    }
    match (
        s.sealed_through_epoch,
        s.sealed_through_seq,
        s.sealed_through_ns,
    ) {
        (Some(epoch), Some(seq), Some(ns)) => format!(
            "   sealed through {} (epoch {epoch}, seq {seq}); {} record(s) after it unsealed{}",
            out::rfc3339(ns),
            s.unsealed_records,
            if s.key_file_epoch.is_none() {
                " (the sealing key file is missing)"
            } else {
                ""
            }
        ),
        _ => format!(
            "   forward-secure sealing set up, no epoch sealed yet: {} record(s) unsealed",
            s.unsealed_records
        ),
    }
}
