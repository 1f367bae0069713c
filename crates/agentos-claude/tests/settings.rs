//! Install and uninstall against settings files as users have them.

use std::path::Path;

use agentos_claude::settings::{self, Commands, apply, installed, plan_install, plan_uninstall};
use agentos_claude::{ClaudeError, HookEvent};
use serde_json::{Value, json};

fn cmds(statusline: bool) -> Commands {
    Commands::for_exe(Path::new("/opt/bin/agentos"), &[], statusline)
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
}

/// A settings file with another tool's hooks on the same events and keys agentos knows nothing of.
fn busy_settings() -> Value {
    json!({
        "model": "opus",
        "permissions": {"allow": ["Bash(cargo test:*)"], "deny": []},
        "futureKey": {"nested": [1, 2, {"x": null}]},
        "env": {"FOO": "bar"},
        "hooks": {
            "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/bin/guard.sh", "timeout": 5}]}]
        }
    })
}

#[test]
fn install_adds_our_hooks_keeps_everything_else_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("settings.json");
    let original = busy_settings();
    std::fs::write(&p, serde_json::to_string_pretty(&original).expect("ser")).expect("write");

    let plan = plan_install(&p, &cmds(true)).expect("plan");
    assert!(plan.changed);
    assert!(plan.diff().contains("+"));
    let backup = apply(&plan).expect("apply").expect("a backup");
    assert_eq!(
        read(&backup),
        original,
        "the backup holds the previous file"
    );

    let after = read(&p);
    for key in ["model", "permissions", "futureKey", "env"] {
        assert_eq!(after[key], original[key], "{key} kept");
    }
    assert_eq!(
        after["hooks"]["PreToolUse"],
        original["hooks"]["PreToolUse"]
    );
    let stop = after["hooks"]["Stop"].as_array().expect("Stop array");
    assert_eq!(
        stop.len(),
        2,
        "the other tool's Stop hook stays, ours is added"
    );
    assert_eq!(stop[0], original["hooks"]["Stop"][0]);
    assert_eq!(
        stop[1]["hooks"][0]["command"],
        "/opt/bin/agentos claude hook"
    );
    assert_eq!(
        after["statusLine"]["command"],
        "/opt/bin/agentos statusline"
    );
    let i = installed(&p).expect("installed");
    assert_eq!(i.events, HookEvent::INSTALLED.to_vec());
    assert!(i.statusline);

    // A second install changes nothing, not even the bytes.
    let bytes = std::fs::read(&p).expect("bytes");
    let again = plan_install(&p, &cmds(true)).expect("plan");
    assert!(!again.changed);
    assert_eq!(apply(&again).expect("apply"), None);
    assert_eq!(std::fs::read(&p).expect("bytes"), bytes);

    // Uninstall removes exactly what install added.
    let un = plan_uninstall(&p).expect("plan");
    apply(&un).expect("apply");
    assert_eq!(read(&p), original);
    assert_eq!(
        installed(&p).expect("installed"),
        settings::Installed::default()
    );
    assert!(!plan_uninstall(&p).expect("plan").changed);
}

#[test]
fn install_into_a_missing_file_creates_it_and_uninstall_leaves_an_empty_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join(".claude/settings.json");
    apply(&plan_install(&p, &cmds(false)).expect("plan")).expect("apply");
    let doc = read(&p);
    assert_eq!(doc["hooks"]["SessionStart"][0]["hooks"][0]["timeout"], 10);
    assert!(doc.get("statusLine").is_none());
    apply(&plan_uninstall(&p).expect("plan")).expect("apply");
    assert_eq!(read(&p), json!({}));
}

#[test]
fn a_moved_binary_is_updated_in_place_not_added_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("settings.json");
    apply(&plan_install(&p, &cmds(false)).expect("plan")).expect("apply");
    let moved = Commands::for_exe(Path::new("/usr/local/bin/agentos"), &[], false);
    apply(&plan_install(&p, &moved).expect("plan")).expect("apply");
    let doc = read(&p);
    let stop = doc["hooks"]["Stop"].as_array().expect("array");
    assert_eq!(stop.len(), 1);
    assert_eq!(
        stop[0]["hooks"][0]["command"],
        "/usr/local/bin/agentos claude hook"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_settings_file_stays_a_symlink_and_its_target_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("dotfiles/claude-settings.json");
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    std::fs::write(&target, r#"{"model":"sonnet"}"#).expect("write");
    let link = dir.path().join("settings.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");

    apply(&plan_install(&link, &cmds(false)).expect("plan")).expect("apply");
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    let doc = read(&target);
    assert_eq!(doc["model"], "sonnet");
    assert!(doc["hooks"]["Stop"].is_array());
}

#[test]
fn an_unparsable_settings_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("settings.json");
    for text in [
        "{\"model\": \"opus\", // a comment\n}",
        "[1,2]",
        "{\"hooks\": []}",
    ] {
        std::fs::write(&p, text).expect("write");
        let err = plan_install(&p, &cmds(false)).expect_err("refused");
        assert!(
            matches!(err, ClaudeError::UnparsableSettings { .. }),
            "{text}: {err}"
        );
        assert!(err.to_string().contains("nothing was changed"));
        assert_eq!(std::fs::read_to_string(&p).expect("read"), text);
    }
}

#[test]
fn another_statusline_is_not_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("settings.json");
    let doc = json!({"statusLine": {"type": "command", "command": "ccusage statusline"}});
    std::fs::write(&p, doc.to_string()).expect("write");
    let err = plan_install(&p, &cmds(true)).expect_err("refused");
    assert!(matches!(err, ClaudeError::ForeignStatusLine { .. }));
    // Without --statusline the hooks install fine and the other statusline stays.
    apply(&plan_install(&p, &cmds(false)).expect("plan")).expect("apply");
    assert_eq!(read(&p)["statusLine"], doc["statusLine"]);
    apply(&plan_uninstall(&p).expect("plan")).expect("apply");
    assert_eq!(read(&p), doc);
}
