//! `wormlog-testing`: what a QA suite needs to check that audit events are
//! captured, complete, ordered and tamper-evident, on real directories.
//!
//! - [`TestLog`]: a log in a temporary directory (or in memory, for crash
//!   images) with deterministic options and a [`FakeClock`]; `restart`
//!   closes and reopens it, `crash` (in memory) reopens what a power cut
//!   would have left.
//! - Assertions with readable messages: [`assert_recorded_once`],
//!   [`assert_in_order`], [`assert_gap_free`], [`assert_chronological`].
//! - [`tamper`]: the changes an attacker with file access makes, on a log
//!   directory (closed first): flip a record (raw or sealed file), drop a
//!   segment, cut at a record, rewrite a record with every hash recomputed.
//!
//! ```
//! use wormlog_testing::{assert_recorded_once, tamper, TestLog};
//! let mut t = TestLog::new();
//! t.log().append(b"login alice")?;
//! t.clock().advance(std::time::Duration::from_secs(1));
//! t.log().append(b"read record 7")?;
//! t.restart();
//! assert_recorded_once(t.log(), &["login alice", "read record 7"]);
//! let dir = t.close();
//! tamper::flip_record(dir.path(), 3)?;
//! // Found at open (durable bytes of the active segment) or by verify.
//! let found = wormlog::Log::open_read_only(dir.path(), Default::default())
//!     .and_then(|log| log.verify());
//! assert!(found.unwrap_err().to_string().contains("seq 3"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// A crate of its own, above the engine: it uses the public API only, as a
// user's test suite does, so nothing in wormlog depends on it.

// README's Rust snippets, compiled and run as doc tests here, where the
// engine (with its serde and async features) and these helpers are both at
// hand: a snippet that no longer builds or holds fails `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wormlog::storage::{MemStorage, Tear};
use wormlog::{Log, Options, Sealing};

/// A clock the test moves: appends are stamped with its time (the engine
/// still never lets a timestamp go backward).
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    /// A clock at `ns` since the Unix epoch.
    pub fn at(ns: u64) -> FakeClock {
        FakeClock(Arc::new(AtomicU64::new(ns)))
    }
    /// Now, ns since the Unix epoch.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// Sets the time (backward too: a clock set back, for tests of that).
    pub fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
    /// As the engine's `Clock`.
    pub fn as_clock(&self) -> wormlog::Clock {
        let c = self.0.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }
}

/// 2026-01-01T00:00:00Z, where a `TestLog`'s clock starts.
pub const TEST_EPOCH_NS: u64 = 1_767_225_600_000_000_000;

/// Where a `TestLog` lives.
enum Place {
    Dir(tempfile::TempDir),
    Memory(MemStorage),
}

/// A log for tests (see the module docs). Options: synchronous
/// durability, sealing inline as segments roll (so what is sealed is
/// deterministic), 64 KiB segments, the fake clock; `with_options` changes
/// them.
pub struct TestLog {
    place: Place,
    clock: FakeClock,
    options: Arc<dyn Fn(Options) -> Options + Send + Sync>,
    log: Option<Log>,
}

impl std::fmt::Debug for TestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestLog")
            .field("dir", &self.dir())
            .field("clock", &self.clock.now())
            .finish_non_exhaustive()
    }
}

impl Default for TestLog {
    fn default() -> Self {
        TestLog::new()
    }
}

impl TestLog {
    /// A new log in a new temporary directory (removed when the `TestLog`
    /// is dropped, unless `close` hands it over).
    pub fn new() -> TestLog {
        TestLog::with_options(|o| o)
    }

    /// As `new`, with `adjust` applied to the test options at every open.
    pub fn with_options(adjust: impl Fn(Options) -> Options + Send + Sync + 'static) -> TestLog {
        let dir = tempfile::tempdir().expect("a temporary directory");
        TestLog::start(Place::Dir(dir), Arc::new(adjust))
    }

    /// A log in memory (`storage::MemStorage`), for `crash`.
    pub fn in_memory() -> TestLog {
        TestLog::start(Place::Memory(MemStorage::new()), Arc::new(|o| o))
    }

    fn start(place: Place, options: Arc<dyn Fn(Options) -> Options + Send + Sync>) -> TestLog {
        let mut t = TestLog {
            place,
            clock: FakeClock::at(TEST_EPOCH_NS),
            options,
            log: None,
        };
        t.open();
        t
    }

    fn open(&mut self) {
        let mut o = Options::default()
            .sealing(Sealing::Inline)
            .segment_bytes_max(64 << 10)
            .clock(self.clock.as_clock());
        if let Place::Memory(m) = &self.place {
            o = o.storage(Arc::new(m.clone()));
        }
        let log = Log::open(self.dir(), (self.options)(o)).expect("the test log opens");
        self.log = Some(log);
    }

    /// The open log.
    pub fn log(&self) -> &Log {
        self.log.as_ref().expect("the test log is open")
    }

    /// The log's directory (in memory: its path there).
    pub fn dir(&self) -> PathBuf {
        match &self.place {
            Place::Dir(d) => d.path().to_path_buf(),
            Place::Memory(_) => PathBuf::from("/log"),
        }
    }

    /// The clock the log stamps appends with.
    pub fn clock(&self) -> &FakeClock {
        &self.clock
    }

    /// Closes the log cleanly and opens it again: what a service restart
    /// does.
    pub fn restart(&mut self) -> &Log {
        if let Some(log) = self.log.take() {
            log.close().expect("the test log closes");
        }
        self.open();
        self.log()
    }

    /// In memory only: a power cut now (unsynced bytes torn as `tear`
    /// says), then an open of what the disk kept, which runs recovery.
    pub fn crash(&mut self, tear: Tear, seed: u64) -> &Log {
        let Place::Memory(m) = &self.place else {
            panic!("TestLog::crash needs TestLog::in_memory (a real directory cannot lose power)");
        };
        let image = m.crash_image(tear, seed);
        // The old handle's close must not write into the image: it stays
        // on the old storage, which is dropped.
        drop(self.log.take());
        self.place = Place::Memory(image);
        self.open();
        self.log()
    }

    /// Closes the log and hands over its directory (for the tamper helpers
    /// and for opening it as a user would).
    pub fn close(mut self) -> tempfile::TempDir {
        if let Some(log) = self.log.take() {
            log.close().expect("the test log closes");
        }
        match std::mem::replace(&mut self.place, Place::Memory(MemStorage::new())) {
            Place::Dir(d) => d,
            Place::Memory(_) => panic!("an in-memory TestLog has no directory to hand over"),
        }
    }
}

/// The user payloads of `log`, with their seqs, in seq order.
fn user_records(log: &Log) -> Vec<(u64, u64, Vec<u8>)> {
    log.read(..)
        .expect("the log reads")
        .map(|r| r.expect("a record reads"))
        .filter(|r| !r.is_system())
        .map(|r| (r.seq(), r.timestamp(), r.payload().to_vec()))
        .collect()
}

fn show(p: &[u8]) -> String {
    let s = String::from_utf8_lossy(p);
    if s.chars().count() > 80 {
        format!("{:?}…", s.chars().take(80).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// Every expected event is in the log exactly once (as a user record with
/// exactly these bytes); an event expected `k` times (listed `k` times)
/// must be recorded exactly `k` times. Panics listing each missing event,
/// each one recorded more often than expected (with its seqs), and how many
/// others there are.
pub fn assert_recorded_once<P: AsRef<[u8]>>(log: &Log, expected: &[P]) {
    let records = user_records(log);
    let expected: Vec<&[u8]> = expected.iter().map(|e| e.as_ref()).collect();
    let problems = count_problems(
        &expected,
        |e| {
            records
                .iter()
                .filter(|(_, _, p)| p == e)
                .map(|(s, _, _)| *s)
                .collect()
        },
        |e| show(e),
    );
    if !problems.is_empty() {
        let others = records
            .iter()
            .filter(|(_, _, p)| !expected.contains(&&p[..]))
            .count();
        report_problems(&problems, expected.len(), records.len(), others);
    }
}

/// Feature `serde`: as [`assert_recorded_once`], for typed events: each
/// expected event, as JSON, must equal exactly one user record's payload
/// parsed as JSON, so that key order and spacing do not matter (a service
/// that serializes a map, or another struct with the same fields, still
/// matches). Records that are not JSON count as others.
#[cfg(feature = "serde")]
pub fn assert_events_recorded_once<T: serde::Serialize>(log: &Log, expected: &[T]) {
    let records = user_records(log);
    let parsed: Vec<(u64, Option<serde_json::Value>)> = records
        .iter()
        .map(|(s, _, p)| (*s, serde_json::from_slice(p).ok()))
        .collect();
    let expected: Vec<serde_json::Value> = expected
        .iter()
        .map(|e| serde_json::to_value(e).expect("the expected event serializes"))
        .collect();
    let problems = count_problems(
        &expected,
        |e| {
            parsed
                .iter()
                .filter(|(_, v)| v.as_ref() == Some(e))
                .map(|(s, _)| *s)
                .collect()
        },
        |e| {
            let s = e.to_string();
            show(s.as_bytes())
        },
    );
    if !problems.is_empty() {
        let others = parsed
            .iter()
            .filter(|(_, v)| !v.as_ref().is_some_and(|v| expected.contains(v)))
            .count();
        report_problems(&problems, expected.len(), records.len(), others);
    }
}

/// For each distinct expected event (listed `k` times: wanted `k` times),
/// a line where the log holds it another number of times.
fn count_problems<E: PartialEq>(
    expected: &[E],
    seqs_of: impl Fn(&E) -> Vec<u64>,
    show: impl Fn(&E) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, e) in expected.iter().enumerate() {
        if expected[..i].contains(e) {
            continue; // counted at its first listing
        }
        let wanted = expected.iter().filter(|x| *x == e).count();
        let seqs = seqs_of(e);
        match (seqs.len(), wanted) {
            (n, w) if n == w => {}
            (0, _) => problems.push(format!("  missing: expected[{i}] {}", show(e))),
            (n, w) => problems.push(format!(
                "  recorded {n} times (seqs {seqs:?}), expected {w}: expected[{i}] {}",
                show(e)
            )),
        }
    }
    problems
}

fn report_problems(problems: &[String], expected: usize, records: usize, others: usize) {
    panic!(
        "{} of {} expected events are not recorded as often as expected ({} user records in the log, {others} not expected):\n{}",
        problems.len(),
        expected,
        records,
        problems.join("\n")
    );
}

/// The expected events appear in the log in this order (others may come
/// between them). Panics naming the first pair out of order, with seqs.
pub fn assert_in_order<P: AsRef<[u8]>>(log: &Log, expected: &[P]) {
    let records = user_records(log);
    let mut last: Option<(usize, u64)> = None;
    for (i, e) in expected.iter().enumerate() {
        let Some((seq, _, _)) = records.iter().find(|(_, _, p)| p == e.as_ref()) else {
            panic!("expected[{i}] {} is not in the log", show(e.as_ref()));
        };
        if let Some((j, before)) = last {
            assert!(
                *seq > before,
                "out of order: expected[{i}] {} is at seq {seq}, before expected[{j}] {} at seq {before}",
                show(e.as_ref()),
                show(expected[j].as_ref())
            );
        }
        last = Some((i, *seq));
    }
}

/// The log holds every seq from its first to its head, and verifies
/// (frames, chain, seals). Panics naming the first gap or the failure.
pub fn assert_gap_free(log: &Log) {
    let mut expect: Option<u64> = None;
    for r in log.read(..).expect("the log reads") {
        let r = r.unwrap_or_else(|e| panic!("a record does not read: {e}"));
        if let Some(n) = expect {
            assert_eq!(r.seq(), n, "gap: seq {} follows seq {}", r.seq(), n - 1);
        }
        expect = Some(r.seq() + 1);
    }
    let head = log.head().seq;
    if let Some(n) = expect {
        assert_eq!(
            n - 1,
            head,
            "the records end at seq {} but the head is {head}",
            n - 1
        );
    }
    if let Err(e) = log.verify() {
        panic!("the log does not verify: {e}");
    }
}

/// Commit times never go backward along the seqs (records committed in one
/// group share a time). Panics naming the first pair that does.
pub fn assert_chronological(log: &Log) {
    let mut prev: Option<(u64, u64)> = None;
    for r in log.read(..).expect("the log reads") {
        let r = r.unwrap_or_else(|e| panic!("a record does not read: {e}"));
        if let Some((seq, ts)) = prev {
            assert!(
                r.timestamp() >= ts,
                "time went backward: seq {} at {} ns after seq {seq} at {ts} ns",
                r.seq(),
                r.timestamp()
            );
        }
        prev = Some((r.seq(), r.timestamp()));
    }
}

/// Changes to a closed log directory that an attacker with file access
/// would make. Each returns the file it changed.
pub mod tamper {
    use std::path::{Path, PathBuf};
    use wormlog::format::names::{parse_sealed_file_name, parse_segment_file_name};
    use wormlog::format::{
        chain_hash, decode_frame, decode_seek_table, encode_frame, encode_seek_table,
        seek_table_len, Decoded, SegmentHeader, FRAME_HEADER_LEN, SEEK_FOOTER_LEN,
        SEGMENT_HEADER_LEN,
    };
    use wormlog::{Error, Result};

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    fn corrupt(path: &Path, what: wormlog::Corruption) -> Error {
        Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            seq: None,
            what,
        }
    }

    /// The log's segment files, oldest first: (number, path, sealed).
    fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf, bool)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io("list", dir))? {
            let e = e.map_err(io("list", dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = parse_segment_file_name(&name) {
                out.push((n, e.path(), false));
            } else if let Some(n) = parse_sealed_file_name(&name) {
                out.push((n, e.path(), true));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The raw bytes of a segment file (a sealed one decompressed).
    fn raw_bytes(path: &Path, sealed: bool) -> Result<Vec<u8>> {
        let bytes = std::fs::read(path).map_err(io("read", path))?;
        if !sealed {
            return Ok(bytes);
        }
        zstd::stream::decode_all(&bytes[..]).map_err(io("decompress", path))
    }

    /// (offset, padded length, seq) of each frame of a raw segment.
    fn frames(raw: &[u8]) -> Vec<(usize, usize, u64)> {
        let mut at = SEGMENT_HEADER_LEN;
        let mut out = Vec::new();
        while at < raw.len() {
            let Decoded::Frame(f) = decode_frame(&raw[at..]) else {
                break;
            };
            out.push((at, f.padded_len, f.seq));
            at += f.padded_len;
        }
        out
    }

    /// Where a record is: its segment file, whether sealed, the segment's
    /// raw bytes and the frame's (offset, padded length).
    type Found = (PathBuf, bool, Vec<u8>, (usize, usize));

    /// The segment holding `seq` (see `Found`).
    fn find(dir: &Path, seq: u64) -> Result<Found> {
        for (_, path, sealed) in segments(dir)?.into_iter().rev() {
            let raw = raw_bytes(&path, sealed)?;
            let Ok(h) = SegmentHeader::decode(&raw) else {
                continue;
            };
            if h.first_seq > seq {
                continue;
            }
            if let Some((o, len, _)) = frames(&raw).into_iter().find(|f| f.2 == seq) {
                return Ok((path, sealed, raw, (o, len)));
            }
        }
        Err(Error::NotFound {
            path: dir.join(format!("record {seq}")),
        })
    }

    fn writable(path: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(io("chmod", path))
    }

    /// Writes `raw` back to a sealed file: only the zstd frame holding
    /// `at` is compressed anew, and the seek table is rewritten to match.
    fn write_sealed(path: &Path, raw: &[u8], at: usize) -> Result<()> {
        let file = std::fs::read(path).map_err(io("read", path))?;
        let bad = |e: wormlog::Corruption| corrupt(path, e);
        let footer = &file[file.len().saturating_sub(SEEK_FOOTER_LEN)..];
        let table_len = seek_table_len(footer, file.len() as u64).map_err(bad)? as usize;
        let table_at = file.len() - table_len;
        let mut entries = decode_seek_table(&file[table_at..]).map_err(bad)?;
        let (mut c, mut d) = (0usize, 0usize);
        let mut out = Vec::with_capacity(file.len());
        for e in entries.iter_mut() {
            let (cs, ds) = (e.compressed_size as usize, e.decompressed_size as usize);
            if (d..d + ds).contains(&at) {
                let frame =
                    zstd::stream::encode_all(&raw[d..d + ds], 3).map_err(io("compress", path))?;
                e.compressed_size = frame.len() as u32;
                out.extend_from_slice(&frame);
            } else {
                out.extend_from_slice(&file[c..c + cs]);
            }
            c += cs;
            d += ds;
        }
        out.extend_from_slice(&file[c..table_at]);
        out.extend_from_slice(&encode_seek_table(&entries));
        writable(path)?;
        std::fs::write(path, out).map_err(io("write", path))
    }

    /// Flips one bit of record `seq`'s payload (or of its frame, for an
    /// empty payload), in a raw segment or inside a sealed file. The CRC
    /// and the chain no longer match: `verify` names the record.
    pub fn flip_record(dir: &Path, seq: u64) -> Result<PathBuf> {
        let (path, sealed, mut raw, (o, len)) = find(dir, seq)?;
        // The payload follows the frame header (its last byte for an empty
        // payload is a hash byte: still inside the record's frame).
        let at = (o + FRAME_HEADER_LEN).min(o + len - 1);
        raw[at] ^= 0x01;
        if sealed {
            write_sealed(&path, &raw, at)?;
        } else {
            writable(&path)?;
            std::fs::write(&path, &raw).map_err(io("write", &path))?;
        }
        Ok(path)
    }

    /// Deletes segment file number `segment` (raw or sealed).
    pub fn drop_segment(dir: &Path, segment: u64) -> Result<PathBuf> {
        let (_, path, _) = segments(dir)?
            .into_iter()
            .find(|s| s.0 == segment)
            .ok_or_else(|| Error::NotFound {
                path: dir.join(format!("segment {segment}")),
            })?;
        std::fs::remove_file(&path).map_err(io("remove", &path))?;
        Ok(path)
    }

    /// Cuts the raw segment holding `seq` just before it: that record and
    /// every later one in the file are gone, at a record boundary.
    pub fn cut_at_record(dir: &Path, seq: u64) -> Result<PathBuf> {
        let (path, sealed, raw, (o, _)) = find(dir, seq)?;
        if sealed {
            return Err(Error::InvalidOptions(format!(
                "record {seq} is in a sealed file; cut_at_record cuts raw segments"
            )));
        }
        writable(&path)?;
        std::fs::write(&path, &raw[..o]).map_err(io("write", &path))?;
        Ok(path)
    }

    /// Replaces record `seq`'s payload with `payload` in the active (last)
    /// segment and recomputes every CRC and chain hash after it, and
    /// removes the Merkle tree's files: a forgery that `verify` alone
    /// cannot see. Only a checkpoint kept elsewhere or forward-secure
    /// sealing catches it. A closed segment ends in a sealed record whose
    /// digest covers its bytes, and the next segment's first record names
    /// its length: a record there is refused, not half-forged.
    pub fn rewrite_record(dir: &Path, seq: u64, payload: &[u8]) -> Result<PathBuf> {
        let (path, sealed, _, _) = find(dir, seq)?;
        let last = segments(dir)?.last().map(|s| s.1.clone());
        if sealed || last.as_ref() != Some(&path) {
            return Err(Error::InvalidOptions(format!(
                "record {seq} is in a closed segment; rewrite_record rewrites the active one"
            )));
        }
        let mut carry: Option<wormlog::format::Hash> = None;
        for (_, p, sealed) in segments(dir)? {
            if sealed || (p != path && carry.is_none()) {
                continue;
            }
            let raw = raw_bytes(&p, false)?;
            let mut header = SegmentHeader::decode(&raw).map_err(|e| corrupt(&p, e))?;
            if let Some(h) = carry {
                header.prev_hash = h;
            }
            let mut out = header.encode().to_vec();
            let mut prev = header.prev_hash;
            // A payload of another length moves every later frame: offsets
            // past it (the frames' synced-through marks) move with them.
            let mut moved: Option<(u64, i64)> = None;
            for (o, _, s) in frames(&raw) {
                let Decoded::Frame(f) = decode_frame(&raw[o..]) else {
                    break;
                };
                let body = if s == seq {
                    payload.to_vec()
                } else {
                    f.payload.to_vec()
                };
                let synced = match moved {
                    Some((at, delta)) if f.synced_through > at => {
                        f.synced_through.saturating_add_signed(delta)
                    }
                    _ => f.synced_through,
                };
                let h = chain_hash(&prev, f.seq, f.timestamp_ns, f.kind as u8, &body);
                let start = out.len();
                encode_frame(&mut out, f.seq, f.timestamp_ns, synced, f.kind, &body, &h);
                if s == seq {
                    let delta = (out.len() - start) as i64 - f.padded_len as i64;
                    moved = Some((o as u64, delta));
                }
                prev = h;
            }
            writable(&p)?;
            std::fs::write(&p, &out).map_err(io("write", &p))?;
            carry = Some(prev);
        }
        for e in std::fs::read_dir(dir).map_err(io("list", dir))? {
            let e = e.map_err(io("list", dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("wormlog.tiles-") || name == "wormlog.tree" {
                std::fs::remove_file(e.path()).map_err(io("remove", &e.path()))?;
            }
        }
        Ok(path)
    }
}
