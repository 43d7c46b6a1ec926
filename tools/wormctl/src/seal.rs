//! `wormctl seal DIR`: closes the active segment and seals every closed
//! segment (compressed, read-only). Needs the writer's lock.

use crate::control::Writer;
use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::PathBuf;
use wormlog::Options;

#[derive(clap::Args)]
pub struct Args {
    /// The log directory (no writer may have it open).
    dir: PathBuf,
    /// zstd level for the sealed files.
    #[arg(long, default_value_t = 3)]
    level: i32,
}

pub fn run(a: Args) -> Result<(), Fail> {
    let count_sealed = || -> Result<usize, Fail> {
        Ok(crate::open::read_only(&a.dir)?
            .segments()?
            .iter()
            .filter(|s| s.sealed)
            .count())
    };
    let before = count_sealed()?;
    let (sealed, by) = match crate::control::writer(&a.dir, Options::default().seal_level(a.level))?
    {
        Writer::Here(log) => {
            let n = log.seal()?;
            log.close()?;
            (n, String::new())
        }
        Writer::Live(live) => {
            // The running writer seals at its own level.
            let r = live.call("seal", Vec::new())?;
            let n = r
                .first()
                .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
                .unwrap_or(0);
            (n, format!(" by the running writer (pid {})", live.pid()?))
        }
    };
    let log = crate::open::read_only(&a.dir)?;
    let mut out = Out::new();
    out.line(format!(
        "sealed {sealed} segment(s) now in {}{by} ({} were sealed before); every sealed segment:",
        out::path_text(&a.dir),
        before
    ))?;
    for s in log.segments()?.iter().filter(|s| s.sealed) {
        out.line(format!(
            "  {}  seqs {}..={}  {} -> {} (ratio {:.2})",
            out::path_text(&s.path),
            s.first_seq,
            s.last_seq,
            out::size(s.bytes_uncompressed),
            out::size(s.bytes_on_disk),
            s.bytes_uncompressed as f64 / s.bytes_on_disk.max(1) as f64
        ))?;
    }
    Ok(())
}
