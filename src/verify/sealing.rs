//! Checking forward-secure sealing (format-spec.md, "Forward-secure
//! sealing") in verification's pass over the chain: every epoch-tag record
//! must continue the epochs of the one before and carry the tag the
//! verification key gives for the chain position before it; the sealing key
//! file (or, without one, the time now) must not show that the writer went
//! on past the last tag.

use super::rules::Noted;
use crate::error::{Corruption, Error, Result};
use crate::format::names::FSS_KEY_FILE;
use crate::format::{
    epoch_of, epoch_tag_for, evolve_key, hex, key_at, FssKey, FssKeyFile, PreviousEra, RecordedTag,
    SealingState, SystemEvent, TagFacts, VerificationKey,
};
use std::path::Path;

/// No real epoch is this late (2^32 quarter-hours is 122,000 years): a
/// larger one is forged, and evolving a key that far would not end.
const EPOCH_MAX: u64 = 1 << 32;

/// What verification found of forward-secure sealing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealingReport {
    /// The id of the verification key the log's sealing-started record names.
    pub key_id: [u8; 8],
    /// Whether a verification key was given and every tag checked with it.
    pub checked: bool,
    /// The last epoch sealed, and the seq of its tag record (every record
    /// before it is sealed); `None` before the first tag.
    pub sealed_through_epoch: Option<u64>,
    /// The seq of that last tag record; `None` before the first tag.
    pub sealed_through_seq: Option<u64>,
    /// The commit time of the last sealed record (the one before the last
    /// tag), ns since the Unix epoch: everything committed by then is sealed.
    pub sealed_through_ns: Option<u64>,
    /// Records after the last tag: anyone holding the host's current key
    /// could have written or changed them.
    pub unsealed_records: u64,
    /// The epoch of the sealing key file beside the log, if there is one.
    pub key_file_epoch: Option<u64>,
    /// Eras whose end is not proven: a re-key that found no key file of
    /// the era before it, whose tags stop short of the new start (the key
    /// file was lost, or removed with the records after its last tag).
    /// Each is the earlier key's id and the seq of the re-key's
    /// sealing-started record; records of that era after its last tag
    /// cannot be shown complete.
    pub unproven_era_ends: Vec<([u8; 8], u64)>,
}

/// Sealing's part of the pass; fed the noted records in chain order.
pub(super) struct SealCheck<'a> {
    keys: &'a [VerificationKey],
    /// The key the log's sealing-started record names, once known.
    key: Option<&'a VerificationKey>,
    key_id: Option<[u8; 8]>,
    /// The key of `cached.0`, evolved forward as tags come (never back).
    cached: Option<(u64, FssKey)>,
    /// The first epoch the next tag must cover.
    next_epoch: Option<u64>,
    last_tag: Option<(u64, u64)>,
    /// The first epoch the last tag covered (its key's epoch).
    last_tag_first: Option<u64>,
    /// The commit time of the record before the last tag.
    last_sealed_ns: Option<u64>,
    /// The last record is a tag right after log-closed: a sealed close.
    closed_sealed: bool,
    last_was_close: bool,
    after_retention: bool,
    /// What the anchor entry vouching for the log's start records of the
    /// sealing state: `None` when no entry vouches or it predates format 3
    /// (it records none), `Some(None)` when it says sealing was never set
    /// up before the drop.
    anchored: Option<Option<SealingState>>,
    /// The epoch schedule `(start_ns, interval_ns)`, from the key or the
    /// sealing-started record.
    schedule: Option<(u64, u64)>,
    /// A retention run cut short between deleting its segments (8.3) left
    /// the log starting inside the dropped range: the recorded state is
    /// that of the range's end, which the kept tags must then reach (the
    /// recorded tag is among them, as it is), not continue.
    must_meet: Option<(RecordedTag, bool)>,
    /// The ids of the sealing-started records the log holds.
    started: Vec<[u8; 8]>,
    /// A kept tag of the anchor's recorded key continues its state (no
    /// sealing-started record before it in the kept log).
    anchored_continued: bool,
    /// A key given has matched a key the log was sealed under.
    matched: bool,
    /// The log starts inside its vouching entry's range (a retention run
    /// cut short between deletions): the recorded state is of the range's
    /// end, which the log still holds, not of its start.
    inside: bool,
    /// The verifier checks a copy (`Options::verify_as_copy`): no key file.
    pub as_copy: bool,
    /// The first record (not a tag) since the last tag, in an earlier
    /// segment: what the next tag covers from.
    carry_ns: Option<u64>,
    /// The commit time of the last sealing-started record: no tag of its
    /// key covers a record before it.
    started_ns: u64,
    /// The commit time of the log's first kept record.
    pub first_kept_ns: Option<u64>,
    /// See `SealingReport::unproven_era_ends`.
    unproven_era_ends: Vec<([u8; 8], u64)>,
    /// A rotation's record seen, its old key's final tag not yet: the era
    /// the record begins.
    pending: Option<NextEra<'a>>,
    /// The key the current era's rotation ended (its final tag written).
    rotated_from: Option<[u8; 8]>,
    /// In a log starting inside its entry's range: a kept tag's MAC has
    /// matched a key given.
    tag_matched: bool,
}

/// The era a sealing-started record begins.
struct NextEra<'a> {
    key_id: [u8; 8],
    key: Option<&'a VerificationKey>,
    start_ns: u64,
    interval_ns: u64,
    /// The record's commit time: no tag of its key covers a record before.
    record_ns: u64,
}

impl<'a> SealCheck<'a> {
    /// Checks with `keys`; `key_file` is the sealing key file beside the
    /// log, if any; `after_retention` when the log no longer starts at seq
    /// 1 (retention may have dropped its sealing-started record).
    pub fn new(
        keys: &'a [VerificationKey],
        key_file: Option<&FssKeyFile>,
        after_retention: bool,
        anchored: Option<Option<SealingState>>,
        kept_from: Option<u64>,
    ) -> Self {
        // A log whose sealing-started record retention dropped continues
        // the sealing state its anchor entry records (format 3), with the
        // key that state names; an older entry records none, and the key
        // file's key (or the one key given) checks the tags kept. A log
        // that starts at seq 1 must say it started sealing before its
        // first tag.
        let anchored_id = anchored.flatten().map(|s| s.key_id);
        let key = match anchored_id {
            Some(id) => keys.iter().find(|k| k.id() == id),
            None => key_file
                .and_then(|f| keys.iter().find(|k| k.id() == f.key_id))
                .or((keys.len() == 1).then(|| &keys[0])),
        }
        .filter(|_| after_retention);
        let mut continued = anchored.flatten().filter(|_| after_retention);
        // Cut short inside the range: a recorded tag the log still holds
        // is to be met where it is.
        let must_meet = continued
            .and_then(|s| s.last_tag)
            .filter(|t| kept_from.is_some_and(|k| t.seq >= k))
            .map(|t| (t, false));
        if must_meet.is_some() {
            continued = continued.map(|s| SealingState {
                last_tag: None,
                ..s
            });
        }
        SealCheck {
            keys,
            key,
            after_retention,
            key_id: continued.map(|s| s.key_id),
            cached: None,
            next_epoch: continued
                .filter(|_| must_meet.is_none())
                .map(|s| s.next_epoch()),
            last_tag: continued.and_then(|s| s.last_tag.map(|t| (t.epoch, 0))),
            last_tag_first: continued.and_then(|s| s.last_tag.map(|t| t.first_epoch)),
            last_sealed_ns: continued.and_then(|s| s.last_tag.map(|t| t.facts.time_ns)),
            closed_sealed: false,
            last_was_close: false,
            anchored: anchored.filter(|_| after_retention),
            schedule: key.map(|k| (k.start_ns, k.interval_ns)),
            must_meet,
            started: Vec::new(),
            anchored_continued: false,
            matched: key.is_some(),
            inside: false,
            as_copy: false,
            carry_ns: None,
            started_ns: 0,
            first_kept_ns: None,
            unproven_era_ends: Vec::new(),
            pending: None,
            rotated_from: None,
            tag_matched: false,
        }
    }

    /// A sealing-started record `n` (of a segment of format `version`)
    /// after an earlier era (format-spec.md 10a, "Re-keying"). A rotation
    /// names the key it rotates, which must be the earlier era's; its
    /// record is then sealed by that key's final tag (checked when it
    /// comes, `switch_after_final_tag`), which only the earlier key's
    /// holder of that epoch can make: a thief who cut the old era's last
    /// tags and backdated a rotation to where they stop (the fourteenth
    /// red team) cannot. A record that found no key file, or a version-3
    /// record without the field (this round's earlier writers), after an
    /// earlier era is an era whose end is not proven, which the report
    /// names. A version-2 record says nothing of the handoff.
    fn check_handoff(
        &mut self,
        path: &Path,
        n: &Noted,
        previous: Option<PreviousEra>,
        version: u16,
    ) -> Result<()> {
        let earlier = self.key_id.filter(|_| !self.inside);
        let Some(prev_id) = earlier else {
            if let (Some(PreviousEra::Rotated(k)), false) = (previous, self.after_retention) {
                return Err(broken(
                    path,
                    n,
                    format!(
                        "a re-key from key {}, but the log holds no sealing before it: that \
                         era's records were removed",
                        hex(k)
                    ),
                ));
            }
            return Ok(());
        };
        match previous {
            Some(PreviousEra::Rotated(k)) if k != prev_id => Err(broken(
                path,
                n,
                format!(
                    "a re-key from key {}, but the era before it is key {}",
                    hex(k),
                    hex(prev_id)
                ),
            )),
            Some(PreviousEra::Rotated(_)) => Ok(()),
            Some(PreviousEra::NoKeyFile) | None if version >= 3 => {
                self.unproven_era_ends.push((prev_id, n.seq));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// After the first tag following a rotation's record (the old key's
    /// final tag, already checked as the old key's): it must reach the
    /// epoch, of the old key's schedule, that holds the new key's start,
    /// less one; then the new key's era begins.
    fn switch_after_final_tag(&mut self, path: &Path, n: &Noted, epoch: u64) -> Result<()> {
        let Some(next) = self.pending.take() else {
            return Ok(());
        };
        if let Some((start, interval)) = self.schedule {
            let due = epoch_of(start, interval, next.start_ns);
            if epoch + 1 < due {
                return Err(broken(
                    path,
                    n,
                    format!(
                        "the rotated key's final tag stops at its epoch {epoch}, and the new \
                         key starts in its epoch {due}: the records between were removed"
                    ),
                ));
            }
        }
        self.rotated_from = self.key_id;
        self.begin_era(next);
        Ok(())
    }

    /// The era a sealing-started record begins, from the next record on.
    fn begin_era(&mut self, e: NextEra<'a>) {
        self.key_id = Some(e.key_id);
        self.started_ns = e.record_ns;
        self.key = e.key;
        self.schedule = Some((e.start_ns, e.interval_ns));
        self.last_tag = None;
        self.last_tag_first = None;
        self.cached = None;
        self.next_epoch = Some(1);
    }

    /// A key given that names this log (verify refused one naming another)
    /// and whose sealing began after the first kept record and by
    /// `by_ns`, but whose sealing-started record the log has not shown
    /// (nor its anchor recorded its state): the records of its era were
    /// removed. Setup makes that record durable right after the caller
    /// keeps the key, so an honest log holds the record of every key it
    /// handed out (but for a crash in between, format-spec.md 16.5). The
    /// twelfth red team cut a log back to before its sealing-started
    /// record, re-keyed it, and verify with both keys passed, the first
    /// one silently unused.
    fn era_missing(&self, by_ns: u64) -> Option<&'a VerificationKey> {
        let first = self.first_kept_ns?;
        let anchored = self.anchored.flatten().map(|s| s.key_id);
        self.keys.iter().find(|k| {
            k.log_id.is_some()
                && !self.started.contains(&k.id())
                && anchored != Some(k.id())
                && k.start_ns > first
                && k.start_ns <= by_ns
        })
    }

    fn era_removed(&self, path: &Path, seq: u64, k: &VerificationKey) -> Error {
        Error::corrupt(
            path,
            0,
            Some(seq),
            Corruption::SealBroken {
                detail: format!(
                    "verification key {} was set up for this log at {} ns, after its first kept \
                     record, but the log holds no sealing-started record of it: the records of \
                     its era were removed",
                    hex(k.id()),
                    k.start_ns
                ),
            },
        )
    }

    /// A key given that names no log (the older text form), that this log
    /// never used, and whose sealing began after the first kept record (so
    /// retention cannot have dropped its era): another log's key, or the
    /// records of its era were removed; the verifier cannot tell which.
    fn unused_unnamed_key(&self, dir: &Path) -> Result<()> {
        let Some(first) = self.first_kept_ns else {
            return Ok(());
        };
        let anchored = self.anchored.flatten().map(|s| s.key_id);
        let unused = self.keys.iter().find(|k| {
            k.log_id.is_none()
                && !self.started.contains(&k.id())
                && anchored != Some(k.id())
                && k.start_ns > first
        });
        match unused {
            Some(k) if self.key_id.is_some() => Err(Error::KeyNotUsed {
                path: dir.to_path_buf(),
                key: hex(k.id()),
                reason: "names no log (a key file from before keys named theirs) and this log \
                         never used it: it is another log's key (verify without it), or the \
                         records of its era were removed (a checkpoint or the key's own log \
                         tells which)"
                    .into(),
            }),
            _ => Ok(()),
        }
    }

    /// No key given is the first key the log was sealed under: the
    /// operator's key is another log's or another era's (exit 2). A log
    /// re-sealed under a thief's key reads so too; it fails either way.
    fn not_this_logs_key(&self, path: &Path, key_id: [u8; 8]) -> Error {
        Error::NotThisLogsKey {
            path: path.to_path_buf(),
            sealed_under: hex(key_id),
            given: self.keys.iter().map(|k| hex(k.id())).collect(),
        }
    }

    /// After a segment (see `ChainRules::segment_end`).
    pub fn segment_end(&mut self, since_tag_ns: Option<u64>) {
        self.carry_ns = self.carry_ns.or(since_tag_ns);
    }

    /// Whether verification keys were given.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether the anchor records a sealing state that no kept tag of its
    /// key continues: a re-keyed log whose dropped era's key has no tag
    /// kept. The records the drop removed after that key's last tag (or
    /// all of them, where it records none) were then sealed by no tag of
    /// theirs the verifier sees, so nothing bounds how much younger than
    /// the recorded tag they were (with a continuing tag, about two
    /// epochs): the drop is dated by the first kept record instead.
    pub fn anchored_era_uncontinued(&self) -> bool {
        matches!(self.anchored, Some(Some(_))) && !self.anchored_continued
    }

    /// The time a drop is dated by through the anchor's recorded tag `t`,
    /// once `check_anchored` has checked its MAC. A version-3 tag seals its
    /// record's time. A version-2 tag seals none: the time it states is the
    /// host's word, so it dates the drop no earlier than the start of the
    /// epoch two before its first, which the record it seals can be no
    /// older than (each tag seals the record before it, a previous tag where
    /// no record came since, committed in its own epochs, or one epoch
    /// before them after a sealed close, two after two closes in one epoch
    /// by a format-2 writer). Without this a tag a thief makes with the key
    /// it holds, labelled version 2, dated a drop of everything two years
    /// back past the auditor's floor (the fifth red team).
    ///
    /// And where the drop removed records after the tag (its last dropped
    /// seq `last` is past the record the tag seals), they were committed
    /// after the tag was written, no earlier than the start of its last
    /// epoch: a tag that sealed an old record after a long idle or closed
    /// time (it covers the gap's epochs) would otherwise date a drop of the
    /// records written after it back to before the gap (the ninth red
    /// team: 40 days).
    pub fn tag_date(&self, t: &RecordedTag, last: u64) -> u64 {
        let Some(key) = self.key else {
            return t.facts.time_ns;
        };
        let start = |epoch: u64| {
            key.start_ns.saturating_add(
                epoch
                    .max(1)
                    .saturating_sub(1)
                    .saturating_mul(key.interval_ns),
            )
        };
        let mut date = t.facts.time_ns;
        if t.version < 3 {
            date = date.max(start(t.first_epoch.saturating_sub(2)));
        }
        if last > t.seq {
            date = date.max(start(t.epoch));
        }
        date
    }

    /// After `check_anchored`, for a log that starts inside its vouching
    /// entry's range (a run cut short): the state the anchor records is of
    /// the range's end, which the log still holds, so the kept records
    /// before it continue no recorded state. Their tags are checked with
    /// whichever key's MAC holds, until a sealing-started record names the
    /// key; a recorded tag the log holds must still be met where it is, and
    /// its MAC (and every later tag's) covers what came before it. Without
    /// this, a crash between a run's deletions across a re-key read as
    /// tampering (the ninth red team).
    pub fn begin_inside(&mut self) {
        if !matches!(self.anchored, Some(Some(_))) {
            return;
        }
        self.inside = true;
        self.key = None;
        self.key_id = None;
        self.schedule = None;
        self.next_epoch = None;
        self.last_tag = None;
        self.last_tag_first = None;
        self.cached = None;
    }

    /// Checks, with the key, the tag the anchor recorded for the dropped
    /// records (its MAC), and that a key was given for the state it names.
    pub fn check_anchored(&mut self, anchor_path: &Path) -> Result<()> {
        let Some(Some(state)) = self.anchored else {
            return Ok(());
        };
        if self.key.is_none() && !self.keys.is_empty() {
            // The first key the log was sealed under, and none given is it:
            // the operator's key is another log's (or era's), exit 2.
            return Err(self.not_this_logs_key(anchor_path, state.key_id));
        }
        let (Some(key), Some(t)) = (self.key, state.last_tag) else {
            return Ok(());
        };
        if t.epoch > EPOCH_MAX {
            return Err(anchored_broken(anchor_path, &t, "is beyond any real epoch"));
        }
        // A version-3 tag seals the time of the record it seals: it lies in
        // the tag's epochs. A tag made with the stolen key of epoch m (the
        // only kind a thief can make) therefore dates what the drop removed
        // to epoch m or later, and the drop is judged by that date.
        let committed = epoch_of(key.start_ns, key.interval_ns, t.facts.time_ns);
        if t.version >= 3 && !(t.first_epoch - 1..=t.epoch).contains(&committed) {
            return Err(anchored_broken(
                anchor_path,
                &t,
                "seals a record committed outside its epochs: it was not made when it says",
            ));
        }
        let k = self.key_of(key, t.first_epoch);
        if recorded_mac(&k, &t) != t.tag {
            return Err(anchored_broken(
                anchor_path,
                &t,
                "does not match the verification key: the anchor's sealing state was forged",
            ));
        }
        Ok(())
    }

    /// Takes in one noted record of segment file `path`, a segment of
    /// format `version`; `facts` is what a version-3 tag at this point
    /// seals besides its chain position.
    pub fn note(&mut self, path: &Path, n: &Noted, version: u16, facts: &TagFacts) -> Result<()> {
        let close = self.last_was_close;
        self.last_was_close = matches!(n.event, SystemEvent::LogClosed);
        self.closed_sealed = false;
        match &n.event {
            SystemEvent::SealingStarted {
                key_id,
                start_ns,
                interval_ns,
                previous,
            } => {
                self.check_handoff(path, n, *previous, version)?;
                self.started.push(*key_id);
                let key = self.keys.iter().find(|k| k.id() == *key_id);
                if key.is_none() && !self.keys.is_empty() && !self.matched {
                    if let Some(k) = self.era_missing(n.timestamp_ns) {
                        return Err(self.era_removed(path, n.seq, k));
                    }
                    return Err(self.not_this_logs_key(path, *key_id));
                }
                self.matched |= key.is_some();
                if key.is_none() && !self.keys.is_empty() {
                    return Err(broken(
                        path,
                        n,
                        format!(
                            "the log is sealed under verification key {}, none of the keys given",
                            hex(key_id)
                        ),
                    ));
                }
                let next = NextEra {
                    key_id: *key_id,
                    key,
                    start_ns: *start_ns,
                    interval_ns: *interval_ns,
                    record_ns: n.timestamp_ns,
                };
                // A rotation's era begins after the old key's final tag.
                let rotation = matches!(previous, Some(PreviousEra::Rotated(_)));
                // Also in a log that starts inside its entry's range (a
                // retention run cut short), where the old key is not yet
                // named: its final tag is checked as the kept tags before
                // it are (the sixteenth red team: an honest crash read as
                // tampering there).
                if rotation && (self.key_id.is_some() || self.inside) {
                    self.pending = Some(next);
                } else {
                    self.pending = None;
                    self.rotated_from = None;
                    self.begin_era(next);
                }
            }
            SystemEvent::EpochTag {
                first_epoch,
                epoch,
                tag,
            } => {
                self.check_tag(path, n, (*first_epoch, *epoch), tag, version, facts)?;
                self.carry_ns = None;
                let anchored_key = self.anchored.flatten().map(|s| s.key_id);
                if self.started.is_empty() && anchored_key.is_some() && anchored_key == self.key_id
                {
                    self.anchored_continued = true;
                }
                if let Some((t, met)) = &mut self.must_meet {
                    if t.seq == n.before.seq {
                        if (t.first_epoch, t.epoch, t.tag) != (*first_epoch, *epoch, *tag) {
                            return Err(broken(
                                path,
                                n,
                                "the anchor records another tag here than the log holds".into(),
                            ));
                        }
                        *met = true;
                    }
                }
                self.next_epoch = Some(epoch + 1);
                self.last_tag = Some((*epoch, n.seq));
                self.last_tag_first = Some(*first_epoch);
                self.last_sealed_ns = Some(n.before.timestamp_ns);
                self.closed_sealed = close;
                self.switch_after_final_tag(path, n, *epoch)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// One tag: where its epochs may begin (always checked: it needs no
    /// key), that the record it seals lies in its epochs (format 3), and,
    /// with the key, its MAC.
    fn check_tag(
        &mut self,
        path: &Path,
        n: &Noted,
        (first, last): (u64, u64),
        tag: &[u8; 32],
        version: u16,
        facts: &TagFacts,
    ) -> Result<()> {
        if self.next_epoch.is_none() {
            self.tag_without_start(path, n)?;
        }
        if last > EPOCH_MAX {
            return Err(broken(
                path,
                n,
                format!("epoch {last} is beyond any real one"),
            ));
        }
        if let Some(want) = self.next_epoch.filter(|w| *w != first) {
            let after = self.last_tag.map_or(0, |(_, seq)| seq);
            return Err(broken(
                path,
                n,
                format!(
                    "epoch tags skip from epoch {} to epoch {first}: the records sealed in \
                     between (after seq {after}) were removed or rewritten",
                    want.saturating_sub(1)
                ),
            ));
        }
        self.check_sealed_epoch(path, n, (first, last), version)?;
        self.find_key_by_mac(path, n, (first, last), tag, (version, facts))?;
        let Some(key) = self.key else {
            return Ok(());
        };
        let k = self.key_of(key, first);
        let mac = epoch_tag_for(
            version,
            &k,
            first,
            last,
            n.before.seq,
            &n.before.hash,
            facts,
        );
        if mac != *tag {
            let from = self.last_tag.map_or(1, |(_, seq)| seq + 1);
            return Err(broken(
                path,
                n,
                format!(
                    "the tag of epochs {first}..={last} does not match the verification key: \
                     records {from}..={} were changed, inserted, deleted or reordered",
                    n.before.seq
                ),
            ));
        }
        self.check_covered(path, n, (first, last), version)
    }

    /// A version-3 tag seals the commit time of the record before it,
    /// which lies in its epochs (or the one before its first, after a
    /// sealed close, which tags its own epoch and moves the key on).
    fn check_sealed_epoch(
        &self,
        path: &Path,
        n: &Noted,
        (first, last): (u64, u64),
        version: u16,
    ) -> Result<()> {
        let Some((start, interval)) = self.schedule.filter(|_| version >= 3) else {
            return Ok(());
        };
        let committed = epoch_of(start, interval, n.before.timestamp_ns);
        // A sealed close tags its own epoch and moves the key on: the
        // next tag seals records of the epoch before its first.
        if committed + 1 < first {
            return Err(broken(
                path,
                n,
                format!(
                    "the tag of epochs {first}..={last} seals record {}, committed in epoch \
                     {committed}, before its first: old records re-sealed with a newer key",
                    n.before.seq
                ),
            ));
        }
        if committed > last {
            return Err(broken(
                path,
                n,
                format!(
                    "the tag of epochs {first}..={last} seals record {}, committed in epoch \
                     {committed}: records were sealed with a later key than their own",
                    n.before.seq
                ),
            ));
        }
        Ok(())
    }

    /// Where the log's state names no key for the tags kept (a run cut
    /// short, whose anchor names the range's end), the key is the one whose
    /// MAC holds: a run cut short left tags whose sealing-started record is
    /// gone and whose key the anchor may not name (sealing set up again
    /// later). In a log that starts inside its entry's range, a tag no key
    /// given matches is a broken seal.
    fn find_key_by_mac(
        &mut self,
        path: &Path,
        n: &Noted,
        (first, last): (u64, u64),
        tag: &[u8; 32],
        (version, facts): (u16, &TagFacts),
    ) -> Result<()> {
        // (Bounded: a forged epoch must not make each key evolve for ever.)
        if !((self.must_meet.is_some() || self.inside)
            && self.key_id.is_none()
            && (self.keys.len() > 1 || self.inside)
            && first < 1 << 20)
        {
            return Ok(());
        }
        let found = self.keys.iter().find(|k| {
            let key = key_at(&k.key, first);
            epoch_tag_for(
                version,
                &key,
                first,
                last,
                n.before.seq,
                &n.before.hash,
                facts,
            ) == *tag
        });
        if let Some(k) = found {
            if self.key.map(|c| c.id()) != Some(k.id()) {
                self.cached = None;
            }
            self.key = Some(k);
            self.tag_matched = true;
            self.schedule = self.schedule.or(Some((k.start_ns, k.interval_ns)));
        } else if self.inside && self.key.is_none() && !self.keys.is_empty() && !self.tag_matched {
            // No key given has matched any tag yet: most often the era's key
            // was left out (the operator's to give, exit 2), as where a
            // sealing-started record names it (the seventeenth red team).
            return Err(Error::NotThisLogsKey {
                path: path.to_path_buf(),
                sealed_under: format!(
                    "of an earlier era (the tag of epochs {first}..={last} before seq {}; its \
                     sealing-started record went with a retention run cut short)",
                    n.seq
                ),
                given: self.keys.iter().map(|k| hex(k.id())).collect(),
            });
        } else if self.inside && self.key.is_none() && !self.keys.is_empty() {
            return Err(broken(
                path,
                n,
                format!(
                    "the tag of epochs {first}..={last} matches none of the verification keys \
                     given"
                ),
            ));
        }
        Ok(())
    }

    /// The oldest record a version-3 tag covers (the first, not a tag,
    /// since the tag before it, or since its key's sealing-started record)
    /// was committed no more than one epoch before its first epoch: every
    /// tag is written once its epochs have ended, before any later record
    /// (a sealed close's tag, within its own epoch: the next tag then
    /// covers records of the epoch before its first). Without this, one tag
    /// made with the key of the theft's epoch covered records many epochs
    /// older whose own tags the thief had removed (the tenth red team, in a
    /// log made to look like a retention run cut short).
    fn check_covered(
        &self,
        path: &Path,
        n: &Noted,
        (first, last): (u64, u64),
        version: u16,
    ) -> Result<()> {
        let (Some((start, interval)), true) = (self.schedule, version >= 2) else {
            return Ok(());
        };
        let Some(oldest) = self.carry_ns.or(n.covered_from_ns) else {
            return Ok(());
        };
        let oldest = oldest.max(self.started_ns);
        let committed = epoch_of(start, interval, oldest);
        // A format-2 writer's two sealed closes within one epoch left its
        // next tag two epochs past the records it covered.
        let slack = if version >= 3 { 1 } else { 2 };
        if committed + slack < first {
            return Err(broken(
                path,
                n,
                format!(
                    "the tag of epochs {first}..={last} covers records from epoch {committed}, \
                     more than one before its first: their own tags were removed, and they \
                     were sealed with a later key"
                ),
            ));
        }
        Ok(())
    }

    /// A tag with no sealing-started record before it: a log cut before
    /// its sealing began and written anew, unless retention dropped the
    /// start under an anchor entry older than format 3 (which records no
    /// sealing state): then, without a key, the kept tags are checked from
    /// the first on; with one, continuity cannot be shown, and the seal is
    /// broken.
    fn tag_without_start(&self, path: &Path, n: &Noted) -> Result<()> {
        if self.must_meet.is_some() || self.inside {
            return Ok(());
        }
        let detail = match self.anchored {
            _ if !self.after_retention => {
                "an epoch tag with no sealing-started record before it: the log was cut \
                 before its sealing began and written anew"
            }
            Some(_) => {
                "an epoch tag with no sealing-started record before it, and the anchor entry \
                 for the log's start records no sealing state: the log was cut before its \
                 sealing began and written anew"
            }
            None if self.keys.is_empty() => return Ok(()),
            None => {
                "an epoch tag with no sealing-started record before it, and the anchor entry \
                 for the log's start is older than format 3 and records no sealing state: \
                 nothing shows that the kept tags continue the dropped ones (a log cut and \
                 re-sealed with a newer key looks the same)"
            }
        };
        Err(broken(path, n, detail.into()))
    }

    /// The key of `epoch`, evolved from the last one computed (or from the
    /// verification key).
    fn key_of(&mut self, key: &VerificationKey, epoch: u64) -> FssKey {
        let (mut e, mut k) = match self.cached {
            Some((e, k)) if e <= epoch => (e, k),
            _ => (0, key.key),
        };
        while e < epoch {
            k = evolve_key(&k);
            e += 1;
        }
        self.cached = Some((e, k));
        k
    }

    /// After the last record (`head_seq`): the report, and the checks
    /// against the key file (or, without one, the time `now_ns`).
    pub fn finish(
        self,
        dir: &Path,
        head_seq: u64,
        key_file: Option<&FssKeyFile>,
        now_ns: u64,
    ) -> Result<Option<SealingReport>> {
        if let Some(k) = self.era_missing(u64::MAX) {
            return Err(self.era_removed(dir, head_seq, k));
        }
        self.unused_unnamed_key(dir)?;
        self.check_sealing_dropped(dir, head_seq, key_file)?;
        self.check_anchored_key_began_before(dir, head_seq)?;
        self.check_key_file_has_its_start(dir, head_seq, key_file)?;
        let Some(key_id) = self
            .key_id
            .or(self.anchored.flatten().map(|s| s.key_id))
            .or(key_file.map(|k| k.key_id))
        else {
            if !self.keys.is_empty() {
                return Err(Error::corrupt(
                    dir,
                    0,
                    Some(head_seq),
                    Corruption::SealBroken {
                        detail: "a verification key was given, but the log holds no \
                                 sealing-started record and no sealing key file: its sealed \
                                 part was removed, or it was never sealed"
                            .into(),
                    },
                ));
            }
            return Ok(None);
        };
        let mut report = SealingReport {
            key_id,
            checked: self.key.is_some(),
            sealed_through_epoch: self.last_tag.map(|(e, _)| e),
            sealed_through_seq: self.last_tag.map(|(_, s)| s),
            sealed_through_ns: None,
            unsealed_records: head_seq - self.last_tag.map_or(0, |(_, s)| s),
            key_file_epoch: key_file.map(|k| k.epoch),
            unproven_era_ends: self.unproven_era_ends.clone(),
        };
        if let Some((t, false)) = self.must_meet {
            return Err(Error::corrupt(
                dir,
                0,
                Some(t.seq),
                Corruption::SealBroken {
                    detail: format!(
                        "the anchor records the tag of epochs {}..={} after seq {}, which the \
                         log does not hold",
                        t.first_epoch, t.epoch, t.seq
                    ),
                },
            ));
        }
        self.check_key_file(dir, head_seq, key_id, key_file, now_ns, &report)?;
        if self.key.is_some() {
            report.sealed_through_ns = self.last_sealed_ns;
        }
        Ok(Some(report))
    }

    /// The sealing key file against the log's sealing (`key_id`, its last
    /// era's key): it names that key (or, a rotation cut short, the old
    /// one), stands at the epoch after the last tag, and, with the key,
    /// holds its key of that epoch; without a key file, the time now says
    /// how far an open log's tags would reach (but for a copy).
    fn check_key_file(
        &self,
        dir: &Path,
        head_seq: u64,
        key_id: [u8; 8],
        key_file: Option<&FssKeyFile>,
        now_ns: u64,
        report: &SealingReport,
    ) -> Result<()> {
        let next = self.next_epoch.unwrap_or(1);
        let fail = |detail: String| {
            Err(Error::corrupt(
                dir.join(FSS_KEY_FILE),
                0,
                Some(head_seq),
                Corruption::SealBroken { detail },
            ))
        };
        // An announced key file is the key of the log's last era, or, in a
        // rotation a crash cut short after the old key's final tag, the
        // old key's: naming any other key, it would escape the checks
        // against the tags below (the nineteenth red team changed only its
        // key id, and a log cut after its first tag verified).
        if let Some(k) = key_file
            .filter(|k| k.announced && k.key_id != key_id && Some(k.key_id) != self.rotated_from)
        {
            return fail(format!(
                "the sealing key file names key {}, but the log is sealed under key {}: the key \
                 file was altered",
                hex(k.key_id),
                hex(key_id)
            ));
        }
        // The key file against the tags: no key needed, but only where the
        // tags are known from their start.
        let known_start = self.next_epoch.is_some();
        if let Some(k) = key_file.filter(|k| known_start && k.key_id == key_id) {
            if let Some(detail) = self.key_file_behind_or_ahead(k, next, report) {
                return fail(detail);
            }
        }
        let Some(key) = self.key else {
            return Ok(());
        };
        match key_file {
            Some(k) if k.epoch > EPOCH_MAX => {
                return fail(format!(
                    "the sealing key file's epoch {} is beyond any real one",
                    k.epoch
                ))
            }
            // A rotation a crash cut short after the old key's final tag:
            // its key file stays until the next open installs the new key.
            Some(k) if Some(k.key_id) == self.rotated_from && k.key_id != key.id() => {}
            Some(k) if k.key != crate::format::key_at(&key.key, k.epoch) => {
                return fail("the sealing key file's key is not this verification key's".into())
            }
            Some(_) => {}
            // A copy (the verifier says so): checked through its last tag.
            None if self.as_copy => {}
            None => {
                // Without the key file, nothing shows how far the writer
                // got: a log cut back to an earlier sealed point (a sealed
                // close included) would look whole. The time now says how
                // far an open log's writer, tagging every epoch, would be.
                let now = epoch_of(key.start_ns, key.interval_ns, now_ns);
                return fail(format!(
                    "the sealing key file is missing: the log's tags stop at epoch {} (seq {}), \
                     it is now epoch {now}{}; records after the last tag may have been removed",
                    next - 1,
                    report.sealed_through_seq.unwrap_or(0),
                    if self.closed_sealed {
                        ", after a sealed close"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(())
    }
}

impl SealCheck<'_> {
    /// The anchor's sealing state is the one the dropped records ended in:
    /// of a key whose sealing began before the kept start. A state naming a
    /// key whose sealing-started record the kept log holds is another era's
    /// (the seventh red team recorded the new key's fresh state over a
    /// re-keyed log's dropped first era, so that no recorded tag dated the
    /// drop, and the host's newest_ns passed the auditor's floor).
    fn check_anchored_key_began_before(&self, dir: &Path, head_seq: u64) -> Result<()> {
        let Some(Some(state)) = self.anchored else {
            return Ok(());
        };
        if self.inside || !self.started.contains(&state.key_id) {
            return Ok(());
        }
        Err(Error::corrupt(
            dir.join(crate::format::names::ANCHOR_FILE),
            0,
            Some(head_seq),
            Corruption::SealBroken {
                detail: format!(
                    "the anchor says the dropped records were sealed under key {}, whose \
                     sealing began after them (the kept log holds its sealing-started record): \
                     the anchor's sealing state is forged",
                    hex(state.key_id)
                ),
            },
        ))
    }

    /// A log that starts at seq 1 with a sealing key file but no
    /// sealing-started record. Setup writes that record, makes it durable,
    /// and only then marks the key file announced: an announced key file
    /// without it shows the records from the setup on were removed (and
    /// others written after them), which needs no key to see. An
    /// unannounced one is what a setup cut short leaves, or a thief's reset
    /// of the flag: with a verification key given, the log cannot show it
    /// was sealed under it (the fifth red team cut a sealed log back to
    /// before its sealing-started record, kept the key file, and verify
    /// with the key reported sealing "not checked", exit 0).
    fn check_key_file_has_its_start(
        &self,
        dir: &Path,
        head_seq: u64,
        key_file: Option<&FssKeyFile>,
    ) -> Result<()> {
        let Some(k) = key_file else { return Ok(()) };
        if self.after_retention || self.key_id.is_some() {
            return Ok(());
        }
        if k.announced {
            return Err(Error::corrupt(
                dir.join(FSS_KEY_FILE),
                0,
                Some(head_seq),
                Corruption::SealBroken {
                    detail: format!(
                        "the sealing key file (epoch {}) says sealing was set up, but the log \
                         holds no sealing-started record: the records from the setup on were \
                         removed",
                        k.epoch
                    ),
                },
            ));
        }
        // A setup leaves its key file unannounced at epoch 1, and only an
        // announced key evolves: an unannounced one further on is a
        // stolen key put back with its flag cleared (the twelfth red team).
        if k.epoch > 1 {
            return Err(Error::corrupt(
                dir.join(FSS_KEY_FILE),
                0,
                Some(head_seq),
                Corruption::SealBroken {
                    detail: format!(
                        "the sealing key file says sealing was never announced, yet its key \
                         evolved to epoch {}: only an announced key evolves (the log was sealed, \
                         and the records from its setup on were removed)",
                        k.epoch
                    ),
                },
            ));
        }
        if !self.keys.is_empty() {
            return Err(Error::SealingUnfinished {
                path: dir.join(FSS_KEY_FILE),
            });
        }
        Ok(())
    }

    /// Where the key file's epoch shows records removed after the last tag
    /// (it is further on) or an old copy put back (it is behind).
    fn key_file_behind_or_ahead(
        &self,
        k: &FssKeyFile,
        next: u64,
        report: &SealingReport,
    ) -> Option<String> {
        if k.epoch > next {
            return Some(format!(
                "the sealing key reached epoch {}, but the log's tags stop at epoch {}: the \
                 records after seq {} were removed",
                k.epoch,
                next - 1,
                report.sealed_through_seq.unwrap_or(0)
            ));
        }
        // A crash between the last tag and the key's evolution leaves the
        // key of the tag's first epoch; the next writer's open moves it on.
        if k.epoch < next && self.last_tag_first != Some(k.epoch) {
            return Some(format!(
                "the sealing key file is at epoch {}, older than the log's tags (through epoch \
                 {}): an old copy was put back",
                k.epoch,
                next - 1
            ));
        }
        None
    }
}

impl SealCheck<'_> {
    /// A log that does not start at seq 1 and holds no sealing-started
    /// record, where a key file (past epoch 1: tags were made) or a given
    /// key says it was sealed: its sealing began before the kept records,
    /// so the anchor entry vouching for the start must record the sealing
    /// state (format 3). One that says sealing never began, or (with a key)
    /// records nothing, lets a wiped and rewritten log pass for a fresh one.
    fn check_sealing_dropped(
        &self,
        dir: &Path,
        head_seq: u64,
        key_file: Option<&FssKeyFile>,
    ) -> Result<()> {
        if !self.after_retention {
            return Ok(());
        }
        // Every key given whose sealing-started record the log lost with
        // the dropped records needs the anchor to record a sealing state:
        // one that records none, or an entry older than format 3, shows
        // nothing of that key's sealed history (re-keyed logs too).
        let recorded_any = matches!(self.anchored, Some(Some(_)));
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| !self.started.contains(&k.id()) && !recorded_any)
        {
            return Err(Error::corrupt(
                dir.join(crate::format::names::ANCHOR_FILE),
                0,
                Some(head_seq),
                Corruption::SealBroken {
                    detail: format!(
                        "verification key {} sealed records the log no longer holds, and the \
                         anchor entry for its start records no sealing state: the sealed \
                         history was removed and the rest written anew",
                        hex(k.id())
                    ),
                },
            ));
        }
        if self.key_id.is_some() {
            return Ok(());
        }
        let sealed_before = key_file.is_some_and(|k| k.epoch > 1 || !self.keys.is_empty());
        let recorded = self.anchored.flatten().is_some();
        let fails = match self.anchored {
            Some(None) => sealed_before || !self.keys.is_empty(),
            None => !self.keys.is_empty() && sealed_before,
            Some(Some(_)) => false,
        };
        if !fails || recorded {
            return Ok(());
        }
        Err(Error::corrupt(
            dir.join(crate::format::names::ANCHOR_FILE),
            0,
            Some(head_seq),
            Corruption::SealBroken {
                detail: "the log was sealed (its sealing key file or the key given says so), its \
                         sealing-started record is gone with the dropped records, and the \
                         anchor entry for its start records no sealing state: the sealed \
                         history was removed and the rest written anew"
                    .into(),
            },
        ))
    }
}

/// The MAC of a tag an anchor entry recorded, by its format.
fn recorded_mac(k: &FssKey, t: &RecordedTag) -> [u8; 32] {
    epoch_tag_for(
        t.version,
        k,
        t.first_epoch,
        t.epoch,
        t.seq,
        &t.hash,
        &t.facts,
    )
}

fn anchored_broken(anchor_path: &Path, t: &RecordedTag, what: &str) -> Error {
    Error::corrupt(
        anchor_path,
        0,
        Some(t.seq),
        Corruption::SealBroken {
            detail: format!(
                "the tag of epochs {}..={} the anchor recorded for the dropped records {what}",
                t.first_epoch, t.epoch
            ),
        },
    )
}

fn broken(path: &Path, n: &Noted, detail: String) -> Error {
    Error::corrupt(
        path,
        n.offset,
        Some(n.seq),
        Corruption::SealBroken { detail },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ChainPos, Hash};

    /// A tag (with a valid MAC) in a log that starts inside its entry's
    /// range, over `before`, covering records from `covered_from_ns`.
    fn tag_covering(covered_from_ns: u64) -> Result<()> {
        tag_of_version_covering(3, covered_from_ns)
    }

    fn tag_of_version_covering(version: u16, covered_from_ns: u64) -> Result<()> {
        let vk = VerificationKey {
            key: [3; 32],
            start_ns: 0,
            interval_ns: 60,
            log_id: None,
        };
        let keys = [vk.clone()];
        let state = SealingState {
            key_id: vk.id(),
            last_tag: None,
        };
        let mut seal = SealCheck::new(&keys, None, true, Some(Some(state)), Some(10));
        seal.begin_inside();
        // The record the tag seals, in epoch 10; the tag, of epoch 10.
        let before = ChainPos {
            seq: 11,
            hash: Hash::from_bytes([5; 32]),
            timestamp_ns: 9 * 60 + 1,
        };
        let facts = TagFacts {
            time_ns: before.timestamp_ns,
            floor: None,
        };
        let tag = epoch_tag_for(
            version,
            &key_at(&vk.key, 10),
            10,
            10,
            11,
            &before.hash,
            &facts,
        );
        let n = Noted {
            offset: 0,
            seq: 12,
            timestamp_ns: 10 * 60,
            before,
            event: SystemEvent::EpochTag {
                first_epoch: 10,
                epoch: 10,
                tag,
            },
            covered_from_ns: Some(covered_from_ns),
        };
        seal.note(Path::new("seg"), &n, version, &facts)
    }

    /// The tenth red team's forgery, reduced to the rule that stops it: a
    /// tag made with the key of epoch 10 may not cover records of epoch 2
    /// (their own tags removed); records of epoch 9 it may (a writer tags
    /// each ended epoch before any later record).
    #[test]
    fn a_tag_may_not_cover_records_more_than_an_epoch_before_its_first() {
        let err = tag_covering(60 + 1).unwrap_err();
        assert!(
            err.to_string().contains("covers records from epoch 2"),
            "{err}"
        );
        tag_covering(8 * 60 + 1).expect("records of the epoch before its first");
        tag_covering(9 * 60 + 1).expect("records of its own epoch");
    }

    /// The eleventh red team: format-2 tags (their MAC seals no time) made
    /// with a later key over old records, in segments relabelled format 2.
    /// The rule holds for them too, with the two epochs a format-2 writer's
    /// two sealed closes within one epoch could leave.
    #[test]
    fn a_format_2_tag_may_not_cover_records_more_than_two_epochs_before_its_first() {
        let err = tag_of_version_covering(2, 60 + 1).unwrap_err();
        assert!(
            err.to_string().contains("covers records from epoch 2"),
            "{err}"
        );
        tag_of_version_covering(2, 7 * 60 + 1).expect("two epochs before its first");
    }
}
