//! The data-dir layout names every file, and the typed `[collector]`/`[ingest]` sections.

use std::path::Path;

use agentos_config::{Config, DataDir, Env};

#[test]
fn every_file_of_the_data_dir_is_named_in_one_place() {
    let d = DataDir::new("/d");
    let cases = [
        (d.config_file(), "/d/agentos.toml"),
        (d.device_id(), "/d/device_id"),
        (d.windows(), "/d/windows.jsonl"),
        (d.glm_counts(), "/d/glm_counts.jsonl"),
        (d.summary(), "/d/metrics_summary.json"),
        (d.rollup_state(), "/d/rollup_state.json"),
        (d.current_session(), "/d/current_session.json"),
        (d.recorder_lock(), "/d/recorder.lock"),
        (d.delivery_dir(), "/d/delivery"),
        (d.delivery_cursor(), "/d/delivery/cursor.json"),
        (d.delivery_state(), "/d/delivery/state.json"),
        (d.delivery_rejected(), "/d/delivery/rejected.jsonl"),
        (d.delivery_summary_sent(), "/d/delivery/summary_sent.json"),
        (d.delivery_lock(), "/d/delivery/uploader.lock"),
        (d.ingest_dir(), "/d/ingest"),
        (d.backfill_skipped(), "/d/ingest/backfill-skipped.jsonl"),
        (d.ccp_summary(), "/d/ccp_metrics_summary.json"),
        (d.collector_db(), "/d/collector.db"),
        (d.keys_dir(), "/d/keys"),
    ];
    for (got, want) in cases {
        assert_eq!(got, Path::new(want));
    }
    assert_eq!(d.root(), Path::new("/d"));
    assert_eq!(Config::with_data_dir("/d").layout(), d);
}

#[test]
fn the_config_file_in_the_data_dir_is_found_by_its_layout_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = DataDir::new(dir.path());
    std::fs::write(d.config_file(), "[ccc]\nurl = \"http://x\"\n").expect("write");
    let cfg = Config::load_with_env(Some(dir.path()), None, &Env::default()).expect("load");
    assert_eq!(cfg.config_file, Some(d.config_file()));
    assert_eq!(cfg.ccc.url.as_deref(), Some("http://x"));
}

#[test]
fn collector_and_ingest_sections_are_typed_and_reject_unknown_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("agentos.toml");
    std::fs::write(
        &p,
        r#"
[collector]
listen = "127.0.0.1:9000"
database = "sqlite:/x.db"
quotas = "q.json"
body_limit = 2048
batch_limit = 10
max_connections = 4
[ingest]
threads = 2
prices = "prices.json"
timezone = "Europe/Paris"
"#,
    )
    .expect("write");
    let cfg = Config::load_with_env(Some(dir.path()), Some(&p), &Env::default()).expect("load");
    assert_eq!(cfg.collector.listen, "127.0.0.1:9000".parse().ok());
    assert_eq!(cfg.collector.database.as_deref(), Some("sqlite:/x.db"));
    assert_eq!(cfg.collector.quotas.as_deref(), Some(Path::new("q.json")));
    assert_eq!(cfg.collector.body_limit, Some(2048));
    assert_eq!(cfg.collector.batch_limit, Some(10));
    assert_eq!(cfg.collector.max_connections, Some(4));
    assert_eq!(cfg.ingest.threads, Some(2));
    assert_eq!(cfg.ingest.prices.as_deref(), Some(Path::new("prices.json")));
    assert_eq!(cfg.ingest.timezone.as_deref(), Some("Europe/Paris"));

    for (section, typo) in [("collector", "listn"), ("ingest", "thread")] {
        std::fs::write(&p, format!("[{section}]\n{typo} = 1\n")).expect("write");
        let err = Config::load_with_env(Some(dir.path()), Some(&p), &Env::default())
            .expect_err("unknown key");
        assert_eq!(err.code(), "config_parse");
        assert!(err.to_string().contains(typo), "{err}");
    }
}
