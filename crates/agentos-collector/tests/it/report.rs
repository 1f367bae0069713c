//! `GET /v1/report` against the CLI's own report code: the same turns as local usage records
//! (what `agentos report` aggregates) and as events posted to a real collector must give the
//! same JSON, field for field, for every kind, zone and range tried here; on SQLite and on
//! PostgreSQL.

use agentos_core::event::{
    Cost, Envelope, EventBody, EventId, InputKind, Session, SessionEvent, SessionId, Turn,
    TurnEvent, TurnId,
};
use agentos_core::privacy::{RedactionPolicy, egress_event};
use agentos_core::tier::Tier;
use agentos_ingest::dedup::DedupKey;
use agentos_ingest::pricing::{PriceTable, Tokens};
use agentos_ingest::record::{RecordSet, UsageRecord};
use agentos_ingest::report::{Filters, ReportKind, ReportOptions, build};
use agentos_ingest::time::{TimeRange, parse_weekday, resolve_zone};
use serde_json::{Value, json};

use crate::common::{Harness, NOW_US, batch};

const MODELS: [&str; 3] = [
    "claude-sonnet-4-20250514",
    "claude-opus-4-1-20250805",
    // Not in the price table: must come out unpriced, never $0.
    "mystery-model-1",
];
const REPOS: [&str; 3] = ["github.com/acme/api", "github.com/acme/web", "infra"];

/// One turn of the shared data set.
#[derive(Debug, Clone)]
pub(crate) struct T {
    pub(crate) ts_us: i64,
    pub(crate) session: usize,
    model: &'static str,
    tokens: Tokens,
}

pub(crate) fn session_id(i: usize) -> String {
    format!("sess-{i:02}")
}

fn repo_of(session: usize) -> &'static str {
    REPOS[session % REPOS.len()]
}

/// ~400 turns over the 30 days before NOW (crossing the end of US daylight saving time on
/// 2026-11-01), bursts with gaps of hours and days so blocks and gaps appear. Whole seconds,
/// like Claude Code timestamps at millisecond precision.
pub(crate) fn turns() -> Vec<T> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    let mut ts = NOW_US - 30 * 86_400_000_000;
    while out.len() < 400 {
        // Mostly minutes apart; sometimes hours; rarely a day or more.
        let gap_s = match next() % 20 {
            0 => 6 * 3600 + next() % 40_000,
            1 => 3600 + next() % 7200,
            _ => 30 + next() % 900,
        };
        ts += i64::try_from(gap_s).expect("small") * 1_000_000;
        if ts >= NOW_US - 60_000_000 {
            break;
        }
        let session = usize::try_from(next() % 6).expect("small");
        let model = MODELS[usize::try_from(next() % 3).expect("small")];
        out.push(T {
            ts_us: ts,
            session,
            model,
            tokens: Tokens {
                input: next() % 5_000,
                output: next() % 2_000,
                cache_creation: next() % 20_000,
                cache_read: next() % 200_000,
            },
        });
    }
    out
}

pub(crate) fn device_of(session: usize) -> &'static str {
    if session < 3 { "dev-a" } else { "dev-b" }
}

fn envelope(seq: u64, ts_us: i64, body: EventBody) -> Value {
    let env = Envelope {
        event_id: EventId(uuid::Uuid::now_v7()),
        seq,
        recorded_at: jiff::Timestamp::from_microsecond(ts_us).expect("valid time"),
        tier: Tier::Full,
        body,
    };
    egress_event(&env, Tier::Full, &RedactionPolicy::default()).expect("full tier may leave")
}

fn session_event(seq: u64, session: usize) -> Value {
    envelope(
        seq,
        NOW_US - 40 * 86_400_000_000,
        EventBody::Session(SessionEvent {
            session: Session {
                session_id: SessionId(session_id(session)),
                repo_id: repo_of(session).into(),
                branch: "main".into(),
                commit: "abc".into(),
                license_id: "lic".into(),
                privacy_tier: Tier::Full,
                created_at: jiff::Timestamp::from_microsecond(NOW_US - 40 * 86_400_000_000)
                    .expect("valid time"),
                metadata: None,
            },
        }),
    )
}

fn turn_event(seq: u64, t: &T, cost: Option<f64>) -> Value {
    envelope(
        seq,
        t.ts_us,
        EventBody::Turn(TurnEvent {
            turn: Turn {
                turn_id: TurnId(format!("t{seq}")),
                session_id: SessionId(session_id(t.session)),
                model: t.model.into(),
                subagent: String::new(),
                tokens_in: t.tokens.input,
                tokens_out: t.tokens.output,
                input_kind: InputKind::Text,
                latency_ms: 1000.0,
                cache_creation_tokens: Some(t.tokens.cache_creation),
                cache_read_tokens: Some(t.tokens.cache_read),
                ..Turn::default()
            },
            cost: cost.map(|usd| Cost {
                provider: "test".into(),
                estimated_usd: usd,
                unit_costs: None,
            }),
            ..TurnEvent::default()
        }),
    )
}

/// Posts every turn (and each session's `session` event, after its turns, so the repository
/// is joined in late) from the session's device.
pub(crate) async fn post_all(h: &Harness, key: &str, data: &[T]) -> anyhow::Result<()> {
    for device in ["dev-a", "dev-b"] {
        let mut events = Vec::new();
        let mut seq = 0u64;
        for t in data.iter().filter(|t| device_of(t.session) == device) {
            seq += 1;
            events.push(turn_event(seq, t, None));
        }
        let sessions: std::collections::BTreeSet<usize> = data.iter().map(|t| t.session).collect();
        for &s in sessions.iter().filter(|s| device_of(**s) == device) {
            seq += 1;
            events.push(session_event(seq, s));
        }
        let (status, r) = h.post_events(key, &batch(device, 1, seq, events)).await?;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["accepted"].as_u64(), Some(seq), "{r}");
    }
    Ok(())
}

/// The same turns as the CLI's local records (project = the session's repository).
fn record_set(data: &[T]) -> RecordSet {
    let mut set = RecordSet::default();
    for (i, t) in data.iter().enumerate() {
        let model = set.strings.intern(t.model);
        let session = set.strings.intern(&session_id(t.session));
        let project = set.strings.intern(repo_of(t.session));
        set.push(UsageRecord {
            key: DedupKey::claude(&format!("m{i}"), &format!("r{i}")),
            ts_ms: t.ts_us / 1000,
            model,
            session,
            project,
            flags: 0,
            tokens: t.tokens,
        });
    }
    set
}

struct Case {
    kind: ReportKind,
    tz: &'static str,
    since: Option<&'static str>,
    until: Option<&'static str>,
    week_start: &'static str,
    group_repo: bool,
    last: Option<usize>,
}

fn case(kind: ReportKind, tz: &'static str) -> Case {
    Case {
        kind,
        tz,
        since: None,
        until: None,
        week_start: "monday",
        group_repo: false,
        last: None,
    }
}

fn cli_report(set: &RecordSet, c: &Case) -> Value {
    let (tz, tz_name) = resolve_zone(Some(c.tz)).expect("zone");
    let o = ReportOptions {
        kind: c.kind,
        range: TimeRange::from_user(c.since, c.until, &tz).expect("range"),
        tz,
        tz_name,
        week_start: parse_weekday(c.week_start).expect("weekday"),
        prices: PriceTable::embedded(),
        now_ms: NOW_US / 1000,
        active_only: false,
        token_limit: None,
        filters: Filters {
            instances: c.group_repo,
            last: c.last,
            ..Filters::default()
        },
    };
    serde_json::to_value(build(set, &o)).expect("json")
}

fn api_path(c: &Case) -> String {
    let mut p = format!(
        "/v1/report?kind={}&tz={}&week_start={}",
        c.kind.as_str(),
        c.tz,
        c.week_start
    );
    for (k, v) in [("since", c.since), ("until", c.until)] {
        if let Some(v) = v {
            p.push_str(&format!("&{k}={v}"));
        }
    }
    if c.group_repo {
        p.push_str("&group=repo");
    }
    if let Some(n) = c.last {
        p.push_str(&format!("&last={n}"));
    }
    p
}

async fn cli_and_api_agree_on_every_report(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let data = turns();
    post_all(h, &key, &data).await?;
    let set = record_set(&data);
    let mut cases = Vec::new();
    for kind in [
        ReportKind::Daily,
        ReportKind::Weekly,
        ReportKind::Monthly,
        ReportKind::Session,
        ReportKind::Blocks,
        ReportKind::Model,
        ReportKind::Repo,
    ] {
        for tz in ["UTC", "America/New_York", "Asia/Kolkata"] {
            cases.push(case(kind, tz));
        }
        cases.push(Case {
            since: Some("2026-11-03"),
            until: Some("2026-11-20"),
            ..case(kind, "Asia/Kolkata")
        });
    }
    cases.push(Case {
        week_start: "sunday",
        ..case(ReportKind::Weekly, "Europe/Berlin")
    });
    cases.push(Case {
        group_repo: true,
        ..case(ReportKind::Daily, "America/New_York")
    });
    cases.push(Case {
        last: Some(3),
        ..case(ReportKind::Blocks, "UTC")
    });
    for c in &cases {
        let path = api_path(c);
        let (status, mut api) = h.get(&path, &key).await?;
        assert_eq!(status, 200, "{path}: {api}");
        let pricing = api
            .as_object_mut()
            .and_then(|o| o.remove("pricing"))
            .expect("pricing block");
        let cli = cli_report(&set, c);
        assert!(
            cli["rows"].as_array().is_some_and(|r| !r.is_empty()),
            "{path}: the case must have rows to compare"
        );
        assert_eq!(api, cli, "{path}: API and CLI differ");
        assert_eq!(
            pricing["unpriced_models"],
            json!(["mystery-model-1"]),
            "{path}: {pricing}"
        );
    }
    // The unpriced model's rows say so; its cost is left out, not counted as 0 silently.
    let (_, m) = h.get("/v1/report?kind=model", &key).await?;
    let glm = m["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["key"] == "mystery-model-1"))
        .expect("glm row");
    assert_eq!(glm["breakdown"][0]["priced"], false, "{glm}");
    Ok(())
}
crate::both_backends!(cli_and_api_agree_on_every_report);

async fn carried_costs_are_kept_and_the_rest_priced(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let t = |model: &'static str, minute: i64| T {
        ts_us: NOW_US - 3_600_000_000 + minute * 60_000_000,
        session: 0,
        model,
        tokens: Tokens {
            input: 1_000_000,
            output: 0,
            cache_creation: 0,
            cache_read: 0,
        },
    };
    let events = vec![
        turn_event(1, &t("mystery-model-1", 0), Some(0.25)),
        turn_event(2, &t("mystery-model-1", 1), Some(0.5)),
        turn_event(3, &t("claude-sonnet-4-20250514", 2), Some(7.0)),
        turn_event(4, &t("claude-sonnet-4-20250514", 3), None),
    ];
    let (s, r) = h.post_events(&key, &batch("d", 1, 4, events)).await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(4)), "{r}");
    let (s, rep) = h.get("/v1/report?kind=model", &key).await?;
    assert_eq!(s, 200, "{rep}");
    let row = |m: &str| {
        rep["rows"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["key"] == m))
            .cloned()
            .expect("row")
    };
    // Every mystery-model turn carried its cost: priced, at exactly what they carried.
    let glm = row("mystery-model-1");
    assert_eq!(glm["cost_usd"].as_f64(), Some(0.75), "{glm}");
    assert_eq!(glm["breakdown"][0]["priced"], true);
    // Sonnet: 7.00 carried + 1M input tokens at the table's $3/M.
    let sonnet = row("claude-sonnet-4-20250514");
    assert_eq!(sonnet["cost_usd"].as_f64(), Some(10.0), "{sonnet}");
    assert_eq!(rep["pricing"]["unpriced_models"], json!([]));
    // /v1/usage carries the same costs per window, additively.
    let (s, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(s, 200, "{u}");
    assert_eq!(
        u["models"]["mystery-model-1"]["rolling_cost_usd"].as_f64(),
        Some(0.75)
    );
    assert_eq!(
        u["models"]["claude-sonnet-4-20250514"]["weekly_cost_usd"].as_f64(),
        Some(10.0)
    );
    // One mystery-model turn without a cost makes its cost unknown: null, never 0.
    let more = vec![turn_event(5, &t("mystery-model-1", 4), None)];
    let (s, _) = h.post_events(&key, &batch("d", 5, 5, more)).await?;
    assert_eq!(s, 200);
    let (_, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(
        u["models"]["mystery-model-1"]["rolling_cost_usd"],
        Value::Null,
        "{u}"
    );
    let (_, rep) = h.get("/v1/report?kind=daily", &key).await?;
    assert_eq!(
        rep["pricing"]["unpriced_models"],
        json!(["mystery-model-1"])
    );
    Ok(())
}
crate::both_backends!(carried_costs_are_kept_and_the_rest_priced);

async fn reports_are_per_tenant_and_bad_queries_say_why(h: &Harness) -> anyhow::Result<()> {
    let a = h.key("tenant-a").await?;
    let b = h.key("tenant-b").await?;
    post_all(h, &a, &turns()).await?;
    for kind in ReportKind::ALL {
        let path = format!("/v1/report?kind={}", kind.as_str());
        let (s, ra) = h.get(&path, &a).await?;
        assert_eq!(s, 200, "{ra}");
        assert!(ra["totals"]["turns"].as_u64() > Some(0), "{path}: {ra}");
        let (s, rb) = h.get(&path, &b).await?;
        assert_eq!(s, 200, "{rb}");
        assert_eq!(
            rb["totals"]["turns"], 0,
            "{path}: tenant B sees A's turns: {rb}"
        );
        assert_eq!(rb["rows"], json!([]), "{path}");
    }
    let (s, _) = h
        .send(reqwest::Method::GET, "/v1/report", None, None, None, None)
        .await?;
    assert_eq!(s, 401);
    for (q, field) in [
        ("kind=hourly", "/kind"),
        ("kind=daily&tz=Mars/Olympus", "/tz"),
        ("kind=daily&since=2026-11-01T10:07:00Z", "/since"),
        ("kind=daily&group=planet", "/group"),
        ("kind=daily&order=sideways", "/order"),
    ] {
        let (s, e) = h.get(&format!("/v1/report?{q}"), &a).await?;
        assert_eq!(s, 422, "{q}: {e}");
        assert_eq!(e["pointer"], field, "{q}: {e}");
    }
    let (s, e) = h.get("/v1/report?kind=daily&colour=red", &a).await?;
    assert_eq!(s, 422, "{e}");
    // Device report: one row per device, with that device's turns.
    let (_, d) = h.get("/v1/report?kind=device", &a).await?;
    let keys: Vec<&str> = d["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["dev-a", "dev-b"], "{d}");
    let data = turns();
    let dev_a = data
        .iter()
        .filter(|t| device_of(t.session) == "dev-a")
        .count();
    assert_eq!(d["rows"][0]["turns"].as_u64(), Some(dev_a as u64));
    // Filters: one repository, one device.
    let (_, f) = h
        .get("/v1/report?kind=model&repo=infra&device=dev-b", &a)
        .await?;
    let want = data
        .iter()
        .filter(|t| repo_of(t.session) == "infra" && device_of(t.session) == "dev-b")
        .count();
    assert_eq!(f["totals"]["turns"].as_u64(), Some(want as u64), "{f}");
    Ok(())
}
crate::both_backends!(reports_are_per_tenant_and_bad_queries_say_why);

/// Events stored before the rollup existed (an upgraded collector) are folded into it when a
/// collector starts, once, and the reports come out as if they had always been there.
async fn events_stored_before_the_rollup_are_folded_in_at_start(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    post_all(h, &key, &turns()).await?;
    let (_, before) = h.get("/v1/report?kind=session", &key).await?;
    // Make the database look like one written before migration 0006 filled anything in.
    let wipe = [
        "DELETE FROM turn_rollup",
        "DELETE FROM turn_rollup_hourly",
        "DELETE FROM report_sessions",
        "DELETE FROM turn_rollup_session",
        "DELETE FROM turn_rollup_daily",
        "UPDATE events SET rolled = NULL",
    ];
    if h.url.starts_with("sqlite:") {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&h.url).await?;
        for q in wipe {
            sqlx::query(q).execute(&mut c).await?;
        }
    } else {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&h.url).await?;
        for q in wipe {
            sqlx::query(q).execute(&mut c).await?;
        }
    }
    let (_, empty) = h.get("/v1/report?kind=session", &key).await?;
    assert_eq!(empty["rows"], json!([]), "the wipe took effect");
    // Two collectors starting at once: each folds a share, nothing twice.
    let opts = agentos_collector::StoreOptions::default();
    let (a, b) = tokio::join!(
        agentos_collector::Store::connect(&h.url, &opts),
        agentos_collector::Store::connect(&h.url, &opts)
    );
    a?.close().await;
    b?.close().await;
    let (_, after) = h.get("/v1/report?kind=session", &key).await?;
    assert_eq!(after, before);
    Ok(())
}
crate::both_backends!(events_stored_before_the_rollup_are_folded_in_at_start);

/// The shared turns, three in four moved to short sessions (a dozen turns each, ids from 06):
/// long sessions active at every range edge and short ones inside, outside and across them.
pub(crate) fn mixed_sessions() -> Vec<T> {
    turns()
        .into_iter()
        .enumerate()
        .map(|(i, mut t)| {
            if i % 4 != 0 {
                t.session = 6 + i / 12;
            }
            t
        })
        .collect()
}

/// RFC 3339 time `minutes` after the first day of the data set (a quarter hour when `minutes`
/// is a multiple of 15).
fn at(minutes: i64) -> &'static str {
    let us = (NOW_US - 30 * 86_400_000_000).div_euclid(86_400_000_000) * 86_400_000_000
        + minutes * 60_000_000;
    jiff::Timestamp::from_microsecond(us)
        .expect("valid time")
        .to_string()
        .leak()
}

/// Which turns a report filter keeps.
type Keep<'a> = &'a dyn Fn(&T) -> bool;

/// The session report reads whole sessions from the per-session rollup and sums the sessions
/// active at a range's edges from the 15-minute rollup: for ranges whose edges cut sessions, in
/// several zones, with and without filters, it equals the CLI's report over the same turns.
async fn session_report_is_exact_at_the_edges_of_a_range(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let data = mixed_sessions();
    post_all(h, &key, &data).await?;
    let ranges: Vec<(Option<&'static str>, Option<&'static str>)> = vec![
        (Some(at(2 * 1440 + 195)), Some(at(9 * 1440 + 1005))),
        (Some(at(11 * 1440 + 45)), Some(at(11 * 1440 + 600))),
        (Some(at(17 * 1440 + 720)), None),
        (None, Some(at(6 * 1440 + 135))),
        (Some("2026-11-03"), Some("2026-11-20")),
        (Some(at(29 * 1440)), Some(at(40 * 1440))),
    ];
    let mut compared = 0;
    for (since, until) in ranges {
        for tz in ["UTC", "Asia/Kolkata"] {
            let c = Case {
                since,
                until,
                ..case(ReportKind::Session, tz)
            };
            let path = api_path(&c);
            // Unfiltered, and filtered by one repository, device and model: each equal to the
            // CLI's report over only the turns the filter keeps.
            let filters: [(&str, Keep); 4] = [
                ("", &|_| true),
                ("&repo=infra", &|t| repo_of(t.session) == "infra"),
                ("&device=dev-a", &|t| device_of(t.session) == "dev-a"),
                ("&model=claude-opus-4-1-20250805", &|t| {
                    t.model == "claude-opus-4-1-20250805"
                }),
            ];
            for (filter, keep) in filters {
                let path = format!("{path}{filter}");
                let (status, mut api) = h.get(&path, &key).await?;
                assert_eq!(status, 200, "{path}: {api}");
                api.as_object_mut().map(|o| o.remove("pricing"));
                let kept: Vec<T> = data.iter().filter(|t| keep(t)).cloned().collect();
                let cli = cli_report(&record_set(&kept), &c);
                assert_eq!(api, cli, "{path}: API and CLI differ");
                compared += cli["rows"].as_array().map_or(0, Vec::len);
            }
        }
    }
    assert!(compared > 100, "the ranges must hold sessions: {compared}");
    Ok(())
}
crate::both_backends!(session_report_is_exact_at_the_edges_of_a_range);

/// `report::top_sessions` (the overview's list) gives the first `n` rows of the session report
/// sorted by cost (ties by id), for every `n`: the database's ranking only picks candidates,
/// including when it must fetch more of them (few fetched for small `n`; all costs tied at zero
/// for an unpriced model) and for sessions cut by the range's edges.
async fn top_sessions_are_the_costliest_rows_of_the_session_report(
    h: &Harness,
) -> anyhow::Result<()> {
    use agentos_collector::report::{ReportQuery, top_sessions};
    let key = h.key("acme").await?;
    post_all(h, &key, &mixed_sessions()).await?;
    let store =
        agentos_collector::Store::connect(&h.url, &agentos_collector::StoreOptions::default())
            .await?;
    let prices = PriceTable::embedded();
    let queries = [
        ReportQuery::default(),
        ReportQuery {
            since: Some(at(3 * 1440 + 615).into()),
            until: Some(at(21 * 1440 + 90).into()),
            ..ReportQuery::default()
        },
        ReportQuery {
            since: Some("2026-11-02".into()),
            until: Some("2026-11-16".into()),
            tz: Some("Asia/Kolkata".into()),
            repo: Some("infra".into()),
            ..ReportQuery::default()
        },
        ReportQuery {
            model: Some("mystery-model-1".into()),
            ..ReportQuery::default()
        },
    ];
    for q in queries {
        let full = agentos_collector::report::run(
            &store,
            "acme",
            &ReportQuery {
                kind: Some("session".into()),
                ..q.clone()
            },
            &prices,
            NOW_US,
        )
        .await?;
        let mut rows = full.report.rows.clone();
        assert!(rows.len() > 5, "{q:?}: {}", rows.len());
        rows.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key)));
        for n in [1, 2, 3, 7, 10, 100] {
            let top = top_sessions(&store, "acme", &q, &prices, NOW_US, n).await?;
            let want: Vec<_> = rows.iter().take(n).cloned().collect();
            assert_eq!(top.rows, want, "{q:?}, n = {n}");
        }
    }
    store.close().await;
    Ok(())
}
crate::both_backends!(top_sessions_are_the_costliest_rows_of_the_session_report);

/// A database migrated before the per-session and daily rollups existed gets them filled from
/// the 15-minute and hourly rollups by migration 0008: the reports are the same before and
/// after.
async fn the_session_rollup_is_filled_in_by_its_migration(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    post_all(h, &key, &mixed_sessions()).await?;
    let path = format!("/v1/report?kind=session&since={}", at(5 * 1440 + 600));
    let (_, before) = h.get(&path, &key).await?;
    assert!(
        before["rows"].as_array().is_some_and(|r| r.len() > 10),
        "{before}"
    );
    // Whole UTC days: read from the daily table.
    let days = "/v1/report?kind=daily&since=2026-10-27&until=2026-11-20";
    let (_, days_before) = h.get(days, &key).await?;
    assert!(
        days_before["rows"].as_array().is_some_and(|r| r.len() > 10),
        "{days_before}"
    );
    // Back to the schema before 0008, then a collector starts and migrates.
    let undo = [
        "DROP TABLE turn_rollup_session",
        "DROP TABLE turn_rollup_daily",
        "DELETE FROM _sqlx_migrations WHERE version = 8",
    ];
    if h.url.starts_with("sqlite:") {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&h.url).await?;
        for q in undo {
            sqlx::query(q).execute(&mut c).await?;
        }
    } else {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&h.url).await?;
        for q in undo {
            sqlx::query(q).execute(&mut c).await?;
        }
    }
    let (status, _) = h.get(&path, &key).await?;
    assert_ne!(status, 200, "the table is gone");
    agentos_collector::Store::connect(&h.url, &agentos_collector::StoreOptions::default())
        .await?
        .close()
        .await;
    let (_, after) = h.get(&path, &key).await?;
    assert_eq!(after, before);
    let (_, days_after) = h.get(days, &key).await?;
    assert_eq!(days_after, days_before);
    Ok(())
}
crate::both_backends!(the_session_rollup_is_filled_in_by_its_migration);

/// `kind=value`: the collector folds the turns that reached it with the same rule as the local
/// `agentos report value` (`agentos_core::attribution`), over a range, for one tenant only.
async fn value_report_folds_attribution_like_the_local_report(h: &Harness) -> anyhow::Result<()> {
    use agentos_core::attribution::Attribution;
    use agentos_core::event::{Feature, FeatureStatus, Measurement};
    let day_us = 86_400_000_000;
    let base = NOW_US - 3 * day_us;
    let mut local_all = Attribution::default();
    let mut local_last_day = Attribution::default();
    let mut events = Vec::new();
    for i in 0..9u64 {
        let ts = base + i64::try_from(i).expect("small") * day_us / 3;
        let shares: Vec<(String, f64)> = match i % 3 {
            0 => vec![("claude-sonnet-4.5".into(), 3.0), ("glm-4.6".into(), 1.0)],
            1 => vec![],
            _ => vec![("claude-opus-4-1".into(), 0.5)],
        };
        let turn = TurnEvent {
            turn: Turn {
                turn_id: TurnId(format!("v{i}")),
                session_id: SessionId(format!("vs-{}", i % 2)),
                model: if i % 2 == 0 {
                    "glm-4.6"
                } else {
                    "claude-sonnet-4.5"
                }
                .into(),
                input_kind: InputKind::Text,
                tokens_in: 10,
                tokens_out: 5,
                attribution: (!shares.is_empty()).then(|| shares.into_iter().collect()),
                ..Turn::default()
            },
            measurement: Some(Measurement {
                cls: 1.0,
                impf: 2.0,
                churn_score: 0.1,
                feature_delta: f64::from(u32::try_from(i % 4).expect("small")),
                errors: None,
                error_count: None,
            }),
            feature: (i % 3 == 0).then(|| Feature {
                feature_id: format!("F-{}", i % 2),
                spec_ref: "spec".into(),
                status: FeatureStatus::Shipped,
                notes: None,
            }),
            ..TurnEvent::default()
        };
        let day = jiff::tz::TimeZone::UTC
            .to_datetime(jiff::Timestamp::from_microsecond(ts)?)
            .date();
        local_all.apply(&turn, day);
        if ts >= NOW_US - day_us - (NOW_US - day_us).rem_euclid(day_us) {
            local_last_day.apply(&turn, day);
        }
        events.push(envelope(i + 1, ts, EventBody::Turn(turn)));
    }
    let key = h.key("acme").await?;
    let (status, r) = h.post_events(&key, &batch("dev-v", 1, 9, events)).await?;
    assert_eq!(status, 200, "{r}");
    let get = |key: String, q: String| async move {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/report?kind=value{q}", h.base))
            .bearer_auth(key)
            .send()
            .await?;
        anyhow::Ok((resp.status().as_u16(), resp.json::<Value>().await?))
    };
    let (status, all) = get(key.clone(), String::new()).await?;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["turns"], 9);
    assert_eq!(all["attribution"], serde_json::to_value(&local_all)?);
    assert!(!local_all.by_feature.is_empty() && !local_all.by_session.is_empty());
    // A range: the UTC day before NOW's day onwards.
    let yesterday = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::from_microsecond(NOW_US - day_us)?)
        .date();
    let (_, ranged) = get(key, format!("&since={yesterday}&tz=UTC")).await?;
    assert_eq!(
        ranged["attribution"],
        serde_json::to_value(&local_last_day)?
    );
    assert!(ranged["turns"].as_u64() < all["turns"].as_u64());
    // Another tenant sees nothing of it.
    let other = h.key("globex").await?;
    let (_, none) = get(other, String::new()).await?;
    assert_eq!(none["turns"], 0);
    Ok(())
}

crate::both_backends!(value_report_folds_attribution_like_the_local_report);

/// Text for one query parameter: anything, or something close to a valid value (so the checks
/// after the first one are reached too).
fn param() -> impl proptest::strategy::Strategy<Value = Option<String>> {
    use proptest::prelude::*;
    proptest::option::of(prop_oneof![
        any::<String>(),
        "(daily|weekly|monthly|session|blocks|model|device|repo|value|)".prop_map(String::from),
        "-?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{1,2}:[0-9]{1,2}(:[0-9]{2})?Z?)?"
            .prop_map(String::from),
        "(UTC|local|Europe/Berlin|America/St_Johns|Asia/Kolkata|Mars/Base|[+-][0-9]{2}:?[0-9]{2})"
            .prop_map(String::from),
        "(repo|model|monday|sunday|desc|asc|claude|codex)".prop_map(String::from),
    ])
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// The report API's whole input is its query: any values give a plan or a 4xx that names
    /// the parameter, never a panic or a 5xx (the fuzz target `report_query` runs the same
    /// check on raw query strings).
    #[test]
    fn any_report_query_plans_or_is_refused_with_a_4xx(
        kind in param(), since in param(), until in param(), tz in param(), group in param(),
        week_start in param(), order in param(),
        last in proptest::option::of(0usize..100_000),
    ) {
        let q = agentos_collector::report::ReportQuery {
            kind, since, until, tz, group, week_start, order, last,
            ..Default::default()
        };
        if let Err(e) = agentos_collector::report::plan(&q, &PriceTable::embedded(), NOW_US) {
            proptest::prop_assert!(e.status().is_client_error(), "{e:?}");
        }
    }
}

/// A device that hands out a seq twice (its log truncated, then written again) is flagged: the
/// second event at that seq is stored but reported in `seq_conflicts`; replays are not.
async fn a_reused_seq_is_flagged(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let t = |i: i64| T {
        ts_us: NOW_US - 3_600_000_000 + i * 1_000_000,
        session: 0,
        model: MODELS[0],
        tokens: Tokens {
            input: 10,
            output: 5,
            ..Tokens::default()
        },
    };
    let first: Vec<Value> = (1..=3).map(|s| turn_event(s, &t(s as i64), None)).collect();
    let (status, r) = h
        .post_events(&key, &batch("dev-r", 1, 3, first.clone()))
        .await?;
    assert_eq!(status, 200, "{r}");
    assert!(r.get("seq_conflicts").is_none(), "{r}");
    // A replay of the same events (same ids): duplicates, no conflict.
    let (_, r) = h.post_events(&key, &batch("dev-r", 1, 3, first)).await?;
    assert_eq!(r["duplicates"], 3);
    assert!(r.get("seq_conflicts").is_none(), "{r}");
    // Seqs 2 and 3 again under new event ids, and a genuinely new seq 4.
    let again: Vec<Value> = (2..=4)
        .map(|s| turn_event(s, &t(10 + s as i64), None))
        .collect();
    let (status, r) = h.post_events(&key, &batch("dev-r", 2, 4, again)).await?;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["accepted"], 3, "stored, not dropped: {r}");
    assert_eq!(r["seq_conflicts"], json!([2, 3]), "{r}");
    assert_eq!(r["watermark"], 4);
    Ok(())
}

crate::both_backends!(a_reused_seq_is_flagged);

/// One vocabulary (issue #11 §3): the spellings of one model are one row and one filter value;
/// sources filter and group by their report names (`claude`, `recorder`, …) on the API and the
/// dashboard; `/v1/usage` merges the spellings too.
async fn sources_and_model_spellings_are_one_vocabulary(h: &Harness) -> anyhow::Result<()> {
    let key = h.key("acme").await?;
    let t = |minute: i64, model: &'static str| T {
        ts_us: NOW_US - 3_600_000_000 + minute * 60_000_000,
        session: 0,
        model,
        tokens: Tokens {
            input: 1000,
            output: 10,
            cache_creation: 0,
            cache_read: 0,
        },
    };
    let mut claude = turn_event(1, &t(0, "claude-sonnet-4-5-20250929"), None);
    claude["turn"]["source"] = json!("claude_code");
    let events = vec![
        claude,
        turn_event(2, &t(1, "claude-sonnet-4.5"), None),
        turn_event(3, &t(2, "sonnet-4.5"), None),
        turn_event(4, &t(3, "mystery-model-1"), None),
    ];
    let (s, r) = h.post_events(&key, &batch("d", 1, 4, events)).await?;
    assert_eq!((s, r["accepted"].as_u64()), (200, Some(4)), "{r}");

    let (s, rep) = h.get("/v1/report?kind=model", &key).await?;
    assert_eq!(s, 200, "{rep}");
    let keys: Vec<(&str, u64)> = rep["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["key"].as_str()?, r["turns"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        keys,
        [("claude-sonnet-4-5-20250929", 3), ("mystery-model-1", 1)],
        "{rep}"
    );
    for spelling in [
        "claude-sonnet-4.5",
        "sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    ] {
        let (_, f) = h
            .get(&format!("/v1/report?kind=daily&model={spelling}"), &key)
            .await?;
        assert_eq!(f["totals"]["turns"].as_u64(), Some(3), "{spelling}: {f}");
    }

    for (source, turns) in [
        ("claude", 1),
        ("claude_code", 1),
        ("recorder", 3),
        ("none", 3),
        ("codex", 0),
        ("otlp", 0),
    ] {
        let (s, f) = h
            .get(&format!("/v1/report?kind=daily&source={source}"), &key)
            .await?;
        assert_eq!(s, 200, "{f}");
        assert_eq!(f["totals"]["turns"].as_u64(), Some(turns), "{source}: {f}");
    }
    let (s, e) = h.get("/v1/report?kind=daily&source=gemini", &key).await?;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["pointer"], "/source", "{e}");

    let (s, g) = h.get("/v1/report?kind=daily&group=source", &key).await?;
    assert_eq!(s, 200, "{g}");
    let by_source: Vec<(&str, u64)> = g["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r["source"].as_str()?, r["turns"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(by_source, [("claude", 1), ("recorder", 3)], "{g}");
    assert_eq!(g["totals"]["turns"].as_u64(), Some(4), "{g}");
    // Per session and per repository too (the per-session rollup keeps the source).
    for kind in ["session", "repo"] {
        let (s, g) = h
            .get(&format!("/v1/report?kind={kind}&group=source"), &key)
            .await?;
        assert_eq!(s, 200, "{g}");
        let mut by: Vec<(&str, u64)> = g["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| Some((r["source"].as_str()?, r["turns"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        by.sort_unstable();
        assert_eq!(by, [("claude", 1), ("recorder", 3)], "{kind}: {g}");
    }

    let (s, u) = h.get("/v1/usage", &key).await?;
    assert_eq!(s, 200, "{u}");
    let models: Vec<&String> = u["models"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        models,
        ["claude-sonnet-4-5-20250929", "mystery-model-1"],
        "{u}"
    );
    assert_eq!(
        u["models"]["claude-sonnet-4-5-20250929"]["reqs"].as_u64(),
        Some(3),
        "{u}"
    );

    // The dashboard: the source picker keeps the report name, and the attribution page's
    // per-source table says the same as `group=source`.
    let viewer =
        crate::dashboard::key_with(h, "acme", agentos_collector::auth::Role::Viewer).await?;
    let cookie = crate::dashboard::sign_in(h, &viewer).await?;
    let (s, html) = crate::dashboard::page(h, &cookie, "/?source=claude_code").await?;
    assert_eq!(s, 200);
    assert!(
        html.contains(r#"<option value="claude" selected>"#),
        "the picker shows `claude` selected"
    );
    let (s, body) =
        crate::dashboard::page(h, &cookie, "/attribution?format=json&table=by-source").await?;
    assert_eq!(s, 200, "{body}");
    let table: Value = serde_json::from_str(&body)?;
    let rows: Vec<(String, String)> = table
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| (r["Source"].to_string(), r["Turns"].to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        rows,
        [
            ("\"claude\"".to_string(), "\"1\"".to_string()),
            ("\"recorder\"".to_string(), "\"3\"".to_string())
        ],
        "{table}"
    );
    Ok(())
}
crate::both_backends!(sources_and_model_spellings_are_one_vocabulary);
