//! `wormctl demo [DIR]`, the main job: writes a realistic audit trail from
//! several threads, reads it back, seals it, verifies the chain, signs and
//! checks a checkpoint, and shows what is on disk, with timings.

use crate::fail::Fail;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wormlog::format::hex;
use wormlog::{Checkpoint, CheckpointKey, Durability, Log, Options};

const SSH: &str = include_str!("../data/OpenSSH_2k.log");
const LINUX: &str = include_str!("../data/Linux_2k.log");

#[derive(Clone, Copy, clap::ValueEnum)]
enum Mode {
    /// Each append returns once its record is on disk (group commit).
    Sync,
    /// Appends return at once; a thread syncs every 10 ms.
    Batched,
    /// Appends return at once; nothing is synced until close.
    Buffered,
}

#[derive(clap::Args)]
pub struct Args {
    /// Where to write the log (a previous demo log there is replaced).
    #[arg(default_value = "demo-log")]
    dir: PathBuf,
    /// How many audit events to write.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// How many threads append at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: u64,
    #[arg(long, value_enum, default_value = "sync")]
    durability: Mode,
    /// Seconds to measure the baseline first (a naive log: a mutex around a
    /// file, one write per record, plus one fdatasync per record in sync
    /// mode) with the same threads and events; 0 skips it.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = baseline_secs)]
    baseline_secs: f64,
}

fn baseline_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 600")),
    }
}

/// Removes a previous demo log, but nothing that is not one.
fn clear_dir(dir: &Path) -> Result<(), Fail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !wormlog::format::names::is_engine_file_name(&name) {
            return Err(Fail::usage(format!(
                "{} holds {name}, which is not a wormlog file; choose another directory",
                dir.display()
            )));
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| Fail::io(format!("removing {}", dir.display()), e))
}

/// A JSON audit event: who did what to which resource, from where, and how
/// it ended, with a real log line as its detail.
fn audit_event(thread: u64, i: u64, lines: &[&str]) -> Vec<u8> {
    const ACTORS: [&str; 8] = [
        "alice",
        "bob",
        "carol",
        "dave",
        "erin",
        "svc-backup",
        "svc-billing",
        "root",
    ];
    const ACTIONS: [&str; 8] = [
        "login",
        "logout",
        "read",
        "update",
        "delete",
        "grant-role",
        "export",
        "sudo",
    ];
    const RESOURCES: [&str; 6] = [
        "patients/records",
        "billing/invoices",
        "hr/payroll",
        "iam/roles",
        "prod-db/customers",
        "ssh/bastion-1",
    ];
    const OUTCOMES: [&str; 4] = ["success", "success", "failure", "denied"];
    let n = thread.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let pick = |k: u64, len: usize| ((n >> k) as usize) % len;
    let detail = lines[pick(7, lines.len())]
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        r#"{{"time":"{}","actor":"{}","action":"{}","resource":"{}","src_ip":"10.{}.{}.{}","outcome":"{}","request_id":"t{thread}-{i}","detail":"{}"}}"#,
        humantime::format_rfc3339_millis(std::time::SystemTime::now()),
        ACTORS[pick(3, 8)],
        ACTIONS[pick(11, 8)],
        RESOURCES[pick(17, 6)],
        pick(20, 256),
        pick(28, 256),
        pick(36, 254) + 1,
        OUTCOMES[pick(44, 4)],
        detail.trim_end(),
    )
    .into_bytes()
}

/// Records per second of the naive durable log wormlog is measured against,
/// in the same run, file system, threads and events: a mutex around one
/// file, and per record one write (length and payload) and, when `sync`,
/// one fdatasync. It writes a scratch file in `dir` and removes it.
fn naive_baseline(
    dir: &Path,
    threads: u64,
    secs: f64,
    sync: bool,
    lines: &[&str],
) -> Result<f64, Fail> {
    use std::io::Write;
    let path = dir.join("naive-baseline.tmp");
    let io = |e| Fail::io(path.display(), e);
    std::fs::create_dir_all(dir).map_err(|e| Fail::io(dir.display(), e))?;
    let file = std::sync::Mutex::new(std::fs::File::create(&path).map_err(io)?);
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let written: std::io::Result<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let file = &file;
                s.spawn(move || -> std::io::Result<u64> {
                    let mut n = 0;
                    while start.elapsed() < budget {
                        let event = audit_event(t, n, lines);
                        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                        f.write_all(&(event.len() as u32).to_le_bytes())?;
                        f.write_all(&event)?;
                        if sync {
                            f.sync_data()?;
                        }
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("panicked")))
            })
            .sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    std::fs::remove_file(&path).map_err(io)?;
    Ok(written.map_err(io)? as f64 / elapsed)
}

/// One line of the demo's report, shown at once: the demo runs for a while.
/// Through `Out`, so a reader that goes away (`| head`) ends it quietly.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        $out.line(format!($($arg)*))?;
        $out.flush()?;
    }};
}

/// The engine's records as `seq kind`, all of them when few, else the first
/// and last few and a count by kind.
fn engine_summary(engine: &[(u64, &str)]) -> String {
    const ENDS: usize = 4;
    let item = |(seq, kind): &(u64, &str)| format!("{seq} {kind}");
    if engine.len() <= 3 * ENDS {
        return engine.iter().map(item).collect::<Vec<_>>().join(", ");
    }
    let mut by_kind: Vec<(&str, usize)> = Vec::new();
    for (_, kind) in engine {
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => by_kind.push((kind, 1)),
        }
    }
    format!(
        "{}, … {} more …, {} ({})",
        engine[..ENDS]
            .iter()
            .map(item)
            .collect::<Vec<_>>()
            .join(", "),
        engine.len() - 2 * ENDS,
        engine[engine.len() - ENDS..]
            .iter()
            .map(item)
            .collect::<Vec<_>>()
            .join(", "),
        by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn rate(n: f64, secs: f64) -> String {
    format!("{:.0}/s", n / secs.max(1e-9))
}

/// MiB/s, in the binary units `stat` and `verify` print sizes in.
fn mb_per_s(bytes: u64, secs: f64) -> String {
    format!("{:.1} MiB/s", bytes as f64 / MIB / secs.max(1e-9))
}

const MIB: f64 = (1u64 << 20) as f64;

/// The demo: a script a user watches, step after step in the order the
/// README tells (baseline, write, read, seal, verify, inspect, sign, seal
/// the end), each printing its line as it finishes.
pub fn run(a: Args) -> Result<(), Fail> {
    let durability = match a.durability {
        Mode::Sync => Durability::Sync,
        Mode::Batched => Durability::Batched {
            max_delay: Duration::from_millis(10),
        },
        Mode::Buffered => Durability::Buffered,
    };
    clear_dir(&a.dir)?;
    let mut out = crate::out::Out::new();
    let lines: Vec<&str> = SSH.lines().chain(LINUX.lines()).collect();
    say!(
        out,
        "wormlog demo: {} audit events from {} threads into {} ({:?})",
        a.records,
        a.threads,
        crate::out::path_text(&a.dir),
        durability
    );
    let baseline = baseline(&a, &mut out, durability, &lines)?;
    let log = Log::open(&a.dir, Options::default().durability(durability))?;
    let (verify_key, key_path) = set_up_sealing(&a, &log, &mut out)?;
    write(&a, &log, &lines, baseline, &mut out)?;
    let (read_secs, read_to, mut engine) = read_back(&a, &log, &mut out)?;
    let segs = seal_and_verify(&log, read_secs, &mut out)?;
    let head = inspect(&log, &segs, read_to, &mut engine, &mut out)?;
    checkpoint(&a, &log, &mut out)?;
    log.close()?;
    sealed_summary(&a, &verify_key, &mut out)?;
    say!(
        out,
        "done: the log is in {0}; try `wormctl stat {0}`, `wormctl dump {0} --from {1} --to {2}`, `wormctl verify {0} --verify-key {3} --checkpoint {4} --pubkey {4}.pub`",
        crate::out::path_text(&a.dir),
        head.seq.saturating_sub(2),
        head.seq,
        crate::out::path_text(&key_path),
        crate::out::path_text(&beside(&a.dir, ".checkpoint"))
    );
    Ok(())
}

/// The naive log's rate on the same events, where asked for.
fn baseline(
    a: &Args,
    out: &mut crate::out::Out,
    durability: Durability,
    lines: &[&str],
) -> Result<Option<f64>, Fail> {
    if a.baseline_secs <= 0.0 {
        return Ok(None);
    }
    let sync = matches!(durability, Durability::Sync);
    let r = naive_baseline(&a.dir, a.threads, a.baseline_secs, sync, lines)?;
    say!(
        out,
        "baseline: a naive log (mutex, one write{} per record), {} threads, same events: {}",
        if sync { " and one fdatasync" } else { "" },
        a.threads,
        rate(r, 1.0)
    );
    Ok(Some(r))
}

/// Forward-secure sealing: the verification key goes beside the log
/// directory, never into it, and is written before the log announces it.
fn set_up_sealing(
    a: &Args,
    log: &Log,
    out: &mut crate::out::Out,
) -> Result<(wormlog::VerificationKey, std::path::PathBuf), Fail> {
    let key_path = verify_key_path(&a.dir);
    let _ = std::fs::remove_file(&key_path);
    let verify_key = log.setup_sealing_with(SEAL_EPOCH, |key| {
        crate::setup_keys::write_secret(&key_path, &format!("{}\n", key.to_text()))
            .map_err(|e| std::io::Error::other(e.message().to_string()))
    })?;
    say!(
        out,
        "sealing: forward-secure, epochs of {}; verification key in {} (outside the log)",
        humantime::format_duration(SEAL_EPOCH),
        crate::out::path_text(&key_path)
    );
    Ok((verify_key, key_path))
}

/// The events, from `a.threads` threads at once.
fn write(
    a: &Args,
    log: &Log,
    lines: &[&str],
    baseline: Option<f64>,
    out: &mut crate::out::Out,
) -> Result<(), Fail> {
    let start = Instant::now();
    let payload_bytes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                let (log, lines) = (&log, &lines);
                let n = a.records / a.threads + u64::from(t < a.records % a.threads);
                s.spawn(move || -> wormlog::Result<u64> {
                    let mut bytes = 0;
                    for i in 0..n {
                        let event = audit_event(t, i, lines);
                        bytes += event.len() as u64;
                        log.append(&event)?;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(wormlog::Error::InvalidOptions(
                        "writer thread panicked".into(),
                    ))
                })
            })
            .sum::<wormlog::Result<u64>>()
    })?;
    log.sync()?;
    let write_secs = start.elapsed().as_secs_f64();
    let stats = log.stats();
    say!(
        out,
        "write:  {} records, {:.1} MiB of payload in {write_secs:.2} s: {}, {} \
         ({} group commits, {} fdatasyncs, {:.1} records per commit)",
        a.records,
        payload_bytes as f64 / MIB,
        rate(a.records as f64, write_secs),
        mb_per_s(payload_bytes, write_secs),
        stats.writes,
        stats.syncs,
        stats.records as f64 / stats.writes.max(1) as f64,
    );
    if let Some(b) = baseline {
        say!(
            out,
            "        {:.2}x the naive baseline's records/s",
            a.records as f64 / write_secs.max(1e-9) / b.max(1e-9)
        );
    }

    Ok(())
}

/// The engine's records seen: seq and kind.
type EngineRecords = Vec<(u64, &'static str)>;

/// Every record read back; the engine's own are kept for the summary.
fn read_back(
    a: &Args,
    log: &Log,
    out: &mut crate::out::Out,
) -> Result<(f64, u64, EngineRecords), Fail> {
    let start = Instant::now();
    let (mut users, mut system, mut bytes) = (0u64, 0u64, 0u64);
    // The engine's own account of what it did to the log, shown below.
    let mut engine = Vec::new();
    let mut read_to = 0;
    for rec in log.read(..)? {
        let rec = rec?;
        read_to = rec.seq();
        if rec.is_system() {
            system += 1;
            engine.push((rec.seq(), rec.kind().name()));
        } else {
            users += 1;
            bytes += rec.payload().len() as u64;
        }
    }
    let read_secs = start.elapsed().as_secs_f64();
    say!(
        out,
        "read:   {users} user + {system} engine records in {read_secs:.2} s: {}, {}",
        rate((users + system) as f64, read_secs),
        mb_per_s(bytes, read_secs)
    );
    if users != a.records {
        return Err(Fail::tampered(format!(
            "read back {users} user records, wrote {}",
            a.records
        )));
    }

    Ok((read_secs, read_to, engine))
}

/// Seals what is closed (and the active segment), then verifies the log.
fn seal_and_verify(
    log: &Log,
    read_secs: f64,
    out: &mut crate::out::Out,
) -> Result<Vec<wormlog::SegmentInfo>, Fail> {
    // Seal: close the active segment and compress every closed segment that
    // background sealing has not finished yet.
    let start = Instant::now();
    let sealed_now = log.seal()?;
    let seal_secs = start.elapsed().as_secs_f64();
    let segs = log.segments()?;
    let (raw, disk): (u64, u64) = segs.iter().filter(|s| s.sealed).fold((0, 0), |(r, d), s| {
        (r + s.bytes_uncompressed, d + s.bytes_on_disk)
    });
    say!(
        out,
        "seal:   {} segments sealed ({} just now, in {seal_secs:.2} s): {:.1} MiB -> {:.1} MiB on disk, ratio {:.2}",
        segs.iter().filter(|s| s.sealed).count(),
        sealed_now,
        raw as f64 / MIB,
        disk as f64 / MIB,
        raw as f64 / disk.max(1) as f64
    );

    let start = Instant::now();
    let report = log.verify()?;
    let verify_secs = start.elapsed().as_secs_f64();
    say!(
        out,
        "verify: chain intact from seq {} to {}: {} records in {} segments ({} sealed), {:.1} MiB in {verify_secs:.2} s: {}, \
         {:.2}x the time of the plain read above",
        report.first_seq,
        report.head.seq,
        report.records,
        report.segments,
        report.sealed_segments,
        report.bytes as f64 / MIB,
        mb_per_s(report.bytes, verify_secs),
        verify_secs / read_secs.max(1e-9)
    );

    Ok(segs)
}

/// The segments, a record by seq and by time, and the engine's records.
fn inspect(
    log: &Log,
    segs: &[wormlog::SegmentInfo],
    read_to: u64,
    engine: &mut EngineRecords,
    out: &mut crate::out::Out,
) -> Result<wormlog::ChainPos, Fail> {
    say!(out, "inspect:");
    say!(
        out,
        "  {:<34} {:>7} {:>21} {:>12} {:>12} {:>6}",
        "segment",
        "state",
        "seqs",
        "on disk",
        "raw",
        "ratio"
    );
    // A long log shows its first and last few segments.
    const ENDS: usize = 3;
    for (k, s) in segs.iter().enumerate() {
        if segs.len() > 3 * ENDS && k >= ENDS && k < segs.len() - ENDS {
            if k == ENDS {
                say!(out, "  … {} more segments …", segs.len() - 2 * ENDS);
            }
            continue;
        }
        say!(
            out,
            "  {:<34} {:>7} {:>21} {:>12} {:>12} {:>6.2}",
            s.path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            crate::stat::state(s),
            format!("{}..={}", s.first_seq, s.last_seq),
            s.bytes_on_disk,
            s.bytes_uncompressed,
            s.bytes_uncompressed as f64 / s.bytes_on_disk.max(1) as f64
        );
    }
    let head = log.head();
    say!(out, "  head: seq {} hash {}", head.seq, hex(head.hash));
    let start = Instant::now();
    let mid = log.get(head.seq / 2)?;
    let get_us = start.elapsed().as_secs_f64() * 1e6;
    let by_time = log
        .first_at_or_after(mid.timestamp())?
        .ok_or_else(|| Fail::tampered("no record at the midpoint time"))?;
    say!(
        out,
        "  seq {} by number ({get_us:.0} us, from a sealed segment), and the first record at its commit time ({} ns) is seq {}:\n    {}",
        mid.seq(),
        mid.timestamp(),
        by_time.seq(),
        String::from_utf8_lossy(by_time.payload())
    );
    // Sealing wrote records of its own since the read above.
    for rec in log.read(read_to + 1..)? {
        let rec = rec?;
        if rec.is_system() {
            engine.push((rec.seq(), rec.kind().name()));
        }
    }
    say!(
        out,
        "  engine records, chained like the events: {}",
        engine_summary(engine)
    );

    Ok(head)
}

/// A signed checkpoint, kept away from the log, catches even a log
/// rewritten with every hash recomputed.
/// Its note and public key are kept beside the log (`DIR.checkpoint`,
/// `DIR.checkpoint.pub`), so that it can be checked again afterwards; the
/// private key is dropped, as an auditor's would never be on the host.
fn checkpoint(a: &Args, log: &Log, out: &mut crate::out::Out) -> Result<(), Fail> {
    let key = CheckpointKey::generate("demo-auditor").map_err(|e| Fail::io("random key", e))?;
    let note = log.checkpoint()?.sign(&key);
    let checkpoint = Checkpoint::verify_note(&note, &key.public()).map_err(wormlog::Error::from)?;
    log.verify_against(&checkpoint)?;
    let note_path = beside(&a.dir, ".checkpoint");
    let pub_path = beside(&a.dir, ".checkpoint.pub");
    let public = format!("{}\n", key.public().to_vkey_string());
    for (path, text) in [(&note_path, note.as_str()), (&pub_path, public.as_str())] {
        std::fs::write(path, text)
            .map_err(|e| Fail::io(format!("writing {}", path.display()), e))?;
    }
    say!(
        out,
        "checkpoint: signed by {} at seq {}; the log holds it unchanged (kept in {}, its key in {}):\n    {}",
        key.public().name(),
        checkpoint.seq,
        crate::out::path_text(&note_path),
        crate::out::path_text(&pub_path),
        note.trim_end().replace('\n', "\n    ")
    );
    Ok(())
}

/// Closed with a sealed close: the whole log is sealed now.
fn sealed_summary(
    a: &Args,
    verify_key: &wormlog::VerificationKey,
    out: &mut crate::out::Out,
) -> Result<(), Fail> {
    let reader = Log::open_read_only(&a.dir, Options::default())?;
    let sealed = reader.verify_sealed(std::slice::from_ref(verify_key))?;
    if let Some(s) = &sealed.sealing {
        say!(
            out,
            "sealed: through epoch {} (seq {}, {}), {} record(s) unsealed; an attacker who takes \
             this host now cannot change them unseen",
            s.sealed_through_epoch.unwrap_or(0),
            s.sealed_through_seq.unwrap_or(0),
            s.sealed_through_ns
                .map_or_else(String::new, crate::out::rfc3339),
            s.unsealed_records
        );
    }
    Ok(())
}

/// A demo's epochs are short, so that it seals several while it runs.
const SEAL_EPOCH: Duration = Duration::from_secs(10);

/// `DIR.verify-key`, beside the log directory.
fn verify_key_path(dir: &std::path::Path) -> std::path::PathBuf {
    beside(dir, ".verify-key")
}

/// `DIR` + `suffix`: a file beside the log directory, not in it.
fn beside(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    // Without a trailing `/`, which would put the file inside the directory.
    let mut name = dir.components().as_path().as_os_str().to_os_string();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::engine_summary;

    #[test]
    fn engine_summary_lists_a_few_records_whole_and_counts_many_by_kind() {
        let few = [(1, "log-created"), (2, "log-opened")];
        assert_eq!(engine_summary(&few), "1 log-created, 2 log-opened");
        let mut many = vec![(1, "log-created"), (2, "log-opened")];
        for k in 0..50u64 {
            many.push((100 * k + 99, "sealed"));
            many.push((100 * k + 100, "segment-rolled"));
        }
        let s = engine_summary(&many);
        assert!(
            s.starts_with(
                "1 log-created, 2 log-opened, 99 sealed, 100 segment-rolled, … 94 more …"
            ),
            "{s}"
        );
        assert!(
            s.ends_with("(1 log-created, 1 log-opened, 50 sealed, 50 segment-rolled)"),
            "{s}"
        );
    }
}
