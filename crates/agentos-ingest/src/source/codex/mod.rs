//! Codex CLI session rollouts (`${CODEX_HOME:-~/.codex}/sessions/**/rollout-*.jsonl`). See
//! `README.md` beside this file for the format and how its tokens map onto ours.

mod fast;
pub mod parser;
pub mod paths;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use parser::{CodexState, CodexUsage, Parsed, TurnUsage, UNKNOWN_MODEL};

use crate::account::{Account, Progress, SkippedLine, settle_scan};
use crate::agent::{AgentJob, AgentOutcome};
use crate::dedup::DedupKey;
use crate::error::IngestError;
use crate::record::{LocalBatch, UsageRecord};
use crate::scan::{ReadBuffer, Tail, fnv1a64, scan_file};
use crate::source::AgentSource;
use crate::store::SourceKind;
use crate::time::TimeRange;

/// The Codex CLI source.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codex;

impl AgentSource for Codex {
    const KIND: SourceKind = SourceKind::Codex;
    type State = CodexState;

    fn roots(path: Option<&Path>) -> Result<Vec<PathBuf>, IngestError> {
        paths::roots(path)
    }

    fn searched(path: Option<&Path>) -> Vec<PathBuf> {
        paths::searched(path)
    }

    fn files(root: &Path) -> Vec<PathBuf> {
        paths::rollout_files(root)
    }

    fn read(
        job: &AgentJob<CodexState>,
        range: &TimeRange,
        progress: Option<&Progress>,
    ) -> AgentOutcome<CodexState> {
        read_file(job, range, progress)
    }
}

/// The hash of the session id, remembered while the session stays the same (once per file,
/// usually, instead of once per turn).
#[derive(Default)]
struct SessionHash {
    session: String,
    hash: u64,
}

impl SessionHash {
    fn of(&mut self, session: &str) -> u64 {
        if self.session != session || self.hash == 0 {
            self.session.clear();
            self.session.push_str(session);
            self.hash = fnv1a64(session.as_bytes());
        }
        self.hash
    }
}

/// The dedup key of a turn: its session, time and the cumulative totals after it identify it
/// wherever it is read again; without totals, its file and offset do.
fn key(
    state: &CodexState,
    hs: &mut SessionHash,
    t: &TurnUsage,
    file: &str,
    offset: u64,
) -> DedupKey {
    match t.total {
        Some(total) => {
            // On the stack: this runs once per turn.
            let mut b = [0u8; 40];
            for (i, v) in [
                t.ts_ms as u64,
                total.input_tokens,
                total.cached_input_tokens,
                total.output_tokens,
                total.reasoning_output_tokens,
            ]
            .into_iter()
            .enumerate()
            {
                b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            DedupKey {
                a: hs.of(&state.session) ^ 0xc0de_c0de_0000_0000,
                b: fnv1a64(&b),
            }
        }
        None => DedupKey::positional(file, offset),
    }
}

/// The session id when the rollout has no `session_meta`: the UUID at the end of the file name
/// (`rollout-2026-09-01T10-00-00-<uuid>.jsonl`), else the whole stem.
fn session_from_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() >= 5 {
        let uuid = parts[parts.len() - 5..].join("-");
        if uuid.len() == 36 {
            return uuid;
        }
    }
    stem
}

/// Reads one rollout from `job.start` with the state saved there.
pub fn read_file(
    job: &AgentJob<CodexState>,
    range: &TimeRange,
    progress: Option<&Progress>,
) -> AgentOutcome<CodexState> {
    let mut lines = parser::Lines::default();
    let path: Arc<Path> = Arc::from(job.path.as_path());
    let file_name = job.path.to_string_lossy();
    let mut state = job.state.clone();
    if state.session.is_empty() {
        state.session = session_from_name(&job.path);
    }
    let mut batch = LocalBatch::default();
    let mut account = Account {
        files: 1,
        ..Account::default()
    };
    let mut skipped = Vec::new();
    let mut hs = SessionHash::default();
    let mut buf = ReadBuffer::take();
    let res = scan_file(&job.path, job.start, job.first_line, &mut buf, |line| {
        account.lines += 1;
        // A line still being written must not move the state: keep a copy to roll back to.
        let before = line.unterminated.then(|| state.clone());
        match parser::parse_line(line.bytes, &mut state, &mut lines) {
            Parsed::Usage(t) => {
                account.records += 1;
                if range.contains(t.ts_ms) {
                    let k = key(&state, &mut hs, &t, &file_name, line.offset);
                    let model = if state.model.is_empty() {
                        UNKNOWN_MODEL
                    } else {
                        &state.model
                    };
                    let rec = UsageRecord {
                        key: k,
                        ts_ms: t.ts_ms,
                        model: batch.strings.intern(model),
                        session: batch.strings.intern(&state.session),
                        project: batch.strings.intern(&state.project),
                        flags: 0,
                        tokens: t.usage.tokens(),
                    };
                    batch.records.push(rec);
                } else {
                    account.out_of_range += 1;
                }
            }
            Parsed::Repeat => account.duplicates += 1,
            Parsed::NoUsage => {}
            Parsed::Skip(reason) => {
                if let Some(b) = before {
                    // A write in progress at the end of the file: leave it for the next run.
                    state = b;
                    account.lines -= 1;
                    return ControlFlow::Continue(Tail::Pending);
                }
                account.lines_skipped += 1;
                skipped.push(SkippedLine {
                    path: path.clone(),
                    line: line.no,
                    offset: line.offset,
                    reason,
                });
            }
        }
        ControlFlow::Continue(Tail::Consumed)
    });
    let end = settle_scan(res, &path, &mut account, &mut skipped, progress);
    AgentOutcome {
        batch,
        account,
        skipped,
        end,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dedup_key_hashes_time_and_totals_as_stored_before() {
        let total = CodexUsage {
            input_tokens: 53925,
            cached_input_tokens: 35066,
            output_tokens: 119,
            reasoning_output_tokens: 47,
        };
        let t = TurnUsage {
            ts_ms: -1_796_000_000_123,
            usage: total,
            total: Some(total),
        };
        let state = CodexState {
            session: "s".into(),
            ..CodexState::default()
        };
        // The bytes the store's existing keys were made from: time, then the four totals.
        let mut b = t.ts_ms.to_le_bytes().to_vec();
        for v in [53925u64, 35066, 119, 47] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let k = key(&state, &mut SessionHash::default(), &t, "f", 0);
        assert_eq!(
            (k.a, k.b),
            (fnv1a64(b"s") ^ 0xc0de_c0de_0000_0000, fnv1a64(&b))
        );
    }

    #[test]
    fn the_session_id_falls_back_to_the_uuid_in_the_file_name() {
        let p = Path::new(
            "/x/2026/09/01/rollout-2026-09-01T10-00-00-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl",
        );
        assert_eq!(session_from_name(p), "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(
            session_from_name(Path::new("/x/rollout-x.jsonl")),
            "rollout-x"
        );
    }
}
