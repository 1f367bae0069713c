//! Shared state of the handlers: a cheap-to-clone handle over `Arc`s.

use std::sync::Arc;

use agentos_core::license::Keyring;

use crate::auth::KeyVerifier;
use crate::clock::{Clock, SystemClock};
use crate::ingest::Limits;
use crate::license::LicenseGate;
use crate::metrics::Metrics;
use crate::store::Store;
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
}

impl StateBuilder {
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

    pub(crate) fn now_us(&self) -> i64 {
        self.inner.clock.now_us()
    }
}
