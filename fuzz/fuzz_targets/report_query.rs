//! Any bytes as the query string of `GET /v1/report` must either fail to decode or give a plan
//! or a 4xx (a parameter named in the error), never panic: the query is the report API's whole
//! input before any database work.
#![no_main]

use agentos_collector::report::{ReportQuery, plan};
use agentos_ingest::PriceTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = serde_urlencoded::from_bytes::<ReportQuery>(data) else {
        return;
    };
    // A fixed "now" keeps runs reproducible; the embedded table is what the server prices with.
    if let Err(e) = plan(&q, &PriceTable::embedded(), 1_790_000_000_000_000) {
        assert!(e.status().is_client_error(), "a bad query is the client's error: {e}");
    }
});
