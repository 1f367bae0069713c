//! Calendar reports over usage records: daily, weekly (weeks start on Monday), monthly, per
//! session, and 5-hour billing blocks. Aggregation only; the CLI renders tables or JSON.

use std::collections::BTreeMap;

use agentos_core::model::canonical_model;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::blocks::{BLOCK_MS, BlockInfo, TokenLimit, block_starts, is_active, project};
use crate::pricing::{PriceTable, Tokens};
use crate::record::{RecordSet, SOURCE_MASK, SOURCE_SHIFT, StringTable, UsageRecord};
use crate::time::{TimeRange, civil_from_days, day_string, format_ms, offset_seconds, week_start};

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// One row per local day.
    Daily,
    /// One row per week (starting on [`ReportOptions::week_start`]).
    Weekly,
    /// One row per month.
    Monthly,
    /// One row per session.
    Session,
    /// One row per 5-hour billing block.
    Blocks,
    /// One row per model over the whole range.
    Model,
    /// One row per device over the whole range (records read on this machine form one device,
    /// `local`).
    Device,
    /// One row per repository (project) over the whole range.
    Repo,
}

impl ReportKind {
    /// Every kind, in the order the API documents them.
    pub const ALL: [ReportKind; 8] = [
        ReportKind::Daily,
        ReportKind::Weekly,
        ReportKind::Monthly,
        ReportKind::Session,
        ReportKind::Blocks,
        ReportKind::Model,
        ReportKind::Device,
        ReportKind::Repo,
    ];

    /// The snake_case name (`daily`, …), as in JSON and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Daily => "daily",
            ReportKind::Weekly => "weekly",
            ReportKind::Monthly => "monthly",
            ReportKind::Session => "session",
            ReportKind::Blocks => "blocks",
            ReportKind::Model => "model",
            ReportKind::Device => "device",
            ReportKind::Repo => "repo",
        }
    }

    /// The kind named `name` (see [`ReportKind::as_str`]).
    pub fn parse(name: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Report settings.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Which report.
    pub kind: ReportKind,
    /// Zone for calendar buckets.
    pub tz: TimeZone,
    /// Its name as printed (the IANA name; see [`crate::time::resolve_zone`]).
    pub tz_name: String,
    /// First day of a week (weekly report).
    pub week_start: Weekday,
    /// Records outside are left out.
    pub range: TimeRange,
    /// Prices.
    pub prices: PriceTable,
    /// The current time (blocks: which block is active and how much of it is left).
    pub now_ms: i64,
    /// Blocks: only the active block.
    pub active_only: bool,
    /// Blocks: the token limit to measure blocks against.
    pub token_limit: Option<TokenLimit>,
    /// Which records and rows, in which order.
    pub filters: Filters,
}

/// `--project`, `--id`, `--instances`, `--order`, `--last`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Only records of this project: its full name, or its last `-`/`/`-separated part(s)
    /// (`agentos` matches `-home-dev-src-agentos`).
    pub project: Option<String>,
    /// Only records of sessions whose id starts with this.
    pub session_id: Option<String>,
    /// One row per period and project (`project` is set on each row).
    pub instances: bool,
    /// One row per period and source (`source` is set on each row; records need their source
    /// tag, see [`crate::store::SourceKind::flag`]). Ignored with `instances`.
    pub by_source: bool,
    /// Newest row first.
    pub descending: bool,
    /// Only the last (newest) N rows; gap rows are not counted. Totals cover the rows shown.
    pub last: Option<usize>,
}

/// Whether project `name` is what `--project want` asks for.
pub fn project_matches(name: &str, want: &str) -> bool {
    name == want
        || name
            .strip_suffix(want)
            .is_some_and(|head| head.ends_with('-') || head.ends_with('/'))
}

/// Tokens by kind plus their total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

impl From<TokenCounts> for Tokens {
    fn from(t: TokenCounts) -> Self {
        Tokens {
            input: t.input_tokens,
            output: t.output_tokens,
            cache_creation: t.cache_creation_tokens,
            cache_read: t.cache_read_tokens,
        }
    }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBreakdown {
    /// Model name.
    pub model: String,
    /// Turns.
    pub turns: u64,
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenCounts,
    /// Cost (USD); 0 when the model has no price, which `priced: false` says.
    pub cost_usd: f64,
    /// False when the price table does not know the model (and not every turn carried its own
    /// cost): the cost is then unknown, not zero.
    pub priced: bool,
    /// Time of the model's first record in the row (epoch ms; orders `modelsUsed` in the
    /// ccusage shape). Not part of agentos' own JSON.
    #[serde(skip)]
    pub first_ms: i64,
}

/// One report row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Period (`2026-09-01`, `2026-W36` as the Monday date, `2026-09`), session id, or block start.
    pub key: String,
    /// Project (session report) or end of the block (blocks report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Source of the row's records (`--by-source`, `group=source`): a name of
    /// [`agentos_core::source::Source`] (`claude`, `codex`, `ccc`, `otlp`, `recorder`), or
    /// `untagged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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
    /// Cost (USD) of the priced models; see `unpriced_models`.
    pub cost_usd: f64,
    /// Models of the row the price table does not know: `cost_usd` leaves them out (absent
    /// when every model is priced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced_models: Vec<String>,
    /// Models used, sorted.
    pub models: Vec<String>,
    /// Per-model breakdown, sorted by model.
    pub breakdown: Vec<ModelBreakdown>,
    /// Blocks report: gap, active, projection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockInfo>,
}

/// Totals over all rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Turns.
    pub turns: u64,
    /// Tokens.
    #[serde(flatten)]
    pub tokens: TokenCounts,
    /// Cost (USD) of the priced models; see `unpriced_models`.
    pub cost_usd: f64,
    /// Models the price table does not know: `cost_usd` leaves them out (absent when every
    /// model is priced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced_models: Vec<String>,
    /// Per-model totals.
    pub breakdown: Vec<ModelBreakdown>,
}

/// The models of `breakdown` without a price, in order.
pub fn unpriced(breakdown: &[ModelBreakdown]) -> Vec<String> {
    breakdown
        .iter()
        .filter(|b| !b.priced)
        .map(|b| b.model.clone())
        .collect()
}

/// A finished report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Which report.
    pub kind: ReportKind,
    /// Time zone of the buckets.
    pub timezone: String,
    /// First day of the weeks (weekly report only), e.g. `monday`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub week_start: Option<String>,
    /// Rows in key order (blocks and sessions in time order).
    pub rows: Vec<Row>,
    /// Blocks: the token limit in force (`--token-limit`, `max` resolved to a number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_limit: Option<u64>,
    /// Totals.
    pub totals: Totals,
}

#[derive(Default, Clone, Copy)]
struct Agg {
    turns: u64,
    tokens: Tokens,
    first: i64,
    last: i64,
    // The part of the above whose cost the turns carried themselves (a collector's turns with a
    // `cost` payload): priced as carried, never from the table.
    carried_turns: u64,
    carried_tokens: Tokens,
    carried_cost: f64,
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

    fn add_bucket(&mut self, b: &Bucket) {
        merge_agg(
            self,
            &Agg {
                turns: b.turns,
                tokens: b.tokens,
                first: b.first_ms,
                last: b.last_ms,
                carried_turns: b.carried_turns,
                carried_tokens: b.carried_tokens,
                carried_cost: b.carried_cost_usd,
            },
        );
    }
}

/// Turns summed ahead of the report (a database's rollup rows), standing in for their records.
///
/// A bucket must not straddle a row boundary: all its turns fall in the same local day, week,
/// month or block, and inside or outside the range together. A collector's 15-minute buckets
/// satisfy this in every time zone (offsets are whole quarter hours; blocks start on the hour).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    /// Time of the earliest turn (epoch ms).
    pub first_ms: i64,
    /// Time of the latest turn (epoch ms).
    pub last_ms: i64,
    /// Model (index into the caller's [`StringTable`]).
    pub model: u32,
    /// Session (index), or any value when the report is not per session.
    pub session: u32,
    /// Project / repository (index).
    pub project: u32,
    /// Device (index).
    pub device: u32,
    /// Turns.
    pub turns: u64,
    /// Their tokens.
    pub tokens: Tokens,
    /// Turns among them that carried their own cost.
    pub carried_turns: u64,
    /// Tokens of those turns.
    pub carried_tokens: Tokens,
    /// Σ of the costs they carried (USD).
    pub carried_cost_usd: f64,
    /// Record flags of the turns; only the source tag ([`crate::record::SOURCE_MASK`]) is
    /// read, for rows per source.
    pub flags: u32,
}

/// Device key of records read on this machine (they carry no device).
const LOCAL_DEVICE: i64 = -1;

/// A report group: (row key, model, project or source key).
type GroupKey = (i64, u32, u32);

/// Groups kept aside by [`Aggregator::add`] before they go to the hash map.
const RECENT: usize = 4;

/// Builds a report from a record set.
pub fn build(set: &RecordSet, o: &ReportOptions) -> Report {
    let mut agg = Aggregator::new(o, &set.strings);
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
    // (bucket, model, project or NO_PROJECT).
    groups: FxHashMap<(i64, u32, u32), Agg>,
    // The last few groups records went to, with their sums so far: a session's turns fall in a
    // handful of (day, model) groups, so most records update one of these without hashing.
    // Folded into `groups` when evicted and by `flush_recent`.
    recent: [Option<(GroupKey, Agg)>; RECENT],
    recent_next: usize,
    // Ids (projects, sessions) that pass the filters; `None` = no such filter.
    projects_ok: Option<FxHashSet<u32>>,
    sessions_ok: Option<FxHashSet<u32>>,
    // Session → project (session report).
    projects: FxHashMap<i64, u32>,
    // Blocks need every record in time order; other reports keep only their buckets.
    kept: Vec<UsageRecord>,
    // Blocks from buckets: the filtered buckets, and the whole activity timeline as
    // (first, last) spans (see `add_activity`).
    kept_buckets: Vec<Bucket>,
    activity: Vec<(i64, i64)>,
    off_cache: (i64, i64),
}

impl<'o> Aggregator<'o> {
    /// A new, empty aggregator; `strings` is the table the records will index into (the
    /// filters are resolved against it once, so `add` compares ids only).
    pub fn new(o: &'o ReportOptions, strings: &StringTable) -> Aggregator<'o> {
        let ids = |pred: &dyn Fn(&str) -> bool| -> FxHashSet<u32> {
            strings
                .items()
                .enumerate()
                .filter(|(_, s)| pred(s))
                .map(|(i, _)| i as u32)
                .collect()
        };
        let f = &o.filters;
        Aggregator {
            o,
            utc: o.tz == TimeZone::UTC,
            groups: FxHashMap::default(),
            recent: [None; RECENT],
            recent_next: 0,
            projects_ok: f
                .project
                .as_deref()
                .map(|want| ids(&|s| project_matches(s, want))),
            sessions_ok: f
                .session_id
                .as_deref()
                .map(|want| ids(&|s| s.starts_with(want))),
            projects: FxHashMap::default(),
            kept: Vec::new(),
            kept_buckets: Vec::new(),
            activity: Vec::new(),
            off_cache: (i64::MIN, 0),
        }
    }

    #[inline]
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

    #[inline]
    fn wanted(&self, r: &UsageRecord) -> bool {
        self.wanted_ids(r.project, r.session)
    }

    #[inline]
    fn wanted_ids(&self, project: u32, session: u32) -> bool {
        self.projects_ok
            .as_ref()
            .is_none_or(|s| s.contains(&project))
            && self
                .sessions_ok
                .as_ref()
                .is_none_or(|s| s.contains(&session))
    }

    #[inline]
    fn project_key(&self, project: u32, flags: u32) -> u32 {
        if self.o.filters.instances {
            project
        } else if self.o.filters.by_source {
            SOURCE_KEY - ((flags & SOURCE_MASK) >> SOURCE_SHIFT)
        } else {
            NO_PROJECT
        }
    }

    /// Adds one record (records outside the range are ignored, except that blocks keep the
    /// earlier ones: they decide where the blocks inside the range start).
    pub fn add(&mut self, r: &UsageRecord) {
        if self.o.kind == ReportKind::Blocks {
            // Filtered out ones too: a block is the account's window, whichever project used it.
            if self.o.range.until.is_none_or(|u| r.ts_ms < u) {
                self.kept.push(*r);
            }
            return;
        }
        if !self.o.range.contains(r.ts_ms) || !self.wanted(r) {
            return;
        }
        let key = if self.utc && self.o.kind == ReportKind::Daily {
            r.ts_ms.div_euclid(86_400_000)
        } else {
            self.row_key(r.ts_ms, r.session, r.project, r.model, LOCAL_DEVICE)
        };
        let group = (key, r.model, self.project_key(r.project, r.flags));
        for (g, a) in self.recent.iter_mut().flatten() {
            if *g == group {
                a.add(r);
                return;
            }
        }
        let slot = self.recent_next;
        self.recent_next = (slot + 1) % RECENT;
        if let Some((g, a)) = self.recent[slot].take() {
            merge_agg(self.groups.entry(g).or_default(), &a);
        }
        let mut a = Agg::default();
        a.add(r);
        self.recent[slot] = Some((group, a));
    }

    /// Folds the recent groups (see `recent`) into `groups`.
    fn flush_recent(&mut self) {
        for slot in &mut self.recent {
            if let Some((g, a)) = slot.take() {
                merge_agg(self.groups.entry(g).or_default(), &a);
            }
        }
    }

    /// The row a turn at `ms` of this session, project, model and device belongs to (not for
    /// blocks, whose rows depend on the timeline).
    #[inline]
    fn row_key(&mut self, ms: i64, session: u32, project: u32, model: u32, device: i64) -> i64 {
        match self.o.kind {
            ReportKind::Daily => self.local_day(ms),
            ReportKind::Weekly => week_start(self.local_day(ms), self.o.week_start),
            ReportKind::Monthly => {
                let (y, m, _) = civil_from_days(self.local_day(ms));
                y * 12 + i64::from(m) - 1
            }
            ReportKind::Session => {
                self.projects.entry(i64::from(session)).or_insert(project);
                i64::from(session)
            }
            ReportKind::Model => i64::from(model),
            ReportKind::Repo => i64::from(project),
            ReportKind::Device => device,
            // Decided in `finish`.
            ReportKind::Blocks => 0,
        }
    }

    /// Adds a bucket of turns that passed the caller's filters (a bucket outside the range is
    /// ignored). For blocks, the timeline must also be given, unfiltered, with
    /// [`Aggregator::add_activity`].
    pub fn add_bucket(&mut self, b: &Bucket) {
        if !self.o.range.contains(b.first_ms) || !self.wanted_ids(b.project, b.session) {
            return;
        }
        if self.o.kind == ReportKind::Blocks {
            self.kept_buckets.push(*b);
            return;
        }
        let key = self.row_key(
            b.first_ms,
            b.session,
            b.project,
            b.model,
            i64::from(b.device),
        );
        let p = self.project_key(b.project, b.flags);
        self.groups
            .entry((key, b.model, p))
            .or_default()
            .add_bucket(b);
    }

    /// Blocks from buckets: one stretch of activity (the first and last turn of an hour,
    /// whatever the filters; the block rule looks at nothing finer) before the range's end.
    pub fn add_activity(&mut self, first_ms: i64, last_ms: i64) {
        if self.o.range.until.is_none_or(|u| first_ms < u) {
            self.activity.push((first_ms, last_ms));
        }
    }

    /// The finished report; `strings` is the table the records index into.
    pub fn finish(mut self, strings: &StringTable) -> Report {
        self.flush_recent();
        if self.o.kind == ReportKind::Blocks {
            self.kept.sort_unstable_by_key(|r| r.ts_ms);
            let ts: Vec<i64> = self.kept.iter().map(|r| r.ts_ms).collect();
            let kept = std::mem::take(&mut self.kept);
            for (r, start) in kept.iter().zip(block_starts(&ts)) {
                if self.o.range.contains(r.ts_ms) && self.wanted(r) {
                    let p = self.project_key(r.project, r.flags);
                    self.groups.entry((start, r.model, p)).or_default().add(r);
                }
            }
            if !self.activity.is_empty() {
                self.bucket_blocks();
            }
        }
        finish_groups(self.o, strings, self.groups, &self.projects)
    }

    /// Blocks from buckets: the block rule over the activity timeline, then every kept bucket
    /// into the block its first turn falls in.
    fn bucket_blocks(&mut self) {
        self.activity.sort_unstable();
        let mut tracker = crate::blocks::BlockTracker::default();
        // Block starts in time order; a bucket belongs to the last start at or before it.
        let mut starts: Vec<i64> = Vec::new();
        for &(first, last) in &self.activity {
            let s = tracker.observe(first);
            if starts.last() != Some(&s) {
                starts.push(s);
            }
            tracker.observe(last.max(first));
        }
        let buckets = std::mem::take(&mut self.kept_buckets);
        for b in &buckets {
            let i = starts.partition_point(|&s| s <= b.first_ms);
            let Some(&start) = i.checked_sub(1).and_then(|i| starts.get(i)) else {
                continue;
            };
            let p = self.project_key(b.project, b.flags);
            self.groups
                .entry((start, b.model, p))
                .or_default()
                .add_bucket(b);
        }
    }
}

fn finish_groups(
    o: &ReportOptions,
    strings: &StringTable,
    groups: FxHashMap<(i64, u32, u32), Agg>,
    projects: &FxHashMap<i64, u32>,
) -> Report {
    // Rows in (bucket, project) order; the project part is NO_PROJECT unless `--instances`.
    // Models under their canonical id: spellings of one model from different sources merge.
    let mut by_key: BTreeMap<(i64, String), BTreeMap<String, Agg>> = BTreeMap::new();
    for ((k, m, p), a) in groups {
        let project = if p == NO_PROJECT {
            String::new()
        } else if o.filters.by_source && !o.filters.instances {
            source_name(p)
        } else {
            strings.get(p).to_string()
        };
        let model = canonical_model(strings.get(m)).into_owned();
        merge_agg(
            by_key
                .entry((k, project))
                .or_default()
                .entry(model)
                .or_default(),
            &a,
        );
    }
    let mut rows = Vec::new();
    // Blocks: (start, first, last) of each row, for gaps and the active block.
    let mut spans = Vec::new();
    let mut model_totals: BTreeMap<String, Agg> = BTreeMap::new();
    for ((k, instance), models) in by_key {
        let models: Vec<(String, Agg)> = models.into_iter().collect();
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
            ReportKind::Daily | ReportKind::Weekly => (day_string(k), None, None),
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
            ReportKind::Model | ReportKind::Repo => (strings.get(k as u32).to_string(), None, None),
            ReportKind::Device if k == LOCAL_DEVICE => ("local".to_string(), None, None),
            ReportKind::Device => (strings.get(k as u32).to_string(), None, None),
        };
        let project = project.or_else(|| o.filters.instances.then(|| instance.clone()));
        let source = (o.filters.by_source && !o.filters.instances).then(|| instance.clone());
        spans.push((k, row_agg.first, row_agg.last));
        rows.push(Row {
            block: None,
            key,
            project,
            source,
            end,
            first: local_time(&o.tz, row_agg.first),
            last: local_time(&o.tz, row_agg.last),
            turns: row_agg.turns,
            tokens: row_agg.tokens.into(),
            cost_usd,
            unpriced_models: unpriced(&breakdown),
            models: models.iter().map(|(n, _)| n.clone()).collect(),
            breakdown,
        });
    }
    if o.kind == ReportKind::Session {
        rows.sort_by(|a, b| a.last.cmp(&b.last).then(a.key.cmp(&b.key)));
    }
    if matches!(
        o.kind,
        ReportKind::Model | ReportKind::Device | ReportKind::Repo
    ) {
        // Keys are string ids here, in no meaningful order: sort by name.
        rows.sort_by(|a, b| a.key.cmp(&b.key).then(a.project.cmp(&b.project)));
    }
    let mut token_limit = None;
    if o.kind == ReportKind::Blocks {
        token_limit = match o.token_limit {
            Some(TokenLimit::Tokens(n)) => Some(n),
            // The largest finished block: the running one has not shown its size yet.
            Some(TokenLimit::Max) => rows
                .iter()
                .zip(&spans)
                .filter(|(_, (s, _, last))| !is_active(*s, *last, o.now_ms))
                .map(|(r, _)| r.tokens.total_tokens)
                .max(),
            None => None,
        };
        rows = annotate_blocks(o, rows, &spans);
    }
    let mut totals = None;
    if let Some(n) = o.filters.last {
        rows = keep_last(rows, n);
        totals = Some(totals_of(&rows));
    }
    if o.filters.descending {
        rows.reverse();
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
        week_start: (o.kind == ReportKind::Weekly)
            .then(|| format!("{:?}", o.week_start).to_ascii_lowercase()),
        rows,
        token_limit,
        totals: totals.unwrap_or_else(|| Totals {
            turns: t_agg.turns,
            tokens: t_agg.tokens.into(),
            cost_usd: t_break.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0,
            unpriced_models: unpriced(&t_break),
            breakdown: t_break,
        }),
    }
}

/// Group key of records when rows are not split by project.
const NO_PROJECT: u32 = u32::MAX;
/// Group keys of `--by-source` rows: this minus the source code (0 = untagged).
const SOURCE_KEY: u32 = u32::MAX - 1;

/// The source name of a `--by-source` group key.
fn source_name(p: u32) -> String {
    agentos_core::source::Source::from_code(SOURCE_KEY - p)
        .map_or("untagged", |s| s.as_str())
        .to_string()
}

/// The last `n` rows that are not gaps, with the gaps between them.
fn keep_last(mut rows: Vec<Row>, n: usize) -> Vec<Row> {
    let is_gap = |r: &Row| r.block.as_ref().is_some_and(|b| b.gap);
    let mut seen = 0;
    let mut cut = rows.len();
    for (i, r) in rows.iter().enumerate().rev() {
        if is_gap(r) {
            continue;
        }
        if seen == n {
            break;
        }
        seen += 1;
        cut = i;
    }
    rows.drain(..cut);
    rows
}

/// Totals over `rows` (after `--last` dropped some), from their per-model breakdowns.
fn totals_of(rows: &[Row]) -> Totals {
    // (turns, tokens, cost, priced, first) per model.
    let mut by_model: BTreeMap<&str, (u64, Tokens, f64, bool, i64)> = BTreeMap::new();
    for b in rows.iter().flat_map(|r| &r.breakdown) {
        let t =
            by_model
                .entry(&b.model)
                .or_insert((0, Tokens::default(), 0.0, b.priced, b.first_ms));
        t.0 += b.turns;
        t.1.add(&b.tokens.into());
        t.2 += b.cost_usd;
        t.4 = t.4.min(b.first_ms);
    }
    let mut tokens = Tokens::default();
    let mut breakdown = Vec::with_capacity(by_model.len());
    for (model, (turns, t, cost_usd, priced, first_ms)) in by_model {
        tokens.add(&t);
        breakdown.push(ModelBreakdown {
            model: model.to_string(),
            turns,
            tokens: t.into(),
            cost_usd,
            priced,
            first_ms,
        });
    }
    Totals {
        turns: breakdown.iter().map(|b| b.turns).sum(),
        tokens: tokens.into(),
        cost_usd: breakdown.iter().map(|b| b.cost_usd).sum::<f64>() + 0.0,
        unpriced_models: unpriced(&breakdown),
        breakdown,
    }
}

/// Marks the active block (with its projection), puts a gap row between blocks that do not
/// touch, and keeps only the active block under `--active`.
fn annotate_blocks(o: &ReportOptions, rows: Vec<Row>, spans: &[(i64, i64, i64)]) -> Vec<Row> {
    let mut out = Vec::with_capacity(rows.len() * 2);
    let mut prev_end: Option<i64> = None;
    for (mut row, &(start, first, last)) in rows.into_iter().zip(spans) {
        let active = is_active(start, last, o.now_ms);
        if o.active_only && !active {
            continue;
        }
        if let Some(end) = prev_end.filter(|&e| e < start && !o.active_only) {
            out.push(Row {
                key: local_time(&o.tz, end),
                project: None,
                source: None,
                end: Some(local_time(&o.tz, start)),
                first: local_time(&o.tz, end),
                last: local_time(&o.tz, start),
                turns: 0,
                tokens: TokenCounts::default(),
                cost_usd: 0.0,
                unpriced_models: Vec::new(),
                models: Vec::new(),
                breakdown: Vec::new(),
                block: Some(BlockInfo {
                    gap: true,
                    active: false,
                    projection: None,
                }),
            });
        }
        prev_end = Some(start + BLOCK_MS);
        let projection = if active {
            project(
                start,
                first,
                last,
                o.now_ms,
                row.tokens.total_tokens,
                row.cost_usd,
            )
        } else {
            None
        };
        row.block = Some(BlockInfo {
            gap: false,
            active,
            projection,
        });
        out.push(row);
    }
    out
}

fn merge_agg(into: &mut Agg, a: &Agg) {
    if into.turns == 0 {
        into.first = a.first;
        into.last = a.last;
    }
    into.turns += a.turns;
    into.tokens.add(&a.tokens);
    into.carried_turns += a.carried_turns;
    into.carried_tokens.add(&a.carried_tokens);
    into.carried_cost += a.carried_cost;
    into.first = into.first.min(a.first);
    into.last = into.last.max(a.last);
}

fn model_row(name: &str, a: &Agg, prices: &PriceTable) -> ModelBreakdown {
    let price = prices.lookup(name);
    // Turns that carried their cost keep it; the rest are priced from the table.
    let t = &a.tokens;
    let c = &a.carried_tokens;
    let uncarried = Tokens {
        input: t.input.saturating_sub(c.input),
        output: t.output.saturating_sub(c.output),
        cache_creation: t.cache_creation.saturating_sub(c.cache_creation),
        cache_read: t.cache_read.saturating_sub(c.cache_read),
    };
    ModelBreakdown {
        model: name.to_string(),
        turns: a.turns,
        tokens: a.tokens.into(),
        // Pricing the summed tokens (cost is linear) keeps the figure order-independent.
        cost_usd: a.carried_cost + price.map(|p| p.cost(&uncarried)).unwrap_or(0.0),
        priced: price.is_some() || a.carried_turns >= a.turns,
        first_ms: a.first,
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

    /// A record of `session` in `project`.
    fn rec_in(set: &mut RecordSet, project: &str, session: &str, ts: &str) {
        let model = set.strings.intern("claude-sonnet-4-20250514");
        let session = set.strings.intern(session);
        let project = set.strings.intern(project);
        set.push(UsageRecord {
            key: DedupKey::claude(ts, &format!("{session}-{ts}")),
            ts_ms: crate::time::parse_iso_ms(ts).expect("ts"),
            model,
            session,
            project,
            flags: 0,
            tokens: Tokens {
                input: 10,
                output: 1,
                cache_creation: 0,
                cache_read: 0,
            },
        });
    }

    fn two_projects() -> RecordSet {
        let mut set = RecordSet::default();
        rec_in(
            &mut set,
            "-home-dev-agentos",
            "aaaa-1",
            "2026-09-01T10:00:00Z",
        );
        rec_in(
            &mut set,
            "-home-dev-agentos",
            "aaaa-1",
            "2026-09-02T10:00:00Z",
        );
        rec_in(
            &mut set,
            "-home-dev-other",
            "bbbb-2",
            "2026-09-02T11:00:00Z",
        );
        rec_in(
            &mut set,
            "-home-dev-other",
            "bbbb-2",
            "2026-09-03T11:00:00Z",
        );
        set
    }

    fn keys(r: &Report) -> Vec<(String, Option<String>, u64)> {
        r.rows
            .iter()
            .map(|r| (r.key.clone(), r.project.clone(), r.turns))
            .collect()
    }

    #[test]
    fn project_filter_and_instances() {
        let set = two_projects();
        let mut o = opts(ReportKind::Daily, "UTC");
        o.filters.project = Some("agentos".into());
        let r = build(&set, &o);
        assert_eq!(r.totals.turns, 2);
        assert_eq!(r.rows.len(), 2);
        o.filters.project = Some("gentos".into());
        assert_eq!(
            build(&set, &o).totals.turns,
            0,
            "a part of a name is no match"
        );
        o.filters.project = None;
        o.filters.instances = true;
        let p = |s: &str| Some(s.to_string());
        assert_eq!(
            keys(&build(&set, &o)),
            [
                ("2026-09-01".into(), p("-home-dev-agentos"), 1),
                ("2026-09-02".into(), p("-home-dev-agentos"), 1),
                ("2026-09-02".into(), p("-home-dev-other"), 1),
                ("2026-09-03".into(), p("-home-dev-other"), 1),
            ]
        );
    }

    #[test]
    fn order_last_and_session_id() {
        let set = two_projects();
        let mut o = opts(ReportKind::Daily, "UTC");
        o.filters.last = Some(2);
        o.filters.descending = true;
        let r = build(&set, &o);
        let k: Vec<String> = r.rows.iter().map(|r| r.key.clone()).collect();
        assert_eq!(k, ["2026-09-03", "2026-09-02"]);
        // Totals cover the rows shown.
        assert_eq!(r.totals.turns, 3);
        assert_eq!(r.totals.tokens.input_tokens, 30);
        assert_eq!(r.totals.breakdown.len(), 1);
        let mut o = opts(ReportKind::Session, "UTC");
        o.filters.session_id = Some("bbbb".into());
        let r = build(&set, &o);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].key, "bbbb-2");
        assert_eq!(r.rows[0].project.as_deref(), Some("-home-dev-other"));
    }

    #[test]
    fn last_counts_blocks_not_gaps_and_filters_keep_block_boundaries() {
        let mut set = RecordSet::default();
        rec_in(&mut set, "-a", "s", "2026-09-01T08:30:00Z");
        rec_in(&mut set, "-b", "t", "2026-09-01T12:10:00Z"); // block 08:00 (project b)
        rec_in(&mut set, "-a", "s", "2026-09-01T20:00:00Z");
        let mut o = opts(ReportKind::Blocks, "UTC");
        o.filters.project = Some("b".into());
        let r = build(&set, &o);
        // b's turn stays in the 08:00 block that a opened.
        assert_eq!(r.rows[0].key, "2026-09-01T08:00:00.000Z");
        assert_eq!(r.totals.turns, 1);
        o.filters.project = None;
        o.filters.last = Some(1);
        let r = build(&set, &o);
        assert_eq!(r.rows.len(), 1, "no leading gap row");
        assert_eq!(r.rows[0].key, "2026-09-01T20:00:00.000Z");
    }

    fn opts(kind: ReportKind, tz: &str) -> ReportOptions {
        ReportOptions {
            kind,
            tz: crate::time::time_zone(Some(tz)).expect("tz"),
            tz_name: tz.into(),
            week_start: Weekday::Monday,
            range: TimeRange::default(),
            prices: PriceTable::embedded(),
            now_ms: 0,
            active_only: false,
            token_limit: None,
            filters: Filters::default(),
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
    fn block_boundaries_do_not_move_with_the_range() {
        let mut set = RecordSet::default();
        // One long run of activity: blocks at 08:00, 13:00 and 18:00 UTC on 2026-10-13.
        for ts in [
            "2026-10-13T08:10:00Z",
            "2026-10-13T12:00:00Z",
            "2026-10-13T13:05:00Z",
            "2026-10-13T17:30:00Z",
            "2026-10-13T18:20:00Z",
            "2026-10-13T22:00:00Z",
            "2026-10-13T23:10:00Z",
            "2026-10-14T00:30:00Z",
        ] {
            rec(&mut set, "m", ts, 1);
        }
        let all = build(&set, &opts(ReportKind::Blocks, "UTC"));
        let starts = |r: &Report| -> Vec<String> { r.rows.iter().map(|r| r.key.clone()).collect() };
        assert_eq!(
            starts(&all),
            [
                "2026-10-13T08:00:00.000Z",
                "2026-10-13T13:00:00.000Z",
                "2026-10-13T18:00:00.000Z",
                "2026-10-13T23:00:00.000Z"
            ]
        );
        let mut o = opts(ReportKind::Blocks, "UTC");
        o.range = TimeRange::from_user(Some("2026-10-14"), None, &TimeZone::UTC).expect("range");
        let since = build(&set, &o);
        // The 00:30 turn stays in the 23:00 block instead of opening one at 00:00.
        assert_eq!(starts(&since), ["2026-10-13T23:00:00.000Z"]);
        assert_eq!(since.rows[0].turns, 1);
        o.range = TimeRange::from_user(
            Some("2026-10-13T13:30:00Z"),
            Some("2026-10-13T18:30:00Z"),
            &TimeZone::UTC,
        )
        .expect("range");
        let mid = build(&set, &o);
        assert_eq!(
            starts(&mid),
            ["2026-10-13T13:00:00.000Z", "2026-10-13T18:00:00.000Z"]
        );
        assert_eq!(mid.rows[0].turns, 1, "13:05 is before --since");
    }

    #[test]
    fn gaps_get_a_row_and_the_running_block_a_projection() {
        let mut set = RecordSet::default();
        rec(
            &mut set,
            "claude-sonnet-4-20250514",
            "2026-09-01T08:10:00Z",
            1000,
        );
        rec(
            &mut set,
            "claude-sonnet-4-20250514",
            "2026-09-01T20:00:00Z",
            1000,
        );
        rec(
            &mut set,
            "claude-sonnet-4-20250514",
            "2026-09-01T21:00:00Z",
            3000,
        );
        let mut o = opts(ReportKind::Blocks, "UTC");
        o.now_ms = crate::time::parse_iso_ms("2026-09-01T22:00:00Z").expect("ts");
        o.token_limit = Some(TokenLimit::Max);
        let r = build(&set, &o);
        let kinds: Vec<(bool, bool)> = r
            .rows
            .iter()
            .map(|r| {
                r.block
                    .as_ref()
                    .map_or((false, false), |b| (b.gap, b.active))
            })
            .collect();
        assert_eq!(kinds, [(false, false), (true, false), (false, true)]);
        assert_eq!(r.rows[1].key, "2026-09-01T13:00:00.000Z");
        assert_eq!(r.rows[1].end.as_deref(), Some("2026-09-01T20:00:00.000Z"));
        // Max = the largest finished block (2000 tokens), not the running one.
        assert_eq!(r.token_limit, Some(2000));
        let p = r.rows[2]
            .block
            .as_ref()
            .and_then(|b| b.projection.clone())
            .expect("active block projects");
        assert_eq!(p.minutes_left, 180);
        // 8000 tokens in 60 minutes, 180 minutes to go.
        assert_eq!(p.projected_tokens, 8000 + 24_000);
        // Gap rows count nothing.
        assert_eq!(r.totals.turns, 3);
        o.active_only = true;
        let active = build(&set, &o);
        assert_eq!(active.rows.len(), 1);
        assert_eq!(active.rows[0].key, "2026-09-01T20:00:00.000Z");
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
    fn weeks_follow_the_start_of_week_and_the_zone() {
        let mut set = RecordSet::default();
        rec(&mut set, "m", "2026-09-06T10:00:00Z", 1); // Sunday
        rec(&mut set, "m", "2026-09-07T10:00:00Z", 1); // Monday
        rec(&mut set, "m", "2026-09-13T02:00:00Z", 1); // Sunday in UTC, Saturday in New York
        let mut o = opts(ReportKind::Weekly, "UTC");
        o.week_start = Weekday::Sunday;
        let r = build(&set, &o);
        let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["2026-09-06", "2026-09-13"]);
        assert_eq!(r.week_start.as_deref(), Some("sunday"));
        let mut o = opts(ReportKind::Weekly, "America/New_York");
        o.week_start = Weekday::Sunday;
        let r = build(&set, &o);
        let keys: Vec<(&str, u64)> = r.rows.iter().map(|r| (r.key.as_str(), r.turns)).collect();
        assert_eq!(keys, [("2026-09-06", 3)]);
    }

    #[test]
    fn months_follow_the_zone() {
        let mut set = RecordSet::default();
        rec(&mut set, "m", "2026-10-01T03:00:00Z", 1); // still September in New York
        let r = build(&set, &opts(ReportKind::Monthly, "America/New_York"));
        assert_eq!(r.rows[0].key, "2026-09");
        let r = build(&set, &opts(ReportKind::Monthly, "UTC"));
        assert_eq!(r.rows[0].key, "2026-10");
    }

    #[test]
    fn spellings_of_one_model_are_one_model_and_unknown_ones_are_unpriced() {
        let mut set = RecordSet::default();
        rec(
            &mut set,
            "claude-sonnet-4-5-20250929",
            "2026-09-01T10:00:00Z",
            1000,
        );
        rec(&mut set, "claude-sonnet-4.5", "2026-09-01T11:00:00Z", 1000);
        rec(&mut set, "sonnet-4.5", "2026-09-01T12:00:00Z", 1000);
        rec(&mut set, "my-local-model", "2026-09-01T13:00:00Z", 1000);
        let r = build(&set, &opts(ReportKind::Daily, "UTC"));
        let models: Vec<(&str, u64, bool)> = r
            .totals
            .breakdown
            .iter()
            .map(|b| (b.model.as_str(), b.turns, b.priced))
            .collect();
        assert_eq!(
            models,
            [
                ("claude-sonnet-4-5-20250929", 3, true),
                ("my-local-model", 1, false)
            ]
        );
        assert_eq!(
            r.rows[0].models,
            ["claude-sonnet-4-5-20250929", "my-local-model"]
        );
        assert_eq!(r.totals.unpriced_models, ["my-local-model"]);
        assert_eq!(r.rows[0].unpriced_models, ["my-local-model"]);
        // 3000 input at $3/M + 3000 output at $15/M; the unpriced model adds nothing.
        assert!(
            (r.totals.cost_usd - 0.054).abs() < 1e-12,
            "{}",
            r.totals.cost_usd
        );
    }

    #[test]
    fn an_empty_report_costs_plus_zero() {
        let r = build(&RecordSet::default(), &opts(ReportKind::Daily, "UTC"));
        assert_eq!(r.totals.cost_usd.to_bits(), 0.0f64.to_bits());
        assert!(r.rows.is_empty());
    }
}
