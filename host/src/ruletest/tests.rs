use std::path::{Path, PathBuf};

use super::*;
use crate::alert::AlertState;

fn suite(text: &str) -> Suite {
    let file = parse(Path::new("t.toml"), text, None).unwrap_or_else(|e| panic!("{e}"));
    Suite::prepare(file).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(Path::new("t.toml"), text, None).and_then(Suite::prepare) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// Failure descriptions of the only test, rendered.
fn failures(text: &str) -> Vec<String> {
    let s = suite(text);
    let reports = s.run();
    assert_eq!(reports.len(), 1);
    if reports[0].passed() {
        return Vec::new();
    }
    vec![report::render(s.file(), &reports)]
}

const DOWN: &str = r#"
[[rules]]
name = "Down"
query = "up == 0"
for = "2m"
annotations = { summary = "{{ $labels.job }} {{ $value }}" }
"#;

fn with_down(test: &str) -> String {
    format!("{DOWN}\n{test}")
}

#[test]
fn a_rule_without_a_check_fires_for_every_series_it_returns() {
    let s = suite(&with_down(
        r#"
[[tests]]
interval = "1m"
input_series = [
  { series = 'up{job="a"}', values = "0 0 0 1" },
  { series = 'up{job="b"}', values = "1 1 0 0" },
]
[[tests.alert_rule_test]]
eval_time = "3m"
alertname = "Down"
"#,
    ));
    let r = &s.run()[0];
    let states: Vec<Vec<(String, AlertState)>> = r
        .steps
        .iter()
        .map(|st| {
            st.alerts
                .iter()
                .map(|a| (a.labels.get("job").unwrap_or("").to_string(), a.state))
                .collect()
        })
        .collect();
    let p = AlertState::Pending;
    let f = AlertState::Firing;
    assert_eq!(
        states,
        vec![
            vec![("a".into(), p)],
            vec![("a".into(), p)],
            vec![("a".into(), f), ("b".into(), p)],
            vec![("b".into(), p)],
        ]
    );
    // The rule needs no plugin directory: nothing was loaded.
    assert!(r.passed(), "{:?}", r.failures);
}

#[test]
fn a_rule_without_a_check_gets_a_window_of_one_step() {
    let cfg = crate::config::parse(
        Path::new("v.toml"),
        "[evaluation]\ninterval = \"30s\"\n[[rules]]\nname = \"A\"\nquery = \"up\"\n[[rules]]\nname = \"B\"\nquery = \"up\"\ncheck = \"threshold\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.rules[0].check, None);
    assert_eq!(cfg.rules[0].window.as_secs(), 30);
    assert_eq!(cfg.rules[1].check.as_deref(), Some("threshold"));
    assert_eq!(cfg.rules[1].window.as_secs(), 300);
}

#[test]
fn pending_alerts_are_compared_only_when_asked() {
    // At 1m the alert is pending: "nothing firing" passes, as in promtool.
    let base = with_down(
        r#"
[[tests]]
interval = "1m"
input_series = [{ series = 'up{job="a"}', values = "0 0 0" }]
[[tests.alert_rule_test]]
eval_time = "1m"
alertname = "Down"
"#,
    );
    assert!(failures(&base).is_empty());
    let strict = base.clone() + "check_pending = true\n";
    let out = failures(&strict);
    assert!(
        out[0].contains(r#"+ pending {alertname="Down", job="a"} annotations {summary="a 0"}"#),
        "{out:?}"
    );
    let expected = base
        + r#"exp_alerts = [{ exp_labels = { job = "a" }, exp_annotations = { summary = "a 0" }, state = "pending" }]"#;
    assert!(failures(&expected).is_empty());
}

#[test]
fn an_alert_test_between_steps_sees_the_step_before() {
    let text = with_down(
        r#"
[[tests]]
interval = "1m"
input_series = [{ series = 'up{job="a"}', values = "0 0 0 0" }]
[[tests.alert_rule_test]]
eval_time = "1m59s"
alertname = "Down"
exp_alerts = []
[[tests.alert_rule_test]]
eval_time = "2m"
alertname = "Down"
exp_alerts = [{ exp_labels = { job = "a" }, exp_annotations = { summary = "a 0" } }]
"#,
    );
    assert_eq!(failures(&text), Vec::<String>::new());
}

#[test]
fn alerts_series_are_written_with_staleness_markers() {
    let text = with_down(
        r#"
[[tests]]
interval = "1m"
input_series = [{ series = 'up{job="a"}', values = "0 0 0 0" }]
# Pending at 0 and 1m, firing from 2m: the pending series is stale at 2m.
[[tests.promql_expr_test]]
expr = 'ALERTS'
eval_time = "3m"
exp_samples = [{ labels = 'ALERTS{alertname="Down", alertstate="firing", job="a"}', value = 1 }]
[[tests.promql_expr_test]]
expr = 'count_over_time(ALERTS{alertstate="pending"}[10m])'
eval_time = "3m"
exp_samples = [{ labels = '{alertname="Down", alertstate="pending", job="a"}', value = 2 }]
[[tests.promql_expr_test]]
expr = 'ALERTS_FOR_STATE'
eval_time = "3m"
exp_samples = [{ labels = 'ALERTS_FOR_STATE{alertname="Down", job="a"}', value = 0 }]
"#,
    );
    assert_eq!(failures(&text), Vec::<String>::new());
}

#[test]
fn samples_after_the_last_step_are_not_loaded() {
    // promtool loads input up to each evaluation step; with steps at 0, 2m
    // and 4m, the sample at 5m is never loaded.
    let text = r#"
evaluation_interval = "2m"
[[rules]]
name = "X"
query = "x > 100"
[[tests]]
interval = "1m"
input_series = [{ series = 'x', values = "1 2 3 4 5 6" }]
[[tests.promql_expr_test]]
expr = "x"
eval_time = "5m"
exp_samples = [{ labels = "x", value = 5 }]
[[tests.promql_expr_test]]
expr = "scalar(x) * 2"
eval_time = "4m"
exp_samples = [{ value = 10 }]
"#;
    assert_eq!(failures(text), Vec::<String>::new());
}

#[test]
fn a_rule_error_stops_the_test() {
    // Both series lose their name and become the same alert.
    let text = r#"
[[rules]]
name = "Dup"
query = '{__name__=~"a|b"}'
[[tests]]
interval = "1m"
input_series = [{ series = 'a{job="x"}', values = "1 1" }, { series = 'b{job="x"}', values = "_ 1" }]
[[tests.alert_rule_test]]
eval_time = "1m"
alertname = "Dup"
exp_alerts = [{ exp_labels = { job = "x" } }]
"#;
    let s = suite(text);
    let r = &s.run()[0];
    assert_eq!(r.steps.len(), 1, "the test stops at 1m");
    match &r.failures[..] {
        [Failure::Rule { rule, at_ms, error }] => {
            assert_eq!((rule.as_str(), *at_ms), ("Dup", 60_000));
            assert!(error.contains("same labelset"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn external_labels_and_url_reach_templates() {
    let text = r#"
external_labels = { region = "eu" }
external_url = "http://v.example/"
[[rules]]
name = "A"
query = "up"
annotations = { at = "{{ $externalLabels.region }} {{ $externalURL }}" }
[[tests]]
interval = "1m"
input_series = [{ series = 'up', values = "1" }]
[[tests.alert_rule_test]]
eval_time = "0s"
alertname = "A"
exp_alerts = [{ exp_annotations = { at = "eu http://v.example" } }]
"#;
    assert_eq!(failures(text), Vec::<String>::new());
}

#[test]
fn expression_failures_show_a_diff() {
    let text = with_down(
        r#"
[[tests]]
interval = "1m"
input_series = [{ series = 'up{job="a"}', values = "1" }, { series = 'up{job="b"}', values = "0" }]
[[tests.promql_expr_test]]
expr = "up"
eval_time = "0s"
exp_samples = [{ labels = 'up{job="a"}', value = 1 }, { labels = 'up{job="b"}', value = 1 }]
"#,
    );
    let out = failures(&text).join("");
    let a = out.find(r#"  up{job="a"} 1"#).expect(&out);
    let minus = out.find(r#"- up{job="b"} 1"#).expect(&out);
    let plus = out.find(r#"+ up{job="b"} 0"#).expect(&out);
    assert!(a < minus && minus < plus, "{out}");
    assert!(
        out.contains("promql_expr_test (line 12): up at 0s"),
        "{out}"
    );
}

#[test]
fn input_errors_point_into_the_file() {
    let e = errors(&with_down(
        r#"
[[tests]]
interval = "1m"
input_series = [{ series = 'up{job="a"}', values = "1 0 0x" }]
[[tests.alert_rule_test]]
eval_time = "5x"
alertname = "Dwn"
exp_alerts = [{ exp_label = {} }]
"#,
    ));
    let all = e.join("\n");
    // The bad item `0x`, at its column inside the string.
    assert!(
        all.contains("t.toml:11:57: `values`: invalid value \"0x\""),
        "{all}"
    );
    // That `alert_rule_test` did not decode; the error says why, and the
    // series' error above is still reported.
    assert!(
        all.contains(
            "t.toml:15:17: `exp_alerts[0]`: unknown field `exp_label`, expected one of `exp_labels`"
        ),
        "{all}"
    );
    let e = errors(&with_down(
        r#"
[[tests]]
interval = "0s"
[[tests.alert_rule_test]]
eval_time = "5x"
alertname = "Dwn"
[[tests.promql_expr_test]]
expr = "sum("
eval_time = "1m"
"#,
    ));
    let all = e.join("\n");
    assert!(
        all.contains("t.toml:10:12: `interval` must be more than zero"),
        "{all}"
    );
    assert!(
        all.contains("t.toml:12:13: `eval_time`: invalid duration"),
        "{all}"
    );
    assert!(
        all.contains("t.toml:13:13: no rule named `Dwn` (rules: Down)"),
        "{all}"
    );
    assert!(all.contains("t.toml:15:8: `expr`: invalid query"), "{all}");
}

#[test]
fn rules_are_validated_as_in_the_config() {
    let e = errors(
        "[[rules]]\nname = \"A\"\nquery = \"up ==\"\nfor = \"1x\"\n[[tests]]\ninterval = \"1m\"\n",
    );
    let all = e.join("\n");
    assert!(all.contains("t.toml:4:7: `for`: invalid duration"), "{all}");
    let e = errors("[[rules]]\nname = \"A\"\nquery = \"up ==\"\n[[tests]]\ninterval = \"1m\"\n");
    assert!(
        e.join("\n")
            .contains("t.toml:3:9: rule \"A\": invalid query"),
        "{e:?}"
    );
    let e = errors("[[rules]]\nname = \"A\"\nquery = \"up\"\ncheck = \"nope\"\n[[tests]]\n");
    assert!(
        e.join("\n")
            .contains("t.toml:4:9: no check plugin named \"nope\""),
        "{e:?}"
    );
    let e = errors("config = \"v.toml\"\n[[rules]]\nname = \"A\"\nquery = \"up\"\n[[tests]]\n");
    assert!(e.join("\n").contains("not both"), "{e:?}");
    let e = errors("evaluation_interval = \"1m\"\n");
    assert!(e.join("\n").contains("no rules under test"), "{e:?}");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("vigil-ruletest-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn rules_come_from_a_config_file_and_exit_codes_tell_the_outcome() {
    let dir = TempDir::new("config");
    std::fs::write(
        dir.0.join("vigil.toml"),
        "external_url = \"http://cfg.example\"\n[[rules]]\nname = \"Down\"\nquery = \"up == 0\"\nannotations = { u = \"{{ $externalURL }}\" }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let test = "config = \"vigil.toml\"\n[[tests]]\ninterval = \"1m\"\ninput_series = [{ series = 'up', values = \"0\" }]\n[[tests.alert_rule_test]]\neval_time = \"0s\"\nalertname = \"Down\"\n";
    let pass = dir.0.join("pass.toml");
    std::fs::write(
        &pass,
        format!("{test}exp_alerts = [{{ exp_annotations = {{ u = \"http://cfg.example\" }} }}]\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fail = dir.0.join("fail.toml");
    std::fs::write(&fail, format!("{test}exp_alerts = []\n")).unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "config = \"missing.toml\"\n[[tests]]\n")
        .unwrap_or_else(|e| panic!("{e}"));

    let run = |files: &[&PathBuf]| {
        let files: Vec<PathBuf> = files.iter().map(|p| (*p).clone()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_files(&files, None, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&err),
        )
    };
    let (code, out) = run(&[&pass]);
    assert_eq!(code, EXIT_PASS, "{out}");
    assert!(out.starts_with("PASS "), "{out}");
    let (code, out) = run(&[&pass, &fail]);
    assert_eq!(code, EXIT_FAIL, "{out}");
    assert!(
        out.contains("FAIL ") && out.contains("+ firing  {alertname=\"Down\"}"),
        "{out}"
    );
    let (code, out) = run(&[&pass, &fail, &bad]);
    assert_eq!(code, EXIT_INVALID, "{out}");
    assert!(
        out.contains("bad.toml:1:10: `config`:") && out.contains("missing.toml"),
        "{out}"
    );
}
