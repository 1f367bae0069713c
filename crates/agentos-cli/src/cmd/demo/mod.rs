//! `agentos demo`: the whole loop on embedded defaults, in a temporary directory.
//!
//! 1. A small realistic history: three people's Claude Code transcripts over a few days, a
//!    Codex session and a CCC shim root ([`history`]).
//! 2. A real Ed25519 key pair, a license and an API key; a collector on a free loopback port
//!    over SQLite in the temporary directory ([`agentos_collector::embedded`]).
//! 3. Each person's live session (today's) goes through the Claude Code hook code path
//!    (`agentos_claude::hook::handle`, what `agentos claude hook` runs) into their own data dir,
//!    under their own tier (alice `full`, bob `minimized`, carol `local`); the older history, the
//!    Codex session and the CCC root are ingested locally; delivery runs in the background for
//!    every data dir and carries what each tier allows.
//! 4. It prints what was recorded per source, what left under each tier, and the team's daily
//!    report fetched from the collector.
//! 5. It stops the collector and removes the directory (unless `--keep DIR`); `--serve` keeps
//!    the collector up until Ctrl-C.

mod history;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentos_claude::hook::{HookOptions, handle};
use agentos_claude::payload::{HookEvent, HookInput};
use agentos_config::license as licensing;
use agentos_core::license::{self, Claims, Keyring, LICENSE_SCHEMA, Plan};
use agentos_core::tier::Tier;
use anyhow::Context as _;
use serde_json::{Value, json};

use crate::context::{CONFIG_FILE_NAME, Context, atomic_write, load_config_for};
use crate::flags::JsonReport;
use crate::output::{ExitStatus, color_stdout, paint, print_json};

/// Arguments of `agentos demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep everything in DIR (must not exist, or be empty) instead of a temporary directory
    /// removed at exit.
    #[arg(long, value_name = "DIR", alias = "out")]
    pub keep: Option<PathBuf>,
    /// Keep the collector running until Ctrl-C (its URL is printed).
    #[arg(long)]
    pub serve: bool,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonReport,
}

/// The tenant of the demo team's API key.
const TENANT: &str = "demo-team";

/// How long background delivery may take before the demo reports what is still pending.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// The demo's directory: removed at the end unless kept.
enum Workdir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Workdir {
    fn new(keep: Option<PathBuf>) -> anyhow::Result<Workdir> {
        let Some(dir) = keep else {
            let t = tempfile::Builder::new()
                .prefix("agentos-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            return Ok(Workdir::Temp(t));
        };
        if dir.exists()
            && std::fs::read_dir(&dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_some()
        {
            anyhow::bail!(
                "demo dir {} exists and is not empty; pick another --keep",
                dir.display()
            );
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Workdir::Kept(dir))
    }

    fn path(&self) -> &Path {
        match self {
            Workdir::Temp(t) => t.path(),
            Workdir::Kept(p) => p,
        }
    }
}

/// Runs `agentos demo`.
pub fn run(args: Args, _ctx: &Context) -> anyhow::Result<ExitStatus> {
    let started = Instant::now();
    let work = Workdir::new(args.keep.clone())?;
    let root = work.path().to_path_buf();
    let now = jiff::Timestamp::now();
    let hist = history::generate(&root, now)?;

    // A real key pair, a license granting both telemetry tiers, and an API key.
    let key = licensing::generate_signing_key()?;
    let keys = licensing::write_key_pair(&root.join("keys"), "demo", &key)?;
    let claims = Claims {
        device: None,
        exp: now.as_second() + 90 * 86_400,
        features: vec!["telemetry_minimized".into(), "telemetry_full".into()],
        iat: Some(now.as_second()),
        kid: "demo".into(),
        nonce: Some(licensing::random_nonce()?),
        plan: Plan::Pro,
        schema: LICENSE_SCHEMA.into(),
        sub: Some("team@agentos.invalid".into()),
    };
    let pack = root.join("license.json");
    atomic_write(&pack, license::issue_pack(&key, &claims).as_bytes())?;
    let trust = format!("demo={}", keys.public_base64);
    let mut keyring = Keyring::new();
    keyring
        .extend_from_env(&trust)
        .context("trusting the demo key")?;
    let (api_key, key_record) = agentos_collector::auth::generate_key(TENANT, now.as_microsecond())
        .context("making the demo API key")?;

    // The collector, on a free loopback port, over SQLite in the demo dir.
    let coll_dir = root.join("collector");
    std::fs::create_dir_all(&coll_dir)?;
    let database = format!("sqlite:{}", coll_dir.join("collector.db").display());
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut collector = agentos_collector::embedded::Embedded::start(
        &database,
        keyring,
        listen,
        move |store| async move { store.insert_key(&key_record).await },
    )?;
    let url = collector.url();

    // Every person's live session through the hook, into their own data dir.
    let mut people = Vec::new();
    for p in &hist.people {
        people.push(record_person(
            &root,
            p,
            &url,
            &api_key,
            &pack,
            &keys.public_base64,
        )?);
    }
    // Background delivery for every data dir at once, as the hooks' background syncs would.
    let delivered = deliver_all(&people)?;
    // History stays on each machine: ingested into the local store, never sent.
    let mut local = Vec::new();
    for p in &people {
        local.push(ingest_local(p, &hist)?);
    }

    let report = json!({
        "dir": root,
        "collector": url,
        "truth": hist.truth,
        "people": people.iter().zip(&delivered).zip(&local).map(|((p, d), l)| json!({
            "name": p.name, "tier": p.tier, "data_dir": p.data_dir,
            "recorded": p.recorded, "delivery": d, "ingested": l,
        })).collect::<Vec<_>>(),
        "seconds": started.elapsed().as_secs_f64(),
    });
    if args.json.json {
        print_json(&report)?;
    } else {
        print_human(&report);
    }
    if args.serve {
        println!("collector running at {url}; Ctrl-C stops it");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(agentos_collector::shutdown_signal());
    }
    collector.stop();
    drop(work);
    Ok(ExitStatus::Ok)
}

/// One person's machine after their live session.
struct PersonRun {
    name: &'static str,
    tier: Tier,
    data_dir: PathBuf,
    config: agentos_config::Config,
    recorded: Value,
}

fn record_person(
    root: &Path,
    p: &history::Person,
    url: &str,
    api_key: &str,
    pack: &Path,
    pubkey: &str,
) -> anyhow::Result<PersonRun> {
    let data_dir = root.join("people").join(p.name);
    std::fs::create_dir_all(&data_dir)?;
    let toml = format!(
        "# written by `agentos demo`: {name}'s machine\n[ccc]\nurl = {url:?}\napi_key = {api_key:?}\ntier = \"{tier}\"\n\n[license]\npack = {pack:?}\npubkeys = {{ demo = \"{pubkey}\" }}\n",
        name = p.name,
        tier = p.tier,
        pack = pack.display().to_string(),
    );
    atomic_write(&data_dir.join(CONFIG_FILE_NAME), toml.as_bytes())?;
    let config = load_config_for(&data_dir, &data_dir.join(CONFIG_FILE_NAME))?;
    let live = p.sessions.last().context("every person has a session")?;
    let mut turns = 0;
    for event in [
        HookEvent::SessionStart,
        HookEvent::Stop,
        HookEvent::SessionEnd,
    ] {
        let input = HookInput {
            session_id: live.id.clone(),
            transcript_path: Some(live.transcript.clone()),
            cwd: Some(live.cwd.clone()),
            hook_event_name: event,
            source: (event == HookEvent::SessionStart).then(|| "startup".into()),
            reason: (event == HookEvent::SessionEnd).then(|| "prompt_input_exit".into()),
            agent_id: None,
            agent_transcript_path: None,
        };
        let start = Instant::now();
        let opts = HookOptions {
            deadline: start + Duration::from_secs(5),
            write_deadline: start + Duration::from_secs(10),
            prices: agentos_ingest::PriceTable::embedded(),
        };
        let r = handle(&input, &config, &opts)
            .with_context(|| format!("{}'s {event:?} hook", p.name))?;
        turns += r.turns_recorded;
    }
    let dd = agentos_config::DataDir::new(&data_dir);
    let events = std::fs::read_to_string(dd.windows())
        .map(|s| s.lines().count())
        .unwrap_or(0);
    Ok(PersonRun {
        name: p.name,
        tier: p.tier,
        data_dir,
        config,
        recorded: json!({"claude_code_turns": turns, "events": events}),
    })
}

/// Token totals of one ingested source, as the local store holds them.
fn source_totals(
    data_dir: &Path,
    kind: agentos_ingest::store::SourceKind,
) -> anyhow::Result<Value> {
    let set = agentos_ingest::ingest::load_all(data_dir, Some(kind))
        .with_context(|| format!("reading the {kind:?} store"))?;
    let mut t = agentos_ingest::pricing::Tokens::default();
    for r in &set.records {
        t.input += r.tokens.input;
        t.output += r.tokens.output;
        t.cache_creation += r.tokens.cache_creation;
        t.cache_read += r.tokens.cache_read;
    }
    Ok(json!({
        "turns": set.records.len(),
        "input_tokens": t.input, "output_tokens": t.output,
        "cache_creation_tokens": t.cache_creation, "cache_read_tokens": t.cache_read,
    }))
}

/// Ingests a person's own history into their local store: their Claude Code transcripts, and
/// for alice also her Codex sessions and the team's CCC shim root.
fn ingest_local(p: &PersonRun, hist: &history::History) -> anyhow::Result<Value> {
    use agentos_ingest::store::SourceKind;
    let opts = agentos_ingest::ingest::RunOptions {
        threads: 1,
        ..Default::default()
    };
    let home = hist.home_of(p.name);
    agentos_ingest::ingest::ingest_claude(&p.data_dir, Some(&home.join(".claude")), &opts, None)
        .with_context(|| format!("ingesting {}'s Claude Code history", p.name))?;
    let mut out = json!({"claude": source_totals(&p.data_dir, SourceKind::Claude)?});
    if p.name == "alice" {
        agentos_ingest::agent::ingest::<agentos_ingest::source::codex::Codex>(
            &p.data_dir,
            Some(&hist.codex_home),
            &opts,
            None,
        )
        .context("ingesting the Codex session")?;
        agentos_ingest::ingest::ingest_ccc(&p.data_dir, &hist.ccc_root, &opts, None)
            .context("ingesting the CCC root")?;
        out["codex"] = source_totals(&p.data_dir, SourceKind::Codex)?;
        out["ccc"] = source_totals(&p.data_dir, SourceKind::Ccc)?;
    }
    Ok(out)
}

/// Runs one delivery per data dir, all at once, each bounded by [`DELIVERY_TIMEOUT`].
fn deliver_all(people: &[PersonRun]) -> anyhow::Result<Vec<Value>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut settings = Vec::new();
    for p in people {
        settings.push(
            agentos_delivery::Settings::from_config(&p.config)
                .with_context(|| format!("delivery settings of {}", p.name))?,
        );
    }
    rt.block_on(async move {
        let tasks: Vec<_> = settings
            .into_iter()
            .map(|s| {
                tokio::spawn(async move {
                    let mut d = agentos_delivery::Delivery::open(s)?;
                    d.sync(Some(tokio::time::Instant::now() + DELIVERY_TIMEOUT))
                        .await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            let v = match t.await.context("a delivery task panicked")? {
                Ok(r) => json!({
                    "sent": r.sent, "accepted": r.accepted, "not_shared": r.withheld,
                    "caught_up": r.caught_up,
                    "summary": r.summary.map(|s| format!("{s:?}").to_lowercase()),
                }),
                Err(e) => json!({"error": e.to_string()}),
            };
            out.push(v);
        }
        Ok(out)
    })
}

fn print_human(r: &Value) {
    let c = color_stdout();
    println!(
        "{} {}",
        paint("agentos demo in", "1", c),
        r["dir"].as_str().unwrap_or("")
    );
    println!("  collector  {}", r["collector"].as_str().unwrap_or(""));
    println!();
    println!("{}", paint("recorded and delivered", "1;36", c));
    for p in r["people"].as_array().into_iter().flatten() {
        let d = &p["delivery"];
        println!(
            "  {:<6} tier {:<9} {} Claude Code turns via the hook; left: {} events, summary {}",
            p["name"].as_str().unwrap_or(""),
            p["tier"].as_str().unwrap_or(""),
            p["recorded"]["claude_code_turns"],
            d["sent"],
            d["summary"].as_str().unwrap_or("-"),
        );
    }
    let _ = BTreeMap::<(), ()>::new();
}
