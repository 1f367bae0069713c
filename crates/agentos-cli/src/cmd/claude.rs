//! `agentos claude install|uninstall|status|hook`: Claude Code wired in. The logic lives in the
//! `agentos-claude` crate; this file parses flags, bounds the hook's time and prints.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentos_claude::settings::{self, Commands, Scope};
use agentos_claude::status::{self, HookRun, Outcome};
use agentos_claude::{HookEvent, HookInput, HookOptions};
use agentos_core::tier::Egress;
use anyhow::Context as _;

use crate::context::Context;
use crate::output::{ExitStatus, note, print_json};

/// The hook returns to Claude Code within this, whatever happens.
const HARD_BOUND: Duration = Duration::from_millis(200);
/// Transcript reading stops here; the rest waits for the next hook.
const SOFT_BOUND: Duration = Duration::from_millis(80);
/// Recording turns stops here, leaving room to save the cursor and the status.
const WRITE_BOUND: Duration = Duration::from_millis(150);
/// "No bound" for a detached continuation (a day: long enough for any backlog).
const UNBOUNDED: Duration = Duration::from_secs(24 * 3600);
/// Hook stdin larger than this is not hook JSON.
const MAX_INPUT: u64 = 1 << 20;

/// Subcommands of `agentos claude`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add the agentos hooks (and optionally the statusline) to Claude Code's settings.
    Install(InstallArgs),
    /// Remove exactly what `install` added.
    Uninstall(ScopeArgs),
    /// What is installed, where, and how the last hook run went.
    Status(StatusArgs),
    /// The command Claude Code's hooks run (reads the hook JSON on stdin; always exits 0).
    Hook(HookArgs),
}

/// Arguments of `agentos claude hook` (none for Claude Code; the hidden ones are for the
/// continuation a hook starts when a SessionEnd has more work than its time bound allows).
#[derive(Debug, clap::Args)]
pub struct HookArgs {
    /// Read the hook JSON from this file (deleted when done) instead of stdin.
    #[arg(long, hide = true)]
    pub input: Option<PathBuf>,
    /// No time bound (a detached continuation nobody waits for).
    #[arg(long, hide = true)]
    pub unbounded: bool,
}

/// Which settings file.
#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`); the default.
    #[arg(long, conflicts_with_all = ["project", "settings"])]
    pub user: bool,
    /// `.claude/settings.json` of the current directory.
    #[arg(long, conflicts_with = "settings")]
    pub project: bool,
    /// This settings file.
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// Print the diff, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `agentos claude install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Which file, `--dry-run`.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Also set `statusLine` to `agentos statusline`.
    #[arg(long)]
    pub statusline: bool,
}

/// Arguments of `agentos claude status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `agentos claude`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    match cmd {
        Command::Install(a) => install(a, ctx),
        Command::Uninstall(a) => uninstall(a),
        Command::Status(a) => show_status(a, ctx),
        Command::Hook(a) => Ok(hook(a, ctx)),
    }
}

fn settings_file(a: &ScopeArgs) -> anyhow::Result<(Scope, PathBuf)> {
    if let Some(p) = &a.settings {
        return Ok((Scope::User, p.clone()));
    }
    let scope = if a.project {
        Scope::Project
    } else {
        Scope::User
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let env = std::env::var("CLAUDE_CONFIG_DIR").ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = settings::settings_path(scope, &cwd, env.as_deref(), home.as_deref())
        .context("no home directory: give --settings FILE")?;
    Ok((scope, path))
}

fn apply_plan(plan: &settings::Plan, dry_run: bool, verb: &str) -> anyhow::Result<()> {
    if !plan.changed {
        println!("{}: nothing to {verb}", plan.path.display());
        return Ok(());
    }
    if dry_run {
        print!("{}", plan.diff());
        return Ok(());
    }
    let backup = settings::apply(plan)?;
    println!("{verb}ed: {}", plan.path.display());
    if let Some(b) = backup {
        note(&format!("previous version kept as {}", b.display()));
    }
    Ok(())
}

fn install(a: InstallArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let (_, path) = settings_file(&a.scope)?;
    let exe = std::env::current_exe().context("locating the agentos binary")?;
    let cmds = Commands::for_exe(&exe, &ctx.global_flag_args(), a.statusline);
    let plan = settings::plan_install(&path, &cmds)?;
    apply_plan(&plan, a.scope.dry_run, "install")?;
    Ok(ExitStatus::Ok)
}

fn uninstall(a: ScopeArgs) -> anyhow::Result<ExitStatus> {
    let (_, path) = settings_file(&a)?;
    let plan = settings::plan_uninstall(&path)?;
    apply_plan(&plan, a.dry_run, "uninstall")?;
    Ok(ExitStatus::Ok)
}

fn show_status(a: StatusArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let env = std::env::var("CLAUDE_CONFIG_DIR").ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut places = Vec::new();
    for scope in [Scope::User, Scope::Project] {
        let Some(path) = settings::settings_path(scope, &cwd, env.as_deref(), home.as_deref())
        else {
            continue;
        };
        let found = settings::installed(&path);
        places.push((scope, path, found));
    }
    let data_dir = ctx.data_dir()?.to_path_buf();
    let st = status::read(&data_dir);
    let writable = probe_writable(&data_dir);
    if a.json {
        let places: Vec<_> = places
            .iter()
            .map(|(scope, path, found)| match found {
                Ok(i) => serde_json::json!({
                    "scope": scope.as_str(), "settings": path,
                    "hooks": i.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                    "statusline": i.statusline,
                }),
                Err(e) => serde_json::json!({
                    "scope": scope.as_str(), "settings": path, "error": e.to_string(),
                }),
            })
            .collect();
        print_json(&serde_json::json!({
            "installed": places,
            "data_dir": data_dir,
            "data_dir_writable": writable.is_ok(),
            "data_dir_problem": writable.as_ref().err().map(ToString::to_string),
            "last_hook": st.last,
            "last_error": st.last_error,
            "errors_total": st.errors_total,
        }))?;
        return Ok(ExitStatus::Ok);
    }
    for (scope, path, found) in &places {
        match found {
            Ok(i) if i.events.is_empty() && !i.statusline => {
                println!("{} ({}): not installed", scope.as_str(), path.display());
            }
            Ok(i) => println!(
                "{} ({}): hooks {}{}",
                scope.as_str(),
                path.display(),
                i.events
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if i.statusline { "; statusline" } else { "" }
            ),
            Err(e) => println!("{} ({}): unreadable: {e}", scope.as_str(), path.display()),
        }
    }
    println!("data dir: {}", data_dir.display());
    if let Err(e) = &writable {
        println!("PROBLEM: the data dir is not writable ({e}); hooks cannot record anything");
    }
    match &st.last {
        Some(r) => println!("last hook: {}", describe_run(r)),
        None => println!("last hook: never ran"),
    }
    if let Some(r) = &st.last_error {
        println!(
            "last error: {} ({} error(s) in total; details in {})",
            describe_run(r),
            st.errors_total,
            agentos_config::DataDir::new(&data_dir)
                .claude_hook_log()
                .display()
        );
    }
    Ok(ExitStatus::Ok)
}

fn describe_run(r: &HookRun) -> String {
    let outcome = match r.outcome {
        Outcome::Ok => "ok",
        Outcome::Partial => "partial (the next hook continues)",
        Outcome::Error => "ERROR",
        Outcome::TimedOut => "TIMED OUT",
    };
    let mut s = format!(
        "{} {} session {} {outcome}, {} turn(s), {} ms",
        r.at,
        r.event.as_str(),
        r.session_id,
        r.turns_recorded,
        r.elapsed_ms
    );
    if let Some(e) = &r.error {
        s.push_str(&format!(": {e}"));
    }
    s
}

fn probe_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".agentos-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// The hook: never fails Claude Code. Always exit 0, nothing on stdout, back within
/// [`HARD_BOUND`]; errors go to the hook status and log (`agentos claude status`).
fn hook(a: HookArgs, ctx: &Context) -> ExitStatus {
    let started = Instant::now();
    // A continuation has all the time it needs; nobody waits for it.
    let (soft, write, hard) = if a.unbounded {
        (UNBOUNDED, UNBOUNDED, UNBOUNDED)
    } else {
        (SOFT_BOUND, WRITE_BOUND, HARD_BOUND)
    };
    let config = match ctx.config() {
        Ok(c) => c.clone(),
        Err(e) => {
            eprintln!("agentos claude hook: {e:#}");
            return ExitStatus::Ok;
        }
    };
    let prices = ctx
        .ingest()
        .and_then(|s| s.prices(None))
        .unwrap_or_else(|_| agentos_ingest::PriceTable::embedded());
    let data_dir = config.data_dir.clone();
    let spawn_args = ctx.global_flag_args();
    let (tx, rx) = std::sync::mpsc::channel();
    let (payload_tx, payload_rx) = std::sync::mpsc::channel::<(HookInput, Vec<u8>)>();
    let worker_dir = data_dir.clone();
    let worker_args = spawn_args.clone();
    // The work runs on a thread so the main thread can walk away at the hard bound; being cut
    // off at any point is safe (see agentos_claude::hook).
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = match &a.input {
            Some(p) => {
                std::fs::File::open(p).and_then(|f| f.take(MAX_INPUT).read_to_end(&mut bytes))
            }
            None => std::io::stdin().take(MAX_INPUT).read_to_end(&mut bytes),
        }
        .map_err(|e| format!("reading the hook input: {e}"));
        let input =
            read.and_then(|_| HookInput::parse(&bytes).map_err(|e| format!("{e} [{}]", e.code())));
        let (event, session_id) = match &input {
            Ok(i) => (i.hook_event_name, i.session_id.clone()),
            Err(_) => (HookEvent::Other, String::new()),
        };
        if let Ok(i) = &input {
            let _ = payload_tx.send((i.clone(), bytes.clone()));
        }
        let opts = HookOptions {
            deadline: started + soft,
            write_deadline: started + write,
            prices,
        };
        let result = input.and_then(|i| {
            agentos_claude::handle(&i, &config, &opts)
                .map(|r| (i, r))
                .map_err(|e| format!("{e} [{}]", e.code()))
        });
        let (outcome, turns, error) = match &result {
            Ok((_, r)) if r.more => (Outcome::Partial, r.turns_recorded, None),
            Ok((_, r)) => (Outcome::Ok, r.turns_recorded, None),
            Err(e) => (Outcome::Error, 0, Some(e.clone())),
        };
        status::record(
            &worker_dir,
            &HookRun {
                at: jiff::Timestamp::now(),
                event,
                session_id,
                outcome,
                turns_recorded: turns,
                elapsed_ms: started.elapsed().as_millis() as u64,
                error,
            },
        );
        if let Ok((input, report)) = &result {
            if report.more && input.hook_event_name == HookEvent::SessionEnd && !a.unbounded {
                continue_detached(&config.data_dir, input, &bytes, &worker_args);
            }
            maybe_start_upload(&config, input, report, &worker_args);
        }
        if let Some(p) = &a.input
            && !result.as_ref().is_ok_and(|(_, r)| r.more)
        {
            let _ = std::fs::remove_file(p);
        }
        let _ = tx.send(());
    });
    if rx
        .recv_timeout(hard.saturating_sub(started.elapsed()))
        .is_err()
    {
        let payload = payload_rx.try_recv().ok();
        if let Some((input, bytes)) = &payload
            && input.hook_event_name == HookEvent::SessionEnd
            && !a.unbounded
        {
            // Cut off mid-work: the session still has to end, and no hook will come for it.
            continue_detached(&data_dir, input, bytes, &spawn_args);
        }
        status::record(
            &data_dir,
            &HookRun {
                at: jiff::Timestamp::now(),
                event: payload
                    .as_ref()
                    .map_or(HookEvent::Other, |(i, _)| i.hook_event_name),
                session_id: payload.map(|(i, _)| i.session_id).unwrap_or_default(),
                outcome: Outcome::TimedOut,
                turns_recorded: 0,
                elapsed_ms: started.elapsed().as_millis() as u64,
                error: Some(format!(
                    "the hook did not finish within {} ms; the next hook catches up",
                    HARD_BOUND.as_millis()
                )),
            },
        );
    }
    ExitStatus::Ok
}

/// No SessionEnd follows a SessionEnd: when one has more transcript left than its time bound
/// allows, a detached, unbounded `agentos claude hook` finishes it (the turns, then
/// `session_end`) from a copy of the payload beside the session's cursor.
fn continue_detached(data_dir: &Path, input: &HookInput, payload: &[u8], global_args: &[String]) {
    let file = agentos_claude::cursor::paths(data_dir, &input.session_id).end_payload;
    if agentos_config::atomic_write(&file, payload).is_err() {
        return;
    }
    let path = file.display().to_string();
    let _ = crate::context::spawn_detached(
        global_args,
        &["claude", "hook", "--unbounded", "--input", &path],
    );
}

/// Starts one detached `agentos ccc sync` when something may leave and a collector is
/// configured: after a session ends (the summary, and the events under `full`), or after turns
/// under `full`. The uploader lock makes a second one exit at once, so at most one runs per data
/// dir; the hook itself never waits on the network.
fn maybe_start_upload(
    config: &agentos_config::Config,
    input: &HookInput,
    report: &agentos_claude::HookReport,
    global_args: &[String],
) {
    let Some(tier) = report.tier else { return };
    if config.ccc.url.is_none() {
        return;
    }
    let wanted = (report.ended && tier.allows(Egress::Metrics))
        || (report.turns_recorded > 0 && tier.allows(Egress::Events));
    if !wanted || input.hook_event_name == HookEvent::Other {
        return;
    }
    let _ = crate::context::spawn_background_sync(global_args, &config.data_dir);
}
