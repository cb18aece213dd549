//! One rule evaluation over 100k series x 120 points: the bundled Wasm
//! checks against the same crates compiled natively, in one run.
//!
//! Run: `cargo xtask build-plugins && env -u RUST_BACKTRACE cargo bench -p vigil --bench check_eval`
//! (`VIGIL_BENCH_SERIES` and `VIGIL_BENCH_POINTS` change the size).
//!
//! Two measurements per check:
//! - the plugin call alone: both sides decode per-series state, judge every
//!   series and encode the new state; the Wasm side adds the copy of the
//!   batch into the instance and of the verdicts out, the cost of the sandbox;
//! - a whole rule step: append this step's point to each of the 100k
//!   windows, assemble the columnar batch from them, and call the check;
//!   the native side runs the same crate behind the same columnar interface.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil::engine::window::Windows;
use vigil::query::Sample;
use vigil::sandbox::{
    Batch, CheckInput, CheckInstance, LabelCache, LabelColumns, Limits, Sandbox, SeriesState,
};
use vigil::store::labels::Labels;

const STEP_MS: i64 = 15_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic noisy series: a level per series plus a small random walk.
fn make_batch(series: usize, points: usize, start_step: i64) -> Batch {
    let mut b = Batch {
        series: Vec::with_capacity(series),
        offsets: Vec::with_capacity(series + 1),
        timestamps: Vec::with_capacity(series * points),
        values: Vec::with_capacity(series * points),
    };
    b.offsets.push(0);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for s in 0..series {
        b.series.push(s as u64);
        let level = (s % 97) as f64;
        for p in 0..points {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let noise = (x % 1000) as f64 / 1000.0;
            b.timestamps.push((start_step + p as i64) * STEP_MS);
            b.values.push(level + noise);
        }
        b.offsets.push(b.timestamps.len() as u32);
    }
    b
}

/// Windows holding `points` steps of `series` series, and the samples of the next step.
fn make_windows(series: usize, points: usize) -> (Windows, Vec<Sample>) {
    let mut w = Windows::new(points as i64 * STEP_MS);
    let mut samples: Vec<Sample> = (0..series)
        .map(|s| Sample {
            labels: Labels::from_pairs([("__name__", "latency"), ("model", &format!("m{s}"))]),
            value: 0.0,
        })
        .collect();
    for p in 0..points {
        for (s, smp) in samples.iter_mut().enumerate() {
            smp.value = (s % 97) as f64 + (p % 7) as f64 / 10.0;
        }
        w.observe(p as i64 * STEP_MS, &samples);
    }
    (w, samples)
}

fn sdk_batch(b: &Batch) -> vigil_plugin_sdk::Batch {
    vigil_plugin_sdk::Batch {
        series: b.series.clone(),
        offsets: b.offsets.clone(),
        timestamps: b.timestamps.clone(),
        values: b.values.clone(),
        matched: b.series.len() as u32,
        ..Default::default()
    }
}

/// The engine's label columns in the SDK's type, for the native side.
fn sdk_labels(c: &LabelColumns) -> vigil_plugin_sdk::LabelColumns {
    vigil_plugin_sdk::LabelColumns {
        text: c.text.clone(),
        strings: c.strings.clone(),
        offsets: c.offsets.clone(),
        names: c.names.clone(),
        values: c.values.clone(),
    }
}

/// A window's labels, or none at all for the step without labels.
fn labels_of(windows: &Windows, i: usize, with: bool) -> impl Iterator<Item = (&str, &str)> {
    windows
        .labels(i)
        .filter(|_| with)
        .into_iter()
        .flat_map(|l| l.iter())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn wasm_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = root.join("target/plugins").join(name);
    if p.exists() {
        p
    } else {
        root.join("target/wasm/wasm32-wasip2/release").join(name)
    }
}

struct Case {
    name: &'static str,
    file: &'static str,
    params: &'static str,
    native: fn(
        &str,
        i64,
        &vigil_plugin_sdk::Batch,
        &vigil_plugin_sdk::State,
    ) -> vigil_plugin_sdk::State,
}

fn native_threshold(
    params: &str,
    now: i64,
    b: &vigil_plugin_sdk::Batch,
    st: &vigil_plugin_sdk::State,
) -> vigil_plugin_sdk::State {
    let p = vigil_plugin_sdk::configure::<check_threshold::Plugin>(params).expect("params");
    vigil_plugin_sdk::evaluate::<check_threshold::Plugin>(&p, now, b, st)
        .expect("evaluate")
        .state
}

fn native_ewma(
    params: &str,
    now: i64,
    b: &vigil_plugin_sdk::Batch,
    st: &vigil_plugin_sdk::State,
) -> vigil_plugin_sdk::State {
    let p = vigil_plugin_sdk::configure::<check_ewma::Plugin>(params).expect("params");
    vigil_plugin_sdk::evaluate::<check_ewma::Plugin>(&p, now, b, st)
        .expect("evaluate")
        .state
}

fn report(check: &str, mode: &str, wasm: Duration, native: Duration) {
    println!(
        "{:<10} {:<36} {:>10.1}ms {:>10.1}ms {:>10.2}x",
        check,
        mode,
        wasm.as_secs_f64() * 1e3,
        native.as_secs_f64() * 1e3,
        wasm.as_secs_f64() / native.as_secs_f64()
    );
}

fn main() {
    let series = env_usize("VIGIL_BENCH_SERIES", 100_000);
    let points = env_usize("VIGIL_BENCH_POINTS", 120);
    let rounds = env_usize("VIGIL_BENCH_ROUNDS", 7);
    println!(
        "check evaluation: {series} series x {points} points per rule evaluation, median of {rounds}"
    );
    let sandbox = Sandbox::new(
        None,
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 2 * 1024 * 1024 * 1024,
        },
    )
    .expect("sandbox");
    let cases = [
        Case {
            name: "threshold",
            file: "check_threshold.wasm",
            params: r#"{"above": 90.0}"#,
            native: native_threshold,
        },
        Case {
            name: "ewma",
            file: "check_ewma.wasm",
            params: r#"{"alpha": 0.3, "k": 3.0}"#,
            native: native_ewma,
        },
    ];
    println!(
        "{:<10} {:<34} {:>12} {:>12} {:>10}",
        "check", "mode", "wasm", "native", "wasm/native"
    );
    for case in &cases {
        let path = wasm_path(case.file);
        let plugin = match sandbox.load_file(&path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "skipped {}: {} ({e}); run `cargo xtask build-plugins` first",
                    case.name,
                    path.display()
                );
                continue;
            }
        };
        let params: serde_json::Value = serde_json::from_str(case.params).expect("json");
        let mut inst = CheckInstance::new(&sandbox, plugin, &params, sandbox.default_limits())
            .expect("instance");
        // Cold: no state yet, every point of every window is processed.
        // Steady: the window slid by one step and the state from the
        // previous evaluation comes back, as in a running rule.
        for mode in [
            "plugin call, cold (no state)",
            "plugin call, steady (state, +1 step)",
        ] {
            let steady = mode.contains("steady");
            let b0 = make_batch(series, points, 0);
            let b1 = make_batch(series, points, 1);
            let (mut wasm_t, mut native_t) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                // Wasm.
                let mut state = SeriesState::empty(series);
                if steady {
                    let (_, _, out) = inst.evaluate(points as i64 * STEP_MS, b0.clone(), state);
                    state = out.expect("wasm warm-up").state;
                }
                let batch = if steady { b1.clone() } else { b0.clone() };
                let t = Instant::now();
                let (_, _, out) = inst.evaluate((points as i64 + 1) * STEP_MS, batch, state);
                wasm_t.push(t.elapsed());
                out.expect("wasm evaluate");
                // Native.
                let mut nstate = vigil_plugin_sdk::State {
                    offsets: vec![0; series + 1],
                    data: Vec::new(),
                };
                let (s0, s1) = (sdk_batch(&b0), sdk_batch(&b1));
                if steady {
                    nstate = (case.native)(case.params, points as i64 * STEP_MS, &s0, &nstate);
                }
                let batch = if steady { &s1 } else { &s0 };
                let t = Instant::now();
                let st = (case.native)(case.params, (points as i64 + 1) * STEP_MS, batch, &nstate);
                native_t.push(t.elapsed());
                std::hint::black_box(st);
            }
            report(case.name, mode, median(wasm_t), median(native_t));
        }
        // A whole rule step, as the engine runs it, twice over the same
        // windows: once calling the Wasm plugin, once the native crate.
        // The series' labels go along (contract 0.2.0), from the rule's
        // label cache as in the engine; the same step without them shows
        // what they cost.
        for with_labels in [true, false] {
            let (mut windows, mut samples) = make_windows(series, points);
            let mut labels = LabelCache::default();

            let (mut wasm_t, mut native_t) = (Vec::new(), Vec::new());
            let (mut batch, mut state) = (Batch::default(), SeriesState::default());
            let (mut wasm_state, mut native_state) =
                (None::<SeriesState>, None::<vigil_plugin_sdk::State>);
            for round in 0..rounds + 1 {
                let t_ms = (points + round) as i64 * STEP_MS;
                for smp in samples.iter_mut() {
                    smp.value += 0.01;
                }
                // Appending the step's points is common to both sides.
                let t = Instant::now();
                let present = windows.observe(t_ms, &samples);
                let observe = t.elapsed();
                // Wasm.
                let t = Instant::now();
                windows.fill(&present, &mut batch, &mut state);
                if let Some(st) = wasm_state.take() {
                    state = st;
                }
                labels.update(&batch.series, |k| {
                    labels_of(&windows, present[k], with_labels)
                });
                let input = CheckInput {
                    batch: std::mem::take(&mut batch),
                    matched: present.len(),
                    state: std::mem::take(&mut state),
                    rule_state: Vec::new(),
                };
                let (input, out) = inst.evaluate_rule(t_ms, input, &mut labels);
                let out = out.expect("wasm evaluate");
                batch = input.batch;
                wasm_state = Some(out.state);
                let wasm_elapsed = observe + t.elapsed();
                // Native: the same assembly, the same crate.
                let t = Instant::now();
                windows.fill(&present, &mut batch, &mut state);
                labels.update(&batch.series, |k| {
                    labels_of(&windows, present[k], with_labels)
                });
                let sdk = vigil_plugin_sdk::Batch {
                    matched: batch.series.len() as u32,
                    series: std::mem::take(&mut batch.series),
                    offsets: std::mem::take(&mut batch.offsets),
                    timestamps: std::mem::take(&mut batch.timestamps),
                    values: std::mem::take(&mut batch.values),
                    labels: sdk_labels(labels.columns()),
                };
                let nst = native_state.take().unwrap_or(vigil_plugin_sdk::State {
                    offsets: vec![0; series + 1],
                    data: Vec::new(),
                });
                native_state = Some((case.native)(case.params, t_ms, &sdk, &nst));
                let native_elapsed = observe + t.elapsed();
                (batch.series, batch.offsets, batch.timestamps, batch.values) =
                    (sdk.series, sdk.offsets, sdk.timestamps, sdk.values);
                // The first round warms the state and the instance's memory.
                if round > 0 {
                    wasm_t.push(wasm_elapsed);
                    native_t.push(native_elapsed);
                }
            }
            report(
                case.name,
                match with_labels {
                    true => "rule step, labels (windows + batch + check)",
                    false => "rule step, no labels",
                },
                median(wasm_t),
                median(native_t),
            );
        }
    }
}
