//! A writer process killed with SIGKILL at a random moment loses no record
//! whose receipt it had printed.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use wormlog::format::hex;
use wormlog::{Log, Options};

const CHILD_ENV: &str = "WORMLOG_KILL_CHILD_DIR";

/// Not a test on its own: the child process of the tests below. It appends
/// from four threads and prints each receipt once `append` returns.
#[test]
#[ignore = "run as a child process by killed_writer_loses_no_printed_receipt"]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = Log::open(&dir, Options::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let log = &log;
            s.spawn(move || {
                for i in 0u64.. {
                    let r = log.append(format!("child t{t} i{i}").as_bytes()).unwrap();
                    println!("RECEIPT {} {}", r.seq, hex(r.hash));
                }
            });
        }
    });
}

#[test]
fn killed_writer_loses_no_printed_receipt() {
    let seed = seed("kill");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let rest = l.strip_prefix("RECEIPT ")?;
                    let (seq, hash) = rest.split_once(' ')?;
                    Some((seq.parse::<u64>().ok()?, hash.to_string()))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(150 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let receipts = reader.join().unwrap();
        assert!(
            !receipts.is_empty(),
            "round {round}: the child printed no receipt"
        );
        let log = Log::open(dir.path(), Options::default()).unwrap();
        for (seq, hash) in &receipts {
            let rec = log.get(*seq).unwrap_or_else(|e| {
                panic!("round {round} (seed {seed}): printed seq {seq} is missing: {e}")
            });
            assert_eq!(&hex(rec.hash()), hash, "round {round}: seq {seq} changed");
        }
        log.verify().unwrap();
        total += receipts.len();
    }
    eprintln!("kill: {total} printed receipts all found after 3 kills");
}
