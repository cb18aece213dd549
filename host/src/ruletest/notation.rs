//! Prometheus' expanding series notation, shared by `vigil test` files and
//! the PromQL acceptance runner.
//!
//! A series is `metric{label="value", ...}` (or `{...}` alone); its values
//! are space-separated items, one per step from time 0:
//! - `1.5`, `-Inf`, `NaN`: one value;
//! - `a+bxn` / `a-bxn`: `n + 1` values `a, a+b, ..., a+n*b`; `axn`: `a`
//!   repeated `n + 1` times;
//! - `_`: no sample at this step; `_xn`: `n` steps without a sample;
//! - `stale`: a staleness marker (the series disappeared).
//!
//! Errors carry the byte offset in the parsed text, so a caller that knows
//! where the text sits in a file can point at the line and column.

use crate::store::labels::Labels;
use crate::store::stale_nan;

/// The most values one series may expand to: a typo like `0+1x10000000000`
/// must be an error, not an allocation that takes the machine down.
pub const MAX_VALUES: usize = 1_000_000;

/// One element of an expanded value sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeqValue {
    /// `_`: no sample at this step.
    Omitted,
    /// A sample; `stale` is [`stale_nan`].
    Value(f64),
}

/// A syntax error in series notation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct NotationError {
    /// Byte offset in the parsed text where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl NotationError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        NotationError {
            offset,
            message: message.into(),
        }
    }
}

/// A series description with its values: `metric{label="value"} 1 2 _ stale`.
pub fn parse_series(line: &str) -> Result<(Labels, Vec<SeqValue>), NotationError> {
    let (labels, rest) = parse_metric(line)?;
    let base = line.len() - rest.len();
    let values = parse_values(rest).map_err(|e| NotationError::at(base + e.offset, e.message))?;
    Ok((labels, values))
}

/// A series description and nothing else (surrounding spaces allowed); an
/// empty text is the empty label set, the labels of a scalar result.
pub fn parse_labels(text: &str) -> Result<Labels, NotationError> {
    if text.trim().is_empty() {
        return Ok(Labels::default());
    }
    let (labels, rest) = parse_metric(text)?;
    if !rest.trim().is_empty() {
        let at = text.len() - rest.trim_start().len();
        return Err(NotationError::at(
            at,
            format!("unexpected {:?} after the series", rest.trim()),
        ));
    }
    Ok(labels)
}

/// Space-separated value items, expanded.
pub fn parse_values(text: &str) -> Result<Vec<SeqValue>, NotationError> {
    let mut values = Vec::new();
    let mut offset = 0;
    for item in text.split(|c: char| c.is_ascii_whitespace()) {
        if !item.is_empty() {
            expand(item, &mut values).map_err(|m| NotationError::at(offset, m))?;
        }
        offset += item.len() + 1;
    }
    Ok(values)
}

/// `metric`, `metric{...}` or `{...}`; returns the labels and what follows.
pub fn parse_metric(s: &str) -> Result<(Labels, &str), NotationError> {
    let full = s;
    let at = |rest: &str| full.len() - rest.len();
    let s = s.trim_start();
    let name_len = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let mut pairs: Vec<(String, String)> = Vec::new();
    if name_len > 0 {
        pairs.push(("__name__".into(), s[..name_len].to_string()));
    }
    let mut rest = &s[name_len..];
    if let Some(body) = rest.strip_prefix('{') {
        rest = body;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let n = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .ok_or_else(|| NotationError::at(at(rest), "unterminated label set"))?;
            if n == 0 {
                return Err(NotationError::at(
                    at(rest),
                    format!("expected a label name at {rest:?}"),
                ));
            }
            let name = rest[..n].to_string();
            rest = rest[n..].trim_start();
            rest = rest
                .strip_prefix('=')
                .ok_or_else(|| {
                    NotationError::at(at(rest), format!("expected = after label {name}"))
                })?
                .trim_start();
            let (value, r) = parse_string(rest).map_err(|m| NotationError::at(at(rest), m))?;
            pairs.push((name, value));
            rest = r.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            }
        }
    } else if name_len == 0 {
        return Err(NotationError::at(
            at(s),
            format!("expected a series at {s:?}"),
        ));
    }
    Ok((Labels::new(pairs), rest))
}

/// A quoted string (`"..."` with Go escapes, `'...'`, or raw `` `...` ``).
fn parse_string(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let Some((_, quote)) = chars.next() else {
        return Err("expected a string".into());
    };
    if !matches!(quote, '"' | '\'' | '`') {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((out, &s[i + c.len_utf8()..]));
        }
        if c == '\\' && quote != '`' {
            let Some((_, e)) = chars.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'u' | 'x' => {
                    let len = if e == 'u' { 4 } else { 2 };
                    let hex: String = (0..len)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let cp = u32::from_str_radix(&hex, 16).map_err(|_| "bad escape")?;
                    out.push(char::from_u32(cp).ok_or("bad escape")?);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    Err("unterminated string".into())
}

/// Expands one item of a value sequence.
fn expand(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let bad = || format!("invalid value {item:?}");
    let room = |n: usize| {
        if out.len().saturating_add(n) > MAX_VALUES {
            Err(format!(
                "{item:?} makes the series longer than {MAX_VALUES} values"
            ))
        } else {
            Ok(())
        }
    };
    if let Some(rest) = item.strip_prefix('_') {
        let n = match rest.strip_prefix('x') {
            Some(n) => n.parse::<usize>().map_err(|_| bad())?,
            None if rest.is_empty() => 1,
            None => return Err(bad()),
        };
        room(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    if item == "stale" {
        room(1)?;
        out.push(SeqValue::Value(stale_nan()));
        return Ok(());
    }
    let (start, rest) = scan_number(item).ok_or_else(bad)?;
    if rest.is_empty() {
        room(1)?;
        out.push(SeqValue::Value(start));
        return Ok(());
    }
    let (inc, rest) = if rest.starts_with(['+', '-']) {
        scan_number(rest).ok_or_else(bad)?
    } else {
        (0.0, rest)
    };
    let times: usize = rest
        .strip_prefix('x')
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    room(times.saturating_add(1))?;
    let mut v = start;
    out.push(SeqValue::Value(v));
    for _ in 0..times {
        v += inc;
        out.push(SeqValue::Value(v));
    }
    Ok(())
}

/// A signed number at the start of `s` (decimal with exponent, `Inf`,
/// `NaN`), and the rest.
fn scan_number(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let lower = s[i..].to_ascii_lowercase();
    for word in ["infinity", "inf", "nan"] {
        if lower.starts_with(word) {
            let end = i + word.len();
            return Some((s[..end].parse().ok()?, &s[end..]));
        }
    }
    let start_digits = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i == start_digits {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    Some((s[..i].parse().ok()?, &s[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::is_stale;

    #[test]
    fn sequences_expand() {
        let (l, v) =
            parse_series(r#"m{a="b"} 0+10x2 1-1x1 _x2 _ 5x1 stale -Inf 9.9e+307"#).unwrap();
        assert_eq!(l, Labels::from_pairs([("__name__", "m"), ("a", "b")]));
        let omitted = |i: usize| v[i] == SeqValue::Omitted;
        let value = |i: usize| match v[i] {
            SeqValue::Value(f) => f,
            SeqValue::Omitted => f64::NAN,
        };
        assert_eq!(v.len(), 13);
        let head: Vec<f64> = (0..5).map(value).collect();
        assert_eq!(head, vec![0.0, 10.0, 20.0, 1.0, 0.0]);
        assert!((5..8).all(omitted));
        assert_eq!((value(8), value(9)), (5.0, 5.0));
        assert!(is_stale(value(10)));
        assert_eq!((value(11), value(12)), (f64::NEG_INFINITY, 9.9e307));
    }

    #[test]
    fn errors_point_at_the_bad_item() {
        let e = parse_series(r#"up{job="a"} 1 2 3x 4"#).unwrap_err();
        assert_eq!(e.offset, r#"up{job="a"} 1 2 "#.len());
        assert!(e.message.contains("\"3x\""), "{e}");
        let e = parse_values("1  bad").unwrap_err();
        assert_eq!(e.offset, 3);
        let e = parse_metric(r#"  up{job=a}"#).unwrap_err();
        assert_eq!(e.offset, r#"  up{job="#.len());
    }

    #[test]
    fn huge_expansions_are_errors() {
        let e = parse_values("0+1x10000000000").unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
        assert!(parse_values("_x999999 1").is_ok());
        assert!(parse_values("_x999999 1 2").is_err());
    }

    #[test]
    fn a_label_set_alone() {
        assert_eq!(parse_labels("").unwrap(), Labels::default());
        assert_eq!(
            parse_labels(r#" {job="a"} "#).unwrap(),
            Labels::from_pairs([("job", "a")])
        );
        let e = parse_labels(r#"up{job="a"} 1"#).unwrap_err();
        assert_eq!(e.offset, r#"up{job="a"} "#.len());
    }
}
