//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use wormlog::storage::MemStorage;
use wormlog::{Log, Options, Record, Sealing};

/// Seeded, so that every randomized test is replayable from its seed.
#[allow(unused_imports)] // not every test file draws random numbers
pub use wormlog::storage::SplitMix as Rng;

/// A seed from WORMLOG_SEED, or from the clock; printed so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("WORMLOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with WORMLOG_SEED={seed})");
    seed
}

/// Options on `storage`, with sealing left to explicit `Log::seal` calls so
/// that closed segments stay raw unless a test asks.
pub fn mem_options(storage: &MemStorage) -> Options {
    Options::default()
        .storage(Arc::new(storage.clone()))
        .sealing(Sealing::Manual)
}

pub fn mem_dir() -> PathBuf {
    PathBuf::from("/log")
}

/// All records, failing the test on any read error.
pub fn all_records(log: &Log) -> Vec<Record> {
    log.read(..).unwrap().map(|r| r.unwrap()).collect()
}

/// User payloads only.
pub fn user_payloads(log: &Log) -> Vec<Vec<u8>> {
    all_records(log)
        .into_iter()
        .filter(|r| !r.is_system())
        .map(|r| r.payload().to_vec())
        .collect()
}

pub fn segment_paths(storage: &MemStorage, dir: &Path) -> Vec<PathBuf> {
    storage
        .file_paths()
        .into_iter()
        .filter(|p| p.parent() == Some(dir))
        .filter(|p| p.extension().is_some_and(|e| e == "wlog"))
        .collect()
}

/// (offset, padded length, seq) of every frame in an uncompressed segment.
pub fn frame_map(bytes: &[u8]) -> Vec<(usize, usize, u64)> {
    use wormlog::format::{decode_frame, Decoded, SEGMENT_HEADER_LEN};
    let mut at = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let Decoded::Frame(f) = decode_frame(&bytes[at..]) else {
            panic!("segment is not intact at {at}")
        };
        out.push((at, f.padded_len, f.seq));
        at += f.padded_len;
    }
    out
}

/// A log clock the test moves by hand.
pub fn manual_clock(start_ns: u64) -> (Arc<std::sync::atomic::AtomicU64>, wormlog::Clock) {
    let now = Arc::new(std::sync::atomic::AtomicU64::new(start_ns));
    let c = now.clone();
    (
        now,
        Arc::new(move || c.load(std::sync::atomic::Ordering::SeqCst)),
    )
}

/// Rewrites the first record whose payload is `from` to `to` in the raw
/// segment at `path`, recomputing every chain hash and CRC after it, and
/// removes the Merkle tree's files for the next open to rebuild from the
/// rewritten records: a forgery that verifies on its own.
pub fn forge_payload(storage: &MemStorage, path: &Path, from: &[u8], to: &[u8]) {
    let bytes = storage.read_file(path).unwrap();
    storage.write_file(path, forge_bytes(&bytes, from, to));
    forget_tree(storage, path.parent().unwrap());
}

/// [`forge_payload`] on a segment's bytes.
pub fn forge_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    use wormlog::format::{
        chain_hash, decode_frame, encode_frame, Decoded, SegmentHeader, SEGMENT_HEADER_LEN,
    };
    let mut out = bytes[..SEGMENT_HEADER_LEN].to_vec();
    let mut prev = SegmentHeader::decode(bytes).unwrap().prev_hash;
    let mut done = false;
    for (o, _, _) in frame_map(bytes) {
        let Decoded::Frame(f) = decode_frame(&bytes[o..]) else {
            panic!("segment is not intact at {o}")
        };
        let payload = if !done && f.payload == from {
            done = true;
            to.to_vec()
        } else {
            f.payload.to_vec()
        };
        let h = chain_hash(&prev, f.seq, f.timestamp_ns, f.kind as u8, &payload);
        encode_frame(
            &mut out,
            f.seq,
            f.timestamp_ns,
            f.synced_through,
            f.kind,
            &payload,
            &h,
        );
        prev = h;
    }
    assert!(done, "no record to forge");
    out
}

/// Files in `dir` whose names end with `suffix`, sorted.
pub fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Cuts a cleanly closed segment's log-closed record off its end: the
/// segment as a writer that crashed would have left it. (After a clean
/// close no torn tail is forgiven, so tests of torn tails start here.)
pub fn as_if_crashed(bytes: &mut Vec<u8>) {
    let (at, _, _) = *frame_map(bytes).last().expect("a record");
    assert_eq!(
        bytes[at + 32],
        wormlog::RecordKind::LogClosed as u8,
        "the segment ends with its log-closed record"
    );
    bytes.truncate(at);
}

/// The fixtures' user payload number `i`: text, and every 17th one binary.
pub fn fixture_payload(i: usize) -> Vec<u8> {
    if i % 17 == 16 {
        (0..=255u8).map(|b| b.wrapping_mul(i as u8 | 1)).collect()
    } else {
        format!(r#"{{"actor":"user{}","action":"read","n":{i}}}"#, i % 7).into_bytes()
    }
}

/// Removes the Merkle tree's files, as a forger who rewrote records would
/// (the tree has no key: whoever rewrites the records can rebuild it).
pub fn forget_tree(storage: &MemStorage, dir: &Path) {
    use wormlog::storage::Storage;
    for f in storage.file_paths() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if f.parent() == Some(dir) && (name.starts_with("wormlog.tiles-") || name == "wormlog.tree")
        {
            storage.remove_file(&f).unwrap();
        }
    }
}

/// Copies every file of a fixture log directory into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A fixture's `key value` lines: what its writer saw when it finished.
pub fn fixture_expected(path: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
