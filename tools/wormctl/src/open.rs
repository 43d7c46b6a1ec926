//! Opening a log directory for the commands: read-only beside any writer
//! (or, for an s3:// URL, a copy restored from the bucket into a temporary
//! directory), or as the writer for the commands that change it (never
//! creating one).

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

/// A log opened read-only, with the temporary directory it was restored
/// into when it came from a bucket (removed after the log is dropped).
pub struct ReadLog {
    log: Log,
    _restored: Option<Restored>,
}

#[cfg(feature = "s3")]
type Restored = tempfile::TempDir;
#[cfg(not(feature = "s3"))]
type Restored = ();

impl std::ops::Deref for ReadLog {
    type Target = Log;
    fn deref(&self) -> &Log {
        &self.log
    }
}

/// A snapshot of the log, opened without its lock: works while a writer
/// runs and changes no byte. An s3://bucket/prefix is restored (verified,
/// one segment at a time) into a temporary directory first.
pub fn read_only(dir: &Path) -> Result<ReadLog, Fail> {
    read_only_with(dir, Options::default())
}

/// [`read_only`] with `options` (verify's compliance floor, say).
pub fn read_only_with(dir: &Path, options: Options) -> Result<ReadLog, Fail> {
    if let Some(url) = dir.to_str().filter(|d| d.starts_with("s3://")) {
        #[cfg(feature = "s3")]
        {
            let (tmp, _) = crate::ship::restore_to_temp(url)?;
            let log = Log::open_read_only(tmp.path(), options).map_err(Fail::log)?;
            return Ok(ReadLog {
                log,
                _restored: Some(tmp),
            });
        }
        #[cfg(not(feature = "s3"))]
        return Err(Fail::usage(format!(
            "{url}: this wormctl was built without the s3 feature"
        )));
    }
    check_dir(dir)?;
    let log = Log::open_read_only(dir, options).map_err(Fail::log)?;
    Ok(ReadLog {
        log,
        _restored: None,
    })
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
