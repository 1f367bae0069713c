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
                kv(
                    "user.account_uuid",
                    AnyInner::StringValue("acc-0001".into()),
                ),
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
                kv(
                    "tool_parameters",
                    AnyInner::StringValue("{\"cmd\":\"rm\"}".into()),
                ),
            ],
            ..LogRecord::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    AnyInner::StringValue("claude-code".into()),
                )],
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
    let m = &u["models"]["claude-sonnet-4-5-20250929"];
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
        assert!(
            !e.body.contains("cmd"),
            "tool parameters leaked: {}",
            e.body
        );
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
    let text = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await?
        .text()
        .await?;
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
    let m = |o: &str| {
        format!("agentos_collector_otlp_records_total{{signal=\"logs\",outcome=\"{o}\"}}")
    };
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
    // The team view: the dashboard lists the person's synthetic device and the session.
    let viewer = crate::dashboard::key_with(h, "acme", Role::Viewer).await?;
    let cookie = crate::dashboard::sign_in(h, &viewer).await?;
    let (s, devices) = crate::dashboard::page(h, &cookie, "/devices").await?;
    assert_eq!(s, 200);
    assert!(devices.contains("otlp:acc-0001"), "{devices}");
    let (s, sessions) = crate::dashboard::page(h, &cookie, "/sessions").await?;
    assert_eq!(s, 200);
    assert!(sessions.contains("s-otlp-1"), "{sessions}");
    assert!(!sessions.contains("SECRET-PROMPT"));
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
    assert!(
        ps.error_message.contains("2 free-text"),
        "{}",
        ps.error_message
    );
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
    assert_eq!(
        status(
            otlp.post("/v1/logs", None, json, None, good.clone())
                .await?
        ),
        401
    );
    assert_eq!(
        status(
            otlp.post("/v1/logs", Some("ak_nope_nope"), json, None, good.clone())
                .await?
        ),
        401
    );
    let (s, _, b) = otlp
        .post("/v1/logs", Some(&viewer), json, None, good.clone())
        .await?;
    assert_eq!(s, 403);
    let st: Value = serde_json::from_slice(&b)?;
    assert_eq!(st["code"], 7, "{st}");
    // 415 for another content type or encoding.
    assert_eq!(
        status(
            otlp.post("/v1/logs", Some(&key), "text/plain", None, good.clone())
                .await?
        ),
        415
    );
    assert_eq!(
        status(
            otlp.post("/v1/logs", Some(&key), json, Some("br"), good.clone())
                .await?
        ),
        415
    );
    // 400 for undecodable bodies, with the decoder's reason.
    let (s, _, b) = otlp
        .post(
            "/v1/logs",
            Some(&key),
            json,
            None,
            b"{\"resourceLogs\": 7}".to_vec(),
        )
        .await?;
    assert_eq!(s, 400);
    let st: Value = serde_json::from_slice(&b)?;
    assert!(
        st["message"].as_str().unwrap_or("").contains("OTLP/JSON"),
        "{st}"
    );
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
        status(
            otlp.post("/v1/logs", Some(&key), json, Some("gzip"), b"nope".to_vec())
                .await?
        ),
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

/// A Claude Code turn as the hooks deliver it (source `claude_code`, id derived from the
/// transcript's message and request ids) for `session`.
fn hook_turn(seq: u64, session: &str, message_id: &str) -> Value {
    let mut v = crate::common::turn_at(
        seq,
        NOW_US - 3_600_000_000,
        "claude-sonnet-4-5",
        1000,
        100,
        1500.0,
    );
    let id = agentos_core::origin::Origin::ClaudeRequest {
        message_id,
        request_id: &format!("req-{message_id}"),
    }
    .turn_id();
    v["turn"]["session_id"] = json!(session);
    v["turn"]["turn_id"] = json!(id.0);
    v["turn"]["source"] = json!("claude_code");
    v
}

async fn hook_turns_win_over_otlp_turns_of_the_same_session(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let otlp = Otlp::of(h).await?;
    // OTLP first: counted until the session's hook turns arrive, then retracted.
    let (s, r) = otlp
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-both-1")))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_two_otlp_turns(h, &key).await?;
    let hooks = vec![
        hook_turn(1, "s-both-1", "m1"),
        hook_turn(2, "s-both-1", "m2"),
    ];
    let (s, r) = h
        .post_events(&key, &crate::common::batch("laptop", 1, 2, hooks))
        .await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(2)), "{r}");
    let only_hooks = |t: &Value| {
        assert_eq!(t["turns"], 2, "{t}");
        assert_eq!(t["input_tokens"], 2000, "{t}");
        assert_eq!(t["output_tokens"], 200, "{t}");
    };
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 0);
    only_hooks(&totals(h, &key, "claude_code").await?);
    let (_, all) = h.get("/v1/report?kind=daily", &key).await?;
    only_hooks(&all["totals"]);
    // Every rollup lost them: whole UTC days (the daily rollup) and sessions (the per-session
    // rollup, which the session report and the overview's top lists read).
    let (s, days) = h
        .get(
            "/v1/report?kind=daily&since=2026-01-01&until=2027-12-31",
            &key,
        )
        .await?;
    assert_eq!(s, 200, "{days}");
    only_hooks(&days["totals"]);
    let (s, sessions) = h.get("/v1/report?kind=session", &key).await?;
    assert_eq!(s, 200, "{sessions}");
    only_hooks(&sessions["totals"]);
    assert_eq!(
        sessions["rows"].as_array().map(Vec::len),
        Some(1),
        "{sessions}"
    );
    let (_, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(u["models"]["claude-sonnet-4-5-20250929"]["reqs"], 2, "{u}");
    assert_eq!(
        u["models"]["claude-sonnet-4-5-20250929"]["rolling_in"], 2000,
        "{u}"
    );
    // The retracted OTLP events are gone; an exporter retry does not bring them back.
    let stored = h
        .state
        .store()
        .device_events("acme", "otlp:acc-0001", 10)
        .await?;
    assert!(stored.is_empty(), "{stored:?}");
    let (s, r) = otlp
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-both-1")))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 0);

    // Hooks first: the session's OTLP turns are never stored.
    let hooks = vec![hook_turn(3, "s-both-2", "m3")];
    let (s, r) = h
        .post_events(&key, &crate::common::batch("laptop", 3, 3, hooks))
        .await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(1)), "{r}");
    let (s, r) = otlp
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-both-2")))
        .await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 0);
    assert_eq!(totals(h, &key, "claude_code").await?["turns"], 3);
    let m = |o: &str| {
        format!("agentos_collector_otlp_records_total{{signal=\"logs\",outcome=\"{o}\"}}")
    };
    assert_eq!(counter(h, &m("retracted")).await?, 2.0);
    assert_eq!(counter(h, &m("superseded")).await?, 4.0);

    // A session only OTLP saw stays counted from OTLP, next to the others.
    let (s, r) = otlp
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-only-otlp")))
        .await?;
    assert_eq!(s, 200, "{r}");
    // /v1/usage: the 3 hook turns and this session's 2 OTLP turns, nothing else.
    let (_, u) = h.get("/v1/usage", &key).await?;
    let m = &u["models"]["claude-sonnet-4-5-20250929"];
    assert_eq!(
        (m["reqs"].as_u64(), m["rolling_in"].as_u64()),
        (Some(5), Some(4500)),
        "{u}"
    );
    let t = totals(h, &key, "otlp").await?;
    assert_eq!(
        (t["turns"].as_u64(), t["input_tokens"].as_u64()),
        (Some(2), Some(1500)),
        "{t}"
    );
    Ok(())
}
crate::both_backends!(hook_turns_win_over_otlp_turns_of_the_same_session);

async fn a_device_cannot_send_otlp_turns(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let mut forged = hook_turn(1, "s-forged", "m1");
    forged["turn"]["source"] = json!("otlp");
    let (s, r) = h
        .post_events(&key, &crate::common::batch("laptop", 1, 1, vec![forged]))
        .await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(0)), "{r}");
    assert_eq!(r["rejected"][0]["code"], "invalid_value", "{r}");
    assert!(
        r["rejected"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("/turn/source"),
        "{r}"
    );
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 0);
    Ok(())
}
crate::both_backends!(a_device_cannot_send_otlp_turns);

fn point(session: &str, kind: Option<&str>, start: &str, time: &str, v: f64) -> Value {
    let mut attrs = vec![
        s("session.id", session),
        s("model", "claude-sonnet-4-5"),
        s("user.account_uuid", "acc-0001"),
    ];
    if let Some(k) = kind {
        attrs.push(s("type", k));
    }
    json!({"attributes": attrs, "startTimeUnixNano": start, "timeUnixNano": time, "asDouble": v})
}

/// Claude Code's two usage counters as OTLP/JSON (`temporality` 1 = delta, 2 = cumulative),
/// plus a counter this collector does not keep.
fn metrics_json(temporality: i32, tokens: Vec<Value>, cost: Vec<Value>) -> Value {
    json!({"resourceMetrics": [{
        "resource": {"attributes": [s("service.name", "claude-code")]},
        "scopeMetrics": [{
            "scope": {"name": "com.anthropic.claude_code", "version": "2.0.0"},
            "metrics": [
                {"name": "claude_code.token.usage", "unit": "tokens",
                 "sum": {"aggregationTemporality": temporality, "isMonotonic": true, "dataPoints": tokens}},
                {"name": "claude_code.cost.usage", "unit": "USD",
                 "sum": {"aggregationTemporality": temporality, "isMonotonic": true, "dataPoints": cost}},
                {"name": "claude_code.session.count", "unit": "count",
                 "sum": {"aggregationTemporality": temporality, "isMonotonic": true,
                         "dataPoints": [{"attributes": [s("session.id", "x")], "asInt": "1",
                                         "timeUnixNano": "1795546800000000000"}]}},
            ],
        }],
    }]})
}

async fn metrics_cross_check_the_turns_per_session(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let otlp = Otlp::of(h).await?;
    let (s, r) = otlp
        .post_json("/v1/logs", &key, &logs_json(&two_requests("s-check")))
        .await?;
    assert_eq!(s, 200, "{r}");
    // Delta points, one export per request.
    let (t0, t1, t2) = (
        "1795546800000000000",
        "1795546805000000000",
        "1795546810000000000",
    );
    let tokens = vec![
        point("s-check", Some("input"), t0, t1, 1200.0),
        point("s-check", Some("output"), t0, t1, 340.0),
        point("s-check", Some("cacheRead"), t0, t1, 5000.0),
        point("s-check", Some("cacheCreation"), t0, t1, 800.0),
        point("s-check", Some("input"), t1, t2, 300.0),
        point("s-check", Some("output"), t1, t2, 60.0),
        point("s-check", Some("cacheCreation"), t1, t2, 100.0),
    ];
    let cost = vec![
        point("s-check", None, t0, t1, 0.25),
        point("s-check", None, t1, t2, 0.5),
    ];
    let body = metrics_json(1, tokens, cost);
    for _ in 0..2 {
        // The second post is an exporter retry: stored once.
        let (s, r) = otlp.post_json("/v1/metrics", &key, &body).await?;
        assert_eq!(s, 200, "{r}");
        assert!(r["partialSuccess"].is_null(), "{r}");
    }
    // Cumulative points of a session whose turns never arrived: the latest is the total.
    let body = metrics_json(
        2,
        vec![
            point("s-lost", Some("input"), t0, t1, 100.0),
            point("s-lost", Some("input"), t0, t2, 250.0),
        ],
        vec![],
    );
    let (s, r) = otlp.post_json("/v1/metrics", &key, &body).await?;
    assert_eq!(s, 200, "{r}");
    // A point without a session is refused by name.
    let body = metrics_json(
        1,
        vec![json!({"asDouble": 1.0, "timeUnixNano": t1})],
        vec![],
    );
    let (s, r) = otlp.post_json("/v1/metrics", &key, &body).await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["partialSuccess"]["rejectedDataPoints"], 1, "{r}");
    assert!(
        r["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("`session.id` is missing"),
        "{r}"
    );

    let (s, x) = h.get("/v1/otlp/sessions", &key).await?;
    assert_eq!(s, 200, "{x}");
    let session = |id: &str| {
        x["sessions"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["session_id"] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let c = session("s-check");
    assert_eq!(c["consistent"], true, "{x}");
    assert_eq!(c["counted_source"], "otlp", "{x}");
    assert_eq!(c["turn_count"], 2, "{x}");
    assert_eq!(c["metrics"]["input_tokens"].as_f64(), Some(1500.0), "{x}");
    assert_eq!(
        c["metrics"]["cache_creation_tokens"].as_f64(),
        Some(900.0),
        "{x}"
    );
    assert_eq!(c["metrics"]["cost_usd"].as_f64(), Some(0.75), "{x}");
    let lost = session("s-lost");
    assert_eq!(lost["metrics"]["input_tokens"].as_f64(), Some(250.0), "{x}");
    assert_eq!(lost["consistent"], false, "{x}");
    assert_eq!(x["inconsistent"], 1, "{x}");
    // Per tenant.
    let other = h.key("globex").await?;
    let (_, y) = h.get("/v1/otlp/sessions", &other).await?;
    assert_eq!(y["sessions"], json!([]), "{y}");
    Ok(())
}
crate::both_backends!(metrics_cross_check_the_turns_per_session);

/// Two collectors over one database take the OTLP export and the hook turns of the same
/// sessions at the same time: whatever the interleaving, each session ends up counted from its
/// hook turns only (the `session_sources` row serialises the two transactions).
async fn concurrent_sources_of_one_session_are_never_counted_twice(
    h: &Harness,
) -> anyhow::Result<()> {
    const SESSIONS: [&str; 8] = ["c-0", "c-1", "c-2", "c-3", "c-4", "c-5", "c-6", "c-7"];
    let key = h.key("acme").await?;
    let sibling = h.sibling().await?;
    // Room for every request at once (the default would answer some 429, to be retried).
    let otlp = Otlp::with_limits(
        &sibling,
        OtlpLimits {
            max_inflight: SESSIONS.len(),
            ..OtlpLimits::default()
        },
    )
    .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, session) in SESSIONS.into_iter().enumerate() {
        let body = logs_json(&two_requests(session));
        let (client, base, k) = (otlp.client.clone(), otlp.base.clone(), key.clone());
        tasks.spawn(async move {
            let r = client
                .post(format!("{base}/v1/logs"))
                .bearer_auth(&k)
                .json(&body)
                .send()
                .await?;
            anyhow::Ok(r.status().as_u16())
        });
        let seq = i as u64 + 1;
        let hooks = crate::common::batch(
            "laptop",
            seq,
            seq,
            vec![hook_turn(seq, session, &format!("mc{i}"))],
        );
        let (client, base, k, license) = (h.client.clone(), h.base.clone(), key.clone(), h.full());
        tasks.spawn(async move {
            let r = client
                .post(format!("{base}/v1/events"))
                .bearer_auth(&k)
                .header("X-AgentOS-License", license)
                .json(&hooks)
                .send()
                .await?;
            anyhow::Ok(r.status().as_u16())
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done??, 200);
    }
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 0);
    let t = totals(h, &key, "claude_code").await?;
    assert_eq!(
        (t["turns"].as_u64(), t["input_tokens"].as_u64()),
        (Some(8), Some(8000)),
        "{t}"
    );
    let (_, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(u["models"]["claude-sonnet-4-5-20250929"]["reqs"], 8, "{u}");
    Ok(())
}
crate::both_backends!(concurrent_sources_of_one_session_are_never_counted_twice);
