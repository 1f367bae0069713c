//! The OpenTelemetry receiver's pure part: decoding OTLP/HTTP request bodies and mapping
//! Claude Code's telemetry to turns and metric points (no I/O, so it can be fuzzed). The
//! handlers are in [`crate::routes::otlp`]; the design is in `docs/opentelemetry.md`.
//!
//! - Bodies: `application/x-protobuf` or `application/json` (OTLP/JSON, decoded with the
//!   `opentelemetry-proto` serde derives: camelCase fields, 64-bit integers as strings or
//!   numbers, hex ids), optionally `Content-Encoding: gzip`, capped after decompression.
//! - Logs: each `claude_code.api_request` record becomes one `turn` event of source `otlp`,
//!   built as a v1 envelope and checked by [`crate::ingest::check_event`] like any uploaded
//!   event. Other Claude Code events are acknowledged and not stored.
//! - Metrics: data points of `claude_code.token.usage` and `claude_code.cost.usage` become
//!   [`MetricPoint`]s (per-session cross-checks); other metrics are acknowledged and ignored.
//! - Privacy: nothing but the mapped fields is ever stored. Free-text attributes (the prompt,
//!   tool parameters, error text, …; see [`FREE_TEXT_KEYS`]) are dropped and counted.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyInner;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as PointValue;
use serde_json::json;

use crate::store::NewEvent;

/// Default of [`OtlpLimits::max_body_bytes`]: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Attribute keys whose values are free text (prompts, tool inputs, commands, error messages):
/// never stored, counted as dropped wherever they appear.
pub const FREE_TEXT_KEYS: [&str; 9] = [
    "prompt",
    "tool_parameters",
    "tool_input",
    "tool_output",
    "body",
    "error",
    "bash_command",
    "full_command",
    "description",
];

/// Limits of the OTLP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtlpLimits {
    /// Largest request body in bytes, on the wire and again after gzip decompression (413).
    pub max_body_bytes: usize,
    /// Most log records (or metric data points) handled per request; the rest are rejected
    /// and reported in the partial-success answer.
    pub max_records: usize,
    /// Most attributes read per record; the rest are dropped and counted.
    pub max_attributes: usize,
    /// Most OTLP requests processed at once; more are answered 429 with `Retry-After`
    /// (0 refuses every request: a collector that only serves the main port's readers).
    pub max_inflight: usize,
    /// Seconds in `Retry-After` when over [`OtlpLimits::max_inflight`].
    pub retry_after_secs: u32,
}

impl Default for OtlpLimits {
    fn default() -> Self {
        OtlpLimits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_records: 10_000,
            max_attributes: 128,
            max_inflight: 4,
            retry_after_secs: 1,
        }
    }
}

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Why a whole OTLP request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// Neither protobuf nor JSON, or an encoding other than gzip (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over [`OtlpLimits::max_body_bytes`], compressed or not (413).
    #[error("request body is larger than the limit of {limit} bytes{}", if *.decompressed { " after decompression" } else { "" })]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
        /// Whether the limit was hit while decompressing.
        decompressed: bool,
    },
    /// The body is not a valid message of the endpoint's type (400).
    #[error("{0}")]
    Undecodable(String),
}

/// The encoding named by a `Content-Type` header (parameters such as `charset` ignored).
///
/// # Errors
/// [`OtlpError::UnsupportedMediaType`] for anything else, naming what was sent.
pub fn encoding_of(content_type: Option<&str>) -> Result<Encoding, OtlpError> {
    let essence = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/x-protobuf" | "application/protobuf") => Ok(Encoding::Protobuf),
        Some("application/json") => Ok(Encoding::Json),
        other => Err(OtlpError::UnsupportedMediaType(format!(
            "content-type `{}` is not supported: send application/x-protobuf or application/json",
            other.unwrap_or("")
        ))),
    }
}

/// Undoes `Content-Encoding` (`gzip` or `identity`/none), reading at most `cap` bytes of output
/// so that a small compressed body cannot expand past the limit in memory.
///
/// # Errors
/// 415 for another encoding, 413 over `cap`, 400 for a corrupt gzip stream.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    cap: usize,
) -> Result<Cow<'a, [u8]>, OtlpError> {
    let enc = content_encoding.map(|e| e.trim().to_ascii_lowercase());
    match enc.as_deref() {
        None | Some("" | "identity") => {
            if body.len() > cap {
                return Err(OtlpError::TooLarge {
                    limit: cap,
                    decompressed: false,
                });
            }
            Ok(Cow::Borrowed(body))
        }
        Some("gzip") => {
            let mut out = Vec::new();
            // One byte past the cap tells "exactly at the cap" from "over it".
            let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::GzDecoder::new(body)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| {
                    OtlpError::Undecodable(format!("gzip body cannot be decompressed: {e}"))
                })?;
            if out.len() > cap {
                return Err(OtlpError::TooLarge {
                    limit: cap,
                    decompressed: true,
                });
            }
            Ok(Cow::Owned(out))
        }
        Some(other) => Err(OtlpError::UnsupportedMediaType(format!(
            "content-encoding `{other}` is not supported: send gzip or none"
        ))),
    }
}

fn decode<M>(bytes: &[u8], encoding: Encoding, what: &str) -> Result<M, OtlpError>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => M::decode(bytes)
            .map_err(|e| OtlpError::Undecodable(format!("body is not a protobuf {what}: {e}"))),
        Encoding::Json => serde_json::from_slice(bytes)
            .map_err(|e| OtlpError::Undecodable(format!("body is not an OTLP/JSON {what}: {e}"))),
    }
}

/// Decodes a `/v1/logs` body (already decompressed).
///
/// # Errors
/// [`OtlpError::Undecodable`] with the decoder's reason.
pub fn decode_logs(
    bytes: &[u8],
    encoding: Encoding,
) -> Result<ExportLogsServiceRequest, OtlpError> {
    decode(bytes, encoding, "ExportLogsServiceRequest")
}

/// Decodes a `/v1/metrics` body (already decompressed).
///
/// # Errors
/// [`OtlpError::Undecodable`] with the decoder's reason.
pub fn decode_metrics(
    bytes: &[u8],
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, OtlpError> {
    decode(bytes, encoding, "ExportMetricsServiceRequest")
}

/// What a logs request maps to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappedLogs {
    /// Turns to store, by synthetic device id (see [`device_id`]), without repeats.
    pub turns: BTreeMap<String, Vec<NewEvent>>,
    /// Log records refused (a malformed `api_request`, or over [`OtlpLimits::max_records`]).
    pub rejected: u64,
    /// `api_request` records repeated within the request (stored once).
    pub repeated: u64,
    /// Reasons of the first refusals, for the partial-success message.
    pub errors: Vec<String>,
    /// Records of other events (`user_prompt`, `tool_result`, …): acknowledged, not stored.
    pub ignored: u64,
    /// Attributes past [`OtlpLimits::max_attributes`] on a record, dropped unread.
    pub dropped_over_limit: u64,
    /// Free-text attributes ([`FREE_TEXT_KEYS`]) dropped.
    pub dropped_free_text: u64,
}

/// Most refusal reasons quoted in one partial-success message.
const MAX_QUOTED_ERRORS: usize = 5;

impl MappedLogs {
    /// Turns in all groups.
    pub fn turn_count(&self) -> usize {
        self.turns.values().map(Vec::len).sum()
    }

    fn refuse(&mut self, why: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_QUOTED_ERRORS {
            self.errors.push(why);
        }
    }
}

fn text(v: &AnyValue) -> Option<Cow<'_, str>> {
    match v.value.as_ref()? {
        AnyInner::StringValue(s) => Some(Cow::Borrowed(s)),
        AnyInner::IntValue(i) => Some(Cow::Owned(i.to_string())),
        AnyInner::DoubleValue(d) => Some(Cow::Owned(d.to_string())),
        AnyInner::BoolValue(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

/// A non-negative integer sent as an int, an integral double or a decimal string (Claude Code
/// sends its token counts as strings).
fn count(v: &AnyValue) -> Option<u64> {
    match v.value.as_ref()? {
        AnyInner::IntValue(i) => u64::try_from(*i).ok(),
        AnyInner::DoubleValue(d) if d.is_finite() && *d >= 0.0 && d.fract() == 0.0 => {
            // Exact: bounded by MAX_TURN_TOKENS by the caller's check.
            Some(*d as u64)
        }
        AnyInner::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A finite number sent as a double, an int or a decimal string.
fn number(v: &AnyValue) -> Option<f64> {
    let f = match v.value.as_ref()? {
        AnyInner::DoubleValue(d) => *d,
        AnyInner::IntValue(i) => *i as f64,
        AnyInner::StringValue(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// The attributes of one record (first [`OtlpLimits::max_attributes`]) with the resource's
/// as a fallback.
struct Attrs<'a> {
    own: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&'a AnyValue> {
        self.own
            .iter()
            .chain(self.resource)
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
    }

    fn text(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).and_then(text)
    }
}

/// The event name of a record: the OTLP `event_name` field, else the `event.name` attribute,
/// else a string body (Claude Code sets the body to `claude_code.<event>` and `event.name` to
/// the bare name).
fn event_name<'a>(rec: &'a LogRecord, attrs: &Attrs<'a>) -> Option<Cow<'a, str>> {
    if !rec.event_name.is_empty() {
        return Some(Cow::Borrowed(&rec.event_name));
    }
    if let Some(n) = attrs.text("event.name") {
        return Some(n);
    }
    rec.body.as_ref().and_then(|b| match b.value.as_ref()? {
        AnyInner::StringValue(s) => Some(Cow::Borrowed(s.as_str())),
        _ => None,
    })
}

fn is_api_request(name: &str) -> bool {
    matches!(name, "claude_code.api_request" | "api_request")
}

/// The synthetic device an OTLP turn is stored under: `otlp:` and the Claude Code account
/// (`user.account_uuid`), else the installation (`user.id`), else `otlp:unknown`. OTLP turns
/// have no device seqs, so these devices never have coverage, gaps or watermarks.
pub fn device_id(account: Option<&str>, installation: Option<&str>) -> String {
    let who = account
        .filter(|s| !s.is_empty())
        .or(installation.filter(|s| !s.is_empty()));
    match who {
        Some(w) => {
            let id = format!("otlp:{w}");
            if crate::ingest::check_device_id(&id, "").is_ok() {
                id
            } else {
                // Too long or with control characters: a stable stand-in.
                format!(
                    "otlp:{}",
                    agentos_core::origin::derive(
                        agentos_core::event::TurnSource::Otlp,
                        &[w.as_bytes()]
                    )
                )
            }
        }
        None => "otlp:unknown".to_string(),
    }
}

fn counts_free_text(kvs: &[KeyValue]) -> u64 {
    kvs.iter()
        .filter(|kv| FREE_TEXT_KEYS.contains(&kv.key.as_str()))
        .count() as u64
}

/// Maps a decoded logs request to turns (see the module docs).
pub fn map_logs(req: &ExportLogsServiceRequest, limits: &OtlpLimits) -> MappedLogs {
    let mut out = MappedLogs::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut index = 0usize;
    for rl in &req.resource_logs {
        let resource: &[KeyValue] = rl.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = &resource[..resource.len().min(limits.max_attributes)];
        out.dropped_free_text += counts_free_text(resource);
        for sl in &rl.scope_logs {
            for rec in &sl.log_records {
                index += 1;
                if index > limits.max_records {
                    out.refuse(format!(
                        "log records past the first {} of a request are not accepted",
                        limits.max_records
                    ));
                    continue;
                }
                let kept = rec.attributes.len().min(limits.max_attributes);
                out.dropped_over_limit += (rec.attributes.len() - kept) as u64;
                let own = &rec.attributes[..kept];
                out.dropped_free_text += counts_free_text(own);
                let attrs = Attrs { own, resource };
                let is_turn = event_name(rec, &attrs).is_some_and(|n| is_api_request(&n));
                if !is_turn {
                    out.ignored += 1;
                    continue;
                }
                match api_request_turn(rec, &attrs) {
                    Ok((device, ev)) => {
                        if seen.insert(ev.event_id.clone()) {
                            out.turns.entry(device).or_default().push(ev);
                        } else {
                            out.repeated += 1;
                        }
                    }
                    Err(why) => out.refuse(format!("log record {index}: {why}")),
                }
            }
        }
    }
    out
}

/// Longest `session.id` or `model` accepted.
const MAX_ID_LEN: usize = 256;

/// One `claude_code.api_request` record as a checked turn event and its device.
fn api_request_turn(rec: &LogRecord, attrs: &Attrs<'_>) -> Result<(String, NewEvent), String> {
    let required = |key: &str| -> Result<Cow<'_, str>, String> {
        let v = attrs
            .text(key)
            .ok_or_else(|| format!("attribute `{key}` is missing"))?;
        if v.is_empty() || v.len() > MAX_ID_LEN || v.chars().any(char::is_control) {
            return Err(format!(
                "attribute `{key}` must be 1-{MAX_ID_LEN} characters without control characters"
            ));
        }
        Ok(v)
    };
    let session = required("session.id")?;
    let model = required("model")?;
    let tokens = |key: &str| -> Result<Option<u64>, String> {
        match attrs.get(key) {
            None => Ok(None),
            Some(v) => count(v)
                .filter(|n| *n <= agentos_core::event::MAX_TURN_TOKENS)
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "attribute `{key}` must be an integer between 0 and {}",
                        agentos_core::event::MAX_TURN_TOKENS
                    )
                }),
        }
    };
    let input = tokens("input_tokens")?.ok_or("attribute `input_tokens` is missing")?;
    let output = tokens("output_tokens")?.ok_or("attribute `output_tokens` is missing")?;
    let cache_read = tokens("cache_read_tokens")?;
    let cache_creation = tokens("cache_creation_tokens")?;
    let nonneg = |key: &str| -> Result<Option<f64>, String> {
        match attrs.get(key) {
            None => Ok(None),
            Some(v) => number(v)
                .filter(|f| *f >= 0.0)
                .map(Some)
                .ok_or_else(|| format!("attribute `{key}` must be a number ≥ 0")),
        }
    };
    let cost = nonneg("cost_usd")?;
    let duration = nonneg("duration_ms")?.unwrap_or(0.0);
    let stamp_attr = attrs.text("event.timestamp");
    let when: jiff::Timestamp = match &stamp_attr {
        Some(s) => s
            .parse()
            .map_err(|e| format!("attribute `event.timestamp` is not an RFC 3339 time: {e}"))?,
        None => {
            let ns = if rec.time_unix_nano != 0 {
                rec.time_unix_nano
            } else {
                rec.observed_time_unix_nano
            };
            if ns == 0 {
                return Err("no `event.timestamp` attribute and no record time".into());
            }
            let ns = i128::from(ns);
            jiff::Timestamp::from_nanosecond(ns)
                .map_err(|e| format!("timeUnixNano is out of range: {e}"))?
        }
    };
    let timestamp_part = stamp_attr
        .clone()
        .unwrap_or_else(|| Cow::Owned(when.as_nanosecond().to_string()));
    let sequence = attrs.text("event.sequence").unwrap_or_default();
    let prompt = attrs.text("prompt.id").unwrap_or_default();
    let turn_id = agentos_core::origin::Origin::OtlpApiRequest {
        session_id: &session,
        sequence: &sequence,
        timestamp: &timestamp_part,
        prompt_id: &prompt,
        model: &model,
    }
    .turn_id();
    let mut turn = json!({
        "turn_id": turn_id.0,
        "session_id": session,
        "model": model,
        "subagent": "",
        "tokens_in": input,
        "tokens_out": output,
        "input_kind": "text",
        "latency_ms": duration,
        "source": agentos_core::event::TurnSource::Otlp.as_str(),
    });
    if let Some(n) = cache_read {
        turn["cache_read_tokens"] = json!(n);
    }
    if let Some(n) = cache_creation {
        turn["cache_creation_tokens"] = json!(n);
    }
    let mut envelope = json!({
        "type": "turn",
        // The turn id is a UUID derived from the request: an exporter retry is the same event.
        "event_id": turn_id.0,
        // OTLP turns have no device seq; 1 satisfies the envelope schema and never counts
        // towards coverage (the OTLP path reports no covered seqs).
        "seq": 1,
        "recorded_at": when.to_string(),
        "tier": "full",
        "turn": turn,
    });
    if let Some(c) = cost {
        envelope["cost"] = json!({"provider": "anthropic", "estimated_usd": c});
    }
    let raw = envelope.to_string();
    let ev = crate::ingest::check_event(&envelope, &raw)
        .map_err(|(code, why)| format!("{code}: {why}"))?;
    let account = attrs.text("user.account_uuid");
    let installation = attrs.text("user.id");
    Ok((device_id(account.as_deref(), installation.as_deref()), ev))
}

/// One data point of `claude_code.token.usage` or `claude_code.cost.usage`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// `session.id`.
    pub session_id: String,
    /// The `type` attribute of token.usage (`input`, `output`, `cacheRead`, `cacheCreation`),
    /// or `cost` for cost.usage.
    pub kind: String,
    /// `model` (empty when absent).
    pub model: String,
    /// `startTimeUnixNano` (0 when absent).
    pub start_ns: i64,
    /// `timeUnixNano`.
    pub time_ns: i64,
    /// Cumulative temporality (the latest point is the series' total) rather than delta.
    pub cumulative: bool,
    /// The value.
    pub value: f64,
}

/// What a metrics request maps to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappedMetrics {
    /// Points to store.
    pub points: Vec<MetricPoint>,
    /// Points refused (no session, a non-finite value, over the limit).
    pub rejected: u64,
    /// Reasons of the first refusals.
    pub errors: Vec<String>,
    /// Points of other metrics: acknowledged, not stored.
    pub ignored: u64,
    /// Attributes past the per-point limit, dropped unread.
    pub dropped_over_limit: u64,
}

/// Name of Claude Code's token counter.
pub const TOKEN_USAGE: &str = "claude_code.token.usage";
/// Name of Claude Code's cost counter.
pub const COST_USAGE: &str = "claude_code.cost.usage";

/// Maps a decoded metrics request to the cross-check points (see the module docs).
pub fn map_metrics(req: &ExportMetricsServiceRequest, limits: &OtlpLimits) -> MappedMetrics {
    let mut out = MappedMetrics::default();
    let mut index = 0usize;
    for rm in &req.resource_metrics {
        let resource: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = &resource[..resource.len().min(limits.max_attributes)];
        for sm in &rm.scope_metrics {
            for metric in &sm.metrics {
                let (points, cumulative): (&[_], bool) = match &metric.data {
                    Some(Data::Sum(s)) => (
                        &s.data_points,
                        // 2 = AGGREGATION_TEMPORALITY_CUMULATIVE.
                        s.aggregation_temporality == 2,
                    ),
                    Some(Data::Gauge(g)) => (&g.data_points, true),
                    _ => (&[], false),
                };
                let wanted = metric.name == TOKEN_USAGE || metric.name == COST_USAGE;
                for p in points {
                    index += 1;
                    if !wanted {
                        out.ignored += 1;
                        continue;
                    }
                    let refuse = |out: &mut MappedMetrics, why: String| {
                        out.rejected += 1;
                        if out.errors.len() < MAX_QUOTED_ERRORS {
                            out.errors.push(why);
                        }
                    };
                    if index > limits.max_records {
                        refuse(
                            &mut out,
                            format!(
                                "data points past the first {} of a request are not accepted",
                                limits.max_records
                            ),
                        );
                        continue;
                    }
                    let kept = p.attributes.len().min(limits.max_attributes);
                    out.dropped_over_limit += (p.attributes.len() - kept) as u64;
                    let attrs = Attrs {
                        own: &p.attributes[..kept],
                        resource,
                    };
                    let value = match p.value {
                        Some(PointValue::AsDouble(d)) => d,
                        Some(PointValue::AsInt(i)) => i as f64,
                        None => f64::NAN,
                    };
                    let Some(session) = attrs
                        .text("session.id")
                        .filter(|s| !s.is_empty() && s.len() <= MAX_ID_LEN && !s.contains('\0'))
                    else {
                        refuse(
                            &mut out,
                            format!(
                                "{} data point {index}: attribute `session.id` is missing",
                                metric.name
                            ),
                        );
                        continue;
                    };
                    if !value.is_finite() || value < 0.0 {
                        refuse(
                            &mut out,
                            format!(
                                "{} data point {index}: the value must be a number ≥ 0",
                                metric.name
                            ),
                        );
                        continue;
                    }
                    let kind = if metric.name == COST_USAGE {
                        "cost".to_string()
                    } else {
                        attrs
                            .text("type")
                            .map(|t| t.into_owned())
                            .unwrap_or_default()
                    };
                    let model = attrs
                        .text("model")
                        .map(|m| m.into_owned())
                        .unwrap_or_default();
                    if kind.len() > MAX_ID_LEN
                        || model.len() > MAX_ID_LEN
                        || kind.contains('\0')
                        || model.contains('\0')
                    {
                        refuse(
                            &mut out,
                            format!(
                                "{} data point {index}: attribute `type` or `model` is too long",
                                metric.name
                            ),
                        );
                        continue;
                    }
                    out.points.push(MetricPoint {
                        session_id: session.into_owned(),
                        kind,
                        model,
                        start_ns: i64::try_from(p.start_time_unix_nano).unwrap_or(i64::MAX),
                        time_ns: i64::try_from(p.time_unix_nano).unwrap_or(i64::MAX),
                        cumulative,
                        value,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_encodings() {
        assert_eq!(
            encoding_of(Some("application/json; charset=utf-8")),
            Ok(Encoding::Json)
        );
        assert_eq!(
            encoding_of(Some("application/x-protobuf")),
            Ok(Encoding::Protobuf)
        );
        assert!(matches!(
            encoding_of(Some("text/plain")),
            Err(OtlpError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            decompress(b"abc", Some("br"), 10),
            Err(OtlpError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            decompress(b"abc", None, 2),
            Err(OtlpError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_gzip_body_is_cut_at_the_cap() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 100_000]).expect("write");
        let small = gz.finish().expect("finish");
        assert!(small.len() < 1000);
        assert_eq!(
            decompress(&small, Some("gzip"), 99_999),
            Err(OtlpError::TooLarge {
                limit: 99_999,
                decompressed: true
            })
        );
        assert_eq!(
            decompress(&small, Some("gzip"), 100_000).map(|b| b.len()),
            Ok(100_000)
        );
        assert!(matches!(
            decompress(b"not gzip", Some("gzip"), 100),
            Err(OtlpError::Undecodable(_))
        ));
    }

    /// OTLP/JSON as the specification writes it: hex trace and span ids, 64-bit integers as
    /// strings (or numbers), camelCase names, enums as integers.
    #[test]
    fn otlp_json_decodes_as_the_specification_writes_it() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"claude-code"}}]},
          "scopeLogs":[{"scope":{"name":"x"},"logRecords":[{
            "timeUnixNano":"1795546800000000000","severityNumber":9,
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "body":{"stringValue":"claude_code.api_request"},
            "attributes":[
              {"key":"session.id","value":{"stringValue":"s"}},
              {"key":"model","value":{"stringValue":"m"}},
              {"key":"input_tokens","value":{"intValue":"12"}},
              {"key":"output_tokens","value":{"intValue":3}},
              {"key":"cost_usd","value":{"doubleValue":0.5}},
              {"key":"prompt","value":{"stringValue":"free text"}}]}]}]}]}"#;
        let req = decode_logs(body, Encoding::Json).expect("OTLP/JSON");
        let rec = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.trace_id.len(), 16);
        assert_eq!(rec.time_unix_nano, 1_795_546_800_000_000_000);
        let mapped = map_logs(&req, &OtlpLimits::default());
        assert_eq!((mapped.turn_count(), mapped.rejected), (1, 0), "{mapped:?}");
        assert_eq!(mapped.dropped_free_text, 1);
        let ev = &mapped.turns["otlp:unknown"][0];
        assert_eq!((ev.tokens_in, ev.tokens_out), (Some(12), Some(3)));
        assert_eq!(ev.cost_usd, Some(0.5));
        assert_eq!(ev.recorded_at_us, 1_795_546_800_000_000);
        assert!(!ev.body.contains("free text"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Any body, in any mode, decodes and maps or is refused; never a panic.
        #[test]
        fn any_body_maps_or_is_refused(mode in 0u8..8, body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let limits = OtlpLimits { max_body_bytes: 4096, ..OtlpLimits::default() };
            let enc = if mode & 1 == 0 { Encoding::Protobuf } else { Encoding::Json };
            if let Ok(bytes) = decompress(&body, (mode & 2 != 0).then_some("gzip"), limits.max_body_bytes) {
                if mode & 4 == 0 {
                    if let Ok(req) = decode_logs(&bytes, enc) {
                        let _ = map_logs(&req, &limits);
                    }
                } else if let Ok(req) = decode_metrics(&bytes, enc) {
                    let _ = map_metrics(&req, &limits);
                }
            }
        }
    }

    #[test]
    fn devices_are_synthetic_and_valid() {
        assert_eq!(device_id(Some("acc"), Some("inst")), "otlp:acc");
        assert_eq!(device_id(None, Some("inst")), "otlp:inst");
        assert_eq!(device_id(Some(""), None), "otlp:unknown");
        let long = "x".repeat(500);
        assert!(crate::ingest::check_device_id(&device_id(Some(&long), None), "").is_ok());
    }
}
