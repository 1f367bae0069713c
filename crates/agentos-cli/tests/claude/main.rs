//! `agentos claude …` through the real binary, invoked the way Claude Code invokes it: hook JSON
//! on stdin (fixtures with the documented field names), the session's working directory, a
//! scrubbed environment.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::Sandbox;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude");

/// A hook payload fixture with its placeholders filled in.
fn payload(event: &str, session: &str, transcript: &Path, cwd: &Path) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{event}.json")).expect("fixture");
    let esc = |p: &Path| {
        let s = serde_json::to_string(&p.display().to_string()).expect("json string");
        s[1..s.len() - 1].to_string()
    };
    let filled = text
        .replace("{{SESSION_ID}}", session)
        .replace("{{TRANSCRIPT}}", &esc(transcript))
        .replace("{{CWD}}", &esc(cwd));
    let v: Value = serde_json::from_str(&filled).expect("fixture is JSON");
    assert_eq!(v["session_id"], session);
    filled
}

/// Runs `agentos claude hook` with `stdin` from `cwd`; asserts the contract with Claude Code:
/// exit 0 and nothing on stdout.
fn hook(sb: &Sandbox, cwd: &Path, stdin: &str) -> common::Run {
    let mut c = sb.command(&["claude", "hook"]);
    c.current_dir(cwd);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let run = common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(run.code, 0, "a hook always exits 0: {}", run.stderr);
    assert_eq!(
        run.stdout, "",
        "a hook prints nothing Claude Code would act on"
    );
    run
}

/// Runs the hook again, as Claude Code's next event would, until one run handles everything it
/// found: on a loaded machine a run may stop at its time bound and leave the rest for the next
/// hook (by design), which a test asserting totals must not mistake for a loss.
fn hook_until_done(sb: &Sandbox, cwd: &Path, stdin: &str) {
    for _ in 0..200 {
        hook(sb, cwd, stdin);
        if status(sb)["last_hook"]["outcome"] == "ok" {
            return;
        }
    }
    panic!("the hook never finished: {}", status(sb));
}

/// Waits (bounded) until session `id` is over and every hook process is done with it: the log
/// holds its `session_end`, and no detached continuation is still running. A SessionEnd cut off
/// by its time bound hands the rest to a continuation, which writes `session_end` and then its
/// own status, and removes its copy of the payload last.
fn wait_for_session_end(sb: &Sandbox, id: &str) {
    let end_payload = agentos_claude::cursor::paths(&sb.data_dir(), id).end_payload;
    for _ in 0..600 {
        let ended = sb
            .log_lines_so_far()
            .iter()
            .any(|e| e["type"] == "session_end");
        if ended && !end_payload.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no session_end after 60 s: {}", status(sb));
}

/// The runs `claude/hook.log` holds: one line per hook run that did not end ok or partial.
fn failed_hook_runs(sb: &Sandbox) -> Vec<Value> {
    let log = agentos_config::DataDir::new(sb.data_dir()).claude_hook_log();
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("hook.log line parses"))
        .collect()
}

fn status(sb: &Sandbox) -> Value {
    sb.ok(&["claude", "status", "--json"]).json()
}

/// Lines of a generator-made transcript (`gen_claude_logs.py`), and its truth.
fn generated(dir: &Path, turns: u32, seed: u32) -> (Vec<String>, Value, String) {
    generated_padded(dir, turns, seed, 200)
}

/// As [`generated`], with `pad` mean bytes of text per entry.
fn generated_padded(dir: &Path, turns: u32, seed: u32, pad: u32) -> (Vec<String>, Value, String) {
    let script = std::env::var("AGENTOS_GEN_CLAUDE_LOGS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/tools/gen_claude_logs.py"
        )
        .into()
    });
    assert!(
        Path::new(&script).is_file(),
        "{script} not found: set AGENTOS_GEN_CLAUDE_LOGS to gen_claude_logs.py"
    );
    let out = dir.join("gen");
    let st = std::process::Command::new("python3")
        .arg(&script)
        .arg(&out)
        .args(["--sessions", "1", "--turns", &turns.to_string()])
        .args(["--seed", &seed.to_string(), "--pad", &pad.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("run the generator");
    assert!(st.success());
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("TRUTH.json")).expect("truth"))
            .expect("truth json");
    let file = walk(&out.join("projects"))
        .into_iter()
        .next()
        .expect("one transcript");
    let session = file
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned();
    let lines = std::fs::read_to_string(&file)
        .expect("transcript")
        .lines()
        .map(str::to_string)
        .collect();
    (lines, truth, session)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn turns(sb: &Sandbox) -> Vec<Value> {
    sb.log_lines()
        .into_iter()
        .filter(|e| e["type"] == "turn")
        .map(|e| e["turn"].clone())
        .collect()
}

/// Token totals of the log's turns: (count, input, output, cache creation, cache read).
fn totals(turns: &[Value]) -> [u64; 5] {
    let sum = |k: &str| {
        turns
            .iter()
            .map(|t| t[k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    [
        turns.len() as u64,
        sum("tokens_in"),
        sum("tokens_out"),
        sum("cache_creation_tokens"),
        sum("cache_read_tokens"),
    ]
}

fn truth_totals(t: &Value) -> [u64; 5] {
    let g = |k: &str| t[k].as_u64().expect("truth field");
    [
        g("assistant_unique"),
        g("input"),
        g("output"),
        g("cache_create"),
        g("cache_read"),
    ]
}

struct Session {
    cwd: PathBuf,
    transcript: PathBuf,
    id: String,
}

impl Session {
    fn new(sb: &Sandbox, id: &str) -> Session {
        let cwd = sb.path().join("work/app");
        std::fs::create_dir_all(&cwd).expect("mkdir");
        let proj = sb.path().join(".claude/projects/-work-app");
        std::fs::create_dir_all(&proj).expect("mkdir");
        Session {
            transcript: proj.join(format!("{id}.jsonl")),
            cwd,
            id: id.to_string(),
        }
    }

    fn append(&self, lines: &[String]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.transcript)
            .expect("open");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
    }

    fn payload(&self, event: &str) -> String {
        payload(event, &self.id, &self.transcript, &self.cwd)
    }
}

#[test]
fn a_simulated_session_records_exactly_the_generators_truth() {
    let sb = Sandbox::new();
    let (lines, truth, sid) = generated(sb.path(), 120, 11);
    let s = Session::new(&sb, &sid);
    hook(&sb, &s.cwd, &s.payload("SessionStart"));
    // Claude Code writes the transcript over time; Stop after each chunk, one SubagentStop.
    for (i, chunk) in lines.chunks(37).enumerate() {
        s.append(chunk);
        let ev = if i == 2 { "SubagentStop" } else { "Stop" };
        hook(&sb, &s.cwd, &s.payload(ev));
    }
    hook(&sb, &s.cwd, &s.payload("SessionEnd"));
    // What a run left behind at its time bound, the SessionEnd (or its continuation) records.
    wait_for_session_end(&sb, &s.id);

    let t = turns(&sb);
    assert_eq!(totals(&t), truth_totals(&truth));
    let ids: BTreeSet<_> = t.iter().map(|t| t["turn_id"].to_string()).collect();
    assert_eq!(ids.len(), t.len(), "no turn twice");
    let kinds: Vec<_> = sb.log_lines().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds.first(), Some(&Value::from("session")));
    assert_eq!(kinds.last(), Some(&Value::from("session_end")));
    // The other path over the same transcript, `ccc ingest claude`, counts the same requests.
    let claude_dir = sb.path().join(".claude").display().to_string();
    let ingest = sb
        .ok(&["ccc", "ingest", "claude", "--path", &claude_dir, "--json"])
        .json();
    assert_eq!(ingest["added"].as_u64(), Some(t.len() as u64), "{ingest}");
    let st = status(&sb);
    assert_eq!(st["last_hook"]["outcome"], "ok");
    assert_eq!(st["last_hook"]["event"], "SessionEnd");
    // On a loaded machine a run may hit its hard time bound (by design: the next hook catches
    // up, and the totals above hold). That is counted, but nothing may have gone wrong.
    let failed = failed_hook_runs(&sb);
    eprintln!("hook runs cut off at their time bound: {}", failed.len());
    assert_eq!(st["errors_total"], failed.len(), "{failed:?}");
    assert!(
        failed.iter().all(|r| r["outcome"] == "timed_out"),
        "only time bounds, no errors: {failed:?}"
    );
}

#[test]
fn killing_the_hook_at_random_points_loses_nothing_and_doubles_nothing() {
    let sb = Sandbox::new();
    let (lines, truth, sid) = generated(sb.path(), 400, 5);
    let s = Session::new(&sb, &sid);
    // A fixed-seed LCG: the kill points vary across runs of the loop, reproducibly.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let runs = 24;
    let chunk = lines.len().div_ceil(runs);
    for part in lines.chunks(chunk) {
        s.append(part);
        let mut c = sb.command(&["claude", "hook"]);
        c.current_dir(&s.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(s.payload("Stop").as_bytes())
            .expect("write");
        std::thread::sleep(std::time::Duration::from_micros(next(60_000)));
        let _ = child.kill();
        let _ = child.wait();
    }
    let before = turns(&sb).len();
    eprintln!(
        "after the kills: {before} turn(s) of {}",
        truth["assistant_unique"]
    );
    // Whatever the kills left, the next hooks catch up (a few, as each run is time-bounded).
    hook_until_done(&sb, &s.cwd, &s.payload("Stop"));
    let t = turns(&sb);
    let ids: BTreeSet<_> = t.iter().map(|t| t["turn_id"].to_string()).collect();
    assert_eq!(ids.len(), t.len(), "a turn recorded twice");
    assert_eq!(totals(&t), truth_totals(&truth));
    assert_eq!(
        sb.log_lines()
            .iter()
            .filter(|e| e["type"] == "session")
            .count(),
        1
    );
}

#[test]
fn an_unwritable_data_dir_still_exits_0_and_shows_in_status() {
    let sb = Sandbox::new();
    std::fs::write(sb.data_dir(), b"a file, not a dir").expect("file");
    let s = Session::new(&sb, "6a1e0c1e-0000-4000-8000-000000000001");
    s.append(&[]);
    hook(&sb, &s.cwd, &s.payload("Stop"));
    let st = status(&sb);
    assert_eq!(st["data_dir_writable"], false);
    assert_eq!(st["last_error"]["outcome"], "error");
    assert_eq!(st["last_error"]["session_id"], s.id);
    let human = sb.ok(&["claude", "status"]);
    assert!(human.stdout.contains("not writable"), "{}", human.stdout);
}

#[test]
fn garbage_on_stdin_is_logged_not_fatal() {
    let sb = Sandbox::new();
    hook(&sb, sb.path(), "this is not hook json");
    let st = status(&sb);
    assert_eq!(st["errors_total"], 1);
    let err = st["last_error"]["error"].as_str().unwrap_or_default();
    assert!(err.contains("bad_payload"), "{err}");
}

#[test]
fn install_dry_run_changes_nothing_install_uninstall_round_trip_via_the_cli() {
    let sb = Sandbox::new();
    let settings = sb.path().join("settings.json");
    let original = r#"{"model":"opus","hooks":{"Stop":[{"hooks":[{"type":"command","command":"say done"}]}]}}"#;
    std::fs::write(&settings, original).expect("write");
    let file = settings.display().to_string();

    let dry = sb.ok(&["claude", "install", "--settings", &file, "--dry-run"]);
    assert!(dry.stdout.contains("+"), "{}", dry.stdout);
    assert!(dry.stdout.contains("claude hook"));
    assert_eq!(std::fs::read_to_string(&settings).expect("read"), original);

    sb.ok(&["claude", "install", "--settings", &file, "--statusline"]);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).expect("read")).expect("json");
    let cmd = doc["hooks"]["SessionEnd"][0]["hooks"][0]["command"]
        .as_str()
        .expect("our command");
    // The hook finds this data dir without the installing shell's environment.
    assert!(cmd.contains("--data-dir"), "{cmd}");
    assert!(cmd.ends_with("claude hook"));
    let again = sb.ok(&["claude", "install", "--settings", &file, "--statusline"]);
    assert!(
        again.stdout.contains("nothing to install"),
        "{}",
        again.stdout
    );

    sb.ok(&["claude", "uninstall", "--settings", &file]);
    let back: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).expect("read")).expect("json");
    assert_eq!(back, serde_json::from_str::<Value>(original).expect("json"));

    std::fs::write(&settings, "{ not json").expect("write");
    let r = sb.run(&["claude", "install", "--settings", &file]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothing was changed"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&settings).expect("read"),
        "{ not json"
    );
}

#[test]
fn status_names_the_user_settings_under_claude_config_dir() {
    let mut sb = Sandbox::new();
    let cfg = sb.path().join("claude-cfg");
    sb.set_env("CLAUDE_CONFIG_DIR", &cfg.display().to_string());
    sb.ok(&["claude", "install", "--user"]);
    assert!(cfg.join("settings.json").is_file());
    let st = status(&sb);
    let user = &st["installed"][0];
    assert_eq!(user["scope"], "user");
    assert_eq!(user["hooks"].as_array().map(Vec::len), Some(4));
    let never = st["last_hook"].clone();
    assert_eq!(never, Value::Null);
}

#[test]
fn the_statusline_shows_the_session_and_day_cost_from_the_hooks() {
    let sb = Sandbox::new();
    let (lines, _, sid) = generated(sb.path(), 20, 3);
    let s = Session::new(&sb, &sid);
    s.append(&lines);
    hook_until_done(&sb, &s.cwd, &s.payload("Stop"));
    let costs: f64 = sb
        .log_lines()
        .iter()
        .filter_map(|e| e["cost"]["estimated_usd"].as_f64())
        .sum();
    let input = payload("statusline", &s.id, &s.transcript, &s.cwd);
    let r = sb.run_with_stdin(&["statusline"], Some(&input));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r.stdout.trim_end();
    assert_eq!(r.stdout.lines().count(), 1);
    assert!(line.starts_with("Sonnet 4.5 | "), "{line}");
    assert!(
        line.contains(&format!("session ${costs:.2}")),
        "{line} vs {costs}"
    );
    assert!(line.contains(&format!("today ${costs:.2}")), "{line}");
    assert!(line.contains("left)"), "a block is running: {line}");
    assert!(
        !line.contains('\x1b'),
        "NO_COLOR is set in the sandbox: {line}"
    );
    // Narrow: fits, drops the tail.
    let narrow = sb.run_with_stdin(&["statusline", "--width", "30"], Some(&input));
    assert!(
        narrow.stdout.trim_end().chars().count() <= 30,
        "{}",
        narrow.stdout
    );
    // Garbage in: still one line, exit 0.
    let junk = sb.run_with_stdin(&["statusline"], Some("nope"));
    assert_eq!(junk.code, 0);
    assert_eq!(junk.stdout.lines().count(), 1);
}

/// A real collector (agentos-collector over SQLite) on loopback, on its own runtime thread.
struct Collector {
    url: String,
    api_key: String,
    store: agentos_collector::Store,
    rt: tokio::runtime::Runtime,
}

impl Collector {
    fn start(dir: &Path, pubkey_b64: &str) -> Collector {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let db = format!("sqlite:{}", dir.join("collector.db").display());
        let (url, api_key, store) = rt.block_on(async {
            let store =
                agentos_collector::Store::connect(&db, &agentos_collector::StoreOptions::default())
                    .await
                    .expect("store");
            let mut keyring = agentos_core::license::Keyring::new();
            keyring.insert_base64("k1", pubkey_b64).expect("trust key");
            let (api_key, record) = agentos_collector::auth::generate_key(
                "acme",
                jiff::Timestamp::now().as_microsecond(),
            )
            .expect("api key");
            store.insert_key(&record).await.expect("insert key");
            let state = agentos_collector::AppState::builder(store.clone(), keyring).build();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(agentos_collector::serve(
                listener,
                state,
                std::future::pending::<()>(),
            ));
            (url, api_key, store)
        });
        Collector {
            url,
            api_key,
            store,
            rt,
        }
    }

    /// Per model: (turns, tokens_in, tokens_out, cache creation, cache read) the collector
    /// stored.
    fn per_model(&self) -> std::collections::BTreeMap<String, [u64; 5]> {
        let inputs = self
            .rt
            .block_on(self.store.usage_inputs("acme", 0, 0))
            .expect("usage inputs");
        inputs
            .rolling
            .into_iter()
            .map(|(m, t)| {
                (
                    m,
                    [
                        t.samples,
                        t.tokens_in,
                        t.tokens_out,
                        t.cache_creation_tokens,
                        t.cache_read_tokens,
                    ],
                )
            })
            .collect()
    }
}

#[test]
fn end_to_end_the_collector_holds_the_generators_truth_once() {
    let mut sb = Sandbox::new();
    sb.license("telemetry_full");
    let pubkey = sb
        .env
        .iter()
        .find(|(k, _)| k == "AGENTOS_LICENSE_PUBKEYS")
        .and_then(|(_, v)| v.strip_prefix("k1="))
        .expect("the sandbox's trusted key")
        .to_string();
    let collector = Collector::start(sb.path(), &pubkey);
    sb.set_env("AGENTOS_CCC_URL", &collector.url);
    sb.set_env("AGENTOS_CCC_API_KEY", &collector.api_key);
    sb.set_env("AGENTOS_TIER", "full");

    let (lines, truth, sid) = generated(sb.path(), 150, 21);
    let s = Session::new(&sb, &sid);
    hook_until_done(&sb, &s.cwd, &s.payload("SessionStart"));
    for chunk in lines.chunks(50) {
        s.append(chunk);
        hook_until_done(&sb, &s.cwd, &s.payload("Stop"));
    }
    hook(&sb, &s.cwd, &s.payload("SessionEnd"));
    wait_for_session_end(&sb, &s.id);

    // Hooks started background uploads; a foreground sync makes sure all is there (it may find
    // one of them still holding the data dir: retry, bounded).
    let mut synced = false;
    for _ in 0..100 {
        let r = sb.run(&["ccc", "sync", "--json"]);
        if r.code == 0 {
            synced = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(synced, "ccc sync never completed");

    let local = turns(&sb);
    assert_eq!(totals(&local), truth_totals(&truth), "locally");
    let mut local_by_model: std::collections::BTreeMap<String, [u64; 5]> = Default::default();
    for t in &local {
        let e = local_by_model
            .entry(t["model"].as_str().unwrap_or_default().to_string())
            .or_default();
        e[0] += 1;
        e[1] += t["tokens_in"].as_u64().unwrap_or(0);
        e[2] += t["tokens_out"].as_u64().unwrap_or(0);
        e[3] += t["cache_creation_tokens"].as_u64().unwrap_or(0);
        e[4] += t["cache_read_tokens"].as_u64().unwrap_or(0);
    }
    let remote = collector.per_model();
    assert_eq!(remote, local_by_model, "remotely, per model");
    let remote_sum = remote.values().fold([0u64; 5], |mut a, v| {
        for (x, y) in a.iter_mut().zip(v) {
            *x += y;
        }
        a
    });
    assert_eq!(
        remote_sum,
        truth_totals(&truth),
        "remote totals (turns, input, output, cache creation, cache read) are the truth"
    );

    // Sending again changes nothing on the collector.
    sb.ok(&["ccc", "sync"]);
    assert_eq!(collector.per_model(), remote);

    // The team's report from the collector (`--remote`) counts the same turns and tokens, and
    // the carried costs add up to what the log's turns carried.
    let r = sb.ok(&[
        "ccc",
        "report",
        "monthly",
        "--remote",
        "--json",
        "--timezone",
        "UTC",
    ]);
    let rep = r.json();
    let t = &rep["totals"];
    let got = [
        "turns",
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
    ]
    .map(|k| t[k].as_u64().unwrap_or(u64::MAX));
    assert_eq!(got, truth_totals(&truth), "remote report totals: {rep}");
    let carried: f64 = sb
        .log_lines()
        .iter()
        .filter(|e| e["type"] == "turn")
        .filter_map(|e| e["cost"]["estimated_usd"].as_f64())
        .sum();
    let cost = t["cost_usd"].as_f64().unwrap_or(-1.0);
    assert!(
        carried > 0.0 && (cost - carried).abs() <= 1e-9 * carried.max(1.0),
        "remote cost {cost} vs carried {carried}"
    );
    // Per source: the hooks' turns are all `claude`; no recorder turns.
    let by = sb
        .ok(&[
            "ccc",
            "report",
            "monthly",
            "--remote",
            "--by-source",
            "--json",
            "--timezone",
            "UTC",
        ])
        .json();
    let sources: Vec<&str> = by["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["source"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !sources.is_empty() && sources.iter().all(|s| *s == "claude"),
        "{by}"
    );
    assert_eq!(by["totals"]["turns"], rep["totals"]["turns"], "{by}");
    let none = sb
        .ok(&[
            "ccc", "report", "monthly", "--remote", "--source", "recorder", "--json",
        ])
        .json();
    assert_eq!(none["totals"]["turns"], 0, "{none}");
    let table = sb.ok(&["ccc", "report", "daily", "--remote", "--timezone", "UTC"]);
    assert!(table.stdout.contains("Total"), "{}", table.stdout);
    assert!(table.stdout.contains("Time zone: UTC"), "{}", table.stdout);

    // The statusline shows the model's quota from /v1/usage once the background refresh has
    // filled the cache; it never waits for it (bounded polling here, no timing assertion).
    let input = payload("statusline", &s.id, &s.transcript, &s.cwd);
    let mut line = String::new();
    for _ in 0..100 {
        let r = sb.run_with_stdin(&["statusline"], Some(&input));
        assert_eq!(r.code, 0, "{}", r.stderr);
        line = r.stdout;
        if line.contains("quota") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(line.contains("| quota 0%"), "{line}");
}

#[test]
fn a_session_end_with_more_than_its_time_bound_is_finished_in_the_background() {
    let sb = Sandbox::new();
    // Enough transcript that one bounded hook cannot read it all.
    let (lines, truth, sid) = generated_padded(sb.path(), 1500, 8, 8000);
    let s = Session::new(&sb, &sid);
    s.append(&lines);
    hook(&sb, &s.cwd, &s.payload("SessionEnd"));
    eprintln!("after the bounded hook: {} turn(s)", turns(&sb).len());
    // Bounded wait for the detached continuation (fails if it never finishes).
    wait_for_session_end(&sb, &s.id);
    let t = turns(&sb);
    assert_eq!(totals(&t), truth_totals(&truth));
    let ids: BTreeSet<_> = t.iter().map(|t| t["turn_id"].to_string()).collect();
    assert_eq!(ids.len(), t.len());
}
