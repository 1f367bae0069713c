//! One transcript line → at most one usage entry.

use std::borrow::Cow;

use memchr::memmem;
use serde::Deserialize;

use crate::account::SkipReason;
use crate::pricing::Tokens;
use crate::time::{EpochMs, TimeRange, parse_iso_ms};

/// Only lines holding this marker can carry usage; everything else is skipped before serde.
pub(crate) const USAGE_MARKER: &[u8] = b"\"usage\"";
const TS_MARKER: &[u8] = b"\"timestamp\":\"";

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", default, borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(rename = "requestId", default, borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(rename = "isSidechain", default)]
    is_sidechain: Option<bool>,
    #[serde(default, borrow)]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// The usage-bearing part of one assistant entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeEntry<'a> {
    /// Entry time.
    pub ts_ms: EpochMs,
    /// `message.model` ("" when absent).
    pub model: Cow<'a, str>,
    /// `sessionId`.
    pub session_id: Option<Cow<'a, str>>,
    /// `message.id`.
    pub message_id: Option<Cow<'a, str>>,
    /// `requestId`.
    pub request_id: Option<Cow<'a, str>>,
    /// `isSidechain`.
    pub sidechain: bool,
    /// Tokens by kind.
    pub tokens: Tokens,
}

/// Outcome of looking at one line.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A usage entry.
    Entry(ClaudeEntry<'a>),
    /// A valid line without usage (user turns, summaries, tool results).
    NoUsage,
    /// The cheap timestamp check put the line outside the requested range.
    OutOfRange,
    /// Unusable line.
    Skip(SkipReason),
}

/// Looks at one line. Lines without the usage marker only get a structural check (a complete
/// JSON object ends with `}`), so torn lines are counted without paying for a parse.
pub fn parse_line<'a>(
    line: &'a [u8],
    range: &TimeRange,
    usage_finder: &memmem::Finder<'_>,
) -> Parsed<'a> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Parsed::NoUsage;
    }
    if usage_finder.find(trimmed).is_none() {
        return if trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}') {
            Parsed::NoUsage
        } else {
            Parsed::Skip(SkipReason::InvalidJson(
                "incomplete json object (torn line)".into(),
            ))
        };
    }
    if !range.is_open() {
        // The timestamp is the last field the client writes; look from the end.
        if let Some(i) = memmem::rfind(trimmed, TS_MARKER) {
            let rest = &trimmed[i + TS_MARKER.len()..];
            if let Some(end) = memchr::memchr(b'"', rest)
                && let Ok(s) = std::str::from_utf8(&rest[..end])
                && let Some(ms) = parse_iso_ms(s)
                && !range.contains(ms)
            {
                return Parsed::OutOfRange;
            }
        }
    }
    let e: Entry<'a> = match serde_json::from_slice(trimmed) {
        Ok(e) => e,
        Err(err) => {
            return Parsed::Skip(if err.is_data() {
                SkipReason::BadField(err.to_string())
            } else {
                SkipReason::InvalidJson(err.to_string())
            });
        }
    };
    let Some(msg) = e.message else {
        return Parsed::NoUsage;
    };
    let Some(u) = msg.usage else {
        return Parsed::NoUsage;
    };
    // Same rule as ccusage: an entry counts only with both base token counts and a timestamp.
    let (Some(input), Some(output)) = (u.input_tokens, u.output_tokens) else {
        return Parsed::NoUsage;
    };
    let Some(ts_ms) = e.timestamp.as_deref().and_then(parse_iso_ms) else {
        return Parsed::Skip(SkipReason::BadField(
            "timestamp missing or not RFC 3339".into(),
        ));
    };
    if !range.contains(ts_ms) {
        return Parsed::OutOfRange;
    }
    Parsed::Entry(ClaudeEntry {
        ts_ms,
        model: msg.model.unwrap_or(Cow::Borrowed("")),
        session_id: e.session_id,
        message_id: msg.id,
        request_id: e.request_id,
        sidechain: e.is_sidechain.unwrap_or(false),
        tokens: Tokens {
            input,
            output,
            cache_creation: u.cache_creation_input_tokens.unwrap_or(0),
            cache_read: u.cache_read_input_tokens.unwrap_or(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSISTANT: &str = r#"{"parentUuid":"p","isSidechain":false,"sessionId":"s1","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"hi \"usage\": {}"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":10,"cache_read_input_tokens":20,"output_tokens":7}},"requestId":"req_1","type":"assistant","timestamp":"2026-09-01T10:00:00.000Z"}"#;

    fn finder() -> memmem::Finder<'static> {
        memmem::Finder::new(USAGE_MARKER)
    }

    #[test]
    fn an_assistant_line_yields_its_usage() {
        let Parsed::Entry(e) = parse_line(ASSISTANT.as_bytes(), &TimeRange::default(), &finder())
        else {
            panic!("expected an entry");
        };
        assert_eq!(e.model, "claude-sonnet-4-20250514");
        assert_eq!(e.message_id.as_deref(), Some("msg_1"));
        assert_eq!(e.request_id.as_deref(), Some("req_1"));
        assert_eq!(e.tokens.total(), 40);
        assert!(!e.sidechain);
    }

    #[test]
    fn a_torn_line_is_skipped_not_fatal() {
        let torn = &ASSISTANT.as_bytes()[..ASSISTANT.len() / 3];
        assert!(matches!(
            parse_line(torn, &TimeRange::default(), &finder()),
            Parsed::Skip(_)
        ));
        let torn_late = &ASSISTANT.as_bytes()[..ASSISTANT.len() - 5];
        assert!(matches!(
            parse_line(torn_late, &TimeRange::default(), &finder()),
            Parsed::Skip(_)
        ));
    }

    #[test]
    fn a_line_outside_the_range_is_rejected_before_parsing() {
        let r = TimeRange {
            since: parse_iso_ms("2026-09-02T00:00:00Z"),
            until: None,
        };
        assert!(matches!(
            parse_line(ASSISTANT.as_bytes(), &r, &finder()),
            Parsed::OutOfRange
        ));
    }

    #[test]
    fn a_user_line_has_no_usage() {
        let user = br#"{"type":"user","message":{"role":"user","content":"x"},"timestamp":"2026-09-01T10:00:00Z"}"#;
        assert!(matches!(
            parse_line(user, &TimeRange::default(), &finder()),
            Parsed::NoUsage
        ));
    }
}
