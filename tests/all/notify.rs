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

/// Runs the `vigil` binary's client commands against `addr`.
fn vigil_cli(addr: std::net::SocketAddr, token: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(vigil_tests::vigil_bin())
        .args(args)
        .env("VIGIL_URL", format!("http://{addr}"))
        .env("VIGIL_API_TOKEN", token)
        .output()
        .expect("run vigil");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A silence made with `vigil silence add` mutes one alert; it survives a
/// restart; once expired, the muted alert is notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_from_the_cli_mute_survive_restarts_and_expire() {
    let dir = TempDir::new("notify-silence");
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
        "group_by = [\"alertname\"]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"",
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let env = [("VIGIL_TEST_API_TOKEN", "s3cret")];
    let v = Vigil::start_with_env(&cfg, addr, &dir.path().join("vigil.log"), &env).await;

    let (ok, out) = vigil_cli(addr, "wrong", &["silence", "list"]);
    assert!(
        !ok && out.contains("401"),
        "a wrong token is refused: {out}"
    );
    let (ok, id) = vigil_cli(
        addr,
        "s3cret",
        &[
            "silence",
            "add",
            "alertname=\"ErrorRatioHigh\"",
            "--duration",
            "1h",
            "--comment",
            "deploying",
        ],
    );
    assert!(ok, "{id}");
    let id = id.trim().to_string();

    target.set(0.5);
    eventually(Duration::from_secs(10), "the unsilenced alert", || async {
        (!hook.requests().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got: Vec<Vec<String>> = hook.received().iter().map(|(_, b)| names(b)).collect();
    assert_eq!(got, vec![vec!["ErrorRatioCritical:firing".to_string()]]);
    let alerts = v.get_json("/api/v1/alerts").await;
    let high = alerts["data"]["alerts"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["labels"]["alertname"] == "ErrorRatioHigh")
                .cloned()
        })
        .expect("ErrorRatioHigh is active");
    assert_eq!(high["silencedBy"], serde_json::json!([id]));

    // The silence is saved: a restart keeps it (and nothing is re-sent).
    v.stop().await;
    let v = Vigil::start_with_env(&cfg, addr, &dir.path().join("vigil2.log"), &env).await;
    let (ok, list) = vigil_cli(
        addr,
        "s3cret",
        &["silence", "list", "alertname=\"ErrorRatioHigh\""],
    );
    assert!(
        ok && list.contains(&id) && list.contains("active") && list.contains("deploying"),
        "{list}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.requests().len(), 1, "nothing new after the restart");

    let (ok, out) = vigil_cli(addr, "s3cret", &["silence", "expire", &id]);
    assert!(ok, "{out}");
    eventually(
        Duration::from_secs(10),
        "the alert the silence held back",
        || async {
            hook.received()
                .iter()
                .any(|(_, b)| names(b) == ["ErrorRatioHigh:firing"])
                .then_some(())
        },
    )
    .await;
    let (ok, list) = vigil_cli(addr, "s3cret", &["silence", "list"]);
    assert!(ok && list.contains("expired"), "{list}");
    v.stop().await;
}

/// While the critical alert fires, the warning about the same model is
/// inhibited; when the critical one resolves, the warning is notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inhibition_mutes_the_lesser_alert_while_the_greater_fires() {
    let dir = TempDir::new("notify-inhibit");
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
        "group_by = [\"alertname\"]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\n\
         [[inhibit_rules]]\nsource_matchers = ['severity=\"critical\"']\n\
         target_matchers = ['severity=\"warning\"']\nequal = [\"model\"]",
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let env = [("VIGIL_TEST_API_TOKEN", "s3cret")];
    let v = Vigil::start_with_env(&cfg, addr, &dir.path().join("vigil.log"), &env).await;
    target.set(0.5);
    eventually(Duration::from_secs(10), "the critical alert", || async {
        (!hook.requests().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got: Vec<Vec<String>> = hook.received().iter().map(|(_, b)| names(b)).collect();
    assert_eq!(got, vec![vec!["ErrorRatioCritical:firing".to_string()]]);
    // Between the thresholds: critical resolves, the warning keeps firing.
    target.set(0.07);
    eventually(
        Duration::from_secs(10),
        "the warning, no longer inhibited",
        || async {
            hook.received()
                .iter()
                .any(|(_, b)| names(b) == ["ErrorRatioHigh:firing"])
                .then_some(())
        },
    )
    .await;
    v.stop().await;
}

/// An alert that keeps toggling is announced once as flapping, then held
/// until it settles, instead of paging on every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_alerts_are_announced_once_and_held() {
    let dir = TempDir::new("notify-flap");
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
        "group_by = [\"alertname\"]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\n\
         [flap_damping]\nchanges = 4\nwindow = \"1m\"\nstable_for = \"4s\"",
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let env = [("VIGIL_TEST_API_TOKEN", "s3cret")];
    let v = Vigil::start_with_env(&cfg, addr, &dir.path().join("vigil.log"), &env).await;
    // Toggle every 1.5 s, ten times.
    for i in 0..10 {
        target.set(if i % 2 == 0 { 0.07 } else { 0.01 });
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let bodies: Vec<serde_json::Value> = hook
        .received()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b["groupLabels"]["alertname"] == "ErrorRatioHigh")
        .collect();
    // Without damping, ten changes would mean ten notifications.
    assert!(
        bodies.len() <= 4,
        "{} notifications while flapping: {bodies:#?}",
        bodies.len()
    );
    assert!(
        bodies
            .iter()
            .any(|b| b["alerts"][0]["annotations"]["flapping"] == "true"),
        "one notification says it is flapping: {bodies:#?}"
    );
    // It settles (resolved); the settled state is notified.
    eventually(
        Duration::from_secs(15),
        "the settled resolution",
        || async {
            hook.received()
                .iter()
                .rev()
                .find(|(_, b)| b["groupLabels"]["alertname"] == "ErrorRatioHigh")
                .filter(|(_, b)| {
                    b["status"] == "resolved" && b["alerts"][0]["annotations"]["flapping"].is_null()
                })
                .map(|_| ())
        },
    )
    .await;
    v.stop().await;
}

/// What a receiver answered is recorded with the alert (a remediation
/// endpoint's reply, say), and a rendering over `max_body_bytes` is refused
/// without contacting the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_outcomes_are_recorded_with_the_alert() {
    let dir = TempDir::new("notify-outcome");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook", "notify-remediation"],
    );
    let target = Target::start(0.5).await;
    let fix = Webhook::start().await;
    let tiny = Webhook::start().await;
    let port = free_port();
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
query = 'model_error_ratio'
every = "200ms"
window = "5s"
check = "threshold"
params = {{ above = 0.05 }}

[[receivers]]
name = "fix"
notifier = "remediation"
params = {{ url = "{fix_url}", action = "restart", params = {{ model = "{{{{ .Labels.model }}}}" }} }}
allow_hosts = ["{fix}"]

[[receivers]]
name = "tiny"
notifier = "webhook"
params = {{ url = "{tiny_url}" }}
allow_hosts = ["{tiny}"]
max_body_bytes = 10

[route]
receiver = "fix"
group_by = ["..."]
group_wait = "0s"
group_interval = "1s"
routes = [{{ receiver = "tiny", continue = true }}, {{ receiver = "fix" }}]
"#,
        target = target.addr,
        fix_url = fix.url(),
        fix = fix.addr,
        tiny_url = tiny.url(),
        tiny = tiny.addr,
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, text).expect("write config");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;
    let outcomes = eventually(Duration::from_secs(15), "two recorded outcomes", || async {
        let a = v.get_json("/api/v1/alerts").await;
        let n = a["data"]["alerts"][0]["notifications"].as_array()?.clone();
        let has = |r: &str| n.iter().any(|o| o["receiver"] == r);
        (has("fix") && has("tiny")).then_some(n)
    })
    .await;
    let by = |r: &str| {
        outcomes
            .iter()
            .find(|o| o["receiver"] == r)
            .cloned()
            .unwrap_or_else(|| panic!("no outcome for {r}: {outcomes:#?}"))
    };
    let fixed = by("fix");
    assert_eq!(fixed["delivered"], true);
    assert!(
        fixed["detail"].as_str().unwrap_or("").starts_with("200"),
        "{fixed}"
    );
    let refused = by("tiny");
    assert_eq!(refused["delivered"], false);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap_or("")
            .contains("max_body_bytes"),
        "{refused}"
    );
    assert_eq!(tiny.attempts(), 0, "an oversized body is never sent");
    let req = &fix.requests()[0];
    let body: serde_json::Value = serde_json::from_str(&req.body).expect("json");
    assert_eq!(body["action"], "restart");
    assert_eq!(body["params"]["model"], "resnet");
    v.stop().await;
}

/// A route inside one of its mute time intervals sends nothing, and a
/// route outside its active intervals neither; without them, both send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_intervals_mute_routes() {
    let dir = TempDir::new("notify-mute");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    let target = Target::start(0.5).await;
    let hook = Webhook::start().await;
    let port = free_port();
    let route = |name: &str, extra: &str| {
        format!("{{ receiver = \"team\", matchers = ['alertname=\"{name}\"'], {extra} }}")
    };
    let cfg = config(
        &dir,
        &target,
        &hook,
        port,
        &format!(
            "group_by = [\"alertname\"]\ngroup_wait = \"0s\"\ngroup_interval = \"1s\"\n\
             routes = [{}, {}]\n\n\
             [[time_intervals]]\nname = \"always\"\n\
             [[time_intervals.time_intervals]]\ntimes = [{{ start_time = \"00:00\", end_time = \"24:00\" }}]\n\n\
             [[time_intervals]]\nname = \"never\"\n\
             [[time_intervals.time_intervals]]\nyears = [\"1999\"]\nlocation = \"Europe/Berlin\"",
            route("ErrorRatioHigh", "mute_time_intervals = [\"always\"]"),
            route("ErrorRatioCritical", "active_time_intervals = [\"never\"]"),
        ),
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let env = [("VIGIL_TEST_API_TOKEN", "s3cret")];
    let v = Vigil::start_with_env(&cfg, addr, &dir.path().join("vigil.log"), &env).await;
    eventually(Duration::from_secs(10), "both alerts firing", || async {
        let a = v.get_json("/api/v1/alerts").await;
        let n = a["data"]["alerts"]
            .as_array()?
            .iter()
            .filter(|a| a["state"] == "firing")
            .count();
        (n == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hook.requests().is_empty(), "{:?}", hook.received());
    // The control: the same routes without the intervals (a reload) send.
    let text = std::fs::read_to_string(&cfg)
        .expect("read config")
        .replace("mute_time_intervals = [\"always\"]", "")
        .replace("active_time_intervals = [\"never\"]", "");
    std::fs::write(&cfg, text).expect("write config");
    eventually(
        Duration::from_secs(15),
        "both alerts once unmuted",
        || async { (hook.requests().len() >= 2).then_some(()) },
    )
    .await;
    v.stop().await;
}
