//! Duplicate detection across lines, files and runs.

use serde::{Deserialize, Serialize};

use crate::scan::fnv1a64;

/// Identity of one usage record, as 128 bits of stable hashes (persisted in the store).
///
/// * Claude Code: FNV-1a of `message.id` and of `requestId`. The client writes the same assistant
///   message several times while streaming (and again when a session is resumed into a new
///   file); all copies share both ids.
/// * CCC: FNV-1a of the `rid` and the epoch milliseconds of the request's final line. A rid is
///   only 32 random bits, so the timestamp keeps two requests that drew the same rid apart
///   (the CCC dedupe rule "by (rid, ts)").
/// * Records that lack an id get a key made of their file and byte offset: never merged with
///   anything else, but re-reading the same bytes still yields the same key.
///
/// **Tie-break** when two records share a key (see [`prefer`]): a main-thread record beats a
/// sidechain (sub-agent) copy; then the higher token total wins (a streamed copy written before
/// the last chunk carries fewer output tokens); then the earlier timestamp; then the one read
/// first (files in path order, lines in file order), so the result never depends on threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DedupKey {
    /// High half.
    pub a: u64,
    /// Low half.
    pub b: u64,
}

impl DedupKey {
    /// Key of a Claude Code assistant entry.
    pub fn claude(message_id: &str, request_id: &str) -> DedupKey {
        DedupKey {
            a: fnv1a64(message_id.as_bytes()),
            b: fnv1a64(request_id.as_bytes()),
        }
    }

    /// Key of a CCC request.
    pub fn ccc(rid: &str, final_ts_ms: i64) -> DedupKey {
        DedupKey {
            a: fnv1a64(rid.as_bytes()) ^ 0x5bd1_e995_0000_0000,
            b: final_ts_ms as u64,
        }
    }

    /// Key of a record without ids, from its file name and byte offset.
    pub fn positional(file_name: &str, offset: u64) -> DedupKey {
        DedupKey {
            a: fnv1a64(file_name.as_bytes()) ^ 0x9e37_79b9_7f4a_7c15,
            b: offset,
        }
    }
}

/// Facts the tie-break rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Written by a sub-agent (sidechain) rather than the main thread.
    pub sidechain: bool,
    /// Sum of all token kinds.
    pub total_tokens: u64,
    /// Timestamp in epoch milliseconds.
    pub ts_ms: i64,
}

/// True when `new` should replace `kept` (see [`DedupKey`] for the rule). Equal candidates keep
/// the one read first.
pub fn prefer(new: Candidate, kept: Candidate) -> bool {
    if new.sidechain != kept.sidechain {
        return !new.sidechain;
    }
    if new.total_tokens != kept.total_tokens {
        return new.total_tokens > kept.total_tokens;
    }
    new.ts_ms < kept.ts_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sidechain: bool, total_tokens: u64, ts_ms: i64) -> Candidate {
        Candidate {
            sidechain,
            total_tokens,
            ts_ms,
        }
    }

    #[test]
    fn a_main_thread_copy_beats_a_sidechain_copy_even_with_fewer_tokens() {
        assert!(prefer(c(false, 10, 5), c(true, 100, 1)));
        assert!(!prefer(c(true, 100, 1), c(false, 10, 5)));
    }

    #[test]
    fn the_copy_with_more_tokens_wins_between_equals() {
        assert!(prefer(c(false, 11, 9), c(false, 10, 1)));
        assert!(!prefer(c(false, 10, 1), c(false, 11, 9)));
    }

    #[test]
    fn the_earlier_copy_wins_when_tokens_tie() {
        assert!(prefer(c(false, 10, 1), c(false, 10, 2)));
        assert!(!prefer(c(false, 10, 2), c(false, 10, 1)));
    }

    #[test]
    fn identical_copies_keep_the_one_read_first() {
        assert!(!prefer(c(false, 10, 1), c(false, 10, 1)));
    }

    #[test]
    fn keys_differ_when_either_id_differs() {
        let k = DedupKey::claude("msg_1", "req_1");
        assert_eq!(k, DedupKey::claude("msg_1", "req_1"));
        assert_ne!(k, DedupKey::claude("msg_1", "req_2"));
        assert_ne!(k, DedupKey::claude("msg_2", "req_1"));
        assert_ne!(DedupKey::ccc("ab12cd34", 1), DedupKey::ccc("ab12cd34", 2));
    }
}
