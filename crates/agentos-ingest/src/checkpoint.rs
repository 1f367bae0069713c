//! Per-file checkpoints.
