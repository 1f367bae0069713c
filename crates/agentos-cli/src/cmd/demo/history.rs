//! The demo's made-up history: a few days of Claude Code transcripts for three people, a Codex
//! session and a CCC shim root, written in the agents' own formats, with the totals a correct
//! pipeline must report (the ground truth the demo's test checks the printed report against).
//!
//! Deterministic for a given `now`: token counts follow the turn index, not a random source, so
//! two runs on the same day print the same figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentos_core::tier::Tier;
use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

/// One person of the demo team: their own machine (data dir), tier and Claude Code sessions.
#[derive(Debug, Clone)]
pub struct Person {
    /// Short name, also the device's directory name.
    pub name: &'static str,
    /// The tier their sessions record under.
    pub tier: Tier,
    /// Their Claude Code sessions, oldest first.
    pub sessions: Vec<Session>,
}

/// One Claude Code session: a transcript file.
#[derive(Debug, Clone)]
pub struct Session {
    /// Claude Code's session id (a UUID).
    pub id: String,
    /// The working directory the transcript names.
    pub cwd: PathBuf,
    /// The transcript.
    pub transcript: PathBuf,
}

/// Tokens of one UTC day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayTotals {
    /// API requests (turns).
    pub turns: u64,
    /// Input tokens (not cached).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Tokens written to the prompt cache.
    pub cache_creation_tokens: u64,
    /// Tokens read from the prompt cache.
    pub cache_read_tokens: u64,
}

impl DayTotals {
    fn add(&mut self, u: &Usage) {
        self.turns += 1;
        self.input_tokens += u.input;
        self.output_tokens += u.output;
        self.cache_creation_tokens += u.cache_create;
        self.cache_read_tokens += u.cache_read;
    }
}

/// What the generated history holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Truth {
    /// Claude Code turns per person, per UTC day (`YYYY-MM-DD`).
    pub claude: BTreeMap<String, BTreeMap<String, DayTotals>>,
    /// Codex turns and tokens (Codex's own split: input includes cached).
    pub codex: CodexTotals,
    /// CCC shim requests and tokens.
    pub ccc: CccTotals,
}

/// Codex totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CodexTotals {
    /// Turns (token_count events with new usage).
    pub turns: u64,
    /// Input tokens, cached included.
    pub input_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
}

/// CCC shim totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CccTotals {
    /// Requests.
    pub requests: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// The generated history and where it is.
#[derive(Debug, Clone)]
pub struct History {
    /// The team.
    pub people: Vec<Person>,
    /// A `CODEX_HOME` holding one session.
    pub codex_home: PathBuf,
    /// A CCC shim root (`logs/`, `results/`); none with `--real`.
    pub ccc_root: Option<PathBuf>,
    /// The totals.
    pub truth: Truth,
    /// `root/history`, or the user's home with `--real`.
    base: PathBuf,
    /// `--real`: the user's own files.
    real: bool,
}

struct Usage {
    input: u64,
    output: u64,
    cache_create: u64,
    cache_read: u64,
}

const MODELS: [&str; 3] = [
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-1-20250805",
];

/// Days of history, ending today.
pub const DAYS: i64 = 3;

fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn uuid_for(parts: &[u64]) -> String {
    // A stable, well-formed v4-shaped UUID from a few numbers (no randomness: the demo is
    // reproducible).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        h = (h ^ p).wrapping_mul(0x0100_0000_01b3);
    }
    let l = h.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        l >> 52,
        l & 0xffff_ffff_ffff
    )
}

fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

impl History {
    /// The home directory of `person` (holding `.claude/`, and `.codex/` for the first person):
    /// made up, or with `--real` the user's own.
    pub fn home_of(&self, person: &str) -> PathBuf {
        if self.real {
            self.base.clone()
        } else {
            self.base.join(person)
        }
    }
}

/// `--real`: the user's own history, read only. One person (`you`, tier `full`); the live
/// session is the most recently written Claude Code transcript; no ground truth.
pub fn real(home: &Path) -> anyhow::Result<History> {
    let projects = home.join(".claude/projects");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for project in std::fs::read_dir(&projects)
        .with_context(|| {
            format!(
                "--real reads Claude Code transcripts under {}",
                projects.display()
            )
        })?
        .flatten()
    {
        for f in std::fs::read_dir(project.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                let at = f.metadata().and_then(|m| m.modified()).ok();
                if let Some(at) = at
                    && newest.as_ref().is_none_or(|(t, _)| at > *t)
                {
                    newest = Some((at, path));
                }
            }
        }
    }
    let (_, transcript) =
        newest.with_context(|| format!("no transcript under {}", projects.display()))?;
    let id = transcript
        .file_stem()
        .and_then(|s| s.to_str())
        .context("transcript name")?
        .to_string();
    let codex_home = std::env::var_os("CODEX_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".codex"));
    Ok(History {
        people: vec![Person {
            name: "you",
            tier: Tier::Full,
            sessions: vec![Session {
                id,
                cwd: home.to_path_buf(),
                transcript,
            }],
        }],
        codex_home,
        ccc_root: None,
        truth: Truth::default(),
        base: home.to_path_buf(),
        real: true,
    })
}

/// Writes the history under `root/history` for activity ending at `now`.
pub fn generate(root: &Path, now: jiff::Timestamp) -> anyhow::Result<History> {
    let base = root.join("history");
    // An hour back, so today's sessions (00:10–00:20 UTC) are over even just after midnight.
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(now - jiff::SignedDuration::from_hours(1))
        .date();
    let first = today
        .checked_sub(jiff::Span::new().days(DAYS - 1))
        .context("date arithmetic")?;
    let mut truth = Truth::default();
    let team: [(&'static str, Tier, &str); 3] = [
        ("alice", Tier::Full, "payments"),
        ("bob", Tier::Minimized, "web"),
        ("carol", Tier::Local, "infra"),
    ];
    let mut people = Vec::new();
    let mut n: u64 = 0;
    for (p_idx, (name, tier, project)) in team.into_iter().enumerate() {
        let cwd = PathBuf::from(format!("/home/{name}/src/{project}"));
        let slug = format!("-home-{name}-src-{project}");
        let mut sessions = Vec::new();
        let per_day = truth.claude.entry(name.to_string()).or_default();
        for d in 0..DAYS {
            let day = first
                .checked_add(jiff::Span::new().days(d))
                .context("date arithmetic")?;
            // Sessions start in the early UTC morning and never cross midnight; today's end
            // before `now` only when `now` is late enough, so they start at 00:10 at the latest.
            let start = day
                .at(0, 10 + 3 * p_idx as i8, 0, 0)
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .context("demo start time")?
                .timestamp();
            let id = uuid_for(&[p_idx as u64, d as u64, 7]);
            let transcript = base
                .join(name)
                .join(".claude/projects")
                .join(&slug)
                .join(format!("{id}.jsonl"));
            let mut lines = Vec::new();
            let turns = 4 + (p_idx as u64 + d as u64) % 3;
            for t in 0..turns {
                n += 1;
                let at = start
                    .checked_add(jiff::SignedDuration::from_secs((t * 20) as i64))
                    .context("demo time")?;
                let model = MODELS[((p_idx as u64 + t) % 3) as usize];
                let u = Usage {
                    input: 3 + n % 40,
                    output: 150 + 37 * n % 900,
                    cache_create: 1_000 + 113 * n % 4_000,
                    cache_read: 12_000 + 977 * n % 30_000,
                };
                lines.push(
                    json!({
                        "parentUuid": null, "isSidechain": false, "userType": "external",
                        "cwd": cwd, "sessionId": id, "version": "2.0.14", "gitBranch": "main",
                        "type": "user", "uuid": uuid_for(&[n, 1]),
                        "message": {"role": "user", "content": format!("step {t} of the {project} change")},
                        "timestamp": stamp(at),
                    })
                    .to_string(),
                );
                let reply = at
                    .checked_add(jiff::SignedDuration::from_secs(8))
                    .context("demo time")?;
                lines.push(
                    json!({
                        "parentUuid": uuid_for(&[n, 1]), "isSidechain": false,
                        "userType": "external", "cwd": cwd, "sessionId": id,
                        "version": "2.0.14", "gitBranch": "main", "type": "assistant",
                        "uuid": uuid_for(&[n, 2]), "requestId": format!("req_demo{n:06}"),
                        "message": {
                            "id": format!("msg_demo{n:06}"), "type": "message",
                            "role": "assistant", "model": model,
                            "content": [{"type": "text", "text": "Done; tests pass."}],
                            "stop_reason": "end_turn", "stop_sequence": null,
                            "usage": {
                                "input_tokens": u.input,
                                "cache_creation_input_tokens": u.cache_create,
                                "cache_read_input_tokens": u.cache_read,
                                "output_tokens": u.output,
                            },
                        },
                        "timestamp": stamp(reply),
                    })
                    .to_string(),
                );
                per_day.entry(day.to_string()).or_default().add(&u);
            }
            write_lines(&transcript, &lines)?;
            sessions.push(Session {
                id,
                cwd: cwd.clone(),
                transcript,
            });
        }
        people.push(Person {
            name,
            tier,
            sessions,
        });
    }

    let codex_home = base.join("alice/.codex");
    truth.codex = codex_session(&codex_home, first)?;
    let ccc_root = base.join("ccc");
    truth.ccc = ccc_root_logs(&ccc_root, first)?;
    Ok(History {
        people,
        codex_home,
        ccc_root: Some(ccc_root),
        truth,
        base,
        real: false,
    })
}

/// One Codex CLI rollout: `session_meta`, `turn_context`, and `token_count` events carrying
/// both the turn's usage and the running totals.
fn codex_session(home: &Path, day: jiff::civil::Date) -> anyhow::Result<CodexTotals> {
    let start = day
        .at(1, 0, 0, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .context("codex time")?
        .timestamp();
    let id = uuid_for(&[42]);
    let path = home
        .join("sessions")
        .join(day.strftime("%Y/%m/%d").to_string())
        .join(format!(
            "rollout-{}-{id}.jsonl",
            start.strftime("%Y-%m-%dT%H-%M-%S")
        ));
    let mut lines = vec![
        json!({"timestamp": stamp(start), "type": "session_meta", "payload": {
            "id": id, "timestamp": stamp(start), "cwd": "/home/alice/src/payments",
            "originator": "codex_cli_rs", "cli_version": "0.63.0",
            "git": {"commit_hash": "4f2a9c1e0d6b7a8c9f0e1d2c3b4a5968778695a4", "branch": "main"}}})
        .to_string(),
        json!({"timestamp": stamp(start), "type": "turn_context",
               "payload": {"cwd": "/home/alice/src/payments", "model": "gpt-5-codex"}})
        .to_string(),
    ];
    let mut t = CodexTotals::default();
    let mut reasoning_total = 0;
    for i in 0..5u64 {
        let at = start
            .checked_add(jiff::SignedDuration::from_secs(60 * i as i64 + 30))
            .context("codex time")?;
        let (input, cached, output, reasoning) =
            (4_000 + 900 * i, 2_048 * (i % 3), 300 + 71 * i, 64 * i);
        t.turns += 1;
        t.input_tokens += input;
        t.cached_input_tokens += cached;
        t.output_tokens += output;
        reasoning_total += reasoning;
        let usage = |inp, cac, out, rea| {
            json!({"input_tokens": inp, "cached_input_tokens": cac, "output_tokens": out,
                   "reasoning_output_tokens": rea, "total_tokens": inp + out})
        };
        lines.push(
            json!({"timestamp": stamp(at), "type": "event_msg", "payload": {
                "type": "token_count", "info": {
                    "total_token_usage": usage(t.input_tokens, t.cached_input_tokens, t.output_tokens, reasoning_total),
                    "last_token_usage": usage(input, cached, output, reasoning),
                    "model_context_window": 272_000}}})
            .to_string(),
        );
    }
    write_lines(&path, &lines)?;
    Ok(t)
}

/// A CCC shim root: a decision line and a final line per request, and one results file.
fn ccc_root_logs(root: &Path, day: jiff::civil::Date) -> anyhow::Result<CccTotals> {
    let start = day
        .at(2, 0, 0, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .context("ccc time")?
        .timestamp()
        .as_second();
    let mut lines = Vec::new();
    let mut t = CccTotals::default();
    for i in 0..8u64 {
        let ts = start as f64 + 90.0 * i as f64;
        let (model, lane) = if i % 2 == 0 {
            ("glm-4.6", "zai")
        } else {
            ("claude-sonnet-4-5", "anthropic")
        };
        let rid = format!("{:08x}", 0xdead_0000u64 + i);
        let (input, output) = (800 + 45 * i, 120 + 13 * i);
        lines.push(
            json!({"ts": ts, "rid": rid, "lane": lane, "model": model, "input_tokens": 0,
                   "output_tokens": 0, "status": -1, "reason": "", "op": "", "latency_ms": 0,
                   "event": "decision", "decision": "pass_through", "reroute_mode": "hybrid",
                   "reroute_decision": "quota_pass"})
            .to_string(),
        );
        lines.push(
            json!({"ts": ts + 1.5, "rid": rid, "lane": lane, "model": model,
                   "input_tokens": input, "output_tokens": output, "status": 200,
                   "reason": "ok", "op": "nonstream", "latency_ms": 1_500, "err_type": "",
                   "upstream": if lane == "zai" { "zai" } else { "anth" }, "h2": true,
                   "reroute_mode": "hybrid", "reroute_decision": "quota_pass"})
            .to_string(),
        );
        t.requests += 1;
        t.input_tokens += input;
        t.output_tokens += output;
    }
    write_lines(&root.join("logs/usage.jsonl"), &lines)?;
    write_lines(
        &root.join(format!("results/METRICS_{day}.json")),
        &[json!({"total": 2, "cls": 1.1, "impf": 6.5, "churn_score": 0.12}).to_string()],
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_reproducible_and_its_truth_adds_up() {
        let now: jiff::Timestamp = "2026-11-30T18:00:00Z".parse().expect("time");
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let ha = generate(a.path(), now).expect("generate");
        let hb = generate(b.path(), now).expect("generate");
        let ta = serde_json::to_value(&ha.truth).expect("json");
        assert_eq!(ta, serde_json::to_value(&hb.truth).expect("json"));
        let alice = &ha.truth.claude["alice"];
        let days: Vec<&str> = alice.keys().map(String::as_str).collect();
        assert_eq!(days, ["2026-11-28", "2026-11-29", "2026-11-30"]);
        // Every assistant line of every transcript is counted once in the truth.
        let mut lines = 0;
        for p in &ha.people {
            for s in &p.sessions {
                let text = std::fs::read_to_string(&s.transcript).expect("transcript");
                lines += text.lines().filter(|l| l.contains("\"assistant\"")).count() as u64;
            }
        }
        let counted: u64 = ha
            .truth
            .claude
            .values()
            .flat_map(|d| d.values())
            .map(|d| d.turns)
            .sum();
        assert_eq!(lines, counted);
        assert_eq!(ha.truth.codex.turns, 5);
        assert_eq!(ha.truth.ccc.requests, 8);
    }
}
