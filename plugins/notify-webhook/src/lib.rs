//! The `webhook` notifier: POSTs the Alertmanager webhook payload (version 4).
//!
//! The body is what Alertmanager's `webhook_config` sends, so receivers
//! written for Alertmanager (chat bridges, incident tools) work unchanged.
use std::collections::BTreeMap;

use serde::Serialize;
use vigil_plugin_sdk::json::{self, PairMap};
use vigil_plugin_sdk::notifier::{join_errors, merge_headers, validate_headers, validate_url};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `webhook` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST the payload: an `http://` or `https://` URL (its host
    /// must also be in the receiver's `allow_hosts`).
    pub url: String,
    /// Send at most this many alerts per notification, counting the rest in
    /// `truncatedAlerts`; 0 sends all.
    #[serde(default)]
    pub max_alerts: u32,
    /// Extra HTTP headers, e.g. `Authorization`; a `Content-Type` here
    /// replaces the default `application/json`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn validate(p: &Webhook) -> Result<(), String> {
    let mut errors = Vec::new();
    validate_url("url", &p.url, &mut errors);
    validate_headers(&p.headers, &mut errors);
    join_errors(errors)
}

/// Alertmanager's zero time, sent as `endsAt` of alerts that have not resolved.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u64,
    status: &'static str,
    receiver: &'a str,
    group_labels: PairMap<'a>,
    common_labels: PairMap<'a>,
    common_annotations: PairMap<'a>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<AlertJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertJson<'a> {
    status: &'static str,
    labels: PairMap<'a>,
    annotations: PairMap<'a>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

/// POSTs the Alertmanager webhook payload (version 4) to `url`.
#[notifier(name = "webhook", validate = validate)]
pub fn webhook(p: &Webhook, n: &Notification) -> Result<Vec<Delivery>, String> {
    let keep = if p.max_alerts == 0 {
        n.alerts.len()
    } else {
        n.alerts.len().min(p.max_alerts as usize)
    };
    let payload = Payload {
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: u64::from(n.truncated_alerts) + (n.alerts.len() - keep) as u64,
        status: n.status.as_str(),
        receiver: &n.receiver,
        group_labels: PairMap(&n.group_labels),
        common_labels: PairMap(&n.common_labels),
        common_annotations: PairMap(&n.common_annotations),
        external_url: &n.external_url,
        alerts: n.alerts[..keep].iter().map(alert_json).collect(),
    };
    let request = HttpRequest::post_json(&p.url, json::to_string(&payload)?);
    let headers = merge_headers(request.headers, &p.headers);
    Ok(vec![Delivery::Http(HttpRequest { headers, ..request })])
}

fn alert_json(a: &Alert) -> AlertJson<'_> {
    AlertJson {
        status: a.status.as_str(),
        labels: PairMap(&a.labels),
        annotations: PairMap(&a.annotations),
        starts_at: rfc3339_millis(a.starts_at),
        ends_at: match a.ends_at {
            Some(t) if a.status == AlertStatus::Resolved => rfc3339_millis(t),
            _ => ZERO_TIME.to_string(),
        },
        generator_url: &a.generator_url,
        fingerprint: &a.fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::Notifier;
    use vigil_plugin_sdk::notifier::configure;
    use vigil_plugin_sdk::testing::{only_http, pairs};

    fn alert(model: &str, status: AlertStatus, ends_at: Option<i64>) -> Alert {
        Alert {
            status,
            labels: pairs(&[("alertname", "ModelErrorRateHigh"), ("model", model)]),
            annotations: pairs(&[("summary", "Error rate 7.2% on resnet")]),
            value: 0.072,
            starts_at: 1_795_319_303_123,
            ends_at,
            generator_url: "http://vigil:9093/rules#ModelErrorRateHigh".into(),
            fingerprint: format!("fp-{model}"),
        }
    }

    fn notification() -> Notification {
        Notification {
            receiver: "ops".into(),
            status: AlertStatus::Firing,
            group_key: "{}:{alertname=\"ModelErrorRateHigh\"}".into(),
            group_labels: pairs(&[("alertname", "ModelErrorRateHigh")]),
            common_labels: pairs(&[
                ("alertname", "ModelErrorRateHigh"),
                ("severity", "critical"),
            ]),
            common_annotations: vec![],
            external_url: "http://vigil:9093".into(),
            alerts: vec![
                alert("resnet", AlertStatus::Firing, None),
                alert("bert", AlertStatus::Resolved, Some(1_795_319_363_000)),
            ],
            truncated_alerts: 1,
        }
    }

    fn render(params: &str) -> HttpRequest {
        let p = configure::<Plugin>(params).unwrap();
        only_http(Plugin::render(&p, &notification()).unwrap())
    }

    #[test]
    fn renders_the_alertmanager_payload() {
        let r = render(r#"{"url": "https://hooks.example.com/x"}"#);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://hooks.example.com/x");
        assert_eq!(r.headers, pairs(&[("Content-Type", "application/json")]));
        let golden = r#"{"version":"4","groupKey":"{}:{alertname=\"ModelErrorRateHigh\"}","truncatedAlerts":1,"status":"firing","receiver":"ops","groupLabels":{"alertname":"ModelErrorRateHigh"},"commonLabels":{"alertname":"ModelErrorRateHigh","severity":"critical"},"commonAnnotations":{},"externalURL":"http://vigil:9093","alerts":[{"status":"firing","labels":{"alertname":"ModelErrorRateHigh","model":"resnet"},"annotations":{"summary":"Error rate 7.2% on resnet"},"startsAt":"2026-11-22T03:48:23.123Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://vigil:9093/rules#ModelErrorRateHigh","fingerprint":"fp-resnet"},{"status":"resolved","labels":{"alertname":"ModelErrorRateHigh","model":"bert"},"annotations":{"summary":"Error rate 7.2% on resnet"},"startsAt":"2026-11-22T03:48:23.123Z","endsAt":"2026-11-22T03:49:23.000Z","generatorURL":"http://vigil:9093/rules#ModelErrorRateHigh","fingerprint":"fp-bert"}]}"#;
        assert_eq!(r.body, golden);
    }

    #[test]
    fn max_alerts_truncates_and_counts() {
        let r = render(r#"{"url": "http://h/", "max_alerts": 1}"#);
        let body: vigil_plugin_sdk::serde_json::Value =
            vigil_plugin_sdk::serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(body["alerts"][0]["fingerprint"], "fp-resnet");
        assert_eq!(body["truncatedAlerts"], 2);
    }

    #[test]
    fn headers_are_added_and_may_replace_content_type() {
        let r =
            render(r#"{"url": "http://h/", "headers": {"Authorization": "Bearer t", "X-A": "1"}}"#);
        assert_eq!(
            r.headers,
            pairs(&[
                ("Content-Type", "application/json"),
                ("Authorization", "Bearer t"),
                ("X-A", "1")
            ])
        );
        let r =
            render(r#"{"url": "http://h/", "headers": {"content-type": "application/vnd+json"}}"#);
        assert_eq!(
            r.headers,
            pairs(&[("content-type", "application/vnd+json")])
        );
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").starts_with("invalid params: missing field `url`"));
        assert!(err(r#"{"url": "ftp://x"}"#).contains("must start with http:// or https://"));
        assert!(err(r#"{"url": "https://"}"#).contains("has no host"));
        assert!(
            err(r#"{"url": "http://h", "headers": {"X": "a\nb"}}"#)
                .contains("`headers.X` is not a valid HTTP header")
        );
        assert!(
            err(r#"{"url": "http://h", "max_alerts": -1}"#)
                .starts_with("invalid params: `max_alerts`: invalid value")
        );
        // Every mistake at once, as the other notifiers report them.
        assert_eq!(
            err(r#"{"url": "http://h/a b", "headers": {"X": "a\u0000b"}}"#),
            "invalid params: `url` must not contain spaces or control characters: \"http://h/a b\"; \
             `headers.X` is not a valid HTTP header"
        );
        assert!(configure::<Plugin>(r#"{"url": "HTTPS://h.example/x"}"#).is_ok());
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "webhook");
        let docs: Vec<_> = info
            .params
            .iter()
            .map(|d| (d.name.as_str(), d.type_name.as_str(), d.required))
            .collect();
        assert_eq!(
            docs,
            [
                ("url", "String", true),
                ("max_alerts", "u32", false),
                ("headers", "BTreeMap<String, String>", false)
            ]
        );
    }
}
