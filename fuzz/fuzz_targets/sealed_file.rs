//! The sealed-file reader (trailer, seek table, index, frames) on arbitrary
//! bytes: an error or a verified file, never a panic or a huge allocation;
//! and a file that verifies reads back whole through `SegmentFile`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use wormlog::storage::{MemStorage, Storage};

fuzz_target!(|data: &[u8]| {
    let storage = MemStorage::new();
    let dir = Path::new("/log");
    storage.create_dir_all(dir).unwrap();
    let path = dir.join("seg-00000000000000000001.wlog.zst");
    storage.write_file(&path, data.to_vec());
    let verified = wormlog::verify_file_with(&storage, &path);
    let read = wormlog::SegmentFile::open_with(&storage, &path)
        .and_then(|file| file.collect::<Result<Vec<_>, _>>());
    if let Ok(report) = verified {
        let records = read.expect("a file that verifies reads back whole");
        assert_eq!(records.len() as u64, report.records);
    }
});
