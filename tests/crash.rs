//! Crash simulation on the in-memory storage: at thousands of crash points,
//! with unsynced bytes lost, kept in part, or torn by 512-byte sectors, the
//! reopened log holds every durable record, is a prefix of what was
//! appended, verifies, and is never reported as corrupt.
//!
//! The default run covers a few thousand crash points; set
//! WORMLOG_CRASH_RUNS to run more, and WORMLOG_SEED to replay one run.

mod common;
use common::*;
use std::time::Duration;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Durability, Log, Sealing};

const TEARS: [Tear; 4] = [
    Tear::LoseUnsynced,
    Tear::KeepUnsynced,
    Tear::KeepPrefix,
    Tear::Sectors,
];

struct Outcome {
    attempted: Vec<Vec<u8>>,
    /// How many of `attempted` were durable when the crash came.
    durable: usize,
    /// Whether a sealed file (or its temporary) existed at the crash.
    sealed: bool,
}

/// Appends a random workload until the storage "crashes".
fn run_until_crash(
    storage: &MemStorage,
    durability: Durability,
    preallocate: bool,
    rng: &mut Rng,
) -> Outcome {
    let mut out = Outcome {
        attempted: Vec::new(),
        durable: 0,
        sealed: false,
    };
    let opts = mem_options(storage)
        .sealing(Sealing::Inline)
        .durability(durability)
        .preallocate(preallocate)
        .segment_bytes_max(4096);
    let Ok(log) = Log::open(mem_dir(), opts) else {
        return out;
    };
    let mut acked = 0;
    for _ in 0..40 {
        let n = 1 + rng.below(4) as usize;
        let batch: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = rng.below(700) as usize;
                let tag = out.attempted.len() as u32;
                let mut p = tag.to_le_bytes().to_vec();
                p.resize(len.max(4), (tag % 251) as u8);
                p
            })
            .collect();
        out.attempted.extend(batch.iter().cloned());
        match log.append_batch(&batch) {
            Ok(_) => acked += n,
            Err(_) => break,
        }
        if durability == Durability::Sync {
            out.durable = acked;
        } else if rng.below(4) == 0 {
            if log.sync().is_err() {
                break;
            }
            out.durable = acked;
        }
    }
    out
}

/// Checks the recovered log; returns whether recovery cut a torn tail.
fn check_recovered(storage: &MemStorage, out: &Outcome, preallocate: bool, context: &str) -> bool {
    let options = mem_options(storage)
        .sealing(Sealing::Inline)
        .preallocate(preallocate);
    let log =
        Log::open(mem_dir(), options).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    let got = user_payloads(&log);
    assert!(
        got.len() >= out.durable,
        "{context}: {} records recovered, {} were durable",
        got.len(),
        out.durable
    );
    assert!(
        got.len() <= out.attempted.len() && got[..] == out.attempted[..got.len()],
        "{context}: recovered records are not a prefix of those appended"
    );
    log.verify()
        .unwrap_or_else(|e| panic!("{context}: verify failed: {e}"));
    let r = log.append(b"after recovery").unwrap();
    assert_eq!(r.seq, log.head().seq);
    assert!(
        log.seal_error().is_none(),
        "{context}: {:?}",
        log.seal_error()
    );
    all_records(&log)
        .iter()
        .any(|r| r.kind() == wormlog::RecordKind::TailCut)
}

fn crash_runs(test: &str, durability: Durability, preallocate: bool, default_runs: u64) {
    let runs = std::env::var("WORMLOG_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_runs);
    let seed = seed(test);
    let mut rng = Rng(seed);
    let (mut cuts, mut with_durable, mut sealed) = (0, 0, 0);
    for run in 0..runs {
        let run_seed = rng.next_u64();
        let mut r = Rng(run_seed);
        let storage = MemStorage::new();
        // Crash points cover creation, appends, syncs and segment rolls.
        let crash_at = r.below(160);
        storage.crash_after(crash_at);
        let mut out = run_until_crash(&storage, durability, preallocate, &mut r);
        out.sealed = storage
            .file_paths()
            .iter()
            .any(|p| p.to_string_lossy().contains(".zst"));
        let tear = TEARS[r.below(4) as usize];
        let image = storage.crash_image(tear, r.next_u64());
        let context = format!("{test} run {run} (seed {seed}, run seed {run_seed}, crash after {crash_at} ops, {tear:?})");
        if r.below(3) == 0 {
            // Crash again during recovery itself, then recover from that.
            let image2 = image.clone();
            image2.crash_after(image2.mutations() + r.below(12));
            drop(Log::open(
                mem_dir(),
                mem_options(&image2)
                    .sealing(Sealing::Inline)
                    .preallocate(preallocate),
            ));
            let tear2 = TEARS[r.below(4) as usize];
            let image3 = image2.crash_image(tear2, r.next_u64());
            cuts += u64::from(check_recovered(
                &image3,
                &out,
                preallocate,
                &format!("{context}, then crashed in recovery ({tear2:?})"),
            ));
        } else {
            cuts += u64::from(check_recovered(&image, &out, preallocate, &context));
        }
        with_durable += u64::from(out.durable > 0);
        sealed += u64::from(out.sealed);
    }
    eprintln!(
        "{test}: {runs} crash points, {cuts} torn tails cut, {with_durable} runs with durable \
         records, {sealed} crashed after sealing began"
    );
    assert!(
        sealed * 4 >= runs,
        "only {sealed} of {runs} runs reached sealing"
    );
    // The workload must reach the cases it is meant to test.
    assert!(cuts * 20 >= runs, "only {cuts} of {runs} runs tore a tail");
    assert!(
        with_durable * 2 >= runs,
        "only {with_durable} of {runs} runs had durable records"
    );
}

#[test]
fn crash_in_sync_mode_loses_no_acknowledged_record() {
    crash_runs("sync", Durability::Sync, false, 3000);
}

#[test]
fn crash_in_batched_mode_keeps_a_verified_prefix_with_every_synced_record() {
    crash_runs(
        "batched",
        Durability::Batched {
            max_delay: Duration::from_secs(3600),
        },
        false,
        1500,
    );
}

#[test]
fn crash_in_buffered_mode_keeps_a_verified_prefix_with_every_synced_record() {
    crash_runs("buffered", Durability::Buffered, false, 1500);
}

/// Written in place into zeros (`Options::preallocate`): a crash leaves a
/// zero tail, and overwrites of zeros that were synced may come back as
/// zeros, sector by sector.
#[test]
fn crash_with_preallocated_segments_loses_no_acknowledged_record() {
    crash_runs("sync-preallocated", Durability::Sync, true, 2000);
}

#[test]
fn crash_in_buffered_mode_with_preallocated_segments_keeps_a_verified_prefix() {
    crash_runs("buffered-preallocated", Durability::Buffered, true, 1000);
}
