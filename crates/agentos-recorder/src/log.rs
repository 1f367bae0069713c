//! Reading `windows.jsonl`: the one fold shared by catch-up, resume and full recompute.
//!
//! [`LogState`] is what the recorder knows about the log: how many bytes and lines it has
//! folded, the last seq, and the rollup. Folding the same bytes from the same start always gives
//! the same state, which is why the incremental path (fold each record as it is appended) and
//! `agentos ccc rollup` (fold the whole file from byte 0) agree.
//!
//! Line rules:
//! - a line that parses and passes the v1 schema is applied;
//! - any other newline-terminated line is reported ([`LogWarning::InvalidLine`]) and skipped;
//! - a last line without a newline (a writer crashed mid-append) is applied if it is a valid
//!   envelope, otherwise reported as [`LogWarning::TornLine`] and skipped. The recorder then
//!   terminates it with a newline before its next append, so the next record starts on a fresh
//!   line, and the torn line's seq is reused (seq stays gap-free among valid lines).

use std::fmt;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use agentos_core::event::Envelope;
use agentos_core::rollup::Rollup;
use serde::{Deserialize, Serialize};

/// Version of the `rollup_state.json` layout. Bump on any change; an unknown version is
/// rebuilt from the log instead of trusted.
pub const STATE_VERSION: u32 = 1;

/// What has been folded from `windows.jsonl` so far. Persisted as `rollup_state.json`.
///
/// On-disk format: do not rename, retype or reorder fields without bumping [`STATE_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Bytes of `windows.jsonl` folded (always ends at a line boundary).
    pub covered_len: u64,
    /// Lines folded (valid or not), for line numbers in reports.
    pub lines: u64,
    /// Valid events folded.
    pub events: u64,
    /// Highest seq among valid lines (0 when none).
    pub last_seq: u64,
    /// The running totals.
    pub rollup: Rollup,
    /// Highest seq handed out before the log was truncated or replaced (0 when it never was):
    /// kept so no seq is ever handed out twice (the server would hold two different events
    /// under one seq). Added without a version bump: older state files read as 0.
    #[serde(default)]
    pub seq_high_water: u64,
}

impl Default for LogState {
    fn default() -> Self {
        LogState {
            version: STATE_VERSION,
            covered_len: 0,
            lines: 0,
            events: 0,
            last_seq: 0,
            rollup: Rollup::new(),
            seq_high_water: 0,
        }
    }
}

/// Something wrong in the log that was skipped or repaired, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogWarning {
    /// A newline-terminated line that is not a valid v1 envelope.
    InvalidLine {
        /// 1-based line number in `windows.jsonl`.
        line: u64,
        /// Byte offset of the line start.
        offset: u64,
        /// Why it was rejected.
        error: String,
    },
    /// The last line had no newline and is not a valid envelope (a crash mid-append).
    TornLine {
        /// 1-based line number.
        line: u64,
        /// Byte offset of the line start.
        offset: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// A valid line whose seq is not the previous seq + 1.
    SeqOutOfOrder {
        /// 1-based line number.
        line: u64,
        /// The seq that was expected.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The log is shorter than the saved state covers (replaced or truncated): rebuilt.
    LogShrank {
        /// Bytes the state covered.
        covered: u64,
        /// Current length.
        len: u64,
    },
    /// `rollup_state.json` could not be used: rebuilt from the log.
    StateRebuilt {
        /// Why.
        reason: String,
    },
}

impl LogWarning {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            LogWarning::InvalidLine { .. } => "invalid_line",
            LogWarning::TornLine { .. } => "torn_line",
            LogWarning::SeqOutOfOrder { .. } => "seq_out_of_order",
            LogWarning::LogShrank { .. } => "log_shrank",
            LogWarning::StateRebuilt { .. } => "state_rebuilt",
        }
    }
}

impl fmt::Display for LogWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogWarning::InvalidLine {
                line,
                offset,
                error,
            } => {
                write!(f, "line {line} (byte {offset}) skipped: {error}")
            }
            LogWarning::TornLine { line, offset, len } => write!(
                f,
                "line {line} (byte {offset}, {len} bytes) is torn (no newline; a writer crashed mid-append), skipped"
            ),
            LogWarning::SeqOutOfOrder {
                line,
                expected,
                found,
            } => write!(f, "line {line} has seq {found}, expected {expected}"),
            LogWarning::LogShrank { covered, len } => write!(
                f,
                "log is {len} bytes but {covered} bytes were already folded (replaced or truncated?); rebuilt from scratch"
            ),
            LogWarning::StateRebuilt { reason } => {
                write!(f, "rollup state unusable ({reason}); rebuilt from the log")
            }
        }
    }
}

/// What the last piece of a fold looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The fold ended on a line boundary.
    Clean,
    /// The last line had no newline; it was folded (applied or reported) and needs a newline
    /// written after it before anything else is appended.
    Unterminated,
}

impl LogState {
    /// Folds one line (without its newline) that starts at byte `offset`.
    pub fn fold_line(
        &mut self,
        line: &[u8],
        offset: u64,
        terminated: bool,
        warnings: &mut Vec<LogWarning>,
    ) {
        self.lines += 1;
        let line_no = self.lines;
        // Tolerate CRLF and stray blank lines (hand-edited files).
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            if !terminated {
                warnings.push(LogWarning::TornLine {
                    line: line_no,
                    offset,
                    len: line.len() as u64,
                });
            }
            return;
        }
        match agentos_core::schema::parse_envelope(text) {
            Ok(env) => {
                self.fold_event(&env, Some(line_no), warnings);
            }
            Err(_) if !terminated => warnings.push(LogWarning::TornLine {
                line: line_no,
                offset,
                len: line.len() as u64,
            }),
            Err(e) => warnings.push(LogWarning::InvalidLine {
                line: line_no,
                offset,
                error: e.to_string(),
            }),
        }
    }

    /// The seq the next appended event gets: never one handed out before, even if the log
    /// was truncated since.
    pub fn next_seq(&self) -> u64 {
        self.last_seq.max(self.seq_high_water) + 1
    }

    /// A fresh state for a log that no longer holds what this one covered (truncated or
    /// replaced): nothing folded, but the seqs handed out stay used.
    pub fn restart(&self) -> LogState {
        LogState {
            seq_high_water: self.last_seq.max(self.seq_high_water),
            ..LogState::default()
        }
    }

    /// Folds one valid event.
    pub fn fold_event(
        &mut self,
        env: &Envelope,
        line: Option<u64>,
        warnings: &mut Vec<LogWarning>,
    ) {
        let expected = self.next_seq();
        if env.seq != expected {
            warnings.push(LogWarning::SeqOutOfOrder {
                line: line.unwrap_or(self.lines),
                expected,
                found: env.seq,
            });
        }
        self.last_seq = self.last_seq.max(env.seq);
        self.events += 1;
        self.rollup.apply(env);
    }

    /// Folds `reader`'s bytes, which are the log from byte `self.covered_len` on.
    ///
    /// Reads line by line with a bounded buffer, so memory does not grow with the log.
    ///
    /// # Errors
    /// I/O errors of the reader.
    pub fn fold_reader<R: Read>(
        &mut self,
        reader: R,
        warnings: &mut Vec<LogWarning>,
    ) -> std::io::Result<Tail> {
        let mut r = BufReader::with_capacity(64 * 1024, reader);
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            let n = r.read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(Tail::Clean);
            }
            let offset = self.covered_len;
            self.covered_len += n as u64;
            match buf.strip_suffix(b"\n") {
                Some(line) => self.fold_line(line, offset, true, warnings),
                None => {
                    self.fold_line(&buf, offset, false, warnings);
                    return Ok(Tail::Unterminated);
                }
            }
        }
    }

    /// Folds the bytes of `file` in `[self.covered_len, len)`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn fold_file_range(
        &mut self,
        file: &mut std::fs::File,
        len: u64,
        warnings: &mut Vec<LogWarning>,
    ) -> std::io::Result<Tail> {
        file.seek(SeekFrom::Start(self.covered_len))?;
        let want = len.saturating_sub(self.covered_len);
        self.fold_reader(Read::take(&mut *file, want), warnings)
    }
}

/// The result of folding a whole log from scratch.
#[derive(Debug, Clone)]
pub struct Recompute {
    /// The state after the fold.
    pub state: LogState,
    /// Everything skipped, with line numbers.
    pub warnings: Vec<LogWarning>,
    /// Whether the last line lacks a newline.
    pub tail: Tail,
}

/// Folds `windows.jsonl` at `path` from byte 0 (streaming). A missing file is an empty log.
///
/// # Errors
/// I/O errors other than "not found".
pub fn recompute(path: &Path) -> std::io::Result<Recompute> {
    let mut state = LogState::default();
    let mut warnings = Vec::new();
    let tail = match std::fs::File::open(path) {
        Ok(f) => state.fold_reader(f, &mut warnings)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tail::Clean,
        Err(e) => return Err(e),
    };
    Ok(Recompute {
        state,
        warnings,
        tail,
    })
}
