//! `wormctl checkpoint DIR --key KEY`: verifies the log, then writes its
//! head (log id, seq, chain hash, time) as a signed note (format-spec.md
//! section 10). Reads beside a running writer.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::io::Write;
use std::path::PathBuf;
use wormlog::CheckpointKey;

#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    dir: PathBuf,
    /// The private key file from `wormctl keygen`.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Write the checkpoint here (never overwriting) instead of to stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Have a witness cosign it (C2SP tlog-witness): URL=WITNESS.pub, the
    /// witness's submission prefix (http://host:port) and its public key.
    /// Repeatable; the note comes back cosigned by each, or the command
    /// fails naming the witness and why (exit 1 when it has seen another
    /// history of this log, 2 when it could not be asked).
    #[arg(long = "witness", value_name = "URL=FILE")]
    witnesses: Vec<String>,
}

pub fn witnesses(specs: &[String]) -> Result<Vec<wormlog::Witness>, Fail> {
    specs
        .iter()
        .map(|spec| {
            let (url, file) = spec.split_once('=').ok_or_else(|| {
                Fail::usage(format!("--witness {spec}: expected URL=WITNESS.pub"))
            })?;
            let text = crate::verify::read_small(std::path::Path::new(file), "witness key")?;
            let key = wormlog::WitnessPublicKey::from_vkey_string(text.trim())
                .map_err(|e| Fail::usage(format!("{file}: {e}")))?;
            Ok(wormlog::Witness {
                url: url.to_string(),
                key,
            })
        })
        .collect()
}

pub fn run(a: Args) -> Result<(), Fail> {
    let text = crate::verify::read_small(&a.key, "private key")?;
    let key = CheckpointKey::from_private_string(text.trim())
        .map_err(|e| Fail::usage(format!("{}: {e}", a.key.display())))?;
    let log = crate::open::read_only(&a.dir)?;
    // Signing vouches for the log: never sign one that does not verify,
    // and sign the head and tree root the verification computed from the
    // records (the tree's files, read again after it, could have changed).
    let report = log.verify()?;
    let checkpoint = log.checkpoint_verified(&report)?;
    let witnesses = witnesses(&a.witnesses)?;
    let mut note = checkpoint.sign(&key);
    if !witnesses.is_empty() {
        note = log
            .cosign_checkpoint(&key.public(), &checkpoint, &note, &witnesses)
            .map_err(Fail::log)?;
    }
    match a.out {
        None => {
            let mut out = Out::new();
            out.line(note.trim_end())
        }
        Some(path) => {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            // 0644 at most, whatever the umask: a note anyone could rewrite
            // is not evidence.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o644);
            let mut f = o.open(&path).map_err(|e| Fail::io(path.display(), e))?;
            f.write_all(note.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Fail::io(path.display(), e))?;
            // Not eprintln!, which panics on a closed stderr: the note is
            // written and synced, and that is what counts.
            let _ = writeln!(
                std::io::stderr(),
                "checkpoint of {} at seq {} written to {}",
                out::path_text(&a.dir),
                checkpoint.seq,
                out::path_text(&path)
            );
            Ok(())
        }
    }
}
