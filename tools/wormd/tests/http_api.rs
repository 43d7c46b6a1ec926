//! wormd's HTTP API with curl, the real client: appends answered with
//! receipts that read back, tokens and scopes, access records, filters,
//! follow, verify jobs, limits on hostile input, TLS, and the first five
//! minutes of README exactly as written.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

const JSON: &str = "Content-Type: application/json";
const NDJSON: &str = "Content-Type: application/x-ndjson";

#[test]
fn every_receipt_names_a_record_that_reads_back_with_its_payload_and_hash() {
    let s = Setup::new();
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records");
    let one = srv.curl(&["-H", JSON, "-d", r#"{"actor":"alice"}"#, &url]);
    assert_eq!(one.status, 200, "{one:?}");
    let batch = srv.curl(&[
        "-H",
        NDJSON,
        "--data-binary",
        "{\"n\":1}\n{\"n\":2}\n",
        &url,
    ]);
    assert_eq!(batch.status, 200, "{batch:?}");
    let raw = srv.curl(&[
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        "plain text",
        &url,
    ]);
    let mut receipts = vec![one.json()];
    receipts.extend(batch.json()["receipts"].as_array().unwrap().iter().cloned());
    receipts.push(raw.json());
    let read = srv.curl(&[&srv.url("/v1/logs/audit/records?from=1")]);
    let lines = read.lines();
    assert_eq!(lines.len(), 4, "{}", read.body);
    for (r, l) in receipts.iter().zip(&lines) {
        assert_eq!(r["seq"], l["seq"]);
        assert_eq!(r["hash"], l["hash"]);
        assert_eq!(r["time_ns"], l["time_ns"]);
    }
    assert_eq!(lines[0]["payload"]["actor"], "alice");
    assert_eq!(lines[2]["payload"]["n"], 2);
    assert_eq!(lines[3]["payload"], "plain text");
    assert_eq!(lines[3]["encoding"], "utf-8");
}

#[test]
fn no_token_or_an_unknown_one_is_401_another_scope_or_log_is_403_and_both_are_counted() {
    let s = Setup::new();
    s.edit(|t| {
        t.replace("[otlp]\nlog = \"audit\"", "[otlp]\nlog = \"secret-log\"")
            + "\n[[log]]\nname = \"secret-log\"\ndir = \"secret\"\n"
    });
    let appender = s.add_token("svc-billing", "[\"audit\"]", "[\"append\"]");
    let audit_admin = s.add_token("audit-admin", "[\"audit\"]", "[\"admin\"]");
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records");
    let none = curl(&["-H", JSON, "-d", "{}", &url]);
    assert_eq!(none.status, 401);
    assert!(none
        .headers
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    let wrong = curl(&[
        "-H",
        "Authorization: Bearer wormd_not-a-token",
        "-H",
        JSON,
        "-d",
        "{}",
        &url,
    ]);
    assert_eq!(wrong.status, 401);
    let auth = format!("Authorization: Bearer {appender}");
    assert_eq!(
        curl(&["-H", &auth, "-H", JSON, "-d", "{}", &url]).status,
        200
    );
    assert_eq!(
        curl(&["-H", &auth, &url]).status,
        403,
        "append-only token read"
    );
    let other = srv.url("/v1/logs/other/records");
    assert_eq!(
        curl(&["-H", &auth, "-H", JSON, "-d", "{}", &other]).status,
        403
    );
    assert_eq!(curl(&["-H", &auth, &srv.url("/metrics")]).status, 403);
    // An admin of one log sees its metrics, not the other log's name.
    let own = curl(&[
        "-H",
        &format!("Authorization: Bearer {audit_admin}"),
        &srv.url("/metrics"),
    ]);
    assert_eq!(own.status, 200);
    assert!(
        own.body.contains("log=\"audit\"") && !own.body.contains("secret-log"),
        "{}",
        own.body
    );
    // OTLP writes to a log the request does not name: a refusal does not
    // name it either.
    let otlp = curl(&["-H", &auth, "-H", JSON, "-d", "{}", &srv.url("/v1/logs")]);
    assert_eq!(otlp.status, 403);
    assert!(!otlp.body.contains("secret-log"), "{}", otlp.body);
    let m = srv.curl(&[&srv.url("/metrics")]);
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains("wormd_auth_refused_total{status=\"401\"} 2"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("wormd_auth_refused_total{status=\"403\"} 4"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("wormd_appends_total{log=\"audit\"} 1"),
        "{}",
        m.body
    );
    // Nothing refused was written.
    drop(srv);
    assert_eq!(user_records(&s.dir.path().join("audit")).len(), 1);
}

#[test]
fn a_read_writes_an_access_record_naming_the_tokens_principal_before_any_record_leaves() {
    let s = Setup::new();
    let reader = s.add_token("auditor-jane", "[\"*\"]", "[\"read\"]");
    let srv = s.start();
    srv.curl(&[
        "-H",
        JSON,
        "-d",
        r#"{"a":1}"#,
        &srv.url("/v1/logs/audit/records"),
    ]);
    let auth = format!("Authorization: Bearer {reader}");
    let r = curl(&["-H", &auth, &srv.url("/v1/logs/audit/records?match=a=1")]);
    assert_eq!(r.lines().len(), 1);
    let all = curl(&["-H", &auth, &srv.url("/v1/logs/audit/records?system=true")]);
    let access: Vec<_> = all
        .lines()
        .into_iter()
        .filter(|l| l["kind"] == "accessed")
        .collect();
    assert_eq!(access.len(), 2, "one for each read: {}", all.body);
    assert!(
        access[0]["event"]
            .as_str()
            .unwrap()
            .contains("auditor-jane"),
        "{:?}",
        access[0]
    );
    assert!(
        access[0]["event"].as_str().unwrap().contains("match")
            || access[0]["event"]
                .as_str()
                .unwrap()
                .contains("read records")
    );
}

#[test]
fn reads_filter_by_seq_time_field_and_pattern_and_stop_at_the_limit() {
    let s = Setup::new();
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records");
    let mut lines = String::new();
    for i in 1..=20 {
        lines += &format!(
            "{{\"i\":{i},\"user\":\"{}\"}}\n",
            if i % 2 == 0 { "bob" } else { "eve" }
        );
    }
    let r = srv
        .curl(&["-H", NDJSON, "--data-binary", &lines, &url])
        .json();
    let receipts = r["receipts"].as_array().unwrap();
    let times: Vec<String> = receipts
        .iter()
        .map(|r| r["time_ns"].as_str().unwrap().to_string())
        .collect();
    // Record i (1..=20) is seq base + i.
    let base = receipts[0]["seq"].as_u64().unwrap() - 1;
    let q = |query: &str| srv.curl(&[&format!("{url}?{query}")]).lines();
    // The records' i fields, in the order read.
    let seqs = |v: Vec<serde_json::Value>| {
        v.iter()
            .map(|l| l["seq"].as_u64().unwrap_or_else(|| panic!("{l}")) - base)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(q(&format!("from={}&to={}", base + 5, base + 7))),
        [5, 6, 7]
    );
    assert_eq!(seqs(q("match=user=bob&limit=3")), [2, 4, 6]);
    assert_eq!(
        seqs(q("grep=%22i%22%3A1%5B0-9%5D&match=user=eve")),
        [11, 13, 15, 17, 19]
    );
    let since = seqs(q(&format!("since={}", times[19])));
    assert_eq!(since.last(), Some(&20));
    assert!(since.iter().all(|i| times[*i as usize - 1] >= times[19]));
    assert!(seqs(q("since=2500-01-01T00:00:00Z")).is_empty());
    assert!(seqs(q("limit=0")).is_empty(), "limit=0 is none");
    let bad = srv.curl(&[&format!("{url}?since=yesterday-ish")]);
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(srv.curl(&[&format!("{url}?frm=1")]).status, 400);
}

#[test]
fn follow_streams_records_appended_after_the_read_began() {
    let s = Setup::new();
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records?follow=true");
    let auth = format!("Authorization: Bearer {}", srv.token);
    let follower = std::thread::spawn(move || curl(&["-N", "--max-time", "4", "-H", &auth, &url]));
    std::thread::sleep(Duration::from_millis(800));
    for i in 0..3 {
        let r = srv.curl(&[
            "-H",
            JSON,
            "-d",
            &format!("{{\"late\":{i}}}"),
            &srv.url("/v1/logs/audit/records"),
        ]);
        assert_eq!(r.status, 200);
    }
    let got = follower.join().unwrap();
    let late: Vec<_> = got
        .body
        .lines()
        .filter(|l| l.contains("\"late\""))
        .collect();
    assert_eq!(late.len(), 3, "{}", got.body);
}

#[test]
fn reads_past_reads_max_get_503_until_one_ends() {
    let s = Setup::new();
    s.edit(|t| {
        t.replace("[server]\n", "[server]\nreads_max = 1\n")
            + "\n[[log]]\nname = \"other\"\ndir = \"other\"\n"
    });
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records?follow=true");
    let auth = format!("Authorization: Bearer {}", srv.token);
    let follower = std::thread::spawn(move || curl(&["-N", "--max-time", "3", "-H", &auth, &url]));
    std::thread::sleep(Duration::from_millis(800));
    let busy = srv.curl(&[&srv.url("/v1/logs/audit/records")]);
    assert_eq!(busy.status, 503, "{busy:?}");
    // The places are per log: the other log's readers are not held up.
    assert_eq!(srv.curl(&[&srv.url("/v1/logs/other/records")]).status, 200);
    assert!(busy.headers.to_ascii_lowercase().contains("retry-after: 1"));
    follower.join().unwrap();
    // The follower's place is free once its client went.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = srv.curl(&[&srv.url("/v1/logs/audit/records")]);
        if r.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_verify_job_reports_progress_and_its_result_and_jobs_at_once_are_bounded() {
    let s = Setup::new();
    s.edit(|t| {
        t.replace(
            "[server]\n",
            "[server]\nverify_jobs_max = 1\nbatch_records_max = 20000\n",
        )
    });
    let srv = s.start();
    let lines: String = (0..500).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    srv.curl(&[
        "-H",
        NDJSON,
        "--data-binary",
        &lines,
        &srv.url("/v1/logs/audit/records"),
    ]);
    let started = srv.curl(&["-X", "POST", &srv.url("/v1/logs/audit/verify")]);
    assert_eq!(started.status, 202, "{started:?}");
    let status = started.json()["status"].as_str().unwrap().to_string();
    let mut job = serde_json::Value::Null;
    for _ in 0..200 {
        job = srv.curl(&[&srv.url(&status)]).json();
        if job["state"] == "done" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["result"]["ok"], true, "{job}");
    // The verification covers its own access record.
    let all = srv
        .curl(&[&srv.url("/v1/logs/audit/records?system=true")])
        .lines();
    let verify_access = all
        .iter()
        .find(|l| l["kind"] == "accessed" && l["event"].as_str().unwrap_or("").contains("verify"))
        .expect("an access record for the verify");
    assert!(
        verify_access["seq"].as_u64() <= job["result"]["head_seq"].as_u64(),
        "{verify_access} {job}"
    );
    assert!(job["result"]["records"].as_u64().unwrap() >= 500);
    assert_eq!(job["bytes_checked"], job["bytes_total"]);
}

#[test]
fn oversized_bodies_bad_json_and_bad_protobuf_are_refused_and_nothing_of_them_is_written() {
    let s = Setup::new();
    s.edit(|t| {
        t.replace(
            "body_bytes_max = 16777216",
            "body_bytes_max = 4096\nbatch_records_max = 5",
        )
    });
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records");
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(10_000));
    assert_eq!(srv.curl(&["-H", JSON, "-d", &big, &url]).status, 413);
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let r = srv.curl(&["-H", JSON, "-d", &deep, &url]);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(srv.curl(&["-H", JSON, "-d", "{not json", &url]).status, 400);
    // A key twice (readers disagree on which one the record says), bytes
    // that are not UTF-8: refused, not stored to be misread.
    let dup = srv.curl(&[
        "-H",
        JSON,
        "-d",
        r#"{"actor":"mallory","actor":"alice"}"#,
        &url,
    ]);
    assert_eq!(dup.status, 400, "{dup:?}");
    assert!(dup.body.contains("appears twice"), "{}", dup.body);
    assert_eq!(
        srv.curl(&["-H", JSON, "--data-binary", "{\"b\":\"\u{fffd}\"}", &url])
            .status,
        200
    );
    let not_utf8 = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_utf8.path(), b"{\"b\":\"\xff\"}").unwrap();
    let at = format!("@{}", not_utf8.path().display());
    assert_eq!(
        srv.curl(&["-H", JSON, "--data-binary", &at, &url]).status,
        400
    );
    // Many tiny lines cost more memory than their bytes: capped.
    let six = srv.curl(&["-H", NDJSON, "--data-binary", "1\n2\n3\n4\n5\n6\n", &url]);
    assert_eq!(six.status, 413, "{six:?}");
    let half_bad = srv.curl(&["-H", NDJSON, "--data-binary", "{\"ok\":1}\nnope\n", &url]);
    assert_eq!(half_bad.status, 400, "a batch is all or nothing");
    let otlp = srv.curl(&[
        "-H",
        "Content-Type: application/x-protobuf",
        "--data-binary",
        "\u{ff}\u{ff}garbage",
        &srv.url("/v1/logs"),
    ]);
    assert_eq!(otlp.status, 400, "{otlp:?}");
    assert_eq!(
        srv.curl(&["-H", JSON, "-d", "{\"fine\":true}", &url])
            .status,
        200
    );
    drop(srv);
    let recs = user_records(&s.dir.path().join("audit"));
    assert_eq!(recs.len(), 2, "only the good appends");
    assert_eq!(recs[1].1, b"{\"fine\":true}");
}

#[test]
fn a_connection_that_never_finishes_its_headers_is_closed_and_others_are_served() {
    let s = Setup::new();
    s.edit(|t| t.replace("[server]\n", "[server]\nheader_timeout_secs = 1\n"));
    let srv = s.start();
    let mut slow = std::net::TcpStream::connect(&srv.http).unwrap();
    slow.write_all(b"POST /v1/logs/audit/records HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Meanwhile others are served.
    let ok = srv.curl(&["-H", JSON, "-d", "{}", &srv.url("/v1/logs/audit/records")]);
    assert_eq!(ok.status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let n = slow.read_to_end(&mut buf);
    // Closed by the server (EOF, possibly after a 408), not by our timeout.
    assert!(n.is_ok(), "the server kept the connection open: {n:?}");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[test]
fn a_body_that_never_arrives_is_cut_and_no_token_means_no_body_is_read() {
    let s = Setup::new();
    s.edit(|t| t.replace("[server]\n", "[server]\nbody_timeout_secs = 1\n"));
    let srv = s.start();
    let head = |token: &str| {
        format!(
            "POST /v1/logs/audit/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"a\""
        )
    };
    for (token, want) in [
        (srv.token.as_str(), "HTTP/1.1 408"),
        ("wormd_wrong", "HTTP/1.1 401"),
    ] {
        let mut c = std::net::TcpStream::connect(&srv.http).unwrap();
        c.write_all(head(token).as_bytes()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with(want), "{token}: {text}");
    }
    drop(srv);
    assert!(user_records(&s.dir.path().join("audit")).is_empty());
}

#[test]
fn https_serves_curl_with_the_configured_certificate() {
    let s = Setup::new();
    self_signed(s.dir.path());
    s.edit(|t| {
        t.replace(
            "[server]\n",
            "[server]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
        )
    });
    let srv = s.start();
    let url = srv.url("/v1/logs/audit/records");
    assert!(url.starts_with("https://localhost:"), "{url}");
    let r = srv.curl(&["-H", JSON, "-d", "{\"tls\":1}", &url]);
    assert_eq!(r.status, 200, "{r:?}");
    // Without the CA curl refuses the certificate; plain HTTP on the TLS
    // port gets no answer.
    assert_eq!(curl(&["--max-time", "5", &url]).status, 0);
    let plain = curl(&["--max-time", "5", &format!("http://{}/healthz", srv.http)]);
    assert_ne!(plain.status, 200);
}

#[test]
fn check_config_blames_the_operator_with_exit_2_naming_the_mistake() {
    let s = Setup::new();
    let ok = wormd()
        .arg("check-config")
        .arg(s.config())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    s.edit(|t| t.replace("127.0.0.1:7070", "0.0.0.0:7070"));
    let bad = wormd()
        .arg("check-config")
        .arg(s.config())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not on loopback"));
    // What the engine would refuse at open, check-config refuses now.
    s.edit(|t| t.replace("0.0.0.0:7070", "127.0.0.1:7070"));
    for (edit, says) in [
        ("durability = \"sync\"", "segment_bytes_max must be at least 4096"),
        ("durability = \"batched\"\nbatch_delay_ms = 0", "max_delay must be more than zero"),
        ("durability = \"sync\"\ncheckpoint_every_secs = 5\nwitnesses = [{ url = \"http://127.0.0.1:1\", key = \"nope.pub\" }]", "nope.pub"),
    ] {
        let text = std::fs::read_to_string(s.config()).unwrap();
        let bad = text.replace("durability = \"sync\"", &format!("{edit}\nsegment_bytes_max = {}", if says.contains("4096") { 1 } else { 65536 }));
        let path = s.dir.path().join("bad.toml");
        std::fs::write(&path, bad).unwrap();
        let o = wormd().arg("check-config").arg(&path).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{edit}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{edit}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let missing = wormd()
        .args(["--config", "/nonexistent/wormd.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("wormd init"));
}

#[test]
fn the_served_tiles_and_checkpoint_check_with_gos_tlog_client() {
    let s = Setup::new();
    let srv = s.start();
    let lines: String = (0..700).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let r = srv.curl(&[
        "-H",
        NDJSON,
        "--data-binary",
        &lines,
        &srv.url("/v1/logs/audit/records"),
    ]);
    assert_eq!(r.status, 200);
    let vkey = std::fs::read_to_string(s.dir.path().join("audit.pub")).unwrap();
    let base = srv.url("/v1/logs/audit");
    let out = go_tlogcheck(s.dir.path(), &["http", &base, &srv.token, vkey.trim()]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("leaves checked over HTTP"), "{said}");
    // The server's own inclusion proof agrees with the checkpoint's size.
    let p = srv
        .curl(&[&srv.url("/v1/logs/audit/proof/inclusion?seq=5")])
        .json();
    assert_eq!(p["seq"], 5);
    assert!(!p["hashes"].as_array().unwrap().is_empty());
    // A tile path in another spelling is not found.
    assert_eq!(srv.curl(&[&srv.url("/v1/logs/audit/tile/0/0")]).status, 404);
}

#[test]
fn proofs_and_tiles_cover_only_durable_records() {
    let s = Setup::new();
    // Batched with a long delay: an acknowledged record is not yet synced.
    s.edit(|t| {
        t.replace(
            "durability = \"sync\"",
            "durability = \"batched\"\nbatch_delay_ms = 60000",
        )
    });
    let srv = s.start();
    let syncs = || {
        srv.curl(&[&srv.url("/v1/logs/audit")]).json()["writes"]["syncs"]
            .as_u64()
            .unwrap()
    };
    let r = srv
        .curl(&[
            "-H",
            JSON,
            "-d",
            "{\"a\":1}",
            &srv.url("/v1/logs/audit/records"),
        ])
        .json();
    let seq = r["seq"].as_u64().unwrap();
    let before = syncs();
    let p = srv.curl(&[&srv.url(&format!("/v1/logs/audit/proof/inclusion?seq={seq}"))]);
    assert_eq!(p.status, 200, "{p:?}");
    assert!(p.json()["tree_size"].as_u64().unwrap() >= seq);
    assert!(syncs() > before, "the proof's tree was made durable first");
    // Past the head: not found, never a root of records that may vanish.
    let past = srv.curl(&[&srv.url(&format!(
        "/v1/logs/audit/proof/inclusion?seq=1&size={}",
        seq + 5
    ))]);
    assert_eq!(past.status, 404, "{past:?}");
    let tile = srv.curl(&[&srv.url(&format!("/v1/logs/audit/tile/entries/000.p/{}", seq + 5))]);
    assert_eq!(tile.status, 404);
}

/// tools/tlogcheck in GOPATH mode against Debian's x/mod (installed by
/// .ci/install); a missing Go fails the test.
pub fn go_tlogcheck(work: &std::path::Path, args: &[&str]) -> std::process::Output {
    let program = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tlogcheck/main.go");
    std::process::Command::new("go")
        .arg("run")
        .arg(program)
        .args(args)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", work.join("go-cache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go runs (apt-get install golang-go golang-golang-x-mod-dev)")
}
