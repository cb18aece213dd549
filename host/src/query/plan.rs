//! From `promql-parser`'s AST to the evaluator's plan.
//!
//! The plan is resolved once, when the rule loads: functions and operators
//! become enums, durations become milliseconds, label lists are sorted,
//! `label_replace` regexes are compiled and label names checked. Whatever
//! Prometheus 2.42 does not evaluate over float samples (native-histogram
//! functions, syntax and functions added after 2.42) is rejected here with
//! the construct and its position, so a rule never fails for that later.

use std::time::{Duration, SystemTime};

use promql_parser::label::MatchOp;
use promql_parser::parser::token;
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinaryExpr, Call as PCall, Expr, LabelModifier, Offset,
    SubqueryExpr, VectorMatchCardinality, VectorSelector,
};
use regex::Regex;

use super::value::LabelSpec;
use super::{LabelMatcher, QueryError};
use crate::store::labels::METRIC_NAME;

/// An expression ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    Selector(Selector),
    Matrix(Box<MatrixSel>),
    Subquery(Box<Subquery>),
    Call(Box<Call>),
    Aggregate(Box<Aggregate>),
    Binary(Box<Binary>),
    Neg(Box<Node>),
}

/// When a selector or subquery is evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum At {
    /// At each evaluation step.
    Step,
    /// `@ <timestamp>`, in milliseconds.
    Time(i64),
    /// `@ start()`: the first step of the whole query.
    Start,
    /// `@ end()`: the last step of the whole query.
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// The exact metric name, when a matcher pins it: selects from postings.
    pub name: Option<String>,
    /// Every matcher, the metric name included.
    pub matchers: Vec<LabelMatcher>,
    pub offset_ms: i64,
    pub at: At,
}

#[derive(Debug, Clone)]
pub(crate) struct MatrixSel {
    pub sel: Selector,
    pub range_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Subquery {
    pub expr: Node,
    pub range_ms: i64,
    /// `None`: the evaluation's default subquery step.
    pub step_ms: Option<i64>,
    pub offset_ms: i64,
    pub at: At,
}

#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub func: Func,
    pub args: Vec<Node>,
    /// `label_replace`'s arguments, resolved at load.
    pub replace: Option<Box<LabelReplace>>,
}

/// Functions of Prometheus 2.42 over float samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    // Over a range vector.
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    HoltWinters,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    LastOverTime,
    PresentOverTime,
    AbsentOverTime,
    // Over instant vectors and scalars.
    Abs,
    Ceil,
    Floor,
    Exp,
    Sqrt,
    Ln,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Rad,
    Deg,
    Sgn,
    Pi,
    Time,
    Timestamp,
    Vector,
    Scalar,
    Absent,
    Clamp,
    ClampMin,
    ClampMax,
    Round,
    Sort,
    SortDesc,
    HistogramQuantile,
    LabelReplace,
    LabelJoin,
    DaysInMonth,
    DayOfMonth,
    DayOfWeek,
    DayOfYear,
    Hour,
    Minute,
    Month,
    Year,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        use Func::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "holt_winters" => HoltWinters,
            "resets" => Resets,
            "changes" => Changes,
            "avg_over_time" => AvgOverTime,
            "min_over_time" => MinOverTime,
            "max_over_time" => MaxOverTime,
            "sum_over_time" => SumOverTime,
            "count_over_time" => CountOverTime,
            "quantile_over_time" => QuantileOverTime,
            "stddev_over_time" => StddevOverTime,
            "stdvar_over_time" => StdvarOverTime,
            "last_over_time" => LastOverTime,
            "present_over_time" => PresentOverTime,
            "absent_over_time" => AbsentOverTime,
            "abs" => Abs,
            "ceil" => Ceil,
            "floor" => Floor,
            "exp" => Exp,
            "sqrt" => Sqrt,
            "ln" => Ln,
            "log2" => Log2,
            "log10" => Log10,
            "sin" => Sin,
            "cos" => Cos,
            "tan" => Tan,
            "asin" => Asin,
            "acos" => Acos,
            "atan" => Atan,
            "sinh" => Sinh,
            "cosh" => Cosh,
            "tanh" => Tanh,
            "asinh" => Asinh,
            "acosh" => Acosh,
            "atanh" => Atanh,
            "rad" => Rad,
            "deg" => Deg,
            "sgn" => Sgn,
            "pi" => Pi,
            "time" => Time,
            "timestamp" => Timestamp,
            "vector" => Vector,
            "scalar" => Scalar,
            "absent" => Absent,
            "clamp" => Clamp,
            "clamp_min" => ClampMin,
            "clamp_max" => ClampMax,
            "round" => Round,
            "sort" => Sort,
            "sort_desc" => SortDesc,
            "histogram_quantile" => HistogramQuantile,
            "label_replace" => LabelReplace,
            "label_join" => LabelJoin,
            "days_in_month" => DaysInMonth,
            "day_of_month" => DayOfMonth,
            "day_of_week" => DayOfWeek,
            "day_of_year" => DayOfYear,
            "hour" => Hour,
            "minute" => Minute,
            "month" => Month,
            "year" => Year,
            _ => return None,
        })
    }

    /// Functions whose result depends on the evaluation time even when every
    /// selector has an `@` modifier (Prometheus' `AtModifierUnsafeFunctions`).
    pub fn is_at_unsafe(self) -> bool {
        use Func::*;
        matches!(
            self,
            DaysInMonth
                | DayOfMonth
                | DayOfWeek
                | DayOfYear
                | Hour
                | Minute
                | Month
                | Year
                | PredictLinear
                | Time
                | Timestamp
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub op: AggOp,
    pub param: Option<Node>,
    /// `count_values`' output label, checked at load.
    pub value_label: Option<String>,
    /// How samples are grouped: `by (...)` or `without (...)`.
    pub spec: LabelSpec,
    pub expr: Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Arithmetic drops the metric name; comparisons and `atan2` keep it.
    pub fn drops_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    pub return_bool: bool,
    pub card: Card,
    /// `on(...)` rather than `ignoring(...)`.
    pub on: bool,
    /// The labels listed in `on(...)`/`ignoring(...)`, sorted.
    pub matching: Vec<String>,
    /// `group_left(...)`/`group_right(...)` labels.
    pub include: Vec<String>,
    /// How samples of both sides are matched.
    pub spec: LabelSpec,
}

/// What a compiled call needs beyond its arguments.
#[derive(Debug, Clone)]
pub(crate) struct LabelReplace {
    pub dst: String,
    pub replacement: String,
    pub src: String,
    pub regex: Regex,
}

/// A compiled query: the plan and what the engine needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub root: Node,
}

/// Builds the plan for a parsed expression; `text` locates errors.
pub(crate) fn compile(expr: &Expr, text: &str) -> Result<Plan, QueryError> {
    let mut c = Compiler { text, depth: 0 };
    let root = c.node(expr)?;
    Ok(Plan { root })
}

struct Compiler<'t> {
    text: &'t str,
    /// Nesting depth, bounded so evaluation cannot exhaust the stack.
    depth: usize,
}

/// Deepest nesting of expressions accepted; real rules nest a handful.
const MAX_DEPTH: usize = 256;

impl Compiler<'_> {
    fn unsupported(&self, what: &str, token: &str, why: &str) -> QueryError {
        QueryError::new(format!(
            "{what}{} is not supported: {why}",
            position(self.text, token)
                .map(|(l, c)| format!(" at {l}:{c}"))
                .unwrap_or_default()
        ))
    }

    fn node(&mut self, expr: &Expr) -> Result<Node, QueryError> {
        if self.depth >= MAX_DEPTH {
            return Err(QueryError::new(format!(
                "the expression is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        self.depth += 1;
        let node = self.node_inner(expr);
        self.depth -= 1;
        node
    }

    fn node_inner(&mut self, expr: &Expr) -> Result<Node, QueryError> {
        Ok(match expr {
            Expr::Paren(p) => self.node(&p.expr)?,
            Expr::NumberLiteral(n) => Node::Number(n.val),
            Expr::StringLiteral(s) => Node::Str(s.val.clone()),
            Expr::VectorSelector(vs) => Node::Selector(self.selector(vs)?),
            Expr::MatrixSelector(ms) => Node::Matrix(Box::new(MatrixSel {
                sel: self.selector(&ms.vs)?,
                range_ms: duration_ms(ms.range),
            })),
            Expr::Subquery(sq) => Node::Subquery(Box::new(self.subquery(sq)?)),
            Expr::Unary(u) => match self.node(&u.expr)? {
                Node::Number(v) => Node::Number(-v),
                n => Node::Neg(Box::new(n)),
            },
            Expr::Call(call) => Node::Call(Box::new(self.call(call)?)),
            Expr::Aggregate(agg) => Node::Aggregate(Box::new(self.aggregate(agg)?)),
            Expr::Binary(b) => Node::Binary(Box::new(self.binary(b)?)),
            Expr::Extension(e) => {
                return Err(self.unsupported(
                    &format!("the extension `{}`", e.expr.name()),
                    e.expr.name(),
                    "not part of PromQL",
                ));
            }
        })
    }

    fn selector(&mut self, vs: &VectorSelector) -> Result<Selector, QueryError> {
        if !vs.matchers.or_matchers.is_empty() {
            return Err(self.unsupported(
                "`or` inside a selector",
                " or ",
                "it was added after Prometheus 2.42",
            ));
        }
        let mut name = vs.name.clone();
        let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
        if let Some(n) = &vs.name {
            matchers.push(LabelMatcher::new(
                METRIC_NAME.into(),
                MatchOp::Equal,
                n.clone(),
            ));
        }
        for m in &vs.matchers.matchers {
            if m.name == METRIC_NAME && m.op == MatchOp::Equal && name.is_none() {
                name = Some(m.value.clone());
            }
            matchers.push(LabelMatcher::new(
                m.name.clone(),
                m.op.clone(),
                m.value.clone(),
            ));
        }
        Ok(Selector {
            name,
            matchers,
            offset_ms: offset_ms(vs.offset.as_ref()),
            at: at(vs.at.as_ref()),
        })
    }

    fn subquery(&mut self, sq: &SubqueryExpr) -> Result<Subquery, QueryError> {
        let step_ms = sq.step.map(duration_ms);
        if step_ms == Some(0) {
            return Err(self.unsupported(
                "a subquery step of zero",
                ":0",
                "the step must be positive",
            ));
        }
        Ok(Subquery {
            expr: self.node(&sq.expr)?,
            range_ms: duration_ms(sq.range),
            step_ms,
            offset_ms: offset_ms(sq.offset.as_ref()),
            at: at(sq.at.as_ref()),
        })
    }

    fn call(&mut self, call: &PCall) -> Result<Call, QueryError> {
        let name = call.func.name;
        let Some(func) = Func::from_name(name) else {
            let why = if name.starts_with("histogram_") {
                "it applies to native histograms, which Vigil does not store"
            } else {
                "it is not a function of Prometheus 2.42"
            };
            return Err(self.unsupported(
                &format!("the function `{name}`"),
                &format!("{name}("),
                why,
            ));
        };
        let mut args = Vec::with_capacity(call.args.args.len());
        for a in &call.args.args {
            args.push(self.node(a)?);
        }
        let mut replace = None;
        match func {
            Func::LabelReplace => replace = Some(Box::new(label_replace(&args)?)),
            Func::LabelJoin => {
                for (i, a) in args.iter().enumerate().skip(1) {
                    let Node::Str(s) = a else { continue };
                    if i != 2 && !is_label_name(s) {
                        let role = if i == 1 { "destination" } else { "source" };
                        return Err(QueryError::new(format!(
                            "invalid {role} label name in label_join(): {s}"
                        )));
                    }
                }
            }
            _ => {}
        }
        Ok(Call {
            func,
            args,
            replace,
        })
    }

    fn aggregate(&mut self, agg: &AggregateExpr) -> Result<Aggregate, QueryError> {
        let op = match agg.op.id() {
            token::T_SUM => AggOp::Sum,
            token::T_AVG => AggOp::Avg,
            token::T_COUNT => AggOp::Count,
            token::T_MIN => AggOp::Min,
            token::T_MAX => AggOp::Max,
            token::T_GROUP => AggOp::Group,
            token::T_STDDEV => AggOp::Stddev,
            token::T_STDVAR => AggOp::Stdvar,
            token::T_TOPK => AggOp::Topk,
            token::T_BOTTOMK => AggOp::Bottomk,
            token::T_QUANTILE => AggOp::Quantile,
            token::T_COUNT_VALUES => AggOp::CountValues,
            _ => {
                let name = agg.op.to_string();
                return Err(self.unsupported(
                    &format!("the aggregation `{name}`"),
                    &name,
                    "it is not an aggregation of Prometheus 2.42",
                ));
            }
        };
        let (without, mut grouping) = match &agg.modifier {
            Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        grouping.sort();
        grouping.dedup();
        let param = match &agg.param {
            Some(p) => Some(self.node(p)?),
            None => None,
        };
        let mut value_label = None;
        if op == AggOp::CountValues {
            let Some(Node::Str(l)) = &param else {
                return Err(QueryError::new(
                    "count_values() takes a label name as its parameter".to_string(),
                ));
            };
            if !is_label_name(l) {
                return Err(QueryError::new(format!("invalid label name {l:?}")));
            }
            value_label = Some(l.clone());
        }
        let mut spec_labels = grouping.clone();
        if let (Some(l), false) = (&value_label, without) {
            spec_labels.push(l.clone());
        }
        let spec = if without {
            LabelSpec::ignoring(spec_labels)
        } else {
            LabelSpec::on(spec_labels)
        };
        Ok(Aggregate {
            op,
            param,
            value_label,
            spec,
            expr: self.node(&agg.expr)?,
        })
    }

    fn binary(&mut self, b: &BinaryExpr) -> Result<Binary, QueryError> {
        let op = match b.op.id() {
            token::T_ADD => BinOp::Add,
            token::T_SUB => BinOp::Sub,
            token::T_MUL => BinOp::Mul,
            token::T_DIV => BinOp::Div,
            token::T_MOD => BinOp::Mod,
            token::T_POW => BinOp::Pow,
            token::T_ATAN2 => BinOp::Atan2,
            token::T_EQLC => BinOp::Eq,
            token::T_NEQ => BinOp::Ne,
            token::T_GTR => BinOp::Gt,
            token::T_LSS => BinOp::Lt,
            token::T_GTE => BinOp::Ge,
            token::T_LTE => BinOp::Le,
            token::T_LAND => BinOp::And,
            token::T_LOR => BinOp::Or,
            token::T_LUNLESS => BinOp::Unless,
            _ => {
                return Err(QueryError::new(format!(
                    "the binary operator `{}` is not supported",
                    b.op
                )));
            }
        };
        let modifier = b.modifier.as_ref();
        if let Some(m) = modifier
            && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
        {
            return Err(self.unsupported(
                "the `fill` modifier",
                "fill",
                "it was added after Prometheus 2.42",
            ));
        }
        let card = match modifier.map(|m| &m.card) {
            Some(VectorMatchCardinality::ManyToOne(_)) => Card::ManyToOne,
            Some(VectorMatchCardinality::OneToMany(_)) => Card::OneToMany,
            Some(VectorMatchCardinality::ManyToMany) => Card::ManyToMany,
            _ if op.is_set() => Card::ManyToMany,
            _ => Card::OneToOne,
        };
        let include = modifier
            .and_then(|m| m.card.labels())
            .map(|l| l.labels.clone())
            .unwrap_or_default();
        let (on, mut matching) = match modifier.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
            None => (false, Vec::new()),
        };
        matching.sort();
        matching.dedup();
        let spec = if on {
            LabelSpec::on(matching.clone())
        } else {
            LabelSpec::ignoring(matching.clone())
        };
        Ok(Binary {
            op,
            lhs: self.node(&b.lhs)?,
            rhs: self.node(&b.rhs)?,
            return_bool: modifier.is_some_and(|m| m.return_bool),
            card,
            on,
            matching,
            include,
            spec,
        })
    }
}

/// Checks `label_replace`'s string arguments and compiles its regex, anchored
/// at both ends as Prometheus anchors it.
fn label_replace(args: &[Node]) -> Result<LabelReplace, QueryError> {
    let s = |i: usize| match args.get(i) {
        Some(Node::Str(s)) => Ok(s.clone()),
        _ => Err(QueryError::new(
            "label_replace() takes a vector and four strings".to_string(),
        )),
    };
    let (dst, replacement, src, re) = (s(1)?, s(2)?, s(3)?, s(4)?);
    let regex = Regex::new(&format!("^(?:{re})$")).map_err(|_| {
        QueryError::new(format!(
            "invalid regular expression in label_replace(): {re}"
        ))
    })?;
    if !is_label_name(&dst) {
        return Err(QueryError::new(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    Ok(LabelReplace {
        dst,
        replacement,
        src,
        regex,
    })
}

/// Whether `s` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
        None => 0,
    }
}

fn at(a: Option<&AtModifier>) -> At {
    match a {
        None => At::Step,
        Some(AtModifier::Start) => At::Start,
        Some(AtModifier::End) => At::End,
        Some(AtModifier::At(t)) => At::Time(match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => duration_ms(d),
            Err(e) => -duration_ms(e.duration()),
        }),
    }
}

/// Line and column (1-based) of the first occurrence of `token` in `text`.
fn position(text: &str, token: &str) -> Option<(usize, usize)> {
    let idx = text.find(token)?;
    let before = &text[..idx];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names() {
        assert!(is_label_name("le"));
        assert!(is_label_name("_x9"));
        assert!(!is_label_name("9x"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }

    #[test]
    fn positions_are_line_and_column() {
        assert_eq!(position("ab\ncd(x)", "cd("), Some((2, 1)));
        assert_eq!(position("sum(x)", "x"), Some((1, 5)));
    }
}
