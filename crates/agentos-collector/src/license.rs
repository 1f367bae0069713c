//! Server-side license check: the pack a client sends in `X-AgentOS-License` (standard base64 of
//! the combined pack bytes) is verified with the collector's own keyring.
//!
//! Verification results are cached by the SHA-256 of the header value, so a client that sends
//! the same pack with every request costs one hash per request, not one Ed25519 verification.
//! Expiry is re-checked on every use (a cached pack still expires on time). A device-bound pack
//! (`device` claim) is accepted only from a client whose `X-AgentOS-Device-Binding` header
//! carries that same value (the client's `[license] device` or machine fingerprint).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agentos_core::license::{Entitlement, Keyring, LicenseError, VerifiedLicense, verify_pack};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::usage::LicenseBlock;

/// Bound on cached verification results; past it the cache is cleared.
const CACHE_MAX: usize = 10_000;
/// Largest accepted header (a pack is a few hundred bytes).
const MAX_HEADER_LEN: usize = 16 * 1024;

/// What an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// `/v1/events`: `telemetry_full`.
    Events,
    /// `/v1/metrics`: `telemetry_minimized` or `telemetry_full`.
    Metrics,
}

impl Requirement {
    fn satisfied_by(self, lic: &VerifiedLicense) -> bool {
        match self {
            Requirement::Events => lic.has(Entitlement::TelemetryFull),
            Requirement::Metrics => {
                lic.has(Entitlement::TelemetryFull) || lic.has(Entitlement::TelemetryMinimized)
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Requirement::Events => "telemetry_full (required for /v1/events)",
            Requirement::Metrics => {
                "telemetry_minimized or telemetry_full (required for /v1/metrics)"
            }
        }
    }
}

type CachedResult = Result<VerifiedLicense, LicenseError>;

/// The keyring plus a cache of verification results.
#[derive(Debug, Clone)]
pub struct LicenseGate {
    keyring: Arc<Keyring>,
    cache: Arc<Mutex<HashMap<[u8; 32], CachedResult>>>,
}

impl LicenseGate {
    /// A gate trusting `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        LicenseGate {
            keyring: Arc::new(keyring),
            cache: Arc::default(),
        }
    }

    /// The trusted keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Verifies the header value (if any) without requiring an entitlement.
    ///
    /// # Errors
    /// 403 `license_missing` / `license_invalid` with the reason.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        now_unix: i64,
    ) -> Result<VerifiedLicense, ApiError> {
        let Some(header) = header.filter(|h| !h.is_empty()) else {
            return Err(ApiError::Forbidden {
                code: "license_missing",
                message: "no license: send the license pack as X-AgentOS-License (standard base64 of the pack JSON)".into(),
            });
        };
        if self.keyring.is_empty() {
            return Err(ApiError::Forbidden {
                code: "license_invalid",
                message: "this collector trusts no license keys (configure [license] pubkeys or AGENTOS_LICENSE_PUBKEYS)".into(),
            });
        }
        if header.len() > MAX_HEADER_LEN {
            return Err(ApiError::Forbidden {
                code: "license_invalid",
                message: format!("license header is larger than {MAX_HEADER_LEN} bytes"),
            });
        }
        let digest: [u8; 32] = Sha256::digest(header).into();
        let cached = self.cache.lock().ok().and_then(|c| c.get(&digest).cloned());
        let result = match cached {
            Some(r) => r,
            None => {
                let r = self.verify_uncached(header);
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() >= CACHE_MAX {
                        c.clear();
                    }
                    c.insert(digest, r.clone());
                }
                r
            }
        };
        let lic = result.map_err(|e| ApiError::Forbidden {
            code: "license_invalid",
            message: format!("license rejected ({}): {e}", e.code()),
        })?;
        if now_unix > lic.claims.exp {
            return Err(ApiError::Forbidden {
                code: "license_invalid",
                message: format!(
                    "license rejected (expired): license expired at {} (unix {})",
                    jiff::Timestamp::from_second(lic.claims.exp)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    lic.claims.exp
                ),
            });
        }
        Ok(lic)
    }

    fn verify_uncached(&self, header: &[u8]) -> CachedResult {
        let pack = base64::engine::general_purpose::STANDARD
            .decode(header.trim_ascii())
            .map_err(|e| LicenseError::NotBase64(format!("X-AgentOS-License: {e}")))?;
        // Verified with a time far in the past so that the cached result stays reusable; the
        // expiry check happens on every use in `verify`.
        verify_pack(&pack, self.keyring.as_ref(), i64::MIN / 2, None)
    }

    /// Verifies the header and checks the endpoint's entitlement.
    ///
    /// # Errors
    /// 403 with `license_missing`, `license_invalid` or `entitlement_missing`.
    pub fn require(
        &self,
        header: Option<&[u8]>,
        binding: Option<&str>,
        now_unix: i64,
        req: Requirement,
    ) -> Result<VerifiedLicense, ApiError> {
        let lic = self.verify(header, now_unix)?;
        if let Some(bound) = lic.claims.device.as_deref().filter(|d| !d.is_empty())
            && binding != Some(bound)
        {
            return Err(ApiError::Forbidden {
                code: "license_device_mismatch",
                message: format!(
                    "the license is bound to device {bound:?}; this client sent {} in X-AgentOS-Device-Binding",
                    binding.map_or_else(|| "nothing".to_string(), |b| format!("{b:?}"))
                ),
            });
        }
        if !req.satisfied_by(&lic) {
            return Err(ApiError::Forbidden {
                code: "entitlement_missing",
                message: format!(
                    "license (plan {}, features [{}]) lacks {}",
                    lic.claims.plan.as_str(),
                    lic.claims.features.join(", "),
                    req.describe()
                ),
            });
        }
        Ok(lic)
    }
}

/// The `license` block of `/v1/usage` for a verified license.
pub fn license_block(lic: &VerifiedLicense) -> LicenseBlock {
    LicenseBlock {
        ok: true,
        plan: lic.claims.plan.as_str().to_string(),
        features: lic.claims.features.clone(),
    }
}
