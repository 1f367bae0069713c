//! `agentos ccc serve` with its OpenTelemetry receiver: the real binary, a real SQLite file,
//! `AGENTOS_COLLECTOR_OTLP_LISTEN` set the way a deployment sets it, an ingest key made with
//! `agentos ccc keys create`, and an OTLP/JSON `api_request` shaped like Claude Code's.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use serde_json::{Value, json};

use crate::common::Sandbox;

/// Kills the server even when an assertion fails first.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn attr(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

#[test]
fn serve_with_an_otlp_listener_turns_claude_code_events_into_turns() {
    let mut sb = Sandbox::new();
    let db = format!("sqlite:{}", sb.path().join("collector.db").display());
    let key = sb
        .ok(&[
            "ccc",
            "keys",
            "create",
            "--tenant",
            "acme",
            "--role",
            "ingest",
            "--database",
            &db,
        ])
        .stdout
        .trim()
        .to_string();
    sb.set_env("AGENTOS_COLLECTOR_OTLP_LISTEN", "127.0.0.1:0");
    let mut child = sb
        .command(&["ccc", "serve", "--listen", "127.0.0.1:0", "--database", &db])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn agentos ccc serve");
    let stdout = child.stdout.take().expect("stdout");
    let _server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut url_after = |marker: &str| -> String {
        let line = lines
            .next()
            .expect("the server printed its addresses")
            .expect("utf-8 stdout");
        assert!(line.contains(marker), "{line}");
        let at = line.find("http://").expect("a URL");
        line[at..]
            .split_whitespace()
            .next()
            .expect("url")
            .to_string()
    };
    let main = url_after("collector listening on");
    let otlp = url_after("OTLP receiver listening on");
    assert_ne!(main, otlp);

    let mut attrs = vec![
        attr("event.name", "api_request"),
        attr("event.timestamp", &jiff::Timestamp::now().to_string()),
        attr("event.sequence", "4"),
        attr("session.id", "cli-session"),
        attr("prompt.id", "p-1"),
        attr("user.account_uuid", "acc-1"),
        attr("organization.id", "org-1"),
        attr("model", "claude-sonnet-4-5"),
        attr("cost_usd", "0.125"),
        attr("duration_ms", "900"),
    ];
    for (k, v) in [
        ("input_tokens", "70"),
        ("output_tokens", "30"),
        ("cache_read_tokens", "1000"),
        ("cache_creation_tokens", "0"),
    ] {
        attrs.push(attr(k, v));
    }
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "body": {"stringValue": "claude_code.api_request"},
        "attributes": attrs,
    }]}]}]});
    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("{otlp}/v1/logs"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .expect("POST /v1/logs");
    assert_eq!(resp.status().as_u16(), 200);
    // The OTLP path is not the main port's /v1/metrics.
    let resp = client
        .get(format!("{main}/v1/report?kind=model&source=otlp"))
        .bearer_auth(&key)
        .send()
        .expect("GET /v1/report");
    assert_eq!(resp.status().as_u16(), 200);
    let report: Value = resp.json().expect("report JSON");
    let t = &report["totals"];
    assert_eq!(t["turns"], 1, "{report}");
    assert_eq!(t["input_tokens"], 70, "{report}");
    assert_eq!(t["cache_read_tokens"], 1000, "{report}");
    assert_eq!(t["cost_usd"].as_f64(), Some(0.125), "{report}");
}
