//! Witness cosignatures (format-spec.md §18.2; C2SP tlog-cosignature,
//! `cosignature/v1`, Ed25519): a witness's statement that, at its time, the
//! checkpoint is the largest tree of that log it has seen, consistent with
//! every one it cosigned before. A cosignature is one more signature line
//! on the log's note; the signed message is `cosignature/v1\n`,
//! `time <unix seconds>\n` and the checkpoint body. Verification fails
//! closed: a line naming a witness's key (name and key id) that does not
//! verify is a changed note.

use crate::checkpoint::{
    parse_private_key, parse_vkey, private_key_text, random_signing_key, split_note, typed_key_id,
    vkey_text,
};
use crate::error::CheckpointError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// C2SP signature type byte of an Ed25519 cosigner (`cosignature/v1`).
const COSIGNER_TYPE: u8 = 0x04;
/// The spec's bound on a cosignature's timestamp.
const TIME_MAX: u64 = (1 << 63) - 1;

/// The message a `cosignature/v1` signature covers: header line, time
/// line, then the checkpoint's body (with its final newline).
pub fn cosigned_message(body: &str, time_s: u64) -> String {
    format!("cosignature/v1\ntime {time_s}\n{body}")
}

/// A witness's Ed25519 cosigning key with its name.
pub struct WitnessKey {
    name: String,
    signing: SigningKey,
}

impl std::fmt::Debug for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WitnessKey {
    /// A new key from the kernel's randomness. The name should be a
    /// schema-less URL naming the witness (C2SP tlog-cosignature).
    pub fn generate(name: &str) -> std::io::Result<WitnessKey> {
        Ok(WitnessKey {
            name: name.to_string(),
            signing: random_signing_key(name)?,
        })
    }

    /// `PRIVATE+KEY+<name>+<key id hex>+<base64(0x04 || seed)>`.
    pub fn to_private_string(&self) -> String {
        private_key_text(&self.name, COSIGNER_TYPE, &self.signing)
    }

    /// Parses a key as [`to_private_string`](Self::to_private_string)
    /// writes it, checking its name, type and key id.
    pub fn from_private_string(s: &str) -> Result<WitnessKey, CheckpointError> {
        let (name, signing) = parse_private_key(s, COSIGNER_TYPE)?;
        Ok(WitnessKey { name, signing })
    }

    /// The verifier key that checks this witness's cosignatures.
    pub fn public(&self) -> WitnessPublicKey {
        WitnessPublicKey {
            name: self.name.clone(),
            key: self.signing.verifying_key(),
        }
    }

    fn id(&self) -> [u8; 4] {
        typed_key_id(&self.name, COSIGNER_TYPE, &self.signing.verifying_key())
    }

    /// A cosignature line (with its newline) over the checkpoint `body` at
    /// `time_s` (POSIX seconds): `— <name> base64(key id || time (u64,
    /// big-endian) || signature)`.
    pub fn cosign(&self, body: &str, time_s: u64) -> String {
        let sig = self
            .signing
            .sign(cosigned_message(body, time_s.min(TIME_MAX)).as_bytes());
        let mut blob = self.id().to_vec();
        blob.extend_from_slice(&time_s.min(TIME_MAX).to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        format!("\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

/// A witness's public cosigning key with its name (a C2SP vkey of type
/// 0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPublicKey {
    name: String,
    key: VerifyingKey,
}

/// What checking a note for one witness's cosignature found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cosigned {
    /// A valid cosignature, made at this time (POSIX seconds).
    At(u64),
    /// No line names this witness's key.
    Absent,
}

impl WitnessPublicKey {
    /// `<name>+<key id hex>+<base64(0x04 || public key)>`.
    pub fn to_vkey_string(&self) -> String {
        vkey_text(&self.name, COSIGNER_TYPE, &self.key)
    }

    /// Parses a vkey as [`to_vkey_string`](Self::to_vkey_string) writes it.
    pub fn from_vkey_string(s: &str) -> Result<WitnessPublicKey, CheckpointError> {
        let (name, key) = parse_vkey(s, COSIGNER_TYPE)?;
        Ok(WitnessPublicKey { name, key })
    }

    /// A witness key from raw Ed25519 bytes (tests of policies).
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, raw: &[u8]) -> WitnessPublicKey {
        WitnessPublicKey {
            name: name.to_string(),
            key: VerifyingKey::from_bytes(raw.try_into().unwrap()).unwrap(),
        }
    }

    /// The witness's name, as its cosignature lines carry it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw public key (two vkeys with one key are one witness).
    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    fn id(&self) -> [u8; 4] {
        typed_key_id(&self.name, COSIGNER_TYPE, &self.key)
    }

    /// Whether the signed note `note` carries this witness's cosignature
    /// over its body. A line naming this key (name and key id) whose
    /// signature does not verify, or whose time exceeds 2^63-1, is an
    /// error: the note was changed.
    pub fn check_note(&self, note: &str) -> Result<Cosigned, CheckpointError> {
        let (body, lines) = split_note(note)?;
        self.check_lines(body, &lines)
    }

    pub(crate) fn check_lines(
        &self,
        body: &str,
        lines: &[(&str, &str)],
    ) -> Result<Cosigned, CheckpointError> {
        let want = self.id();
        let mut at = None;
        for (name, blob) in lines {
            if *name != self.name {
                continue;
            }
            let Ok(blob) = B64.decode(blob) else {
                return Err(CheckpointError::Malformed("signature is not base64".into()));
            };
            if blob.len() != 4 + 8 + 64 || blob[..4] != want {
                continue;
            }
            let time = u64::from_be_bytes(blob[4..12].try_into().unwrap_or_default());
            // Every line by this key must verify (as for the log's own
            // line): a changed one beside a good one is a changed note.
            let verified = time <= TIME_MAX
                && Signature::from_slice(&blob[12..]).is_ok_and(|sig| {
                    self.key
                        .verify(cosigned_message(body, time).as_bytes(), &sig)
                        .is_ok()
                });
            if !verified {
                return Err(CheckpointError::NoValidSignature {
                    key_name: self.name.clone(),
                });
            }
            at.get_or_insert(time);
        }
        if let Some(time) = at {
            return Ok(Cosigned::At(time));
        }
        Ok(Cosigned::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forged_line(note: &str) -> String {
        note[note.find("\n\n").unwrap() + 2..]
            .lines()
            .filter(|l| l.contains("witness.example/w1"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
    use crate::checkpoint::{Checkpoint, CheckpointKey};
    use crate::format::Hash;

    fn note() -> (String, CheckpointKey) {
        let key = CheckpointKey::generate("log.example").unwrap();
        let cp = Checkpoint {
            log_id: [1; 16],
            seq: 7,
            hash: Hash::from_bytes([2; 32]),
            timestamp_ns: 5,
            retention: None,
            tree_root: None,
        };
        (cp.sign(&key), key)
    }

    #[test]
    fn a_cosignature_verifies_over_the_spec_message_and_any_change_fails() {
        let (note, log_key) = note();
        let w = WitnessKey::generate("witness.example/w1").unwrap();
        let w = WitnessKey::from_private_string(&w.to_private_string()).unwrap();
        let public = WitnessPublicKey::from_vkey_string(&w.public().to_vkey_string()).unwrap();
        let body = &note[..note.find("\n\n").unwrap() + 1];
        let line = w.cosign(body, 1_679_315_147);
        let cosigned = format!("{note}{line}");
        assert_eq!(
            public.check_note(&cosigned).unwrap(),
            Cosigned::At(1_679_315_147)
        );
        // The log's own signature still verifies beside it.
        assert!(Checkpoint::verify_note(&cosigned, &log_key.public()).is_ok());
        // The blob is key id, big-endian time, signature (C2SP layout).
        let blob = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(blob.len(), 76);
        assert_eq!(&blob[4..12], &1_679_315_147u64.to_be_bytes());
        // The body changed, or the time changed: not a valid cosignature.
        let changed = cosigned.replacen("\n7\n", "\n8\n", 1);
        assert!(public.check_note(&changed).is_err());
        let mut b = blob.clone();
        b[11] ^= 1;
        let forged = format!("{note}\u{2014} witness.example/w1 {}\n", B64.encode(b));
        assert!(matches!(
            public.check_note(&forged),
            Err(CheckpointError::NoValidSignature { .. })
        ));
        // A changed line beside the good one, in either order: changed.
        for both in [
            format!("{cosigned}{}", forged_line(&forged)),
            format!("{note}{}{line}", forged_line(&forged)),
        ] {
            assert!(matches!(
                public.check_note(&both),
                Err(CheckpointError::NoValidSignature { .. })
            ));
        }
        // Another witness: absent, not an error.
        let other = WitnessKey::generate("witness.example/w1").unwrap().public();
        assert_eq!(other.check_note(&cosigned).unwrap(), Cosigned::Absent);
        // A log key is not a witness key, and says so.
        let err = WitnessPublicKey::from_vkey_string(&log_key.public().to_vkey_string());
        assert!(matches!(err, Err(CheckpointError::BadKey(m)) if m.contains("0x04")));
    }
}
