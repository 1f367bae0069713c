//! A report in the JSON shape of ccusage 20 (`ccusage daily|weekly|monthly|session|blocks
//! --json`), so scripts written against ccusage keep working: the same field names and
//! nesting, times in UTC with milliseconds, models in order of first use, per-model rows by
//! cost (highest first), sessions by cost (highest first), and whole numbers written without a fraction as JavaScript does.
//!
//! Gap blocks follow ccusage's own rule (from 5 hours after the last activity to the next
//! activity, when that is more than 5 hours later), not agentos' gap rows.

use serde_json::{Map, Value, json};

use crate::blocks::BLOCK_MS;
use crate::report::{ModelBreakdown, Report, ReportKind, Row, TokenCounts};
use crate::time::{format_ms, parse_iso_ms};

/// A number as JavaScript prints it: whole values without a fraction (`0`, not `0.0`).
fn js_number(v: f64) -> Value {
    // 2^53: beyond it an f64 is not an exact integer any more, and JS switches notation anyway.
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// A report time (local, with offset) as ccusage writes it: UTC with milliseconds.
fn utc(s: &str) -> Value {
    parse_iso_ms(s).map_or(Value::Null, |ms| json!(format_ms(ms)))
}

fn token_fields(m: &mut Map<String, Value>, t: &TokenCounts) {
    m.insert("inputTokens".into(), json!(t.input_tokens));
    m.insert("outputTokens".into(), json!(t.output_tokens));
    m.insert("cacheCreationTokens".into(), json!(t.cache_creation_tokens));
    m.insert("cacheReadTokens".into(), json!(t.cache_read_tokens));
    m.insert("totalTokens".into(), json!(t.total_tokens));
}

/// Models in order of first use (ties by name, so the order does not depend on a map).
fn models_used(breakdown: &[ModelBreakdown]) -> Vec<&str> {
    let mut by_first: Vec<&ModelBreakdown> = breakdown.iter().collect();
    by_first.sort_by(|a, b| a.first_ms.cmp(&b.first_ms).then(a.model.cmp(&b.model)));
    by_first.iter().map(|b| b.model.as_str()).collect()
}

fn model_breakdowns(breakdown: &[ModelBreakdown]) -> Value {
    let mut by_cost: Vec<&ModelBreakdown> = breakdown.iter().collect();
    by_cost.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(a.model.cmp(&b.model))
    });
    Value::Array(
        by_cost
            .iter()
            .map(|b| {
                json!({
                    "modelName": b.model,
                    "inputTokens": b.tokens.input_tokens,
                    "outputTokens": b.tokens.output_tokens,
                    "cacheCreationTokens": b.tokens.cache_creation_tokens,
                    "cacheReadTokens": b.tokens.cache_read_tokens,
                    "cost": js_number(b.cost_usd),
                })
            })
            .collect(),
    )
}

fn period_row(kind: ReportKind, r: &Row) -> Value {
    let mut m = Map::new();
    match kind {
        ReportKind::Daily => {
            m.insert("date".into(), json!(r.key));
        }
        ReportKind::Weekly => {
            m.insert("week".into(), json!(r.key));
        }
        ReportKind::Monthly => {
            m.insert("month".into(), json!(r.key));
        }
        ReportKind::Session
        | ReportKind::Blocks
        | ReportKind::Model
        | ReportKind::Device
        | ReportKind::Repo => {
            m.insert("sessionId".into(), json!(r.key));
            m.insert(
                "projectPath".into(),
                json!(r.project.clone().unwrap_or_default()),
            );
            m.insert("firstActivity".into(), utc(&r.first));
            m.insert("lastActivity".into(), utc(&r.last));
        }
    }
    token_fields(&mut m, &r.tokens);
    m.insert("totalCost".into(), js_number(r.cost_usd));
    m.insert("modelsUsed".into(), json!(models_used(&r.breakdown)));
    m.insert("modelBreakdowns".into(), model_breakdowns(&r.breakdown));
    Value::Object(m)
}

fn block(r: &Row) -> Value {
    let projection = r.block.as_ref().and_then(|b| b.projection.as_ref());
    json!({
        "id": utc(&r.key),
        "startTime": utc(&r.key),
        "endTime": r.end.as_deref().map_or(Value::Null, utc),
        "actualEndTime": utc(&r.last),
        "isActive": r.block.as_ref().is_some_and(|b| b.active),
        "isGap": false,
        "entries": r.turns,
        "tokenCounts": {
            "inputTokens": r.tokens.input_tokens,
            "outputTokens": r.tokens.output_tokens,
            "cacheCreationInputTokens": r.tokens.cache_creation_tokens,
            "cacheReadInputTokens": r.tokens.cache_read_tokens,
        },
        "totalTokens": r.tokens.total_tokens,
        "costUSD": js_number(r.cost_usd),
        "models": models_used(&r.breakdown),
        // agentos measures the pace over all four token kinds; ccusage's indicator figure
        // (without cache tokens) is given the same value.
        "burnRate": projection.map_or(Value::Null, |p| json!({
            "tokensPerMinute": js_number(p.tokens_per_minute),
            "tokensPerMinuteForIndicator": js_number(p.tokens_per_minute),
            "costPerHour": js_number(p.cost_per_hour),
        })),
        "projection": projection.map_or(Value::Null, |p| json!({
            "totalTokens": p.projected_tokens,
            "totalCost": js_number(p.projected_cost_usd),
            "remainingMinutes": p.minutes_left,
        })),
    })
}

fn gap(from_ms: i64, to_ms: i64) -> Value {
    let start = format_ms(from_ms);
    json!({
        "id": format!("gap-{start}"),
        "startTime": start,
        "endTime": format_ms(to_ms),
        "actualEndTime": null,
        "isActive": false,
        "isGap": true,
        "entries": 0,
        "tokenCounts": {
            "inputTokens": 0,
            "outputTokens": 0,
            "cacheCreationInputTokens": 0,
            "cacheReadInputTokens": 0,
        },
        "totalTokens": 0,
        "costUSD": 0,
        "models": [],
        "burnRate": null,
        "projection": null,
    })
}

fn blocks(rep: &Report) -> Value {
    let mut out = Vec::with_capacity(rep.rows.len());
    let mut prev_last: Option<i64> = None;
    for r in rep
        .rows
        .iter()
        .filter(|r| !r.block.as_ref().is_some_and(|b| b.gap))
    {
        let first = parse_iso_ms(&r.first);
        if let (Some(last), Some(first)) = (prev_last, first)
            && first - last > BLOCK_MS
        {
            out.push(gap(last + BLOCK_MS, first));
        }
        prev_last = parse_iso_ms(&r.last);
        out.push(block(r));
    }
    json!({ "blocks": out })
}

/// The report in ccusage 20's JSON shape.
pub fn to_json(rep: &Report) -> Value {
    if rep.kind == ReportKind::Blocks {
        return blocks(rep);
    }
    let list = match rep.kind {
        ReportKind::Daily => "daily",
        ReportKind::Weekly => "weekly",
        ReportKind::Monthly => "monthly",
        ReportKind::Session
        | ReportKind::Blocks
        | ReportKind::Model
        | ReportKind::Device
        | ReportKind::Repo => "sessions",
    };
    let mut rows: Vec<&Row> = rep.rows.iter().collect();
    if rep.kind == ReportKind::Session {
        // ccusage lists sessions by cost, highest first.
        rows.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.last.cmp(&b.last)));
    }
    let rows: Vec<Value> = rows.iter().map(|r| period_row(rep.kind, r)).collect();
    let mut totals = Map::new();
    token_fields(&mut totals, &rep.totals.tokens);
    totals.insert("totalCost".into(), js_number(rep.totals.cost_usd));
    json!({ list: rows, "totals": totals })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_have_no_fraction() {
        assert_eq!(js_number(0.0).to_string(), "0");
        assert_eq!(js_number(2.0).to_string(), "2");
        assert_eq!(js_number(0.25).to_string(), "0.25");
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(
            utc("2026-10-06T02:24:44+02:00"),
            json!("2026-10-06T00:24:44.000Z")
        );
    }
}
