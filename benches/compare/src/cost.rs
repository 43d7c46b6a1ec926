//! The engine's CPU per record against the work a record cannot avoid,
//! measured in the same run (issue 23): for a 256 B record, the keyed
//! BLAKE3 of its frame (the chain hash), the CRC-32 of its frame, its share
//! of the Merkle tree's SHA-256 (its leaf, and one interior node per leaf
//! amortized), and zstd level 3 of its bytes at sealing. The engine's rows
//! count the CPU time of every thread of the process (user + system, from
//! /proc/self/stat) over the run, divided by the records committed.

use crate::{case, run_threads, Case, BATCH, RECORD, SSH};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use wormlog::{Durability, Log, Options, Sealing};

/// CPU time of the whole process so far (every thread, user + system), in
/// ns. /proc/self/stat counts clock ticks (100 a second): a run of seconds
/// measures it to well under 1%.
pub fn process_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) may hold spaces: fields after its ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = f[11] + f[12];
    let hz = rustix::param::clock_ticks_per_second();
    ticks * 1_000_000_000 / hz
}

/// 256-byte payloads of real log lines (the demo's text, so that zstd
/// sees what it compresses in the engine's rows).
fn payloads(n: usize) -> Vec<Vec<u8>> {
    let lines: Vec<&str> = SSH.lines().collect();
    (0..n)
        .map(|i| {
            let mut p = format!("{{\"seq\":{i},\"line\":\"{}\"}}", lines[i % lines.len()]);
            p.truncate(RECORD);
            let mut p = p.into_bytes();
            p.resize(RECORD, b' ');
            p
        })
        .collect()
}

/// ns of one record's unavoidable work, measured over `secs`.
fn primitives_ns(secs: Duration) -> f64 {
    let records = payloads(4096);
    let key = blake3::derive_key("wormlog compare chain", b"key");
    // A frame: its 33-byte head (length, seq, time, kind, synced) then the
    // payload; the chain hash covers the previous hash and the frame.
    let mut frame = vec![0u8; 33 + RECORD];
    let mut prev = [0u8; 32];
    let mut n = 0u64;
    let start = Instant::now();
    let mut level = Vec::with_capacity(records.len());
    while start.elapsed() < secs {
        level.clear();
        for r in &records {
            frame[33..].copy_from_slice(r);
            frame[..8].copy_from_slice(&n.to_le_bytes());
            let mut h = blake3::Hasher::new_keyed(&key);
            h.update(&prev);
            h.update(&frame);
            prev = *h.finalize().as_bytes();
            std::hint::black_box(crc32fast::hash(&frame));
            let mut leaf = Sha256::new();
            leaf.update([0u8]);
            leaf.update(&frame[..17]);
            leaf.update(prev);
            level.push(leaf.finalize());
            n += 1;
        }
        // One interior node per leaf, amortized over the tree's levels.
        for pair in level.chunks(2) {
            let mut node = Sha256::new();
            node.update([1u8]);
            for h in pair {
                node.update(h);
            }
            std::hint::black_box(node.finalize());
        }
        // Sealing compresses every record's bytes once, at level 3.
        let mut raw = Vec::with_capacity(records.len() * frame.len());
        for r in &records {
            raw.extend_from_slice(&frame[..33]);
            raw.extend_from_slice(r);
        }
        std::hint::black_box(zstd::bulk::compress(&raw, 3).unwrap());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// CPU ns per record of `append_batch(512)` from one writer under
/// `durability`, every engine thread counted (sealing in the background
/// included: it runs in the run, on records the run wrote).
fn engine_cpu_ns(secs: Duration, durability: Durability) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .durability(durability)
        .sealing(Sealing::Background)
        .segment_bytes_max(8 << 20);
    let log = Log::open(dir.path(), options).unwrap();
    let batch = payloads(BATCH);
    let cpu = process_cpu_ns();
    let rate = run_threads(1, secs, || {
        log.append_batch(&batch).unwrap();
        BATCH as u64
    });
    // Sealing what the run filled is part of its cost.
    log.seal().unwrap();
    let used = process_cpu_ns() - cpu;
    log.close().unwrap();
    used as f64 / (rate * secs.as_secs_f64())
}

pub fn cost_cases(cases: &mut Vec<Case>) {
    cases.push(case(
        "cost: primitives per 256 B record (keyed BLAKE3, CRC-32, tree SHA-256, zstd-3)",
        "ns/rec",
        primitives_ns,
    ));
    cases.push(case(
        "cost: append_batch(512) sync, CPU of all threads",
        "ns/rec",
        |secs| engine_cpu_ns(secs, Durability::Sync),
    ));
    cases.push(case(
        "cost: append_batch(512) buffered, CPU of all threads",
        "ns/rec",
        |secs| engine_cpu_ns(secs, Durability::Buffered),
    ));
}

/// The ratios issue 23 asks for, from the medians of `cases`.
pub fn cost_ratios(cases: &[Case]) {
    for d in ["sync", "buffered"] {
        crate::ratio(
            cases,
            &format!("CPU per record, append_batch(512) {d} / primitives"),
            &format!("cost: append_batch(512) {d}, CPU of all threads"),
            "cost: primitives per 256 B record (keyed BLAKE3, CRC-32, tree SHA-256, zstd-3)",
            "<= 1.3",
        );
    }
}
