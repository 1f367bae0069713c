//! `agentos license keygen|issue|verify|status`: make Ed25519 key pairs, issue
//! `ccp.license.v1` packs, verify a pack, and show the configured license (never its signature).

use std::path::{Path, PathBuf};

use agentos_config::license::{
    generate_signing_key, random_nonce, read_signing_key, write_key_pair,
};
use agentos_config::{Env, PathOrigin};
use agentos_core::license::{self, Claims, LICENSE_SCHEMA, Plan, VerifiedLicense};
use agentos_recorder::licensing::{self, LicenseProblem};
use anyhow::{Context as _, bail};
use serde_json::json;

use crate::context::{Context, atomic_write};
use crate::flags::JsonReport;
use crate::output::{ExitStatus, error_line, print_json};

/// Subcommands of `agentos license`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a new Ed25519 key pair: `<kid>.key` (secret seed, base64, mode 0600) and `<kid>.pub`.
    Keygen(KeygenArgs),
    /// Issue a signed license pack.
    Issue(IssueArgs),
    /// Verify a pack against the trusted keys (exit 1 with the cause when invalid).
    Verify(VerifyArgs),
    /// Show the configured license: plan, kid, features, expiry (never the signature).
    Status(StatusArgs),
}

/// Arguments of `agentos license keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Directory for the key files (default: `<data_dir>/keys`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Key id (default: `k<YYYYMMDD>`).
    #[arg(long)]
    pub kid: Option<String>,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonReport,
}

/// Arguments of `agentos license issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// Secret key file written by `agentos license keygen`.
    #[arg(long)]
    pub key: PathBuf,
    /// Key id written into the claims (default: the key file's name without `.key`).
    #[arg(long)]
    pub kid: Option<String>,
    /// Plan: community, trial, pro or enterprise.
    #[arg(long, default_value = "pro")]
    pub plan: Plan,
    /// Entitlements, comma separated (e.g. telemetry_minimized,telemetry_full).
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// Expiry: a duration from now (`90d`, `12h`, `30m`, `2w`), an RFC 3339 time, or unix seconds.
    #[arg(long, default_value = "90d")]
    pub expires: String,
    /// Bind the license to a device: its `[license] device` value, or `this` for this machine's
    /// fingerprint (a salted hash of the OS machine id; see docs/configuration.md).
    #[arg(long)]
    pub device: Option<String>,
    /// Subject (email or `anon:…`).
    #[arg(long)]
    pub sub: Option<String>,
    /// Write the pack here (atomically) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print a JSON report (when --out is given).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `agentos license verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The pack (combined JSON, or the claims file of a split pack with `<PACK>.sig` beside it).
    pub pack: PathBuf,
    /// Extra trusted key, repeatable: KID=BASE64 (added to `[license] pubkeys`).
    #[arg(long = "pubkey", value_name = "KID=BASE64")]
    pub pubkeys: Vec<String>,
    /// Extra trusted key from a `.pub` file, repeatable: KID=PATH.
    #[arg(long = "pubkey-file", value_name = "KID=PATH")]
    pub pubkey_files: Vec<String>,
    /// This device's value for device-bound packs (default: `[license] device`, else this
    /// machine's fingerprint).
    #[arg(long)]
    pub device: Option<String>,
    /// `--json`.
    #[command(flatten)]
    pub json: JsonReport,
}

/// Arguments of `agentos license status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// `--json`.
    #[command(flatten)]
    pub json: JsonReport,
}

/// Runs `agentos license`.
pub fn run(cmd: Command, ctx: &Context) -> anyhow::Result<ExitStatus> {
    match cmd {
        Command::Keygen(a) => keygen(a, ctx),
        Command::Issue(a) => issue(a),
        Command::Verify(a) => verify(a, ctx),
        Command::Status(a) => status(a, ctx),
    }
}

fn keygen(a: KeygenArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let dir = match a.out {
        Some(d) => d,
        None => ctx.data_dir()?.join("keys"),
    };
    let kid = a.kid.unwrap_or_else(default_kid);
    check_kid(&kid)?;
    let key = generate_signing_key()?;
    let files = write_key_pair(&dir, &kid, &key)
        .with_context(|| format!("writing key pair {kid} into {}", dir.display()))?;
    if a.json.json {
        print_json(&json!({
            "kid": files.kid, "secret_key_file": files.secret, "public_key_file": files.public,
            "public_key": files.public_base64,
            "pubkeys_env": format!("{}={}", files.kid, files.public_base64),
        }))?;
    } else {
        println!(
            "secret key: {} (mode 0600; keep it private)",
            files.secret.display()
        );
        println!("public key: {}", files.public.display());
        println!(
            "trust it with: AGENTOS_LICENSE_PUBKEYS=\"{}={}\"",
            files.kid, files.public_base64
        );
        println!(
            "or in agentos.toml: [license] pubkeys = {{ {} = \"{}\" }}",
            files.kid, files.public_base64
        );
    }
    Ok(ExitStatus::Ok)
}

fn default_kid() -> String {
    format!("k{}", jiff::Timestamp::now().strftime("%Y%m%d"))
}

fn check_kid(kid: &str) -> anyhow::Result<()> {
    // The kid becomes a file name and appears in `kid=base64` lists.
    if kid.is_empty()
        || !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || kid.starts_with('.')
    {
        bail!("key id {kid:?} must be non-empty ASCII letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

fn issue(a: IssueArgs) -> anyhow::Result<ExitStatus> {
    let key = read_signing_key(&a.key).map_err(anyhow::Error::msg)?;
    let kid = match a.kid {
        Some(k) => k,
        None => a
            .key
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .with_context(|| format!("cannot derive a kid from {}; pass --kid", a.key.display()))?,
    };
    check_kid(&kid)?;
    if a.features.iter().any(|f| f.trim().is_empty()) {
        bail!("--features has an empty entry");
    }
    let now = jiff::Timestamp::now();
    let exp = parse_expiry(&a.expires, now)?;
    let device = match a.device.as_deref() {
        Some("this") => Some(agentos_config::config::machine_fingerprint().context(
            "--device this: this machine has no machine id (/etc/machine-id); pass a name instead",
        )?),
        _ => a.device.clone(),
    };
    let claims = Claims {
        device,
        exp,
        features: a.features.iter().map(|f| f.trim().to_string()).collect(),
        iat: Some(now.as_second()),
        kid: kid.clone(),
        nonce: Some(random_nonce()?),
        plan: a.plan,
        schema: LICENSE_SCHEMA.into(),
        sub: a.sub,
    };
    let pack = license::issue_pack(&key, &claims);
    match &a.out {
        Some(out) => {
            atomic_write(out, format!("{pack}\n").as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            if a.json {
                print_json(
                    &json!({"pack_file": out, "kid": kid, "plan": claims.plan.as_str(),
                    "features": claims.features, "exp": exp, "expires_at": rfc3339(exp)}),
                )?;
            } else {
                println!(
                    "issued {} license {} (kid {kid}, features {}, expires {})",
                    claims.plan,
                    out.display(),
                    claims.features.join(","),
                    rfc3339(exp)
                );
            }
        }
        None => println!("{pack}"),
    }
    Ok(ExitStatus::Ok)
}

/// `90d`, `12h`, `30m`, `45s`, `2w`, an RFC 3339 timestamp, or unix seconds → unix seconds.
fn parse_expiry(s: &str, now: jiff::Timestamp) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(unix) = s.parse::<i64>() {
        return Ok(unix);
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().with_context(|| {
        format!("--expires {s:?}: expected e.g. 90d, 12h, an RFC 3339 time or unix seconds")
    })?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!("--expires {s:?}: unit must be s, m, h, d or w"),
    };
    n.checked_mul(secs)
        .and_then(|d| d.checked_add(now.as_second()))
        .with_context(|| format!("--expires {s:?} is too far in the future"))
}

fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn license_json(lic: &VerifiedLicense, path: &Path, now: i64) -> serde_json::Value {
    json!({
        "valid": true,
        "pack": path,
        "plan": lic.claims.plan.as_str(),
        "kid": lic.kid,
        "kid_from_claims": lic.kid_from_claims,
        "features": lic.claims.features,
        "exp": lic.claims.exp,
        "expires_at": rfc3339(lic.claims.exp),
        "days_left": (lic.claims.exp - now) / 86_400,
        "device": lic.claims.device,
        "sub": lic.claims.sub,
    })
}

fn print_license(lic: &VerifiedLicense, path: &Path, now: i64) {
    println!("license:  {}", path.display());
    println!("plan:     {}", lic.claims.plan);
    if lic.kid_from_claims {
        println!("kid:      {}", lic.kid);
    } else {
        println!(
            "kid:      {} (the claims name no kid; this trusted key verified it)",
            lic.kid
        );
    }
    println!("features: {}", lic.claims.features.join(", "));
    println!(
        "expires:  {} ({} days left)",
        rfc3339(lic.claims.exp),
        (lic.claims.exp - now) / 86_400
    );
    if let Some(d) = &lic.claims.device {
        println!("device:   {d}");
    }
    if let Some(s) = &lic.claims.sub {
        println!("subject:  {s}");
    }
}

fn report_problem(problem: &LicenseProblem, json_out: bool) -> anyhow::Result<ExitStatus> {
    if json_out {
        print_json(
            &json!({"valid": false, "code": problem.code(), "message": problem.to_string()}),
        )?;
    }
    error_line(&problem.to_string());
    Ok(ExitStatus::Failure)
}

fn verify(a: VerifyArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let cfg = ctx.config()?;
    let mut ring = ctx.keyring().context("the configured trusted keys")?;
    for kv in &a.pubkeys {
        ring.extend_from_env(kv)
            .with_context(|| format!("--pubkey {kv:?}"))?;
    }
    for kv in &a.pubkey_files {
        let (kid, path) = kv
            .split_once('=')
            .with_context(|| format!("--pubkey-file {kv:?} is not KID=PATH"))?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        ring.insert_base64(kid, &text)
            .with_context(|| format!("--pubkey-file {kv:?}"))?;
    }
    if ring.is_empty() {
        error_line(
            "no trusted keys: set [license] pubkeys, AGENTOS_LICENSE_PUBKEYS or pass --pubkey",
        );
    }
    let now = jiff::Timestamp::now().as_second();
    let device = a.device.clone().unwrap_or_else(|| cfg.device_binding());
    let pack = Env::from_process().resolve_path(&a.pack, PathOrigin::Flag);
    match licensing::verify_file(&pack, &ring, now, Some(&device)) {
        Ok(lic) => {
            if a.json.json {
                print_json(&license_json(&lic, &a.pack, now))?;
            } else {
                println!("valid");
                print_license(&lic, &pack, now);
            }
            Ok(ExitStatus::Ok)
        }
        Err(p) => report_problem(&p, a.json.json),
    }
}

fn status(a: StatusArgs, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let cfg = ctx.config()?;
    let now = jiff::Timestamp::now().as_second();
    let Some(path) = cfg.license.pack.clone() else {
        return report_problem(&LicenseProblem::NoPack, a.json.json);
    };
    match cfg.license_in_force(now) {
        Ok(in_force) => {
            let lic = &in_force.license;
            let stale = match &in_force.source {
                agentos_config::PackSource::Configured => None,
                agentos_config::PackSource::LastKnownGood { problem } => Some(problem.clone()),
            };
            if a.json.json {
                let mut v = license_json(lic, &path, now);
                v["tier"] = json!(cfg.ccc.session_tier());
                v["do_not_track"] = json!(cfg.do_not_track);
                v["source"] = json!(if stale.is_some() {
                    "last_known_good"
                } else {
                    "configured"
                });
                v["configured_pack_problem"] = json!(stale);
                print_json(&v)?;
            } else {
                if let Some(problem) = &stale {
                    // Loud on purpose: the refresh failed and the clock is running.
                    error_line(&format!(
                        "THE CONFIGURED PACK DOES NOT VERIFY ({problem}); using the last pack that did \
                         ({}) until it expires on {}",
                        agentos_config::DataDir::new(&cfg.data_dir)
                            .last_good_license()
                            .display(),
                        rfc3339(lic.claims.exp)
                    ));
                }
                print_license(lic, &path, now);
                println!(
                    "tier:     {}{}",
                    cfg.ccc.session_tier(),
                    if cfg.do_not_track {
                        " (DO_NOT_TRACK)"
                    } else {
                        ""
                    }
                );
            }
            Ok(if stale.is_some() {
                ExitStatus::Failure
            } else {
                ExitStatus::Ok
            })
        }
        Err(p) => report_problem(&LicenseProblem::from(p), a.json.json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_durations_timestamps_and_unix_seconds() {
        let now = jiff::Timestamp::from_second(1_000_000).expect("ts");
        assert_eq!(parse_expiry("90d", now).ok(), Some(1_000_000 + 90 * 86_400));
        assert_eq!(parse_expiry("12h", now).ok(), Some(1_000_000 + 12 * 3600));
        assert_eq!(parse_expiry("2000000000", now).ok(), Some(2_000_000_000));
        assert_eq!(
            parse_expiry("2030-01-01T00:00:00Z", now).ok(),
            Some(1_893_456_000)
        );
        assert!(parse_expiry("90x", now).is_err());
        assert!(parse_expiry("soon", now).is_err());
    }

    #[test]
    fn kids_must_be_file_name_safe() {
        assert!(check_kid("k-2026.1_a").is_ok());
        assert!(check_kid("../x").is_err());
        assert!(check_kid("a=b").is_err());
        assert!(check_kid("").is_err());
    }
}
