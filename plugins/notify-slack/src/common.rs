//! Helpers the bundled notifiers share.
//!
//! Plugin crates cannot depend on each other and these are too specific to
//! the bundled notifiers for the SDK, so every `plugins/notify-*` crate
//! carries this same file: keep the copies identical (`cmp` them). Each
//! crate uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer, Error as _};
use vigil_plugin_sdk::notifier::{Alert, AlertStatus, Pair};
use vigil_plugin_sdk::template::{self, TemplateError, Value};

/// A Go template parameter, parsed while the params are read, so that a bad
/// template fails `configure` naming the parameter and the position.
#[derive(Clone, Debug)]
pub struct Template(template::Template);

impl Template {
    /// Renders with `data` as the dot; a run-time error renders inline as
    /// Alertmanager does, because a visible error beats a lost page.
    pub fn render(&self, data: &Value<'_>) -> String {
        self.0.render(data)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        template::Template::parse(&source)
            .map(Template)
            .map_err(|e| D::Error::custom(describe(&source, &e)))
    }
}

/// `template error at line L, column C: <message> (<help>)`, with the
/// column counted in characters from 1.
fn describe(source: &str, e: &TemplateError) -> String {
    let mut end = e.offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let mut text = format!(
        "template error at line {line}, column {column}: {}",
        e.message
    );
    if let Some(help) = &e.help {
        text.push_str(&format!(" ({help})"));
    }
    text
}

/// A built-in default template, parsed on first use.
pub struct Builtin {
    source: &'static str,
    parsed: OnceLock<Result<template::Template, String>>,
}

impl Builtin {
    /// A default template with this source.
    pub const fn new(source: &'static str) -> Self {
        Builtin {
            source,
            parsed: OnceLock::new(),
        }
    }

    /// The source, for docs and tests.
    pub fn source(&self) -> &'static str {
        self.source
    }

    fn get(&self) -> Result<&template::Template, String> {
        self.parsed
            .get_or_init(|| {
                template::Template::parse(self.source)
                    .map_err(|e| format!("built-in {}", describe(self.source, &e)))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Renders the user's template if there is one, else the built-in default.
pub fn render_or(
    user: Option<&Template>,
    builtin: &Builtin,
    data: &Value<'_>,
) -> Result<String, String> {
    match user {
        Some(t) => Ok(t.render(data)),
        None => Ok(builtin.get()?.render(data)),
    }
}

/// Alertmanager's default subject: status, firing count, the group labels'
/// values and, in parentheses, the common labels that are not group labels.
pub static SUBJECT: Builtin = Builtin::new(concat!(
    r#"[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]"#,
    r#" {{ .GroupLabels.Values | join " " }}"#,
    r#"{{ if gt (len .CommonLabels) (len .GroupLabels) }} ({{ $sep := "" }}"#,
    r#"{{ range .CommonLabels.SortedPairs }}{{ if not (index $.GroupLabels .Name) }}"#,
    r#"{{ $sep }}{{ .Value }}{{ $sep = " " }}{{ end }}{{ end }}){{ end }}"#,
));

/// The template data of each alert (the elements of `.Alerts`), so that a
/// per-alert template sees `.Labels`, `.Annotations`, `.StartsAt`, ...
pub fn alert_values<'a>(data: &Value<'a>) -> Vec<Value<'a>> {
    match data {
        Value::Struct(fields) => fields
            .iter()
            .find_map(|(name, v)| match (name, v) {
                (&"Alerts", Value::List(alerts)) => Some(alerts.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Applies `f` to every string in the data (label and annotation names and
/// values included), e.g. to escape it for the output format before a
/// user's template places it. Names are safe to map: valid label names
/// hold no character an escaper changes, so lookups still find them.
pub fn map_strings<'a>(v: Value<'a>, f: fn(&str) -> String) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Owned(f(&s))),
        Value::Kv(m) => Value::Kv(m.into_iter().map(|(k, v)| (f(&k), f(&v))).collect()),
        Value::Map(m) => Value::Map(m.into_iter().map(|(k, v)| (k, map_strings(v, f))).collect()),
        Value::Struct(fields) => Value::Struct(
            fields
                .into_iter()
                .map(|(k, v)| (k, map_strings(v, f)))
                .collect(),
        ),
        Value::List(l) => Value::List(l.into_iter().map(|v| map_strings(v, f)).collect()),
        other => other,
    }
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host.
pub fn check_url(param: &str, url: &str, errors: &mut Vec<String>) {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        None => errors.push(format!(
            "`{param}` must start with http:// or https://, got {url:?}"
        )),
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => {
            errors.push(format!("`{param}` has no host: {url:?}"));
        }
        Some(_) if url.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            errors.push(format!(
                "`{param}` must not contain spaces or control characters: {url:?}"
            ));
        }
        Some(_) => {}
    }
}

/// Checks that every header has a token name and a single-line value.
pub fn check_headers(headers: &BTreeMap<String, String>, errors: &mut Vec<String>) {
    for (name, value) in headers {
        let bad_name = name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if bad_name || value.contains(['\r', '\n', '\0']) {
            errors.push(format!("`headers.{name}` is not a valid HTTP header"));
        }
    }
}

/// Every validation error at once, joined, or `Ok`.
pub fn finish(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// `base` with the user's `headers` added; a user header replaces base
/// headers of the same name (case-insensitively), e.g. `Content-Type`.
pub fn merge_headers(mut base: Vec<Pair>, headers: &BTreeMap<String, String>) -> Vec<Pair> {
    base.retain(|(k, _)| !headers.keys().any(|h| h.eq_ignore_ascii_case(k)));
    base.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    base
}

/// An alert's urgency, from its `severity` label; ordered most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `critical`, `crit`, `fatal`, `emergency`, `alert`, `page`, `p1`.
    Critical,
    /// `error`, `err`, `high`, `major`, `p2`.
    Error,
    /// `warning`, `warn`, `medium`, `minor`, `ticket`, `p3`.
    Warning,
    /// `info`, `informational`, `notice`, `low`, `debug`, `p4`, `p5`.
    Info,
    /// No `severity` label, or one not listed above.
    None,
}

impl Severity {
    /// Maps common severity spellings (case-insensitive) onto the four levels.
    pub fn parse(label: &str) -> Severity {
        match label.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "alert" | "page" | "p1" => {
                Severity::Critical
            }
            "error" | "err" | "high" | "major" | "p2" => Severity::Error,
            "warning" | "warn" | "medium" | "minor" | "ticket" | "p3" => Severity::Warning,
            "info" | "informational" | "notice" | "low" | "debug" | "p4" | "p5" => Severity::Info,
            _ => Severity::None,
        }
    }

    /// The severity of an alert's `severity` label.
    pub fn of(alert: &Alert) -> Severity {
        alert
            .label("severity")
            .map_or(Severity::None, Severity::parse)
    }

    /// The canonical name, `None` for [`Severity::None`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            Severity::Critical => Some("critical"),
            Severity::Error => Some("error"),
            Severity::Warning => Some("warning"),
            Severity::Info => Some("info"),
            Severity::None => None,
        }
    }
}

/// The alerts, most important first: firing before resolved, then by
/// severity (critical, error, warning, info, none), then earliest start;
/// ties keep the group's order.
pub fn by_importance(alerts: &[Alert]) -> Vec<&Alert> {
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by_key(|a| {
        (
            a.status == AlertStatus::Resolved,
            Severity::of(a),
            a.starts_at,
        )
    });
    sorted
}

/// The highest severity among `alerts`.
pub fn max_severity<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Severity {
    alerts
        .into_iter()
        .map(Severity::of)
        .min()
        .unwrap_or(Severity::None)
}

/// `text` cut to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    Cow::Owned(cut)
}

/// The fixture and golden-file helpers of the notifiers' tests.
#[cfg(test)]
pub mod testing {
    use std::path::Path;

    use vigil_plugin_sdk::notifier::{
        Alert, AlertStatus, Delivery, Email, HttpRequest, Notification, Pair,
    };

    fn pairs(p: &[(&str, &str)]) -> Vec<Pair> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A fixed group: two firing alerts with different severities (the
    /// warning one listed first and started earlier) and one resolved.
    pub fn fixture() -> Notification {
        let generator = "http://vigil.example.com:9090/graph?g0.expr=errors&g0.tab=1";
        Notification {
            receiver: "ml-oncall".into(),
            status: AlertStatus::Firing,
            group_key: "{}/{team=\"ml\"}:{alertname=\"ModelErrorRateHigh\"}".into(),
            group_labels: pairs(&[("alertname", "ModelErrorRateHigh")]),
            common_labels: pairs(&[("alertname", "ModelErrorRateHigh"), ("job", "triton")]),
            common_annotations: pairs(&[(
                "runbook_url",
                "https://runbooks.example.com/model-errors",
            )]),
            external_url: "http://vigil.example.com:9090".into(),
            alerts: vec![
                Alert {
                    status: AlertStatus::Firing,
                    labels: pairs(&[
                        ("alertname", "ModelErrorRateHigh"),
                        ("job", "triton"),
                        ("model", "resnet"),
                        ("pod", "triton-7d9f-x2k4q"),
                        ("severity", "warning"),
                    ]),
                    annotations: pairs(&[
                        ("description", "p99 > 2s & <retrying> \"hot\" shard"),
                        ("runbook_url", "https://runbooks.example.com/model-errors"),
                        ("summary", "Error rate 7.2% on resnet"),
                    ]),
                    value: 0.072,
                    starts_at: 1_795_319_303_123,
                    ends_at: None,
                    generator_url: generator.into(),
                    fingerprint: "a1b2c3d4e5f60718".into(),
                },
                Alert {
                    status: AlertStatus::Firing,
                    labels: pairs(&[
                        ("alertname", "ModelErrorRateHigh"),
                        ("job", "triton"),
                        ("model", "bert"),
                        ("pod", "triton-7d9f-p8m2z"),
                        ("severity", "critical"),
                    ]),
                    annotations: pairs(&[
                        ("runbook_url", "https://runbooks.example.com/model-errors"),
                        ("summary", "Error rate 31% on bert"),
                    ]),
                    value: 0.31,
                    starts_at: 1_795_319_363_000,
                    ends_at: None,
                    generator_url: generator.into(),
                    fingerprint: "0f1e2d3c4b5a6978".into(),
                },
                Alert {
                    status: AlertStatus::Resolved,
                    labels: pairs(&[
                        ("alertname", "ModelErrorRateHigh"),
                        ("job", "triton"),
                        ("model", "llama"),
                        ("pod", "triton-7d9f-q1w2e"),
                        ("severity", "critical"),
                    ]),
                    annotations: pairs(&[
                        ("runbook_url", "https://runbooks.example.com/model-errors"),
                        ("summary", "Error rate 12% on llama"),
                    ]),
                    value: 0.12,
                    starts_at: 1_795_319_000_000,
                    ends_at: Some(1_795_319_400_000),
                    generator_url: generator.into(),
                    fingerprint: "9a8b7c6d5e4f3021".into(),
                },
            ],
            truncated_alerts: 0,
        }
    }

    /// The fixture with every alert resolved.
    pub fn resolved_fixture() -> Notification {
        let mut n = fixture();
        n.status = AlertStatus::Resolved;
        for a in &mut n.alerts {
            a.status = AlertStatus::Resolved;
            a.ends_at = Some(1_795_319_400_000);
        }
        n
    }

    /// Compares `actual` with `tests/golden/<name>`; with `VIGIL_BLESS=1`
    /// writes it instead.
    pub fn assert_golden(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("VIGIL_BLESS").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with VIGIL_BLESS=1 to create it",
                path.display()
            )
        });
        assert!(
            expected == actual,
            "{} differs; check the output and rerun with VIGIL_BLESS=1\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }

    /// An HTTP delivery as text: request line, headers, blank line, body
    /// (JSON pretty-printed in the order the plugin wrote it).
    pub fn http_text(r: &HttpRequest) -> String {
        let mut out = format!("{} {}\n", r.method, r.url);
        for (k, v) in &r.headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        if r.body.starts_with(['{', '[']) {
            let parsed: Result<vigil_plugin_sdk::serde_json::Value, _> =
                vigil_plugin_sdk::serde_json::from_str(&r.body);
            assert!(parsed.is_ok(), "body is not JSON: {}", r.body);
            out.push_str(&pretty_json(&r.body));
        } else {
            out.push_str(&r.body);
        }
        out.push('\n');
        out
    }

    /// Re-indents compact JSON without reordering keys.
    pub fn pretty_json(compact: &str) -> String {
        let mut out = String::new();
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
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
                    if matches!(chars.peek(), Some('}' | ']')) {
                        if let Some(close) = chars.next() {
                            out.push(close);
                        }
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
                c => out.push(c),
            }
        }
        out
    }

    /// The only delivery, which must be HTTP.
    pub fn only_http(mut out: Vec<Delivery>) -> HttpRequest {
        assert_eq!(out.len(), 1, "{out:?}");
        match out.remove(0) {
            Delivery::Http(r) => r,
            other => panic!("expected an HTTP delivery, got {other:?}"),
        }
    }

    /// The only delivery, which must be an e-mail.
    pub fn only_email(mut out: Vec<Delivery>) -> Email {
        assert_eq!(out.len(), 1, "{out:?}");
        match out.remove(0) {
            Delivery::Email(e) => e,
            other => panic!("expected an e-mail, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_is_char_safe() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 4), "hél…");
        assert_eq!(truncate("ééé", 1), "…");
        assert_eq!(truncate("ééé", 0), "");
    }

    #[test]
    fn template_errors_give_line_and_column() {
        let err = vigil_plugin_sdk::serde_json::from_str::<Template>(r#""ok\nx {{ humanise 1 }}""#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("template error at line 2, column 6: unknown function `humanise`"),
            "{err}"
        );
    }

    #[test]
    fn builtin_subject_parses() {
        assert!(SUBJECT.get().is_ok());
    }
}
