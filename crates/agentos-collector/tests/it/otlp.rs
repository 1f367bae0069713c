//! The OpenTelemetry receiver (`--otlp-listen`, issue #11 §2): Claude Code's OTLP/HTTP logs and
//! metrics, over real HTTP on loopback, into a real SQLite file and a real PostgreSQL database.
//!
//! The JSON bodies are built the way Claude Code's monitoring documentation shows its events:
//! the body `claude_code.api_request`, `event.name` `api_request`, and every value (token
//! counts, cost, duration) sent as a string attribute next to `session.id`, `prompt.id`,
//! `event.timestamp`, `user.account_uuid` and `organization.id`.

use std::io::Write as _;

use agentos_collector::AppState;
use agentos_collector::auth::{Role, generate_key_with_role};
use agentos_collector::otlp::OtlpLimits;
use agentos_core::license::Keyring;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyInner;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde_json::{Value, json};

use crate::common::{Harness, NOW_US};

/// A secret that must never reach the database.
pub const PROMPT: &str = "SECRET-PROMPT-7f3a: refactor the billing module";

/// A running OTLP listener over a harness's store.
pub struct Otlp {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Otlp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Otlp {
    /// Serves the OTLP receiver of `state` on a free loopback port.
    pub async fn start(state: AppState) -> anyhow::Result<Otlp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(agentos_collector::serve_otlp(listener, state, async {
            let _ = rx.await;
        }));
        Ok(Otlp {
            base,
            client: reqwest::Client::new(),
            stop: Some(tx),
        })
    }

    /// The harness's own state (shared metrics), served on the OTLP port.
    pub async fn of(h: &Harness) -> anyhow::Result<Otlp> {
        Self::start(h.state.clone()).await
    }

    /// A second state over the harness's store with other OTLP limits.
    pub async fn with_limits(h: &Harness, limits: OtlpLimits) -> anyhow::Result<Otlp> {
        let state = AppState::builder(h.state.store().clone(), Keyring::new())
            .clock(h.clock.clone())
            .otlp(limits)
            .build();
        Self::start(state).await
    }

    /// Posts raw bytes; returns status, headers and body bytes.
    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Vec<u8>)> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Ok((status, headers, resp.bytes().await?.to_vec()))
    }

    /// Posts an OTLP/JSON body; returns status and the parsed answer.
    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let (s, _, b) = self
            .post(
                path,
                Some(key),
                "application/json",
                None,
                serde_json::to_vec(body)?,
            )
            .await?;
        Ok((s, serde_json::from_slice(&b).unwrap_or(Value::Null)))
    }
}

/// One `api_request` as Claude Code's documentation shows it (all values as strings).
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub session: &'static str,
    pub prompt_id: &'static str,
    pub seq: u64,
    pub at: &'static str,
    pub model: &'static str,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub cost: &'static str,
    pub duration_ms: u64,
}

/// Two requests of session `s-otlp-1`, an hour before the harness's now (19:00 UTC).
pub fn two_requests(session: &'static str) -> Vec<ApiRequest> {
    vec![
        ApiRequest {
            session,
            prompt_id: "prompt-1",
            seq: 2,
            at: "2026-11-24T19:00:00.000Z",
            model: "claude-sonnet-4-5",
            input: 1200,
            output: 340,
            cache_read: 5000,
            cache_creation: 800,
            cost: "0.25",
            duration_ms: 2345,
        },
        ApiRequest {
            session,
            prompt_id: "prompt-1",
            seq: 3,
            at: "2026-11-24T19:00:05.250Z",
            model: "claude-sonnet-4-5",
            input: 300,
            output: 60,
            cache_read: 0,
            cache_creation: 100,
            cost: "0.5",
            duration_ms: 1000,
        },
    ]
}

fn s(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

fn standard(session: &str) -> Vec<Value> {
    vec![
        s("session.id", session),
        s("user.account_uuid", "acc-0001"),
        s("user.id", "inst-9f2c"),
        s("user.email", "dev@example.invalid"),
        s("organization.id", "org-42"),
        s("terminal.type", "vscode"),
    ]
}

/// The OTLP/JSON logs body: a `user_prompt` event carrying the prompt text (as with
/// `OTEL_LOG_USER_PROMPTS=1`) followed by the `api_request` events.
pub fn logs_json(reqs: &[ApiRequest]) -> Value {
    let mut records = Vec::new();
    if let Some(first) = reqs.first() {
        let mut attrs = standard(first.session);
        attrs.extend([
            s("event.name", "user_prompt"),
            s("event.timestamp", first.at),
            s("event.sequence", "1"),
            s("prompt.id", first.prompt_id),
            s("prompt_length", &PROMPT.len().to_string()),
            s("prompt", PROMPT),
        ]);
        records.push(json!({
            "timeUnixNano": "1795546800000000000",
            "body": {"stringValue": "claude_code.user_prompt"},
            "attributes": attrs,
        }));
    }
    for r in reqs {
        let mut attrs = standard(r.session);
        attrs.extend([
            s("event.name", "api_request"),
            s("event.timestamp", r.at),
            s("event.sequence", &r.seq.to_string()),
            s("prompt.id", r.prompt_id),
            s("model", r.model),
            s("cost_usd", r.cost),
            s("duration_ms", &r.duration_ms.to_string()),
            s("input_tokens", &r.input.to_string()),
            s("output_tokens", &r.output.to_string()),
            s("cache_read_tokens", &r.cache_read.to_string()),
            s("cache_creation_tokens", &r.cache_creation.to_string()),
        ]);
        records.push(json!({
            "timeUnixNano": "1795546800000000000",
            "observedTimeUnixNano": "1795546800000000000",
            "body": {"stringValue": "claude_code.api_request"},
            "attributes": attrs,
        }));
    }
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            s("service.name", "claude-code"),
            s("service.version", "2.0.0"),
        ]},
        "scopeLogs": [{
            "scope": {"name": "com.anthropic.claude_code.events", "version": "2.0.0"},
            "logRecords": records,
        }],
    }]})
}

fn kv(key: &str, v: AnyInner) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

/// The same requests as a protobuf message, with typed (int/double) values this time.
pub fn logs_proto(reqs: &[ApiRequest]) -> ExportLogsServiceRequest {
    let records = reqs
        .iter()
        .map(|r| LogRecord {
            time_unix_nano: 1_795_546_800_000_000_000,
            event_name: "claude_code.api_request".into(),
            body: Some(AnyValue {
                value: Some(AnyInner::StringValue("claude_code.api_request".into())),
            }),
            attributes: vec![
                kv("session.id", AnyInner::StringValue(r.session.into())),
                kv("user.account_uuid", AnyInner::StringValue("acc-0001".into())),
                kv("event.timestamp", AnyInner::StringValue(r.at.into())),
                kv("event.sequence", AnyInner::IntValue(r.seq as i64)),
                kv("prompt.id", AnyInner::StringValue(r.prompt_id.into())),
                kv("model", AnyInner::StringValue(r.model.into())),
                kv(
                    "cost_usd",
                    AnyInner::DoubleValue(r.cost.parse().expect("cost")),
                ),
                kv("duration_ms", AnyInner::IntValue(r.duration_ms as i64)),
                kv("input_tokens", AnyInner::IntValue(r.input as i64)),
                kv("output_tokens", AnyInner::IntValue(r.output as i64)),
                kv("cache_read_tokens", AnyInner::IntValue(r.cache_read as i64)),
                kv(
                    "cache_creation_tokens",
                    AnyInner::IntValue(r.cache_creation as i64),
                ),
                kv("tool_parameters", AnyInner::StringValue("{\"cmd\":\"rm\"}".into())),
            ],
            ..LogRecord::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", AnyInner::StringValue("claude-code".into()))],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

/// The `/v1/report?kind=model` totals for one source.
pub async fn totals(h: &Harness, key: &str, source: &str) -> anyhow::Result<Value> {
    let (s, rep) = h
        .get(&format!("/v1/report?kind=model&source={source}"), key)
        .await?;
    anyhow::ensure!(s == 200, "report: {rep}");
    Ok(rep["totals"].clone())
}

/// Asserts the two requests of [`two_requests`] are counted, exactly, from source `otlp`.
pub async fn assert_two_otlp_turns(h: &Harness, key: &str) -> anyhow::Result<()> {
    let t = totals(h, key, "otlp").await?;
    assert_eq!(t["turns"], 2, "{t}");
    assert_eq!(t["input_tokens"], 1500, "{t}");
    assert_eq!(t["output_tokens"], 400, "{t}");
    assert_eq!(t["cache_read_tokens"], 5000, "{t}");
    assert_eq!(t["cache_creation_tokens"], 900, "{t}");
    assert_eq!(t["cost_usd"].as_f64(), Some(0.75), "{t}");
    let (s, u) = h.get("/v1/usage", key).await?;
    assert_eq!(s, 200, "{u}");
    let m = &u["models"]["claude-sonnet-4-5"];
    assert_eq!(m["reqs"], 2, "{u}");
    assert_eq!(m["rolling_in"], 1500, "{u}");
    assert_eq!(m["rolling_out"], 400, "{u}");
    Ok(())
}

/// Every stored event body of the tenant's OTLP device, and (SQLite) the database files: the
/// prompt must be in neither.
async fn assert_prompt_never_stored(h: &Harness, tenant: &str) -> anyhow::Result<()> {
    let events = h
        .state
        .store()
        .device_events(tenant, "otlp:acc-0001", 1000)
        .await?;
    assert!(!events.is_empty());
    for e in &events {
        assert!(!e.body.contains("SECRET-PROMPT"), "{}", e.body);
        assert!(!e.body.contains("dev@example.invalid"), "{}", e.body);
        assert!(!e.body.contains("cmd"), "tool parameters leaked: {}", e.body);
    }
    if let Some(path) = h.url.strip_prefix("sqlite:") {
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                let needle = b"SECRET-PROMPT";
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "the prompt is in {path}{suffix}"
                );
            }
        }
    }
    Ok(())
}

async fn counter(h: &Harness, line_prefix: &str) -> anyhow::Result<f64> {
    let text = h.client.get(format!("{}/metrics", h.base)).send().await?.text().await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

async fn json_from_the_docs_becomes_turns_once(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let otlp = Otlp::of(h).await?;
    let body = logs_json(&two_requests("s-otlp-1"));
    let (s, r) = otlp.post_json("/v1/logs", &key, &body).await?;
    assert_eq!(s, 200, "{r}");
    // Nothing rejected; the prompt (and nothing else) reported as dropped free text.
    let ps = &r["partialSuccess"];
    assert_eq!(ps["rejectedLogRecords"].as_i64().unwrap_or(0), 0, "{r}");
    let msg = ps["errorMessage"].as_str().unwrap_or("");
    assert!(msg.contains("1 free-text attribute"), "{r}");
    assert_two_otlp_turns(h, &key).await?;
    assert_eq!(totals(h, &key, "claude_code").await?["turns"], 0);
    // The exporter retries the same body: nothing is counted twice.
    let (s, r) = otlp.post_json("/v1/logs", &key, &body).await?;
    assert_eq!(s, 200, "{r}");
    assert_two_otlp_turns(h, &key).await?;
    assert_prompt_never_stored(h, "acme").await?;
    // Counted: 2 accepted, 2 duplicates, 2 ignored user_prompt records, 2 prompts dropped.
    let m = |o: &str| format!("agentos_collector_otlp_records_total{{signal=\"logs\",outcome=\"{o}\"}}");
    assert_eq!(counter(h, &m("accepted")).await?, 2.0);
    assert_eq!(counter(h, &m("duplicate")).await?, 2.0);
    assert_eq!(counter(h, &m("ignored")).await?, 2.0);
    assert_eq!(
        counter(
            h,
            "agentos_collector_otlp_dropped_attributes_total{reason=\"free_text\"}"
        )
        .await?,
        2.0
    );
    // Another tenant sees none of it.
    let other = h.key("globex").await?;
    assert_eq!(totals(h, &other, "otlp").await?["turns"], 0);
    Ok(())
}
crate::both_backends!(json_from_the_docs_becomes_turns_once);

async fn protobuf_and_gzip_bodies_are_accepted(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let otlp = Otlp::of(h).await?;
    let proto = logs_proto(&two_requests("s-otlp-2")).encode_to_vec();
    let (s, headers, body) = otlp
        .post(
            "/v1/logs",
            Some(&key),
            "application/x-protobuf",
            Some("gzip"),
            gzip(&proto),
        )
        .await?;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let answer = ExportLogsServiceResponse::decode(body.as_slice())?;
    let ps = answer.partial_success.expect("drops are reported");
    assert_eq!(ps.rejected_log_records, 0);
    assert!(ps.error_message.contains("2 free-text"), "{}", ps.error_message);
    assert_two_otlp_turns(h, &key).await?;
    // The same requests sent again as JSON (another exporter protocol) are the same turns.
    let (s, r) = otlp
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-otlp-2")))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_two_otlp_turns(h, &key).await?;
    assert_prompt_never_stored(h, "acme").await?;
    Ok(())
}
crate::both_backends!(protobuf_and_gzip_bodies_are_accepted);

async fn bad_requests_get_the_status_the_spec_asks_for(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let (viewer, record) = generate_key_with_role("acme", Role::Viewer, NOW_US)?;
    h.state.store().insert_key(&record).await?;
    let otlp = Otlp::of(h).await?;
    let good = serde_json::to_vec(&logs_json(&two_requests("s-bad")))?;
    let json = "application/json";
    let status = |r: (u16, reqwest::header::HeaderMap, Vec<u8>)| r.0;
    // 401 without or with an unknown key, 403 for a viewer key; nothing stored.
    assert_eq!(status(otlp.post("/v1/logs", None, json, None, good.clone()).await?), 401);
    assert_eq!(
        status(otlp.post("/v1/logs", Some("ak_nope_nope"), json, None, good.clone()).await?),
        401
    );
    let (s, _, b) = otlp.post("/v1/logs", Some(&viewer), json, None, good.clone()).await?;
    assert_eq!(s, 403);
    let st: Value = serde_json::from_slice(&b)?;
    assert_eq!(st["code"], 7, "{st}");
    // 415 for another content type or encoding.
    assert_eq!(
        status(otlp.post("/v1/logs", Some(&key), "text/plain", None, good.clone()).await?),
        415
    );
    assert_eq!(
        status(otlp.post("/v1/logs", Some(&key), json, Some("br"), good.clone()).await?),
        415
    );
    // 400 for undecodable bodies, with the decoder's reason.
    let (s, _, b) = otlp
        .post("/v1/logs", Some(&key), json, None, b"{\"resourceLogs\": 7}".to_vec())
        .await?;
    assert_eq!(s, 400);
    let st: Value = serde_json::from_slice(&b)?;
    assert!(st["message"].as_str().unwrap_or("").contains("OTLP/JSON"), "{st}");
    let (s, _, _) = otlp
        .post(
            "/v1/logs",
            Some(&key),
            "application/x-protobuf",
            None,
            vec![0xff, 0xff, 0xff, 0x0f],
        )
        .await?;
    assert_eq!(s, 400);
    assert_eq!(
        status(otlp.post("/v1/logs", Some(&key), json, Some("gzip"), b"nope".to_vec()).await?),
        400
    );
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 0);

    // 413 over the cap, on the wire and after decompression (a gzip bomb).
    let small = Otlp::with_limits(
        h,
        OtlpLimits {
            max_body_bytes: 64 * 1024,
            ..OtlpLimits::default()
        },
    )
    .await?;
    let (s, _, b) = small
        .post("/v1/logs", Some(&key), json, None, vec![b' '; 70 * 1024])
        .await?;
    assert_eq!(s, 413, "{}", String::from_utf8_lossy(&b));
    let bomb = gzip(&vec![b' '; 16 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let (s, _, b) = small
        .post("/v1/logs", Some(&key), json, Some("gzip"), bomb)
        .await?;
    assert_eq!(s, 413, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("after decompression"));

    // Partial success: a malformed api_request is refused by name, its sibling stored.
    let mut body = logs_json(&two_requests("s-partial"));
    let attrs = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["attributes"]
        .as_array_mut()
        .expect("attributes");
    attrs.retain(|a| a["key"] != "input_tokens");
    let (s, r) = otlp.post_json("/v1/logs", &key, &body).await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["partialSuccess"]["rejectedLogRecords"], 1, "{r}");
    let msg = r["partialSuccess"]["errorMessage"].as_str().unwrap_or("");
    assert!(msg.contains("`input_tokens` is missing"), "{r}");
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 1);

    // Limits: records past max_records rejected, attributes past max_attributes dropped.
    let tight = Otlp::with_limits(
        h,
        OtlpLimits {
            max_records: 2,
            max_attributes: 16,
            ..OtlpLimits::default()
        },
    )
    .await?;
    let (s, r) = tight
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-limits")))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["partialSuccess"]["rejectedLogRecords"], 1, "{r}");
    let msg = r["partialSuccess"]["errorMessage"].as_str().unwrap_or("");
    assert!(msg.contains("past the first 2"), "{r}");
    assert!(msg.contains("over the per-record limit"), "{r}");

    // Back-pressure: no processing permit → 429 with Retry-After, nothing read or stored.
    let closed = Otlp::with_limits(
        h,
        OtlpLimits {
            max_inflight: 0,
            retry_after_secs: 7,
            ..OtlpLimits::default()
        },
    )
    .await?;
    let (s, headers, _) = closed
        .post("/v1/logs", Some(&key), json, None, good.clone())
        .await?;
    assert_eq!(s, 429);
    assert_eq!(headers["retry-after"], "7");
    Ok(())
}
crate::both_backends!(bad_requests_get_the_status_the_spec_asks_for);
