//! The on-disk side of delivery: where things live, the cursor, log reading, bookkeeping, and
//! the read-only status report.
//!
//! ```text
//! <data_dir>/
//!   windows.jsonl            the recorder's log: the source of truth and the queue
//!   metrics_summary.json     the recorder's rollup (sent to /v1/metrics for minimized/full)
//!   delivery/
//!     cursor.json            durable cursor (see `cursor`)
//!     state.json             counters, last ack/error, server watermark and gaps (advisory)
//!     rejected.jsonl         events given up on, with the server's reason
//!     summary_sent.json      hash of the last summary body the server acknowledged
//!     held.json              events held back behind the cursor, forgotten seqs to report (see `ledger`)
//!     forget.jsonl           every `agentos ccc outbox forget` decision, append-only
//!     uploader.lock          held by the one uploader of this data dir
//! ```

pub mod cursor;
pub mod ledger;
pub mod log;
pub mod state;

use std::path::{Path, PathBuf};

use agentos_config::DataDir;
use serde::Serialize;

use crate::error::DeliveryError;
use cursor::{Cursor, CursorLoad};
use state::{DeliveryState, LastError, Rescan};

/// Paths of every file delivery reads or writes (names from [`agentos_config::layout`]).
#[derive(Debug, Clone)]
pub struct Paths {
    /// The data dir.
    pub data_dir: PathBuf,
    /// `windows.jsonl`.
    pub log: PathBuf,
    /// `metrics_summary.json`.
    pub summary: PathBuf,
    /// `delivery/`.
    pub dir: PathBuf,
    /// `delivery/cursor.json`.
    pub cursor: PathBuf,
    /// `delivery/state.json`.
    pub state: PathBuf,
    /// `delivery/rejected.jsonl`.
    pub rejected: PathBuf,
    /// `delivery/summary_sent.json`.
    pub summary_sent: PathBuf,
    /// `delivery/held.json`.
    pub held: PathBuf,
    /// `delivery/forget.jsonl`.
    pub forget: PathBuf,
    /// `delivery/uploader.lock`.
    pub lock: PathBuf,
}

impl Paths {
    /// The layout under `data_dir`.
    pub fn new(data_dir: &Path) -> Paths {
        let d = DataDir::new(data_dir);
        Paths {
            data_dir: data_dir.to_path_buf(),
            log: d.windows(),
            summary: d.summary(),
            dir: d.delivery_dir(),
            cursor: d.delivery_cursor(),
            state: d.delivery_state(),
            rejected: d.delivery_rejected(),
            summary_sent: d.delivery_summary_sent(),
            held: d.delivery_held(),
            forget: d.delivery_forget(),
            lock: d.delivery_lock(),
        }
    }
}

/// What `agentos ccc outbox status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxStatus {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Complete log lines not yet delivered, withheld or rejected.
    pub pending_events: u64,
    /// Their bytes.
    pub pending_bytes: u64,
    /// Bytes after the last line break (a torn or in-progress line; never sent as is).
    pub torn_tail_bytes: u64,
    /// The cursor's byte offset (0 when missing or corrupt).
    pub cursor_offset: u64,
    /// Why the cursor cannot be trusted (the next run rescans from 0), if so.
    pub cursor_problem: Option<String>,
    /// When the server last acknowledged a batch.
    pub last_ack_at: Option<jiff::Timestamp>,
    /// Highest seq acknowledged or withheld.
    pub last_ack_seq: u64,
    /// The last error.
    pub last_error: Option<LastError>,
    /// Retries ever made.
    pub retries_total: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// Events in `rejected.jsonl` (distinct).
    pub rejected: u64,
    /// Events the server stored for the first time.
    pub accepted_total: u64,
    /// Events the server already had.
    pub duplicates_total: u64,
    /// Events recorded under `local`/`minimized`, which never leave as events.
    pub withheld_total: u64,
    /// Events held back behind the cursor: a sync whose tier allows them sends them.
    pub held_events: u64,
    /// Their seqs.
    pub held: Vec<[u64; 2]>,
    /// Events forgotten on purpose so far (`agentos ccc outbox forget`).
    pub forgotten_events: u64,
    /// Forgotten seqs the server has not been told about yet.
    pub forgotten_unreported: Vec<[u64; 2]>,
    /// Every forget decision, oldest first (`delivery/forget.jsonl`).
    pub forget_decisions: Vec<ledger::ForgetDecision>,
    /// Why the held-back ledger cannot be trusted (the next run rescans from 0), if so.
    pub ledger_problem: Option<String>,
    /// Held-back seqs the server last reported for this device.
    pub server_held: Vec<[u64; 2]>,
    /// Forgotten seqs the server last reported for this device.
    pub server_forgotten: Vec<[u64; 2]>,
    /// The server's contiguous watermark for this device, as last reported.
    pub server_watermark: Option<u64>,
    /// Gaps the server last reported.
    pub server_gaps: Vec<[u64; 2]>,
    /// Recent rescans from offset 0.
    pub rescans: Vec<Rescan>,
    /// When the summary was last acknowledged.
    pub summary_sent_at: Option<jiff::Timestamp>,
    /// Whether an uploader holds the delivery lock right now.
    pub uploader_running: bool,
}

/// Computes the status of the data dir without taking the uploader lock (read-only apart from
/// probing the lock).
///
/// # Errors
/// When the log or the rejection log cannot be read.
pub fn status(data_dir: &Path) -> Result<OutboxStatus, DeliveryError> {
    let paths = Paths::new(data_dir);
    let (cursor, cursor_problem) = match Cursor::load(&paths.cursor) {
        Ok(CursorLoad::Fresh) => (Cursor::default(), None),
        Ok(CursorLoad::Loaded(c)) => match c.check_against_log(&paths.log) {
            Ok(()) => (c, None),
            Err(r) => (Cursor::default(), Some(r)),
        },
        Ok(CursorLoad::Corrupt(r)) => (Cursor::default(), Some(r)),
        Err(e) => (Cursor::default(), Some(format!("unreadable: {e}"))),
    };
    let (pending_events, pending_bytes, torn) = log::count_from(&paths.log, cursor.offset)
        .map_err(|e| DeliveryError::io("reading log", &paths.log, e))?;
    let (ledger, ledger_problem) = match ledger::LedgerBody::load(&paths.held) {
        Ok(ledger::LedgerLoad::Loaded(l)) => (l, None),
        Ok(ledger::LedgerLoad::Fresh) => (ledger::LedgerBody::default(), None),
        Ok(ledger::LedgerLoad::Corrupt(r)) => (ledger::LedgerBody::default(), Some(r)),
        Err(e) => (
            ledger::LedgerBody::default(),
            Some(format!("unreadable: {e}")),
        ),
    };
    let forget_decisions = ledger::load_decisions(&paths.forget)
        .map_err(|e| DeliveryError::io("reading forget decisions", &paths.forget, e))?;
    let st = DeliveryState::load(&paths.state);
    let rejected = state::count_rejected(&paths.rejected)
        .map_err(|e| DeliveryError::io("reading rejection log", &paths.rejected, e))?;
    let uploader_running = paths.dir.is_dir()
        && matches!(agentos_config::FileLock::try_acquire(&paths.lock), Ok(None));
    Ok(OutboxStatus {
        data_dir: data_dir.to_path_buf(),
        pending_events,
        pending_bytes,
        torn_tail_bytes: torn,
        cursor_offset: cursor.offset,
        cursor_problem,
        last_ack_at: st.last_ack_at,
        last_ack_seq: st.last_ack_seq,
        last_error: st.last_error,
        retries_total: st.retries_total,
        consecutive_failures: st.consecutive_failures,
        rejected,
        accepted_total: st.accepted_total,
        duplicates_total: st.duplicates_total,
        withheld_total: st.withheld_total,
        held_events: ledger.held_count(),
        held: ledger.held_seqs().to_pairs(),
        forgotten_events: ledger.forgotten_total,
        forgotten_unreported: ledger.forgotten_unreported.to_pairs(),
        forget_decisions,
        ledger_problem,
        server_held: st.server_held,
        server_forgotten: st.server_forgotten,
        server_watermark: st.server_watermark,
        server_gaps: st.server_gaps,
        rescans: st.rescans,
        summary_sent_at: st.summary_sent_at,
        uploader_running,
    })
}

impl OutboxStatus {
    /// The status in the Prometheus text exposition format (gauges and counters).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "agentos_outbox_pending_events",
            "gauge",
            "Recorded events not yet delivered, withheld or rejected.",
            self.pending_events as f64,
        );
        metric(
            "agentos_outbox_pending_bytes",
            "gauge",
            "Bytes of the pending events in windows.jsonl.",
            self.pending_bytes as f64,
        );
        metric(
            "agentos_outbox_torn_tail_bytes",
            "gauge",
            "Bytes after the last complete line of windows.jsonl.",
            self.torn_tail_bytes as f64,
        );
        metric(
            "agentos_outbox_last_ack_seq",
            "gauge",
            "Highest seq acknowledged or withheld.",
            self.last_ack_seq as f64,
        );
        metric(
            "agentos_outbox_last_ack_timestamp_seconds",
            "gauge",
            "Unix time of the last acknowledgement (0 if none).",
            self.last_ack_at.map_or(0.0, |t| t.as_second() as f64),
        );
        metric(
            "agentos_outbox_retries_total",
            "counter",
            "Retries made by the uploader.",
            self.retries_total as f64,
        );
        metric(
            "agentos_outbox_consecutive_failures",
            "gauge",
            "Failed attempts since the last success.",
            self.consecutive_failures as f64,
        );
        metric(
            "agentos_outbox_rejected_events",
            "gauge",
            "Events moved to rejected.jsonl.",
            self.rejected as f64,
        );
        metric(
            "agentos_outbox_accepted_total",
            "counter",
            "Events the server stored for the first time.",
            self.accepted_total as f64,
        );
        metric(
            "agentos_outbox_duplicates_total",
            "counter",
            "Events the server already had.",
            self.duplicates_total as f64,
        );
        metric(
            "agentos_outbox_withheld_total",
            "counter",
            "Events recorded under a tier that never sends events.",
            self.withheld_total as f64,
        );
        metric(
            "agentos_outbox_held_events",
            "gauge",
            "Events held back for a later run whose tier allows them.",
            self.held_events as f64,
        );
        metric(
            "agentos_outbox_forgotten_events",
            "counter",
            "Events forgotten on purpose (never sent).",
            self.forgotten_events as f64,
        );
        metric(
            "agentos_outbox_server_watermark",
            "gauge",
            "The server's contiguous watermark for this device (-1 if unknown).",
            self.server_watermark.map_or(-1.0, |w| w as f64),
        );
        metric(
            "agentos_outbox_server_gap_events",
            "gauge",
            "Events in the gaps the server last reported.",
            self.server_gaps
                .iter()
                .map(|[a, b]| (b.saturating_sub(*a) + 1) as f64)
                .sum(),
        );
        metric(
            "agentos_outbox_uploader_running",
            "gauge",
            "1 while an uploader holds the delivery lock.",
            if self.uploader_running { 1.0 } else { 0.0 },
        );
        out
    }
}
