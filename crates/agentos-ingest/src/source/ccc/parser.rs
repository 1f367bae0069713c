//! One physical line of a CCC usage log → zero or more log records.
//!
//! A physical line may hold several JSON objects back to back and stray `{}` fragments; both the
//! current shim shape (float `ts`, int `status`, lanes `anthropic|zai`) and the old telemetry shape
//! (ISO `ts`, string `status`, lanes `baseline|glm`) are accepted.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::time::parse_iso_ms;

/// Epoch seconds, from a float/int or an RFC 3339 string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ts(pub f64);

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch seconds or an RFC 3339 timestamp")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ts, E> {
                Ok(Ts(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ts, E> {
                Ok(Ts(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ts, E> {
                Ok(Ts(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ts, E> {
                parse_iso_ms(v)
                    .map(|ms| Ts(ms as f64 / 1000.0))
                    .ok_or_else(|| E::custom(format!("ts {v:?} is not an RFC 3339 timestamp")))
            }
        }
        d.deserialize_any(V)
    }
}

/// HTTP status as the shim writes it (`-1` on decision lines) or the old telemetry's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A numeric status.
    Code(i64),
    /// Old telemetry `"ok"`.
    TextOk,
    /// Old telemetry `"error"` (or any other text).
    TextError,
}

impl Status {
    /// True for decision lines (`-1`).
    pub fn is_decision(&self) -> bool {
        matches!(self, Status::Code(-1))
    }
    /// True for a successful request.
    pub fn is_ok(&self) -> bool {
        match self {
            Status::Code(c) => (200..300).contains(c),
            Status::TextOk => true,
            Status::TextError => false,
        }
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Status;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an http status code or \"ok\"/\"error\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Status, E> {
                Ok(Status::Code(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Status, E> {
                Ok(Status::Code(v as i64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Status, E> {
                Ok(Status::Code(v as i64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Status, E> {
                Ok(match v {
                    "ok" | "OK" | "success" => Status::TextOk,
                    other => match other.parse::<i64>() {
                        Ok(c) => Status::Code(c),
                        Err(_) => Status::TextError,
                    },
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean that old writers also spell as `1`/`0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or 0/1")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// Lane that served (or was chosen for) a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Anthropic API (also `anth`).
    Anthropic,
    /// Z.AI.
    Zai,
    /// Old telemetry: the baseline lane.
    Baseline,
    /// Old telemetry: the GLM lane.
    Glm,
    /// Missing or unknown.
    Unknown,
}

impl Lane {
    /// Parses a lane string.
    pub fn parse(s: &str) -> Lane {
        match s {
            "anthropic" | "anth" => Lane::Anthropic,
            "zai" => Lane::Zai,
            "baseline" => Lane::Baseline,
            "glm" => Lane::Glm,
            _ => Lane::Unknown,
        }
    }
    /// The lane's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Lane::Anthropic => "anthropic",
            Lane::Zai => "zai",
            Lane::Baseline => "baseline",
            Lane::Glm => "glm",
            Lane::Unknown => "",
        }
    }
    /// True for the old telemetry lanes.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Lane::Baseline | Lane::Glm)
    }
}

/// `CCP_REROUTE_MODE` as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerouteMode {
    /// Default.
    Hybrid,
    /// Reroute before the cap.
    Preemptive,
    /// Stay until the provider refuses.
    Run2cap,
}

impl RerouteMode {
    /// The mode's name as logged.
    pub fn as_str(&self) -> &'static str {
        match self {
            RerouteMode::Hybrid => "hybrid",
            RerouteMode::Preemptive => "preemptive",
            RerouteMode::Run2cap => "run2cap",
        }
    }

    /// Parses a mode (aliases as the shim accepts them); unknown → `None`.
    pub fn parse(s: &str) -> Option<RerouteMode> {
        match s {
            "hybrid" => Some(RerouteMode::Hybrid),
            "preemptive" => Some(RerouteMode::Preemptive),
            "run2cap" | "run_to_cap" | "run-to-cap" | "runlimit" | "run" => {
                Some(RerouteMode::Run2cap)
            }
            _ => None,
        }
    }
}

/// One JSON object of a usage log, fields as written (all optional: writers omit zero values).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct LogRecord<'a> {
    pub ts: Option<Ts>,
    #[serde(borrow)]
    pub rid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub lane: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(alias = "in_tokens")]
    pub input_tokens: Option<u64>,
    #[serde(alias = "out_tokens")]
    pub output_tokens: Option<u64>,
    pub status: Option<Status>,
    #[serde(borrow)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub op: Option<Cow<'a, str>>,
    pub latency_ms: Option<f64>,
    pub stream_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    #[serde(borrow)]
    pub err_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub decision: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub decision_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub reroute_mode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub reroute_decision: Option<Cow<'a, str>>,
    pub preferred_attempt: Option<Flag>,
    pub cooldown_active: Option<Flag>,
    pub retry: Option<Flag>,
    pub wasted_retry_ms: Option<f64>,
    pub warn_pct_cfg: Option<f64>,
    pub warn_pct_auto: Option<f64>,
    pub warn_pct_confidence: Option<f64>,
    pub gap_seconds_p50: Option<f64>,
    pub gap_seconds_p95: Option<f64>,
    pub gap_samples: Option<u64>,
    pub rolling_used_tokens: Option<u64>,
    pub rolling_capacity_tokens: Option<u64>,
    pub headroom_pct_rolling: Option<f64>,
    pub headroom_pct_weekly: Option<f64>,
}

/// What part of a request a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Routing decision before dialing (`event:"decision"` / `status:-1`).
    Decision,
    /// Early stream line right after the upstream headers (no tokens yet).
    EarlyStream,
    /// The request's final line (current shim shape).
    Final,
    /// A complete record in the old telemetry shape.
    Legacy,
    /// An anomaly line (`event:"backoff"`): not part of the request's accounting.
    Anomaly,
    /// A stray object without a request id, timestamp or tokens (`{}`).
    Fragment,
}

impl LogRecord<'_> {
    /// Classifies the record.
    pub fn kind(&self) -> Kind {
        let event = self.event.as_deref().unwrap_or("");
        if event == "decision" || self.status.is_some_and(|s| s.is_decision()) {
            return Kind::Decision;
        }
        if !event.is_empty() {
            return Kind::Anomaly;
        }
        if self.rid.is_none()
            && self.ts.is_none()
            && self.input_tokens.is_none()
            && self.model.is_none()
        {
            return Kind::Fragment;
        }
        let legacy = matches!(self.status, Some(Status::TextOk | Status::TextError))
            || self
                .lane
                .as_deref()
                .is_some_and(|l| Lane::parse(l).is_legacy());
        if legacy {
            return Kind::Legacy;
        }
        let no_tokens = self.input_tokens.unwrap_or(0) == 0 && self.output_tokens.unwrap_or(0) == 0;
        if self.op.as_deref() == Some("stream")
            && self.reason.as_deref() == Some("streaming")
            && self.stream_ms.is_none()
            && self.ttft_ms.is_none()
            && no_tokens
        {
            return Kind::EarlyStream;
        }
        Kind::Final
    }
}

/// Parses every JSON object on one physical line. Objects before a broken one are kept; the error
/// (if any) describes the first broken object.
pub fn parse_objects<'a>(
    line: &'a [u8],
    out: &mut Vec<LogRecord<'a>>,
) -> Result<(), serde_json::Error> {
    let mut it = serde_json::Deserializer::from_slice(line).into_iter::<LogRecord<'a>>();
    for r in it.by_ref() {
        out.push(r?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_objects_glued_on_one_line_are_both_read() {
        let line = br#"{"ts":1.5,"rid":"a","status":-1,"event":"decision"}{"ts":2.5,"rid":"a","status":200,"input_tokens":3,"output_tokens":4,"op":"nonstream","reason":"ok"}"#;
        let mut v = Vec::new();
        parse_objects(line, &mut v).expect("valid");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].kind(), Kind::Decision);
        assert_eq!(v[1].kind(), Kind::Final);
    }

    #[test]
    fn a_stray_empty_object_is_a_fragment() {
        let mut v = Vec::new();
        parse_objects(
            br#"{}{"ts":1,"rid":"b","status":200,"input_tokens":1,"output_tokens":1}"#,
            &mut v,
        )
        .expect("valid");
        assert_eq!(v[0].kind(), Kind::Fragment);
        assert_eq!(v[1].kind(), Kind::Final);
    }

    #[test]
    fn the_old_telemetry_shape_is_accepted() {
        let mut v = Vec::new();
        parse_objects(
            br#"{"ts":"2025-10-19T16:05:00Z","rid":"R1","lane":"baseline","model":"anthropic/haiku","status":"ok","input_tokens":1200,"output_tokens":300,"reason":"ok","latency_ms":420,"preferred_attempt":1}"#,
            &mut v,
        )
        .expect("valid");
        assert_eq!(v[0].kind(), Kind::Legacy);
        assert_eq!(v[0].ts, Some(Ts(1_760_889_900.0)));
        assert_eq!(v[0].preferred_attempt, Some(Flag(true)));
    }

    #[test]
    fn an_early_stream_line_is_told_apart_from_a_final_stream_line() {
        let mut v = Vec::new();
        parse_objects(br#"{"ts":1,"rid":"c","status":200,"reason":"streaming","op":"stream","input_tokens":0,"output_tokens":0}"#, &mut v).expect("valid");
        parse_objects(br#"{"ts":2,"rid":"c","status":200,"reason":"streaming","op":"stream","input_tokens":0,"output_tokens":0,"stream_ms":40}"#, &mut v).expect("valid");
        assert_eq!(v[0].kind(), Kind::EarlyStream);
        assert_eq!(v[1].kind(), Kind::Final);
    }

    #[test]
    fn a_torn_object_is_an_error_but_earlier_objects_survive() {
        let mut v = Vec::new();
        let r = parse_objects(
            br#"{"ts":1,"rid":"d","status":-1}{"ts":1.0,"rid":"e","lane":"zai","mod"#,
            &mut v,
        );
        assert!(r.is_err());
        assert_eq!(v.len(), 1);
    }
}
