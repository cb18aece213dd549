//! Rule queries: PromQL text in, one instant vector per evaluation out.
//!
//! A rule's `query` is parsed once at load with `promql-parser`. The engine
//! only sees [`Query::instant`]: evaluate at one instant over the store.
//! Today the evaluator accepts plain series selectors with label matchers;
//! the full PromQL evaluator fills the same interface.

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};

use crate::store::SeriesStore;
use crate::store::labels::{Labels, METRIC_NAME};

/// How far back an instant selector looks for a sample (Prometheus' default).
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// A query that could not be parsed or is not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

/// A label matcher of a selector.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    op: MatchOp,
    value: String,
}

impl LabelMatcher {
    /// A missing label matches as the empty string, as in Prometheus.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).unwrap_or("");
        match &self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Re(re) => re.is_match(v),
            MatchOp::NotRe(re) => !re.is_match(v),
        }
    }
}

/// A parsed rule query.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    /// Exact metric name, when the selector has one: used to find series fast
    /// and to know which scrapes feed the rule.
    metric_name: Option<String>,
    matchers: Vec<LabelMatcher>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let expr = parser::parse(text).map_err(|message| QueryError { message })?;
        let expr = unwrap_parens(expr);
        let Expr::VectorSelector(sel) = expr else {
            return Err(QueryError {
                message: format!(
                    "only series selectors such as `metric{{label=\"value\"}}` are evaluated so far, not {}",
                    describe(&expr)
                ),
            });
        };
        if sel.offset.is_some() || sel.at.is_some() {
            return Err(QueryError {
                message: "`offset` and `@` modifiers are not evaluated yet".into(),
            });
        }
        if !sel.matchers.or_matchers.is_empty() {
            return Err(QueryError {
                message: "`or` inside a selector is not evaluated yet".into(),
            });
        }
        let mut metric_name = sel.name.clone();
        let mut matchers = Vec::new();
        for m in sel.matchers.matchers {
            if m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal) {
                metric_name = Some(m.value.clone());
            }
            matchers.push(LabelMatcher {
                name: m.name,
                op: m.op,
                value: m.value,
            });
        }
        if let Some(name) = &sel.name {
            matchers.push(LabelMatcher {
                name: METRIC_NAME.into(),
                op: MatchOp::Equal,
                value: name.clone(),
            });
        }
        Ok(Query {
            text: text.to_string(),
            metric_name,
            matchers,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The metric this query reads, when it names exactly one.
    pub fn metric_name(&self) -> Option<&str> {
        self.metric_name.as_deref()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Evaluates the query at `t_ms` over the store.
    pub fn instant(&self, store: &SeriesStore, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        Ok(store.select_instant(self, t_ms, LOOKBACK_MS))
    }
}

fn unwrap_parens(expr: Expr) -> Expr {
    match expr {
        Expr::Paren(p) => unwrap_parens(*p.expr),
        e => e,
    }
}

fn describe(expr: &Expr) -> &'static str {
    match expr {
        Expr::Aggregate(_) => "an aggregation",
        Expr::Unary(_) => "a unary expression",
        Expr::Binary(_) => "a binary expression",
        Expr::Paren(_) => "a parenthesised expression",
        Expr::Subquery(_) => "a subquery",
        Expr::NumberLiteral(_) => "a number",
        Expr::StringLiteral(_) => "a string",
        Expr::VectorSelector(_) => "a selector",
        Expr::MatrixSelector(_) => "a range selector",
        Expr::Call(_) => "a function call",
        Expr::Extension(_) => "an extension",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_with_matchers() {
        let q = Query::parse(r#"nv_inference_count{model=~"dense.*", version!="2"}"#).unwrap();
        assert_eq!(q.metric_name(), Some("nv_inference_count"));
        let hit = Labels::from_pairs([
            ("__name__", "nv_inference_count"),
            ("model", "densenet"),
            ("version", "1"),
        ]);
        let miss = Labels::from_pairs([
            ("__name__", "nv_inference_count"),
            ("model", "xdensenet"),
            ("version", "1"),
        ]);
        assert!(q.matches(&hit));
        assert!(!q.matches(&miss));
    }

    #[test]
    fn unsupported_expression_is_named() {
        let err = Query::parse("sum(rate(x[5m]))").unwrap_err();
        assert!(err.message.contains("aggregation"), "{err}");
    }

    #[test]
    fn syntax_error() {
        assert!(Query::parse("x{").is_err());
    }
}
