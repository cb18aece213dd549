//! Configuration errors: every one carries the file and, when it has one, the
//! line and column it is about.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A position in the configuration file, 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

impl Location {
    /// A location from a 1-based line and column.
    pub fn new(line: u32, column: u32) -> Self {
        Location { line, column }
    }
}

/// `line:column`.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file, as it was named to `load` or `parse`.
    pub file: PathBuf,
    /// Where in the file; `None` when the error is about the file as a whole
    /// (it cannot be read, say).
    pub location: Option<Location>,
    /// What is wrong, on one line.
    pub message: String,
}

impl ConfigError {
    /// An error at a position in the file.
    pub fn at(file: impl Into<PathBuf>, location: Location, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            location: Some(location),
            message: message.into(),
        }
    }

    /// An error about the file as a whole.
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            location: None,
            message: message.into(),
        }
    }
}

/// `FILE:LINE:COL: message`, or `FILE: message` without a location.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(f, "{}:{at}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in a configuration file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an error.
    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Orders the errors by position; errors without one come first. The
    /// sort is stable, so errors at the same position keep their order.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|e| e.location);
    }
}

/// One error per line: `FILE:LINE:COL: message`.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects errors while one file is decoded and validated, turning byte
/// offsets into line and column.
pub(crate) struct Diagnostics<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Diagnostics {
            file,
            text,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// The position of a byte offset (clamped to the text).
    pub(crate) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Location::new(saturate(line), saturate(column + 1))
    }

    /// The position where a span starts.
    pub(crate) fn at(&self, span: &Range<usize>) -> Location {
        self.location(span.start)
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let location = self.at(span);
        self.errors
            .push(ConfigError::at(self.file, location, message));
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The errors, sorted by position.
    pub(crate) fn finish(self) -> ConfigErrors {
        let mut errors = ConfigErrors(self.errors);
        errors.sort();
        errors
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let d = Diagnostics::new(Path::new("f.toml"), "ab\n\nné = 1\n");
        assert_eq!(d.location(0), Location::new(1, 1));
        assert_eq!(d.location(2), Location::new(1, 3));
        assert_eq!(d.location(3), Location::new(2, 1));
        assert_eq!(d.location(4), Location::new(3, 1));
        // `é` is two bytes but one column.
        assert_eq!(d.location(7), Location::new(3, 3));
        assert_eq!(d.location(1000), Location::new(4, 1));
    }

    #[test]
    fn display_is_one_error_per_line() {
        let errors = ConfigErrors(vec![
            ConfigError::at("a.toml", Location::new(3, 7), "bad"),
            ConfigError::new("a.toml", "unreadable"),
        ]);
        assert_eq!(errors.to_string(), "a.toml:3:7: bad\na.toml: unreadable");
    }

    #[test]
    fn sort_puts_file_errors_first_then_file_order() {
        let mut errors = ConfigErrors(vec![
            ConfigError::at("a", Location::new(9, 1), "late"),
            ConfigError::at("a", Location::new(2, 5), "early"),
            ConfigError::new("a", "whole file"),
        ]);
        errors.sort();
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["whole file", "early", "late"]);
    }
}
