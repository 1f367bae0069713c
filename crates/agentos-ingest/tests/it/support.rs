//! Test helpers: locating the shared generators and running them into temp dirs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate's committed fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture file by name.
pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The generator script `name`: `$AGENTOS_SHARED_DIR/tools`, else `<repo>/../shared/tools`,
/// else the copy committed under `tests/fixtures/tools`.
pub fn generator(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("AGENTOS_SHARED_DIR") {
        candidates.push(PathBuf::from(d).join("tools").join(name));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    candidates.push(repo.join("../shared/tools").join(name));
    candidates.push(fixtures().join("tools").join(name));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("generator script not found (set AGENTOS_SHARED_DIR)")
}

/// Runs a generator with `args` into `out` and returns its TRUTH.json.
pub fn generate(script: &str, out: &Path, args: &[&str]) -> serde_json::Value {
    run_generator(&generator(script), out, args)
}

/// Like [`generate`] but always with the committed copy of the script, for pinned snapshots
/// that must not move when the shared generator changes.
pub fn generate_pinned(script: &str, out: &Path, args: &[&str]) -> serde_json::Value {
    run_generator(&fixtures().join("tools").join(script), out, args)
}

fn run_generator(script: &Path, out: &Path, args: &[&str]) -> serde_json::Value {
    let status = Command::new("python3")
        .arg(script)
        .arg(out)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs");
    assert!(status.success(), "{} failed", script.display());
    let t = std::fs::read(out.join("TRUTH.json")).expect("TRUTH.json written");
    serde_json::from_slice(&t).expect("TRUTH.json is json")
}

/// Run options for a full read with `threads` workers.
pub fn run_opts(threads: usize) -> agentos_ingest::ingest::RunOptions {
    agentos_ingest::ingest::RunOptions {
        threads,
        range: agentos_ingest::time::TimeRange::default(),
    }
}

/// Report options: `kind`, UTC, weeks from Monday, no range, the embedded prices.
pub fn utc_report(
    kind: agentos_ingest::report::ReportKind,
) -> agentos_ingest::report::ReportOptions {
    agentos_ingest::report::ReportOptions {
        kind,
        tz: agentos_ingest::time::time_zone(Some("UTC")).expect("utc"),
        tz_name: "UTC".into(),
        week_start: jiff::civil::Weekday::Monday,
        range: agentos_ingest::time::TimeRange::default(),
        prices: agentos_ingest::PriceTable::embedded(),
        now_ms: 0,
        active_only: false,
        token_limit: None,
        filters: Default::default(),
    }
}
