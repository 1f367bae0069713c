//! Local mode (`agentos ui`): the dashboard for one person, over a private SQLite collector
//! database filled from the machine's own data, served on loopback without sign-in.
//!
//! What is imported, rebuilt from scratch at every start so the pages mirror the sources:
//! - the ingest store's usage records (Claude Code transcripts, CCC logs — what
//!   `agentos report` reads), as turns of device `local`, each session's project as its
//!   repository;
//! - the recorder log (`windows.jsonl`: recorded sessions and turns), as device `recorder`.
//!   Turns whose source is `claude_code` are skipped when the ingest store holds Claude Code
//!   records: they are the same requests (the hook records what the transcript has), and the
//!   two id schemes cannot be matched one to one.

use std::collections::BTreeMap;

use agentos_ingest::record::RecordSet;
use serde_json::Value;

use crate::store::{CoverageUpdate, NewEvent, Store, StoreError};

/// The tenant local mode stores under.
pub const LOCAL_TENANT: &str = "local";
/// Events per ingest transaction while importing.
const CHUNK: usize = 5000;

/// What an import stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Turns from the ingest store.
    pub records: u64,
    /// Events from the recorder log.
    pub log_events: u64,
    /// Recorder-log turns left out as Claude Code duplicates.
    pub skipped_claude_turns: u64,
}

async fn store_all(
    store: &Store,
    device: &str,
    events: &[NewEvent],
    now_us: i64,
) -> Result<(), StoreError> {
    let mut seq = 0u64;
    for chunk in events.chunks(CHUNK) {
        let from = seq + 1;
        seq += chunk.len() as u64;
        store
            .ingest_with(
                LOCAL_TENANT,
                device,
                chunk,
                &CoverageUpdate {
                    covered: vec![(from, seq)],
                    ..CoverageUpdate::default()
                },
                now_us,
            )
            .await?;
    }
    Ok(())
}

fn blank(kind: &'static str, seq: usize, at_us: i64) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        seq: i64::try_from(seq).unwrap_or(i64::MAX),
        kind,
        recorded_at_us: at_us,
        model: None,
        tokens_in: None,
        tokens_out: None,
        cache_creation_tokens: None,
        cache_read_tokens: None,
        latency_ms: None,
        body: "{}".into(),
        turn_key: None,
        session_id: None,
        source: None,
        cost_usd: None,
        repo_id: None,
        features: 0.0,
        capacity: 0.0,
    }
}

/// Imports `set` (the ingest store) and `log` (recorder-log lines) into `store`, which should be
/// empty. `has_claude_records` says whether `set` holds Claude Code records (see the module).
///
/// # Errors
/// Store errors.
pub async fn import(
    store: &Store,
    set: &RecordSet,
    has_claude_records: bool,
    log: &[String],
    now_us: i64,
) -> Result<Imported, StoreError> {
    let mut out = Imported::default();
    let mut events = Vec::with_capacity(set.records.len());
    let mut sessions: BTreeMap<u32, (u32, i64)> = BTreeMap::new();
    for r in &set.records {
        let mut e = blank("turn", events.len() + 1, r.ts_ms.saturating_mul(1000));
        e.model = Some(set.strings.get(r.model).to_string());
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        e.tokens_in = Some(n(r.tokens.input));
        e.tokens_out = Some(n(r.tokens.output));
        e.cache_creation_tokens = Some(n(r.tokens.cache_creation));
        e.cache_read_tokens = Some(n(r.tokens.cache_read));
        e.session_id = Some(set.strings.get(r.session).to_string());
        // The source tag `load_all` set, under the turn wire value the pages' `source` filter
        // maps its names onto (an untagged record would otherwise read as `recorder`).
        e.source = agentos_ingest::store::SourceKind::from_flags(r.flags)
            .map(|k| k.source().turn_wire().to_string());
        let s = sessions.entry(r.session).or_insert((r.project, r.ts_ms));
        s.1 = s.1.min(r.ts_ms);
        events.push(e);
    }
    for (session, (project, first_ms)) in sessions {
        let mut e = blank("session", events.len() + 1, first_ms.saturating_mul(1000));
        e.session_id = Some(set.strings.get(session).to_string());
        e.repo_id = Some(set.strings.get(project).to_string());
        events.push(e);
    }
    out.records = set.records.len() as u64;
    store_all(store, "local", &events, now_us).await?;
    let mut logged = Vec::new();
    for line in log {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let claude = value
            .pointer("/turn/source")
            .and_then(Value::as_str)
            .is_some_and(|s| s == "claude_code");
        if claude && has_claude_records {
            out.skipped_claude_turns += 1;
            continue;
        }
        if let Ok(mut e) = crate::ingest::event_fields(&value, line) {
            e.seq = i64::try_from(logged.len() + 1).unwrap_or(i64::MAX);
            // Free text stays out of the dashboard's database even locally: the pages never
            // read bodies.
            e.body = "{}".into();
            logged.push(e);
        }
    }
    out.log_events = logged.len() as u64;
    store_all(store, "recorder", &logged, now_us).await?;
    Ok(out)
}
