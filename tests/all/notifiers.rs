//! Every notifier through the real binary: one `vigil` with a receiver per
//! notifier plugin, each pointing at its own loopback HTTP receiver (or, for
//! e-mail, a loopback SMTP server), one rule that fires and resolves, and
//! routes with `continue` so every receiver gets every notification. What
//! arrives (path, headers, body) is checked against golden files in
//! `tests/golden/notifiers/`, after what varies between runs (ports, times,
//! the fingerprint and the hashes that depend on them) is replaced by
//! placeholders. Run with `VIGIL_BLESS=1` to rewrite the golden files.
//!
//! The same process also has a receiver that always answers 503 (it must
//! not delay the others) and one whose host is not in its `allow_hosts`
//! (it must never be contacted, and its failure must show in `/metrics`);
//! the remediation notifier must not call its endpoint on resolution.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigil_tests::{
    ReceivedMail, Request, SmtpServer, Target, TempDir, Vigil, Webhook, eventually, free_port,
    install_plugins, vigil_bin,
};

const WAIT: Duration = Duration::from_secs(20);

/// The HTTP notifiers under test, each with the receiver's name (the same as
/// the notifier's) and the path its URL posts to.
const HTTP: [(&str, &str); 6] = [
    ("slack", "/services/T000/B000/XXXX"),
    ("msteams", "/workflows/ml-alerts/triggers/manual/run"),
    ("webhook", "/hook"),
    ("pagerduty", "/v2/enqueue"),
    ("sms", "/2010-04-01/Accounts/AC123/Messages.json"),
    ("remediation", "/v1/actions"),
];

/// One loopback receiver per notifier, plus the failing and the forbidden
/// one, and an SMTP server for e-mail.
struct Receivers {
    hooks: Vec<(&'static str, Webhook)>,
    failing: Webhook,
    forbidden: Webhook,
    smtp: SmtpServer,
}

impl Receivers {
    async fn start() -> Receivers {
        let mut hooks = Vec::new();
        for (name, _) in HTTP {
            hooks.push((name, Webhook::start().await));
        }
        let failing = Webhook::start().await;
        failing.set_status(503);
        Receivers {
            hooks,
            failing,
            forbidden: Webhook::start().await,
            smtp: SmtpServer::start(),
        }
    }

    fn hook(&self, name: &str) -> &Webhook {
        self.hooks
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| h)
            .unwrap_or_else(|| panic!("no receiver {name}"))
    }

    fn url(&self, name: &str) -> String {
        let path = HTTP
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .unwrap_or("/");
        format!("http://{}{path}", self.hook(name).addr)
    }
}

/// The configuration: a rule over the target's gauge and a route that
/// sends every alert to every receiver, the failing one first.
fn config(dir: &TempDir, port: u16, target: &Target, r: &Receivers) -> PathBuf {
    let allow = |name: &str| r.hook(name).addr.to_string();
    let text = format!(
        r##"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"
external_url = "http://vigil.example.com"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Vigil <vigil@alerts.example.com>"

[[targets]]
job = "model-server"
url = "http://{target}/metrics"
interval = "200ms"
timeout = "150ms"

[[rules]]
name = "ErrorRatioHigh"
query = 'model_error_ratio'
every = "200ms"
window = "10s"
check = "threshold"
params = {{ above = 0.05 }}
labels = {{ severity = "critical" }}
annotations = {{ summary = "Error ratio {{{{ $value | humanizePercentage }}}} on {{{{ $labels.model }}}}", description = "More than 5% of requests to {{{{ $labels.model }}}} fail." }}

[[receivers]]
name = "failing"
notifier = "webhook"
params = {{ url = "{failing_url}" }}
allow_hosts = ["{failing}"]
timeout = "1s"
retry_for = "1m"

[[receivers]]
name = "forbidden"
notifier = "webhook"
params = {{ url = "{forbidden_url}" }}
allow_hosts = ["hooks.example.com"]

[[receivers]]
name = "slack"
notifier = "slack"
params = {{ url = "{slack_url}", channel = "#ml-alerts", username = "vigil" }}
allow_hosts = ["{slack}"]

[[receivers]]
name = "msteams"
notifier = "msteams"
params = {{ url = "{msteams_url}" }}
allow_hosts = ["{msteams}"]

[[receivers]]
name = "webhook"
notifier = "webhook"
params = {{ url = "{webhook_url}", headers = {{ Authorization = "Bearer hook-token" }} }}
allow_hosts = ["{webhook}"]

[[receivers]]
name = "pagerduty"
notifier = "pagerduty"
params = {{ routing_key = "0123456789abcdef0123456789abcdef", url = "{pagerduty_url}", component = "{{{{ .CommonLabels.model }}}}" }}
allow_hosts = ["{pagerduty}"]

[[receivers]]
name = "sms"
notifier = "sms"
params = {{ url = "{sms_url}", from = "+15550001234", to = ["+15550005678", "+15550009999"], username = "AC123", password = "s3cret" }}
allow_hosts = ["{sms}"]

[[receivers]]
name = "remediation"
notifier = "remediation"
params = {{ url = "{remediation_url}", action = "restart", params = {{ model = "{{{{ .Labels.model }}}}" }}, headers = {{ Authorization = "Bearer ops-token" }} }}
allow_hosts = ["{remediation}"]

[[receivers]]
name = "email"
notifier = "email"
params = {{ to = ["ML On-call <ml-oncall@example.com>"] }}

[route]
receiver = "webhook"
group_by = ["..."]
group_wait = "0s"
group_interval = "1s"

[[route.routes]]
receiver = "failing"
continue = true

[[route.routes]]
receiver = "forbidden"
continue = true

[[route.routes]]
receiver = "slack"
continue = true

[[route.routes]]
receiver = "msteams"
continue = true

[[route.routes]]
receiver = "pagerduty"
continue = true

[[route.routes]]
receiver = "sms"
continue = true

[[route.routes]]
receiver = "remediation"
continue = true

[[route.routes]]
receiver = "email"
continue = true

[[route.routes]]
receiver = "webhook"
"##,
        smtp_port = r.smtp.port,
        target = target.addr,
        failing_url = r.failing.url(),
        failing = r.failing.addr,
        forbidden_url = r.forbidden.url(),
        slack_url = r.url("slack"),
        slack = allow("slack"),
        msteams_url = r.url("msteams"),
        msteams = allow("msteams"),
        webhook_url = r.url("webhook"),
        webhook = allow("webhook"),
        pagerduty_url = r.url("pagerduty"),
        pagerduty = allow("pagerduty"),
        sms_url = r.url("sms"),
        sms = allow("sms"),
        remediation_url = r.url("remediation"),
        remediation = allow("remediation"),
    );
    let path = dir.path().join("vigil.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The requests of one notification at one notifier (SMS sends one per
/// recipient).
type Sent = (&'static str, Vec<Request>);

/// What a notifier sent when the alert fired (0) or resolved (1), `Some`
/// once it has.
fn phase(hook: &Webhook, name: &str, index: usize) -> Option<Vec<Request>> {
    let requests = hook.requests();
    let per = if name == "sms" { 2 } else { 1 };
    (requests.len() >= (index + 1) * per).then(|| requests[index * per..(index + 1) * per].to_vec())
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn json(r: &Request) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// The sum of a counter's samples in Prometheus text that have all of
/// `labels`.
fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (series, value) = rest.rsplit_once(' ')?;
            let matches = (series.is_empty() || series.starts_with('{'))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notifier_delivers_its_golden_payload_through_the_binary() {
    let dir = TempDir::new("notifiers");
    install_plugins(
        &dir.path().join("plugins"),
        &[
            "check-threshold",
            "notify-slack",
            "notify-msteams",
            "notify-webhook",
            "notify-pagerduty",
            "notify-sms",
            "notify-remediation",
            "notify-email",
        ],
    );
    let target = Target::start(0.01).await;
    let r = Receivers::start().await;
    let port = free_port();
    let cfg = config(&dir, port, &target, &r);
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;
    eventually(WAIT, "the rule to evaluate", || async {
        (v.rule("ErrorRatioHigh").await["evaluations"].as_u64()? > 2).then_some(())
    })
    .await;
    for (name, hook) in &r.hooks {
        assert!(
            hook.requests().is_empty(),
            "{name}: nothing below the threshold"
        );
    }

    // Cross the threshold: every receiver hears of it.
    let crossed = Instant::now();
    target.set(0.2);
    let mut firing = Vec::new();
    for (name, hook) in &r.hooks {
        let got = eventually(
            WAIT,
            &format!("the firing notification at {name}"),
            || async { phase(hook, name, 0) },
        )
        .await;
        firing.push((*name, got));
    }
    r.smtp.wait_for(1, WAIT).await;

    // The failing receiver, first in the routing tree, is being retried
    // meanwhile: it delayed nobody.
    for (name, requests) in &firing {
        let late = requests[0].at.duration_since(crossed);
        assert!(
            late < Duration::from_secs(5),
            "{name} got its notification {late:?} after the crossing; log:\n{}",
            v.log_text()
        );
    }
    eventually(WAIT, "retries of the failing receiver", || async {
        (r.failing.attempts() >= 2).then_some(())
    })
    .await;

    // The alert as the API shows it: its fingerprint, and what each
    // receiver's delivery came to.
    let alert = eventually(WAIT, "outcomes recorded with the alert", || async {
        let a = v.get_json("/api/v1/alerts").await["data"]["alerts"][0].clone();
        let outcomes = a["notifications"].as_array()?;
        let has = |r: &str| outcomes.iter().any(|o| o["receiver"] == r);
        (has("forbidden") && has("slack")).then_some(a)
    })
    .await;
    let fingerprint = alert["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    let forbidden = alert["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["receiver"] == "forbidden")
        .cloned()
        .unwrap_or_default();
    assert_eq!(forbidden["delivered"], false, "{forbidden}");
    assert!(
        forbidden["detail"]
            .as_str()
            .is_some_and(|d| d.contains("allow_hosts")),
        "{forbidden}"
    );

    // Come back under the threshold: every receiver but remediation hears
    // of the resolution.
    target.set(0.01);
    let mut resolved = Vec::new();
    for (name, hook) in &r.hooks {
        if *name == "remediation" {
            continue;
        }
        let got = eventually(
            WAIT,
            &format!("the resolved notification at {name}"),
            || async { phase(hook, name, 1) },
        )
        .await;
        resolved.push((*name, got));
    }
    let mails = r.smtp.wait_for(2, WAIT).await;
    // Group intervals pass: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, hook) in &r.hooks {
        let expected = match *name {
            "remediation" => 1,
            "sms" => 4,
            _ => 2,
        };
        assert_eq!(
            hook.requests().len(),
            expected,
            "{name}: {:#?}",
            hook.requests()
        );
    }
    assert_eq!(
        r.smtp.received().len(),
        2,
        "one e-mail firing, one resolved"
    );

    // The forbidden receiver was never contacted; its failure is counted.
    assert_eq!(r.forbidden.attempts(), 0, "a host outside allow_hosts");
    let metrics = v.get_text("/metrics").await;
    let forbidden_dropped = counter(
        &metrics,
        "vigil_notifications_total",
        &[("receiver", "forbidden"), ("result", "dropped")],
    );
    assert!(forbidden_dropped >= 1.0, "{metrics}");
    assert_eq!(
        counter(
            &metrics,
            "vigil_notifications_total",
            &[("receiver", "forbidden"), ("result", "sent")],
        ),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            "vigil_notifications_total",
            &[("receiver", "slack"), ("result", "sent")],
        ),
        2.0,
        "{metrics}"
    );
    assert!(
        counter(
            &metrics,
            "vigil_notification_retries_total",
            &[("receiver", "failing")],
        ) >= 1.0,
        "{metrics}"
    );
    assert!(r.failing.requests().is_empty());

    assert_requests(&firing, &resolved, &fingerprint);

    // The alert's times as the webhook has them: the start is when it
    // fired; every notifier must show these two.
    let done = json(&first("webhook", &resolved));
    let time = |key: &str| {
        let t = done["alerts"][0][key].as_str().unwrap_or_default();
        canonical(t).unwrap_or_else(|| panic!("{key} {t:?} is not a time"))
    };
    let (starts, ends) = (time("startsAt"), time("endsAt"));
    let fired_at = alert["fired_at_ms"].as_i64().expect("fired_at_ms");
    assert_eq!(starts, canonical_ms(fired_at), "startsAt is when it fired");
    assert!(ends > starts, "endsAt {ends} after startsAt {starts}");

    // The bodies against the golden files.
    let norm = Normaliser::new(
        &[
            (target.addr.to_string(), "<target>"),
            (addr.to_string(), "<vigil>"),
            (fingerprint, "<fingerprint>"),
        ],
        &[(starts, "<startsAt>"), (ends, "<endsAt>")],
    );
    assert_goldens(&norm, &firing, &resolved, &mails);
    v.stop().await;
}

/// The requests' method and path (the receivers record only POSTs), their
/// headers, and what must agree between them.
fn assert_requests(firing: &[Sent], resolved: &[Sent], fingerprint: &str) {
    for (name, requests) in firing.iter().chain(resolved) {
        let path = HTTP.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
        for req in requests {
            assert_eq!(Some(req.path.as_str()), path, "{name}");
            let agent = header(req, "user-agent").unwrap_or_default();
            assert!(agent.starts_with("vigil/"), "{name}: user-agent {agent:?}");
            let content_type = header(req, "content-type");
            if *name == "sms" {
                assert_eq!(content_type, Some("application/x-www-form-urlencoded"));
                // base64("AC123:s3cret")
                assert_eq!(header(req, "authorization"), Some("Basic QUMxMjM6czNjcmV0"));
            } else {
                assert_eq!(content_type, Some("application/json"), "{name}");
            }
        }
    }
    let hook = first("webhook", firing);
    assert_eq!(header(&hook, "authorization"), Some("Bearer hook-token"));
    assert_eq!(json(&hook)["alerts"][0]["fingerprint"], fingerprint);
    let fix = first("remediation", firing);
    assert_eq!(header(&fix, "authorization"), Some("Bearer ops-token"));
    let key = header(&fix, "idempotency-key").unwrap_or_default();
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "Idempotency-Key {key:?}"
    );
    assert_eq!(json(&fix)["idempotency_key"], key);
    // PagerDuty: trigger, then resolve of the same incident.
    let (trigger, resolve) = (
        json(&first("pagerduty", firing)),
        json(&first("pagerduty", resolved)),
    );
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(trigger["dedup_key"], resolve["dedup_key"]);
    let sms_to: Vec<String> = firing
        .iter()
        .find(|(n, _)| *n == "sms")
        .map(|(_, rs)| rs.iter().map(|r| form(&r.body)[0].1.clone()).collect())
        .unwrap_or_default();
    assert_eq!(sms_to, ["+15550005678", "+15550009999"]);
}

/// Each notifier's bodies, normalised, against its golden files.
fn assert_goldens(norm: &Normaliser, firing: &[Sent], resolved: &[Sent], mails: &[ReceivedMail]) {
    let mut goldens = Goldens::new();
    for (status, set) in [("firing", firing), ("resolved", resolved)] {
        for (name, requests) in set.iter() {
            let (ext, text) = if *name == "sms" {
                ("txt", norm.form_bodies(requests))
            } else {
                ("json", norm.json(&requests[0].body))
            };
            goldens.check(&format!("{name}-{status}.{ext}"), &text);
        }
    }
    for (mail, phase) in mails.iter().zip(["firing", "resolved"]) {
        goldens.check(&format!("email-{phase}.txt"), &norm.mail(mail));
        let html = mail
            .parts
            .iter()
            .find(|(t, _)| t == "text/html")
            .map(|(_, b)| b.as_str())
            .unwrap_or_default();
        goldens.check(&format!("email-{phase}.html"), &norm.text(html));
    }
    goldens.finish();
}

/// The first request a notifier sent of one notification.
fn first(name: &str, set: &[Sent]) -> Request {
    set.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| r[0].clone())
        .unwrap_or_else(|| panic!("no request for {name}"))
}

/// Template parameters that do not parse fail `vigil check`, which names
/// each one's file, line and column, receiver and parameter, and where in
/// the template the error is.
#[test]
fn a_bad_template_param_fails_vigil_check_with_its_location() {
    let dir = TempDir::new("notifiers-check");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-slack", "notify-msteams"],
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        r##"data_dir = "data"
plugin_dir = "plugins"

[[receivers]]
name = "ml-chat"
notifier = "slack"
params = { url = "https://hooks.slack.com/services/T0/B0/x", title = "{{ .Nope" }
allow_hosts = ["hooks.slack.com"]

[[receivers]]
name = "ml-teams"
notifier = "msteams"
allow_hosts = ["teams.example.com"]

[receivers.params]
url = "https://teams.example.com/workflows/x"
body = """
{{ range .Alerts }}
- {{ .Labels.model | shout }}
{{ end }}"""

[route]
receiver = "ml-chat"
"##,
    )
    .expect("write config");
    let out = std::process::Command::new(vigil_bin())
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .expect("run vigil check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Each error points at the place in the template, in the file (line
    // and column), and names the parameter; both are reported.
    let expect = [
        "vigil.toml:7:71: receiver \"ml-chat\": notifier \"slack\" rejected its parameters: \
         invalid params: `title`: template error at line 1, column 1: unclosed action",
        "vigil.toml:19:22: receiver \"ml-teams\": notifier \"msteams\" rejected its parameters: \
         invalid params: `body`: template error at line 2, column 22: unknown function `shout`",
        "2 error(s)",
    ];
    for e in expect {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
}

// Golden files.

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/notifiers")
}

/// Compares texts with golden files, collecting every difference; with
/// `VIGIL_BLESS=1` it writes them instead.
struct Goldens {
    bless: bool,
    failures: Vec<String>,
}

impl Goldens {
    fn new() -> Goldens {
        Goldens {
            bless: std::env::var("VIGIL_BLESS").is_ok_and(|v| v == "1"),
            failures: Vec::new(),
        }
    }

    fn check(&mut self, name: &str, actual: &str) {
        let path = golden_dir().join(name);
        if self.bless {
            std::fs::create_dir_all(golden_dir()).expect("golden dir");
            std::fs::write(&path, actual).expect("write golden file");
            return;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => self.failures.push(format!(
                "{name}:\n--- expected ({})\n{expected}--- actual\n{actual}",
                path.display()
            )),
            Err(_) => self.failures.push(format!(
                "{name}: missing {} (run with VIGIL_BLESS=1 to create it); actual:\n{actual}",
                path.display()
            )),
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} golden file(s) differ (VIGIL_BLESS=1 rewrites them):\n\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// Replaces what varies between runs with placeholders: the given values
/// (addresses with their ports, the fingerprint that depends on them), the
/// given times (however they are written) and any other time but
/// Alertmanager's zero time, and SHA-256 hex digests (PagerDuty's dedup key
/// hashes the group key, which has the target's address; the remediation
/// idempotency key hashes the start time).
struct Normaliser {
    replacements: Vec<(String, String)>,
    /// Canonical times (see [`replace_times`]) and their placeholders.
    times: Vec<(String, String)>,
}

/// Alertmanager's `endsAt` of an alert that has not resolved.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Normaliser {
    fn new(values: &[(String, &str)], times: &[(String, &str)]) -> Normaliser {
        let mut replacements = Vec::new();
        for (value, placeholder) in values {
            replacements.push((value.clone(), placeholder.to_string()));
            // As a form or URL query encodes it.
            let encoded = value.replace(':', "%3A");
            if encoded != *value {
                replacements.push((encoded, placeholder.to_string()));
            }
        }
        let times = times
            .iter()
            .map(|(t, placeholder)| (t.clone(), placeholder.to_string()))
            .collect();
        Normaliser {
            replacements,
            times,
        }
    }

    fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, placeholder) in &self.replacements {
            out = out.replace(value.as_str(), placeholder);
        }
        let out = replace_times(&out, |original, canonical| {
            if original == ZERO_TIME {
                return original.to_string();
            }
            self.times
                .iter()
                .find(|(t, _)| t == canonical)
                .map_or("<time>", |(_, placeholder)| placeholder)
                .to_string()
        });
        sha256s(&out)
    }

    /// A JSON body, indented without reordering its keys.
    fn json(&self, body: &str) -> String {
        serde_json::from_str::<serde_json::Value>(body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        self.text(&pretty_json(body))
    }

    /// Form bodies as sent, each followed by its decoded fields.
    fn form_bodies(&self, requests: &[Request]) -> String {
        let mut out = String::new();
        for r in requests {
            out.push_str(&self.text(&r.body));
            out.push('\n');
            for (k, v) in form(&r.body) {
                let _ = writeln!(out, "# {k} = {:?}", self.text(&v));
            }
            out.push('\n');
        }
        out
    }

    /// An e-mail's envelope, the headers a notifier decides, and its text.
    fn mail(&self, mail: &ReceivedMail) -> String {
        let mut out = format!(
            "MAIL FROM: {}\nRCPT TO: {}\n",
            mail.mail_from,
            mail.rcpt_tos.join(", ")
        );
        for name in ["From", "To", "Cc", "Subject"] {
            for value in mail.headers_named(name) {
                let _ = writeln!(out, "{name}: {value}");
            }
        }
        // Without the boundary, which is random.
        let _ = writeln!(out, "Content-Type: {}", mail.content_type);
        let text = mail
            .parts
            .iter()
            .find(|(t, _)| t == "text/plain")
            .map(|(_, b)| b.as_str())
            .unwrap_or_default();
        let _ = write!(out, "\n{text}");
        self.text(&out)
    }
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let mut bytes = Vec::new();
        let mut it = s.bytes();
        while let Some(b) = it.next() {
            match b {
                b'+' => bytes.push(b' '),
                b'%' => {
                    let hex: String = it.by_ref().take(2).map(char::from).collect();
                    bytes.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
                }
                b => bytes.push(b),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    };
    body.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Finds times (`2026-11-22T03:49:23.123Z` as RFC 3339 writes them, or
/// `2026-11-22 03:49:23.123 +0000 UTC` as Go templates print them) and
/// replaces each with what `f` returns for it and its canonical form
/// (`2026-11-22T03:49:23.123000000`; every time Vigil renders is UTC). A Go
/// offset and zone after a time are kept.
fn replace_times(text: &str, f: impl Fn(&str, &str) -> String) -> String {
    let b = text.as_bytes();
    let digits =
        |i: usize, n: usize| b.len() >= i + n && b[i..i + n].iter().all(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        let date_time = digits(i, 4)
            && at(i + 4, b'-')
            && digits(i + 5, 2)
            && at(i + 7, b'-')
            && digits(i + 8, 2)
            && (at(i + 10, b'T') || at(i + 10, b' '))
            && digits(i + 11, 2)
            && at(i + 13, b':')
            && digits(i + 14, 2)
            && at(i + 16, b':')
            && digits(i + 17, 2);
        if !date_time {
            i += 1;
            continue;
        }
        let mut end = i + 19;
        let mut fraction = String::new();
        if at(end, b'.') && digits(end + 1, 1) {
            end += 1;
            while digits(end, 1) {
                fraction.push(char::from(b[end]));
                end += 1;
            }
        }
        if at(end, b'Z') {
            end += 1;
        } else if (at(end, b'+') || at(end, b'-'))
            && digits(end + 1, 2)
            && at(end + 3, b':')
            && digits(end + 4, 2)
        {
            end += 6;
        }
        let canonical = format!(
            "{}T{}.{fraction:0<9}",
            &text[i..i + 10],
            &text[i + 11..i + 19]
        );
        out.push_str(&text[copied..i]);
        out.push_str(&f(&text[i..end], &canonical));
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The canonical form of [`replace_times`] of a time in Unix milliseconds.
fn canonical_ms(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, sec, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{milli:03}000000")
}

/// The canonical form of the first time in `text`.
fn canonical(text: &str) -> Option<String> {
    let found = std::cell::RefCell::new(None);
    replace_times(text, |_, c| {
        found.borrow_mut().get_or_insert_with(|| c.to_string());
        String::new()
    });
    found.into_inner()
}

/// Replaces runs of exactly 64 lowercase hex digits with `<sha256>`.
fn sha256s(text: &str) -> String {
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String, next: Option<char>| {
        let bounded = next.is_none_or(|c| !c.is_ascii_alphanumeric());
        if run.len() == 64 && bounded {
            out.push_str("<sha256>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    let mut prev_alnum = false;
    for c in text.chars() {
        if hex(c) && (!run.is_empty() || !prev_alnum) {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            flush(&mut run, &mut out, Some(c));
        }
        prev_alnum = c.is_ascii_alphanumeric();
        out.push(c);
    }
    flush(&mut run, &mut out, None);
    out
}

/// Indents compact JSON two spaces per level, keeping the key order.
fn pretty_json(compact: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if let Some(&close @ ('}' | ']')) = chars.peek() {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[test]
fn the_normaliser_replaces_what_varies() {
    let start = canonical_ms(1_795_319_363_100);
    assert_eq!(start, "2026-11-22T03:49:23.100000000");
    assert_eq!(canonical_ms(0), "1970-01-01T00:00:00.000000000");
    assert_eq!(
        canonical_ms(951_782_400_000),
        "2000-02-29T00:00:00.000000000"
    );
    let n = Normaliser::new(
        &[
            ("127.0.0.1:4321".to_string(), "<target>"),
            ("0f1e2d3c4b5a6978".to_string(), "<fingerprint>"),
        ],
        &[(start, "<startsAt>")],
    );
    let key = "580c5ba0cdf5684039f92e95eea623cf8db97de53dccb619dee7787af86033a3";
    assert_eq!(
        n.text(&format!(
            "at 2026-11-22T03:49:23.1Z = 2026-11-22 03:49:23.1 +0000 UTC, not \
             2026-11-22T03:49:23+00:00 or {ZERO_TIME} \
             on 127.0.0.1:4321 (127.0.0.1%3A4321) fp 0f1e2d3c4b5a6978 key {key} x{key} {key}0"
        )),
        format!(
            "at <startsAt> = <startsAt> +0000 UTC, not <time> or {ZERO_TIME} \
             on <target> (<target>) fp <fingerprint> key <sha256> x{key} {key}0"
        )
    );
    assert_eq!(
        pretty_json(r#"{"b":[1,{}],"a":"x, {y}: \"z\"","c":[]}"#),
        "{\n  \"b\": [\n    1,\n    {}\n  ],\n  \"a\": \"x, {y}: \\\"z\\\"\",\n  \"c\": []\n}\n"
    );
    assert_eq!(
        form("To=%2B1&Body=a+b%0A%C3%A9"),
        [("To".into(), "+1".into()), ("Body".into(), "a b\né".into())]
    );
}
