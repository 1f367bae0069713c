//! API keys: `aos_<key id>_<secret>`.
//!
//! The key id (12 hex digits) is public and indexes the `api_keys` table; the secret is 32
//! random bytes (base64url). Only SHA-256 of the whole key is stored, and the comparison with a
//! presented key is constant-time. A plain hash (no password KDF) is enough because the secret
//! has 256 bits of entropy: there is nothing to brute-force.
//!
//! Verified keys are cached in memory for [`KEY_CACHE_TTL_US`] so that ingest does not pay a
//! database round trip per request; a revocation therefore takes effect on every collector
//! within that time.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::store::{KeyRecord, Store};

/// Key prefix, so keys are recognisable in configs and secret scanners.
pub const KEY_PREFIX: &str = "aos_";
const KEY_ID_HEX_LEN: usize = 12;
/// How long a verified key is trusted without asking the database again.
pub const KEY_CACHE_TTL_US: i64 = 30_000_000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Delivers: posts events and metrics, reads the JSON API (`/v1/usage` for the statusline,
    /// `/v1/report` for `agentos ccc report --remote`). Cannot sign in to the dashboard.
    Ingest,
    /// Reads: the JSON API and the dashboard. Cannot post events or metrics.
    Viewer,
    /// Everything a viewer and an ingest key can do.
    Admin,
}

impl Role {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }

    /// The role called `name`.
    ///
    /// # Errors
    /// [`KeyError::InvalidRole`].
    pub fn parse(name: &str) -> Result<Role, KeyError> {
        match name {
            "ingest" => Ok(Role::Ingest),
            "viewer" => Ok(Role::Viewer),
            "admin" => Ok(Role::Admin),
            other => Err(KeyError::InvalidRole(other.to_string())),
        }
    }

    /// May post events and metrics.
    pub fn can_ingest(self) -> bool {
        matches!(self, Role::Ingest | Role::Admin)
    }

    /// May sign in to the dashboard.
    pub fn can_view_pages(self) -> bool {
        matches!(self, Role::Viewer | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request acts for: a verified key's tenant and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant whose data the request reads and writes.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// The key (or the key the browser session signed in with).
    pub key_id: String,
}

/// A problem creating a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The tenant name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid tenant name `{0}` (1-64 characters from A-Z a-z 0-9 . _ -)")]
    InvalidTenant(String),
    /// The operating system's random source failed.
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
    /// Not one of `ingest`, `viewer`, `admin`.
    #[error("unknown role `{0}` (ingest, viewer or admin)")]
    InvalidRole(String),
}

impl KeyError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::InvalidTenant(_) => "invalid_tenant",
            KeyError::Random(_) => "random_source",
            KeyError::InvalidRole(_) => "invalid_role",
        }
    }
}

/// Checks a tenant name.
///
/// # Errors
/// [`KeyError::InvalidTenant`].
pub fn validate_tenant(tenant: &str) -> Result<(), KeyError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidTenant(tenant.to_string()))
    }
}

/// SHA-256 of a whole key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn from_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// Makes a new `ingest` key for `tenant`: the plaintext (shown once) and the record to store.
///
/// # Errors
/// [`KeyError`] for a bad tenant name or a failing random source.
pub fn generate_key(tenant: &str, now_us: i64) -> Result<(String, KeyRecord), KeyError> {
    generate_key_with_role(tenant, Role::Ingest, now_us)
}

/// Random bytes as lowercase hex, or URL-safe base64 when `b64`.
pub(crate) fn random_token<const N: usize>(b64: bool) -> Result<String, KeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(if b64 {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    } else {
        to_hex(&bytes)
    })
}

/// Lowercase hex SHA-256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    to_hex(&hash_key(text))
}

/// Makes a new key for `tenant` with `role`: the plaintext (shown once) and the record to store.
///
/// # Errors
/// [`KeyError`] for a bad tenant name or a failing random source.
pub fn generate_key_with_role(
    tenant: &str,
    role: Role,
    now_us: i64,
) -> Result<(String, KeyRecord), KeyError> {
    validate_tenant(tenant)?;
    let mut id = [0u8; KEY_ID_HEX_LEN / 2];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id).map_err(|e| KeyError::Random(e.to_string()))?;
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    let key_id = to_hex(&id);
    let key = format!(
        "{KEY_PREFIX}{key_id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let record = KeyRecord {
        key_id,
        tenant: tenant.to_string(),
        key_hash: to_hex(&hash_key(&key)),
        created_at_us: now_us,
        revoked_at_us: None,
        role,
    };
    Ok((key, record))
}

/// The public id inside a key, or None when the text is not shaped like a key.
pub fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let id = rest.get(..KEY_ID_HEX_LEN)?;
    let sep = rest.get(KEY_ID_HEX_LEN..=KEY_ID_HEX_LEN)?;
    (sep == "_" && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[derive(Debug, Clone)]
struct CachedKey {
    tenant: String,
    role: Role,
    hash: [u8; 32],
    revoked: bool,
    fetched_at_us: i64,
}

/// Authenticates bearer keys against the store, with a short-lived cache.
#[derive(Debug, Default)]
pub struct KeyVerifier {
    cache: Mutex<HashMap<String, CachedKey>>,
}

/// Bound on cached key ids; past it the cache is cleared (keys are few, this only stops a
/// flood of made-up ids from growing memory).
const KEY_CACHE_MAX: usize = 10_000;

impl CachedKey {
    /// An id the database does not know: never matches (revoked, and no key hashes to zeros
    /// in practice).
    fn unknown(now_us: i64) -> CachedKey {
        CachedKey {
            tenant: String::new(),
            role: Role::Viewer,
            hash: [0; 32],
            revoked: true,
            fetched_at_us: now_us,
        }
    }
}

impl KeyVerifier {
    fn remember(&self, key_id: &str, entry: CachedKey) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= KEY_CACHE_MAX {
                c.clear();
            }
            c.insert(key_id.to_string(), entry);
        }
    }

    /// Resolves the tenant and role of the `Authorization` header value.
    ///
    /// # Errors
    /// 401 for a missing, malformed, unknown, revoked or wrong key; 5xx when the database fails.
    pub async fn authenticate(
        &self,
        store: &Store,
        authorization: Option<&str>,
        now_us: i64,
    ) -> Result<Principal, ApiError> {
        let Some(value) = authorization else {
            return Err(ApiError::Unauthorized(
                "missing Authorization header (expected `Bearer <api key>`)",
            ));
        };
        let Some(key) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
        else {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <api key>`",
            ));
        };
        self.verify_key(store, key, now_us).await
    }

    /// Resolves the tenant and role of a bare API key (the dashboard's sign-in form).
    ///
    /// # Errors
    /// 401 for a malformed, unknown, revoked or wrong key; 5xx when the database fails.
    pub async fn verify_key(
        &self,
        store: &Store,
        key: &str,
        now_us: i64,
    ) -> Result<Principal, ApiError> {
        let Some(key_id) = key_id_of(key) else {
            return Err(ApiError::Unauthorized("invalid API key"));
        };
        let entry = self.entry(store, key_id, now_us).await?;
        let presented = hash_key(key);
        if !bool::from(presented.ct_eq(&entry.hash)) || entry.revoked {
            return Err(ApiError::Unauthorized("invalid API key"));
        }
        Ok(Principal {
            tenant: entry.tenant,
            role: entry.role,
            key_id: key_id.to_string(),
        })
    }

    /// True while key `key_id` exists and is not revoked (a browser session lives only as long
    /// as the key it signed in with), within the cache's [`KEY_CACHE_TTL_US`].
    ///
    /// # Errors
    /// 401 for an unknown key; 5xx when the database fails.
    pub async fn still_valid(
        &self,
        store: &Store,
        key_id: &str,
        now_us: i64,
    ) -> Result<bool, ApiError> {
        Ok(!self.entry(store, key_id, now_us).await?.revoked)
    }

    async fn entry(&self, store: &Store, key_id: &str, now_us: i64) -> Result<CachedKey, ApiError> {
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(key_id).cloned())
            .filter(|c| now_us.saturating_sub(c.fetched_at_us) < KEY_CACHE_TTL_US);
        let entry = match cached {
            Some(c) => c,
            None => {
                let record = store
                    .key(key_id)
                    .await
                    .map_err(|e| ApiError::from_store(&e))?;
                let Some(record) = record else {
                    // Remembered as unknown for the TTL too: a flood of made-up ids does not
                    // reach the database, and an unknown id answers as fast as a known one.
                    self.remember(key_id, CachedKey::unknown(now_us));
                    return Err(ApiError::Unauthorized("invalid API key"));
                };
                let Some(hash) = from_hex32(&record.key_hash) else {
                    return Err(ApiError::Internal(format!(
                        "api key {key_id} has a malformed stored hash"
                    )));
                };
                let entry = CachedKey {
                    tenant: record.tenant,
                    role: record.role,
                    hash,
                    revoked: record.revoked_at_us.is_some(),
                    fetched_at_us: now_us,
                };
                self.remember(key_id, entry.clone());
                entry
            }
        };
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_carries_its_id_and_only_its_hash_is_kept() {
        let (key, rec) = generate_key("acme", 1).expect("key");
        assert_eq!(key_id_of(&key), Some(rec.key_id.as_str()));
        assert!(!rec.key_hash.contains(&key[KEY_PREFIX.len() + 13..]));
        assert_eq!(from_hex32(&rec.key_hash), Some(hash_key(&key)));
    }

    #[test]
    fn tenant_names_with_spaces_are_refused() {
        assert!(generate_key("a b", 1).is_err());
        assert!(generate_key("", 1).is_err());
    }

    #[test]
    fn text_that_is_not_a_key_has_no_id() {
        assert_eq!(key_id_of("aos_short"), None);
        assert_eq!(key_id_of("xyz_0123456789ab_secret"), None);
        assert_eq!(key_id_of("aos_0123456789ab_secret"), Some("0123456789ab"));
    }
}
