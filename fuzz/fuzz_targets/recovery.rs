//! Recovery over arbitrary bytes in the active segment: the open either
//! fails with an error, or yields a log that reads back and verifies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;
use wormlog::format::{genesis_hash, SegmentHeader};
use wormlog::storage::{MemStorage, Storage};
use wormlog::{Log, Options, Sealing};

fuzz_target!(|data: &[u8]| {
    let storage = MemStorage::new();
    let dir = Path::new("/log");
    storage.create_dir_all(dir).unwrap();
    // Half the inputs get a valid header, so the fuzzer spends its time on frames.
    let bytes = match data.split_first() {
        Some((0, rest)) => rest.to_vec(),
        _ => {
            let log_id = [7u8; 16];
            let mut b = SegmentHeader {
                version: wormlog::format::FORMAT_VERSION,
                log_id,
                segment: 1,
                first_seq: 1,
                created_ns: 1,
                prev_hash: genesis_hash(&log_id),
            }
            .encode()
            .to_vec();
            b.extend_from_slice(data.get(1..).unwrap_or_default());
            b
        }
    };
    storage.write_file(&dir.join("seg-00000000000000000001.wlog"), bytes);
    let opts = Options::default()
        .storage(Arc::new(storage.clone()))
        .sealing(Sealing::Manual)
        .payload_bytes_max(1 << 20);
    if let Ok(log) = Log::open(dir, opts) {
        for r in log.read(..).unwrap() {
            r.expect("a recovered log reads back");
        }
        log.verify().expect("a recovered log verifies");
        log.append(b"after").expect("a recovered log takes appends");
    }
});
