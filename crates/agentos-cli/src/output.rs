//! Everything the CLI writes for people and scripts: colours, warnings and notes on stderr, JSON
//! and tables on stdout, progress bars, the stderr diagnostics subscriber, and exit codes.
//!
//! Subcommands print only through these helpers (or plain `println!` for their own lines), so
//! the conventions (`NO_COLOR`, `agentos:` prefixes, the meaning of exit 1 and 2) are decided
//! once.

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use agentos_ingest::{Account, Progress};
use agentos_recorder::LogWarning;
use serde::Serialize;

/// How a command ended, as the process exit code scripts see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what was asked.
    Ok,
    /// 1: the command ran but found problems (an invalid license, skipped lines under
    /// `--strict`, a refused session, an unknown key).
    Failure,
    /// 1: delivery is incomplete: something is still pending or the collector refused it.
    Pending,
    /// 3: delivery let out all this run's tier allows, but shareable events are held back for
    /// a later run whose tier allows them.
    HeldBack,
    /// 2: usage error or fatal error (bad configuration, unreadable input, another uploader).
    Fatal,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Ok => std::process::ExitCode::SUCCESS,
            ExitStatus::Failure | ExitStatus::Pending => std::process::ExitCode::from(1),
            ExitStatus::Fatal => std::process::ExitCode::from(2),
            ExitStatus::HeldBack => std::process::ExitCode::from(3),
        }
    }
}

/// Installs the stderr diagnostics subscriber (only the binary does this, never a library).
pub fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// `NO_COLOR` set to anything non-empty turns colour off everywhere (<https://no-color.org>).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether stderr may be coloured (a terminal and no `NO_COLOR`).
pub fn color_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

/// Whether stdout may be coloured (a terminal and no `NO_COLOR`).
pub fn color_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Wraps `text` in an SGR colour code when `on`.
pub fn paint(text: &str, sgr: &str, on: bool) -> String {
    if on {
        format!("\x1b[{sgr}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A loud warning on stderr.
pub fn warn_line(msg: &str) {
    eprintln!("{} {msg}", paint("WARNING:", "1;33", color_stderr()));
}

/// An error line on stderr (for "ran but found problems" exits).
pub fn error_line(msg: &str) {
    eprintln!("{} {msg}", paint("error:", "1;31", color_stderr()));
}

/// A plain `agentos: …` note on stderr (accounts, examples of skipped lines, refusals).
pub fn note(msg: &str) {
    eprintln!("agentos: {msg}");
}

/// Reports problems found in the recorder log while catching up (torn lines etc.).
pub fn report_log_warnings(warnings: &[LogWarning]) {
    for w in warnings {
        warn_line(&format!("windows.jsonl: {w}"));
    }
}

/// Prints one pretty JSON document and a newline on stdout.
///
/// # Errors
/// When the value does not serialize or stdout is closed.
pub fn print_json<T: Serialize + ?Sized>(v: &T) -> anyhow::Result<()> {
    // Stdout is line-buffered: unbuffered, a pretty report costs one write(2) per line.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    // Flushed here so a closed pipe surfaces as this command's error, not at exit.
    out.flush()?;
    Ok(())
}

/// Prints the closing one-line account of an ingest-family run on stderr.
pub fn print_account(what: &str, a: &Account) {
    note(&format!("{what}: {a}"));
}

/// The exit status of an ingest-family run: [`ExitStatus::Failure`] (with a note) when lines were
/// skipped under `--strict`, by this run or by the earlier runs that filled the store (so a warm
/// run answers as the cold one did).
pub fn skipped_lines_status(strict: bool, a: &Account) -> ExitStatus {
    let skipped = a.lines_skipped.max(a.skipped_recorded);
    if strict && skipped > 0 {
        let list = a
            .skipped_list
            .as_ref()
            .map(|p| format!("; list: {}", p.display()))
            .unwrap_or_default();
        note(&format!("{skipped} line(s) skipped (--strict{list})"));
        return ExitStatus::Failure;
    }
    ExitStatus::Ok
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Columns available to tables: `COLUMNS` when it is a positive number, else the width of the
/// terminal on stdout, else none (piped output is never cut, so scripts see whole rows).
pub fn table_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return Some(n);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A text table: the first row is the header, columns are separated by two spaces, trailing
/// blanks are trimmed, and a dashed rule follows the header and precedes the last row (the
/// totals).
#[derive(Debug)]
pub struct Table {
    /// Columns before this index are left-aligned (labels); the rest are right-aligned
    /// (numbers).
    pub left_aligned: usize,
    /// Header first, then the body rows, then the totals row.
    pub rows: Vec<Vec<String>>,
    /// Paint the totals row bold; callers pass [`color_stdout`] so `NO_COLOR` and pipes get
    /// plain text.
    pub bold_totals: bool,
}

/// Label columns are never cut below this many characters: a narrower label says nothing.
const MIN_LABEL: usize = 8;

impl Table {
    fn widths(&self) -> Vec<usize> {
        let ncol = self.rows.first().map_or(0, Vec::len);
        (0..ncol)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|l| l.get(c).map_or(0, |cell| cell.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Width of the widest line the table writes (characters).
    pub fn width(&self) -> usize {
        let w = self.widths();
        w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1)
    }

    /// Cuts label cells (with `…`) until the table is at most `max` characters wide, widest
    /// label column first; numbers are never cut, since a cut number would be a wrong number.
    /// Stops at [`MIN_LABEL`] characters per label column even if the table is still too wide.
    pub fn fit(&mut self, max: usize) {
        loop {
            let width = self.width();
            if width <= max {
                return;
            }
            let widths = self.widths();
            let Some((col, &w)) = widths
                .iter()
                .enumerate()
                .take(self.left_aligned)
                .filter(|(_, w)| **w > MIN_LABEL)
                .max_by_key(|(c, w)| (**w, std::cmp::Reverse(*c)))
            else {
                return;
            };
            let target = w.saturating_sub(width - max).max(MIN_LABEL);
            for row in &mut self.rows {
                if let Some(cell) = row.get_mut(col) {
                    *cell = ellipsize(cell, target);
                }
            }
        }
    }

    /// Writes the table; widths count characters, not bytes, so `└` and `…` align.
    ///
    /// # Errors
    /// When `out` fails.
    pub fn write(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let widths = self.widths();
        let ncol = widths.len();
        let rule = "-".repeat(self.width());
        for (i, l) in self.rows.iter().enumerate() {
            let mut s = String::new();
            for (c, cell) in l.iter().enumerate().take(ncol) {
                let pad = " ".repeat(widths[c] - cell.chars().count());
                if c < self.left_aligned {
                    s.push_str(cell);
                    s.push_str(&pad);
                } else {
                    s.push_str(&pad);
                    s.push_str(cell);
                }
                if c + 1 < ncol {
                    s.push_str("  ");
                }
            }
            let is_totals = i > 0 && i + 1 == self.rows.len();
            writeln!(
                out,
                "{}",
                paint(s.trim_end(), "1", self.bold_totals && is_totals)
            )?;
            if i == 0 || i + 2 == self.rows.len() {
                writeln!(out, "{rule}")?;
            }
        }
        Ok(())
    }
}

/// A progress bar over a [`Progress`], drawn on stderr only when it is a terminal (so logs and
/// tests see no control sequences).
#[derive(Debug)]
pub struct Bar {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// Starts drawing (a no-op when stderr is not a terminal).
    pub fn start(p: Arc<Progress>, what: &str) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Bar { stop, handle: None };
        }
        let what = what.to_string();
        let s2 = stop.clone();
        // Polled from a thread because the library reports progress through atomics only.
        let handle = std::thread::spawn(move || {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what);
            while !s2.load(Ordering::Relaxed) {
                bar.set_length(p.total_bytes.load(Ordering::Relaxed));
                bar.set_position(p.bytes.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Bar {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One line saying what bounds the delivery cap, e.g. `tier full (as recorded; license allows full)`.
pub fn describe_cap(s: &agentos_delivery::Settings) -> String {
    let chosen = match s.tier {
        Some(t) => format!("--tier {t}"),
        None => "as recorded".to_owned(),
    };
    if s.do_not_track {
        return format!("tier local ({chosen}; DO_NOT_TRACK is set: nothing leaves)");
    }
    format!(
        "tier {} ({chosen}; license allows {})",
        s.cap(),
        s.license_ceiling
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(66_253_048), "66,253,048");
    }

    #[test]
    fn tables_align_labels_left_numbers_right_and_rule_off_header_and_totals() {
        let row = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        let t = Table {
            left_aligned: 1,
            rows: vec![
                row("Day", "Turns"),
                row("└ mon", "1,000"),
                row("Total", "7"),
            ],
            bold_totals: false,
        };
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "Day    Turns\n------------\n└ mon  1,000\n------------\nTotal      7\n"
        );
    }

    #[test]
    fn the_totals_row_is_bold_only_when_asked() {
        let row = |a: &str| vec![a.to_string()];
        let mut t = Table {
            left_aligned: 1,
            rows: vec![row("Day"), row("mon"), row("Total")],
            bold_totals: true,
        };
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("\x1b[1mTotal\x1b[0m"), "{text:?}");
        assert!(!text.contains("\x1b[1mmon"), "{text:?}");
        t.bold_totals = false;
        let mut out = Vec::new();
        t.write(&mut out).expect("write");
        assert!(!String::from_utf8(out).expect("utf-8").contains('\x1b'));
    }

    #[test]
    fn fitting_cuts_the_widest_label_and_never_a_number() {
        let row = |a: &str, b: &str, n: &str| vec![a.to_string(), b.to_string(), n.to_string()];
        let mut t = Table {
            left_aligned: 2,
            rows: vec![
                row("Session", "Models", "Cost"),
                row("0123456789abcdef0123456789", "sonnet-4", "$1,234.56"),
                row("Total", "", "$1,234.56"),
            ],
            bold_totals: false,
        };
        assert_eq!(t.width(), 26 + 2 + 8 + 2 + 9);
        t.fit(30);
        assert!(t.width() <= 30, "{}", t.width());
        assert_eq!(t.rows[1][0], "01234567…");
        assert_eq!(t.rows[1][2], "$1,234.56");
        // Impossible widths stop at the minimum label width instead of looping or cutting numbers.
        t.fit(5);
        assert_eq!(t.rows[1][2], "$1,234.56");
        assert_eq!(t.rows[1][0].chars().count(), MIN_LABEL);
    }

    #[test]
    fn ellipsize_counts_characters() {
        assert_eq!(ellipsize("abc", 3), "abc");
        assert_eq!(ellipsize("abcd", 3), "ab…");
        assert_eq!(ellipsize("└└└└", 2), "└…");
        assert_eq!(ellipsize("abc", 0), "");
    }

    #[test]
    fn exit_statuses_map_to_the_documented_codes() {
        use std::process::ExitCode;
        assert_eq!(ExitCode::from(ExitStatus::Ok), ExitCode::SUCCESS);
        assert_eq!(ExitCode::from(ExitStatus::Failure), ExitCode::from(1));
        assert_eq!(ExitCode::from(ExitStatus::Pending), ExitCode::from(1));
        assert_eq!(ExitCode::from(ExitStatus::Fatal), ExitCode::from(2));
    }
}
