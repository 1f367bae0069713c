//! A loopback HTTP server that implements the server side of wire protocol v1 (see
//! `docs/protocol.md`) just far enough to test an uploader against it, and records everything
//! it receives.
//!
//! What it does, on `127.0.0.1:0`, in its own thread and tokio runtime (so sync tests, async
//! tests and tests that spawn child processes can all use it):
//! - `POST /v1/events`: batch or bare-envelope form; dedupes by `event_id`; tracks per device the
//!   covered seqs (stored, duplicate, rejected, withheld via `covers`), the contiguous watermark
//!   and the gaps below the highest covered seq.
//! - `POST /v1/metrics`: accepts only the allowlisted summary keys
//!   ([`MINIMIZED_SUMMARY_FIELDS`], 422 naming any other key).
//! - Optional bearer key check (401), body limit (413), batch size limit (422).
//! - Counts TCP connections (a `local` tier must produce zero) and records every request.
//! - Programmable faults, consumed one per request in order: any status (e.g. 500), 429/503 with
//!   `Retry-After`, connection reset (RST instead of a response), stall (the request is processed
//!   and stored, then the answer is held past the client's timeout), whole-request 422, any raw
//!   answer (a proxy's `200` HTML page), a redirect.
//!
//! It is deliberately not the collector: no database, no licenses; state lives in memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use agentos_core::privacy::MINIMIZED_SUMMARY_FIELDS;
use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::{IncomingStream, Listener};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// One programmed misbehaviour, consumed by the next request (either endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// No fault: answer this request normally (lets a test place a fault after N good requests).
    Pass,
    /// Answer with this status and a JSON error body, without looking at the request.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: <secs>`.
    TooManyRequests {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// `503 Service Unavailable` with `Retry-After: <secs>`.
    Unavailable {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// Abort the TCP connection (RST) instead of answering.
    Reset,
    /// Process the request normally (events are stored), then hold the answer this long —
    /// longer than the client's timeout, so the client retries something that did arrive.
    Stall(Duration),
    /// Whole-request `422` (e.g. to make a client isolate events one by one).
    Unprocessable,
    /// Answer with exactly this status, `Content-Type` and body, without looking at the request
    /// (nothing is stored): a proxy's `200` HTML page, or JSON that lies about the batch.
    Raw {
        /// The status code.
        status: u16,
        /// The `Content-Type` header.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Answer with this 3xx status and `Location` (nothing is stored).
    Redirect {
        /// The status code, e.g. 307.
        status: u16,
        /// The `Location` header.
        location: String,
    },
}

/// Options for [`RecordingServer::start_with`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Required bearer key; `None` accepts any request.
    pub api_key: Option<String>,
    /// Keep request bodies and stored event bodies (turn off for million-event benchmarks).
    pub record_bodies: bool,
    /// Largest accepted body, bytes (protocol default 1 MiB).
    pub max_body_bytes: usize,
    /// Largest accepted batch, events (protocol default 1000).
    pub max_events: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            api_key: None,
            record_bodies: true,
            max_body_bytes: 1024 * 1024,
            max_events: 1000,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Request path, e.g. `/v1/events`.
    pub path: String,
    /// Status the server answered (for a reset: 0).
    pub status: u16,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `X-AgentOS-Device` header, if any.
    pub device: Option<String>,
    /// The `X-AgentOS-License` header, if any.
    pub license: Option<String>,
    /// The `Idempotency-Key` header, if any.
    pub idempotency_key: Option<String>,
    /// The raw body (empty when bodies are not recorded).
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON.
    ///
    /// # Errors
    /// When the body is not JSON (or was not recorded).
    pub fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// An event the server stored (first arrival of its `event_id`).
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Device the event came from.
    pub device: String,
    /// Its `seq`.
    pub seq: u64,
    /// Its `event_id`.
    pub event_id: String,
    /// Its `type`.
    pub kind: String,
    /// The event JSON as received (empty when bodies are not recorded).
    pub raw: String,
}

impl StoredEvent {
    /// The stored event parsed as JSON.
    ///
    /// # Errors
    /// When bodies were not recorded.
    pub fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.raw)?)
    }
}

#[derive(Default)]
struct DeviceState {
    /// Covered seqs (the protocol's range set, as the collector keeps it).
    covered: agentos_core::seq_ranges::SeqRanges,
    /// Covered seqs the client holds back (expected later).
    held: agentos_core::seq_ranges::SeqRanges,
    /// Covered seqs the client forgot on purpose.
    forgotten: agentos_core::seq_ranges::SeqRanges,
}

impl DeviceState {
    fn cover(&mut self, from: u64, to: u64) {
        self.covered.add(from, to);
    }

    fn watermark(&self) -> u64 {
        match self.covered.ranges().first() {
            Some(&(1, e)) => e,
            _ => 0,
        }
    }

    fn gaps(&self) -> Vec<[u64; 2]> {
        let mut gaps = Vec::new();
        let mut next = 1;
        for &(s, e) in self.covered.ranges() {
            if s > next {
                gaps.push([next, s - 1]);
            }
            next = e + 1;
        }
        gaps
    }
}

#[derive(Default)]
struct Inner {
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    events: Vec<StoredEvent>,
    seen: HashSet<String>,
    devices: HashMap<String, DeviceState>,
    metrics: Vec<(String, Value)>,
    duplicates: u64,
    rejected: u64,
    reject_seqs: HashSet<u64>,
    faults_served: u64,
}

struct Shared {
    opts: ServerOptions,
    inner: Mutex<Inner>,
    connections: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the server's state from the assertions.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running recording server; stops when dropped.
pub struct RecordingServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RecordingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RecordingServer {
    /// Starts a server with default options.
    ///
    /// # Errors
    /// When the loopback socket cannot be bound.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `opts` on `127.0.0.1:0`.
    ///
    /// # Errors
    /// When the loopback socket cannot be bound or the runtime cannot be built.
    pub fn start_with(opts: ServerOptions) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            opts,
            inner: Mutex::new(Inner::default()),
            connections: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("recording-server".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("recording server: {e}");
                            return;
                        }
                    };
                    let listener = FaultListener {
                        inner: listener,
                        shared: Arc::clone(&app_shared),
                    };
                    let app = Router::new()
                        .route("/v1/events", post(events))
                        .route("/v1/metrics", post(metrics))
                        .layer(DefaultBodyLimit::disable())
                        .with_state(app_shared);
                    let serve = axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<ConnHandle>(),
                    );
                    tokio::select! {
                        r = serve.into_future() => {
                            if let Err(e) = r { eprintln!("recording server: {e}"); }
                        }
                        _ = stop_rx => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues faults; each following request consumes one, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().faults.extend(faults);
    }

    /// Faults still queued.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Faults already served.
    pub fn faults_served(&self) -> u64 {
        self.shared.lock().faults_served
    }

    /// Makes every event with one of these seqs a per-event rejection (`code: "test_rejected"`).
    pub fn reject_seqs(&self, seqs: impl IntoIterator<Item = u64>) {
        self.shared.lock().reject_seqs.extend(seqs);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests to `path` so far.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Stored events (each `event_id` once), in arrival order.
    pub fn events(&self) -> Vec<StoredEvent> {
        self.shared.lock().events.clone()
    }

    /// Number of stored events.
    pub fn event_count(&self) -> usize {
        self.shared.lock().events.len()
    }

    /// Accepted `/v1/metrics` bodies with their device, in arrival order.
    pub fn metrics(&self) -> Vec<(String, Value)> {
        self.shared.lock().metrics.clone()
    }

    /// Events received again after being stored (idempotent replays).
    pub fn duplicates(&self) -> u64 {
        self.shared.lock().duplicates
    }

    /// Per-event rejections answered so far.
    pub fn rejected(&self) -> u64 {
        self.shared.lock().rejected
    }

    /// The device's contiguous watermark.
    pub fn watermark(&self, device: &str) -> u64 {
        self.shared
            .lock()
            .devices
            .get(device)
            .map_or(0, DeviceState::watermark)
    }

    /// The device's gaps below its highest covered seq.
    pub fn gaps(&self, device: &str) -> Vec<[u64; 2]> {
        self.shared
            .lock()
            .devices
            .get(device)
            .map_or_else(Vec::new, DeviceState::gaps)
    }

    /// Seqs the device reported as held back (and has not sent since).
    pub fn held(&self, device: &str) -> Vec<[u64; 2]> {
        self.shared
            .lock()
            .devices
            .get(device)
            .map_or_else(Vec::new, |d| d.held.to_pairs())
    }

    /// Seqs the device reported as forgotten on purpose.
    pub fn forgotten(&self, device: &str) -> Vec<[u64; 2]> {
        self.shared
            .lock()
            .devices
            .get(device)
            .map_or_else(Vec::new, |d| d.forgotten.to_pairs())
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Devices seen so far.
    pub fn devices(&self) -> Vec<String> {
        let mut d: Vec<String> = self.shared.lock().devices.keys().cloned().collect();
        d.sort();
        d
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connection plumbing: count accepts, and let a handler turn its connection into an RST.

struct FaultListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

#[derive(Clone, Debug)]
struct ConnHandle {
    kill: Arc<AtomicBool>,
}

impl Connected<IncomingStream<'_, FaultListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl Listener for FaultListener {
    type Io = FaultIo;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    self.shared.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    return (
                        FaultIo {
                            stream,
                            kill: Arc::clone(&kill),
                        },
                        ConnHandle { kill },
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnHandle {
            kill: Arc::new(AtomicBool::new(false)),
        })
    }
}

struct FaultIo {
    stream: TcpStream,
    kill: Arc<AtomicBool>,
}

impl FaultIo {
    fn killed(&self) -> Option<io::Error> {
        if self.kill.load(Ordering::SeqCst) {
            // Zero linger makes the close an RST, which is what a crashed proxy looks like.
            let _ = self.stream.set_zero_linger();
            Some(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "test fault: reset",
            ))
        } else {
            None
        }
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.killed() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers.

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// What a fault check decided before the real handler runs.
enum Gate {
    Proceed { stall: Option<Duration> },
    Answer(Response),
}

fn gate(shared: &Shared, conn: &ConnHandle, headers: &HeaderMap) -> Gate {
    let fault = {
        let mut inner = shared.lock();
        let f = inner.faults.pop_front();
        if f.is_some() {
            inner.faults_served += 1;
        }
        f
    };
    let answer = match fault {
        None | Some(Fault::Pass) => None,
        Some(Fault::Stall(d)) => return Gate::Proceed { stall: Some(d) },
        Some(Fault::Status(s)) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(error(status, "test_fault", format!("injected status {s}")))
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "injected 429",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            Some(r)
        }
        Some(Fault::Unavailable { retry_after_secs }) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "injected 503",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            Some(r)
        }
        Some(Fault::Reset) => {
            conn.kill.store(true, Ordering::SeqCst);
            Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reset",
                "never written",
            ))
        }
        Some(Fault::Unprocessable) => Some(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "test_fault",
            "injected whole-request 422 at /events",
        )),
        Some(Fault::Raw {
            status,
            content_type,
            body,
        }) => Some(
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                [(header::CONTENT_TYPE, content_type)],
                body,
            )
                .into_response(),
        ),
        Some(Fault::Redirect { status, location }) => Some(
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::TEMPORARY_REDIRECT),
                [(header::LOCATION, location)],
            )
                .into_response(),
        ),
    };
    if let Some(a) = answer {
        return Gate::Answer(a);
    }
    if let Some(key) = &shared.opts.api_key {
        let want = format!("Bearer {key}");
        if header_str(headers, "authorization").as_deref() != Some(want.as_str()) {
            return Gate::Answer(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong api key",
            ));
        }
    }
    Gate::Proceed { stall: None }
}

fn record(shared: &Shared, path: &str, status: u16, headers: &HeaderMap, body: &Bytes) {
    let req = RecordedRequest {
        path: path.to_owned(),
        status,
        authorization: header_str(headers, "authorization"),
        device: header_str(headers, "x-agentos-device"),
        license: header_str(headers, "x-agentos-license"),
        idempotency_key: header_str(headers, "idempotency-key"),
        body: if shared.opts.record_bodies {
            body.clone()
        } else {
            Bytes::new()
        },
    };
    shared.lock().requests.push(req);
}

async fn finish(
    shared: &Shared,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
    resp: Response,
    stall: Option<Duration>,
    conn: &ConnHandle,
) -> Response {
    let status = if conn.kill.load(Ordering::SeqCst) {
        0
    } else {
        resp.status().as_u16()
    };
    record(shared, path, status, headers, body);
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    resp
}

#[derive(Deserialize)]
struct CoversIn {
    from: u64,
    to: u64,
}

#[derive(Deserialize)]
struct TopIn<'a> {
    #[serde(rename = "type", default)]
    kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    covers: Option<CoversIn>,
    #[serde(default)]
    held: Vec<[u64; 2]>,
    #[serde(default)]
    forgotten: Vec<[u64; 2]>,
    #[serde(borrow, default)]
    events: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct EventHead {
    event_id: String,
    seq: u64,
    #[serde(rename = "type")]
    kind: String,
}

async fn events(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const PATH: &str = "/v1/events";
    let stall = match gate(&shared, &conn, &headers) {
        Gate::Answer(r) => return finish(&shared, PATH, &headers, &body, r, None, &conn).await,
        Gate::Proceed { stall } => stall,
    };
    let resp = handle_events(&shared, &headers, &body);
    finish(&shared, PATH, &headers, &body, resp, stall, &conn).await
}

fn handle_events(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    if body.len() > shared.opts.max_body_bytes {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "body of {} bytes is over the limit of {} bytes",
                body.len(),
                shared.opts.max_body_bytes
            ),
        );
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("{e} at line {} column {}", e.line(), e.column()),
        );
    }
    let mut top: TopIn<'_> = match serde_json::from_slice(body) {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("request shape invalid: {e}"),
            );
        }
    };
    let header_device = header_str(headers, "x-agentos-device");
    // The seed's form: one bare envelope.
    let held = std::mem::take(&mut top.held);
    let forgotten = std::mem::take(&mut top.forgotten);
    let (device, raws, covers): (String, Vec<&RawValue>, Option<(u64, u64)>) = if top.kind.is_some()
    {
        let raw: &RawValue = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
                    e.to_string(),
                );
            }
        };
        (
            header_device.unwrap_or_else(|| "default".into()),
            vec![raw],
            None,
        )
    } else {
        let Some(events) = top.events else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "missing array at /events",
            );
        };
        if events.len() > shared.opts.max_events {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "batch_too_large",
                format!(
                    "/events holds {} events, over the limit of {}",
                    events.len(),
                    shared.opts.max_events
                ),
            );
        }
        let device = top
            .device_id
            .or(header_device)
            .unwrap_or_else(|| "default".into());
        (device, events, top.covers.map(|c| (c.from, c.to)))
    };

    let mut inner = shared.lock();
    let inner = &mut *inner;
    let mut accepted = 0u64;
    let mut duplicates = 0u64;
    let mut rejected = Vec::new();
    let mut seqs = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let head: EventHead = match serde_json::from_str(raw.get()) {
            Ok(h) => h,
            Err(e) => {
                inner.rejected += 1;
                rejected.push(
                    json!({"event_id": null, "seq": null, "code": "invalid_event",
                    "reason": format!("/events/{i}: {e}")}),
                );
                continue;
            }
        };
        seqs.push(head.seq);
        if inner.reject_seqs.contains(&head.seq) {
            inner.rejected += 1;
            rejected.push(json!({"event_id": head.event_id, "seq": head.seq,
                "code": "test_rejected", "reason": format!("seq {} rejected by the test", head.seq)}));
            continue;
        }
        if inner.seen.contains(&head.event_id) {
            duplicates += 1;
            continue;
        }
        inner.seen.insert(head.event_id.clone());
        accepted += 1;
        inner.events.push(StoredEvent {
            device: device.clone(),
            seq: head.seq,
            event_id: head.event_id,
            kind: head.kind,
            raw: if shared.opts.record_bodies {
                raw.get().to_owned()
            } else {
                String::new()
            },
        });
    }
    inner.duplicates += duplicates;
    let dev = inner.devices.entry(device).or_default();
    for [a, b] in held {
        dev.cover(a.max(1), b);
        dev.held.add(a, b);
    }
    for [a, b] in forgotten {
        dev.cover(a.max(1), b);
        dev.held.remove(a, b);
        dev.forgotten.add(a, b);
    }
    for s in seqs {
        dev.cover(s, s);
        dev.held.remove(s, s);
    }
    if let Some((from, to)) = covers {
        dev.cover(from.max(1), to);
    }
    let body = json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "watermark": dev.watermark(),
        "gaps": dev.gaps(),
        "held": dev.held.to_pairs(),
        "forgotten": dev.forgotten.to_pairs(),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn metrics(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const PATH: &str = "/v1/metrics";
    let stall = match gate(&shared, &conn, &headers) {
        Gate::Answer(r) => return finish(&shared, PATH, &headers, &body, r, None, &conn).await,
        Gate::Proceed { stall } => stall,
    };
    let resp = handle_metrics(&shared, &headers, &body);
    finish(&shared, PATH, &headers, &body, resp, stall, &conn).await
}

fn handle_metrics(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("{e} at line {} column {}", e.line(), e.column()),
            );
        }
    };
    let Some(obj) = value.as_object() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "the summary must be a JSON object",
        );
    };
    if let Some(bad) = obj
        .keys()
        .find(|k| !MINIMIZED_SUMMARY_FIELDS.contains(&k.as_str()))
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "key_not_allowed",
            format!("key {bad:?} at /{bad} is not an allowlisted summary field"),
        );
    }
    let device = header_str(headers, "x-agentos-device").unwrap_or_else(|| "default".into());
    shared.lock().metrics.push((device, value));
    (StatusCode::OK, axum::Json(json!({"stored": true}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::DeviceState;

    #[test]
    fn covered_ranges_merge_and_report_gaps_below_the_top() {
        let mut d = DeviceState::default();
        d.cover(5, 7);
        d.cover(1, 2);
        assert_eq!(d.watermark(), 2);
        assert_eq!(d.gaps(), vec![[3, 4]]);
        d.cover(3, 4);
        assert_eq!(d.watermark(), 7);
        assert!(d.gaps().is_empty());
        d.cover(9, 9);
        d.cover(8, 8);
        assert_eq!(d.watermark(), 9);
        assert_eq!(d.covered.ranges().len(), 1);
    }
}
