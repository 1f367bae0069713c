//! The session-start entitlement check: may a session record under the tier it asked for?
//!
//! The pack is read by [`agentos_config::license::LicensePack`] (the one reader, shared with
//! delivery and the CLI) from the path the configuration already resolved; verification itself
//! is [`agentos_core::license`].

use std::path::{Path, PathBuf};

use agentos_config::Config;
use agentos_config::license::{LicensePack, PackError};
use agentos_core::license::{Entitlement, Keyring, LicenseError, VerifiedLicense};
use agentos_core::tier::Tier;

/// Why a session could not get the tier it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseProblem {
    /// `DO_NOT_TRACK` is set, which forces tier `local`.
    #[error("DO_NOT_TRACK is set, which forces tier local")]
    DoNotTrack,
    /// No pack is configured (`[license] pack` / `AGENTOS_LICENSE_PACK`).
    #[error("no license pack configured (set [license] pack or AGENTOS_LICENSE_PACK)")]
    NoPack,
    /// The configured pack file cannot be read.
    #[error("license pack {path} cannot be read: {error}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error text.
        error: String,
    },
    /// The configured file is neither a combined pack nor the claims file of a split pack.
    #[error("{message}")]
    NotAPack {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, naming the files.
        message: String,
    },
    /// The keyring in config or environment is malformed.
    #[error("trusted license keys are invalid: {0}")]
    BadKeyring(LicenseError),
    /// The pack failed verification.
    #[error("license pack {path} is invalid: {error}")]
    Invalid {
        /// The pack file.
        path: PathBuf,
        /// The cause.
        error: LicenseError,
    },
    /// The pack is valid but lacks the tier's entitlement.
    #[error("license (plan {plan}, kid {kid:?}) does not grant {needed}, which tier {tier} needs")]
    MissingEntitlement {
        /// The tier that was asked for.
        tier: Tier,
        /// The entitlement it needs.
        needed: Entitlement,
        /// The license's plan.
        plan: String,
        /// The key id that verified it.
        kid: String,
    },
}

impl LicenseProblem {
    /// Stable snake_case code, also stored in the session record's metadata.
    pub fn code(&self) -> &'static str {
        match self {
            LicenseProblem::DoNotTrack => "do_not_track",
            LicenseProblem::NoPack => "no_pack",
            LicenseProblem::Unreadable { .. } => "pack_unreadable",
            LicenseProblem::NotAPack { .. } => "pack_malformed",
            LicenseProblem::BadKeyring(_) => "bad_keyring",
            LicenseProblem::Invalid { error, .. } => error.code(),
            LicenseProblem::MissingEntitlement { .. } => "missing_entitlement",
        }
    }
}

impl From<PackError> for LicenseProblem {
    fn from(e: PackError) -> Self {
        match e {
            PackError::Read { path, source } => LicenseProblem::Unreadable {
                path,
                error: source.to_string(),
            },
            other => LicenseProblem::NotAPack {
                path: other.path().to_path_buf(),
                message: other.to_string(),
            },
        }
    }
}

/// The configured pack, verified against the configured keyring at `now_unix`.
///
/// # Errors
/// The [`LicenseProblem`] that stops it.
pub fn verify_configured(cfg: &Config, now_unix: i64) -> Result<VerifiedLicense, LicenseProblem> {
    cfg.license_in_force(now_unix)
        .map(|f| f.license)
        .map_err(LicenseProblem::from)
}

impl From<agentos_config::InForceError> for LicenseProblem {
    fn from(e: agentos_config::InForceError) -> Self {
        use agentos_config::InForceError;
        match e {
            InForceError::NoPack => LicenseProblem::NoPack,
            InForceError::Keyring(e) => LicenseProblem::BadKeyring(e),
            InForceError::Pack(p) => p.into(),
            InForceError::Invalid { path, error } => LicenseProblem::Invalid { path, error },
        }
    }
}

/// Reads the pack at `path` with [`LicensePack::read`] and verifies it.
///
/// # Errors
/// [`LicenseProblem::Unreadable`], [`LicenseProblem::NotAPack`] or [`LicenseProblem::Invalid`].
pub fn verify_file(
    path: &Path,
    ring: &Keyring,
    now_unix: i64,
    device: Option<&str>,
) -> Result<VerifiedLicense, LicenseProblem> {
    LicensePack::read(path)?
        .verify(ring, now_unix, device)
        .map_err(|error| LicenseProblem::Invalid {
            path: path.to_path_buf(),
            error,
        })
}

/// The session-start handshake: may a session record under `requested`?
///
/// Returns the verified license when one was needed and is good (`None` for tier `local`).
///
/// # Errors
/// The [`LicenseProblem`] that forces the session down to `local`.
pub fn check_tier(
    cfg: &Config,
    requested: Tier,
    now_unix: i64,
) -> Result<Option<VerifiedLicense>, LicenseProblem> {
    let Some(needed) = requested.required_entitlement() else {
        return Ok(None);
    };
    if cfg.do_not_track {
        return Err(LicenseProblem::DoNotTrack);
    }
    let lic = verify_configured(cfg, now_unix)?;
    if !lic.has(needed) {
        return Err(LicenseProblem::MissingEntitlement {
            tier: requested,
            needed,
            plan: lic.claims.plan.to_string(),
            kid: lic.kid.clone(),
        });
    }
    Ok(Some(lic))
}
