//! HTTP handlers, one module per resource.

pub mod events;
pub mod health;
pub mod metrics;
pub mod otlp;
pub mod prom;
pub mod report;
pub mod summary;
pub mod usage;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest as _, Request};
use axum::http::{HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::state::AppState;

/// Header carrying the license pack (standard base64 of the pack JSON).
pub const LICENSE_HEADER: &str = "x-agentos-license";
/// Header carrying the client's device id.
pub const DEVICE_HEADER: &str = "x-agentos-device";
/// Header carrying the client's device binding value (for device-bound license packs).
pub const BINDING_HEADER: &str = "x-agentos-device-binding";

/// Resolves the tenant of the request's bearer key (any role).
pub(crate) async fn tenant(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(principal(state, headers).await?.tenant)
}

/// Resolves the tenant of the request's bearer key and checks that its role may post.
pub(crate) async fn ingest_tenant(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let p = principal(state, headers).await?;
    if !p.role.can_ingest() {
        return Err(ApiError::Forbidden {
            code: "role_forbidden",
            message: format!(
                "a `{}` key cannot post events or metrics (use an `ingest` or `admin` key)",
                p.role
            ),
        });
    }
    Ok(p.tenant)
}

/// Resolves the principal of the request's bearer key.
pub(crate) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<crate::auth::Principal, ApiError> {
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let auth = all.next().and_then(|v| v.to_str().ok());
    // Proxies and servers disagree on which of two headers counts: refuse the ambiguity.
    if all.next().is_some() {
        return Err(ApiError::Unauthorized(
            "more than one Authorization header; send exactly one",
        ));
    }
    state
        .inner
        .keys
        .authenticate(&state.inner.store, auth, state.now_us())
        .await
        .inspect_err(|e| {
            if e.status().is_server_error() {
                state.metrics().db_error("keys");
            }
        })
}

pub(crate) fn license_header(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(LICENSE_HEADER).map(|v| v.as_bytes())
}

/// The client's device binding value, when it sent one as text.
pub(crate) fn binding_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(BINDING_HEADER).and_then(|v| v.to_str().ok())
}

/// The `X-AgentOS-Device` header as text (422 when it is not visible ASCII/UTF-8).
pub(crate) fn device_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(DEVICE_HEADER) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError::invalid("", "the X-AgentOS-Device header must be visible ASCII")
        }),
    }
}

/// A request body read after the caller authenticated it, with the in-flight slot it holds:
/// keep the slot as long as the body (or anything built from it) is alive.
pub(crate) struct ReadBody {
    pub(crate) bytes: Bytes,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// How long an authenticated request waits for an in-flight body slot before it is answered
/// 503: a burst is smoothed out, a flood is not buffered (a waiting request holds a connection,
/// which is capped, but no body).
pub const BODY_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads the body of `req` — only call this once the key and the license were checked, so an
/// unauthenticated client never makes the server buffer a body. At most
/// [`crate::Limits::max_inflight_bodies`] bodies are read at once; a request that finds no slot
/// within [`BODY_SLOT_WAIT`] is answered 503 with `Retry-After` without reading.
pub(crate) async fn read_body(state: &AppState, req: Request) -> Result<ReadBody, ApiError> {
    let busy = || ApiError::Unavailable {
        retry_after: 1,
        detail: "too many request bodies in flight".into(),
    };
    let slot = tokio::time::timeout(
        BODY_SLOT_WAIT,
        Arc::clone(&state.inner.bodies).acquire_owned(),
    )
    .await
    .map_err(|_| busy())?
    .map_err(|_| busy())?;
    let body = Bytes::from_request(req, state).await;
    Ok(ReadBody {
        bytes: body_or_error(state, body)?,
        _slot: slot,
    })
}

/// Maps a body extraction failure (over the limit, broken stream) to the API error.
fn body_or_error(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: state.limits().body_bytes,
            }
        } else {
            ApiError::MalformedJson(format!("cannot read the request body: {rej}"))
        }
    })
}

pub(crate) fn now_unix(state: &AppState) -> i64 {
    state.now_us().div_euclid(1_000_000)
}
