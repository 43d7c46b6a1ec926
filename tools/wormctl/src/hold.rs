//! `wormctl hold set REASON DIR | clear DIR | show DIR`: the legal hold,
//! which stops retention from dropping anything while it is set. Setting
//! and clearing are recorded in the log; they need the writer's lock.

use crate::control::Writer;
use crate::fail::Fail;
use crate::out::{self, Out};
use clap::Subcommand;
use std::path::PathBuf;
use wormlog::Options;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Set the hold, with the reason recorded (a case number, say).
    Set { reason: String, dir: PathBuf },
    /// Clear the hold.
    Clear { dir: PathBuf },
    /// Show whether a hold is set, and why.
    Show { dir: PathBuf },
}

pub fn run(a: Args) -> Result<(), Fail> {
    let mut out = Out::new();
    match a.action {
        Action::Set { reason, dir } => {
            if reason.trim().is_empty() {
                return Err(Fail::usage("a legal hold needs a reason"));
            }
            let by = match crate::control::writer(&dir, Options::default())? {
                Writer::Here(log) => {
                    log.set_legal_hold(&reason)?;
                    log.close()?;
                    String::new()
                }
                Writer::Live(live) => {
                    live.call("hold-set", vec![reason.clone().into_bytes()])?;
                    format!(" (by the running writer, pid {})", live.pid()?)
                }
            };
            out.line(format!(
                "legal hold set on {}{by}: {}",
                out::path_text(&dir),
                out::terminal_text(&reason)
            ))
        }
        Action::Clear { dir } => {
            let by = match crate::control::writer(&dir, Options::default())? {
                Writer::Here(log) => {
                    log.clear_legal_hold()?;
                    log.close()?;
                    String::new()
                }
                Writer::Live(live) => {
                    live.call("hold-clear", Vec::new())?;
                    format!(" (by the running writer, pid {})", live.pid()?)
                }
            };
            out.line(format!(
                "legal hold cleared on {}{by}",
                out::path_text(&dir)
            ))
        }
        Action::Show { dir } => {
            let log = crate::open::read_only(&dir)?;
            match log.legal_hold()? {
                Some(reason) => {
                    out.line(format!("legal hold: SET ({})", out::terminal_text(&reason)))
                }
                None => out.line("legal hold: none"),
            }
        }
    }
}
