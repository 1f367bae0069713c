//! The dashboard's pages. Each page is a list of sections (a chart and/or a table); every table
//! can be downloaded as CSV or JSON with `?format=csv|json&table=NAME` on the page's own URL and
//! filters, so an export is exactly what the page shows.
//!
//! Figures come from [`crate::report::run`] (the figures of `/v1/report`), `/v1/usage`'s
//! computation, and the device coverage the ingest route keeps.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use agentos_ingest::report::{Report, Row};

use super::charts::{legend, stacked_bars};
use super::{PageError, Viewer, render, url_encode};
use crate::error::ApiError;
use crate::report::{ReportQuery, ReportResponse};
use crate::state::AppState;

/// Filters every page takes, plus the export switch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// First day (`YYYY-MM-DD`, in `tz`); default 29 days before `until`.
    #[serde(default)]
    pub since: Option<String>,
    /// Last day, inclusive; default today.
    #[serde(default)]
    pub until: Option<String>,
    /// IANA zone of the days (default UTC).
    #[serde(default)]
    pub tz: Option<String>,
    /// Only this repository.
    #[serde(default)]
    pub repo: Option<String>,
    /// Only this device.
    #[serde(default)]
    pub device: Option<String>,
    /// Only this model.
    #[serde(default)]
    pub model: Option<String>,
    /// Only this source.
    #[serde(default)]
    pub source: Option<String>,
    /// `csv` or `json`: download table `table` instead of the page.
    #[serde(default)]
    pub format: Option<String>,
    /// The table to export.
    #[serde(default)]
    pub table: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl PageQuery {
    /// Empty form fields mean "no filter"; no range means the last 30 days.
    fn normalised(&self, now_us: i64) -> PageQuery {
        let tz = nonempty(&self.tz).unwrap_or_else(|| "UTC".into());
        let mut q = PageQuery {
            since: nonempty(&self.since),
            until: nonempty(&self.until),
            tz: Some(tz.clone()),
            repo: nonempty(&self.repo),
            device: nonempty(&self.device),
            model: nonempty(&self.model),
            // One spelling per source (`claude_code` → `claude`), so the picker shows it.
            source: nonempty(&self.source).map(|s| {
                s.parse::<agentos_core::source::Source>()
                    .map_or(s, |src| src.as_str().to_string())
            }),
            format: nonempty(&self.format),
            table: nonempty(&self.table),
        };
        if q.since.is_none() && q.until.is_none() {
            let zone = jiff::tz::TimeZone::get(&tz).unwrap_or(jiff::tz::TimeZone::UTC);
            if let Ok(now) = jiff::Timestamp::from_microsecond(now_us) {
                let today = now.to_zoned_datetime(zone).date();
                q.until = Some(today.to_string());
                q.since = today
                    .checked_sub(jiff::Span::new().days(29))
                    .ok()
                    .map(|d| d.to_string());
            }
        }
        q
    }

    fn report(&self, kind: &str) -> ReportQuery {
        ReportQuery {
            kind: Some(kind.into()),
            since: self.since.clone(),
            until: self.until.clone(),
            tz: self.tz.clone(),
            repo: self.repo.clone(),
            device: self.device.clone(),
            model: self.model.clone(),
            source: self.source.clone(),
            ..ReportQuery::default()
        }
    }

    /// The filters as a query string (without format/table).
    fn qs(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("since", &self.since),
            ("until", &self.until),
            ("tz", &self.tz),
            ("repo", &self.repo),
            ("device", &self.device),
            ("model", &self.model),
            ("source", &self.source),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", url_encode(v)));
            }
        }
        parts.join("&")
    }
}

/// One cell of a table.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The text shown (and exported).
    pub text: String,
    /// A link, if the cell leads somewhere.
    pub href: Option<String>,
    /// Right-aligned.
    pub num: bool,
}

fn txt(s: impl Into<String>) -> Cell {
    Cell {
        text: s.into(),
        href: None,
        num: false,
    }
}

fn num(s: impl Into<String>) -> Cell {
    Cell {
        text: s.into(),
        href: None,
        num: true,
    }
}

/// A table with a name (its export id).
#[derive(Debug, Clone)]
pub struct Table {
    /// Export name.
    pub name: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
    /// Export links (filled in by the page).
    pub csv: String,
    /// Export link (JSON).
    pub json: String,
}

fn table(name: &str, headers: &[&str], rows: Vec<Vec<Cell>>) -> Table {
    Table {
        name: name.into(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
        rows,
        csv: String::new(),
        json: String::new(),
    }
}

/// One section of a page.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// Anchor id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// A sentence under the heading.
    pub note: Option<String>,
    /// Trusted SVG (and legend) markup, built by [`super::charts`].
    pub chart: Option<String>,
    /// The figures.
    pub table: Option<Table>,
}

/// A headline figure.
#[derive(Debug, Clone)]
pub struct Tile {
    /// What it is.
    pub label: String,
    /// Its value (the browser test reads these by `data-figure`).
    pub value: String,
    /// Machine name for tests and scripts.
    pub key: String,
}

struct NavItem {
    href: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(askama::Template)]
#[template(path = "page.html")]
struct PageView<'a> {
    title: &'a str,
    path: &'a str,
    nav: Vec<NavItem>,
    tenant: &'a str,
    role: &'a str,
    local: bool,
    csrf: &'a str,
    q: &'a PageQuery,
    presets: Vec<(String, &'static str)>,
    tiles: Vec<Tile>,
    sections: Vec<Section>,
}

const PAGES: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/models", "Models"),
    ("/devices", "Devices"),
    ("/sessions", "Sessions"),
    ("/attribution", "Attribution"),
];

fn query(q: Result<Query<PageQuery>, QueryRejection>) -> Result<PageQuery, ApiError> {
    crate::routes::report::query(q)
}

/// Renders a page, or the export of one of its tables.
fn respond(
    v: &Viewer,
    title: &str,
    path: &str,
    q: &PageQuery,
    tiles: Vec<Tile>,
    mut sections: Vec<Section>,
) -> Result<Response, ApiError> {
    let base = q.qs();
    for s in &mut sections {
        if let Some(t) = &mut s.table {
            let sep = if base.is_empty() { "" } else { "&" };
            t.csv = format!("{path}?{base}{sep}format=csv&table={}", url_encode(&t.name));
            t.json = format!(
                "{path}?{base}{sep}format=json&table={}",
                url_encode(&t.name)
            );
        }
    }
    if let Some(format) = q.format.as_deref() {
        let name = q.table.as_deref().unwrap_or("");
        let Some(t) = sections
            .iter()
            .filter_map(|s| s.table.as_ref())
            .find(|t| t.name == name)
        else {
            return Err(ApiError::invalid(
                "/table",
                format!("this page has no table `{name}`"),
            ));
        };
        return export(t, format);
    }
    let presets = [(7, "7 days"), (30, "30 days"), (90, "90 days")]
        .into_iter()
        .filter_map(|(days, label)| {
            let until = q.until.as_deref()?.parse::<jiff::civil::Date>().ok()?;
            let since = until.checked_sub(jiff::Span::new().days(days - 1)).ok()?;
            let mut p = q.clone();
            p.since = Some(since.to_string());
            Some((format!("{path}?{}", p.qs()), label))
        })
        .collect();
    let html = render(&PageView {
        title,
        path,
        nav: PAGES
            .iter()
            .map(|&(href, label)| NavItem {
                href,
                label,
                current: href == path,
            })
            .collect(),
        tenant: &v.principal.tenant,
        role: v.principal.role.as_str(),
        local: v.local,
        csrf: &v.csrf,
        q,
        presets,
        tiles,
        sections,
    })?;
    let mut resp = Html(html).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn export(t: &Table, format: &str) -> Result<Response, ApiError> {
    let (body, ctype, ext) = match format {
        "csv" => {
            let mut out = String::new();
            let line = |cells: Vec<&str>| -> String {
                cells
                    .into_iter()
                    .map(|c| {
                        if c.contains([',', '"', '\n', '\r']) {
                            format!("\"{}\"", c.replace('"', "\"\""))
                        } else {
                            c.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            out.push_str(&line(t.headers.iter().map(String::as_str).collect()));
            out.push_str("\r\n");
            for r in &t.rows {
                out.push_str(&line(r.iter().map(|c| c.text.as_str()).collect()));
                out.push_str("\r\n");
            }
            (out, "text/csv; charset=utf-8", "csv")
        }
        "json" => {
            let rows: Vec<serde_json::Map<String, serde_json::Value>> = t
                .rows
                .iter()
                .map(|r| {
                    t.headers
                        .iter()
                        .zip(r)
                        .map(|(h, c)| (h.clone(), serde_json::Value::String(c.text.clone())))
                        .collect()
                })
                .collect();
            (
                serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into()),
                "application/json",
                "json",
            )
        }
        other => {
            return Err(ApiError::invalid(
                "/format",
                format!("unknown export format `{other}` (csv or json)"),
            ));
        }
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.{ext}\"",
        t.name
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `$1,234.56`; unknown (unpriced) costs are shown as such, never as `$0.00`.
pub fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    format!("${}.{:02}", thousands(cents / 100), (cents % 100).abs())
}

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn tok(n: u64) -> String {
    thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A row's cost, marked when part of it is unknown.
fn row_cost(r: &Row) -> String {
    let unpriced = r.breakdown.iter().any(|b| !b.priced);
    if unpriced {
        format!("{} + unpriced", money(r.cost_usd))
    } else {
        money(r.cost_usd)
    }
}

async fn report(
    state: &AppState,
    v: &Viewer,
    q: &PageQuery,
    kind: &str,
) -> Result<ReportResponse, ApiError> {
    crate::report::run(
        state.store(),
        &v.principal.tenant,
        &q.report(kind),
        &state.inner.prices,
        state.now_us(),
    )
    .await
}

fn totals_tiles(r: &ReportResponse) -> Vec<Tile> {
    let t = &r.report.totals;
    let mut tiles = vec![
        Tile {
            label: "Cost".into(),
            value: money(t.cost_usd),
            key: "cost".into(),
        },
        Tile {
            label: "Turns".into(),
            value: tok(t.turns),
            key: "turns".into(),
        },
        Tile {
            label: "Tokens".into(),
            value: tok(t.tokens.total_tokens),
            key: "tokens".into(),
        },
    ];
    if !r.pricing.unpriced_models.is_empty() {
        tiles.push(Tile {
            label: "Unpriced models (cost unknown, not in the total)".into(),
            value: r.pricing.unpriced_models.join(", "),
            key: "unpriced".into(),
        });
    }
    tiles
}

/// Models in `rows`, by total cost then tokens (the stacking order of the charts).
fn models_of(rows: &[Row]) -> Vec<String> {
    let mut by: BTreeMap<&str, (f64, u64)> = BTreeMap::new();
    for b in rows.iter().flat_map(|r| &r.breakdown) {
        let e = by.entry(&b.model).or_default();
        e.0 += b.cost_usd;
        e.1 += b.tokens.total_tokens;
    }
    let mut v: Vec<(&str, (f64, u64))> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(b.1.1.cmp(&a.1.1)));
    v.into_iter().map(|(m, _)| m.to_string()).collect()
}

fn per_model_series(
    rows: &[Row],
    models: &[String],
    value: &dyn Fn(&agentos_ingest::report::ModelBreakdown) -> f64,
) -> Vec<(String, Vec<f64>)> {
    models
        .iter()
        .map(|m| {
            (
                m.clone(),
                rows.iter()
                    .map(|r| {
                        r.breakdown
                            .iter()
                            .filter(|b| &b.model == m)
                            .map(value)
                            .sum()
                    })
                    .collect(),
            )
        })
        .collect()
}

fn chart(
    title: &str,
    rows: &[Row],
    models: &[String],
    value: &dyn Fn(&agentos_ingest::report::ModelBreakdown) -> f64,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let cats: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    let series = per_model_series(rows, models, value);
    format!(
        "{}{}",
        stacked_bars(title, &cats, &series, fmt),
        legend(models)
    )
}

fn report_table(
    name: &str,
    first: &str,
    rep: &Report,
    link: Option<&dyn Fn(&Row) -> String>,
) -> Table {
    let rows = rep
        .rows
        .iter()
        .map(|r| {
            let mut key = txt(r.key.clone());
            if let Some(f) = link {
                key.href = Some(f(r));
            }
            vec![
                key,
                num(tok(r.turns)),
                num(tok(r.tokens.input_tokens)),
                num(tok(r.tokens.output_tokens)),
                num(tok(r.tokens.cache_creation_tokens)),
                num(tok(r.tokens.cache_read_tokens)),
                num(tok(r.tokens.total_tokens)),
                num(row_cost(r)),
                txt(r.models.join(" ")),
            ]
        })
        .collect();
    table(
        name,
        &[
            first,
            "Turns",
            "Input",
            "Output",
            "Cache write",
            "Cache read",
            "Total tokens",
            "Cost (USD)",
            "Models",
        ],
        rows,
    )
}

/// `GET /`: the overview.
///
/// # Errors
/// 422 for bad filters, 5xx when the database fails; no session: to the sign-in page.
pub async fn overview(
    State(state): State<AppState>,
    v: Viewer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = query(q)?.normalised(state.now_us());
    // The three reads are independent: run them at once (separate pooled connections).
    let tenant = &v.principal.tenant;
    let prices = &state.inner.prices;
    let now_us = state.now_us();
    let (daily_q, session_q, repo_q) = (q.report("daily"), q.report("session"), q.report("repo"));
    let (daily, sessions, repos) = tokio::try_join!(
        crate::report::run_with_rows(state.store(), tenant, &daily_q, prices, now_us),
        crate::report::top_sessions(state.store(), tenant, &session_q, prices, now_us, 10),
        crate::report::run(state.store(), tenant, &repo_q, prices, now_us),
    )?;
    let (daily, buckets, plan) = daily;
    let models = models_of(&daily.report.rows);
    let rows = &daily.report.rows;
    let mut sections = vec![
        Section {
            id: "cost".into(),
            title: "Cost per day, by model".into(),
            note: (!daily.pricing.unpriced_models.is_empty()).then(|| {
                format!(
                    "No price for {}: their turns are counted, their cost is not.",
                    daily.pricing.unpriced_models.join(", ")
                )
            }),
            chart: Some(chart(
                "Cost per day by model",
                rows,
                &models,
                &|b| b.cost_usd,
                &money,
            )),
            table: Some(report_table("daily", "Day", &daily.report, None)),
        },
        Section {
            id: "tokens".into(),
            title: "Tokens per day, by model".into(),
            chart: Some(chart(
                "Tokens per day by model",
                rows,
                &models,
                &|b| b.tokens.total_tokens as f64,
                &|v| thousands(v as i64),
            )),
            ..Section::default()
        },
    ];
    // Features shipped and features per capacity, per day: other sums of the daily report's
    // groups (whose grain, a day in UTC or a quarter hour elsewhere, never splits a local day).
    let mut per_day: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for r in &buckets {
        let day = agentos_ingest::time::local_day(&plan.options.tz, r.first_us.div_euclid(1000));
        let e = per_day.entry(day).or_default();
        e.0 += r.features;
        e.1 += r.capacity;
    }
    let feature_rows: Vec<Vec<Cell>> = per_day
        .iter()
        .map(|(day, (f, c))| {
            vec![
                txt(agentos_ingest::time::day_string(*day)),
                num(format!("{f:.2}")),
                num(format!("{c:.2}")),
                num(if *c > 0.0 {
                    format!("{:.3}", f / c)
                } else {
                    "–".into()
                }),
            ]
        })
        .collect();
    let cats: Vec<String> = per_day
        .keys()
        .map(|d| agentos_ingest::time::day_string(*d))
        .collect();
    sections.push(Section {
        id: "features".into(),
        title: "Features shipped".into(),
        note: Some("Σ measurement.feature_delta of the day's turns; per capacity = features ÷ Σ turn.capacity_used.".into()),
        chart: Some(format!(
            "{}{}",
            stacked_bars(
                "Features shipped per day",
                &cats,
                &[("features".into(), per_day.values().map(|(f, _)| *f).collect())],
                &|v| format!("{v:.1}")
            ),
            legend(&["features".into()])
        )),
        table: Some(table(
            "features",
            &["Day", "Features shipped", "Capacity used", "Features per capacity"],
            feature_rows,
        )),
    });
    // The repository report's rows, costliest first.
    let mut repos = repos.report;
    repos
        .rows
        .sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key)));
    repos.rows.truncate(10);
    let link = |r: &Row| format!("/sessions/{}", url_encode(&r.key));
    sections.push(Section {
        id: "top-sessions".into(),
        title: "Top sessions by cost".into(),
        table: Some(report_table(
            "top-sessions",
            "Session",
            &sessions,
            Some(&link),
        )),
        ..Section::default()
    });
    sections.push(Section {
        id: "top-repos".into(),
        title: "Top repositories by cost".into(),
        note: Some("A session's repository comes from its session event; \"\" = not known.".into()),
        table: Some(report_table("top-repos", "Repository", &repos, None)),
        ..Section::default()
    });
    Ok(respond(
        &v,
        "Overview",
        "/",
        &q,
        totals_tiles(&daily),
        sections,
    )?)
}

fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// `GET /models`: quotas and speeds (what `/v1/usage` knows), and the range's figures per model.
///
/// # Errors
/// As [`overview`].
pub async fn models(
    State(state): State<AppState>,
    v: Viewer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = query(q)?.normalised(state.now_us());
    let snap = crate::routes::usage::snapshot(&state, &v.principal.tenant, None).await?;
    let usage_rows = snap
        .models
        .iter()
        .map(|(name, m)| {
            let eta = if m.eta_rolling_sec > 0 {
                format!(
                    "{}h {:02}m",
                    m.eta_rolling_sec / 3600,
                    (m.eta_rolling_sec % 3600) / 60
                )
            } else {
                "–".into()
            };
            let cost = |c: Option<f64>| c.map_or_else(|| "unpriced".into(), money);
            vec![
                txt(name.clone()),
                txt(m.provider.clone().unwrap_or_default()),
                num(pct(m.rolling_pct)),
                num(pct(m.weekly_pct)),
                txt(match (m.block, m.warn) {
                    (true, _) => "BLOCK",
                    (false, true) => "warn",
                    _ => "ok",
                }),
                num(eta),
                num(tok(m.reqs)),
                num(format!("{:.1}", m.speeds.rolling.out_dirty_tps)),
                num(format!("{:.1}", m.speeds.session.out_dirty_tps)),
                num(cost(m.rolling_cost_usd)),
                num(cost(m.weekly_cost_usd)),
            ]
        })
        .collect();
    let rep = report(&state, &v, &q, "model").await?;
    let sections = vec![
        Section {
            id: "quota".into(),
            title: "Quota and speed now".into(),
            note: Some(format!(
                "Rolling window {} h, weekly window {} days; budgets from {}.",
                state.inner.quotas.rolling_seconds / 3600,
                state.inner.quotas.weekly_seconds / 86_400,
                snap.path
            )),
            chart: None,
            table: Some(table(
                "quota",
                &[
                    "Model",
                    "Provider",
                    "Rolling %",
                    "Weekly %",
                    "State",
                    "ETA (rolling frees up)",
                    "Requests (rolling)",
                    "Out tok/s (rolling)",
                    "Out tok/s (week)",
                    "Cost (rolling)",
                    "Cost (week)",
                ],
                usage_rows,
            )),
        },
        Section {
            id: "range".into(),
            title: "In the selected range".into(),
            table: Some(report_table("models", "Model", &rep.report, None)),
            ..Section::default()
        },
    ];
    Ok(respond(
        &v,
        "Models",
        "/models",
        &q,
        totals_tiles(&rep),
        sections,
    )?)
}

/// `GET /devices`: delivery health per device (drop detection made visible).
///
/// # Errors
/// As [`overview`].
pub async fn devices(
    State(state): State<AppState>,
    v: Viewer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = query(q)?.normalised(state.now_us());
    let now = state.now_us();
    let devices = state
        .store()
        .devices(&v.principal.tenant)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let rows = devices
        .iter()
        .map(|d| {
            let seen = jiff::Timestamp::from_microsecond(d.updated_at_us)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
                .unwrap_or_default();
            let lag_s = (now - d.updated_at_us).max(0) / 1_000_000;
            let gaps = d.coverage.gaps();
            vec![
                txt(d.device_id.clone()),
                txt(seen),
                num(format!("{}h {:02}m", lag_s / 3600, (lag_s % 3600) / 60)),
                num(tok(d.events)),
                num(tok(d.coverage.watermark())),
                num(tok(d.coverage.max_seq())),
                num(format!("{} ({} seqs)", gaps.len(), d.coverage.gap_seqs())),
                num(tok(d.held.count())),
                num(tok(d.forgotten.count())),
            ]
        })
        .collect();
    let rep = report(&state, &v, &q, "device").await?;
    let sections = vec![
        Section {
            id: "delivery".into(),
            title: "Delivery".into(),
            note: Some("Gaps are seqs below the highest one the collector has not accounted for: lost until the device resends them. Held seqs are kept back by the device's tier and expected later.".into()),
            chart: None,
            table: Some(table(
                "delivery",
                &[
                    "Device",
                    "Last seen",
                    "Since",
                    "Events",
                    "Watermark",
                    "Highest seq",
                    "Gaps",
                    "Held back",
                    "Forgotten",
                ],
                rows,
            )),
        },
        Section {
            id: "range".into(),
            title: "Usage in the selected range".into(),
            table: Some(report_table("devices", "Device", &rep.report, None)),
            ..Section::default()
        },
    ];
    Ok(respond(
        &v,
        "Devices",
        "/devices",
        &q,
        totals_tiles(&rep),
        sections,
    )?)
}

/// `GET /sessions`: sessions of the range, each linking to its turns.
///
/// # Errors
/// As [`overview`].
pub async fn sessions(
    State(state): State<AppState>,
    v: Viewer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = query(q)?.normalised(state.now_us());
    let rep = report(&state, &v, &q, "session").await?;
    let link = |r: &Row| format!("/sessions/{}", url_encode(&r.key));
    let mut t = report_table("sessions", "Session", &rep.report, Some(&link));
    t.headers.insert(1, "Repository".into());
    for (cells, r) in t.rows.iter_mut().zip(&rep.report.rows) {
        cells.insert(1, txt(r.project.clone().unwrap_or_default()));
    }
    let sections = vec![Section {
        id: "sessions".into(),
        title: "Sessions".into(),
        note: Some("Newest last. Only figures leave a device: no prompt or answer text is ever stored here.".into()),
        chart: None,
        table: Some(t),
    }];
    Ok(respond(
        &v,
        "Sessions",
        "/sessions",
        &q,
        totals_tiles(&rep),
        sections,
    )?)
}

/// Most turns listed on a session's page.
const SESSION_TURNS_SHOWN: i64 = 5000;

/// `GET /sessions/{id}`: the turns of one session.
///
/// # Errors
/// 404 when the tenant has no such session; otherwise as [`overview`].
pub async fn session(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = query(q)?.normalised(state.now_us());
    let turns = state
        .store()
        .session_turns(&v.principal.tenant, &id, SESSION_TURNS_SHOWN)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    if turns.is_empty() {
        return Err(PageError::Api(ApiError::NotFound(format!(
            "no session `{id}` in this tenant"
        ))));
    }
    let prices = &state.inner.prices;
    let rows = turns
        .iter()
        .map(|t| {
            let when = jiff::Timestamp::from_microsecond(t.recorded_at_us)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
                .unwrap_or_default();
            let u = |i: usize| u64::try_from(t.tokens[i]).unwrap_or(0);
            let cost = t.cost_usd.or_else(|| {
                prices.lookup(&t.model).map(|p| {
                    p.cost(&agentos_ingest::pricing::Tokens {
                        input: u(0),
                        output: u(1),
                        cache_creation: u(2),
                        cache_read: u(3),
                    })
                })
            });
            vec![
                txt(when),
                txt(t.device_id.clone()),
                // The stored spelling, shown under the canonical id like every other figure.
                txt(agentos_core::model::canonical_model(&t.model).into_owned()),
                num(tok(u(0))),
                num(tok(u(1))),
                num(tok(u(2))),
                num(tok(u(3))),
                num(t
                    .latency_ms
                    .map_or_else(|| "–".into(), |l| format!("{l:.0}"))),
                num(cost.map_or_else(|| "unpriced".into(), |c| format!("${c:.4}"))),
            ]
        })
        .collect();
    let title = format!("Session {id}");
    let sections = vec![Section {
        id: "turns".into(),
        title: "Turns".into(),
        note: Some(format!(
            "Up to {SESSION_TURNS_SHOWN} turns, oldest first. Figures only: the text of prompts and answers never leaves the device."
        )),
        chart: None,
        table: Some(table(
            "turns",
            &[
                "Recorded at",
                "Device",
                "Model",
                "Input",
                "Output",
                "Cache write",
                "Cache read",
                "Latency (ms)",
                "Cost (USD)",
            ],
            rows,
        )),
    }];
    let path = format!("/sessions/{}", url_encode(&id));
    Ok(respond(&v, &title, &path, &q, Vec::new(), sections)?)
}

/// `GET /attribution`: each model's share of tokens and cost over time, and the features of
/// the turns each model served.
///
/// # Errors
/// As [`overview`].
pub async fn attribution(
    State(state): State<AppState>,
    v: Viewer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = query(q)?.normalised(state.now_us());
    let weekly = report(&state, &v, &q, "weekly").await?;
    let rows = &weekly.report.rows;
    let models = models_of(rows);
    let share = |value: &dyn Fn(&agentos_ingest::report::ModelBreakdown) -> f64| {
        let mut out = Vec::new();
        for r in rows {
            let total: f64 = r.breakdown.iter().map(value).sum();
            for b in &r.breakdown {
                let s = if total > 0.0 { value(b) / total } else { 0.0 };
                out.push((r.key.clone(), b.model.clone(), s));
            }
        }
        out
    };
    let tok_share = share(&|b| b.tokens.total_tokens as f64);
    let cost_share = share(&|b| b.cost_usd);
    let table_rows = tok_share
        .iter()
        .zip(&cost_share)
        .map(|((week, model, t), (_, _, c))| {
            vec![
                txt(week.clone()),
                txt(model.clone()),
                num(pct(*t)),
                num(pct(*c)),
            ]
        })
        .collect();
    // Per model: features of the turns it served, from the rollup.
    let plan = crate::report::plan(&q.report("model"), &state.inner.prices, state.now_us())?;
    let buckets = state
        .store()
        .report_buckets(&v.principal.tenant, &plan.buckets)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let mut features: BTreeMap<&str, f64> = BTreeMap::new();
    for b in &buckets {
        *features.entry(&b.model).or_default() += b.features;
    }
    let total_f: f64 = features.values().sum();
    let feature_rows = features
        .iter()
        .map(|(m, f)| {
            vec![
                txt(m.to_string()),
                num(format!("{f:.2}")),
                num(if total_f > 0.0 {
                    pct(f / total_f)
                } else {
                    "–".into()
                }),
            ]
        })
        .collect();
    let normalised = |value: &dyn Fn(&agentos_ingest::report::ModelBreakdown) -> f64| {
        let cats: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let series: Vec<(String, Vec<f64>)> = per_model_series(rows, &models, value)
            .into_iter()
            .map(|(m, vals)| {
                let vals = vals
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let total: f64 = rows[i].breakdown.iter().map(value).sum();
                        if total > 0.0 { x / total } else { 0.0 }
                    })
                    .collect();
                (m, vals)
            })
            .collect();
        (cats, series)
    };
    let (cats, tseries) = normalised(&|b| b.tokens.total_tokens as f64);
    // Weighted model value: each turn's features split by its attribution shares, the fold of
    // `GET /v1/report?kind=value` and of the local `agentos report value`.
    let value =
        crate::report::value(state.store(), &v.principal.tenant, &q.report("value")).await?;
    let total_v: f64 = value
        .attribution
        .by_model
        .values()
        .map(|m| m.features)
        .sum();
    let value_rows = value
        .attribution
        .by_model
        .iter()
        .map(|(m, mv)| {
            vec![
                txt(m.clone()),
                num(format!("{:.2}", mv.features)),
                num(format!("{:.2}", mv.turns)),
                num(if total_v > 0.0 {
                    pct(mv.features / total_v)
                } else {
                    "–".into()
                }),
            ]
        })
        .collect();
    // Per source: the model report split by source (`group=source`), summed per source.
    let mut by_source_q = q.report("model");
    by_source_q.group = Some("source".into());
    let by_source = crate::report::run(
        state.store(),
        &v.principal.tenant,
        &by_source_q,
        &state.inner.prices,
        state.now_us(),
    )
    .await?;
    let mut sources: BTreeMap<String, (u64, u64, f64, bool)> = BTreeMap::new();
    for r in &by_source.report.rows {
        let e = sources
            .entry(r.source.clone().unwrap_or_default())
            .or_default();
        e.0 += r.turns;
        e.1 += r.tokens.total_tokens;
        e.2 += r.cost_usd;
        e.3 |= r.breakdown.iter().any(|b| !b.priced);
    }
    let source_rows = sources
        .iter()
        .map(|(src, (turns, tokens, cost, unpriced))| {
            vec![
                txt(src.clone()),
                num(thousands(i64::try_from(*turns).unwrap_or(i64::MAX))),
                num(tok(*tokens)),
                num(if *unpriced {
                    format!("{} + unpriced", money(*cost))
                } else {
                    money(*cost)
                }),
            ]
        })
        .collect();
    let sections = vec![
        Section {
            id: "sources".into(),
            title: "By source".into(),
            note: Some(
                "Where the turns came from: claude (Claude Code hooks and transcripts), codex, ccc (CCC shim), otlp (Claude Code's OpenTelemetry), recorder (recorded without a source); the same figures as GET /v1/report?kind=model&group=source.".into(),
            ),
            chart: None,
            table: Some(table(
                "by-source",
                &["Source", "Turns", "Tokens", "Cost (USD)"],
                source_rows,
            )),
        },
        Section {
            id: "share".into(),
            title: "Model share per week".into(),
            note: Some("Share of the week's tokens and of its priced cost.".into()),
            chart: Some(format!(
                "{}{}",
                stacked_bars("Share of tokens per week", &cats, &tseries, &pct),
                legend(&models)
            )),
            table: Some(table(
                "share",
                &["Week", "Model", "Share of tokens", "Share of cost"],
                table_rows,
            )),
        },
        Section {
            id: "value".into(),
            title: "Features by the model that served the turn".into(),
            note: Some("Σ measurement.feature_delta per turn.model.".into()),
            chart: None,
            table: Some(table(
                "features-by-model",
                &["Model", "Features", "Share"],
                feature_rows,
            )),
        },
        Section {
            id: "model-value".into(),
            title: "Model value (attribution shares)".into(),
            note: Some(format!(
                "Each turn's features split by its attribution shares (docs/attribution.md), over {} turns in the date range (the other filters do not apply to it); the same figures as GET /v1/report?kind=value.",
                value.turns
            )),
            chart: None,
            table: Some(table(
                "model-value",
                &["Model", "Features", "Turns' worth", "Share of features"],
                value_rows,
            )),
        },
    ];
    Ok(respond(
        &v,
        "Attribution",
        "/attribution",
        &q,
        totals_tiles(&weekly),
        sections,
    )?)
}
