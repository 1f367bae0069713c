//! The HTTP side: one reqwest client (rustls), request headers, and the classification of every
//! outcome into "done", "retry later", "this request is invalid" or "a human must act".

use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};

use crate::error::DeliveryError;
use crate::settings::Settings;
use crate::wire::ErrorBody;

/// The longest `Retry-After` honoured as is; a server asking for more is asked again after this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How a request failed.
#[derive(Debug, Clone)]
pub(crate) enum SendError {
    /// Network trouble, timeout, 408, 429, 5xx: retry, after `retry_after` when the server said.
    Transient {
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// 400, 413, 422: the request itself is unacceptable; retrying it unchanged cannot help.
    Invalid {
        status: u16,
        code: String,
        message: String,
    },
    /// 401, 403, 404 and other 4xx, and every 3xx: configuration or entitlement trouble.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

/// A 2xx answer, as it came back: the caller decides whether it is an acknowledgement.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type` header, if any.
    pub(crate) content_type: Option<String>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// "200 (text/html, 1234 bytes: `<html>…`)": what came back, for an error message.
    pub(crate) fn describe(&self) -> String {
        const SHOWN: usize = 120;
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(SHOWN)]);
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        format!(
            "{} ({}, {} bytes: `{}{}`)",
            self.status,
            self.content_type.as_deref().unwrap_or("no content type"),
            self.body.len(),
            text.trim(),
            if self.body.len() > SHOWN { "…" } else { "" }
        )
    }
}

/// A configured client for one collector.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    base: String,
}

impl Transport {
    pub(crate) fn new(settings: &Settings) -> Result<Transport, DeliveryError> {
        let url = settings.url.as_deref().ok_or(DeliveryError::NoUrl)?;
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DeliveryError::BadUrl {
                url: url.to_owned(),
            });
        }
        let mut headers = HeaderMap::new();
        let bad_header = |what: &str| DeliveryError::BadUrl {
            url: format!("<{what} is not a valid header value>"),
        };
        headers.insert(
            "x-agentos-device",
            HeaderValue::from_str(&settings.device_id).map_err(|_| bad_header("device id"))?,
        );
        if !settings.device_binding.is_empty() {
            headers.insert(
                "x-agentos-device-binding",
                HeaderValue::from_str(&settings.device_binding)
                    .map_err(|_| bad_header("device binding"))?,
            );
        }
        if let Some(key) = &settings.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| bad_header("api key"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        if let Some(pack) = &settings.license_pack {
            let b64 = base64::engine::general_purpose::STANDARD.encode(pack);
            let mut v = HeaderValue::from_str(&b64).map_err(|_| bad_header("license pack"))?;
            v.set_sensitive(true);
            headers.insert("x-agentos-license", v);
        }
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("agentos/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(2)
            // Never follow a redirect: a 307/308 re-posts the event bodies and the license
            // header to wherever `Location` points. A 3xx is reported (see `classify`) so a
            // human can point the url at the final address.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(DeliveryError::Client)?;
        Ok(Transport { client, base })
    }

    /// POSTs `body` to `path`; `Ok` carries the 2xx answer (not yet checked: a 2xx from a
    /// proxy is not an acknowledgement).
    pub(crate) async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply, SendError> {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .body(body);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(network(&e)),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let header = |name| {
            resp.headers()
                .get(name)
                .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_type = header(CONTENT_TYPE);
        let location = header(LOCATION);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(network(&e)),
        };
        if status.is_success() {
            return Ok(Reply {
                status: status.as_u16(),
                content_type,
                body: bytes.to_vec(),
            });
        }
        if status.is_redirection() {
            return Err(redirected(status, location.as_deref()));
        }
        let err: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
            code: format!("http_{}", status.as_u16()),
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
        });
        Err(classify(status, err, retry_after))
    }
}

fn network(e: &reqwest::Error) -> SendError {
    let code = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "network"
    };
    // The chain carries the useful part ("connection reset by peer", …).
    let mut message = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        message.push_str(": ");
        message.push_str(&s.to_string());
        src = s.source();
    }
    SendError::Transient {
        code: code.to_owned(),
        message,
        retry_after: None,
    }
}

/// A 3xx: refused, naming where the server wanted the request to go. Following it would send
/// the events and the license to an address nobody configured.
fn redirected(status: StatusCode, location: Option<&str>) -> SendError {
    let s = status.as_u16();
    SendError::Refused {
        status: s,
        code: "redirect".to_owned(),
        message: format!(
            "the collector answered {s} redirecting to {}; uploads never follow redirects: set the collector url to the address that answers directly",
            location.unwrap_or("<no Location header>")
        ),
    }
}

fn classify(status: StatusCode, err: ErrorBody, retry_after: Option<Duration>) -> SendError {
    let s = status.as_u16();
    let code = if err.code.is_empty() {
        format!("http_{s}")
    } else {
        err.code
    };
    match s {
        // 409: the server's state cannot take the request now (protocol v1, whole-request
        // errors); it may later, so it is never a verdict on the content.
        408 | 409 | 425 | 429 => SendError::Transient {
            code: format!("http_{s}"),
            message: format!("{code}: {}", err.message),
            retry_after,
        },
        400 | 413 | 422 => SendError::Invalid {
            status: s,
            code,
            message: err.message,
        },
        500..=599 => SendError::Transient {
            code: format!("http_{s}"),
            message: format!("{code}: {}", err.message),
            retry_after,
        },
        _ => SendError::Refused {
            status: s,
            code,
            message: err.message,
        },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(v)
            .ok()?;
        let now = jiff::Timestamp::now();
        let ms = at
            .as_millisecond()
            .saturating_sub(now.as_millisecond())
            .max(0);
        Duration::from_millis(ms as u64)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Exponential backoff with jitter (backon), restarted after every success.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    iter: backon::ExponentialBackoff,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            iter: Self::build(min, max),
        }
    }

    fn build(min: Duration, max: Duration) -> backon::ExponentialBackoff {
        use backon::BackoffBuilder as _;
        backon::ExponentialBuilder::default()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.iter.next().unwrap_or(self.max)
    }

    /// Back to the first delay.
    pub(crate) fn reset(&mut self) {
        self.iter = Self::build(self.min, self.max);
    }

    /// The longest delay.
    pub(crate) fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Tue, 01 Jan 2002 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn statuses_are_classified_by_what_a_retry_can_fix() {
        let e = || ErrorBody::default();
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, e(), None),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, e(), None),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(StatusCode::CONFLICT, e(), None),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, e(), None),
            SendError::Invalid { .. }
        ));
        assert!(matches!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, e(), None),
            SendError::Invalid { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, e(), None),
            SendError::Refused { status: 401, .. }
        ));
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, e(), None),
            SendError::Refused { status: 403, .. }
        ));
    }

    #[test]
    fn redirects_are_refused_naming_the_location() {
        let e = redirected(
            StatusCode::TEMPORARY_REDIRECT,
            Some("https://elsewhere.invalid/v1/events"),
        );
        let SendError::Refused {
            status,
            code,
            message,
        } = e
        else {
            panic!("a redirect must stop delivery, got {e:?}");
        };
        assert_eq!((status, code.as_str()), (307, "redirect"));
        assert!(
            message.contains("https://elsewhere.invalid/v1/events"),
            "{message}"
        );
    }

    #[test]
    fn a_reply_describes_status_type_size_and_the_start_of_the_body() {
        let r = Reply {
            status: 200,
            content_type: Some("text/html".into()),
            body: b"<html>\n<body>proxy login</body></html>".to_vec(),
        };
        let d = r.describe();
        assert!(d.starts_with("200 (text/html, 38 bytes"), "{d}");
        assert!(d.contains("<html> <body>proxy login"), "{d}");
    }

    #[test]
    fn backoff_grows_within_bounds_and_restarts() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        // Jitter adds up to one extra delay on top of the exponential value.
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(10) && *d <= Duration::from_millis(160))
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(20));
    }
}
