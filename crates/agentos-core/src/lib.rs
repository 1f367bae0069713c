//! Pure domain logic of agentos: the v1 event model and its JSON Schemas, privacy tiers and
//! redaction, license packs, and rollups.
//!
//! This crate does no I/O (no files, no network, no async runtime), so every rule about what
//! is recorded, what may leave the machine and who is licensed to send it can be tested in
//! isolation and reused by the recorder, the uploader, the collector and ingest alike.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod event;
pub mod license;
pub mod privacy;
pub mod rollup;
pub mod schema;
pub mod seq_ranges;

pub use event::{Envelope, EventBody, EventId, SessionId, TurnId};
pub use privacy::Tier;
