//! Off-host copies against a real S3 server (SeaweedFS, started by
//! .ci/test; its endpoint and credentials in WORMLOG_TEST_S3_ENDPOINT,
//! AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). Without a server these
//! tests fail saying so: they never pass by skipping.
#![cfg(feature = "s3")]

mod common;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use wormlog::ship::{self, S3Target};
use wormlog::{Log, Options, Sealing};

fn target(test: &str) -> S3Target {
    static N: AtomicU32 = AtomicU32::new(0);
    let endpoint = std::env::var("WORMLOG_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "{test}: WORMLOG_TEST_S3_ENDPOINT is not set: these tests need a running S3 server \
             (bash .ci/test starts SeaweedFS and sets it)"
        )
    });
    let key = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
    // One bucket per run (each bucket takes volumes of the server's),
    // one prefix per test.
    let bucket = format!("wormlog-test-{}", std::process::id());
    let t = S3Target::new(
        &format!(
            "s3://{bucket}/{test}-{}/host-1",
            N.fetch_add(1, Ordering::SeqCst)
        ),
        &endpoint,
        "us-east-1",
        rusty_s3::Credentials::new(key, secret),
    )
    .unwrap()
    .retain_until(now_ns() + 3600 * 1_000_000_000);
    static CREATED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let created = CREATED.get_or_init(|| {
        t.create_bucket_with_object_lock()
            .map_err(|e| e.to_string())
    });
    if let Err(e) = created {
        panic!("{test}: cannot reach the S3 server at {endpoint}: {e}");
    }
    t
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A log with several sealed segments.
fn sealed_log(dir: &Path, records: usize) {
    let log = Log::open(
        dir,
        Options::default()
            .sealing(Sealing::Inline)
            .segment_bytes_max(16 << 10),
    )
    .unwrap();
    for i in 0..records {
        log.append(format!(r#"{{"actor":"user{}","action":"read","i":{i}}}"#, i % 9).as_bytes())
            .unwrap();
    }
    log.seal().unwrap();
    log.close().unwrap();
}

#[test]
fn shipped_segments_verify_from_the_bucket_and_are_never_uploaded_twice() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 800);
    let t = target("ship");
    let r = ship::ship(dir.path(), &t).unwrap();
    let sealed = common::files_with(dir.path(), ".wlog.zst").len();
    assert!(sealed >= 3);
    assert_eq!(
        r.uploaded.len(),
        sealed,
        "every sealed file (no anchor yet)"
    );
    let again = ship::ship(dir.path(), &t).unwrap();
    assert!(again.uploaded.is_empty() && again.adopted.is_empty());
    assert_eq!(again.already, sealed);
    let remote = ship::verify_remote(&t, Some(dir.path())).unwrap();
    assert_eq!(remote.segments as usize, sealed);
    assert_eq!(remote.first_seq, 1);
    assert!(remote.shadowed.is_empty(), "{:?}", remote.shadowed);
    // The bucket alone, with no local record, verifies as well.
    ship::verify_remote(&t, None).unwrap();
}

#[test]
fn a_ship_that_crashed_before_its_record_adopts_what_reached_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 600);
    let t = target("resume");
    let first = ship::ship(dir.path(), &t).unwrap();
    // As if the process died after the PUTs of all but the first object
    // and before their records reached the disk: keep the first line only.
    let state = dir.path().join("wormlog.ship");
    let text = std::fs::read_to_string(&state).unwrap();
    let first_line = text.lines().next().unwrap();
    std::fs::write(
        &state,
        format!("{first_line}\n{}", "torn line without its end"),
    )
    .unwrap();
    let r = ship::ship(dir.path(), &t).unwrap();
    assert!(r.uploaded.is_empty(), "nothing uploaded twice");
    assert_eq!(r.adopted.len(), first.uploaded.len() - 1);
    let recorded = ship::shipped(dir.path()).unwrap();
    assert_eq!(
        recorded, first.uploaded,
        "the same versions, recorded again"
    );
    let remote = ship::verify_remote(&t, Some(dir.path())).unwrap();
    assert!(remote.shadowed.is_empty(), "one version per object");
}

#[test]
fn the_server_refuses_to_delete_a_locked_version() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 300);
    let t = target("delete");
    let r = ship::ship(dir.path(), &t).unwrap();
    let o = &r.uploaded[0];
    let status = ship::try_delete_version(&t, &o.key, &o.version_id).unwrap();
    assert!(
        status == 403,
        "DELETE of a COMPLIANCE-locked version gave HTTP {status}"
    );
    ship::verify_remote(&t, Some(dir.path())).unwrap();
}

#[test]
fn a_version_put_over_a_shipped_object_is_reported_and_its_bytes_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 300);
    let t = target("shadow");
    let r = ship::ship(dir.path(), &t).unwrap();
    let o = &r.uploaded[0];
    let status = ship::put_unconditional(&t, &o.key, b"forged segment").unwrap();
    assert_eq!(status, 200, "a versioned bucket takes a new version");
    // With the record: the shipped version is checked, the shadow reported.
    let remote = ship::verify_remote(&t, Some(dir.path())).unwrap();
    assert_eq!(remote.shadowed, vec![o.key.clone()]);
    // Without it, the latest version (the forgery) is what the bucket
    // serves, and it does not verify.
    assert!(ship::verify_remote(&t, None).is_err());
}
