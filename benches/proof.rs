//! Merkle proof generation (format-spec.md §14): an inclusion proof for a
//! random record and a consistency proof between two random sizes, warm,
//! on a log of 10M records (WORMLOG_BENCH_QUICK: 200k). The goal:
//! under 1 ms per proof.
//!
//!     cargo bench --bench proof
//!     WORMLOG_BENCH_QUICK=1 cargo bench --bench proof

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options, Sealing};

fn quick() -> bool {
    std::env::var_os("WORMLOG_BENCH_QUICK").is_some()
}

fn proofs(c: &mut Criterion) {
    let records: u64 = if quick() { 200_000 } else { 10_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        Options::default()
            .durability(Durability::Buffered)
            .sealing(Sealing::Manual),
    )
    .unwrap();
    let start = Instant::now();
    let batch: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("event {i:08}").into_bytes())
        .collect();
    for _ in 0..records / 1000 {
        log.append_batch(&batch).unwrap();
    }
    let wrote = start.elapsed();
    let start = Instant::now();
    let head = log.tree_head().unwrap();
    eprintln!(
        "{} records written in {:.1} s; tree built from them in {:.1} s (root {})",
        head.size,
        wrote.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        wormlog::format::hex(head.root)
    );
    let size = head.size;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut g = c.benchmark_group("proof");
    g.sample_size(if quick() { 10 } else { 50 });
    g.measurement_time(Duration::from_secs(if quick() { 1 } else { 5 }));
    g.bench_function(format!("inclusion/{size}"), |b| {
        b.iter(|| {
            let seq = 1 + next() % size;
            let p = log.prove_inclusion(seq, size).unwrap();
            assert!(p.verify(&head.root));
        })
    });
    g.bench_function(format!("consistency/{size}"), |b| {
        b.iter(|| {
            let old = 1 + next() % size;
            log.prove_consistency(old, size).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, proofs);
criterion_main!(benches);
