//! The `slack` notifier: posts a Block Kit message to a Slack incoming
//! webhook.
//!
//! ```toml
//! [[receivers]]
//! name = "ml-chat"
//! notifier = "slack"
//! params = { url = "https://hooks.slack.com/services/T000/B000/XXXX", channel = "#ml-alerts" }
//! allow_hosts = ["hooks.slack.com"]
//! ```
//!
//! The message is one attachment whose colour bar shows the group's state:
//! green when resolved, else by the highest `severity` among the firing
//! alerts (red for critical, error or none, amber for warning, blue for
//! info). Inside it: a header with a status emoji and the `title`, then one
//! section per alert, most important first (firing before resolved, then by
//! severity, then earliest start), each with an emoji for its state, its
//! summary, description, the labels that set it apart from the group, its
//! start (and end) and a link to its source; past `max_alerts` a context
//! line says how many more there are, and the last line links to Vigil.
//! The top-level `text` (the `title`) is what notifications and clients
//! without Block Kit show.
//!
//! `title` and `body` are Go templates over Alertmanager's notification data
//! (`.Status`, `.GroupLabels`, `.CommonLabels`, `.Alerts`, ...), parsed when
//! the configuration loads. The data's strings arrive escaped for Slack
//! (`&`, `<`, `>`), so a template may write its own links:
//! `<{{ .ExternalURL }}|Vigil>`. A `body` replaces the per-alert sections
//! with one `mrkdwn` section of its own. Slack's limits are applied: the
//! header is cut to 150 characters and a section to 3000.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_plugin_sdk::json;
use vigil_plugin_sdk::notifier::{
    DEFAULT_SUBJECT, Severity, Template, by_importance, join_errors, map_strings, max_severity,
    merge_headers, render_or, template_data, truncate, validate_headers, validate_url,
};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `slack` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The incoming webhook's URL, `https://hooks.slack.com/services/...`
    /// (its host must also be in the receiver's `allow_hosts`).
    pub url: String,
    /// Post to this channel (`#name` or a user's `@name`) instead of the
    /// webhook's own, where the webhook allows it.
    pub channel: Option<String>,
    /// The name the message is posted under, where the webhook allows it.
    pub username: Option<String>,
    /// The emoji shown as the poster's avatar, e.g. `:rotating_light:`.
    pub icon_emoji: Option<String>,
    /// Header and fallback-text template. Default: Alertmanager's subject,
    /// e.g. `[FIRING:2] ModelErrorRateHigh (triton)`.
    pub title: Option<Template>,
    /// A `mrkdwn` template that replaces the per-alert sections. Default:
    /// none (one section per alert).
    pub body: Option<Template>,
    /// Show at most this many alerts (1 to 45, within Slack's 50 blocks);
    /// a context line counts the rest. Default: 10.
    #[serde(default = "default_max_alerts")]
    pub max_alerts: u32,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_max_alerts() -> u32 {
    10
}

/// Header text limit of Block Kit.
const MAX_HEADER: usize = 150;
/// Section text limit of Block Kit.
const MAX_SECTION: usize = 3000;
/// Keeps header, sections and two context blocks within Slack's 50 blocks.
const MAX_ALERTS: u32 = 45;

fn validate(p: &Slack) -> Result<(), String> {
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
struct Payload<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon_emoji: Option<&'a str>,
    text: String,
    attachments: [Attachment; 1],
}

#[derive(Serialize)]
struct Attachment {
    color: &'static str,
    fallback: String,
    blocks: Vec<Block>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Header { text: Text },
    Section { text: Text },
    Context { elements: Vec<Text> },
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Text {
    #[serde(rename = "plain_text")]
    Plain { text: String, emoji: bool },
    #[serde(rename = "mrkdwn")]
    Mrkdwn { text: String },
}

fn mrkdwn(text: String) -> Text {
    Text::Mrkdwn {
        text: truncate(&text, MAX_SECTION).into_owned(),
    }
}

/// Posts a Block Kit message with a section per alert to a Slack webhook.
#[notifier(name = "slack", validate = validate)]
pub fn slack(p: &Slack, n: &Notification) -> Result<Vec<Delivery>, String> {
    let data = map_strings(template_data(n), escape);
    let title = render_or(p.title.as_ref(), &DEFAULT_SUBJECT, &data)?;
    let title = title.trim();
    let firing = n.status == AlertStatus::Firing;
    let header = format!(
        "{} {title}",
        if firing {
            ":fire:"
        } else {
            ":white_check_mark:"
        }
    );
    let mut blocks = vec![Block::Header {
        text: Text::Plain {
            text: truncate(&header, MAX_HEADER).into_owned(),
            emoji: true,
        },
    }];
    let mut footer = Vec::new();
    match &p.body {
        Some(body) => {
            let text = body.render(&data);
            if !text.trim().is_empty() {
                blocks.push(Block::Section { text: mrkdwn(text) });
            }
        }
        None => {
            let alerts = by_importance(&n.alerts);
            let shown = alerts.len().min(p.max_alerts as usize);
            for a in &alerts[..shown] {
                blocks.push(Block::Section {
                    text: mrkdwn(section(a, &n.common_labels)),
                });
            }
            let more = (alerts.len() - shown) as u64 + u64::from(n.truncated_alerts);
            if more > 0 {
                footer.push(mrkdwn(format!(
                    "and {more} more alert{}",
                    if more == 1 { "" } else { "s" }
                )));
            }
        }
    }
    if !n.external_url.is_empty() {
        footer.push(mrkdwn(format!(
            "<{}|Open in Vigil>",
            escape(&n.external_url)
        )));
    }
    if !footer.is_empty() {
        blocks.push(Block::Context { elements: footer });
    }
    let color = if !firing {
        "#2eb886"
    } else {
        match max_severity(n.alerts.iter().filter(|a| a.status == AlertStatus::Firing)) {
            Severity::Warning => "#daa038",
            Severity::Info => "#439fe0",
            Severity::Critical | Severity::Error | Severity::None => "#d63232",
        }
    };
    let payload = Payload {
        channel: p.channel.as_deref(),
        username: p.username.as_deref(),
        icon_emoji: p.icon_emoji.as_deref(),
        text: title.to_string(),
        attachments: [Attachment {
            color,
            fallback: title.to_string(),
            blocks,
        }],
    };
    let request = HttpRequest::post_json(&p.url, json::to_string(&payload)?);
    let headers = merge_headers(request.headers, &p.headers);
    Ok(vec![Delivery::Http(HttpRequest { headers, ..request })])
}

/// One alert as `mrkdwn`: emoji and summary, description, distinguishing
/// labels, times and source link; every piece of data escaped.
fn section(a: &Alert, common_labels: &[Pair]) -> String {
    let emoji = match (a.status, Severity::of(a)) {
        (AlertStatus::Resolved, _) => ":white_check_mark:",
        (_, Severity::Warning) => ":large_orange_circle:",
        (_, Severity::Info) => ":large_blue_circle:",
        _ => ":red_circle:",
    };
    let heading = a
        .annotation("summary")
        .or(a.label("alertname"))
        .unwrap_or("alert");
    let mut out = format!("{emoji} *{}*", escape(heading));
    if a.status == AlertStatus::Resolved {
        out.push_str(" (resolved)");
    }
    if let Some(d) = a.annotation("description") {
        out.push('\n');
        out.push_str(&escape(d));
    }
    let own: Vec<String> = a
        .labels
        .iter()
        .filter(|l| !common_labels.contains(l))
        .map(|(k, v)| format!("`{}={}`", escape(k), escape(v)))
        .collect();
    if !own.is_empty() {
        out.push('\n');
        out.push_str(&own.join(" "));
    }
    out.push_str(&format!("\n*Started:* {}", rfc3339_millis(a.starts_at)));
    if let (AlertStatus::Resolved, Some(end)) = (a.status, a.ends_at) {
        out.push_str(&format!("  *Ended:* {}", rfc3339_millis(end)));
    }
    if !a.generator_url.is_empty() {
        out.push_str(&format!("  <{}|Source>", escape(&a.generator_url)));
    }
    out
}

/// Slack's escaping of `&`, `<` and `>` in message text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
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

    fn render_with(params: &str, n: &Notification) -> HttpRequest {
        let p = configure::<Plugin>(params).unwrap();
        only_http(Plugin::render(&p, n).unwrap())
    }

    fn body(params: &str, n: &Notification) -> Value {
        serde_json::from_str(&render_with(params, n).body).unwrap()
    }

    const PARAMS: &str = r##"{"url": "https://hooks.slack.com/services/T0/B0/x", "channel": "#ml-alerts", "username": "vigil", "icon_emoji": ":rotating_light:"}"##;

    #[test]
    fn default_rendering_matches_golden() {
        assert_golden!("firing.txt", &http_text(&render_with(PARAMS, &fixture())));
        assert_golden!(
            "resolved.txt",
            &http_text(&render_with(
                r#"{"url": "https://hooks.slack.com/services/T0/B0/x"}"#,
                &resolved_fixture(),
            )),
        );
    }

    #[test]
    fn sections_follow_importance_and_escape_data() {
        let b = body(PARAMS, &fixture());
        let blocks = b["attachments"][0]["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(
            blocks[0]["text"]["text"],
            ":fire: [FIRING:2] ModelErrorRateHigh (triton)"
        );
        let sections: Vec<&str> = blocks[1..4]
            .iter()
            .map(|s| s["text"]["text"].as_str().unwrap())
            .collect();
        assert!(sections[0].starts_with(":red_circle: *Error rate 31% on bert*"));
        assert!(sections[1].starts_with(":large_orange_circle: *Error rate 7.2% on resnet*"));
        assert!(sections[1].contains("p99 &gt; 2s &amp; &lt;retrying&gt;"));
        assert!(sections[2].starts_with(":white_check_mark: *Error rate 12% on llama* (resolved)"));
        assert_eq!(b["attachments"][0]["color"], "#d63232");
        assert_eq!(b["text"], "[FIRING:2] ModelErrorRateHigh (triton)");
    }

    #[test]
    fn colour_follows_the_highest_firing_severity() {
        let colour = |n: &Notification| body(PARAMS, n)["attachments"][0]["color"].clone();
        let mut n = fixture();
        n.alerts.remove(1); // the critical one
        assert_eq!(colour(&n), "#daa038");
        assert_eq!(colour(&resolved_fixture()), "#2eb886");
    }

    #[test]
    fn max_alerts_adds_a_more_line() {
        let mut n = fixture();
        n.truncated_alerts = 4;
        let b = body(
            r#"{"url": "https://hooks.slack.com/services/T0/B0/x", "max_alerts": 1}"#,
            &n,
        );
        let blocks = b["attachments"][0]["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("bert"));
        assert_eq!(blocks[2]["type"], "context");
        assert_eq!(blocks[2]["elements"][0]["text"], "and 6 more alerts");
        assert_eq!(
            blocks[2]["elements"][1]["text"],
            "<http://vigil.example.com:9090|Open in Vigil>"
        );
    }

    #[test]
    fn title_and_body_templates_and_limits() {
        let long = "x".repeat(200);
        let b = body(
            &format!(
                r#"{{"url": "https://h/", "title": "{long}", "body": "*{{{{ .CommonLabels.job }}}}*: {{{{ (index .Alerts 0).Annotations.description }}}} <{{{{ .ExternalURL }}}}|Vigil>"}}"#
            ),
            &fixture(),
        );
        let blocks = b["attachments"][0]["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), MAX_HEADER);
        assert!(header.ends_with("x…"));
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            blocks[1]["text"]["text"],
            "*triton*: p99 &gt; 2s &amp; &lt;retrying&gt; \"hot\" shard <http://vigil.example.com:9090|Vigil>"
        );
        // The fallback text is not cut to the header's limit.
        assert_eq!(b["text"], long);

        let mut n = fixture();
        n.alerts[0].annotations[0].1 = "y".repeat(5000);
        let b = body(r#"{"url": "https://h/"}"#, &n);
        let text = b["attachments"][0]["blocks"][2]["text"]["text"]
            .as_str()
            .unwrap();
        assert_eq!(text.chars().count(), MAX_SECTION);
    }

    #[test]
    fn optional_fields_are_omitted_and_headers_added() {
        let r = render_with(
            r#"{"url": "https://h/", "headers": {"X-Team": "ml"}}"#,
            &fixture(),
        );
        let b: Value = serde_json::from_str(&r.body).unwrap();
        assert!(b.get("channel").is_none() && b.get("username").is_none());
        assert_eq!(
            r.headers,
            [
                ("Content-Type".to_string(), "application/json".to_string()),
                ("X-Team".to_string(), "ml".to_string())
            ]
        );
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").starts_with("invalid params: missing field `url`"));
        assert_eq!(
            err(r#"{"url": "hooks.slack.com", "max_alerts": 0}"#),
            "invalid params: `url` must start with http:// or https://, got \"hooks.slack.com\"; \
             `max_alerts` must be between 1 and 45, got 0"
        );
        assert_eq!(
            err(r#"{"url": "https://h/", "title": "{{ if .Status }}"}"#),
            "invalid params: `title`: template error at line 1, column 1: unclosed `if` (add a matching {{ end }})"
        );
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "slack");
        let names: Vec<_> = info.params.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "url",
                "channel",
                "username",
                "icon_emoji",
                "title",
                "body",
                "max_alerts",
                "headers"
            ]
        );
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
