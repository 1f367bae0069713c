//! Test-only helpers shared by the integration suites: a throwaway PostgreSQL cluster
//! ([`pg`]) and a loopback HTTP server that records what it receives ([`http`]).
//!
//! Used only as a dev-dependency.

pub mod http;
pub mod pg;
