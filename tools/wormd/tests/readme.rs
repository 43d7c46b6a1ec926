//! README's first five minutes with wormd, run as written (the wormd under
//! test on PATH; the ports it names replaced by free ones).

use std::process::Command;

#[test]
fn the_readme_first_five_minutes_run_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("The first five minutes")
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
    let (http, syslog) = (free(), free());
    let script = script.replace("7070", &http).replace("5140", &syslog);
    // The config's ports are the README's; the server takes the free ones.
    let script = script.replace(
        "wormd --config wormd-demo/wormd.toml &",
        &format!("wormd --config wormd-demo/wormd.toml --http 127.0.0.1:{http} --syslog-tcp 127.0.0.1:{syslog} &"),
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_wormd"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}");
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    // The receipt, the alice record, the sshd message.
    assert!(lines[0].starts_with("{\"seq\":3,\"time_ns\":\""), "{out}");
    assert!(
        out.contains("\"payload\":{\"actor\":\"alice\",\"action\":\"login\"}"),
        "{out}"
    );
    assert!(
        out.contains("\"message\":\"Accepted publickey for alice\""),
        "{out}"
    );
    assert!(out.contains("\"app\":\"sshd\""), "{out}");
}
