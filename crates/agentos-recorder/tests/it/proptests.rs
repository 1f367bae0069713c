//! The incremental rollup and a full recompute agree on random event sequences, including
//! other writers appending meanwhile and torn tails.

use std::io::Write as _;

use agentos_core::event::{Measurement, TurnEvent};
use agentos_core::tier::Tier;
use agentos_recorder::{Recorder, StartRequest};
use proptest::prelude::*;

use crate::support::{licensed_config, seed_turn};

#[derive(Debug, Clone)]
enum Op {
    Start,
    Turn {
        model: u8,
        capacity: Option<u16>,
        measured: Option<(i16, u16, i16, i8)>,
        tokens: (u32, u32),
        by_other: bool,
    },
    End,
    Torn,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Start),
        6 => (
            0u8..4,
            proptest::option::of(0u16..1000),
            proptest::option::of((any::<i16>(), any::<u16>(), any::<i16>(), any::<i8>())),
            (0u32..100_000, 0u32..100_000),
            any::<bool>(),
        )
            .prop_map(|(model, capacity, measured, tokens, by_other)| Op::Turn {
                model,
                capacity,
                measured,
                tokens,
                by_other,
            }),
        1 => Just(Op::End),
        1 => Just(Op::Torn),
    ]
}

fn turn(
    model: u8,
    capacity: Option<u16>,
    measured: Option<(i16, u16, i16, i8)>,
    tokens: (u32, u32),
) -> TurnEvent {
    let names = ["glm-4.6", "claude-sonnet", "gpt-5", "GLM-air"];
    let mut t = seed_turn(names[model as usize % names.len()]);
    t.turn.capacity_used = capacity.map(|c| f64::from(c) / 7.0);
    t.turn.tokens_in = u64::from(tokens.0);
    t.turn.tokens_out = u64::from(tokens.1);
    t.measurement = measured.map(|(cls, impf, churn, delta)| Measurement {
        cls: f64::from(cls) / 3.0,
        impf: f64::from(impf) / 11.0,
        churn_score: f64::from(churn) / 13.0,
        feature_delta: f64::from(delta),
        errors: None,
        error_count: None,
    });
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_rollup_equals_full_recompute(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = licensed_config(dir.path(), &[]);
        let log = cfg.data_dir.join("windows.jsonl");
        let mut main = Recorder::open(cfg.clone()).expect("open");
        let mut other = Recorder::open(cfg.clone()).expect("open");
        let mut session = false;
        let mut valid = 0u64;
        for op in ops {
            match op {
                Op::Start => {
                    main.start_session(StartRequest { tier: Some(Tier::Local), ..StartRequest::default() }).expect("start");
                    session = true;
                    valid += 1;
                }
                Op::Turn { model, capacity, measured, tokens, by_other } if session => {
                    let rec = if by_other { &mut other } else { &mut main };
                    rec.record_turn(turn(model, capacity, measured, tokens)).expect("turn");
                    valid += 1;
                }
                Op::End if session => {
                    main.end_session(None).expect("end");
                    other = Recorder::open(cfg.clone()).expect("reopen");
                    session = false;
                    valid += 1;
                }
                Op::Torn if log.exists() => {
                    std::fs::OpenOptions::new().append(true).open(&log).expect("open")
                        .write_all(b"{\"type\":\"turn\",\"seq\":").expect("tear");
                }
                _ => {}
            }
        }
        // One more record through `main` folds anything others appended.
        if !session {
            main.start_session(StartRequest::default()).expect("start");
            valid += 1;
        }
        main.record_turn(turn(0, Some(1), None, (1, 1))).expect("final turn");
        valid += 1;
        main.flush().expect("flush");
        let rc = agentos_recorder::log::recompute(&log).expect("recompute");
        let inc = main.state().expect("state");
        prop_assert_eq!(&inc.rollup, &rc.state.rollup);
        prop_assert_eq!(inc.last_seq, valid);
        prop_assert_eq!(rc.state.last_seq, valid);
        prop_assert_eq!(rc.state.events, valid);
        prop_assert_eq!(inc.covered_len, std::fs::metadata(&log).expect("meta").len());
        let on_disk: serde_json::Value = serde_json::from_slice(&std::fs::read(cfg.data_dir.join("metrics_summary.json")).expect("summary")).expect("json");
        // The summary depends on when it was generated (the churn trend's windows end that day).
        let at: jiff::Timestamp = on_disk["generated_at"].as_str().expect("generated_at").parse().expect("timestamp");
        let want = serde_json::to_value(rc.state.rollup.summary(at)).expect("json");
        prop_assert_eq!(on_disk, want);
    }
}
