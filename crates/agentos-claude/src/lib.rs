//! Claude Code, wired in: what `agentos claude hook|install|uninstall|status` do.
//!
//! | Module | Holds |
//! |---|---|
//! | [`payload`] | the hook input Claude Code writes on stdin (documented field names) |
//! | [`hook`] | the handler: SessionStart → session, Stop/SubagentStop → turns, SessionEnd → end |
//! | [`transcript`] | reading the transcript lines appended since a cursor, one turn per request |
//! | [`cursor`] | the per-session cursor file (offsets, tier, turn ids already recorded) |
//! | [`git`] | repo id, branch and commit of a working directory, read from `.git` without spawning git |
//! | [`status`] | the last hook run and the hook error log, for `agentos claude status` |
//! | [`settings`] | adding and removing our entries in Claude Code's `settings.json` |
//! | [`statusline`] | `agentos statusline`: session, day and 5-hour block costs from the log |
//!
//! The transcript is the source of truth: a hook only says "look now". Each run reads what was
//! appended since the session's cursor, so a missed hook is caught up by the next one, and turn
//! ids are derived from the request's identity ([`agentos_core::origin`]), so nothing is
//! recorded twice, even when a run is killed half-way (see [`hook`] for the protocol).

pub mod cursor;
pub mod error;
pub mod git;
pub mod hook;
pub mod payload;
pub mod settings;
pub mod status;
pub mod statusline;
pub mod transcript;

pub use error::ClaudeError;
pub use hook::{HookOptions, HookReport, handle};
pub use payload::{HookEvent, HookInput};
