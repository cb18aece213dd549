//! A rule's sliding windows: one per output series, kept column-wise.
//!
//! Each evaluation appends one point per output series. The check sees the
//! windows of the series present in this evaluation as one columnar batch,
//! and the per-series learned state travels with the window, owned here.

use std::collections::{HashMap, VecDeque};

use crate::query::Sample;
use crate::sandbox::{Batch, SeriesState};
use crate::store::labels::Labels;

struct Slot {
    labels: Labels,
    fingerprint: u64,
    timestamps: VecDeque<i64>,
    values: VecDeque<f64>,
    state: Vec<u8>,
    last_seen_ms: i64,
}

/// All windows of one rule.
pub struct Windows {
    window_ms: i64,
    slots: Vec<Option<Slot>>,
    index: HashMap<Labels, usize>,
    free: Vec<usize>,
}

impl Windows {
    pub fn new(window_ms: i64) -> Self {
        Windows {
            window_ms: window_ms.max(1),
            slots: Vec::new(),
            index: HashMap::new(),
            free: Vec::new(),
        }
    }

    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    pub fn set_window_ms(&mut self, window_ms: i64) {
        self.window_ms = window_ms.max(1);
    }

    /// Appends this evaluation's points and returns the slot of each sample,
    /// in sample order. A point not newer than a window's last is dropped.
    pub fn observe(&mut self, t_ms: i64, samples: &[Sample]) -> Vec<usize> {
        let cutoff = t_ms - self.window_ms;
        let mut present = Vec::with_capacity(samples.len());
        for s in samples {
            let idx = match self.index.get(&s.labels) {
                Some(&i) => i,
                None => self.insert(s.labels.clone()),
            };
            if let Some(slot) = self.slots[idx].as_mut() {
                if slot.timestamps.back().is_none_or(|&last| t_ms > last) {
                    slot.timestamps.push_back(t_ms);
                    slot.values.push_back(s.value);
                }
                while slot
                    .timestamps
                    .front()
                    .is_some_and(|&first| first <= cutoff)
                {
                    slot.timestamps.pop_front();
                    slot.values.pop_front();
                }
                slot.last_seen_ms = t_ms;
            }
            present.push(idx);
        }
        present
    }

    /// Seeds a window with a past point (backfill); ignored when not older
    /// than what the window already holds.
    pub fn seed(&mut self, labels: &Labels, t_ms: i64, value: f64) {
        let idx = match self.index.get(labels) {
            Some(&i) => i,
            None => self.insert(labels.clone()),
        };
        if let Some(slot) = self.slots[idx].as_mut()
            && slot.timestamps.back().is_none_or(|&last| t_ms > last)
        {
            slot.timestamps.push_back(t_ms);
            slot.values.push_back(value);
            slot.last_seen_ms = t_ms;
        }
    }

    fn insert(&mut self, labels: Labels) -> usize {
        let slot = Slot {
            fingerprint: labels.fingerprint(),
            labels: labels.clone(),
            timestamps: VecDeque::new(),
            values: VecDeque::new(),
            state: Vec::new(),
            last_seen_ms: i64::MIN,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(labels, idx);
        idx
    }

    /// Forgets windows not seen for a whole window length.
    pub fn expire(&mut self, t_ms: i64) {
        let cutoff = t_ms - self.window_ms;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|s| s.last_seen_ms <= cutoff) {
                if let Some(s) = slot.take() {
                    self.index.remove(&s.labels);
                }
                self.free.push(i);
            }
        }
    }

    /// The live windows not in `present`, in slot order: series the query
    /// returned at an earlier step (within the window) but not at this one.
    pub fn vanished(&self, present: &[usize]) -> Vec<usize> {
        let mut is_present = vec![false; self.slots.len()];
        for &i in present {
            if let Some(p) = is_present.get_mut(i) {
                *p = true;
            }
        }
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, s)| s.is_some() && !is_present[*i])
            .map(|(i, _)| i)
            .collect()
    }

    /// Fills `batch` and `state` with the windows of `present`, reusing
    /// their buffers: one copy from the rings into the call's columns.
    pub fn fill(&self, present: &[usize], batch: &mut Batch, state: &mut SeriesState) {
        batch.series.clear();
        batch.offsets.clear();
        batch.timestamps.clear();
        batch.values.clear();
        state.offsets.clear();
        state.data.clear();
        batch.offsets.push(0);
        state.offsets.push(0);
        for &i in present {
            let Some(slot) = self.slots.get(i).and_then(Option::as_ref) else {
                continue;
            };
            batch.series.push(slot.fingerprint);
            let (a, b) = slot.timestamps.as_slices();
            batch.timestamps.extend_from_slice(a);
            batch.timestamps.extend_from_slice(b);
            let (a, b) = slot.values.as_slices();
            batch.values.extend_from_slice(a);
            batch.values.extend_from_slice(b);
            batch.offsets.push(offset(batch.timestamps.len()));
            state.data.extend_from_slice(&slot.state);
            state.offsets.push(offset(state.data.len()));
        }
    }

    /// Keeps the state a successful call returned, aligned with `present`.
    pub fn store_state(&mut self, present: &[usize], state: &SeriesState) {
        for (k, &i) in present.iter().enumerate() {
            if let Some(slot) = self.slots.get_mut(i).and_then(Option::as_mut) {
                slot.state.clear();
                slot.state.extend_from_slice(state.get(k));
            }
        }
    }

    /// Restores persisted state by series fingerprint.
    pub fn restore_state(&mut self, labels: &Labels, data: Vec<u8>) {
        let idx = match self.index.get(labels) {
            Some(&i) => i,
            None => self.insert(labels.clone()),
        };
        if let Some(slot) = self.slots[idx].as_mut() {
            slot.state = data;
        }
    }

    /// Labels of a slot.
    pub fn labels(&self, i: usize) -> Option<&Labels> {
        self.slots
            .get(i)
            .and_then(Option::as_ref)
            .map(|s| &s.labels)
    }

    /// The last value of a slot's window.
    pub fn last_value(&self, i: usize) -> Option<f64> {
        self.slots
            .get(i)
            .and_then(Option::as_ref)
            .and_then(|s| s.values.back().copied())
    }

    /// Every window's state with its series' labels, for persistence.
    pub fn states(&self) -> impl Iterator<Item = (&Labels, &[u8])> {
        self.slots
            .iter()
            .flatten()
            .map(|s| (&s.labels, s.state.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Points held across all windows.
    pub fn points(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| s.timestamps.len())
            .sum()
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(model: &str, v: f64) -> Sample {
        Sample {
            labels: Labels::from_pairs([("model", model)]),
            value: v,
        }
    }

    #[test]
    fn windows_slide_and_fill_columns() {
        let mut w = Windows::new(3_000);
        for t in 1..=5 {
            let present = w.observe(
                t * 1_000,
                &[sample("a", t as f64), sample("b", -(t as f64))],
            );
            assert_eq!(present.len(), 2);
        }
        let present = w.observe(6_000, &[sample("b", -6.0)]);
        let (mut batch, mut state) = (Batch::default(), SeriesState::default());
        w.fill(&present, &mut batch, &mut state);
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.offsets, vec![0, 3]);
        assert_eq!(batch.timestamps, vec![4_000, 5_000, 6_000]);
        assert_eq!(batch.values, vec![-4.0, -5.0, -6.0]);
        assert_eq!(state.offsets, vec![0, 0]);
    }

    #[test]
    fn state_follows_its_series() {
        let mut w = Windows::new(10_000);
        let present = w.observe(1_000, &[sample("a", 1.0), sample("b", 2.0)]);
        let st = SeriesState {
            offsets: vec![0, 1, 3],
            data: vec![7, 8, 9],
        };
        w.store_state(&present, &st);
        // b alone now: its state comes along, a's does not.
        let present = w.observe(2_000, &[sample("b", 2.0)]);
        let (mut batch, mut state) = (Batch::default(), SeriesState::default());
        w.fill(&present, &mut batch, &mut state);
        assert_eq!(state.data, vec![8, 9]);
    }

    #[test]
    fn vanished_windows_are_the_live_ones_not_present() {
        let mut w = Windows::new(10_000);
        w.observe(
            1_000,
            &[sample("a", 1.0), sample("b", 2.0), sample("c", 3.0)],
        );
        let present = w.observe(2_000, &[sample("b", 2.0)]);
        assert_eq!(w.vanished(&present), vec![0, 2]);
        w.expire(12_000);
        let present = w.observe(12_000, &[sample("b", 2.0)]);
        assert!(w.vanished(&present).is_empty());
    }

    #[test]
    fn unseen_windows_expire() {
        let mut w = Windows::new(1_000);
        w.observe(1_000, &[sample("a", 1.0)]);
        w.expire(5_000);
        assert!(w.is_empty());
        let present = w.observe(6_000, &[sample("c", 1.0)]);
        assert_eq!(present, vec![0]);
    }
}
