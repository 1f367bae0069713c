//! Runs every `sh` block of `docs/integration/CCC_BRIDGE.md`, top to bottom in one shell, with
//! the real `agentos` binary on `PATH` and a real collector on loopback, so the guide cannot rot.
//! The only edits: port 8787 becomes a free port, and `HOME`/XDG dirs are temporary.

use std::path::PathBuf;
use std::process::Command;

fn guide() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/integration/CCC_BRIDGE.md")
}

/// The `sh` blocks of a Markdown text, in order.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an sh block is not closed");
    blocks
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn every_command_in_the_bridge_guide_runs() {
    for tool in ["bash", "curl"] {
        let found = Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "the bridge guide test needs `{tool}` on PATH"
        );
    }
    let text = std::fs::read_to_string(guide()).expect("the guide exists");
    let blocks = sh_blocks(&text);
    assert!(blocks.len() >= 8, "found {} sh blocks", blocks.len());
    let port = free_port().to_string();
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for (i, b) in blocks.iter().enumerate() {
        script.push_str(&format!("echo '== guide block {}' >&2\n", i + 1));
        script.push_str(&b.replace("8787", &port));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_agentos"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(tmp.path());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("AGENTOS_") || k.starts_with("XDG_") || k == "DO_NOT_TRACK" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("HOME", &home)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the guide failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr
    );
    // The walk-through reached its last block, and what it produced is what the guide says.
    assert!(stderr.contains(&format!("== guide block {}", blocks.len())));
    let dir = tmp.path().join("bridge");
    let backfill: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("backfill.json")).expect("backfill.json"))
            .expect("json");
    assert_eq!(backfill["turns"], 1);
    assert_eq!(backfill["avg_cls"], 1.2);
    let preview = std::fs::read_to_string(dir.join("preview.json")).expect("preview");
    assert!(!preview.contains("SEC-12") && !preview.contains("free text stays"));
}

#[test]
fn blocks_are_found_in_order_and_other_fences_are_skipped() {
    let md = "a\n```sh\none\n```\n```text\nno\n```\n```sh\ntwo\nthree\n```\n";
    assert_eq!(sh_blocks(md), ["one\n", "two\nthree\n"]);
}
