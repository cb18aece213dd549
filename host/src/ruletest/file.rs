//! A rule test file as written (serde structs whose doc comments are the
//! user documentation), and its validation into [`TestFile`].
//!
//! Decoding uses the config module's machinery, so a test file's errors
//! read like `vigil.toml`'s: every one found, each at its line and column,
//! unknown keys with a suggestion. Inline `[[rules]]` are validated exactly
//! as `vigil.toml`'s are.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::notation::{self, SeqValue};
use crate::alert::{ALERTNAME, AlertState};
use crate::config::raw::{self, RawRule};
use crate::config::{
    self, ConfigError, ConfigErrors, Diagnostics, Location, RuleConfig, parse_duration,
};
use crate::query::Query;
use crate::store::labels::Labels;

/// A rule test file (`vigil test FILE`), modelled on promtool's unit test
/// files. Relative paths resolve against the test file's directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTestFile {
    /// A Vigil config whose `[[rules]]` are under test, like
    /// `"../vigil.toml"`; its `plugin_dir` is used too. Exactly one of
    /// `config` and `[[rules]]` must be given.
    pub config: Option<Spanned<PathBuf>>,
    /// The rules under test, in the same syntax as `vigil.toml`'s
    /// `[[rules]]` (a rule's `every` defaults to `evaluation_interval`).
    pub rules: Option<IgnoredAny>,
    /// Directory of the check plugins the rules name. Default: the
    /// config's `plugin_dir` with `config`, else `"plugins"`. `vigil test
    /// --plugin-dir` overrides it.
    pub plugin_dir: Option<Spanned<PathBuf>>,
    /// How often every rule is evaluated: at 0, this, twice this, ... up
    /// to the largest `eval_time` of a test, as promtool evaluates rule
    /// groups (a rule's own `every` only sets its subqueries' default
    /// step). Default: `"1m"`.
    pub evaluation_interval: Option<Spanned<String>>,
    /// What templates see as `$externalLabels`, like `{ region = "eu" }`.
    /// Default: none.
    #[serde(default)]
    pub external_labels: BTreeMap<Spanned<String>, String>,
    /// What templates see as `$externalURL`. Default: the config's
    /// `external_url` with `config`, else empty.
    pub external_url: Option<Spanned<String>>,
    /// The tests; each starts from an empty store and fresh alert state.
    pub tests: Option<IgnoredAny>,
}

/// `[[tests]]`: input series and what to expect of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    /// A name for the output. Default: `tests[N]`.
    pub name: Option<String>,
    /// The time between two values of an input series. Default:
    /// `evaluation_interval` (promtool 2.42 has no default and loads every
    /// value at time 0; always set it for files shared with promtool).
    pub interval: Option<Spanned<String>>,
    /// The input series, like `{ series = 'up{job="a"}', values = "1 0 0
    /// _ stale 1+1x5" }`: values in the expanding notation, one per
    /// `interval` from time 0 (`a+bxn`: n+1 values from a in steps of b;
    /// `_`: no sample; `_xn`: n steps without one; `stale`: a staleness
    /// marker).
    #[serde(default)]
    pub input_series: Vec<Spanned<RawSeries>>,
    /// Expected alerts of one rule at one time.
    #[serde(default)]
    pub alert_rule_test: Vec<Spanned<RawAlertTest>>,
    /// Expected results of a PromQL expression at one time, evaluated over
    /// the input series and the `ALERTS` / `ALERTS_FOR_STATE` series the
    /// rules wrote.
    #[serde(default)]
    pub promql_expr_test: Vec<Spanned<RawExprTest>>,
}

/// One input series.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeries {
    /// The series, like `'up{job="a", instance="x"}'`.
    pub series: Spanned<String>,
    /// Its values, like `"1 1 0 _x3 stale 0+1x10"`.
    pub values: Spanned<String>,
}

/// `[[tests.alert_rule_test]]`: the alerts of one rule after the
/// evaluation at `eval_time` (or the last evaluation before it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertTest {
    /// When, like `"5m"`, from time 0.
    pub eval_time: Spanned<String>,
    /// The rule's name.
    pub alertname: Spanned<String>,
    /// Whether pending alerts are compared too. Default: `true` when an
    /// expected alert is pending, else `false` (promtool compares firing
    /// alerts only, so `exp_alerts = []` means "nothing firing").
    pub check_pending: Option<bool>,
    /// The expected alerts, in any order. Default: none.
    #[serde(default)]
    pub exp_alerts: Vec<Spanned<RawExpAlert>>,
}

/// One expected alert.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpAlert {
    /// Its labels without `alertname` (added), like `{ job = "a",
    /// severity = "page" }`. Default: none.
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    /// Its rendered annotations, all of them. Default: none.
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
    /// `"firing"` or `"pending"`. Default: `"firing"`.
    pub state: Option<ExpState>,
}

/// The state an expected alert is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpState {
    /// Its condition has held for the rule's `for`.
    Firing,
    /// Its condition holds, not yet for the rule's `for`.
    Pending,
}

/// `[[tests.promql_expr_test]]`: an expression's result at one time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExprTest {
    /// The PromQL expression, like `'ALERTS{alertstate="firing"}'`.
    pub expr: Spanned<String>,
    /// When, like `"5m"`, from time 0.
    pub eval_time: Spanned<String>,
    /// The expected samples, in any order. Default: none (an empty result).
    #[serde(default)]
    pub exp_samples: Vec<Spanned<RawSample>>,
}

/// One expected sample.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSample {
    /// Its series, like `'up{job="a"}'`; `""` (the default) for a scalar
    /// result or a series without labels.
    pub labels: Option<Spanned<String>>,
    /// Its value, compared exactly (NaN matches NaN).
    pub value: f64,
}

/// A validated test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// The test file.
    pub path: PathBuf,
    /// The file the rules were written in: the config, or the test file.
    pub rules_file: PathBuf,
    /// The rules under test.
    pub rules: Vec<RuleConfig>,
    /// Where the check plugins are.
    pub plugin_dir: PathBuf,
    /// The step of rule evaluation.
    pub evaluation_interval_ms: i64,
    /// `$externalLabels`.
    pub external_labels: Labels,
    /// `$externalURL`.
    pub external_url: String,
    /// The tests, in file order.
    pub tests: Vec<TestCase>,
}

/// One `[[tests]]` entry.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Its name, or `tests[N]`.
    pub name: String,
    /// Where it starts.
    pub location: Location,
    /// The time between input values.
    pub interval_ms: i64,
    /// The input series, a later definition of a series replacing an
    /// earlier one.
    pub input_series: Vec<InputSeries>,
    /// The alert tests, in file order.
    pub alert_tests: Vec<AlertTest>,
    /// The expression tests, in file order.
    pub expr_tests: Vec<ExprTest>,
}

/// One input series, as written and expanded.
#[derive(Debug, Clone)]
pub struct InputSeries {
    /// The series as written.
    pub series: String,
    /// The values as written.
    pub values: String,
    /// The series' labels.
    pub labels: Labels,
    /// One value per `interval` from time 0.
    pub points: Vec<SeqValue>,
}

/// One alert test.
#[derive(Debug, Clone)]
pub struct AlertTest {
    /// Where it starts.
    pub location: Location,
    /// When, in milliseconds from 0.
    pub eval_time_ms: i64,
    /// The rule.
    pub alertname: String,
    /// Whether pending alerts are compared.
    pub check_pending: bool,
    /// The expected alerts.
    pub exp_alerts: Vec<ExpAlert>,
}

/// One expected (or observed) alert.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpAlert {
    /// Pending or firing.
    pub state: AlertState,
    /// All labels, `alertname` included.
    pub labels: Labels,
    /// All annotations.
    pub annotations: BTreeMap<String, String>,
}

/// One expression test.
#[derive(Debug, Clone)]
pub struct ExprTest {
    /// Where it starts.
    pub location: Location,
    /// The expression as written.
    pub expr: String,
    /// When, in milliseconds from 0.
    pub eval_time_ms: i64,
    /// The expected samples.
    pub exp_samples: Vec<(Labels, f64)>,
}

impl TestCase {
    /// The last time anything is checked: rules are evaluated up to it.
    pub fn max_eval_time_ms(&self) -> i64 {
        let alerts = self.alert_tests.iter().map(|t| t.eval_time_ms);
        let exprs = self.expr_tests.iter().map(|t| t.eval_time_ms);
        alerts.chain(exprs).max().unwrap_or(0)
    }
}

const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);

/// The most evaluation steps one test may need: a typo like `eval_time =
/// "100y"` must be an error, not a run that never ends.
const MAX_STEPS: i64 = 1_000_000;

/// Reads and validates a test file. `plugin_dir` overrides the file's.
pub fn load(path: &Path, plugin_dir: Option<&Path>) -> Result<TestFile, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the test file: {e}")))?;
    parse(path, &text, plugin_dir)
}

/// Validates test file text; `path` names it in errors and anchors
/// relative paths.
pub fn parse(path: &Path, text: &str, plugin_dir: Option<&Path>) -> Result<TestFile, ConfigErrors> {
    let mut diag = Diagnostics::new(path, text);
    let mut foreign = Vec::new();
    let file = decode(&mut diag, path, plugin_dir, &mut foreign);
    match file {
        Some(file) if !diag.has_errors() => Ok(file),
        _ => {
            let mut errors = ConfigErrors(foreign);
            errors.sort();
            errors.0.extend(diag.finish());
            Err(errors)
        }
    }
}

/// Decodes and validates; errors in another file (the config) go to
/// `foreign`.
fn decode(
    diag: &mut Diagnostics<'_>,
    path: &Path,
    plugin_dir: Option<&Path>,
    foreign: &mut Vec<ConfigError>,
) -> Option<TestFile> {
    let base = path.parent().unwrap_or(Path::new(""));
    let document = match DeTable::parse(diag.text()) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            diag.error(&span, format!("TOML syntax error: {}", e.message()));
            return None;
        }
    };
    let root_span = document.span();
    let mut root = document.into_inner();
    let rules_value = root.remove("rules");
    let tests_value = root.remove("tests");
    let raw = raw::table::<RawTestFile>(
        diag,
        Spanned::new(root_span.clone(), DeValue::Table(root)),
        "the top level",
    )
    .map(Spanned::into_inner);
    let raw_ok = raw.is_some();
    let raw = raw.unwrap_or_default();
    let interval = match &raw.evaluation_interval {
        Some(s) => positive(diag, s, "evaluation_interval").unwrap_or(DEFAULT_EVALUATION_INTERVAL),
        None => DEFAULT_EVALUATION_INTERVAL,
    };
    let rules_span = rules_value.as_ref().map(Spanned::span);
    let inline: Vec<Spanned<RawRule>> = raw::items(diag, rules_value, "rules").0;
    let inline = config::rules_with_defaults(diag, inline, interval);

    // The rules: from the config, or inline.
    let (rules_file, rules, config_plugin_dir, config_url) = match (&raw.config, rules_span) {
        (Some(_), Some(span)) => {
            diag.error(&span, "give either `config` or `[[rules]]`, not both");
            (path.to_path_buf(), Vec::new(), None, None)
        }
        (Some(c), None) => {
            let file = base.join(c.get_ref());
            match config::load(&file) {
                Ok(cfg) => (
                    file,
                    cfg.rules,
                    Some(cfg.plugin_dir),
                    Some(cfg.external_url),
                ),
                Err(errors) => {
                    diag.error(
                        &c.span(),
                        format!("`config`: {} has {} error(s)", file.display(), errors.len()),
                    );
                    foreign.extend(errors);
                    (file, Vec::new(), None, None)
                }
            }
        }
        (None, Some(_)) => (path.to_path_buf(), inline, None, None),
        (None, None) => {
            if raw_ok {
                diag.error(
                    &(0..0),
                    "no rules under test: set `config = \"vigil.toml\"` or write `[[rules]]`",
                );
            }
            (path.to_path_buf(), Vec::new(), None, None)
        }
    };
    let plugin_dir = match (plugin_dir, &raw.plugin_dir, config_plugin_dir) {
        (Some(p), _, _) => p.to_path_buf(),
        (None, Some(p), _) => base.join(p.get_ref()),
        (None, None, Some(p)) => p,
        (None, None, None) => base.join("plugins"),
    };
    let external_url = match (&raw.external_url, config_url) {
        (Some(u), _) => u.get_ref().trim_end_matches('/').to_string(),
        (None, Some(u)) => u,
        (None, None) => String::new(),
    };
    let mut external = Vec::new();
    for (k, v) in &raw.external_labels {
        if !config::is_label_name(k.get_ref()) {
            diag.error(
                &k.span(),
                format!("invalid label name `{}` in `external_labels`", k.get_ref()),
            );
        }
        external.push((k.get_ref().clone(), v.clone()));
    }
    let rule_names: HashSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let rules_known = !diag.has_errors();

    let mut tests = Vec::new();
    let (raw_tests, failed) = decode_tests(diag, tests_value);
    if raw_tests.is_empty() && raw_ok && !failed {
        diag.error(&(0..0), "no tests: add at least one `[[tests]]`");
    }
    for (i, t) in raw_tests.into_iter().enumerate() {
        let test_span = t.span();
        let location = diag.at(&test_span);
        let t = t.into_inner();
        let interval_ms = match &t.interval {
            Some(s) => positive(diag, s, "interval").map_or(1, millis),
            None => millis(interval),
        };
        let mut input_series: Vec<InputSeries> = Vec::new();
        for s in t.input_series {
            let s = s.into_inner();
            let labels = match notation::parse_labels(s.series.get_ref()) {
                Ok(l) if l.is_empty() => {
                    diag.error(&s.series.span(), "`series` must name a series");
                    continue;
                }
                Ok(l) => l,
                Err(e) => {
                    notation_error(diag, &s.series, &e, "series");
                    continue;
                }
            };
            let points = match notation::parse_values(s.values.get_ref()) {
                Ok(p) => p,
                Err(e) => {
                    notation_error(diag, &s.values, &e, "values");
                    continue;
                }
            };
            // A later definition of a series replaces an earlier one, as
            // promtool's loader does.
            input_series.retain(|x| x.labels != labels);
            input_series.push(InputSeries {
                series: s.series.into_inner(),
                values: s.values.into_inner(),
                labels,
                points,
            });
        }
        let mut alert_tests = Vec::new();
        for a in t.alert_rule_test {
            let alert_span = a.span();
            let at = diag.at(&alert_span);
            let a = a.into_inner();
            let eval_time_ms = duration(diag, &a.eval_time, "eval_time").map_or(0, millis);
            let alertname = a.alertname.get_ref().clone();
            if rules_known && !rule_names.contains(alertname.as_str()) {
                let mut known: Vec<&str> = rule_names.iter().copied().collect();
                known.sort_unstable();
                diag.error(
                    &a.alertname.span(),
                    format!(
                        "no rule named `{alertname}` (rules: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
            let exp_alerts: Vec<ExpAlert> = a
                .exp_alerts
                .into_iter()
                .map(|e| {
                    let e = e.into_inner();
                    let mut pairs: Vec<(String, String)> = e.exp_labels.into_iter().collect();
                    pairs.push((ALERTNAME.to_string(), alertname.clone()));
                    ExpAlert {
                        state: match e.state {
                            Some(ExpState::Pending) => AlertState::Pending,
                            _ => AlertState::Firing,
                        },
                        labels: Labels::new(pairs),
                        annotations: e.exp_annotations,
                    }
                })
                .collect();
            let any_pending = exp_alerts.iter().any(|e| e.state == AlertState::Pending);
            if any_pending && a.check_pending == Some(false) {
                diag.error(
                    &alert_span,
                    "an expected alert is pending but `check_pending = false`",
                );
            }
            alert_tests.push(AlertTest {
                location: at,
                eval_time_ms,
                alertname,
                check_pending: a.check_pending.unwrap_or(any_pending),
                exp_alerts,
            });
        }
        let mut expr_tests = Vec::new();
        for x in t.promql_expr_test {
            let at = diag.at(&x.span());
            let x = x.into_inner();
            let eval_time_ms = duration(diag, &x.eval_time, "eval_time").map_or(0, millis);
            if let Err(e) = Query::parse(x.expr.get_ref()) {
                diag.error(&x.expr.span(), format!("`expr`: invalid query: {e}"));
            }
            let mut exp_samples = Vec::new();
            for s in x.exp_samples {
                let s = s.into_inner();
                let labels = match &s.labels {
                    Some(l) => match notation::parse_labels(l.get_ref()) {
                        Ok(labels) => labels,
                        Err(e) => {
                            notation_error(diag, l, &e, "labels");
                            continue;
                        }
                    },
                    None => Labels::default(),
                };
                exp_samples.push((labels, s.value));
            }
            expr_tests.push(ExprTest {
                location: at,
                expr: x.expr.into_inner(),
                eval_time_ms,
                exp_samples,
            });
        }
        let case = TestCase {
            name: t.name.unwrap_or_else(|| format!("tests[{i}]")),
            location,
            interval_ms,
            input_series,
            alert_tests,
            expr_tests,
        };
        let steps = case.max_eval_time_ms() / millis(interval).max(1);
        if steps > MAX_STEPS {
            diag.error(
                &test_span,
                format!(
                    "the largest `eval_time` is {steps} evaluation steps away; at most {MAX_STEPS} (raise `evaluation_interval`)"
                ),
            );
        }
        tests.push(case);
    }
    Some(TestFile {
        path: path.to_path_buf(),
        rules_file,
        rules,
        plugin_dir,
        evaluation_interval_ms: millis(interval),
        external_labels: Labels::new(external),
        external_url,
        tests,
    })
}

/// `[[tests]]` item by item, and in each its input series and tests item
/// by item, so one mistake does not hide the next. The flag says whether
/// an item failed.
fn decode_tests(
    diag: &mut Diagnostics<'_>,
    value: Option<Spanned<DeValue<'_>>>,
) -> (Vec<Spanned<RawTest>>, bool) {
    let Some(value) = value else {
        return (Vec::new(), false);
    };
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        diag.error(
            &span,
            "`tests` must be an array of tables, like `[[tests]]`",
        );
        return (Vec::new(), true);
    };
    let mut out = Vec::new();
    let mut failed = false;
    for item in items {
        let span = item.span();
        let mut item = item.into_inner();
        let (mut series, mut alerts, mut exprs) = (None, None, None);
        if let DeValue::Table(t) = &mut item {
            series = t.remove("input_series");
            alerts = t.remove("alert_rule_test");
            exprs = t.remove("promql_expr_test");
        }
        let head = raw::table::<RawTest>(diag, Spanned::new(span, item), "[[tests]]");
        let (series, f1) = raw::items(diag, series, "tests.input_series");
        let (alerts, f2) = raw::items(diag, alerts, "tests.alert_rule_test");
        let (exprs, f3) = raw::items(diag, exprs, "tests.promql_expr_test");
        failed |= f1 || f2 || f3;
        // Keep what decoded, so its values are validated too; the errors
        // already recorded fail the file.
        match head {
            Some(mut t) => {
                let test = t.get_mut();
                test.input_series = series;
                test.alert_rule_test = alerts;
                test.promql_expr_test = exprs;
                out.push(t);
            }
            None => failed = true,
        }
    }
    (out, failed)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn duration(diag: &mut Diagnostics<'_>, value: &Spanned<String>, field: &str) -> Option<Duration> {
    match parse_duration(value.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            diag.error(&value.span(), format!("`{field}`: {e}"));
            None
        }
    }
}

fn positive(diag: &mut Diagnostics<'_>, value: &Spanned<String>, field: &str) -> Option<Duration> {
    let d = duration(diag, value, field)?;
    if d.is_zero() {
        diag.error(&value.span(), format!("`{field}` must be more than zero"));
        return None;
    }
    Some(d)
}

/// Reports a notation error at the character it is about when the string
/// is written plainly on one line (no escapes), else at the string.
fn notation_error(
    diag: &mut Diagnostics<'_>,
    value: &Spanned<String>,
    e: &notation::NotationError,
    field: &str,
) {
    let span = value.span();
    let written = diag.text().get(span.clone()).unwrap_or("");
    let plain = written.len() == value.get_ref().len() + 2
        && (written.starts_with('"') || written.starts_with('\''))
        && !written.starts_with("\"\"\"")
        && !written.starts_with("'''")
        && written.get(1..written.len() - 1) == Some(value.get_ref().as_str());
    let at: Range<usize> = if plain {
        let o = span.start + 1 + e.offset;
        o..o
    } else {
        span
    };
    diag.error(&at, format!("`{field}`: {e}"));
}
