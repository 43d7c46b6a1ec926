//! wormlog beside the ceilings of this machine's disk and the write paths of
//! the embedded logs people would pick instead, measured interleaved in one
//! run (the machines we run on are shared and noisy: only same-run ratios
//! mean anything).
//!
//!     cargo run --release -p wormlog-compare
//!     cargo run --release -p wormlog-compare --features prealloc   # + pre-zeroed segments
//!     COMPARE_SECS=1 COMPARE_REPEATS=1 cargo run --release -p wormlog-compare   # quick
//!     COMPARE_ONLY=sync cargo run --release -p wormlog-compare   # rows whose name has "sync"
//!     COMPARE_ONLY='sync/1 |verify' cargo run ...   # rows matching either
//!     bash .ci/test ... ; or with an S3 server's variables set:
//!     COMPARE_ONLY=ship cargo run --release -p wormlog-compare --features s3
//!
//! The baselines, all framing records as length + CRC32C + payload:
//! - `ceiling`: one record then one fdatasync per append, one thread, into a
//!   pre-zeroed file. With one synchronous writer nothing can be grouped, so
//!   this is the disk's physical limit (okaywal reaches it).
//! - `group-commit`: K threads, a leader writes everything queued with one
//!   write and one fdatasync into a pre-zeroed file while the others wait
//!   (okaywal's and raft-engine's write path, without their formats).
//! - `naive`: a mutex around a growing file, one write and one fdatasync per
//!   record (a hand-rolled durable log).
//! - `batch-ceiling`: 512 records, one write, one fdatasync, into a growing
//!   or a pre-zeroed file.
//! - `plain-buffered`: one write syscall per record into a growing file, no
//!   fdatasync (a buffered log with no hashing at all).
//! - `blake3`: one thread hashing a 64 MiB buffer (what verify's hashing
//!   alone costs per byte on one core).

mod cost;
#[cfg(feature = "peers")]
mod peers;
mod proofs;
mod server;

use parking_lot::{Condvar, Mutex};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options, Sealing};

const RECORD: usize = 256;
const BATCH: usize = 512;
/// Size of a pre-zeroed baseline file; writes wrap around inside it. Small,
/// as wormlog's own zeros ahead (4 MiB): zeroing 256 MiB first left the
/// disk busy into the timed part and made the ceiling read low.
const ZEROED: u64 = 16 << 20;

const SSH: &str = include_str!("../../../tools/wormctl/data/OpenSSH_2k.log");
const LINUX: &str = include_str!("../../../tools/wormctl/data/Linux_2k.log");

fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Runs `op` on `k` threads until `secs` have passed; returns records/s
/// (`op` returns how many records it committed).
fn run_threads<F: Fn() -> u64 + Sync>(k: usize, secs: Duration, op: F) -> f64 {
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..k {
            s.spawn(|| {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += op();
                }
                count.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(secs);
        stop.store(true, Ordering::Relaxed);
    });
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn zeroed_file(path: &Path) -> File {
    let mut f = File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..ZEROED / chunk.len() as u64 {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    OpenOptions::new().write(true).open(path).unwrap()
}

/// Writes at a cursor that wraps inside a pre-zeroed file.
struct Zeroed {
    file: File,
    off: Mutex<u64>,
}

impl Zeroed {
    fn new(dir: &Path) -> Zeroed {
        Zeroed {
            file: zeroed_file(&dir.join("zeroed")),
            off: Mutex::new(0),
        }
    }

    fn place(&self, len: usize) -> u64 {
        let mut off = self.off.lock();
        if *off + len as u64 > ZEROED {
            *off = 0;
        }
        let at = *off;
        *off += len as u64;
        at
    }

    fn write_sync(&self, buf: &[u8]) {
        let at = self.place(buf.len());
        self.file.write_all_at(buf, at).unwrap();
        self.file.sync_data().unwrap();
    }
}

/// Group commit into a pre-zeroed file: the baseline of the write path of
/// okaywal and raft-engine.
struct GroupCommit {
    file: Zeroed,
    st: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Default)]
struct GroupState {
    buf: Vec<u8>,
    queued: u64,
    durable: u64,
    leading: bool,
}

impl GroupCommit {
    fn append(&self, payload: &[u8]) {
        let mut g = self.st.lock();
        frame(&mut g.buf, payload);
        g.queued += 1;
        let me = g.queued;
        loop {
            if g.durable >= me {
                return;
            }
            if g.leading {
                self.done.wait(&mut g);
                continue;
            }
            g.leading = true;
            let buf = std::mem::take(&mut g.buf);
            let upto = g.queued;
            drop(g);
            self.file.write_sync(&buf);
            g = self.st.lock();
            g.durable = upto;
            g.leading = false;
            self.done.notify_all();
        }
    }
}

struct Naive {
    file: Mutex<File>,
}

impl Naive {
    fn new(dir: &Path) -> Naive {
        Naive {
            file: Mutex::new(File::create(dir.join("naive")).unwrap()),
        }
    }
}

struct Case {
    name: String,
    unit: &'static str,
    run: Box<dyn Fn(Duration) -> f64>,
    values: Vec<f64>,
}

fn case(name: &str, unit: &'static str, run: impl Fn(Duration) -> f64 + 'static) -> Case {
    Case {
        name: name.to_string(),
        unit,
        run: Box::new(run),
        values: Vec::new(),
    }
}

fn wormlog_options(d: Durability) -> Options {
    Options::default().durability(d)
}

#[cfg(feature = "prealloc")]
fn prealloc(o: Options) -> Options {
    o.preallocate(true)
}

/// Appends of one record from `k` threads to a fresh log.
fn wormlog_appends(k: usize, secs: Duration, options: Options) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options).unwrap();
    let payload = vec![b'a'; RECORD];
    let rate = run_threads(k, secs, || {
        log.append(&payload).unwrap();
        1
    });
    log.close().unwrap();
    rate
}

fn wormlog_batches(secs: Duration, options: Options) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), options).unwrap();
    let batch = vec![vec![b'a'; RECORD]; BATCH];
    let rate = run_threads(1, secs, || {
        log.append_batch(&batch).unwrap();
        BATCH as u64
    });
    log.close().unwrap();
    rate
}

fn sync_cases(cases: &mut Vec<Case>) {
    cases.push(case(
        "sync/1 ceiling (record+fdatasync, pre-zeroed)",
        "rec/s",
        |secs| {
            let dir = tempfile::tempdir().unwrap();
            let z = Zeroed::new(dir.path());
            let payload = vec![b'a'; RECORD];
            run_threads(1, secs, || {
                let mut buf = Vec::with_capacity(RECORD + 8);
                frame(&mut buf, &payload);
                z.write_sync(&buf);
                1
            })
        },
    ));
    for k in [1usize, 16, 64] {
        cases.push(case(&format!("sync/{k} wormlog"), "rec/s", move |secs| {
            wormlog_appends(k, secs, wormlog_options(Durability::Sync))
        }));
        #[cfg(feature = "prealloc")]
        cases.push(case(
            &format!("sync/{k} wormlog preallocate"),
            "rec/s",
            move |secs| wormlog_appends(k, secs, prealloc(wormlog_options(Durability::Sync))),
        ));
        if k > 1 {
            cases.push(case(
                &format!("sync/{k} group-commit (pre-zeroed)"),
                "rec/s",
                move |secs| {
                    let dir = tempfile::tempdir().unwrap();
                    let g = GroupCommit {
                        file: Zeroed::new(dir.path()),
                        st: Mutex::new(GroupState::default()),
                        done: Condvar::new(),
                    };
                    let payload = vec![b'a'; RECORD];
                    run_threads(k, secs, || {
                        g.append(&payload);
                        1
                    })
                },
            ));
        }
        cases.push(case(&format!("sync/{k} naive"), "rec/s", move |secs| {
            let dir = tempfile::tempdir().unwrap();
            let n = Naive::new(dir.path());
            let payload = vec![b'a'; RECORD];
            run_threads(k, secs, || {
                let mut buf = Vec::with_capacity(RECORD + 8);
                frame(&mut buf, &payload);
                let mut f = n.file.lock();
                f.write_all(&buf).unwrap();
                f.sync_data().unwrap();
                1
            })
        }));
    }
}

fn batch_cases(cases: &mut Vec<Case>) {
    cases.push(case("batch512/1 ceiling (growing file)", "rec/s", |secs| {
        let dir = tempfile::tempdir().unwrap();
        let f = Mutex::new(File::create(dir.path().join("batch")).unwrap());
        let payload = vec![b'a'; RECORD];
        run_threads(1, secs, || {
            let mut buf = Vec::with_capacity(BATCH * (RECORD + 8));
            for _ in 0..BATCH {
                frame(&mut buf, &payload);
            }
            let mut f = f.lock();
            f.write_all(&buf).unwrap();
            f.sync_data().unwrap();
            BATCH as u64
        })
    }));
    cases.push(case("batch512/1 ceiling (pre-zeroed)", "rec/s", |secs| {
        let dir = tempfile::tempdir().unwrap();
        let z = Zeroed::new(dir.path());
        let payload = vec![b'a'; RECORD];
        run_threads(1, secs, || {
            let mut buf = Vec::with_capacity(BATCH * (RECORD + 8));
            for _ in 0..BATCH {
                frame(&mut buf, &payload);
            }
            z.write_sync(&buf);
            BATCH as u64
        })
    }));
    cases.push(case("batch512/1 wormlog sync", "rec/s", |secs| {
        wormlog_batches(secs, wormlog_options(Durability::Sync))
    }));
    #[cfg(feature = "prealloc")]
    cases.push(case(
        "batch512/1 wormlog sync preallocate",
        "rec/s",
        |secs| wormlog_batches(secs, prealloc(wormlog_options(Durability::Sync))),
    ));
}

fn buffered_cases(cases: &mut Vec<Case>) {
    cases.push(case("buffered/1 plain write loop", "rec/s", |secs| {
        let dir = tempfile::tempdir().unwrap();
        let f = Mutex::new(File::create(dir.path().join("plain")).unwrap());
        let payload = vec![b'a'; RECORD];
        run_threads(1, secs, || {
            let mut buf = Vec::with_capacity(RECORD + 8);
            frame(&mut buf, &payload);
            f.lock().write_all(&buf).unwrap();
            1
        })
    }));
    cases.push(case("buffered/1 wormlog", "rec/s", |secs| {
        wormlog_appends(1, secs, wormlog_options(Durability::Buffered))
    }));
    // Sealing's cost to appends: small segments so that several roll and
    // seal during the run, background sealing against none.
    for (name, sealing) in [
        ("sealing on", Sealing::Background),
        ("sealing off", Sealing::Manual),
    ] {
        cases.push(case(
            &format!("buffered/1 wormlog 8 MiB segments, {name}"),
            "rec/s",
            move |secs| {
                let o = wormlog_options(Durability::Buffered)
                    .segment_bytes_max(8 << 20)
                    .sealing(sealing);
                wormlog_appends(1, secs, o)
            },
        ));
        cases.push(case(
            &format!("sync/16 wormlog 8 MiB segments, {name}"),
            "rec/s",
            move |secs| {
                let o = wormlog_options(Durability::Sync)
                    .segment_bytes_max(8 << 20)
                    .sealing(sealing);
                wormlog_appends(16, secs, o)
            },
        ));
    }
}

/// The shipping rows (feature `s3`): appends with the writer's shipper on
/// against off (8 MiB segments sealing in the background, so that several
/// ship during a row), and `ship` of the sealed demo log: its upload rate
/// and the CPU it takes per second of wall time (near 100% per core would
/// mean CPU, not the network, bounds it).
#[cfg(feature = "s3")]
fn ship_cases(cases: &mut Vec<Case>, demo: &'static Path) {
    use std::sync::atomic::AtomicU32;
    use wormlog_s3::S3Target;
    static N: AtomicU32 = AtomicU32::new(0);
    fn target() -> S3Target {
        let endpoint = std::env::var("WORMLOG_TEST_S3_ENDPOINT")
            .expect("the ship rows need WORMLOG_TEST_S3_ENDPOINT (and AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
        let creds = rusty_s3::Credentials::new(
            std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
        );
        let bucket = format!("wormlog-compare-{}", std::process::id());
        let t = S3Target::new(
            &format!("s3://{bucket}/run-{}", N.fetch_add(1, Ordering::SeqCst)),
            &endpoint,
            "us-east-1",
            creds,
        )
        .unwrap()
        .retain_for(Duration::from_secs(3600));
        static CREATED: std::sync::Once = std::sync::Once::new();
        CREATED.call_once(|| t.create_bucket_with_object_lock().unwrap());
        t
    }
    // Off, sealed segments only, and (issue 28) the tail too every second.
    for (name, on) in [
        ("shipping on", 1),
        ("shipping off", 0),
        ("tail shipping every 1 s", 2),
    ] {
        for (k, durability) in [(1, Durability::Buffered), (16, Durability::Sync)] {
            let d = if k == 1 { "buffered" } else { "sync" };
            cases.push(case(
                &format!("{d}/{k} wormlog 8 MiB segments, {name}"),
                "rec/s",
                move |secs| {
                    let mut o = wormlog_options(durability).segment_bytes_max(8 << 20);
                    if on == 1 {
                        o = o.shipping(wormlog::Shipping::new(target()));
                    } else if on == 2 {
                        let tail = target().with_tail(true);
                        o = o.shipping(
                            wormlog::Shipping::new(tail).interval(Duration::from_secs(1)),
                        );
                    }
                    wormlog_appends(k, secs, o)
                },
            ));
        }
    }
    fn cpu_ticks() -> u64 {
        // utime + stime of this process, in clock ticks (fields 14 and 15).
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }
    /// The sealed files and the Merkle tree (whose full tiles over them go
    /// too with `tiles`, 8 KiB an object): the rate is of every byte
    /// uploaded.
    fn ship_demo(demo: &Path, tiles: bool) -> (f64, f64) {
        let copy = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(demo).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".wlog.zst")
                || name.starts_with("wormlog.tile")
                || name == "wormlog.tree"
            {
                std::fs::copy(&p, copy.path().join(&name)).unwrap();
            }
        }
        let (t0, c0) = (Instant::now(), cpu_ticks());
        let r = wormlog_s3::ship(copy.path(), &target().with_tiles(tiles), None).unwrap();
        let wall = t0.elapsed().as_secs_f64();
        let cpu = (cpu_ticks() - c0) as f64 / 100.0;
        let bytes: u64 = r.uploaded.iter().map(|o| o.bytes).sum();
        (bytes as f64 / 1e6 / wall, 100.0 * cpu / wall)
    }
    let last = std::sync::Arc::new(Mutex::new(0.0));
    let cpu = last.clone();
    cases.push(case("ship upload (sealed demo log)", "MB/s", move |_| {
        let (rate, cpu) = ship_demo(demo, false);
        *last.lock() = cpu;
        rate
    }));
    // The CPU share of the upload just measured (this row runs right after).
    cases.push(case("ship upload CPU use (same run)", "%", move |_| {
        *cpu.lock()
    }));
    cases.push(case(
        "ship upload with tiles (sealed demo log)",
        "MB/s",
        move |_| ship_demo(demo, true).0,
    ));
}

fn event(i: u64, lines: &[&str]) -> Vec<u8> {
    let n = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let detail = lines[(n >> 7) as usize % lines.len()].replace('"', "'");
    format!(
        r#"{{"time_ns":{},"actor":"user{}","action":"{}","resource":"db/table{}","src_ip":"10.0.{}.{}","outcome":"{}","detail":"{}"}}"#,
        1_795_000_000_000_000_000u64 + i * 1_000_000,
        (n >> 3) % 50,
        ["read", "update", "login", "export"][(n >> 11) as usize % 4],
        (n >> 17) % 20,
        (n >> 23) % 256,
        (n >> 31) % 256,
        ["success", "failure"][(n >> 41) as usize % 2],
        detail.trim_end()
    )
    .into_bytes()
}

/// A sealed log of realistic audit events (as `wormctl demo` writes),
/// about `bytes` of segments, for the read-side rows.
fn demo_log(dir: &Path, bytes: u64) {
    demo_log_unsealed(dir, bytes);
    let log = Log::open(
        dir,
        Options::default()
            .segment_bytes_max(32 << 20)
            .sealing(Sealing::Manual),
    )
    .unwrap();
    log.seal().unwrap();
    log.close().unwrap();
}

/// The same log with its closed segments left raw.
fn demo_log_unsealed(dir: &Path, bytes: u64) {
    let lines: Vec<&str> = SSH.lines().chain(LINUX.lines()).collect();
    let log = Log::open(
        dir,
        Options::default()
            .durability(Durability::Buffered)
            .segment_bytes_max(32 << 20)
            .sealing(Sealing::Manual),
    )
    .unwrap();
    let (mut written, mut i) = (0u64, 0u64);
    while written < bytes {
        let batch: Vec<Vec<u8>> = (0..256)
            .map(|_| {
                i += 1;
                event(i, &lines)
            })
            .collect();
        written += batch.iter().map(|e| e.len() as u64 + 72).sum::<u64>();
        log.append_batch(&batch).unwrap();
    }
    log.close().unwrap();
}

/// Runs `f` with this thread (and the threads it starts) held to the
/// first `n` cores it may use, then lets it use all of them again.
fn on_cores(n: usize, f: impl FnOnce() -> f64) -> f64 {
    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
    let all = sched_getaffinity(None).unwrap();
    let mut some = CpuSet::new();
    let cores = (0..CpuSet::MAX_CPU).filter(|c| all.is_set(*c));
    for c in cores.take(n) {
        some.set(c);
    }
    sched_setaffinity(None, &some).unwrap();
    let v = f();
    sched_setaffinity(None, &all).unwrap();
    v
}

fn read_cases(cases: &mut Vec<Case>, dir: &'static Path) {
    let verify = move || {
        let log = Log::open_read_only(dir, Options::default()).unwrap();
        let start = Instant::now();
        let report = log.verify().unwrap();
        report.bytes as f64 / start.elapsed().as_secs_f64() / 1e6
    };
    cases.push(case("verify (demo log, sealed)", "MB/s", move |_| verify()));
    // Verify checks segments on as many threads as it may use cores.
    for n in [1, 2] {
        cases.push(case(
            &format!("verify (demo log, sealed) on {n} core(s)"),
            "MB/s",
            move |_| on_cores(n, verify),
        ));
    }
    cases.push(case("full scan (demo log, sealed)", "MB/s", move |_| {
        let log = Log::open_read_only(dir, Options::default()).unwrap();
        let start = Instant::now();
        let mut bytes = 0u64;
        for r in log.read(..).unwrap() {
            bytes += r.unwrap().payload().len() as u64 + 72;
        }
        bytes as f64 / start.elapsed().as_secs_f64() / 1e6
    }));
    // Sealing's level: input rate and size ratio on the same segments.
    for level in [1, 3] {
        cases.push(case(
            &format!("seal level {level} (demo events)"),
            "MB/s",
            move |_| {
                let dir = tempfile::tempdir().unwrap();
                demo_log_unsealed(dir.path(), 64 << 20);
                let options = Options::default()
                    .sealing(Sealing::Manual)
                    .segment_bytes_max(32 << 20)
                    .seal_level(level);
                let log = Log::open(dir.path(), options).unwrap();
                let raw: u64 = log
                    .segments()
                    .unwrap()
                    .iter()
                    .filter(|s| !s.active)
                    .map(|s| s.bytes_uncompressed)
                    .sum();
                let start = Instant::now();
                log.seal().unwrap();
                let secs = start.elapsed().as_secs_f64();
                let sealed: u64 = log
                    .segments()
                    .unwrap()
                    .iter()
                    .filter(|s| s.sealed)
                    .map(|s| s.bytes_on_disk)
                    .sum();
                eprintln!(
                    "      level {level}: size ratio {:.2}",
                    raw as f64 / sealed as f64
                );
                raw as f64 / secs / 1e6
            },
        ));
    }
    cases.push(case("blake3 one thread (64 MiB buffer)", "MB/s", |_| {
        let buf = vec![7u8; 64 << 20];
        let start = Instant::now();
        std::hint::black_box(blake3_hash(&buf));
        buf.len() as f64 / start.elapsed().as_secs_f64() / 1e6
    }));
}

fn blake3_hash(buf: &[u8]) -> [u8; 32] {
    *blake3::hash(buf).as_bytes()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn find(cases: &[Case], name: &str) -> Option<f64> {
    cases
        .iter()
        .find(|c| c.name == name && !c.values.is_empty())
        .map(|c| median(&c.values))
}

fn ratio(cases: &[Case], what: &str, of: &str, against: &str, target: &str) {
    if let (Some(a), Some(b)) = (find(cases, of), find(cases, against)) {
        println!("| {what} | {:.2}x | {target} |", a / b,);
    }
}

fn main() {
    let secs = Duration::from_secs_f64(
        std::env::var("COMPARE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0),
    );
    let repeats: usize = std::env::var("COMPARE_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("COMPARE_ONLY").ok();

    let demo = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let demo_path: &'static Path = Box::leak(demo.path().to_path_buf().into_boxed_path());

    let mut cases = Vec::new();
    sync_cases(&mut cases);
    batch_cases(&mut cases);
    buffered_cases(&mut cases);
    read_cases(&mut cases, demo_path);
    cost::cost_cases(&mut cases);
    proofs::proof_cases(&mut cases);
    server::server_cases(&mut cases);
    #[cfg(feature = "peers")]
    peers::peer_cases(&mut cases);
    #[cfg(feature = "s3")]
    ship_cases(&mut cases, demo_path);
    if let Some(only) = &only {
        // Several filters separated by `|`: rows matching any.
        cases.retain(|c| only.split('|').any(|o| c.name.contains(o)));
    }
    if cases.iter().any(|c| c.unit == "MB/s" || c.unit == "%") {
        eprintln!("building a 256 MB demo log for the read rows ...");
        demo_log(demo_path, 256 << 20);
    }
    eprintln!(
        "{} rows x {repeats} repeats x {:.1} s, {RECORD} B records, interleaved",
        cases.len(),
        secs.as_secs_f64()
    );
    for rep in 0..repeats {
        for c in cases.iter_mut() {
            // Each row starts with no dirty pages of the row before it being
            // written back under it.
            rustix::fs::sync();
            std::thread::sleep(Duration::from_millis(200));
            let v = (c.run)(secs);
            eprintln!(
                "  [{}/{repeats}] {:<55} {:>12.0} {}",
                rep + 1,
                c.name,
                v,
                c.unit
            );
            c.values.push(v);
        }
    }
    println!("\n| row | median | min | max | unit |\n|---|---|---|---|---|");
    for c in &cases {
        let min = c.values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = c.values.iter().copied().fold(0.0, f64::max);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} |",
            c.name,
            median(&c.values),
            min,
            max,
            c.unit
        );
    }
    print_ratios(&cases);
}

/// The ratios of the medians of rows measured in the same run, each with
/// its target.
fn print_ratios(cases: &[Case]) {
    println!("\n| ratio (medians, same run) | value | target |\n|---|---|---|");
    proofs::print_ratios(cases);
    server::print_ratios(cases);
    for p in ["", " preallocate"] {
        ratio(
            cases,
            &format!("sync/1{p} / ceiling"),
            &format!("sync/1 wormlog{p}"),
            "sync/1 ceiling (record+fdatasync, pre-zeroed)",
            ">= 0.90",
        );
        for k in [16, 64] {
            ratio(
                cases,
                &format!("sync/{k}{p} / group-commit"),
                &format!("sync/{k} wormlog{p}"),
                &format!("sync/{k} group-commit (pre-zeroed)"),
                if k == 16 {
                    ">= 2 (okaywal ~ group-commit)"
                } else {
                    ">= 2.5 best peer"
                },
            );
        }
        let ceiling = if p.is_empty() {
            "growing file"
        } else {
            "pre-zeroed"
        };
        ratio(
            cases,
            &format!("batch512{p} / batch ceiling ({ceiling})"),
            &format!("batch512/1 wormlog sync{p}"),
            &format!("batch512/1 ceiling ({ceiling})"),
            ">= 0.70",
        );
    }
    ratio(
        cases,
        "buffered/1 / plain write loop",
        "buffered/1 wormlog",
        "buffered/1 plain write loop",
        ">= 1.2 stretch (and >= 1M rec/s)",
    );
    ratio(
        cases,
        "buffered/1 sealing on / off",
        "buffered/1 wormlog 8 MiB segments, sealing on",
        "buffered/1 wormlog 8 MiB segments, sealing off",
        ">= 0.90",
    );
    ratio(
        cases,
        "sync/16 sealing on / off",
        "sync/16 wormlog 8 MiB segments, sealing on",
        "sync/16 wormlog 8 MiB segments, sealing off",
        ">= 0.90",
    );
    for (k, d) in [(1, "buffered"), (16, "sync")] {
        ratio(
            cases,
            &format!("{d}/{k} shipping on / off"),
            &format!("{d}/{k} wormlog 8 MiB segments, shipping on"),
            &format!("{d}/{k} wormlog 8 MiB segments, shipping off"),
            "within noise (~1.0)",
        );
        ratio(
            cases,
            &format!("{d}/{k} tail shipping every 1 s / off"),
            &format!("{d}/{k} wormlog 8 MiB segments, tail shipping every 1 s"),
            &format!("{d}/{k} wormlog 8 MiB segments, shipping off"),
            ">= 0.9 (issue 28)",
        );
    }
    ratio(
        cases,
        "ship upload with tiles / without",
        "ship upload with tiles (sealed demo log)",
        "ship upload (sealed demo log)",
        "the cost of a PUT per 256 records",
    );
    cost::cost_ratios(cases);
    #[cfg(feature = "peers")]
    peers::peer_ratios(cases);
    ratio(
        cases,
        "verify on 2 cores / on 1 core",
        "verify (demo log, sealed) on 2 core(s)",
        "verify (demo log, sealed) on 1 core(s)",
        ">= 1.8",
    );
    ratio(
        cases,
        "verify / one-thread blake3",
        "verify (demo log, sealed)",
        "blake3 one thread (64 MiB buffer)",
        "verify >= 1000 MB/s",
    );
}
