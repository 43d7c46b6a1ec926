//! A log opened read-only is a snapshot of what was committed: it takes no
//! lock, changes no byte, refuses every change, and reads and verifies
//! while a writer (here or in another process) keeps appending.

mod common;
use common::*;
use wormlog::storage::{MemStorage, Storage};
use wormlog::{Error, Log, Options, Sealing};

#[test]
fn reader_opens_while_a_writer_holds_the_log_and_sees_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open(dir.path(), Options::default()).unwrap();
    for i in 0..100 {
        writer.append(format!("event {i}").as_bytes()).unwrap();
    }
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(reader.head(), writer.head());
    assert_eq!(user_payloads(&reader).len(), 100);
    reader.verify().unwrap();
    writer.append(b"later").unwrap();
    assert_eq!(user_payloads(&reader).len(), 100, "a snapshot");
    assert!(matches!(reader.append(b"x"), Err(Error::ReadOnly { .. })));
    assert!(matches!(reader.seal(), Err(Error::ReadOnly { .. })));
    assert!(matches!(
        reader.set_legal_hold("no"),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        reader.apply_retention(0),
        Err(Error::ReadOnly { .. })
    ));
    let again = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(user_payloads(&again).len(), 101);
}

#[test]
fn read_only_open_changes_nothing_even_with_a_torn_tail() {
    let storage = MemStorage::new();
    drop(Log::open(mem_dir(), mem_options(&storage)).unwrap());
    let seg = segment_paths(&storage, &mem_dir()).pop().unwrap();
    let mut bytes = storage.read_file(&seg).unwrap();
    let intact = bytes.len();
    bytes.extend_from_slice(&[0x77; 100]);
    storage.write_file(&seg, bytes.clone());
    let before = (storage.file_paths(), storage.mutations());
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    reader.verify().unwrap();
    assert_eq!(
        reader.segments().unwrap()[0].bytes_uncompressed,
        intact as u64
    );
    drop(reader);
    assert_eq!((storage.file_paths(), storage.mutations()), before);
    assert_eq!(
        storage.read_file(&seg).unwrap(),
        bytes,
        "the tail is left alone"
    );
}

#[test]
fn read_only_open_of_a_missing_log_creates_nothing() {
    let storage = MemStorage::new();
    let err = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(!storage.dir_exists(&mem_dir()).unwrap());
}

#[test]
fn readers_verify_while_a_writer_appends_rolls_and_seals() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Log::open(
        dir.path(),
        Options::default()
            .sealing(Sealing::Background)
            .segment_bytes_max(32 << 10),
    )
    .unwrap();
    writer.append(b"first").unwrap();
    std::thread::scope(|s| {
        let w = &writer;
        let appender = s.spawn(move || {
            for i in 0..4000 {
                w.append(format!("concurrent event {i:05}").as_bytes())
                    .unwrap();
            }
        });
        let mut checked = 0;
        while !appender.is_finished() || checked < 5 {
            let reader = Log::open_read_only(dir.path(), Options::default())
                .unwrap_or_else(|e| panic!("reader open {checked}: {e}"));
            reader
                .verify()
                .unwrap_or_else(|e| panic!("reader verify {checked}: {e}"));
            let n = user_payloads(&reader).len();
            assert!(n >= 1);
            checked += 1;
        }
    });
    let reader = Log::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(user_payloads(&reader).len(), 4001);
}
