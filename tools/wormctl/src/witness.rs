//! `wormctl witness keygen|serve`: a witness anyone can run (format-spec.md
//! §18.4; C2SP tlog-witness). It cosigns a log's checkpoint only after
//! checking it extends every checkpoint of that log it cosigned before, and
//! refuses rollbacks, inconsistent views and unknown origins with the
//! protocol's status codes. Its state (the latest size and root cosigned
//! per log, and every refusal, as evidence of a log's misbehaviour) is a
//! wormlog log of its own, synced before a cosignature is returned: the
//! witness audits itself.

use crate::fail::Fail;
use crate::out::{self, Out};
use crate::verify::read_small;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use wormlog::format::merkle::verify_consistency;
use wormlog::{Checkpoint, CheckpointError, CheckpointPublicKey, Hash, Log, Options, WitnessKey};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make a witness's Ed25519 cosigning key pair: PREFIX.key (private,
    /// 0600) and PREFIX.pub (a cosignature/v1 vkey, type 0x04).
    Keygen {
        /// Where to write the keys: PREFIX.key and PREFIX.pub.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// The witness's name, a schema-less URL (witness.example/w1).
        #[arg(long)]
        name: String,
    },
    /// Serve the tlog-witness HTTP API (POST /add-checkpoint, GET
    /// /<sha256(origin) hex>/checkpoint) for the logs given.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The witness's private key (from `wormctl witness keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Where to listen, HOST:PORT (port 0: any free one, printed).
    #[arg(long, value_name = "HOST:PORT")]
    addr: String,
    /// The witness's state: a wormlog log (created if missing).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// A log it witnesses: ORIGIN=LOG.pub (the checkpoint's first line and
    /// the log's public key file). Repeatable.
    #[arg(long = "log", value_name = "ORIGIN=FILE", required = true)]
    logs: Vec<String>,
    /// A public key this witness cosigned with before a rotation (from
    /// `witness keygen`, PREFIX.pub): its state, cosigned by that key, is
    /// kept. Repeatable.
    #[arg(long = "previous-key", value_name = "FILE")]
    previous_keys: Vec<PathBuf>,
    /// Requests served per second at most, all clients together (429
    /// beyond).
    #[arg(long, value_name = "N", default_value_t = 100)]
    rate: u32,
}

/// The largest request body (a note, 63 hashes, the old line).
const BODY_MAX: usize = 72 << 10;
/// Request line and headers together.
const HEAD_MAX: usize = 8 << 10;
/// Connections served at once (503 beyond).
const CONNECTIONS_MAX: usize = 32;

pub fn run(c: Command) -> Result<(), Fail> {
    match c {
        Command::Keygen { out, name } => keygen(out, &name),
        Command::Serve(a) => serve(a),
    }
}

fn keygen(prefix: PathBuf, name: &str) -> Result<(), Fail> {
    wormlog::CheckpointKey::check_name(name)
        .map_err(|e| Fail::usage(format!("witness name {name:?}: {e}")))?;
    let key = WitnessKey::generate(name).map_err(|e| Fail::io("random key", e))?;
    let (private, public) = crate::keygen::write_pair(
        &prefix,
        &key.to_private_string(),
        &key.public().to_vkey_string(),
    )?;
    let mut out = Out::new();
    out.line(format!(
        "witness key: {} (private), {} (give it to the log's verifiers: `witness NAME <vkey>` \
         in their policy)",
        out::path_text(&private),
        out::path_text(&public)
    ))?;
    out.flush()
}

/// What the witness knows of one log.
#[derive(Clone, Copy)]
struct Seen {
    size: u64,
    root: Hash,
}

struct Witness {
    key: WitnessKey,
    logs: HashMap<String, CheckpointPublicKey>,
    /// The latest cosigned size and root per origin, and its cosigned note
    /// (for GET), under one lock: the check and the update are atomic.
    seen: Mutex<HashMap<String, (Seen, String)>>,
    state: Log,
    rate: Mutex<(Instant, u32)>,
    per_second: u32,
}

fn serve(a: ServeArgs) -> Result<(), Fail> {
    let text = read_small(&a.key, "witness key")?;
    let key = WitnessKey::from_private_string(text.trim())
        .map_err(|e| Fail::usage(format!("{}: {e}", out::path_text(&a.key))))?;
    let mut logs = HashMap::new();
    for spec in &a.logs {
        let (origin, file) = spec
            .split_once('=')
            .ok_or_else(|| Fail::usage(format!("--log {spec}: expected ORIGIN=LOG.pub")))?;
        let vkey = read_small(std::path::Path::new(file), "public key")?;
        let pk = CheckpointPublicKey::from_vkey_string(vkey.trim())
            .map_err(|e| Fail::usage(format!("{file}: {e}")))?;
        if logs.insert(origin.to_string(), pk).is_some() {
            return Err(Fail::usage(format!(
                "--log {origin}=…: that origin is given twice (one key a log)"
            )));
        }
    }
    let state = Log::open(&a.state, Options::default()).map_err(Fail::log)?;
    keep_whole(&state)?;
    let mut mine = vec![key.public()];
    for path in &a.previous_keys {
        let text = read_small(path, "witness public key")?;
        mine.push(
            wormlog::WitnessPublicKey::from_vkey_string(text.trim())
                .map_err(|e| Fail::usage(format!("{}: {e}", out::path_text(path))))?,
        );
    }
    let seen = replay(&state, &mine)?;
    let listener = TcpListener::bind(&a.addr).map_err(|e| Fail::io(&a.addr, e))?;
    let local = listener.local_addr().map_err(|e| Fail::io(&a.addr, e))?;
    let w = Arc::new(Witness {
        key,
        logs,
        seen: Mutex::new(seen),
        state,
        rate: Mutex::new((Instant::now(), 0)),
        per_second: a.rate.max(1),
    });
    let mut out = Out::new();
    out.line(format!(
        "witness {} listening on http://{local}",
        w.key.public().name()
    ))?;
    out.flush()?;
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        if busy.fetch_add(1, Ordering::AcqRel) >= CONNECTIONS_MAX {
            busy.fetch_sub(1, Ordering::AcqRel);
            let _ = respond(&mut conn, 503, "text/plain", "busy\n");
            continue;
        }
        let (w, busy) = (w.clone(), busy.clone());
        std::thread::spawn(move || {
            let _ = handle(&w, conn);
            busy.fetch_sub(1, Ordering::AcqRel);
        });
    }
    Ok(())
}

/// A witness's state must keep every cosigned record: retention that
/// dropped the segment holding an origin's last one made the witness
/// forget it and cosign a rollback (the fourth red team). The state is
/// under a legal hold from its creation, so retention drops nothing; and a
/// state whose records were dropped anyway (the hold cleared by hand) is
/// refused at start, exit 2: only its operator can say whether to restore
/// it or start afresh (which forgets every size it cosigned).
fn keep_whole(state: &Log) -> Result<(), Fail> {
    if !state.anchor_entries().map_err(Fail::log)?.is_empty() {
        return Err(Fail::usage(format!(
            "{}: retention dropped records of this witness's state, so it no longer knows every \
             size it cosigned; restore the state from a copy, or start a new state (the witness \
             then forgets what it cosigned)",
            out::path_text(state.dir())
        )));
    }
    if state.legal_hold().map_err(Fail::log)?.is_none() {
        state
            .set_legal_hold("a witness's state: what it cosigned must never be dropped")
            .map_err(Fail::log)?;
    }
    Ok(())
}

/// The state log's records: `{"cosigned": {origin, size, root, note}}`
/// and `{"refused": {origin, status, reason, note}}`; the latest cosigned
/// per origin is what the witness stands by. Each cosigned record is
/// checked before it is trusted: its note carries a valid cosignature by
/// this witness (its key, or one it rotated from: `mine`) over a body that
/// names the record's size and root, and no later record of an origin is
/// smaller. The witness's own cosignature is what vouches for the body:
/// the log's key may have rotated since. A record that fails is a changed
/// state: the witness refuses to start (a record appended by hand,
/// "bogus", was once replayed as the truth: the red team).
fn replay(
    state: &Log,
    mine: &[wormlog::WitnessPublicKey],
) -> Result<HashMap<String, (Seen, String)>, Fail> {
    let mut seen: HashMap<String, (Seen, String)> = HashMap::new();
    for r in state.read(..).map_err(Fail::log)? {
        let r = r.map_err(Fail::log)?;
        if r.kind() != wormlog::RecordKind::User {
            continue;
        }
        let bad = |why: &str| {
            Fail::tampered(format!(
                "witness state, record {}: {why}; the state was changed (or this witness \
                 cosigned it with a key not given: --previous-key)",
                r.seq()
            ))
        };
        let v: serde_json::Value =
            serde_json::from_slice(r.payload()).map_err(|_| bad("not JSON"))?;
        let c = &v["cosigned"];
        if c.is_null() {
            continue;
        }
        let (Some(origin), Some(size), Some(root), Some(note)) = (
            c["origin"].as_str(),
            c["size"].as_u64(),
            c["root"].as_str(),
            c["note"].as_str(),
        ) else {
            return Err(bad("a cosigned record without origin, size, root and note"));
        };
        let root_hash: [u8; 32] = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("a root that is not 32 bytes of base64"))?;
        let mut lines = note.split('\n');
        let names = (lines.next(), lines.next(), lines.next());
        if names != (Some(origin), Some(size.to_string().as_str()), Some(root)) {
            return Err(bad("its note names another origin, size or root"));
        }
        if !mine
            .iter()
            .any(|k| matches!(k.check_note(note), Ok(wormlog::Cosigned::At(_))))
        {
            return Err(bad("its note carries no valid cosignature by this witness"));
        }
        if seen.get(origin).is_some_and(|(s, _)| s.size > size) {
            return Err(bad("a smaller size after a larger one"));
        }
        let root = Hash::from_bytes(root_hash);
        seen.insert(origin.to_string(), (Seen { size, root }, note.to_string()));
    }
    Ok(seen)
}

/// A connection read against one deadline for the whole request: a
/// client that trickles a byte at a time cannot hold a connection longer
/// (a read timeout alone restarts with every byte: the red team held every
/// slot with 8 bytes a second).
struct Deadline {
    conn: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.conn.set_read_timeout(Some(left))?;
        self.conn.read(buf)
    }
}

/// One connection: one request, then closed.
fn handle(w: &Witness, conn: TcpStream) -> std::io::Result<()> {
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut out = conn.try_clone()?;
    let deadline = Deadline {
        conn,
        until: Instant::now() + Duration::from_secs(10),
    };
    let mut reader = BufReader::new(deadline.take((HEAD_MAX + BODY_MAX) as u64));
    let (method, target, length) = match read_head(&mut reader) {
        Ok(h) => h,
        Err((status, why)) => return respond(&mut out, status, "text/plain", &why),
    };
    if !w.allow() {
        return respond(
            &mut out,
            429,
            "text/plain",
            "rate limit: try again in a second\n",
        );
    }
    match (method.as_str(), target.as_str()) {
        ("POST", t) if t.ends_with("/add-checkpoint") => {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let (status, ctype, text) = match String::from_utf8(body) {
                Ok(b) => w.add_checkpoint(&b),
                Err(_) => (400, "text/plain", "body is not UTF-8\n".into()),
            };
            respond(&mut out, status, ctype, &text)
        }
        ("GET", t) if t.ends_with("/checkpoint") => {
            let hash = t
                .trim_end_matches("/checkpoint")
                .rsplit('/')
                .next()
                .unwrap_or("");
            let seen = lock(&w.seen);
            let found = seen
                .iter()
                .find(|(origin, _)| wormlog::format::hex(sha256(origin.as_bytes())) == hash);
            match found {
                Some((_, (_, note))) => respond(&mut out, 200, "text/plain", note),
                None => respond(&mut out, 404, "text/plain", "never cosigned\n"),
            }
        }
        _ => respond(&mut out, 404, "text/plain", "not a tlog-witness endpoint\n"),
    }
}

/// A poisoned lock (a panicked request) still guards consistent data:
/// every update is one insert.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// The request line and headers: method, target, Content-Length.
fn read_head(r: &mut impl BufRead) -> Result<(String, String, usize), (u16, String)> {
    let mut line = String::new();
    let mut total = 0;
    let mut read_line = |line: &mut String| -> Result<(), (u16, String)> {
        line.clear();
        let n = r
            .read_line(line)
            .map_err(|_| (400, "bad request\n".to_string()))?;
        total += n;
        if n == 0 || total > HEAD_MAX {
            return Err((431, "request head too large or cut short\n".into()));
        }
        Ok(())
    };
    read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err((400, "bad request line\n".into()));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut length = 0;
    let mut seen_length = false;
    loop {
        read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                let v = value.trim();
                if seen_length || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err((400, "one Content-Length of decimal digits\n".into()));
                }
                seen_length = true;
                length = v
                    .parse()
                    .map_err(|_| (400, "bad Content-Length\n".to_string()))?;
            }
            if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err((411, "send a Content-Length\n".into()));
            }
        }
    }
    if length > BODY_MAX {
        return Err((413, format!("a request body is at most {BODY_MAX} bytes\n")));
    }
    Ok((method, target, length))
}

fn respond(out: &mut TcpStream, status: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

impl Witness {
    /// A token bucket over all clients: `per_second` requests a second.
    fn allow(&self) -> bool {
        let mut r = lock(&self.rate);
        if r.0.elapsed() >= Duration::from_secs(1) {
            *r = (Instant::now(), 0);
        }
        r.1 += 1;
        r.1 <= self.per_second
    }

    /// POST add-checkpoint: status, content type, body. Long by nature:
    /// the checks in the order format-spec.md 18.4 lists them, each with
    /// its status, read top to bottom against the spec.
    fn add_checkpoint(&self, body: &str) -> (u16, &'static str, String) {
        let text = |s: &str| s.to_string() + "\n";
        let Some((old, proof, note)) = parse_request(body) else {
            return (400, "text/plain", text("malformed add-checkpoint body"));
        };
        let origin = note.split('\n').next().unwrap_or("").to_string();
        let Some(key) = self.logs.get(&origin) else {
            return (404, "text/plain", text("unknown origin"));
        };
        let cp = match Checkpoint::verify_note(note, key) {
            Ok(cp) => cp,
            Err(CheckpointError::Malformed(m)) => return (400, "text/plain", text(&m)),
            Err(e) => return (403, "text/plain", text(&e.to_string())),
        };
        let Some(root) = cp.tree_root else {
            return (
                400,
                "text/plain",
                text("a checkpoint without a tree root (not /v2)"),
            );
        };
        if old > cp.seq {
            return (
                400,
                "text/plain",
                text("old size larger than the checkpoint's"),
            );
        }
        // What the witness keeps and serves: the body, the log's own line,
        // its own. Never a line it was sent by anyone else (a forged line
        // under the witness's name was stored and served: the red team).
        let body_end = note.find("\n\n").map_or(note.len(), |i| i + 1);
        let body = &note[..body_end];
        let Some(log_line) = key.signature_line(note) else {
            return (
                403,
                "text/plain",
                text("no signature line by the log's key"),
            );
        };
        let kept = format!("{body}\n{log_line}");
        let mut seen = lock(&self.seen);
        let prior = seen.get(&origin).cloned();
        let prior_size = prior.as_ref().map_or(0, |(s, _)| s.size);
        if old != prior_size {
            return (409, "text/x.tlog.size", format!("{prior_size}\n"));
        }
        let verdict = match &prior {
            None if cp.seq == 0 => {
                proof.is_empty() && root == wormlog::format::merkle::empty_root()
            }
            None => proof.is_empty(),
            Some((p, prior_note)) if p.size == cp.seq => {
                // One size, one checkpoint: another root, or the same root
                // with other extension lines (chain, time, retention), is
                // a second history signed by the log. Kept as evidence.
                let same = p.root == root && prior_note.starts_with(&format!("{body}\n"));
                if !same {
                    self.refuse(&origin, "two checkpoints of one size", note);
                    return (
                        422,
                        "text/plain",
                        text("another checkpoint of this size was cosigned"),
                    );
                }
                if proof.is_empty() {
                    // Nothing new to record: cosign again, state unchanged.
                    return (200, "text/plain", self.cosign(body));
                }
                false
            }
            Some((p, _)) => verify_consistency(p.size, cp.seq, &p.root, &root, &proof),
        };
        if !verdict {
            // A wrong proof is not evidence against the log: anyone can send one.
            return (
                422,
                "text/plain",
                text("inconsistent with the checkpoint last cosigned"),
            );
        }
        let line = self.cosign(body);
        // Durable before the cosignature leaves: a crash cannot roll the
        // witness back behind what it signed.
        let stored = format!("{kept}{line}");
        let record = serde_json::json!({"cosigned": {
            "origin": origin, "size": cp.seq, "root": B64.encode(root.as_bytes()),
            "note": stored,
        }});
        if let Err(e) = self.state.append(record.to_string().as_bytes()) {
            return (500, "text/plain", text(&format!("state: {e}")));
        }
        seen.insert(origin, (Seen { size: cp.seq, root }, stored));
        (200, "text/plain", line)
    }

    fn cosign(&self, body: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.key.cosign(body, now)
    }

    /// Keeps a validly signed checkpoint that contradicts one cosigned
    /// (two of one size): evidence of a split view, which only the log's
    /// key could have made.
    fn refuse(&self, origin: &str, reason: &str, note: &str) {
        let record = serde_json::json!({"refused": {
            "origin": origin, "status": 422, "reason": reason, "note": note,
        }});
        let _ = self.state.append(record.to_string().as_bytes());
    }
}

/// `old N\n`, proof lines, a blank line, the note.
fn parse_request(body: &str) -> Option<(u64, Vec<Hash>, &str)> {
    let (head, note) = body.split_once("\n\n")?;
    let mut lines = head.split('\n');
    let old = lines.next()?.strip_prefix("old ")?;
    if old.is_empty()
        || !old.bytes().all(|b| b.is_ascii_digit())
        || (old.len() > 1 && old.starts_with('0'))
    {
        return None;
    }
    let old = old.parse().ok()?;
    let mut proof = Vec::new();
    for l in lines {
        if proof.len() == 63 {
            return None;
        }
        let h: [u8; 32] = B64.decode(l).ok()?.try_into().ok()?;
        proof.push(Hash::from_bytes(h));
    }
    Some((old, proof, note))
}
