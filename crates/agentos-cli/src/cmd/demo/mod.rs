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
    /// Keep the collector running until Ctrl-C (its URL and a sign-in link are printed).
    #[arg(long)]
    pub serve: bool,
    /// Use your own `~/.claude` and `~/.codex` (read only) instead of made-up history: your
    /// latest Claude Code session goes through the hook, all of it is ingested locally.
    #[arg(long)]
    pub real: bool,
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
    let hist = if args.real {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("--real needs HOME")?;
        history::real(&home)?
    } else {
        history::generate(&root, now)?
    };

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
    // An ingest key for the machines, a viewer key for the dashboard.
    let (api_key, key_record) = agentos_collector::auth::generate_key(TENANT, now.as_microsecond())
        .context("making the demo API key")?;
    let (viewer_key, viewer_record) = agentos_collector::auth::generate_key_with_role(
        TENANT,
        agentos_collector::auth::Role::Viewer,
        now.as_microsecond(),
    )
    .context("making the demo viewer key")?;
    let viewer = agentos_collector::auth::Principal {
        tenant: TENANT.into(),
        role: agentos_collector::auth::Role::Viewer,
        key_id: viewer_record.key_id.clone(),
    };

    // The collector, on a free loopback port, over SQLite in the demo dir.
    let coll_dir = root.join("collector");
    std::fs::create_dir_all(&coll_dir)?;
    let database = format!("sqlite:{}", coll_dir.join("collector.db").display());
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut collector = agentos_collector::embedded::Embedded::start(
        &database,
        keyring,
        listen,
        move |store| async move {
            store.insert_key(&key_record).await?;
            store.insert_key(&viewer_record).await
        },
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

    // The team's view, from the collector: today's daily report (what left under `full`), a
    // one-time sign-in link, and a static copy of the overview page.
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date();
    let query = agentos_collector::report::ReportQuery {
        kind: Some("daily".into()),
        since: Some(today.to_string()),
        until: Some(today.to_string()),
        tz: Some("UTC".into()),
        ..Default::default()
    };
    let team = crate::cmd::ccc::report::fetch_report(&url, &api_key, &query)
        .context("fetching the team's daily report from the collector")?;
    let link = sign_in_link(&database, &viewer)?;
    let snapshot = root.join("overview.html");
    let html = overview_page(&url, &viewer_key)?;
    atomic_write(&snapshot, html.as_bytes())?;

    let report = json!({
        "dir": root,
        "kept": args.keep.is_some(),
        "collector": url,
        "team_report": team.report,
        "dashboard": {
            "url": format!("{url}/"),
            "sign_in_link": format!("{url}{link}"),
            "snapshot": snapshot,
        },
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
        print_human(&report, &team.report, args.serve)?;
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

/// A one-time sign-in link for `viewer` (a path), made in the collector's own database.
fn sign_in_link(
    database: &str,
    viewer: &agentos_collector::auth::Principal,
) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let store = agentos_collector::Store::connect(
            database,
            &agentos_collector::StoreOptions::default(),
        )
        .await
        .context("opening the collector database")?;
        let link = agentos_collector::web::create_sign_in_link(
            &store,
            viewer,
            jiff::Timestamp::now().as_microsecond(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("making a sign-in link: {e}"));
        store.close().await;
        link
    })
}

/// The overview page as a signed-in viewer sees it (sign-in over HTTP with the viewer key, as a
/// browser would), for the static snapshot.
fn overview_page(url: &str, viewer_key: &str) -> anyhow::Result<String> {
    use agentos_collector::web::{LOGIN_CSRF_COOKIE, SESSION_COOKIE};
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let cookie_of = |resp: &reqwest::blocking::Response, name: &str| -> Option<String> {
        resp.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
    };
    let form = http.get(format!("{url}/login")).send()?;
    let csrf = cookie_of(&form, LOGIN_CSRF_COOKIE).context("no sign-in cookie")?;
    let signed_in = http
        .post(format!("{url}/login"))
        .header(
            reqwest::header::COOKIE,
            format!("{LOGIN_CSRF_COOKIE}={csrf}"),
        )
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!(
            "key={}&csrf={}&next=%2F",
            agentos_collector::web::url_encode(viewer_key),
            agentos_collector::web::url_encode(&csrf)
        ))
        .send()?;
    let session = cookie_of(&signed_in, SESSION_COOKIE)
        .with_context(|| format!("signing in to the dashboard: {}", signed_in.status()))?;
    let page = http
        .get(format!("{url}/"))
        .header(
            reqwest::header::COOKIE,
            format!("{SESSION_COOKIE}={session}"),
        )
        .send()?;
    anyhow::ensure!(
        page.status().is_success(),
        "the overview page answered {}",
        page.status()
    );
    Ok(page.text()?)
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
        t.add(&r.tokens);
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
    // The first person also holds the Codex sessions and the team's CCC root.
    if hist.people.first().is_some_and(|f| f.name == p.name) {
        if hist.codex_home.join("sessions").is_dir() {
            agentos_ingest::agent::ingest::<agentos_ingest::source::codex::Codex>(
                &p.data_dir,
                Some(&hist.codex_home),
                &opts,
                None,
            )
            .context("ingesting the Codex sessions")?;
            out["codex"] = source_totals(&p.data_dir, SourceKind::Codex)?;
        }
        if let Some(root) = &hist.ccc_root {
            agentos_ingest::ingest::ingest_ccc(&p.data_dir, root, &opts, None)
                .context("ingesting the CCC root")?;
            out["ccc"] = source_totals(&p.data_dir, SourceKind::Ccc)?;
        }
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

fn print_human(
    r: &Value,
    team: &agentos_ingest::report::Report,
    serve: bool,
) -> anyhow::Result<()> {
    let c = color_stdout();
    let bold = |t: &str| paint(t, "1;36", c);
    println!(
        "{} {}",
        paint("agentos demo in", "1", c),
        r["dir"].as_str().unwrap_or("")
    );
    println!();
    println!("{}", bold("recorded on each machine"));
    for p in r["people"].as_array().into_iter().flatten() {
        let i = &p["ingested"];
        let mut line = format!(
            "  {:<6} Claude Code: {} turns today through the hook, {} in the ingested history",
            p["name"].as_str().unwrap_or(""),
            p["recorded"]["claude_code_turns"],
            i["claude"]["turns"],
        );
        if !i["codex"].is_null() {
            line += &format!("; Codex: {} turns", i["codex"]["turns"]);
        }
        if !i["ccc"].is_null() {
            line += &format!("; CCC shim: {} requests", i["ccc"]["turns"]);
        }
        println!("{line}");
    }
    println!();
    println!("{}", bold("what left, per tier"));
    for p in r["people"].as_array().into_iter().flatten() {
        let d = &p["delivery"];
        let what = match p["tier"].as_str().unwrap_or("") {
            "full" => format!(
                "{} events (redacted) to /v1/events, and the summary",
                d["sent"]
            ),
            "minimized" => "only the seven allowlisted summary keys to /v1/metrics".to_string(),
            _ => "nothing".to_string(),
        };
        println!(
            "  {:<6} {:<9} {what}; {} events stayed on the machine",
            p["name"].as_str().unwrap_or(""),
            p["tier"].as_str().unwrap_or(""),
            d["not_shared"],
        );
    }
    println!("  history ingested from logs stays local under every tier");
    println!();
    println!(
        "{}",
        bold("the team's daily report, from the collector (today, UTC)")
    );
    crate::cmd::ccc::report::print_table(team, false, false)?;
    println!();
    println!("{}", bold("dashboard"));
    println!(
        "  snapshot   {}",
        r["dashboard"]["snapshot"].as_str().unwrap_or("")
    );
    if serve {
        println!(
            "  url        {}",
            r["dashboard"]["url"].as_str().unwrap_or("")
        );
        println!(
            "  sign in    {} (once, within 15 minutes)",
            r["dashboard"]["sign_in_link"].as_str().unwrap_or("")
        );
    } else {
        println!(
            "  live       `agentos demo --serve` keeps the collector and its dashboard up, with a sign-in link"
        );
    }
    if r["kept"].as_bool() == Some(true) {
        println!("  files      kept in {}", r["dir"].as_str().unwrap_or(""));
    }
    Ok(())
}
