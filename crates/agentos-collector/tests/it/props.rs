//! Property tests over the handlers (in-process, `oneshot`): no input makes the collector panic
//! or answer 5xx; every refusal is a JSON `{code, message}` with a 4xx status.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::common::{Harness, batch, turn};

struct Fixture {
    rt: tokio::runtime::Runtime,
    h: Harness,
    key: String,
    lic: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (h, key) = rt.block_on(async {
            let h = Harness::sqlite().await.expect("harness");
            let key = h.key("acme").await.expect("key");
            (h, key)
        });
        let lic = h.full();
        Fixture { rt, h, key, lic }
    })
}

fn call(path: &str, body: Vec<u8>) -> (u16, Value) {
    let f = fixture();
    f.rt.block_on(async {
        let app = agentos_collector::app(f.h.state.clone());
        let req = Request::post(path)
            .header("authorization", format!("Bearer {}", f.key))
            .header("x-agentos-license", &f.lic)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let resp = app.oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid batch with one field somewhere replaced by an arbitrary value.
fn mutated_batch() -> impl Strategy<Value = Value> {
    let paths = prop_oneof![
        Just(vec!["device_id"]),
        Just(vec!["covers"]),
        Just(vec!["covers", "from"]),
        Just(vec!["events"]),
        Just(vec!["events", "0"]),
        Just(vec!["events", "0", "seq"]),
        Just(vec!["events", "0", "event_id"]),
        Just(vec!["events", "0", "recorded_at"]),
        Just(vec!["events", "0", "tier"]),
        Just(vec!["events", "0", "type"]),
        Just(vec!["events", "0", "turn"]),
        Just(vec!["events", "0", "turn", "model"]),
        Just(vec!["events", "0", "turn", "tokens_in"]),
        Just(vec!["events", "0", "turn", "latency_ms"]),
        Just(vec!["events", "1", "feature"]),
    ];
    (paths, json_value()).prop_map(|(path, v)| {
        let mut b = batch("prop-device", 1, 2, vec![turn(1), turn(2)]);
        let mut cur = &mut b;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let next = match cur {
                Value::Object(m) => {
                    if last {
                        m.insert((*seg).to_string(), v.clone());
                        break;
                    }
                    m.get_mut(*seg)
                }
                Value::Array(a) => {
                    let idx: usize = seg.parse().unwrap_or(0);
                    if last {
                        if let Some(slot) = a.get_mut(idx) {
                            *slot = v.clone();
                        }
                        break;
                    }
                    a.get_mut(idx)
                }
                _ => None,
            };
            match next {
                Some(n) => cur = n,
                None => break,
            }
        }
        b
    })
}

fn assert_well_formed(status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(status, 200 | 400 | 413 | 422),
        "unexpected status {status}: {body}"
    );
    if status != 200 {
        prop_assert!(body["code"].is_string(), "error body without code: {body}");
        prop_assert!(
            body["message"].is_string(),
            "error body without message: {body}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_break_events(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (s, b) = call("/v1/events", body);
        assert_well_formed(s, &b)?;
    }

    #[test]
    fn arbitrary_json_never_breaks_events(v in json_value()) {
        let (s, b) = call("/v1/events", serde_json::to_vec(&v).unwrap_or_default());
        assert_well_formed(s, &b)?;
    }

    #[test]
    fn mutated_batches_are_answered_per_event(v in mutated_batch()) {
        let (s, b) = call("/v1/events", serde_json::to_vec(&v).unwrap_or_default());
        assert_well_formed(s, &b)?;
        if s == 200 {
            let accepted = b["accepted"].as_u64().unwrap_or(99);
            let dups = b["duplicates"].as_u64().unwrap_or(99);
            let rejected = b["rejected"].as_array().map_or(99, Vec::len) as u64;
            let sent = v["events"].as_array().map_or(1, Vec::len) as u64;
            prop_assert_eq!(accepted + dups + rejected, sent, "every event accounted for: {}", b);
        }
    }

    #[test]
    fn arbitrary_json_never_breaks_metrics(v in json_value()) {
        let (s, b) = call("/v1/metrics", serde_json::to_vec(&v).unwrap_or_default());
        assert_well_formed(s, &b)?;
    }
}

#[test]
fn a_metrics_body_with_only_allowed_fields_is_stored() {
    let (s, b) = call(
        "/v1/metrics",
        serde_json::to_vec(&json!({"avg_cls": 1.0})).unwrap_or_default(),
    );
    assert_eq!(s, 200, "{b}");
}
