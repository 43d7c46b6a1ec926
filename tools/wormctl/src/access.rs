//! `--as NAME [--why TEXT]` on the commands that read a log out (dump,
//! export-tlog): the access is recorded in the log itself as an accessed
//! record (format-spec.md 4.1, kind 0x10) before anything is read. Only a
//! writer appends; if another process holds the log, the access goes
//! unrecorded and the command says so on stderr, then reads on.

use crate::fail::Fail;
use std::path::Path;
use wormlog::{Error, Log, Options, Sealing};

/// The `--as` and `--why` options.
#[derive(clap::Args, Debug, Clone)]
pub struct AccessArgs {
    /// Record this access in the log, as NAME (needs the writer's lock:
    /// while another process writes, the access goes unrecorded, and this
    /// says so).
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
        Err(Error::Locked { .. }) => {
            eprintln!(
                "wormctl: access NOT recorded: another process writes this log (only its \
                 writer can append the record); reading on"
            );
            Ok(())
        }
        Err(e) => Err(Fail::log(e)),
    }
}
