//! Rule step time, Vigil against Prometheus 2.42, on the same scraped data
//! in the same run: the multi-window burn rate and the vLLM
//! `histogram_quantile` rule of issue 3, over 10k and 100k input series
//! each.
//!
//! Run: `cargo build --release -p vigil && VIGIL_BIN=$PWD/target/release/vigil env -u RUST_BACKTRACE cargo bench -p vigil-tests --bench promql_rules`
//! (`VIGIL_BENCH_SIZES`, default `10000,100000`; `VIGIL_BENCH_FILL_SECS`,
//! default 260; `VIGIL_BENCH_MEASURE_SECS`, default 60).
//!
//! A loopback target serves both rules' input series; Vigil and Prometheus
//! scrape it every second and evaluate the two rules every second
//! (Prometheus: one rule per group, so they run concurrently as Vigil's do;
//! Vigil: rules without `check`, Prometheus' semantics).
//!
//! Time is compressed 15x so the ranges fill in minutes: the target is
//! scraped every 1 s instead of 15 s, and the ranges are 4m instead of 1h
//! and 20s instead of 5m, in both systems. Each range then holds what the
//! real rule's range holds at a 15 s scrape interval (240 and 20 samples per
//! series), and evaluation cost depends on the samples, not on the
//! timestamps. The bench waits until the long range is full, then records
//! every evaluation for a while:
//! - Vigil: `vigil_rule_evaluation_duration_seconds` per evaluation (the
//!   increase of `_sum` when `vigil_rule_evaluations_total` goes up by one);
//!   this times the query, the windows and the alert state machine;
//! - Prometheus: `prometheus_rule_group_last_duration_seconds` of the
//!   rule's group at each new `_last_evaluation_timestamp_seconds`; this
//!   times the query, the alert state machine, queueing alerts for the
//!   (absent) Alertmanager and writing the `ALERTS` series.
//!
//! It also prints each process's CPU use over the measurement (scraping
//! included) and the number of firing series each found, which must agree.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use vigil_tests::{
    ProcStats, Prometheus, TempDir, Vigil, burn_rate_series, free_port, latency_series, metric_sum,
    metric_value, summary,
};

/// The burn-rate rule with its ranges compressed 15x (1h -> 4m, 5m -> 20s).
const BURN_RATE: &str = "sum by (model) (rate(errors_total[4m])) / sum by (model) (rate(requests_total[4m])) > 14.4 * 0.001 and sum by (model) (rate(errors_total[20s])) / sum by (model) (rate(requests_total[20s])) > 14.4 * 0.001";
/// The vLLM latency rule with its range compressed 15x (5m -> 20s).
const HISTOGRAM: &str = "histogram_quantile(0.99, sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket[20s]))) > 120";

/// Rule name, Prometheus group, query.
const RULES: [(&str, &str, &str); 2] = [
    ("BurnRate", "burn", BURN_RATE),
    ("LatencyP99", "latency", HISTOGRAM),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The target's series: the text before each value, and how fast the
/// counter grows per second. Every value is `per_second * seconds since
/// the target started`, so both scrapers read the same counters.
struct Exposition {
    lines: Vec<(String, f64)>,
    started: Instant,
}

impl Exposition {
    /// `n` input series for each rule (see `burn_rate_series` and
    /// `latency_series`).
    fn new(n: usize) -> Exposition {
        let lines = burn_rate_series(n)
            .into_iter()
            .chain(latency_series(n))
            .map(|s| (format!("{} ", s.text()), s.per_second))
            .collect();
        Exposition {
            lines,
            started: Instant::now(),
        }
    }

    fn series(&self) -> usize {
        self.lines.len()
    }

    fn render(&self) -> String {
        let secs = self.started.elapsed().as_millis() as f64 / 1000.0;
        let mut out = String::with_capacity(self.lines.len() * 80);
        for (prefix, rate) in &self.lines {
            out.push_str(prefix);
            let _ = writeln!(out, "{}", (rate * secs * 1000.0).round() / 1000.0);
        }
        out
    }
}

/// Serves the exposition on a loopback port.
async fn serve(expo: Arc<Exposition>) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(e): State<Arc<Exposition>>| async move {
                tokio::task::spawn_blocking(move || e.render())
                    .await
                    .unwrap_or_default()
            }),
        )
        .with_state(expo);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

fn prometheus_config(dir: &std::path::Path, target: std::net::SocketAddr) -> std::path::PathBuf {
    let mut rules = String::from("groups:\n");
    for (name, group, query) in RULES {
        let _ = write!(
            rules,
            "  - name: {group}\n    rules:\n      - alert: {name}\n        expr: '{query}'\n"
        );
    }
    std::fs::write(dir.join("rules.yml"), rules).expect("rules");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("prometheus config");
    cfg
}

fn vigil_config(
    dir: &std::path::Path,
    target: std::net::SocketAddr,
    port: u16,
) -> std::path::PathBuf {
    let mut cfg = format!(
        "data_dir = \"data\"\nplugin_dir = \"plugins\"\nlisten = \"127.0.0.1:{port}\"\n\n[[targets]]\njob = \"bench\"\nurl = \"http://{target}/metrics\"\ninterval = \"1s\"\n"
    );
    for (name, _, query) in RULES {
        let _ = write!(
            cfg,
            "\n[[rules]]\nname = \"{name}\"\nquery = '''{query}'''\nevery = \"1s\"\n"
        );
    }
    std::fs::create_dir_all(dir.join("plugins")).expect("plugin dir");
    let path = dir.join("vigil.toml");
    std::fs::write(&path, cfg).expect("vigil config");
    path
}

/// Evaluation durations (seconds) recorded per rule, per system.
#[derive(Default)]
struct Recorder {
    vigil: Vec<Vec<f64>>,
    prometheus: Vec<Vec<f64>>,
    /// Last (evaluations, duration sum) per Vigil rule.
    vigil_last: Vec<Option<(f64, f64)>>,
    /// Last evaluation timestamp per Prometheus group.
    prom_last: Vec<Option<f64>>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            vigil: vec![Vec::new(); RULES.len()],
            prometheus: vec![Vec::new(); RULES.len()],
            vigil_last: vec![None; RULES.len()],
            prom_last: vec![None; RULES.len()],
        }
    }

    fn observe(&mut self, vigil: &str, prom: &str, record: bool) {
        for (i, (name, group, _)) in RULES.iter().enumerate() {
            let sel = format!("rule=\"{name}\"");
            if let (Some(count), Some(sum)) = (
                metric_value(vigil, "vigil_rule_evaluations_total", &sel),
                metric_value(vigil, "vigil_rule_evaluation_duration_seconds_sum", &sel),
            ) {
                if let Some((c0, s0)) = self.vigil_last[i]
                    && record
                    && count - c0 == 1.0
                {
                    self.vigil[i].push(sum - s0);
                }
                self.vigil_last[i] = Some((count, sum));
            }
            let filter = format!(";{group}\"");
            let ts = metric_sum(
                prom,
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                &filter,
            );
            let dur = metric_sum(prom, "prometheus_rule_group_last_duration_seconds", &filter);
            if ts > 0.0 && self.prom_last[i] != Some(ts) {
                if record && self.prom_last[i].is_some() {
                    self.prometheus[i].push(dur);
                }
                self.prom_last[i] = Some(ts);
            }
        }
    }
}

fn fmt_ms(v: &mut [f64]) -> String {
    match summary(v) {
        Some((p50, p90, min, max)) => format!(
            "p50 {:>8.1} ms  p90 {:>8.1} ms  ({:.1}..{:.1}, n={})",
            p50 * 1e3,
            p90 * 1e3,
            min * 1e3,
            max * 1e3,
            v.len()
        ),
        None => "no evaluations".to_string(),
    }
}

async fn run(n: usize, fill: Duration, measure: Duration) {
    let dir = TempDir::new("promql-bench");
    let expo = Arc::new(Exposition::new(n));
    let series = expo.series();
    let (target, server) = serve(expo).await;
    let prom = Prometheus::start(
        &prometheus_config(dir.path(), target),
        &dir.path().join("prometheus-data"),
        &dir.path().join("prometheus.log"),
        &["--log.level=warn"],
    )
    .await;
    let port = free_port();
    let v = Vigil::start(
        &vigil_config(dir.path(), target, port),
        format!("127.0.0.1:{port}").parse().expect("addr"),
        &dir.path().join("vigil.log"),
    )
    .await;
    let vigil_pid = v.child.id().unwrap_or(0);
    println!(
        "\n{n} input series per rule ({series} on the target); filling the 4m range for {} s, then measuring for {} s",
        fill.as_secs(),
        measure.as_secs()
    );
    let mut rec = Recorder::new();
    let vigil_metrics = format!("http://{}/metrics", v.addr);
    let started = Instant::now();
    let mut cpu_start = None;
    while started.elapsed() < fill + measure {
        let record = started.elapsed() >= fill;
        if record && cpu_start.is_none() {
            cpu_start = Some((
                Instant::now(),
                ProcStats::of(vigil_pid),
                ProcStats::of(prom.pid()),
            ));
        }
        let (vt, pt) = tokio::join!(vigil_tests::get_text(&vigil_metrics), prom.metrics());
        rec.observe(&vt, &pt, record);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (vs, ps) = (ProcStats::of(vigil_pid), ProcStats::of(prom.pid()));
    if let Some((t0, v0, p0)) = cpu_start {
        let wall = t0.elapsed().as_secs_f64();
        println!(
            "CPU over the measurement (scraping {series} series/s included): vigil {:.2} cores, prometheus {:.2} cores; RSS vigil {} MiB, prometheus {} MiB",
            (vs.cpu_seconds - v0.cpu_seconds) / wall,
            (ps.cpu_seconds - p0.cpu_seconds) / wall,
            vs.rss_bytes >> 20,
            ps.rss_bytes >> 20
        );
    }
    // What each found: the firing series must agree.
    let rules = v.get_json("/api/v1/rules").await;
    let missed = metric_sum(
        &prom.metrics().await,
        "prometheus_rule_group_iterations_missed_total",
        "",
    );
    for (i, (name, _, _)) in RULES.iter().enumerate() {
        let vr = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .find(|r| r["name"] == *name)
            .unwrap_or_default();
        let q = format!(
            "/api/v1/query?query=count(ALERTS%7Balertname%3D%22{name}%22,alertstate%3D%22firing%22%7D)"
        );
        let pr = prom.get_json(&q).await;
        let prom_firing = pr["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let ratio = match (
            summary(&mut rec.vigil[i].clone()),
            summary(&mut rec.prometheus[i].clone()),
        ) {
            (Some((a, ..)), Some((b, ..))) => format!("{:.2}x", a / b),
            _ => "-".to_string(),
        };
        println!(
            "{name:<11} vigil      {}  firing {}{}\n{name:<11} prometheus {}  firing {prom_firing}\n{name:<11} vigil / prometheus (p50): {ratio}",
            fmt_ms(&mut rec.vigil[i]),
            vr["series"],
            vr["last_error"]
                .as_str()
                .map(|e| format!(" ERROR {e}"))
                .unwrap_or_default(),
            fmt_ms(&mut rec.prometheus[i]),
        );
    }
    println!("prometheus iterations missed (all groups): {missed}");
    v.stop().await;
    drop(prom);
    server.abort();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("VIGIL_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let fill = Duration::from_secs(env_u64("VIGIL_BENCH_FILL_SECS", 260));
    let measure = Duration::from_secs(env_u64("VIGIL_BENCH_MEASURE_SECS", 60));
    println!(
        "rule step, Vigil vs Prometheus 2.42, same target, same run; scrape and evaluation every 1 s, ranges 4m and 20s (1h and 5m compressed 15x)"
    );
    for n in sizes {
        run(n, fill, measure).await;
    }
}
