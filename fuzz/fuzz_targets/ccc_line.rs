//! Any bytes as one CCC usage-log line (several objects back to back allowed) must parse into
//! records or an error, never panic; objects before a broken one are kept.
#![no_main]

use agentos_ingest::source::ccc::parser::parse_objects;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut records = Vec::new();
    let _ = parse_objects(data, &mut records);
    for r in &records {
        let _ = r.kind();
        if let Some(s) = &r.status {
            assert!(!(s.is_decision() && s.is_ok()), "a decision line is not a success");
        }
    }
});
