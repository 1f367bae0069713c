//! A throwaway PostgreSQL cluster started by the tests themselves (owned by the collector work).
