//! `GET /v1/summary`: summaries merged across the tenant's devices, plus each device's own
//! summary and ingest state (watermark, gaps, stored events).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::summary::{MergedSummary, MinimizedSummary, merge};

/// One device in the summary answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceView {
    /// Latest summary, if the device sent one.
    pub summary: Option<MinimizedSummary>,
    /// When that summary arrived (RFC 3339).
    pub summary_received_at: Option<jiff::Timestamp>,
    /// Events stored for this device.
    pub events: u64,
    /// Ingest watermark.
    pub watermark: u64,
    /// Open gaps: seqs the server never heard of (lost, or still in flight).
    pub gaps: Vec<[u64; 2]>,
    /// Seqs the device holds back for a later run (not lost).
    pub held: Vec<[u64; 2]>,
    /// How many.
    pub held_events: u64,
    /// Seqs the device forgot on purpose (not lost).
    pub forgotten: Vec<[u64; 2]>,
    /// How many.
    pub forgotten_events: u64,
}

/// Response of `GET /v1/summary`.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryResponse {
    /// The tenant.
    pub tenant: String,
    /// Merged view.
    pub merged: MergedSummary,
    /// Per device, sorted by id.
    pub devices: BTreeMap<String, DeviceView>,
}

/// The handler.
///
/// # Errors
/// 401 without a valid key, 503/500 on database failure.
pub async fn get_summary(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SummaryResponse>, ApiError> {
    let tenant = super::tenant(&state, &headers).await?;
    let db_err = |e: crate::store::StoreError| {
        state.metrics().db_error("summary");
        ApiError::from_store(&e)
    };
    let summaries = state.store().summaries(&tenant).await.map_err(db_err)?;
    let devices = state.store().devices(&tenant).await.map_err(db_err)?;
    let mut views: BTreeMap<String, DeviceView> = BTreeMap::new();
    let mut parsed = Vec::new();
    for s in summaries {
        // Rows were validated on the way in; a row that no longer parses is skipped, not fatal.
        let Ok(summary) = serde_json::from_str::<MinimizedSummary>(&s.body) else {
            continue;
        };
        parsed.push(summary.clone());
        let v = views.entry(s.device_id).or_default();
        v.summary = Some(summary);
        v.summary_received_at = jiff::Timestamp::from_microsecond(s.received_at_us).ok();
    }
    for d in devices {
        let v = views.entry(d.device_id).or_default();
        v.events = d.events;
        v.watermark = d.coverage.watermark();
        v.gaps = d.coverage.gaps().into_iter().map(|(f, t)| [f, t]).collect();
        v.held_events = d.held.count();
        v.held = d.held.to_pairs();
        v.forgotten_events = d.forgotten.count();
        v.forgotten = d.forgotten.to_pairs();
    }
    Ok(Json(SummaryResponse {
        tenant,
        merged: merge(parsed.iter()),
        devices: views,
    }))
}
