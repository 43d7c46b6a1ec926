//! The live writer's control channel (format-spec.md §17): while a process
//! holds a log, `wormctl` reaches it through the Unix socket `wormlog.ctl`
//! in the log directory to set or clear a legal hold, seal, record an
//! access, or append, instead of failing on the writer's lock. The socket
//! is the owner's only (mode 0600) and every peer's uid is checked against
//! the writer's (SO_PEERCRED): no one the log's files would not let write
//! gets in. Polled on the shared pool (a `Class::Slow` job, since a seal
//! may take a while), one connection at a time, one request each.

use crate::background::{Class, Job};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::control::{Message, MESSAGE_BYTES_MAX};
use crate::format::hex;
use crate::format::names::CONTROL_SOCKET;
use std::io::{BufReader, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

/// How often the socket is looked at: a command waits at most this long
/// before its request is read.
const POLL: Duration = Duration::from_millis(250);

/// A client that sends nothing (or reads nothing) for this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on the log's control socket and polls it on the shared pool;
/// `None` where the options turn it off or the storage has no sockets. A
/// socket that cannot be made (a path too long for a socket address, a
/// file system without sockets) leaves the log without the channel: the
/// open does not fail for it.
pub(crate) fn start(inner: &Arc<Engine>) -> Option<Arc<Job>> {
    let shared = &inner.shared;
    if !shared.options.control || shared.read_only {
        return None;
    }
    let path = shared.dir.join(CONTROL_SOCKET);
    let listener = shared.options.storage.listen_control(&path).ok()??;
    let weak = Arc::downgrade(inner);
    let job = Job::new(Class::Slow, move || {
        if let Some(inner) = weak.upgrade() {
            accept_waiting(&inner, &listener);
        }
    });
    job.every(POLL);
    Some(job)
}

/// Removes the socket at close (a writer that dies leaves it: the next
/// writer replaces it).
pub(crate) fn stop(inner: &Engine) {
    let path = inner.shared.dir.join(CONTROL_SOCKET);
    let _ = inner.shared.options.storage.remove_file(&path);
}

/// Serves every connection waiting now, one after another.
fn accept_waiting(inner: &Engine, listener: &UnixListener) {
    while let Ok((stream, _)) = listener.accept() {
        // One client's failure (it went away, sent garbage) is its own.
        let _ = serve(inner, stream);
    }
}

/// Reads one request, acts on it, and answers.
fn serve(inner: &Engine, stream: UnixStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let peer = rustix::net::sockopt::socket_peercred(&stream)?;
    let me = rustix::process::geteuid();
    let reply = if peer.uid != me {
        Message::new(
            "refused",
            vec![format!(
                "uid {} may not use this log's control channel: only uid {}, the writer's, may",
                peer.uid.as_raw(),
                me.as_raw()
            )
            .into_bytes()],
        )
    } else {
        let limit = MESSAGE_BYTES_MAX + 64 * 1024;
        let mut r = BufReader::new((&stream).take(limit));
        match Message::read_from(&mut r) {
            Ok(request) => answer(inner, &request),
            Err(e) => Message::new("refused", vec![e.to_string().into_bytes()]),
        }
    };
    reply.write_to(&mut &stream)
}

/// The response to `request`: `ok` with its results, or the error's kind
/// (`tampered` for damage found, `failed` otherwise) and message.
fn answer(inner: &Engine, request: &Message) -> Message {
    match act(inner, request) {
        Ok(results) => Message::new("ok", results),
        Err(e) => {
            // As wormctl judges the same errors of its own (fail.rs).
            let head = match e {
                Error::Corrupt { .. }
                | Error::NeedsRepair { .. }
                | Error::Symlink { .. }
                | Error::NotRegular { .. }
                | Error::CheckpointMismatch { .. } => "tampered",
                _ => "failed",
            };
            Message::new(head, vec![e.to_string().into_bytes()])
        }
    }
}

fn act(inner: &Engine, request: &Message) -> Result<Vec<Vec<u8>>> {
    let text = |i: usize| {
        request.text(i).ok_or_else(|| {
            Error::InvalidOptions(format!(
                "{}: argument {i} missing or not UTF-8",
                request.head
            ))
        })
    };
    let n = |v: u64| v.to_string().into_bytes();
    match request.head.as_str() {
        "status" => {
            let head = inner.shared.visible.read().head;
            Ok(vec![
                n(u64::from(std::process::id())),
                n(head.seq),
                hex(head.hash).into_bytes(),
            ])
        }
        "hold-set" => inner.set_legal_hold(text(0)?).map(|()| Vec::new()),
        "hold-clear" => inner.clear_legal_hold().map(|()| Vec::new()),
        "seal" => inner.seal_now().map(|sealed| vec![n(sealed as u64)]),
        "access" => inner
            .record_access(text(0)?, text(1)?, text(2)?)
            .map(|seq| vec![n(seq)]),
        "append" => {
            // Answered only once durable, whatever the writer's own mode:
            // the client prints receipts, and a receipt promises durability.
            // No backpressure wait here: this runs on a pool worker the
            // shipper may need (`Engine::append_batch_now`).
            let receipts = inner.append_batch_now(request.args.clone())?;
            inner.writer()?.sync(&inner.shared)?;
            Ok(receipts
                .iter()
                .map(|r| format!("{} {} {}", r.seq, r.timestamp_ns, hex(r.hash)).into_bytes())
                .collect())
        }
        other => Err(Error::InvalidOptions(format!(
            "the control channel has no operation {other:?} (status, hold-set, hold-clear, \
             seal, access, append)"
        ))),
    }
}
