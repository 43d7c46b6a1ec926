//! Merkle proofs and the static tlog (format-spec.md §14):
//! `wormctl prove DIR SEQ` prints a record and its inclusion proof,
//! `wormctl check-proof PROOF` checks one against a signed checkpoint with
//! no log at hand, `wormctl consistency` proves or checks that a newer
//! checkpoint extends an older one, and `wormctl export-tlog` writes the
//! log as a static C2SP tlog. Exit codes as verify: 0 the proof holds, 1 it
//! does not (or the log disagrees with a checkpoint), 2 usage or I/O error.

use crate::fail::Fail;
use crate::out::{self, Out};
use crate::verify::{load_checkpoint, read_small};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use wormlog::format::merkle::{leaf_hash, parse_leaf_data, LEAF_DATA_LEN};
use wormlog::format::{hex, unhex};
use wormlog::Hash;
use wormlog::{Checkpoint, CheckpointKey, ConsistencyProof, InclusionProof};

#[derive(clap::Args)]
pub struct ProveArgs {
    /// The log directory.
    dir: PathBuf,
    /// The record's sequence number.
    seq: u64,
    /// Prove against this signed checkpoint's tree (else the log's head).
    #[arg(long, value_name = "FILE", requires = "pubkey")]
    checkpoint: Option<PathBuf>,
    /// The public key that signed the checkpoint.
    #[arg(long, value_name = "FILE")]
    pubkey: Option<PathBuf>,
    /// One JSON object: the proof file `check-proof` reads.
    #[arg(long)]
    json: bool,
    /// With --json, carry the record's payload too (base64; at most 32 KiB,
    /// so that check-proof can read the file): the proof then binds the
    /// payload itself. Without it the proof binds the record's chain hash,
    /// which its holder checks the payload against.
    #[arg(long, requires = "json")]
    with_payload: bool,
}

/// The largest payload `prove --json --with-payload` carries (check-proof
/// reads files of at most 64 KiB; base64 takes 4/3).
const PROOF_PAYLOAD_MAX: usize = 32 << 10;

#[derive(clap::Args)]
pub struct CheckProofArgs {
    /// A proof file: a C2SP tlog-proof (`.tlog-proof`, from `append
    /// --proof-key` or `Log::append_proved`), or `wormctl prove --json`'s.
    proof: PathBuf,
    /// The signed checkpoint whose tree the proof is against (a
    /// `prove --json` proof; a tlog-proof carries its own).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The log's public key that signed the checkpoint.
    #[arg(long, value_name = "FILE", required_unless_present = "policy")]
    pubkey: Option<PathBuf>,
    /// A trust policy (C2SP tlog-policy) instead of --pubkey: the
    /// checkpoint must be signed by one of its logs and cosigned by a
    /// quorum of its witnesses.
    #[arg(long, value_name = "FILE", conflicts_with = "pubkey")]
    policy: Option<PathBuf>,
    /// The record's payload (a file): the proof must be of this payload.
    #[arg(long, value_name = "FILE")]
    payload: Option<PathBuf>,
}

impl CheckProofArgs {
    pub fn checkpoint(&self) -> Option<&Path> {
        self.checkpoint.as_deref()
    }
    pub fn pubkey(&self) -> Option<&Path> {
        self.pubkey.as_deref()
    }
    pub fn policy(&self) -> Option<&Path> {
        self.policy.as_deref()
    }
    pub fn payload(&self) -> Option<&Path> {
        self.payload.as_deref()
    }
}

#[derive(clap::Args)]
pub struct ConsistencyArgs {
    /// The log directory (the proof is made from it and checked), or a
    /// proof file from `consistency --json` (checked with no log).
    source: PathBuf,
    /// The older signed checkpoint.
    old: PathBuf,
    /// The newer signed checkpoint.
    new: PathBuf,
    /// The public key that signed both.
    #[arg(long, value_name = "FILE")]
    pubkey: PathBuf,
    /// Print the proof as one JSON object (a proof file).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The log directory.
    dir: PathBuf,
    /// The directory to write the tlog into (created if missing).
    out: PathBuf,
    /// Sign the exported checkpoint with this private key (else the
    /// checkpoint is its unsigned body, which tlog clients refuse).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    #[command(flatten)]
    access: crate::access::AccessArgs,
}

fn hashes_json(h: &[Hash]) -> Value {
    Value::Array(h.iter().map(|x| Value::String(hex(x))).collect())
}

fn unhex32(v: &Value, what: &str) -> Result<Hash, Fail> {
    let s = v
        .as_str()
        .ok_or_else(|| Fail::usage(format!("proof file: `{what}` is not a string")))?;
    s.parse()
        .map_err(|e| Fail::usage(format!("proof file: `{what}`: {e}")))
}

fn u64_of(v: &Value, what: &str) -> Result<u64, Fail> {
    // A string of digits too: a JSON number above 2^53 is rounded by many
    // readers (jq), so times are written as strings.
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| Fail::usage(format!("proof file: `{what}` is not a number")))
}

/// A root as hex and as the base64 a checkpoint note carries on its third
/// line.
fn root_text(root: &Hash) -> String {
    format!("{} (base64 {})", hex(root), B64.encode(root.as_bytes()))
}

fn hashes_of(v: &Value) -> Result<Vec<Hash>, Fail> {
    let arr = v
        .as_array()
        .ok_or_else(|| Fail::usage("proof file: `hashes` is not a list"))?;
    if arr.len() > 130 {
        return Err(Fail::usage("proof file: more hashes than any proof has"));
    }
    arr.iter().map(|h| unhex32(h, "hashes")).collect()
}

/// The tree root a checkpoint signed, or an error saying it has none.
fn root_of(cp: &Checkpoint, path: &Path) -> Result<Hash, Fail> {
    cp.tree_root.ok_or_else(|| {
        Fail::usage(format!(
            "{}: a checkpoint without a Merkle tree root (origin without /v2)",
            path.display()
        ))
    })
}

pub fn prove(a: ProveArgs) -> Result<(), Fail> {
    let log = crate::open::read_only(&a.dir)?;
    let (size, root) = match (&a.checkpoint, &a.pubkey) {
        (Some(cp), Some(key)) => {
            let (checkpoint, _) = load_checkpoint(cp, key)?;
            // Another log's checkpoint is the operator's wrong file, not a
            // rewritten log (the eighth red team: exit 1, "rewritten").
            if checkpoint.log_id != log.log_id() {
                return Err(Fail::usage(format!(
                    "{}: the checkpoint is of log {}, this is log {}: give a checkpoint of this log",
                    out::path_text(cp),
                    hex(checkpoint.log_id),
                    hex(log.log_id())
                )));
            }
            let root = root_of(&checkpoint, cp)?;
            let now = log.tree_head_at(checkpoint.seq)?;
            if now.root != root {
                return Err(Fail::tampered(format!(
                    "the log's tree of {} records has root {}, the checkpoint says {}: \
                     the log was rewritten",
                    checkpoint.seq,
                    hex(now.root),
                    hex(root)
                )));
            }
            (checkpoint.seq, root)
        }
        _ => {
            let h = log.tree_head()?;
            (h.size, h.root)
        }
    };
    if a.seq > size {
        let later = match &a.checkpoint {
            Some(_) => format!(
                "the checkpoint covers records up to {size}: make a later one (wormctl \
                 checkpoint DIR --key KEY) and prove against it"
            ),
            None => format!("the log's head is record {size}"),
        };
        return Err(Fail::usage(format!(
            "record {} is not in the tree yet: {later}",
            a.seq
        )));
    }
    let proof = log.prove_inclusion(a.seq, size)?;
    let (seq, ts, kind_byte, chain) = parse_leaf_data(&proof.leaf).expect("49 bytes");
    let first = &log.segments()?[0];
    // The chain hash before, from the tree's leaf data of the record
    // before: no payload is read for it (memory: at most one payload).
    let prev = if a.seq > first.first_seq {
        let before = log.prove_inclusion(a.seq - 1, size)?;
        parse_leaf_data(&before.leaf).expect("49 bytes").3
    } else {
        // The first record held continues its segment header's hash (the
        // genesis hash, or where retention left the log).
        first.prev_hash
    };
    debug_assert!(proof.verify(&root));
    let kind = wormlog::RecordKind::from_u8(kind_byte).map_or("unknown", |k| k.name());
    let mut out = Out::new();
    if a.json {
        let mut record = json!({
            "seq": seq,
            "timestamp_ns": ts.to_string(),
            "kind": kind,
            "kind_byte": kind_byte,
            "chain_hash": hex(chain),
            "prev_chain_hash": hex(prev),
        });
        if a.with_payload {
            let r = log.get(a.seq)?;
            if r.payload().len() > PROOF_PAYLOAD_MAX {
                return Err(Fail::usage(format!(
                    "record {} holds {} bytes, more than a proof file carries ({PROOF_PAYLOAD_MAX}); \
                     leave out --with-payload: the proof binds its chain hash",
                    a.seq,
                    r.payload().len()
                )));
            }
            record["payload_base64"] = Value::String(B64.encode(r.payload()));
        }
        out.json(&json!({
            "type": "inclusion",
            "log_id": hex(log.log_id()),
            "seq": proof.seq,
            "tree_size": proof.tree_size,
            "root": hex(root),
            "leaf_data": hex(proof.leaf),
            "leaf_hash": hex(leaf_hash(&proof.leaf)),
            "hashes": hashes_json(&proof.hashes),
            "record": record,
        }))?;
    } else {
        let record = log.get(a.seq)?;
        out.line(format!(
            "record     {} {} {} {}",
            record.seq(),
            out::rfc3339(record.timestamp()),
            record.kind().name(),
            out::terminal_text(&String::from_utf8_lossy(record.payload()))
        ))?;
        out.line(format!("leaf data  {}", hex(proof.leaf)))?;
        out.line(format!("tree size  {}", proof.tree_size))?;
        out.line(format!("root       {}", root_text(&root)))?;
        out.line(format!(
            "proof      {} hashes, nearest the leaf first",
            proof.hashes.len()
        ))?;
        for h in &proof.hashes {
            out.line(format!("  {}", hex(h)))?;
        }
    }
    out.flush()
}

pub fn check_proof(a: CheckProofArgs) -> Result<(), Fail> {
    let text = read_small(&a.proof, "proof")?;
    if wormlog::TlogProof::looks_like(&text) {
        return crate::tlog_proof::check(&a.proof, &text, &a);
    }
    check_json_proof(&a, &text)
}

/// The record a `prove --json` proof file carries: its fields must be the
/// leaf's, and, with its payload, its chain hash from the one before must
/// be the leaf's. Whether the payload was bound.
fn check_carried_record(r: &Value, leaf: &[u8; LEAF_DATA_LEN]) -> Result<bool, Fail> {
    let bad = |why: &str| Err(Fail::tampered(format!("the proof does not hold: {why}")));
    let payload_bound = !r.is_null() && !r["payload_base64"].is_null();
    if r.is_null() {
        return Ok(false);
    }
    let (seq, ts, kind, chain) = parse_leaf_data(leaf).expect("49 bytes");
    let named = wormlog::RecordKind::from_u8(kind).map_or("unknown", |k| k.name());
    if u64_of(&r["seq"], "record.seq")? != seq
        || u64_of(&r["timestamp_ns"], "record.timestamp_ns")? != ts
        || u64_of(&r["kind_byte"], "record.kind_byte")? != u64::from(kind)
        || r["kind"].as_str() != Some(named)
        || unhex32(&r["chain_hash"], "record.chain_hash")? != chain
    {
        return bad("the record it carries is not the one its leaf commits to");
    }
    if payload_bound {
        let payload = B64
            .decode(r["payload_base64"].as_str().unwrap_or(""))
            .map_err(|_| Fail::usage("proof file: `payload_base64` is not base64"))?;
        let prev = unhex32(&r["prev_chain_hash"], "prev_chain_hash")?;
        if wormlog::format::chain_hash(&prev, seq, ts, kind, &payload) != chain {
            return bad("the payload it carries is not the one its leaf commits to");
        }
    }
    Ok(payload_bound)
}

/// A `prove --json` proof file, against the checkpoint given.
fn check_json_proof(a: &CheckProofArgs, text: &str) -> Result<(), Fail> {
    if a.payload.is_some() {
        return Err(Fail::usage(
            "--payload is for a tlog-proof; a `prove --json --with-payload` proof carries its payload",
        ));
    }
    let Some(checkpoint) = &a.checkpoint else {
        return Err(Fail::usage(format!(
            "{}: a `prove --json` proof is checked against a checkpoint: give --checkpoint FILE",
            a.proof.display()
        )));
    };
    let (cp, key) = match (&a.pubkey, &a.policy) {
        (_, Some(policy)) => crate::verify::load_checkpoint_with_policy(
            checkpoint,
            &crate::verify::load_policy(policy)?,
        )?,
        (Some(pubkey), None) => load_checkpoint(checkpoint, pubkey)?,
        (None, None) => return Err(Fail::usage("give --pubkey FILE or --policy FILE")),
    };
    let root = root_of(&cp, checkpoint)?;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Fail::usage(format!("{}: not a proof file: {e}", a.proof.display())))?;
    let leaf = unhex(v["leaf_data"].as_str().unwrap_or(""))
        .filter(|l| l.len() == LEAF_DATA_LEN)
        .ok_or_else(|| Fail::usage("proof file: `leaf_data` is not 49 bytes of hex"))?;
    let proof = InclusionProof {
        seq: u64_of(&v["seq"], "seq")?,
        tree_size: u64_of(&v["tree_size"], "tree_size")?,
        leaf: leaf.try_into().expect("49 bytes"),
        hashes: hashes_of(&v["hashes"])?,
    };
    let bad = |why: String| Err(Fail::tampered(format!("the proof does not hold: {why}")));
    if v["type"].as_str() != Some("inclusion") {
        return Err(Fail::usage(format!(
            "{}: not an inclusion proof file (`type` is not \"inclusion\")",
            a.proof.display()
        )));
    }
    // A proof and a checkpoint that do not go together (another log's, or
    // another size's) are the operator's pairing, not a forged proof: it
    // holds against nothing given, exit 2 with what to do instead.
    let unpaired = |why: String| {
        Err(Fail::usage(format!(
            "the proof does not go with this checkpoint: {why}; make a proof against it \
             (wormctl prove DIR SEQ --checkpoint FILE --pubkey FILE --json)"
        )))
    };
    if hex(cp.log_id) != v["log_id"].as_str().unwrap_or("") {
        return unpaired("it is for another log".into());
    }
    if proof.tree_size != cp.seq {
        return unpaired(format!(
            "it is for a tree of {} records, the checkpoint's has {}",
            proof.tree_size, cp.seq
        ));
    }
    if !proof.verify(&root) {
        return bad(format!(
            "its hashes do not lead from record {}'s leaf to the checkpoint's root",
            proof.seq
        ));
    }
    // Every field it states must be what was checked: a root or leaf hash
    // that differs is a file someone edited.
    if !v["root"].is_null() && unhex32(&v["root"], "root")? != root {
        return bad("its `root` is not the checkpoint's".into());
    }
    if !v["leaf_hash"].is_null() && unhex32(&v["leaf_hash"], "leaf_hash")? != leaf_hash(&proof.leaf)
    {
        return bad("its `leaf_hash` is not its leaf data's".into());
    }
    let r = &v["record"];
    let payload_bound = check_carried_record(r, &proof.leaf)?;
    let mut out = Out::new();
    out.line(format!(
        "proof holds: record {} is leaf {} of the tree of {} records with root {}, in the \
         checkpoint of log {} signed by {} ({})",
        proof.seq,
        proof.seq - 1,
        proof.tree_size,
        root_text(&root),
        hex(cp.log_id),
        key.name(),
        if payload_bound {
            "record and payload bound by its chain hash"
        } else if r.is_null() {
            "leaf only"
        } else {
            "record bound by its chain hash; check the payload against it"
        }
    ))?;
    if !r.is_null() {
        let (seq, ts, kind, _) = parse_leaf_data(&proof.leaf).expect("49 bytes");
        let kind = wormlog::RecordKind::from_u8(kind).map_or("unknown", |k| k.name());
        let payload = r["payload_base64"]
            .as_str()
            .and_then(|p| B64.decode(p).ok())
            .map_or_else(
                || "(payload not in the proof file)".to_string(),
                |p| out::terminal_text(&String::from_utf8_lossy(&p)).into_owned(),
            );
        out.line(format!(
            "record     {seq} {} {kind} {payload}",
            out::rfc3339(ts)
        ))?;
    }
    out.flush()
}

pub fn consistency(a: ConsistencyArgs) -> Result<(), Fail> {
    let (old, _) = load_checkpoint(&a.old, &a.pubkey)?;
    let (new, _) = load_checkpoint(&a.new, &a.pubkey)?;
    let (old_root, new_root) = (root_of(&old, &a.old)?, root_of(&new, &a.new)?);
    if old.log_id != new.log_id {
        return Err(Fail::usage(
            "the two checkpoints are of different logs: give two checkpoints of one log",
        ));
    }
    if old.seq > new.seq {
        return Err(Fail::usage(format!(
            "the older checkpoint ({}) is larger than the newer ({})",
            old.seq, new.seq
        )));
    }
    let proof = if a.source.is_dir() {
        let log = crate::open::read_only(&a.source)?;
        log.prove_consistency(old.seq, new.seq)?
    } else {
        let text = read_small(&a.source, "proof")?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Fail::usage(format!("{}: not a proof file: {e}", a.source.display())))?;
        ConsistencyProof {
            old_size: u64_of(&v["old_size"], "old_size")?,
            new_size: u64_of(&v["new_size"], "new_size")?,
            hashes: hashes_of(&v["hashes"])?,
        }
    };
    if (proof.old_size, proof.new_size) != (old.seq, new.seq) {
        return Err(Fail::usage(format!(
            "the proof is from {} to {} records, the checkpoints are {} and {}: make the proof \
             between these two (wormctl consistency DIR OLD NEW --pubkey FILE --json)",
            proof.old_size, proof.new_size, old.seq, new.seq
        )));
    }
    if !proof.verify(&old_root, &new_root) {
        return Err(Fail::tampered(format!(
            "the tree of {} records does not extend the tree of {}: the log was rewritten \
             between the two checkpoints",
            new.seq, old.seq
        )));
    }
    let mut out = Out::new();
    if a.json {
        out.json(&json!({
            "type": "consistency",
            "log_id": hex(old.log_id),
            "old_size": proof.old_size,
            "new_size": proof.new_size,
            "old_root": hex(old_root),
            "new_root": hex(new_root),
            "hashes": hashes_json(&proof.hashes),
        }))?;
    } else {
        out.line(format!(
            "consistent: the tree of {} records (root {}) extends the tree of {} (root {})",
            new.seq,
            hex(new_root),
            old.seq,
            hex(old_root)
        ))?;
        out.line(format!("proof      {} hashes", proof.hashes.len()))?;
        for h in &proof.hashes {
            out.line(format!("  {}", hex(h)))?;
        }
    }
    out.flush()
}

pub fn export(a: ExportArgs) -> Result<(), Fail> {
    crate::access::record(
        &a.dir,
        &a.access,
        &format!("export-tlog to {}", a.out.display()),
    )?;
    let key = match &a.key {
        Some(k) => {
            let text = read_small(k, "private key")?;
            Some(
                CheckpointKey::from_private_string(text.trim())
                    .map_err(|e| Fail::usage(format!("{}: {e}", k.display())))?,
            )
        }
        None => None,
    };
    let log = crate::open::read_only(&a.dir)?;
    // Publishing vouches for the log: export_tlog verifies it first and
    // signs the root that verification computed.
    let r = log.export_tlog(&a.out, key.as_ref())?;
    let mut out = Out::new();
    out.line(format!(
        "exported the tree of {} records to {}: checkpoint ({}), {} hash tiles, {} entry bundles",
        r.tree_size,
        out::path_text(&a.out),
        if key.is_some() {
            "signed"
        } else {
            "unsigned: give --key for a checkpoint tlog clients accept"
        },
        r.tiles,
        r.bundles
    ))?;
    if r.first_index > 0 {
        out.line(format!(
            "entries 0..{} are pruned (retention dropped their records): their bundles are not \
             written; tiles and proofs for every tree size still are",
            r.first_index
        ))?;
    }
    out.flush()
}
