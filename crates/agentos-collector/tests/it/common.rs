//! Test harness: a real collector on 127.0.0.1:0 over a real SQLite file or a fresh PostgreSQL
//! database, real API keys in its store, real Ed25519 license keys made here.

use std::sync::Arc;

use agentos_collector::clock::ManualClock;
use agentos_collector::{AppState, Limits, Quotas, Store, StoreOptions};
use agentos_core::event::{
    Envelope, EventBody, EventId, Feature, FeatureStatus, InputKind, SessionId, Turn, TurnEvent,
    TurnId,
};
use agentos_core::license::{
    Claims, Keyring, LICENSE_SCHEMA, Plan, issue_pack, signing_key_from_seed,
};
use agentos_core::privacy::{RedactionPolicy, egress_event};
use agentos_core::tier::Tier;
use agentos_test_support::pg::{PgDatabase, fresh_database};
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde_json::Value;

/// Fixed "now" of every test: 2026-11-24T20:00:00Z.
pub const NOW_US: i64 = 1_795_550_400_000_000;
pub const KID: &str = "test-2026";

pub struct Harness {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub signing: SigningKey,
    pub state: AppState,
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
    _pg: Option<Arc<PgDatabase>>,
}

pub struct Options {
    pub limits: Limits,
    pub quotas: Quotas,
    pub trust_keys: bool,
    pub store: StoreOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            quotas: Quotas::default(),
            trust_keys: true,
            store: StoreOptions::default(),
        }
    }
}

pub fn signing_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("os randomness");
    signing_key_from_seed(&seed)
}

impl Harness {
    pub async fn sqlite() -> anyhow::Result<Harness> {
        Self::sqlite_with(Options::default()).await
    }

    pub async fn sqlite_with(opts: Options) -> anyhow::Result<Harness> {
        let tmp = tempfile::tempdir()?;
        let url = format!("sqlite:{}", tmp.path().join("collector.db").display());
        Self::start(url, opts, Some(tmp), None, None).await
    }

    /// `None` only when PostgreSQL is unavailable and skipping was allowed (visibly).
    pub async fn postgres() -> anyhow::Result<Option<Harness>> {
        Self::postgres_with(Options::default()).await
    }

    pub async fn postgres_with(opts: Options) -> anyhow::Result<Option<Harness>> {
        let Some(db) = fresh_database().await? else {
            return Ok(None);
        };
        let url = db.url.clone();
        Ok(Some(
            Self::start(url, opts, None, Some(Arc::new(db)), None).await?,
        ))
    }

    /// A collector over `url` (a database the test set up itself: a SQLite file on a small
    /// filesystem, a private PostgreSQL cluster it stops and restarts).
    pub async fn at_url(url: String, opts: Options) -> anyhow::Result<Harness> {
        Self::start(url, opts, None, None, None).await
    }

    /// A second collector over the same database (scale-out), trusting the same license key.
    pub async fn sibling(&self) -> anyhow::Result<Harness> {
        let opts = Options {
            limits: self.state.limits(),
            ..Options::default()
        };
        Self::start(
            self.url.clone(),
            opts,
            None,
            self._pg.clone(),
            Some(self.signing.clone()),
        )
        .await
    }

    async fn start(
        url: String,
        opts: Options,
        tmp: Option<tempfile::TempDir>,
        pg: Option<Arc<PgDatabase>>,
        signing: Option<SigningKey>,
    ) -> anyhow::Result<Harness> {
        let store = Store::connect(&url, &opts.store).await?;
        let signing = signing.unwrap_or_else(signing_key);
        let mut keyring = Keyring::new();
        if opts.trust_keys {
            keyring.insert(KID, signing.verifying_key());
        }
        let clock = Arc::new(ManualClock::new(NOW_US));
        let state = AppState::builder(store, keyring)
            .clock(clock.clone())
            .limits(opts.limits)
            .quotas(opts.quotas)
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agentos_collector::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Ok(Harness {
            base,
            client: reqwest::Client::new(),
            clock,
            signing,
            state,
            url,
            shutdown: Some(tx),
            task: Some(task),
            _tmp: tmp,
            _pg: pg,
        })
    }

    /// Creates an API key for `tenant` the way `agentos ccc keys create` does.
    pub async fn key(&self, tenant: &str) -> anyhow::Result<String> {
        let (key, record) = agentos_collector::auth::generate_key(tenant, NOW_US)?;
        self.state.store().insert_key(&record).await?;
        Ok(key)
    }

    /// A license header value (base64 of a pack) signed with the trusted key.
    pub fn license(&self, features: &[&str]) -> String {
        self.license_signed(&self.signing, features, NOW_US / 1_000_000 + 86_400)
    }

    pub fn license_signed(&self, key: &SigningKey, features: &[&str], exp: i64) -> String {
        let claims = Claims {
            device: None,
            exp,
            features: features.iter().map(|s| s.to_string()).collect(),
            iat: Some(NOW_US / 1_000_000),
            kid: KID.into(),
            nonce: None,
            plan: Plan::Pro,
            schema: LICENSE_SCHEMA.into(),
            sub: None,
        };
        base64::engine::general_purpose::STANDARD.encode(issue_pack(key, &claims))
    }

    pub fn full(&self) -> String {
        self.license(&["telemetry_minimized", "telemetry_full"])
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        license: Option<&str>,
        device: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(l) = license {
            req = req.header("X-AgentOS-License", l);
        }
        if let Some(d) = device {
            req = req.header("X-AgentOS-Device", d);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    pub async fn post_events(&self, key: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(
            reqwest::Method::POST,
            "/v1/events",
            Some(key),
            Some(&self.full()),
            None,
            Some(serde_json::to_vec(body)?),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: &str) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::GET, path, Some(key), None, None, None)
            .await
    }

    /// Stops accepting, waits for in-flight requests, and returns the server's result.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A full-tier turn event, exactly as a client's egress produces it.
pub fn turn_at(
    seq: u64,
    recorded_at_us: i64,
    model: &str,
    tin: u64,
    tout: u64,
    latency_ms: f64,
) -> Value {
    let env = Envelope {
        event_id: EventId(uuid::Uuid::now_v7()),
        seq,
        recorded_at: jiff::Timestamp::from_microsecond(recorded_at_us).expect("valid time"),
        tier: Tier::Full,
        body: EventBody::Turn(TurnEvent {
            turn: Turn {
                turn_id: TurnId(format!("t{seq}")),
                session_id: SessionId("s1".into()),
                model: model.into(),
                subagent: String::new(),
                tokens_in: tin,
                tokens_out: tout,
                input_kind: InputKind::Text,
                latency_ms,
                ..Turn::default()
            },
            feature: Some(Feature {
                feature_id: "F1".into(),
                spec_ref: "spec#1".into(),
                status: FeatureStatus::Implemented,
                notes: Some("private notes".into()),
            }),
            ..TurnEvent::default()
        }),
    };
    egress_event(&env, Tier::Full, &RedactionPolicy::default()).expect("full tier may leave")
}

pub fn turn(seq: u64) -> Value {
    turn_at(
        seq,
        NOW_US - 60_000_000,
        "claude-haiku-4.5",
        100,
        50,
        1000.0,
    )
}

pub fn batch(device: &str, from: u64, to: u64, events: Vec<Value>) -> Value {
    serde_json::json!({
        "device_id": device,
        "batch_id": uuid::Uuid::now_v7().to_string(),
        "covers": {"from": from, "to": to},
        "events": events,
    })
}

/// Runs one test body against SQLite and against PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                let h = $crate::common::Harness::sqlite().await?;
                super::$name(&h).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                let Some(h) = $crate::common::Harness::postgres().await? else {
                    return Ok(());
                };
                super::$name(&h).await
            }
        }
    };
}
