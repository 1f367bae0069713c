//! The official `opentelemetry-otlp` exporter (HTTP protobuf and HTTP JSON, plain and gzip)
//! against the real collector: log records shaped like Claude Code's `api_request` and
//! `user_prompt` events, and its two usage counters, on SQLite and PostgreSQL.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use serde_json::Value;

use crate::common::Harness;
use crate::otlp::{ApiRequest, Otlp, PROMPT, totals, two_requests};

/// How the exporter is configured (what `OTEL_EXPORTER_OTLP_PROTOCOL` and compression pick).
#[derive(Debug, Clone, Copy)]
struct Wire {
    json: bool,
    gzip: bool,
}

impl Wire {
    const PROTO: Wire = Wire {
        json: false,
        gzip: false,
    };
    const JSON: Wire = Wire {
        json: true,
        gzip: false,
    };
    const PROTO_GZIP: Wire = Wire {
        json: false,
        gzip: true,
    };
    const JSON_GZIP: Wire = Wire {
        json: true,
        gzip: true,
    };
}

fn headers(key: &str) -> HashMap<String, String> {
    // What OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer …" turns into.
    HashMap::from([("Authorization".to_string(), format!("Bearer {key}"))])
}

fn protocol(w: Wire) -> Protocol {
    if w.json {
        Protocol::HttpJson
    } else {
        Protocol::HttpBinary
    }
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("claude-code")
        .with_attribute(KeyValue::new("service.version", "2.0.0"))
        .build()
}

/// Runs `f` on a plain thread: the exporter's blocking HTTP client must not run on a runtime
/// worker.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(f)
            .join()
            .map_err(|_| anyhow::anyhow!("exporter thread panicked"))?
    })
    .await?
}

/// Emits a `user_prompt` (with its prompt text) and the `api_request`s through the SDK's
/// logger and the OTLP HTTP exporter, then shuts the provider down (which flushes).
fn export_logs(
    endpoint: String,
    key: String,
    w: Wire,
    reqs: Vec<ApiRequest>,
) -> anyhow::Result<()> {
    let mut b = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(protocol(w))
        .with_endpoint(format!("{endpoint}/v1/logs"))
        .with_headers(headers(&key));
    if w.gzip {
        b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(b.build()?)
        .with_resource(resource())
        .build();
    let logger = provider.logger("com.anthropic.claude_code.events");
    let standard = |r: &mut opentelemetry_sdk::logs::SdkLogRecord, session: &str| {
        r.add_attribute("session.id", session.to_string());
        r.add_attribute("user.account_uuid", "acc-0001");
        r.add_attribute("user.id", "inst-9f2c");
        r.add_attribute("organization.id", "org-42");
        r.add_attribute("terminal.type", "vscode");
    };
    if let Some(first) = reqs.first() {
        let mut r = logger.create_log_record();
        r.set_event_name("claude_code.user_prompt");
        r.set_body(AnyValue::from("claude_code.user_prompt"));
        standard(&mut r, first.session);
        r.add_attribute("event.name", "user_prompt");
        r.add_attribute("event.timestamp", first.at);
        r.add_attribute("prompt.id", first.prompt_id);
        r.add_attribute("prompt_length", PROMPT.len().to_string());
        r.add_attribute("prompt", PROMPT);
        logger.emit(r);
    }
    for q in &reqs {
        let mut r = logger.create_log_record();
        r.set_event_name("claude_code.api_request");
        r.set_body(AnyValue::from("claude_code.api_request"));
        standard(&mut r, q.session);
        r.add_attribute("event.name", "api_request");
        r.add_attribute("event.timestamp", q.at);
        r.add_attribute("event.sequence", q.seq.to_string());
        r.add_attribute("prompt.id", q.prompt_id);
        r.add_attribute("model", q.model);
        // Claude Code sends the figures as strings.
        r.add_attribute("cost_usd", q.cost);
        r.add_attribute("duration_ms", q.duration_ms.to_string());
        r.add_attribute("input_tokens", q.input.to_string());
        r.add_attribute("output_tokens", q.output.to_string());
        r.add_attribute("cache_read_tokens", q.cache_read.to_string());
        r.add_attribute("cache_creation_tokens", q.cache_creation.to_string());
        logger.emit(r);
    }
    provider.shutdown()?;
    Ok(())
}

/// Adds the requests to Claude Code's two counters (delta temporality, Claude Code's default)
/// and exports them once at shutdown.
fn export_metrics(
    endpoint: String,
    key: String,
    w: Wire,
    reqs: Vec<ApiRequest>,
) -> anyhow::Result<()> {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(protocol(w))
        .with_endpoint(format!("{endpoint}/v1/metrics"))
        .with_headers(headers(&key))
        .with_temporality(Temporality::Delta)
        .build()?;
    let provider = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(resource())
        .build();
    let meter = provider.meter("com.anthropic.claude_code");
    let tokens = meter
        .f64_counter("claude_code.token.usage")
        .with_unit("tokens")
        .build();
    let cost = meter
        .f64_counter("claude_code.cost.usage")
        .with_unit("USD")
        .build();
    for q in &reqs {
        let attrs = |kind: Option<&'static str>| {
            let mut a = vec![
                KeyValue::new("session.id", q.session),
                KeyValue::new("model", q.model),
                KeyValue::new("user.account_uuid", "acc-0001"),
            ];
            if let Some(k) = kind {
                a.push(KeyValue::new("type", k));
            }
            a
        };
        tokens.add(q.input as f64, &attrs(Some("input")));
        tokens.add(q.output as f64, &attrs(Some("output")));
        tokens.add(q.cache_read as f64, &attrs(Some("cacheRead")));
        tokens.add(q.cache_creation as f64, &attrs(Some("cacheCreation")));
        cost.add(q.cost.parse()?, &attrs(None));
    }
    provider.shutdown()?;
    Ok(())
}

async fn the_official_exporter_delivers_claude_code_turns(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let otlp = Otlp::of(h).await?;
    for (w, session) in [
        (Wire::PROTO, "s-exp-proto"),
        (Wire::JSON, "s-exp-json"),
        (Wire::PROTO_GZIP, "s-exp-proto-gz"),
        (Wire::JSON_GZIP, "s-exp-json-gz"),
    ] {
        let (base, k) = (otlp.base.clone(), key.clone());
        off_runtime(move || export_logs(base, k, w, two_requests(session))).await?;
    }
    // Four sessions of the two requests each: exact totals.
    let t = totals(h, &key, "otlp").await?;
    assert_eq!(t["turns"], 8, "{t}");
    assert_eq!(t["input_tokens"], 6000, "{t}");
    assert_eq!(t["output_tokens"], 1600, "{t}");
    assert_eq!(t["cache_read_tokens"], 20_000, "{t}");
    assert_eq!(t["cache_creation_tokens"], 3600, "{t}");
    assert_eq!(t["cost_usd"].as_f64(), Some(3.0), "{t}");
    let (_, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(u["models"]["claude-sonnet-4-5-20250929"]["reqs"], 8, "{u}");
    // The exporter sends a session again (a retry after a lost answer): counted once.
    let (base, k) = (otlp.base.clone(), key.clone());
    let again = Wire::JSON;
    off_runtime(move || export_logs(base, k, again, two_requests("s-exp-proto"))).await?;
    assert_eq!(totals(h, &key, "otlp").await?["turns"], 8);
    // The prompt was dropped, counted, and never stored.
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("agentos_collector_otlp_dropped_attributes_total{reason=\"free_text\"} 5"),
        "{metrics}"
    );
    for e in h
        .state
        .store()
        .device_events("acme", "otlp:acc-0001", 100)
        .await?
    {
        assert!(!e.body.contains("SECRET-PROMPT"), "{}", e.body);
    }
    // Session view: the team's sessions page lists the OTLP sessions via the report.
    let (_, sessions) = h.get("/v1/report?kind=session&source=otlp", &key).await?;
    let keys: Vec<&str> = sessions["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 4, "{sessions}");

    // Metrics, both protocols: the cross-check agrees with the turns.
    for (w, session) in [(Wire::PROTO, "s-exp-proto"), (Wire::JSON, "s-exp-json")] {
        let (base, k) = (otlp.base.clone(), key.clone());
        off_runtime(move || export_metrics(base, k, w, two_requests(session))).await?;
    }
    let (s, x) = h.get("/v1/otlp/sessions", &key).await?;
    assert_eq!(s, 200, "{x}");
    let listed: Vec<&Value> = x["sessions"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    assert_eq!(listed.len(), 2, "{x}");
    for s in listed {
        assert_eq!(s["consistent"], true, "{x}");
        assert_eq!(s["metrics"]["input_tokens"].as_f64(), Some(1500.0), "{x}");
        assert_eq!(s["metrics"]["cost_usd"].as_f64(), Some(0.75), "{x}");
    }
    Ok(())
}
crate::both_backends!(the_official_exporter_delivers_claude_code_turns);
