//! The functions a template may call: Go's text/template builtins and
//! Prometheus' alert template functions.
//!
//! Every function is known at parse time, with its arity, so a misspelt
//! name or a wrong argument count fails `vigil check` instead of showing up
//! as `<error expanding template>` in a page at 3 a.m.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::rc::Rc;

use regex::Regex;

use crate::exec::{V, is_true};
use crate::gofmt::{self, Arg};
use crate::humanize;

/// A function a template can call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Html,
    Urlquery,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    Title,
    ToUpper,
    ToLower,
    Match,
    ReReplaceAll,
    SafeHtml,
    StripPort,
    StripDomain,
    PathPrefix,
    ExternalUrl,
    GraphLink,
    TableLink,
    TrimSpace,
    Join,
    StringSlice,
}

/// How many arguments a function takes (counting a piped-in value).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arity {
    pub min: usize,
    /// `None` for variadic functions.
    pub max: Option<usize>,
}

const fn exactly(n: usize) -> Arity {
    Arity {
        min: n,
        max: Some(n),
    }
}

const fn at_least(n: usize) -> Arity {
    Arity { min: n, max: None }
}

/// Name, function and arity of everything callable.
const TABLE: &[(&str, Func, Arity)] = &[
    ("and", Func::And, at_least(1)),
    ("or", Func::Or, at_least(1)),
    ("not", Func::Not, exactly(1)),
    ("len", Func::Len, exactly(1)),
    ("index", Func::Index, at_least(1)),
    ("print", Func::Print, at_least(0)),
    ("printf", Func::Printf, at_least(1)),
    ("println", Func::Println, at_least(0)),
    ("eq", Func::Eq, at_least(2)),
    ("ne", Func::Ne, exactly(2)),
    ("lt", Func::Lt, exactly(2)),
    ("le", Func::Le, exactly(2)),
    ("gt", Func::Gt, exactly(2)),
    ("ge", Func::Ge, exactly(2)),
    ("html", Func::Html, at_least(0)),
    ("urlquery", Func::Urlquery, at_least(0)),
    ("humanize", Func::Humanize, exactly(1)),
    ("humanize1024", Func::Humanize1024, exactly(1)),
    ("humanizeDuration", Func::HumanizeDuration, exactly(1)),
    ("humanizePercentage", Func::HumanizePercentage, exactly(1)),
    ("humanizeTimestamp", Func::HumanizeTimestamp, exactly(1)),
    ("title", Func::Title, exactly(1)),
    ("toUpper", Func::ToUpper, exactly(1)),
    ("toLower", Func::ToLower, exactly(1)),
    ("match", Func::Match, exactly(2)),
    ("reReplaceAll", Func::ReReplaceAll, exactly(3)),
    ("safeHtml", Func::SafeHtml, exactly(1)),
    ("stripPort", Func::StripPort, exactly(1)),
    ("stripDomain", Func::StripDomain, exactly(1)),
    ("pathPrefix", Func::PathPrefix, exactly(0)),
    ("externalURL", Func::ExternalUrl, exactly(0)),
    ("graphLink", Func::GraphLink, exactly(1)),
    ("tableLink", Func::TableLink, exactly(1)),
    ("trimSpace", Func::TrimSpace, exactly(1)),
    ("join", Func::Join, exactly(2)),
    ("stringSlice", Func::StringSlice, at_least(0)),
];

/// Prometheus functions that need a query engine or nested templates; we
/// name them in the error so the user knows it is a limitation, not a typo.
const UNSUPPORTED: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "tmpl",
    "js",
    "slice",
    "call",
];

/// Why a name cannot be called.
pub(crate) enum LookupError {
    /// A Prometheus function Vigil templates do not provide.
    Unsupported,
    /// No such function; with the closest known name, if one is close.
    Unknown(Option<&'static str>),
}

/// Finds a function by name.
pub(crate) fn lookup(name: &str) -> Result<(Func, Arity), LookupError> {
    if let Some(&(_, f, a)) = TABLE.iter().find(|(n, _, _)| *n == name) {
        return Ok((f, a));
    }
    if UNSUPPORTED.contains(&name) {
        return Err(LookupError::Unsupported);
    }
    Err(LookupError::Unknown(suggest(name)))
}

/// How many arguments a function takes.
pub(crate) fn arity(f: Func) -> Arity {
    TABLE
        .iter()
        .find(|(_, g, _)| *g == f)
        .map_or(at_least(0), |(_, _, a)| *a)
}

/// The name of a function, for messages.
pub(crate) fn name(f: Func) -> &'static str {
    TABLE
        .iter()
        .find(|(_, g, _)| *g == f)
        .map_or("?", |(n, _, _)| n)
}

/// The known function closest to `name` (case-insensitive edit distance at
/// most 2), so `humanise` and `toupper` get a useful hint.
fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    TABLE
        .iter()
        .map(|(n, _, _)| (edit_distance(&lower, &n.to_ascii_lowercase()), *n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a function may need besides its arguments.
pub(crate) struct Env<'e> {
    pub external_url: &'e str,
    /// The pattern, compiled at parse time when it was a string literal.
    pub regex: Option<&'e Regex>,
}

/// Calls a function on evaluated arguments. `and`/`or` are handled by the
/// evaluator (they short-circuit) and only reach here fully evaluated.
pub(crate) fn call<'v>(f: Func, args: Vec<V<'v>>, env: &Env<'_>) -> Result<V<'v>, String> {
    match f {
        Func::And => Ok(args
            .into_iter()
            .reduce(|acc, v| if is_true(&acc) { v } else { acc })
            .unwrap_or(V::Nil)),
        Func::Or => Ok(args
            .into_iter()
            .reduce(|acc, v| if is_true(&acc) { acc } else { v })
            .unwrap_or(V::Nil)),
        Func::Not => Ok(V::Bool(!args.first().is_some_and(is_true))),
        Func::Len => match args.first() {
            Some(v) => match v.length() {
                Some(n) => Ok(V::Int(i64::try_from(n).unwrap_or(i64::MAX))),
                None => Err(format!("len of type {}", v.type_name())),
            },
            None => Ok(V::Int(0)),
        },
        Func::Index => index(args),
        Func::Print => Ok(V::Str(Cow::Owned(sprint(&args)))),
        Func::Println => {
            let mut s = args.iter().map(V::to_text).collect::<Vec<_>>().join(" ");
            s.push('\n');
            Ok(V::Str(Cow::Owned(s)))
        }
        Func::Printf => {
            let mut it = args.iter();
            let format = match it.next() {
                Some(V::Str(s)) => s.as_ref(),
                Some(v) => return Err(wrong_type("string", v)),
                None => "",
            };
            let rest: Vec<Arg<'_>> = it.map(V::as_fmt_arg).collect();
            Ok(V::Str(Cow::Owned(gofmt::sprintf(format, &rest))))
        }
        Func::Eq => {
            let (first, rest) = args
                .split_first()
                .ok_or("missing argument for comparison")?;
            for other in rest {
                if compare(first, other)? == Some(Ordering::Equal) {
                    return Ok(V::Bool(true));
                }
            }
            Ok(V::Bool(false))
        }
        Func::Ne => Ok(V::Bool(ordering(&args)? != Some(Ordering::Equal))),
        Func::Lt => Ok(V::Bool(ordering(&args)?.is_some_and(Ordering::is_lt))),
        Func::Le => Ok(V::Bool(ordering(&args)?.is_some_and(Ordering::is_le))),
        Func::Gt => Ok(V::Bool(ordering(&args)?.is_some_and(Ordering::is_gt))),
        Func::Ge => Ok(V::Bool(ordering(&args)?.is_some_and(Ordering::is_ge))),
        Func::Html => Ok(V::Str(Cow::Owned(html_escape(&eval_args_text(&args))))),
        Func::Urlquery => Ok(V::Str(Cow::Owned(query_escape(&eval_args_text(&args))))),
        Func::Humanize => float_fn(&args, humanize::humanize),
        Func::Humanize1024 => float_fn(&args, humanize::humanize_1024),
        Func::HumanizeDuration => float_fn(&args, humanize::humanize_duration),
        Func::HumanizePercentage => float_fn(&args, humanize::humanize_percentage),
        Func::HumanizeTimestamp => {
            let v = to_float(first(&args)?)?;
            Ok(V::Str(Cow::Owned(humanize::humanize_timestamp(v)?)))
        }
        Func::Title => Ok(owned(title(str_arg(&args, 0)?))),
        Func::ToUpper => Ok(owned(
            str_arg(&args, 0)?
                .chars()
                .flat_map(char::to_uppercase)
                .collect(),
        )),
        Func::ToLower => Ok(owned(
            str_arg(&args, 0)?
                .chars()
                .flat_map(char::to_lowercase)
                .collect(),
        )),
        Func::Match => {
            let re = regex_arg(&args, env)?;
            Ok(V::Bool(re.is_match(str_arg(&args, 1)?)))
        }
        Func::ReReplaceAll => {
            let re = regex_arg(&args, env)?;
            let repl = str_arg(&args, 1)?;
            let text = str_arg(&args, 2)?;
            Ok(owned(re.replace_all(text, repl).into_owned()))
        }
        Func::SafeHtml => Ok(owned(str_arg(&args, 0)?.to_string())),
        Func::StripPort => Ok(owned(strip_port(str_arg(&args, 0)?).to_string())),
        Func::StripDomain => Ok(owned(strip_domain(str_arg(&args, 0)?))),
        Func::PathPrefix => Ok(owned(url_path(env.external_url).to_string())),
        Func::ExternalUrl => Ok(owned(env.external_url.to_string())),
        Func::GraphLink => Ok(owned(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(str_arg(&args, 0)?)
        ))),
        Func::TableLink => Ok(owned(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(str_arg(&args, 0)?)
        ))),
        Func::TrimSpace => Ok(owned(str_arg(&args, 0)?.trim().to_string())),
        Func::Join => {
            let sep = str_arg(&args, 0)?;
            let list = args
                .get(1)
                .and_then(V::elements)
                .ok_or_else(|| wrong_type("[]string", args.get(1).unwrap_or(&V::Nil)))?;
            let mut parts = Vec::with_capacity(list.len());
            for item in &list {
                match item {
                    V::Str(s) => parts.push(s.as_ref()),
                    other => return Err(wrong_type("string", other)),
                }
            }
            Ok(owned(parts.join(sep)))
        }
        Func::StringSlice => {
            for a in &args {
                if !matches!(a, V::Str(_)) {
                    return Err(wrong_type("string", a));
                }
            }
            Ok(V::List(Rc::new(args)))
        }
    }
}

fn owned<'v>(s: String) -> V<'v> {
    V::Str(Cow::Owned(s))
}

fn first<'a, 'v>(args: &'a [V<'v>]) -> Result<&'a V<'v>, String> {
    args.first().ok_or_else(|| "missing argument".to_string())
}

fn wrong_type(expected: &str, got: &V<'_>) -> String {
    format!(
        "wrong type for value; expected {expected}; got {}",
        got.type_name()
    )
}

fn str_arg<'a>(args: &'a [V<'_>], i: usize) -> Result<&'a str, String> {
    match args.get(i) {
        Some(V::Str(s)) => Ok(s),
        Some(v) => Err(wrong_type("string", v)),
        None => Err("missing argument".to_string()),
    }
}

fn regex_arg<'a>(args: &[V<'_>], env: &Env<'a>) -> Result<Cow<'a, Regex>, String> {
    if let Some(re) = env.regex {
        return Ok(Cow::Borrowed(re));
    }
    let pattern = str_arg(args, 0)?;
    Regex::new(pattern)
        .map(Cow::Owned)
        .map_err(|e| format!("error parsing regexp: {e}"))
}

/// Prometheus' `convertToFloat`: floats, integers and numeric strings.
pub(crate) fn to_float(v: &V<'_>) -> Result<f64, String> {
    match v {
        V::Float(f) => Ok(*f),
        V::Int(i) => Ok(*i as f64),
        // Unix seconds, so `humanizeTimestamp` takes `.StartsAt`.
        V::Time(t) => Ok(t.map_or(-62_135_596_800.0, |ms| ms as f64 / 1000.0)),
        V::Str(s) => parse_go_float(s).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                gofmt::go_quote(s)
            )
        }),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input, including `Inf`,
/// `+Inf`, `NaN` in any case.
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" if !lower.starts_with(['+', '-']) => return Some(f64::NAN),
        _ => {}
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse().ok()
}

fn float_fn<'v>(args: &[V<'v>], f: fn(f64) -> String) -> Result<V<'v>, String> {
    Ok(owned(f(to_float(first(args)?)?)))
}

fn index<'v>(args: Vec<V<'v>>) -> Result<V<'v>, String> {
    let mut it = args.into_iter();
    let mut item = it.next().unwrap_or(V::Nil);
    for key in it {
        item = match (item, key) {
            // A missing key yields the zero value, as Go's index does.
            (V::Labels(m) | V::Kv(m), V::Str(k)) => V::Str(Cow::Borrowed(m.get(&k).unwrap_or(""))),
            (V::Map(m), V::Str(k)) => m.get(k.as_ref()).map_or(V::Nil, V::of),
            (V::Labels(_) | V::Kv(_) | V::Map(_), k) => {
                return Err(format!(
                    "value has type {}; should be string",
                    k.type_name()
                ));
            }
            (V::Nil, _) => return Err("index of untyped nil".to_string()),
            (list, V::Int(i)) if list.elements().is_some() => {
                let items = list.elements().unwrap_or_default();
                usize::try_from(i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            (v, _) => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(item)
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[V<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, V::Str(_)) && !matches!(args[i - 1], V::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_text());
    }
    out
}

/// text/template's `evalArgs`: a lone string as is, otherwise `Sprint`.
fn eval_args_text(args: &[V<'_>]) -> String {
    match args {
        [V::Str(s)] => s.to_string(),
        _ => sprint(args),
    }
}

fn ordering(args: &[V<'_>]) -> Result<Option<Ordering>, String> {
    match args {
        [a, b] => compare(a, b),
        _ => Err("missing argument for comparison".to_string()),
    }
}

/// Compares two basic values; `None` when they are unordered (a NaN).
///
/// Unlike Go, an int and a float compare by value, so `gt $value 1` works
/// where Go insists on `gt $value 1.0`: every template that runs in
/// Prometheus still runs here, and one more natural spelling does too.
fn compare(a: &V<'_>, b: &V<'_>) -> Result<Option<Ordering>, String> {
    match (a, b) {
        (V::Str(x), V::Str(y)) => Ok(Some(x.as_ref().cmp(y.as_ref()))),
        (V::Bool(x), V::Bool(y)) => Ok(Some(x.cmp(y))),
        (V::Int(x), V::Int(y)) => Ok(Some(x.cmp(y))),
        (V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => {
            Ok(to_float(a)?.partial_cmp(&to_float(b)?))
        }
        _ => Err(format!(
            "incompatible types for comparison: {} and {}",
            a.type_name(),
            b.type_name()
        )),
    }
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = is_separator(c);
    }
    out
}

/// `strings.Title`'s word boundary rule.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphabetic() || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

/// Go's `net.SplitHostPort`, or `None` where it returns an error.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let i = s.rfind(':')?;
    let (host, port) = (&s[..i], &s[i + 1..]);
    if port.contains(['[', ']']) {
        return None;
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        return (!inner.contains(['[', ']'])).then_some((inner, port));
    }
    (!host.contains([':', '[', ']'])).then_some((host, port))
}

/// Prometheus' `stripPort`: the host of `host:port` or `[v6]:port`; the
/// input unchanged when `net.SplitHostPort` rejects it (no port).
fn strip_port(s: &str) -> &str {
    split_host_port(s).map_or(s, |(host, _)| host)
}

/// Prometheus' `stripDomain`: the first label of a host name, port kept;
/// IP addresses are returned unchanged.
fn strip_domain(s: &str) -> String {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let first = host.split('.').next().unwrap_or(host);
    if port.is_empty() {
        first.to_string()
    } else if first.contains(':') {
        format!("[{first}]:{port}")
    } else {
        format!("{first}:{port}")
    }
}

/// The path component of a URL (`http://host:9090/vigil` -> `/vigil`).
fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert!(matches!(
            lookup("humanise"),
            Err(LookupError::Unknown(Some("humanize")))
        ));
        assert!(matches!(
            lookup("toupper"),
            Err(LookupError::Unknown(Some("toUpper")))
        ));
        assert!(matches!(lookup("query"), Err(LookupError::Unsupported)));
        assert!(matches!(
            lookup("frobnicate"),
            Err(LookupError::Unknown(None))
        ));
    }

    #[test]
    fn strip_port_like_go() {
        assert_eq!(strip_port("example.com:9090"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_domain("node1.example.com:9100"), "node1:9100");
        assert_eq!(strip_domain("node1.example.com"), "node1");
        assert_eq!(strip_domain("10.0.0.1:9100"), "10.0.0.1:9100");
    }

    #[test]
    fn title_like_go() {
        assert_eq!(
            title("hello world-wide_web o'neil"),
            "Hello World-Wide_web O'Neil"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;"
        );
        assert_eq!(url_path("http://host:9090/vigil/?x=1"), "/vigil/");
        assert_eq!(url_path("http://host:9090"), "");
    }
}
