//! Calendar reports over usage records: daily, weekly (weeks start on Monday), monthly, per
//! session, and 5-hour billing blocks. Aggregation only; the CLI renders tables or JSON.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::pricing::{PriceTable, Tokens};
use crate::record::{RecordSet, StringTable, UsageRecord};
use crate::time::{TimeRange, civil_from_days, day_string, format_ms, offset_seconds};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// One row per local day.
    Daily,
    /// One row per week (Monday start).
    Weekly,
    /// One row per month.
    Monthly,
    /// One row per session.
    Session,
    /// One row per 5-hour billing block.
    Blocks,
}

/// Report settings.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Which report.
    pub kind: ReportKind,
    /// Zone for calendar buckets.
    pub tz: TimeZone,
    /// Its name as given (for the output).
    pub tz_name: String,
    /// Records outside are left out.
    pub range: TimeRange,
    /// Prices.
    pub prices: PriceTable,
}

/// Tokens by kind plus their total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenCounts {
    /// Uncached input.
    pub input_tokens: u64,
    /// Output.
    pub output_tokens: u64,
    /// Cache writes.
    pub cache_creation_tokens: u64,
    /// Cache reads.
    pub cache_read_tokens: u64,
    /// All four.
    pub total_tokens: u64,
}

impl From<Tokens> for TokenCounts {
    fn from(t: Tokens) -> Self {
        TokenCounts {
            input_tokens: t.input,
            output_tokens: t.output,
            cache_creation_tokens: t.cache_creation,
            cache_read_tokens: t.cache_read,
            total_tokens: t.total(),
        }
    }
}

/// One model's share of a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelBreakdown {
    /// Model name.
    pub model: String,
    /// Turns.
    pub turns: u64,
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenCounts,
    /// Cost (USD; 0 when the model has no price).
    pub cost_usd: f64,
    /// False when the price table does not know the model.
    pub priced: bool,
}

/// One report row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Period (`2026-09-01`, `2026-W36` as the Monday date, `2026-09`), session id, or block start.
    pub key: String,
    /// Project (session report) or end of the block (blocks report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Block end (blocks report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// First record time in the row.
    pub first: String,
    /// Last record time in the row.
    pub last: String,
    /// Turns.
    pub turns: u64,
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenCounts,
    /// Cost (USD).
    pub cost_usd: f64,
    /// Models used, sorted.
    pub models: Vec<String>,
    /// Per-model breakdown, sorted by model.
    pub breakdown: Vec<ModelBreakdown>,
}

/// Totals over all rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Turns.
    pub turns: u64,
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenCounts,
    /// Cost (USD).
    pub cost_usd: f64,
    /// Per-model totals.
    pub breakdown: Vec<ModelBreakdown>,
}

/// A finished report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which report.
    pub kind: ReportKind,
    /// Time zone of the buckets.
    pub timezone: String,
    /// Rows in key order (blocks and sessions in time order).
    pub rows: Vec<Row>,
    /// Totals.
    pub totals: Totals,
}

#[derive(Default, Clone, Copy)]
struct Agg {
    turns: u64,
    tokens: Tokens,
    first: i64,
    last: i64,
}

impl Agg {
    fn add(&mut self, r: &UsageRecord) {
        if self.turns == 0 {
            self.first = r.ts_ms;
            self.last = r.ts_ms;
        }
        self.turns += 1;
        self.tokens.add(&r.tokens);
        self.first = self.first.min(r.ts_ms);
        self.last = self.last.max(r.ts_ms);
    }
}

const BLOCK_MS: i64 = 5 * 3600 * 1000;

/// Builds a report from a record set.
pub fn build(set: &RecordSet, o: &ReportOptions) -> Report {
    let mut agg = Aggregator::new(o);
    for r in &set.records {
        agg.add(r);
    }
    agg.finish(&set.strings)
}

/// Incremental report builder: feed records one by one (e.g. straight from the store, without
/// holding them all), then [`Aggregator::finish`].
pub struct Aggregator<'o> {
    o: &'o ReportOptions,
    utc: bool,
    groups: FxHashMap<(i64, u32), Agg>,
    // Session → project (session report).
    projects: FxHashMap<i64, u32>,
    // Blocks need every record in time order; other reports keep only their buckets.
    kept: Vec<UsageRecord>,
    off_cache: (i64, i64),
}

impl<'o> Aggregator<'o> {
    /// A new, empty aggregator.
    pub fn new(o: &'o ReportOptions) -> Aggregator<'o> {
        Aggregator {
            o,
            utc: o.tz == TimeZone::UTC,
            groups: FxHashMap::default(),
            projects: FxHashMap::default(),
            kept: Vec::new(),
            off_cache: (i64::MIN, 0),
        }
    }

    fn local_day(&mut self, ms: i64) -> i64 {
        if self.utc {
            return ms.div_euclid(86_400_000);
        }
        // Offsets change rarely: cache the last hour's offset instead of asking the zone each time.
        let hour = ms.div_euclid(3_600_000);
        if hour != self.off_cache.0 {
            self.off_cache = (hour, offset_seconds(&self.o.tz, ms));
        }
        (ms.div_euclid(1000) + self.off_cache.1).div_euclid(86_400)
    }

    /// Adds one record (records outside the range are ignored).
    pub fn add(&mut self, r: &UsageRecord) {
        if !self.o.range.contains(r.ts_ms) {
            return;
        }
        let key = match self.o.kind {
            ReportKind::Daily => self.local_day(r.ts_ms),
            ReportKind::Weekly => {
                let d = self.local_day(r.ts_ms);
                d - (d + 3).rem_euclid(7)
            }
            ReportKind::Monthly => {
                let (y, m, _) = civil_from_days(self.local_day(r.ts_ms));
                y * 12 + i64::from(m) - 1
            }
            ReportKind::Session => {
                self.projects
                    .entry(i64::from(r.session))
                    .or_insert(r.project);
                i64::from(r.session)
            }
            ReportKind::Blocks => {
                self.kept.push(*r);
                return;
            }
        };
        self.groups.entry((key, r.model)).or_default().add(r);
    }

    /// The finished report; `strings` is the table the records index into.
    pub fn finish(mut self, strings: &StringTable) -> Report {
        if self.o.kind == ReportKind::Blocks {
            let recs: Vec<&UsageRecord> = self.kept.iter().collect();
            let starts = blocks(&recs);
            for (r, start) in self.kept.iter().zip(starts) {
                self.groups.entry((start, r.model)).or_default().add(r);
            }
        }
        finish_groups(self.o, strings, self.groups, &self.projects)
    }
}

fn finish_groups(
    o: &ReportOptions,
    strings: &StringTable,
    groups: FxHashMap<(i64, u32), Agg>,
    projects: &FxHashMap<i64, u32>,
) -> Report {
    let mut by_key: BTreeMap<i64, Vec<(String, Agg)>> = BTreeMap::new();
    for ((k, m), a) in groups {
        by_key
            .entry(k)
            .or_default()
            .push((strings.get(m).to_string(), a));
    }
    let mut rows = Vec::new();
    let mut model_totals: BTreeMap<String, Agg> = BTreeMap::new();
    for (k, mut models) in by_key {
        models.sort_by(|a, b| a.0.cmp(&b.0));
        let mut row_agg = Agg::default();
        let mut breakdown = Vec::new();
        for (name, a) in &models {
            merge_agg(&mut row_agg, a);
            merge_agg(model_totals.entry(name.clone()).or_default(), a);
            breakdown.push(model_row(name, a, &o.prices));
        }
        // `+ 0.0` turns the empty sum's -0.0 into 0.0.
        let cost_usd = breakdown.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0;
        let (key, project, end) = match o.kind {
            ReportKind::Daily => (day_string(k), None, None),
            ReportKind::Weekly => (day_string(k), None, None),
            ReportKind::Monthly => (
                format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1),
                None,
                None,
            ),
            ReportKind::Session => {
                let project = projects.get(&k).map(|p| strings.get(*p).to_string());
                (strings.get(k as u32).to_string(), project, None)
            }
            ReportKind::Blocks => (
                local_time(&o.tz, k),
                None,
                Some(local_time(&o.tz, k + BLOCK_MS)),
            ),
        };
        rows.push(Row {
            key,
            project,
            end,
            first: local_time(&o.tz, row_agg.first),
            last: local_time(&o.tz, row_agg.last),
            turns: row_agg.turns,
            tokens: row_agg.tokens.into(),
            cost_usd,
            models: models.iter().map(|(n, _)| n.clone()).collect(),
            breakdown,
        });
    }
    if o.kind == ReportKind::Session {
        rows.sort_by(|a, b| a.last.cmp(&b.last).then(a.key.cmp(&b.key)));
    }
    let mut t_agg = Agg::default();
    let mut t_break = Vec::new();
    for (name, a) in &model_totals {
        merge_agg(&mut t_agg, a);
        t_break.push(model_row(name, a, &o.prices));
    }
    Report {
        kind: o.kind,
        timezone: o.tz_name.clone(),
        rows,
        totals: Totals {
            turns: t_agg.turns,
            tokens: t_agg.tokens.into(),
            cost_usd: t_break.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0,
            breakdown: t_break,
        },
    }
}

fn merge_agg(into: &mut Agg, a: &Agg) {
    if into.turns == 0 {
        into.first = a.first;
        into.last = a.last;
    }
    into.turns += a.turns;
    into.tokens.add(&a.tokens);
    into.first = into.first.min(a.first);
    into.last = into.last.max(a.last);
}

fn model_row(name: &str, a: &Agg, prices: &PriceTable) -> ModelBreakdown {
    let price = prices.lookup(name);
    ModelBreakdown {
        model: name.to_string(),
        turns: a.turns,
        tokens: a.tokens.into(),
        // Pricing the summed tokens (cost is linear) keeps the figure order-independent.
        cost_usd: price.map(|p| p.cost(&a.tokens)).unwrap_or(0.0),
        priced: price.is_some(),
    }
}

fn local_time(tz: &TimeZone, ms: i64) -> String {
    if *tz == TimeZone::UTC {
        return format_ms(ms);
    }
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The 5-hour block rule, one record at a time (records in time order): a block starts at the
/// first record's time floored to the hour (UTC) and runs 5 hours; a record after the block's
/// end, or 5 hours after the previous record, starts a new block (the rule ccusage uses). The
/// blocks report and `agentos statusline` both use it, so they agree on what a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BlockTracker {
    /// Start of the current block (epoch ms), `None` before the first record.
    pub start_ms: Option<i64>,
    /// The previous record's time.
    pub last_ms: Option<i64>,
}

/// Length of a block in milliseconds.
pub const BLOCK_LEN_MS: i64 = BLOCK_MS;

impl BlockTracker {
    /// Feeds one record's time; returns the start of the block it belongs to.
    pub fn observe(&mut self, ts: i64) -> i64 {
        let new_block = match (self.start_ms, self.last_ms) {
            (Some(start), Some(last)) => ts >= start + BLOCK_MS || ts - last >= BLOCK_MS,
            _ => true,
        };
        if new_block {
            self.start_ms = Some(ts.div_euclid(3_600_000) * 3_600_000);
        }
        self.last_ms = Some(ts);
        self.start_ms.unwrap_or(ts)
    }

    /// The block still running at `now_ms`, as its start, if any: within 5 hours of its start
    /// and of the last record.
    pub fn active_at(&self, now_ms: i64) -> Option<i64> {
        let (start, last) = (self.start_ms?, self.last_ms?);
        (now_ms < start + BLOCK_MS && now_ms - last < BLOCK_MS).then_some(start)
    }
}

/// Block start per record (same order as `recs`), by [`BlockTracker`].
fn blocks(recs: &[&UsageRecord]) -> Vec<i64> {
    let mut order: Vec<usize> = (0..recs.len()).collect();
    order.sort_by_key(|&i| (recs[i].ts_ms, i));
    let mut out = vec![0i64; recs.len()];
    let mut t = BlockTracker::default();
    for i in order {
        out[i] = t.observe(recs[i].ts_ms);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::DedupKey;

    fn rec(set: &mut RecordSet, model: &str, ts: &str, n: u64) {
        let model = set.strings.intern(model);
        let session = set.strings.intern("s1");
        set.push(UsageRecord {
            key: DedupKey::claude(ts, model.to_string().as_str()),
            ts_ms: crate::time::parse_iso_ms(ts).expect("ts"),
            model,
            session,
            project: 0,
            flags: 0,
            tokens: Tokens {
                input: n,
                output: n,
                cache_creation: 0,
                cache_read: 0,
            },
        });
    }

    fn opts(kind: ReportKind, tz: &str) -> ReportOptions {
        ReportOptions {
            kind,
            tz: crate::time::time_zone(Some(tz)).expect("tz"),
            tz_name: tz.into(),
            range: TimeRange::default(),
            prices: PriceTable::embedded(),
        }
    }

    #[test]
    fn daily_buckets_follow_the_time_zone() {
        let mut set = RecordSet::default();
        rec(
            &mut set,
            "claude-sonnet-4-20250514",
            "2026-09-01T23:30:00Z",
            10,
        );
        rec(
            &mut set,
            "claude-sonnet-4-20250514",
            "2026-09-02T00:30:00Z",
            10,
        );
        let utc = build(&set, &opts(ReportKind::Daily, "UTC"));
        assert_eq!(utc.rows.len(), 2);
        let ny = build(&set, &opts(ReportKind::Daily, "America/New_York"));
        assert_eq!(ny.rows.len(), 1);
        assert_eq!(ny.rows[0].key, "2026-09-01");
        assert_eq!(ny.totals.turns, 2);
    }

    #[test]
    fn a_five_hour_gap_starts_a_new_block() {
        let mut set = RecordSet::default();
        rec(&mut set, "m", "2026-09-01T10:15:00Z", 1);
        rec(&mut set, "m", "2026-09-01T14:59:00Z", 1);
        rec(&mut set, "m", "2026-09-01T15:01:00Z", 1);
        let r = build(&set, &opts(ReportKind::Blocks, "UTC"));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].key, "2026-09-01T10:00:00.000Z");
        assert_eq!(r.rows[0].turns, 2);
        assert_eq!(r.rows[1].key, "2026-09-01T15:00:00.000Z");
    }

    #[test]
    fn weeks_start_on_monday() {
        let mut set = RecordSet::default();
        rec(&mut set, "m", "2026-09-06T10:00:00Z", 1); // Sunday
        rec(&mut set, "m", "2026-09-07T10:00:00Z", 1); // Monday
        let r = build(&set, &opts(ReportKind::Weekly, "UTC"));
        let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["2026-08-31", "2026-09-07"]);
    }

    #[test]
    fn an_empty_report_costs_plus_zero() {
        let r = build(&RecordSet::default(), &opts(ReportKind::Daily, "UTC"));
        assert_eq!(r.totals.cost_usd.to_bits(), 0.0f64.to_bits());
        assert!(r.rows.is_empty());
    }
}
