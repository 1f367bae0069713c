//! The session-start license handshake with real Ed25519 packs.

use agentos_config::license::{read_signing_key, write_key_pair};
use agentos_core::license;
use agentos_core::tier::Tier;
use agentos_recorder::licensing::verify_file;
use agentos_recorder::{LicenseProblem, Recorder, RecorderError, StartRequest};

use crate::support::{claims, licensed_config, log_lines, signing_key};

fn req(tier: Tier, strict: bool) -> StartRequest {
    StartRequest {
        tier: Some(tier),
        strict_license: strict,
        ..StartRequest::default()
    }
}

#[test]
fn no_pack_records_locally_and_notes_why_in_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let out = rec
        .start_session(req(Tier::Minimized, false))
        .expect("start");
    assert_eq!(out.session.tier, Tier::Local);
    assert_eq!(out.session.requested_tier, Tier::Minimized);
    assert_eq!(out.downgrade, Some(LicenseProblem::NoPack));
    let line = &log_lines(&cfg.data_dir)[0];
    assert_eq!(line["tier"], "local");
    assert_eq!(line["session"]["privacy_tier"], "local");
    assert_eq!(
        line["session"]["metadata"]["agentos.requested_tier"],
        "minimized"
    );
    assert_eq!(
        line["session"]["metadata"]["agentos.license_problem"],
        "no_pack"
    );
}

#[test]
fn a_tier_without_its_entitlement_records_as_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &["telemetry_minimized"]);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let out = rec.start_session(req(Tier::Full, false)).expect("start");
    assert_eq!(out.session.tier, Tier::Local);
    assert!(
        matches!(
            out.downgrade,
            Some(LicenseProblem::MissingEntitlement { .. })
        ),
        "{:?}",
        out.downgrade
    );
    let r = rec
        .record_turn(crate::support::seed_turn("m"))
        .expect("turn still recorded");
    assert_eq!(r.tier, Tier::Local);
    let line = &log_lines(&cfg.data_dir)[0];
    assert_eq!(
        line["session"]["metadata"]["agentos.license_problem"],
        "missing_entitlement"
    );
    assert_eq!(
        line["session"]["metadata"]["agentos.requested_tier"],
        "full"
    );
}

#[test]
fn strict_license_refuses_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &["telemetry_minimized"]);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let err = rec
        .start_session(req(Tier::Full, true))
        .expect_err("strict");
    assert!(
        matches!(
            err,
            RecorderError::LicenseRefused {
                requested: Tier::Full,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("telemetry_full"), "{err}");
    assert!(!cfg.data_dir.join("windows.jsonl").exists());
    assert!(rec.current_session().expect("read").is_none());
    // The entitled tier passes strict mode.
    let ok = rec
        .start_session(req(Tier::Minimized, true))
        .expect("minimized is granted");
    assert_eq!(ok.session.tier, Tier::Minimized);
    assert!(ok.license.is_some());
}

#[test]
fn expired_and_foreign_packs_are_rejected_with_their_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = licensed_config(dir.path(), &["telemetry_full"]);
    let key = signing_key();
    let ring_kid = "k1";
    cfg.license.pubkeys.insert(
        ring_kid.into(),
        license::public_key_base64(&key.verifying_key()),
    );
    // Expired.
    let expired = license::issue_pack(&key, &claims("k1", &["telemetry_full"], 1_000));
    let p = dir.path().join("expired.json");
    std::fs::write(&p, expired).expect("write");
    cfg.license.pack = Some(p);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let out = rec.start_session(req(Tier::Full, false)).expect("start");
    let problem = out.downgrade.expect("downgraded");
    assert_eq!(problem.code(), "expired");
    assert!(problem.to_string().contains("expired"), "{problem}");

    // Signed by a key the keyring does not trust under that kid.
    let other = signing_key();
    let forged = license::issue_pack(&other, &claims("k1", &["telemetry_full"], 4_000_000_000));
    let p = dir.path().join("forged.json");
    std::fs::write(&p, forged).expect("write");
    cfg.license.pack = Some(p);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let err = rec
        .start_session(req(Tier::Full, true))
        .expect_err("strict");
    match err {
        RecorderError::LicenseRefused { problem, .. } => {
            assert_eq!(problem.code(), "bad_signature")
        }
        other => panic!("unexpected {other}"),
    }

    // Unknown kid.
    let unknown = license::issue_pack(&key, &claims("k9", &["telemetry_full"], 4_000_000_000));
    let p = dir.path().join("unknown.json");
    std::fs::write(&p, unknown).expect("write");
    cfg.license.pack = Some(p);
    let mut rec = Recorder::open(cfg).expect("open");
    let out = rec.start_session(req(Tier::Full, false)).expect("start");
    assert_eq!(out.downgrade.map(|p| p.code()), Some("unknown_kid"));
}

#[test]
fn do_not_track_forces_local_even_in_strict_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = licensed_config(dir.path(), &["telemetry_full"]);
    cfg.do_not_track = true;
    let mut rec = Recorder::open(cfg).expect("open");
    let out = rec.start_session(req(Tier::Full, true)).expect("start");
    assert_eq!(out.session.tier, Tier::Local);
    assert_eq!(out.downgrade, Some(LicenseProblem::DoNotTrack));
}

#[test]
fn split_pack_files_verify_and_keygen_files_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = signing_key();
    let files = write_key_pair(&dir.path().join("keys"), "k7", &key).expect("keygen");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&files.secret)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        write_key_pair(&dir.path().join("keys"), "k7", &key).is_err(),
        "never overwrites"
    );
    let read_back = read_signing_key(&files.secret).expect("read key");
    assert_eq!(read_back.verifying_key(), key.verifying_key());

    let claims_bytes = br#"{"exp":4000000000,"features":["telemetry_full"],"kid":"k7","plan":"pro","schema":"ccp.license.v1"}"#;
    let lic = dir.path().join("lic.json");
    std::fs::write(&lic, claims_bytes).expect("write");
    std::fs::write(
        dir.path().join("lic.json.sig"),
        license::sign_bytes(&read_back, claims_bytes),
    )
    .expect("write sig");
    let mut ring = license::Keyring::new();
    ring.insert_base64("k7", &files.public_base64).expect("key");
    let ok = verify_file(&lic, &ring, 1_900_000_000, None).expect("split verifies");
    assert_eq!(ok.kid, "k7");
    // Tamper with the claims: the split signature no longer matches.
    std::fs::write(
        &lic,
        claims_bytes
            .to_vec()
            .iter()
            .map(|b| if *b == b'7' { b'8' } else { *b })
            .collect::<Vec<_>>(),
    )
    .expect("tamper");
    assert!(verify_file(&lic, &ring, 1_900_000_000, None).is_err());
}

#[test]
fn the_local_summary_carries_the_license_block_but_never_the_pack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &["telemetry_minimized"]);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    rec.start_session(req(Tier::Minimized, true))
        .expect("start");
    rec.record_turn(crate::support::seed_turn("glm-4.6"))
        .expect("turn");
    rec.flush().expect("flush");
    let s = crate::support::summary(&cfg.data_dir);
    let lic = &s["license"];
    assert_eq!(lic["plan"], "pro");
    assert_eq!(lic["kid"], "k1");
    assert_eq!(
        lic["entitlements"],
        serde_json::json!(["telemetry_minimized"])
    );
    assert_eq!(lic["exp"], 4_000_000_000i64);
    assert_eq!(lic["source"], "configured");
    assert!(lic["days_left"].as_i64().expect("days") > 1000);
    let pack = std::fs::read_to_string(cfg.license.pack.as_ref().expect("pack")).expect("read");
    let sig: serde_json::Value = serde_json::from_str(&pack).expect("json");
    let text = std::fs::read_to_string(cfg.data_dir.join("metrics_summary.json")).expect("read");
    assert!(!text.contains(sig["signature"].as_str().expect("sig")));
    assert!(!text.contains("\"nonce\"") && !text.contains("\"signature\""));

    // Without a license there is no block at all.
    let other = tempfile::tempdir().expect("tempdir");
    let bare = licensed_config(other.path(), &[]);
    let mut rec = Recorder::open(bare.clone()).expect("open");
    rec.start_session(req(Tier::Local, false)).expect("start");
    rec.flush().expect("flush");
    assert!(
        crate::support::summary(&bare.data_dir)
            .get("license")
            .is_none()
    );
}

#[test]
fn a_caller_handshake_grants_the_tier_without_a_configured_pack_but_not_past_do_not_track() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut rec = Recorder::open(cfg.clone()).expect("open");
    let out = rec
        .start_session_handshaken(req(Tier::Full, false))
        .expect("start");
    assert_eq!((out.session.tier, out.downgrade), (Tier::Full, None));
    // The appended envelope is reported as written, so embeddings need not re-read the log.
    let line = &log_lines(&cfg.data_dir)[0];
    assert_eq!(
        serde_json::to_value(&out.recorded.envelope).expect("json"),
        *line
    );

    let mut dnt = cfg.clone();
    dnt.do_not_track = true;
    let mut rec = Recorder::open(dnt).expect("open");
    let out = rec
        .start_session_handshaken(req(Tier::Full, false))
        .expect("start");
    assert_eq!(out.session.tier, Tier::Local);
    assert_eq!(out.downgrade, Some(LicenseProblem::DoNotTrack));
}
