//! Forwarding ingested turns into the recorder log (`agentos ingest codex --record`), so an
//! agent without hooks (Codex CLI) reaches the collector through the same delivery, tiers and
//! licence checks as recorded turns.
//!
//! What was forwarded is kept per store in `forwarded.json`: how many of the store's records
//! (in `records.bin` order, which only grows) were handed to the recorder, the log's length at
//! that moment, and the sessions already opened (with their tier). A run that dies after writing
//! to the log and before saving that file is caught by [`pending`]: it reads the log from the
//! saved length and leaves out every turn and session it finds there, so nothing is recorded
//! twice. Turn ids are derived from the turn's identity ([`agentos_core::origin`]), so even a
//! lost `forwarded.json` makes the collector count each turn once.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use agentos_core::event::{EventBody, InputKind, SessionId, Turn, TurnEvent, TurnSource};
use agentos_core::origin::Origin;
use agentos_core::tier::Tier;
use serde::{Deserialize, Serialize};

use crate::error::IngestError;
use crate::pricing::{PriceTable, estimate_turn_cost};
use crate::store::Store;

/// The state file's name in the store directory.
pub const STATE_FILE: &str = "forwarded.json";

/// What a store has forwarded so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForwardState {
    /// Records of `records.bin` already forwarded (or deliberately skipped).
    pub records: u64,
    /// Length of the recorder log when this state was saved.
    pub log_len: u64,
    /// Sessions opened in the log, with the tier they record under.
    #[serde(default)]
    pub sessions: BTreeMap<String, Tier>,
}

impl ForwardState {
    /// The state of the store in `dir` (a new store has forwarded nothing).
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed.
    pub fn load(dir: &Path) -> Result<ForwardState, IngestError> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| IngestError::Store {
                path: path.clone(),
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ForwardState::default()),
            Err(e) => Err(IngestError::io(&path, e)),
        }
    }

    /// Saves the state in `dir` (temp file, fsync, rename).
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, dir: &Path) -> Result<(), IngestError> {
        let path = dir.join(STATE_FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| IngestError::Store {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        agentos_config::durable::replace_file(&path, &bytes).map_err(|e| IngestError::io(&path, e))
    }
}

/// The turns of one session still to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSession {
    /// The agent's session id.
    pub session_id: String,
    /// Its project (the working directory the agent ran in), as the session's repository.
    pub repo: String,
    /// The tier it was opened under, when it already was.
    pub tier: Option<Tier>,
    /// Its turns, each with the time the agent made the request.
    pub turns: Vec<(jiff::Timestamp, EventBody)>,
}

/// What [`pending`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    /// Sessions with turns to record, in the order their first turn appears in the store.
    pub sessions: Vec<PendingSession>,
    /// `records.bin`'s record count: the new [`ForwardState::records`] once they are recorded.
    pub records: u64,
    /// Turns left out because the log already holds them (a run that died before saving).
    pub already_in_log: u64,
}

/// What the log holds after `from`: turn ids of `source` and opened sessions with their tier.
fn log_tail(
    log: &Path,
    from: u64,
    source: TurnSource,
) -> Result<(HashSet<String>, BTreeMap<String, Tier>), IngestError> {
    let mut turns = HashSet::new();
    let mut sessions = BTreeMap::new();
    let mut file = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((turns, sessions)),
        Err(e) => return Err(IngestError::io(log, e)),
    };
    let len = file.metadata().map_err(|e| IngestError::io(log, e))?.len();
    // A log shorter than when the state was saved was replaced: look at all of it.
    let from = if from > len { 0 } else { from };
    file.seek(SeekFrom::Start(from))
        .map_err(|e| IngestError::io(log, e))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| IngestError::io(log, e))?
            == 0
        {
            break;
        }
        // Torn or foreign lines are the recorder's business; here they only mean "not ours".
        let Ok(env) = serde_json::from_slice::<agentos_core::event::Envelope>(line.trim_ascii())
        else {
            continue;
        };
        match env.body {
            EventBody::Turn(t) if t.turn.source == Some(source) => {
                turns.insert(t.turn.turn_id.0);
            }
            EventBody::Session(s) => {
                sessions.insert(s.session.session_id.0, env.tier);
            }
            _ => {}
        }
    }
    Ok((turns, sessions))
}

/// The Codex turns of `store` not yet forwarded, as turn events with derived ids, carried
/// token counts and a cost estimated from `prices` (marked as estimated; none for an unpriced
/// model). `state.sessions` is updated with sessions found opened in the log after
/// `state.log_len`.
///
/// # Errors
/// The store or the log cannot be read.
pub fn pending(
    store: &Store,
    state: &mut ForwardState,
    log: &Path,
    prices: &PriceTable,
) -> Result<Pending, IngestError> {
    let source = TurnSource::Codex;
    let (in_log, opened) = log_tail(log, state.log_len, source)?;
    state.sessions.extend(opened);
    let strings = store.strings()?;
    let mut out = Pending::default();
    let mut index: BTreeMap<u32, usize> = BTreeMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut i = 0u64;
    store.for_each_record(|r| {
        i += 1;
        if i <= state.records {
            return;
        }
        let session = strings.get(r.session);
        let key = format!("{:016x}{:016x}", r.key.a, r.key.b);
        let turn_id = Origin::CodexTurn {
            session_id: session,
            key: &key,
        }
        .turn_id();
        // `records.bin` may hold a later copy of a turn (a better reading of the same usage):
        // the first copy is the one recorded, the collector would refuse the second anyway.
        if in_log.contains(&turn_id.0) || !seen.insert(turn_id.0.clone()) {
            out.already_in_log += u64::from(in_log.contains(&turn_id.0));
            return;
        }
        let Ok(at) = jiff::Timestamp::from_millisecond(r.ts_ms) else {
            return;
        };
        let mut t = TurnEvent {
            turn: Turn {
                turn_id,
                session_id: SessionId(session.to_string()),
                model: strings.get(r.model).to_string(),
                subagent: String::new(),
                tokens_in: r.tokens.input,
                tokens_out: r.tokens.output,
                input_kind: InputKind::Text,
                latency_ms: 0.0,
                cache_creation_tokens: Some(r.tokens.cache_creation),
                cache_read_tokens: Some(r.tokens.cache_read),
                source: Some(source),
                ..Turn::default()
            },
            ..TurnEvent::default()
        };
        estimate_turn_cost(&mut t, prices);
        let slot = *index.entry(r.session).or_insert_with(|| {
            out.sessions.push(PendingSession {
                session_id: session.to_string(),
                repo: strings.get(r.project).to_string(),
                tier: state.sessions.get(session).copied(),
                turns: Vec::new(),
            });
            out.sessions.len() - 1
        });
        out.sessions[slot].turns.push((at, EventBody::Turn(t)));
    })?;
    out.records = i;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_state_is_empty_and_a_saved_one_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            ForwardState::load(dir.path()).expect("load"),
            ForwardState::default()
        );
        let s = ForwardState {
            records: 7,
            log_len: 1234,
            sessions: BTreeMap::from([("s1".to_string(), Tier::Full)]),
        };
        s.save(dir.path()).expect("save");
        assert_eq!(ForwardState::load(dir.path()).expect("load"), s);
        std::fs::write(dir.path().join(STATE_FILE), b"{torn").expect("write");
        let err = ForwardState::load(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains(STATE_FILE), "{err}");
    }
}
