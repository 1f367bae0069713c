//! A loopback HTTP server that records requests (owned by the delivery work).
