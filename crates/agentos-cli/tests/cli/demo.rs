//! `agentos demo`: the whole loop on embedded defaults. Its printed report is checked against
//! the ground truth of the history it generated, and its static overview page is opened in a
//! real headless Chromium.

use serde_json::Value;

use crate::common::Sandbox;

/// The token fields a report row and the truth share.
const FIELDS: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
];

#[test]
fn demo_runs_the_loop_and_the_team_report_is_the_generated_truth() {
    let sb = Sandbox::new();
    let keep = sb.path().join("demo");
    let r = sb
        .ok(&["demo", "--keep", keep.to_str().expect("utf8"), "--json"])
        .json();

    // The collector's daily report holds today's live session of the one `full` machine:
    // exactly the transcript's turns and tokens, nothing from bob (minimized) or carol (local).
    let rows = r["team_report"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let day = rows[0]["key"].as_str().expect("day");
    let truth = &r["truth"]["claude"]["alice"][day];
    assert!(truth.is_object(), "no truth for {day}: {}", r["truth"]);
    assert_eq!(rows[0]["turns"], truth["turns"]);
    for f in FIELDS {
        assert_eq!(rows[0][f], truth[f], "{f}");
        assert_eq!(r["team_report"]["totals"][f], truth[f], "total {f}");
    }

    let people = r["people"].as_array().expect("people");
    let by = |name: &str| -> &Value { people.iter().find(|p| p["name"] == name).expect("person") };
    let (alice, bob, carol) = (by("alice"), by("bob"), by("carol"));
    // Every event of the full machine left (session, turns, session end); none of the others'.
    assert_eq!(alice["delivery"]["sent"], alice["recorded"]["events"]);
    assert_eq!(
        alice["recorded"]["claude_code_turns"], truth["turns"],
        "one turn per request of the live transcript"
    );
    assert_eq!(bob["delivery"]["sent"], 0);
    assert_eq!(bob["delivery"]["summary"], "sent");
    assert_eq!(carol["delivery"]["sent"], 0);
    assert_eq!(carol["delivery"]["summary"], "withheld");

    // The local stores hold each person's whole history, the Codex session and the CCC root.
    for p in people {
        let name = p["name"].as_str().expect("name");
        let days = r["truth"]["claude"][name].as_object().expect("days");
        let turns: u64 = days.values().map(|d| d["turns"].as_u64().expect("n")).sum();
        assert_eq!(p["ingested"]["claude"]["turns"], turns, "{name}");
    }
    let codex = &r["truth"]["codex"];
    let got = &alice["ingested"]["codex"];
    assert_eq!(got["turns"], codex["turns"]);
    let (input, cached) = (
        codex["input_tokens"].as_u64().expect("n"),
        codex["cached_input_tokens"].as_u64().expect("n"),
    );
    assert_eq!(got["input_tokens"], input - cached, "uncached input");
    assert_eq!(got["cache_read_tokens"], cached);
    assert_eq!(got["output_tokens"], codex["output_tokens"]);
    assert_eq!(
        alice["ingested"]["ccc"]["turns"],
        r["truth"]["ccc"]["requests"]
    );
    assert_eq!(
        alice["ingested"]["ccc"]["input_tokens"],
        r["truth"]["ccc"]["input_tokens"]
    );

    // The collector is gone once the demo exits.
    let addr = r["collector"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .expect("collector url");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the collector still listens on {addr}"
    );

    // The snapshot renders in a real browser without console errors.
    let snapshot = std::path::PathBuf::from(r["dashboard"]["snapshot"].as_str().expect("path"));
    assert!(snapshot.starts_with(&keep));
    let html = std::fs::read_to_string(&snapshot).expect("snapshot");
    assert!(html.contains("<svg"), "charts are inline SVG");
    let Some(chromium) =
        agentos_test_support::browser::chromium_or_skip("demo snapshot").expect("chromium check")
    else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut b = agentos_test_support::browser::Browser::start(&chromium)
            .await
            .expect("chromium starts");
        b.goto(&format!("file://{}", snapshot.display()))
            .await
            .expect("the snapshot loads");
        let text = b.eval("document.body.innerText").await.expect("page text");
        let text = text.as_str().unwrap_or_default().to_string();
        let errors = b.take_console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
        assert!(text.contains("Overview"), "{text}");
        b.screenshot("demo-overview").await.expect("screenshot");
    });
}

#[test]
fn without_keep_the_demo_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let r = sb.ok(&["demo", "--json"]).json();
    let dir = std::path::PathBuf::from(r["dir"].as_str().expect("dir"));
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert_eq!(r["kept"], false);
    // Nothing was written to the (sandboxed) home either: no data dir, no config.
    let home: Vec<_> = std::fs::read_dir(sb.path())
        .expect("sandbox")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(
        home.iter().all(|n| n != ".local" && n != ".config"),
        "{home:?}"
    );
}

#[test]
fn real_reads_the_users_own_history_and_writes_nothing_there() {
    // A home made by the demo itself: alice's transcripts and Codex sessions.
    let sb = Sandbox::new();
    let keep = sb.path().join("made");
    let made = sb
        .ok(&["demo", "--keep", keep.to_str().expect("utf8"), "--json"])
        .json();
    let home = keep.join("history/alice");
    let before = tree(&home);
    let out = sb
        .command(&["demo", "--real", "--json"])
        .env("HOME", &home)
        .env_remove("CODEX_HOME")
        .output()
        .expect("run demo --real");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    // The newest transcript (today's) went through the hook and reached the collector.
    let day = r["team_report"]["rows"][0]["key"].as_str().expect("day");
    let truth = &made["truth"]["claude"]["alice"][day];
    assert_eq!(r["team_report"]["totals"]["turns"], truth["turns"]);
    assert_eq!(r["people"][0]["name"], "you");
    assert_eq!(
        r["people"][0]["ingested"]["codex"]["turns"],
        made["truth"]["codex"]["turns"]
    );
    assert_eq!(tree(&home), before, "--real only reads the home");
}

/// Every file under `dir` with its size and modification time.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let m = e.metadata().expect("meta");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}
