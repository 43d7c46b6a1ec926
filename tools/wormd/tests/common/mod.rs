//! A wormd started by a test: `wormd init` in a temporary directory, the
//! config edited where a test needs it, the server on loopback ports the
//! OS picks (read back from its "listening" lines), stopped by its own
//! pid (SIGTERM, or SIGKILL for crash tests). Clients are real ones: curl
//! for HTTP, and what each test file names.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The wormd binary under test.
pub fn wormd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wormd"))
}

/// A directory `wormd init` wrote, and the admin token it printed.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub token: String,
}

impl Setup {
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let o = wormd().arg("init").arg(dir.path()).output().unwrap();
        assert!(
            o.status.success(),
            "wormd init: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let token = String::from_utf8(o.stdout).unwrap().trim().to_string();
        assert!(token.starts_with("wormd_"), "{token}");
        Setup { dir, token }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("wormd.toml")
    }

    /// Rewrites the config with `f`.
    pub fn edit(&self, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        std::fs::write(self.config(), f(text)).unwrap();
    }

    /// Adds a `[[token]]` with `scopes` on `logs`; its token.
    pub fn add_token(&self, principal: &str, logs: &str, scopes: &str) -> String {
        let o = wormd().arg("token").output().unwrap();
        let token = String::from_utf8(o.stdout).unwrap().trim().to_string();
        let err = String::from_utf8(o.stderr).unwrap();
        let hash = err.split('"').nth(1).unwrap().to_string();
        self.edit(|t| {
            format!(
                "{t}\n[[token]]\nprincipal = \"{principal}\"\nsha256 = \"{hash}\"\nlogs = {logs}\nscopes = {scopes}\n"
            )
        });
        token
    }

    /// Starts wormd on this config (with TLS where the config has a
    /// certificate: the test's self-signed cert.pem is then its CA).
    pub fn start(&self) -> Server {
        let mut srv = Server::start(&self.config(), &self.token);
        let text = std::fs::read_to_string(self.config()).unwrap();
        if text.lines().any(|l| l.starts_with("tls_cert")) {
            srv.ca = Some(self.dir.path().join("cert.pem"));
        }
        srv
    }
}

/// A running wormd.
pub struct Server {
    pub child: Child,
    pub http: String,
    pub syslog: String,
    pub token: String,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// How long from spawn to its "ready" line.
    pub startup: Duration,
    /// The CA of a TLS server's certificate: URLs are then https://localhost.
    pub ca: Option<PathBuf>,
}

impl Server {
    pub fn start(config: &Path, token: &str) -> Server {
        let started = Instant::now();
        let mut child = wormd()
            .arg("--config")
            .arg(config)
            .args(["--http", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let (mut http, mut syslog) = (String::new(), String::new());
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("wormd did not get ready: {:?}", lines.lock().unwrap()));
            let v: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => continue,
            };
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
        Server {
            child,
            http,
            syslog,
            token: token.to_string(),
            stderr: lines,
            startup: started.elapsed(),
            ca: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        match &self.ca {
            None => format!("http://{}{}", self.http, path),
            Some(_) => format!(
                "https://localhost:{}{}",
                self.http.rsplit(':').next().unwrap(),
                path
            ),
        }
    }

    /// SIGTERM, then waits for the exit (at most 60 s); the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "wormd did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        signal(&self.child, "KILL");
        let _ = self.child.wait();
    }

    /// curl with the admin token and `args`.
    pub fn curl(&self, args: &[&str]) -> Reply {
        let auth = format!("Authorization: Bearer {}", self.token);
        let ca = self.ca.as_ref().map(|p| p.to_str().unwrap().to_string());
        let tls: Vec<&str> = ca.as_deref().map_or(vec![], |c| vec!["--cacert", c]);
        curl(&[&["-H", &auth], &tls[..], args].concat())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// An HTTP answer: status, body, headers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The body's JSON lines.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.body
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Runs curl (the real client, from the machine) with `args`.
pub fn curl(args: &[&str]) -> Reply {
    let headers = tempfile::NamedTempFile::new().unwrap();
    let o: Output = Command::new("curl")
        .args(["-sS", "-D"])
        .arg(headers.path())
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs (apt-get install curl)");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    Reply {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        headers: std::fs::read_to_string(headers.path()).unwrap_or_default(),
    }
}

/// The records of `log` under `dir`, read with the engine after the server
/// stopped: (seq, payload) of each user record.
pub fn user_records(dir: &Path) -> Vec<(u64, Vec<u8>, String)> {
    let log = wormlog::Log::open_read_only(dir, wormlog::Options::default()).unwrap();
    log.read(1..)
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| !r.is_system())
        .map(|r| (r.seq(), r.payload().to_vec(), r.hash().to_hex()))
        .collect()
}

/// A self-signed certificate for localhost and 127.0.0.1 (openssl, from
/// the machine): cert.pem and key.pem in `dir`.
pub fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (apt-get install openssl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (cert, key)
}
