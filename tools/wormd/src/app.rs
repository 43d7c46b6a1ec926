//! What every handler shares: the logs, the tokens, the counters; the
//! one error type requests answer with; and the check that a request's
//! token may do what it asks.

use crate::auth::{Denied, Principal, Tokens};
use crate::config::{Config, Scope};
use crate::logs::{Logs, Served};
use crate::metrics::Metrics;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The server's state.
pub struct App {
    /// The config it was started with.
    pub cfg: Config,
    /// The open logs.
    pub logs: Logs,
    /// Who may do what.
    pub tokens: Tokens,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Verify jobs.
    pub jobs: crate::jobs::Jobs,
    /// Set when shutdown began: readiness fails, new appends get 503.
    pub stopping: AtomicBool,
    /// Places for streamed reads, all logs (each log also bounds its
    /// own): each holds a blocking worker while its client reads, and
    /// tokio's blocking pool (512) runs every other blocking step too.
    pub reads: Arc<tokio::sync::Semaphore>,
}

/// Handlers' view of the state.
pub type Shared = Arc<App>;

/// A request that failed: its status, a short fixed code (counted in
/// `/metrics` by kind) and words for a person.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `unauthenticated`, `forbidden`, `busy`, `bad_request`, ...
    pub code: &'static str,
    /// What happened and what to do.
    pub message: String,
}

impl ApiError {
    /// An error of `status` with `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The engine's error, with the status that blames the right party.
    pub fn engine(e: wormlog::Error) -> ApiError {
        use wormlog::Error as E;
        let (status, code) = match &e {
            E::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            E::Poisoned { .. } => (StatusCode::SERVICE_UNAVAILABLE, "poisoned"),
            E::TreeUnavailable { .. } => (StatusCode::NOT_FOUND, "tree_unavailable"),
            E::Corrupt { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            E::SeqOutOfRange { .. } => (StatusCode::NOT_FOUND, "out_of_range"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "engine"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut r = (self.status, axum::Json(body)).into_response();
        let h = r.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        // Refused before its body was read (credentials, log), or with the
        // rest of a body that timed out or overran unread: the connection
        // closes, rather than wait for a body no one will use.
        match self.status {
            StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::NOT_FOUND
            | StatusCode::REQUEST_TIMEOUT
            | StatusCode::PAYLOAD_TOO_LARGE => {
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        r
    }
}

impl App {
    /// A request's body, read only now (after its token was checked, so
    /// that no one without a token can make the server hold a body): at
    /// most `body_bytes_max` bytes (413), arriving within
    /// `body_timeout_secs` (408: a client that trickles a body would
    /// otherwise hold its connection and memory for ever).
    pub async fn read_body(&self, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
        let limit = self.cfg.server.body_bytes_max;
        let read = axum::body::to_bytes(body, limit);
        match tokio::time::timeout(self.cfg.server.body_timeout(), read).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(_)) => Err(self.count(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over body_bytes_max ({limit} bytes), or was cut off"),
            ))),
            Err(_) => Err(self.count(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body did not arrive within {} s",
                    self.cfg.server.body_timeout().as_secs()
                ),
            ))),
        }
    }

    /// `f` (blocking engine work) on tokio's blocking pool; its error as
    /// an answer that blames the right party, counted.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> wormlog::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "panic", e.to_string()))?
            .map_err(|e| self.count(ApiError::engine(e)))
    }

    /// Counts `e` by its code and hands it back.
    pub fn count(&self, e: ApiError) -> ApiError {
        self.metrics.error(e.code);
        e
    }

    /// The request's principal, or 401.
    pub fn who(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.tokens.check(value).map_err(|d| {
            self.metrics.unauthenticated.fetch_add(1, Ordering::Relaxed);
            let why = match d {
                Denied::Missing => "no Authorization: Bearer token",
                Denied::Unknown => "unknown token",
            };
            self.count(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                why,
            ))
        })
    }

    /// The log `name` and the principal, if the request's token may do
    /// `scope` on it: 401 without a known token, 403 when it may not (also
    /// for a log that does not exist, unless the token may see every log:
    /// a token learns no names beyond its own), 404 for a missing log a
    /// `*` token asked for.
    pub fn allow(
        &self,
        headers: &HeaderMap,
        scope: Scope,
        name: &str,
    ) -> Result<(Principal, Arc<Served>), ApiError> {
        self.allow_named(headers, scope, name, true)
    }

    /// `allow`, for a log the request did not name (the config's `[otlp]`
    /// log): a refusal then does not say which log it was.
    pub fn allow_named(
        &self,
        headers: &HeaderMap,
        scope: Scope,
        name: &str,
        named_by_request: bool,
    ) -> Result<(Principal, Arc<Served>), ApiError> {
        let who = self.who(headers)?;
        if !who.may(scope, name) {
            self.metrics.forbidden.fetch_add(1, Ordering::Relaxed);
            let which = if named_by_request {
                format!("log {name:?}")
            } else {
                "this route's log".to_string()
            };
            return Err(self.count(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("token of {:?} may not {scope:?} on {which}", who.name),
            )));
        }
        match self.logs.get(name) {
            Some(s) => Ok((who, s.clone())),
            None => Err(self.count(ApiError::new(
                StatusCode::NOT_FOUND,
                "no_such_log",
                format!("no log named {name:?}"),
            ))),
        }
    }
}
