//! The log's side of the C2SP tlog-witness protocol (format-spec.md
//! §18.4): a signed checkpoint goes to each witness with a consistency
//! proof from the size that witness last cosigned, and its cosignature line
//! comes back. A witness that has cosigned a larger tree, or finds the
//! proof inconsistent, has seen another history of this log: a conflict,
//! reported as such (`Error::WitnessConflict`), never retried away.
//!
//! Plain HTTP/1.1 over TCP (`http://host:port[/prefix]`), one request per
//! connection, bounded: the witnesses a log talks to are its operator's
//! own or reached through a local TLS proxy.

use crate::checkpoint::{split_note, CheckpointPublicKey, SIGNATURE_LINES_MAX};
use crate::cosign::{Cosigned, WitnessPublicKey};
use crate::error::{Error, Result};
use crate::format::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The largest response read from a witness.
const RESPONSE_BYTES_MAX: u64 = 64 << 10;
/// How long a witness may take to connect, and to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A witness the log asks to cosign: its submission prefix and its key.
#[derive(Debug, Clone)]
pub struct Witness {
    /// `http://host:port` or `http://host:port/prefix`: requests go to
    /// `<url>/add-checkpoint`.
    pub url: String,
    /// The witness's cosigning key (its cosignature lines are checked).
    pub key: WitnessPublicKey,
}

/// What a witness said to one request.
enum Answer {
    Cosigned(String),
    /// 409: the size it last cosigned.
    Size(u64),
    /// 422, with its text.
    Inconsistent(String),
}

/// What a witness round knows of the log: its key (to check a checkpoint
/// a witness says it cosigned) and its tree (proofs, roots).
pub struct LogView<'a> {
    /// The log's public key.
    pub key: &'a CheckpointPublicKey,
    /// The consistency proof from one size to another.
    pub consistency: &'a dyn Fn(u64, u64) -> Result<Vec<Hash>>,
    /// The root of the log's tree at a size, `None` where the log is
    /// shorter.
    pub root_at: &'a dyn Fn(u64) -> Result<Option<Hash>>,
}

impl std::fmt::Debug for LogView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogView")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Asks each witness in turn to cosign `note` (a /v2 checkpoint of
/// `size` records), with consistency proofs from `log`. Returns the note
/// with every witness's cosignature line appended, each checked against
/// its key. The first witness that fails stops the round:
/// `WitnessConflict` when it holds a checkpoint signed by the log that the
/// log does not extend (or finds this one inconsistent), `WitnessAhead`
/// when it holds a newer one the log extends, `WitnessUnreachable`
/// otherwise. At most 15 witnesses, each once.
pub fn cosign_note(
    note: &str,
    size: u64,
    witnesses: &[Witness],
    log: &LogView<'_>,
) -> Result<String> {
    // The log's line and one line per witness must fit the 16 signature
    // lines a note may carry, or the note made could not be read back.
    if witnesses.len() > SIGNATURE_LINES_MAX - 1 {
        return Err(Error::InvalidOptions(format!(
            "{} witnesses: a note carries at most {} signature lines, the log's and {} \
             cosignatures",
            witnesses.len(),
            SIGNATURE_LINES_MAX,
            SIGNATURE_LINES_MAX - 1
        )));
    }
    for (i, w) in witnesses.iter().enumerate() {
        if witnesses[..i]
            .iter()
            .any(|x| x.key.key_bytes() == w.key.key_bytes())
        {
            return Err(Error::InvalidOptions(format!(
                "witness {} is given twice (one key, one cosignature)",
                w.url
            )));
        }
    }
    let mut out = note.to_string();
    for w in witnesses {
        let line = cosign_one(note, size, w, log)?;
        out.push_str(&line);
    }
    Ok(out)
}

fn cosign_one(note: &str, size: u64, w: &Witness, log: &LogView<'_>) -> Result<String> {
    // First as a witness that never saw the log; a 409 says where it is.
    let mut old = 0;
    for _ in 0..2 {
        let proof = if old == 0 {
            Vec::new()
        } else {
            (log.consistency)(old, size)?
        };
        match add_checkpoint(w, old, &proof, note)? {
            Answer::Cosigned(lines) => return check_cosignature(w, note, &lines),
            Answer::Size(theirs) if theirs > size => {
                return Err(judge(note, size, w, log, Claim::Larger(theirs)))
            }
            Answer::Inconsistent(t) => {
                return Err(judge(note, size, w, log, Claim::Inconsistent(t)))
            }
            Answer::Size(theirs) => old = theirs,
        }
    }
    Err(unreachable(
        w,
        "it answered 409 twice with sizes it then refused".into(),
    ))
}

/// What a witness's refusal claims.
enum Claim {
    /// 409: it cosigned a larger tree than this checkpoint's.
    Larger(u64),
    /// 422: this checkpoint is inconsistent with what it cosigned.
    Inconsistent(String),
}

/// A witness refuses with a claim about this log. Not taken on its word
/// (over plain HTTP anyone on the path can answer: an unauthenticated 409,
/// then a bare 422, made a faithful log report tampering and write a
/// witness-conflict record; the red teams): the checkpoint it serves must
/// be of this log's origin and signed by the log's key, and then the log
/// either extends it (the witness is ahead: exit 2, sign a newer one; or,
/// for a 422, it refuses what its own checkpoint shows consistent:
/// unreachable) or does not, or is a second note of one size (a rollback,
/// a fork: which only the log's key could have signed: a conflict, exit 1).
fn judge(note: &str, size: u64, w: &Witness, log: &LogView<'_>, claim: Claim) -> Error {
    let says = match &claim {
        Claim::Larger(theirs) => format!("it says it cosigned {theirs} records of this log"),
        Claim::Inconsistent(t) => {
            format!("it finds this checkpoint inconsistent (422 {})", t.trim())
        }
    };
    let origin = note.split('\n').next().unwrap_or("");
    let path = format!(
        "{}/checkpoint",
        crate::format::hex(sha256(origin.as_bytes()))
    );
    let theirs_note = match request(&w.url, "GET", &path, "") {
        Ok((200, text)) => text,
        Ok((s, _)) => return unreachable(w, format!("{says} but serves no checkpoint (HTTP {s})")),
        Err(e) => {
            return unreachable(
                w,
                format!("{says} but its checkpoint could not be read: {e}"),
            )
        }
    };
    if theirs_note.split('\n').next() != Some(origin) {
        return unreachable(
            w,
            format!("{says}, and serves a checkpoint of another origin"),
        );
    }
    let least = match claim {
        Claim::Larger(theirs) => theirs,
        Claim::Inconsistent(_) => 0,
    };
    let cp = match crate::checkpoint::Checkpoint::verify_note(&theirs_note, log.key) {
        Ok(cp) if cp.seq >= least => cp,
        _ => {
            return unreachable(
                w,
                format!("{says}, and shows no checkpoint signed by the log's key to back it"),
            )
        }
    };
    let body = |n: &str| n.find("\n\n").map(|i| n[..i].to_string());
    let extended = match (log.root_at)(cp.seq) {
        Ok(Some(root)) => Some(root) == cp.tree_root,
        Ok(None) => false,
        Err(e) => return e,
    };
    if extended && cp.seq == size && body(&theirs_note) != body(note) {
        return conflict(
            w,
            format!(
                "it holds another checkpoint of {size} records signed by this log's key: the \
                 log's key signed two histories of one size"
            ),
        );
    }
    match (extended, cp.seq > size) {
        (true, true) => Error::WitnessAhead {
            witness: w.url.clone(),
            size: cp.seq,
        },
        (true, false) => unreachable(
            w,
            format!(
                "{says}, but its own checkpoint ({} records) is one this log extends",
                cp.seq
            ),
        ),
        (false, _) => conflict(
            w,
            format!(
                "it has cosigned a checkpoint of {} records, signed by this log's key, that this \
                 log (checkpoint of {size}) does not extend: the log was rolled back or forked",
                cp.seq
            ),
        ),
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

fn check_cosignature(w: &Witness, note: &str, lines: &str) -> Result<String> {
    let cosigned = format!("{note}{lines}");
    let (body, parsed) = split_note(&cosigned)
        .map_err(|e| unreachable(w, format!("its answer is not signature lines: {e}")))?;
    match w.key.check_lines(body, &parsed) {
        Ok(Cosigned::At(_)) => {}
        Ok(Cosigned::Absent) => {
            return Err(unreachable(
                w,
                format!("its answer holds no cosignature by {}", w.key.name()),
            ))
        }
        Err(e) => {
            return Err(unreachable(
                w,
                format!("its cosignature does not verify: {e}"),
            ))
        }
    }
    // Only this witness's own lines are kept.
    let mine: String = lines
        .split_inclusive('\n')
        .filter(|l| l.starts_with(&format!("\u{2014} {} ", w.key.name())))
        .collect();
    Ok(mine)
}

fn conflict(w: &Witness, detail: String) -> Error {
    Error::WitnessConflict {
        witness: w.url.clone(),
        detail,
    }
}

fn unreachable(w: &Witness, detail: String) -> Error {
    Error::WitnessUnreachable {
        witness: w.url.clone(),
        detail,
    }
}

/// One `POST <url>/add-checkpoint`.
fn add_checkpoint(w: &Witness, old: u64, proof: &[Hash], note: &str) -> Result<Answer> {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&B64.encode(h.as_bytes()));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    let (status, text) =
        request(&w.url, "POST", "add-checkpoint", &body).map_err(|d| unreachable(w, d))?;
    match status {
        200 => Ok(Answer::Cosigned(text)),
        409 => text
            .trim_end()
            .parse()
            .map(Answer::Size)
            .map_err(|_| unreachable(w, "409 without a size".into())),
        422 => Ok(Answer::Inconsistent(text)),
        403 => Err(unreachable(
            w,
            "403: it does not trust this checkpoint's signature (is the log's key configured \
             at the witness?)"
                .into(),
        )),
        404 => Err(unreachable(
            w,
            "404: it does not know this log's origin (configure it at the witness)".into(),
        )),
        s => Err(unreachable(w, format!("HTTP {s}: {}", text.trim()))),
    }
}

/// A bounded HTTP/1.1 request, answered within `TIMEOUT` in all (a
/// trickled answer once held the client for ever: the red team); the
/// status and body, or why not.
fn request(
    url: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::result::Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// witness URLs (a local TLS proxy for https)"))?;
    let (host, prefix) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let prefix = prefix.trim_end_matches('/');
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let target = if prefix.is_empty() {
        format!("/{path}")
    } else {
        format!("/{prefix}/{path}")
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    // One deadline for the whole answer, not per read: a witness that
    // trickles a byte at a time once held the client for ever (red team).
    let until = std::time::Instant::now() + TIMEOUT;
    let late = || format!("no whole answer within {} s", TIMEOUT.as_secs());
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if raw.len() as u64 + n as u64 > RESPONSE_BYTES_MAX => {
                return Err("the answer is larger than any witness's".into())
            }
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(late())
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let text = String::from_utf8(raw).map_err(|_| "the answer is not UTF-8".to_string())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "the answer is not HTTP".to_string())?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| head.starts_with("HTTP/1."))
        .ok_or_else(|| "the answer has no HTTP status".to_string())?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::WitnessKey;

    /// Red team: 16 witnesses made a note of 17 signature lines that
    /// verify then refused as malformed; the round is refused up front.
    #[test]
    fn more_witnesses_than_a_note_can_carry_are_refused_before_any_is_asked() {
        let witnesses: Vec<Witness> = (0..16)
            .map(|i| Witness {
                // Nothing listens there: a round that asked would fail
                // as unreachable, not as this.
                url: "http://127.0.0.1:9".into(),
                key: WitnessKey::generate(&format!("w{i}")).unwrap().public(),
            })
            .collect();
        let none = |_: u64, _: u64| -> Result<Vec<Hash>> { Ok(Vec::new()) };
        let no_root = |_: u64| -> Result<Option<Hash>> { Ok(None) };
        let key = crate::checkpoint::CheckpointKey::generate("log")
            .unwrap()
            .public();
        let log = LogView {
            key: &key,
            consistency: &none,
            root_at: &no_root,
        };
        let err = cosign_note("note\n\n", 1, &witnesses, &log).unwrap_err();
        assert!(matches!(err, Error::InvalidOptions(m) if m.contains("at most 16")));
    }
}
