//! wormd: any service appends to a wormlog and gets a durable receipt, over
//! HTTP (JSON), syslog over TCP and OpenTelemetry (OTLP/HTTP); readers get
//! records, proofs and the C2SP tlog-tiles API. README "wormd" is the
//! user's guide; tools/wormd/openapi.yaml the HTTP reference.
//!
//!     wormd init DIR                      # DIR/wormd.toml, prints a token
//!     wormd --config DIR/wormd.toml       # run
//!     wormd check-config DIR/wormd.toml   # exit 2 naming the mistake
//!     wormd token                         # a new token and its hash
//!
//! Modules, lowest first (each uses only those above it): say, config,
//! auth, metrics, logs, syslog_msg, jobs, app, records, tiles, otlp, tls,
//! http, syslog.

#![deny(missing_docs)]

mod app;
mod auth;
mod config;
mod http;
mod jobs;
mod logs;
mod metrics;
mod otlp;
mod records;
mod say;
mod syslog;
mod syslog_msg;
mod tiles;
mod tls;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An operator's mistake: exit 2 (tampering is never wormd's to report;
/// `wormctl verify` does).
const UNUSABLE: u8 = 2;

/// Streamed reads at once, all logs: below tokio's 512 blocking workers,
/// which every other blocking step of every request also needs.
const READS_SERVER_MAX: usize = 384;

#[derive(Parser)]
#[command(
    name = "wormd",
    version,
    about = "wormlog server: HTTP, syslog and OTLP ingest; reads, proofs and tiles"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// The config file (wormd init DIR writes one).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen for HTTP here instead of the file's [server] http.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Listen for syslog over TCP here instead of the file's [server] syslog_tcp.
    #[arg(long = "syslog-tcp", value_name = "ADDR")]
    syslog_tcp: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Writes DIR/wormd.toml (one log `audit` under DIR, loopback
    /// listeners) and DIR/audit.key, and prints an admin token once.
    Init {
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Checks a config file: exit 0, or 2 naming the mistake.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Prints a new token and the sha256 line for its [[token]].
    Token,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Init { dir }) => init(&dir),
        Some(Command::CheckConfig { file }) => check(&file),
        Some(Command::Token) => token(),
        None => match cli.config {
            Some(path) => run(&path, cli.http, cli.syslog_tcp),
            None => Err("no --config FILE (wormd init DIR writes one)".to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wormd: {e}");
            ExitCode::from(UNUSABLE)
        }
    }
}

fn init(dir: &Path) -> Result<(), String> {
    let cfg_path = dir.join("wormd.toml");
    if cfg_path.exists() {
        return Err(format!("{} exists; not overwriting it", cfg_path.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key = wormlog::CheckpointKey::generate("wormd/audit").map_err(|e| e.to_string())?;
    let key_path = dir.join("audit.key");
    write_private(&key_path, &key.to_private_string())?;
    let vkey_path = dir.join("audit.pub");
    std::fs::write(&vkey_path, format!("{}\n", key.public().to_vkey_string()))
        .map_err(|e| format!("{}: {e}", vkey_path.display()))?;
    let token = auth::generate().map_err(|e| e.to_string())?;
    write_private(
        &cfg_path,
        &config::initial(&auth::hash(&token), "audit.key"),
    )?;
    eprintln!(
        "wrote {} (log `audit` in {}), {} and {}; the admin token (shown once; the config keeps only its hash):",
        cfg_path.display(),
        dir.join("audit").display(),
        key_path.display(),
        vkey_path.display()
    );
    println!("{token}");
    Ok(())
}

/// Writes a file only its owner reads (a key; a config naming tokens).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn check(file: &Path) -> Result<(), String> {
    let cfg = config::Config::load(file).map_err(|e| e.to_string())?;
    for l in &cfg.logs {
        if let Some(k) = &l.checkpoint_key {
            logs::load_key(l, k)?;
        }
        // Everything Log::open would refuse, refused now.
        logs::options(l, &cfg)?;
    }
    if let (Some(c), Some(k)) = (&cfg.server.tls_cert, &cfg.server.tls_key) {
        tls::acceptor(c, k)?;
    }
    println!(
        "{}: {} log(s), {} token(s); ok",
        file.display(),
        cfg.logs.len(),
        cfg.tokens.len()
    );
    Ok(())
}

fn token() -> Result<(), String> {
    let t = auth::generate().map_err(|e| e.to_string())?;
    println!("{t}");
    eprintln!("for its [[token]]: sha256 = \"{}\"", auth::hash(&t));
    Ok(())
}

fn run(
    path: &Path,
    http: Option<SocketAddr>,
    syslog_tcp: Option<SocketAddr>,
) -> Result<(), String> {
    let mut cfg = config::Config::load(path).map_err(|e| e.to_string())?;
    cfg.server.http = http.or(cfg.server.http);
    cfg.server.syslog_tcp = syslog_tcp.or(cfg.server.syslog_tcp);
    cfg.check_tls()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let tls = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(c), Some(k)) => Some(tls::acceptor(c, k)?),
        _ => None,
    };
    let started = Instant::now();
    let logs = logs::Logs::open(&cfg)?;
    let app = Arc::new(app::App {
        tokens: auth::Tokens::new(cfg.tokens.clone()),
        cfg,
        logs,
        metrics: metrics::Metrics::default(),
        jobs: jobs::Jobs::default(),
        stopping: Default::default(),
        reads: Arc::new(tokio::sync::Semaphore::new(READS_SERVER_MAX)),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(app.clone(), tls, started))?;
    // Reads still streaming end once their client goes (the connections
    // are closed by now) or at the stop flag; none may hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(10));
    match Arc::try_unwrap(app) {
        Ok(app) => app.logs.close(),
        Err(app) => {
            // A blocking step outlived the runtime: sync instead of close.
            for s in app.logs.all() {
                if let Err(e) = s.log.sync() {
                    say::error(
                        "log sync failed",
                        &[("log", &s.name), ("error", &e.to_string())],
                    );
                }
            }
        }
    }
    say::info("stopped", &[]);
    Ok(())
}

async fn serve(
    app: app::Shared,
    tls: Option<tokio_rustls::TlsAcceptor>,
    started: Instant,
) -> Result<(), String> {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let connections = Arc::new(tokio::sync::Semaphore::new(app.cfg.server.connections_max));
    let mut tasks = tokio::task::JoinSet::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(addr) = app.cfg.server.http {
        let l = bind(addr).await?;
        let at = l.local_addr().map_err(|e| e.to_string())?.to_string();
        say::info("listening", &[("http", &at), ("scheme", scheme)]);
        tasks.spawn(http::serve(
            app.clone(),
            l,
            tls.clone(),
            connections.clone(),
            stop.clone(),
            Duration::from_secs(30),
        ));
    }
    if let Some(addr) = app.cfg.server.syslog_tcp {
        let l = bind(addr).await?;
        let at = l.local_addr().map_err(|e| e.to_string())?.to_string();
        say::info(
            "listening",
            &[
                ("syslog_tcp", &at),
                ("tls", if tls.is_some() { "yes" } else { "no" }),
            ],
        );
        tasks.spawn(syslog::serve(
            app.clone(),
            l,
            tls.clone(),
            connections.clone(),
            stop.clone(),
        ));
    }
    if tasks.is_empty() {
        return Err("no listener: set [server] http or syslog_tcp (or --http)".into());
    }
    say::info(
        "ready",
        &[("startup_ms", &started.elapsed().as_millis().to_string())],
    );
    shutdown_signal().await;
    say::info(
        "stopping: no new connections; finishing requests in flight",
        &[],
    );
    app.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen on {addr}: {e}"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
