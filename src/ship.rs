//! Off-host copies (feature `s3`; format-spec.md §15): every sealed
//! segment file and every length the anchor file reached, uploaded
//! unchanged to an S3 bucket under Object Lock, each PUT with its SHA-256
//! (`x-amz-checksum-sha256`) and `If-None-Match: *` (nothing overwritten),
//! and each shipped object's version id recorded durably in the log
//! directory's `wormlog.ship` before the next. A crash at any step resumes:
//! an object that reached the bucket but not the record is found by its
//! checksum and recorded, never uploaded twice. `verify_remote` checks the
//! bucket alone, one segment at a time, and reports versions that shadow
//! or delete markers that hide a shipped object.

use crate::error::{Error, Result};
use crate::format::names::{parse_sealed_file_name, ANCHOR_FILE, SHIP_STATE_FILE};
use crate::format::{hex, Hash};
use crate::verify::verify_file;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Object Lock retention mode of shipped objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// No one, the root account included, can delete or shorten it.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can.
    Governance,
}

/// Where copies go: `s3://bucket/prefix`, an endpoint and credentials.
#[derive(Clone)]
pub struct S3Target {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    mode: LockMode,
    retain_until_ns: Option<u64>,
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
    /// `s3://bucket/prefix`, with the endpoint, region and credentials from
    /// the standard AWS environment: `AWS_ENDPOINT_URL` (default
    /// `https://s3.amazonaws.com`; path-style addressing, which AWS and
    /// S3-compatible servers all take), `AWS_REGION` (default `us-east-1`),
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub fn from_env(url: &str) -> Result<S3Target> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let endpoint = var("AWS_ENDPOINT_URL").unwrap_or_else(|| "https://s3.amazonaws.com".into());
        let region = var("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let (key, secret) = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(k), Some(s)) => (k, s),
            _ => {
                return Err(remote(
                    "configure",
                    url,
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set",
                ))
            }
        };
        let credentials = match var("AWS_SESSION_TOKEN") {
            Some(t) => Credentials::new_with_token(key, secret, t),
            None => Credentials::new(key, secret),
        };
        S3Target::new(url, &endpoint, &region, credentials)
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
        Ok(S3Target {
            bucket,
            credentials,
            prefix,
            mode: LockMode::Compliance,
            retain_until_ns: None,
        })
    }

    /// The lock mode of new objects (default COMPLIANCE).
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// Lock new objects until this time (ns since the Unix epoch).
    pub fn retain_until(mut self, ns: u64) -> Self {
        self.retain_until_ns = Some(ns);
        self
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
}

const SIGN_FOR: Duration = Duration::from_secs(600);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

fn status_text(status: u16, mut resp: ureq::http::Response<ureq::Body>) -> String {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
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
    pub key: String,
    pub version_id: String,
    pub sha256: Hash,
    pub bytes: u64,
}

/// What `ship` did.
#[derive(Debug, Clone, Default)]
pub struct ShipReport {
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
        let parsed = (f.len() == 4)
            .then(|| {
                let sha: Hash = crate::format::unhex(f[2])?.try_into().ok()?;
                Some(ShippedObject {
                    key: f[0].to_string(),
                    version_id: f[1].to_string(),
                    sha256: sha,
                    bytes: f[3].parse().ok()?,
                })
            })
            .flatten();
        match parsed {
            Some(o) => out.push(o),
            None => {
                return Err(remote(
                    "read ship record",
                    path.display(),
                    format!("line {} is not `key version sha256 bytes`", n + 1),
                ))
            }
        }
    }
    Ok(out)
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
        "{} {} {} {}",
        o.key,
        o.version_id,
        hex(&o.sha256),
        o.bytes
    )
    .and_then(|()| f.sync_data())
    .map_err(|e| Error::io("write", &path, e))
}

/// What the log directory has to ship: its sealed files, oldest first,
/// and the anchor file at its current length (each length a new object,
/// `wormlog.anchor.<bytes>`: the file only grows).
fn to_ship(dir: &Path) -> Result<Vec<(String, PathBuf, Option<u64>)>> {
    let mut sealed = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let e = e.map_err(|e| Error::io("list", dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = parse_sealed_file_name(&name) {
            sealed.push((n, name, e.path()));
        }
    }
    sealed.sort();
    let mut out: Vec<(String, PathBuf, Option<u64>)> = sealed
        .into_iter()
        .map(|(_, name, p)| (name, p, None))
        .collect();
    let anchor = dir.join(ANCHOR_FILE);
    if let Ok(m) = std::fs::metadata(&anchor) {
        out.push((format!("{ANCHOR_FILE}.{}", m.len()), anchor, Some(m.len())));
    }
    Ok(out)
}

/// Uploads what the log in `dir` has not shipped yet (see the module docs).
pub fn ship(dir: &Path, target: &S3Target) -> Result<ShipReport> {
    let retain_until = target.retain_until_ns.ok_or_else(|| {
        remote(
            "ship",
            target.url(),
            "no retain-until date: give S3Target::retain_until",
        )
    })?;
    let until = jiff::Timestamp::from_nanosecond(i128::from(retain_until))
        .map_err(|e| remote("ship", target.url(), e))?
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    cut_torn_record(dir)?;
    let done = read_state(dir)?;
    let mut report = ShipReport::default();
    let agent = agent();
    for (name, path, len) in to_ship(dir)? {
        let key = target.key(&name);
        if done.iter().any(|o| o.key == key) {
            report.already += 1;
            continue;
        }
        let mut bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        if let Some(len) = len {
            bytes.truncate(len as usize);
        }
        let sha: Hash = Sha256::digest(&bytes).into();
        let sha_b64 = B64.encode(sha);
        let md5_b64 = B64.encode(md5(&bytes));
        let mode = match target.mode {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        };
        let mut action = target.bucket.put_object(Some(&target.credentials), &key);
        let h = action.headers_mut();
        h.insert("x-amz-object-lock-mode", mode);
        h.insert("x-amz-object-lock-retain-until-date", until.clone());
        h.insert("x-amz-checksum-sha256", sha_b64.clone());
        h.insert("content-md5", md5_b64.clone());
        h.insert("if-none-match", "*");
        let url = action.sign(SIGN_FOR);
        let resp = agent
            .put(url.as_str())
            .header("x-amz-object-lock-mode", mode)
            .header("x-amz-object-lock-retain-until-date", &until)
            .header("x-amz-checksum-sha256", &sha_b64)
            .header("content-md5", &md5_b64)
            .header("if-none-match", "*")
            .send(&bytes[..])
            .map_err(|e| remote("PUT", &key, e))?;
        let status = resp.status().as_u16();
        let object = match status {
            200 => {
                let version_id = resp
                    .headers()
                    .get("x-amz-version-id")
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty() && *v != "null")
                    .ok_or_else(|| {
                        remote(
                            "PUT",
                            &key,
                            "no version id: the bucket is not versioned (enable Object Lock)",
                        )
                    })?
                    .to_string();
                ShippedObject {
                    key: key.clone(),
                    version_id,
                    sha256: sha,
                    bytes: bytes.len() as u64,
                }
            }
            // There already: shipped by a run that crashed before its
            // record, if it is these bytes; anything else is not ours.
            412 => {
                let found = versions(target, &key)?
                    .into_iter()
                    .filter(|v| !v.delete_marker)
                    .find_map(|v| {
                        let got = download_sha(target, &key, &v.version_id).ok()?;
                        (got == (sha, bytes.len() as u64)).then_some(v.version_id)
                    })
                    .ok_or_else(|| {
                        remote(
                            "PUT",
                            &key,
                            "an object with other bytes is already at this key",
                        )
                    })?;
                let o = ShippedObject {
                    key: key.clone(),
                    version_id: found,
                    sha256: sha,
                    bytes: bytes.len() as u64,
                };
                record(dir, &o)?;
                report.adopted.push(o);
                continue;
            }
            s => return Err(remote("PUT", &key, status_text(s, resp))),
        };
        record(dir, &object)?;
        report.uploaded.push(object);
    }
    Ok(report)
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
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
}

/// Every version and delete marker under `prefix` (ListObjectVersions).
fn versions(target: &S3Target, prefix: &str) -> Result<Vec<RemoteVersion>> {
    let mut out = Vec::new();
    let mut marker: Option<(String, String)> = None;
    loop {
        let mut query: Vec<(&str, String)> =
            vec![("versions", String::new()), ("prefix", prefix.to_string())];
        if let Some((k, v)) = &marker {
            query.push(("key-marker", k.clone()));
            query.push(("version-id-marker", v.clone()));
        }
        // The bucket's own path, without the trailing slash the base URL
        // has (servers canonicalize `/bucket/` as `/bucket`).
        // rusty-s3 merges these into the signed query as a sorted list.
        query.sort();
        let mut base = target.bucket.base_url().clone();
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        let url = rusty_s3::signing::sign(
            &jiff::Timestamp::now(),
            rusty_s3::Method::Get,
            base,
            target.credentials.key(),
            target.credentials.secret(),
            target.credentials.token(),
            target.bucket.region(),
            SIGN_FOR.as_secs(),
            query.iter().map(|(k, v)| (*k, v.as_str())),
            std::iter::empty(),
        );
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
            marker = Some((xml_unescape(k), v.to_string()));
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
    Ok((sha.finalize().into(), total))
}

fn download_sha(target: &S3Target, key: &str, version_id: &str) -> Result<(Hash, u64)> {
    download(target, key, version_id, &mut std::io::sink())
}

/// What `verify_remote` found.
#[derive(Debug, Clone, Default)]
pub struct RemoteReport {
    /// Sealed segment files checked, and the seqs they hold.
    pub segments: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Anchor objects found.
    pub anchors: u64,
    /// Keys with more than one version, or a delete marker: someone with
    /// write access put a version over a shipped one or hid it.
    pub shadowed: Vec<String>,
}

/// Verifies the copy under `target` alone: every sealed segment file it
/// holds (one downloaded at a time to a temporary file, checked as
/// `verify_file` checks one, and linked to the one before by seq and
/// hash), and, with the log's `wormlog.ship` record (`state_dir`), that
/// each recorded object is still the version recorded, with its bytes.
pub fn verify_remote(target: &S3Target, state_dir: Option<&Path>) -> Result<RemoteReport> {
    let prefix = target.key("");
    let all = versions(target, &prefix)?;
    let recorded = match state_dir {
        Some(d) => read_state(d)?,
        None => Vec::new(),
    };
    let mut report = RemoteReport::default();
    let mut keys: Vec<&str> = all.iter().map(|v| v.key.as_str()).collect();
    keys.sort();
    keys.dedup();
    for k in &keys {
        let vs: Vec<&RemoteVersion> = all.iter().filter(|v| v.key == *k).collect();
        if vs.len() > 1 || vs.iter().any(|v| v.delete_marker) {
            report.shadowed.push((*k).to_string());
        }
    }
    for o in &recorded {
        let v = all
            .iter()
            .find(|v| v.key == o.key && v.version_id == o.version_id && !v.delete_marker)
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
    let mut segments: Vec<(u64, &RemoteVersion)> = all
        .iter()
        .filter(|v| !v.delete_marker)
        .filter_map(|v| {
            let name = v.key.rsplit('/').next()?;
            parse_sealed_file_name(name).map(|n| (n, v))
        })
        .collect();
    // The version recorded, where there is a record; else the latest.
    segments.retain(|(_, v)| match recorded.iter().find(|o| o.key == v.key) {
        Some(o) => o.version_id == v.version_id,
        None => v.is_latest,
    });
    segments.sort_by_key(|(n, _)| *n);
    report.shadowed.sort();
    report.shadowed.dedup();
    let tmp = std::env::temp_dir().join(format!(
        "wormlog-remote-{}-{}",
        std::process::id(),
        hex(&Sha256::digest(prefix.as_bytes())[..8])
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    let result = (|| {
        let mut prev: Option<(u64, crate::format::ChainPos)> = None;
        for (n, v) in &segments {
            let name = v.key.rsplit('/').next().unwrap_or(&v.key);
            let path = tmp.join(name);
            let mut f = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
            let (sha, len) = download(target, &v.key, &v.version_id, &mut f)?;
            drop(f);
            if let Some(o) = recorded.iter().find(|o| o.key == v.key) {
                if (o.sha256, o.bytes) != (sha, len) {
                    return Err(remote(
                        "verify",
                        &v.key,
                        "the bytes differ from those shipped (checksum)",
                    ));
                }
            }
            let r = verify_file(&path);
            let _ = std::fs::remove_file(&path);
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
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    report.anchors = all
        .iter()
        .filter(|v| {
            !v.delete_marker
                && v.key
                    .rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(ANCHOR_FILE))
        })
        .count() as u64;
    Ok(report)
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

#[cfg(test)]
mod tests {
    #[test]
    fn md5_matches_rfc_1321_vectors() {
        let hex = |b: [u8; 16]| crate::format::hex(&b);
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
