//! Tests of the host's binding of the template language: `Labels` as
//! `$labels`, the alert context, `$score`, serde. The language itself is
//! tested in the `vigil-template` crate (`alert_tests.rs` there).

use super::*;

fn labels() -> Labels {
    Labels::from_pairs([
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
    let ext = Labels::from_pairs([("cluster", "eu-1")]);
    let ctx = TemplateContext {
        score: f64::NAN,
        labels: &l,
        value,
        external_labels: &ext,
        external_url: "http://vigil.example.com:9090/vigil",
    };
    match Template::parse(src) {
        Ok(t) => t.render(&ctx),
        Err(e) => panic!("parse of {src:?} failed: {e}"),
    }
}

fn render(src: &str) -> String {
    render_with(src, 0.0537)
}

#[test]
fn literal_text_passes_through() {
    assert_eq!(render(""), "");
    assert_eq!(render("plain text { } }}"), "plain text { } }}");
    assert!(Template::parse("plain").is_ok_and(|t| t.is_literal()));
    assert!(Template::parse("{{ $value }}").is_ok_and(|t| !t.is_literal()));
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
fn deserialize_parses() {
    let ok: Result<Template, _> = serde_json::from_str("\"{{ $value | humanize }}\"");
    assert!(ok.is_ok());
    let bad: Result<Template, _> = serde_json::from_str("\"{{ humanise $value }}\"");
    let msg = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("unknown function `humanise` at offset 3"),
        "{msg}"
    );
}

#[test]
fn score_is_the_checks_score() {
    let l = labels();
    let ext = Labels::default();
    let ctx = TemplateContext {
        score: 2.5,
        labels: &l,
        value: 1.0,
        external_labels: &ext,
        external_url: "",
    };
    let t = Template::parse("{{ $score }} vs {{ $value }}").unwrap();
    assert_eq!(t.render(&ctx), "2.5 vs 1");
}
