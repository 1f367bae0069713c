//! agentos-core (placeholder)
