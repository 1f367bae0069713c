//! Claude Code transcripts (`~/.claude/projects/**/*.jsonl`). See `README.md` beside this file.

pub mod loader;
pub mod parser;
pub mod paths;

pub use loader::{ChunkJoiner, FileJob, FileOutcome, read_file, read_files, split_jobs};
pub use parser::{ClaudeEntry, Parsed, parse_line};
