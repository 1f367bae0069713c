//! Held back, never lost: an event recorded under `full` reaches the server exactly once iff some
//! sync ran with a cap of `full` after it was recorded and before it was forgotten — whatever the
//! interleaving of records, caps (explicit tier, license, `DO_NOT_TRACK`), forgets, server
//! faults and interrupted syncs.

use std::collections::BTreeSet;
use std::time::Duration;

use agentos_core::tier::Tier;
use agentos_delivery::{Delivery, Settings};
use agentos_test_support::http::{Fault, RecordingServer};
use proptest::prelude::*;

use crate::support::{DEVICE, append_events, rt, settings, sync};

/// The README scenario: a session recorded under `full`, then `agentos ccc sync` with no tier
/// anywhere. Round one sent nothing under the default `local` and lost those events for good.
#[test]
fn a_sync_with_no_tier_sends_what_was_recorded_under_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=13, |s| {
        if s % 4 == 0 { Tier::Local } else { Tier::Full }
    });
    let mut s = settings(data, &server.url(), Tier::Full);
    s.tier = None;
    let report = sync(&s);
    assert!(report.caught_up);
    assert_eq!((report.sent, report.withheld, report.held), (10, 3, 0));
    assert_eq!(server.event_count(), 10);
    assert!(server.gaps(DEVICE).is_empty());
}

/// The footgun's second half: a sync whose tier is too low holds back, and a later run sends.
#[test]
fn events_a_low_tier_held_back_arrive_once_the_tier_allows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=7, |_| Tier::Full);
    let low = sync(&settings(data, &server.url(), Tier::Local));
    assert_eq!((low.sent, low.held, low.held_pending), (0, 7, 7));
    assert_eq!(server.connections(), 0, "local makes no connection");
    // More events while they are held; the license drops to minimized for one run.
    append_events(data, 8..=13, |_| Tier::Full);
    let mut s = settings(data, &server.url(), Tier::Full);
    s.tier = None;
    s.license_ceiling = Tier::Minimized;
    let limited = sync(&s);
    assert_eq!((limited.sent, limited.held_pending), (0, 13));
    // The preview of the next full run is exactly what that run sends.
    s.license_ceiling = Tier::Full;
    let plan = agentos_delivery::plan(&s).expect("plan");
    assert_eq!((plan.events.len(), plan.replayed), (13, 13));
    let full = sync(&s);
    assert_eq!((full.sent, full.replayed, full.held_pending), (13, 13, 0));
    let sent: Vec<String> = server
        .requests_to("/v1/events")
        .iter()
        .flat_map(|r| {
            r.json().expect("body")["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|e| e.to_string())
        .collect();
    let planned: Vec<String> = plan
        .events
        .iter()
        .map(|b| {
            serde_json::from_slice::<serde_json::Value>(b)
                .expect("json")
                .to_string()
        })
        .collect();
    assert_eq!(sent, planned, "preview printed exactly what sync sent");
    crate::support::assert_exactly_once_in_order(&server, 13);
    assert!(server.held(DEVICE).is_empty() && server.gaps(DEVICE).is_empty());
}

/// Forgetting is deliberate, durable and visible to the server as such.
#[test]
fn forgotten_events_never_leave_and_the_server_is_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let server = RecordingServer::start().expect("server");
    append_events(data, 1..=5, |_| Tier::Full);
    sync(&settings(data, &server.url(), Tier::Minimized));
    append_events(data, 6..=8, |_| Tier::Full);
    let decision = Delivery::open(settings(data, &server.url(), Tier::Full))
        .expect("open")
        .forget(Tier::Full)
        .expect("forget");
    assert_eq!((decision.events, decision.through_seq), (8, 8));
    let st = agentos_delivery::status(data).expect("status");
    assert_eq!((st.held_events, st.forget_decisions.len()), (0, 1));
    append_events(data, 9..=10, |_| Tier::Full);
    let report = sync(&settings(data, &server.url(), Tier::Full));
    assert_eq!((report.sent, report.forgotten), (2, 3));
    let seqs: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![9, 10]);
    assert_eq!(server.forgotten(DEVICE), vec![[1, 8]]);
    assert!(server.gaps(DEVICE).is_empty());
    assert_eq!(server.watermark(DEVICE), 10);
    // A corrupt cursor rescans the log; the decision still holds.
    std::fs::write(data.join("delivery/cursor.json"), b"{").expect("corrupt");
    sync(&settings(data, &server.url(), Tier::Full));
    assert_eq!(server.event_count(), 2);
}

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<Tier>),
    Faults(Vec<Fault>),
    Sync {
        tier: Option<Tier>,
        license: Tier,
        dnt: bool,
    },
    Forget(Tier),
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
        1 => Just(Fault::Reset),
        1 => Just(Fault::Stall(Duration::from_millis(400))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(tier(), 1..25).prop_map(Step::Append),
        2 => prop::collection::vec(fault(), 1..5).prop_map(Step::Faults),
        5 => (prop::option::of(tier()), tier(), prop::bool::weighted(0.15))
            .prop_map(|(tier, license, dnt)| Step::Sync { tier, license, dnt }),
        1 => prop_oneof![Just(Tier::Minimized), Just(Tier::Full)].prop_map(Step::Forget),
        1 => Just(Step::CorruptCursor),
    ]
}

fn cap(tier: Option<Tier>, license: Tier, dnt: bool) -> Tier {
    if dnt {
        Tier::Local
    } else {
        tier.unwrap_or(Tier::Full).min(license)
    }
}

/// What the model knows of one `full` event.
#[derive(Debug, Default, Clone, Copy)]
struct Fate {
    /// A sync with cap `full` finished caught up after it was recorded, before any forget.
    must: bool,
    /// Some sync with cap `full` ran (maybe interrupted) after it was recorded, before any forget.
    may: bool,
    /// A forget ran while it was pending.
    forgotten: bool,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_full_event_arrives_once_iff_a_full_sync_ran_before_it_was_forgotten(
        steps in prop::collection::vec(step(), 1..16),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path();
        std::fs::create_dir_all(data).expect("data dir");
        let server = RecordingServer::start().expect("server");
        let base: Settings = {
            let mut s = settings(data, &server.url(), Tier::Full);
            s.batch_max_events = 6;
            s
        };
        let rt = rt();
        let mut next = 1u64;
        let mut fates: Vec<(u64, Fate)> = Vec::new();
        let mut non_full = BTreeSet::new();
        for st in steps {
            match st {
                Step::Append(tiers) => {
                    let from = next;
                    next += tiers.len() as u64;
                    append_events(data, from..=next - 1, |s| tiers[(s - from) as usize]);
                    for (i, t) in tiers.iter().enumerate() {
                        let seq = from + i as u64;
                        if *t == Tier::Full {
                            fates.push((seq, Fate::default()));
                        } else {
                            non_full.insert(seq);
                        }
                    }
                }
                Step::Faults(f) => server.push_faults(f),
                Step::Sync { tier, license, dnt } => {
                    let mut s = base.clone();
                    s.tier = tier;
                    s.license_ceiling = license;
                    s.do_not_track = dnt;
                    let report = rt.block_on(async {
                        let mut d = Delivery::open(s).expect("open");
                        d.drain(Some(tokio::time::Instant::now() + Duration::from_millis(300)))
                            .await
                            .expect("drain")
                    });
                    if cap(tier, license, dnt) == Tier::Full {
                        for (_, f) in fates.iter_mut().filter(|(_, f)| !f.forgotten) {
                            f.may = true;
                            f.must |= report.caught_up;
                        }
                    } else {
                        prop_assert!(report.sent == 0, "nothing leaves under a cap below full");
                    }
                }
                Step::Forget(below) => {
                    let mut d = Delivery::open(base.clone()).expect("open");
                    d.forget(below).expect("forget");
                    for (_, f) in fates.iter_mut().filter(|(_, f)| !f.must) {
                        f.forgotten = true;
                    }
                }
                Step::CorruptCursor => {
                    let _ = std::fs::write(data.join("delivery/cursor.json"), b"{\"version\":1,");
                }
            }
        }
        let stored: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
        let unique: BTreeSet<u64> = stored.iter().copied().collect();
        prop_assert_eq!(unique.len(), stored.len(), "stored at most once: {:?}", stored);
        prop_assert!(unique.is_disjoint(&non_full), "only full events leave as events");
        for (seq, f) in &fates {
            let got = unique.contains(seq);
            prop_assert!(!got || f.may, "seq {} arrived without a full sync before its forget ({:?})", seq, f);
            prop_assert!(got || !f.must, "seq {} never arrived though a full sync completed ({:?})", seq, f);
        }
        prop_assert!(server.gaps(DEVICE).is_empty(), "gaps: {:?}", server.gaps(DEVICE));

        // Whatever is still pending leaves on a clean full run, except what was forgotten.
        server.clear_faults();
        let last = rt.block_on(async {
            let mut d = Delivery::open(base.clone()).expect("open");
            d.drain(Some(tokio::time::Instant::now() + Duration::from_secs(60))).await.expect("final drain")
        });
        prop_assert!(last.caught_up && last.held_pending == 0);
        let stored: Vec<u64> = server.events().iter().map(|e| e.seq).collect();
        let unique: BTreeSet<u64> = stored.iter().copied().collect();
        prop_assert_eq!(unique.len(), stored.len(), "stored at most once");
        for (seq, f) in &fates {
            let got = unique.contains(seq);
            if !f.forgotten {
                prop_assert!(got, "seq {} was never forgotten yet never arrived", seq);
            } else if !f.may {
                prop_assert!(!got, "seq {} was forgotten before any full sync yet arrived", seq);
            }
        }
        let forgotten_on_server: BTreeSet<u64> = server
            .forgotten(DEVICE)
            .iter()
            .flat_map(|[a, b]| *a..=*b)
            .collect();
        // A client that lost its cursor (corrupt file) no longer knows what left, so it may
        // call an event forgotten that the server stored earlier; stored wins (docs/protocol.md).
        for seq in &forgotten_on_server {
            prop_assert!(
                unique.contains(seq) || fates.iter().any(|(s, f)| s == seq && f.forgotten),
                "seq {} reported forgotten but no forget covered it", seq
            );
        }
        prop_assert!(server.gaps(DEVICE).is_empty(), "gaps: {:?}", server.gaps(DEVICE));
    }
}
