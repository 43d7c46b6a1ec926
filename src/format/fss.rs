//! Forward-secure sealing (format-spec.md, "Forward-secure sealing"): the
//! key file's layout, the one-way evolution of a sealing key from epoch to
//! epoch, and the tag that seals a range of epochs. Pure functions; the
//! file's I/O is fss.rs.
//!
//! Keys form a hash chain: `K(e+1) = BLAKE3-derive_key(EVOLVE_CONTEXT,
//! K(e))`. The verification key is `K(0)`, kept off the host; the host only
//! ever holds `K(e)` for the current epoch `e >= 1`, from which no earlier
//! key can be computed, so tags of past epochs cannot be forged.

use super::hash::{Hash, HASH_LEN};

/// A sealing or verification key: 32 secret bytes, not a digest.
pub type FssKey = [u8; HASH_LEN];
use super::{le_u16, le_u32, le_u64};
use crate::error::Corruption;

/// BLAKE3 `derive_key` context of a key's evolution to the next epoch.
const EVOLVE_CONTEXT: &str = "wormlog v2 fss evolve";
/// BLAKE3 `derive_key` context of a verification key's public id.
const KEY_ID_CONTEXT: &str = "wormlog v2 fss key id";
/// Domain separator of epoch tags: fed first.
const TAG_CONTEXT: &[u8; 21] = b"wormlog v2 epoch tag\0";
/// Domain separator of version-3 epoch tags (segments of format 3).
const TAG3_CONTEXT: &[u8; 21] = b"wormlog v3 epoch tag\0";

/// The key file's first 8 bytes (format-spec.md, section 10a).
pub const FSS_KEY_MAGIC: [u8; 8] = *b"WLFSSKEY";
pub const FSS_KEY_VERSION: u16 = 1;
// Key file fields, each offset derived from the one before.
const VERSION_AT: usize = FSS_KEY_MAGIC.len();
const FLAGS_AT: usize = VERSION_AT + 2;
const RESERVED_AT: usize = FLAGS_AT + 1;
const START_AT: usize = RESERVED_AT + 5;
const INTERVAL_AT: usize = START_AT + 8;
const EPOCH_AT: usize = INTERVAL_AT + 8;
const KEY_AT: usize = EPOCH_AT + 8;
const KEY_ID_AT: usize = KEY_AT + 32;
const CRC_AT: usize = KEY_ID_AT + 8;
/// Length of the key file `wormlog.fss` in bytes (84).
pub const FSS_KEY_FILE_LEN: usize = CRC_AT + 4;
const _: () = assert!(FSS_KEY_FILE_LEN == 84);

/// The key after `key`, one epoch later.
pub fn evolve_key(key: &FssKey) -> FssKey {
    blake3::derive_key(EVOLVE_CONTEXT, key)
}

/// The key of epoch `epoch` from the verification key (epoch 0): `epoch`
/// evolutions.
pub fn key_at(verification: &FssKey, epoch: u64) -> FssKey {
    let mut k = *verification;
    for _ in 0..epoch {
        k = evolve_key(&k);
    }
    k
}

/// The public id of a verification key: names it in the log and the key
/// file without revealing it.
pub fn key_id(verification: &FssKey) -> [u8; 8] {
    let mut id = [0u8; 8];
    id.copy_from_slice(&blake3::derive_key(KEY_ID_CONTEXT, verification)[..8]);
    id
}

/// The tag sealing epochs `first_epoch..=epoch`, made with the key of
/// `first_epoch`, over the chain position `(seq, hash)` of the record just
/// before the tag record: since the chain hash commits to every record
/// before it, the tag seals all of them.
pub fn epoch_tag(key: &FssKey, first_epoch: u64, epoch: u64, seq: u64, hash: &Hash) -> [u8; 32] {
    *tag_hasher(key, TAG_CONTEXT, first_epoch, epoch, seq, hash)
        .finalize()
        .as_bytes()
}

/// What every tag's MAC begins with: its domain separator, its epochs and
/// the chain position it seals.
fn tag_hasher(
    key: &FssKey,
    context: &[u8],
    first_epoch: u64,
    epoch: u64,
    seq: u64,
    hash: &Hash,
) -> blake3::Hasher {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(context);
    h.update(&first_epoch.to_le_bytes());
    h.update(&epoch.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(hash.as_bytes());
    h
}

/// What a version-3 tag seals besides the chain position (format-spec.md,
/// 10a): the commit time of the record just before the tag, and the floor
/// of the retention policy in force there, `(min_age_ns,
/// clock_ahead_max_ns)`, if a policy is. Facts that must outlive
/// retention: an anchor entry carries them with the tag (8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TagFacts {
    /// Commit time of the record the tag seals, ns since the Unix epoch.
    pub time_ns: u64,
    /// The retention policy's minimum age and clock bound, when one is in
    /// force.
    pub floor: Option<(u64, u64)>,
}

/// A version-3 tag: as [`epoch_tag`], under its own domain separator, and
/// over `facts` too: `BLAKE3-keyed_hash(K(first_epoch), "wormlog v3 epoch
/// tag" || 0x00 || first_epoch || epoch || seq || hash || time_ns ||
/// policy u8 || min_age_ns || clock_ahead_max_ns)`.
pub fn epoch_tag_v3(
    key: &FssKey,
    first_epoch: u64,
    epoch: u64,
    seq: u64,
    hash: &Hash,
    facts: &TagFacts,
) -> [u8; 32] {
    let mut h = tag_hasher(key, TAG3_CONTEXT, first_epoch, epoch, seq, hash);
    h.update(&facts.time_ns.to_le_bytes());
    let (flag, (min_age, ahead)) = match facts.floor {
        Some(f) => (1u8, f),
        None => (0u8, (0, 0)),
    };
    h.update(&[flag]);
    h.update(&min_age.to_le_bytes());
    h.update(&ahead.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The tag a segment of format `version` carries (2: [`epoch_tag`]; 3 and
/// later: [`epoch_tag_v3`]).
pub fn epoch_tag_for(
    version: u16,
    key: &FssKey,
    first_epoch: u64,
    epoch: u64,
    seq: u64,
    hash: &Hash,
    facts: &TagFacts,
) -> [u8; 32] {
    if version >= 3 {
        epoch_tag_v3(key, first_epoch, epoch, seq, hash, facts)
    } else {
        epoch_tag(key, first_epoch, epoch, seq, hash)
    }
}

/// The epoch a time falls in: epoch 1 begins at `start_ns`.
pub fn epoch_of(start_ns: u64, interval_ns: u64, t_ns: u64) -> u64 {
    1 + t_ns.saturating_sub(start_ns) / interval_ns.max(1)
}

/// The sealing key file: the current epoch's key and the schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct FssKeyFile {
    /// When epoch 1 began, ns since the Unix epoch.
    pub start_ns: u64,
    /// Length of an epoch in ns (>= 1).
    pub interval_ns: u64,
    /// The epoch whose key this is (>= 1).
    pub epoch: u64,
    /// `K(epoch)`, the key that tags the records of this epoch.
    pub key: FssKey,
    /// The verification key's id.
    pub key_id: [u8; 8],
    /// The log's sealing-started record for this key is durable. A key
    /// file without it is from a setup that did not finish: its
    /// verification key was never handed out, and an open discards it.
    pub announced: bool,
}

/// Everything but the key: a secret does not belong in logs and panics.
impl std::fmt::Debug for FssKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FssKeyFile")
            .field("start_ns", &self.start_ns)
            .field("interval_ns", &self.interval_ns)
            .field("epoch", &self.epoch)
            .field("key", &"<secret>")
            .field("key_id", &self.key_id)
            .field("announced", &self.announced)
            .finish()
    }
}

impl FssKeyFile {
    /// The file's 84 bytes, CRC included.
    pub fn encode(&self) -> [u8; FSS_KEY_FILE_LEN] {
        let mut b = [0u8; FSS_KEY_FILE_LEN];
        b[..VERSION_AT].copy_from_slice(&FSS_KEY_MAGIC);
        b[VERSION_AT..FLAGS_AT].copy_from_slice(&FSS_KEY_VERSION.to_le_bytes());
        b[FLAGS_AT] = u8::from(self.announced);
        b[START_AT..INTERVAL_AT].copy_from_slice(&self.start_ns.to_le_bytes());
        b[INTERVAL_AT..EPOCH_AT].copy_from_slice(&self.interval_ns.to_le_bytes());
        b[EPOCH_AT..KEY_AT].copy_from_slice(&self.epoch.to_le_bytes());
        b[KEY_AT..KEY_ID_AT].copy_from_slice(&self.key);
        b[KEY_ID_AT..CRC_AT].copy_from_slice(&self.key_id);
        let crc = crc32fast::hash(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a key file's bytes, checking its length, magic, CRC, version,
    /// flags, and that interval and epoch are at least 1.
    pub fn decode(b: &[u8]) -> Result<FssKeyFile, Corruption> {
        let bad = |detail: &str| Corruption::HeaderField {
            field: "sealing key file",
            detail: detail.into(),
        };
        if b.len() != FSS_KEY_FILE_LEN || b[..VERSION_AT] != FSS_KEY_MAGIC {
            return Err(bad("not a wormlog sealing key file"));
        }
        if crc32fast::hash(&b[..CRC_AT]) != le_u32(b, CRC_AT) {
            return Err(bad("CRC mismatch"));
        }
        if le_u16(b, VERSION_AT) != FSS_KEY_VERSION
            || b[FLAGS_AT] > 1
            || b[RESERVED_AT..START_AT] != [0; 5]
        {
            return Err(bad("unsupported version or flags"));
        }
        let interval_ns = le_u64(b, INTERVAL_AT);
        let epoch = le_u64(b, EPOCH_AT);
        if interval_ns == 0 || epoch == 0 {
            return Err(bad("interval and epoch must be at least 1"));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&b[KEY_AT..KEY_ID_AT]);
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&b[KEY_ID_AT..CRC_AT]);
        Ok(FssKeyFile {
            start_ns: le_u64(b, START_AT),
            interval_ns,
            epoch,
            key,
            key_id,
            announced: b[FLAGS_AT] == 1,
        })
    }

    /// The same file one epoch later, its key evolved (the old one gone).
    pub fn evolved(&self) -> FssKeyFile {
        FssKeyFile {
            epoch: self.epoch + 1,
            key: evolve_key(&self.key),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_debugs_without_its_secret() {
        let f = FssKeyFile {
            start_ns: 1,
            interval_ns: 2,
            epoch: 3,
            key: [0xab; 32],
            key_id: [7; 8],
            announced: true,
        };
        let shown = format!("{f:?}");
        assert!(
            !shown.contains("171") && !shown.to_lowercase().contains("abab"),
            "{shown}"
        );
        assert!(
            shown.contains("<secret>") && shown.contains("epoch: 3"),
            "{shown}"
        );
    }

    #[test]
    fn a_later_key_follows_from_an_earlier_one_and_tags_bind_every_field() {
        let k0 = [9u8; 32];
        assert_eq!(key_at(&k0, 3), evolve_key(&evolve_key(&evolve_key(&k0))));
        assert_ne!(key_at(&k0, 1), k0);
        let t = epoch_tag(&key_at(&k0, 2), 2, 4, 77, &Hash::from_bytes([1; 32]));
        assert_ne!(
            t,
            epoch_tag(&key_at(&k0, 3), 2, 4, 77, &Hash::from_bytes([1; 32]))
        );
        assert_ne!(
            t,
            epoch_tag(&key_at(&k0, 2), 3, 4, 77, &Hash::from_bytes([1; 32]))
        );
        assert_ne!(
            t,
            epoch_tag(&key_at(&k0, 2), 2, 5, 77, &Hash::from_bytes([1; 32]))
        );
        assert_ne!(
            t,
            epoch_tag(&key_at(&k0, 2), 2, 4, 78, &Hash::from_bytes([1; 32]))
        );
        assert_ne!(
            t,
            epoch_tag(&key_at(&k0, 2), 2, 4, 77, &Hash::from_bytes([2; 32]))
        );
    }

    #[test]
    fn epochs_start_at_one_and_key_files_round_trip_and_refuse_damage() {
        assert_eq!(epoch_of(100, 10, 50), 1);
        assert_eq!(epoch_of(100, 10, 109), 1);
        assert_eq!(epoch_of(100, 10, 110), 2);
        let f = FssKeyFile {
            start_ns: 5,
            interval_ns: 900,
            epoch: 3,
            key: [4; 32],
            key_id: [6; 8],
            announced: true,
        };
        let b = f.encode();
        assert_eq!(FssKeyFile::decode(&b).unwrap(), f);
        assert_eq!(f.evolved().key, evolve_key(&f.key));
        for i in 0..b.len() {
            let mut c = b;
            c[i] ^= 1;
            assert!(FssKeyFile::decode(&c).is_err(), "byte {i}");
        }
        assert!(FssKeyFile::decode(&b[..83]).is_err());
    }
}

/// The verification key: the key of epoch 0 and the epoch schedule. Kept
/// off the host; whoever holds it can check (and, the MAC being
/// symmetric, make) every tag, so it is as secret as a private key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationKey {
    /// `K0`, the key of epoch 0 (32 random bytes); every later key follows
    /// from it.
    pub key: FssKey,
    /// When epoch 1 began, ns since the Unix epoch.
    pub start_ns: u64,
    /// Length of an epoch in ns (>= 1).
    pub interval_ns: u64,
    /// The log the key was set up for: keys made since format 3's
    /// extension of it name their log (`log=` in the text form), so that
    /// verify tells a key of this log whose era is missing (tampering) from
    /// another log's key (a mistake). `None` for the older text form.
    pub log_id: Option<[u8; 16]>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("id", &super::hex(self.id()))
            .field("start_ns", &self.start_ns)
            .field("interval_ns", &self.interval_ns)
            .finish_non_exhaustive()
    }
}

/// The text form's first word.
const VERIFY_KEY_PREFIX: &str = "wormlog-verify-key";

impl VerificationKey {
    /// Its public id, as sealing-started records and key files name it.
    pub fn id(&self) -> [u8; 8] {
        key_id(&self.key)
    }

    /// The text form: `wormlog-verify-key <start_ns> <interval_ns> <key, 64
    /// hex digits>`, then ` log=<log id, 32 hex digits>` where the key
    /// names its log; one line.
    pub fn to_text(&self) -> String {
        let log = self
            .log_id
            .map(|id| format!(" log={}", super::hex(id)))
            .unwrap_or_default();
        format!(
            "{VERIFY_KEY_PREFIX} {} {} {}{log}",
            self.start_ns,
            self.interval_ns,
            super::hex(self.key)
        )
    }

    /// Parses the text form (surrounding whitespace ignored).
    pub fn from_text(s: &str) -> Result<VerificationKey, String> {
        let bad = || {
            format!(
                "not `{VERIFY_KEY_PREFIX} <start_ns> <interval_ns> <64 hex digits> \
                 [log=<32 hex digits>]`"
            )
        };
        let words: Vec<&str> = s.split_ascii_whitespace().collect();
        let (start, interval, key, log) = match words[..] {
            [VERIFY_KEY_PREFIX, start, interval, key] => (start, interval, key, None),
            [VERIFY_KEY_PREFIX, start, interval, key, log] => (start, interval, key, Some(log)),
            _ => return Err(bad()),
        };
        let log_id = match log {
            None => None,
            Some(w) => {
                let hex = w
                    .strip_prefix("log=")
                    .filter(|h| h.len() == 32)
                    .ok_or_else(bad)?;
                let mut id = [0u8; 16];
                for (i, b) in id.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
                }
                Some(id)
            }
        };
        let num = |w: &str| {
            (!w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
                .then(|| w.parse::<u64>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (start_ns, interval_ns) = (num(start)?, num(interval)?);
        if interval_ns == 0 || key.len() != 64 {
            return Err(bad());
        }
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(key.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(VerificationKey {
            key: k,
            start_ns,
            interval_ns,
            log_id,
        })
    }
}

#[cfg(test)]
mod spec_example {
    use super::*;
    use crate::format::hex;

    /// format-spec.md's forward-secure sealing example, value for value.
    #[test]
    fn the_spec_example_of_keys_and_a_tag_holds() {
        let k0: FssKey = core::array::from_fn(|i| i as u8);
        let k1 = evolve_key(&k0);
        let k2 = evolve_key(&k1);
        let tag = epoch_tag(&k2, 2, 3, 41, &Hash::from_bytes([0xab; 32]));
        let got = format!(
            "id {}\nK1 {}\nK2 {}\ntag {}",
            hex(key_id(&k0)),
            hex(k1),
            hex(k2),
            hex(tag)
        );
        let spec = include_str!("../../format-spec.md");
        let start = spec.find("<!-- fss-example:start -->").expect("marker");
        let end = spec.find("<!-- fss-example:end -->").expect("marker");
        let block = &spec[start..end];
        for line in got.lines() {
            assert!(block.contains(line), "format-spec.md lacks `{line}`");
        }
    }
}
