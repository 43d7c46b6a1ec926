//! Off-host copies of a wormlog log (format-spec.md §15): every sealed
//! segment file and every length the anchor file reached, uploaded
//! unchanged to an S3 bucket under Object Lock, each PUT with its SHA-256
//! (`x-amz-checksum-sha256`) and `If-None-Match: *` (nothing overwritten),
//! and each shipped object's version id recorded durably in the log
//! directory's `wormlog.ship` before the next. A crash at any step resumes:
//! an object that reached the bucket but not the record is found by its
//! checksum and recorded, never uploaded twice. `verify_remote` checks the
//! bucket alone, one segment at a time, and reports versions that shadow
//! or delete markers that hide a shipped object.
//!
//! With `S3Target::with_tiles`, the Merkle tree goes too, as C2SP
//! tlog-tiles (`tile/<L>/<N>` under the prefix): every full tile over the
//! records of sealed files, and the partial tiles at the edge of each
//! checkpoint note in the bucket, so that a third party holding a note
//! proves any record it covers from the bucket alone. Tiles are immutable
//! once full, and a partial tile's path names its width, so these are
//! locked and never overwritten like the rest. Off by default: a PUT per
//! 256 records.
//!
//! This crate is the engine's S3 side, kept out of `wormlog` so that the
//! storage engine carries no HTTP or S3 client: it uses the engine's
//! public API, its format module and its extension surface
//! (`wormlog::Shipper`, which a writer calls to ship in the background and
//! retention waits on; `wormlog::CheckpointSink`; `wormlog::ext`).

#![deny(missing_docs)]

pub use config::S3Overrides;
use wormlog::format::merkle::{edge_tiles, tile_path, TILE_WIDTH};
use wormlog::format::names::{
    parse_sealed_file_name, tree_file_name, ANCHOR_FILE, SHIP_LOCK_FILE, SHIP_STATE_FILE,
    TREE_STATE_FILE,
};
use wormlog::format::tree_state::TreeState;
use wormlog::format::RetentionRule;
use wormlog::format::{hex, Hash};
use wormlog::{Error, Result};

mod config;
mod tail;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use tail::shipped_through_any;
use wormlog::verify_file;

/// The Object Lock retention mode of shipped objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// No one, the root account included, can delete or shorten it.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can.
    Governance,
}

impl LockMode {
    /// The name S3 uses (`x-amz-object-lock-mode`, retention documents).
    fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

/// Where copies go: `s3://bucket/prefix`, an endpoint and credentials.
#[derive(Clone)]
pub struct S3Target {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    mode: LockMode,
    retain_until_ns: Option<u64>,
    retain_for: Option<Duration>,
    tiles: bool,
    tail: bool,
}

impl std::fmt::Debug for S3Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Target")
            .field("bucket", &self.bucket.name())
            .field("prefix", &self.prefix)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn remote(op: &'static str, what: impl std::fmt::Display, detail: impl std::fmt::Display) -> Error {
    Error::Remote {
        op,
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

impl S3Target {
    /// `s3://bucket/prefix`, with the endpoint, region and credentials
    /// found as the AWS CLI finds them: the environment (`AWS_ENDPOINT_URL_S3`
    /// or `AWS_ENDPOINT_URL`, `AWS_REGION` or `AWS_DEFAULT_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`),
    /// then the profile `AWS_PROFILE` (else `default`) in `~/.aws/config`
    /// and `~/.aws/credentials` (or `AWS_CONFIG_FILE`,
    /// `AWS_SHARED_CREDENTIALS_FILE`): its `region`, `endpoint_url` and
    /// static keys. The region defaults to `us-east-1` and the endpoint to
    /// AWS's for the region. Addressing is path-style, which AWS and
    /// S3-compatible servers all take.
    pub fn from_env(url: &str) -> Result<S3Target> {
        S3Target::from_env_with(url, &S3Overrides::default())
    }

    /// As `from_env`, with what `over` sets taking precedence (the AWS
    /// CLI's `--profile`, `--endpoint-url` and `--region`; a profile named
    /// here also wins over keys in the environment).
    pub fn from_env_with(url: &str, over: &S3Overrides) -> Result<S3Target> {
        let r = config::from_process(url, over)?;
        let credentials = match r.token {
            Some(t) => Credentials::new_with_token(r.key, r.secret, t),
            None => Credentials::new(r.key, r.secret),
        };
        S3Target::new(url, &r.endpoint, &r.region, credentials)
    }

    /// As `from_env`, with everything given.
    pub fn new(
        url: &str,
        endpoint: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<S3Target> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| remote("configure", url, "not an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(remote("configure", url, "no bucket name"));
        }
        let endpoint: url::Url = endpoint
            .parse()
            .map_err(|e| remote("configure", endpoint, format!("not a URL: {e}")))?;
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            bucket.to_string(),
            region.to_string(),
        )
        .map_err(|e| remote("configure", url, e))?;
        let prefix = prefix.trim_matches('/').to_string();
        // wormlog.ship's lines are space-separated.
        if prefix.chars().any(char::is_whitespace) {
            return Err(remote(
                "configure",
                url,
                "the prefix has whitespace; wormlog.ship records keys without it",
            ));
        }
        Ok(S3Target {
            bucket,
            credentials,
            prefix,
            mode: LockMode::Compliance,
            retain_until_ns: None,
            retain_for: None,
            tiles: false,
            tail: false,
        })
    }

    /// Ship the Merkle tree's tiles too (default off), so that third
    /// parties holding a checkpoint note prove records from the bucket
    /// alone. It costs a PUT per 256 records (segments cost one per
    /// segment): on AWS at 10,000 records a second, about 3.4 million PUT
    /// requests a day. The copy verifies and restores without them; a
    /// restored log rebuilds its tree from the records.
    pub fn with_tiles(mut self, on: bool) -> Self {
        self.tiles = on;
        self
    }

    /// Ship the active segment's tail too (default off): each run uploads
    /// what was appended since the last one, whole frames only, as a tail
    /// object (`tail/<segment>/<from>`, format-spec.md §15.6), so that
    /// losing the host loses at most one shipping interval of records, not
    /// everything since the last seal. A PUT per run that found new
    /// records: at a 5 s interval, at most 17,280 a day per log.
    pub fn with_tail(mut self, on: bool) -> Self {
        self.tail = on;
        self
    }

    /// The lock mode of new objects (default COMPLIANCE).
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// Lock new objects at least until this time (ns since the Unix epoch).
    pub fn retain_until(mut self, ns: u64) -> Self {
        self.retain_until_ns = Some(ns);
        self
    }

    /// Lock each new object at least this long from its upload.
    pub fn retain_for(mut self, period: Duration) -> Self {
        self.retain_for = Some(period);
        self
    }

    /// Until when objects uploaded at `now_ns` are locked: the latest of
    /// `retain_until`, `retain_for` from now, and the period the log's
    /// recorded retention policy implies (its `min_age`, the compliance
    /// floor, or else its `max_age`) from now. A copy is never locked for
    /// less than the log itself must keep its records.
    pub fn lock_until(&self, policy: Option<&RetentionRule>, now_ns: u64) -> Result<u64> {
        let from_now = |ns: u64| now_ns.saturating_add(ns);
        let policy_ns = policy
            .map(|p| {
                if p.min_age_ns > 0 {
                    p.min_age_ns
                } else {
                    p.max_age_ns
                }
            })
            .filter(|ns| *ns > 0);
        [
            self.retain_until_ns,
            self.retain_for
                .map(|d| from_now(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))),
            policy_ns.map(from_now),
        ]
        .into_iter()
        .flatten()
        .max()
        .ok_or_else(|| {
            remote(
                "ship",
                self.url(),
                "no lock period: the log records no retention policy with a min_age or \
                 max_age, so give one (S3Target::retain_until or retain_for; wormctl ship \
                 --retain-until)",
            )
        })
    }

    /// The bucket's path-style URL (endpoint and bucket, no prefix): what
    /// `wormlog.ship` records each object's destination as.
    pub fn id(&self) -> String {
        self.bucket
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket.name(), self.prefix)
    }

    /// Creates the bucket with Object Lock enabled (and so versioning), as
    /// an administrator would once; succeeds if this caller already owns it.
    pub fn create_bucket_with_object_lock(&self) -> Result<()> {
        let mut action = self.bucket.create_bucket(&self.credentials);
        action
            .headers_mut()
            .insert("x-amz-bucket-object-lock-enabled", "true");
        let url = action.sign(SIGN_FOR);
        let resp = agent()
            .put(url.as_str())
            .header("x-amz-bucket-object-lock-enabled", "true")
            .send_empty()
            .map_err(|e| remote("create bucket", self.bucket.name(), e))?;
        match resp.status().as_u16() {
            200 | 409 => Ok(()),
            s => Err(remote(
                "create bucket",
                self.bucket.name(),
                status_text(s, resp),
            )),
        }
    }

    /// Whether the bucket has Object Lock enabled (its object lock
    /// configuration says `Enabled`): without it, a locked PUT is refused
    /// and nothing shipped could be kept from deletion.
    pub fn object_lock_enabled(&self) -> Result<bool> {
        let url = sign_url(
            self,
            rusty_s3::Method::Get,
            self.bucket.base_url().clone(),
            &mut [("object-lock", String::new())],
        );
        let mut resp = agent()
            .get(url.as_str())
            .call()
            .map_err(|e| remote("GET object-lock", self.bucket.name(), e))?;
        let status = resp.status().as_u16();
        let body = small_body(&mut resp);
        match status {
            200 => Ok(
                between(&body, "<ObjectLockEnabled>", "</ObjectLockEnabled>") == Some("Enabled"),
            ),
            // No configuration (ObjectLockConfigurationNotFoundError).
            404 => Ok(false),
            400 if between(&body, "<Code>", "</Code>")
                .is_some_and(|c| c.starts_with("ObjectLockConfigurationNotFound")) =>
            {
                Ok(false)
            }
            s => Err(remote(
                "GET object-lock",
                self.bucket.name(),
                format!(
                    "HTTP {s} {}",
                    between(&body, "<Code>", "</Code>").unwrap_or("")
                ),
            )),
        }
    }
}

/// A refused locked PUT, said so that the operator can act: a bucket
/// without Object Lock answers 400 InvalidRequest.
fn put_status_text(status: u16, mut resp: ureq::http::Response<ureq::Body>) -> String {
    let body = small_body(&mut resp);
    let code = between(&body, "<Code>", "</Code>").unwrap_or("");
    let message = between(&body, "<Message>", "</Message>").unwrap_or("");
    if status == 400 && code == "InvalidRequest" {
        return format!(
            "HTTP 400 InvalidRequest ({message}): the bucket refused an object under Object \
             Lock; a bucket is created with Object Lock on (`wormctl bucket create \
             s3://BUCKET`, or `aws s3api create-bucket --object-lock-enabled-for-bucket`) \
             and cannot be given it after"
        );
    }
    format!("HTTP {status} {code}")
}

const SIGN_FOR: Duration = Duration::from_secs(600);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// A response's body as text, up to 64 KiB (an error or retention
/// document; a longer or unreadable one reads as empty).
fn small_body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    resp.body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default()
}

fn status_text(status: u16, mut resp: ureq::http::Response<ureq::Body>) -> String {
    let body = small_body(&mut resp);
    let code = between(&body, "<Code>", "</Code>").unwrap_or("");
    format!("HTTP {status} {code}")
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some(&s[a..b])
}

/// One object shipped: its key, the version the bucket gave it, its bytes'
/// SHA-256 and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedObject {
    /// The object's key in the bucket, prefix included.
    pub key: String,
    /// The version id the bucket returned for the PUT.
    pub version_id: String,
    /// SHA-256 of the object's bytes.
    pub sha256: Hash,
    /// The object's length in bytes.
    pub bytes: u64,
    /// Where: the bucket's path-style URL (`S3Target::id`). A log shipped
    /// to another bucket or endpoint under the same prefix is not shipped
    /// there until it is recorded with that one.
    pub target: String,
}

/// What `ship` did.
#[derive(Debug, Clone, Default)]
pub struct ShipReport {
    /// The objects it uploaded are locked until then (ns since the epoch).
    pub retain_until_ns: u64,
    /// Objects uploaded by this run.
    pub uploaded: Vec<ShippedObject>,
    /// Objects found in the bucket from a run that crashed before
    /// recording them, now recorded.
    pub adopted: Vec<ShippedObject>,
    /// Objects the record already had.
    pub already: usize,
}

/// `wormlog.ship`: one line per shipped object, `key version_id sha256
/// bytes`, appended and fdatasynced after each object (format-spec.md §15).
fn read_state(dir: &Path) -> Result<Vec<ShippedObject>> {
    let path = dir.join(SHIP_STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let mut out = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let Some(line) = line.strip_suffix('\n') else {
            break; // a line a crash tore: that object is found again by its checksum
        };
        let f: Vec<&str> = line.split(' ').collect();
        let parsed = (f.len() == 5)
            .then(|| {
                let sha: Hash = f[2].parse().ok()?;
                Some(ShippedObject {
                    key: f[0].to_string(),
                    version_id: f[1].to_string(),
                    sha256: sha,
                    bytes: f[3].parse().ok()?,
                    target: f[4].to_string(),
                })
            })
            .flatten();
        match parsed {
            Some(o) => out.push(o),
            None => {
                return Err(remote(
                    "read ship record",
                    path.display(),
                    format!("line {} is not `key version sha256 bytes target`", n + 1),
                ))
            }
        }
    }
    Ok(out)
}

/// What `wormlog.ship` records as shipped to `target` (its bucket at its
/// endpoint).
fn recorded_for(dir: &Path, target: &S3Target) -> Result<Vec<ShippedObject>> {
    let id = target.id();
    Ok(read_state(dir)?
        .into_iter()
        .filter(|o| o.target == id)
        .collect())
}

/// Holds `wormlog.ship.lock` locked (flock) for one shipping run.
fn lock_state(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(SHIP_LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    // Not waiting: a writer's shipper must not hang behind a `wormctl
    // ship` (nor its close behind it); it backs off and tries again.
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(remote(
            "ship",
            path.display(),
            "another shipping run holds this log's ship lock; try again when it ends",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path, e)),
    }
}

/// A crash while a line was being appended leaves it without its newline:
/// cut it (its object is found again by its checksum) before appending.
fn cut_torn_record(dir: &Path) -> Result<()> {
    let path = dir.join(SHIP_STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    f.set_len(keep as u64)
        .and_then(|()| f.sync_data())
        .map_err(|e| Error::io("truncate", &path, e))
}

fn record(dir: &Path, o: &ShippedObject) -> Result<()> {
    let path = dir.join(SHIP_STATE_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    writeln!(
        f,
        "{} {} {} {} {}",
        o.key,
        o.version_id,
        hex(o.sha256),
        o.bytes,
        o.target
    )
    .and_then(|()| f.sync_data())
    .map_err(|e| Error::io("write", &path, e))
}

/// What the log directory has to ship: its sealed files, oldest first,
/// and the anchor file at its current length (each length a new object,
/// `wormlog.anchor.<bytes>`: the file only grows) up to its last whole
/// entry.
fn to_ship(dir: &Path) -> Result<Vec<(String, PathBuf, Part)>> {
    let mut sealed = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let e = e.map_err(|e| Error::io("list", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = parse_sealed_file_name(&name) {
            sealed.push((n, name, e.path()));
        }
    }
    sealed.sort();
    let mut out: Vec<(String, PathBuf, Part)> = sealed
        .into_iter()
        .map(|(_, name, p)| (name, p, Part::Whole))
        .collect();
    let anchor = dir.join(ANCHOR_FILE);
    match std::fs::read(&anchor) {
        Ok(bytes) => {
            if let Some(len) = whole_entries_len(&bytes) {
                let len = len as u64;
                out.push((format!("{ANCHOR_FILE}.{len}"), anchor, Part::Prefix(len)));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read", &anchor, e)),
    }
    Ok(out)
}

/// Which bytes of a file an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// All of them (a sealed file: it never changes).
    Whole,
    /// The first this many (the anchor file: it grows).
    Prefix(u64),
    /// `len` bytes from `at` (a tile: a stretch of a level's file, which
    /// grows past it).
    Range { at: u64, len: u64 },
}

/// The newest sealed file among `objects` (`to_ship`'s list).
fn newest_sealed(objects: &[(String, PathBuf, Part)]) -> Option<u64> {
    objects
        .iter()
        .filter_map(|(name, _, _)| parse_sealed_file_name(name))
        .max()
}

/// The last seq of sealed file `newest` in `dir` (the newest this run
/// ships), 0 if there is none.
/// Every record up to it is durable (a sealed file is synced before it is
/// renamed into place) and shipped before any tile: the bound of the tiles
/// a run may lock. The tree's own state vouches for entries the writer has
/// synced, which under batched or buffered durability may cover records a
/// crash would still cut and whose seqs new records would then take.
fn sealed_through(dir: &Path, newest: Option<u64>) -> Result<u64> {
    let Some(n) = newest else { return Ok(0) };
    wormlog::ext::sealed_last_seq(dir, n)
}

/// How many entries of each level of the tree in `dir` a run may ship: no
/// more than `wormlog.tree` vouches for, than the level's file holds, or
/// than records `1..=through` make (level L: through / 256^L). Empty
/// without a readable state file: entries it does not vouch for may
/// still change.
fn shippable_entries(dir: &Path, through: u64) -> Result<Vec<u64>> {
    let state_path = dir.join(TREE_STATE_FILE);
    let vouched = match std::fs::read(&state_path) {
        Ok(bytes) => match TreeState::decode(&bytes) {
            Ok(s) => s.entries,
            // The writer replaces it atomically, so this is damage, which
            // the writer's open and verify report; ship no tile meanwhile.
            Err(_) => return Ok(Vec::new()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &state_path, e)),
    };
    let mut out = Vec::with_capacity(vouched.len());
    let mut made = through;
    for (level, &said) in vouched.iter().enumerate() {
        let path = dir.join(tree_file_name(level));
        let held = match std::fs::metadata(&path) {
            Ok(m) => m.len() / 32,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io("stat", &path, e)),
        };
        out.push(said.min(held).min(made));
        made /= TILE_WIDTH;
    }
    Ok(out)
}

/// How far the recorded level-0 partial tiles reach: the largest
/// checkpoint size whose edge tiles a run shipped (0 if none).
fn edge_watermark(done: &std::collections::HashSet<String>, target: &S3Target) -> u64 {
    let under = target.key("");
    done.iter()
        .filter_map(|k| wormlog::format::merkle::parse_tile_path(k.strip_prefix(&under)?))
        .filter(|&(level, _, width)| level == 0 && width < TILE_WIDTH)
        .filter_map(|(_, n, width)| n.checked_mul(TILE_WIDTH)?.checked_add(width))
        .max()
        .unwrap_or(0)
}

/// Checkpoint sizes one run handles at most: the oldest of those above the
/// watermark, so that each run moves it on and none is skipped. Notes are
/// not authenticated here (the shipper holds no public key), so a flood of
/// planted keys costs a bounded number of genuine tiles a run.
const EDGE_SIZES_PER_RUN: usize = 1024;

/// The tiles of the tree in `dir` to ship, `entries` per level at most
/// (`shippable_entries`): every full tile, then for each size in `sizes`
/// (checkpoints in the bucket, ascending) the partial tiles at its edge,
/// which a proof at that size needs, the highest level first. Level 0's
/// goes last because `edge_watermark` reads how far the runs got from it:
/// a run stopped between objects leaves no size half done below it.
/// Sizes stop at the first whose edge the tree does not hold yet.
fn tiles_to_ship(dir: &Path, entries: &[u64], sizes: &[u64]) -> Vec<(String, PathBuf, Part)> {
    let mut tiles: Vec<(u32, u64, u64)> = Vec::new();
    for (level, &have) in entries.iter().enumerate() {
        tiles.extend((0..have / TILE_WIDTH).map(|n| (level as u32, n, TILE_WIDTH)));
    }
    let mut edges = std::collections::HashSet::new();
    for &size in sizes {
        let edge = edge_tiles(size);
        let held = edge.iter().all(|&(level, n, width)| {
            entries.get(level as usize).is_some_and(|&have| {
                n.checked_mul(TILE_WIDTH)
                    .and_then(|at| at.checked_add(width))
                    .is_some_and(|end| end <= have)
            })
        });
        if !held {
            break;
        }
        // edge_tiles lists level 0 first.
        for t in edge.into_iter().rev() {
            if edges.insert(t) {
                tiles.push(t);
            }
        }
    }
    tiles
        .into_iter()
        .map(|(level, n, width)| {
            let name = tile_path(Some(level), n, width);
            let part = Part::Range {
                at: n * TILE_WIDTH * 32,
                len: width * 32,
            };
            (name, dir.join(tree_file_name(level as usize)), part)
        })
        .collect()
}

/// The tree sizes of the checkpoint notes under `target` within
/// `(after, through]`, from their keys (`checkpoints/<size>-<sha>`, the
/// size in 20 digits, so keys sort by it and the listing starts past
/// `after`), the oldest `EDGE_SIZES_PER_RUN` of them.
fn checkpoint_sizes(target: &S3Target, after: u64, through: u64) -> Result<Vec<u64>> {
    let prefix = target.key(CHECKPOINT_PREFIX);
    // `~` sorts after the hex digits of every key of size `after`.
    let start = (after > 0).then(|| format!("{prefix}{after:020}-~"));
    let mut sizes: Vec<u64> = versions_after(target, &prefix, start)?
        .iter()
        .filter(|v| !v.delete_marker)
        .filter_map(|v| {
            let name = v.key.rsplit_once(CHECKPOINT_PREFIX)?.1;
            name.split_once('-')?.0.parse().ok()
        })
        .filter(|&size| size > after && size <= through)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes.truncate(EDGE_SIZES_PER_RUN);
    Ok(sizes)
}

/// The bytes of `path` that `part` names.
fn read_part(path: &Path, part: Part) -> Result<Vec<u8>> {
    let io = |e| Error::io("read", path, e);
    match part {
        Part::Whole => std::fs::read(path).map_err(io),
        Part::Prefix(len) => {
            let mut bytes = std::fs::read(path).map_err(io)?;
            // The anchor only grows, and only by whole entries past `len`.
            if (bytes.len() as u64) < len {
                return Err(Error::corrupt(
                    path,
                    bytes.len() as u64,
                    None,
                    wormlog::Corruption::Anchor {
                        detail: format!("the file shrank while being shipped (it had {len} bytes)"),
                    },
                ));
            }
            bytes.truncate(len as usize);
            Ok(bytes)
        }
        Part::Range { at, len } => {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::open(path).map_err(io)?;
            // At most a tile: 8 KiB.
            let mut bytes = vec![0u8; len as usize];
            f.read_exact_at(&mut bytes, at).map_err(io)?;
            Ok(bytes)
        }
    }
}

/// How many leading bytes of an anchor file are its header and whole,
/// checked entries; `None` while the header itself is incomplete or not
/// an anchor's. The shipper reads the file while the writer's retention
/// may be appending an entry (written, then synced): a torn entry must
/// not become an object, since a lock would keep it for years and restore
/// would refuse it. The writer's own open cuts such a tail; the shipper
/// only leaves it out, and ships the longer file on a later run.
fn whole_entries_len(bytes: &[u8]) -> Option<usize> {
    wormlog::format::decode_anchor_header(bytes).ok()?;
    let mut at = wormlog::format::ANCHOR_HEADER_LEN;
    while let Ok(Some((_, len))) = wormlog::format::AnchorEntry::decode(&bytes[at..]) {
        at += len;
    }
    Some(at)
}

/// A step of a shipping run, as `ship_observed` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipStep<'a> {
    /// About to PUT this key.
    Put(&'a str),
    /// The server stored it; about to record it in `wormlog.ship`.
    Record(&'a str),
}

/// Uploads what the log in `dir` has not shipped yet (see the module docs).
/// `policy`: the retention policy the log records (`Log::retention_policy`),
/// from which the lock period derives (`S3Target::lock_until`).
pub fn ship(dir: &Path, target: &S3Target, policy: Option<&RetentionRule>) -> Result<ShipReport> {
    ship_observed(dir, target, policy, &mut |_| Ok(()))
}

/// As `ship`, calling `step` before each step; an error it returns ends the
/// run there, as a crash would (for fault-injection tests and drills).
pub fn ship_observed(
    dir: &Path,
    target: &S3Target,
    policy: Option<&RetentionRule>,
    step: &mut dyn FnMut(ShipStep<'_>) -> Result<()>,
) -> Result<ShipReport> {
    let now = u64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(0);
    let retain_until = target.lock_until(policy, now)?;
    // One run at a time per log directory: the writer's shipper and a
    // `wormctl ship` would otherwise race to record the same objects.
    let _run = lock_state(dir)?;
    let until = rfc3339(retain_until)?;
    cut_torn_record(dir)?;
    // A set: a log ships a tile per 256 records, so the record grows long.
    let done: std::collections::HashSet<String> = recorded_for(dir, target)?
        .into_iter()
        .map(|o| o.key)
        .collect();
    if done.is_empty() && !target.object_lock_enabled()? {
        // The first run to a bucket checks it can lock at all: some
        // servers take the lock headers of a bucket that cannot lock.
        return Err(remote(
            "ship",
            target.url(),
            "the bucket has no Object Lock, so nothing copied there could be kept from \
             deletion; S3 gives a bucket Object Lock only when it is created: create one with \
             `wormctl bucket create s3://BUCKET` (or `aws s3api create-bucket \
             --object-lock-enabled-for-bucket`)",
        ));
    }
    let mut report = ShipReport {
        retain_until_ns: retain_until,
        ..ShipReport::default()
    };
    let agent = agent();
    let mut send = |objects: Vec<(String, PathBuf, Part)>| -> Result<()> {
        for (name, path, part) in objects {
            let key = target.key(&name);
            if done.contains(&key) {
                report.already += 1;
                continue;
            }
            let bytes = read_part(&path, part)?;
            step(ShipStep::Put(&key))?;
            let (object, adopted) = put_locked(target, &agent, &key, &bytes, &until)?;
            step(ShipStep::Record(&key))?;
            record(dir, &object)?;
            if adopted {
                report.adopted.push(object);
            } else {
                report.uploaded.push(object);
            }
        }
        Ok(())
    };
    // Segments and the anchor first: they are the evidence, and a failure
    // to list the notes below must not hold them back.
    let objects = to_ship(dir)?;
    let newest = newest_sealed(&objects);
    send(objects)?;
    // Then the tiles over records that are sealed, so durable and shipped.
    let through = sealed_through(dir, newest)?;
    let entries = shippable_entries(dir, through)?;
    if target.tiles && entries.first().is_some_and(|&e| e > 0) {
        let sizes = checkpoint_sizes(target, edge_watermark(&done, target), through)?;
        send(tiles_to_ship(dir, &entries, &sizes))?;
    }
    // Last, what the active segment gained since its last tail object.
    if target.tail {
        report
            .uploaded
            .extend(tail::ship_tail(dir, target, &until, step)?);
    }
    Ok(report)
}

/// PUTs `bytes` at `key` locked until `until` (RFC 3339), with its
/// checksums and `If-None-Match: *`. Returns the object stored, and whether
/// it was already there (412) from an earlier run with these very bytes,
/// which is adopted; other bytes at the key are an error.
fn put_locked(
    target: &S3Target,
    agent: &ureq::Agent,
    key: &str,
    bytes: &[u8],
    until: &str,
) -> Result<(ShippedObject, bool)> {
    let sha = Hash::from_bytes(Sha256::digest(bytes).into());
    let sha_b64 = B64.encode(sha);
    let md5_b64 = B64.encode(md5(bytes));
    let mode = target.mode.as_str();
    let mut action = target.bucket.put_object(Some(&target.credentials), key);
    let h = action.headers_mut();
    h.insert("x-amz-object-lock-mode", mode);
    h.insert("x-amz-object-lock-retain-until-date", until.to_string());
    h.insert("x-amz-checksum-sha256", sha_b64.clone());
    h.insert("content-md5", md5_b64.clone());
    h.insert("if-none-match", "*");
    let url = action.sign(SIGN_FOR);
    let resp = agent
        .put(url.as_str())
        .header("x-amz-object-lock-mode", mode)
        .header("x-amz-object-lock-retain-until-date", until)
        .header("x-amz-checksum-sha256", &sha_b64)
        .header("content-md5", &md5_b64)
        .header("if-none-match", "*")
        .send(bytes)
        .map_err(|e| remote("PUT", key, e))?;
    let object = |version_id: String| ShippedObject {
        target: target.id(),
        key: key.to_string(),
        version_id,
        sha256: sha,
        bytes: bytes.len() as u64,
    };
    match resp.status().as_u16() {
        200 => {
            let version_id = resp
                .headers()
                .get("x-amz-version-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && *v != "null")
                .ok_or_else(|| {
                    remote(
                        "PUT",
                        key,
                        "no version id: the bucket is not versioned (enable Object Lock)",
                    )
                })?
                .to_string();
            Ok((object(version_id), false))
        }
        // There already: shipped by a run that crashed before its record,
        // if it is these bytes; anything else is not ours.
        412 => {
            let found = versions(target, key)?
                .into_iter()
                .filter(|v| !v.delete_marker)
                .find_map(|v| {
                    let got = download_sha(target, key, &v.version_id).ok()?;
                    (got == (sha, bytes.len() as u64)).then_some(v.version_id)
                })
                .ok_or_else(|| {
                    remote(
                        "PUT",
                        key,
                        "an object with other bytes is already at this key",
                    )
                })?;
            // Ours if an earlier run put it; but anyone who read the file
            // could have put these bytes first, unlocked or locked briefly:
            // make sure it is locked at least as ours would be.
            ensure_locked(target, agent, key, &found, until)?;
            Ok((object(found), true))
        }
        s => Err(remote("PUT", key, put_status_text(s, resp))),
    }
}

/// Signs a request on `key` with `query`, as the API actions do.
fn sign_key(
    target: &S3Target,
    method: rusty_s3::Method,
    key: &str,
    query: &mut [(&str, String)],
) -> url::Url {
    let url = target
        .bucket
        .object_url(key)
        .unwrap_or_else(|_| target.bucket.base_url().clone());
    sign_url(target, method, url, query)
}

/// Presigns `url` with `query` (sorted: rusty-s3 merges it into the
/// signed query as a sorted list).
fn sign_url(
    target: &S3Target,
    method: rusty_s3::Method,
    url: url::Url,
    query: &mut [(&str, String)],
) -> url::Url {
    query.sort();
    rusty_s3::signing::sign(
        &jiff::Timestamp::now(),
        method,
        url,
        target.credentials.key(),
        target.credentials.secret(),
        target.credentials.token(),
        target.bucket.region(),
        SIGN_FOR.as_secs(),
        query.iter().map(|(k, v)| (*k, v.as_str())),
        std::iter::empty(),
    )
}

/// Reads a version's Object Lock retention and, where it is missing or
/// ends before `until` (RFC 3339, as PUTs send it), sets it to the
/// target's mode until `until` (a lock can always be lengthened).
fn ensure_locked(
    target: &S3Target,
    agent: &ureq::Agent,
    key: &str,
    version_id: &str,
    until: &str,
) -> Result<()> {
    let mut q = vec![
        ("retention", String::new()),
        ("versionId", version_id.to_string()),
    ];
    let url = sign_key(target, rusty_s3::Method::Get, key, &mut q);
    let mut resp = agent
        .get(url.as_str())
        .call()
        .map_err(|e| remote("GET retention", key, e))?;
    let status = resp.status().as_u16();
    let body = small_body(&mut resp);
    let current = (status == 200)
        .then(|| between(&body, "<RetainUntilDate>", "</RetainUntilDate>"))
        .flatten()
        .and_then(|d| d.parse::<jiff::Timestamp>().ok());
    let wanted: jiff::Timestamp = until
        .parse()
        .map_err(|e| remote("ship", key, format!("retain-until {until}: {e}")))?;
    let mode_ok = match target.mode {
        LockMode::Compliance => between(&body, "<Mode>", "</Mode>") == Some(target.mode.as_str()),
        LockMode::Governance => between(&body, "<Mode>", "</Mode>").is_some(),
    };
    if mode_ok && current.is_some_and(|c| c >= wanted) {
        return Ok(());
    }
    let mode = target.mode.as_str();
    let xml = format!(
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{mode}</Mode>\
         <RetainUntilDate>{until}</RetainUntilDate></Retention>"
    );
    let mut q = vec![
        ("retention", String::new()),
        ("versionId", version_id.to_string()),
    ];
    let url = sign_key(target, rusty_s3::Method::Put, key, &mut q);
    let resp = agent
        .put(url.as_str())
        .header("content-md5", B64.encode(md5(xml.as_bytes())))
        .send(xml.as_bytes())
        .map_err(|e| remote("PUT retention", key, e))?;
    match resp.status().as_u16() {
        200 | 204 => Ok(()),
        s => Err(remote(
            "PUT retention",
            key,
            format!(
                "the object already there is not locked as shipped objects are, and could not \
                 be locked: {}",
                status_text(s, resp)
            ),
        )),
    }
}

/// Automatic checkpoints straight to the bucket
/// (`Options::auto_checkpoints(key, interval, Arc::new(target))`): each
/// note its own object, `checkpoints/<seq>-<sha256 prefix>`, locked like
/// the rest (the target needs `retain_until` or `retain_for`: a sink does
/// not see the log's policy) and never overwritten.
impl wormlog::CheckpointSink for S3Target {
    fn put(&self, note: &str) -> std::io::Result<()> {
        let io = |e: Error| std::io::Error::other(e.to_string());
        let now = u64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(0);
        let until = rfc3339(self.lock_until(None, now).map_err(io)?).map_err(io)?;
        // The note's second line is its tree size (or seq): keys sort by it.
        let size: u64 = note
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let name = format!(
            "{CHECKPOINT_PREFIX}{size:020}-{}",
            hex(&Sha256::digest(note.as_bytes())[..8])
        );
        put_locked(self, &agent(), &self.key(&name), note.as_bytes(), &until)
            .map(|_| ())
            .map_err(io)
    }
}

/// Where checkpoint notes go under the prefix.
const CHECKPOINT_PREFIX: &str = "checkpoints/";

/// The checkpoint notes under `target` (the latest version of each, at
/// most 64 KiB each), oldest tree first.
pub fn checkpoints(target: &S3Target) -> Result<Vec<(String, String)>> {
    let prefix = target.key(CHECKPOINT_PREFIX);
    let mut out = Vec::new();
    for v in versions(target, &prefix)?
        .into_iter()
        .filter(|v| v.is_latest && !v.delete_marker)
    {
        let mut buf = Vec::new();
        let mut limited = LimitedWriter {
            out: &mut buf,
            left: 64 << 10,
        };
        download(target, &v.key, &v.version_id, &mut limited)?;
        let note = String::from_utf8(buf)
            .map_err(|_| remote("verify", &v.key, "a checkpoint note is text; this is not"))?;
        out.push((v.key, note));
    }
    out.sort();
    Ok(out)
}

/// A hash tile found in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTile {
    /// The object's key, prefix included.
    pub key: String,
    /// Its latest version's id.
    pub version_id: String,
    /// The tree level, index and width its path names.
    pub level: u32,
    /// The tile's index at its level.
    pub index: u64,
    /// How many hashes it holds (256 for a full tile).
    pub width: u64,
    /// Its hashes.
    pub hashes: Vec<Hash>,
}

/// The hash tiles under `target` (the latest version of each, exactly as
/// many bytes as its path says or an error), by level and index. Keys
/// under `tile/` that are not a tile's one spelling are left out. All of
/// them in memory: for a large copy, `for_each_tile`.
pub fn tiles(target: &S3Target) -> Result<Vec<RemoteTile>> {
    let mut out = Vec::new();
    for_each_tile(target, &mut |t| {
        out.push(t);
        Ok(())
    })?;
    out.sort_by_key(|t| (t.level, t.index, t.width));
    Ok(out)
}

/// As `tiles`, one at a time (in key order), so memory holds one tile.
pub fn for_each_tile(target: &S3Target, f: &mut dyn FnMut(RemoteTile) -> Result<()>) -> Result<()> {
    let under = target.key("");
    for v in versions(target, &target.key("tile/"))?
        .into_iter()
        .filter(|v| v.is_latest && !v.delete_marker)
    {
        let Some((level, index, width)) = v
            .key
            .strip_prefix(&under)
            .and_then(wormlog::format::merkle::parse_tile_path)
        else {
            continue;
        };
        let len = width as usize * 32;
        let mut buf = Vec::with_capacity(len);
        let mut limited = LimitedWriter {
            out: &mut buf,
            left: len,
        };
        download(target, &v.key, &v.version_id, &mut limited).map_err(|e| {
            remote(
                "verify",
                &v.key,
                format!("not a tile of {width} hashes: {e}"),
            )
        })?;
        if buf.len() != len {
            return Err(remote(
                "verify",
                &v.key,
                format!("{} bytes; a tile of {width} hashes has {len}", buf.len()),
            ));
        }
        let hashes = buf.chunks_exact(32).filter_map(Hash::from_slice).collect();
        f(RemoteTile {
            key: v.key,
            version_id: v.version_id,
            level,
            index,
            width,
            hashes,
        })?;
    }
    Ok(())
}

/// A writer that refuses more than `left` bytes (a hostile object must not
/// make us allocate without bound).
struct LimitedWriter<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            return Err(std::io::Error::other("larger than the object may be"));
        }
        self.left -= buf.len();
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn rfc3339(ns: u64) -> Result<String> {
    Ok(jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map_err(|e| remote("ship", ns, e))?
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string())
}

/// MD5, which Object Lock PUTs must carry (or a checksum header; some
/// S3-compatible servers want Content-MD5 itself).
fn md5(data: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(data).into()
}

/// One version of an object, or a delete marker, as the bucket lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVersion {
    /// The object's key, prefix included.
    pub key: String,
    /// The bucket's id of this version.
    pub version_id: String,
    /// Whether this is the key's current version.
    pub is_latest: bool,
    /// Whether this version is a delete marker (which hides the object).
    pub delete_marker: bool,
}

/// Every version and delete marker under `prefix` (ListObjectVersions).
fn versions(target: &S3Target, prefix: &str) -> Result<Vec<RemoteVersion>> {
    versions_after(target, prefix, None)
}

/// As `versions`, of the keys after `start` only (S3's `key-marker`; a
/// server that ignores it lists more, which callers filter anyway).
fn versions_after(
    target: &S3Target,
    prefix: &str,
    start: Option<String>,
) -> Result<Vec<RemoteVersion>> {
    let mut out = Vec::new();
    let mut marker: Option<(String, String)> = start.map(|k| (k, String::new()));
    loop {
        let mut query: Vec<(&str, String)> =
            vec![("versions", String::new()), ("prefix", prefix.to_string())];
        if let Some((k, v)) = &marker {
            query.push(("key-marker", k.clone()));
            if !v.is_empty() {
                query.push(("version-id-marker", v.clone()));
            }
        }
        // The bucket's own path, without the trailing slash the base URL
        // has (servers canonicalize `/bucket/` as `/bucket`).
        let mut base = target.bucket.base_url().clone();
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        let url = sign_url(target, rusty_s3::Method::Get, base, &mut query);
        if std::env::var_os("WORMLOG_S3_DEBUG").is_some() {
            eprintln!("list versions: {url}");
        }
        let mut resp = agent()
            .get(url.as_str())
            .call()
            .map_err(|e| remote("list versions", prefix, e))?;
        if resp.status().as_u16() != 200 {
            let s = resp.status().as_u16();
            return Err(remote("list versions", prefix, status_text(s, resp)));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| remote("list versions", prefix, e))?;
        for (tag, delete_marker) in [("Version", false), ("DeleteMarker", true)] {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            let mut rest = body.as_str();
            while let Some(a) = rest.find(&open) {
                let Some(b) = rest[a..].find(&close) else {
                    break;
                };
                let item = &rest[a..a + b];
                out.push(RemoteVersion {
                    key: xml_unescape(between(item, "<Key>", "</Key>").unwrap_or("")),
                    version_id: between(item, "<VersionId>", "</VersionId>")
                        .unwrap_or("")
                        .to_string(),
                    is_latest: between(item, "<IsLatest>", "</IsLatest>") == Some("true"),
                    delete_marker,
                });
                rest = &rest[a + b..];
            }
        }
        if between(&body, "<IsTruncated>", "</IsTruncated>") == Some("true") {
            let k = between(&body, "<NextKeyMarker>", "</NextKeyMarker>").unwrap_or("");
            let v = between(&body, "<NextVersionIdMarker>", "</NextVersionIdMarker>").unwrap_or("");
            let next = Some((xml_unescape(k), v.to_string()));
            // A server that says "more" without moving on would keep us
            // here for ever.
            if next == marker || k.is_empty() {
                return Err(remote(
                    "list versions",
                    prefix,
                    "the listing says it is truncated but does not move on",
                ));
            }
            marker = next;
        } else {
            return Ok(out);
        }
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Streams one version of an object into `out`; returns its SHA-256 and length.
fn download(
    target: &S3Target,
    key: &str,
    version_id: &str,
    out: &mut dyn Write,
) -> Result<(Hash, u64)> {
    let mut action = target.bucket.get_object(Some(&target.credentials), key);
    action
        .query_mut()
        .insert("versionId", version_id.to_string());
    let url = action.sign(SIGN_FOR);
    let mut resp = agent()
        .get(url.as_str())
        .call()
        .map_err(|e| remote("GET", key, e))?;
    if resp.status().as_u16() != 200 {
        let s = resp.status().as_u16();
        return Err(remote("GET", key, status_text(s, resp)));
    }
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| remote("GET", key, e))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| remote("GET", key, e))?;
        total += n as u64;
    }
    Ok((Hash::from_bytes(sha.finalize().into()), total))
}

fn download_sha(target: &S3Target, key: &str, version_id: &str) -> Result<(Hash, u64)> {
    download(target, key, version_id, &mut std::io::sink())
}

/// What `verify_remote` found.
#[derive(Debug, Clone, Default)]
pub struct RemoteReport {
    /// Sealed segment files checked, and the seqs they hold.
    pub segments: u64,
    /// Seq of the first record of the first sealed file.
    pub first_seq: u64,
    /// Seq of the last record of the last sealed file.
    pub last_seq: u64,
    /// Anchor objects found.
    pub anchors: u64,
    /// The longest of them (the anchor file at its latest length shipped).
    pub anchor: Option<RemoteVersion>,
    /// Keys with more than one version, or a delete marker: someone with
    /// write access put a version over a shipped one or hid it.
    pub shadowed: Vec<String>,
    /// With the log's record: segment or anchor objects it does not name,
    /// left out of the walk (anyone with write access could have put them).
    pub unrecorded: Vec<String>,
    /// The segment after the last sealed file that tail objects rebuild
    /// (the active segment when it was shipped), if any.
    pub tail_segment: Option<u64>,
    /// How many tail objects rebuild it.
    pub tail_objects: u64,
    /// The last record the tail objects hold: the newest record the copy
    /// holds, and its commit time.
    pub tail_last_seq: Option<u64>,
    /// That record's commit time (ns since 1970).
    pub tail_last_ns: Option<u64>,
    /// A segment whose tail objects were left out because the segment
    /// before was copied only in part (closed by a roll, its sealed file
    /// not shipped yet): the copy ends before it.
    pub tail_left_out: Option<u64>,
}

/// Verifies the copy under `target` alone: every sealed segment file it
/// holds (one downloaded at a time to a temporary file, checked as
/// `verify_file` checks one, and linked to the one before by seq and
/// hash), and, with the log's `wormlog.ship` record (`state_dir`), that
/// each recorded object is still the version recorded, with its bytes.
pub fn verify_remote(target: &S3Target, state_dir: Option<&Path>) -> Result<RemoteReport> {
    // A fresh private directory (0700, a random name): a predictable one
    // in a shared /tmp would let another user plant links in it.
    let tmp = tempfile::Builder::new()
        .prefix("wormlog-remote-")
        .tempdir()
        .map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    walk_remote(target, state_dir, tmp.path(), false).map(|(report, _)| report)
}

/// Brings the copy under `target` back into `dir`, which must be empty or
/// absent: every sealed file, checked and linked as `verify_remote` checks
/// them (with `state_dir`'s record, the versions recorded), the anchor file
/// at the longest length shipped, and the active segment: rebuilt from its
/// tail objects where they were shipped (format-spec.md §15.6), else an
/// empty one continuing the last sealed file's chain, as a writer leaves
/// one it rolled to just before a crash. The restored log opens, verifies
/// and takes appends.
pub fn restore(target: &S3Target, dir: &Path, state_dir: Option<&Path>) -> Result<RemoteReport> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(remote(
                    "restore",
                    dir.display(),
                    "the directory is not empty: restore only into a new one",
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        Err(e) => return Err(Error::io("list", dir, e)),
    }
    let (report, last) = walk_remote(target, state_dir, dir, true)?;
    // A version over a shipped object, or a delete marker hiding one,
    // could make the restored log silently shorter or another: refuse.
    if !report.shadowed.is_empty() {
        return Err(remote(
            "verify",
            target.url(),
            format!(
                "objects with versions or delete markers over what was shipped, so the copy is \
                 not restored: {}",
                report.shadowed.join(", ")
            ),
        ));
    }
    if last.is_none() && report.tail_segment.is_none() {
        return Err(remote(
            "restore",
            target.url(),
            "the bucket holds no sealed segment and no tail object",
        ));
    }
    if let Some(anchor) = report.anchor.as_ref() {
        let path = dir.join(ANCHOR_FILE);
        let mut f = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        let (sha, len) = download(target, &anchor.key, &anchor.version_id, &mut f)?;
        // Its name says its length; the record, where given, its bytes.
        let named: Option<u64> = anchor.key.rsplit('.').next().and_then(|l| l.parse().ok());
        let recorded = match state_dir {
            Some(d) => recorded_for(d, target)?
                .into_iter()
                .find(|o| o.key == anchor.key),
            None => None,
        };
        if named != Some(len) || recorded.is_some_and(|o| (o.sha256, o.bytes) != (sha, len)) {
            return Err(remote(
                "verify",
                &anchor.key,
                "the anchor object's bytes are not those its name or the record say",
            ));
        }
        f.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
    }
    // The active segment: rebuilt from its tail objects by the walk, or
    // an empty one continuing the last sealed file.
    if let (None, Some((n, head))) = (report.tail_segment, last) {
        let now = u64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(0);
        wormlog::ext::create_active_after(dir, n, head, now)?;
    }
    Ok(report)
}

/// What `compare_local` found.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// The copy checked alone, as `verify_remote` checks it.
    pub remote: RemoteReport,
    /// Local files whose bytes equal their shipped copy's.
    pub matching: u64,
    /// Local sealed files with no copy yet.
    pub unshipped: Vec<String>,
}

/// Compares the log in `dir` with its copy: the copy verifies with the
/// log's record (`verify_remote`), and each local file the record names
/// has the bytes its copy has (the anchor file, the shipped length of it).
/// Files retention dropped here are only in the copy, which is the point.
pub fn compare_local(dir: &Path, target: &S3Target) -> Result<Comparison> {
    let copy = verify_remote(target, Some(dir))?;
    let recorded = recorded_for(dir, target)?;
    let mut out = Comparison {
        remote: copy,
        ..Comparison::default()
    };
    let by_key: std::collections::HashMap<&str, &ShippedObject> =
        recorded.iter().map(|o| (o.key.as_str(), o)).collect();
    // The tiles too: a tile changed here after it was shipped is as much a
    // difference as a segment.
    let mut objects = to_ship(dir)?;
    // Every tile the record names, partial ones included, against the
    // bytes of the level file where it came from.
    let under = target.key("");
    for o in &recorded {
        let Some(name) = o.key.strip_prefix(&under) else {
            continue;
        };
        if let Some((level, n, width)) = wormlog::format::merkle::parse_tile_path(name) {
            let part = Part::Range {
                at: n * TILE_WIDTH * 32,
                len: width * 32,
            };
            objects.push((
                name.to_string(),
                dir.join(tree_file_name(level as usize)),
                part,
            ));
        }
    }
    for (name, path, part) in objects {
        let key = target.key(&name);
        let Some(o) = by_key.get(key.as_str()) else {
            if part == Part::Whole {
                out.unshipped.push(name);
            }
            continue;
        };
        let mut bytes = match part {
            Part::Whole | Part::Prefix(_) => {
                std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?
            }
            Part::Range { .. } => read_part(&path, part)?,
        };
        bytes.truncate(o.bytes as usize);
        let sha = Hash::from_bytes(Sha256::digest(&bytes).into());
        if (sha, bytes.len() as u64) != (o.sha256, o.bytes) {
            return Err(remote(
                "verify",
                path.display(),
                format!("differs from its copy {} version {}", o.key, o.version_id),
            ));
        }
        out.matching += 1;
    }
    // Anchor lengths shipped before the last are prefixes of the file too.
    let anchor_path = dir.join(ANCHOR_FILE);
    for o in recorded.iter().filter(|o| {
        o.key
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with(ANCHOR_FILE))
            && target.key(o.key.rsplit('/').next().unwrap_or("")) == o.key
    }) {
        let bytes = std::fs::read(&anchor_path).map_err(|e| Error::io("read", &anchor_path, e))?;
        let prefix = bytes.get(..o.bytes as usize).unwrap_or(&bytes);
        let sha = Hash::from_bytes(Sha256::digest(prefix).into());
        if (sha, prefix.len() as u64) != (o.sha256, o.bytes) {
            return Err(remote(
                "verify",
                anchor_path.display(),
                format!("differs from its copy {} version {}", o.key, o.version_id),
            ));
        }
    }
    Ok(out)
}

/// The walk `verify_remote` and `restore` share: lists the versions, checks
/// them against the record, and downloads each sealed file into `into`
/// (kept when `keep`) to check it and link it to the one before. Returns
/// the report and the last file's number and chain head. One linear pass
/// over the listing, grouped once by key (a prefix may hold hundreds of
/// thousands of objects: checkpoints every minute for a year).
fn walk_remote(
    target: &S3Target,
    state_dir: Option<&Path>,
    into: &Path,
    keep: bool,
) -> Result<(RemoteReport, Option<(u64, wormlog::format::ChainPos)>)> {
    let prefix = target.key("");
    let all = versions(target, &prefix)?;
    let recorded = match state_dir {
        Some(d) => recorded_for(d, target)?,
        None => Vec::new(),
    };
    let mut report = RemoteReport::default();
    let mut by_key: ByKey = std::collections::HashMap::new();
    for v in &all {
        by_key.entry(v.key.as_str()).or_default().push(v);
    }
    for (k, vs) in &by_key {
        if vs.len() > 1 || vs.iter().any(|v| v.delete_marker) {
            report.shadowed.push((*k).to_string());
        }
    }
    check_recorded(&recorded, &by_key, &mut report)?;
    let recorded_by_key: std::collections::HashMap<&str, &ShippedObject> =
        recorded.iter().map(|o| (o.key.as_str(), o)).collect();
    // With a record, exactly the versions it names: an object it does not
    // name (a segment "after" the last one shipped, say) may be anyone's,
    // since the chain has no key, and is only reported. Without a record,
    // the latest of each: what the bucket says, unauthenticated beyond the
    // chain (a checkpoint kept elsewhere vouches for it).
    let chosen = |v: &RemoteVersion| match recorded_by_key.get(v.key.as_str()) {
        Some(o) => o.version_id == v.version_id,
        None => state_dir.is_none() && v.is_latest,
    };
    if state_dir.is_some() {
        report.unrecorded = unrecorded_keys(target, &by_key, &recorded_by_key);
    }
    // Only keys the shipper writes: a sealed file's name right under the
    // prefix (a look-alike elsewhere is not part of the copy).
    let mut segments: Vec<(u64, &RemoteVersion)> = all
        .iter()
        .filter(|v| !v.delete_marker && chosen(v))
        .filter_map(|v| {
            let name = v.key.rsplit('/').next()?;
            let n = parse_sealed_file_name(name)?;
            (target.key(name) == v.key).then_some((n, v))
        })
        .collect();
    segments.sort_by_key(|(n, _)| *n);
    report.shadowed.sort();
    report.shadowed.dedup();
    let anchors: Vec<(u64, &RemoteVersion)> = all
        .iter()
        .filter(|v| !v.delete_marker && chosen(v))
        .filter_map(|v| {
            let name = v.key.rsplit('/').next()?;
            let len = name.strip_prefix(ANCHOR_FILE)?.strip_prefix('.')?;
            (target.key(name) == v.key).then_some(())?;
            Some((len.parse().ok()?, v))
        })
        .collect();
    report.anchors = anchors.len() as u64;
    report.anchor = anchors
        .iter()
        .max_by_key(|(len, _)| *len)
        .map(|(_, v)| (*v).clone());
    // The tail objects of the segment after the last sealed file (of the
    // first segment, where none is sealed) rebuild it; those of sealed
    // segments are superseded by their sealed files, and checked against
    // them.
    let tails =
        tail::tails_by_segment(target, all.iter().filter(|v| !v.delete_marker && chosen(v)));
    let fetch = Fetch {
        keep,
        recorded_by_key: &recorded_by_key,
        superseded: &tails,
    };
    let prev = fetch_segments(target, into, &fetch, &segments, &mut report)?;
    // Each segment after the last sealed file, in turn, from its tails:
    // a roll may have closed one that is not sealed yet.
    let mut link = prev;
    for (&segment, objects) in tails.range(prev.map_or(0, |(n, _)| n) + 1..) {
        if link.is_some_and(|(n, _)| segment != n + 1) {
            return Err(remote(
                "verify",
                &objects[0].1.key,
                format!("tail objects of segment {segment} skip a segment"),
            ));
        }
        match tail::fetch_tail(target, into, keep, segment, objects, link, &mut report)? {
            Some(head) => link = Some((segment, head)),
            None => break,
        }
    }
    Ok((report, prev))
}

/// A bucket's versions grouped by key.
type ByKey<'a> = std::collections::HashMap<&'a str, Vec<&'a RemoteVersion>>;

/// Every version the record names is still there (a later version over
/// it is reported as shadowing it).
fn check_recorded(
    recorded: &[ShippedObject],
    by_key: &ByKey<'_>,
    report: &mut RemoteReport,
) -> Result<()> {
    for o in recorded {
        let v = by_key
            .get(o.key.as_str())
            .into_iter()
            .flatten()
            .find(|v| v.version_id == o.version_id && !v.delete_marker)
            .ok_or_else(|| {
                remote(
                    "verify",
                    &o.key,
                    format!("shipped version {} is gone", o.version_id),
                )
            })?;
        if !v.is_latest {
            report.shadowed.push(o.key.clone());
        }
    }
    Ok(())
}

/// Objects the shipper would have written (sealed files, anchor lengths,
/// tiles) that the record does not name: anyone's, reported.
fn unrecorded_keys(
    target: &S3Target,
    by_key: &ByKey<'_>,
    recorded_by_key: &std::collections::HashMap<&str, &ShippedObject>,
) -> Vec<String> {
    let under = target.key("");
    let mut keys: Vec<String> = by_key
        .iter()
        .filter(|(k, vs)| {
            !recorded_by_key.contains_key(*k)
                && vs.iter().any(|v| !v.delete_marker)
                && (k.rsplit('/').next().is_some_and(|n| {
                    parse_sealed_file_name(n).is_some() || n.starts_with(ANCHOR_FILE)
                }) || k
                    .strip_prefix(&under)
                    .and_then(wormlog::format::merkle::parse_tile_path)
                    .is_some()
                    || k.strip_prefix(&under)
                        .and_then(tail::parse_tail_name)
                        .is_some())
        })
        .map(|(k, _)| (*k).to_string())
        .collect();
    keys.sort();
    keys
}

/// How `fetch_segments` takes the sealed files: kept (a restore) or not,
/// checked against the record where there is one, and against the tail
/// objects of the same segments.
struct Fetch<'a> {
    keep: bool,
    recorded_by_key: &'a std::collections::HashMap<&'a str, &'a ShippedObject>,
    superseded: &'a std::collections::BTreeMap<u64, Vec<(u64, &'a RemoteVersion)>>,
}

/// Downloads each chosen sealed file into `into`, checks it against the
/// record's checksum and alone (and any tail objects of its segment
/// against it), and links it to the one before; returns the last file's
/// number and chain head.
fn fetch_segments(
    target: &S3Target,
    into: &Path,
    fetch: &Fetch<'_>,
    segments: &[(u64, &RemoteVersion)],
    report: &mut RemoteReport,
) -> Result<Option<(u64, wormlog::format::ChainPos)>> {
    let (keep, recorded_by_key) = (fetch.keep, fetch.recorded_by_key);
    let mut prev: Option<(u64, wormlog::format::ChainPos)> = None;
    for (n, v) in segments {
        let name = v.key.rsplit('/').next().unwrap_or(&v.key);
        let path = into.join(name);
        let mut f = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        let (sha, len) = download(target, &v.key, &v.version_id, &mut f)?;
        if keep {
            f.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
        }
        drop(f);
        if let Some(o) = recorded_by_key.get(v.key.as_str()) {
            if (o.sha256, o.bytes) != (sha, len) {
                let _ = std::fs::remove_file(&path);
                return Err(remote(
                    "verify",
                    &v.key,
                    "the bytes differ from those shipped (checksum)",
                ));
            }
        }
        let r = verify_file(&path);
        let r = match (r, fetch.superseded.get(n)) {
            (Ok(r), Some(tails)) => {
                tail::check_superseded(target, into, *n, tails, &path).map(|()| r)
            }
            (r, _) => r,
        };
        if !keep || r.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let r = r?;
        if let Some((pn, head)) = prev {
            if pn + 1 != *n || r.first_seq != head.seq + 1 || r.start_hash != head.hash {
                return Err(remote(
                    "verify",
                    &v.key,
                    format!(
                        "does not continue segment {pn} (seq {}, or its hash)",
                        head.seq
                    ),
                ));
            }
        } else {
            report.first_seq = r.first_seq;
        }
        report.last_seq = r.head.seq;
        report.segments += 1;
        prev = Some((*n, r.head));
    }
    Ok(prev)
}

/// Deletes one version (what an attacker holding the shipper's credentials
/// would try); returns the HTTP status. Object Lock must refuse it.
pub fn try_delete_version(target: &S3Target, key: &str, version_id: &str) -> Result<u16> {
    let mut action = target.bucket.delete_object(Some(&target.credentials), key);
    action
        .query_mut()
        .insert("versionId", version_id.to_string());
    let url = action.sign(SIGN_FOR);
    let resp = agent()
        .delete(url.as_str())
        .call()
        .map_err(|e| remote("DELETE", key, e))?;
    Ok(resp.status().as_u16())
}

/// Deletes `key` without a version id: in a versioned bucket that only
/// puts a delete marker over it (hiding it from plain GETs and listings of
/// latest objects); returns the HTTP status. What hiding looks like, for
/// tests and drills.
pub fn hide(target: &S3Target, key: &str) -> Result<u16> {
    let action = target.bucket.delete_object(Some(&target.credentials), key);
    let url = action.sign(SIGN_FOR);
    let resp = agent()
        .delete(url.as_str())
        .call()
        .map_err(|e| remote("DELETE", key, e))?;
    Ok(resp.status().as_u16())
}

/// Puts `bytes` at `key` with no condition (a new version over whatever is
/// there): what shadowing looks like, for tests and drills.
pub fn put_unconditional(target: &S3Target, key: &str, bytes: &[u8]) -> Result<u16> {
    let action = target.bucket.put_object(Some(&target.credentials), key);
    let url = action.sign(SIGN_FOR);
    let resp = agent()
        .put(url.as_str())
        .header("content-md5", B64.encode(md5(bytes)))
        .send(bytes)
        .map_err(|e| remote("PUT", key, e))?;
    Ok(resp.status().as_u16())
}

/// The objects `wormlog.ship` records for the log in `dir`.
pub fn shipped(dir: &Path) -> Result<Vec<ShippedObject>> {
    read_state(dir)
}

/// In the writer (`Options::shipping(Shipping::new(target))`): ships after
/// each seal, and retention waits for the copies.
impl wormlog::Shipper for S3Target {
    fn ship(
        &self,
        dir: &Path,
        policy: Option<&RetentionRule>,
        stop: &dyn Fn() -> bool,
    ) -> Result<usize> {
        let r = ship_observed(dir, self, policy, &mut |_| {
            if stop() {
                return Err(Error::Closed);
            }
            Ok(())
        })?;
        Ok(r.uploaded.len() + r.adopted.len())
    }

    fn shipped_through(&self, dir: &Path) -> Result<Option<(u64, u64)>> {
        tail::shipped_through(dir, self)
    }

    fn shipped_files(&self, dir: &Path) -> Result<Vec<String>> {
        Ok(recorded_for(dir, self)?
            .into_iter()
            .filter_map(|o| {
                let name = o.key.rsplit('/').next()?.to_string();
                (o.key == self.key(&name)).then_some(name)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use wormlog::format::{
        anchor_genesis, encode_anchor_header, AnchorEntry, DroppedSegment, Hash, ANCHOR_HEADER_LEN,
    };

    #[test]
    fn an_anchor_entry_being_appended_is_left_out_of_the_shipped_length() {
        let id = [5u8; 16];
        let entry = |n: u64, prev: Hash| AnchorEntry {
            time_ns: 1_000 + n,
            first_seq: 10 * n,
            prev_hash: Hash::from_bytes([n as u8; 32]),
            prev_entry_hash: prev,
            dropped: vec![DroppedSegment {
                segment: n,
                first_seq: 10 * n - 9,
                last_seq: 10 * n - 1,
                last_hash: Hash::from_bytes([n as u8; 32]),
            }],
            ext: None,
        };
        let first = entry(1, anchor_genesis(&id));
        let second = entry(2, first.hash()).encode();
        let mut file = encode_anchor_header(&id).to_vec();
        assert_eq!(super::whole_entries_len(&file), Some(ANCHOR_HEADER_LEN));
        file.extend_from_slice(&first.encode());
        let whole = file.len();
        // Every cut of the next entry, as a reader racing the writer sees.
        for cut in 0..second.len() {
            let mut torn = file.clone();
            torn.extend_from_slice(&second[..cut]);
            assert_eq!(super::whole_entries_len(&torn), Some(whole), "cut at {cut}");
        }
        file.extend_from_slice(&second);
        assert_eq!(super::whole_entries_len(&file), Some(file.len()));
        // A header still being written is nothing to ship.
        for cut in 0..ANCHOR_HEADER_LEN {
            assert_eq!(super::whole_entries_len(&file[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn md5_matches_rfc_1321_vectors() {
        let hex = |b: [u8; 16]| wormlog::format::hex(b);
        assert_eq!(hex(super::md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(super::md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(super::md5(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }
}
