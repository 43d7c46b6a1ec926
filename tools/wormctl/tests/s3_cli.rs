//! `wormctl ship` and `wormctl verify s3://…` against the real S3 server
//! .ci/test starts (WORMLOG_TEST_S3_ENDPOINT and the AWS variables).
#![cfg(feature = "s3")]

use std::process::{Command, Output};
use wormlog::{Log, Options, Sealing};

fn wormctl(args: &[&str], endpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wormctl"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .expect("wormctl runs")
}

#[test]
fn ship_then_verify_the_bucket_and_catch_a_shadowing_version() {
    let endpoint = std::env::var("WORMLOG_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("WORMLOG_TEST_S3_ENDPOINT is not set: run the tests with bash .ci/test, which starts the S3 server")
    });
    let url = format!("s3://wormctl-{}/audit", std::process::id());
    // .ci/test sets AWS_ENDPOINT_URL to the same server.
    let target = wormlog::ship::S3Target::from_env(&url).unwrap();
    target
        .create_bucket_with_object_lock()
        .unwrap_or_else(|e| panic!("cannot reach the S3 server at {endpoint}: {e}"));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("log");
    let log = Log::open(
        &dir,
        Options::default()
            .sealing(Sealing::Inline)
            .segment_bytes_max(16 << 10),
    )
    .unwrap();
    for i in 0..500 {
        log.append(format!("event {i}").as_bytes()).unwrap();
    }
    log.seal().unwrap();
    log.close().unwrap();
    let d = dir.to_str().unwrap();
    let o = wormctl(
        &["ship", d, "--to", &url, "--retain-until", "1d"],
        &endpoint,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("uploaded"), "{text}");
    let o = wormctl(&["verify", &url, "--state", d], &endpoint);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A version put over a shipped segment: exit 1, naming it.
    let shipped = wormlog::ship::shipped(&dir).unwrap();
    wormlog::ship::put_unconditional(&target, &shipped[0].key, b"forged").unwrap();
    let o = wormctl(&["verify", &url, "--state", d], &endpoint);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(&shipped[0].key));
}
