//! Prometheus metrics of one collector instance (prometheus-client: typed families, one
//! registry per [`Metrics`], no globals, so tests are isolated).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `agentos_collector_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Matched route template (e.g. `/v1/events`), or `unmatched`.
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of `agentos_collector_events_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `accepted`, `duplicate` or `rejected`.
    pub outcome: &'static str,
    /// Rejection code for `rejected`, else empty.
    pub reason: String,
}

/// Labels of `agentos_collector_database_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbErrorLabels {
    /// Operation that failed (`ingest`, `usage`, …).
    pub op: &'static str,
}

/// Labels of `agentos_collector_otlp_records_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OtlpLabels {
    /// `logs` or `metrics`.
    pub signal: &'static str,
    /// `accepted`, `duplicate`, `superseded` (session counted from claude_code turns),
    /// `retracted`, `rejected` or `ignored` (not a Claude Code event or metric this collector
    /// stores).
    pub outcome: &'static str,
}

/// Labels of `agentos_collector_otlp_dropped_attributes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DroppedLabels {
    /// `free_text` (a prompt, tool input, … never stored) or `over_limit`.
    pub reason: &'static str,
}

/// Operations whose database errors are counted.
pub const DB_OPS: [&str; 7] = [
    "ingest", "metrics", "usage", "summary", "ping", "keys", "otlp",
];

/// Every metric the collector exports, plus the registry that renders them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Events by outcome and rejection reason.
    pub events: Family<EventLabels, Counter>,
    /// Batches whose response reported at least one gap.
    pub gap_batches: Counter,
    /// Σ uncovered seqs reported in responses (a backlog signal, not a unique count).
    pub gap_seqs: Counter,
    /// Time from request start to committed acknowledgement of `/v1/events`.
    pub ingest_latency: Histogram,
    /// Database failures by operation.
    pub db_errors: Family<DbErrorLabels, Counter>,
    /// OTLP log records and metric points by outcome.
    pub otlp_records: Family<OtlpLabels, Counter>,
    /// OTLP attributes dropped, by reason.
    pub otlp_dropped: Family<DroppedLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the families and registers them.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("agentos_collector");
        let requests = Family::<RequestLabels, Counter>::default();
        let events = Family::<EventLabels, Counter>::default();
        let gap_batches = Counter::default();
        let gap_seqs = Counter::default();
        // 0.5 ms … ~16 s: covers a one-event insert on SQLite up to a congested PostgreSQL.
        let ingest_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let db_errors = Family::<DbErrorLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "events",
            "Events received by outcome (accepted, duplicate, rejected) and rejection reason",
            events.clone(),
        );
        registry.register(
            "gap_batches",
            "Event batches whose response reported seq gaps",
            gap_batches.clone(),
        );
        registry.register(
            "gap_seqs",
            "Uncovered seqs reported in event responses",
            gap_seqs.clone(),
        );
        registry.register(
            "ingest_duration_seconds",
            "Latency of POST /v1/events until the batch is committed",
            ingest_latency.clone(),
        );
        registry.register(
            "database_errors",
            "Database errors by operation",
            db_errors.clone(),
        );
        let otlp_records = Family::<OtlpLabels, Counter>::default();
        let otlp_dropped = Family::<DroppedLabels, Counter>::default();
        registry.register(
            "otlp_records",
            "OTLP log records and metric data points by signal and outcome",
            otlp_records.clone(),
        );
        registry.register(
            "otlp_dropped_attributes",
            "OTLP attributes dropped unstored: free text (prompts, tool inputs) or over the per-record limit",
            otlp_dropped.clone(),
        );
        for reason in ["free_text", "over_limit"] {
            let _ = otlp_dropped.get_or_create(&DroppedLabels { reason });
        }
        // Pre-create the series so a healthy collector exports explicit zeros (alerts on
        // `increase(...) > 0` then work from the first scrape).
        for op in DB_OPS {
            let _ = db_errors.get_or_create(&DbErrorLabels { op });
        }
        Metrics {
            registry: Arc::new(registry),
            requests,
            events,
            gap_batches,
            gap_seqs,
            ingest_latency,
            db_errors,
            otlp_records,
            otlp_dropped,
        }
    }

    /// Counts one database failure.
    pub fn db_error(&self, op: &'static str) {
        self.db_errors.get_or_create(&DbErrorLabels { op }).inc();
    }

    /// Renders the OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
