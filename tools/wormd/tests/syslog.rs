//! syslog into wormd from real senders: util-linux `logger` (octet
//! counting, RFC 5424 and RFC 3164), and rsyslog (Debian's rsyslogd,
//! started by the test with its own config and stopped by its pid)
//! forwarding with omfwd, octet-counted over plain TCP and over TLS
//! (rsyslog-gnutls). Every message must arrive exactly once, in order.
//! Hostile frames close only their own connection.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The syslog records' payloads, read over HTTP, in log order.
fn syslog_records(srv: &Server) -> Vec<serde_json::Value> {
    srv.curl(&[&srv.url("/v1/logs/audit/records?match=syslog=rfc5424")])
        .lines()
        .into_iter()
        .chain(
            srv.curl(&[&srv.url("/v1/logs/audit/records?match=syslog=rfc3164")])
                .lines(),
        )
        .map(|l| l["payload"].clone())
        .collect()
}

/// Waits until `want` messages whose text starts with `prefix` are in the
/// log; their texts in log order.
fn wait_for(srv: &Server, prefix: &str, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = srv.url("/v1/logs/audit/records?match=app=wormtest");
        let mut got: Vec<(u64, String)> = srv
            .curl(&[&url])
            .lines()
            .into_iter()
            .filter_map(|l| {
                let m = l["payload"]["message"].as_str()?.to_string();
                m.starts_with(prefix)
                    .then(|| (l["seq"].as_u64().unwrap(), m))
            })
            .collect();
        got.sort();
        if got.len() >= want || Instant::now() > deadline {
            return got.into_iter().map(|(_, m)| m).collect();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

#[test]
fn logger_messages_arrive_once_each_in_order_parsed_in_both_formats() {
    let s = Setup::new();
    let srv = s.start();
    for i in 0..5 {
        let format = if i % 2 == 0 { "--rfc5424" } else { "--rfc3164" };
        let st = Command::new("logger")
            .args([
                "--tcp",
                "--octet-count",
                format,
                "-n",
                "127.0.0.1",
                "-P",
                port(&srv.syslog),
            ])
            .args([
                "-t",
                "wormtest",
                "-p",
                "auth.notice",
                &format!("logger {i} said so"),
            ])
            .status()
            .expect("logger runs (util-linux)");
        assert!(st.success());
    }
    let got = wait_for(&srv, "logger ", 5);
    assert_eq!(
        got,
        (0..5)
            .map(|i| format!("logger {i} said so"))
            .collect::<Vec<_>>()
    );
    let recs = syslog_records(&srv);
    let one = recs.iter().find(|r| r["syslog"] == "rfc5424").unwrap();
    assert_eq!(one["facility"], 4, "auth");
    assert_eq!(one["severity"], 5, "notice");
    assert!(one["original"].as_str().unwrap().starts_with("<37>1 "));
    assert!(recs
        .iter()
        .any(|r| r["syslog"] == "rfc3164" && r["app"] == "wormtest"));
}

/// rsyslogd in the foreground with `conf`, its pid file and work
/// directory under `dir`.
struct Rsyslog(Child);

impl Rsyslog {
    fn start(dir: &Path, conf: &str) -> Rsyslog {
        std::fs::create_dir_all(dir.join("rsyslog-work")).unwrap();
        let path = dir.join("rsyslog.conf");
        std::fs::write(&path, conf).unwrap();
        let check = Command::new("/usr/sbin/rsyslogd")
            .arg("-N1")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("rsyslogd runs (apt-get install rsyslog)");
        assert!(
            check.status.success(),
            "rsyslog config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rsyslog.err")).unwrap())
            .spawn()
            .unwrap();
        Rsyslog(child)
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound, then released for rsyslog to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `n` RFC 5424 messages to rsyslog's input on one connection.
fn send_to_rsyslog(port: u16, n: usize, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("rsyslog's input on {port}: {e}"),
        }
    };
    let mut batch = String::new();
    for i in 0..n {
        batch += &format!("<38>1 2026-12-08T00:00:00Z testhost wormtest 77 - - {prefix}{i:05}\n");
    }
    c.write_all(batch.as_bytes()).unwrap();
}

fn rsyslog_forwards(tls: bool) {
    let s = Setup::new();
    let dir = s.dir.path();
    let (cert, _) = if tls {
        self_signed(dir)
    } else {
        (dir.join("none"), dir.join("none"))
    };
    if tls {
        s.edit(|t| {
            t.replace(
                "[server]\n",
                "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
            )
        });
    }
    let srv = s.start();
    let input = free_port();
    let tls_global = if tls {
        format!(
            "global(DefaultNetstreamDriverCAFile=\"{}\")\n",
            cert.display()
        )
    } else {
        String::new()
    };
    let tls_action = if tls {
        " StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"localhost\""
    } else {
        ""
    };
    let target = if tls { "localhost" } else { "127.0.0.1" };
    let conf = format!(
        "global(workDirectory=\"{work}\")\n{tls_global}\
         module(load=\"imtcp\")\n\
         input(type=\"imtcp\" port=\"{input}\" address=\"127.0.0.1\")\n\
         action(type=\"omfwd\" target=\"{target}\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" \
         template=\"RSYSLOG_SyslogProtocol23Format\"{tls_action})\n",
        work = dir.join("rsyslog-work").display(),
        port = port(&srv.syslog),
    );
    let _rsyslog = Rsyslog::start(dir, &conf);
    let n = 2000;
    send_to_rsyslog(input, n, "fwd-");
    let got = wait_for(&srv, "fwd-", n);
    let want: Vec<String> = (0..n).map(|i| format!("fwd-{i:05}")).collect();
    let said = std::fs::read_to_string(dir.join("rsyslog.err")).unwrap_or_default();
    assert_eq!(
        got.len(),
        n,
        "every message arrives exactly once; rsyslogd said: {said}"
    );
    let first_wrong = got.iter().zip(&want).position(|(g, w)| g != w);
    assert_eq!(
        first_wrong,
        None,
        "in order: {:?}",
        first_wrong.map(|i| (&got[i], &want[i]))
    );
}

#[test]
fn rsyslog_forwards_every_message_once_in_order_octet_counted() {
    rsyslog_forwards(false);
}

#[test]
fn rsyslog_forwards_every_message_once_in_order_over_tls() {
    rsyslog_forwards(true);
}

#[test]
fn a_frame_started_and_never_finished_is_closed_at_the_deadline() {
    let s = Setup::new();
    s.edit(|t| t.replace("[server]\n", "[server]\nheader_timeout_secs = 1\n"));
    let srv = s.start();
    for stall in [
        &b"100 <13>1 - - partial"[..],
        b"12",
        b"<13>1 - - no line end",
    ] {
        let mut c = TcpStream::connect(&srv.syslog).unwrap();
        c.write_all(stall).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        assert!(
            c.read_to_end(&mut rest).is_ok(),
            "closed by the server, not by our 20 s"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
    }
    // An idle connection between frames is not cut at that deadline.
    let mut idle = TcpStream::connect(&srv.syslog).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let msg = "<13>1 - h wormtest - - - after-idle";
    idle.write_all(format!("{} {msg}", msg.len()).as_bytes())
        .unwrap();
    drop(idle);
    assert_eq!(wait_for(&srv, "after-idle", 1), ["after-idle"]);
}

#[test]
fn a_hostile_frame_closes_only_its_connection_and_others_go_on() {
    let s = Setup::new();
    s.edit(|t| t.replace("[server]\n", "[server]\nsyslog_message_bytes_max = 1024\n"));
    let srv = s.start();
    let hostile: [&[u8]; 3] = [
        b"99999999999999 x",
        b"4000000000 <13>1 - - - - - -",
        &[b'a'; 5000],
    ];
    for bytes in hostile {
        let mut c = TcpStream::connect(&srv.syslog).unwrap();
        let _ = c.write_all(bytes);
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        assert!(c.read_to_end(&mut rest).is_ok(), "closed by the server");
    }
    // A good sender meanwhile is served.
    let mut good = TcpStream::connect(&srv.syslog).unwrap();
    let msg = "<13>1 - h wormtest - - - still-served";
    good.write_all(format!("{} {msg}", msg.len()).as_bytes())
        .unwrap();
    drop(good);
    assert_eq!(wait_for(&srv, "still-served", 1), ["still-served"]);
    let m = srv.curl(&[&srv.url("/metrics")]).body;
    assert!(m.contains("wormd_syslog_bad_frames_total 3"), "{m}");
}
