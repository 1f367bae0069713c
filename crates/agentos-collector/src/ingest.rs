//! Parsing and checking a `POST /v1/events` body (pure: no I/O, so it can be property-tested).
//!
//! Body forms (protocol v1):
//! - batch: `{"device_id":…, "batch_id":…, "covers":{"from":F,"to":T}, "events":[envelope, …]}`;
//! - a single bare envelope (has a top-level `type`): the device comes from the
//!   `X-AgentOS-Device` header (or `default`) and it covers only its own seq.
//!
//! Whole-request problems are [`ApiError`]s (400 malformed JSON with line and column, 422 with
//! the JSON pointer of a bad shape). Problems with one event are [`Rejection`]s: the event is
//! not stored, the rest of the batch is, and its seq still counts as covered (the client moves
//! it to `rejected.jsonl` and must not resend it forever) — when it is a valid seq (1 to
//! 2^63−1); any other is not covered at all.
//!
//! Per-event checks, in order: the v1 envelope schema (`agentos_core::schema`), the tier (only
//! `full` events may arrive as events), the redaction table (fields that must never leave the
//! device are refused, so the server is a second privacy guard), and value ranges the database
//! needs (seq ≤ 2^63−1, no NUL in stored strings).

use std::collections::{HashMap, HashSet};

use agentos_core::privacy::{EVENT_FIELD_RULES, FieldRule};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::coverage::SeqRange;
use crate::error::ApiError;
use crate::store::NewEvent;

/// Device used when neither the body nor the `X-AgentOS-Device` header names one.
pub const DEFAULT_DEVICE: &str = "default";
/// Longest accepted device id.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// Request and connection limits (see [`crate::server`] for how they bound memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body in bytes (413 above).
    pub body_bytes: usize,
    /// Most events in one batch (422 above).
    pub batch_events: usize,
    /// Most open client connections (one more gets 503 and is closed).
    pub max_connections: usize,
    /// Most request bodies being read or processed at once (503 beyond).
    pub max_inflight_bodies: usize,
    /// Time for a client to deliver a request header; also the idle limit of a kept-alive
    /// connection between requests.
    pub header_timeout: std::time::Duration,
    /// After a shutdown signal, how long in-flight requests may still run before their
    /// connections are closed.
    pub shutdown_grace: std::time::Duration,
}

/// Default of [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default of [`Limits::max_inflight_bodies`].
pub const DEFAULT_MAX_INFLIGHT_BODIES: usize = 32;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 1024 * 1024,
            batch_events: 1000,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_inflight_bodies: DEFAULT_MAX_INFLIGHT_BODIES,
            header_timeout: std::time::Duration::from_secs(10),
            // A request may run for REQUEST_TIMEOUT; a little more lets it answer.
            shutdown_grace: crate::REQUEST_TIMEOUT + std::time::Duration::from_secs(5),
        }
    }
}

/// One refused event, as reported in the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The event's id, when it had a readable one.
    pub event_id: Option<String>,
    /// The event's seq, when it had a readable one.
    pub seq: Option<u64>,
    /// Stable code: `schema_violation`, `tier_not_allowed`, `unredacted_field`, `invalid_value`.
    pub code: &'static str,
    /// Human-readable reason naming the JSON pointer.
    pub reason: String,
}

/// A checked batch, ready for the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedBatch {
    /// Device the events belong to.
    pub device_id: String,
    /// The client's batch id, if sent.
    pub batch_id: Option<uuid::Uuid>,
    /// Seq ranges this request accounts for (the `covers` range plus every event's seq).
    pub covered: Vec<SeqRange>,
    /// Events to store (first occurrence of each id in the batch).
    pub events: Vec<NewEvent>,
    /// Events refused.
    pub rejected: Vec<Rejection>,
    /// Events whose id appeared earlier in the same batch.
    pub duplicates_in_batch: u64,
    /// Seqs the client holds back for a later run (`held`).
    pub held: Vec<SeqRange>,
    /// Seqs the client forgot on purpose (`forgotten`).
    pub forgotten: Vec<SeqRange>,
    /// Seqs of every event in the batch, valid or not.
    pub arrived: Vec<u64>,
}

const BATCH_KEYS: [&str; 6] = [
    "device_id",
    "batch_id",
    "covers",
    "held",
    "forgotten",
    "events",
];

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::MalformedJson(format!("malformed JSON: {e}"))
}

fn is_syntax(e: &serde_json::Error) -> bool {
    matches!(
        e.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    )
}

/// Checks a device id (from the body or the header).
///
/// # Errors
/// 422 at `pointer` when it is empty, too long or contains control characters.
pub fn check_device_id(id: &str, pointer: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_DEVICE_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            pointer,
            format!(
                "device id must be 1-{MAX_DEVICE_ID_LEN} characters without control characters"
            ),
        ));
    }
    Ok(())
}

/// Parses and checks a `/v1/events` body.
///
/// # Errors
/// 400 for malformed JSON (message names line and column), 422 with a JSON pointer for a body
/// of the wrong shape or a batch over `limits.batch_events`.
pub fn parse_batch(
    body: &[u8],
    header_device: Option<&str>,
    limits: &Limits,
) -> Result<ParsedBatch, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::MalformedJson(format!(
            "malformed JSON: body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    if let Some(fast) = parse_fast(text, header_device, limits) {
        return fast;
    }
    let top: HashMap<String, &RawValue> = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) if is_syntax(&e) => return Err(malformed(&e)),
        Err(_) => {
            // Valid JSON but not an object: report the shape, not the parser's wording.
            return Err(ApiError::invalid(
                "",
                "the body must be a JSON object: a batch {device_id, batch_id, covers, events} or one event",
            ));
        }
    };
    let header_device = header_device.unwrap_or(DEFAULT_DEVICE);
    parse_slow(text, top, header_device, limits)
}

/// The common, well-formed batch in one pass over the body (events stay borrowed raw text).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBatch<'a> {
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    batch_id: Option<uuid::Uuid>,
    #[serde(default)]
    covers: Option<WireCovers>,
    #[serde(default)]
    held: Vec<[u64; 2]>,
    #[serde(default)]
    forgotten: Vec<[u64; 2]>,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCovers {
    from: u64,
    to: u64,
}

fn parse_fast(
    text: &str,
    header_device: Option<&str>,
    limits: &Limits,
) -> Option<Result<ParsedBatch, ApiError>> {
    let wire: WireBatch<'_> = serde_json::from_str(text).ok()?;
    let device_id = wire
        .device_id
        .unwrap_or_else(|| header_device.unwrap_or(DEFAULT_DEVICE).to_string());
    let covers_ok = wire
        .covers
        .as_ref()
        .is_none_or(|c| c.from <= c.to && i64::try_from(c.to).is_ok())
        && wire
            .held
            .iter()
            .chain(&wire.forgotten)
            .all(|[a, b]| a <= b && i64::try_from(*b).is_ok());
    if check_device_id(&device_id, "/device_id").is_err()
        || wire.events.len() > limits.batch_events
        || !covers_ok
    {
        // Let the slow path word the error.
        return None;
    }
    let mut out = ParsedBatch {
        device_id,
        batch_id: wire.batch_id,
        // Held-back and forgotten seqs are accounted for by the client: covered, not gaps.
        covered: wire
            .covers
            .map(|c| (c.from, c.to))
            .into_iter()
            .chain(
                wire.held
                    .iter()
                    .chain(&wire.forgotten)
                    .map(|[a, b]| (*a, *b)),
            )
            .collect(),
        events: Vec::with_capacity(wire.events.len()),
        rejected: Vec::new(),
        duplicates_in_batch: 0,
        held: wire.held.iter().map(|[a, b]| (*a, *b)).collect(),
        forgotten: wire.forgotten.iter().map(|[a, b]| (*a, *b)).collect(),
        arrived: Vec::new(),
    };
    let mut seen = HashSet::with_capacity(wire.events.len());
    for raw in wire.events {
        push_event(&mut out, raw.get(), &mut seen);
    }
    Some(Ok(out))
}

fn parse_slow(
    text: &str,
    top: HashMap<String, &RawValue>,
    header_device: &str,
    limits: &Limits,
) -> Result<ParsedBatch, ApiError> {
    if top.contains_key("type") {
        check_device_id(header_device, "")?;
        let mut out = ParsedBatch {
            device_id: header_device.to_string(),
            batch_id: None,
            covered: Vec::new(),
            events: Vec::new(),
            rejected: Vec::new(),
            duplicates_in_batch: 0,
            held: Vec::new(),
            forgotten: Vec::new(),
            arrived: Vec::new(),
        };
        push_event(&mut out, text, &mut HashSet::new());
        return Ok(out);
    }

    if let Some(unknown) = top.keys().find(|k| !BATCH_KEYS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            format!("/{}", unknown.replace('~', "~0").replace('/', "~1")),
            format!(
                "unknown field `{unknown}` (a batch has {}; a single event has `type`)",
                BATCH_KEYS.join(", ")
            ),
        ));
    }
    let device_id = match top.get("device_id") {
        None => header_device.to_string(),
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(s) => s,
            Err(_) => return Err(ApiError::invalid("/device_id", "must be a string")),
        },
    };
    check_device_id(&device_id, "/device_id")?;
    let batch_id = match top.get("batch_id") {
        None => None,
        Some(raw) => match serde_json::from_str::<String>(raw.get())
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(&s).ok())
        {
            Some(u) => Some(u),
            None => return Err(ApiError::invalid("/batch_id", "must be a UUID string")),
        },
    };
    let mut covered = Vec::new();
    if let Some(raw) = top.get("covers") {
        covered.push(parse_covers(raw)?);
    }
    let held = match top.get("held") {
        Some(raw) => parse_ranges(raw, "held")?,
        None => Vec::new(),
    };
    let forgotten = match top.get("forgotten") {
        Some(raw) => parse_ranges(raw, "forgotten")?,
        None => Vec::new(),
    };
    covered.extend(held.iter().chain(&forgotten).copied());
    let Some(events_raw) = top.get("events") else {
        return Err(ApiError::invalid("/events", "missing `events` array"));
    };
    let events: Vec<&RawValue> = serde_json::from_str(events_raw.get())
        .map_err(|_| ApiError::invalid("/events", "must be an array of event objects"))?;
    if events.len() > limits.batch_events {
        return Err(ApiError::invalid(
            "/events",
            format!(
                "batch has {} events, the limit is {}",
                events.len(),
                limits.batch_events
            ),
        ));
    }
    let mut out = ParsedBatch {
        device_id,
        batch_id,
        covered,
        events: Vec::with_capacity(events.len()),
        rejected: Vec::new(),
        duplicates_in_batch: 0,
        held,
        forgotten,
        arrived: Vec::new(),
    };
    let mut seen = HashSet::with_capacity(events.len());
    for raw in events {
        push_event(&mut out, raw.get(), &mut seen);
    }
    Ok(out)
}

/// `held` / `forgotten`: `[[from, to], …]` seq ranges the client accounts for without sending.
fn parse_ranges(raw: &RawValue, key: &str) -> Result<Vec<SeqRange>, ApiError> {
    let ranges: Vec<[u64; 2]> = serde_json::from_str(raw.get()).map_err(|_| {
        ApiError::invalid(format!("/{key}"), "must be an array of [from, to] pairs")
    })?;
    for (i, [a, b]) in ranges.iter().enumerate() {
        if a > b || i64::try_from(*b).is_err() {
            return Err(ApiError::invalid(
                format!("/{key}/{i}"),
                format!("[{a}, {b}] is not a range of seqs between 0 and 2^63-1"),
            ));
        }
    }
    Ok(ranges.into_iter().map(|[a, b]| (a, b)).collect())
}

fn parse_covers(raw: &RawValue) -> Result<SeqRange, ApiError> {
    let v: Value = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::invalid("/covers", "must be an object {from, to}"))?;
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid("/covers", "must be an object {from, to}"));
    };
    if let Some(k) = obj.keys().find(|k| *k != "from" && *k != "to") {
        return Err(ApiError::invalid(
            format!("/covers/{}", k.replace('~', "~0").replace('/', "~1")),
            format!("unknown field `{k}` (covers has from and to)"),
        ));
    }
    let get = |name: &str| -> Result<u64, ApiError> {
        obj.get(name)
            .and_then(Value::as_u64)
            .filter(|&n| i64::try_from(n).is_ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("/covers/{name}"),
                    "must be an integer between 0 and 2^63-1",
                )
            })
    };
    let (from, to) = (get("from")?, get("to")?);
    if from > to {
        return Err(ApiError::invalid(
            "/covers",
            format!("from ({from}) is greater than to ({to})"),
        ));
    }
    Ok((from, to))
}

fn push_event(out: &mut ParsedBatch, raw: &str, seen: &mut HashSet<String>) {
    let value: Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        // Unreachable in practice (the outer parse validated the syntax), but never panic.
        Err(e) => {
            out.rejected.push(Rejection {
                event_id: None,
                seq: None,
                code: "malformed_json",
                reason: e.to_string(),
            });
            return;
        }
    };
    let seq = value.get("seq").and_then(Value::as_u64);
    // Only a seq the protocol allows counts as covered, like `covers` itself: an event refused
    // for seq = 2^64-1 must not open a gap of 2^64-2 seqs below it.
    if let Some(s) = seq.filter(|s| (1..=i64::MAX as u64).contains(s)) {
        out.covered.push((s, s));
        out.arrived.push(s);
    }
    let checked = check_event(&value, raw).and_then(|ev| {
        // `otlp` turns are made by the collector's OpenTelemetry receiver; a device sending
        // one would take part in the session precedence it has no business in.
        if ev.source.as_deref() == Some("otlp") {
            return Err((
                "invalid_value",
                "/turn/source: `otlp` turns are made by the collector from OpenTelemetry; a client may not send them".to_string(),
            ));
        }
        Ok(ev)
    });
    match checked {
        Ok(ev) => {
            if seen.insert(ev.event_id.clone()) {
                out.events.push(ev);
            } else {
                out.duplicates_in_batch += 1;
            }
        }
        Err((code, reason)) => out.rejected.push(Rejection {
            event_id: value
                .get("event_id")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(64).collect()),
            seq,
            code,
            reason,
        }),
    }
}

/// Why one event is refused: a stable code and a reason naming the JSON pointer.
pub type Refusal = (&'static str, String);

/// Checks one envelope and extracts what the store indexes.
///
/// # Errors
/// `(code, reason)` for a refused event.
pub fn check_event(value: &Value, raw: &str) -> Result<NewEvent, Refusal> {
    agentos_core::schema::validate_envelope(value)
        .map_err(|e| ("schema_violation", e.to_string()))?;
    let tier = value.get("tier").and_then(Value::as_str).unwrap_or("");
    if tier != "full" {
        return Err((
            "tier_not_allowed",
            format!(
                "/tier: an event recorded under tier `{tier}` may not leave the device as an event (only `full`)"
            ),
        ));
    }
    check_redacted(value)?;
    event_fields(value, raw)
}

/// Extracts what the store indexes from an envelope that is known to be well-formed (checked
/// by [`check_event`], or the user's own log read by local mode, where tier and redaction do not
/// apply because nothing leaves the machine).
///
/// # Errors
/// `(code, reason)` for values the database cannot hold.
pub fn event_fields(value: &Value, raw: &str) -> Result<NewEvent, Refusal> {
    let invalid = |pointer: &str, what: &str| ("invalid_value", format!("{pointer}: {what}"));
    let event_id = value
        .get("event_id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or_else(|| invalid("/event_id", "not a UUID"))?;
    let seq = value
        .get("seq")
        .and_then(Value::as_u64)
        .and_then(|s| i64::try_from(s).ok())
        .ok_or_else(|| invalid("/seq", "must be an integer between 1 and 2^63-1"))?;
    let recorded_at: jiff::Timestamp = value
        .get("recorded_at")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("/recorded_at", "not an RFC 3339 timestamp"))?;
    let kind = match value.get("type").and_then(Value::as_str) {
        Some("session") => "session",
        Some("turn") => "turn",
        Some("session_end") => "session_end",
        _ => return Err(invalid("/type", "unknown event type")),
    };
    let mut ev = NewEvent {
        event_id: event_id.hyphenated().to_string(),
        seq,
        kind,
        recorded_at_us: recorded_at.as_microsecond(),
        model: None,
        tokens_in: None,
        tokens_out: None,
        cache_creation_tokens: None,
        cache_read_tokens: None,
        latency_ms: None,
        body: raw.to_string(),
        turn_key: None,
        session_id: None,
        source: None,
        cost_usd: None,
        repo_id: None,
        features: 0.0,
        capacity: 0.0,
    };
    if let Some(session) = value.get("session") {
        ev.session_id = session
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        ev.repo_id = session
            .get("repo_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        if [&ev.session_id, &ev.repo_id]
            .into_iter()
            .flatten()
            .any(|s| s.contains('\0'))
        {
            return Err(invalid("/session", "contains a NUL character"));
        }
    }
    let finite = |v: Option<&Value>| v.and_then(Value::as_f64).filter(|f| f.is_finite());
    ev.cost_usd =
        finite(value.get("cost").and_then(|c| c.get("estimated_usd"))).filter(|c| *c >= 0.0);
    ev.features = finite(
        value
            .get("measurement")
            .and_then(|m| m.get("feature_delta")),
    )
    .unwrap_or(0.0);
    if let Some(turn) = value.get("turn") {
        // A derived turn id (v1.1 `source`) names the request itself: the same request from
        // another path is the same turn (the schema already checked both are strings).
        if let (Some(source), Some(id)) = (
            turn.get("source").and_then(Value::as_str),
            turn.get("turn_id").and_then(Value::as_str),
        ) {
            ev.turn_key = Some(format!("{source}:{id}"));
        }
        let model = turn.get("model").and_then(Value::as_str).unwrap_or("");
        if model.contains('\0') {
            return Err(invalid("/turn/model", "contains a NUL character"));
        }
        ev.model = Some(model.to_string());
        ev.session_id = turn
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        if ev.session_id.as_deref().is_some_and(|s| s.contains('\0')) {
            return Err(invalid("/turn/session_id", "contains a NUL character"));
        }
        ev.source = turn
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_string);
        ev.capacity = finite(turn.get("capacity_used")).unwrap_or(0.0);
        // The schema bounds them by MAX_TURN_TOKENS; a count it lets through that is not a
        // plain integer (`1.0e3`) would be stored as NULL, so it is refused here instead.
        let tokens = |k: &str| -> Result<Option<i64>, Refusal> {
            match turn.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n <= agentos_core::event::MAX_TURN_TOKENS)
                    .and_then(|n| i64::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| {
                        invalid(
                            &format!("/turn/{k}"),
                            &format!(
                                "must be an integer between 0 and {}",
                                agentos_core::event::MAX_TURN_TOKENS
                            ),
                        )
                    }),
            }
        };
        ev.tokens_in = tokens("tokens_in")?;
        ev.tokens_out = tokens("tokens_out")?;
        ev.cache_creation_tokens = tokens("cache_creation_tokens")?;
        ev.cache_read_tokens = tokens("cache_read_tokens")?;
        ev.latency_ms = turn
            .get("latency_ms")
            .and_then(Value::as_f64)
            .filter(|f| f.is_finite());
    }
    Ok(ev)
}

/// Refuses fields that the redaction table says never leave the device. `session.metadata`
/// cannot be checked here (its allowlist is the user's), everything else can.
fn check_redacted(value: &Value) -> Result<(), Refusal> {
    let Some(obj) = value.as_object() else {
        return Ok(());
    };
    let is_session_end = obj.get("type").and_then(Value::as_str) == Some("session_end");
    for (path, rule) in EVENT_FIELD_RULES {
        let (head, field) = match path.split_once('.') {
            Some((h, f)) => (h, Some(f)),
            None => (*path, None),
        };
        let (target, prefix) = if head == "session_end" {
            if !is_session_end {
                continue;
            }
            (Some(obj), String::new())
        } else {
            (obj.get(head).and_then(Value::as_object), format!("/{head}"))
        };
        let Some(target) = target else { continue };
        let refused = match (rule, field) {
            (FieldRule::Drop | FieldRule::CountInto(_), Some(f)) => target
                .get(f)
                .is_some_and(|v| !v.is_null())
                .then(|| f.to_string()),
            (FieldRule::KeepOnly(keep), None) => {
                target.keys().find(|k| !keep.contains(&k.as_str())).cloned()
            }
            (FieldRule::KeepOnly(keep), Some(f)) => target
                .get(f)
                .and_then(Value::as_object)
                .and_then(|m| m.keys().find(|k| !keep.contains(&k.as_str())).cloned())
                .map(|k| format!("{f}/{k}")),
            _ => None,
        };
        if let Some(f) = refused {
            return Err((
                "unredacted_field",
                format!(
                    "{prefix}/{f}: this field never leaves the device (redact it before upload)"
                ),
            ));
        }
    }
    Ok(())
}
