//! A relative license pack path from the environment, a flag and the config file: the recorder's
//! session-start check and delivery's license header read the same file, chosen by the one rule
//! (flag and environment: the working directory; config file: the config file's directory).

use std::path::{Path, PathBuf};

use agentos_config::{Config, Env};
use agentos_core::license;
use agentos_core::tier::Tier;
use agentos_delivery::Settings;
use agentos_recorder::{Recorder, StartRequest};
use agentos_test_support::fixtures::license_claims;

enum Origin {
    Env,
    Flag,
    File,
}

/// Two packs at the same relative path `lic/pack.json`: one under the working directory
/// (kid `from_cwd`) and one beside the config file (kid `from_conf`); both keys are trusted, so
/// the kid tells which file was read.
fn check(origin: Origin, expected_kid: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().join("cwd");
    let conf = tmp.path().join("conf");
    let key = agentos_config::license::generate_signing_key().expect("key");
    let mut packs = Vec::new();
    for (dir, kid) in [(&cwd, "from_cwd"), (&conf, "from_conf")] {
        let path = dir.join("lic/pack.json");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let claims = license_claims(kid, &["telemetry_full"], 4_000_000_000);
        std::fs::write(&path, license::issue_pack(&key, &claims)).expect("write pack");
        packs.push((kid, path));
    }
    let public = license::public_key_base64(&key.verifying_key());
    let file_pack = match origin {
        Origin::File => "pack = \"lic/pack.json\"\n",
        Origin::Env | Origin::Flag => "",
    };
    let config_file = conf.join("agentos.toml");
    std::fs::write(
        &config_file,
        format!(
            "[ccc]\ntier = \"full\"\n[license]\n{file_pack}pubkeys = {{ from_cwd = \"{public}\", from_conf = \"{public}\" }}\n"
        ),
    )
    .expect("write config");
    let vars: &[(&str, &str)] = match origin {
        Origin::Env => &[("AGENTOS_LICENSE_PACK", "lic/pack.json")],
        Origin::Flag | Origin::File => &[],
    };
    let env = Env::from_pairs(vars.iter().copied()).with_cwd(&cwd);
    let data_dir = tmp.path().join("data");
    let mut cfg: Config =
        Config::load_with_env(Some(&data_dir), Some(&config_file), &env).expect("load");
    if let Origin::Flag = origin {
        cfg.set_license_pack_flag(Path::new("lic/pack.json"), &env);
    }
    let expected: &PathBuf = packs
        .iter()
        .find(|(kid, _)| *kid == expected_kid)
        .map(|(_, p)| p)
        .expect("expected pack");
    assert_eq!(cfg.license.pack.as_ref(), Some(expected));

    // Delivery sends the bytes of that file.
    let settings = Settings::from_config(&cfg).expect("settings");
    assert_eq!(
        settings.license_pack,
        Some(std::fs::read(expected).expect("read pack"))
    );

    // The recorder's session-start check verified that same file.
    let mut rec = Recorder::open(cfg).expect("open");
    let out = rec
        .start_session(StartRequest {
            tier: Some(Tier::Full),
            strict_license: true,
            ..StartRequest::default()
        })
        .expect("licensed session");
    assert_eq!(out.session.tier, Tier::Full);
    assert_eq!(out.license.map(|l| l.kid).as_deref(), Some(expected_kid));
}

#[test]
fn relative_pack_from_env_is_read_from_the_working_directory_by_both() {
    check(Origin::Env, "from_cwd");
}

#[test]
fn relative_pack_from_a_flag_is_read_from_the_working_directory_by_both() {
    check(Origin::Flag, "from_cwd");
}

#[test]
fn relative_pack_from_the_config_file_is_read_beside_it_by_both() {
    check(Origin::File, "from_conf");
}
