//! `agentos ccc sync`: deliver pending events (and, for minimized/full, the summary) once.
//!
//! Exit codes: 0 nothing shareable is pending (everything that may leave left; what was recorded
//! under `local`/`minimized` never leaves as events), 3 this run's tier let out all it could but
//! shareable events are held back for a later run, 1 delivery is incomplete (out of time, or the
//! collector refused), 2 usage/fatal (bad config, another uploader still holds the data dir when
//! `--timeout` runs out: a sync waits for a hook's background uploader rather than failing).

use std::time::Duration;

use agentos_delivery::{Delivery, DeliveryError, SummaryOutcome, status};
use anyhow::Context as _;

use crate::context::Context;
use crate::output::{ExitStatus, describe_cap, note, print_json};

/// Arguments of `agentos ccc sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What may leave (shared with `agentos ccc preview`).
    #[command(flatten)]
    pub delivery: crate::flags::DeliveryArgs,
    /// Give up retrying after this long: `30s`, `500ms`, `2m`, `1h` or plain seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Keep running: deliver, then follow the log and deliver what is appended, backing off
    /// while the collector fails; SIGTERM or SIGINT lets the batch in flight finish and exits 0.
    #[arg(long)]
    pub watch: bool,
    /// With `--watch`: how often to look for new events.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// How often a sync waiting for another uploader looks at the lock again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// How long `/v1/usage` may take before the model health is left as it was.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait between attempts while the collector keeps failing (`--watch`).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Parses `500ms`, `30s`, `2m`, `1h` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 30s, 500ms, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a non-negative duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `agentos ccc sync`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let settings = ctx.delivery_settings_with(&args.delivery)?;
    if args.watch {
        return watch(settings, &args);
    }
    let cap_line = describe_cap(&settings);
    let data_dir = settings.data_dir.clone();
    // Asked after delivery so a slow `/v1/usage` never delays the events; never under
    // DO_NOT_TRACK (even a GET tells the server someone is working).
    let health_from = (!settings.do_not_track)
        .then(|| settings.url.clone().map(|u| (u, settings.api_key.clone())))
        .flatten();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + args.timeout;
        // A hook's or a session end's background uploader may hold the lock for a moment:
        // wait for it (within the timeout) instead of failing a sync the user asked for.
        let mut d = loop {
            match Delivery::open(settings.clone()) {
                Err(DeliveryError::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                opened => break opened?,
            }
        };
        d.sync(Some(deadline)).await
    });
    let (report, refused) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e @ (DeliveryError::Refused { .. } | DeliveryError::SummaryRejected { .. })) => {
            (None, Some(e))
        }
        Err(e) => {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("delivering from {}", data_dir.display()));
        }
    };
    let health = health_from.map(|(url, key)| {
        match agentos_ingest::source::usage_snapshot::refresh_model_health(
            &data_dir,
            &url,
            key.as_deref(),
            HEALTH_TIMEOUT,
        ) {
            Ok(true) => "refreshed".to_string(),
            Ok(false) => "fresh".to_string(),
            Err(e) => format!("not refreshed: {e}"),
        }
    });
    let st = status(&data_dir).context("reading the outbox status")?;
    let complete = refused.is_none()
        && report
            .as_ref()
            .is_some_and(|r| r.caught_up && r.summary.as_ref() != Some(&SummaryOutcome::OutOfTime));
    let held = st.held_events;
    let outcome = if !complete {
        "incomplete"
    } else if held > 0 {
        "held_back"
    } else {
        "delivered"
    };

    if args.json {
        let v = serde_json::json!({
            "tier": report.as_ref().map(|r| r.cap),
            "outcome": outcome,
            "complete": complete,
            "report": report,
            "error": refused.as_ref().map(|e| serde_json::json!({"code": e.code(), "message": e.to_string()})),
            "pending_events": st.pending_events,
            "pending_bytes": st.pending_bytes,
            "held_events": held,
            "forgotten_events": st.forgotten_events,
            "last_error": st.last_error,
            "model_health": health,
        });
        print_json(&v)?;
    } else {
        println!("{cap_line}");
        if let Some(r) = &report {
            println!(
                "sent:        {} events in {} batches ({} new, {} already there{})",
                r.sent,
                r.batches,
                r.accepted,
                r.duplicates,
                if r.replayed > 0 {
                    format!("; {} held back earlier", r.replayed)
                } else {
                    String::new()
                }
            );
            println!("held back:   {} now, {} in all", r.held, r.held_pending);
            println!("forgotten:   {}", r.forgotten);
            println!("rejected:    {}", r.rejected);
            println!(
                "not shared:  {} (recorded under local or minimized), retries {}",
                r.withheld, r.retries
            );
            if let Some(reason) = &r.rescan {
                println!("rescanned the log from the start: {reason}");
            }
            if let Some(s) = &r.summary {
                let s = match s {
                    SummaryOutcome::Withheld => "withheld (the tier allows no metrics)",
                    SummaryOutcome::NoSummary => "none yet",
                    SummaryOutcome::Unchanged => "unchanged since the last upload",
                    SummaryOutcome::Sent => "sent",
                    SummaryOutcome::OutOfTime => "not sent (out of time)",
                };
                println!("summary:     {s}");
            }
        }
        if let Some(h) = &health {
            println!("model health: {h}");
        }
        if let Some(e) = &refused {
            note(&e.to_string());
        }
        match outcome {
            "delivered" => println!("everything shareable is delivered"),
            "held_back" => println!(
                "{held} events are held back and still pending: a sync whose tier allows them sends them \
                 (`agentos ccc outbox forget --below full --yes` drops them for good)"
            ),
            _ => println!(
                "{} events ({} bytes) still pending{}",
                st.pending_events + held,
                st.pending_bytes,
                st.last_error
                    .as_ref()
                    .map(|e| format!("; last error: {} ({})", e.message, e.code))
                    .unwrap_or_default()
            ),
        }
    }
    Ok(match outcome {
        "delivered" => ExitStatus::Ok,
        "held_back" => ExitStatus::HeldBack,
        _ => ExitStatus::Pending,
    })
}

/// `--watch`: one uploader that follows the log until SIGTERM/SIGINT. It holds the uploader
/// lock the whole time, so hooks that start a background sync see it running and leave it be.
fn watch(settings: agentos_delivery::Settings, args: &Args) -> anyhow::Result<ExitStatus> {
    let log = agentos_config::DataDir::new(&settings.data_dir).windows();
    note(&format!(
        "{}; watching {} (every {:?})",
        describe_cap(&settings),
        log.display(),
        args.interval
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (stop, stopped) = (stop.clone(), stopped.clone());
            tokio::spawn(async move {
                wait_for_signal().await;
                stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                // notify_one keeps a permit, so a signal during a sync is not missed.
                stop.notify_one();
            });
        }
        let mut d = Delivery::open(settings)?;
        let mut delivered_len = None;
        let mut backoff = args.interval;
        let mut failing = false;
        loop {
            let len = std::fs::metadata(&log).map(|m| m.len()).ok();
            if failing || len != delivered_len {
                let r = d
                    .sync(Some(tokio::time::Instant::now() + args.timeout))
                    .await;
                match r {
                    Ok(r) if r.caught_up => {
                        if r.sent > 0 {
                            note(&format!("sent {} events ({} new)", r.sent, r.accepted));
                        }
                        delivered_len = len;
                        failing = false;
                        backoff = args.interval;
                    }
                    Ok(_) => {
                        failing = true;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    Err(e) => {
                        note(&format!("delivery failed ({e}); retrying in {backoff:?}"));
                        failing = true;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let wait = if failing { backoff } else { args.interval };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.notified() => break,
            }
        }
        note("stopped; the cursor is saved");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitStatus::Ok)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}

#[cfg(test)]
mod cli_tests {
    use std::io::Write as _;
    use std::time::Duration;

    use agentos_core::event::{Envelope, EventBody, EventId, TurnEvent};
    use agentos_core::tier::Tier;
    use agentos_test_support::http::{RecordingServer, ServerOptions};

    use super::{Args, run};
    use crate::context::{Context, GlobalArgs};
    use crate::output::ExitStatus;

    fn write_log(dir: &std::path::Path, n: u64) {
        std::fs::create_dir_all(dir).expect("data dir");
        let mut f = std::fs::File::create(dir.join("windows.jsonl")).expect("log");
        for seq in 1..=n {
            let env = Envelope {
                event_id: uuid_v7(),
                seq,
                recorded_at: jiff::Timestamp::now(),
                tier: Tier::Full,
                body: EventBody::Turn(TurnEvent::default()),
            };
            serde_json::to_writer(&mut f, &env).expect("json");
            f.write_all(b"\n").expect("newline");
        }
    }

    fn uuid_v7() -> agentos_core::event::EventId {
        // The CLI crate has no uuid dependency; round-trip one through serde instead.
        let text = format!(
            "\"0190a0a0-0000-7000-8000-{:012x}\"",
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        serde_json::from_str::<EventId>(&text).expect("uuid")
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

    fn args(url: &str, key: &str) -> Args {
        Args {
            delivery: crate::flags::DeliveryArgs {
                url: Some(url.into()),
                api_key: Some(key.into()),
                tier: Some(Tier::Full),
            },
            timeout: Duration::from_secs(30),
            json: true,
            watch: false,
            interval: Duration::from_secs(2),
        }
    }

    /// A config file whose license (signed with a key made here) grants every tier; it also
    /// keeps the developer's own agentos.toml out of the test.
    fn licensed_config(dir: &std::path::Path) -> std::path::PathBuf {
        use agentos_core::license;
        let key = agentos_config::license::generate_signing_key().expect("key");
        let claims = license::Claims {
            device: None,
            exp: 4_000_000_000,
            features: ["telemetry_minimized", "telemetry_full"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            iat: None,
            kid: "k1".into(),
            nonce: None,
            plan: license::Plan::Pro,
            schema: license::LICENSE_SCHEMA.into(),
            sub: Some("lic-test".into()),
        };
        let pack = dir.join("pack.json");
        std::fs::write(&pack, license::issue_pack(&key, &claims)).expect("pack");
        let config = dir.join("agentos.toml");
        std::fs::write(
            &config,
            format!(
                "[license]\npack = {:?}\n[license.pubkeys]\nk1 = {:?}\n",
                pack.display().to_string(),
                license::public_key_base64(&key.verifying_key())
            ),
        )
        .expect("config");
        config
    }

    #[test]
    fn a_lower_tier_holds_back_with_exit_3_and_no_tier_then_delivers_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        write_log(&data, 13);
        let ctx = Context::new(GlobalArgs {
            data_dir: Some(data.clone()),
            config: Some(licensed_config(dir.path())),
            log: "warn".into(),
        });
        let server = RecordingServer::start().expect("server");
        let mut a = args(&server.url(), "k");
        a.delivery.tier = Some(Tier::Minimized);
        assert_eq!(run(a, &ctx).expect("runs"), ExitStatus::HeldBack);
        assert_eq!(server.event_count(), 0);
        assert_eq!(
            agentos_delivery::status(&data).expect("status").held_events,
            13
        );
        // The README's `agentos ccc sync` with no tier anywhere: each event's recorded tier.
        let mut a = args(&server.url(), "k");
        a.delivery.tier = None;
        assert_eq!(run(a, &ctx).expect("runs"), ExitStatus::Ok);
        assert_eq!(server.event_count(), 13);
    }

    #[test]
    fn sync_exits_0_when_everything_is_delivered_and_1_when_the_server_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        write_log(&data, 25);
        let config = licensed_config(dir.path());
        let ctx = Context::new(GlobalArgs {
            data_dir: Some(data.clone()),
            config: Some(config),
            log: "warn".into(),
        });
        let server = RecordingServer::start_with(ServerOptions {
            api_key: Some("right".into()),
            ..ServerOptions::default()
        })
        .expect("server");

        let refused = run(args(&server.url(), "wrong"), &ctx).expect("runs");
        assert_eq!(refused, ExitStatus::Pending);
        assert_eq!(server.event_count(), 0);

        let ok = run(args(&server.url(), "right"), &ctx).expect("runs");
        assert_eq!(ok, ExitStatus::Ok);
        assert_eq!(server.event_count(), 25);
        let status = agentos_delivery::status(&data).expect("status");
        assert_eq!(status.pending_events, 0);
    }
}
