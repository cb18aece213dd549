//! The bundled checks, run as the real Wasm components the host loads.

use std::time::Duration;

use vigil::sandbox::{Batch, CheckInstance, CheckOutput, Limits, Sandbox, SeriesState, Status};
use vigil_tests::wasm;

const MINUTE: i64 = 60_000;

fn instance(crate_name: &str, params: serde_json::Value) -> CheckInstance {
    let sandbox = Sandbox::new(
        None,
        Limits {
            timeout: Duration::from_secs(2),
            memory_bytes: 64 * 1024 * 1024,
        },
    )
    .unwrap();
    let plugin = sandbox.load_file(&wasm(crate_name)).unwrap();
    CheckInstance::new(&sandbox, plugin, &params, sandbox.default_limits()).unwrap()
}

/// One series, one call, with the state of the previous call.
fn eval(inst: &mut CheckInstance, points: &[(i64, f64)], state: SeriesState) -> CheckOutput {
    let batch = Batch {
        series: vec![7],
        offsets: vec![0, points.len() as u32],
        timestamps: points.iter().map(|p| p.0).collect(),
        values: points.iter().map(|p| p.1).collect(),
    };
    let now = points.last().map_or(0, |p| p.0);
    let (_, _, out) = inst.evaluate(now, batch, state);
    out.unwrap()
}

#[test]
fn trend_fires_when_the_forecast_crosses_within_the_horizon() {
    let mut inst = instance(
        "check-trend",
        serde_json::json!({ "above": 100.0, "horizon": "30m" }),
    );
    // +2 per minute from 20: 60 after 20 minutes, 100 twenty minutes later.
    let points: Vec<(i64, f64)> = (0..=20)
        .map(|i| (i * MINUTE, 20.0 + 2.0 * i as f64))
        .collect();
    let out = eval(&mut inst, &points, SeriesState::empty(1));
    let v = &out.verdicts[0];
    assert_eq!(v.status, Status::Firing, "{v:?}");
    assert!(
        v.message
            .as_deref()
            .unwrap_or("")
            .contains("reaches 100 in 20m"),
        "{v:?}"
    );
    let mut calm = instance(
        "check-trend",
        serde_json::json!({ "above": 100.0, "horizon": "10m" }),
    );
    assert_eq!(
        eval(&mut calm, &points, SeriesState::empty(1)).verdicts[0].status,
        Status::Ok
    );
}

#[test]
fn burn_rate_pages_on_a_fast_burn() {
    let mut inst = instance("check-burn-rate", serde_json::json!({ "objective": 0.999 }));
    // Two hours at a 2% error ratio: 20x the 0.1% budget.
    let points: Vec<(i64, f64)> = (0..=120).map(|i| (i * MINUTE, 0.02)).collect();
    let v = &eval(&mut inst, &points, SeriesState::empty(1)).verdicts[0];
    assert_eq!(v.status, Status::Firing, "{v:?}");
    assert!((v.score - 20.0).abs() < 1e-6, "{v:?}");
    assert!(
        v.message.as_deref().unwrap_or("").contains("1h/5m"),
        "{v:?}"
    );
    let quiet: Vec<(i64, f64)> = (0..=120).map(|i| (i * MINUTE, 0.0005)).collect();
    assert_eq!(
        eval(&mut inst, &quiet, SeriesState::empty(1)).verdicts[0].status,
        Status::Ok
    );
}

#[test]
fn threshold_hysteresis_holds_until_the_clear_threshold() {
    let mut inst = instance(
        "check-threshold",
        serde_json::json!({ "above": 10.0, "clear_above": 5.0 }),
    );
    let mut state = SeriesState::empty(1);
    let mut statuses = Vec::new();
    for (i, v) in [1.0, 12.0, 7.0, 6.0, 4.0, 7.0].into_iter().enumerate() {
        let out = eval(&mut inst, &[(i as i64 * MINUTE, v)], state);
        statuses.push(out.verdicts[0].status);
        state = out.state;
    }
    use Status::{Firing, Ok};
    assert_eq!(statuses, [Ok, Firing, Firing, Firing, Ok, Ok]);
}

#[test]
fn anomaly_flags_a_value_unlike_its_history_and_keeps_state_across_calls() {
    let mut inst = instance("check-anomaly", serde_json::json!({}));
    let mut state = SeriesState::empty(1);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut last = None;
    // Five days of 5-minute latency around 40 ms, then one 400 ms point.
    let n = 5 * 24 * 12;
    for i in 0..=n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = if i == n {
            400.0
        } else {
            40.0 + (x % 100) as f64 / 20.0
        };
        let out = eval(&mut inst, &[(i as i64 * 5 * MINUTE, v)], state);
        state = out.state;
        last = Some(out.verdicts[0].clone());
        if i == n - 1 {
            assert_eq!(
                last.as_ref().unwrap().status,
                Status::Ok,
                "quiet before the spike"
            );
        }
    }
    let v = last.unwrap();
    assert_eq!(v.status, Status::Firing, "{v:?}");
    assert!(v.score > 0.9 && v.score <= 1.0, "{v:?}");
    assert!(
        !state.data.is_empty(),
        "the learned state travels through the host"
    );
}
