//! Resolved uploader settings, and the live tier handle.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use agentos_core::privacy::RedactionPolicy;
use agentos_core::tier::Tier;
use agentos_recorder::Config;

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
    /// The tier in force when the uploader starts (change it later through [`TierHandle`]).
    pub tier: Tier,
    /// Redaction refinements (metadata allowlist).
    pub policy: RedactionPolicy,
    /// The combined license pack JSON, sent base64-encoded in `X-AgentOS-License`.
    pub license_pack: Option<Vec<u8>>,
    /// This data dir's device id (`X-AgentOS-Device`, `device_id` of batches).
    pub device_id: String,
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
            .field("device_id", &self.device_id)
            .field("license_pack", &self.license_pack.as_ref().map(Vec::len))
            .field("batch_max_events", &self.batch_max_events)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Defaults for `data_dir` with tier `local` and no URL (nothing leaves).
    pub fn new(data_dir: impl Into<PathBuf>, device_id: impl Into<String>) -> Settings {
        let d = agentos_recorder::config::DeliveryConfig::default();
        Settings {
            data_dir: data_dir.into(),
            url: None,
            api_key: None,
            tier: Tier::Local,
            policy: RedactionPolicy::default(),
            license_pack: None,
            device_id: device_id.into(),
            batch_max_events: d.batch_max_events,
            batch_max_bytes: d.batch_max_bytes,
            backoff_min: Duration::from_millis(d.backoff_min_ms),
            backoff_max: Duration::from_millis(d.backoff_max_ms),
            timeout: Duration::from_millis(d.timeout_ms),
            poll_interval: Duration::from_secs(1),
        }
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
        s.policy = RedactionPolicy {
            metadata_allowlist: cfg.privacy.metadata_allowlist.iter().cloned().collect(),
        };
        if let Some(pack) = &cfg.license.pack {
            let pack = match (&cfg.config_file, pack.is_relative()) {
                (Some(file), true) => file.parent().unwrap_or(Path::new(".")).join(pack),
                _ => pack.clone(),
            };
            s.license_pack = match read_license_pack(&pack) {
                Ok(bytes) => Some(bytes),
                // Under `local` nothing leaves, so a stale pack path must not block anything.
                Err(e) if s.tier == Tier::Local => {
                    tracing::debug!(error = %e, "license pack unreadable; irrelevant under tier local");
                    None
                }
                Err(e) => return Err(e),
            };
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

/// Reads a license pack and returns the combined pack JSON the protocol header carries.
///
/// A combined pack (`{"license":…,"signature":…}`) is sent as stored; for a split pack
/// (`lic.json` + `lic.json.sig`) the claims are spliced in byte for byte, so a signature over the
/// exact stored claim bytes still verifies on the server.
///
/// # Errors
/// When a file cannot be read.
pub fn read_license_pack(path: &Path) -> Result<Vec<u8>, DeliveryError> {
    let bytes =
        std::fs::read(path).map_err(|e| DeliveryError::io("reading license pack", path, e))?;
    let is_combined = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.contains_key("license") && o.contains_key("signature"))
        })
        .unwrap_or(false);
    if is_combined {
        return Ok(bytes);
    }
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    let sig_path = PathBuf::from(sig_path);
    let sig = std::fs::read_to_string(&sig_path)
        .map_err(|e| DeliveryError::io("reading license signature", &sig_path, e))?;
    let claims = String::from_utf8_lossy(&bytes);
    let sig_json = serde_json::Value::String(sig.trim().to_owned()).to_string();
    Ok(format!(
        "{{\"license\":{},\"signature\":{}}}",
        claims.trim(),
        sig_json
    )
    .into_bytes())
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
