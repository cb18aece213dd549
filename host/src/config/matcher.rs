//! Alertmanager label matchers: `name="value"`, `name!="value"`,
//! `name=~"regex"`, `name!~"regex"`.

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use super::validate::is_label_name;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`: the value matches the regex, anchored at both ends.
    Regex,
    /// `!~`: the value does not match the regex, anchored at both ends.
    NotRegex,
}

impl MatchOp {
    /// The operator as written: `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition on an alert's labels.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label the matcher looks at.
    pub name: String,
    /// How it compares the label's value.
    pub op: MatchOp,
    /// The value, or the regex as written (not anchored).
    pub value: String,
    /// For `=~` and `!~`: `value` compiled as `^(?:value)$`, as Prometheus
    /// and Alertmanager anchor it.
    pub regex: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the regex for `=~` and `!~`.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, String> {
        if !is_label_name(name) {
            return Err(format!("invalid label name `{name}` in matcher"));
        }
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex \"{value}\": {}", regex_reason(&e)))?,
            ),
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Parses Alertmanager's syntax: a label name, an operator, and a value
    /// that is either double-quoted (with `\"`, `\\` and `\n` escapes) or
    /// bare. Whitespace around the parts is ignored.
    pub fn parse(s: &str) -> Result<Matcher, String> {
        let invalid = |why: &str| format!("invalid matcher `{s}`: {why}");
        let text = s.trim();
        let name_len = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let (name, rest) = text.split_at(name_len);
        if name.is_empty() {
            return Err(invalid(
                "expected a label name, an operator (=, !=, =~, !~) and a value, like severity=\"critical\"",
            ));
        }
        let rest = rest.trim_start();
        let (op, rest) = [
            MatchOp::Regex,
            MatchOp::NotRegex,
            MatchOp::NotEqual,
            MatchOp::Equal,
        ]
        .into_iter()
        .find_map(|op| rest.strip_prefix(op.as_str()).map(|rest| (op, rest)))
        .ok_or_else(|| invalid("expected an operator after the label name: =, !=, =~ or !~"))?;
        let value = unquote(rest.trim()).map_err(|why| invalid(&why))?;
        Matcher::new(name, op, &value).map_err(|why| invalid(&why))
    }

    /// Whether a label value satisfies the matcher; a missing label matches
    /// as the empty string.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Only `Matcher::new` builds regex matchers, and it compiles the
            // regex; a hand-built one without it compares literally.
            (MatchOp::Regex, None) => value == self.value,
            (MatchOp::NotRegex, None) => value != self.value,
        }
    }
}

impl FromStr for Matcher {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Matcher::parse(s)
    }
}

/// Two matchers are equal when they are written the same.
impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// `name="value"`, quoted and escaped so that it parses back to the same matcher.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op)?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Alertmanager's value rules: a leading `"` needs a closing one; inside,
/// `\"`, `\\` and `\n` are escapes and any other backslash is literal; an
/// unescaped `"` anywhere else is an error.
fn unquote(raw: &str) -> Result<String, String> {
    let (body, quoted) = match raw.strip_prefix('"') {
        Some(body) => (body, true),
        None => (raw, false),
    };
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    let mut closed = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => out.push('\\'),
            },
            '"' if quoted && chars.peek().is_none() => closed = true,
            '"' => return Err("unescaped `\"` in the value".into()),
            c => out.push(c),
        }
    }
    if quoted && !closed {
        return Err("the value's closing `\"` is missing".into());
    }
    Ok(out)
}

/// The one-line reason from a regex error (its `Display` draws a caret
/// diagram over several lines).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map_or_else(
            || text.split_whitespace().collect::<Vec<_>>().join(" "),
            str::to_string,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Matcher {
        Matcher::parse(s).unwrap()
    }

    #[test]
    fn parses_every_operator() {
        for (s, op, value) in [
            (r#"severity="critical""#, MatchOp::Equal, "critical"),
            (r#"severity!="info""#, MatchOp::NotEqual, "info"),
            (r#"model=~"resnet.*""#, MatchOp::Regex, "resnet.*"),
            (r#"model!~"test|dev""#, MatchOp::NotRegex, "test|dev"),
            (r#"  env = "prod"  "#, MatchOp::Equal, "prod"),
            ("env=prod", MatchOp::Equal, "prod"),
            (r#"env="""#, MatchOp::Equal, ""),
            (
                r#"msg="say \"hi\"\n\\ \d""#,
                MatchOp::Equal,
                "say \"hi\"\n\\ \\d",
            ),
        ] {
            let matcher = m(s);
            assert_eq!(matcher.op, op, "{s}");
            assert_eq!(matcher.value, value, "{s}");
            assert_eq!(
                matcher.regex.is_some(),
                matches!(op, MatchOp::Regex | MatchOp::NotRegex)
            );
        }
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let re = m(r#"model=~"res.*""#);
        assert!(re.matches(Some("resnet")));
        assert!(!re.matches(Some("my-resnet")));
        let alt = m(r#"env=~"prod|staging""#);
        assert!(alt.matches(Some("staging")));
        assert!(!alt.matches(Some("prod-eu")));
        assert!(!m(r#"env!~"prod|staging""#).matches(Some("prod")));
    }

    #[test]
    fn a_missing_label_matches_as_empty() {
        assert!(m(r#"team="""#).matches(None));
        assert!(!m(r#"team="ml""#).matches(None));
        assert!(m(r#"team!="ml""#).matches(None));
        assert!(m(r#"team=~"ml|""#).matches(None));
        assert!(!m(r#"team=~".+""#).matches(None));
    }

    #[test]
    fn rejects_bad_matchers() {
        for bad in [
            "",
            r#"="x""#,
            r#"sev"x""#,
            r#"sev=="x""#,
            r#"1sev="x""#,
            r#"se-v="x""#,
            r#"sev="x"#,
            r#"sev="a"b""#,
            r#"sev=~"(""#,
        ] {
            assert!(Matcher::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn regex_errors_fit_on_one_line() {
        let err = Matcher::parse(r#"model=~"(""#).unwrap_err();
        assert_eq!(
            err,
            r#"invalid matcher `model=~"("`: invalid regex "(": unclosed group"#
        );
    }

    #[test]
    fn display_parses_back() {
        for s in [
            r#"a="x\"y\\z""#,
            r#"b!~"p.*""#,
            r#"c=~"""#,
            r#"d!="line\nbreak""#,
        ] {
            let matcher = m(s);
            assert_eq!(matcher.to_string(), s);
            assert_eq!(m(&matcher.to_string()), matcher);
        }
    }
}
