//! Many logs, one process: a log costs no thread of its own (every log
//! shares the engine's background pool and the server's runtime).

mod common;
use common::*;

fn threads(srv: &Server) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn three_hundred_logs_open_run_on_the_threads_of_one() {
    let one = Setup::new();
    let srv = one.start();
    let base = threads(&srv);
    drop(srv);
    let many = Setup::new();
    many.edit(|mut t| {
        for i in 0..299 {
            t += &format!("\n[[log]]\nname = \"tenant-{i}\"\ndir = \"tenants/{i}\"\n");
        }
        t
    });
    let srv = many.start();
    // Every log is open and takes appends.
    let r = srv.curl(&[
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        &srv.url("/v1/logs/tenant-298/records"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    let n = threads(&srv);
    assert!(n <= base + 2, "{n} threads with 300 logs, {base} with one");
}
