//! Test-only helpers shared by the integration suites: seed test data ([`fixtures`]), a
//! throwaway PostgreSQL cluster ([`pg`]), a loopback HTTP server that records what it receives
//! ([`http`]) and a headless Chromium driven over the DevTools protocol ([`browser`]).
//!
//! Used only as a dev-dependency.

pub mod browser;
pub mod fixtures;
pub mod http;
pub mod pg;
