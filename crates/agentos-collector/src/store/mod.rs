//! Persistence: one API over SQLite (the embedded default, WAL, `synchronous=FULL`) and
//! PostgreSQL (scale-out: several stateless collectors over one database).
//!
//! Both backends share one set of migrations (`migrations/`, written in the SQL subset both
//! accept). Queries are runtime-checked (`sqlx::query`, no compile-time macros), and timestamps
//! are BIGINT epoch microseconds.
//!
//! Each query is written once, with `$n` placeholders (SQLite accepts them too), and run on
//! whichever pool is in use through the private `per_backend!` macro: the body is compiled once
//! per backend because sqlx's row and argument types differ, but its source exists once. Only
//! where the backends genuinely differ is there an explicit arm per backend: connecting and
//! closing (SQLite has a writer and a reader pool), and in `sql.rs` opening the ingest
//! transaction and the bulk event insert.
//!
//! Durability: [`Store::ingest`] returns only after the transaction that stored the events and
//! the device's coverage has committed, so an acknowledged event survives a crash. On SQLite all
//! writes go through one connection (SQLite has one writer anyway; a single connection avoids
//! busy-retry storms), reads use a separate pool. On PostgreSQL the per-device coverage row is
//! locked (by the upsert that reads it) inside the transaction, so two collectors updating the
//! same device serialise on that row while different devices proceed in parallel.

/// Runs `$body` with `$x` bound to the payload of `$value`, a [`PerBackend`], whichever
/// backend it holds. Both arms must produce the same type, so map rows and query results to
/// backend-neutral values inside the body.
macro_rules! per_backend {
    ($value:expr, |$x:ident| $body:expr) => {
        match $value {
            PerBackend::Sqlite($x) => $body,
            PerBackend::Postgres($x) => $body,
        }
    };
}

/// Runs `$sql` with the `$arg`s bound in order on `$pool` (a [`Pool`]) and maps every row with
/// `$map`, a row reader generic over the backend's row type.
macro_rules! fetch_all {
    ($pool:expr, $sql:expr, $map:path $(, $arg:expr)* $(,)?) => {
        per_backend!($pool, |pool| {
            sqlx::query($sql)
                $(.bind($arg))*
                .fetch_all(pool)
                .await?
                .iter()
                .map($map)
                .collect::<Result<Vec<_>, StoreError>>()
        })
    };
}

mod otlp;
mod precedence;
mod rollup;
mod sql;
mod web;

pub use otlp::{SessionCrossCheck, UsageTotals};
pub use rollup::{BUCKET_US, BucketQuery, BucketRow, HOUR_US, bucket_of};
pub use web::{SessionTurn, WebSession};

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use agentos_core::seq_ranges::SeqRanges;

use crate::coverage::{Coverage, SeqRange};

/// Most disjoint covered ranges kept per device (see [`StoreError::TooFragmented`]).
pub const MAX_COVERAGE_RANGES: usize = 10_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not `sqlite:…` or `postgres://…`.
    #[error("unsupported database url `{0}` (expected sqlite:PATH or postgres://…)")]
    UnsupportedUrl(String),
    /// The driver reported an error.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A device's coverage would exceed [`MAX_COVERAGE_RANGES`] disjoint ranges (a client that
    /// skips every other seq); the batch is refused so one device cannot bloat its row forever.
    #[error("device {device} would have more than {max} separate covered seq ranges")]
    TooFragmented {
        /// The device.
        device: String,
        /// The limit.
        max: usize,
    },
    /// A stored row does not have the expected shape.
    #[error("corrupt row in table {table}: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl StoreError {
    /// Stable snake_case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::UnsupportedUrl(_) => "unsupported_database_url",
            StoreError::Database(_) => "database",
            StoreError::Migrate(_) => "migration",
            StoreError::TooFragmented { .. } => "coverage_too_fragmented",
            StoreError::Corrupt { .. } => "corrupt_row",
        }
    }

    /// True when retrying later may succeed: lock timeouts, deadlocks, pool exhaustion, a lost
    /// connection, and the database out of room ([`StoreError::is_out_of_resources`]).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    let code = db.code();
                    let code = code.as_deref().unwrap_or("");
                    // PostgreSQL: 40001 serialization failure, 40P01 deadlock, 55P03 lock not
                    // available, 08xxx connection exceptions, 57P01-57P03 the server shutting
                    // down or starting up.
                    // SQLite (primary code in the low byte): 5 BUSY, 6 LOCKED.
                    matches!(
                        code,
                        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03"
                    ) || code.starts_with("08")
                        || matches!(sqlite_primary(db.as_ref()), Some(5 | 6))
                        || self.is_out_of_resources()
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// True when the database is out of room: disk full or an I/O error on SQLite, class 53
    /// (insufficient resources: disk full, out of memory, too many connections) on PostgreSQL.
    /// Transient: it recovers once space returns, without a restart.
    pub fn is_out_of_resources(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        // SQLite: 10 IOERR (a failed write, e.g. ENOSPC on the WAL), 13 FULL.
        match sqlite_primary(db.as_ref()) {
            Some(primary) => matches!(primary, 10 | 13),
            None => db.code().is_some_and(|c| c.starts_with("53")),
        }
    }
}

/// The primary result code of a SQLite error (its extended code's low byte: `778`
/// IOERR_WRITE → 10); `None` for a PostgreSQL error, whose SQLSTATE may look numeric too.
fn sqlite_primary(db: &dyn sqlx::error::DatabaseError) -> Option<u32> {
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let n: u32 = db.code()?.parse().ok()?;
    Some(n & 0xff)
}

impl StoreError {
    /// Seconds a client should wait before retrying a transient failure: longer when the
    /// database is out of room (freeing space takes a human or a cleanup job).
    pub fn retry_after_secs(&self) -> u32 {
        if self.is_out_of_resources() { 5 } else { 1 }
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Lowercase name for logs and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL pool size (SQLite always has one writer plus this many readers, capped at 4).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before failing as transient.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// One event ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Canonical (lowercase hyphenated) UUID.
    pub event_id: String,
    /// Device sequence number.
    pub seq: i64,
    /// `session`, `turn` or `session_end`.
    pub kind: &'static str,
    /// `recorded_at` in epoch microseconds.
    pub recorded_at_us: i64,
    /// Turn model.
    pub model: Option<String>,
    /// Turn input tokens.
    pub tokens_in: Option<i64>,
    /// Turn output tokens.
    pub tokens_out: Option<i64>,
    /// Turn input tokens written to the prompt cache (v1.1).
    pub cache_creation_tokens: Option<i64>,
    /// Turn input tokens read from the prompt cache (v1.1).
    pub cache_read_tokens: Option<i64>,
    /// Turn latency.
    pub latency_ms: Option<f64>,
    /// The envelope JSON exactly as received.
    pub body: String,
    /// `source:turn_id` for a turn whose id is derived from its origin (v1.1 `turn.source`):
    /// a second event with the same key is a duplicate, whatever its `event_id`.
    pub turn_key: Option<String>,
    /// Session of a turn (`turn.session_id`) or of a session event (`session.session_id`).
    pub session_id: Option<String>,
    /// Turn source (v1.1 `turn.source`), `None` when the turn does not say.
    pub source: Option<String>,
    /// The cost a turn carried (`cost.estimated_usd`), if any.
    pub cost_usd: Option<f64>,
    /// Repository of a session event (`session.repo_id`).
    pub repo_id: Option<String>,
    /// `measurement.feature_delta` of a turn (0 without a measurement).
    pub features: f64,
    /// `turn.capacity_used` (0 when absent).
    pub capacity: f64,
}

/// What a batch says about a device's seqs besides its events (protocol v1, `docs/protocol.md`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageUpdate {
    /// Seqs the batch accounts for (`covers`, every event's seq, `held`, `forgotten`).
    pub covered: Vec<SeqRange>,
    /// Seqs the client holds back for a later run.
    pub held: Vec<SeqRange>,
    /// Seqs the client forgot on purpose.
    pub forgotten: Vec<SeqRange>,
    /// Seqs of the events that arrived (stored, duplicate or rejected): no longer held.
    pub arrived: Vec<u64>,
}

/// What [`Store::ingest`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    /// Events newly stored (the rest were already there).
    pub inserted: u64,
    /// The device's coverage after this batch.
    pub coverage: Coverage,
    /// The device's held-back seqs after this batch.
    pub held: SeqRanges,
    /// The device's forgotten seqs after this batch.
    pub forgotten: SeqRanges,
    /// Seqs of events stored by this batch that the device had already accounted for (covered
    /// and not held back): the same seq under a new event id, i.e. a device that reused seqs
    /// (a truncated or restored log). Stored, not dropped, and reported.
    pub seq_conflicts: Vec<u64>,
    /// OTLP turns not stored because their session has claude_code turns (session precedence,
    /// `docs/opentelemetry.md`).
    pub superseded: u64,
    /// OTLP turns retracted because this batch brought their session's first claude_code turns.
    pub retracted: u64,
}

/// A stored API key record (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Public key id (the part of the key before the secret).
    pub key_id: String,
    /// Tenant the key belongs to.
    pub tenant: String,
    /// Lowercase hex SHA-256 of the whole key.
    pub key_hash: String,
    /// Creation time, epoch microseconds.
    pub created_at_us: i64,
    /// Revocation time, if revoked.
    pub revoked_at_us: Option<i64>,
    /// What the key may do.
    pub role: crate::auth::Role,
}

/// One stored event, as [`Store::device_events`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEventRecord {
    /// Its seq.
    pub seq: u64,
    /// `session`, `turn` or `session_end`.
    pub kind: String,
    /// The envelope JSON exactly as received.
    pub body: String,
}

/// Ingest state of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// Device id.
    pub device_id: String,
    /// Covered seqs.
    pub coverage: Coverage,
    /// Seqs the device holds back (covered, expected later).
    pub held: SeqRanges,
    /// Seqs the device forgot on purpose (covered, never coming).
    pub forgotten: SeqRanges,
    /// Events stored for this device.
    pub events: u64,
    /// Last update, epoch microseconds.
    pub updated_at_us: i64,
}

/// The latest summary of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRecord {
    /// Device id.
    pub device_id: String,
    /// The allowlisted summary JSON.
    pub body: String,
    /// When it arrived, epoch microseconds.
    pub received_at_us: i64,
}

/// The database behind the collector. Cheap to clone (pools are reference counted).
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite: a single-connection writer pool and a reader pool over the same WAL file.
    Sqlite {
        /// All writes.
        writer: SqlitePool,
        /// All reads.
        reader: SqlitePool,
    },
    /// PostgreSQL.
    Postgres {
        /// The pool.
        pool: PgPool,
    },
}

/// One value of the backend in use: a pool, a transaction. Lets [`per_backend!`] run a query
/// written once against either.
#[derive(Debug)]
enum PerBackend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// A pool of either backend.
type Pool<'a> = PerBackend<&'a SqlitePool, &'a PgPool>;

impl Store {
    /// The pool for reads (SQLite's read-only pool; PostgreSQL's only pool).
    fn reader(&self) -> Pool<'_> {
        match self {
            Store::Sqlite { reader, .. } => PerBackend::Sqlite(reader),
            Store::Postgres { pool } => PerBackend::Postgres(pool),
        }
    }

    /// The pool for writes (SQLite's single-connection writer; PostgreSQL's only pool).
    fn writer(&self) -> Pool<'_> {
        match self {
            Store::Sqlite { writer, .. } => PerBackend::Sqlite(writer),
            Store::Postgres { pool } => PerBackend::Postgres(pool),
        }
    }

    /// Connects to `url` (`sqlite:PATH`, `sqlite://PATH`, `postgres://…`, `postgresql://…`) and
    /// applies pending migrations. A missing SQLite file is created.
    ///
    /// # Errors
    /// [`StoreError`] when the URL is unsupported, the database is unreachable or a migration
    /// fails.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let base = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before we acknowledge it (NORMAL may lose the last
                // commits on power loss in WAL mode).
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(base.clone())
                .await?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let reader = if in_memory {
                // Separate connections to an in-memory database see separate databases.
                writer.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(opts.max_connections.clamp(1, 4))
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(base.read_only(true))
                    .await?
            };
            MIGRATOR.run(&writer).await?;
            Store::Sqlite { writer, reader }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options)
                .await?;
            // The migrator takes an advisory lock, so several collectors may start at once.
            MIGRATOR.run(&pool).await?;
            Store::Postgres { pool }
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let folded = rollup::backfill(&store).await?;
        if folded > 0 {
            tracing::info!(
                events = folded,
                "folded events stored before the report rollup into it"
            );
        }
        Ok(store)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite { .. } => Backend::Sqlite,
            Store::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Closes the pools (waits for checked-out connections to come back).
    pub async fn close(&self) {
        match self {
            Store::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Store::Postgres { pool } => pool.close().await,
        }
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// The driver error when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        per_backend!(self.reader(), |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Commits one small write (this instance's row of `readiness_probe`) through the same
    /// writer as ingest, so it fails when writes fail.
    ///
    /// # Errors
    /// The driver error when the write does not commit.
    pub async fn probe_write(&self, instance: &str, now_us: i64) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO readiness_probe (instance, at_us) VALUES ($1, $2) \
            ON CONFLICT (instance) DO UPDATE SET at_us = excluded.at_us";
        per_backend!(self.writer(), |pool| {
            sqlx::query(SQL)
                .bind(instance)
                .bind(now_us)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores a new API key record.
    ///
    /// # Errors
    /// Driver errors (including a duplicate key id).
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO api_keys (key_id, tenant, key_hash, created_at_us, revoked_at_us, role) \
            VALUES ($1, $2, $3, $4, $5, $6)";
        per_backend!(self.writer(), |pool| {
            sqlx::query(SQL)
                .bind(&key.key_id)
                .bind(&key.tenant)
                .bind(&key.key_hash)
                .bind(key.created_at_us)
                .bind(key.revoked_at_us)
                .bind(key.role.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Looks up a key record by its public id.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        const SQL: &str = "SELECT key_id, tenant, key_hash, created_at_us, revoked_at_us, role \
            FROM api_keys WHERE key_id = $1";
        per_backend!(self.reader(), |pool| {
            sqlx::query(SQL)
                .bind(key_id)
                .fetch_optional(pool)
                .await?
                .map(|r| key_from_row(&r))
                .transpose()
        })
    }

    /// All key records, optionally of one tenant, ordered by creation.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn keys(&self, tenant: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        const SQL: &str = "SELECT key_id, tenant, key_hash, created_at_us, revoked_at_us, role \
            FROM api_keys ORDER BY created_at_us, key_id";
        let rows = fetch_all!(self.reader(), SQL, key_from_row)?;
        Ok(rows
            .into_iter()
            .filter(|k| tenant.is_none_or(|t| k.tenant == t))
            .collect())
    }

    /// Marks a key revoked. Returns false when no such (unrevoked) key exists.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn revoke_key(&self, key_id: &str, now_us: i64) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE api_keys SET revoked_at_us = $1 WHERE key_id = $2 AND revoked_at_us IS NULL";
        let n = per_backend!(self.writer(), |pool| {
            sqlx::query(SQL)
                .bind(now_us)
                .bind(key_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Stores `events` (skipping event ids the tenant already has) and adds `covered` to the
    /// device's coverage, in one transaction. Returns after the commit.
    ///
    /// # Errors
    /// Driver errors; nothing is stored then.
    pub async fn ingest(
        &self,
        tenant: &str,
        device_id: &str,
        events: &[NewEvent],
        covered: &[SeqRange],
        now_us: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let update = CoverageUpdate {
            covered: covered.to_vec(),
            ..CoverageUpdate::default()
        };
        sql::ingest(self.writer(), tenant, device_id, events, &update, now_us).await
    }

    /// As [`Store::ingest`], with the held-back and forgotten seqs the batch reports: held seqs
    /// are kept until they arrive or are forgotten, forgotten ones for good.
    ///
    /// # Errors
    /// Driver errors; nothing is stored then.
    pub async fn ingest_with(
        &self,
        tenant: &str,
        device_id: &str,
        events: &[NewEvent],
        update: &CoverageUpdate,
        now_us: i64,
    ) -> Result<IngestOutcome, StoreError> {
        sql::ingest(self.writer(), tenant, device_id, events, update, now_us).await
    }

    /// Replaces the latest summary of a device.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn upsert_summary(
        &self,
        tenant: &str,
        device_id: &str,
        generated_at_us: Option<i64>,
        body: &str,
        now_us: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO summaries (tenant, device_id, generated_at_us, received_at_us, body) \
            VALUES ($1, $2, $3, $4, $5) \
            ON CONFLICT (tenant, device_id) DO UPDATE SET generated_at_us = excluded.generated_at_us, \
            received_at_us = excluded.received_at_us, body = excluded.body";
        per_backend!(self.writer(), |pool| {
            sqlx::query(SQL)
                .bind(tenant)
                .bind(device_id)
                .bind(generated_at_us)
                .bind(now_us)
                .bind(body)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Latest summary of every device of a tenant, sorted by device id.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn summaries(&self, tenant: &str) -> Result<Vec<SummaryRecord>, StoreError> {
        const SQL: &str = "SELECT device_id, body, received_at_us FROM summaries \
            WHERE tenant = $1 ORDER BY device_id";
        fetch_all!(self.reader(), SQL, summary_from_row, tenant)
    }

    /// Ingest state of every device of a tenant, sorted by device id.
    ///
    /// # Errors
    /// Driver errors, or [`StoreError::Corrupt`] for an unreadable coverage column.
    pub async fn devices(&self, tenant: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        const SQL: &str = "SELECT device_id, covered, held, forgotten, events, updated_at_us FROM devices \
            WHERE tenant = $1 ORDER BY device_id";
        fetch_all!(self.reader(), SQL, device_from_row, tenant)
    }

    /// The stored events of one device of a tenant, in seq order, as received (the redacted
    /// envelopes: free text never arrives). For drill-downs and end-to-end checks of what left a
    /// device; `limit` bounds the rows read.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn device_events(
        &self,
        tenant: &str,
        device_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredEventRecord>, StoreError> {
        const SQL: &str = "SELECT seq, kind, body FROM events WHERE tenant = $1 AND device_id = $2 \
            ORDER BY seq LIMIT $3";
        fetch_all!(
            self.reader(),
            SQL,
            stored_event_from_row,
            tenant,
            device_id,
            limit
        )
    }

    /// One page of a tenant's turn events recorded in `[since_us, until_us)`, in (recorded time,
    /// event id) order after `after` (keyset paging over the `events_turns_by_time` index, so a
    /// caller folds any number of turns in bounded memory): `(recorded_at_us, event_id, body)`.
    ///
    /// # Errors
    /// Driver errors.
    pub async fn turn_bodies(
        &self,
        tenant: &str,
        since_us: i64,
        until_us: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        const SQL: &str = "SELECT recorded_at_us, event_id, body FROM events \
            WHERE tenant = $1 AND kind = 'turn' AND recorded_at_us >= $2 AND recorded_at_us < $3 \
            AND (recorded_at_us > $4 OR (recorded_at_us = $4 AND event_id > $5)) \
            ORDER BY recorded_at_us, event_id LIMIT $6";
        let (after_us, after_id) = after.unwrap_or((i64::MIN, ""));
        fetch_all!(
            self.reader(),
            SQL,
            turn_body_from_row,
            tenant,
            since_us,
            until_us,
            after_us,
            after_id,
            limit
        )
    }

    /// Number of stored events of a tenant (all devices).
    ///
    /// # Errors
    /// Driver errors.
    pub async fn event_count(&self, tenant: &str) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM events WHERE tenant = $1";
        let n: i64 = per_backend!(self.reader(), |pool| {
            sqlx::query_scalar(SQL).bind(tenant).fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Hides a password in a database URL before it appears in an error or log: the one in the
/// user info (`user:secret@`) and any query parameter whose name contains `password`
/// (`?password=`, `?sslpassword=`).
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &base[..scheme_end + 3], &base[at..])
                }
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    if let Some(q) = query {
        out.push('?');
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

fn key_from_row<R: Row>(r: &R) -> Result<KeyRecord, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(KeyRecord {
        key_id: r.try_get("key_id")?,
        tenant: r.try_get("tenant")?,
        key_hash: r.try_get("key_hash")?,
        created_at_us: r.try_get("created_at_us")?,
        revoked_at_us: r.try_get("revoked_at_us")?,
        role: {
            let name: String = r.try_get("role")?;
            crate::auth::Role::parse(&name).map_err(|e| StoreError::Corrupt {
                table: "api_keys",
                detail: e.to_string(),
            })?
        },
    })
}

fn turn_body_from_row<R: Row>(r: &R) -> Result<(i64, String, String), StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        r.try_get("recorded_at_us")?,
        r.try_get("event_id")?,
        r.try_get("body")?,
    ))
}

fn stored_event_from_row<R: Row>(r: &R) -> Result<StoredEventRecord, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let seq: i64 = r.try_get("seq")?;
    Ok(StoredEventRecord {
        seq: u64::try_from(seq).unwrap_or(0),
        kind: r.try_get("kind")?,
        body: r.try_get("body")?,
    })
}

fn summary_from_row<R: Row>(r: &R) -> Result<SummaryRecord, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SummaryRecord {
        device_id: r.try_get("device_id")?,
        body: r.try_get("body")?,
        received_at_us: r.try_get("received_at_us")?,
    })
}

fn device_from_row<R: Row>(r: &R) -> Result<DeviceRecord, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let covered: String = r.try_get("covered")?;
    let held: String = r.try_get("held")?;
    let forgotten: String = r.try_get("forgotten")?;
    let events: i64 = r.try_get("events")?;
    Ok(DeviceRecord {
        device_id: r.try_get("device_id")?,
        coverage: parse_coverage(&covered)?,
        held: parse_seq_ranges(&held, "held")?,
        forgotten: parse_seq_ranges(&forgotten, "forgotten")?,
        events: u64::try_from(events).unwrap_or(0),
        updated_at_us: r.try_get("updated_at_us")?,
    })
}

fn parse_coverage(text: &str) -> Result<Coverage, StoreError> {
    let ranges: Vec<SeqRange> = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table: "devices",
        detail: format!("covered column is not a JSON range list: {e}"),
    })?;
    Ok(Coverage::from_ranges(ranges))
}

pub(crate) fn parse_seq_ranges(text: &str, column: &str) -> Result<SeqRanges, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table: "devices",
        detail: format!("{column} column is not a JSON range list: {e}"),
    })
}

fn coverage_json(c: &Coverage) -> String {
    // Serializing a Vec of integer pairs cannot fail.
    serde_json::to_string(c.ranges()).unwrap_or_else(|_| "[]".into())
}
