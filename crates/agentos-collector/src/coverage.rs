//! Per-device sequence coverage: which `seq` numbers of a device the collector has accounted for.
//!
//! A seq is *covered* when it was stored, rejected, recognised as a duplicate, or withheld on
//! purpose by the client (inside a batch's `covers` range but absent from its events). The
//! collector keeps the covered set as sorted, disjoint, non-adjacent inclusive ranges, so a
//! device that uploads in order costs one range no matter how many events it sends.
//!
//! Invariants of [`Coverage`]: ranges are sorted by start, `from <= to`, `from >= 1`, and two
//! neighbours are separated by at least one uncovered seq (adjacent ranges are merged).

use agentos_core::seq_ranges::SeqRanges;
use serde::{Deserialize, Serialize};

/// An inclusive range of sequence numbers `[from, to]`.
pub type SeqRange = (u64, u64);

/// The covered seqs of one device: the protocol's seq-range set (`agentos_core::seq_ranges`)
/// plus what drop detection reads off it (watermark, gaps).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Coverage {
    ranges: SeqRanges,
}

impl Coverage {
    /// Builds a coverage from stored ranges, normalising them (sorting and merging).
    pub fn from_ranges(ranges: impl IntoIterator<Item = SeqRange>) -> Self {
        Coverage {
            ranges: SeqRanges::from_ranges(ranges),
        }
    }

    /// The normalised ranges.
    pub fn contains(&self, seq: u64) -> bool {
        self.ranges.contains(seq)
    }

    /// The covered ranges, sorted and merged.
    pub fn ranges(&self) -> &[SeqRange] {
        self.ranges.ranges()
    }

    /// Marks `[from, to]` as covered. Seq 0 does not exist (seqs start at 1), so it is ignored;
    /// an empty range (`from > to`) changes nothing.
    pub fn add(&mut self, from: u64, to: u64) {
        self.ranges.add(from, to);
    }

    /// Highest `S` such that every seq in `1..=S` is covered (0 when seq 1 is not covered).
    pub fn watermark(&self) -> u64 {
        match self.ranges().first() {
            Some(&(1, to)) => to,
            _ => 0,
        }
    }

    /// Highest covered seq (0 when nothing is covered).
    pub fn max_seq(&self) -> u64 {
        self.ranges().last().map_or(0, |r| r.1)
    }

    /// The uncovered ranges below the highest covered seq.
    pub fn gaps(&self) -> Vec<SeqRange> {
        let mut gaps = Vec::new();
        let mut next = 1u64;
        for &(from, to) in self.ranges() {
            if from > next {
                gaps.push((next, from - 1));
            }
            next = to.saturating_add(1);
        }
        gaps
    }

    /// Number of seqs inside [`Coverage::gaps`].
    pub fn gap_seqs(&self) -> u64 {
        self.gaps()
            .iter()
            .map(|(f, t)| t - f + 1)
            .fold(0u64, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn in_order_batches_collapse_into_one_range() {
        let mut c = Coverage::default();
        c.add(1, 500);
        c.add(501, 1000);
        assert_eq!(c.ranges(), &[(1, 1000)]);
        assert_eq!(c.watermark(), 1000);
        assert!(c.gaps().is_empty());
    }

    #[test]
    fn a_missing_batch_shows_as_a_gap_until_it_arrives() {
        let mut c = Coverage::default();
        c.add(1, 10);
        c.add(21, 30);
        assert_eq!(c.watermark(), 10);
        assert_eq!(c.gaps(), vec![(11, 20)]);
        c.add(11, 20);
        assert_eq!(c.watermark(), 30);
        assert!(c.gaps().is_empty());
    }

    #[test]
    fn a_device_that_starts_late_has_a_leading_gap() {
        let c = Coverage::from_ranges([(5, 7)]);
        assert_eq!(c.watermark(), 0);
        assert_eq!(c.gaps(), vec![(1, 4)]);
        assert_eq!(c.gap_seqs(), 4);
    }

    proptest! {
        #[test]
        fn coverage_matches_a_set_model(adds in proptest::collection::vec((0u64..60, 0u64..8), 0..40)) {
            let mut c = Coverage::default();
            let mut model = BTreeSet::new();
            for (from, len) in adds {
                let to = from + len;
                c.add(from, to);
                for s in from.max(1)..=to { model.insert(s); }
            }
            let max = model.iter().next_back().copied().unwrap_or(0);
            let mut wm = 0;
            while model.contains(&(wm + 1)) { wm += 1; }
            prop_assert_eq!(c.watermark(), wm);
            prop_assert_eq!(c.max_seq(), max);
            let gap_count: u64 = (1..=max).filter(|s| !model.contains(s)).count() as u64;
            prop_assert_eq!(c.gap_seqs(), gap_count);
            for w in c.ranges().windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "ranges must be disjoint and non-adjacent");
            }
        }
    }
}
