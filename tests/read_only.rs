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
    as_if_crashed(&mut bytes);
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

#[test]
fn refresh_takes_in_new_records_reading_only_the_new_bytes() {
    let storage = MemStorage::new();
    let writer = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    let batch: Vec<Vec<u8>> = (0..4000)
        .map(|i| format!("event {i:05} with some detail to make it longer").into_bytes())
        .collect();
    writer.append_batch(&batch).unwrap();
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    assert_eq!(reader.head(), writer.head());
    assert!(!reader.refresh().unwrap(), "nothing new yet");
    writer.append(b"one more").unwrap();
    let read_before = storage.bytes_read();
    assert!(reader.refresh().unwrap(), "the head moved");
    let read = storage.bytes_read() - read_before;
    let active_len = reader
        .segments()
        .unwrap()
        .last()
        .unwrap()
        .bytes_uncompressed;
    assert!(active_len > 200 << 10, "fixture: a large active segment");
    assert!(
        read < 16 << 10,
        "refresh read {read} bytes of a {active_len}-byte active segment"
    );
    assert_eq!(reader.head(), writer.head());
    let got = all_records(&reader);
    let want = all_records(&writer);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (g.seq(), g.hash(), g.payload()),
            (w.seq(), w.hash(), w.payload())
        );
    }
    assert_eq!(
        reader.get(writer.head().seq).unwrap().payload(),
        b"one more"
    );
    reader.verify().unwrap();
}

#[test]
fn refresh_follows_a_writer_across_rolls_and_seals() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        Options::default()
            .segment_bytes_max(16 << 10)
            .sealing(Sealing::Background)
    };
    let writer = Log::open(dir.path(), opts()).unwrap();
    writer.append(b"first").unwrap();
    let reader = Log::open_read_only(dir.path(), opts()).unwrap();
    let mut seen = vec![reader.get(1).unwrap()];
    let mut next = 2;
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            for i in 0..3000 {
                writer.append(format!("event {i:05}").as_bytes()).unwrap();
            }
        });
        let mut finished = false;
        loop {
            reader.refresh().unwrap();
            for r in reader.read(next..).unwrap() {
                let r = r.unwrap();
                assert_eq!(r.seq(), next, "contiguous, nothing skipped");
                next += 1;
                seen.push(r);
            }
            if finished {
                break;
            }
            finished = w.is_finished();
        }
    });
    assert!(writer.segments().unwrap().len() > 5, "the writer rolled");
    assert_eq!(reader.head(), writer.head());
    let want = all_records(&writer);
    assert_eq!(seen.len(), want.len());
    for (g, w) in seen.iter().zip(&want) {
        assert_eq!((g.seq(), g.hash()), (w.seq(), w.hash()));
    }
}

#[test]
fn refresh_refuses_a_log_rewritten_under_the_reader() {
    let storage = MemStorage::new();
    let writer = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    for i in 0..20 {
        writer
            .append(format!("transfer {i}: $100").as_bytes())
            .unwrap();
    }
    drop(writer);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    let seen = reader.head();
    // Rewritten with every hash recomputed (it verifies on its own), then
    // rolled, so the reader opens the log anew.
    let active = segment_paths(&storage, &mem_dir()).pop().unwrap();
    forge_payload(&storage, &active, b"transfer 7: $100", b"transfer 7: $900");
    let writer = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    writer.verify().unwrap();
    writer.seal().unwrap();
    let err = reader
        .refresh()
        .expect_err("a rewritten log is not followed");
    assert!(
        matches!(err, Error::Corrupt { seq: Some(s), .. } if s == seen.seq),
        "{err}"
    );
    assert!(err.to_string().contains("chain hash"), "{err}");
}

#[test]
fn refresh_refuses_a_log_that_got_shorter() {
    let storage = MemStorage::new();
    let writer = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    writer.append(b"kept").unwrap();
    let active = segment_paths(&storage, &mem_dir()).pop().unwrap();
    let kept_len = storage.read_file(&active).unwrap().len() as u64;
    writer.append(b"later removed").unwrap();
    drop(writer);
    let reader = Log::open_read_only(mem_dir(), mem_options(&storage)).unwrap();
    // Cut in place (as a repair cuts a file), under the reader's handle.
    let mut file = storage.open_append(&active).unwrap();
    file.truncate(kept_len).unwrap();
    let err = reader.refresh().expect_err("a shorter log is not followed");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("this reader saw it reach"),
        "{err}"
    );
}
