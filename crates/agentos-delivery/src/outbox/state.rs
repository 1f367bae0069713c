//! Delivery bookkeeping for `agentos ccc outbox status`: `<data_dir>/delivery/state.json`
//! (advisory: replaced atomically but not fsynced — losing it loses statistics, never events),
//! and the permanent-rejection log `<data_dir>/delivery/rejected.jsonl`.

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The last error delivery ran into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    /// When it happened.
    pub at: jiff::Timestamp,
    /// Stable code (`http_503`, `network`, `refused`, …).
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

/// A rescan of the log from offset 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescan {
    /// When it started.
    pub at: jiff::Timestamp,
    /// Why (corrupt cursor, log truncated, …).
    pub reason: String,
}

/// Counters and the server's view, kept across runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryState {
    /// When the server last acknowledged a batch.
    pub last_ack_at: Option<jiff::Timestamp>,
    /// Highest seq acknowledged (or withheld) so far.
    pub last_ack_seq: u64,
    /// The last error (cleared by nothing: it stays for diagnosis; compare its time).
    pub last_error: Option<LastError>,
    /// Retries ever made.
    pub retries_total: u64,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    /// The server's contiguous watermark for this device, as last reported.
    pub server_watermark: Option<u64>,
    /// Gaps the server last reported for this device.
    pub server_gaps: Vec<[u64; 2]>,
    /// Held-back seqs the server last reported for this device.
    pub server_held: Vec<[u64; 2]>,
    /// Forgotten seqs the server last reported for this device.
    pub server_forgotten: Vec<[u64; 2]>,
    /// Events the server stored for the first time.
    pub accepted_total: u64,
    /// Events the server already had (replays after a crash or timeout).
    pub duplicates_total: u64,
    /// Events sent in acknowledged batches.
    pub sent_total: u64,
    /// Events the tier kept home.
    pub withheld_total: u64,
    /// Events moved to `rejected.jsonl`.
    pub rejected_total: u64,
    /// Recent rescans from offset 0 (last 10).
    pub rescans: Vec<Rescan>,
    /// When the summary was last sent.
    pub summary_sent_at: Option<jiff::Timestamp>,
}

impl DeliveryState {
    /// Reads the state; missing or unreadable state starts over (it is only statistics).
    pub fn load(path: &Path) -> DeliveryState {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "delivery state unreadable; starting over");
                DeliveryState::default()
            }),
            Err(_) => DeliveryState::default(),
        }
    }

    /// Replaces the state file (atomic, not fsynced).
    ///
    /// # Errors
    /// Any I/O error.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        agentos_config::durable::replace_file(path, &bytes)
    }

    /// Records an error.
    pub fn note_error(&mut self, code: &str, message: &str) {
        self.last_error = Some(LastError {
            at: jiff::Timestamp::now(),
            code: code.to_owned(),
            message: message.to_owned(),
        });
        self.consecutive_failures += 1;
    }

    /// Records a rescan.
    pub fn note_rescan(&mut self, reason: &str) {
        self.rescans.push(Rescan {
            at: jiff::Timestamp::now(),
            reason: reason.to_owned(),
        });
        let n = self.rescans.len();
        if n > 10 {
            self.rescans.drain(..n - 10);
        }
    }
}

/// One line of `rejected.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// When delivery gave up on it.
    pub at: jiff::Timestamp,
    /// Its seq, when known.
    pub seq: Option<u64>,
    /// Its event id, when known.
    pub event_id: Option<String>,
    /// Byte offset of the line in `windows.jsonl`, when the problem is local.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// HTTP status of a whole-request rejection (absent for per-event rejections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The server's (or the local reader's) code.
    pub code: String,
    /// The server's reason.
    pub reason: String,
    /// The redacted event as it was sent, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
}

/// Appends records to `rejected.jsonl` and syncs them (they document a permanent loss).
///
/// # Errors
/// Any I/O error.
pub fn append_rejected(path: &Path, records: &[RejectedRecord]) -> io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r).map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&buf)?;
    f.sync_data()
}

/// Distinct rejected events in `rejected.jsonl` (a replay after a crash may log one twice).
///
/// # Errors
/// I/O errors other than "not found".
pub fn count_rejected(path: &Path) -> io::Result<u64> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut keys = BTreeSet::new();
    let mut anonymous = 0u64;
    for line in io::BufReader::new(f).lines() {
        let line = line?;
        match serde_json::from_str::<RejectedRecord>(&line) {
            Ok(RejectedRecord { seq: Some(s), .. }) => {
                keys.insert(s);
            }
            _ if line.trim().is_empty() => {}
            _ => anonymous += 1,
        }
    }
    Ok(keys.len() as u64 + anonymous)
}
