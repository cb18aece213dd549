//! Go templates as notifier parameters and defaults, and the views of the
//! template data that notifiers render from.
//!
//! The functions that parse, render or walk template data are `#[inline]`:
//! the SDK's own object code then never calls into `vigil-template`, so a
//! check plugin, which links the SDK but renders nothing, does not drag the
//! template engine's objects (and megabytes of their debug info) into its
//! Wasm file.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer, Error as _};
use vigil_template::{TemplateError, Value};

/// A Go template given as a parameter (`title`, `body`, ...), parsed while
/// the parameters are deserialized.
///
/// It exists so that a bad template fails `configure`, when the
/// configuration loads, naming the parameter and the line and column of the
/// mistake (``invalid params: `title`: template error at line 1, column 4:
/// ...``), instead of failing every notification later. Render it with the
/// data of [`template_data`](super::template_data).
///
/// ```
/// use vigil_plugin_sdk::notifier::Template;
/// #[derive(serde::Deserialize)]
/// struct P { title: Template }
/// let err = vigil_plugin_sdk::parse_params::<P>(r#"{"title": "{{ .Status"}"#).err().unwrap();
/// assert!(err.starts_with("invalid params: `title`: template error at line 1, column "), "{err}");
/// ```
#[derive(Clone, Debug)]
pub struct Template(vigil_template::Template);

impl Template {
    /// Renders with `data` as the dot; a run-time error renders inline as
    /// Alertmanager does, because a visible error beats a lost page.
    #[inline]
    pub fn render(&self, data: &Value<'_>) -> String {
        self.0.render(data)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        vigil_template::Template::parse(&source)
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

/// A notifier's built-in default template, for when the user gives none;
/// usable in a `static` and parsed on first use.
///
/// It exists so that a default costs nothing until it is needed and a
/// mistake in it is an error of the render (`built-in template error at
/// ...`), which the host reports, rather than a panic in the plugin.
pub struct DefaultTemplate {
    source: &'static str,
    parsed: OnceLock<Result<vigil_template::Template, String>>,
}

impl DefaultTemplate {
    /// A default template with this source.
    pub const fn new(source: &'static str) -> Self {
        DefaultTemplate {
            source,
            parsed: OnceLock::new(),
        }
    }

    /// The source, for docs and tests.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Renders with `data` as the dot, or fails if the source does not parse.
    #[inline]
    pub fn render(&self, data: &Value<'_>) -> Result<String, String> {
        Ok(self.parsed()?.render(data))
    }

    #[inline]
    fn parsed(&self) -> Result<&vigil_template::Template, String> {
        self.parsed
            .get_or_init(|| {
                vigil_template::Template::parse(self.source)
                    .map_err(|e| format!("built-in {}", describe(self.source, &e)))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Renders the user's template if there is one, else the built-in default:
/// the rule of every optional template parameter.
#[inline]
pub fn render_or(
    user: Option<&Template>,
    default: &DefaultTemplate,
    data: &Value<'_>,
) -> Result<String, String> {
    match user {
        Some(t) => Ok(t.render(data)),
        None => default.render(data),
    }
}

/// Alertmanager's default subject (its `__subject` template): status,
/// firing count, the group labels' values and, in parentheses, the common
/// labels that are not group labels, e.g. `[FIRING:2] ModelErrorRateHigh
/// (triton)`. Notifiers use it as the default title, so messages read as
/// Alertmanager's do.
pub static DEFAULT_SUBJECT: DefaultTemplate = DefaultTemplate::new(concat!(
    r#"[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]"#,
    r#" {{ .GroupLabels.Values | join " " }}"#,
    r#"{{ if gt (len .CommonLabels) (len .GroupLabels) }} ({{ $sep := "" }}"#,
    r#"{{ range .CommonLabels.SortedPairs }}{{ if not (index $.GroupLabels .Name) }}"#,
    r#"{{ $sep }}{{ .Value }}{{ $sep = " " }}{{ end }}{{ end }}){{ end }}"#,
));

/// The template data of each alert (the elements of `.Alerts`), in the
/// notification's order, so that a per-alert template sees `.Labels`,
/// `.Annotations`, `.StartsAt`, ... as its dot.
#[inline]
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
/// values included), e.g. to escape it for the output format (HTML, Slack
/// `mrkdwn`) before a user's template places it. Names are safe to map:
/// valid label names hold no character an escaper changes, so lookups
/// still find them.
#[inline]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_errors_give_line_and_column() {
        let err = serde_json::from_str::<Template>(r#""ok\nx {{ humanise 1 }}""#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("template error at line 2, column 6: unknown function `humanise`"),
            "{err}"
        );
    }

    #[test]
    fn default_subject_parses() {
        assert!(DEFAULT_SUBJECT.parsed().is_ok());
    }

    #[test]
    fn a_broken_default_fails_the_render() {
        static BROKEN: DefaultTemplate = DefaultTemplate::new("{{ if }}");
        let err = render_or(None, &BROKEN, &Value::Struct(vec![])).unwrap_err();
        assert!(
            err.starts_with("built-in template error at line 1"),
            "{err}"
        );
    }

    #[test]
    fn map_strings_reaches_keys_and_values() {
        let data = Value::Struct(vec![
            ("S", Value::Str(Cow::Borrowed("a<b"))),
            (
                "Kv",
                Value::Kv([("k<".to_string(), "v>".to_string())].into()),
            ),
            ("L", Value::List(vec![Value::Str(Cow::Borrowed("<"))])),
        ]);
        let escape = |s: &str| s.replace('<', "&lt;").replace('>', "&gt;");
        let t = vigil_template::Template::parse(
            "{{ .S }} {{ range .Kv.SortedPairs }}{{ .Name }}={{ .Value }}{{ end }} {{ index .L 0 }}",
        )
        .unwrap();
        assert_eq!(
            t.render(&map_strings(data, escape)),
            "a&lt;b k&lt;=v&gt; &lt;"
        );
    }
}
