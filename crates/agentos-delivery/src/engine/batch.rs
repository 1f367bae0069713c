//! Turning log lines into batches: every complete line is classified once, by the same rules for
//! `agentos ccc sync`, the background uploader and `agentos ccc preview`.
//!
//! | class | when | what happens |
//! |---|---|---|
//! | send | recorded `full`, not forgotten, the cap in force allows events | redacted and sent |
//! | held | recorded `full`, not forgotten, the cap is lower | its place goes to the ledger; a later run whose cap allows it sends it |
//! | forgotten | an `outbox forget` decision covers it | never sent; the server is told it was forgotten on purpose |
//! | withheld | recorded `local` or `minimized` | never leaves as an event (its tier allows at most aggregates) |
//! | rejected locally | the line does not parse | logged to `rejected.jsonl` |

use std::ops::Range;
use std::sync::Arc;

use agentos_core::event::Envelope;
use agentos_core::privacy::{RedactionPolicy, egress_event};
use agentos_core::seq_ranges::SeqRanges;
use agentos_core::tier::{Egress, Tier};

use crate::error::DeliveryError;
use crate::outbox::ledger::{ForgetDecision, HeldRun, forgotten_by};
use crate::outbox::log::LogReader;
use crate::outbox::state::RejectedRecord;

/// Lines scanned per batch, as a multiple of the batch size, so that a long stretch that sends
/// nothing still advances the cursor in bounded steps.
const SCAN_FACTOR: u64 = 10;

/// One event inside a batch body.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) seq: u64,
    pub(crate) event_id: String,
    pub(crate) range: Range<usize>,
}

/// A parsed log line waiting for a batch with room.
#[derive(Debug)]
struct Prepared {
    env: Envelope,
    start: u64,
    end: u64,
}

/// What may leave, as decided for one run of delivery.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// The highest tier anything may leave under in this run (explicit tier, license, DNT).
    pub(crate) cap: Tier,
    pub(crate) policy: Arc<RedactionPolicy>,
    pub(crate) decisions: Arc<Vec<ForgetDecision>>,
}

/// A batch: the lines it accounts for and the body that says so.
#[derive(Debug)]
pub(crate) struct Batch {
    /// First seq among its lines (the body's `covers.from` may start lower).
    pub(crate) first_seq: Option<u64>,
    /// Highest seq among its lines (0 when none has one).
    pub(crate) last_seq: u64,
    /// Offset just past its last line.
    pub(crate) end: u64,
    /// Lines it accounts for (events, held, forgotten, withheld, unparsable).
    pub(crate) lines: u64,
    /// Events whose tier never lets them leave as events.
    pub(crate) withheld: u64,
    /// Runs of held events among its lines.
    pub(crate) held: Vec<HeldRun>,
    /// Seqs forgotten on purpose among its lines.
    pub(crate) forgotten: SeqRanges,
    /// The highest tier among its events.
    pub(crate) max_recorded: Tier,
    /// The events that may leave, in log order.
    pub(crate) envs: Vec<Envelope>,
    /// `e1,e2,…` bytes of the serialized events (the `events` array without brackets).
    pub(crate) events_json: Vec<u8>,
    pub(crate) spans: Vec<Span>,
    /// The cap the events were redacted under.
    pub(crate) cap: Tier,
    /// Unparsable lines among its lines; logged to `rejected.jsonl` when the batch commits.
    pub(crate) local_rejects: Vec<RejectedRecord>,
}

impl Batch {
    fn new(cap: Tier) -> Batch {
        Batch {
            first_seq: None,
            last_seq: 0,
            end: 0,
            lines: 0,
            withheld: 0,
            held: Vec::new(),
            forgotten: SeqRanges::new(),
            max_recorded: Tier::Local,
            envs: Vec::new(),
            events_json: Vec::new(),
            spans: Vec::new(),
            cap,
            local_rejects: Vec::new(),
        }
    }

    /// Events held back in this batch.
    pub(crate) fn held_count(&self) -> u64 {
        self.held.iter().map(HeldRun::count).sum()
    }

    fn hold(&mut self, seq: u64, start: u64, end: u64) {
        match self.held.last_mut() {
            Some(r) if r.to + 1 == seq && r.end == start => {
                r.to = seq;
                r.end = end;
            }
            _ => self.held.push(HeldRun {
                from: seq,
                to: seq,
                start,
                end,
            }),
        }
    }

    fn push_event(&mut self, env: Envelope, json: &[u8]) {
        let seq = env.seq;
        if !self.spans.is_empty() {
            self.events_json.push(b',');
        }
        let start = self.events_json.len();
        self.events_json.extend_from_slice(json);
        self.spans.push(Span {
            seq,
            event_id: env.event_id.to_string(),
            range: start..self.events_json.len(),
        });
        self.envs.push(env);
    }

    /// Re-applies a lower cap to a batch built under a higher one (the cap was lowered while the
    /// batch was being retried): what may no longer leave is held, as if it had been read now.
    pub(crate) fn lower_cap(&mut self, rules: &Rules, ends: &[(u64, u64)]) {
        let envs = std::mem::take(&mut self.envs);
        self.events_json.clear();
        self.spans.clear();
        for (env, &(start, end)) in envs.into_iter().zip(ends) {
            match egress_event(&env, rules.cap, &rules.policy) {
                None => self.hold(env.seq, start, end),
                Some(v) => {
                    let mut bytes = Vec::with_capacity(512);
                    if serde_json::to_writer(&mut bytes, &v).is_ok() {
                        self.push_event(env, &bytes);
                    }
                }
            }
        }
        self.cap = rules.cap;
    }
}

/// Reads the log ahead of the sender and turns lines into batches. It owns everything it needs,
/// so the next batch can be built on a blocking thread while the current one is in flight.
#[derive(Debug)]
pub(crate) struct Builder {
    reader: LogReader,
    carry: Option<Prepared>,
    log: std::path::PathBuf,
    /// Stop before this offset (a held run being replayed); `None` reads to the end.
    stop: Option<u64>,
    max_events: usize,
    max_bytes: usize,
    /// `(start, end)` offsets of the events of the last batch, for [`Batch::lower_cap`].
    pub(crate) last_offsets: Vec<(u64, u64)>,
}

impl Builder {
    pub(crate) fn new(
        reader: LogReader,
        log: std::path::PathBuf,
        stop: Option<u64>,
        max_events: usize,
        max_bytes: usize,
    ) -> Builder {
        Builder {
            reader,
            carry: None,
            log,
            stop,
            max_events: max_events.max(1),
            max_bytes,
            last_offsets: Vec::new(),
        }
    }

    /// Bytes after the last complete line.
    pub(crate) fn tail_bytes(&self) -> usize {
        self.reader.tail_bytes()
    }

    fn read(&mut self, b: &mut Batch) -> Result<Option<Prepared>, DeliveryError> {
        loop {
            if let Some(stop) = self.stop
                && self.reader.position() >= stop
            {
                return Ok(None);
            }
            let line = self
                .reader
                .next_line()
                .map_err(|e| DeliveryError::io("reading log", &self.log, e))?;
            let Some(line) = line else { return Ok(None) };
            let trimmed = line.bytes.trim_ascii();
            if trimmed.is_empty() {
                b.end = line.end;
                b.lines += 1;
                continue;
            }
            match serde_json::from_slice::<Envelope>(trimmed) {
                Ok(env) => {
                    return Ok(Some(Prepared {
                        env,
                        start: line.start,
                        end: line.end,
                    }));
                }
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
                }
            }
        }
    }

    /// The next batch under `rules` (empty, `lines == 0`, when nothing complete is left).
    pub(crate) fn next(&mut self, rules: &Rules) -> Result<Batch, DeliveryError> {
        let max_lines = self.max_events as u64 * SCAN_FACTOR;
        let mut b = Batch::new(rules.cap);
        self.last_offsets.clear();
        loop {
            let p = match self.carry.take() {
                Some(p) => p,
                None => match self.read(&mut b)? {
                    Some(p) => p,
                    None => break,
                },
            };
            let seq = p.env.seq;
            let recorded = p.env.tier;
            if !recorded.allows(Egress::Events) {
                b.withheld += 1;
            } else if forgotten_by(&rules.decisions, seq, recorded) {
                b.forgotten.add(seq, seq);
            } else {
                match egress_event(&p.env, rules.cap, &rules.policy) {
                    None => b.hold(seq, p.start, p.end),
                    Some(v) => {
                        let mut bytes = Vec::with_capacity(512);
                        if serde_json::to_writer(&mut bytes, &v).is_err() {
                            // Serializing a Value cannot fail; hold the event rather than lose it.
                            b.hold(seq, p.start, p.end);
                        } else {
                            // Room for the framing (`{"events":[`, covers, held…): ~256 bytes.
                            let projected = b.events_json.len() + bytes.len() + 256;
                            if !b.spans.is_empty() && projected > self.max_bytes {
                                self.carry = Some(p);
                                break;
                            }
                            self.last_offsets.push((p.start, p.end));
                            b.push_event(p.env, &bytes);
                        }
                    }
                }
            }
            b.max_recorded = b.max_recorded.max(recorded);
            b.first_seq.get_or_insert(seq);
            b.last_seq = b.last_seq.max(seq);
            b.end = p.end;
            b.lines += 1;
            if b.spans.len() >= self.max_events || b.lines >= max_lines {
                break;
            }
        }
        Ok(b)
    }
}
