//! agentos configuration and the data dir, shared by every crate that touches local files.
//!
//! This crate owns:
//! - [`config`]: the configuration model of every `agentos.toml` section and its loader
//!   (flags > `AGENTOS_*` environment > config file > defaults, `DO_NOT_TRACK` forcing `local`),
//!   including the one rule for relative paths ([`Env::resolve_path`]);
//! - [`layout`]: the name of every file in a data dir ([`DataDir`]);
//! - [`durable`]: atomic replacement, create-once and the cross-process [`FileLock`];
//! - the device id ([`device_id`]);
//! - [`license`]: the one license-pack reader ([`LicensePack`]), the configured keyring and
//!   key-pair files. Verification itself stays in [`agentos_core::license`].
//!
//! It does no networking and starts no runtime; the recorder, delivery, ingest, the collector's
//! CLI and the CLI build on it.

pub mod config;
pub mod durable;
pub mod layout;
pub mod license;

pub use config::{
    CccConfig, CollectorConfig, Config, ConfigError, DeliveryConfig, Env, IngestConfig,
    LicenseConfig, PathOrigin, PrivacyConfig, RecorderConfig, device_id,
};
pub use durable::{FileLock, atomic_write};
pub use layout::DataDir;
pub use license::{
    InForce, InForceError, LicensePack, PackError, PackSource, verify_with_fallback,
};
