//! Integration tests of agentos-core, one module per area.

mod examples;
mod license;
mod privacy;
mod rollup;
mod schema;
