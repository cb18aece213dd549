//! Where each plugin parameter is written, so that a plugin rejecting one
//! (in its `configure`, when rules and receivers are compiled) is reported
//! at that parameter rather than at the whole `params` table.
//!
//! Plugins name the parameter at the start of their message, in backticks,
//! as the SDK does: ``invalid params: `title`: template error at line 1,
//! column 14: ...``, ``invalid params: `to[0]` is not an e-mail address``,
//! or serde's ``unknown field `x`, expected ...``. A template error inside a
//! string written as is (no escapes) is mapped to its line and column in the
//! file.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::DeValue;

use super::Location;
use super::error::Diagnostics;

/// Where the parameters of one `params` table are written, by the path
/// plugins name them with: `url`, `headers.x`, `to[0]`, `params.replica`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamLocations {
    entries: BTreeMap<String, ParamLocation>,
}

/// Where one parameter is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ParamLocation {
    /// Its key; an array element's own position.
    key: Location,
    /// Its value (a string's opening quote).
    value: Location,
    /// For a string written as is: where its text starts, and how many lines
    /// it has. Positions inside the text then map to positions in the file.
    text: Option<(Location, usize)>,
}

impl ParamLocations {
    /// The parameters of a `params` value as decoded from the file.
    pub(crate) fn of(diag: &Diagnostics<'_>, params: &Spanned<DeValue<'_>>) -> Self {
        let mut out = ParamLocations::default();
        if let DeValue::Table(table) = params.get_ref() {
            for (key, value) in table.iter() {
                out.walk(diag, key.get_ref().to_string(), &key.span(), value);
            }
        }
        out
    }

    fn walk(
        &mut self,
        diag: &Diagnostics<'_>,
        path: String,
        key: &std::ops::Range<usize>,
        value: &Spanned<DeValue<'_>>,
    ) {
        match value.get_ref() {
            DeValue::Table(table) => {
                for (k, v) in table.iter() {
                    self.walk(diag, format!("{path}.{}", k.get_ref()), &k.span(), v);
                }
            }
            DeValue::Array(array) => {
                for (i, v) in array.iter().enumerate() {
                    self.walk(diag, format!("{path}[{i}]"), &v.span(), v);
                }
            }
            _ => {}
        }
        let text = match value.get_ref() {
            DeValue::String(decoded) => verbatim_text(diag.text(), &value.span(), decoded)
                .map(|start| (diag.location(start), decoded.split('\n').count())),
            _ => None,
        };
        let at = ParamLocation {
            key: diag.at(key),
            value: diag.at(&value.span()),
            text,
        };
        // A dotted key (`a.b = 1`) and a table header (`[x.a]`) can both
        // name `a`: keep the first.
        self.entries.entry(path).or_insert(at);
    }

    /// Where a plugin's `configure` error is about, when the message names a
    /// parameter written in this table: an unknown field's key, a bad
    /// value's value, or the exact spot of a template error. `None` when the
    /// message names none (a missing field, say).
    pub fn locate(&self, message: &str) -> Option<Location> {
        let message = message.trim_start();
        let message = message.strip_prefix("invalid params:").unwrap_or(message);
        let message = message.trim_start();
        if let Some(rest) = message.strip_prefix("unknown field ") {
            let name = backticked(rest)?.0;
            return self.unknown_key(name);
        }
        let (path, rest) = backticked(message)?;
        let (found, at) = self.nearest(path)?;
        if found != path {
            return Some(at.value);
        }
        let rest = rest.trim_start_matches(':').trim_start();
        Some(template_position(rest, at.text).unwrap_or(at.value))
    }

    /// An unknown field's key: at the top level, or else the one nested key
    /// of that name (serde does not say which table it is in).
    fn unknown_key(&self, name: &str) -> Option<Location> {
        if let Some(at) = self.entries.get(name) {
            return Some(at.key);
        }
        let mut nested = self
            .entries
            .iter()
            .filter(|(path, _)| path.strip_suffix(name).is_some_and(|p| p.ends_with('.')));
        match (nested.next(), nested.next()) {
            (Some((_, at)), None) => Some(at.key),
            _ => None,
        }
    }

    /// The parameter at `path`, or the closest enclosing one written (a
    /// plugin may name an element or field that is not written as such).
    fn nearest<'p>(&self, mut path: &'p str) -> Option<(&'p str, &ParamLocation)> {
        loop {
            if let Some(at) = self.entries.get(path) {
                return Some((path, at));
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }
}

/// The text between the first pair of backticks at the start of `s`, and
/// what follows the closing one.
fn backticked(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('`')?;
    let end = inner.find('`')?;
    let name = &inner[..end];
    (!name.is_empty()).then(|| (name, &inner[end + 1..]))
}

/// `template error at line L, column C` (1-based, the column in
/// characters), mapped into a string whose text starts at `text`.
fn template_position(message: &str, text: Option<(Location, usize)>) -> Option<Location> {
    let (start, lines) = text?;
    let rest = message.strip_prefix("template error at line ")?;
    let (line, rest) = rest.split_once(", column ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let line: u32 = line.parse().ok()?;
    let column: u32 = column.parse().ok()?;
    if line == 0 || column == 0 || line as usize > lines {
        return None;
    }
    Some(if line == 1 {
        Location::new(start.line, start.column.saturating_add(column - 1))
    } else {
        Location::new(start.line.saturating_add(line - 1), column)
    })
}

/// Where the text of the string literal at `span` starts, if the literal
/// holds its value as is: a literal string (`'...'`, `'''...'''`) or a
/// basic one without escapes or line-ending backslashes. `None` otherwise.
fn verbatim_text(file: &str, span: &std::ops::Range<usize>, decoded: &str) -> Option<usize> {
    let raw = file.get(span.clone())?;
    let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3
    } else if raw.starts_with(['"', '\'']) {
        1
    } else {
        return None;
    };
    let mut body = raw.get(quote..raw.len().checked_sub(quote)?)?;
    let mut start = span.start + quote;
    if quote == 3 {
        // A line break right after the opening quotes is not part of the
        // value.
        for newline in ["\r\n", "\n"] {
            if let Some(rest) = body.strip_prefix(newline) {
                body = rest;
                start += newline.len();
                break;
            }
        }
    }
    (body == decoded).then_some(start)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use toml::de::DeTable;

    use super::*;

    /// The locations of the `params` of the first receiver in `text`.
    fn locations(text: &str) -> ParamLocations {
        let diag = Diagnostics::new(Path::new("v.toml"), text);
        let doc = DeTable::parse(text).unwrap().into_inner();
        let DeValue::Array(receivers) = doc["receivers"].get_ref() else {
            panic!("no [[receivers]]");
        };
        let DeValue::Table(receiver) = receivers.iter().next().unwrap().get_ref() else {
            panic!("not a table");
        };
        ParamLocations::of(&diag, &receiver["params"])
    }

    fn at(line: u32, column: u32) -> Option<Location> {
        Some(Location::new(line, column))
    }

    #[test]
    fn errors_point_at_the_value_they_name() {
        let l = locations(
            "[[receivers]]\n\
             params = { url = 3, to = ['a', 'b'], headers = { X-A = 'x' } }\n",
        );
        assert_eq!(
            l.locate("invalid params: `url`: invalid type: integer `3`, expected a string"),
            at(2, 18)
        );
        assert_eq!(l.locate("`to[1]` is not an e-mail address"), at(2, 32));
        assert_eq!(
            l.locate("invalid params: `headers.X-A` is not valid"),
            at(2, 56)
        );
        // A path that is not written as such: its closest written parent.
        assert_eq!(l.locate("invalid params: `to[7].x`: bad"), at(2, 26));
        assert_eq!(l.locate("invalid params: `headers.B`: bad"), at(2, 48));
    }

    #[test]
    fn unknown_fields_point_at_their_key() {
        let l = locations(
            "[[receivers]]\n\
             params = { url = 'u', tilte = 'x', params = { replcia = 1 } }\n",
        );
        let msg = "invalid params: unknown field `tilte`, expected `url` or `title`";
        assert_eq!(l.locate(msg), at(2, 23));
        // serde does not say where a nested unknown field is: it is found
        // when only one key has that name.
        assert_eq!(
            l.locate("unknown field `replcia`, expected `replica`"),
            at(2, 47)
        );
        assert_eq!(l.locate("unknown field `nowhere`"), None);
    }

    #[test]
    fn messages_without_a_written_parameter_have_no_location() {
        let l = locations("[[receivers]]\nparams = { url = 'u' }\n");
        assert_eq!(l.locate("invalid params: missing field `to`"), None);
        assert_eq!(l.locate("invalid params: `to` is required"), None);
        assert_eq!(l.locate("invalid params: expected `url`"), None);
        assert_eq!(l.locate("invalid params: ``: x"), None);
        assert_eq!(l.locate("invalid params: `url"), None);
        assert_eq!(l.locate(""), None);
    }

    #[test]
    fn template_errors_map_into_strings_written_as_is() {
        let text = "[[receivers]]\n\
                    [receivers.params]\n\
                    title = \"{{ .Nope\"\n\
                    lit = '{{ x }'\n\
                    esc = \"\\t{{ .A\"\n\
                    more.body = \"\"\"\n{{ range .Alerts }}\n- {{ .Labels.model | shout }}\n{{ end }}\"\"\"\n\
                    [receivers.params.other]\n\
                    same = '''{{ a }}\n  {{ b }'''\n";
        let l = locations(text);
        let err = |param: &str, line: u32, column: u32| {
            format!("invalid params: `{param}`: template error at line {line}, column {column}: x")
        };
        assert_eq!(l.locate(&err("title", 1, 1)), at(3, 10));
        assert_eq!(l.locate(&err("title", 1, 4)), at(3, 13));
        assert_eq!(l.locate(&err("lit", 1, 6)), at(4, 13));
        assert_eq!(l.locate(&err("more.body", 2, 22)), at(8, 22));
        assert_eq!(l.locate(&err("other.same", 1, 3)), at(11, 13));
        assert_eq!(l.locate(&err("other.same", 2, 8)), at(12, 8));
        // With an escape, the string's start.
        assert_eq!(l.locate(&err("esc", 1, 2)), at(5, 7));
        // A line the string does not have, or a malformed position: the
        // string's start.
        assert_eq!(l.locate(&err("title", 2, 1)), at(3, 9));
        assert_eq!(
            l.locate("invalid params: `title`: template error at line x, column 1"),
            at(3, 9)
        );
    }

    #[test]
    fn parsed_rules_and_receivers_keep_their_parameters_locations() {
        let config = crate::config::parse(
            Path::new("v.toml"),
            "[[rules]]\n\
             name = \"a\"\n\
             query = \"up\"\n\
             params = { above = 1 }\n\
             [[rules]]\n\
             name = \"b\"\n\
             query = \"up\"\n\
             [[receivers]]\n\
             name = \"r\"\n\
             notifier = \"slack\"\n\
             [receivers.params]\n\
             url = \"u\"\n\
             [route]\n\
             receiver = \"r\"\n",
        )
        .unwrap();
        let [a, b] = &config.rules[..] else {
            panic!("two rules");
        };
        assert_eq!(a.params_written.locate("`above`: bad"), at(4, 20));
        assert_eq!(b.params_written, ParamLocations::default());
        let r = &config.receivers[0];
        assert_eq!(r.params_written.locate("`url`: bad"), at(12, 7));
    }

    #[test]
    fn verbatim_text_needs_the_literal_to_equal_its_value() {
        let span = |s: &str| 0..s.len();
        for (raw, value, start) in [
            ("\"ab\"", "ab", Some(1)),
            ("'a\\b'", "a\\b", Some(1)),
            ("\"a\\\\b\"", "a\\b", None),
            ("\"\"\"\nab\"\"\"", "ab", Some(4)),
            ("'''\r\nab'''", "ab", Some(5)),
            ("\"\"\"ab\\\n  c\"\"\"", "abc", None),
            ("\"\"\"a\"\"\"\"", "a\"", Some(3)),
        ] {
            assert_eq!(verbatim_text(raw, &span(raw), value), start, "{raw}");
        }
    }
}
