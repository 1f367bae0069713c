//! The OTLP/HTTP listener's handlers (`POST /v1/logs`, `POST /v1/metrics` on the
//! `--otlp-listen` port) and the cross-check read (`GET /v1/otlp/sessions` on the main port).
//!
//! Order of checks, so that an unauthenticated or unwanted request never makes the server read
//! its body: the key (401/403), a processing permit (429 with `Retry-After`), the content type
//! (415), then the body (413 over the limit, compressed or decompressed; 400 undecodable).
//! Errors are answered with a `google.rpc.Status` in the request's encoding, as the OTLP/HTTP
//! specification asks; successes with the `Export…ServiceResponse`, whose `partial_success`
//! names the records refused and the attributes dropped.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest as _, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use serde::Deserialize;

use crate::error::ApiError;
use crate::metrics::{DroppedLabels, OtlpLabels};
use crate::otlp::{self, Encoding, OtlpError};
use crate::state::AppState;
use crate::store::{CoverageUpdate, SessionCrossCheck};

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Status {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The reason, naming the field or limit.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A refused OTLP request: the HTTP status, the reason and the encoding to answer in.
#[derive(Debug)]
pub struct OtlpReply {
    status: StatusCode,
    message: String,
    retry_after: Option<u32>,
    encoding: Encoding,
}

impl OtlpReply {
    fn new(status: StatusCode, message: impl Into<String>, encoding: Encoding) -> Self {
        OtlpReply {
            status,
            message: message.into(),
            retry_after: None,
            encoding,
        }
    }

    fn from_api(e: &ApiError, encoding: Encoding) -> Self {
        let retry_after = match e {
            ApiError::Unavailable { retry_after, .. } | ApiError::Conflict { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        };
        let mut r = OtlpReply::new(e.status(), e.to_string(), encoding);
        r.retry_after = retry_after;
        r
    }

    fn from_otlp(e: &OtlpError, encoding: Encoding) -> Self {
        let status = match e {
            OtlpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            OtlpError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            OtlpError::Undecodable(_) => StatusCode::BAD_REQUEST,
        };
        OtlpReply::new(status, e.to_string(), encoding)
    }
}

impl IntoResponse for OtlpReply {
    fn into_response(self) -> Response {
        // google.rpc.Code: 3 INVALID_ARGUMENT, 16 UNAUTHENTICATED, 7 PERMISSION_DENIED,
        // 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE, 13 INTERNAL.
        let code = match self.status.as_u16() {
            401 => 16,
            403 => 7,
            413 | 429 => 8,
            503 => 14,
            s if s >= 500 => 13,
            _ => 3,
        };
        let status = Status {
            code,
            message: self.message,
        };
        let mut resp = (self.status, encode(&status, self.encoding)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.encoding.content_type()),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

fn encode<M: prost::Message + serde::Serialize>(m: &M, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => m.encode_to_vec(),
        // Serializing a generated message cannot fail.
        Encoding::Json => serde_json::to_vec(m).unwrap_or_default(),
    }
}

fn ok<M: prost::Message + serde::Serialize>(m: &M, encoding: Encoding) -> Response {
    let mut resp = (StatusCode::OK, encode(m, encoding)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}

/// Everything before the body is decoded: key, permit, encoding, body, decompression.
struct Admitted {
    tenant: String,
    encoding: Encoding,
    body: Vec<u8>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

async fn admit(state: &AppState, req: Request) -> Result<Admitted, OtlpReply> {
    let headers: HeaderMap = req.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // Answer in the request's encoding when it is one of ours, else in JSON.
    let answer = otlp::encoding_of(content_type).unwrap_or(Encoding::Json);
    let tenant = super::ingest_tenant(state, &headers)
        .await
        .map_err(|e| OtlpReply::from_api(&e, answer))?;
    let limits = state.otlp_limits();
    let permit = Arc::clone(&state.inner.otlp_permits)
        .try_acquire_owned()
        .map_err(|_| {
            let mut r = OtlpReply::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "the collector is processing {} OTLP requests already; retry later",
                    limits.max_inflight
                ),
                answer,
            );
            r.retry_after = Some(limits.retry_after_secs);
            r
        })?;
    let encoding = otlp::encoding_of(content_type).map_err(|e| OtlpReply::from_otlp(&e, answer))?;
    let raw = Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            OtlpReply::from_otlp(
                &OtlpError::TooLarge {
                    limit: limits.max_body_bytes,
                    decompressed: false,
                },
                encoding,
            )
        } else {
            OtlpReply::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {rej}"),
                encoding,
            )
        }
    })?;
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let body = otlp::decompress(&raw, content_encoding, limits.max_body_bytes)
        .map_err(|e| OtlpReply::from_otlp(&e, encoding))?
        .into_owned();
    Ok(Admitted {
        tenant,
        encoding,
        body,
        _permit: permit,
    })
}

fn count(state: &AppState, signal: &'static str, outcome: &'static str, n: u64) {
    if n > 0 {
        state
            .metrics()
            .otlp_records
            .get_or_create(&OtlpLabels { signal, outcome })
            .inc_by(n);
    }
}

fn dropped(state: &AppState, reason: &'static str, n: u64) {
    if n > 0 {
        state
            .metrics()
            .otlp_dropped
            .get_or_create(&DroppedLabels { reason })
            .inc_by(n);
    }
}

fn store_error(state: &AppState, e: &crate::StoreError, encoding: Encoding) -> OtlpReply {
    let api = ApiError::from_store(e);
    if api.status().is_server_error() {
        state.metrics().db_error("otlp");
    }
    OtlpReply::from_api(&api, encoding)
}

/// The partial-success message: refusals first, then what was dropped.
fn message(errors: &[String], rejected: u64, free_text: u64, over_limit: u64) -> String {
    let mut parts = Vec::new();
    if rejected > 0 {
        let mut s = format!("{rejected} rejected");
        if !errors.is_empty() {
            s.push_str(": ");
            s.push_str(&errors.join("; "));
        }
        parts.push(s);
    }
    if free_text > 0 {
        parts.push(format!(
            "{free_text} free-text attribute(s) (prompt, tool input, …) dropped: never stored"
        ));
    }
    if over_limit > 0 {
        parts.push(format!(
            "{over_limit} attribute(s) over the per-record limit dropped"
        ));
    }
    parts.join("; ")
}

/// `POST /v1/logs`: Claude Code's `api_request` events become turns of the key's tenant.
///
/// # Errors
/// 401/403, 429, 415, 413, 400 for the request as a whole; 503 when the database fails
/// transiently (retry), 500 otherwise.
pub async fn post_logs(State(state): State<AppState>, req: Request) -> Result<Response, OtlpReply> {
    let a = admit(&state, req).await?;
    let decoded =
        otlp::decode_logs(&a.body, a.encoding).map_err(|e| OtlpReply::from_otlp(&e, a.encoding))?;
    drop(a.body);
    let mapped = otlp::map_logs(&decoded, &state.otlp_limits());
    drop(decoded);
    let (mut accepted, mut superseded, mut retracted) = (0u64, 0u64, 0u64);
    for (device, events) in &mapped.turns {
        // No covered seqs: OTLP turns never touch a device's coverage or watermark.
        let outcome = state
            .store()
            .ingest_with(
                &a.tenant,
                device,
                events,
                &CoverageUpdate::default(),
                state.now_us(),
            )
            .await;
        state.inner.write_health.record(&outcome);
        let outcome = outcome.map_err(|e| store_error(&state, &e, a.encoding))?;
        accepted += outcome.inserted;
        superseded += outcome.superseded;
        retracted += outcome.retracted;
    }
    let total = mapped.turn_count() as u64;
    let duplicates = total.saturating_sub(accepted + superseded) + mapped.repeated;
    count(&state, "logs", "accepted", accepted);
    count(&state, "logs", "duplicate", duplicates);
    count(&state, "logs", "superseded", superseded);
    count(&state, "logs", "retracted", retracted);
    count(&state, "logs", "rejected", mapped.rejected);
    count(&state, "logs", "ignored", mapped.ignored);
    dropped(&state, "free_text", mapped.dropped_free_text);
    dropped(&state, "over_limit", mapped.dropped_over_limit);
    let msg = message(
        &mapped.errors,
        mapped.rejected,
        mapped.dropped_free_text,
        mapped.dropped_over_limit,
    );
    let partial_success = (!msg.is_empty()).then(|| ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
        error_message: msg,
    });
    Ok(ok(
        &ExportLogsServiceResponse { partial_success },
        a.encoding,
    ))
}

/// `POST /v1/metrics`: Claude Code's token and cost counters, stored per session as a
/// cross-check of its turns.
///
/// # Errors
/// As [`post_logs`].
pub async fn post_metrics(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, OtlpReply> {
    let a = admit(&state, req).await?;
    let decoded = otlp::decode_metrics(&a.body, a.encoding)
        .map_err(|e| OtlpReply::from_otlp(&e, a.encoding))?;
    drop(a.body);
    let mapped = otlp::map_metrics(&decoded, &state.otlp_limits());
    drop(decoded);
    let stored = state
        .store()
        .insert_metric_points(&a.tenant, &mapped.points, state.now_us())
        .await;
    state.inner.write_health.record(&stored);
    let stored = stored.map_err(|e| store_error(&state, &e, a.encoding))?;
    let total = mapped.points.len() as u64;
    count(&state, "metrics", "accepted", stored);
    count(&state, "metrics", "duplicate", total - stored.min(total));
    count(&state, "metrics", "rejected", mapped.rejected);
    count(&state, "metrics", "ignored", mapped.ignored);
    dropped(&state, "over_limit", mapped.dropped_over_limit);
    let msg = message(
        &mapped.errors,
        mapped.rejected,
        0,
        mapped.dropped_over_limit,
    );
    let partial_success = (!msg.is_empty()).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
        error_message: msg,
    });
    Ok(ok(
        &ExportMetricsServiceResponse { partial_success },
        a.encoding,
    ))
}

/// Query of `GET /v1/otlp/sessions`.
#[derive(Debug, Deserialize)]
pub struct SessionsQuery {
    /// Most sessions listed (1-1000, default 100).
    pub limit: Option<i64>,
}

/// Answer of `GET /v1/otlp/sessions`.
#[derive(Debug, serde::Serialize)]
pub struct SessionsResponse {
    /// Sessions whose Claude Code metrics arrived most recently first.
    pub sessions: Vec<SessionCrossCheck>,
    /// How many of them disagree with their counted turns.
    pub inconsistent: usize,
}

/// `GET /v1/otlp/sessions` (any key of the tenant): per session, Claude Code's own token and
/// cost counters next to the totals of the session's counted turns.
///
/// # Errors
/// 401, 422 for a bad limit, 503/500 when the database fails.
pub async fn get_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SessionsQuery>,
) -> Result<Json<SessionsResponse>, ApiError> {
    let tenant = super::tenant(&state, &headers).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let sessions = state
        .store()
        .otlp_cross_check(&tenant, limit)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let inconsistent = sessions.iter().filter(|s| !s.consistent).count();
    Ok(Json(SessionsResponse {
        sessions,
        inconsistent,
    }))
}
