//! The line parsers under arbitrary input, as part of every test run (the same properties as
//! the cargo-fuzz targets `claude_line` and `ccc_line` in `fuzz/`, which `bench/fuzz.sh` runs
//! for longer with coverage guidance).

use agentos_ingest::source::ccc::parser::parse_objects;
use agentos_ingest::source::claude::{Parsed, parse_line};
use agentos_ingest::time::TimeRange;
use memchr::memmem;
use proptest::prelude::*;

/// Bytes that are often almost a log line: fragments of real lines glued and cut at random.
fn near_line() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"claude-sonnet-4-5\","[..],
        b"\"usage\":{\"input_tokens\":12,\"output_tokens\":3}",
        b"\"usage\":{\"input_tokens\":18446744073709551615,\"output_tokens\":-1}",
        b"},\"requestId\":\"r1\",\"timestamp\":\"2026-10-01T12:00:00.000Z\"}",
        b"\"timestamp\":\"9999-99-99T99:99:99Z\"",
        b"{\"ts\":1790000000.5,\"rid\":\"cafe0001\",\"status\":-1,\"event\":\"decision\"}",
        b"{\"ts\":\"2025-10-19T16:05:00Z\",\"rid\":\"R1\",\"status\":\"ok\",\"input_tokens\":1}",
        b"{\"ts\":1e400,\"status\":1e30}",
        b"{}",
        b"\\u0000\xff\xfe",
        b"{\"usage\":",
        b"}",
        b"\"",
    ]);
    (
        prop::collection::vec(pieces, 0..8),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(parts, noise)| {
            let mut v: Vec<u8> = parts.concat();
            let at = noise.first().map_or(0, |b| *b as usize % (v.len() + 1));
            v.splice(at..at, noise.iter().copied());
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn a_claude_line_never_panics_and_respects_its_range(
        line in prop_oneof![near_line(), prop::collection::vec(any::<u8>(), 0..256)]
    ) {
        let finder = memmem::Finder::new(b"\"usage\"");
        let _ = parse_line(&line, &TimeRange::default(), &finder);
        let range = TimeRange { since: Some(1_700_000_000_000), until: Some(1_800_000_000_000) };
        if let Parsed::Entry(e) = parse_line(&line, &range, &finder) {
            prop_assert!(range.contains(e.ts_ms));
        }
    }

    #[test]
    fn a_ccc_line_never_panics_and_keeps_what_parsed_before_a_break(
        line in prop_oneof![near_line(), prop::collection::vec(any::<u8>(), 0..256)]
    ) {
        let mut records = Vec::new();
        let whole = parse_objects(&line, &mut records);
        for r in &records {
            let _ = r.kind();
            if let Some(s) = &r.status {
                prop_assert!(!(s.is_decision() && s.is_ok()));
            }
        }
        if whole.is_ok() {
            // Re-parsing the same bytes gives the same number of objects.
            let mut again = Vec::new();
            prop_assert!(parse_objects(&line, &mut again).is_ok());
            prop_assert_eq!(again.len(), records.len());
        }
    }
}
