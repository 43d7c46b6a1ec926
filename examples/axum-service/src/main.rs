//! wormlog inside an axum service.
//!
//!     cargo run -p wormlog-axum-example -- /tmp/audit 127.0.0.1:3000
//!     curl -X POST localhost:3000/events -H 'content-type: application/json' \
//!          -d '{"actor":"alice","action":"login"}'
//!     curl 'localhost:3000/events?since_ns=0&limit=10'
//!
//! Each request's append is an `append_async` future: the handler awaits
//! the group commit without blocking a tokio worker, and requests arriving
//! together share one write and one fdatasync. Reads go through the
//! `*_async` calls. After an I/O failure the log is poisoned (it refuses
//! writes rather than acknowledge what may not be durable): the handler
//! that meets `Poisoned` reopens it, which runs recovery, and retries once.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::RwLock;
use wormlog::{Error, Log, Options};

/// The open log, replaced when a poisoned one is reopened.
#[derive(Clone)]
struct App {
    dir: PathBuf,
    log: Arc<RwLock<Arc<Log>>>,
}

#[derive(Serialize)]
struct Receipt {
    seq: u64,
    /// A string: JSON readers round integers above 2^53.
    time_ns: String,
    hash: String,
}

#[derive(Deserialize)]
struct Window {
    #[serde(default)]
    since_ns: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

fn fail(e: Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

impl App {
    /// Drops the poisoned log (if no one has yet) and opens it again.
    async fn reopen(&self, poisoned: &Arc<Log>) -> Result<(), Error> {
        let mut slot = self.log.write().await;
        if Arc::ptr_eq(&slot, poisoned) {
            let dir = self.dir.clone();
            // Opening runs recovery: blocking work, off the async workers.
            let fresh = tokio::task::spawn_blocking(move || Log::open(dir, Options::default()))
                .await
                .map_err(|e| Error::Poisoned {
                    cause: e.to_string(),
                })??;
            *slot = Arc::new(fresh);
        }
        Ok(())
    }
}

async fn append(
    State(app): State<App>,
    Json(event): Json<serde_json::Value>,
) -> Result<Json<Receipt>, (StatusCode, String)> {
    let payload =
        serde_json::to_vec(&event).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    for attempt in 0..2 {
        let log = app.log.read().await.clone();
        match log.append_async(payload.clone()).await {
            Ok(r) => {
                return Ok(Json(Receipt {
                    seq: r.seq,
                    time_ns: r.timestamp_ns.to_string(),
                    hash: wormlog::format::hex(r.hash),
                }))
            }
            Err(Error::Poisoned { .. }) if attempt == 0 => app.reopen(&log).await.map_err(fail)?,
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(Error::Poisoned {
        cause: "still poisoned after a reopen".into(),
    }))
}

async fn read(
    State(app): State<App>,
    Query(w): Query<Window>,
) -> Result<Json<Vec<serde_json::Value>>, (StatusCode, String)> {
    let log = app.log.read().await.clone();
    let Some(first) = log
        .first_at_or_after_async(w.since_ns)
        .await
        .map_err(fail)?
    else {
        return Ok(Json(Vec::new()));
    };
    let head = log.head().seq;
    let records = log
        .read_async(first.seq()..head + 1, w.limit.min(10_000))
        .await
        .map_err(fail)?;
    let lines = records
        .iter()
        .filter(|r| !r.is_system())
        .map(|r| {
            serde_json::to_value(wormlog::json::RecordLine::new(r, |ns| ns.to_string()))
                .unwrap_or_default()
        })
        .collect();
    Ok(Json(lines))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "audit".into()));
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let log = Log::open(&dir, Options::default())?;
    let app = App {
        dir,
        log: Arc::new(RwLock::new(Arc::new(log))),
    };
    let router = Router::new()
        .route("/events", post(append))
        .route("/events", get(read))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on {addr}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Close the log once the last handler let go of it (a clean close
    // writes its log-closed record).
    let log = app.log.write().await.clone();
    drop(app);
    if let Ok(log) = Arc::try_unwrap(log) {
        log.close()?;
    }
    Ok(())
}
