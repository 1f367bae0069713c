//! Integration tests of agentos-ingest (one test binary, a module per area).

mod ccc;
mod claude;
mod codex;
mod parsers;
mod store;
mod support;
