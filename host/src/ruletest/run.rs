//! Running a test file: promtool's evaluation loop over Vigil's engine.
//!
//! Per test: a fresh store and fresh rule instances (the real check plugins
//! in the sandbox, the real alert state machine). Steps run at 0,
//! `evaluation_interval`, ... up to the largest `eval_time`; at each step
//! the input samples up to that time are loaded, every rule is evaluated
//! in file order, and each rule's `ALERTS` / `ALERTS_FOR_STATE` series are
//! written at that time (with a staleness marker for a series the rule
//! wrote at the step before and not now), as Prometheus' rule group does.
//! An alert test at `t` is compared after the step `s` with `s <= t < s +
//! evaluation_interval`; expression tests run after the last step.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::file::{AlertTest, ExpAlert, ExprTest, TestCase, TestFile};
use super::notation::SeqValue;
use crate::alert::AlertState;
use crate::config::{ConfigError, ConfigErrors, Location};
use crate::engine::compile_rules;
use crate::engine::plugins::Catalog;
use crate::engine::rule::RuleCore;
use crate::query::{Query, QueryValue};
use crate::sandbox::{Limits, Sandbox};
use crate::store::labels::{Labels, METRIC_NAME};
use crate::store::{SeriesId, SeriesStore, stale_nan};

/// A test file with its plugins loaded and its rules known to compile.
pub struct Suite {
    file: TestFile,
    sandbox: Sandbox,
    catalog: Catalog,
}

/// What one test found.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// The test's name.
    pub name: String,
    /// Where the test starts.
    pub location: Location,
    /// How many alert and expression tests it has.
    pub checks: usize,
    /// Every check that failed, and a rule error if one stopped the test.
    pub failures: Vec<Failure>,
    /// The active alerts after each evaluation step, for tools that
    /// compare Vigil with another evaluator step by step.
    pub steps: Vec<Step>,
}

impl TestReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One failed check.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A rule could not be evaluated; the test stops there, as promtool's.
    Rule {
        /// The rule.
        rule: String,
        /// The step.
        at_ms: i64,
        /// Why.
        error: String,
    },
    /// An alert test saw other alerts than expected.
    Alerts {
        /// The test.
        test: AlertTest,
        /// What the rule had.
        got: Vec<ExpAlert>,
    },
    /// An expression gave another result than expected, or an error.
    Expr {
        /// The test.
        test: ExprTest,
        /// The samples, or the query error.
        got: Result<Vec<(Labels, f64)>, String>,
    },
}

/// The alerts active after one evaluation step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The evaluation time.
    pub at_ms: i64,
    /// Every pending and firing alert of every rule, rule by rule.
    pub alerts: Vec<StepAlert>,
}

/// One active alert at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepAlert {
    /// The rule.
    pub rule: String,
    /// Pending or firing.
    pub state: AlertState,
    /// Its labels, `alertname` included.
    pub labels: Labels,
    /// Its rendered annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it became pending.
    pub active_at_ms: i64,
}

impl Suite {
    /// Loads the plugins the rules name and compiles every rule once, so a
    /// missing plugin, a bad parameter or a bad query is an input error
    /// (with its file position) rather than a failed test.
    pub fn prepare(file: TestFile) -> Result<Suite, ConfigErrors> {
        let sandbox = Sandbox::new(None, Limits::default())
            .map_err(|e| ConfigError::new(&file.path, format!("plugin sandbox: {e}")))?;
        let catalog = if file.rules.iter().any(|r| r.check.is_some()) {
            Catalog::scan(&file.plugin_dir, &sandbox, &Catalog::default()).0
        } else {
            Catalog::default()
        };
        let mut errors = Vec::new();
        compile_rules(
            &file.rules_file,
            &file.rules,
            &file.plugin_dir,
            &file.external_url,
            &catalog,
            &sandbox,
            &mut errors,
        );
        if !errors.is_empty() {
            let mut errors = ConfigErrors(errors);
            errors.sort();
            return Err(errors);
        }
        Ok(Suite {
            file,
            sandbox,
            catalog,
        })
    }

    /// The validated file.
    pub fn file(&self) -> &TestFile {
        &self.file
    }

    /// Runs every test.
    pub fn run(&self) -> Vec<TestReport> {
        self.file.tests.iter().map(|t| self.run_test(t)).collect()
    }

    /// Fresh instances of every rule: check state and alerts start empty.
    fn fresh_rules(&self) -> Result<Vec<RuleCore>, String> {
        let mut errors = Vec::new();
        let compiled = compile_rules(
            &self.file.rules_file,
            &self.file.rules,
            &self.file.plugin_dir,
            &self.file.external_url,
            &self.catalog,
            &self.sandbox,
            &mut errors,
        );
        if let Some(e) = errors.first() {
            return Err(e.to_string());
        }
        Ok(compiled
            .into_iter()
            .map(|(spec, check)| {
                let mut core = RuleCore::new(Arc::new(spec), check);
                core.alerts.set_external(
                    self.file.external_labels.clone(),
                    self.file.external_url.clone(),
                );
                core
            })
            .collect())
    }

    fn run_test(&self, test: &TestCase) -> TestReport {
        let mut report = TestReport {
            name: test.name.clone(),
            location: test.location,
            checks: test.alert_tests.len() + test.expr_tests.len(),
            failures: Vec::new(),
            steps: Vec::new(),
        };
        let mut rules = match self.fresh_rules() {
            Ok(r) => r,
            Err(error) => {
                report.failures.push(Failure::Rule {
                    rule: String::new(),
                    at_ms: 0,
                    error,
                });
                return report;
            }
        };
        // Test files span hours or days from time 0: keep everything.
        let store = SeriesStore::new(i64::MAX / 4);
        let mut input = Input::new(&store, test);
        let step = self.file.evaluation_interval_ms.max(1);
        let end = test.max_eval_time_ms();
        let mut alert_tests: Vec<&AlertTest> = test.alert_tests.iter().collect();
        alert_tests.sort_by_key(|t| t.eval_time_ms);
        let mut next_alert_test = 0;
        // Per rule: the ALERTS and ALERTS_FOR_STATE series it wrote last step.
        let mut written: Vec<Vec<SeriesId>> = vec![Vec::new(); rules.len()];
        let mut ts = 0i64;
        while ts <= end {
            input.load_until(&store, ts);
            let mut active = Vec::new();
            for (core, written) in rules.iter_mut().zip(&mut written) {
                let out = core.evaluate(&store, ts, &self.file.external_url);
                if let Some((error, _)) = out.error {
                    report.failures.push(Failure::Rule {
                        rule: core.spec.cfg.name.clone(),
                        at_ms: ts,
                        error,
                    });
                    return report;
                }
                *written = write_alert_series(&store, core, ts, written, &mut active);
            }
            for t in alert_tests[next_alert_test..]
                .iter()
                .take_while(|t| t.eval_time_ms < ts.saturating_add(step))
            {
                let got = rule_alerts(&active, &t.alertname, t.check_pending);
                if !same_alerts(&t.exp_alerts, &got) {
                    report.failures.push(Failure::Alerts {
                        test: (*t).clone(),
                        got,
                    });
                }
                next_alert_test += 1;
            }
            report.steps.push(Step {
                at_ms: ts,
                alerts: active,
            });
            ts = match ts.checked_add(step) {
                Some(t) => t,
                None => break,
            };
        }
        for t in &test.expr_tests {
            let got = eval_expr(&store, &t.expr, t.eval_time_ms, step);
            let ok = match &got {
                Ok(samples) => same_samples(&t.exp_samples, samples),
                Err(_) => false,
            };
            if !ok {
                report.failures.push(Failure::Expr {
                    test: t.clone(),
                    got,
                });
            }
        }
        report
    }
}

/// The input series, loaded step by step as promtool does, so a query
/// never sees a sample later than the evaluation (`@` and negative
/// offsets included).
struct Input {
    series: Vec<(SeriesId, Vec<(i64, f64)>)>,
    next: Vec<usize>,
}

impl Input {
    fn new(store: &SeriesStore, test: &TestCase) -> Input {
        let series: Vec<(SeriesId, Vec<(i64, f64)>)> = test
            .input_series
            .iter()
            .map(|s| {
                let points = s
                    .points
                    .iter()
                    .enumerate()
                    .filter_map(|(k, v)| match v {
                        SeqValue::Value(v) => {
                            Some((i64::try_from(k).ok()?.checked_mul(test.interval_ms)?, *v))
                        }
                        SeqValue::Omitted => None,
                    })
                    .collect();
                (store.intern(s.labels.clone()), points)
            })
            .collect();
        let next = vec![0; series.len()];
        Input { series, next }
    }

    fn load_until(&mut self, store: &SeriesStore, t_ms: i64) {
        let mut batch = Vec::new();
        for ((id, points), next) in self.series.iter().zip(&mut self.next) {
            while let Some(&(t, v)) = points.get(*next).filter(|(t, _)| *t <= t_ms) {
                batch.push((*id, t, v));
                *next += 1;
            }
        }
        store.append(&batch);
    }
}

/// Writes a rule's `ALERTS{alertstate=...} 1` and `ALERTS_FOR_STATE <active
/// since, Unix seconds>` series at `ts`, stale markers for the ones it
/// wrote last time and not now, and collects its active alerts. Returns
/// the series written.
fn write_alert_series(
    store: &SeriesStore,
    core: &RuleCore,
    ts: i64,
    previous: &[SeriesId],
    active: &mut Vec<StepAlert>,
) -> Vec<SeriesId> {
    let mut batch = Vec::new();
    let mut now = Vec::new();
    let mut seen = HashSet::new();
    for a in core.alerts.alerts().filter(|a| a.is_active()) {
        let mut alerts = a.labels.clone();
        alerts.set(METRIC_NAME, "ALERTS");
        alerts.set("alertstate", &a.state.to_string());
        let mut for_state = a.labels.clone();
        for_state.set(METRIC_NAME, "ALERTS_FOR_STATE");
        // Prometheus writes `ActiveAt.Unix()`: whole seconds.
        let since = a.active_at.div_euclid(1000) as f64;
        for (labels, value) in [(alerts, 1.0), (for_state, since)] {
            let id = store.intern(labels);
            batch.push((id, ts, value));
            now.push(id);
            seen.insert(id);
        }
        active.push(StepAlert {
            rule: core.spec.cfg.name.clone(),
            state: a.state,
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            active_at_ms: a.active_at,
        });
    }
    for id in previous.iter().filter(|id| !seen.contains(*id)) {
        batch.push((*id, ts, stale_nan()));
    }
    store.append(&batch);
    now
}

/// The alerts of one rule an alert test compares: the firing ones, and
/// the pending ones when asked.
fn rule_alerts(active: &[StepAlert], rule: &str, pending: bool) -> Vec<ExpAlert> {
    active
        .iter()
        .filter(|a| a.rule == rule)
        .filter(|a| a.state == AlertState::Firing || (pending && a.state == AlertState::Pending))
        .map(|a| ExpAlert {
            state: a.state,
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
        })
        .collect()
}

/// An expression's result at `t_ms`; a scalar is one sample without
/// labels, as promtool turns it.
fn eval_expr(
    store: &SeriesStore,
    expr: &str,
    t_ms: i64,
    subquery_step_ms: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    let query = Query::parse(expr)
        .map_err(|e| e.to_string())?
        .with_subquery_step(subquery_step_ms);
    Ok(
        match query.value_at(store, t_ms).map_err(|e| e.to_string())? {
            QueryValue::Scalar(v) => vec![(Labels::default(), v)],
            QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.value)).collect(),
        },
    )
}

/// Exact equality, except that NaN equals NaN (promtool's `DeepEqual`
/// never matches a NaN, so no passing test could expect one).
pub(crate) fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Equal as multisets.
fn same_multiset<T>(expected: &[T], got: &[T], eq: impl Fn(&T, &T) -> bool) -> bool {
    if expected.len() != got.len() {
        return false;
    }
    let mut used = vec![false; got.len()];
    expected.iter().all(
        |e| match (0..got.len()).find(|&i| !used[i] && eq(e, &got[i])) {
            Some(i) => {
                used[i] = true;
                true
            }
            None => false,
        },
    )
}

fn same_alerts(expected: &[ExpAlert], got: &[ExpAlert]) -> bool {
    same_multiset(expected, got, |a, b| a == b)
}

fn same_samples(expected: &[(Labels, f64)], got: &[(Labels, f64)]) -> bool {
    same_multiset(expected, got, |a, b| a.0 == b.0 && same_value(a.1, b.1))
}
