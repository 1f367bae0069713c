//! The v1 JSON Schemas, embedded in the binary, and validation with errors that name the JSON
//! pointer and the rule that failed.
//!
//! The schema files live in `schemas/v1/*.json` at the repository root (shipped to users and
//! to other implementations); this module compiles them once. The envelope schema checks the
//! envelope fields and which payload keys a `type` may carry; each payload object is then
//! checked against its own schema, and the reported pointer is the full path inside the
//! envelope (e.g. `/turn/tokens_in`).

use std::fmt;
use std::sync::LazyLock;

use serde_json::Value;

use crate::event::Envelope;

/// Which v1 schema to validate against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaKind {
    /// `envelope.json`: one line of `windows.jsonl` (payloads are checked too).
    Envelope,
    /// `session.json`.
    Session,
    /// `turn.json`.
    Turn,
    /// `measurement.json`.
    Measurement,
    /// `feature.json`.
    Feature,
    /// `cost.json`.
    Cost,
    /// `value.json`.
    Value,
    /// `decision.json`.
    Decision,
}

impl SchemaKind {
    /// Every schema, in a stable order.
    pub const ALL: [SchemaKind; 8] = [
        SchemaKind::Envelope,
        SchemaKind::Session,
        SchemaKind::Turn,
        SchemaKind::Measurement,
        SchemaKind::Feature,
        SchemaKind::Cost,
        SchemaKind::Value,
        SchemaKind::Decision,
    ];

    /// File name of the schema under `schemas/v1/`.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Envelope => "envelope.json",
            SchemaKind::Session => "session.json",
            SchemaKind::Turn => "turn.json",
            SchemaKind::Measurement => "measurement.json",
            SchemaKind::Feature => "feature.json",
            SchemaKind::Cost => "cost.json",
            SchemaKind::Value => "value.json",
            SchemaKind::Decision => "decision.json",
        }
    }

    /// The schema document's text, as shipped.
    pub fn source(self) -> &'static str {
        match self {
            SchemaKind::Envelope => include_str!("../../../schemas/v1/envelope.json"),
            SchemaKind::Session => include_str!("../../../schemas/v1/session.json"),
            SchemaKind::Turn => include_str!("../../../schemas/v1/turn.json"),
            SchemaKind::Measurement => include_str!("../../../schemas/v1/measurement.json"),
            SchemaKind::Feature => include_str!("../../../schemas/v1/feature.json"),
            SchemaKind::Cost => include_str!("../../../schemas/v1/cost.json"),
            SchemaKind::Value => include_str!("../../../schemas/v1/value.json"),
            SchemaKind::Decision => include_str!("../../../schemas/v1/decision.json"),
        }
    }

    /// The schema for a payload key of a turn envelope (`turn`, `measurement`, …).
    fn for_payload_key(key: &str) -> Option<SchemaKind> {
        Some(match key {
            "session" => SchemaKind::Session,
            "turn" => SchemaKind::Turn,
            "measurement" => SchemaKind::Measurement,
            "feature" => SchemaKind::Feature,
            "cost" => SchemaKind::Cost,
            "value" => SchemaKind::Value,
            "decision" => SchemaKind::Decision,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A value that does not satisfy a v1 schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{schema}: {pointer_display}: {message}", pointer_display = if pointer.is_empty() { "/" } else { pointer.as_str() })]
pub struct SchemaError {
    /// File name of the schema that failed (e.g. `turn.json`).
    pub schema: &'static str,
    /// JSON pointer of the offending value, from the root of the validated document.
    pub pointer: String,
    /// The rule that failed (e.g. `minimum`, `required`, `additionalProperties`).
    pub rule: String,
    /// Human-readable description of the failure.
    pub message: String,
}

impl SchemaError {
    /// Stable snake_case code for logs, metrics and API bodies.
    pub fn code(&self) -> &'static str {
        "schema_violation"
    }
}

/// A line that is not a valid envelope: bad JSON, or valid JSON that fails the schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not JSON, or JSON of the wrong shape for the Rust types.
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line within the parsed text.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// Valid JSON that violates the v1 schema.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl EnvelopeError {
    /// Stable snake_case code for logs, metrics and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::Json { .. } => "malformed_json",
            EnvelopeError::Schema(e) => e.code(),
        }
    }
}

impl From<serde_json::Error> for EnvelopeError {
    fn from(e: serde_json::Error) -> Self {
        EnvelopeError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

struct Compiled(Vec<jsonschema::Validator>);

static VALIDATORS: LazyLock<Compiled> = LazyLock::new(|| {
    Compiled(
        SchemaKind::ALL
            .iter()
            .map(|k| {
                let doc: Value = serde_json::from_str(k.source()).unwrap_or_else(|e| {
                    panic!("embedded schema {} is not JSON: {e}", k.file_name())
                });
                jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&doc)
                    .unwrap_or_else(|e| {
                        panic!("embedded schema {} does not compile: {e}", k.file_name())
                    })
            })
            .collect(),
    )
});

fn first_error(kind: SchemaKind, value: &Value, prefix: &str) -> Result<(), SchemaError> {
    let validator = &VALIDATORS.0[kind.index()];
    match validator.validate(value) {
        Ok(()) => Ok(()),
        Err(err) => {
            let rule = err
                .schema_path()
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            Err(SchemaError {
                schema: kind.file_name(),
                pointer: format!("{prefix}{}", err.instance_path().as_str()),
                rule,
                message: err.to_string(),
            })
        }
    }
}

/// Validates `value` against one v1 schema.
///
/// For [`SchemaKind::Envelope`] this also validates every payload object against its own schema.
///
/// # Errors
/// The first violation found, naming the JSON pointer and the rule.
///
/// # Example
/// ```
/// use agentos_core::schema::{validate, SchemaKind};
/// let bad = serde_json::json!({"provider": "anth", "estimated_usd": -1});
/// let err = validate(SchemaKind::Cost, &bad).unwrap_err();
/// assert_eq!(err.pointer, "/estimated_usd");
/// assert_eq!(err.rule, "minimum");
/// ```
pub fn validate(kind: SchemaKind, value: &Value) -> Result<(), SchemaError> {
    if kind == SchemaKind::Envelope {
        return validate_envelope(value);
    }
    first_error(kind, value, "")
}

/// Validates one envelope: its own fields, the keys allowed for its `type`, and each payload.
///
/// # Errors
/// The first violation found; the pointer is relative to the envelope root.
pub fn validate_envelope(value: &Value) -> Result<(), SchemaError> {
    first_error(SchemaKind::Envelope, value, "")?;
    if let Some(obj) = value.as_object() {
        for (key, payload) in obj {
            if let Some(kind) = SchemaKind::for_payload_key(key) {
                first_error(kind, payload, &format!("/{key}"))?;
            }
        }
    }
    Ok(())
}

/// Parses and validates one envelope from JSON text (one line of `windows.jsonl`).
///
/// # Errors
/// [`EnvelopeError::Json`] with line and column for malformed JSON, or
/// [`EnvelopeError::Schema`] for a schema violation.
pub fn parse_envelope(text: &[u8]) -> Result<Envelope, EnvelopeError> {
    let value: Value = serde_json::from_slice(text)?;
    validate_envelope(&value)?;
    Ok(serde_json::from_value(value)?)
}

/// Serializes an envelope and validates the result before it is written anywhere.
///
/// # Errors
/// A [`SchemaError`] when the typed value breaks a schema rule the types cannot express
/// (e.g. a negative latency or an empty id).
pub fn check_envelope(env: &Envelope) -> Result<Value, SchemaError> {
    let value = serde_json::to_value(env).map_err(|e| SchemaError {
        schema: SchemaKind::Envelope.file_name(),
        pointer: String::new(),
        rule: "serialize".into(),
        message: e.to_string(),
    })?;
    validate_envelope(&value)?;
    Ok(value)
}

impl fmt::Display for SchemaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}
