//! The `threshold` check: fires when a value computed from the window
//! crosses a fixed bound.
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `threshold` check; set `above`, `below` or both.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Fire when the compared value is strictly greater than this.
    pub above: Option<f64>,
    /// Fire when the compared value is strictly less than this.
    pub below: Option<f64>,
    /// What to compare: "last" (the last point, default) or "rate" (the
    /// per-second increase of a counter over the window, resets handled).
    #[serde(default)]
    pub compare: Compare,
    /// A window with fewer points than this is no-data.
    #[serde(default = "one")]
    pub min_points: u32,
}

/// The value a threshold is compared with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    #[default]
    Last,
    Rate,
}

fn one() -> u32 {
    1
}

fn validate(p: &Threshold) -> Result<(), String> {
    match (p.below, p.above) {
        (None, None) => Err("set `above`, `below` or both".into()),
        (Some(b), Some(a)) if b > a => Err(format!(
            "`below` ({b}) is greater than `above` ({a}): every value would fire"
        )),
        _ => Ok(()),
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
    Some(increase / ((t1 - t0) as f64 / 1000.0))
}

/// Fires when the compared value (the last point, or a counter's rate) is
/// above `above` or below `below`. Score: the compared value.
#[check(name = "threshold", validate = validate)]
pub fn threshold(p: &Threshold, _ctx: &Context, series: &Series<'_>) -> Verdict {
    if series.len() < p.min_points as usize {
        return Verdict::no_data().with_message(format!(
            "{} of {} points",
            series.len(),
            p.min_points
        ));
    }
    let value = match p.compare {
        Compare::Last => series.last().map(|(_, v)| v),
        Compare::Rate => counter_rate(series),
    };
    let Some(v) = value.filter(|v| !v.is_nan()) else {
        return Verdict::no_data();
    };
    let what = match p.compare {
        Compare::Last => "value",
        Compare::Rate => "rate",
    };
    let (lower, upper) = (
        p.below.unwrap_or(f64::NEG_INFINITY),
        p.above.unwrap_or(f64::INFINITY),
    );
    let verdict = if v > upper {
        Verdict::firing(v).with_message(format!("{what} {v} above {upper}"))
    } else if v < lower {
        Verdict::firing(v).with_message(format!("{what} {v} below {lower}"))
    } else {
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
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert_eq!(err("{}"), "invalid params: set `above`, `below` or both");
        assert!(err(r#"{"abov": 1}"#).contains("unknown field `abov`"));
        assert!(
            err(r#"{"above": "high"}"#)
                .starts_with("invalid params: `above`: invalid type: string")
        );
        assert!(err(r#"{"above": 1, "below": 2}"#).contains("greater than `above`"));
        assert!(err(r#"{"above": 1, "compare": "mean"}"#).contains("unknown variant `mean`"));
    }

    #[test]
    fn info_documents_params() {
        let info = <Plugin as vigil_plugin_sdk::Check>::info();
        assert_eq!(info.name, "threshold");
        assert_eq!(
            info.description,
            "Fires when the compared value (the last point, or a counter's rate) is above `above` or below `below`. Score: the compared value."
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
                ("compare", "Compare", false),
                ("min_points", "u32", false)
            ]
        );
        assert_eq!(
            info.params[3].description,
            "A window with fewer points than this is no-data."
        );
    }
}
