//! Cucumber harness for `features/ccc_adapter.feature`: the seed's scenarios, run against the
//! real `agentos` binary.

mod common;

use common::collector::Collector;
use common::{Run, Sandbox, seed_turn_args, strs};
use cucumber::{World as _, given, then, when};
use serde_json::Value;

#[derive(Debug, cucumber::World)]
#[world(init = Self::new)]
struct AdapterWorld {
    sb: Sandbox,
    last: Option<Run>,
    pack: Option<std::path::PathBuf>,
    trust: String,
    collector: Option<Collector>,
}

impl AdapterWorld {
    fn new() -> Self {
        AdapterWorld {
            sb: Sandbox::new(),
            last: None,
            pack: None,
            trust: String::new(),
            collector: None,
        }
    }

    fn last(&self) -> &Run {
        self.last.as_ref().expect("a command ran")
    }

    fn preview(&self, tier: &str) -> Value {
        self.sb
            .ok(&["ccc", "preview", "--tier", tier, "--json"])
            .json()
    }
}

#[given("a fresh data dir")]
fn fresh(w: &mut AdapterWorld) {
    assert!(!w.sb.data_dir().exists());
}

#[given(expr = "a license granting {string}")]
fn license(w: &mut AdapterWorld, features: String) {
    w.sb.license(&features);
}

#[given(expr = "the config allowlists the metadata key {string}")]
fn allowlist(w: &mut AdapterWorld, key: String) {
    std::fs::create_dir_all(w.sb.data_dir()).expect("mkdir");
    std::fs::write(
        w.sb.data_dir().join("agentos.toml"),
        format!("[privacy]\nmetadata_allowlist = [{key:?}]\n"),
    )
    .expect("write config");
}

fn start_args(tier: &str) -> Vec<String> {
    [
        "ccc",
        "session",
        "start",
        "--repo-id",
        "repo-1",
        "--branch",
        "main",
        "--commit",
        "abc",
        "--tier",
        tier,
        "--metadata",
        "team=core",
        "--metadata",
        "customer=ACME secret",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[when(expr = "I start a session with tier {string}")]
fn start(w: &mut AdapterWorld, tier: String) {
    w.last = Some(w.sb.run(&strs(&start_args(&tier))));
}

#[when(expr = "I start a strict session with tier {string}")]
fn start_strict(w: &mut AdapterWorld, tier: String) {
    let mut a = start_args(&tier);
    a.push("--strict-license".into());
    w.last = Some(w.sb.run(&strs(&a)));
}

#[when(expr = "I record the seed turn with model {string}")]
fn turn(w: &mut AdapterWorld, model: String) {
    w.last = Some(w.sb.ok(&strs(&seed_turn_args(&model))));
}

#[when(expr = "I end the session with notes {string}")]
fn end(w: &mut AdapterWorld, notes: String) {
    w.last = Some(w.sb.ok(&["ccc", "session", "end", "--notes", &notes]));
}

// Leaves delivery to the scenario's own `sync` steps (no background upload racing them).
#[when(expr = "I end the session with notes {string} without uploading")]
fn end_no_upload(w: &mut AdapterWorld, notes: String) {
    w.last = Some(w.sb.ok(&["ccc", "session", "end", "--notes", &notes, "--no-upload"]));
}

#[then(expr = "windows.jsonl holds the events {string} with seqs {int} to {int}")]
fn events(w: &mut AdapterWorld, types: String, from: u64, to: u64) {
    let lines = w.sb.log_lines();
    let got: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(got, types.split(',').collect::<Vec<_>>());
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, (from..=to).collect::<Vec<_>>());
}

#[then(expr = "every event is recorded under tier {string}")]
fn all_tier(w: &mut AdapterWorld, tier: String) {
    let lines = w.sb.log_lines();
    assert!(!lines.is_empty());
    for l in &lines {
        assert_eq!(l["tier"], tier.as_str(), "{l}");
    }
}

#[then(
    expr = "the summary has features_shipped {float}, features_per_capacity {float}, avg_cls {float} and avg_impf {float}"
)]
fn summary(w: &mut AdapterWorld, shipped: f64, per_capacity: f64, cls: f64, impf: f64) {
    let s = w.sb.summary();
    assert_eq!(s["features_shipped"].as_f64(), Some(shipped));
    assert_eq!(s["features_per_capacity"].as_f64(), Some(per_capacity));
    assert_eq!(s["avg_cls"].as_f64(), Some(cls));
    assert_eq!(s["avg_impf"].as_f64(), Some(impf));
}

#[then(expr = "preview under tier {string} prints nothing")]
fn preview_nothing(w: &mut AdapterWorld, tier: String) {
    let r = w.sb.ok(&["ccc", "preview", "--tier", &tier]);
    assert_eq!(r.stdout, "");
}

#[then(
    expr = "glm_counts.jsonl has {int} line for model {string} with {int} tokens in and {int} tokens out"
)]
fn glm(w: &mut AdapterWorld, n: usize, model: String, tin: u64, tout: u64) {
    let text =
        std::fs::read_to_string(w.sb.data_dir().join("glm_counts.jsonl")).expect("glm_counts");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), n);
    assert_eq!(lines[0]["model"], model.as_str());
    assert_eq!(lines[0]["tokens_in"].as_u64(), Some(tin));
    assert_eq!(lines[0]["tokens_out"].as_u64(), Some(tout));
    let keys: Vec<&String> = lines[0].as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
}

#[then(expr = "preview under tier {string} sends no events")]
fn preview_no_events(w: &mut AdapterWorld, tier: String) {
    assert_eq!(w.preview(&tier)["events"], Value::Array(vec![]));
}

#[then(expr = "preview under tier {string} sends a metrics body with exactly the keys {string}")]
fn preview_metrics_keys(w: &mut AdapterWorld, tier: String, keys: String) {
    let p = w.preview(&tier);
    let got: Vec<&String> = p["metrics"]
        .as_object()
        .expect("metrics body")
        .keys()
        .collect();
    assert_eq!(got, keys.split(',').collect::<Vec<_>>());
}

#[then(expr = "preview under tier {string} sends {int} events")]
fn preview_events(w: &mut AdapterWorld, tier: String, n: usize) {
    let p = w.preview(&tier);
    assert_eq!(p["events"].as_array().map(Vec::len), Some(n));
    for e in p["events"].as_array().into_iter().flatten() {
        agentos_core::schema::validate_envelope(e).expect("what leaves is schema-valid");
    }
}

#[then(expr = "the sent session metadata keeps only {string}")]
fn sent_metadata(w: &mut AdapterWorld, key: String) {
    let p = w.preview("full");
    let meta = p["events"][0]["session"]["metadata"]
        .as_object()
        .expect("metadata")
        .clone();
    assert_eq!(meta.keys().collect::<Vec<_>>(), [&key]);
}

#[then(
    expr = "the sent turn keeps value keys {string}, drops feature notes and counts {int} error"
)]
fn sent_turn(w: &mut AdapterWorld, keys: String, errors: u64) {
    let p = w.preview("full");
    let turn = &p["events"][1];
    assert_eq!(turn["type"], "turn");
    let got: Vec<&String> = turn["value"].as_object().expect("value").keys().collect();
    assert_eq!(got, keys.split(',').collect::<Vec<_>>());
    assert!(turn["feature"].get("notes").is_none());
    assert!(turn["measurement"].get("errors").is_none());
    assert_eq!(turn["measurement"]["error_count"].as_u64(), Some(errors));
}

#[then("the sent session end has no notes")]
fn sent_end(w: &mut AdapterWorld) {
    let p = w.preview("full");
    let end = &p["events"][2];
    assert_eq!(end["type"], "session_end");
    assert!(end.get("notes").is_none());
}

#[then(expr = "nothing sent contains {string}, {string}, {string}, {string} or {string}")]
fn nothing_contains(w: &mut AdapterWorld, a: String, b: String, c: String, d: String, e: String) {
    let r = w.sb.ok(&["ccc", "preview", "--tier", "full"]);
    for s in [a, b, c, d, e] {
        assert!(!r.stdout.contains(&s), "{s} would leave: {}", r.stdout);
    }
}

#[then(expr = "the command succeeds with a warning naming {string}")]
fn warned(w: &mut AdapterWorld, what: String) {
    let r = w.last();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("WARNING") && r.stderr.contains(&what),
        "{}",
        r.stderr
    );
}

#[then(expr = "the session record notes requested tier {string} and problem {string}")]
fn session_notes(w: &mut AdapterWorld, tier: String, problem: String) {
    let s = &w.sb.log_lines()[0];
    assert_eq!(
        s["session"]["metadata"]["agentos.requested_tier"],
        tier.as_str()
    );
    assert_eq!(
        s["session"]["metadata"]["agentos.license_problem"],
        problem.as_str()
    );
}

#[then(expr = "the command exits with {int} naming {string}")]
fn exits(w: &mut AdapterWorld, code: i32, what: String) {
    let r = w.last();
    assert_eq!(r.code, code, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&what), "{}", r.stderr);
}

#[then("no event is recorded")]
fn nothing_recorded(w: &mut AdapterWorld) {
    assert!(w.sb.log_lines().is_empty());
}

#[given(expr = "a license pack that is {}")]
fn bad_pack(w: &mut AdapterWorld, kind: String) {
    let (key, public) = w.sb.keygen("k1");
    w.trust = format!("k1={public}");
    let pack = match kind.trim() {
        "expired" => w.sb.issue(&key, "p.json", "telemetry_full", "1000"),
        "signed by other key" => {
            let (_, other) = w.sb.keygen("k2");
            w.trust = format!("k1={other}");
            w.sb.issue(&key, "p.json", "telemetry_full", "90d")
        }
        "from an unknown kid" => {
            w.trust = format!("k9={public}");
            w.sb.issue(&key, "p.json", "telemetry_full", "90d")
        }
        "tampered with" => {
            let p = w.sb.issue(&key, "p.json", "telemetry_minimized", "90d");
            let text = std::fs::read_to_string(&p).expect("pack");
            std::fs::write(&p, text.replace("telemetry_minimized", "telemetry_full"))
                .expect("tamper");
            p
        }
        other => panic!("unknown pack kind {other:?}"),
    };
    w.pack = Some(pack);
}

#[when("I verify the pack")]
fn verify(w: &mut AdapterWorld) {
    let pack = w.pack.clone().expect("pack");
    w.last = Some(w.sb.run(&[
        "license",
        "verify",
        pack.to_str().expect("utf8"),
        "--pubkey",
        &w.trust,
    ]));
}

// ---- over the wire: a real collector on loopback ----

impl AdapterWorld {
    fn collector(&self) -> &Collector {
        self.collector.as_ref().expect("a collector was started")
    }

    fn device(&self) -> String {
        std::fs::read_to_string(self.sb.data_dir().join("device_id"))
            .expect("device id")
            .trim()
            .to_string()
    }
}

#[given("a collector on loopback trusting that license")]
fn collector_trusting(w: &mut AdapterWorld) {
    let trust =
        w.sb.env
            .iter()
            .find(|(k, _)| k == "AGENTOS_LICENSE_PUBKEYS")
            .map(|(_, v)| v.clone())
            .expect("a license was configured");
    w.collector = Some(Collector::start(w.sb.path(), &trust));
}

#[given("a collector on loopback trusting another key")]
fn collector_trusting_another(w: &mut AdapterWorld) {
    let (_, other) = w.sb.keygen("other");
    // The same kid, another key: the pack's signature cannot verify there.
    w.collector = Some(Collector::start(w.sb.path(), &format!("k1={other}")));
}

#[given("the data dir delivers to that collector")]
fn delivers_to(w: &mut AdapterWorld) {
    let (url, key) = (w.collector().url.clone(), w.collector().api_key.clone());
    w.sb.set_env("AGENTOS_CCC_URL", &url);
    w.sb.set_env("AGENTOS_CCC_API_KEY", &key);
}

#[when("I sync")]
fn sync(w: &mut AdapterWorld) {
    w.last = Some(w.sb.run(&["ccc", "sync", "--timeout", "30s"]));
}

#[when(expr = "I sync with a timeout of {string}")]
fn sync_timeout(w: &mut AdapterWorld, timeout: String) {
    w.last = Some(w.sb.run(&["ccc", "sync", "--timeout", &timeout]));
}

#[when(expr = "I sync with tier {string}")]
fn sync_tier(w: &mut AdapterWorld, tier: String) {
    w.last = Some(w.sb.run(&["ccc", "sync", "--tier", &tier, "--timeout", "30s"]));
}

#[when("the collector goes down")]
fn collector_down(w: &mut AdapterWorld) {
    w.collector.as_mut().expect("collector").stop();
}

#[when("the collector comes back")]
fn collector_back(w: &mut AdapterWorld) {
    w.collector.as_mut().expect("collector").restart();
}

#[then(expr = "the command exits with {int}")]
fn exits_with(w: &mut AdapterWorld, code: i32) {
    let r = w.last();
    assert_eq!(r.code, code, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
}

#[then(expr = "the collector stores {int} events from this device")]
fn stores_n(w: &mut AdapterWorld, n: usize) {
    assert_eq!(w.collector().events(&w.device()).len(), n);
}

#[then(expr = "the collector stores the events {string} from this device with seqs {int} to {int}")]
fn stores_kinds(w: &mut AdapterWorld, kinds: String, from: u64, to: u64) {
    let events = w.collector().events(&w.device());
    let got: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        got,
        kinds.split(',').collect::<Vec<_>>(),
        "each once, in order"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (from..=to).collect::<Vec<_>>());
}

#[then(
    expr = "nothing the collector stored contains {string}, {string}, {string}, {string} or {string}"
)]
fn stored_contains_none(
    w: &mut AdapterWorld,
    a: String,
    b: String,
    c: String,
    d: String,
    e: String,
) {
    let events = w.collector().events(&w.device());
    assert!(!events.is_empty());
    for ev in &events {
        for secret in [&a, &b, &c, &d, &e] {
            assert!(
                !ev.body.contains(secret.as_str()),
                "{secret:?} reached the collector: {}",
                ev.body
            );
        }
    }
}

#[then(expr = "the collector holds a summary from this device with exactly the keys {string}")]
fn holds_summary(w: &mut AdapterWorld, keys: String) {
    // Session close may hand the upload to a background process: wait for it, bounded.
    let device = w.device();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let body = loop {
        if let Some((_, b)) = w
            .collector()
            .summaries()
            .into_iter()
            .find(|(d, _)| *d == device)
        {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no summary arrived within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut got: Vec<String> = body.as_object().expect("object").keys().cloned().collect();
    got.sort();
    let mut want: Vec<String> = keys.split(',').map(String::from).collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::main]
async fn main() {
    let feature = concat!(env!("CARGO_MANIFEST_DIR"), "/../../features");
    AdapterWorld::cucumber()
        .fail_on_skipped()
        .run_and_exit(feature)
        .await;
}

#[then(expr = "the local summary's model health comes from the collector and lists {string}")]
fn summary_health(w: &mut AdapterWorld, model: String) {
    let path = w.sb.data_dir().join("metrics_summary.json");
    let s: Value = serde_json::from_slice(&std::fs::read(&path).expect("summary")).expect("json");
    let source = s["model_health_source"].as_str().unwrap_or_default();
    let want = format!("GET {}/v1/usage at ", w.collector().url);
    assert!(
        source.starts_with(&want),
        "source {source:?}, want {want:?}"
    );
    let health = s["model_health"].as_object().expect("model_health object");
    assert!(health.contains_key(&model), "{model} in {health:?}");
    assert!(health[&model]["rolling_in"].as_u64().expect("rolling_in") > 0);
}

#[then("the local summary has no model health")]
fn summary_no_health(w: &mut AdapterWorld) {
    let path = w.sb.data_dir().join("metrics_summary.json");
    let s: Value = serde_json::from_slice(&std::fs::read(&path).expect("summary")).expect("json");
    assert!(s.get("model_health").is_none(), "{s}");
}
