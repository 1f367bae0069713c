//! `agentos ccc sync`: deliver pending events (and, for minimized/full, the summary) once.
//!
//! Exit codes: 0 everything delivered (or withheld by the tier), 1 something is still pending or
//! the collector refused, 2 usage/fatal (bad config, another uploader holds the data dir).

use std::process::ExitCode;
use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, DeliveryError, Settings, SummaryOutcome, status};
use anyhow::Context as _;

use crate::global::GlobalArgs;

/// Arguments of `agentos ccc sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Collector base URL (default: `AGENTOS_CCC_URL`, else `[ccc] url`).
    #[arg(long)]
    pub url: Option<String>,
    /// API key (default: `AGENTOS_CCC_API_KEY`, else `[ccc] api_key`).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Tier in force for this delivery (default: `AGENTOS_TIER`, else `[ccc] tier`, else local).
    /// `DO_NOT_TRACK=1` always wins and forces `local`.
    #[arg(long)]
    pub tier: Option<Tier>,
    /// Give up retrying after this long: `30s`, `500ms`, `2m`, `1h` or plain seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

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
pub fn run(args: Args, g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::session::load_config(g)?;
    let mut settings = Settings::from_config(&cfg).context("resolving delivery settings")?;
    if let Some(url) = args.url {
        settings.url = Some(url);
    }
    if let Some(key) = args.api_key {
        settings.api_key = Some(key);
    }
    if let Some(tier) = args.tier {
        if cfg.do_not_track && tier != Tier::Local {
            tracing::warn!("DO_NOT_TRACK is set: ignoring --tier {tier}, nothing leaves");
        } else {
            settings.tier = tier;
        }
    }
    let tier = settings.tier;
    let data_dir = settings.data_dir.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(async {
        let mut d = Delivery::open(settings)?;
        d.sync(Some(tokio::time::Instant::now() + args.timeout))
            .await
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
    let st = status(&data_dir).context("reading the outbox status")?;
    let complete = refused.is_none()
        && report
            .as_ref()
            .is_some_and(|r| r.caught_up && r.summary.as_ref() != Some(&SummaryOutcome::OutOfTime));

    if args.json {
        let v = serde_json::json!({
            "tier": tier,
            "complete": complete,
            "report": report,
            "error": refused.as_ref().map(|e| serde_json::json!({"code": e.code(), "message": e.to_string()})),
            "pending_events": st.pending_events,
            "pending_bytes": st.pending_bytes,
            "last_error": st.last_error,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if let Some(r) = &report {
            println!(
                "tier {tier}: sent {} events in {} batches ({} new, {} already there), withheld {}, rejected {}, retries {}",
                r.sent, r.batches, r.accepted, r.duplicates, r.withheld, r.rejected, r.retries
            );
            if let Some(reason) = &r.rescan {
                println!("rescanned the log from the start: {reason}");
            }
            if let Some(s) = &r.summary {
                let s = match s {
                    SummaryOutcome::Withheld => "withheld (tier allows no metrics)",
                    SummaryOutcome::NoSummary => "none yet",
                    SummaryOutcome::Unchanged => "unchanged since the last upload",
                    SummaryOutcome::Sent => "sent",
                    SummaryOutcome::OutOfTime => "not sent (out of time)",
                };
                println!("summary: {s}");
            }
        }
        if let Some(e) = &refused {
            eprintln!("agentos: {e}");
        }
        if complete {
            println!("everything is delivered");
        } else {
            println!(
                "{} events ({} bytes) still pending{}",
                st.pending_events,
                st.pending_bytes,
                st.last_error
                    .as_ref()
                    .map(|e| format!("; last error: {} ({})", e.message, e.code))
                    .unwrap_or_default()
            );
        }
    }
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
    use std::process::ExitCode;
    use std::time::Duration;

    use agentos_core::event::{Envelope, EventBody, EventId, TurnEvent};
    use agentos_core::tier::Tier;
    use agentos_test_support::http::{RecordingServer, ServerOptions};

    use super::{Args, run};
    use crate::global::GlobalArgs;

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
            url: Some(url.into()),
            api_key: Some(key.into()),
            tier: Some(Tier::Full),
            timeout: Duration::from_secs(30),
            json: true,
        }
    }

    #[test]
    fn sync_exits_0_when_everything_is_delivered_and_1_when_the_server_refuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        write_log(&data, 25);
        // An empty config file keeps the developer's own agentos.toml out of the test.
        let config = dir.path().join("agentos.toml");
        std::fs::write(&config, "").expect("config");
        let g = GlobalArgs {
            data_dir: Some(data.clone()),
            config: Some(config),
            log: "warn".into(),
        };
        let server = RecordingServer::start_with(ServerOptions {
            api_key: Some("right".into()),
            ..ServerOptions::default()
        })
        .expect("server");

        let refused = run(args(&server.url(), "wrong"), &g).expect("runs");
        assert_eq!(refused, ExitCode::from(1));
        assert_eq!(server.event_count(), 0);

        let ok = run(args(&server.url(), "right"), &g).expect("runs");
        assert_eq!(ok, ExitCode::SUCCESS);
        assert_eq!(server.event_count(), 25);
        let status = agentos_delivery::status(&data).expect("status");
        assert_eq!(status.pending_events, 0);
    }
}
