//! The collector: the CCC endpoint that agentos clients deliver to.
//!
//! `agentos ccc serve` runs [`serve`] over [`app`]. Endpoints (wire protocol v1, see
//! `docs/protocol.md`):
//!
//! | route | auth | license | what |
//! |---|---|---|---|
//! | `POST /v1/events` | key | `telemetry_full` | store a batch, idempotent by `event_id`; per-device watermark and gaps |
//! | `POST /v1/metrics` | key | `telemetry_minimized` or `telemetry_full` | latest allowlisted summary of a device |
//! | `GET /v1/usage` | key | optional (adds `license`) | per-model `ccp.usage.v1` snapshot |
//! | `GET /v1/summary` | key | – | summaries merged across devices, and per device |
//! | `GET /v1/report` | key | – | the CLI's usage reports over the tenant's turns, priced ([`report`]) |
//! | `GET /v1/otlp/sessions` | key | – | Claude Code's OTLP token/cost counters per session next to its counted turns |
//! | `GET /healthz`, `/readyz`, `/metrics` | – | – | liveness, readiness, Prometheus |
//! | `GET /`, `/models`, `/devices`, `/sessions[/{id}]`, `/attribution` | session cookie | – | the dashboard ([`web`]) |
//! | `GET`/`POST /login`, `POST /logout` | – / CSRF | – | dashboard sign-in and sign-out |
//!
//! The OpenTelemetry receiver ([`otlp_app`], [`serve_otlp`]) listens on a port of its own
//! (`--otlp-listen`), because `/v1/metrics` already means something else here: `POST /v1/logs`
//! and `POST /v1/metrics` in OTLP/HTTP, with an `ingest` or `admin` key and no license header
//! (Claude Code's exporter sends only the headers it is configured with); see
//! `docs/opentelemetry.md`.
//!
//! A key reads and writes only its own tenant's data: every query is scoped by the tenant the
//! key resolves to. Storage is SQLite (default) or PostgreSQL ([`store`]); collectors are
//! stateless apart from short-lived caches, so several can share one PostgreSQL.

#![deny(missing_docs)]

pub mod auth;
pub mod clock;
pub mod coverage;
pub mod embedded;
pub mod error;
pub mod ingest;
pub mod license;
pub mod local;
pub mod metrics;
pub mod otlp;
pub mod report;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod summary;
pub mod usage;
pub mod web;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use ingest::Limits;
pub use state::{AppState, StateBuilder};
pub use store::{Store, StoreError, StoreOptions};
pub use usage::Quotas;

use crate::error::InternalDetail;
use crate::metrics::RequestLabels;

/// How long one request may take before the server answers 408 (keeps shutdown bounded).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The router with every route, the body limit, the request timeout and request metrics.
pub fn app(state: AppState) -> Router {
    let body_limit = state.limits().body_bytes;
    Router::new()
        .route("/v1/events", post(routes::events::post_events))
        .route("/v1/metrics", post(routes::metrics::post_metrics))
        .route("/v1/usage", get(routes::usage::get_usage))
        .route("/v1/summary", get(routes::summary::get_summary))
        .route("/v1/report", get(routes::report::get_report))
        .route("/v1/otlp/sessions", get(routes::otlp::get_sessions))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::prom::get_metrics))
        .route("/", get(web::pages::overview))
        .route("/models", get(web::pages::models))
        .route("/devices", get(web::pages::devices))
        .route("/sessions", get(web::pages::sessions))
        .route("/sessions/{id}", get(web::pages::session))
        .route("/attribution", get(web::pages::attribution))
        .route("/login", get(web::get_login).post(web::post_login))
        .route("/login/link/{token}", get(web::get_login_link))
        .route("/logout", post(web::post_logout))
        .layer(DefaultBodyLimit::max(body_limit))
        // Layers wrap outside-in: the metrics middleware sees the final status, timeouts included.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track_request))
        .with_state(state)
}

/// The OTLP/HTTP receiver's router (`POST /v1/logs`, `POST /v1/metrics`), for its own listener.
/// Its request metrics carry the route prefixed with `otlp:`, so they do not mix with the main
/// port's `/v1/metrics`.
pub fn otlp_app(state: AppState) -> Router {
    let body_limit = state.otlp_limits().max_body_bytes;
    Router::new()
        .route("/v1/logs", post(routes::otlp::post_logs))
        .route("/v1/metrics", post(routes::otlp::post_metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_otlp_request,
        ))
        .with_state(state)
}

/// Serves the OTLP receiver ([`otlp_app`]) on `listener` until `shutdown` resolves, under the
/// same connection limits as [`serve`].
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve_otlp(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits();
    server::serve_app(listener, otlp_app(state), limits, shutdown).await
}

async fn track_otlp_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    track(state, "otlp:", req, next).await
}

async fn track_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    track(state, "", req, next).await
}

async fn track(state: AppState, prefix: &str, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(
        || format!("{prefix}unmatched"),
        |p| format!("{prefix}{}", p.as_str()),
    );
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if let Some(InternalDetail(detail)) = resp.extensions().get::<InternalDetail>() {
        tracing::error!(%method, %route, status = status.as_u16(), "{detail}");
    }
    state
        .metrics()
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: status.as_u16(),
        })
        .inc();
    resp
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish (each is bounded by [`REQUEST_TIMEOUT`]) and returns within
/// [`Limits::shutdown_grace`] whatever clients do. Connection limits: [`server`].
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits();
    server::serve_app(listener, app(state), limits, shutdown).await
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
