//! Alert label and annotation templates: the Go text/template subset that
//! Prometheus alerting rules use.
//!
//! The language lives in the `vigil-template` crate, shared with notifier
//! plugins; this module binds it to the host's [`Labels`] and keeps the
//! alert-template API: [`Template::parse`] defines `$labels`, `$value`,
//! `$score`, `$externalLabels` and `$externalURL`, and
//! [`Template::render`] takes a [`TemplateContext`]. See the crate docs
//! for the language, the functions and the error behaviour.

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use vigil_template::TemplateError;
use vigil_template::{AlertContext, LabelMap};

use crate::store::labels::Labels;

impl LabelMap for Labels {
    fn get(&self, name: &str) -> Option<&str> {
        Labels::get(self, name)
    }

    fn len(&self) -> usize {
        Labels::len(self)
    }

    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        Box::new(self.iter())
    }
}

/// The data a template sees when it renders for one alert.
#[derive(Clone, Copy, Debug)]
pub struct TemplateContext<'a> {
    /// `$labels` / `.Labels`: the labels of the series that produced the
    /// alert, as the query returned them (Prometheus includes `__name__`
    /// when the query kept it).
    pub labels: &'a Labels,
    /// `$value` / `.Value`: the series' value at this evaluation.
    pub value: f64,
    /// `$score`: the check's score for the series (a threshold's compared
    /// value, an EWMA's z-score), in the check's documented unit.
    pub score: f64,
    /// `$externalLabels` / `.ExternalLabels`.
    pub external_labels: &'a Labels,
    /// `$externalURL` / `.ExternalURL`, also what `externalURL` and
    /// `pathPrefix` return.
    pub external_url: &'a str,
}

static NO_LABELS: LazyLock<Labels> = LazyLock::new(Labels::default);

impl<'a> TemplateContext<'a> {
    /// A context with no external labels and no external URL.
    pub fn new(labels: &'a Labels, value: f64) -> Self {
        TemplateContext {
            score: value,
            labels,
            value,
            external_labels: &NO_LABELS,
            external_url: "",
        }
    }

    fn alert(&self) -> AlertContext<'a> {
        AlertContext {
            labels: self.labels,
            value: self.value,
            score: self.score,
            external_labels: self.external_labels,
            external_url: self.external_url,
        }
    }
}

/// A parsed alert template. Cheap to render; clone it freely.
///
/// Deserializing a `Template` parses it, so a config file's bad template is
/// reported by serde with the file position of the string.
#[derive(Clone, PartialEq, Eq)]
pub struct Template(vigil_template::Template);

impl Template {
    /// Parses an alert template; see the module docs.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        vigil_template::Template::parse_alert(source).map(Template)
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// Whether the template is plain text with no actions, so rendering it
    /// always yields [`Template::source`] (comments and trim markers aside).
    pub fn is_literal(&self) -> bool {
        self.0.is_literal()
    }

    /// Renders the template. Never fails: a run-time error yields
    /// `<error expanding template: ...>`, as Prometheus does.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> String {
        self.0.render_alert(&ctx.alert())
    }

    /// Renders the template, returning a run-time error instead of the
    /// inline marker (for `vigil check`-style test tools).
    pub fn try_render(&self, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
        self.0.try_render_alert(&ctx.alert())
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source()).finish()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source())
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.source())
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}
