//! Signed checkpoints (format-spec.md, "Checkpoints"): a log's head (log id,
//! seq, chain hash, time), signed with Ed25519 in the C2SP signed-note
//! format, so that it reads like the checkpoints transparency logs publish.
//! A chain alone cannot catch a log rewritten with every hash recomputed; a
//! checkpoint kept elsewhere can. Parsing and verification fail closed.

#[cfg(feature = "signing")]
use crate::error::CheckpointError;
#[cfg(feature = "signing")]
use crate::format::unhex;
use crate::format::{hex, Hash};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
#[cfg(feature = "signing")]
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
#[cfg(feature = "signing")]
use sha2::{Digest, Sha256};

/// Origin lines are `wormlog/` and the log id in hex.
const ORIGIN_PREFIX: &str = "wormlog/";
/// Origins of checkpoints that carry the Merkle tree's root (format 2,
/// C2SP tlog-checkpoint) end with this; the chain hash moves to a line of
/// its own.
const TREE_ORIGIN_SUFFIX: &str = "/v2";
const CHAIN_PREFIX: &str = "wormlog-chain ";
const TIME_PREFIX: &str = "wormlog-time ";
const RETENTION_PREFIX: &str = "wormlog-retention ";
/// C2SP signature type byte for Ed25519.
#[cfg(feature = "signing")]
const ED25519_TYPE: u8 = 0x01;
/// No note we accept is longer (a checkpoint is about 200 bytes).
#[cfg(feature = "signing")]
pub const NOTE_BYTES_MAX: usize = 64 << 10;
/// Signature lines a note may carry: the log's and 15 cosignatures.
#[cfg(feature = "signing")]
pub const SIGNATURE_LINES_MAX: usize = 16;

/// The head of a log at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's id, 16 random bytes chosen when the log was created.
    pub log_id: [u8; 16],
    /// Seq of the last record covered (records 1..=seq, whatever retention
    /// has dropped since).
    pub seq: u64,
    /// Chain hash of record `seq`.
    pub hash: Hash,
    /// Its commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// What retention had done when the checkpoint was taken (an extension
    /// line of the note; `None` in notes written before format 2).
    pub retention: Option<RetentionPoint>,
    /// The root of the RFC 6962 Merkle tree of records 1..=seq (tree size
    /// `seq`), where the log has a tree: the note is then a C2SP
    /// tlog-checkpoint whose third line is this root. `None` in notes of
    /// the older shape (third line the chain hash) and for a log whose
    /// first records retention dropped before it had a tree.
    pub tree_root: Option<Hash>,
}

/// The retention state a checkpoint commits to: the first seq the log
/// still held, and the hash of the newest anchor entry (the anchor genesis
/// hash when retention had never run). A verifier holding the checkpoint
/// can tell which drops happened after it: the anchor entries after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPoint {
    /// The first seq the log still held (1 before any drop).
    pub first_seq: u64,
    /// The newest anchor entry's hash (BLAKE3, 32 bytes).
    pub anchor_head: Hash,
    /// The minimum age of the retention policy the log's records stated,
    /// in ns (0: none stated). A verifier judges every drop made after the
    /// checkpoint by at least this age (format 3; `None` in notes written
    /// before it, whose retention line has two fields).
    pub min_age_ns: Option<u64>,
}

impl Checkpoint {
    /// The signed part of the note: origin, size, root hash, and the
    /// extension lines (time; retention where known).
    pub fn body(&self) -> String {
        let mut body = match &self.tree_root {
            Some(root) => format!(
                "{ORIGIN_PREFIX}{}{TREE_ORIGIN_SUFFIX}\n{}\n{}\n{CHAIN_PREFIX}{}\n{TIME_PREFIX}{}\n",
                hex(self.log_id),
                self.seq,
                B64.encode(root),
                B64.encode(self.hash),
                self.timestamp_ns
            ),
            None => format!(
                "{ORIGIN_PREFIX}{}\n{}\n{}\n{TIME_PREFIX}{}\n",
                hex(self.log_id),
                self.seq,
                B64.encode(self.hash),
                self.timestamp_ns
            ),
        };
        if let Some(r) = &self.retention {
            body.push_str(&format!(
                "{RETENTION_PREFIX}{} {}",
                r.first_seq,
                B64.encode(r.anchor_head)
            ));
            if let Some(min_age) = r.min_age_ns {
                body.push_str(&format!(" {min_age}"));
            }
            body.push('\n');
        }
        body
    }

    /// The signed note: body, blank line, one signature line.
    #[cfg(feature = "signing")]
    pub fn sign(&self, key: &CheckpointKey) -> String {
        let body = self.body();
        let sig = key.signing.sign(body.as_bytes());
        let mut blob = key_id(&key.name, &key.signing.verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n\u{2014} {} {}\n", key.name, B64.encode(blob))
    }

    /// Parses a signed note and checks that `key` signed it. Every other
    /// signature line is ignored, as C2SP notes allow; a note without a
    /// valid signature by `key` is an error.
    #[cfg(feature = "signing")]
    pub fn verify_note(
        note: &str,
        key: &CheckpointPublicKey,
    ) -> Result<Checkpoint, CheckpointError> {
        let (body, lines) = split_note(note)?;
        let checkpoint = parse_body(body)?;
        let want_id = key_id(&key.name, &key.key);
        let mut by_key = false;
        let signers = signers_of(&lines);
        for (name, blob) in lines {
            if name != key.name {
                continue;
            }
            let Ok(blob) = B64.decode(blob) else {
                return Err(CheckpointError::Malformed("signature is not base64".into()));
            };
            if blob.len() != 4 + 64 || blob[..4] != want_id {
                continue;
            }
            by_key = true;
            // Every line by this key must verify: a changed line beside a
            // good one is a changed note (C2SP signed-note; the Go checker
            // found both orders accepted).
            let verified = Signature::from_slice(&blob[4..])
                .is_ok_and(|sig| key.key.verify(body.as_bytes(), &sig).is_ok());
            if !verified {
                return Err(CheckpointError::NoValidSignature {
                    key_name: key.name.clone(),
                });
            }
        }
        if by_key {
            return Ok(checkpoint);
        }
        // No line names this key (name and key id): the operator gave
        // another key than the note's. A line that names it and does not
        // verify is a changed note (above).
        Err(CheckpointError::NotSignedByKey {
            key_name: key.name.clone(),
            key_id: hex(want_id),
            signers,
        })
    }
}

/// One signature line of a note: the signer's name and its base64 blob.
#[cfg(feature = "signing")]
pub(crate) type SignatureLine<'a> = (&'a str, &'a str);

/// A signed note's body (through its last newline) and its signature
/// lines as (name, base64 blob), the whole note checked for shape first:
/// bytes after a valid signature line (NULs, a half-written line) would
/// otherwise ride along in a note that verifies. At most
/// `SIGNATURE_LINES_MAX` lines; `NOTE_BYTES_MAX` bytes.
#[cfg(feature = "signing")]
pub(crate) fn split_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), CheckpointError> {
    let bad = |m: &str| CheckpointError::Malformed(m.to_string());
    if note.len() > NOTE_BYTES_MAX {
        return Err(bad("longer than any checkpoint"));
    }
    let Some(split) = note.find("\n\n") else {
        return Err(bad("no blank line between body and signatures"));
    };
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(bad("no signature lines"));
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(bad(
            "does not end with a newline after its last signature line",
        ));
    };
    let mut lines = Vec::new();
    for line in sigs.split('\n') {
        if lines.len() == SIGNATURE_LINES_MAX {
            return Err(bad("too many signature lines"));
        }
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(bad("signature line does not start with an em dash"));
        };
        let Some(name_blob) = rest.split_once(' ') else {
            return Err(bad("signature line has no signature"));
        };
        lines.push(name_blob);
    }
    Ok((body, lines))
}

/// Who signed a note, as its signature lines say: `name (key id)` each,
/// for the operator who gave another key (unverified: names only).
#[cfg(feature = "signing")]
fn signers_of(lines: &[(&str, &str)]) -> String {
    let named: Vec<String> = lines
        .iter()
        .map(|(name, blob)| match B64.decode(blob) {
            Ok(b) if b.len() >= 4 => format!("{} (key id {})", name, hex(&b[..4])),
            _ => (*name).to_string(),
        })
        .collect();
    if named.is_empty() {
        "no key".into()
    } else {
        named.join(", ")
    }
}

#[cfg(feature = "signing")]
fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
    let bad = |m: &str| CheckpointError::Malformed(m.to_string());
    let lines: Vec<&str> = body
        .strip_suffix('\n')
        .unwrap_or(body)
        .split('\n')
        .collect();
    let tree = lines
        .first()
        .is_some_and(|o| o.ends_with(TREE_ORIGIN_SUFFIX));
    // With a tree: origin, size, root, chain, time[, retention]; without:
    // origin, seq, chain, time[, retention].
    // A /v2 note always has its retention line (format-2 writers write
    // it): without it nothing commits the note to what retention had done.
    let (origin, size, root, hash, time, retention) = match (tree, &lines[..]) {
        (true, [origin, size, root, chain, time, retention]) => {
            (*origin, *size, Some(*root), *chain, *time, Some(*retention))
        }
        (false, [origin, size, hash, time]) => (*origin, *size, None, *hash, *time, None),
        (false, [origin, size, hash, time, retention]) => {
            (*origin, *size, None, *hash, *time, Some(*retention))
        }
        _ => {
            return Err(bad(
                "body is not origin, size, root, chain, time, retention (wormlog/<id>/v2) \
                 or origin, seq, hash, time[, retention] (wormlog/<id>)",
            ))
        }
    };
    let hash = match root {
        Some(_) => hash
            .strip_prefix(CHAIN_PREFIX)
            .ok_or_else(|| bad("fourth line is not `wormlog-chain <hash>`"))?,
        None => hash,
    };
    let id_hex = origin
        .strip_prefix(ORIGIN_PREFIX)
        .map(|o| o.strip_suffix(TREE_ORIGIN_SUFFIX).unwrap_or(o))
        .ok_or_else(|| bad("origin is not wormlog/<log id>"))?;
    // One spelling: lowercase, as the writer writes it (a note's bytes are
    // what is signed, and two spellings of one origin are two origins).
    let log_id: [u8; 16] = unhex(id_hex)
        .filter(|_| {
            id_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("log id is not 32 lowercase hex digits"))?;
    if size.is_empty()
        || !size.bytes().all(|b| b.is_ascii_digit())
        || (size.len() > 1 && size.starts_with('0'))
    {
        return Err(bad("seq is not a decimal number"));
    }
    let seq = size.parse().map_err(|_| bad("seq out of range"))?;
    let hash: Hash = B64
        .decode(hash)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("hash is not 32 bytes of base64"))?;
    let timestamp_ns = time
        .strip_prefix(TIME_PREFIX)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("time line is not `wormlog-time <ns>`"))?;
    let retention = retention.map(parse_retention).transpose()?;
    let tree_root = root
        .map(|r| {
            B64.decode(r)
                .ok()
                .and_then(|v| Hash::try_from(v).ok())
                .ok_or_else(|| bad("root is not 32 bytes of base64"))
        })
        .transpose()?;
    Ok(Checkpoint {
        log_id,
        seq,
        hash,
        timestamp_ns,
        retention,
        tree_root,
    })
}

/// `wormlog-retention <first seq> <anchor head, base64>[ <min age ns>]`.
#[cfg(feature = "signing")]
fn parse_retention(line: &str) -> Result<RetentionPoint, CheckpointError> {
    let bad = || {
        CheckpointError::Malformed(
            "retention line is not `wormlog-retention <seq> <hash>[ <min age ns>]`".into(),
        )
    };
    let decimal = |s: &str| -> Result<u64, CheckpointError> {
        if s.is_empty()
            || !s.bytes().all(|b| b.is_ascii_digit())
            || (s.len() > 1 && s.starts_with('0'))
        {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let rest = line.strip_prefix(RETENTION_PREFIX).ok_or_else(bad)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let (seq, head, min_age) = match fields[..] {
        [seq, head] => (seq, head, None),
        [seq, head, min_age] => (seq, head, Some(decimal(min_age)?)),
        _ => return Err(bad()),
    };
    let first_seq = decimal(seq)?;
    let anchor_head: Hash = B64
        .decode(head)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(bad)?;
    Ok(RetentionPoint {
        first_seq,
        anchor_head,
        min_age_ns: min_age,
    })
}

/// C2SP key id: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key).
#[cfg(feature = "signing")]
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    typed_key_id(name, ED25519_TYPE, key)
}

/// C2SP key id for signature type `kind` (0x01 a note signer, 0x04 an
/// Ed25519 cosigner): SHA-256(name || "\n" || kind || public key)[:4].
#[cfg(feature = "signing")]
pub(crate) fn typed_key_id(name: &str, kind: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Longest key name accepted.
#[cfg(feature = "signing")]
const KEY_NAME_MAX: usize = 200;

/// format-spec.md §10: 1-200 printable ASCII characters other than `+`.
/// `+` separates a key's fields; a space would split a signature line; a
/// control character in a name would reach the terminal of whoever verifies.
#[cfg(feature = "signing")]
pub(crate) fn check_key_name(name: &str) -> Result<(), CheckpointError> {
    let printable = |b: u8| (0x21..=0x7e).contains(&b) && b != b'+';
    if name.is_empty() || name.len() > KEY_NAME_MAX || !name.bytes().all(printable) {
        return Err(CheckpointError::BadKey(format!(
            "key names are 1-{KEY_NAME_MAX} printable ASCII characters (no spaces or \
             control characters) other than '+'"
        )));
    }
    Ok(())
}

/// Where automatic checkpoints go (`Options::auto_checkpoints`): each
/// signed note, as text, when it is made. A note kept on the log's own host
/// is weak; the sink is how notes leave it.
pub trait CheckpointSink: Send + Sync {
    /// Stores one signed note. An error is kept for `Log::checkpoint_error`;
    /// the log goes on, and the note is made again when next due.
    fn put(&self, note: &str) -> std::io::Result<()>;
}

/// A sink that appends each note to a file, synced (the file is created if
/// missing). Notes follow one another; each ends with its newline.
#[derive(Debug, Clone)]
pub struct FileSink {
    /// The file the notes are appended to.
    pub path: std::path::PathBuf,
}

impl CheckpointSink for FileSink {
    fn put(&self, note: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(note.as_bytes())?;
        f.sync_data()
    }
}

/// Built without the `signing` feature: no key can exist, so nothing is
/// signed (`Options::auto_checkpoints` and `Log::export_tlog` with a key
/// cannot be called with one). Turn the feature on to sign.
#[cfg(not(feature = "signing"))]
#[derive(Debug)]
pub enum CheckpointKey {}

#[cfg(not(feature = "signing"))]
impl Checkpoint {
    /// Unreachable without the `signing` feature (there is no key).
    pub fn sign(&self, key: &CheckpointKey) -> String {
        match *key {}
    }
}

/// Checkpoints a writer signs by itself: the head, every `interval` while
/// it moves, and on close.
#[derive(Clone)]
pub struct AutoCheckpoints {
    /// The key each note is signed with.
    pub key: std::sync::Arc<CheckpointKey>,
    /// How often a note is made while the head moves.
    pub interval: std::time::Duration,
    /// Where each note goes.
    pub sink: std::sync::Arc<dyn CheckpointSink>,
}

impl std::fmt::Debug for AutoCheckpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoCheckpoints")
            .field("key", &self.key)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 signing key with its name.
#[cfg(feature = "signing")]
pub struct CheckpointKey {
    name: String,
    signing: SigningKey,
}

#[cfg(feature = "signing")]
impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "signing")]
impl CheckpointKey {
    /// Whether `name` may name a key (format-spec.md §10), so that a tool
    /// can refuse it before making anything.
    pub fn check_name(name: &str) -> Result<(), CheckpointError> {
        check_key_name(name)
    }

    /// A new key from the kernel's randomness.
    pub fn generate(name: &str) -> std::io::Result<CheckpointKey> {
        Ok(CheckpointKey {
            name: name.to_string(),
            signing: random_signing_key(name)?,
        })
    }

    /// `PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>`, as Go's
    /// note package writes signer keys.
    pub fn to_private_string(&self) -> String {
        private_key_text(&self.name, ED25519_TYPE, &self.signing)
    }

    /// Parses a signer key as [`to_private_string`](Self::to_private_string)
    /// writes it (whitespace around it ignored), checking its name and that
    /// its key id matches the key.
    pub fn from_private_string(s: &str) -> Result<CheckpointKey, CheckpointError> {
        let (name, signing) = parse_private_key(s, ED25519_TYPE)?;
        Ok(CheckpointKey { name, signing })
    }

    /// The verifier key that checks this key's signatures.
    pub fn public(&self) -> CheckpointPublicKey {
        CheckpointPublicKey {
            name: self.name.clone(),
            key: self.signing.verifying_key(),
        }
    }
}

#[cfg(feature = "signing")]
pub(crate) fn split3(s: &str) -> Option<(&str, &str, &str)> {
    let mut parts = s.splitn(3, '+');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The words a key's type byte is named by in messages.
#[cfg(feature = "signing")]
fn kind_name(kind: u8) -> &'static str {
    if kind == ED25519_TYPE {
        "a log's signing key (type 0x01)"
    } else {
        "a witness's cosigner key (type 0x04)"
    }
}

/// A new Ed25519 key from the kernel's randomness, for a key named `name`
/// (checked first): the log's signing keys and witnesses' cosigning keys.
#[cfg(feature = "signing")]
pub(crate) fn random_signing_key(name: &str) -> std::io::Result<SigningKey> {
    check_key_name(name).map_err(std::io::Error::other)?;
    let mut seed = [0u8; 32];
    // The OS's generator, as every other secret of the engine is made.
    getrandom::getrandom(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `PRIVATE+KEY+<name>+<key id hex>+<base64(kind || seed)>`, as Go's note
/// package writes signer keys.
#[cfg(feature = "signing")]
pub(crate) fn private_key_text(name: &str, kind: u8, signing: &SigningKey) -> String {
    let mut blob = vec![kind];
    blob.extend_from_slice(signing.as_bytes());
    format!(
        "PRIVATE+KEY+{name}+{}+{}",
        hex(typed_key_id(name, kind, &signing.verifying_key())),
        B64.encode(blob)
    )
}

/// Parses `private_key_text` of type `kind` (whitespace around it
/// ignored), checking its name, type and key id.
#[cfg(feature = "signing")]
pub(crate) fn parse_private_key(
    s: &str,
    kind: u8,
) -> Result<(String, SigningKey), CheckpointError> {
    let bad = |m: &str| CheckpointError::BadKey(m.to_string());
    let rest = s
        .trim()
        .strip_prefix("PRIVATE+KEY+")
        .ok_or_else(|| bad("not a PRIVATE+KEY+ string"))?;
    let (name, id, blob) = split3(rest).ok_or_else(|| bad("expected name+id+key"))?;
    check_key_name(name)?;
    let blob = B64.decode(blob).map_err(|_| bad("key is not base64"))?;
    let seed: [u8; 32] = match blob.split_first() {
        Some((&k, seed)) if k == kind => seed.try_into().map_err(|_| bad("not an Ed25519 key"))?,
        _ => {
            return Err(bad(&format!(
                "not an Ed25519 key: expected {}",
                kind_name(kind)
            )))
        }
    };
    let signing = SigningKey::from_bytes(&seed);
    if hex(typed_key_id(name, kind, &signing.verifying_key())) != id {
        return Err(bad("key id does not match the key"));
    }
    Ok((name.to_string(), signing))
}

/// `<name>+<key id hex>+<base64(kind || public key)>` (a C2SP vkey).
#[cfg(feature = "signing")]
pub(crate) fn vkey_text(name: &str, kind: u8, key: &VerifyingKey) -> String {
    let mut blob = vec![kind];
    blob.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex(typed_key_id(name, kind, key)),
        B64.encode(blob)
    )
}

/// Parses `vkey_text` of type `kind` (whitespace around it ignored),
/// checking its name, type, point and key id; a key of the other type is
/// named as such (a log's key given for a witness's, or the reverse).
#[cfg(feature = "signing")]
pub(crate) fn parse_vkey(s: &str, kind: u8) -> Result<(String, VerifyingKey), CheckpointError> {
    let bad = |m: &str| CheckpointError::BadKey(m.to_string());
    let (name, id, blob) = split3(s.trim()).ok_or_else(|| bad("expected name+id+key"))?;
    check_key_name(name)?;
    let blob = B64.decode(blob).map_err(|_| bad("key is not base64"))?;
    let bytes: [u8; 32] = match blob.split_first() {
        Some((&k, key)) if k == kind => key.try_into().map_err(|_| bad("not an Ed25519 key"))?,
        Some((&k, _)) if k == ED25519_TYPE || k == 0x04 => {
            return Err(bad(&format!("{}, not {}", kind_name(k), kind_name(kind))))
        }
        _ => return Err(bad("not an Ed25519 key")),
    };
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 point"))?;
    if hex(typed_key_id(name, kind, &key)) != id {
        return Err(bad("key id does not match the key"));
    }
    Ok((name.to_string(), key))
}

/// An Ed25519 verifier key with its name.
#[cfg(feature = "signing")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointPublicKey {
    name: String,
    key: VerifyingKey,
}

#[cfg(feature = "signing")]
impl CheckpointPublicKey {
    /// `<name>+<key id hex>+<base64(0x01 || public key)>` (a C2SP vkey).
    pub fn to_vkey_string(&self) -> String {
        vkey_text(&self.name, ED25519_TYPE, &self.key)
    }

    /// Parses a verifier key as [`to_vkey_string`](Self::to_vkey_string)
    /// writes it (whitespace around it ignored), checking its name and that
    /// its key id matches the key.
    pub fn from_vkey_string(s: &str) -> Result<CheckpointPublicKey, CheckpointError> {
        let (name, key) = parse_vkey(s, ED25519_TYPE)?;
        Ok(CheckpointPublicKey { name, key })
    }

    /// The key's name, as its signature lines carry it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw public key (two vkeys with one key are one signer).
    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// This key's signature line in `note`, with its newline: the first
    /// line naming it (name and key id). For a note `verify_note` accepted,
    /// every such line verifies; a witness keeps this one and no other
    /// line it was sent.
    pub fn signature_line<'n>(&self, note: &'n str) -> Option<&'n str> {
        let id = key_id(&self.name, &self.key);
        let at = note.find("\n\n")? + 2;
        note[at..].split_inclusive('\n').find(|l| {
            l.strip_prefix("\u{2014} ")
                .and_then(|r| r.split_once(' '))
                .is_some_and(|(name, blob)| {
                    name == self.name
                        && B64
                            .decode(blob.trim_end())
                            .is_ok_and(|b| b.len() == 68 && b[..4] == id)
                })
        })
    }
}

#[cfg(all(test, feature = "signing"))]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            log_id: [0xab; 16],
            seq: 12345,
            hash: Hash::from_bytes([7; 32]),
            timestamp_ns: 1_795_000_000_000_000_000,
            retention: Some(RetentionPoint {
                first_seq: 9000,
                anchor_head: Hash::from_bytes([3; 32]),
                min_age_ns: Some(86_400_000_000_000),
            }),
            tree_root: None,
        }
    }

    #[test]
    fn a_tree_checkpoint_is_a_c2sp_checkpoint_told_apart_by_its_origin() {
        let key = CheckpointKey::generate("audit-key").unwrap();
        let tree = Checkpoint {
            tree_root: Some(Hash::from_bytes([0x5a; 32])),
            ..cp()
        };
        let note = tree.sign(&key);
        let lines: Vec<&str> = note.lines().collect();
        // C2SP tlog-checkpoint: origin, tree size, root, then extensions.
        assert_eq!(lines[0], format!("wormlog/{}/v2", hex([0xab; 16])));
        assert_eq!(lines[1], "12345");
        assert_eq!(lines[2], B64.encode([0x5a; 32]));
        assert_eq!(lines[3], format!("wormlog-chain {}", B64.encode([7; 32])));
        assert_eq!(Checkpoint::verify_note(&note, &key.public()).unwrap(), tree);
        // The older shape (chain hash on line 3) still reads as itself.
        let old = cp();
        let back = Checkpoint::verify_note(&old.sign(&key), &key.public()).unwrap();
        assert_eq!(back, old);
        assert!(back.tree_root.is_none());
        // A v2 origin without its chain line, or an old origin with one, is refused.
        let body = tree.body().replacen("wormlog-chain ", "wormlog-chainx ", 1);
        assert!(super::parse_body(&body).is_err());
        let body = tree.body().replacen("/v2\n", "\n", 1);
        assert!(super::parse_body(&body).is_err());
    }

    /// Issue 22, 6: a /v2 note without its retention line, and a log id
    /// spelt in capitals, were accepted; a writer never makes either.
    #[test]
    fn a_v2_note_needs_its_retention_line_and_a_lowercase_log_id() {
        let tree = Checkpoint {
            tree_root: Some(Hash::from_bytes([0x5a; 32])),
            ..cp()
        };
        let body = tree.body();
        assert!(super::parse_body(&body).is_ok());
        let cut = body[..body.rfind("wormlog-retention").unwrap()].to_string();
        assert!(matches!(
            super::parse_body(&cut),
            Err(CheckpointError::Malformed(_))
        ));
        let upper = body.replacen(&hex(tree.log_id), &hex(tree.log_id).to_uppercase(), 1);
        assert_ne!(upper, body);
        assert!(matches!(
            super::parse_body(&upper),
            Err(CheckpointError::Malformed(_))
        ));
    }

    #[test]
    fn a_checkpoint_without_its_retention_line_still_reads_and_one_with_it_round_trips() {
        let key = CheckpointKey::generate("audit-key").unwrap();
        let with = cp();
        let note = with.sign(&key);
        assert!(note.contains("\nwormlog-retention 9000 "));
        assert!(note.contains(" 86400000000000\n"), "{note}");
        assert_eq!(Checkpoint::verify_note(&note, &key.public()).unwrap(), with);
        // A format-2 retention line (two fields) still reads, its minimum
        // age unknown.
        let two_fields = Checkpoint {
            retention: Some(RetentionPoint {
                min_age_ns: None,
                ..with.retention.unwrap()
            }),
            ..with
        };
        let note = two_fields.sign(&key);
        assert_eq!(
            Checkpoint::verify_note(&note, &key.public()).unwrap(),
            two_fields
        );
        let without = Checkpoint {
            retention: None,
            ..cp()
        };
        let note = without.sign(&key);
        assert_eq!(
            Checkpoint::verify_note(&note, &key.public()).unwrap(),
            without
        );
        for bad in [
            "wormlog-retention 01 AAAA",
            "wormlog-retention 5",
            "wormlog-retention 5 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= 01",
            "wormlog-retention 5 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= 1 2",
            "wormlog-retention 5 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ",
            "wormlog-other 5 x",
        ] {
            let body = format!("{}{bad}\n", without.body());
            assert!(
                matches!(super::parse_body(&body), Err(CheckpointError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn signed_checkpoint_verifies_and_round_trips_keys() {
        let key = CheckpointKey::generate("auditor.example").unwrap();
        let key = CheckpointKey::from_private_string(&key.to_private_string()).unwrap();
        let public = CheckpointPublicKey::from_vkey_string(&key.public().to_vkey_string()).unwrap();
        let note = cp().sign(&key);
        assert!(note.starts_with("wormlog/abababab"));
        assert_eq!(Checkpoint::verify_note(&note, &public).unwrap(), cp());
    }

    #[test]
    fn any_change_to_a_signed_note_fails_closed() {
        let key = CheckpointKey::generate("a").unwrap();
        let note = cp().sign(&key);
        let public = key.public();
        for i in 0..note.len() {
            if !note.is_char_boundary(i) || !note.is_char_boundary(i + 1) {
                continue;
            }
            let mut b = note.clone().into_bytes();
            b[i] ^= 1;
            let Ok(changed) = String::from_utf8(b) else {
                continue;
            };
            assert!(
                Checkpoint::verify_note(&changed, &public).is_err(),
                "byte {i}"
            );
        }
        // Another key of the same name: the operator's wrong key (its id
        // differs), not a changed note.
        let other = CheckpointKey::generate("a").unwrap().public();
        assert!(matches!(
            Checkpoint::verify_note(&note, &other),
            Err(CheckpointError::NotSignedByKey { .. })
        ));
        // The key's own line with its signature changed: a changed note.
        let sig_at = note.rfind(' ').unwrap() + 10;
        let mut b = note.clone().into_bytes();
        b[sig_at] = if b[sig_at] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            Checkpoint::verify_note(&String::from_utf8(b).unwrap(), &public),
            Err(CheckpointError::NoValidSignature { .. })
        ));
        // A changed line by the key beside its good line, in either order:
        // a changed note (the Go checker found both accepted).
        let good = &note[note.find("\n\n").unwrap() + 2..];
        let mut b = good.as_bytes().to_vec();
        let at = b.len() - 10;
        b[at] = if b[at] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(b).unwrap();
        let body = &note[..note.find("\n\n").unwrap() + 2];
        for both in [format!("{note}{bad}"), format!("{body}{bad}{good}")] {
            assert!(matches!(
                Checkpoint::verify_note(&both, &public),
                Err(CheckpointError::NoValidSignature { .. })
            ));
        }
        let body_only = cp().body();
        assert!(Checkpoint::verify_note(&body_only, &public).is_err());
    }
    #[test]
    fn a_note_ends_with_exactly_one_newline_after_its_last_signature_line() {
        let key = CheckpointKey::generate("auditor").unwrap();
        let public = key.public();
        let note = cp().sign(&key);
        assert!(Checkpoint::verify_note(&note, &public).is_ok());
        let other = CheckpointKey::generate("other").unwrap();
        let two = format!("{note}{}", &other_line(&other));
        assert!(
            Checkpoint::verify_note(&two, &public).is_ok(),
            "a second key's line is allowed"
        );
        let cut = note.strip_suffix('\n').unwrap();
        for bad in [
            cut.to_string(),
            format!("{note}\0"),
            format!("{note}\0\0\0\0"),
            format!("{note}\n"),
            format!("{note}x"),
            format!("{note}\u{2014} half a line"),
            format!("{cut}\r\n"),
            format!("{}\n\n", cp().body()),
        ] {
            assert!(
                matches!(
                    Checkpoint::verify_note(&bad, &public),
                    Err(CheckpointError::Malformed(_))
                ),
                "accepted {bad:?}"
            );
        }
    }

    /// `other`'s signature line over some body: well-formed, by another key.
    fn other_line(other: &CheckpointKey) -> String {
        let note = cp().sign(other);
        let at = note.find("\n\n").unwrap();
        note[at + 2..].to_string()
    }

    #[test]
    fn key_names_are_printable_ascii_without_plus_or_space() {
        for good in [
            "a",
            "auditor.example",
            "ops@example.com:prod/1~!#",
            "x".repeat(200).as_str(),
        ] {
            let key = CheckpointKey::generate(good).unwrap();
            let public = key.public();
            assert_eq!(
                CheckpointPublicKey::from_vkey_string(&public.to_vkey_string()).unwrap(),
                public,
                "{good}"
            );
        }
        for bad in [
            "",
            "a+b",
            "a b",
            "a\tb",
            "a\nb",
            "a\rb",
            "a\u{1b}[2Jb",
            "a\0",
            "a\u{7f}",
            "caf\u{e9}",
            "x".repeat(201).as_str(),
        ] {
            assert!(
                matches!(
                    CheckpointKey::check_name(bad),
                    Err(CheckpointError::BadKey(_))
                ),
                "accepted {bad:?}"
            );
            assert!(CheckpointKey::generate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_text_splits_on_the_first_two_plus_signs_only() {
        // Standard base64 uses '+': a key whose encoding holds one must
        // still read back, its '+' kept in the key part.
        let key = (0..=255u8)
            .map(|i| CheckpointKey {
                name: "k".into(),
                signing: SigningKey::from_bytes(&[i; 32]),
            })
            .find(|k| {
                let v = k.public().to_vkey_string();
                v.splitn(3, '+').nth(2).unwrap().contains('+')
                    && k.to_private_string().matches('+').count() > 4
            })
            .expect("some seed gives a '+' in both encodings");
        let public = key.public();
        assert_eq!(
            CheckpointPublicKey::from_vkey_string(&public.to_vkey_string()).unwrap(),
            public
        );
        let back = CheckpointKey::from_private_string(&key.to_private_string()).unwrap();
        assert_eq!(back.public(), public);
    }
}
