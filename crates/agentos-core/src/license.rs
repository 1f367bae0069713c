//! Offline verification of `ccp.license.v1` license packs (Ed25519), and issuing them.
//!
//! # Format
//! Claims (`schema`, `plan`, `features`, `exp` required; `kid`, `device`, `sub`, `iat`, `nonce`
//! optional) travel either as a combined pack `{"license":{…},"signature":"<base64>"}` or as
//! split files (claims JSON + a `.sig` file holding the base64 signature).
//!
//! # Which bytes are signed
//! We sign the RFC 8785 (JCS) canonical form of the claims. The CCC shim signs the exact claim
//! bytes it stored instead (compact, keys sorted, Go style) and never canonicalises. A pack
//! verifies here if the signature matches **either** the exact stored bytes **or** their
//! canonical form, so packs from either side verify and whitespace/key-order changes made by a
//! JCS-aware tool do not break ours.
//!
//! # Which key
//! Claims that name a `kid` verify only under that trusted key (a pack naming one key but signed
//! by another is rejected). Claims without a `kid` (as the CCC issuer may produce them) are tried
//! against every trusted key in turn, as the CCC shim does; [`VerifiedLicense::kid`] then names
//! the key that matched and [`VerifiedLicense::kid_from_claims`] is false.
//!
//! Verification is injectable ([`Verifier`]) so callers can plug a hardware key or a test
//! double, but [`Keyring`] (real Ed25519, `verify_strict`) is the default everywhere.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The only claims schema this version understands.
pub const LICENSE_SCHEMA: &str = "ccp.license.v1";

/// Why a license pack was rejected. Every variant names its cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseError {
    /// The pack or claims are not JSON.
    #[error("license pack is not valid JSON: {0}")]
    Malformed(String),
    /// The transport encoding around the pack (the `X-AgentOS-License` header's base64) is
    /// broken; the pack itself was never reached.
    #[error("license header is not standard base64 of a pack: {0}")]
    NotBase64(String),
    /// A JSON object in the pack repeats a key (I-JSON forbids it; it hides what was signed).
    #[error("license pack has a duplicate JSON key {0:?}")]
    DuplicateKey(String),
    /// A required claim or pack field is absent.
    #[error("license is missing the required field {0:?}")]
    MissingField(&'static str),
    /// A claim has the wrong JSON type.
    #[error("license field {field:?} is invalid: {reason}")]
    InvalidField {
        /// The claim.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature text is not standard base64 of 64 bytes.
    #[error("license signature is not valid base64 of an Ed25519 signature: {0}")]
    MalformedSignature(String),
    /// No trusted key has this kid.
    #[error("license kid {0:?} is not in the trusted keyring")]
    UnknownKid(String),
    /// The signature does not match the claims under the key named by kid.
    #[error(
        "license signature does not verify under key {0:?} (claims altered or signed by another key)"
    )]
    BadSignature(String),
    /// `schema` is not `ccp.license.v1`.
    #[error("license schema mismatch: expected {LICENSE_SCHEMA:?}, found {0:?}")]
    SchemaMismatch(String),
    /// `now > exp`.
    #[error("license expired at {exp} (unix seconds; now {now})")]
    Expired {
        /// Expiry claim.
        exp: i64,
        /// Time of the check.
        now: i64,
    },
    /// The pack is bound to another device.
    #[error("license is bound to device {expected:?}, this device is {actual:?}")]
    DeviceMismatch {
        /// The pack's `device` claim.
        expected: String,
        /// This machine's device value.
        actual: String,
    },
    /// The claims name no kid and no key is trusted at all.
    #[error("no trusted license keys (configure [license] pubkeys or AGENTOS_LICENSE_PUBKEYS)")]
    NoTrustedKeys,
    /// A public key in the keyring is malformed.
    #[error("trusted key {kid:?} is invalid: {reason}")]
    BadKey {
        /// Key id.
        kid: String,
        /// What is wrong.
        reason: String,
    },
}

impl LicenseError {
    /// Stable snake_case code for logs, metrics and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            LicenseError::Malformed(_) | LicenseError::NotBase64(_) => "malformed",
            LicenseError::DuplicateKey(_) => "duplicate_key",
            LicenseError::MissingField(_) => "missing_field",
            LicenseError::InvalidField { .. } => "invalid_field",
            LicenseError::MalformedSignature(_) => "malformed_signature",
            LicenseError::UnknownKid(_) => "unknown_kid",
            LicenseError::BadSignature(_) => "bad_signature",
            LicenseError::SchemaMismatch(_) => "schema_mismatch",
            LicenseError::Expired { .. } => "expired",
            LicenseError::DeviceMismatch { .. } => "device_mismatch",
            LicenseError::NoTrustedKeys => "no_public_keys",
            LicenseError::BadKey { .. } => "bad_key",
        }
    }
}

/// Commercial plan named by a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// No valid license.
    Community,
    /// Time-limited trial.
    Trial,
    /// Paid, portable.
    Pro,
    /// Paid, optionally device-bound.
    Enterprise,
}

impl Plan {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Community => "community",
            Plan::Trial => "trial",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = LicenseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "community" => Ok(Plan::Community),
            "trial" => Ok(Plan::Trial),
            "pro" => Ok(Plan::Pro),
            "enterprise" => Ok(Plan::Enterprise),
            other => Err(LicenseError::InvalidField {
                field: "plan",
                reason: format!("unknown plan {other:?} (expected trial, pro or enterprise)"),
            }),
        }
    }
}

/// An entitlement that gates agentos behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entitlement {
    /// Allows the `minimized` tier.
    TelemetryMinimized,
    /// Allows the `full` tier.
    TelemetryFull,
    /// Allows the CCC shim's Z.AI lane (not used by agentos itself).
    ZaiOffload,
}

impl Entitlement {
    /// The string in the claims' `features` list.
    pub fn as_str(self) -> &'static str {
        match self {
            Entitlement::TelemetryMinimized => "telemetry_minimized",
            Entitlement::TelemetryFull => "telemetry_full",
            Entitlement::ZaiOffload => "zai_offload",
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The claims of a `ccp.license.v1` license. Field order is the JCS order; keep it sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Device binding; empty or absent = portable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Unix seconds; valid while `now <= exp`.
    pub exp: i64,
    /// Entitlements.
    pub features: Vec<String>,
    /// Issue time (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Signing key id; empty when the claims name none (then every trusted key is tried).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kid: String,
    /// Random nonce (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Plan.
    pub plan: Plan,
    /// Must be [`LICENSE_SCHEMA`].
    pub schema: String,
    /// Subject (email or `anon:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl Claims {
    /// Whether the claims grant `e`.
    pub fn has(&self, e: Entitlement) -> bool {
        self.features.iter().any(|f| f == e.as_str())
    }
}

/// A license that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLicense {
    /// The verified claims.
    pub claims: Claims,
    /// The key id that verified it.
    pub kid: String,
    /// Whether the claims named that kid (false: it was found by trying the trusted keys).
    pub kid_from_claims: bool,
}

impl VerifiedLicense {
    /// Whether the license grants `e`.
    pub fn has(&self, e: Entitlement) -> bool {
        self.claims.has(e)
    }
}

/// Checks an Ed25519 signature for a key id. [`Keyring`] is the real implementation; a test
/// double (or a hardware-backed verifier) implements the same two methods.
///
/// # Example
/// A double that accepts exactly one signature under kid `test`, so a test can exercise the
/// claim checks (expiry, schema, device) without keys:
/// ```
/// use agentos_core::license::*;
/// use ed25519_dalek::Signature;
///
/// struct AcceptOne(Signature);
/// impl Verifier for AcceptOne {
///     fn verify(&self, kid: &str, _msg: &[u8], sig: &Signature) -> Result<(), LicenseError> {
///         if kid != "test" {
///             return Err(LicenseError::UnknownKid(kid.into()));
///         }
///         if *sig == self.0 { Ok(()) } else { Err(LicenseError::BadSignature(kid.into())) }
///     }
///     fn kids(&self) -> Vec<String> {
///         vec!["test".into()]
///     }
/// }
///
/// let sig = Signature::from_bytes(&[1u8; 64]);
/// let claims = r#"{"exp":2000000000,"features":["telemetry_full"],"plan":"pro","schema":"ccp.license.v1"}"#;
/// let sig_text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig.to_bytes());
/// let ok = verify_split(claims.as_bytes(), &sig_text, &AcceptOne(sig), 1_900_000_000, None).unwrap();
/// assert_eq!((ok.kid.as_str(), ok.kid_from_claims), ("test", false));
/// assert!(matches!(
///     verify_split(claims.as_bytes(), &sig_text, &AcceptOne(sig), 2_000_000_001, None),
///     Err(LicenseError::Expired { .. })
/// ));
/// ```
pub trait Verifier {
    /// `Ok(())` if `signature` signs `message` under the key `kid`.
    ///
    /// # Errors
    /// [`LicenseError::UnknownKid`] or [`LicenseError::BadSignature`].
    fn verify(&self, kid: &str, message: &[u8], signature: &Signature) -> Result<(), LicenseError>;

    /// The key ids to try, in order, for claims that name no `kid`.
    fn kids(&self) -> Vec<String>;
}

/// Trusted public keys by kid; several at once allow rotation.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<String, VerifyingKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key from its standard-base64 32-byte encoding.
    ///
    /// # Errors
    /// [`LicenseError::BadKey`] for bad base64, a wrong length or an invalid point.
    pub fn insert_base64(&mut self, kid: &str, key_b64: &str) -> Result<(), LicenseError> {
        let bad = |reason: String| LicenseError::BadKey {
            kid: kid.to_string(),
            reason,
        };
        let bytes = B64
            .decode(key_b64.trim())
            .map_err(|e| bad(format!("not base64: {e}")))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("expected 32 bytes, got {}", bytes.len())))?;
        let key = VerifyingKey::from_bytes(&arr).map_err(|e| bad(e.to_string()))?;
        self.keys.insert(kid.to_string(), key);
        Ok(())
    }

    /// Adds a key.
    pub fn insert(&mut self, kid: &str, key: VerifyingKey) {
        self.keys.insert(kid.to_string(), key);
    }

    /// Parses the `AGENTOS_LICENSE_PUBKEYS` format into this keyring (see [`parse_pubkey_list`]).
    ///
    /// # Errors
    /// [`LicenseError::BadKey`] naming the entry.
    pub fn extend_from_env(&mut self, spec: &str) -> Result<(), LicenseError> {
        for (kid, key) in parse_pubkey_list(spec)? {
            self.insert_base64(&kid, &key)?;
        }
        Ok(())
    }

    /// Number of trusted keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Trusted key ids.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// Splits a comma-separated list of trusted keys, as the CCC shim reads `CCP_LICENSE_PUBKEY_B64`:
/// each entry is `kid=base64`, or a plain base64 key, which gets the id `env_<n>` (n counting
/// plain entries from 1). An entry that decodes as a 32-byte key on its own is plain even when
/// it looks like `kid=` (a key whose only `=` is its padding).
///
/// # Errors
/// [`LicenseError::BadKey`] for an entry that is neither.
pub fn parse_pubkey_list(spec: &str) -> Result<Vec<(String, String)>, LicenseError> {
    let mut out = Vec::new();
    let mut plain = 0;
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if B64.decode(entry).is_ok_and(|b| b.len() == 32) {
            plain += 1;
            out.push((format!("env_{plain}"), entry.to_string()));
            continue;
        }
        let Some((kid, key)) = entry
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty() && !k.contains(['+', '/', '=']))
        else {
            return Err(LicenseError::BadKey {
                kid: entry.to_string(),
                reason: "expected kid=base64 or a plain base64 32-byte key".into(),
            });
        };
        out.push((kid.trim().to_string(), key.trim().to_string()));
    }
    Ok(out)
}

impl Verifier for Keyring {
    fn kids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    fn verify(&self, kid: &str, message: &[u8], signature: &Signature) -> Result<(), LicenseError> {
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| LicenseError::UnknownKid(kid.to_string()))?;
        key.verify_strict(message, signature)
            .map_err(|_| LicenseError::BadSignature(kid.to_string()))
    }
}

#[derive(Deserialize)]
struct RawPack<'a> {
    #[serde(borrow)]
    license: Option<&'a RawValue>,
    signature: Option<String>,
}

/// Verifies a combined pack `{"license":{…},"signature":"…"}` with the real Ed25519 keyring.
///
/// `now_unix` is the time of the check; `device` is this machine's device value, if any.
///
/// # Errors
/// A [`LicenseError`] naming the first cause found.
///
/// # Example
/// ```
/// use agentos_core::license::*;
/// let key = signing_key_from_seed(&[7u8; 32]);
/// let mut ring = Keyring::new();
/// ring.insert("k1", key.verifying_key());
/// let claims = Claims { device: None, exp: 2_000_000_000, features: vec!["telemetry_full".into()],
///     iat: None, kid: "k1".into(), nonce: None, plan: Plan::Pro, schema: LICENSE_SCHEMA.into(), sub: None };
/// let pack = issue_pack(&key, &claims);
/// let ok = verify_pack(pack.as_bytes(), &ring, 1_900_000_000, None).unwrap();
/// assert!(ok.has(Entitlement::TelemetryFull));
/// assert!(matches!(verify_pack(pack.as_bytes(), &ring, 2_000_000_001, None), Err(LicenseError::Expired { .. })));
/// ```
pub fn verify_pack(
    pack: &[u8],
    verifier: &dyn Verifier,
    now_unix: i64,
    device: Option<&str>,
) -> Result<VerifiedLicense, LicenseError> {
    reject_duplicate_keys(pack)?;
    let raw: RawPack<'_> =
        serde_json::from_slice(pack).map_err(|e| LicenseError::Malformed(e.to_string()))?;
    let claims = raw.license.ok_or(LicenseError::MissingField("license"))?;
    let sig = raw
        .signature
        .ok_or(LicenseError::MissingField("signature"))?;
    verify_parts(claims.get().as_bytes(), &sig, verifier, now_unix, device)
}

/// Verifies split files: the claims file's exact bytes and the `.sig` file's base64 text.
///
/// # Errors
/// A [`LicenseError`] naming the first cause found.
pub fn verify_split(
    claims_bytes: &[u8],
    signature_text: &str,
    verifier: &dyn Verifier,
    now_unix: i64,
    device: Option<&str>,
) -> Result<VerifiedLicense, LicenseError> {
    reject_duplicate_keys(claims_bytes)?;
    verify_parts(claims_bytes, signature_text, verifier, now_unix, device)
}

fn verify_parts(
    claims_bytes: &[u8],
    signature_text: &str,
    verifier: &dyn Verifier,
    now_unix: i64,
    device: Option<&str>,
) -> Result<VerifiedLicense, LicenseError> {
    let signature = decode_signature(signature_text)?;
    let value: serde_json::Value =
        serde_json::from_slice(claims_bytes).map_err(|e| LicenseError::Malformed(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| LicenseError::Malformed("claims are not a JSON object".into()))?;
    for field in ["schema", "plan", "features", "exp"] {
        if !obj.contains_key(field) {
            return Err(LicenseError::MissingField(field));
        }
    }
    let named = match obj.get("kid") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(k)) if k.is_empty() => None,
        Some(serde_json::Value::String(k)) => Some(k.clone()),
        Some(_) => {
            return Err(LicenseError::InvalidField {
                field: "kid",
                reason: "not a string".into(),
            });
        }
    };
    // Exact bytes first (what the CCC shim signs), then the canonical form (what we sign).
    let canonical = serde_json_canonicalizer::to_vec(&value)
        .map_err(|e| LicenseError::Malformed(e.to_string()))?;
    let try_key = |kid: &str| -> Result<(), LicenseError> {
        match verifier.verify(kid, trim_ascii(claims_bytes), &signature) {
            Ok(()) => Ok(()),
            Err(e @ LicenseError::UnknownKid(_)) => Err(e),
            Err(_) => verifier.verify(kid, &canonical, &signature),
        }
    };
    let (kid, kid_from_claims) = match named {
        Some(kid) => {
            try_key(&kid)?;
            (kid, true)
        }
        None => {
            let kids = verifier.kids();
            if kids.is_empty() {
                return Err(LicenseError::NoTrustedKeys);
            }
            let found = kids.into_iter().find(|k| try_key(k).is_ok());
            let kid = found.ok_or_else(|| {
                LicenseError::BadSignature("no trusted key (the claims name no kid)".into())
            })?;
            (kid, false)
        }
    };

    let claims = parse_claims(&value)?;
    if claims.schema != LICENSE_SCHEMA {
        return Err(LicenseError::SchemaMismatch(claims.schema));
    }
    if now_unix > claims.exp {
        return Err(LicenseError::Expired {
            exp: claims.exp,
            now: now_unix,
        });
    }
    // `device: None` means the caller does not check binding (the collector checks the
    // client's binding header separately); `Some("")` is a machine with no device value, which
    // a bound pack does not verify on.
    if let (Some(expected), Some(actual)) = (claims.device.as_deref(), device)
        && !expected.is_empty()
        && expected != actual
    {
        return Err(LicenseError::DeviceMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(VerifiedLicense {
        claims,
        kid,
        kid_from_claims,
    })
}

fn parse_claims(value: &serde_json::Value) -> Result<Claims, LicenseError> {
    let field_err =
        |field: &'static str, reason: String| LicenseError::InvalidField { field, reason };
    let get = |f: &str| value.get(f);
    let str_of = |f: &'static str| -> Result<String, LicenseError> {
        get(f)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| field_err(f, "not a string".into()))
    };
    let opt_str = |f: &'static str| -> Result<Option<String>, LicenseError> {
        match get(f) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(field_err(f, "not a string".into())),
        }
    };
    let exp = get("exp")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| field_err("exp", "not an integer (unix seconds)".into()))?;
    let features = get("features")
        .and_then(|v| v.as_array())
        .ok_or_else(|| field_err("features", "not an array".into()))?
        .iter()
        .map(|f| {
            f.as_str()
                .map(str::to_string)
                .ok_or_else(|| field_err("features", "not all strings".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let iat = match get("iat") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| field_err("iat", "not an integer".into()))?,
        ),
    };
    Ok(Claims {
        device: opt_str("device")?,
        exp,
        features,
        iat,
        kid: opt_str("kid")?.unwrap_or_default(),
        nonce: opt_str("nonce")?,
        plan: str_of("plan")?.parse()?,
        schema: str_of("schema")?,
        sub: opt_str("sub")?,
    })
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn decode_signature(text: &str) -> Result<Signature, LicenseError> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| LicenseError::MalformedSignature(e.to_string()))?;
    let arr: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
        LicenseError::MalformedSignature(format!("expected 64 bytes, got {}", bytes.len()))
    })?;
    Ok(Signature::from_bytes(&arr))
}

/// Derives a signing key from a 32-byte seed (as the CCC issuer does).
pub fn signing_key_from_seed(seed: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(seed)
}

/// Standard base64 of a public key (the format of keyrings and `AGENTOS_LICENSE_PUBKEYS`).
pub fn public_key_base64(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// Standard base64 of a signing key's seed (the secret key file format).
pub fn seed_base64(key: &SigningKey) -> String {
    B64.encode(key.to_bytes())
}

/// Parses a signing key from the base64 seed text written by [`seed_base64`].
///
/// # Errors
/// [`LicenseError::BadKey`] when the text is not base64 of 32 bytes.
pub fn signing_key_from_base64(text: &str) -> Result<SigningKey, LicenseError> {
    let bad = |reason: String| LicenseError::BadKey {
        kid: "signing key".into(),
        reason,
    };
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        bad(format!(
            "expected a 32-byte seed, got {} bytes",
            bytes.len()
        ))
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs `claims` (over their JCS form) and returns the combined pack text.
///
/// The claims are embedded in their canonical form, so the exact stored bytes and the
/// canonical bytes coincide and either kind of verifier accepts the pack.
pub fn issue_pack(key: &SigningKey, claims: &Claims) -> String {
    let canonical = canonical_claims(claims);
    let sig = key.sign(canonical.as_bytes());
    format!(
        "{{\"license\":{canonical},\"signature\":\"{}\"}}",
        B64.encode(sig.to_bytes())
    )
}

/// The RFC 8785 canonical JSON of `claims`.
pub fn canonical_claims(claims: &Claims) -> String {
    // Claims contain only strings, integers and string arrays: serialization cannot fail.
    serde_json_canonicalizer::to_string(claims).unwrap_or_default()
}

/// Signs arbitrary claim bytes (for split files) and returns the base64 signature.
pub fn sign_bytes(key: &SigningKey, bytes: &[u8]) -> String {
    B64.encode(key.sign(bytes).to_bytes())
}

/// Fails on the first JSON object (at any depth) that repeats a key.
///
/// # Errors
/// [`LicenseError::DuplicateKey`] or [`LicenseError::Malformed`].
pub fn reject_duplicate_keys(bytes: &[u8]) -> Result<(), LicenseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match NoDuplicates::deserialize(&mut de).and_then(|_| de.end()) {
        Ok(()) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            match msg.strip_prefix(DUP_PREFIX) {
                Some(rest) => Err(LicenseError::DuplicateKey(
                    rest.split(" at line").next().unwrap_or(rest).to_string(),
                )),
                None => Err(LicenseError::Malformed(msg)),
            }
        }
    }
}

const DUP_PREFIX: &str = "duplicate key ";

struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDupVisitor)
    }
}

struct NoDupVisitor;

impl<'de> Visitor<'de> for NoDupVisitor {
    type Value = NoDuplicates;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicates)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("{DUP_PREFIX}{key}")));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}
