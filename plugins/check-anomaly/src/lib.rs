//! The `anomaly` check: an online detector for model-service metrics that
//! needs no tuning.
//!
//! For every new point it asks whether the series, over the last
//! `memory_weeks` weeks, has ever looked like this: the value itself, its
//! 6-hour mean, and (for series with a daily or weekly rhythm) its distance
//! from the usual value at this hour and weekday. How far the point lies
//! beyond the known range, relative to the range's width, becomes a score
//! in [0, 1): 0.5 at 1% beyond, 0.9 at 9%, 0.99 at 99%. After one such
//! event the check stays quiet for 12 hours unless the series keeps
//! breaking out. See [`detector`] for the model and the measured quality
//! (NAB) in the repository's `BENCHMARKS.md`.
//!
//! The learned state (ranges per week, a 24 + 7 bin seasonal profile, a few
//! running means; under 1 KiB) lives in the host's per-series state, so
//! only the points newer than the last processed one are folded in at each
//! evaluation, and the verdicts are the same whether points arrive one by
//! one, in chunks, or after the host restarted. Without state (first call,
//! state lost) the whole window is replayed.
use vigil_plugin_sdk::check::points_after;
use vigil_plugin_sdk::prelude::*;

pub mod detector;

use detector::{Channel, Direction, Judgement, Model, Settings};

/// Parameters of the `anomaly` check. The defaults are meant to be used as they are.
#[derive(Debug, Clone, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Anomaly {
    /// Fire when the score reaches this, in (0, 1). The score is `e / (e + 0.01)`
    /// for a point `e` (a fraction of the range's width) beyond the range the
    /// series showed in memory: 0.5 means 1% beyond the known extremes.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Points to learn from before the first non-zero score.
    #[serde(default = "default_warmup")]
    pub warmup: u32,
    /// Which deviations count: "both", "up" (new highs only, e.g. latency,
    /// error ratios) or "down" (new lows only, e.g. throughput).
    #[serde(default)]
    pub direction: Direction,
    /// Weeks of history the known range covers, besides the current week (1 to 52).
    #[serde(default = "default_memory_weeks")]
    pub memory_weeks: u32,
}

fn default_threshold() -> f64 {
    0.5
}
fn default_warmup() -> u32 {
    100
}
fn default_memory_weeks() -> u32 {
    8
}

impl Default for Anomaly {
    fn default() -> Self {
        Anomaly {
            threshold: default_threshold(),
            warmup: default_warmup(),
            direction: Direction::default(),
            memory_weeks: default_memory_weeks(),
        }
    }
}

impl Anomaly {
    /// The model settings these parameters describe.
    pub fn settings(&self) -> Settings {
        Settings {
            warmup: u64::from(self.warmup),
            direction: self.direction,
            memory_weeks: self.memory_weeks,
        }
    }
}

fn validate(p: &Anomaly) -> Result<(), String> {
    if !(p.threshold > 0.0 && p.threshold < 1.0) {
        return Err(format!(
            "`threshold` must be in (0, 1), got {}",
            p.threshold
        ));
    }
    if !(1..=52).contains(&p.memory_weeks) {
        return Err(format!(
            "`memory_weeks` must be in 1..=52, got {}",
            p.memory_weeks
        ));
    }
    Ok(())
}

/// The last processed point and what the model said about it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Last {
    /// Its timestamp (milliseconds).
    pub t: i64,
    /// Its value (possibly NaN or infinite: such points are not learned from).
    pub value: f64,
    /// The model's judgement.
    pub judgement: Judgement,
}

/// Per-series state of the `anomaly` check.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyState {
    /// Everything learned.
    pub model: Model,
    /// The last processed point, if any.
    pub last: Option<Last>,
}

impl AnomalyState {
    /// Folds in the points of `series` newer than the last processed one.
    pub fn advance(&mut self, p: &Anomaly, series: &Series<'_>) {
        let settings = p.settings();
        for (t, x) in points_after(series, self.last.map(|last| last.t)).iter() {
            // Timestamps must increase; a point at or before the last one is dropped.
            if self.last.is_some_and(|last| t <= last.t) {
                continue;
            }
            let judgement = self.model.update(&settings, t, x, p.threshold);
            self.last = Some(Last {
                t,
                value: x,
                judgement,
            });
        }
    }
}

/// Scores how far the latest point lies beyond the range the series showed
/// over the last weeks (its value, its 6-hour mean, and its distance from
/// the usual value at this hour and weekday), from 0 (seen before) towards
/// 1; fires at `threshold`. Robust to spikes in history, level shifts,
/// daily and weekly seasonality, irregular sampling and gaps. Returns the
/// band of values that would not have fired.
#[check(name = "anomaly", validate = validate)]
pub fn anomaly(p: &Anomaly, _ctx: &Context, series: &Series<'_>, st: &mut AnomalyState) -> Verdict {
    st.advance(p, series);
    let Some(last) = st.last else {
        return Verdict::no_data();
    };
    verdict(p, &st.model, &last)
}

fn verdict(p: &Anomaly, model: &Model, last: &Last) -> Verdict {
    let x = last.value;
    if !x.is_finite() {
        return Verdict::no_data().with_message(format!("value is {x}"));
    }
    if model.points() < u64::from(p.warmup) {
        return Verdict::ok(0.0).with_message(format!(
            "learning: {} of {} points",
            model.points(),
            p.warmup
        ));
    }
    let j = &last.judgement;
    let verdict = if j.score >= p.threshold {
        let what = match j.channel {
            Channel::Value | Channel::None => "value",
            Channel::Smoothed => "6-hour mean",
            Channel::Seasonal => "value for this hour and weekday",
        };
        Verdict::firing(j.score).with_message(format!(
            "{what} beyond its {}-week range by {:.1}% of the range (value {x}, score {:.3})",
            p.memory_weeks,
            100.0 * j.excess,
            j.score
        ))
    } else {
        Verdict::ok(j.score)
    };
    match j.band {
        Some((lower, upper)) => verdict.with_band(lower, upper),
        None => verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    const STEP: i64 = 300_000;
    const START: i64 = 1_700_000_000_000;

    /// Two weeks of a noisy daily cycle with a spike and a level shift.
    fn points(n: usize) -> (Vec<i64>, Vec<f64>) {
        let ts = (0..n as i64).map(|i| START + i * STEP).collect();
        let vs = (0..n)
            .map(|i| {
                let day = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
                let noise = ((i * 7919) % 101) as f64 / 101.0 - 0.5;
                let base = 50.0 + 20.0 * day.sin() + 3.0 * noise;
                match i {
                    2500 => 400.0,
                    3600.. => base + 60.0,
                    _ => base,
                }
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

    fn params(json: &str) -> Anomaly {
        configure::<Plugin>(json).unwrap()
    }

    #[test]
    fn fires_on_a_spike_and_a_level_shift_and_not_on_the_cycle() {
        let p = params("{}");
        let (ts, vs) = points(4000);
        let mut state = State::default();
        let mut firing = Vec::new();
        for i in 0..ts.len() {
            let lo = i.saturating_sub(120);
            let out =
                evaluate::<Plugin>(&p, ts[i], &batch(&ts[lo..=i], &vs[lo..=i]), &state).unwrap();
            state = out.state;
            if out.verdicts[0].is_firing() {
                firing.push(i);
            }
            assert_eq!(out.verdicts[1].status, Status::NoData);
        }
        assert!(firing.contains(&2500), "{firing:?}");
        // The shift shows once its 6-hour mean leaves the range the spike widened.
        assert!(
            firing.iter().any(|i| (3600..3612).contains(i)),
            "{firing:?}"
        );
        // Apart from the first day (the range is still being learned) and the
        // incidents, at most a rare new extreme of the noise.
        let stray: Vec<_> = firing
            .iter()
            .filter(|&&i| i > 288 && !(2500..2512).contains(&i) && !(3600..3672).contains(&i))
            .collect();
        assert!(stray.len() <= 2, "{stray:?}");
    }

    #[test]
    fn verdict_carries_score_message_and_band() {
        let p = params("{}");
        let (ts, vs) = points(2501);
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        let v = &out.verdicts[0];
        assert_eq!(v.status, Status::Firing, "{v:?}");
        assert!(v.score > 0.99 && v.score < 1.0, "{v:?}");
        let message = v.message.as_deref().unwrap();
        assert!(message.contains("beyond its 8-week range"), "{message}");
        assert!(message.contains("value 400"), "{message}");
        let band = v.band.unwrap();
        // The seasonal profile narrows the band to what is usual at this hour.
        let usual = 50.0 + 20.0 * (2500.0 % 288.0 / 288.0 * std::f64::consts::TAU).sin();
        assert!(band.lower < usual && usual < band.upper, "{band:?} {usual}");
        assert!(band.upper - band.lower < 20.0, "{band:?}");
    }

    /// One point per call, uneven chunks, all at once, and state dropped or
    /// restored from bytes: identical verdicts and state.
    #[test]
    fn incremental_equals_replay_and_survives_restarts() {
        let p = params("{}");
        let (ts, vs) = points(3700);
        let all = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        for step in [1usize, 7, 288, 1000] {
            let mut state = State::default();
            let mut upto = 0;
            let mut last = None;
            while upto < ts.len() {
                upto = (upto + step).min(ts.len());
                // The host sends a bounded window; the state holds the rest.
                let lo = upto.saturating_sub(step + 50);
                let b = batch(&ts[lo..upto], &vs[lo..upto]);
                let out = evaluate::<Plugin>(&p, ts[upto - 1], &b, &state).unwrap();
                // A restart in the middle: the state goes through bytes.
                let bytes = out.state.data.clone();
                state = State {
                    offsets: out.state.offsets.clone(),
                    data: bytes,
                };
                last = Some(out);
            }
            let last = last.unwrap();
            assert_eq!(last.verdicts, all.verdicts, "step {step}");
            assert_eq!(last.state, all.state, "step {step}");
        }
        // Evaluating again with no new point repeats the verdict.
        let again = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &all.state).unwrap();
        assert_eq!(again.verdicts, all.verdicts);
        assert_eq!(again.state, all.state);
        // Corrupt state: rebuilt from the window.
        let corrupt = State {
            offsets: vec![0, 3, 3],
            data: vec![0xff; 3],
        };
        let rebuilt = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &corrupt).unwrap();
        assert_eq!(rebuilt.verdicts, all.verdicts);
    }

    #[test]
    fn state_is_compact() {
        let p = params("{}");
        let (ts, vs) = points(4000);
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        let bytes = out.state.offsets[1];
        assert!(bytes < 1024, "{bytes} bytes");
    }

    #[test]
    fn warm_up_gaps_and_bad_values() {
        let p = params(r#"{"warmup": 50}"#);
        let (ts, mut vs) = points(60);
        let out =
            evaluate::<Plugin>(&p, 0, &batch(&ts[..10], &vs[..10]), &State::default()).unwrap();
        let v = &out.verdicts[0];
        assert_eq!((v.status, v.score), (Status::Ok, 0.0));
        assert_eq!(v.message.as_deref(), Some("learning: 10 of 50 points"));
        vs[59] = f64::NAN;
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts, &vs), &State::default()).unwrap();
        assert_eq!(out.verdicts[0].status, Status::NoData);
        // Out-of-order and duplicate timestamps are dropped, not learned twice.
        let ts2 = [START, START + 2 * STEP, START + STEP, START + 2 * STEP];
        let vs2 = [1.0, 2.0, 300.0, 400.0];
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts2, &vs2), &State::default()).unwrap();
        let st: AnomalyState = vigil_plugin_sdk::check::decode_state_at(&out.state, 0);
        assert_eq!(st.model.points(), 2);
        // A week-long gap is just a gap.
        let (ts, vs) = points(400);
        let mut late: Vec<i64> = ts.clone();
        late[300..].iter_mut().for_each(|t| *t += 7 * 86_400_000);
        let out = evaluate::<Plugin>(&p, 0, &batch(&late, &vs), &State::default()).unwrap();
        assert_eq!(out.verdicts[0].status, Status::Ok);
        // Absurd timestamps neither panic nor poison the state.
        let ts3 = [i64::MIN, -1, 0, i64::MAX];
        let vs3 = [1.0, 2.0, 3.0, 4.0];
        let out = evaluate::<Plugin>(&p, 0, &batch(&ts3, &vs3), &State::default()).unwrap();
        assert_eq!(out.verdicts[0].status, Status::Ok);
    }

    #[test]
    fn direction_limits_which_side_fires() {
        let (ts, mut vs) = points(2000);
        vs[1999] = -500.0;
        let fire = |json| {
            evaluate::<Plugin>(&params(json), 0, &batch(&ts, &vs), &State::default())
                .unwrap()
                .verdicts[0]
                .status
        };
        assert_eq!(fire("{}"), Status::Firing);
        assert_eq!(fire(r#"{"direction": "down"}"#), Status::Firing);
        assert_eq!(fire(r#"{"direction": "up"}"#), Status::Ok);
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(
            err(r#"{"threshold": 1}"#),
            "invalid params: `threshold` must be in (0, 1), got 1"
        );
        assert_eq!(
            err(r#"{"memory_weeks": 0}"#),
            "invalid params: `memory_weeks` must be in 1..=52, got 0"
        );
        assert!(err(r#"{"treshold": 0.5}"#).contains("unknown field `treshold`"));
        assert!(
            err(r#"{"direction": "sideways"}"#)
                .starts_with("invalid params: `direction`: unknown variant `sideways`")
        );
    }

    #[test]
    fn info_documents_every_param() {
        let info = <Plugin as vigil_plugin_sdk::Check>::info();
        assert_eq!(info.name, "anomaly");
        let names: Vec<_> = info.params.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["threshold", "warmup", "direction", "memory_weeks"]);
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
