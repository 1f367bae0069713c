//! Session precedence between the two sources of Claude Code turns (migration 0009,
//! `docs/opentelemetry.md`): a session is counted from its `claude_code` turns (hooks or
//! `ccc ingest claude`, exact per request) when it has any, else from its `otlp` turns.
//!
//! Claude Code's OpenTelemetry `api_request` event carries no provider request id, so one
//! request seen by both paths cannot be recognised as one turn; the join key is the session id
//! (Claude Code's OTel `session.id` is the transcript's session id). Both orders are handled in
//! the ingest transaction:
//! - OTLP turns arriving for a session that already has claude_code turns are not stored
//!   ([`admit`]);
//! - claude_code turns arriving for a session whose OTLP turns are counted retract those: their
//!   rollup rows are subtracted and deleted, their events deleted ([`claim`]).
//!
//! Both steps upsert the session's `session_sources` row first, which serialises two
//! collectors storing the two sources of one session at once (PostgreSQL row lock; SQLite has
//! one writer).

use std::borrow::Cow;
use std::collections::BTreeSet;

use sqlx::Row;

use super::sql::Tx;
use super::{NewEvent, PerBackend, StoreError};

/// The wire name of OTLP turns (`TurnSource::Otlp`).
const OTLP: &str = "otlp";
/// The wire name of transcript turns (`TurnSource::ClaudeCode`).
const CLAUDE: &str = "claude_code";

const ADMIT: &str = "INSERT INTO session_sources (tenant, session_id, claude, otlp_live) VALUES ($1, $2, 0, 1) \
    ON CONFLICT (tenant, session_id) DO UPDATE SET \
    otlp_live = CASE WHEN session_sources.claude = 1 THEN 0 ELSE 1 END RETURNING claude";

/// Returns a row only when this batch is the session's first claude_code batch (the `WHERE`
/// keeps the common case, a session already claimed, a lock without a write).
const CLAIM: &str = "INSERT INTO session_sources (tenant, session_id, claude, otlp_live) VALUES ($1, $2, 1, 0) \
    ON CONFLICT (tenant, session_id) DO UPDATE SET claude = 1 WHERE session_sources.claude = 0 \
    RETURNING otlp_live";

/// The time span of a session's OTLP turns, from the per-session rollup (its primary key).
const OTLP_SPAN: &str = "SELECT MIN(first_us) AS f, MAX(last_us) AS l FROM turn_rollup_session \
    WHERE tenant = $1 AND session_id = $2 AND source = 'otlp'";

/// A session's OTLP rows of the 15-minute rollup, within its span (a range of the primary key).
const OTLP_ROWS: &str = "SELECT bucket_us, model, device_id, carried, turns, tokens_in, tokens_out, \
    cache_creation_tokens, cache_read_tokens, latency_ms, cost_usd, features, capacity, first_us, last_us \
    FROM turn_rollup WHERE tenant = $1 AND bucket_us >= $3 AND bucket_us <= $4 \
    AND session_id = $2 AND source = 'otlp'";

/// Keeps the OTLP turns of `events` whose session has no claude_code turns; returns them with
/// the number left out. A batch without OTLP turns costs nothing.
pub(super) async fn admit<'e>(
    tx: &mut Tx<'_>,
    tenant: &str,
    events: &'e [NewEvent],
) -> Result<(Cow<'e, [NewEvent]>, u64), StoreError> {
    let sessions: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.source.as_deref() == Some(OTLP))
        .map(|e| e.session_id.as_deref().unwrap_or(""))
        .collect();
    if sessions.is_empty() {
        return Ok((Cow::Borrowed(events), 0));
    }
    let mut claimed = BTreeSet::new();
    // Sorted: two transactions lock the rows of shared sessions in one order.
    for s in sessions {
        let claude: i64 = per_backend!(&mut *tx, |t| {
            sqlx::query(ADMIT)
                .bind(tenant)
                .bind(s)
                .fetch_one(&mut **t)
                .await?
                .try_get(0)?
        });
        if claude == 1 {
            claimed.insert(s);
        }
    }
    if claimed.is_empty() {
        return Ok((Cow::Borrowed(events), 0));
    }
    let kept: Vec<NewEvent> = events
        .iter()
        .filter(|e| {
            e.source.as_deref() != Some(OTLP)
                || !claimed.contains(e.session_id.as_deref().unwrap_or(""))
        })
        .cloned()
        .collect();
    let left_out = (events.len() - kept.len()) as u64;
    Ok((Cow::Owned(kept), left_out))
}

/// Marks the sessions of the claude_code turns this batch stored as claimed, and retracts the
/// OTLP turns counted for any of them until now. Returns the number of OTLP turns retracted.
pub(super) async fn claim(
    tx: &mut Tx<'_>,
    tenant: &str,
    events: &[NewEvent],
    stored: &std::collections::HashSet<String>,
) -> Result<u64, StoreError> {
    let sessions: BTreeSet<&str> = events
        .iter()
        .filter(|e| e.kind == "turn" && e.source.as_deref() == Some(CLAUDE))
        .filter(|e| stored.contains(&e.event_id))
        .map(|e| e.session_id.as_deref().unwrap_or(""))
        .collect();
    let mut retracted = 0;
    for s in sessions {
        let live: Option<i64> = per_backend!(&mut *tx, |t| {
            sqlx::query(CLAIM)
                .bind(tenant)
                .bind(s)
                .fetch_optional(&mut **t)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?
        });
        if live == Some(1) {
            retracted += retract(tx, tenant, s).await?;
        }
    }
    Ok(retracted)
}

/// One `turn_rollup` row of a session's OTLP turns.
struct RollupRow {
    bucket: i64,
    model: String,
    device: String,
    carried: i64,
    turns: i64,
    sums: [f64; 8],
    first: i64,
    last: i64,
}

/// Removes a session's OTLP turns from every rollup (15-minute, hourly, daily, per-session) and
/// from the events, in the transaction.
async fn retract(tx: &mut Tx<'_>, tenant: &str, session: &str) -> Result<u64, StoreError> {
    let span: (Option<i64>, Option<i64>) = per_backend!(&mut *tx, |t| {
        let r = sqlx::query(OTLP_SPAN)
            .bind(tenant)
            .bind(session)
            .fetch_one(&mut **t)
            .await?;
        (r.try_get("f")?, r.try_get("l")?)
    });
    let (Some(first), Some(last)) = span else {
        return Ok(0);
    };
    let mut rows: Vec<RollupRow> = per_backend!(&mut *tx, |t| {
        sqlx::query(OTLP_ROWS)
            .bind(tenant)
            .bind(session)
            .bind(super::rollup::bucket_of(first))
            .bind(super::rollup::bucket_of(last))
            .fetch_all(&mut **t)
            .await?
            .iter()
            .map(|r| -> Result<RollupRow, StoreError> {
                let mut sums = [0.0; 8];
                for (i, c) in [
                    "tokens_in",
                    "tokens_out",
                    "cache_creation_tokens",
                    "cache_read_tokens",
                    "latency_ms",
                    "cost_usd",
                    "features",
                    "capacity",
                ]
                .iter()
                .enumerate()
                {
                    sums[i] = r.try_get(*c)?;
                }
                Ok(RollupRow {
                    bucket: r.try_get("bucket_us")?,
                    model: r.try_get("model")?,
                    device: r.try_get("device_id")?,
                    carried: r.try_get("carried")?,
                    turns: r.try_get("turns")?,
                    sums,
                    first: r.try_get("first_us")?,
                    last: r.try_get("last_us")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?
    });
    if rows.is_empty() {
        return Ok(0);
    }
    // In key order, like the rollup's own upserts: two transactions retracting sessions that
    // share hourly rows lock them in one order (no deadlock on PostgreSQL).
    rows.sort_by(|a, b| {
        (
            a.bucket.div_euclid(super::HOUR_US),
            &a.model,
            &a.device,
            a.carried,
        )
            .cmp(&(
                b.bucket.div_euclid(super::HOUR_US),
                &b.model,
                &b.device,
                b.carried,
            ))
    });
    const SUBTRACT_HOURLY: &str = "UPDATE turn_rollup_hourly SET turns = turns - $7, \
        tokens_in = tokens_in - $8, tokens_out = tokens_out - $9, \
        cache_creation_tokens = cache_creation_tokens - $10, cache_read_tokens = cache_read_tokens - $11, \
        latency_ms = latency_ms - $12, cost_usd = cost_usd - $13, features = features - $14, \
        capacity = capacity - $15 \
        WHERE tenant = $1 AND bucket_us = $2 AND model = $3 AND device_id = $4 AND source = $5 AND carried = $6";
    const DROP_EMPTY_HOURLY: &str = "DELETE FROM turn_rollup_hourly WHERE tenant = $1 AND bucket_us = $2 \
        AND model = $3 AND device_id = $4 AND source = $5 AND carried = $6 AND turns <= 0";
    // The daily rollup (migration 0008) holds the same sums per UTC day: the same subtraction.
    let daily = |sql: &str| sql.replace("turn_rollup_hourly", "turn_rollup_daily");
    let (subtract_daily, drop_empty_daily) = (daily(SUBTRACT_HOURLY), daily(DROP_EMPTY_HOURLY));
    let mut turns = 0i64;
    let mut span = (i64::MAX, i64::MIN);
    let mut devices = BTreeSet::new();
    for r in &rows {
        turns += r.turns;
        span = (span.0.min(r.first), span.1.max(r.last));
        devices.insert(r.device.as_str());
        let hour = r.bucket.div_euclid(super::HOUR_US) * super::HOUR_US;
        let day = r.bucket.div_euclid(super::rollup::DAY_US) * super::rollup::DAY_US;
        for (bucket, subtract, drop_empty) in [
            (hour, SUBTRACT_HOURLY, DROP_EMPTY_HOURLY),
            (day, subtract_daily.as_str(), drop_empty_daily.as_str()),
        ] {
            per_backend!(&mut *tx, |t| {
                // Both statements address the row by the same key, bound first.
                let keyed = |sql: &str| {
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(tenant)
                        .bind(bucket)
                        .bind(&r.model)
                        .bind(&r.device)
                        .bind(OTLP)
                        .bind(r.carried)
                };
                let mut q = keyed(subtract).bind(r.turns);
                for v in &r.sums {
                    q = q.bind(*v);
                }
                q.execute(&mut **t).await?;
                keyed(drop_empty).execute(&mut **t).await?;
            });
        }
    }
    const DROP_ROLLUP: &str = "DELETE FROM turn_rollup WHERE tenant = $1 AND bucket_us >= $3 \
        AND bucket_us <= $4 AND session_id = $2 AND source = 'otlp'";
    const DROP_SESSION_ROLLUP: &str =
        "DELETE FROM turn_rollup_session WHERE tenant = $1 AND session_id = $2 AND source = 'otlp'";
    // Bounded by the session's time span so the delete uses the turns-by-time index (there is
    // no index on events.session_id: it would cost every insert).
    const DROP_EVENTS: &str = "DELETE FROM events WHERE tenant = $1 AND kind = 'turn' \
        AND recorded_at_us >= $3 AND recorded_at_us <= $4 AND session_id = $2 \
        AND device_id = $5 AND turn_key LIKE 'otlp:%'";
    const DEVICE_EVENTS: &str = "UPDATE devices SET events = CASE WHEN events > $3 THEN events - $3 ELSE 0 END \
        WHERE tenant = $1 AND device_id = $2";
    per_backend!(&mut *tx, |t| {
        sqlx::query(DROP_ROLLUP)
            .bind(tenant)
            .bind(session)
            .bind(super::rollup::bucket_of(first))
            .bind(super::rollup::bucket_of(last))
            .execute(&mut **t)
            .await?;
        sqlx::query(DROP_SESSION_ROLLUP)
            .bind(tenant)
            .bind(session)
            .execute(&mut **t)
            .await?;
        for d in &devices {
            let n = sqlx::query(DROP_EVENTS)
                .bind(tenant)
                .bind(session)
                .bind(span.0)
                .bind(span.1)
                .bind(*d)
                .execute(&mut **t)
                .await?
                .rows_affected();
            sqlx::query(DEVICE_EVENTS)
                .bind(tenant)
                .bind(*d)
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .execute(&mut **t)
                .await?;
        }
    });
    Ok(u64::try_from(turns).unwrap_or(0))
}
