//! The HTTP listener: the routes (README "wormd: HTTP API",
//! tools/wormd/openapi.yaml), and the accept loop that serves them over
//! plain TCP or TLS with a bound on connections, a deadline for a
//! connection's headers (slowloris) and a graceful stop that lets
//! requests in flight finish.

use crate::app::{ApiError, Shared};
use crate::config::Scope;
use crate::{otlp, records, tiles};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Every route.
pub fn router(app: Shared) -> Router {
    let limit = app.cfg.server.body_bytes_max;
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/logs", post(otlp::export))
        .route("/v1/logs/{name}", get(records::stat))
        .route(
            "/v1/logs/{name}/records",
            post(records::append).get(records::read),
        )
        .route("/v1/logs/{name}/verify", post(start_verify))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/logs/{name}/checkpoint", get(tiles::checkpoint))
        .route("/v1/logs/{name}/tile/{*rest}", get(tiles::tile))
        .route("/v1/logs/{name}/proof/inclusion", get(tiles::inclusion))
        .route("/v1/logs/{name}/proof/consistency", get(tiles::consistency))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

async fn ready(State(app): State<Shared>) -> Response {
    if app.stopping.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(app): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = app.who(&headers)?;
    if !who.is_admin() {
        app.metrics.forbidden.fetch_add(1, Ordering::Relaxed);
        return Err(app.count(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "/metrics needs a token with the admin scope",
        )));
    }
    // Only the logs the token administers: metrics name their logs, and a
    // token learns no names beyond its own.
    let logs: Vec<_> = app
        .logs
        .all()
        .filter(|s| who.may(Scope::Admin, &s.name))
        .map(|s| (s.name.as_str(), &s.metrics, s.log.stats()))
        .collect();
    // Errors, refusals and syslog counts are of every log together: only
    // for a token that administers every log.
    let text = app.metrics.render(&logs, who.admin_of_every_log());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn start_verify(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (who, served) = app.allow(&headers, Scope::Read, &name)?;
    let max = app.cfg.server.verify_jobs_max;
    let busy = || {
        app.count(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "verify_busy",
            format!("{max} verifications are running (verify_jobs_max); retry later"),
        ))
    };
    if app.jobs.running() >= max {
        return Err(busy());
    }
    // The access record first, so that the verification covers it.
    records::access(&app, &served, &who.name, "verify".into()).await?;
    let Some(id) = app
        .jobs
        .start_verify(&name, &who.name, served.log.clone(), max)
    else {
        return Err(busy());
    };
    let body = serde_json::json!({ "id": id.to_string(), "status": format!("/v1/jobs/{id}") });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

async fn job(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = app.who(&headers)?;
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| app.jobs.get(id).map(|j| (id, j)));
    match found {
        Some((id, j)) if who.may(Scope::Read, &j.log) => {
            Ok(axum::Json(j.to_json(id)).into_response())
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_job",
            format!("job {id}"),
        )),
    }
}

/// A connection's byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Accepts on `listener` until `stop` turns true, then waits (up to
/// `grace`) for the requests in flight.
pub async fn serve(
    app: Shared,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let router = router(app.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let header_timeout = app.cfg.server.header_timeout();
    loop {
        let (stream, _peer) = tokio::select! {
            got = listener.accept() => match got {
                Ok(s) => s,
                Err(e) => {
                    app.metrics.error("accept");
                    crate::say::error("accept failed", &[("error", &e.to_string())]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // Past the bound a connection is closed at once: the bound is
        // what keeps memory finite under a flood.
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            app.metrics.error("connections_max");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(router.clone());
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => Box::new(s),
                        _ => {
                            app.metrics.error("tls_handshake");
                            return;
                        }
                    }
                }
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(io), svc);
            let _ = watcher.watch(conn).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        crate::say::error(
            "requests still open after the grace period; closing them",
            &[],
        );
    }
}
