//! The classes and functions of `agentos_ccc._native`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use agentos_config::Config;
use agentos_config::license::LicensePack;
use agentos_core::event::{
    Cost, Decision, EventBody, Feature, InputKind, Measurement, SessionId, Turn, TurnEvent, TurnId,
    ValueRecord,
};
use agentos_core::license::{Keyring, LicenseError, Verifier};
use agentos_core::privacy::{self, MINIMIZED_SUMMARY_FIELDS, RedactionPolicy};
use agentos_core::schema::SchemaError;
use agentos_core::tier::Tier;
use agentos_delivery::{DeliveryError, Settings, SummaryOutcome, Uploader};
use agentos_recorder::{LicenseProblem, Recorded, Recorder, RecorderError, StartRequest};
use base64::Engine as _;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::{Map, Value, json};

create_exception!(
    _native,
    NativeError,
    PyException,
    "An error of the Rust layer: args are (kind, code, message, pointer)."
);

fn err(kind: &str, code: &str, message: impl Into<String>, pointer: Option<String>) -> PyErr {
    NativeError::new_err((kind.to_string(), code.to_string(), message.into(), pointer))
}

fn schema_err(e: &SchemaError) -> PyErr {
    let pointer = if e.pointer.is_empty() {
        "/".to_string()
    } else {
        e.pointer.clone()
    };
    err("validation", e.code(), e.to_string(), Some(pointer))
}

fn recorder_err(e: RecorderError) -> PyErr {
    match &e {
        RecorderError::Schema(s) => schema_err(s),
        RecorderError::LicenseRefused { problem, .. } => {
            err("license", problem.code(), e.to_string(), None)
        }
        _ => err("recorder", e.code(), e.to_string(), None),
    }
}

fn license_problem_err(p: &LicenseProblem) -> PyErr {
    err("license", p.code(), p.to_string(), None)
}

fn license_err(e: &LicenseError) -> PyErr {
    err("license", e.code(), e.to_string(), None)
}

fn delivery_err(e: &DeliveryError) -> PyErr {
    err("delivery", e.code(), e.to_string(), None)
}

fn json_text(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| err("internal", "serialize", e.to_string(), None))
}

fn parse_tier(s: &str) -> PyResult<Tier> {
    s.parse::<Tier>()
        .map_err(|e| err("validation", "unknown_tier", e.to_string(), None))
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the recorder in a state every method re-validates
    // against the files (catch-up under the file lock), so continuing is safe.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Loads the configuration exactly as the CLI does for `--data-dir DIR` (environment, then
/// `agentos.toml`), then applies the constructor's explicit values on top.
fn load_config(
    data_dir: &Path,
    base_url: Option<String>,
    api_key: Option<String>,
    license_pack: Option<PathBuf>,
    pubkeys: Option<BTreeMap<String, String>>,
) -> PyResult<Config> {
    let mut cfg = Config::load(Some(data_dir), None)
        .map_err(|e| err("config", e.code(), e.to_string(), None))?;
    if base_url.is_some() {
        cfg.ccc.url = base_url;
    }
    if api_key.is_some() {
        cfg.ccc.api_key = api_key;
    }
    if let Some(pack) = license_pack {
        let pack = if pack.is_absolute() {
            pack
        } else {
            std::env::current_dir()
                .map(|d| d.join(&pack))
                .unwrap_or(pack)
        };
        cfg.license.pack = Some(pack);
    }
    if let Some(keys) = pubkeys {
        cfg.license.pubkeys.extend(keys);
    }
    Ok(cfg)
}

/// The background uploader and the runtime it runs on.
struct Background {
    rt: tokio::runtime::Runtime,
    uploader: Uploader,
}

/// Why this client does not deliver in the background (when it does not).
enum DeliveryState {
    Running(Box<Background>),
    /// Not started: no URL, transport mode, or another uploader holds the lock.
    Off(&'static str),
}

/// One data dir's recorder, with optional background delivery.
#[pyclass(frozen, module = "agentos_ccc._native", name = "Recorder")]
pub struct PyRecorder {
    rec: Mutex<Recorder>,
    cfg: Config,
    policy: RedactionPolicy,
    /// For a turn logged without a cost (`[ingest] prices` or the embedded table).
    prices: agentos_ingest::PriceTable,
    /// Read-locked by recording threads (to nudge) and by `flush` (which may wait long), so a
    /// flush in one thread never stalls `log_event` in another; write-locked only by `close`.
    delivery: RwLock<DeliveryState>,
    /// The process that constructed it: only that process ever touches the uploader, so a
    /// forked child records into the same log and the parent's uploader sends it once.
    pid: u32,
}

impl PyRecorder {
    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    fn nudge(&self) {
        if self.forked() {
            return;
        }
        if let DeliveryState::Running(bg) = &*read(&self.delivery) {
            bg.uploader.notify();
        }
    }

    fn egress(&self, r: &Recorded, want: bool) -> PyResult<Option<String>> {
        if !want {
            return Ok(None);
        }
        privacy::egress_event(&r.envelope, r.envelope.tier, &self.policy)
            .map(|v| json_text(&v))
            .transpose()
    }

    fn summary_struct(&self) -> PyResult<Option<agentos_core::rollup::Summary>> {
        let mut rec = lock(&self.rec);
        rec.flush().map_err(recorder_err)?;
        let paths = agentos_delivery::Paths::new(&self.cfg.data_dir);
        if !paths.summary.exists() && paths.log.exists() {
            rec.rebuild().map_err(recorder_err)?;
        }
        agentos_delivery::read_summary(&paths).map_err(|e| delivery_err(&e))
    }
}

#[pymethods]
impl PyRecorder {
    /// Opens the recorder for `data_dir`; starts the background uploader when `background`
    /// and a collector URL is known.
    #[new]
    #[pyo3(signature = (data_dir, *, base_url=None, api_key=None, license_pack=None, pubkeys=None, background=true))]
    fn new(
        py: Python<'_>,
        data_dir: PathBuf,
        base_url: Option<String>,
        api_key: Option<String>,
        license_pack: Option<PathBuf>,
        pubkeys: Option<BTreeMap<String, String>>,
        background: bool,
    ) -> PyResult<PyRecorder> {
        py.detach(|| {
            let cfg = load_config(&data_dir, base_url, api_key, license_pack, pubkeys)?;
            let policy = RedactionPolicy {
                metadata_allowlist: cfg.privacy.metadata_allowlist.iter().cloned().collect(),
            };
            let rec = Recorder::open(cfg.clone()).map_err(recorder_err)?;
            let delivery = if !background {
                DeliveryState::Off("disabled")
            } else if cfg.ccc.url.is_none() {
                DeliveryState::Off("no_url")
            } else {
                start_background(&cfg)?
            };
            let prices = prices(&cfg)?;
            Ok(PyRecorder {
                rec: Mutex::new(rec),
                cfg,
                policy,
                prices,
                delivery: RwLock::new(delivery),
                pid: std::process::id(),
            })
        })
    }

    /// The data dir.
    #[getter]
    fn data_dir(&self) -> PathBuf {
        self.cfg.data_dir.clone()
    }

    /// `running`, or why background delivery is off (`disabled`, `no_url`, `locked`,
    /// `closed`, `forked`).
    #[getter]
    fn delivery_state(&self) -> &'static str {
        if self.forked() {
            return "forked";
        }
        match &*read(&self.delivery) {
            DeliveryState::Running(_) => "running",
            DeliveryState::Off(why) => why,
        }
    }

    /// Starts a session; returns JSON `{session_id, tier, requested_tier, downgrade, license,
    /// seq, event}` (`event`: the redacted envelope when `want_event` and the tier lets it
    /// leave, else null).
    #[pyo3(signature = (*, repo_id, branch, commit, license_id=None, tier=None, metadata_json=None, strict=false, session_id=None, handshaken=false, want_event=false))]
    #[allow(clippy::too_many_arguments)]
    fn start_session(
        &self,
        py: Python<'_>,
        repo_id: String,
        branch: String,
        commit: String,
        license_id: Option<String>,
        tier: Option<String>,
        metadata_json: Option<String>,
        strict: bool,
        session_id: Option<String>,
        handshaken: bool,
        want_event: bool,
    ) -> PyResult<String> {
        let tier = tier.as_deref().map(parse_tier).transpose()?;
        let metadata = match metadata_json {
            None => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(err(
                        "validation",
                        "schema_violation",
                        "session metadata must be a JSON object",
                        Some("/session/metadata".into()),
                    ));
                }
                Err(e) => {
                    return Err(err(
                        "validation",
                        "invalid_json",
                        format!("session metadata: {e}"),
                        Some("/session/metadata".into()),
                    ));
                }
            },
        };
        let req = StartRequest {
            repo_id,
            branch,
            commit,
            license_id,
            tier,
            metadata,
            strict_license: strict,
            session_id: session_id.map(SessionId),
        };
        let out = py.detach(|| {
            let mut rec = lock(&self.rec);
            if handshaken {
                rec.start_session_handshaken(req)
            } else {
                rec.start_session(req)
            }
            .map_err(recorder_err)
        })?;
        self.nudge();
        let event = self.egress(&out.recorded, want_event)?;
        let report = json!({
            "session_id": out.session.session_id,
            "tier": out.session.tier,
            "requested_tier": out.session.requested_tier,
            "downgrade": out.downgrade.as_ref().map(|p| json!({"code": p.code(), "message": p.to_string()})),
            "license": out.license.as_ref().map(|l| json!({
                "kid": l.kid, "plan": l.claims.plan.as_str(), "features": l.claims.features,
                "exp": l.claims.exp, "sub": l.claims.sub,
            })),
            "replaced": out.replaced,
            "seq": out.recorded.seq,
            "event_id": out.recorded.event_id,
        });
        let mut text = json_text(&report)?;
        if let Some(ev) = event {
            // Splice the already-serialized event in rather than re-parsing it.
            text.pop();
            text.push_str(",\"event\":");
            text.push_str(&ev);
            text.push('}');
        }
        Ok(text)
    }

    /// Records one turn of the current session. Returns the redacted envelope (JSON) when
    /// `want_event` and the session's tier lets events leave, else None.
    #[pyo3(signature = (model, subagent, tokens_in, tokens_out, input_kind, latency_ms, capacity_used=None, attribution=None, extras_json=None, want_event=false))]
    #[allow(clippy::too_many_arguments)]
    fn record_turn(
        &self,
        py: Python<'_>,
        model: String,
        subagent: String,
        tokens_in: i64,
        tokens_out: i64,
        input_kind: &str,
        latency_ms: f64,
        capacity_used: Option<f64>,
        attribution: Option<BTreeMap<String, f64>>,
        extras_json: Option<String>,
        want_event: bool,
    ) -> PyResult<Option<String>> {
        let mut turn = build_turn(
            model,
            subagent,
            tokens_in,
            tokens_out,
            input_kind,
            latency_ms,
            capacity_used,
            attribution,
            extras_json.as_deref(),
        )?;
        // As `agentos ccc turn`: without a cost, the price table's estimate, marked as such.
        agentos_ingest::pricing::estimate_turn_cost(&mut turn, &self.prices);
        let r = py.detach(|| lock(&self.rec).record_turn(turn).map_err(recorder_err))?;
        self.nudge();
        self.egress(&r, want_event)
    }

    /// Ends the current session; returns JSON `{session_id, tier, seq, event}`.
    #[pyo3(signature = (notes=None, want_event=false))]
    fn end_session(
        &self,
        py: Python<'_>,
        notes: Option<String>,
        want_event: bool,
    ) -> PyResult<String> {
        let r = py.detach(|| lock(&self.rec).end_session(notes).map_err(recorder_err))?;
        self.nudge();
        let event = self.egress(&r, want_event)?;
        let session_id = match &r.envelope.body {
            EventBody::SessionEnd(e) => e.session_id.0.clone(),
            _ => String::new(),
        };
        let v = json!({"session_id": session_id, "tier": r.tier, "seq": r.seq});
        let mut text = json_text(&v)?;
        if let Some(ev) = event {
            text.pop();
            text.push_str(",\"event\":");
            text.push_str(&ev);
            text.push('}');
        }
        Ok(text)
    }

    /// The current session (JSON) or None.
    fn current_session(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let s = py.detach(|| lock(&self.rec).current_session().map_err(recorder_err))?;
        s.as_ref().map(json_text).transpose()
    }

    /// Writes `metrics_summary.json` if records are pending and returns its text ("{}" before
    /// anything was recorded).
    fn summary(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| {
            self.summary_struct()?;
            let path = agentos_config::DataDir::new(&self.cfg.data_dir).summary();
            match std::fs::read_to_string(&path) {
                Ok(t) => Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("{}".into()),
                Err(e) => Err(err(
                    "recorder",
                    "io",
                    format!("reading {}: {e}", path.display()),
                    None,
                )),
            }
        })
    }

    /// The `/v1/metrics` body under `tier` (JSON, allowlisted fields only), or None when the
    /// tier lets no metrics leave or nothing was recorded yet.
    fn metrics_body(&self, py: Python<'_>, tier: &str) -> PyResult<Option<String>> {
        let tier = parse_tier(tier)?;
        let summary = py.detach(|| self.summary_struct())?;
        summary
            .and_then(|s| privacy::egress_summary(&s, tier))
            .map(|v| json_text(&v))
            .transpose()
    }

    /// `POST /v1/metrics` of the current summary under `tier`, waiting up to `timeout`
    /// seconds: `sent`, `unchanged`, `withheld`, `no_summary` or `pending` (out of time; the
    /// background uploader or the next `agentos ccc sync` sends it).
    fn upload_summary(&self, py: Python<'_>, tier: &str, timeout: f64) -> PyResult<&'static str> {
        let tier = parse_tier(tier)?;
        py.detach(|| {
            let Some(summary) = self.summary_struct()? else {
                return Ok("no_summary");
            };
            if self.cfg.ccc.url.is_none() {
                return Ok("no_url");
            }
            let mut settings = Settings::from_config(&self.cfg).map_err(|e| delivery_err(&e))?;
            settings.tier = Some(tier);
            let out = agentos_delivery::upload_summary_blocking(
                &settings,
                &summary,
                Duration::from_secs_f64(timeout.max(0.0)),
            )
            .map_err(|e| delivery_err(&e))?;
            Ok(match out {
                SummaryOutcome::Sent => "sent",
                SummaryOutcome::Unchanged => "unchanged",
                SummaryOutcome::Withheld => "withheld",
                SummaryOutcome::NoSummary => "no_summary",
                SummaryOutcome::OutOfTime => "pending",
            })
        })
    }

    /// Writes the summary files and waits up to `timeout` seconds until the background
    /// uploader delivered (or withheld) every line recorded so far. True when done, or when
    /// this client has no uploader (nothing of it is in flight); False on timeout, and in a
    /// forked child (the parent's uploader delivers).
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        py.detach(|| {
            lock(&self.rec).flush().map_err(recorder_err)?;
            if self.forked() {
                return Ok(false);
            }
            let d = read(&self.delivery);
            Ok(match &*d {
                DeliveryState::Running(bg) => bg
                    .rt
                    .block_on(bg.uploader.flush(Duration::from_secs_f64(timeout.max(0.0)))),
                DeliveryState::Off(_) => true,
            })
        })
    }

    /// Flushes for at most `timeout` seconds, then stops the uploader. Idempotent.
    fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        py.detach(|| {
            lock(&self.rec).flush().map_err(recorder_err)?;
            let mut d = self
                .delivery
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let state = std::mem::replace(&mut *d, DeliveryState::Off("closed"));
            match state {
                DeliveryState::Running(bg) if self.forked() => {
                    // The runtime's threads live only in the parent; dropping it here would
                    // join threads that do not exist in this process.
                    std::mem::forget(bg);
                    Ok(false)
                }
                DeliveryState::Running(bg) => {
                    let Background { rt, uploader } = *bg;
                    let ok =
                        rt.block_on(uploader.shutdown(Duration::from_secs_f64(timeout.max(0.0))));
                    rt.shutdown_timeout(Duration::from_millis(200));
                    Ok(ok)
                }
                DeliveryState::Off(why) => {
                    if why != "closed" {
                        *d = DeliveryState::Off(why);
                    }
                    Ok(true)
                }
            }
        })
    }
}

impl Drop for PyRecorder {
    fn drop(&mut self) {
        if self.forked() {
            let state = std::mem::replace(
                self.delivery
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                DeliveryState::Off("forked"),
            );
            std::mem::forget(state);
        }
    }
}

fn start_background(cfg: &Config) -> PyResult<DeliveryState> {
    let settings = Settings::from_config(cfg).map_err(|e| delivery_err(&e))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("agentos-uploader")
        .enable_all()
        .build()
        .map_err(|e| err("delivery", "runtime", e.to_string(), None))?;
    let started = {
        let _guard = rt.enter();
        Uploader::start(settings)
    };
    match started {
        Ok(uploader) => Ok(DeliveryState::Running(Box::new(Background {
            rt,
            uploader,
        }))),
        // Another uploader (an `agentos ccc sync`, another client) owns this data dir's
        // delivery; it reads the same log, so everything recorded here still leaves once.
        Err(DeliveryError::Locked { .. }) => Ok(DeliveryState::Off("locked")),
        Err(e) => Err(delivery_err(&e)),
    }
}

/// The optional payload records of a turn, as the Python side passes them.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Extras {
    #[serde(default)]
    measurement: Option<Measurement>,
    #[serde(default)]
    feature: Option<Feature>,
    #[serde(default)]
    cost: Option<Cost>,
    #[serde(default)]
    value: Option<ValueRecord>,
    #[serde(default)]
    decision: Option<Decision>,
}

#[allow(clippy::too_many_arguments)]
fn build_turn(
    model: String,
    subagent: String,
    tokens_in: i64,
    tokens_out: i64,
    input_kind: &str,
    latency_ms: f64,
    capacity_used: Option<f64>,
    attribution: Option<BTreeMap<String, f64>>,
    extras_json: Option<&str>,
) -> PyResult<TurnEvent> {
    let kind = match input_kind {
        "text" => Some(InputKind::Text),
        "image" => Some(InputKind::Image),
        "other" => Some(InputKind::Other),
        _ => None,
    };
    let extras = match extras_json {
        None => Ok(None),
        Some(t) => serde_json::from_str::<Extras>(t).map(Some),
    };
    match (
        u64::try_from(tokens_in),
        u64::try_from(tokens_out),
        kind,
        extras,
    ) {
        (Ok(tin), Ok(tout), Some(input_kind), Ok(extras)) => {
            let extras = extras.unwrap_or(Extras {
                measurement: None,
                feature: None,
                cost: None,
                value: None,
                decision: None,
            });
            Ok(TurnEvent {
                turn: Turn {
                    turn_id: TurnId(String::new()),
                    session_id: SessionId(String::new()),
                    model,
                    subagent,
                    tokens_in: tin,
                    tokens_out: tout,
                    input_kind,
                    latency_ms,
                    attribution,
                    capacity_used,
                    cache_creation_tokens: None,
                    cache_read_tokens: None,
                    source: None,
                },
                measurement: extras.measurement,
                feature: extras.feature,
                cost: extras.cost,
                value: extras.value,
                decision: extras.decision,
            })
        }
        // Something does not fit the typed model: validate the turn as the JSON the caller
        // meant, so the error names the offending field by its JSON pointer.
        (_, _, _, extras) => {
            let mut env = match extras_json.map(serde_json::from_str::<Value>) {
                Some(Ok(Value::Object(m))) => m,
                Some(Ok(_)) | None => Map::new(),
                Some(Err(e)) => {
                    return Err(err(
                        "validation",
                        "invalid_json",
                        e.to_string(),
                        Some("/".into()),
                    ));
                }
            };
            env.insert(
                "turn".into(),
                json!({
                    "turn_id": "to-be-assigned", "session_id": "to-be-assigned", "model": model,
                    "subagent": subagent, "tokens_in": tokens_in, "tokens_out": tokens_out,
                    "input_kind": input_kind, "latency_ms": latency_ms,
                }),
            );
            if let Some(t) = env.get_mut("turn").and_then(Value::as_object_mut) {
                if let Some(a) = attribution {
                    t.insert("attribution".into(), json!(a));
                }
                if let Some(c) = capacity_used {
                    t.insert("capacity_used".into(), json!(c));
                }
            }
            env.insert("type".into(), json!("turn"));
            env.insert(
                "event_id".into(),
                json!("00000000-0000-7000-8000-000000000000"),
            );
            env.insert("seq".into(), json!(1));
            env.insert("recorded_at".into(), json!("2000-01-01T00:00:00Z"));
            env.insert("tier".into(), json!("local"));
            agentos_core::schema::validate_envelope(&Value::Object(env))
                .map_err(|e| schema_err(&e))?;
            let message = match extras {
                Err(e) => e.to_string(),
                Ok(_) => "turn does not match the v1 turn schema".into(),
            };
            Err(err(
                "validation",
                "schema_violation",
                message,
                Some("/".into()),
            ))
        }
    }
}

/// A verifier that calls a Python callable `verifier(kid, payload: bytes, signature: str)`,
/// which raises on a bad signature (the seed's injectable verifier).
struct PyVerifier<'py> {
    py: Python<'py>,
    f: Bound<'py, PyAny>,
    kids: Vec<String>,
}

impl Verifier for PyVerifier<'_> {
    fn verify(
        &self,
        kid: &str,
        message: &[u8],
        signature: &ed25519_dalek::Signature,
    ) -> Result<(), LicenseError> {
        let sig = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
        self.f
            .call1((kid, PyBytes::new(self.py, message), sig))
            .map(|_| ())
            .map_err(|e| LicenseError::BadSignature(format!("{kid} ({e})")))
    }

    fn kids(&self) -> Vec<String> {
        self.kids.clone()
    }
}

fn keyring(pubkeys: &BTreeMap<String, String>) -> PyResult<Keyring> {
    let mut ring = Keyring::new();
    for (kid, key) in pubkeys {
        ring.insert_base64(kid, key).map_err(|e| license_err(&e))?;
    }
    Ok(ring)
}

fn verified_json(l: &agentos_core::license::VerifiedLicense) -> PyResult<String> {
    let mut claims = serde_json::to_value(&l.claims)
        .map_err(|e| err("internal", "serialize", e.to_string(), None))?;
    if let Some(o) = claims.as_object_mut() {
        o.insert("kid".into(), json!(l.kid));
        o.insert("kid_from_claims".into(), json!(l.kid_from_claims));
    }
    json_text(&claims)
}

/// Verifies a combined pack (its exact bytes) at `now` (unix seconds) with the trusted
/// `pubkeys`, or with the Python `verifier` when given; returns the claims as JSON.
#[pyfunction]
#[pyo3(signature = (pack, *, now, pubkeys=None, verifier=None, device=None))]
fn verify_pack(
    py: Python<'_>,
    pack: &[u8],
    now: i64,
    pubkeys: Option<BTreeMap<String, String>>,
    verifier: Option<Bound<'_, PyAny>>,
    device: Option<String>,
) -> PyResult<String> {
    let keys = pubkeys.unwrap_or_default();
    let verified = match verifier {
        Some(f) => {
            let kids = if keys.is_empty() {
                vec![String::new()]
            } else {
                keys.keys().cloned().collect()
            };
            let v = PyVerifier { py, f, kids };
            agentos_core::license::verify_pack(pack, &v, now, device.as_deref())
        }
        None => {
            let ring = keyring(&keys)?;
            let pack = pack.to_vec();
            py.detach(|| agentos_core::license::verify_pack(&pack, &ring, now, device.as_deref()))
        }
    };
    verified_json(&verified.map_err(|e| license_err(&e))?)
}

/// Reads the pack at `path` (combined, or split with `<path>.sig`) and returns the combined
/// pack bytes (what `X-AgentOS-License` carries), unverified.
#[pyfunction]
fn read_pack<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = py
        .detach(|| LicensePack::read(&path).map(|p| p.combined_bytes().into_owned()))
        .map_err(|e| err("license", e.code(), e.to_string(), None))?;
    Ok(PyBytes::new(py, &bytes))
}

/// `verify_license(path)`: the pack at `path` verified as the recorder would (the data dir's
/// configured keys plus `pubkeys`, this machine's device binding, now); returns the claims.
#[pyfunction]
#[pyo3(signature = (path, *, data_dir=None, pubkeys=None, now=None))]
fn verify_license(
    py: Python<'_>,
    path: PathBuf,
    data_dir: Option<PathBuf>,
    pubkeys: Option<BTreeMap<String, String>>,
    now: Option<i64>,
) -> PyResult<String> {
    py.detach(|| {
        let cfg = match &data_dir {
            Some(d) => load_config(d, None, None, None, pubkeys)?,
            None => {
                let mut cfg = Config::with_data_dir(std::env::temp_dir());
                let env = agentos_config::Env::from_process();
                if let Some(spec) = env.get("AGENTOS_LICENSE_PUBKEYS") {
                    for (kid, key) in agentos_core::license::parse_pubkey_list(spec)
                        .map_err(|e| license_err(&e))?
                    {
                        cfg.license.pubkeys.insert(kid, key);
                    }
                }
                if let Some(device) = env.get("AGENTOS_DEVICE") {
                    cfg.license.device = Some(device.to_string());
                }
                cfg.license.pubkeys.extend(pubkeys.unwrap_or_default());
                cfg
            }
        };
        let ring = cfg.license.keyring().map_err(|e| license_err(&e))?;
        let now = now.unwrap_or_else(|| jiff::Timestamp::now().as_second());
        let l = agentos_recorder::licensing::verify_file(
            &path,
            &ring,
            now,
            Some(&cfg.device_binding()),
        )
        .map_err(|p| license_problem_err(&p))?;
        verified_json(&l)
    })
}

/// This machine's value for device-bound packs (`AGENTOS_DEVICE`, else the machine
/// fingerprint, else "").
#[pyfunction]
fn device_binding() -> String {
    Config::with_data_dir(std::env::temp_dir()).device_binding()
}

/// The trusted keys (kid → base64) configured for `data_dir` (its `agentos.toml` and
/// `AGENTOS_LICENSE_PUBKEYS`), or from the environment alone when `data_dir` is None.
#[pyfunction]
#[pyo3(signature = (data_dir=None))]
fn configured_pubkeys(data_dir: Option<PathBuf>) -> PyResult<BTreeMap<String, String>> {
    match data_dir {
        Some(d) => Ok(load_config(&d, None, None, None, None)?.license.pubkeys),
        None => match std::env::var("AGENTOS_LICENSE_PUBKEYS") {
            Ok(spec) => parse_pubkeys(&spec),
            Err(_) => Ok(BTreeMap::new()),
        },
    }
}

/// Parses a `kid=base64,…` list (the `AGENTOS_LICENSE_PUBKEYS` syntax).
#[pyfunction]
fn parse_pubkeys(spec: &str) -> PyResult<BTreeMap<String, String>> {
    agentos_core::license::parse_pubkey_list(spec)
        .map(|v| v.into_iter().collect())
        .map_err(|e| license_err(&e))
}

/// The entitlement each tier needs (`local` needs none).
fn tier_entitlements() -> BTreeMap<&'static str, Option<&'static str>> {
    Tier::ALL
        .into_iter()
        .map(|t| (t.as_str(), t.required_entitlement().map(|e| e.as_str())))
        .collect()
}

/// What the next sync of `data_dir` would send (JSON), as `agentos ccc preview --json`.
#[pyfunction]
#[pyo3(signature = (data_dir, tier=None))]
fn preview(py: Python<'_>, data_dir: PathBuf, tier: Option<String>) -> PyResult<String> {
    let tier = tier.as_deref().map(parse_tier).transpose()?;
    py.detach(|| {
        let cfg = load_config(&data_dir, None, None, None, None)?;
        let mut settings = Settings::from_config(&cfg).map_err(|e| delivery_err(&e))?;
        if tier.is_some() {
            settings.tier = tier;
        }
        let p = agentos_delivery::plan(&settings).map_err(|e| delivery_err(&e))?;
        let parse = |b: &[u8]| {
            serde_json::from_slice::<Value>(b)
                .map_err(|e| err("internal", "serialize", e.to_string(), None))
        };
        let events = p
            .events
            .iter()
            .map(|b| parse(b))
            .collect::<PyResult<Vec<_>>>()?;
        let metrics = p.metrics.as_deref().map(parse).transpose()?;
        json_text(&json!({
            "tier": p.cap,
            "events": events,
            "events_replayed": p.replayed,
            "events_held": p.held,
            "events_forgotten": p.forgotten,
            "events_withheld": p.withheld,
            "metrics": metrics,
            "metrics_unchanged": p.metrics_unchanged,
        }))
    })
}

fn ingest_err(e: &agentos_ingest::IngestError) -> PyErr {
    err("ingest", e.code(), e.to_string(), None)
}

fn prices(cfg: &Config) -> PyResult<agentos_ingest::PriceTable> {
    match cfg.ingest.prices.as_deref() {
        Some(p) => agentos_ingest::PriceTable::with_override(p).map_err(|e| ingest_err(&e)),
        None => Ok(agentos_ingest::PriceTable::embedded()),
    }
}

/// `agentos ccc backfill`: a CCC root → the `ccp_metrics_summary.json` document (JSON). Writes
/// it to `output` (default: the data dir's `ccp_metrics_summary.json`) unless `dry_run`.
#[pyfunction]
#[pyo3(signature = (data_dir, ccp_root, *, usage_json=None, output=None, dry_run=false))]
fn backfill(
    py: Python<'_>,
    data_dir: PathBuf,
    ccp_root: PathBuf,
    usage_json: Option<String>,
    output: Option<PathBuf>,
    dry_run: bool,
) -> PyResult<String> {
    py.detach(|| {
        let cfg = load_config(&data_dir, None, None, None, None)?;
        let opts = agentos_ingest::backfill::BackfillOptions {
            ccp_root,
            usage_json,
            threads: cfg.ingest.threads.unwrap_or(0),
            prices: prices(&cfg)?,
            generated_at: None,
        };
        let mut b = agentos_ingest::backfill::backfill(&opts, None).map_err(|e| ingest_err(&e))?;
        let layout = agentos_config::DataDir::new(&cfg.data_dir);
        if !dry_run {
            b.summary.ingest.skipped_list =
                agentos_ingest::account::write_skipped(&layout.backfill_skipped(), &b.skipped)
                    .map_err(|e| ingest_err(&e))?;
        }
        let text = serde_json::to_string_pretty(&b.summary)
            .map_err(|e| err("internal", "serialize", e.to_string(), None))?;
        if !dry_run {
            let out = output.unwrap_or_else(|| layout.ccp_summary());
            let io = |e: std::io::Error| {
                err(
                    "ingest",
                    "io",
                    format!("writing {}: {e}", out.display()),
                    None,
                )
            };
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            agentos_config::atomic_write(&out, format!("{text}\n").as_bytes()).map_err(io)?;
        }
        Ok(text)
    })
}

/// `agentos report KIND --json` over everything ingested into `data_dir` (JSON; agentos' own
/// shape, or ccusage's with `ccusage_format`).
#[pyfunction]
#[pyo3(signature = (data_dir, kind, *, since=None, until=None, timezone=None, start_of_week=None, project=None, session_id=None, ccusage_format=false))]
#[allow(clippy::too_many_arguments)]
fn report(
    py: Python<'_>,
    data_dir: PathBuf,
    kind: &str,
    since: Option<String>,
    until: Option<String>,
    timezone: Option<String>,
    start_of_week: Option<String>,
    project: Option<String>,
    session_id: Option<String>,
    ccusage_format: bool,
) -> PyResult<String> {
    use agentos_ingest::report::{Filters, ReportKind, ReportOptions};
    use agentos_ingest::time::{TimeRange, parse_weekday, resolve_zone};
    let kind = match kind {
        "daily" => ReportKind::Daily,
        "weekly" => ReportKind::Weekly,
        "monthly" => ReportKind::Monthly,
        "session" => ReportKind::Session,
        "blocks" => ReportKind::Blocks,
        other => {
            return Err(err(
                "validation",
                "unknown_report",
                format!(
                    "unknown report kind {other:?} (expected daily, weekly, monthly, session or blocks)"
                ),
                None,
            ));
        }
    };
    py.detach(|| {
        let cfg = load_config(&data_dir, None, None, None, None)?;
        let (tz, tz_name) = resolve_zone(timezone.as_deref().or(cfg.ingest.timezone.as_deref()))
            .map_err(|e| ingest_err(&e))?;
        let week_start = parse_weekday(
            start_of_week
                .as_deref()
                .or(cfg.ingest.start_of_week.as_deref())
                .unwrap_or("monday"),
        )
        .map_err(|e| ingest_err(&e))?;
        let range = TimeRange::from_user(since.as_deref(), until.as_deref(), &tz).map_err(|e| {
            err(
                "validation",
                "bad_range",
                format!("invalid since/until: {e}"),
                None,
            )
        })?;
        let set =
            agentos_ingest::ingest::load_all(&cfg.data_dir, None).map_err(|e| ingest_err(&e))?;
        let run = agentos_ingest::ingest::IngestRun {
            set,
            ..Default::default()
        };
        let rep = run
            .report(&ReportOptions {
                kind,
                tz,
                tz_name,
                week_start,
                range,
                prices: prices(&cfg)?,
                now_ms: jiff::Timestamp::now().as_millisecond(),
                active_only: false,
                token_limit: None,
                filters: Filters {
                    project,
                    session_id,
                    ..Filters::default()
                },
            })
            .map_err(|e| ingest_err(&e))?;
        if ccusage_format {
            json_text(&agentos_ingest::ccusage::to_json(&rep))
        } else {
            json_text(&rep)
        }
    })
}

/// Registers the module's members.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add(
        "MINIMIZED_SUMMARY_FIELDS",
        MINIMIZED_SUMMARY_FIELDS.to_vec(),
    )?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyRecorder>()?;
    m.add_function(wrap_pyfunction!(verify_pack, m)?)?;
    m.add_function(wrap_pyfunction!(read_pack, m)?)?;
    m.add_function(wrap_pyfunction!(verify_license, m)?)?;
    m.add_function(wrap_pyfunction!(device_binding, m)?)?;
    m.add_function(wrap_pyfunction!(preview, m)?)?;
    m.add_function(wrap_pyfunction!(configured_pubkeys, m)?)?;
    m.add_function(wrap_pyfunction!(backfill, m)?)?;
    m.add_function(wrap_pyfunction!(report, m)?)?;
    m.add_function(wrap_pyfunction!(parse_pubkeys, m)?)?;
    m.add("TIER_ENTITLEMENTS", tier_entitlements())?;
    Ok(())
}
