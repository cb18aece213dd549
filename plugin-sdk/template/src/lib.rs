//! Go's text/template, as Prometheus alert rules and Alertmanager
//! notification templates use it.
//!
//! Operators bring annotation templates from their Prometheus rules and
//! notification templates from their Alertmanager configuration, so the
//! syntax, the data and the functions behave as in Prometheus 2.42 and
//! Alertmanager 0.25, and numbers print exactly as Go prints them.
//!
//! * Alert templates ([`Template::parse_alert`], rendered with an
//!   [`AlertContext`]) see `$labels`, `$value`, `$score`,
//!   `$externalLabels`, `$externalURL` and, on the dot, `.Labels`,
//!   `.Value`, `.ExternalLabels`, `.ExternalURL`.
//! * Notification templates ([`Template::parse`], rendered with the
//!   notification data as the dot) see Alertmanager's `Data`: `.Receiver`,
//!   `.Status`, `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`,
//!   `.ExternalURL` and `.Alerts` (with `.Alerts.Firing` and
//!   `.Alerts.Resolved`), each alert having `.Status`, `.Labels`,
//!   `.Annotations`, `.StartsAt`, `.EndsAt`, `.GeneratorURL`,
//!   `.Fingerprint` and Vigil's `.Value`. The Vigil plugin SDK builds that
//!   data (`vigil_plugin_sdk::notifier::template_data`).
//! * Any other data is a [`Value`] tree; [`Template::parse_with_vars`] and
//!   [`Template::render_with_vars`] predefine variables besides `$`.
//!
//! # Functions
//!
//! Go's builtins (`and or not len index print printf println eq ne lt le
//! gt ge html urlquery`), Prometheus' (`humanize humanize1024
//! humanizeDuration humanizePercentage humanizeTimestamp title toUpper
//! toLower match reReplaceAll safeHtml stripPort stripDomain pathPrefix
//! externalURL graphLink tableLink`) and Alertmanager's (`trimSpace join
//! stringSlice`, plus the ones shared with Prometheus). `title` is Go's
//! `strings.Title` as in Prometheus 2.42: it upper-cases the first letter
//! of each word and leaves the rest (Alertmanager 0.25's also lower-cases
//! the rest).
//!
//! # Limits
//!
//! Methods that take arguments cannot be called: `.StartsAt.Format
//! "..."` and `.CommonLabels.Remove` are rejected when they run. Times
//! print as Go's `time.Time` does (`2015-06-23 13:19:44.128 +0000 UTC`)
//! and have `.Unix`, `.UnixMilli`, `.UTC`, `.IsZero` and `.String`;
//! `humanizeTimestamp .StartsAt` formats one too. `define`, `template`,
//! `block`, `break` and `continue` are not supported.
//!
//! # Errors
//!
//! A template is parsed once, when the configuration is loaded: unknown
//! functions, wrong argument counts, undefined variables, unclosed actions
//! and bad regular expressions are [`TemplateError`]s with a byte offset,
//! so a bad configuration is rejected. Rendering never fails: as in
//! Prometheus, a run-time error (say `humanize` of a label that is not a
//! number) replaces the whole text with `<error expanding template:
//! ...>`, because a page with a visible template error is better than no
//! page. [`Template::try_render`] returns the error instead.
#![deny(missing_docs)]

#[cfg(test)]
mod alert_tests;
mod exec;
mod funcs;
mod gofmt;
mod humanize;
#[cfg(test)]
mod notification_tests;
mod parse;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use exec::V;
pub use value::{LabelMap, Value};

/// A template that failed to parse, or (from [`Template::try_render`])
/// failed to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset in the template source where the problem is.
    pub offset: usize,
    /// What is wrong, e.g. "unknown function `humanise`".
    pub message: String,
    /// A hint, e.g. "did you mean `humanize`?".
    pub help: Option<String>,
}

impl std::error::Error for TemplateError {}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// The variables Prometheus defines in front of every alert template.
pub const ALERT_VARS: &[&str] = &[
    "$labels",
    "$value",
    "$externalLabels",
    "$externalURL",
    "$score",
];

/// The data an alert template sees when it renders for one alert.
#[derive(Clone, Copy)]
pub struct AlertContext<'a> {
    /// `$labels` / `.Labels`: the labels of the series that produced the
    /// alert, as the query returned them (Prometheus includes `__name__`
    /// when the query kept it).
    pub labels: &'a dyn LabelMap,
    /// `$value` / `.Value`: the series' value at this evaluation.
    pub value: f64,
    /// `$score`: the check's score for the series (a threshold's compared
    /// value, an EWMA's z-score), in the check's documented unit.
    pub score: f64,
    /// `$externalLabels` / `.ExternalLabels`.
    pub external_labels: &'a dyn LabelMap,
    /// `$externalURL` / `.ExternalURL`, also what `externalURL` and
    /// `pathPrefix` return.
    pub external_url: &'a str,
}

static NO_LABELS: LazyLock<BTreeMap<String, String>> = LazyLock::new(BTreeMap::new);

impl<'a> AlertContext<'a> {
    /// A context with no external labels and no external URL; the score is
    /// the value.
    pub fn new(labels: &'a dyn LabelMap, value: f64) -> Self {
        AlertContext {
            labels,
            value,
            score: value,
            external_labels: &*NO_LABELS,
            external_url: "",
        }
    }

    /// The dot of an alert template: Prometheus' template data struct.
    pub fn data(&self) -> Value<'a> {
        Value::Struct(vec![
            ("Labels", Value::Labels(self.labels)),
            ("ExternalLabels", Value::Labels(self.external_labels)),
            ("ExternalURL", Value::Str(self.external_url.into())),
            ("Value", Value::Float(self.value)),
        ])
    }

    /// The values of [`ALERT_VARS`], in that order.
    pub fn vars(&self) -> [(&'static str, Value<'a>); 5] {
        [
            ("$labels", Value::Labels(self.labels)),
            ("$value", Value::Float(self.value)),
            ("$externalLabels", Value::Labels(self.external_labels)),
            ("$externalURL", Value::Str(self.external_url.into())),
            ("$score", Value::Float(self.score)),
        ]
    }
}

impl fmt::Debug for AlertContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertContext")
            .field("labels", &Value::Labels(self.labels))
            .field("value", &self.value)
            .field("score", &self.score)
            .field("external_labels", &Value::Labels(self.external_labels))
            .field("external_url", &self.external_url)
            .finish()
    }
}

/// A parsed template. Cheap to render; clone it freely.
#[derive(Clone)]
pub struct Template {
    source: String,
    /// The variables defined in front of the template besides `$`.
    vars: Vec<String>,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses a template whose only predefined variable is `$` (the data),
    /// such as a notification template.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        Template::parse_with_vars(source, &[])
    }

    /// Parses an alert label or annotation template: `$labels`, `$value`,
    /// `$score`, `$externalLabels` and `$externalURL` are defined.
    pub fn parse_alert(source: &str) -> Result<Template, TemplateError> {
        Template::parse_with_vars(source, ALERT_VARS)
    }

    /// Parses a template with `vars` (each starting with `$`) defined
    /// besides `$`; any other variable is an error.
    pub fn parse_with_vars(source: &str, vars: &[&str]) -> Result<Template, TemplateError> {
        let nodes = parse::parse(source, vars)?;
        Ok(Template {
            source: source.to_string(),
            vars: vars.iter().map(|v| (*v).to_string()).collect(),
            nodes,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template is plain text with no actions, so rendering it
    /// always yields [`Template::source`] (comments and trim markers aside).
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, parse::Node::Text(_)))
    }

    /// Renders the template with `data` as the dot. Never fails: a
    /// run-time error yields `<error expanding template: ...>`, as
    /// Prometheus does.
    pub fn render(&self, data: &Value<'_>) -> String {
        self.render_with_vars(data, &[])
    }

    /// Renders an alert template for one alert.
    pub fn render_alert(&self, ctx: &AlertContext<'_>) -> String {
        marker(self.try_render_alert(ctx))
    }

    /// Renders the template with `data` as the dot and the predefined
    /// variables' values; a variable the template was parsed with but
    /// `vars` lacks is nil.
    pub fn render_with_vars(&self, data: &Value<'_>, vars: &[(&str, Value<'_>)]) -> String {
        marker(self.try_render_with_vars(data, vars))
    }

    /// [`Template::render`], returning a run-time error instead of the
    /// inline marker (for test tools).
    pub fn try_render(&self, data: &Value<'_>) -> Result<String, TemplateError> {
        self.try_render_with_vars(data, &[])
    }

    /// [`Template::render_alert`], returning a run-time error instead of
    /// the inline marker.
    pub fn try_render_alert(&self, ctx: &AlertContext<'_>) -> Result<String, TemplateError> {
        if let Some(text) = self.literal() {
            return Ok(text);
        }
        self.try_render_with_vars(&ctx.data(), &ctx.vars())
    }

    /// [`Template::render_with_vars`], returning a run-time error instead
    /// of the inline marker.
    pub fn try_render_with_vars(
        &self,
        data: &Value<'_>,
        vars: &[(&str, Value<'_>)],
    ) -> Result<String, TemplateError> {
        if let Some(text) = self.literal() {
            return Ok(text);
        }
        let bound = self.vars.iter().map(|name| {
            let v = vars
                .iter()
                .find(|(n, _)| n == name)
                .map_or(V::Nil, |(_, v)| V::of(v));
            (name.as_str(), v)
        });
        exec::execute(&self.nodes, data, bound).map_err(|e| TemplateError {
            offset: e.off,
            message: e.msg,
            help: None,
        })
    }

    /// The output of a template without actions, without running it.
    fn literal(&self) -> Option<String> {
        match self.nodes.as_slice() {
            [] => Some(String::new()),
            [parse::Node::Text(t)] => Some(t.clone()),
            _ => None,
        }
    }
}

fn marker(r: Result<String, TemplateError>) -> String {
    match r {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source).finish()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Two templates are equal when their sources and predefined variables
/// are: the parse is a pure function of those.
impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.vars == other.vars
    }
}

impl Eq for Template {}

/// Parses with [`Template::parse`].
impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}
