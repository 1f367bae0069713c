//! License files on disk: the one license-pack reader, the trusted keyring from the
//! configuration, and key-pair files.
//!
//! Verification itself is [`agentos_core::license`]; this module only finds the bytes.
//!
//! A pack on disk is either
//! - combined: one JSON object `{"license":{…},"signature":"…"}`, or
//! - split: the configured path is the claims file and `<path>.sig` holds the base64 signature.
//!
//! [`LicensePack::read`] decides by content: a file that is a JSON object with both `license`
//! and `signature` is combined; otherwise, when `<path>.sig` exists, the pack is split. Anything
//! else is an error naming both files. The recorder (session-start check), delivery (the
//! `X-AgentOS-License` header) and the CLI (`agentos license verify|status`) all read packs here.
//!
//! Which file a relative path names is decided once, by
//! [`Env::resolve_path`](crate::config::Env::resolve_path), before the path reaches this module.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use agentos_core::license::{self, Keyring, LicenseError, VerifiedLicense};
use ed25519_dalek::SigningKey;

use crate::config::LicenseConfig;

/// Why a license pack could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A pack file (the pack or its `.sig`) could not be read.
    #[error("license pack {path} cannot be read: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is neither a combined pack nor the claims file of a split pack.
    #[error(
        "license pack {path} is neither a combined pack (a JSON object with \"license\" and \
         \"signature\") nor the claims file of a split pack ({sig} does not exist)"
    )]
    NotAPack {
        /// The pack file.
        path: PathBuf,
        /// The signature file a split pack would need.
        sig: PathBuf,
    },
}

impl PackError {
    /// Stable snake_case code for logs and reports.
    pub fn code(&self) -> &'static str {
        match self {
            PackError::Read { .. } => "pack_unreadable",
            PackError::NotAPack { .. } => "pack_malformed",
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PackError::Read { path, .. } | PackError::NotAPack { path, .. } => path,
        }
    }
}

/// How a pack is stored.
#[derive(Clone, PartialEq, Eq)]
enum Form {
    /// The combined pack JSON, byte for byte.
    Combined(Vec<u8>),
    /// The claims file's exact bytes and the `.sig` file's text.
    Split { claims: Vec<u8>, signature: String },
}

/// A license pack read from disk (not verified yet).
#[derive(Clone, PartialEq, Eq)]
pub struct LicensePack {
    path: PathBuf,
    form: Form,
}

impl fmt::Debug for LicensePack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is a bearer credential for the collector; keep it out of logs.
        f.debug_struct("LicensePack")
            .field("path", &self.path)
            .field("split", &self.is_split())
            .finish_non_exhaustive()
    }
}

impl LicensePack {
    /// Reads the pack at `path` (combined, or split with `<path>.sig`; see the module docs).
    ///
    /// `path` is used as given; resolve a relative configured path with
    /// [`Env::resolve_path`](crate::config::Env::resolve_path) first (the loader already does).
    ///
    /// # Errors
    /// [`PackError::Read`] naming the file that cannot be read, [`PackError::NotAPack`].
    pub fn read(path: &Path) -> Result<LicensePack, PackError> {
        let read_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PackError::Read { path, source }
        };
        let bytes = std::fs::read(path).map_err(read_err(path))?;
        let form = if is_combined(&bytes) {
            Form::Combined(bytes)
        } else {
            let sig = sig_path(path);
            if !sig.is_file() {
                return Err(PackError::NotAPack {
                    path: path.to_path_buf(),
                    sig,
                });
            }
            let signature = std::fs::read_to_string(&sig).map_err(read_err(&sig))?;
            Form::Split {
                claims: bytes,
                signature,
            }
        };
        Ok(LicensePack {
            path: path.to_path_buf(),
            form,
        })
    }

    /// The file it was read from (the claims file of a split pack).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it came from split files.
    pub fn is_split(&self) -> bool {
        matches!(self.form, Form::Split { .. })
    }

    /// The combined pack JSON the protocol's `X-AgentOS-License` header carries.
    ///
    /// A combined pack is returned as stored; for a split pack the claims are spliced in byte
    /// for byte, so the signature over the exact stored claim bytes still verifies on the server.
    pub fn combined_bytes(&self) -> Cow<'_, [u8]> {
        match &self.form {
            Form::Combined(bytes) => Cow::Borrowed(bytes),
            Form::Split { claims, signature } => {
                let claims = String::from_utf8_lossy(claims);
                let sig_json = serde_json::Value::String(signature.trim().to_owned()).to_string();
                Cow::Owned(
                    format!(
                        "{{\"license\":{},\"signature\":{}}}",
                        claims.trim(),
                        sig_json
                    )
                    .into_bytes(),
                )
            }
        }
    }

    /// Verifies the pack with `ring` at `now_unix` (and `device` for device-bound packs).
    ///
    /// # Errors
    /// The [`LicenseError`] naming the first cause found.
    pub fn verify(
        &self,
        ring: &Keyring,
        now_unix: i64,
        device: Option<&str>,
    ) -> Result<VerifiedLicense, LicenseError> {
        match &self.form {
            Form::Combined(bytes) => license::verify_pack(bytes, ring, now_unix, device),
            Form::Split { claims, signature } => {
                license::verify_split(claims, signature, ring, now_unix, device)
            }
        }
    }
}

fn is_combined(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.contains_key("license") && o.contains_key("signature"))
        })
        .unwrap_or(false)
}

/// `<path>.sig`: the signature file of a split pack whose claims file is `path`.
pub fn sig_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

impl LicenseConfig {
    /// The trusted keys from `[license] pubkeys` (already merged with `AGENTOS_LICENSE_PUBKEYS`).
    ///
    /// # Errors
    /// [`LicenseError::BadKey`] naming the kid.
    pub fn keyring(&self) -> Result<Keyring, LicenseError> {
        let mut ring = Keyring::new();
        for (kid, key) in &self.pubkeys {
            ring.insert_base64(kid, key)?;
        }
        Ok(ring)
    }
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

/// Where the license in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackSource {
    /// The configured pack verified.
    Configured,
    /// The configured pack did not verify; the last pack that did is used until its own `exp`.
    LastKnownGood {
        /// Why the configured pack was not used.
        problem: String,
    },
}

/// A verified license and the combined pack bytes that prove it.
#[derive(Debug, Clone)]
pub struct InForce {
    /// The verified claims.
    pub license: VerifiedLicense,
    /// The combined pack (what `X-AgentOS-License` carries).
    pub combined: Vec<u8>,
    /// Where it came from.
    pub source: PackSource,
}

/// Why no license is in force.
#[derive(Debug, thiserror::Error)]
pub enum InForceError {
    /// No pack is configured (`[license] pack` / `AGENTOS_LICENSE_PACK`).
    #[error("no license pack configured (set [license] pack or AGENTOS_LICENSE_PACK)")]
    NoPack,
    /// The trusted keys in the configuration are malformed.
    #[error("trusted license keys are invalid: {0}")]
    Keyring(LicenseError),
    /// The configured pack could not be read (and no last-known-good pack verifies).
    #[error(transparent)]
    Pack(#[from] PackError),
    /// The configured pack did not verify (and no last-known-good pack verifies).
    #[error("license pack {path} is invalid: {error}")]
    Invalid {
        /// The configured pack.
        path: PathBuf,
        /// Why it did not verify.
        error: LicenseError,
    },
}

/// Verifies the configured pack at `pack`. A pack that verifies is remembered at `last_good`
/// (best effort). When it does not — a refresh that went wrong, a file half-copied — the pack at
/// `last_good` is used instead for as long as it verifies on its own (so never past its own
/// `exp`), and a warning says so every time: a refresh problem must not silently stop delivery,
/// and must not go unnoticed either.
///
/// # Errors
/// The configured pack's own problem when the fallback does not verify either.
pub fn verify_with_fallback(
    pack: &Path,
    last_good: &Path,
    ring: &Keyring,
    now_unix: i64,
    device: Option<&str>,
) -> Result<InForce, InForceError> {
    let configured = LicensePack::read(pack)
        .map_err(InForceError::from)
        .and_then(|p| {
            p.verify(ring, now_unix, device)
                .map(|lic| (lic, p.combined_bytes().into_owned()))
                .map_err(|error| InForceError::Invalid {
                    path: pack.to_path_buf(),
                    error,
                })
        });
    match configured {
        Ok((license, combined)) => {
            if std::fs::read(last_good).ok().as_deref() != Some(combined.as_slice()) {
                let stored = last_good
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| crate::durable::atomic_write(last_good, &combined));
                if let Err(e) = stored {
                    tracing::warn!(path = %last_good.display(), error = %e, "cannot remember the last good license pack");
                }
            }
            Ok(InForce {
                license,
                combined,
                source: PackSource::Configured,
            })
        }
        Err(problem) => {
            let fallback = std::fs::read(last_good).ok().and_then(|bytes| {
                license::verify_pack(&bytes, ring, now_unix, device)
                    .ok()
                    .map(|lic| (lic, bytes))
            });
            match fallback {
                Some((license, combined)) => {
                    tracing::warn!(
                        configured = %pack.display(),
                        %problem,
                        last_good = %last_good.display(),
                        exp = license.claims.exp,
                        "THE CONFIGURED LICENSE PACK DOES NOT VERIFY; using the last pack that did until it expires"
                    );
                    Ok(InForce {
                        license,
                        combined,
                        source: PackSource::LastKnownGood {
                            problem: problem.to_string(),
                        },
                    })
                }
                None => Err(problem),
            }
        }
    }
}

impl crate::config::Config {
    /// The license in force: the configured pack verified against the configured keys (and
    /// device), or the last-known-good pack of this data dir (see [`verify_with_fallback`]).
    /// The one check the recorder (session start), delivery (the cap) and the CLI share.
    ///
    /// # Errors
    /// [`InForceError`] naming why no license is in force.
    pub fn license_in_force(&self, now_unix: i64) -> Result<InForce, InForceError> {
        let pack = self.license.pack.as_deref().ok_or(InForceError::NoPack)?;
        let ring = self.license.keyring().map_err(InForceError::Keyring)?;
        verify_with_fallback(
            pack,
            &crate::layout::DataDir::new(&self.data_dir).last_good_license(),
            &ring,
            now_unix,
            Some(&self.device_binding()),
        )
    }
}
