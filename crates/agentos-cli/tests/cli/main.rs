//! End-to-end tests of the recorder and license commands through the real `agentos` binary.

#[path = "../common/mod.rs"]
mod common;
mod demo;
mod otlp;
mod report;

use common::{Sandbox, seed_turn_args, strs};
use serde_json::json;

fn start(sb: &Sandbox, tier: &str) -> common::Run {
    sb.run(&[
        "ccc",
        "session",
        "start",
        "--repo-id",
        "repo-1",
        "--branch",
        "main",
        "--commit",
        "abc",
        "--license-id",
        "lic-1",
        "--tier",
        tier,
        "--metadata",
        "team=core",
        "--metadata",
        "customer=ACME secret",
        "--json",
    ])
}

#[test]
fn local_tier_seed_scenario_writes_three_events_and_the_summary() {
    let sb = Sandbox::new();
    let s = start(&sb, "local");
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(s.json()["tier"], "local");
    sb.ok(&strs(&seed_turn_args("claude-sonnet-4.5")));
    sb.ok(&["ccc", "session", "end", "--notes", "done"]);
    let lines = sb.log_lines();
    let types: Vec<_> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["session", "turn", "session_end"]);
    let seqs: Vec<_> = lines
        .iter()
        .map(|l| l["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let summary = sb.summary();
    assert_eq!(summary["features_shipped"], json!(1.0));
    assert_eq!(summary["features_per_capacity"], json!(2.0));
    assert_eq!(summary["avg_cls"], json!(1.2));
    assert_eq!(summary["avg_impf"], json!(4.5));
    let p = sb.ok(&["ccc", "preview", "--tier", "local"]);
    assert_eq!(p.stdout, "", "nothing leaves under local");
    // Events recorded under local never leave, even if the tier is raised later.
    let p = sb
        .ok(&["ccc", "preview", "--tier", "full", "--json"])
        .json();
    assert_eq!(p["events"], json!([]));
    assert_eq!(p["events_withheld"], 3);
}

#[test]
fn minimized_tier_seed_scenario_sends_only_the_allowlisted_summary_and_counts_glm() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_minimized");
    let s = start(&sb, "minimized").json();
    assert_eq!(s["tier"], "minimized", "{s}");
    assert_eq!(s["license"]["plan"], "pro");
    sb.ok(&strs(&seed_turn_args("glm-4.6")));
    sb.ok(&["ccc", "session", "end"]);
    let glm = std::fs::read_to_string(sb.data_dir().join("glm_counts.jsonl")).expect("glm counts");
    let glm: serde_json::Value = serde_json::from_str(glm.trim()).expect("one line");
    assert_eq!(glm["model"], "glm-4.6");
    assert_eq!(glm["tokens_in"], 1200);
    assert_eq!(glm["tokens_out"], 300);
    let p = sb.ok(&["ccc", "preview", "--tier", "minimized"]);
    let lines: Vec<&str> = p.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", p.stdout);
    let body = lines[0]
        .strip_prefix("/v1/metrics\t")
        .expect("metrics label");
    let v: serde_json::Value = serde_json::from_str(body).expect("json");
    let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "avg_churn_score",
            "avg_cls",
            "avg_impf",
            "capacity_used",
            "features_per_capacity",
            "features_shipped",
            "generated_at"
        ]
    );
    assert_eq!(v["features_per_capacity"], json!(2.0));
}

#[test]
fn full_tier_seed_scenario_previews_redacted_events() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_minimized,telemetry_full");
    std::fs::create_dir_all(sb.data_dir()).expect("mkdir");
    std::fs::write(
        sb.data_dir().join("agentos.toml"),
        "[privacy]\nmetadata_allowlist = [\"team\"]\n",
    )
    .expect("config");
    assert_eq!(start(&sb, "full").json()["tier"], "full");
    sb.ok(&strs(&seed_turn_args("claude-sonnet-4.5")));
    sb.ok(&["ccc", "session", "end", "--notes", "secret retro"]);
    let p = sb.ok(&["ccc", "preview", "--tier", "full"]);
    let events: Vec<serde_json::Value> = p
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("/v1/events\t"))
        .map(|b| serde_json::from_str(b).expect("json"))
        .collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["session"]["metadata"], json!({"team": "core"}));
    assert_eq!(
        events[1]["value"],
        json!({"links": ["https://example.invalid/pr/1"], "summary": "login works"})
    );
    assert_eq!(events[1]["measurement"]["error_count"], 1);
    assert!(events[1]["feature"].get("notes").is_none());
    assert!(events[2].get("notes").is_none());
    for secret in [
        "ACME",
        "secret retro",
        "secret_plan",
        "private note",
        "evidence.txt",
    ] {
        assert!(
            !p.stdout.contains(secret),
            "{secret} would leave: {}",
            p.stdout
        );
    }
    assert_eq!(
        p.stdout
            .lines()
            .filter(|l| l.starts_with("/v1/metrics\t"))
            .count(),
        1
    );
}

#[test]
fn missing_entitlement_records_locally_with_a_loud_warning() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_minimized");
    let r = sb.run(&["ccc", "session", "start", "--tier", "full"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("WARNING") && r.stderr.contains("telemetry_full"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains('\x1b'), "NO_COLOR is respected");
    let session = &sb.log_lines()[0];
    assert_eq!(session["tier"], "local");
    assert_eq!(
        session["session"]["metadata"]["agentos.requested_tier"],
        "full"
    );
    assert_eq!(
        session["session"]["metadata"]["agentos.license_problem"],
        "missing_entitlement"
    );
}

#[test]
fn strict_license_refuses_with_exit_1_and_records_nothing() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_minimized");
    let r = sb.run(&[
        "ccc",
        "session",
        "start",
        "--tier",
        "full",
        "--strict-license",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("telemetry_full"), "{}", r.stderr);
    assert!(sb.log_lines().is_empty());
    let t = sb.run(&["ccc", "turn", "--model", "m"]);
    assert_eq!(t.code, 2);
    assert!(t.stderr.contains("no current session"), "{}", t.stderr);
}

#[test]
fn do_not_track_forces_local() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_minimized,telemetry_full");
    sb.set_env("DO_NOT_TRACK", "1");
    let s = sb.run(&["ccc", "session", "start", "--tier", "full", "--json"]);
    assert_eq!(s.json()["tier"], "local");
    assert_eq!(s.json()["downgrade"]["code"], "do_not_track");
}

#[test]
fn license_keygen_issue_verify_status_round_trip() {
    let mut sb = Sandbox::new();
    let (key, public) = sb.keygen("k1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pack = sb.issue(
        &key,
        "good.json",
        "telemetry_minimized,telemetry_full",
        "90d",
    );
    let pack_s = pack.to_str().expect("utf8");
    let trust = format!("k1={public}");

    let v = sb.run(&["license", "verify", pack_s, "--pubkey", &trust, "--json"]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let v = v.json();
    assert_eq!(v["valid"], true);
    assert_eq!(v["kid"], "k1");
    assert_eq!(
        v["features"],
        json!(["telemetry_minimized", "telemetry_full"])
    );

    // No trusted key: unknown kid.
    let r = sb.run(&["license", "verify", pack_s]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("not in the trusted keyring"),
        "{}",
        r.stderr
    );

    // Expired.
    let expired = sb.issue(&key, "expired.json", "telemetry_full", "1000");
    let r = sb.run(&[
        "license",
        "verify",
        expired.to_str().expect("utf8"),
        "--pubkey",
        &trust,
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);

    // Bad signature: trusted kid k1 is another key.
    let (_, other_public) = sb.keygen("other");
    let r = sb.run(&[
        "license",
        "verify",
        pack_s,
        "--pubkey",
        &format!("k1={other_public}"),
        "--json",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["code"], "bad_signature");

    // Tampered claims.
    let text = std::fs::read_to_string(&pack).expect("pack");
    let tampered = sb.path().join("tampered.json");
    std::fs::write(&tampered, text.replace("\"pro\"", "\"enterprise\"")).expect("write");
    let r = sb.run(&[
        "license",
        "verify",
        tampered.to_str().expect("utf8"),
        "--pubkey",
        &trust,
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);

    // Status of the configured pack never shows the signature.
    sb.set_env("AGENTOS_LICENSE_PACK", pack_s);
    sb.set_env("AGENTOS_LICENSE_PUBKEYS", &trust);
    let signature =
        serde_json::from_str::<serde_json::Value>(&text).expect("pack json")["signature"]
            .as_str()
            .expect("sig")
            .to_string();
    let st = sb.ok(&["license", "status"]);
    assert!(
        st.stdout.contains("plan:     pro") && st.stdout.contains("telemetry_full"),
        "{}",
        st.stdout
    );
    assert!(!st.stdout.contains(&signature));
    let st = sb.ok(&["license", "status", "--json"]);
    assert!(!st.stdout.contains(&signature));
    assert_eq!(st.json()["plan"], "pro");
}

#[test]
fn turn_json_input_is_validated_with_pointers() {
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    let bad = r#"{"turn":{"model":"m","subagent":"","tokens_in":1,"tokens_out":-2,"input_kind":"text","latency_ms":1}}"#;
    let r = sb.run_with_stdin(&["ccc", "turn", "--json", "-"], Some(bad));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/turn/tokens_out"), "{}", r.stderr);
    let good = r#"{"type":"turn","turn":{"model":"glm-4.5","subagent":"","tokens_in":1,"tokens_out":2,"input_kind":"image","latency_ms":1},"measurement":{"cls":1,"impf":2,"churn_score":0,"feature_delta":1}}"#;
    let f = sb.path().join("turn.json");
    std::fs::write(&f, good).expect("write");
    let r = sb.ok(&[
        "ccc",
        "turn",
        "--json-file",
        f.to_str().expect("utf8"),
        "--report-json",
    ]);
    assert_eq!(r.json()["seq"], 2);
    assert_eq!(r.json()["glm"], true);
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 2, "the bad turn wrote nothing");
    assert_eq!(lines[1]["turn"]["input_kind"], "image");
}

#[test]
fn concurrent_processes_record_gap_free_and_the_summary_counts_all() {
    const PROCS: usize = 4;
    const TURNS: usize = 8;
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    std::thread::scope(|s| {
        for p in 0..PROCS {
            let sb = &sb;
            s.spawn(move || {
                for _ in 0..TURNS {
                    let model = format!("model-{p}");
                    sb.ok(&[
                        "ccc",
                        "turn",
                        "--model",
                        &model,
                        "--tokens-in",
                        "3",
                        "--capacity-used",
                        "0.25",
                    ]);
                }
            });
        }
    });
    let lines = sb.log_lines();
    let n = 1 + PROCS * TURNS;
    assert_eq!(lines.len(), n);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
    let summary = sb.summary();
    assert_eq!(summary["turns"], (PROCS * TURNS) as u64);
    assert_eq!(
        summary["capacity_used"],
        json!(0.25 * (PROCS * TURNS) as f64)
    );
    // The from-scratch recompute agrees.
    let r = sb.ok(&["ccc", "rollup", "--json", "--strict"]).json();
    assert_eq!(r["summary"]["turns"], (PROCS * TURNS) as u64);
    assert_eq!(r["last_seq"], n as u64);
}

#[test]
fn rollup_reports_a_torn_line_with_its_number() {
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    sb.ok(&["ccc", "turn", "--model", "m"]);
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(sb.data_dir().join("windows.jsonl"))
        .expect("open")
        .write_all(b"{\"type\":\"tu")
        .expect("tear");
    let r = sb.run(&["ccc", "rollup", "--strict"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("line 3") && r.stderr.contains("torn"),
        "{}",
        r.stderr
    );
    let t = sb.ok(&["ccc", "turn", "--model", "m", "--report-json"]);
    assert_eq!(t.json()["seq"], 3, "the torn line's seq is reused");
    let r = sb.ok(&["ccc", "rollup", "--json"]).json();
    assert_eq!(r["summary"]["turns"], 2);
    assert_eq!(r["skipped"][0]["code"], "invalid_line");
}

#[test]
fn the_seed_fixture_packs_with_fake_signatures_are_rejected() {
    let mut sb = Sandbox::new();
    let (_, public) = sb.keygen("test-key");
    let trust = format!("test-key={public}");
    for name in ["full_pack.json", "minimized_pack.json"] {
        let pack = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../agentos-core/tests/fixtures/"
        )
        .to_string()
            + name;
        let r = sb.run(&["license", "verify", &pack, "--pubkey", &trust, "--json"]);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert_eq!(r.json()["valid"], false);
        assert_eq!(r.json()["code"], "malformed_signature", "{name}");
    }
    // Configured as the license, it cannot unlock a tier: the session records locally.
    let pack = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../agentos-core/tests/fixtures/full_pack.json"
    );
    sb.set_env("AGENTOS_LICENSE_PACK", pack);
    sb.set_env("AGENTOS_LICENSE_PUBKEYS", &trust);
    let s = sb
        .run(&["ccc", "session", "start", "--tier", "full", "--json"])
        .json();
    assert_eq!(s["tier"], "local");
    assert_eq!(s["downgrade"]["code"], "malformed_signature");
}

/// A sandbox licensed for `feature` that delivers to `server` with a test key.
fn licensed_for(server: &agentos_test_support::http::RecordingServer, feature: &str) -> Sandbox {
    let mut sb = Sandbox::new();
    sb.license(feature);
    sb.set_env("AGENTOS_CCC_URL", &server.url());
    sb.set_env("AGENTOS_CCC_API_KEY", "test-key");
    sb
}

#[test]
fn closing_a_minimized_session_uploads_only_the_allowlisted_summary() {
    let server = agentos_test_support::http::RecordingServer::start().expect("loopback server");
    let sb = licensed_for(&server, "telemetry_minimized");
    let s = start(&sb, "minimized").json();
    assert_eq!(s["tier"], "minimized", "{s}");
    sb.ok(&strs(&seed_turn_args("glm-4.6")));
    let end = sb
        .ok(&[
            "ccc",
            "session",
            "end",
            "--notes",
            "secret notes",
            "--wait",
            "--json",
        ])
        .json();
    assert_eq!(end["summary_upload"], "sent", "{end}");
    assert!(
        server.requests_to("/v1/events").is_empty(),
        "no events under minimized"
    );
    let metrics = server.requests_to("/v1/metrics");
    assert_eq!(metrics.len(), 1);
    let body = metrics[0].json().expect("json body");
    let mut keys: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "avg_churn_score",
            "avg_cls",
            "avg_impf",
            "capacity_used",
            "features_per_capacity",
            "features_shipped",
            "generated_at"
        ]
    );
    assert_eq!(body["features_per_capacity"], json!(2.0));
    assert_eq!(metrics[0].authorization.as_deref(), Some("Bearer test-key"));
}

#[test]
fn closing_a_session_hands_the_upload_to_the_background() {
    let server = agentos_test_support::http::RecordingServer::start().expect("loopback server");
    let sb = licensed_for(&server, "telemetry_minimized");
    start(&sb, "minimized");
    sb.ok(&strs(&seed_turn_args("glm-4.6")));
    let end = sb.ok(&["ccc", "session", "end", "--json"]).json();
    assert_eq!(end["summary_upload"], "background", "{end}");
    // The detached uploader delivers it on its own (bounded wait; the test fails if it never does).
    let mut waited = 0;
    while server.requests_to("/v1/metrics").is_empty() && waited < 300 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    let metrics = server.requests_to("/v1/metrics");
    assert_eq!(metrics.len(), 1, "the background sync sent the summary");
    assert!(server.requests_to("/v1/events").is_empty());
}

#[test]
fn closing_a_local_session_makes_no_connection() {
    let server = agentos_test_support::http::RecordingServer::start().expect("loopback server");
    let mut sb = Sandbox::new();
    sb.set_env("AGENTOS_CCC_URL", &server.url());
    start(&sb, "local");
    sb.ok(&strs(&seed_turn_args("glm-4.6")));
    let end = sb.ok(&["ccc", "session", "end", "--json"]).json();
    assert_eq!(end["summary_upload"], "withheld");
    assert_eq!(server.connections(), 0);
}

#[test]
fn sync_watch_follows_the_log_and_exits_0_on_sigterm() {
    let server = agentos_test_support::http::RecordingServer::start().expect("loopback server");
    let sb = licensed_for(&server, "telemetry_full");
    assert_eq!(start(&sb, "full").json()["tier"], "full");
    sb.ok(&strs(&seed_turn_args("glm-4.6")));
    let child = sb
        .command(&["ccc", "sync", "--watch", "--interval", "100ms"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn watcher");
    let delivered = |server: &agentos_test_support::http::RecordingServer| -> Vec<u64> {
        let mut seqs: Vec<u64> = server
            .requests_to("/v1/events")
            .iter()
            .filter_map(|r| r.json().ok())
            .flat_map(|b| {
                b["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| e["seq"].as_u64())
            })
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs
    };
    // Bounded waits: the test fails if the watcher never delivers, whatever the machine's speed.
    let wait_for = |n: usize| {
        for _ in 0..300 {
            if delivered(&server).len() >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for(2);
    assert_eq!(delivered(&server), [1, 2], "session and first turn");
    // Appended while it watches: delivered without another command.
    sb.ok(&strs(&seed_turn_args("glm-4.6")));
    wait_for(3);
    assert_eq!(delivered(&server), [1, 2, 3]);
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pack_bound_to_this_machine_verifies_here_and_a_refresh_that_fails_falls_back_loudly() {
    let mut sb = Sandbox::new();
    let (key, public) = sb.keygen("k1");
    let trust = format!("k1={public}");
    let bound = sb.path().join("bound.json");
    let bound_s = bound.to_str().expect("utf8");
    let key_s = key.to_str().expect("utf8");
    let issue = |device: &str, out: &str| {
        sb.run(&[
            "license",
            "issue",
            "--key",
            key_s,
            "--features",
            "telemetry_full",
            "--device",
            device,
            "--out",
            out,
        ])
    };
    let r = issue("this", bound_s);
    if !std::path::Path::new("/etc/machine-id").exists()
        && !std::path::Path::new("/var/lib/dbus/machine-id").exists()
    {
        assert_eq!(r.code, 2, "no machine id: --device this must refuse");
        assert!(r.stderr.contains("machine id"), "{}", r.stderr);
        return;
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    let claims: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bound).expect("pack")).expect("json");
    let device = claims["license"]["device"]
        .as_str()
        .expect("device")
        .to_string();
    assert!(device.starts_with("fp-") && device.len() == 35, "{device}");
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    assert!(!machine_id.trim().is_empty() && !device.contains(machine_id.trim()));
    let v = sb.run(&["license", "verify", bound_s, "--pubkey", &trust, "--json"]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    // Bound to another machine: refused here.
    let elsewhere = sb.path().join("elsewhere.json");
    assert_eq!(
        issue("fp-not-this-machine", elsewhere.to_str().expect("utf8")).code,
        0
    );
    let v = sb.run(&[
        "license",
        "verify",
        elsewhere.to_str().expect("utf8"),
        "--pubkey",
        &trust,
        "--json",
    ]);
    assert_eq!(
        (v.code, v.json()["code"].as_str()),
        (1, Some("device_mismatch"))
    );

    // Last known good: the configured pack verifies once, then a refresh breaks it.
    sb.set_env("AGENTOS_LICENSE_PACK", bound_s);
    sb.set_env("AGENTOS_LICENSE_PUBKEYS", &trust);
    let st = sb.run(&["license", "status", "--json"]);
    assert_eq!(
        (st.code, st.json()["source"].as_str()),
        (0, Some("configured")),
        "{}",
        st.stderr
    );
    std::fs::write(&bound, "{\"license\":{},\"signature\":\"AAAA\"}").expect("break the pack");
    let st = sb.run(&["license", "status"]);
    assert_eq!(st.code, 1, "a fallback is a problem to fix");
    assert!(
        st.stderr.contains("THE CONFIGURED PACK DOES NOT VERIFY"),
        "{}",
        st.stderr
    );
    assert!(st.stdout.contains("telemetry_full"), "{}", st.stdout);
    // Sessions keep their tier on the last good pack.
    let s = sb.ok(&["ccc", "session", "start", "--tier", "full", "--json"]);
    assert_eq!(s.json()["tier"], "full", "{}", s.stderr);
}

#[test]
fn report_value_attributes_features_to_models_by_their_shares() {
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    sb.ok(&strs(&seed_turn_args("claude-sonnet-4.5")));
    let mut split = seed_turn_args("glm-4.6");
    let at = split
        .iter()
        .position(|a| a == "--attribution")
        .expect("flag");
    split[at + 1] = "glm-4.6=3".into();
    split.insert(at + 2, "--attribution".into());
    split.insert(at + 3, "claude-sonnet-4.5=1".into());
    sb.ok(&strs(&split));
    let v = sb.ok(&["report", "value", "--json"]).json();
    assert_eq!(v["features_total"], 2.0);
    // Recorded as `claude-sonnet-4.5`, reported under the model's one canonical id.
    assert_eq!(v["rows"]["claude-sonnet-4-5-20250929"]["features"], 1.25);
    assert!(v["rows"].get("claude-sonnet-4.5").is_none(), "{v}");
    assert_eq!(v["rows"]["glm-4.6"]["features"], 0.75);
    let by_feature = sb
        .ok(&["report", "value", "--by", "feature", "--json"])
        .json();
    assert_eq!(by_feature["rows"]["F-1"]["glm-4.6"], 0.75);
    let table = sb.ok(&["report", "value"]);
    assert!(
        table.stdout.contains("62.5%") && table.stdout.contains("Total"),
        "{}",
        table.stdout
    );
}

#[test]
fn turn_exits_0_once_the_event_is_recorded_even_if_the_summary_cannot_be_written() {
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    let summary = sb.data_dir().join("metrics_summary.json");
    std::fs::remove_file(&summary).expect("remove summary");
    std::fs::create_dir_all(summary.join("blocker")).expect("block the summary");
    let t = sb.run(&["ccc", "turn", "--model", "m", "--report-json"]);
    assert_eq!(t.code, 0, "recorded means exit 0: {}", t.stderr);
    assert!(
        t.stderr.contains("not refreshed") && t.stderr.contains("metrics_summary.json"),
        "{}",
        t.stderr
    );
    assert_eq!(t.json()["summary_refreshed"], false);
    assert_eq!(sb.log_lines().len(), 2, "exactly one turn line");
    std::fs::remove_dir_all(&summary).expect("unblock");
    let t = sb.ok(&["ccc", "turn", "--model", "m", "--report-json"]);
    assert_eq!(t.json()["summary_refreshed"], true);
    assert_eq!(sb.summary()["turns"], 2, "repaired by the next write");
}

#[test]
fn a_database_password_never_appears_in_an_error() {
    let sb = Sandbox::new();
    for url in [
        // Invalid on purpose (a bad sslmode), so the error comes at once without a server.
        "postgres://agent@127.0.0.1:1/db?password=hunter2&sslmode=bogus",
        "postgres://agent:hunter2@127.0.0.1:1/db?sslmode=bogus",
        "mysql://agent@127.0.0.1/db?sslpassword=hunter2",
    ] {
        let r = sb.run(&["ccc", "keys", "list", "--database", url]);
        assert_ne!(r.code, 0, "{url}");
        assert!(
            r.stderr.contains("***"),
            "the URL is shown redacted: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    sb.ok(&["ccc", "turn", "--model", "m"]);
    for args in [
        &["ccc", "outbox", "status"][..],
        &["ccc", "preview", "--tier", "full"][..],
    ] {
        // The read end is closed before the child starts: its first write gets EPIPE, every
        // time (what `agentos … | head` does once head has read enough).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = sb
            .command(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run agentos");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn a_turn_without_a_cost_gets_one_from_the_price_table_marked_as_estimated() {
    let sb = Sandbox::new();
    sb.ok(&["ccc", "session", "start"]);
    let r = sb.ok(&[
        "ccc",
        "turn",
        "--model",
        "claude-sonnet-4-5-20250929",
        "--tokens-in",
        "1000000",
        "--tokens-out",
        "100000",
    ]);
    assert!(
        r.stderr
            .contains("cost estimated from the price table (as of 2026-12-01)"),
        "{}",
        r.stderr
    );
    // Unpriced: recorded without a cost, said on stderr, never $0.
    let u = sb.ok(&[
        "ccc",
        "turn",
        "--model",
        "my-local-model",
        "--tokens-in",
        "5",
    ]);
    assert!(u.stderr.contains("no price for model"), "{}", u.stderr);
    // Given: kept as is.
    sb.ok(&[
        "ccc",
        "turn",
        "--model",
        "glm-4.6",
        "--cost-provider",
        "zai",
        "--estimated-usd",
        "0.5",
    ]);
    let turns: Vec<_> = sb
        .log_lines()
        .into_iter()
        .filter(|e| e["type"] == "turn")
        .collect();
    assert_eq!(turns.len(), 3);
    let c = &turns[0]["cost"];
    assert_eq!(c["provider"], "agentos-price-table");
    // 1M input at $3 + 100k output at $15.
    assert!(
        (c["estimated_usd"].as_f64().expect("usd") - 4.5).abs() < 1e-9,
        "{c}"
    );
    assert_eq!(c["unit_costs"]["input_usd_per_mtok"], 3.0);
    assert_eq!(c["unit_costs"]["as_of_yyyymmdd"], 20261201.0);
    assert!(
        turns[1].get("cost").is_none_or(serde_json::Value::is_null),
        "{}",
        turns[1]
    );
    assert_eq!(turns[2]["cost"]["provider"], "zai");
    assert_eq!(turns[2]["cost"]["estimated_usd"], 0.5);
}
