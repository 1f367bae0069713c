//! The delivery engine: read the log from the cursor, classify every line under the cap in force
//! (send, hold, forget, withhold; see the `batch` module), send batches, retry, and advance the cursor only
//! after the server acknowledged.
//!
//! One [`Delivery`] per data dir at a time (it holds `delivery/uploader.lock`). The CLI drives it
//! with [`Delivery::sync`]; the background [`crate::Uploader`] owns one in its worker task;
//! [`plan`] runs the same classification without sending, for `agentos ccc preview`.
//!
//! Crash safety in one sentence: the cursor is the only thing that says "done", it is written
//! atomically after the acknowledgement (and after the ledger recorded whatever it held back),
//! and everything before it is idempotent on the server (dedup by `event_id`), so dying anywhere
//! means at worst resending one batch.
//!
//! Layout: `batch` builds batches, `post` is the one retry/classification routine for every
//! request, [`summary`] uploads `metrics_summary.json`, [`plan`] is the dry run; this module is
//! the drain loop and its bookkeeping.

pub(crate) mod ack;
pub(crate) mod batch;
pub mod plan;
pub(crate) mod post;
pub mod summary;

use std::sync::Arc;
use std::time::Duration;

use agentos_config::FileLock;
use agentos_core::rollup::Summary;
use agentos_core::seq_ranges::SeqRanges;
use agentos_core::tier::{Egress, Tier};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::DeliveryError;
use crate::outbox::Paths;
use crate::outbox::cursor::{Cursor, CursorLoad};
use crate::outbox::ledger::{ForgetDecision, LedgerBody, LedgerLoad, load_decisions};
use crate::outbox::log::LogReader;
use crate::outbox::state::{DeliveryState, RejectedRecord, append_rejected};
use crate::settings::{Settings, TierHandle};
use crate::wire::EventsResponse;
use batch::{Batch, Builder, Rules};
use post::{Attempt, Posted, Sender};
pub use summary::{SummaryOutcome, read_summary, upload_summary, upload_summary_blocking};

/// Most ranges of each kind (`held`, `forgotten`) one request carries; the rest go with the
/// next request.
pub(crate) const MAX_BODY_RANGES: usize = 1000;

/// What one [`Delivery::sync`] / [`Delivery::drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// The cap this run delivered under (see [`Settings::cap`]).
    pub cap: Tier,
    /// Whether every complete line of the log is now delivered, held, forgotten, withheld or
    /// rejected, and no held event is left that the cap allows.
    pub caught_up: bool,
    /// Acknowledged `/v1/events` requests.
    pub batches: u64,
    /// Events in acknowledged requests.
    pub sent: u64,
    /// Of those, held back by an earlier run and sent now.
    pub replayed: u64,
    /// Of those, stored for the first time.
    pub accepted: u64,
    /// Of those, already on the server.
    pub duplicates: u64,
    /// Events moved to `rejected.jsonl`.
    pub rejected: u64,
    /// Events whose recorded tier never lets them leave as events (`local`, `minimized`).
    pub withheld: u64,
    /// Events this run held back because the cap is below their recorded tier.
    pub held: u64,
    /// Events held back after this run (by this run or earlier ones); they leave on a run whose
    /// cap allows them, unless forgotten.
    pub held_pending: u64,
    /// Events this run found forgotten on purpose (`agentos ccc outbox forget`).
    pub forgotten: u64,
    /// Retries made.
    pub retries: u64,
    /// Why the log was rescanned from offset 0, if it was.
    pub rescan: Option<String>,
    /// What happened to the summary (only for [`Delivery::sync`]).
    pub summary: Option<SummaryOutcome>,
}

/// Whether a step finished or ran out of time.
enum Step {
    Done,
    OutOfTime,
    /// A replay stopped because the cap was lowered meanwhile.
    Stopped,
}

/// Where a batch came from, which decides what its acknowledgement moves.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// Read at the cursor: the cursor moves past it.
    Cursor,
    /// Replayed from the held run that now starts at this seq: the run shrinks.
    Held { run_from: u64 },
}

/// The delivery engine of one data dir.
#[derive(Debug)]
pub struct Delivery {
    settings: Settings,
    paths: Paths,
    sender: Sender,
    cap: TierHandle,
    cursor: Cursor,
    ledger: LedgerBody,
    decisions: Arc<Vec<ForgetDecision>>,
    policy: Arc<agentos_core::privacy::RedactionPolicy>,
    state: DeliveryState,
    progress: Option<watch::Sender<u64>>,
    rescan: Option<String>,
    _lock: FileLock,
}

/// Cursor, ledger and decisions as found on disk, and why a rescan is needed if it is.
pub(crate) struct Loaded {
    pub(crate) cursor: Cursor,
    pub(crate) ledger: LedgerBody,
    pub(crate) decisions: Vec<ForgetDecision>,
    pub(crate) rescan: Option<String>,
}

/// Reads the cursor, the ledger and the forget decisions. A corrupt cursor or ledger, or a
/// cursor that does not fit the log, means "rescan from offset 0": the held runs are then
/// rediscovered by the rescan (their offsets may describe another log), the decisions kept.
pub(crate) fn load(paths: &Paths) -> Result<Loaded, DeliveryError> {
    let loaded = Cursor::load(&paths.cursor)
        .map_err(|e| DeliveryError::io("reading cursor", &paths.cursor, e))?;
    let (mut cursor, mut rescan) = match loaded {
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
    let mut ledger = match LedgerBody::load(&paths.held)
        .map_err(|e| DeliveryError::io("reading held-back ledger", &paths.held, e))?
    {
        // A data dir delivered by a version without the ledger: what it recorded is unknown
        // here, so the summary is not bounded by it (the summary's shareable aggregates already
        // leave out turns recorded as `local`).
        LedgerLoad::Fresh if cursor.offset > 0 => LedgerBody {
            max_recorded: Tier::Full,
            ..LedgerBody::default()
        },
        LedgerLoad::Fresh => LedgerBody::default(),
        LedgerLoad::Loaded(l) => l,
        LedgerLoad::Corrupt(reason) => {
            cursor = Cursor::default();
            rescan.get_or_insert(format!(
                "held-back ledger {} is corrupt: {reason}",
                paths.held.display()
            ));
            LedgerBody::default()
        }
    };
    if rescan.is_some() || cursor.offset == 0 {
        ledger.held.clear();
    }
    let decisions = load_decisions(&paths.forget)
        .map_err(|e| DeliveryError::io("reading forget decisions", &paths.forget, e))?;
    Ok(Loaded {
        cursor,
        ledger,
        decisions,
        rescan,
    })
}

impl Delivery {
    /// Opens delivery for `settings.data_dir`: takes the uploader lock and loads the cursor and
    /// the held-back ledger (a corrupt one, or a cursor that does not fit the log, starts a
    /// rescan from offset 0).
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
        let loaded = load(&paths)?;
        if let Some(r) = &loaded.rescan {
            tracing::warn!(reason = %r, "rescanning windows.jsonl from offset 0; the server dedupes replays by event_id");
            state.note_rescan(r);
            let _ = state.store(&paths.state);
        }
        let cap = TierHandle::new(settings.cap());
        let policy = Arc::new(settings.policy.clone());
        Ok(Delivery {
            sender: Sender::new(&settings),
            settings,
            paths,
            cap,
            cursor: loaded.cursor,
            ledger: loaded.ledger,
            decisions: Arc::new(loaded.decisions),
            policy,
            state,
            progress: None,
            rescan: loaded.rescan,
            _lock: lock,
        })
    }

    /// The live cap handle (share it to lower or raise the cap while delivery runs; lowering it
    /// holds back what is pending above it, raising it lets held events leave).
    pub fn tier(&self) -> TierHandle {
        self.cap.clone()
    }

    /// Uses `tier` as the live cap handle.
    pub fn set_tier_handle(&mut self, tier: TierHandle) {
        self.cap = tier;
    }

    /// The cursor as of now.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The held-back ledger as of now.
    pub fn ledger(&self) -> &LedgerBody {
        &self.ledger
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
        self.sender.max_backoff()
    }

    fn rules(&self) -> Rules {
        Rules {
            cap: self.cap.get(),
            policy: Arc::clone(&self.policy),
            decisions: Arc::clone(&self.decisions),
        }
    }

    /// Forgets for good every pending event recorded under `below` or higher (held back, or not
    /// read yet) up to the current end of the log, and records the decision durably in
    /// `delivery/forget.jsonl`. Returns the decision (with how many events it forgot).
    ///
    /// # Errors
    /// I/O errors; [`DeliveryError::NothingToForgetBelow`] for `below = local`.
    pub fn forget(&mut self, below: Tier) -> Result<ForgetDecision, DeliveryError> {
        let decision = plan::forget_decision(
            &self.paths,
            &self.cursor,
            &self.ledger,
            &self.decisions,
            below,
        )?;
        crate::outbox::ledger::append_decision(&self.paths.forget, &decision).map_err(|e| {
            DeliveryError::io("recording forget decision in", &self.paths.forget, e)
        })?;
        self.ledger.forget_held();
        self.store_ledger()?;
        let mut all = (*self.decisions).clone();
        all.push(decision.clone());
        self.decisions = Arc::new(all);
        Ok(decision)
    }

    /// Drains the log, then sends the current `metrics_summary.json` when the cap allows and it
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

    /// Delivers held events the cap now allows, then complete log lines from the cursor on,
    /// until none is left or `deadline` passes.
    ///
    /// # Errors
    /// As [`Delivery::sync`].
    pub async fn drain(&mut self, deadline: Option<Instant>) -> Result<DrainReport, DeliveryError> {
        let mut report = DrainReport {
            rescan: self.rescan.take(),
            cap: self.cap.get(),
            ..DrainReport::default()
        };
        let retries_before = self.state.retries_total;
        let result = match self.replay_held(deadline, &mut report).await {
            Ok(Step::Done) => self.drain_cursor(deadline, &mut report).await,
            Ok(Step::OutOfTime | Step::Stopped) => Ok(()),
            Err(e) => Err(e),
        };
        report.retries = self.state.retries_total - retries_before;
        report.held_pending = self.ledger.held_count();
        if report.caught_up && self.cap.get().allows(Egress::Events) && report.held_pending > 0 {
            report.caught_up = false;
        }
        self.store_state();
        result.map(|()| report)
    }

    /// Sends the held runs the cap now allows, oldest first.
    async fn replay_held(
        &mut self,
        deadline: Option<Instant>,
        report: &mut DrainReport,
    ) -> Result<Step, DeliveryError> {
        while let Some(run) = self.ledger.held.first().copied() {
            if !self.cap.get().allows(Egress::Events) {
                return Ok(Step::Done);
            }
            let reader = LogReader::open(&self.paths.log, run.start)
                .map_err(|e| DeliveryError::io("reading log", &self.paths.log, e))?;
            let mut builder = Builder::new(
                reader,
                self.paths.log.clone(),
                Some(run.end),
                self.settings.batch_max_events,
                self.settings.batch_max_bytes,
            );
            let mut run_from = run.from;
            loop {
                let rules = self.rules();
                let mut batch = builder.next(&rules)?;
                if batch.lines == 0 {
                    // The run is done (or the log no longer has it): nothing of it is held now.
                    self.ledger.held.retain(|r| r.from != run_from);
                    self.store_ledger()?;
                    break;
                }
                if !batch.held.is_empty() {
                    // The cap was lowered while replaying: what is left of the run stays held.
                    let first_held = batch.held[0];
                    batch.envs.clear();
                    if first_held.from > run_from {
                        self.ledger
                            .release_front(run_from, first_held.from - 1, first_held.start);
                        self.store_ledger()?;
                    }
                    return Ok(Step::Stopped);
                }
                let origin = Origin::Held { run_from };
                let next_from = batch.last_seq + 1;
                let step = if batch.envs.is_empty() {
                    report.forgotten += batch.forgotten.count();
                    report.withheld += batch.withheld;
                    self.commit_local(&batch, origin, report)?;
                    Step::Done
                } else {
                    report.replayed += batch.envs.len() as u64;
                    self.deliver(batch, origin, deadline, &builder.last_offsets, report)
                        .await?
                };
                match step {
                    Step::Done => run_from = next_from,
                    other => return Ok(other),
                }
            }
        }
        Ok(Step::Done)
    }

    /// Delivers the log from the cursor on.
    async fn drain_cursor(
        &mut self,
        deadline: Option<Instant>,
        report: &mut DrainReport,
    ) -> Result<(), DeliveryError> {
        let reader = LogReader::open(&self.paths.log, self.cursor.offset)
            .map_err(|e| DeliveryError::io("reading log", &self.paths.log, e))?;
        let mut builder = Some(Builder::new(
            reader,
            self.paths.log.clone(),
            None,
            self.settings.batch_max_events,
            self.settings.batch_max_bytes,
        ));
        // The batch after the current one, being built on a blocking thread while the current
        // one is in flight (read-ahead only: nothing is committed before its turn, and the cap
        // is checked again when it is sent).
        type Ahead = tokio::task::JoinHandle<(Builder, Result<Batch, DeliveryError>)>;
        let mut ahead: Option<Ahead> = None;
        loop {
            let (b, built) = match ahead.take() {
                Some(h) => h.await.map_err(|e| {
                    DeliveryError::io(
                        "building a batch from",
                        &self.paths.log,
                        std::io::Error::other(e.to_string()),
                    )
                })?,
                None => match builder.take() {
                    Some(mut b) => {
                        let r = b.next(&self.rules());
                        (b, r)
                    }
                    None => return Ok(()),
                },
            };
            let mut batch = built?;
            if batch.lines == 0 {
                if b.tail_bytes() > 0 {
                    tracing::debug!(
                        bytes = b.tail_bytes(),
                        "windows.jsonl ends in an unterminated line; it is not sent until it is complete"
                    );
                }
                report.caught_up = true;
                return Ok(());
            }
            let offsets = b.last_offsets.clone();
            let mut b = b;
            let rules_ahead = self.rules();
            ahead = Some(tokio::task::spawn_blocking(move || {
                let r = b.next(&rules_ahead);
                (b, r)
            }));
            let rules = self.rules();
            if rules.cap < batch.cap {
                batch.lower_cap(&rules, &offsets);
            }
            report.withheld += batch.withheld;
            report.forgotten += batch.forgotten.count();
            report.held += batch.held_count();
            if batch.envs.is_empty() {
                self.commit_local(&batch, Origin::Cursor, report)?;
                continue;
            }
            match self
                .deliver(batch, Origin::Cursor, deadline, &offsets, report)
                .await?
            {
                Step::Done => {}
                Step::OutOfTime | Step::Stopped => return Ok(()),
            }
        }
    }

    fn covers_from(&self, first_seq: u64) -> u64 {
        (self.cursor.reported_seq + 1).min(first_seq)
    }

    /// The forgotten seqs a request carries: those not reported yet plus the batch's own.
    fn forgotten_for(&self, batch: &Batch) -> SeqRanges {
        let mut f = self.ledger.forgotten_unreported.clone();
        f.add_all(&batch.forgotten);
        f
    }

    /// A request body. Its `covers` reaches at least past every held and forgotten seq it lists:
    /// a held run replayed ahead of later seqs must not leave the withheld seqs between them
    /// looking like gaps. Every seq up to there is settled locally (all of it is behind the
    /// cursor, or in this batch), so the claim is true.
    fn body(
        &self,
        events_json: &[u8],
        batch_id: &str,
        from: u64,
        to: u64,
        held: &SeqRanges,
        forgotten: &SeqRanges,
    ) -> Vec<u8> {
        body(
            &self.settings.device_id,
            events_json,
            batch_id,
            (from, to.max(extent(held, forgotten))),
            held,
            forgotten,
        )
    }

    async fn deliver(
        &mut self,
        mut batch: Batch,
        origin: Origin,
        deadline: Option<Instant>,
        offsets: &[(u64, u64)],
        report: &mut DrainReport,
    ) -> Result<Step, DeliveryError> {
        let from = self.covers_from(batch.first_seq.unwrap_or(batch.last_seq));
        let to = batch.last_seq;
        let mut held = self.ledger.held_seqs();
        for r in &batch.held {
            held.add(r.from, r.to);
        }
        // Bounded lists: what does not fit goes with a later request (the forgotten seqs stay
        // unreported until then, the held ones are listed again).
        let mut held = first_ranges(&held);
        let forgotten = first_ranges(&self.forgotten_for(&batch));
        let mut batch_id = uuid::Uuid::now_v7().to_string();
        let mut body = self.body(&batch.events_json, &batch_id, from, to, &held, &forgotten);
        loop {
            let rules = self.rules();
            if rules.cap < batch.cap {
                let held_before = batch.held_count();
                batch.lower_cap(&rules, offsets);
                report.held += batch.held_count() - held_before;
                if batch.envs.is_empty() {
                    if let Origin::Held { .. } = origin {
                        return Ok(Step::Stopped);
                    }
                    self.commit_local(&batch, origin, report)?;
                    return Ok(Step::Done);
                }
                for r in &batch.held {
                    held.add(r.from, r.to);
                }
                held = first_ranges(&held);
                // New content, new idempotency key.
                batch_id = uuid::Uuid::now_v7().to_string();
                body = self.body(&batch.events_json, &batch_id, from, to, &held, &forgotten);
            }
            let ids: Vec<(u64, &str)> = batch
                .spans
                .iter()
                .map(|s| (s.seq, s.event_id.as_str()))
                .collect();
            let want = ack::Expect {
                events: batch.spans.len() as u64,
                from,
                // What the body's `covers` claims (see `body`).
                to: to.max(extent(&held, &forgotten)),
                ids: &ids,
            };
            let attempt = self
                .sender
                .post_once(
                    &self.settings,
                    "/v1/events",
                    &body,
                    Some(&batch_id),
                    deadline,
                    Some(&mut self.state),
                    &|bytes: &[u8]| ack::events_ack(bytes, &want),
                )
                .await;
            drop(ids);
            self.store_state();
            match attempt? {
                Attempt::Done(Posted::Ok(resp)) => {
                    let reported = to.max(extent(&held, &forgotten));
                    self.on_ack(&batch, origin, &resp, to, reported, &forgotten, report)?;
                    return Ok(Step::Done);
                }
                Attempt::Done(Posted::OutOfTime) => return Ok(Step::OutOfTime),
                Attempt::Done(Posted::Invalid {
                    status,
                    code,
                    message,
                }) => {
                    tracing::warn!(status, %code, %message, events = batch.envs.len(), "batch refused as a whole; sending its events one by one to isolate the bad ones");
                    return self
                        .isolate(batch, origin, from, to, &held, &forgotten, deadline, report)
                        .await;
                }
                Attempt::Again => {}
            }
        }
    }

    /// Sends the events of a batch the server refused as a whole one at a time; those refused on
    /// their own go to `rejected.jsonl` with the server's reason.
    #[expect(
        clippy::too_many_arguments,
        reason = "the batch's whole wire context travels with it"
    )]
    async fn isolate(
        &mut self,
        batch: Batch,
        origin: Origin,
        from: u64,
        to: u64,
        held: &SeqRanges,
        forgotten: &SeqRanges,
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
                held,
                forgotten,
            );
            let ids = [(span.seq, span.event_id.as_str())];
            let want = ack::Expect {
                events: 1,
                from: pending_from,
                to: span.seq.max(extent(held, forgotten)),
                ids: &ids,
            };
            let posted = self
                .sender
                .post(
                    &self.settings,
                    "/v1/events",
                    &body,
                    Some(&id),
                    deadline,
                    Some(&mut self.state),
                    &|bytes: &[u8]| ack::events_ack(bytes, &want),
                )
                .await;
            self.store_state();
            match posted? {
                Posted::OutOfTime => return Ok(Step::OutOfTime),
                Posted::Ok(r) => {
                    merged.accepted += r.accepted;
                    merged.duplicates += r.duplicates;
                    merged.rejected.extend(r.rejected);
                    merged.watermark = r.watermark;
                    merged.gaps = r.gaps;
                    merged.held = r.held;
                    merged.forgotten = r.forgotten;
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
        let mut reported = pending_from.saturating_sub(1).max(self.cursor.reported_seq);
        if pending_from > from {
            reported = reported.max(extent(held, forgotten));
        }
        // Forgotten seqs went out only if some single was acknowledged.
        let told = if pending_from > from {
            forgotten.clone()
        } else {
            SeqRanges::new()
        };
        self.on_ack(&batch, origin, &merged, to, reported, &told, report)?;
        Ok(Step::Done)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "an acknowledgement settles the batch, the ledger and the cursor at once"
    )]
    fn on_ack(
        &mut self,
        batch: &Batch,
        origin: Origin,
        resp: &EventsResponse,
        to: u64,
        reported: u64,
        forgotten_told: &SeqRanges,
        report: &mut DrainReport,
    ) -> Result<(), DeliveryError> {
        self.record_local_rejects(batch, report)?;
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
        let mut ledger = self.ledger.clone();
        ledger.forgotten_unreported.remove_all(forgotten_told);
        // What this batch forgot but could not tell (an isolated batch nothing of which was
        // acknowledged) is told by a later request.
        let mut untold = batch.forgotten.clone();
        untold.remove_all(forgotten_told);
        ledger.forgotten_unreported.add_all(&untold);
        self.settle(&mut ledger, batch, origin);
        if ledger != self.ledger {
            ledger
                .store(&self.paths.held)
                .map_err(|e| DeliveryError::io("writing held-back ledger", &self.paths.held, e))?;
            self.ledger = ledger;
        }
        let next = match origin {
            Origin::Cursor => Cursor {
                offset: batch.end,
                acked_seq: self.cursor.acked_seq.max(to),
                reported_seq: reported,
            },
            Origin::Held { .. } => Cursor {
                reported_seq: self.cursor.reported_seq.max(reported),
                ..self.cursor
            },
        };
        if next != self.cursor {
            self.advance(next)?;
        }
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
        self.state.last_ack_seq = self.cursor.acked_seq;
        self.state.server_watermark = Some(resp.watermark);
        self.state.server_gaps = resp.gaps.clone();
        self.state.server_held = resp.held.clone();
        self.state.server_forgotten = resp.forgotten.clone();
        if !resp.gaps.is_empty() {
            tracing::warn!(gaps = ?resp.gaps, "the server reports seq gaps for this device");
        }
        self.store_state();
        Ok(())
    }

    /// The ledger changes a settled batch brings: its held runs are recorded, its forgotten
    /// events counted, and a replayed run shrinks by what left.
    fn settle(&self, ledger: &mut LedgerBody, batch: &Batch, origin: Origin) {
        for r in &batch.held {
            ledger.add_run(*r);
        }
        ledger.forgotten_total += batch.forgotten.count();
        ledger.max_recorded = ledger.max_recorded.max(batch.max_recorded);
        if let Origin::Held { run_from } = origin {
            ledger.release_front(run_from, batch.last_seq, batch.end);
        }
    }

    /// Accounts for a batch nothing of which leaves: no request; what it held back goes to the
    /// ledger, then the cursor moves on.
    fn commit_local(
        &mut self,
        batch: &Batch,
        origin: Origin,
        report: &mut DrainReport,
    ) -> Result<(), DeliveryError> {
        self.record_local_rejects(batch, report)?;
        let mut ledger = self.ledger.clone();
        ledger.forgotten_unreported.add_all(&batch.forgotten);
        self.settle(&mut ledger, batch, origin);
        if ledger != self.ledger {
            // Before the cursor: once the cursor is past a held event, the ledger is all that
            // remembers it.
            ledger
                .store(&self.paths.held)
                .map_err(|e| DeliveryError::io("writing held-back ledger", &self.paths.held, e))?;
            self.ledger = ledger;
        }
        self.state.withheld_total += batch.withheld;
        if let Origin::Cursor = origin {
            let next = Cursor {
                offset: batch.end,
                acked_seq: self.cursor.acked_seq.max(batch.last_seq),
                reported_seq: self.cursor.reported_seq,
            };
            self.state.last_ack_seq = next.acked_seq;
            self.advance(next)?;
        }
        Ok(())
    }

    /// Lines of the local log that cannot be sent at all go to `rejected.jsonl` too, and count
    /// in the run's report like the server's rejections (the report must match the file).
    fn record_local_rejects(
        &mut self,
        batch: &Batch,
        report: &mut DrainReport,
    ) -> Result<(), DeliveryError> {
        if batch.local_rejects.is_empty() {
            return Ok(());
        }
        self.state.rejected_total += batch.local_rejects.len() as u64;
        report.rejected += batch.local_rejects.len() as u64;
        append_rejected(&self.paths.rejected, &batch.local_rejects)
            .map_err(|e| DeliveryError::io("appending to", &self.paths.rejected, e))
    }

    fn store_ledger(&self) -> Result<(), DeliveryError> {
        self.ledger
            .store(&self.paths.held)
            .map_err(|e| DeliveryError::io("writing held-back ledger", &self.paths.held, e))
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

    /// The tier the summary may leave under: the cap, bounded by the highest tier anything was
    /// recorded under (a data dir that only ever recorded `local` sends no summary at all).
    fn summary_tier(&self) -> Tier {
        self.cap.get().min(self.ledger.max_recorded)
    }

    /// Sends `metrics_summary.json` if the cap allows and it changed since the last
    /// acknowledged upload.
    ///
    /// # Errors
    /// As [`Delivery::upload_summary`]; also a summary file that does not parse.
    pub async fn send_summary_file(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<SummaryOutcome, DeliveryError> {
        if !self.summary_tier().allows(Egress::Metrics) {
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
        let Some(body) = summary::summary_body(summary, self.cap.get()) else {
            return Ok(SummaryOutcome::Withheld);
        };
        let out = summary::send_body(
            &mut self.sender,
            &self.settings,
            &self.paths,
            &body,
            deadline,
            Some(&mut self.state),
        )
        .await;
        if let Ok(SummaryOutcome::Sent) = out {
            self.state.summary_sent_at = Some(jiff::Timestamp::now());
        }
        self.store_state();
        out
    }
}

/// The first [`MAX_BODY_RANGES`] ranges of `s`.
fn first_ranges(s: &SeqRanges) -> SeqRanges {
    SeqRanges::from_ranges(s.ranges().iter().copied().take(MAX_BODY_RANGES))
}

/// The highest seq a request's `held` and `forgotten` lists name (0 when both are empty).
fn extent(held: &SeqRanges, forgotten: &SeqRanges) -> u64 {
    let last = |s: &SeqRanges| s.ranges().last().map_or(0, |r| r.1);
    last(held).max(last(forgotten))
}

/// A `/v1/events` request body. `held` and `forgotten` are omitted when empty, so a client that
/// holds nothing back sends exactly the round-one body.
pub(crate) fn body(
    device_id: &str,
    events_json: &[u8],
    batch_id: &str,
    (from, to): (u64, u64),
    held: &SeqRanges,
    forgotten: &SeqRanges,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(events_json.len() + 256);
    body.extend_from_slice(b"{\"events\":[");
    body.extend_from_slice(events_json);
    body.extend_from_slice(b"],\"device_id\":");
    body.extend_from_slice(Value::String(device_id.to_owned()).to_string().as_bytes());
    body.extend_from_slice(
        format!(",\"batch_id\":\"{batch_id}\",\"covers\":{{\"from\":{from},\"to\":{to}}}")
            .as_bytes(),
    );
    for (key, set) in [("held", held), ("forgotten", forgotten)] {
        if set.is_empty() {
            continue;
        }
        body.extend_from_slice(format!(",\"{key}\":").as_bytes());
        body.extend_from_slice(serde_json::to_string(set).unwrap_or_default().as_bytes());
    }
    body.push(b'}');
    body
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
