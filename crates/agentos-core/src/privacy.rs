//! Egress rules: the one table that decides what may leave the machine under each privacy
//! [`Tier`], and the redaction applied on the way out.
//!
//! | tier        | `/v1/events` | `/v1/metrics`                  |
//! |-------------|--------------|--------------------------------|
//! | `local`     | no           | no                             |
//! | `minimized` | no           | allowlisted summary fields     |
//! | `full`      | redacted     | allowlisted summary fields     |
//!
//! An event leaves only under `min(tier it was recorded under, tier in force now)`: lowering
//! the tier stops pending uploads above it, raising it never uploads history recorded under a
//! stricter tier. Field-level redaction of events is driven by [`EVENT_FIELD_RULES`]; the doc
//! table in `docs/privacy.md` mirrors it and a test keeps the two in step.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Envelope;
use crate::rollup::Summary;
use crate::tier::{Egress, Tier};

/// The summary fields that may go to `/v1/metrics` (minimized and full tiers).
pub const MINIMIZED_SUMMARY_FIELDS: [&str; 7] = [
    "generated_at",
    "features_shipped",
    "features_per_capacity",
    "avg_cls",
    "avg_impf",
    "avg_churn_score",
    "capacity_used",
];

/// The `decision` fields that may leave under `full`: exactly the named properties of
/// `decision.json` (a test keeps the two in step).
pub const DECISION_FIELDS: [&str; 9] = [
    "reroute_mode",
    "reroute_decision",
    "preferred_attempt",
    "warn_pct_auto",
    "warn_pct_confidence",
    "warn_pct_cfg",
    "gap_seconds_p50",
    "gap_seconds_p95",
    "gap_samples",
];

/// What happens to one field of an event at egress (full tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// The field never leaves.
    Drop,
    /// The field never leaves; its length goes into the named sibling count field.
    CountInto(&'static str),
    /// Only keys the user allowlisted in config leave.
    AllowlistedKeys,
    /// Only the listed sub-keys leave.
    KeepOnly(&'static [&'static str]),
}

/// The one table of field-level redaction for events leaving under `full`.
///
/// Paths are `<payload>.<field>` for turn payloads and `session_end.<field>` for the envelope's
/// own fields. Anything not listed leaves unchanged (ids, numbers, enums, model names).
pub const EVENT_FIELD_RULES: &[(&str, FieldRule)] = &[
    ("session.metadata", FieldRule::AllowlistedKeys),
    ("feature.notes", FieldRule::Drop),
    ("measurement.errors", FieldRule::CountInto("error_count")),
    ("value", FieldRule::KeepOnly(&["summary", "links"])),
    // The schema lets a decision carry any extra field locally (shims add their own); only
    // the named routing fields leave, so free text cannot ride along.
    ("decision", FieldRule::KeepOnly(&DECISION_FIELDS)),
    ("session_end.notes", FieldRule::Drop),
];

/// User choices that refine redaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactionPolicy {
    /// `session.metadata` keys allowed to leave under `full`.
    #[serde(default)]
    pub metadata_allowlist: BTreeSet<String>,
}

/// The tier that applies to an event recorded under `recorded` when `now` is in force.
pub fn effective_tier(recorded: Tier, now: Tier) -> Tier {
    recorded.min(now)
}

/// The redacted JSON of `env` that may go to `/v1/events`, or `None` if it must not leave.
///
/// The result still satisfies the v1 envelope schema, so the collector can validate it.
pub fn egress_event(env: &Envelope, now: Tier, policy: &RedactionPolicy) -> Option<Value> {
    if !effective_tier(env.tier, now).allows(Egress::Events) {
        return None;
    }
    let mut value = serde_json::to_value(env).ok()?;
    redact_event_value(&mut value, policy);
    Some(value)
}

/// Applies [`EVENT_FIELD_RULES`] to an envelope already in JSON form.
pub fn redact_event_value(value: &mut Value, policy: &RedactionPolicy) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    let is_session_end = obj.get("type").and_then(Value::as_str) == Some("session_end");
    for (path, rule) in EVENT_FIELD_RULES {
        let (head, field) = match path.split_once('.') {
            Some((h, f)) => (h, Some(f)),
            None => (*path, None),
        };
        let target: &mut Map<String, Value> = if head == "session_end" {
            if !is_session_end {
                continue;
            }
            &mut *obj
        } else {
            match obj.get_mut(head).and_then(Value::as_object_mut) {
                Some(m) => m,
                None => continue,
            }
        };
        apply_rule(target, field, *rule, policy);
    }
}

fn apply_rule(
    target: &mut Map<String, Value>,
    field: Option<&str>,
    rule: FieldRule,
    policy: &RedactionPolicy,
) {
    match (rule, field) {
        (FieldRule::KeepOnly(keep), None) => target.retain(|k, _| keep.contains(&k.as_str())),
        (FieldRule::KeepOnly(keep), Some(f)) => {
            if let Some(Value::Object(m)) = target.get_mut(f) {
                m.retain(|k, _| keep.contains(&k.as_str()));
            }
        }
        (FieldRule::Drop, Some(f)) => {
            target.remove(f);
        }
        (FieldRule::CountInto(count_field), Some(f)) => {
            if let Some(removed) = target.remove(f) {
                let n = removed.as_array().map_or(0, Vec::len);
                target.insert(count_field.to_string(), Value::from(n));
            }
        }
        (FieldRule::AllowlistedKeys, Some(f)) => {
            let keep = match target.get_mut(f) {
                Some(Value::Object(m)) => {
                    m.retain(|k, _| policy.metadata_allowlist.contains(k));
                    !m.is_empty()
                }
                _ => false,
            };
            if !keep {
                target.remove(f);
            }
        }
        // Whole-object rules other than KeepOnly make no sense; the table never uses them.
        (FieldRule::Drop | FieldRule::CountInto(_) | FieldRule::AllowlistedKeys, None) => {}
    }
}

/// The `/v1/metrics` body for `summary` under tier `now`, or `None` if nothing may leave.
///
/// Only [`MINIMIZED_SUMMARY_FIELDS`] are present (keys sorted), and their values come from
/// [`Summary::shareable`]: aggregates over turns recorded under a tier that allows metrics, so
/// work recorded as `local` never leaves, even as a sum.
pub fn egress_summary(summary: &Summary, now: Tier) -> Option<Value> {
    if !now.allows(Egress::Metrics) {
        return None;
    }
    let shared = &summary.shareable;
    let mut kept = Map::new();
    kept.insert(
        "avg_churn_score".into(),
        serde_json::to_value(shared.avg_churn_score).ok()?,
    );
    kept.insert("avg_cls".into(), serde_json::to_value(shared.avg_cls).ok()?);
    kept.insert(
        "avg_impf".into(),
        serde_json::to_value(shared.avg_impf).ok()?,
    );
    kept.insert(
        "capacity_used".into(),
        serde_json::to_value(shared.capacity_used).ok()?,
    );
    kept.insert(
        "features_per_capacity".into(),
        serde_json::to_value(shared.features_per_capacity).ok()?,
    );
    kept.insert(
        "features_shipped".into(),
        serde_json::to_value(shared.features_shipped).ok()?,
    );
    kept.insert(
        "generated_at".into(),
        serde_json::to_value(summary.generated_at).ok()?,
    );
    debug_assert!(
        kept.keys()
            .all(|k| MINIMIZED_SUMMARY_FIELDS.contains(&k.as_str()))
    );
    Some(Value::Object(kept))
}
