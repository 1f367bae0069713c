use agentos_core::schema::{
    SchemaKind, check_envelope, parse_envelope, validate, validate_envelope,
};
use serde_json::{Value, json};

use crate::examples::*;
use agentos_core::tier::Tier;

fn schema_doc(kind: SchemaKind) -> Value {
    serde_json::from_str(kind.source()).expect("schema is JSON")
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn every_embedded_schema_is_a_2020_12_document_with_an_id() {
    for kind in SchemaKind::ALL {
        let doc = schema_doc(kind);
        assert_eq!(
            doc["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind}"
        );
        assert!(
            doc["$id"]
                .as_str()
                .expect("$id")
                .ends_with(kind.file_name())
        );
    }
}

#[test]
fn shipped_schema_files_match_the_embedded_copies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/v1");
    for kind in SchemaKind::ALL {
        let on_disk = std::fs::read_to_string(dir.join(kind.file_name())).expect("schema file");
        assert_eq!(on_disk, kind.source());
    }
}

#[test]
fn rust_types_and_schemas_name_the_same_fields() {
    // A fully populated value of each type must use exactly the schema's property names.
    let events = three_events(Tier::Full);
    let turn_env = serde_json::to_value(&events[1]).expect("serialize");
    let session_env = serde_json::to_value(&events[0]).expect("serialize");
    let mut measurement = turn_env["measurement"].clone();
    measurement["error_count"] = json!(2);
    let pairs = [
        (SchemaKind::Session, session_env["session"].clone()),
        (SchemaKind::Turn, turn_env["turn"].clone()),
        (SchemaKind::Measurement, measurement),
        (SchemaKind::Feature, turn_env["feature"].clone()),
        (SchemaKind::Cost, turn_env["cost"].clone()),
        (SchemaKind::Value, turn_env["value"].clone()),
    ];
    for (kind, value) in pairs {
        let schema = schema_doc(kind);
        assert_eq!(keys(&value), keys(&schema["properties"]), "{kind}");
        validate(kind, &value).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    // Decision allows extra fields: every schema property must still be a Rust field.
    let decision = turn_env["decision"].clone();
    let named: std::collections::BTreeSet<String> = keys(&decision)
        .into_iter()
        .filter(|k| k != "fallback")
        .collect();
    assert_eq!(named, keys(&schema_doc(SchemaKind::Decision)["properties"]));
    // ...and exactly those may leave (the egress allowlist, enforced on both sides).
    let allowed: std::collections::BTreeSet<String> = agentos_core::privacy::DECISION_FIELDS
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(allowed, named);
}

#[test]
fn typed_envelopes_validate_and_round_trip() {
    for env in three_events(Tier::Full) {
        let value = check_envelope(&env).expect("valid");
        let text = serde_json::to_vec(&value).expect("serialize");
        let back = parse_envelope(&text).expect("parse");
        assert_eq!(back, env);
    }
}

/// Name, change to a valid turn envelope, expected pointer, expected rule.
type Mutation = Box<dyn Fn(&mut Value)>;

fn turn_value() -> Value {
    serde_json::to_value(&three_events(Tier::Full)[1]).expect("serialize")
}

#[test]
fn broken_variants_are_rejected_with_the_right_pointer_and_rule() {
    let cases: Vec<(&str, Mutation, &str, &str)> = vec![
        (
            "negative tokens",
            Box::new(|v| v["turn"]["tokens_in"] = json!(-1)),
            "/turn/tokens_in",
            "minimum",
        ),
        (
            "fractional tokens",
            Box::new(|v| v["turn"]["tokens_out"] = json!(1.5)),
            "/turn/tokens_out",
            "type",
        ),
        (
            "bad input kind",
            Box::new(|v| v["turn"]["input_kind"] = json!("audio")),
            "/turn/input_kind",
            "enum",
        ),
        (
            "negative latency",
            Box::new(|v| v["turn"]["latency_ms"] = json!(-3)),
            "/turn/latency_ms",
            "minimum",
        ),
        (
            "missing model",
            Box::new(|v| {
                v["turn"].as_object_mut().map(|m| m.remove("model"));
            }),
            "/turn",
            "required",
        ),
        (
            "extra turn field",
            Box::new(|v| v["turn"]["prompt"] = json!("hi")),
            "/turn",
            "additionalProperties",
        ),
        (
            "negative cache read tokens (v1.1)",
            Box::new(|v| v["turn"]["cache_read_tokens"] = json!(-1)),
            "/turn/cache_read_tokens",
            "minimum",
        ),
        (
            "fractional cache creation tokens (v1.1)",
            Box::new(|v| v["turn"]["cache_creation_tokens"] = json!(0.5)),
            "/turn/cache_creation_tokens",
            "type",
        ),
        (
            "unknown turn source (v1.1)",
            Box::new(|v| v["turn"]["source"] = json!("telepathy")),
            "/turn/source",
            "enum",
        ),
        (
            "negative impf",
            Box::new(|v| v["measurement"]["impf"] = json!(-1)),
            "/measurement/impf",
            "minimum",
        ),
        (
            "errors not strings",
            Box::new(|v| v["measurement"]["errors"] = json!([1])),
            "/measurement/errors/0",
            "type",
        ),
        (
            "bad feature status",
            Box::new(|v| v["feature"]["status"] = json!("done")),
            "/feature/status",
            "enum",
        ),
        (
            "negative cost",
            Box::new(|v| v["cost"]["estimated_usd"] = json!(-0.1)),
            "/cost/estimated_usd",
            "minimum",
        ),
        (
            "value without summary",
            Box::new(|v| {
                v["value"].as_object_mut().map(|m| m.remove("summary"));
            }),
            "/value",
            "required",
        ),
        (
            "negative preferred attempt",
            Box::new(|v| v["decision"]["preferred_attempt"] = json!(-1)),
            "/decision/preferred_attempt",
            "minimum",
        ),
        (
            "unknown type",
            Box::new(|v| v["type"] = json!("heartbeat")),
            "/type",
            "enum",
        ),
        (
            "seq zero",
            Box::new(|v| v["seq"] = json!(0)),
            "/seq",
            "minimum",
        ),
        (
            "bad tier",
            Box::new(|v| v["tier"] = json!("public")),
            "/tier",
            "enum",
        ),
        (
            "bad timestamp",
            Box::new(|v| v["recorded_at"] = json!("yesterday")),
            "/recorded_at",
            "format",
        ),
        (
            "stray payload on a turn",
            Box::new(|v| v["session"] = json!({})),
            "",
            "additionalProperties",
        ),
    ];
    for (name, mutate, pointer, rule) in cases {
        let mut v = turn_value();
        mutate(&mut v);
        let err = validate_envelope(&v).expect_err(name);
        assert_eq!(err.pointer, pointer, "{name}: {err}");
        assert_eq!(err.rule, rule, "{name}: {err}");
    }
}

#[test]
fn a_v1_0_turn_without_the_v1_1_fields_still_parses() {
    // Lines written before cache tokens and source existed must stay readable, unchanged.
    let mut v = turn_value();
    let turn = v["turn"].as_object_mut().expect("turn object");
    for f in ["cache_creation_tokens", "cache_read_tokens", "source"] {
        assert!(turn.remove(f).is_some(), "the example sets {f}");
    }
    let text = serde_json::to_vec(&v).expect("serialize");
    let env = parse_envelope(&text).expect("a v1.0 turn is valid v1.1");
    let agentos_core::EventBody::Turn(t) = env.body else {
        panic!("expected a turn");
    };
    assert_eq!(t.turn.cache_creation_tokens, None);
    assert_eq!(t.turn.cache_read_tokens, None);
    assert_eq!(t.turn.source, None);
    // And absent fields stay absent when written back (no nulls appear in old lines).
    let back = serde_json::to_value(&t.turn).expect("serialize");
    assert!(back.get("cache_read_tokens").is_none());
    assert!(back.get("source").is_none());
}

#[test]
fn the_v1_1_turn_fields_round_trip_with_their_wire_names() {
    let v = turn_value();
    assert_eq!(v["turn"]["cache_creation_tokens"], json!(4_000));
    assert_eq!(v["turn"]["cache_read_tokens"], json!(52_000));
    assert_eq!(v["turn"]["source"], json!("claude_code"));
}

#[test]
fn capacity_used_may_be_null() {
    let mut v = turn_value();
    v["turn"]["capacity_used"] = Value::Null;
    validate_envelope(&v).expect("null capacity is allowed");
}

#[test]
fn session_and_session_end_examples_validate_and_break() {
    let events = three_events(Tier::Local);
    let mut s = serde_json::to_value(&events[0]).expect("serialize");
    validate_envelope(&s).expect("valid session");
    s["session"]["privacy_tier"] = json!("open");
    assert_eq!(
        validate_envelope(&s).expect_err("bad tier").pointer,
        "/session/privacy_tier"
    );
    let mut e = serde_json::to_value(&events[2]).expect("serialize");
    validate_envelope(&e).expect("valid end");
    e.as_object_mut().map(|m| m.remove("ended_at"));
    assert_eq!(
        validate_envelope(&e).expect_err("no ended_at").rule,
        "required"
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = parse_envelope(b"{\"type\": \"turn\",\n  \"seq\": }").expect_err("malformed");
    let msg = err.to_string();
    assert!(msg.contains("line 2"), "{msg}");
    assert_eq!(err.code(), "malformed_json");
}

#[test]
fn token_counts_are_bounded_by_the_documented_maximum() {
    use agentos_core::event::{EventBody, MAX_TURN_TOKENS};
    let doc = schema_doc(SchemaKind::Turn);
    for k in ["tokens_in", "tokens_out"] {
        assert_eq!(
            doc["properties"][k]["maximum"].as_u64(),
            Some(MAX_TURN_TOKENS),
            "turn.json {k} maximum matches MAX_TURN_TOKENS"
        );
    }
    let mut turn = full_turn();
    turn.turn.tokens_in = MAX_TURN_TOKENS;
    let env = envelope(1, Tier::Full, EventBody::Turn(turn.clone()));
    check_envelope(&env).expect("the maximum itself is valid");
    turn.turn.tokens_in = MAX_TURN_TOKENS + 1;
    let env = envelope(1, Tier::Full, EventBody::Turn(turn));
    let err = check_envelope(&env).expect_err("over the maximum");
    assert_eq!(err.pointer, "/turn/tokens_in", "{err}");
    // What a hostile client sends instead of an integer: still refused, never stored as NULL.
    let mut value = serde_json::to_value(&env).expect("json");
    for huge in [
        json!(1e30),
        json!(u64::MAX),
        json!(9_223_372_036_854_775_808u64),
    ] {
        value["turn"]["tokens_in"] = huge.clone();
        assert!(validate_envelope(&value).is_err(), "{huge} accepted");
    }
}
