//! A collector running inside another program: on its own thread and runtime, on a loopback
//! port of its own, stopped (gracefully) by [`Embedded::stop`] or on drop. Used by
//! `agentos demo` and by tests that need a real collector next to synchronous code.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc;

use agentos_core::license::Keyring;

use crate::{AppState, Store, StoreError, StoreOptions};

/// Why an embedded collector did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The database could not be opened or migrated.
    #[error("opening the collector database {database}: {source}")]
    Store {
        /// The database URL (credentials redacted).
        database: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The runtime, the listener or the thread could not be started.
    #[error("starting the embedded collector: {0}")]
    Start(String),
}

/// A running collector.
#[derive(Debug)]
pub struct Embedded {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Opens `database` (`sqlite:PATH` or `postgres://…`), trusts `keyring` for license packs,
    /// lets `setup` prepare the store (e.g. insert API keys) and serves on `listen` (port 0 for
    /// a free one) until stopped.
    ///
    /// # Errors
    /// [`EmbeddedError`] when the database, the runtime or the listener fails.
    pub fn start<F, Fut>(
        database: &str,
        keyring: Keyring,
        listen: SocketAddr,
        setup: F,
    ) -> Result<Embedded, EmbeddedError>
    where
        F: FnOnce(Store) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send,
    {
        let database = database.to_string();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, EmbeddedError>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("agentos-collector".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(EmbeddedError::Start(e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    let store_err = |source| EmbeddedError::Store {
                        database: crate::store::redact_url(&database),
                        source,
                    };
                    let store = match Store::connect(&database, &StoreOptions::default()).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(store_err(e)));
                            return;
                        }
                    };
                    if let Err(e) = setup(store.clone()).await {
                        let _ = ready_tx.send(Err(store_err(e)));
                        return;
                    }
                    let listener = match tokio::net::TcpListener::bind(listen).await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx
                                .send(Err(EmbeddedError::Start(format!("binding {listen}: {e}"))));
                            return;
                        }
                    };
                    let addr = listener.local_addr().unwrap_or(listen);
                    let state = AppState::builder(store, keyring).build();
                    let _ = ready_tx.send(Ok(addr));
                    let _ = crate::serve(listener, state.clone(), async {
                        let _ = stop_rx.await;
                    })
                    .await;
                    state.store().close().await;
                });
            })
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        let addr = ready_rx
            .recv()
            .map_err(|_| EmbeddedError::Start("the collector thread ended early".into()))??;
        Ok(Embedded {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully (requests in flight finish) and waits for its thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.stop();
    }
}
