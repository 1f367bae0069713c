//! `POST /v1/metrics`: the allowlisted aggregate summary, sent only when its figures changed
//! since the server last acknowledged them (`delivery/summary_sent.json` holds the SHA-256 of
//! that body without `generated_at`, so a summary merely rewritten later, e.g. after a `local`
//! session, does not leak activity timing by a fresh upload).

use std::time::Duration;

use agentos_core::privacy::egress_summary;
use agentos_core::rollup::Summary;
use agentos_core::tier::{Egress, Tier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::post::{Posted, Sender};
use crate::error::DeliveryError;
use crate::outbox::Paths;
use crate::settings::Settings;

/// What happened to a summary upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryOutcome {
    /// The tier allows no metrics: nothing was sent and no connection was made.
    Withheld,
    /// There is no `metrics_summary.json` yet.
    NoSummary,
    /// The server already acknowledged this exact body.
    Unchanged,
    /// The server acknowledged it.
    Sent,
    /// The deadline passed before the server acknowledged it.
    OutOfTime,
}

/// Hash of the last summary body the server acknowledged (`delivery/summary_sent.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct SummarySent {
    sha256: String,
    at: Option<jiff::Timestamp>,
}

/// The body that would go to `/v1/metrics` under `tier`, if any may.
pub(crate) fn summary_body(summary: &Summary, tier: Tier) -> Option<Vec<u8>> {
    let value = egress_summary(summary, tier)?;
    serde_json::to_vec(&value).ok()
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of a summary body's figures: everything but `generated_at`.
fn figures_sha256(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(mut m) => {
            m.remove("generated_at");
            hex_sha256(&serde_json::to_vec(&m).unwrap_or_default())
        }
        // Not ours to judge here: an unparsable body is compared as it is.
        Err(_) => hex_sha256(body),
    }
}

/// Whether the server already acknowledged `body`'s figures.
pub(crate) fn already_sent(paths: &Paths, body: &[u8]) -> bool {
    std::fs::read(&paths.summary_sent)
        .ok()
        .and_then(|b| serde_json::from_slice::<SummarySent>(&b).ok())
        .is_some_and(|s| s.sha256 == figures_sha256(body))
}

pub(crate) fn record_sent(paths: &Paths, body: &[u8], at: jiff::Timestamp) {
    let rec = SummarySent {
        sha256: figures_sha256(body),
        at: Some(at),
    };
    let bytes = serde_json::to_vec(&rec).unwrap_or_default();
    let written = std::fs::create_dir_all(&paths.dir)
        .and_then(|()| agentos_config::durable::replace_file(&paths.summary_sent, &bytes));
    if let Err(e) = written {
        tracing::warn!(path = %paths.summary_sent.display(), error = %e, "cannot record the sent summary; it may be sent again");
    }
}

/// Reads `metrics_summary.json`; `None` when there is none yet.
///
/// # Errors
/// Unreadable or unparsable file.
pub fn read_summary(paths: &Paths) -> Result<Option<Summary>, DeliveryError> {
    let bytes = match std::fs::read(&paths.summary) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DeliveryError::io("reading summary", &paths.summary, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| DeliveryError::BadSummary {
            path: paths.summary.clone(),
            message: format!("line {} column {}: {e}", e.line(), e.column()),
        })
}

/// Sends `body` (already tier-filtered) unless the server acknowledged it before.
pub(crate) async fn send_body(
    sender: &mut Sender,
    settings: &Settings,
    paths: &Paths,
    body: &[u8],
    deadline: Option<Instant>,
    state: Option<&mut crate::outbox::state::DeliveryState>,
) -> Result<SummaryOutcome, DeliveryError> {
    if already_sent(paths, body) {
        return Ok(SummaryOutcome::Unchanged);
    }
    match sender
        .post(
            settings,
            "/v1/metrics",
            body,
            None,
            deadline,
            state,
            &super::ack::metrics_ack,
        )
        .await?
    {
        Posted::Ok(()) => {
            record_sent(paths, body, jiff::Timestamp::now());
            Ok(SummaryOutcome::Sent)
        }
        Posted::OutOfTime => Ok(SummaryOutcome::OutOfTime),
        Posted::Invalid {
            status,
            code,
            message,
        } => Err(DeliveryError::SummaryRejected {
            status,
            code,
            message,
        }),
    }
}

/// Sends one summary without taking the uploader lock (e.g. from `agentos ccc session end` while
/// a background uploader runs elsewhere): `POST /v1/metrics` with `egress_summary(summary, cap)`
/// where `cap` is [`Settings::cap`], retrying transient failures until `timeout`. Records the
/// sent hash so a later sync does not send the same body again. A cap that allows no metrics
/// returns [`SummaryOutcome::Withheld`] without any connection.
///
/// # Errors
/// [`DeliveryError::NoUrl`], [`DeliveryError::BadUrl`], [`DeliveryError::Refused`],
/// [`DeliveryError::SummaryRejected`].
pub async fn upload_summary(
    settings: &Settings,
    summary: &Summary,
    timeout: Duration,
) -> Result<SummaryOutcome, DeliveryError> {
    let Some(body) = summary_body(summary, settings.cap()) else {
        return Ok(SummaryOutcome::Withheld);
    };
    let paths = Paths::new(&settings.data_dir);
    let mut sender = Sender::new(settings);
    send_body(
        &mut sender,
        settings,
        &paths,
        &body,
        Some(Instant::now() + timeout),
        None,
    )
    .await
}

/// Blocking form of [`upload_summary`] for synchronous callers (builds a small runtime).
///
/// # Errors
/// As [`upload_summary`]; also a runtime that cannot be built.
///
/// # Panics
/// When called from inside a tokio runtime (use [`upload_summary`] there).
pub fn upload_summary_blocking(
    settings: &Settings,
    summary: &Summary,
    timeout: Duration,
) -> Result<SummaryOutcome, DeliveryError> {
    if !settings.cap().allows(Egress::Metrics) {
        return Ok(SummaryOutcome::Withheld);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DeliveryError::io("starting runtime for", &settings.data_dir, e))?;
    rt.block_on(upload_summary(settings, summary, timeout))
}
