//! The API's error type: every failure becomes `{"code": …, "message": …}` with the right status.
//!
//! A 4xx carries its specific message. A 5xx carries a generic message; the detail travels in a
//! response extension ([`InternalDetail`]) that the request middleware logs, so the conversion
//! itself has no side effects and nothing internal leaks to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON (400). The message names line and column.
    #[error("{0}")]
    MalformedJson(String),
    /// Missing or wrong API key (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// License missing, invalid, or lacking the entitlement (403).
    #[error("{message}")]
    Forbidden {
        /// Stable code (`license_missing`, `license_invalid`, `entitlement_missing`).
        code: &'static str,
        /// The reason.
        message: String,
    },
    /// No such resource for this tenant (404).
    #[error("{0}")]
    NotFound(String),
    /// Body over the limit (413).
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Valid JSON of the wrong shape (422); `pointer` locates the offending value.
    #[error("{pointer}: {message}")]
    InvalidRequest {
        /// JSON pointer ("" = the whole body).
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// The request is fine but the server's state cannot take it now (409): retryable, since
    /// the protocol's permanent verdicts depend on content only.
    #[error("{message}")]
    Conflict {
        /// Stable code (`coverage_too_fragmented`).
        code: &'static str,
        /// The reason.
        message: String,
        /// Seconds for `Retry-After`.
        retry_after: u32,
    },
    /// Transient failure; retry after the given seconds (503).
    #[error("service unavailable, retry later")]
    Unavailable {
        /// Seconds for `Retry-After`.
        retry_after: u32,
        /// Internal detail (logged, not sent).
        detail: String,
    },
    /// Anything else (500).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidRequest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case code for the body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::Conflict { code, .. } => code,
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// 422 helper.
    pub fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// Maps a store failure to 503 (transient) or 500.
    pub fn from_store(e: &crate::store::StoreError) -> Self {
        if let crate::store::StoreError::TooFragmented { .. } = e {
            // Depends on what the device sent before, not on this request: retryable (the
            // missing seqs may arrive meanwhile), never a rejection the client would log.
            return ApiError::Conflict {
                code: "coverage_too_fragmented",
                message: e.to_string(),
                retry_after: 60,
            };
        }
        let detail = format!("{}", ErrorChain(e));
        if e.is_transient() {
            ApiError::Unavailable {
                retry_after: e.retry_after_secs(),
                detail,
            }
        } else {
            ApiError::Internal(detail)
        }
    }
}

/// Formats an error with its whole source chain (`a: b: c`).
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut src = self.0.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

/// Detail of a 5xx, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalDetail(pub String);

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let pointer = match &self {
            ApiError::InvalidRequest { pointer, .. } => Some(pointer.as_str()),
            _ => None,
        };
        let body = Body {
            code: self.code(),
            message: self.to_string(),
            pointer,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::Conflict { retry_after, .. } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unavailable {
                retry_after,
                detail,
            } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                resp.extensions_mut().insert(InternalDetail(detail.clone()));
            }
            ApiError::Internal(detail) => {
                resp.extensions_mut().insert(InternalDetail(detail.clone()));
            }
            _ => {}
        }
        resp
    }
}
