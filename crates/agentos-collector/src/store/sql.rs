//! The ingest transaction. The device-row statements are shared; opening the transaction and
//! the bulk event insert are the only places where the two backends need different SQL.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Connection as _, Postgres, Row, Sqlite, Transaction};

use super::{
    CoverageUpdate, IngestOutcome, MAX_COVERAGE_RANGES, NewEvent, PerBackend, Pool, StoreError,
    coverage_json, parse_coverage, parse_seq_ranges,
};
use crate::coverage::Coverage;
use agentos_core::seq_ranges::SeqRanges;

/// Most rows per SQLite INSERT statement (17 parameters each, well under SQLite's 32766).
const SQLITE_MAX_ROWS: usize = 512;
/// Bound parameters per row. Plain `?` placeholders only: sqlx resolves every *named or
/// numbered* placeholder with `sqlite3_bind_parameter_name`, a linear scan, which made a 500-row
/// statement quadratic (60 % of ingest CPU in a profile).
const SQLITE_ROW_PARAMS: usize = 17;

/// INSERT statements by row count and form, built on first use. Clients send batches of a
/// steady size, so a batch is usually one statement that sqlx already has prepared.
static SQLITE_INSERTS: LazyLock<Mutex<InsertCache>> = LazyLock::new(Mutex::default);

/// (rows, skips stored ids) → statement.
type InsertCache = HashMap<(usize, bool), Arc<str>>;

/// The INSERT of `rows` events: plain (fails on an id already stored, inserting nothing) or,
/// with `skip_stored`, `ON CONFLICT DO NOTHING RETURNING event_id`.
fn sqlite_insert_sql(rows: usize, skip_stored: bool) -> Arc<str> {
    if let Some(sql) = SQLITE_INSERTS
        .lock()
        .ok()
        .and_then(|m| m.get(&(rows, skip_stored)).cloned())
    {
        return sql;
    }
    let row = format!("({},1)", ["?"; SQLITE_ROW_PARAMS].join(","));
    let mut sql = String::from(
        "INSERT INTO events (tenant, event_id, device_id, seq, kind, recorded_at_us, model, \
         tokens_in, tokens_out, latency_ms, received_at_us, body, turn_key, cache_creation_tokens, \
         cache_read_tokens, session_id, cost_usd, rolled) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    if skip_stored {
        // RETURNING names the rows actually stored: only those enter the report rollup.
        sql.push_str(" ON CONFLICT DO NOTHING RETURNING event_id");
    }
    let sql: Arc<str> = sql.into();
    if let Ok(mut m) = SQLITE_INSERTS.lock() {
        m.insert((rows, skip_stored), sql.clone());
    }
    sql
}

/// The PostgreSQL bulk insert: one row per array element, whatever the batch size.
const PG_INSERT: &str = "INSERT INTO events (tenant, event_id, device_id, seq, kind, recorded_at_us, model, \
    tokens_in, tokens_out, latency_ms, received_at_us, body, turn_key, cache_creation_tokens, \
    cache_read_tokens, session_id, cost_usd, rolled) \
    SELECT $1, t.event_id, $2, t.seq, t.kind, t.recorded_at_us, t.model, t.tokens_in, t.tokens_out, \
    t.latency_ms, $3, t.body, t.turn_key, t.cache_creation_tokens, t.cache_read_tokens, \
    t.session_id, t.cost_usd, 1 \
    FROM UNNEST($4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::bigint[], \
    $10::bigint[], $11::float8[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], \
    $16::text[], $17::float8[]) \
    AS t(event_id, seq, kind, recorded_at_us, model, tokens_in, tokens_out, latency_ms, body, turn_key, \
    cache_creation_tokens, cache_read_tokens, session_id, cost_usd) \
    ON CONFLICT DO NOTHING RETURNING event_id";

/// An open transaction of either backend, on a connection [`ingest`] holds.
pub(super) type Tx<'c> = PerBackend<Transaction<'c, Sqlite>, Transaction<'c, Postgres>>;

/// A pooled connection of either backend.
type Conn = PerBackend<PoolConnection<Sqlite>, PoolConnection<Postgres>>;

/// Creates the device row if needed and hands back its coverage and event count. On PostgreSQL
/// the upsert also locks the row until commit, so collectors updating the same device serialise
/// here while other devices proceed; on SQLite the transaction already holds the write lock.
const LOCK_DEVICE: &str = "INSERT INTO devices (tenant, device_id, covered, watermark, max_seq, events, updated_at_us) \
    VALUES ($1, $2, '[]', 0, 0, 0, $3) ON CONFLICT (tenant, device_id) DO UPDATE SET \
    updated_at_us = excluded.updated_at_us RETURNING covered, held, forgotten, events";

/// Writes the device's new coverage and event count (the row exists after [`LOCK_DEVICE`]).
const STORE_DEVICE: &str = "UPDATE devices SET covered = $3, watermark = $4, max_seq = $5, events = $6, \
    held = $7, forgotten = $8 WHERE tenant = $1 AND device_id = $2";

/// The whole ingest transaction: events first, then the device row, so the device lock is held
/// only for the short coverage update.
///
/// A connection whose transaction failed is closed, never returned to the pool: when a COMMIT
/// fails on SQLite (disk full, I/O error) SQLite has already rolled back, the driver's rollback
/// then fails too and it keeps believing a transaction is open, so every later `BEGIN` on that
/// connection would fail ("attempted to call begin_with at non-zero transaction depth") — with
/// one writer connection, the whole collector would stay wedged after the disk recovered. The
/// pool opens a fresh connection for the next request instead.
pub(super) async fn ingest(
    pool: Pool<'_>,
    tenant: &str,
    device_id: &str,
    events: &[NewEvent],
    update: &CoverageUpdate,
    now_us: i64,
) -> Result<IngestOutcome, StoreError> {
    let mut conn: Conn = match pool {
        PerBackend::Sqlite(p) => PerBackend::Sqlite(p.acquire().await?),
        PerBackend::Postgres(p) => PerBackend::Postgres(p.acquire().await?),
    };
    let out: Result<IngestOutcome, StoreError> = async {
        let mut tx = begin(&mut conn).await?;
        // One source per session (claude_code over otlp): see `precedence`.
        let (admitted, superseded) = super::precedence::admit(&mut tx, tenant, events).await?;
        let events: &[NewEvent] = &admitted;
        let stored = insert_events(&mut tx, tenant, device_id, events, now_us).await?;
        let inserted = stored.len() as u64;
        let retracted = super::precedence::claim(&mut tx, tenant, events, &stored).await?;
        super::rollup::apply(&mut tx, tenant, device_id, events, &stored).await?;
        let (text, held, forgotten, old_events): (String, String, String, i64) =
            per_backend!(&mut tx, |t| {
                let row = sqlx::query(LOCK_DEVICE)
                    .bind(tenant)
                    .bind(device_id)
                    .bind(now_us)
                    .fetch_one(&mut **t)
                    .await?;
                (
                    row.try_get("covered")?,
                    row.try_get("held")?,
                    row.try_get("forgotten")?,
                    row.try_get("events")?,
                )
            });
        let mut coverage = parse_coverage(&text)?;
        let mut held = parse_seq_ranges(&held, "held")?;
        // Before this batch's ranges are added: a new event at a seq the device had already
        // accounted for (and was not holding back) reuses that seq.
        let seq_conflicts: Vec<u64> = events
            .iter()
            .filter(|e| stored.contains(&e.event_id))
            .filter_map(|e| u64::try_from(e.seq).ok())
            .filter(|&seq| coverage.contains(seq) && !held.contains(seq))
            .collect();
        for &(from, to) in &update.covered {
            coverage.add(from, to);
        }
        check_fragmentation(&coverage, device_id)?;
        let mut forgotten = parse_seq_ranges(&forgotten, "forgotten")?;
        for &(from, to) in &update.held {
            held.add(from, to);
        }
        for &(from, to) in &update.forgotten {
            held.remove(from, to);
            forgotten.add(from, to);
        }
        for &seq in &update.arrived {
            held.remove(seq, seq);
        }
        if held.ranges().len().max(forgotten.ranges().len()) > MAX_COVERAGE_RANGES {
            return Err(StoreError::TooFragmented {
                device: device_id.to_string(),
                max: MAX_COVERAGE_RANGES,
            });
        }
        per_backend!(&mut tx, |t| {
            sqlx::query(STORE_DEVICE)
                .bind(tenant)
                .bind(device_id)
                .bind(coverage_json(&coverage))
                .bind(clamp_i64(coverage.watermark()))
                .bind(clamp_i64(coverage.max_seq()))
                .bind(old_events.saturating_add(clamp_i64(inserted)))
                .bind(ranges_json(&held))
                .bind(ranges_json(&forgotten))
                .execute(&mut **t)
                .await?;
        });
        per_backend!(tx, |t| t.commit().await?);
        Ok(IngestOutcome {
            inserted,
            coverage,
            held,
            forgotten,
            seq_conflicts,
            superseded,
            retracted,
        })
    }
    .await;
    if out.is_err() {
        per_backend!(&mut conn, |c| c.close_on_drop());
    }
    out
}

/// Backend-specific: how a write transaction starts.
async fn begin(conn: &mut Conn) -> Result<Tx<'_>, StoreError> {
    Ok(match conn {
        // IMMEDIATE takes the write lock up front, so a concurrent writer (e.g. `keys create`
        // from another process) makes us wait on busy_timeout instead of failing mid-transaction.
        PerBackend::Sqlite(c) => PerBackend::Sqlite(c.begin_with("BEGIN IMMEDIATE").await?),
        // PostgreSQL locks rows, not the database: the device row lock in LOCK_DEVICE is enough.
        PerBackend::Postgres(c) => PerBackend::Postgres(c.begin().await?),
    })
}

/// Backend-specific: the bulk event insert. SQLite has no array parameters, so it gets
/// multi-row VALUES with plain `?`; PostgreSQL gets one UNNEST statement over arrays, which
/// stays under its 65535-parameter limit for any batch size.
async fn insert_events(
    tx: &mut Tx<'_>,
    tenant: &str,
    device_id: &str,
    events: &[NewEvent],
    now_us: i64,
) -> Result<HashSet<String>, StoreError> {
    let mut inserted = HashSet::new();
    if events.is_empty() {
        return Ok(inserted);
    }
    match tx {
        PerBackend::Sqlite(tx) => {
            let mut rest = events;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rest.len().min(SQLITE_MAX_ROWS));
                rest = tail;
                let bind_all = |sql: Arc<str>| {
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for e in chunk {
                        q = q
                            .bind(tenant)
                            .bind(e.event_id.as_str())
                            .bind(device_id)
                            .bind(e.seq)
                            .bind(e.kind)
                            .bind(e.recorded_at_us)
                            .bind(e.model.as_deref())
                            .bind(e.tokens_in)
                            .bind(e.tokens_out)
                            .bind(e.latency_ms)
                            .bind(now_us)
                            .bind(e.body.as_str())
                            .bind(e.turn_key.as_deref())
                            .bind(e.cache_creation_tokens)
                            .bind(e.cache_read_tokens)
                            .bind(e.session_id.as_deref())
                            .bind(e.cost_usd);
                    }
                    q
                };
                // Usually every event is new: a plain INSERT stores them all without handing
                // 500 ids back through the driver one row at a time. When one is already
                // stored (a retried batch) it fails and stores nothing (SQLite undoes the
                // statement, the transaction goes on); then the rows actually stored are named.
                match bind_all(sqlite_insert_sql(chunk.len(), false))
                    .execute(&mut **tx)
                    .await
                {
                    Ok(_) => inserted.extend(chunk.iter().map(|e| e.event_id.clone())),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        for row in bind_all(sqlite_insert_sql(chunk.len(), true))
                            .fetch_all(&mut **tx)
                            .await?
                        {
                            inserted.insert(row.try_get::<String, _>(0)?);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        PerBackend::Postgres(tx) => {
            // Sorting by id makes concurrent batches that share ids wait on each other in one
            // order (no deadlock).
            let mut sorted: Vec<&NewEvent> = events.iter().collect();
            sorted.sort_by(|a, b| a.event_id.cmp(&b.event_id));
            let rows = sqlx::query(PG_INSERT)
                .bind(tenant)
                .bind(device_id)
                .bind(now_us)
                .bind(column(&sorted, |e| e.event_id.as_str()))
                .bind(column(&sorted, |e| e.seq))
                .bind(column(&sorted, |e| e.kind))
                .bind(column(&sorted, |e| e.recorded_at_us))
                .bind(column(&sorted, |e| e.model.as_deref()))
                .bind(column(&sorted, |e| e.tokens_in))
                .bind(column(&sorted, |e| e.tokens_out))
                .bind(column(&sorted, |e| e.latency_ms))
                .bind(column(&sorted, |e| e.body.as_str()))
                .bind(column(&sorted, |e| e.turn_key.as_deref()))
                .bind(column(&sorted, |e| e.cache_creation_tokens))
                .bind(column(&sorted, |e| e.cache_read_tokens))
                .bind(column(&sorted, |e| e.session_id.as_deref()))
                .bind(column(&sorted, |e| e.cost_usd))
                .fetch_all(&mut **tx)
                .await?;
            for row in rows {
                inserted.insert(row.try_get::<String, _>(0)?);
            }
        }
    }
    Ok(inserted)
}

/// One UNNEST array of [`PG_INSERT`]: `field` of every event, in batch order.
fn column<'a, T>(events: &[&'a NewEvent], field: impl Fn(&'a NewEvent) -> T) -> Vec<T> {
    events.iter().map(|&e| field(e)).collect()
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ranges_json(r: &SeqRanges) -> String {
    serde_json::to_string(r).unwrap_or_else(|_| "[]".into())
}

fn check_fragmentation(c: &Coverage, device_id: &str) -> Result<(), StoreError> {
    // Returning an error drops the transaction: nothing of the batch is stored.
    if c.ranges().len() > MAX_COVERAGE_RANGES {
        return Err(StoreError::TooFragmented {
            device: device_id.to_string(),
            max: MAX_COVERAGE_RANGES,
        });
    }
    Ok(())
}
