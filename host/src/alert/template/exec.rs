//! Evaluation of a parsed template against one alert's data.

use std::borrow::Cow;

use super::TemplateContext;
use super::funcs::{self, Env, Func};
use super::parse::{Cmd, CmdKind, Node, Operand, PREDEFINED, Pipe, Term};
use crate::alert::gofmt::{self, Arg};
use crate::store::labels::Labels;

/// A run-time value: the handful of Go types alert templates deal in.
#[derive(Clone, Debug)]
pub(crate) enum Value<'v> {
    /// Go's untyped nil (also a missing variable's value).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'v, str>),
    /// A `map[string]string`: `$labels`, `$externalLabels`.
    Map(&'v Labels),
    /// The template's dot: `.Labels`, `.Value`, `.ExternalLabels`, `.ExternalURL`.
    Root(&'v TemplateContext<'v>),
}

impl<'v> Value<'v> {
    /// The Go type name, for error messages that read like Go's.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map[string]string",
            Value::Root(_) => "struct",
        }
    }

    /// What `{{ value }}` prints: Go's `fmt.Print` of the value.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_v(*f),
            Value::Str(s) => s.to_string(),
            Value::Map(m) => map_text(m),
            Value::Root(c) => format!(
                "{{{} {} {} {}}}",
                map_text(c.labels),
                map_text(c.external_labels),
                c.external_url,
                gofmt::format_v(c.value)
            ),
        }
    }

    /// The value as `fmt.Sprintf` sees it.
    pub(crate) fn as_fmt_arg(&self) -> Arg<'_> {
        match self {
            Value::Str(s) => Arg::Str(s),
            Value::Int(i) => Arg::Int(*i),
            Value::Float(f) => Arg::Float(*f),
            Value::Bool(b) => Arg::Bool(*b),
            other => Arg::Other {
                type_name: other.type_name(),
                text: other.to_text(),
            },
        }
    }

    fn field(self, name: &str) -> Result<Value<'v>, String> {
        match self {
            // Prometheus runs templates with missingkey=zero: a missing
            // label reads as "".
            Value::Map(m) => Ok(Value::Str(Cow::Borrowed(m.get(name).unwrap_or("")))),
            Value::Root(c) => match name {
                "Labels" => Ok(Value::Map(c.labels)),
                "Value" => Ok(Value::Float(c.value)),
                "ExternalLabels" => Ok(Value::Map(c.external_labels)),
                "ExternalURL" => Ok(Value::Str(Cow::Borrowed(c.external_url))),
                _ => Err(format!(
                    "can't evaluate field {name} in alert template data"
                )),
            },
            Value::Nil => Err(format!("nil pointer evaluating interface {{}}.{name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }
}

/// Go's `map[k:v k2:v2]` notation (keys sorted, as fmt sorts them).
fn map_text(m: &Labels) -> String {
    let body: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", body.join(" "))
}

/// Go's notion of truth for `if`, `with`, `and`, `or`, `not`.
pub(crate) fn is_true(v: &Value<'_>) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        // NaN != 0, so NaN is true, as in Go.
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Root(_) => true,
    }
}

/// An error while running a template, at a byte offset of its source.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub off: usize,
    pub msg: String,
}

struct Exec<'v> {
    vars: Vec<(&'v str, Value<'v>)>,
    out: String,
    external_url: &'v str,
}

/// Runs a template.
pub(crate) fn execute<'v>(
    nodes: &'v [Node],
    ctx: &'v TemplateContext<'v>,
) -> Result<String, ExecError> {
    let predefined = [
        Value::Root(ctx),
        Value::Map(ctx.labels),
        Value::Float(ctx.value),
        Value::Map(ctx.external_labels),
        Value::Str(Cow::Borrowed(ctx.external_url)),
        Value::Float(ctx.score),
    ];
    let mut exec = Exec {
        vars: PREDEFINED.iter().copied().zip(predefined).collect(),
        out: String::new(),
        external_url: ctx.external_url,
    };
    exec.walk(nodes, &Value::Root(ctx))?;
    Ok(exec.out)
}

impl<'v> Exec<'v> {
    fn walk(&mut self, nodes: &'v [Node], dot: &Value<'v>) -> Result<(), ExecError> {
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
                    match self.pipe(pipe, dot)? {
                        Value::Map(m) if !m.is_empty() => {
                            for (k, v) in m.iter() {
                                let inner = self.vars.len();
                                let val = Value::Str(Cow::Borrowed(v));
                                match pipe.decl.as_slice() {
                                    [key, value] => {
                                        self.vars
                                            .push((key.as_str(), Value::Str(Cow::Borrowed(k))));
                                        self.vars.push((value.as_str(), val.clone()));
                                    }
                                    [value] => self.vars.push((value.as_str(), val.clone())),
                                    _ => {}
                                }
                                self.walk(body, &val)?;
                                self.vars.truncate(inner);
                            }
                        }
                        Value::Map(_) | Value::Nil => self.walk(otherwise, dot)?,
                        other => {
                            return Err(ExecError {
                                off: pipe.cmds.first().map_or(0, |c| c.off),
                                msg: format!("range can't iterate over {}", other.to_text()),
                            });
                        }
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    /// Binds a pipeline's declared variable (or assigns an existing one).
    fn declare(&mut self, pipe: &'v Pipe, v: Value<'v>) {
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

    fn pipe(&mut self, pipe: &'v Pipe, dot: &Value<'v>) -> Result<Value<'v>, ExecError> {
        let mut val: Option<Value<'v>> = None;
        for cmd in &pipe.cmds {
            val = Some(self.cmd(cmd, dot, val.take())?);
        }
        Ok(val.unwrap_or(Value::Nil))
    }

    fn cmd(
        &mut self,
        cmd: &'v Cmd,
        dot: &Value<'v>,
        piped: Option<Value<'v>>,
    ) -> Result<Value<'v>, ExecError> {
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
            let mut last = Value::Nil;
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

    fn operand(
        &mut self,
        op: &'v Operand,
        dot: &Value<'v>,
        off: usize,
    ) -> Result<Value<'v>, ExecError> {
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
            Term::Str(s) => Value::Str(Cow::Borrowed(s)),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => Value::Nil,
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
