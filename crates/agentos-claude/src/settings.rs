//! Adding and removing agentos in Claude Code's `settings.json`.
//!
//! Install adds, for each of SessionStart, Stop, SubagentStop and SessionEnd, one matcher group
//! `{"hooks":[{"type":"command","command":"<agentos> claude hook","timeout":10}]}` to the event's
//! array (after any existing groups), and with `--statusline` the `statusLine` entry. Uninstall
//! removes exactly the entries whose command is ours (program named `agentos…`, arguments
//! `claude hook` / `statusline`), then any array or `hooks` object left empty.
//!
//! Every other key and hook is kept with its value. The file is re-serialised, so key order and
//! whitespace may change (JSON objects are unordered; Claude Code reads them the same).
//! Unchanged documents are not written at all; otherwise the previous bytes go to
//! `<file>.agentos-backup` and the new ones replace the file atomically. A symlinked settings
//! file stays a symlink: its target is written. A file that is not a JSON object (or has
//! comments) is refused and left untouched.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::error::ClaudeError;
use crate::payload::HookEvent;

/// Which settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`).
    User,
    /// `.claude/settings.json` of a project.
    Project,
}

impl Scope {
    /// `user` or `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
        }
    }
}

/// Seconds Claude Code lets our hook run before it gives up (ours bounds itself far below).
pub const HOOK_TIMEOUT_S: u64 = 10;
/// Suffix of our hook command.
pub const HOOK_ARGS: &str = "claude hook";
/// Suffix of our statusline command.
pub const STATUSLINE_ARGS: &str = "statusline";
/// Suffix of a backup file.
pub const BACKUP_SUFFIX: &str = "agentos-backup";

/// The settings file of `scope`. User scope honours `CLAUDE_CONFIG_DIR` (its first entry when
/// it lists several), else `$HOME/.claude`; project scope is below `project_dir`.
pub fn settings_path(
    scope: Scope,
    project_dir: &Path,
    claude_config_dir: Option<&str>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    match scope {
        Scope::Project => Some(project_dir.join(".claude").join("settings.json")),
        Scope::User => {
            let from_env = claude_config_dir
                .and_then(|v| v.split(',').map(str::trim).find(|s| !s.is_empty()))
                .map(PathBuf::from);
            from_env
                .or_else(|| home.map(|h| h.join(".claude")))
                .map(|d| d.join("settings.json"))
        }
    }
}

/// The commands install writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    /// The hook command (`'<exe>' claude hook`).
    pub hook: String,
    /// The statusline command, when it is to be installed.
    pub statusline: Option<String>,
}

impl Commands {
    /// Commands running `exe`, with extra global flags placed before the subcommand (e.g.
    /// `--data-dir`), each argument shell-quoted.
    pub fn for_exe(exe: &Path, global_args: &[String], statusline: bool) -> Commands {
        let mut prefix = quote(&exe.to_string_lossy());
        for a in global_args {
            prefix.push(' ');
            prefix.push_str(&quote(a));
        }
        Commands {
            hook: format!("{prefix} {HOOK_ARGS}"),
            statusline: statusline.then(|| format!("{prefix} {STATUSLINE_ARGS}")),
        }
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=+:,@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Whether `command` is one of ours with the given argument suffix: its program's file name
/// starts with `agentos` and it ends with `args`.
pub fn is_ours(command: &str, args: &str) -> bool {
    let c = command.trim();
    let Some(head) = c.strip_suffix(args) else {
        return false;
    };
    if !head.is_empty() && !head.ends_with(char::is_whitespace) {
        return false;
    }
    let program = match c.chars().next() {
        Some(q @ ('\'' | '"')) => c[1..].split(q).next().unwrap_or(""),
        _ => c.split_whitespace().next().unwrap_or(""),
    };
    Path::new(program)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("agentos"))
}

/// A computed change to one settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The settings file as named (may be a symlink).
    pub path: PathBuf,
    /// Its current text (`None` when it does not exist).
    pub before: Option<String>,
    /// The text it would have.
    pub after: String,
    /// Whether anything changes.
    pub changed: bool,
}

impl Plan {
    fn new(path: &Path, before: Option<String>, doc: &Map<String, Value>, changed: bool) -> Plan {
        Plan {
            path: path.to_path_buf(),
            after: if changed {
                render(doc)
            } else {
                before.clone().unwrap_or_default()
            },
            before,
            changed,
        }
    }

    /// A line diff of the change (`-`/`+` lines, two lines of context), empty when unchanged.
    pub fn diff(&self) -> String {
        if !self.changed {
            return String::new();
        }
        let before = self.before.as_deref().unwrap_or("");
        let mut out = format!(
            "--- {}\n+++ {} (after)\n",
            self.path.display(),
            self.path.display()
        );
        out.push_str(&line_diff(before, &self.after));
        out
    }
}

/// What agentos has installed in one settings file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Hook events with an agentos command.
    pub events: Vec<HookEvent>,
    /// The statusLine is ours.
    pub statusline: bool,
}

fn read(path: &Path) -> Result<(Option<String>, Map<String, Value>), ClaudeError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, Map::new())),
        Err(e) => return Err(ClaudeError::io("reading", path)(e)),
    };
    if text.trim().is_empty() {
        return Ok((Some(text), Map::new()));
    }
    let unparsable = |message: String| ClaudeError::UnparsableSettings {
        path: path.to_path_buf(),
        message,
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok((Some(text), m)),
        Ok(_) => Err(unparsable("the top level is not an object".into())),
        Err(e) => Err(unparsable(e.to_string())),
    }
}

fn render(doc: &Map<String, Value>) -> String {
    let mut s = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

fn object_at<'a>(
    doc: &'a mut Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, ClaudeError> {
    doc.entry(key)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ClaudeError::UnparsableSettings {
            path: path.to_path_buf(),
            message: format!("`{key}` is not an object"),
        })
}

/// What install would do to `path`.
///
/// # Errors
/// [`ClaudeError::UnparsableSettings`] (nothing is changed), [`ClaudeError::ForeignStatusLine`],
/// I/O errors reading the file.
pub fn plan_install(path: &Path, cmds: &Commands) -> Result<Plan, ClaudeError> {
    let (before, mut doc) = read(path)?;
    let original = doc.clone();
    let hooks = object_at(&mut doc, "hooks", path)?;
    for ev in HookEvent::INSTALLED {
        let groups = hooks
            .entry(ev.as_str())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| ClaudeError::UnparsableSettings {
                path: path.to_path_buf(),
                message: format!("`hooks.{}` is not an array", ev.as_str()),
            })?;
        let mut found = false;
        for h in groups
            .iter_mut()
            .filter_map(|g| g.get_mut("hooks").and_then(Value::as_array_mut))
            .flatten()
        {
            if let Some(c) = h.get("command").and_then(Value::as_str)
                && is_ours(c, HOOK_ARGS)
            {
                found = true;
                // A re-install after the binary moved points the entry at the new path.
                h["command"] = Value::from(cmds.hook.clone());
            }
        }
        if !found {
            groups.push(json!({"hooks": [{
                "type": "command", "command": cmds.hook, "timeout": HOOK_TIMEOUT_S,
            }]}));
        }
    }
    if let Some(sl) = &cmds.statusline {
        match doc.get("statusLine") {
            None => {}
            Some(v) => {
                let existing = v.get("command").and_then(Value::as_str).unwrap_or("");
                if !is_ours(existing, STATUSLINE_ARGS) {
                    return Err(ClaudeError::ForeignStatusLine {
                        path: path.to_path_buf(),
                        existing: existing.to_string(),
                    });
                }
            }
        }
        doc.insert(
            "statusLine".into(),
            json!({"type": "command", "command": sl, "padding": 0}),
        );
    }
    let changed = doc != original || before.is_none();
    Ok(Plan::new(path, before, &doc, changed))
}

/// What uninstall would do to `path` (unchanged when nothing of ours is there).
///
/// # Errors
/// [`ClaudeError::UnparsableSettings`], I/O errors reading the file.
pub fn plan_uninstall(path: &Path) -> Result<Plan, ClaudeError> {
    let (before, mut doc) = read(path)?;
    let original = doc.clone();
    if let Some(hooks) = doc.get_mut("hooks").and_then(Value::as_object_mut) {
        for groups in hooks.values_mut() {
            let Some(arr) = groups.as_array_mut() else {
                continue;
            };
            for g in arr.iter_mut() {
                if let Some(hs) = g.get_mut("hooks").and_then(Value::as_array_mut) {
                    hs.retain(|h| {
                        !h.get("command")
                            .and_then(Value::as_str)
                            .is_some_and(|c| is_ours(c, HOOK_ARGS))
                    });
                }
            }
            arr.retain(|g| {
                g.get("hooks")
                    .and_then(Value::as_array)
                    .is_none_or(|hs| !hs.is_empty())
            });
        }
        hooks.retain(|_, v| v.as_array().is_none_or(|a| !a.is_empty()));
        if hooks.is_empty() {
            doc.remove("hooks");
        }
    }
    if statusline_is_ours(&doc) {
        doc.remove("statusLine");
    }
    let changed = doc != original;
    Ok(Plan::new(path, before, &doc, changed))
}

/// Writes a changed plan: backup of the previous bytes, then an atomic replace of the file (of
/// its target when it is a symlink). Returns the backup's path, if one was written.
///
/// # Errors
/// I/O errors; the settings file is then unchanged.
pub fn apply(plan: &Plan) -> Result<Option<PathBuf>, ClaudeError> {
    if !plan.changed {
        return Ok(None);
    }
    let target = match std::fs::canonicalize(&plan.path) {
        Ok(t) => t,
        Err(_) => plan.path.clone(),
    };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(ClaudeError::io("creating", dir))?;
    }
    let mut backup = None;
    if let Some(before) = &plan.before {
        let mut name = target.as_os_str().to_owned();
        name.push(".");
        name.push(BACKUP_SUFFIX);
        let b = PathBuf::from(name);
        agentos_config::atomic_write(&b, before.as_bytes())
            .map_err(ClaudeError::io("writing backup", &b))?;
        backup = Some(b);
    }
    agentos_config::atomic_write(&target, plan.after.as_bytes())
        .map_err(ClaudeError::io("writing", &target))?;
    Ok(backup)
}

/// What agentos has installed in `path` (nothing when it does not exist).
///
/// # Errors
/// [`ClaudeError::UnparsableSettings`], I/O errors reading the file.
pub fn installed(path: &Path) -> Result<Installed, ClaudeError> {
    let (_, doc) = read(path)?;
    let mut out = Installed::default();
    let hooks = doc.get("hooks").and_then(Value::as_object);
    for ev in HookEvent::INSTALLED {
        let ours = hooks
            .and_then(|h| h.get(ev.as_str()))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("hooks").and_then(Value::as_array))
            .flatten()
            .filter_map(|h| h.get("command").and_then(Value::as_str))
            .any(|c| is_ours(c, HOOK_ARGS));
        if ours {
            out.events.push(ev);
        }
    }
    out.statusline = statusline_is_ours(&doc);
    Ok(out)
}

fn statusline_is_ours(doc: &Map<String, Value>) -> bool {
    doc.get("statusLine")
        .and_then(|s| s.get("command"))
        .and_then(Value::as_str)
        .is_some_and(|c| is_ours(c, STATUSLINE_ARGS))
}

/// A minimal line diff (longest common subsequence; settings files are small).
fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_commands_are_recognised_and_others_are_not() {
        assert!(is_ours("/usr/local/bin/agentos claude hook", HOOK_ARGS));
        assert!(is_ours(
            "'/opt/my tools/agentos' --data-dir '/d x' claude hook",
            HOOK_ARGS
        ));
        assert!(is_ours("agentos statusline", STATUSLINE_ARGS));
        assert!(!is_ours("/usr/bin/notify-send claude hook", HOOK_ARGS));
        assert!(!is_ours("agentos claude hooky", HOOK_ARGS));
        assert!(!is_ours("ccusage statusline", STATUSLINE_ARGS));
    }

    #[test]
    fn commands_quote_paths_with_spaces() {
        let c = Commands::for_exe(
            Path::new("/opt/my tools/agentos"),
            &["--data-dir".into(), "/d".into()],
            true,
        );
        assert_eq!(c.hook, "'/opt/my tools/agentos' --data-dir /d claude hook");
        assert!(is_ours(&c.hook, HOOK_ARGS));
        assert!(is_ours(
            c.statusline.as_deref().unwrap_or(""),
            STATUSLINE_ARGS
        ));
    }

    #[test]
    fn the_user_scope_honours_claude_config_dir() {
        let p = settings_path(Scope::User, Path::new("/p"), Some("/cfg,/other"), None);
        assert_eq!(p, Some(PathBuf::from("/cfg/settings.json")));
        let p = settings_path(
            Scope::User,
            Path::new("/p"),
            None,
            Some(Path::new("/home/u")),
        );
        assert_eq!(p, Some(PathBuf::from("/home/u/.claude/settings.json")));
        let p = settings_path(Scope::Project, Path::new("/p"), Some("/cfg"), None);
        assert_eq!(p, Some(PathBuf::from("/p/.claude/settings.json")));
    }

    #[test]
    fn the_diff_marks_added_lines() {
        let d = line_diff("{\n  \"a\": 1\n}\n", "{\n  \"a\": 1,\n  \"b\": 2\n}\n");
        assert!(d.contains("-  \"a\": 1\n"));
        assert!(d.contains("+  \"b\": 2\n"));
        assert!(d.contains(" {\n"));
    }
}
