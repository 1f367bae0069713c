//! The connection layer: an HTTP/1.1 accept loop that bounds what any client, authenticated or
//! not, can make the server hold.
//!
//! - **Connections:** at most [`Limits::max_connections`] at once. One more is answered `503`
//!   with `Retry-After` and closed without reading anything.
//! - **Header and idle timeout:** a connection must deliver a request's complete header within
//!   [`Limits::header_timeout`], counted from when the server starts waiting for it — which is
//!   also how long a kept-alive connection may sit idle between requests. Header bytes are
//!   bounded by [`MAX_HEADER_BUFFER`].
//! - **Bodies:** read only after the key and license were checked (see `routes`), at most
//!   [`Limits::max_inflight_bodies`] at once (`503` beyond), each within `body_bytes` and within
//!   the request timeout ([`crate::REQUEST_TIMEOUT`], `408`).
//! - **Shutdown:** stop accepting, let in-flight requests finish, and after
//!   [`Limits::shutdown_grace`] close whatever is still open, whatever its client is doing.
//!
//! Memory under a flood is therefore bounded by about
//! `max_connections × MAX_HEADER_BUFFER + max_inflight_bodies × 3 × body_bytes` (a body, its
//! parsed form and the rows built from it): 64 MiB + 96 MiB with the defaults.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ingest::Limits;

/// Most bytes buffered for one connection's request header (hyper's read buffer); a longer
/// header is refused with `431`.
pub const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// How long the answer to a connection over the cap may take to write before it is dropped.
const OVERFLOW_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole answer to a connection over [`Limits::max_connections`].
const OVERFLOW_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 68\r\n\r\n\
{\"code\":\"unavailable\",\"message\":\"too many connections, retry later\"}";

/// Serves `app` on `listener` under `limits` until `shutdown` resolves; then stops accepting,
/// lets in-flight requests finish and closes what is left after [`Limits::shutdown_grace`].
///
/// # Errors
/// None today (accept errors such as EMFILE are logged and retried); the `Result` leaves room.
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut overflow = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let app = app.clone();
                        let closing = closing_rx.clone();
                        conns.spawn(async move {
                            serve_connection(stream, app, limits, closing).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        // Bounded too: at most one in flight per free overflow slot.
                        if overflow.len() < limits.max_connections.max(1) {
                            overflow.spawn(refuse(stream));
                        }
                    }
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            Some(_) = overflow.join_next(), if !overflow.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    overflow.abort_all();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "closing connections still open after the shutdown grace period"
        );
        conns.shutdown().await;
    }
    Ok(())
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(OVERFLOW_WRITE_TIMEOUT, async {
        let _ = stream.write_all(OVERFLOW_RESPONSE).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BUFFER)
        .keep_alive(true);
    let service = TowerToHyperService::new(app);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = closing.changed() => {
                // Finish the request in flight (if any), then close; keep polling until then.
                conn.as_mut().graceful_shutdown();
                if changed.is_err() || *closing.borrow() {
                    let _ = conn.as_mut().await;
                    return;
                }
            }
        }
    }
}
