//! Privacy tiers and the places data could go.
//!
//! [`Tier`] sits in its own module, below [`crate::event`], [`crate::rollup`] and
//! [`crate::privacy`], so the event model can carry a tier without depending on the redaction
//! rules that consume it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much may leave the machine. Ordered from strictest to most open.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Nothing leaves.
    #[default]
    Local,
    /// Only allowlisted aggregate summary fields go to `/v1/metrics`.
    Minimized,
    /// Redacted events go to `/v1/events`, the summary to `/v1/metrics`.
    Full,
}

impl Tier {
    /// Every tier, strictest first.
    pub const ALL: [Tier; 3] = [Tier::Local, Tier::Minimized, Tier::Full];

    /// The wire name (`local`, `minimized`, `full`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Local => "local",
            Tier::Minimized => "minimized",
            Tier::Full => "full",
        }
    }

    /// Whether this tier allows anything to go to `egress`.
    pub fn allows(self, egress: Egress) -> bool {
        match (self, egress) {
            (Tier::Local, _) => false,
            (Tier::Minimized, Egress::Metrics) => true,
            (Tier::Minimized, Egress::Events) => false,
            (Tier::Full, _) => true,
        }
    }

    /// The license entitlement this tier needs, if any.
    pub fn required_entitlement(self) -> Option<crate::license::Entitlement> {
        match self {
            Tier::Local => None,
            Tier::Minimized => Some(crate::license::Entitlement::TelemetryMinimized),
            Tier::Full => Some(crate::license::Entitlement::TelemetryFull),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is not `local`, `minimized` or `full`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown privacy tier {0:?} (expected local, minimized or full)")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Tier::Local),
            "minimized" | "minimised" => Ok(Tier::Minimized),
            "full" => Ok(Tier::Full),
            _ => Err(UnknownTier(s.to_string())),
        }
    }
}

/// Where data would go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Egress {
    /// `POST /v1/events`.
    Events,
    /// `POST /v1/metrics`.
    Metrics,
}
