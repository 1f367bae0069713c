//! Any bytes posted to the OTLP receiver (`/v1/logs` or `/v1/metrics`, protobuf or JSON, gzip
//! or not) must decode and map into turns and metric points, or be refused with a 4xx reason,
//! never panic; every turn it makes must be a valid v1 envelope of source `otlp`, and the
//! decompressed size must respect the cap.
#![no_main]

use agentos_collector::otlp::{self, Encoding, OtlpLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    // Small caps so that the fuzzer reaches the limits.
    let limits = OtlpLimits {
        max_body_bytes: 64 * 1024,
        max_records: 64,
        max_attributes: 32,
        ..OtlpLimits::default()
    };
    let encoding = if mode & 1 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    let content_encoding = (mode & 2 != 0).then_some("gzip");
    let Ok(bytes) = otlp::decompress(body, content_encoding, limits.max_body_bytes) else {
        return;
    };
    assert!(bytes.len() <= limits.max_body_bytes);
    if mode & 4 == 0 {
        if let Ok(req) = otlp::decode_logs(&bytes, encoding) {
            let mapped = otlp::map_logs(&req, &limits);
            assert!(mapped.turn_count() <= limits.max_records);
            for events in mapped.turns.values() {
                for ev in events {
                    assert_eq!(ev.source.as_deref(), Some("otlp"));
                    assert!(agentos_core::schema::parse_envelope(ev.body.as_bytes()).is_ok());
                }
            }
        }
    } else if let Ok(req) = otlp::decode_metrics(&bytes, encoding) {
        let mapped = otlp::map_metrics(&req, &limits);
        assert!(mapped.points.len() <= limits.max_records);
        assert!(mapped.points.iter().all(|p| p.value.is_finite() && p.value >= 0.0));
    }
});
