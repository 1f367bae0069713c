//! agentos-ingest (placeholder)
