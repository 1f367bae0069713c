//! License files on disk: loading the configured pack, building the trusted keyring from the
//! configuration, generating key pairs, and the session-start entitlement check.
//!
//! Verification itself is [`agentos_core::license`]; this module only finds the bytes.
//!
//! Pack files: a combined pack `{"license":{…},"signature":"…"}`, or split files where the
//! configured path is the claims file and `<path>.sig` holds the base64 signature. A `.sig` file
//! next to the configured path selects the split form.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use agentos_core::license::{self, Entitlement, Keyring, LicenseError, VerifiedLicense};
use agentos_core::tier::Tier;
use ed25519_dalek::SigningKey;

use crate::config::Config;

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
            LicenseProblem::BadKeyring(_) => "bad_keyring",
            LicenseProblem::Invalid { error, .. } => error.code(),
            LicenseProblem::MissingEntitlement { .. } => "missing_entitlement",
        }
    }
}

/// The trusted keys from `[license] pubkeys` (already merged with `AGENTOS_LICENSE_PUBKEYS`).
///
/// # Errors
/// [`LicenseError::BadKey`] naming the kid.
pub fn keyring(cfg: &Config) -> Result<Keyring, LicenseError> {
    let mut ring = Keyring::new();
    for (kid, key) in &cfg.license.pubkeys {
        ring.insert_base64(kid, key)?;
    }
    Ok(ring)
}

/// Verifies the pack at `path` (combined, or split when `<path>.sig` exists).
///
/// # Errors
/// [`LicenseProblem::Unreadable`] or [`LicenseProblem::Invalid`].
pub fn verify_file(
    path: &Path,
    ring: &Keyring,
    now_unix: i64,
    device: Option<&str>,
) -> Result<VerifiedLicense, LicenseProblem> {
    let unreadable = |e: std::io::Error| LicenseProblem::Unreadable {
        path: path.to_path_buf(),
        error: e.to_string(),
    };
    let bytes = std::fs::read(path).map_err(unreadable)?;
    let sig_path = sig_path(path);
    let result = if sig_path.is_file() {
        let sig = std::fs::read_to_string(&sig_path).map_err(|e| LicenseProblem::Unreadable {
            path: sig_path.clone(),
            error: e.to_string(),
        })?;
        license::verify_split(&bytes, &sig, ring, now_unix, device)
    } else {
        license::verify_pack(&bytes, ring, now_unix, device)
    };
    result.map_err(|error| LicenseProblem::Invalid {
        path: path.to_path_buf(),
        error,
    })
}

fn sig_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// The configured pack, verified against the configured keyring at `now_unix`.
///
/// # Errors
/// The [`LicenseProblem`] that stops it.
pub fn verify_configured(cfg: &Config, now_unix: i64) -> Result<VerifiedLicense, LicenseProblem> {
    let path = cfg.license.pack.as_deref().ok_or(LicenseProblem::NoPack)?;
    let ring = keyring(cfg).map_err(LicenseProblem::BadKeyring)?;
    verify_file(path, &ring, now_unix, cfg.license.device.as_deref())
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

/// A new random Ed25519 signing key (seeded from the OS RNG).
///
/// # Errors
/// The OS RNG failed.
pub fn generate_signing_key() -> Result<SigningKey, std::io::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(license::signing_key_from_seed(&seed))
}

/// 12 random bytes as lowercase hex, for the `nonce` claim (makes equal claims distinct).
///
/// # Errors
/// The OS RNG failed.
pub fn random_nonce() -> Result<String, std::io::Error> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Where [`write_key_pair`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    /// The key id.
    pub kid: String,
    /// Secret seed, base64, mode 0600.
    pub secret: PathBuf,
    /// Public key, base64.
    pub public: PathBuf,
    /// The public key text.
    pub public_base64: String,
}

impl fmt::Display for KeyPairFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.kid,
            self.secret.display(),
            self.public.display()
        )
    }
}

/// Writes `<dir>/<kid>.key` (base64 seed, mode 0600, never overwritten) and `<dir>/<kid>.pub`.
///
/// # Errors
/// I/O errors, including "already exists" for the secret file.
pub fn write_key_pair(dir: &Path, kid: &str, key: &SigningKey) -> std::io::Result<KeyPairFiles> {
    std::fs::create_dir_all(dir)?;
    let secret = dir.join(format!("{kid}.key"));
    let public = dir.join(format!("{kid}.pub"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Created 0600 from the start: no window where the seed is world-readable.
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&secret)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", secret.display())))?;
    f.write_all(format!("{}\n", license::seed_base64(key)).as_bytes())?;
    f.sync_all()?;
    let public_base64 = license::public_key_base64(&key.verifying_key());
    crate::durable::atomic_write(&public, format!("{public_base64}\n").as_bytes())?;
    Ok(KeyPairFiles {
        kid: kid.to_string(),
        secret,
        public,
        public_base64,
    })
}

/// Reads a signing key written by [`write_key_pair`].
///
/// # Errors
/// I/O errors, or a message naming the file when it is not a base64 seed.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    license::signing_key_from_base64(&text).map_err(|e| format!("{}: {e}", path.display()))
}
