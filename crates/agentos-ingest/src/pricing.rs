//! Cost estimates from an embedded price table (Anthropic, OpenAI and Z.ai GLM list prices, with
//! the date they were taken), overridable by a file. Never touches the network, so `--offline`
//! is the only mode there is.
//!
//! The `--prices FILE` format (the embedded `prices/models.json` is one):
//!
//! ```json
//! {
//!   "as_of": "2026-12-01",
//!   "models": {
//!     "my-model": {"input": 1.0, "output": 4.0, "cache_creation": 0.0, "cache_read": 0.1}
//!   }
//! }
//! ```
//!
//! Prices are USD per million tokens; `cache_creation` and `cache_read` default to 0; other keys
//! (`_comment`, `sources`) are ignored. A key is a model family: a model matches the longest key
//! it starts with after normalisation ([`normalize_model`]). Entries of the file add to or
//! replace the embedded ones; its `as_of`, when given, replaces the embedded date.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::IngestError;

/// Embedded default table (`prices/models.json`).
const EMBEDDED: &str = include_str!("../prices/models.json");

/// Tokens of one record by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Tokens written to the prompt cache.
    pub cache_creation: u64,
    /// Tokens read from the prompt cache.
    pub cache_read: u64,
}

impl Tokens {
    /// Sum of all kinds.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_creation + self.cache_read
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Tokens) {
        self.input += o.input;
        self.output += o.output;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
    }
}

/// USD per million tokens for one model family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Uncached input.
    pub input: f64,
    /// Output.
    pub output: f64,
    /// Cache write.
    #[serde(default)]
    pub cache_creation: f64,
    /// Cache read.
    #[serde(default)]
    pub cache_read: f64,
}

impl Price {
    /// Cost in USD of `t` at this price.
    pub fn cost(&self, t: &Tokens) -> f64 {
        (t.input as f64 * self.input
            + t.output as f64 * self.output
            + t.cache_creation as f64 * self.cache_creation
            + t.cache_read as f64 * self.cache_read)
            / 1_000_000.0
    }
}

#[derive(Deserialize)]
struct TableFile {
    #[serde(default)]
    as_of: Option<String>,
    models: BTreeMap<String, Price>,
}

/// A price table: model family → price. Lookups normalise the model name first.
#[derive(Debug, Clone)]
pub struct PriceTable {
    // Sorted longest key first so the first prefix match is the most specific one.
    entries: Vec<(String, Price)>,
    as_of: Option<String>,
    origin: String,
}

impl PriceTable {
    /// The embedded table.
    pub fn embedded() -> PriceTable {
        // The embedded file is part of the build and covered by a test; failing here is a bug.
        Self::parse(EMBEDDED, "<embedded>").unwrap_or(PriceTable {
            entries: Vec::new(),
            as_of: None,
            origin: "<embedded>".into(),
        })
    }

    /// The embedded table with entries from `path` added or replaced.
    pub fn with_override(path: &Path) -> Result<PriceTable, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        let over = Self::parse(&text, &path.display().to_string())?;
        let mut t = Self::embedded();
        t.origin = format!("embedded + {}", path.display());
        if over.as_of.is_some() {
            t.as_of = over.as_of;
        }
        for (k, p) in over.entries {
            t.entries.retain(|(k2, _)| *k2 != k);
            t.entries.push((k, p));
        }
        t.sort();
        Ok(t)
    }

    fn parse(text: &str, origin: &str) -> Result<PriceTable, IngestError> {
        let f: TableFile = serde_json::from_str(text).map_err(|e| IngestError::json(origin, e))?;
        let mut entries = Vec::new();
        for (k, p) in f.models {
            for (name, v) in [
                ("input", p.input),
                ("output", p.output),
                ("cache_creation", p.cache_creation),
                ("cache_read", p.cache_read),
            ] {
                if !v.is_finite() || v < 0.0 {
                    return Err(IngestError::Prices {
                        origin: origin.to_string(),
                        detail: format!("model {k:?} has {name} price {v}"),
                    });
                }
            }
            entries.push((normalize_model(&k), p));
        }
        let mut t = PriceTable {
            entries,
            as_of: f.as_of,
            origin: origin.to_string(),
        };
        t.sort();
        Ok(t)
    }

    /// The date the prices were taken (`as_of`), when the table says.
    pub fn as_of(&self) -> Option<&str> {
        self.as_of.as_deref()
    }

    /// Where the table came from (`<embedded>`, or `embedded + <file>`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// All (normalised family, price) entries, sorted by family.
    pub fn entries(&self) -> Vec<(&str, Price)> {
        let mut v: Vec<(&str, Price)> =
            self.entries.iter().map(|(k, p)| (k.as_str(), *p)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    }

    /// Price of `model`, or `None` for models the table does not know (reports mark their cost
    /// as unknown, never as $0).
    pub fn lookup(&self, model: &str) -> Option<Price> {
        let m = normalize_model(model);
        self.entries
            .iter()
            .find(|(k, _)| m.starts_with(k.as_str()))
            .map(|(_, p)| *p)
    }
}

/// Lower case, without a `provider/` prefix, dots turned into dashes (`claude-haiku-4.5` and
/// `claude-haiku-4-5-20251001` both become `claude-haiku-4-5…`).
pub fn normalize_model(model: &str) -> String {
    let m = model.rsplit('/').next().unwrap_or(model);
    let m = m.strip_prefix("anthropic.").unwrap_or(m);
    m.to_ascii_lowercase().replace('.', "-")
}

/// Provider recorded for a cost the price table estimated (not one the caller measured).
pub const TABLE_PROVIDER: &str = "agentos-price-table";

/// Where a turn's cost came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Estimate {
    /// The caller gave one.
    Given,
    /// Estimated from the table.
    FromTable {
        /// The estimate (USD).
        usd: f64,
        /// The table's date.
        as_of: String,
    },
    /// Neither: the model has no price.
    Unpriced,
}

/// Fills in the cost of a turn (`agentos ccc turn` and the Python `log_event` without a cost) that has none from `table`, marked as estimated by its provider
/// ([`TABLE_PROVIDER`]) and the unit prices used (USD per million tokens, and the table's date
/// as `as_of_yyyymmdd`).
pub fn estimate_turn_cost(t: &mut agentos_core::event::TurnEvent, table: &PriceTable) -> Estimate {
    if t.cost.is_some() {
        return Estimate::Given;
    }
    let Some(p) = table.lookup(&t.turn.model) else {
        return Estimate::Unpriced;
    };
    let tokens = Tokens {
        input: t.turn.tokens_in,
        output: t.turn.tokens_out,
        cache_creation: t.turn.cache_creation_tokens.unwrap_or(0),
        cache_read: t.turn.cache_read_tokens.unwrap_or(0),
    };
    let usd = p.cost(&tokens);
    let mut unit = std::collections::BTreeMap::from([
        ("input_usd_per_mtok".to_string(), p.input),
        ("output_usd_per_mtok".to_string(), p.output),
        ("cache_creation_usd_per_mtok".to_string(), p.cache_creation),
        ("cache_read_usd_per_mtok".to_string(), p.cache_read),
    ]);
    let as_of = table.as_of().unwrap_or("unknown").to_string();
    if let Ok(d) = as_of.replace('-', "").parse::<u32>() {
        unit.insert("as_of_yyyymmdd".to_string(), f64::from(d));
    }
    t.cost = Some(agentos_core::event::Cost {
        provider: TABLE_PROVIDER.to_string(),
        estimated_usd: usd,
        unit_costs: Some(unit),
    });
    Estimate::FromTable { usd, as_of }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_and_prefers_the_most_specific_family() {
        let t = PriceTable::embedded();
        assert!(t.entries.len() >= 10);
        let opus41 = t.lookup("claude-opus-4-1-20250805").expect("priced");
        assert_eq!(opus41.output, 75.0);
        let opus45 = t.lookup("claude-opus-4-5-20251101").expect("priced");
        assert_eq!(opus45.output, 25.0);
        assert_eq!(t.lookup("claude-haiku-4.5").expect("priced").input, 1.0);
        assert_eq!(
            t.lookup("anthropic/claude-3-5-haiku-20241022")
                .expect("priced")
                .input,
            0.8
        );
        assert_eq!(t.lookup("glm-4.6").expect("priced").output, 2.2);
        assert_eq!(t.lookup("zai/glm-4.5-air").expect("priced").input, 0.2);
        assert_eq!(t.lookup("gpt-5-codex").expect("priced").cache_read, 0.125);
        assert_eq!(t.lookup("gpt-5.1-codex-mini").expect("priced").input, 0.25);
        assert_eq!(
            t.lookup("gpt-5-mini-2025-08-07").expect("priced").input,
            0.25
        );
        assert_eq!(t.as_of(), Some("2026-12-01"));
        assert!(t.lookup("unknown").is_none());
        assert!(t.lookup("some-local-model").is_none());
    }

    #[test]
    fn cost_is_per_million_tokens() {
        let p = Price {
            input: 3.0,
            output: 15.0,
            cache_creation: 3.75,
            cache_read: 0.3,
        };
        let t = Tokens {
            input: 1_000_000,
            output: 1_000_000,
            cache_creation: 0,
            cache_read: 2_000_000,
        };
        assert!((p.cost(&t) - 18.6).abs() < 1e-9);
    }
}
