//! One vocabulary for where usage came from: the names every report, the report API and the
//! dashboard filter and group by (`claude`, `codex`, `ccc`, `otlp`, `recorder`).
//!
//! Each path stores its own spelling (a turn event says `"source": "claude_code"`, a local
//! store directory is `claude-…`, a turn recorded by hand says nothing); this module is the one
//! place that maps them onto these names, so a filter means the same thing locally and on the
//! collector.

use std::fmt;
use std::str::FromStr;

/// Where a turn came from, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Claude Code: its transcripts (hooks, `ccc ingest claude`).
    Claude,
    /// Codex CLI session rollouts.
    Codex,
    /// CCC shim usage logs.
    Ccc,
    /// Claude Code's own OpenTelemetry export, received by the collector's OTLP listener.
    Otlp,
    /// Turns recorded through the recorder (CLI, library, Python) without a source of their own.
    Recorder,
}

impl Source {
    /// Every source, in the order reports list them.
    pub const ALL: [Source; 5] = [
        Source::Claude,
        Source::Codex,
        Source::Ccc,
        Source::Otlp,
        Source::Recorder,
    ];

    /// The report name (`claude`, `codex`, `ccc`, `otlp`, `recorder`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Claude => "claude",
            Source::Codex => "codex",
            Source::Ccc => "ccc",
            Source::Otlp => "otlp",
            Source::Recorder => "recorder",
        }
    }

    /// A small stable code (1–15) for packing the source into record flags; never 0, which
    /// means "no source known".
    pub fn code(self) -> u32 {
        match self {
            Source::Claude => 1,
            Source::Ccc => 2,
            Source::Codex => 3,
            Source::Otlp => 4,
            Source::Recorder => 5,
        }
    }

    /// The source with [`Source::code`] `code`.
    pub fn from_code(code: u32) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The source of a stored turn from its `turn.source` wire value (`None` or `""`: a turn
    /// recorded without one, i.e. by the recorder). Unknown values are `None`.
    pub fn of_turn(wire: Option<&str>) -> Option<Source> {
        match wire.unwrap_or("") {
            "" => Some(Source::Recorder),
            w => w.parse().ok(),
        }
    }

    /// The `turn.source` wire value turns of this source are stored under (`""` = absent).
    pub fn turn_wire(self) -> &'static str {
        match self {
            Source::Claude => "claude_code",
            Source::Recorder => "",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source `{0}` (one of claude, codex, ccc, otlp, recorder)")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    /// The report names, plus the spellings older answers and flags used: `claude_code` (the
    /// turn wire value), `none` and `untagged` (turns without a source).
    fn from_str(s: &str) -> Result<Source, UnknownSource> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "claude" | "claude_code" | "claude-code" => Source::Claude,
            "codex" => Source::Codex,
            "ccc" => Source::Ccc,
            "otlp" => Source::Otlp,
            "recorder" | "none" | "untagged" => Source::Recorder,
            _ => return Err(UnknownSource(s.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_resolve() {
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>(), Ok(s));
            assert_eq!(Source::from_code(s.code()), Some(s));
            assert_eq!(Source::of_turn(Some(s.turn_wire())), Some(s));
        }
        assert_eq!("claude_code".parse::<Source>(), Ok(Source::Claude));
        assert_eq!("none".parse::<Source>(), Ok(Source::Recorder));
        assert_eq!(Source::of_turn(None), Some(Source::Recorder));
        assert_eq!(Source::from_code(0), None);
        let err = "gemini".parse::<Source>().expect_err("not a source");
        assert!(err.to_string().contains("gemini"), "{err}");
    }

    #[test]
    fn codes_are_distinct_and_fit_four_bits() {
        let mut codes: Vec<u32> = Source::ALL.iter().map(|s| s.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Source::ALL.len());
        assert!(codes.iter().all(|&c| (1..16).contains(&c)));
    }
}
