//! The `ewma` check: an exponentially weighted mean and variance control chart.
//!
//! Each series keeps an exponentially weighted mean and variance. A new point
//! is judged against the band `mean ± k·sigma` computed *before* the point
//! updates the statistics, then folded in. The state remembers the last
//! processed timestamp, so each evaluation only processes the points the host
//! appended since the previous one; with no state (first call, state lost)
//! the whole window is replayed, which gives exactly the same result.
use vigil_plugin_sdk::check::points_after;
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `ewma` check.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Ewma {
    /// Smoothing factor in (0, 1]: the weight of each new point.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Band half-width in standard deviations: fire when |z| > k.
    #[serde(default = "default_k")]
    pub k: f64,
    /// Points to learn from before judging (at least 1 is always needed).
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// Which deviations fire: "both", "up" (above the band) or "down" (below).
    #[serde(default)]
    pub direction: Direction,
    /// Smallest sigma used, in the series' unit: a metric whose history is
    /// flat (sigma 0) would otherwise fire on any change at all.
    #[serde(default)]
    pub min_sigma: f64,
    /// Smallest sigma used, as a fraction of |mean| (default 0.01): with the
    /// default k = 3, a flat metric must move by more than 3% to fire.
    #[serde(default = "default_min_sigma_ratio")]
    pub min_sigma_ratio: f64,
}

fn default_min_sigma_ratio() -> f64 {
    0.01
}

fn default_alpha() -> f64 {
    0.3
}
fn default_k() -> f64 {
    3.0
}
fn default_warmup() -> u32 {
    10
}

/// Which side of the band fires.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Above or below the band.
    #[default]
    Both,
    /// Above the band only.
    Up,
    /// Below the band only.
    Down,
}

fn validate(p: &Ewma) -> Result<(), String> {
    if !(p.alpha > 0.0 && p.alpha <= 1.0) {
        return Err(format!("`alpha` must be in (0, 1], got {}", p.alpha));
    }
    if !(p.k > 0.0 && p.k.is_finite()) {
        return Err(format!("`k` must be positive, got {}", p.k));
    }
    if !(p.min_sigma >= 0.0 && p.min_sigma.is_finite()) {
        return Err(format!("`min_sigma` must be >= 0, got {}", p.min_sigma));
    }
    if !(p.min_sigma_ratio >= 0.0 && p.min_sigma_ratio.is_finite()) {
        return Err(format!(
            "`min_sigma_ratio` must be >= 0, got {}",
            p.min_sigma_ratio
        ));
    }
    Ok(())
}

/// Exponentially weighted statistics of the points seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Exponentially weighted mean.
    pub mean: f64,
    /// Exponentially weighted variance.
    pub var: f64,
    /// Finite points folded in.
    pub count: u64,
}

impl Stats {
    fn update(&mut self, alpha: f64, x: f64) {
        if self.count == 0 {
            *self = Stats {
                mean: x,
                var: 0.0,
                count: 1,
            };
            return;
        }
        // West's incremental form: EW variance of the deviations from the EW mean.
        let diff = x - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
        self.count += 1;
    }
}

/// Per-series state of the `ewma` check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EwmaState {
    /// Statistics after every processed point.
    pub stats: Stats,
    /// Statistics before the last processed point: the band it was judged by.
    pub before: Stats,
    /// The last processed timestamp (meaningless while nothing was processed).
    pub last_ts: i64,
    /// The last processed value (NaN and infinities are skipped by the stats).
    pub last_value: f64,
    /// Whether any point was processed.
    pub seen: bool,
}

/// Fires when the latest point leaves the band `mean ± k·sigma` of the
/// exponentially weighted statistics of the points before it (sigma floored
/// by `min_sigma` and `min_sigma_ratio`·|mean|). Score: |z|.
#[check(name = "ewma", validate = validate)]
pub fn ewma(p: &Ewma, _ctx: &Context, series: &Series<'_>, st: &mut EwmaState) -> Verdict {
    // Only the points appended since the last evaluation (all of them without
    // state).
    for (t, x) in points_after(series, st.seen.then_some(st.last_ts)).iter() {
        st.before = st.stats;
        if x.is_finite() {
            st.stats.update(p.alpha, x);
        }
        st.last_ts = t;
        st.last_value = x;
        st.seen = true;
    }
    if series.is_empty() || !st.seen {
        return Verdict::no_data();
    }
    judge(p, &st.before, st.last_value)
}

/// Judges value `x` against the band of `stats` (the statistics before `x`).
fn judge(p: &Ewma, stats: &Stats, x: f64) -> Verdict {
    if !x.is_finite() {
        return Verdict::no_data().with_message(format!("value is {x}"));
    }
    if stats.count < u64::from(p.warmup.max(1)) {
        return Verdict::ok(0.0).with_message(format!(
            "warming up: {} of {} points",
            stats.count,
            p.warmup.max(1)
        ));
    }
    // A perfectly flat history has sigma 0: any change would then be
    // "infinitely" far. The floors keep the band meaningful; the last one
    // only keeps the score finite.
    let sigma = stats
        .var
        .sqrt()
        .max(p.min_sigma)
        .max(p.min_sigma_ratio * stats.mean.abs())
        .max(f64::EPSILON * stats.mean.abs().max(1.0));
    let z = (x - stats.mean) / sigma;
    let (lower, upper) = (stats.mean - p.k * sigma, stats.mean + p.k * sigma);
    let fires = match p.direction {
        Direction::Both => z.abs() > p.k,
        Direction::Up => z > p.k,
        Direction::Down => z < -p.k,
    };
    let verdict = if fires {
        Verdict::firing(z.abs()).with_message(format!(
            "value {x} outside {lower:.6}..{upper:.6} (z = {z:.2})"
        ))
    } else {
        Verdict::ok(z.abs())
    };
    verdict.with_band(lower, upper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    /// A noisy series with a spike at `spike` (deterministic pseudo-noise).
    fn points(n: usize, spike: usize) -> (Vec<i64>, Vec<f64>) {
        let ts = (0..n as i64)
            .map(|i| 1_700_000_000_000 + i * 15_000)
            .collect();
        let vs = (0..n)
            .map(|i| {
                let noise = ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 2.0;
                if i == spike { 100.0 } else { 50.0 + noise }
            })
            .collect();
        (ts, vs)
    }

    fn batch(ts: &[i64], vs: &[f64]) -> Batch {
        let mut b = Batch::default();
        b.push_series(1, ts, vs);
        b.push_series(2, &[], &[]);
        b
    }

    fn params(json: &str) -> Ewma {
        configure::<Plugin>(json).unwrap()
    }

    #[test]
    fn fires_on_a_spike_and_not_on_noise() {
        let p = params("{}");
        let (ts, vs) = points(60, 59);
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        let v = &out.verdicts[0];
        assert_eq!(v.status, Status::Firing, "{v:?}");
        assert!(v.score > 10.0, "{v:?}");
        let band = v.band.unwrap();
        assert!(
            band.lower < 50.0 && band.upper > 50.0 && band.upper < 100.0,
            "{band:?}"
        );
        assert_eq!(out.verdicts[1].status, Status::NoData);

        let (ts, vs) = points(60, usize::MAX);
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        assert_eq!(out.verdicts[0].status, Status::Ok, "{:?}", out.verdicts[0]);
    }

    #[test]
    fn direction_limits_which_side_fires() {
        let (ts, vs) = points(60, 59);
        let fire = |json| {
            evaluate::<Plugin>(&params(json), 0, &batch(&ts, &vs), &State::default())
                .unwrap()
                .verdicts[0]
                .status
        };
        assert_eq!(fire(r#"{"direction": "up"}"#), Status::Firing);
        assert_eq!(fire(r#"{"direction": "down"}"#), Status::Ok);
    }

    #[test]
    fn warm_up_is_ok_without_a_band() {
        let p = params(r#"{"warmup": 10}"#);
        let (ts, vs) = points(10, 9);
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        let v = &out.verdicts[0];
        assert_eq!((v.status, v.band), (Status::Ok, None));
        assert_eq!(v.message.as_deref(), Some("warming up: 9 of 10 points"));
    }

    /// Chunked, all at once, and state dropped then rebuilt: same final verdict and state.
    #[test]
    fn incremental_equals_replay() {
        let p = params(r#"{"alpha": 0.2, "warmup": 5}"#);
        let (ts, vs) = points(120, 100);
        for end in [30, 100, 101, 120] {
            let (ts, vs) = (&ts[..end], &vs[..end]);
            // All at once.
            let once = evaluate::<Plugin>(&p, 0, &batch(ts, vs), &State::default()).unwrap();
            // Growing window in uneven chunks, state carried over.
            let mut state = State::default();
            let mut last = None;
            let mut upto = 0;
            for step in [1, 3, 7, 2, 11].iter().cycle() {
                upto = (upto + step).min(end);
                let out =
                    evaluate::<Plugin>(&p, 0, &batch(&ts[..upto], &vs[..upto]), &state).unwrap();
                state = out.state.clone();
                last = Some(out);
                if upto == end {
                    break;
                }
            }
            let chunked = last.unwrap();
            assert_eq!(chunked.verdicts, once.verdicts, "end {end}");
            assert_eq!(chunked.state, once.state, "end {end}");
            // Re-evaluating with no new point keeps the verdict.
            let again = evaluate::<Plugin>(&p, 0, &batch(ts, vs), &chunked.state).unwrap();
            assert_eq!(again.verdicts, once.verdicts, "end {end}");
            // State lost (or corrupt): rebuilt from the same window.
            let corrupt = State {
                offsets: vec![0, 3, 3],
                data: vec![0xff; 3],
            };
            let rebuilt = evaluate::<Plugin>(&p, 0, &batch(ts, vs), &corrupt).unwrap();
            assert_eq!(rebuilt.verdicts, once.verdicts, "end {end}");
            assert_eq!(rebuilt.state, once.state, "end {end}");
        }
    }

    #[test]
    fn sliding_window_only_folds_in_new_points() {
        let p = params(r#"{"warmup": 3}"#);
        let (ts, vs) = points(50, usize::MAX);
        let first =
            evaluate::<Plugin>(&p, 0, &batch(&ts[..40], &vs[..40]), &State::default()).unwrap();
        // The host drops old points from the window; the state still holds them.
        let slid =
            evaluate::<Plugin>(&p, 0, &batch(&ts[10..50], &vs[10..50]), &first.state).unwrap();
        let full = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        assert_eq!(slid.state, full.state);
        assert_eq!(slid.verdicts, full.verdicts);
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let p = params(r#"{"warmup": 3}"#);
        let (ts, mut vs) = points(20, usize::MAX);
        vs[10] = f64::NAN;
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        assert_eq!(out.verdicts[0].status, Status::Ok);
        vs[19] = f64::INFINITY;
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        assert_eq!(out.verdicts[0].status, Status::NoData);
    }

    #[test]
    fn flat_history_then_change_fires_with_a_finite_score() {
        let p = params(r#"{"warmup": 3}"#);
        let ts: Vec<i64> = (0..10).collect();
        let mut vs = vec![5.0; 10];
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        assert_eq!(
            (out.verdicts[0].status, out.verdicts[0].score),
            (Status::Ok, 0.0)
        );
        // 10% off a flat 5.0: sigma is floored at 1% of the mean, z = 10.
        vs[9] = 5.5;
        let v = &evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default())
            .unwrap()
            .verdicts[0];
        assert_eq!(v.status, Status::Firing);
        assert!((v.score - 10.0).abs() < 1e-9, "{}", v.score);
        // 2% off stays inside the floored band (z = 2 < k = 3).
        vs[9] = 5.1;
        let v = &evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default())
            .unwrap()
            .verdicts[0];
        assert_eq!(v.status, Status::Ok);
        // Without the floors, any change of a flat metric fires.
        let p = params(r#"{"warmup": 3, "min_sigma_ratio": 0}"#);
        let v = &evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default())
            .unwrap()
            .verdicts[0];
        assert_eq!(v.status, Status::Firing);
        assert!(v.score.is_finite());
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(
            err(r#"{"alpha": 1.5}"#),
            "invalid params: `alpha` must be in (0, 1], got 1.5"
        );
        assert_eq!(
            err(r#"{"alpha": 0}"#),
            "invalid params: `alpha` must be in (0, 1], got 0"
        );
        assert_eq!(
            err(r#"{"k": -1}"#),
            "invalid params: `k` must be positive, got -1"
        );
        assert_eq!(
            err(r#"{"min_sigma_ratio": -0.1}"#),
            "invalid params: `min_sigma_ratio` must be >= 0, got -0.1"
        );
        assert!(
            err(r#"{"direction": "sideways"}"#)
                .starts_with("invalid params: `direction`: unknown variant `sideways`")
        );
    }
}
