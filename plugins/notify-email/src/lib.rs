//! The `email` notifier: one e-mail per notification, with a plain-text and
//! an HTML body.
//!
//! The host sends it with the SMTP settings of its own configuration; the
//! plugin only chooses recipients and renders the text.
//!
//! ```toml
//! [[receivers]]
//! name = "ml-oncall"
//! notifier = "email"
//! params = { to = ["ml-oncall@example.com"], cc = ["Platform <platform@example.com>"] }
//! ```
//!
//! `subject` (alias `title`), `text` (alias `body`) and `html` are Go
//! templates over Alertmanager's notification data (`.Status`,
//! `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`, `.ExternalURL`,
//! `.Alerts` with `.Alerts.Firing` and `.Alerts.Resolved`, each alert with
//! `.Labels`, `.Annotations`, `.StartsAt`, `.EndsAt`, `.GeneratorURL`), so
//! Alertmanager templates carry over. Templates are parsed when the
//! configuration loads: a bad one is rejected with the parameter's name and
//! the line and column of the error.
//!
//! The defaults: the subject is Alertmanager's (`[FIRING:2] ModelErrorRateHigh
//! (triton)`: status, firing count, the group labels' values, then the other
//! common labels' values); both bodies list every alert with its status,
//! summary, description, labels, other annotations, start (and end once
//! resolved), a link to the rule that produced it (`generatorURL`) and a
//! link to Vigil (`externalURL`).
//!
//! In the `html` template every string of the data (label and annotation
//! values, URLs, the receiver) is already HTML-escaped, as Alertmanager's
//! `html/template` would escape it, so write `{{ .Annotations.summary }}`,
//! not `{{ .Annotations.summary | html }}` (which would escape twice), and
//! links that are not `http(s)://` are blanked. `html = ""` sends a
//! plain-text e-mail.
#![deny(missing_docs)]

use std::borrow::Cow;

use vigil_plugin_sdk::notifier::{
    DEFAULT_SUBJECT, DefaultTemplate, Template, join_errors, map_strings, render_or, template_data,
};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `email` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct EmailParams {
    /// Recipients, at least one: `ops@example.com` or
    /// `Ops <ops@example.com>`, one address per entry.
    pub to: Vec<String>,
    /// Carbon-copy recipients, in the same form as `to`.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Subject template (alias `title`); line breaks become spaces. Default:
    /// Alertmanager's, e.g. `[FIRING:2] ModelErrorRateHigh (triton)`.
    #[serde(alias = "title")]
    pub subject: Option<Template>,
    /// Plain-text body template (alias `body`). Default: every alert with
    /// its status, summary, description, labels, annotations, times and
    /// links.
    #[serde(alias = "body")]
    pub text: Option<Template>,
    /// HTML body template; the data's strings arrive HTML-escaped, so do
    /// not pipe them through `html`. Default: the plain-text content as a
    /// table; `""` sends no HTML part.
    pub html: Option<Template>,
}

fn validate(p: &EmailParams) -> Result<(), String> {
    let mut errors = Vec::new();
    if p.to.is_empty() {
        errors.push("`to` needs at least one address".to_string());
    }
    for (field, list) in [("to", &p.to), ("cc", &p.cc)] {
        for (i, addr) in list.iter().enumerate() {
            if let Err(why) = check_address(addr) {
                errors.push(format!("`{field}[{i}]` {why}: {addr:?}"));
            }
        }
    }
    join_errors(errors)
}

/// A light check: the host's mailer parses the address for real, but a
/// missing `@` or a list in one entry is a config mistake worth naming now.
fn check_address(addr: &str) -> Result<(), &'static str> {
    if addr.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if addr.contains([',', ';']) {
        return Err("holds more than one address; use one entry per address");
    }
    let bare = match (addr.rfind('<'), addr.ends_with('>')) {
        (Some(i), true) => &addr[i + 1..addr.len() - 1],
        _ => addr.trim(),
    };
    match bare.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !bare.contains(' ') => {
            Ok(())
        }
        _ => Err("is not an e-mail address"),
    }
}

/// The plain-text body.
static TEXT: DefaultTemplate = DefaultTemplate::new(concat!(
    "{{ len .Alerts.Firing }} firing, {{ len .Alerts.Resolved }} resolved",
    "{{ with .GroupLabels.Values }} in {{ join \" \" . }}{{ end }}.\n",
    "{{ range .Alerts }}\n",
    "[{{ .Status | toUpper }}] {{ or .Annotations.summary .Labels.alertname }}\n",
    "{{ with .Annotations.description }}  {{ . }}\n{{ end }}",
    "  Labels: {{ .Labels }}\n",
    "{{ range .Annotations.SortedPairs }}",
    "{{ if and (ne .Name \"summary\") (ne .Name \"description\") }}  {{ .Name }}: {{ .Value }}\n{{ end }}",
    "{{ end }}",
    "  Started: {{ .StartsAt }}\n",
    "{{ if eq .Status \"resolved\" }}  Ended: {{ .EndsAt }}\n{{ end }}",
    "{{ with .GeneratorURL }}  Source: {{ . }}\n{{ end }}",
    "{{ end }}",
    "{{ with .ExternalURL }}\nView in Vigil: {{ . }}\n{{ end }}",
));

/// The HTML body; the data's strings arrive escaped.
static HTML: DefaultTemplate = DefaultTemplate::new(concat!(
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n",
    "<body style=\"margin:0;padding:16px;background:#f4f4f4;font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#333\">\n",
    "<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:680px;margin:0 auto;background:#fff;border:1px solid #ddd\">\n",
    "<tr><td style=\"padding:12px 16px;font-size:16px;color:#fff;background:",
    "{{ if eq .Status \"firing\" }}#d63232{{ else }}#2eb886{{ end }}\">",
    "<strong>{{ len .Alerts.Firing }} firing, {{ len .Alerts.Resolved }} resolved</strong>",
    "{{ with .GroupLabels.Values }} &middot; {{ join \" \" . }}{{ end }}</td></tr>\n",
    "{{ range .Alerts }}<tr><td style=\"padding:12px 16px;border-top:1px solid #ddd\">\n",
    "<div style=\"font-weight:bold;color:{{ if eq .Status \"firing\" }}#d63232{{ else }}#2eb886{{ end }}\">",
    "[{{ .Status | toUpper }}] {{ or .Annotations.summary .Labels.alertname }}</div>\n",
    "{{ with .Annotations.description }}<p style=\"margin:6px 0\">{{ . }}</p>\n{{ end }}",
    "<table cellpadding=\"2\" cellspacing=\"0\" style=\"font-size:13px\">\n",
    "{{ range .Labels.SortedPairs }}<tr><td style=\"color:#777\">{{ .Name }}</td><td>{{ .Value }}</td></tr>\n{{ end }}",
    "{{ range .Annotations.SortedPairs }}",
    "{{ if and (ne .Name \"summary\") (ne .Name \"description\") }}",
    "<tr><td style=\"color:#777\">{{ .Name }}</td><td>{{ .Value }}</td></tr>\n{{ end }}",
    "{{ end }}",
    "<tr><td style=\"color:#777\">started</td><td>{{ .StartsAt }}</td></tr>\n",
    "{{ if eq .Status \"resolved\" }}<tr><td style=\"color:#777\">ended</td><td>{{ .EndsAt }}</td></tr>\n{{ end }}",
    "</table>\n",
    "{{ with .GeneratorURL }}<a href=\"{{ . }}\">Source</a>\n{{ end }}",
    "</td></tr>\n{{ end }}",
    "{{ with .ExternalURL }}<tr><td style=\"padding:12px 16px;border-top:1px solid #ddd\">",
    "<a href=\"{{ . }}\">View in Vigil</a></td></tr>\n{{ end }}",
    "</table>\n</body></html>\n",
));

/// Sends one e-mail listing the group's alerts, with text and HTML bodies.
#[notifier(name = "email", validate = validate)]
pub fn email(p: &EmailParams, n: &Notification) -> Result<Vec<Delivery>, String> {
    let data = template_data(n);
    let subject = one_line(&render_or(p.subject.as_ref(), &DEFAULT_SUBJECT, &data)?);
    let text = render_or(p.text.as_ref(), &TEXT, &data)?;
    let linkable = with_safe_links(n);
    let html_data = map_strings(template_data(&linkable), html_escape);
    let html = render_or(p.html.as_ref(), &HTML, &html_data)?;
    Ok(vec![Delivery::Email(Email {
        to: p.to.clone(),
        cc: p.cc.clone(),
        subject,
        text,
        html: (!html.trim().is_empty()).then_some(html),
    })])
}

/// Whitespace runs that hold a line break become one space: a subject is
/// one header line.
fn one_line(s: &str) -> String {
    if !s.contains(['\r', '\n']) {
        return s.trim().to_string();
    }
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The notification with links that are not `http(s)://` blanked, so an
/// `href` can never be `javascript:`.
fn with_safe_links(n: &Notification) -> Cow<'_, Notification> {
    let safe = |url: &str| {
        let lower = url.to_ascii_lowercase();
        url.is_empty() || lower.starts_with("http://") || lower.starts_with("https://")
    };
    if safe(&n.external_url) && n.alerts.iter().all(|a| safe(&a.generator_url)) {
        return Cow::Borrowed(n);
    }
    let mut n = n.clone();
    if !safe(&n.external_url) {
        n.external_url.clear();
    }
    for a in &mut n.alerts {
        if !safe(&a.generator_url) {
            a.generator_url.clear();
        }
    }
    Cow::Owned(n)
}

/// Escapes text for HTML element content and quoted attributes, like Go's
/// `html/template`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
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
    use vigil_plugin_sdk::testing::{assert_golden, fixture, only_email, resolved_fixture};

    fn render_with(params: &str, n: &Notification) -> Email {
        let p = configure::<Plugin>(params).unwrap();
        only_email(Plugin::render(&p, n).unwrap())
    }

    fn render(params: &str) -> Email {
        render_with(params, &fixture())
    }

    fn golden_text(e: &Email) -> String {
        format!(
            "To: {}\nCc: {}\nSubject: {}\n\n{}",
            e.to.join(", "),
            e.cc.join(", "),
            e.subject,
            e.text
        )
    }

    const PARAMS: &str =
        r#"{"to": ["ml-oncall@example.com"], "cc": ["Platform <platform@example.com>"]}"#;

    #[test]
    fn default_rendering_matches_golden() {
        let e = render(PARAMS);
        assert_golden!("firing.txt", &golden_text(&e));
        assert_golden!("firing.html", e.html.as_deref().unwrap_or(""));
        let e = render_with(PARAMS, &resolved_fixture());
        assert_golden!("resolved.txt", &golden_text(&e));
    }

    #[test]
    fn subject_is_alertmanagers_default() {
        assert_eq!(
            render(PARAMS).subject,
            "[FIRING:2] ModelErrorRateHigh (triton)"
        );
        assert_eq!(
            render_with(PARAMS, &resolved_fixture()).subject,
            "[RESOLVED] ModelErrorRateHigh (triton)"
        );
    }

    #[test]
    fn html_escapes_data_but_text_does_not() {
        let e = render(PARAMS);
        let html = e.html.unwrap();
        assert!(html.contains("p99 &gt; 2s &amp; &lt;retrying&gt; &#34;hot&#34; shard"));
        assert!(!html.contains("<retrying>"));
        assert!(
            html.contains(
                "href=\"http://vigil.example.com:9090/graph?g0.expr=errors&amp;g0.tab=1\""
            )
        );
        assert!(e.text.contains("p99 > 2s & <retrying> \"hot\" shard"));
        // A user's template sees escaped data too.
        let e = render(
            r#"{"to": ["a@b.c"], "html": "<p>{{ (index .Alerts 0).Annotations.description }}</p>"}"#,
        );
        assert_eq!(
            e.html.as_deref(),
            Some("<p>p99 &gt; 2s &amp; &lt;retrying&gt; &#34;hot&#34; shard</p>")
        );
    }

    #[test]
    fn html_links_must_be_http() {
        let mut n = fixture();
        n.alerts[0].generator_url = "javascript:alert(1)".into();
        let e = render_with(PARAMS, &n);
        let html = e.html.unwrap();
        assert!(!html.contains("javascript"), "{html}");
        assert!(e.text.contains("Source: javascript:alert(1)"));
    }

    #[test]
    fn title_and_body_aliases_and_text_only() {
        let e = render(
            r#"{"to": ["a@b.c"], "title": "{{ .CommonLabels.job }}\n down", "body": "{{ len .Alerts }} alerts", "html": ""}"#,
        );
        assert_eq!(e.subject, "triton down");
        assert_eq!(e.text, "3 alerts");
        assert_eq!(e.html, None);
        assert_eq!(e.to, ["a@b.c"]);
        assert!(e.cc.is_empty());
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(err("{}").starts_with("invalid params: missing field `to`"));
        assert_eq!(
            err(r#"{"to": []}"#),
            "invalid params: `to` needs at least one address"
        );
        assert_eq!(
            err(r#"{"to": ["a@b.c, d@e.f", "nobody"], "cc": ["x\n@y"]}"#),
            "invalid params: `to[0]` holds more than one address; use one entry per address: \"a@b.c, d@e.f\"; \
             `to[1]` is not an e-mail address: \"nobody\"; \
             `cc[0]` contains a control character: \"x\\n@y\""
        );
        // The error names the parameter as the user spelt it.
        assert_eq!(
            err(r#"{"to": ["a@b.c"], "title": "{{ .Status }"}"#),
            "invalid params: `title`: template error at line 1, column 12: unexpected `}` in action"
        );
        let e = err(r#"{"to": ["a@b.c"], "html": "<p>\n{{ .Alerts | lenn }}</p>"}"#);
        assert!(
            e.starts_with(
                "invalid params: `html`: template error at line 2, column 14: unknown function `lenn` (did you mean `len`?)"
            ),
            "{e}"
        );
        assert!(configure::<Plugin>(r#"{"to": ["Ops Team <ops@example.com>"]}"#).is_ok());
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "email");
        let docs: Vec<_> = info
            .params
            .iter()
            .map(|d| (d.name.as_str(), d.required))
            .collect();
        assert_eq!(
            docs,
            [
                ("to", true),
                ("cc", false),
                ("subject", false),
                ("text", false),
                ("html", false)
            ]
        );
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
