//! `GET /v1/report`: the tenant's usage report (see [`crate::report`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};

use crate::error::ApiError;
use crate::report::{ReportQuery, run};
use crate::state::AppState;

/// Turns a query-string rejection into a 422 that names the problem.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::invalid("", format!("invalid query string: {}", e.body_text())))
}

/// The handler.
///
/// # Errors
/// 401 without a valid key, 422 for a bad query, 503/500 on database failure.
pub async fn get_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let tenant = super::tenant(&state, &headers).await?;
    let q = query(q)?;
    if q.kind.as_deref() == Some("value") {
        let out = crate::report::value(state.store(), &tenant, &q)
            .await
            .inspect_err(|e| {
                if e.status().is_server_error() {
                    state.metrics().db_error("report");
                }
            })?;
        return Ok(Json(out).into_response());
    }
    let out = run(
        state.store(),
        &tenant,
        &q,
        &state.inner.prices,
        state.now_us(),
    )
    .await
    .inspect_err(|e| {
        if e.status().is_server_error() {
            state.metrics().db_error("report");
        }
    })?;
    Ok(Json(out).into_response())
}
