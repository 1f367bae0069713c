//! Local store.
