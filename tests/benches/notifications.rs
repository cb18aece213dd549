//! Notifications through the real binary: throughput of grouping plus the
//! `webhook` notifier (Wasm render and HTTP POST) to a loopback receiver,
//! and 100k firing alerts beside Prometheus 2.42 evaluating the same rule
//! on the same target in the same run.
//!
//! Run: `cargo build --release -p vigil && VIGIL_BIN=$PWD/target/release/vigil env -u RUST_BACKTRACE cargo bench -p vigil-tests --bench notifications`
//!
//! 1. Throughput (`VIGIL_BENCH_NOTIFY_ALERTS`, default 5000): a rule
//!    without `check`, `bench_value > 0`, starts firing for that many
//!    series at once; the route groups by every label (`group_by =
//!    ["..."]`, `group_wait = "0s"`), so each alert is its own notification.
//!    Printed: notifications per second between the first and the last
//!    arrival at the receiver, and the time from the crossing to the last.
//! 2. 100k firing alerts (`VIGIL_BENCH_FIRING`, default 100000; scrape and
//!    evaluation every `VIGIL_BENCH_INTERVAL` seconds, default 15): the same
//!    rule over a target of that many series, in groups of 100 by a
//!    `shard` label (1000 notifications). Vigil and Prometheus scrape the
//!    same target; the series start at 0 (nothing fires), so the baseline
//!    memory holds the series only; then all turn 1 for
//!    `VIGIL_BENCH_FIRING_SECS` (default 180), then 0 again for
//!    `VIGIL_BENCH_RESOLVE_SECS` (default 90). Prometheus sends to a
//!    loopback sink as its Alertmanager (`api_version: v2`, default queue
//!    of 10,000 and resend delay of 1 m). Printed per system: every
//!    evaluation's duration, RSS (baseline, firing, peak), CPU, alerts that
//!    reached the receiver; for Prometheus its notification counters.
//!
//! Vigil's evaluation durations come from its `rule evaluated` log lines
//! (its `/metrics` is not polled: rendering it walks every alert).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use vigil_tests::{
    ProcStats, Prometheus, TempDir, Vigil, Webhook, free_port, install_plugins, metric_sum, summary,
};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A target exposing `n` gauges `bench_value{replica, shard}` (100 replicas
/// per shard), all 0 or all 1.
struct Switch {
    zero: String,
    one: String,
    on: AtomicBool,
}

async fn target(
    n: usize,
) -> (
    Arc<Switch>,
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    let render = |v: u8| {
        let mut s = String::from("# TYPE bench_value gauge\n");
        for k in 0..n {
            s.push_str(&format!(
                "bench_value{{replica=\"r{k}\",shard=\"s{}\"}} {v}\n",
                k / 100
            ));
        }
        s
    };
    let sw = Arc::new(Switch {
        zero: render(0),
        one: render(1),
        on: AtomicBool::new(false),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<Switch>>| async move {
                if s.on.load(Ordering::SeqCst) {
                    s.one.clone()
                } else {
                    s.zero.clone()
                }
            }),
        )
        .with_state(sw.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (sw, addr, task)
}

/// Prometheus' Alertmanager stand-in: counts the alerts it is sent.
#[derive(Default)]
struct Sink {
    posts: AtomicU64,
    firing: AtomicU64,
    resolved: AtomicU64,
}

async fn sink() -> (Arc<Sink>, std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let s = Arc::new(Sink::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sink");
    let addr = listener.local_addr().expect("addr");
    async fn handle(State(s): State<Arc<Sink>>, body: Bytes) -> &'static str {
        s.posts.fetch_add(1, Ordering::Relaxed);
        let alerts: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        // Prometheus sets endsAt in the future for firing alerts and to the
        // resolution time for resolved ones.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for a in &alerts {
            let ends = a["endsAt"]
                .as_str()
                .and_then(|t| t.get(..19))
                .and_then(parse_utc)
                .unwrap_or(u64::MAX);
            if ends > now {
                s.firing.fetch_add(1, Ordering::Relaxed);
            } else {
                s.resolved.fetch_add(1, Ordering::Relaxed);
            }
        }
        ""
    }
    let app = Router::new()
        .route("/api/v2/alerts", post(handle))
        .with_state(s.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (s, addr, task)
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` (UTC).
fn parse_utc(t: &str) -> Option<u64> {
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn vigil_config(
    dir: &std::path::Path,
    target: std::net::SocketAddr,
    port: u16,
    interval: u64,
    hook: &Webhook,
    group_by: &str,
) -> std::path::PathBuf {
    install_plugins(&dir.join("plugins"), &["notify-webhook"]);
    let cfg = format!(
        r#"data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[[targets]]
job = "bench"
url = "http://{target}/metrics"
interval = "{interval}s"
timeout = "{timeout}s"

[[rules]]
name = "BenchFiring"
query = "bench_value > 0"
every = "{interval}s"
annotations = {{ summary = "value {{{{ $value }}}} on {{{{ $labels.replica }}}}" }}

[[receivers]]
name = "hook"
notifier = "webhook"
params = {{ url = "{url}" }}
allow_hosts = ["{hook_addr}"]

[route]
receiver = "hook"
group_by = {group_by}
group_wait = "0s"
group_interval = "1m"
repeat_interval = "4h"
"#,
        timeout = interval.min(10),
        url = hook.url(),
        hook_addr = hook.addr,
    );
    let path = dir.join("vigil.toml");
    std::fs::write(&path, cfg).expect("vigil config");
    path
}

fn prometheus_config(
    dir: &std::path::Path,
    target: std::net::SocketAddr,
    sink: std::net::SocketAddr,
    interval: u64,
) -> std::path::PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: firing\n    rules:\n      - alert: BenchFiring\n        expr: bench_value > 0\n        annotations:\n          summary: 'value {{ $value }} on {{ $labels.replica }}'\n",
    )
    .expect("rules");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {timeout}s\n  evaluation_interval: {interval}s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: ['{sink}']\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: ['{target}']\n",
            timeout = interval.min(10)
        ),
    )
    .expect("prometheus config");
    cfg
}

/// Durations (seconds) of the `rule evaluated` lines of a Vigil log, in order.
fn vigil_evaluations(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("rule evaluated"))
        .filter_map(|l| {
            let plain = strip_ansi(l);
            let us = plain.split("duration_us=").nth(1)?;
            let digits: String = us.chars().take_while(char::is_ascii_digit).collect();
            Some(digits.parse::<f64>().ok()? / 1e6)
        })
        .collect()
}

/// A log line without its terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn fmt_s(v: &mut [f64]) -> String {
    match summary(v) {
        Some((p50, p90, min, max)) => format!(
            "p50 {:.3} s, p90 {:.3} s ({:.3}..{:.3}, n={})",
            p50,
            p90,
            min,
            max,
            v.len()
        ),
        None => "no evaluations".to_string(),
    }
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1 << 20) as f64)
}

/// Part 1: notifications per second, one alert per notification.
async fn throughput(n: usize) {
    let dir = TempDir::new("notify-bench");
    let (sw, target_addr, target_task) = target(n).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = vigil_config(dir.path(), target_addr, port, 1, &hook, "[\"...\"]");
    let v = Vigil::start(
        &cfg,
        format!("127.0.0.1:{port}").parse().expect("addr"),
        &dir.path().join("vigil.log"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let crossed = Instant::now();
    sw.on.store(true, Ordering::SeqCst);
    let deadline = crossed + Duration::from_secs(600);
    let mut last_count = 0;
    let mut last_change = Instant::now();
    while (hook.attempts() as usize) < n && Instant::now() < deadline {
        let c = hook.attempts();
        if c != last_count {
            last_count = c;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reqs = hook.requests();
    let alerts: usize = hook
        .received()
        .iter()
        .map(|(_, b)| b["alerts"].as_array().map_or(0, Vec::len))
        .sum();
    match (reqs.first(), reqs.last()) {
        (Some(first), Some(last)) if reqs.len() > 1 => {
            let span = last.at.duration_since(first.at).as_secs_f64();
            println!(
                "throughput: {} of {n} single-alert notifications ({alerts} alerts) arrived; {:.0} notifications/s between the first ({:.2} s after the crossing) and the last ({:.2} s after)",
                reqs.len(),
                (reqs.len() - 1) as f64 / span,
                first.at.duration_since(crossed).as_secs_f64(),
                last.at.duration_since(crossed).as_secs_f64(),
            );
        }
        _ => println!(
            "throughput: only {} notifications arrived; log tail:\n{}",
            reqs.len(),
            tail(&v.log_text())
        ),
    }
    let dropped = v.log_text().matches("queue full").count();
    if dropped > 0 {
        println!("throughput: vigil dropped {dropped} notifications (queue full)");
    }
    v.stop().await;
    target_task.abort();
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Part 2: `n` firing alerts, Vigil beside Prometheus.
async fn firing(n: usize, interval: u64, firing_for: Duration, resolve_for: Duration) {
    let dir = TempDir::new("firing-bench");
    let (sw, target_addr, target_task) = target(n).await;
    let (sink, sink_addr, sink_task) = sink().await;
    let hook = Webhook::start().await;
    let prom = Prometheus::start(
        &prometheus_config(dir.path(), target_addr, sink_addr, interval),
        &dir.path().join("prometheus-data"),
        &dir.path().join("prometheus.log"),
        &["--log.level=warn"],
    )
    .await;
    let port = free_port();
    let cfg = vigil_config(
        dir.path(),
        target_addr,
        port,
        interval,
        &hook,
        "[\"alertname\", \"shard\"]",
    );
    let v = Vigil::start(
        &cfg,
        format!("127.0.0.1:{port}").parse().expect("addr"),
        &dir.path().join("vigil.log"),
    )
    .await;
    let vpid = v.child.id().unwrap_or(0);
    println!(
        "\n{n} series, scrape and evaluation every {interval} s; baseline (nothing firing) for {} s",
        4 * interval
    );
    tokio::time::sleep(Duration::from_secs(4 * interval)).await;
    let base = (ProcStats::of(vpid), ProcStats::of(prom.pid()));
    let base_evals = vigil_evaluations(&v.log_text()).len();
    let prom_metrics = |t: String| {
        let g = |name: &str| metric_sum(&t, name, "");
        (
            g("prometheus_rule_group_last_evaluation_timestamp_seconds"),
            g("prometheus_rule_group_last_duration_seconds"),
            g("prometheus_notifications_sent_total"),
            g("prometheus_notifications_dropped_total"),
            g("prometheus_notifications_errors_total"),
            g("prometheus_notifications_queue_length"),
            g("prometheus_rule_group_iterations_missed_total"),
        )
    };
    let p0 = prom_metrics(prom.metrics().await);
    println!(
        "baseline: RSS vigil {}, prometheus {}",
        mib(base.0.rss_bytes),
        mib(base.1.rss_bytes)
    );
    // Firing.
    let crossed = Instant::now();
    sw.on.store(true, Ordering::SeqCst);
    let mut prom_evals = Vec::new();
    let mut last_ts = p0.0;
    let mut peak = (0u64, 0u64);
    let mut vigil_done: Option<Duration> = None;
    let poll = |prom_evals: &mut Vec<f64>, last_ts: &mut f64, t: String| {
        let m = prom_metrics(t);
        if m.0 != *last_ts {
            prom_evals.push(m.1);
            *last_ts = m.0;
        }
        m
    };
    let mut pm = p0;
    while crossed.elapsed() < firing_for {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pm = poll(&mut prom_evals, &mut last_ts, prom.metrics().await);
        let (vs, ps) = (ProcStats::of(vpid), ProcStats::of(prom.pid()));
        peak = (peak.0.max(vs.rss_bytes), peak.1.max(ps.rss_bytes));
        if vigil_done.is_none() && hook.attempts() >= (n as u64).div_ceil(100) {
            vigil_done = Some(crossed.elapsed());
        }
    }
    let fire = (ProcStats::of(vpid), ProcStats::of(prom.pid()));
    let log = v.log_text();
    let vigil_evals: Vec<f64> = vigil_evaluations(&log)[base_evals..].to_vec();
    let reqs = hook.requests();
    let vigil_alerts: usize = hook
        .received()
        .iter()
        .map(|(_, b)| b["alerts"].as_array().map_or(0, Vec::len))
        .sum();
    let wall = crossed.elapsed().as_secs_f64();
    println!(
        "firing for {wall:.0} s ({} evaluations by vigil, {} by prometheus):",
        vigil_evals.len(),
        prom_evals.len()
    );
    println!(
        "  vigil      rule evaluation {}; each: {}",
        fmt_s(&mut vigil_evals.clone()),
        vigil_evals
            .iter()
            .map(|d| format!("{d:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  prometheus rule evaluation {}; each: {}",
        fmt_s(&mut prom_evals.clone()),
        prom_evals
            .iter()
            .map(|d| format!("{d:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  RSS: vigil {} (+{} over baseline, peak {}), prometheus {} (+{}, peak {})",
        mib(fire.0.rss_bytes),
        mib(fire.0.rss_bytes.saturating_sub(base.0.rss_bytes)),
        mib(peak.0),
        mib(fire.1.rss_bytes),
        mib(fire.1.rss_bytes.saturating_sub(base.1.rss_bytes)),
        mib(peak.1)
    );
    println!(
        "  CPU while firing: vigil {:.2} cores, prometheus {:.2} cores",
        (fire.0.cpu_seconds - base.0.cpu_seconds) / wall,
        (fire.1.cpu_seconds - base.1.cpu_seconds) / wall
    );
    match (reqs.first(), reqs.last()) {
        (Some(first), Some(last)) => println!(
            "  vigil -> webhook: {} notifications, {vigil_alerts} alerts; first {:.2} s, last {:.2} s after the crossing ({:.0} notifications/s, {:.0} alerts/s between them){}",
            reqs.len(),
            first.at.duration_since(crossed).as_secs_f64(),
            last.at.duration_since(crossed).as_secs_f64(),
            (reqs.len().saturating_sub(1)) as f64
                / last.at.duration_since(first.at).as_secs_f64().max(1e-9),
            vigil_alerts as f64 / last.at.duration_since(first.at).as_secs_f64().max(1e-9),
            vigil_done
                .map(|d| format!(
                    "; all {} groups by {:.1} s",
                    n.div_ceil(100),
                    d.as_secs_f64()
                ))
                .unwrap_or_default()
        ),
        _ => println!("  vigil -> webhook: nothing arrived"),
    }
    println!(
        "  prometheus -> sink: {} POSTs, {} firing alerts received; notifications sent {}, dropped {}, errors {}, queue length {}, iterations missed {}",
        sink.posts.load(Ordering::Relaxed),
        sink.firing.load(Ordering::Relaxed),
        pm.2 - p0.2,
        pm.3 - p0.3,
        pm.4 - p0.4,
        pm.5,
        pm.6 - p0.6
    );
    // Resolving.
    let resolved_at = Instant::now();
    let (hook_before, sink_before) = (hook.attempts(), sink.resolved.load(Ordering::Relaxed));
    let evals_before = vigil_evaluations(&v.log_text()).len();
    let prom_before = prom_evals.len();
    sw.on.store(false, Ordering::SeqCst);
    while resolved_at.elapsed() < resolve_for {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pm = poll(&mut prom_evals, &mut last_ts, prom.metrics().await);
    }
    let mut vigil_res_evals: Vec<f64> = vigil_evaluations(&v.log_text())[evals_before..].to_vec();
    let mut prom_res_evals = prom_evals[prom_before..].to_vec();
    let resolved_alerts: usize = hook.requests()[hook_before as usize..]
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
        .map(|b| b["alerts"].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "resolving for {} s: vigil evaluations {}; prometheus {}",
        resolve_for.as_secs(),
        fmt_s(&mut vigil_res_evals),
        fmt_s(&mut prom_res_evals)
    );
    println!(
        "  vigil -> webhook: {} notifications, {resolved_alerts} resolved alerts; prometheus -> sink: {} resolved alerts; prometheus dropped {} in total",
        hook.attempts() - hook_before,
        sink.resolved.load(Ordering::Relaxed) - sink_before,
        pm.3 - p0.3
    );
    let dropped = v.log_text().matches("queue full").count();
    if dropped > 0 {
        println!("  vigil dropped {dropped} notifications (queue full)");
    }
    v.stop().await;
    drop(prom);
    target_task.abort();
    sink_task.abort();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let notify_n = env_u64("VIGIL_BENCH_NOTIFY_ALERTS", 5000) as usize;
    let firing_n = env_u64("VIGIL_BENCH_FIRING", 100_000) as usize;
    let interval = env_u64("VIGIL_BENCH_INTERVAL", 15);
    let firing_for = Duration::from_secs(env_u64("VIGIL_BENCH_FIRING_SECS", 180));
    let resolve_for = Duration::from_secs(env_u64("VIGIL_BENCH_RESOLVE_SECS", 90));
    if notify_n > 0 {
        throughput(notify_n).await;
    }
    if firing_n > 0 {
        firing(firing_n, interval, firing_for, resolve_for).await;
    }
}
