//! The `sms` notifier: sends a short text through an SMS gateway with a
//! Twilio-style API.
//!
//! ```toml
//! [[receivers]]
//! name = "ml-sms"
//! notifier = "sms"
//! params = { url = "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json", from = "+15550001234", to = ["+15550005678", "+15550009999"], username = "AC123", password = "auth-token" }
//! allow_hosts = ["api.twilio.com"]
//! ```
//!
//! One `POST` per recipient, with an `application/x-www-form-urlencoded`
//! body of `To`, `From` and `Body`, and HTTP Basic authentication when
//! `username` and `password` are set (Twilio takes the account SID and auth
//! token there).
//!
//! The text is the `title` line, then the `body`, cut to `max_length`
//! characters (ending with `…` when cut). So that what survives the cut is
//! what matters, the templates see `.Alerts` most important first: firing
//! before resolved, then by `severity` (critical, error, warning, info,
//! none), then the earliest start. By default the title is Alertmanager's
//! subject (`[FIRING:2] ModelErrorRateHigh (triton)`) and the body has one
//! line per alert: its severity (or `RESOLVED`) and its summary (or name).
//!
//! `title` and `body` are Go templates over Alertmanager's notification data
//! (`.Status`, `.GroupLabels`, `.CommonLabels`, `.Alerts`, ...), parsed when
//! the configuration loads.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use vigil_plugin_sdk::notifier::{
    DEFAULT_SUBJECT, DefaultTemplate, Template, by_importance, join_errors, merge_headers,
    render_or, template_data, truncate, validate_headers, validate_url,
};
use vigil_plugin_sdk::prelude::*;

/// Parameters of the `sms` notifier.
#[derive(Debug, Deserialize, Params)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    /// The gateway's send endpoint, e.g. Twilio's
    /// `https://api.twilio.com/2010-04-01/Accounts/<sid>/Messages.json`
    /// (its host must also be in the receiver's `allow_hosts`).
    pub url: String,
    /// Recipients' numbers (`+15550005678`), one message each.
    pub to: Vec<String>,
    /// The sender number or ID the gateway sends from.
    pub from: String,
    /// User for HTTP Basic authentication (Twilio: the account SID); needs
    /// `password`.
    pub username: Option<String>,
    /// Password for HTTP Basic authentication (Twilio: the auth token).
    pub password: Option<String>,
    /// Cut the text to this many characters, ending with `…`. Default: 160.
    #[serde(default = "default_max_length")]
    pub max_length: u32,
    /// First-line template. Default: Alertmanager's subject, e.g.
    /// `[FIRING:2] ModelErrorRateHigh (triton)`.
    pub title: Option<Template>,
    /// Template of the lines after the title; `.Alerts` is most important
    /// first. Default: one line per alert, severity and summary.
    pub body: Option<Template>,
    /// Extra HTTP headers (one named `Authorization` replaces Basic
    /// authentication).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_max_length() -> u32 {
    160
}

static BODY: DefaultTemplate = DefaultTemplate::new(concat!(
    "{{ range .Alerts }}",
    "{{ if eq .Status \"resolved\" }}RESOLVED: ",
    "{{ else if .Labels.severity }}{{ .Labels.severity | toUpper }}: {{ end }}",
    "{{ or .Annotations.summary .Labels.alertname }}\n",
    "{{ end }}",
));

fn validate(p: &Sms) -> Result<(), String> {
    let mut errors = Vec::new();
    validate_url("url", &p.url, &mut errors);
    validate_headers(&p.headers, &mut errors);
    if p.to.is_empty() {
        errors.push("`to` needs at least one number".to_string());
    }
    for (i, number) in p.to.iter().enumerate() {
        if number.trim().is_empty() || number.chars().any(char::is_control) {
            errors.push(format!("`to[{i}]` is not a phone number: {number:?}"));
        }
    }
    if p.from.trim().is_empty() || p.from.chars().any(char::is_control) {
        errors.push(format!("`from` is not a sender: {:?}", p.from));
    }
    match (&p.username, &p.password) {
        (Some(user), Some(_)) if user.contains(':') => {
            errors.push("`username` must not contain `:` (HTTP Basic authentication)".to_string());
        }
        (Some(_), None) => errors.push("`username` needs `password`".to_string()),
        (None, Some(_)) => errors.push("`password` needs `username`".to_string()),
        _ => {}
    }
    if p.max_length == 0 {
        errors.push("`max_length` must be at least 1".to_string());
    }
    join_errors(errors)
}

/// Texts the group's most important alerts to every number in `to`.
#[notifier(name = "sms", validate = validate)]
pub fn sms(p: &Sms, n: &Notification) -> Result<Vec<Delivery>, String> {
    let text = message(p, n)?;
    let mut base = vec![(
        "Content-Type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    if let (Some(user), Some(password)) = (&p.username, &p.password) {
        let credentials = base64(format!("{user}:{password}").as_bytes());
        base.push(("Authorization".to_string(), format!("Basic {credentials}")));
    }
    let headers = merge_headers(base, &p.headers);
    Ok(p.to
        .iter()
        .map(|to| {
            Delivery::Http(HttpRequest {
                method: "POST".to_string(),
                url: p.url.clone(),
                headers: headers.clone(),
                body: form(&[("To", to), ("From", &p.from), ("Body", &text)]),
            })
        })
        .collect())
}

/// The title line and the body, alerts most important first, cut to
/// `max_length` characters.
fn message(p: &Sms, n: &Notification) -> Result<String, String> {
    let sorted = Notification {
        alerts: by_importance(&n.alerts).into_iter().cloned().collect(),
        ..n.clone()
    };
    let data = template_data(&sorted);
    let title = render_or(p.title.as_ref(), &DEFAULT_SUBJECT, &data)?;
    let body = render_or(p.body.as_ref(), &BODY, &data)?;
    let text = [title.trim(), body.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(truncate(&text, p.max_length as usize).into_owned())
}

/// `application/x-www-form-urlencoded`, as browsers and Twilio's clients
/// encode it: `*-._` and alphanumerics kept, space as `+`, UTF-8 bytes of
/// anything else as `%XX`.
fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(&mut out, name);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Standard base64 with padding, for the Basic credentials.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_plugin_sdk::Notifier;
    use vigil_plugin_sdk::notifier::configure;
    use vigil_plugin_sdk::testing::{all_http, assert_golden, fixture, resolved_fixture};

    const PARAMS: &str = r#"{"url": "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json", "from": "+15550001234", "to": ["+15550005678", "+44 7700 900123"], "username": "AC123", "password": "s3cr&t"}"#;

    fn render_with(params: &str, n: &Notification) -> Vec<HttpRequest> {
        let p = configure::<Plugin>(params).unwrap();
        all_http(Plugin::render(&p, n).unwrap())
    }

    fn text(params: &str, n: &Notification) -> String {
        let p = configure::<Plugin>(params).unwrap();
        message(&p, n).unwrap()
    }

    /// Decodes a form body, to show it readably in the golden file.
    fn decode(body: &str) -> Vec<(String, String)> {
        let unescape = |s: &str| {
            let mut bytes = Vec::new();
            let mut it = s.bytes();
            while let Some(b) = it.next() {
                match b {
                    b'+' => bytes.push(b' '),
                    b'%' => {
                        let hex: String = [it.next().unwrap(), it.next().unwrap()]
                            .iter()
                            .map(|&c| char::from(c))
                            .collect();
                        bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                    }
                    b => bytes.push(b),
                }
            }
            String::from_utf8(bytes).unwrap()
        };
        body.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (unescape(k), unescape(v))
            })
            .collect()
    }

    fn golden(requests: &[HttpRequest]) -> String {
        let mut out = String::new();
        for r in requests {
            out.push_str(&format!("{} {}\n", r.method, r.url));
            for (k, v) in &r.headers {
                out.push_str(&format!("{k}: {v}\n"));
            }
            out.push_str(&format!("\n{}\n", r.body));
            for (k, v) in decode(&r.body) {
                out.push_str(&format!("# {k} = {v:?}\n"));
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn default_rendering_matches_golden() {
        assert_golden!("firing.txt", &golden(&render_with(PARAMS, &fixture())));
        assert_golden!(
            "resolved.txt",
            &golden(&render_with(PARAMS, &resolved_fixture())),
        );
    }

    #[test]
    fn one_form_post_per_recipient_with_basic_auth() {
        let requests = render_with(PARAMS, &fixture());
        assert_eq!(requests.len(), 2);
        let expected_text = text(PARAMS, &fixture());
        for (r, to) in requests.iter().zip(["+15550005678", "+44 7700 900123"]) {
            assert_eq!(r.method, "POST");
            assert_eq!(
                r.headers,
                [
                    (
                        "Content-Type".to_string(),
                        "application/x-www-form-urlencoded".to_string()
                    ),
                    // base64("AC123:s3cr&t")
                    (
                        "Authorization".to_string(),
                        "Basic QUMxMjM6czNjciZ0".to_string()
                    )
                ]
            );
            let fields = decode(&r.body);
            assert_eq!(fields[0], ("To".to_string(), to.to_string()));
            assert_eq!(fields[1], ("From".to_string(), "+15550001234".to_string()));
            assert_eq!(fields[2], ("Body".to_string(), expected_text.clone()));
        }
        assert!(
            requests[1]
                .body
                .starts_with("To=%2B44+7700+900123&From=%2B15550001234&Body=")
        );
    }

    #[test]
    fn most_important_alert_first() {
        assert_eq!(
            text(PARAMS, &fixture()),
            "[FIRING:2] ModelErrorRateHigh (triton)\n\
             CRITICAL: Error rate 31% on bert\n\
             WARNING: Error rate 7.2% on resnet\n\
             RESOLVED: Error rate 12% on llama"
        );
        // Same severity: the earlier start first; no severity sorts last.
        let mut n = fixture();
        n.alerts[0].labels[4].1 = "critical".into();
        n.alerts[1].labels.retain(|(k, _)| k != "severity");
        let mut gpt = n.alerts[2].clone();
        gpt.status = AlertStatus::Firing;
        gpt.ends_at = None;
        gpt.labels[2].1 = "gpt".into();
        n.alerts.push(gpt);
        let body = r#"{"url": "https://h/", "from": "x", "to": ["1"], "title": "", "body": "{{ range .Alerts }}{{ .Labels.model }} {{ end }}"}"#;
        assert_eq!(text(body, &n), "gpt resnet bert llama");
        n.alerts[3].labels[4].1 = "info".into();
        assert_eq!(text(body, &n), "resnet gpt bert llama");
    }

    #[test]
    fn cut_to_max_length_char_safely() {
        let params = r#"{"url": "https://h/", "from": "x", "to": ["1"], "max_length": 50}"#;
        let t = text(params, &fixture());
        assert_eq!(t.chars().count(), 50);
        assert_eq!(t, "[FIRING:2] ModelErrorRateHigh (triton)\nCRITICAL: …");
        let params =
            r#"{"url": "https://h/", "from": "x", "to": ["1"], "max_length": 4, "title": "ééééé"}"#;
        assert_eq!(text(params, &fixture()), "ééé…");
        let params = r#"{"url": "https://h/", "from": "x", "to": ["1"], "max_length": 5, "title": "ééééé", "body": ""}"#;
        assert_eq!(text(params, &fixture()), "ééééé");
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form(&[("Body", "a b&c=d+é/~*-._\n"), ("To", "+1")]),
            "Body=a+b%26c%3Dd%2B%C3%A9%2F%7E*-._%0A&To=%2B1"
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn no_auth_header_without_credentials_and_headers_override() {
        let r = render_with(
            r#"{"url": "https://h/", "from": "x", "to": ["1"], "headers": {"X-Api-Key": "k"}}"#,
            &fixture(),
        );
        assert_eq!(
            r[0].headers,
            [
                (
                    "Content-Type".to_string(),
                    "application/x-www-form-urlencoded".to_string()
                ),
                ("X-Api-Key".to_string(), "k".to_string())
            ]
        );
    }

    #[test]
    fn configure_rejects_bad_params() {
        let err = |json| configure::<Plugin>(json).err().unwrap();
        assert!(
            err(r#"{"url": "https://h/", "to": ["1"]}"#)
                .starts_with("invalid params: missing field `from`")
        );
        assert_eq!(
            err(r#"{"url": "https://h/", "from": "", "to": [], "username": "u", "max_length": 0}"#),
            "invalid params: `to` needs at least one number; `from` is not a sender: \"\"; \
             `username` needs `password`; `max_length` must be at least 1"
        );
        assert_eq!(
            err(
                r#"{"url": "https://h/", "from": "x", "to": ["1", "\n"], "username": "a:b", "password": "p"}"#
            ),
            "invalid params: `to[1]` is not a phone number: \"\\n\"; \
             `username` must not contain `:` (HTTP Basic authentication)"
        );
        assert!(
            err(
                r#"{"url": "https://h/", "from": "x", "to": ["1"], "body": "{{ range .Alerts }}"}"#
            )
            .starts_with(
                "invalid params: `body`: template error at line 1, column 1: unclosed `range`"
            )
        );
    }

    #[test]
    fn info_documents_params() {
        let info = Plugin::info();
        assert_eq!(info.name, "sms");
        let required: Vec<_> = info
            .params
            .iter()
            .filter(|d| d.required)
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(required, ["url", "to", "from"]);
        assert!(info.params.iter().all(|d| !d.description.is_empty()));
    }
}
