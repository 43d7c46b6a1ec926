//! syslog over TCP: RFC 6587 framing (octet counting, `LEN SP MSG`, when
//! a frame starts with a digit; else one message a line), plain or TLS
//! (RFC 5425). Messages are appended in order per connection, in groups
//! of what arrived together; the next group is read only once the last is
//! durable, so a sender faster than the disk is slowed by TCP's own flow
//! control rather than buffered here.
//!
//! What is durable when (README): syslog has no acknowledgement above
//! TCP's, and a TCP ACK says only that wormd's kernel has the bytes. A
//! message is durable once its group's append returns; a crash before
//! that loses messages the sender believes sent. Senders that must not
//! lose any use the HTTP API or OTLP, which answer after durability
//! (RELP is not implemented).

use crate::app::Shared;
use crate::logs::Served;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// A group holds at most this many messages...
const GROUP_MESSAGES: usize = 4096;
/// ...or this many bytes.
const GROUP_BYTES: usize = 1 << 20;
/// A connection with no byte for this long is closed.
const IDLE: Duration = Duration::from_secs(600);

/// Why a connection was closed.
#[derive(Debug)]
enum Closed {
    /// The sender closed it, cleanly between frames.
    Eof,
    /// A frame that cannot be read; the stream cannot be re-synchronised.
    BadFrame(String),
    /// Reading failed or timed out.
    Io(String),
}

/// Reads one frame into `out`; `Ok(false)` at a clean end of stream.
async fn frame<R: AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool, Closed> {
    out.clear();
    let first = match r.fill_buf().await.map_err(|e| Closed::Io(e.to_string()))? {
        [] => return Ok(false),
        b => b[0],
    };
    if first.is_ascii_digit() {
        // Octet counting: at most 10 digits, then one space.
        let mut len: u64 = 0;
        let mut digits = 0;
        loop {
            let b = r.read_u8().await.map_err(|e| Closed::Io(e.to_string()))?;
            if b == b' ' && digits > 0 {
                break;
            }
            if !b.is_ascii_digit() || digits == 10 {
                return Err(Closed::BadFrame(format!("bad octet count (byte {b:#04x})")));
            }
            len = len * 10 + u64::from(b - b'0');
            digits += 1;
        }
        if len as usize > max || len == 0 {
            return Err(Closed::BadFrame(format!(
                "frame of {len} bytes; messages of 1 to {max} bytes are taken"
            )));
        }
        out.resize(len as usize, 0);
        r.read_exact(out)
            .await
            .map_err(|e| Closed::Io(e.to_string()))?;
    } else {
        // One message a line: read up to the LF, never past `max`.
        let mut limited = r.take(max as u64 + 1);
        limited
            .read_until(b'\n', out)
            .await
            .map_err(|e| Closed::Io(e.to_string()))?;
        // The LF ends the frame; a CR before it is the message's (kept in
        // `original`, trimmed from the parsed message).
        if out.last() == Some(&b'\n') {
            out.pop();
        } else if out.len() > max {
            return Err(Closed::BadFrame(format!("a line longer than {max} bytes")));
        }
        // A last line without its LF at the end of the stream is taken.
    }
    Ok(true)
}

/// Serves one connection until it ends.
async fn connection<R: AsyncRead + Unpin>(
    app: &Shared,
    served: &Arc<Served>,
    r: BufReader<R>,
    peer: String,
) -> Closed {
    let mut r = r;
    let max = app.cfg.server.syslog_message_bytes_max;
    let frame_deadline = app.cfg.server.header_timeout();
    let mut msg = Vec::new();
    loop {
        let mut group: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0;
        // Between frames a connection may idle; once a frame's first byte
        // is in, the whole frame must follow within the frame deadline (a
        // sender that starts a frame and stalls would otherwise hold its
        // connection for ever). A group takes the frames already buffered
        // after its first, so it never waits on the network.
        loop {
            let first = if group.is_empty() {
                IDLE
            } else {
                frame_deadline
            };
            let started = match tokio::time::timeout(first, r.fill_buf()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(Closed::Io(e.to_string())),
                Err(_) => Err(Closed::Io("idle".into())),
            };
            let got = match started {
                Err(e) => Err(e),
                Ok(()) => {
                    match tokio::time::timeout(frame_deadline, frame(&mut r, &mut msg, max)).await {
                        Ok(got) => got,
                        Err(_) => Err(Closed::BadFrame(format!(
                            "a frame not finished within {} s",
                            frame_deadline.as_secs()
                        ))),
                    }
                }
            };
            match got {
                Ok(true) => {
                    bytes += msg.len();
                    group.push(crate::syslog_msg::to_record(&msg, &peer));
                }
                Ok(false) => {
                    let end = append(app, served, group).await;
                    return end.err().unwrap_or(Closed::Eof);
                }
                Err(e) => {
                    // What was read whole before a bad frame is kept.
                    let _ = append(app, served, group).await;
                    return e;
                }
            }
            if group.len() >= GROUP_MESSAGES || bytes >= GROUP_BYTES || r.buffer().is_empty() {
                break;
            }
        }
        if let Err(e) = append(app, served, group).await {
            return e;
        }
    }
}

async fn append(app: &Shared, served: &Arc<Served>, group: Vec<Vec<u8>>) -> Result<(), Closed> {
    if group.is_empty() {
        return Ok(());
    }
    let _slot = served.enter_wait().await;
    let started = Instant::now();
    let n = group.len() as u64;
    let bytes: u64 = group.iter().map(|m| m.len() as u64).sum();
    match served.log.append_batch_async(group).batch().await {
        Ok(_) => {
            served.metrics.acknowledged(n, bytes, started.elapsed());
            app.metrics.syslog_messages.fetch_add(n, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            app.metrics.error("syslog_append");
            Err(Closed::Io(format!("append failed: {e}")))
        }
    }
}

/// One connection, plain or TLS, until it ends or the server stops; says
/// why it closed where that is news.
async fn handle(
    app: Shared,
    served: Arc<Served>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stream: tokio::net::TcpStream,
    peer: String,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = app.cfg.server.header_timeout();
    let serve = async {
        match tls {
            None => connection(&app, &served, BufReader::new(stream), peer.clone()).await,
            Some(acceptor) => {
                match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => connection(&app, &served, BufReader::new(s), peer.clone()).await,
                    _ => Closed::Io("TLS handshake failed".into()),
                }
            }
        }
    };
    let end = tokio::select! {
        end = serve => end,
        // Shutdown: stop reading. A group already submitted is committed
        // by the engine even if its waiter is dropped here (the close that
        // follows syncs it); syslog has no acknowledgement to withhold.
        _ = stop.changed() => Closed::Eof,
    };
    match &end {
        Closed::Eof => {}
        Closed::BadFrame(why) => {
            app.metrics
                .syslog_bad_frames
                .fetch_add(1, Ordering::Relaxed);
            crate::say::info(
                "syslog connection closed: bad frame",
                &[("peer", &peer), ("why", why)],
            );
        }
        Closed::Io(why) => {
            crate::say::info("syslog connection closed", &[("peer", &peer), ("why", why)]);
        }
    }
}

/// Accepts syslog connections on `listener` until `stop`; each is served
/// on a task of its own (messages in order per connection).
pub async fn serve(
    app: Shared,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(served) = app
        .cfg
        .syslog_log
        .as_deref()
        .and_then(|n| app.logs.get(n))
        .cloned()
    else {
        crate::say::error(
            "syslog_tcp is set but no [syslog] log is; not listening",
            &[],
        );
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            got = listener.accept() => match got {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            app.metrics.error("connections_max");
            continue;
        };
        // Finished connections' tasks go now: a JoinSet keeps each until
        // it is joined, and logger opens a connection per message.
        while tasks.try_join_next().is_some() {}
        let (app, served, tls, stop) = (app.clone(), served.clone(), tls.clone(), stop.clone());
        tasks.spawn(async move {
            let _permit = permit;
            handle(app, served, tls, stream, peer.to_string(), stop).await;
        });
    }
    drop(listener);
    // Let connections finish the group they are appending.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> (Vec<String>, Option<String>) {
        let mut r = BufReader::new(input);
        let mut out = Vec::new();
        let mut msg = Vec::new();
        loop {
            match frame(&mut r, &mut msg, max).await {
                Ok(true) => out.push(String::from_utf8_lossy(&msg).into_owned()),
                Ok(false) => return (out, None),
                Err(e) => return (out, Some(format!("{e:?}"))),
            }
        }
    }

    #[tokio::test]
    async fn octet_counted_and_lf_framed_messages_mix_on_one_stream() {
        let (got, end) = frames(b"5 hello10 hi\nthere!!line one\r\nline two", 100).await;
        assert_eq!(got, ["hello", "hi\nthere!!", "line one\r", "line two"]);
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_huge_length_prefix_or_endless_line_closes_without_reading_it() {
        let (got, end) = frames(b"3 abc99999999999 x", 1000).await;
        assert_eq!(got, ["abc"]);
        assert!(end.unwrap().contains("BadFrame"));
        let long = vec![b'a'; 5000];
        let (got, end) = frames(&long, 1000).await;
        assert!(got.is_empty());
        assert!(end.unwrap().contains("longer than 1000"));
        let (_, end) = frames(b"12345678901 x", 1 << 30).await;
        assert!(end.unwrap().contains("bad octet count"));
    }
}
