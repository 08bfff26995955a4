//! A set of byte ranges (the dirty extents of a staged file), kept merged.

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint, non-adjacent ranges keyed by start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Adds `r`, merging with overlapping or touching ranges.
    pub fn insert(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(_, e)| **e >= start)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    /// Drops everything at or past `len`.
    pub fn truncate(&mut self, len: u64) {
        let cut: Vec<(u64, u64)> = self
            .ranges
            .range(..)
            .filter(|(_, e)| **e > len)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, _) in cut {
            self.ranges.remove(&s);
            if s < len {
                self.ranges.insert(s, len);
            }
        }
    }

    /// Whether any byte of `r` is in the set.
    pub fn overlaps(&self, r: &Range<u64>) -> bool {
        self.ranges
            .range(..r.end)
            .next_back()
            .is_some_and(|(_, e)| *e > r.start)
    }

    /// Splits `r` into pieces, each wholly inside (`true`) or outside the set.
    pub fn split(&self, r: Range<u64>) -> Vec<(Range<u64>, bool)> {
        let mut out = Vec::new();
        let mut pos = r.start;
        let first = self
            .ranges
            .range(..=r.start)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(r.start);
        for (&s, &e) in self.ranges.range(first..r.end) {
            if e <= pos {
                continue;
            }
            if s > pos {
                out.push((pos..s.min(r.end), false));
            }
            let (a, b) = (s.max(pos), e.min(r.end));
            if a < b {
                out.push((a..b, true));
            }
            pos = b;
            if pos >= r.end {
                break;
            }
        }
        if pos < r.end {
            out.push((pos..r.end, false));
        }
        out
    }

    /// Total bytes in the set.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[Range<u64>]) -> RangeSet {
        let mut s = RangeSet::default();
        for r in ranges {
            s.insert(r.clone());
        }
        s
    }

    #[test]
    fn merges_overlapping_and_touching_ranges() {
        let s = set(&[0..10, 20..30, 10..12, 25..40, 50..60]);
        assert_eq!(
            s.split(0..100),
            vec![
                (0..12, true),
                (12..20, false),
                (20..40, true),
                (40..50, false),
                (50..60, true),
                (60..100, false)
            ]
        );
        assert_eq!(s.total(), 42);
        let s = set(&[5..10, 0..100]);
        assert_eq!(s.split(0..100), vec![(0..100, true)]);
    }

    #[test]
    fn splits_inside_and_truncates() {
        let mut s = set(&[10..20, 30..40]);
        assert_eq!(
            s.split(15..35),
            vec![(15..20, true), (20..30, false), (30..35, true)]
        );
        assert!(s.overlaps(&(19..21)));
        assert!(!s.overlaps(&(20..30)));
        s.truncate(35);
        assert_eq!(
            s.split(0..50),
            vec![
                (0..10, false),
                (10..20, true),
                (20..30, false),
                (30..35, true),
                (35..50, false)
            ]
        );
        s.truncate(5);
        assert!(s.is_empty());
    }
}
