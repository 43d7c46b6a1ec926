//! `--as NAME [--why TEXT]` on the commands that read a log out (dump,
//! export-tlog): the access is recorded in the log itself as an accessed
//! record (format-spec.md 4.1, kind 0x10) before anything is read. Only a
//! writer appends: if another process holds the log, that writer records it
//! through its control socket (format-spec.md §17); if it cannot be reached,
//! nothing is read.

use crate::fail::Fail;
use std::path::Path;
use wormlog::{Error, Log, Options, Sealing};

/// The `--as` and `--why` options.
#[derive(clap::Args, Debug, Clone)]
pub struct AccessArgs {
    /// Record this access in the log, as NAME, before reading (while
    /// another process writes the log, that writer records it through its
    /// control socket; if it cannot be reached, nothing is read).
    #[arg(long = "as", value_name = "NAME")]
    pub who: Option<String>,
    /// Why (a ticket, a case), recorded with --as.
    #[arg(long, value_name = "TEXT", requires = "who", default_value = "")]
    pub why: String,
}

/// Records `what` as an access by `--as`, if given (see the module docs).
pub fn record(dir: &Path, a: &AccessArgs, what: &str) -> Result<(), Fail> {
    let Some(who) = &a.who else {
        return Ok(());
    };
    let options = Options::default()
        .create_if_missing(false)
        .sealing(Sealing::Manual);
    match Log::open(dir, options) {
        Ok(log) => {
            let seq = log.record_access(who, what, &a.why).map_err(Fail::log)?;
            log.close().map_err(Fail::log)?;
            eprintln!("wormctl: access recorded as seq {seq}");
            Ok(())
        }
        // The running writer records it, through its control socket; one
        // that cannot be reached stops the read: an access that was to be
        // recorded is not read unrecorded.
        Err(Error::Locked { .. }) => {
            let live = crate::control::live(dir)?;
            let args = [who.as_str(), what, a.why.as_str()].map(|s| s.as_bytes().to_vec());
            let r = live.call("access", args.to_vec())?;
            let seq = r
                .first()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default();
            eprintln!(
                "wormctl: access recorded as seq {seq} by the running writer (pid {})",
                live.pid()?
            );
            Ok(())
        }
        Err(e) => Err(Fail::log(e)),
    }
}
