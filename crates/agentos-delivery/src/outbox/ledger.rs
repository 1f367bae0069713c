//! What delivery still owes the server behind the cursor: events held back for a later run, and
//! the decisions to forget some for good.
//!
//! The cursor only moves forward, but an event the tier in force holds back must still leave on
//! a later run whose tier allows it. So when the cursor passes such an event, its place in the
//! log goes into the ledger first; a run whose tier allows it replays it from there.
//!
//! ```text
//! <data_dir>/delivery/
//!   held.json     {"version":1,"body":{"held":[{from,to,start,end}…],"forgotten_unreported":[[a,b]…],
//!                  "forgotten_total":N,"max_recorded":"full"},"sha256":"…"}
//!   forget.jsonl  one decision per line: {"at":…,"below":"full","through_seq":S,"events":N}
//! ```
//!
//! - `held`: runs of consecutive log lines whose events were all held back; `start..end` is their
//!   byte range in `windows.jsonl`, `from..=to` their seqs.
//! - `forgotten_unreported`: seqs forgotten on purpose that the server has not been told about.
//! - `max_recorded`: the highest tier any scanned event was recorded under (bounds the summary).
//! - `forget.jsonl` is the durable record of every `agentos ccc outbox forget`: append-only,
//!   fsynced, never rewritten. An event is forgotten when its seq is at most a decision's
//!   `through_seq` and its recorded tier is at least the decision's `below`.
//!
//! Crash safety: `held.json` is replaced atomically (temp, fsync, rename, dir fsync) *before* the
//! cursor moves past what it records, and adding a run that is already there changes nothing, so
//! a crash in between only records the same run twice over. A corrupt `held.json` cannot be
//! trusted to list every held event, so delivery then rescans the log from offset 0 (the server
//! dedupes the replays); the forget decisions survive in their own file.
//!
//! Frozen format: do not reorder, rename or retype the fields of `HeldFile`, `LedgerBody`,
//! `HeldRun` or `ForgetDecision`; bump `version`.

use std::io::{self, BufRead, Write};
use std::path::Path;

use agentos_core::seq_ranges::SeqRanges;
use agentos_core::tier::Tier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Current `held.json` format version.
pub const LEDGER_VERSION: u32 = 1;

/// A run of consecutive log lines whose events were all held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRun {
    /// First seq of the run.
    pub from: u64,
    /// Last seq of the run.
    pub to: u64,
    /// Byte offset of the run's first line in `windows.jsonl`.
    pub start: u64,
    /// Byte offset just past the run's last line.
    pub end: u64,
}

impl HeldRun {
    /// How many events the run holds.
    pub fn count(&self) -> u64 {
        self.to - self.from + 1
    }
}

/// One `agentos ccc outbox forget` decision: the events it covers are exactly those pending
/// when it was made (held back, or past the cursor up to the end of the log), so a later
/// rescan of the log can never mistake an event delivered before the decision for a forgotten
/// one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetDecision {
    /// When it was made.
    pub at: jiff::Timestamp,
    /// Events recorded under this tier or higher are forgotten.
    pub below: Tier,
    /// The seqs held back when it was made.
    pub held: SeqRanges,
    /// The cursor's last seq when it was made: later seqs were not read yet.
    pub after_seq: u64,
    /// The last seq of the log when it was made.
    pub through_seq: u64,
    /// How many events it forgot.
    pub events: u64,
}

impl ForgetDecision {
    /// Whether this decision forgets the event `seq` recorded under `tier`.
    pub fn forgets(&self, seq: u64, tier: Tier) -> bool {
        tier >= self.below
            && (self.held.contains(seq) || (self.after_seq < seq && seq <= self.through_seq))
    }
}

/// The ledger's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerBody {
    /// Held runs, sorted by seq, disjoint.
    pub held: Vec<HeldRun>,
    /// Forgotten seqs the server has not been told about yet.
    pub forgotten_unreported: SeqRanges,
    /// Events forgotten so far.
    pub forgotten_total: u64,
    /// The highest tier any scanned event was recorded under.
    pub max_recorded: Tier,
}

#[derive(Serialize, Deserialize)]
struct HeldFile {
    version: u32,
    body: LedgerBody,
    sha256: String,
}

/// Result of reading `held.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerLoad {
    /// No ledger yet.
    Fresh,
    /// A valid ledger.
    Loaded(LedgerBody),
    /// The file cannot be trusted; the reason says why.
    Corrupt(String),
}

fn digest(body: &LedgerBody) -> String {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl LedgerBody {
    /// Reads `held.json`.
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn load(path: &Path) -> io::Result<LedgerLoad> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LedgerLoad::Fresh),
            Err(e) => return Err(e),
        };
        let file: HeldFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                return Ok(LedgerLoad::Corrupt(format!(
                    "unparsable at line {} column {}: {e}",
                    e.line(),
                    e.column()
                )));
            }
        };
        if file.version != LEDGER_VERSION {
            return Ok(LedgerLoad::Corrupt(format!(
                "unknown version {}",
                file.version
            )));
        }
        if digest(&file.body) != file.sha256 {
            return Ok(LedgerLoad::Corrupt("checksum mismatch".into()));
        }
        Ok(LedgerLoad::Loaded(file.body))
    }

    /// Durably replaces `held.json`.
    ///
    /// # Errors
    /// Any I/O error.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        let file = HeldFile {
            version: LEDGER_VERSION,
            sha256: digest(self),
            body: self.clone(),
        };
        let mut bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
        bytes.push(b'\n');
        agentos_config::atomic_write(path, &bytes)
    }

    /// Events held back right now.
    pub fn held_count(&self) -> u64 {
        self.held.iter().map(HeldRun::count).sum()
    }

    /// The held seqs.
    pub fn held_seqs(&self) -> SeqRanges {
        SeqRanges::from_ranges(self.held.iter().map(|r| (r.from, r.to)))
    }

    /// Records a held run; a run overlapping one already there (a replay after a crash or a
    /// rescan) is merged with it.
    pub fn add_run(&mut self, run: HeldRun) {
        let mut merged = run;
        self.held.retain(|r| {
            let overlaps = r.from <= merged.to.saturating_add(1) && merged.from <= r.to + 1;
            if overlaps {
                merged.from = merged.from.min(r.from);
                merged.to = merged.to.max(r.to);
                merged.start = merged.start.min(r.start);
                merged.end = merged.end.max(r.end);
            }
            !overlaps
        });
        let at = self.held.partition_point(|r| r.from < merged.from);
        self.held.insert(at, merged);
    }

    /// Takes seqs `..=through_seq` off the front of the held run starting at `from`: they left.
    /// `next_start` is the offset of the run's first line after them.
    pub fn release_front(&mut self, from: u64, through_seq: u64, next_start: u64) {
        if let Some(i) = self.held.iter().position(|r| r.from == from) {
            if through_seq >= self.held[i].to {
                self.held.remove(i);
            } else {
                self.held[i].from = through_seq + 1;
                self.held[i].start = next_start;
            }
        }
    }

    /// Forgets every held run (all held events are recorded under a tier that `below` covers
    /// when `below` is at most `full`); returns how many events that forgot.
    pub fn forget_held(&mut self) -> u64 {
        let mut n = 0;
        for r in std::mem::take(&mut self.held) {
            n += r.count();
            self.forgotten_unreported.add(r.from, r.to);
        }
        self.forgotten_total += n;
        n
    }
}

/// Reads every forget decision in `forget.jsonl`. A line that does not parse can only be an
/// append a crash tore before the command reported success (each append is fsynced before
/// `forget` says it is done), so it is reported and skipped.
///
/// # Errors
/// I/O errors.
pub fn load_decisions(path: &Path) -> io::Result<Vec<ForgetDecision>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ForgetDecision>(&line) {
            Ok(d) => out.push(d),
            Err(e) => {
                tracing::warn!(path = %path.display(), line = i + 1, error = %e, "skipping a torn forget decision (it never completed)");
            }
        }
    }
    Ok(out)
}

/// Appends one decision to `forget.jsonl` and fsyncs it.
///
/// # Errors
/// Any I/O error.
pub fn append_decision(path: &Path, d: &ForgetDecision) -> io::Result<()> {
    let mut line = serde_json::to_vec(d).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // A torn previous line must not swallow this one.
    if f.metadata()?.len() > 0 {
        let mut last = [0u8; 1];
        use std::io::{Read, Seek, SeekFrom};
        let mut r = std::fs::File::open(path)?;
        r.seek(SeekFrom::End(-1))?;
        r.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
        }
    }
    f.write_all(&line)?;
    f.sync_all()
}

/// Whether any decision forgets the event `seq` recorded under `tier`.
pub fn forgotten_by(decisions: &[ForgetDecision], seq: u64, tier: Tier) -> bool {
    decisions.iter().any(|d| d.forgets(seq, tier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(from: u64, to: u64) -> HeldRun {
        HeldRun {
            from,
            to,
            start: from * 100,
            end: (to + 1) * 100,
        }
    }

    #[test]
    fn adding_the_same_run_twice_records_it_once() {
        let mut l = LedgerBody::default();
        l.add_run(run(5, 9));
        l.add_run(run(5, 9));
        l.add_run(run(1, 2));
        l.add_run(run(8, 12));
        assert_eq!(l.held, vec![run(1, 2), run(5, 12)]);
        assert_eq!(l.held_count(), 10);
    }

    #[test]
    fn releasing_the_front_of_a_run_keeps_the_rest() {
        let mut l = LedgerBody::default();
        l.add_run(run(5, 9));
        l.release_front(5, 6, 700);
        assert_eq!(
            l.held,
            vec![HeldRun {
                from: 7,
                to: 9,
                start: 700,
                end: 1000
            }]
        );
        l.release_front(7, 9, 1000);
        assert!(l.held.is_empty());
    }

    #[test]
    fn the_ledger_round_trips_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("held.json");
        let mut l = LedgerBody::default();
        l.add_run(run(3, 4));
        l.store(&p).expect("store");
        assert_eq!(LedgerBody::load(&p).expect("load"), LedgerLoad::Loaded(l));
        let text = std::fs::read_to_string(&p)
            .expect("read")
            .replace("\"to\":4", "\"to\":5");
        std::fs::write(&p, text).expect("write");
        assert!(matches!(
            LedgerBody::load(&p).expect("load"),
            LedgerLoad::Corrupt(r) if r.contains("checksum")
        ));
    }

    #[test]
    fn decisions_survive_a_torn_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("forget.jsonl");
        let d = ForgetDecision {
            at: jiff::Timestamp::UNIX_EPOCH,
            below: Tier::Full,
            held: SeqRanges::from_ranges([(2, 3)]),
            after_seq: 5,
            through_seq: 7,
            events: 4,
        };
        append_decision(&p, &d).expect("append");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| f.write_all(b"{\"at\":"))
            .expect("torn");
        assert_eq!(load_decisions(&p).expect("load"), vec![d.clone()]);
        append_decision(&p, &d).expect("append after torn");
        assert_eq!(load_decisions(&p).expect("load"), vec![d.clone(), d]);
        let ds = load_decisions(&p).expect("load");
        assert!(forgotten_by(&ds, 7, Tier::Full) && forgotten_by(&ds, 2, Tier::Full));
        assert!(
            !forgotten_by(&ds, 8, Tier::Full),
            "recorded after the decision"
        );
        assert!(
            !forgotten_by(&ds, 4, Tier::Full),
            "delivered before the decision"
        );
        assert!(
            !forgotten_by(&ds, 7, Tier::Minimized),
            "below the decision's tier"
        );
    }
}
