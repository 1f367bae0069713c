//! Wire protocol v1 types the client reads (see `docs/protocol.md`). Request bodies are written
//! by hand in `engine` (events are already serialized one by one while batching).

use serde::{Deserialize, Serialize};

/// Response of `POST /v1/events` (every field defaults, so a terse server still parses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsResponse {
    /// Events stored for the first time.
    pub accepted: u64,
    /// Events the server already had (by `event_id`).
    pub duplicates: u64,
    /// Per-event permanent rejections.
    pub rejected: Vec<RejectedEvent>,
    /// Highest seq S such that every seq 1..=S of this device is covered.
    pub watermark: u64,
    /// Uncovered ranges below the highest covered seq.
    pub gaps: Vec<[u64; 2]>,
    /// Seqs the client reported as held back (covered, expected later).
    pub held: Vec<[u64; 2]>,
    /// Seqs the client reported as forgotten on purpose.
    pub forgotten: Vec<[u64; 2]>,
}

/// One per-event rejection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RejectedEvent {
    /// The event's id.
    pub event_id: Option<String>,
    /// The event's seq.
    pub seq: Option<u64>,
    /// Stable code.
    pub code: String,
    /// Why.
    pub reason: String,
}

/// Body of every error response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}
