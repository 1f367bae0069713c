//! `agentos ccc turn`: record one turn of the current session, from flags or from a JSON turn
//! body (`{"turn":{…},"measurement":{…},…}`, the envelope body without the recorder-assigned
//! fields).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use agentos_core::event::{
    Cost, Feature, FeatureStatus, InputKind, Measurement, SessionId, Turn, TurnEvent, TurnId,
    ValueRecord,
};
use agentos_core::schema;
use agentos_recorder::Recorder;
use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::context::Context;
use crate::output::{ExitStatus, print_json, report_log_warnings, warn_line};

/// Arguments of `agentos ccc turn`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model that served the turn (names starting with `glm` also go to glm_counts.jsonl).
    #[arg(long)]
    pub model: Option<String>,
    /// Sub-agent name (empty for the main agent).
    #[arg(long, default_value = "")]
    pub subagent: String,
    /// Input tokens.
    #[arg(long, default_value_t = 0)]
    pub tokens_in: u64,
    /// Output tokens.
    #[arg(long, default_value_t = 0)]
    pub tokens_out: u64,
    /// Kind of input: text, image or other.
    #[arg(long, default_value = "text", value_parser = parse_input_kind)]
    pub input_kind: InputKind,
    /// Latency in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    pub latency_ms: f64,
    /// Capacity used by this turn (provider units).
    #[arg(long)]
    pub capacity_used: Option<f64>,
    /// Value attribution, repeatable: MODEL=SHARE.
    #[arg(long = "attribution", value_name = "MODEL=SHARE")]
    pub attribution: Vec<String>,
    /// Turn id (default: a new UUIDv7).
    #[arg(long)]
    pub turn_id: Option<String>,

    /// Measurement, feature, cost and value flags (boxed: they make the struct large).
    #[command(flatten)]
    pub payload: Box<PayloadArgs>,

    /// Read the whole turn body as JSON from this file (`-` = stdin) instead of flags.
    #[arg(long, value_name = "FILE", conflicts_with = "json")]
    pub json_file: Option<PathBuf>,
    /// The whole turn body as inline JSON (`-` = read stdin) instead of flags.
    #[arg(long, value_name = "JSON")]
    pub json: Option<String>,
    /// Print a JSON report of what was recorded.
    #[arg(long)]
    pub report_json: bool,
}

/// The optional payload records of a turn, as flags.
#[derive(Debug, clap::Args)]
pub struct PayloadArgs {
    /// Measurement: cognitive load score (give all four measurement flags, or none).
    #[arg(long)]
    pub cls: Option<f64>,
    /// Measurement: interaction minutes per feature (≥ 0).
    #[arg(long)]
    pub impf: Option<f64>,
    /// Measurement: churn score.
    #[arg(long)]
    pub churn_score: Option<f64>,
    /// Measurement: features that went green in this turn.
    #[arg(long)]
    pub feature_delta: Option<f64>,
    /// Measurement: an error message, repeatable (kept locally; only the count leaves).
    #[arg(long = "error", value_name = "TEXT")]
    pub errors: Vec<String>,

    /// Feature id (with --spec-ref and --status).
    #[arg(long)]
    pub feature_id: Option<String>,
    /// Feature spec reference.
    #[arg(long)]
    pub spec_ref: Option<String>,
    /// Feature status: proposed, implemented or shipped.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<FeatureStatus>,
    /// Feature notes (kept locally; never leave).
    #[arg(long)]
    pub feature_notes: Option<String>,

    /// Cost: provider (with --estimated-usd).
    #[arg(long)]
    pub cost_provider: Option<String>,
    /// Cost: estimated USD (≥ 0). Without it the cost is estimated from the price table
    /// (`agentos prices`) and marked so: provider `agentos-price-table`, unit prices in
    /// `unit_costs`.
    #[arg(long)]
    pub estimated_usd: Option<f64>,

    /// Value: one-line summary.
    #[arg(long)]
    pub value_summary: Option<String>,
    /// Value: a link (PR, commit), repeatable.
    #[arg(long = "link", value_name = "URL")]
    pub links: Vec<String>,
    /// Value: an evidence reference, repeatable (kept locally; never leaves).
    #[arg(long = "evidence-ref", value_name = "REF")]
    pub evidence_refs: Vec<String>,
}

fn parse_input_kind(s: &str) -> Result<InputKind, String> {
    serde_json::from_value(Value::from(s)).map_err(|_| format!("{s:?} is not text, image or other"))
}

fn parse_status(s: &str) -> Result<FeatureStatus, String> {
    serde_json::from_value(Value::from(s))
        .map_err(|_| format!("{s:?} is not proposed, implemented or shipped"))
}

/// Runs `agentos ccc turn`.
pub fn run(args: Args, ctx: &Context) -> anyhow::Result<ExitStatus> {
    let mut rec = Recorder::open(ctx.config()?.clone())?;
    let current = rec.current_session()?.with_context(|| {
        format!(
            "no current session in {}; start one with `agentos ccc session start`",
            rec.paths().data_dir.display()
        )
    })?;
    let report_json = args.report_json;
    let turn = match json_source(&args)? {
        Some((label, text)) => {
            if has_field_flags(&args) {
                bail!("give the turn either as JSON (--json/--json-file) or as flags, not both");
            }
            turn_from_json(&label, &text, &current.session_id)?
        }
        None => turn_from_flags(args)?,
    };
    let mut turn = turn;
    let estimated =
        agentos_ingest::pricing::estimate_turn_cost(&mut turn, &ctx.ingest()?.prices(None)?);
    let model = turn.turn.model.clone();
    let r = rec.record_turn(turn)?;
    report_log_warnings(&r.warnings);
    // The turn is in the log: exit 0 whatever happens to the derived files, so a wrapper that
    // retries on failure never records it twice.
    if let Some(why) = &r.not_refreshed {
        warn_line(&format!(
            "turn recorded, but the summary was not refreshed ({why}); the next record or \
             `agentos ccc rollup` repairs it"
        ));
    }
    // Nor does a closed stdout make it a failure.
    let printed = if report_json {
        print_json(&json!({
            "seq": r.seq, "event_id": r.event_id, "tier": r.tier, "session_id": current.session_id,
            "model": model, "glm": agentos_recorder::recorder::is_glm_model(&model),
            "summary_refreshed": r.not_refreshed.is_none(),
        }))
    } else {
        writeln!(
            std::io::stdout(),
            "recorded turn seq {} (tier {})",
            r.seq,
            r.tier
        )
        .map_err(anyhow::Error::from)
    };
    if let Err(e) = printed {
        warn_line(&format!(
            "turn seq {} recorded; printing it failed: {e:#}",
            r.seq
        ));
    }
    match estimated {
        agentos_ingest::pricing::Estimate::Given => {}
        agentos_ingest::pricing::Estimate::FromTable { usd, as_of } => crate::output::note(
            &format!("cost estimated from the price table (as of {as_of}): ${usd:.6}"),
        ),
        agentos_ingest::pricing::Estimate::Unpriced => crate::output::note(&format!(
            "no price for model {model:?}: turn recorded without a cost (see `agentos prices`)"
        )),
    }
    Ok(ExitStatus::Ok)
}

fn has_field_flags(a: &Args) -> bool {
    a.model.is_some()
        || a.capacity_used.is_some()
        || !a.attribution.is_empty()
        || a.payload.cls.is_some()
        || a.payload.impf.is_some()
        || a.payload.churn_score.is_some()
        || a.payload.feature_delta.is_some()
        || !a.payload.errors.is_empty()
        || a.payload.feature_id.is_some()
        || a.payload.cost_provider.is_some()
        || a.payload.value_summary.is_some()
}

fn json_source(a: &Args) -> anyhow::Result<Option<(String, String)>> {
    let read_stdin = || -> anyhow::Result<String> {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the turn JSON from stdin")?;
        Ok(s)
    };
    if let Some(p) = &a.json_file {
        if p.as_os_str() == "-" {
            return Ok(Some(("stdin".into(), read_stdin()?)));
        }
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        return Ok(Some((p.display().to_string(), text)));
    }
    match a.json.as_deref() {
        Some("-") => Ok(Some(("stdin".into(), read_stdin()?))),
        Some(text) => Ok(Some(("--json".into(), text.to_string()))),
        None => Ok(None),
    }
}

/// Parses a turn body, fills the session and turn ids, and validates it against the v1 schemas
/// so errors name the JSON pointer.
fn turn_from_json(label: &str, text: &str, session: &SessionId) -> anyhow::Result<TurnEvent> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{label}: invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        )
    })?;
    let obj = v
        .as_object_mut()
        .with_context(|| format!("{label}: the turn body must be a JSON object"))?;
    if let Some(t) = obj.remove("type")
        && t != "turn"
    {
        bail!("{label}: /type is {t}, expected \"turn\"");
    }
    for assigned in ["event_id", "seq", "recorded_at", "tier"] {
        if obj.contains_key(assigned) {
            bail!("{label}: /{assigned} is assigned by the recorder; leave it out");
        }
    }
    let turn = obj
        .get_mut("turn")
        .and_then(Value::as_object_mut)
        .with_context(|| format!("{label}: /turn is missing or not an object"))?;
    match turn.get("session_id") {
        None => {
            turn.insert("session_id".into(), Value::from(session.0.clone()));
        }
        Some(s) if s.as_str() != Some(session.0.as_str()) => {
            bail!("{label}: /turn/session_id is {s}, but the current session is {session}");
        }
        Some(_) => {}
    }
    // An absent turn id is assigned by the recorder (a UUIDv7), like with flags.
    let assign_turn_id = !turn.contains_key("turn_id");
    if assign_turn_id {
        turn.insert("turn_id".into(), Value::from(""));
    }
    // Validate as a whole envelope (placeholder envelope fields) so unknown payload keys and
    // bad values are reported with their pointer.
    let mut env = obj.clone();
    if assign_turn_id && let Some(t) = env.get_mut("turn").and_then(Value::as_object_mut) {
        t.insert("turn_id".into(), Value::from("to-be-assigned"));
    }
    env.insert("type".into(), Value::from("turn"));
    env.insert(
        "event_id".into(),
        Value::from("00000000-0000-7000-8000-000000000000"),
    );
    env.insert("seq".into(), Value::from(1));
    env.insert("recorded_at".into(), Value::from("2000-01-01T00:00:00Z"));
    env.insert("tier".into(), Value::from("local"));
    schema::validate_envelope(&Value::Object(env)).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    serde_json::from_value(v).with_context(|| format!("{label}: not a turn body"))
}

fn turn_from_flags(a: Args) -> anyhow::Result<TurnEvent> {
    let p = *a.payload;
    let model = a
        .model
        .context("--model is required (or give the turn as --json/--json-file)")?;
    let mut attribution = BTreeMap::new();
    for kv in &a.attribution {
        let (m, share) = kv
            .split_once('=')
            .with_context(|| format!("--attribution {kv:?} is not MODEL=SHARE"))?;
        let share: f64 = share
            .parse()
            .with_context(|| format!("--attribution {kv:?}: {share:?} is not a number"))?;
        attribution.insert(m.to_string(), share);
    }
    let measurement = match (p.cls, p.impf, p.churn_score, p.feature_delta) {
        (None, None, None, None) if p.errors.is_empty() => None,
        (Some(cls), Some(impf), Some(churn_score), Some(feature_delta)) => Some(Measurement {
            cls,
            impf,
            churn_score,
            feature_delta,
            errors: (!p.errors.is_empty()).then_some(p.errors),
            error_count: None,
        }),
        _ => bail!("a measurement needs all of --cls, --impf, --churn-score and --feature-delta"),
    };
    let feature = match (p.feature_id, p.spec_ref, p.status) {
        (None, None, None) if p.feature_notes.is_none() => None,
        (Some(feature_id), Some(spec_ref), Some(status)) => Some(Feature {
            feature_id,
            spec_ref,
            status,
            notes: p.feature_notes,
        }),
        _ => bail!("a feature needs all of --feature-id, --spec-ref and --status"),
    };
    let cost = match (p.cost_provider, p.estimated_usd) {
        (None, None) => None,
        (Some(provider), Some(estimated_usd)) => Some(Cost {
            provider,
            estimated_usd,
            unit_costs: None,
        }),
        _ => bail!("a cost needs both --cost-provider and --estimated-usd"),
    };
    let value = match p.value_summary {
        None if p.links.is_empty() && p.evidence_refs.is_empty() => None,
        None => bail!("--link/--evidence-ref need --value-summary"),
        Some(summary) => Some(ValueRecord {
            summary,
            links: (!p.links.is_empty()).then_some(p.links),
            evidence_refs: (!p.evidence_refs.is_empty()).then_some(p.evidence_refs),
        }),
    };
    Ok(TurnEvent {
        turn: Turn {
            turn_id: TurnId(a.turn_id.unwrap_or_default()),
            session_id: SessionId(String::new()),
            model,
            subagent: a.subagent,
            tokens_in: a.tokens_in,
            tokens_out: a.tokens_out,
            input_kind: a.input_kind,
            latency_ms: a.latency_ms,
            attribution: (!attribution.is_empty()).then_some(attribution),
            capacity_used: a.capacity_used,
            cache_creation_tokens: None,
            cache_read_tokens: None,
            source: None,
        },
        measurement,
        feature,
        cost,
        value,
        decision: None,
    })
}
