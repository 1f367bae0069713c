//! One POST with the retry and classification rules every request of the protocol shares:
//! transient failures (network, 408/425/429/5xx) are waited out with backoff or `Retry-After`
//! until a deadline, a request the server cannot take as it is (400/413/422) is reported for the
//! caller to isolate, and anything a retry cannot fix (401/403/404…) stops delivery.
//!
//! Event batches and summary uploads, from the engine and from the lock-free
//! [`crate::upload_summary`], all go through [`Sender`].

use tokio::time::Instant;

use crate::error::DeliveryError;
use crate::outbox::state::DeliveryState;
use crate::settings::Settings;
use crate::transport::{Backoff, SendError, Transport};

/// The outcome of a POST that is retried through transient failures.
pub(crate) enum Posted {
    /// 2xx with this body.
    Ok(Vec<u8>),
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
pub(crate) enum Attempt {
    Done(Posted),
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

    /// One attempt. Transient failures are recorded in `state` (when given), waited out and
    /// answered with [`Attempt::Again`], or with [`Posted::OutOfTime`] when the wait would pass
    /// `deadline`.
    pub(crate) async fn post_once(
        &mut self,
        settings: &Settings,
        path: &'static str,
        body: &[u8],
        idempotency_key: Option<&str>,
        deadline: Option<Instant>,
        mut state: Option<&mut DeliveryState>,
    ) -> Result<Attempt, DeliveryError> {
        if self.transport.is_none() {
            self.transport = Some(Transport::new(settings)?);
        }
        let transport = self.transport.as_ref().ok_or(DeliveryError::NoUrl)?;
        match transport.post(path, body.to_vec(), idempotency_key).await {
            Ok(bytes) => {
                self.backoff.reset();
                if let Some(st) = state {
                    st.consecutive_failures = 0;
                }
                Ok(Attempt::Done(Posted::Ok(bytes)))
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

    /// Attempts until the server answers for good or `deadline` passes.
    pub(crate) async fn post(
        &mut self,
        settings: &Settings,
        path: &'static str,
        body: &[u8],
        idempotency_key: Option<&str>,
        deadline: Option<Instant>,
        mut state: Option<&mut DeliveryState>,
    ) -> Result<Posted, DeliveryError> {
        loop {
            match self
                .post_once(
                    settings,
                    path,
                    body,
                    idempotency_key,
                    deadline,
                    state.as_deref_mut(),
                )
                .await?
            {
                Attempt::Done(p) => return Ok(p),
                Attempt::Again => {}
            }
        }
    }
}
