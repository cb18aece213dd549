//! The streaming model behind the `anomaly` check.
//!
//! The model answers one question per point: *has this series, in the
//! memory the model keeps, ever looked like this?* It watches three
//! channels of the same series, each against the range (lowest and highest
//! value) that channel has shown over the last `memory_weeks` weeks:
//!
//! - **value**: the point itself (spikes, drops, level shifts);
//! - **smoothed**: an exponentially weighted mean with a 6 h time constant
//!   (slow drifts and sustained shifts that no single point reveals);
//! - **seasonal residual**: the point minus an additive daily (24 hourly
//!   bins) and weekly (7 day) profile on top of a 1-day level, used only
//!   when the profile explains at least half of the variance (a missing
//!   daily peak, an unusual Monday).
//!
//! A point's *excess* on a channel is how far it lies outside that range,
//! as a fraction of the range's width (0 inside). The score is the largest
//! excess `e` over the channels, mapped to `e / (e + 0.01)` so a point 1%
//! of the range beyond the known extremes scores 0.5 and the score stays in
//! [0, 1). After an excess of at least 1% (an *event*), further scores are
//! damped linearly for 12 h, so one incident is reported once and not at
//! every step of its rise.
//!
//! Everything is updated with time-based rates (`1 - e^(-dt/tau)`), hourly
//! and weekly bins come from the timestamps, and ranges are kept per
//! calendar week, so irregular sampling and gaps need no special case.
//! NaN and infinite values are skipped.

use serde::{Deserialize, Serialize};

const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Time constant of the smoothed channel.
const SMOOTH_HOURS: f64 = 6.0;
/// The smoothed channel is judged once it has this many time constants of history.
const SMOOTH_WARMUP: f64 = 4.0;
/// Time constant of the level under the seasonal profile.
const LEVEL_HOURS: f64 = 24.0;
/// Memory of each seasonal bin (and of the variance estimates), in days.
const SEASON_DAYS: f64 = 7.0;
/// The seasonal channel is judged when the profile leaves at most this
/// fraction of the variance around the level unexplained.
const SEASONAL_RESIDUAL_MAX: f64 = 0.5;
/// An excess of at least this (a fraction of the range) is an event; it is
/// also the excess that scores 0.5.
const EVENT_EXCESS: f64 = 0.01;
/// After an event, scores are damped linearly back to full over this long.
const REFRACTORY_HOURS: f64 = 12.0;
/// Ranges narrower than this fraction of their magnitude count as flat.
const FLAT: f64 = 1e-9;

/// Which side of the range counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Above or below.
    #[default]
    Both,
    /// Above the highest value only (latency, error ratios).
    Up,
    /// Below the lowest value only (throughput, success counts).
    Down,
}

/// The knobs of the model (the check's parameters that shape learning).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Points folded in before any score above 0.
    pub warmup: u64,
    /// Which side of the range counts.
    pub direction: Direction,
    /// Weeks of history each range covers (plus the current week).
    pub memory_weeks: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            warmup: 100,
            direction: Direction::Both,
            memory_weeks: 8,
        }
    }
}

/// Which channel produced a score.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    /// Nothing stood out.
    #[default]
    None,
    /// The value itself.
    Value,
    /// The 6 h smoothed value.
    Smoothed,
    /// The value minus its daily and weekly profile.
    Seasonal,
}

/// The range a channel showed in one calendar week.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Block {
    /// Week number since the epoch.
    week: i64,
    lo: f64,
    hi: f64,
}

/// Lowest and highest value per week over the last weeks.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Envelope {
    /// Oldest first; the last block is the current week.
    blocks: Vec<Block>,
}

impl Envelope {
    /// The range over the kept weeks, if anything was seen.
    fn range(&self) -> Option<(f64, f64)> {
        self.blocks.iter().fold(None, |acc, b| match acc {
            None => Some((b.lo, b.hi)),
            Some((lo, hi)) => Some((b.lo.min(lo), b.hi.max(hi))),
        })
    }

    /// How far `v` lies outside the range, as a fraction of its width.
    fn excess(&self, v: f64, direction: Direction) -> f64 {
        let Some((lo, hi)) = self.range() else {
            return 0.0;
        };
        let width = (hi - lo)
            .max(FLAT * hi.abs().max(lo.abs()))
            .max(f64::MIN_POSITIVE);
        let up = (v - hi) / width;
        let down = (lo - v) / width;
        let e = match direction {
            Direction::Both => up.max(down),
            Direction::Up => up,
            Direction::Down => down,
        };
        e.max(0.0)
    }

    /// Folds `v` at time `t` in and forgets weeks older than `memory_weeks`.
    fn add(&mut self, t: i64, v: f64, memory_weeks: u32) {
        let week = t.div_euclid(WEEK_MS);
        match self.blocks.last_mut() {
            Some(b) if b.week == week => {
                b.lo = b.lo.min(v);
                b.hi = b.hi.max(v);
            }
            _ => self.blocks.push(Block { week, lo: v, hi: v }),
        }
        let oldest = week - i64::from(memory_weeks);
        self.blocks.retain(|b| b.week >= oldest);
    }
}

/// Additive daily and weekly profile on a slowly moving level.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Seasonal {
    level: f64,
    /// Mean offset per UTC hour of day.
    hourly: [f64; 24],
    hourly_n: [u32; 24],
    /// Mean offset per day of week (0 = Monday), on top of `hourly`.
    daily: [f64; 7],
    daily_n: [u32; 7],
    /// Exponentially weighted mean square around the level, and of the residual.
    var_level: f64,
    var_residual: f64,
}

/// Where a timestamp falls: (hour of day, day of week with 0 = Monday).
fn bins(t: i64) -> (usize, usize) {
    let hour = t.rem_euclid(DAY_MS) / 3_600_000;
    // 1970-01-01 was a Thursday.
    let day = (t.div_euclid(DAY_MS) + 3).rem_euclid(7);
    (hour as usize, day as usize)
}

/// The rate of an exponentially weighted mean with time constant `tau_ms`
/// after `dt_ms`, but at least `1/n` so early points are averaged evenly.
fn rate(dt_ms: f64, tau_ms: f64, n: f64) -> f64 {
    (1.0 - (-dt_ms / tau_ms).exp()).max(1.0 / n).min(1.0)
}

/// The learned state of one series.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Finite points folded in.
    n: u64,
    /// Timestamp of the last folded point.
    last_t: i64,
    /// Time covered so far, for the smoothed channel's warm-up.
    age_ms: f64,
    smoothed: f64,
    value_range: Envelope,
    smoothed_range: Envelope,
    residual_range: Envelope,
    season: Seasonal,
    /// When the last event happened.
    last_event: Option<i64>,
}

/// The model's judgement of one point.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// In [0, 1): `e / (e + 0.01)` of the damped excess `e`.
    pub score: f64,
    /// The largest excess over the channels before damping.
    pub excess: f64,
    /// The channel with the largest excess.
    pub channel: Channel,
    /// Expected band for the point (where the value and seasonal channels
    /// reach `band_score`), if a range was known.
    pub band: Option<(f64, f64)>,
}

/// The excess that scores `score` (the inverse of `e / (e + EVENT_EXCESS)`).
pub fn excess_for_score(score: f64) -> f64 {
    if score >= 1.0 {
        f64::INFINITY
    } else {
        EVENT_EXCESS * score.max(0.0) / (1.0 - score.max(0.0))
    }
}

impl Model {
    /// Finite points folded in so far.
    pub fn points(&self) -> u64 {
        self.n
    }

    /// Judges the point `(t, x)` against what was learned before it, then
    /// learns from it. `t` must be later than every earlier point (the
    /// caller skips the others); a non-finite `x` is not learned from and
    /// scores 0. `band_score` is the score at which the band is drawn.
    pub fn update(&mut self, s: &Settings, t: i64, x: f64, band_score: f64) -> Judgement {
        if !x.is_finite() {
            return Judgement::default();
        }
        self.n += 1;
        let n = self.n as f64;
        if self.n == 1 {
            self.last_t = t;
            self.smoothed = x;
            self.season.level = x;
            self.value_range.add(t, x, s.memory_weeks);
            self.smoothed_range.add(t, x, s.memory_weeks);
            return Judgement::default();
        }
        let dt = t.saturating_sub(self.last_t).max(0) as f64;
        self.last_t = t;
        self.age_ms += dt;
        let mut best = (0.0, Channel::None);
        let mut consider = |e: f64, c: Channel| {
            if e > best.0 {
                best = (e, c);
            }
        };

        // Value channel.
        consider(self.value_range.excess(x, s.direction), Channel::Value);
        let band_excess = excess_for_score(band_score);
        let mut band = widen(self.value_range.range(), band_excess);
        self.value_range.add(t, x, s.memory_weeks);

        // Smoothed channel.
        self.smoothed += (1.0 - (-dt / (SMOOTH_HOURS * HOUR_MS)).exp()) * (x - self.smoothed);
        if self.age_ms >= SMOOTH_WARMUP * SMOOTH_HOURS * HOUR_MS {
            consider(
                self.smoothed_range.excess(self.smoothed, s.direction),
                Channel::Smoothed,
            );
        }
        self.smoothed_range.add(t, self.smoothed, s.memory_weeks);

        // Seasonal channel.
        let season = &mut self.season;
        let (hour, day) = bins(t);
        let expected = season.level + season.hourly[hour] + season.daily[day];
        let residual = x - expected;
        let around_level = x - season.level;
        let a = rate(dt, SEASON_DAYS * 24.0 * HOUR_MS, n);
        season.var_level += a * (around_level * around_level - season.var_level);
        season.var_residual += a * (residual * residual - season.var_residual);
        let profiled = season.hourly_n.iter().all(|&k| k > 0);
        if profiled {
            let strong = season.var_residual < SEASONAL_RESIDUAL_MAX * season.var_level;
            if strong && self.age_ms >= WEEK_MS as f64 {
                consider(
                    self.residual_range.excess(residual, s.direction),
                    Channel::Seasonal,
                );
                if let Some((lo, hi)) = widen(self.residual_range.range(), band_excess) {
                    band = band.map(|(blo, bhi)| (blo.max(expected + lo), bhi.min(expected + hi)));
                }
            }
            self.residual_range.add(t, residual, s.memory_weeks);
        }
        // Learn the profile: each bin remembers about SEASON_DAYS days.
        let bin_tau = SEASON_DAYS * HOUR_MS;
        season.hourly_n[hour] = season.hourly_n[hour].saturating_add(1);
        let ah = rate(dt, bin_tau, f64::from(season.hourly_n[hour]));
        season.hourly[hour] += ah * (x - season.level - season.daily[day] - season.hourly[hour]);
        season.daily_n[day] = season.daily_n[day].saturating_add(1);
        let ad = rate(dt, bin_tau, f64::from(season.daily_n[day]));
        season.daily[day] += ad * (x - season.level - season.hourly[hour] - season.daily[day]);
        let al = rate(dt, LEVEL_HOURS * HOUR_MS, n);
        season.level += al * (x - season.hourly[hour] - season.daily[day] - season.level);

        // Damping after an event, and the score.
        let (excess, channel) = if self.n < s.warmup {
            (0.0, Channel::None)
        } else {
            best
        };
        let damping = match self.last_event {
            Some(at) => (t.saturating_sub(at) as f64 / (REFRACTORY_HOURS * HOUR_MS)).min(1.0),
            None => 1.0,
        };
        if excess >= EVENT_EXCESS {
            self.last_event = Some(t);
        }
        let damped = excess * damping;
        Judgement {
            score: damped / (damped + EVENT_EXCESS),
            excess,
            channel,
            band: band.filter(|(lo, hi)| lo <= hi),
        }
    }
}

/// A range widened on both sides by `excess` times its width.
fn widen(range: Option<(f64, f64)>, excess: f64) -> Option<(f64, f64)> {
    range.map(|(lo, hi)| {
        let w = (hi - lo) * excess;
        (lo - w, hi + w)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn run(values: &[f64], step_ms: i64) -> Vec<Judgement> {
        let s = Settings {
            warmup: 10,
            ..Settings::default()
        };
        let mut m = Model::default();
        values
            .iter()
            .enumerate()
            .map(|(i, &x)| m.update(&s, i as i64 * step_ms, x, 0.5))
            .collect()
    }

    #[test]
    fn bins_follow_the_calendar() {
        // 2024-01-01 was a Monday.
        let monday = 1_704_067_200_000;
        assert_eq!(bins(monday), (0, 0));
        assert_eq!(bins(monday + 13 * 3_600_000 + 59 * MIN), (13, 0));
        assert_eq!(bins(monday + 6 * DAY_MS), (0, 6));
        assert_eq!(bins(-1), (23, 2)); // 1969-12-31 23:59:59.999, a Wednesday
    }

    #[test]
    fn a_new_extreme_scores_high_and_known_values_score_zero() {
        let mut v: Vec<f64> = (0..500).map(|i| 10.0 + (i % 7) as f64).collect();
        v.push(12.0);
        v.push(40.0);
        let j = run(&v, 5 * MIN);
        assert_eq!(j[500].score, 0.0);
        assert!(j[501].score > 0.99, "{:?}", j[501]);
        assert_eq!(j[501].channel, Channel::Value);
        let (lo, hi) = j[501].band.unwrap();
        assert!(lo < 10.0 && hi > 16.0 && hi < 17.0, "{lo} {hi}");
    }

    #[test]
    fn warmup_and_non_finite_points_score_zero() {
        let v = [1.0, 2.0, 100.0, f64::NAN, f64::INFINITY];
        assert!(run(&v, MIN).iter().all(|j| j.score == 0.0));
    }

    #[test]
    fn scores_are_damped_after_an_event() {
        let mut v: Vec<f64> = (0..500).map(|i| (i % 5) as f64).collect();
        v.extend([10.0, 20.0]);
        let j = run(&v, MIN);
        assert!(j[500].score > 0.99);
        // One minute later a higher value is still new, but damped by 1/720.
        assert!(j[501].excess > 0.5 && j[501].score < 0.5, "{:?}", j[501]);
    }

    #[test]
    fn direction_limits_the_side() {
        let mut m = Model::default();
        let s = Settings {
            warmup: 1,
            direction: Direction::Up,
            ..Settings::default()
        };
        for i in 0..100 {
            m.update(&s, i * MIN, (i % 3) as f64, 0.5);
        }
        assert_eq!(m.update(&s, 100 * MIN, -50.0, 0.5).score, 0.0);
        assert!(m.update(&s, 101 * MIN, 50.0, 0.5).score > 0.9);
    }

    #[test]
    fn ranges_forget_old_weeks() {
        let mut e = Envelope::default();
        e.add(0, 100.0, 2);
        e.add(WEEK_MS, 1.0, 2);
        e.add(2 * WEEK_MS, 2.0, 2);
        assert_eq!(e.range(), Some((1.0, 100.0)));
        e.add(3 * WEEK_MS, 3.0, 2);
        assert_eq!(e.range(), Some((1.0, 3.0)));
        assert_eq!(e.blocks.len(), 3);
    }

    #[test]
    fn a_missing_daily_peak_is_seen_by_the_seasonal_channel() {
        // Three weeks of a daily square wave (high 08:00-16:00), 15 min steps,
        // with small noise; then a day where the peak does not come.
        let step = 15 * MIN;
        let per_day = (DAY_MS / step) as usize;
        let mut v = Vec::new();
        for i in 0..per_day * 22 {
            let hour = (i % per_day) * 24 / per_day;
            let noise = ((i * 7919) % 13) as f64 / 13.0;
            let high = (8..16).contains(&hour) && i < per_day * 21;
            v.push(if high { 80.0 } else { 20.0 } + noise);
        }
        let j = run(&v, step);
        let last_day = &j[per_day * 21..];
        let best = last_day.iter().fold(0.0f64, |m, j| m.max(j.score));
        assert!(best > 0.9, "{best}");
        assert!(last_day.iter().any(|j| j.channel == Channel::Seasonal));
        // The weeks before, once learned, stay quiet.
        let quiet = j[per_day * 14..per_day * 21].iter().all(|j| j.score < 0.5);
        assert!(quiet);
    }
}
