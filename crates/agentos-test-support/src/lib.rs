//! Test-only helpers shared by the integration suites: seed test data ([`fixtures`]), a
//! throwaway PostgreSQL cluster ([`pg`]) and a loopback HTTP server that records what it receives ([`http`]).
//!
//! Used only as a dev-dependency.

pub mod fixtures;
pub mod http;
pub mod pg;
