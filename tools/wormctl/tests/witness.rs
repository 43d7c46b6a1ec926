//! Witnesses, trust policies and proofs with the acknowledgement, driven
//! through wormctl (format-spec.md §18): `witness serve` processes started
//! and stopped by their own pid on loopback, `checkpoint --witness`,
//! `verify --policy`, `append --proof-key [--witness]` and `check-proof`.
//! A split view (a forked log) gets a cosignature for one branch and a
//! conflict for the other; a rollback is refused and reported; the
//! witness's state survives its restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn wormctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wormctl"))
        .args(args)
        .output()
        .expect("wormctl runs")
}

fn wormctl_in(stdin: &str, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wormctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A running `wormctl witness serve`, killed by its pid when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(key: &Path, state: &Path, origin: &str, log_pub: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wormctl"))
        .args([
            "witness",
            "serve",
            "--key",
            p(key),
            "--addr",
            "127.0.0.1:0",
            "--state",
            p(state),
            "--log",
            &format!("{origin}={}", p(log_pub)),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("witness did not start: {line:?}"))
        .to_string();
    Served { child, url }
}

struct Setup {
    dir: tempfile::TempDir,
    log: PathBuf,
    origin: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        expect_code(
            &wormctl(&[
                "keygen",
                "--name",
                "log.example",
                "--out",
                p(&d.join("logk")),
            ]),
            0,
        );
        for w in ["w1", "w2"] {
            expect_code(
                &wormctl(&[
                    "witness",
                    "keygen",
                    "--name",
                    &format!("{w}.example"),
                    "--out",
                    p(&d.join(w)),
                ]),
                0,
            );
        }
        let log = d.join("log");
        expect_code(&wormctl_in("one\ntwo\nthree\n", &["append", p(&log)]), 0);
        let o = wormctl(&["checkpoint", p(&log), "--key", p(&d.join("logk.key"))]);
        expect_code(&o, 0);
        let origin = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        Setup { dir, log, origin }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn witness(&self, w: &str) -> Served {
        serve(
            &self.path(&format!("{w}.key")),
            &self.path(&format!("{w}-state")),
            &self.origin,
            &self.path("logk.pub"),
        )
    }

    /// `witness serve` of witness key `key` on `state` for this log, with
    /// `extra` arguments.
    fn serve_args(&self, key: &str, state: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["witness", "serve", "--key", p(&self.path(key))]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend([
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--state".into(),
            p(state).into(),
        ]);
        args.extend([
            "--log".into(),
            format!("{}={}", self.origin, p(&self.path("logk.pub"))),
        ]);
        args.extend(extra.iter().map(|x| x.to_string()));
        args
    }

    /// `witness serve` that must refuse to start: its output.
    fn serve_refused(&self, key: &str, state: &Path, extra: &[&str]) -> Output {
        let args = self.serve_args(key, state, extra);
        wormctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The log's private key, as the library reads it.
    fn log_key(&self) -> wormlog::CheckpointKey {
        let text = std::fs::read_to_string(self.path("logk.key")).unwrap();
        wormlog::CheckpointKey::from_private_string(&text).unwrap()
    }

    /// Witness `w`'s key (w1, w2) at `url`, as the library takes it.
    fn witness_at(&self, url: &str, w: &str) -> wormlog::Witness {
        let text = std::fs::read_to_string(self.path(&format!("{w}.pub"))).unwrap();
        wormlog::Witness {
            url: url.to_string(),
            key: wormlog::WitnessPublicKey::from_vkey_string(&text).unwrap(),
        }
    }

    /// `wormctl checkpoint LOG --key --out OUT --witness URL=W.pub …`, each
    /// witness a (URL, key name) pair.
    fn checkpoint(&self, log: &Path, out: &str, witnesses: &[(&str, &str)]) -> Output {
        let mut args = vec![
            "checkpoint".to_string(),
            p(log).into(),
            "--key".into(),
            p(&self.path("logk.key")).into(),
            "--out".into(),
            p(&self.path(out)).into(),
        ];
        for (url, w) in witnesses {
            args.push("--witness".into());
            args.push(format!("{url}={}", p(&self.path(&format!("{w}.pub")))));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wormctl(&args)
    }

    fn policy(&self, quorum: &str) -> PathBuf {
        let read = |n: &str| std::fs::read_to_string(self.path(n)).unwrap();
        let text = format!(
            "# the auditor's policy\nlog {}\nwitness A {}\nwitness B {}\n{quorum}\n",
            read("logk.pub").trim(),
            read("w1.pub").trim(),
            read("w2.pub").trim()
        );
        let path = self.path(&format!("policy-{}", quorum.len()));
        std::fs::write(&path, text).unwrap();
        path
    }
}

#[test]
fn a_checkpoint_cosigned_by_a_quorum_verifies_under_the_policy_and_one_short_names_who_is_missing()
{
    let s = Setup::new();
    let (w1, w2) = (s.witness("w1"), s.witness("w2"));
    expect_code(
        &s.checkpoint(
            &s.log,
            "both",
            &[(w1.url.as_str(), "w1"), (w2.url.as_str(), "w2")],
        ),
        0,
    );
    expect_code(&s.checkpoint(&s.log, "one", &[(w1.url.as_str(), "w1")]), 0);
    let all = s.policy("group AB all A B\nquorum AB");
    let any = s.policy("group AB any A B\nquorum AB ");
    let verify = |cp: &str, policy: &Path| {
        wormctl(&[
            "verify",
            p(&s.log),
            "--checkpoint",
            p(&s.path(cp)),
            "--policy",
            p(policy),
        ])
    };
    expect_code(&verify("both", &all), 0);
    expect_code(&verify("one", &any), 0);
    let short = verify("one", &all);
    expect_code(&short, 1);
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(
        err.contains("NOT PROVEN") && err.contains("from B"),
        "{err}"
    );
    // A cosignature line changed in the note: the witness's line no longer
    // verifies, which is a changed note, not a missing one.
    let note = std::fs::read_to_string(s.path("both")).unwrap();
    let at = note.find("\u{2014} w2.example ").unwrap() + "\u{2014} w2.example ".len() + 20;
    let mut b = note.into_bytes();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(s.path("forged"), b).unwrap();
    let o = verify("forged", &all);
    expect_code(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("TAMPERED"));
}

#[test]
fn a_forked_log_gets_a_cosignature_for_one_branch_and_a_conflict_for_the_other() {
    let s = Setup::new();
    let w1 = s.witness("w1");
    expect_code(&s.checkpoint(&s.log, "cp1", &[(w1.url.as_str(), "w1")]), 0);
    // The host forks the log: two directories from one copy, each appended.
    let fork = s.path("fork");
    copy_dir(&s.log, &fork);
    expect_code(&wormctl_in("branch a\n", &["append", p(&s.log)]), 0);
    expect_code(&wormctl_in("branch b\nmore\n", &["append", p(&fork)]), 0);
    expect_code(&s.checkpoint(&s.log, "cp-a", &[(w1.url.as_str(), "w1")]), 0);
    let o = s.checkpoint(&fork, "cp-b", &[(w1.url.as_str(), "w1")]);
    expect_code(&o, 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&w1.url) && err.contains("forked"), "{err}");
    assert!(
        !s.path("cp-b").exists(),
        "no note is written for the refused branch"
    );
}

#[test]
fn a_rolled_back_log_is_refused_by_the_witness_and_reported_by_the_client() {
    let s = Setup::new();
    let w1 = s.witness("w1");
    let old = s.path("old-copy");
    copy_dir(&s.log, &old);
    expect_code(&wormctl_in("later\n", &["append", p(&s.log)]), 0);
    expect_code(&s.checkpoint(&s.log, "cp1", &[(w1.url.as_str(), "w1")]), 0);
    // The older copy restored: its checkpoint is smaller than one the
    // witness cosigned.
    let o = s.checkpoint(&old, "cp-old", &[(w1.url.as_str(), "w1")]);
    expect_code(&o, 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rolled back"), "{err}");
}

#[test]
fn the_witness_keeps_its_state_across_a_restart_and_still_refuses_a_rollback() {
    let s = Setup::new();
    let old = s.path("old-copy");
    copy_dir(&s.log, &old);
    expect_code(&wormctl_in("later\n", &["append", p(&s.log)]), 0);
    {
        let w1 = s.witness("w1");
        expect_code(&s.checkpoint(&s.log, "cp1", &[(w1.url.as_str(), "w1")]), 0);
    } // killed
    let w1 = s.witness("w1");
    expect_code(&s.checkpoint(&old, "cp-old", &[(w1.url.as_str(), "w1")]), 1);
    // Its state is a wormlog log that verifies, holding what it cosigned
    // (a stale size is not evidence against the log: not recorded).
    expect_code(&wormctl(&["verify", p(&s.path("w1-state"))]), 0);
    let dump = wormctl(&["dump", p(&s.path("w1-state"))]);
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("cosigned"), "{text}");
}

/// One raw request to the witness; the status and body.
fn post(url: &str, path: &str, body: &[u8]) -> (u16, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut c = TcpStream::connect(host).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    let _ = c.write_all(body);
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, body)
}

#[test]
fn the_witness_answers_with_the_protocols_status_codes() {
    let s = Setup::new();
    let w1 = s.witness("w1");
    let note = {
        expect_code(&s.checkpoint(&s.log, "plain", &[]), 0);
        std::fs::read_to_string(s.path("plain")).unwrap()
    };
    let req = |old: &str, note: &str| format!("old {old}\n\n{note}").into_bytes();
    // Unknown origin: 404.
    let other = note.replacen(&s.origin, "wormlog/00000000000000000000000000000000/v2", 1);
    assert_eq!(post(&w1.url, "/add-checkpoint", &req("0", &other)).0, 404);
    // Signed by another key: 403.
    expect_code(
        &wormctl(&[
            "keygen",
            "--name",
            "log.example",
            "--out",
            p(&s.path("other")),
        ]),
        0,
    );
    let forged = {
        let o = wormctl(&["checkpoint", p(&s.log), "--key", p(&s.path("other.key"))]);
        format!("{}\n", String::from_utf8(o.stdout).unwrap().trim_end())
    };
    assert_eq!(post(&w1.url, "/add-checkpoint", &req("0", &forged)).0, 403);
    // Malformed, and old larger than the checkpoint: 400.
    assert_eq!(post(&w1.url, "/add-checkpoint", b"nonsense").0, 400);
    assert_eq!(post(&w1.url, "/add-checkpoint", &req("99", &note)).0, 400);
    // Too large a body: 413, read no further.
    assert_eq!(
        post(&w1.url, "/add-checkpoint", &vec![b'x'; 1 << 20]).0,
        413
    );
    // First cosignature, then a stale old size: 409 with the size it holds.
    let (status, line) = post(&w1.url, "/add-checkpoint", &req("0", &note));
    assert_eq!(status, 200, "{line}");
    assert!(line.starts_with("\u{2014} w1.example "));
    let size = note.lines().nth(1).unwrap();
    let (status, body) = post(&w1.url, "/add-checkpoint", &req("0", &note));
    assert_eq!((status, body.trim()), (409, size));
    // The same size with another root: 422.
    let root = note.lines().nth(2).unwrap();
    let changed = note.replacen(root, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1);
    let (status, _) = post(&w1.url, "/add-checkpoint", &req(size, &changed));
    assert_eq!(status, 403, "a changed note fails its signature first");
}

#[test]
fn append_with_a_proof_key_hands_out_tlog_proofs_that_check_proof_accepts_offline() {
    let s = Setup::new();
    let (w1, w2) = (s.witness("w1"), s.witness("w2"));
    let key = s.path("logk.key");
    let o = wormctl_in(
        "alice logged in\nbob read record 7\n",
        &[
            "append",
            p(&s.log),
            "--proof-key",
            p(&key),
            "--witness",
            &format!("{}={}", w1.url, p(&s.path("w1.pub"))),
            "--witness",
            &format!("{}={}", w2.url, p(&s.path("w2.pub"))),
        ],
    );
    expect_code(&o, 0);
    let receipts: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(receipts.len(), 2);
    let proof = s.path("bob.tlog-proof");
    std::fs::write(&proof, receipts[1]["proof"].as_str().unwrap()).unwrap();
    std::fs::write(s.path("payload"), "bob read record 7").unwrap();
    std::fs::write(s.path("wrong"), "bob read record 8").unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec!["check-proof", p(&proof)];
        args.extend_from_slice(extra);
        wormctl(&args)
    };
    let pubkey = s.path("logk.pub");
    let o = check(&["--pubkey", p(&pubkey), "--payload", p(&s.path("payload"))]);
    expect_code(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("proof holds"));
    expect_code(
        &check(&["--pubkey", p(&pubkey), "--payload", p(&s.path("wrong"))]),
        1,
    );
    let all = s.policy("group AB all A B\nquorum AB");
    let o = check(&["--policy", p(&all)]);
    expect_code(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("cosigned by A"));
    // The wrong key is the operator's (2); a changed path is not proven (1).
    expect_code(&check(&["--pubkey", p(&s.path("w1.pub"))]), 2);
    let text = std::fs::read_to_string(&proof).unwrap();
    let line = text.lines().nth(3).unwrap();
    let mut changed = line.as_bytes().to_vec();
    changed[5] = if changed[5] == b'A' { b'B' } else { b'A' };
    std::fs::write(
        &proof,
        text.replacen(line, std::str::from_utf8(&changed).unwrap(), 1),
    )
    .unwrap();
    let o = check(&["--pubkey", p(&pubkey)]);
    expect_code(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOT PROVEN"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        // Not the control socket or the writer's lock.
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(name)).unwrap();
        }
    }
}

/// Automatic checkpoints with `Options::checkpoint_witnesses`: cosigned
/// notes reach the sink; a witness that is down never blocks an append and
/// is reported; a witness that saw a longer history is a conflict.
#[test]
fn automatic_checkpoints_are_cosigned_and_a_down_or_conflicting_witness_never_blocks_appends() {
    use std::time::{Duration, Instant};
    use wormlog::{FileSink, Log, Options};
    let s = Setup::new();
    let w1 = s.witness("w1");
    // A writer of `dir` whose automatic checkpoints go to `sink`, cosigned
    // by w1 at `url`.
    let witnessed = |url: &str, sink: PathBuf| {
        Options::default()
            .auto_checkpoints(
                s.log_key(),
                Duration::from_millis(50),
                std::sync::Arc::new(FileSink { path: sink }),
            )
            .checkpoint_witnesses(vec![s.witness_at(url, "w1")])
    };
    let sink = s.path("notes");
    let open = |url: &str| Log::open(&s.log, witnessed(url, sink.clone())).unwrap();
    let log = open(&w1.url);
    log.append(b"witnessed").unwrap();
    log.close().unwrap();
    let notes = std::fs::read_to_string(&sink).unwrap();
    assert!(notes.contains("\u{2014} w1.example "), "{notes}");
    // A witness that is down: appends go on at once, the error is kept.
    let down = "http://127.0.0.1:9"; // discard port: nothing listens
    let log = open(down);
    let started = Instant::now();
    for i in 0..20 {
        log.append(format!("while down {i}").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "appends waited for the witness"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.checkpoint_error().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = log
        .checkpoint_error()
        .expect("the unreachable witness is reported");
    assert!(err.contains("did not cosign"), "{err}");
    log.close().unwrap();
    // An older copy of the log, witnessed by w1 which saw the longer one.
    let old = s.path("old");
    copy_dir(&s.log, &old);
    expect_code(&wormctl_in("more\n", &["append", p(&s.log)]), 0);
    expect_code(
        &s.checkpoint(&s.log, "longer", &[(w1.url.as_str(), "w1")]),
        0,
    );
    let opts = witnessed(&w1.url, s.path("old-notes"));
    let log = Log::open(&old, opts).unwrap();
    log.append(b"on the old copy").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.checkpoint_error().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = log.checkpoint_error().expect("the conflict is reported");
    assert!(
        err.contains("refuses the checkpoint") && err.contains("rolled back"),
        "{err}"
    );
    log.close().unwrap();
    // And it is in the chain, which still verifies.
    let ro = Log::open_read_only(&old, Options::default()).unwrap();
    assert!(ro
        .read(..)
        .unwrap()
        .any(|r| r.unwrap().kind() == wormlog::RecordKind::WitnessConflict));
    drop(ro);
    expect_code(&wormctl(&["verify", p(&old)]), 0);
    let notes = std::fs::read_to_string(s.path("old-notes")).unwrap();
    assert!(
        !notes.contains("w1.example"),
        "the old copy was cosigned: {notes}"
    );
}

/// README's auditor's walk, run as written (wormctl on PATH, the ports it
/// names replaced by free ones): a proof cosigned by two witnesses is
/// checked offline with the policy and the payload.
#[test]
fn the_readme_auditors_walk_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("An auditor's walk")
        .expect("the walk is in README");
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").unwrap() + 6..];
    let script = &block[..block.find("```").unwrap()];
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string()
    };
    let script = script.replace("7701", &free()).replace("7702", &free());
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_wormctl"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The witnesses go when the walk ends; give them a moment to listen.
    let script = format!(
        "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{}",
        script.replace("&\ncat > policy", "&\nsleep 1\ncat > policy")
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("proof holds"), "{out}");
    assert!(
        out.contains("cosigned by W1") && out.contains("W2"),
        "{out}"
    );
    assert!(out.contains("payload     bound"), "{out}");
}

/// GET the witness's served checkpoint for `origin`.
fn served(url: &str, origin: &str) -> (u16, String) {
    use sha2::Digest;
    let hash = wormlog::format::hex(sha2::Sha256::digest(origin.as_bytes()));
    let host = url.strip_prefix("http://").unwrap();
    let mut c = TcpStream::connect(host).unwrap();
    write!(c, "GET /{hash}/checkpoint HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        out.split_once("\r\n\r\n").map_or("", |b| b.1).to_string(),
    )
}

/// Red team: a line forged under the witness's own name, and lines of
/// unknown keys, were stored and served with the cosigned note (a faithful
/// log then failed verify as TAMPERED, or the note had 17 lines). The
/// witness keeps the log's line and its own; a checkpoint sent again
/// records nothing; another of the same size is refused and kept as
/// evidence; a wrong proof is refused and not kept.
#[test]
fn the_witness_keeps_only_the_logs_line_and_its_own_and_records_only_evidence() {
    let s = Setup::new();
    let w1 = s.witness("w1");
    expect_code(&s.checkpoint(&s.log, "plain", &[]), 0);
    let note = std::fs::read_to_string(s.path("plain")).unwrap();
    let mut padded = note.clone();
    padded.push_str(&format!("\u{2014} w1.example {}\n", base64_of(&[0u8; 76])));
    for i in 0..14 {
        padded.push_str(&format!(
            "\u{2014} junk{i}.example {}\n",
            base64_of(&[i; 68])
        ));
    }
    let (status, line) = post(
        &w1.url,
        "/add-checkpoint",
        format!("old 0\n\n{padded}").as_bytes(),
    );
    // Cosigned; the forged line and the junk are dropped, not kept.
    assert_eq!(status, 200, "{line}");
    let (status, kept) = served(&w1.url, &s.origin);
    assert_eq!(status, 200);
    let lines: Vec<&str> = kept.lines().filter(|l| l.starts_with('\u{2014}')).collect();
    assert_eq!(lines.len(), 2, "{kept}");
    std::fs::write(s.path("served"), &kept).unwrap();
    let any = s.policy("quorum A");
    expect_code(
        &wormctl(&[
            "verify",
            p(&s.log),
            "--checkpoint",
            p(&s.path("served")),
            "--policy",
            p(&any),
        ]),
        0,
    );
    let records = |s: &Setup| {
        String::from_utf8(wormctl(&["dump", p(&s.path("w1-state"))]).stdout)
            .unwrap()
            .lines()
            .filter(|l| l.contains("cosigned") || l.contains("refused"))
            .count()
    };
    let before = records(&s);
    let size = note.lines().nth(1).unwrap().to_string();
    // The same checkpoint again: cosigned, nothing recorded.
    let (status, _) = post(
        &w1.url,
        "/add-checkpoint",
        format!("old {size}\n\n{note}").as_bytes(),
    );
    assert_eq!(status, 200);
    // A junk proof: refused, not evidence.
    let junk = format!("old {size}\n{}\n\n{note}", base64_of(&[7; 32]));
    assert_eq!(post(&w1.url, "/add-checkpoint", junk.as_bytes()).0, 422);
    assert_eq!(
        records(&s),
        before,
        "nothing recorded for a repeat or a wrong proof"
    );
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Red team: a record added to the witness's state by hand was replayed
/// as the truth. Every cosigned record's note must verify; one that does
/// not stops the witness from starting (exit 1).
#[test]
fn a_state_record_added_by_hand_stops_the_witness_from_starting() {
    let s = Setup::new();
    {
        let w1 = s.witness("w1");
        expect_code(&s.checkpoint(&s.log, "cp", &[(w1.url.as_str(), "w1")]), 0);
    }
    let bogus = format!(
        "{{\"cosigned\":{{\"origin\":\"{}\",\"size\":0,\"root\":\"{}\",\"note\":\"bogus\"}}}}\n",
        s.origin,
        base64_of(&[0; 32])
    );
    expect_code(&wormctl_in(&bogus, &["append", p(&s.path("w1-state"))]), 0);
    let o = s.serve_refused("w1.key", &s.path("w1-state"), &[]);
    expect_code(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("witness state"));
}

/// Red team: a client that sends a byte every few seconds held a
/// connection (and, 32 of them, every slot) for ever. A request has 10 s
/// in all.
#[test]
fn a_trickling_client_is_cut_off_at_the_request_deadline() {
    let s = Setup::new();
    let w1 = s.witness("w1");
    let host = w1.url.strip_prefix("http://").unwrap().to_string();
    let mut c = TcpStream::connect(&host).unwrap();
    let started = std::time::Instant::now();
    let mut cut = false;
    for _ in 0..20 {
        if c.write_all(b"G").is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    if !cut {
        // The server answers or closes; either way the read ends.
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = Vec::new();
        cut = c.read_to_end(&mut buf).is_ok();
    }
    assert!(cut, "the connection stayed open");
    assert!(started.elapsed() < std::time::Duration::from_secs(19));
}

/// A fake witness on loopback answering every request with `answer`
/// (one connection at a time, `trickle`: a byte every 200 ms).
fn fake_witness(answer: &'static str, trickle: bool) -> String {
    fake_witness_with(move |_| answer.to_string(), trickle)
}

/// A fake witness whose answer depends on the request's first line.
fn fake_witness_with(answer: impl Fn(&str) -> String + Send + 'static, trickle: bool) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 65536];
            let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(300)));
            let n = c.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let answer = answer(text.lines().next().unwrap_or(""));
            if trickle {
                for b in answer.bytes() {
                    if c.write_all(&[b]).is_err() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            } else {
                let _ = c.write_all(answer.as_bytes());
            }
        }
    });
    url
}

/// Red team: an unauthenticated `409` naming a larger size made a faithful
/// log report TAMPERED (exit 1), and a witness trickling its answer held
/// the client for ever. Now: the larger size must come with a checkpoint
/// signed by the log (else exit 2, unreachable), and an answer has 5 s.
#[test]
fn a_witness_that_claims_more_or_answers_slowly_is_not_a_conflict() {
    let s = Setup::new();
    let liar = fake_witness(
        "HTTP/1.1 409 Conflict\r\nContent-Type: text/x.tlog.size\r\nContent-Length: 4\r\n\r\n108\n",
        false,
    );
    let o = s.checkpoint(&s.log, "x", &[(liar.as_str(), "w1")]);
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no checkpoint") && !err.contains("TAMPERED"),
        "{err}"
    );
    let slow = fake_witness(
        "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n\u{2014} w1.example AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        true,
    );
    let started = std::time::Instant::now();
    let o = s.checkpoint(&s.log, "y", &[(slow.as_str(), "w1")]);
    expect_code(&o, 2);
    // The answer trickles for 30 s; the client gives up at 5.
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
}

/// Red team (C2): a witness that cosigned a newer checkpoint of the same
/// log (another round got there first) made an older one's round report
/// the log rolled back. It is `WitnessAhead` now, not a conflict; and a
/// service appending with --witness never loses a receipt to a witness
/// that is down.
#[test]
fn a_witness_ahead_on_the_same_log_is_not_a_conflict_and_a_down_witness_costs_no_receipt() {
    use wormlog::{Checkpoint, CheckpointPublicKey, Log, Options};
    let s = Setup::new();
    let w1 = s.witness("w1");
    let key = s.log_key();
    let public = CheckpointPublicKey::from_vkey_string(
        &std::fs::read_to_string(s.path("logk.pub")).unwrap(),
    )
    .unwrap();
    let witness = s.witness_at(&w1.url, "w1");
    let log = Log::open(&s.log, Options::default()).unwrap();
    let older: Checkpoint = log.checkpoint().unwrap();
    let older_note = older.sign(&key);
    log.append(b"more").unwrap();
    let newer = log.checkpoint().unwrap();
    log.cosign_checkpoint(
        &public,
        &newer,
        &newer.sign(&key),
        std::slice::from_ref(&witness),
    )
    .unwrap();
    let err = log
        .cosign_checkpoint(&public, &older, &older_note, std::slice::from_ref(&witness))
        .unwrap_err();
    assert!(matches!(err, wormlog::Error::WitnessAhead { .. }), "{err}");
    log.close().unwrap();
    // A witness that is down: every line still gets its receipt.
    let o = wormctl_in(
        "a\nb\nc\n",
        &[
            "append",
            p(&s.log),
            "--proof-key",
            p(&s.path("logk.key")),
            "--witness",
            &format!("http://127.0.0.1:9={}", p(&s.path("w1.pub"))),
        ],
    );
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines()
            .all(|l| l.contains("\"proof\"") && l.contains("witness_error")),
        "{out}"
    );
}

/// Fresh red team: a 409 whose served checkpoint is of another log (signed
/// by the same key) was taken as proof that this one was forked (exit 1).
/// A checkpoint of another origin is no evidence: exit 2.
#[test]
fn a_witness_that_shows_another_logs_checkpoint_is_not_a_conflict() {
    let s = Setup::new();
    let other = s.path("other-log");
    expect_code(&wormctl_in("x\ny\nz\nw\n", &["append", p(&other)]), 0);
    let o = wormctl(&["checkpoint", p(&other), "--key", p(&s.path("logk.key"))]);
    expect_code(&o, 0);
    let note = format!("{}\n", String::from_utf8(o.stdout).unwrap().trim_end());
    let size = note.lines().nth(1).unwrap().to_string();
    let liar = fake_witness_with(
        move |line| {
            if line.starts_with("GET") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{note}",
                    note.len()
                )
            } else {
                let body = format!("{}\n", size.parse::<u64>().unwrap() + 50);
                format!(
                    "HTTP/1.1 409 Conflict\r\nContent-Type: text/x.tlog.size\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        },
        false,
    );
    let o = s.checkpoint(&s.log, "x", &[(liar.as_str(), "w1")]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("another origin"));
}

/// Fresh red team: `wormctl checkpoint` (a reader) raced a service that
/// witnessed a newer head, and called the faithful log forked. A reader
/// refreshes before it judges: the witness is ahead, not in conflict.
#[test]
fn a_reader_behind_a_witnessed_writer_is_told_the_witness_is_ahead() {
    use wormlog::{Log, Options};
    let s = Setup::new();
    let w1 = s.witness("w1");
    let key = s.log_key();
    let witness = s.witness_at(&w1.url, "w1");
    let reader = Log::open_read_only(&s.log, Options::default()).unwrap();
    let behind = reader.checkpoint().unwrap();
    let behind_note = behind.sign(&key);
    let writer = Log::open(&s.log, Options::default()).unwrap();
    writer.append(b"newer").unwrap();
    let newer = writer.checkpoint().unwrap();
    writer
        .cosign_checkpoint(
            &key.public(),
            &newer,
            &newer.sign(&key),
            std::slice::from_ref(&witness),
        )
        .unwrap();
    let err = reader
        .cosign_checkpoint(
            &key.public(),
            &behind,
            &behind_note,
            std::slice::from_ref(&witness),
        )
        .unwrap_err();
    assert!(matches!(err, wormlog::Error::WitnessAhead { .. }), "{err}");
}

/// Fresh red team: a witness restarted with a new key (a rotation)
/// called its own faithful state tampered. With the old public key given
/// (--previous-key) it starts and keeps refusing rollbacks; without it,
/// it says which flag is missing. A rotated log key needs nothing: the
/// witness's own cosignature vouches for what it kept.
#[test]
fn a_rotated_witness_key_keeps_its_state_with_previous_key() {
    let s = Setup::new();
    let old = s.path("old-copy");
    copy_dir(&s.log, &old);
    expect_code(&wormctl_in("later\n", &["append", p(&s.log)]), 0);
    {
        let w1 = s.witness("w1");
        expect_code(&s.checkpoint(&s.log, "cp1", &[(w1.url.as_str(), "w1")]), 0);
    }
    let st = s.path("w1-state");
    // The new key alone: refused, naming the flag.
    let o = s.serve_refused("w2.key", &st, &[]);
    expect_code(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--previous-key"));
    // With the old key's public half: it starts, and still refuses the
    // rollback to the older copy.
    let args = s.serve_args("w2.key", &st, &["--previous-key", p(&s.path("w1.pub"))]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wormctl"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let served = Served { child, url };
    expect_code(
        &s.checkpoint(&old, "cp-old", &[(served.url.as_str(), "w2")]),
        1,
    );
}

/// Third red team: a bare `422` from whoever answers at the witness's URL
/// made a faithful log report TAMPERED and wrote a witness-conflict record
/// into its chain for good. A 422 is a conflict only with the witness's
/// checkpoint, signed by the log, that the log does not extend; a genuine
/// fork still is (a_forked_log_gets_a_cosignature_for_one_branch_and_a_conflict_for_the_other).
#[test]
fn a_bare_422_does_not_frame_a_faithful_log() {
    let s = Setup::new();
    let liar = fake_witness(
        "HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 13\r\n\r\ninconsistent\n",
        false,
    );
    let witness = format!("{liar}={}", p(&s.path("w1.pub")));
    let o = wormctl_in(
        "hello\n",
        &[
            "append",
            p(&s.log),
            "--proof-key",
            p(&s.path("logk.key")),
            "--witness",
            &witness,
        ],
    );
    expect_code(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("witness_error"));
    let o = wormctl(&[
        "checkpoint",
        p(&s.log),
        "--key",
        p(&s.path("logk.key")),
        "--out",
        p(&s.path("x")),
        "--witness",
        &witness,
    ]);
    expect_code(&o, 2);
    let log = wormlog::Log::open_read_only(&s.log, wormlog::Options::default()).unwrap();
    assert!(!log
        .read(..)
        .unwrap()
        .any(|r| r.unwrap().kind() == wormlog::RecordKind::WitnessConflict));
}

/// Fourth red team: the witness's own state, sealed and then trimmed by
/// retention, lost the record of the last size it cosigned, and the
/// witness then cosigned a rollback. The state is held from its creation
/// (retention drops nothing), and a state whose records were dropped
/// anyway is refused at start, exit 2.
#[test]
fn the_witness_state_is_never_trimmed_by_retention() {
    let s = Setup::new();
    {
        let w1 = s.witness("w1");
        expect_code(&s.checkpoint(&s.log, "cp", &[(w1.url.as_str(), "w1")]), 0);
    }
    let st = s.path("w1-state");
    expect_code(&wormctl(&["seal", p(&st)]), 0);
    let o = wormctl(&["retention", p(&st), "--max-total-bytes", "1", "--yes"]);
    let kept = wormlog::Log::open_read_only(&st, wormlog::Options::default())
        .unwrap()
        .anchor_entries()
        .unwrap()
        .is_empty();
    assert!(kept, "retention dropped the held state: {o:?}");
    // The hold cleared by hand, the records dropped: refused at start.
    expect_code(&wormctl(&["hold", "clear", p(&st)]), 0);
    expect_code(
        &wormctl(&["retention", p(&st), "--max-total-bytes", "1", "--yes"]),
        0,
    );
    let o = s.serve_refused("w1.key", &st, &[]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("retention dropped records"));
}
