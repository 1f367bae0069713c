//! Backend-specific ingest transactions (the only place where the two SQL dialects differ).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use sqlx::{AssertSqlSafe, PgPool, Row, SqlitePool};

use super::{
    IngestOutcome, MAX_COVERAGE_RANGES, NewEvent, StoreError, coverage_json, parse_coverage,
};
use crate::coverage::{Coverage, SeqRange};

/// Most rows per SQLite INSERT statement (12 parameters each, well under SQLite's 32766).
const SQLITE_MAX_ROWS: usize = 512;
/// Bound parameters per row. Plain `?` placeholders only: sqlx resolves every *named or
/// numbered* placeholder with `sqlite3_bind_parameter_name`, a linear scan, which made a 500-row
/// statement quadratic (60 % of ingest CPU in a profile).
const SQLITE_ROW_PARAMS: usize = 12;

/// INSERT statements by row count, built on first use. Clients send batches of a steady size,
/// so a batch is usually one statement that sqlx already has prepared.
static SQLITE_INSERTS: LazyLock<Mutex<HashMap<usize, Arc<str>>>> = LazyLock::new(Mutex::default);

fn sqlite_insert_sql(rows: usize) -> Arc<str> {
    if let Some(sql) = SQLITE_INSERTS
        .lock()
        .ok()
        .and_then(|m| m.get(&rows).cloned())
    {
        return sql;
    }
    let row = format!("({})", ["?"; SQLITE_ROW_PARAMS].join(","));
    let mut sql = String::from(
        "INSERT INTO events (tenant, event_id, device_id, seq, kind, recorded_at_us, model, \
         tokens_in, tokens_out, latency_ms, received_at_us, body) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    let sql: Arc<str> = sql.into();
    if let Ok(mut m) = SQLITE_INSERTS.lock() {
        m.insert(rows, sql.clone());
    }
    sql
}

pub(super) async fn sqlite_ingest(
    writer: &SqlitePool,
    tenant: &str,
    device_id: &str,
    events: &[NewEvent],
    covered: &[SeqRange],
    now_us: i64,
) -> Result<IngestOutcome, StoreError> {
    // IMMEDIATE takes the write lock up front, so a concurrent writer (e.g. `keys create` from
    // another process) makes us wait on busy_timeout instead of failing mid-transaction.
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut inserted = 0u64;
    let mut rest = events;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(SQLITE_MAX_ROWS));
        rest = tail;
        let mut q = sqlx::query(AssertSqlSafe(sqlite_insert_sql(chunk.len())));
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
                .bind(e.body.as_str());
        }
        inserted += q.execute(&mut *tx).await?.rows_affected();
    }
    let row =
        sqlx::query("SELECT covered, events FROM devices WHERE tenant = ?1 AND device_id = ?2")
            .bind(tenant)
            .bind(device_id)
            .fetch_optional(&mut *tx)
            .await?;
    let (mut coverage, old_events) = match row {
        Some(r) => {
            let text: String = r.try_get("covered")?;
            let n: i64 = r.try_get("events")?;
            (parse_coverage(&text)?, n)
        }
        None => (Coverage::default(), 0),
    };
    for &(from, to) in covered {
        coverage.add(from, to);
    }
    check_fragmentation(&coverage, device_id)?;
    sqlx::query(
        "INSERT INTO devices (tenant, device_id, covered, watermark, max_seq, events, updated_at_us) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant, device_id) DO UPDATE SET \
         covered = excluded.covered, watermark = excluded.watermark, max_seq = excluded.max_seq, \
         events = excluded.events, updated_at_us = excluded.updated_at_us",
    )
    .bind(tenant)
    .bind(device_id)
    .bind(coverage_json(&coverage))
    .bind(clamp_i64(coverage.watermark()))
    .bind(clamp_i64(coverage.max_seq()))
    .bind(old_events.saturating_add(clamp_i64(inserted)))
    .bind(now_us)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(IngestOutcome { inserted, coverage })
}

const PG_INSERT: &str = "INSERT INTO events (tenant, event_id, device_id, seq, kind, recorded_at_us, model, \
    tokens_in, tokens_out, latency_ms, received_at_us, body) \
    SELECT $1, t.event_id, $2, t.seq, t.kind, t.recorded_at_us, t.model, t.tokens_in, t.tokens_out, \
    t.latency_ms, $3, t.body \
    FROM UNNEST($4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::bigint[], \
    $10::bigint[], $11::float8[], $12::text[]) \
    AS t(event_id, seq, kind, recorded_at_us, model, tokens_in, tokens_out, latency_ms, body) \
    ON CONFLICT DO NOTHING";

pub(super) async fn pg_ingest(
    pool: &PgPool,
    tenant: &str,
    device_id: &str,
    events: &[NewEvent],
    covered: &[SeqRange],
    now_us: i64,
) -> Result<IngestOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let mut inserted = 0u64;
    if !events.is_empty() {
        // Events go in before the device row is locked, so the lock is held only for the short
        // coverage update. Sorting by id makes concurrent batches that share ids wait on each
        // other in one order (no deadlock).
        let mut sorted: Vec<&NewEvent> = events.iter().collect();
        sorted.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        inserted = sqlx::query(PG_INSERT)
            .bind(tenant)
            .bind(device_id)
            .bind(now_us)
            .bind(
                sorted
                    .iter()
                    .map(|e| e.event_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(sorted.iter().map(|e| e.seq).collect::<Vec<_>>())
            .bind(sorted.iter().map(|e| e.kind).collect::<Vec<_>>())
            .bind(sorted.iter().map(|e| e.recorded_at_us).collect::<Vec<_>>())
            .bind(
                sorted
                    .iter()
                    .map(|e| e.model.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(sorted.iter().map(|e| e.tokens_in).collect::<Vec<_>>())
            .bind(sorted.iter().map(|e| e.tokens_out).collect::<Vec<_>>())
            .bind(sorted.iter().map(|e| e.latency_ms).collect::<Vec<_>>())
            .bind(sorted.iter().map(|e| e.body.as_str()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    // The upsert locks the device row until commit: collectors updating the same device
    // serialise here, and RETURNING hands back the coverage as of the lock.
    let row = sqlx::query(
        "INSERT INTO devices (tenant, device_id, covered, watermark, max_seq, events, updated_at_us) \
         VALUES ($1, $2, '[]', 0, 0, 0, $3) ON CONFLICT (tenant, device_id) DO UPDATE SET \
         updated_at_us = excluded.updated_at_us RETURNING covered, events",
    )
    .bind(tenant)
    .bind(device_id)
    .bind(now_us)
    .fetch_one(&mut *tx)
    .await?;
    let text: String = row.try_get("covered")?;
    let old_events: i64 = row.try_get("events")?;
    let mut coverage = parse_coverage(&text)?;
    for &(from, to) in covered {
        coverage.add(from, to);
    }
    check_fragmentation(&coverage, device_id)?;
    sqlx::query(
        "UPDATE devices SET covered = $3, watermark = $4, max_seq = $5, events = $6 \
         WHERE tenant = $1 AND device_id = $2",
    )
    .bind(tenant)
    .bind(device_id)
    .bind(coverage_json(&coverage))
    .bind(clamp_i64(coverage.watermark()))
    .bind(clamp_i64(coverage.max_seq()))
    .bind(old_events.saturating_add(clamp_i64(inserted)))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(IngestOutcome { inserted, coverage })
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
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
