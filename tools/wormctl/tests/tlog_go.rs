//! wormlog's Merkle tree judged by someone else's code: Go's
//! golang.org/x/mod/sumdb/tlog and sumdb/note (tools/tlogcheck/main.go)
//! open wormctl's checkpoints, check its inclusion and consistency proofs,
//! and read its exported tiles and entry bundles, across a retention run
//! between the two checkpoints. The Go toolchain and the x/mod sources come
//! from Debian (golang-go, golang-golang-x-mod-dev), installed by .ci/run;
//! without them this test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wormlog::{Durability, Log, Options, Retention, Sealing};

fn wormctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wormctl"))
        .args(args)
        .output()
        .expect("wormctl runs")
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

const GOPATH: &str = "/usr/share/gocode";

fn tlogcheck(dir: &Path) -> Output {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tlogcheck/main.go");
    let go_cache = dir.join("go-cache");
    let run = Command::new("go")
        .args(["run", p(&program), p(dir)])
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", &go_cache)
        .env("GOFLAGS", "")
        .output();
    match run {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `go` ({e}): this test needs Debian's golang-go and \
             golang-golang-x-mod-dev (GOPATH {GOPATH}); .ci/run installs them"
        ),
    }
}

fn event(i: u64) -> Vec<u8> {
    format!(
        r#"{{"actor":"user{}","action":"{}","resource":"db/table{}","outcome":"success"}}"#,
        i % 17,
        ["read", "update", "login", "export"][(i % 4) as usize],
        i % 23
    )
    .into_bytes()
}

// Long by nature: one end-to-end scenario against Go's tlog (checkpoint,
// proofs, tiles, each checked by the Go program), whose steps share one
// log and one key; split, each part would rebuild them.
#[test]
fn go_tlog_checks_wormctls_checkpoints_proofs_and_tiles() {
    assert!(
        Path::new(GOPATH)
            .join("src/golang.org/x/mod/sumdb/tlog")
            .is_dir(),
        "golang.org/x/mod is not under {GOPATH}: install Debian's golang-golang-x-mod-dev \
         (.ci/run does)"
    );
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("log");
    let check = work.path().join("check");
    std::fs::create_dir_all(check.join("proofs")).unwrap();
    // In the past: a verifier judges drops no later than its own clock.
    let now = Arc::new(AtomicU64::new(1_700_000_000_000_000_000));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let options = || {
        Options::default()
            .durability(Durability::Buffered)
            .sealing(Sealing::Inline)
            .segment_bytes_max(32 << 10)
            .clock(clock.clone())
            .retention(Retention::default().max_age(Duration::from_secs(900)))
    };
    let log = Log::open(&dir, options()).unwrap();
    for i in 0..1500 {
        now.fetch_add(1_000_000_000, Ordering::SeqCst);
        log.append(&event(i)).unwrap();
    }
    log.close().unwrap();

    let key = work.path().join("auditor");
    ok(wormctl(&["keygen", "--name", "auditor", "--out", p(&key)]));
    let (private, public) = (key.with_extension("key"), key.with_extension("pub"));
    std::fs::copy(&public, check.join("vkey")).unwrap();
    let old = check.join("old.cp");
    ok(wormctl(&[
        "checkpoint",
        p(&dir),
        "--key",
        p(&private),
        "--out",
        p(&old),
    ]));

    // More records, then retention drops the oldest segments.
    let log = Log::open(&dir, options()).unwrap();
    for i in 1500..2600 {
        now.fetch_add(1_000_000_000, Ordering::SeqCst);
        log.append(&event(i)).unwrap();
    }
    log.seal().unwrap();
    let r = log.apply_retention(now.load(Ordering::SeqCst)).unwrap();
    assert!(r.first_seq > 300, "retention dropped the start: {r:?}");
    log.close().unwrap();

    let new = check.join("new.cp");
    ok(wormctl(&[
        "checkpoint",
        p(&dir),
        "--key",
        p(&private),
        "--out",
        p(&new),
    ]));
    let mut proved: Vec<u64> = vec![r.first_seq, r.first_seq + 1, 1700, 2047, 2048];
    let head: u64 = std::fs::read_to_string(&new)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    proved.push(head);
    for seq in &proved {
        let json = ok(wormctl(&[
            "prove",
            p(&dir),
            &seq.to_string(),
            "--checkpoint",
            p(&new),
            "--pubkey",
            p(&public),
            "--json",
        ]));
        let file = check.join(format!("proofs/{seq:06}.json"));
        std::fs::write(&file, json).unwrap();
        // wormctl itself checks the proof file with no log at hand.
        ok(wormctl(&[
            "check-proof",
            p(&file),
            "--checkpoint",
            p(&new),
            "--pubkey",
            p(&public),
        ]));
    }
    let consistency = ok(wormctl(&[
        "consistency",
        p(&dir),
        p(&old),
        p(&new),
        "--pubkey",
        p(&public),
        "--json",
    ]));
    std::fs::write(check.join("consistency.json"), &consistency).unwrap();
    ok(wormctl(&[
        "consistency",
        p(&check.join("consistency.json")),
        p(&old),
        p(&new),
        "--pubkey",
        p(&public),
    ]));
    let exported = ok(wormctl(&[
        "export-tlog",
        p(&dir),
        p(&check.join("export")),
        "--key",
        p(&private),
    ]));
    assert!(exported.contains("pruned"), "{exported}");

    let o = tlogcheck(&check);
    let out = ok(o);
    assert!(out.contains("tlogcheck: ok"), "{out}");

    // The checker can fail: a proof file with one hash changed is refused
    // by Go's CheckRecord (and by wormctl check-proof).
    let bad = work.path().join("bad");
    copy_tree(&check, &bad);
    let f = bad.join(format!("proofs/{:06}.json", proved[2]));
    let text = std::fs::read_to_string(&f).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let h = v["hashes"][0].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
    v["hashes"][0] = serde_json::Value::String(flipped);
    std::fs::write(&f, v.to_string()).unwrap();
    let o = tlogcheck(&bad);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("CheckRecord"));
    let o = wormctl(&[
        "check-proof",
        p(&f),
        "--checkpoint",
        p(&new),
        "--pubkey",
        p(&public),
    ]);
    assert_eq!(o.status.code(), Some(1));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst: PathBuf = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "go-cache" {
                copy_tree(&e.path(), &dst);
            }
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
