//! Deterministic turn identity: a turn that has an origin (a provider request) gets a
//! [`TurnId`] derived from that origin, so the same request reaching the log or the collector by
//! two paths (a Claude Code hook and `ccc ingest claude`, a live hook and a later catch-up) is
//! recognisably one turn.
//!
//! # Derivation (frozen for v1; other implementations must reproduce it)
//! `turn_id` = the first 16 bytes of `SHA-256(source ‖ 0x00 ‖ part₁ ‖ 0x00 ‖ part₂ …)`, where
//! `source` is the [`TurnSource`] wire name and each part is preceded by its byte length as a
//! little-endian `u64` (so `("ab","c")` and `("a","bc")` never collide), formatted as a UUID
//! with version 8 and the RFC 4122 variant (lowercase, hyphenated).
//!
//! | origin | parts |
//! |---|---|
//! | Claude Code request | `message.id`, `requestId` |
//! | Claude Code entry without both ids | transcript file name, byte offset of the line (decimal) |
//! | Codex CLI turn | session id, the ingest store's identity of the turn (32 hex digits: its time and the cumulative totals after it, or its file and offset) |
//! | Claude Code OpenTelemetry `api_request` event (source `otlp`) | `session.id`, `event.sequence`, `event.timestamp`, `prompt.id`, `model` (each empty when absent) |
//!
//! The ids the provider assigned never appear in the turn id itself: only their hash leaves.
//! Turns without an origin (recorded by hand) keep random UUIDv7 ids.

use sha2::{Digest, Sha256};

use crate::event::{TurnId, TurnSource};

/// Where one turn came from, with the identity the source gives its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin<'a> {
    /// A Claude Code assistant entry carrying both ids. Streamed copies and resumed-session
    /// copies of one request share both.
    ClaudeRequest {
        /// `message.id`.
        message_id: &'a str,
        /// `requestId`.
        request_id: &'a str,
    },
    /// A Claude Code assistant entry missing an id: identified by its position, so re-reading
    /// the same bytes gives the same id but it is never merged with another entry.
    ClaudePosition {
        /// The transcript's file name (not its path: the same file seen under two mounts is
        /// one file).
        file_name: &'a str,
        /// Byte offset of the line in the file.
        offset: u64,
    },
    /// A Codex CLI turn as the ingest store identifies it (the same turn read again, from any
    /// copy of the rollout, has the same identity).
    CodexTurn {
        /// The Codex session id.
        session_id: &'a str,
        /// The store's identity of the turn, as 32 lowercase hex digits.
        key: &'a str,
    },
    /// A `claude_code.api_request` log event of Claude Code's OpenTelemetry export. The event
    /// carries no provider request id, so it is identified by the attributes that tell one
    /// request of a session from another; an exporter retry resends the same record, so it
    /// gets the same id. Absent attributes are empty strings.
    OtlpApiRequest {
        /// `session.id`.
        session_id: &'a str,
        /// `event.sequence` (decimal), a per-session counter in newer Claude Code versions.
        sequence: &'a str,
        /// `event.timestamp` as sent (or the record's time in nanoseconds when absent).
        timestamp: &'a str,
        /// `prompt.id`.
        prompt_id: &'a str,
        /// `model`.
        model: &'a str,
    },
}

impl Origin<'_> {
    /// The source this origin belongs to.
    pub fn source(&self) -> TurnSource {
        match self {
            Origin::ClaudeRequest { .. } | Origin::ClaudePosition { .. } => TurnSource::ClaudeCode,
            Origin::CodexTurn { .. } => TurnSource::Codex,
            Origin::OtlpApiRequest { .. } => TurnSource::Otlp,
        }
    }

    /// The turn id derived from this origin (see the module docs for the rule).
    ///
    /// ```
    /// use agentos_core::origin::Origin;
    /// let a = Origin::ClaudeRequest { message_id: "msg_1", request_id: "req_1" };
    /// assert_eq!(a.turn_id(), a.turn_id());
    /// assert_eq!(a.turn_id().0.len(), 36);
    /// ```
    pub fn turn_id(&self) -> TurnId {
        let offset;
        let parts: Vec<&[u8]> = match self {
            Origin::ClaudeRequest {
                message_id,
                request_id,
            } => vec![message_id.as_bytes(), request_id.as_bytes()],
            Origin::ClaudePosition {
                file_name,
                offset: o,
            } => {
                offset = o.to_string();
                vec![file_name.as_bytes(), offset.as_bytes()]
            }
            Origin::CodexTurn { session_id, key } => vec![session_id.as_bytes(), key.as_bytes()],
            Origin::OtlpApiRequest {
                session_id,
                sequence,
                timestamp,
                prompt_id,
                model,
            } => vec![
                session_id.as_bytes(),
                sequence.as_bytes(),
                timestamp.as_bytes(),
                prompt_id.as_bytes(),
                model.as_bytes(),
            ],
        };
        derive(self.source(), &parts)
    }
}

/// The derivation itself, for any source and parts (see the module docs).
pub fn derive(source: TurnSource, parts: &[&[u8]]) -> TurnId {
    let mut h = Sha256::new();
    h.update(source.as_str().as_bytes());
    h.update([0u8]);
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // Version 8 ("custom") and the RFC 4122 variant: a valid UUID that says it is not random.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    TurnId(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_gets_the_same_id_and_different_requests_do_not() {
        let a = Origin::ClaudeRequest {
            message_id: "msg_1",
            request_id: "req_1",
        };
        let b = Origin::ClaudeRequest {
            message_id: "msg_1",
            request_id: "req_2",
        };
        assert_eq!(a.turn_id(), a.turn_id());
        assert_ne!(a.turn_id(), b.turn_id());
    }

    #[test]
    fn part_boundaries_matter() {
        let a = derive(TurnSource::ClaudeCode, &[b"ab", b"c"]);
        let b = derive(TurnSource::ClaudeCode, &[b"a", b"bc"]);
        assert_ne!(a, b);
    }

    #[test]
    fn the_id_is_a_version_8_uuid() {
        let id = Origin::ClaudePosition {
            file_name: "s.jsonl",
            offset: 42,
        }
        .turn_id();
        let u = uuid::Uuid::parse_str(&id.0).expect("uuid");
        assert_eq!(u.get_version_num(), 8);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn the_derivation_is_frozen() {
        // Other implementations must produce this exact id for this request.
        let id = Origin::ClaudeRequest {
            message_id: "msg_01ABC",
            request_id: "req_011XYZ",
        }
        .turn_id();
        assert_eq!(id.0, FROZEN);
    }

    #[test]
    fn otlp_requests_differ_by_sequence_and_never_match_a_transcript_id() {
        let a = Origin::OtlpApiRequest {
            session_id: "s",
            sequence: "1",
            timestamp: "2026-01-01T00:00:00Z",
            prompt_id: "p",
            model: "m",
        };
        let b = Origin::OtlpApiRequest {
            session_id: "s",
            sequence: "2",
            timestamp: "2026-01-01T00:00:00Z",
            prompt_id: "p",
            model: "m",
        };
        assert_eq!(a.source(), TurnSource::Otlp);
        assert_ne!(a.turn_id(), b.turn_id());
        assert_eq!(a.turn_id(), a.turn_id());
    }

    #[test]
    fn the_otlp_derivation_is_frozen() {
        let id = Origin::OtlpApiRequest {
            session_id: "sess-1",
            sequence: "7",
            timestamp: "2026-11-24T19:00:00.000Z",
            prompt_id: "prompt-1",
            model: "claude-sonnet-4-5",
        }
        .turn_id();
        assert_eq!(id.0, FROZEN_OTLP);
    }

    // Computed independently (Python hashlib) from the rule in the module docs.
    const FROZEN: &str = "66ba221c-197b-8f56-a314-cb9a729c1e3c";
    const FROZEN_OTLP: &str = "db5bc679-f940-86ae-a015-4ed092223416";
}
