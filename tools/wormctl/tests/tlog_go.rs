//! wormlog's Merkle tree judged by someone else's code: Go's
//! golang.org/x/mod/sumdb/tlog and sumdb/note (tools/tlogcheck/main.go)
//! open wormctl's checkpoints, check its inclusion and consistency proofs,
//! and read its exported tiles and entry bundles, across a retention run
//! between the two checkpoints; it checks the C2SP tlog-proofs that proved
//! appends hand out, and witnesses' cosignature/v1 lines (with Go's
//! crypto/ed25519). The Go toolchain and the x/mod sources come from Debian
//! (golang-go, golang-golang-x-mod-dev), installed by .ci/run; without them
//! these tests fail, saying so.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
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

fn program() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tlogcheck/main.go")
}

/// `go ARGS` in GOPATH mode against Debian's x/mod, its build cache in
/// `dir`; a missing `go` fails the test, saying what to install.
fn go(dir: &Path, args: &[&str]) -> Output {
    let run = Command::new("go")
        .args(args)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", dir.join("go-cache"))
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

fn tlogcheck(dir: &Path) -> Output {
    go(dir, &["run", p(&program()), p(dir)])
}

#[track_caller]
fn need_x_mod() {
    assert!(
        Path::new(GOPATH)
            .join("src/golang.org/x/mod/sumdb/tlog")
            .is_dir(),
        "golang.org/x/mod is not under {GOPATH}: install Debian's golang-golang-x-mod-dev \
         (.ci/run does)"
    );
}

/// tools/tlogcheck built once into `dir`, for the tests that run it often.
fn build_tlogcheck(dir: &Path) -> PathBuf {
    need_x_mod();
    let bin = dir.join("tlogcheck");
    ok(go(dir, &["build", "-o", p(&bin), p(&program())]));
    bin
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .output()
        .expect("tlogcheck runs")
}

/// The Go checker refused (exit 1), saying `why`; its stderr.
#[track_caller]
fn refused(o: Output, why: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a refusal ({why})\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(stderr.contains(why), "expected {why:?} in:\n{stderr}");
    stderr
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
    need_x_mod();
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

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `text` (a tlog-proof) with line `line` of its head (before the empty
/// line) rewritten by `change`.
fn change_head_line(text: &str, line: usize, change: impl FnOnce(&str) -> String) -> String {
    let split = text.find("\n\n").unwrap();
    let mut head: Vec<String> = text[..split].split('\n').map(String::from).collect();
    head[line] = change(&head[line]);
    format!("{}{}", head.join("\n"), &text[split..])
}

/// A base64 value with bit 0 of byte `at` flipped.
fn flip_b64(b64: &str, at: usize) -> String {
    let mut raw = B64.decode(b64).unwrap();
    raw[at] ^= 1;
    B64.encode(raw)
}

#[test]
fn go_checks_every_tlog_proof_the_engine_hands_out() -> TestResult {
    let work = tempfile::tempdir()?;
    let tlogcheck = build_tlogcheck(work.path());
    let key = wormlog::CheckpointKey::generate("audit.example/log")?;
    let public = key.public();
    let public_vkey = public.to_vkey_string();
    let log = wormlog::Log::open(
        work.path().join("log"),
        wormlog::Options::default().proofs(key),
    )?;
    // A single record in a new log's first tree, a batch across a tile
    // boundary (one note for all), singles, a small batch: proofs against
    // notes of several sizes.
    let mut proved = vec![log.append_proved(b"the first record")?];
    let payloads: Vec<Vec<u8>> = (0..300).map(event).collect();
    proved.extend(log.append_batch_proved(&payloads)?);
    proved.push(log.append_proved(b"a single record")?);
    proved.extend(log.append_batch_proved(&payloads[..5])?);
    proved.push(log.append_proved(b"the last record")?);
    log.close()?;
    assert_eq!(proved.len(), 308);

    let proofs = work.path().join("proofs");
    std::fs::create_dir_all(&proofs)?;
    let mut files = Vec::new();
    let mut sizes = std::collections::BTreeSet::new();
    for pr in &proved {
        let leaf = pr.proof.verify(&public)?;
        assert_eq!(leaf.seq, pr.receipt.seq);
        sizes.insert(leaf.checkpoint.seq);
        let f = proofs.join(format!("{:06}.tlog-proof", pr.receipt.seq));
        std::fs::write(&f, pr.proof.to_text())?;
        files.push(f);
    }
    let mut args = vec!["tlog-proof", public_vkey.as_str()];
    args.extend(files.iter().map(|f| p(f)));
    let out = ok(run(&tlogcheck, &args));
    let (small, large) = (sizes.first().unwrap(), sizes.last().unwrap());
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert!(
        out.contains(&format!("ok: {} tlog-proofs", files.len()))
            && out.contains(&format!("trees of {small} to {large} records")),
        "{out}"
    );

    // Changed proofs: each alone must make Go exit 1 (and wormlog refuse
    // it too). Head lines: header, extra, index, then the path.
    let bad = work.path().join("bad.tlog-proof");
    for pr in [
        &proved[1],
        &proved[150],
        &proved[300],
        proved.last().unwrap(),
    ] {
        let text = pr.proof.to_text();
        let size = pr.proof.verify(&public)?.checkpoint.seq;
        assert!(!pr.proof.hashes.is_empty());
        let index = pr.proof.index;
        let refuse = |changed: String, why: &str| -> Result<String, Box<dyn std::error::Error>> {
            assert!(wormlog::TlogProof::parse(&changed)?
                .verify(&public)
                .is_err());
            std::fs::write(&bad, &changed)?;
            Ok(refused(
                run(&tlogcheck, &["tlog-proof", &public_vkey, p(&bad)]),
                why,
            ))
        };
        // One path hash changed, the first and the last.
        let hashes = pr.proof.hashes.len();
        refuse(
            change_head_line(&text, 3, |h| flip_b64(h, 0)),
            "tlog.CheckRecord",
        )?;
        refuse(
            change_head_line(&text, 2 + hashes, |h| flip_b64(h, 31)),
            "tlog.CheckRecord",
        )?;
        // The index changed: another leaf's position, and past the tree.
        let other = if index ^ 1 < size {
            index ^ 1
        } else {
            index - 1
        };
        let stderr = refuse(
            change_head_line(&text, 2, |_| format!("index {other}")),
            "tlog.CheckRecord",
        )?;
        assert!(stderr.contains("the leaf data is record"), "{stderr}");
        refuse(
            change_head_line(&text, 2, |_| format!("index {size}")),
            "outside the checkpoint's tree",
        )?;
        // The leaf data changed (its time, seq kept): the path no longer
        // leads to the root.
        refuse(
            change_head_line(&text, 1, |e| format!("extra {}", flip_b64(&e[6..], 9))),
            "tlog.CheckRecord",
        )?;
        // A hash dropped from the path.
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines.remove(3);
        refuse(lines.join("\n"), "tlog.CheckRecord")?;
    }
    // A line of the log's key (its name and key id) that does not verify,
    // before the valid one: Go's note.Open refuses the note (C2SP
    // signed-note: a known key's failed signature SHOULD reject it). Only
    // this order: note.Open (x/mod 0.7) verifies the first line of a key
    // and drops later ones unverified.
    let text = proved[7].proof.to_text();
    let (prefix, sig) = text
        .trim_end()
        .rsplit_once('\n')
        .unwrap()
        .1
        .rsplit_once(' ')
        .unwrap();
    let forged_line = format!("{prefix} {}\n", flip_b64(sig, 40));
    let split = text.rfind("\n\n").unwrap() + 2;
    std::fs::write(
        &bad,
        format!("{}{forged_line}{}", &text[..split], &text[split..]),
    )?;
    refused(
        run(&tlogcheck, &["tlog-proof", &public_vkey, p(&bad)]),
        "note.Open of its checkpoint: invalid signature",
    );
    // Another log's key: the note does not open.
    let other = wormlog::CheckpointKey::generate("audit.example/log")?;
    refused(
        run(
            &tlogcheck,
            &["tlog-proof", &other.public().to_vkey_string(), p(&files[1])],
        ),
        "note.Open",
    );
    Ok(())
}

#[test]
fn go_checks_the_engines_witness_cosignatures_with_crypto_ed25519() -> TestResult {
    let work = tempfile::tempdir()?;
    let tlogcheck = build_tlogcheck(work.path());
    let key = wormlog::CheckpointKey::generate("audit.example/log")?;
    let public = key.public();
    let public_vkey = public.to_vkey_string();
    let log = wormlog::Log::open(
        work.path().join("log"),
        wormlog::Options::default().proofs(key),
    )?;
    let payloads: Vec<Vec<u8>> = (0..20).map(event).collect();
    let proved = log.append_batch_proved(&payloads)?;
    log.close()?;

    let w = wormlog::WitnessKey::generate("witness.example/w1")?;
    let w_vkey = w.public().to_vkey_string();
    let note = &proved[0].proof.note;
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let line = w.cosign(body, 1_700_000_000);
    let cosigned = format!("{note}{line}");
    assert_eq!(
        w.public().check_note(&cosigned)?,
        wormlog::Cosigned::At(1_700_000_000)
    );
    let file = work.path().join("cosigned.note");
    let check = |text: &str, witness: &str| {
        std::fs::write(&file, text).unwrap();
        run(
            &tlogcheck,
            &["cosignature", &public_vkey, witness, p(&file)],
        )
    };
    let out = ok(check(&cosigned, &w_vkey));
    assert!(
        out.contains("at time 1700000000") && out.contains("1 line(s) of other keys ignored"),
        "{out}"
    );
    // A vkey whose base64 holds '+' (the field separator) reads as well.
    let plus = (0..500)
        .map(|_| wormlog::WitnessKey::generate("witness.example/w1").unwrap())
        .find(|k| k.public().to_vkey_string().matches('+').count() > 2)
        .unwrap();
    let plus_line = plus.cosign(body, 1_700_000_000);
    ok(check(
        &format!("{note}{plus_line}"),
        &plus.public().to_vkey_string(),
    ));
    // A proof whose note carries the cosignature still checks: note.Open
    // ignores the witness's line.
    let proof = work.path().join("cosigned.tlog-proof");
    std::fs::write(&proof, format!("{}{line}", proved[3].proof.to_text()))?;
    let out = ok(run(&tlogcheck, &["tlog-proof", &public_vkey, p(&proof)]));
    assert!(out.contains("1 other signature lines ignored"), "{out}");

    // The body changed (the tree size): the cosignature does not verify,
    // nor does the log's signature.
    let size: u64 = body.lines().nth(1).unwrap().parse()?;
    let changed = cosigned.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
    assert_ne!(changed, cosigned);
    assert!(w.public().check_note(&changed).is_err());
    let stderr = refused(
        check(&changed, &w_vkey),
        "does not verify over the note's body",
    );
    assert!(stderr.contains("note.Open"), "{stderr}");
    // An extension line changed: the same.
    let changed = cosigned.replacen("\nwormlog-time ", "\nwormlog-time 1", 1);
    assert_ne!(changed, cosigned);
    refused(
        check(&changed, &w_vkey),
        "does not verify over the note's body",
    );

    // The timestamp's bytes changed (key id 0..4, time 4..12).
    let (prefix, blob) = line.trim_end().rsplit_once(' ').unwrap();
    let forged_line = format!("{prefix} {}\n", flip_b64(blob, 11));
    let forged = format!("{note}{forged_line}");
    assert!(w.public().check_note(&forged).is_err());
    let stderr = refused(
        check(&forged, &w_vkey),
        "at time 1700000001 does not verify",
    );
    assert!(!stderr.contains("note.Open"), "{stderr}");
    // ... beside the valid line: a line naming the key that does not
    // verify is a changed note, wherever it stands.
    refused(
        check(&format!("{note}{line}{forged_line}"), &w_vkey),
        "does not verify",
    );
    refused(
        check(&format!("{note}{forged_line}{line}"), &w_vkey),
        "does not verify",
    );

    // A different witness key: under the same name, and under another.
    for name in ["witness.example/w1", "witness.example/w2"] {
        let other = wormlog::WitnessKey::generate(name)?;
        assert_eq!(
            other.public().check_note(&cosigned)?,
            wormlog::Cosigned::Absent
        );
        refused(
            check(&cosigned, &other.public().to_vkey_string()),
            "no cosignature line of the witness",
        );
    }
    // Another witness's signature under this witness's name and key id.
    let other = wormlog::WitnessKey::generate("witness.example/w1")?;
    let their = other.cosign(body, 1_700_000_000);
    let mut raw = B64.decode(their.trim_end().rsplit_once(' ').unwrap().1)?;
    raw[..4].copy_from_slice(&B64.decode(blob)?[..4]);
    let posing = format!("{note}{prefix} {}\n", B64.encode(raw));
    assert!(w.public().check_note(&posing).is_err());
    refused(
        check(&posing, &w_vkey),
        "does not verify over the note's body",
    );
    // The log's key checked too: a note whose log line is another key's.
    let other_log = wormlog::CheckpointKey::generate("audit.example/log")?;
    std::fs::write(&file, &cosigned)?;
    refused(
        run(
            &tlogcheck,
            &[
                "cosignature",
                &other_log.public().to_vkey_string(),
                &w_vkey,
                p(&file),
            ],
        ),
        "note.Open",
    );
    Ok(())
}
