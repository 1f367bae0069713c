//! Integration suite of the collector. Every test in a `both_backends!` module runs twice: over
//! a real SQLite file and over a fresh database in a throwaway PostgreSQL cluster.

mod common;

mod auth;
mod browser;
mod dashboard;
mod e2e;
mod events;
mod flood;
mod hostile;
mod license;
mod lifecycle;
mod metrics_summary;
mod otlp;
mod otlp_exporter;
mod prom;
mod props;
mod report;
mod scaleout;
mod storage;
mod usage;
