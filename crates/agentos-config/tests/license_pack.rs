//! The one license-pack reader on real files with real Ed25519 keys, and the one rule for
//! relative pack paths (flag and environment: working directory; config file: its directory).

use std::path::{Path, PathBuf};

use agentos_config::license::{generate_signing_key, sig_path};
use agentos_config::{Config, Env, LicensePack, PackError};
use agentos_core::license::{self, Claims, Keyring};
use ed25519_dalek::SigningKey;

const NOW: i64 = 1_900_000_000;

fn claims(kid: &str) -> Claims {
    agentos_test_support::fixtures::license_claims(kid, &["telemetry_full"], 4_000_000_000)
}

fn ring(kid: &str, key: &SigningKey) -> Keyring {
    let mut ring = Keyring::new();
    ring.insert_base64(kid, &license::public_key_base64(&key.verifying_key()))
        .expect("trusted key");
    ring
}

/// Writes a combined pack for `kid` at `path` (creating its directory).
fn write_combined(path: &Path, kid: &str, key: &SigningKey) -> Vec<u8> {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let pack = license::issue_pack(key, &claims(kid)).into_bytes();
    std::fs::write(path, &pack).expect("write pack");
    pack
}

#[test]
fn a_combined_pack_is_kept_byte_for_byte_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = generate_signing_key().expect("key");
    let path = dir.path().join("pack.json");
    let bytes = write_combined(&path, "k1", &key);
    // A stray .sig beside a combined pack must not change how it is read.
    std::fs::write(sig_path(&path), "not a signature").expect("write sig");

    let pack = LicensePack::read(&path).expect("read");
    assert!(!pack.is_split());
    assert_eq!(pack.path(), path);
    assert_eq!(pack.combined_bytes().as_ref(), bytes.as_slice());
    let lic = pack.verify(&ring("k1", &key), NOW, None).expect("verifies");
    assert_eq!(lic.kid, "k1");
    assert!(
        pack.verify(
            &ring("k1", &generate_signing_key().expect("key")),
            NOW,
            None
        )
        .is_err(),
        "a foreign key must not verify it"
    );
}

#[test]
fn a_split_pack_is_spliced_with_the_claim_bytes_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = generate_signing_key().expect("key");
    // Not canonical on purpose (spaces, key order): the signature covers these exact bytes.
    let claims_bytes = br#"{ "schema":"ccp.license.v1", "plan":"pro", "kid":"k7", "features":["telemetry_full"], "exp":4000000000 }"#;
    let path = dir.path().join("lic.json");
    std::fs::write(&path, claims_bytes).expect("write claims");
    std::fs::write(
        sig_path(&path),
        format!("{}\n", license::sign_bytes(&key, claims_bytes)),
    )
    .expect("write sig");

    let pack = LicensePack::read(&path).expect("read");
    assert!(pack.is_split());
    let ring = ring("k7", &key);
    assert_eq!(
        pack.verify(&ring, NOW, None).expect("split verifies").kid,
        "k7"
    );
    // The spliced combined form is what the collector receives; it verifies as a pack too.
    let combined = pack.combined_bytes().into_owned();
    let text = String::from_utf8(combined.clone()).expect("utf-8");
    assert!(
        text.contains(std::str::from_utf8(claims_bytes).expect("utf-8")),
        "{text}"
    );
    let lic = license::verify_pack(&combined, &ring, NOW, None).expect("combined verifies");
    assert_eq!(lic.kid, "k7");

    // Tampered claims no longer match the split signature.
    let tampered: Vec<u8> = claims_bytes
        .iter()
        .map(|b| if *b == b'7' { b'8' } else { *b })
        .collect();
    std::fs::write(&path, tampered).expect("tamper");
    let pack = LicensePack::read(&path).expect("read");
    assert!(pack.verify(&ring, NOW, None).is_err());
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let err = LicensePack::read(&missing).expect_err("missing");
    assert_eq!(err.code(), "pack_unreadable");
    assert!(err.to_string().contains("missing.json"), "{err}");

    let claims_only = dir.path().join("claims.json");
    std::fs::write(&claims_only, br#"{"kid":"k1"}"#).expect("write");
    let err = LicensePack::read(&claims_only).expect_err("no sig");
    assert!(matches!(err, PackError::NotAPack { .. }), "{err}");
    assert_eq!(err.code(), "pack_malformed");
    assert!(err.to_string().contains("claims.json.sig"), "{err}");
}

/// A scratch tree with a working directory and a config dir, each holding a pack at
/// `lic/pack.json` signed for a different kid, so the kid tells which file was read.
struct Tree {
    _tmp: tempfile::TempDir,
    cwd: PathBuf,
    conf_dir: PathBuf,
    config_file: PathBuf,
    data_dir: PathBuf,
    key: SigningKey,
}

impl Tree {
    fn new(file_pack: Option<&str>) -> Tree {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cwd = tmp.path().join("cwd");
        let conf_dir = tmp.path().join("conf");
        let key = generate_signing_key().expect("key");
        write_combined(&cwd.join("lic/pack.json"), "from_cwd", &key);
        write_combined(&conf_dir.join("lic/pack.json"), "from_conf", &key);
        let mut toml = String::new();
        if let Some(p) = file_pack {
            toml.push_str(&format!("[license]\npack = {p:?}\n"));
        }
        let config_file = conf_dir.join("agentos.toml");
        std::fs::write(&config_file, toml).expect("write config");
        Tree {
            data_dir: tmp.path().join("data"),
            _tmp: tmp,
            cwd,
            conf_dir,
            config_file,
            key,
        }
    }

    fn load(&self, env: &[(&str, &str)]) -> (Config, Env) {
        let env = Env::from_pairs(env.iter().copied()).with_cwd(&self.cwd);
        let cfg = Config::load_with_env(Some(&self.data_dir), Some(&self.config_file), &env)
            .expect("load");
        (cfg, env)
    }

    fn kid_of(&self, cfg: &Config) -> String {
        let mut ring = ring("from_cwd", &self.key);
        ring.insert("from_conf", self.key.verifying_key());
        let path = cfg.license.pack.as_deref().expect("a pack is configured");
        LicensePack::read(path)
            .expect("read")
            .verify(&ring, NOW, None)
            .expect("verifies")
            .kid
    }
}

#[test]
fn a_relative_pack_in_the_config_file_is_relative_to_the_file() {
    let t = Tree::new(Some("lic/pack.json"));
    let (cfg, _) = t.load(&[]);
    assert_eq!(cfg.license.pack, Some(t.conf_dir.join("lic/pack.json")));
    assert_eq!(t.kid_of(&cfg), "from_conf");
}

#[test]
fn a_relative_pack_from_the_environment_is_relative_to_the_working_directory() {
    let t = Tree::new(Some("other/ignored.json"));
    let (cfg, _) = t.load(&[("AGENTOS_LICENSE_PACK", "lic/pack.json")]);
    assert_eq!(cfg.license.pack, Some(t.cwd.join("lic/pack.json")));
    assert_eq!(t.kid_of(&cfg), "from_cwd");
}

#[test]
fn a_relative_pack_from_a_flag_is_relative_to_the_working_directory_and_wins() {
    let t = Tree::new(Some("lic/pack.json"));
    let (mut cfg, env) = t.load(&[("AGENTOS_LICENSE_PACK", "elsewhere.json")]);
    cfg.set_license_pack_flag(Path::new("lic/pack.json"), &env);
    assert_eq!(cfg.license.pack, Some(t.cwd.join("lic/pack.json")));
    assert_eq!(t.kid_of(&cfg), "from_cwd");
}

#[test]
fn absolute_paths_are_kept_whatever_their_origin() {
    let t = Tree::new(None);
    let abs = t.conf_dir.join("lic/pack.json");
    let (cfg, _) = t.load(&[("AGENTOS_LICENSE_PACK", abs.to_str().expect("utf-8"))]);
    assert_eq!(cfg.license.pack, Some(abs));
}

#[test]
fn a_refreshed_pack_that_fails_falls_back_to_the_last_good_one_until_it_expires() {
    use agentos_config::{InForceError, PackSource, verify_with_fallback};
    let dir = tempfile::tempdir().expect("tempdir");
    let key = generate_signing_key().expect("key");
    let ring = ring("k1", &key);
    let pack = dir.path().join("pack.json");
    let last_good = dir.path().join("data/license/last_good.pack");
    let good = write_combined(&pack, "k1", &key);

    let first = verify_with_fallback(&pack, &last_good, &ring, NOW, None).expect("good pack");
    assert_eq!(first.source, PackSource::Configured);
    assert_eq!(std::fs::read(&last_good).expect("remembered"), good);

    // A refresh writes a pack signed by a key nobody trusts.
    write_combined(&pack, "k1", &generate_signing_key().expect("key"));
    let fallback = verify_with_fallback(&pack, &last_good, &ring, NOW, None).expect("fallback");
    match &fallback.source {
        PackSource::LastKnownGood { problem } => {
            assert!(problem.contains("signature"), "{problem}")
        }
        other => panic!("expected the last good pack, got {other:?}"),
    }
    assert_eq!(
        fallback.combined, good,
        "the header carries the pack that verified"
    );
    assert_eq!(
        std::fs::read(&last_good).expect("kept"),
        good,
        "a failing pack never replaces it"
    );

    // Never past the last good pack's own expiry: then the configured pack's problem stands.
    let err = verify_with_fallback(&pack, &last_good, &ring, 4_000_000_001, None)
        .expect_err("past the last good pack's expiry");
    assert!(matches!(err, InForceError::Invalid { .. }), "{err}");

    // A missing configured pack also falls back; a good new pack replaces the remembered one.
    std::fs::remove_file(&pack).expect("rm");
    assert!(matches!(
        verify_with_fallback(&pack, &last_good, &ring, NOW, None)
            .expect("fallback")
            .source,
        PackSource::LastKnownGood { .. }
    ));
    let newer = write_combined(&pack, "k1", &key);
    let again = verify_with_fallback(&pack, &last_good, &ring, NOW, None).expect("good again");
    assert_eq!(again.source, PackSource::Configured);
    assert_eq!(std::fs::read(&last_good).expect("remembered"), newer);
}
