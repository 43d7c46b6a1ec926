//! Feature `serde`: typed events in, typed events out, and a record that
//! is not the type asked for is an error naming its seq, not a panic.
#![cfg(feature = "serde")]

use serde::{Deserialize, Serialize};
use wormlog::{Error, Log, Options};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Access {
    actor: String,
    action: String,
    resource: String,
    amount_cents: u64,
}

fn access(i: u64) -> Access {
    Access {
        actor: format!("user{}", i % 5),
        action: ["read", "update"][(i % 2) as usize].into(),
        resource: format!("patients/{i}"),
        amount_cents: u64::MAX - i,
    }
}

#[test]
fn typed_events_come_back_as_written_in_order_without_engine_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default().segment_bytes_max(4096)).unwrap();
    let mut receipts = Vec::new();
    for i in 0..100 {
        receipts.push(log.append_json(&access(i)).unwrap());
    }
    receipts.extend(log.append_json_batch(&[access(100), access(101)]).unwrap());
    let events: Vec<_> = log
        .events::<Access>(..)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(events.len(), 102, "engine records (rolls) are skipped");
    for (i, (e, r)) in events.iter().zip(&receipts).enumerate() {
        assert_eq!(e.data, access(i as u64));
        assert_eq!(
            (e.seq, e.timestamp_ns, e.hash),
            (r.seq, r.timestamp_ns, r.hash)
        );
    }
    // A range reads part of the log.
    let some: Vec<_> = log
        .events::<Access>(receipts[10].seq..=receipts[12].seq)
        .unwrap()
        .collect();
    assert_eq!(some.len(), 3);
}

#[test]
fn a_record_of_another_shape_is_an_error_naming_its_seq_and_the_rest_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Options::default()).unwrap();
    log.append_json(&access(1)).unwrap();
    let odd = log.append(b"not json at all").unwrap();
    log.append_json(&access(2)).unwrap();
    let out: Vec<_> = log.events::<Access>(..).unwrap().collect();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].as_ref().unwrap().data, access(1));
    match &out[1] {
        Err(Error::Json { seq, .. }) => assert_eq!(*seq, Some(odd.seq)),
        other => panic!("expected a JSON error naming seq {}: {other:?}", odd.seq),
    }
    assert!(out[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains(&format!("record {}", odd.seq)));
    assert_eq!(out[2].as_ref().unwrap().data, access(2));
}
