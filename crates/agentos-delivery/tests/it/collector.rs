//! End to end against the real collector (agentos-collector over a SQLite file on loopback):
//! the protocol as both sides implement it, license header and API key included.

use std::time::Duration;

use agentos_collector::{AppState, Store, StoreOptions};
use agentos_core::license::Keyring;
use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, Settings, SummaryOutcome};
use agentos_recorder::recorder::{Recorder, StartRequest};
use serde_json::json;

use crate::support::{append_events, licensed_config};

#[test]
fn the_real_collector_stores_a_full_session_once_even_after_a_rescan() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = licensed_config(dir.path(), Tier::Full, &["telemetry_full"]);
        cfg.privacy.metadata_allowlist = vec!["team".into()];

        let db = format!("sqlite:{}", dir.path().join("collector.db").display());
        let store = Store::connect(&db, &StoreOptions::default())
            .await
            .expect("store");
        let mut keyring = Keyring::new();
        keyring
            .insert_base64("k1", &cfg.license.pubkeys["k1"])
            .expect("trust the pack's key");
        let (api_key, record) =
            agentos_collector::auth::generate_key("acme", jiff::Timestamp::now().as_microsecond())
                .expect("api key");
        store.insert_key(&record).await.expect("insert key");
        let state = AppState::builder(store, keyring).build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(agentos_collector::serve(listener, state.clone(), async {
            let _ = stop_rx.await;
        }));

        // The agent records a session with the recorder, then syncs.
        let mut rec = Recorder::open(cfg.clone()).expect("recorder");
        rec.start_session(StartRequest {
            repo_id: "repo-1".into(),
            tier: Some(Tier::Full),
            metadata: [
                ("team".to_string(), json!("core")),
                ("customer".to_string(), json!("ACME secret")),
            ]
            .into_iter()
            .collect(),
            ..StartRequest::default()
        })
        .expect("start");
        rec.end_session(Some("private".into())).expect("end");
        let data = cfg.data_dir.clone();
        append_events(&data, 3..=120, |_| Tier::Full);

        let mut s = Settings::from_config(&cfg).expect("settings");
        s.url = Some(url);
        s.api_key = Some(api_key);
        let (s_url, s_key) = (s.url.clone(), s.api_key.clone());
        s.batch_max_events = 50;
        let deadline = || Some(tokio::time::Instant::now() + Duration::from_secs(60));
        let report = {
            let mut d = Delivery::open(s.clone()).expect("open");
            d.sync(deadline()).await.expect("sync")
        };
        assert!(report.caught_up);
        assert_eq!(report.accepted, 120, "{report:?}");
        assert_eq!(
            report.rejected, 0,
            "the collector accepts our redaction: {report:?}"
        );
        assert_eq!(report.summary, Some(SummaryOutcome::Sent));

        // Corrupt the cursor: the rescan replays everything, the collector dedupes it.
        std::fs::write(data.join("delivery/cursor.json"), b"garbage").expect("corrupt");
        let again = {
            let mut d = Delivery::open(s).expect("open");
            d.sync(deadline()).await.expect("sync")
        };
        assert!(again.rescan.is_some());
        assert_eq!(again.accepted, 0);
        assert_eq!(again.duplicates, 120);

        let store = state.store();
        assert_eq!(store.event_count("acme").await.expect("count"), 120);
        let devices = store.devices("acme").await.expect("devices");
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].device_id, cfg.device_id().expect("device id"));
        assert_eq!(devices[0].coverage.watermark(), 120);
        assert!(devices[0].coverage.gaps().is_empty());
        let summaries = store.summaries("acme").await.expect("summaries");
        assert_eq!(summaries.len(), 1, "one device, one summary");

        // Held back by a lower tier, then forgotten on purpose; later events still arrive, and
        // the collector tells the forgotten seqs apart from lost ones.
        append_events(&data, 121..=130, |_| Tier::Full);
        let mut low = Settings::from_config(&cfg).expect("settings");
        low.url = s_url.clone();
        low.api_key = s_key.clone();
        low.tier = Some(Tier::Minimized);
        let held = Delivery::open(low.clone())
            .expect("open")
            .drain(deadline())
            .await
            .expect("drain");
        assert_eq!(held.held_pending, 10);
        Delivery::open(low)
            .expect("open")
            .forget(Tier::Full)
            .expect("forget");
        append_events(&data, 131..=135, |_| Tier::Full);
        let mut full = Settings::from_config(&cfg).expect("settings");
        full.url = s_url;
        full.api_key = s_key;
        let last = Delivery::open(full)
            .expect("open")
            .drain(deadline())
            .await
            .expect("drain");
        assert_eq!((last.accepted, last.forgotten), (5, 0), "{last:?}");
        let devices = store.devices("acme").await.expect("devices");
        assert_eq!(devices[0].forgotten.to_pairs(), vec![[121, 130]]);
        assert!(devices[0].held.is_empty());
        assert_eq!(devices[0].coverage.watermark(), 135);
        assert!(devices[0].coverage.gaps().is_empty());
        assert_eq!(store.event_count("acme").await.expect("count"), 125);

        let _ = stop_tx.send(());
        let _ = server.await;
    });
}
