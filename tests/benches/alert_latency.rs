//! Crossing-to-webhook latency through the real binary and real plugins.
//!
//! A loopback target's value crosses a threshold at a random phase of the
//! 1 s scrape interval; we time from the crossing to the firing webhook's
//! arrival at a loopback receiver, then bring the value back and wait for
//! the resolution before the next trial.
//!
//! Run: `cargo build -p vigil && env -u RUST_BACKTRACE cargo bench -p vigil-tests --bench alert_latency`
//! (`VIGIL_BENCH_TRIALS`, default 25).

use std::time::{Duration, Instant};

use vigil_tests::{Target, TempDir, Vigil, Webhook, free_port, install_plugins};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::var("VIGIL_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let dir = TempDir::new("latency");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let target = Target::start(0.0).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[[targets]]
job = "bench"
url = "http://{target}/metrics"
interval = "1s"

[[rules]]
name = "Crossed"
query = "model_error_ratio"
every = "1s"
window = "1m"
check = "threshold"
params = {{ above = 0.5 }}

{receiver}
"#,
            target = target.addr,
            receiver = hook.receiver_toml("hook")
        ),
    )
    .expect("config");
    let v = Vigil::start(
        &cfg,
        format!("127.0.0.1:{port}").parse().expect("addr"),
        &dir.path().join("log"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for trial in 0..trials {
        // Cross at a pseudo-random phase of the scrape interval.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tokio::time::sleep(Duration::from_millis(x % 1000)).await;
        let before = hook.alerts("firing").len();
        let crossed = Instant::now();
        target.set(1.0);
        let arrived = loop {
            if let Some((at, _)) = hook
                .received()
                .into_iter()
                .filter(|(_, p)| p["status"] == "firing")
                .nth(before)
            {
                break at;
            }
            if crossed.elapsed() > Duration::from_secs(10) {
                panic!(
                    "trial {trial}: no firing notification; log:\n{}",
                    v.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        latencies.push(arrived.duration_since(crossed));
        let resolved_before = hook.alerts("resolved").len();
        target.set(0.0);
        while hook.alerts("resolved").len() == resolved_before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "crossing -> webhook, 1 s scrape interval, {} trials: p50 {:.0} ms, p90 {:.0} ms, min {:.0} ms, max {:.0} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(latencies[0]),
        ms(latencies[latencies.len() - 1])
    );
    println!("bar: p50 within the scrape interval + 50 ms = 1050 ms");
    v.stop().await;
}
