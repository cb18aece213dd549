//! The `pagerduty` notifier: sends PagerDuty Events API v2 events.
//!
//! ```toml
//! [[receivers]]
//! name = "ml-pager"
//! notifier = "pagerduty"
//! params = { routing_key = "0123456789abcdef0123456789abcdef", component = "{{ .CommonLabels.model }}" }
//! allow_hosts = ["events.pagerduty.com"]
//! ```
//!
//! One event per notification, as Alertmanager sends: `event_action` is
//! `trigger` while the group fires and `resolve` once it has resolved, and
//! `dedup_key` is the SHA-256 (hex) of the group key, so every notification
//! of a group (including repeats and the resolve) lands on the same
//! PagerDuty incident.
//!
//! The payload: `summary` from `title` (Alertmanager's subject by default,
//! cut to PagerDuty's 1024 characters with `…`); `severity` from the
//! highest `severity` label of the firing alerts (of all alerts once
//! resolved), mapped onto PagerDuty's `critical`, `error`, `warning`,
//! `info` (`page`, `high`, `warn`, `low` and other common spellings are
//! understood), `critical` when there is none; `source` (the common
//! `instance` label, else `job`, else `Vigil`); optional `component`,
//! `group` and `class`; `custom_details` with the firing and resolved
//! alerts (labels, annotations, times, source) and their counts, plus
//! `body` as `description` when set. `links` lists each distinct
//! `generatorURL`; `client` and `client_url` point back at Vigil. When the
//! event would exceed PagerDuty's 512 KB the alert lists are dropped, the
//! counts kept.
//!
//! Every text parameter is a Go template over Alertmanager's notification
//! data (`.Status`, `.GroupLabels`, `.CommonLabels`, `.Alerts`, ...), parsed
//! when the configuration loads. A `severity` template's output is mapped
//! like the label; anything unrecognised becomes `critical`.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_plugin_sdk::json::{self, PairMap};
use vigil_plugin_sdk::notifier::{
    DEFAULT_SUBJECT, DefaultTemplate, Severity, Template, join_errors, max_severity, merge_headers,
    render_or, template_data, truncate, validate_headers, validate_url,
};
use vigil_plugin_sdk::prelude::*;
use vigil_plugin_sdk::template::Value;

/// Parameters of the `pagerduty` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct PagerDuty {
    /// The Events API v2 integration key of the PagerDuty service.
    pub routing_key: String,
    /// The Events API endpoint (its host must also be in the receiver's
    /// `allow_hosts`). Default: `https://events.pagerduty.com/v2/enqueue`.
    #[serde(default = "default_url")]
    pub url: String,
    /// `payload.summary` template, cut to 1024 characters. Default:
    /// Alertmanager's subject, e.g. `[FIRING:2] ModelErrorRateHigh (triton)`.
    pub title: Option<Template>,
    /// Template of `payload.custom_details.description`. Default: none.
    pub body: Option<Template>,
    /// `payload.severity` template, mapped onto critical, error, warning or
    /// info. Default: the alerts' highest `severity` label, else critical.
    pub severity: Option<Template>,
    /// `payload.source` template: the affected system. Default: the common
    /// `instance` label, else `job`, else `Vigil`.
    pub source: Option<Template>,
    /// `payload.component` template; omitted when empty.
    pub component: Option<Template>,
    /// `payload.group` template; omitted when empty.
    pub group: Option<Template>,
    /// `payload.class` template; omitted when empty.
    pub class: Option<Template>,
    /// `client` template: who sends the event. Default: `Vigil`.
    pub client: Option<Template>,
    /// `client_url` template: the link PagerDuty shows for the client.
    /// Default: `{{ .ExternalURL }}`.
    pub client_url: Option<Template>,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_string()
}

/// PagerDuty's limit on `payload.summary`, in characters.
const MAX_SUMMARY: usize = 1024;
/// PagerDuty's limit on a whole event, in bytes.
const MAX_EVENT_BYTES: usize = 512 * 1024;

static SOURCE: DefaultTemplate =
    DefaultTemplate::new("{{ or .CommonLabels.instance .CommonLabels.job \"Vigil\" }}");
static CLIENT: DefaultTemplate = DefaultTemplate::new("Vigil");
static CLIENT_URL: DefaultTemplate = DefaultTemplate::new("{{ .ExternalURL }}");

fn validate(p: &PagerDuty) -> Result<(), String> {
    let mut errors = Vec::new();
    if p.routing_key.trim().is_empty() {
        errors.push("`routing_key` must not be empty".to_string());
    } else if p
        .routing_key
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        errors.push("`routing_key` must not contain spaces or control characters".to_string());
    }
    validate_url("url", &p.url, &mut errors);
    validate_headers(&p.headers, &mut errors);
    join_errors(errors)
}

#[derive(Serialize)]
struct Event<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: String,
    payload: Payload<'a>,
    #[serde(skip_serializing_if = "String::is_empty")]
    client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link<'a>>,
}

#[derive(Serialize)]
struct Payload<'a> {
    summary: String,
    source: String,
    severity: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    custom_details: Details<'a>,
}

#[derive(Serialize)]
struct Details<'a> {
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    num_firing: usize,
    num_resolved: usize,
    #[serde(skip_serializing_if = "is_zero")]
    num_truncated: u32,
    firing: Vec<AlertDetail<'a>>,
    resolved: Vec<AlertDetail<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    omitted: Option<&'static str>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertDetail<'a> {
    labels: PairMap<'a>,
    annotations: PairMap<'a>,
    starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

#[derive(Serialize)]
struct Link<'a> {
    href: &'a str,
    text: String,
}

/// Triggers or resolves one PagerDuty incident per alert group.
#[notifier(name = "pagerduty", validate = validate)]
pub fn pagerduty(p: &PagerDuty, n: &Notification) -> Result<Vec<Delivery>, String> {
    let data = template_data(n);
    let opt = |t: &Option<Template>| -> String {
        t.as_ref()
            .map(|t| t.render(&data).trim().to_string())
            .unwrap_or_default()
    };
    let summary = render_or(p.title.as_ref(), &DEFAULT_SUBJECT, &data)?;
    let mut source = render_or(p.source.as_ref(), &SOURCE, &data)?;
    if source.trim().is_empty() {
        // PagerDuty rejects an event without a source.
        source = "Vigil".to_string();
    }
    let (firing, resolved): (Vec<&Alert>, Vec<&Alert>) = n
        .alerts
        .iter()
        .partition(|a| a.status == AlertStatus::Firing);
    let mut event = Event {
        routing_key: &p.routing_key,
        event_action: match n.status {
            AlertStatus::Firing => "trigger",
            AlertStatus::Resolved => "resolve",
        },
        dedup_key: dedup_key(&n.group_key),
        payload: Payload {
            summary: truncate(summary.trim(), MAX_SUMMARY).into_owned(),
            source: source.trim().to_string(),
            severity: severity(p, n, &data),
            component: opt(&p.component),
            group: opt(&p.group),
            class: opt(&p.class),
            custom_details: Details {
                description: opt(&p.body),
                num_firing: firing.len(),
                num_resolved: resolved.len(),
                num_truncated: n.truncated_alerts,
                firing: firing.iter().map(|a| detail(a)).collect(),
                resolved: resolved.iter().map(|a| detail(a)).collect(),
                omitted: None,
            },
        },
        client: render_or(p.client.as_ref(), &CLIENT, &data)?
            .trim()
            .to_string(),
        client_url: render_or(p.client_url.as_ref(), &CLIENT_URL, &data)?
            .trim()
            .to_string(),
        links: links(&n.alerts),
    };
    let mut body = json::to_string(&event)?;
    if body.len() > MAX_EVENT_BYTES {
        let details = &mut event.payload.custom_details;
        details.firing.clear();
        details.resolved.clear();
        details.omitted = Some("alert details left out: the event exceeded PagerDuty's 512 KB");
        event.links.truncate(10);
        body = json::to_string(&event)?;
    }
    let request = HttpRequest::post_json(&p.url, body);
    let headers = merge_headers(request.headers, &p.headers);
    Ok(vec![Delivery::Http(HttpRequest { headers, ..request })])
}

/// Alertmanager's dedup key: the SHA-256 hex of the group key, the same for
/// every notification of the group.
fn dedup_key(group_key: &str) -> String {
    Sha256::digest(group_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The user's severity template mapped, or the highest severity label of
/// the firing alerts (all alerts once resolved); `critical` by default.
fn severity(p: &PagerDuty, n: &Notification, data: &Value<'_>) -> &'static str {
    let level = match &p.severity {
        Some(t) => Severity::parse(&t.render(data)),
        None => {
            let firing = n.alerts.iter().filter(|a| a.status == AlertStatus::Firing);
            match max_severity(firing) {
                Severity::None => max_severity(&n.alerts),
                s => s,
            }
        }
    };
    level.name().unwrap_or("critical")
}

fn detail(a: &Alert) -> AlertDetail<'_> {
    AlertDetail {
        labels: PairMap(&a.labels),
        annotations: PairMap(&a.annotations),
        starts_at: rfc3339_millis(a.starts_at),
        ends_at: a
            .ends_at
            .filter(|_| a.status == AlertStatus::Resolved)
            .map(rfc3339_millis),
        generator_url: &a.generator_url,
        fingerprint: &a.fingerprint,
    }
}

/// One link per distinct `generatorURL`, named after its first alert.
fn links(alerts: &[Alert]) -> Vec<Link<'_>> {
    let mut out: Vec<Link<'_>> = Vec::new();
    for a in alerts {
        if a.generator_url.is_empty() || out.iter().any(|l| l.href == a.generator_url) {
            continue;
        }
        out.push(Link {
            href: &a.generator_url,
            text: format!("{} (source)", a.label("alertname").unwrap_or("alert")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::Notifier;
    use vigil_plugin_sdk::notifier::configure;
    use vigil_plugin_sdk::serde_json::{self, Value};
    use vigil_plugin_sdk::testing::{
        assert_golden, fixture, http_text, only_http, resolved_fixture,
    };

    const PARAMS: &str = r#"{"routing_key": "0123456789abcdef0123456789abcdef", "component": "{{ .CommonLabels.job }}", "group": "ml", "class": "error-rate"}"#;

    fn render_with(params: &str, n: &Notification) -> HttpRequest {
        let p = configure::<Plugin>(params).unwrap();
        only_http(Plugin::render(&p, n).unwrap())
    }

    fn event(params: &str, n: &Notification) -> Value {
        serde_json::from_str(&render_with(params, n).body).unwrap()
    }

    #[test]
    fn default_rendering_matches_golden() {
        assert_golden!("firing.txt", &http_text(&render_with(PARAMS, &fixture())));
        assert_golden!(
            "resolved.txt",
            &http_text(&render_with(PARAMS, &resolved_fixture())),
        );
    }

    #[test]
    fn dedup_key_is_the_group_key_hash_and_stable() {
        let firing = event(PARAMS, &fixture());
        let resolved = event(PARAMS, &resolved_fixture());
        // sha256 of `{}/{team="ml"}:{alertname="ModelErrorRateHigh"}`.
        let expected = "aa0017544189057eb1d29966a994deca46c79af0d2da65820d145a2f44151b09";
        assert_eq!(firing["dedup_key"], expected);
        assert_eq!(resolved["dedup_key"], expected);
        // Alert order and contents do not matter, only the group.
        let mut n = fixture();
        n.alerts.reverse();
        n.alerts.pop();
        assert_eq!(event(PARAMS, &n)["dedup_key"], expected);
        n.group_key = "{}:{alertname=\"Other\"}".into();
        assert_ne!(event(PARAMS, &n)["dedup_key"], expected);
    }

    #[test]
    fn action_follows_the_group_status() {
        assert_eq!(event(PARAMS, &fixture())["event_action"], "trigger");
        assert_eq!(
            event(PARAMS, &resolved_fixture())["event_action"],
            "resolve"
        );
    }

    #[test]
    fn severity_from_labels_or_template() {
        let sev = |params: &str, n: &Notification| event(params, n)["payload"]["severity"].clone();
        let params = r#"{"routing_key": "k"}"#;
        assert_eq!(sev(params, &fixture()), "critical");
        let mut n = fixture();
        n.alerts.remove(1); // the critical firing alert
        assert_eq!(sev(params, &n), "warning");
        for a in &mut n.alerts {
            a.labels.retain(|(k, _)| k != "severity");
        }
        assert_eq!(sev(params, &n), "critical");
        let mut n = fixture();
        n.alerts[0].labels[4].1 = "P3".into();
        n.alerts.remove(1);
        assert_eq!(sev(params, &n), "warning");
        let templated = r#"{"routing_key": "k", "severity": "{{ if eq .CommonLabels.job \"triton\" }}Info{{ end }}"}"#;
        assert_eq!(sev(templated, &fixture()), "info");
        let odd = r#"{"routing_key": "k", "severity": "sev-unknown"}"#;
        assert_eq!(sev(odd, &fixture()), "critical");
    }

    #[test]
    fn summary_is_cut_to_1024_characters() {
        let long = "é".repeat(2000);
        let e = event(
            &format!(r#"{{"routing_key": "k", "title": "{long}"}}"#),
            &fixture(),
        );
        let summary = e["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), 1024);
        assert!(summary.ends_with("é…"));
    }

    #[test]
    fn oversized_events_drop_alert_details() {
        let mut n = fixture();
        n.alerts[0].annotations[0].1 = "x".repeat(600 * 1024);
        let r = render_with(r#"{"routing_key": "k"}"#, &n);
        assert!(r.body.len() < MAX_EVENT_BYTES, "{}", r.body.len());
        let e: Value = serde_json::from_str(&r.body).unwrap();
        let details = &e["payload"]["custom_details"];
        assert_eq!(details["num_firing"], 2);
        assert_eq!(details["firing"].as_array().unwrap().len(), 0);
        assert!(details["omitted"].as_str().unwrap().contains("512 KB"));
    }

    #[test]
    fn optional_fields_are_omitted() {
        let mut n = fixture();
        n.external_url.clear();
        n.common_labels.retain(|(k, _)| k != "job");
        let e = event(r#"{"routing_key": "k"}"#, &n);
        let payload = e["payload"].as_object().unwrap();
        assert!(!payload.contains_key("component") && !payload.contains_key("class"));
        assert_eq!(payload["source"], "Vigil");
        assert!(e.get("client_url").is_none());
        assert_eq!(e["client"], "Vigil");
        assert_eq!(
            render_with(r#"{"routing_key": "k"}"#, &n).url,
            "https://events.pagerduty.com/v2/enqueue"
        );
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").starts_with("invalid params: missing field `routing_key`"));
        assert_eq!(
            err(r#"{"routing_key": " ", "url": "events.pagerduty.com"}"#),
            "invalid params: `routing_key` must not be empty; \
             `url` must start with http:// or https://, got \"events.pagerduty.com\""
        );
        assert!(
            err(r#"{"routing_key": "k", "severity": "{{ .CommonLabels.severity | lower }}"}"#)
                .starts_with(
                    "invalid params: `severity`: template error at line 1, column 29: unknown function `lower`"
                )
        );
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "pagerduty");
        let docs: Vec<_> = info
            .params
            .iter()
            .filter(|d| d.required)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(docs, ["routing_key"]);
        assert_eq!(info.params.len(), 12);
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
