//! agentos-delivery (placeholder)
