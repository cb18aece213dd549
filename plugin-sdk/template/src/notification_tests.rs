//! Notification templates over Alertmanager-shaped data. Expected outputs
//! are what Alertmanager 0.25 renders for the same template and data.

use std::collections::BTreeMap;

use super::*;

fn kv(pairs: &[(&str, &str)]) -> Value<'static> {
    Value::Kv(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn alert(status: &'static str, instance: &str, severity: &str) -> Value<'static> {
    Value::Struct(vec![
        ("Status", Value::from(status)),
        (
            "Labels",
            kv(&[
                ("alertname", "HighLatency"),
                ("instance", instance),
                ("severity", severity),
            ]),
        ),
        ("Annotations", kv(&[("summary", "p99 above 1s")])),
        ("StartsAt", Value::Time(Some(1_435_065_584_128))),
        (
            "EndsAt",
            Value::Time((status == "resolved").then_some(1_435_065_644_000)),
        ),
        ("GeneratorURL", Value::from("http://vigil/graph")),
        ("Fingerprint", Value::from("0123456789abcdef")),
        ("Value", Value::Float(1.5)),
    ])
}

fn data() -> Value<'static> {
    Value::Struct(vec![
        ("Receiver", Value::from("team-ml")),
        ("Status", Value::from("firing")),
        (
            "Alerts",
            Value::List(vec![
                alert("firing", "b:8002", "page"),
                alert("resolved", "a:8002", "ticket"),
                alert("firing", "c:8002", "page"),
            ]),
        ),
        ("GroupLabels", kv(&[("alertname", "HighLatency")])),
        (
            "CommonLabels",
            kv(&[("job", "triton"), ("alertname", "HighLatency")]),
        ),
        ("CommonAnnotations", kv(&[("summary", "p99 above 1s")])),
        ("ExternalURL", Value::from("http://vigil.example.com/vigil")),
    ])
}

fn render(src: &str) -> String {
    match Template::parse(src) {
        Ok(t) => t.render(&data()),
        Err(e) => panic!("parse of {src:?} failed: {e}"),
    }
}

#[test]
fn slack_like_title() {
    let title = "[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}";
    assert_eq!(render(title), "[FIRING:2] HighLatency");
}

#[test]
fn range_over_alerts_with_firing_and_resolved_counts() {
    assert_eq!(
        render(
            "{{ len .Alerts }} alerts, {{ len .Alerts.Firing }} firing, {{ len .Alerts.Resolved }} resolved\n\
             {{ range .Alerts.Firing }}- {{ .Labels.instance }} ({{ .Labels.severity }}): {{ .Annotations.summary }}\n{{ end }}\
             {{ range $i, $a := .Alerts.Resolved }}{{ $i }}: {{ $a.Labels.instance }} resolved at {{ $a.EndsAt }}\n{{ end }}"
        ),
        "3 alerts, 2 firing, 1 resolved\n\
         - b:8002 (page): p99 above 1s\n\
         - c:8002 (page): p99 above 1s\n\
         0: a:8002 resolved at 2015-06-23 13:20:44 +0000 UTC\n"
    );
    assert_eq!(
        render("{{ range .Alerts }}{{ .Status }}{{ if .EndsAt.IsZero }}!{{ end }} {{ end }}"),
        "firing! resolved firing! "
    );
    assert_eq!(
        render(
            "{{ range .Alerts.Resolved }}x{{ else }}none{{ end }}{{ with .Alerts.Firing }}{{ len . }}{{ end }}"
        ),
        "x2"
    );
}

#[test]
fn label_maps_like_alertmanager_kv() {
    // Values and Names follow SortedPairs: alertname first, then by name.
    assert_eq!(
        render("{{ join \", \" .CommonLabels.Values }}"),
        "HighLatency, triton"
    );
    assert_eq!(
        render("{{ .CommonLabels.Names | join \"/\" }}"),
        "alertname/job"
    );
    assert_eq!(
        render("{{ .CommonLabels }}"),
        "alertname=HighLatency, job=triton"
    );
    assert_eq!(
        render("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"),
        "alertname=HighLatency;job=triton;"
    );
    assert_eq!(
        render("{{ range $k, $v := .CommonLabels }}{{ $k }};{{ end }}"),
        "alertname;job;"
    );
    assert_eq!(render("{{ index .CommonLabels \"job\" }}"), "triton");
    assert_eq!(render("[{{ .CommonLabels.missing }}]"), "[]");
    assert_eq!(render("[{{ index .CommonLabels \"missing\" }}]"), "[]");
    assert_eq!(render("{{ .GroupLabels.alertname }}"), "HighLatency");
    assert_eq!(render("{{ (index .Alerts 2).Labels.instance }}"), "c:8002");
}

#[test]
fn alertmanager_functions() {
    assert_eq!(render("{{ \"  x y \" | trimSpace }}"), "x y");
    assert_eq!(
        render("{{ join \"+\" (stringSlice \"a\" \"b\" \"c\") }}"),
        "a+b+c"
    );
    assert_eq!(render("{{ .Receiver | toLower | title }}"), "Team-Ml");
    assert_eq!(render("{{ safeHtml \"<b>\" }}"), "<b>");
    assert_eq!(
        render("{{ reReplaceAll \":[0-9]+\" \"\" (index .Alerts 0).Labels.instance }}"),
        "b"
    );
    assert_eq!(
        render("{{ if match \"^team-\" .Receiver }}ok{{ end }}"),
        "ok"
    );
    assert_eq!(
        render("{{ externalURL }}|{{ pathPrefix }}"),
        "http://vigil.example.com/vigil|/vigil"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt | humanizeTimestamp }}"),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).StartsAt.Unix }}"),
        "1435065584"
    );
    assert_eq!(
        render("{{ (index .Alerts 0).Value | printf \"%.1f\" }}"),
        "1.5"
    );
}

#[test]
fn missing_keys_and_fields_like_go() {
    let map = Value::Map(BTreeMap::from([("a".to_string(), Value::Int(1))]));
    let t = Template::parse("{{ .a }}/{{ .b }}");
    assert_eq!(t.map(|t| t.render(&map)), Ok("1/<no value>".to_string()));
    assert!(render("{{ .Nope }}").contains("can't evaluate field Nope in type struct"));
    assert!(
        render("{{ (index .Alerts 0).StartsAt.Format }}").contains("can't evaluate field Format")
    );
    assert!(render("{{ index .Alerts 7 }}").contains("index out of range: 7"));
    assert!(render("{{ join \",\" .Status }}").contains("expected []string"));
}

#[test]
fn parse_errors_have_offsets() {
    let e = Template::parse("{{ .Status }} {{ $labels.job }}").err();
    assert_eq!(
        e.as_ref().map(|e| (e.offset, e.message.as_str())),
        Some((17, "undefined variable `$labels`"))
    );
    let e = Template::parse("[{{ .Status | toupper }}]").err();
    assert_eq!(
        e.map(|e| (e.offset, e.help)),
        Some((14, Some("did you mean `toUpper`?".to_string())))
    );
    let e = Template::parse("{{ range .Alerts }}{{ .Status }}").err();
    assert_eq!(
        e.map(|e| (e.offset, e.message)),
        Some((0, "unclosed `range`".to_string()))
    );
    let e = Template::parse("{{ join \",\" }}").err();
    assert!(e.is_some_and(|e| e.message.contains("wrong number of arguments for `join`")),);
}

#[test]
fn alert_and_notification_templates_are_different() {
    assert!(Template::parse_alert("{{ $labels.x }}").is_ok());
    assert!(Template::parse("{{ $labels.x }}").is_err());
    assert_ne!(
        Template::parse_alert("{{ .Value }}").ok(),
        Template::parse("{{ .Value }}").ok()
    );
}
