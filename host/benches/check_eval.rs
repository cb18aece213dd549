//! Every bundled check over one rule's windows: the Wasm plugin against the
//! same crate compiled natively, in one run.
//!
//! Run: `cargo xtask build-plugins && env -u RUST_BACKTRACE cargo bench -p vigil --bench check_eval`
//!
//! Size and selection, by environment variable:
//! - `VIGIL_BENCH_SERIES` (default 10000) series per rule, `VIGIL_BENCH_POINTS`
//!   (default 120) points per window, `VIGIL_BENCH_ROUNDS` (default 7) rounds
//!   per figure (the median is printed);
//! - `VIGIL_BENCH_CHECKS`: a comma-separated list of the case names below
//!   (default: all of them); the DESIGN.md bar is
//!   `VIGIL_BENCH_SERIES=100000 VIGIL_BENCH_CHECKS=threshold,ewma`;
//! - `VIGIL_BENCH_MODES`: `call`, `step` or `call,step` (default), e.g. to
//!   profile the calls alone;
//! - `VIGIL_BENCH_NO_LABELS=1` adds calls and a rule step that send no
//!   labels, to show what sending them costs;
//! - `VIGIL_BENCH_WASM_DIR`: load the `.wasm` files from this directory
//!   (e.g. another build of the plugins) instead of `target/plugins`.
//!
//! Three measurements per check:
//! - **call, cold**: the plugin call alone on windows full of `points` steps,
//!   with no state, so a stateful check learns from every point;
//! - **call, steady**: the same after the windows slid one step, with the
//!   state (per series and the rule's) the previous call returned, as in a
//!   running rule;
//! - **rule step**: what the engine does at each step (`engine::rule`):
//!   append the step's point to every window, expire, list the vanished
//!   series, assemble the columnar batch and its label columns, call the
//!   check, keep the new state.
//!
//! Both sides of the call run the same crate through the SDK's `evaluate`
//! entry point (the one the Wasm export calls). Natively the call is that
//! function on a ready-made batch; through Wasm it adds the copy of the batch,
//! labels and state into the instance and the lifting of the verdicts and the
//! new state out of it: the cost of the sandbox. In the rule step the native
//! side takes the engine's buffers and labels and gives back the engine's
//! verdicts and state, like the sandbox does, so the two sides differ only by
//! the sandbox.
//!
//! The cases (name: parameters, the rule's step, the data), chosen as
//! realistic rules of each kind. Series carry three labels: `__name__`, an
//! `instance` of their own and one of 500 `model`s (histograms: `__name__`,
//! `le`, `model_name`). Timestamps start at 2026-11-22T00:00:00Z.
//! - `threshold`: `{"above": 90}`, 15 s; a gauge (level 0 to 96 by series,
//!   uniform noise in [0, 1), a spike of +20 at one point in 2000), so about
//!   7% of series fire, each verdict with a message;
//! - `threshold-sev`: severities with hysteresis, `above = { warning = 0.02,
//!   critical = 0.05 }`, `clear_above = { warning = 0.015, critical = 0.04 }`,
//!   15 s; an error ratio (0 to 0.055, skewed low, plus noise), so about 17%
//!   of series fire (2% critical) and keep a latch in state;
//! - `ewma`: `{"alpha": 0.3, "k": 3}`, 15 s; the gauge above;
//! - `anomaly`: `{}` (the shipped defaults), 15 s; the gauge above;
//! - `trend`: `{"above": 0.9, "horizon": "4h"}` (least squares, like
//!   `predict_linear`), 15 s; disk usage (0.4 to 0.7, growing by 0 to 5% an
//!   hour, plus noise);
//! - `trend-holt`: the same with `"method": "holt"` (incremental, in state);
//! - `burn_rate`: objective 0.999 with the SRE workbook's two paging pairs
//!   (1h/5m at 14.4x, 6h/30m at 6x), 3 m (so 120 points cover 6 h); an error
//!   ratio at 0.3 to 0.7x the budget, with one series in 50 burning at 20x
//!   for the last hour (they fire);
//! - `absent`: `{"stale_after": "5m"}`, 15 s; the gauge above, with one
//!   series in 100 gone for the last 30 steps (7.5 min: they fire);
//! - `drift`: `{}` (the shipped defaults: counters, current 1h, reference 1d,
//!   warning at PSI 0.1 or JS 0.1, critical at PSI 0.25), 1 m (so 120 points
//!   cover 2 h and the reference has learned for longer than `current`);
//!   `vllm:request_prompt_tokens_bucket` histograms of 12 buckets (`le` 16 to
//!   16384 and +Inf; 10000 series are 833 histograms, 9996 series),
//!   cumulative counters of 30 to 79 observations a minute, one histogram in
//!   10 shifting 4 buckets up for the last 30 minutes (warning, PSI about
//!   0.13) and one in 50 shifting 6 (critical).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil::engine::window::Windows;
use vigil::query::Sample;
use vigil::sandbox::{
    Band, Batch, CheckInput, CheckInstance, CheckOutput, LabelCache, LabelColumns, Limits, Sandbox,
    SeriesState, Status, Verdict,
};
use vigil::store::labels::Labels;
use vigil_plugin_sdk as sdk;

/// 2026-11-22T00:00:00Z: the first step of every window.
const T0_MS: i64 = 1_795_305_600_000;
const MINUTE_MS: i64 = 60_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic number in [0, 1) for series `s` at step `k` (splitmix64).
fn noise(s: usize, k: i64, salt: u64) -> f64 {
    let mut x = ((s as u64) << 32) ^ (k as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// What a case's series hold.
#[derive(Clone, Copy, Debug)]
enum Data {
    /// Level 0 to 96 by series, noise in [0, 1), a rare spike of +20.
    Gauge,
    /// The gauge, with one series in 100 gone for the last 30 steps.
    Vanishing,
    /// An error ratio in [0, 0.055], skewed towards 0, plus noise.
    ErrorRatio,
    /// Disk usage in [0.4, 0.7], growing by 0 to 2e-4 a step, plus noise.
    DiskUsage,
    /// An SLO error ratio under budget, one series in 50 burning for the
    /// last hour.
    SloErrorRatio,
    /// Histograms of 12 cumulative `le` buckets; one in 10 drifts late.
    Histogram,
}

/// Upper bounds of the histogram buckets (prompt tokens).
const LES: [&str; 12] = [
    "16", "32", "64", "128", "256", "512", "1024", "2048", "4096", "8192", "16384", "+Inf",
];

/// The share of a histogram's observations at or below bucket `j` when
/// they centre on bucket `c` (a discretised bell, spread over about 3 buckets).
fn cdf(c: f64, j: usize) -> f64 {
    let w = |i: usize| (-((i as f64 - c).powi(2)) / 4.0).exp();
    let total: f64 = (0..LES.len()).map(w).sum();
    (0..=j).map(w).sum::<f64>() / total
}

/// One case's query results, step by step.
struct Source {
    data: Data,
    points: usize,
    /// Every series' sample (labels fixed), the vanishing ones last.
    samples: Vec<Sample>,
    /// The series index of each sample.
    index: Vec<usize>,
    /// The samples from this one on vanish at `vanish_at`.
    live: usize,
    /// Per histogram: (observations a step, (CDF before, CDF after the shift)).
    hists: Vec<(f64, Vec<(f64, f64)>)>,
}

impl Source {
    fn new(data: Data, series: usize, points: usize) -> Self {
        let series = match data {
            Data::Histogram => series / LES.len() * LES.len(),
            _ => series,
        };
        let vanishes = |s: usize| matches!(data, Data::Vanishing) && s % 100 == 7;
        let mut index: Vec<usize> = (0..series).collect();
        index.sort_by_key(|&s| vanishes(s));
        let live = index.iter().filter(|&&s| !vanishes(s)).count();
        let samples = index
            .iter()
            .map(|&s| Sample {
                labels: match data {
                    Data::Histogram => {
                        let h = format!("m{}", s / LES.len());
                        Labels::from_pairs([
                            ("__name__", "vllm:request_prompt_tokens_bucket"),
                            ("le", LES[s % LES.len()]),
                            ("model_name", h.as_str()),
                        ])
                    }
                    _ => Labels::from_pairs([
                        ("__name__", "model_metric"),
                        ("instance", &format!("10.0.{}.{}:8000", s / 250, s % 250)),
                        ("model", &format!("m{}", s % 500)),
                    ]),
                },
                value: 0.0,
            })
            .collect();
        let hists = match data {
            Data::Histogram => (0..series / LES.len())
                .map(|h| {
                    let c = 3.0 + (h % 5) as f64;
                    let shift = match h {
                        _ if h.is_multiple_of(50) => 6.0,
                        _ if h.is_multiple_of(10) => 4.0,
                        _ => 0.0,
                    };
                    let rate = 30.0 + (h % 50) as f64;
                    let cdfs = (0..LES.len())
                        .map(|j| (cdf(c, j), cdf(c + shift, j)))
                        .collect();
                    (rate, cdfs)
                })
                .collect(),
            _ => Vec::new(),
        };
        Source {
            data,
            points,
            samples,
            index,
            live,
            hists,
        }
    }

    /// The value of series `s` at step `k`.
    fn value(&self, s: usize, k: i64) -> f64 {
        let level = (s % 97) as f64 / 96.0;
        let n = noise(s, k, 1);
        match self.data {
            Data::Gauge | Data::Vanishing => {
                let spike = if noise(s, k, 2) < 0.0005 { 20.0 } else { 0.0 };
                (s % 97) as f64 + n + spike
            }
            Data::ErrorRatio => 0.055 * level.powi(6) + 0.002 * n,
            Data::DiskUsage => {
                let slope = 2e-4 * (s % 13) as f64 / 12.0;
                0.4 + 0.3 * level + slope * k as f64 + 0.002 * n
            }
            Data::SloErrorRatio => {
                let burning = s.is_multiple_of(50) && k >= self.points as i64 - 20;
                match burning {
                    true => 0.02 * (0.9 + 0.2 * n),
                    false => 0.001 * (0.3 + 0.4 * n),
                }
            }
            Data::Histogram => {
                // Cumulative: every step before `k` (the shift starts 30
                // steps before the end of the first full window).
                let (rate, cdfs) = &self.hists[s / LES.len()];
                let (before, after) = cdfs[s % LES.len()];
                let shift_at = self.points as i64 - 30;
                let steps = (k + 1) as f64;
                let shifted = (k + 1 - shift_at).max(0) as f64;
                (rate * ((steps - shifted) * before + shifted * after)).floor()
            }
        }
    }

    /// The samples the query returns at step `k`.
    fn step(&mut self, k: i64) -> &[Sample] {
        for i in 0..self.samples.len() {
            let v = self.value(self.index[i], k);
            self.samples[i].value = v;
        }
        let vanish_at = self.points as i64 - 30;
        match k >= vanish_at {
            true => &self.samples[..self.live],
            false => &self.samples,
        }
    }
}

/// The engine's side of one rule: its windows, label cache and buffers, as
/// in `engine::rule`.
struct Rule {
    windows: Windows,
    labels: LabelCache,
    with_labels: bool,
    step_ms: i64,
    batch: Batch,
    state: SeriesState,
    rule_state: Vec<u8>,
    order: Vec<usize>,
}

impl Rule {
    /// Windows filled with the first `points` steps of `source`.
    fn new(source: &mut Source, step_ms: i64, with_labels: bool) -> Self {
        let mut windows = Windows::new(source.points as i64 * step_ms);
        for k in 0..source.points as i64 {
            windows.observe(T0_MS + k * step_ms, source.step(k));
        }
        Rule {
            windows,
            labels: LabelCache::default(),
            with_labels,
            step_ms,
            batch: Batch::default(),
            state: SeriesState::default(),
            rule_state: Vec::new(),
            order: Vec::new(),
        }
    }

    fn now(&self, k: i64) -> i64 {
        T0_MS + k * self.step_ms
    }

    /// The input of the check at step `k`, after appending `samples`.
    fn prepare(&mut self, k: i64, samples: &[Sample]) -> CheckInput {
        let now = self.now(k);
        let present = self.windows.observe(now, samples);
        self.windows.expire(now);
        self.assemble(present)
    }

    /// The batch of the series `present` (then the vanished ones), their
    /// labels and their state.
    fn assemble(&mut self, present: Vec<usize>) -> CheckInput {
        let matched = present.len();
        let mut order = present;
        order.extend(self.windows.vanished(&order));
        self.windows.fill(&order, &mut self.batch, &mut self.state);
        let (windows, with) = (&self.windows, self.with_labels);
        self.labels.update(&self.batch.series, |k| {
            windows
                .labels(order[k])
                .filter(|_| with)
                .into_iter()
                .flat_map(|l| l.iter())
        });
        self.order = order;
        CheckInput {
            batch: std::mem::take(&mut self.batch),
            matched,
            state: std::mem::take(&mut self.state),
            rule_state: std::mem::take(&mut self.rule_state),
        }
    }

    /// Keeps the buffers and the new state, as the engine does after a
    /// successful call.
    fn finish(&mut self, input: CheckInput, out: &CheckOutput) {
        self.batch = input.batch;
        self.state = input.state;
        self.windows.store_state(&self.order, &out.state);
        self.rule_state.clone_from(&out.rule_state);
    }
}

/// The windows of the first `points` steps, present and vanished series in
/// the engine's order, and no state: the input of a cold call.
fn cold_input(source: &mut Source, step_ms: i64, with_labels: bool) -> (Rule, CheckInput) {
    let mut rule = Rule::new(source, step_ms, with_labels);
    // The last step again: it adds no point (not newer than the windows'
    // last) but says which series are present.
    let k = source.points as i64 - 1;
    let present = rule.windows.observe(rule.now(k), source.step(k));
    let input = rule.assemble(present);
    (rule, input)
}

/// The same check compiled natively, configured once.
type Native = Box<dyn FnMut(i64, &sdk::Batch, &sdk::State) -> sdk::Output>;

fn native<C: sdk::Check + 'static>(params: &str) -> Native
where
    C::Params: 'static,
{
    let p = sdk::configure::<C>(params).expect("native params");
    Box::new(move |now, b, st| sdk::evaluate::<C>(&p, now, b, st).expect("native evaluate"))
}

/// The engine's input as the SDK's batch and state (with the rule's slot
/// last, as the sandbox sends it), moving the buffers.
fn to_sdk(input: CheckInput, labels: &LabelColumns) -> (sdk::Batch, sdk::State, usize) {
    let CheckInput {
        batch,
        matched,
        mut state,
        rule_state,
    } = input;
    let n = batch.series.len();
    if state.offsets.len() != n + 1 {
        state = SeriesState::empty(n);
    }
    let series_bytes = state.data.len();
    state.data.extend_from_slice(&rule_state);
    state.offsets.push(state.data.len() as u32);
    let b = sdk::Batch {
        series: batch.series,
        offsets: batch.offsets,
        timestamps: batch.timestamps,
        values: batch.values,
        labels: sdk::LabelColumns {
            text: labels.text.clone(),
            strings: labels.strings.clone(),
            offsets: labels.offsets.clone(),
            names: labels.names.clone(),
            values: labels.values.clone(),
        },
        matched: matched as u32,
    };
    let s = sdk::State {
        offsets: state.offsets,
        data: state.data,
    };
    (b, s, series_bytes)
}

/// The SDK's batch and state back into the engine's buffers.
fn from_sdk(b: sdk::Batch, s: sdk::State, series_bytes: usize, matched: usize) -> CheckInput {
    let mut state = SeriesState {
        offsets: s.offsets,
        data: s.data,
    };
    let rule_state = state.data.split_off(series_bytes);
    state.offsets.pop();
    CheckInput {
        batch: Batch {
            series: b.series,
            offsets: b.offsets,
            timestamps: b.timestamps,
            values: b.values,
        },
        matched,
        state,
        rule_state,
    }
}

fn status(s: sdk::Status) -> Status {
    match s {
        sdk::Status::Ok => Status::Ok,
        sdk::Status::Firing => Status::Firing,
        sdk::Status::NoData => Status::NoData,
    }
}

fn verdict(v: sdk::Verdict) -> Verdict {
    Verdict {
        status: status(v.status),
        score: v.score,
        message: v.message,
        band: v.band.map(|b| Band {
            lower: b.lower,
            upper: b.upper,
        }),
        severity: v.severity,
        labels: v.labels,
    }
}

/// The native output as the sandbox returns it: verdicts in the engine's
/// type, the state split into the series' and the rule's.
fn output(o: sdk::Output) -> CheckOutput {
    let n = o.verdicts.len();
    let mut state = SeriesState {
        offsets: o.state.offsets,
        data: o.state.data,
    };
    let end = state.offsets.get(n).copied().unwrap_or(0) as usize;
    let rule_state = state.data.split_off(end.min(state.data.len()));
    state.offsets.truncate(n + 1);
    CheckOutput {
        verdicts: o.verdicts.into_iter().map(verdict).collect(),
        state,
        rule_verdict: o.rule_verdict.map(verdict),
        rule_state,
    }
}

/// The native check behind the sandbox's interface, for the rule step.
fn call_native(
    f: &mut Native,
    now: i64,
    input: CheckInput,
    labels: &LabelCache,
) -> (CheckInput, CheckOutput) {
    let matched = input.matched;
    let (b, s, series_bytes) = to_sdk(input, labels.columns());
    let out = output(f(now, &b, &s));
    (from_sdk(b, s, series_bytes, matched), out)
}

fn firing(v: &[Verdict]) -> usize {
    v.iter().filter(|v| v.status == Status::Firing).count()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn wasm_path(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("VIGIL_BENCH_WASM_DIR") {
        return PathBuf::from(dir).join(name);
    }
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
    /// The rule's evaluation step.
    step_ms: i64,
    data: Data,
    native: fn(&str) -> Native,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "threshold",
            file: "check_threshold.wasm",
            params: r#"{"above": 90.0}"#,
            step_ms: 15_000,
            data: Data::Gauge,
            native: native::<check_threshold::Plugin>,
        },
        Case {
            name: "threshold-sev",
            file: "check_threshold.wasm",
            params: r#"{"above": {"warning": 0.02, "critical": 0.05},
                        "clear_above": {"warning": 0.015, "critical": 0.04}}"#,
            step_ms: 15_000,
            data: Data::ErrorRatio,
            native: native::<check_threshold::Plugin>,
        },
        Case {
            name: "ewma",
            file: "check_ewma.wasm",
            params: r#"{"alpha": 0.3, "k": 3.0}"#,
            step_ms: 15_000,
            data: Data::Gauge,
            native: native::<check_ewma::Plugin>,
        },
        Case {
            name: "anomaly",
            file: "check_anomaly.wasm",
            params: "{}",
            step_ms: 15_000,
            data: Data::Gauge,
            native: native::<check_anomaly::Plugin>,
        },
        Case {
            name: "trend",
            file: "check_trend.wasm",
            params: r#"{"above": 0.9, "horizon": "4h"}"#,
            step_ms: 15_000,
            data: Data::DiskUsage,
            native: native::<check_trend::Plugin>,
        },
        Case {
            name: "trend-holt",
            file: "check_trend.wasm",
            params: r#"{"above": 0.9, "horizon": "4h", "method": "holt"}"#,
            step_ms: 15_000,
            data: Data::DiskUsage,
            native: native::<check_trend::Plugin>,
        },
        Case {
            name: "burn_rate",
            file: "check_burn_rate.wasm",
            params: r#"{"objective": 0.999, "windows": [
                {"long": "1h", "short": "5m", "factor": 14.4},
                {"long": "6h", "short": "30m", "factor": 6.0}]}"#,
            step_ms: 3 * MINUTE_MS,
            data: Data::SloErrorRatio,
            native: native::<check_burn_rate::Plugin>,
        },
        Case {
            name: "absent",
            file: "check_absent.wasm",
            params: r#"{"stale_after": "5m"}"#,
            step_ms: 15_000,
            data: Data::Vanishing,
            native: native::<check_absent::Plugin>,
        },
        Case {
            name: "drift",
            file: "check_drift.wasm",
            params: "{}",
            step_ms: MINUTE_MS,
            data: Data::Histogram,
            native: native::<check_drift::Plugin>,
        },
    ]
}

fn report(check: &str, mode: &str, wasm: Duration, native: Duration, fired: &str) {
    println!(
        "{:<14} {:<36} {:>9.2} {:>9.2} {:>7.2}x  {}",
        check,
        mode,
        wasm.as_secs_f64() * 1e3,
        native.as_secs_f64() * 1e3,
        wasm.as_secs_f64() / native.as_secs_f64(),
        fired
    );
}

/// "firing/series", with the native count when the two disagree.
fn fired(wasm: &CheckOutput, native: &[Status]) -> String {
    let statuses: Vec<Status> = wasm.verdicts.iter().map(|v| v.status).collect();
    let n = native.iter().filter(|&&s| s == Status::Firing).count();
    let no_data = wasm
        .verdicts
        .iter()
        .filter(|v| v.status == Status::NoData)
        .count();
    let mut text = format!("{}/{}", firing(&wasm.verdicts), wasm.verdicts.len());
    if no_data > 0 {
        text.push_str(&format!(" no-data:{no_data}"));
    }
    if let Some(v) = &wasm.rule_verdict {
        text.push_str(&format!(" rule:{:?}", v.status));
    }
    if statuses != native {
        let differ = statuses.iter().zip(native).filter(|(a, b)| a != b).count();
        text.push_str(&format!(" (native {n}, {differ} statuses differ)"));
    }
    text
}

/// The plugin call alone: cold, then steady (one step later, with the state
/// the cold call returned).
fn calls(
    case: &Case,
    inst: &mut CheckInstance,
    series: usize,
    points: usize,
    rounds: usize,
    with_labels: bool,
) {
    let mut native = (case.native)(case.params);
    let mut source = Source::new(case.data, series, points);
    let (mut rule, mut cold) = cold_input(&mut source, case.step_ms, with_labels);
    let k_cold = points as i64 - 1;
    let mut labels = std::mem::take(&mut rule.labels);

    let run = |inst: &mut CheckInstance,
               native: &mut Native,
               labels: &mut LabelCache,
               now: i64,
               input: &mut CheckInput| {
        let (mut wasm_t, mut native_t) = (Vec::new(), Vec::new());
        let (mut wasm_out, mut native_out) = (None, None);
        let (b, s, _) = to_sdk(input.clone(), labels.columns());
        for _ in 0..rounds {
            // The call hands the buffers back as they were sent.
            let t = Instant::now();
            let (back, out) = inst.evaluate_rule(now, std::mem::take(input), labels);
            wasm_t.push(t.elapsed());
            *input = back;
            wasm_out = Some(out.expect("wasm evaluate"));
            let t = Instant::now();
            let out = native(now, &b, &s);
            native_t.push(t.elapsed());
            native_out = Some(out);
        }
        let (wasm_out, native_out) = (wasm_out.expect("a round"), native_out.expect("a round"));
        let native_statuses: Vec<Status> = native_out
            .verdicts
            .iter()
            .map(|v| status(v.status))
            .collect();
        (
            median(wasm_t),
            median(native_t),
            wasm_out,
            output(native_out),
            native_statuses,
        )
    };

    let now = rule.now(k_cold);
    let (w, n, wasm_out, native_out, statuses) =
        run(inst, &mut native, &mut labels, now, &mut cold);
    let mode = |m: &str| match with_labels {
        true => m.to_string(),
        false => format!("{m}, no labels"),
    };
    report(
        case.name,
        &mode("call, cold"),
        w,
        n,
        &fired(&wasm_out, &statuses),
    );

    // One step later, with the state back: the Wasm call's, which the
    // native call's should equal.
    if wasm_out.state != native_out.state || wasm_out.rule_state != native_out.rule_state {
        println!("{:<14} note: the Wasm and native states differ", case.name);
    }
    rule.labels = labels;
    rule.finish(cold, &wasm_out);
    let k = points as i64;
    let samples = source.step(k).to_vec();
    let mut steady = rule.prepare(k, &samples);
    let mut labels = std::mem::take(&mut rule.labels);
    let now = rule.now(k);
    let (w, n, wasm_out, _, statuses) = run(inst, &mut native, &mut labels, now, &mut steady);
    report(
        case.name,
        &mode("call, steady (+1 step)"),
        w,
        n,
        &fired(&wasm_out, &statuses),
    );
}

/// Whole rule steps, Wasm and native interleaved, each over its own windows.
fn rule_steps(
    case: &Case,
    inst: &mut CheckInstance,
    series: usize,
    points: usize,
    rounds: usize,
    with_labels: bool,
) {
    let mut native = (case.native)(case.params);
    let mut source = Source::new(case.data, series, points);
    let mut wasm_rule = Rule::new(&mut source, case.step_ms, with_labels);
    let mut native_rule = Rule::new(&mut source, case.step_ms, with_labels);
    let (mut wasm_t, mut native_t) = (Vec::new(), Vec::new());
    let mut last = None;
    // The first round is the cold call of a new rule (every point is
    // learned from); the others are the steady state.
    for round in 0..=rounds {
        let k = (points + round) as i64;
        let samples = source.step(k).to_vec();
        let now = wasm_rule.now(k);

        let t = Instant::now();
        let input = wasm_rule.prepare(k, &samples);
        let (input, out) = inst.evaluate_rule(now, input, &mut wasm_rule.labels);
        let out = out.expect("wasm evaluate");
        wasm_rule.finish(input, &out);
        let wasm_elapsed = t.elapsed();

        let t = Instant::now();
        let input = native_rule.prepare(k, &samples);
        let (input, nout) = call_native(&mut native, now, input, &native_rule.labels);
        native_rule.finish(input, &nout);
        let native_elapsed = t.elapsed();

        if round > 0 {
            wasm_t.push(wasm_elapsed);
            native_t.push(native_elapsed);
        }
        last = Some((out, nout));
    }
    let (out, nout) = last.expect("a round");
    let statuses: Vec<Status> = nout.verdicts.iter().map(|v| v.status).collect();
    report(
        case.name,
        match with_labels {
            true => "rule step",
            false => "rule step, no labels",
        },
        median(wasm_t),
        median(native_t),
        &fired(&out, &statuses),
    );
}

fn main() {
    let series = env_usize("VIGIL_BENCH_SERIES", 10_000);
    let points = env_usize("VIGIL_BENCH_POINTS", 120).max(31);
    let rounds = env_usize("VIGIL_BENCH_ROUNDS", 7).max(1);
    let only: Option<Vec<String>> = std::env::var("VIGIL_BENCH_CHECKS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let modes: Vec<String> = std::env::var("VIGIL_BENCH_MODES")
        .unwrap_or_else(|_| "call,step".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let no_labels = std::env::var("VIGIL_BENCH_NO_LABELS").is_ok_and(|v| v == "1");
    println!(
        "check evaluation: {series} series x {points} points per rule step, median of {rounds}"
    );
    let sandbox = Sandbox::new(
        None,
        Limits {
            timeout: Duration::from_secs(30),
            memory_bytes: 2 * 1024 * 1024 * 1024,
        },
    )
    .expect("sandbox");
    println!(
        "{:<14} {:<36} {:>9} {:>9} {:>8}  firing/series (Wasm)",
        "check", "what", "wasm ms", "native ms", "ratio"
    );
    for case in cases() {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == case.name))
        {
            continue;
        }
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
        if modes.iter().any(|m| m == "call") {
            calls(&case, &mut inst, series, points, rounds, true);
            if no_labels && !matches!(case.data, Data::Histogram) {
                calls(&case, &mut inst, series, points, rounds, false);
            }
        }
        if !modes.iter().any(|m| m == "step") {
            continue;
        }
        rule_steps(&case, &mut inst, series, points, rounds, true);
        if no_labels && !matches!(case.data, Data::Histogram) {
            rule_steps(&case, &mut inst, series, points, rounds, false);
        }
    }
}
