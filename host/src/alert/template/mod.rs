//! Alert label and annotation templates: the Go text/template subset that
//! Prometheus alerting rules use.
//!
//! Operators bring annotation templates from their Prometheus rules, so the
//! syntax, the variables (`$labels`, `$value`, `$externalLabels`,
//! `$externalURL`, and `.Labels`, `.Value`, ... on the dot) and the
//! functions (`humanize*`, `printf`, `title`, `match`, `reReplaceAll`, ...)
//! behave as in Prometheus 2.42, and numbers print exactly as Go prints
//! them.
//!
//! A template is parsed once, when the rule is loaded: unknown functions,
//! wrong argument counts, undefined variables, unclosed actions and bad
//! regular expressions are [`TemplateError`]s with a byte offset, so
//! `vigil check` rejects them. Rendering never fails: as in Prometheus, a
//! run-time error (say `humanize` of a label that is not a number) replaces
//! the whole text with `<error expanding template: ...>`, because a page
//! with a visible template error is better than no page.

mod exec;
mod funcs;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::labels::Labels;

/// A template that failed to parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// Byte offset in the template source where the problem is.
    pub offset: usize,
    /// What is wrong, e.g. "unknown function `humanise`".
    pub message: String,
    /// A hint, e.g. "did you mean `humanize`?".
    pub help: Option<String>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
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
}

/// A parsed template. Cheap to render; clone it freely.
///
/// Deserializing a `Template` parses it, so a config file's bad template is
/// reported by serde with the file position of the string.
#[derive(Clone)]
pub struct Template {
    source: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses a template; see the module docs for the supported language.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(source)?;
        Ok(Template {
            source: source.to_string(),
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

    /// Renders the template. Never fails: a run-time error yields
    /// `<error expanding template: ...>`, as Prometheus does.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> String {
        match self.try_render(ctx) {
            Ok(s) => s,
            Err(e) => format!("<error expanding template: {e}>"),
        }
    }

    /// Renders the template, returning a run-time error instead of the
    /// inline marker (for `vigil check`-style test tools).
    pub fn try_render(&self, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
        match self.nodes.as_slice() {
            [] => return Ok(String::new()),
            [parse::Node::Text(t)] => return Ok(t.clone()),
            _ => {}
        }
        exec::execute(&self.nodes, ctx).map_err(|e| TemplateError {
            offset: e.off,
            message: e.msg,
            help: None,
        })
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

/// Two templates are equal when their sources are: the parse is a pure
/// function of the text.
impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Template::parse(&source).map_err(serde::de::Error::custom)
    }
}
