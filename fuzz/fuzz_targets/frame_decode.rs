//! Every decoder of untrusted bytes, on arbitrary input: never panics, and
//! whatever decodes re-encodes to the same bytes. Also the streaming
//! single-file reader (`wormctl dump -`): contiguous seqs, frames inside
//! the input, and it stops at the first error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wormlog::format::*;

fuzz_target!(|data: &[u8]| {
    if let Decoded::Frame(f) = decode_frame(data) {
        let mut out = Vec::new();
        encode_frame(
            &mut out,
            f.seq,
            f.timestamp_ns,
            f.synced_through,
            f.kind,
            f.payload,
            &f.hash,
        );
        assert_eq!(&out[..], f.raw);
        let _ = SystemEvent::decode(f.kind, f.payload);
    }
    if let Ok(h) = SegmentHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..SEGMENT_HEADER_LEN]);
    }
    if let Some(&k) = data.first() {
        if let Some(kind) = RecordKind::from_u8(k) {
            if let Some(Ok(e)) = SystemEvent::decode(kind, &data[1..]) {
                assert_eq!(e.encode(), &data[1..]);
            }
        }
    }
    if let Ok(i) = SealedIndex::decode(data) {
        assert_eq!(i.encode(), data);
    }
    let _ = decode_seek_table(data);
    if data.len() >= SEEK_FOOTER_LEN {
        let _ = seek_table_len(&data[data.len() - SEEK_FOOTER_LEN..], data.len() as u64);
    }
    if let Ok(Some((e, n))) = AnchorEntry::decode(data) {
        assert_eq!(e.encode(), &data[..n]);
    }
    let _ = decode_anchor_header(data);
    if let Ok(file) = wormlog::SegmentFile::from_reader("fuzz", std::io::Cursor::new(data.to_vec()))
    {
        let first = file.info().first_seq;
        let mut next = first;
        let mut failed = false;
        for r in file {
            assert!(!failed, "records after an error");
            match r {
                Ok(r) => {
                    assert_eq!(r.seq(), next);
                    let f = r.frame();
                    assert!(f.offset + u64::from(f.padded_len) <= data.len() as u64);
                    next += 1;
                }
                Err(_) => failed = true,
            }
        }
    }
});
