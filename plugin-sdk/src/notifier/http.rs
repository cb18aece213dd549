//! Checks of the `url` and `headers` parameters of notifiers that send HTTP
//! requests, and the headers they end up sending.

use std::collections::BTreeMap;

use super::Pair;

/// Checks that `url`, the value of parameter `param`, is an absolute
/// `http://` or `https://` URL with a host and without spaces or control
/// characters; pushes the reason to `errors` if not.
///
/// The host checks a delivery's URL against the receiver's `allow_hosts`
/// only when it sends it; this catches a mistyped URL when the
/// configuration loads, with the parameter's name. It pushes rather than
/// returns so that a notifier's `validate` reports every mistake at once
/// (see [`join_errors`](super::join_errors)).
///
/// ```
/// let mut errors = Vec::new();
/// vigil_plugin_sdk::notifier::validate_url("url", "https://hooks.example.com/x", &mut errors);
/// vigil_plugin_sdk::notifier::validate_url("url", "hooks.example.com", &mut errors);
/// assert_eq!(errors, ["`url` must start with http:// or https://, got \"hooks.example.com\""]);
/// ```
pub fn validate_url(param: &str, url: &str, errors: &mut Vec<String>) {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        None => errors.push(format!(
            "`{param}` must start with http:// or https://, got {url:?}"
        )),
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => {
            errors.push(format!("`{param}` has no host: {url:?}"));
        }
        Some(_) if url.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            errors.push(format!(
                "`{param}` must not contain spaces or control characters: {url:?}"
            ));
        }
        Some(_) => {}
    }
}

/// Checks the `headers` parameter: every name a non-empty HTTP token
/// (printable ASCII, no `:`) and every value one line without NUL; pushes
/// ``"`headers.<name>` is not a valid HTTP header"`` to `errors` for each
/// one that is not.
///
/// A header that cannot be sent would otherwise fail every delivery, or
/// smuggle a second header in through a line break.
pub fn validate_headers(headers: &BTreeMap<String, String>, errors: &mut Vec<String>) {
    for (name, value) in headers {
        let bad_name = name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if bad_name || value.contains(['\r', '\n', '\0']) {
            errors.push(format!("`headers.{name}` is not a valid HTTP header"));
        }
    }
}

/// `base` (the notifier's own headers, e.g. `Content-Type`) with the user's
/// `headers` parameter added; a user header replaces base headers of the
/// same name, compared case-insensitively as HTTP does, so a user can
/// override the content type or authentication a notifier sets.
///
/// ```
/// use std::collections::BTreeMap;
/// use vigil_plugin_sdk::notifier::merge_headers;
/// let base = vec![("Content-Type".to_string(), "application/json".to_string())];
/// let user = BTreeMap::from([("content-type".to_string(), "text/plain".to_string())]);
/// assert_eq!(merge_headers(base, &user), [("content-type".to_string(), "text/plain".to_string())]);
/// ```
pub fn merge_headers(mut base: Vec<Pair>, headers: &BTreeMap<String, String>) -> Vec<Pair> {
    base.retain(|(k, _)| !headers.keys().any(|h| h.eq_ignore_ascii_case(k)));
    base.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_errors(url: &str) -> Vec<String> {
        let mut errors = Vec::new();
        validate_url("url", url, &mut errors);
        errors
    }

    #[test]
    fn urls_need_a_scheme_a_host_and_no_spaces() {
        assert!(url_errors("https://h.example/x?y#z").is_empty());
        assert!(url_errors("HTTP://h").is_empty());
        assert_eq!(
            url_errors("ftp://h"),
            ["`url` must start with http:// or https://, got \"ftp://h\""]
        );
        assert_eq!(url_errors("https://"), ["`url` has no host: \"https://\""]);
        assert_eq!(
            url_errors("http:///x"),
            ["`url` has no host: \"http:///x\""]
        );
        assert_eq!(
            url_errors("http://h/a b"),
            ["`url` must not contain spaces or control characters: \"http://h/a b\""]
        );
    }

    #[test]
    fn headers_need_a_token_name_and_one_line() {
        let errors = |pairs: &[(&str, &str)]| {
            let headers = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut errors = Vec::new();
            validate_headers(&headers, &mut errors);
            errors
        };
        assert!(errors(&[("Authorization", "Bearer t"), ("X-A", "")]).is_empty());
        assert_eq!(
            errors(&[
                ("", "x"),
                ("A B", "x"),
                ("C:", "x"),
                ("D", "a\nb"),
                ("E", "\0")
            ]),
            [
                "`headers.` is not a valid HTTP header",
                "`headers.A B` is not a valid HTTP header",
                "`headers.C:` is not a valid HTTP header",
                "`headers.D` is not a valid HTTP header",
                "`headers.E` is not a valid HTTP header",
            ]
        );
    }

    #[test]
    fn user_headers_replace_base_ones_case_insensitively() {
        let base = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Base".to_string(), "1".to_string()),
        ];
        let user = BTreeMap::from([
            ("Authorization".to_string(), "Bearer t".to_string()),
            ("x-base".to_string(), "2".to_string()),
        ]);
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            merge_headers(base, &user),
            [
                pair("Content-Type", "application/json"),
                pair("Authorization", "Bearer t"),
                pair("x-base", "2"),
            ]
        );
    }
}
