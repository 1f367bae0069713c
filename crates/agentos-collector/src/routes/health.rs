//! `GET /healthz` (process alive) and `GET /readyz` (database reachable, keyring loaded, and
//! which privacy tiers are currently gated and why).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// Liveness: always 200 while the process serves.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when the database answers and at least one license key is trusted, else 503.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let db = state.store().ping().await;
    if db.is_err() {
        state.metrics().db_error("ping");
    }
    let keyring = state.inner.licenses.keyring();
    let kids: Vec<&str> = keyring.kids().collect();
    let keys_ok = !kids.is_empty();
    let db_ok = db.is_ok();
    let gated = |requires: &str, endpoint: &str| {
        if keys_ok {
            json!({"accepted": true, "endpoint": endpoint, "requires": requires,
                   "reason": format!("accepted from clients whose license grants {requires}")})
        } else {
            json!({"accepted": false, "endpoint": endpoint, "requires": requires,
                   "reason": "no license public keys configured: every license is rejected"})
        }
    };
    let body = json!({
        "ready": db_ok && keys_ok,
        "database": match &db {
            Ok(()) => json!({"ok": true, "backend": state.store().backend().as_str()}),
            Err(e) => json!({"ok": false, "backend": state.store().backend().as_str(), "error": e.to_string()}),
        },
        "keyring": {"loaded": keys_ok, "kids": kids},
        "tiers": {
            "local": {"accepted": false, "reason": "local tier data never leaves the device"},
            "minimized": gated("telemetry_minimized or telemetry_full", "/v1/metrics"),
            "full": gated("telemetry_full", "/v1/events"),
        },
    });
    let status = if db_ok && keys_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
