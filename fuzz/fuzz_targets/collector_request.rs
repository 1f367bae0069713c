//! Any bytes posted to `/v1/events` must parse into a batch or a 4xx, never a panic; and every
//! accepted event must be a valid v1 envelope.
#![no_main]

use agentos_collector::Limits;
use agentos_collector::ingest::parse_batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(batch) = parse_batch(data, Some("fuzz-device"), &limits) {
        assert!(batch.events.len() <= limits.batch_events);
    }
    let _ = agentos_core::schema::parse_envelope(data);
});
