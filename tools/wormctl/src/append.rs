//! `wormctl append DIR`: one record per line of standard input, so that a
//! shell script or a program in any language can write through a pipe
//! (`tail -F app.log | wormctl append audit`). One receipt per record goes
//! to stdout as a JSON line (seq, commit time, chain hash) once the record
//! is committed under the chosen durability.

use crate::fail::Fail;
use crate::out::Out;
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::time::Duration;
use wormlog::format::hex;
use wormlog::{Durability, Error, Log, Options};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory (created if missing).
    dir: PathBuf,
    /// Each line must be one JSON value; a line that is not stops the run
    /// (exit 2) before it is appended.
    #[arg(long)]
    json: bool,
    /// sync: each receipt after an fdatasync covers it (default); batched:
    /// fdatasync 10 ms after the last; buffered: fdatasync on exit.
    #[arg(long, value_name = "MODE", default_value = "sync")]
    durability: String,
    /// Lines committed together at most (one write and, in sync mode, one
    /// fdatasync for them); fewer when input is slow, never waiting for more.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    batch: usize,
    /// Prove each record (format-spec.md 18.1): each receipt line gains a
    /// `proof` field, the C2SP tlog-proof text of its record against a
    /// checkpoint signed with this private key (from `wormctl keygen`),
    /// handed out once the record is durable whatever --durability says.
    /// Check one offline with `wormctl check-proof FILE --pubkey LOG.pub`.
    #[arg(long, value_name = "FILE")]
    proof_key: Option<PathBuf>,
    /// With --proof-key: each batch's proofs come back against a
    /// checkpoint this witness cosigned (URL=WITNESS.pub; repeatable), so
    /// that a verifier's policy quorum accepts them.
    #[arg(long = "witness", value_name = "URL=FILE", requires = "proof_key")]
    witnesses: Vec<String>,
    /// Ship while appending (feature s3): sealed segments and the active
    /// segment's tail go to s3://BUCKET/PREFIX every --ship-every, and once
    /// more at the end of input, so that losing this host loses at most
    /// that interval of records.
    #[cfg(feature = "s3")]
    #[arg(long, value_name = "URL")]
    ship_to: Option<String>,
    /// How often the writer ships its tail with --ship-to.
    #[cfg(feature = "s3")]
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::out::parse_duration)]
    ship_every: Duration,
    /// With --ship-to: lock each object at least until TIME (RFC 3339, or a
    /// duration from now like 400d); else the log's recorded policy says.
    #[cfg(feature = "s3")]
    #[arg(long, value_name = "TIME", value_parser = crate::ship::parse_until)]
    retain_until: Option<u64>,
}

/// The options the writer opens with: durability, and shipping where asked.
fn writer_options(a: &Args, d: Durability) -> Result<Options, Fail> {
    let mut options = Options::default().durability(d);
    if let Some(path) = &a.proof_key {
        let text = crate::verify::read_small(path, "private key")?;
        let key = wormlog::CheckpointKey::from_private_string(text.trim())
            .map_err(|e| Fail::usage(format!("{}: {e}", crate::out::path_text(path))))?;
        options = options.proofs(key);
    }
    #[cfg(feature = "s3")]
    if let Some(url) = &a.ship_to {
        let mut target = crate::ship::target_for(url)?.with_tail(true);
        if let Some(t) = a.retain_until {
            target = target.retain_until(t);
        }
        let shipping = wormlog::Shipping::new(target).interval(a.ship_every);
        return Ok(options.shipping(shipping));
    }
    #[cfg(not(feature = "s3"))]
    let _ = a;
    Ok(options)
}

fn durability(mode: &str) -> Result<Durability, Fail> {
    match mode {
        "sync" => Ok(Durability::Sync),
        "batched" => Ok(Durability::Batched {
            max_delay: Duration::from_millis(10),
        }),
        "buffered" => Ok(Durability::Buffered),
        other => Err(Fail::usage(format!(
            "--durability {other}: expected sync, batched or buffered"
        ))),
    }
}

pub fn run(a: Args) -> Result<(), Fail> {
    let d = durability(&a.durability)?;
    let log = match Log::open(&a.dir, writer_options(&a, d)?) {
        Ok(log) => Sink::Here(log),
        // Another process writes the log: it appends these, through its
        // control socket, under its own durability mode.
        Err(Error::Locked { .. }) if a.proof_key.is_none() => {
            Sink::Live(crate::control::live(&a.dir)?)
        }
        Err(e @ Error::Locked { .. }) => {
            return Err(Fail::log(e).within(
                "--proof-key signs with this process's writer; the running writer proves appends                  when opened with Options::proofs",
            ))
        }
        Err(e) => return Err(Fail::log(e)),
    };
    // Our own buffer, so that what is already read in can be looked at
    // without reading more: `fill_buf` on an empty buffer waits for input,
    // which held a line read from a slow pipe (`tail -F`) uncommitted until
    // the next one came (the seventeenth red team).
    let mut input = std::io::BufReader::with_capacity(64 << 10, std::io::stdin().lock());
    let mut out = Out::new();
    let proving = a.proof_key.is_some();
    let witnesses = crate::checkpoint::witnesses(&a.witnesses)?;
    let mut line_no = 0u64;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    loop {
        batch.clear();
        // One line, waiting for it; then the lines already read in, without
        // waiting, up to the batch size.
        while batch.len() < a.batch.max(1) {
            if !batch.is_empty() && !input.buffer().contains(&b'\n') {
                break;
            }
            let mut line = Vec::new();
            // A record holds at most the log's payload limit; a longer line
            // is refused whole (read no further than the limit: memory).
            let limit = Options::default().payload_bytes_max_value();
            let n = (&mut input)
                .take(limit as u64 + 2)
                .read_until(b'\n', &mut line)
                .map_err(|e| Fail::io("standard input", e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            if line.len() > limit {
                commit(&log, &batch, proving, &witnesses, &mut out)?;
                return Err(Fail::usage(format!(
                    "standard input, line {line_no}: longer than the {} bytes ({} MiB) a record \
                     may hold; the lines before it were appended, it and the rest were not",
                    limit,
                    limit >> 20
                )));
            }
            if a.json && serde_json::from_slice::<serde_json::Value>(&line).is_err() {
                commit(&log, &batch, proving, &witnesses, &mut out)?;
                return Err(Fail::usage(format!(
                    "standard input, line {line_no}: not a JSON value; the lines before it \
                     were appended, it and the rest were not"
                )));
            }
            batch.push(line);
        }
        if batch.is_empty() {
            break;
        }
        commit(&log, &batch, proving, &witnesses, &mut out)?;
    }
    out.flush()?;
    match log {
        Sink::Here(log) => {
            // What came last goes off the host now, not an interval later.
            #[cfg(feature = "s3")]
            if a.ship_to.is_some() {
                log.ship_now().map_err(Fail::log)?;
            }
            log.close().map_err(Fail::log)
        }
        Sink::Live(_) => Ok(()),
    }
}

/// Where the lines go: a writer opened here, or the running one.
enum Sink {
    Here(Log),
    Live(crate::control::Live),
}

fn commit(
    log: &Sink,
    batch: &[Vec<u8>],
    proving: bool,
    witnesses: &[wormlog::Witness],
    out: &mut Out,
) -> Result<(), Fail> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut proofs = Vec::new();
    // A witness that fails never costs a receipt: the records are durable,
    // so their receipts go out with the log's own proofs and the reason
    // (a conflict then stops the run, exit 1; anything else goes on). A
    // witness kept busy by others once stopped a service here with records
    // written and never acknowledged (the red team).
    let mut witness_error = None;
    let receipts: Vec<(u64, u64, String)> = match log {
        Sink::Here(log) if proving => {
            let proved = log.append_batch_proved(batch).map_err(Fail::log)?;
            match witnesses {
                [] => proved,
                w => match log.witness_proofs(&proved, w) {
                    Ok(witnessed) => witnessed,
                    Err(e) => {
                        witness_error = Some(e);
                        proved
                    }
                },
            }
        }
        .into_iter()
        .map(|p| {
            proofs.push(p.proof.to_text());
            (p.receipt.seq, p.receipt.timestamp_ns, hex(p.receipt.hash))
        })
        .collect(),
        Sink::Here(log) => log
            .append_batch(batch)
            .map_err(Fail::log)?
            .into_iter()
            .map(|r| (r.seq, r.timestamp_ns, hex(r.hash)))
            .collect(),
        Sink::Live(live) => live
            .call("append", batch.to_vec())?
            .iter()
            .map(|r| parse_receipt(r))
            .collect::<Result<_, _>>()?,
    };
    let mut proofs = proofs.into_iter();
    for (seq, time_ns, hash) in receipts {
        let mut receipt = serde_json::json!({
            "seq": seq,
            "time_ns": time_ns.to_string(),
            "hash": hash,
        });
        if let Some(proof) = proofs.next() {
            receipt["proof"] = serde_json::Value::String(proof);
        }
        if let Some(e) = &witness_error {
            receipt["witness_error"] = serde_json::Value::String(e.to_string());
        }
        out.line(receipt.to_string())?;
    }
    out.flush()?;
    match witness_error {
        Some(e @ wormlog::Error::WitnessConflict { .. }) => Err(Fail::log(e)),
        Some(e) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "wormctl: {e}; these receipts carry the log's own proofs, not witnessed"
            );
            Ok(())
        }
        None => Ok(()),
    }
}

/// A receipt as the control channel gives it: `SEQ TIME_NS HASH`.
fn parse_receipt(r: &[u8]) -> Result<(u64, u64, String), Fail> {
    let bad = || Fail::usage("the running writer sent a receipt that does not parse");
    let text = std::str::from_utf8(r).map_err(|_| bad())?;
    let mut f = text.split(' ');
    let seq = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let time = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let hash = f.next().filter(|h| h.len() == 64).ok_or_else(bad)?;
    Ok((seq, time, hash.to_string()))
}
