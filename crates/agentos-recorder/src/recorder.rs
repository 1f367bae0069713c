//! The session recorder: appends v1 envelopes to `windows.jsonl` and keeps the rollup current.
//!
//! # Concurrency and cost
//! Several processes may record into one data dir at once (shell hooks of several agents, each
//! a separate `agentos ccc turn`). Every append happens under an exclusive lock on
//! `recorder.lock`, as one `write` of a whole line to a file opened with `O_APPEND`, so lines
//! never interleave or tear (short of a crash mid-write, see [`crate::log`]).
//!
//! Each recorder keeps a [`LogState`] (rollup, last seq, and how many bytes of the log it
//! covers) in memory and in `rollup_state.json`. Under the lock it stats the log: if the length
//! equals what it covers, the state is current and the record costs O(1) (validate, append,
//! fold one event, rewrite the summary). If another process appended meanwhile, only the bytes
//! after the covered offset are read and folded; a fresh process loads the state file and does
//! the same. The whole log is read only when the state file is missing or unusable.
//!
//! # Durability
//! By default an append is not fsynced: once `write` returns, the line is in the page cache and
//! survives a crash of the process, but not a power loss. `[recorder] fsync = true` adds a
//! `sync_data` per append (a few ms on a disk; see `docs/perf/recorder.md`). The summary and
//! the state file are derived data, replaced by rename without fsync; after a power loss they
//! are rebuilt from the log if they turn out stale or empty.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use agentos_config::durable::{self, FileLock};
use agentos_config::{Config, DataDir};
use agentos_core::event::{
    Envelope, EventBody, EventId, Session, SessionEnd, SessionEvent, SessionId, TurnEvent, TurnId,
};
use agentos_core::license::VerifiedLicense;
use agentos_core::rollup::Summary;
use agentos_core::schema::SchemaError;
use agentos_core::tier::Tier;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::licensing::{self, LicenseProblem};
use crate::log::{LogState, LogWarning, STATE_VERSION, Tail};

/// Session metadata key noting the tier that was asked for when a session was downgraded.
pub const META_REQUESTED_TIER: &str = "agentos.requested_tier";
/// Session metadata key noting why it was downgraded (a [`LicenseProblem::code`]).
pub const META_LICENSE_PROBLEM: &str = "agentos.license_problem";
/// Session metadata key with the human-readable downgrade reason.
pub const META_LICENSE_DETAIL: &str = "agentos.license_detail";

/// The files of a data dir the recorder writes (names from [`agentos_config::layout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The data dir.
    pub data_dir: PathBuf,
    /// `windows.jsonl`.
    pub windows: PathBuf,
    /// `glm_counts.jsonl`.
    pub glm_counts: PathBuf,
    /// `metrics_summary.json`.
    pub summary: PathBuf,
    /// `rollup_state.json`.
    pub state: PathBuf,
    /// `current_session.json`.
    pub session: PathBuf,
    /// `recorder.lock`.
    pub lock: PathBuf,
}

impl Paths {
    /// The file names under `data_dir`.
    pub fn new(data_dir: &Path) -> Paths {
        let d = DataDir::new(data_dir);
        Paths {
            data_dir: data_dir.to_path_buf(),
            windows: d.windows(),
            glm_counts: d.glm_counts(),
            summary: d.summary(),
            state: d.rollup_state(),
            session: d.current_session(),
            lock: d.recorder_lock(),
        }
    }
}

/// Errors of the recorder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The event breaks a v1 schema rule; nothing was written.
    #[error("event rejected by the v1 schema, nothing written: {0}")]
    Schema(#[from] SchemaError),
    /// A turn or session end was recorded with no current session.
    #[error("no current session in {data_dir}; start one with `agentos ccc session start`")]
    NoSession {
        /// The data dir.
        data_dir: PathBuf,
    },
    /// A turn names a session other than the current one.
    #[error("turn names session {given:?} but the current session is {current:?}")]
    SessionMismatch {
        /// The turn's session id.
        given: String,
        /// The current session id.
        current: String,
    },
    /// `--strict-license`: the tier's entitlement is missing, so the session was not started.
    #[error("refusing to start a {requested} session (strict license): {problem}")]
    LicenseRefused {
        /// The tier that was asked for.
        requested: Tier,
        /// Why it cannot be granted.
        problem: LicenseProblem,
    },
    /// The current-session file is not what this recorder writes.
    #[error("current session file {path} is corrupt: {message}; remove it or start a new session")]
    SessionFile {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// Serialization of a value failed (should not happen for typed events).
    #[error("serializing {what}: {message}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// serde_json's message.
        message: String,
    },
}

impl RecorderError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            RecorderError::Io { .. } => "io",
            RecorderError::Schema(_) => "schema_violation",
            RecorderError::NoSession { .. } => "no_session",
            RecorderError::SessionMismatch { .. } => "session_mismatch",
            RecorderError::LicenseRefused { .. } => "license_refused",
            RecorderError::SessionFile { .. } => "session_file_corrupt",
            RecorderError::Serialize { .. } => "serialize",
        }
    }
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RecorderError + 'a {
    move |source| RecorderError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The session shell hooks record into (`current_session.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentSession {
    /// The session id.
    pub session_id: SessionId,
    /// The tier its events are recorded under.
    pub tier: Tier,
    /// The tier that was asked for (differs from `tier` after a license downgrade).
    pub requested_tier: Tier,
    /// When it started.
    pub created_at: jiff::Timestamp,
}

/// What to start a session with.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Repository id.
    pub repo_id: String,
    /// Branch.
    pub branch: String,
    /// Commit.
    pub commit: String,
    /// License id for the session record; defaults to the verified license's `sub`, else `""`.
    pub license_id: Option<String>,
    /// Requested tier; `None` = the configured `[ccc] tier`.
    pub tier: Option<Tier>,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
    /// Refuse instead of downgrading to `local` when the license does not allow the tier.
    pub strict_license: bool,
    /// Session id to use; a UUIDv7 when `None`.
    pub session_id: Option<SessionId>,
}

/// One appended event.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The event's id.
    pub event_id: EventId,
    /// Its seq.
    pub seq: u64,
    /// The tier it was recorded under.
    pub tier: Tier,
    /// Its timestamp.
    pub recorded_at: jiff::Timestamp,
    /// Problems found in the log while catching up (torn lines etc.), already handled.
    pub warnings: Vec<LogWarning>,
    /// The event is in the log, but a file derived from it (summary, rollup state, GLM counts)
    /// could not be written: why. Not an error, since the event must not be recorded twice; the
    /// summary and the state are rewritten by the next write (or `agentos ccc rollup`).
    pub not_refreshed: Option<String>,
    /// The envelope as appended (embeddings hand it on, redacted, without re-reading the log).
    pub envelope: Envelope,
}

/// The result of [`Recorder::start_session`].
#[derive(Debug, Clone)]
pub struct StartOutcome {
    /// The session now current.
    pub session: CurrentSession,
    /// The `session` event.
    pub recorded: Recorded,
    /// The verified license, when the tier needed one and it was granted.
    pub license: Option<VerifiedLicense>,
    /// Why the session records as `local` instead of the requested tier, if it does.
    pub downgrade: Option<LicenseProblem>,
    /// A session that was still current and is now replaced (it was never ended).
    pub replaced: Option<SessionId>,
}

/// The result of [`Recorder::rebuild`].
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The summary written.
    pub summary: Summary,
    /// Valid events folded.
    pub events: u64,
    /// Lines read.
    pub lines: u64,
    /// Highest seq.
    pub last_seq: u64,
    /// Skipped lines, with line numbers.
    pub warnings: Vec<LogWarning>,
}

/// The line appended to `glm_counts.jsonl` (fields in this order; frozen).
#[derive(Debug, Serialize)]
struct GlmCount<'a> {
    session_id: &'a SessionId,
    turn_id: &'a TurnId,
    model: &'a str,
    tokens_in: u64,
    tokens_out: u64,
}

/// Whether `model` is a GLM model (its name starts with `glm`, any case).
pub fn is_glm_model(model: &str) -> bool {
    model
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("glm"))
}

/// The recorder for one data dir.
#[derive(Debug)]
pub struct Recorder {
    config: Config,
    paths: Paths,
    state: Option<LogState>,
    session: Option<CurrentSession>,
    clock: fn() -> jiff::Timestamp,
    /// Records folded since the summary and state files were last written.
    dirty: bool,
    /// When they were last written by this recorder.
    last_refresh: Option<std::time::Instant>,
    /// The license in force: `None` until first needed (see [`license_summary`]).
    license: CachedLicense,
    health: CachedHealth,
}

impl Recorder {
    /// Opens the recorder for `config.data_dir` (creating the dir). Cheap: the log is not read
    /// until the first record.
    ///
    /// # Errors
    /// [`RecorderError::Io`] when the data dir cannot be created.
    pub fn open(config: Config) -> Result<Recorder, RecorderError> {
        let paths = Paths::new(&config.data_dir);
        std::fs::create_dir_all(&paths.data_dir)
            .map_err(io_err("creating data dir", &paths.data_dir))?;
        Ok(Recorder {
            config,
            paths,
            state: None,
            license: None,
            health: CachedHealth::default(),
            session: None,
            clock: jiff::Timestamp::now,
            dirty: false,
            last_refresh: None,
        })
    }

    /// Replaces the clock (tests: expired licenses, fixed timestamps).
    pub fn with_clock(mut self, clock: fn() -> jiff::Timestamp) -> Recorder {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data dir's files.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The session turns are recorded into, from memory or `current_session.json`.
    ///
    /// # Errors
    /// [`RecorderError::SessionFile`] when the file is corrupt; I/O errors.
    pub fn current_session(&mut self) -> Result<Option<CurrentSession>, RecorderError> {
        if self.session.is_none() {
            self.session = read_session_file(&self.paths.session)?;
        }
        Ok(self.session.clone())
    }

    /// Starts a session: license handshake, then the `session` event, then it becomes current.
    ///
    /// Without the tier's entitlement the session records as `local` and
    /// [`StartOutcome::downgrade`] says why (also noted in the session's metadata under
    /// [`META_REQUESTED_TIER`] and [`META_LICENSE_PROBLEM`]); with `strict_license` it is refused.
    ///
    /// # Errors
    /// [`RecorderError::LicenseRefused`] (strict only), schema and I/O errors.
    pub fn start_session(&mut self, req: StartRequest) -> Result<StartOutcome, RecorderError> {
        self.start_inner(req, true, false)
    }

    /// Starts a session like [`Recorder::start_session`] (license handshake, `session` event)
    /// without making it the current one: for integrations that name the session of every
    /// event themselves (Claude Code hooks, where several sessions run at once), so the
    /// session a shell hook records into is left alone. [`StartOutcome::replaced`] is `None`.
    ///
    /// # Errors
    /// As [`Recorder::start_session`].
    pub fn open_session(&mut self, req: StartRequest) -> Result<StartOutcome, RecorderError> {
        self.start_inner(req, false, false)
    }

    /// Starts the current session like [`Recorder::start_session`] for an embedding that has
    /// already performed the license handshake with its own license client (the Python
    /// package's seed-compatible `licensing` objects, whose verifier may be injected): the
    /// configured pack is not consulted again. `DO_NOT_TRACK` still forces `local`.
    ///
    /// # Errors
    /// Schema and I/O errors.
    pub fn start_session_handshaken(
        &mut self,
        req: StartRequest,
    ) -> Result<StartOutcome, RecorderError> {
        self.start_inner(req, true, true)
    }

    fn start_inner(
        &mut self,
        req: StartRequest,
        make_current: bool,
        handshaken: bool,
    ) -> Result<StartOutcome, RecorderError> {
        let now = (self.clock)();
        let requested = match req.tier {
            Some(t) => t,
            None => self.config.ccc.session_tier(),
        };
        let mut metadata = req.metadata;
        let check = if handshaken {
            if self.config.do_not_track && requested.required_entitlement().is_some() {
                Err(LicenseProblem::DoNotTrack)
            } else {
                Ok(None)
            }
        } else {
            licensing::check_tier(&self.config, requested, now.as_second())
        };
        let (tier, license, downgrade) = match check {
            Ok(lic) => (requested, lic, None),
            // DO_NOT_TRACK is the user's explicit choice, not a license failure: strict mode
            // has nothing to refuse, the session simply records locally.
            Err(problem) if req.strict_license && problem != LicenseProblem::DoNotTrack => {
                return Err(RecorderError::LicenseRefused { requested, problem });
            }
            Err(problem) => {
                metadata.insert(META_REQUESTED_TIER.into(), Value::from(requested.as_str()));
                metadata.insert(META_LICENSE_PROBLEM.into(), Value::from(problem.code()));
                metadata.insert(META_LICENSE_DETAIL.into(), Value::from(problem.to_string()));
                (Tier::Local, None, Some(problem))
            }
        };
        let session_id = req
            .session_id
            .unwrap_or_else(|| SessionId(uuid::Uuid::now_v7().to_string()));
        let license_id = req
            .license_id
            .or_else(|| license.as_ref().and_then(|l| l.claims.sub.clone()))
            .unwrap_or_default();
        let session = Session {
            session_id: session_id.clone(),
            repo_id: req.repo_id,
            branch: req.branch,
            commit: req.commit,
            license_id,
            privacy_tier: tier,
            created_at: now,
            metadata: (!metadata.is_empty()).then_some(metadata),
        };
        let recorded =
            self.append_inner(tier, EventBody::Session(SessionEvent { session }), true)?;
        let current = CurrentSession {
            session_id,
            tier,
            requested_tier: requested,
            created_at: now,
        };
        if !make_current {
            return Ok(StartOutcome {
                session: current,
                recorded,
                license,
                downgrade,
                replaced: None,
            });
        }
        let replaced = read_session_file(&self.paths.session)
            .ok()
            .flatten()
            .map(|s| s.session_id);
        let bytes = serde_json::to_vec_pretty(&current).map_err(|e| RecorderError::Serialize {
            what: "current session",
            message: e.to_string(),
        })?;
        durable::atomic_write(&self.paths.session, &bytes)
            .map_err(io_err("writing", &self.paths.session))?;
        self.session = Some(current.clone());
        Ok(StartOutcome {
            session: current,
            recorded,
            license,
            downgrade,
            replaced,
        })
    }

    /// Records one turn into the current session.
    ///
    /// An empty `turn.session_id` is filled with the current session's id and an empty
    /// `turn.turn_id` with a fresh UUIDv7. GLM models also get a line in `glm_counts.jsonl`.
    ///
    /// # Errors
    /// [`RecorderError::NoSession`], [`RecorderError::SessionMismatch`], a schema error naming
    /// the JSON pointer (nothing is written), I/O errors.
    pub fn record_turn(&mut self, mut turn: TurnEvent) -> Result<Recorded, RecorderError> {
        let current = self.require_session()?;
        if turn.turn.session_id.0.is_empty() {
            turn.turn.session_id = current.session_id.clone();
        } else if turn.turn.session_id != current.session_id {
            return Err(RecorderError::SessionMismatch {
                given: turn.turn.session_id.0,
                current: current.session_id.0,
            });
        }
        if turn.turn.turn_id.0.is_empty() {
            turn.turn.turn_id = TurnId(uuid::Uuid::now_v7().to_string());
        }
        self.append(current.tier, EventBody::Turn(turn))
    }

    /// Ends the current session with a `session_end` event (notes never leave the machine).
    ///
    /// # Errors
    /// [`RecorderError::NoSession`], I/O errors.
    pub fn end_session(&mut self, notes: Option<String>) -> Result<Recorded, RecorderError> {
        let current = self.require_session()?;
        let end = SessionEnd {
            session_id: current.session_id.clone(),
            ended_at: (self.clock)(),
            notes,
        };
        let recorded = self.append_inner(current.tier, EventBody::SessionEnd(end), true)?;
        // Only forget the session file if it still names this session (another process may
        // have started a new one meanwhile).
        if let Ok(Some(s)) = read_session_file(&self.paths.session)
            && s.session_id == current.session_id
        {
            match std::fs::remove_file(&self.paths.session) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &self.paths.session)(e)),
            }
        }
        self.session = None;
        Ok(recorded)
    }

    fn require_session(&mut self) -> Result<CurrentSession, RecorderError> {
        self.current_session()?
            .ok_or_else(|| RecorderError::NoSession {
                data_dir: self.paths.data_dir.clone(),
            })
    }

    /// Appends one event under `tier`: assigns event id, seq and timestamp, validates, writes
    /// the line, folds it into the rollup and refreshes the summary.
    ///
    /// # Errors
    /// A schema error (nothing written) or I/O errors.
    pub fn append(&mut self, tier: Tier, body: EventBody) -> Result<Recorded, RecorderError> {
        self.append_inner(tier, body, false)
    }

    fn append_inner(
        &mut self,
        tier: Tier,
        body: EventBody,
        force_refresh: bool,
    ) -> Result<Recorded, RecorderError> {
        let mut warnings = Vec::new();
        let (_lock, mut file) = self.open_log(&mut warnings)?;
        let state = self.state.get_or_insert_with(LogState::default);

        let env = Envelope {
            event_id: EventId(uuid::Uuid::now_v7()),
            seq: state.next_seq(),
            recorded_at: (self.clock)(),
            tier,
            body,
        };
        let value = agentos_core::schema::check_envelope(&env)?;
        let mut line = serde_json::to_vec(&value).map_err(|e| RecorderError::Serialize {
            what: "event",
            message: e.to_string(),
        })?;
        line.push(b'\n');
        // One write of the whole line: with O_APPEND and the lock held, no other recorder can
        // interleave; a crash can at worst leave a torn tail, which the next catch-up repairs.
        file.write_all(&line)
            .map_err(io_err("appending to", &self.paths.windows))?;
        if self.config.recorder.fsync {
            file.sync_data()
                .map_err(io_err("syncing", &self.paths.windows))?;
        }
        state.covered_len += line.len() as u64;
        state.lines += 1;
        state.fold_event(&env, None, &mut warnings);

        // From here on the event is recorded: whatever fails now must not turn into an error,
        // or a caller that retries on error would record it twice.
        let mut not_refreshed = None;
        if let EventBody::Turn(t) = &env.body
            && is_glm_model(&t.turn.model)
            && let Err(e) = self.append_glm(t)
        {
            not_refreshed = Some(error_chain(&e));
        }
        self.dirty = true;
        let interval = std::time::Duration::from_millis(self.config.recorder.refresh_interval_ms);
        if (force_refresh || self.last_refresh.is_none_or(|t| t.elapsed() >= interval))
            && let Err(e) = self.persist()
        {
            // Still dirty: the next append, flush or drop tries again.
            self.dirty = true;
            not_refreshed.get_or_insert_with(|| error_chain(&e));
        }
        Ok(Recorded {
            event_id: env.event_id,
            seq: env.seq,
            tier,
            recorded_at: env.recorded_at,
            warnings,
            not_refreshed,
            envelope: env,
        })
    }

    /// Appends `events` under `tier` with one locked write and at most one `fsync`, each
    /// event with its own `recorded_at`: for turns read from an agent's own log (`agentos
    /// ingest codex --record`), which happened when the agent made the request, not when they
    /// were read. Every event is validated before anything is written: a schema error writes
    /// nothing. Returns the seq of the last event (`None` for an empty batch).
    ///
    /// # Errors
    /// A schema error naming the JSON pointer (nothing written), I/O errors.
    pub fn append_batch(
        &mut self,
        tier: Tier,
        events: Vec<(jiff::Timestamp, EventBody)>,
    ) -> Result<Option<u64>, RecorderError> {
        if events.is_empty() {
            return Ok(None);
        }
        let mut warnings = Vec::new();
        let (_lock, mut file) = self.open_log(&mut warnings)?;
        let state = self.state.get_or_insert_with(LogState::default);
        let mut envs = Vec::with_capacity(events.len());
        let mut bytes = Vec::new();
        for (seq, (at, body)) in (state.next_seq()..).zip(events) {
            let env = Envelope {
                event_id: EventId(uuid::Uuid::now_v7()),
                seq,
                recorded_at: at,
                tier,
                body,
            };
            let value = agentos_core::schema::check_envelope(&env)?;
            serde_json::to_writer(&mut bytes, &value).map_err(|e| RecorderError::Serialize {
                what: "event",
                message: e.to_string(),
            })?;
            bytes.push(b'\n');
            envs.push(env);
        }
        file.write_all(&bytes)
            .map_err(io_err("appending to", &self.paths.windows))?;
        if self.config.recorder.fsync {
            file.sync_data()
                .map_err(io_err("syncing", &self.paths.windows))?;
        }
        state.covered_len += bytes.len() as u64;
        state.lines += envs.len() as u64;
        for env in &envs {
            state.fold_event(env, None, &mut warnings);
        }
        // Recorded from here on: what fails now is retried by the next flush, never an error.
        for env in &envs {
            if let EventBody::Turn(t) = &env.body
                && is_glm_model(&t.turn.model)
            {
                let _ = self.append_glm(t);
            }
        }
        self.dirty = true;
        if self.persist().is_err() {
            // Still dirty: the next append, flush or drop tries again.
            self.dirty = true;
        }
        Ok(envs.last().map(|e| e.seq))
    }

    /// Takes the writer lock, opens the log for appending and folds what other writers added
    /// since: every append and flush starts here. The lock is held until the guard drops.
    fn open_log(
        &mut self,
        warnings: &mut Vec<LogWarning>,
    ) -> Result<(FileLock, File), RecorderError> {
        let lock =
            FileLock::acquire(&self.paths.lock).map_err(io_err("locking", &self.paths.lock))?;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.paths.windows)
            .map_err(io_err("opening", &self.paths.windows))?;
        self.catch_up(&mut file, warnings)?;
        Ok((lock, file))
    }

    fn append_glm(&self, t: &TurnEvent) -> Result<(), RecorderError> {
        let rec = GlmCount {
            session_id: &t.turn.session_id,
            turn_id: &t.turn.turn_id,
            model: &t.turn.model,
            tokens_in: t.turn.tokens_in,
            tokens_out: t.turn.tokens_out,
        };
        let mut line = serde_json::to_vec(&rec).map_err(|e| RecorderError::Serialize {
            what: "glm count",
            message: e.to_string(),
        })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.paths.glm_counts)
            .map_err(io_err("opening", &self.paths.glm_counts))?;
        f.write_all(&line)
            .map_err(io_err("appending to", &self.paths.glm_counts))?;
        if self.config.recorder.fsync {
            f.sync_data()
                .map_err(io_err("syncing", &self.paths.glm_counts))?;
        }
        Ok(())
    }

    /// Brings the in-memory state up to the log's current end (caller holds the lock).
    fn catch_up(
        &mut self,
        file: &mut File,
        warnings: &mut Vec<LogWarning>,
    ) -> Result<(), RecorderError> {
        let path = &self.paths.windows;
        let len = file.metadata().map_err(io_err("stat", path))?.len();
        if self.state.is_none() {
            self.state = Some(load_state(&self.paths.state, warnings));
        }
        let state = self.state.get_or_insert_with(LogState::default);
        if state.covered_len == len {
            return Ok(());
        }
        if state.covered_len > len {
            warnings.push(LogWarning::LogShrank {
                covered: state.covered_len,
                len,
            });
            *state = state.restart();
        }
        let tail = state
            .fold_file_range(file, len, warnings)
            .map_err(io_err("reading", path))?;
        if tail == Tail::Unterminated {
            // Terminate the torn line so the next record starts on its own line; the torn
            // bytes stay (evidence), every reader skips them.
            file.write_all(b"\n").map_err(io_err("repairing", path))?;
            state.covered_len += 1;
        }
        Ok(())
    }

    /// Writes the summary and the state file if records were folded since the last write.
    /// Takes the lock and catches up first, so the summary includes other writers' records and
    /// never goes back in time.
    ///
    /// # Errors
    /// I/O errors.
    pub fn flush(&mut self) -> Result<(), RecorderError> {
        if !self.dirty {
            return Ok(());
        }
        let mut warnings = Vec::new();
        let (_lock, _file) = self.open_log(&mut warnings)?;
        self.persist()
    }

    /// Caller holds the lock and the state is caught up.
    fn persist(&mut self) -> Result<(), RecorderError> {
        self.dirty = false;
        self.last_refresh = Some(std::time::Instant::now());
        let Some(state) = &self.state else {
            return Ok(());
        };
        let mut summary = state.rollup.summary((self.clock)());
        summary.license = license_summary(&mut self.license, &self.config, summary.generated_at);
        if let Some(h) = self.health.get(&self.config.data_dir) {
            h.apply(&mut summary);
        }
        write_summary(&self.paths.summary, &summary)?;
        let bytes = serde_json::to_vec(state).map_err(|e| RecorderError::Serialize {
            what: "rollup state",
            message: e.to_string(),
        })?;
        durable::replace_file(&self.paths.state, &bytes)
            .map_err(io_err("writing", &self.paths.state))
    }

    /// The summary of everything this recorder has folded (None before the first record).
    /// The `license` block is filled only in the file the recorder writes (`persist`), where
    /// the license lookup is cached; this in-memory view leaves it out.
    pub fn summary(&self) -> Option<Summary> {
        self.state
            .as_ref()
            .map(|s| s.rollup.summary((self.clock)()))
    }

    /// The in-memory log state (None before the first record).
    pub fn state(&self) -> Option<&LogState> {
        self.state.as_ref()
    }

    /// Recomputes the rollup from the whole log (streaming, under the lock), then rewrites the
    /// summary and the state file. Torn and invalid lines are reported with line numbers.
    ///
    /// # Errors
    /// I/O errors.
    pub fn rebuild(&mut self) -> Result<Rebuilt, RecorderError> {
        let _lock =
            FileLock::acquire(&self.paths.lock).map_err(io_err("locking", &self.paths.lock))?;
        let r = crate::log::recompute(&self.paths.windows)
            .map_err(io_err("reading", &self.paths.windows))?;
        let mut state = r.state;
        // The recompute knows only the log; seqs handed out before a truncation stay used.
        let before = match &self.state {
            Some(s) => s.clone(),
            None => load_state(&self.paths.state, &mut Vec::new()),
        };
        state.seq_high_water = before.last_seq.max(before.seq_high_water);
        if r.tail == Tail::Unterminated {
            let mut f = OpenOptions::new()
                .append(true)
                .open(&self.paths.windows)
                .map_err(io_err("opening", &self.paths.windows))?;
            f.write_all(b"\n")
                .map_err(io_err("repairing", &self.paths.windows))?;
            state.covered_len += 1;
        }
        let out = Rebuilt {
            summary: state.rollup.summary((self.clock)()),
            events: state.events,
            lines: state.lines,
            last_seq: state.last_seq,
            warnings: r.warnings,
        };
        self.state = Some(state);
        self.persist()?;
        Ok(out)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Best effort: a failure here only delays the summary until the next record or
        // `agentos ccc rollup`; the log itself is already written.
        let _ = self.flush();
    }
}

/// An error and its causes on one line ("writing …: No space left on device").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// The license in force, looked up once per recorder (an Ed25519 verification is worth doing
/// once per process, not once per turn).
type CachedLicense = Option<Option<(agentos_core::license::VerifiedLicense, &'static str)>>;

/// The summary's `license` block: the license in force, with its days left as of `at`.
fn license_summary(
    cache: &mut CachedLicense,
    config: &Config,
    at: jiff::Timestamp,
) -> Option<agentos_core::rollup::LicenseSummary> {
    let cached = cache.get_or_insert_with(|| {
        config.license_in_force(at.as_second()).ok().map(|f| {
            let source = match f.source {
                agentos_config::PackSource::Configured => "configured",
                agentos_config::PackSource::LastKnownGood { .. } => "last_known_good",
            };
            (f.license, source)
        })
    });
    cached
        .as_ref()
        .map(|(lic, source)| agentos_core::rollup::LicenseSummary::new(lic, source, at.as_second()))
}

/// `model_health.json`, re-read only when its modification time changes (one `stat` per
/// summary write instead of a read and a parse).
#[derive(Debug, Default)]
struct CachedHealth {
    seen: Option<std::time::SystemTime>,
    cache: Option<agentos_core::rollup::ModelHealthCache>,
}

impl CachedHealth {
    fn get(&mut self, data_dir: &Path) -> Option<&agentos_core::rollup::ModelHealthCache> {
        let path = agentos_config::DataDir::new(data_dir).model_health_cache();
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if mtime != self.seen {
            self.seen = mtime;
            // A cache that cannot be read or parsed is left out of the summary, not an error:
            // the health block is advisory and the turn must not fail because of it.
            self.cache = mtime
                .and_then(|_| std::fs::read(&path).ok())
                .and_then(|b| serde_json::from_slice(&b).ok());
        }
        self.cache.as_ref()
    }
}

/// Writes `metrics_summary.json`: pretty, keys sorted (the struct's field order), replaced by
/// rename so readers never see a partial file.
///
/// # Errors
/// I/O errors.
pub fn write_summary(path: &Path, summary: &Summary) -> Result<(), RecorderError> {
    let mut bytes = serde_json::to_vec_pretty(summary).map_err(|e| RecorderError::Serialize {
        what: "summary",
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    durable::replace_file(path, &bytes).map_err(io_err("writing", path))
}

fn load_state(path: &Path, warnings: &mut Vec<LogWarning>) -> LogState {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return LogState::default(),
        Err(e) => {
            warnings.push(LogWarning::StateRebuilt {
                reason: format!("{}: {e}", path.display()),
            });
            return LogState::default();
        }
    };
    match serde_json::from_slice::<LogState>(&bytes) {
        Ok(s) if s.version == STATE_VERSION => s,
        Ok(s) => {
            warnings.push(LogWarning::StateRebuilt {
                reason: format!(
                    "{} has version {}, expected {STATE_VERSION}",
                    path.display(),
                    s.version
                ),
            });
            LogState::default()
        }
        Err(e) => {
            warnings.push(LogWarning::StateRebuilt {
                reason: format!("{}: {e}", path.display()),
            });
            LogState::default()
        }
    }
}

fn read_session_file(path: &Path) -> Result<Option<CurrentSession>, RecorderError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| RecorderError::SessionFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glm_detection_is_a_case_insensitive_prefix() {
        assert!(is_glm_model("glm-4.6"));
        assert!(is_glm_model("GLM-4.5-air"));
        assert!(is_glm_model("Glm"));
        assert!(!is_glm_model("claude-glm"));
        assert!(!is_glm_model("gl"));
        assert!(!is_glm_model("ÿlm-x"));
    }
}
