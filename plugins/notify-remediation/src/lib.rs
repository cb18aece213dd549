//! The `remediation` notifier: asks an automation endpoint to act on each
//! firing alert, e.g. to restart the model replica that fails.
//!
//! ```toml
//! [[receivers]]
//! name = "restart-replica"
//! notifier = "remediation"
//! params = { url = "https://ops-bot.internal/v1/actions", action = "restart", params = { replica = "{{ .Labels.pod }}", namespace = "{{ .Labels.namespace }}" }, headers = { Authorization = "Bearer …" } }
//! allow_hosts = ["ops-bot.internal"]
//! ```
//!
//! One `POST` per firing alert, most important first (by `severity`, then
//! earliest start), with the JSON body
//!
//! ```json
//! {"action": "restart",
//!  "params": {"replica": "triton-7d9f-p8m2z"},
//!  "alert": {"status": "firing", "labels": {…}, "annotations": {…},
//!            "startsAt": "2026-11-22T03:49:23.000Z", "fingerprint": "0f1e2d3c4b5a6978",
//!            "generatorURL": "http://…"},
//!  "group_key": "{}:{alertname=\"ModelErrorRateHigh\"}",
//!  "idempotency_key": "…"}
//! ```
//!
//! and the same key in an `Idempotency-Key` header. The key is the hex
//! SHA-256 of the action, the alert's fingerprint and its start time (Unix
//! milliseconds) joined by newlines: repeats, retries and replays of the
//! same alert episode carry the same key, so the endpoint can act once,
//! while a new episode of the alert (a new start) gets a new key.
//!
//! Each `params` value is a Go template rendered per alert, with the alert
//! as the dot: `.Labels`, `.Annotations`, `.StartsAt`, `.Fingerprint`,
//! `.GeneratorURL`, `.Value`; they are parsed when the configuration loads.
//! A label the alert lacks renders as `""`.
//!
//! Resolved alerts ask for nothing unless `on_resolved` is true; then each
//! resolved alert gets a request too, with `"status": "resolved"`, its
//! `endsAt`, and a key that has `resolved` appended before hashing, so it is
//! not mistaken for the firing request. There is no `title` or `body`: the
//! request is data for a program, not text for a person.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use vigil_plugin_sdk::json::{self, PairMap};
use vigil_plugin_sdk::notifier::{
    Template, alert_values, by_importance, join_errors, merge_headers, template_data,
    validate_headers, validate_url,
};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `remediation` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    /// The automation endpoint (its host must also be in the receiver's
    /// `allow_hosts`, which is what limits where actions can be sent).
    pub url: String,
    /// The action to request, e.g. `restart`.
    pub action: String,
    /// The action's arguments: name to a template rendered per alert, with
    /// the alert as the dot, e.g. `replica = "{{ .Labels.pod }}"`.
    #[serde(default)]
    pub params: BTreeMap<String, Template>,
    /// Extra HTTP headers, e.g. `Authorization` (`Idempotency-Key` is set by
    /// the notifier).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Also send a request for each resolved alert, e.g. to undo a scale-up.
    #[serde(default)]
    pub on_resolved: bool,
}

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

fn validate(p: &Remediation) -> Result<(), String> {
    let mut errors = Vec::new();
    validate_url("url", &p.url, &mut errors);
    validate_headers(&p.headers, &mut errors);
    if p.action.trim().is_empty() || p.action.chars().any(char::is_control) {
        errors.push(format!(
            "`action` must be a non-empty single line, got {:?}",
            p.action
        ));
    }
    if p.params.keys().any(String::is_empty) {
        errors.push("`params` names must not be empty".to_string());
    }
    if p.headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case(IDEMPOTENCY_HEADER))
    {
        errors.push(format!(
            "`headers.{IDEMPOTENCY_HEADER}` is set by the notifier"
        ));
    }
    join_errors(errors)
}

#[derive(Serialize)]
struct Request<'a> {
    action: &'a str,
    params: BTreeMap<&'a str, String>,
    alert: AlertJson<'a>,
    group_key: &'a str,
    idempotency_key: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertJson<'a> {
    status: &'static str,
    labels: PairMap<'a>,
    annotations: PairMap<'a>,
    starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    fingerprint: &'a str,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

/// POSTs one action request per firing alert to an automation endpoint.
#[notifier(name = "remediation", validate = validate)]
pub fn remediation(p: &Remediation, n: &Notification) -> Result<Vec<Delivery>, String> {
    let data = template_data(n);
    let values = alert_values(&data);
    let mut out = Vec::new();
    for a in by_importance(&n.alerts) {
        if a.status == AlertStatus::Resolved && !p.on_resolved {
            continue;
        }
        let Some(value) = n
            .alerts
            .iter()
            .position(|x| std::ptr::eq(x, a))
            .and_then(|i| values.get(i))
        else {
            return Err("internal error: no template data for an alert".to_string());
        };
        let key = idempotency_key(&p.action, a);
        let request = Request {
            action: &p.action,
            params: p
                .params
                .iter()
                .map(|(name, t)| (name.as_str(), t.render(value).trim().to_string()))
                .collect(),
            alert: AlertJson {
                status: a.status.as_str(),
                labels: PairMap(&a.labels),
                annotations: PairMap(&a.annotations),
                starts_at: rfc3339_millis(a.starts_at),
                ends_at: match (a.status, a.ends_at) {
                    (AlertStatus::Resolved, Some(t)) => Some(rfc3339_millis(t)),
                    _ => None,
                },
                fingerprint: &a.fingerprint,
                generator_url: &a.generator_url,
            },
            group_key: &n.group_key,
            idempotency_key: &key,
        };
        let http = HttpRequest::post_json(&p.url, json::to_string(&request)?);
        let mut headers = merge_headers(http.headers, &p.headers);
        headers.push((IDEMPOTENCY_HEADER.to_string(), key));
        out.push(Delivery::Http(HttpRequest { headers, ..http }));
    }
    Ok(out)
}

/// Hex SHA-256 of `action`, fingerprint and start (ms) joined by newlines,
/// plus `resolved` for a resolved alert: one key per alert episode and
/// direction.
fn idempotency_key(action: &str, a: &Alert) -> String {
    let mut input = format!("{action}\n{}\n{}", a.fingerprint, a.starts_at);
    if a.status == AlertStatus::Resolved {
        input.push_str("\nresolved");
    }
    Sha256::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::Notifier;
    use vigil_plugin_sdk::notifier::configure;
    use vigil_plugin_sdk::serde_json::{self, Value};
    use vigil_plugin_sdk::testing::{
        all_http, assert_golden, fixture, http_text, resolved_fixture,
    };

    const PARAMS: &str = r#"{"url": "https://ops-bot.internal/v1/actions", "action": "restart", "params": {"replica": "{{ .Labels.pod }}", "reason": "{{ .Annotations.summary }} ({{ .Value | humanizePercentage }})"}, "headers": {"Authorization": "Bearer t"}}"#;

    fn render_with(params: &str, n: &Notification) -> Vec<HttpRequest> {
        let p = configure::<Plugin>(params).unwrap();
        all_http(Plugin::render(&p, n).unwrap())
    }

    fn bodies(params: &str, n: &Notification) -> Vec<Value> {
        render_with(params, n)
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }

    #[test]
    fn default_rendering_matches_golden() {
        let text: String = render_with(PARAMS, &fixture())
            .iter()
            .map(http_text)
            .collect::<Vec<_>>()
            .join("\n");
        assert_golden!("firing.txt", &text);
    }

    #[test]
    fn one_request_per_firing_alert_with_rendered_params() {
        let requests = render_with(PARAMS, &fixture());
        assert_eq!(requests.len(), 2);
        let b: Value = serde_json::from_str(&requests[0].body).unwrap();
        // The critical alert first.
        assert_eq!(b["params"]["replica"], "triton-7d9f-p8m2z");
        assert_eq!(b["params"]["reason"], "Error rate 31% on bert (31%)");
        assert_eq!(b["action"], "restart");
        assert_eq!(b["alert"]["fingerprint"], "0f1e2d3c4b5a6978");
        assert_eq!(b["alert"]["status"], "firing");
        assert_eq!(
            b["group_key"],
            "{}/{team=\"ml\"}:{alertname=\"ModelErrorRateHigh\"}"
        );
        let key = b["idempotency_key"].as_str().unwrap();
        assert_eq!(
            requests[0].headers.last(),
            Some(&("Idempotency-Key".to_string(), key.to_string()))
        );
        assert_eq!(
            requests[0].headers[1],
            ("Authorization".into(), "Bearer t".into())
        );
    }

    #[test]
    fn idempotency_key_is_stable_per_action_alert_and_start() {
        let keys = |params: &str, n: &Notification| -> Vec<String> {
            bodies(params, n)
                .iter()
                .map(|b| b["idempotency_key"].as_str().unwrap().to_string())
                .collect()
        };
        let first = keys(PARAMS, &fixture());
        // sha256("restart\n0f1e2d3c4b5a6978\n1795319363000")
        assert_eq!(
            first[0],
            "580c5ba0cdf5684039f92e95eea623cf8db97de53dccb619dee7787af86033a3"
        );
        assert_ne!(first[0], first[1]);
        // A repeat in another group, with other alerts around: same keys.
        let mut n = fixture();
        n.group_key = "{}:{}".into();
        n.alerts.reverse();
        n.alerts[1].annotations.clear();
        assert_eq!(keys(PARAMS, &n), first);
        // A new episode (new start) or another action: new keys.
        let mut n = fixture();
        n.alerts[1].starts_at += 1;
        assert_ne!(keys(PARAMS, &n)[0], first[0]);
        let scale = PARAMS.replace("\"restart\"", "\"scale-up\"");
        assert_ne!(keys(&scale, &fixture())[0], first[0]);
    }

    #[test]
    fn resolved_alerts_only_with_on_resolved() {
        assert!(render_with(PARAMS, &resolved_fixture()).is_empty());
        let on = PARAMS.replace("\"headers\"", "\"on_resolved\": true, \"headers\"");
        let firing = bodies(&on, &fixture());
        assert_eq!(firing.len(), 3);
        assert_eq!(firing[2]["alert"]["status"], "resolved");
        assert_eq!(firing[2]["alert"]["endsAt"], "2026-11-22T03:50:00.000Z");
        let resolved = bodies(&on, &resolved_fixture());
        assert_eq!(resolved.len(), 3);
        // A resolved request never shares the firing request's key.
        let firing_keys: Vec<_> = firing[..2]
            .iter()
            .map(|b| b["idempotency_key"].clone())
            .collect();
        assert!(
            resolved
                .iter()
                .all(|b| !firing_keys.contains(&b["idempotency_key"]))
        );
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(
            err(r#"{"url": "https://h/"}"#).starts_with("invalid params: missing field `action`")
        );
        assert_eq!(
            err(
                r#"{"url": "https://h/", "action": " ", "params": {"": "x"}, "headers": {"idempotency-key": "k"}}"#
            ),
            "invalid params: `action` must be a non-empty single line, got \" \"; \
             `params` names must not be empty; `headers.Idempotency-Key` is set by the notifier"
        );
        assert!(
            err(r#"{"url": "https://h/", "action": "restart", "params": {"replica": "{{ .Labels.pod"}}"#)
                .starts_with("invalid params: `params.replica`: template error at line 1, column")
        );
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "remediation");
        let docs: Vec<_> = info
            .params
            .iter()
            .map(|d| (d.name.as_str(), d.required))
            .collect();
        assert_eq!(
            docs,
            [
                ("url", true),
                ("action", true),
                ("params", false),
                ("headers", false),
                ("on_resolved", false)
            ]
        );
    }
}
