//! `POST /v1/events`: store a batch (or one event), idempotent by event id.

use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use serde::Serialize;

use crate::error::ApiError;
use crate::ingest::{Rejection, parse_batch};
use crate::license::Requirement;
use crate::metrics::EventLabels;
use crate::state::AppState;
use crate::store::CoverageUpdate;

/// Most gap ranges listed in one response (the rest are still tracked).
const MAX_GAPS_REPORTED: usize = 1000;

/// Response of `POST /v1/events`.
#[derive(Debug, Clone, Serialize)]
pub struct EventsResponse {
    /// Events newly stored.
    pub accepted: u64,
    /// Events already stored (or repeated within the batch): not stored twice.
    pub duplicates: u64,
    /// Events refused, with reasons.
    pub rejected: Vec<Rejection>,
    /// Highest seq S with every seq in 1..=S covered for this device.
    pub watermark: u64,
    /// Uncovered seq ranges below the highest covered seq.
    pub gaps: Vec<[u64; 2]>,
    /// Seqs the device holds back (covered, expected later).
    pub held: Vec<[u64; 2]>,
    /// Seqs the device forgot on purpose (covered, never coming).
    pub forgotten: Vec<[u64; 2]>,
    /// Seqs this batch reused: new event ids at seqs the device had already accounted for (its
    /// log was truncated or restored). The events are stored; the device needs a look.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seq_conflicts: Vec<u64>,
}

/// The handler.
///
/// # Errors
/// 401/403/413/400/422 for the request as a whole, 503/500 when the database fails.
pub async fn post_events(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<EventsResponse>, ApiError> {
    let started = Instant::now();
    // Key and license first: an unauthenticated client never gets its body read.
    let headers = req.headers().clone();
    let tenant = super::ingest_tenant(&state, &headers).await?;
    state.inner.licenses.require(
        super::license_header(&headers),
        super::binding_header(&headers),
        super::now_unix(&state),
        Requirement::Events,
    )?;
    let body = super::read_body(&state, req).await?;
    let body = &body.bytes;
    let device = super::device_header(&headers)?;
    let mut batch = parse_batch(body, device, &state.limits())?;
    let valid = batch.events.len() as u64;
    let outcome = state
        .store()
        .ingest_with(
            &tenant,
            &batch.device_id,
            &batch.events,
            &CoverageUpdate {
                // Moved, not copied: nothing below reads them again.
                covered: std::mem::take(&mut batch.covered),
                held: std::mem::take(&mut batch.held),
                forgotten: std::mem::take(&mut batch.forgotten),
                arrived: std::mem::take(&mut batch.arrived),
            },
            state.now_us(),
        )
        .await;
    state.inner.write_health.record(&outcome);
    let outcome = outcome.map_err(|e| {
        let api = ApiError::from_store(&e);
        if api.status().is_server_error() {
            state.metrics().db_error("ingest");
        }
        api
    })?;
    let duplicates = valid - outcome.inserted.min(valid) + batch.duplicates_in_batch;
    let m = state.metrics();
    m.events
        .get_or_create(&EventLabels {
            outcome: "accepted",
            reason: String::new(),
        })
        .inc_by(outcome.inserted);
    m.events
        .get_or_create(&EventLabels {
            outcome: "duplicate",
            reason: String::new(),
        })
        .inc_by(duplicates);
    for r in &batch.rejected {
        m.events
            .get_or_create(&EventLabels {
                outcome: "rejected",
                reason: r.code.to_string(),
            })
            .inc();
    }
    if outcome.retracted > 0 {
        // This batch brought the first claude_code turns of sessions counted from OTLP so far.
        m.otlp_records
            .get_or_create(&crate::metrics::OtlpLabels {
                signal: "logs",
                outcome: "retracted",
            })
            .inc_by(outcome.retracted);
    }
    if !outcome.seq_conflicts.is_empty() {
        m.events
            .get_or_create(&EventLabels {
                outcome: "seq_conflict",
                reason: String::new(),
            })
            .inc_by(outcome.seq_conflicts.len() as u64);
        tracing::warn!(
            tenant = %tenant,
            device = %batch.device_id,
            seqs = ?outcome.seq_conflicts,
            "a device reused seqs under new event ids (truncated or restored log)"
        );
    }
    let gaps: Vec<[u64; 2]> = outcome
        .coverage
        .gaps()
        .into_iter()
        .take(MAX_GAPS_REPORTED)
        .map(|(f, t)| [f, t])
        .collect();
    if !gaps.is_empty() {
        m.gap_batches.inc();
        m.gap_seqs.inc_by(outcome.coverage.gap_seqs());
    }
    m.ingest_latency.observe(started.elapsed().as_secs_f64());
    Ok(Json(EventsResponse {
        accepted: outcome.inserted,
        duplicates,
        rejected: batch.rejected,
        watermark: outcome.coverage.watermark(),
        gaps,
        held: outcome
            .held
            .to_pairs()
            .into_iter()
            .take(MAX_GAPS_REPORTED)
            .collect(),
        forgotten: outcome
            .forgotten
            .to_pairs()
            .into_iter()
            .take(MAX_GAPS_REPORTED)
            .collect(),
        seq_conflicts: outcome.seq_conflicts,
    }))
}
