//! agentos-recorder (placeholder)
