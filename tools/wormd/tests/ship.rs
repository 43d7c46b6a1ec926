//! `ship_to`: a log served by wormd ships its records, the unsealed tail
//! included, to the real S3 server .ci/test starts (SeaweedFS), within
//! seconds, and the bucket's copy restores with every acknowledged record.
// Needs the server: feature `server-tests` (on in .ci/test).
#![cfg(feature = "server-tests")]

mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn acknowledged_records_reach_the_bucket_within_seconds_and_restore() {
    let endpoint = std::env::var("WORMLOG_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("WORMLOG_TEST_S3_ENDPOINT is not set: run the tests with bash .ci/test")
    });
    let url = format!("s3://wormd-{}/audit", std::process::id());
    let bucket = wormlog_s3::S3Target::from_env(url.rsplit_once('/').unwrap().0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match bucket.create_bucket_with_object_lock() {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
            Err(e) => panic!("cannot reach the S3 server at {endpoint}: {e}"),
            Ok(()) => break,
        }
    }
    let s = Setup::new();
    s.edit(|t| t.replace("proofs = false\n", &format!("proofs = false\nship_to = \"{url}\"\nship_retain_for = \"1d\"\nship_every_secs = 1\n")));
    let srv = s.start();
    let lines: String = (0..50).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let r = srv.curl(&[
        "-H",
        "Content-Type: application/x-ndjson",
        "--data-binary",
        &lines,
        &srv.url("/v1/logs/audit/records"),
    ]);
    assert_eq!(r.status, 200);
    let last = r.json()["receipts"][49]["seq"].as_u64().unwrap();
    // While wormd runs: the bucket's copy restores with every record.
    let target = wormlog_s3::S3Target::from_env(&url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = tempfile::tempdir().unwrap();
        let restored = out.path().join("copy");
        let state = match wormlog_s3::restore(&target, &restored, None) {
            Ok(_) => {
                let recs = user_records(&restored);
                if recs.last().is_some_and(|r| r.0 >= last) {
                    assert_eq!(recs.len(), 50);
                    break;
                }
                format!("restored {} records", recs.len())
            }
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "the tail did not reach the bucket in 30 s: {state}; wormd's stat: {}",
            srv.curl(&[&srv.url("/v1/logs/audit")]).body
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
