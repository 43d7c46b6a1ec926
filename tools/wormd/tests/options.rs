//! A log's engine options through wormd's config: automatic checkpoints
//! cosigned by a witness (`wormctl witness serve`, the real server, started
//! on a free loopback port and stopped by its pid), and inline sealing.

mod common;
use common::*;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// wormctl, built beside wormd (a default member of the workspace: `cargo
/// test` at the top builds it); missing, the test fails saying so.
fn wormctl() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_wormd")).with_file_name("wormctl");
    assert!(
        p.exists(),
        "{} is missing: cargo build -p wormctl",
        p.display()
    );
    p
}

/// `wormctl witness serve` for `origin` (the log's key in audit.pub) on a
/// free loopback port: the process and its URL.
fn witness(ctl: &Path, dir: &Path, origin: &str) -> (std::process::Child, String) {
    let mut witness = Command::new(ctl)
        .args(["witness", "serve", "--key"])
        .arg(dir.join("w1.key"))
        .args(["--addr", "127.0.0.1:0", "--state"])
        .arg(dir.join("w1-state"))
        .arg("--log")
        .arg(format!("{origin}={}", dir.join("audit.pub").display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(witness.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    (witness, url)
}

/// The last note in a file of appended notes.
fn last_note(text: &str) -> &str {
    let start = text.rfind("\nwormlog/").map_or(0, |i| i + 1);
    &text[start..]
}

#[test]
fn automatic_checkpoints_are_cosigned_by_the_configured_witness_and_hold_for_the_log() {
    let s = Setup::new();
    let dir = s.dir.path();
    let ctl = wormctl();
    let o = Command::new(&ctl)
        .args(["witness", "keygen", "--name", "w1.example", "--out"])
        .arg(dir.join("w1"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The log must exist for its origin; the first start creates it.
    drop(s.start());
    let log = wormlog::Log::open_read_only(dir.join("audit"), wormlog::Options::default()).unwrap();
    let origin = format!("wormlog/{}/v2", wormlog::format::hex(log.log_id()));
    drop(log);
    let (mut witness, url) = witness(&ctl, dir, &origin);
    s.edit(|t| {
        t.replace(
            "proofs = false\n",
            &format!("proofs = false\ncheckpoint_every_secs = 1\nsealing = \"inline\"\nsegment_bytes_max = 65536\nwitnesses = [{{ url = \"{url}\", key = \"w1.pub\" }}]\n"),
        )
    });
    let mut srv = s.start();
    // Five requests: a segment rolls between groups, never inside one.
    for b in 0..5 {
        let lines: String = (0..400)
            .map(|i| format!("{{\"b\":{b},\"i\":{i}}}\n"))
            .collect();
        let r = srv.curl(&[
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &lines,
            &srv.url("/v1/logs/audit/records"),
        ]);
        assert_eq!(r.status, 200);
    }
    let file = dir.join("audit.checkpoints");
    let deadline = Instant::now() + Duration::from_secs(30);
    let note = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let note = last_note(&text).to_string();
        if note.contains("— w1.example")
            && note
                .lines()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 2002)
        {
            break note;
        }
        assert!(
            Instant::now() < deadline,
            "no cosigned checkpoint of the appends in {}: {text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(srv.stop().success());
    let _ = witness.kill();
    let _ = witness.wait();
    // The note is the log's, cosigned, and the log holds it.
    let vkey = std::fs::read_to_string(dir.join("audit.pub")).unwrap();
    let key = wormlog::CheckpointPublicKey::from_vkey_string(vkey.trim()).unwrap();
    let cp = wormlog::Checkpoint::verify_note(&note, &key).unwrap();
    let log = wormlog::Log::open_read_only(dir.join("audit"), wormlog::Options::default()).unwrap();
    log.verify_against(&cp).unwrap();
    // Inline sealing with 64 KiB segments sealed what rolled.
    assert!(log.segments().unwrap().iter().filter(|s| s.sealed).count() >= 2);
}
