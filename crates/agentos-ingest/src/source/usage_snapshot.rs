//! `/v1/usage` snapshots (a file, or a live CCC/collector URL) → `model_health` per model.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::IngestError;

pub use agentos_core::rollup::ModelHealth;

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

/// Saves health per model as the data dir's `model_health.json`, which the
/// recorder copies into `metrics_summary.json`. `source` says where it came from (`GET <url>`,
/// `backfill of <file>`).
///
/// # Errors
/// Local I/O errors.
pub fn save_model_health(
    data_dir: &Path,
    models: &BTreeMap<String, ModelHealth>,
    source: String,
) -> Result<(), IngestError> {
    let cache = agentos_core::rollup::ModelHealthCache {
        source,
        fetched_at: Some(jiff::Timestamp::now()),
        models: models.clone(),
    };
    let path = agentos_config::DataDir::new(data_dir).model_health_cache();
    let bytes = serde_json::to_vec_pretty(&cache)
        .map_err(|e| IngestError::json(path.display().to_string(), e))?;
    agentos_config::durable::replace_file(&path, &bytes).map_err(|e| IngestError::io(&path, e))
}

/// How old `model_health.json` may get before [`refresh_model_health`] asks again.
pub const MODEL_HEALTH_MAX_AGE: Duration = Duration::from_secs(300);

/// Fetches `<base_url>/v1/usage` (with `timeout`) into `model_health.json` when the cache is
/// missing or older than [`MODEL_HEALTH_MAX_AGE`]; returns whether it fetched. Callers are the
/// uploader and the statusline refresher, never the path that records a turn.
///
/// # Errors
/// The fetch's error (the cache is left as it was), or local I/O errors.
pub fn refresh_model_health(
    data_dir: &Path,
    base_url: &str,
    api_key: Option<&str>,
    timeout: Duration,
) -> Result<bool, IngestError> {
    let path = agentos_config::DataDir::new(data_dir).model_health_cache();
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < MODEL_HEALTH_MAX_AGE);
    if fresh {
        return Ok(false);
    }
    let url = format!("{}/v1/usage", base_url.trim_end_matches('/'));
    let snap = fetch_snapshot(&url, api_key, timeout)?;
    save_model_health(data_dir, &snap.models, format!("GET {url}"))?;
    Ok(true)
}
