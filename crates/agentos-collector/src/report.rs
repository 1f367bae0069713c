//! `GET /v1/report`: the CLI's reports over a tenant's stored turns.
//!
//! One definition of every figure: the rows come from `agentos_ingest::report`'s aggregator, the
//! same code `agentos report` runs over local records, fed with rollup buckets
//! ([`crate::store::BucketQuery`]) instead of records. The database groups; the aggregator only
//! folds groups into rows, so a report never holds a tenant's turns in memory.
//!
//! Cost: a turn that carried a `cost` payload keeps its cost; the others are priced from the
//! offline price table (`agentos_ingest::pricing`, its version in the answer). A model the table
//! does not know is listed under `pricing.unpriced_models` and its breakdown says
//! `"priced": false`: its cost is unknown, not zero.

use agentos_core::source::Source;
use agentos_ingest::pricing::{PriceTable, Tokens};
use agentos_ingest::record::StringTable;
use agentos_ingest::report::{Aggregator, Bucket, Filters, Report, ReportKind, ReportOptions};
use agentos_ingest::time::{TimeRange, parse_weekday, resolve_zone};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::store::{BUCKET_US, BucketQuery, BucketRow, HOUR_US, Store};

/// The query string of `/v1/report` (and of the dashboard's pages).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `daily`, `weekly`, `monthly`, `session`, `blocks`, `model`, `device` or `repo`.
    pub kind: Option<String>,
    /// First day (`YYYY-MM-DD`, in `tz`) or an RFC 3339 time on a quarter hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Last day, inclusive, or an RFC 3339 time on a quarter hour (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// IANA time zone of the calendar buckets (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// `repo`: one row per period and repository; `source`: one row per period and source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Only turns of this source: `claude`, `codex`, `ccc`, `otlp` or `recorder` (turns recorded
    /// without a source); `claude_code` and `none` are accepted for the first and the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Only this repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Only this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Only this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Weekly report: first day of the week (default monday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub week_start: Option<String>,
    /// `desc`: newest row first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Only the newest N rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<usize>,
}

/// Which price table priced a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingInfo {
    /// Fingerprint of the table (first 12 hex digits of SHA-256 over its entries): two answers
    /// with the same version priced turns alike.
    pub version: String,
    /// Models with turns in the report that the table does not price (and whose turns did not
    /// all carry a cost): their cost is unknown and left out of every sum.
    pub unpriced_models: Vec<String>,
}

/// The answer of `/v1/report`: the CLI's report JSON plus the pricing it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportResponse {
    /// The report, field for field as `agentos report … --json` prints it.
    #[serde(flatten)]
    pub report: Report,
    /// The price table and what it could not price.
    pub pricing: PricingInfo,
}

/// Fingerprint of a price table.
pub fn prices_version(prices: &PriceTable) -> String {
    let digest = Sha256::digest(format!("{prices:?}").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// True when `tz`'s offset is a whole number of hours throughout `range` (an open end: three
/// years back, a day ahead of now). Sampled twice a day: no zone keeps a fractional offset for
/// less than a day.
fn whole_hour_offsets(tz: &jiff::tz::TimeZone, range: TimeRange, now_us: i64) -> bool {
    const HALF_DAY_MS: i64 = 43_200_000;
    let now_ms = now_us.div_euclid(1000);
    let from = range.since.unwrap_or(now_ms - 3 * 366 * 2 * HALF_DAY_MS);
    let to = range.until.unwrap_or(now_ms + 2 * HALF_DAY_MS);
    let mut t = from;
    while t <= to {
        if agentos_ingest::time::offset_seconds(tz, t).rem_euclid(3600) != 0 {
            return false;
        }
        t += HALF_DAY_MS;
    }
    agentos_ingest::time::offset_seconds(tz, to).rem_euclid(3600) == 0
}

/// The resolved form of a [`ReportQuery`].
pub struct Plan {
    /// Aggregator options.
    pub options: ReportOptions,
    /// The rollup query.
    pub buckets: BucketQuery,
}

fn bad(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::invalid(format!("/{field}"), msg.into())
}

/// Checks a query and turns it into aggregator options and a rollup query.
///
/// # Errors
/// 422 naming the parameter: unknown kind, zone or weekday, a range not on a quarter hour.
pub fn plan(q: &ReportQuery, prices: &PriceTable, now_us: i64) -> Result<Plan, ApiError> {
    let kind_name = q.kind.as_deref().unwrap_or("daily");
    let kind = ReportKind::parse(kind_name).ok_or_else(|| {
        bad(
            "kind",
            format!(
                "unknown report kind `{kind_name}` (daily, weekly, monthly, session, blocks, model, device, repo, value)"
            ),
        )
    })?;
    let (tz, tz_name) = resolve_zone(Some(q.tz.as_deref().unwrap_or("UTC")))
        .map_err(|e| bad("tz", e.to_string()))?;
    let range = TimeRange::from_user(q.since.as_deref(), q.until.as_deref(), &tz)
        .map_err(|e| bad("since", e))?;
    for (name, v) in [("since", range.since), ("until", range.until)] {
        if v.is_some_and(|ms| (ms * 1000).rem_euclid(BUCKET_US) != 0) {
            return Err(bad(
                name,
                "must be a day or a time on a quarter hour (the server keeps 15-minute totals)",
            ));
        }
    }
    let week_start = parse_weekday(q.week_start.as_deref().unwrap_or("monday"))
        .map_err(|e| bad("week_start", e.to_string()))?;
    let (instances, by_source) = match q.group.as_deref() {
        None | Some("") => (false, false),
        Some("repo") => (true, false),
        Some("source") => (false, true),
        Some(other) => {
            return Err(bad(
                "group",
                format!(
                    "unknown grouping `{other}` (repo or source; use kind=device or kind=model for those)"
                ),
            ));
        }
    };
    // The report vocabulary (`claude`, `codex`, `ccc`, `otlp`, `recorder`; `claude_code` and
    // `none` still accepted), stored under each turn's `turn.source` wire value.
    let source = match q.source.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<Source>()
                .map_err(|e| bad("source", e.to_string()))?
                .turn_wire()
                .to_string(),
        ),
    };
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(bad("order", format!("`{other}` is not asc or desc"))),
    };
    let utc = tz_name == "UTC";
    let grain = match kind {
        // A UTC day is whole 15-minute buckets and whole days of them: group by day.
        ReportKind::Daily | ReportKind::Weekly | ReportKind::Monthly if utc => Some(86_400_000_000),
        // Whole-hour offsets (most zones): hours; otherwise (e.g. +05:30) quarter hours.
        ReportKind::Daily | ReportKind::Weekly | ReportKind::Monthly
            if whole_hour_offsets(&tz, range, now_us) =>
        {
            Some(HOUR_US)
        }
        ReportKind::Daily | ReportKind::Weekly | ReportKind::Monthly => Some(BUCKET_US),
        ReportKind::Blocks => Some(HOUR_US),
        ReportKind::Session | ReportKind::Model | ReportKind::Device | ReportKind::Repo => None,
    };
    let buckets = BucketQuery {
        since_us: range.since.map(|ms| ms * 1000),
        until_us: range.until.map(|ms| ms * 1000),
        grain_us: grain,
        by_session: kind == ReportKind::Session,
        by_device: kind == ReportKind::Device,
        by_repo: instances || matches!(kind, ReportKind::Session | ReportKind::Repo),
        repo: q.repo.clone(),
        device: q.device.clone(),
        // The rollup keeps canonical model ids: any spelling of the model finds its turns.
        model: q
            .model
            .as_deref()
            .map(|m| agentos_core::model::canonical_model(m).into_owned()),
        source,
        session: None,
        by_source,
    };
    Ok(Plan {
        options: ReportOptions {
            kind,
            tz,
            tz_name,
            week_start,
            range,
            prices: prices.clone(),
            now_ms: now_us.div_euclid(1000),
            active_only: false,
            token_limit: None,
            filters: Filters {
                project: None,
                session_id: None,
                instances,
                by_source,
                descending,
                last: q.last,
            },
        },
        buckets,
    })
}

fn tokens(t: [u64; 4]) -> Tokens {
    Tokens {
        input: t[0],
        output: t[1],
        cache_creation: t[2],
        cache_read: t[3],
    }
}

/// Folds rollup groups into a report through the shared aggregator.
pub fn assemble(
    o: &ReportOptions,
    rows: &[BucketRow],
    activity: &[(i64, i64)],
    prices: &PriceTable,
) -> ReportResponse {
    let mut strings = StringTable::default();
    let buckets: Vec<Bucket> = rows
        .iter()
        .map(|r| Bucket {
            first_ms: r.first_us.div_euclid(1000),
            last_ms: r.last_us.div_euclid(1000),
            model: strings.intern(&r.model),
            session: strings.intern(&r.session),
            project: strings.intern(&r.repo),
            device: strings.intern(&r.device),
            turns: r.turns,
            tokens: tokens(r.tokens),
            carried_turns: r.carried_turns,
            carried_tokens: tokens(r.carried_tokens),
            carried_cost_usd: r.carried_cost_usd,
            flags: Source::of_turn(Some(&r.source))
                .map_or(0, |s| s.code() << agentos_ingest::record::SOURCE_SHIFT),
        })
        .collect();
    let mut agg = Aggregator::new(o, &strings);
    for b in &buckets {
        agg.add_bucket(b);
    }
    for &(f, l) in activity {
        agg.add_activity(f.div_euclid(1000), l.div_euclid(1000));
    }
    let report = agg.finish(&strings);
    let mut unpriced: Vec<String> = report
        .totals
        .breakdown
        .iter()
        .filter(|b| !b.priced)
        .map(|b| b.model.clone())
        .collect();
    unpriced.dedup();
    ReportResponse {
        report,
        pricing: PricingInfo {
            version: prices_version(prices),
            unpriced_models: unpriced,
        },
    }
}

/// Runs a report for `tenant`.
///
/// # Errors
/// 422 for a bad query, 5xx when the database fails.
pub async fn run(
    store: &Store,
    tenant: &str,
    q: &ReportQuery,
    prices: &PriceTable,
    now_us: i64,
) -> Result<ReportResponse, ApiError> {
    Ok(run_with_rows(store, tenant, q, prices, now_us).await?.0)
}

/// As [`run`], also handing back the rollup groups and the plan it was built from (the
/// dashboard reads other sums of the same groups without a second query).
///
/// # Errors
/// As [`run`].
pub async fn run_with_rows(
    store: &Store,
    tenant: &str,
    q: &ReportQuery,
    prices: &PriceTable,
    now_us: i64,
) -> Result<(ReportResponse, Vec<BucketRow>, Plan), ApiError> {
    let plan = plan(q, prices, now_us)?;
    let rows = store
        .report_buckets(tenant, &plan.buckets)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let activity = if plan.options.kind == ReportKind::Blocks {
        store
            .activity_hours(tenant, plan.buckets.until_us)
            .await
            .map_err(|e| ApiError::from_store(&e))?
    } else {
        Vec::new()
    };
    let out = assemble(&plan.options, &rows, &activity, prices);
    Ok((out, rows, plan))
}

/// The `n` costliest rows of the session report for `q` (ties by session id), each exactly as
/// [`run`] with `kind=session` gives it, without building the other sessions' rows: the
/// database ranks the sessions by a cost it computes with the table's prices
/// ([`Store::top_session_candidates`]) and only the candidates are priced here.
///
/// # Errors
/// As [`run`].
pub async fn top_sessions(
    store: &Store,
    tenant: &str,
    q: &ReportQuery,
    prices: &PriceTable,
    now_us: i64,
    n: usize,
) -> Result<Report, ApiError> {
    let q = ReportQuery {
        kind: Some("session".into()),
        order: None,
        last: None,
        ..q.clone()
    };
    let plan = plan(&q, prices, now_us)?;
    let db = |e: crate::store::StoreError| ApiError::from_store(&e);
    let table: Vec<(String, [f64; 4])> = store
        .models_in(tenant, &plan.buckets)
        .await
        .map_err(db)?
        .into_iter()
        .filter_map(|m| {
            // The price the aggregator uses: that of the canonical name.
            let p = prices.lookup(&agentos_core::model::canonical_model(&m))?;
            Some((m, [p.input, p.output, p.cache_creation, p.cache_read]))
        })
        .collect();
    let candidates = store
        .top_session_candidates(tenant, &plan.buckets, &table, n)
        .await
        .map_err(db)?;
    let rows = store
        .session_buckets_of(tenant, &plan.buckets, &candidates)
        .await
        .map_err(db)?;
    let mut report = assemble(&plan.options, &rows, &[], prices).report;
    report
        .rows
        .sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key)));
    report.rows.truncate(n);
    Ok(report)
}

/// `GET /v1/report?kind=value`: features attributed to models (the same fold as the local
/// `agentos report value` and the summary's `value` block, `agentos_core::attribution`), over
/// the tenant's turns recorded in the range. Only turns that left under `full` are here.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValueResponse {
    /// Always `value`.
    pub kind: String,
    /// The range's bounds as given (dates or times in `tz`).
    pub since: Option<String>,
    /// Exclusive end, as given.
    pub until: Option<String>,
    /// Turns folded.
    pub turns: u64,
    /// By model, session, feature and UTC day.
    pub attribution: agentos_core::attribution::Attribution,
}

/// Turns read per query while folding value.
const VALUE_PAGE: i64 = 2_000;

/// Folds the tenant's turns in the query's range into a [`ValueResponse`], page by page.
///
/// # Errors
/// 422 for a bad range or zone; 5xx when the database fails or a stored turn does not parse.
pub async fn value(
    store: &Store,
    tenant: &str,
    q: &ReportQuery,
) -> Result<ValueResponse, ApiError> {
    let (tz, _) = resolve_zone(Some(q.tz.as_deref().unwrap_or("UTC")))
        .map_err(|e| bad("tz", e.to_string()))?;
    let range = TimeRange::from_user(q.since.as_deref(), q.until.as_deref(), &tz)
        .map_err(|e| bad("since", e))?;
    let since_us = range.since.map_or(i64::MIN, |ms| ms.saturating_mul(1000));
    let until_us = range.until.map_or(i64::MAX, |ms| ms.saturating_mul(1000));
    let mut out = ValueResponse {
        kind: "value".into(),
        since: q.since.clone(),
        until: q.until.clone(),
        turns: 0,
        attribution: Default::default(),
    };
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = store
            .turn_bodies(
                tenant,
                since_us,
                until_us,
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
                VALUE_PAGE,
            )
            .await
            .map_err(|e| ApiError::from_store(&e))?;
        let Some((t, id, _)) = page.last() else { break };
        after = Some((*t, id.clone()));
        for (at_us, id, body) in &page {
            let env: agentos_core::event::Envelope = serde_json::from_str(body)
                .map_err(|e| ApiError::Internal(format!("stored turn {id} does not parse: {e}")))?;
            if let agentos_core::event::EventBody::Turn(turn) = &env.body {
                let day = jiff::Timestamp::from_microsecond(*at_us)
                    .map(|ts| jiff::tz::TimeZone::UTC.to_datetime(ts).date())
                    .map_err(|e| ApiError::Internal(format!("stored turn {id}: {e}")))?;
                out.attribution.apply(turn, day);
                out.turns += 1;
            }
        }
        if (page.len() as i64) < VALUE_PAGE {
            break;
        }
    }
    Ok(out)
}
