//! The bundled checks, run as the real Wasm components the host loads.

use std::time::Duration;

use vigil::sandbox::{
    Batch, CheckInput, CheckInstance, CheckOutput, Contract, LabelCache, Limits, Sandbox,
    SeriesState, Status,
};
use vigil_tests::{Target, TempDir, Vigil, Webhook, eventually, free_port, install_plugins, wasm};

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

/// One evaluation as the engine makes it (contract 0.2.0): labelled series,
/// the first `matched` returned by the query and the rest vanished, with
/// the per-series and the rule's state of the previous call.
struct Step<'a> {
    series: &'a [LabelledPoints<'a>],
    matched: usize,
}

/// One series: its labels and its window's points.
type LabelledPoints<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

fn eval_rule(
    inst: &mut CheckInstance,
    now: i64,
    step: Step<'_>,
    state: SeriesState,
    rule_state: Vec<u8>,
) -> CheckOutput {
    let mut batch = Batch::default();
    batch.offsets.push(0);
    for (k, (_, points)) in step.series.iter().enumerate() {
        batch.series.push(k as u64 + 1);
        batch.timestamps.extend(points.iter().map(|p| p.0));
        batch.values.extend(points.iter().map(|p| p.1));
        batch.offsets.push(batch.timestamps.len() as u32);
    }
    let mut labels = LabelCache::default();
    labels.update(&batch.series, |k| step.series[k].0.iter().copied());
    let n = batch.series.len();
    let input = CheckInput {
        batch,
        matched: step.matched,
        state: if state.offsets.len() == n + 1 {
            state
        } else {
            SeriesState::empty(n)
        },
        rule_state,
    };
    let (_, out) = inst.evaluate_rule(now, input, &mut labels);
    out.unwrap()
}

#[test]
fn threshold_severities_follow_the_level_crossed_with_hysteresis() {
    let mut inst = instance(
        "check-threshold",
        serde_json::json!({
            "above": { "warning": 0.02, "critical": 0.05 },
            "clear_above": { "critical": 0.04 },
        }),
    );
    assert_eq!(inst.plugin().info.contract, Contract::V0_2);
    let mut state = SeriesState::empty(1);
    let mut seen = Vec::new();
    for (i, v) in [0.01, 0.03, 0.06, 0.045, 0.03, 0.01]
        .into_iter()
        .enumerate()
    {
        let out = eval(&mut inst, &[(i as i64 * MINUTE, v)], state);
        let verdict = &out.verdicts[0];
        seen.push((verdict.status, verdict.severity.clone()));
        state = out.state;
    }
    let sev = |s: &str| Some(s.to_string());
    use Status::{Firing, Ok};
    assert_eq!(
        seen,
        [
            (Ok, None),
            (Firing, sev("warning")),
            (Firing, sev("critical")),
            (Firing, sev("critical")),
            (Firing, sev("warning")),
            (Ok, None),
        ]
    );
    // The old scalar form keeps working, without a severity of its own.
    let mut plain = instance("check-threshold", serde_json::json!({ "above": 0.05 }));
    let v = &eval(&mut plain, &[(0, 0.06)], SeriesState::empty(1)).verdicts[0];
    assert_eq!((v.status, v.severity.as_deref()), (Firing, None));
}

#[test]
fn absent_judges_vanished_series_and_a_dead_rule() {
    let mut inst = instance(
        "check-absent",
        serde_json::json!({ "stale_after": "5m", "dead_after": "10m" }),
    );
    let a: &[(&str, &str)] = &[("instance", "a"), ("job", "triton")];
    let b: &[(&str, &str)] = &[("instance", "b"), ("job", "triton")];
    let points: &[(i64, f64)] = &[(0, 1.0), (MINUTE, 1.0)];
    // b vanished after its point at one minute; six minutes later it fires.
    let out = eval_rule(
        &mut inst,
        7 * MINUTE,
        Step {
            series: &[(a, &[(7 * MINUTE, 1.0)]), (b, points)],
            matched: 1,
        },
        SeriesState::default(),
        Vec::new(),
    );
    assert_eq!(out.verdicts[0].status, Status::Ok);
    let v = &out.verdicts[1];
    assert_eq!((v.status, v.score), (Status::Firing, 360.0), "{v:?}");
    assert_eq!(out.rule_verdict, None);

    // Nothing matches any more: the rule's clock runs in its state, which
    // the host hands back (here as a restart would, through bytes).
    let mut rule_state = out.rule_state;
    let mut statuses = Vec::new();
    for t in [20, 25, 30, 31] {
        let out = eval_rule(
            &mut inst,
            t * MINUTE,
            Step {
                series: &[],
                matched: 0,
            },
            SeriesState::default(),
            rule_state.clone(),
        );
        let v = out
            .rule_verdict
            .expect("a rule verdict while nothing matches");
        statuses.push((v.status, v.score));
        rule_state = out.rule_state;
    }
    assert_eq!(
        statuses,
        [
            (Status::Ok, 0.0),
            (Status::Ok, 300.0),
            (Status::Firing, 600.0),
            (Status::Firing, 660.0)
        ]
    );
}

/// Cumulative bucket counters of a 4-bucket histogram over `steps` minutes,
/// `per_step` observations a minute shared by `shares(minute)`.
fn histogram(steps: usize, per_step: f64, shares: impl Fn(usize) -> [f64; 4]) -> Vec<[f64; 4]> {
    let mut totals = [0.0; 4];
    (0..steps)
        .map(|k| {
            let mut acc = 0.0;
            std::array::from_fn(|j| {
                totals[j] += shares(k)[j] * per_step;
                acc += totals[j];
                acc
            })
        })
        .collect()
}

const LES: [&str; 4] = ["1", "2", "4", "+Inf"];
const STABLE: [f64; 4] = [0.5, 0.3, 0.15, 0.05];
const SHIFTED: [f64; 4] = [0.1, 0.2, 0.3, 0.4];

/// Streams a histogram through `inst`, one point a minute, each call's
/// window holding the last three points; returns the +Inf bucket's verdicts.
fn stream_drift(inst: &mut CheckInstance, counts: &[[f64; 4]]) -> Vec<vigil::sandbox::Verdict> {
    let mut state = SeriesState::empty(4);
    let mut out = Vec::new();
    for k in 0..counts.len() {
        let lo = k.saturating_sub(2);
        let points: Vec<Vec<(i64, f64)>> = (0..4)
            .map(|j| {
                (lo..=k)
                    .map(|i| (i as i64 * MINUTE, counts[i][j]))
                    .collect()
            })
            .collect();
        let labels: Vec<[(&str, &str); 3]> = LES
            .iter()
            .map(|le| {
                [
                    ("__name__", "prompt_tokens_bucket"),
                    ("le", le),
                    ("model", "m"),
                ]
            })
            .collect();
        let series: Vec<LabelledPoints<'_>> =
            (0..4).map(|j| (&labels[j][..], &points[j][..])).collect();
        let o = eval_rule(
            inst,
            k as i64 * MINUTE,
            Step {
                series: &series,
                matched: 4,
            },
            state,
            Vec::new(),
        );
        out.push(o.verdicts[3].clone());
        state = o.state;
    }
    out
}

#[test]
fn drift_fires_when_a_histogram_shifts() {
    let mut inst = instance(
        "check-drift",
        serde_json::json!({ "current": "30m", "reference": "1d", "min_count": 50 }),
    );
    let counts = histogram(240, 10.0, |k| if k < 180 { STABLE } else { SHIFTED });
    let verdicts = stream_drift(&mut inst, &counts);
    assert_eq!(verdicts[10].status, Status::NoData, "{:?}", verdicts[10]);
    assert!(verdicts[60..180].iter().all(|v| v.status == Status::Ok));
    let last = verdicts.last().unwrap();
    assert_eq!(last.status, Status::Firing, "{last:?}");
    assert_eq!(last.severity.as_deref(), Some("critical"));
    assert!(last.score > 0.25, "{last:?}");
    // One alert per histogram: the verdict drops `le` from the alert.
    assert_eq!(last.labels, [("le".to_string(), String::new())]);
}

#[test]
fn plugins_built_against_0_1_0_keep_loading_and_get_what_they_understand() {
    let mut inst = instance("fixture-check-v0-1", serde_json::json!({ "above": 5.0 }));
    assert_eq!(inst.plugin().info.contract, Contract::V0_1);
    assert_eq!(inst.plugin().info.name, "legacy-above");
    let a: &[(&str, &str)] = &[("instance", "a")];
    let gone: &[(&str, &str)] = &[("instance", "gone")];
    let mut state = SeriesState::empty(2);
    // The vanished series' state is kept aside and comes back untouched.
    state.data = vec![9; 8];
    state.offsets = vec![0, 0, 8];
    let mut last = None;
    for i in 0..3 {
        let out = eval_rule(
            &mut inst,
            i * MINUTE,
            Step {
                series: &[(a, &[(i * MINUTE, 7.0)]), (gone, &[(0, 9.0)])],
                matched: 1,
            },
            state,
            vec![1, 2, 3],
        );
        assert_eq!(out.verdicts.len(), 2);
        assert_eq!(out.verdicts[1].status, Status::Ok);
        assert_eq!(out.verdicts[1].message.as_deref(), Some("series vanished"));
        assert_eq!(out.state.get(1), &[9; 8]);
        // 0.1.0 has no rule state: the host's passes through.
        assert_eq!(out.rule_state, [1, 2, 3]);
        assert_eq!(out.rule_verdict, None);
        state = out.state;
        last = Some(out.verdicts[0].clone());
    }
    let v = last.unwrap();
    assert_eq!(v.status, Status::Firing);
    // Its own per-series state went round three times.
    assert_eq!(v.message.as_deref(), Some("v0.1 call 3: 7"));
    // The old entry point works for it too.
    let out = eval(&mut inst, &[(0, 1.0)], SeriesState::empty(1));
    assert_eq!(out.verdicts[0].status, Status::Ok);
}

/// The active alerts of `rule` as (labels, state), from `/api/v1/alerts`.
async fn alerts_of(v: &Vigil, rule: &str) -> Vec<(serde_json::Value, String)> {
    let all = v.get_json("/api/v1/alerts").await;
    all["data"]["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["rule"] == rule)
                .map(|x| {
                    (
                        x["labels"].clone(),
                        x["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Through the real binary: a verdict's severity becomes the alert's
/// `severity` label (over the rule's), a rule whose query matches nothing
/// alerts with the rule's labels only, and a series that vanished alerts
/// with its own labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severities_dead_rules_and_vanished_series_reach_the_alerts() {
    let dir = TempDir::new("contract-v2");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "check-absent", "notify-webhook"],
    );
    let target = Target::start(0.01).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let text = format!(
        r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[[targets]]
job = "model-server"
url = "http://{target}/metrics"
interval = "200ms"
timeout = "150ms"

[[rules]]
name = "ErrorRatio"
query = 'model_error_ratio'
every = "200ms"
window = "10s"
check = "threshold"
params = {{ above = {{ warning = 0.02, critical = 0.05 }} }}
labels = {{ severity = "info", team = "ml" }}

[[rules]]
name = "ModelGone"
query = 'model_up'
every = "200ms"
window = "30s"
check = "absent"
params = {{ stale_after = "1s", dead_rule = false }}

[[rules]]
name = "DeadRule"
query = 'model_up{{model="typo"}}'
every = "200ms"
check = "absent"
params = {{ dead_after = "1s" }}
labels = {{ severity = "ticket" }}

{receiver}
"#,
        target = target.addr,
        receiver = hook.receiver_toml("team"),
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, text).expect("write config");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;

    // The dead rule: one alert, the rule's labels only.
    let (labels, _) = eventually(Duration::from_secs(10), "the dead rule's alert", || async {
        alerts_of(&v, "DeadRule")
            .await
            .into_iter()
            .find(|(_, s)| s == "firing")
    })
    .await;
    assert_eq!(
        labels,
        serde_json::json!({ "alertname": "DeadRule", "severity": "ticket" })
    );

    // Warning, then critical: the severity label follows the verdict.
    assert!(alerts_of(&v, "ErrorRatio").await.is_empty());
    target.set(0.03);
    let (labels, _) = eventually(Duration::from_secs(10), "a warning", || async {
        alerts_of(&v, "ErrorRatio").await.into_iter().next()
    })
    .await;
    assert_eq!(labels["severity"], "warning", "{labels}");
    assert_eq!(labels["team"], "ml");
    target.set(0.08);
    let active = eventually(
        Duration::from_secs(10),
        "the critical alert alone",
        || async {
            let a = alerts_of(&v, "ErrorRatio").await;
            (a.len() == 1 && a[0].0["severity"] == "critical").then_some(a)
        },
    )
    .await;
    assert_eq!(active[0].0["model"], "resnet");

    // The target goes away: its series vanish and `absent` reports them.
    assert!(alerts_of(&v, "ModelGone").await.is_empty());
    drop(target);
    let (labels, _) = eventually(
        Duration::from_secs(10),
        "the vanished series' alert",
        || async {
            alerts_of(&v, "ModelGone")
                .await
                .into_iter()
                .find(|(_, s)| s == "firing")
        },
    )
    .await;
    assert_eq!(labels["model"], "resnet", "{labels}");
    assert_eq!(labels["job"], "model-server");
    let firing = eventually(Duration::from_secs(10), "its notification", || async {
        hook.alerts("firing")
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "ModelGone")
    })
    .await;
    assert_eq!(firing["labels"]["model"], "resnet");
}
