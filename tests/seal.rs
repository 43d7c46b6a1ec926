//! Sealed segments: stock zstd reads them back byte for byte; they are
//! read-only; reads by seq and time work across sealed and active segments
//! with bounded memory; a crash at any step of sealing leaves every record
//! readable exactly once; hostile sealed files are errors, not panics.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Error, Log, Options, RecordKind, Sealing};

fn payload(i: u64) -> Vec<u8> {
    format!(
        r#"{{"seq_hint":{i},"actor":"user{}","action":"read","resource":"records/{}","outcome":"success"}}"#,
        i % 17,
        i * 7919 % 1000
    )
    .into_bytes()
}

#[test]
fn stock_zstd_decompresses_a_sealed_file_to_the_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        Options::default()
            .sealing(Sealing::Manual)
            .seal_frame_bytes(16 << 10),
    )
    .unwrap();
    for i in 0..2000 {
        log.append(&payload(i)).unwrap();
    }
    let raw_path = files_with(dir.path(), ".wlog").pop().unwrap();
    let before_seal = std::fs::read(&raw_path).unwrap();
    assert_eq!(log.seal().unwrap(), 1);
    // The seal record was appended before sealing, so the raw segment grew.
    let sealed = files_with(dir.path(), ".wlog.zst");
    assert_eq!(sealed.len(), 1);
    assert!(!raw_path.exists(), "the raw segment is removed once sealed");
    let out = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .arg(&sealed[0])
        .output()
        .expect("the zstd command-line tool must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "zstd -d failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seg = &out.stdout;
    assert!(seg.len() > before_seal.len());
    assert_eq!(
        &seg[..before_seal.len()],
        &before_seal[..],
        "zstd -d gives back the segment"
    );
    // ... and what it gives back is a valid segment ending in its seal record.
    let copy = tempfile::tempdir().unwrap();
    let name = sealed[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".zst", "");
    std::fs::write(copy.path().join(&name), seg).unwrap();
    let report = wormlog::verify_file(copy.path().join(&name)).unwrap();
    assert_eq!(log.get(report.head.seq).unwrap().kind(), RecordKind::Sealed);
    assert_eq!(log.get(report.head.seq).unwrap().hash(), &report.head.hash);
    let sealed_len = std::fs::metadata(&sealed[0]).unwrap().len() as usize;
    assert!(
        seg.len() > 2 * sealed_len,
        "{} bytes sealed into {sealed_len}",
        seg.len()
    );
}

#[test]
fn sealed_files_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().sealing(Sealing::Manual)).unwrap();
    log.append(b"x").unwrap();
    log.seal().unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in files_with(dir.path(), ".zst") {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444, "{}", f.display());
    }
    // In memory, where read-only is enforced even for root: the engine
    // reopens and keeps working without ever opening a sealed file to write.
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.append(b"y").unwrap();
    log.seal().unwrap();
    let zst: Vec<_> = storage
        .file_paths()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".zst"))
        .collect();
    assert_eq!(zst.len(), 1);
    assert_eq!(storage.permissions(&zst[0]), Some((true, false)));
    drop(log);
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    log.append(b"z").unwrap();
    log.verify().unwrap();
}

#[test]
fn reads_by_seq_and_time_work_across_sealed_and_active_segments() {
    let storage = MemStorage::new();
    let opts = mem_options(&storage)
        .sealing(Sealing::Inline)
        .segment_bytes_max(64 << 10)
        .seal_frame_bytes(8 << 10)
        .sealed_cache_bytes(64 << 10);
    let log = Log::open(mem_dir(), opts.clone()).unwrap();
    let mut receipts = Vec::new();
    for i in 0..5000 {
        receipts.push((i, log.append(&payload(i)).unwrap()));
    }
    let segs = log.segments().unwrap();
    assert!(segs.iter().filter(|s| s.sealed).count() >= 3, "{segs:?}");
    assert!(segs.last().unwrap().active && !segs.last().unwrap().sealed);
    for (i, r) in receipts.iter().step_by(37) {
        let rec = log.get(r.seq).unwrap();
        assert_eq!(rec.payload(), &payload(*i)[..]);
        assert_eq!(rec.hash(), &r.hash);
        let by_time = log.first_at_or_after(r.timestamp_ns).unwrap().unwrap();
        assert!(by_time.seq() <= r.seq && by_time.timestamp() >= r.timestamp_ns);
    }
    let all: Vec<_> = user_payloads(&log);
    assert_eq!(all.len(), 5000);
    assert!(all.iter().enumerate().all(|(i, p)| *p == payload(i as u64)));
    let stats = log.cache_stats();
    assert!(stats.bytes <= stats.capacity, "cache bounded: {stats:?}");
    assert!(stats.hits > 0 && stats.misses > 0);
    let report = log.verify().unwrap();
    assert!(report.sealed_segments >= 3);
    assert_eq!(report.head, log.head());
    drop(log);
    // And after reopening, from the sealed files alone.
    let log = Log::open(mem_dir(), opts).unwrap();
    assert_eq!(user_payloads(&log).len(), 5000);
    log.verify().unwrap();
}

#[test]
fn background_sealing_seals_every_closed_segment_while_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        Options::default()
            .sealing(Sealing::Background)
            .segment_bytes_max(256 << 10),
    )
    .unwrap();
    for i in 0..20_000 {
        log.append_batch(&[payload(i)]).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let segs = log.segments().unwrap();
        if segs.iter().filter(|s| !s.active).all(|s| s.sealed) {
            assert!(segs.len() > 5);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sealing never caught up: {segs:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(log.seal_error().is_none());
    assert_eq!(user_payloads(&log).len(), 20_000);
    log.verify().unwrap();
}

#[test]
fn crash_at_every_step_of_sealing_keeps_every_record_exactly_once() {
    let base = MemStorage::new();
    let opts = |s: &MemStorage| {
        mem_options(s)
            .segment_bytes_max(32 << 10)
            .seal_frame_bytes(4096)
    };
    let mut expected = Vec::new();
    {
        let log = Log::open(mem_dir(), opts(&base)).unwrap();
        for i in 0..600 {
            log.append(&payload(i)).unwrap();
            expected.push(payload(i));
        }
    }
    let mut step = 0;
    loop {
        let storage = base.crash_image(Tear::KeepUnsynced, 0);
        let log = Log::open(mem_dir(), opts(&storage)).unwrap();
        storage.crash_after(storage.mutations() + step);
        let finished = log.seal().is_ok();
        drop(log);
        for tear in [Tear::LoseUnsynced, Tear::KeepUnsynced, Tear::Sectors] {
            let image = storage.crash_image(tear, step);
            let log = Log::open(mem_dir(), opts(&image).sealing(Sealing::Inline))
                .unwrap_or_else(|e| panic!("step {step} {tear:?}: {e}"));
            assert_eq!(user_payloads(&log), expected, "step {step} {tear:?}");
            log.verify()
                .unwrap_or_else(|e| panic!("step {step} {tear:?}: {e}"));
            let segs = log.segments().unwrap();
            assert!(
                segs.iter().filter(|s| !s.active).all(|s| s.sealed),
                "step {step}: reopening finished the sealing"
            );
            let names: Vec<_> = image.file_paths();
            for s in &segs {
                let raw = mem_dir().join(format!("seg-{:020}.wlog", s.number));
                let zst = mem_dir().join(format!("seg-{:020}.wlog.zst", s.number));
                assert!(
                    !(names.contains(&raw) && names.contains(&zst)),
                    "step {step}: segment {} both raw and sealed",
                    s.number
                );
            }
        }
        if finished {
            break;
        }
        step += 1;
    }
    assert!(
        step > 10,
        "sealing took only {step} steps: the test is not reaching them"
    );
}

#[test]
fn hostile_sealed_files_are_errors_not_panics() {
    let storage = MemStorage::new();
    {
        let log = Log::open(mem_dir(), mem_options(&storage).seal_frame_bytes(4096)).unwrap();
        for i in 0..300 {
            log.append(&payload(i)).unwrap();
        }
        log.seal().unwrap();
    }
    let zst = storage
        .file_paths()
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".zst"))
        .unwrap();
    let original = storage.read_file(&zst).unwrap();
    let n = original.len();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("truncated by one byte".into(), original[..n - 1].to_vec()),
        ("only the footer".into(), original[n - 9..].to_vec()),
        ("garbage".into(), vec![0x5A; 4096]),
    ];
    // A seek table that claims a huge frame, and one that claims 2^27 frames.
    let mut huge = original.clone();
    let table_at = n - 9 - 8 * frames(&original) - 8;
    huge[table_at + 8 + 4..table_at + 8 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("frame claiming 4 GiB".into(), huge));
    let mut many = original.clone();
    many[n - 9..n - 5].copy_from_slice(&0x0800_0000u32.to_le_bytes());
    cases.push(("2^27 frames".into(), many));
    for byte in (0..n).step_by(7) {
        let mut b = original.clone();
        b[byte] ^= 0x10;
        cases.push((format!("byte {byte} flipped"), b));
    }
    for (what, bytes) in cases {
        let image = storage.crash_image(Tear::KeepUnsynced, 0);
        image.write_file(&zst, bytes);
        let outcome = Log::open(mem_dir(), mem_options(&image)).and_then(|log| log.verify());
        let err = outcome.expect_err(&what);
        assert!(
            matches!(&err, Error::Corrupt { path, .. } if path == &zst),
            "{what}: {err}"
        );
    }
}

fn frames(sealed: &[u8]) -> usize {
    let n = sealed.len();
    u32::from_le_bytes(sealed[n - 9..n - 5].try_into().unwrap()) as usize
}

/// Whether this process may set the immutable attribute here (root with
/// CAP_LINUX_IMMUTABLE on a file system that has it).
fn can_set_immutable(dir: &Path) -> bool {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    let probe = dir.join("probe");
    let f = std::fs::File::create(&probe).unwrap();
    let ok = ioctl_getflags(&f)
        .and_then(|fl| ioctl_setflags(&f, fl | IFlags::IMMUTABLE).map(|_| fl))
        .map(|fl| ioctl_setflags(&f, fl).is_ok())
        .unwrap_or(false);
    drop(f);
    std::fs::remove_file(&probe).unwrap();
    ok
}

#[test]
fn immutable_attribute_stops_writes_where_permitted_and_retention_clears_it() {
    use rustix::fs::{ioctl_getflags, IFlags};
    let dir = tempfile::tempdir().unwrap();
    let capable = can_set_immutable(dir.path());
    let log = Log::open(
        dir.path(),
        Options::default()
            .sealing(Sealing::Manual)
            .immutable_attr(true)
            .retention(
                wormlog::Retention::default()
                    .max_total_bytes(1)
                    .clock_ahead_max(std::time::Duration::MAX),
            ),
    )
    .unwrap();
    log.append(b"kept forever, or until retention").unwrap();
    log.seal().unwrap();
    let sealed = files_with(dir.path(), ".zst");
    assert_eq!(sealed.len(), 1);
    let flags = ioctl_getflags(std::fs::File::open(&sealed[0]).unwrap()).unwrap();
    // Sealing succeeds either way; the attribute is set exactly where the
    // process may set it.
    assert_eq!(flags.contains(IFlags::IMMUTABLE), capable);
    if capable {
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(&sealed[0])
            .expect_err("an immutable file cannot be opened for writing, even by root");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(std::fs::remove_file(&sealed[0]).is_err(), "nor deleted");
    }
    let r = log.apply_retention(u64::MAX / 2).unwrap();
    assert_eq!(r.dropped_segments.len(), 1);
    assert!(
        !sealed[0].exists(),
        "retention clears the attribute and deletes the file"
    );
    log.verify().unwrap();
}

#[test]
fn many_sealed_segments_hold_few_open_files() {
    // 120 sealed segments, at most 4 sealed files kept open: opening,
    // reading by seq and by time, iterating and verifying must stay near 4
    // descriptors, not one per segment (which a long-lived log would turn
    // into EMFILE). (Closed segments not yet sealed each hold a descriptor,
    // as the writer here does before `seal`.)
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(1_000_000_000);
    let opts = || {
        mem_options(&storage)
            .segment_bytes_max(4096)
            .sealed_files_open(4)
            .clock(clock.clone())
    };
    let mut n = 0u64;
    {
        let log = Log::open(mem_dir(), opts()).unwrap();
        while log.segments().unwrap().len() < 121 {
            now.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst);
            log.append(&payload(n)).unwrap();
            n += 1;
        }
        log.seal().unwrap();
    }
    assert_eq!(storage.open_read_handles(), 0, "a closed log holds no file");
    storage.reset_peak_read_handles();
    let log = Log::open(mem_dir(), opts()).unwrap();
    let segs = log.segments().unwrap();
    assert!(segs.iter().filter(|s| s.sealed).count() >= 120);
    // Pool (4) + the active segment + the Merkle tree's level files (one
    // per level, at most 8: levels 0 and 1 here) + verification's private
    // reader per worker and its digest pass: a bound that does not grow
    // with segments.
    let bound = 4 + 1 + 2 + 2 * std::thread::available_parallelism().map_or(2, |p| p.get());
    assert!(
        storage.open_read_handles() <= 7,
        "after open: {} handles",
        storage.open_read_handles()
    );
    let opened = storage.read_opens();
    let records = all_records(&log);
    assert_eq!(
        user_payloads(&log).len() as u64,
        n,
        "every record read back"
    );
    for r in records.iter().rev().step_by(37) {
        assert_eq!(log.get(r.seq()).unwrap().payload(), r.payload());
        let at = log.first_at_or_after(r.timestamp()).unwrap().unwrap();
        assert!(at.timestamp() == r.timestamp() && at.seq() <= r.seq());
    }
    log.verify().unwrap();
    assert!(
        storage.read_opens() > opened + 120,
        "files were closed and opened again"
    );
    assert!(
        storage.peak_read_handles() <= bound,
        "peak {} handles open, bound {bound}",
        storage.peak_read_handles()
    );
    assert!(storage.open_read_handles() <= 7);
}

#[test]
fn retention_closes_the_dropped_files() {
    let storage = MemStorage::new();
    let (now, clock) = manual_clock(1_000_000_000);
    let log = Log::open(
        mem_dir(),
        mem_options(&storage)
            .segment_bytes_max(4096)
            .sealed_files_open(1000)
            .clock(clock)
            .retention(wormlog::Retention::default().max_age(std::time::Duration::from_secs(10))),
    )
    .unwrap();
    let mut n = 0;
    while log.segments().unwrap().len() < 11 {
        log.append(&payload(n)).unwrap();
        n += 1;
    }
    log.seal().unwrap();
    all_records(&log);
    // The tree's level files, held open for proofs, are not dropped files
    // (a checkpoint writes the tree, opening them).
    log.checkpoint().unwrap();
    let before = storage.open_read_handles();
    now.fetch_add(3_600_000_000_000, std::sync::atomic::Ordering::SeqCst);
    let report = log
        .apply_retention(now.load(std::sync::atomic::Ordering::SeqCst))
        .unwrap();
    assert!(report.dropped_segments.len() >= 9, "{report:?}");
    assert_eq!(
        storage.open_read_handles(),
        before - report.dropped_segments.len(),
        "each dropped file's handle is closed"
    );
}
