//! One rollout line → a change of reader state, or at most one turn's usage.

use std::borrow::Cow;

use memchr::memmem;
use serde::{Deserialize, Serialize};

use crate::account::SkipReason;
use crate::pricing::Tokens;
use crate::time::{EpochMs, parse_iso_ms};

/// Model recorded for usage seen before any `turn_context` (rollouts of older Codex versions
/// have none). Deliberately not a real model: its cost shows as unpriced instead of guessed.
pub const UNKNOWN_MODEL: &str = "unknown";

/// Token counts as Codex writes them (`info.total_token_usage` / `info.last_token_usage`).
/// `input_tokens` includes `cached_input_tokens`; `output_tokens` includes
/// `reasoning_output_tokens`; `total_tokens` = input + output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodexUsage {
    /// All input, cached included.
    #[serde(default)]
    pub input_tokens: u64,
    /// The cached part of the input.
    #[serde(default)]
    pub cached_input_tokens: u64,
    /// All output, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// The reasoning part of the output.
    #[serde(default)]
    pub reasoning_output_tokens: u64,
}

impl CodexUsage {
    /// `self - earlier` field by field, or `None` when a counter went down (the cumulative
    /// totals restarted, e.g. a resumed session in a new process).
    pub fn since(&self, earlier: &CodexUsage) -> Option<CodexUsage> {
        Some(CodexUsage {
            input_tokens: self.input_tokens.checked_sub(earlier.input_tokens)?,
            cached_input_tokens: self
                .cached_input_tokens
                .checked_sub(earlier.cached_input_tokens)?,
            output_tokens: self.output_tokens.checked_sub(earlier.output_tokens)?,
            reasoning_output_tokens: self
                .reasoning_output_tokens
                .checked_sub(earlier.reasoning_output_tokens)?,
        })
    }

    /// Our token kinds: uncached input, cache reads (the cached input), output (reasoning
    /// included, as it is billed); OpenAI has no cache-write charge.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input_tokens.saturating_sub(self.cached_input_tokens),
            output: self.output_tokens,
            cache_creation: 0,
            cache_read: self.cached_input_tokens.min(self.input_tokens),
        }
    }
}

/// What a reader carries from line to line (and across runs, saved at the checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodexState {
    /// `session_meta.payload.id`.
    pub session: String,
    /// `session_meta.payload.cwd`.
    pub project: String,
    /// `turn_context.payload.model` of the latest turn context.
    pub model: String,
    /// The latest `info.total_token_usage` seen.
    pub total: Option<CodexUsage>,
}

/// The fields of a rollout line the reader uses (everything else is skipped).
#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(default, borrow)]
    pub(super) timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) payload: Option<Payload<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct Payload<'a> {
    #[serde(rename = "type", default, borrow)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) cwd: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(super) model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(super) info: Option<Info>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct Info {
    #[serde(default)]
    pub(super) total_token_usage: Option<CodexUsage>,
    #[serde(default)]
    pub(super) last_token_usage: Option<CodexUsage>,
}

/// The usage of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUsage {
    /// Event time.
    pub ts_ms: EpochMs,
    /// The turn's tokens (Codex's own split).
    pub usage: CodexUsage,
    /// The cumulative totals after this turn, when the event carried them (they identify the
    /// turn across re-reads).
    pub total: Option<CodexUsage>,
}

/// Outcome of looking at one line.
#[derive(Debug)]
pub enum Parsed {
    /// A turn's usage (the state has been advanced).
    Usage(TurnUsage),
    /// A `token_count` event repeating the previous totals (Codex emits some twice).
    Repeat,
    /// Anything else valid (state lines included).
    NoUsage,
    /// Unusable line.
    Skip(SkipReason),
}

/// What reading one rollout keeps from line to line.
///
/// The markers are cheap filters: only lines with one of them can matter. A quote cannot appear
/// unescaped inside a JSON string, so a message that merely mentions the word never matches.
///
/// Codex writes a `turn_context` line every turn, and within a session they usually differ in
/// nothing but the timestamp, which a turn context does not use; the last one's bytes after
/// the timestamp and what it set are remembered, so such a line is compared instead of parsed.
#[derive(Default)]
pub(crate) struct Lines {
    markers: Markers,
    last_context: Option<ContextMemo>,
}

/// A parsed `turn_context` line: its bytes after the timestamp string, and the model it set.
struct ContextMemo {
    tail: Vec<u8>,
    model: Option<String>,
}

struct Markers {
    token_count: memmem::Finder<'static>,
    turn_context: memmem::Finder<'static>,
    session_meta: memmem::Finder<'static>,
    response_item: memmem::Finder<'static>,
}

impl Default for Markers {
    fn default() -> Self {
        Markers {
            token_count: memmem::Finder::new(b"\"token_count\""),
            turn_context: memmem::Finder::new(b"\"turn_context\""),
            session_meta: memmem::Finder::new(b"\"session_meta\""),
            response_item: memmem::Finder::new(b"\"type\":\"response_item\""),
        }
    }
}

/// The line after its leading `{"timestamp":"…"` when that string is plain ASCII (no escape,
/// no control byte), else `None`. Two lines with the same tail then differ only in a timestamp
/// serde reads the same way, so they parse alike but for that value.
fn after_plain_timestamp(line: &[u8]) -> Option<&[u8]> {
    const OPEN: &[u8] = b"{\"timestamp\":\"";
    let rest = line.strip_prefix(OPEN)?;
    let end = memchr::memchr(b'"', rest)?;
    rest[..end]
        .iter()
        .all(|&c| (0x20..0x7f).contains(&c) && c != b'\\')
        .then(|| &rest[end + 1..])
}

/// Codex writes `{"timestamp":…,"type":…,"payload":…}`, so a line's kind is in its first bytes.
/// Messages and tool calls (`response_item`, most of the bytes) are recognised there and never
/// searched further.
const HEAD: usize = 96;

impl Markers {
    fn wanted(&self, line: &[u8]) -> bool {
        if self
            .response_item
            .find(&line[..line.len().min(HEAD)])
            .is_some()
        {
            return false;
        }
        self.token_count.find(line).is_some()
            || self.turn_context.find(line).is_some()
            || self.session_meta.find(line).is_some()
    }
}

/// Looks at one line, updating `state`. Lines without a marker only get a structural check (a
/// complete JSON object ends with `}`), so torn lines are counted without a parse.
pub(crate) fn parse_line(line: &[u8], state: &mut CodexState, lines: &mut Lines) -> Parsed {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Parsed::NoUsage;
    }
    if !lines.markers.wanted(trimmed) {
        return if trimmed.first() == Some(&b'{') && trimmed.last() == Some(&b'}') {
            Parsed::NoUsage
        } else {
            Parsed::Skip(SkipReason::InvalidJson(
                "incomplete json object (torn line)".into(),
            ))
        };
    }
    let tail = after_plain_timestamp(trimmed);
    if let (Some(t), Some(memo)) = (tail, &lines.last_context)
        && t == memo.tail.as_slice()
    {
        if let Some(model) = &memo.model {
            state.model.clone_from(model);
        }
        return Parsed::NoUsage;
    }
    // The fast path answers for plain lines; serde_json decides everything else.
    let e: Envelope<'_> = match super::fast::envelope(trimmed) {
        Some(e) => e,
        None => match serde_json::from_slice(trimmed) {
            Ok(e) => e,
            Err(err) if err.is_data() => {
                return Parsed::Skip(SkipReason::BadField(err.to_string()));
            }
            Err(err) => return Parsed::Skip(SkipReason::InvalidJson(err.to_string())),
        },
    };
    let Some(p) = e.payload else {
        return Parsed::NoUsage;
    };
    match e.kind.as_deref() {
        Some("session_meta") => {
            if let Some(id) = p.id {
                state.session = id.into_owned();
            }
            if let Some(cwd) = p.cwd {
                state.project = cwd.into_owned();
            }
            Parsed::NoUsage
        }
        Some("turn_context") => {
            let model = p.model.filter(|m| !m.is_empty()).map(Cow::into_owned);
            if let Some(m) = &model {
                state.model.clone_from(m);
            }
            if let Some(t) = tail {
                lines.last_context = Some(ContextMemo {
                    tail: t.to_vec(),
                    model,
                });
            }
            Parsed::NoUsage
        }
        Some("event_msg") if p.kind.as_deref() == Some("token_count") => {
            let Some(info) = p.info else {
                // `info: null`: a rate-limit update before the first response.
                return Parsed::NoUsage;
            };
            let Some(ts_ms) = e.timestamp.as_deref().and_then(parse_iso_ms) else {
                return Parsed::Skip(SkipReason::BadField(
                    "timestamp missing or not RFC 3339".into(),
                ));
            };
            turn(info, ts_ms, state)
        }
        _ => Parsed::NoUsage,
    }
}

/// The rule (see the README): the per-turn `last_token_usage` when present, else the growth of
/// the cumulative totals (all of them after a restart); an event whose totals equal the previous
/// ones is a repeat.
fn turn(info: Info, ts_ms: EpochMs, state: &mut CodexState) -> Parsed {
    let prev = state.total;
    if let Some(t) = info.total_token_usage {
        if prev == Some(t) {
            return Parsed::Repeat;
        }
        state.total = Some(t);
    }
    let usage = match (info.last_token_usage, info.total_token_usage) {
        (Some(last), _) => last,
        (None, Some(t)) => prev.and_then(|p| t.since(&p)).unwrap_or(t),
        (None, None) => return Parsed::NoUsage,
    };
    if usage == CodexUsage::default() {
        return Parsed::NoUsage;
    }
    Parsed::Usage(TurnUsage {
        ts_ms,
        usage,
        total: info.total_token_usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(ts: &str, total: Option<[u64; 4]>, last: Option<[u64; 4]>) -> String {
        let u = |v: [u64; 4]| {
            format!(
                r#"{{"input_tokens":{},"cached_input_tokens":{},"output_tokens":{},"reasoning_output_tokens":{},"total_tokens":{}}}"#,
                v[0],
                v[1],
                v[2],
                v[3],
                v[0] + v[2]
            )
        };
        let mut info = Vec::new();
        if let Some(t) = total {
            info.push(format!(r#""total_token_usage":{}"#, u(t)));
        }
        if let Some(l) = last {
            info.push(format!(r#""last_token_usage":{}"#, u(l)));
        }
        format!(
            r#"{{"timestamp":"{ts}","type":"event_msg","payload":{{"type":"token_count","info":{{{}}},"rate_limits":null}}}}"#,
            info.join(",")
        )
    }

    fn usage(p: Parsed) -> CodexUsage {
        match p {
            Parsed::Usage(u) => u.usage,
            other => panic!("expected usage, got {other:?}"),
        }
    }

    #[test]
    fn a_turn_context_like_the_last_but_for_its_time_is_compared_not_parsed_and_means_the_same() {
        let ctx = |ts: &str, model: &str| {
            format!(
                r#"{{"timestamp":"{ts}","type":"turn_context","payload":{{"cwd":"/p","model":"{model}"}}}}"#
            )
        };
        let mut m = Lines::default();
        let mut s = CodexState::default();
        let first = ctx("2026-09-01T10:00:00Z", "gpt-5");
        assert!(matches!(
            parse_line(first.as_bytes(), &mut s, &mut m),
            Parsed::NoUsage
        ));
        assert_eq!(s.model, "gpt-5");
        // Another reader state (another session resumed in the same file) meets the same
        // line again: the remembered model is set, as a parse would.
        s.model = "other".into();
        let again = ctx("2026-09-01T10:05:00Z", "gpt-5");
        assert!(matches!(
            parse_line(again.as_bytes(), &mut s, &mut m),
            Parsed::NoUsage
        ));
        assert_eq!(s.model, "gpt-5");
        // Anything after the timestamp that differs is parsed.
        let switched = ctx("2026-09-01T10:06:00Z", "gpt-5-codex");
        parse_line(switched.as_bytes(), &mut s, &mut m);
        assert_eq!(s.model, "gpt-5-codex");
        // A timestamp with an escape is not plain: parsed (and the fast path hands it to serde).
        let escaped = ctx("2026-09-01T10:07:00\\u005a", "gpt-5-codex");
        assert_eq!(after_plain_timestamp(escaped.as_bytes()), None);
        s.model.clear();
        parse_line(escaped.as_bytes(), &mut s, &mut m);
        assert_eq!(s.model, "gpt-5-codex");
        // Reading a whole file with or without the memo gives the same states.
        let lines = [&first, &again, &switched, &escaped, &first, &first];
        let mut with = (CodexState::default(), Lines::default());
        for l in lines {
            parse_line(l.as_bytes(), &mut with.0, &mut with.1);
            let mut without = (with.0.clone(), Lines::default());
            parse_line(l.as_bytes(), &mut without.0, &mut without.1);
            assert_eq!(with.0, without.0, "{l}");
        }
    }

    #[test]
    fn cumulative_totals_become_deltas_and_repeats_are_dropped() {
        let mut m = Lines::default();
        let mut s = CodexState::default();
        let a = tc("2026-09-01T10:00:00Z", Some([1000, 200, 100, 40]), None);
        let b = tc("2026-09-01T10:01:00Z", Some([3000, 1200, 300, 100]), None);
        assert_eq!(
            usage(parse_line(a.as_bytes(), &mut s, &mut m)).input_tokens,
            1000
        );
        assert!(matches!(
            parse_line(a.as_bytes(), &mut s, &mut m),
            Parsed::Repeat
        ));
        let d = usage(parse_line(b.as_bytes(), &mut s, &mut m));
        assert_eq!(
            d,
            CodexUsage {
                input_tokens: 2000,
                cached_input_tokens: 1000,
                output_tokens: 200,
                reasoning_output_tokens: 60
            }
        );
        assert_eq!(
            d.tokens(),
            Tokens {
                input: 1000,
                output: 200,
                cache_creation: 0,
                cache_read: 1000
            }
        );
        // Totals that go down: a restart; the new totals are this turn's usage.
        let c = tc("2026-09-01T12:00:00Z", Some([300, 0, 30, 0]), None);
        assert_eq!(
            usage(parse_line(c.as_bytes(), &mut s, &mut m)).input_tokens,
            300
        );
    }

    #[test]
    fn last_usage_wins_and_state_lines_set_model_and_session() {
        let mut m = Lines::default();
        let mut s = CodexState::default();
        let meta = br#"{"timestamp":"2026-09-01T10:00:00Z","type":"session_meta","payload":{"id":"abc","cwd":"/w/p","git":{"branch":"main"},"instructions":"say \"token_count\""}}"#;
        let ctx = br#"{"timestamp":"2026-09-01T10:00:00Z","type":"turn_context","payload":{"cwd":"/w/p","model":"gpt-5-codex","sandbox_policy":{"mode":"read-only"}}}"#;
        assert!(matches!(parse_line(meta, &mut s, &mut m), Parsed::NoUsage));
        assert!(matches!(parse_line(ctx, &mut s, &mut m), Parsed::NoUsage));
        assert_eq!((s.session.as_str(), s.project.as_str()), ("abc", "/w/p"));
        assert_eq!(s.model, "gpt-5-codex");
        let e = tc(
            "2026-09-01T10:00:00Z",
            Some([5000, 0, 50, 0]),
            Some([7, 0, 1, 0]),
        );
        assert_eq!(
            usage(parse_line(e.as_bytes(), &mut s, &mut m)).input_tokens,
            7
        );
    }

    #[test]
    fn torn_and_null_lines() {
        let mut m = Lines::default();
        let mut s = CodexState::default();
        let e = tc("2026-09-01T10:00:00Z", Some([5, 0, 5, 0]), None);
        let torn = &e.as_bytes()[..e.len() - 7];
        assert!(matches!(parse_line(torn, &mut s, &mut m), Parsed::Skip(_)));
        assert!(matches!(
            parse_line(
                br#"{"type":"response_item","payload":{"type":"mess"#,
                &mut s,
                &mut m
            ),
            Parsed::Skip(_)
        ));
        let null = br#"{"timestamp":"2026-09-01T10:00:00Z","type":"event_msg","payload":{"type":"token_count","info":null}}"#;
        assert!(matches!(parse_line(null, &mut s, &mut m), Parsed::NoUsage));
        assert_eq!(s.total, None);
    }
}
