//! format-spec.md's worked example is the format: the bytes it shows are
//! exactly what the encoders produce, and the engine reads them as a log.

mod common;
use common::*;
use wormlog::format::{
    chain_hash, encode_frame, genesis_hash, RecordKind, SegmentHeader, SystemEvent,
};
use wormlog::storage::{MemStorage, Storage};
use wormlog::Log;

const T0: u64 = 1_700_000_000_000_000_000;

fn example_bytes() -> Vec<u8> {
    let log_id: [u8; 16] = core::array::from_fn(|i| i as u8);
    let genesis = genesis_hash(&log_id);
    let header = SegmentHeader {
        version: 2,
        log_id,
        segment: 1,
        first_seq: 1,
        created_ns: T0,
        prev_hash: genesis,
    };
    let mut out = header.encode().to_vec();
    let created = SystemEvent::LogCreated {
        format_version: 2,
        log_id,
        engine: "wormlog 0.1.0".into(),
    }
    .encode();
    let h1 = chain_hash(&genesis, 1, T0, RecordKind::LogCreated as u8, &created);
    encode_frame(&mut out, 1, T0, 96, RecordKind::LogCreated, &created, &h1);
    let h2 = chain_hash(&h1, 2, T0 + 1000, RecordKind::User as u8, b"hi");
    encode_frame(&mut out, 2, T0 + 1000, 208, RecordKind::User, b"hi", &h2);
    out
}

fn spec_hex() -> Vec<u8> {
    let spec = include_str!("../format-spec.md");
    let start = spec.find("<!-- worked-example:start -->").expect("marker");
    let end = spec.find("<!-- worked-example:end -->").expect("marker");
    let mut bytes = Vec::new();
    for line in spec[start..end].lines() {
        let Some((offset, rest)) = line.split_once(": ") else {
            continue;
        };
        if offset.len() != 4 || !offset.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let hex: String = rest
            .chars()
            .take(39)
            .filter(|c| !c.is_whitespace())
            .collect();
        for i in (0..hex.len()).step_by(2) {
            bytes.push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
        }
    }
    bytes
}

#[test]
fn spec_worked_example_matches_the_encoders() {
    let bytes = example_bytes();
    if std::env::var_os("WORMLOG_PRINT_SPEC_EXAMPLE").is_some() {
        for (i, chunk) in bytes.chunks(16).enumerate() {
            let hex: Vec<String> = chunk
                .chunks(2)
                .map(|p| p.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            let ascii: String = chunk
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            println!("{:04x}: {:<39}  {ascii}", i * 16, hex.join(" "));
        }
    }
    assert_eq!(
        spec_hex(),
        bytes,
        "format-spec.md's worked example drifted from the code"
    );
}

#[test]
fn spec_worked_example_opens_and_verifies_as_a_log() {
    let storage = MemStorage::new();
    storage.create_dir_all(&mem_dir()).unwrap();
    storage.write_file(&mem_dir().join("seg-00000000000000000001.wlog"), spec_hex());
    let log = Log::open(mem_dir(), mem_options(&storage)).unwrap();
    assert_eq!(log.get(2).unwrap().payload(), b"hi");
    assert_eq!(log.get(2).unwrap().timestamp(), T0 + 1000);
    log.verify().unwrap();
}

/// §14.6: the Merkle tree of the example's two records and a third (a user
/// record `ok` at T0 + 2000), and the inclusion proof of record 2. Each
/// value is spelled out in the spec between `tree-example` markers.
#[test]
fn the_spec_tree_example_is_what_the_tree_code_computes() {
    use wormlog::format::hex;
    use wormlog::format::merkle::{
        inclusion_proof, leaf_data, leaf_hash, node_hash, root_of, verify_inclusion, HashSource,
    };
    use wormlog::Hash as TreeHash;
    let log_id: [u8; 16] = core::array::from_fn(|i| i as u8);
    let genesis = genesis_hash(&log_id);
    let created = SystemEvent::LogCreated {
        format_version: 2,
        log_id,
        engine: "wormlog 0.1.0".into(),
    }
    .encode();
    let h1 = chain_hash(&genesis, 1, T0, RecordKind::LogCreated as u8, &created);
    let h2 = chain_hash(&h1, 2, T0 + 1000, RecordKind::User as u8, b"hi");
    let h3 = chain_hash(&h2, 3, T0 + 2000, RecordKind::User as u8, b"ok");
    let data = [
        leaf_data(1, T0, RecordKind::LogCreated as u8, &h1),
        leaf_data(2, T0 + 1000, RecordKind::User as u8, &h2),
        leaf_data(3, T0 + 2000, RecordKind::User as u8, &h3),
    ];
    let leaves: Vec<TreeHash> = data.iter().map(|d| leaf_hash(d)).collect();
    let root = root_of(&leaves);
    assert_eq!(
        root,
        node_hash(&node_hash(&leaves[0], &leaves[1]), &leaves[2])
    );
    struct Mem(Vec<TreeHash>);
    impl HashSource for Mem {
        type Error = ();
        fn subtree(&self, start: u64, size: u64) -> Result<TreeHash, ()> {
            Ok(root_of(&self.0[start as usize..(start + size) as usize]))
        }
    }
    let proof = inclusion_proof(&Mem(leaves.clone()), 1, 3).unwrap();
    assert_eq!(proof, vec![leaves[0], leaves[2]]);
    assert!(verify_inclusion(1, 3, &leaves[1], &proof, &root));
    let mut text = String::new();
    text.push_str(&format!("leaf data 2: {}\n", hex(data[1])));
    for (i, l) in leaves.iter().enumerate() {
        text.push_str(&format!("leaf {}: {}\n", i + 1, hex(l)));
    }
    text.push_str(&format!(
        "node 1-2: {}\n",
        hex(node_hash(&leaves[0], &leaves[1]))
    ));
    text.push_str(&format!("root: {}\n", hex(root)));
    eprintln!("{text}");
    let spec = include_str!("../format-spec.md");
    let start = spec.find("<!-- tree-example:start -->").expect("marker");
    let end = spec.find("<!-- tree-example:end -->").expect("marker");
    for line in text.lines() {
        assert!(spec[start..end].contains(line), "the spec lacks `{line}`");
    }
}
