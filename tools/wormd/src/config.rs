//! The config file (`wormd.toml`, README "wormd: configuration"): the
//! listeners, the logs (one directory each) and the tokens that may use
//! them. Read and checked whole before anything opens: a mistake is an
//! operator's (exit 2) and names the file and the entry.

use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config file that cannot be used, with what to do about it.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a token may do on the logs it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Append records (HTTP, OTLP).
    Append,
    /// Read records, proofs, tiles, stat; start a verify.
    Read,
    /// Metrics, and everything `read` may.
    Admin,
}

/// The whole file, as written (paths still relative to it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: Server,
    #[serde(default)]
    syslog: Option<Route>,
    #[serde(default)]
    otlp: Option<Route>,
    #[serde(default, rename = "log")]
    logs: Vec<LogConfig>,
    #[serde(default, rename = "token")]
    tokens: Vec<TokenConfig>,
}

/// `[server]`: listeners and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// The HTTP API, OTLP and tiles listener.
    pub http: Option<SocketAddr>,
    /// syslog over TCP (RFC 6587 framing; RFC 5425 with `tls`).
    pub syslog_tcp: Option<SocketAddr>,
    /// Certificate chain (PEM) for every listener; required for any
    /// listener not on loopback.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Requests waiting on one log before the next gets 429.
    #[serde(default = "default_queue_depth")]
    pub queue_depth: usize,
    /// Largest request body (HTTP, OTLP) in bytes; larger is 413.
    #[serde(default = "default_body_bytes_max")]
    pub body_bytes_max: usize,
    /// Largest syslog message in bytes; a frame announcing more closes its
    /// connection (the stream cannot be re-synchronised).
    #[serde(default = "default_syslog_bytes_max")]
    pub syslog_message_bytes_max: usize,
    /// Connections open at once, all listeners together.
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    /// A connection that has not sent a request's headers (or a TLS
    /// handshake) in this many seconds is closed (slowloris).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// A request body that has not arrived whole this many seconds after
    /// its headers gets 408 and its connection closed.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// Records in one JSON-lines request; more is 413 (a body of many
    /// tiny lines would otherwise cost far more memory than its bytes).
    #[serde(default = "default_batch_records_max")]
    pub batch_records_max: usize,
    /// Streamed reads at once (each holds a blocking worker while its
    /// client reads); past it a read gets 503.
    #[serde(default = "default_reads_max")]
    pub reads_max: usize,
    /// Verifications running at once, all logs; past it 429.
    #[serde(default = "default_verify_jobs_max")]
    pub verify_jobs_max: usize,
    /// The engine's shared background workers, for every log together.
    #[serde(default = "default_background_threads")]
    pub background_threads: usize,
}

fn default_queue_depth() -> usize {
    256
}
fn default_body_bytes_max() -> usize {
    16 << 20
}
fn default_syslog_bytes_max() -> usize {
    64 << 10
}
fn default_connections_max() -> usize {
    4096
}
fn default_header_timeout() -> u64 {
    10
}
fn default_verify_jobs_max() -> usize {
    2
}
fn default_reads_max() -> usize {
    128
}
fn default_body_timeout() -> u64 {
    30
}
fn default_batch_records_max() -> usize {
    10_000
}
fn default_background_threads() -> usize {
    wormlog_threads_default()
}
fn wormlog_threads_default() -> usize {
    8
}

impl Default for Server {
    fn default() -> Server {
        Server {
            http: None,
            syslog_tcp: None,
            tls_cert: None,
            tls_key: None,
            queue_depth: default_queue_depth(),
            body_bytes_max: default_body_bytes_max(),
            syslog_message_bytes_max: default_syslog_bytes_max(),
            connections_max: default_connections_max(),
            header_timeout_secs: default_header_timeout(),
            body_timeout_secs: default_body_timeout(),
            batch_records_max: default_batch_records_max(),
            reads_max: default_reads_max(),
            verify_jobs_max: default_verify_jobs_max(),
            background_threads: default_background_threads(),
        }
    }
}

impl Server {
    /// How long a connection may take to send its headers.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// How long a request body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// Limits of 0 would refuse every request or connection, which no one
    /// means: a mistake to name, not to run with.
    fn check(&self) -> Result<(), String> {
        let limits = [
            ("queue_depth", self.queue_depth),
            ("body_bytes_max", self.body_bytes_max),
            ("syslog_message_bytes_max", self.syslog_message_bytes_max),
            ("connections_max", self.connections_max),
            ("header_timeout_secs", self.header_timeout_secs as usize),
            ("body_timeout_secs", self.body_timeout_secs as usize),
            ("batch_records_max", self.batch_records_max),
            ("reads_max", self.reads_max),
            ("verify_jobs_max", self.verify_jobs_max),
            ("background_threads", self.background_threads),
        ];
        for (key, v) in limits {
            if v == 0 {
                return Err(format!(
                    "[server] {key} = 0 would refuse everything: give at least 1"
                ));
            }
        }
        Ok(())
    }
}

/// `[syslog]` and `[otlp]`: which log a protocol without a log name in
/// its requests writes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A `[[log]]`'s name.
    pub log: String,
}

/// How a log acknowledges (the engine's `Durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityName {
    /// After an fdatasync covers the record.
    #[default]
    Sync,
    /// Written to the OS; fdatasync every `batch_delay_ms`.
    Batched,
    /// In the log's buffer; fdatasync on roll and close.
    Buffered,
}

/// `[[log]]`: one log directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The name in URLs (`/v1/logs/NAME/...`): `[a-z0-9_-]`, 1 to 64.
    pub name: String,
    /// Its directory (relative: to the config file's directory).
    pub dir: PathBuf,
    /// When an append is acknowledged.
    #[serde(default)]
    pub durability: DurabilityName,
    /// Batched durability's fdatasync delay.
    #[serde(default = "default_batch_delay")]
    pub batch_delay_ms: u64,
    /// A segment rolls (and is sealed) past this many bytes.
    pub segment_bytes_max: Option<u64>,
    /// Retention: whole sealed segments older than this are dropped
    /// (`90d`, `12h`, as humantime reads them).
    pub retention_max_age: Option<String>,
    /// The log's checkpoint key (wormctl keygen's private key file): signs
    /// the served `/checkpoint`; with `proofs`, every receipt's proof.
    pub checkpoint_key: Option<PathBuf>,
    /// Receipts carry a C2SP tlog-proof (needs `checkpoint_key`).
    #[serde(default)]
    pub proofs: bool,
    /// When rolled segments are compressed: `background` (default),
    /// `inline`, `manual`.
    #[serde(default)]
    pub sealing: SealingName,
    /// Ship sealed segments and the unsealed tail to this S3 bucket
    /// (`s3://BUCKET/PREFIX`, Object Lock on; AWS credentials from the
    /// environment or profile, as wormctl ship).
    pub ship_to: Option<String>,
    /// How long each shipped object is locked (`400d`): needed unless
    /// `retention_max_age` gives the log a policy to lock by.
    pub ship_retain_for: Option<String>,
    /// How often the tail is shipped, in seconds.
    #[serde(default = "default_ship_every")]
    pub ship_every_secs: u64,
    /// Sign the head this often (with `checkpoint_key`) and append each
    /// note to `checkpoint_file`.
    pub checkpoint_every_secs: Option<u64>,
    /// Where automatic checkpoints go (default: NAME.checkpoints beside
    /// the config).
    pub checkpoint_file: Option<PathBuf>,
    /// Witnesses that cosign each automatic checkpoint (C2SP
    /// tlog-witness).
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
}

/// One witness: its URL and its cosigning key file (`wormctl witness
/// keygen`'s `.pub`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// `http://host:port`.
    pub url: String,
    /// Its public key file.
    pub key: PathBuf,
}

/// `[[log]] sealing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SealingName {
    /// A background worker seals each rolled segment.
    #[default]
    Background,
    /// The writer seals as it rolls.
    Inline,
    /// Only on request.
    Manual,
}

fn default_ship_every() -> u64 {
    5
}

fn default_batch_delay() -> u64 {
    5
}

/// `[[token]]`: who may do what. The token itself is never stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it: named in access records and the server's own log.
    pub principal: String,
    /// SHA-256 of the token, 64 lowercase hex digits (`wormd token`).
    pub sha256: String,
    /// Log names, or `"*"` for every log.
    pub logs: Vec<String>,
    /// What it may do on them.
    pub scopes: Vec<Scope>,
}

/// The config, checked: paths absolute, names unique, references resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listeners and limits.
    pub server: Server,
    /// Where syslog messages go.
    pub syslog_log: Option<String>,
    /// Where OTLP log records go.
    pub otlp_log: Option<String>,
    /// The logs, in file order.
    pub logs: Vec<LogConfig>,
    /// The tokens.
    pub tokens: Vec<TokenConfig>,
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{}: {e} (wormd init DIR writes a config to start from)",
                path.display()
            ))
        })?;
        Config::parse(path, &text)
    }

    /// Checks `text`, read from `path` (relative paths are under its
    /// directory).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let at = |m: String| ConfigError(format!("{}: {m}", path.display()));
        let file: File = toml::from_str(text).map_err(|e| at(e.to_string()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let mut cfg = Config {
            server: file.server,
            syslog_log: file.syslog.map(|r| r.log),
            otlp_log: file.otlp.map(|r| r.log),
            logs: file.logs,
            tokens: file.tokens,
        };
        for l in &mut cfg.logs {
            l.dir = base.join(&l.dir);
            l.checkpoint_key = l.checkpoint_key.as_ref().map(|k| base.join(k));
            let file = l
                .checkpoint_file
                .clone()
                .unwrap_or_else(|| format!("{}.checkpoints", l.name).into());
            l.checkpoint_file = Some(base.join(file));
            for w in &mut l.witnesses {
                w.key = base.join(&w.key);
            }
        }
        let s = &mut cfg.server;
        s.tls_cert = s.tls_cert.as_ref().map(|p| base.join(p));
        s.tls_key = s.tls_key.as_ref().map(|p| base.join(p));
        cfg.check().map_err(at)?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        self.server.check()?;
        if self.logs.is_empty() {
            return Err("no [[log]]: name at least one log".into());
        }
        let mut names = HashSet::new();
        for l in &self.logs {
            check_name(&l.name)?;
            if !names.insert(l.name.as_str()) {
                return Err(format!("log {:?} is named twice", l.name));
            }
            if l.proofs && l.checkpoint_key.is_none() {
                return Err(format!(
                    "log {:?}: proofs = true needs checkpoint_key (wormctl keygen NAME)",
                    l.name
                ));
            }
            if (l.checkpoint_every_secs.is_some() || !l.witnesses.is_empty())
                && l.checkpoint_key.is_none()
            {
                return Err(format!(
                    "log {:?}: checkpoint_every_secs and witnesses need checkpoint_key",
                    l.name
                ));
            }
            if !l.witnesses.is_empty() && l.checkpoint_every_secs.is_none() {
                return Err(format!(
                    "log {:?}: witnesses cosign automatic checkpoints: set checkpoint_every_secs",
                    l.name
                ));
            }
            if let Some(url) = &l.ship_to {
                if !url.starts_with("s3://") {
                    return Err(format!(
                        "log {:?}: ship_to {url:?}: expected s3://BUCKET[/PREFIX]",
                        l.name
                    ));
                }
                if l.ship_retain_for.is_none() && l.retention_max_age.is_none() {
                    return Err(format!(
                        "log {:?}: ship_to needs a lock period: set ship_retain_for (\"400d\") or retention_max_age",
                        l.name
                    ));
                }
            }
            if let Some(t) = &l.ship_retain_for {
                humantime::parse_duration(t)
                    .map_err(|e| format!("log {:?}: ship_retain_for {t:?}: {e}", l.name))?;
            }
            if let Some(age) = &l.retention_max_age {
                humantime::parse_duration(age)
                    .map_err(|e| format!("log {:?}: retention_max_age {age:?}: {e}", l.name))?;
            }
        }
        for (what, route) in [("[syslog]", &self.syslog_log), ("[otlp]", &self.otlp_log)] {
            if let Some(name) = route {
                if !names.contains(name.as_str()) {
                    return Err(format!("{what} log = {name:?}: no [[log]] has that name"));
                }
            }
        }
        self.check_places()?;
        let mut hashes = HashSet::new();
        for t in &self.tokens {
            check_token(t, &names)?;
            if !hashes.insert(t.sha256.as_str()) {
                return Err(format!(
                    "token {:?}: its sha256 is another [[token]]'s too; one token, one principal",
                    t.principal
                ));
            }
        }
        self.check_tls()
    }

    /// Directories and files the logs use: one directory per log (however
    /// spelled), no file where a directory goes, a checkpoint file whose
    /// directory exists; listeners apart; syslog with somewhere to go.
    fn check_places(&self) -> Result<(), String> {
        let mut dirs: Vec<(PathBuf, &str)> = Vec::new();
        for l in &self.logs {
            let d = same_place(&l.dir);
            if let Some((_, other)) = dirs.iter().find(|(p, _)| *p == d) {
                return Err(format!(
                    "logs {other:?} and {:?} name one directory",
                    l.name
                ));
            }
            // A log inside another's directory is a foreign file there:
            // the outer log's verify would not check it.
            if let Some((_, other)) = dirs
                .iter()
                .find(|(p, _)| d.starts_with(p) || p.starts_with(&d))
            {
                return Err(format!(
                    "logs {other:?} and {:?}: one's directory is inside the other's",
                    l.name
                ));
            }
            if l.dir.exists() && !l.dir.is_dir() {
                return Err(format!(
                    "log {:?}: {} is not a directory",
                    l.name,
                    l.dir.display()
                ));
            }
            if let (Some(_), Some(f)) = (l.checkpoint_every_secs, &l.checkpoint_file) {
                let parent = f.parent().filter(|p| !p.as_os_str().is_empty());
                if parent.is_some_and(|p| !p.is_dir()) || f.is_dir() {
                    return Err(format!(
                        "log {:?}: checkpoint_file {}: its directory does not exist, or it is one",
                        l.name,
                        f.display()
                    ));
                }
            }
            dirs.push((d, &l.name));
        }
        let files: Vec<(PathBuf, &str)> = self
            .logs
            .iter()
            .filter(|l| l.checkpoint_every_secs.is_some())
            .filter_map(|l| Some((same_place(l.checkpoint_file.as_deref()?), l.name.as_str())))
            .collect();
        for (i, (f, name)) in files.iter().enumerate() {
            if let Some((_, other)) = files[..i].iter().find(|(g, _)| g == f) {
                return Err(format!(
                    "logs {other:?} and {name:?} write checkpoints to one checkpoint_file"
                ));
            }
        }
        let s = &self.server;
        if s.http.is_some() && s.http == s.syslog_tcp {
            return Err("[server] http and syslog_tcp are one address".into());
        }
        if s.syslog_tcp.is_some() && self.syslog_log.is_none() {
            return Err(
                "[server] syslog_tcp is set but no [syslog] log = NAME says where messages go"
                    .into(),
            );
        }
        Ok(())
    }

    /// TLS is off only where every listener is on loopback (README:
    /// security notes); a certificate without its key is a mistake.
    pub fn check_tls(&self) -> Result<(), String> {
        let s = &self.server;
        match (&s.tls_cert, &s.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err("[server] tls_cert and tls_key go together".into())
            }
            (Some(_), Some(_)) => return Ok(()),
            (None, None) => {}
        }
        for (what, addr) in [("http", s.http), ("syslog_tcp", s.syslog_tcp)] {
            if let Some(a) = addr {
                if !a.ip().is_loopback() {
                    return Err(format!(
                        "[server] {what} = {a} is not on loopback and TLS is off: \
                         set tls_cert and tls_key (TLS is optional on loopback only)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `p` as one spelling: absolute, `.` and `..` resolved, and through any
/// symlinks where it exists.
fn same_place(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "log name {name:?}: use 1 to 64 of a-z, 0-9, '-' and '_' (it is part of URLs)"
        ))
    }
}

fn check_token(t: &TokenConfig, names: &HashSet<&str>) -> Result<(), String> {
    let who = &t.principal;
    if who.is_empty() || who.len() > 128 || who.chars().any(char::is_control) {
        return Err(format!(
            "token principal {who:?}: 1 to 128 printable characters"
        ));
    }
    let hex_ok = t.sha256.len() == 64
        && t.sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex_ok {
        return Err(format!(
            "token {who:?}: sha256 must be 64 lowercase hex digits (wormd token prints one)"
        ));
    }
    if t.scopes.is_empty() {
        return Err(format!("token {who:?}: no scopes (append, read, admin)"));
    }
    for l in &t.logs {
        if l != "*" && !names.contains(l.as_str()) {
            return Err(format!("token {who:?}: log {l:?} is not a [[log]]"));
        }
    }
    Ok(())
}

/// The config `wormd init` writes: one log `audit` under the directory,
/// listeners on loopback (TLS off: loopback only), one admin token.
pub fn initial(token_sha256: &str, key_file: &str) -> String {
    format!(
        r#"# wormd's config (README: "wormd: configuration"). Paths are relative to
# this file's directory.

[server]
# Loopback only while TLS is off: set tls_cert and tls_key (PEM files)
# before listening anywhere else.
http = "127.0.0.1:7070"
syslog_tcp = "127.0.0.1:5140"
queue_depth = 256
body_bytes_max = 16777216

# Where syslog messages and OTLP log records go.
[syslog]
log = "audit"

[otlp]
log = "audit"

[[log]]
name = "audit"
dir = "audit"
durability = "sync"
# Signs the served /checkpoint (tlog-tiles); proofs = true puts a
# C2SP tlog-proof in every receipt.
checkpoint_key = "{key_file}"
proofs = false

[[token]]
principal = "admin"
sha256 = "{token_sha256}"
logs = ["*"]
scopes = ["append", "read", "admin"]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/wormd/wormd.toml"), text)
    }

    #[test]
    fn initial_config_parses_and_resolves_paths_under_its_directory() {
        let cfg = parse(&initial(&"a".repeat(64), "audit.key")).unwrap();
        assert_eq!(cfg.logs[0].dir, Path::new("/etc/wormd/audit"));
        assert_eq!(cfg.syslog_log.as_deref(), Some("audit"));
        assert_eq!(
            cfg.logs[0].checkpoint_key.as_deref(),
            Some(Path::new("/etc/wormd/audit.key"))
        );
    }

    #[test]
    fn a_listener_off_loopback_without_tls_is_refused() {
        let text = initial(&"a".repeat(64), "k").replace("127.0.0.1:7070", "0.0.0.0:7070");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("not on loopback"), "{e}");
    }

    #[test]
    fn a_token_naming_an_unknown_log_or_a_bad_hash_is_refused() {
        let base = initial(&"a".repeat(64), "k");
        let e = parse(&base.replace("logs = [\"*\"]", "logs = [\"nope\"]")).unwrap_err();
        assert!(e.0.contains("\"nope\" is not a [[log]]"), "{e}");
        let e = parse(&base.replace(&"a".repeat(64), "xyz")).unwrap_err();
        assert!(e.0.contains("64 lowercase hex"), "{e}");
    }

    #[test]
    fn zero_limits_and_a_token_hash_given_twice_are_refused() {
        let base = initial(&"a".repeat(64), "k");
        let e = parse(&base.replace(
            "queue_depth = 256",
            "queue_depth = 256\nconnections_max = 0",
        ))
        .unwrap_err();
        assert!(e.0.contains("connections_max = 0"), "{e}");
        let e =
            parse(&base.replace("body_bytes_max = 16777216", "body_bytes_max = 0")).unwrap_err();
        assert!(e.0.contains("body_bytes_max = 0"), "{e}");
        let twice = format!(
            "{base}\n[[token]]\nprincipal = \"other\"\nsha256 = \"{}\"\nlogs = [\"*\"]\nscopes = [\"read\"]\n",
            "a".repeat(64)
        );
        assert!(parse(&twice).unwrap_err().0.contains("another [[token]]'s"));
    }

    #[test]
    fn one_directory_for_two_logs_and_listeners_on_one_address_are_refused() {
        let base = initial(&"a".repeat(64), "k");
        let twice = format!("{base}\n[[log]]\nname = \"b\"\ndir = \"./audit/\"\n");
        assert!(parse(&twice).unwrap_err().0.contains("name one directory"));
        let inside = format!("{base}\n[[log]]\nname = \"b\"\ndir = \"audit/sub\"\n");
        assert!(parse(&inside).unwrap_err().0.contains("inside the other's"));
        let auto = "\ncheckpoint_every_secs = 1\ncheckpoint_file = \"/tmp/one.cp\"\n";
        let shared = format!(
            "{}\n[[log]]\nname = \"b\"\ndir = \"b\"\ncheckpoint_key = \"k\"{auto}",
            base.replace("proofs = false", &format!("proofs = false{auto}"))
        );
        assert!(
            parse(&shared)
                .unwrap_err()
                .0
                .contains("one checkpoint_file"),
            "{shared}"
        );
        let one_addr = base.replace("127.0.0.1:5140", "127.0.0.1:7070");
        assert!(parse(&one_addr).unwrap_err().0.contains("one address"));
        let nowhere = base.replace("[syslog]\nlog = \"audit\"\n", "");
        assert!(parse(&nowhere).unwrap_err().0.contains("no [syslog]"));
        let lost = base.replace(
            "proofs = false",
            "proofs = false\ncheckpoint_every_secs = 1\ncheckpoint_file = \"no/such/dir/cps\"",
        );
        assert!(parse(&lost).unwrap_err().0.contains("checkpoint_file"));
    }

    #[test]
    fn unknown_keys_and_duplicate_logs_are_refused() {
        let base = initial(&"a".repeat(64), "k");
        assert!(parse(&base.replace("queue_depth", "queue_dept")).is_err());
        let twice = format!("{base}\n[[log]]\nname = \"audit\"\ndir = \"b\"\n");
        assert!(parse(&twice).unwrap_err().0.contains("named twice"));
    }
}
