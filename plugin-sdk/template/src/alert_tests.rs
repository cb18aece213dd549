//! Alert template tests (moved from the host). Expected outputs are what Prometheus 2.42 renders for
//! the same template and data (its `template_test.go` cases where they
//! apply, Go's `fmt` otherwise).

use std::collections::BTreeMap;

use super::*;

type Labels = BTreeMap<String, String>;

fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn labels() -> Labels {
    from_pairs([
        ("__name__", "nv_inference_request_failure"),
        ("instance", "node1.example.com:8002"),
        ("model", "resnet50"),
        ("job", "triton"),
        ("tier-name", "gold"),
        ("bytes", "1048576"),
    ])
}

fn render_with(src: &str, value: f64) -> String {
    let l = labels();
    let ext = from_pairs([("cluster", "eu-1")]);
    let ctx = AlertContext {
        score: f64::NAN,
        labels: &l,
        value,
        external_labels: &ext,
        external_url: "http://vigil.example.com:9090/vigil",
    };
    match Template::parse_alert(src) {
        Ok(t) => t.render_alert(&ctx),
        Err(e) => panic!("parse of {src:?} failed: {e}"),
    }
}

fn render(src: &str) -> String {
    render_with(src, 0.0537)
}

fn parse_err(src: &str) -> TemplateError {
    match Template::parse_alert(src) {
        Ok(t) => panic!("{src:?} parsed as {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn literal_text_passes_through() {
    assert_eq!(render(""), "");
    assert_eq!(render("plain text { } }}"), "plain text { } }}");
    assert!(Template::parse_alert("plain").is_ok_and(|t| t.is_literal()));
    assert!(Template::parse_alert("{{ $value }}").is_ok_and(|t| !t.is_literal()));
}

#[test]
fn labels_and_value() {
    assert_eq!(render("{{ $labels.model }}"), "resnet50");
    assert_eq!(render("{{$labels.model}}"), "resnet50");
    assert_eq!(render("{{ .Labels.job }}"), "triton");
    assert_eq!(render("[{{ $labels.missing }}]"), "[]");
    assert_eq!(render("{{ index $labels \"tier-name\" }}"), "gold");
    assert_eq!(render("[{{ index $labels \"nope\" }}]"), "[]");
    assert_eq!(
        render("{{ $labels.__name__ }}"),
        "nv_inference_request_failure"
    );
    assert_eq!(render("{{ $value }}"), "0.0537");
    assert_eq!(render("{{ .Value }}"), "0.0537");
    assert_eq!(render_with("{{ $value }}", 1e6), "1e+06");
    assert_eq!(render_with("{{ $value }}", 100000.0), "100000");
    assert_eq!(render_with("{{ $value }}", 0.05), "0.05");
    assert_eq!(render_with("{{ $value }}", f64::NAN), "NaN");
    assert_eq!(render_with("{{ $value }}", f64::INFINITY), "+Inf");
    assert_eq!(render_with("{{ $value }}", -1.5), "-1.5");
    assert_eq!(
        render("{{ $externalURL }}"),
        "http://vigil.example.com:9090/vigil"
    );
    assert_eq!(
        render("{{ .ExternalURL }}"),
        "http://vigil.example.com:9090/vigil"
    );
    assert_eq!(render("{{ $externalLabels.cluster }}"), "eu-1");
    assert_eq!(render("{{ .ExternalLabels.cluster }}"), "eu-1");
    assert_eq!(render("{{ $.Labels.model }}"), "resnet50");
}

#[test]
fn design_doc_example() {
    assert_eq!(
        render("Error rate {{ $value | humanizePercentage }} on {{ $labels.model }}"),
        "Error rate 5.37% on resnet50"
    );
}

#[test]
fn pipes_and_calls() {
    assert_eq!(render_with("{{ $value | humanize }}", 1234567.0), "1.235M");
    assert_eq!(render_with("{{ humanize $value }}", 1234567.0), "1.235M");
    assert_eq!(render_with("{{ humanize $value }}", 0.000123), "123u");
    assert_eq!(render_with("{{ humanize 0 }}", 0.0), "0");
    assert_eq!(render_with("{{ $value | humanize1024 }}", 1048576.0), "1Mi");
    assert_eq!(render("{{ $labels.bytes | humanize1024 }}"), "1Mi");
    assert_eq!(
        render_with("{{ humanizeDuration $value }}", 93784.0),
        "1d 2h 3m 4s"
    );
    assert_eq!(
        render_with("{{ $value | humanizeDuration }}", 0.1234),
        "123.4ms"
    );
    assert_eq!(
        render_with("{{ humanizePercentage $value }}", 0.0537),
        "5.37%"
    );
    assert_eq!(
        render_with("{{ humanizeTimestamp $value }}", 1435065584.128),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(render("{{ $labels.model | toUpper }}"), "RESNET50");
    assert_eq!(render("{{ toLower \"ABC\" }}"), "abc");
    assert_eq!(render("{{ title \"hello world\" }}"), "Hello World");
    assert_eq!(
        render("{{ $labels.model | toUpper | toLower }}"),
        "resnet50"
    );
    assert_eq!(render("{{ (humanize 2048) }}"), "2.048k");
}

/// Prometheus' own test cases for these functions (range over a list is
/// written out one call per value here).
#[test]
fn prometheus_template_test_cases() {
    let each = |f: &str, vals: &[f64]| -> String {
        vals.iter()
            .map(|v| render_with(&format!("{{{{ {f} $value }}}}:"), *v))
            .collect()
    };
    assert_eq!(
        each("humanize", &[0.0, 1.0, 1234567.0, 0.12]),
        "0:1:1.235M:120m:"
    );
    assert_eq!(
        each("humanize1024", &[0.0, 1.0, 1048576.0, 0.12]),
        "0:1:1Mi:0.12:"
    );
    assert_eq!(
        each(
            "humanizeDuration",
            &[
                0.0,
                1.0,
                60.0,
                3600.0,
                86400.0,
                86400.0 + 3600.0,
                -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
                899.99
            ]
        ),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"
    );
    assert_eq!(
        each(
            "humanizeDuration",
            &[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345]
        ),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"
    );
    assert_eq!(
        each("humanizePercentage", &[0.0, 0.1234567, 1.23456, 12.3456]),
        "0%:12.35%:123.5%:1235%:"
    );
}

#[test]
fn printf() {
    assert_eq!(render_with("{{ printf \"%.2f\" $value }}", 2.675), "2.67");
    assert_eq!(
        render_with("{{ printf \"%.1f%%\" $value }}", 99.95),
        "100.0%"
    );
    assert_eq!(render_with("{{ printf \"%g\" $value }}", 1e6), "1e+06");
    assert_eq!(
        render_with("{{ printf \"%.3g\" $value }}", 1234.5),
        "1.23e+03"
    );
    assert_eq!(
        render("{{ printf \"%s on %s\" $labels.model $labels.job }}"),
        "resnet50 on triton"
    );
    assert_eq!(render("{{ printf \"%d items\" 3 }}"), "3 items");
    assert_eq!(render("{{ printf \"%v|%v\" $value 7 }}"), "0.0537|7");
    assert_eq!(render("{{ $value | printf \"%.3f\" }}"), "0.054");
    assert_eq!(render("{{ printf \"%d\" $value }}"), "%!d(float64=0.0537)");
    assert_eq!(
        render("{{ printf \"%5.1f|%-6s|\" 3.14159 \"ab\" }}"),
        "  3.1|ab    |"
    );
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(render("a  {{- $labels.job -}}  b"), "atritonb");
    assert_eq!(render("a\n  {{- $labels.job }}  b"), "atriton  b");
    assert_eq!(render("a {{ $labels.job -}}\n\t b"), "a tritonb");
    assert_eq!(render("x{{/* a comment */}}y"), "xy");
    assert_eq!(render("x {{- /* a comment */ -}} y"), "xy");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(render("a {{-3}}"), "a -3");
}

#[test]
fn conditionals() {
    let t =
        "{{ if gt $value 0.05 }}high{{ else if gt $value 0.01 }}elevated{{ else }}normal{{ end }}";
    assert_eq!(render_with(t, 0.2), "high");
    assert_eq!(render_with(t, 0.02), "elevated");
    assert_eq!(render_with(t, 0.001), "normal");
    // An int literal compares with a float by value (Go would refuse).
    assert_eq!(render_with("{{ if ge $value 1 }}yes{{ end }}", 1.0), "yes");
    assert_eq!(
        render_with("{{ if lt $value 1 }}yes{{ else }}no{{ end }}", f64::NAN),
        "no"
    );
    assert_eq!(
        render_with("{{ if ne $value 1.0 }}yes{{ end }}", f64::NAN),
        "yes"
    );
    assert_eq!(
        render("{{ if eq $labels.job \"triton\" \"tf\" }}ok{{ end }}"),
        "ok"
    );
    assert_eq!(
        render("{{ if $labels.missing }}set{{ else }}unset{{ end }}"),
        "unset"
    );
    assert_eq!(
        render("{{ if and $labels.job (not $labels.missing) }}y{{ end }}"),
        "y"
    );
    assert_eq!(render("{{ or $labels.missing \"default\" }}"), "default");
    assert_eq!(
        render("{{ with $labels.model }}model={{ . }}{{ end }}"),
        "model=resnet50"
    );
    assert_eq!(
        render("{{ with $labels.nope }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        render("{{ if match \"^res\" $labels.model }}cnn{{ end }}"),
        "cnn"
    );
}

#[test]
fn variables_and_range() {
    assert_eq!(
        render("{{ $m := $labels.model }}{{ $m }}/{{ $m | toUpper }}"),
        "resnet50/RESNET50"
    );
    assert_eq!(render("{{ $m := 1 }}{{ $m = 2 }}{{ $m }}"), "2");
    let l = from_pairs([("a", "1"), ("b", "2")]);
    let t = Template::parse_alert("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}");
    assert_eq!(
        t.map(|t| t.render_alert(&AlertContext::new(&l, 0.0))),
        Ok("a=1;b=2;".to_string())
    );
    let t = Template::parse_alert("{{ range $labels }}[{{ . }}]{{ else }}empty{{ end }}");
    assert_eq!(
        t.as_ref()
            .map(|t| t.render_alert(&AlertContext::new(&l, 0.0))),
        Ok("[1][2]".to_string())
    );
    let empty = Labels::default();
    assert_eq!(
        t.map(|t| t.render_alert(&AlertContext::new(&empty, 0.0))),
        Ok("empty".to_string())
    );
}

#[test]
fn prometheus_extras() {
    assert_eq!(
        render("{{ reReplaceAll \"(.*):(.*)\" \"$1\" $labels.instance }}"),
        "node1.example.com"
    );
    assert_eq!(
        render("{{ $labels.instance | stripPort }}"),
        "node1.example.com"
    );
    assert_eq!(render("{{ $labels.instance | stripDomain }}"), "node1:8002");
    assert_eq!(render("{{ pathPrefix }}"), "/vigil");
    assert_eq!(
        render("{{ externalURL }}"),
        "http://vigil.example.com:9090/vigil"
    );
    assert_eq!(
        render("{{ graphLink \"up == 0\" }}"),
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0"
    );
    assert_eq!(render("{{ len $labels }}"), "6");
    assert_eq!(render("{{ print 1 2 \"a\" 3 }}"), "1 2a3");
    assert_eq!(render("{{ \"<b>\" | html }}"), "&lt;b&gt;");
    assert_eq!(render("{{ urlquery \"a b\" }}"), "a+b");
    assert_eq!(render("{{ `raw \\n` }}"), "raw \\n");
    assert_eq!(render("{{ \"tab\\there\" }}"), "tab\there");
    assert_eq!(render("{{ $labels }}").len(), "map[__name__:nv_inference_request_failure bytes:1048576 instance:node1.example.com:8002 job:triton model:resnet50 tier-name:gold]".len());
}

#[test]
fn runtime_errors_become_the_prometheus_marker() {
    let out = render("{{ humanize $labels.model }}");
    assert_eq!(
        out,
        "<error expanding template: error calling humanize: strconv.ParseFloat: parsing \"resnet50\": invalid syntax at offset 3>"
    );
    assert!(render("{{ toUpper $value }}").starts_with("<error expanding template: error calling toUpper: wrong type for value; expected string; got float64"));
    assert!(render("{{ $labels.model.x }}").contains("can't evaluate field x in type string"));
    assert!(render("{{ .Nope }}").contains("can't evaluate field Nope"));
    assert!(render("{{ lt $labels.job 1 }}").contains("incompatible types for comparison"));
    assert!(
        render("{{ match (printf \"(\") \"x\" }}")
            .starts_with("<error expanding template: error calling match: error parsing regexp:")
    );
    assert_eq!(render("{{ match $labels.job \"x\" }}"), "false");
    let l = labels();
    let ok = Template::parse_alert("{{ humanize $labels.model }}")
        .map(|t| t.try_render_alert(&AlertContext::new(&l, 0.0)));
    assert!(matches!(ok, Ok(Err(TemplateError { offset: 3, .. }))));
}

#[test]
fn parse_errors_point_at_the_problem() {
    let e = parse_err("Error rate {{ humanise $value }}");
    assert_eq!(e.offset, 14);
    assert_eq!(
        e.to_string(),
        "unknown function `humanise` at offset 14 (did you mean `humanize`?)"
    );

    let e = parse_err("value {{ $value ");
    assert_eq!((e.offset, e.message.as_str()), (6, "unclosed action"));

    let e = parse_err("{{ $value | toupper }}");
    assert_eq!(e.offset, 12);
    assert_eq!(e.help.as_deref(), Some("did you mean `toUpper`?"));

    let e = parse_err("{{ $lables.job }}");
    assert_eq!(
        (e.offset, e.message.as_str()),
        (3, "undefined variable `$lables`")
    );

    let e = parse_err("{{ humanize }}");
    assert_eq!(e.offset, 3);
    assert!(
        e.message
            .contains("wrong number of arguments for `humanize`: want 1, got 0"),
        "{e}"
    );

    let e = parse_err("{{ $value | humanize 1 }}");
    assert!(
        e.message.contains("got 2 (including the piped value)"),
        "{e}"
    );

    let e = parse_err("{{ query \"up\" }}");
    assert!(e.message.contains("`query` is not supported"), "{e}");

    let e = parse_err("{{ if $value }}x");
    assert_eq!((e.offset, e.message.as_str()), (0, "unclosed `if`"));

    let e = parse_err("x{{ end }}");
    assert_eq!((e.offset, e.message.as_str()), (1, "unexpected {{ end }}"));

    let e = parse_err("{{ else }}");
    assert_eq!(e.offset, 0);

    let e = parse_err("{{ \"abc }}");
    assert_eq!(
        (e.offset, e.message.as_str()),
        (3, "unterminated quoted string")
    );

    let e = parse_err("{{ }}");
    assert_eq!(e.message, "missing value for command");

    let e = parse_err("{{ $value | }}");
    assert_eq!(e.message, "missing command after `|`");

    let e = parse_err("{{ $value 1 }}");
    assert_eq!(
        (e.offset, e.message.as_str()),
        (10, "can't give argument to non-function")
    );

    let e = parse_err("{{ match \"(\" $labels.job }}");
    assert_eq!(e.offset, 9);
    assert!(e.message.starts_with("invalid regular expression"), "{e}");

    let e = parse_err("{{ (humanize $value }}");
    assert_eq!(e.message, "unclosed left paren");

    let e = parse_err("{{ template \"x\" }}");
    assert!(e.message.contains("not supported"), "{e}");

    let e = parse_err("{{ printf \"%s\" humanize }}");
    assert_eq!(e.offset, 15);

    let e = parse_err("{{/* unclosed }}");
    assert_eq!(e.message, "unclosed comment");

    let e = parse_err("{{ 12ab }}");
    assert!(e.message.starts_with("bad number syntax"), "{e}");

    let e = parse_err("{{ $labels.tier-name }}");
    assert_eq!(e.offset, 15);
    assert_eq!(
        e.help.as_deref(),
        Some("a label name with `-` needs `index $labels \"name-with-dash\"`")
    );

    let e = parse_err("{{ # }}");
    assert_eq!(
        (e.offset, e.message.as_str()),
        (3, "unexpected `#` in action")
    );

    let deep = "{{ if 1 }}".repeat(100) + &"{{ end }}".repeat(100);
    assert_eq!(parse_err(&deep).message, "template nests too deeply");
}

#[test]
fn variables_are_scoped_to_their_block() {
    let e = parse_err("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}");
    assert_eq!(e.message, "undefined variable `$x`");
    assert_eq!(
        render("{{ if $x := $labels.job }}{{ $x }}{{ end }}"),
        "triton"
    );
}

#[test]
fn score_is_the_checks_score() {
    let l = labels();
    let ext = Labels::default();
    let ctx = AlertContext {
        score: 2.5,
        labels: &l,
        value: 1.0,
        external_labels: &ext,
        external_url: "",
    };
    let t = Template::parse_alert("{{ $score }} vs {{ $value }}");
    assert_eq!(t.map(|t| t.render_alert(&ctx)), Ok("2.5 vs 1".to_string()));
}
