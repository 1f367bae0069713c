//! Cost of recording one turn (validate + append + rollup update + summary refresh + state
//! file) with 1k, 100k and 1M turns already in the log.
//!
//! The logs are pre-built by writing valid envelope lines directly plus a matching
//! `rollup_state.json`, which is exactly what a long-running recorder leaves behind. Run with
//! `cargo bench -p agentos-recorder --bench record_turn` (set `AGENTOS_BENCH_SIZES=1000` to
//! pick sizes).

use std::hint::black_box;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use agentos_config::Config;
use agentos_core::event::{
    Envelope, EventBody, EventId, InputKind, Measurement, Session, SessionEvent, SessionId, Turn,
    TurnEvent, TurnId,
};
use agentos_core::tier::Tier;
use agentos_recorder::Recorder;
use agentos_recorder::log::LogState;
use agentos_recorder::recorder::{CurrentSession, Paths};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn turn(session: &SessionId, i: u64) -> TurnEvent {
    TurnEvent {
        turn: Turn {
            turn_id: TurnId(format!("t{i}")),
            session_id: session.clone(),
            model: if i.is_multiple_of(3) {
                "glm-4.6".into()
            } else {
                "claude-sonnet-4.5".into()
            },
            subagent: "main".into(),
            tokens_in: 1200,
            tokens_out: 300,
            input_kind: InputKind::Text,
            latency_ms: 850.0,
            attribution: Some(
                [("claude-sonnet-4.5".to_string(), 1.0)]
                    .into_iter()
                    .collect(),
            ),
            capacity_used: Some(0.5),
            cache_creation_tokens: None,
            cache_read_tokens: None,
            source: None,
        },
        measurement: Some(Measurement {
            cls: 1.2,
            impf: 4.5,
            churn_score: 0.1,
            feature_delta: 1.0,
            errors: None,
            error_count: None,
        }),
        feature: None,
        cost: None,
        value: None,
        decision: None,
    }
}

/// Writes a data dir holding one session and `turns` turns, plus the state file and the
/// current-session file, as a recorder would have left them.
fn prebuild(dir: &Path, turns: u64) -> SessionId {
    let paths = Paths::new(dir);
    let session_id = SessionId("bench-session".into());
    let mut state = LogState::default();
    let mut out = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&paths.windows).expect("create log"),
    );
    let now = jiff::Timestamp::now();
    let mut write = |state: &mut LogState, body: EventBody| {
        let env = Envelope {
            event_id: EventId(uuid::Uuid::now_v7()),
            seq: state.last_seq + 1,
            recorded_at: now,
            tier: Tier::Local,
            body,
        };
        let mut line = serde_json::to_vec(&env).expect("serialize");
        line.push(b'\n');
        out.write_all(&line).expect("write");
        state.covered_len += line.len() as u64;
        state.lines += 1;
        state.fold_event(&env, None, &mut Vec::new());
    };
    write(
        &mut state,
        EventBody::Session(SessionEvent {
            session: Session {
                session_id: session_id.clone(),
                repo_id: "r".into(),
                branch: "main".into(),
                commit: "c".into(),
                license_id: String::new(),
                privacy_tier: Tier::Local,
                created_at: now,
                metadata: None,
            },
        }),
    );
    for i in 0..turns {
        write(&mut state, EventBody::Turn(turn(&session_id, i)));
    }
    out.flush().expect("flush");
    drop(out);
    std::fs::write(&paths.state, serde_json::to_vec(&state).expect("state")).expect("write state");
    let current = CurrentSession {
        session_id: session_id.clone(),
        tier: Tier::Local,
        requested_tier: Tier::Local,
        created_at: now,
    };
    std::fs::write(
        &paths.session,
        serde_json::to_vec(&current).expect("session"),
    )
    .expect("write session");
    session_id
}

fn sizes() -> Vec<u64> {
    match std::env::var("AGENTOS_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1_000, 100_000, 1_000_000],
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("record_turn");
    g.sample_size(50);
    for n in sizes() {
        for fsync in [false, true] {
            if fsync && n != 1_000 {
                continue; // fsync cost does not depend on the log size; measure it once
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let session = prebuild(dir.path(), n);
            let mut cfg = Config::with_data_dir(dir.path());
            cfg.recorder.fsync = fsync;
            let mut rec = Recorder::open(cfg).expect("open");
            // First record loads the state file and catches up (nothing to catch up here).
            let first = rec.record_turn(turn(&session, 0)).expect("first record");
            assert!(first.warnings.is_empty(), "{:?}", first.warnings);
            assert_eq!(first.seq, n + 2);
            let id = if fsync {
                format!("{n}_fsync")
            } else {
                n.to_string()
            };
            let mut i = 0u64;
            g.bench_with_input(BenchmarkId::from_parameter(id), &n, |b, _| {
                b.iter(|| {
                    i += 1;
                    black_box(rec.record_turn(turn(&session, i)).expect("record"));
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
