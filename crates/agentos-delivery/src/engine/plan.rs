//! The dry run: what the next `agentos ccc sync` would send, computed by the same loading and
//! classification code the engine runs (`engine::load`, the batch `Builder`), without the uploader lock
//! and without any connection. `agentos ccc preview` prints it.

use std::sync::Arc;

use agentos_core::seq_ranges::SeqRanges;
use agentos_core::tier::{Egress, Tier};
use serde::Serialize;

use super::batch::{Builder, Rules};
use super::summary::{already_sent, read_summary, summary_body};
use crate::error::DeliveryError;
use crate::outbox::Paths;
use crate::outbox::cursor::Cursor;
use crate::outbox::ledger::{ForgetDecision, LedgerBody, forgotten_by};
use crate::outbox::log::LogReader;
use crate::settings::Settings;

/// What the next sync would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The cap it would deliver under.
    pub cap: Tier,
    /// The redacted envelopes it would send to `/v1/events`, in order, each exactly as
    /// serialized into the request body.
    #[serde(skip)]
    pub events: Vec<Vec<u8>>,
    /// Of those, events held back by an earlier run.
    pub replayed: u64,
    /// Events that would stay (or become) held back: recorded under a tier above the cap.
    pub held: u64,
    /// Events forgotten on purpose that it would tell the server about.
    pub forgotten: u64,
    /// Events whose recorded tier never lets them leave as events.
    pub withheld: u64,
    /// The `/v1/metrics` body it would send, if any (`None` also when the server already has it).
    #[serde(skip)]
    pub metrics: Option<Vec<u8>>,
    /// The server already acknowledged exactly this summary, so it would not be sent again.
    pub metrics_unchanged: bool,
}

/// Computes what the next sync with `settings` would send.
///
/// # Errors
/// Unreadable log, cursor, ledger or summary.
pub fn plan(settings: &Settings) -> Result<Plan, DeliveryError> {
    let paths = Paths::new(&settings.data_dir);
    let loaded = super::load(&paths)?;
    let rules = Rules {
        cap: settings.cap(),
        policy: Arc::new(settings.policy.clone()),
        decisions: Arc::new(loaded.decisions),
    };
    let mut plan = Plan {
        cap: rules.cap,
        ..Plan::default()
    };
    let mut max_recorded = loaded.ledger.max_recorded;
    let mut take = |builder: &mut Builder, plan: &mut Plan, replay: bool| {
        loop {
            let b = builder.next(&rules)?;
            if b.lines == 0 {
                return Ok::<(), DeliveryError>(());
            }
            for s in &b.spans {
                plan.events.push(b.events_json[s.range.clone()].to_vec());
            }
            if replay {
                plan.replayed += b.spans.len() as u64;
            }
            plan.held += b.held_count();
            plan.forgotten += b.forgotten.count();
            plan.withheld += b.withheld;
            max_recorded = max_recorded.max(b.max_recorded);
        }
    };
    if rules.cap.allows(Egress::Events) {
        for run in &loaded.ledger.held {
            let reader = LogReader::open(&paths.log, run.start)
                .map_err(|e| DeliveryError::io("reading log", &paths.log, e))?;
            let mut b = Builder::new(
                reader,
                paths.log.clone(),
                Some(run.end),
                settings.batch_max_events,
                settings.batch_max_bytes,
            );
            take(&mut b, &mut plan, true)?;
        }
    } else {
        plan.held += loaded.ledger.held_count();
    }
    let reader = LogReader::open(&paths.log, loaded.cursor.offset)
        .map_err(|e| DeliveryError::io("reading log", &paths.log, e))?;
    let mut b = Builder::new(
        reader,
        paths.log.clone(),
        None,
        settings.batch_max_events,
        settings.batch_max_bytes,
    );
    take(&mut b, &mut plan, false)?;
    plan.forgotten += loaded.ledger.forgotten_unreported.count();
    if let Some(summary) = read_summary(&paths)?
        && let Some(body) = summary_body(&summary, rules.cap.min(max_recorded))
    {
        if already_sent(&paths, &body) {
            plan.metrics_unchanged = true;
        } else {
            plan.metrics = Some(body);
        }
    }
    Ok(plan)
}

/// The decision `agentos ccc outbox forget --below below` would record now: every pending event
/// recorded under `below` or higher, held back or not read yet, up to the end of the log.
///
/// # Errors
/// [`DeliveryError::NothingToForgetBelow`] for `below = local` (nothing is ever held for a
/// tier that low); I/O errors reading the log.
pub fn forget_decision(
    paths: &Paths,
    cursor: &Cursor,
    ledger: &LedgerBody,
    decisions: &[ForgetDecision],
    below: Tier,
) -> Result<ForgetDecision, DeliveryError> {
    if below == Tier::Local {
        return Err(DeliveryError::NothingToForgetBelow);
    }
    let mut reader = LogReader::open(&paths.log, cursor.offset)
        .map_err(|e| DeliveryError::io("reading log", &paths.log, e))?;
    let mut through_seq = cursor.acked_seq;
    let mut pending = 0u64;
    #[derive(serde::Deserialize)]
    struct Head {
        seq: u64,
        tier: Tier,
    }
    while let Some(line) = reader
        .next_line()
        .map_err(|e| DeliveryError::io("reading log", &paths.log, e))?
    {
        let Ok(h) = serde_json::from_slice::<Head>(line.bytes) else {
            continue;
        };
        through_seq = through_seq.max(h.seq);
        if h.tier >= below
            && h.tier.allows(Egress::Events)
            && !forgotten_by(decisions, h.seq, h.tier)
        {
            pending += 1;
        }
    }
    let held: SeqRanges = ledger.held_seqs();
    Ok(ForgetDecision {
        at: jiff::Timestamp::now(),
        below,
        events: held.count() + pending,
        held,
        after_seq: cursor.acked_seq,
        through_seq,
    })
}

/// What `agentos ccc outbox forget` would forget, without the uploader lock (for the
/// confirmation prompt and `--dry-run`).
///
/// # Errors
/// As [`forget_decision`], plus an unreadable cursor or ledger.
pub fn forget_preview(settings: &Settings, below: Tier) -> Result<ForgetDecision, DeliveryError> {
    let paths = Paths::new(&settings.data_dir);
    let loaded = super::load(&paths)?;
    forget_decision(
        &paths,
        &loaded.cursor,
        &loaded.ledger,
        &loaded.decisions,
        below,
    )
}
