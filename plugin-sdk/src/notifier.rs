//! Notifiers: render a group of alerts into deliveries the host performs.
//!
//! A notifier never gets a socket: it returns [`Delivery`] values (HTTP
//! requests or e-mails) and the host sends them after checking them against
//! the receiver's configuration.
//!
//! Besides the contract, this module holds what the bundled notifiers share
//! (plugin crates cannot depend on each other), for any notifier to use:
//! template parameters checked at `configure` ([`Template`]) with built-in
//! defaults ([`DefaultTemplate`], [`render_or`], [`DEFAULT_SUBJECT`]) and
//! views of the template data ([`alert_values`], [`map_strings`]); the
//! checks of `url` and `headers` parameters ([`validate_url`],
//! [`validate_headers`], [`join_errors`]) and the headers sent
//! ([`merge_headers`]); alert severities and order ([`Severity`],
//! [`max_severity`], [`by_importance`]); text limits ([`truncate`]). Test
//! fixtures and golden files are in [`testing`](crate#testing-a-plugin).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use vigil_template::Value;

pub use vigil_plugin_sdk_bindings_notifier::{
    Alert, AlertStatus, Delivery, Email, HttpRequest, Notification, Pair, ParamDoc, PluginInfo,
    lookup,
};

mod http;
mod severity;
mod template;

pub use self::http::{merge_headers, validate_headers, validate_url};
pub use self::severity::{Severity, by_importance, max_severity};
pub use self::template::{
    DEFAULT_SUBJECT, DefaultTemplate, Template, alert_values, map_strings, render_or,
};

/// A notifier: the logic behind a `notifier` component.
///
/// Usually implemented by the [`notifier`](macro@crate::notifier) attribute
/// macro on a function.
pub trait Notifier {
    /// The receiver's `params` table, deserialized from JSON.
    type Params: DeserializeOwned;

    /// Name, version, description and parameter docs.
    fn info() -> PluginInfo;

    /// Checks parameters beyond what their types enforce; the error is
    /// reported by `configure`.
    fn validate(params: &Self::Params) -> Result<(), String> {
        let _ = params;
        Ok(())
    }

    /// Renders one notification into the deliveries to perform.
    fn render(params: &Self::Params, notification: &Notification) -> Result<Vec<Delivery>, String>;
}

/// Parses and validates a notifier's parameters (the receiver's `params` as
/// JSON); errors name the offending field like [`crate::configure`]'s.
pub fn configure<N: Notifier>(json: &str) -> Result<N::Params, String> {
    let params = crate::parse_params::<N::Params>(json)?;
    N::validate(&params).map_err(|e| format!("invalid params: {e}"))?;
    Ok(params)
}

/// Every error a `validate` found, joined with `; `, or `Ok` when there is
/// none.
///
/// A validation pushes each mistake to a list instead of returning at the
/// first, so a user fixes a configuration in one round; this turns the list
/// into [`Notifier::validate`]'s result.
///
/// ```
/// use vigil_plugin_sdk::notifier::join_errors;
/// assert_eq!(join_errors(vec![]), Ok(()));
/// assert_eq!(join_errors(vec!["`a` x".into(), "`b` y".into()]), Err("`a` x; `b` y".into()));
/// ```
pub fn join_errors(errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// `text` cut to at most `max` characters (not bytes), ending with `…` when
/// cut.
///
/// Services cap their fields (a Slack header at 150 characters, an SMS at a
/// few segments) and reject or silently drop a longer one; cutting here
/// keeps the message and shows that it was cut, without splitting a
/// character.
///
/// ```
/// use vigil_plugin_sdk::notifier::truncate;
/// assert_eq!(truncate("héllo", 5), "héllo");
/// assert_eq!(truncate("héllo", 4), "hél…");
/// ```
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.chars().count() <= max {
        return Cow::Borrowed(text);
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    Cow::Owned(cut)
}

/// Parameter docs in the notifier world's type (the derive produces the
/// check world's, which has the same fields).
pub fn param_docs<P: crate::ParamDocs>() -> Vec<ParamDoc> {
    P::param_docs()
        .into_iter()
        .map(|d| ParamDoc {
            name: d.name,
            type_name: d.type_name,
            required: d.required,
            description: d.description,
        })
        .collect()
}

/// The data of a notification template: Alertmanager 0.25's template
/// `Data`, so templates written for Alertmanager render the same.
///
/// The dot has `.Receiver` (escaped with Go's `regexp.QuoteMeta`, as
/// Alertmanager does), `.Status` (`firing` or `resolved`), `.Alerts`,
/// `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations` (Alertmanager
/// `KV`s: `.CommonLabels.alertname`, `.CommonLabels.SortedPairs`,
/// `.CommonLabels.Values`) and `.ExternalURL`. `.Alerts` is a list with
/// `.Alerts.Firing` and `.Alerts.Resolved`; each alert has `.Status`,
/// `.Labels`, `.Annotations`, `.StartsAt`, `.EndsAt` (Go's zero time while
/// the alert fires), `.GeneratorURL`, `.Fingerprint` and Vigil's `.Value`.
///
/// ```
/// use vigil_plugin_sdk::notifier::{template_data, AlertStatus, Notification};
/// use vigil_plugin_sdk::template::Template;
///
/// let n = Notification {
///     receiver: "team".into(),
///     status: AlertStatus::Firing,
///     group_key: "{}:{}".into(),
///     group_labels: vec![],
///     common_labels: vec![("alertname".into(), "HighLatency".into())],
///     common_annotations: vec![],
///     external_url: "http://vigil:9090".into(),
///     alerts: vec![],
///     truncated_alerts: 0,
/// };
/// let t = Template::parse("{{ .Status | toUpper }} {{ .CommonLabels.alertname }}").unwrap();
/// assert_eq!(t.render(&template_data(&n)), "FIRING HighLatency");
/// ```
pub fn template_data(n: &Notification) -> Value<'_> {
    let alerts = n.alerts.iter().map(alert_data).collect();
    Value::Struct(vec![
        ("Receiver", Value::Str(quote_meta(&n.receiver))),
        ("Status", status(n.status)),
        ("Alerts", Value::List(alerts)),
        ("GroupLabels", kv(&n.group_labels)),
        ("CommonLabels", kv(&n.common_labels)),
        ("CommonAnnotations", kv(&n.common_annotations)),
        ("ExternalURL", Value::Str(Cow::Borrowed(&n.external_url))),
    ])
}

fn alert_data(a: &Alert) -> Value<'_> {
    Value::Struct(vec![
        ("Status", status(a.status)),
        ("Labels", kv(&a.labels)),
        ("Annotations", kv(&a.annotations)),
        ("StartsAt", Value::Time(Some(a.starts_at))),
        ("EndsAt", Value::Time(a.ends_at)),
        ("GeneratorURL", Value::Str(Cow::Borrowed(&a.generator_url))),
        ("Fingerprint", Value::Str(Cow::Borrowed(&a.fingerprint))),
        ("Value", Value::Float(a.value)),
    ])
}

fn status(s: AlertStatus) -> Value<'static> {
    Value::Str(Cow::Borrowed(match s {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }))
}

fn kv(pairs: &[Pair]) -> Value<'static> {
    Value::Kv(pairs.iter().cloned().collect::<BTreeMap<_, _>>())
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> Cow<'_, str> {
    const META: &[char] = &[
        '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
    ];
    if !s.contains(META) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if META.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    fn alert(status: AlertStatus, name: &str, instance: &str) -> Alert {
        Alert {
            status,
            labels: vec![
                ("alertname".into(), name.into()),
                ("instance".into(), instance.into()),
            ],
            annotations: vec![("summary".into(), format!("{instance} is slow"))],
            value: 0.25,
            starts_at: 1_435_065_584_128,
            ends_at: (status == AlertStatus::Resolved).then_some(1_435_065_644_128),
            generator_url: "http://vigil/graph".into(),
            fingerprint: "0123456789abcdef".into(),
        }
    }

    fn notification() -> Notification {
        Notification {
            receiver: "team.ml".into(),
            status: AlertStatus::Firing,
            group_key: "{}:{alertname=\"HighLatency\"}".into(),
            group_labels: vec![("alertname".into(), "HighLatency".into())],
            common_labels: vec![
                ("alertname".into(), "HighLatency".into()),
                ("job".into(), "triton".into()),
            ],
            common_annotations: vec![],
            external_url: "http://vigil.example.com".into(),
            alerts: vec![
                alert(AlertStatus::Firing, "HighLatency", "a:1"),
                alert(AlertStatus::Resolved, "HighLatency", "b:1"),
                alert(AlertStatus::Firing, "HighLatency", "c:1"),
            ],
            truncated_alerts: 0,
        }
    }

    fn render(src: &str) -> String {
        let n = notification();
        match Template::parse(src) {
            Ok(t) => t.render(&template_data(&n)),
            Err(e) => panic!("{src:?}: {e}"),
        }
    }

    #[test]
    fn slack_like_title() {
        assert_eq!(
            render(
                "[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}"
            ),
            "[FIRING:2] HighLatency"
        );
    }

    #[test]
    fn alerts_and_fields() {
        assert_eq!(
            render(
                "{{ range .Alerts }}{{ .Status }} {{ .Labels.instance }} {{ .Annotations.summary }} {{ .Value }}\n{{ end }}"
            ),
            "firing a:1 a:1 is slow 0.25\nresolved b:1 b:1 is slow 0.25\nfiring c:1 c:1 is slow 0.25\n"
        );
        assert_eq!(render("{{ len .Alerts.Resolved }}"), "1");
        assert_eq!(render("{{ .Receiver }}"), "team\\.ml");
        assert_eq!(render("{{ .ExternalURL }}"), "http://vigil.example.com");
        assert_eq!(
            render("{{ (index .Alerts 1).StartsAt }} / {{ (index .Alerts 1).EndsAt }}"),
            "2015-06-23 13:19:44.128 +0000 UTC / 2015-06-23 13:20:44.128 +0000 UTC"
        );
        assert_eq!(
            render("{{ (index .Alerts 0).EndsAt }}"),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            render("{{ .CommonLabels }}"),
            "alertname=HighLatency, job=triton"
        );
        assert_eq!(
            render("{{ join \",\" .CommonLabels.Values }}"),
            "HighLatency,triton"
        );
    }

    #[test]
    fn truncate_is_char_safe() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 4), "hél…");
        assert_eq!(truncate("ééé", 1), "…");
        assert_eq!(truncate("ééé", 0), "");
    }

    #[test]
    fn quote_meta_like_go() {
        assert_eq!(quote_meta("team-ml"), "team-ml");
        assert_eq!(quote_meta("a.b[c]$"), "a\\.b\\[c\\]\\$");
    }
}
