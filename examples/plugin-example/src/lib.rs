//! `stuck`: fires when a metric stops changing, e.g. an exporter serving a
//! cached value. Build: `cargo build --release --target wasm32-wasip2`.
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `stuck` check.
#[derive(Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Stuck {
    /// Fire when this many last values are all identical (at least 2).
    #[serde(default = "five")]
    pub points: u32,
}

fn five() -> u32 {
    5
}

/// Fires when the last `points` values are identical. Score: how many trailing values are.
#[check(name = "stuck")]
pub fn stuck(p: &Stuck, _ctx: &Context, series: &Series<'_>) -> Verdict {
    let need = p.points.max(2) as usize;
    let Some((_, last)) = series.last() else {
        return Verdict::no_data();
    };
    if series.len() < need {
        return Verdict::no_data();
    }
    let same = series
        .values
        .iter()
        .rev()
        .take_while(|&&v| v == last)
        .count();
    match same >= need {
        true => {
            Verdict::firing(same as f64).with_message(format!("stuck at {last} for {same} points"))
        }
        false => Verdict::ok(same as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::{configure, evaluate};

    #[test]
    fn fires_only_on_a_frozen_tail() {
        let p = configure::<Plugin>(r#"{"points": 3}"#).unwrap();
        let mut batch = Batch::default();
        batch.push_series(1, &[1, 2, 3, 4], &[1.0, 7.0, 7.0, 7.0]);
        batch.push_series(2, &[1, 2, 3, 4], &[7.0, 7.0, 1.0, 7.0]);
        batch.push_series(3, &[1, 2], &[7.0, 7.0]);
        let out = evaluate::<Plugin>(&p, 4, &batch, &State::default()).unwrap();
        let got: Vec<_> = out.verdicts.iter().map(|v| (v.status, v.score)).collect();
        assert_eq!(
            got,
            [
                (Status::Firing, 3.0),
                (Status::Ok, 1.0),
                (Status::NoData, 0.0)
            ]
        );
        assert_eq!(
            out.verdicts[0].message.as_deref(),
            Some("stuck at 7 for 3 points")
        );
    }
}
