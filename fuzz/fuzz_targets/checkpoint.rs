//! The checkpoint parser and the key parsers on arbitrary text: an error or
//! a checkpoint that a real signature made, never a panic; and a note that
//! verifies re-encodes to the body it came from.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wormlog::{Checkpoint, CheckpointKey, CheckpointPublicKey};

fn key() -> &'static CheckpointKey {
    static KEY: OnceLock<CheckpointKey> = OnceLock::new();
    KEY.get_or_init(|| {
        // The key the seed note was signed with (tests/fuzz_seeds.rs).
        CheckpointKey::from_private_string(include_str!("../seeds/checkpoint/private-key")).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = CheckpointPublicKey::from_vkey_string(text);
    let _ = CheckpointKey::from_private_string(text);
    if let Ok(cp) = Checkpoint::verify_note(text, &key().public()) {
        assert!(text.starts_with(&cp.body()));
    }
});
