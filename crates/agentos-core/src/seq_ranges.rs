//! Sets of per-device sequence numbers kept as sorted, disjoint, inclusive ranges.
//!
//! Both ends of the wire protocol talk about seqs in ranges (`covers`, `held`, `forgotten`,
//! `gaps`), and a device that records in order produces long runs, so a run costs one range
//! however many events it holds. Seq 0 does not exist (seqs start at 1) and is ignored.
//!
//! Invariants: ranges are sorted by start, `from <= to`, `from >= 1`, and neighbours are
//! separated by at least one seq that is not in the set (adjacent ranges are merged).

use serde::{Deserialize, Serialize};

/// A set of seqs as normalised inclusive `[from, to]` ranges; serialises as `[[from, to], …]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<[u64; 2]>", into = "Vec<[u64; 2]>")]
pub struct SeqRanges {
    ranges: Vec<(u64, u64)>,
}

impl From<Vec<[u64; 2]>> for SeqRanges {
    fn from(v: Vec<[u64; 2]>) -> Self {
        SeqRanges::from_ranges(v.into_iter().map(|[a, b]| (a, b)))
    }
}

impl From<SeqRanges> for Vec<[u64; 2]> {
    fn from(s: SeqRanges) -> Self {
        s.ranges.into_iter().map(|(a, b)| [a, b]).collect()
    }
}

impl SeqRanges {
    /// The empty set.
    pub fn new() -> Self {
        SeqRanges::default()
    }

    /// A set from arbitrary (unsorted, overlapping, even empty) ranges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut s = SeqRanges::default();
        for (from, to) in ranges {
            s.add(from, to);
        }
        s
    }

    /// The normalised ranges.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// The ranges in wire form.
    pub fn to_pairs(&self) -> Vec<[u64; 2]> {
        self.ranges.iter().map(|&(a, b)| [a, b]).collect()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many seqs the set holds.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| b - a + 1).sum()
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, to)| to < seq);
        self.ranges.get(i).is_some_and(|&(from, _)| from <= seq)
    }

    /// Adds `[from, to]`; an empty range (`from > to`) changes nothing.
    pub fn add(&mut self, from: u64, to: u64) {
        let from = from.max(1);
        if from > to {
            return;
        }
        // First range that could touch [from, to]: its end is >= from - 1.
        let start = self
            .ranges
            .partition_point(|&(_, end)| end < from.saturating_sub(1));
        let (mut lo, mut hi) = (from, to);
        let mut end = start;
        while end < self.ranges.len() && self.ranges[end].0 <= to.saturating_add(1) {
            lo = lo.min(self.ranges[end].0);
            hi = hi.max(self.ranges[end].1);
            end += 1;
        }
        self.ranges.splice(start..end, std::iter::once((lo, hi)));
    }

    /// Adds every seq of `other`.
    pub fn add_all(&mut self, other: &SeqRanges) {
        for &(a, b) in &other.ranges {
            self.add(a, b);
        }
    }

    /// Removes `[from, to]`; seqs not in the set are ignored.
    pub fn remove(&mut self, from: u64, to: u64) {
        let from = from.max(1);
        if from > to {
            return;
        }
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        for &(a, b) in &self.ranges {
            if b < from || a > to {
                out.push((a, b));
                continue;
            }
            if a < from {
                out.push((a, from - 1));
            }
            if b > to {
                out.push((to + 1, b));
            }
        }
        self.ranges = out;
    }

    /// Removes every seq of `other`.
    pub fn remove_all(&mut self, other: &SeqRanges) {
        for &(a, b) in &other.ranges {
            self.remove(a, b);
        }
    }

    /// Keeps only the seqs that are also in `other`.
    pub fn intersect(&self, other: &SeqRanges) -> SeqRanges {
        let mut out = SeqRanges::new();
        for &(a, b) in &self.ranges {
            for &(c, d) in &other.ranges {
                out.add(a.max(c), b.min(d));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::SeqRanges;

    #[test]
    fn adding_merges_overlapping_and_adjacent_ranges() {
        let s = SeqRanges::from_ranges([(5, 7), (1, 2), (3, 3), (10, 12), (8, 8)]);
        assert_eq!(s.ranges(), &[(1, 3), (5, 8), (10, 12)]);
        assert_eq!(s.count(), 10);
        assert!(s.contains(6) && !s.contains(4) && !s.contains(13));
    }

    #[test]
    fn removing_splits_ranges_and_ignores_absent_seqs() {
        let mut s = SeqRanges::from_ranges([(1, 10), (20, 30)]);
        s.remove(4, 6);
        s.remove(15, 22);
        s.remove(40, 50);
        assert_eq!(s.ranges(), &[(1, 3), (7, 10), (23, 30)]);
        s.remove(0, 100);
        assert!(s.is_empty());
    }

    #[test]
    fn the_wire_form_is_a_list_of_pairs() {
        let s = SeqRanges::from_ranges([(3, 4), (1, 1)]);
        let text = serde_json::to_string(&s).unwrap_or_default();
        assert_eq!(text, "[[1,1],[3,4]]");
        let back: SeqRanges = serde_json::from_str("[[3,4],[1,1],[2,2]]").unwrap_or_default();
        assert_eq!(back.ranges(), &[(1, 4)]);
    }

    #[test]
    fn intersection_keeps_only_common_seqs() {
        let a = SeqRanges::from_ranges([(1, 10), (20, 25)]);
        let b = SeqRanges::from_ranges([(5, 22)]);
        assert_eq!(a.intersect(&b).ranges(), &[(5, 10), (20, 22)]);
    }
}
