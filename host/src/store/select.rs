//! Read access for queries: one read lock for a whole evaluation.
//!
//! The query evaluator borrows series labels and sample rings straight from
//! the store instead of copying them: a [`StoreReader`] holds the read lock,
//! and everything it hands out borrows from it. Writers wait for at most one
//! query evaluation.

use std::collections::VecDeque;
use std::sync::RwLockReadGuard;

use super::labels::Labels;
use super::{Inner, SeriesId, SeriesStore};

/// A read-locked view of the store for one query evaluation.
pub struct StoreReader<'a> {
    inner: RwLockReadGuard<'a, Inner>,
}

/// The samples of one series in a time range, as the two halves of its ring
/// (either may be empty). Timestamps ascend across `first` then `second`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampleRange<'a> {
    pub first: (&'a [i64], &'a [f64]),
    pub second: (&'a [i64], &'a [f64]),
}

impl SampleRange<'_> {
    pub fn len(&self) -> usize {
        self.first.0.len() + self.second.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last sample of the range.
    pub fn last(&self) -> Option<(i64, f64)> {
        let (t, v) = if self.second.0.is_empty() {
            self.first
        } else {
            self.second
        };
        Some((*t.last()?, *v.last()?))
    }
}

impl SeriesStore {
    /// Locks the store for reading until the reader is dropped.
    pub fn reader(&self) -> StoreReader<'_> {
        StoreReader { inner: self.read() }
    }
}

impl StoreReader<'_> {
    /// One past the highest series id; ids are `0..series_count()`, and
    /// [`Self::labels`] is `None` for ids that were collected.
    pub fn series_count(&self) -> usize {
        self.inner.series.len()
    }

    /// Ids of the series with metric name `name`, in interning order.
    pub fn series_named(&self, name: &str) -> &[SeriesId] {
        self.inner.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every metric name with its series, for matchers on `__name__` that are
    /// not a plain equality.
    pub fn names(&self) -> impl Iterator<Item = (&str, &[SeriesId])> {
        self.inner
            .by_name
            .iter()
            .map(|(name, ids)| (name.as_str(), ids.as_slice()))
    }

    pub fn labels(&self, id: SeriesId) -> Option<&Labels> {
        self.inner.get(id).map(|s| &s.labels)
    }

    /// The latest sample at or before `t_ms`, stale markers included.
    pub fn at_or_before(&self, id: SeriesId, t_ms: i64) -> Option<(i64, f64)> {
        let s = self.inner.get(id)?;
        let idx = ring_partition(&s.timestamps, |ts| ts <= t_ms);
        let i = idx.checked_sub(1)?;
        Some((*s.timestamps.get(i)?, *s.values.get(i)?))
    }

    /// The samples with `start_ms <= t <= end_ms`, stale markers included.
    pub fn range(&self, id: SeriesId, start_ms: i64, end_ms: i64) -> SampleRange<'_> {
        let Some(s) = self.inner.get(id) else {
            return SampleRange::default();
        };
        let hi = ring_partition(&s.timestamps, |ts| ts <= end_ms);
        let lo = first_at_or_after(&s.timestamps, start_ms, hi);
        if lo >= hi {
            return SampleRange::default();
        }
        let (t1, t2) = ring_range(&s.timestamps, lo, hi);
        let (v1, v2) = ring_range(&s.values, lo, hi);
        SampleRange {
            first: (t1, v1),
            second: (t2, v2),
        }
    }
}

/// `partition_point` over a sorted ring, searching its two halves as
/// slices (faster than indexing the ring, which wraps on every access).
fn ring_partition(ring: &VecDeque<i64>, pred: impl Fn(i64) -> bool) -> usize {
    let (a, b) = ring.as_slices();
    match a.last() {
        Some(&last) if pred(last) => a.len() + b.partition_point(|&t| pred(t)),
        _ => a.partition_point(|&t| pred(t)),
    }
}

/// The index of the first timestamp `>= t` among the first `hi` of a
/// sorted ring. Scrapes are regular, so the guess from the average gap is
/// usually right or adjacent: a couple of reads instead of a binary search
/// over memory the query touches for the first time.
fn first_at_or_after(ring: &VecDeque<i64>, t: i64, hi: usize) -> usize {
    let (a, b) = ring.as_slices();
    let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
    if hi == 0 {
        return 0;
    }
    let (first, last) = (at(0), at(hi - 1));
    if t <= first {
        return 0;
    }
    if t > last {
        return hi;
    }
    // first < t <= last, so hi >= 2 and the answer is in 1..hi.
    let span = (last - first) as f64;
    let mut g = (((t - first) as f64 / span) * (hi - 1) as f64).ceil() as usize;
    g = g.clamp(1, hi - 1);
    for _ in 0..8 {
        if at(g - 1) >= t {
            g -= 1;
        } else if at(g) < t {
            g += 1;
        } else {
            return g;
        }
        if g == 0 || g >= hi {
            break;
        }
    }
    ring_partition(ring, |ts| ts < t).min(hi)
}

/// Elements `lo..hi` of a ring as two slices, without copying.
fn ring_range<T>(ring: &VecDeque<T>, lo: usize, hi: usize) -> (&[T], &[T]) {
    let (a, b) = ring.as_slices();
    if hi <= a.len() {
        (&a[lo..hi], &[])
    } else if lo >= a.len() {
        (&b[lo - a.len()..hi - a.len()], &[])
    } else {
        (&a[lo..], &b[..hi - a.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_ranges_cover_both_halves() {
        let mut ring: VecDeque<i64> = VecDeque::with_capacity(4);
        ring.extend([1, 2, 3, 4]);
        ring.pop_front();
        ring.pop_front();
        ring.push_back(5);
        ring.push_back(6);
        let all: Vec<i64> = (0..=4)
            .flat_map(|lo| (lo..=4).map(move |hi| (lo, hi)))
            .flat_map(|(lo, hi)| {
                let (a, b) = ring_range(&ring, lo, hi);
                let got: Vec<i64> = a.iter().chain(b).copied().collect();
                let want: Vec<i64> = ring.range(lo..hi).copied().collect();
                assert_eq!(got, want, "{lo}..{hi}");
                got
            })
            .collect();
        assert!(!all.is_empty());
    }

    #[test]
    fn guessed_search_agrees_with_binary_search() {
        let mut ring: VecDeque<i64> = VecDeque::new();
        for t in [0, 15, 30, 31, 32, 90, 105, 200, 201, 400] {
            ring.push_back(t);
        }
        ring.pop_front();
        ring.push_back(500);
        for t in -5..510 {
            for hi in 0..=ring.len() {
                let want = ring.range(..hi).take_while(|&&x| x < t).count();
                assert_eq!(first_at_or_after(&ring, t, hi), want, "t={t} hi={hi}");
            }
        }
    }

    #[test]
    fn range_is_closed_on_both_ends() {
        let store = SeriesStore::new(i64::MAX / 4);
        let id = store.intern(Labels::from_pairs([("__name__", "x")]));
        store.append(&[(id, 10, 1.0), (id, 20, 2.0), (id, 30, 3.0)]);
        let r = store.reader();
        assert_eq!(r.range(id, 10, 30).len(), 3);
        assert_eq!(r.range(id, 11, 29).len(), 1);
        assert_eq!(r.range(id, 11, 29).last(), Some((20, 2.0)));
        assert_eq!(r.at_or_before(id, 25), Some((20, 2.0)));
        assert_eq!(r.at_or_before(id, 5), None);
        assert_eq!(r.series_named("x"), &[id]);
    }
}
