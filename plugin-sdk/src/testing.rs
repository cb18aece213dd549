//! Fixtures and golden-file helpers for plugin crates' own tests (feature
//! `testing`).
//!
//! Enable the feature from `[dev-dependencies]` only, so it never reaches a
//! plugin's Wasm build:
//!
//! ```toml
//! [dependencies]
//! vigil-plugin-sdk = "0.1"
//!
//! [dev-dependencies]
//! vigil-plugin-sdk = { version = "0.1", features = ["testing"] }
//! ```
//!
//! Every notifier's tests render the same [`fixture`] group, so their golden
//! files (`tests/golden/*` beside the crate's `Cargo.toml`, compared by
//! [`assert_golden!`](crate::testing::assert_golden)) show how each one handles the
//! same alerts, and the notifiers are easy to compare. These helpers panic
//! on any mismatch, as tests do; nothing here is for a plugin's own code.

use std::path::Path;

use crate::notifier::{Alert, AlertStatus, Delivery, Email, HttpRequest, Notification, Pair};

/// Compares `actual` with the golden file `tests/golden/<name>` of the
/// calling crate, or with `VIGIL_BLESS=1` in the environment writes it
/// instead; panics with both texts when they differ.
///
/// A macro, so that "the calling crate" is the crate whose test expands it
/// (its `CARGO_MANIFEST_DIR` at compile time), not this one.
///
/// ```no_run
/// use vigil_plugin_sdk::notifier::{Delivery, Notification};
/// use vigil_plugin_sdk::testing::{assert_golden, fixture, http_text, only_http};
/// # fn render(_: &Notification) -> Vec<Delivery> { vec![] }
/// assert_golden!("firing.txt", &http_text(&only_http(render(&fixture()))));
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __assert_golden {
    ($name:expr, $actual:expr $(,)?) => {
        $crate::testing::assert_golden_in(
            ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            $name,
            $actual,
        )
    };
}

#[doc(inline)]
pub use crate::__assert_golden as assert_golden;

/// What [`assert_golden!`](crate::testing::assert_golden) does, for the crate whose
/// manifest is in `crate_dir`.
pub fn assert_golden_in(crate_dir: &Path, name: &str, actual: &str) {
    let path = crate_dir.join("tests/golden").join(name);
    if std::env::var_os("VIGIL_BLESS").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with VIGIL_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs; check the output and rerun with VIGIL_BLESS=1\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// Label or annotation pairs from literals, for a test's own alerts.
pub fn pairs(p: &[(&str, &str)]) -> Vec<Pair> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A fixed group: two firing alerts with different severities (the
/// warning one listed first and started earlier) and one resolved, with a
/// description that needs escaping (`&`, `<`, `>`, `"`) in most formats.
pub fn fixture() -> Notification {
    let generator = "http://vigil.example.com:9090/graph?g0.expr=errors&g0.tab=1";
    Notification {
        receiver: "ml-oncall".into(),
        status: AlertStatus::Firing,
        group_key: "{}/{team=\"ml\"}:{alertname=\"ModelErrorRateHigh\"}".into(),
        group_labels: pairs(&[("alertname", "ModelErrorRateHigh")]),
        common_labels: pairs(&[("alertname", "ModelErrorRateHigh"), ("job", "triton")]),
        common_annotations: pairs(&[("runbook_url", "https://runbooks.example.com/model-errors")]),
        external_url: "http://vigil.example.com:9090".into(),
        alerts: vec![
            Alert {
                status: AlertStatus::Firing,
                labels: pairs(&[
                    ("alertname", "ModelErrorRateHigh"),
                    ("job", "triton"),
                    ("model", "resnet"),
                    ("pod", "triton-7d9f-x2k4q"),
                    ("severity", "warning"),
                ]),
                annotations: pairs(&[
                    ("description", "p99 > 2s & <retrying> \"hot\" shard"),
                    ("runbook_url", "https://runbooks.example.com/model-errors"),
                    ("summary", "Error rate 7.2% on resnet"),
                ]),
                value: 0.072,
                starts_at: 1_795_319_303_123,
                ends_at: None,
                generator_url: generator.into(),
                fingerprint: "a1b2c3d4e5f60718".into(),
            },
            Alert {
                status: AlertStatus::Firing,
                labels: pairs(&[
                    ("alertname", "ModelErrorRateHigh"),
                    ("job", "triton"),
                    ("model", "bert"),
                    ("pod", "triton-7d9f-p8m2z"),
                    ("severity", "critical"),
                ]),
                annotations: pairs(&[
                    ("runbook_url", "https://runbooks.example.com/model-errors"),
                    ("summary", "Error rate 31% on bert"),
                ]),
                value: 0.31,
                starts_at: 1_795_319_363_000,
                ends_at: None,
                generator_url: generator.into(),
                fingerprint: "0f1e2d3c4b5a6978".into(),
            },
            Alert {
                status: AlertStatus::Resolved,
                labels: pairs(&[
                    ("alertname", "ModelErrorRateHigh"),
                    ("job", "triton"),
                    ("model", "llama"),
                    ("pod", "triton-7d9f-q1w2e"),
                    ("severity", "critical"),
                ]),
                annotations: pairs(&[
                    ("runbook_url", "https://runbooks.example.com/model-errors"),
                    ("summary", "Error rate 12% on llama"),
                ]),
                value: 0.12,
                starts_at: 1_795_319_000_000,
                ends_at: Some(1_795_319_400_000),
                generator_url: generator.into(),
                fingerprint: "9a8b7c6d5e4f3021".into(),
            },
        ],
        truncated_alerts: 0,
    }
}

/// The [`fixture`] with every alert resolved.
pub fn resolved_fixture() -> Notification {
    let mut n = fixture();
    n.status = AlertStatus::Resolved;
    for a in &mut n.alerts {
        a.status = AlertStatus::Resolved;
        a.ends_at = Some(1_795_319_400_000);
    }
    n
}

/// An HTTP delivery as text for a golden file: request line, headers, blank
/// line, body (JSON pretty-printed in the order the plugin wrote it; a body
/// that starts like JSON must be JSON).
pub fn http_text(r: &HttpRequest) -> String {
    let mut out = format!("{} {}\n", r.method, r.url);
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push('\n');
    if r.body.starts_with(['{', '[']) {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&r.body);
        assert!(parsed.is_ok(), "body is not JSON: {}", r.body);
        out.push_str(&pretty_json(&r.body));
    } else {
        out.push_str(&r.body);
    }
    out.push('\n');
    out
}

/// Re-indents compact JSON (two spaces) without reordering keys, so a
/// golden file shows fields in the order a service receives them.
pub fn pretty_json(compact: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if matches!(chars.peek(), Some('}' | ']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    }
    out
}

/// The only delivery, which must be HTTP.
pub fn only_http(out: Vec<Delivery>) -> HttpRequest {
    assert_eq!(out.len(), 1, "{out:?}");
    all_http(out).remove(0)
}

/// Every delivery, each of which must be HTTP (a notifier that sends one
/// request per alert or per recipient).
pub fn all_http(out: Vec<Delivery>) -> Vec<HttpRequest> {
    out.into_iter()
        .map(|d| match d {
            Delivery::Http(r) => r,
            other => panic!("expected an HTTP delivery, got {other:?}"),
        })
        .collect()
}

/// The only delivery, which must be an e-mail.
pub fn only_email(mut out: Vec<Delivery>) -> Email {
    assert_eq!(out.len(), 1, "{out:?}");
    match out.remove(0) {
        Delivery::Email(e) => e,
        other => panic!("expected an e-mail, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_json_keeps_order_and_strings() {
        assert_eq!(
            pretty_json(r#"{"b":[1,{}],"a":"x, {y}: \"z\"","c":[]}"#),
            "{\n  \"b\": [\n    1,\n    {}\n  ],\n  \"a\": \"x, {y}: \\\"z\\\"\",\n  \"c\": []\n}"
        );
    }

    #[test]
    fn http_text_shows_the_request() {
        let r = HttpRequest::post_json("http://h/x", r#"{"a":1}"#.to_string());
        assert_eq!(
            http_text(&r),
            "POST http://h/x\nContent-Type: application/json\n\n{\n  \"a\": 1\n}\n"
        );
    }
}
