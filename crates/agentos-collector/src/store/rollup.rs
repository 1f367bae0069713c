//! The report rollup (`turn_rollup`, `report_sessions`): maintained inside the ingest
//! transaction for the events a batch newly stored, and read by reports, the dashboard and
//! `/v1/usage` instead of the events themselves.

use std::collections::{BTreeMap, HashSet};

use sqlx::{AssertSqlSafe, Row};

use super::sql::Tx;
use super::{NewEvent, PerBackend, Pool, Store, StoreError};
use crate::usage::{UsageInputs, WindowTotals};

/// Width of a rollup bucket: 15 minutes, in microseconds (see the migration for why).
pub const BUCKET_US: i64 = 900_000_000;

/// Start of the bucket holding `us`.
pub fn bucket_of(us: i64) -> i64 {
    us.div_euclid(BUCKET_US) * BUCKET_US
}

#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    turns: i64,
    tin: f64,
    tout: f64,
    tcc: f64,
    tcr: f64,
    latency: f64,
    cost: f64,
    features: f64,
    capacity: f64,
    first: i64,
    last: i64,
}

/// (bucket, session, model, source, carried).
type Key<'a> = (i64, &'a str, &'a str, &'a str, i64);

const UPSERT: &str = "INSERT INTO turn_rollup (tenant, bucket_us, session_id, model, device_id, source, carried, \
    turns, tokens_in, tokens_out, cache_creation_tokens, cache_read_tokens, latency_ms, cost_usd, features, capacity, \
    first_us, last_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
    ON CONFLICT (tenant, bucket_us, session_id, model, device_id, source, carried) DO UPDATE SET \
    turns = turn_rollup.turns + excluded.turns, \
    tokens_in = turn_rollup.tokens_in + excluded.tokens_in, \
    tokens_out = turn_rollup.tokens_out + excluded.tokens_out, \
    cache_creation_tokens = turn_rollup.cache_creation_tokens + excluded.cache_creation_tokens, \
    cache_read_tokens = turn_rollup.cache_read_tokens + excluded.cache_read_tokens, \
    latency_ms = turn_rollup.latency_ms + excluded.latency_ms, \
    cost_usd = turn_rollup.cost_usd + excluded.cost_usd, \
    features = turn_rollup.features + excluded.features, \
    capacity = turn_rollup.capacity + excluded.capacity, \
    first_us = CASE WHEN excluded.first_us < turn_rollup.first_us THEN excluded.first_us ELSE turn_rollup.first_us END, \
    last_us = CASE WHEN excluded.last_us > turn_rollup.last_us THEN excluded.last_us ELSE turn_rollup.last_us END";

/// [`UPSERT`] for the hourly table (no session).
const UPSERT_HOURLY: &str = "INSERT INTO turn_rollup_hourly (tenant, bucket_us, model, device_id, source, carried, \
    turns, tokens_in, tokens_out, cache_creation_tokens, cache_read_tokens, latency_ms, cost_usd, features, capacity, \
    first_us, last_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
    ON CONFLICT (tenant, bucket_us, model, device_id, source, carried) DO UPDATE SET \
    turns = turn_rollup_hourly.turns + excluded.turns, \
    tokens_in = turn_rollup_hourly.tokens_in + excluded.tokens_in, \
    tokens_out = turn_rollup_hourly.tokens_out + excluded.tokens_out, \
    cache_creation_tokens = turn_rollup_hourly.cache_creation_tokens + excluded.cache_creation_tokens, \
    cache_read_tokens = turn_rollup_hourly.cache_read_tokens + excluded.cache_read_tokens, \
    latency_ms = turn_rollup_hourly.latency_ms + excluded.latency_ms, \
    cost_usd = turn_rollup_hourly.cost_usd + excluded.cost_usd, \
    features = turn_rollup_hourly.features + excluded.features, \
    capacity = turn_rollup_hourly.capacity + excluded.capacity, \
    first_us = CASE WHEN excluded.first_us < turn_rollup_hourly.first_us THEN excluded.first_us ELSE turn_rollup_hourly.first_us END, \
    last_us = CASE WHEN excluded.last_us > turn_rollup_hourly.last_us THEN excluded.last_us ELSE turn_rollup_hourly.last_us END";

/// [`UPSERT`] for the daily table (UTC days, no session): the hourly one on another table.
static UPSERT_DAILY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| UPSERT_HOURLY.replace("turn_rollup_hourly", "turn_rollup_daily"));

/// Width of an hourly bucket (µs).
pub const HOUR_US: i64 = 3_600_000_000;

/// Width of a daily bucket (a UTC day, µs).
pub const DAY_US: i64 = 86_400_000_000;

/// [`UPSERT`] for the per-session table (no time; carried turns in their own columns).
const UPSERT_SESSION: &str = "INSERT INTO turn_rollup_session (tenant, session_id, model, device_id, source, \
    turns, tokens_in, tokens_out, cache_creation_tokens, cache_read_tokens, carried_turns, carried_tokens_in, \
    carried_tokens_out, carried_cache_creation_tokens, carried_cache_read_tokens, cost_usd, latency_ms, features, \
    capacity, first_us, last_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
    $18, $19, $20, $21) \
    ON CONFLICT (tenant, session_id, model, device_id, source) DO UPDATE SET \
    turns = turn_rollup_session.turns + excluded.turns, \
    tokens_in = turn_rollup_session.tokens_in + excluded.tokens_in, \
    tokens_out = turn_rollup_session.tokens_out + excluded.tokens_out, \
    cache_creation_tokens = turn_rollup_session.cache_creation_tokens + excluded.cache_creation_tokens, \
    cache_read_tokens = turn_rollup_session.cache_read_tokens + excluded.cache_read_tokens, \
    carried_turns = turn_rollup_session.carried_turns + excluded.carried_turns, \
    carried_tokens_in = turn_rollup_session.carried_tokens_in + excluded.carried_tokens_in, \
    carried_tokens_out = turn_rollup_session.carried_tokens_out + excluded.carried_tokens_out, \
    carried_cache_creation_tokens = turn_rollup_session.carried_cache_creation_tokens + excluded.carried_cache_creation_tokens, \
    carried_cache_read_tokens = turn_rollup_session.carried_cache_read_tokens + excluded.carried_cache_read_tokens, \
    cost_usd = turn_rollup_session.cost_usd + excluded.cost_usd, \
    latency_ms = turn_rollup_session.latency_ms + excluded.latency_ms, \
    features = turn_rollup_session.features + excluded.features, \
    capacity = turn_rollup_session.capacity + excluded.capacity, \
    first_us = CASE WHEN excluded.first_us < turn_rollup_session.first_us THEN excluded.first_us ELSE turn_rollup_session.first_us END, \
    last_us = CASE WHEN excluded.last_us > turn_rollup_session.last_us THEN excluded.last_us ELSE turn_rollup_session.last_us END";

const SESSION_UPSERT: &str = "INSERT INTO report_sessions (tenant, session_id, repo_id) VALUES ($1, $2, $3) \
    ON CONFLICT (tenant, session_id) DO UPDATE SET repo_id = excluded.repo_id";

/// Adds the events of `events` whose ids are in `stored` to the rollup, inside the ingest
/// transaction. Rows are written in key order, so two transactions touching the same rows
/// (PostgreSQL, two collectors) lock them in one order.
pub(super) async fn apply(
    tx: &mut Tx<'_>,
    tenant: &str,
    device_id: &str,
    events: &[NewEvent],
    stored: &HashSet<String>,
) -> Result<(), StoreError> {
    let mut sums: BTreeMap<Key<'_>, Sums> = BTreeMap::new();
    let mut sessions: BTreeMap<&str, &str> = BTreeMap::new();
    // A batch has few distinct spellings, and looking one up allocates: once per spelling.
    let mut models: Vec<(&str, &str)> = Vec::new();
    for e in events.iter().filter(|e| stored.contains(&e.event_id)) {
        match e.kind {
            "turn" => {
                let raw = e.model.as_deref().unwrap_or("");
                let model = match models.iter().find(|(r, _)| *r == raw) {
                    Some(&(_, c)) => c,
                    None => {
                        let c = canonical(raw);
                        models.push((raw, c));
                        c
                    }
                };
                fold(&mut sums, e, model);
            }
            "session" => {
                if let (Some(s), Some(r)) = (e.session_id.as_deref(), e.repo_id.as_deref()) {
                    sessions.insert(s, r);
                }
            }
            _ => {}
        }
    }
    write(tx, tenant, device_id, &sums, &sessions).await
}

/// The canonical id of `model` (`agentos_core::model`): the rollup keeps one name per model, so
/// spellings from different sources are one row and a `model=` filter finds them all.
fn canonical(model: &str) -> &str {
    match agentos_core::model::canonical_model(model) {
        std::borrow::Cow::Borrowed(c) => c,
        std::borrow::Cow::Owned(_) => model,
    }
}

/// Adds turn `e`, whose canonical model id is `model`, to its 15-minute row.
fn fold<'a>(sums: &mut BTreeMap<Key<'a>, Sums>, e: &'a NewEvent, model: &'a str) {
    let key = (
        bucket_of(e.recorded_at_us),
        e.session_id.as_deref().unwrap_or(""),
        model,
        e.source.as_deref().unwrap_or(""),
        i64::from(e.cost_usd.is_some()),
    );
    let s = sums.entry(key).or_insert(Sums {
        first: e.recorded_at_us,
        last: e.recorded_at_us,
        ..Sums::default()
    });
    let n = |v: Option<i64>| v.unwrap_or(0) as f64;
    s.turns += 1;
    s.tin += n(e.tokens_in);
    s.tout += n(e.tokens_out);
    s.tcc += n(e.cache_creation_tokens);
    s.tcr += n(e.cache_read_tokens);
    s.latency += e.latency_ms.unwrap_or(0.0);
    s.cost += e.cost_usd.unwrap_or(0.0);
    s.features += e.features;
    s.capacity += e.capacity;
    s.first = s.first.min(e.recorded_at_us);
    s.last = s.last.max(e.recorded_at_us);
}

/// Adds `s` to `into` (whose `first` and `last` must already be those of a real turn).
fn add(into: &mut Sums, s: &Sums) {
    into.turns += s.turns;
    into.tin += s.tin;
    into.tout += s.tout;
    into.tcc += s.tcc;
    into.tcr += s.tcr;
    into.latency += s.latency;
    into.cost += s.cost;
    into.features += s.features;
    into.capacity += s.capacity;
    into.first = into.first.min(s.first);
    into.last = into.last.max(s.last);
}

async fn write(
    tx: &mut Tx<'_>,
    tenant: &str,
    device_id: &str,
    sums: &BTreeMap<Key<'_>, Sums>,
    sessions: &BTreeMap<&str, &str>,
) -> Result<(), StoreError> {
    let mut hourly: BTreeMap<(i64, &str, &str, i64), Sums> = BTreeMap::new();
    for (&(bucket, _, model, source, carried), s) in sums {
        let h = hourly
            .entry((bucket.div_euclid(HOUR_US) * HOUR_US, model, source, carried))
            .or_insert(Sums {
                first: s.first,
                last: s.last,
                ..Sums::default()
            });
        add(h, s);
    }
    // Per session: (session, model, source) -> (all turns, the carried ones).
    let mut per_session: BTreeMap<(&str, &str, &str), (Sums, Sums)> = BTreeMap::new();
    for (&(_, session, model, source, carried), s) in sums {
        let e = per_session
            .entry((session, model, source))
            .or_insert_with(|| {
                let empty = Sums {
                    first: s.first,
                    last: s.last,
                    ..Sums::default()
                };
                (empty, Sums::default())
            });
        add(&mut e.0, s);
        if carried == 1 {
            add(&mut e.1, s);
        }
    }
    let mut daily: BTreeMap<(i64, &str, &str, i64), Sums> = BTreeMap::new();
    for (&(bucket, model, source, carried), s) in &hourly {
        let d = daily
            .entry((bucket.div_euclid(DAY_US) * DAY_US, model, source, carried))
            .or_insert(Sums {
                first: s.first,
                last: s.last,
                ..Sums::default()
            });
        add(d, s);
    }
    // Multi-row upserts, every table's rows in key order so two transactions lock shared rows
    // in one order (see upsert_all).
    let mut parts: Vec<(&str, Vec<Vec<V<'_>>>)> = Vec::new();
    for (upsert, rows) in [(UPSERT_DAILY.as_str(), &daily), (UPSERT_HOURLY, &hourly)] {
        let rows: Vec<Vec<V<'_>>> = rows
            .iter()
            .map(|(&(bucket, model, source, carried), s)| {
                time_row([tenant, model, device_id, source], bucket, carried, s)
            })
            .collect();
        parts.push((upsert, rows));
    }
    let rows: Vec<Vec<V<'_>>> = sums
        .iter()
        .map(|(&(bucket, session, model, source, carried), s)| {
            let mut r = time_row([tenant, model, device_id, source], bucket, carried, s);
            // turn_rollup's columns: the session after the bucket.
            r.insert(2, V::S(session));
            r
        })
        .collect();
    parts.push((UPSERT, rows));
    let rows: Vec<Vec<V<'_>>> = per_session
        .iter()
        .map(|(&(session, model, source), (s, c))| {
            vec![
                V::S(tenant),
                V::S(session),
                V::S(model),
                V::S(device_id),
                V::S(source),
                V::I(s.turns),
                V::F(s.tin),
                V::F(s.tout),
                V::F(s.tcc),
                V::F(s.tcr),
                V::I(c.turns),
                V::F(c.tin),
                V::F(c.tout),
                V::F(c.tcc),
                V::F(c.tcr),
                V::F(s.cost),
                V::F(s.latency),
                V::F(s.features),
                V::F(s.capacity),
                V::I(s.first),
                V::I(s.last),
            ]
        })
        .collect();
    parts.push((UPSERT_SESSION, rows));
    let rows: Vec<Vec<V<'_>>> = sessions
        .iter()
        .map(|(&session, &repo)| vec![V::S(tenant), V::S(session), V::S(repo)])
        .collect();
    parts.push((SESSION_UPSERT, rows));
    upsert_all(tx, &parts).await
}

/// A row of the hourly or daily table (`turn_rollup` with the session inserted at 2):
/// `[tenant, model, device, source]`.
fn time_row<'a>(k: [&'a str; 4], bucket: i64, carried: i64, s: &Sums) -> Vec<V<'a>> {
    let [tenant, model, device_id, source] = k;
    vec![
        V::S(tenant),
        V::I(bucket),
        V::S(model),
        V::S(device_id),
        V::S(source),
        V::I(carried),
        V::I(s.turns),
        V::F(s.tin),
        V::F(s.tout),
        V::F(s.tcc),
        V::F(s.tcr),
        V::F(s.latency),
        V::F(s.cost),
        V::F(s.features),
        V::F(s.capacity),
        V::I(s.first),
        V::I(s.last),
    ]
}

/// A value bound into a multi-row upsert.
enum V<'a> {
    I(i64),
    F(f64),
    S(&'a str),
}

/// Rows per multi-row statement: 21 columns × 400 stays under SQLite's 32,766 parameters.
const UPSERT_ROWS: usize = 400;

/// `sql` (a one-row `INSERT … VALUES ($1, …) ON CONFLICT …` statement, one of this module's
/// constants) for all `rows`: its VALUES list repeated per row, placeholders from `$first`.
fn values_sql(sql: &str, rows: &[Vec<V<'_>>], first: usize) -> String {
    let values_at = sql.find(" VALUES (").unwrap_or(sql.len());
    let conflict_at = sql.find(" ON CONFLICT").unwrap_or(sql.len());
    let mut text = String::with_capacity(sql.len() + rows.len() * 128);
    text.push_str(&sql[..values_at]);
    text.push_str(" VALUES ");
    let mut n = first;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for j in 0..row.len() {
            if j > 0 {
                text.push_str(", ");
            }
            text.push('$');
            text.push_str(&n.to_string());
            n += 1;
        }
        text.push(')');
    }
    text.push_str(&sql[conflict_at..]);
    text
}

/// Runs `text` with `values` bound in order.
async fn run_bound(tx: &mut Tx<'_>, text: String, values: &[&V<'_>]) -> Result<(), StoreError> {
    per_backend!(&mut *tx, |t| {
        let mut q = sqlx::query(AssertSqlSafe(text));
        for v in values {
            q = match v {
                V::I(x) => q.bind(*x),
                V::F(x) => q.bind(*x),
                V::S(x) => q.bind(*x),
            };
        }
        q.execute(&mut **t).await?;
    });
    Ok(())
}

/// Most parameters of one PostgreSQL statement combining every table's upsert.
const PG_COMBINED_PARAMS: usize = 30_000;

/// Every table's multi-row upsert (`(statement, rows)`, rows with distinct keys: PostgreSQL
/// refuses to update one row twice in a statement). On PostgreSQL, one statement (the upserts
/// as data-modifying `WITH` queries, each run once and to completion): one round trip instead
/// of one per table. On SQLite (in-process) one statement per table, in chunks of
/// [`UPSERT_ROWS`] rows.
async fn upsert_all(tx: &mut Tx<'_>, parts: &[(&str, Vec<Vec<V<'_>>>)]) -> Result<(), StoreError> {
    let params: usize = parts.iter().flat_map(|(_, rows)| rows).map(Vec::len).sum();
    if matches!(tx, PerBackend::Postgres(_)) && params > 0 && params <= PG_COMBINED_PARAMS {
        let mut ctes = Vec::new();
        let mut values: Vec<&V<'_>> = Vec::with_capacity(params);
        for (i, (sql, rows)) in parts.iter().enumerate().filter(|(_, (_, r))| !r.is_empty()) {
            ctes.push(format!(
                "u{i} AS ({})",
                values_sql(sql, rows, values.len() + 1)
            ));
            values.extend(rows.iter().flatten());
        }
        let text = format!("WITH {} SELECT 1", ctes.join(", "));
        return run_bound(tx, text, &values).await;
    }
    for (sql, rows) in parts {
        for chunk in rows.chunks(UPSERT_ROWS) {
            let values: Vec<&V<'_>> = chunk.iter().flatten().collect();
            run_bound(tx, values_sql(sql, chunk, 1), &values).await?;
        }
    }
    Ok(())
}

/// Sessions per query when summing the sessions at a range's edges from the 15-minute rollup
/// (and most sessions whose repositories are looked up by id).
const EDGE_CHUNK: usize = 500;

/// Most sessions [`Store::top_session_candidates`] adds whose cost is within rounding of the
/// n-th's (ties): the first by id.
const BAND: usize = 50;

/// Most sessions a per-session query lists by id (edges plus the caller's); beyond, the
/// range's 15-minute rows are grouped instead.
const MAX_LISTED: usize = 5000;

/// Events stored before the rollup existed, folded in per page at start-up.
const UNROLLED_PAGE: i64 = 2000;

/// Folds events stored before the rollup existed (`rolled IS NULL`) into it, one page per
/// transaction, marking each page rolled in the same transaction: safe to run from several
/// collectors at once and to interrupt. Returns how many events it folded.
pub(super) async fn backfill(store: &Store) -> Result<u64, StoreError> {
    const PAGE_SQL: &str = "SELECT tenant, event_id, device_id, body FROM events WHERE rolled IS NULL \
        ORDER BY tenant, event_id LIMIT $1";
    const MARK: &str = "UPDATE events SET rolled = 1 WHERE tenant = $1 AND event_id = $2";
    let mut total = 0u64;
    loop {
        let mut conn = match store.writer() {
            PerBackend::Sqlite(p) => PerBackend::Sqlite(p.acquire().await?),
            PerBackend::Postgres(p) => PerBackend::Postgres(p.acquire().await?),
        };
        let mut tx: Tx<'_> = match &mut conn {
            PerBackend::Sqlite(c) => {
                PerBackend::Sqlite(sqlx::Connection::begin_with(&mut **c, "BEGIN IMMEDIATE").await?)
            }
            PerBackend::Postgres(c) => {
                PerBackend::Postgres(sqlx::Connection::begin(&mut **c).await?)
            }
        };
        let page_sql = match &tx {
            PerBackend::Sqlite(_) => PAGE_SQL.to_string(),
            // Another collector backfilling at the same time takes other rows.
            PerBackend::Postgres(_) => format!("{PAGE_SQL} FOR UPDATE SKIP LOCKED"),
        };
        let rows: Vec<(String, String, String, String)> = per_backend!(&mut tx, |t| {
            sqlx::query(AssertSqlSafe(page_sql))
                .bind(UNROLLED_PAGE)
                .fetch_all(&mut **t)
                .await?
                .iter()
                .map(|r| -> Result<_, StoreError> {
                    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        if rows.is_empty() {
            per_backend!(tx, |t| t.commit().await?);
            return Ok(total);
        }
        // Group by (tenant, device): the rollup is per device.
        let mut groups: BTreeMap<(&str, &str), Vec<NewEvent>> = BTreeMap::new();
        for (tenant, _, device, body) in &rows {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
                continue;
            };
            // Stored events passed these checks when they arrived.
            if let Ok(ev) = crate::ingest::check_event(&value, body) {
                groups
                    .entry((tenant.as_str(), device.as_str()))
                    .or_default()
                    .push(ev);
            }
        }
        for ((tenant, device), events) in &groups {
            let ids: HashSet<String> = events.iter().map(|e| e.event_id.clone()).collect();
            apply(&mut tx, tenant, device, events, &ids).await?;
        }
        for (tenant, id, _, _) in &rows {
            per_backend!(&mut tx, |t| {
                sqlx::query(MARK)
                    .bind(tenant)
                    .bind(id)
                    .execute(&mut **t)
                    .await?;
            });
        }
        per_backend!(tx, |t| t.commit().await?);
        total += rows.len() as u64;
    }
}

/// Filters and grouping of a report query over the rollup.
#[derive(Debug, Clone, Default)]
pub struct BucketQuery {
    /// Buckets starting at or after this (epoch µs).
    pub since_us: Option<i64>,
    /// Buckets starting before this (epoch µs).
    pub until_us: Option<i64>,
    /// Group buckets by `bucket_us / grain_us` (a multiple of [`BUCKET_US`]); `None` = no time
    /// grouping (one row per the other keys over the whole range).
    pub grain_us: Option<i64>,
    /// One row per session.
    pub by_session: bool,
    /// One row per device.
    pub by_device: bool,
    /// One row per repository.
    pub by_repo: bool,
    /// Only this repository.
    pub repo: Option<String>,
    /// Only this device.
    pub device: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this source (its `turn.source` wire value, `""` = turns without one).
    pub source: Option<String>,
    /// Only this session.
    pub session: Option<String>,
    /// One row per source ([`BucketRow::source`]).
    pub by_source: bool,
}

/// One group of rollup rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketRow {
    /// Earliest turn (epoch µs).
    pub first_us: i64,
    /// Latest turn (epoch µs).
    pub last_us: i64,
    /// Model.
    pub model: String,
    /// Session (`""` unless grouped by session).
    pub session: String,
    /// Device (`""` unless grouped by device).
    pub device: String,
    /// Repository (`""` unless grouped by repository, or unknown).
    pub repo: String,
    /// The turns' `turn.source` wire value (`""` unless grouped by source, or none).
    pub source: String,
    /// Turns.
    pub turns: u64,
    /// Σ tokens_in, tokens_out, cache creation, cache read.
    pub tokens: [u64; 4],
    /// Turns that carried their own cost, and their tokens.
    pub carried_turns: u64,
    /// Tokens of those turns.
    pub carried_tokens: [u64; 4],
    /// Σ carried cost (USD).
    pub carried_cost_usd: f64,
    /// Σ latency (ms).
    pub latency_ms: f64,
    /// Σ `measurement.feature_delta`.
    pub features: f64,
    /// Σ `turn.capacity_used`.
    pub capacity: f64,
}

enum Arg {
    I(i64),
    S(String),
    F(f64),
}

/// What [`Store::session_buckets`] reads from the per-session rollup for the sessions wholly
/// inside the range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inside {
    /// Its rows as they are.
    Rows,
    /// Sums per repository and model (without latency, features and capacity, which no
    /// report of repositories shows).
    ByRepo,
}

const SESSION_REPO_JOIN: &str =
    "LEFT JOIN report_sessions s ON s.tenant = r.tenant AND s.session_id = r.session_id";

/// `q`'s filters on `turn_rollup_session r` (the repository through [`SESSION_REPO_JOIN`]),
/// their values appended to `args`.
fn session_filters(q: &BucketQuery, args: &mut Vec<Arg>) -> Vec<String> {
    let mut wh = Vec::new();
    for (val, col) in [
        (&q.repo, "COALESCE(s.repo_id, '')"),
        (&q.device, "r.device_id"),
        (&q.model, "r.model"),
        (&q.source, "r.source"),
    ] {
        if let Some(v) = val {
            args.push(Arg::S(v.clone()));
            wh.push(format!("{col} = ${}", args.len()));
        }
    }
    wh
}

/// `$i, $j, …` for `values`, appended to `args`.
fn placeholders(values: &[String], args: &mut Vec<Arg>) -> String {
    values
        .iter()
        .map(|v| {
            args.push(Arg::S(v.clone()));
            format!("${}", args.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn sat(v: Option<f64>) -> u64 {
    // `as` saturates (and maps NaN to 0): a float sum cannot wrap here.
    v.unwrap_or(0.0) as u64
}

impl Store {
    /// Groups of the tenant's rollup rows as `q` asks; never reads events.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn report_buckets(
        &self,
        tenant: &str,
        q: &BucketQuery,
    ) -> Result<Vec<BucketRow>, StoreError> {
        let whole = !q.by_device && q.grain_us.is_none() && q.session.is_none();
        if whole && q.by_session {
            return self.session_buckets(tenant, q, None, Inside::Rows).await;
        }
        if whole && q.by_repo {
            return self.session_buckets(tenant, q, None, Inside::ByRepo).await;
        }
        self.grouped_buckets(tenant, q, &[]).await
    }

    /// The session report's groups for only the sessions in `only` (see
    /// [`crate::report::top_sessions`]).
    ///
    /// # Errors
    /// Driver errors.
    pub async fn session_buckets_of(
        &self,
        tenant: &str,
        q: &BucketQuery,
        only: &[String],
    ) -> Result<Vec<BucketRow>, StoreError> {
        if only.is_empty() {
            return Ok(Vec::new());
        }
        self.session_buckets(tenant, q, Some(only), Inside::Rows)
            .await
    }

    /// A range's session or repository groups from the per-session rollup (migration 0008):
    /// the sessions whose rows (those `q`'s filters keep) all lie inside the range come from
    /// `turn_rollup_session` as they are (`Inside::Rows`, one row per session, model, device and
    /// source) or summed per repository and model (`Inside::ByRepo`); the sessions active at one
    /// of the range's edges are summed from the 15-minute rollup over the range, as
    /// [`Store::grouped_buckets`] would, reading only the buckets between the edge and their
    /// last (first) turn. The aggregator sums rows of one group that come more than once.
    async fn session_buckets(
        &self,
        tenant: &str,
        q: &BucketQuery,
        only: Option<&[String]>,
        inside: Inside,
    ) -> Result<Vec<BucketRow>, StoreError> {
        let since = q.since_us.unwrap_or(i64::MIN);
        let until = q.until_us.unwrap_or(i64::MAX);
        let edges = self.edge_sessions(tenant, q, only).await?;
        if edges.len() + only.map_or(0, <[String]>::len) > MAX_LISTED {
            // Too many to list in a query: the range's 15-minute rows, as without this table.
            let mut rows = self.grouped_buckets(tenant, q, &[]).await?;
            if let Some(only) = only {
                let keep: HashSet<&str> = only.iter().map(String::as_str).collect();
                rows.retain(|r| keep.contains(r.session.as_str()));
            }
            return Ok(rows);
        }
        let edge_ids: Vec<String> = edges.iter().map(|(s, _, _)| s.clone()).collect();
        let by_repo = inside == Inside::ByRepo;
        let mut args = vec![Arg::S(tenant.to_string()), Arg::I(since), Arg::I(until)];
        let join = by_repo || q.repo.is_some();
        let mut wh = vec![
            "r.tenant = $1".to_string(),
            "r.last_us >= $2".into(),
            "r.last_us < $3".into(),
            "r.first_us >= $2".into(),
        ];
        wh.extend(session_filters(q, &mut args));
        if let Some(only) = only {
            wh.push(format!(
                "r.session_id IN ({})",
                placeholders(only, &mut args)
            ));
        }
        if !edge_ids.is_empty() {
            wh.push(format!(
                "r.session_id NOT IN ({})",
                placeholders(&edge_ids, &mut args)
            ));
        }
        let repo_col = if join {
            "COALESCE(s.repo_id, '')"
        } else {
            "''"
        };
        // Rows per source when the report splits by it (`group=source`).
        let (source_col, source_group) = if q.by_source {
            ("r.source", ", r.source")
        } else {
            ("''", "")
        };
        let sql = match inside {
            Inside::Rows => format!(
                "SELECT r.first_us AS first_us, r.last_us AS last_us, r.model AS model, \
                 r.session_id AS session, '' AS device, {repo_col} AS repo, \
                 {source_col} AS source, r.turns AS turns, \
                 r.tokens_in AS tin, r.tokens_out AS tout, r.cache_creation_tokens AS tcc, \
                 r.cache_read_tokens AS tcr, r.carried_turns AS cturns, \
                 r.carried_tokens_in AS cin, r.carried_tokens_out AS cout, \
                 r.carried_cache_creation_tokens AS ccc, r.carried_cache_read_tokens AS ccr, \
                 r.cost_usd AS cost, r.latency_ms AS lat, r.features AS features, \
                 r.capacity AS capacity FROM turn_rollup_session r {} WHERE {}",
                if join { SESSION_REPO_JOIN } else { "" },
                wh.join(" AND "),
            ),
            Inside::ByRepo => format!(
                "SELECT MIN(r.first_us) AS first_us, MAX(r.last_us) AS last_us, r.model AS model, \
                 '' AS session, '' AS device, {repo_col} AS repo, {source_col} AS source, \
                 CAST(SUM(r.turns) AS BIGINT) AS turns, SUM(r.tokens_in) AS tin, \
                 SUM(r.tokens_out) AS tout, SUM(r.cache_creation_tokens) AS tcc, \
                 SUM(r.cache_read_tokens) AS tcr, CAST(SUM(r.carried_turns) AS BIGINT) AS cturns, \
                 SUM(r.carried_tokens_in) AS cin, SUM(r.carried_tokens_out) AS cout, \
                 SUM(r.carried_cache_creation_tokens) AS ccc, \
                 SUM(r.carried_cache_read_tokens) AS ccr, SUM(r.cost_usd) AS cost, \
                 CAST(0 AS DOUBLE PRECISION) AS lat, CAST(0 AS DOUBLE PRECISION) AS features, \
                 CAST(0 AS DOUBLE PRECISION) AS capacity \
                 FROM turn_rollup_session r {SESSION_REPO_JOIN} \
                 WHERE {} GROUP BY {repo_col}, r.model{source_group}",
                wh.join(" AND "),
            ),
        };
        let mut rows = self.bucket_rows(sql, &args).await?;
        // The repository of each session is looked up after grouping, for the rows that do not
        // have it from a join.
        let late = q.by_repo && q.repo.is_none();
        if late && !by_repo {
            rows = self.with_repos(tenant, rows, true).await?;
        }
        let edge_rows = self.edge_buckets(tenant, q, &edges).await?;
        rows.extend(self.with_repos(tenant, edge_rows, late).await?);
        Ok(rows)
    }

    /// The sessions of a range (as `q` filters it, only those of `only` if given) that were
    /// active at one of its edges: a row of theirs lies partly inside. With the first and last
    /// turn over their rows that reach into the range.
    async fn edge_sessions(
        &self,
        tenant: &str,
        q: &BucketQuery,
        only: Option<&[String]>,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let since = q.since_us.unwrap_or(i64::MIN);
        let until = q.until_us.unwrap_or(i64::MAX);
        if q.since_us.is_none() && q.until_us.is_none() {
            return Ok(Vec::new());
        }
        let mut args = vec![Arg::S(tenant.to_string()), Arg::I(since), Arg::I(until)];
        let mut wh = vec![
            "r.tenant = $1".to_string(),
            "r.last_us >= $2".into(),
            "r.first_us < $3".into(),
        ];
        wh.extend(session_filters(q, &mut args));
        if let Some(only) = only {
            wh.push(format!(
                "r.session_id IN ({})",
                placeholders(only, &mut args)
            ));
        }
        // Sessions with a row across an edge (whatever the filters), then their span over the
        // rows the filters keep.
        let sql = format!(
            "SELECT r.session_id AS session, MIN(r.first_us) AS f, MAX(r.last_us) AS l \
             FROM turn_rollup_session r {} WHERE {} AND r.session_id IN \
             (SELECT e.session_id FROM turn_rollup_session e WHERE e.tenant = $1 \
             AND e.last_us >= $2 AND e.first_us < $3 AND (e.first_us < $2 OR e.last_us >= $3)) \
             GROUP BY r.session_id",
            if q.repo.is_some() {
                SESSION_REPO_JOIN
            } else {
                ""
            },
            wh.join(" AND "),
        );
        let spans: Vec<(String, i64, i64)> = per_backend!(self.reader(), |pool| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for a in &args {
                query = match a {
                    Arg::I(v) => query.bind(*v),
                    Arg::S(v) => query.bind(v.as_str()),
                    Arg::F(v) => query.bind(*v),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| -> Result<(String, i64, i64), StoreError> {
                    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(spans
            .into_iter()
            .filter(|&(_, first, last)| first < since || last >= until)
            .collect())
    }

    /// The groups of the sessions in `edges` (from [`Store::edge_sessions`]) over the range,
    /// from the 15-minute rollup: for those active at the start, the buckets from the start to
    /// their last turn; for the others, from their first turn to the end.
    async fn edge_buckets(
        &self,
        tenant: &str,
        q: &BucketQuery,
        edges: &[(String, i64, i64)],
    ) -> Result<Vec<BucketRow>, StoreError> {
        let since = q.since_us.unwrap_or(i64::MIN);
        let until = q.until_us.unwrap_or(i64::MAX);
        let mut at_start: Vec<String> = Vec::new();
        let mut at_end: Vec<String> = Vec::new();
        let (mut start_last, mut end_first) = (since, until);
        for (session, first, last) in edges {
            if *first < since {
                at_start.push(session.clone());
                start_last = start_last.max(*last);
            } else {
                at_end.push(session.clone());
                end_first = end_first.min(*first);
            }
        }
        let mut windows = Vec::new();
        if !at_start.is_empty() {
            let hi = until.min(bucket_of(start_last).saturating_add(BUCKET_US));
            windows.push((at_start, since, hi));
        }
        if !at_end.is_empty() {
            windows.push((at_end, since.max(bucket_of(end_first)), until));
        }
        let mut rows = Vec::new();
        for (sessions, lo, hi) in windows {
            let window = BucketQuery {
                since_us: Some(lo),
                until_us: Some(hi),
                grain_us: None,
                by_session: true,
                by_device: false,
                // The repository through the join when a filter needs it; otherwise the
                // caller looks it up.
                by_repo: q.repo.is_some(),
                ..q.clone()
            };
            for chunk in sessions.chunks(EDGE_CHUNK) {
                rows.extend(self.grouped_buckets(tenant, &window, chunk).await?);
            }
        }
        Ok(rows)
    }

    /// Candidates for the `n` costliest sessions of a range (as `q` filters it), ranked by a
    /// cost computed in SQL from the per-session rollup with the price of each model
    /// (`prices`: (stored model name, USD per million input, output, cache write, cache read
    /// tokens); a model not listed costs only what its turns carried). That cost differs from
    /// the report's (priced in Rust, summed in another order) only by rounding, so the
    /// candidates are the top `n` and every session within a billionth of the `n`-th's cost
    /// (when more than `BAND` are, the costliest then first by id: ties), plus the sessions
    /// active at an edge of the range (whose SQL cost would count turns outside it). The caller
    /// prices the candidates exactly and keeps the top `n`.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn top_session_candidates(
        &self,
        tenant: &str,
        q: &BucketQuery,
        prices: &[(String, [f64; 4])],
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let since = q.since_us.unwrap_or(i64::MIN);
        let until = q.until_us.unwrap_or(i64::MAX);
        let edges = self.edge_sessions(tenant, q, None).await?;
        let mut out: Vec<String> = edges.iter().map(|(s, _, _)| s.clone()).collect();
        if n == 0 {
            return Ok(out);
        }
        let mut args = vec![Arg::S(tenant.to_string()), Arg::I(since), Arg::I(until)];
        let mut wh = vec![
            "r.tenant = $1".to_string(),
            "r.last_us >= $2".into(),
            "r.last_us < $3".into(),
            "r.first_us >= $2".into(),
        ];
        wh.extend(session_filters(q, &mut args));
        if !out.is_empty() {
            wh.push(format!(
                "r.session_id NOT IN ({})",
                placeholders(&out, &mut args)
            ));
        }
        // Each model's uncarried tokens at its price; a model not listed costs only what its
        // turns carried, as in the report.
        let mut cases = Vec::new();
        for (model, p) in prices {
            args.push(Arg::S(model.clone()));
            let m = args.len();
            for v in p {
                args.push(Arg::F(*v));
            }
            cases.push(format!(
                "WHEN ${m} THEN (r.tokens_in - r.carried_tokens_in) * ${} \
                 + (r.tokens_out - r.carried_tokens_out) * ${} \
                 + (r.cache_creation_tokens - r.carried_cache_creation_tokens) * ${} \
                 + (r.cache_read_tokens - r.carried_cache_read_tokens) * ${}",
                m + 1,
                m + 2,
                m + 3,
                m + 4
            ));
        }
        let priced = if cases.is_empty() {
            "0.0".to_string()
        } else {
            format!("CASE r.model {} ELSE 0.0 END", cases.join(" "))
        };
        // n and the sessions within rounding of the n-th: at most BAND more.
        let limit = n + BAND;
        let sql = format!(
            "SELECT r.session_id AS session, SUM(r.cost_usd + ({priced}) / 1000000.0) AS c \
             FROM turn_rollup_session r {} WHERE {} \
             GROUP BY r.session_id ORDER BY c DESC, r.session_id LIMIT {limit}",
            if q.repo.is_some() {
                SESSION_REPO_JOIN
            } else {
                ""
            },
            wh.join(" AND "),
        );
        let ranked: Vec<(String, f64)> = per_backend!(self.reader(), |pool| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for a in &args {
                query = match a {
                    Arg::I(v) => query.bind(*v),
                    Arg::S(v) => query.bind(v.as_str()),
                    Arg::F(v) => query.bind(*v),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| -> Result<(String, f64), StoreError> {
                    let c: Option<f64> = r.try_get(1)?;
                    Ok((r.try_get(0)?, c.unwrap_or(0.0)))
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let Some(&(_, nth)) = ranked.get(n - 1) else {
            // Fewer sessions than n: all of them.
            out.extend(ranked.into_iter().map(|(s, _)| s));
            return Ok(out);
        };
        let f = nth - 1e-9 * nth.abs().max(1.0);
        out.extend(
            ranked
                .into_iter()
                .take_while(|&(_, c)| c >= f)
                .map(|(s, _)| s),
        );
        Ok(out)
    }

    /// The model names of the tenant's turns in the UTC days that overlap the range of `q`
    /// (from the daily rollup).
    ///
    /// # Errors
    /// Driver errors.
    pub async fn models_in(
        &self,
        tenant: &str,
        q: &BucketQuery,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT DISTINCT model FROM turn_rollup_daily WHERE tenant = $1 \
            AND bucket_us >= $2 AND bucket_us < $3";
        let since = q
            .since_us
            .map_or(i64::MIN, |v| v.div_euclid(DAY_US) * DAY_US);
        let until = q.until_us.unwrap_or(i64::MAX);
        per_backend!(self.reader(), |pool| {
            sqlx::query(SQL)
                .bind(tenant)
                .bind(since)
                .bind(until)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| -> Result<String, StoreError> { Ok(r.try_get(0)?) })
                .collect::<Result<Vec<_>, _>>()
        })
    }

    /// Sets each row's repository to its session's when `late`.
    async fn with_repos(
        &self,
        tenant: &str,
        mut rows: Vec<BucketRow>,
        late: bool,
    ) -> Result<Vec<BucketRow>, StoreError> {
        if late && !rows.is_empty() {
            let mut sessions: Vec<&str> = rows.iter().map(|r| r.session.as_str()).collect();
            sessions.sort_unstable();
            sessions.dedup();
            let repos = self.session_repos(tenant, &sessions).await?;
            for r in &mut rows {
                if let Some(repo) = repos.get(&r.session) {
                    r.repo.clone_from(repo);
                }
            }
        }
        Ok(rows)
    }

    /// Groups of rollup rows (15-minute or hourly) as `q` asks, only of `sessions` unless empty.
    async fn grouped_buckets(
        &self,
        tenant: &str,
        q: &BucketQuery,
        sessions: &[String],
    ) -> Result<Vec<BucketRow>, StoreError> {
        let mut args = vec![Arg::S(tenant.to_string())];
        let p = |a: Arg, args: &mut Vec<Arg>| {
            args.push(a);
            format!("${}", args.len())
        };
        // Per session, the repository is the session's: joined after grouping (one lookup per
        // session instead of one per rollup row).
        let late_repo = q.by_session && q.by_repo && q.repo.is_none();
        debug_assert!(sessions.is_empty() || q.by_session);
        let join = (q.by_repo && !late_repo) || q.repo.is_some();
        // The hourly table has no session: usable when no session or repository is involved
        // and every boundary the query draws falls on the hour.
        let on_hour = |v: Option<i64>| v.is_none_or(|v| v.rem_euclid(HOUR_US) == 0);
        let on_day = |v: Option<i64>| v.is_none_or(|v| v.rem_euclid(DAY_US) == 0);
        let hourly = !q.by_session
            && !join
            && q.session.is_none()
            && on_hour(q.grain_us)
            && on_hour(q.since_us)
            && on_hour(q.until_us);
        // The daily table likewise, when every boundary falls on a UTC day.
        let daily = hourly && on_day(q.grain_us) && on_day(q.since_us) && on_day(q.until_us);
        let table = if daily {
            "turn_rollup_daily"
        } else if hourly {
            "turn_rollup_hourly"
        } else {
            "turn_rollup"
        };
        let mut select = vec![
            "MIN(r.first_us) AS first_us".to_string(),
            "MAX(r.last_us) AS last_us".into(),
            "r.model AS model".into(),
        ];
        let mut group = vec!["r.model".to_string()];
        if let Some(g) = q.grain_us {
            let ph = p(Arg::I(g.max(BUCKET_US)), &mut args);
            group.push(format!("r.bucket_us / {ph}"));
        }
        for (on, col, name) in [
            (q.by_session, "r.session_id", "session"),
            (q.by_device, "r.device_id", "device"),
            (q.by_repo && !late_repo, "COALESCE(s.repo_id, '')", "repo"),
            (q.by_source, "r.source", "source"),
        ] {
            if on {
                select.push(format!("{col} AS {name}"));
                group.push(col.to_string());
            } else {
                select.push(format!("'' AS {name}"));
            }
        }
        let mut wh = vec!["r.tenant = $1".to_string()];
        if let Some(v) = q.since_us {
            wh.push(format!("r.bucket_us >= {}", p(Arg::I(v), &mut args)));
        }
        if let Some(v) = q.until_us {
            wh.push(format!("r.bucket_us < {}", p(Arg::I(v), &mut args)));
        }
        for (val, col) in [
            (&q.repo, "COALESCE(s.repo_id, '')"),
            (&q.device, "r.device_id"),
            (&q.model, "r.model"),
            (&q.source, "r.source"),
            (&q.session, "r.session_id"),
        ] {
            if let Some(v) = val {
                wh.push(format!("{col} = {}", p(Arg::S(v.clone()), &mut args)));
            }
        }
        if !sessions.is_empty() {
            let list: Vec<String> = sessions
                .iter()
                .map(|v| p(Arg::S(v.clone()), &mut args))
                .collect();
            wh.push(format!("r.session_id IN ({})", list.join(", ")));
        }
        let sql = format!(
            "SELECT {}, CAST(SUM(r.turns) AS BIGINT) AS turns, \
             SUM(r.tokens_in) AS tin, SUM(r.tokens_out) AS tout, SUM(r.cache_creation_tokens) AS tcc, \
             SUM(r.cache_read_tokens) AS tcr, CAST(SUM(r.carried * r.turns) AS BIGINT) AS cturns, \
             SUM(r.carried * r.tokens_in) AS cin, SUM(r.carried * r.tokens_out) AS cout, \
             SUM(r.carried * r.cache_creation_tokens) AS ccc, SUM(r.carried * r.cache_read_tokens) AS ccr, \
             SUM(r.cost_usd) AS cost, SUM(r.latency_ms) AS lat, SUM(r.features) AS features, \
             SUM(r.capacity) AS capacity \
             FROM {table} r {} WHERE {} GROUP BY {}",
            select.join(", "),
            if join {
                "LEFT JOIN report_sessions s ON s.tenant = r.tenant AND s.session_id = r.session_id"
            } else {
                ""
            },
            wh.join(" AND "),
            group.join(", "),
        );
        let rows = self.bucket_rows(sql, &args).await?;
        self.with_repos(tenant, rows, late_repo).await
    }

    /// The repositories of `sessions` (every session's when they are many), for a tenant.
    async fn session_repos(
        &self,
        tenant: &str,
        sessions: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        const ALL: &str = "SELECT session_id, repo_id FROM report_sessions WHERE tenant = $1";
        let mut args = vec![Arg::S(tenant.to_string())];
        let sql = if sessions.len() > EDGE_CHUNK {
            ALL.to_string()
        } else {
            let list: Vec<String> = sessions.iter().map(|s| (*s).to_string()).collect();
            format!(
                "{ALL} AND session_id IN ({})",
                placeholders(&list, &mut args)
            )
        };
        per_backend!(self.reader(), |pool| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for a in &args {
                if let Arg::S(v) = a {
                    query = query.bind(v.as_str());
                }
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| -> Result<(String, String), StoreError> {
                    Ok((r.try_get(0)?, r.try_get(1)?))
                })
                .collect::<Result<std::collections::HashMap<_, _>, _>>()
        })
    }

    async fn bucket_rows(&self, sql: String, args: &[Arg]) -> Result<Vec<BucketRow>, StoreError> {
        per_backend!(self.reader(), |pool| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for a in args {
                query = match a {
                    Arg::I(v) => query.bind(*v),
                    Arg::S(v) => query.bind(v.as_str()),
                    Arg::F(v) => query.bind(*v),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| -> Result<BucketRow, StoreError> {
                    let f = |c: &str| -> Result<Option<f64>, StoreError> { Ok(r.try_get(c)?) };
                    let turns: i64 = r.try_get("turns")?;
                    let cturns: Option<i64> = r.try_get("cturns")?;
                    Ok(BucketRow {
                        first_us: r.try_get("first_us")?,
                        last_us: r.try_get("last_us")?,
                        model: r.try_get("model")?,
                        session: r.try_get("session")?,
                        device: r.try_get("device")?,
                        repo: r.try_get("repo")?,
                        source: r.try_get("source")?,
                        turns: u64::try_from(turns).unwrap_or(0),
                        tokens: [
                            sat(f("tin")?),
                            sat(f("tout")?),
                            sat(f("tcc")?),
                            sat(f("tcr")?),
                        ],
                        carried_turns: u64::try_from(cturns.unwrap_or(0)).unwrap_or(0),
                        carried_tokens: [
                            sat(f("cin")?),
                            sat(f("cout")?),
                            sat(f("ccc")?),
                            sat(f("ccr")?),
                        ],
                        carried_cost_usd: f("cost")?.unwrap_or(0.0),
                        latency_ms: f("lat")?.unwrap_or(0.0),
                        features: f("features")?.unwrap_or(0.0),
                        capacity: f("capacity")?.unwrap_or(0.0),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
    }

    /// The tenant's activity per UTC hour before `until_us` (all of it when `None`): the first
    /// and last turn of each hour, which is all the block rule needs.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn activity_hours(
        &self,
        tenant: &str,
        until_us: Option<i64>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        const SQL: &str = "SELECT MIN(first_us) AS f, MAX(last_us) AS l FROM turn_rollup_hourly \
            WHERE tenant = $1 AND bucket_us < $2 GROUP BY bucket_us";
        let until = until_us.unwrap_or(i64::MAX);
        per_backend!(self.reader(), |pool| {
            sqlx::query(SQL)
                .bind(tenant)
                .bind(until)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| -> Result<(i64, i64), StoreError> {
                    Ok((r.try_get("f")?, r.try_get("l")?))
                })
                .collect::<Result<Vec<_>, _>>()
        })
    }

    /// Aggregates a tenant's turns for `/v1/usage`: per model over `recorded_at > rolling_after`,
    /// and per model and UTC hour over `recorded_at > weekly_after` (epoch microseconds).
    ///
    /// Whole hours come from the hourly rollup; only the part of the hour a window starts in is
    /// read from events (at most an hour of them, through the time index), so the answer is
    /// exact and its cost does not grow with the tenant's history.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn usage_inputs(
        &self,
        tenant: &str,
        rolling_after_us: i64,
        weekly_after_us: i64,
    ) -> Result<UsageInputs, StoreError> {
        let rolling = self.window(tenant, rolling_after_us, false).await?;
        let hourly = self.window(tenant, weekly_after_us, true).await?;
        let mut inputs = UsageInputs::default();
        for (model, _, totals) in rolling {
            inputs.rolling.entry(model).or_default().merge(&totals);
        }
        for (model, hour, totals) in hourly {
            let hour = u8::try_from(hour.rem_euclid(24)).unwrap_or(0);
            inputs
                .weekly_by_hour
                .entry(model)
                .or_insert_with(BTreeMap::new)
                .entry(hour)
                .or_default()
                .merge(&totals);
        }
        Ok(inputs)
    }

    /// Turns with `recorded_at > after_us`, per model (and UTC hour when `hourly`).
    async fn window(
        &self,
        tenant: &str,
        after_us: i64,
        hourly: bool,
    ) -> Result<Vec<(String, i64, WindowTotals)>, StoreError> {
        let edge_end = (after_us.div_euclid(HOUR_US) * HOUR_US).saturating_add(HOUR_US);
        let hour_rollup = if hourly {
            "CAST((bucket_us / 3600000000) % 24 AS BIGINT)"
        } else {
            "CAST(0 AS BIGINT)"
        };
        let hour_events = if hourly {
            "CAST((recorded_at_us / 3600000000) % 24 AS BIGINT)"
        } else {
            "CAST(0 AS BIGINT)"
        };
        let whole = format!(
            "SELECT model, {hour_rollup} AS hour, CAST(SUM(turns) AS BIGINT) AS n, \
             SUM(tokens_in) AS tin, SUM(tokens_out) AS tout, SUM(cache_creation_tokens) AS tcc, \
             SUM(cache_read_tokens) AS tcr, SUM(latency_ms) AS lat, MIN(first_us) AS oldest, \
             CAST(SUM(carried * turns) AS BIGINT) AS cn, SUM(carried * tokens_in) AS cin, \
             SUM(carried * tokens_out) AS cout, SUM(carried * cache_creation_tokens) AS ccc, \
             SUM(carried * cache_read_tokens) AS ccr, SUM(cost_usd) AS cost \
             FROM turn_rollup_hourly WHERE tenant = $1 AND bucket_us >= $2 GROUP BY model, {hour_rollup}"
        );
        let d = |c: &str| format!("CAST(COALESCE({c}, 0) AS DOUBLE PRECISION)");
        let carried = |c: &str| format!("CASE WHEN cost_usd IS NULL THEN 0.0 ELSE {} END", d(c));
        let edge = format!(
            "SELECT COALESCE(model, '') AS model, {hour_events} AS hour, COUNT(*) AS n, \
             SUM({}) AS tin, SUM({}) AS tout, SUM({}) AS tcc, SUM({}) AS tcr, \
             SUM({}) AS lat, MIN(recorded_at_us) AS oldest, \
             CAST(SUM(CASE WHEN cost_usd IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS cn, \
             SUM({}) AS cin, SUM({}) AS cout, SUM({}) AS ccc, SUM({}) AS ccr, \
             SUM(COALESCE(cost_usd, 0.0)) AS cost \
             FROM events WHERE tenant = $1 AND kind = 'turn' AND recorded_at_us > $2 \
             AND recorded_at_us < $3 GROUP BY COALESCE(model, ''), {hour_events}",
            d("tokens_in"),
            d("tokens_out"),
            d("cache_creation_tokens"),
            d("cache_read_tokens"),
            d("latency_ms"),
            carried("tokens_in"),
            carried("tokens_out"),
            carried("cache_creation_tokens"),
            carried("cache_read_tokens"),
        );
        let mut out = window_rows(self.reader(), whole, &[tenant], &[edge_end]).await?;
        out.extend(window_rows(self.reader(), edge, &[tenant], &[after_us, edge_end]).await?);
        Ok(out)
    }
}

async fn window_rows(
    pool: Pool<'_>,
    sql: String,
    strs: &[&str],
    ints: &[i64],
) -> Result<Vec<(String, i64, WindowTotals)>, StoreError> {
    per_backend!(pool, |pool| {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in strs {
            q = q.bind(*s);
        }
        for i in ints {
            q = q.bind(*i);
        }
        q.fetch_all(pool)
            .await?
            .iter()
            .map(|r| -> Result<(String, i64, WindowTotals), StoreError> {
                let f = |c: &str| -> Result<Option<f64>, StoreError> { Ok(r.try_get(c)?) };
                let n: i64 = r.try_get("n")?;
                let cn: Option<i64> = r.try_get("cn")?;
                Ok((
                    r.try_get("model")?,
                    r.try_get("hour")?,
                    WindowTotals {
                        samples: u64::try_from(n).unwrap_or(0),
                        tokens_in: sat(f("tin")?),
                        tokens_out: sat(f("tout")?),
                        cache_creation_tokens: sat(f("tcc")?),
                        cache_read_tokens: sat(f("tcr")?),
                        dirty_seconds: f("lat")?.unwrap_or(0.0) / 1000.0,
                        oldest_us: r.try_get("oldest")?,
                        carried_samples: u64::try_from(cn.unwrap_or(0)).unwrap_or(0),
                        carried_tokens: [
                            sat(f("cin")?),
                            sat(f("cout")?),
                            sat(f("ccc")?),
                            sat(f("ccr")?),
                        ],
                        carried_cost_usd: f("cost")?.unwrap_or(0.0),
                    },
                ))
            })
            .collect::<Result<Vec<_>, _>>()
    })
}
