//! The v1 event model: what the recorder writes to `windows.jsonl`, what leaves the machine
//! (after privacy redaction) and what the collector stores.
//!
//! # Wire/disk layout (frozen for v1: do not rename, reorder or retype fields)
//!
//! One envelope per line, flat:
//!
//! ```text
//! {"type":"session","event_id":UUIDv7,"seq":u64,"recorded_at":RFC3339,"tier":"local|minimized|full","session":{…}}
//! {"type":"turn",   …envelope fields…, "turn":{…}, "measurement"?, "feature"?, "cost"?, "value"?, "decision"?}
//! {"type":"session_end", …envelope fields…, "session_id":…, "ended_at":RFC3339, "notes"?}
//! ```
//!
//! Invariants: `event_id` never changes once written (it is the idempotency key end to end);
//! `seq` is strictly increasing and gap-free per data dir (drop detection depends on it);
//! `tier` is the tier the event was recorded under, so raising the tier later never uploads
//! history recorded under a stricter one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tier::Tier;

/// Stable identity of one recorded event (a UUIDv7, so ids sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub uuid::Uuid);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Identity of a recorded session.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of one turn within a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TurnId(pub String);

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of the local log: identity and ordering fields plus the typed payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Stable id of this event.
    pub event_id: EventId,
    /// Per-data-dir sequence number (strictly increasing, gap-free).
    pub seq: u64,
    /// When the recorder wrote the event (UTC).
    pub recorded_at: jiff::Timestamp,
    /// Privacy tier the event was recorded under.
    pub tier: Tier,
    /// The payload; its variant is the `type` field on the wire.
    #[serde(flatten)]
    pub body: EventBody,
}

/// The payload of an [`Envelope`], tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "turns are the common case; boxing them would cost an allocation per event for no gain"
)]
pub enum EventBody {
    /// A session started.
    Session(SessionEvent),
    /// One agent turn, with optional measurement, feature, cost, value and decision records.
    Turn(TurnEvent),
    /// A session ended.
    SessionEnd(SessionEnd),
}

impl EventBody {
    /// The wire name of this variant (`session`, `turn`, `session_end`).
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Session(_) => "session",
            EventBody::Turn(_) => "turn",
            EventBody::SessionEnd(_) => "session_end",
        }
    }

    /// The session this event belongs to.
    pub fn session_id(&self) -> &SessionId {
        match self {
            EventBody::Session(s) => &s.session.session_id,
            EventBody::Turn(t) => &t.turn.session_id,
            EventBody::SessionEnd(e) => &e.session_id,
        }
    }
}

/// Body of a `session` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// The session record.
    pub session: Session,
}

/// Body of a `turn` event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TurnEvent {
    /// The turn itself.
    pub turn: Turn,
    /// Quality measurements for the work done in this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<Measurement>,
    /// The feature this turn worked on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<Feature>,
    /// Estimated cost of the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// What the turn delivered, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<ValueRecord>,
    /// Routing decision fields (from a CCC shim or a router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// Body of a `session_end` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// The session that ended.
    pub session_id: SessionId,
    /// When it ended (UTC).
    pub ended_at: jiff::Timestamp,
    /// Free text; never leaves the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The `session` record (schema `session.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Session id.
    pub session_id: SessionId,
    /// Repository the agent works in.
    pub repo_id: String,
    /// Branch at session start.
    pub branch: String,
    /// Commit at session start.
    pub commit: String,
    /// License id the session was started under (empty when unlicensed).
    pub license_id: String,
    /// Tier in force for this session.
    pub privacy_tier: Tier,
    /// Session start (RFC 3339).
    pub created_at: jiff::Timestamp,
    /// Free-form metadata; only allowlisted keys ever leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Largest `tokens_in` / `tokens_out` of one turn (the v1 schema's `maximum`, enforced when
/// recording and by the collector). No real turn comes near a trillion tokens; the bound keeps
/// every per-turn count exact in a JSON double and in a signed 64-bit column, and makes a
/// million turns' sum still fit.
pub const MAX_TURN_TOKENS: u64 = 1_000_000_000_000;

/// The `turn` record (schema `turn.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Turn {
    /// Turn id (unique within the session).
    pub turn_id: TurnId,
    /// Owning session.
    pub session_id: SessionId,
    /// Model that served the turn.
    pub model: String,
    /// Sub-agent name (empty for the main agent).
    pub subagent: String,
    /// Input tokens, at most [`MAX_TURN_TOKENS`].
    pub tokens_in: u64,
    /// Output tokens, at most [`MAX_TURN_TOKENS`].
    pub tokens_out: u64,
    /// Kind of input.
    pub input_kind: InputKind,
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// Value attribution: model → share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<BTreeMap<String, f64>>,
    /// Capacity consumed by this turn (provider units; pp or prompts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_used: Option<f64>,
    /// Input tokens written to the prompt cache (v1.1; absent when the source does not say).
    /// Not included in `tokens_in`, exactly as the provider reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// Input tokens read from the prompt cache (v1.1; absent when the source does not say).
    /// Not included in `tokens_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    /// Where the turn came from (v1.1; absent for turns recorded by hand or by older clients).
    /// With a source, `turn_id` is derived from the request's identity (see
    /// [`crate::origin`]), so the same request recorded twice has the same turn id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TurnSource>,
}

/// The origin of a turn (v1.1 `turn.source`). A closed set: a new source is a schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnSource {
    /// Claude Code, from its transcripts (via the hooks or `ccc ingest claude`: same ids).
    ClaudeCode,
    /// Codex CLI, from its session rollouts (`agentos ingest codex --record`).
    Codex,
    /// Claude Code's own OpenTelemetry export (`claude_code.api_request` log events received
    /// by the collector's OTLP listener). Its ids cannot match a transcript's, so the collector
    /// counts a session from one source only (see `docs/opentelemetry.md`).
    Otlp,
}

impl TurnSource {
    /// The wire name (`claude_code`, `codex`, `otlp`).
    pub fn as_str(self) -> &'static str {
        match self {
            TurnSource::ClaudeCode => "claude_code",
            TurnSource::Codex => "codex",
            TurnSource::Otlp => "otlp",
        }
    }
}

impl fmt::Display for TurnSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind of input a turn consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Text prompt.
    #[default]
    Text,
    /// Image input.
    Image,
    /// Anything else.
    Other,
}

/// The `measurement` record (schema `measurement.json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// Cognitive load score.
    pub cls: f64,
    /// Interaction minutes per feature (≥ 0).
    pub impf: f64,
    /// Normalised churn.
    pub churn_score: f64,
    /// Features that went green in this turn.
    pub feature_delta: f64,
    /// Error messages; never leave the machine (only their count does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// Number of errors, set when `errors` was redacted at egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_count: Option<u64>,
}

/// The `feature` record (schema `feature.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Feature id.
    pub feature_id: String,
    /// Pointer to the spec.
    pub spec_ref: String,
    /// Lifecycle status.
    pub status: FeatureStatus,
    /// Free text; never leaves the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Lifecycle of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStatus {
    /// Proposed.
    Proposed,
    /// Implemented, not shipped.
    Implemented,
    /// Shipped.
    Shipped,
}

/// The `cost` record (schema `cost.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Provider name.
    pub provider: String,
    /// Estimated cost in USD (≥ 0).
    pub estimated_usd: f64,
    /// Unit prices used for the estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_costs: Option<BTreeMap<String, f64>>,
}

/// The `value` record (schema `value.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueRecord {
    /// One-line summary.
    pub summary: String,
    /// Links (PRs, commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
    /// Evidence references; never leave the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_refs: Option<Vec<String>>,
}

/// The `decision` record (schema `decision.json`): routing fields, extra fields allowed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Decision {
    /// `hybrid`, `preemptive` or `run2cap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reroute_mode: Option<String>,
    /// The quota decision (e.g. `quota_pass`, `fallback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reroute_decision: Option<String>,
    /// Preferred-lane attempt counter (the shim writes 0/1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_attempt: Option<u64>,
    /// Calibrated warn fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_pct_auto: Option<f64>,
    /// Confidence of the calibration (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_pct_confidence: Option<f64>,
    /// Configured warn fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_pct_cfg: Option<f64>,
    /// Calibration gap p50 (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_seconds_p50: Option<f64>,
    /// Calibration gap p95 (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_seconds_p95: Option<f64>,
    /// Calibration samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_samples: Option<u64>,
    /// Any other routing field, kept verbatim.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
