//! Payloads of the engine's own records (format-spec.md, "System records").
//! Fixed-width little-endian fields, then strings as a u16 length and UTF-8.

use super::durability::{put_durability, DurabilityText};
use super::frame::RecordKind;
use super::hash::Hash;
use super::Durability;
use super::{le_u16, le_u32, le_u64};
use crate::error::Corruption;

/// What an engine record says. Each variant is one [`RecordKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SystemEvent {
    /// A new log's first record (seq 1).
    LogCreated {
        /// The format version of the writer that created the log.
        format_version: u16,
        /// The log's id, as in every segment header.
        log_id: [u8; 16],
        /// Free text naming the software, e.g. `wormlog 0.1.0`.
        engine: String,
    },
    /// A writer opened the log, with the durability it acknowledges appends
    /// under (so an auditor can tell what "acknowledged" meant).
    LogOpened {
        /// The writer's format version (at least its segment's).
        format_version: u16,
        /// Process id of the writer.
        pid: u32,
        /// Free text naming the software.
        engine: String,
        /// The durability appends are acknowledged under.
        durability: Durability,
    },
    /// Recovery cut `bytes` bytes from `offset` of `segment`; the next record
    /// expected there was `expected_seq`. Cut bytes that were not all zero are
    /// kept in the file named by `saved_as` (empty when nothing was kept).
    TailCut {
        /// The segment that was cut.
        segment: u64,
        /// Byte offset where the cut began.
        offset: u64,
        /// How many bytes were cut.
        bytes: u64,
        /// The seq the cut position would have held.
        expected_seq: u64,
        /// The `.cut-OFFSET` file holding the cut bytes; empty if all zero.
        saved_as: String,
    },
    /// The writer closed `from_segment` at `from_bytes` and continues in
    /// `to_segment` under `durability`, so every segment says what its
    /// records' acknowledgements meant without looking back.
    SegmentRolled {
        /// The segment closed.
        from_segment: u64,
        /// The segment started (this record's own).
        to_segment: u64,
        /// The closed segment's length in bytes.
        from_bytes: u64,
        /// The durability appends are acknowledged under.
        durability: Durability,
    },
    /// Recovery found damage at `offset` (record `seq`) of `segment`, moved
    /// the file aside as `moved_to` and kept the intact prefix.
    Repaired {
        /// The damaged segment.
        segment: u64,
        /// Byte offset of the first damaged frame.
        offset: u64,
        /// The seq expected there.
        seq: u64,
        /// Name of the `.damaged-TIME` copy of the whole file.
        moved_to: String,
        /// The damage, described for people.
        what: String,
    },
    /// The writer closed the log cleanly.
    LogClosed,
    /// The segment is complete: `records` records (the last `last_seq`, with
    /// chain hash `last_hash`) in its first `bytes` bytes, whose BLAKE3
    /// digest is `digest`. Always the segment's last record.
    Sealed {
        /// The segment's number.
        segment: u64,
        /// How many records precede this one in the segment.
        records: u64,
        /// Seq of the last of them (`first_seq - 1` when there are none).
        last_seq: u64,
        /// Its chain hash (the header's `prev_hash` when there are none).
        last_hash: Hash,
        /// This record's own offset: the segment's bytes before it.
        bytes: u64,
        /// BLAKE3 (plain) of those bytes, header included.
        digest: Hash,
    },
    /// Retention dropped segments `from_segment..=to_segment` (records
    /// `first_seq..=last_seq`), recorded first in the anchor file as the
    /// entry whose hash is `anchor_entry_hash`.
    RetentionApplied {
        /// The first segment dropped.
        from_segment: u64,
        /// The last segment dropped.
        to_segment: u64,
        /// Seq of the first record dropped.
        first_seq: u64,
        /// Seq of the last record dropped.
        last_seq: u64,
        /// Hash of the anchor entry that records the drop.
        anchor_entry_hash: Hash,
    },
    /// A legal hold was set: retention drops nothing until it is cleared.
    LegalHoldSet {
        /// Why, as the caller gave it.
        reason: String,
    },
    /// The legal hold was cleared.
    LegalHoldCleared,
    /// Format 2: the legal hold and retention policy in force when the
    /// segment began; every format-2 segment's second record. With it, any
    /// segment (the active one above all) tells the log's state without
    /// reading the segments before it.
    LogState {
        /// The reason of the legal hold in force; `None` without one.
        hold: Option<String>,
        /// The retention policy in force; `None` without one.
        policy: Option<RetentionRule>,
    },
    /// Format 2: the retention policy in force changed; written in the same
    /// group as, and just before, the first drop under the new policy.
    RetentionPolicySet {
        /// The policy now in force (`None`: retention off).
        policy: Option<RetentionRule>,
    },
    /// Format 2: the wall clock read `clock_ns`, more than the writer's
    /// bound after `last_ns`, the time of the record before.
    ClockJumped {
        /// Commit time of the record before, ns since the Unix epoch.
        last_ns: u64,
        /// What the wall clock read, ns since the Unix epoch.
        clock_ns: u64,
    },
    /// Format 2: forward-secure sealing begins: epoch 1 starts at
    /// `start_ns`, each lasts `interval_ns`, under the verification key
    /// whose id is `key_id`.
    SealingStarted {
        /// When epoch 1 begins, ns since the Unix epoch.
        start_ns: u64,
        /// Length of an epoch in ns.
        interval_ns: u64,
        /// The verification key's public id.
        key_id: [u8; 8],
        /// Format 3: what the setup found of the era before it (a
        /// version-3 writer always states it; `None` in an older record).
        previous: Option<PreviousEra>,
    },
    /// Format 2: `tag` seals every record before this one, for epochs
    /// `first_epoch..=epoch` (format-spec.md, "Forward-secure sealing").
    EpochTag {
        /// The first epoch sealed (`>= 1`); its key made the tag.
        first_epoch: u64,
        /// The last epoch sealed (`>= first_epoch`).
        epoch: u64,
        /// Keyed BLAKE3 over the epochs and the seq and chain hash of the
        /// record before this one.
        tag: [u8; 32],
    },
    /// Format 2: someone read or exported the log, and said so: audit
    /// guidance asks that access to the audit trail be logged too.
    Accessed {
        /// Who: a user, service or auditor name, as they gave it.
        who: String,
        /// What: the range or query, in words (`dump seqs 1..=500`).
        what: String,
        /// Why, as they gave it (a ticket, a case); may be empty.
        why: String,
    },
    /// Format 3: a witness refused a checkpoint of this log, having seen
    /// another history of it (a rollback or a fork): loud, in the chain.
    WitnessConflict {
        /// The witness (its URL).
        witness: String,
        /// What it answered, in words.
        detail: String,
    },
}

/// A retention policy as the log records it (format-spec.md, 4.2). Zero
/// means "not set" for `max_age_ns` and `max_total_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionRule {
    /// Segments whose newest record is at least this old, in ns, may go;
    /// 0: no age limit.
    pub max_age_ns: u64,
    /// The oldest segments go while the log is larger than this, in bytes;
    /// 0: no size limit.
    pub max_total_bytes: u64,
    /// The compliance floor: no segment whose newest record is younger than
    /// this, in ns, is dropped, whatever the other limits say.
    pub min_age_ns: u64,
    /// Retention refuses to run while the wall clock is more than this
    /// ahead of the log's last committed record.
    pub clock_ahead_max_ns: u64,
}

/// One line for people: hashes in hex, strings quoted.
/// Format 3: what a sealing-started record says of the sealing before it
/// (format-spec.md 10a, "Re-keying").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousEra {
    /// The setup found no sealing key file: a first setup, or the key file
    /// of the era before was gone (lost, or removed with records after its
    /// last tag: the verifier reports such an era's end as unproven).
    NoKeyFile,
    /// The setup rotated the key whose id this is: it tagged every epoch
    /// through the current one with it first, so that era's tags reach
    /// the new start.
    Rotated([u8; 8]),
}

impl std::fmt::Display for SystemEvent {
    // Long by nature: one sentence per record kind, in the order of the kinds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::hex;
        match self {
            SystemEvent::LogCreated {
                format_version,
                log_id,
                engine,
            } => write!(
                f,
                "log {} created by {engine:?} (format v{format_version})",
                hex(log_id)
            ),
            SystemEvent::LogOpened {
                format_version,
                pid,
                engine,
                durability,
            } => {
                write!(
                    f,
                    "opened by {engine:?} pid {pid} (format v{format_version}), durability {}",
                    DurabilityText(durability)
                )
            }
            SystemEvent::TailCut {
                segment,
                offset,
                bytes,
                expected_seq,
                saved_as,
            } => {
                write!(
                    f,
                    "recovery cut a torn tail of {bytes} bytes at offset {offset} of segment \
                     {segment} (next seq {expected_seq})"
                )?;
                if !saved_as.is_empty() {
                    write!(f, "; the bytes are kept in {saved_as:?}")?;
                }
                Ok(())
            }
            SystemEvent::SegmentRolled {
                from_segment,
                to_segment,
                from_bytes,
                durability,
            } => write!(
                f,
                "segment {from_segment} closed at {from_bytes} bytes; appends go to segment \
                 {to_segment}, durability {}",
                DurabilityText(durability)
            ),
            SystemEvent::Repaired {
                segment,
                offset,
                seq,
                moved_to,
                what,
            } => write!(
                f,
                "repair: segment {segment} damaged at offset {offset} (seq {seq}): {what}; \
                 moved to {moved_to:?}, intact prefix kept"
            ),
            SystemEvent::LogClosed => write!(f, "log closed"),
            SystemEvent::Sealed {
                segment,
                records,
                last_seq,
                last_hash,
                bytes,
                digest,
            } => write!(
                f,
                "segment {segment} complete: {records} records through seq {last_seq} \
                 (hash {}), {bytes} bytes with digest {}",
                hex(last_hash),
                hex(digest)
            ),
            SystemEvent::RetentionApplied {
                from_segment,
                to_segment,
                first_seq,
                last_seq,
                anchor_entry_hash,
            } => write!(
                f,
                "retention dropped segments {from_segment}..={to_segment} (seqs \
                 {first_seq}..={last_seq}); anchor entry {}",
                hex(anchor_entry_hash)
            ),
            SystemEvent::LegalHoldSet { reason } => write!(f, "legal hold set: {reason:?}"),
            SystemEvent::WitnessConflict { witness, detail } => {
                write!(f, "witness {witness:?} refused a checkpoint: {detail:?}")
            }
            SystemEvent::Accessed { who, what, why } => {
                write!(f, "accessed by {who:?}: {what:?}")?;
                if !why.is_empty() {
                    write!(f, ", because {why:?}")?;
                }
                Ok(())
            }
            SystemEvent::LegalHoldCleared => write!(f, "legal hold cleared"),
            SystemEvent::LogState { hold, policy } => {
                match hold {
                    Some(reason) => write!(f, "state: legal hold {reason:?}")?,
                    None => write!(f, "state: no legal hold")?,
                }
                write!(f, ", retention {}", PolicyText(policy))
            }
            SystemEvent::RetentionPolicySet { policy } => {
                write!(f, "retention policy set: {}", PolicyText(policy))
            }
            SystemEvent::SealingStarted {
                start_ns,
                interval_ns,
                key_id,
                previous,
            } => {
                write!(
                    f,
                    "forward-secure sealing started: epoch 1 at {start_ns}, every {interval_ns} \
                     ns, verification key {}",
                    hex(key_id)
                )?;
                match previous {
                    Some(PreviousEra::Rotated(k)) => write!(f, ", rotated from key {}", hex(k)),
                    Some(PreviousEra::NoKeyFile) => write!(f, ", no key file before it"),
                    None => Ok(()),
                }
            }
            SystemEvent::EpochTag {
                first_epoch,
                epoch,
                tag,
            } => write!(f, "sealed epochs {first_epoch}..={epoch}: tag {}", hex(tag)),
            SystemEvent::ClockJumped { last_ns, clock_ns } => write!(
                f,
                "clock jumped forward {} ns: last record at {last_ns}, clock read {clock_ns}",
                clock_ns.saturating_sub(*last_ns)
            ),
        }
    }
}

struct PolicyText<'a>(&'a Option<RetentionRule>);

impl std::fmt::Display for PolicyText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(p) = self.0 else {
            return write!(f, "off");
        };
        let opt = |v: u64| {
            if v == 0 {
                "-".to_string()
            } else {
                v.to_string()
            }
        };
        write!(
            f,
            "max_age_ns {} max_total_bytes {} min_age_ns {} clock_ahead_max_ns {}",
            opt(p.max_age_ns),
            opt(p.max_total_bytes),
            p.min_age_ns,
            p.clock_ahead_max_ns
        )
    }
}

impl SystemEvent {
    /// The record kind this event is written as.
    pub fn kind(&self) -> RecordKind {
        match self {
            SystemEvent::LogCreated { .. } => RecordKind::LogCreated,
            SystemEvent::LogOpened { .. } => RecordKind::LogOpened,
            SystemEvent::TailCut { .. } => RecordKind::TailCut,
            SystemEvent::SegmentRolled { .. } => RecordKind::SegmentRolled,
            SystemEvent::Repaired { .. } => RecordKind::Repaired,
            SystemEvent::LogClosed => RecordKind::LogClosed,
            SystemEvent::Sealed { .. } => RecordKind::Sealed,
            SystemEvent::RetentionApplied { .. } => RecordKind::RetentionApplied,
            SystemEvent::LegalHoldSet { .. } => RecordKind::LegalHoldSet,
            SystemEvent::LegalHoldCleared => RecordKind::LegalHoldCleared,
            SystemEvent::LogState { .. } => RecordKind::LogState,
            SystemEvent::RetentionPolicySet { .. } => RecordKind::RetentionPolicySet,
            SystemEvent::ClockJumped { .. } => RecordKind::ClockJumped,
            SystemEvent::SealingStarted { .. } => RecordKind::SealingStarted,
            SystemEvent::EpochTag { .. } => RecordKind::EpochTag,
            SystemEvent::Accessed { .. } => RecordKind::Accessed,
            SystemEvent::WitnessConflict { .. } => RecordKind::WitnessConflict,
        }
    }

    // Long by nature: one arm per record kind, each the row of its payload
    // table in format-spec.md; split up, the table would be scattered.
    /// The record's payload, laid out as format-spec.md, section 4.2, says.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            SystemEvent::LogCreated {
                format_version,
                log_id,
                engine,
            } => {
                out.extend_from_slice(&format_version.to_le_bytes());
                out.extend_from_slice(log_id);
                put_str(&mut out, engine);
            }
            SystemEvent::LogOpened {
                format_version,
                pid,
                engine,
                durability,
            } => {
                out.extend_from_slice(&format_version.to_le_bytes());
                out.extend_from_slice(&pid.to_le_bytes());
                put_str(&mut out, engine);
                put_durability(&mut out, durability);
            }
            SystemEvent::TailCut {
                segment,
                offset,
                bytes,
                expected_seq,
                saved_as,
            } => {
                for v in [segment, offset, bytes, expected_seq] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                put_str(&mut out, saved_as);
            }
            SystemEvent::SegmentRolled {
                from_segment,
                to_segment,
                from_bytes,
                durability,
            } => {
                for v in [from_segment, to_segment, from_bytes] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                put_durability(&mut out, durability);
            }
            SystemEvent::Repaired {
                segment,
                offset,
                seq,
                moved_to,
                what,
            } => {
                for v in [segment, offset, seq] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                put_str(&mut out, moved_to);
                put_str(&mut out, what);
            }
            SystemEvent::Sealed {
                segment,
                records,
                last_seq,
                last_hash,
                bytes,
                digest,
            } => {
                for v in [segment, records, last_seq] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(last_hash.as_bytes());
                out.extend_from_slice(&bytes.to_le_bytes());
                out.extend_from_slice(digest.as_bytes());
            }
            SystemEvent::RetentionApplied {
                from_segment,
                to_segment,
                first_seq,
                last_seq,
                anchor_entry_hash,
            } => {
                for v in [from_segment, to_segment, first_seq, last_seq] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(anchor_entry_hash.as_bytes());
            }
            SystemEvent::LegalHoldSet { reason } => put_str(&mut out, reason),
            SystemEvent::Accessed { who, what, why } => {
                put_str(&mut out, who);
                put_str(&mut out, what);
                put_str(&mut out, why);
            }
            SystemEvent::WitnessConflict { witness, detail } => {
                put_str(&mut out, witness);
                put_str(&mut out, detail);
            }
            SystemEvent::LogClosed | SystemEvent::LegalHoldCleared => {}
            SystemEvent::LogState { hold, policy } => {
                out.push(u8::from(hold.is_some()));
                put_str(&mut out, hold.as_deref().unwrap_or_default());
                put_policy(&mut out, policy);
            }
            SystemEvent::RetentionPolicySet { policy } => put_policy(&mut out, policy),
            SystemEvent::ClockJumped { last_ns, clock_ns } => {
                out.extend_from_slice(&last_ns.to_le_bytes());
                out.extend_from_slice(&clock_ns.to_le_bytes());
            }
            SystemEvent::SealingStarted {
                start_ns,
                interval_ns,
                key_id,
                previous,
            } => {
                out.extend_from_slice(&start_ns.to_le_bytes());
                out.extend_from_slice(&interval_ns.to_le_bytes());
                out.extend_from_slice(key_id);
                match previous {
                    None => {}
                    Some(PreviousEra::NoKeyFile) => out.extend_from_slice(&[0u8; 9]),
                    Some(PreviousEra::Rotated(k)) => {
                        out.push(1);
                        out.extend_from_slice(k);
                    }
                }
            }
            SystemEvent::EpochTag {
                first_epoch,
                epoch,
                tag,
            } => {
                out.extend_from_slice(&first_epoch.to_le_bytes());
                out.extend_from_slice(&epoch.to_le_bytes());
                out.extend_from_slice(tag);
            }
        }
        out
    }

    /// Decodes a system record's payload; `None` for user records.
    /// Long by nature: one match arm per record kind of format-spec.md 4.2,
    /// each a few reads in the order the table gives; split, the kinds
    /// would be read in two places.
    pub fn decode(kind: RecordKind, payload: &[u8]) -> Option<Result<Self, Corruption>> {
        if kind == RecordKind::User {
            return None;
        }
        let mut r = Reader {
            buf: payload,
            at: 0,
        };
        let event = (|| {
            let event = match kind {
                RecordKind::LogCreated => SystemEvent::LogCreated {
                    format_version: r.u16()?,
                    log_id: r.array16()?,
                    engine: r.string()?,
                },
                RecordKind::LogOpened => SystemEvent::LogOpened {
                    format_version: r.u16()?,
                    pid: r.u32()?,
                    engine: r.string()?,
                    durability: r.durability()?,
                },
                RecordKind::TailCut => SystemEvent::TailCut {
                    segment: r.u64()?,
                    offset: r.u64()?,
                    bytes: r.u64()?,
                    expected_seq: r.u64()?,
                    saved_as: r.string()?,
                },
                RecordKind::SegmentRolled => SystemEvent::SegmentRolled {
                    from_segment: r.u64()?,
                    to_segment: r.u64()?,
                    from_bytes: r.u64()?,
                    durability: r.durability()?,
                },
                RecordKind::Repaired => SystemEvent::Repaired {
                    segment: r.u64()?,
                    offset: r.u64()?,
                    seq: r.u64()?,
                    moved_to: r.string()?,
                    what: r.string()?,
                },
                RecordKind::LogClosed => SystemEvent::LogClosed,
                RecordKind::Sealed => SystemEvent::Sealed {
                    segment: r.u64()?,
                    records: r.u64()?,
                    last_seq: r.u64()?,
                    last_hash: Hash::from_bytes(r.array32()?),
                    bytes: r.u64()?,
                    digest: Hash::from_bytes(r.array32()?),
                },
                RecordKind::RetentionApplied => SystemEvent::RetentionApplied {
                    from_segment: r.u64()?,
                    to_segment: r.u64()?,
                    first_seq: r.u64()?,
                    last_seq: r.u64()?,
                    anchor_entry_hash: Hash::from_bytes(r.array32()?),
                },
                RecordKind::LegalHoldSet => SystemEvent::LegalHoldSet {
                    reason: r.string()?,
                },
                RecordKind::LegalHoldCleared => SystemEvent::LegalHoldCleared,
                RecordKind::LogState => SystemEvent::LogState {
                    hold: r.hold()?,
                    policy: r.policy()?,
                },
                RecordKind::RetentionPolicySet => SystemEvent::RetentionPolicySet {
                    policy: r.policy()?,
                },
                RecordKind::ClockJumped => SystemEvent::ClockJumped {
                    last_ns: r.u64()?,
                    clock_ns: r.u64()?,
                },
                RecordKind::SealingStarted => SystemEvent::SealingStarted {
                    start_ns: r.u64()?,
                    interval_ns: r.u64()?,
                    key_id: r.array8()?,
                    previous: match r.buf.len() - r.at {
                        0 => None,
                        _ => match (r.u8()?, r.array8()?) {
                            (0, k) if k == [0; 8] => Some(PreviousEra::NoKeyFile),
                            (1, k) => Some(PreviousEra::Rotated(k)),
                            (f, _) => {
                                return Err(format!(
                                    "previous-era flag {f} is not 0 (with a zero key id) or 1"
                                ))
                            }
                        },
                    },
                },
                RecordKind::EpochTag => {
                    let (first_epoch, epoch) = (r.u64()?, r.u64()?);
                    if first_epoch == 0 || first_epoch > epoch {
                        return Err(format!(
                            "epochs {first_epoch}..={epoch} are not a range from 1"
                        ));
                    }
                    SystemEvent::EpochTag {
                        first_epoch,
                        epoch,
                        tag: r.array32()?,
                    }
                }
                RecordKind::Accessed => SystemEvent::Accessed {
                    who: r.string()?,
                    what: r.string()?,
                    why: r.string()?,
                },
                RecordKind::WitnessConflict => SystemEvent::WitnessConflict {
                    witness: r.string()?,
                    detail: r.string()?,
                },
                RecordKind::User => unreachable!("handled above"),
            };
            if r.at != r.buf.len() {
                return Err(format!("{} trailing bytes", r.buf.len() - r.at));
            }
            Ok(event)
        })();
        Some(event.map_err(|detail| Corruption::SystemPayload {
            detail: format!("{}: {detail}", kind.name()),
        }))
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings we write are short (file names, versions); clip rather than fail.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// A policy: a presence byte (0 or 1) and four u64 fields, all zero when absent.
fn put_policy(out: &mut Vec<u8>, policy: &Option<RetentionRule>) {
    let p = policy.unwrap_or_default();
    out.push(u8::from(policy.is_some()));
    for v in [
        p.max_age_ns,
        p.max_total_bytes,
        p.min_age_ns,
        p.clock_ahead_max_ns,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.buf.len() - self.at < n {
            return Err(format!("ends at byte {} inside a field", self.buf.len()));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn durability(&mut self) -> Result<Durability, String> {
        match (self.u8()?, self.u64()?) {
            (0, 0) => Ok(Durability::Sync),
            (1, ns) => Ok(Durability::Batched {
                max_delay: std::time::Duration::from_nanos(ns),
            }),
            (2, 0) => Ok(Durability::Buffered),
            (mode, ns) => Err(format!(
                "durability {mode} with delay {ns} ns is not one of 0/0, 1/any, 2/0"
            )),
        }
    }
    /// A presence byte and a string, empty when absent.
    fn hold(&mut self) -> Result<Option<String>, String> {
        let present = self.flag("hold")?;
        let reason = self.string()?;
        match present {
            true => Ok(Some(reason)),
            false if reason.is_empty() => Ok(None),
            false => Err("a hold reason without a hold".into()),
        }
    }
    fn policy(&mut self) -> Result<Option<RetentionRule>, String> {
        let present = self.flag("policy")?;
        let p = RetentionRule {
            max_age_ns: self.u64()?,
            max_total_bytes: self.u64()?,
            min_age_ns: self.u64()?,
            clock_ahead_max_ns: self.u64()?,
        };
        match present {
            true => Ok(Some(p)),
            false if p == RetentionRule::default() => Ok(None),
            false => Err("policy fields without a policy".into()),
        }
    }
    fn flag(&mut self, what: &str) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("{what} flag {v}, must be 0 or 1")),
        }
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(le_u16(self.take(2)?, 0))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(le_u32(self.take(4)?, 0))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(le_u64(self.take(8)?, 0))
    }
    fn array8(&mut self) -> Result<[u8; 8], String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(a)
    }
    fn array16(&mut self) -> Result<[u8; 16], String> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(a)
    }
    fn array32(&mut self) -> Result<[u8; 32], String> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    fn string(&mut self) -> Result<String, String> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Long by nature: one value of every record kind (and every form of
    // those with several), as the round-trip tests need them.
    fn all() -> Vec<SystemEvent> {
        vec![
            SystemEvent::LogCreated {
                format_version: 1,
                log_id: [5; 16],
                engine: "wormlog 0.1.0".into(),
            },
            SystemEvent::LogOpened {
                format_version: 1,
                pid: 4242,
                engine: "wormlog 0.1.0".into(),
                durability: Durability::Sync,
            },
            SystemEvent::LogOpened {
                format_version: 1,
                pid: 7,
                engine: "wormlog 0.1.0".into(),
                durability: Durability::Batched {
                    max_delay: std::time::Duration::from_millis(10),
                },
            },
            SystemEvent::LogOpened {
                format_version: 1,
                pid: 8,
                engine: "wormlog 0.1.0".into(),
                durability: Durability::Buffered,
            },
            SystemEvent::TailCut {
                segment: 3,
                offset: 4096,
                bytes: 100,
                expected_seq: 17,
                saved_as: "x.cut".into(),
            },
            SystemEvent::SegmentRolled {
                from_segment: 1,
                to_segment: 2,
                from_bytes: 1 << 26,
                durability: Durability::Batched {
                    max_delay: std::time::Duration::from_millis(3),
                },
            },
            SystemEvent::Repaired {
                segment: 2,
                offset: 200,
                seq: 9,
                moved_to: "a.damaged".into(),
                what: "frame CRC mismatch".into(),
            },
            SystemEvent::LogClosed,
            SystemEvent::Sealed {
                segment: 4,
                records: 100,
                last_seq: 400,
                last_hash: Hash::from_bytes([7; 32]),
                bytes: 65536,
                digest: Hash::from_bytes([8; 32]),
            },
            SystemEvent::RetentionApplied {
                from_segment: 1,
                to_segment: 3,
                first_seq: 1,
                last_seq: 300,
                anchor_entry_hash: Hash::from_bytes([9; 32]),
            },
            SystemEvent::LegalHoldSet {
                reason: "case 2026-17".into(),
            },
            SystemEvent::WitnessConflict {
                witness: "http://127.0.0.1:7701".into(),
                detail: "it has cosigned a tree of 9 records".into(),
            },
            SystemEvent::LegalHoldCleared,
            SystemEvent::LogState {
                hold: Some("case 9".into()),
                policy: Some(RetentionRule {
                    max_age_ns: 5,
                    max_total_bytes: 0,
                    min_age_ns: 3,
                    clock_ahead_max_ns: 86_400_000_000_000,
                }),
            },
            SystemEvent::LogState {
                hold: None,
                policy: None,
            },
            SystemEvent::Accessed {
                who: "auditor@example".into(),
                what: "dump seqs 1..=500 --grep login".into(),
                why: "SOC 2 sample, ticket 44".into(),
            },
            SystemEvent::Accessed {
                who: "ops".into(),
                what: String::new(),
                why: String::new(),
            },
            SystemEvent::RetentionPolicySet { policy: None },
            SystemEvent::RetentionPolicySet {
                policy: Some(RetentionRule::default()),
            },
            SystemEvent::ClockJumped {
                last_ns: 10,
                clock_ns: 7_200_000_000_010,
            },
            SystemEvent::SealingStarted {
                start_ns: 5,
                interval_ns: 900_000_000_000,
                key_id: [3; 8],
                previous: None,
            },
            SystemEvent::SealingStarted {
                start_ns: 5,
                interval_ns: 900_000_000_000,
                key_id: [3; 8],
                previous: Some(PreviousEra::NoKeyFile),
            },
            SystemEvent::SealingStarted {
                start_ns: 5,
                interval_ns: 900_000_000_000,
                key_id: [3; 8],
                previous: Some(PreviousEra::Rotated([4; 8])),
            },
            SystemEvent::EpochTag {
                first_epoch: 4,
                epoch: 6,
                tag: [0xee; 32],
            },
        ]
    }

    #[test]
    fn an_absent_hold_or_policy_carries_no_values() {
        let bad_hold = [0u8, 1, 0, b'x'];
        let mut bytes = bad_hold.to_vec();
        bytes.extend_from_slice(&[0u8; 33]);
        assert!(SystemEvent::decode(RecordKind::LogState, &bytes)
            .unwrap()
            .is_err());
        let mut bad_policy = vec![0u8];
        bad_policy.extend_from_slice(&7u64.to_le_bytes());
        bad_policy.extend_from_slice(&[0u8; 24]);
        assert!(
            SystemEvent::decode(RecordKind::RetentionPolicySet, &bad_policy)
                .unwrap()
                .is_err()
        );
        let mut flag2 = vec![2u8];
        flag2.extend_from_slice(&[0u8; 32]);
        assert!(SystemEvent::decode(RecordKind::RetentionPolicySet, &flag2)
            .unwrap()
            .is_err());
    }

    #[test]
    fn system_events_round_trip() {
        for e in all() {
            let bytes = e.encode();
            assert_eq!(SystemEvent::decode(e.kind(), &bytes).unwrap().unwrap(), e);
        }
    }

    #[test]
    fn an_unknown_durability_mode_is_an_error() {
        let e = SystemEvent::LogOpened {
            format_version: 1,
            pid: 1,
            engine: "e".into(),
            durability: Durability::Sync,
        };
        let mut bytes = e.encode();
        let mode_at = bytes.len() - 9;
        for (mode, delay) in [(3u8, 0u64), (0, 5), (2, 1)] {
            bytes[mode_at] = mode;
            bytes[mode_at + 1..].copy_from_slice(&delay.to_le_bytes());
            assert!(SystemEvent::decode(e.kind(), &bytes).unwrap().is_err());
        }
    }

    #[test]
    fn truncated_or_padded_system_payloads_are_errors() {
        for e in all() {
            let bytes = e.encode();
            // A format-3 sealing-started record cut to the older form's 24
            // bytes is that form (it says nothing of the era before).
            let older_form = matches!(
                e,
                SystemEvent::SealingStarted {
                    previous: Some(_),
                    ..
                }
            );
            for len in 0..bytes.len() {
                let decoded = SystemEvent::decode(e.kind(), &bytes[..len]).unwrap();
                if older_form && len == 24 {
                    assert!(matches!(
                        decoded,
                        Ok(SystemEvent::SealingStarted { previous: None, .. })
                    ));
                    continue;
                }
                assert!(decoded.is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(SystemEvent::decode(e.kind(), &longer).unwrap().is_err());
        }
    }
}
