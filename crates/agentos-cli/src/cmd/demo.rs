//! `agentos demo`: a self-contained tour. In a fresh directory it makes a real Ed25519 key pair
//! and a license, records one session in each privacy tier (local, minimized, full) with a few
//! turns, and shows where the artefacts are and what would leave the machine under each tier
//! (computed by `agentos_delivery::plan`, the code `agentos ccc preview` and `ccc sync` run).
//!
//! Nothing is sent anywhere; every data dir gets an `agentos.toml` so the printed follow-up
//! commands (`agentos --data-dir … ccc preview`) work as is.

use std::path::{Path, PathBuf};

use agentos_config::license as licensing;
use agentos_core::event::{
    Cost, Feature, FeatureStatus, InputKind, Measurement, SessionId, Turn, TurnEvent, TurnId,
    ValueRecord,
};
use agentos_core::license::{self, Claims, LICENSE_SCHEMA, Plan};
use agentos_core::tier::Tier;
use agentos_recorder::{Recorder, StartRequest};
use anyhow::Context as _;
use serde_json::{Value, json};

use crate::context::{CONFIG_FILE_NAME, Context, atomic_write, load_config_for};
use crate::flags::JsonReport;
use crate::output::{ExitStatus, color_stdout, paint, print_json, warn_line};

/// Arguments of `agentos demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo (must not exist or be empty; default: a new dir under the system
    /// temp dir, kept afterwards so you can look at it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonReport,
}

/// Runs `agentos demo`.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<ExitStatus> {
    let root = match args.out {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "agentos-demo-{}-{}",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S"),
            std::process::id()
        )),
    };
    if root.exists()
        && std::fs::read_dir(&root)
            .with_context(|| format!("reading {}", root.display()))?
            .next()
            .is_some()
    {
        anyhow::bail!(
            "demo dir {} exists and is not empty; pick another --out",
            root.display()
        );
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;

    // A real key pair and a license granting both telemetry entitlements.
    let key = licensing::generate_signing_key()?;
    let keys = licensing::write_key_pair(&root.join("keys"), "demo", &key)?;
    let now = jiff::Timestamp::now();
    let claims = Claims {
        device: None,
        exp: now.as_second() + 90 * 86_400,
        features: vec!["telemetry_minimized".into(), "telemetry_full".into()],
        iat: Some(now.as_second()),
        kid: "demo".into(),
        nonce: Some(licensing::random_nonce()?),
        plan: Plan::Pro,
        schema: LICENSE_SCHEMA.into(),
        sub: Some("demo@agentos.invalid".into()),
    };
    let pack_path = root.join("license.json");
    atomic_write(&pack_path, license::issue_pack(&key, &claims).as_bytes())?;

    let mut tiers = Vec::new();
    for tier in Tier::ALL {
        tiers.push(record_tier(&root, tier, &pack_path, &keys.public_base64)?);
    }

    if args.json.json {
        print_json(&json!({
            "dir": root,
            "keys": {"secret": keys.secret, "public": keys.public, "kid": keys.kid},
            "license": pack_path,
            "tiers": tiers,
        }))?;
        return Ok(ExitStatus::Ok);
    }
    let c = color_stdout();
    println!("{} {}", paint("agentos demo in", "1", c), root.display());
    println!(
        "  key pair  {} (secret, 0600) + {}",
        keys.secret.display(),
        keys.public.display()
    );
    println!(
        "  license   {} (pro: telemetry_minimized, telemetry_full; 90 days)",
        pack_path.display()
    );
    for t in &tiers {
        println!();
        println!(
            "{} {}",
            paint(
                &format!("tier {}", t["tier"].as_str().unwrap_or("?")),
                "1;36",
                c
            ),
            t["data_dir"].as_str().unwrap_or("")
        );
        println!(
            "  windows.jsonl         {} events (seq 1..{})",
            t["events"], t["events"]
        );
        println!(
            "  metrics_summary.json  turns {}, features_shipped {}, avg_cls {}",
            t["summary"]["turns"], t["summary"]["features_shipped"], t["summary"]["avg_cls"]
        );
        if t["glm_counts"].as_u64().unwrap_or(0) > 0 {
            println!("  glm_counts.jsonl      {} GLM turn(s)", t["glm_counts"]);
        }
        let leaves = &t["would_leave"];
        let events = leaves["events"].as_array().map_or(0, Vec::len);
        match (events, leaves["metrics"].is_null()) {
            (0, true) => println!("  would leave           {}", paint("nothing", "32", c)),
            (0, false) => println!("  would leave           /v1/metrics {}", leaves["metrics"]),
            (n, _) => {
                println!(
                    "  would leave           {n} redacted events to /v1/events, e.g. the turn:"
                );
                if let Some(turn) = leaves["events"]
                    .as_array()
                    .and_then(|e| e.iter().find(|v| v["type"] == "turn"))
                {
                    println!("      {turn}");
                }
                println!(
                    "                        and /v1/metrics {}",
                    leaves["metrics"]
                );
            }
        }
        println!(
            "  see it yourself       agentos --data-dir {} ccc preview --tier {}",
            t["data_dir"].as_str().unwrap_or(""),
            t["tier"].as_str().unwrap_or("")
        );
    }
    Ok(ExitStatus::Ok)
}

/// Records the demo session under `tier` in its own data dir and describes the result.
fn record_tier(root: &Path, tier: Tier, pack: &Path, pubkey: &str) -> anyhow::Result<Value> {
    let data_dir = root.join(tier.as_str());
    std::fs::create_dir_all(&data_dir)?;
    let toml = format!(
        "# written by `agentos demo`\n[ccc]\ntier = \"{tier}\"\n\n[privacy]\nmetadata_allowlist = [\"team\"]\n\n[license]\npack = {pack:?}\npubkeys = {{ demo = \"{pubkey}\" }}\n",
        pack = pack.display().to_string(),
    );
    atomic_write(&data_dir.join(CONFIG_FILE_NAME), toml.as_bytes())?;
    let cfg = load_config_for(&data_dir, &data_dir.join(CONFIG_FILE_NAME))?;
    let mut rec = Recorder::open(cfg.clone())?;
    let started = rec.start_session(StartRequest {
        repo_id: "github.com/example/shop".into(),
        branch: "feature/login".into(),
        commit: "3f2a9c1".into(),
        license_id: None,
        tier: Some(tier),
        metadata: [
            ("team".to_string(), json!("checkout")),
            ("customer".to_string(), json!("ACME (confidential)")),
        ]
        .into_iter()
        .collect(),
        strict_license: false,
        session_id: None,
    })?;
    if let Some(p) = &started.downgrade {
        warn_line(&format!("tier {tier}: recording locally only: {p}"));
    }
    let turns = [
        (
            "claude-sonnet-4.5",
            0.5,
            1.0,
            Some("https://example.invalid/pr/42"),
        ),
        ("glm-4.6", 0.25, 0.0, None),
        ("claude-haiku-4.5", 0.25, 1.0, None),
    ];
    for (i, (model, capacity, delta, link)) in turns.into_iter().enumerate() {
        rec.record_turn(demo_turn(i, model, capacity, delta, link))?;
    }
    rec.end_session(Some(
        "retro: the login flow took longer than planned".into(),
    ))?;
    let p = would_leave(&cfg, tier)?;
    let events: Vec<Value> = p
        .events
        .iter()
        .map(|b| serde_json::from_slice(b))
        .collect::<Result<_, _>>()?;
    let metrics: Option<Value> = p
        .metrics
        .as_deref()
        .map(serde_json::from_slice)
        .transpose()?;
    let paths = rec.paths();
    let glm = std::fs::read_to_string(&paths.glm_counts)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    Ok(json!({
        "tier": tier,
        "recorded_as": started.session.tier,
        "data_dir": data_dir,
        "windows": paths.windows,
        "summary_file": paths.summary,
        "glm_counts_file": paths.glm_counts,
        "events": rec.state().map_or(0, |s| s.events),
        "glm_counts": glm,
        "summary": rec.summary(),
        // Everything that would not leave as an event, whatever the reason: the plan's
        // `withheld` (recorded under a tier that never sends events), `held` (recorded above
        // the cap, kept for a later run) and `forgotten` (only their seq ranges are reported).
        // The demo dir is always fresh, so only `withheld` can be non-zero here; the sum keeps
        // the key's meaning from before the demo used the plan ("valid events that do not leave
        // as events", which counted events above the shown tier too).
        "would_leave": {
            "events": events,
            "events_withheld": p.withheld + p.held + p.forgotten,
            "metrics": metrics,
        },
    }))
}

/// What the next `agentos ccc sync` of `cfg`'s data dir would send under `tier`: the same
/// `agentos_delivery::plan` that `agentos ccc preview` and `ccc sync` run, so the demo can never
/// show something a sync would not do. `DO_NOT_TRACK` is honoured like everywhere else (the
/// recorder has then already recorded every tier locally, and says so).
fn would_leave(cfg: &agentos_config::Config, tier: Tier) -> anyhow::Result<agentos_delivery::Plan> {
    // The license ceiling comes from the data dir's own `[license]` section (the demo pack and
    // the key it trusts), verified exactly as a sync verifies it.
    let mut settings = agentos_delivery::Settings::from_config(cfg)
        .context("resolving delivery settings for the demo")?;
    // The tier under demonstration, even if `AGENTOS_TIER` overrode `[ccc] tier` while loading.
    settings.tier = Some(tier);
    Ok(agentos_delivery::plan(&settings)?)
}

fn demo_turn(i: usize, model: &str, capacity: f64, delta: f64, link: Option<&str>) -> TurnEvent {
    TurnEvent {
        turn: Turn {
            turn_id: TurnId(format!("t{}", i + 1)),
            session_id: SessionId(String::new()),
            model: model.into(),
            subagent: if i == 1 {
                "reviewer".into()
            } else {
                "main".into()
            },
            tokens_in: 1800 + 400 * i as u64,
            tokens_out: 600 + 150 * i as u64,
            input_kind: InputKind::Text,
            latency_ms: 900.0 + 250.0 * i as f64,
            attribution: Some([(model.to_string(), 1.0)].into_iter().collect()),
            capacity_used: Some(capacity),
            cache_creation_tokens: None,
            cache_read_tokens: None,
            source: None,
        },
        measurement: Some(Measurement {
            cls: 1.2,
            impf: 4.5,
            churn_score: 0.1 * i as f64,
            feature_delta: delta,
            errors: (i == 1).then(|| vec!["test login_redirect failed at src/auth.rs:88".into()]),
            error_count: None,
        }),
        feature: Some(Feature {
            feature_id: "LOGIN-1".into(),
            spec_ref: "docs/specs/login.md".into(),
            status: if delta > 0.0 {
                FeatureStatus::Shipped
            } else {
                FeatureStatus::Implemented
            },
            notes: Some("customer asked for SSO next".into()),
        }),
        cost: Some(Cost {
            provider: if model.starts_with("glm") {
                "zai".into()
            } else {
                "anthropic".into()
            },
            estimated_usd: 0.012 * (i + 1) as f64,
            unit_costs: None,
        }),
        value: Some(ValueRecord {
            summary: format!("login step {} done", i + 1),
            links: link.map(|l| vec![l.to_string()]),
            evidence_refs: Some(vec!["/home/dev/notes/login.txt".into()]),
        }),
        decision: None,
    }
}
