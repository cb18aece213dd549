//! The `trend` check: fires when a forecast of the series crosses a limit
//! within a horizon ("disk full within 4 h", "queue above 100 within 10 min").
//!
//! Two forecasts, both a straight line from the fitted current level:
//!
//! - `linear`: least squares over the window's points, like PromQL's
//!   `predict_linear(v[window], horizon)`. Stateless.
//! - `holt`: double exponential smoothing (Holt's linear method: a level and a
//!   trend, smoothed by `alpha` and `beta`) adapted to irregular sampling: the
//!   trend is per second and each step advances by the real time between
//!   points. It follows a recent change of slope faster than a fit over the
//!   whole window. It keeps its level and trend in host-owned state and
//!   folds in only the points newer than the last one it saw; with no state
//!   it replays the window, which gives exactly the same result as the state
//!   built from the same points.
//!
//! Times are measured from the evaluation time (or from the last point, if
//! that is later). NaN and infinite points are skipped.
use serde::de::Deserializer;
use serde::ser::Serializer;
use vigil_plugin_sdk::duration::human_secs;
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::short_number;

pub use vigil_plugin_sdk::duration::Duration;

/// Parameters of the `trend` check; set `above`, `below` or both.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Trend {
    /// Fire when the forecast is strictly greater than this at any time from
    /// now to now + `horizon` (so also when the fitted level already is).
    pub above: Option<f64>,
    /// Fire when the forecast is strictly less than this at any time from
    /// now to now + `horizon` (so also when the fitted level already is).
    pub below: Option<f64>,
    /// How far ahead to look, a Prometheus-style duration such as "10m",
    /// "4h" or "1h30m" (units ms, s, m, h, d, w, y); must be positive.
    pub horizon: Duration,
    /// The forecast: "linear" (least squares over the window, like PromQL's
    /// `predict_linear`; default, stateless) or "holt" (double exponential
    /// smoothing with `alpha` and `beta`, kept incrementally in state).
    #[serde(default)]
    pub method: Method,
    /// Holt only: weight of each new point in the level, in (0, 1]
    /// (default 0.3). Rejected with method = "linear".
    pub alpha: Option<f64>,
    /// Holt only: weight of each new level change in the trend, in (0, 1]
    /// (default 0.1). Rejected with method = "linear".
    pub beta: Option<f64>,
    /// Fewer finite points than this (in the window for "linear", seen so
    /// far for "holt") is no-data; at least 2, default 3.
    #[serde(default = "three")]
    pub min_points: u32,
}

/// The forecasting method.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Least squares line over the window.
    #[default]
    Linear,
    /// Holt's double exponential smoothing.
    Holt,
}

const DEFAULT_ALPHA: f64 = 0.3;
const DEFAULT_BETA: f64 = 0.1;

fn three() -> u32 {
    3
}

/// Collects every parameter error, joined with "; ".
fn validate(p: &Trend) -> Result<(), String> {
    let mut errors = Vec::new();
    match (p.below, p.above) {
        (None, None) => errors.push("set `above`, `below` or both".to_string()),
        (Some(b), Some(a)) if b > a => errors.push(format!(
            "`below` ({b}) is greater than `above` ({a}): every forecast would fire"
        )),
        _ => {}
    }
    if p.horizon.ms <= 0 {
        errors.push("`horizon` must be positive".to_string());
    }
    for (name, value) in [("alpha", p.alpha), ("beta", p.beta)] {
        match (p.method, value) {
            (Method::Linear, Some(_)) => {
                errors.push(format!("`{name}` only applies to method = \"holt\""))
            }
            (Method::Holt, Some(v)) if !(v > 0.0 && v <= 1.0) => {
                errors.push(format!("`{name}` must be in (0, 1], got {v}"))
            }
            _ => {}
        }
    }
    if p.min_points < 2 {
        errors.push(format!(
            "`min_points` must be at least 2 (a trend needs two points), got {}",
            p.min_points
        ));
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// A straight-line forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    /// The fitted value at the reference time.
    level: f64,
    /// Change per second.
    slope: f64,
    /// Typical distance of the points from the fit (residual standard
    /// deviation for linear, EW RMS of one-step errors for Holt).
    spread: f64,
}

/// Least squares over the finite points, the level taken at `reference`.
fn linear(series: &Series<'_>, reference: i64, min_points: u32) -> Result<Fit, String> {
    // Seconds relative to the reference time keep the sums well conditioned.
    let points: Vec<(f64, f64)> = series
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (t.saturating_sub(reference) as f64 / 1000.0, v))
        .collect();
    if points.len() < min_points as usize {
        return Err(format!("{} of {min_points} points", points.len()));
    }
    let n = points.len() as f64;
    let x_mean = points.iter().map(|p| p.0).sum::<f64>() / n;
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in &points {
        sxx += (x - x_mean) * (x - x_mean);
        sxy += (x - x_mean) * (y - y_mean);
    }
    if sxx <= 0.0 {
        return Err("all points have the same timestamp".to_string());
    }
    let slope = sxy / sxx;
    let ssr: f64 = points
        .iter()
        .map(|&(x, y)| (y - (y_mean + slope * (x - x_mean))).powi(2))
        .sum();
    let spread = match points.len() {
        0..=2 => 0.0,
        k => (ssr / (k - 2) as f64).sqrt(),
    };
    Ok(Fit {
        level: y_mean - slope * x_mean,
        slope,
        spread,
    })
}

/// Holt's level and trend after the points seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Holt {
    /// Smoothed level at `fit_ts`.
    pub level: f64,
    /// Smoothed trend, per second.
    pub trend: f64,
    /// Exponentially weighted mean of the squared one-step-ahead errors.
    pub err2: f64,
    /// Timestamp of the last finite point folded in.
    pub fit_ts: i64,
    /// Finite points folded in.
    pub count: u64,
    /// Timestamp of the last point processed (finite or not).
    pub last_ts: i64,
    /// Whether any point was processed (`last_ts` is meaningful).
    pub seen: bool,
}

impl Holt {
    /// Folds in every point newer than the last one processed.
    fn update(&mut self, alpha: f64, beta: f64, series: &Series<'_>) {
        for (t, x) in series.iter() {
            if self.seen && t <= self.last_ts {
                continue;
            }
            self.last_ts = t;
            self.seen = true;
            if !x.is_finite() {
                continue;
            }
            let dt = t.saturating_sub(self.fit_ts) as f64 / 1000.0;
            match self.count {
                0 => {
                    self.level = x;
                    self.trend = 0.0;
                }
                // The first trend is the first difference.
                1 => {
                    self.trend = (x - self.level) / dt;
                    self.level = x;
                }
                _ => {
                    let predicted = self.level + self.trend * dt;
                    let err = x - predicted;
                    self.err2 = match self.count {
                        2 => err * err,
                        _ => (1.0 - alpha) * self.err2 + alpha * err * err,
                    };
                    let level = alpha * x + (1.0 - alpha) * predicted;
                    self.trend = beta * (level - self.level) / dt + (1.0 - beta) * self.trend;
                    self.level = level;
                }
            }
            self.fit_ts = t;
            self.count += 1;
        }
    }

    fn fit(&self, reference: i64) -> Fit {
        Fit {
            level: self.level + self.trend * reference.saturating_sub(self.fit_ts) as f64 / 1000.0,
            slope: self.trend,
            spread: self.err2.sqrt(),
        }
    }
}

/// Per-series state: Holt's, or nothing for the linear method.
///
/// Encoded as nothing at all when empty, so the linear method keeps no state
/// bytes (the SDK decodes an empty state as the default without calling
/// `deserialize`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TrendState(pub Option<Holt>);

impl Serialize for TrendState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            None => s.serialize_unit(),
            Some(holt) => holt.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TrendState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Holt::deserialize(d).map(|h| TrendState(Some(h)))
    }
}

/// Fires when a forecast (linear least squares, or Holt's double exponential
/// smoothing) is above `above` or below `below` within `horizon`. Score: the
/// forecast at the horizon; band: the fitted current level ± the spread of
/// the points around the fit.
#[check(name = "trend", validate = validate)]
pub fn trend(p: &Trend, ctx: &Context, series: &Series<'_>, state: &mut TrendState) -> Verdict {
    let reference = series.last().map_or(ctx.now, |(t, _)| t.max(ctx.now));
    let fit = match p.method {
        Method::Linear => {
            *state = TrendState(None);
            linear(series, reference, p.min_points)
        }
        Method::Holt => {
            let holt = state.0.get_or_insert_with(Holt::default);
            holt.update(
                p.alpha.unwrap_or(DEFAULT_ALPHA),
                p.beta.unwrap_or(DEFAULT_BETA),
                series,
            );
            match holt.count {
                n if n < u64::from(p.min_points) => Err(format!("{n} of {} points", p.min_points)),
                _ if series.is_empty() => Err("no points in the window".to_string()),
                _ => Ok(holt.fit(reference)),
            }
        }
    };
    match fit {
        Ok(fit) => judge(p, &fit),
        Err(why) => Verdict::no_data().with_message(why),
    }
}

fn judge(p: &Trend, fit: &Fit) -> Verdict {
    let horizon = p.horizon.secs();
    let forecast = fit.level + fit.slope * horizon;
    let band = (fit.level - fit.spread, fit.level + fit.spread);
    if !forecast.is_finite() {
        return Verdict::no_data().with_message(format!("forecast is {forecast}"));
    }
    // `up`: the limit is an upper one (`above`).
    let crossing = |limit: f64, up: bool| {
        let past = |x: f64| if up { x > limit } else { x < limit };
        let side = if up { "above" } else { "below" };
        if past(fit.level) {
            return Some(format!(
                "already {side} {limit}: level {}, {} in {}",
                short_number(fit.level),
                short_number(forecast),
                p.horizon
            ));
        }
        past(forecast).then(|| {
            let eta = human_secs((limit - fit.level) / fit.slope);
            format!(
                "reaches {limit} in {eta} (level {}, {} in {})",
                short_number(fit.level),
                short_number(forecast),
                p.horizon
            )
        })
    };
    let fired = p
        .above
        .and_then(|a| crossing(a, true))
        .or_else(|| p.below.and_then(|b| crossing(b, false)));
    let verdict = match fired {
        Some(message) => Verdict::firing(forecast).with_message(message),
        None => Verdict::ok(forecast),
    };
    verdict.with_band(band.0, band.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    const T0: i64 = 1_700_000_000_000;

    fn params(json: &str) -> Trend {
        configure::<Plugin>(json).unwrap()
    }

    fn batch(ts: &[i64], vs: &[f64]) -> Batch {
        let mut b = Batch::default();
        b.push_series(1, ts, vs);
        b.push_series(2, &[], &[]);
        b
    }

    fn eval(p: &Trend, now: i64, ts: &[i64], vs: &[f64]) -> Output {
        evaluate::<Plugin>(p, now, &batch(ts, vs), &State::default()).unwrap()
    }

    /// One point a minute for `n` minutes, value `f(minute)`, now = the last point.
    fn minutes(n: i64, f: impl Fn(f64) -> f64) -> (Vec<i64>, Vec<f64>, i64) {
        let ts: Vec<i64> = (0..n).map(|i| T0 + i * 60_000).collect();
        let vs = (0..n).map(|i| f(i as f64)).collect();
        let now = T0 + (n - 1) * 60_000;
        (ts, vs, now)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn linear_fires_when_the_forecast_crosses_within_the_horizon() {
        // Disk at 61% growing 1% a minute; 80% after 20 points.
        let (ts, vs, now) = minutes(20, |m| 61.0 + m);
        let out = eval(
            &params(r#"{"above": 100, "horizon": "30m"}"#),
            now,
            &ts,
            &vs,
        );
        let v = &out.verdicts[0];
        assert_eq!(v.status, Status::Firing);
        assert!(close(v.score, 110.0), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some("reaches 100 in 20m (level 80, 110 in 30m)")
        );
        let band = v.band.unwrap();
        assert!(
            close(band.lower, 80.0) && close(band.upper, 80.0),
            "{band:?}"
        );
        assert_eq!(out.verdicts[1].status, Status::NoData);
        assert!(out.state.data.is_empty(), "linear keeps no state");
        // Ten minutes ahead it stays at 90.
        let v = &eval(
            &params(r#"{"above": 100, "horizon": "10m"}"#),
            now,
            &ts,
            &vs,
        )
        .verdicts[0];
        assert_eq!((v.status, v.message.as_deref()), (Status::Ok, None));
        assert!(close(v.score, 90.0));
    }

    #[test]
    fn eta_is_measured_from_now_and_formatted() {
        // 2.5 per minute from 10 (last point 57.5 at minute 19); now is 1 minute later.
        let (ts, vs, last) = minutes(20, |m| 10.0 + 2.5 * m);
        let now = last + 60_000;
        let v = &eval(&params(r#"{"above": 78, "horizon": "1h"}"#), now, &ts, &vs).verdicts[0];
        // Level now 60, 18 to go at 2.5/min: 7m12s.
        assert_eq!(
            v.message.as_deref(),
            Some("reaches 78 in 7m12s (level 60, 210 in 1h)")
        );
    }

    #[test]
    fn fires_below_and_when_already_past() {
        // Free space shrinking 0.5 GB/min from 30 GB: 20.5 GB now.
        let (ts, vs, now) = minutes(20, |m| 30.0 - 0.5 * m);
        let v = &eval(&params(r#"{"below": 5, "horizon": "4h"}"#), now, &ts, &vs).verdicts[0];
        assert_eq!(v.status, Status::Firing);
        assert_eq!(
            v.message.as_deref(),
            Some("reaches 5 in 31m (level 20.5, -99.5 in 4h)")
        );
        // Already above the limit, even though falling.
        let v = &eval(&params(r#"{"above": 10, "horizon": "1m"}"#), now, &ts, &vs).verdicts[0];
        assert_eq!(v.status, Status::Firing);
        assert_eq!(
            v.message.as_deref(),
            Some("already above 10: level 20.5, 20 in 1m")
        );
        // A flat series inside the limits is ok.
        let (ts, vs, now) = minutes(20, |_| 50.0);
        let v = &eval(
            &params(r#"{"above": 100, "below": 0, "horizon": "1w"}"#),
            now,
            &ts,
            &vs,
        )
        .verdicts[0];
        assert_eq!((v.status, v.score), (Status::Ok, 50.0));
    }

    #[test]
    fn linear_matches_least_squares_by_hand() {
        // x = 0, 10, 20, 30 s; y = 1, 3, 2, 6. x̄ = 15, ȳ = 3,
        // Sxx = 500, Sxy = (-15)(-2) + (-5)(0) + 5(-1) + 15(3) = 70: slope 0.14/s.
        // Level at x = 30: 3 + 0.14·15 = 5.1; fitted 0.9, 2.3, 3.7, 5.1,
        // residuals 0.1, 0.7, -1.7, 0.9: SSR 4.2, sd sqrt(4.2 / 2).
        let ts = [T0, T0 + 10_000, T0 + 20_000, T0 + 30_000];
        let vs = [1.0, 3.0, 2.0, 6.0];
        let v = &eval(
            &params(r#"{"above": 1000, "horizon": "100s"}"#),
            T0 + 30_000,
            &ts,
            &vs,
        )
        .verdicts[0];
        assert!(close(v.score, 5.1 + 14.0), "{v:?}");
        let band = v.band.unwrap();
        assert!(close(band.lower, 5.1 - 2.1f64.sqrt()), "{band:?}");
        assert!(close(band.upper, 5.1 + 2.1f64.sqrt()), "{band:?}");
    }

    #[test]
    fn irregular_timestamps_and_nan_points() {
        // An exact line (0.1 per second) sampled irregularly, with NaN and inf points.
        let offsets = [0i64, 7, 9, 30, 31, 65, 100, 180];
        let ts: Vec<i64> = offsets.iter().map(|s| T0 + s * 1000).collect();
        let mut vs: Vec<f64> = offsets.iter().map(|&s| 5.0 + 0.1 * s as f64).collect();
        vs[2] = f64::NAN;
        vs[5] = f64::INFINITY;
        let now = T0 + 200_000;
        for method in ["linear", "holt"] {
            let p = params(&format!(
                r#"{{"above": 30, "horizon": "5m", "method": "{method}"}}"#
            ));
            let v = &eval(&p, now, &ts, &vs).verdicts[0];
            // Level at 200 s: 25; in 300 s: 55; reaches 30 in 50 s.
            assert!(close(v.score, 55.0), "{method}: {v:?}");
            assert_eq!(
                v.message.as_deref(),
                Some("reaches 30 in 50s (level 25, 55 in 5m)"),
                "{method}"
            );
        }
    }

    #[test]
    fn too_few_points_is_no_data() {
        let p = params(r#"{"above": 1, "horizon": "1h"}"#);
        let v = &eval(&p, T0, &[T0, T0 + 1], &[1.0, f64::NAN]).verdicts[0];
        assert_eq!(
            (v.status, v.message.as_deref()),
            (Status::NoData, Some("1 of 3 points"))
        );
        let v = &eval(&p, T0, &[T0, T0, T0], &[1.0, 2.0, 3.0]).verdicts[0];
        assert_eq!(
            (v.status, v.message.as_deref()),
            (Status::NoData, Some("all points have the same timestamp"))
        );
        let p = params(r#"{"above": 1, "horizon": "1h", "min_points": 2}"#);
        let v = &eval(&p, T0 + 1000, &[T0, T0 + 1000], &[0.0, 1.0]).verdicts[0];
        assert_eq!(
            (v.status, v.band),
            (
                Status::Firing,
                Some(Band {
                    lower: 1.0,
                    upper: 1.0
                })
            )
        );
        let p = params(r#"{"above": 1, "horizon": "1h", "method": "holt"}"#);
        let v = &eval(&p, T0, &[T0, T0 + 1000], &[0.0, 1.0]).verdicts[0];
        assert_eq!(
            (v.status, v.message.as_deref()),
            (Status::NoData, Some("2 of 3 points"))
        );
    }

    #[test]
    fn holt_follows_a_change_of_slope_faster_than_linear() {
        // Flat at 10 for 50 minutes, then +1 a minute for 10 minutes (20 now).
        let (ts, vs, now) = minutes(60, |m| if m < 50.0 { 10.0 } else { m - 40.0 });
        let json = |m| format!(r#"{{"above": 30, "horizon": "30m", "method": "{m}"}}"#);
        let linear = &eval(&params(&json("linear")), now, &ts, &vs).verdicts[0];
        let holt = &eval(&params(&json("holt")), now, &ts, &vs).verdicts[0];
        assert_eq!(linear.status, Status::Ok, "{linear:?}");
        assert_eq!(holt.status, Status::Firing, "{holt:?}");
        // Linear averages the flat hour in: about 15. Holt: about 34.
        assert!(linear.score < 20.0, "{linear:?}");
        assert!(holt.score > 30.0 && holt.score < 50.0, "{holt:?}");
        let band = holt.band.unwrap();
        assert!(band.lower < 19.5 && band.upper > 18.0, "{band:?}");
    }

    /// Chunked, all at once, sliding, and state dropped then rebuilt: same verdicts and state.
    #[test]
    fn holt_incremental_equals_replay() {
        let p = params(
            r#"{"above": 70, "horizon": "20m", "method": "holt", "alpha": 0.4, "beta": 0.2}"#,
        );
        let (ts, mut vs, _) = minutes(90, |m| {
            let noise = ((m as usize * 7919 % 101) as f64 / 101.0 - 0.5) * 4.0;
            20.0 + 0.3 * m + noise
        });
        vs[0] = f64::NAN;
        vs[17] = f64::NAN;
        vs[41] = f64::INFINITY;
        for end in [10, 40, 41, 90] {
            let (ts, vs) = (&ts[..end], &vs[..end]);
            let now = ts[end - 1] + 5_000;
            let once = eval(&p, now, ts, vs);
            let mut state = State::default();
            let mut upto = 0;
            let mut last = None;
            for step in [1, 4, 2, 9, 3].iter().cycle() {
                upto = (upto + step).min(end);
                let out =
                    evaluate::<Plugin>(&p, now, &batch(&ts[..upto], &vs[..upto]), &state).unwrap();
                state = out.state.clone();
                last = Some(out);
                if upto == end {
                    break;
                }
            }
            let chunked = last.unwrap();
            assert_eq!(chunked.verdicts, once.verdicts, "end {end}");
            assert_eq!(chunked.state, once.state, "end {end}");
            assert!(!once.state.data.is_empty());
            // Nothing new: same verdict.
            let again = evaluate::<Plugin>(&p, now, &batch(ts, vs), &chunked.state).unwrap();
            assert_eq!(again.verdicts, once.verdicts, "end {end}");
            // Corrupt state: rebuilt from the window.
            let corrupt = State {
                offsets: vec![0, 5, 5],
                data: vec![0xff; 5],
            };
            let rebuilt = evaluate::<Plugin>(&p, now, &batch(ts, vs), &corrupt).unwrap();
            assert_eq!(rebuilt.verdicts, once.verdicts, "end {end}");
            assert_eq!(rebuilt.state, once.state, "end {end}");
        }
        // The host slides the window; the state still holds the older points.
        let now = ts[89] + 5_000;
        let first = eval(&p, now, &ts[..60], &vs[..60]);
        let slid = evaluate::<Plugin>(&p, now, &batch(&ts[30..], &vs[30..]), &first.state).unwrap();
        let full = eval(&p, now, &ts, &vs);
        assert_eq!(slid.verdicts, full.verdicts);
        assert_eq!(slid.state, full.state);
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(
            err(r#"{"horizon": "1h"}"#),
            "invalid params: set `above`, `below` or both"
        );
        assert!(err(r#"{"above": 1}"#).contains("missing field `horizon`"));
        assert_eq!(
            err(r#"{"above": 1, "horizon": "4x"}"#),
            "invalid params: `horizon`: invalid duration \"4x\": unknown unit \"x\" \
             (expected e.g. \"30s\", \"5m\", \"1h30m\"; units y, w, d, h, m, s, ms)"
        );
        assert!(
            err(r#"{"above": 1, "horizon": 60}"#)
                .starts_with("invalid params: `horizon`: invalid type")
        );
        assert_eq!(
            err(r#"{"above": 1, "horizon": "0"}"#),
            "invalid params: `horizon` must be positive"
        );
        assert_eq!(
            err(r#"{"above": 1, "below": 2, "horizon": "1h"}"#),
            "invalid params: `below` (2) is greater than `above` (1): every forecast would fire"
        );
        assert_eq!(
            err(r#"{"above": 1, "horizon": "1h", "alpha": 0.5, "beta": 0.5}"#),
            "invalid params: `alpha` only applies to method = \"holt\"; \
             `beta` only applies to method = \"holt\""
        );
        assert_eq!(
            err(r#"{"above": 1, "horizon": "1h", "method": "holt", "alpha": 0, "beta": 1.5}"#),
            "invalid params: `alpha` must be in (0, 1], got 0; `beta` must be in (0, 1], got 1.5"
        );
        assert_eq!(
            err(r#"{"above": 1, "horizon": "1h", "min_points": 1}"#),
            "invalid params: `min_points` must be at least 2 (a trend needs two points), got 1"
        );
        assert!(
            err(r#"{"above": 1, "horizon": "1h", "method": "arima"}"#)
                .contains("unknown variant `arima`")
        );
        assert!(
            configure::<Plugin>(r#"{"below": 0, "horizon": "1h30m", "method": "holt", "beta": 1}"#)
                .is_ok()
        );
    }

    #[test]
    fn info_documents_params() {
        let info = <Plugin as vigil_plugin_sdk::Check>::info();
        assert_eq!(info.name, "trend");
        let docs: Vec<_> = info
            .params
            .iter()
            .map(|d| (d.name.as_str(), d.type_name.as_str(), d.required))
            .collect();
        assert_eq!(
            docs,
            [
                ("above", "Option<f64>", false),
                ("below", "Option<f64>", false),
                ("horizon", "Duration", true),
                ("method", "Method", false),
                ("alpha", "Option<f64>", false),
                ("beta", "Option<f64>", false),
                ("min_points", "u32", false)
            ]
        );
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
