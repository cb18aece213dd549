//! The whole pipeline through the real binary: a loopback target crosses a
//! threshold and comes back; a loopback webhook gets the firing and the
//! resolved notification; restarts keep the pending timer and never resend.

use std::time::{Duration, Instant};

use vigil_tests::{Target, TempDir, Vigil, Webhook, eventually, free_port, install_plugins};

fn config(dir: &TempDir, target: &Target, hook: &Webhook, port: u16) -> std::path::PathBuf {
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
name = "ErrorRatioHigh"
query = 'model_error_ratio{{model="resnet"}}'
every = "200ms"
window = "10s"
check = "threshold"
params = {{ above = 0.05 }}
for = "3s"
labels = {{ severity = "critical" }}
annotations = {{ summary = "Error ratio {{{{ $value | humanizePercentage }}}} on {{{{ $labels.model }}}}" }}

{receiver}
"#,
        target = target.addr,
        receiver = hook.receiver_toml("team"),
    );
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

async fn alert_state(v: &Vigil) -> Option<(String, i64)> {
    let a = v.get_json("/api/v1/alerts").await;
    let alert = a["data"]["alerts"].as_array()?.first()?.clone();
    Some((
        alert["state"].as_str()?.to_string(),
        alert["active_at_ms"].as_i64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_fires_and_resolves_and_restarts_keep_state() {
    let dir = TempDir::new("e2e");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let target = Target::start(0.01).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = config(&dir, &target, &hook, port);
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let log = dir.path().join("vigil.log");

    let v = Vigil::start(&cfg, addr, &log).await;
    eventually(Duration::from_secs(10), "the rule to evaluate", || async {
        (v.rule("ErrorRatioHigh").await["evaluations"].as_u64()? > 2).then_some(())
    })
    .await;
    assert!(
        alert_state(&v).await.is_none(),
        "no alert below the threshold"
    );

    // Cross the threshold: the alert turns pending.
    target.set(0.2);
    let (_, active_at) = eventually(Duration::from_secs(5), "a pending alert", || async {
        alert_state(&v).await.filter(|(s, _)| s == "pending")
    })
    .await;

    // Crash mid-`for` and come back: the pending timer is not reset.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    v.kill().await;
    let log2 = dir.path().join("vigil2.log");
    let v = Vigil::start(&cfg, addr, &log2).await;
    let (state, restored_at) = eventually(Duration::from_secs(5), "the restored alert", || async {
        alert_state(&v).await
    })
    .await;
    assert_eq!(
        restored_at, active_at,
        "restart kept activeAt (state {state})"
    );

    let firing = eventually(
        Duration::from_secs(10),
        "the firing notification",
        || async { hook.alerts("firing").first().cloned() },
    )
    .await;
    let alerts = v.get_json("/api/v1/alerts").await;
    let fired_at = alerts["data"]["alerts"][0]["fired_at_ms"]
        .as_i64()
        .expect("fired_at");
    // With a reset timer it would fire 1.5 s + restart + 3 s after activeAt.
    assert!(
        fired_at - active_at >= 3_000 && fired_at - active_at < 4_400,
        "fired {} ms after turning pending; log:\n{}",
        fired_at - active_at,
        v.log_text()
    );
    assert_eq!(firing["labels"]["alertname"], "ErrorRatioHigh");
    assert_eq!(firing["labels"]["model"], "resnet");
    assert_eq!(firing["labels"]["severity"], "critical");
    assert_eq!(firing["labels"]["job"], "model-server");
    assert_eq!(
        firing["annotations"]["summary"],
        "Error ratio 20% on resnet"
    );
    assert!(firing["labels"].get("__name__").is_none());
    let payload = &hook.received()[0].1;
    assert_eq!(payload["version"], "4");
    assert_eq!(payload["status"], "firing");
    assert_eq!(payload["receiver"], "team");

    // Another crash after the firing was sent: nothing is sent again.
    v.kill().await;
    let log3 = dir.path().join("vigil3.log");
    let v = Vigil::start(&cfg, addr, &log3).await;
    eventually(
        Duration::from_secs(5),
        "the alert to be firing again",
        || async { alert_state(&v).await.filter(|(s, _)| s == "firing") },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hook.alerts("firing").len(),
        1,
        "the firing notification was sent once"
    );

    // Come back under the threshold: resolved, with the same labels.
    let back = Instant::now();
    target.set(0.01);
    let resolved = eventually(
        Duration::from_secs(10),
        "the resolved notification",
        || async { hook.alerts("resolved").first().cloned() },
    )
    .await;
    assert!(back.elapsed() < Duration::from_secs(5));
    assert_eq!(resolved["labels"], firing["labels"]);
    assert_ne!(resolved["endsAt"], "0001-01-01T00:00:00Z");
    eventually(Duration::from_secs(5), "no active alert", || async {
        alert_state(&v).await.is_none().then_some(())
    })
    .await;
    v.stop().await;
}
