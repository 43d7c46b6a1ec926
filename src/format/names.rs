//! Names of the files in a log directory (format-spec.md §1). Every name
//! the engine writes or recognises is made and parsed here, nowhere else.

/// The exclusive writer lock.
pub const LOCK_FILE: &str = "wormlog.lock";
/// Retention's record of dropped segments (format-spec.md, "Anchor file").
pub const ANCHOR_FILE: &str = "wormlog.anchor";
/// The legal hold, while one is set.
pub const HOLD_FILE: &str = "wormlog.hold";
/// The hold file while it is being replaced.
pub const HOLD_TMP_FILE: &str = "wormlog.hold.tmp";
/// The forward-secure sealing key of the current epoch (mode 0600).
pub const FSS_KEY_FILE: &str = "wormlog.fss";
/// The sealing key file while its next epoch's key is being written.
pub const FSS_KEY_TMP_FILE: &str = "wormlog.fss.tmp";
/// A rotation's new key, until the old key's final tag is durable
/// (format-spec.md 10a, "Re-keying").
pub const FSS_NEXT_KEY_FILE: &str = "wormlog.fss.next";
/// The next key's file while it is being written.
pub const FSS_NEXT_KEY_TMP_FILE: &str = "wormlog.fss.next.tmp";
/// The off-host copies shipped, one line each (format-spec.md §15).
pub const SHIP_STATE_FILE: &str = "wormlog.ship";
/// Locked (flock) by a shipping run, so that two never interleave.
pub const SHIP_LOCK_FILE: &str = "wormlog.ship.lock";
/// The live writer's control socket (a Unix socket, mode 0600), there
/// while a writer serves it; never evidence (§1).
pub const CONTROL_SOCKET: &str = "wormlog.ctl";
/// How many tiles of each tree file are durable (format-spec.md §14.3).
pub const TREE_STATE_FILE: &str = "wormlog.tree";
/// The tree state file while it is being replaced.
pub const TREE_STATE_TMP_FILE: &str = "wormlog.tree.tmp";
const TREE_PREFIX: &str = "wormlog.tiles-";
const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".wlog";
/// A sealed segment: the same name with `.zst` added.
const SEALED_SUFFIX: &str = ".wlog.zst";
/// Suffix of a segment being created; such files are removed at open.
pub const TMP_SUFFIX: &str = ".tmp";

/// The file of level `level`'s full tiles: `wormlog.tiles-L`.
pub fn tree_file_name(level: usize) -> String {
    format!("{TREE_PREFIX}{level}")
}

/// The level a tree file's name stands for.
pub fn parse_tree_file_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(TREE_PREFIX)?;
    if digits.len() != 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|l| *l < super::merkle::LEVELS_MAX)
}

/// A raw segment's file name: `seg-` and 20 digits, `.wlog`.
pub fn segment_file_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:020}{SEGMENT_SUFFIX}")
}

/// A sealed segment's file name: the raw one with `.zst` added.
pub fn sealed_file_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:020}{SEALED_SUFFIX}")
}

/// The segment number a file name stands for, if it is a segment's name.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_digits(
        name.strip_prefix(SEGMENT_PREFIX)?
            .strip_suffix(SEGMENT_SUFFIX)?,
    )
}

/// The segment number a sealed file's name stands for.
pub fn parse_sealed_file_name(name: &str) -> Option<u64> {
    parse_digits(
        name.strip_prefix(SEGMENT_PREFIX)?
            .strip_suffix(SEALED_SUFFIX)?,
    )
}

fn parse_digits(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` is a segment being created (removed at open).
pub fn is_tmp_segment_name(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX) && name.ends_with(TMP_SUFFIX)
}

/// The base name an aside copy was made from: `NAME.cut-OFFSET` and
/// `NAME.damaged-TIME` (format-spec.md §1) give `NAME`.
fn aside_base(name: &str) -> Option<&str> {
    [".cut-", ".damaged-"].iter().find_map(|marker| {
        let (base, tail) = name.rsplit_once(marker)?;
        (!tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())).then_some(base)
    })
}

/// Whether wormlog writes files of this name in a log directory (the table
/// in format-spec.md §1): segments and sealed files, the anchor, hold and
/// lock files, their temporary names, and the copies recovery keeps aside.
pub fn is_engine_file_name(name: &str) -> bool {
    let base = name
        .strip_suffix(TMP_SUFFIX)
        .or_else(|| aside_base(name))
        .unwrap_or(name);
    parse_segment_file_name(base).is_some()
        || parse_sealed_file_name(base).is_some()
        || parse_tree_file_name(base).is_some()
        || [
            ANCHOR_FILE,
            HOLD_FILE,
            LOCK_FILE,
            FSS_KEY_FILE,
            FSS_NEXT_KEY_FILE,
            TREE_STATE_FILE,
            SHIP_STATE_FILE,
            SHIP_LOCK_FILE,
            CONTROL_SOCKET,
        ]
        .contains(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_spec_lists_is_the_engines_and_lookalikes_are_not() {
        let seg = segment_file_name(3);
        let sealed = sealed_file_name(3);
        for name in [
            seg.clone(),
            sealed.clone(),
            format!("{seg}.tmp"),
            format!("{sealed}.tmp"),
            format!("{seg}.cut-4096"),
            format!("{seg}.damaged-1795000000000000000"),
            "wormlog.anchor".into(),
            "wormlog.anchor.tmp".into(),
            "wormlog.anchor.cut-184".into(),
            "wormlog.hold".into(),
            "wormlog.hold.tmp".into(),
            "wormlog.lock".into(),
            "wormlog.fss".into(),
            "wormlog.fss.tmp".into(),
        ] {
            assert!(is_engine_file_name(&name), "{name}");
        }
        for name in [
            format!("{seg}.old"),
            format!("{seg}.cut-"),
            format!("{seg}.cut-12x"),
            format!("{sealed}.bak"),
            "seg-3.wlog".into(),
            "notes.txt".into(),
            "wormlog.anchor.orig".into(),
            ".wormlog.lock.swp".into(),
        ] {
            assert!(!is_engine_file_name(&name), "{name}");
        }
    }

    #[test]
    fn segment_names_round_trip_and_reject_lookalikes() {
        assert_eq!(parse_segment_file_name(&segment_file_name(7)), Some(7));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        for bad in [
            "seg-1.wlog",
            "seg-0000000000000000000x.wlog",
            "x.wlog",
            "seg-00000000000000000001.wlog.tmp",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
