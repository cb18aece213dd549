//! In-memory series store: interned series, column-wise ring buffers.
//!
//! Each series keeps its timestamps and values in two rings, trimmed to the
//! retention the loaded rules need (their longest window plus the lookback
//! of an instant selector). Writers are the collectors, readers the rule
//! queries; one lock covers the whole store and is held for one scrape's
//! batch or one query, never across an `.await`.

pub mod durable;
pub mod labels;
pub mod select;

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;

use crate::query::{Query, Sample};
use labels::Labels;

/// Index of a series in the store; stable for the life of the process.
pub type SeriesId = u32;

/// Prometheus' staleness marker: a NaN with a specific bit pattern, written
/// when a series disappears from its target or the target goes down.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// How long samples are kept: per metric name, so one rule reading
/// `x[6h]` keeps 6 h of `x` and not of every scraped series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Retention {
    /// For metrics no rule names (and the least any metric gets).
    pub default_ms: i64,
    /// For the metrics rules name.
    pub by_name: HashMap<String, i64>,
}

impl Retention {
    /// The same retention for every series.
    pub fn uniform(ms: i64) -> Self {
        Retention {
            default_ms: ms.max(1),
            by_name: HashMap::new(),
        }
    }

    /// Keeps at least `ms` of the metric `name`, or of every metric.
    pub fn require(&mut self, name: Option<&str>, ms: i64) {
        match name {
            Some(n) => {
                let e = self.by_name.entry(n.to_string()).or_insert(ms);
                *e = (*e).max(ms);
            }
            None => self.default_ms = self.default_ms.max(ms),
        }
    }

    /// The retention of a series with this metric name.
    pub fn for_name(&self, name: Option<&str>) -> i64 {
        name.and_then(|n| self.by_name.get(n))
            .map_or(self.default_ms, |&ms| ms.max(self.default_ms))
            .max(1)
    }

    /// The longest retention of any series.
    pub fn longest(&self) -> i64 {
        self.by_name
            .values()
            .copied()
            .fold(self.default_ms, i64::max)
            .max(1)
    }
}

struct Series {
    labels: Labels,
    /// How far behind its newest sample this series keeps samples.
    retention_ms: i64,
    timestamps: VecDeque<i64>,
    values: VecDeque<f64>,
    /// Wall-clock time of the last intern or append, for garbage collection.
    touched_ms: i64,
}

struct Inner {
    ids: HashMap<Labels, SeriesId>,
    /// By id; `None` once collected. Ids are never reused, so a stale id
    /// held anywhere can only miss, never reach another series.
    series: Vec<Option<Box<Series>>>,
    by_name: HashMap<String, Vec<SeriesId>>,
    retention: Retention,
    samples: usize,
    /// Bumped by every collection that removed something.
    gc_epoch: u64,
}

impl Inner {
    fn get(&self, id: SeriesId) -> Option<&Series> {
        self.series.get(id as usize).and_then(|s| s.as_deref())
    }

    fn get_mut(&mut self, id: SeriesId) -> Option<&mut Series> {
        self.series
            .get_mut(id as usize)
            .and_then(|s| s.as_deref_mut())
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The shared series store.
pub struct SeriesStore {
    inner: RwLock<Inner>,
}

impl Default for SeriesStore {
    fn default() -> Self {
        Self::new(15 * 60 * 1000)
    }
}

impl SeriesStore {
    pub fn new(retention_ms: i64) -> Self {
        SeriesStore {
            inner: RwLock::new(Inner {
                ids: HashMap::new(),
                series: Vec::new(),
                by_name: HashMap::new(),
                retention: Retention::uniform(retention_ms),
                samples: 0,
                gc_epoch: 0,
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the rings inconsistent
        // in a way readers care about, so a poisoned lock is still usable.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets how long samples are kept, the same for every series.
    pub fn set_retention(&self, retention_ms: i64) {
        self.set_retention_policy(Retention::uniform(retention_ms));
    }

    /// Sets how long samples are kept, per metric name. Series held now
    /// take the new retention at their next append.
    pub fn set_retention_policy(&self, retention: Retention) {
        let mut guard = self.write();
        let inner = &mut *guard;
        for s in inner.series.iter_mut().flatten() {
            s.retention_ms = retention.for_name(s.labels.metric_name());
        }
        inner.retention = retention;
    }

    /// The longest retention of any series.
    pub fn retention_ms(&self) -> i64 {
        self.read().retention.longest()
    }

    /// The retention of series with this metric name.
    pub fn retention_of(&self, name: Option<&str>) -> i64 {
        self.read().retention.for_name(name)
    }

    /// The id of a series, creating it on first sight.
    pub fn intern(&self, labels: Labels) -> SeriesId {
        if let Some(&id) = self.read().ids.get(&labels) {
            return id;
        }
        let mut inner = self.write();
        if let Some(&id) = inner.ids.get(&labels) {
            return id;
        }
        let id = SeriesId::try_from(inner.series.len()).unwrap_or(SeriesId::MAX);
        if let Some(name) = labels.metric_name() {
            inner.by_name.entry(name.to_string()).or_default().push(id);
        }
        inner.ids.insert(labels.clone(), id);
        let retention_ms = inner.retention.for_name(labels.metric_name());
        inner.series.push(Some(Box::new(Series {
            labels,
            retention_ms,
            timestamps: VecDeque::new(),
            values: VecDeque::new(),
            touched_ms: wall_ms(),
        })));
        id
    }

    /// Appends samples under one lock; out-of-order samples are dropped, as
    /// Prometheus drops them. Returns how many were kept.
    pub fn append(&self, samples: &[(SeriesId, i64, f64)]) -> usize {
        let mut inner = self.write();
        let now = wall_ms();
        let mut kept = 0usize;
        let mut trimmed = 0usize;
        for &(id, t, v) in samples {
            let Some(s) = inner.get_mut(id) else {
                continue;
            };
            s.touched_ms = now;
            if s.timestamps.back().is_some_and(|&last| t <= last) {
                continue;
            }
            s.timestamps.push_back(t);
            s.values.push_back(v);
            kept += 1;
            let retention = s.retention_ms;
            while s
                .timestamps
                .front()
                .is_some_and(|&first| first < t - retention)
            {
                s.timestamps.pop_front();
                s.values.pop_front();
                trimmed += 1;
            }
        }
        inner.samples = inner.samples + kept - trimmed.min(inner.samples + kept);
        kept
    }

    /// Number of series held (collected ones excluded).
    pub fn series_count(&self) -> usize {
        self.read().ids.len()
    }

    /// Changes whenever a collection removed series: holders of series ids
    /// (the scrapers' caches) check it and drop ids that are gone.
    pub fn gc_epoch(&self) -> u64 {
        self.read().gc_epoch
    }

    /// Whether a series id still refers to a held series.
    pub fn is_alive(&self, id: SeriesId) -> bool {
        self.read().get(id).is_some()
    }

    /// Keeps only the ids that are still held.
    pub fn retain_alive(&self, ids: &mut Vec<SeriesId>) {
        let inner = self.read();
        ids.retain(|&id| inner.get(id).is_some());
    }

    /// Removes series nobody wrote to for longer than the retention: their
    /// samples are all past it, so no rule can read them. This bounds memory
    /// when label values churn (new pods, new model versions). Returns how
    /// many series were removed.
    pub fn gc(&self, now_ms: i64) -> usize {
        let mut guard = self.write();
        let inner = &mut *guard;
        let mut dead: Vec<SeriesId> = Vec::new();
        let mut freed_samples = 0usize;
        for (i, slot) in inner.series.iter_mut().enumerate() {
            if slot
                .as_ref()
                .is_some_and(|s| s.touched_ms < now_ms - s.retention_ms)
                && let Some(s) = slot.take()
            {
                freed_samples += s.timestamps.len();
                dead.push(i as SeriesId);
                let Series { labels, .. } = *s;
                inner.ids.remove(&labels);
            }
        }
        if dead.is_empty() {
            return 0;
        }
        inner.samples = inner.samples.saturating_sub(freed_samples);
        let dead_set: std::collections::HashSet<SeriesId> = dead.iter().copied().collect();
        inner.by_name.retain(|_, ids| {
            ids.retain(|id| !dead_set.contains(id));
            !ids.is_empty()
        });
        inner.gc_epoch += 1;
        dead.len()
    }

    /// Number of samples held.
    pub fn sample_count(&self) -> usize {
        self.read().samples
    }

    pub fn labels(&self, id: SeriesId) -> Option<Labels> {
        self.read().get(id).map(|s| s.labels.clone())
    }

    /// Evaluates an instant selector: for each matching series, its latest
    /// sample at or before `t_ms` and within `lookback_ms`, unless stale.
    pub fn select_instant(&self, q: &Query, t_ms: i64, lookback_ms: i64) -> Vec<Sample> {
        let inner = self.read();
        let mut out = Vec::new();
        let mut visit = |s: &Series| {
            if !q.matches(&s.labels) {
                return;
            }
            // Rings are sorted: binary search for the last point <= t.
            let idx = s.timestamps.partition_point(|&ts| ts <= t_ms);
            if idx == 0 {
                return;
            }
            let (ts, v) = (s.timestamps[idx - 1], s.values[idx - 1]);
            if ts <= t_ms - lookback_ms || is_stale(v) {
                return;
            }
            out.push(Sample {
                labels: s.labels.clone(),
                value: v,
            });
        };
        match q.metric_name() {
            Some(name) => {
                for &id in inner.by_name.get(name).into_iter().flatten() {
                    if let Some(s) = inner.get(id) {
                        visit(s);
                    }
                }
            }
            None => inner.series.iter().flatten().for_each(|s| visit(s)),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, model: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("model", model)])
    }

    #[test]
    fn instant_selection_uses_lookback_and_staleness() {
        let store = SeriesStore::new(60_000);
        let a = store.intern(series("up", "a"));
        let b = store.intern(series("up", "b"));
        assert_eq!(store.intern(series("up", "a")), a);
        store.append(&[(a, 1_000, 1.0), (b, 1_000, 2.0)]);
        store.append(&[(a, 2_000, 3.0), (b, 2_000, stale_nan())]);
        let q = Query::parse("up").unwrap();
        let got = store.select_instant(&q, 2_500, 5_000);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value, 3.0);
        // Before the stale marker, b is visible.
        assert_eq!(store.select_instant(&q, 1_500, 5_000).len(), 2);
        // Outside the lookback nothing is.
        assert!(store.select_instant(&q, 10_000, 5_000).is_empty());
    }

    #[test]
    fn retention_is_per_metric_name() {
        let mut policy = Retention::uniform(5_000);
        policy.require(Some("long"), 60_000);
        policy.require(Some("short"), 1_000);
        let store = SeriesStore::new(5_000);
        let long = store.intern(series("long", "a"));
        let other = store.intern(series("other", "a"));
        store.set_retention_policy(policy.clone());
        // Series interned after the change take it too.
        let short = store.intern(series("short", "a"));
        for t in (0..=100_000).step_by(1_000) {
            store.append(&[(long, t, 1.0), (other, t, 1.0), (short, t, 1.0)]);
        }
        let reader = store.reader();
        let kept = |id| reader.range(id, 0, 100_000).len();
        assert_eq!(kept(long), 61, "60 s behind the newest sample, inclusive");
        assert_eq!(kept(other), 6, "the default");
        assert_eq!(kept(short), 6, "never below the default");
        assert_eq!(store.retention_ms(), 60_000);
        assert_eq!(store.retention_of(Some("long")), 60_000);
        assert_eq!(store.retention_of(None), 5_000);
        assert_eq!(store.sample_count(), 61 + 6 + 6);
    }

    #[test]
    fn series_nobody_writes_to_are_collected() {
        let store = SeriesStore::new(10_000);
        let a = store.intern(series("x", "a"));
        let b = store.intern(series("x", "b"));
        store.append(&[(a, 1_000, 1.0), (b, 1_000, 2.0)]);
        let now = wall_ms();
        assert_eq!(store.gc(now), 0, "written just now");
        assert_eq!(store.gc_epoch(), 0);
        // Later, only b is still written to.
        if let Some(s) = store.write().get_mut(a) {
            s.touched_ms = now - 20_000;
        }
        assert_eq!(store.gc(now), 1);
        assert_eq!(store.gc_epoch(), 1);
        assert!(!store.is_alive(a) && store.is_alive(b));
        assert_eq!(store.series_count(), 1);
        assert_eq!(store.sample_count(), 1);
        assert_eq!(store.labels(a), None);
        // Appends to a collected id are dropped; the labels get a new id.
        assert_eq!(store.append(&[(a, 2_000, 1.0)]), 0);
        let a2 = store.intern(series("x", "a"));
        assert_ne!(a2, a);
        let q = Query::parse("x").unwrap();
        store.append(&[(a2, 2_000, 3.0)]);
        assert_eq!(store.select_instant(&q, 2_000, 5_000).len(), 2);
        let reader = store.reader();
        assert_eq!(reader.series_named("x"), &[b, a2]);
    }

    #[test]
    fn retention_trims_and_out_of_order_is_dropped() {
        let store = SeriesStore::new(10_000);
        let a = store.intern(series("x", "a"));
        assert_eq!(store.append(&[(a, 1_000, 1.0), (a, 500, 9.0)]), 1);
        store.append(&[(a, 20_000, 2.0)]);
        assert_eq!(store.sample_count(), 1);
    }
}
