//! `POST /v1/metrics`: the allowlisted summary of one device.

use axum::Json;
use axum::extract::{Request, State};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::ingest::{DEFAULT_DEVICE, check_device_id};
use crate::license::Requirement;
use crate::state::AppState;
use crate::summary::MinimizedSummary;

/// The handler.
///
/// # Errors
/// 401/403/413/400, 422 naming a field that is not allowlisted, 503/500 on database failure.
pub async fn post_metrics(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    // Key and license first: an unauthenticated client never gets its body read.
    let headers = req.headers().clone();
    let tenant = super::ingest_tenant(&state, &headers).await?;
    state.inner.licenses.require(
        super::license_header(&headers),
        super::binding_header(&headers),
        super::now_unix(&state),
        Requirement::Metrics,
    )?;
    let body = super::read_body(&state, req).await?;
    let body = &body.bytes;
    let device = super::device_header(&headers)?.unwrap_or(DEFAULT_DEVICE);
    check_device_id(device, "")?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedJson(format!("malformed JSON: {e}")))?;
    // A repeated key would be silently resolved by the parser (last one wins); refuse the
    // ambiguity instead, as for license packs.
    if let Err(agentos_core::license::LicenseError::DuplicateKey(k)) =
        agentos_core::license::reject_duplicate_keys(body)
    {
        return Err(ApiError::invalid(
            format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            format!("duplicate key {k:?}"),
        ));
    }
    let summary = MinimizedSummary::from_json(&value).map_err(|e| ApiError::InvalidRequest {
        pointer: e.pointer,
        message: e.message,
    })?;
    let text = serde_json::to_string(&summary)
        .map_err(|e| ApiError::Internal(format!("cannot serialize summary: {e}")))?;
    let stored = state
        .store()
        .upsert_summary(
            &tenant,
            device,
            summary.generated_at.map(|t| t.as_microsecond()),
            &text,
            state.now_us(),
        )
        .await;
    state.inner.write_health.record(&stored);
    stored.map_err(|e| {
        state.metrics().db_error("metrics");
        ApiError::from_store(&e)
    })?;
    Ok(Json(json!({"stored": true})))
}
