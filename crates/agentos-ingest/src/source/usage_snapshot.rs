//! `/v1/usage` snapshots (a file, or a live CCC/collector URL) → `model_health` per model.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::IngestError;

/// Health of one model as the shim reports it (`ccc-formats.md` §3.1), plus the configured warn
/// fraction seen in the usage logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelHealth {
    /// Provider from the quotas config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Config warn threshold reached.
    pub warn: bool,
    /// Rolling or weekly capacity reached.
    pub block: bool,
    /// Configured warn fraction (from the usage logs' `warn_pct_cfg`, when seen).
    pub warn_pct_cfg: Option<f64>,
    /// Calibrated warn fraction.
    pub warn_pct_auto: Option<f64>,
    /// Calibration confidence 0..1.
    pub warn_pct_confidence: Option<f64>,
    /// Calibration gap p50 (seconds).
    pub gap_seconds_p50: Option<f64>,
    /// Calibration gap p95 (seconds).
    pub gap_seconds_p95: Option<f64>,
    /// Calibration samples.
    pub gap_samples: Option<u64>,
    /// Requests in the rolling window.
    pub reqs: u64,
    /// Rolling input tokens.
    pub rolling_in: u64,
    /// Rolling output tokens.
    pub rolling_out: u64,
    /// Rolling fraction used.
    pub rolling_pct: f64,
    /// Weekly fraction used.
    pub weekly_pct: f64,
    /// Seconds until the oldest rolling tokens leave the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_rolling_sec: Option<f64>,
    /// Speeds object as reported (rolling/session rates, TTFT quantiles, hourly bins).
    pub speeds: Value,
}

/// A parsed snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Where it came from (path or URL).
    pub origin: String,
    /// Snapshot time (epoch seconds).
    pub ts: Option<f64>,
    /// Quotas config path in use.
    pub path: Option<String>,
    /// Health per model.
    pub models: BTreeMap<String, ModelHealth>,
}

fn unknown(origin: &str, detail: String) -> IngestError {
    IngestError::UnknownSnapshotShape {
        origin: origin.to_string(),
        detail,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses snapshot bytes. The top level must be an object with a `models` object whose values
/// are objects; anything else is [`IngestError::UnknownSnapshotShape`].
pub fn parse_snapshot(bytes: &[u8], origin: &str) -> Result<Snapshot, IngestError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| IngestError::json(origin, e))?;
    let Value::Object(top) = v else {
        return Err(unknown(
            origin,
            format!("top-level value is {}, expected an object", kind_of(&v)),
        ));
    };
    let models = match top.get("models") {
        None => {
            return Err(unknown(
                origin,
                "top-level \"models\" is missing (expected the /v1/usage shape: {models, ts, path})".into(),
            ));
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(unknown(
                origin,
                format!("\"models\" is {}, expected an object", kind_of(other)),
            ));
        }
    };
    let mut out = Snapshot {
        origin: origin.to_string(),
        ts: top.get("ts").and_then(Value::as_f64),
        path: top.get("path").and_then(Value::as_str).map(str::to_string),
        models: BTreeMap::new(),
    };
    for (name, mv) in models {
        let Value::Object(m) = mv else {
            return Err(unknown(
                origin,
                format!("model {name:?} is {}, expected an object", kind_of(mv)),
            ));
        };
        let f = |k: &str| m.get(k).and_then(Value::as_f64);
        let u = |k: &str| m.get(k).and_then(Value::as_u64);
        let b = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        out.models.insert(
            name.clone(),
            ModelHealth {
                provider: m
                    .get("provider")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                warn: b("warn"),
                block: b("block"),
                warn_pct_cfg: f("warn_pct"),
                warn_pct_auto: f("warn_pct_auto"),
                warn_pct_confidence: f("warn_pct_confidence"),
                gap_seconds_p50: f("gap_seconds_p50"),
                gap_seconds_p95: f("gap_seconds_p95"),
                gap_samples: u("gap_samples"),
                reqs: u("reqs").unwrap_or(0),
                rolling_in: u("rolling_in").unwrap_or(0),
                rolling_out: u("rolling_out").unwrap_or(0),
                rolling_pct: f("rolling_pct").unwrap_or(0.0),
                weekly_pct: f("weekly_pct").unwrap_or(0.0),
                eta_rolling_sec: f("eta_rolling_sec"),
                speeds: m
                    .get("speeds")
                    .cloned()
                    .unwrap_or(Value::Object(Default::default())),
            },
        );
    }
    Ok(out)
}

/// Loads a snapshot from a file path or an `http://`/`https://` URL (10 s timeout).
pub fn load_snapshot(spec: &str) -> Result<Snapshot, IngestError> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return fetch_snapshot(spec, None, Duration::from_secs(10));
    }
    let p = Path::new(spec);
    let bytes = std::fs::read(p).map_err(|e| IngestError::io(p, e))?;
    parse_snapshot(&bytes, spec)
}

/// Fetches a snapshot from a live `/v1/usage` URL, with a bearer key when the endpoint needs
/// one (the collector does; a CCC shim may not).
pub fn fetch_snapshot(
    url: &str,
    api_key: Option<&str>,
    timeout: Duration,
) -> Result<Snapshot, IngestError> {
    let http = |source| IngestError::Http {
        url: url.to_string(),
        source,
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(http)?;
    let mut req = client.get(url);
    if let Some(k) = api_key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().map_err(http)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(IngestError::HttpStatus {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let body = resp.bytes().map_err(http)?;
    parse_snapshot(&body, url)
}
