//! Several recorders (threads with separate instances, like separate processes) into one dir.

use agentos_core::tier::Tier;
use agentos_recorder::{Recorder, StartRequest};

use crate::support::{licensed_config, log_lines, seed_turn, summary};

#[test]
fn concurrent_recorders_never_interleave_and_the_rollup_counts_everyone() {
    const WRITERS: usize = 4;
    const TURNS: usize = 40;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = licensed_config(dir.path(), &[]);
    let mut first = Recorder::open(cfg.clone()).expect("open");
    first
        .start_session(StartRequest {
            tier: Some(Tier::Local),
            ..StartRequest::default()
        })
        .expect("start");
    drop(first);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let cfg = cfg.clone();
            s.spawn(move || {
                let mut rec = Recorder::open(cfg).expect("open");
                for _ in 0..TURNS {
                    rec.record_turn(seed_turn(&format!("model-{w}")))
                        .expect("turn");
                }
            });
        }
    });
    let lines = log_lines(&cfg.data_dir);
    let n = 1 + WRITERS * TURNS;
    assert_eq!(lines.len(), n);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=n as u64).collect::<Vec<_>>(),
        "seqs 1..N gap-free in file order"
    );
    let s = summary(&cfg.data_dir);
    assert_eq!(s["turns"], (WRITERS * TURNS) as u64);
    for w in 0..WRITERS {
        assert_eq!(s["models"][format!("model-{w}")]["turns"], TURNS as u64);
    }
    // The incremental summary equals a recompute from scratch.
    let r =
        agentos_recorder::log::recompute(&cfg.data_dir.join("windows.jsonl")).expect("recompute");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.state.rollup.turns, (WRITERS * TURNS) as u64);
    let state: agentos_recorder::LogState = serde_json::from_slice(
        &std::fs::read(cfg.data_dir.join("rollup_state.json")).expect("state"),
    )
    .expect("state parses");
    assert_eq!(state.rollup, r.state.rollup);
    assert_eq!(state.last_seq, n as u64);
}
