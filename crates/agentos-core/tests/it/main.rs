//! Integration tests of agentos-core, one module per area.
#![expect(
    clippy::unwrap_used,
    reason = "a test failing on unwrap is the assertion"
)]

mod attribution;
mod examples;
mod license;
mod privacy;
mod rollup;
mod schema;
