//! Sealing, reading from sealed segments, and verification, on realistic
//! audit events (JSON with real OpenSSH/Linux log lines as details).
//!
//!     cargo bench --bench sealed
//!     WORMLOG_BENCH_QUICK=1 cargo bench --bench sealed   # smaller log, shorter run
//!
//! Besides criterion's timings it prints, measured in the same run: the
//! sealed size against `zstd -3` of the same raw segment (when the zstd tool
//! is installed), and the cache's size after a full scan.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::Path;
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options, Sealing};

const SSH: &str = include_str!("../tools/wormctl/data/OpenSSH_2k.log");
const LINUX: &str = include_str!("../tools/wormctl/data/Linux_2k.log");

fn quick() -> bool {
    std::env::var_os("WORMLOG_BENCH_QUICK").is_some()
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

/// A log in `dir` holding about `bytes` of events in segments of
/// `segment_bytes`, all closed segments still raw.
fn build(dir: &Path, bytes: u64, segment_bytes: u64) -> Log {
    let lines: Vec<&str> = SSH.lines().chain(LINUX.lines()).collect();
    let log = Log::open(
        dir,
        Options::default()
            .durability(Durability::Buffered)
            .sealing(Sealing::Manual)
            .segment_bytes_max(segment_bytes),
    )
    .unwrap();
    let mut written = 0u64;
    let mut i = 0u64;
    let mut batch = Vec::with_capacity(256);
    while written < bytes {
        batch.clear();
        for _ in 0..256 {
            let e = event(i, &lines);
            written += e.len() as u64 + 72;
            batch.push(e);
            i += 1;
        }
        log.append_batch(&batch).unwrap();
    }
    log.sync().unwrap();
    log
}

fn seal(c: &mut Criterion) {
    let segment: u64 = if quick() { 8 << 20 } else { 32 << 20 };
    // Size against the stock tool, once.
    {
        let dir = tempfile::tempdir().unwrap();
        let log = build(dir.path(), segment + (1 << 20), segment);
        let raw = log.segments().unwrap()[0].path.clone();
        let zstd3 = std::process::Command::new("zstd")
            .args(["-3", "-c", "-q"])
            .arg(&raw)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout.len() as u64);
        let raw_len = std::fs::metadata(&raw).unwrap().len();
        log.seal().unwrap();
        let sealed = log.segments().unwrap()[0].bytes_on_disk;
        match zstd3 {
            Some(z) => eprintln!(
                "seal size: {raw_len} raw bytes -> wormlog {sealed} (ratio {:.2}), zstd -3 {z} (ratio {:.2}); wormlog/zstd = {:.3}",
                raw_len as f64 / sealed as f64,
                raw_len as f64 / z as f64,
                sealed as f64 / z as f64
            ),
            None => eprintln!("seal size: {raw_len} -> {sealed} (zstd tool not installed: no comparison)"),
        }
    }
    let mut g = c.benchmark_group("seal");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(if quick() { 2 } else { 8 }));
    g.throughput(Throughput::Bytes(segment));
    g.bench_function("seal_segment_level3", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let log = build(dir.path(), segment + (1 << 20), segment);
                // Roll the active segment first, outside the timing.
                let start = Instant::now();
                log.seal().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn read_and_verify(c: &mut Criterion) {
    let total: u64 = if quick() { 48 << 20 } else { 256 << 20 };
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path(), total, 32 << 20);
    log.seal().unwrap();
    let head = log.head().seq;
    let sealed_last = log
        .segments()
        .unwrap()
        .iter()
        .filter(|s| s.sealed)
        .map(|s| s.last_seq)
        .max()
        .unwrap();

    let mut g = c.benchmark_group("sealed_read");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(if quick() { 1 } else { 4 }));
    // Warm: seqs within one frame that is already cached.
    let warm = sealed_last / 2;
    log.get(warm).unwrap();
    let mut k = 0u64;
    g.bench_function("get_warm", |b| {
        b.iter(|| {
            k = (k + 1) % 64;
            log.get(warm + k).unwrap()
        })
    });
    // Cold: a log whose cache holds nothing, reading random seqs.
    drop(log);
    let cold = Log::open(
        dir.path(),
        Options::default()
            .sealing(Sealing::Manual)
            .sealed_cache_bytes(0),
    )
    .unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    g.bench_function("get_cold", |b| {
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cold.get(1 + x % sealed_last).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("scan_verify");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(if quick() { 2 } else { 10 }));
    let bytes: u64 = cold
        .segments()
        .unwrap()
        .iter()
        .map(|s| s.bytes_uncompressed)
        .sum();
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("verify_log", |b| b.iter(|| cold.verify().unwrap()));
    g.bench_function("full_scan", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for r in cold.read(..).unwrap() {
                r.unwrap();
                n += 1;
            }
            assert_eq!(n, cold.head().seq);
        })
    });
    g.finish();
    let stats = cold.cache_stats();
    eprintln!(
        "log: {bytes} uncompressed bytes, {head} records; cache after scans: {} of {} bytes",
        stats.bytes, stats.capacity
    );
}

criterion_group!(benches, seal, read_and_verify);
criterion_main!(benches);
