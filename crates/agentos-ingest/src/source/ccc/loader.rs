//! Assembling log records into exactly one turn per request.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::parser::{Kind, Lane, LogRecord, RerouteMode, Status};
use crate::account::{Account, Progress, SkipReason, SkippedLine};
use crate::dedup::DedupKey;
use crate::scan::{ReadBuffer, ScanEnd, Tail, scan_file};
use crate::time::TimeRange;

/// Routing facts of one request, merged from its decision lines and its final line (later
/// non-empty values win, so the final line's `reroute_decision` is the one kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingDecision {
    /// The first decision line's `decision` label.
    pub decision: Option<Arc<str>>,
    /// Last `decision_reason` seen.
    pub decision_reason: Option<Arc<str>>,
    /// Reroute mode.
    pub reroute_mode: Option<RerouteMode>,
    /// Last `reroute_decision` seen (the final line's).
    pub reroute_decision: Option<Arc<str>>,
    /// The request went to its preferred lane despite quota pressure.
    pub preferred_attempt: bool,
    /// `fallback`, `quota_overshoot` or `net_fallback` when a second decision line rerouted it.
    pub fallback: Option<Arc<str>>,
    /// A cooldown was active.
    pub cooldown_active: bool,
    /// Time lost on the failed first attempt.
    pub wasted_retry_ms: Option<f64>,
    /// Configured warn fraction.
    pub warn_pct_cfg: Option<f64>,
    /// Calibrated warn fraction.
    pub warn_pct_auto: Option<f64>,
    /// Calibration confidence.
    pub warn_pct_confidence: Option<f64>,
    /// Calibration gap p50 (s).
    pub gap_seconds_p50: Option<f64>,
    /// Calibration gap p95 (s).
    pub gap_seconds_p95: Option<f64>,
    /// Calibration gap samples.
    pub gap_samples: Option<u64>,
    /// Rolling-window tokens before this request.
    pub rolling_used_tokens: Option<u64>,
    /// Rolling-window capacity.
    pub rolling_capacity_tokens: Option<u64>,
    /// Rolling headroom fraction.
    pub headroom_pct_rolling: Option<f64>,
}

/// One CCC request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CccTurn {
    /// Request id.
    pub rid: Arc<str>,
    /// Time of the first line (epoch seconds).
    pub started_ts: f64,
    /// Time of the final line (epoch seconds).
    pub ts: f64,
    /// Model as sent by the client.
    pub model: Arc<str>,
    /// Lane that served it.
    pub lane: Lane,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Final status (`None` for an incomplete request).
    pub status: Option<Status>,
    /// Streamed.
    pub stream: bool,
    /// Wall time.
    pub latency_ms: Option<f64>,
    /// Stream time.
    pub stream_ms: Option<f64>,
    /// Time to first chunk.
    pub ttft_ms: Option<f64>,
    /// Error class.
    pub err_type: Option<Arc<str>>,
    /// Z.AI 401 retried with the other header.
    pub retry: bool,
    /// Routing facts.
    pub decision: RoutingDecision,
    /// Log records merged into this turn.
    pub lines: u32,
    /// A final (or old-shape) line was seen.
    pub complete: bool,
    /// Old telemetry shape.
    pub legacy: bool,
}

impl CccTurn {
    fn new(rid: Arc<str>, ts: f64) -> CccTurn {
        CccTurn {
            rid,
            started_ts: ts,
            ts,
            model: Arc::from(""),
            lane: Lane::Unknown,
            input_tokens: 0,
            output_tokens: 0,
            status: None,
            stream: false,
            latency_ms: None,
            stream_ms: None,
            ttft_ms: None,
            err_type: None,
            retry: false,
            decision: RoutingDecision::default(),
            lines: 0,
            complete: false,
            legacy: false,
        }
    }

    /// True when the request finished with a 2xx (or old `"ok"`) status.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.is_ok())
    }

    /// True when the request finished with a status that is not a success. A final line without
    /// any `status` is not an error: the format writes `status` on every line, so its absence
    /// says nothing about the upstream's answer.
    pub fn failed(&self) -> bool {
        self.complete && self.status.is_some_and(|s| !s.is_ok())
    }

    /// Dedup key: rid + final timestamp in milliseconds.
    pub fn key(&self) -> DedupKey {
        DedupKey::ccc(&self.rid, (self.ts * 1000.0).round() as i64)
    }

    fn absorb_routing(&mut self, r: &LogRecord<'_>, it: &mut Interner) {
        let d = &mut self.decision;
        if let Some(v) = nonempty(&r.decision) {
            if d.decision.is_none() {
                d.decision = Some(it.get(v));
            }
            if matches!(v, "fallback" | "quota_overshoot" | "net_fallback") {
                d.fallback = Some(it.get(v));
            }
        }
        if let Some(v) = nonempty(&r.decision_reason) {
            set_interned(&mut d.decision_reason, v, it);
        }
        if let Some(v) = nonempty(&r.reroute_mode) {
            d.reroute_mode = RerouteMode::parse(v).or(d.reroute_mode);
        }
        if let Some(v) = nonempty(&r.reroute_decision) {
            set_interned(&mut d.reroute_decision, v, it);
        }
        if let Some(f) = r.preferred_attempt {
            d.preferred_attempt = f.0;
        }
        if r.cooldown_active.is_some_and(|f| f.0) {
            d.cooldown_active = true;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if r.$f.is_some() { d.$f = r.$f; } )* };
        }
        take!(
            wasted_retry_ms,
            warn_pct_cfg,
            warn_pct_auto,
            warn_pct_confidence,
            gap_seconds_p50,
            gap_seconds_p95,
            gap_samples,
            rolling_used_tokens,
            rolling_capacity_tokens,
            headroom_pct_rolling
        );
        if let Some(l) = nonempty(&r.lane) {
            self.lane = Lane::parse(l);
        }
        if let Some(m) = nonempty(&r.model)
            && *self.model != *m
        {
            self.model = it.get(m);
        }
        if let Some(ts) = r.ts {
            self.started_ts = self.started_ts.min(ts.0);
        }
        self.lines += 1;
    }

    fn absorb_final(&mut self, r: &LogRecord<'_>, it: &mut Interner) {
        self.absorb_routing(r, it);
        if let Some(ts) = r.ts {
            self.ts = ts.0;
        }
        self.input_tokens = r.input_tokens.unwrap_or(0);
        self.output_tokens = r.output_tokens.unwrap_or(0);
        self.status = r.status;
        self.stream = self.stream || r.op.as_deref() == Some("stream");
        self.latency_ms = r.latency_ms;
        self.stream_ms = r.stream_ms;
        self.ttft_ms = r.ttft_ms;
        self.err_type = nonempty(&r.err_type).map(|v| it.get(v));
        self.retry = r.retry.is_some_and(|f| f.0);
        self.complete = true;
    }

    /// Fills what `self` (a final line read without its earlier lines) lacks from `prior` (the
    /// request's earlier lines, read from an older file).
    fn merge_prior(&mut self, prior: CccTurn) {
        self.started_ts = self.started_ts.min(prior.started_ts);
        self.lines += prior.lines;
        self.stream |= prior.stream;
        let (d, p) = (&mut self.decision, prior.decision);
        if p.decision.is_some() {
            d.decision = p.decision;
        }
        d.fallback = d.fallback.take().or(p.fallback);
        d.decision_reason = d.decision_reason.take().or(p.decision_reason);
        d.reroute_mode = d.reroute_mode.or(p.reroute_mode);
        d.reroute_decision = d.reroute_decision.take().or(p.reroute_decision);
        d.preferred_attempt |= p.preferred_attempt;
        d.cooldown_active |= p.cooldown_active;
        macro_rules! fill {
            ($($f:ident),*) => { $( if d.$f.is_none() { d.$f = p.$f; } )* };
        }
        fill!(
            wasted_retry_ms,
            warn_pct_cfg,
            warn_pct_auto,
            warn_pct_confidence,
            gap_seconds_p50,
            gap_seconds_p95,
            gap_samples,
            rolling_used_tokens,
            rolling_capacity_tokens,
            headroom_pct_rolling
        );
        if self.model.is_empty() {
            self.model = prior.model;
        }
    }
}

fn nonempty<'b>(v: &'b Option<std::borrow::Cow<'_, str>>) -> Option<&'b str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Sets `slot` to `v`, interning only when the value changes (a final line usually repeats what
/// the decision line said).
fn set_interned(slot: &mut Option<Arc<str>>, v: &str, it: &mut Interner) {
    if slot.as_deref() != Some(v) {
        *slot = Some(it.get(v));
    }
}

#[derive(Default)]
struct Interner(FxHashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

/// One usage log to read, possibly from a checkpoint.
#[derive(Debug, Clone)]
pub struct LogJob {
    /// The file.
    pub path: PathBuf,
    /// Offset to start at.
    pub start: u64,
    /// Number of the line at `start`.
    pub first_line: u64,
    /// Current size.
    pub size: u64,
    /// Stop before lines that start at or after this offset (a chunk of a large file).
    pub limit: Option<u64>,
    /// `start` is a chunk boundary inside a line: the partial first line belongs to the
    /// previous chunk and is skipped; line numbers are then relative to the chunk (see
    /// [`ChunkJoiner`]).
    pub resync: bool,
}

impl LogJob {
    /// A whole file read from `start` (line `first_line`).
    pub fn whole(path: PathBuf, start: u64, first_line: u64, size: u64) -> LogJob {
        LogJob {
            path,
            start,
            first_line,
            size,
            limit: None,
            resync: false,
        }
    }
}

/// Splits files read from their start into chunks of about `chunk` bytes, so a few large logs
/// keep every worker busy. Chunks of one file stay adjacent and in order.
pub fn split_jobs(jobs: Vec<LogJob>, chunk: u64) -> Vec<LogJob> {
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        match crate::chunk::pieces(j.start, j.limit, j.size, chunk) {
            None => out.push(j),
            Some(pieces) => out.extend(pieces.into_iter().map(|p| LogJob {
                path: j.path.clone(),
                start: p.start,
                first_line: p.first_line,
                size: p.size,
                limit: p.limit,
                resync: p.resync,
            })),
        }
    }
    out
}

/// Turns chunk-relative line numbers into file line numbers while outcomes are consumed in job
/// order.
#[derive(Debug, Default)]
pub struct ChunkJoiner(crate::chunk::LineJoiner);

impl ChunkJoiner {
    /// Fixes `o` (the outcome of `job`) in place.
    pub fn fix(&mut self, job: &LogJob, o: &mut LogOutcome) {
        self.0.fix(
            job.resync,
            job.first_line,
            &mut o.account,
            &mut o.skipped,
            o.end.as_mut(),
        );
    }
}

/// What one log file produced.
#[derive(Debug, Default)]
pub struct LogOutcome {
    /// Requests whose final line is in this file, in order.
    pub closed: Vec<CccTurn>,
    /// Requests still open at the end of this file, in first-seen order.
    pub open: Vec<CccTurn>,
    /// Counters.
    pub account: Account,
    /// Skipped lines.
    pub skipped: Vec<SkippedLine>,
    /// Where the scan ended; `None` when unreadable.
    pub end: Option<ScanEnd>,
}

/// Cheap range check on the leading `{"ts":<number>` of a current-shape line.
fn leading_ts(line: &[u8]) -> Option<f64> {
    let rest = line.strip_prefix(b"{\"ts\":")?;
    let end = rest
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Reads one usage log.
pub fn read_log(job: &LogJob, range: &TimeRange, progress: Option<&Progress>) -> LogOutcome {
    let path: Arc<Path> = Arc::from(job.path.as_path());
    let mut out = LogOutcome {
        account: Account {
            files: 1,
            ..Account::default()
        },
        ..LogOutcome::default()
    };
    let mut open: FxHashMap<Arc<str>, CccTurn> = FxHashMap::default();
    let mut open_order: Vec<Arc<str>> = Vec::new();
    let mut it = Interner::default();
    let mut buf = ReadBuffer::take();
    let acc = &mut out.account;
    let closed = &mut out.closed;
    let skipped = &mut out.skipped;
    let scan_start = if job.resync { job.start - 1 } else { job.start };
    let mut skip_partial = job.resync;
    let res = scan_file(&job.path, scan_start, job.first_line, &mut buf, |line| {
        if skip_partial {
            skip_partial = false;
            return ControlFlow::Continue(Tail::Consumed);
        }
        if job.limit.is_some_and(|l| line.offset >= l) {
            return ControlFlow::Break(());
        }
        let bytes = line.bytes.trim_ascii();
        acc.lines += 1;
        if bytes.is_empty() {
            return ControlFlow::Continue(Tail::Consumed);
        }
        if !range.is_open()
            && let Some(ts) = leading_ts(bytes)
            && !range.contains((ts * 1000.0) as i64)
        {
            acc.out_of_range += 1;
            return ControlFlow::Continue(Tail::Consumed);
        }
        // Records borrow from the scan buffer, so they live only for this call.
        // Records are handled as the streaming deserialiser yields them (several objects may
        // share a line); they borrow from the scan buffer only for this call.
        let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<LogRecord<'_>>();
        let mut parsed_ok = 0usize;
        let mut failure = None;
        loop {
            let r = match stream.next() {
                None => break,
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
            };
            parsed_ok += 1;
            let r = &r;
            let kind = r.kind();
            if kind == Kind::Fragment {
                acc.fragments += 1;
                continue;
            }
            if kind == Kind::Anomaly {
                continue;
            }
            acc.records += 1;
            let ts = r.ts.map(|t| t.0).unwrap_or(0.0);
            let rid: Arc<str> = match nonempty(&r.rid) {
                // An open request already holds the rid; a new one gets its own allocation
                // (rids are unique per request, so interning them would only grow a set).
                Some(v) => match open.get_key_value(v) {
                    Some((k, _)) => k.clone(),
                    None => Arc::from(v),
                },
                None => {
                    // No rid: a request on its own; key it by model and time so reruns agree.
                    let m = r.model.as_deref().unwrap_or("");
                    it.get(&format!("~{m}@{ts}"))
                }
            };
            match kind {
                Kind::Decision | Kind::EarlyStream => {
                    let t = open.entry(rid.clone()).or_insert_with(|| {
                        open_order.push(rid.clone());
                        CccTurn::new(rid.clone(), ts)
                    });
                    t.absorb_routing(r, &mut it);
                    if kind == Kind::EarlyStream {
                        t.stream = true;
                    }
                }
                Kind::Legacy => {
                    let t = open.entry(rid.clone()).or_insert_with(|| {
                        open_order.push(rid.clone());
                        CccTurn::new(rid.clone(), ts)
                    });
                    t.absorb_final(r, &mut it);
                    t.legacy = true;
                }
                Kind::Final => {
                    let mut t = match open.remove(&rid) {
                        Some(t) => t,
                        None => CccTurn::new(rid.clone(), ts),
                    };
                    t.absorb_final(r, &mut it);
                    closed.push(t);
                }
                Kind::Fragment | Kind::Anomaly => {}
            }
        }
        if let Some(e) = failure {
            if line.unterminated && parsed_ok == 0 {
                acc.lines -= 1;
                return ControlFlow::Continue(Tail::Pending);
            }
            acc.lines_skipped += 1;
            skipped.push(SkippedLine {
                path: path.clone(),
                line: line.no,
                offset: line.offset,
                reason: if e.is_data() {
                    SkipReason::BadField(e.to_string())
                } else {
                    SkipReason::InvalidJson(e.to_string())
                },
            });
        }
        ControlFlow::Continue(Tail::Consumed)
    });
    match res {
        Ok(end) => {
            out.account.bytes = end.bytes_read;
            out.end = Some(end);
        }
        Err(e) => {
            out.account.lines_skipped += 1;
            out.skipped.push(SkippedLine {
                path: path.clone(),
                line: 0,
                offset: 0,
                reason: SkipReason::Unreadable(format!("{e}")),
            });
        }
    }
    for rid in open_order {
        if let Some(t) = open.remove(&rid) {
            out.open.push(t);
        }
    }
    if let Some(p) = progress {
        p.add_bytes(out.account.bytes);
        p.file_done();
    }
    out
}

/// Joins per-file outcomes (in chronological file order) into turns: a final line in a newer
/// file completes a request whose decision lines are in an older one (rotation can split a
/// request), and duplicate requests (same rid and final timestamp, e.g. an archived copy of a
/// rotated file) are dropped.
#[derive(Debug, Default)]
pub struct Assembler {
    open: FxHashMap<Arc<str>, CccTurn>,
    open_order: Vec<Arc<str>>,
    seen: FxHashSet<DedupKey>,
    /// Finished turns in order.
    pub turns: Vec<CccTurn>,
    /// Duplicates dropped.
    pub duplicates: u64,
}

impl Assembler {
    /// Starts with requests left open by an earlier run.
    pub fn with_open(prior: Vec<CccTurn>) -> Assembler {
        let mut a = Assembler::default();
        for t in prior {
            a.add_open(t);
        }
        a
    }

    fn add_open(&mut self, t: CccTurn) {
        match self.open.get_mut(&t.rid) {
            Some(existing) => {
                let prior = std::mem::replace(existing, t);
                existing.merge_prior(prior);
            }
            None => {
                self.open_order.push(t.rid.clone());
                self.open.insert(t.rid.clone(), t);
            }
        }
    }

    /// Adds one file's outcome.
    pub fn push(&mut self, closed: Vec<CccTurn>, open: Vec<CccTurn>) {
        for mut t in closed {
            // Earlier lines of this request may sit in an older file or chunk (a decision line
            // before the rotation, an early stream line after it).
            if let Some(prior) = self.open.remove(&t.rid) {
                t.merge_prior(prior);
            }
            if self.seen.insert(t.key()) {
                self.turns.push(t);
            } else {
                self.duplicates += 1;
            }
        }
        for t in open {
            self.add_open(t);
        }
    }

    /// Forgets the duplicate keys of requests that ended before `ts_ms` (epoch ms), once the
    /// caller knows no request still to come can repeat them: keeps a streaming run's memory
    /// independent of its input's size.
    pub fn forget_before(&mut self, ts_ms: i64) {
        // A CCC key's low half is the final line's epoch milliseconds (`DedupKey::ccc`).
        self.seen.retain(|k| k.b as i64 >= ts_ms);
    }

    /// Requests still open, in first-seen order (for the next incremental run).
    pub fn take_open(&mut self) -> Vec<CccTurn> {
        let mut v = Vec::new();
        for rid in std::mem::take(&mut self.open_order) {
            if let Some(t) = self.open.remove(&rid) {
                v.push(t);
            }
        }
        v
    }

    /// Closes everything still open (old-shape requests are complete; others are counted as
    /// incomplete) and returns all turns plus the number of incomplete ones.
    pub fn finish(mut self) -> (Vec<CccTurn>, u64) {
        let mut incomplete = 0;
        for t in self.take_open() {
            if !t.complete {
                incomplete += 1;
            }
            if self.seen.insert(t.key()) {
                self.turns.push(t);
            } else {
                self.duplicates += 1;
            }
        }
        (self.turns, incomplete)
    }
}

/// Reads all logs with `threads` workers and assembles turns (see [`Assembler`]).
pub fn read_logs(
    jobs: &[LogJob],
    threads: usize,
    range: &TimeRange,
    progress: Option<&Progress>,
) -> Vec<LogOutcome> {
    crate::parallel::map_ordered(
        jobs,
        threads,
        |j| j.size.saturating_sub(j.start),
        |j| read_log(j, range, progress),
    )
}
