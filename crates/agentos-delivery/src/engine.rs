//! The delivery engine: read the log from the cursor, apply the tier at send time, batch, send,
//! retry, and advance the cursor only after the server acknowledged.
//!
//! One [`Delivery`] per data dir at a time (it holds `delivery/uploader.lock`). The CLI drives it
//! with [`Delivery::sync`]; the background [`crate::Uploader`] owns one in its worker task.
//!
//! Crash safety in one sentence: the cursor is the only thing that says "done", it is written
//! atomically after the acknowledgement, and everything before it is idempotent on the server
//! (dedup by `event_id`), so dying anywhere means at worst resending one batch.

use std::ops::Range;
use std::time::Duration;

use agentos_core::event::Envelope;
use agentos_core::privacy::{egress_event, egress_summary};
use agentos_core::rollup::Summary;
use agentos_core::tier::{Egress, Tier};
use agentos_recorder::FileLock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::DeliveryError;
use crate::outbox::Paths;
use crate::outbox::cursor::{Cursor, CursorLoad};
use crate::outbox::log::LogReader;
use crate::outbox::state::{DeliveryState, RejectedRecord, append_rejected};
use crate::settings::{Settings, TierHandle};
use crate::transport::{Backoff, SendError, Transport};
use crate::wire::EventsResponse;

/// Withheld lines scanned per step, as a multiple of the batch size, so that a long stretch the
/// tier keeps home still advances the cursor in bounded steps.
const SCAN_FACTOR: u64 = 10;

/// What one [`Delivery::sync`] / [`Delivery::drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// Whether every complete line of the log is now delivered, withheld or rejected.
    pub caught_up: bool,
    /// Acknowledged `/v1/events` requests.
    pub batches: u64,
    /// Events in acknowledged requests.
    pub sent: u64,
    /// Of those, stored for the first time.
    pub accepted: u64,
    /// Of those, already on the server.
    pub duplicates: u64,
    /// Events moved to `rejected.jsonl`.
    pub rejected: u64,
    /// Events the tier kept home.
    pub withheld: u64,
    /// Retries made.
    pub retries: u64,
    /// Why the log was rescanned from offset 0, if it was.
    pub rescan: Option<String>,
    /// What happened to the summary (only for [`Delivery::sync`]).
    pub summary: Option<SummaryOutcome>,
}

/// What happened to a summary upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryOutcome {
    /// The tier allows no metrics: nothing was sent and no connection was made.
    Withheld,
    /// There is no `metrics_summary.json` yet.
    NoSummary,
    /// The server already acknowledged this exact body.
    Unchanged,
    /// The server acknowledged it.
    Sent,
    /// The deadline passed before the server acknowledged it.
    OutOfTime,
}

/// Whether a step finished or ran out of time.
enum Step {
    Done,
    OutOfTime,
}

/// The outcome of a POST that is retried through transient failures.
enum Posted {
    Ok(Vec<u8>),
    Invalid {
        status: u16,
        code: String,
        message: String,
    },
    OutOfTime,
}

/// One event inside a batch body.
struct Span {
    seq: u64,
    event_id: String,
    range: Range<usize>,
}

/// A parsed log line waiting for a batch with room.
struct Prepared {
    env: Envelope,
    end: u64,
}

/// A batch: the lines it accounts for and the body that says so.
struct Batch {
    /// First seq among its lines (the body's `covers.from` may start lower).
    first_seq: Option<u64>,
    /// Highest seq among its lines (0 when none has one).
    last_seq: u64,
    /// Offset just past its last line.
    end: u64,
    /// Lines it accounts for (events, withheld, unparsable).
    lines: u64,
    withheld: u64,
    /// The events that may leave, in log order.
    envs: Vec<Envelope>,
    /// `[e1,e2,…` bytes of the serialized events (the `events` array without brackets).
    events_json: Vec<u8>,
    spans: Vec<Span>,
    tier: Tier,
    /// Unparsable lines among its lines; logged to `rejected.jsonl` when the batch commits.
    local_rejects: Vec<RejectedRecord>,
}

/// Reads the log ahead of the sender and turns lines into batches. It owns everything it needs,
/// so the next batch can be built on a blocking thread while the current one is in flight.
struct Builder {
    reader: LogReader,
    carry: Option<Prepared>,
    log: std::path::PathBuf,
    policy: agentos_core::privacy::RedactionPolicy,
    max_events: usize,
    max_bytes: usize,
}

impl Builder {
    fn next(&mut self, tier: Tier) -> Result<Batch, DeliveryError> {
        let max_events = self.max_events.max(1);
        let max_bytes = self.max_bytes;
        let max_lines = max_events as u64 * SCAN_FACTOR;
        let mut b = Batch {
            first_seq: None,
            last_seq: 0,
            end: 0,
            lines: 0,
            withheld: 0,
            envs: Vec::new(),
            events_json: Vec::new(),
            spans: Vec::new(),
            tier,
            local_rejects: Vec::new(),
        };
        loop {
            let p = match self.carry.take() {
                Some(p) => p,
                None => {
                    let line = self
                        .reader
                        .next_line()
                        .map_err(|e| DeliveryError::io("reading log", &self.log, e))?;
                    let Some(line) = line else { break };
                    let trimmed = line.bytes.trim_ascii();
                    if trimmed.is_empty() {
                        b.end = line.end;
                        b.lines += 1;
                        continue;
                    }
                    match serde_json::from_slice::<Envelope>(trimmed) {
                        Ok(env) => Prepared { env, end: line.end },
                        Err(e) => {
                            tracing::warn!(offset = line.start, error = %e, "unparsable line in windows.jsonl; recorded in rejected.jsonl and skipped");
                            b.local_rejects.push(RejectedRecord {
                                at: jiff::Timestamp::now(),
                                seq: None,
                                event_id: None,
                                offset: Some(line.start),
                                status: None,
                                code: "unparsable_local_line".into(),
                                reason: format!(
                                    "{} at byte {}: line 1 column {}: {e}",
                                    self.log.display(),
                                    line.start,
                                    e.column()
                                ),
                                event: None,
                            });
                            b.end = line.end;
                            b.lines += 1;
                            continue;
                        }
                    }
                }
            };
            let seq = p.env.seq;
            match egress_event(&p.env, tier, &self.policy) {
                None => {
                    b.withheld += 1;
                }
                Some(v) => {
                    let start = b.events_json.len() + usize::from(!b.spans.is_empty());
                    let mut bytes = Vec::with_capacity(512);
                    if serde_json::to_writer(&mut bytes, &v).is_err() {
                        // Serializing a Value cannot fail; keep the line accounted anyway.
                        b.withheld += 1;
                    } else {
                        // Room for the framing (`{"events":[`, `],"device_id":…}`): ~200 bytes.
                        let projected = b.events_json.len() + bytes.len() + 256;
                        if !b.spans.is_empty() && projected > max_bytes {
                            self.carry = Some(p);
                            break;
                        }
                        if !b.spans.is_empty() {
                            b.events_json.push(b',');
                        }
                        b.events_json.extend_from_slice(&bytes);
                        b.spans.push(Span {
                            seq,
                            event_id: p.env.event_id.to_string(),
                            range: start..b.events_json.len(),
                        });
                        b.envs.push(p.env);
                    }
                }
            }
            b.first_seq.get_or_insert(seq);
            b.last_seq = b.last_seq.max(seq);
            b.end = p.end;
            b.lines += 1;
            if b.spans.len() >= max_events || b.lines >= max_lines {
                break;
            }
        }
        Ok(b)
    }
}

/// Hash of the last summary body the server acknowledged (`delivery/summary_sent.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct SummarySent {
    sha256: String,
    at: Option<jiff::Timestamp>,
}

/// The delivery engine of one data dir.
#[derive(Debug)]
pub struct Delivery {
    settings: Settings,
    paths: Paths,
    transport: Option<Transport>,
    tier: TierHandle,
    cursor: Cursor,
    state: DeliveryState,
    backoff: Backoff,
    progress: Option<watch::Sender<u64>>,
    rescan: Option<String>,
    _lock: FileLock,
}

impl Delivery {
    /// Opens delivery for `settings.data_dir`: takes the uploader lock and loads the cursor (a
    /// corrupt cursor, or one that does not fit the log, starts a rescan from offset 0).
    ///
    /// # Errors
    /// [`DeliveryError::Locked`] when another uploader runs; I/O errors. A missing or bad URL is
    /// reported only when something may leave.
    pub fn open(settings: Settings) -> Result<Delivery, DeliveryError> {
        let paths = Paths::new(&settings.data_dir);
        std::fs::create_dir_all(&paths.dir)
            .map_err(|e| DeliveryError::io("creating delivery dir", &paths.dir, e))?;
        let lock = FileLock::try_acquire(&paths.lock)
            .map_err(|e| DeliveryError::io("opening delivery lock", &paths.lock, e))?
            .ok_or_else(|| DeliveryError::Locked {
                path: paths.lock.clone(),
            })?;
        let mut state = DeliveryState::load(&paths.state);
        let loaded = Cursor::load(&paths.cursor)
            .map_err(|e| DeliveryError::io("reading cursor", &paths.cursor, e))?;
        let (cursor, rescan) = match loaded {
            CursorLoad::Fresh => (Cursor::default(), None),
            CursorLoad::Loaded(c) => match c.check_against_log(&paths.log) {
                Ok(()) => (c, None),
                Err(reason) => (
                    Cursor::default(),
                    Some(format!("cursor {}: {reason}", paths.cursor.display())),
                ),
            },
            CursorLoad::Corrupt(reason) => (
                Cursor::default(),
                Some(format!(
                    "cursor {} is corrupt: {reason}",
                    paths.cursor.display()
                )),
            ),
        };
        if let Some(r) = &rescan {
            tracing::warn!(reason = %r, "rescanning windows.jsonl from offset 0; the server dedupes replays by event_id");
            state.note_rescan(r);
            let _ = state.store(&paths.state);
        }
        // The client is built on first use, so a bad or missing URL only matters once
        // something may actually leave (tier local never needs one).
        let transport = None;
        let backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
        let tier = TierHandle::new(settings.tier);
        Ok(Delivery {
            settings,
            paths,
            transport,
            tier,
            cursor,
            state,
            backoff,
            progress: None,
            rescan,
            _lock: lock,
        })
    }

    /// The live tier handle (share it to lower or raise the tier while delivery runs).
    pub fn tier(&self) -> TierHandle {
        self.tier.clone()
    }

    /// Uses `tier` as the live tier handle.
    pub fn set_tier_handle(&mut self, tier: TierHandle) {
        self.tier = tier;
    }

    /// The cursor as of now.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The file layout.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Publishes the cursor offset on `tx` after every advance (used by `flush`).
    pub(crate) fn set_progress(&mut self, tx: watch::Sender<u64>) {
        tx.send_replace(self.cursor.offset);
        self.progress = Some(tx);
    }

    /// The longest backoff delay.
    pub(crate) fn max_backoff(&self) -> Duration {
        self.backoff.max()
    }

    /// Drains the log, then sends the current `metrics_summary.json` when the tier allows and it
    /// changed since the last acknowledged upload. `deadline` bounds the whole call (transient
    /// failures are retried until then); `None` retries forever.
    ///
    /// # Errors
    /// Local I/O errors, [`DeliveryError::NoUrl`] when something may leave but no URL is set,
    /// [`DeliveryError::Refused`] (401/403/404…), [`DeliveryError::SummaryRejected`].
    pub async fn sync(&mut self, deadline: Option<Instant>) -> Result<DrainReport, DeliveryError> {
        let mut report = self.drain(deadline).await?;
        let summary = if report.caught_up {
            self.send_summary_file(deadline).await?
        } else {
            SummaryOutcome::OutOfTime
        };
        report.summary = Some(summary);
        Ok(report)
    }

    /// Delivers complete log lines from the cursor on until none is left or `deadline` passes.
    ///
    /// # Errors
    /// As [`Delivery::sync`].
    pub async fn drain(&mut self, deadline: Option<Instant>) -> Result<DrainReport, DeliveryError> {
        let mut report = DrainReport {
            rescan: self.rescan.take(),
            ..DrainReport::default()
        };
        let retries_before = self.state.retries_total;
        let reader = LogReader::open(&self.paths.log, self.cursor.offset)
            .map_err(|e| DeliveryError::io("reading log", &self.paths.log, e))?;
        let mut builder = Some(Builder {
            reader,
            carry: None,
            log: self.paths.log.clone(),
            policy: self.settings.policy.clone(),
            max_events: self.settings.batch_max_events,
            max_bytes: self.settings.batch_max_bytes,
        });
        // The batch after the current one, being built on a blocking thread while the current
        // one is in flight (read-ahead only: nothing is committed before its turn, and the tier
        // is checked again when it is sent).
        let mut ahead: Option<tokio::task::JoinHandle<(Builder, Result<Batch, DeliveryError>)>> =
            None;
        let result = loop {
            let (b, built) = match ahead.take() {
                Some(h) => match h.await {
                    Ok(r) => r,
                    Err(e) => {
                        break Err(DeliveryError::io(
                            "building a batch from",
                            &self.paths.log,
                            std::io::Error::other(e.to_string()),
                        ));
                    }
                },
                None => match builder.take() {
                    Some(mut b) => {
                        let r = b.next(self.tier.get());
                        (b, r)
                    }
                    None => break Ok(()),
                },
            };
            let batch = match built {
                Ok(batch) => batch,
                Err(e) => break Err(e),
            };
            if batch.lines == 0 {
                if b.reader.tail_bytes() > 0 {
                    tracing::debug!(
                        bytes = b.reader.tail_bytes(),
                        "windows.jsonl ends in an unterminated line; it is not sent until it is complete"
                    );
                }
                report.caught_up = true;
                break Ok(());
            }
            let mut b = b;
            let tier_ahead = self.tier.get();
            ahead = Some(tokio::task::spawn_blocking(move || {
                let r = b.next(tier_ahead);
                (b, r)
            }));
            let tier_now = self.tier.get();
            report.withheld += batch.withheld;
            if batch.envs.is_empty() || !tier_now.allows(Egress::Events) {
                report.withheld += batch.envs.len() as u64;
                if let Err(e) = self.commit_local(&batch) {
                    break Err(e);
                }
                continue;
            }
            match self.deliver(batch, deadline, &mut report).await {
                Ok(Step::Done) => {}
                Ok(Step::OutOfTime) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        report.retries = self.state.retries_total - retries_before;
        self.store_state();
        result.map(|()| report)
    }

    /// Re-applies the tier to a batch built under a higher one (the tier was lowered while the
    /// batch was being retried): drops what may no longer leave.
    fn retier(&self, b: &mut Batch, tier: Tier) {
        let envs = std::mem::take(&mut b.envs);
        b.events_json.clear();
        b.spans.clear();
        for env in envs {
            match egress_event(&env, tier, &self.settings.policy) {
                None => b.withheld += 1,
                Some(v) => {
                    if !b.spans.is_empty() {
                        b.events_json.push(b',');
                    }
                    let start = b.events_json.len();
                    if serde_json::to_writer(&mut b.events_json, &v).is_ok() {
                        b.spans.push(Span {
                            seq: env.seq,
                            event_id: env.event_id.to_string(),
                            range: start..b.events_json.len(),
                        });
                        b.envs.push(env);
                    }
                }
            }
        }
        b.tier = tier;
    }

    fn covers_from(&self, first_seq: u64) -> u64 {
        (self.cursor.reported_seq + 1).min(first_seq)
    }

    fn body(&self, events_json: &[u8], batch_id: &str, from: u64, to: u64) -> Vec<u8> {
        let mut body = Vec::with_capacity(events_json.len() + 256);
        body.extend_from_slice(b"{\"events\":[");
        body.extend_from_slice(events_json);
        body.extend_from_slice(b"],\"device_id\":");
        body.extend_from_slice(
            Value::String(self.settings.device_id.clone())
                .to_string()
                .as_bytes(),
        );
        body.extend_from_slice(
            format!(",\"batch_id\":\"{batch_id}\",\"covers\":{{\"from\":{from},\"to\":{to}}}}}")
                .as_bytes(),
        );
        body
    }

    async fn deliver(
        &mut self,
        mut batch: Batch,
        deadline: Option<Instant>,
        report: &mut DrainReport,
    ) -> Result<Step, DeliveryError> {
        let from = self.covers_from(batch.first_seq.unwrap_or(batch.last_seq));
        let to = batch.last_seq;
        let mut batch_id = uuid::Uuid::now_v7().to_string();
        let mut body = self.body(&batch.events_json, &batch_id, from, to);
        loop {
            let tier_now = self.tier.get();
            if tier_now < batch.tier {
                let withheld_before = batch.withheld;
                self.retier(&mut batch, tier_now);
                // The drain loop already counted what was withheld when the batch was built.
                report.withheld += batch.withheld - withheld_before;
                if batch.envs.is_empty() || !tier_now.allows(Egress::Events) {
                    report.withheld += batch.envs.len() as u64;
                    self.commit_local(&batch)?;
                    return Ok(Step::Done);
                }
                // New content, new idempotency key.
                batch_id = uuid::Uuid::now_v7().to_string();
                body = self.body(&batch.events_json, &batch_id, from, to);
            }
            match self
                .post_once("/v1/events", body.clone(), Some(&batch_id), deadline)
                .await?
            {
                Attempt::Done(Posted::Ok(bytes)) => {
                    let resp: EventsResponse = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "unreadable /v1/events response; treating the batch as acknowledged");
                        EventsResponse::default()
                    });
                    self.on_ack(&batch, &resp, to, to, report)?;
                    return Ok(Step::Done);
                }
                Attempt::Done(Posted::OutOfTime) => return Ok(Step::OutOfTime),
                Attempt::Done(Posted::Invalid {
                    status,
                    code,
                    message,
                }) => {
                    tracing::warn!(status, %code, %message, events = batch.envs.len(), "batch refused as a whole; sending its events one by one to isolate the bad ones");
                    return self.isolate(batch, from, to, deadline, report).await;
                }
                Attempt::Again => {}
            }
        }
    }

    /// Sends the events of a batch the server refused as a whole one at a time; those refused on
    /// their own go to `rejected.jsonl` with the server's reason.
    async fn isolate(
        &mut self,
        batch: Batch,
        from: u64,
        to: u64,
        deadline: Option<Instant>,
        report: &mut DrainReport,
    ) -> Result<Step, DeliveryError> {
        let mut pending_from = from;
        let mut rejects = Vec::new();
        let mut merged = EventsResponse::default();
        for span in &batch.spans {
            let id = uuid::Uuid::now_v7().to_string();
            let body = self.body(
                &batch.events_json[span.range.clone()],
                &id,
                pending_from,
                span.seq,
            );
            let posted = loop {
                match self
                    .post_once("/v1/events", body.clone(), Some(&id), deadline)
                    .await?
                {
                    Attempt::Done(p) => break p,
                    Attempt::Again => {}
                }
            };
            match posted {
                Posted::OutOfTime => return Ok(Step::OutOfTime),
                Posted::Ok(bytes) => {
                    let r: EventsResponse = serde_json::from_slice(&bytes).unwrap_or_default();
                    merged.accepted += r.accepted;
                    merged.duplicates += r.duplicates;
                    merged.rejected.extend(r.rejected);
                    merged.watermark = r.watermark;
                    merged.gaps = r.gaps;
                    pending_from = span.seq + 1;
                }
                Posted::Invalid {
                    status,
                    code,
                    message,
                } => {
                    rejects.push(RejectedRecord {
                        at: jiff::Timestamp::now(),
                        seq: Some(span.seq),
                        event_id: Some(span.event_id.clone()),
                        offset: None,
                        status: Some(status),
                        code,
                        reason: message,
                        event: serde_json::from_slice(&batch.events_json[span.range.clone()]).ok(),
                    });
                }
            }
        }
        self.state.rejected_total += rejects.len() as u64;
        report.rejected += rejects.len() as u64;
        append_rejected(&self.paths.rejected, &rejects)
            .map_err(|e| DeliveryError::io("appending to", &self.paths.rejected, e))?;
        // Whatever was not covered by an acknowledged single (trailing rejects, withheld lines)
        // is covered by the next batch, which starts at reported_seq + 1.
        let reported = pending_from.saturating_sub(1).max(self.cursor.reported_seq);
        self.on_ack(&batch, &merged, to, reported, report)?;
        Ok(Step::Done)
    }

    /// One POST; transient failures are counted, waited out (backoff or `Retry-After`) and
    /// answered with [`Attempt::Again`].
    async fn post_once(
        &mut self,
        path: &'static str,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<Attempt, DeliveryError> {
        if self.transport.is_none() {
            self.transport = Some(Transport::new(&self.settings)?);
        }
        let transport = self.transport.as_ref().ok_or(DeliveryError::NoUrl)?;
        match transport.post(path, body, idempotency_key).await {
            Ok(bytes) => {
                self.backoff.reset();
                self.state.consecutive_failures = 0;
                Ok(Attempt::Done(Posted::Ok(bytes)))
            }
            Err(SendError::Transient {
                code,
                message,
                retry_after,
            }) => {
                self.state.note_error(&code, &message);
                self.state.retries_total += 1;
                let delay = retry_after.unwrap_or_else(|| self.backoff.next_delay());
                tracing::info!(%code, %message, delay_ms = delay.as_millis() as u64, "transient delivery failure; retrying");
                if let Some(d) = deadline
                    && Instant::now() + delay >= d
                {
                    self.store_state();
                    return Ok(Attempt::Done(Posted::OutOfTime));
                }
                self.store_state();
                tokio::time::sleep(delay).await;
                Ok(Attempt::Again)
            }
            Err(SendError::Invalid {
                status,
                code,
                message,
            }) => {
                self.state.note_error(&code, &message);
                Ok(Attempt::Done(Posted::Invalid {
                    status,
                    code,
                    message,
                }))
            }
            Err(SendError::Refused {
                status,
                code,
                message,
            }) => {
                self.state.note_error(&code, &message);
                self.store_state();
                Err(DeliveryError::Refused {
                    path,
                    status,
                    code,
                    message,
                })
            }
        }
    }

    fn on_ack(
        &mut self,
        batch: &Batch,
        resp: &EventsResponse,
        to: u64,
        reported: u64,
        report: &mut DrainReport,
    ) -> Result<(), DeliveryError> {
        self.record_local_rejects(batch)?;
        if !resp.rejected.is_empty() {
            let records: Vec<RejectedRecord> = resp
                .rejected
                .iter()
                .map(|r| {
                    let span = batch.spans.iter().find(|s| {
                        r.event_id.as_deref() == Some(s.event_id.as_str()) || r.seq == Some(s.seq)
                    });
                    RejectedRecord {
                        at: jiff::Timestamp::now(),
                        seq: r.seq.or(span.map(|s| s.seq)),
                        event_id: r.event_id.clone().or(span.map(|s| s.event_id.clone())),
                        offset: None,
                        status: None,
                        code: r.code.clone(),
                        reason: r.reason.clone(),
                        event: span.and_then(|s| {
                            serde_json::from_slice(&batch.events_json[s.range.clone()]).ok()
                        }),
                    }
                })
                .collect();
            tracing::warn!(
                count = records.len(),
                "the server rejected events; they are in rejected.jsonl"
            );
            append_rejected(&self.paths.rejected, &records)
                .map_err(|e| DeliveryError::io("appending to", &self.paths.rejected, e))?;
            self.state.rejected_total += records.len() as u64;
            report.rejected += records.len() as u64;
        }
        let next = Cursor {
            offset: batch.end,
            acked_seq: self.cursor.acked_seq.max(to),
            reported_seq: reported,
        };
        self.advance(next)?;
        let n = batch.envs.len() as u64;
        report.batches += 1;
        report.sent += n;
        report.accepted += resp.accepted;
        report.duplicates += resp.duplicates;
        self.state.sent_total += n;
        self.state.accepted_total += resp.accepted;
        self.state.duplicates_total += resp.duplicates;
        self.state.withheld_total += batch.withheld;
        self.state.last_ack_at = Some(jiff::Timestamp::now());
        self.state.last_ack_seq = next.acked_seq;
        self.state.server_watermark = Some(resp.watermark);
        self.state.server_gaps = resp.gaps.clone();
        if !resp.gaps.is_empty() {
            tracing::warn!(gaps = ?resp.gaps, "the server reports seq gaps for this device");
        }
        self.store_state();
        Ok(())
    }

    /// Accounts for a batch nothing of which may leave: no request, cursor moves on.
    fn commit_local(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        self.record_local_rejects(batch)?;
        let next = Cursor {
            offset: batch.end,
            acked_seq: self.cursor.acked_seq.max(batch.last_seq),
            reported_seq: self.cursor.reported_seq,
        };
        self.state.withheld_total += batch.withheld + batch.envs.len() as u64;
        self.state.last_ack_seq = next.acked_seq;
        self.advance(next)
    }

    fn record_local_rejects(&mut self, batch: &Batch) -> Result<(), DeliveryError> {
        if batch.local_rejects.is_empty() {
            return Ok(());
        }
        self.state.rejected_total += batch.local_rejects.len() as u64;
        append_rejected(&self.paths.rejected, &batch.local_rejects)
            .map_err(|e| DeliveryError::io("appending to", &self.paths.rejected, e))
    }

    fn advance(&mut self, next: Cursor) -> Result<(), DeliveryError> {
        next.store(&self.paths.cursor)
            .map_err(|e| DeliveryError::io("writing cursor", &self.paths.cursor, e))?;
        self.cursor = next;
        if let Some(tx) = &self.progress {
            tx.send_replace(next.offset);
        }
        Ok(())
    }

    fn store_state(&self) {
        if let Err(e) = self.state.store(&self.paths.state) {
            tracing::warn!(path = %self.paths.state.display(), error = %e, "cannot write delivery state");
        }
    }

    /// Sends `metrics_summary.json` if the tier allows and it changed since the last
    /// acknowledged upload.
    ///
    /// # Errors
    /// As [`Delivery::upload_summary`]; also a summary file that does not parse.
    pub async fn send_summary_file(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<SummaryOutcome, DeliveryError> {
        if !self.tier.get().allows(Egress::Metrics) {
            return Ok(SummaryOutcome::Withheld);
        }
        let Some(summary) = read_summary(&self.paths)? else {
            return Ok(SummaryOutcome::NoSummary);
        };
        self.upload_summary(&summary, deadline).await
    }

    /// `POST /v1/metrics` with the tier-filtered `summary`, retrying transient failures until
    /// `deadline`; skipped when the server already acknowledged the same body.
    ///
    /// # Errors
    /// [`DeliveryError::NoUrl`], [`DeliveryError::Refused`], [`DeliveryError::SummaryRejected`],
    /// local I/O errors.
    pub async fn upload_summary(
        &mut self,
        summary: &Summary,
        deadline: Option<Instant>,
    ) -> Result<SummaryOutcome, DeliveryError> {
        let Some(value) = egress_summary(summary, self.tier.get()) else {
            return Ok(SummaryOutcome::Withheld);
        };
        let body = serde_json::to_vec(&value).unwrap_or_default();
        let hash = hex_sha256(&body);
        let sent = read_summary_sent(&self.paths);
        if sent.sha256 == hash {
            return Ok(SummaryOutcome::Unchanged);
        }
        let posted = loop {
            match self
                .post_once("/v1/metrics", body.clone(), None, deadline)
                .await?
            {
                Attempt::Done(p) => break p,
                Attempt::Again => {}
            }
        };
        self.store_state();
        match posted {
            Posted::Ok(_) => {
                let now = jiff::Timestamp::now();
                write_summary_sent(&self.paths, &hash, now);
                self.state.summary_sent_at = Some(now);
                self.store_state();
                Ok(SummaryOutcome::Sent)
            }
            Posted::OutOfTime => Ok(SummaryOutcome::OutOfTime),
            Posted::Invalid {
                status,
                code,
                message,
            } => Err(DeliveryError::SummaryRejected {
                status,
                code,
                message,
            }),
        }
    }
}

/// Result of one attempt.
enum Attempt {
    Done(Posted),
    Again,
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_summary_sent(paths: &Paths) -> SummarySent {
    std::fs::read(&paths.summary_sent)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_summary_sent(paths: &Paths, hash: &str, at: jiff::Timestamp) {
    let rec = SummarySent {
        sha256: hash.to_owned(),
        at: Some(at),
    };
    let bytes = serde_json::to_vec(&rec).unwrap_or_default();
    if let Err(e) = agentos_recorder::durable::replace_file(&paths.summary_sent, &bytes) {
        tracing::warn!(path = %paths.summary_sent.display(), error = %e, "cannot record the sent summary; it may be sent again");
    }
}

/// Reads `metrics_summary.json`; `None` when there is none yet.
///
/// # Errors
/// Unreadable or unparsable file.
pub fn read_summary(paths: &Paths) -> Result<Option<Summary>, DeliveryError> {
    let bytes = match std::fs::read(&paths.summary) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DeliveryError::io("reading summary", &paths.summary, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| DeliveryError::BadSummary {
            path: paths.summary.clone(),
            message: format!("line {} column {}: {e}", e.line(), e.column()),
        })
}

/// Sends one summary without taking the uploader lock (e.g. from `agentos ccc session end` while
/// a background uploader runs elsewhere): `POST /v1/metrics` with `egress_summary(summary, tier)`,
/// retrying transient failures until `timeout`. Records the sent hash so a later sync does not
/// send the same body again. A `local` tier returns [`SummaryOutcome::Withheld`] without any
/// connection.
///
/// # Errors
/// [`DeliveryError::NoUrl`], [`DeliveryError::BadUrl`], [`DeliveryError::Refused`],
/// [`DeliveryError::SummaryRejected`].
pub async fn upload_summary(
    settings: &Settings,
    summary: &Summary,
    timeout: Duration,
) -> Result<SummaryOutcome, DeliveryError> {
    let Some(value) = egress_summary(summary, settings.tier) else {
        return Ok(SummaryOutcome::Withheld);
    };
    let paths = Paths::new(&settings.data_dir);
    let body = serde_json::to_vec(&value).unwrap_or_default();
    let hash = hex_sha256(&body);
    if read_summary_sent(&paths).sha256 == hash {
        return Ok(SummaryOutcome::Unchanged);
    }
    let transport = Transport::new(settings)?;
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    loop {
        match transport.post("/v1/metrics", body.clone(), None).await {
            Ok(_) => {
                if paths.dir.is_dir() || std::fs::create_dir_all(&paths.dir).is_ok() {
                    write_summary_sent(&paths, &hash, jiff::Timestamp::now());
                }
                return Ok(SummaryOutcome::Sent);
            }
            Err(SendError::Transient { retry_after, .. }) => {
                let delay = retry_after.unwrap_or_else(|| backoff.next_delay());
                if Instant::now() + delay >= deadline {
                    return Ok(SummaryOutcome::OutOfTime);
                }
                tokio::time::sleep(delay).await;
            }
            Err(SendError::Invalid {
                status,
                code,
                message,
            }) => {
                return Err(DeliveryError::SummaryRejected {
                    status,
                    code,
                    message,
                });
            }
            Err(SendError::Refused {
                status,
                code,
                message,
            }) => {
                return Err(DeliveryError::Refused {
                    path: "/v1/metrics",
                    status,
                    code,
                    message,
                });
            }
        }
    }
}

/// Blocking form of [`upload_summary`] for synchronous callers (builds a small runtime).
///
/// # Errors
/// As [`upload_summary`]; also a runtime that cannot be built.
///
/// # Panics
/// When called from inside a tokio runtime (use [`upload_summary`] there).
pub fn upload_summary_blocking(
    settings: &Settings,
    summary: &Summary,
    timeout: Duration,
) -> Result<SummaryOutcome, DeliveryError> {
    if !settings.tier.allows(Egress::Metrics) {
        return Ok(SummaryOutcome::Withheld);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DeliveryError::io("starting runtime for", &settings.data_dir, e))?;
    rt.block_on(upload_summary(settings, summary, timeout))
}

/// Opens delivery for `settings.data_dir`, drains the log once and sends the summary, giving up
/// on transient failures after `timeout` (the `agentos ccc sync` path, for library callers).
///
/// # Errors
/// As [`Delivery::open`] and [`Delivery::sync`].
pub async fn sync_once(
    settings: Settings,
    timeout: Duration,
) -> Result<DrainReport, DeliveryError> {
    let mut d = Delivery::open(settings)?;
    d.sync(Some(Instant::now() + timeout)).await
}
