//! Trust policies (format-spec.md §18.3; C2SP tlog-policy): which log
//! keys and witness keys a verifier accepts, and the quorum of witnesses
//! whose cosignatures a checkpoint needs. A checkpoint passes when one of
//! the policy's logs signed it and its cosignatures meet the quorum.

use crate::checkpoint::{split_note, Checkpoint, CheckpointPublicKey};
use crate::cosign::{Cosigned, WitnessPublicKey};
use crate::error::CheckpointError;

/// No policy we accept is larger (the spec asks for at least 32 logs,
/// witnesses and groups; a line is short).
pub const POLICY_BYTES_MAX: usize = 64 << 10;
/// Logs, witnesses and groups each.
const ENTRIES_MAX: usize = 64;

/// A parsed C2SP tlog-policy.
#[derive(Debug, Clone)]
pub struct Policy {
    logs: Vec<CheckpointPublicKey>,
    /// Witnesses and groups share one namespace; `names` indexes both.
    witnesses: Vec<(String, WitnessPublicKey)>,
    groups: Vec<Group>,
    quorum: Member,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    threshold: usize,
    members: Vec<Member>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    None,
    Witness(usize),
    Group(usize),
}

/// A checkpoint the policy accepts: what it says, and who cosigned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The log key (by name) that signed it.
    pub log: String,
    /// The policy's names of the witnesses whose valid cosignature it
    /// carries, with the cosignature's time (POSIX seconds).
    pub cosigners: Vec<(String, u64)>,
}

impl Policy {
    /// Parses a policy (C2SP tlog-policy): `log <vkey> [url]`, `witness
    /// <name> <vkey> [url]`, `group <name> all|any|<k> <member>...`,
    /// exactly one `quorum <name>|none`; `#` comments and blank lines.
    pub fn parse(text: &str) -> Result<Policy, CheckpointError> {
        let bad = |n: usize, m: &str| CheckpointError::BadPolicy(format!("line {n}: {m}"));
        if text.len() > POLICY_BYTES_MAX {
            return Err(bad(0, "longer than any policy"));
        }
        if let Some(b) = text
            .bytes()
            .find(|&b| b < 0x20 && b != b'\t' && b != b'\n' || b == 0x7f)
        {
            return Err(bad(0, &format!("control character 0x{b:02x}")));
        }
        let mut p = Policy {
            logs: Vec::new(),
            witnesses: Vec::new(),
            groups: Vec::new(),
            quorum: Member::None,
        };
        let mut quorum = None;
        for (i, line) in text.split('\n').enumerate() {
            let n = i + 1;
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            match words.as_slice() {
                [] => {}
                [first, ..] if first.starts_with('#') => {}
                ["log", vkey] | ["log", vkey, _] => {
                    let key = CheckpointPublicKey::from_vkey_string(vkey)
                        .map_err(|e| bad(n, &e.to_string()))?;
                    if p.logs.iter().any(|k| k.key_bytes() == key.key_bytes()) {
                        return Err(bad(n, "a log listed twice"));
                    }
                    if p.witnesses
                        .iter()
                        .any(|(_, w)| w.key_bytes() == key.key_bytes())
                    {
                        return Err(bad(
                            n,
                            "a log's key is a witness's key: the log cannot witness itself",
                        ));
                    }
                    p.logs.push(key);
                }
                ["witness", name, vkey] | ["witness", name, vkey, _] => {
                    p.check_new_name(name).map_err(|m| bad(n, &m))?;
                    let key = WitnessPublicKey::from_vkey_string(vkey)
                        .map_err(|e| bad(n, &e.to_string()))?;
                    if p.witnesses
                        .iter()
                        .any(|(_, k)| k.key_bytes() == key.key_bytes())
                    {
                        return Err(bad(n, "a witness listed twice"));
                    }
                    // The log's own key relabelled as a cosigner would let
                    // whoever holds it meet the quorum alone (red team).
                    if p.logs.iter().any(|k| k.key_bytes() == key.key_bytes()) {
                        return Err(bad(
                            n,
                            "a witness's key is a log's key: the log cannot witness itself",
                        ));
                    }
                    p.witnesses.push((name.to_string(), key));
                }
                ["group", name, k, members @ ..] if !members.is_empty() => {
                    let group = p.group(name, k, members).map_err(|m| bad(n, &m))?;
                    p.groups.push(group);
                }
                ["quorum", name] => {
                    if quorum.is_some() {
                        return Err(bad(n, "a second quorum line"));
                    }
                    quorum = Some(p.member(name, true).map_err(|m| bad(n, &m))?);
                }
                _ => return Err(bad(n, "not a log, witness, group or quorum line")),
            }
            if p.logs.len() > ENTRIES_MAX
                || p.witnesses.len() > ENTRIES_MAX
                || p.groups.len() > ENTRIES_MAX
            {
                return Err(bad(n, "more than 64 logs, witnesses or groups"));
            }
        }
        p.quorum = quorum.ok_or_else(|| bad(0, "no quorum line"))?;
        Ok(p)
    }

    fn check_new_name(&self, name: &str) -> Result<(), String> {
        if name == "none"
            || self.witnesses.iter().any(|(w, _)| w == name)
            || self.groups.iter().any(|g| g.name == name)
        {
            return Err(format!("the name {name:?} is taken"));
        }
        Ok(())
    }

    fn member(&self, name: &str, none_ok: bool) -> Result<Member, String> {
        if name == "none" {
            return if none_ok {
                Ok(Member::None)
            } else {
                Err("`none` cannot be a group member".into())
            };
        }
        if let Some(i) = self.witnesses.iter().position(|(w, _)| w == name) {
            return Ok(Member::Witness(i));
        }
        if let Some(i) = self.groups.iter().position(|g| g.name == name) {
            return Ok(Member::Group(i));
        }
        Err(format!("{name:?} is not defined on an earlier line"))
    }

    fn group(&self, name: &str, k: &str, names: &[&str]) -> Result<Group, String> {
        self.check_new_name(name)?;
        let mut members = Vec::new();
        for m in names {
            let member = self.member(m, false)?;
            if members.contains(&member) {
                return Err(format!("{m:?} is listed twice"));
            }
            members.push(member);
        }
        let threshold = match k {
            "all" => members.len(),
            "any" => 1,
            k if k.bytes().all(|b| b.is_ascii_digit()) && !k.starts_with('0') => {
                k.parse().map_err(|_| format!("bad threshold {k:?}"))?
            }
            _ => return Err(format!("threshold {k:?} is not all, any or a number")),
        };
        if threshold == 0 || threshold > members.len() {
            return Err(format!(
                "threshold {threshold} is not within 1..={}",
                members.len()
            ));
        }
        Ok(Group {
            name: name.to_string(),
            threshold,
            members,
        })
    }

    /// The log keys the policy lists.
    pub fn logs(&self) -> &[CheckpointPublicKey] {
        &self.logs
    }

    /// Checks a signed note: signed by one of the policy's logs, and
    /// cosigned by a quorum of its witnesses. `QuorumNotMet` names the
    /// witnesses whose cosignature is missing; a cosignature line that
    /// names a witness's key and does not verify is `NoValidSignature`.
    pub fn check_note(&self, note: &str) -> Result<Accepted, CheckpointError> {
        let (checkpoint, log) = self.log_signature(note)?;
        let (body, lines) = split_note(note)?;
        let mut cosigners = Vec::new();
        let mut signed = vec![false; self.witnesses.len()];
        for (i, (name, key)) in self.witnesses.iter().enumerate() {
            if let Cosigned::At(t) = key.check_lines(body, &lines)? {
                signed[i] = true;
                cosigners.push((name.clone(), t));
            }
        }
        if !self.met(self.quorum, &signed) {
            let missing: Vec<&str> = self
                .witnesses
                .iter()
                .zip(&signed)
                .filter(|(_, s)| !**s)
                .map(|((n, _), _)| n.as_str())
                .collect();
            return Err(CheckpointError::QuorumNotMet {
                quorum: self.quorum_text(),
                missing: missing.join(", "),
            });
        }
        Ok(Accepted {
            checkpoint,
            log,
            cosigners,
        })
    }

    fn log_signature(&self, note: &str) -> Result<(Checkpoint, String), CheckpointError> {
        let mut first_err = None;
        for key in &self.logs {
            match Checkpoint::verify_note(note, key) {
                Ok(cp) => return Ok((cp, key.name().to_string())),
                // A changed note is reported before "someone else's key".
                Err(e @ CheckpointError::NoValidSignature { .. }) => return Err(e),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err
            .unwrap_or_else(|| CheckpointError::Malformed("the policy lists no log key".into())))
    }

    fn met(&self, m: Member, signed: &[bool]) -> bool {
        match m {
            Member::None => true,
            Member::Witness(i) => signed[i],
            Member::Group(g) => {
                let group = &self.groups[g];
                let n = group
                    .members
                    .iter()
                    .filter(|&&x| self.met(x, signed))
                    .count();
                n >= group.threshold
            }
        }
    }

    fn quorum_text(&self) -> String {
        match self.quorum {
            Member::None => "none".into(),
            Member::Witness(i) => format!("witness {}", self.witnesses[i].0),
            Member::Group(g) => {
                let group = &self.groups[g];
                format!(
                    "group {} ({} of {})",
                    group.name,
                    group.threshold,
                    group.members.len()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointKey;
    use crate::cosign::WitnessKey;
    use crate::format::Hash;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    #[test]
    fn a_quorum_of_groups_needs_each_group_and_names_who_is_missing() {
        let log = CheckpointKey::generate("log").unwrap();
        let w: Vec<WitnessKey> = (0..4)
            .map(|i| WitnessKey::generate(&format!("w{i}.example")).unwrap())
            .collect();
        let policy = format!(
            "# two organisations\nlog {}\nwitness X1 {}\nwitness X2 {}\n\t witness Y1 {} http://y1\n\
             witness Y2 {}\ngroup X 2 X1 X2\ngroup Y any Y1 Y2\ngroup XY all X Y\nquorum XY\n",
            log.public().to_vkey_string(),
            w[0].public().to_vkey_string(),
            w[1].public().to_vkey_string(),
            w[2].public().to_vkey_string(),
            w[3].public().to_vkey_string(),
        );
        let p = Policy::parse(&policy).unwrap();
        let cp = Checkpoint {
            log_id: [9; 16],
            seq: 3,
            hash: Hash::from_bytes([1; 32]),
            timestamp_ns: 1,
            retention: None,
            tree_root: None,
        };
        let note = cp.sign(&log);
        let body = cp.body();
        let with = |ws: &[usize]| {
            let mut n = note.clone();
            for &i in ws {
                n.push_str(&w[i].cosign(&body, 100));
            }
            n
        };
        assert!(p.check_note(&with(&[0, 1, 3])).is_ok());
        let err = p.check_note(&with(&[0, 2, 3])).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::QuorumNotMet { missing, .. } if missing == "X2"),
            "{err}"
        );
        assert!(p.check_note(&with(&[0, 1])).is_err());
        let ok = p.check_note(&with(&[1, 0, 2])).unwrap();
        assert_eq!(ok.cosigners.len(), 3);
        // quorum none: the log's signature alone.
        let none = format!("log {}\nquorum none\n", log.public().to_vkey_string());
        assert!(Policy::parse(&none).unwrap().check_note(&note).is_ok());
        for bad in [
            "quorum none\nquorum none\n",
            "log x\nquorum none\n",
            "group g any nobody\nquorum g\n",
            "quorum X\n",
            "log a b c d\nquorum none\n",
            "",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad:?}");
        }
        let dup = format!(
            "witness A {}\nwitness B {}\nquorum A\n",
            w[0].public().to_vkey_string(),
            w[0].public().to_vkey_string()
        );
        assert!(Policy::parse(&dup).is_err());
        let zero = format!(
            "witness A {}\ngroup g 0 A\nquorum g\n",
            w[0].public().to_vkey_string()
        );
        assert!(Policy::parse(&zero).is_err());
        // The log's own key as a witness (0x04 over the same Ed25519 key):
        // refused in either order, or the log would witness itself.
        let relabelled = |order: bool| {
            let vkey = log.public().to_vkey_string();
            let mut parts = vkey.splitn(3, '+');
            let (_, _, blob) = (parts.next(), parts.next(), parts.next().unwrap());
            let mut raw = B64.decode(blob).unwrap();
            raw[0] = 0x04;
            let fake = WitnessPublicKey::for_test("w.example", &raw[1..]);
            let (a, b) = (
                format!("log {vkey}"),
                format!("witness W {}", fake.to_vkey_string()),
            );
            if order {
                format!("{a}\n{b}\nquorum W\n")
            } else {
                format!("{b}\n{a}\nquorum W\n")
            }
        };
        for order in [true, false] {
            let err = Policy::parse(&relabelled(order)).unwrap_err();
            assert!(err.to_string().contains("cannot witness itself"), "{err}");
        }
    }
}
