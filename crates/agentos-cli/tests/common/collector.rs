//! The real collector (agentos-collector over a SQLite file) on loopback, for scenarios that go
//! over the wire. It runs on its own thread and runtime, so synchronous steps (and the async
//! cucumber runner) can start, stop and restart it, and read what it stored.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use agentos_collector::store::StoredEventRecord;
use agentos_collector::{AppState, Store, StoreOptions};
use agentos_core::license::Keyring;

/// The tenant every scenario's API key belongs to.
pub const TENANT: &str = "acme";

/// A running (or stopped) collector.
#[derive(Debug)]
pub struct Collector {
    pub url: String,
    pub api_key: String,
    db: String,
    trust: String,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn on_own_runtime<T: Send + 'static>(
    f: impl FnOnce(&tokio::runtime::Runtime) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        f(&rt)
    })
    .join()
    .expect("collector helper thread")
}

impl Collector {
    /// Starts a collector storing in `dir/collector.db` that trusts the keys in `trust`
    /// (`kid=base64,…`), with one API key for [`TENANT`].
    pub fn start(dir: &Path, trust: &str) -> Collector {
        let db = format!("sqlite:{}", dir.join("collector.db").display());
        let db2 = db.clone();
        let api_key = on_own_runtime(move |rt| {
            rt.block_on(async {
                let store = Store::connect(&db2, &StoreOptions::default())
                    .await
                    .expect("store");
                let (key, record) = agentos_collector::auth::generate_key(
                    TENANT,
                    jiff::Timestamp::now().as_microsecond(),
                )
                .expect("api key");
                store.insert_key(&record).await.expect("insert key");
                store.close().await;
                key
            })
        });
        let mut c = Collector {
            url: String::new(),
            api_key,
            db,
            trust: trust.to_string(),
            port: 0,
            stop: None,
            thread: None,
        };
        c.restart();
        c
    }

    /// Starts it again on the same port and database (after [`Collector::stop`]).
    pub fn restart(&mut self) {
        let (db, trust, port) = (self.db.clone(), self.trust.clone(), self.port);
        let (ready_tx, ready_rx) = mpsc::channel::<u16>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let store = Store::connect(&db, &StoreOptions::default())
                    .await
                    .expect("store");
                let mut keyring = Keyring::new();
                keyring.extend_from_env(&trust).expect("trusted keys");
                let state = AppState::builder(store, keyring).build();
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("bind loopback");
                let bound = listener.local_addr().expect("addr").port();
                let _ = ready_tx.send(bound);
                let _ = agentos_collector::serve(listener, state.clone(), async {
                    let _ = stop_rx.await;
                })
                .await;
                state.store().close().await;
            });
        });
        self.port = ready_rx.recv().expect("collector started");
        self.url = format!("http://127.0.0.1:{}", self.port);
        self.stop = Some(stop_tx);
        self.thread = Some(thread);
    }

    /// Stops it (graceful shutdown); the database stays.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// The stored events of `device`, in seq order.
    pub fn events(&self, device: &str) -> Vec<StoredEventRecord> {
        let (db, device) = (self.db.clone(), device.to_string());
        on_own_runtime(move |rt| {
            rt.block_on(async {
                let store = Store::connect(&db, &StoreOptions::default())
                    .await
                    .expect("store");
                let ev = store
                    .device_events(TENANT, &device, 1_000_000)
                    .await
                    .expect("events");
                store.close().await;
                ev
            })
        })
    }

    /// The latest summary body each device uploaded, by device.
    pub fn summaries(&self) -> Vec<(String, serde_json::Value)> {
        let db = self.db.clone();
        on_own_runtime(move |rt| {
            rt.block_on(async {
                let store = Store::connect(&db, &StoreOptions::default())
                    .await
                    .expect("store");
                let rows = store.summaries(TENANT).await.expect("summaries");
                store.close().await;
                rows.into_iter()
                    .map(|r| {
                        (
                            r.device_id,
                            serde_json::from_str(&r.body).expect("summary json"),
                        )
                    })
                    .collect()
            })
        })
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        PathBuf::from(self.db.trim_start_matches("sqlite:"))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}
