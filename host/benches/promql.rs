//! The PromQL evaluator in-process, over a store holding the real history:
//! one rule step (an instant query at the newest sample) and a window
//! backfill (the range query `RuleCore::backfill` runs when a rule starts),
//! for the burn-rate and `histogram_quantile` rules of issue 3.
//!
//! Run: `env -u RUST_BACKTRACE cargo bench -p vigil --bench promql`
//! (`VIGIL_BENCH_SERIES`, default `10000,100000`: input series per query;
//! `VIGIL_BENCH_BACKFILL_SERIES`, default `10000`; `VIGIL_BENCH_ROUNDS`,
//! default 7, the median is printed).
//!
//! Data: samples every 15 s, as a real scrape interval, for 95 minutes, so
//! that the burn rate's `[1h]` range holds its 240 samples per series at
//! every step of a 30-minute backfill. The series are those the live
//! benchmark (`tests/benches/promql_rules.rs`) serves: counters
//! `errors_total` and `requests_total{model, instance}` (half of the input
//! series each, ten instances per model, every fourth model over the burn
//! threshold) and `vllm:e2e_request_latency_seconds_bucket{model_name, pod,
//! le}` (22 vLLM buckets, ten pods per model, every fifth model slow).

use std::time::{Duration, Instant};

use vigil::engine::window::Windows;
use vigil::query::Query;
use vigil::store::SeriesStore;
use vigil::store::labels::Labels;

const STEP_MS: i64 = 15_000;
/// History held: a 30 m backfill of a query with a 1 h range, plus margin.
const HISTORY_MS: i64 = 95 * 60 * 1000;
const BACKFILL_WINDOW_MS: i64 = 30 * 60 * 1000;

/// The bucket bounds vLLM exposes for `e2e_request_latency_seconds`.
const LE: [&str; 22] = [
    "0.3", "0.5", "0.8", "1.0", "1.5", "2.0", "2.5", "5.0", "10.0", "15.0", "20.0", "30.0", "40.0",
    "50.0", "60.0", "120.0", "240.0", "480.0", "960.0", "1920.0", "7680.0", "+Inf",
];

const BURN_RATE: &str = "sum by (model) (rate(errors_total[1h])) / sum by (model) (rate(requests_total[1h])) > 14.4 * 0.001 and sum by (model) (rate(errors_total[5m])) / sum by (model) (rate(requests_total[5m])) > 14.4 * 0.001";
const HISTOGRAM: &str = "histogram_quantile(0.99, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[5m]))) > 120";

fn env_sizes(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One series and how its value grows per second.
struct Gen {
    labels: Labels,
    per_second: f64,
}

/// The burn-rate rule's input: `n / 2` series of each counter.
fn burn_series(n: usize) -> Vec<Gen> {
    let mut out = Vec::with_capacity(n);
    for k in 0..n / 2 {
        let (model, instance) = (format!("m{}", k / 10), format!("i{}", k % 10));
        let requests = 10.0 + (k % 7) as f64;
        let ratio = if (k / 10) % 4 == 0 { 0.02 } else { 0.0005 };
        for (name, rate) in [
            ("requests_total", requests),
            ("errors_total", requests * ratio),
        ] {
            out.push(Gen {
                labels: Labels::from_pairs([
                    ("__name__", name),
                    ("model", &model),
                    ("instance", &instance),
                ]),
                per_second: rate,
            });
        }
    }
    out
}

/// The histogram rule's input: `n` bucket series, 22 per (model, pod).
fn histogram_series(n: usize) -> Vec<Gen> {
    let mut out = Vec::with_capacity(n);
    for p in 0..n / LE.len() {
        let (model, pod) = (format!("m{}", p / 10), format!("p{}", p % 10));
        let per_second = 5.0 + (p % 3) as f64;
        // Cumulative share of requests faster than `le`: le / (le + scale).
        let scale = if (p / 10) % 5 == 0 { 200.0 } else { 0.5 };
        for le in LE {
            let share = match le.parse::<f64>() {
                Ok(b) if b.is_finite() => b / (b + scale),
                _ => 1.0,
            };
            out.push(Gen {
                labels: Labels::from_pairs([
                    ("__name__", "vllm:e2e_request_latency_seconds_bucket"),
                    ("model_name", &model),
                    ("pod", &pod),
                    ("le", le),
                ]),
                per_second: per_second * share,
            });
        }
    }
    out
}

/// A store holding `HISTORY_MS` of samples of `series`, every 15 s; returns
/// it and the newest sample's time.
fn fill(series: &[Gen]) -> (SeriesStore, i64) {
    let store = SeriesStore::new(HISTORY_MS * 2);
    let ids: Vec<_> = series
        .iter()
        .map(|g| store.intern(g.labels.clone()))
        .collect();
    let mut batch = Vec::with_capacity(series.len());
    let mut t = 0;
    while t <= HISTORY_MS {
        batch.clear();
        let secs = t as f64 / 1000.0;
        batch.extend(
            ids.iter()
                .zip(series)
                .map(|(&id, g)| (id, t, g.per_second * secs)),
        );
        store.append(&batch);
        t += STEP_MS;
    }
    (store, t - STEP_MS)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn spread(v: &[Duration]) -> (Duration, Duration) {
    (
        v.iter().copied().min().unwrap_or_default(),
        v.iter().copied().max().unwrap_or_default(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One rule step as the engine runs it for a rule without `check`: the
/// instant query, then the step's points into the rule's windows.
fn step(q: &Query, store: &SeriesStore, now: i64, rounds: usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut out = 0;
    for _ in 0..rounds {
        let mut windows = Windows::new(STEP_MS);
        let t = Instant::now();
        let samples = q.instant(store, now).expect("instant query");
        let present = windows.observe(now, &samples);
        windows.expire(now);
        times.push(t.elapsed());
        out = present.len();
    }
    (times, out)
}

/// A window backfill as `RuleCore::backfill` runs it: one range query over
/// the past steps, each point seeded into its window.
fn backfill(q: &Query, store: &SeriesStore, now: i64, rounds: usize) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..rounds {
        let mut windows = Windows::new(BACKFILL_WINDOW_MS);
        let t = Instant::now();
        let start = now - BACKFILL_WINDOW_MS + STEP_MS;
        let series = q
            .range(store, start, now - STEP_MS, STEP_MS)
            .expect("range query");
        for (labels, pts) in &series {
            for &(t, v) in pts {
                windows.seed(labels, t, v);
            }
        }
        times.push(t.elapsed());
        points = windows.points();
    }
    (times, points)
}

fn main() {
    let sizes = env_sizes("VIGIL_BENCH_SERIES", "10000,100000");
    let backfill_sizes = env_sizes("VIGIL_BENCH_BACKFILL_SERIES", "10000");
    let rounds = env_usize("VIGIL_BENCH_ROUNDS", 7);
    let mut all: Vec<usize> = sizes.iter().chain(&backfill_sizes).copied().collect();
    all.sort();
    all.dedup();
    println!(
        "PromQL in-process, samples every 15 s over {} min; median of {rounds} (min..max)",
        HISTORY_MS / 60_000
    );
    let queries = [
        (
            "burn rate 1h/5m",
            BURN_RATE,
            burn_series as fn(usize) -> Vec<Gen>,
        ),
        ("histogram_quantile 5m", HISTOGRAM, histogram_series),
    ];
    for n in all {
        for (name, text, make) in &queries {
            let series = make(n);
            let t = Instant::now();
            let (store, now) = fill(&series);
            let filled = t.elapsed();
            let q = Query::parse(text).expect("query");
            if sizes.contains(&n) {
                let (times, out) = step(&q, &store, now, rounds);
                let (lo, hi) = spread(&times);
                println!(
                    "{name:<22} {:>7} input series: rule step {:>8.2} ms ({:.2}..{:.2}), {out} output series  [store: {} samples, filled in {:.1} s]",
                    series.len(),
                    ms(median(times.clone())),
                    ms(lo),
                    ms(hi),
                    store.sample_count(),
                    filled.as_secs_f64()
                );
            }
            if backfill_sizes.contains(&n) {
                let (times, points) = backfill(&q, &store, now, rounds);
                let (lo, hi) = spread(&times);
                println!(
                    "{name:<22} {:>7} input series: backfill 30 m at 15 s {:>8.1} ms ({:.1}..{:.1}), {points} window points",
                    series.len(),
                    ms(median(times.clone())),
                    ms(lo),
                    ms(hi)
                );
            }
        }
    }
}
