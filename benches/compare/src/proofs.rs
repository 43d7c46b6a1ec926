//! Proved appends (issue 24, format-spec.md §18): appends with a proof
//! handed back against appends without, Sync, 256 B records, 1/16/64
//! writers: throughput and p99 latency, each a row of its own so that the
//! ratios are of one run. And the time from an append to a proof that
//! carries a quorum of two local witnesses' cosignatures, at 16 writers
//! (`wormctl witness serve`, two processes on loopback, started from the
//! wormctl binary built beside this one: `cargo build --release -p wormctl
//! -p wormlog-compare`).

use crate::{case, ratio, run_threads, Case, RECORD};
use parking_lot::Mutex;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wormlog::{CheckpointKey, Durability, Log, Options, Witness, WitnessKey};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

fn options(proofs: bool) -> Options {
    let o = Options::default().durability(Durability::Sync);
    if proofs {
        o.proofs(CheckpointKey::generate("bench.example/log").unwrap())
    } else {
        o
    }
}

/// `k` writers for `secs`; each append's latency in µs, and records/s.
fn appends(k: usize, secs: Duration, proofs: bool) -> (f64, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options(proofs)).unwrap();
    let payload = vec![b'a'; RECORD];
    let lat = Mutex::new(Vec::new());
    let rate = run_threads(k, secs, || {
        let t = Instant::now();
        if proofs {
            log.append_proved(&payload).unwrap();
        } else {
            log.append(&payload).unwrap();
        }
        lat.lock().push(t.elapsed().as_secs_f64() * 1e6);
        1
    });
    log.close().unwrap();
    (rate, lat.into_inner())
}

pub fn proof_cases(cases: &mut Vec<Case>) {
    for k in [1, 16, 64] {
        for (on, name) in [(false, "off"), (true, "on")] {
            cases.push(case(
                &format!("proofs: sync/{k} wormlog, proofs {name}"),
                "rec/s",
                move |secs| appends(k, secs, on).0,
            ));
            cases.push(case(
                &format!("proofs: sync/{k} p99 latency, proofs {name}"),
                "us",
                move |secs| percentile(&mut appends(k, secs, on).1, 0.99),
            ));
        }
    }
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        cases.push(case(
            &format!("proofs: sync/16 append to 2-witness proof {name}"),
            "us",
            move |secs| percentile(&mut witnessed(secs), p),
        ));
    }
}

/// A `wormctl witness serve` on a free loopback port, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn witness(
    dir: &std::path::Path,
    name: &str,
    origin: &str,
    log_pub: &std::path::Path,
) -> (Served, Witness) {
    use std::io::BufRead;
    let key = WitnessKey::generate(name).unwrap();
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&key_path, key.to_private_string()).unwrap();
    let wormctl = std::env::current_exe().unwrap().with_file_name("wormctl");
    let mut child = Command::new(&wormctl)
        .args(["witness", "serve", "--key"])
        .arg(&key_path)
        .args(["--addr", "127.0.0.1:0", "--rate", "100000", "--state"])
        .arg(dir.join(format!("{name}-state")))
        .arg("--log")
        .arg(format!("{origin}={}", log_pub.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it: cargo build --release -p wormctl)",
                wormctl.display()
            )
        });
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    (
        Served(child),
        Witness {
            url,
            key: key.public(),
        },
    )
}

/// 16 writers, each append then its proof cosigned by two witnesses: the
/// time from the append's call to the witnessed proof, in µs.
fn witnessed(secs: Duration) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let key = CheckpointKey::generate("bench.example/log").unwrap();
    let log_pub = dir.path().join("log.pub");
    std::fs::write(&log_pub, key.public().to_vkey_string()).unwrap();
    let log = Log::open(dir.path().join("log"), options(false).proofs(key)).unwrap();
    let origin = format!("wormlog/{}/v2", wormlog::format::hex(log.log_id()));
    let (_a, wa) = witness(dir.path(), "w1.example", &origin, &log_pub);
    let (_b, wb) = witness(dir.path(), "w2.example", &origin, &log_pub);
    let witnesses = [wa, wb];
    let payload = vec![b'a'; RECORD];
    let lat = Mutex::new(Vec::new());
    run_threads(16, secs, || {
        let t = Instant::now();
        let p = log.append_proved(&payload).unwrap();
        let w = log.witness_proofs(&[p], &witnesses).unwrap();
        debug_assert!(w[0].proof.note.contains("w2.example"));
        lat.lock().push(t.elapsed().as_secs_f64() * 1e6);
        1
    });
    log.close().unwrap();
    lat.into_inner()
}

/// Proofs on against off, same run.
pub fn print_ratios(cases: &[Case]) {
    for k in [1, 16, 64] {
        ratio(
            cases,
            &format!("proofs on / off, sync/{k} throughput"),
            &format!("proofs: sync/{k} wormlog, proofs on"),
            &format!("proofs: sync/{k} wormlog, proofs off"),
            ">= 0.9",
        );
        ratio(
            cases,
            &format!("proofs on / off, sync/{k} p99 latency"),
            &format!("proofs: sync/{k} p99 latency, proofs on"),
            &format!("proofs: sync/{k} p99 latency, proofs off"),
            "<= 1.2",
        );
    }
}
