//! The `burn_rate` check: SLO multi-window, multi-burn-rate alerting over an
//! error-ratio series (chapter 5 of the Google SRE workbook).
//!
//! The rule's query yields the error ratio (bad / total events) at each
//! evaluation step, e.g. `sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))`,
//! and the rule's window must cover the longest `long` window (3 days with
//! the default pairs). The error budget is `1 - objective`; a burn rate is an
//! error ratio divided by the budget (1 spends the budget exactly over the
//! SLO period). For each window pair, the mean error ratio over the long and
//! the short window (both ending now) is computed; the check fires when, for
//! any pair, both burn rates exceed the pair's `factor`.
//!
//! # Pages and tickets
//!
//! The workbook pages on the fast pairs (1h/5m at 14.4x, 6h/30m at 6x) and
//! opens tickets on the slow ones (1d/2h at 3x, 3d/6h at 1x). A verdict has
//! no severity yet, so write two rules with their own labels and routes: one
//! with the page pairs in `windows`, one with the ticket pairs. With the
//! default (all four pairs in one rule) the message names the pair that
//! fired.
//!
//! # Averaging over time
//!
//! Means are weighted by time, not by point: each point stands for the time
//! since the point before it, at most `max_gap` (default 5m, or twice the
//! median sampling interval when that is longer), so irregular sampling does not bias the mean and a gap
//! in the data counts as no data rather than as one point's value stretched
//! over it. A window's mean covers only the time its points stand for
//! (partially, at the window's start). NaN and infinite points are skipped.
//!
//! # Little data
//!
//! A pair is judged once the data reaches back at least its short window
//! and its short window holds data; a long window holding less data than
//! its length is judged with what is there, and the message says so. When
//! no pair can be judged (a new series younger than the shortest short
//! window, or no data in any short window) the verdict is no-data. Stateless.
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::short_number;

pub use vigil_plugin_sdk::duration::Duration;

/// Parameters of the `burn_rate` check.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct BurnRate {
    /// The service level objective: the target fraction of good events, in
    /// (0, 1), e.g. 0.999. The error budget is 1 - objective.
    pub objective: f64,
    /// Window pairs, each `{ long = "1h", short = "5m", factor = 14.4 }`:
    /// fire when the burn rate over both `long` and `short` (durations like
    /// "30m", "6h", "3d"; `short` shorter than `long`) is above `factor`.
    /// Default: the SRE workbook's 1h/5m 14.4x and 6h/30m 6x (page), 1d/2h 3x
    /// and 3d/6h 1x (ticket). The rule's window must cover the longest `long`.
    #[serde(default = "workbook")]
    pub windows: Vec<WindowPair>,
    /// The longest time one point stands for when averaging, a duration like
    /// "2m"; the rest of a longer gap before a point counts as missing data.
    /// Default: 5m (Prometheus' lookback delta), or twice the series' median
    /// sampling interval when that is longer.
    pub max_gap: Option<Duration>,
}

/// A long and a short window and the burn rate both must exceed.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowPair {
    /// The long window: is the budget burning fast enough to matter?
    pub long: Duration,
    /// The short window: is it still burning now? (resets the alert quickly)
    pub short: Duration,
    /// The burn rate (error ratio / error budget) both windows must exceed.
    pub factor: f64,
}

/// The SRE workbook's pairs: two paging, two ticketing.
fn workbook() -> Vec<WindowPair> {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    let pair = |long, short, factor| WindowPair {
        long: Duration::from_ms(long),
        short: Duration::from_ms(short),
        factor,
    };
    vec![
        pair(HOUR, 5 * MIN, 14.4),
        pair(6 * HOUR, 30 * MIN, 6.0),
        pair(24 * HOUR, 2 * HOUR, 3.0),
        pair(72 * HOUR, 6 * HOUR, 1.0),
    ]
}

/// Collects every parameter error, joined with "; ".
fn validate(p: &BurnRate) -> Result<(), String> {
    let mut errors = Vec::new();
    if !(p.objective > 0.0 && p.objective < 1.0) {
        errors.push(format!(
            "`objective` must be in (0, 1), e.g. 0.999, got {}",
            p.objective
        ));
    }
    if p.windows.is_empty() {
        errors.push(
            "`windows` is empty: give at least one pair, or leave it out for the SRE workbook's"
                .to_string(),
        );
    }
    for (i, w) in p.windows.iter().enumerate() {
        if w.short.ms <= 0 {
            errors.push(format!("`windows[{i}].short` must be positive"));
        } else if w.short >= w.long {
            errors.push(format!(
                "`windows[{i}]`: `short` ({}) must be shorter than `long` ({})",
                w.short, w.long
            ));
        }
        if !(w.factor > 0.0 && w.factor.is_finite()) {
            errors.push(format!(
                "`windows[{i}].factor` must be positive, got {}",
                w.factor
            ));
        }
    }
    if p.max_gap.is_some_and(|g| g.ms <= 0) {
        errors.push("`max_gap` must be positive".to_string());
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// A point and the time it stands for: `(start, end]`, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: i64,
    end: i64,
    value: f64,
}

/// Prometheus' lookback delta: how long a sample is current.
const DEFAULT_MAX_GAP_MS: i64 = 5 * 60_000;

/// The time each finite point stands for, in time order (as the host sends
/// them). `None` when the sampling interval cannot be known (fewer than two
/// distinct timestamps and no `max_gap`).
fn spans(series: &Series<'_>, max_gap: Option<Duration>) -> Option<Vec<Span>> {
    let mut intervals: Vec<i64> = series
        .timestamps
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|&d| d > 0)
        .collect();
    let median = match intervals.len() {
        0 => None,
        n => Some(*intervals.select_nth_unstable(n / 2).1),
    };
    let cap = match (max_gap, median) {
        (Some(g), _) => g.ms,
        (None, Some(m)) => m.saturating_mul(2).max(DEFAULT_MAX_GAP_MS),
        (None, None) => return None,
    };
    let first = median.unwrap_or(cap).min(cap);
    let mut out = Vec::with_capacity(series.len());
    let mut prev: Option<i64> = None;
    for (t, v) in series.iter() {
        let width = match prev {
            None => first,
            Some(p) => t.saturating_sub(p).clamp(0, cap),
        };
        prev = Some(t);
        if v.is_finite() && width > 0 {
            out.push(Span {
                start: t.saturating_sub(width),
                end: t,
                value: v,
            });
        }
    }
    Some(out)
}

/// The time-weighted mean over `(end - len, end]` and the time covered.
fn window_mean(spans: &[Span], end: i64, len: i64) -> (f64, i64) {
    let from = end.saturating_sub(len);
    let (mut sum, mut covered) = (0.0, 0i64);
    // Points are in time order: walk back from the newest, stop before the window.
    for s in spans.iter().rev() {
        if s.end <= from {
            break;
        }
        let overlap = s.end.min(end).saturating_sub(s.start.max(from));
        if overlap > 0 {
            sum += s.value * overlap as f64;
            covered += overlap;
        }
    }
    match covered {
        0 => (f64::NAN, 0),
        c => (sum / c as f64, c),
    }
}

/// One judged window pair.
#[derive(Debug, Clone, Copy)]
struct Judged {
    pair: WindowPair,
    long_rate: f64,
    short_rate: f64,
    long_covered: i64,
}

impl Judged {
    fn fires(&self) -> bool {
        self.long_rate > self.pair.factor && self.short_rate > self.pair.factor
    }
}

/// Fires when, for any window pair, the error budget burns faster than the
/// pair's factor over both its long and its short window (SLO multi-window,
/// multi-burn-rate alerting). Score: the highest burn rate (mean error ratio
/// / error budget) over the judged long windows.
#[check(name = "burn_rate", validate = validate)]
pub fn burn_rate(p: &BurnRate, ctx: &Context, series: &Series<'_>) -> Verdict {
    let Some((last_ts, _)) = series.last() else {
        return Verdict::no_data();
    };
    let end = last_ts.max(ctx.now);
    let Some(spans) = spans(series, p.max_gap) else {
        return Verdict::no_data()
            .with_message("one point: the sampling interval is unknown (set `max_gap`)");
    };
    let Some(data_start) = spans.iter().map(|s| s.start).min() else {
        return Verdict::no_data().with_message("no finite points");
    };
    let history = end.saturating_sub(data_start);
    let budget = 1.0 - p.objective;
    let judged: Vec<Judged> = p
        .windows
        .iter()
        .filter_map(|&pair| {
            if history < pair.short.ms {
                return None;
            }
            let (short_mean, short_covered) = window_mean(&spans, end, pair.short.ms);
            if short_covered == 0 {
                return None;
            }
            let (long_mean, long_covered) = window_mean(&spans, end, pair.long.ms);
            Some(Judged {
                pair,
                long_rate: long_mean / budget,
                short_rate: short_mean / budget,
                long_covered,
            })
        })
        .collect();
    let Some(score) = judged.iter().map(|j| j.long_rate).reduce(f64::max) else {
        let shortest = p
            .windows
            .iter()
            .map(|w| w.short)
            .min()
            .unwrap_or(Duration::from_ms(0));
        let last_age = Duration::from_ms(end.saturating_sub(last_ts));
        return Verdict::no_data().with_message(match history < shortest.ms {
            true => format!(
                "{} of data, less than the shortest short window ({shortest})",
                Duration::from_ms(history)
            ),
            false => format!("no data in any short window (last point {last_age} ago)"),
        });
    };
    // Data reaching back less far than the longest window: say so.
    let longest = p
        .windows
        .iter()
        .map(|w| w.long)
        .max()
        .unwrap_or(Duration::from_ms(0));
    let short_history = (history < longest.ms).then(|| {
        format!(
            "only {} of data, less than the longest window ({longest})",
            Duration::from_ms(history)
        )
    });
    match judged.iter().find(|j| j.fires()) {
        Some(j) => {
            let mut message = format!(
                "{}/{} pair: burn rate {}x over {} and {}x over {}, above {}x (objective {})",
                j.pair.long,
                j.pair.short,
                short_number(j.long_rate),
                j.pair.long,
                short_number(j.short_rate),
                j.pair.short,
                short_number(j.pair.factor),
                p.objective
            );
            if j.long_covered < j.pair.long.ms {
                message += &format!(
                    "; judged on {} of data in the {} window",
                    Duration::from_ms(j.long_covered),
                    j.pair.long
                );
            } else if let Some(m) = short_history {
                message += &format!("; {m}");
            }
            Verdict::firing(score).with_message(message)
        }
        None => match short_history {
            Some(m) => Verdict::ok(score).with_message(m),
            None => Verdict::ok(score),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    const T0: i64 = 1_700_000_000_000;
    const S: i64 = 1000;
    const MIN: i64 = 60 * S;
    const HOUR: i64 = 60 * MIN;

    fn params(json: &str) -> BurnRate {
        configure::<Plugin>(json).unwrap()
    }

    /// Points every `step` ms over `(now - span, now]`, value `f(age in ms)`.
    fn series(now: i64, span: i64, step: i64, f: impl Fn(i64) -> f64) -> (Vec<i64>, Vec<f64>) {
        let ts: Vec<i64> = (0..span / step).rev().map(|i| now - i * step).collect();
        let vs = ts.iter().map(|&t| f(now - t)).collect();
        (ts, vs)
    }

    fn eval(p: &BurnRate, now: i64, ts: &[i64], vs: &[f64]) -> Verdict {
        let mut b = Batch::default();
        b.push_series(1, ts, vs);
        let mut out = evaluate::<Plugin>(p, now, &b, &State::default()).unwrap();
        assert!(out.state.data.is_empty(), "burn_rate is stateless");
        out.verdicts.remove(0)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    const NOW: i64 = T0 + 100 * HOUR;

    #[test]
    fn fast_burn_pages() {
        // 3 h at 0.1x of the budget, then the last 10 min at 100x.
        let (ts, vs) = series(NOW, 3 * HOUR, 30 * S, |age| {
            if age < 10 * MIN { 0.1 } else { 0.0001 }
        });
        let v = eval(&params(r#"{"objective": 0.999}"#), NOW, &ts, &vs);
        assert_eq!(v.status, Status::Firing, "{v:?}");
        // 1 h mean: (50 min · 0.0001 + 10 min · 0.1) / 60 min = 0.01675: 16.75x.
        assert!(close(v.score, 16.75), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some(
                "1h/5m pair: burn rate 16.75x over 1h and 100x over 5m, above 14.4x (objective 0.999); only 3h of data, less than the longest window (3d)"
            )
        );
    }

    #[test]
    fn a_short_spike_alone_does_not_fire() {
        // The last 3 min at 100x: 60x over 5 min, but only 5x over 1 h.
        let (ts, vs) = series(NOW, 4 * 24 * HOUR, MIN, |age| {
            if age < 3 * MIN { 0.1 } else { 0.0 }
        });
        let v = eval(&params(r#"{"objective": 0.999}"#), NOW, &ts, &vs);
        assert_eq!(
            (v.status, v.message.as_deref()),
            (Status::Ok, None),
            "{v:?}"
        );
        assert!(close(v.score, 5.0), "{v:?}");
    }

    #[test]
    fn a_burn_that_stopped_resets_through_the_short_window() {
        // 20x for an hour that ended 10 minutes ago: 1 h still at 16.7x, 5 min at 0.
        let burning = |age: i64| {
            if (10 * MIN..70 * MIN).contains(&age) {
                0.02
            } else {
                0.0
            }
        };
        let (ts, vs) = series(NOW, 4 * 24 * HOUR, MIN, burning);
        let v = eval(&params(r#"{"objective": 0.999}"#), NOW, &ts, &vs);
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(close(v.score, 50.0 / 60.0 * 20.0), "{v:?}");
    }

    #[test]
    fn slow_burn_opens_the_ticket_pair() {
        // A constant 1.5x burn for 3 days: only the 3d/6h pair (1x) fires.
        let (ts, vs) = series(NOW, 3 * 24 * HOUR, MIN, |_| 0.0015);
        let v = eval(&params(r#"{"objective": 0.999}"#), NOW, &ts, &vs);
        assert_eq!(v.status, Status::Firing);
        assert!(close(v.score, 1.5), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some("3d/6h pair: burn rate 1.5x over 3d and 1.5x over 6h, above 1x (objective 0.999)")
        );
        // Pages only: the same burn is fine.
        let pages = params(
            r#"{"objective": 0.999, "windows": [
                {"long": "1h", "short": "5m", "factor": 14.4},
                {"long": "6h", "short": "30m", "factor": 6}]}"#,
        );
        let v = eval(&pages, NOW, &ts, &vs);
        assert_eq!((v.status, v.message.as_deref()), (Status::Ok, None));
    }

    #[test]
    fn means_are_weighted_by_time_not_by_point() {
        // One point a minute at 0, then the last minute sampled every 5 s at 0.2.
        let mut ts: Vec<i64> = (0..10).map(|i| NOW - 600 * S + i * MIN).collect();
        let mut vs = vec![0.0; 10];
        for i in 1..=12 {
            ts.push(NOW - 60 * S + i * 5 * S);
            vs.push(0.2);
        }
        let p = params(
            r#"{"objective": 0.9, "windows": [{"long": "10m", "short": "1m", "factor": 1}]}"#,
        );
        let v = eval(&p, NOW, &ts, &vs);
        // Time-weighted: 0.2 over 60 of 600 s = 0.02, 0.2x the 0.1 budget. By
        // point it would be 12 · 0.2 / 22 = 0.109: 1.09x, firing.
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(close(v.score, 0.2), "{v:?}");
    }

    #[test]
    fn a_gap_is_not_filled_with_the_next_value() {
        // Zeros every 30 s from 4 h to 3 h 30 min ago, nothing, then one point at 100x now.
        let (mut ts, mut vs) = series(NOW - 30 * MIN, 30 * MIN, 30 * S, |_| 0.0);
        ts.push(NOW);
        vs.push(0.1);
        let json = |gap: &str| {
            format!(
                r#"{{"objective": 0.999, "windows": [{{"long": "1h", "short": "5m", "factor": 14.4}}]{gap}}}"#
            )
        };
        // The last point stands for 5 min (the default max_gap): 0.1 · 5 / 35 = 14.29x.
        let v = eval(&params(&json("")), NOW, &ts, &vs);
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(close(v.score, 0.1 * 5.0 / 35.0 / (1.0 - 0.999)), "{v:?}");
        // Letting one point stand for the whole 30 min gap: 0.1 · 30 / 60 = 50x.
        let v = eval(&params(&json(r#", "max_gap": "30m""#)), NOW, &ts, &vs);
        assert_eq!(v.status, Status::Firing, "{v:?}");
        assert!(close(v.score, 0.05 / (1.0 - 0.999)), "{v:?}");
        assert_eq!(
            v.message.as_deref(),
            Some(
                "1h/5m pair: burn rate 50x over 1h and 100x over 5m, above 14.4x (objective 0.999)"
            )
        );
        let v = eval(&params(&json(r#", "max_gap": "10m""#)), NOW, &ts, &vs);
        assert!(
            v.message
                .unwrap()
                .ends_with("; judged on 40m of data in the 1h window")
        );
    }

    #[test]
    fn nan_points_are_missing_data() {
        let (ts, mut vs) = series(NOW, 4 * 24 * HOUR, 30 * S, |_| 0.001);
        for i in (0..vs.len()).step_by(7) {
            vs[i] = f64::NAN;
        }
        vs[100] = f64::INFINITY;
        let v = eval(&params(r#"{"objective": 0.999}"#), NOW, &ts, &vs);
        assert_eq!(v.status, Status::Ok);
        assert!(close(v.score, 0.001 / (1.0 - 0.999)), "{v:?}");
        let all_nan = vec![f64::NAN; ts.len()];
        let v = eval(&params(r#"{"objective": 0.999}"#), NOW, &ts, &all_nan);
        assert_eq!(
            (v.status, v.message.as_deref()),
            (Status::NoData, Some("no finite points"))
        );
    }

    #[test]
    fn irregular_timestamps_give_the_time_weighted_mean() {
        // Jittered sampling: intervals of 10, 50, 20, 40 s repeating over a day,
        // value = the interval it ends (so the time-weighted mean is
        // Σ d² / Σ d = (100 + 2500 + 400 + 1600) / 120 = 38.33...), scaled.
        let pattern = [10 * S, 50 * S, 20 * S, 40 * S];
        let mut ts = vec![NOW - 24 * HOUR];
        let mut vs = vec![0.0];
        let mut t = NOW - 24 * HOUR;
        for d in pattern.iter().cycle().take(24 * 30 * 4) {
            t += d;
            ts.push(t);
            vs.push(*d as f64 / S as f64 * 1e-5);
        }
        assert_eq!(t, NOW);
        let p = params(
            r#"{"objective": 0.99, "windows": [{"long": "1d", "short": "2h", "factor": 3}]}"#,
        );
        let v = eval(&p, NOW, &ts, &vs);
        let want = 4600.0 / 120.0 * 1e-5 / (1.0 - 0.99);
        assert!(close(v.score, want), "{v:?} vs {want}");
    }

    #[test]
    fn little_data() {
        let p = params(r#"{"objective": 0.999}"#);
        // Younger than the shortest short window.
        let (ts, vs) = series(NOW, 3 * MIN + 30 * S, 30 * S, |_| 0.5);
        let v = eval(&p, NOW, &ts, &vs);
        assert_eq!(
            (v.status, v.message.as_deref()),
            (
                Status::NoData,
                Some("3m30s of data, less than the shortest short window (5m)")
            )
        );
        // Stale: nothing in any short window.
        let (ts, vs) = series(NOW - 7 * HOUR, 24 * HOUR, MIN, |_| 0.5);
        let v = eval(&p, NOW, &ts, &vs);
        assert_eq!(
            (v.status, v.message.as_deref()),
            (
                Status::NoData,
                Some("no data in any short window (last point 7h ago)")
            )
        );
        // Two hours of a calm series: judged, and the message says how much data there was.
        let (ts, vs) = series(NOW, 2 * HOUR, 30 * S, |_| 0.0001);
        let v = eval(&p, NOW, &ts, &vs);
        assert_eq!(
            (v.status, v.message.as_deref()),
            (
                Status::Ok,
                Some("only 2h of data, less than the longest window (3d)")
            )
        );
        // One point: no interval unless max_gap says how long it stands for.
        let v = eval(&p, NOW, &[NOW], &[0.5]);
        assert_eq!(v.status, Status::NoData);
        let v = eval(
            &params(r#"{"objective": 0.999, "max_gap": "10m"}"#),
            NOW,
            &[NOW],
            &[0.5],
        );
        assert_eq!(v.status, Status::Firing, "{v:?}");
        assert_eq!(eval(&p, NOW, &[], &[]).status, Status::NoData);
    }

    #[test]
    fn window_mean_counts_partial_overlap() {
        let span = |start, end, value| Span { start, end, value };
        let spans = [span(0, 10, 1.0), span(10, 20, 3.0), span(25, 30, 5.0)];
        // (5, 30]: half of the first point, all of the others, nothing for the gap 20..25.
        let (mean, covered) = window_mean(&spans, 30, 25);
        assert_eq!(covered, 20);
        assert!(close(mean, (5.0 * 1.0 + 10.0 * 3.0 + 5.0 * 5.0) / 20.0));
        // A window ending before the newest point only counts what lies inside it.
        assert_eq!(window_mean(&spans, 15, 10), (2.0, 10));
        assert!(window_mean(&spans, 25, 3).0.is_nan());
        assert_eq!(window_mean(&[], 25, 3).1, 0);
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").contains("missing field `objective`"));
        assert_eq!(
            err(r#"{"objective": 99.9}"#),
            "invalid params: `objective` must be in (0, 1), e.g. 0.999, got 99.9"
        );
        assert_eq!(
            err(r#"{"objective": 0.99, "windows": []}"#),
            "invalid params: `windows` is empty: give at least one pair, or leave it out for the SRE workbook's"
        );
        assert_eq!(
            err(r#"{"objective": 1, "max_gap": "0", "windows": [
                {"long": "5m", "short": "1h", "factor": 2},
                {"long": "1h", "short": "0", "factor": -1}]}"#),
            "invalid params: `objective` must be in (0, 1), e.g. 0.999, got 1; \
             `windows[0]`: `short` (1h) must be shorter than `long` (5m); \
             `windows[1].short` must be positive; `windows[1].factor` must be positive, got -1; \
             `max_gap` must be positive"
        );
        assert_eq!(
            err(
                r#"{"objective": 0.99, "windows": [{"long": "1hour", "short": "5m", "factor": 2}]}"#
            ),
            "invalid params: `windows[0].long`: invalid duration \"1hour\": unknown unit \"hour\" \
             (expected e.g. \"30s\", \"5m\", \"1h30m\"; units y, w, d, h, m, s, ms)"
        );
        assert!(
            err(r#"{"objective": 0.99, "windows": [{"long": "1h", "short": "5m"}]}"#)
                .contains("missing field `factor`")
        );
        assert!(
            err(r#"{"objective": 0.99, "windows": [{"long": "1h", "short": "5m", "factor": 1, "severity": "page"}]}"#)
                .contains("unknown field `severity`")
        );
        let p = params(r#"{"objective": 0.999}"#);
        assert_eq!(p.windows, workbook());
        assert_eq!(p.windows[3].long.to_string(), "3d");
    }

    #[test]
    fn info_documents_params() {
        let info = <Plugin as vigil_plugin_sdk::Check>::info();
        assert_eq!(info.name, "burn_rate");
        let docs: Vec<_> = info
            .params
            .iter()
            .map(|d| (d.name.as_str(), d.type_name.as_str(), d.required))
            .collect();
        assert_eq!(
            docs,
            [
                ("objective", "f64", true),
                ("windows", "Vec<WindowPair>", false),
                ("max_gap", "Option<Duration>", false)
            ]
        );
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
