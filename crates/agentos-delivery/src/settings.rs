//! Resolved uploader settings, and the live tier handle.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use agentos_config::{Config, DeliveryConfig};
use agentos_core::privacy::RedactionPolicy;
use agentos_core::tier::Tier;

use crate::error::DeliveryError;

/// Everything the uploader needs, resolved from flags, environment and config file.
#[derive(Clone)]
pub struct Settings {
    /// The data dir holding `windows.jsonl`.
    pub data_dir: PathBuf,
    /// Collector base URL (`http://…` or `https://…`); required only when something may leave.
    pub url: Option<String>,
    /// Bearer API key.
    pub api_key: Option<String>,
    /// A tier given explicitly (flag, `AGENTOS_TIER`, `[ccc] tier`): events recorded under a
    /// higher tier are held back for a later run. `None`: each event leaves under the tier it
    /// was recorded under. Either way bounded by [`Settings::license_ceiling`] and
    /// `DO_NOT_TRACK` ([`Settings::cap`]).
    pub tier: Option<Tier>,
    /// The highest tier the license in force entitles (`local` without a valid license).
    pub license_ceiling: Tier,
    /// `DO_NOT_TRACK` is set: nothing leaves, everything shareable stays pending.
    pub do_not_track: bool,
    /// Redaction refinements (metadata allowlist).
    pub policy: RedactionPolicy,
    /// The combined license pack JSON, sent base64-encoded in `X-AgentOS-License`.
    pub license_pack: Option<Vec<u8>>,
    /// This data dir's device id (`X-AgentOS-Device`, `device_id` of batches).
    pub device_id: String,
    /// This machine's value for device-bound license packs (`X-AgentOS-Device-Binding`; empty:
    /// not sent).
    pub device_binding: String,
    /// Most events per `/v1/events` request.
    pub batch_max_events: usize,
    /// Most body bytes per request (a single larger event is still sent alone).
    pub batch_max_bytes: usize,
    /// First retry delay.
    pub backoff_min: Duration,
    /// Longest retry delay (a server's `Retry-After` may ask for more, up to an hour).
    pub backoff_max: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How often the background uploader looks for new log lines when nobody nudges it.
    pub poll_interval: Duration,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key must never reach logs.
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tier", &self.tier)
            .field("license_ceiling", &self.license_ceiling)
            .field("do_not_track", &self.do_not_track)
            .field("device_id", &self.device_id)
            .field("license_pack", &self.license_pack.as_ref().map(Vec::len))
            .field("batch_max_events", &self.batch_max_events)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Defaults for `data_dir`: no explicit tier, no license (so a cap of `local`: nothing
    /// leaves) and no URL.
    pub fn new(data_dir: impl Into<PathBuf>, device_id: impl Into<String>) -> Settings {
        let d = DeliveryConfig::default();
        Settings {
            data_dir: data_dir.into(),
            url: None,
            api_key: None,
            tier: None,
            license_ceiling: Tier::Local,
            do_not_track: false,
            policy: RedactionPolicy::default(),
            license_pack: None,
            device_id: device_id.into(),
            device_binding: String::new(),
            batch_max_events: d.batch_max_events,
            batch_max_bytes: d.batch_max_bytes,
            backoff_min: Duration::from_millis(d.backoff_min_ms),
            backoff_max: Duration::from_millis(d.backoff_max_ms),
            timeout: Duration::from_millis(d.timeout_ms),
            poll_interval: Duration::from_secs(1),
        }
    }

    /// The highest tier anything may leave under: the explicit tier (or `full` when none was
    /// given, so each event's recorded tier decides), bounded by the license and by
    /// `DO_NOT_TRACK`.
    pub fn cap(&self) -> Tier {
        if self.do_not_track {
            return Tier::Local;
        }
        self.tier.unwrap_or(Tier::Full).min(self.license_ceiling)
    }

    /// Settings from a loaded configuration (which already applied env overrides and
    /// `DO_NOT_TRACK`); creates the device id on first use.
    ///
    /// # Errors
    /// When the device id cannot be read or created, or (unless the tier is `local`) the
    /// configured license pack cannot be read.
    pub fn from_config(cfg: &Config) -> Result<Settings, DeliveryError> {
        let device_id = cfg.device_id()?;
        let mut s = Settings::new(cfg.data_dir.clone(), device_id);
        s.url = cfg.ccc.url.clone();
        s.api_key = cfg.ccc.api_key.clone();
        s.tier = cfg.ccc.tier;
        s.do_not_track = cfg.do_not_track;
        s.device_binding = cfg.device_binding();
        s.policy = RedactionPolicy {
            metadata_allowlist: cfg.privacy.metadata_allowlist.iter().cloned().collect(),
        };
        // A license problem never loses anything: it lowers the cap, so shareable events are
        // held back until a valid license is in force again. The loader already resolved a
        // relative pack path (the one rule in agentos-config), so this reads the same file as
        // the recorder's session-start check.
        match cfg.license_in_force(jiff::Timestamp::now().as_second()) {
            Ok(in_force) => {
                s.license_ceiling = license_ceiling(&in_force.license);
                s.license_pack = Some(in_force.combined);
            }
            Err(problem) => {
                tracing::debug!(%problem, "no valid license in force; shareable events are held back until there is one");
            }
        }
        let d = &cfg.delivery;
        s.batch_max_events = d.batch_max_events.max(1);
        s.batch_max_bytes = d.batch_max_bytes.max(1024);
        s.backoff_min = Duration::from_millis(d.backoff_min_ms.max(1));
        s.backoff_max = Duration::from_millis(d.backoff_max_ms.max(d.backoff_min_ms).max(1));
        s.timeout = Duration::from_millis(d.timeout_ms.max(1));
        Ok(s)
    }
}

/// The highest tier a verified license entitles.
pub fn license_ceiling(lic: &agentos_core::license::VerifiedLicense) -> Tier {
    Tier::ALL
        .into_iter()
        .rev()
        .find(|t| t.required_entitlement().is_none_or(|e| lic.has(e)))
        .unwrap_or(Tier::Local)
}

/// A shared, live view of the tier in force; lowering it stops pending uploads above it at the
/// next request the uploader builds.
#[derive(Debug, Clone)]
pub struct TierHandle(Arc<AtomicU8>);

impl TierHandle {
    /// A handle starting at `tier`.
    pub fn new(tier: Tier) -> TierHandle {
        TierHandle(Arc::new(AtomicU8::new(encode(tier))))
    }

    /// The tier in force now.
    pub fn get(&self) -> Tier {
        match self.0.load(Ordering::SeqCst) {
            2 => Tier::Full,
            1 => Tier::Minimized,
            _ => Tier::Local,
        }
    }

    /// Changes the tier in force.
    pub fn set(&self, tier: Tier) {
        self.0.store(encode(tier), Ordering::SeqCst);
    }
}

fn encode(t: Tier) -> u8 {
    match t {
        Tier::Local => 0,
        Tier::Minimized => 1,
        Tier::Full => 2,
    }
}
