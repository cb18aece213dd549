//! The burn-rate and vLLM latency rules of issue 3 with their real ranges
//! (1h and 5m), over 95 minutes of samples every 15 s: Vigil's evaluator
//! in-process against Prometheus 2.42 holding the same samples, backfilled
//! with `promtool tsdb create-blocks-from openmetrics`.
//!
//! Run: `env -u RUST_BACKTRACE cargo bench -p vigil-tests --bench promql_backfilled`
//! (`VIGIL_BENCH_SERIES`, default `10000`: input series per rule;
//! `VIGIL_BENCH_ROUNDS`, default 7, the median is printed).
//!
//! Two operations per rule, each timed on both sides:
//! - the rule step: the instant query at the newest sample;
//! - the window backfill of a 30 m window at 15 s: the range query
//!   `RuleCore::backfill` runs (Prometheus: `/api/v1/query_range`).
//!
//! Vigil's time is the call of `Query::instant` / `Query::range` on a
//! store holding the samples. Prometheus' is its own `execTotalTime`
//! (`stats=all`: preparing the query, reading the chunks and evaluating;
//! not the HTTP and JSON around it), after one warm-up query. Prometheus
//! reads these samples from persistent blocks rather than from the
//! in-memory head a running server would evaluate recent data from; the
//! live benchmark (`promql_rules`) measures that path, with compressed
//! ranges.

use std::io::Write as _;
use std::time::Instant;

use vigil::query::Query;
use vigil::store::SeriesStore;
use vigil::store::labels::Labels;
use vigil_tests::{BenchSeries, Prometheus, TempDir, burn_rate_series, latency_series, summary};

const STEP_MS: i64 = 15_000;
/// History: a 30 m backfill of a query with a 1 h range, plus margin.
const HISTORY_MS: i64 = 95 * 60 * 1000;
const BACKFILL_WINDOW_MS: i64 = 30 * 60 * 1000;

const BURN_RATE: &str = "sum by (model) (rate(errors_total[1h])) / sum by (model) (rate(requests_total[1h])) > 14.4 * 0.001 and sum by (model) (rate(errors_total[5m])) / sum by (model) (rate(requests_total[5m])) > 14.4 * 0.001";
const HISTOGRAM: &str = "histogram_quantile(0.99, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[5m]))) > 120";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sample times: every 15 s over `HISTORY_MS`, ending 10 minutes ago.
fn times() -> Vec<i64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let end = (now - 10 * 60 * 1000) / STEP_MS * STEP_MS;
    let start = end - HISTORY_MS;
    (0..=HISTORY_MS / STEP_MS)
        .map(|i| start + i * STEP_MS)
        .collect()
}

fn value(s: &BenchSeries, t: i64, start: i64) -> f64 {
    s.per_second * (t - start) as f64 / 1000.0
}

fn fill_store(series: &[BenchSeries], ts: &[i64]) -> SeriesStore {
    let store = SeriesStore::new(2 * HISTORY_MS);
    let ids: Vec<_> = series
        .iter()
        .map(|s| {
            store.intern(Labels::from_pairs(
                std::iter::once(("__name__", s.name))
                    .chain(s.labels.iter().map(|(k, v)| (*k, v.as_str()))),
            ))
        })
        .collect();
    let mut batch = Vec::with_capacity(series.len());
    for &t in ts {
        batch.clear();
        batch.extend(
            ids.iter()
                .zip(series)
                .map(|(&id, s)| (id, t, value(s, t, ts[0]))),
        );
        store.append(&batch);
    }
    store
}

/// Writes the samples as OpenMetrics and turns them into TSDB blocks.
fn backfill_prometheus(series: &[BenchSeries], ts: &[i64], dir: &std::path::Path) {
    let file = dir.join("samples.om");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file).expect("samples file"));
    let texts: Vec<String> = series.iter().map(BenchSeries::text).collect();
    for &t in ts {
        let secs = t / 1000;
        for (s, text) in series.iter().zip(&texts) {
            writeln!(w, "{text} {} {secs}", value(s, t, ts[0])).expect("write samples");
        }
    }
    writeln!(w, "# EOF").expect("write samples");
    w.flush().expect("write samples");
    drop(w);
    let promtool = std::env::var_os("VIGIL_PROMTOOL").unwrap_or_else(|| "/usr/bin/promtool".into());
    let out = std::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.join("prometheus-data"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): `apt-get install prometheus`"));
    assert!(
        out.status.success(),
        "promtool failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&file);
}

/// Prometheus' `execTotalTime` of one query, and the result.
async fn prom_query(
    prom: &Prometheus,
    path: &str,
    params: &[(&str, String)],
) -> (f64, Vec<serde_json::Value>) {
    let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("stats", "all"));
    let v = prom.api(path, &form).await;
    assert_eq!(v["status"], "success", "{v}");
    let t = v["data"]["stats"]["timings"]["execTotalTime"]
        .as_f64()
        .unwrap_or_else(|| panic!("no stats in the answer: {v}"));
    (
        t,
        v["data"]["result"].as_array().cloned().unwrap_or_default(),
    )
}

/// The largest relative difference between Vigil's and Prometheus' values
/// of an instant query, matching series by labels; infinite when the sets
/// of series differ.
fn max_difference(vigil: &[vigil::query::Sample], prom: &[serde_json::Value]) -> f64 {
    let key = |pairs: &mut Vec<(String, String)>| {
        pairs.sort();
        format!("{pairs:?}")
    };
    let theirs: std::collections::HashMap<String, f64> = prom
        .iter()
        .map(|r| {
            let mut pairs: Vec<(String, String)> = r["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let v = r["value"][1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN);
            (key(&mut pairs), v)
        })
        .collect();
    if theirs.len() != vigil.len() {
        return f64::INFINITY;
    }
    vigil
        .iter()
        .map(|s| {
            let mut pairs: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            match theirs.get(&key(&mut pairs)) {
                Some(&p) => (s.value - p).abs() / p.abs().max(f64::MIN_POSITIVE),
                None => f64::INFINITY,
            }
        })
        .fold(0.0, f64::max)
}

fn fmt(v: &mut [f64]) -> String {
    match summary(v) {
        Some((p50, _, min, max)) => {
            format!("{:>8.1} ms ({:.1}..{:.1})", p50 * 1e3, min * 1e3, max * 1e3)
        }
        None => "-".to_string(),
    }
}

fn ratio(a: &mut [f64], b: &mut [f64]) -> String {
    match (summary(a), summary(b)) {
        (Some((x, ..)), Some((y, ..))) => format!("{:.2}x", x / y),
        _ => "-".to_string(),
    }
}

async fn run(n: usize, rounds: usize) {
    let dir = TempDir::new("promql-backfilled");
    let ts = times();
    let end = *ts.last().expect("times");
    let series: Vec<BenchSeries> = burn_rate_series(n)
        .into_iter()
        .chain(latency_series(n))
        .collect();
    let t = Instant::now();
    let store = fill_store(&series, &ts);
    let vigil_fill = t.elapsed();
    let t = Instant::now();
    backfill_prometheus(&series, &ts, dir.path());
    let prom_fill = t.elapsed();
    std::fs::write(dir.path().join("prometheus.yml"), "global: {}\n").expect("config");
    let prom = Prometheus::start(
        &dir.path().join("prometheus.yml"),
        &dir.path().join("prometheus-data"),
        &dir.path().join("prometheus.log"),
        &["--log.level=warn", "--storage.tsdb.retention.time=30d"],
    )
    .await;
    println!(
        "\n{n} input series per rule, {} samples each (store filled in {:.1} s; promtool blocks in {:.1} s)",
        ts.len(),
        vigil_fill.as_secs_f64(),
        prom_fill.as_secs_f64()
    );
    let (start_bf, end_bf) = (end - BACKFILL_WINDOW_MS + STEP_MS, end - STEP_MS);
    let secs = |ms: i64| format!("{}", ms as f64 / 1000.0);
    for (name, text) in [
        ("burn rate 1h/5m", BURN_RATE),
        ("histogram_quantile 5m", HISTOGRAM),
    ] {
        let q = Query::parse(text).expect("query");
        // Rule step: one instant query.
        let (mut v_step, mut p_step) = (Vec::new(), Vec::new());
        let (mut v_out, mut p_out) = (Vec::new(), Vec::new());
        prom_query(
            &prom,
            "/api/v1/query",
            &[("query", text.into()), ("time", secs(end))],
        )
        .await;
        for _ in 0..rounds {
            let t = Instant::now();
            v_out = q.instant(&store, end).expect("instant");
            v_step.push(t.elapsed().as_secs_f64());
            let (pt, po) = prom_query(
                &prom,
                "/api/v1/query",
                &[("query", text.into()), ("time", secs(end))],
            )
            .await;
            p_step.push(pt);
            p_out = po;
        }
        // Backfill: one range query over the window's past steps.
        let range_params = [
            ("query", text.to_string()),
            ("start", secs(start_bf)),
            ("end", secs(end_bf)),
            ("step", "15".to_string()),
        ];
        let (mut v_bf, mut p_bf) = (Vec::new(), Vec::new());
        let (mut v_bf_out, mut p_bf_out) = (0, 0);
        prom_query(&prom, "/api/v1/query_range", &range_params).await;
        for _ in 0..rounds {
            let t = Instant::now();
            v_bf_out = q
                .range(&store, start_bf, end_bf, STEP_MS)
                .expect("range")
                .len();
            v_bf.push(t.elapsed().as_secs_f64());
            let (pt, po) = prom_query(&prom, "/api/v1/query_range", &range_params).await;
            p_bf.push(pt);
            p_bf_out = po.len();
        }
        println!(
            "{name:<22} rule step: vigil {}  prometheus {}  vigil/prometheus {}  (series out: {} / {}, largest relative difference {:.1e})",
            fmt(&mut v_step.clone()),
            fmt(&mut p_step.clone()),
            ratio(&mut v_step, &mut p_step),
            v_out.len(),
            p_out.len(),
            max_difference(&v_out, &p_out)
        );
        println!(
            "{name:<22} backfill 30 m at 15 s: vigil {}  prometheus {}  vigil/prometheus {}  (series out: {v_bf_out} / {p_bf_out})",
            fmt(&mut v_bf.clone()),
            fmt(&mut p_bf.clone()),
            ratio(&mut v_bf, &mut p_bf)
        );
    }
    drop(prom);
    drop(store);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("VIGIL_BENCH_SERIES")
        .unwrap_or_else(|_| "10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    let rounds = env_usize("VIGIL_BENCH_ROUNDS", 7);
    println!(
        "PromQL with real ranges over backfilled samples (every 15 s, 95 min): Vigil in-process vs Prometheus 2.42 execTotalTime; median (min..max) of {rounds}"
    );
    for n in sizes {
        run(n, rounds).await;
    }
}
