//! The `threshold` check: fires when a value computed from the window
//! crosses a fixed bound, optionally at several severities.
//!
//! What is compared is the last point, a counter's rate, or the window's
//! mean, max, min or a quantile. `above` and `below` are each a number, or
//! a table of severities, e.g. `above = { warning = 0.02, critical = 0.05 }`:
//! the most severe level crossed fires, and the verdict names its severity,
//! which becomes the alert's `severity` label (so one rule pages at 5% and
//! tickets at 2%). Above, a higher threshold is more severe; below, a lower
//! one. A number fires with no severity of its own (the rule's
//! `labels.severity` applies).
//!
//! With a clear threshold (`clear_above`, `clear_below`: a number for a
//! number, or a table with some of the same severities) a level that fired
//! keeps firing until the compared value goes back past its clear threshold
//! (hysteresis), so an alert does not flap around one value, nor between two
//! severities. That needs to remember, per series, the level it fires at:
//! the check keeps host-owned state only then. Without clear thresholds it
//! is stateless (it writes no state bytes at all). When the state is lost
//! (host restart without state), a latched series between its clear and
//! firing thresholds falls back to the level its value crosses outright.
use std::collections::BTreeMap;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::Serializer;
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `threshold` check; set `above`, `below` or both.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    /// Fire when the compared value is strictly greater than this: a number,
    /// or a table of severities such as `{ warning = 0.02, critical = 0.05 }`
    /// (the highest threshold crossed names the alert's `severity`).
    pub above: Option<Levels>,
    /// Fire when the compared value is strictly less than this: a number, or
    /// a table of severities (the lowest threshold crossed is the severity).
    pub below: Option<Levels>,
    /// Hysteresis for `above`: once a level fired, keep it firing while the
    /// compared value is strictly greater than this (it resolves, or drops
    /// to a lower level, at or below it). A number when `above` is one, else
    /// a table with some of its severities; each must be <= its `above`.
    /// Unset: a level clears as soon as the value is not above it (and no
    /// state is kept).
    pub clear_above: Option<Levels>,
    /// Hysteresis for `below`, mirroring `clear_above`: each must be >= its
    /// `below`.
    pub clear_below: Option<Levels>,
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

/// A threshold: one number, or one per severity.
#[derive(Debug, Clone, PartialEq)]
pub enum Levels {
    /// One threshold, with no severity of its own.
    One(f64),
    /// A threshold per severity name.
    Named(BTreeMap<String, f64>),
}

impl<'de> Deserialize<'de> for Levels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Levels;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, or a table of severities such as { warning = 0.02, critical = 0.05 }")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Levels, E> {
                Ok(Levels::One(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Levels, E> {
                Ok(Levels::One(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Levels, E> {
                Ok(Levels::One(v as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Levels, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((name, v)) = map.next_entry::<String, f64>()? {
                    if out.insert(name.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("severity {name:?} given twice")));
                    }
                }
                Ok(Levels::Named(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One level of one side, checked and ordered.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// The alert's severity at this level; none for a plain number.
    pub severity: Option<String>,
    /// The value must be past this to fire at this level.
    pub fire: f64,
    /// Once firing at this level, it holds while past this (= `fire`
    /// without hysteresis).
    pub clear: f64,
}

/// The checked parameters: each side's levels from least to most severe.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawThreshold")]
pub struct Threshold {
    /// Levels above, thresholds ascending.
    pub above: Vec<Level>,
    /// Levels below, thresholds descending.
    pub below: Vec<Level>,
    /// What is compared.
    pub compare: Compare,
    /// The quantile for [`Compare::Quantile`].
    pub quantile: f64,
    /// Fewer points are no-data.
    pub min_points: u32,
}

impl ParamDocs for Threshold {
    fn param_docs() -> Vec<vigil_plugin_sdk::ParamDoc> {
        RawThreshold::param_docs()
    }
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

/// One side's levels from a threshold and its clear threshold, pushing
/// every error. `up`: the `above` side (a higher threshold is more severe).
fn side(
    errors: &mut Vec<String>,
    name: &str,
    fire: Option<&Levels>,
    clear: Option<&Levels>,
    up: bool,
) -> Vec<Level> {
    let clear_name = format!("clear_{name}");
    let (Some(fire), clear) = (fire, clear) else {
        if clear.is_some() {
            errors.push(format!("`{clear_name}` needs `{name}`"));
        }
        return Vec::new();
    };
    let mut levels: Vec<Level> = match fire {
        Levels::One(v) => vec![Level {
            severity: None,
            fire: *v,
            clear: *v,
        }],
        Levels::Named(named) => {
            if named.is_empty() {
                errors.push(format!("`{name}` has no severity"));
            }
            if named.contains_key("") {
                errors.push(format!("`{name}` has an empty severity name"));
            }
            named
                .iter()
                .map(|(sev, &v)| Level {
                    severity: Some(sev.clone()),
                    fire: v,
                    clear: v,
                })
                .collect()
        }
    };
    match (fire, clear) {
        (_, None) => {}
        (Levels::One(_), Some(Levels::One(c))) => levels[0].clear = *c,
        (Levels::Named(_), Some(Levels::Named(cs))) => {
            for (sev, &c) in cs {
                match levels
                    .iter_mut()
                    .find(|l| l.severity.as_deref() == Some(sev))
                {
                    Some(l) => l.clear = c,
                    None => errors.push(format!(
                        "`{clear_name}` names severity {sev:?}, which `{name}` does not have"
                    )),
                }
            }
        }
        (Levels::One(_), Some(_)) => {
            errors.push(format!("`{clear_name}` must be a number, like `{name}`"))
        }
        (Levels::Named(_), Some(_)) => errors.push(format!(
            "`{clear_name}` must be a table of severities, like `{name}`"
        )),
    }
    // Least severe first: ascending thresholds above, descending below.
    levels.sort_by(|a, b| match up {
        true => a.fire.total_cmp(&b.fire),
        false => b.fire.total_cmp(&a.fire),
    });
    for pair in levels.windows(2) {
        if pair[0].fire == pair[1].fire {
            errors.push(format!(
                "severities {:?} and {:?} of `{name}` share the threshold {}",
                pair[0].severity.as_deref().unwrap_or(""),
                pair[1].severity.as_deref().unwrap_or(""),
                pair[0].fire
            ));
        }
    }
    for l in &levels {
        let of = match &l.severity {
            Some(s) => format!(" for {s:?}"),
            None => String::new(),
        };
        if up && l.clear > l.fire {
            errors.push(format!(
                "`{clear_name}` ({}){of} must be <= `{name}` ({}): it is the value to fall back to",
                l.clear, l.fire
            ));
        }
        if !up && l.clear < l.fire {
            errors.push(format!(
                "`{clear_name}` ({}){of} must be >= `{name}` ({}): it is the value to climb back to",
                l.clear, l.fire
            ));
        }
    }
    levels
}

impl TryFrom<RawThreshold> for Threshold {
    type Error = String;

    /// Collects every parameter error, joined with "; ".
    fn try_from(p: RawThreshold) -> Result<Self, String> {
        let mut errors = Vec::new();
        if p.above.is_none() && p.below.is_none() {
            errors.push("set `above`, `below` or both".to_string());
        }
        let above = side(
            &mut errors,
            "above",
            p.above.as_ref(),
            p.clear_above.as_ref(),
            true,
        );
        let below = side(
            &mut errors,
            "below",
            p.below.as_ref(),
            p.clear_below.as_ref(),
            false,
        );
        // Every below threshold must lie under every above one, or some
        // value fires both ways; with hysteresis, the values that clear one
        // side must also lie clear of the other, or resolving one side fires
        // the other. (Only once each side is consistent on its own.)
        let top_below = below.iter().map(|l| l.fire).reduce(f64::max);
        let bottom_above = above.iter().map(|l| l.fire).reduce(f64::min);
        if let (Some(b), Some(a)) = (top_below, bottom_above)
            && b > a
        {
            errors.push(format!(
                "`below` ({b}) is greater than `above` ({a}): every value would fire"
            ));
        }
        let hysteresis = |ls: &[Level]| ls.iter().any(|l| l.clear != l.fire);
        if errors.is_empty() && (hysteresis(&above) || hysteresis(&below)) {
            let lower = below
                .iter()
                .map(|l| {
                    (
                        if l.clear != l.fire {
                            "clear_below"
                        } else {
                            "below"
                        },
                        l.clear,
                    )
                })
                .reduce(|x, y| if y.1 > x.1 { y } else { x });
            let upper = above
                .iter()
                .map(|l| {
                    (
                        if l.clear != l.fire {
                            "clear_above"
                        } else {
                            "above"
                        },
                        l.clear,
                    )
                })
                .reduce(|x, y| if y.1 < x.1 { y } else { x });
            if let (Some((ln, l)), Some((un, u))) = (lower, upper)
                && l > u
            {
                errors.push(format!(
                    "`{ln}` ({l}) is greater than `{un}` ({u}): clearing one side would fire the other"
                ));
            }
        }
        let quantile = match (p.compare, p.quantile) {
            (Compare::Quantile, None) => {
                errors.push("compare = \"quantile\" needs `quantile` (in [0, 1])".to_string());
                0.5
            }
            (Compare::Quantile, Some(q)) if !(0.0..=1.0).contains(&q) => {
                errors.push(format!("`quantile` must be in [0, 1], got {q}"));
                0.5
            }
            (Compare::Quantile, Some(q)) => q,
            (_, None) => 0.5,
            (_, Some(_)) => {
                errors.push("`quantile` only applies to compare = \"quantile\"".to_string());
                0.5
            }
        };
        match errors.is_empty() {
            true => Ok(Threshold {
                above,
                below,
                compare: p.compare,
                quantile,
                min_points: p.min_points,
            }),
            false => Err(errors.join("; ")),
        }
    }
}

/// The level a series is latched firing at (only with a clear threshold).
///
/// Encoded as nothing at all when not latched, so a rule without clear
/// thresholds (or a series that is not firing) keeps no state bytes: the
/// SDK decodes an empty state as the default without calling `deserialize`.
/// Otherwise one byte: `1 + 2·level` above, `2 + 2·level` below, levels
/// counted from the least severe, so a single threshold's latch reads the
/// same as before severities existed (1 above, 2 below).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Latch {
    /// Not firing (or firing without a clear threshold).
    #[default]
    Clear,
    /// Firing above at this level, judged by its clear threshold.
    Above(u8),
    /// Firing below at this level, judged by its clear threshold.
    Below(u8),
}

impl Serialize for Latch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Latch::Clear => s.serialize_unit(),
            Latch::Above(k) => s.serialize_u8(1 + 2 * k.min(126)),
            Latch::Below(k) => s.serialize_u8(2 + 2 * k.min(126)),
        }
    }
}

impl<'de> Deserialize<'de> for Latch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Err(de::Error::custom("unknown latch 0")),
            n if n % 2 == 1 => Ok(Latch::Above((n - 1) / 2)),
            n => Ok(Latch::Below((n - 2) / 2)),
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
        Compare::Quantile => quantile(p.quantile, series.values),
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
        Compare::Quantile => format!("quantile({})", p.quantile),
    }
}

/// The most severe level of one side that `v` holds: past its firing
/// threshold, or past its clear threshold while latched at it or above.
/// `past(v, t)` says whether `v` is beyond `t` on this side.
fn level(
    levels: &[Level],
    latched: Option<usize>,
    v: f64,
    past: fn(f64, f64) -> bool,
) -> Option<usize> {
    (0..levels.len()).rev().find(|&k| {
        let l = &levels[k];
        past(v, l.fire) || (latched.is_some_and(|m| m >= k) && past(v, l.clear))
    })
}

/// The verdict for firing at `levels[k]` on the side named `side`.
fn fired(what: &str, v: f64, side: &str, l: &Level, by_clear: bool) -> Verdict {
    let sev = l.severity.as_deref();
    let message = match (by_clear, sev) {
        (false, None) => format!("{what} {v} {side} {}", l.fire),
        (false, Some(s)) => format!("{what} {v} {side} {} ({s})", l.fire),
        (true, None) => format!(
            "{what} {v} {side} clear threshold {} (fired {side} {})",
            l.clear, l.fire
        ),
        (true, Some(s)) => format!(
            "{what} {v} {side} clear threshold {} ({s} fired {side} {})",
            l.clear, l.fire
        ),
    };
    let verdict = Verdict::firing(v).with_message(message);
    match sev {
        Some(s) => verdict.with_severity(s),
        None => verdict,
    }
}

/// Fires when the compared value (the last point, a counter's rate, or the
/// window's mean, max, min or a quantile) is above `above` or below `below`,
/// at the most severe level crossed when they are tables of severities;
/// with `clear_above`/`clear_below`, a level keeps firing until the value
/// goes back past its clear threshold. Score: the compared value; band: the
/// values that fire no level.
#[check(name = "threshold")]
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
    // A latch past the levels there are (the levels changed on reload)
    // holds at the most severe one.
    let clamp = |k: u8, n: usize| (n > 0).then(|| (k as usize).min(n - 1));
    let (up_latch, down_latch) = match *latch {
        Latch::Clear => (None, None),
        Latch::Above(k) => (clamp(k, p.above.len()), None),
        Latch::Below(k) => (None, clamp(k, p.below.len())),
    };
    let hysteresis = |ls: &[Level]| ls.iter().any(|l| l.clear != l.fire);
    // The band: what fires no level, by the least severe level's threshold
    // (its clear one while latched on that side).
    let edge = |ls: &[Level], latched: Option<usize>, none: f64| match (ls.first(), latched) {
        (None, _) => none,
        (Some(l), Some(_)) => l.clear,
        (Some(l), None) => l.fire,
    };
    let upper = edge(&p.above, up_latch, f64::INFINITY);
    let lower = edge(&p.below, down_latch, f64::NEG_INFINITY);
    let what = what(p);
    let verdict = if let Some(k) = level(&p.above, up_latch, v, |v, t| v > t) {
        let l = &p.above[k];
        *latch = match hysteresis(&p.above) {
            true => Latch::Above(u8::try_from(k).unwrap_or(u8::MAX)),
            false => Latch::Clear,
        };
        fired(&what, v, "above", l, v <= l.fire)
    } else if let Some(k) = level(&p.below, down_latch, v, |v, t| v < t) {
        let l = &p.below[k];
        *latch = match hysteresis(&p.below) {
            true => Latch::Below(u8::try_from(k).unwrap_or(u8::MAX)),
            false => Latch::Clear,
        };
        fired(&what, v, "below", l, v >= l.fire)
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
            data: vec![0],
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
                ("above", "Option<Levels>", false),
                ("below", "Option<Levels>", false),
                ("clear_above", "Option<Levels>", false),
                ("clear_below", "Option<Levels>", false),
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

    /// Like `steps`, with each verdict's status and severity.
    fn graded(params: &str, values: &[f64]) -> Vec<(Status, Option<String>)> {
        let p = configure::<Plugin>(params).unwrap();
        let mut state = State::default();
        let mut seen = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            let mut batch = Batch::default();
            batch.push_series(1, &[i as i64 * 15_000], &[v]);
            let out = evaluate::<Plugin>(&p, i as i64 * 15_000, &batch, &state).unwrap();
            seen.push((out.verdicts[0].status, out.verdicts[0].severity.clone()));
            state = out.state;
        }
        seen
    }

    fn sev(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn severities_follow_the_most_severe_level_crossed() {
        use Status::{Firing, Ok};
        let got = graded(
            r#"{"above": {"warning": 0.02, "critical": 0.05}}"#,
            &[0.01, 0.03, 0.06, 0.03, 0.01],
        );
        assert_eq!(
            got,
            [
                (Ok, None),
                (Firing, sev("warning")),
                (Firing, sev("critical")),
                (Firing, sev("warning")),
                (Ok, None)
            ]
        );
        let p = configure::<Plugin>(r#"{"above": {"warning": 0.02, "critical": 0.05}}"#).unwrap();
        let mut batch = Batch::default();
        batch.push_series(1, &[0], &[0.06]);
        let out = evaluate::<Plugin>(&p, 0, &batch, &State::default()).unwrap();
        let v = &out.verdicts[0];
        assert_eq!(
            v.message.as_deref(),
            Some("value 0.06 above 0.05 (critical)")
        );
        assert_eq!(
            v.band,
            Some(Band {
                lower: f64::NEG_INFINITY,
                upper: 0.02
            })
        );
        assert!(out.state.data.is_empty(), "no clear thresholds: stateless");
        // Below: the lowest threshold is the most severe.
        let got = graded(
            r#"{"below": {"ticket": 100, "page": 10}, "above": {"page": 1000}}"#,
            &[50.0, 5.0, 2000.0, 500.0],
        );
        assert_eq!(
            got,
            [
                (Firing, sev("ticket")),
                (Firing, sev("page")),
                (Firing, sev("page")),
                (Ok, None)
            ]
        );
    }

    #[test]
    fn each_level_has_its_own_hysteresis() {
        use Status::{Firing, Ok};
        let params = r#"{"above": {"warning": 0.02, "critical": 0.05},
                        "clear_above": {"warning": 0.015, "critical": 0.04}}"#;
        let got = graded(
            params,
            &[0.03, 0.06, 0.045, 0.035, 0.018, 0.016, 0.014, 0.018],
        );
        assert_eq!(
            got,
            [
                (Firing, sev("warning")),
                (Firing, sev("critical")),
                // Held at critical above its clear threshold 0.04 ...
                (Firing, sev("critical")),
                // ... then down to warning, held above 0.015 ...
                (Firing, sev("warning")),
                (Firing, sev("warning")),
                (Firing, sev("warning")),
                // ... and clear below it; 0.018 alone fires nothing.
                (Ok, None),
                (Ok, None),
            ]
        );
        // Only some levels with a clear threshold: the others clear at once.
        let got = graded(
            r#"{"above": {"warning": 2, "critical": 5}, "clear_above": {"critical": 4}}"#,
            &[6.0, 4.5, 1.5],
        );
        assert_eq!(
            got,
            [
                (Firing, sev("critical")),
                (Firing, sev("critical")),
                (Ok, None)
            ]
        );
        let p = configure::<Plugin>(params).unwrap();
        let mut b = Batch::default();
        b.push_series(1, &[0], &[0.06]);
        let fired = evaluate::<Plugin>(&p, 0, &b, &State::default()).unwrap();
        let mut b = Batch::default();
        b.push_series(1, &[1], &[0.045]);
        let held = evaluate::<Plugin>(&p, 1, &b, &fired.state).unwrap();
        assert_eq!(
            held.verdicts[0].message.as_deref(),
            Some("value 0.045 above clear threshold 0.04 (critical fired above 0.05)")
        );
        assert_eq!(
            held.verdicts[0].band,
            Some(Band {
                lower: f64::NEG_INFINITY,
                upper: 0.015
            })
        );
    }

    #[test]
    fn latches_written_before_severities_still_read() {
        // A one-threshold latch above was the byte 1, below the byte 2.
        assert_eq!(
            vigil_plugin_sdk::check::decode_state::<Latch>(&[1]),
            Latch::Above(0)
        );
        assert_eq!(
            vigil_plugin_sdk::check::decode_state::<Latch>(&[2]),
            Latch::Below(0)
        );
        let mut bytes = Vec::new();
        vigil_plugin_sdk::check::encode_state(&Latch::Below(3), &mut bytes).unwrap();
        assert_eq!(
            vigil_plugin_sdk::check::decode_state::<Latch>(&bytes),
            Latch::Below(3)
        );
        // A latch past the levels there are holds at the most severe one.
        let p = configure::<Plugin>(r#"{"above": 10, "clear_above": 8}"#).unwrap();
        let mut b = Batch::default();
        b.push_series(1, &[0], &[9.0]);
        let state = State {
            offsets: vec![0, 1],
            data: vec![5],
        };
        let out = evaluate::<Plugin>(&p, 0, &b, &state).unwrap();
        assert_eq!(out.verdicts[0].status, Status::Firing);
    }

    #[test]
    fn configure_rejects_bad_levels() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(
            err(r#"{"above": {"warning": 1}, "clear_above": 0.5}"#),
            "invalid params: `clear_above` must be a table of severities, like `above`"
        );
        assert_eq!(
            err(r#"{"above": 1, "clear_above": {"warning": 0.5}}"#),
            "invalid params: `clear_above` must be a number, like `above`"
        );
        assert_eq!(
            err(r#"{"above": {"warning": 1}, "clear_above": {"critical": 0.5}}"#),
            "invalid params: `clear_above` names severity \"critical\", which `above` does not have"
        );
        assert_eq!(
            err(r#"{"above": {"warning": 1, "critical": 1}}"#),
            "invalid params: severities \"critical\" and \"warning\" of `above` share the threshold 1"
        );
        assert_eq!(
            err(r#"{"above": {"warning": 1, "critical": 2}, "clear_above": {"critical": 3}}"#),
            "invalid params: `clear_above` (3) for \"critical\" must be <= `above` (2): it is the value to fall back to"
        );
        assert_eq!(
            err(r#"{"above": {"warning": 5}, "below": {"page": 1, "ticket": 6}}"#),
            "invalid params: `below` (6) is greater than `above` (5): every value would fire"
        );
        assert_eq!(
            err(r#"{"above": {}}"#),
            "invalid params: `above` has no severity"
        );
        assert_eq!(
            err(r#"{"above": {"": 1}}"#),
            "invalid params: `above` has an empty severity name"
        );
        assert!(
            err(r#"{"above": "high"}"#).contains("expected a number, or a table of severities"),
            "{}",
            err(r#"{"above": "high"}"#)
        );
        assert!(err(r#"{"above": {"warning": "x"}}"#).starts_with("invalid params: `above"));
    }
}
