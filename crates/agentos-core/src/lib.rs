//! Pure domain logic of agentos: the v1 event model and its JSON Schemas, privacy tiers and
//! redaction, license packs, and rollups.
//!
//! Modules, lowest first (each uses only modules listed before it):
//!
//! - [`license`]: signed license packs and the entitlements they grant.
//! - [`model`]: one canonical id per model (the versioned alias table).
//! - [`tier`]: privacy [`Tier`]s and the [`tier::Egress`] endpoints they open.
//! - [`event`]: the v1 envelope and its payloads.
//! - [`origin`]: turn ids derived from where a turn came from (same request, same id).
//! - [`source`]: the names reports give the places usage comes from (claude, codex, …).
//! - [`rollup`]: summaries folded from events.
//! - [`schema`]: the JSON Schemas the envelope is validated against.
//! - [`privacy`]: what may leave the machine and the redaction applied on the way out.
//!
//! This crate does no I/O (no files, no network, no async runtime), so every rule about what
//! is recorded, what may leave the machine and who is licensed to send it can be tested in
//! isolation and reused by the recorder, the uploader, the collector and ingest alike.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attribution;
pub mod event;
pub mod license;
pub mod model;
pub mod origin;
pub mod privacy;
pub mod rollup;
pub mod schema;
pub mod seq_ranges;
pub mod source;
pub mod tier;

pub use event::{Envelope, EventBody, EventId, SessionId, TurnId, TurnSource};
pub use tier::Tier;
