//! Shared helpers: licensed configs with keys made in the test, sample turns.

use std::path::Path;

use agentos_config::Config;
use agentos_core::license::{self, Claims};

/// A fresh random signing key (real Ed25519, OS RNG seed).
pub fn signing_key() -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("os rng");
    license::signing_key_from_seed(&seed)
}

/// Claims for `features`, expiring `exp`.
pub fn claims(kid: &str, features: &[&str], exp: i64) -> Claims {
    agentos_test_support::fixtures::license_claims(kid, features, exp)
}

/// A config for `dir` whose license grants `features` (empty = no pack at all).
pub fn licensed_config(dir: &Path, features: &[&str]) -> Config {
    let mut cfg = Config::with_data_dir(dir.join("data"));
    if features.is_empty() {
        return cfg;
    }
    let key = signing_key();
    let pack = license::issue_pack(&key, &claims("k1", features, 4_000_000_000));
    let pack_path = dir.join("pack.json");
    std::fs::write(&pack_path, pack).expect("write pack");
    cfg.license.pack = Some(pack_path);
    cfg.license.pubkeys.insert(
        "k1".into(),
        license::public_key_base64(&key.verifying_key()),
    );
    cfg
}

pub use agentos_test_support::fixtures::seed_turn;

/// Every line of `windows.jsonl` as JSON.
pub fn log_lines(data_dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(data_dir.join("windows.jsonl")).expect("read log");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect()
}

/// `metrics_summary.json` as JSON.
pub fn summary(data_dir: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(data_dir.join("metrics_summary.json")).expect("read summary");
    serde_json::from_str(&text).expect("summary parses")
}
