//! Flap damping: an alert that keeps switching between firing and resolved
//! is announced once as flapping, then kept quiet until it settles.
//!
//! Not in Alertmanager; modelled on Nagios' flap detection, simplified to a
//! count of state changes in a sliding window. Off unless configured.
//!
//! Pure: every method takes `now` (Unix milliseconds) and does no I/O.
//! - each alert (by fingerprint) starts resolved; each observed status that
//!   differs from the last one is a state change, so an alert that appears
//!   firing counts one change;
//! - when the changes within `window` reach `threshold`, the alert is
//!   flapping: [`FlapEvent::StartedFlapping`] asks the dispatcher for one
//!   notification saying so, and [`FlapEvent::Suppressed`] follows for every
//!   observation after it;
//! - once it has not changed for `stable_for`, it leaves flapping with
//!   [`FlapEvent::StoppedFlapping`], and its current status should be
//!   notified; its history starts over.
//!
//! Memory is bounded: an alert keeps at most `threshold` change times, and
//! an alert that is resolved, not flapping and without a change in the
//! window is dropped (it is indistinguishable from one never seen).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::sandbox::AlertStatus;

/// Flap damping settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapConfig {
    /// How far back state changes are counted.
    pub window: Duration,
    /// How many changes within `window` make an alert flapping.
    pub threshold: u32,
    /// How long a flapping alert must keep its status to stop flapping.
    pub stable_for: Duration,
}

/// Why a [`FlapConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlapConfigError {
    #[error("the flap threshold must be at least 2 state changes, got {0}")]
    Threshold(u32),
    #[error("the flap window must be longer than zero")]
    Window,
}

impl FlapConfig {
    /// A threshold of 0 or 1 would call every alert flapping.
    pub fn validate(&self) -> Result<(), FlapConfigError> {
        if self.threshold < 2 {
            return Err(FlapConfigError::Threshold(self.threshold));
        }
        if self.window.is_zero() {
            return Err(FlapConfigError::Window);
        }
        Ok(())
    }
}

/// What the dispatcher does with an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlapEvent {
    /// Not flapping: notify as usual.
    Normal,
    /// It just became flapping: send one notification saying so, and
    /// nothing else about it.
    StartedFlapping,
    /// Flapping: send nothing about it.
    Suppressed,
    /// It was stable for `stable_for`: notify its current status as usual.
    StoppedFlapping,
}

#[derive(Debug, Clone)]
struct Track {
    status: AlertStatus,
    /// The latest changes, oldest first, at most `threshold` of them.
    changes: VecDeque<i64>,
    last_change: i64,
    flapping: bool,
}

/// Per-alert change history.
#[derive(Debug, Clone)]
pub struct FlapDetector {
    config: FlapConfig,
    window_ms: i64,
    stable_ms: i64,
    threshold: usize,
    tracks: HashMap<u64, Track>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl FlapDetector {
    pub fn new(cfg: FlapConfig) -> Result<Self, FlapConfigError> {
        cfg.validate()?;
        Ok(FlapDetector {
            config: cfg,
            window_ms: ms(cfg.window),
            stable_ms: ms(cfg.stable_for),
            threshold: usize::try_from(cfg.threshold).unwrap_or(usize::MAX),
            tracks: HashMap::new(),
        })
    }

    /// The settings it was built with.
    pub fn config(&self) -> &FlapConfig {
        &self.config
    }

    /// Records an alert's status at `now` (call it whenever the alert is
    /// evaluated or changes; repeating a status is not a change).
    pub fn observe(&mut self, fingerprint: u64, status: AlertStatus, now: i64) -> FlapEvent {
        let (window_ms, stable_ms, threshold) = (self.window_ms, self.stable_ms, self.threshold);
        let t = self.tracks.entry(fingerprint).or_insert_with(|| Track {
            status: AlertStatus::Resolved,
            changes: VecDeque::new(),
            last_change: i64::MIN,
            flapping: false,
        });
        let changed = t.status != status;
        let event = if t.flapping && now.saturating_sub(t.last_change) >= stable_ms {
            // Stable long enough, even if this observation changes it: it
            // settled before this change, which starts a new history.
            t.flapping = false;
            t.changes.clear();
            if changed {
                record(t, status, now, threshold);
            }
            FlapEvent::StoppedFlapping
        } else {
            if changed {
                record(t, status, now, threshold);
            }
            prune(t, now, window_ms);
            if t.flapping {
                FlapEvent::Suppressed
            } else if changed && t.changes.len() >= threshold {
                t.flapping = true;
                FlapEvent::StartedFlapping
            } else {
                FlapEvent::Normal
            }
        };
        if forgettable(t, now, window_ms) {
            self.tracks.remove(&fingerprint);
        }
        event
    }

    /// Ends flapping for alerts stable for `stable_for` that were not
    /// observed since, returning them with the status to notify, and drops
    /// histories with nothing left to remember. Call it when
    /// [`FlapDetector::next_due`] comes and periodically (say once per
    /// evaluation): `observe` only drops the history it touches.
    pub fn sweep(&mut self, now: i64) -> Vec<(u64, AlertStatus)> {
        let (window_ms, stable_ms) = (self.window_ms, self.stable_ms);
        let mut stopped = Vec::new();
        self.tracks.retain(|fp, t| {
            if t.flapping && now.saturating_sub(t.last_change) >= stable_ms {
                t.flapping = false;
                t.changes.clear();
                stopped.push((*fp, t.status));
            }
            prune(t, now, window_ms);
            !forgettable(t, now, window_ms)
        });
        stopped.sort_unstable_by_key(|(fp, _)| *fp);
        stopped
    }

    /// When the next flapping alert becomes stable, if any is flapping.
    pub fn next_due(&self) -> Option<i64> {
        self.tracks
            .values()
            .filter(|t| t.flapping)
            .map(|t| t.last_change.saturating_add(self.stable_ms))
            .min()
    }

    pub fn is_flapping(&self, fingerprint: u64) -> bool {
        self.tracks.get(&fingerprint).is_some_and(|t| t.flapping)
    }

    /// Drops an alert that went away (deleted from the alert store).
    pub fn forget(&mut self, fingerprint: u64) {
        self.tracks.remove(&fingerprint);
    }

    /// Alerts with a history held.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

fn record(t: &mut Track, status: AlertStatus, now: i64, threshold: usize) {
    t.status = status;
    t.last_change = now;
    t.changes.push_back(now);
    // Only the latest `threshold` can decide whether enough fall in the window.
    while t.changes.len() > threshold {
        t.changes.pop_front();
    }
}

/// Keeps the changes within `(now - window, now]`.
fn prune(t: &mut Track, now: i64, window_ms: i64) {
    let cutoff = now.saturating_sub(window_ms);
    while t.changes.front().is_some_and(|c| *c <= cutoff) {
        t.changes.pop_front();
    }
}

/// Whether the track says nothing that a fresh one would not.
fn forgettable(t: &Track, now: i64, window_ms: i64) -> bool {
    let cutoff = now.saturating_sub(window_ms);
    t.status == AlertStatus::Resolved && !t.flapping && t.changes.iter().all(|c| *c <= cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertStatus::{Firing, Resolved};
    use FlapEvent::*;

    const S: i64 = 1_000;
    const M: i64 = 60 * S;

    /// Four changes in ten minutes flap; fifteen quiet minutes settle.
    fn detector() -> FlapDetector {
        FlapDetector::new(FlapConfig {
            window: Duration::from_secs(600),
            threshold: 4,
            stable_for: Duration::from_secs(900),
        })
        .unwrap()
    }

    fn toggle(i: usize) -> AlertStatus {
        if i.is_multiple_of(2) {
            Firing
        } else {
            Resolved
        }
    }

    #[test]
    fn rejects_configs_that_flap_everything() {
        let cfg = |threshold, window| FlapConfig {
            window: Duration::from_secs(window),
            threshold,
            stable_for: Duration::from_secs(60),
        };
        assert_eq!(
            FlapDetector::new(cfg(1, 60)).err(),
            Some(FlapConfigError::Threshold(1))
        );
        assert_eq!(
            FlapDetector::new(cfg(3, 0)).err(),
            Some(FlapConfigError::Window)
        );
        assert!(FlapDetector::new(cfg(2, 60)).is_ok());
    }

    #[test]
    fn steady_alerts_are_normal() {
        let mut f = detector();
        assert_eq!(f.observe(1, Firing, 0), Normal);
        for i in 1..100 {
            assert_eq!(f.observe(1, Firing, i * 15 * S), Normal);
        }
        assert_eq!(f.observe(1, Resolved, 100 * 15 * S), Normal);
        assert!(!f.is_flapping(1));
    }

    #[test]
    fn enough_changes_in_the_window_flap_once_then_suppress() {
        let mut f = detector();
        // Firing at 0 (a change from nothing), resolved at 1m, firing at 2m...
        assert_eq!(f.observe(7, Firing, 0), Normal);
        assert_eq!(f.observe(7, Resolved, M), Normal);
        assert_eq!(f.observe(7, Firing, 2 * M), Normal);
        assert_eq!(f.observe(7, Firing, 2 * M + 30 * S), Normal, "no change");
        assert_eq!(f.observe(7, Resolved, 3 * M), StartedFlapping);
        assert!(f.is_flapping(7));
        assert_eq!(f.observe(7, Firing, 4 * M), Suppressed);
        assert_eq!(f.observe(7, Firing, 5 * M), Suppressed);
        assert_eq!(f.observe(7, Resolved, 6 * M), Suppressed);
        // Other alerts are unaffected.
        assert_eq!(f.observe(8, Firing, 6 * M), Normal);
    }

    #[test]
    fn changes_spread_wider_than_the_window_never_flap() {
        let mut f = detector();
        // A change every 3m20s: exactly 3 changes in any 10 minutes
        // (the window is (now - 10m, now]).
        for i in 0..50 {
            let now = i as i64 * 200 * S;
            assert_eq!(f.observe(1, toggle(i), now), Normal, "change {i}");
        }
        // One second faster and the fourth change lands inside.
        let mut f = detector();
        let events: Vec<FlapEvent> = (0..4)
            .map(|i| f.observe(1, toggle(i), i as i64 * 199 * S))
            .collect();
        assert_eq!(events, vec![Normal, Normal, Normal, StartedFlapping]);
    }

    #[test]
    fn stops_flapping_after_stable_for() {
        let mut f = detector();
        for i in 0..4 {
            f.observe(1, toggle(i), i as i64 * M);
        }
        assert!(f.is_flapping(1));
        let last = 3 * M; // resolved
        assert_eq!(f.next_due(), Some(last + 15 * M));
        assert_eq!(f.observe(1, Resolved, last + 15 * M - 1), Suppressed);
        assert_eq!(f.observe(1, Resolved, last + 15 * M), StoppedFlapping);
        assert!(!f.is_flapping(1));
        assert_eq!(f.next_due(), None);
        // A fresh history: it takes `threshold` new changes to flap again.
        let t = last + 16 * M;
        assert_eq!(f.observe(1, Firing, t), Normal);
        assert_eq!(f.observe(1, Resolved, t + M), Normal);
        assert_eq!(f.observe(1, Firing, t + 2 * M), Normal);
        assert_eq!(f.observe(1, Resolved, t + 3 * M), StartedFlapping);
    }

    #[test]
    fn a_change_after_a_quiet_spell_ends_flapping_with_the_new_status() {
        let mut f = detector();
        for i in 0..4 {
            f.observe(1, toggle(i), i as i64 * M);
        }
        // Nothing observed for 20 minutes, then it fires: it had settled.
        assert_eq!(f.observe(1, Firing, 23 * M), StoppedFlapping);
        assert!(!f.is_flapping(1));
        // That change counts in the new history: three more flap it.
        assert_eq!(f.observe(1, Resolved, 24 * M), Normal);
        assert_eq!(f.observe(1, Firing, 25 * M), Normal);
        assert_eq!(f.observe(1, Resolved, 26 * M), StartedFlapping);
    }

    #[test]
    fn sweep_ends_flapping_for_alerts_no_longer_observed() {
        let mut f = detector();
        for i in 0..4 {
            f.observe(1, toggle(i), i as i64 * M);
            f.observe(2, toggle(i), i as i64 * M);
        }
        assert!(f.is_flapping(1) && f.is_flapping(2));
        // Alert 2 changes once more, later; alert 1 is never observed again.
        assert_eq!(f.observe(2, Firing, 10 * M), Suppressed);
        assert!(f.sweep(18 * M - 1).is_empty());
        assert_eq!(f.sweep(18 * M), vec![(1, Resolved)]);
        assert_eq!(f.next_due(), Some(25 * M));
        assert_eq!(f.sweep(25 * M), vec![(2, Firing)]);
        assert!(f.sweep(30 * M).is_empty());
        // The resolved one is gone; the firing one is kept.
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut f = detector();
        // Many short-lived alerts that fire once and resolve.
        for fp in 0..10_000u64 {
            let t = fp as i64 * S;
            f.observe(fp, Firing, t);
            f.observe(fp, Resolved, t + S);
            if fp % 1_000 == 999 {
                f.sweep(t + S);
                // Only those that changed within the last ten minutes.
                assert!(f.len() <= 600, "{} held", f.len());
            }
        }
        f.sweep(10_000 * S + 11 * M);
        assert!(f.is_empty());
        // A flapping alert keeps at most `threshold` changes.
        for i in 0..10_000 {
            f.observe(1, toggle(i), i as i64 * S);
        }
        assert!(f.tracks[&1].changes.len() <= 4);
        // Resolved observations of unknown alerts hold nothing.
        for fp in 100..200 {
            f.observe(fp, Resolved, 0);
        }
        assert_eq!(f.len(), 1);
        f.forget(1);
        assert!(f.is_empty());
    }

    /// SplitMix64: a small deterministic generator for property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// The definition, with the whole history kept: flapping starts at a
    /// change that makes `threshold` changes in `(now - window, now]` since
    /// the last time it settled, and ends at the first observation (or
    /// sweep) `stable_for` after the last change.
    #[test]
    fn agrees_with_a_model_that_keeps_the_whole_history() {
        let mut rng = Rng(5);
        for case in 0..200 {
            let threshold = 2 + (rng.next() % 4) as u32;
            let cfg = FlapConfig {
                window: Duration::from_secs(60 + rng.next() % 600),
                threshold,
                stable_for: Duration::from_secs(rng.next() % 900),
            };
            let (w, st) = (ms(cfg.window), ms(cfg.stable_for));
            let mut f = FlapDetector::new(cfg).unwrap();
            let mut status = Resolved;
            let mut history: Vec<i64> = Vec::new(); // since last settled
            let mut last_change = i64::MIN;
            let mut flapping = false;
            let mut now = 0i64;
            for step in 0..300 {
                now += (rng.next() % 120) as i64 * S;
                if rng.next().is_multiple_of(10) {
                    // A sweep instead of an observation.
                    let got = f.sweep(now);
                    let want = if flapping && now - last_change >= st {
                        flapping = false;
                        history.clear();
                        vec![(9, status)]
                    } else {
                        vec![]
                    };
                    assert_eq!(got, want, "case {case} step {step}");
                    continue;
                }
                let new = if rng.next().is_multiple_of(3) {
                    status
                } else {
                    toggle((rng.next() % 2) as usize)
                };
                let changed = new != status;
                let want = if flapping && now.saturating_sub(last_change) >= st {
                    flapping = false;
                    history.clear();
                    if changed {
                        status = new;
                        last_change = now;
                        history.push(now);
                    }
                    StoppedFlapping
                } else {
                    if changed {
                        status = new;
                        last_change = now;
                        history.push(now);
                    }
                    let recent = history.iter().filter(|c| **c > now - w).count();
                    if flapping {
                        Suppressed
                    } else if changed && recent >= threshold as usize {
                        flapping = true;
                        StartedFlapping
                    } else {
                        Normal
                    }
                };
                assert_eq!(f.observe(9, new, now), want, "case {case} step {step}");
                assert_eq!(f.is_flapping(9), flapping);
                assert!(
                    f.tracks
                        .get(&9)
                        .is_none_or(|t| t.changes.len() <= threshold as usize)
                );
            }
        }
    }
}
