//! What would leave the machine under a tier, computed with the same core functions and the
//! same serialization (`serde_json::to_vec`) the uploader uses.
//!
//! Events: every valid line of `windows.jsonl` through [`agentos_core::privacy::egress_event`]
//! (the tier in force is the previewed tier; each event's own recorded tier still caps it).
//! Metrics: `metrics_summary.json` (or, if absent, a recompute of the log) through
//! [`agentos_core::privacy::egress_summary`].

use std::path::Path;

use agentos_core::privacy::{self, RedactionPolicy};
use agentos_core::rollup::Summary;
use agentos_core::tier::{Egress, Tier};

use crate::log::LogWarning;
use crate::recorder::{Paths, RecorderError};
use agentos_config::Config;

/// The bytes that would leave, by endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The previewed tier.
    pub tier: Tier,
    /// `POST /v1/events`: each redacted envelope exactly as serialized into a batch.
    pub events: Vec<Vec<u8>>,
    /// Valid events that would be withheld (their tier, or the previewed one, forbids them).
    pub withheld: u64,
    /// `POST /v1/metrics` body, if anything may go there.
    pub metrics: Option<Vec<u8>>,
    /// Lines of the log that were skipped.
    pub warnings: Vec<LogWarning>,
}

/// The redaction policy from the configuration.
pub fn policy(cfg: &Config) -> RedactionPolicy {
    RedactionPolicy {
        metadata_allowlist: cfg.privacy.metadata_allowlist.iter().cloned().collect(),
    }
}

/// Computes the preview of `cfg`'s data dir under `tier`.
///
/// # Errors
/// I/O errors reading the log or the summary; a corrupt summary file is recomputed instead.
pub fn preview(cfg: &Config, tier: Tier) -> Result<Preview, RecorderError> {
    let paths = Paths::new(&cfg.data_dir);
    let policy = policy(cfg);
    let mut events = Vec::new();
    let mut withheld = 0u64;
    let mut warnings = Vec::new();
    // Reuse the log fold for line handling, but look at each envelope instead of the rollup.
    let mut state = crate::log::LogState::default();
    let io = |source| RecorderError::Io {
        op: "reading",
        path: paths.windows.clone(),
        source,
    };
    if tier.allows(Egress::Events) {
        match std::fs::File::open(&paths.windows) {
            Ok(f) => {
                let mut sink = |env: &agentos_core::event::Envelope| match privacy::egress_event(
                    env, tier, &policy,
                ) {
                    Some(v) => events.push(serde_json::to_vec(&v).unwrap_or_default()),
                    None => withheld += 1,
                };
                state
                    .fold_reader_with(f, &mut warnings, &mut sink)
                    .map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    } else {
        // Nothing goes to /v1/events under this tier; count what is withheld.
        let r = crate::log::recompute(&paths.windows).map_err(io)?;
        withheld = r.state.events;
        warnings = r.warnings;
    }
    let metrics = match privacy::egress_summary(&current_summary(&paths)?, tier) {
        Some(v) => Some(
            serde_json::to_vec(&v).map_err(|e| RecorderError::Serialize {
                what: "metrics body",
                message: e.to_string(),
            })?,
        ),
        None => None,
    };
    Ok(Preview {
        tier,
        events,
        withheld,
        metrics,
        warnings,
    })
}

/// The summary as the uploader would send it: `metrics_summary.json`, or a recompute of the
/// log when the file is missing or unreadable.
///
/// # Errors
/// I/O errors reading the log.
pub fn current_summary(paths: &Paths) -> Result<Summary, RecorderError> {
    if let Some(s) = read_summary(&paths.summary) {
        return Ok(s);
    }
    let r = crate::log::recompute(&paths.windows).map_err(|source| RecorderError::Io {
        op: "reading",
        path: paths.windows.clone(),
        source,
    })?;
    Ok(r.state.rollup.summary(jiff::Timestamp::now()))
}

fn read_summary(path: &Path) -> Option<Summary> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}
