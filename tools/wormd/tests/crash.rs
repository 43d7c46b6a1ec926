//! wormd killed under load: every append it acknowledged (a 200 with a
//! receipt) is in the log after a restart, with the receipt's hash, after
//! SIGKILL; after SIGTERM the requests in flight finish first and the log
//! closes cleanly. Load comes from curl, four senders at once.

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Acked = Arc<Mutex<Vec<(u64, String, String)>>>;

/// Four curl senders appending until `stop`; what each 200 acknowledged:
/// (seq, hash, payload).
fn load(srv: &Server, stop: Arc<AtomicBool>) -> (Acked, Vec<std::thread::JoinHandle<()>>) {
    let acked: Acked = Default::default();
    let mut threads = Vec::new();
    for t in 0..4 {
        let (url, token, acked, stop) = (
            srv.url("/v1/logs/audit/records"),
            srv.token.clone(),
            acked.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let auth = format!("Authorization: Bearer {token}");
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let payload = format!("{{\"sender\":{t},\"i\":{i}}}");
                let r = curl(&[
                    "--max-time",
                    "10",
                    "-H",
                    &auth,
                    "-H",
                    "Content-Type: application/json",
                    "-d",
                    &payload,
                    &url,
                ]);
                if r.status == 200 {
                    let v = r.json();
                    acked.lock().unwrap().push((
                        v["seq"].as_u64().unwrap(),
                        v["hash"].as_str().unwrap().to_string(),
                        payload,
                    ));
                }
                i += 1;
            }
        }));
    }
    (acked, threads)
}

fn check_all_present(s: &Setup, acked: &Acked) -> usize {
    let recs = user_records(&s.dir.path().join("audit"));
    let by_seq: std::collections::HashMap<u64, (String, Vec<u8>)> =
        recs.into_iter().map(|(seq, p, h)| (seq, (h, p))).collect();
    let acked = acked.lock().unwrap();
    for (seq, hash, payload) in acked.iter() {
        let (h, p) = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} is gone"));
        assert_eq!(h, hash, "seq {seq}'s hash");
        assert_eq!(p, payload.as_bytes(), "seq {seq}'s payload");
    }
    acked.len()
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_append() {
    let s = Setup::new();
    let mut srv = s.start();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, threads) = load(&srv, stop.clone());
    std::thread::sleep(Duration::from_millis(1500));
    srv.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(acked.lock().unwrap().len() > 20, "the load ran");
    // Restart: recovery, then serving; every acknowledged append is there.
    let again = s.start();
    eprintln!(
        "restart after kill -9: ready in {} ms",
        again.startup.as_millis()
    );
    drop(again);
    let n = check_all_present(&s, &acked);
    eprintln!("{n} acknowledged appends, all present after kill -9");
}

#[test]
fn sigterm_finishes_requests_in_flight_and_closes_the_log_cleanly() {
    let s = Setup::new();
    let mut srv = s.start();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, threads) = load(&srv, stop.clone());
    std::thread::sleep(Duration::from_millis(1000));
    let status = srv.stop();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(status.success(), "wormd exits 0 after SIGTERM: {status:?}");
    let said = srv.stderr.lock().unwrap().join("\n");
    assert!(said.contains("\"log closed\""), "{said}");
    check_all_present(&s, &acked);
    // A clean close leaves nothing for recovery to do.
    let log = wormlog::Log::open(s.dir.path().join("audit"), wormlog::Options::default()).unwrap();
    assert!(log.recovery().is_clean(), "{:?}", log.recovery());
}
