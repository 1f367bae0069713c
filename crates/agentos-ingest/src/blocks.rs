//! 5-hour billing blocks: where they start and end, the gaps between them, and the burn rate
//! and projection of the block that is still running.
//!
//! The boundaries depend only on the activity timeline, never on the range a report asks for:
//! a block starts at the first activity after a gap of at least 5 hours (or after the previous
//! block ended), floored to the hour, and lasts 5 hours. So `blocks --since D` shows the same
//! blocks as `blocks`, only fewer of them.

use serde::{Deserialize, Serialize};

use crate::error::IngestError;

/// Length of a block, and the gap of inactivity that ends one.
pub const BLOCK_MS: i64 = 5 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;

/// The block rule, one activity at a time (in time order). The blocks report and
/// `agentos statusline` both use it, so they agree on what a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BlockTracker {
    /// Start of the current block (epoch ms), `None` before the first activity.
    pub start_ms: Option<i64>,
    /// The previous activity's time.
    pub last_ms: Option<i64>,
}

impl BlockTracker {
    /// Feeds one activity's time; returns the start of the block it belongs to.
    pub fn observe(&mut self, ts: i64) -> i64 {
        let new_block = match (self.start_ms, self.last_ms) {
            (Some(start), Some(last)) => ts - start >= BLOCK_MS || ts - last >= BLOCK_MS,
            _ => true,
        };
        if new_block {
            self.start_ms = Some(ts.div_euclid(HOUR_MS) * HOUR_MS);
        }
        self.last_ms = Some(ts);
        self.start_ms.unwrap_or(ts)
    }

    /// The block still running at `now_ms`, as its start, if any (see [`is_active`]).
    pub fn active_at(&self, now_ms: i64) -> Option<i64> {
        let (start, last) = (self.start_ms?, self.last_ms?);
        is_active(start, last, now_ms).then_some(start)
    }
}

/// Block start of each timestamp of `sorted` (ascending), same order.
pub fn block_starts(sorted: &[i64]) -> Vec<i64> {
    let mut t = BlockTracker::default();
    sorted.iter().map(|&ts| t.observe(ts)).collect()
}

/// `--token-limit`: a fixed number of tokens per block, or the most any earlier block used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLimit {
    /// This many tokens.
    Tokens(u64),
    /// The largest total of the finished blocks seen.
    Max,
}

impl std::str::FromStr for TokenLimit {
    type Err = IngestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(TokenLimit::Max);
        }
        s.replace(['_', ','], "")
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(TokenLimit::Tokens)
            .ok_or_else(|| IngestError::TokenLimit {
                value: s.to_string(),
            })
    }
}

/// What a block row carries beyond its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// A stretch without activity between two blocks (no tokens).
    pub gap: bool,
    /// The block is still running: now is before its end and its last activity is less than
    /// 5 hours ago.
    pub active: bool,
    /// Burn rate and projection (active blocks with more than one minute of activity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<Projection>,
}

/// How fast the active block burns and where it ends up at this pace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// Tokens per minute between the first and the last activity.
    pub tokens_per_minute: f64,
    /// Cost per hour at that pace (USD).
    pub cost_per_hour: f64,
    /// Tokens at the block end if the pace holds.
    pub projected_tokens: u64,
    /// Cost at the block end if the pace holds (USD).
    pub projected_cost_usd: f64,
    /// Minutes until the block ends.
    pub minutes_left: i64,
}

/// Whether a block starting at `start` with last activity `last` is still running at `now`.
pub fn is_active(start: i64, last: i64, now: i64) -> bool {
    // `start <= now`: a block in the future (a clock set back, a test's fixed "now") is not
    // running.
    start <= now && now < start + BLOCK_MS && now - last < BLOCK_MS
}

/// The burn rate and projection of a running block, or `None` when its activity spans less than
/// a minute (no rate can be told yet).
pub fn project(
    start: i64,
    first: i64,
    last: i64,
    now: i64,
    tokens: u64,
    cost: f64,
) -> Option<Projection> {
    let minutes = (last - first) as f64 / 60_000.0;
    if minutes < 1.0 {
        return None;
    }
    let tpm = tokens as f64 / minutes;
    let cpm = cost / minutes;
    let left_ms = (start + BLOCK_MS - now).max(0);
    let left_min = left_ms as f64 / 60_000.0;
    Some(Projection {
        tokens_per_minute: tpm,
        cost_per_hour: cpm * 60.0,
        projected_tokens: tokens + (tpm * left_min).round() as u64,
        projected_cost_usd: cost + cpm * left_min,
        minutes_left: left_ms / 60_000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;
    const M: i64 = 60_000;

    /// The rule written out the long way: walk the timeline keeping explicit blocks (start and
    /// member list), and open a new block whenever the event is not inside the current one or
    /// follows a gap of 5 hours or more.
    fn reference(sorted: &[i64]) -> Vec<i64> {
        let mut blocks: Vec<(i64, Vec<i64>)> = Vec::new();
        for &ts in sorted {
            let fits = blocks.last().is_some_and(|(start, members)| {
                let prev = members.last().copied().unwrap_or(*start);
                ts < start + 5 * H && ts - prev < 5 * H
            });
            if fits {
                if let Some((_, members)) = blocks.last_mut() {
                    members.push(ts);
                }
            } else {
                blocks.push((ts - ts.rem_euclid(H), vec![ts]));
            }
        }
        blocks
            .into_iter()
            .flat_map(|(start, members)| members.into_iter().map(move |_| start))
            .collect()
    }

    #[test]
    fn a_gap_or_the_block_end_starts_a_new_block_on_the_hour() {
        let t0 = 1_788_000_000_000 - 1_788_000_000_000 % H; // an hour boundary
        let ts = [
            t0 + 15 * M,          // block 1 at t0
            t0 + 4 * H + 59 * M,  // still block 1
            t0 + 5 * H + M,       // past its end: block 2 at t0 + 5h
            t0 + 9 * H,           // block 2
            t0 + 14 * H + 30 * M, // 5.5 h gap: block 3 at t0 + 14h
        ];
        assert_eq!(
            block_starts(&ts),
            [t0, t0, t0 + 5 * H, t0 + 5 * H, t0 + 14 * H]
        );
    }

    proptest::proptest! {
        #[test]
        fn block_starts_match_the_reference(
            start in 1_700_000_000_000i64..1_800_000_000_000,
            steps in proptest::collection::vec(0i64..12 * H, 0..60),
        ) {
            let mut ts = Vec::with_capacity(steps.len());
            let mut t = start;
            for s in steps {
                t += s;
                ts.push(t);
            }
            let got = block_starts(&ts);
            proptest::prop_assert_eq!(&got, &reference(&ts));
            for (t, s) in ts.iter().zip(&got) {
                proptest::prop_assert_eq!(s.rem_euclid(H), 0);
                proptest::prop_assert!(*s <= *t && *t < s + BLOCK_MS);
            }
            // Blocks never overlap.
            let mut starts = got.clone();
            starts.dedup();
            for w in starts.windows(2) {
                proptest::prop_assert!(w[1] >= w[0] + BLOCK_MS);
            }
            // A suffix of the timeline after a 5-hour gap gets the same blocks on its own:
            // history before a gap never moves a boundary.
            if let Some(i) = (1..ts.len()).find(|&i| ts[i] - ts[i - 1] >= BLOCK_MS) {
                proptest::prop_assert_eq!(&block_starts(&ts[i..]), &got[i..]);
            }
        }
    }

    #[test]
    fn token_limits_parse() {
        assert_eq!("max".parse::<TokenLimit>().ok(), Some(TokenLimit::Max));
        assert_eq!(
            "500_000".parse::<TokenLimit>().ok(),
            Some(TokenLimit::Tokens(500_000))
        );
        assert!("0".parse::<TokenLimit>().is_err());
        assert!("lots".parse::<TokenLimit>().is_err());
    }

    #[test]
    fn the_projection_extends_the_pace_to_the_block_end() {
        let start = 0;
        // 1000 tokens and $1 over the first 60 minutes; now is 2 h in: 3 h left.
        let p = project(start, 0, 60 * M, 2 * H, 1000, 1.0).expect("a rate");
        assert_eq!(p.minutes_left, 180);
        assert!((p.tokens_per_minute - 1000.0 / 60.0).abs() < 1e-9);
        assert_eq!(p.projected_tokens, 1000 + 3000);
        assert!((p.projected_cost_usd - 4.0).abs() < 1e-9);
        assert!((p.cost_per_hour - 1.0).abs() < 1e-9);
        assert!(project(start, 0, 30_000, H, 10, 1.0).is_none());
        assert!(is_active(0, 4 * H, 4 * H + 59 * M));
        assert!(!is_active(0, 4 * H, 5 * H));
        assert!(!is_active(H, H, 0));
    }
}
