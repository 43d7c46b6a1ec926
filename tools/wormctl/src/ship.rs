//! `wormctl ship DIR --to s3://bucket/prefix`: copies the log's sealed
//! files and anchor to an S3 bucket under Object Lock (format-spec.md §15),
//! and `wormctl verify s3://bucket/prefix [--state DIR]` checks the copy
//! alone. Endpoint, region and credentials come from the standard AWS
//! environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).

use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::{Path, PathBuf};
use wormlog::ship::{self, LockMode, S3Target};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// Where: s3://bucket/prefix.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Lock each object until TIME (RFC 3339, or a duration from now like 400d).
    #[arg(long, value_name = "TIME", value_parser = parse_until)]
    retain_until: u64,
    /// GOVERNANCE mode (users with s3:BypassGovernanceRetention may delete);
    /// the default is COMPLIANCE (no one may).
    #[arg(long)]
    governance: bool,
}

fn parse_until(s: &str) -> Result<u64, String> {
    if let Ok(d) = out::parse_duration(s) {
        return Ok(out::now_ns().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)));
    }
    out::parse_time(s)
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
    let target = S3Target::from_env(&a.to)
        .map_err(Fail::usage)?
        .lock_mode(mode)
        .retain_until(a.retain_until);
    let r = ship::ship(&a.dir, &target).map_err(remote_fail)?;
    let mut out = Out::new();
    for o in r.uploaded.iter().chain(&r.adopted) {
        out.line(format!(
            "shipped {} version {} ({} bytes)",
            o.key, o.version_id, o.bytes
        ))?;
    }
    out.line(format!(
        "{} uploaded, {} found from an interrupted run, {} already shipped, locked until {}",
        r.uploaded.len(),
        r.adopted.len(),
        r.already,
        out::rfc3339(a.retain_until)
    ))?;
    out.flush()
}

/// `wormctl verify s3://…`: the remote copy alone, or against the log's
/// record of what it shipped (`--state DIR`).
pub fn verify(url: &str, state: Option<&Path>) -> Result<(), Fail> {
    let target = S3Target::from_env(url).map_err(Fail::usage)?;
    let r = ship::verify_remote(&target, state).map_err(remote_fail)?;
    let mut out = Out::new();
    if !r.shadowed.is_empty() {
        return Err(Fail::tampered(format!(
            "{}: objects with versions or delete markers over what was shipped: {}",
            url,
            r.shadowed.join(", ")
        )));
    }
    out.line(format!(
        "OK: {} sealed segments in {} (seqs {}..={}), chain linked across them, {} anchor objects",
        r.segments, url, r.first_seq, r.last_seq, r.anchors
    ))?;
    out.flush()
}
