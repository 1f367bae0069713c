//! Property: whatever the interleaving of appends (random recorded tiers, torn tails completed
//! later), server faults, per-event rejections, short-deadline syncs, cursor corruption and
//! restarts, once the server recovers it holds every `full` event exactly once, in seq order,
//! each either stored or logged as rejected, and its watermark covers the log without gaps.

use std::collections::BTreeSet;
use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::Delivery;
use agentos_test_support::http::{Fault, RecordingServer};
use proptest::prelude::*;

use crate::support::{DEVICE, append_raw, rt, settings, turn_envelope};

#[derive(Debug, Clone)]
enum Step {
    /// Append events with these recorded tiers.
    Append(Vec<Tier>),
    /// Append an event in two halves, the second half only at the next step.
    AppendTorn(Tier),
    /// Queue server faults.
    Faults(Vec<Fault>),
    /// Sync with a short deadline (may stop mid-backlog).
    Sync,
    /// Overwrite the cursor with garbage.
    CorruptCursor,
}

fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![
        1 => Just(Tier::Local),
        1 => Just(Tier::Minimized),
        3 => Just(Tier::Full),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::Pass),
        2 => Just(Fault::Status(500)),
        1 => Just(Fault::Status(503)),
        1 => Just(Fault::TooManyRequests { retry_after_secs: 0 }),
        1 => Just(Fault::Reset),
        1 => Just(Fault::Stall(Duration::from_millis(400))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(tier(), 1..40).prop_map(Step::Append),
        1 => tier().prop_map(Step::AppendTorn),
        2 => prop::collection::vec(fault(), 1..6).prop_map(Step::Faults),
        3 => Just(Step::Sync),
        1 => Just(Step::CorruptCursor),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_history_of_faults_and_restarts_converges_to_exactly_once(
        steps in prop::collection::vec(step(), 1..14),
        refused in prop::collection::btree_set(1u64..120, 0..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        std::fs::create_dir_all(data).expect("data dir");
        let server = RecordingServer::start().expect("server");
        // Per-event rejections depend on content only, as on a real server. (A whole-request
        // 422 that ignores content would contradict an earlier stalled-but-stored attempt of the
        // same request; that path has its own test in `faults`.)
        server.reject_seqs(refused);
        let mut s = settings(data, &server.url(), Tier::Full);
        s.batch_max_events = 7;
        s.timeout = Duration::from_millis(200);
        let rt = rt();
        let mut next_seq = 1u64;
        let mut full = BTreeSet::new();
        let mut pending_half: Option<Vec<u8>> = None;
        for st in steps {
            if let Some(rest) = pending_half.take() {
                append_raw(data, &rest);
            }
            match st {
                Step::Append(tiers) => {
                    for t in tiers {
                        let env = turn_envelope(next_seq, t);
                        if t == Tier::Full { full.insert(next_seq); }
                        let mut line = serde_json::to_vec(&env).expect("json");
                        line.push(b'\n');
                        append_raw(data, &line);
                        next_seq += 1;
                    }
                }
                Step::AppendTorn(t) => {
                    let env = turn_envelope(next_seq, t);
                    if t == Tier::Full { full.insert(next_seq); }
                    let mut line = serde_json::to_vec(&env).expect("json");
                    line.push(b'\n');
                    let rest = line.split_off(line.len() / 2);
                    append_raw(data, &line);
                    pending_half = Some(rest);
                    next_seq += 1;
                }
                Step::Faults(f) => server.push_faults(f),
                Step::Sync => {
                    let s = s.clone();
                    rt.block_on(async {
                        let mut d = Delivery::open(s).expect("open");
                        let _ = d.drain(Some(tokio::time::Instant::now() + Duration::from_millis(300))).await.expect("drain");
                    });
                }
                Step::CorruptCursor => {
                    let _ = std::fs::write(data.join("delivery/cursor.json"), b"{\"version\":1,");
                }
            }
        }
        if let Some(rest) = pending_half.take() {
            append_raw(data, &rest);
        }
        // The server recovers: drain until caught up (every queued fault is finite).
        let report = rt.block_on(async {
            let mut d = Delivery::open(s.clone()).expect("open");
            d.drain(Some(tokio::time::Instant::now() + Duration::from_secs(60))).await.expect("final drain")
        });
        prop_assert!(report.caught_up);

        let stored: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
        let mut sorted = stored.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(&sorted, &stored, "stored once each, in seq order");
        let rejected: BTreeSet<u64> = std::fs::read_to_string(data.join("delivery/rejected.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["seq"].as_u64())
            .collect();
        let stored_set: BTreeSet<u64> = stored.iter().copied().collect();
        prop_assert!(stored_set.is_disjoint(&rejected), "an event is stored or rejected, not both");
        let accounted: BTreeSet<u64> = stored_set.union(&rejected).copied().collect();
        prop_assert_eq!(accounted, full, "every full event and nothing else");
        // Trailing withheld lines are never announced (no request carries only withheld
        // events), so the watermark reaches at least the last stored event.
        prop_assert!(server.watermark(DEVICE) >= stored.last().copied().unwrap_or(0));
        prop_assert!(server.gaps(DEVICE).is_empty(), "gaps: {:?}", server.gaps(DEVICE));
    }
}
