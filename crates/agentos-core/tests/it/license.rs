use agentos_core::license::*;
use base64::Engine as _;

fn fresh_key() -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("os randomness");
    signing_key_from_seed(&seed)
}

fn claims(kid: &str) -> Claims {
    Claims {
        device: None,
        exp: 2_000_000_000,
        features: vec!["telemetry_minimized".into(), "telemetry_full".into()],
        iat: Some(1_700_000_000),
        kid: kid.into(),
        nonce: Some("n".into()),
        plan: Plan::Pro,
        schema: LICENSE_SCHEMA.into(),
        sub: Some("dev@example.invalid".into()),
    }
}

const NOW: i64 = 1_900_000_000;

fn ring_with(kid: &str, key: &ed25519_dalek::SigningKey) -> Keyring {
    let mut ring = Keyring::new();
    ring.insert(kid, key.verifying_key());
    ring
}

#[test]
fn a_pack_signed_by_a_trusted_key_verifies_and_exposes_its_claims() {
    let key = fresh_key();
    let pack = issue_pack(&key, &claims("k1"));
    let ok = verify_pack(pack.as_bytes(), &ring_with("k1", &key), NOW, None).expect("valid");
    assert_eq!(ok.kid, "k1");
    assert_eq!(ok.claims.plan, Plan::Pro);
    assert!(ok.has(Entitlement::TelemetryFull));
    assert!(!ok.has(Entitlement::ZaiOffload));
}

#[test]
fn pretty_printed_or_reordered_claims_still_verify_through_the_canonical_form() {
    let key = fresh_key();
    let c = claims("k1");
    let sig = sign_bytes(&key, canonical_claims(&c).as_bytes());
    let pretty = format!(
        "{{\n  \"signature\": \"{sig}\",\n  \"license\": {{\n    \"schema\": \"ccp.license.v1\", \"plan\": \"pro\", \"kid\": \"k1\",\n    \"features\": [\"telemetry_minimized\", \"telemetry_full\"], \"exp\": 2000000000, \"iat\": 1700000000, \"nonce\": \"n\", \"sub\": \"dev@example.invalid\"\n  }}\n}}"
    );
    verify_pack(pretty.as_bytes(), &ring_with("k1", &key), NOW, None)
        .expect("canonical form verifies");
}

#[test]
fn a_signature_over_the_exact_stored_bytes_verifies_like_the_ccc_shim() {
    let key = fresh_key();
    // Go-style compact bytes with a field order JCS would not produce is still accepted
    // because the shim signs exactly what it stores.
    let raw = r#"{"schema":"ccp.license.v1","kid":"k1","plan":"trial","features":["telemetry_minimized"],"exp":2000000000}"#;
    let sig = sign_bytes(&key, raw.as_bytes());
    let ring = ring_with("k1", &key);
    verify_split(raw.as_bytes(), &format!("{sig}\n"), &ring, NOW, None).expect("split files");
    let pack = format!(r#"{{"license":{raw},"signature":"{sig}"}}"#);
    let ok = verify_pack(pack.as_bytes(), &ring, NOW, None).expect("combined");
    assert_eq!(ok.claims.plan, Plan::Trial);
}

#[test]
fn every_rejection_names_its_cause() {
    let key = fresh_key();
    let other = fresh_key();
    let ring = ring_with("k1", &key);
    let good = issue_pack(&key, &claims("k1"));

    let unknown = issue_pack(&key, &claims("k9"));
    assert_eq!(
        verify_pack(unknown.as_bytes(), &ring, NOW, None)
            .unwrap_err()
            .code(),
        "unknown_kid"
    );

    let forged = issue_pack(&other, &claims("k1"));
    let err = verify_pack(forged.as_bytes(), &ring, NOW, None).unwrap_err();
    assert_eq!(err.code(), "bad_signature");
    assert!(err.to_string().contains("k1"));

    let tampered = good.replace("\"pro\"", "\"enterprise\"");
    assert_eq!(
        verify_pack(tampered.as_bytes(), &ring, NOW, None)
            .unwrap_err()
            .code(),
        "bad_signature"
    );

    let err = verify_pack(good.as_bytes(), &ring, 2_000_000_001, None).unwrap_err();
    assert_eq!(
        err,
        LicenseError::Expired {
            exp: 2_000_000_000,
            now: 2_000_000_001
        }
    );
    verify_pack(good.as_bytes(), &ring, 2_000_000_000, None).expect("now == exp is still valid");

    let mut c = claims("k1");
    c.schema = "ccp.license.v2".into();
    let wrong_schema = issue_pack(&key, &c);
    assert!(
        matches!(verify_pack(wrong_schema.as_bytes(), &ring, NOW, None), Err(LicenseError::SchemaMismatch(s)) if s == "ccp.license.v2")
    );

    let missing = r#"{"schema":"ccp.license.v1","kid":"k1","features":[],"exp":2000000000}"#;
    let pack = format!(
        r#"{{"license":{missing},"signature":"{}"}}"#,
        sign_bytes(&key, missing.as_bytes())
    );
    assert_eq!(
        verify_pack(pack.as_bytes(), &ring, NOW, None).unwrap_err(),
        LicenseError::MissingField("plan")
    );

    let mut c = claims("k1");
    c.device = Some("device-a".into());
    let bound = issue_pack(&key, &c);
    assert!(matches!(
        verify_pack(bound.as_bytes(), &ring, NOW, Some("device-b")),
        Err(LicenseError::DeviceMismatch { .. })
    ));
    verify_pack(bound.as_bytes(), &ring, NOW, Some("device-a")).expect("same device");
    verify_pack(bound.as_bytes(), &ring, NOW, None)
        .expect("unknown local device is not a mismatch");

    let dup = good.replacen(
        "{\"license\":{",
        "{\"license\":{\"plan\":\"enterprise\",",
        1,
    );
    assert_eq!(
        verify_pack(dup.as_bytes(), &ring, NOW, None).unwrap_err(),
        LicenseError::DuplicateKey("plan".into())
    );

    let bad_b64 = good.replace("\"signature\":\"", "\"signature\":\"!!");
    assert_eq!(
        verify_pack(bad_b64.as_bytes(), &ring, NOW, None)
            .unwrap_err()
            .code(),
        "malformed_signature"
    );

    assert_eq!(
        verify_pack(b"{not json", &ring, NOW, None)
            .unwrap_err()
            .code(),
        "malformed"
    );
    assert_eq!(
        verify_pack(br#"{"license":{}}"#, &ring, NOW, None).unwrap_err(),
        LicenseError::MissingField("signature")
    );
}

#[test]
fn the_ccc_fixture_packs_with_fake_signatures_are_rejected() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut ring = Keyring::new();
    ring.insert("test-key", fresh_key().verifying_key());
    for name in ["full_pack.json", "minimized_pack.json"] {
        let bytes = std::fs::read(dir.join(name)).expect("fixture");
        let err = verify_pack(&bytes, &ring, NOW, None).expect_err(name);
        assert_eq!(err.code(), "malformed_signature", "{name}: {err}");
    }
}

#[test]
fn keyring_parses_the_env_format_with_several_keys_for_rotation() {
    let (a, b) = (fresh_key(), fresh_key());
    let spec = format!(
        "old={}, new={}",
        public_key_base64(&a.verifying_key()),
        public_key_base64(&b.verifying_key())
    );
    let mut ring = Keyring::new();
    ring.extend_from_env(&spec).expect("parse");
    assert_eq!(ring.kids().collect::<Vec<_>>(), vec!["new", "old"]);
    verify_pack(issue_pack(&a, &claims("old")).as_bytes(), &ring, NOW, None).expect("old key");
    verify_pack(issue_pack(&b, &claims("new")).as_bytes(), &ring, NOW, None).expect("new key");

    let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
    let err = Keyring::new()
        .extend_from_env(&format!("k={short}"))
        .unwrap_err();
    assert_eq!(err.code(), "bad_key");
    assert!(err.to_string().contains("31"));
    assert_eq!(
        Keyring::new()
            .extend_from_env("justbase64")
            .unwrap_err()
            .code(),
        "bad_key"
    );
}

#[test]
fn claims_without_a_kid_verify_by_trying_the_trusted_keys_and_say_which_matched() {
    let (a, b) = (fresh_key(), fresh_key());
    let spec = format!(
        "{},{}",
        public_key_base64(&a.verifying_key()),
        public_key_base64(&b.verifying_key())
    );
    let mut ring = Keyring::new();
    ring.extend_from_env(&spec).expect("plain base64 keys");
    assert_eq!(ring.kids().collect::<Vec<_>>(), vec!["env_1", "env_2"]);
    // A CCC-style pack: exact compact claim bytes, keys sorted, no kid.
    let claims_json = r#"{"exp":4000000000,"features":["telemetry_full"],"plan":"pro","schema":"ccp.license.v1"}"#;
    let sig = sign_bytes(&b, claims_json.as_bytes());
    let ok = verify_split(claims_json.as_bytes(), &sig, &ring, NOW, None).expect("verifies");
    assert_eq!((ok.kid.as_str(), ok.kid_from_claims), ("env_2", false));
    assert!(ok.claims.kid.is_empty());
    // Signed by a key nobody trusts: rejected after trying every key.
    let stranger = sign_bytes(&fresh_key(), claims_json.as_bytes());
    let err = verify_split(claims_json.as_bytes(), &stranger, &ring, NOW, None).unwrap_err();
    assert_eq!(err.code(), "bad_signature", "{err}");
    // No trusted keys at all.
    let err = verify_split(claims_json.as_bytes(), &sig, &Keyring::new(), NOW, None).unwrap_err();
    assert_eq!(err.code(), "no_public_keys");
}

#[test]
fn a_kid_that_names_another_key_than_the_signer_is_rejected() {
    let (a, b) = (fresh_key(), fresh_key());
    let mut ring = ring_with("a", &a);
    ring.insert("b", b.verifying_key());
    // Claims say kid "a", but key b signed them.
    let claims_json =
        r#"{"exp":4000000000,"features":[],"kid":"a","plan":"pro","schema":"ccp.license.v1"}"#;
    let sig = sign_bytes(&b, claims_json.as_bytes());
    let err = verify_split(claims_json.as_bytes(), &sig, &ring, NOW, None).unwrap_err();
    assert_eq!(err.code(), "bad_signature", "{err}");
    let ok = verify_split(
        claims_json.as_bytes(),
        &sign_bytes(&a, claims_json.as_bytes()),
        &ring,
        NOW,
        None,
    )
    .expect("signed by the named key");
    assert!(ok.kid_from_claims);
}

#[test]
fn an_injected_verifier_replaces_ed25519() {
    // A test double: every signature is good under kid "fake", nothing else is known.
    struct AcceptAll;
    impl Verifier for AcceptAll {
        fn verify(
            &self,
            kid: &str,
            _: &[u8],
            _: &ed25519_dalek::Signature,
        ) -> Result<(), LicenseError> {
            if kid == "fake" {
                Ok(())
            } else {
                Err(LicenseError::UnknownKid(kid.into()))
            }
        }
        fn kids(&self) -> Vec<String> {
            vec!["fake".into()]
        }
    }
    let zero_sig = base64::engine::general_purpose::STANDARD.encode([0u8; 64]);
    let claims_json = r#"{"exp":4000000000,"features":["telemetry_minimized"],"plan":"trial","schema":"ccp.license.v1"}"#;
    let ok =
        verify_split(claims_json.as_bytes(), &zero_sig, &AcceptAll, NOW, None).expect("double");
    assert!(ok.has(Entitlement::TelemetryMinimized) && !ok.has(Entitlement::TelemetryFull));
    let other =
        r#"{"exp":4000000000,"features":[],"kid":"real","plan":"trial","schema":"ccp.license.v1"}"#;
    assert_eq!(
        verify_split(other.as_bytes(), &zero_sig, &AcceptAll, NOW, None)
            .unwrap_err()
            .code(),
        "unknown_kid"
    );
}

#[test]
fn seed_and_public_key_encodings_round_trip() {
    let key = fresh_key();
    let back = signing_key_from_base64(&seed_base64(&key)).expect("seed");
    assert_eq!(back.verifying_key(), key.verifying_key());
    assert!(signing_key_from_base64("AAAA").is_err());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_single_byte_change_to_the_signed_claims_is_rejected(idx in 0usize..200, byte in any::<u8>()) {
            let key = signing_key_from_seed(&[9u8; 32]);
            let ring = ring_with("k1", &key);
            let pack = issue_pack(&key, &claims("k1"));
            let start = pack.find("{\"device").or_else(|| pack.find("{\"exp")).expect("claims start");
            let end = pack.find(",\"signature\"").expect("claims end");
            let pos = start + idx % (end - start);
            let mut bytes = pack.into_bytes();
            prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            prop_assert!(verify_pack(&bytes, &ring, NOW, None).is_err());
        }
    }
}
