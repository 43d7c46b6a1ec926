//! Retention drops only whole expired sealed segments, oldest first, never
//! under the compliance floor or a legal hold, records each drop in the
//! anchor file and the chain, and leaves a log that reopens and verifies.

mod common;
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Error, Log, Options, RecordKind, Retention, Sealing, SystemEvent};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * SEC;

fn opts(storage: &MemStorage, clock: wormlog::Clock, retention: Retention) -> Options {
    mem_options(storage)
        .sealing(Sealing::Inline)
        .segment_bytes_max(16 << 10)
        .seal_frame_bytes(4096)
        .clock(clock)
        .retention(retention)
}

/// 1,000 records, one a second, over many sealed segments.
fn aged_log(retention: Retention) -> (MemStorage, Arc<AtomicU64>, Log) {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(T0);
    let log = Log::open(mem_dir(), opts(&storage, clock, retention)).unwrap();
    for i in 0..1000u64 {
        now.store(T0 + i * SEC, Ordering::SeqCst);
        log.append(format!("event {i:04} with some padding to fill segments").as_bytes())
            .unwrap();
    }
    (storage, now, log)
}

fn anchor_path() -> std::path::PathBuf {
    mem_dir().join("wormlog.anchor")
}

#[test]
fn only_whole_expired_sealed_segments_are_dropped_oldest_first_and_the_rest_verifies() {
    let policy = Retention::default()
        .max_age(Duration::from_secs(400))
        .min_age(Duration::from_secs(10));
    let (storage, now, log) = aged_log(policy.clone());
    let before = log.segments().unwrap();
    let now_ns = now.load(Ordering::SeqCst);
    let plan = log.retention_plan(now_ns).unwrap();
    assert!(!plan.dropped_segments.is_empty());
    assert_eq!(log.segments().unwrap(), before, "a plan changes nothing");
    let report = log.apply_retention(now_ns).unwrap();
    assert_eq!(report, plan);
    let after = log.segments().unwrap();
    // Oldest first, whole segments, each with its newest record past max_age.
    let dropped: Vec<_> = before.iter().take(report.dropped_segments.len()).collect();
    assert_eq!(
        dropped.iter().map(|s| s.number).collect::<Vec<_>>(),
        report.dropped_segments
    );
    for s in &dropped {
        assert!(s.sealed);
        let newest = log_time_of(s.last_seq);
        assert!(
            now_ns - newest >= 400 * SEC,
            "segment {} was not expired",
            s.number
        );
    }
    // The first kept segment was not expired, or is the active one.
    let kept = &after[0];
    assert_eq!(kept.first_seq, report.first_seq);
    assert!(kept.active || now_ns - log_time_of(kept.last_seq) < 400 * SEC);
    assert!(matches!(
        log.get(1).unwrap_err(),
        Error::SeqOutOfRange { .. }
    ));
    assert_eq!(log.get(report.first_seq).unwrap().seq(), report.first_seq);
    let v = log.verify().unwrap();
    assert_eq!(v.first_seq, report.first_seq);
    let applied: Vec<_> = all_records(&log)
        .into_iter()
        .filter(|r| r.kind() == RecordKind::RetentionApplied)
        .collect();
    assert_eq!(applied.len(), 1);
    assert!(storage.read_file(&anchor_path()).is_some());
    for s in &dropped {
        assert!(
            storage.read_file(&s.path).is_none(),
            "{} deleted",
            s.path.display()
        );
    }
    drop(log);
    let (_, clock) = manual_clock(now_ns);
    let log = Log::open(mem_dir(), opts(&storage, clock, policy)).unwrap();
    log.verify().unwrap();
    log.append(b"after retention and reopen").unwrap();
    log.verify().unwrap();
}

/// The time of record `seq`, from the segment list (records are one a second).
fn log_time_of(seq: u64) -> u64 {
    // Seq 1 (log created) and 2 (opened) are at T0; event i is seq i + 3.
    T0 + seq.saturating_sub(3) * SEC
}

#[test]
fn compliance_floor_beats_age_and_size_limits_and_the_active_segment_stays() {
    let policy = Retention::default()
        .max_age(Duration::from_secs(1))
        .max_total_bytes(1)
        .min_age(Duration::from_secs(100_000));
    let (_, now, log) = aged_log(policy);
    let r = log.apply_retention(now.load(Ordering::SeqCst)).unwrap();
    assert!(r.dropped_segments.is_empty(), "{r:?}");

    // A time 11 days past the log's last record is refused unless the
    // policy allows the clock that far ahead (clock_jumps_do_not_age_segments).
    let policy = Retention::default()
        .max_total_bytes(1)
        .clock_ahead_max(Duration::MAX);
    let (_, now, log) = aged_log(policy);
    let far_future = now.load(Ordering::SeqCst) + 1_000_000 * SEC;
    let r = log.apply_retention(far_future).unwrap();
    let segs = log.segments().unwrap();
    assert!(!r.dropped_segments.is_empty());
    assert!(
        segs.iter().all(|s| !s.sealed) && segs.last().unwrap().active,
        "{segs:?}"
    );
    log.verify().unwrap();
}

#[test]
fn legal_hold_stops_retention_survives_reopen_and_is_recorded() {
    let policy = Retention::default().max_age(Duration::from_secs(10));
    let (storage, now, log) = aged_log(policy.clone());
    log.set_legal_hold("case 2026-117: preserve everything")
        .unwrap();
    let t = now.load(Ordering::SeqCst) + 10_000 * SEC;
    let r = log.apply_retention(t).unwrap();
    assert!(r.held && r.dropped_segments.is_empty());
    drop(log);
    let (_, clock) = manual_clock(t);
    let log = Log::open(mem_dir(), opts(&storage, clock, policy)).unwrap();
    assert_eq!(
        log.legal_hold().unwrap().as_deref(),
        Some("case 2026-117: preserve everything")
    );
    assert!(log.apply_retention(t).unwrap().held);
    log.clear_legal_hold().unwrap();
    assert_eq!(log.legal_hold().unwrap(), None);
    assert!(!log.apply_retention(t).unwrap().dropped_segments.is_empty());
    let events: Vec<_> = all_records(&log)
        .into_iter()
        .filter_map(|r| r.system_event().and_then(Result::ok))
        .filter(|e| {
            matches!(
                e,
                SystemEvent::LegalHoldSet { .. } | SystemEvent::LegalHoldCleared
            )
        })
        .collect();
    assert!(
        matches!(&events[..], [SystemEvent::LegalHoldSet { reason }, SystemEvent::LegalHoldCleared] if reason.starts_with("case"))
    );
    log.verify().unwrap();
}

#[test]
fn two_retention_runs_chain_their_anchor_entries_and_reopen() {
    let policy = Retention::default().max_age(Duration::from_secs(600));
    let (storage, now, log) = aged_log(policy.clone());
    let t = now.load(Ordering::SeqCst);
    let first = log.apply_retention(t).unwrap();
    let second = log.apply_retention(t + 300 * SEC).unwrap();
    assert!(!first.dropped_segments.is_empty() && !second.dropped_segments.is_empty());
    assert!(second.first_seq > first.first_seq);
    log.verify().unwrap();
    drop(log);
    let (_, clock) = manual_clock(t + 300 * SEC);
    let log = Log::open(mem_dir(), opts(&storage, clock, policy)).unwrap();
    assert_eq!(log.verify().unwrap().first_seq, second.first_seq);
}

#[test]
fn crash_at_every_step_of_retention_leaves_a_log_that_opens_and_verifies() {
    let policy = Retention::default().max_age(Duration::from_secs(400));
    let (base, now, log) = aged_log(policy.clone());
    drop(log);
    let t = now.load(Ordering::SeqCst) + SEC;
    let mut step = 0;
    loop {
        let storage = base.crash_image(Tear::KeepUnsynced, 0);
        let (_, clock) = manual_clock(t);
        let log = Log::open(mem_dir(), opts(&storage, clock, policy.clone())).unwrap();
        let all_before: Vec<_> = user_payloads(&log);
        storage.crash_after(storage.mutations() + step);
        let finished = log.apply_retention(t).is_ok();
        drop(log);
        for tear in [Tear::LoseUnsynced, Tear::KeepUnsynced] {
            let image = storage.crash_image(tear, step);
            let (_, clock) = manual_clock(t);
            let log = Log::open(mem_dir(), opts(&image, clock, policy.clone()))
                .unwrap_or_else(|e| panic!("step {step} {tear:?}: {e}"));
            log.verify()
                .unwrap_or_else(|e| panic!("step {step} {tear:?}: {e}"));
            let now_have = user_payloads(&log);
            assert!(
                all_before.ends_with(&now_have),
                "step {step}: what is kept is a suffix of what was there"
            );
            // A second run finishes the job.
            log.apply_retention(t).unwrap();
            log.verify().unwrap();
        }
        if finished {
            break;
        }
        step += 1;
    }
    assert!(
        step >= 4,
        "retention took only {step} steps: the test is not reaching them"
    );
}

#[test]
fn removed_or_edited_anchor_entries_and_missing_front_segments_are_detected() {
    let policy = Retention::default().max_age(Duration::from_secs(600));
    let (storage, now, log) = aged_log(policy.clone());
    let t = now.load(Ordering::SeqCst);
    log.apply_retention(t).unwrap();
    log.apply_retention(t + 300 * SEC).unwrap();
    drop(log);
    let anchor = storage.read_file(&anchor_path()).unwrap();
    let reopen = |image: &MemStorage| {
        let (_, clock) = manual_clock(t + 300 * SEC);
        Log::open(mem_dir(), opts(image, clock, policy.clone())).and_then(|l| l.verify())
    };
    reopen(&storage.crash_image(Tear::KeepUnsynced, 0)).expect("intact log verifies");
    // Edit a byte of the newest entry (its first_seq).
    let entry2_at = anchor.len() - entry_len(&anchor, 1);
    for (what, bytes) in [
        ("edited", {
            let mut b = anchor.clone();
            b[entry2_at + 16] ^= 1;
            b
        }),
        ("newest entry removed", anchor[..entry2_at].to_vec()),
        ("first entry removed", {
            let mut b = anchor[..32].to_vec();
            b.extend_from_slice(&anchor[entry2_at..]);
            b
        }),
    ] {
        let image = storage.crash_image(Tear::KeepUnsynced, 0);
        image.write_file(&anchor_path(), bytes);
        let err = reopen(&image).expect_err(what);
        assert!(matches!(err, Error::Corrupt { .. }), "{what}: {err}");
    }
    // The anchor file deleted: the log starts past seq 1 with nothing to say why.
    let image = storage.crash_image(Tear::KeepUnsynced, 0);
    image.delete_file(&anchor_path());
    assert!(matches!(reopen(&image), Err(Error::Corrupt { .. })));
}

/// Length of entry `i` of an anchor file.
fn entry_len(anchor: &[u8], i: usize) -> usize {
    let mut at = 32;
    for _ in 0..i {
        at += u32::from_le_bytes(anchor[at..at + 4].try_into().unwrap()) as usize;
    }
    u32::from_le_bytes(anchor[at..at + 4].try_into().unwrap()) as usize
}

/// The numbers of the log's sealed segments, oldest first.
fn sealed_numbers(log: &Log) -> Vec<u64> {
    log.segments()
        .unwrap()
        .iter()
        .filter(|s| s.sealed)
        .map(|s| s.number)
        .collect()
}

/// A `wormlog.ship` line recording `key` as shipped (format-spec.md §15).
fn ship_line(key: &str) -> String {
    format!(
        "{key} v1 {} 100 http://s3.example/bucket\n",
        "ab".repeat(32)
    )
}

#[test]
fn a_log_that_shipped_before_waits_for_its_recorded_copies_even_without_a_shipper() {
    // What `wormctl retention` does after a bucket outage: open the log
    // with no shipping set up. Its wormlog.ship says which sealed files
    // have a copy; the others must stay.
    let policy = Retention::default().max_age(Duration::from_secs(10));
    let (storage, now, log) = aged_log(policy);
    let now_ns = now.load(Ordering::SeqCst) + 1000 * SEC;
    let sealed = sealed_numbers(&log);
    assert!(sealed.len() >= 4);
    let shipped = &sealed[..2];
    let mut record = String::new();
    for n in shipped {
        record.push_str(&ship_line(&format!("audit/seg-{n:020}.wlog.zst")));
    }
    // A torn last line names nothing.
    record.push_str(&format!("audit/seg-{:020}.wlog.zst v", sealed[2]));
    storage.write_file(&mem_dir().join("wormlog.ship"), record.into_bytes());
    let r = log.apply_retention(now_ns).unwrap();
    assert_eq!(r.dropped_segments, shipped, "{r:?}");
    assert_eq!(r.awaiting_ship, sealed[2..].to_vec(), "{r:?}");
    log.verify().unwrap();
}

#[test]
fn a_ship_record_of_tens_of_megabytes_is_read_whole_for_the_sealed_files_it_names() {
    // With Merkle tiles shipped the record has a line per 256 records:
    // millions of lines on a large log. The sealed files it names, first
    // and last, must all be seen, and the read is done in pieces.
    let policy = Retention::default().max_age(Duration::from_secs(10));
    let (storage, now, log) = aged_log(policy);
    let now_ns = now.load(Ordering::SeqCst) + 1000 * SEC;
    let sealed = sealed_numbers(&log);
    assert!(sealed.len() >= 4);
    let mut record = ship_line(&format!("audit/seg-{:020}.wlog.zst", sealed[0]));
    // 600,000 tiles (150 million records): past the 64 MiB the record
    // was once capped at.
    for n in 0..600_000u64 {
        record.push_str(&ship_line(&format!(
            "audit/tile/0/x{:03}/{:03}",
            n / 1000,
            n % 1000
        )));
    }
    record.push_str(&ship_line(&format!("audit/seg-{:020}.wlog.zst", sealed[1])));
    assert!(record.len() > 64 << 20, "{} bytes", record.len());
    storage.write_file(&mem_dir().join("wormlog.ship"), record.into_bytes());
    let r = log.apply_retention(now_ns).unwrap();
    assert_eq!(r.dropped_segments, sealed[..2].to_vec(), "{r:?}");
    assert_eq!(r.awaiting_ship, sealed[2..].to_vec(), "{r:?}");
}
