//! Append throughput: 256-byte and 4 KiB records from 1, 4, 16 and 64 threads in each
//! durability mode, beside a naive baseline measured in the same run: a
//! mutex around a file, one write and one fdatasync per record (what a
//! hand-rolled durable log does). Compare wormlog's Sync mode with it.
//!
//!     cargo bench --bench append
//!     WORMLOG_BENCH_QUICK=1 cargo bench --bench append   # a shorter run

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options};

const RECORD_SIZES: [usize; 2] = [256, 4096];
const THREADS: [usize; 4] = [1, 4, 16, 64];

/// Runs `iters` calls of `op` spread over `threads` threads; returns the wall time.
fn spread<F: Fn(u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let per = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let op = &op;
            s.spawn(move || {
                for i in 0..per {
                    op(t * per + i);
                }
            });
        }
    });
    start.elapsed()
}

struct NaiveLog {
    file: Mutex<File>,
}

impl NaiveLog {
    fn append(&self, payload: &[u8]) {
        let mut f = self.file.lock();
        f.write_all(&(payload.len() as u32).to_le_bytes()).unwrap();
        f.write_all(payload).unwrap();
        f.sync_data().unwrap();
    }
}

fn modes() -> [(&'static str, Durability); 3] {
    [
        ("sync", Durability::Sync),
        (
            "batched-10ms",
            Durability::Batched {
                max_delay: Duration::from_millis(10),
            },
        ),
        ("buffered", Durability::Buffered),
    ]
}

fn append(c: &mut Criterion) {
    for size in RECORD_SIZES {
        append_size(c, size);
    }
}

fn append_size(c: &mut Criterion, size: usize) {
    let quick = std::env::var_os("WORMLOG_BENCH_QUICK").is_some();
    let mut g = c.benchmark_group(format!("append_{size}B"));
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(if quick { 200 } else { 1000 }));
    g.measurement_time(Duration::from_secs(if quick { 1 } else { 4 }));
    let payload = vec![b'a'; size];
    for threads in THREADS {
        let dir = tempfile::tempdir().unwrap();
        let naive = NaiveLog {
            file: Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.path().join("naive.log"))
                    .unwrap(),
            ),
        };
        g.bench_function(BenchmarkId::new("naive-mutex-fdatasync", threads), |b| {
            b.iter_custom(|iters| spread(threads, iters, |_| naive.append(&payload)))
        });
        for (name, durability) in modes() {
            let dir = tempfile::tempdir().unwrap();
            let log = Log::open(dir.path(), Options::default().durability(durability)).unwrap();
            g.bench_function(BenchmarkId::new(format!("wormlog-{name}"), threads), |b| {
                b.iter_custom(|iters| {
                    spread(threads, iters, |_| {
                        log.append(&payload).unwrap();
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
