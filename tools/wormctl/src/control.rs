//! Reaching a running writer: when another process holds a log's lock,
//! the commands that change the log (hold, seal, append, `--as` access
//! records) send their request over the writer's control socket
//! (`DIR/wormlog.ctl`, format-spec.md §17) instead of failing.

use crate::fail::Fail;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wormlog::format::control::Message;
use wormlog::format::names::CONTROL_SOCKET;
use wormlog::{Error, Log, Options, Sealing};

/// How long a request may take (a seal of a large segment included).
const TIMEOUT: Duration = Duration::from_secs(600);

/// The log's writer: this process, or the one that holds the log now.
pub enum Writer {
    /// Opened here (no other writer had it).
    Here(Log),
    /// Reached over its control socket.
    Live(Live),
}

/// A running writer, reachable at `socket`.
pub struct Live {
    socket: PathBuf,
}

/// Opens the log for writing, or, where another process holds it, finds
/// that writer's control socket. Sealing stays manual in a writer opened
/// here, as in `open::writer`.
pub fn writer(dir: &Path, options: Options) -> Result<Writer, Fail> {
    let options = options.create_if_missing(false).sealing(Sealing::Manual);
    match Log::open(dir, options) {
        Ok(log) => Ok(Writer::Here(log)),
        Err(Error::Locked { .. }) => live(dir).map(Writer::Live),
        // Another user's log: where its writer runs and answers, its
        // answer (a refusal of this uid) says more than the files' owner.
        Err(e @ Error::UnsafePermissions { .. }) => match reach(dir) {
            Reach::Answered(live) => live.map(Writer::Live),
            Reach::NoAnswer(_) => Err(Fail::log(e)),
        },
        Err(e) => Err(Fail::log(e)),
    }
}

/// Whether a writer answered at `dir`'s control socket.
enum Reach {
    /// It answered: reachable, or refusing (the refusal as the failure).
    Answered(Result<Live, Fail>),
    /// Nothing answered.
    NoAnswer(std::io::Error),
}

fn reach(dir: &Path) -> Reach {
    let live = Live {
        socket: dir.join(CONTROL_SOCKET),
    };
    match live.request("status", Vec::new()) {
        Ok(reply) if reply.head == "ok" => Reach::Answered(Ok(live)),
        Ok(reply) => Reach::Answered(Err(Fail::usage(format!(
            "{}: the running writer refused this request: {}",
            dir.display(),
            reply.text(0).unwrap_or("(no reason given)")
        )))),
        Err(e) => Reach::NoAnswer(e),
    }
}

/// The running writer of `dir`: its control socket answers, or the lock
/// error says who holds the log and why it cannot be reached.
pub fn live(dir: &Path) -> Result<Live, Fail> {
    match reach(dir) {
        Reach::Answered(live) => live,
        Reach::NoAnswer(why) => Err(Fail::usage(format!(
            "{}: locked by another writer, which cannot be reached ({why}): it serves no \
             control socket ({CONTROL_SOCKET}; Options::control off, or an older wormlog). \
             Stop it to run this command",
            dir.display()
        ))),
    }
}

impl Live {
    /// Sends `op` with `args`; the writer's results, or its error (exit 1
    /// for damage it found, 2 otherwise).
    pub fn call(&self, op: &str, args: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, Fail> {
        match self.request(op, args) {
            Ok(reply) => match reply.head.as_str() {
                "ok" => Ok(reply.args),
                head => {
                    let message = reply.text(0).unwrap_or("(no message)").to_string();
                    let message = format!("the running writer: {message}");
                    Err(if head == "tampered" {
                        Fail::tampered(message)
                    } else {
                        Fail::usage(message)
                    })
                }
            },
            Err(e) => Err(Fail::usage(format!(
                "{}: the running writer did not answer: {e}",
                self.socket.display()
            ))),
        }
    }

    /// The writer's process id, as it says.
    pub fn pid(&self) -> Result<String, Fail> {
        let r = self.call("status", Vec::new())?;
        Ok(r.first()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default())
    }

    fn request(&self, op: &str, args: Vec<Vec<u8>>) -> std::io::Result<Message> {
        let stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Message::new(op, args).write_to(&mut &stream)?;
        Message::read_from(&mut BufReader::new(&stream))
    }
}

/// The pid of the writer holding `dir`, where its control socket answers.
pub fn holder(dir: &Path) -> Option<String> {
    match reach(dir) {
        Reach::Answered(Ok(live)) => live.pid().ok(),
        _ => None,
    }
}
