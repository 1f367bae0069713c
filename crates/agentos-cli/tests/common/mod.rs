//! Helpers shared by the CLI test binaries: run the real `agentos` binary in an isolated
//! environment, make real Ed25519 keys and license packs with the CLI itself.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod collector;

/// An isolated sandbox: a temp dir with `data/` as the data dir and no user config in sight.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

/// The result of one `agentos` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
    }

    /// `agentos --data-dir <sandbox>/data <args…>` with a scrubbed environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_agentos"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.path().join("xdg-data"))
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut c = self.command(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn agentos");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out: Output = child.wait_with_output().expect("wait agentos");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "agentos {args:?} failed:\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        );
        r
    }

    /// Makes a key pair with `agentos license keygen`, returns (secret key file, public base64).
    pub fn keygen(&self, kid: &str) -> (PathBuf, String) {
        let out = self.path().join("keys");
        let r = self.ok(&[
            "license",
            "keygen",
            "--out",
            out.to_str().expect("utf8"),
            "--kid",
            kid,
            "--json",
        ]);
        let v = r.json();
        (
            PathBuf::from(v["secret_key_file"].as_str().expect("secret")),
            v["public_key"].as_str().expect("public").to_string(),
        )
    }

    /// Issues a pack with `agentos license issue` and returns its path.
    pub fn issue(&self, key: &Path, name: &str, features: &str, expires: &str) -> PathBuf {
        let pack = self.path().join(name);
        self.ok(&[
            "license",
            "issue",
            "--key",
            key.to_str().expect("utf8"),
            "--plan",
            "pro",
            "--features",
            features,
            "--expires",
            expires,
            "--sub",
            "lic-cli-test",
            "--out",
            pack.to_str().expect("utf8"),
        ]);
        pack
    }

    /// Configures (through the environment) a license granting `features`.
    pub fn license(&mut self, features: &str) {
        let (key, public) = self.keygen("k1");
        let pack = self.issue(&key, "pack.json", features, "90d");
        self.set_env("AGENTOS_LICENSE_PACK", pack.to_str().expect("utf8"));
        self.set_env("AGENTOS_LICENSE_PUBKEYS", &format!("k1={public}"));
    }

    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.data_dir().join("windows.jsonl")) {
            Ok(t) => t
                .lines()
                .map(|l| serde_json::from_str(l).expect("log line parses"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The log's complete lines while another process may still be appending to it: a read
    /// can catch a line half written, so only lines that end in a newline are parsed (each one
    /// strictly). For polling; once the writers are done, [`Sandbox::log_lines`] reads it all.
    pub fn log_lines_so_far(&self) -> Vec<serde_json::Value> {
        let t = std::fs::read_to_string(self.data_dir().join("windows.jsonl")).unwrap_or_default();
        let complete = t.rfind('\n').map_or("", |end| &t[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line parses"))
            .collect()
    }

    pub fn summary(&self) -> serde_json::Value {
        let t =
            std::fs::read_to_string(self.data_dir().join("metrics_summary.json")).expect("summary");
        serde_json::from_str(&t).expect("summary parses")
    }
}

/// The seed's turn as flags: capacity 0.5, cls 1.2, impf 4.5, feature_delta 1.0.
pub fn seed_turn_args(model: &str) -> Vec<String> {
    [
        "ccc",
        "turn",
        "--model",
        model,
        "--subagent",
        "main",
        "--tokens-in",
        "1200",
        "--tokens-out",
        "300",
        "--input-kind",
        "text",
        "--latency-ms",
        "850",
        "--capacity-used",
        "0.5",
        "--attribution",
        &format!("{model}=1"),
        "--cls",
        "1.2",
        "--impf",
        "4.5",
        "--churn-score",
        "0.1",
        "--feature-delta",
        "1.0",
        "--error",
        "lint failed in src/secret_plan.rs",
        "--feature-id",
        "F-1",
        "--spec-ref",
        "docs/spec.md#f1",
        "--status",
        "shipped",
        "--feature-notes",
        "private note about the customer",
        "--cost-provider",
        "anthropic",
        "--estimated-usd",
        "0.02",
        "--value-summary",
        "login works",
        "--link",
        "https://example.invalid/pr/1",
        "--evidence-ref",
        "/home/me/evidence.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
