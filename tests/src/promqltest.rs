//! Prometheus' PromQL test-file format (`promql/testdata/*.test`), and a
//! runner that checks Vigil's query engine against such files.
//!
//! The format, as Prometheus 2.42's `promql/test.go` reads it:
//! - `load <step>` and indented `<series> <values>` lines: values use the
//!   expanding notation (`0+10x100`, `1-1x3`, `5x4`, `_`, `_x3`, `stale`),
//!   one per step from time 0. A series defined twice in one `load` keeps
//!   its last definition.
//! - `clear` drops everything loaded.
//! - `eval instant at <duration> <expr>` (or `eval_fail`, `eval_ordered`) and
//!   indented expected results: `<series> <value>` lines, or one bare
//!   number for a scalar; no lines means an empty result.
//! - `#` starts a comment line; a blank line ends a block.
//!
//! The runner checks each `eval` as Prometheus' runner does: the instant
//! result; the same query as a range query (one minute either side, one
//! minute step) at the middle step; and, when the query calls no function
//! that depends on the evaluation time, the query with every selector
//! pinned to `@ <time>` evaluated at other times.

use std::collections::HashMap;
use std::fmt;

use vigil::query::{Query, QueryValue, Sample};
use vigil::store::SeriesStore;
use vigil::store::labels::Labels;

pub use vigil::ruletest::notation::{SeqValue, parse_metric, parse_series};

/// One command of a test file, with its 1-based line number.
#[derive(Debug, Clone)]
pub enum Command {
    Load {
        line: usize,
        /// Series and their `(timestamp ms, value)` samples.
        series: Vec<(Labels, Vec<(i64, f64)>)>,
    },
    Clear,
    Eval(Eval),
}

#[derive(Debug, Clone)]
pub struct Eval {
    pub line: usize,
    pub expr: String,
    pub at_ms: i64,
    pub fail: bool,
    pub ordered: bool,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Scalar(f64),
    /// Expected series in file order (the order `eval_ordered` checks).
    Vector(Vec<(Labels, f64)>),
}

/// A syntax error in a test file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses a whole test file.
pub fn parse(text: &str) -> Result<Vec<Command>, ParseError> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { "" } else { l }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let lineno = i + 1;
        let err = |message: String| ParseError {
            line: lineno,
            message,
        };
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word == "load" {
            let step = parse_duration(l[4..].trim()).map_err(err)?;
            let mut defs: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
            let mut index: HashMap<Labels, usize> = HashMap::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let (labels, values) = parse_series(lines[i]).map_err(|e| ParseError {
                    line: i + 1,
                    message: e.to_string(),
                })?;
                let mut samples = Vec::with_capacity(values.len());
                for (k, v) in values.iter().enumerate() {
                    if let SeqValue::Value(v) = v {
                        samples.push((k as i64 * step, *v));
                    }
                }
                // A series defined twice keeps its last definition.
                match index.get(&labels) {
                    Some(&at) => defs[at].1 = samples,
                    None => {
                        index.insert(labels.clone(), defs.len());
                        defs.push((labels, samples));
                    }
                }
                i += 1;
            }
            cmds.push(Command::Load {
                line: lineno,
                series: defs,
            });
        } else if word.starts_with("eval") {
            let (fail, ordered, at_ms, expr) = parse_eval_line(l).map_err(err)?;
            let mut expect: Option<Expect> = None;
            let mut vector: Vec<(Labels, f64)> = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                let def = lines[i];
                if let Some(v) = parse_number(def) {
                    expect = Some(Expect::Scalar(v));
                    i += 1;
                    break;
                }
                let (labels, values) = parse_series(def).map_err(|e| ParseError {
                    line: i + 1,
                    message: e.to_string(),
                })?;
                let [SeqValue::Value(v)] = values.as_slice() else {
                    return Err(ParseError {
                        line: i + 1,
                        message: "expected exactly one value".into(),
                    });
                };
                vector.retain(|(l, _)| *l != labels);
                vector.push((labels, *v));
                i += 1;
            }
            cmds.push(Command::Eval(Eval {
                line: lineno,
                expr,
                at_ms,
                fail,
                ordered,
                expect: expect.unwrap_or(Expect::Vector(vector)),
            }));
        } else {
            return Err(err(format!("invalid command {l:?}")));
        }
    }
    Ok(cmds)
}

/// `eval[_fail|_ordered] instant [at <duration>] <expr>`.
fn parse_eval_line(l: &str) -> Result<(bool, bool, i64, String), String> {
    let rest = l.strip_prefix("eval").ok_or("expected eval")?;
    let (fail, ordered, rest) = if let Some(r) = rest.strip_prefix("_fail") {
        (true, false, r)
    } else if let Some(r) = rest.strip_prefix("_ordered") {
        (false, true, r)
    } else {
        (false, false, rest)
    };
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("instant")
        .ok_or("expected `instant` (range evaluations are not part of this format)")?
        .trim_start();
    let (at_ms, expr) = match rest.strip_prefix("at") {
        Some(r) if r.starts_with(char::is_whitespace) => {
            let r = r.trim_start();
            let end = r.find(char::is_whitespace).ok_or("missing expression")?;
            (parse_duration(&r[..end])?, r[end..].trim())
        }
        _ => (0, rest),
    };
    if expr.is_empty() {
        return Err("missing expression".into());
    }
    Ok((fail, ordered, at_ms, expr.to_string()))
}

/// A Prometheus duration (`1h30m`, `5m`, `10s`, `1ms`, `2d`, `1w`, `1y`) in
/// milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(0);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(ms)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A number as Go's `strconv.ParseInt(s, 0, 64)` or `ParseFloat` reads it.
pub fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(n) = int {
        let v = n as f64;
        return Some(if neg { -v } else { v });
    }
    let lower = s.to_ascii_lowercase();
    let plain = lower.trim_start_matches(['+', '-']);
    let ok = plain == "inf"
        || plain == "infinity"
        || plain == "nan"
        || (!plain.is_empty()
            && plain
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-')));
    if !ok {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Prometheus' test tolerance: equal, both NaN, or a relative error under
/// 1e-6 (absolute near zero).
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    let min_normal = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

/// What running one file gave.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    /// Failed evals: line and reason.
    pub failed: Vec<(usize, String)>,
}

/// Runs the commands of a test file against a fresh store.
pub fn run(cmds: &[Command]) -> Report {
    let mut report = Report::default();
    let mut store = new_store();
    for cmd in cmds {
        match cmd {
            Command::Clear => store = new_store(),
            Command::Load { series, .. } => {
                for (labels, samples) in series {
                    let id = store.intern(labels.clone());
                    let batch: Vec<_> = samples.iter().map(|&(t, v)| (id, t, v)).collect();
                    store.append(&batch);
                }
            }
            Command::Eval(ev) => match check_eval(&store, ev) {
                Ok(()) => report.passed += 1,
                Err(e) => report.failed.push((ev.line, format!("{}: {e}", ev.expr))),
            },
        }
    }
    report
}

fn new_store() -> SeriesStore {
    // Test files span hours from time 0: keep everything.
    SeriesStore::new(i64::MAX / 4)
}

/// The step of subqueries without one in Prometheus' test engine.
const SUBQUERY_STEP_MS: i64 = 60_000;

fn check_eval(store: &SeriesStore, ev: &Eval) -> Result<(), String> {
    let query = match Query::parse(&ev.expr) {
        Ok(q) => q.with_subquery_step(SUBQUERY_STEP_MS),
        Err(_) if ev.fail => return Ok(()),
        Err(e) => return Err(format!("parse: {e}")),
    };
    let mut cases = vec![(query.clone(), ev.at_ms, false)];
    if let Some(pinned) = query.pinned_at(ev.at_ms) {
        let t = ev.at_ms;
        let times: Vec<i64> = if t == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * t, 0, t / 5, t, 10 * t]
        };
        cases.extend(times.into_iter().map(|at| (pinned.clone(), at, true)));
    }
    for (q, t, is_pinned) in &cases {
        let pinned = if *is_pinned {
            format!(" (pinned to @ {}ms, evaluated at {t}ms)", ev.at_ms)
        } else {
            String::new()
        };
        let value = match q.value_at(store, *t) {
            Ok(v) => v,
            Err(_) if ev.fail => continue,
            Err(e) => return Err(format!("error{pinned}: {e}")),
        };
        if ev.fail {
            return Err(format!("expected an error{pinned}, got {value:?}"));
        }
        compare(ev, &value).map_err(|e| format!("{e}{pinned}"))?;
        // The same query in range mode must agree at the middle step.
        let range = q
            .range(store, t - 60_000, t + 60_000, 60_000)
            .map_err(|e| format!("range mode{pinned}: {e}"))?;
        if ev.ordered {
            continue;
        }
        let at_t: Vec<Sample> = range
            .iter()
            .filter_map(|(labels, points)| {
                let &(_, v) = points.iter().find(|(pt, _)| pt == t)?;
                Some(Sample {
                    labels: labels.clone(),
                    value: v,
                })
            })
            .collect();
        let value = match value {
            QueryValue::Scalar(_) => match at_t.first() {
                Some(s) => QueryValue::Scalar(s.value),
                None => return Err(format!("range mode{pinned}: no scalar at {t}")),
            },
            QueryValue::Vector(_) => QueryValue::Vector(at_t),
        };
        compare(ev, &value).map_err(|e| format!("range mode{pinned}: {e}"))?;
    }
    Ok(())
}

fn compare(ev: &Eval, got: &QueryValue) -> Result<(), String> {
    match (&ev.expect, got) {
        (Expect::Scalar(want), QueryValue::Scalar(v)) => {
            if almost_equal(*want, *v) {
                Ok(())
            } else {
                Err(format!("expected scalar {want} but got {v}"))
            }
        }
        (Expect::Vector(want), QueryValue::Vector(samples)) => {
            let mut seen = vec![false; want.len()];
            for (pos, s) in samples.iter().enumerate() {
                let Some(i) = want.iter().position(|(l, _)| *l == s.labels) else {
                    return Err(format!("unexpected metric {} in result", s.labels));
                };
                if ev.ordered && i != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        i + 1,
                        pos + 1
                    ));
                }
                if !almost_equal(want[i].1, s.value) {
                    return Err(format!(
                        "expected {} for {} but got {}",
                        want[i].1, s.labels, s.value
                    ));
                }
                seen[i] = true;
            }
            if let Some(i) = seen.iter().position(|s| !s) {
                return Err(format!(
                    "expected metric {} with {} not found (got {} samples)",
                    want[i].0,
                    want[i].1,
                    samples.len()
                ));
            }
            Ok(())
        }
        (Expect::Scalar(want), QueryValue::Vector(v)) => Err(format!(
            "expected scalar {want} but got a vector of {}",
            v.len()
        )),
        (Expect::Vector(_), QueryValue::Scalar(v)) => {
            Err(format!("expected a vector but got scalar {v}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        let cmds = parse(
            "# c\nload 5m\n  a{x=\"1\"} 1 2\n  a{x=\"1\"} 3\n\neval_ordered instant at 1h30m sum(a)\n  {} 3\n\neval instant at 1ms time()\n  0.001\nclear\n",
        )
        .unwrap();
        assert_eq!(cmds.len(), 4);
        let Command::Load { series, .. } = &cmds[0] else {
            panic!()
        };
        assert_eq!(series[0].1, vec![(0, 3.0)]);
        let Command::Eval(ev) = &cmds[1] else {
            panic!()
        };
        assert!(ev.ordered);
        assert_eq!(ev.at_ms, 5_400_000);
        assert_eq!(ev.expect, Expect::Vector(vec![(Labels::default(), 3.0)]));
        let Command::Eval(ev) = &cmds[2] else {
            panic!()
        };
        assert_eq!(ev.expect, Expect::Scalar(0.001));
    }

    #[test]
    fn numbers_parse_like_go() {
        assert_eq!(parse_number("0755"), Some(493.0));
        assert_eq!(parse_number("08"), Some(8.0));
        assert_eq!(parse_number("+Inf"), Some(f64::INFINITY));
        assert!(parse_number("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_number("{} 1"), None);
        assert_eq!(parse_number("metric"), None);
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(0.0, 1e-300));
    }
}
