//! The `threshold` check: fires when a value computed from the window
//! crosses a fixed bound.
//!
//! What is compared is the last point, a counter's rate, or the window's
//! mean, max, min or a quantile. With a clear threshold (`clear_above`,
//! `clear_below`) a series that fired keeps firing until the compared value
//! goes back past the clear threshold (hysteresis), so an alert does not
//! flap around one value. That needs to remember, per series, that it is
//! firing: the check keeps host-owned state only then. Without clear
//! thresholds it is stateless (it writes no state bytes at all). When the
//! state is lost (host restart without state), a latched series between its
//! clear and firing thresholds resolves; one past the firing threshold fires
//! again at once.
use serde::de::Deserializer;
use serde::ser::Serializer;
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `threshold` check; set `above`, `below` or both.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Fire when the compared value is strictly greater than this.
    pub above: Option<f64>,
    /// Fire when the compared value is strictly less than this.
    pub below: Option<f64>,
    /// Hysteresis for `above`: once firing above, keep firing while the
    /// compared value is strictly greater than this (it resolves at or below
    /// it). Must be <= `above`. Unset: resolve as soon as the value is not
    /// above `above` (and keep no state).
    pub clear_above: Option<f64>,
    /// Hysteresis for `below`: once firing below, keep firing while the
    /// compared value is strictly less than this (it resolves at or above
    /// it). Must be >= `below`. Unset: resolve as soon as the value is not
    /// below `below` (and keep no state).
    pub clear_below: Option<f64>,
    /// What to compare: "last" (the last point, default), "rate" (the
    /// per-second increase of a counter over the window, resets handled),
    /// "mean", "max", "min" (of the window's points), or "quantile" (the
    /// `quantile` of the window's points, interpolated linearly like
    /// Prometheus' `quantile_over_time`). NaN points are skipped by mean,
    /// max, min and quantile; a window with no other point is no-data.
    #[serde(default)]
    pub compare: Compare,
    /// The quantile for compare = "quantile", in [0, 1] (0.95 is the 95th
    /// percentile); required with it and rejected with any other compare.
    pub quantile: Option<f64>,
    /// A window with fewer points than this is no-data (default 1).
    #[serde(default = "one")]
    pub min_points: u32,
}

/// The value a threshold is compared with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// The last point of the window.
    #[default]
    Last,
    /// The per-second increase of a counter over the window.
    Rate,
    /// The mean of the window's points.
    Mean,
    /// The largest point of the window.
    Max,
    /// The smallest point of the window.
    Min,
    /// The `quantile` of the window's points.
    Quantile,
}

fn one() -> u32 {
    1
}

/// Collects every parameter error, joined with "; ".
fn validate(p: &Threshold) -> Result<(), String> {
    let mut errors = Vec::new();
    match (p.below, p.above) {
        (None, None) => errors.push("set `above`, `below` or both".to_string()),
        (Some(b), Some(a)) if b > a => errors.push(format!(
            "`below` ({b}) is greater than `above` ({a}): every value would fire"
        )),
        _ => {}
    }
    match (p.clear_above, p.above) {
        (Some(_), None) => errors.push("`clear_above` needs `above`".to_string()),
        (Some(c), Some(a)) if c > a => errors.push(format!(
            "`clear_above` ({c}) must be <= `above` ({a}): it is the value to fall back to"
        )),
        _ => {}
    }
    match (p.clear_below, p.below) {
        (Some(_), None) => errors.push("`clear_below` needs `below`".to_string()),
        (Some(c), Some(b)) if c < b => errors.push(format!(
            "`clear_below` ({c}) must be >= `below` ({b}): it is the value to climb back to"
        )),
        _ => {}
    }
    // With hysteresis, the values that clear an alert above and the ones that
    // clear one below must overlap, or resolving one side fires the other.
    // (Only once the thresholds are consistent one by one.)
    if errors.is_empty() && (p.clear_above.is_some() || p.clear_below.is_some()) {
        let lower = p
            .clear_below
            .map(|v| ("clear_below", v))
            .or(p.below.map(|v| ("below", v)));
        let upper = p
            .clear_above
            .map(|v| ("clear_above", v))
            .or(p.above.map(|v| ("above", v)));
        if let (Some((ln, l)), Some((un, u))) = (lower, upper)
            && l > u
            && (ln, un) != ("below", "above")
        {
            errors.push(format!(
                "`{ln}` ({l}) is greater than `{un}` ({u}): clearing one side would fire the other"
            ));
        }
    }
    match (p.compare, p.quantile) {
        (Compare::Quantile, None) => {
            errors.push("compare = \"quantile\" needs `quantile` (in [0, 1])".to_string())
        }
        (Compare::Quantile, Some(q)) if !(0.0..=1.0).contains(&q) => {
            errors.push(format!("`quantile` must be in [0, 1], got {q}"))
        }
        (Compare::Quantile, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            errors.push("`quantile` only applies to compare = \"quantile\"".to_string())
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// Which side a series is latched firing on (only with a clear threshold).
///
/// Encoded as nothing at all when not latched, so a rule without clear
/// thresholds (or a series that is not firing) keeps no state bytes: the
/// SDK decodes an empty state as the default without calling `deserialize`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Latch {
    /// Not firing (or firing without a clear threshold for that side).
    #[default]
    Clear,
    /// Firing above, judged by `clear_above` until it resolves.
    Above,
    /// Firing below, judged by `clear_below` until it resolves.
    Below,
}

impl Serialize for Latch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Latch::Clear => s.serialize_unit(),
            Latch::Above => s.serialize_u8(1),
            Latch::Below => s.serialize_u8(2),
        }
    }
}

impl<'de> Deserialize<'de> for Latch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            1 => Ok(Latch::Above),
            2 => Ok(Latch::Below),
            n => Err(serde::de::Error::custom(format!("unknown latch {n}"))),
        }
    }
}

/// The per-second increase of a counter over the window, like PromQL's
/// `rate` without extrapolation: a drop is a counter reset, after which
/// the new value counts as the increase.
fn counter_rate(series: &Series<'_>) -> Option<f64> {
    let (ts, vs) = (series.timestamps, series.values);
    let (&t0, &t1) = (ts.first()?, ts.last()?);
    if ts.len() < 2 || t1 <= t0 {
        return None;
    }
    let mut increase = 0.0;
    for w in vs.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.is_nan() || b.is_nan() {
            continue;
        }
        increase += if b >= a { b - a } else { b };
    }
    Some(increase / (t1.saturating_sub(t0) as f64 / 1000.0))
}

/// The `q` quantile of the non-NaN values, like Prometheus'
/// `quantile_over_time`: sorted, rank `q·(n-1)`, linear interpolation
/// between the two neighbouring values.
fn quantile(q: f64, values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = (lower + 1).min(sorted.len() - 1);
    let weight = rank - rank.floor();
    let (a, b) = (*sorted.get(lower)?, *sorted.get(upper)?);
    // Exact ranks skip the blend, so an infinite neighbour cannot turn into NaN.
    Some(if weight == 0.0 {
        a
    } else {
        a * (1.0 - weight) + b * weight
    })
}

/// The value compared with the thresholds, `None` when there is none.
fn compared(p: &Threshold, series: &Series<'_>) -> Option<f64> {
    let finite = || series.values.iter().copied().filter(|v| !v.is_nan());
    let value = match p.compare {
        Compare::Last => series.last().map(|(_, v)| v),
        Compare::Rate => counter_rate(series),
        Compare::Mean => {
            let (sum, n) = finite().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            (n > 0).then(|| sum / n as f64)
        }
        Compare::Max => finite().reduce(f64::max),
        Compare::Min => finite().reduce(f64::min),
        Compare::Quantile => quantile(p.quantile.unwrap_or(0.5), series.values),
    };
    value.filter(|v| !v.is_nan())
}

/// How the compared value is named in messages.
fn what(p: &Threshold) -> String {
    match p.compare {
        Compare::Last => "value".into(),
        Compare::Rate => "rate".into(),
        Compare::Mean => "mean".into(),
        Compare::Max => "max".into(),
        Compare::Min => "min".into(),
        Compare::Quantile => format!("quantile({})", p.quantile.unwrap_or(0.5)),
    }
}

/// Fires when the compared value (the last point, a counter's rate, or the
/// window's mean, max, min or a quantile) is above `above` or below `below`;
/// with `clear_above`/`clear_below`, keeps firing until it goes back past the
/// clear threshold. Score: the compared value.
#[check(name = "threshold", validate = validate)]
pub fn threshold(p: &Threshold, _ctx: &Context, series: &Series<'_>, latch: &mut Latch) -> Verdict {
    // No-data keeps the latch: a gap in the data does not resolve an alert.
    if series.len() < p.min_points as usize {
        return Verdict::no_data().with_message(format!(
            "{} of {} points",
            series.len(),
            p.min_points
        ));
    }
    let Some(v) = compared(p, series) else {
        return Verdict::no_data();
    };
    let what = what(p);
    let (above, below) = (
        p.above.unwrap_or(f64::INFINITY),
        p.below.unwrap_or(f64::NEG_INFINITY),
    );
    // The thresholds this evaluation is judged by: the clear one while latched.
    let upper = match (*latch, p.clear_above) {
        (Latch::Above, Some(c)) => c,
        _ => above,
    };
    let lower = match (*latch, p.clear_below) {
        (Latch::Below, Some(c)) => c,
        _ => below,
    };
    let verdict = if v > upper {
        *latch = if p.clear_above.is_some() {
            Latch::Above
        } else {
            Latch::Clear
        };
        Verdict::firing(v).with_message(match v > above {
            true => format!("{what} {v} above {above}"),
            false => format!("{what} {v} above clear threshold {upper} (fired above {above})"),
        })
    } else if v < lower {
        *latch = if p.clear_below.is_some() {
            Latch::Below
        } else {
            Latch::Clear
        };
        Verdict::firing(v).with_message(match v < below {
            true => format!("{what} {v} below {below}"),
            false => format!("{what} {v} below clear threshold {lower} (fired below {below})"),
        })
    } else {
        *latch = Latch::Clear;
        Verdict::ok(v)
    };
    verdict.with_band(lower, upper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    fn run(params: &str, points: &[f64]) -> Verdict {
        let p = configure::<Plugin>(params).unwrap();
        let ts: Vec<i64> = (0..points.len() as i64).map(|i| i * 15_000).collect();
        let mut batch = Batch::default();
        batch.push_series(1, &ts, points);
        let mut out = evaluate::<Plugin>(&p, 0, &batch, &State::default()).unwrap();
        assert!(out.state.data.is_empty(), "threshold is stateless");
        out.verdicts.remove(0)
    }

    #[test]
    fn fires_above() {
        let v = run(r#"{"above": 0.05}"#, &[0.01, 0.072]);
        assert_eq!(v.status, Status::Firing);
        assert_eq!(v.score, 0.072);
        assert_eq!(v.message.as_deref(), Some("value 0.072 above 0.05"));
        assert_eq!(
            v.band,
            Some(Band {
                lower: f64::NEG_INFINITY,
                upper: 0.05
            })
        );
    }

    #[test]
    fn fires_below_and_judges_only_the_last_point() {
        let v = run(r#"{"above": 10, "below": 2}"#, &[50.0, 1.5]);
        assert_eq!(v.status, Status::Firing);
        assert_eq!(v.message.as_deref(), Some("value 1.5 below 2"));
        assert_eq!(
            v.band,
            Some(Band {
                lower: 2.0,
                upper: 10.0
            })
        );
        let v = run(r#"{"above": 10, "below": 2}"#, &[50.0, 10.0]);
        assert_eq!((v.status, v.score, v.message), (Status::Ok, 10.0, None));
    }

    #[test]
    fn too_few_points_is_no_data() {
        assert_eq!(run(r#"{"above": 1}"#, &[]).status, Status::NoData);
        let v = run(r#"{"above": 1, "min_points": 3}"#, &[5.0, 5.0]);
        assert_eq!(v.status, Status::NoData);
        assert_eq!(v.message.as_deref(), Some("2 of 3 points"));
        assert_eq!(
            run(r#"{"above": 1, "min_points": 3}"#, &[5.0, 5.0, 5.0]).status,
            Status::Firing
        );
        assert_eq!(run(r#"{"above": 1}"#, &[f64::NAN]).status, Status::NoData);
        let v = run(
            r#"{"above": 1, "compare": "max", "min_points": 3}"#,
            &[5.0, 5.0],
        );
        assert_eq!(v.status, Status::NoData);
    }

    #[test]
    fn rate_of_a_counter_handles_resets() {
        // 15 s apart: +30, +30, reset to 10 (counts 10), +50: 120 over 60 s.
        let v = run(
            r#"{"above": 1.5, "compare": "rate"}"#,
            &[100.0, 130.0, 160.0, 10.0, 60.0],
        );
        assert_eq!(v.status, Status::Firing);
        assert_eq!(v.score, 2.0);
        assert_eq!(v.message.as_deref(), Some("rate 2 above 1.5"));
        let v = run(r#"{"above": 3, "compare": "rate"}"#, &[100.0, 130.0]);
        assert_eq!((v.status, v.score), (Status::Ok, 2.0));
        // One point has no rate.
        assert_eq!(
            run(r#"{"above": 1, "compare": "rate"}"#, &[5.0]).status,
            Status::NoData
        );
    }

    #[test]
    fn rate_over_irregular_timestamps_uses_the_real_span() {
        let p = configure::<Plugin>(r#"{"above": 1, "compare": "rate"}"#).unwrap();
        let mut batch = Batch::default();
        // 0 s, 7 s, 40 s: +80 over 40 s.
        batch.push_series(1, &[0, 7_000, 40_000], &[0.0, 30.0, 80.0]);
        let out = evaluate::<Plugin>(&p, 40_000, &batch, &State::default()).unwrap();
        assert_eq!(
            (out.verdicts[0].status, out.verdicts[0].score),
            (Status::Firing, 2.0)
        );
    }

    #[test]
    fn window_aggregates_skip_nan_points() {
        let pts = [1.0, f64::NAN, 4.0, 2.0, 3.0, 5.0];
        let score = |json| {
            let v = run(json, &pts);
            assert_ne!(v.status, Status::NoData, "{json}: {v:?}");
            v.score
        };
        assert_eq!(score(r#"{"above": 9, "compare": "mean"}"#), 3.0);
        assert_eq!(score(r#"{"above": 9, "compare": "max"}"#), 5.0);
        assert_eq!(score(r#"{"above": 9, "compare": "min"}"#), 1.0);
        let v = run(r#"{"above": 4.5, "compare": "max"}"#, &pts);
        assert_eq!(v.message.as_deref(), Some("max 5 above 4.5"));
        let v = run(r#"{"below": 1.5, "compare": "min"}"#, &pts);
        assert_eq!(v.message.as_deref(), Some("min 1 below 1.5"));
        let v = run(r#"{"above": 2.5, "compare": "mean"}"#, &pts);
        assert_eq!(v.message.as_deref(), Some("mean 3 above 2.5"));
        // Only NaN: nothing to compare.
        for c in ["mean", "max", "min", "quantile\", \"quantile\": \"0.5"] {
            let json = format!(r#"{{"above": 1, "compare": "{c}"}}"#).replace("\"0.5\"", "0.5");
            assert_eq!(
                run(&json, &[f64::NAN, f64::NAN]).status,
                Status::NoData,
                "{json}"
            );
        }
    }

    #[test]
    fn quantile_interpolates_like_prometheus() {
        let q = |q: f64, pts: &[f64]| {
            run(
                &format!(r#"{{"above": 100, "compare": "quantile", "quantile": {q}}}"#),
                pts,
            )
            .score
        };
        // quantile_over_time(0.9, [5,1,4,2,3]): sorted 1..5, rank 3.6 -> 4.6.
        let pts = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert!((q(0.9, &pts) - 4.6).abs() < 1e-12);
        assert_eq!(q(0.5, &pts), 3.0);
        assert_eq!(q(0.0, &pts), 1.0);
        assert_eq!(q(1.0, &pts), 5.0);
        assert_eq!(q(0.25, &[10.0, 20.0]), 12.5);
        assert_eq!(q(0.3, &[7.0]), 7.0);
        assert_eq!(q(1.0, &[1.0, f64::INFINITY]), f64::INFINITY);
        assert_eq!(q(0.0, &[1.0, f64::INFINITY]), 1.0);
        let v = run(
            r#"{"above": 4, "compare": "quantile", "quantile": 0.9}"#,
            &pts,
        );
        assert_eq!(v.status, Status::Firing);
        assert!(v.message.unwrap().starts_with("quantile(0.9) 4.6"));
    }

    /// Evaluates one point per step, carrying the state, like the host does.
    fn steps(params: &str, values: &[f64]) -> Vec<(Status, Option<Band>, usize)> {
        let p = configure::<Plugin>(params).unwrap();
        let mut state = State::default();
        let mut seen = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            let mut batch = Batch::default();
            batch.push_series(1, &[i as i64 * 15_000], &[v]);
            let out = evaluate::<Plugin>(&p, i as i64 * 15_000, &batch, &state).unwrap();
            seen.push((
                out.verdicts[0].status,
                out.verdicts[0].band,
                out.state.data.len(),
            ));
            state = out.state;
        }
        seen
    }

    #[test]
    fn clear_above_keeps_firing_until_the_value_falls_back() {
        use Status::{Firing, Ok};
        let band = |lower, upper| Some(Band { lower, upper });
        let inf = f64::NEG_INFINITY;
        let got = steps(
            r#"{"above": 10, "clear_above": 8}"#,
            &[9.0, 11.0, 9.0, 8.5, 8.0, 9.0, 10.5],
        );
        assert_eq!(
            got,
            [
                (Ok, band(inf, 10.0), 0),
                (Firing, band(inf, 10.0), 1),
                (Firing, band(inf, 8.0), 1),
                (Firing, band(inf, 8.0), 1),
                (Ok, band(inf, 8.0), 0),
                (Ok, band(inf, 10.0), 0),
                (Firing, band(inf, 10.0), 1),
            ]
        );
        // Without the clear threshold, the same values flap and no state is kept.
        let got = steps(r#"{"above": 10}"#, &[9.0, 11.0, 9.0, 11.0]);
        let statuses: Vec<_> = got.iter().map(|g| (g.0, g.2)).collect();
        assert_eq!(statuses, [(Ok, 0), (Firing, 0), (Ok, 0), (Firing, 0)]);
    }

    #[test]
    fn clear_below_mirrors_clear_above() {
        use Status::{Firing, Ok};
        let got = steps(
            r#"{"below": 2, "clear_below": 3, "above": 10}"#,
            &[2.5, 1.0, 2.5, 3.0, 2.5],
        );
        let statuses: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(statuses, [Ok, Firing, Firing, Ok, Ok]);
        assert_eq!(
            got[2].1,
            Some(Band {
                lower: 3.0,
                upper: 10.0
            })
        );
    }

    #[test]
    fn latched_message_names_both_thresholds() {
        let p = configure::<Plugin>(r#"{"above": 10, "clear_above": 8}"#).unwrap();
        let mut batch = Batch::default();
        batch.push_series(1, &[0], &[11.0]);
        let fired = evaluate::<Plugin>(&p, 0, &batch, &State::default()).unwrap();
        let mut batch = Batch::default();
        batch.push_series(1, &[15_000], &[9.0]);
        let held = evaluate::<Plugin>(&p, 15_000, &batch, &fired.state).unwrap();
        assert_eq!(
            held.verdicts[0].message.as_deref(),
            Some("value 9 above clear threshold 8 (fired above 10)")
        );
        // State lost: between the thresholds is not firing.
        let lost = evaluate::<Plugin>(&p, 15_000, &batch, &State::default()).unwrap();
        assert_eq!(lost.verdicts[0].status, Status::Ok);
        // Corrupt state decodes as not latched.
        let corrupt = State {
            offsets: vec![0, 1],
            data: vec![7],
        };
        let v = evaluate::<Plugin>(&p, 15_000, &batch, &corrupt).unwrap();
        assert_eq!(v.verdicts[0].status, Status::Ok);
        // No data keeps the latch.
        let empty = {
            let mut b = Batch::default();
            b.push_series(1, &[], &[]);
            b
        };
        let gap = evaluate::<Plugin>(&p, 30_000, &empty, &fired.state).unwrap();
        assert_eq!(gap.verdicts[0].status, Status::NoData);
        let after = evaluate::<Plugin>(&p, 45_000, &batch, &gap.state).unwrap();
        assert_eq!(after.verdicts[0].status, Status::Firing);
    }

    #[test]
    fn hysteresis_on_a_window_aggregate() {
        use Status::{Firing, Ok};
        let p = configure::<Plugin>(r#"{"above": 0.05, "clear_above": 0.02, "compare": "mean"}"#)
            .unwrap();
        let mut state = State::default();
        let mut got = Vec::new();
        for window in [[0.01, 0.02], [0.06, 0.08], [0.03, 0.04], [0.01, 0.02]] {
            let mut batch = Batch::default();
            batch.push_series(1, &[0, 15_000], &window);
            let out = evaluate::<Plugin>(&p, 15_000, &batch, &state).unwrap();
            got.push(out.verdicts[0].status);
            state = out.state;
        }
        assert_eq!(got, [Ok, Firing, Firing, Ok]);
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(err("{}"), "invalid params: set `above`, `below` or both");
        assert_eq!(
            err(r#"{"abov": 1}"#),
            "invalid params: unknown field `abov`, expected one of `above`, `below`, \
             `clear_above`, `clear_below`, `compare`, `quantile`, `min_points`"
        );
        assert!(
            err(r#"{"above": "high"}"#)
                .starts_with("invalid params: `above`: invalid type: string")
        );
        assert!(err(r#"{"above": 1, "below": 2}"#).contains("greater than `above`"));
        assert!(err(r#"{"above": 1, "compare": "median"}"#).contains("unknown variant `median`"));
        assert_eq!(
            err(r#"{"above": 1, "clear_above": 2}"#),
            "invalid params: `clear_above` (2) must be <= `above` (1): it is the value to fall back to"
        );
        assert_eq!(
            err(r#"{"below": 1, "clear_below": 0.5}"#),
            "invalid params: `clear_below` (0.5) must be >= `below` (1): it is the value to climb back to"
        );
        assert_eq!(
            err(r#"{"below": 1, "clear_above": 2}"#),
            "invalid params: `clear_above` needs `above`"
        );
        assert_eq!(
            err(r#"{"above": 1, "clear_below": 2}"#),
            "invalid params: `clear_below` needs `below`"
        );
        assert_eq!(
            err(r#"{"above": 10, "clear_above": 4, "below": 2, "clear_below": 5}"#),
            "invalid params: `clear_below` (5) is greater than `clear_above` (4): clearing one side would fire the other"
        );
        assert_eq!(
            err(r#"{"above": 10, "clear_above": 1, "below": 2}"#),
            "invalid params: `below` (2) is greater than `clear_above` (1): clearing one side would fire the other"
        );
        assert_eq!(
            err(r#"{"above": 1, "compare": "quantile"}"#),
            "invalid params: compare = \"quantile\" needs `quantile` (in [0, 1])"
        );
        assert_eq!(
            err(r#"{"above": 1, "compare": "quantile", "quantile": 1.5}"#),
            "invalid params: `quantile` must be in [0, 1], got 1.5"
        );
        assert_eq!(
            err(r#"{"above": 1, "quantile": 0.5}"#),
            "invalid params: `quantile` only applies to compare = \"quantile\""
        );
        // Every error at once.
        assert_eq!(
            err(r#"{"clear_above": 1, "quantile": 0.5}"#),
            "invalid params: set `above`, `below` or both; `clear_above` needs `above`; \
             `quantile` only applies to compare = \"quantile\""
        );
        // Equal thresholds are allowed (no hysteresis, but still consistent).
        assert!(configure::<Plugin>(r#"{"above": 1, "clear_above": 1, "below": 1}"#).is_ok());
    }

    #[test]
    fn info_documents_params() {
        let info = <Plugin as vigil_plugin_sdk::Check>::info();
        assert_eq!(info.name, "threshold");
        assert!(
            info.description
                .starts_with("Fires when the compared value"),
            "{}",
            info.description
        );
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
                ("clear_above", "Option<f64>", false),
                ("clear_below", "Option<f64>", false),
                ("compare", "Compare", false),
                ("quantile", "Option<f64>", false),
                ("min_points", "u32", false)
            ]
        );
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
        assert_eq!(
            info.params[6].description,
            "A window with fewer points than this is no-data (default 1)."
        );
    }
}
