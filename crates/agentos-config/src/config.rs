//! Configuration: data dir resolution, `agentos.toml` loading and `AGENTOS_*` overrides.
//!
//! Precedence, highest first: command-line flags (the CLI passes them in as the explicit
//! arguments of [`Config::load`]), environment (`AGENTOS_*`), the config file, built-in defaults.
//! `DO_NOT_TRACK=1` beats everything and forces the tier to `local`.
//!
//! Where things live:
//! - data dir: explicit `--data-dir`, else `$AGENTOS_DATA_DIR`, else `$XDG_DATA_HOME/agentos`,
//!   else `~/.local/share/agentos`;
//! - config file: explicit `--config` (must exist), else `$AGENTOS_CONFIG` (must exist), else
//!   `$XDG_CONFIG_HOME/agentos/agentos.toml` (or `~/.config/agentos/agentos.toml`) when it exists,
//!   else `<data_dir>/agentos.toml` when it exists, else no file (defaults).
//!
//! Relative paths: a path given by a flag or an environment variable is resolved against the
//! current working directory; a path written in the config file is resolved against the config
//! file's directory. [`Env::resolve_path`] is the one place that applies this rule, and the
//! loader stores the license pack path already resolved (absolute).
//!
//! Every key is documented once in `docs/configuration.md`. Unknown keys in every section are
//! rejected: a typo must not silently disable a privacy setting.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use agentos_core::tier::Tier;
use serde::{Deserialize, Serialize};

use crate::durable;
use crate::layout::{CONFIG_FILE, DataDir};

/// Errors while resolving the data dir or loading the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a data dir flag, `AGENTOS_DATA_DIR`, `XDG_DATA_HOME` nor `HOME` is set.
    #[error(
        "no data dir: pass --data-dir or set AGENTOS_DATA_DIR (HOME and XDG_DATA_HOME are unset)"
    )]
    NoDataDir,
    /// An explicitly named config file does not exist.
    #[error("config file {path} does not exist")]
    Missing {
        /// The file that was asked for.
        path: PathBuf,
    },
    /// The config file could not be read.
    #[error("reading config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has a bad key/value (the message names line and key).
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// An environment variable has a value that cannot be used.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        /// The variable name.
        var: String,
        /// Its value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The device id file could not be read or created.
    #[error("device id file {path}")]
    DeviceId {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The device id file exists but does not hold a UUID.
    #[error("device id file {path} holds {content:?}, not a uuid")]
    BadDeviceId {
        /// The file.
        path: PathBuf,
        /// What it holds (trimmed).
        content: String,
    },
}

impl ConfigError {
    /// Stable snake_case code for logs and reports.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::NoDataDir => "no_data_dir",
            ConfigError::Missing { .. } => "config_missing",
            ConfigError::Read { .. } => "config_read",
            ConfigError::Parse { .. } => "config_parse",
            ConfigError::Env { .. } => "config_env",
            ConfigError::DeviceId { .. } => "device_id_io",
            ConfigError::BadDeviceId { .. } => "device_id_invalid",
        }
    }
}

/// The whole resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The resolved data dir (not created by loading).
    pub data_dir: PathBuf,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// True when `DO_NOT_TRACK` was set to a truthy value (then `ccc.tier` is `local`).
    pub do_not_track: bool,
    /// `[ccc]`: where and how to talk to the control center.
    pub ccc: CccConfig,
    /// `[privacy]`: what may leave besides the fixed tier table.
    pub privacy: PrivacyConfig,
    /// `[license]`: which pack to load and which keys to trust.
    pub license: LicenseConfig,
    /// `[delivery]`: batching, retry and timeout knobs of the uploader.
    pub delivery: DeliveryConfig,
    /// `[recorder]`: local log durability.
    pub recorder: RecorderConfig,
    /// `[collector]`: `agentos ccc serve` and `agentos ccc keys`.
    pub collector: CollectorConfig,
    /// `[ingest]`: `agentos ccc ingest`, `backfill` and `report`.
    pub ingest: IngestConfig,
}

/// `[ccc]` section.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CccConfig {
    /// Base URL of the collector (e.g. `http://127.0.0.1:8787`); `AGENTOS_CCC_URL`.
    pub url: Option<String>,
    /// Bearer API key for the collector; `AGENTOS_CCC_API_KEY`. Never printed.
    pub api_key: Option<String>,
    /// Privacy tier; `AGENTOS_TIER`. New sessions record under it (default `local`, see
    /// [`CccConfig::session_tier`]). For delivery it is an explicit cap: events recorded under a
    /// higher tier are held back; unset, each event leaves under the tier it was recorded under.
    pub tier: Option<Tier>,
}

impl CccConfig {
    /// The tier new sessions ask for: the configured one, else `local`.
    pub fn session_tier(&self) -> Tier {
        self.tier.unwrap_or(Tier::Local)
    }
}

impl fmt::Debug for CccConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The API key must never reach logs, even at debug level.
        f.debug_struct("CccConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("tier", &self.tier)
            .finish()
    }
}

/// `[privacy]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// `session.metadata` keys that may leave under tier `full` (all others are dropped).
    pub metadata_allowlist: Vec<String>,
}

/// `[license]` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LicenseConfig {
    /// License pack file (combined `{"license":…,"signature":…}` JSON, or the claims file of a
    /// split pack with its `.sig` next to it, read by [`crate::license::LicensePack`]);
    /// `AGENTOS_LICENSE_PACK`. After loading it is absolute: a relative path from the file is
    /// resolved against the config file's directory, one from the environment or a flag against
    /// the working directory.
    pub pack: Option<PathBuf>,
    /// Trusted public keys, kid → standard base64 of the 32-byte Ed25519 key;
    /// `AGENTOS_LICENSE_PUBKEYS="kid=base64,…"` adds to (and overrides) these.
    pub pubkeys: BTreeMap<String, String>,
    /// This machine's device name for device-bound packs; `AGENTOS_DEVICE`.
    pub device: Option<String>,
}

/// `[delivery]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Most events in one `/v1/events` request. Default 500 (the collector accepts 1000).
    pub batch_max_events: usize,
    /// Most body bytes in one request. Default 524288 (the collector accepts 1 MiB).
    pub batch_max_bytes: usize,
    /// First retry delay. Default 500 ms.
    pub backoff_min_ms: u64,
    /// Longest retry delay. Default 60000 ms.
    pub backoff_max_ms: u64,
    /// Per-request timeout. Default 10000 ms.
    pub timeout_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            batch_max_events: 500,
            batch_max_bytes: 512 * 1024,
            backoff_min_ms: 500,
            backoff_max_ms: 60_000,
            timeout_ms: 10_000,
        }
    }
}

/// `[recorder]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    /// `sync_data` every append to `windows.jsonl` before reporting it recorded. Default off:
    /// an append survives a process crash (it is in the page cache) but not a power loss.
    pub fsync: bool,
    /// A long-running recorder rewrites `metrics_summary.json` and `rollup_state.json` at most
    /// this often (and always at session start/end, on flush and when dropped). Default 100 ms;
    /// 0 = after every record. Replacing a file by rename costs ~0.5 ms on ext4, ten times the
    /// per-turn budget, so a busy recorder coalesces it.
    pub refresh_interval_ms: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            fsync: false,
            refresh_interval_ms: 100,
        }
    }
}

/// `[collector]` section: the collector run by `agentos ccc serve` (flags and
/// `AGENTOS_COLLECTOR_*` win; the CLI applies them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Listen address; `--listen` / `AGENTOS_COLLECTOR_LISTEN`. Default `127.0.0.1:8082`.
    pub listen: Option<SocketAddr>,
    /// Database URL, `sqlite:PATH` or `postgres://…`; `--database` /
    /// `AGENTOS_COLLECTOR_DATABASE`. Default `sqlite:<data_dir>/collector.db`.
    pub database: Option<String>,
    /// Budgets for `/v1/usage`, a `ccp.quotas.v1` JSON file; `--quotas` /
    /// `AGENTOS_COLLECTOR_QUOTAS`. Default: the CCC defaults.
    pub quotas: Option<PathBuf>,
    /// Largest accepted request body in bytes; `--body-limit`. Default 1048576.
    pub body_limit: Option<usize>,
    /// Most events per batch; `--batch-limit`. Default 1000.
    pub batch_limit: Option<usize>,
    /// PostgreSQL pool size; `--max-connections`. Default 16.
    pub max_connections: Option<u32>,
    /// Most open client connections (503 beyond); `--max-client-connections`. Default 1024.
    pub max_client_connections: Option<usize>,
    /// Most request bodies in memory at once (503 beyond); `--max-inflight-bodies`. Default 32.
    pub max_inflight_bodies: Option<usize>,
    /// Mark dashboard cookies `Secure` on every response (a collector only reachable over
    /// TLS); `--secure-cookies`. Default false: `Secure` only when the proxy sends
    /// `X-Forwarded-Proto: https`.
    pub secure_cookies: Option<bool>,
    /// Listen address of the OpenTelemetry (OTLP/HTTP) receiver; `--otlp-listen` /
    /// `AGENTOS_COLLECTOR_OTLP_LISTEN`. Default: none (no OTLP receiver). See
    /// `docs/opentelemetry.md`.
    pub otlp_listen: Option<SocketAddr>,
    /// Largest OTLP request body in bytes, compressed and after decompression;
    /// `--otlp-body-limit`. Default 8388608.
    pub otlp_body_limit: Option<usize>,
    /// Most OTLP requests processed at once (429 beyond); `--otlp-max-inflight`. Default 4.
    pub otlp_max_inflight: Option<usize>,
}

/// `[ingest]` section: `agentos ccc ingest`, `backfill` and `report` (flags win).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Worker threads, 0 = all cores; `--threads`. Default 0.
    pub threads: Option<usize>,
    /// Price table override file (same JSON shape as the embedded table); `--prices`.
    /// Default: the embedded table.
    pub prices: Option<PathBuf>,
    /// Time zone of report calendar buckets (IANA name, `UTC` or `local`); `--timezone`.
    /// Default `local` (the system zone, printed by its IANA name).
    pub timezone: Option<String>,
    /// First day of a week in weekly reports (`monday` … `sunday`); `--start-of-week`.
    /// Default `monday`.
    pub start_of_week: Option<String>,
}

/// The file as written by users: every section optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    ccc: CccConfig,
    privacy: PrivacyConfig,
    license: LicenseConfig,
    delivery: DeliveryConfig,
    recorder: RecorderConfig,
    collector: CollectorConfig,
    ingest: IngestConfig,
}

/// Where a path setting came from, which decides what a relative path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathOrigin<'a> {
    /// A command-line flag or argument: relative to the working directory.
    Flag,
    /// An environment variable: relative to the working directory.
    Env,
    /// A key in this config file: relative to the file's directory.
    ConfigFile(&'a Path),
}

/// A snapshot of the environment variables the loader reads, so tests can inject their own
/// (mutating the process environment is `unsafe` in edition 2024 and racy across test threads).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
}

impl Env {
    /// The variables of this process (only the ones the loader cares about).
    pub fn from_process() -> Self {
        let vars = ENV_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Env {
            vars,
            cwd: std::env::current_dir().ok(),
        }
    }

    /// An environment with exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd: None,
        }
    }

    /// The same environment with `cwd` as the working directory relative flag and environment
    /// paths are resolved against (so tests need not change the process's directory).
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// The value of `var`, treating an empty value as unset.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Resolves `path` by the one rule for relative paths: flag and environment values are
    /// relative to the working directory, config file values to the config file's directory.
    /// Absolute paths are returned as they are. The result is absolute whenever the working
    /// directory is known (or the config file path is absolute), so nobody resolves it twice.
    pub fn resolve_path(&self, path: &Path, origin: PathOrigin<'_>) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let base = match origin {
            PathOrigin::Flag | PathOrigin::Env => self.cwd.clone(),
            PathOrigin::ConfigFile(file) => {
                let dir = file.parent().unwrap_or(Path::new(""));
                match &self.cwd {
                    Some(cwd) => Some(cwd.join(dir)),
                    None => Some(dir.to_path_buf()),
                }
            }
        };
        match base {
            Some(base) => base.join(path),
            None => path.to_path_buf(),
        }
    }
}

/// Every environment variable [`Config::load`] reads.
pub const ENV_VARS: &[&str] = &[
    "AGENTOS_DATA_DIR",
    "AGENTOS_CONFIG",
    "AGENTOS_CCC_URL",
    "AGENTOS_CCC_API_KEY",
    "AGENTOS_TIER",
    "AGENTOS_LICENSE_PACK",
    "AGENTOS_LICENSE_PUBKEYS",
    "AGENTOS_DEVICE",
    "DO_NOT_TRACK",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "HOME",
];

impl Config {
    /// Loads the configuration from the process environment and the config file.
    ///
    /// `data_dir` and `config_path` are the command-line flags (they win over everything).
    ///
    /// # Errors
    /// [`ConfigError`] when no data dir can be resolved, an explicit config file is missing, the
    /// file does not parse (message names line and key), or an `AGENTOS_*` value is unusable.
    pub fn load(
        data_dir: Option<&Path>,
        config_path: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        Self::load_with_env(data_dir, config_path, &Env::from_process())
    }

    /// [`Config::load`] with an explicit environment.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with_env(
        data_dir: Option<&Path>,
        config_path: Option<&Path>,
        env: &Env,
    ) -> Result<Config, ConfigError> {
        let data_dir = resolve_data_dir(data_dir, env)?;
        let config_file = resolve_config_file(config_path, &data_dir, env)?;
        let file = match &config_file {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        let mut cfg = Config {
            data_dir,
            config_file,
            do_not_track: false,
            ccc: file.ccc,
            privacy: file.privacy,
            license: file.license,
            delivery: file.delivery,
            recorder: file.recorder,
            collector: file.collector,
            ingest: file.ingest,
        };
        if let (Some(pack), Some(file)) = (&cfg.license.pack, &cfg.config_file) {
            cfg.license.pack = Some(env.resolve_path(pack, PathOrigin::ConfigFile(file)));
        }
        cfg.apply_env(env)?;
        Ok(cfg)
    }

    /// Applies a license pack given by a flag (it beats the environment and the file); a
    /// relative path is resolved against `env`'s working directory.
    pub fn set_license_pack_flag(&mut self, flag: &Path, env: &Env) {
        self.license.pack = Some(env.resolve_path(flag, PathOrigin::Flag));
    }

    /// Defaults only (no file, no environment) for the given data dir. Handy in tests.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        let f = FileConfig::default();
        Config {
            data_dir: data_dir.into(),
            config_file: None,
            do_not_track: false,
            ccc: f.ccc,
            privacy: f.privacy,
            license: f.license,
            delivery: f.delivery,
            recorder: f.recorder,
            collector: f.collector,
            ingest: f.ingest,
        }
    }

    fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        if let Some(v) = env.get("AGENTOS_CCC_URL") {
            self.ccc.url = Some(v.to_string());
        }
        if let Some(v) = env.get("AGENTOS_CCC_API_KEY") {
            self.ccc.api_key = Some(v.to_string());
        }
        if let Some(v) = env.get("AGENTOS_TIER") {
            self.ccc.tier = Some(v.parse::<Tier>().map_err(|_| ConfigError::Env {
                var: "AGENTOS_TIER".into(),
                value: v.into(),
                reason: "expected local, minimized or full".into(),
            })?);
        }
        if let Some(v) = env.get("AGENTOS_LICENSE_PACK") {
            self.license.pack = Some(env.resolve_path(Path::new(v), PathOrigin::Env));
        }
        if let Some(v) = env.get("AGENTOS_LICENSE_PUBKEYS") {
            for (kid, key) in parse_pubkeys_env(v)? {
                self.license.pubkeys.insert(kid, key);
            }
        }
        if let Some(v) = env.get("AGENTOS_DEVICE") {
            self.license.device = Some(v.to_string());
        }
        if let Some(v) = env.get("DO_NOT_TRACK")
            && is_truthy(v)
        {
            self.do_not_track = true;
            self.ccc.tier = Some(Tier::Local);
        }
        Ok(())
    }

    /// The resolved data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The data dir's layout (every file name in it).
    pub fn layout(&self) -> DataDir {
        DataDir::new(&self.data_dir)
    }

    /// This device's id (a UUID in `<data_dir>/device_id`, created on first use).
    ///
    /// # Errors
    /// As [`device_id`].
    pub fn device_id(&self) -> Result<String, ConfigError> {
        device_id(&self.data_dir)
    }

    /// This machine's value for device-bound license packs: `[license] device`
    /// (`AGENTOS_DEVICE`) when set, else the [`machine_fingerprint`], else empty (a device-bound
    /// pack then does not verify here).
    pub fn device_binding(&self) -> String {
        self.license
            .device
            .clone()
            .or_else(machine_fingerprint)
            .unwrap_or_default()
    }
}

/// A stable, privacy-preserving fingerprint of this machine for device-bound licenses:
/// `fp-` and the first 32 hex digits of SHA-256 over a fixed agentos salt and the OS machine id
/// (`/etc/machine-id`, else `/var/lib/dbus/machine-id`). The salt makes the value useless for
/// joining with other tools' data and the hash never reveals the id; the raw id is never stored
/// or sent. `None` when the machine has no id.
pub fn machine_fingerprint() -> Option<String> {
    use sha2::{Digest, Sha256};
    let id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())?;
    let digest = Sha256::digest(format!("agentos-device-fingerprint-v1\0{id}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Some(format!("fp-{hex}"))
}

fn is_truthy(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off"
    )
}

/// Parses `AGENTOS_LICENSE_PUBKEYS` (`kid=base64,kid2=base64`). The key text is kept as is; the
/// keyring parser checks the base64 and key length.
fn parse_pubkeys_env(v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    // One rule for both sides of the CCC bridge: `kid=base64` or plain base64 (`env_<n>`).
    agentos_core::license::parse_pubkey_list(v).map_err(|e| ConfigError::Env {
        var: "AGENTOS_LICENSE_PUBKEYS".into(),
        value: v.into(),
        reason: e.to_string(),
    })
}

/// Resolves the data dir: flag, `AGENTOS_DATA_DIR`, `$XDG_DATA_HOME/agentos`,
/// `~/.local/share/agentos`.
///
/// # Errors
/// [`ConfigError::NoDataDir`] when none of them is available.
pub fn resolve_data_dir(flag: Option<&Path>, env: &Env) -> Result<PathBuf, ConfigError> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = env.get("AGENTOS_DATA_DIR") {
        return Ok(PathBuf::from(p));
    }
    // XDG says relative values must be ignored.
    if let Some(p) = env.get("XDG_DATA_HOME").map(PathBuf::from)
        && p.is_absolute()
    {
        return Ok(p.join("agentos"));
    }
    if let Some(home) = env.get("HOME") {
        return Ok(Path::new(home).join(".local/share/agentos"));
    }
    Err(ConfigError::NoDataDir)
}

fn resolve_config_file(
    flag: Option<&Path>,
    data_dir: &Path,
    env: &Env,
) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = flag
        .map(Path::to_path_buf)
        .or(env.get("AGENTOS_CONFIG").map(PathBuf::from))
    {
        if !p.is_file() {
            return Err(ConfigError::Missing { path: p });
        }
        return Ok(Some(p));
    }
    let xdg = env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".config")));
    if let Some(dir) = xdg {
        let p = dir.join("agentos").join(CONFIG_FILE);
        if p.is_file() {
            return Ok(Some(p));
        }
    }
    let p = DataDir::new(data_dir).config_file();
    if p.is_file() {
        return Ok(Some(p));
    }
    Ok(None)
}

fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

fn parse_str(text: &str) -> Result<FileConfig, String> {
    toml::from_str::<FileConfig>(text).map_err(|e| e.to_string().trim_end().to_string())
}

/// Returns this device's id from `<data_dir>/device_id`, creating it (a UUIDv7) on first use.
///
/// Creation is race-free across processes: the id is written to a temp file and hard-linked
/// into place, so the first writer wins and everyone else reads the winner's id.
///
/// # Errors
/// [`ConfigError::DeviceId`] on I/O failure, [`ConfigError::BadDeviceId`] when the file holds
/// something that is not a UUID.
pub fn device_id(data_dir: &Path) -> Result<String, ConfigError> {
    let path = DataDir::new(data_dir).device_id();
    let io = |source| ConfigError::DeviceId {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => return check_device_id(&path, &s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let id = uuid::Uuid::now_v7().to_string();
    durable::create_once(&path, format!("{id}\n").as_bytes()).map_err(io)?;
    let s = std::fs::read_to_string(&path).map_err(io)?;
    check_device_id(&path, &s)
}

fn check_device_id(path: &Path, s: &str) -> Result<String, ConfigError> {
    let t = s.trim();
    match uuid::Uuid::parse_str(t) {
        Ok(u) => Ok(u.to_string()),
        Err(_) => Err(ConfigError::BadDeviceId {
            path: path.to_path_buf(),
            content: t.chars().take(80).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn data_dir_flag_beats_env_which_beats_xdg_which_beats_home() {
        let e = env(&[
            ("AGENTOS_DATA_DIR", "/a"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            resolve_data_dir(Some(Path::new("/f")), &e).ok(),
            Some("/f".into())
        );
        assert_eq!(resolve_data_dir(None, &e).ok(), Some("/a".into()));
        let e = env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(resolve_data_dir(None, &e).ok(), Some("/x/agentos".into()));
        let e = env(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            resolve_data_dir(None, &e).ok(),
            Some("/h/.local/share/agentos".into())
        );
        assert!(matches!(
            resolve_data_dir(None, &env(&[])),
            Err(ConfigError::NoDataDir)
        ));
    }

    #[test]
    fn file_then_env_then_do_not_track() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            r#"
[ccc]
url = "http://file"
tier = "full"
[license]
pack = "lic/pack.json"
pubkeys = { k1 = "AAAA" }
[delivery]
batch_max_events = 7
[recorder]
fsync = true
[collector]
listen = "127.0.0.1:1"
otlp_listen = "127.0.0.1:4318"
[ingest]
threads = 3
"#,
        )
        .expect("write");
        let d = dir.path();
        let cfg = Config::load_with_env(Some(d), None, &env(&[])).expect("load");
        assert_eq!(
            cfg.config_file.as_deref(),
            Some(d.join(CONFIG_FILE).as_path())
        );
        assert_eq!(cfg.ccc.tier, Some(Tier::Full));
        assert_eq!(cfg.ccc.url.as_deref(), Some("http://file"));
        assert_eq!(cfg.license.pack, Some(d.join("lic/pack.json")));
        assert_eq!(cfg.delivery.batch_max_events, 7);
        assert_eq!(cfg.delivery.timeout_ms, 10_000);
        assert!(cfg.recorder.fsync);
        assert_eq!(cfg.ingest.threads, Some(3));
        assert_eq!(cfg.collector.listen, "127.0.0.1:1".parse().ok());
        assert_eq!(cfg.collector.otlp_listen, "127.0.0.1:4318".parse().ok());

        let e = env(&[
            ("AGENTOS_CCC_URL", "http://env"),
            ("AGENTOS_TIER", "minimized"),
            ("AGENTOS_LICENSE_PUBKEYS", "k1=BBB=,k2=CCC=="),
            ("AGENTOS_DEVICE", "laptop"),
        ]);
        let cfg = Config::load_with_env(Some(d), None, &e).expect("load");
        assert_eq!(cfg.ccc.url.as_deref(), Some("http://env"));
        assert_eq!(cfg.ccc.tier, Some(Tier::Minimized));
        assert_eq!(
            cfg.license.pubkeys.get("k1").map(String::as_str),
            Some("BBB=")
        );
        assert_eq!(
            cfg.license.pubkeys.get("k2").map(String::as_str),
            Some("CCC==")
        );
        assert_eq!(cfg.license.device.as_deref(), Some("laptop"));
        assert!(!cfg.do_not_track);

        let e = env(&[("AGENTOS_TIER", "full"), ("DO_NOT_TRACK", "1")]);
        let cfg = Config::load_with_env(Some(d), None, &e).expect("load");
        assert_eq!(cfg.ccc.tier, Some(Tier::Local));
        assert!(cfg.do_not_track);
    }

    #[test]
    fn typo_in_a_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.toml");
        std::fs::write(&p, "[privacy]\nmetadata_alowlist = [\"a\"]\n").expect("write");
        let err =
            Config::load_with_env(Some(dir.path()), Some(&p), &env(&[])).expect_err("must reject");
        let msg = err.to_string();
        assert!(msg.contains("metadata_alowlist"), "{msg}");
        assert!(msg.contains("x.toml"), "{msg}");
    }

    #[test]
    fn bad_env_values_are_named() {
        let err = Config::load_with_env(
            Some(Path::new("/d")),
            None,
            &env(&[("AGENTOS_TIER", "everything")]),
        )
        .expect_err("must reject");
        assert!(err.to_string().contains("AGENTOS_TIER"));
        let err = Config::load_with_env(
            Some(Path::new("/d")),
            None,
            &env(&[("AGENTOS_LICENSE_PUBKEYS", "nokey")]),
        )
        .expect_err("must reject");
        assert!(err.to_string().contains("nokey"));
    }

    #[test]
    fn explicit_missing_config_is_an_error() {
        let err = Config::load_with_env(
            Some(Path::new("/d")),
            Some(Path::new("/nonexistent/agentos.toml")),
            &env(&[]),
        )
        .expect_err("must reject");
        assert_eq!(err.code(), "config_missing");
    }

    #[test]
    fn device_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = device_id(dir.path()).expect("create");
        let b = device_id(dir.path()).expect("read");
        assert_eq!(a, b);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        std::fs::write(DataDir::new(dir.path()).device_id(), "garbage").expect("write");
        assert_eq!(
            device_id(dir.path()).expect_err("bad").code(),
            "device_id_invalid"
        );
    }

    #[test]
    fn api_key_is_redacted_in_debug() {
        let c = CccConfig {
            api_key: Some("sekrit".into()),
            ..CccConfig::default()
        };
        assert!(!format!("{c:?}").contains("sekrit"));
    }
}
