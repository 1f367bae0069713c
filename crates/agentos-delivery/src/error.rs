//! The one error enum of the delivery subsystem.

use std::path::PathBuf;

/// Everything that can stop delivery (transient network trouble is not an error: it is retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// Another uploader holds the data dir's delivery lock.
    #[error(
        "delivery lock {path} is held; is another `agentos ccc sync` or a background uploader running on this data dir?"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A local file could not be read or written.
    #[error("{what} {path}")]
    Io {
        /// What was being done (e.g. "writing cursor").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something may leave under the current tier but no collector URL is configured.
    #[error(
        "no collector url: pass --url, set AGENTOS_CCC_URL or set `url` in the [ccc] section of agentos.toml"
    )]
    NoUrl,
    /// The configured URL is not an http(s) URL.
    #[error("collector url {url:?} is not an http:// or https:// url")]
    BadUrl {
        /// The URL as configured.
        url: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("building the http client")]
    Client(#[source] reqwest::Error),
    /// The collector refused the request for a reason a retry cannot fix (401, 403, 404, …).
    #[error("the collector refused {path} with {status} {code}: {message}")]
    Refused {
        /// The endpoint.
        path: &'static str,
        /// HTTP status.
        status: u16,
        /// The `code` of the error body.
        code: String,
        /// The `message` of the error body.
        message: String,
    },
    /// The collector rejected the summary itself (400/413/422): a permanent problem.
    #[error("the collector rejected the summary with {status} {code}: {message}")]
    SummaryRejected {
        /// HTTP status.
        status: u16,
        /// The `code` of the error body.
        code: String,
        /// The `message` of the error body.
        message: String,
    },
    /// `metrics_summary.json` exists but is not a summary.
    #[error("summary file {path} is not a valid summary: {message}")]
    BadSummary {
        /// The file.
        path: PathBuf,
        /// The parse error, with line and column.
        message: String,
    },
    /// The configured license pack could not be read.
    #[error("license pack")]
    License(#[from] agentos_config::PackError),
    /// Configuration could not be resolved.
    #[error("configuration")]
    Config(#[from] agentos_config::ConfigError),
    /// `outbox forget --below local`: no event is ever held back for a tier that low.
    #[error(
        "nothing is held back below tier local; use --below minimized or --below full (the tier an event needs to leave)"
    )]
    NothingToForgetBelow,
    /// The background worker is gone (it panicked or was shut down).
    #[error("the background uploader is not running")]
    WorkerGone,
}

impl DeliveryError {
    /// Stable snake_case code for logs, metrics and reports.
    pub fn code(&self) -> &'static str {
        match self {
            DeliveryError::Locked { .. } => "delivery_locked",
            DeliveryError::Io { .. } => "delivery_io",
            DeliveryError::NoUrl => "no_url",
            DeliveryError::BadUrl { .. } => "bad_url",
            DeliveryError::Client(_) => "http_client",
            DeliveryError::Refused { .. } => "refused",
            DeliveryError::SummaryRejected { .. } => "summary_rejected",
            DeliveryError::BadSummary { .. } => "bad_summary",
            DeliveryError::License(e) => e.code(),
            DeliveryError::Config(_) => "config",
            DeliveryError::NothingToForgetBelow => "nothing_to_forget",
            DeliveryError::WorkerGone => "worker_gone",
        }
    }

    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        DeliveryError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
