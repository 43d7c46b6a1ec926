//! `wormctl setup-keys DIR`: sets up forward-secure sealing for a log. The
//! sealing key of epoch 1 goes into the log directory (`wormlog.fss`, mode
//! 0600, evolved every epoch); the verification key is printed once, and
//! written to a file only where the operator names one outside the log
//! directory. Nothing left on the host can derive it. On a sealed log it
//! rotates the key: the old key seals everything through now, over the new
//! key's sealing-started record (format-spec.md 10a, "Re-keying").

use crate::fail::Fail;
use crate::out::{self, Out};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wormlog::Options;

#[derive(clap::Args)]
pub struct Args {
    /// The log directory (it must exist; no other writer may have it open).
    dir: PathBuf,
    /// How long an epoch lasts: each is sealed when it ends.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Also write the verification key to this file (created, mode 0600;
    /// it must not be inside the log directory).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Whether `file` would land inside `dir` (after resolving what exists).
pub fn inside(file: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    resolve(parent).starts_with(resolve(dir))
}

/// A new file only its owner can read.
fn create_secret(path: &Path) -> Result<std::fs::File, Fail> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| Fail::io(path.display(), e))
}

/// Writes `text` to a new file only its owner can read, its data and its
/// directory entry synced.
pub fn write_secret(path: &Path, text: &str) -> Result<(), Fail> {
    let mut f = create_secret(path)?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| sync_parent(path))
        .map_err(|e| Fail::io(path.display(), e))
}

/// fsync of the directory that holds `path`, so that its entry survives a
/// power cut.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(parent)?.sync_all()
}

pub fn run(a: Args) -> Result<(), Fail> {
    if let Some(out) = &a.out {
        if inside(out, &a.dir) {
            return Err(Fail::usage(format!(
                "{}: the verification key must not be kept in the log directory",
                out::path_text(out)
            )));
        }
    }
    // The key file is created (empty, 0600) before sealing is set up: an
    // --out that exists or cannot be written must fail before the log has
    // a key nobody was shown (a red team lost it that way).
    let mut out_file = match &a.out {
        Some(out) => Some(create_secret(out)?),
        None => None,
    };
    // The key is shown and written to --out (synced) before the log
    // announces it: a crash after the announcement cannot lose it.
    let mut o = Out::new();
    let keep = |key: &wormlog::VerificationKey| -> std::io::Result<()> {
        let fail = |e: Fail| std::io::Error::other(e.message().to_string());
        o.line("verification key (shown once; keep it off this host, as secret as a private key):")
            .map_err(fail)?;
        o.line(key.to_text()).map_err(fail)?;
        o.flush().map_err(fail)?;
        if let Some(f) = out_file.as_mut() {
            f.write_all(format!("{}\n", key.to_text()).as_bytes())?;
            f.sync_all()?;
        }
        // And its name: a power cut must not take the file's directory
        // entry once the log announces the key (the eighteenth red team
        // saw no fsync of --out's directory).
        if let Some(out) = &a.out {
            sync_parent(out)?;
        }
        Ok(())
    };
    let log = crate::open::writer(&a.dir, Options::default());
    let set_up = log.and_then(|log| {
        log.setup_sealing_with(a.interval, keep)
            .map_err(Fail::log)?;
        Ok(log)
    });
    let log = match set_up {
        Ok(log) => log,
        Err(e) => {
            // Nothing was set up: the key written to --out seals nothing.
            if let Some(out) = &a.out {
                let _ = std::fs::remove_file(out);
            }
            return Err(e);
        }
    };
    // Set up and announced: the key is kept, whatever the close does.
    log.close().map_err(Fail::log)?;
    o.line(format!(
        "forward-secure sealing set up for {}: epochs of {}, sealing key in wormlog.fss",
        out::path_text(&a.dir),
        humantime::format_duration(a.interval)
    ))?;
    if let Some(out) = &a.out {
        o.line(format!("also written to {}", out::path_text(out)))?;
    }
    Ok(())
}
