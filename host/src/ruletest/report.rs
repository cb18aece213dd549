//! What `vigil test` prints: per file a verdict, and per failed check the
//! expected and the observed alerts or samples as one list marked like a
//! diff (`-` expected only, `+` got only, blank: both).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::file::{ExpAlert, TestFile};
use super::run::{Failure, TestReport, same_value};
use crate::config::format_duration;

/// The report of one file.
pub fn render(file: &TestFile, reports: &[TestReport]) -> String {
    let mut out = String::new();
    let failed = reports.iter().filter(|r| !r.passed()).count();
    let verdict = if failed == 0 { "PASS" } else { "FAIL" };
    let _ = writeln!(
        out,
        "{verdict} {}: {} test(s), {} failed",
        file.path.display(),
        reports.len(),
        failed
    );
    for r in reports.iter().filter(|r| !r.passed()) {
        let _ = writeln!(
            out,
            "  test {:?} ({}:{}):",
            r.name,
            file.path.display(),
            r.location.line
        );
        for f in &r.failures {
            failure(&mut out, f);
        }
    }
    out
}

fn failure(out: &mut String, f: &Failure) {
    match f {
        Failure::Rule { rule, at_ms, error } => {
            let _ = writeln!(
                out,
                "    rule {rule} at {}: {error} (the test stops here)",
                time(*at_ms)
            );
        }
        Failure::Alerts { test, got } => {
            let which = if test.check_pending {
                "pending and firing alerts"
            } else {
                "firing alerts"
            };
            let _ = writeln!(
                out,
                "    alert_rule_test (line {}): {} at {}, {which}: expected {}, got {}",
                test.location.line,
                test.alertname,
                time(test.eval_time_ms),
                test.exp_alerts.len(),
                got.len()
            );
            diff(
                out,
                &test.exp_alerts,
                got,
                |a, b| a == b,
                |a| a.labels.to_string(),
                alert_line,
            );
        }
        Failure::Expr { test, got } => {
            let _ = writeln!(
                out,
                "    promql_expr_test (line {}): {} at {}",
                test.location.line,
                test.expr,
                time(test.eval_time_ms)
            );
            match got {
                Err(e) => {
                    let _ = writeln!(out, "        error: {e}");
                }
                Ok(got) => {
                    let _ = writeln!(
                        out,
                        "        expected {} sample(s), got {}",
                        test.exp_samples.len(),
                        got.len()
                    );
                    diff(
                        out,
                        &test.exp_samples,
                        got,
                        |a, b| a.0 == b.0 && same_value(a.1, b.1),
                        |s| s.0.to_string(),
                        |s| format!("{} {}", s.0, value(s.1)),
                    );
                }
            }
        }
    }
}

/// Both lists merged, ordered by `key` (the labels): items in both
/// unmarked, the others marked `-` (expected only) or `+` (got only), so a
/// changed value, state or annotation shows as a `-` line above a `+` line.
fn diff<T>(
    out: &mut String,
    expected: &[T],
    got: &[T],
    eq: impl Fn(&T, &T) -> bool,
    key: impl Fn(&T) -> String,
    line: impl Fn(&T) -> String,
) {
    let mut used = vec![false; got.len()];
    let mut rows: Vec<(String, u8, String)> = Vec::new();
    for e in expected {
        match (0..got.len()).find(|&i| !used[i] && eq(e, &got[i])) {
            Some(i) => {
                used[i] = true;
                rows.push((key(e), b' ', line(e)));
            }
            None => rows.push((key(e), b'-', line(e))),
        }
    }
    for (g, _) in got.iter().zip(&used).filter(|(_, u)| !**u) {
        rows.push((key(g), b'+', line(g)));
    }
    // Both, then expected, then got (ASCII would put `+` before `-`).
    let rank = |m: u8| match m {
        b' ' => 0,
        b'-' => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(rank(a.1).cmp(&rank(b.1))));
    for (_, mark, text) in rows {
        let _ = writeln!(out, "        {} {text}", mark as char);
    }
    let _ = writeln!(out, "        (- expected only, + got only)");
}

fn alert_line(a: &ExpAlert) -> String {
    format!(
        "{:<7} {} annotations {}",
        a.state.to_string(),
        a.labels,
        annotations(&a.annotations)
    )
}

fn annotations(map: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Prometheus' spelling of special values.
fn value(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

fn time(ms: i64) -> String {
    format_duration(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}
