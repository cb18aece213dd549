//! Rule queries: PromQL as Prometheus 2.42 evaluates it over float samples.
//!
//! A rule's `query` is parsed once at load with `promql-parser` and turned
//! into a plan (`plan`); whatever Vigil does not evaluate is rejected then,
//! with the construct and its position. The engine evaluates the plan at
//! one instant per rule step ([`Query::instant`]) and over past steps to
//! backfill windows ([`Query::range`]), both straight over the store.
//!
//! Layout: `plan` (AST to plan, validation), `eval` (steps, selectors,
//! range-vector functions, subqueries), `functions`, `aggregate`, `binary`,
//! `value` (label handles, samples, hashing).

mod aggregate;
mod binary;
mod eval;
mod functions;
mod plan;
pub mod remote;
mod value;

use std::sync::{Arc, Once};

use promql_parser::label::MatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Function};

use crate::store::SeriesStore;
use crate::store::labels::Labels;
use eval::{Evaluator, Params, Range};
use plan::{At, Node, Plan};
use value::Value;

/// How far back an instant selector looks for a sample (Prometheus' default).
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The step of a subquery that names none (`x[1h:]`), as Prometheus' default
/// global evaluation interval.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60 * 1000;

/// Most samples one expression may hold across its steps (Prometheus'
/// `--query.max-samples` default).
pub const DEFAULT_MAX_SAMPLES: usize = 50_000_000;

/// A query that could not be parsed, is not supported, or failed to
/// evaluate (for example many-to-many matching).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

impl QueryError {
    pub fn new(message: String) -> Self {
        QueryError { message }
    }
}

/// A label matcher of a selector.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    op: MatchOp,
    value: String,
}

impl LabelMatcher {
    pub(crate) fn new(name: String, op: MatchOp, value: String) -> Self {
        LabelMatcher { name, op, value }
    }

    /// A missing label matches as the empty string, as in Prometheus.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    pub fn matches_value(&self, v: &str) -> bool {
        match &self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::Re(re) => re.is_match(v),
            MatchOp::NotRe(re) => !re.is_match(v),
        }
    }

    pub(crate) fn is_equal(&self) -> bool {
        matches!(self.op, MatchOp::Equal)
    }

    /// Whether this is `__name__="..."`, which postings already resolve.
    pub(crate) fn is_name_equal(&self) -> bool {
        self.is_equal() && self.name == crate::store::labels::METRIC_NAME
    }

    pub(crate) fn value(&self) -> &str {
        &self.value
    }
}

/// A parsed rule query.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    plan: Arc<Plan>,
    /// Exact metric names of the selectors, sorted, each once.
    names: Vec<String>,
    /// Whether some selector does not pin its metric name.
    unnamed: bool,
    /// Every selector's matchers, for [`Query::matches`].
    selectors: Vec<Vec<LabelMatcher>>,
    lookback_ms: i64,
    subquery_step_ms: i64,
    max_samples: usize,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// The result of an instant query, keeping scalars apart from vectors.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Scalar(f64),
    Vector(Vec<Sample>),
}

/// One series of a range query: its labels and `(timestamp ms, value)`
/// points in time order.
pub type RangeSeries = (Labels, Vec<(i64, f64)>);

/// `promql-parser` follows Prometheus 3, which renamed `holt_winters`;
/// 2.42 rules still use the old name.
fn register_functions() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if the parser ever grows its own `holt_winters`; then
        // the built-in serves, so the error is ignored.
        let _ = parser::register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
}

impl Query {
    /// Parses and checks a query. It must produce an instant vector or a
    /// scalar, the types a rule can use.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        register_functions();
        let expr = parser::parse(text).map_err(QueryError::new)?;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            t => {
                return Err(QueryError::new(format!(
                    "a rule query must return an instant vector or a scalar, not a {t}"
                )));
            }
        }
        let plan = plan::compile(&expr, text)?;
        let mut names = Vec::new();
        let mut unnamed = false;
        let mut selectors = Vec::new();
        walk_selectors(&plan.root, &mut |sel| {
            match &sel.name {
                Some(n) => names.push(n.clone()),
                None => unnamed = true,
            }
            selectors.push(sel.matchers.clone());
        });
        names.sort();
        names.dedup();
        Ok(Query {
            text: text.to_string(),
            plan: Arc::new(plan),
            names,
            unnamed,
            selectors,
            lookback_ms: LOOKBACK_MS,
            subquery_step_ms: DEFAULT_SUBQUERY_STEP_MS,
            max_samples: DEFAULT_MAX_SAMPLES,
        })
    }

    /// Sets the lookback delta of instant selectors.
    pub fn with_lookback(mut self, ms: i64) -> Self {
        self.lookback_ms = ms.max(1);
        self
    }

    /// Sets the step of subqueries that name none; Prometheus uses the
    /// rule group's evaluation interval.
    pub fn with_subquery_step(mut self, ms: i64) -> Self {
        self.subquery_step_ms = ms.max(1);
        self
    }

    /// Sets how many samples one expression may produce.
    pub fn with_max_samples(mut self, n: usize) -> Self {
        self.max_samples = n;
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The metric this query reads, when it reads exactly one and every
    /// selector names it.
    pub fn metric_name(&self) -> Option<&str> {
        match self.names.as_slice() {
            [one] if !self.unnamed => Some(one),
            _ => None,
        }
    }

    /// The exact metric names of all selectors, sorted. A selector without
    /// an exact name (`{job="x"}`, `{__name__=~"a|b"}`) is not listed; see
    /// [`Query::reads_unnamed`].
    pub fn metric_names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// Whether some selector may read any metric (no exact name).
    pub fn reads_unnamed(&self) -> bool {
        self.unnamed
    }

    /// How far before the evaluation time the query reads samples: the
    /// longest range or lookback plus offsets, through nested subqueries.
    /// The store must keep this much history beyond a rule's window, or a
    /// `[1h]` range would see only what the window happens to hold.
    /// Selectors pinned with `@` read fixed times and are not counted.
    pub fn lookbehind_ms(&self) -> i64 {
        lookbehind(&self.plan.root, self.lookback_ms, self.subquery_step_ms)
    }

    /// Whether a series can feed the query: some selector matches it.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.selectors
            .iter()
            .any(|ms| ms.iter().all(|m| m.matches(labels)))
    }

    /// Evaluates the query at `t_ms`. A scalar result is one sample with
    /// no labels, as Prometheus' rule manager turns it.
    pub fn instant(&self, store: &SeriesStore, t_ms: i64) -> Result<Vec<Sample>, QueryError> {
        Ok(match self.value_at(store, t_ms)? {
            QueryValue::Vector(v) => v,
            QueryValue::Scalar(v) => vec![Sample {
                labels: Labels::default(),
                value: v,
            }],
        })
    }

    /// Evaluates the query at `t_ms`, keeping a scalar a scalar.
    pub fn value_at(&self, store: &SeriesStore, t_ms: i64) -> Result<QueryValue, QueryError> {
        let reader = store.reader();
        let mut ev = Evaluator::new(&reader, self.params(t_ms, t_ms));
        match ev.eval(&self.plan.root, Range::instant(t_ms))? {
            Value::Scalar(v) => Ok(QueryValue::Scalar(v.first().copied().unwrap_or(f64::NAN))),
            Value::Vector(mut steps) => {
                let vec = steps.pop().unwrap_or_default();
                Ok(QueryValue::Vector(
                    vec.iter()
                        .map(|s| Sample {
                            labels: ev.labels(s.lbl),
                            value: s.v,
                        })
                        .collect(),
                ))
            }
            Value::String => Err(QueryError::new(
                "a rule query must return an instant vector or a scalar, not a string".into(),
            )),
        }
    }

    /// Evaluates the query at `start_ms, start_ms + step_ms, ..., end_ms` as
    /// a Prometheus range query: each series with the steps where it has a
    /// value, series in label order. A scalar result is one series with no
    /// labels.
    pub fn range(
        &self,
        store: &SeriesStore,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<RangeSeries>, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::new(
                "the step of a range query must be positive".into(),
            ));
        }
        if end_ms < start_ms {
            return Ok(Vec::new());
        }
        let r = Range {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        let steps = r.len();
        if steps > self.max_samples {
            return Err(QueryError::new(format!(
                "a range query of {steps} steps is too long"
            )));
        }
        let reader = store.reader();
        let mut ev = Evaluator::new(&reader, self.params(start_ms, end_ms));
        let mut out: Vec<RangeSeries> = match ev.eval(&self.plan.root, r)? {
            Value::Scalar(v) => vec![(
                Labels::default(),
                v.into_iter()
                    .enumerate()
                    .map(|(i, x)| (r.ts(i), x))
                    .collect(),
            )],
            Value::Vector(vecs) => {
                // Group points by label content across steps.
                let mut index: std::collections::HashMap<Labels, usize> =
                    std::collections::HashMap::new();
                let mut by_lbl: value::FastMap<value::Lbl, usize> = value::FastMap::default();
                let mut out: Vec<RangeSeries> = Vec::new();
                for (i, vec) in vecs.iter().enumerate() {
                    for s in vec {
                        let idx = match by_lbl.get(&s.lbl) {
                            Some(&idx) => idx,
                            None => {
                                let labels = ev.labels(s.lbl);
                                let idx = *index.entry(labels.clone()).or_insert_with(|| {
                                    out.push((labels, Vec::with_capacity(steps)));
                                    out.len() - 1
                                });
                                by_lbl.insert(s.lbl, idx);
                                idx
                            }
                        };
                        out[idx].1.push((r.ts(i), s.v));
                    }
                }
                out
            }
            Value::String => {
                return Err(QueryError::new(
                    "a range query must return an instant vector or a scalar".into(),
                ));
            }
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn params(&self, start_ms: i64, end_ms: i64) -> Params {
        Params {
            lookback_ms: self.lookback_ms,
            subquery_step_ms: self.subquery_step_ms,
            max_samples: self.max_samples,
            start_ms,
            end_ms,
        }
    }

    /// The query with every selector and subquery outside subqueries pinned
    /// to `@ t_ms` (those with an `@` keep theirs), or `None` when it calls
    /// a function that depends on the evaluation time (`time()`, ...).
    /// Prometheus' own test runner checks `@` handling this way: the pinned
    /// query must give the same result at any evaluation time.
    #[doc(hidden)]
    pub fn pinned_at(&self, t_ms: i64) -> Option<Query> {
        fn pin(node: &mut Node, t: i64, unsafe_fn: &mut bool) {
            match node {
                Node::Number(_) | Node::Str(_) => {}
                Node::Selector(s) => {
                    if s.at == At::Step {
                        s.at = At::Time(t);
                    }
                }
                Node::Matrix(m) => {
                    if m.sel.at == At::Step {
                        m.sel.at = At::Time(t);
                    }
                }
                // Selectors inside a subquery keep following its steps.
                Node::Subquery(sq) => {
                    if sq.at == At::Step {
                        sq.at = At::Time(t);
                    }
                }
                Node::Call(c) => {
                    *unsafe_fn |= c.func.is_at_unsafe();
                    c.args.iter_mut().for_each(|a| pin(a, t, unsafe_fn));
                }
                Node::Aggregate(a) => {
                    if let Some(p) = &mut a.param {
                        pin(p, t, unsafe_fn);
                    }
                    pin(&mut a.expr, t, unsafe_fn);
                }
                Node::Binary(b) => {
                    pin(&mut b.lhs, t, unsafe_fn);
                    pin(&mut b.rhs, t, unsafe_fn);
                }
                Node::Neg(n) => pin(n, t, unsafe_fn),
            }
        }
        let mut plan = (*self.plan).clone();
        let mut unsafe_fn = false;
        pin(&mut plan.root, t_ms, &mut unsafe_fn);
        if unsafe_fn {
            return None;
        }
        let mut q = self.clone();
        q.plan = Arc::new(plan);
        Some(q)
    }
}

/// Calls `f` on every selector of the plan, in range selectors too.
/// See [`Query::lookbehind_ms`]. A subquery reads its range, plus one of
/// its steps for alignment, plus what its inner expression reads.
fn lookbehind(node: &Node, lookback: i64, sub_step: i64) -> i64 {
    let shifted = |at: plan::At, offset: i64, span: i64| match at {
        plan::At::Step => offset.saturating_add(span).max(0),
        _ => 0,
    };
    match node {
        Node::Number(_) | Node::Str(_) => 0,
        Node::Selector(s) => shifted(s.at, s.offset_ms, lookback),
        Node::Matrix(m) => shifted(m.sel.at, m.sel.offset_ms, m.range_ms),
        Node::Subquery(sq) => {
            let inner = lookbehind(&sq.expr, lookback, sub_step);
            let step = sq.step_ms.unwrap_or(sub_step).max(1);
            shifted(
                sq.at,
                sq.offset_ms,
                sq.range_ms.saturating_add(step).saturating_add(inner),
            )
        }
        Node::Call(c) => c
            .args
            .iter()
            .map(|a| lookbehind(a, lookback, sub_step))
            .max()
            .unwrap_or(0),
        Node::Aggregate(a) => {
            let p = a
                .param
                .as_ref()
                .map_or(0, |p| lookbehind(p, lookback, sub_step));
            p.max(lookbehind(&a.expr, lookback, sub_step))
        }
        Node::Binary(b) => {
            lookbehind(&b.lhs, lookback, sub_step).max(lookbehind(&b.rhs, lookback, sub_step))
        }
        Node::Neg(n) => lookbehind(n, lookback, sub_step),
    }
}

fn walk_selectors(node: &Node, f: &mut impl FnMut(&plan::Selector)) {
    match node {
        Node::Number(_) | Node::Str(_) => {}
        Node::Selector(s) => f(s),
        Node::Matrix(m) => f(&m.sel),
        Node::Subquery(sq) => walk_selectors(&sq.expr, f),
        Node::Call(c) => c.args.iter().for_each(|a| walk_selectors(a, f)),
        Node::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk_selectors(p, f);
            }
            walk_selectors(&a.expr, f);
        }
        Node::Binary(b) => {
            walk_selectors(&b.lhs, f);
            walk_selectors(&b.rhs, f);
        }
        Node::Neg(n) => walk_selectors(n, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stale_nan;

    type Series<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

    fn store_with(series: &[Series<'_>]) -> SeriesStore {
        let store = SeriesStore::new(i64::MAX / 4);
        for (labels, points) in series {
            let id = store.intern(Labels::from_pairs(labels.iter().copied()));
            let batch: Vec<_> = points.iter().map(|&(t, v)| (id, t, v)).collect();
            store.append(&batch);
        }
        store
    }

    #[test]
    fn lookbehind_covers_ranges_offsets_and_subqueries() {
        let lb = |q: &str| Query::parse(q).unwrap().lookbehind_ms();
        assert_eq!(lb("1 + 2"), 0);
        assert_eq!(lb("up"), LOOKBACK_MS);
        assert_eq!(lb("up offset 10m"), 600_000 + LOOKBACK_MS);
        assert_eq!(lb("rate(x[1h]) / rate(y[5m])"), 3_600_000);
        assert_eq!(lb("rate(x[5m] offset 1h)"), 3_900_000);
        // Range 24h, step 1m, inner rate reads 2m.
        assert_eq!(
            lb("max_over_time(sum(rate(x[2m]))[24h:1m])"),
            86_400_000 + 60_000 + 120_000
        );
        assert_eq!(lb("sum(x @ 100)"), 0);
        assert_eq!(lb("topk(scalar(count_over_time(y[30m])), x)"), 1_800_000);
    }

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
    fn metric_names_of_a_general_query() {
        let q = Query::parse("sum(rate(b[5m])) / sum(rate(a[5m])) and on() {job=\"x\"}").unwrap();
        assert_eq!(q.metric_names(), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(q.metric_name(), None);
        assert!(q.reads_unnamed());
        let q = Query::parse("rate(a[5m]) > 0").unwrap();
        assert_eq!(q.metric_name(), Some("a"));
    }

    #[test]
    fn unsupported_constructs_are_named_with_position() {
        let err = Query::parse("sum(histogram_count(x))").unwrap_err();
        assert!(err.message.contains("histogram_count"), "{err}");
        assert!(err.message.contains("1:5"), "{err}");
        let err = Query::parse("x[5m]").unwrap_err();
        assert!(err.message.contains("instant vector"), "{err}");
        let err = Query::parse("limitk(1, x)").unwrap_err();
        assert!(err.message.contains("limitk"), "{err}");
    }

    #[test]
    fn syntax_error() {
        assert!(Query::parse("x{").is_err());
    }

    #[test]
    fn hostile_queries_fail_cleanly() {
        let store = store_with(&[(&[("__name__", "x")], &[(0, 1.0)])]);
        let q = Query::parse("max_over_time(x[1000y:1ms])").unwrap();
        assert!(q.instant(&store, 0).is_err());
        let deep = format!("{}x{}", "(".repeat(400), ")".repeat(400));
        if let Err(e) = Query::parse(&deep) {
            assert!(e.message.contains("nested"), "{e}");
        }
        let q = Query::parse("x").unwrap();
        assert!(q.range(&store, 0, i64::MAX / 4, 1).is_err());
    }

    #[test]
    fn rate_and_staleness() {
        let store = store_with(&[(
            &[("__name__", "c"), ("job", "a")],
            &[
                (0, 0.0),
                (15_000, 15.0),
                (30_000, 30.0),
                (45_000, 45.0),
                (60_000, 60.0),
            ],
        )]);
        let got = Query::parse("rate(c[1m])")
            .unwrap()
            .instant(&store, 60_000)
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels, Labels::from_pairs([("job", "a")]));
        assert!((got[0].value - 1.0).abs() < 1e-12, "{}", got[0].value);
        let id = store.intern(Labels::from_pairs([("__name__", "c"), ("job", "a")]));
        store.append(&[(id, 70_000, stale_nan())]);
        assert!(
            Query::parse("c")
                .unwrap()
                .instant(&store, 80_000)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            Query::parse("c")
                .unwrap()
                .instant(&store, 65_000)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn many_to_many_is_a_runtime_error() {
        let store = store_with(&[
            (&[("__name__", "a"), ("j", "1"), ("i", "1")], &[(0, 1.0)]),
            (&[("__name__", "a"), ("j", "1"), ("i", "2")], &[(0, 1.0)]),
            (&[("__name__", "b"), ("j", "1"), ("i", "1")], &[(0, 1.0)]),
            (&[("__name__", "b"), ("j", "1"), ("i", "2")], &[(0, 1.0)]),
        ]);
        let err = Query::parse("a + on(j) b")
            .unwrap()
            .instant(&store, 0)
            .unwrap_err();
        assert!(err.message.contains("many-to-many"), "{err}");
    }

    #[test]
    fn range_matches_instant_at_each_step() {
        let points: Vec<(i64, f64)> = (0..100).map(|i| (i * 15_000, (i * i) as f64)).collect();
        let store = store_with(&[(&[("__name__", "c"), ("job", "a")], &points)]);
        for text in [
            "rate(c[1m])",
            "sum(increase(c[2m])) by (job)",
            "max_over_time(rate(c[1m])[5m:30s])",
            "c > 100",
            "time() - 1",
        ] {
            let q = Query::parse(text).unwrap();
            let range = q.range(&store, 300_000, 900_000, 60_000).unwrap();
            for (labels, pts) in &range {
                for &(t, v) in pts {
                    let inst = q.instant(&store, t).unwrap();
                    let s = inst.iter().find(|s| &s.labels == labels).unwrap();
                    assert!(
                        (s.value - v).abs() <= 1e-9 * v.abs().max(1.0),
                        "{text} at {t}"
                    );
                }
            }
            assert!(!range.is_empty(), "{text}");
        }
    }
}
