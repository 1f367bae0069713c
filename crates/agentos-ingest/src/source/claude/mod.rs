//! Claude Code transcripts (`~/.claude/projects/**/*.jsonl`). See `README.md` beside this file.

pub mod loader;
pub mod parser;
pub mod paths;

pub use loader::{FileJob, FileOutcome, read_file, read_files};
pub use parser::{ClaudeEntry, Parsed, parse_line};
