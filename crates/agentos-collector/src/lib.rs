//! agentos-collector (placeholder)
