//! `wormctl keygen`: an Ed25519 key pair for signing checkpoints. The
//! private key file is created with mode 0600 and never overwritten.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::io::Write;
use std::path::PathBuf;
use wormlog::CheckpointKey;

#[derive(clap::Args)]
pub struct Args {
    /// The key's name, shown in signatures: 1-200 printable ASCII
    /// characters other than `+` (no spaces).
    #[arg(long, default_value = "wormlog-checkpoint")]
    name: String,
    /// Where to write the keys: OUT.key (private) and OUT.pub (public).
    #[arg(long, value_name = "OUT")]
    out: PathBuf,
}

pub fn create_new(path: &PathBuf, text: &str, private: bool) -> Result<(), Fail> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    // Never the umask's say alone: under umask 000 a public key written
    // 0666 could be swapped by anyone (a verifier would then trust theirs).
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = o.open(path).map_err(|e| Fail::io(path.display(), e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Fail::io(path.display(), e))
}

/// Writes PREFIX.key (0600) and PREFIX.pub (0644), never overwriting;
/// returns their paths.
pub fn write_pair(
    prefix: &std::path::Path,
    private_text: &str,
    public_text: &str,
) -> Result<(PathBuf, PathBuf), Fail> {
    let (private, public) = key_paths(prefix);
    create_new(&private, &format!("{private_text}\n"), true)?;
    create_new(&public, &format!("{public_text}\n"), false)?;
    Ok((private, public))
}

/// PREFIX.key and PREFIX.pub.
fn key_paths(prefix: &std::path::Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    (with(".key"), with(".pub"))
}

pub fn run(a: Args) -> Result<(), Fail> {
    // The library's rule, so that keygen makes every name a verifier
    // accepts and no other.
    CheckpointKey::check_name(&a.name)
        .map_err(|e| Fail::usage(format!("key name {:?}: {e}", a.name)))?;
    let key = CheckpointKey::generate(&a.name).map_err(|e| Fail::io("random key", e))?;
    let (private, public) = write_pair(
        &a.out,
        &key.to_private_string(),
        &key.public().to_vkey_string(),
    )?;
    let mut out = Out::new();
    out.line(format!(
        "private key: {} (keep it away from the log's host)",
        out::path_text(&private)
    ))?;
    out.line(format!("public key:  {}", out::path_text(&public)))
}
