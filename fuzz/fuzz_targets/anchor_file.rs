//! The anchor file on arbitrary bytes, beside a log whose only segment
//! starts at seq 10 (so only the anchor can vouch for it): the open fails
//! with an error, or the log opens and verification answers with a verdict
//! (never a panic). It cannot verify intact: no retention record in the
//! log names the vouching entry, so whatever the anchor says, it was
//! written for segments removed outside a retention run (issue 11).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;
use wormlog::format::SegmentHeader;
use wormlog::storage::{MemStorage, Storage};
use wormlog::{Log, Options, Sealing};

fuzz_target!(|data: &[u8]| {
    let storage = MemStorage::new();
    let dir = Path::new("/log");
    storage.create_dir_all(dir).unwrap();
    let header = SegmentHeader {
        version: wormlog::format::FORMAT_VERSION,
        log_id: [7; 16],
        segment: 2,
        first_seq: 10,
        created_ns: 1,
        prev_hash: wormlog::Hash::from_bytes([9; 32]),
    };
    storage.write_file(
        &dir.join("seg-00000000000000000002.wlog"),
        header.encode().to_vec(),
    );
    storage.write_file(&dir.join("wormlog.anchor"), data.to_vec());
    let opts = Options::default()
        .storage(Arc::new(storage.clone()))
        .sealing(Sealing::Manual);
    if let Ok(log) = Log::open(dir, opts) {
        match log.verify() {
            Err(wormlog::Error::Corrupt { .. }) => {}
            other => panic!("a forged anchor must be reported as damage: {other:?}"),
        }
    }
});
