//! Learned state lives in the host: the `ewma`, `anomaly` and `drift`
//! checks give the same verdicts, to the bit, whether the host runs a
//! stream straight through, is stopped and started in the middle, crashes
//! and comes back with its last periodic save, or hot-reloads the plugin.
//!
//! The harness drives the real pieces the engine drives, in the engine's
//! order: the rule's [`Windows`], the real Wasm plugin in a [`Sandbox`]
//! (a new one, with a new wasmtime engine, after a restart), the label
//! cache, and the SQLite [`Durable`] the check state is saved to and
//! restored from. Evaluation times are the stream's own, so every run is
//! deterministic.

use std::collections::HashMap;
use std::time::Duration;

use vigil::engine::window::Windows;
use vigil::query::Sample;
use vigil::sandbox::{
    Batch, CheckInput, CheckInstance, LabelCache, Limits, Sandbox, SeriesState, Status,
};
use vigil::store::durable::Durable;
use vigil::store::labels::Labels;
use vigil_tests::{TempDir, wasm};

const RULE: &str = "StateTest";
/// The key the engine saves a rule's own state under.
const RULE_STATE_KEY: u64 = 0;

/// What is compared: everything a verdict says, floats by their bits.
type Seen = (
    Status,
    u64,
    Option<String>,
    Option<String>,
    Vec<(String, String)>,
);

/// One rule as the engine runs it.
struct Rule {
    crate_name: &'static str,
    params: serde_json::Value,
    window_ms: i64,
    sandbox: Sandbox,
    check: CheckInstance,
    windows: Windows,
    batch: Batch,
    state: SeriesState,
    labels: LabelCache,
    rule_state: Vec<u8>,
    /// Saved state waiting for its series, by fingerprint.
    restored: HashMap<u64, Vec<u8>>,
}

fn sandbox() -> Sandbox {
    Sandbox::new(
        None,
        Limits {
            timeout: Duration::from_secs(5),
            memory_bytes: 256 * 1024 * 1024,
        },
    )
    .expect("sandbox")
}

fn instance(sandbox: &Sandbox, crate_name: &str, params: &serde_json::Value) -> CheckInstance {
    let plugin = sandbox.load_file(&wasm(crate_name)).expect("plugin loads");
    CheckInstance::new(sandbox, plugin, params, sandbox.default_limits()).expect("configures")
}

impl Rule {
    /// Starts the rule, restoring what `durable` holds for it (a start
    /// after a stop or a crash; nothing on the first start).
    fn start(
        crate_name: &'static str,
        params: serde_json::Value,
        window_ms: i64,
        durable: &Durable,
    ) -> Rule {
        let sandbox = sandbox();
        let check = instance(&sandbox, crate_name, &params);
        let mut restored = durable.load_check_state(RULE).expect("load state");
        let rule_state = restored.remove(&RULE_STATE_KEY).unwrap_or_default();
        Rule {
            crate_name,
            params,
            window_ms,
            sandbox,
            check,
            windows: Windows::new(window_ms),
            batch: Batch::default(),
            state: SeriesState::default(),
            labels: LabelCache::default(),
            rule_state,
            restored,
        }
    }

    /// Saves the check state as the engine does (every 30 s and on stop).
    fn save(&self, durable: &Durable) {
        let entries: Vec<(u64, &[u8])> = self
            .windows
            .states()
            .map(|(l, d)| (l.fingerprint(), d))
            .chain(self.restored.iter().map(|(k, v)| (*k, v.as_slice())))
            .chain([(RULE_STATE_KEY, self.rule_state.as_slice())])
            .collect();
        durable.save_check_state(RULE, entries).expect("save state");
    }

    /// Backfills the windows with past points, as the engine does at start
    /// from its store (or a remote source) for the window before `now`.
    fn backfill(&mut self, stream: &[(i64, Vec<Sample>)], now: i64) {
        for (t, samples) in stream {
            if *t > now - self.window_ms && *t < now {
                for s in samples {
                    self.windows.seed(&s.labels, *t, s.value);
                }
            }
        }
    }

    /// A hot reload: the plugin file is loaded anew and swapped in; the
    /// windows and all state stay.
    fn reload(&mut self) {
        self.check = instance(&self.sandbox, self.crate_name, &self.params);
    }

    /// One evaluation at `now` of a query that returned `samples`.
    fn step(&mut self, now: i64, samples: &[Sample]) -> Vec<Seen> {
        let present = self.windows.observe(now, samples);
        self.windows.expire(now);
        for s in samples {
            if let Some(data) = self.restored.remove(&s.labels.fingerprint()) {
                self.windows.restore_state(&s.labels, data);
            }
        }
        let matched = present.len();
        let mut order = present;
        order.extend(self.windows.vanished(&order));
        let (mut batch, mut state) = (
            std::mem::take(&mut self.batch),
            std::mem::take(&mut self.state),
        );
        self.windows.fill(&order, &mut batch, &mut state);
        let windows = &self.windows;
        self.labels.update(&batch.series, |k| {
            windows.labels(order[k]).into_iter().flat_map(|l| l.iter())
        });
        let input = CheckInput {
            batch,
            matched,
            state,
            rule_state: std::mem::take(&mut self.rule_state),
        };
        let (input, out) = self.check.evaluate_rule(now, input, &mut self.labels);
        (self.batch, self.state, self.rule_state) = (input.batch, input.state, input.rule_state);
        let out = out.unwrap_or_else(|e| panic!("{} at {now}: {e}", self.crate_name));
        self.windows.store_state(&order, &out.state);
        self.rule_state = out.rule_state;
        out.verdicts
            .into_iter()
            .chain(out.rule_verdict)
            .map(|v| (v.status, v.score.to_bits(), v.message, v.severity, v.labels))
            .collect()
    }
}

/// How a run is interrupted at one step.
#[derive(Debug, Clone, Copy)]
enum Interruption {
    /// None: the reference run.
    None,
    /// A graceful stop (state saved) and a start with empty windows, as
    /// with the in-memory store.
    StopStart,
    /// SIGKILL: the last periodic save was `behind` steps earlier; the
    /// start backfills the windows (from a store or source that kept the
    /// samples), and the checks catch up from their saved state.
    Crash { behind: usize },
    /// The plugin is loaded again and swapped in.
    HotReload,
}

fn run(
    crate_name: &'static str,
    params: serde_json::Value,
    window_ms: i64,
    stream: &[(i64, Vec<Sample>)],
    at: usize,
    how: Interruption,
) -> Vec<Vec<Seen>> {
    let dir = TempDir::new(&format!("state-{crate_name}"));
    let durable = Durable::open(dir.path()).expect("durable");
    let mut rule = Rule::start(crate_name, params.clone(), window_ms, &durable);
    let mut seen = Vec::with_capacity(stream.len());
    for (k, (t, samples)) in stream.iter().enumerate() {
        if k == at {
            match how {
                Interruption::None => {}
                Interruption::StopStart => {
                    rule.save(&durable);
                    drop(rule);
                    rule = Rule::start(crate_name, params.clone(), window_ms, &durable);
                }
                Interruption::Crash { .. } => {
                    drop(rule);
                    rule = Rule::start(crate_name, params.clone(), window_ms, &durable);
                    rule.backfill(stream, *t);
                }
                Interruption::HotReload => rule.reload(),
            }
        }
        if let Interruption::Crash { behind } = how
            && k + behind == at
        {
            rule.save(&durable);
        }
        seen.push(rule.step(*t, samples));
    }
    seen
}

/// Runs `stream` straight through and with each interruption in the
/// middle, and asserts the verdicts are identical.
fn assert_restart_proof(
    crate_name: &'static str,
    params: serde_json::Value,
    window_ms: i64,
    stream: &[(i64, Vec<Sample>)],
    judged: impl Fn(&[Vec<Seen>]) -> bool,
) {
    let at = stream.len() / 2;
    let reference = run(
        crate_name,
        params.clone(),
        window_ms,
        stream,
        at,
        Interruption::None,
    );
    assert!(
        judged(&reference),
        "{crate_name}: the stream should exercise the check"
    );
    for how in [
        Interruption::StopStart,
        Interruption::Crash { behind: 5 },
        Interruption::HotReload,
    ] {
        let got = run(crate_name, params.clone(), window_ms, stream, at, how);
        for (k, (a, b)) in reference.iter().zip(&got).enumerate() {
            assert_eq!(
                a, b,
                "{crate_name}, {how:?} at step {at}: verdicts differ at step {k}"
            );
        }
        assert_eq!(reference.len(), got.len());
    }
}

fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
    Sample {
        labels: Labels::from_pairs(pairs.iter().copied()),
        value,
    }
}

/// Deterministic noise in [-0.5, 0.5).
fn noise(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 10_000) as f64 / 10_000.0 - 0.5
}

fn fires(runs: &[Vec<Seen>]) -> bool {
    let statuses = || runs.iter().flatten().map(|s| s.0);
    statuses().any(|s| s == Status::Firing) && statuses().any(|s| s == Status::Ok)
}

#[test]
fn ewma_verdicts_survive_restarts_crashes_and_reloads() {
    const STEP: i64 = 15_000;
    let mut seed = 0x9E37_79B9_7F4A_7C15;
    let stream: Vec<(i64, Vec<Sample>)> = (0..400)
        .map(|k| {
            let t = 1_700_000_000_000 + k * STEP;
            let spike = if k % 97 == 50 { 30.0 } else { 0.0 };
            let samples = ["a", "b"]
                .iter()
                .map(|m| sample(&[("model", m)], 100.0 + 5.0 * noise(&mut seed) + spike))
                .collect();
            (t, samples)
        })
        .collect();
    assert_restart_proof(
        "check-ewma",
        serde_json::json!({ "alpha": 0.2, "k": 3.0 }),
        20 * STEP,
        &stream,
        fires,
    );
}

#[test]
fn anomaly_verdicts_survive_restarts_crashes_and_reloads() {
    const STEP: i64 = 5 * 60_000;
    let mut seed = 0x2545_F491_4F6C_DD1D;
    // Four days of a daily cycle at 5-minute steps, a level shift on the
    // third day, and a few spikes.
    let stream: Vec<(i64, Vec<Sample>)> = (0..4 * 288)
        .map(|k| {
            let t = 1_700_000_000_000 + k * STEP;
            let day = (k % 288) as f64 / 288.0 * std::f64::consts::TAU;
            let level = if k > 2 * 288 + 100 { 30.0 } else { 0.0 };
            let spike = if k % 301 == 200 { 80.0 } else { 0.0 };
            let v = 50.0 + 20.0 * day.sin() + level + spike + 2.0 * noise(&mut seed);
            (t, vec![sample(&[("model", "llm")], v)])
        })
        .collect();
    assert_restart_proof(
        "check-anomaly",
        serde_json::json!({}),
        12 * STEP,
        &stream,
        fires,
    );
}

#[test]
fn drift_verdicts_survive_restarts_crashes_and_reloads() {
    const STEP: i64 = 60_000;
    let les = ["1", "2", "4", "+Inf"];
    let stable = [0.5, 0.3, 0.15, 0.05];
    let shifted = [0.1, 0.2, 0.3, 0.4];
    let mut seed = 0x1234_5678_9ABC_DEF1;
    let mut totals = [0.0; 4];
    // Four hours of a histogram counter, shifting for the last 50 minutes.
    let stream: Vec<(i64, Vec<Sample>)> = (0..240)
        .map(|k| {
            let t = 1_700_000_000_000 + k * STEP;
            let shares = if k < 190 { stable } else { shifted };
            let mut acc = 0.0;
            let samples = (0..4)
                .map(|j| {
                    totals[j] += shares[j] * (10.0 + noise(&mut seed));
                    acc += totals[j];
                    sample(
                        &[
                            ("__name__", "prompt_tokens_bucket"),
                            ("le", les[j]),
                            ("model", "m"),
                        ],
                        acc,
                    )
                })
                .collect();
            (t, samples)
        })
        .collect();
    assert_restart_proof(
        "check-drift",
        serde_json::json!({ "current": "30m", "reference": "1d", "min_count": 50 }),
        10 * STEP,
        &stream,
        |runs| {
            fires(runs)
                && runs
                    .iter()
                    .flatten()
                    .any(|s| s.3.as_deref() == Some("critical"))
        },
    );
}

#[test]
fn the_harness_notices_lost_state() {
    // A start that forgets the saved state must show up as different
    // verdicts, or the tests above would prove nothing.
    const STEP: i64 = 15_000;
    let mut seed = 7;
    let stream: Vec<(i64, Vec<Sample>)> = (0..200)
        .map(|k| {
            let v = 100.0 + 5.0 * noise(&mut seed) + if k == 150 { 30.0 } else { 0.0 };
            (k * STEP, vec![sample(&[("model", "a")], v)])
        })
        .collect();
    let params = serde_json::json!({ "alpha": 0.2, "k": 3.0 });
    let reference = run(
        "check-ewma",
        params.clone(),
        20 * STEP,
        &stream,
        100,
        Interruption::None,
    );
    let dir = TempDir::new("state-lost");
    let durable = Durable::open(dir.path()).expect("durable");
    let mut rule = Rule::start("check-ewma", params.clone(), 20 * STEP, &durable);
    let mut seen = Vec::new();
    for (k, (t, samples)) in stream.iter().enumerate() {
        if k == 100 {
            // Restarted without saving: the state is gone.
            rule = Rule::start("check-ewma", params.clone(), 20 * STEP, &durable);
        }
        seen.push(rule.step(*t, samples));
    }
    assert_ne!(reference, seen);
}
