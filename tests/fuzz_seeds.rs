//! Writes the fuzz targets' seed corpora (fuzz/seeds/TARGET/) from files the
//! engine really writes. Not a test of its own: run it after a format change
//! with `cargo test --test fuzz_seeds -- --ignored`.

mod common;
use common::*;
use std::path::Path;
use wormlog::format::{anchor_genesis, encode_anchor_header, AnchorEntry, DroppedSegment};
use wormlog::storage::MemStorage;
use wormlog::{Hash, Log};

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand after a format change"]
fn write_fuzz_seed_corpora() {
    let storage = MemStorage::new();
    let log = Log::open(mem_dir(), mem_options(&storage).seal_frame_bytes(4096)).unwrap();
    for i in 0..40 {
        log.append(format!(r#"{{"actor":"u{i}","action":"read"}}"#).as_bytes())
            .unwrap();
    }
    log.append_batch(&[b"a".as_slice(), b"", b"ccc"]).unwrap();
    log.seal().unwrap();
    log.append(b"tail").unwrap();
    drop(log);
    for p in storage.file_paths() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = storage.read_file(&p).unwrap();
        if name.ends_with(".wlog.zst") {
            put("sealed_file", &name, &bytes);
        } else if name.ends_with(".wlog") {
            // The recovery target: selector 0 takes the whole file as is.
            put("recovery", &name, &[&[0u8][..], &bytes].concat());
            put("frame_decode", &name, &bytes[96..]);
        }
    }
    let log_id = [7u8; 16];
    let entry = AnchorEntry {
        time_ns: 1,
        first_seq: 10,
        prev_hash: Hash::from_bytes([9; 32]),
        prev_entry_hash: anchor_genesis(&log_id),
        dropped: vec![DroppedSegment {
            segment: 1,
            first_seq: 1,
            last_seq: 9,
            last_hash: Hash::from_bytes([9; 32]),
        }],
        ext: None,
    };
    put(
        "anchor_file",
        "one-entry",
        &[&encode_anchor_header(&log_id)[..], &entry.encode()].concat(),
    );
    // The checkpoint target signs with a key it makes from a fixed seed.
    let key = wormlog::CheckpointKey::from_private_string(&fuzz_key()).unwrap();
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    put(
        "checkpoint",
        "signed-note",
        log.checkpoint().unwrap().sign(&key).as_bytes(),
    );
    put(
        "checkpoint",
        "vkey",
        key.public().to_vkey_string().as_bytes(),
    );
    put("checkpoint", "private-key", fuzz_key().as_bytes());
    drop(log);
    put(
        "model",
        "appends-crash-seal",
        &[0, 0, 40, 2, 3, 3, 0, 4, 1, 5, 0, 0, 9, 6, 0, 7, 0],
    );
    put(
        "model",
        "buffered-crash",
        &[1, 0, 200, 0, 200, 3, 0, 0, 100, 4, 3, 6, 0],
    );
    // Arms a failed fdatasync, appends into it (refused, then poisoned),
    // crashes and appends again.
    put(
        "model",
        "failed-sync",
        &[0, 0, 10, 9, 1, 0, 20, 0, 30, 4, 0, 0, 5, 6, 0],
    );
}

/// The fuzz target's fixed key: seed 0x01 x 32, named "fuzz".
fn fuzz_key() -> String {
    let name = "fuzz";
    let seed = [1u8; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([1u8]);
    h.update(public.as_bytes());
    let id = wormlog::format::hex(&h.finalize()[..4]);
    let mut blob = vec![1u8];
    blob.extend_from_slice(&seed);
    use base64::Engine;
    format!(
        "PRIVATE+KEY+{name}+{id}+{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}
