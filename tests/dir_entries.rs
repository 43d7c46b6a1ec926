//! Directory entries are volatile until their directory is synced. On crash
//! images of the memory storage that lose every creation, rename and removal
//! no `sync_dir` covered (or a random per-name prefix of them), at crash
//! points all through opening, appending, rolling, sealing, retention, legal
//! holds and reopening: every record acknowledged under Sync durability is
//! still there, a durably dropped segment does not come back, an
//! acknowledged legal hold is as it was left, and the log reopens, verifies
//! and takes appends. Before the memory storage modelled directory entries,
//! removing any of the engine's directory fsyncs failed no test.
//!
//! WORMLOG_CRASH_RUNS sets the number of runs, WORMLOG_SEED replays one.

mod common;
use common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wormlog::storage::{Entries, MemStorage, Tear};
use wormlog::{Durability, Log, Options, Retention, Sealing};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * SEC;

// Not Tear::Sectors: recovery refuses an anchor file whose torn last entry
// has a zeroed sector over its length field ("entry length 0 is invalid"),
// whatever happens to directory entries; tests/crash.rs tears segments by
// sectors.
const TEARS: [Tear; 3] = [Tear::LoseUnsynced, Tear::KeepUnsynced, Tear::KeepPrefix];

fn options(storage: &MemStorage, clock: wormlog::Clock) -> Options {
    mem_options(storage)
        .durability(Durability::Sync)
        .sealing(Sealing::Manual)
        .segment_bytes_max(4096)
        .seal_frame_bytes(4096)
        .clock(clock)
        .retention(Retention::default().max_age(Duration::from_secs(20)))
}

/// What the workload was told before the crash.
#[derive(Default)]
struct Acked {
    attempted: Vec<Vec<u8>>,
    /// Records acknowledged, all durable under Sync durability.
    acked: usize,
    /// Records dropped by the last retention run that returned Ok.
    dropped: usize,
    /// Records that existed when the last retention run began: no more can
    /// be gone from the front.
    droppable: usize,
    /// The legal hold as last acknowledged; None while a change of it was
    /// under way at the crash.
    hold: Option<bool>,
    now: u64,
}

/// The index of a payload in `attempted` (its first four bytes).
fn tag(payload: &[u8]) -> usize {
    u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize
}

/// A random workload over every kind of directory change the engine
/// makes, until it ends or the storage "crashes".
fn run_until_crash(storage: &MemStorage, rng: &mut Rng) -> Acked {
    let mut out = Acked {
        hold: Some(false),
        ..Acked::default()
    };
    let (now, clock) = manual_clock(T0);
    let Ok(mut log) = Log::open(mem_dir(), options(storage, clock.clone())) else {
        return out;
    };
    for _ in 0..50 {
        now.fetch_add(SEC, Ordering::SeqCst);
        out.now = now.load(Ordering::SeqCst);
        let ok = match rng.below(12) {
            0..=6 => {
                let batch: Vec<Vec<u8>> = (0..1 + rng.below(3))
                    .map(|_| {
                        let t = out.attempted.len() as u32;
                        let mut p = t.to_le_bytes().to_vec();
                        p.resize(4 + rng.below(600) as usize, (t % 251) as u8);
                        out.attempted.push(p.clone());
                        p
                    })
                    .collect();
                let ok = log.append_batch(&batch).is_ok();
                if ok {
                    out.acked = out.attempted.len();
                }
                ok
            }
            7 => log.seal().is_ok(),
            8 => {
                out.droppable = out.attempted.len();
                let ok = log.apply_retention(out.now).is_ok();
                if ok {
                    out.dropped = user_payloads(&log)
                        .first()
                        .map_or(out.attempted.len(), |p| tag(p));
                }
                ok
            }
            9 => {
                let held = out.hold == Some(true);
                out.hold = None;
                let ok = if held {
                    log.clear_legal_hold().is_ok()
                } else {
                    log.set_legal_hold("case 7").is_ok()
                };
                if ok {
                    out.hold = Some(!held);
                }
                ok
            }
            _ => {
                drop(log);
                match Log::open(mem_dir(), options(storage, clock.clone())) {
                    Ok(l) => {
                        log = l;
                        true
                    }
                    Err(_) => return out,
                }
            }
        };
        if !ok {
            break;
        }
    }
    out
}

fn check_recovered(image: &MemStorage, acked: &Acked, context: &str) {
    let (_, clock) = manual_clock(acked.now + SEC);
    let log = Log::open(mem_dir(), options(image, clock))
        .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    let got = user_payloads(&log);
    if let Some(first) = got.first() {
        let (start, end) = (tag(first), tag(first) + got.len());
        assert!(
            end <= acked.attempted.len() && got[..] == acked.attempted[start..end],
            "{context}: recovered records are not a run of those appended"
        );
        assert!(
            end >= acked.acked,
            "{context}: {} records acknowledged, the log ends at {end}",
            acked.acked
        );
        assert!(
            start >= acked.dropped,
            "{context}: retention dropped the records before {}, the log starts at {start}",
            acked.dropped
        );
        assert!(
            start <= acked.droppable,
            "{context}: the log starts at {start}, past what retention could drop ({})",
            acked.droppable
        );
    } else {
        assert!(
            acked.acked <= acked.droppable,
            "{context}: no records left, {} acknowledged",
            acked.acked
        );
    }
    if let Some(held) = acked.hold {
        assert_eq!(
            log.legal_hold().unwrap().is_some(),
            held,
            "{context}: the acknowledged legal hold changed"
        );
    }
    log.verify()
        .unwrap_or_else(|e| panic!("{context}: verify failed: {e}"));
    log.append(b"after recovery")
        .unwrap_or_else(|e| panic!("{context}: append after recovery failed: {e}"));
}

#[test]
fn acknowledged_records_and_changes_survive_crashes_that_lose_unsynced_directory_entries() {
    let runs = std::env::var("WORMLOG_CRASH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000u64);
    let seed = seed("dir_entries");
    let mut rng = Rng(seed);
    let (mut with_unsynced, mut images) = (0, 0);
    for run in 0..runs {
        let run_seed = rng.next_u64();
        // The same workload run to its end says how many calls a crash
        // point can fall among.
        let full = MemStorage::new();
        run_until_crash(&full, &mut Rng(run_seed));
        let mut r = Rng(run_seed);
        let crash_at = rng.below(full.mutations() + 1);
        let storage = MemStorage::new();
        storage.crash_after(crash_at);
        let acked = run_until_crash(&storage, &mut r);
        with_unsynced += u64::from(storage.unsynced_entries() > 0);

        for (i, entries) in [Entries::LoseUnsynced, Entries::Random, Entries::Random]
            .into_iter()
            .enumerate()
        {
            let tear = TEARS[rng.below(3) as usize];
            let image_seed = rng.next_u64();
            let image = storage.crash_image_with(tear, entries, image_seed);
            let context = format!(
                "run {run} image {i} (seed {seed}, run seed {run_seed}, crash after {crash_at} \
                 calls, {tear:?}, entries {entries:?}, image seed {image_seed})"
            );
            images += 1;

            if rng.below(3) == 0 {
                // Crash again while recovery itself changes the directory.
                image.crash_after(image.mutations() + rng.below(10));
                let (_, clock) = manual_clock(acked.now + SEC);
                drop(Log::open(mem_dir(), options(&image, clock)));
                let again = image.crash_image_with(tear, entries, image_seed ^ 1);
                check_recovered(&again, &acked, &format!("{context}, crashed in recovery"));
            } else {
                check_recovered(&image, &acked, &context);
            }
        }
    }
    eprintln!(
        "dir_entries: {runs} runs, {images} crash images, {with_unsynced} crashes with \
         unsynced directory entries"
    );
    assert!(
        with_unsynced * 20 >= runs,
        "only {with_unsynced} of {runs} crashes came with unsynced directory entries"
    );
}
