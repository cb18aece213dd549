//! The data a template runs over: a tree of Go-like values.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A string-to-string map a template can read without copying it, such as
/// a label set.
///
/// Implemented for `BTreeMap<String, String>`; the Vigil host implements it
/// for its `Labels`, so rendering an alert annotation borrows the labels.
pub trait LabelMap {
    /// The value of `name`, if present.
    fn get(&self, name: &str) -> Option<&str>;

    /// How many entries there are.
    fn len(&self) -> usize;

    /// Whether there are no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, sorted by name (Go's `range` and `fmt` sort map keys).
    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_>;
}

impl LabelMap for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }

    fn len(&self) -> usize {
        BTreeMap::len(self)
    }

    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        Box::new(self.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// A value in a template's data: what Go's `interface{}` would hold.
///
/// Maps come in the three flavours templates see in Prometheus and
/// Alertmanager, because Go prints them and looks fields up in them
/// differently:
///
/// * [`Value::Labels`] is a `map[string]string` (Prometheus' `$labels`):
///   a missing key reads as `""`, printing gives `map[a:1 b:2]`.
/// * [`Value::Kv`] is Alertmanager's `KV`: a missing key reads as `""`, it
///   has the methods `.SortedPairs`, `.Names`, `.Values` and `.String`, and
///   printing gives `a=1, b=2` (`alertname` first).
/// * [`Value::Map`] is a `map[string]interface{}`: a missing key reads as
///   nil, which prints `<no value>`.
///
/// [`Value::Struct`] is a Go struct: a missing field is an error. A
/// [`Value::List`] of structs or maps with a `Status` field also has
/// Alertmanager's `Alerts` methods `.Firing` and `.Resolved`.
#[derive(Clone)]
pub enum Value<'a> {
    /// Go's untyped nil; prints `<no value>`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float; prints as Go's `%v`.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// A `time.Time` in UTC, as Unix milliseconds; `None` is Go's zero
    /// time (`0001-01-01 00:00:00 +0000 UTC`). Prints as `time.Time` does;
    /// has the methods `.Unix`, `.UnixMilli`, `.UTC` and `.String`.
    Time(Option<i64>),
    /// A borrowed `map[string]string`.
    Labels(&'a dyn LabelMap),
    /// Alertmanager's `KV`.
    Kv(BTreeMap<String, String>),
    /// A `map[string]interface{}`.
    Map(BTreeMap<String, Value<'a>>),
    /// A struct: named fields in declaration order.
    Struct(Vec<(&'static str, Value<'a>)>),
    /// A slice.
    List(Vec<Value<'a>>),
}

impl Value<'_> {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value<'static> {
        Value::Str(Cow::Owned(s.into()))
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Int(i) => f.debug_tuple("Int").field(i).finish(),
            Value::Float(x) => f.debug_tuple("Float").field(x).finish(),
            Value::Str(s) => f.debug_tuple("Str").field(s).finish(),
            Value::Time(t) => f.debug_tuple("Time").field(t).finish(),
            Value::Labels(m) => f.debug_map().entries(m.pairs()).finish(),
            Value::Kv(m) => f.debug_tuple("Kv").field(m).finish(),
            Value::Map(m) => f.debug_tuple("Map").field(m).finish(),
            Value::Struct(s) => f.debug_tuple("Struct").field(s).finish(),
            Value::List(l) => f.debug_tuple("List").field(l).finish(),
        }
    }
}

impl From<&str> for Value<'static> {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<String> for Value<'static> {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<f64> for Value<'static> {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<i64> for Value<'static> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value<'static> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
