//! The `msteams` notifier: posts an Adaptive Card to a Microsoft Teams
//! Workflows webhook (or a legacy incoming webhook).
//!
//! ```toml
//! [[receivers]]
//! name = "ml-teams"
//! notifier = "msteams"
//! params = { url = "https://prod-00.westeurope.logic.azure.com/workflows/..." }
//! allow_hosts = ["prod-00.westeurope.logic.azure.com"]
//! ```
//!
//! The body is `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": <card>}]}`, the
//! shape the Teams "post to a channel when a webhook request is received"
//! workflow expects. The Adaptive Card (version 1.4, full width) has the
//! `title` coloured by state (green when resolved, else by the highest
//! firing `severity`: red for critical, error or none, amber for warning,
//! blue for info), the optional `body`, then one container per alert, most
//! important first (firing before resolved, then by severity, then earliest
//! start): its summary, description and a FactSet of the labels that set it
//! apart from the group, its other annotations, start and end, and a link to
//! its source. Past `max_alerts` a line says how many more there are; an
//! "Open in Vigil" button links to `externalURL`.
//!
//! `title` and `body` are Go templates over Alertmanager's notification data
//! (`.Status`, `.GroupLabels`, `.CommonLabels`, `.Alerts`, ...), parsed when
//! the configuration loads; their output is Adaptive Card markdown.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_plugin_sdk::json;
use vigil_plugin_sdk::notifier::{
    DEFAULT_SUBJECT, Severity, Template, by_importance, join_errors, max_severity, merge_headers,
    render_or, template_data, validate_headers, validate_url,
};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `msteams` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct MsTeams {
    /// The Workflows (or incoming) webhook URL (its host must also be in the
    /// receiver's `allow_hosts`).
    pub url: String,
    /// Card title template. Default: Alertmanager's subject, e.g.
    /// `[FIRING:2] ModelErrorRateHigh (triton)`.
    pub title: Option<Template>,
    /// Template of a text block under the title (markdown). Default: none.
    pub body: Option<Template>,
    /// Show at most this many alerts (1 to 50); a line counts the rest.
    /// Default: 10.
    #[serde(default = "default_max_alerts")]
    pub max_alerts: u32,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_max_alerts() -> u32 {
    10
}

/// Keeps the card well under Teams' 28 KB message limit.
const MAX_ALERTS: u32 = 50;

fn validate(p: &MsTeams) -> Result<(), String> {
    let mut errors = Vec::new();
    validate_url("url", &p.url, &mut errors);
    validate_headers(&p.headers, &mut errors);
    if !(1..=MAX_ALERTS).contains(&p.max_alerts) {
        errors.push(format!(
            "`max_alerts` must be between 1 and {MAX_ALERTS}, got {}",
            p.max_alerts
        ));
    }
    join_errors(errors)
}

#[derive(Serialize)]
struct Message {
    #[serde(rename = "type")]
    kind: &'static str,
    attachments: [CardAttachment; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CardAttachment {
    content_type: &'static str,
    content: Card,
}

#[derive(Serialize)]
struct Card {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    msteams: TeamsOptions,
    body: Vec<Element>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
}

#[derive(Serialize)]
struct TeamsOptions {
    width: &'static str,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Element {
    TextBlock(TextBlock),
    FactSet {
        facts: Vec<Fact>,
    },
    Container {
        separator: bool,
        items: Vec<Element>,
    },
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct TextBlock {
    text: String,
    wrap: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_subtle: bool,
}

fn text(text: impl Into<String>) -> TextBlock {
    TextBlock {
        text: text.into(),
        wrap: true,
        ..TextBlock::default()
    }
}

#[derive(Serialize)]
struct Fact {
    title: String,
    value: String,
}

#[derive(Serialize)]
struct Action {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    url: String,
}

/// Posts an Adaptive Card with a FactSet per alert to a Teams webhook.
#[notifier(name = "msteams", validate = validate)]
pub fn msteams(p: &MsTeams, n: &Notification) -> Result<Vec<Delivery>, String> {
    let data = template_data(n);
    let firing = n.status == AlertStatus::Firing;
    let title = render_or(p.title.as_ref(), &DEFAULT_SUBJECT, &data)?;
    let mut body = vec![Element::TextBlock(TextBlock {
        size: Some("Large"),
        weight: Some("Bolder"),
        color: Some(if firing {
            colour(max_severity(
                n.alerts.iter().filter(|a| a.status == AlertStatus::Firing),
            ))
        } else {
            "Good"
        }),
        ..text(format!(
            "{} {}",
            if firing { "🔥" } else { "✅" },
            title.trim()
        ))
    })];
    if let Some(t) = &p.body {
        let rendered = t.render(&data);
        if !rendered.trim().is_empty() {
            body.push(Element::TextBlock(text(rendered)));
        }
    }
    let alerts = by_importance(&n.alerts);
    let shown = alerts.len().min(p.max_alerts as usize);
    body.extend(
        alerts[..shown]
            .iter()
            .map(|a| alert_container(a, &n.common_labels)),
    );
    let more = (alerts.len() - shown) as u64 + u64::from(n.truncated_alerts);
    if more > 0 {
        body.push(Element::TextBlock(TextBlock {
            is_subtle: true,
            ..text(format!(
                "and {more} more alert{}",
                if more == 1 { "" } else { "s" }
            ))
        }));
    }
    let actions = if n.external_url.is_empty() {
        Vec::new()
    } else {
        vec![Action {
            kind: "Action.OpenUrl",
            title: "Open in Vigil",
            url: n.external_url.clone(),
        }]
    };
    let message = Message {
        kind: "message",
        attachments: [CardAttachment {
            content_type: "application/vnd.microsoft.card.adaptive",
            content: Card {
                schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                kind: "AdaptiveCard",
                version: "1.4",
                msteams: TeamsOptions { width: "Full" },
                body,
                actions,
            },
        }],
    };
    let request = HttpRequest::post_json(&p.url, json::to_string(&message)?);
    let headers = merge_headers(request.headers, &p.headers);
    Ok(vec![Delivery::Http(HttpRequest { headers, ..request })])
}

/// The Adaptive Card text colour of a firing severity.
fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "Warning",
        Severity::Info => "Accent",
        Severity::Critical | Severity::Error | Severity::None => "Attention",
    }
}

fn alert_container(a: &Alert, common_labels: &[Pair]) -> Element {
    let severity = Severity::of(a);
    let (emoji, color) = match a.status {
        AlertStatus::Resolved => ("✅", "Good"),
        AlertStatus::Firing => (
            match severity {
                Severity::Warning => "🟠",
                Severity::Info => "🔵",
                _ => "🔴",
            },
            colour(severity),
        ),
    };
    let heading = a
        .annotation("summary")
        .or(a.label("alertname"))
        .unwrap_or("alert");
    let status = match a.status {
        AlertStatus::Resolved => " (resolved)",
        AlertStatus::Firing => "",
    };
    let mut items = vec![Element::TextBlock(TextBlock {
        weight: Some("Bolder"),
        color: Some(color),
        ..text(format!("{emoji} {heading}{status}"))
    })];
    if let Some(d) = a.annotation("description") {
        items.push(Element::TextBlock(text(d)));
    }
    let fact = |title: &str, value: &str| Fact {
        title: title.to_string(),
        value: value.to_string(),
    };
    let mut facts: Vec<Fact> = a
        .labels
        .iter()
        .filter(|l| !common_labels.contains(l))
        .map(|(k, v)| fact(k, v))
        .collect();
    facts.extend(
        a.annotations
            .iter()
            .filter(|(k, _)| k != "summary" && k != "description")
            .map(|(k, v)| fact(k, v)),
    );
    facts.push(fact("started", &rfc3339_millis(a.starts_at)));
    if let (AlertStatus::Resolved, Some(end)) = (a.status, a.ends_at) {
        facts.push(fact("ended", &rfc3339_millis(end)));
    }
    items.push(Element::FactSet { facts });
    if !a.generator_url.is_empty() {
        // Parentheses would end the markdown link early.
        let url = a.generator_url.replace('(', "%28").replace(')', "%29");
        items.push(Element::TextBlock(text(format!("[Source]({url})"))));
    }
    Element::Container {
        separator: true,
        items,
    }
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

    const PARAMS: &str = r#"{"url": "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=x"}"#;

    fn render_with(params: &str, n: &Notification) -> HttpRequest {
        let p = configure::<Plugin>(params).unwrap();
        only_http(Plugin::render(&p, n).unwrap())
    }

    fn card(params: &str, n: &Notification) -> Value {
        let b: Value = serde_json::from_str(&render_with(params, n).body).unwrap();
        b["attachments"][0]["content"].clone()
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
    fn card_shape() {
        let b: Value = serde_json::from_str(&render_with(PARAMS, &fixture()).body).unwrap();
        assert_eq!(b["type"], "message");
        assert_eq!(
            b["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let c = &b["attachments"][0]["content"];
        assert_eq!(c["type"], "AdaptiveCard");
        assert_eq!(c["version"], "1.4");
        assert_eq!(
            c["body"][0]["text"],
            "🔥 [FIRING:2] ModelErrorRateHigh (triton)"
        );
        assert_eq!(c["body"][0]["color"], "Attention");
        // Most important first: the critical bert, then resnet, then llama.
        assert_eq!(
            c["body"][1]["items"][0]["text"],
            "🔴 Error rate 31% on bert"
        );
        assert_eq!(
            c["body"][2]["items"][0]["text"],
            "🟠 Error rate 7.2% on resnet"
        );
        let facts = &c["body"][2]["items"][2]["facts"];
        assert_eq!(facts[0]["title"], "model");
        assert_eq!(facts[0]["value"], "resnet");
        assert_eq!(c["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(c["actions"][0]["url"], "http://vigil.example.com:9090");
    }

    #[test]
    fn max_alerts_adds_a_more_line() {
        let c = card(
            r#"{"url": "https://h/", "max_alerts": 2, "body": "Team **{{ .CommonLabels.job }}**"}"#,
            &fixture(),
        );
        let body = c["body"].as_array().unwrap();
        assert_eq!(body.len(), 5, "{body:?}");
        assert_eq!(body[1]["text"], "Team **triton**");
        assert_eq!(body[4]["text"], "and 1 more alert");
        assert_eq!(body[4]["isSubtle"], true);
    }

    #[test]
    fn no_button_without_an_external_url() {
        let mut n = fixture();
        n.external_url.clear();
        assert!(card(PARAMS, &n).get("actions").is_none());
        let mut n = fixture();
        n.alerts.remove(1);
        assert_eq!(card(PARAMS, &n)["body"][0]["color"], "Warning");
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").starts_with("invalid params: missing field `url`"));
        assert_eq!(
            err(r#"{"url": "https://", "max_alerts": 51, "headers": {"a b": "c"}}"#),
            "invalid params: `url` has no host: \"https://\"; \
             `headers.a b` is not a valid HTTP header; \
             `max_alerts` must be between 1 and 50, got 51"
        );
        assert!(
            err(r#"{"url": "https://h/", "body": "{{ .Status | nosuch }}"}"#).starts_with(
                "invalid params: `body`: template error at line 1, column 14: unknown function `nosuch`"
            )
        );
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "msteams");
        let names: Vec<_> = info.params.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["url", "title", "body", "max_alerts", "headers"]);
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
