//! `GET /v1/usage`: the tenant's per-model quota snapshot (`ccp.usage.v1`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::license::license_block;
use crate::state::AppState;
use crate::usage::{UsageSnapshot, compute};

/// The handler. A valid `X-AgentOS-License` adds the `license` block (no entitlement needed).
///
/// # Errors
/// 401 without a valid key, 503/500 on database failure.
pub async fn get_usage(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<UsageSnapshot>, ApiError> {
    let tenant = super::tenant(&state, &headers).await?;
    let license = super::license_header(&headers).and_then(|h| {
        state
            .inner
            .licenses
            .verify(Some(h), super::now_unix(&state))
            .ok()
            .map(|l| license_block(&l))
    });
    Ok(Json(snapshot(&state, &tenant, license).await?))
}

/// The tenant's snapshot now (also shown by the dashboard's Models page).
///
/// # Errors
/// 503/500 on database failure.
pub async fn snapshot(
    state: &AppState,
    tenant: &str,
    license: Option<crate::usage::LicenseBlock>,
) -> Result<UsageSnapshot, ApiError> {
    let now = state.now_us();
    let q = &state.inner.quotas;
    let secs = |s: u64| {
        i64::try_from(s)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1_000_000)
    };
    let inputs = state
        .store()
        .usage_inputs(
            tenant,
            now.saturating_sub(secs(q.rolling_seconds)),
            now.saturating_sub(secs(q.weekly_seconds)),
        )
        .await
        .map_err(|e| {
            state.metrics().db_error("usage");
            ApiError::from_store(&e)
        })?;
    Ok(compute(q, now, &inputs, license, &state.inner.prices))
}
