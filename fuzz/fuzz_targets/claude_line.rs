//! Any bytes as one Claude Code transcript line must classify (entry, no usage, out of range,
//! skipped), never panic; an entry read with a time range must lie inside it.
#![no_main]

use agentos_ingest::source::claude::{Parsed, parse_line};
use agentos_ingest::time::TimeRange;
use libfuzzer_sys::fuzz_target;
use memchr::memmem;

fuzz_target!(|data: &[u8]| {
    let finder = memmem::Finder::new(b"\"usage\"");
    let _ = parse_line(data, &TimeRange::default(), &finder);
    let range = TimeRange {
        since: Some(1_700_000_000_000),
        until: Some(1_800_000_000_000),
    };
    if let Parsed::Entry(e) = parse_line(data, &range, &finder) {
        assert!(range.contains(e.ts_ms), "entry outside the range it was read with");
    }
});
