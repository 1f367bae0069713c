//! Integration tests of agentos-ingest (one test binary, a module per area).

mod ccc;
mod support;
