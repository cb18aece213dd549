//! `vigil test`: rule unit tests, like `promtool test rules`.
//!
//! A test file (TOML) names the rules under test, feeds them input series
//! written in Prometheus' expanding notation, and states which alerts are
//! pending or firing, and what PromQL expressions return, at given times:
//!
//! ```toml
//! evaluation_interval = "1m" # default "1m"
//! # external_labels = { region = "eu" }, external_url = "http://vigil"
//!
//! # The rules: the [[rules]] of a config (its plugin_dir too) ...
//! #   config = "vigil.toml"
//! # ... or inline, in the same syntax as vigil.toml:
//! [[rules]]
//! name = "InstanceDown"
//! query = "up == 0"          # no `check`: every series returned fires
//! for = "2m"
//! labels = { severity = "page" }
//! annotations = { summary = "{{ $labels.job }} is down" }
//!
//! [[tests]]
//! name = "down for three minutes"
//! interval = "1m"            # between input values; default evaluation_interval
//! input_series = [
//!   { series = 'up{job="api"}', values = "1 0 0 0 1 _ stale" },
//! ]
//!
//! [[tests.alert_rule_test]]
//! eval_time = "2m"
//! alertname = "InstanceDown"
//! exp_alerts = [{ exp_labels = { job = "api", severity = "page" },
//!                 exp_annotations = { summary = "api is down" },
//!                 state = "pending" }]  # default "firing"
//!
//! [[tests.alert_rule_test]]
//! eval_time = "3m"
//! alertname = "InstanceDown"
//! exp_alerts = [{ exp_labels = { job = "api", severity = "page" },
//!                 exp_annotations = { summary = "api is down" } }]
//!
//! [[tests.promql_expr_test]]
//! expr = 'ALERTS{alertstate="firing"}'
//! eval_time = "3m"
//! exp_samples = [{ labels = 'ALERTS{alertname="InstanceDown", alertstate="firing", job="api", severity="page"}', value = 1 }]
//! ```
//!
//! Every field is documented in [`file`]. The semantics are promtool's
//! (2.42): each test starts from an empty store; all rules are evaluated
//! at 0, `evaluation_interval`, ... up to the test's largest `eval_time`,
//! with input samples loaded up to each step; the alert state machine sees
//! `now` = the step; each rule writes `ALERTS` and `ALERTS_FOR_STATE`
//! (with staleness markers when an alert leaves a state) so expressions
//! can query them; an alert test at `t` sees the last step at or before
//! `t`; expression tests run at their `eval_time` over what was loaded.
//! A rule with a `check` runs its real plugin in the sandbox.
//!
//! Where it departs from promtool 2.42: an expected alert may be
//! `pending` (promtool lists firing alerts only; pending ones are compared
//! when an expected alert is pending or `check_pending = true`); NaN
//! matches NaN; a test's `interval` defaults to `evaluation_interval`
//! (promtool's is zero, which loads every value at time 0); and an
//! `alertname` that names no rule is an input error rather than a rule
//! with no alerts.
//!
//! `vigil test` exits 0 when every test passes, 1 when one fails, and 2
//! when a file cannot be used (each problem with file:line:col).

pub mod file;
pub mod notation;
pub mod report;
pub mod run;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use file::{TestFile, load, parse};
pub use run::{Failure, Step, StepAlert, Suite, TestReport};

/// Exit code: every test passed.
pub const EXIT_PASS: u8 = 0;
/// Exit code: a test failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit code: a file could not be read, decoded, or its rules compiled.
pub const EXIT_INVALID: u8 = 2;

/// Runs test files, writing reports to `out` and input errors to `err`;
/// returns the exit code. `plugin_dir` overrides every file's.
pub fn run_files(
    files: &[PathBuf],
    plugin_dir: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let (mut invalid, mut failed, mut tests) = (0usize, 0usize, 0usize);
    for path in files {
        let suite = load(path, plugin_dir).and_then(Suite::prepare);
        let suite = match suite {
            Ok(s) => s,
            Err(errors) => {
                invalid += 1;
                let _ = writeln!(err, "{errors}");
                let _ = writeln!(err, "INVALID {}: {} error(s)", path.display(), errors.len());
                continue;
            }
        };
        let reports = suite.run();
        tests += reports.len();
        failed += reports.iter().filter(|r| !r.passed()).count();
        let _ = write!(out, "{}", report::render(suite.file(), &reports));
    }
    if files.len() > 1 {
        let _ = writeln!(
            out,
            "{} file(s), {tests} test(s): {} passed, {failed} failed, {invalid} invalid file(s)",
            files.len(),
            tests - failed,
        );
    }
    if invalid > 0 {
        EXIT_INVALID
    } else if failed > 0 {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}
