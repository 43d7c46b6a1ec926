//! Opening a log directory for the commands: read-only beside any writer,
//! or as the writer for the commands that change it (never creating one).

use crate::fail::Fail;
use std::path::Path;
use wormlog::{Log, Options, Sealing};

fn check_dir(dir: &Path) -> Result<(), Fail> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Fail::usage(format!(
            "{}: not a directory (give a log directory; dump and verify also take one segment file)",
            dir.display()
        ))),
        Err(e) => Err(Fail::io(dir.display(), e)),
    }
}

/// A snapshot of the log, opened without its lock: works while a writer
/// runs and changes no byte.
pub fn read_only(dir: &Path) -> Result<Log, Fail> {
    check_dir(dir)?;
    Log::open_read_only(dir, Options::default()).map_err(Fail::log)
}

/// The log opened for writing, for seal, retention and hold: it must exist,
/// and no other writer may have it. Sealing stays manual so that opening
/// does no more than the command asks.
pub fn writer(dir: &Path, options: Options) -> Result<Log, Fail> {
    check_dir(dir)?;
    Log::open(
        dir,
        options.create_if_missing(false).sealing(Sealing::Manual),
    )
    .map_err(Fail::log)
}
