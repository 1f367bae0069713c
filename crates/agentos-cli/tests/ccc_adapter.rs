//! Cucumber harness for `features/ccc_adapter.feature`: the seed's scenarios, run against the
//! real `agentos` binary.

mod common;

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
}

impl AdapterWorld {
    fn new() -> Self {
        AdapterWorld {
            sb: Sandbox::new(),
            last: None,
            pack: None,
            trust: String::new(),
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

#[tokio::main]
async fn main() {
    let feature = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../features/ccc_adapter.feature"
    );
    AdapterWorld::cucumber()
        .fail_on_skipped()
        .run_and_exit(feature)
        .await;
}
