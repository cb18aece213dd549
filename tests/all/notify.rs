//! The notification pipeline through the real binary: grouping, the
//! durable outbox across a crash, acknowledgements.

use std::time::Duration;

use vigil_tests::{Target, TempDir, Vigil, Webhook, eventually, free_port, install_plugins};

/// Two rules over the same series, so one crossing makes two alerts.
fn config(
    dir: &TempDir,
    target: &Target,
    hook: &Webhook,
    port: u16,
    route: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[api]
token_env = "VIGIL_TEST_API_TOKEN"

[[targets]]
job = "model-server"
url = "http://{target}/metrics"
interval = "200ms"
timeout = "150ms"

[[rules]]
name = "ErrorRatioHigh"
query = 'model_error_ratio'
every = "200ms"
window = "5s"
check = "threshold"
params = {{ above = 0.05 }}
labels = {{ severity = "warning" }}

[[rules]]
name = "ErrorRatioCritical"
query = 'model_error_ratio'
every = "200ms"
window = "5s"
check = "threshold"
params = {{ above = 0.1 }}
labels = {{ severity = "critical" }}

[[receivers]]
name = "team"
notifier = "webhook"
params = {{ url = "{url}" }}
allow_hosts = ["{hook}"]
timeout = "1s"
retry_for = "10m"

[route]
receiver = "team"
{route}
"#,
        target = target.addr,
        url = hook.url(),
        hook = hook.addr,
    );
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn names(body: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{}:{}",
                a["labels"]["alertname"].as_str().unwrap_or("?"),
                a["status"].as_str().unwrap_or("?")
            )
        })
        .collect();
    v.sort();
    v
}

/// Deliveries fail, vigil is killed with notifications queued, and after a
/// restart each is delivered exactly once when the receiver recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_notifications_survive_sigkill_and_arrive_exactly_once() {
    let dir = TempDir::new("notify-kill");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let target = Target::start(0.5).await;
    let hook = Webhook::start().await;
    hook.set_status(503);
    let port = free_port();
    let cfg = config(
        &dir,
        &target,
        &hook,
        port,
        "group_by = [\"alertname\"]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"",
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let log = dir.path().join("vigil.log");
    let env = [("VIGIL_TEST_API_TOKEN", "s3cret")];
    let v = Vigil::start_with_env(&cfg, addr, &log, &env).await;
    // Both groups are being retried.
    eventually(
        Duration::from_secs(20),
        "failing delivery attempts",
        || async { (hook.attempts() >= 4).then_some(()) },
    )
    .await;
    v.kill().await;
    assert!(hook.requests().is_empty());

    hook.set_status(200);
    let log2 = dir.path().join("vigil2.log");
    let v = Vigil::start_with_env(&cfg, addr, &log2, &env).await;
    eventually(Duration::from_secs(20), "both notifications", || async {
        (hook.requests().len() >= 2).then_some(())
    })
    .await;
    // Group intervals pass; nothing is sent twice.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got: Vec<Vec<String>> = hook.received().iter().map(|(_, b)| names(b)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            vec!["ErrorRatioCritical:firing".to_string()],
            vec!["ErrorRatioHigh:firing".to_string()],
        ],
        "log:\n{}",
        v.log_text()
    );
    v.stop().await;
}

/// Alerts of one group arrive in one notification; a resolution of one
/// of them follows after group_interval; an acknowledged alert stops
/// repeating while others would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_batch_alerts_and_acks_stop_repeats() {
    let dir = TempDir::new("notify-group");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let target = Target::start(0.01).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = config(
        &dir,
        &target,
        &hook,
        port,
        "group_by = [\"model\"]\ngroup_wait = \"1s\"\ngroup_interval = \"1s\"\nrepeat_interval = \"2s\"",
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let log = dir.path().join("vigil.log");
    let v = Vigil::start_with_env(&cfg, addr, &log, &[("VIGIL_TEST_API_TOKEN", "s3cret")]).await;
    target.set(0.5);
    let first = eventually(
        Duration::from_secs(10),
        "the grouped notification",
        || async { hook.received().first().cloned() },
    )
    .await;
    assert_eq!(
        names(&first.1),
        vec!["ErrorRatioCritical:firing", "ErrorRatioHigh:firing"],
        "both alerts in one notification (group_wait batches them)"
    );
    assert_eq!(
        first.1["groupLabels"],
        serde_json::json!({ "model": "resnet" })
    );

    // Unacknowledged, the group repeats after repeat_interval.
    eventually(Duration::from_secs(10), "a repeat", || async {
        (hook.requests().len() >= 2).then_some(())
    })
    .await;

    // Acknowledge both alerts: no more repeats.
    let alerts = v.get_json("/api/v1/alerts").await;
    let client = reqwest::Client::new();
    for a in alerts["data"]["alerts"].as_array().expect("alerts") {
        let fp = a["fingerprint"].as_str().expect("fingerprint");
        let url = format!("http://{addr}/api/v1/alerts/{fp}/ack");
        let denied = client.post(&url).send().await.expect("post");
        assert_eq!(denied.status(), 401, "no token, no ack");
        let r = client
            .post(&url)
            .bearer_auth("s3cret")
            .json(&serde_json::json!({ "createdBy": "test", "comment": "on it" }))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = hook.requests().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        hook.requests().len(),
        before,
        "acknowledged alerts repeat no more"
    );

    // Recovery resolves both, in one notification.
    target.set(0.01);
    eventually(Duration::from_secs(10), "both resolutions", || async {
        let mut got: Vec<String> = hook
            .alerts("resolved")
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap_or("?").to_string())
            .collect();
        got.sort();
        got.dedup();
        (got == ["ErrorRatioCritical", "ErrorRatioHigh"]).then_some(())
    })
    .await;
    v.stop().await;
}
