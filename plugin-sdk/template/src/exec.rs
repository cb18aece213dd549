//! Evaluation of a parsed template against its data.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::funcs::{self, Env, Func};
use crate::gofmt::{self, Arg};
use crate::humanize::go_time_string;
use crate::parse::{Cmd, CmdKind, Node, Operand, Pipe, Term};
use crate::value::{LabelMap, Value};

/// Unix milliseconds of Go's zero `time.Time`, 0001-01-01 00:00:00 UTC.
const GO_ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// A run-time value: a [`Value`] borrowed from the data, or one computed
/// while the template runs.
#[derive(Clone)]
pub(crate) enum V<'v> {
    /// Go's untyped nil (also a missing variable's value).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'v, str>),
    Time(Option<i64>),
    /// A `map[string]string`: `$labels`, `$externalLabels`.
    Labels(&'v dyn LabelMap),
    /// Alertmanager's `KV`.
    Kv(&'v dyn LabelMap),
    Map(&'v BTreeMap<String, Value<'v>>),
    Struct(&'v [(&'static str, Value<'v>)]),
    ListRef(&'v [Value<'v>]),
    List(Rc<Vec<V<'v>>>),
    /// Alertmanager's `Pairs` (what `KV.SortedPairs` returns).
    Pairs(Rc<Vec<(&'v str, &'v str)>>),
    /// Alertmanager's `Pair`: `.Name`, `.Value`.
    Pair(&'v str, &'v str),
}

impl<'v> V<'v> {
    /// Borrows a data value.
    pub(crate) fn of(v: &'v Value<'v>) -> V<'v> {
        match v {
            Value::Nil => V::Nil,
            Value::Bool(b) => V::Bool(*b),
            Value::Int(i) => V::Int(*i),
            Value::Float(f) => V::Float(*f),
            Value::Str(s) => V::Str(Cow::Borrowed(s)),
            Value::Time(t) => V::Time(*t),
            Value::Labels(m) => V::Labels(*m),
            Value::Kv(m) => V::Kv(m),
            Value::Map(m) => V::Map(m),
            Value::Struct(s) => V::Struct(s),
            Value::List(l) => V::ListRef(l),
        }
    }

    /// The Go type name, for error messages that read like Go's.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            V::Nil => "nil",
            V::Bool(_) => "bool",
            V::Int(_) => "int",
            V::Float(_) => "float64",
            V::Str(_) => "string",
            V::Time(_) => "time.Time",
            V::Labels(_) => "map[string]string",
            V::Kv(_) => "template.KV",
            V::Map(_) => "map[string]interface {}",
            V::Struct(_) => "struct",
            V::ListRef(_) | V::List(_) => "[]interface {}",
            V::Pairs(_) => "template.Pairs",
            V::Pair(..) => "template.Pair",
        }
    }

    /// What `{{ value }}` prints: Go's `fmt.Print` of the value.
    pub(crate) fn to_text(&self) -> String {
        match self {
            V::Nil => "<no value>".to_string(),
            other => other.fmt_inner(),
        }
    }

    /// Go's `%v` of the value inside a composite (nil is `<nil>` there).
    fn fmt_inner(&self) -> String {
        match self {
            V::Nil => "<nil>".to_string(),
            V::Bool(b) => b.to_string(),
            V::Int(i) => i.to_string(),
            V::Float(f) => gofmt::format_v(*f),
            V::Str(s) => s.to_string(),
            V::Time(t) => time_text(*t),
            V::Labels(m) => map_text(*m),
            V::Kv(m) => pairs_text(&sorted_pairs(*m)),
            V::Map(m) => {
                let body: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", V::of(v).fmt_inner()))
                    .collect();
                format!("map[{}]", body.join(" "))
            }
            V::Struct(fields) => {
                let body: Vec<String> = fields.iter().map(|(_, v)| V::of(v).fmt_inner()).collect();
                format!("{{{}}}", body.join(" "))
            }
            V::ListRef(l) => {
                let body: Vec<String> = l.iter().map(|v| V::of(v).fmt_inner()).collect();
                format!("[{}]", body.join(" "))
            }
            V::List(l) => {
                let body: Vec<String> = l.iter().map(V::fmt_inner).collect();
                format!("[{}]", body.join(" "))
            }
            V::Pairs(p) => pairs_text(p),
            V::Pair(k, v) => format!("{{{k} {v}}}"),
        }
    }

    /// The value as `fmt.Sprintf` sees it.
    pub(crate) fn as_fmt_arg(&self) -> Arg<'_> {
        match self {
            V::Str(s) => Arg::Str(s),
            V::Int(i) => Arg::Int(*i),
            V::Float(f) => Arg::Float(*f),
            V::Bool(b) => Arg::Bool(*b),
            other => Arg::Other {
                type_name: other.type_name(),
                text: other.to_text(),
            },
        }
    }

    /// The list's elements, if it is a list.
    pub(crate) fn elements(&self) -> Option<Vec<V<'v>>> {
        match self {
            V::ListRef(l) => Some(l.iter().map(V::of).collect()),
            V::List(l) => Some(l.as_ref().clone()),
            V::Pairs(p) => Some(p.iter().map(|&(k, v)| V::Pair(k, v)).collect()),
            _ => None,
        }
    }

    /// Length for `len` and truth, of the things that have one.
    pub(crate) fn length(&self) -> Option<usize> {
        match self {
            V::Str(s) => Some(s.len()),
            V::Labels(m) | V::Kv(m) => Some(m.len()),
            V::Map(m) => Some(m.len()),
            V::ListRef(l) => Some(l.len()),
            V::List(l) => Some(l.len()),
            V::Pairs(p) => Some(p.len()),
            _ => None,
        }
    }

    pub(crate) fn field(self, name: &str) -> Result<V<'v>, String> {
        match self {
            // Prometheus and Alertmanager run templates with
            // missingkey=zero: a missing label reads as "".
            V::Labels(m) => Ok(V::Str(Cow::Borrowed(m.get(name).unwrap_or("")))),
            // Methods win over keys, as in Go.
            V::Kv(m) => Ok(match name {
                "SortedPairs" => V::Pairs(Rc::new(sorted_pairs(m))),
                "Names" => str_list(sorted_pairs(m).into_iter().map(|(k, _)| k)),
                "Values" => str_list(sorted_pairs(m).into_iter().map(|(_, v)| v)),
                "String" => V::Str(Cow::Owned(pairs_text(&sorted_pairs(m)))),
                "Remove" => {
                    return Err(
                        "method Remove needs arguments, which Vigil templates do not support"
                            .to_string(),
                    );
                }
                _ => V::Str(Cow::Borrowed(m.get(name).unwrap_or(""))),
            }),
            V::Map(m) => Ok(m.get(name).map_or(V::Nil, V::of)),
            V::Struct(fields) => fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| V::of(v))
                .ok_or_else(|| format!("can't evaluate field {name} in type struct")),
            V::Pairs(p) => match name {
                "Names" => Ok(str_list(p.iter().map(|(k, _)| *k))),
                "Values" => Ok(str_list(p.iter().map(|(_, v)| *v))),
                "String" => Ok(V::Str(Cow::Owned(pairs_text(&p)))),
                _ => Err(format!(
                    "can't evaluate field {name} in type template.Pairs"
                )),
            },
            V::Pair(k, v) => match name {
                "Name" => Ok(V::Str(Cow::Borrowed(k))),
                "Value" => Ok(V::Str(Cow::Borrowed(v))),
                _ => Err(format!("can't evaluate field {name} in type template.Pair")),
            },
            V::Time(t) => {
                let ms = t.unwrap_or(GO_ZERO_TIME_MS);
                match name {
                    "Unix" => Ok(V::Int(ms.div_euclid(1000))),
                    "UnixMilli" => Ok(V::Int(ms)),
                    "UTC" => Ok(V::Time(t)),
                    "IsZero" => Ok(V::Bool(t.is_none())),
                    "String" => Ok(V::Str(Cow::Owned(time_text(t)))),
                    _ => Err(format!(
                        "can't evaluate field {name} in type time.Time (Vigil templates support .Unix, .UnixMilli, .UTC, .IsZero and .String)"
                    )),
                }
            }
            ref list @ (V::ListRef(_) | V::List(_)) if matches!(name, "Firing" | "Resolved") => {
                let want = if name == "Firing" {
                    "firing"
                } else {
                    "resolved"
                };
                let items = list.elements().unwrap_or_default();
                Ok(V::List(Rc::new(
                    items
                        .into_iter()
                        .filter(|a| {
                            a.clone()
                                .field("Status")
                                .is_ok_and(|s| matches!(s, V::Str(s) if s == want))
                        })
                        .collect(),
                )))
            }
            V::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }
}

fn str_list<'v>(items: impl Iterator<Item = &'v str>) -> V<'v> {
    V::List(Rc::new(items.map(|s| V::Str(Cow::Borrowed(s))).collect()))
}

/// Go's `time.Time.String()`.
fn time_text(t: Option<i64>) -> String {
    go_time_string(t.unwrap_or(GO_ZERO_TIME_MS))
}

/// Go's `map[k:v k2:v2]` notation (keys sorted, as fmt sorts them).
fn map_text(m: &dyn LabelMap) -> String {
    let body: Vec<String> = m.pairs().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", body.join(" "))
}

/// Alertmanager's `KV.SortedPairs`: `alertname` first, then by name.
fn sorted_pairs(m: &dyn LabelMap) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(m.len());
    out.extend(m.pairs().filter(|(k, _)| *k == "alertname"));
    out.extend(m.pairs().filter(|(k, _)| *k != "alertname"));
    out
}

/// Alertmanager's `Pairs.String`: `a=1, b=2`.
fn pairs_text(p: &[(&str, &str)]) -> String {
    let body: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    body.join(", ")
}

/// Go's notion of truth for `if`, `with`, `and`, `or`, `not`.
pub(crate) fn is_true(v: &V<'_>) -> bool {
    match v {
        V::Nil => false,
        V::Bool(b) => *b,
        V::Int(i) => *i != 0,
        // NaN != 0, so NaN is true, as in Go.
        V::Float(f) => *f != 0.0,
        V::Time(_) | V::Struct(_) | V::Pair(..) => true,
        other => other.length().is_some_and(|n| n > 0),
    }
}

/// An error while running a template, at a byte offset of its source.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub off: usize,
    pub msg: String,
}

struct Exec<'v> {
    vars: Vec<(&'v str, V<'v>)>,
    out: String,
    external_url: &'v str,
}

/// Runs a template: `dot` is the data, `vars` the predefined variables
/// (`$` is always the data itself).
pub(crate) fn execute<'v>(
    nodes: &'v [Node],
    dot: &'v Value<'v>,
    vars: impl IntoIterator<Item = (&'v str, V<'v>)>,
) -> Result<String, ExecError> {
    let dot = V::of(dot);
    // `externalURL` and `pathPrefix` read the data's `ExternalURL`, which
    // both Prometheus' and Alertmanager's data have.
    let external_url = match dot.clone().field("ExternalURL") {
        Ok(V::Str(Cow::Borrowed(s))) => s,
        _ => "",
    };
    let mut exec = Exec {
        vars: std::iter::once(("$", dot.clone())).chain(vars).collect(),
        out: String::new(),
        external_url,
    };
    exec.walk(nodes, &dot)?;
    Ok(exec.out)
}

impl<'v> Exec<'v> {
    fn walk(&mut self, nodes: &'v [Node], dot: &V<'v>) -> Result<(), ExecError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        self.out.push_str(&v.to_text());
                    } else {
                        self.declare(pipe, v);
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (cond, body) in branches {
                        let v = self.pipe(cond, dot)?;
                        let truth = is_true(&v);
                        self.declare(cond, v);
                        if truth {
                            self.walk(body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    self.declare(pipe, v.clone());
                    if is_true(&v) {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let items: Vec<(V<'v>, V<'v>)> = match &v {
                        V::Labels(m) | V::Kv(m) => m
                            .pairs()
                            .map(|(k, v)| (V::Str(Cow::Borrowed(k)), V::Str(Cow::Borrowed(v))))
                            .collect(),
                        V::Map(m) => m
                            .iter()
                            .map(|(k, v)| (V::Str(Cow::Borrowed(k.as_str())), V::of(v)))
                            .collect(),
                        V::Nil => Vec::new(),
                        other => match other.elements() {
                            Some(items) => items
                                .into_iter()
                                .enumerate()
                                .map(|(i, v)| (V::Int(i64::try_from(i).unwrap_or(i64::MAX)), v))
                                .collect(),
                            None => {
                                return Err(ExecError {
                                    off: pipe.cmds.first().map_or(0, |c| c.off),
                                    msg: format!("range can't iterate over {}", other.to_text()),
                                });
                            }
                        },
                    };
                    if items.is_empty() {
                        self.walk(otherwise, dot)?;
                    }
                    for (k, val) in items {
                        let inner = self.vars.len();
                        match pipe.decl.as_slice() {
                            [key, value] => {
                                self.vars.push((key.as_str(), k));
                                self.vars.push((value.as_str(), val.clone()));
                            }
                            [value] => self.vars.push((value.as_str(), val.clone())),
                            _ => {}
                        }
                        self.walk(body, &val)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    /// Binds a pipeline's declared variable (or assigns an existing one).
    fn declare(&mut self, pipe: &'v Pipe, v: V<'v>) {
        let Some(name) = pipe.decl.first() else {
            return;
        };
        if pipe.assign {
            if let Some(slot) = self
                .vars
                .iter_mut()
                .rev()
                .find(|(n, _)| *n == name.as_str())
            {
                slot.1 = v;
            }
        } else {
            self.vars.push((name.as_str(), v));
        }
    }

    fn pipe(&mut self, pipe: &'v Pipe, dot: &V<'v>) -> Result<V<'v>, ExecError> {
        let mut val: Option<V<'v>> = None;
        for cmd in &pipe.cmds {
            val = Some(self.cmd(cmd, dot, val.take())?);
        }
        Ok(val.unwrap_or(V::Nil))
    }

    fn cmd(&mut self, cmd: &'v Cmd, dot: &V<'v>, piped: Option<V<'v>>) -> Result<V<'v>, ExecError> {
        let (func, args, regex) = match &cmd.kind {
            CmdKind::Value(op) => return self.operand(op, dot, cmd.off),
            CmdKind::Call { func, args, regex } => (*func, args, regex),
        };
        let fail = |msg: String| ExecError {
            off: cmd.off,
            msg: format!("error calling {}: {msg}", funcs::name(func)),
        };
        if matches!(func, Func::And | Func::Or) {
            // Go 1.18+ short-circuits: stop at the first deciding operand.
            let mut last = V::Nil;
            for op in args {
                last = self.operand(op, dot, cmd.off)?;
                if is_true(&last) == (func == Func::Or) {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for op in args {
            vals.push(self.operand(op, dot, cmd.off)?);
        }
        vals.extend(piped);
        let env = Env {
            external_url: self.external_url,
            regex: regex.as_ref(),
        };
        funcs::call(func, vals, &env).map_err(fail)
    }

    fn operand(&mut self, op: &'v Operand, dot: &V<'v>, off: usize) -> Result<V<'v>, ExecError> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| *n == name.as_str())
                .map(|(_, v)| v.clone())
                .ok_or_else(|| ExecError {
                    off,
                    msg: format!("undefined variable: {name}"),
                })?,
            Term::Str(s) => V::Str(Cow::Borrowed(s)),
            Term::Int(i) => V::Int(*i),
            Term::Float(f) => V::Float(*f),
            Term::Bool(b) => V::Bool(*b),
            Term::Nil => V::Nil,
            Term::Call(func) => {
                let env = Env {
                    external_url: self.external_url,
                    regex: None,
                };
                funcs::call(*func, Vec::new(), &env).map_err(|msg| ExecError {
                    off,
                    msg: format!("error calling {}: {msg}", funcs::name(*func)),
                })?
            }
            Term::Pipe(p) => self.pipe(p, dot)?,
        };
        for f in &op.fields {
            v = v.field(f).map_err(|msg| ExecError { off, msg })?;
        }
        Ok(v)
    }
}
