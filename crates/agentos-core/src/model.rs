//! One name per model across sources: a versioned alias table mapping the spellings agents,
//! proxies and APIs use (`claude-sonnet-4.5`, `sonnet-4.5`, `anthropic/claude-sonnet-4-5`,
//! `claude-sonnet-4-5@20250929`) to one canonical id (`claude-sonnet-4-5-20250929`). Names the
//! table does not know pass through unchanged.
//!
//! Matching ignores case, a `provider/` prefix, an `anthropic.` / `us.anthropic.` (Bedrock)
//! prefix, a `-v1:0` suffix (Bedrock) and the difference between `.`, `@` and `-`. A new model,
//! or a new spelling of one, is a row in [`ALIASES`] and a bump of [`ALIAS_TABLE_VERSION`]
//! (reports state the version they used, so figures from different versions can be told apart).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Version of [`ALIASES`]; bumped on every change to it.
pub const ALIAS_TABLE_VERSION: u32 = 1;

/// Canonical id → other spellings of the same model (compared after normalisation, so
/// `claude-sonnet-4.5` also covers `Claude-Sonnet-4-5`).
pub const ALIASES: &[(&str, &[&str])] = &[
    ("claude-opus-4-5-20251101", &["claude-opus-4-5", "opus-4-5"]),
    (
        "claude-sonnet-4-5-20250929",
        &["claude-sonnet-4-5", "sonnet-4-5"],
    ),
    (
        "claude-haiku-4-5-20251001",
        &["claude-haiku-4-5", "haiku-4-5"],
    ),
    ("claude-opus-4-1-20250805", &["claude-opus-4-1", "opus-4-1"]),
    (
        "claude-opus-4-20250514",
        &["claude-opus-4", "claude-opus-4-0", "opus-4"],
    ),
    (
        "claude-sonnet-4-20250514",
        &["claude-sonnet-4", "claude-sonnet-4-0", "sonnet-4"],
    ),
    (
        "claude-3-7-sonnet-20250219",
        &[
            "claude-3-7-sonnet",
            "claude-3-7-sonnet-latest",
            "sonnet-3-7",
        ],
    ),
    (
        "claude-3-5-haiku-20241022",
        &["claude-3-5-haiku", "claude-3-5-haiku-latest", "haiku-3-5"],
    ),
    ("gpt-5", &["gpt-5-2025-08-07", "gpt5"]),
    ("gpt-5-mini", &["gpt-5-mini-2025-08-07"]),
    ("gpt-5-nano", &["gpt-5-nano-2025-08-07"]),
    ("gpt-5-codex", &["gpt5-codex"]),
    ("gpt-5.1", &[]),
    ("gpt-5.1-codex", &[]),
    ("gpt-5.1-codex-mini", &[]),
    ("glm-4.6", &["glm4-6", "zai-glm-4-6"]),
    ("glm-4.5", &["glm4-5", "zai-glm-4-5"]),
    ("glm-4.5-air", &["glm4-5-air", "zai-glm-4-5-air"]),
];

/// The comparison form of a name: lower case, prefixes and suffixes of the hosting platform
/// removed, `.` and `@` as `-`.
fn normalise(name: &str) -> String {
    let m = name.trim();
    let m = m.rsplit('/').next().unwrap_or(m);
    let lower = m.to_ascii_lowercase();
    let mut m = lower.as_str();
    for p in [
        "us.anthropic.",
        "eu.anthropic.",
        "apac.anthropic.",
        "anthropic.",
    ] {
        if let Some(rest) = m.strip_prefix(p) {
            m = rest;
            break;
        }
    }
    let m = m.strip_suffix("-v1:0").unwrap_or(m);
    m.replace(['.', '@'], "-")
}

/// Normalised spelling → canonical id, built once (it is asked per recorded turn).
fn index() -> &'static HashMap<String, &'static str> {
    static INDEX: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = HashMap::new();
        for (canonical, aliases) in ALIASES {
            for a in std::iter::once(canonical).chain(aliases.iter()) {
                m.insert(normalise(a), *canonical);
            }
        }
        m
    })
}

/// The canonical id of `name`, or `name` unchanged when the table does not know it.
pub fn canonical_model(name: &str) -> Cow<'_, str> {
    match index().get(&normalise(name)) {
        Some(canonical) if *canonical != name => Cow::Borrowed(canonical),
        _ => Cow::Borrowed(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_model_is_one_id() {
        for s in [
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4.5",
            "sonnet-4.5",
            "anthropic/claude-sonnet-4-5",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4-5@20250929",
            "Claude-Sonnet-4-5",
        ] {
            assert_eq!(canonical_model(s), "claude-sonnet-4-5-20250929", "{s}");
        }
        assert_eq!(canonical_model("GLM-4.6"), "glm-4.6");
        assert_eq!(canonical_model("zai/glm-4-6"), "glm-4.6");
        assert_eq!(canonical_model("gpt-5-2025-08-07"), "gpt-5");
        assert_eq!(canonical_model("openai/gpt-5.1-codex"), "gpt-5.1-codex");
    }

    #[test]
    fn unknown_names_and_other_versions_pass_through() {
        for s in [
            "my-local-model",
            "claude-3-5-sonnet-20240620",
            "unknown",
            "",
        ] {
            assert_eq!(canonical_model(s), s);
        }
        assert!(matches!(canonical_model("gpt-5"), Cow::Borrowed("gpt-5")));
    }

    #[test]
    fn no_spelling_belongs_to_two_models() {
        let mut seen = std::collections::BTreeMap::new();
        for (canonical, aliases) in ALIASES {
            for a in std::iter::once(canonical).chain(aliases.iter()) {
                if let Some(other) = seen.insert(normalise(a), *canonical) {
                    panic!("{a} is both {other} and {canonical}");
                }
            }
        }
    }
}
