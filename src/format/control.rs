//! The live writer's control channel as bytes on its socket (format-spec.md
//! §17): one request, one response, each a message of a head word and
//! byte-string arguments. Pure encoding; the writer serves it (control.rs)
//! and `wormctl` speaks it.
//!
//! A message: the line `wormlog-control 1 HEAD N\n`, then `N` arguments,
//! each the line `LEN\n` (decimal) and `LEN` bytes. HEAD is one word of
//! ASCII letters and `-`.

use std::io::{self, BufRead, Write};

/// The first two words of every message.
pub const MAGIC: &str = "wormlog-control 1";

/// At most this many arguments in a message.
pub const ARGS_MAX: usize = 65_536;

/// At most this many bytes in a message's arguments together: a request
/// is read whole before it is acted on.
pub const MESSAGE_BYTES_MAX: u64 = 64 << 20;

/// A request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The operation (a request) or the outcome (a response: `ok`,
    /// `tampered`, `failed`, `refused`).
    pub head: String,
    /// Its arguments.
    pub args: Vec<Vec<u8>>,
}

impl Message {
    /// A message of `head` and `args`.
    pub fn new(head: &str, args: Vec<Vec<u8>>) -> Message {
        Message {
            head: head.to_string(),
            args,
        }
    }

    /// Writes the message to `w`.
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{MAGIC} {} {}", self.head, self.args.len())?;
        for a in &self.args {
            writeln!(w, "{}", a.len())?;
            w.write_all(a)?;
        }
        w.flush()
    }

    /// Reads one message from `r`; a malformed or oversized one is an
    /// `InvalidData` error saying what is wrong, read no further than the
    /// bounds above.
    pub fn read_from(r: &mut dyn BufRead) -> io::Result<Message> {
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let line = read_line(r, 128)?;
        let rest = line
            .strip_prefix(MAGIC)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| bad(format!("not a wormlog control message: {line:?}")))?;
        let (head, count) = rest
            .split_once(' ')
            .ok_or_else(|| bad(format!("no argument count: {line:?}")))?;
        if head.is_empty() || !head.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            return Err(bad(format!("a head is one word: {head:?}")));
        }
        let count: usize = count
            .parse()
            .ok()
            .filter(|n| *n <= ARGS_MAX)
            .ok_or_else(|| bad(format!("argument count {count:?} (at most {ARGS_MAX})")))?;
        let mut args = Vec::with_capacity(count.min(64));
        let mut total = 0u64;
        for _ in 0..count {
            let len_line = read_line(r, 24)?;
            let len: u64 = len_line
                .parse()
                .map_err(|_| bad(format!("argument length {len_line:?}")))?;
            total = total.saturating_add(len);
            if total > MESSAGE_BYTES_MAX {
                return Err(bad(format!(
                    "arguments of more than {MESSAGE_BYTES_MAX} bytes"
                )));
            }
            let mut arg = vec![0u8; len as usize];
            r.read_exact(&mut arg)?;
            args.push(arg);
        }
        Ok(Message {
            head: head.to_string(),
            args,
        })
    }

    /// Argument `i` as text, if it is UTF-8.
    pub fn text(&self, i: usize) -> Option<&str> {
        std::str::from_utf8(self.args.get(i)?).ok()
    }
}

/// One `\n`-ended line of at most `max` bytes, without its `\n`.
fn read_line(r: &mut dyn BufRead, max: usize) -> io::Result<String> {
    let mut line = Vec::new();
    // Byte by byte from the buffer, so that nothing past the bound is read.
    while line.len() <= max {
        let buf = r.fill_buf()?;
        let Some(&b) = buf.first() else { break };
        r.consume(1);
        line.push(b);
        if b == b'\n' {
            break;
        }
    }
    if line.pop() != Some(b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a control line ends with a newline within {max} bytes"),
        ));
    }
    String::from_utf8(line)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a control line is text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_written_and_a_hostile_one_is_refused_within_bounds() {
        let m = Message::new(
            "append",
            vec![b"one\nline".to_vec(), Vec::new(), vec![0; 300]],
        );
        let mut bytes = Vec::new();
        m.write_to(&mut bytes).unwrap();
        assert_eq!(Message::read_from(&mut &bytes[..]).unwrap(), m);
        for hostile in [
            &b"wormlog-control 2 ok 0\n"[..],
            b"wormlog-control 1 ok 99999999\n",
            b"wormlog-control 1 o k 0\n",
            b"wormlog-control 1 ok 1\n99999999999\n",
            b"wormlog-control 1 ok 1\n5\nabc",
            b"wormlog-control 1 ok 0",
        ] {
            assert!(
                Message::read_from(&mut &hostile[..]).is_err(),
                "{hostile:?}"
            );
        }
        // An endless first line is refused after its bound, not read on.
        let endless = vec![b'x'; 1 << 20];
        assert!(Message::read_from(&mut &endless[..]).is_err());
    }
}
