//! The JSON Claude Code writes on a hook command's stdin.
//!
//! Every event carries `session_id`, `transcript_path`, `cwd` and `hook_event_name`; SessionStart
//! adds `source` (`startup`, `resume`, `clear`, `compact`), SessionEnd adds `reason`, and newer
//! clients add `agent_id` / `agent_transcript_path` to SubagentStop. Unknown fields are ignored
//! and every field but the session id and event name is optional, so a newer or older client
//! never makes the hook fail.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ClaudeError;

/// The hook events agentos handles (anything else is acknowledged and ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookEvent {
    /// A session started, resumed, was cleared or compacted.
    SessionStart,
    /// The main agent finished responding.
    Stop,
    /// A sub-agent (Task tool) finished.
    SubagentStop,
    /// The session ended.
    SessionEnd,
    /// An event agentos does not install itself for.
    #[serde(other)]
    Other,
}

impl HookEvent {
    /// The events `agentos claude install` registers, in settings order.
    pub const INSTALLED: [HookEvent; 4] = [
        HookEvent::SessionStart,
        HookEvent::Stop,
        HookEvent::SubagentStop,
        HookEvent::SessionEnd,
    ];

    /// The name Claude Code uses (a key of `hooks` in settings.json).
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::SessionStart => "SessionStart",
            HookEvent::Stop => "Stop",
            HookEvent::SubagentStop => "SubagentStop",
            HookEvent::SessionEnd => "SessionEnd",
            HookEvent::Other => "Other",
        }
    }
}

/// One hook invocation's input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookInput {
    /// Claude Code's session id (a UUID); also the agentos session id.
    pub session_id: String,
    /// The session's JSONL transcript.
    #[serde(default)]
    pub transcript_path: Option<PathBuf>,
    /// Working directory of the session.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Which event fired.
    pub hook_event_name: HookEvent,
    /// SessionStart: `startup`, `resume`, `clear` or `compact`.
    #[serde(default)]
    pub source: Option<String>,
    /// SessionEnd: why (`clear`, `logout`, `prompt_input_exit`, `other`).
    #[serde(default)]
    pub reason: Option<String>,
    /// SubagentStop (newer clients): the sub-agent's id.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// SubagentStop (newer clients): the sub-agent's own transcript.
    #[serde(default)]
    pub agent_transcript_path: Option<PathBuf>,
}

impl HookInput {
    /// Parses stdin bytes.
    ///
    /// # Errors
    /// [`ClaudeError::Payload`] when the bytes are not hook JSON or the session id is empty.
    pub fn parse(bytes: &[u8]) -> Result<HookInput, ClaudeError> {
        let input: HookInput =
            serde_json::from_slice(bytes).map_err(|e| ClaudeError::Payload(e.to_string()))?;
        if input.session_id.trim().is_empty() {
            return Err(ClaudeError::Payload("session_id is empty".into()));
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_events_and_fields_are_tolerated() {
        let i = HookInput::parse(
            br#"{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","x":1}"#,
        )
        .expect("parses");
        assert_eq!(i.hook_event_name, HookEvent::Other);
        assert_eq!(i.transcript_path, None);
    }

    #[test]
    fn an_empty_session_id_is_refused() {
        assert!(HookInput::parse(br#"{"session_id":" ","hook_event_name":"Stop"}"#).is_err());
        assert!(HookInput::parse(b"not json").is_err());
    }
}
