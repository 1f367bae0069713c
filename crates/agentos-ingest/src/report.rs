//! Calendar reports.
