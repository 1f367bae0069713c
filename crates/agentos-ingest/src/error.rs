//! The ingest error type.
//!
//! Only unusable input is an error: a root that does not exist, a snapshot of an unknown shape, a
//! store that cannot be written. A torn or malformed line is *not* an error; it is counted in the
//! [`crate::account::Account`] and listed in the skipped-lines file.

use std::path::PathBuf;

/// Everything that can stop an ingest, backfill or report run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A file or directory could not be read or written.
    #[error("i/o error on {path}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The root directory given by the user does not exist or is not a directory.
    #[error("root {path} does not exist or is not a directory")]
    MissingRoot {
        /// The root that was given.
        path: PathBuf,
    },
    /// A `/v1/usage` snapshot has a top-level shape this version does not know.
    #[error("unknown /v1/usage snapshot shape in {origin}: {detail}")]
    UnknownSnapshotShape {
        /// File path or URL the snapshot came from.
        origin: String,
        /// What was wrong (e.g. `top-level "models" is missing`).
        detail: String,
    },
    /// A JSON document (snapshot, results file, price table, store metadata) could not be parsed.
    #[error("invalid json in {origin} at line {line} column {column}")]
    Json {
        /// File path or URL.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser error.
        #[source]
        source: serde_json::Error,
    },
    /// Fetching a snapshot over HTTP failed.
    #[error("fetching {url} failed")]
    Http {
        /// The URL.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP server answered with a non-success status.
    #[error("fetching {url} returned http status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A price table override has an entry that cannot be used.
    #[error("invalid price table {origin}: {detail}")]
    Prices {
        /// File path.
        origin: String,
        /// What was wrong.
        detail: String,
    },
    /// A results file (`METRICS*.json`) lacks a usable `total`.
    #[error("results file {path}: {detail}")]
    BadResults {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// A time zone name is not known.
    #[error("unknown time zone {name:?}")]
    TimeZone {
        /// The name given.
        name: String,
    },
    /// A day of the week (`--start-of-week`, `[ingest] start_of_week`) is not known.
    #[error("unknown day of the week {name:?} (expected monday … sunday)")]
    Weekday {
        /// The name given.
        name: String,
    },
    /// A `--token-limit` is neither a positive number nor `max`.
    #[error("invalid token limit {value:?} (expected a positive number or max)")]
    TokenLimit {
        /// The value given.
        value: String,
    },
    /// The local store cannot be used: another process holds it, or its metadata is for another
    /// source kind or format version.
    #[error("store {path} is damaged: {detail}")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

impl IngestError {
    /// A stable snake_case code for logs, metrics and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Io { .. } => "io",
            IngestError::MissingRoot { .. } => "missing_root",
            IngestError::UnknownSnapshotShape { .. } => "unknown_snapshot_shape",
            IngestError::Json { .. } => "invalid_json",
            IngestError::Http { .. } => "http",
            IngestError::HttpStatus { .. } => "http_status",
            IngestError::Prices { .. } => "invalid_prices",
            IngestError::BadResults { .. } => "bad_results",
            IngestError::TimeZone { .. } => "unknown_time_zone",
            IngestError::Weekday { .. } => "unknown_weekday",
            IngestError::TokenLimit { .. } => "invalid_token_limit",
            IngestError::Store { .. } => "store_unusable",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(origin: impl Into<String>, source: serde_json::Error) -> Self {
        IngestError::Json {
            origin: origin.into(),
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}
