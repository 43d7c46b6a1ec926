//! tools/wormd/openapi.yaml is the server's contract: schemathesis (from
//! PyPI, installed by .ci/install) generates requests from it, valid and
//! not, and checks every answer against it (status codes, bodies, content
//! types, that valid requests are taken and invalid ones refused). Seeded,
//! so a run is repeatable. `follow` is left out: a followed read never
//! ends by itself (follow_streams_records_appended_after_the_read_began in
//! http_api.rs tests it with curl).

mod common;
use common::*;
use std::process::Command;

#[test]
fn the_server_answers_as_its_openapi_document_says() {
    let s = Setup::new();
    let srv = s.start();
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let derived = s.dir.path().join("openapi-no-follow.yaml");
    let strip = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, yaml\n\
             d = yaml.safe_load(open(sys.argv[1]))\n\
             get = d['paths']['/v1/logs/{name}/records']['get']\n\
             get['parameters'] = [p for p in get['parameters'] if p.get('name') != 'follow']\n\
             yaml.safe_dump(d, open(sys.argv[2], 'w'), sort_keys=False)\n",
        )
        .arg(&spec)
        .arg(&derived)
        .status()
        .expect("python3 runs");
    assert!(
        strip.success(),
        "python3 with PyYAML (schemathesis brings it)"
    );
    let o = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(&derived)
        .args(["--url", &srv.url("")])
        .args(["-H", &format!("Authorization: Bearer {}", srv.token)])
        .args([
            "--max-examples",
            "25",
            "--seed",
            "42",
            "--generation-database",
            "none",
        ])
        .current_dir(s.dir.path())
        .output()
        .expect("python3 runs (pip install schemathesis)");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "schemathesis:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
