//! Why a command failed, and its exit code: 1 when data was found tampered
//! with or corrupt, 2 for usage and I/O errors and input that is not a log.

use std::fmt::Display;
use std::io;
use std::process::ExitCode;
use wormlog::{CheckpointError, Corruption, Error};

pub const TAMPERED: u8 = 1;
pub const UNUSABLE: u8 = 2;

#[derive(Debug)]
pub struct Fail {
    code: u8,
    /// Exit 1 for evidence that falls short (a quorum not met, a proof
    /// whose path does not lead to its root), not for damage found.
    unproven: bool,
    /// Empty: exit quietly (the reader of our output went away).
    message: String,
}

impl Fail {
    pub fn usage(message: impl Display) -> Fail {
        Fail {
            code: UNUSABLE,
            unproven: false,
            message: message.to_string(),
        }
    }

    pub fn tampered(message: impl Display) -> Fail {
        Fail {
            code: TAMPERED,
            unproven: false,
            message: message.to_string(),
        }
    }

    /// Evidence that does not prove what it claims (exit 1, as tampering:
    /// a verifier must not accept it), labelled as such.
    pub fn unproven(message: impl Display) -> Fail {
        Fail {
            code: TAMPERED,
            unproven: true,
            message: message.to_string(),
        }
    }

    /// An I/O error on `what` (a path, usually).
    pub fn io(what: impl Display, e: io::Error) -> Fail {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Fail {
                code: 0,
                unproven: false,
                message: String::new(),
            };
        }
        Fail::usage(format!("{what}: {e}"))
    }

    /// An error from a log directory: damage found in it is tampering or
    /// corruption (1); anything else leaves it unusable (2).
    pub fn log(e: Error) -> Fail {
        match &e {
            // A symbolic link where a log's file belongs was put there:
            // tampering, like a changed byte.
            Error::Corrupt { .. }
            | Error::NeedsRepair { .. }
            | Error::Symlink { .. }
            | Error::NotRegular { .. }
            | Error::CheckpointMismatch { .. }
            | Error::WitnessConflict { .. }
            | Error::Checkpoint(CheckpointError::NoValidSignature { .. }) => Fail::tampered(e),
            Error::Checkpoint(
                CheckpointError::ProofDoesNotHold(_) | CheckpointError::QuorumNotMet { .. },
            ) => Fail::unproven(e),
            Error::Locked { path } => Fail::usage(format!(
                "{e}{}; stat, dump, verify, tail and checkpoint read beside a running writer",
                crate::control::holder(path).map_or_else(String::new, |pid| format!(
                    " (pid {pid}; hold, seal, append and dump --as reach it through its \
                     control socket, this command needs it stopped)"
                ))
            )),
            Error::NotFound { path } => Fail::usage(format!(
                "{}: not a wormlog log directory (it holds no segment files)",
                path.display()
            )),
            _ => Fail::usage(e),
        }
    }

    /// An error from one file given on its own: a file whose header is not
    /// a wormlog header is not ours (2), not a damaged log file.
    pub fn file(e: Error) -> Fail {
        match &e {
            // The path the operator named is a FIFO or directory: a wrong
            // argument, not a damaged log (inside a log directory, the same
            // entry is tampering: `Fail::log`).
            Error::NotRegular { .. } => Fail::usage(e),
            Error::Corrupt {
                offset: 0,
                seq: None,
                what,
                path,
            } if matches!(
                what,
                Corruption::BadMagic
                    | Corruption::UnsupportedVersion { .. }
                    | Corruption::HeaderTruncated { .. }
                    | Corruption::HeaderField { field: "magic", .. }
            ) =>
            {
                Fail::usage(format!(
                    "{}: not a wormlog segment file: {what}",
                    path.display()
                ))
            }
            _ => Fail::log(e),
        }
    }

    pub fn code(&self) -> u8 {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same failure, its message prefixed with what it concerns.
    pub fn within(self, what: impl Display) -> Fail {
        Fail {
            code: self.code,
            unproven: self.unproven,
            message: format!("{what}: {}", self.message),
        }
    }

    /// Prints the one-line message and gives the exit code.
    pub fn report(self) -> ExitCode {
        if !self.message.is_empty() {
            let label = match (self.code, self.unproven) {
                (TAMPERED, true) => "NOT PROVEN: ",
                (TAMPERED, false) => "TAMPERED OR CORRUPT: ",
                _ => "",
            };
            // Not eprintln!: it panics when stderr is a closed pipe, and the
            // exit code still says what happened.
            use std::io::Write;
            // Messages name paths and quote the log's text: escaped, so that
            // neither can write to the terminal or break the one line.
            let message = crate::out::terminal_text(&self.message);
            let _ = writeln!(io::stderr(), "wormctl: {label}{message}");
        }
        ExitCode::from(self.code)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::log(e)
    }
}
