//! Values of an evaluation: label sets by handle, samples, and the hashing
//! that vector matching and grouping use.
//!
//! Series labels are borrowed from the store for the whole evaluation and
//! referred to by a 32-bit handle, so a sample is 16 bytes and never clones
//! a label set. Dropping `__name__` (which most functions and arithmetic do)
//! only sets a bit in the handle; a new label set is built only when labels
//! really change (aggregation groups, `on(...)`, `label_replace`, ...) and is
//! then interned once per distinct content.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::store::labels::{Labels, METRIC_NAME};

/// A label set in the arena; the top bit says `__name__` is dropped.
pub(crate) type Lbl = u32;

const DROP_NAME: u32 = 1 << 31;

/// One element of an instant vector during evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub lbl: Lbl,
    pub v: f64,
}

/// An instant vector per evaluation step.
pub(crate) type Steps<T> = Vec<T>;

/// The value of an expression over all steps of an evaluation.
pub(crate) enum Value {
    Scalar(Steps<f64>),
    Vector(Steps<Vec<Sample>>),
    /// A string literal: only function arguments, resolved at load.
    String,
}

/// A series of a range-vector source kept in memory (a subquery's result).
pub(crate) struct MemSeries {
    pub lbl: Lbl,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

/// A label set as an operation sees it: borrowed labels, maybe without name.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub labels: &'a Labels,
    pub drop_name: bool,
}

impl<'a> View<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        if self.drop_name && name == METRIC_NAME {
            return None;
        }
        self.labels.get(name)
    }

    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let drop = self.drop_name;
        self.labels
            .iter()
            .filter(move |(n, _)| !(drop && *n == METRIC_NAME))
    }

    /// An owned copy, for results and for labels an operation rewrites.
    pub fn to_labels(self) -> Labels {
        if self.drop_name && self.labels.get(METRIC_NAME).is_some() {
            self.labels.without_metric_name()
        } else {
            self.labels.clone()
        }
    }

    pub fn content_eq(&self, other: &View<'_>) -> bool {
        self.iter().eq(other.iter())
    }

    pub fn hash(&self) -> u64 {
        let mut h = LabelHasher::default();
        for (n, v) in self.iter() {
            h.pair(n, v);
        }
        h.finish()
    }
}

enum Entry<'s> {
    Borrowed(&'s Labels),
    Owned(Labels),
}

/// All label sets one evaluation refers to.
pub(crate) struct Arena<'s> {
    entries: Vec<Entry<'s>>,
    /// Owned label sets by content hash, so equal content gets one handle.
    owned: FastMap<u64, Vec<u32>>,
    /// What an invalid handle shows (handles always come from this arena).
    none: Labels,
}

impl<'s> Arena<'s> {
    pub fn new() -> Self {
        Arena {
            entries: Vec::new(),
            owned: FastMap::default(),
            none: Labels::default(),
        }
    }

    /// A handle for series labels borrowed from the store.
    pub fn borrowed(&mut self, labels: &'s Labels) -> Lbl {
        self.push(Entry::Borrowed(labels))
    }

    /// A handle for a label set an operation built; equal content shares one.
    pub fn owned(&mut self, labels: Labels) -> Lbl {
        let view = View {
            labels: &labels,
            drop_name: false,
        };
        let h = view.hash();
        if let Some(ids) = self.owned.get(&h) {
            for &id in ids {
                if let Some(Entry::Owned(l)) = self.entries.get(id as usize)
                    && *l == labels
                {
                    return id;
                }
            }
        }
        let id = self.push(Entry::Owned(labels));
        self.owned.entry(h).or_default().push(id);
        id
    }

    fn push(&mut self, e: Entry<'s>) -> Lbl {
        let id = u32::try_from(self.entries.len())
            .unwrap_or(DROP_NAME - 1)
            .min(DROP_NAME - 1);
        self.entries.push(e);
        id
    }

    pub fn view(&self, lbl: Lbl) -> View<'_> {
        let labels = match self.entries.get((lbl & !DROP_NAME) as usize) {
            Some(Entry::Borrowed(l)) => l,
            Some(Entry::Owned(l)) => l,
            None => &self.none,
        };
        View {
            labels,
            drop_name: lbl & DROP_NAME != 0,
        }
    }

    pub fn get(&self, lbl: Lbl, name: &str) -> Option<&str> {
        self.view(lbl).get(name)
    }

    /// The handle without `__name__` (no new label set is built).
    pub fn drop_name(lbl: Lbl) -> Lbl {
        lbl | DROP_NAME
    }

    /// The handle of the empty label set.
    pub fn empty(&mut self) -> Lbl {
        self.owned(Labels::default())
    }
}

/// Which labels identify a sample for matching or grouping.
#[derive(Debug, Clone)]
pub(crate) enum LabelSpec {
    /// Only these labels (sorted): `on(...)`, `by(...)`.
    On(Vec<String>),
    /// All labels except these (sorted, `__name__` included):
    /// `ignoring(...)`, `without(...)`, or no modifier at all.
    Ignoring(Vec<String>),
}

impl LabelSpec {
    pub fn on(mut names: Vec<String>) -> Self {
        names.sort();
        names.dedup();
        LabelSpec::On(names)
    }

    pub fn ignoring(mut names: Vec<String>) -> Self {
        names.push(METRIC_NAME.to_string());
        names.sort();
        names.dedup();
        LabelSpec::Ignoring(names)
    }

    /// The identifying labels of a label set, in name order.
    pub fn pairs<'a>(&'a self, view: View<'a>) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (on, names) = match self {
            LabelSpec::On(n) => (true, n.as_slice()),
            LabelSpec::Ignoring(n) => (false, n.as_slice()),
        };
        view.iter()
            .filter(move |(n, _)| names.binary_search_by(|x| x.as_str().cmp(n)).is_ok() == on)
    }

    pub fn hash(&self, view: View<'_>) -> u64 {
        let mut h = LabelHasher::default();
        for (n, v) in self.pairs(view) {
            h.pair(n, v);
        }
        h.finish()
    }

    pub fn same(&self, a: View<'_>, b: View<'_>) -> bool {
        self.pairs(a).eq(self.pairs(b))
    }
}

/// A fast 64-bit hash for label sets (FxHash rounds, murmur3 finalizer).
/// Not collision-resistant by design: every map keyed by it compares label
/// content before trusting a hit.
#[derive(Default, Clone, Copy)]
pub(crate) struct LabelHasher {
    h: u64,
}

impl LabelHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn word(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }

    pub fn str(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length ends the string, so ("ab","c") and ("a","bc") differ.
        self.word(u64::from_le_bytes(w) ^ ((b.len() as u64) << 56));
    }

    pub fn pair(&mut self, name: &str, value: &str) {
        self.str(name);
        self.str(value);
    }

    pub fn finish(&self) -> u64 {
        let mut x = self.h;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

/// A pass-through hasher for maps keyed by an already-mixed `u64` or a
/// small integer; std's SipHash would cost more than the work it keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(LabelHasher::K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(LabelHasher::K);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(LabelHasher::K);
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_name_is_a_view_not_a_copy() {
        let l = Labels::from_pairs([("__name__", "x"), ("a", "1")]);
        let mut arena = Arena::new();
        let id = arena.borrowed(&l);
        let dropped = Arena::drop_name(id);
        assert_eq!(arena.get(id, "__name__"), Some("x"));
        assert_eq!(arena.get(dropped, "__name__"), None);
        assert_eq!(
            arena.view(dropped).to_labels(),
            Labels::from_pairs([("a", "1")])
        );
        let owned = arena.owned(Labels::from_pairs([("a", "1")]));
        assert!(arena.view(owned).content_eq(&arena.view(dropped)));
        assert_eq!(arena.view(owned).hash(), arena.view(dropped).hash());
        assert_eq!(arena.owned(Labels::from_pairs([("a", "1")])), owned);
    }

    #[test]
    fn specs_select_labels() {
        let l = Labels::from_pairs([("__name__", "x"), ("a", "1"), ("b", "2")]);
        let v = View {
            labels: &l,
            drop_name: false,
        };
        let on = LabelSpec::on(vec!["b".into(), "zz".into()]);
        assert_eq!(on.pairs(v).collect::<Vec<_>>(), vec![("b", "2")]);
        let ign = LabelSpec::ignoring(vec!["b".into()]);
        assert_eq!(ign.pairs(v).collect::<Vec<_>>(), vec![("a", "1")]);
    }

    #[test]
    fn hash_separates_boundaries() {
        let mut a = LabelHasher::default();
        a.pair("ab", "c");
        let mut b = LabelHasher::default();
        b.pair("a", "bc");
        assert_ne!(a.finish(), b.finish());
    }
}
