//! The 32-byte digest type every hash in the API and the files uses.

use std::fmt;
use std::str::FromStr;

/// Length of a hash in bytes.
pub const HASH_LEN: usize = 32;

/// A 32-byte digest: a record's BLAKE3 chain hash (format-spec.md, "Chain
/// hash"), a segment digest, or a SHA-256 Merkle tree hash (RFC 6962) —
/// the field that holds one says which.
///
/// It prints as 64 lowercase hex digits (`Display`, `{:x}`) and parses back
/// from hex of either case (`FromStr`), so a hash copied from `wormctl`
/// output, a checkpoint or a receipt round-trips:
///
/// ```
/// let hex = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
/// let h: wormlog::Hash = hex.parse()?;
/// assert_eq!(h.as_bytes()[0], 0xaf);
/// assert_eq!(h.to_string(), hex);
/// assert_eq!(h.to_string().parse::<wormlog::Hash>()?, h);
/// assert!("xyz".parse::<wormlog::Hash>().is_err());
/// # Ok::<(), wormlog::ParseHashError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash([u8; HASH_LEN]);

impl Hash {
    /// All zero bytes: the placeholder some on-disk fields hold before a
    /// value exists (never a real digest).
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    /// The hash with these bytes.
    pub const fn from_bytes(bytes: [u8; HASH_LEN]) -> Hash {
        Hash(bytes)
    }

    /// The hash's bytes.
    pub const fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// The hash's bytes, by value.
    pub const fn to_bytes(self) -> [u8; HASH_LEN] {
        self.0
    }

    /// The hash of `bytes` if there are exactly 32 of them.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_LEN]>::try_from(bytes).ok().map(Hash)
    }

    /// 64 lowercase hex digits (the same as `to_string()`).
    pub fn to_hex(&self) -> String {
        super::hex(self.0)
    }
}

impl From<[u8; HASH_LEN]> for Hash {
    fn from(bytes: [u8; HASH_LEN]) -> Hash {
        Hash(bytes)
    }
}

impl From<Hash> for [u8; HASH_LEN] {
    fn from(h: Hash) -> [u8; HASH_LEN] {
        h.0
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Hash {
        Hash(*h.as_bytes())
    }
}

impl TryFrom<&[u8]> for Hash {
    type Error = std::array::TryFromSliceError;

    fn try_from(bytes: &[u8]) -> Result<Hash, Self::Error> {
        <[u8; HASH_LEN]>::try_from(bytes).map(Hash)
    }
}

impl TryFrom<Vec<u8>> for Hash {
    type Error = Vec<u8>;

    /// The bytes back when there are not exactly 32.
    fn try_from(bytes: Vec<u8>) -> Result<Hash, Vec<u8>> {
        <[u8; HASH_LEN]>::try_from(bytes).map(Hash)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<[u8; HASH_LEN]> for Hash {
    fn eq(&self, other: &[u8; HASH_LEN]) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`: width, fill and precision apply (`{:.16}` for a short form).
        f.pad(&self.to_hex())
    }
}

impl fmt::LowerHex for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// Why a string is not a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseHashError {
    /// Not 64 characters long (the length found).
    Length(usize),
    /// A character that is not a hex digit, at this byte offset.
    Digit(usize),
}

impl fmt::Display for ParseHashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseHashError::Length(n) => {
                write!(f, "a hash is 64 hex digits, this is {n} characters")
            }
            ParseHashError::Digit(at) => write!(f, "not a hex digit at offset {at}"),
        }
    }
}

impl std::error::Error for ParseHashError {}

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Hash, ParseHashError> {
        let b = s.as_bytes();
        if b.len() != HASH_LEN * 2 {
            return Err(ParseHashError::Length(s.len()));
        }
        let digit = |i: usize| -> Result<u8, ParseHashError> {
            match b[i] {
                c @ b'0'..=b'9' => Ok(c - b'0'),
                c @ b'a'..=b'f' => Ok(c - b'a' + 10),
                c @ b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(ParseHashError::Digit(i)),
            }
        };
        let mut out = [0u8; HASH_LEN];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (digit(2 * i)? << 4) | digit(2 * i + 1)?;
        }
        Ok(Hash(out))
    }
}

/// As a hex string, the form `wormctl dump --json` and checkpoints use.
#[cfg(feature = "serde")]
impl serde::Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_from_str_round_trip_every_byte_value() {
        let mut bytes = [0u8; HASH_LEN];
        for chunk in 0..8 {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = u8::try_from((chunk * 32 + i) % 256).expect("fits");
            }
            let h = Hash::from_bytes(bytes);
            let s = h.to_string();
            assert_eq!(s.len(), 64);
            assert_eq!(s, s.to_lowercase());
            assert_eq!(s.parse::<Hash>(), Ok(h));
            assert_eq!(s.to_uppercase().parse::<Hash>(), Ok(h));
            assert_eq!(format!("{h:x}"), s);
        }
    }

    #[test]
    fn from_str_names_the_length_or_the_bad_digit() {
        assert_eq!("ab".parse::<Hash>(), Err(ParseHashError::Length(2)));
        assert_eq!(
            "0".repeat(65).parse::<Hash>(),
            Err(ParseHashError::Length(65))
        );
        let mut s = "0".repeat(64);
        s.replace_range(10..11, "g");
        assert_eq!(s.parse::<Hash>(), Err(ParseHashError::Digit(10)));
        // A multi-byte character is refused, not sliced through.
        let s = format!("{}é", "0".repeat(62));
        assert!(s.parse::<Hash>().is_err());
    }

    #[test]
    fn display_takes_width_and_precision() {
        let h = Hash::from_bytes([0xab; 32]);
        assert_eq!(format!("{h:.8}"), "abababab");
        assert_eq!(format!("{h:>70}").len(), 70);
    }

    #[test]
    fn debug_shows_hex_not_an_array() {
        let h = Hash::from_bytes([0xab; 32]);
        assert_eq!(format!("{h:?}"), format!("Hash({})", "ab".repeat(32)));
    }
}
