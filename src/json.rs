//! Feature `serde`: typed events, and the one JSON-lines schema for
//! records that `wormctl dump --json` writes and this module reads and
//! writes (`RecordLine`): `seq`, `time` (RFC 3339), `time_ns` (a decimal
//! string: jq and JavaScript round integers above 2^53), `kind`, `payload`,
//! `encoding`, `hash`, and for an engine record `event`. A payload that is
//! a JSON object or array is embedded as JSON (`"encoding":"json"`), other
//! UTF-8 as a string (`utf-8`), anything else as base64 (`base64`).

use crate::error::{Error, Result};
use crate::format::Hash;
use crate::read::Iter;
use crate::state::Record;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One user event, decoded from its record's JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<T> {
    /// The record's seq.
    pub seq: u64,
    /// Commit time, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// The record's chain hash.
    pub hash: Hash,
    /// The payload, decoded.
    pub data: T,
}

/// The user events of a range, decoded (`Log::events`): engine records are
/// skipped; a user record that is not a `T` is an `Error::Json` naming its
/// seq (the iteration goes on after it).
#[derive(Debug)]
pub struct Events<T> {
    pub(crate) records: Iter,
    pub(crate) _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for Events<T> {
    type Item = Result<Event<T>>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let r = match self.records.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            if r.is_system() {
                continue;
            }
            return Some(decode(&r));
        }
    }
}

/// A page of decoded events (`Log::events_async`), and the seq the next
/// page starts at (`None` once the range is done).
pub type EventPage<T> = (Vec<Event<T>>, Option<u64>);

/// `r`'s payload as a `T`.
pub fn decode<T: DeserializeOwned>(r: &Record) -> Result<Event<T>> {
    if r.is_system() {
        // Not a parse error of the application's event: the engine's own.
        return Err(Error::Json {
            seq: Some(r.seq()),
            detail: format!(
                "an engine record ({}), not an event of the application; skip records \
                 where is_system() (Log::events does)",
                r.kind().name()
            ),
        });
    }
    let data = serde_json::from_slice(r.payload()).map_err(|e| Error::Json {
        seq: Some(r.seq()),
        detail: e.to_string(),
    })?;
    Ok(Event {
        seq: r.seq(),
        timestamp_ns: r.timestamp(),
        hash: *r.hash(),
        data,
    })
}

/// `event` as the bytes `Log::append_json` appends: compact JSON.
pub fn encode<T: Serialize + ?Sized>(event: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(event).map_err(|e| Error::Json {
        seq: None,
        detail: e.to_string(),
    })
}

/// One record as a line of `wormctl dump --json` (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordLine {
    /// The record's seq.
    pub seq: u64,
    /// Commit time, RFC 3339 UTC with nanoseconds.
    pub time: String,
    /// Commit time, ns since the Unix epoch, as a decimal string.
    #[serde(with = "u64_string")]
    pub time_ns: u64,
    /// The record kind's name (`user`, `log-opened`, ...).
    pub kind: String,
    /// The payload: embedded JSON, a string, or base64 (see `encoding`).
    pub payload: serde_json::Value,
    /// `json`, `utf-8` or `base64`.
    pub encoding: String,
    /// The chain hash, as 64 lowercase hex digits.
    pub hash: Hash,
    /// For an engine record, what it says, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

impl RecordLine {
    /// The line for `r`. `time` is filled by `rfc3339`, which the caller
    /// gives (the engine has no calendar code).
    pub fn new(r: &Record, rfc3339: impl Fn(u64) -> String) -> RecordLine {
        let (payload, encoding) = match std::str::from_utf8(r.payload()) {
            Ok(text) => match embeddable(text) {
                Some(v) => (v, "json"),
                None => (serde_json::Value::String(text.to_string()), "utf-8"),
            },
            Err(_) => (serde_json::Value::String(B64.encode(r.payload())), "base64"),
        };
        RecordLine {
            seq: r.seq(),
            time: rfc3339(r.timestamp()),
            time_ns: r.timestamp(),
            kind: r.kind().name().to_string(),
            payload,
            encoding: encoding.to_string(),
            hash: *r.hash(),
            event: r.system_event().map(|e| match e {
                Ok(e) => e.to_string(),
                Err(e) => format!("malformed: {e}"),
            }),
        }
    }

    /// The payload bytes the record holds, back from the line (for
    /// `utf-8` and `base64`; embedded JSON comes back as compact JSON,
    /// which may differ from the bytes in whitespace).
    pub fn payload_bytes(&self) -> Result<Vec<u8>> {
        let bad = |detail: String| Error::Json {
            seq: Some(self.seq),
            detail,
        };
        match (self.encoding.as_str(), &self.payload) {
            ("utf-8", serde_json::Value::String(s)) => Ok(s.clone().into_bytes()),
            ("base64", serde_json::Value::String(s)) => {
                B64.decode(s).map_err(|e| bad(e.to_string()))
            }
            ("json", v) => serde_json::to_vec(v).map_err(|e| bad(e.to_string())),
            (enc, _) => Err(bad(format!(
                "encoding {enc:?} with a payload of another shape"
            ))),
        }
    }
}

/// A payload that is a JSON object or array.
/// One `FIELD=VALUE` filter on JSON payloads (`wormctl dump --match`,
/// wormd's `match=`): `FIELD` is a dotted path of object keys; a payload
/// passes when it is a JSON object whose value at the path is a string
/// equal to `VALUE`, or a number or boolean that prints as `VALUE` (and
/// is strict JSON: see `check_strict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMatch {
    path: Vec<String>,
    value: String,
}

impl FieldMatch {
    /// Parses `FIELD=VALUE`; `Err` names what is wrong.
    pub fn parse(text: &str) -> std::result::Result<FieldMatch, String> {
        let (field, value) = text
            .split_once('=')
            .filter(|(f, _)| !f.is_empty())
            .ok_or_else(|| format!("{text}: expected FIELD=VALUE"))?;
        Ok(FieldMatch {
            path: field.split('.').map(str::to_owned).collect(),
            value: value.to_owned(),
        })
    }

    /// Whether `payload` passes every filter of `all` (an empty list passes
    /// everything; a payload that is not JSON passes none other).
    pub fn all_pass(all: &[FieldMatch], payload: &[u8]) -> bool {
        if all.is_empty() {
            return true;
        }
        // A key given twice has no one value to match.
        if check_strict(payload).is_err() {
            return false;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
            return false;
        };
        all.iter().all(|m| m.passes(&v))
    }

    fn passes(&self, v: &serde_json::Value) -> bool {
        let mut at = v;
        for key in &self.path {
            match at.get(key) {
                Some(next) => at = next,
                None => return false,
            }
        }
        match at {
            serde_json::Value::String(s) => *s == self.value,
            serde_json::Value::Number(n) => n.to_string() == self.value,
            serde_json::Value::Bool(b) => b.to_string() == self.value,
            _ => false,
        }
    }
}

/// A payload embedded as JSON reads as the bytes say: one with a key
/// twice in an object is shown as its text instead (parsed, one of the two
/// would silently vanish: `{"actor":"mallory","actor":"alice"}` would read
/// as alice).
fn embeddable(text: &str) -> Option<serde_json::Value> {
    if !text.trim_start().starts_with(['{', '[']) || check_strict(text.as_bytes()).is_err() {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Whether `bytes` are strict JSON: one value, valid UTF-8 throughout,
/// no lone surrogate escapes, and no object with a key twice (which
/// parsers resolve differently: the first, the last, or an error).
/// `Err` says what is wrong. Nesting is limited by serde_json's 128
/// levels.
pub fn check_strict(bytes: &[u8]) -> std::result::Result<(), String> {
    serde_json::from_slice::<strict::Strict>(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

mod strict {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// Any JSON value, checked and dropped as it is read.
    pub struct Strict;

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
            d.deserialize_any(StrictVisitor)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Strict;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E: Error>(self, _: bool) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_i64<E: Error>(self, _: i64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_u64<E: Error>(self, _: u64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_f64<E: Error>(self, _: f64) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_str<E: Error>(self, _: &str) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_unit<E: Error>(self) -> Result<Strict, E> {
            Ok(Strict)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
            while a.next_element::<Strict>()?.is_some() {}
            Ok(Strict)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
            // Objects are small: a list beats a set. Keys are borrowed from
            // the input where they have no escapes (no copy per key).
            let mut keys: Vec<Key<'de>> = Vec::new();
            while let Some(k) = a.next_key::<Key<'de>>()? {
                if keys.iter().any(|seen| seen.as_str() == k.as_str()) {
                    return Err(A::Error::custom(format!(
                        "the key {:?} appears twice in one object",
                        k.as_str()
                    )));
                }
                a.next_value::<Strict>()?;
                keys.push(k);
            }
            Ok(Strict)
        }
    }

    /// An object's key: borrowed from the input, or decoded (escapes).
    enum Key<'de> {
        Borrowed(&'de str),
        Owned(String),
    }

    impl Key<'_> {
        fn as_str(&self) -> &str {
            match self {
                Key::Borrowed(s) => s,
                Key::Owned(s) => s,
            }
        }
    }

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
            d.deserialize_str(KeyVisitor)
        }
    }

    struct KeyVisitor;

    impl<'de> Visitor<'de> for KeyVisitor {
        type Value = Key<'de>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object key")
        }
        fn visit_borrowed_str<E: Error>(self, s: &'de str) -> Result<Key<'de>, E> {
            Ok(Key::Borrowed(s))
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Key<'de>, E> {
            Ok(Key::Owned(s.to_owned()))
        }
        fn visit_string<E: Error>(self, s: String) -> Result<Key<'de>, E> {
            Ok(Key::Owned(s))
        }
    }
}

/// `time_ns` as a decimal string.
mod u64_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_with_a_key_twice_is_shown_as_its_text_and_matches_nothing() {
        let dup = br#"{"actor":"mallory","actor":"alice"}"#;
        assert!(check_strict(dup).unwrap_err().contains("appears twice"));
        assert!(embeddable(std::str::from_utf8(dup).unwrap()).is_none());
        let m = [FieldMatch::parse("actor=alice").unwrap()];
        assert!(!FieldMatch::all_pass(&m, dup));
        // Nested, and in arrays, too; the same key in sibling objects is fine.
        assert!(check_strict(br#"{"a":[{"b":1,"b":2}]}"#).is_err());
        assert!(check_strict(br#"[{"b":1},{"b":2}]"#).is_ok());
        assert!(check_strict(br#"{"n":12345678901234567890123,"x":1.5e300}"#).is_ok());
        assert!(FieldMatch::all_pass(&m, br#"{"actor":"alice"}"#));
    }

    #[test]
    fn strict_json_refuses_bad_utf8_and_lone_surrogates() {
        assert!(check_strict(b"{\"b\":\"\xff\"}").is_err());
        assert!(check_strict(br#""\ud800""#).is_err());
        assert!(check_strict(br#""\ud83d\ude00""#).is_ok());
        assert!(check_strict(b"{} x").is_err());
    }
}
