//! Shared state of the handlers: a cheap-to-clone handle over `Arc`s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentos_core::license::Keyring;
use agentos_ingest::pricing::PriceTable;

use crate::auth::KeyVerifier;
use crate::clock::{Clock, SystemClock};
use crate::error::ErrorChain;
use crate::ingest::Limits;
use crate::license::LicenseGate;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::usage::Quotas;

/// Everything a handler needs. Clone freely.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) licenses: LicenseGate,
    pub(crate) keys: KeyVerifier,
    pub(crate) quotas: Quotas,
    pub(crate) metrics: Metrics,
    pub(crate) limits: Limits,
    pub(crate) write_health: WriteHealth,
    /// One permit per request body that may be in memory at once.
    pub(crate) bodies: Arc<tokio::sync::Semaphore>,
    /// This process's row in `readiness_probe`.
    pub(crate) instance: String,
    /// Prices for turns that did not carry their cost.
    pub(crate) prices: PriceTable,
    /// Dashboard cookies always carry `Secure` (else only when the proxy says https).
    pub(crate) secure_cookies: bool,
    /// Local mode: pages need no sign-in and read this principal's tenant.
    pub(crate) local_ui: Option<crate::auth::Principal>,
    /// Limits of the OTLP listener.
    pub(crate) otlp: crate::otlp::OtlpLimits,
    /// One permit per OTLP request being processed (back-pressure: 429 beyond).
    pub(crate) otlp_permits: Arc<tokio::sync::Semaphore>,
}

/// How long `/readyz` stays 503 after a write failed for lack of room or connection, unless a
/// later write succeeds first. A one-row readiness probe can still commit when a batch cannot
/// (it rewrites an existing page; a WAL file may have room for one frame but not a batch), so
/// readiness also remembers real failures: the load balancer stops sending traffic, and the
/// instance offers itself again after this hold when its probe commits.
pub const WRITE_FAILURE_HOLD: Duration = Duration::from_secs(10);

/// The latest transient write failure, cleared by the next write that commits.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    failed: Mutex<Option<(Instant, String)>>,
}

impl WriteHealth {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(Instant, String)>> {
        // The value is a plain timestamp: a panic elsewhere cannot leave it inconsistent.
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the outcome of a write that carried client data.
    pub(crate) fn record<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => *self.slot() = None,
            Err(e) if e.is_transient() => {
                *self.slot() = Some((Instant::now(), ErrorChain(e).to_string()));
            }
            // A content problem (a fragmented device) says nothing about the database.
            Err(_) => {}
        }
    }

    /// The failure readiness must report: one less than [`WRITE_FAILURE_HOLD`] old.
    pub(crate) fn recent_failure(&self) -> Option<String> {
        self.slot()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < WRITE_FAILURE_HOLD)
            .map(|(_, why)| why.clone())
    }
}

/// Builder for [`AppState`].
#[derive(Debug)]
pub struct StateBuilder {
    store: Store,
    keyring: Keyring,
    clock: Arc<dyn Clock>,
    quotas: Quotas,
    limits: Limits,
    metrics: Metrics,
    prices: PriceTable,
    secure_cookies: bool,
    local_ui: Option<crate::auth::Principal>,
    otlp: crate::otlp::OtlpLimits,
}

impl StateBuilder {
    /// Limits of the OTLP listener (default: [`crate::otlp::OtlpLimits::default`]).
    #[must_use]
    pub fn otlp(mut self, limits: crate::otlp::OtlpLimits) -> Self {
        self.otlp = limits;
        self
    }

    /// Marks dashboard cookies `Secure` whatever the request says (a collector that is only
    /// reachable over TLS).
    #[must_use]
    pub fn secure_cookies(mut self, on: bool) -> Self {
        self.secure_cookies = on;
        self
    }

    /// Local mode (`agentos ui`): the pages need no sign-in and show `tenant`. Only for a
    /// server bound to loopback.
    #[must_use]
    pub fn local_ui(mut self, tenant: &str) -> Self {
        self.local_ui = Some(crate::auth::Principal {
            tenant: tenant.to_string(),
            role: crate::auth::Role::Viewer,
            key_id: String::new(),
        });
        self
    }

    /// Prices turns without a cost from `prices` (default: the embedded table).
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Uses `clock` instead of the system clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Budgets for `/v1/usage` (default: the CCC defaults, no models configured).
    #[must_use]
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Body and batch limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Shares an existing metrics registry (e.g. across restarts in one process).
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Finishes the state.
    pub fn build(self) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                licenses: LicenseGate::new(self.keyring),
                keys: KeyVerifier::default(),
                quotas: self.quotas,
                metrics: self.metrics,
                limits: self.limits,
                write_health: WriteHealth::default(),
                bodies: Arc::new(tokio::sync::Semaphore::new(
                    self.limits.max_inflight_bodies.max(1),
                )),
                instance: uuid::Uuid::now_v7().to_string(),
                prices: self.prices,
                secure_cookies: self.secure_cookies,
                local_ui: self.local_ui,
                otlp: self.otlp,
                otlp_permits: Arc::new(tokio::sync::Semaphore::new(self.otlp.max_inflight)),
            }),
        }
    }
}

impl AppState {
    /// Starts building a state over `store`, trusting license keys in `keyring`.
    pub fn builder(store: Store, keyring: Keyring) -> StateBuilder {
        StateBuilder {
            store,
            keyring,
            clock: Arc::new(SystemClock),
            quotas: Quotas::default(),
            limits: Limits::default(),
            metrics: Metrics::new(),
            prices: PriceTable::embedded(),
            secure_cookies: false,
            local_ui: None,
            otlp: crate::otlp::OtlpLimits::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The OTLP listener's limits.
    pub fn otlp_limits(&self) -> crate::otlp::OtlpLimits {
        self.inner.otlp
    }

    pub(crate) fn now_us(&self) -> i64 {
        self.inner.clock.now_us()
    }
}
