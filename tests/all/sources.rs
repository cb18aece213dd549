//! Rules with a `source`: their query runs on a real Prometheus (Debian's
//! `prometheus`, 2.42) that scrapes a loopback target, reached directly or
//! through an authenticating proxy. The windows are backfilled from it with
//! a range query, alerts fire and resolve as for local rules, credentials
//! and headers reach it, and a query it refuses fails only its own rule.

use std::time::Duration;

use vigil_tests::{
    AuthProxy, Prometheus, Target, TempDir, Vigil, Webhook, eventually, free_port, install_plugins,
};

/// How often Prometheus scrapes the target.
const SCRAPE: Duration = Duration::from_millis(200);

/// The active alerts of one rule, from `/api/v1/alerts`.
async fn alerts_of(v: &Vigil, rule: &str) -> Vec<serde_json::Value> {
    let all = v.get_json("/api/v1/alerts").await;
    all["data"]["alerts"]
        .as_array()
        .map(|a| a.iter().filter(|x| x["rule"] == rule).cloned().collect())
        .unwrap_or_default()
}

fn write_config(dir: &TempDir, port: u16, body: &str) -> std::path::PathBuf {
    let text = format!(
        "data_dir = \"data\"\nplugin_dir = \"plugins\"\nlisten = \"127.0.0.1:{port}\"\n\n{body}"
    );
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_rules_backfill_fire_resolve_and_authenticate() {
    let dir = TempDir::new("sources");
    let target = Target::start(0.01).await;
    let Some(prom) = Prometheus::scraping(
        "sources::remote_rules_backfill_fire_resolve_and_authenticate",
        dir.path(),
        &[target.addr],
        SCRAPE,
    )
    .await
    else {
        return;
    };
    // A gateway in front of Prometheus: a bearer token under /tenant-ml,
    // basic authentication under /basic.
    let proxy = AuthProxy::start(
        prom.addr,
        &[
            ("tenant-ml", "Bearer proxy-t0ken"),
            ("basic", "Basic dmlnaWw6cHJvbS1wYXNz"), // vigil:prom-pass
        ],
    )
    .await;
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-webhook"],
    );
    std::fs::write(dir.path().join("token"), "proxy-t0ken\n").expect("token");
    std::fs::write(dir.path().join("prom.pass"), "prom-pass\n").expect("password");
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = write_config(
        &dir,
        port,
        &format!(
            r#"
[[sources]]
name = "gateway"
kind = "prometheus"
url = "http://{proxy}/tenant-ml/"
bearer_token_file = "token"
headers = {{ "X-Scope-OrgID" = "ml" }}
timeout = "2s"

[[sources]]
name = "basic"
kind = "prometheus"
url = "http://{proxy}/basic"
basic_auth = {{ username = "vigil", password_file = "prom.pass" }}

[[sources]]
name = "anonymous"
kind = "prometheus"
url = "http://{proxy}/tenant-ml"

# Fires at its first step only if its window was backfilled: it needs 8
# points, one step adds one.
[[rules]]
name = "Backfilled"
source = "basic"
query = 'model_up{{job="model-server"}}'
every = "500ms"
window = "5s"
check = "threshold"
params = {{ above = 0.5, min_points = 8 }}

[[rules]]
name = "ErrorRatioHigh"
source = "gateway"
query = 'model_error_ratio{{model="resnet"}}'
every = "300ms"
window = "10s"
check = "threshold"
params = {{ above = 0.05 }}
for = "1s"
labels = {{ severity = "critical" }}
annotations = {{ summary = "Error ratio {{{{ $value | humanizePercentage }}}} on {{{{ $labels.model }}}}" }}

[[rules]]
name = "NoCredentials"
source = "anonymous"
query = "model_up"
every = "500ms"

{receiver}
"#,
            proxy = proxy.addr,
            receiver = hook.receiver_toml("team"),
        ),
    );
    // Five seconds of history in Prometheus before Vigil starts.
    prom.wait_for_value(
        "count_over_time(model_up[5s])",
        20.0,
        Duration::from_secs(30),
    )
    .await;

    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;

    // Backfill: the first steps already see 8 points or more.
    let (evaluations, points) = eventually(
        Duration::from_secs(10),
        "the first evaluation of Backfilled",
        || async {
            let r = v.rule("Backfilled").await;
            let n = r["evaluations"].as_u64().filter(|&n| n >= 1)?;
            Some((n, r["window_points"].as_u64()?))
        },
    )
    .await;
    assert!(
        points >= 8 && points > evaluations,
        "{points} points after {evaluations} evaluation(s); log:\n{}",
        v.log_text()
    );
    let backfilled = eventually(Duration::from_secs(5), "Backfilled firing", || async {
        alerts_of(&v, "Backfilled").await.into_iter().next()
    })
    .await;
    let rule = v.rule("Backfilled").await;
    assert_eq!(rule["source"], "basic");
    assert!(rule["last_error"].is_null(), "{rule}");
    assert!(
        backfilled["active_at_ms"].as_i64() <= rule["last_evaluation_ms"].as_i64()
            && rule["evaluations"].as_u64() < Some(8),
        "fired before an unfilled window could have 8 points: {backfilled} {rule}"
    );

    // Nothing fires below the threshold.
    eventually(
        Duration::from_secs(5),
        "ErrorRatioHigh to evaluate",
        || async { (v.rule("ErrorRatioHigh").await["evaluations"].as_u64()? >= 3).then_some(()) },
    )
    .await;
    assert!(alerts_of(&v, "ErrorRatioHigh").await.is_empty());

    // Cross the threshold: Prometheus scrapes it, the rule's next step sees
    // it; pending, then firing after `for`.
    target.set(0.2);
    eventually(Duration::from_secs(5), "a pending alert", || async {
        let a = alerts_of(&v, "ErrorRatioHigh").await;
        (a.first()?["state"] == "pending").then_some(())
    })
    .await;
    let notified = |status: &'static str| {
        let hook = &hook;
        async move {
            hook.alerts(status)
                .into_iter()
                .find(|a| a["labels"]["alertname"] == "ErrorRatioHigh")
        }
    };
    let firing = eventually(Duration::from_secs(10), "the firing notification", || {
        notified("firing")
    })
    .await;
    // The labels Prometheus' series carry, as a local rule's would.
    let labels = &firing["labels"];
    assert_eq!(labels["alertname"], "ErrorRatioHigh");
    assert_eq!(labels["model"], "resnet");
    assert_eq!(labels["job"], "model-server");
    assert_eq!(labels["instance"], target.addr.to_string());
    assert_eq!(labels["severity"], "critical");
    assert!(labels.get("__name__").is_none(), "{labels}");
    assert_eq!(
        firing["annotations"]["summary"],
        "Error ratio 20% on resnet"
    );

    // Back under: resolved, same labels.
    target.set(0.01);
    let resolved = eventually(Duration::from_secs(10), "the resolved notification", || {
        notified("resolved")
    })
    .await;
    assert_eq!(resolved["labels"], firing["labels"]);
    eventually(
        Duration::from_secs(5),
        "no ErrorRatioHigh alert",
        || async {
            alerts_of(&v, "ErrorRatioHigh")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;

    // Credentials and headers reached the gateway; without them, the rule
    // reports the 401 and the others carry on.
    let requests = proxy.requests();
    let under = |prefix: &str, api: &str| {
        requests
            .iter()
            .filter(|r| r.path == format!("/{prefix}/api/v1/{api}"))
            .count()
    };
    assert_eq!(under("basic", "query_range"), 1, "one backfill");
    assert!(under("basic", "query") >= 1);
    assert!(under("tenant-ml", "query_range") >= 1);
    let header = |r: &vigil_tests::Request, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let gateway: Vec<_> = requests
        .iter()
        .filter(|r| header(r, "authorization").as_deref() == Some("Bearer proxy-t0ken"))
        .collect();
    assert!(!gateway.is_empty());
    assert!(
        gateway
            .iter()
            .all(|r| header(r, "x-scope-orgid").as_deref() == Some("ml")),
        "every gateway request carries the tenant header"
    );
    let anonymous: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/tenant-ml/") && header(r, "authorization").is_none())
        .collect();
    assert!(!anonymous.is_empty());
    let rule = v.rule("NoCredentials").await;
    let error = rule["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("source \"anonymous\": HTTP 401"),
        "{rule}"
    );
    let metrics = v.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vigil_rule_evaluation_failures_total")
                && l.contains("rule=\"NoCredentials\"")
                && l.contains("reason=\"source\"")),
        "{metrics}"
    );
    assert!(v.rule("ErrorRatioHigh").await["last_error"].is_null());
    v.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_the_source_refuses_fails_only_its_rule() {
    let dir = TempDir::new("sources-error");
    let target = Target::start(0.01).await;
    let Some(prom) = Prometheus::scraping(
        "sources::a_query_the_source_refuses_fails_only_its_rule",
        dir.path(),
        &[target.addr],
        SCRAPE,
    )
    .await
    else {
        return;
    };
    let port = free_port();
    // Vigil does not parse a remote rule's query: Prometheus decides.
    let cfg = write_config(
        &dir,
        port,
        &format!(
            r#"
[[sources]]
name = "prom"
kind = "prometheus"
url = "http://{prom}"

[[rules]]
name = "BadQuery"
source = "prom"
query = "sum(model_up"
every = "300ms"

[[rules]]
name = "ModelUp"
source = "prom"
query = "model_up == 1"
every = "300ms"
labels = {{ severity = "info" }}
"#,
            prom = prom.addr,
        ),
    );
    prom.wait_for_value("count(model_up)", 1.0, Duration::from_secs(30))
        .await;
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;

    let bad = eventually(Duration::from_secs(10), "BadQuery to fail", || async {
        let r = v.rule("BadQuery").await;
        r["last_error"].is_string().then_some(r)
    })
    .await;
    let error = bad["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("source \"prom\": HTTP 400, bad_data: ") && error.contains("parse error"),
        "{bad}"
    );
    // The other rule evaluates on, and fires as Prometheus would: every
    // series the query returns.
    let alert = eventually(Duration::from_secs(10), "ModelUp firing", || async {
        alerts_of(&v, "ModelUp").await.into_iter().next()
    })
    .await;
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["labels"]["model"], "resnet");
    assert_eq!(alert["labels"]["job"], "model-server");
    assert_eq!(alert["labels"]["severity"], "info");
    let before = v.rule("ModelUp").await["evaluations"].as_u64();
    eventually(
        Duration::from_secs(5),
        "ModelUp to keep evaluating",
        || async { (v.rule("ModelUp").await["evaluations"].as_u64() > before).then_some(()) },
    )
    .await;
    assert!(v.rule("ModelUp").await["last_error"].is_null());
    // Still failing, counted under `reason="query"`, logged.
    assert!(v.rule("BadQuery").await["evaluations"].as_u64() > Some(1));
    let metrics = v.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vigil_rule_evaluation_failures_total")
                && l.contains("rule=\"BadQuery\"")
                && l.contains("reason=\"query\"")),
        "{metrics}"
    );
    let log = v.log_text();
    assert!(
        log.contains("rule evaluation failed") && log.contains("bad_data"),
        "{log}"
    );
    v.stop().await;
}
