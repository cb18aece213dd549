//! Vigil beside a real Alertmanager 0.25 (Debian's
//! `prometheus-alertmanager`), started on loopback by each test:
//! - the `alertmanager` notifier delivers firing and resolved alerts to it;
//! - the same alert stream through Vigil's pipeline and through
//!   Alertmanager's produces the same notifications, in the same order, at
//!   the same times (grouping, `group_wait`, `group_interval`,
//!   `repeat_interval`, nested routes with `continue`, `group_by = ["..."]`,
//!   inhibition and a silence).
//!
//! Without the binary the tests print a SKIPPED line and pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use vigil::notify::silence::{format_rfc3339, parse_rfc3339};
use vigil_tests::{
    Alertmanager, Target, TempDir, Vigil, Webhook, eventually, free_port, install_plugins,
};

const TOKEN: &str = "s3cret";

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The alerts Alertmanager lists now with this alertname.
async fn am_alerts(am: &Alertmanager, alertname: &str) -> Vec<Value> {
    am.alerts()
        .await
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .collect()
}

/// Vigil's `alertmanager` notifier posts a firing alert to a real
/// Alertmanager with its labels, annotations and start, and then its
/// resolution, which Alertmanager takes as the alert's end (it would
/// otherwise keep it active for its 5 minute `resolve_timeout`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_notifier_delivers_to_a_real_alertmanager() {
    let hook = Webhook::start().await;
    let Some(am) = Alertmanager::start(
        "alertmanager_notifier_delivers_to_a_real_alertmanager",
        &format!(
            "route:\n  receiver: hook\n  group_wait: 0s\n  group_interval: 1s\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: {}\n    send_resolved: true\n",
            hook.url()
        ),
    )
    .await
    else {
        return;
    };
    let dir = TempDir::new("am-notifier");
    install_plugins(&dir.path().join("plugins"), &["notify-alertmanager"]);
    let target = Target::start(0.01).await;
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
query = 'model_error_ratio > 0.05'
every = "200ms"
labels = {{ severity = "critical" }}
annotations = {{ summary = "Error ratio {{{{ $value | humanizePercentage }}}} on {{{{ $labels.model }}}}" }}

[[receivers]]
name = "am"
notifier = "alertmanager"
params = {{ url = "{am_url}" }}
allow_hosts = ["{am_addr}"]

[route]
receiver = "am"
group_wait = "0s"
group_interval = "1s"
"#,
        target = target.addr,
        am_url = am.url(),
        am_addr = am.addr,
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, text).expect("write config");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;
    eventually(Duration::from_secs(10), "the rule to evaluate", || async {
        (v.rule("ErrorRatioHigh").await["evaluations"].as_u64()? > 2).then_some(())
    })
    .await;
    assert!(am.alerts().await.is_empty(), "nothing fires below 5%");

    target.set(0.2);
    let got = eventually(
        Duration::from_secs(10),
        "the alert in Alertmanager",
        || async { am_alerts(&am, "ErrorRatioHigh").await.pop() },
    )
    .await;
    let instance = target.addr.to_string();
    assert_eq!(
        got["labels"],
        json!({
            "alertname": "ErrorRatioHigh",
            "instance": instance,
            "job": "model-server",
            "model": "resnet",
            "severity": "critical",
        })
    );
    assert_eq!(
        got["annotations"],
        json!({ "summary": "Error ratio 20% on resnet" })
    );
    assert_eq!(got["status"]["state"], "active");
    let ours = v.get_json("/api/v1/alerts").await;
    let active_at = ours["data"]["alerts"][0]["active_at_ms"]
        .as_i64()
        .expect("active_at_ms");
    let starts_at = parse_rfc3339(got["startsAt"].as_str().unwrap_or_default()).expect("startsAt");
    assert_eq!(starts_at, active_at, "startsAt is Vigil's activeAt");
    // Alertmanager routed it through its own pipeline too.
    let firing = eventually(
        Duration::from_secs(10),
        "Alertmanager's firing notification",
        || async { hook.alerts("firing").pop() },
    )
    .await;
    assert_eq!(firing["labels"], got["labels"]);

    let back = unix_ms();
    target.set(0.01);
    eventually(
        Duration::from_secs(10),
        "the alert to leave Alertmanager's active alerts",
        || async {
            am_alerts(&am, "ErrorRatioHigh")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let resolved = eventually(
        Duration::from_secs(10),
        "Alertmanager's resolved notification",
        || async { hook.alerts("resolved").pop() },
    )
    .await;
    assert_eq!(resolved["labels"], got["labels"]);
    let ends_at = parse_rfc3339(resolved["endsAt"].as_str().unwrap_or_default()).expect("endsAt");
    assert!(
        ends_at >= back - 1_000 && ends_at <= unix_ms(),
        "endsAt is when Vigil resolved the alert ({} ms after the recovery), not Alertmanager's timeout; log:\n{}",
        ends_at - back,
        v.log_text()
    );
    v.stop().await;
}

// Grouping and timers, compared with Alertmanager.
//
// A scripted timeline says which alerts fire when. Vigil scrapes it from a
// loopback target (one rule per alertname, `query = 'Name == 1'`, no
// check, `for = 0s`); Alertmanager gets the same alerts posted at the same
// moments, as Prometheus posts them. Both send to loopback webhooks and
// the notifications are compared.
//
// Timing: every group is created at a multiple of 4 s, so with
// `group_wait = 2s` and `group_interval = 4s` its flushes fall at 2 mod 4,
// and every event is at least 1 s away from a flush of its group: Vigil's
// scrape and evaluation delay (~250 ms) never moves an event across a
// flush. No group fills up again after it emptied: Alertmanager keeps an
// empty group (and its timer) until its 30 s maintenance, so a new alert
// would wait for the old timer, or for `group_wait` if the maintenance ran
// in between, where Vigil always waits `group_wait`.

/// One firing episode of one alert: it fires from second `from` of the
/// timeline until second `to`, when it resolves.
struct Episode {
    alertname: &'static str,
    labels: &'static [(&'static str, &'static str)],
    from: u64,
    to: u64,
}

/// A comparison: the routing (the same in both syntaxes), the timeline,
/// and what Alertmanager is expected to send.
struct Scenario<'a> {
    /// Receiver names, each with its `send_resolved`.
    receivers: &'static [(&'static str, bool)],
    /// `[route]` and anything after it (`[[inhibit_rules]]`).
    vigil_route: &'static str,
    /// `route:` and anything after it (`inhibit_rules:`).
    am_route: &'static str,
    episodes: &'a [Episode],
    /// Silences of an alertname, from before the start until this second.
    silences: &'static [(&'static str, u64)],
    /// The second of the last notification.
    end: u64,
    /// `(second, "receiver {group labels}", "status: alert=status, ...")`.
    expected: &'static [(u64, &'static str, &'static str)],
}

/// A loopback `/metrics` target serving whatever text the test sets.
struct Exposition {
    addr: SocketAddr,
    text: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Exposition {
    async fn start() -> Exposition {
        let text = Arc::new(Mutex::new(String::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind target");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route(
                "/metrics",
                get(|State(t): State<Arc<Mutex<String>>>| async move {
                    t.lock().expect("lock").clone()
                }),
            )
            .with_state(text.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Exposition { addr, text, task }
    }

    fn set(&self, text: String) {
        *self.text.lock().expect("lock") = text;
    }
}

impl Drop for Exposition {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scenario<'_> {
    fn alertnames(&self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.episodes.iter().map(|e| e.alertname).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Every episode's series at `second` (`None`: before the start), 1
    /// while it fires, 0 otherwise.
    fn exposition(&self, second: Option<u64>) -> String {
        let mut out = String::new();
        for name in self.alertnames() {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for e in self.episodes.iter().filter(|e| e.alertname == name) {
                let labels: Vec<String> = e
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                let value = u8::from(second.is_some_and(|s| e.from <= s && s < e.to));
                let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
            }
        }
        out
    }

    /// What Prometheus would post at `second`: every firing alert, with an
    /// end 10 s ahead (re-posted each second, so a stalled driver never
    /// lets Alertmanager resolve one by timeout), and the alerts resolving
    /// now, with an end of now.
    fn postable(&self, second: u64, t0_ms: i64, now_ms: i64, scrape: &[(&str, &str)]) -> Value {
        let alerts: Vec<Value> = self
            .episodes
            .iter()
            .filter(|e| e.from <= second && second <= e.to)
            .map(|e| {
                let mut labels = serde_json::Map::new();
                labels.insert("alertname".into(), json!(e.alertname));
                for (k, v) in e.labels.iter().chain(scrape) {
                    labels.insert(k.to_string(), json!(v));
                }
                let ends_at = if second < e.to {
                    now_ms + 10_000
                } else {
                    now_ms
                };
                json!({
                    "labels": labels,
                    "annotations": {},
                    "startsAt": format_rfc3339(t0_ms + 1_000 * e.from as i64),
                    "endsAt": format_rfc3339(ends_at),
                })
            })
            .collect();
        Value::Array(alerts)
    }

    fn vigil_config(&self, port: u16, target: SocketAddr, hook: &Webhook) -> String {
        let mut out = format!(
            r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[api]
token_env = "VIGIL_TEST_API_TOKEN"

[[targets]]
job = "cmp"
url = "http://{target}/metrics"
interval = "200ms"
timeout = "150ms"
"#
        );
        for name in self.alertnames() {
            let _ = write!(
                out,
                "\n[[rules]]\nname = \"{name}\"\nquery = '{name} == 1'\nevery = \"200ms\"\n"
            );
        }
        for (r, send_resolved) in self.receivers {
            let _ = write!(
                out,
                "\n[[receivers]]\nname = \"{r}\"\nnotifier = \"webhook\"\nparams = {{ url = \"{}\" }}\nallow_hosts = [\"{}\"]\ntimeout = \"2s\"\nsend_resolved = {send_resolved}\n",
                hook.url(),
                hook.addr
            );
        }
        out.push('\n');
        out.push_str(self.vigil_route);
        out
    }

    fn am_config(&self, hook: &Webhook) -> String {
        let mut out = String::from("receivers:\n");
        for (r, send_resolved) in self.receivers {
            let _ = write!(
                out,
                "- name: {r}\n  webhook_configs:\n  - url: {}\n    send_resolved: {send_resolved}\n",
                hook.url()
            );
        }
        out.push_str(self.am_route);
        out
    }
}

/// A label set as `{a="1",b="2"}`, sorted, without the pairs every alert
/// shares (`job` and `instance` of the scrape).
fn show_labels(labels: &Value, hide: &[(&str, &str)]) -> String {
    let pairs: BTreeMap<&str, &str> = labels
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .filter(|p| !hide.contains(p))
        .collect();
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// One notification as compared.
#[derive(Debug, Clone, PartialEq)]
struct Note {
    /// Seconds since the timeline started.
    at: f64,
    /// `receiver {group labels}`.
    group: String,
    /// `status: Name{labels}=status, ...`, the alerts sorted.
    line: String,
    /// The labels and annotations all alerts share, and the group key,
    /// compared with Alertmanager's but not spelled out in the scenarios.
    common: String,
}

fn normalise(at: f64, body: &Value, hide: &[(&str, &str)]) -> Note {
    let mut alerts: Vec<String> = body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("?");
            let mut hide = hide.to_vec();
            hide.push(("alertname", name));
            format!(
                "{name}{}={}",
                show_labels(&a["labels"], &hide),
                a["status"].as_str().unwrap_or("?")
            )
        })
        .collect();
    alerts.sort();
    Note {
        at,
        group: format!(
            "{} {}",
            body["receiver"].as_str().unwrap_or("?"),
            show_labels(&body["groupLabels"], hide)
        ),
        line: format!(
            "{}: {}",
            body["status"].as_str().unwrap_or("?"),
            alerts.join(", ")
        ),
        common: format!(
            "commonLabels {} commonAnnotations {} groupKey {}",
            show_labels(&body["commonLabels"], hide),
            show_labels(&body["commonAnnotations"], &[]),
            body["groupKey"]
        ),
    }
}

/// Notifications per group, in order of arrival.
type PerGroup = BTreeMap<String, Vec<Note>>;

fn per_group(hook: &Webhook, t0: Instant, hide: &[(&str, &str)]) -> PerGroup {
    let mut out = PerGroup::new();
    for (at, body) in hook.received() {
        let n = normalise(at.saturating_duration_since(t0).as_secs_f64(), &body, hide);
        out.entry(n.group.clone()).or_default().push(n);
    }
    out
}

/// The groups whose sequences of `field` differ between `a` and `b`,
/// described; empty if none.
fn differences(
    (a_name, a): (&str, &PerGroup),
    (b_name, b): (&str, &PerGroup),
    field: fn(&Note) -> &str,
) -> String {
    let groups: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = String::new();
    for g in groups {
        let notes = |p: &PerGroup| -> Vec<Note> { p.get(g).cloned().unwrap_or_default() };
        let (xs, ys) = (notes(a), notes(b));
        if xs.iter().map(field).ne(ys.iter().map(field)) {
            let _ = writeln!(out, "{g}");
            for (name, notes) in [(a_name, &xs), (b_name, &ys)] {
                let _ = writeln!(out, "  {name}:");
                for n in notes {
                    let _ = writeln!(out, "    {:6.2}s  {}", n.at, field(n));
                }
            }
        }
    }
    out
}

/// Every notification in order of arrival, one per line.
fn table(g: &PerGroup) -> String {
    let mut all: Vec<&Note> = g.values().flatten().collect();
    all.sort_by(|a, b| a.at.total_cmp(&b.at));
    all.iter()
        .map(|n| {
            format!(
                "  {:6.2}s  {}  {}\n            {}\n",
                n.at, n.group, n.line, n.common
            )
        })
        .collect()
}

/// Runs `s` through Vigil and Alertmanager at once and compares what their
/// webhooks received.
async fn compare(test: &str, s: &Scenario<'_>) {
    let am_hook = Webhook::start().await;
    let Some(am) = Alertmanager::start(test, &s.am_config(&am_hook)).await else {
        return;
    };
    let dir = TempDir::new("am-compare");
    install_plugins(&dir.path().join("plugins"), &["notify-webhook"]);
    let target = Exposition::start().await;
    target.set(s.exposition(None));
    let hook = Webhook::start().await;
    let port = free_port();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, s.vigil_config(port, target.addr, &hook)).expect("write config");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start_with_env(
        &cfg,
        addr,
        &dir.path().join("vigil.log"),
        &[("VIGIL_TEST_API_TOKEN", TOKEN)],
    )
    .await;
    let first = s.alertnames()[0];
    eventually(Duration::from_secs(10), "the rules to evaluate", || async {
        (v.rule(first).await["evaluations"].as_u64()? > 2).then_some(())
    })
    .await;

    // The timeline starts a second from now; silences are made before.
    let t0 = Instant::now() + Duration::from_secs(1);
    let t0_ms = unix_ms() + 1_000;
    let client = reqwest::Client::new();
    for (alertname, until) in s.silences {
        let silence = json!({
            "matchers": [{ "name": "alertname", "value": alertname, "isRegex": false, "isEqual": true }],
            "startsAt": format_rfc3339(unix_ms()),
            "endsAt": format_rfc3339(t0_ms + 1_000 * *until as i64),
            "createdBy": "test",
            "comment": "compared with Alertmanager",
        });
        am.post_silence(&silence).await;
        let r = client
            .post(format!("http://{addr}/api/v1/silences"))
            .bearer_auth(TOKEN)
            .json(&silence)
            .send()
            .await
            .expect("POST /api/v1/silences");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    let instance = target.addr.to_string();
    let scrape = [("job", "cmp"), ("instance", instance.as_str())];
    for second in 0..=s.end {
        tokio::time::sleep_until((t0 + Duration::from_secs(second)).into()).await;
        target.set(s.exposition(Some(second)));
        let alerts = s.postable(second, t0_ms, unix_ms(), &scrape);
        if !alerts.as_array().is_some_and(Vec::is_empty) {
            am.post_alerts(&client, &alerts).await;
        }
    }
    tokio::time::sleep_until((t0 + Duration::from_millis(1_000 * s.end + 2_500)).into()).await;

    let vigil = per_group(&hook, t0, &scrape);
    let alertmanager = per_group(&am_hook, t0, &scrape);
    let report = format!(
        "Vigil:\n{}Alertmanager:\n{}",
        table(&vigil),
        table(&alertmanager)
    );
    let ours = ("Vigil", &vigil);
    let theirs = ("Alertmanager", &alertmanager);
    let diff = differences(ours, theirs, |n| &n.line);
    assert!(
        diff.is_empty(),
        "Vigil and Alertmanager sent different notifications:\n{diff}\n{report}"
    );
    let diff = differences(ours, theirs, |n| &n.common);
    assert!(
        diff.is_empty(),
        "Vigil and Alertmanager differ in common labels or group keys:\n{diff}\n{report}"
    );
    for (group, notes) in &vigil {
        for (v, a) in notes.iter().zip(&alertmanager[group]) {
            assert!(
                (v.at - a.at).abs() < 1.0,
                "{group} {}: Vigil sent it at {:.2}s, Alertmanager at {:.2}s\n{report}",
                v.line,
                v.at,
                a.at
            );
        }
    }
    // The timeline does what it is meant to (so the comparison covers
    // batching, late joins, resolutions, inhibition, silences, repeats).
    let mut expected = PerGroup::new();
    for (second, group, line) in s.expected {
        expected.entry(group.to_string()).or_default().push(Note {
            at: *second as f64,
            group: group.to_string(),
            line: line.to_string(),
            common: String::new(),
        });
    }
    let diff = differences(theirs, ("expected", &expected), |n| &n.line);
    assert!(
        diff.is_empty(),
        "Alertmanager did not send what the timeline expects:\n{diff}\n{report}"
    );
    for (group, theirs) in &alertmanager {
        for (a, e) in theirs.iter().zip(&expected[group]) {
            assert!(
                (a.at - e.at).abs() < 0.75,
                "{group} {}: Alertmanager sent it at {:.2}s, expected at {}s\n{report}",
                a.line,
                a.at,
                e.at
            );
        }
    }
    eprintln!("{report}");
    v.stop().await;
}

/// An episode, in one line.
const fn ep(
    alertname: &'static str,
    labels: &'static [(&'static str, &'static str)],
    from: u64,
    to: u64,
) -> Episode {
    Episode {
        alertname,
        labels,
        from,
        to,
    }
}

/// `group_by = ["alertname"]` at the root: a group whose alerts join
/// during `group_wait` and later, then resolve one by one (one of them
/// fires and resolves between two flushes); single-alert groups; a group
/// whose only alert resolves before its first flush; an inhibition that
/// ends mid-way; a silence that expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_inhibition_and_silences_match_alertmanager() {
    const CRIT_A: &[(&str, &str)] = &[("model", "a"), ("severity", "critical")];
    const CRIT_B: &[(&str, &str)] = &[("model", "b"), ("severity", "critical")];
    const CRIT_C: &[(&str, &str)] = &[("model", "c"), ("severity", "critical")];
    const CRIT_Z: &[(&str, &str)] = &[("model", "z"), ("severity", "critical")];
    const WARN_A: &[(&str, &str)] = &[("model", "a"), ("severity", "warning")];
    const WARN_D: &[(&str, &str)] = &[("model", "d"), ("severity", "warning")];
    const WARN_E: &[(&str, &str)] = &[("model", "e"), ("severity", "warning")];
    const INFO_A: &[(&str, &str)] = &[("model", "a"), ("severity", "info")];
    const INFO_X: &[(&str, &str)] = &[("model", "x"), ("severity", "info")];
    let s = Scenario {
        receivers: &[("team", true)],
        vigil_route: r#"
[route]
receiver = "team"
group_by = ["alertname"]
group_wait = "2s"
group_interval = "4s"
repeat_interval = "1h"

[[inhibit_rules]]
source_matchers = ['severity="critical"']
target_matchers = ['severity="warning"']
equal = ["model"]
"#,
        am_route: r#"
route:
  receiver: team
  group_by: [alertname]
  group_wait: 2s
  group_interval: 4s
  repeat_interval: 1h
inhibit_rules:
- source_matchers: ['severity="critical"']
  target_matchers: ['severity="warning"']
  equal: [model]
"#,
        episodes: &[
            ep("ModelDown", CRIT_A, 0, 8),
            ep("ModelDown", CRIT_B, 1, 12),
            ep("ModelDown", CRIT_C, 4, 12),
            // Fires and resolves between the flushes at 6 and 10.
            ep("ModelDown", CRIT_Z, 7, 9),
            // Inhibited by ModelDown{model="a"} until 8.
            ep("ModelLatency", WARN_A, 4, 16),
            ep("ModelLatency", WARN_D, 8, 20),
            // Silenced until 8.
            ep("DiskFull", INFO_A, 0, 20),
            ep("GpuHot", WARN_E, 12, 16),
            // Gone before its group's first flush: never notified.
            ep("Blip", INFO_X, 4, 5),
        ],
        silences: &[("DiskFull", 8)],
        end: 22,
        expected: &[
            (
                2,
                r#"team {alertname="ModelDown"}"#,
                r#"firing: ModelDown{model="a",severity="critical"}=firing, ModelDown{model="b",severity="critical"}=firing"#,
            ),
            (
                6,
                r#"team {alertname="ModelDown"}"#,
                r#"firing: ModelDown{model="a",severity="critical"}=firing, ModelDown{model="b",severity="critical"}=firing, ModelDown{model="c",severity="critical"}=firing"#,
            ),
            (
                10,
                r#"team {alertname="ModelDown"}"#,
                r#"firing: ModelDown{model="a",severity="critical"}=resolved, ModelDown{model="b",severity="critical"}=firing, ModelDown{model="c",severity="critical"}=firing, ModelDown{model="z",severity="critical"}=resolved"#,
            ),
            (
                14,
                r#"team {alertname="ModelDown"}"#,
                r#"resolved: ModelDown{model="b",severity="critical"}=resolved, ModelDown{model="c",severity="critical"}=resolved"#,
            ),
            (
                10,
                r#"team {alertname="ModelLatency"}"#,
                r#"firing: ModelLatency{model="a",severity="warning"}=firing, ModelLatency{model="d",severity="warning"}=firing"#,
            ),
            (
                18,
                r#"team {alertname="ModelLatency"}"#,
                r#"firing: ModelLatency{model="a",severity="warning"}=resolved, ModelLatency{model="d",severity="warning"}=firing"#,
            ),
            (
                22,
                r#"team {alertname="ModelLatency"}"#,
                r#"resolved: ModelLatency{model="d",severity="warning"}=resolved"#,
            ),
            (
                10,
                r#"team {alertname="DiskFull"}"#,
                r#"firing: DiskFull{model="a",severity="info"}=firing"#,
            ),
            (
                22,
                r#"team {alertname="DiskFull"}"#,
                r#"resolved: DiskFull{model="a",severity="info"}=resolved"#,
            ),
            (
                14,
                r#"team {alertname="GpuHot"}"#,
                r#"firing: GpuHot{model="e",severity="warning"}=firing"#,
            ),
            (
                18,
                r#"team {alertname="GpuHot"}"#,
                r#"resolved: GpuHot{model="e",severity="warning"}=resolved"#,
            ),
        ],
    };
    compare("grouping_inhibition_and_silences_match_alertmanager", &s).await;
}

/// Nested routes: `team="ml"` alerts each in their own group
/// (`group_by = ["..."]`) with `continue`, so critical ones also reach the
/// pager route, which repeats every 6 s; the rest go to the root, whose
/// receiver has `send_resolved = false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_routes_continue_and_repeats_match_alertmanager() {
    const ML_WARN_A: &[(&str, &str)] = &[("model", "a"), ("severity", "warning"), ("team", "ml")];
    const ML_CRIT_B: &[(&str, &str)] = &[("model", "b"), ("severity", "critical"), ("team", "ml")];
    const ML_CRIT_E: &[(&str, &str)] = &[("model", "e"), ("severity", "critical"), ("team", "ml")];
    const CRIT_C: &[(&str, &str)] = &[("model", "c"), ("severity", "critical")];
    const CRIT_F: &[(&str, &str)] = &[("model", "f"), ("severity", "critical")];
    const WARN_A: &[(&str, &str)] = &[("model", "a"), ("severity", "warning")];
    const INFO_B: &[(&str, &str)] = &[("model", "b"), ("severity", "info")];
    const INFO_C: &[(&str, &str)] = &[("model", "c"), ("severity", "info")];
    let s = Scenario {
        receivers: &[("default", false), ("ml", true), ("pager", true)],
        vigil_route: r#"
[route]
receiver = "default"
group_by = ["alertname"]
group_wait = "2s"
group_interval = "4s"
repeat_interval = "1h"
routes = [
  { receiver = "ml", matchers = ['team="ml"'], group_by = ["..."], continue = true },
  { receiver = "pager", matchers = ['severity="critical"'], repeat_interval = "6s" },
]
"#,
        am_route: r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 2s
  group_interval: 4s
  repeat_interval: 1h
  routes:
  - receiver: ml
    matchers: ['team="ml"']
    group_by: ['...']
    continue: true
  - receiver: pager
    matchers: ['severity="critical"']
    repeat_interval: 6s
"#,
        episodes: &[
            ep("Slow", ML_WARN_A, 0, 12),
            ep("Slow", ML_CRIT_B, 0, 16),
            ep("Slow", ML_CRIT_E, 4, 20),
            ep("Errors", CRIT_C, 0, 8),
            ep("Errors", CRIT_F, 1, 8),
            ep("Drift", WARN_A, 4, 12),
            ep("Drift", INFO_B, 4, 20),
            ep("Drift", INFO_C, 12, 20),
        ],
        silences: &[],
        end: 22,
        expected: &[
            (
                2,
                r#"ml {alertname="Slow",model="a",severity="warning",team="ml"}"#,
                r#"firing: Slow{model="a",severity="warning",team="ml"}=firing"#,
            ),
            (
                14,
                r#"ml {alertname="Slow",model="a",severity="warning",team="ml"}"#,
                r#"resolved: Slow{model="a",severity="warning",team="ml"}=resolved"#,
            ),
            (
                2,
                r#"ml {alertname="Slow",model="b",severity="critical",team="ml"}"#,
                r#"firing: Slow{model="b",severity="critical",team="ml"}=firing"#,
            ),
            (
                18,
                r#"ml {alertname="Slow",model="b",severity="critical",team="ml"}"#,
                r#"resolved: Slow{model="b",severity="critical",team="ml"}=resolved"#,
            ),
            (
                6,
                r#"ml {alertname="Slow",model="e",severity="critical",team="ml"}"#,
                r#"firing: Slow{model="e",severity="critical",team="ml"}=firing"#,
            ),
            (
                22,
                r#"ml {alertname="Slow",model="e",severity="critical",team="ml"}"#,
                r#"resolved: Slow{model="e",severity="critical",team="ml"}=resolved"#,
            ),
            (
                2,
                r#"pager {alertname="Slow"}"#,
                r#"firing: Slow{model="b",severity="critical",team="ml"}=firing"#,
            ),
            (
                6,
                r#"pager {alertname="Slow"}"#,
                r#"firing: Slow{model="b",severity="critical",team="ml"}=firing, Slow{model="e",severity="critical",team="ml"}=firing"#,
            ),
            // Nothing new at 10; at 14, 8 s after the last one, a repeat.
            (
                14,
                r#"pager {alertname="Slow"}"#,
                r#"firing: Slow{model="b",severity="critical",team="ml"}=firing, Slow{model="e",severity="critical",team="ml"}=firing"#,
            ),
            (
                18,
                r#"pager {alertname="Slow"}"#,
                r#"firing: Slow{model="b",severity="critical",team="ml"}=resolved, Slow{model="e",severity="critical",team="ml"}=firing"#,
            ),
            (
                22,
                r#"pager {alertname="Slow"}"#,
                r#"resolved: Slow{model="e",severity="critical",team="ml"}=resolved"#,
            ),
            (
                2,
                r#"pager {alertname="Errors"}"#,
                r#"firing: Errors{model="c",severity="critical"}=firing, Errors{model="f",severity="critical"}=firing"#,
            ),
            (
                10,
                r#"pager {alertname="Errors"}"#,
                r#"resolved: Errors{model="c",severity="critical"}=resolved, Errors{model="f",severity="critical"}=resolved"#,
            ),
            (
                6,
                r#"default {alertname="Drift"}"#,
                r#"firing: Drift{model="a",severity="warning"}=firing, Drift{model="b",severity="info"}=firing"#,
            ),
            // A new alert: sent without the resolved one (no send_resolved),
            // and the resolutions at 20 are never sent.
            (
                14,
                r#"default {alertname="Drift"}"#,
                r#"firing: Drift{model="b",severity="info"}=firing, Drift{model="c",severity="info"}=firing"#,
            ),
        ],
    };
    compare("nested_routes_continue_and_repeats_match_alertmanager", &s).await;
}
