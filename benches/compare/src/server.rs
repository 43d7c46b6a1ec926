//! wormd (issue 25) on loopback against the embedded API, rows of one run:
//! HTTP batch appends (100 records of 256 B a request, 64 keep-alive
//! clients, Sync) against 64 threads calling `append_batch` with the same
//! records; single-record requests at 64 clients (rate, p50, p99); syslog
//! octet-counted from 4 senders into a Batched log (lines/s, counted when
//! appended, not when sent); and wormd's memory and threads with 1,000
//! logs open against one. The server is the wormd binary built beside
//! this one (`cargo build --release -p wormd -p wormlog-compare`).

use crate::{case, ratio, run_threads, Case, RECORD};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options};

const TOKEN: &str = "wormd_bench-token-not-secret";
const BATCH: usize = 100;

/// A JSON record of exactly `RECORD` bytes.
fn record() -> String {
    let pad = RECORD - r#"{"p":""}"#.len();
    format!(r#"{{"p":"{}"}}"#, "a".repeat(pad))
}

/// A wormd on loopback ports, killed on drop.
struct Wormd {
    child: Child,
    http: String,
    syslog: String,
    _dir: tempfile::TempDir,
}

impl Drop for Wormd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Wormd {
    /// `logs` logs (the first named `audit`) of `durability`.
    fn start(durability: &str, logs: usize) -> Wormd {
        let dir = tempfile::tempdir().unwrap();
        let hash: String = Sha256::digest(TOKEN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut cfg = "[server]\nqueue_depth = 1024\n[syslog]\nlog = \"audit\"\n".to_string();
        for i in 0..logs {
            let name = if i == 0 {
                "audit".to_string()
            } else {
                format!("t{i}")
            };
            cfg += &format!(
                "[[log]]\nname = \"{name}\"\ndir = \"{name}\"\ndurability = \"{durability}\"\n"
            );
        }
        cfg += &format!("[[token]]\nprincipal = \"bench\"\nsha256 = \"{hash}\"\nlogs = [\"*\"]\nscopes = [\"append\", \"read\", \"admin\"]\n");
        let path = dir.path().join("wormd.toml");
        std::fs::write(&path, cfg).unwrap();
        let exe = std::env::current_exe().unwrap().with_file_name("wormd");
        let mut child = Command::new(&exe)
            .arg("--config")
            .arg(&path)
            .args(["--http", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (cargo build --release -p wormd)", exe.display()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let (mut http, mut syslog) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "wormd exited before ready"
            );
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(a) = v["http"].as_str() {
                http = a.to_string();
            }
            if let Some(a) = v["syslog_tcp"].as_str() {
                syslog = a.to_string();
            }
            if v["msg"] == "ready" {
                break;
            }
        }
        // Its later lines are not read; a thread drains them.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Wormd {
            child,
            http,
            syslog,
            _dir: dir,
        }
    }

    /// (resident MB, threads) from /proc.
    fn footprint(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |k: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        (field("VmRSS:") / 1024.0, field("Threads:"))
    }
}

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        let w = TcpStream::connect(addr).unwrap();
        w.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    /// POSTs `body`; the status.
    fn post(&mut self, path: &str, ctype: &str, body: &[u8]) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.w.write_all(head.as_bytes()).unwrap();
        self.w.write_all(body).unwrap();
        self.response()
    }

    fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
        self.w.write_all(head.as_bytes()).unwrap();
        let mut body = Vec::new();
        let status = self.response_into(&mut body);
        (status, body)
    }

    fn response(&mut self) -> u16 {
        let mut body = Vec::new();
        self.response_into(&mut body)
    }

    fn response_into(&mut self, body: &mut Vec<u8>) -> u16 {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0;
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        body.resize(len, 0);
        self.r.read_exact(body).unwrap();
        status
    }
}

thread_local! {
    static CONN: std::cell::RefCell<Option<(String, Conn)>> = const { std::cell::RefCell::new(None) };
}

/// This thread's connection to `addr`.
fn with_conn<T>(addr: &str, f: impl FnOnce(&mut Conn) -> T) -> T {
    CONN.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(a, _)| a != addr) {
            *c = Some((addr.to_string(), Conn::new(addr)));
        }
        f(&mut c.as_mut().unwrap().1)
    })
}

fn embedded(secs: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().durability(Durability::Sync)).unwrap();
    let batch: Vec<Vec<u8>> = (0..BATCH).map(|_| record().into_bytes()).collect();
    let rate = run_threads(64, secs, || {
        log.append_batch(&batch).unwrap();
        BATCH as u64
    });
    log.close().unwrap();
    rate
}

fn http_batch(secs: Duration) -> f64 {
    let srv = Wormd::start("sync", 1);
    let body: String = (0..BATCH).map(|_| record() + "\n").collect();
    run_threads(64, secs, || {
        let s = with_conn(&srv.http, |c| {
            c.post(
                "/v1/logs/audit/records",
                "application/x-ndjson",
                body.as_bytes(),
            )
        });
        assert_eq!(s, 200);
        BATCH as u64
    })
}

/// 64 clients of one record a request: rate, and each request's latency (µs).
fn http_single(secs: Duration) -> (f64, Vec<f64>) {
    let srv = Wormd::start("sync", 1);
    let body = record();
    let lat = Mutex::new(Vec::new());
    let rate = run_threads(64, secs, || {
        let t = Instant::now();
        let s = with_conn(&srv.http, |c| {
            c.post(
                "/v1/logs/audit/records",
                "application/json",
                body.as_bytes(),
            )
        });
        assert_eq!(s, 200);
        lat.lock().push(t.elapsed().as_secs_f64() * 1e6);
        1
    });
    (rate, lat.into_inner())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

/// 4 senders of octet-counted RFC 5424 lines into a Batched log: lines/s
/// from the first byte sent to the last line appended.
fn syslog(secs: Duration) -> f64 {
    let srv = Wormd::start("batched", 1);
    let msg = {
        let head = "<38>1 2026-12-08T00:00:00Z benchhost app 77 - - ";
        let text = format!("{head}{}", "m".repeat(RECORD - head.len()));
        format!("{} {text}", text.len())
    };
    // Frames in 64 KiB writes, as a forwarding daemon batches them.
    let chunk: String = std::iter::repeat_n(msg.as_str(), (64 << 10) / msg.len()).collect();
    let per_chunk = (64 << 10) / msg.len();
    let start = Instant::now();
    let sent: u64 = std::thread::scope(|s| {
        let senders: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut c = TcpStream::connect(&srv.syslog).unwrap();
                    let mut n = 0u64;
                    while start.elapsed() < secs {
                        c.write_all(chunk.as_bytes()).unwrap();
                        n += per_chunk as u64;
                    }
                    n
                })
            })
            .collect();
        senders.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // Appended: the log's head (2 engine records precede the first line).
    let mut c = Conn::new(&srv.http);
    loop {
        let (_, body) = c.get("/v1/logs/audit");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["head"]["seq"].as_u64().unwrap() >= sent + 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    sent as f64 / start.elapsed().as_secs_f64()
}

pub fn server_cases(cases: &mut Vec<Case>) {
    cases.push(case(
        "server: sync/64 embedded append_batch(100)",
        "rec/s",
        embedded,
    ));
    cases.push(case("server: sync/64 HTTP batch(100)", "rec/s", http_batch));
    cases.push(case("server: sync/64 HTTP single", "rec/s", |s| {
        http_single(s).0
    }));
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        cases.push(case(
            &format!("server: sync/64 HTTP single {name}"),
            "us",
            move |s| percentile(&mut http_single(s).1, p),
        ));
    }
    cases.push(case("server: syslog batched/4 senders", "lines/s", syslog));
    for (logs, what) in [(1, "1 log"), (1000, "1000 logs")] {
        cases.push(case(
            &format!("server: RSS, {what} open"),
            "MB",
            move |_| Wormd::start("sync", logs).footprint().0,
        ));
        cases.push(case(
            &format!("server: threads, {what} open"),
            "threads",
            move |_| Wormd::start("sync", logs).footprint().1,
        ));
    }
}

pub fn print_ratios(cases: &[Case]) {
    ratio(
        cases,
        "wormd HTTP batch(100) / embedded append_batch(100), sync/64",
        "server: sync/64 HTTP batch(100)",
        "server: sync/64 embedded append_batch(100)",
        ">= 0.7",
    );
    ratio(
        cases,
        "wormd threads, 1000 logs / 1 log",
        "server: threads, 1000 logs open",
        "server: threads, 1 log open",
        "1.0 (no thread per log)",
    );
    ratio(
        cases,
        "wormd RSS, 1000 logs / 1 log",
        "server: RSS, 1000 logs open",
        "server: RSS, 1 log open",
        "(reported)",
    );
}
