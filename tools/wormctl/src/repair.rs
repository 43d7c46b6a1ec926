//! `wormctl repair DIR [--dry-run]`: opens the log as a writer with
//! `Options::repair`, so that damage to durable records of the active
//! segment is copied aside and the log goes on after the last intact
//! record, recorded in the chain (format-spec.md §7); prints what the open
//! found and did. `--dry-run` only says what it would do.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::PathBuf;
use wormlog::{Error, Log, Options};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory (no writer may have it open).
    dir: PathBuf,
    /// Say what would be done, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(a: Args) -> Result<(), Fail> {
    let mut out = Out::new();
    if a.dry_run {
        out.line(plan(&a)?)?;
        return out.flush();
    }
    let log = crate::open::writer(&a.dir, Options::default().repair(true))?;
    let report = log.recovery().clone();
    log.close()?;
    out.line(format!("{}: {report}", out::path_text(&a.dir)))?;
    out.flush()
}

/// What a repair would do, from a read-only look: damage a writer's open
/// refuses in the active segment, or nothing to repair.
fn plan(a: &Args) -> Result<String, Fail> {
    let dir = out::path_text(&a.dir);
    let e = match Log::open_read_only(&a.dir, Options::default()) {
        Ok(_) => {
            return Ok(format!(
                "{dir}: nothing to repair: the log opens as it is (a writer's open cuts a torn \
                 tail by itself, and says so)"
            ))
        }
        Err(e) => e,
    };
    match &e {
        // Frames of the active segment (a seq expected there): what a
        // writer's open refuses and a repair moves aside.
        Error::Corrupt {
            path,
            offset,
            seq: Some(seq),
            ..
        } if path.extension().is_some_and(|x| x == "wlog") => {
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            Ok(format!(
                "{dir}: would copy {} whole aside (as {}.damaged-TIME), cut it at offset \
                 {offset} ({} bytes from there, seq {seq} on, are not readable as records), and \
                 go on in a new segment whose first records say so; run without --dry-run to do \
                 it",
                out::path_text(path),
                path.file_name().unwrap_or_default().to_string_lossy(),
                len.saturating_sub(*offset),
            ))
        }
        // Anything else (a sealed file, a header, a missing segment) a
        // repair of the active segment cannot mend: the error says where.
        _ => Err(Fail::log(e)),
    }
}
