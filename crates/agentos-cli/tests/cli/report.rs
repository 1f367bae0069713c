//! End-to-end tests of `agentos ccc report` over small hand-written Claude Code transcripts,
//! whose every turn is known, so each figure the tests check is known too.

use std::path::PathBuf;

use crate::common::Sandbox;

/// One assistant turn: (session, timestamp, model, input tokens).
type Turn<'a> = (&'a str, &'a str, &'a str, u64);

/// Writes `turns` as transcripts under `<sandbox>/claude/projects/<project>/<session>.jsonl`
/// and returns the config dir to pass as `--path`.
fn transcripts(sb: &Sandbox, project: &str, turns: &[Turn<'_>]) -> PathBuf {
    let root = sb.path().join("claude");
    let dir = root.join("projects").join(project);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (i, (session, ts, model, input)) in turns.iter().enumerate() {
        let line = serde_json::json!({
            "type": "assistant",
            "sessionId": session,
            "cwd": format!("/home/dev/{project}"),
            "timestamp": ts,
            "uuid": format!("u-{project}-{i}"),
            "requestId": format!("req-{project}-{i}"),
            "message": {
                "id": format!("msg-{project}-{i}"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "usage": {
                    "input_tokens": input,
                    "output_tokens": 10,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0
                }
            }
        });
        let path = dir.join(format!("{session}.jsonl"));
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&line.to_string());
        text.push('\n');
        std::fs::write(&path, text).expect("write transcript");
    }
    root
}

/// `agentos report <args[0]> --source claude --path <root> <args[1..]>`.
fn report(sb: &Sandbox, root: &std::path::Path, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["report", args[0], "--source", "claude", "--path"];
    all.push(root.to_str().expect("utf-8"));
    all.extend_from_slice(&args[1..]);
    sb.ok(&all)
}

const SONNET: &str = "claude-sonnet-4-5-20250929";

/// One session of one-token Sonnet turns at these times.
fn one_session(sb: &Sandbox, times: &[&str]) -> PathBuf {
    let turns: Vec<Turn<'_>> = times.iter().map(|t| ("s1", *t, SONNET, 1)).collect();
    transcripts(sb, "p", &turns)
}

/// The `key` of every row of a JSON report.
fn keys(v: &serde_json::Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["key"].as_str().expect("key").to_string())
        .collect()
}

#[test]
fn reports_default_to_the_local_zone_and_print_its_iana_name() {
    let mut sb = Sandbox::new();
    sb.set_env("TZ", "Europe/Berlin");
    // 23:30 UTC is already the next day in Berlin.
    let root = transcripts(&sb, "p", &[("s1", "2026-09-01T23:30:00Z", SONNET, 100)]);
    for extra in [&[][..], &["--timezone", "local"][..]] {
        let mut args = vec!["daily"];
        args.extend_from_slice(extra);
        let r = report(&sb, &root, &args);
        assert!(
            r.stdout.contains("Time zone: Europe/Berlin"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("2026-09-02"), "{}", r.stdout);
        args.push("--json");
        let v = report(&sb, &root, &args).json();
        assert_eq!(v["timezone"], "Europe/Berlin");
        assert_eq!(v["rows"][0]["key"], "2026-09-02");
    }
    let v = report(&sb, &root, &["daily", "--timezone", "UTC", "--json"]).json();
    assert_eq!(v["timezone"], "UTC");
    assert_eq!(v["rows"][0]["key"], "2026-09-01");
}

#[test]
fn weekly_follows_start_of_week_from_the_flag_or_the_config() {
    let sb = Sandbox::new();
    // A Sunday and a Monday.
    let root = one_session(&sb, &["2026-09-06T10:00:00Z", "2026-09-07T10:00:00Z"]);
    let tz = ["--timezone", "UTC", "--json"];
    let v = report(&sb, &root, &[&["weekly"][..], &tz].concat()).json();
    assert_eq!(keys(&v), ["2026-08-31", "2026-09-07"]);
    let v = report(
        &sb,
        &root,
        &[&["weekly", "--start-of-week", "sunday"][..], &tz].concat(),
    )
    .json();
    assert_eq!(keys(&v), ["2026-09-06"]);
    assert_eq!(v["week_start"], "sunday");
    std::fs::create_dir_all(sb.data_dir()).expect("mkdir");
    std::fs::write(
        sb.data_dir().join("agentos.toml"),
        "[ingest]\nstart_of_week = \"sun\"\n",
    )
    .expect("config");
    let r = report(&sb, &root, &["weekly", "--timezone", "UTC"]);
    assert!(r.stdout.contains("Week (Sun)"), "{}", r.stdout);
    let bad = sb.run(&["report", "weekly", "--start-of-week", "someday"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("someday"), "{}", bad.stderr);
}

#[test]
fn blocks_keep_their_boundaries_under_since_and_until() {
    let sb = Sandbox::new();
    // Activity from 18:20 to 00:30 without a 5-hour gap: blocks at 18:00 and 23:00 UTC.
    let root = one_session(
        &sb,
        &[
            "2026-10-13T18:20:00Z",
            "2026-10-13T22:00:00Z",
            "2026-10-13T23:10:00Z",
            "2026-10-14T00:30:00Z",
        ],
    );
    let starts = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["blocks", "--timezone", "UTC", "--json"];
        all.extend_from_slice(args);
        keys(&report(&sb, &root, &all).json())
    };
    // Cold (nothing ingested yet): the ranged run still sees the history before --since.
    assert_eq!(
        starts(&["--since", "2026-10-14"]),
        ["2026-10-13T23:00:00.000Z"]
    );
    assert_eq!(
        starts(&[]),
        ["2026-10-13T18:00:00.000Z", "2026-10-13T23:00:00.000Z"]
    );
    assert_eq!(
        starts(&["--until", "2026-10-13T23:00:00Z"]),
        ["2026-10-13T18:00:00.000Z"]
    );
    let bad = sb.run(&["report", "blocks", "--token-limit", "lots"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("lots"), "{}", bad.stderr);
}

#[test]
fn a_named_path_that_does_not_exist_is_an_error_naming_it() {
    let sb = Sandbox::new();
    let missing = sb.path().join("no-such-dir");
    let m = missing.to_str().expect("utf-8");
    for args in [
        &["report", "daily", "--source", "claude", "--path", m][..],
        &["report", "daily", "--source", "ccc", "--ccp-root", m][..],
        &["ingest", "claude", "--path", m][..],
        &["ccc", "ingest", "claude", "--path", m][..],
    ] {
        let r = sb.run(args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("no-such-dir"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[test]
fn no_data_says_where_it_looked_and_what_to_run() {
    let sb = Sandbox::new();
    let r = sb.ok(&["report", "daily"]);
    assert!(r.stdout.contains("No usage data found."), "{}", r.stdout);
    assert!(
        !r.stdout.contains("Total"),
        "no table of zeros: {}",
        r.stdout
    );
    let store = sb.data_dir().join("ingest");
    assert!(
        r.stderr.contains(&store.display().to_string()),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("agentos ingest claude"), "{}", r.stderr);
    // An empty Claude dir: names the projects dir it searched.
    let empty = sb.path().join("claude");
    std::fs::create_dir_all(empty.join("projects")).expect("mkdir");
    let r = report(&sb, &empty, &["daily"]);
    assert!(r.stdout.contains("No usage data found."), "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&empty.join("projects").display().to_string()),
        "{}",
        r.stderr
    );
    // JSON stays JSON (an empty report) for scripts.
    let v = report(&sb, &empty, &["daily", "--json"]).json();
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(0));
}

#[test]
fn an_empty_range_or_no_active_block_is_said_plainly() {
    let sb = Sandbox::new();
    let root = one_session(&sb, &["2026-09-01T10:00:00Z"]);
    let r = report(&sb, &root, &["daily", "--since", "2026-10-01"]);
    assert!(
        r.stdout.contains("No usage in the requested range."),
        "{}",
        r.stdout
    );
    let r = report(&sb, &root, &["blocks", "--active"]);
    assert_eq!(r.stdout.trim(), "No active block.");
}

#[test]
fn strict_answers_the_same_cold_and_warm_and_the_account_needs_verbose() {
    let sb = Sandbox::new();
    let root = one_session(&sb, &["2026-09-01T10:00:00Z"]);
    let file = root.join("projects/p/s1.jsonl");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("{\"type\": \"assistant\", torn\n");
    std::fs::write(&file, text).expect("write");
    let args = [
        "report",
        "daily",
        "--source",
        "claude",
        "--path",
        root.to_str().expect("utf-8"),
        "--strict",
    ];
    let cold = sb.run(&args);
    let warm = sb.run(&args);
    assert_eq!(cold.code, 1, "{}", cold.stderr);
    assert_eq!(
        warm.code, 1,
        "warm run forgot the skipped line: {}",
        warm.stderr
    );
    assert!(warm.stderr.contains("1 line(s) skipped"), "{}", warm.stderr);
    assert!(!cold.stderr.contains("files read"), "{}", cold.stderr);
    let verbose = sb.run(&[&args[..], &["--verbose"]].concat());
    assert!(
        verbose
            .stderr
            .contains("agentos: report: 0 files read (1 unchanged)"),
        "{}",
        verbose.stderr
    );
    assert!(!verbose.stderr.contains("not opened"), "{}", verbose.stderr);
    assert!(verbose.stderr.contains(" B, "), "{}", verbose.stderr);
}

#[test]
fn report_and_ingest_are_top_level_and_ccc_report_stays_an_alias() {
    let sb = Sandbox::new();
    let root = one_session(&sb, &["2026-09-01T10:00:00Z"]);
    let path = root.to_str().expect("utf-8");
    let i = sb.ok(&["ingest", "claude", "--path", path, "--json"]);
    assert_eq!(i.json()["added"], 1);
    let top = sb.ok(&["report", "daily", "--timezone", "UTC", "--json"]);
    let alias = sb.ok(&["ccc", "report", "daily", "--timezone", "UTC", "--json"]);
    assert_eq!(top.json(), alias.json());
    assert_eq!(top.json()["totals"]["turns"], 1);
}

#[test]
fn each_report_help_lists_its_own_flags_before_the_global_ones() {
    let sb = Sandbox::new();
    for (kind, own) in [
        ("blocks", "--token-limit"),
        ("weekly", "--start-of-week"),
        ("daily", "--since"),
    ] {
        let h = sb.ok(&["report", kind, "--help"]).stdout;
        let own_at = h
            .find(own)
            .unwrap_or_else(|| panic!("{kind}: no {own}\n{h}"));
        let global_at = h
            .find("Global options:")
            .unwrap_or_else(|| panic!("{kind}: no global heading\n{h}"));
        assert!(own_at < global_at, "{kind}\n{h}");
        assert!(h[global_at..].contains("--data-dir"), "{kind}\n{h}");
        assert!(!h[..global_at].contains("--data-dir"), "{kind}\n{h}");
    }
    let daily = sb.ok(&["report", "daily", "--help"]).stdout;
    assert!(!daily.contains("--token-limit"), "{daily}");
}

#[test]
fn filters_and_order_reach_the_table_and_the_json() {
    let sb = Sandbox::new();
    transcripts(
        &sb,
        "-home-dev-agentos",
        &[
            ("aaaa-1", "2026-09-01T10:00:00Z", SONNET, 1),
            ("aaaa-1", "2026-09-02T10:00:00Z", SONNET, 1),
        ],
    );
    let root = transcripts(
        &sb,
        "-home-dev-other",
        &[("bbbb-2", "2026-09-03T10:00:00Z", SONNET, 1)],
    );
    let utc = ["--timezone", "UTC", "--json"];
    let run = |args: &[&str]| report(&sb, &root, &[args, &utc].concat()).json();
    assert_eq!(
        keys(&run(&["daily", "--order", "desc"])),
        ["2026-09-03", "2026-09-02", "2026-09-01"]
    );
    let v = run(&["daily", "--last", "1"]);
    assert_eq!(keys(&v), ["2026-09-03"]);
    assert_eq!(v["totals"]["turns"], 1);
    let v = run(&["daily", "--project", "agentos"]);
    assert_eq!(keys(&v), ["2026-09-01", "2026-09-02"]);
    let v = run(&["monthly", "--instances"]);
    assert_eq!(v["rows"][0]["project"], "-home-dev-agentos");
    assert_eq!(v["rows"][1]["project"], "-home-dev-other");
    let v = run(&["session", "--id", "bbbb"]);
    assert_eq!(keys(&v), ["bbbb-2"]);
    let table = report(&sb, &root, &["monthly", "--instances", "--timezone", "UTC"]).stdout;
    assert!(table.contains("2026-09 (-home-dev-other)"), "{table}");
}

/// Asserts `ours` has ccusage's shape and values: the same keys, nesting, array lengths and
/// order, strings and integers equal, integers written as integers, and costs equal up to
/// float summation order (agentos prices summed tokens, ccusage sums per-entry costs).
fn assert_same_json(ours: &serde_json::Value, want: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (ours, want) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            assert_eq!(ka, kb, "keys at {at}");
            for (k, v) in b {
                assert_same_json(&a[k], v, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "length at {at}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same_json(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.is_f64(), b.is_f64(), "number format at {at}: {a} vs {b}");
            let (x, y) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                "value at {at}: {a} vs {b}"
            );
        }
        _ => assert_eq!(ours, want, "at {at}"),
    }
}

#[test]
fn json_format_ccusage_matches_ccusage_20_goldens() {
    // Made by bench/ccusage_goldens.sh (ccusage 20.0.24 on the committed corpus).
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ccusage");
    let sb = Sandbox::new();
    for kind in ["daily", "weekly", "monthly", "session", "blocks"] {
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(golden.join(format!("{kind}.json"))).expect("golden"),
        )
        .expect("golden is json");
        let args = [kind, "--timezone", "UTC", "--json-format", "ccusage"];
        let ours = report(&sb, &golden.join("claude"), &args).json();
        assert_same_json(&ours, &want, kind);
    }
}

/// `agentos ui`: the dashboard pages over this machine's ingested usage, without sign-in, on
/// loopback only; its figures are `agentos report`'s.
/// The text of the page's figure `key` (`<span … data-figure="key">text</span>`).
fn figure(html: &str, key: &str) -> String {
    let at = html
        .find(&format!("data-figure=\"{key}\">"))
        .unwrap_or_else(|| panic!("figure {key} in {html}"));
    let rest = &html[at..];
    rest[rest.find('>').expect(">") + 1..rest.find("</span>").expect("span")].to_string()
}

#[test]
fn ui_serves_the_local_reports_figures_on_loopback_only() {
    use std::io::BufRead as _;
    let sb = Sandbox::new();
    let root = transcripts(
        &sb,
        "-home-dev-agentos",
        &[
            ("s1", "2026-09-01T10:00:00Z", SONNET, 1000),
            ("s1", "2026-09-01T10:05:00Z", SONNET, 2000),
            (
                "s2",
                "2026-09-03T08:00:00Z",
                "claude-opus-4-1-20250805",
                500,
            ),
        ],
    );
    sb.ok(&["ingest", "claude", "--path", root.to_str().expect("utf-8")]);
    // Codex sessions (September 2026 too): the hook-free path into the pages.
    let codex = codex_home(&sb);
    let codex = codex.to_str().expect("utf-8");
    sb.ok(&["ingest", "codex", "--path", codex]);
    // A recorded session with one hand-recorded turn (recorder log), today.
    let started = crate::start(&sb, "local");
    assert_eq!(started.code, 0, "{}", started.stderr);
    sb.ok(&crate::common::strs(&crate::common::seed_turn_args(
        "glm-4.6",
    )));
    let refused = sb.run(&["ui", "--listen", "0.0.0.0:0"]);
    assert_ne!(refused.code, 0, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("loopback only"),
        "{}",
        refused.stderr
    );

    let mut child = sb
        .command(&["ui", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start agentos ui");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the address line");
    let base = line
        .trim()
        .strip_prefix("agentos ui on ")
        .expect("address line")
        .trim_end_matches('/')
        .to_string();
    let get = |path: &str| {
        reqwest::blocking::get(format!("{base}{path}"))
            .and_then(|r| Ok((r.status().as_u16(), r.text()?)))
    };
    let page = get("/?since=2026-09-01&until=2026-09-30&tz=UTC");
    let by_source = ["claude", "codex"].map(|src| {
        get(&format!(
            "/?since=2026-09-01&until=2026-09-30&tz=UTC&source={src}"
        ))
    });
    let sessions = get("/sessions?since=2026-09-01&until=2026-09-30&tz=UTC");
    let recorded = get("/sessions");
    let _ = child.kill();
    let _ = child.wait();
    let (status, html) = page.expect("overview");
    assert_eq!(status, 200, "no sign-in in local mode: {html}");
    let local = sb
        .ok(&[
            "report",
            "monthly",
            "--json",
            "--timezone",
            "UTC",
            "--since",
            "2026-09-01",
            "--until",
            "2026-09-30",
        ])
        .json();
    assert_eq!(figure(&html, "turns"), local["totals"]["turns"].to_string());
    let cost = local["totals"]["cost_usd"].as_f64().expect("cost");
    assert_eq!(figure(&html, "cost"), format!("${cost:.2}"));
    assert!(!html.contains("Sign out"), "nothing to sign out of");
    // Per source, the pages agree with the local report of that source alone.
    let root_str = root.to_str().expect("utf-8");
    for ((src, path), page) in [("claude", root_str), ("codex", codex)]
        .into_iter()
        .zip(by_source)
    {
        let (status, html) = page.expect("overview per source");
        assert_eq!(status, 200, "{html}");
        let want = sb
            .ok(&[
                "report",
                "monthly",
                "--json",
                "--timezone",
                "UTC",
                "--since",
                "2026-09-01",
                "--until",
                "2026-09-30",
                "--source",
                src,
                "--path",
                path,
            ])
            .json();
        assert_eq!(
            figure(&html, "turns"),
            want["totals"]["turns"].to_string(),
            "{src}"
        );
        assert!(want["totals"]["turns"].as_u64() > Some(0), "{src}: {want}");
    }
    let (status, html) = sessions.expect("sessions");
    assert_eq!(status, 200);
    assert!(
        html.contains("/sessions/s1") && html.contains("-home-dev-agentos"),
        "{html}"
    );
    // The recorder log's session (last 30 days by default): its repository and its turn's cost.
    let (status, html) = recorded.expect("recorded sessions");
    assert_eq!(status, 200);
    assert!(html.contains("repo-1") && html.contains("$0.02"), "{html}");
    assert!(
        !html.contains("secret"),
        "free text never reaches the pages: {html}"
    );
}

/// A Codex rollout with a model switch, a repeated event and one session without a model.
fn codex_home(sb: &Sandbox) -> PathBuf {
    let home = sb.path().join("codex");
    let day = home.join("sessions/2026/09/01");
    std::fs::create_dir_all(&day).expect("mkdir");
    let tc = |ts: &str, i: u64, c: u64, o: u64| {
        format!(
            r#"{{"timestamp":"{ts}","type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{i},"cached_input_tokens":{c},"output_tokens":{o},"reasoning_output_tokens":1,"total_tokens":{}}}}}}}}}"#,
            i + o
        )
    };
    let a = [
        r#"{"timestamp":"2026-09-01T10:00:00Z","type":"session_meta","payload":{"id":"sess-a","cwd":"/home/dev/alpha"}}"#.to_string(),
        r#"{"timestamp":"2026-09-01T10:00:01Z","type":"turn_context","payload":{"model":"gpt-5-codex"}}"#.to_string(),
        tc("2026-09-01T10:00:02Z", 1_000_000, 0, 100_000),
        tc("2026-09-01T10:00:03Z", 1_000_000, 0, 100_000),
        r#"{"timestamp":"2026-09-01T10:01:00Z","type":"turn_context","payload":{"model":"openai/gpt-5-2025-08-07"}}"#.to_string(),
        tc("2026-09-01T10:01:02Z", 3_000_000, 1_000_000, 300_000),
    ];
    let b = [
        r#"{"timestamp":"2026-09-01T11:00:00Z","type":"session_meta","payload":{"id":"sess-b","cwd":"/home/dev/beta"}}"#.to_string(),
        tc("2026-09-01T11:00:02Z", 500, 0, 50),
    ];
    std::fs::write(
        day.join("rollout-2026-09-01T10-00-00-sess-a.jsonl"),
        a.join("\n") + "\n",
    )
    .expect("write");
    std::fs::write(
        day.join("rollout-2026-09-01T11-00-00-sess-b.jsonl"),
        b.join("\n") + "\n",
    )
    .expect("write");
    home
}

#[test]
fn source_codex_reports_turns_canonical_models_and_unpriced_usage() {
    let sb = Sandbox::new();
    let home = codex_home(&sb);
    let home = home.to_str().expect("utf-8");
    let r = sb.ok(&[
        "report",
        "daily",
        "--source",
        "codex",
        "--path",
        home,
        "--timezone",
        "UTC",
        "--json",
    ]);
    let v = r.json();
    let t = &v["totals"];
    assert_eq!(t["turns"], 3, "the repeated event is no turn: {v}");
    // Input excludes the cached part; cached is a cache read.
    assert_eq!(t["input_tokens"], 1_000_000 + 1_000_000 + 500);
    assert_eq!(t["cache_read_tokens"], 1_000_000);
    assert_eq!(t["output_tokens"], 300_050);
    let models: Vec<&str> = t["breakdown"]
        .as_array()
        .expect("breakdown")
        .iter()
        .filter_map(|b| b["model"].as_str())
        .collect();
    // `openai/gpt-5-2025-08-07` is gpt-5; a session without turn_context is `unknown`.
    assert_eq!(models, ["gpt-5", "gpt-5-codex", "unknown"]);
    assert_eq!(t["unpriced_models"], serde_json::json!(["unknown"]));
    // gpt-5-codex: 1M in at $1.25 + 100k out at $10; gpt-5: 1M in, 1M cached at $0.125, 200k out.
    let want = 1.25 + 1.0 + 1.25 + 0.125 + 2.0;
    assert!(
        (t["cost_usd"].as_f64().expect("cost") - want).abs() < 1e-9,
        "{t}"
    );
    assert_eq!(
        r.stderr.matches("no price for model(s) unknown").count(),
        1,
        "{}",
        r.stderr
    );
    let table = sb.ok(&[
        "report",
        "session",
        "--source",
        "codex",
        "--path",
        home,
        "--timezone",
        "UTC",
    ]);
    assert!(table.stdout.contains("n/a*"), "{}", table.stdout);
    assert!(
        table.stdout.contains("* No price for unknown"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("sess-b (/home/dev/beta)"),
        "{}",
        table.stdout
    );
    // Through the store: `ingest codex`, then a plain report grouped by source.
    sb.ok(&["ingest", "codex", "--path", home]);
    let by = sb
        .ok(&[
            "report",
            "monthly",
            "--by-source",
            "--timezone",
            "UTC",
            "--json",
        ])
        .json();
    assert_eq!(by["rows"][0]["source"], "codex", "{by}");
    assert_eq!(by["rows"][0]["turns"], 3);
}

#[test]
fn prices_print_the_table_with_its_date() {
    let sb = Sandbox::new();
    let v = sb.ok(&["prices", "--json"]).json();
    assert_eq!(v["as_of"], "2026-12-01");
    for m in ["glm-4-5", "glm-4-6", "gpt-5-codex", "claude-sonnet-4-5"] {
        assert!(v["models"][m]["input"].as_f64().is_some(), "{m} in {v}");
    }
    let file = sb.path().join("prices.json");
    std::fs::write(
        &file,
        r#"{"as_of":"2027-01-01","models":{"my-model":{"input":1,"output":2}}}"#,
    )
    .expect("write");
    let over = sb
        .ok(&[
            "prices",
            "--json",
            "--prices",
            file.to_str().expect("utf-8"),
        ])
        .json();
    assert_eq!(over["as_of"], "2027-01-01");
    assert_eq!(over["models"]["my-model"]["output"], 2.0);
    assert_eq!(
        over["models"]["glm-4-6"]["output"], 2.2,
        "the embedded entries stay"
    );
    let text = sb.ok(&["prices"]).stdout;
    assert!(text.contains("As of 2026-12-01"), "{text}");
}

#[test]
fn source_recorder_reports_recorded_turns_and_otlp_points_to_the_collector() {
    let sb = Sandbox::new();
    sb.ok(&[
        "ccc",
        "session",
        "start",
        "--repo-id",
        "github.com/acme/api",
        "--tier",
        "local",
    ]);
    for model in ["claude-sonnet-4.5", "claude-sonnet-4-5-20250929"] {
        let args = crate::common::seed_turn_args(model);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sb.ok(&args);
    }
    let rep = sb
        .ok(&[
            "report",
            "monthly",
            "--source",
            "recorder",
            "--timezone",
            "UTC",
            "--json",
        ])
        .json();
    let t = &rep["totals"];
    assert_eq!(t["turns"], 2, "{rep}");
    assert_eq!(t["input_tokens"], 2400, "{rep}");
    assert_eq!(t["output_tokens"], 600, "{rep}");
    // Two spellings, one model.
    assert_eq!(
        rep["rows"][0]["models"],
        serde_json::json!(["claude-sonnet-4-5-20250929"]),
        "{rep}"
    );
    let r = sb.run(&["report", "daily", "--source", "otlp"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--remote"), "{}", r.stderr);
}

#[test]
fn codex_turns_recorded_from_ingest_reach_the_collector_once() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_full");
    let trust = sb
        .env
        .iter()
        .find(|(k, _)| k == "AGENTOS_LICENSE_PUBKEYS")
        .map(|(_, v)| v.clone())
        .expect("the sandbox's trusted key");
    let collector = crate::common::collector::Collector::start(sb.path(), &trust);
    sb.set_env("AGENTOS_CCC_URL", &collector.url);
    sb.set_env("AGENTOS_CCC_API_KEY", &collector.api_key);
    sb.set_env("AGENTOS_TIER", "full");
    let home = codex_home(&sb);
    let home = home.to_str().expect("utf-8");
    let local = sb
        .ok(&[
            "report",
            "monthly",
            "--source",
            "codex",
            "--path",
            home,
            "--timezone",
            "UTC",
            "--json",
        ])
        .json();
    let turns = local["totals"]["turns"].as_u64().expect("turns");
    assert_eq!(turns, 3, "{local}");

    let first = sb
        .ok(&["ingest", "codex", "--path", home, "--record", "--json"])
        .json();
    assert_eq!(first["recorded"]["turns"], turns, "{first}");
    assert_eq!(first["recorded"]["sessions"], 2, "{first}");
    let logged: Vec<serde_json::Value> = sb
        .log_lines()
        .into_iter()
        .filter(|e| e["type"] == "turn" && e["turn"]["source"] == "codex")
        .collect();
    assert_eq!(logged.len() as u64, turns);
    assert!(
        logged.iter().all(|e| e["recorded_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2026-09-01T"))),
        "each turn at the time Codex made the request: {logged:?}"
    );
    // Nothing new: nothing recorded. A lost state file: the log says what is there already.
    let again = sb
        .ok(&["ingest", "codex", "--path", home, "--record", "--json"])
        .json();
    assert_eq!(again["recorded"]["turns"], 0, "{again}");
    let store = std::path::PathBuf::from(first["store"].as_str().expect("store dir"));
    std::fs::remove_file(store.join("forwarded.json")).expect("remove state");
    let lost = sb
        .ok(&["ingest", "codex", "--path", home, "--record", "--json"])
        .json();
    assert_eq!(lost["recorded"]["turns"], 0, "{lost}");
    assert_eq!(lost["recorded"]["already_in_log"], turns, "{lost}");
    let sessions = sb
        .log_lines()
        .iter()
        .filter(|e| e["type"] == "session")
        .count();
    assert_eq!(sessions, 2, "one recorder session per Codex session");

    sb.ok(&["ccc", "sync"]);
    let remote = sb
        .ok(&[
            "ccc",
            "report",
            "monthly",
            "--remote",
            "--source",
            "codex",
            "--timezone",
            "UTC",
            "--json",
        ])
        .json();
    for k in [
        "turns",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
    ] {
        assert_eq!(remote["totals"][k], local["totals"][k], "{k}: {remote}");
    }
    let models = |v: &serde_json::Value| v["rows"][0]["models"].clone();
    assert_eq!(models(&remote), models(&local));
    let by = sb
        .ok(&[
            "ccc",
            "report",
            "monthly",
            "--remote",
            "--by-source",
            "--timezone",
            "UTC",
            "--json",
        ])
        .json();
    assert_eq!(by["rows"][0]["source"], "codex", "{by}");
    assert_eq!(by["totals"]["turns"], turns, "{by}");
}
