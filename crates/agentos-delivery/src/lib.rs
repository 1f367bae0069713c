//! Durable delivery of recorded events to a control center (CCC).
//!
//! The recorder's log `windows.jsonl` is the source of truth and the queue: the uploader reads
//! it from a durable cursor, applies the privacy tier *at send time* (an event leaves only if
//! both the tier it was recorded under and the cap in force allow it; an event the cap holds
//! back stays pending in `delivery/held.json` until a run whose cap allows it, or until it is
//! forgotten on purpose with [`Delivery::forget`]), sends bounded
//! batches to `POST /v1/events` (wire protocol v1, `docs/protocol.md`), retries transient
//! failures forever with exponential backoff and jitter (honouring `Retry-After`), moves
//! permanently rejected events to `delivery/rejected.jsonl`, and advances the cursor — atomically
//! and fsynced — only after the server acknowledged. A crash anywhere therefore costs at most a
//! resend, which the server dedupes by `event_id`.
//!
//! Entry points:
//! - [`Delivery`]: the engine; [`Delivery::sync`] / [`sync_once`] drain once (the
//!   `agentos ccc sync` command).
//! - [`Uploader`]: a background tokio task with [`Uploader::flush`] and [`Uploader::shutdown`].
//! - [`upload_summary`] / [`upload_summary_blocking`]: `POST /v1/metrics` at session close.
//! - [`plan`]: what the next sync would send (`agentos ccc preview`), by the same code path.
//! - [`outbox::status`]: the backlog report of `agentos ccc outbox status`.
//!
//! Configuration, the data-dir layout (every file name), durable file helpers, the device id and
//! the license-pack reader come from `agentos-config`; delivery does not depend on the recorder,
//! it only reads the files the recorder writes.

#![deny(missing_docs)]

pub mod engine;
pub mod error;
pub mod outbox;
pub mod settings;
mod transport;
pub mod uploader;
pub mod wire;

pub use engine::plan::{Plan, forget_preview, plan};
pub use engine::{
    Delivery, DrainReport, SummaryOutcome, read_summary, sync_once, upload_summary,
    upload_summary_blocking,
};
pub use error::DeliveryError;
pub use outbox::{OutboxStatus, Paths, status};
pub use settings::{Settings, TierHandle};
pub use uploader::Uploader;
