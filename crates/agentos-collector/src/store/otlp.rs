//! The OTLP metric cross-check (`otlp_metric_points`, migration 0009): Claude Code's
//! `claude_code.token.usage` / `claude_code.cost.usage` points stored once each, and per-session
//! totals compared with the session's counted turns.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::{PerBackend, Store, StoreError};
use crate::otlp::MetricPoint;

const INSERT_POINT: &str = "INSERT INTO otlp_metric_points (tenant, session_id, kind, model, start_ns, time_ns, \
    cumulative, value, received_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";

/// Token and cost totals of one session, from one side of the cross-check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Input tokens.
    pub input_tokens: f64,
    /// Output tokens.
    pub output_tokens: f64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: f64,
    /// Tokens written to the prompt cache.
    pub cache_creation_tokens: f64,
    /// Cost in USD.
    pub cost_usd: f64,
}

/// One session of the cross-check (`GET /v1/otlp/sessions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionCrossCheck {
    /// The session.
    pub session_id: String,
    /// Totals of Claude Code's metrics for the session.
    pub metrics: UsageTotals,
    /// Totals of the session's counted turns (whichever source counts it).
    pub turns: UsageTotals,
    /// Number of counted turns.
    pub turn_count: u64,
    /// The source the session's turns are counted from (`claude_code`, `otlp`, or empty when
    /// no turn arrived yet).
    pub counted_source: String,
    /// Token totals agree exactly and cost within a cent (metrics are exported every minute
    /// by default, so a live session may lag).
    pub consistent: bool,
}

impl Store {
    /// Stores metric points; a point already stored (an exporter retry) is skipped. Returns the
    /// number newly stored.
    ///
    /// # Errors
    /// Driver errors; nothing is stored then.
    pub async fn insert_metric_points(
        &self,
        tenant: &str,
        points: &[MetricPoint],
        now_us: i64,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        per_backend!(self.writer(), |pool| {
            let mut tx = pool.begin().await?;
            for p in points {
                n += sqlx::query(INSERT_POINT)
                    .bind(tenant)
                    .bind(&p.session_id)
                    .bind(&p.kind)
                    .bind(&p.model)
                    .bind(p.start_ns)
                    .bind(p.time_ns)
                    .bind(i64::from(p.cumulative))
                    .bind(p.value)
                    .bind(now_us)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
        });
        Ok(n)
    }

    /// The cross-check of the `limit` sessions whose metric points arrived last.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn otlp_cross_check(
        &self,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<SessionCrossCheck>, StoreError> {
        const SESSIONS: &str = "SELECT session_id, MAX(received_at_us) AS at FROM otlp_metric_points \
            WHERE tenant = $1 GROUP BY session_id ORDER BY at DESC, session_id LIMIT $2";
        const POINTS: &str = "SELECT kind, model, start_ns, time_ns, cumulative, value FROM otlp_metric_points \
            WHERE tenant = $1 AND session_id = $2";
        const TURNS: &str = "SELECT source, CAST(SUM(turns) AS BIGINT) AS n, SUM(tokens_in) AS tin, \
            SUM(tokens_out) AS tout, SUM(cache_read_tokens) AS tcr, SUM(cache_creation_tokens) AS tcc, \
            SUM(cost_usd) AS cost FROM turn_rollup WHERE tenant = $1 AND session_id = $2 GROUP BY source";
        let sessions: Vec<String> = per_backend!(self.reader(), |pool| {
            sqlx::query(SESSIONS)
                .bind(tenant)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("session_id"))
                .collect::<Result<Vec<_>, _>>()?
        });
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions {
            type Point = (String, String, i64, i64, i64, f64);
            let points: Vec<Point> = per_backend!(self.reader(), |pool| {
                sqlx::query(POINTS)
                    .bind(tenant)
                    .bind(&s)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| -> Result<Point, sqlx::Error> {
                        Ok((
                            r.try_get("kind")?,
                            r.try_get("model")?,
                            r.try_get("start_ns")?,
                            r.try_get("time_ns")?,
                            r.try_get("cumulative")?,
                            r.try_get("value")?,
                        ))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            });
            let metrics = metric_totals(&points);
            type TurnRow = (String, i64, f64, f64, f64, f64, f64);
            let rows: Vec<TurnRow> = per_backend!(self.reader(), |pool| {
                sqlx::query(TURNS)
                    .bind(tenant)
                    .bind(&s)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| -> Result<TurnRow, sqlx::Error> {
                        Ok((
                            r.try_get("source")?,
                            r.try_get::<Option<i64>, _>("n")?.unwrap_or(0),
                            r.try_get::<Option<f64>, _>("tin")?.unwrap_or(0.0),
                            r.try_get::<Option<f64>, _>("tout")?.unwrap_or(0.0),
                            r.try_get::<Option<f64>, _>("tcr")?.unwrap_or(0.0),
                            r.try_get::<Option<f64>, _>("tcc")?.unwrap_or(0.0),
                            r.try_get::<Option<f64>, _>("cost")?.unwrap_or(0.0),
                        ))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            });
            // A session counts from one source (precedence); prefer claude_code if both show.
            let pick = rows
                .iter()
                .find(|r| r.0 == "claude_code")
                .or_else(|| rows.iter().find(|r| r.0 == "otlp"))
                .or(rows.first());
            let (source, n, turns) = match pick {
                Some(r) => (
                    r.0.clone(),
                    u64::try_from(r.1).unwrap_or(0),
                    UsageTotals {
                        input_tokens: r.2,
                        output_tokens: r.3,
                        cache_read_tokens: r.4,
                        cache_creation_tokens: r.5,
                        cost_usd: r.6,
                    },
                ),
                None => (String::new(), 0, UsageTotals::default()),
            };
            let consistent = metrics.input_tokens == turns.input_tokens
                && metrics.output_tokens == turns.output_tokens
                && metrics.cache_read_tokens == turns.cache_read_tokens
                && metrics.cache_creation_tokens == turns.cache_creation_tokens
                && (metrics.cost_usd - turns.cost_usd).abs() < 0.01;
            out.push(SessionCrossCheck {
                session_id: s,
                metrics,
                turns,
                turn_count: n,
                counted_source: source,
                consistent,
            });
        }
        Ok(out)
    }
}

/// Totals of a session's points: delta points add up; of a cumulative series (kind, model,
/// start) the latest point is its total.
fn metric_totals(points: &[(String, String, i64, i64, i64, f64)]) -> UsageTotals {
    let mut latest: BTreeMap<(&str, &str, i64), (i64, f64)> = BTreeMap::new();
    let mut t = UsageTotals::default();
    let mut add = |kind: &str, v: f64| match kind {
        "input" => t.input_tokens += v,
        "output" => t.output_tokens += v,
        "cacheRead" => t.cache_read_tokens += v,
        "cacheCreation" => t.cache_creation_tokens += v,
        "cost" => t.cost_usd += v,
        _ => {}
    };
    for (kind, model, start, time, cumulative, value) in points {
        if *cumulative == 1 {
            let e = latest
                .entry((kind.as_str(), model.as_str(), *start))
                .or_insert((*time, *value));
            if *time > e.0 {
                *e = (*time, *value);
            }
        } else {
            add(kind, *value);
        }
    }
    for ((kind, _, _), (_, v)) in latest {
        add(kind, v);
    }
    t
}
