//! OpenTelemetry logs into wormd: the OpenTelemetry Python SDK (PyPI
//! opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http, installed
//! by .ci/install) exports over OTLP/HTTP protobuf with its own exporter;
//! OTLP/JSON comes from curl. Every record must arrive once, in order,
//! with its attributes and its resource's.

mod common;
use common::*;
use std::process::Command;

fn python_export(srv: &Server, token: &str, n: usize) -> std::process::Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/export_logs.py");
    Command::new("python3")
        .arg(script)
        .arg(srv.url("/v1/logs"))
        .arg(token)
        .arg(n.to_string())
        .output()
        .expect("python3 runs")
}

#[test]
fn the_python_sdks_log_records_arrive_once_in_order_with_their_attributes() {
    let s = Setup::new();
    let srv = s.start();
    let n = 300;
    let o = python_export(&srv, &srv.token, n);
    assert!(
        o.status.success(),
        "the SDK reported a failed export (is opentelemetry-sdk installed?):\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let recs: Vec<_> = srv
        .curl(&[&srv.url("/v1/logs/audit/records?grep=billing-py")])
        .lines()
        .into_iter()
        .map(|l| l["payload"].clone())
        .collect();
    assert_eq!(recs.len(), n, "each record once");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["body"], format!("payment {i} approved"), "in order");
        assert_eq!(r["attributes"]["user"], "alice");
        assert_eq!(r["attributes"]["amount"], i);
        assert_eq!(r["severity_text"], "WARN");
        assert_eq!(r["scope"]["name"], "billing.audit");
        assert_eq!(r["resource"]["telemetry.sdk.language"], "python");
    }
}

#[test]
fn the_sdk_with_a_wrong_token_is_refused_and_nothing_is_written() {
    let s = Setup::new();
    let srv = s.start();
    let o = python_export(&srv, "wormd_wrong", 3);
    assert!(!o.status.success(), "the SDK saw its export refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"));
    drop(srv);
    assert!(user_records(&s.dir.path().join("audit")).is_empty());
}

#[test]
fn otlp_json_from_curl_is_stored_as_the_protobuf_path_stores_it() {
    let s = Setup::new();
    let srv = s.start();
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"curl-svc"}}]},
      "scopeLogs":[{"scope":{"name":"s"},"logRecords":[
        {"timeUnixNano":"1796691605911863040","severityNumber":9,"body":{"stringValue":"one"}},
        {"timeUnixNano":"1796691605911863041","severityNumber":9,"body":{"kvlistValue":{"values":[{"key":"k","value":{"intValue":"7"}}]}}}]}]}]}"#;
    let r = srv.curl(&[
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        &srv.url("/v1/logs"),
    ]);
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let recs = srv
        .curl(&[&srv.url("/v1/logs/audit/records?grep=curl-svc")])
        .lines();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["payload"]["body"], "one");
    assert_eq!(recs[1]["payload"]["body"]["k"], 7);
    assert_eq!(recs[1]["payload"]["time_unix_nano"], "1796691605911863041");
}
