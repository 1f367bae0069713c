//! Integration tests of agentos-ingest (one test binary, a module per area).

mod ccc;
mod claude;
mod parsers;
mod codex;
mod store;
mod support;
