//! `vigil test` against Prometheus 2.42's `promtool test rules`.
//!
//! Every scenario in `tests/ruletest/*.toml` runs through the real `vigil
//! test` and must pass its own expectations. Then, for each scenario
//! (all of them use Prometheus-style rules), the test writes promtool's
//! YAML into a temporary directory (a rule file, and test files with the
//! same input series in the same notation) and checks agreement in two
//! ways:
//!
//! 1. The scenario's own expectations, converted (firing alerts with labels
//!    and annotations, expression results), must pass in promtool too.
//!    Pending expectations have no promtool form and are covered by 2.
//! 2. Step by step: Vigil's library runs the scenario and records the
//!    active alerts after every evaluation step. For every step the test
//!    generates, with Vigil's answers as the expectations, a promtool
//!    `promql_expr_test` on `ALERTS` (which alerts are pending and which
//!    firing), one on `ALERTS_FOR_STATE` (since when each is active), and
//!    an `alert_rule_test` per rule (the firing alerts' labels and rendered
//!    annotations). promtool passes them only if Prometheus has the same
//!    alerts in the same states at every step; on failure its output lists
//!    per step `exp` (Vigil) and `got` (Prometheus). The same generated
//!    tests, appended to the scenario, must also pass in `vigil test`,
//!    which checks that the `ALERTS` series Vigil writes match its alerts.
//!
//! Without `promtool` (Debian package `prometheus`, which `cargo xtask
//! test` installs) the comparison says SKIPPED and passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use vigil::alert::AlertState;
use vigil::ruletest::{Suite, TestFile, TestReport};
use vigil::store::labels::Labels;
use vigil_tests::{TempDir, install_plugins, vigil_bin};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ruletest")
}

fn scenarios(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// `promtool` from `$VIGIL_PROMTOOL` or the `PATH`, if it runs.
fn promtool() -> Option<PathBuf> {
    let bin = std::env::var_os("VIGIL_PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    let out = Command::new(&bin).arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    println!("promtool: {}", text.lines().next().unwrap_or(""));
    out.status.success().then_some(bin)
}

fn vigil_test(args: &[&Path]) -> (i32, String) {
    let out = Command::new(vigil_bin())
        .arg("test")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run vigil test");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn scenarios_pass_in_vigil_test() {
    let files = scenarios(&scenario_dir());
    assert!(
        files.len() >= 6,
        "scenarios missing in {}",
        scenario_dir().display()
    );
    let args: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (code, out) = vigil_test(&args);
    println!("{out}");
    assert_eq!(code, 0, "vigil test failed:\n{out}");
}

#[test]
fn a_scenario_with_a_check_plugin_runs_the_real_plugin() {
    let dir = TempDir::new("ruletest-checks");
    let plugins = dir.path().join("plugins");
    install_plugins(&plugins, &["check-threshold"]);
    let file = scenario_dir().join("checks/threshold.toml");
    let out = Command::new(vigil_bin())
        .arg("test")
        .arg(&file)
        .arg("--plugin-dir")
        .arg(&plugins)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run vigil test");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Without the plugin the file is invalid (exit 2), with the position.
    let out = Command::new(vigil_bin())
        .arg("test")
        .arg(&file)
        .arg("--plugin-dir")
        .arg(dir.path().join("empty"))
        .output()
        .expect("run vigil test");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("threshold.toml:") && text.contains("no check plugin named \"threshold\""),
        "{text}"
    );
}

#[test]
fn failures_exit_1_with_a_diff_and_bad_files_exit_2() {
    let dir = TempDir::new("ruletest-fail");
    let good = scenario_dir().join("for.toml");
    let text = std::fs::read_to_string(&good).expect("read for.toml");
    // Expect job b firing where Vigil has it pending.
    let wrong = text.replacen("state = \"pending\"", "state = \"firing\"", 1);
    assert_ne!(wrong, text, "for.toml has no pending expectation to change");
    let wrong_file = dir.path().join("wrong.toml");
    std::fs::write(&wrong_file, wrong).expect("write");
    let (code, out) = vigil_test(&[&wrong_file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL") && out.contains("- firing") && out.contains("+ pending"),
        "{out}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rules]]\nname = \"A\"\nquery = \"up == 0\"\n\n[[tests]]\ninterval = \"1m\"\ninput_series = [{ series = 'up', values = \"1 0 0x\" }]\n",
    )
    .expect("write");
    let (code, out) = vigil_test(&[&bad]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bad.toml:7:"), "no position in:\n{out}");
}

#[test]
fn vigil_agrees_with_promtool_at_every_step() {
    let Some(promtool) = promtool() else {
        println!(
            "SKIPPED: promtool not found; install Debian's `prometheus` package (cargo xtask test does) to compare with Prometheus 2.42"
        );
        return;
    };
    let mut problems = Vec::new();
    for path in scenarios(&scenario_dir()) {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let file = vigil::ruletest::load(&path, None)
            .unwrap_or_else(|e| panic!("{name}: invalid scenario:\n{e}"));
        assert!(
            file.rules.iter().all(|r| r.check.is_none()),
            "{name}: a scenario compared with promtool must not use check plugins"
        );
        let suite = Suite::prepare(file.clone()).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        let reports = suite.run();
        let dir = TempDir::new("promtool");
        std::fs::write(dir.path().join("rules.yml"), rules_yaml(&file)).expect("write rules");

        // 1. The scenario's own expectations.
        let own = dir.path().join("own.yml");
        std::fs::write(&own, own_tests_yaml(&file)).expect("write");
        if let Err(out) = run_promtool(&promtool, &own) {
            problems.push(format!(
                "{name}: promtool fails the scenario's own expectations:\n{out}"
            ));
        }

        // 2. Vigil's alerts at every step.
        let steps = dir.path().join("steps.yml");
        std::fs::write(&steps, step_tests_yaml(&file, &reports, false)).expect("write");
        // A control: the same tests claiming no alert at any step must
        // fail, or the comparison would be vacuous.
        let control = dir.path().join("control.yml");
        std::fs::write(&control, step_tests_yaml(&file, &reports, true)).expect("write");
        if run_promtool(&promtool, &control).is_ok() {
            problems.push(format!(
                "{name}: promtool passed the control that expects no alerts"
            ));
        }
        let n_steps: usize = reports.iter().map(|r| r.steps.len()).sum();
        match run_promtool(&promtool, &steps) {
            Ok(()) => println!("{name}: promtool agrees with vigil at all {n_steps} steps"),
            Err(out) => problems.push(format!(
                "{name}: Prometheus disagrees with Vigil (exp = Vigil, got = Prometheus):\n{out}"
            )),
        }
        let toml = dir.path().join(&name);
        let text = std::fs::read_to_string(&path).expect("read scenario")
            + &step_tests_toml(&file, &reports);
        std::fs::write(&toml, text).expect("write");
        let (code, out) = vigil_test(&[&toml]);
        if code != 0 {
            problems.push(format!(
                "{name}: vigil test fails its own step expectations:\n{out}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

fn run_promtool(promtool: &Path, file: &Path) -> Result<(), String> {
    let out = Command::new(promtool)
        .args(["test", "rules"])
        .arg(file.file_name().expect("file name"))
        .current_dir(file.parent().expect("dir"))
        .output()
        .expect("run promtool");
    if out.status.success() {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

/// A duration promtool reads exactly.
fn ms(d: i64) -> String {
    format!("{d}ms")
}

/// The rules as one promtool rule group. JSON is YAML, and JSON strings
/// keep every character of a query or template.
fn rules_yaml(file: &TestFile) -> String {
    let rules: Vec<Value> = file
        .rules
        .iter()
        .map(|r| {
            json!({
                "alert": r.name,
                "expr": r.query,
                "for": ms(r.for_.as_millis() as i64),
                "keep_firing_for": ms(r.keep_firing_for.as_millis() as i64),
                "labels": r.labels,
                "annotations": r.annotations,
            })
        })
        .collect();
    json!({ "groups": [{ "name": "vigil", "rules": rules }] }).to_string()
}

/// One promtool test group with the scenario test's inputs and `tests`.
fn test_group(file: &TestFile, test: &vigil::ruletest::file::TestCase, body: Value) -> Value {
    let external: BTreeMap<&str, &str> = file.external_labels.iter().collect();
    let mut group = json!({
        "name": test.name,
        "interval": ms(test.interval_ms),
        "input_series": test.input_series.iter().map(|s| json!({
            "series": s.series,
            "values": s.values,
        })).collect::<Vec<_>>(),
        "external_labels": external,
        "external_url": file.external_url,
    });
    if let (Some(g), Some(b)) = (group.as_object_mut(), body.as_object()) {
        g.extend(b.clone());
    }
    group
}

fn test_file(file: &TestFile, groups: Vec<Value>) -> String {
    json!({
        "rule_files": ["rules.yml"],
        "evaluation_interval": ms(file.evaluation_interval_ms),
        "tests": groups,
    })
    .to_string()
}

fn exp_alert(labels: &Labels, annotations: &BTreeMap<String, String>) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().filter(|(k, _)| *k != "alertname").collect();
    json!({ "exp_labels": labels, "exp_annotations": annotations })
}

fn own_tests_yaml(file: &TestFile) -> String {
    let groups = file
        .tests
        .iter()
        .map(|t| {
            let alerts: Vec<Value> = t
                .alert_tests
                .iter()
                .map(|a| {
                    let firing: Vec<Value> = a
                        .exp_alerts
                        .iter()
                        .filter(|e| e.state == AlertState::Firing)
                        .map(|e| exp_alert(&e.labels, &e.annotations))
                        .collect();
                    json!({ "eval_time": ms(a.eval_time_ms), "alertname": a.alertname, "exp_alerts": firing })
                })
                .collect();
            let exprs: Vec<Value> = t
                .expr_tests
                .iter()
                .map(|x| {
                    let samples: Vec<Value> = x
                        .exp_samples
                        .iter()
                        .map(|(l, v)| json!({ "labels": l.to_string(), "value": v }))
                        .collect();
                    json!({ "expr": x.expr, "eval_time": ms(x.eval_time_ms), "exp_samples": samples })
                })
                .collect();
            test_group(
                file,
                t,
                json!({ "alert_rule_test": alerts, "promql_expr_test": exprs }),
            )
        })
        .collect();
    test_file(file, groups)
}

/// Per step: `ALERTS` and `ALERTS_FOR_STATE` as Vigil wrote them, and each
/// rule's firing alerts, as promtool tests.
/// With `control`, every expectation is "no alerts".
fn step_tests_yaml(file: &TestFile, reports: &[TestReport], control: bool) -> String {
    let groups = file
        .tests
        .iter()
        .zip(reports)
        .map(|(t, r)| {
            let mut alerts = Vec::new();
            let mut exprs = Vec::new();
            for step in &r.steps {
                let (states, since) = alert_series(step);
                for (expr, samples) in [("ALERTS", states), ("ALERTS_FOR_STATE", since)] {
                    let samples: Vec<Value> = samples
                        .iter()
                        .filter(|_| !control)
                        .map(|(l, v)| json!({ "labels": l, "value": v }))
                        .collect();
                    exprs.push(json!({ "expr": expr, "eval_time": ms(step.at_ms), "exp_samples": samples }));
                }
                for rule in &file.rules {
                    let firing: Vec<Value> = step
                        .alerts
                        .iter()
                        .filter(|a| a.rule == rule.name && a.state == AlertState::Firing)
                        .filter(|_| !control)
                        .map(|a| exp_alert(&a.labels, &a.annotations))
                        .collect();
                    alerts.push(json!({ "eval_time": ms(step.at_ms), "alertname": rule.name, "exp_alerts": firing }));
                }
            }
            test_group(
                file,
                t,
                json!({ "alert_rule_test": alerts, "promql_expr_test": exprs }),
            )
        })
        .collect();
    test_file(file, groups)
}

/// Samples as series text and value.
type Samples = Vec<(String, f64)>;

/// The `ALERTS` and `ALERTS_FOR_STATE` samples of one step.
fn alert_series(step: &vigil::ruletest::Step) -> (Samples, Samples) {
    let mut states = Vec::new();
    let mut since = Vec::new();
    for a in &step.alerts {
        let mut l = a.labels.clone();
        l.set("__name__", "ALERTS");
        l.set("alertstate", &a.state.to_string());
        states.push((l.to_string(), 1.0));
        let mut l = a.labels.clone();
        l.set("__name__", "ALERTS_FOR_STATE");
        since.push((l.to_string(), a.active_at_ms.div_euclid(1000) as f64));
    }
    (states, since)
}

/// The same per-step checks as `vigil test` TOML, to append to the
/// scenario: `[[tests]]` repeating each test's inputs.
fn step_tests_toml(file: &TestFile, reports: &[TestReport]) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::new();
    for (t, r) in file.tests.iter().zip(reports) {
        out.push_str(&format!(
            "\n[[tests]]\nname = {}\ninterval = \"{}\"\ninput_series = [\n",
            q(&format!("{} (every step)", t.name)),
            ms(t.interval_ms)
        ));
        for s in &t.input_series {
            out.push_str(&format!(
                "  {{ series = {}, values = {} }},\n",
                q(&s.series),
                q(&s.values)
            ));
        }
        out.push_str("]\n");
        for step in &r.steps {
            let (states, since) = alert_series(step);
            for (expr, samples) in [("ALERTS", states), ("ALERTS_FOR_STATE", since)] {
                out.push_str(&format!(
                    "\n[[tests.promql_expr_test]]\nexpr = \"{expr}\"\neval_time = \"{}\"\nexp_samples = [\n",
                    ms(step.at_ms)
                ));
                for (l, v) in samples {
                    out.push_str(&format!("  {{ labels = {}, value = {v:?} }},\n", q(&l)));
                }
                out.push_str("]\n");
            }
            for rule in &file.rules {
                out.push_str(&format!(
                    "\n[[tests.alert_rule_test]]\neval_time = \"{}\"\nalertname = {}\ncheck_pending = true\nexp_alerts = [\n",
                    ms(step.at_ms),
                    q(&rule.name)
                ));
                for a in step.alerts.iter().filter(|a| a.rule == rule.name) {
                    let labels: Vec<String> = a
                        .labels
                        .iter()
                        .filter(|(k, _)| *k != "alertname")
                        .map(|(k, v)| format!("{k} = {}", q(v)))
                        .collect();
                    let annotations: Vec<String> = a
                        .annotations
                        .iter()
                        .map(|(k, v)| format!("{k} = {}", q(v)))
                        .collect();
                    out.push_str(&format!(
                        "  {{ state = \"{}\", exp_labels = {{ {} }}, exp_annotations = {{ {} }} }},\n",
                        a.state,
                        labels.join(", "),
                        annotations.join(", ")
                    ));
                }
                out.push_str("]\n");
            }
        }
    }
    out
}
