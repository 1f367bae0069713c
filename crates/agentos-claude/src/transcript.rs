//! Reading the lines a transcript gained since its cursor, one usage entry per assistant line,
//! with the ingest crate's parser (the same lines count, the same torn-line rule) and its
//! de-duplication rule (same key, same tie-break), so the hook and `ccc ingest claude` agree.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use agentos_core::origin::Origin;
use agentos_ingest::Tokens;
use agentos_ingest::dedup::{Candidate, prefer};
use agentos_ingest::scan::{Tail, scan_file};
use agentos_ingest::source::claude::{Parsed, parse_line};
use agentos_ingest::time::{TimeRange, parse_iso_ms};
use memchr::memmem;

use crate::cursor::FileCursor;
use crate::error::ClaudeError;

/// One API request found in a transcript (the copy the dedup rule kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Derived turn id ([`Origin::turn_id`]).
    pub turn_id: String,
    /// Entry timestamp (epoch ms).
    pub ts_ms: i64,
    /// Model name.
    pub model: String,
    /// Written by a sub-agent (`isSidechain`).
    pub sidechain: bool,
    /// Tokens by kind.
    pub tokens: Tokens,
    /// Milliseconds from the preceding input line to this entry (0 when unknown).
    pub latency_ms: f64,
}

/// What one read produced.
#[derive(Debug, Default)]
pub struct Read {
    /// Requests in first-seen order, de-duplicated within this read.
    pub requests: Vec<Request>,
    /// The cursor after the read.
    pub cursor: FileCursor,
    /// Lines that could not be used (torn in the middle of the file, bad fields).
    pub skipped_lines: u64,
    /// The read stopped at the deadline; more lines are waiting.
    pub more: bool,
}

const TS_MARKER: &[u8] = b"\"timestamp\":\"";
const USAGE_MARKER: &[u8] = b"\"usage\"";

/// Reads `path` from `from.offset`, stopping before `deadline` at a line boundary. A torn last
/// line (no newline yet, not complete JSON) is left for the next read.
///
/// # Errors
/// The file cannot be opened or read (a missing transcript is the caller's concern).
pub fn read_new(path: &Path, from: &FileCursor, deadline: Instant) -> Result<Read, ClaudeError> {
    let finder = memmem::Finder::new(USAGE_MARKER);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let range = TimeRange::default();
    let mut out = Read {
        cursor: from.clone(),
        ..Read::default()
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut last_input = from.last_input_ms;
    let mut stopped_at = None;
    let mut buf = Vec::new();
    let end = scan_file(path, from.offset, 1, &mut buf, |line| {
        if Instant::now() >= deadline {
            stopped_at = Some(line.offset);
            return ControlFlow::Break(());
        }
        match parse_line(line.bytes, &range, &finder) {
            Parsed::Entry(e) => {
                let origin = match (&e.message_id, &e.request_id) {
                    (Some(m), Some(r)) => Origin::ClaudeRequest {
                        message_id: m,
                        request_id: r,
                    },
                    _ => Origin::ClaudePosition {
                        file_name: &file_name,
                        offset: line.offset,
                    },
                };
                let req = Request {
                    turn_id: origin.turn_id().0,
                    ts_ms: e.ts_ms,
                    model: e.model.into_owned(),
                    sidechain: e.sidechain,
                    tokens: e.tokens,
                    latency_ms: last_input.map_or(0.0, |t| (e.ts_ms - t).max(0) as f64),
                };
                match index.get(&req.turn_id) {
                    Some(&i) => {
                        if prefer(candidate(&req), candidate(&out.requests[i])) {
                            out.requests[i] = req;
                        }
                    }
                    None => {
                        index.insert(req.turn_id.clone(), out.requests.len());
                        out.requests.push(req);
                    }
                }
                ControlFlow::Continue(Tail::Consumed)
            }
            Parsed::NoUsage | Parsed::OutOfRange => {
                if let Some(ts) = timestamp_of(line.bytes) {
                    last_input = Some(ts);
                }
                ControlFlow::Continue(Tail::Consumed)
            }
            Parsed::Skip(_) if line.unterminated => ControlFlow::Continue(Tail::Pending),
            Parsed::Skip(_) => {
                out.skipped_lines += 1;
                ControlFlow::Continue(Tail::Consumed)
            }
        }
    })?;
    out.more = stopped_at.is_some();
    // On a deadline stop the scan counts the line it handed out as read; it was not.
    out.cursor.offset = stopped_at.unwrap_or(end.offset);
    out.cursor.last_input_ms = last_input;
    Ok(out)
}

fn candidate(r: &Request) -> Candidate {
    Candidate {
        sidechain: r.sidechain,
        total_tokens: r.tokens.total(),
        ts_ms: r.ts_ms,
    }
}

/// The `timestamp` of a line without parsing it (the client writes it as a top-level string;
/// inside nested strings the quotes are escaped, so the marker cannot match there).
fn timestamp_of(line: &[u8]) -> Option<i64> {
    let i = memmem::rfind(line, TS_MARKER)?;
    let rest = &line[i + TS_MARKER.len()..];
    let end = memchr::memchr(b'"', rest)?;
    parse_iso_ms(std::str::from_utf8(&rest[..end]).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn user(ts: &str) -> String {
        format!(
            r#"{{"type":"user","sessionId":"s","message":{{"role":"user","content":"hi"}},"timestamp":"{ts}"}}"#
        )
    }

    fn assistant(mid: &str, rid: &str, out: u64, ts: &str) -> String {
        format!(
            r#"{{"type":"assistant","sessionId":"s","isSidechain":false,"message":{{"id":"{mid}","model":"claude-sonnet-4-20250514","usage":{{"input_tokens":3,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":{out}}}}},"requestId":"{rid}","timestamp":"{ts}"}}"#
        )
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    #[test]
    fn streamed_copies_are_one_request_with_the_larger_usage_and_a_latency() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.jsonl");
        let text = [
            user("2026-09-01T10:00:00.000Z"),
            assistant("m1", "r1", 5, "2026-09-01T10:00:02.500Z"),
            assistant("m1", "r1", 9, "2026-09-01T10:00:02.600Z"),
        ]
        .join("\n")
            + "\n";
        std::fs::write(&p, text).expect("write");
        let r = read_new(&p, &FileCursor::default(), far()).expect("read");
        assert_eq!(r.requests.len(), 1);
        assert_eq!(r.requests[0].tokens.output, 9);
        assert_eq!(r.requests[0].tokens.cache_read, 20);
        assert_eq!(r.requests[0].latency_ms, 2600.0);
        assert_eq!(r.cursor.offset, std::fs::metadata(&p).expect("meta").len());
    }

    #[test]
    fn a_torn_last_line_is_left_for_the_next_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.jsonl");
        let a1 = assistant("m1", "r1", 5, "2026-09-01T10:00:02Z");
        let a2 = assistant("m2", "r2", 7, "2026-09-01T10:00:09Z");
        let mut f = std::fs::File::create(&p).expect("create");
        write!(f, "{a1}\n{}", &a2[..a2.len() / 2]).expect("write");
        let first = read_new(&p, &FileCursor::default(), far()).expect("read");
        assert_eq!(first.requests.len(), 1);
        assert_eq!(first.cursor.offset, a1.len() as u64 + 1);
        writeln!(f, "{}", &a2[a2.len() / 2..]).expect("finish the line");
        let second = read_new(&p, &first.cursor, far()).expect("read");
        assert_eq!(second.requests.len(), 1);
        assert_eq!(second.requests[0].tokens.output, 7);
        assert_eq!(second.skipped_lines, 0);
    }

    #[test]
    fn a_passed_deadline_reads_nothing_and_keeps_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.jsonl");
        std::fs::write(&p, assistant("m1", "r1", 5, "2026-09-01T10:00:02Z") + "\n").expect("write");
        let r = read_new(&p, &FileCursor::default(), Instant::now()).expect("read");
        assert!(r.more);
        assert!(r.requests.is_empty());
        assert_eq!(r.cursor.offset, 0);
    }
}
