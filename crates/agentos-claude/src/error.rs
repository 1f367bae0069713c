//! Errors of the Claude Code integration.

use std::path::PathBuf;

/// What can go wrong handling a hook or editing a settings file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaudeError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The hook input on stdin is not the JSON Claude Code documents.
    #[error("hook input is not valid hook JSON: {0}")]
    Payload(String),
    /// Reading a transcript or the log failed.
    #[error(transparent)]
    Read(#[from] agentos_ingest::IngestError),
    /// The recorder refused or failed.
    #[error(transparent)]
    Recorder(#[from] agentos_recorder::RecorderError),
    /// A settings file that is not a JSON object; it is left untouched.
    #[error(
        "{path} is not a JSON object agentos can edit ({message}); fix or move it, nothing was changed"
    )]
    UnparsableSettings {
        /// The settings file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// `statusLine` is set to another command; replacing it needs an explicit choice.
    #[error(
        "{path} already has a statusLine ({existing}); remove it first or install without --statusline"
    )]
    ForeignStatusLine {
        /// The settings file.
        path: PathBuf,
        /// The command configured there.
        existing: String,
    },
}

impl ClaudeError {
    /// Stable snake_case code for logs and status output.
    pub fn code(&self) -> &'static str {
        match self {
            ClaudeError::Io { .. } => "io",
            ClaudeError::Payload(_) => "bad_payload",
            ClaudeError::Read(_) => "read",
            ClaudeError::Recorder(e) => e.code(),
            ClaudeError::UnparsableSettings { .. } => "unparsable_settings",
            ClaudeError::ForeignStatusLine { .. } => "foreign_status_line",
        }
    }

    /// An [`ClaudeError::Io`] builder for `map_err`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ClaudeError {
        let path = path.into();
        move |source| ClaudeError::Io { op, path, source }
    }
}
