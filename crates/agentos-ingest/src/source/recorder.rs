//! The recorder's own log (`windows.jsonl`) as usage records, for `--source recorder`: the
//! turns recorded without a source of their own (CLI `ccc turn`, the library, Python).
//!
//! Turns that name a source (`"source": "claude_code"`, written by the Claude Code hooks) are
//! left out: the transcripts hold the same requests and `--source claude` reports them, so
//! each request is counted under one source. The log is small (one line per recorded event)
//! and read whole on every report; torn lines are reported and skipped like any source's.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;

use agentos_core::event::{Envelope, EventBody};
use agentos_core::source::Source;
use rustc_hash::FxHashMap;

use crate::account::{Account, SkipReason, SkippedLine};
use crate::dedup::DedupKey;
use crate::error::IngestError;
use crate::ingest::IngestRun;
use crate::pricing::Tokens;
use crate::record::{SOURCE_SHIFT, UsageRecord};

/// Reads `log` (a missing file is an empty log). Records carry the `recorder` source tag and
/// each session's repository as their project.
///
/// # Errors
/// The file exists but cannot be read.
pub fn load(log: &Path) -> Result<IngestRun, IngestError> {
    let mut run = IngestRun::default();
    let file = match std::fs::File::open(log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(run),
        Err(e) => return Err(IngestError::io(log, e)),
    };
    let path: Arc<Path> = Arc::from(log);
    let name = log
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let flags = Source::Recorder.code() << SOURCE_SHIFT;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let (mut offset, mut number) = (0u64, 0u64);
    let mut repos: FxHashMap<String, String> = FxHashMap::default();
    let mut turns = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| IngestError::io(log, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let at = offset;
        offset += n as u64;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        run.account.lines += 1;
        let env: Envelope = match serde_json::from_slice(text) {
            Ok(e) => e,
            Err(e) => {
                let reason = if e.is_data() {
                    SkipReason::BadField(e.to_string())
                } else {
                    SkipReason::InvalidJson(e.to_string())
                };
                run.skipped.push(SkippedLine {
                    path: path.clone(),
                    line: number,
                    offset: at,
                    reason,
                });
                continue;
            }
        };
        match env.body {
            EventBody::Session(s) => {
                repos.insert(s.session.session_id.0, s.session.repo_id);
            }
            EventBody::Turn(t) if t.turn.source.is_none() => {
                turns.push((at, env.recorded_at.as_millisecond(), t.turn));
            }
            _ => {}
        }
    }
    let set = &mut run.set;
    for (at, ts_ms, t) in turns {
        let project = repos.get(&t.session_id.0).map_or("", String::as_str);
        let r = UsageRecord {
            // The turn id is unique per recorded turn; the position keeps two copies of one
            // line (a log restored from a backup) from counting twice all the same.
            key: DedupKey::positional(&name, at),
            ts_ms,
            model: set.strings.intern(&t.model),
            session: set.strings.intern(&t.session_id.0),
            project: set.strings.intern(project),
            flags,
            tokens: Tokens {
                input: t.tokens_in,
                output: t.tokens_out,
                cache_creation: t.cache_creation_tokens.unwrap_or(0),
                cache_read: t.cache_read_tokens.unwrap_or(0),
            },
        };
        set.push(r);
    }
    run.account = Account {
        files: 1,
        bytes: offset,
        lines_skipped: run.skipped.len() as u64,
        ..std::mem::take(&mut run.account)
    };
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsourced_turns_become_records_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("windows.jsonl");
        let session = r#"{"event_id":"01890000-0000-7000-8000-000000000001","seq":1,"recorded_at":"2026-11-30T10:00:00Z","tier":"local","type":"session","session":{"session_id":"s1","repo_id":"repo-a","branch":"main","commit":"abc","license_id":"","privacy_tier":"local","created_at":"2026-11-30T10:00:00Z"}}"#;
        let turn = |seq: u32, source: &str| {
            format!(
                r#"{{"event_id":"01890000-0000-7000-8000-00000000000{seq}","seq":{seq},"recorded_at":"2026-11-30T10:0{seq}:00Z","tier":"local","type":"turn","turn":{{"turn_id":"t{seq}","session_id":"s1","model":"GLM-4.6","subagent":"","tokens_in":100,"tokens_out":7,"input_kind":"text","latency_ms":1{source}}}}}"#
            )
        };
        let text = format!(
            "{session}\n{}\n{{\"type\":\"tu\n{}\n{}\n",
            turn(2, ""),
            turn(3, r#","source":"claude_code""#),
            turn(4, r#","cache_read_tokens":5"#),
        );
        std::fs::write(&log, text).expect("write");
        let run = load(&log).expect("load");
        let recs = &run.set.records;
        assert_eq!(
            recs.len(),
            2,
            "the claude_code turn is left to --source claude"
        );
        assert_eq!(run.skipped.len(), 1);
        assert_eq!(run.skipped[0].line, 3);
        let total: u64 = recs
            .iter()
            .map(|r| r.tokens.input + r.tokens.cache_read)
            .sum();
        assert_eq!(total, 205);
        for r in recs {
            assert_eq!(run.set.strings.get(r.project), "repo-a");
            assert_eq!(run.set.strings.get(r.model), "GLM-4.6");
            assert_eq!(r.flags >> SOURCE_SHIFT, Source::Recorder.code());
        }
        assert!(
            load(&dir.path().join("missing.jsonl"))
                .expect("a missing log is empty")
                .set
                .records
                .is_empty()
        );
    }
}
