//! One POST with the retry and classification rules every request of the protocol shares:
//! transient failures (network, 408/425/429/5xx, and a 2xx that is not a valid acknowledgement
//! of this request) are waited out with backoff or `Retry-After` until a deadline, a request the server cannot take as it is (400/413/422) is reported for the
//! caller to isolate, and anything a retry cannot fix (401/403/404…) stops delivery.
//!
//! Event batches and summary uploads, from the engine and from the lock-free
//! [`crate::upload_summary`], all go through [`Sender`].

use tokio::time::Instant;

use crate::error::DeliveryError;
use crate::outbox::state::DeliveryState;
use crate::settings::Settings;
use crate::transport::{Backoff, Reply, SendError, Transport};

/// The outcome of a POST that is retried through transient failures.
pub(crate) enum Posted<T> {
    /// A 2xx that the caller's check accepted as an acknowledgement, as that check read it.
    Ok(T),
    /// The server refused this request's content (400/413/422).
    Invalid {
        status: u16,
        code: String,
        message: String,
    },
    /// The deadline passed before the server acknowledged.
    OutOfTime,
}

/// Result of one attempt.
pub(crate) enum Attempt<T> {
    Done(Posted<T>),
    /// A transient failure was waited out; try again (after re-checking what may leave).
    Again,
}

/// The HTTP side of delivery: a lazily built client and the backoff between attempts.
#[derive(Debug)]
pub(crate) struct Sender {
    transport: Option<Transport>,
    backoff: Backoff,
}

impl Sender {
    pub(crate) fn new(settings: &Settings) -> Sender {
        Sender {
            // Built on first use, so a bad or missing URL only matters once something may
            // actually leave (tier local never needs one).
            transport: None,
            backoff: Backoff::new(settings.backoff_min, settings.backoff_max),
        }
    }

    /// The longest backoff delay.
    pub(crate) fn max_backoff(&self) -> std::time::Duration {
        self.backoff.max()
    }

    /// One attempt. A 2xx counts only when `ack` accepts its body (it says why not otherwise: a
    /// proxy's HTML page, counts that do not match the request); one it refuses is transient.
    /// Transient failures are recorded in `state` (when given), waited out and answered with
    /// [`Attempt::Again`], or with [`Posted::OutOfTime`] when the wait would pass `deadline`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one request's whole context: where, what, how long and how to read the answer"
    )]
    pub(crate) async fn post_once<T>(
        &mut self,
        settings: &Settings,
        path: &'static str,
        body: &[u8],
        idempotency_key: Option<&str>,
        deadline: Option<Instant>,
        mut state: Option<&mut DeliveryState>,
        ack: &(dyn Fn(&[u8]) -> Result<T, String> + Sync),
    ) -> Result<Attempt<T>, DeliveryError> {
        if self.transport.is_none() {
            self.transport = Some(Transport::new(settings)?);
        }
        let transport = self.transport.as_ref().ok_or(DeliveryError::NoUrl)?;
        let request = transport.post(path, body.to_vec(), idempotency_key);
        // The deadline bounds the request in flight too, not only the waits between attempts:
        // a slow answer must not stretch `sync --timeout` by a whole per-request timeout. A
        // request cut off here may still be stored; its retry is a replay (same batch id).
        let reply = match deadline {
            Some(d) => match tokio::time::timeout_at(d, request).await {
                Ok(reply) => reply,
                Err(_) => {
                    if let Some(st) = state.as_deref_mut() {
                        st.note_error("timeout", "the sync deadline passed during a request");
                    }
                    return Ok(Attempt::Done(Posted::OutOfTime));
                }
            },
            None => request.await,
        };
        let sent = reply.and_then(|reply| checked(path, &reply, ack));
        match sent {
            Ok(value) => {
                self.backoff.reset();
                if let Some(st) = state {
                    st.consecutive_failures = 0;
                }
                Ok(Attempt::Done(Posted::Ok(value)))
            }
            Err(SendError::Transient {
                code,
                message,
                retry_after,
            }) => {
                if let Some(st) = state.as_deref_mut() {
                    st.note_error(&code, &message);
                    st.retries_total += 1;
                }
                let delay = retry_after.unwrap_or_else(|| self.backoff.next_delay());
                tracing::info!(%code, %message, delay_ms = delay.as_millis() as u64, "transient delivery failure; retrying");
                if let Some(d) = deadline
                    && Instant::now() + delay >= d
                {
                    return Ok(Attempt::Done(Posted::OutOfTime));
                }
                tokio::time::sleep(delay).await;
                Ok(Attempt::Again)
            }
            Err(SendError::Invalid {
                status,
                code,
                message,
            }) => {
                if let Some(st) = state {
                    st.note_error(&code, &message);
                }
                Ok(Attempt::Done(Posted::Invalid {
                    status,
                    code,
                    message,
                }))
            }
            Err(SendError::Refused {
                status,
                code,
                message,
            }) => {
                if let Some(st) = state {
                    st.note_error(&code, &message);
                }
                Err(DeliveryError::Refused {
                    path,
                    status,
                    code,
                    message,
                })
            }
        }
    }

    /// Attempts until the server answers for good (an acknowledgement `ack` accepts, or a
    /// refusal) or `deadline` passes.
    #[expect(
        clippy::too_many_arguments,
        reason = "as post_once, whose arguments it passes on"
    )]
    pub(crate) async fn post<T>(
        &mut self,
        settings: &Settings,
        path: &'static str,
        body: &[u8],
        idempotency_key: Option<&str>,
        deadline: Option<Instant>,
        mut state: Option<&mut DeliveryState>,
        ack: &(dyn Fn(&[u8]) -> Result<T, String> + Sync),
    ) -> Result<Posted<T>, DeliveryError> {
        loop {
            match self
                .post_once(
                    settings,
                    path,
                    body,
                    idempotency_key,
                    deadline,
                    state.as_deref_mut(),
                    ack,
                )
                .await?
            {
                Attempt::Done(p) => return Ok(p),
                Attempt::Again => {}
            }
        }
    }
}

/// A 2xx is an acknowledgement only if `ack` reads it as one; otherwise it is a transient
/// failure (`bad_ack`) naming what came back, so the cursor stays where it is and the request is
/// sent again (the server dedupes it if it did arrive).
fn checked<T>(
    path: &str,
    reply: &Reply,
    ack: &(dyn Fn(&[u8]) -> Result<T, String> + Sync),
) -> Result<T, SendError> {
    ack(&reply.body).map_err(|why| SendError::Transient {
        code: "bad_ack".to_owned(),
        message: format!(
            "{path} answered {} which is not an acknowledgement of this request: {why}",
            reply.describe()
        ),
        retry_after: None,
    })
}
