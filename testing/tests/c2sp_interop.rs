//! Interoperability with independent C2SP implementations: Cloudflare's
//! `signed_note` (c2sp.org/signed-note) and `tlog_tiles`
//! (c2sp.org/tlog-checkpoint, c2sp.org/tlog-tiles, RFC 6962 proofs), crates
//! written apart from wormlog (ports of Go's `golang.org/x/mod/sumdb`), not
//! its own verifier. What a proved append hands out is checked with them
//! alone: every signed checkpoint note parses and verifies under the log's
//! vkey (and a changed body byte does not), every checkpoint body parses as
//! a tlog-checkpoint whose root is the RFC 6962 root of the records' leaf
//! data, every inclusion path checks (and a changed path hash does not),
//! consistency proofs between the checkpoints check, and a note with a
//! witness cosignature appended still verifies under the log's key.

use signed_note::{Note, NoteError, StandardVerifier, Verifier as _, VerifierError, VerifierList};
use std::collections::BTreeMap;
use std::sync::Arc;
use tlog_tiles::{
    check_record, check_tree, prove_record, prove_tree, record_hash, stored_hash_index,
    stored_hashes, tree_hash, Checkpoint, Hash as THash, HashReader,
};
use wormlog::{CheckpointKey, CheckpointPublicKey, Log, Options, Proved, WitnessKey};

const KEY_NAME: &str = "audit.example/log";
const THREADS: usize = 4;
const SINGLES: usize = 15;
const BATCH: usize = 10;
/// Bytes of leaf data at the start of a proof's `extra` (format-spec §14.1).
const LEAF_DATA_LEN: usize = 49;

/// A log whose records were appended with proofs from several threads,
/// singly and in batches, and everything those appends handed back.
struct Fixture {
    _dir: tempfile::TempDir,
    log: Arc<Log>,
    public: CheckpointPublicKey,
    /// Every proved append, by seq.
    proved: Vec<Proved>,
}

fn fixture() -> Fixture {
    let key = CheckpointKey::generate(KEY_NAME).unwrap();
    let public = key.public();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), Options::default().proofs(key)).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for i in 0..SINGLES {
                    out.push(
                        log.append_proved(format!("t{t} single {i}").as_bytes())
                            .unwrap(),
                    );
                }
                let batch: Vec<String> = (0..BATCH).map(|i| format!("t{t} batch {i}")).collect();
                out.extend(log.append_batch_proved(&batch).unwrap());
                out
            })
        })
        .collect();
    let mut proved: Vec<Proved> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    proved.sort_by_key(|p| p.receipt.seq);
    assert_eq!(proved.len(), THREADS * (SINGLES + BATCH));
    Fixture {
        _dir: dir,
        log,
        public,
        proved,
    }
}

/// The signed part of a note: up to and including the newline before the
/// blank line.
fn body(note: &str) -> &str {
    let split = note.find("\n\n").expect("a note has a blank line");
    &note[..split + 1]
}

fn log_verifier(public: &CheckpointPublicKey) -> StandardVerifier {
    StandardVerifier::new(&public.to_vkey_string())
        .unwrap_or_else(|e| panic!("signed_note rejects the log's vkey: {e}"))
}

fn verifiers(v: &StandardVerifier) -> VerifierList {
    VerifierList::new(vec![Box::new(v.clone())])
}

/// The note parsed by signed_note and its body parsed by tlog_tiles.
fn parse_checkpoint(note: &str) -> Checkpoint {
    let parsed = Note::from_bytes(note.as_bytes())
        .unwrap_or_else(|e| panic!("signed_note rejects the note ({e}):\n{note}"));
    Checkpoint::from_bytes(parsed.text())
        .unwrap_or_else(|e| panic!("tlog_tiles rejects the checkpoint ({e}):\n{note}"))
}

fn thash(h: &wormlog::Hash) -> THash {
    THash(*h.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Leaf data as format-spec §14.1 lays it out, written here from the
/// record read back rather than by wormlog's code.
fn leaf_data_of(log: &Log, seq: u64) -> Vec<u8> {
    let r = log.get(seq).unwrap();
    let mut d = Vec::with_capacity(LEAF_DATA_LEN);
    d.extend_from_slice(&r.seq().to_le_bytes());
    d.extend_from_slice(&r.timestamp().to_le_bytes());
    d.push(r.kind() as u8);
    d.extend_from_slice(r.hash().as_bytes());
    d
}

/// tlog_tiles' stored hashes of the tree over every record's leaf data
/// (its own RFC 6962 tree, built record by record as Go's tlog does).
struct Stored(Vec<THash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<THash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(usize::try_from(i).unwrap())
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

fn stored_tree(log: &Log, size: u64) -> Stored {
    let mut stored = Stored(Vec::new());
    for n in 0..size {
        assert_eq!(stored_hash_index(0, n), stored.0.len() as u64);
        let new = stored_hashes(n, &leaf_data_of(log, n + 1), &stored).unwrap();
        stored.0.extend(new);
    }
    stored
}

/// Each distinct checkpoint the appends were given, by tree size.
fn checkpoints(proved: &[Proved]) -> BTreeMap<u64, Checkpoint> {
    let mut out = BTreeMap::new();
    for p in proved {
        let cp = parse_checkpoint(&p.proof.note);
        out.entry(cp.size()).or_insert(cp);
    }
    out
}

#[test]
fn cloudflare_signed_note_verifies_every_checkpoint_the_engine_signs() {
    let fx = fixture();
    let verifier = log_verifier(&fx.public);
    assert_eq!(verifier.name(), fx.public.name());
    assert_eq!(verifier.name(), KEY_NAME);
    let known = verifiers(&verifier);

    let mut notes = std::collections::BTreeSet::new();
    for p in &fx.proved {
        let text = &p.proof.note;
        notes.insert(text.clone());
        let note = Note::from_bytes(text.as_bytes())
            .unwrap_or_else(|e| panic!("signed_note cannot parse the note ({e}):\n{text}"));
        let (verified, unverified) = note
            .verify(&known)
            .unwrap_or_else(|e| panic!("signed_note rejects the note ({e}):\n{text}"));
        assert_eq!(verified.len(), 1, "{text}");
        assert_eq!(verified[0].name(), KEY_NAME);
        assert_eq!(verified[0].id(), verifier.key_id());
        assert!(unverified.is_empty(), "only the log signs: {text}");
        // The signed text is the body; the note is in canonical form.
        assert_eq!(note.text(), body(text).as_bytes());
        assert_eq!(note.to_bytes(), text.as_bytes());
    }
    // Several group commits, so several checkpoints were signed.
    assert!(notes.len() >= 2, "{} distinct notes", notes.len());

    // Another key of the same name signed none of them.
    let other = log_verifier(&CheckpointKey::generate(KEY_NAME).unwrap().public());
    let text = notes.last().unwrap();
    let note = Note::from_bytes(text.as_bytes()).unwrap();
    assert!(matches!(
        note.verify(&verifiers(&other)),
        Err(NoteError::UnverifiedNote)
    ));

    // Any one body byte changed: the note still parses, and signed_note
    // finds the log's signature invalid.
    let body_len = body(text).len();
    let mut changed = 0;
    for i in 0..body_len {
        let b = text.as_bytes()[i];
        if !b.is_ascii_alphanumeric() {
            continue;
        }
        let mut bytes = text.as_bytes().to_vec();
        bytes[i] = if b == b'A' { b'B' } else { b'A' };
        let tampered = Note::from_bytes(&bytes).expect("still a well-formed note");
        match tampered.verify(&known) {
            Err(NoteError::InvalidSignature { name, id }) => {
                assert_eq!((name.as_str(), id), (KEY_NAME, verifier.key_id()));
            }
            other => panic!("body byte {i} changed: {other:?}"),
        }
        changed += 1;
    }
    assert!(changed > 60, "only {changed} body bytes tried");
}

#[test]
fn cloudflare_tlog_tiles_checks_every_inclusion_proof_the_engine_hands_out() {
    let fx = fixture();
    let origin = format!("wormlog/{}/v2", hex(&fx.log.log_id()));
    let cps = checkpoints(&fx.proved);
    let largest = *cps.keys().last().unwrap();
    // tlog_tiles' own tree over the leaf data of every record (engine
    // records too), from the records read back.
    let stored = stored_tree(&fx.log, largest);

    for (size, cp) in &cps {
        assert_eq!(cp.origin(), origin);
        assert!(
            !cp.extension().is_empty(),
            "wormlog's notes carry extension lines"
        );
        assert_eq!(
            tree_hash(*size, &stored).unwrap(),
            *cp.hash(),
            "the signed root of size {size} is the RFC 6962 root of the leaves"
        );
    }

    for p in &fx.proved {
        let cp = parse_checkpoint(&p.proof.note);
        let index = p.proof.index;
        assert_eq!(index + 1, p.receipt.seq);
        assert!(index < cp.size());
        let extra = p
            .proof
            .extra
            .as_ref()
            .expect("wormlog's proofs carry extra");
        let leaf = &extra[..LEAF_DATA_LEN];
        assert_eq!(leaf, &leaf_data_of(&fx.log, p.receipt.seq)[..]);
        assert_eq!(&leaf[..8], &p.receipt.seq.to_le_bytes());
        assert_eq!(&leaf[17..], p.receipt.hash.as_bytes());
        let path: Vec<THash> = p.proof.hashes.iter().map(thash).collect();
        check_record(&path, cp.size(), *cp.hash(), index, record_hash(leaf)).unwrap_or_else(|e| {
            panic!(
                "tlog_tiles rejects the inclusion proof of seq {} ({e}):\n{}",
                p.receipt.seq,
                p.proof.to_text()
            )
        });
        // The same path tlog_tiles itself proves.
        assert_eq!(prove_record(cp.size(), index, &stored).unwrap(), path);
    }

    // A proof with a path: each hash changed in turn, another index or
    // another leaf: all rejected.
    let p = fx
        .proved
        .iter()
        .find(|p| p.proof.hashes.len() >= 3)
        .expect("a proof with a path of three hashes or more");
    let cp = parse_checkpoint(&p.proof.note);
    let leaf = &p.proof.extra.as_ref().unwrap()[..LEAF_DATA_LEN];
    let path: Vec<THash> = p.proof.hashes.iter().map(thash).collect();
    let (size, root, index) = (cp.size(), *cp.hash(), p.proof.index);
    check_record(&path, size, root, index, record_hash(leaf)).unwrap();
    for j in 0..path.len() {
        let mut bad = path.clone();
        bad[j].0[0] ^= 1;
        assert!(
            check_record(&bad, size, root, index, record_hash(leaf)).is_err(),
            "path hash {j} changed"
        );
    }
    let mut other_leaf = leaf.to_vec();
    other_leaf[20] ^= 1;
    assert!(check_record(&path, size, root, index, record_hash(&other_leaf)).is_err());
    let other_index = if index + 1 < size {
        index + 1
    } else {
        index - 1
    };
    assert!(check_record(&path, size, root, other_index, record_hash(leaf)).is_err());
}

#[test]
fn cloudflare_tlog_tiles_checks_consistency_between_the_engines_checkpoints() {
    let fx = fixture();
    let cps = checkpoints(&fx.proved);
    assert!(cps.len() >= 2, "{} checkpoints", cps.len());
    let largest = *cps.keys().last().unwrap();
    let stored = stored_tree(&fx.log, largest);

    // Every pair of signed checkpoints, older first (and each with itself).
    let mut pairs = 0;
    for (&old, old_cp) in &cps {
        for (&new, new_cp) in cps.range(old..) {
            let proof = fx.log.prove_consistency(old, new).unwrap();
            let hashes: Vec<THash> = proof.hashes.iter().map(thash).collect();
            check_tree(&hashes, new, *new_cp.hash(), old, *old_cp.hash()).unwrap_or_else(|e| {
                panic!("tlog_tiles rejects the consistency proof {old} -> {new} ({e})")
            });
            assert_eq!(prove_tree(new, old, &stored).unwrap(), hashes);
            pairs += 1;
        }
    }
    assert!(pairs >= 3);

    // Every tree size into the largest checkpoint's tree, against the
    // roots tlog_tiles computes from the leaves.
    let new_root = tree_hash(largest, &stored).unwrap();
    for old in 1..=largest {
        let proof = fx.log.prove_consistency(old, largest).unwrap();
        let hashes: Vec<THash> = proof.hashes.iter().map(thash).collect();
        let old_root = tree_hash(old, &stored).unwrap();
        check_tree(&hashes, largest, new_root, old, old_root)
            .unwrap_or_else(|e| panic!("consistency {old} -> {largest} ({e})"));
    }

    // A proof with hashes: each changed in turn, or the older root
    // changed, is rejected.
    let (&old, old_cp) = cps.iter().next().unwrap();
    let proof = fx.log.prove_consistency(old, largest).unwrap();
    let hashes: Vec<THash> = proof.hashes.iter().map(thash).collect();
    assert!(!hashes.is_empty());
    for j in 0..hashes.len() {
        let mut bad = hashes.clone();
        bad[j].0[31] ^= 1;
        assert!(
            check_tree(&bad, largest, new_root, old, *old_cp.hash()).is_err(),
            "hash {j} changed"
        );
    }
    let mut other_old = *old_cp.hash();
    other_old.0[0] ^= 1;
    assert!(check_tree(&hashes, largest, new_root, old, other_old).is_err());
}

#[test]
fn cloudflare_signed_note_verifies_a_witness_cosigned_note_under_the_logs_key() {
    let fx = fixture();
    let verifier = log_verifier(&fx.public);
    let known = verifiers(&verifier);
    let note = &fx.proved.last().unwrap().proof.note;

    let witness = WitnessKey::generate("witness.example/w1").unwrap();
    let time_s: u64 = 1_760_000_000;
    let line = witness.cosign(body(note), time_s);
    let cosigned = format!("{note}{line}");

    let parsed = Note::from_bytes(cosigned.as_bytes()).unwrap_or_else(|e| {
        panic!("signed_note cannot parse the cosigned note ({e}):\n{cosigned}")
    });
    assert_eq!(parsed.text(), body(note).as_bytes());
    assert_eq!(parsed.to_bytes(), cosigned.as_bytes());
    let (verified, unverified) = parsed
        .verify(&known)
        .unwrap_or_else(|e| panic!("signed_note rejects the cosigned note ({e}):\n{cosigned}"));
    assert_eq!(verified.len(), 1);
    assert_eq!(
        (verified[0].name(), verified[0].id()),
        (KEY_NAME, verifier.key_id())
    );
    // The witness's line: its name, the key id its vkey gives, then the
    // cosignature's time (u64 big-endian) and an Ed25519 signature.
    assert_eq!(unverified.len(), 1);
    let w = &unverified[0];
    let vkey = witness.public().to_vkey_string();
    let mut parts = vkey.splitn(3, '+');
    assert_eq!(parts.next(), Some("witness.example/w1"));
    assert_eq!(w.name(), "witness.example/w1");
    assert_eq!(format!("{:08x}", w.id()), parts.next().unwrap());
    assert_eq!(w.signature().len(), 8 + 64);
    assert_eq!(&w.signature()[..8], &time_s.to_be_bytes());
    // signed_note 0.2.0 verifies Ed25519 (type 0x01) keys only: it checks
    // the witness vkey's key id (SHA-256 of name, newline, 0x04 || key)
    // and then refuses the cosignature/v1 type, so it cannot check the
    // cosignature itself (wormlog's Policy does).
    assert!(matches!(
        StandardVerifier::new(&vkey),
        Err(VerifierError::Alg)
    ));
    // The cosigned body is still a tlog-checkpoint.
    assert_eq!(
        Checkpoint::from_bytes(parsed.text()).unwrap(),
        parse_checkpoint(note)
    );

    // The witness's line alone does not stand for the log's signature.
    let witness_only = format!("{}{line}", &note[..body(note).len() + 1]);
    let parsed = Note::from_bytes(witness_only.as_bytes()).unwrap();
    assert!(matches!(
        parsed.verify(&known),
        Err(NoteError::UnverifiedNote)
    ));
}
