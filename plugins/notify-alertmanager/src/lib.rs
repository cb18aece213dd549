//! The `alertmanager` notifier: forwards alerts to a Prometheus
//! Alertmanager, as Prometheus itself does.
//!
//! ```toml
//! [[receivers]]
//! name = "alertmanager"
//! notifier = "alertmanager"
//! params = { url = "http://127.0.0.1:9093" }
//! allow_hosts = ["127.0.0.1:9093"]
//!
//! [route]
//! receiver = "alertmanager"
//! group_interval = "1m"
//! repeat_interval = "1m"   # under Alertmanager's resolve_timeout (default 5m)
//! ```
//!
//! Each notification becomes one `POST <url>/api/v2/alerts` whose body is
//! the JSON array of Alertmanager's postable alerts (API v2, as in
//! Alertmanager 0.25): `labels`, `annotations`, `startsAt`, `generatorURL`
//! (left out when empty) and, for resolved alerts, `endsAt`. A firing alert
//! has no `endsAt`: Alertmanager then sets it to the time of receipt plus
//! its `resolve_timeout`, and resolves the alert by itself unless it is
//! sent again before then. An empty string would not do: Alertmanager
//! reads `""` as the Unix epoch, before `startsAt`, and rejects the whole
//! batch (`400 start time must be before end time`).
//!
//! So keep the route's `repeat_interval` (and `group_interval`) shorter
//! than Alertmanager's `resolve_timeout`, or firing alerts will flap to
//! resolved in Alertmanager between two notifications.
//!
//! There is no `title` or `body`: Alertmanager renders its own messages
//! from the labels and annotations.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_plugin_sdk::json::{self, PairMap};
use vigil_plugin_sdk::notifier::{join_errors, merge_headers, validate_headers, validate_url};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `alertmanager` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Alertmanager {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093` (with its
    /// route prefix if it has one); alerts go to `<url>/api/v2/alerts`.
    pub url: String,
    /// Extra HTTP headers, e.g. `Authorization` for a proxy in front of
    /// Alertmanager.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn validate(p: &Alertmanager) -> Result<(), String> {
    let mut errors = Vec::new();
    validate_url("url", &p.url, &mut errors);
    if p.url.contains(['?', '#']) {
        errors.push(format!(
            "`url` is a base URL and cannot have a query or fragment: {:?}",
            p.url
        ));
    }
    validate_headers(&p.headers, &mut errors);
    join_errors(errors)
}

/// Alertmanager API v2's `postableAlert`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: PairMap<'a>,
    annotations: PairMap<'a>,
    starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
}

/// Posts the group's alerts to Alertmanager's API v2.
#[notifier(name = "alertmanager", validate = validate)]
pub fn alertmanager(p: &Alertmanager, n: &Notification) -> Result<Vec<Delivery>, String> {
    let alerts: Vec<PostableAlert<'_>> = n
        .alerts
        .iter()
        .map(|a| PostableAlert {
            labels: PairMap(&a.labels),
            annotations: PairMap(&a.annotations),
            starts_at: rfc3339_millis(a.starts_at),
            ends_at: match (a.status, a.ends_at) {
                (AlertStatus::Resolved, Some(t)) => Some(rfc3339_millis(t)),
                _ => None,
            },
            generator_url: &a.generator_url,
        })
        .collect();
    let url = format!("{}/api/v2/alerts", p.url.trim_end_matches('/'));
    let request = HttpRequest::post_json(url, json::to_string(&alerts)?);
    let headers = merge_headers(request.headers, &p.headers);
    Ok(vec![Delivery::Http(HttpRequest { headers, ..request })])
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

    fn render_with(params: &str, n: &Notification) -> HttpRequest {
        let p = configure::<Plugin>(params).unwrap();
        only_http(Plugin::render(&p, n).unwrap())
    }

    const PARAMS: &str = r#"{"url": "http://127.0.0.1:9093/"}"#;

    #[test]
    fn default_rendering_matches_golden() {
        assert_golden!("firing.txt", &http_text(&render_with(PARAMS, &fixture())));
        assert_golden!(
            "resolved.txt",
            &http_text(&render_with(PARAMS, &resolved_fixture())),
        );
    }

    #[test]
    fn firing_alerts_have_no_ends_at() {
        let r = render_with(PARAMS, &fixture());
        assert_eq!(r.url, "http://127.0.0.1:9093/api/v2/alerts");
        let alerts: Value = serde_json::from_str(&r.body).unwrap();
        let alerts = alerts.as_array().unwrap();
        assert_eq!(alerts.len(), 3);
        assert!(alerts[0].get("endsAt").is_none());
        assert!(alerts[1].get("endsAt").is_none());
        assert_eq!(alerts[2]["endsAt"], "2026-11-22T03:50:00.000Z");
        assert_eq!(alerts[0]["startsAt"], "2026-11-22T03:48:23.123Z");
        assert_eq!(alerts[0]["labels"]["model"], "resnet");
        assert!(alerts[0].get("status").is_none());
    }

    #[test]
    fn empty_generator_url_is_left_out_and_route_prefix_kept() {
        let mut n = fixture();
        n.alerts[0].generator_url.clear();
        let r = render_with(
            r#"{"url": "https://am.example.com/alertmanager", "headers": {"Authorization": "Bearer t"}}"#,
            &n,
        );
        assert_eq!(r.url, "https://am.example.com/alertmanager/api/v2/alerts");
        assert_eq!(r.headers[1], ("Authorization".into(), "Bearer t".into()));
        let alerts: Value = serde_json::from_str(&r.body).unwrap();
        assert!(alerts[0].get("generatorURL").is_none());
        assert!(alerts[1].get("generatorURL").is_some());
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").starts_with("invalid params: missing field `url`"));
        assert_eq!(
            err(r#"{"url": "http://am:9093/?x=1"}"#),
            "invalid params: `url` is a base URL and cannot have a query or fragment: \"http://am:9093/?x=1\""
        );
        assert!(
            err(r#"{"url": "http://am", "title": "x"}"#)
                .starts_with("invalid params: unknown field `title`")
        );
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "alertmanager");
        let names: Vec<_> = info.params.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["url", "headers"]);
    }
}
