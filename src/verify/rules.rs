//! The rules the chain's own records lay down for the whole log, checked
//! in one pass over the records that make or state the log's state
//! (format-spec.md, 9): a legal hold stops retention; a format-2 drop needs
//! a recorded policy and respects its minimum age; every retention record
//! names the anchor entry with its own fields, and the anchor entry that
//! vouches for the log's start is named by one (so an entry forged for
//! deleted segments shows); the hold file says what the chain says.

use super::sealing::{SealCheck, SealingReport};
use crate::anchor::{hold_mismatch, Anchor};
use crate::error::{Corruption, Error, Result};
use crate::format::names::ANCHOR_FILE;
use crate::format::{
    hex, AnchorEntry, ChainPos, FssKeyFile, Hash, RecordedTag, RetentionRule, SystemEvent,
    VerificationKey,
};
use crate::segment::Segment;
use crate::state::LogState;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A record that makes or states the log's state, where it lies.
#[derive(Debug)]
pub(super) struct Noted {
    pub offset: u64,
    pub seq: u64,
    pub timestamp_ns: u64,
    /// The chain position just before the record (what a tag seals).
    pub before: ChainPos,
    pub event: SystemEvent,
    /// For an epoch tag: the commit time of the first record (not a tag)
    /// after the tag before it in the same segment, or after the
    /// segment's start: the oldest record it covers there.
    pub covered_from_ns: Option<u64>,
}

/// A retention-applied record and the policy in force when it was written.
struct DropRecord {
    path: PathBuf,
    offset: u64,
    seq: u64,
    timestamp_ns: u64,
    from_segment: u64,
    to_segment: u64,
    first_seq: u64,
    last_seq: u64,
    entry_hash: Hash,
    policy: Option<RetentionRule>,
    /// The format of the segment the record is in.
    version: u16,
}

/// The pass over the chain; feed it the segments in order.
pub(super) struct ChainRules<'a> {
    anchor: &'a Anchor,
    state: LogState,
    /// A format-2 segment has stated the whole state: `state` is known.
    known: bool,
    /// A hold record was seen (in a format-1 log, the hold is known from
    /// the first one on).
    hold_seen: bool,
    drops: Vec<DropRecord>,
    seal: SealCheck<'a>,
    /// The strictest policy recorded so far: the largest minimum age and
    /// the smallest clock bound any policy record stated.
    strictest: Option<RetentionRule>,
    /// The tag the anchor entry vouching for the log's start recorded, and
    /// that entry's index: its commit time and policy judge that drop.
    anchored_tag: Option<(usize, RecordedTag)>,
    /// The anchor entry that vouches for the log's start, if any.
    vouching: Option<usize>,
    /// The commit time of the log's first record.
    first_ns: Option<u64>,
}

impl<'a> ChainRules<'a> {
    /// The pass over a log that begins after `start` (the first segment's
    /// header: seq 0 for a log that starts at seq 1).
    pub fn new(
        anchor: &'a Anchor,
        keys: &'a [VerificationKey],
        key_file: Option<&FssKeyFile>,
        start: ChainPos,
        dir: &Path,
    ) -> Result<Self> {
        let after_retention = start.seq > 0;
        // The anchor entry that vouches for the log's start, if any, and
        // what it records of the sealing state (format 3 only).
        let vouching = after_retention
            .then(|| {
                anchor
                    .entries
                    .iter()
                    .rposition(|(e, _)| vouches(e, start.seq + 1, &start.hash))
            })
            .flatten();
        let anchored = vouching.and_then(|v| anchor.entries[v].0.ext.map(|x| x.sealing));
        let anchored_tag = vouching.and_then(|v| {
            let tag = anchored.flatten()?.last_tag?;
            Some((v, tag))
        });
        // A run cut short between deletions (8.3) leaves the log starting
        // inside the entry's dropped range.
        let inside = vouching
            .filter(|v| anchor.entries[*v].0.first_seq != start.seq + 1)
            .map(|_| start.seq + 1);
        let mut seal = SealCheck::new(keys, key_file, after_retention, anchored, inside);
        seal.check_anchored(&dir.join(ANCHOR_FILE))?;
        if inside.is_some() {
            seal.begin_inside();
        }
        let anchored_tag = anchored_tag.map(|(v, mut t)| {
            t.facts.time_ns = seal.tag_date(&t, anchor.entries[v].0.first_seq - 1);
            (v, t)
        });
        Ok(ChainRules {
            anchor,
            state: LogState::default(),
            known: false,
            hold_seen: false,
            drops: Vec::new(),
            seal,
            strictest: None,
            anchored_tag,
            vouching,
            first_ns: None,
        })
    }

    /// Takes in the noted records of the next segment, which holds
    /// `records` records and is the log's last segment when `last`.
    pub fn segment(
        &mut self,
        seg: &Segment,
        noted: &[Noted],
        records: u64,
        last: bool,
    ) -> Result<()> {
        // The log-state record, where the segment has one: its record
        // after the opening one (and after the epoch tags a writer's open
        // may write first; verify.rs checks where it stands).
        let mut stated = None;
        // The active segment of a log that crashed in its first group may
        // hold its opening record alone: it does not yet tell the state
        // (the next writer's open writes the log-state record).
        let tells_state = !(last && records <= 1);
        if seg.header.version >= 2 && tells_state {
            // A format-2 segment begins in the default state unless its
            // log-state record says otherwise.
            let lead = noted
                .iter()
                .take_while(|n| matches!(n.event, SystemEvent::EpochTag { .. }))
                .count();
            let begin = match noted.get(lead) {
                Some(Noted {
                    event: e @ SystemEvent::LogState { .. },
                    ..
                }) => {
                    stated = Some(lead);
                    let mut s = LogState::default();
                    s.apply(e);
                    s
                }
                _ => LogState::default(),
            };
            if self.known && self.state != begin {
                return Err(breach(
                    &seg.path,
                    noted.first().map_or(0, |n| n.offset),
                    Some(seg.header.first_seq),
                    format!(
                        "segment {} begins with {}, the segment before ended with {}",
                        seg.number,
                        say_state(&begin),
                        say_state(&self.state)
                    ),
                ));
            }
            self.state = begin;
            self.known = true;
        }
        for (i, n) in noted.iter().enumerate() {
            let facts = self.state.tag_facts(n.before.timestamp_ns);
            self.seal.note(&seg.path, n, seg.header.version, &facts)?;
            if stated == Some(i) {
                self.take_policy(seg, n)?;
                continue;
            }
            match &n.event {
                SystemEvent::RetentionApplied {
                    from_segment,
                    to_segment,
                    first_seq,
                    last_seq,
                    anchor_entry_hash,
                } => {
                    self.check_drop_allowed(seg, n)?;
                    self.drops.push(DropRecord {
                        path: seg.path.clone(),
                        offset: n.offset,
                        seq: n.seq,
                        timestamp_ns: n.timestamp_ns,
                        from_segment: *from_segment,
                        to_segment: *to_segment,
                        first_seq: *first_seq,
                        last_seq: *last_seq,
                        entry_hash: *anchor_entry_hash,
                        policy: self.state.policy.map(|p| strictest(p, self.strictest)),
                        version: seg.header.version,
                    });
                }
                e => {
                    self.take_policy(seg, n)?;
                    if matches!(
                        e,
                        SystemEvent::LegalHoldSet { .. } | SystemEvent::LegalHoldCleared
                    ) {
                        self.hold_seen = true;
                    }
                    self.state.apply(e);
                }
            }
        }
        Ok(())
    }

    /// Takes in a record that states a retention policy: in a format-3
    /// segment it may raise the minimum age or lower the clock bound,
    /// never the other way, nor remove the policy (a WORM policy is
    /// COMPLIANCE-mode: no one lowers it).
    fn take_policy(&mut self, seg: &Segment, n: &Noted) -> Result<()> {
        let stated = match &n.event {
            SystemEvent::RetentionPolicySet { policy } => policy,
            SystemEvent::LogState { policy, .. } => policy,
            _ => return Ok(()),
        };
        let Some(before) = self.strictest else {
            self.strictest = *stated;
            return Ok(());
        };
        let weaker = match stated {
            None => true,
            Some(p) => {
                p.min_age_ns < before.min_age_ns || p.clock_ahead_max_ns > before.clock_ahead_max_ns
            }
        };
        if weaker && seg.header.version >= 3 {
            return Err(breach(
                &seg.path,
                n.offset,
                Some(n.seq),
                format!(
                    "the retention policy was weakened: {} after a minimum age of {} ns and a \
                     clock bound of {} ns were recorded",
                    n.event, before.min_age_ns, before.clock_ahead_max_ns
                ),
            ));
        }
        if let Some(p) = stated {
            self.strictest = Some(strictest(*p, Some(before)));
        }
        Ok(())
    }

    /// A drop needs no hold in force and, in format 2, a recorded policy.
    fn check_drop_allowed(&self, seg: &Segment, n: &Noted) -> Result<()> {
        if let Some(reason) = self
            .state
            .hold
            .as_ref()
            .filter(|_| self.known || self.hold_seen)
        {
            return Err(breach(
                &seg.path,
                n.offset,
                Some(n.seq),
                format!("retention dropped segments while the legal hold {reason:?} was set"),
            ));
        }
        if seg.header.version >= 2 && self.state.policy.is_none() {
            return Err(breach(
                &seg.path,
                n.offset,
                Some(n.seq),
                "retention dropped segments with no retention policy recorded".into(),
            ));
        }
        Ok(())
    }

    /// After a segment: the first record since its last tag (or its
    /// start), which the next tag, in a later segment, covers from.
    pub fn segment_end(&mut self, since_tag_ns: Option<u64>) {
        self.seal.segment_end(since_tag_ns);
    }

    /// The log is checked as a copy (`Options::verify_as_copy`).
    pub fn as_copy(&mut self, yes: bool) {
        self.seal.as_copy = yes;
    }

    /// The commit time of the log's first record (of its first segment).
    pub fn first_record(&mut self, ns: Option<u64>) {
        if self.first_ns.is_none() {
            self.first_ns = ns;
            self.seal.first_kept_ns = ns;
        }
    }

    /// After the last segment: the anchor both ways, the hold file, and
    /// sealing (against the key file, or the time now).
    pub fn finish(
        self,
        dir: &Path,
        segments: &[Arc<Segment>],
        hold_file: &Option<String>,
        sealing: (u64, Option<&FssKeyFile>, u64),
        floor_ns: u64,
    ) -> Result<Option<SealingReport>> {
        let (head_seq, key_file, now_ns) = sealing;
        self.check_anchor(dir, segments, now_ns, floor_ns)?;
        // A hold change is two steps (8.4): setting writes the file first,
        // clearing writes the record first; a crash between leaves a hold
        // file where the chain states none (a writer's open finishes the
        // change). A hold the chain states with no file, or another, is no
        // crash's doing.
        let crash_state = self.state.hold.is_none() && hold_file.is_some();
        if (self.known || self.hold_seen) && self.state.hold != *hold_file && !crash_state {
            return Err(hold_mismatch(dir, &self.state.hold, hold_file));
        }
        self.seal.finish(dir, head_seq, key_file, now_ns)
    }

    fn check_anchor(
        &self,
        dir: &Path,
        segments: &[Arc<Segment>],
        now_ns: u64,
        floor_ns: u64,
    ) -> Result<()> {
        let entries = &self.anchor.entries;
        let anchor_error = |detail: String| {
            Error::corrupt(
                dir.join(ANCHOR_FILE),
                self.anchor.len,
                None,
                Corruption::Anchor { detail },
            )
        };
        let mut named = vec![false; entries.len()];
        let mut last_named: Option<usize> = None;
        for d in &self.drops {
            let Some(i) = entries.iter().position(|(_, h)| *h == d.entry_hash) else {
                return Err(Error::corrupt(
                    &d.path,
                    d.offset,
                    Some(d.seq),
                    Corruption::Anchor {
                        detail: format!(
                            "retention record names anchor entry {}, which the anchor file lacks",
                            hex(d.entry_hash)
                        ),
                    },
                ));
            };
            let (e, _) = &entries[i];
            if let Some(detail) = fields_disagree(d, e) {
                return Err(Error::corrupt(
                    &d.path,
                    d.offset,
                    Some(d.seq),
                    Corruption::Anchor { detail },
                ));
            }
            if last_named.is_some_and(|l| i <= l) {
                return Err(anchor_error(format!(
                    "retention records name anchor entries out of order (entry {i} after entry {})",
                    last_named.unwrap_or(0)
                )));
            }
            named[i] = true;
            last_named = Some(i);
            if d.version >= 3 && e.ext.is_none() {
                return Err(Error::corrupt(
                    &d.path,
                    d.offset,
                    Some(d.seq),
                    Corruption::Anchor {
                        detail: "a retention record of format 3 names an anchor entry without \
                                 format 3's extension (tree root and sealing state): the entry \
                                 was rewritten"
                            .into(),
                    },
                ));
            }
            let recorded = self.anchored_tag.filter(|(v, _)| *v == i).map(|(_, t)| t);
            // No recorded tag dates the drop (none recorded: the dropped
            // records came before sealing was set up, say), or no kept tag
            // of the dropped era's key continues it: with a key given, the
            // drop is dated by the first kept record, which no dropped
            // record is younger than and which the kept tags seal.
            let undated = recorded.is_none() || self.seal.anchored_era_uncontinued();
            let kept_ns = (self.vouching == Some(i) && undated && self.seal.has_keys())
                .then_some(self.first_ns)
                .flatten()
                .unwrap_or(0);
            let dated = Dated {
                recorded_ns: recorded.map_or(0, |t| t.facts.time_ns).max(kept_ns),
                now_ns,
                floor_ns,
            };
            check_min_age(d, e, segments, &dated)?;
            if let Some(t) = recorded {
                check_sealed_floor(d, &t, now_ns)?;
            }
        }
        let Some(first) = segments.first() else {
            return Ok(());
        };
        let h = &first.header;
        let vouching = (h.first_seq > 1)
            .then(|| {
                entries
                    .iter()
                    .rposition(|(e, _)| vouches(e, h.first_seq, &h.prev_hash))
            })
            .flatten();
        if let Some(v) = vouching.filter(|v| !named[*v]) {
            return Err(anchor_error(format!(
                "anchor entry {v} vouches for the log starting at seq {}, but no \
                 retention-applied record in the log names it: the segments before were \
                 removed without a retention run that the chain records",
                h.first_seq
            )));
        }
        let after = vouching.map_or(0, |v| v + 1);
        for (i, (e, _)) in entries.iter().enumerate().skip(after) {
            let gone = e
                .dropped
                .iter()
                .find(|d| !segments.iter().any(|s| s.number == d.segment));
            if let (false, Some(gone)) = (named[i], gone) {
                return Err(anchor_error(format!(
                    "anchor entry {i} records dropping segment {}, which is gone, and no \
                     retention-applied record in the log names the entry",
                    gone.segment
                )));
            }
        }
        Ok(())
    }
}

/// Whether entry `e` vouches for a log that begins at `first_seq`,
/// continuing `prev_hash` (format-spec.md, 8.3).
fn vouches(e: &AnchorEntry, first_seq: u64, prev_hash: &Hash) -> bool {
    (e.first_seq == first_seq && e.prev_hash == *prev_hash)
        || e.dropped
            .windows(2)
            .any(|w| w[1].first_seq == first_seq && w[0].last_hash == *prev_hash)
}

/// Where a retention record and the anchor entry it names disagree.
fn fields_disagree(d: &DropRecord, e: &AnchorEntry) -> Option<String> {
    let (Some(first), Some(last)) = (e.dropped.first(), e.dropped.last()) else {
        return Some("the anchor entry it names drops no segment".into());
    };
    let record = (d.from_segment, d.to_segment, d.first_seq, d.last_seq);
    let entry = (first.segment, last.segment, first.first_seq, last.last_seq);
    if record != entry || e.first_seq != d.last_seq + 1 {
        return Some(format!(
            "retention record says segments {}..={} (seqs {}..={}), its anchor entry says \
             {}..={} (seqs {}..={}, log kept from {})",
            record.0, record.1, record.2, record.3, entry.0, entry.1, entry.2, entry.3, e.first_seq
        ));
    }
    None
}

/// Where the segment a drop kept is still in the log, its creation time is
/// the newest dropped record's time: the drop must have been at least the
/// policy's minimum age after it. The engine measures age against a time no
/// more than `clock_ahead_max` past its last record, and the retention
/// record is committed no earlier than that record.
/// A drop is judged no later than the verifier's own clock says it is now:
/// a retention record committed with the clock set ahead does not age what
/// it drops.
/// What dates a drop besides its own records, and the verifier's inputs.
struct Dated {
    /// The commit time the anchor's recorded tag seals (a dropped record's),
    /// for the drop that made the log start where it does; else 0.
    recorded_ns: u64,
    /// The verifier's clock.
    now_ns: u64,
    /// The verifier's own compliance floor (`Options::verify_min_age`).
    floor_ns: u64,
}

fn check_min_age(
    d: &DropRecord,
    e: &AnchorEntry,
    segments: &[Arc<Segment>],
    dated: &Dated,
) -> Result<()> {
    let policy = match d.policy {
        Some(p) => RetentionRule {
            min_age_ns: p.min_age_ns.max(dated.floor_ns),
            ..p
        },
        None if dated.floor_ns > 0 => RetentionRule {
            min_age_ns: dated.floor_ns,
            clock_ahead_max_ns: 0,
            ..RetentionRule::default()
        },
        None => return Ok(()),
    };
    let now_ns = dated.now_ns;
    // Format 3 records the newest dropped record's time in the entry; an
    // older entry has only the kept segment's creation time, no earlier
    // than it (and later where recovery finished a roll after downtime).
    let keep_time = match e.ext {
        Some(x) => Some(x.newest_ns),
        None => segments
            .iter()
            .find(|s| s.header.first_seq == e.first_seq)
            .map(|keep| keep.header.created_ns),
    };
    if keep_time.is_none() && dated.recorded_ns == 0 {
        return Ok(());
    }
    // Either is the host's word for a drop made after it was taken; the
    // anchor's recorded tag seals the time of a dropped record (with the
    // key), and the newest is no earlier.
    let newest_dropped = keep_time.unwrap_or(0).max(dated.recorded_ns);
    let latest_judged = judged_at(d.timestamp_ns, policy.clock_ahead_max_ns, now_ns);
    if latest_judged < newest_dropped.saturating_add(policy.min_age_ns) {
        return Err(breach(
            &d.path,
            d.offset,
            Some(d.seq),
            format!(
                "retention dropped records from {newest_dropped} at {}, younger than the \
                 policy's minimum age of {} ns",
                d.timestamp_ns, policy.min_age_ns
            ),
        ));
    }
    Ok(())
}

/// The drop that made the log start where it does removed the record the
/// anchor's recorded tag seals: that record's commit time and the policy in
/// force then (under a version-3 tag's MAC) judge it, against the
/// verifier's clock too. This stops a pretended drop of sealed records the
/// policy sealed before it did not yet let go.
fn check_sealed_floor(d: &DropRecord, t: &RecordedTag, now_ns: u64) -> Result<()> {
    let Some((min_age, ahead)) = t.facts.floor else {
        return Ok(());
    };
    let latest_judged = judged_at(d.timestamp_ns, ahead, now_ns);
    if latest_judged < t.facts.time_ns.saturating_add(min_age) {
        return Err(breach(
            &d.path,
            d.offset,
            Some(d.seq),
            format!(
                "retention dropped record {} (sealed at {} under a minimum age of {min_age} \
                 ns) at {}: too young to go",
                t.seq, t.facts.time_ns, d.timestamp_ns
            ),
        ));
    }
    Ok(())
}

/// The latest time a drop committed at `committed_ns` may have measured
/// ages against: the engine allows a run's time up to the clock bound past
/// the log's own time, but no later than the verifier's own clock, which
/// takes no slack (else a minimum age would protect only what is older
/// than the bound).
fn judged_at(committed_ns: u64, ahead_ns: u64, now_ns: u64) -> u64 {
    committed_ns.saturating_add(ahead_ns).min(now_ns)
}

/// `p` with the minimum age no lower and the clock bound no higher than
/// `before`'s.
fn strictest(p: RetentionRule, before: Option<RetentionRule>) -> RetentionRule {
    let Some(b) = before else { return p };
    RetentionRule {
        min_age_ns: p.min_age_ns.max(b.min_age_ns),
        clock_ahead_max_ns: p.clock_ahead_max_ns.min(b.clock_ahead_max_ns),
        ..p
    }
}

fn breach(path: &Path, offset: u64, seq: Option<u64>, detail: String) -> Error {
    Error::corrupt(path, offset, seq, Corruption::RetentionBreach { detail })
}

fn say_state(s: &LogState) -> String {
    SystemEvent::LogState {
        hold: s.hold.clone(),
        policy: s.policy,
    }
    .to_string()
}
