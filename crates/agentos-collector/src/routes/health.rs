//! `GET /healthz` (process alive) and `GET /readyz` (database writable, keyring loaded, and
//! which privacy tiers are currently gated and why).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ErrorChain;
use crate::state::AppState;

/// Liveness: always 200 while the process serves.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when a probe write commits, no client write failed for lack of room or
/// connection in the last [`crate::state::WRITE_FAILURE_HOLD`] (unless one succeeded since), and
/// at least one license key is trusted; else 503.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let probe = state
        .store()
        .probe_write(&state.inner.instance, state.now_us())
        .await;
    if probe.is_err() {
        state.metrics().db_error("probe");
    }
    let db: Result<(), String> = match probe {
        Err(e) => Err(format!("probe write failed: {}", ErrorChain(&e))),
        Ok(()) => match state.inner.write_health.recent_failure() {
            Some(why) => Err(format!("a write failed recently: {why}")),
            None => Ok(()),
        },
    };
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
            Ok(()) => json!({"ok": true, "writable": true, "backend": state.store().backend().as_str()}),
            Err(e) => json!({"ok": false, "writable": false, "backend": state.store().backend().as_str(), "error": e}),
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
