//! Input sources.

pub mod ccc;
pub mod claude;
pub mod results;
pub mod usage_snapshot;
