//! Parser for the Prometheus text exposition format (0.0.4) and the
//! OpenMetrics 1.0 text format.
//!
//! The parser is built for the scrape path: it makes one pass over the
//! payload and, for every sample line, yields the *raw series text* (the
//! metric name through the closing `}` exactly as it appears in the payload),
//! the value, the optional timestamp and the line number, without allocating.
//! The scraper keeps a cache from that raw text to a series id (like
//! Prometheus' scrape cache), so labels are only materialised on a cache miss,
//! with [`parse_series`].
//!
//! Although labels are not materialised, the label set is fully validated
//! while scanning (label names, quoting, escapes, commas), so a cache key is
//! always a well-formed series: [`parse_series`] can only refuse it for a
//! duplicate label name or a `__name__` label (Prometheus fails the scrape
//! for those too).
//!
//! A syntax error stops the parse: Prometheus rejects a whole scrape on a
//! syntax error and so do we. Errors carry a 1-based line and column (the
//! column counts characters, not bytes) and a message meant for a user.
//!
//! Differences from Prometheus 2.42's parsers, all deliberate:
//! - Whitespace inside a label set (`{a="1", b="2"}`) or between the metric
//!   name and `{` is rejected by default. OpenMetrics has none, but
//!   Prometheus' 0.0.4 lexer skips blanks between any tokens (as the 0.0.4
//!   format description allows), so Prometheus accepts such a payload;
//!   [`Parser::allow_label_whitespace`] does the same for 0.0.4.
//! - `\r\n` line endings are accepted, and so is a last 0.0.4 line without
//!   `\n`.
//! - A 0.0.4 label set needs a comma between pairs (`{a="1"b="2"}` is an
//!   error; Prometheus lets it through).
//! - `# TYPE name unknown` is accepted in 0.0.4 as well as `untyped`, and
//!   whitespace around the type word is ignored.
//! - OpenMetrics timestamps are converted to milliseconds exactly from their
//!   decimal digits (Prometheus multiplies the float by 1000, which can be one
//!   millisecond off).
//! - A label value must not contain a raw line break.
//!
//! A `NaN` sample value is always `f64::NAN` (signed `NaN` is rejected, as in
//! Go), so it can never collide with a stale-marker NaN bit pattern.
//!
//! The input is `&str`; a scraper holding bytes should use
//! `String::from_utf8_lossy` (borrowing, so free, when the body is valid).

use std::borrow::Cow;
use std::fmt;

/// Which text format a payload is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    PrometheusText,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

/// Picks the format from a response's `Content-Type` header:
/// `application/openmetrics-text` (any version, any parameters, any case) is
/// OpenMetrics, anything else (including no header) is the Prometheus text
/// format, as Prometheus does.
pub fn detect_format(content_type: Option<&str>) -> Format {
    let Some(ct) = content_type else {
        return Format::PrometheusText;
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    }
}

/// One sample line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// The metric name and label set exactly as written in the payload, e.g.
    /// `nv_inference_count{model="resnet",version="1"}`. Use it as the cache
    /// key; [`parse_series`] turns it into a name and labels.
    pub series: &'a str,
    pub value: f64,
    /// Milliseconds since the epoch. 0.0.4 timestamps are integer
    /// milliseconds; OpenMetrics timestamps are seconds (possibly fractional)
    /// and are converted, truncating below a millisecond.
    pub timestamp_ms: Option<i64>,
    /// 1-based line number.
    pub line: u32,
}

impl<'a> Sample<'a> {
    /// The metric name: the leading part of [`Sample::series`] up to `{`.
    pub fn metric_name(&self) -> &'a str {
        let b = self.series.as_bytes();
        let mut p = 0;
        while p < b.len() && class(b[p]) & NAME != 0 {
            p += 1;
        }
        &self.series[..p]
    }
}

/// The metric types of both formats. 0.0.4's `untyped` is [`MetricType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The OpenMetrics spelling (`unknown` for 0.0.4's `untyped`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(word: &str, format: Format) -> Option<MetricType> {
        Some(match (word, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("unknown", _) => MetricType::Unknown,
            ("untyped", Format::PrometheusText) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `# HELP`, `# TYPE` or `# UNIT` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind<'a> {
    Type(MetricType),
    /// The help text as written (still escaped); see [`unescape_help`].
    Help(&'a str),
    /// OpenMetrics only.
    Unit(&'a str),
}

/// A `# HELP`, `# TYPE` or `# UNIT` line. Plain comments are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata<'a> {
    /// The metric family name the line is about.
    pub family: &'a str,
    pub kind: MetadataKind<'a>,
    /// 1-based line number.
    pub line: u32,
}

/// What [`Parser`] yields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entry<'a> {
    Sample(Sample<'a>),
    Metadata(Metadata<'a>),
}

/// A syntax error. `line` and `column` are 1-based; the column counts
/// characters from the start of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Counts from a whole-payload parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub samples: usize,
    pub metadata: usize,
    /// Lines consumed (including comments, blank lines and `# EOF`).
    pub lines: u32,
}

/// Parses a whole payload, calling `on_sample` for every sample in order.
/// Metadata lines are counted but otherwise skipped; use [`Parser`] to see
/// them.
pub fn parse<'a>(
    text: &'a str,
    format: Format,
    on_sample: impl FnMut(Sample<'a>),
) -> Result<Stats, ParseError> {
    Parser::new(text, format).for_each_sample(on_sample)
}

// ---------------------------------------------------------------------------
// Character classes.

const NAME_START: u8 = 1 << 0; // [a-zA-Z_:]
const NAME: u8 = 1 << 1; // [a-zA-Z0-9_:]
const LABEL_START: u8 = 1 << 2; // [a-zA-Z_]
const LABEL: u8 = 1 << 3; // [a-zA-Z0-9_]
const LVAL_STOP: u8 = 1 << 4; // '"' '\\' '\n'
const TOKEN_END: u8 = 1 << 5; // ' ' '\t' '\n' '\r'
const BLANK: u8 = 1 << 6; // ' ' '\t'

static CLASS: [u8; 256] = build_classes();

const fn build_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut f = 0;
        if c.is_ascii_alphabetic() || c == b'_' {
            f |= NAME_START | NAME | LABEL_START | LABEL;
        }
        if c == b':' {
            f |= NAME_START | NAME;
        }
        if c.is_ascii_digit() {
            f |= NAME | LABEL;
        }
        if c == b'"' || c == b'\\' || c == b'\n' {
            f |= LVAL_STOP;
        }
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
            f |= TOKEN_END;
        }
        if c == b' ' || c == b'\t' {
            f |= BLANK;
        }
        t[i] = f;
        i += 1;
    }
    t
}

#[inline(always)]
fn class(c: u8) -> u8 {
    CLASS[c as usize]
}

#[inline(always)]
fn skip_blanks(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && class(b[p]) & BLANK != 0 {
        p += 1;
    }
    p
}

/// If `p` is at the end of a line (`\n`, `\r\n`, a `\r` ending the input, or
/// the end of the input), the start of the next line.
#[inline(always)]
fn eol(b: &[u8], p: usize) -> Option<usize> {
    if p >= b.len() {
        return Some(b.len());
    }
    match b[p] {
        b'\n' => Some(p + 1),
        b'\r' if p + 1 == b.len() => Some(p + 1),
        b'\r' if b[p + 1] == b'\n' => Some(p + 2),
        _ => None,
    }
}

/// Index of the first `\n` at or after `p`, or `b.len()`.
#[inline]
fn find_newline(b: &[u8], mut p: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    while p + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[p..p + 8]);
        let x = u64::from_le_bytes(w) ^ NL;
        let m = x.wrapping_sub(LO) & !x & HI;
        if m != 0 {
            return p + (m.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    while p < b.len() && b[p] != b'\n' {
        p += 1;
    }
    p
}

/// End of the scanned part of a label value: the index of the first `"`,
/// `\\` or `\n` at or after `p`, or `b.len()`. Eight bytes at a time.
#[inline(always)]
fn find_lval_stop(b: &[u8], mut p: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BSLASH: u64 = LO * b'\\' as u64;
    const NL: u64 = LO * b'\n' as u64;
    while p + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[p..p + 8]);
        let w = u64::from_le_bytes(w);
        let (a, c, d) = (w ^ QUOTE, w ^ BSLASH, w ^ NL);
        let m = (a.wrapping_sub(LO) & !a | c.wrapping_sub(LO) & !c | d.wrapping_sub(LO) & !d) & HI;
        if m != 0 {
            // The lowest flagged byte is always a true match (false positives
            // only occur above a true zero byte).
            return p + (m.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    while p < b.len() && class(b[p]) & LVAL_STOP == 0 {
        p += 1;
    }
    p
}

// ---------------------------------------------------------------------------
// Numbers.

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a sample value: a decimal float (optional sign, digits, fraction,
/// exponent) or `Inf`/`NaN` in any case with an optional sign, as Go's
/// `strconv.ParseFloat` (which Prometheus uses) does. Hex floats and `_` are
/// rejected, as in Prometheus.
#[inline]
fn parse_value(tok: &[u8]) -> Option<f64> {
    // Fast path (Clinger): up to 19 significant digits with a mantissa that
    // fits in 53 bits and a small decimal exponent convert exactly with one
    // multiplication or division.
    let n = tok.len();
    let mut i = 0;
    let neg = match tok.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        Some(_) => false,
        None => return None,
    };
    let mut mant: u64 = 0;
    let mut digits = 0usize;
    while i < n && tok[i].is_ascii_digit() {
        mant = mant.wrapping_mul(10).wrapping_add((tok[i] - b'0') as u64);
        digits += 1;
        i += 1;
    }
    let mut exp: i64 = 0;
    if i < n && tok[i] == b'.' {
        i += 1;
        while i < n && tok[i].is_ascii_digit() {
            mant = mant.wrapping_mul(10).wrapping_add((tok[i] - b'0') as u64);
            digits += 1;
            exp -= 1;
            i += 1;
        }
    }
    if digits == 0 {
        return parse_value_slow(tok);
    }
    if i < n && (tok[i] | 0x20) == b'e' {
        i += 1;
        let eneg = match tok.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let es = i;
        let mut e: i64 = 0;
        while i < n && tok[i].is_ascii_digit() {
            e = (e * 10 + (tok[i] - b'0') as i64).min(1_000_000);
            i += 1;
        }
        if i == es {
            return None;
        }
        exp += if eneg { -e } else { e };
    }
    if i != n {
        return None;
    }
    if digits <= 19 && mant <= (1u64 << 53) && (-22..=22).contains(&exp) {
        let m = mant as f64;
        let v = if exp < 0 {
            m / POW10[(-exp) as usize]
        } else {
            m * POW10[exp as usize]
        };
        return Some(if neg { -v } else { v });
    }
    parse_value_slow(tok)
}

#[cold]
fn parse_value_slow(tok: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(tok).ok()?;
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    // Go accepts "inf", "infinity" (any case, optional sign) and "nan" (any
    // case, no sign); Rust additionally takes a sign on "nan".
    if unsigned.len() != s.len() && unsigned.eq_ignore_ascii_case("nan") {
        return None;
    }
    let first = unsigned.as_bytes().first()?;
    if !(first.is_ascii_digit()
        || *first == b'.'
        || (*first | 0x20) == b'i'
        || (*first | 0x20) == b'n')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// 0.0.4 timestamp: an integer number of milliseconds.
#[inline]
fn parse_int_timestamp(tok: &[u8]) -> Option<i64> {
    let (neg, digits) = match tok.first() {
        Some(b'-') => (true, &tok[1..]),
        _ => (false, tok),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// OpenMetrics timestamp: seconds, possibly fractional, to milliseconds
/// (truncated toward zero).
fn parse_om_timestamp(tok: &[u8]) -> Option<i64> {
    // Exact path for plain decimals: [-+]digits[.digits].
    let (neg, rest) = match tok.first() {
        Some(b'-') => (true, &tok[1..]),
        Some(b'+') => (false, &tok[1..]),
        _ => (false, tok),
    };
    let mut i = 0;
    let mut secs: i64 = 0;
    let mut plain = true;
    while i < rest.len() && rest[i].is_ascii_digit() {
        match secs
            .checked_mul(10)
            .and_then(|s| s.checked_add((rest[i] - b'0') as i64))
        {
            Some(s) => secs = s,
            None => {
                plain = false;
                break;
            }
        }
        i += 1;
    }
    let int_digits = i;
    let mut ms: i64 = 0;
    let mut frac_digits = 0;
    if plain && i < rest.len() && rest[i] == b'.' {
        i += 1;
        while i < rest.len() && rest[i].is_ascii_digit() {
            if frac_digits < 3 {
                ms = ms * 10 + (rest[i] - b'0') as i64;
            }
            frac_digits += 1;
            i += 1;
        }
    }
    if plain && i == rest.len() && int_digits + frac_digits > 0 {
        while frac_digits < 3 {
            ms *= 10;
            frac_digits += 1;
        }
        let total = secs.checked_mul(1000)?.checked_add(ms)?;
        return Some(if neg { -total } else { total });
    }
    // Anything else (exponents): through f64, as Prometheus does.
    let v = parse_value(tok)?;
    if !v.is_finite() {
        return None;
    }
    let ms = (v * 1000.0).trunc();
    if (-9.2e18..=9.2e18).contains(&ms) {
        Some(ms as i64)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// The parser.

/// Streaming parser over one payload. Iterate it (it is an [`Iterator`] of
/// `Result<Entry, ParseError>`), or call [`Parser::for_each_sample`]. After an
/// error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    line_start: usize,
    format: Format,
    label_ws: bool,
    finished: bool,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str, format: Format) -> Self {
        Parser {
            text,
            pos: 0,
            line: 1,
            line_start: 0,
            format,
            label_ws: false,
            finished: false,
        }
    }

    /// Accept blanks between the tokens of a label set and between the
    /// metric name and `{` in the 0.0.4 format (`{a="1", b="2"}`), as
    /// Prometheus' 0.0.4 parser does. Off by default. The blanks stay in
    /// [`Sample::series`]; [`parse_series`] accepts them. No effect on
    /// OpenMetrics, whose grammar has no such whitespace.
    pub fn allow_label_whitespace(mut self, allow: bool) -> Self {
        self.label_ws = allow;
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Number of lines consumed so far.
    pub fn lines(&self) -> u32 {
        self.line - 1
    }

    /// Runs the parse to the end, calling `on_sample` for each sample.
    pub fn for_each_sample(
        mut self,
        mut on_sample: impl FnMut(Sample<'a>),
    ) -> Result<Stats, ParseError> {
        let mut stats = Stats::default();
        while let Some(entry) = self.next_entry() {
            match entry? {
                Entry::Sample(s) => {
                    stats.samples += 1;
                    on_sample(s);
                }
                Entry::Metadata(_) => stats.metadata += 1,
            }
        }
        stats.lines = self.lines();
        Ok(stats)
    }

    /// The next sample or metadata line; `None` at the end of the payload
    /// (or after `# EOF` in OpenMetrics, or after an error).
    #[inline]
    pub fn next_entry(&mut self) -> Option<Result<Entry<'a>, ParseError>> {
        loop {
            if self.finished {
                return None;
            }
            let b = self.text.as_bytes();
            let start = self.pos;
            if start >= b.len() {
                self.finished = true;
                if self.format == Format::OpenMetrics {
                    return Some(Err(self.error_at(
                        start,
                        "missing \"# EOF\" at the end of the OpenMetrics payload (truncated response?)".to_string(),
                    )));
                }
                return None;
            }
            let c = b[start];
            let result = if class(c) & NAME_START != 0 {
                self.sample_line(start).map(|s| Some(Entry::Sample(s)))
            } else if c == b'#' {
                self.comment_line(start).map(|m| m.map(Entry::Metadata))
            } else {
                self.other_line(start)
            };
            match result {
                Ok(Some(entry)) => return Some(Ok(entry)),
                Ok(None) => continue,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }

    #[inline(always)]
    fn next_line(&mut self, next: usize) {
        self.pos = next;
        self.line = self.line.saturating_add(1);
        self.line_start = next;
    }

    #[inline(always)]
    fn slice(&self, a: usize, b: usize) -> &'a str {
        // Every cut is at an ASCII byte or the end, so this never fails; the
        // fallback only keeps a logic error from turning into a panic.
        let s = self.text.get(a..b);
        debug_assert!(s.is_some(), "cut {a}..{b} not on char boundaries");
        s.unwrap_or("")
    }

    /// A sample line starting at `start` (a metric-name start character).
    #[inline(always)]
    fn sample_line(&mut self, start: usize) -> Result<Sample<'a>, ParseError> {
        let b = self.text.as_bytes();
        let len = b.len();
        let om = self.format == Format::OpenMetrics;

        let mut p = start + 1;
        while p < len && class(b[p]) & NAME != 0 {
            p += 1;
        }
        let name_end = p;
        let mut brace = p;
        if self.label_ws && !om {
            brace = skip_blanks(b, p);
        }
        let has_labels = brace < len && b[brace] == b'{';
        if has_labels {
            p = self.label_set(brace + 1, self.label_ws && !om)?;
        }
        let series = self.slice(start, p);

        // Separator between series and value.
        let sep = p;
        if om {
            if p < len && b[p] == b' ' {
                p += 1;
            }
        } else {
            p = skip_blanks(b, p);
        }
        if p == sep || p >= len || class(b[p]) & TOKEN_END != 0 {
            return Err(self.missing_value_error(sep, p, name_end, has_labels));
        }

        // Value.
        let vstart = p;
        while p < len && class(b[p]) & TOKEN_END == 0 {
            p += 1;
        }
        let value = match parse_value(&b[vstart..p]) {
            Some(v) => v,
            None => {
                let hint = if b[vstart] == b'{' {
                    " (no whitespace is allowed between the metric name and its label set)"
                } else {
                    ""
                };
                return Err(self.token_error(vstart, p, "invalid sample value", hint));
            }
        };

        let line = self.line;
        if let Some(next) = eol(b, p) {
            self.next_line(next);
            return Ok(Sample {
                series,
                value,
                timestamp_ms: None,
                line,
            });
        }
        let timestamp_ms = if om {
            self.om_sample_tail(p)?
        } else {
            self.prom_sample_tail(p)?
        };
        // The tail functions stop exactly at a line end.
        let next = eol(b, self.pos).unwrap_or(len);
        self.next_line(next);
        Ok(Sample {
            series,
            value,
            timestamp_ms,
            line,
        })
    }

    /// After a 0.0.4 value, at `p` which is not a line end: blanks, an
    /// optional integer timestamp, blanks. Leaves `self.pos` at the line end.
    fn prom_sample_tail(&mut self, p: usize) -> Result<Option<i64>, ParseError> {
        let b = self.text.as_bytes();
        let len = b.len();
        if class(b[p]) & BLANK == 0 {
            return Err(self.unexpected(p, "after the sample value"));
        }
        let mut p = skip_blanks(b, p);
        if eol(b, p).is_some() {
            self.pos = p;
            return Ok(None);
        }
        let tstart = p;
        while p < len && class(b[p]) & TOKEN_END == 0 {
            p += 1;
        }
        let Some(ts) = parse_int_timestamp(&b[tstart..p]) else {
            let hint = if b[tstart] == b'#' {
                " (exemplars are only allowed in OpenMetrics, not in the Prometheus text format)"
            } else {
                " (the Prometheus text format takes an integer number of milliseconds)"
            };
            return Err(self.token_error(tstart, p, "invalid timestamp", hint));
        };
        let p = skip_blanks(b, p);
        if eol(b, p).is_none() {
            return Err(self.unexpected(p, "after the timestamp"));
        }
        self.pos = p;
        Ok(Some(ts))
    }

    /// After an OpenMetrics value, at `p` which is not a line end: an
    /// optional ` timestamp` and an optional ` # {exemplar} value [ts]`.
    fn om_sample_tail(&mut self, p: usize) -> Result<Option<i64>, ParseError> {
        let b = self.text.as_bytes();
        let len = b.len();
        let mut p = self.om_space(p, "after the sample value")?;
        let mut ts = None;
        if b[p] != b'#' {
            let tstart = p;
            while p < len && class(b[p]) & TOKEN_END == 0 {
                p += 1;
            }
            match parse_om_timestamp(&b[tstart..p]) {
                Some(t) => ts = Some(t),
                None => {
                    return Err(self.token_error(
                        tstart,
                        p,
                        "invalid timestamp",
                        " (OpenMetrics timestamps are seconds since the epoch)",
                    ));
                }
            }
            if eol(b, p).is_some() {
                self.pos = p;
                return Ok(ts);
            }
            p = self.om_space(p, "after the timestamp")?;
            if b[p] != b'#' {
                return Err(self.unexpected(p, "after the timestamp"));
            }
        }
        p = self.exemplar(p)?;
        if eol(b, p).is_none() {
            return Err(self.unexpected(p, "after the exemplar"));
        }
        self.pos = p;
        Ok(ts)
    }

    /// OpenMetrics separator: exactly one space followed by a token. Returns
    /// the start of the token.
    fn om_space(&self, p: usize, context: &str) -> Result<usize, ParseError> {
        let b = self.text.as_bytes();
        if p < b.len() && b[p] == b' ' {
            let q = p + 1;
            if q < b.len() && class(b[q]) & TOKEN_END == 0 {
                return Ok(q);
            }
            if eol(b, q).is_some() {
                return Err(self.error_at(
                    p,
                    format!("trailing space {context} (not allowed in OpenMetrics)"),
                ));
            }
            return Err(self.error_at(
                q,
                format!(
                    "unexpected {} {context}: OpenMetrics separates tokens with exactly one space",
                    self.describe(q)
                ),
            ));
        }
        Err(self.unexpected(p, context))
    }

    /// An OpenMetrics exemplar starting at `p` (at `#`): `# {labels} value
    /// [timestamp]`. Validated and skipped. Returns the index after it.
    fn exemplar(&self, p: usize) -> Result<usize, ParseError> {
        let b = self.text.as_bytes();
        let len = b.len();
        if !(p + 2 < len && b[p + 1] == b' ' && b[p + 2] == b'{') {
            return Err(self.error_at(
                p,
                "expected an exemplar \"# {labels} value [timestamp]\"".to_string(),
            ));
        }
        let mut p = self.label_set(p + 3, false)?;
        p = self.om_space(p, "after the exemplar labels")?;
        let vstart = p;
        while p < len && class(b[p]) & TOKEN_END == 0 {
            p += 1;
        }
        if parse_value(&b[vstart..p]).is_none() {
            return Err(self.token_error(vstart, p, "invalid exemplar value", ""));
        }
        if eol(b, p).is_some() {
            return Ok(p);
        }
        p = self.om_space(p, "after the exemplar value")?;
        let tstart = p;
        while p < len && class(b[p]) & TOKEN_END == 0 {
            p += 1;
        }
        if parse_om_timestamp(&b[tstart..p]).is_none() {
            return Err(self.token_error(tstart, p, "invalid exemplar timestamp", ""));
        }
        Ok(p)
    }

    /// A label set, `p` just after `{`. Returns the index after `}`.
    #[inline(always)]
    fn label_set(&self, mut p: usize, ws: bool) -> Result<usize, ParseError> {
        let b = self.text.as_bytes();
        let len = b.len();
        loop {
            if ws {
                p = skip_blanks(b, p);
            }
            if p >= len {
                return Err(self.label_set_error(p, "a label name or '}'"));
            }
            let c = b[p];
            if c == b'}' {
                return Ok(p + 1);
            }
            if class(c) & LABEL_START == 0 {
                return Err(self.label_set_error(p, "a label name or '}'"));
            }
            let name_start = p;
            p += 1;
            while p < len && class(b[p]) & LABEL != 0 {
                p += 1;
            }
            let name_end = p;
            if ws {
                p = skip_blanks(b, p);
            }
            if p >= len || b[p] != b'=' {
                return Err(self.label_set_error(
                    p,
                    &format!(
                        "'=' after label name \"{}\"",
                        self.slice(name_start, name_end)
                    ),
                ));
            }
            p += 1;
            if ws {
                p = skip_blanks(b, p);
            }
            if p >= len || b[p] != b'"' {
                return Err(self.label_set_error(
                    p,
                    &format!(
                        "'\"' to start the value of label \"{}\"",
                        self.slice(name_start, name_end)
                    ),
                ));
            }
            p = self.label_value(p + 1)?;
            if ws {
                p = skip_blanks(b, p);
            }
            if p < len {
                if b[p] == b',' {
                    p += 1;
                    continue;
                }
                if b[p] == b'}' {
                    return Ok(p + 1);
                }
            }
            return Err(self.label_set_error(p, "',' or '}' after the label value"));
        }
    }

    /// A quoted label value, `p` just after the opening quote. Returns the
    /// index after the closing quote.
    #[inline(always)]
    fn label_value(&self, mut p: usize) -> Result<usize, ParseError> {
        let b = self.text.as_bytes();
        let open = p - 1;
        loop {
            p = find_lval_stop(b, p);
            if p >= b.len() {
                break;
            }
            match b[p] {
                b'"' => return Ok(p + 1),
                b'\\' if p + 1 < b.len() && b[p + 1] != b'\n' => p += 2,
                _ => break,
            }
        }
        Err(self.error_at(
            open,
            "unterminated label value: no closing '\"' before the end of the line".to_string(),
        ))
    }

    /// A line starting with `#`.
    fn comment_line(&mut self, start: usize) -> Result<Option<Metadata<'a>>, ParseError> {
        let b = self.text.as_bytes();
        let len = b.len();
        let nl = find_newline(b, start);
        let line_end = if nl > start && b[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let next = if nl < len { nl + 1 } else { len };
        let line = self.line;

        let om = self.format == Format::OpenMetrics;
        let (word_start, kind) = if om {
            if start + 1 >= line_end || b[start + 1] != b' ' {
                return Err(self.error_at(
                    start + 1,
                    "invalid comment: OpenMetrics allows only \"# HELP\", \"# TYPE\", \"# UNIT\" and \"# EOF\" lines"
                        .to_string(),
                ));
            }
            let w = start + 2;
            let rest = &b[w..line_end];
            if rest.starts_with(b"EOF") {
                return self.om_eof(w + 3).map(|()| None);
            }
            let kind = if rest.starts_with(b"HELP ") {
                b'H'
            } else if rest.starts_with(b"TYPE ") {
                b'T'
            } else if rest.starts_with(b"UNIT ") {
                b'U'
            } else {
                return Err(self.error_at(
                    w,
                    "invalid comment: OpenMetrics allows only \"# HELP\", \"# TYPE\", \"# UNIT\" and \"# EOF\" lines"
                        .to_string(),
                ));
            };
            (w, kind)
        } else {
            // 0.0.4: "#", blanks, "HELP" or "TYPE", blanks. Anything else is a
            // comment.
            let w = skip_blanks(b, start + 1);
            let rest = &b[w.min(line_end)..line_end];
            let is_meta = w > start + 1
                && rest.len() > 4
                && (rest.starts_with(b"HELP") || rest.starts_with(b"TYPE"))
                && class(rest[4]) & BLANK != 0;
            if !is_meta {
                self.next_line(next);
                return Ok(None);
            }
            (w, rest[0])
        };

        // Metric family name.
        let mut p = word_start + 5;
        if !om {
            p = skip_blanks(b, p);
        }
        let keyword = match kind {
            b'H' => "HELP",
            b'T' => "TYPE",
            _ => "UNIT",
        };
        if p >= line_end || class(b[p]) & NAME_START == 0 {
            return Err(self.error_at(
                p,
                format!(
                    "expected a metric name after \"# {keyword}\", found {}",
                    self.describe(p)
                ),
            ));
        }
        let name_start = p;
        p += 1;
        while p < line_end && class(b[p]) & NAME != 0 {
            p += 1;
        }
        let family = self.slice(name_start, p);
        let text = if p == line_end {
            ""
        } else if (om && b[p] == b' ') || (!om && class(b[p]) & BLANK != 0) {
            self.slice(p + 1, line_end)
        } else {
            return Err(self.error_at(
                p,
                format!("invalid character {} in metric name", self.describe(p)),
            ));
        };
        let kind = match kind {
            b'H' => MetadataKind::Help(text),
            b'U' => MetadataKind::Unit(text),
            _ => {
                let word = if om {
                    text
                } else {
                    text.trim_matches([' ', '\t'])
                };
                match MetricType::parse(word, self.format) {
                    Some(t) => MetadataKind::Type(t),
                    None => {
                        let expected = if om {
                            "counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown"
                        } else {
                            "counter, gauge, histogram, summary or untyped"
                        };
                        let at = if p < line_end { p + 1 } else { p };
                        return Err(self.error_at(
                            at,
                            format!("invalid metric type \"{word}\" (expected {expected})"),
                        ));
                    }
                }
            }
        };
        self.next_line(next);
        Ok(Some(Metadata { family, kind, line }))
    }

    /// After `# EOF` (p just after "EOF"): only an optional line break may
    /// follow.
    fn om_eof(&mut self, p: usize) -> Result<(), ParseError> {
        let b = self.text.as_bytes();
        match eol(b, p) {
            Some(next) if next == b.len() => {
                self.next_line(next);
                self.finished = true;
                Ok(())
            }
            Some(next) => {
                self.next_line(next);
                Err(self.error_at(next, "unexpected content after \"# EOF\"".to_string()))
            }
            None => Err(self.error_at(
                p,
                format!("unexpected {} after \"# EOF\"", self.describe(p)),
            )),
        }
    }

    /// A line that starts with neither a metric name nor `#`.
    fn other_line(&mut self, start: usize) -> Result<Option<Entry<'a>>, ParseError> {
        let b = self.text.as_bytes();
        let om = self.format == Format::OpenMetrics;
        if om {
            if eol(b, start).is_some() {
                return Err(
                    self.error_at(start, "empty line (not allowed in OpenMetrics)".to_string())
                );
            }
            if class(b[start]) & BLANK != 0 {
                return Err(self.error_at(
                    start,
                    "unexpected whitespace at the start of the line (not allowed in OpenMetrics)"
                        .to_string(),
                ));
            }
            return Err(self.error_at(
                start,
                format!(
                    "expected a metric name or '#' at the start of the line, found {}",
                    self.describe(start)
                ),
            ));
        }
        let p = skip_blanks(b, start);
        if let Some(next) = eol(b, p) {
            self.next_line(next);
            return Ok(None);
        }
        if p > start {
            if class(b[p]) & NAME_START != 0 {
                return self.sample_line(p).map(|s| Some(Entry::Sample(s)));
            }
            if b[p] == b'#' {
                return self.comment_line(p).map(|m| m.map(Entry::Metadata));
            }
        }
        Err(self.error_at(
            p,
            format!(
                "expected a metric name, '#' or an empty line, found {}",
                self.describe(p)
            ),
        ))
    }

    // -- errors -------------------------------------------------------------

    #[cold]
    #[inline(never)]
    fn error_at(&self, pos: usize, message: String) -> ParseError {
        let b = self.text.as_bytes();
        let pos = pos.min(b.len());
        let from = self.line_start.min(pos);
        let column = b[from..pos].iter().filter(|&&c| c & 0xC0 != 0x80).count() + 1;
        ParseError {
            line: self.line,
            column: u32::try_from(column).unwrap_or(u32::MAX),
            message,
        }
    }

    /// What is at `p`, for messages.
    #[cold]
    fn describe(&self, p: usize) -> String {
        let b = self.text.as_bytes();
        if p >= b.len() {
            return "end of input".to_string();
        }
        match b[p] {
            b'\n' => "end of line".to_string(),
            b'\r' if p + 1 == b.len() || b[p + 1] == b'\n' => "end of line".to_string(),
            b'\r' => "carriage return".to_string(),
            b' ' => "space".to_string(),
            b'\t' => "tab".to_string(),
            _ => match self.text.get(p..).and_then(|s| s.chars().next()) {
                Some(c) => format!("{c:?}"),
                None => format!("byte 0x{:02x}", b[p]),
            },
        }
    }

    #[cold]
    #[inline(never)]
    fn unexpected(&self, p: usize, context: &str) -> ParseError {
        self.error_at(p, format!("unexpected {} {context}", self.describe(p)))
    }

    #[cold]
    #[inline(never)]
    fn token_error(&self, start: usize, end: usize, what: &str, hint: &str) -> ParseError {
        let tok = self.text.get(start..end).unwrap_or("");
        let shown: String = tok.chars().take(40).collect();
        let ellipsis = if shown.len() < tok.len() { "..." } else { "" };
        self.error_at(start, format!("{what} \"{shown}{ellipsis}\"{hint}"))
    }

    #[cold]
    #[inline(never)]
    fn label_set_error(&self, p: usize, expected: &str) -> ParseError {
        let b = self.text.as_bytes();
        let message = if p < b.len() && class(b[p]) & BLANK != 0 {
            format!("unexpected whitespace in label set (expected {expected})")
        } else if eol(b, p).is_some() {
            format!("unexpected end of line in label set (expected {expected})")
        } else {
            format!(
                "expected {expected} in label set, found {}",
                self.describe(p)
            )
        };
        self.error_at(p, message)
    }

    /// No separator or no value after the series; `sep` is where the series
    /// ended, `p` where the value should start.
    #[cold]
    #[inline(never)]
    fn missing_value_error(
        &self,
        sep: usize,
        p: usize,
        name_end: usize,
        has_labels: bool,
    ) -> ParseError {
        let b = self.text.as_bytes();
        let om = self.format == Format::OpenMetrics;
        if p == sep && eol(b, p).is_none() && class(b[p]) & BLANK == 0 {
            // Something glued to the series.
            if !has_labels && sep == name_end {
                return self.error_at(
                    p,
                    format!("invalid character {} in metric name", self.describe(p)),
                );
            }
            return self.error_at(
                p,
                format!(
                    "expected a space after the label set, found {}",
                    self.describe(p)
                ),
            );
        }
        if om && p < b.len() && b[p] == b' ' {
            return self.error_at(
                p,
                "unexpected second space before the value: OpenMetrics separates tokens with exactly one space"
                    .to_string(),
            );
        }
        if om && p < b.len() && b[p] == b'\t' {
            return self.error_at(
                p,
                "unexpected tab: OpenMetrics separates tokens with exactly one space".to_string(),
            );
        }
        self.error_at(
            p,
            format!("expected a sample value, found {}", self.describe(p)),
        )
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
    }
}

impl std::iter::FusedIterator for Parser<'_> {}

// ---------------------------------------------------------------------------
// Cache-miss helpers.

/// Splits a series text (as found in [`Sample::series`]) into the metric name
/// and its labels, in payload order, with label values unescaped (`\\`, `\"`,
/// `\n`; other escapes are kept verbatim, as Prometheus does). Blanks between
/// the tokens of the label set are accepted. Rejects duplicate label names
/// and a `__name__` label. Errors are reported as line 1 with the column in
/// `series`.
pub fn parse_series(series: &str) -> Result<(String, Vec<(String, String)>), ParseError> {
    let b = series.as_bytes();
    let len = b.len();
    let err = |p: usize, message: String| {
        let p = p.min(len);
        let column = b[..p].iter().filter(|&&c| c & 0xC0 != 0x80).count() + 1;
        ParseError {
            line: 1,
            column: u32::try_from(column).unwrap_or(u32::MAX),
            message,
        }
    };
    let found = |p: usize| -> String {
        match series.get(p..).and_then(|s| s.chars().next()) {
            None => "end of series".to_string(),
            Some(' ') => "space".to_string(),
            Some(c) => format!("{c:?}"),
        }
    };
    if len == 0 || class(b[0]) & NAME_START == 0 {
        return Err(err(
            0,
            format!("expected a metric name, found {}", found(0)),
        ));
    }
    let mut p = 1;
    while p < len && class(b[p]) & NAME != 0 {
        p += 1;
    }
    let name = series[..p].to_string();
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut name_positions: Vec<usize> = Vec::new();
    p = skip_blanks(b, p);
    if p == len {
        return Ok((name, labels));
    }
    if b[p] != b'{' {
        return Err(err(
            p,
            format!("unexpected {} after the metric name", found(p)),
        ));
    }
    p += 1;
    loop {
        p = skip_blanks(b, p);
        if p < len && b[p] == b'}' {
            p += 1;
            break;
        }
        if p >= len || class(b[p]) & LABEL_START == 0 {
            return Err(err(
                p,
                format!("expected a label name or '}}', found {}", found(p)),
            ));
        }
        let ns = p;
        p += 1;
        while p < len && class(b[p]) & LABEL != 0 {
            p += 1;
        }
        let lname = &series[ns..p];
        p = skip_blanks(b, p);
        if p >= len || b[p] != b'=' {
            return Err(err(
                p,
                format!(
                    "expected '=' after label name \"{lname}\", found {}",
                    found(p)
                ),
            ));
        }
        p = skip_blanks(b, p + 1);
        if p >= len || b[p] != b'"' {
            return Err(err(
                p,
                format!(
                    "expected '\"' to start the value of label \"{lname}\", found {}",
                    found(p)
                ),
            ));
        }
        let vs = p + 1;
        p = vs;
        loop {
            p = find_lval_stop(b, p);
            if p >= len {
                return Err(err(vs - 1, "unterminated label value".to_string()));
            }
            match b[p] {
                b'"' => break,
                b'\\' if p + 1 < len && b[p + 1] != b'\n' => p += 2,
                _ => return Err(err(vs - 1, "unterminated label value".to_string())),
            }
        }
        let value = unescape_label_value(&series[vs..p]).into_owned();
        p += 1;
        labels.push((lname.to_string(), value));
        name_positions.push(ns);
        p = skip_blanks(b, p);
        if p < len && b[p] == b',' {
            p += 1;
            continue;
        }
        if p < len && b[p] == b'}' {
            p += 1;
            break;
        }
        return Err(err(
            p,
            format!(
                "expected ',' or '}}' after the label value, found {}",
                found(p)
            ),
        ));
    }
    p = skip_blanks(b, p);
    if p != len {
        return Err(err(
            p,
            format!("unexpected {} after the label set", found(p)),
        ));
    }
    for i in 0..labels.len() {
        if labels[i].0 == "__name__" {
            return Err(err(
                name_positions[i],
                "label name \"__name__\" is reserved for the metric name".to_string(),
            ));
        }
        if labels[..i].iter().any(|(n, _)| *n == labels[i].0) {
            return Err(err(
                name_positions[i],
                format!("duplicate label name \"{}\"", labels[i].0),
            ));
        }
    }
    Ok((name, labels))
}

/// Unescapes a label value as written between the quotes: `\\` -> `\`,
/// `\"` -> `"`, `\n` -> line feed; any other backslash is kept as is.
pub fn unescape_label_value(raw: &str) -> Cow<'_, str> {
    unescape(raw, true)
}

/// Unescapes the text of a `# HELP` line ([`MetadataKind::Help`]): `\\` and
/// `\n` in both formats, and `\"` in OpenMetrics; any other backslash is kept.
pub fn unescape_help(raw: &str, format: Format) -> Cow<'_, str> {
    unescape(raw, format == Format::OpenMetrics)
}

fn unescape(raw: &str, quote: bool) -> Cow<'_, str> {
    if !raw.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            Some('"') if quote => {
                out.push('"');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture_dir() -> Option<PathBuf> {
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/exposition"
        ));
        if dir.is_dir() {
            Some(dir)
        } else {
            println!("skipped: ../shared/data/exposition not found");
            None
        }
    }

    fn fixtures() -> Vec<(String, String)> {
        let Some(dir) = fixture_dir() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("read fixture dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) == Some("prom") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).expect("read fixture");
                out.push((name, text));
            }
        }
        out.sort();
        out
    }

    fn fixture(name: &str) -> Option<String> {
        let dir = fixture_dir()?;
        Some(std::fs::read_to_string(dir.join(name)).expect("read fixture"))
    }

    fn samples(text: &str, format: Format) -> Result<Vec<Sample<'_>>, ParseError> {
        let mut out = Vec::new();
        parse(text, format, |s| out.push(s))?;
        Ok(out)
    }

    fn entries(text: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
        Parser::new(text, format).collect()
    }

    fn err(text: &str, format: Format) -> ParseError {
        match samples(text, format) {
            Ok(s) => panic!("expected an error for {text:?}, got {s:?}"),
            Err(e) => e,
        }
    }

    fn one(text: &str, format: Format) -> Sample<'_> {
        let s = samples(text, format).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(s.len(), 1, "{text:?}");
        s[0]
    }

    fn value(series_value: &str) -> f64 {
        let text = format!("m {series_value}\n");
        let s = samples(&text, Format::PrometheusText).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        s[0].value
    }

    /// Sample lines in a fixture: not blank, not a comment.
    fn count_sample_lines(text: &str) -> usize {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count()
    }

    fn to_openmetrics(text: &str) -> String {
        let mut out: String = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        out.push_str("# EOF\n");
        out
    }

    #[test]
    fn all_fixtures_parse_except_the_malformed_one() {
        let fx = fixtures();
        for (name, text) in &fx {
            let result = samples(text, Format::PrometheusText);
            if name == "triton_docs_histogram_malformed.prom" {
                let e = result.expect_err("malformed fixture must be rejected");
                assert_eq!(e.line, 5, "{e}");
                assert_eq!(e.column, 71, "{e}");
                assert!(
                    e.message.contains("unexpected whitespace in label set"),
                    "{e}"
                );
                assert_eq!(
                    e.to_string(),
                    "line 5, column 71: unexpected whitespace in label set (expected a label name or '}')"
                );
            } else {
                let s = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(s.len(), count_sample_lines(text), "{name}");
                for sample in &s {
                    // Every cache key must be accepted by parse_series.
                    parse_series(sample.series)
                        .unwrap_or_else(|e| panic!("{name}: {}: {e}", sample.series));
                    assert!(sample.timestamp_ms.is_none());
                }
            }
        }
        if !fx.is_empty() {
            assert!(
                fx.len() >= 9,
                "expected the 9 shared fixtures, found {}",
                fx.len()
            );
        }
    }

    #[test]
    fn fixtures_as_openmetrics_give_the_same_samples() {
        for (name, text) in fixtures() {
            if name == "triton_docs_histogram_malformed.prom" {
                continue;
            }
            let om = to_openmetrics(&text);
            let a = samples(&text, Format::PrometheusText).unwrap();
            let b = samples(&om, Format::OpenMetrics).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.len(), b.len(), "{name}");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.series, y.series);
                assert!(x.value == y.value || (x.value.is_nan() && y.value.is_nan()));
            }
        }
    }

    #[test]
    fn malformed_fixture_with_label_whitespace_allowed() {
        let Some(text) = fixture("triton_docs_histogram_malformed.prom") else {
            return;
        };
        let s: Vec<Sample> = Parser::new(&text, Format::PrometheusText)
            .allow_label_whitespace(true)
            .filter_map(|e| match e.unwrap() {
                Entry::Sample(s) => Some(s),
                Entry::Metadata(_) => None,
            })
            .collect();
        assert_eq!(s.len(), 7);
        assert_eq!(
            s[2].series,
            r#"nv_inference_first_response_histogram_ms{model="my_model",version="1", le="100"}"#
        );
        assert_eq!(s[2].value, 8.0);
        assert_eq!(s[2].line, 5);
        let (name, labels) = parse_series(s[6].series).unwrap();
        assert_eq!(name, "nv_inference_first_response_histogram_ms");
        assert_eq!(
            labels,
            vec![
                ("model".to_string(), "my_model".to_string()),
                ("version".to_string(), "1".to_string()),
                ("le".to_string(), "+Inf".to_string()),
            ]
        );
    }

    /// Finds the sample with exactly this series text.
    fn find<'a>(s: &[Sample<'a>], series: &str) -> Sample<'a> {
        *s.iter()
            .find(|x| x.series == series)
            .unwrap_or_else(|| panic!("no sample {series}"))
    }

    #[test]
    fn fixture_values() {
        let check = |file: &str, expected: &[(&str, f64)]| {
            let Some(text) = fixture(file) else { return };
            let s = samples(&text, Format::PrometheusText).unwrap();
            for (series, v) in expected {
                let got = find(&s, series).value;
                assert!(
                    got == *v || (got.is_nan() && v.is_nan()),
                    "{file}: {series}: {got} != {v}"
                );
            }
        };
        check(
            "vllm.prom",
            &[
                ("process_resident_memory_bytes", 5.106151424e+09),
                ("process_start_time_seconds", 1.7181405583e+09),
                ("process_cpu_seconds_total", 10.950000000000001),
                (
                    r#"vllm:request_queue_time_seconds_sum{model_name="facebook/opt-125m"}"#,
                    7.358146831393242e-05,
                ),
                (
                    r#"vllm:num_requests_running{model_name="facebook/opt-125m"}"#,
                    0.0,
                ),
                (
                    r#"vllm:prompt_tokens_total{model_name="facebook/opt-125m"}"#,
                    5.0,
                ),
            ],
        );
        check(
            "torchserve.prom",
            &[
                (
                    r#"DiskUsage{Level="Host",Hostname="88665a372f4b.ant.amazon.com",}"#,
                    20.054508209228516,
                ),
                (
                    r#"ts_inference_latency_microseconds{model_name="resnet18",model_version="default",hostname="88665a372f4b.ant.amazon.com",}"#,
                    290371.129,
                ),
                (
                    r#"MemoryAvailable{Level="Host",Hostname="88665a372f4b.ant.amazon.com",}"#,
                    5829.7421875,
                ),
            ],
        );
        check(
            "tgi.prom",
            &[
                ("tgi_request_success", 109.0),
                (r#"tgi_batch_concat{reason="chunking"}"#, 3.0),
                (
                    r#"tgi_request_inference_duration_bucket{le="0.00015000000000000001"}"#,
                    0.0,
                ),
                (
                    r#"tgi_request_inference_duration_bucket{le="1.683411219602823"}"#,
                    83.0,
                ),
                (r#"tgi_request_inference_duration_bucket{le="+Inf"}"#, 109.0),
                ("tgi_request_inference_duration_sum", 245.91743839099996),
                ("tgi_request_skipped_tokens_count", 3423.0),
            ],
        );
        check(
            "triton.prom",
            &[
                (
                    r#"nv_inference_request_success{model="densenet_onnx",version="1"}"#,
                    3.0,
                ),
                (
                    r#"nv_inference_request_duration_us{model="densenet_onnx",version="1"}"#,
                    1327965.0,
                ),
                (
                    r#"nv_inference_queue_duration_us{model="densenet_onnx",version="1"}"#,
                    145.0,
                ),
            ],
        );
        check(
            "triton_failure_reasons.prom",
            &[
                (
                    r#"nv_inference_request_failure{model="identity_long",reason="CANCELED",version="1"}"#,
                    0.0,
                ),
                (
                    r#"nv_inference_queue_duration_us{model="preprocessor",version="1"}"#,
                    5656.0,
                ),
                (
                    r#"input_byte_size_counter{model="identity_long",version="1"}"#,
                    232.0,
                ),
            ],
        );
        check(
            "triton_trtllm.prom",
            &[
                (
                    r#"nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="max",version="1"}"#,
                    512.0,
                ),
                (
                    r#"nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="tensorrt_llm",version="1"}"#,
                    0.4875,
                ),
                (
                    r#"nv_trt_llm_general_metrics{general_type="timestamp",model="tensorrt_llm",version="1"}"#,
                    1700074049.0,
                ),
            ],
        );
        check(
            "bentoml.prom",
            &[
                (
                    r#"bentoml_service_request_total{endpoint="/summarize",http_response_code="200",runner_name="Summarization",service_name="Summarization",service_version="not available"}"#,
                    5.0,
                ),
                (
                    r#"bentoml_service_request_duration_seconds_sum{endpoint="/",http_response_code="200",runner_name="Summarization",service_name="Summarization",service_version="not available"}"#,
                    0.021970166999381036,
                ),
                (
                    r#"bentoml_service_last_request_timestamp_seconds{pid="37104",runner_name="Summarization",service_name="Summarization",service_version="not available"}"#,
                    1.7568634726216471e+09,
                ),
            ],
        );
        check(
            "kserve_python_server.prom",
            &[
                ("process_resident_memory_bytes", 1.55590656e+08),
                (
                    r#"request_preprocess_seconds_bucket{le="0.005",model_name="custom-server-test"}"#,
                    3.0,
                ),
                (
                    r#"request_preprocess_seconds_sum{model_name="custom-server-test"}"#,
                    0.00016299448907375336,
                ),
                (
                    r#"request_preprocess_seconds_created{model_name="custom-server-test"}"#,
                    1.6710664789782867e+09,
                ),
            ],
        );
    }

    #[test]
    fn fixture_metadata_and_lines() {
        let Some(text) = fixture("tgi.prom") else {
            return;
        };
        let e = entries(&text, Format::PrometheusText).unwrap();
        assert_eq!(
            e[0],
            Entry::Metadata(Metadata {
                family: "tgi_request_success",
                kind: MetadataKind::Help("Number of successful requests"),
                line: 1
            })
        );
        assert_eq!(
            e[1],
            Entry::Metadata(Metadata {
                family: "tgi_request_success",
                kind: MetadataKind::Type(MetricType::Counter),
                line: 2
            })
        );
        // Line 3 is the first sample, line 4 blank, line 5 a TYPE without HELP.
        match e[2] {
            Entry::Sample(s) => assert_eq!(
                (s.series, s.value, s.line),
                ("tgi_request_success", 109.0, 3)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e[3],
            Entry::Metadata(Metadata {
                family: "tgi_batch_concat",
                kind: MetadataKind::Type(MetricType::Counter),
                line: 5
            })
        );
        let summary = e.iter().any(|x| {
            matches!(
                x,
                Entry::Metadata(Metadata {
                    family: "tgi_request_skipped_tokens",
                    kind: MetadataKind::Type(MetricType::Summary),
                    ..
                })
            )
        });
        assert!(summary);
        let stats = parse(&text, Format::PrometheusText, |_| {}).unwrap();
        assert_eq!(stats.lines as usize, text.lines().count());
        assert_eq!(stats.samples, count_sample_lines(&text));
    }

    #[test]
    fn bentoml_sum_lines_first() {
        let Some(text) = fixture("bentoml.prom") else {
            return;
        };
        let s = samples(&text, Format::PrometheusText).unwrap();
        // Non-contiguous families are fine; names are what they are.
        assert!(
            s.iter()
                .any(|x| x.metric_name() == "bentoml_service_request_duration_seconds_sum")
        );
        assert!(
            s.iter()
                .any(|x| x.metric_name() == "bentoml_service_request_duration_seconds_bucket")
        );
    }

    #[test]
    fn series_text_and_parse_series_with_escapes() {
        let text = "m{a=\"x\\\"y}z,w=v\\\\\",b=\"line\\nnext\",c=\"tab\\tkept\",d=\"\"} 1\n";
        let s = one(text, Format::PrometheusText);
        assert_eq!(
            s.series,
            "m{a=\"x\\\"y}z,w=v\\\\\",b=\"line\\nnext\",c=\"tab\\tkept\",d=\"\"}"
        );
        assert_eq!(s.value, 1.0);
        let (name, labels) = parse_series(s.series).unwrap();
        assert_eq!(name, "m");
        assert_eq!(
            labels,
            vec![
                ("a".to_string(), "x\"y}z,w=v\\".to_string()),
                ("b".to_string(), "line\nnext".to_string()),
                ("c".to_string(), "tab\\tkept".to_string()),
                ("d".to_string(), String::new()),
            ]
        );
        // Non-ASCII label values.
        let s = one("m{model=\"größe-模型\"} 2\n", Format::PrometheusText);
        assert_eq!(parse_series(s.series).unwrap().1[0].1, "größe-模型");
    }

    #[test]
    fn parse_series_cases() {
        assert_eq!(parse_series("up").unwrap(), ("up".to_string(), vec![]));
        assert_eq!(parse_series("up{}").unwrap(), ("up".to_string(), vec![]));
        assert_eq!(
            parse_series("a:b{x=\"1\",}").unwrap(),
            ("a:b".to_string(), vec![("x".to_string(), "1".to_string())])
        );
        assert_eq!(
            parse_series("m { x = \"1\" , y=\"2\" }").unwrap(),
            (
                "m".to_string(),
                vec![
                    ("x".to_string(), "1".to_string()),
                    ("y".to_string(), "2".to_string())
                ]
            )
        );
        let e = parse_series("m{a=\"1\",a=\"2\"}").unwrap_err();
        assert_eq!((e.line, e.column), (1, 9));
        assert!(e.message.contains("duplicate label name \"a\""), "{e}");
        let e = parse_series("m{__name__=\"x\"}").unwrap_err();
        assert!(e.message.contains("reserved"), "{e}");
        assert!(parse_series("").is_err());
        assert!(parse_series("1m").is_err());
        assert!(parse_series("m{").is_err());
        assert!(parse_series("m{a}").is_err());
        assert!(parse_series("m{a=\"1\"").is_err());
        assert!(parse_series("m{a=\"1}").is_err());
        assert!(parse_series("m{a=\"1\"} x").is_err());
        assert!(parse_series("m{,}").is_err());
        assert!(parse_series("m{a=\"1\" b=\"2\"}").is_err());
        let e = parse_series("m{a-b=\"1\"}").unwrap_err();
        assert_eq!(e.column, 4, "{e}");
    }

    #[test]
    fn unescaping() {
        assert!(matches!(
            unescape_label_value("plain"),
            Cow::Borrowed("plain")
        ));
        assert_eq!(unescape_label_value(r#"a\\b\"c\nd\x"#), "a\\b\"c\nd\\x");
        assert_eq!(unescape_label_value("trailing\\"), "trailing\\");
        assert_eq!(
            unescape_help(r#"C:\\dir \"q\" line\nnext"#, Format::PrometheusText),
            "C:\\dir \\\"q\\\" line\nnext"
        );
        assert_eq!(
            unescape_help(r#"C:\\dir \"q\" line\nnext"#, Format::OpenMetrics),
            "C:\\dir \"q\" line\nnext"
        );
        let text = "# HELP m Some \\\\ help\\nmore\n# TYPE m gauge\nm 1\n";
        let e = entries(text, Format::PrometheusText).unwrap();
        match e[0] {
            Entry::Metadata(Metadata {
                kind: MetadataKind::Help(h),
                ..
            }) => {
                assert_eq!(h, "Some \\\\ help\\nmore");
                assert_eq!(
                    unescape_help(h, Format::PrometheusText),
                    "Some \\ help\nmore"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn odd_values() {
        assert_eq!(value("+Inf"), f64::INFINITY);
        assert_eq!(value("-Inf"), f64::NEG_INFINITY);
        assert_eq!(value("Inf"), f64::INFINITY);
        assert_eq!(value("+inf"), f64::INFINITY);
        assert_eq!(value("INF"), f64::INFINITY);
        assert_eq!(value("-infinity"), f64::NEG_INFINITY);
        assert!(value("NaN").is_nan());
        assert!(value("nan").is_nan());
        assert!(value("NAN").is_nan());
        assert_eq!(value("1e3"), 1000.0);
        assert_eq!(value("1E-3"), 0.001);
        assert_eq!(value("-2.5e+2"), -250.0);
        assert_eq!(value(".5"), 0.5);
        assert_eq!(value("5."), 5.0);
        assert_eq!(value("+7"), 7.0);
        assert_eq!(value("-0"), 0.0);
        assert!(value("-0").is_sign_negative());
        assert_eq!(value("0.1"), 0.1);
        assert_eq!(
            value("123456789012345678901234567890"),
            1.2345678901234568e29
        );
        assert_eq!(value("1.7976931348623157e308"), f64::MAX);
        assert_eq!(value("1e400"), f64::INFINITY);
        assert_eq!(value("4.9e-324"), 5e-324);
        assert_eq!(value("9007199254740993"), 9007199254740992.0);
        assert_eq!(value("0.30000000000000004"), 0.30000000000000004);
        assert_eq!(value("1.0000000000000002"), 1.0000000000000002);
        // Must agree with the standard library on everything it parses.
        for s in [
            "3.14159",
            "2.5e-7",
            "1e22",
            "1e23",
            "123.456e-20",
            "0.000001",
            "99999999999999999999e-5",
        ] {
            assert_eq!(value(s), s.parse::<f64>().unwrap(), "{s}");
        }
        for bad in [
            "1_000",
            "0x10",
            "0x1p3",
            "1e",
            "e1",
            ".",
            "-",
            "+",
            "1.2.3",
            "1,5",
            "--1",
            "+nan",
            "-NaN",
            "infx",
            "1e+",
            "Infinityy",
            "nan1",
            "true",
        ] {
            let text = format!("m {bad}\n");
            let e = err(&text, Format::PrometheusText);
            assert_eq!((e.line, e.column), (1, 3), "{bad}: {e}");
            assert!(e.message.starts_with("invalid sample value"), "{bad}: {e}");
        }
    }

    #[test]
    fn prometheus_timestamps_and_whitespace() {
        let s = one("m{a=\"b\"} 1 1700000000123\n", Format::PrometheusText);
        assert_eq!(s.timestamp_ms, Some(1700000000123));
        let s = one("m 1 -5", Format::PrometheusText);
        assert_eq!(s.timestamp_ms, Some(-5));
        let s = one("m\t\t2\t 42 \t\n", Format::PrometheusText);
        assert_eq!((s.value, s.timestamp_ms), (2.0, Some(42)));
        let s = one("   m 3\n", Format::PrometheusText);
        assert_eq!((s.series, s.value), ("m", 3.0));
        let e = err("m 1 1.5\n", Format::PrometheusText);
        assert_eq!((e.line, e.column), (1, 5));
        assert!(e.message.contains("integer number of milliseconds"), "{e}");
        let e = err("m 1 99999999999999999999\n", Format::PrometheusText);
        assert!(e.message.starts_with("invalid timestamp"), "{e}");
        let e = err("m 1 2 3\n", Format::PrometheusText);
        assert_eq!(
            (e.column, e.message.as_str()),
            (7, "unexpected '3' after the timestamp")
        );
        let e = err("m 1 # {a=\"b\"} 1\n", Format::PrometheusText);
        assert!(e.message.contains("only allowed in OpenMetrics"), "{e}");
    }

    #[test]
    fn line_endings_and_blank_lines() {
        let text = "# HELP m h\r\n# TYPE m counter\r\n\r\nm{a=\"1\"} 1\r\n  \t\nm{a=\"2\"} 2 10\r\nm{a=\"3\"} 3";
        let e = entries(text, Format::PrometheusText).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(
            e[0],
            Entry::Metadata(Metadata {
                family: "m",
                kind: MetadataKind::Help("h"),
                line: 1
            })
        );
        assert_eq!(
            e[1],
            Entry::Metadata(Metadata {
                family: "m",
                kind: MetadataKind::Type(MetricType::Counter),
                line: 2
            })
        );
        let s: Vec<_> = samples(text, Format::PrometheusText).unwrap();
        assert_eq!(
            s.iter()
                .map(|x| (x.series, x.value, x.timestamp_ms, x.line))
                .collect::<Vec<_>>(),
            vec![
                ("m{a=\"1\"}", 1.0, None, 4),
                ("m{a=\"2\"}", 2.0, Some(10), 6),
                ("m{a=\"3\"}", 3.0, None, 7),
            ]
        );
        assert_eq!(samples("", Format::PrometheusText).unwrap().len(), 0);
        assert_eq!(samples("\n\n", Format::PrometheusText).unwrap().len(), 0);
        let e = err("m 1\rx\n", Format::PrometheusText);
        assert_eq!(
            (e.column, e.message.as_str()),
            (4, "unexpected carriage return after the sample value")
        );
    }

    #[test]
    fn prometheus_comments_and_metadata() {
        let text = "# just a comment\n#HELP m not help\n# HELP\n#\n# TYPE m untyped\n# TYPE n  gauge \n#\tHELP x y z\nm 1\n";
        let e = entries(text, Format::PrometheusText).unwrap();
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(
            e[0],
            Entry::Metadata(Metadata {
                family: "m",
                kind: MetadataKind::Type(MetricType::Unknown),
                line: 5
            })
        );
        assert_eq!(
            e[1],
            Entry::Metadata(Metadata {
                family: "n",
                kind: MetadataKind::Type(MetricType::Gauge),
                line: 6
            })
        );
        assert_eq!(
            e[2],
            Entry::Metadata(Metadata {
                family: "x",
                kind: MetadataKind::Help("y z"),
                line: 7
            })
        );
        let e = err("# TYPE m summary\n# TYPE m bogus\n", Format::PrometheusText);
        assert_eq!((e.line, e.column), (2, 10));
        assert_eq!(
            e.message,
            "invalid metric type \"bogus\" (expected counter, gauge, histogram, summary or untyped)"
        );
        let e = err("# TYPE m stateset\n", Format::PrometheusText);
        assert!(e.message.starts_with("invalid metric type"), "{e}");
        let e = err("# TYPE m\n", Format::PrometheusText);
        assert!(e.message.starts_with("invalid metric type \"\""), "{e}");
        let e = err("# HELP 9m x\n", Format::PrometheusText);
        assert_eq!(
            (e.column, e.message.as_str()),
            (8, "expected a metric name after \"# HELP\", found '9'")
        );
        let e = err("# HELP m-x y\n", Format::PrometheusText);
        assert_eq!(
            (e.column, e.message.as_str()),
            (9, "invalid character '-' in metric name")
        );
        // HELP with no text and HELP text keeping extra spaces after the first.
        let e = entries("# HELP m\n# HELP n   spaced\n", Format::PrometheusText).unwrap();
        assert_eq!(
            e[0],
            Entry::Metadata(Metadata {
                family: "m",
                kind: MetadataKind::Help(""),
                line: 1
            })
        );
        assert_eq!(
            e[1],
            Entry::Metadata(Metadata {
                family: "n",
                kind: MetadataKind::Help("  spaced"),
                line: 2
            })
        );
        // "# EOF" is just a comment in 0.0.4.
        assert_eq!(
            samples("m 1\n# EOF\nn 2\n", Format::PrometheusText)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn label_set_forms() {
        let ok = [
            ("m{} 1", "m{}"),
            ("m{a=\"b\",} 1", "m{a=\"b\",}"),
            ("m{a=\"b\",c=\"d\"} 1", "m{a=\"b\",c=\"d\"}"),
            ("m{_a1=\"\"} 1", "m{_a1=\"\"}"),
            ("m{le=\"+Inf\"}\t1", "m{le=\"+Inf\"}"),
            ("a:b:c_d{x=\"}\"} 1", "a:b:c_d{x=\"}\"}"),
        ];
        for (text, series) in ok {
            assert_eq!(one(text, Format::PrometheusText).series, series, "{text}");
        }
    }

    #[test]
    fn error_positions() {
        let cases: &[(&str, u32, u32, &str)] = &[
            (
                "m{a=\"1\", b=\"2\"} 1\n",
                1,
                9,
                "unexpected whitespace in label set (expected a label name or '}')",
            ),
            (
                "m{a=\"1\" ,b=\"2\"} 1\n",
                1,
                8,
                "unexpected whitespace in label set (expected ',' or '}' after the label value)",
            ),
            (
                "m{ a=\"1\"} 1\n",
                1,
                3,
                "unexpected whitespace in label set (expected a label name or '}')",
            ),
            (
                "m{a =\"1\"} 1\n",
                1,
                4,
                "unexpected whitespace in label set (expected '=' after label name \"a\")",
            ),
            (
                "m {a=\"1\"} 1\n",
                1,
                3,
                "invalid sample value \"{a=\"1\"}\" (no whitespace is allowed between the metric name and its label set)",
            ),
            (
                "m{a=\"1\"b=\"2\"} 1\n",
                1,
                8,
                "expected ',' or '}' after the label value in label set, found 'b'",
            ),
            (
                "m{,} 1\n",
                1,
                3,
                "expected a label name or '}' in label set, found ','",
            ),
            (
                "m{a=\"1\",,} 1\n",
                1,
                9,
                "expected a label name or '}' in label set, found ','",
            ),
            (
                "m{1a=\"1\"} 1\n",
                1,
                3,
                "expected a label name or '}' in label set, found '1'",
            ),
            (
                "m{a:b=\"1\"} 1\n",
                1,
                4,
                "expected '=' after label name \"a\" in label set, found ':'",
            ),
            (
                "m{a=1} 1\n",
                1,
                5,
                "expected '\"' to start the value of label \"a\" in label set, found '1'",
            ),
            (
                "m{a=\"1} 1\n",
                1,
                5,
                "unterminated label value: no closing '\"' before the end of the line",
            ),
            (
                "m{a=\"1\\\"} 1\nn 2\n",
                1,
                5,
                "unterminated label value: no closing '\"' before the end of the line",
            ),
            (
                "m{a=\"1\"\n",
                1,
                8,
                "unexpected end of line in label set (expected ',' or '}' after the label value)",
            ),
            (
                "m{a=\"1\"}\n",
                1,
                9,
                "expected a sample value, found end of line",
            ),
            (
                "m{a=\"1\"}1\n",
                1,
                9,
                "expected a space after the label set, found '1'",
            ),
            ("m\n", 1, 2, "expected a sample value, found end of line"),
            ("m", 1, 2, "expected a sample value, found end of input"),
            ("m-1 2\n", 1, 2, "invalid character '-' in metric name"),
            ("m 1x\n", 1, 3, "invalid sample value \"1x\""),
            (
                "ok 1\n{a=\"1\"} 1\n",
                2,
                1,
                "expected a metric name, '#' or an empty line, found '{'",
            ),
            (
                "ok 1\n1m 1\n",
                2,
                1,
                "expected a metric name, '#' or an empty line, found '1'",
            ),
            (
                "ok 1\n\u{e9}t\u{e9}{a=\"1\"} 1\n",
                2,
                1,
                "expected a metric name, '#' or an empty line, found 'é'",
            ),
            (
                "m{a=\"\u{e9}\u{e9}\",b=1} 1\n",
                1,
                12,
                "expected '\"' to start the value of label \"b\" in label set, found '1'",
            ),
            ("m\u{0} 1\n", 1, 2, "invalid character '\\0' in metric name"),
        ];
        for (text, line, column, message) in cases {
            let e = err(text, Format::PrometheusText);
            assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (*line, *column, *message),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_stop_the_parse() {
        let mut p = Parser::new("a 1\nb{ 2\nc 3\n", Format::PrometheusText);
        assert!(matches!(p.next(), Some(Ok(Entry::Sample(_)))));
        let e = p.next().unwrap().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(p.next().is_none());
        assert!(p.next().is_none());
    }

    #[test]
    fn openmetrics_basic() {
        let text = "# TYPE foo_seconds histogram\n# UNIT foo_seconds seconds\n# HELP foo_seconds Some \\\"text\\\"\n\
foo_seconds_bucket{le=\"0.1\"} 1 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n\
foo_seconds_bucket{le=\"+Inf\"} 2 # {trace_id=\"oHg5SJYRHA0\"} 9.8 1520879607.789\n\
foo_seconds_count 2\nfoo_seconds_sum 1.2e0 1520879607\nfoo_seconds_created 1520430000.123\n# EOF\n";
        let e = entries(text, Format::OpenMetrics).unwrap();
        assert_eq!(e.len(), 8);
        assert_eq!(
            e[0],
            Entry::Metadata(Metadata {
                family: "foo_seconds",
                kind: MetadataKind::Type(MetricType::Histogram),
                line: 1
            })
        );
        assert_eq!(
            e[1],
            Entry::Metadata(Metadata {
                family: "foo_seconds",
                kind: MetadataKind::Unit("seconds"),
                line: 2
            })
        );
        assert_eq!(
            e[2],
            Entry::Metadata(Metadata {
                family: "foo_seconds",
                kind: MetadataKind::Help("Some \\\"text\\\""),
                line: 3
            })
        );
        let s = samples(text, Format::OpenMetrics).unwrap();
        assert_eq!(
            s.iter()
                .map(|x| (x.series, x.value, x.timestamp_ms, x.line))
                .collect::<Vec<_>>(),
            vec![
                (
                    "foo_seconds_bucket{le=\"0.1\"}",
                    1.0,
                    Some(1520879607789),
                    4
                ),
                ("foo_seconds_bucket{le=\"+Inf\"}", 2.0, None, 5),
                ("foo_seconds_count", 2.0, None, 6),
                ("foo_seconds_sum", 1.2, Some(1520879607000), 7),
                ("foo_seconds_created", 1520430000.123, None, 8),
            ]
        );
        let stats = parse(text, Format::OpenMetrics, |_| {}).unwrap();
        assert_eq!(
            stats,
            Stats {
                samples: 5,
                metadata: 3,
                lines: 9
            }
        );
        for t in [
            "gauge",
            "counter",
            "gaugehistogram",
            "summary",
            "info",
            "stateset",
            "unknown",
        ] {
            let text = format!("# TYPE x {t}\n# EOF\n");
            match entries(&text, Format::OpenMetrics).unwrap()[0] {
                Entry::Metadata(Metadata {
                    kind: MetadataKind::Type(mt),
                    ..
                }) => assert_eq!(mt.as_str(), t),
                other => panic!("{other:?}"),
            }
        }
        let e = err("# TYPE x untyped\n# EOF\n", Format::OpenMetrics);
        assert_eq!((e.line, e.column), (1, 10));
    }

    #[test]
    fn openmetrics_timestamps() {
        let ts = |t: &str| one(&format!("m 1 {t}\n# EOF\n"), Format::OpenMetrics).timestamp_ms;
        assert_eq!(ts("1520879607.789"), Some(1520879607789));
        assert_eq!(ts("1520879607"), Some(1520879607000));
        assert_eq!(ts("1520879607.7"), Some(1520879607700));
        assert_eq!(ts("1520879607.78999"), Some(1520879607789));
        assert_eq!(ts("0.001"), Some(1));
        assert_eq!(ts("-1.5"), Some(-1500));
        assert_eq!(ts("1.5e9"), Some(1500000000000));
        assert_eq!(ts("1.520879607789e9"), Some(1520879607789));
        assert_eq!(ts(".5"), Some(500));
        for bad in [
            "NaN",
            "+Inf",
            "abc",
            "1e400",
            "99999999999999999999",
            "1..2",
        ] {
            let e = err(&format!("m 1 {bad}\n# EOF\n"), Format::OpenMetrics);
            assert_eq!((e.line, e.column), (1, 5), "{bad}");
            assert!(e.message.starts_with("invalid timestamp"), "{bad}: {e}");
        }
    }

    #[test]
    fn openmetrics_eof_rules() {
        assert_eq!(
            samples("m 1\n# EOF\n", Format::OpenMetrics).unwrap().len(),
            1
        );
        assert_eq!(samples("m 1\n# EOF", Format::OpenMetrics).unwrap().len(), 1);
        assert_eq!(
            samples("m 1\r\n# EOF\r\n", Format::OpenMetrics)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(samples("# EOF\n", Format::OpenMetrics).unwrap().len(), 0);

        let e = err("m 1\n", Format::OpenMetrics);
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("missing \"# EOF\""), "{e}");
        let e = err("m 1", Format::OpenMetrics);
        assert!(e.message.contains("missing \"# EOF\""), "{e}");
        let e = err("", Format::OpenMetrics);
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("missing \"# EOF\""), "{e}");
        let e = err("m 1\n# EOF\nm 2\n", Format::OpenMetrics);
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (3, 1, "unexpected content after \"# EOF\"")
        );
        let e = err("m 1\n# EOF\n\n", Format::OpenMetrics);
        assert_eq!((e.line, e.column), (3, 1));
        let e = err("# EOF \n", Format::OpenMetrics);
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 6, "unexpected space after \"# EOF\"")
        );
        let e = err("# EOFX\n", Format::OpenMetrics);
        assert_eq!((e.line, e.column), (1, 6));
        // Not EOF: an error, and samples before it were still yielded by the iterator.
        let mut p = Parser::new("m 1\nm 2\n", Format::OpenMetrics);
        assert!(matches!(p.next(), Some(Ok(_))));
        assert!(matches!(p.next(), Some(Ok(_))));
        assert!(matches!(p.next(), Some(Err(_))));
        assert!(p.next().is_none());
    }

    #[test]
    fn openmetrics_strictness() {
        let cases: &[(&str, u32, u32, &str)] = &[
            (
                "m 1\n\n# EOF\n",
                2,
                1,
                "empty line (not allowed in OpenMetrics)",
            ),
            (
                " m 1\n# EOF\n",
                1,
                1,
                "unexpected whitespace at the start of the line (not allowed in OpenMetrics)",
            ),
            (
                "m  1\n# EOF\n",
                1,
                3,
                "unexpected second space before the value: OpenMetrics separates tokens with exactly one space",
            ),
            (
                "m\t1\n# EOF\n",
                1,
                2,
                "unexpected tab: OpenMetrics separates tokens with exactly one space",
            ),
            (
                "m 1 \n# EOF\n",
                1,
                4,
                "trailing space after the sample value (not allowed in OpenMetrics)",
            ),
            (
                "m 1  2\n# EOF\n",
                1,
                5,
                "unexpected space after the sample value: OpenMetrics separates tokens with exactly one space",
            ),
            (
                "m{a=\"1\", b=\"2\"} 1\n# EOF\n",
                1,
                9,
                "unexpected whitespace in label set (expected a label name or '}')",
            ),
            (
                "# comment\n# EOF\n",
                1,
                3,
                "invalid comment: OpenMetrics allows only \"# HELP\", \"# TYPE\", \"# UNIT\" and \"# EOF\" lines",
            ),
            (
                "#EOF\n",
                1,
                2,
                "invalid comment: OpenMetrics allows only \"# HELP\", \"# TYPE\", \"# UNIT\" and \"# EOF\" lines",
            ),
            (
                "# TYPE  m gauge\n# EOF\n",
                1,
                8,
                "expected a metric name after \"# TYPE\", found space",
            ),
            (
                "# TYPE m Gauge\n# EOF\n",
                1,
                10,
                "invalid metric type \"Gauge\" (expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown)",
            ),
            (
                "m 1 2 3\n# EOF\n",
                1,
                7,
                "unexpected '3' after the timestamp",
            ),
            (
                "m 1 # x\n# EOF\n",
                1,
                5,
                "expected an exemplar \"# {labels} value [timestamp]\"",
            ),
            (
                "m 1 # {a=\"b\"}\n# EOF\n",
                1,
                14,
                "unexpected end of line after the exemplar labels",
            ),
            (
                "m 1 # {a=\"b\"} x\n# EOF\n",
                1,
                15,
                "invalid exemplar value \"x\"",
            ),
            (
                "m 1 # {a=\"b\"} 1 x\n# EOF\n",
                1,
                17,
                "invalid exemplar timestamp \"x\"",
            ),
            (
                "m 1 # {a=\"b\"} 1 2 3\n# EOF\n",
                1,
                18,
                "unexpected space after the exemplar",
            ),
            (
                "m 1 # { a=\"b\"} 1\n# EOF\n",
                1,
                8,
                "unexpected whitespace in label set (expected a label name or '}')",
            ),
            (
                "m 1 # {a=\"b} 1\n# EOF\n",
                1,
                10,
                "unterminated label value: no closing '\"' before the end of the line",
            ),
        ];
        for (text, line, column, message) in cases {
            let e = err(text, Format::OpenMetrics);
            assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (*line, *column, *message),
                "{text:?}"
            );
        }
    }

    #[test]
    fn openmetrics_exemplars_and_tolerance() {
        let ok = [
            "m_total 1 # {} 1\n# EOF\n",
            "m_total 1 # {a=\"b\",} 1\n# EOF\n",
            "m_total{x=\"y\",} 1 123 # {a=\"b\",c=\"d\"} 1.5 123.456\n# EOF\n",
            "m_total 1 # {a=\"with \\\" quote and } brace\"} 1\n# EOF\n",
            "m{} NaN\n# EOF\n",
        ];
        for text in ok {
            assert_eq!(
                samples(text, Format::OpenMetrics)
                    .unwrap_or_else(|e| panic!("{text:?}: {e}"))
                    .len(),
                1
            );
        }
        let s = one(
            "m_total{x=\"y\"} 7 # {trace_id=\"abc\"} 1 1520879607.789\n# EOF\n",
            Format::OpenMetrics,
        );
        assert_eq!(
            (s.series, s.value, s.timestamp_ms),
            ("m_total{x=\"y\"}", 7.0, None)
        );
    }

    #[test]
    fn detect_format_cases() {
        assert_eq!(detect_format(None), Format::PrometheusText);
        assert_eq!(
            detect_format(Some("text/plain; version=0.0.4; charset=utf-8")),
            Format::PrometheusText
        );
        assert_eq!(
            detect_format(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            detect_format(Some("application/openmetrics-text;version=0.0.1")),
            Format::OpenMetrics
        );
        assert_eq!(
            detect_format(Some(" Application/OpenMetrics-Text ")),
            Format::OpenMetrics
        );
        assert_eq!(detect_format(Some("")), Format::PrometheusText);
        assert_eq!(
            detect_format(Some("application/json")),
            Format::PrometheusText
        );
    }

    #[test]
    fn callback_and_iterator_agree() {
        for (name, text) in fixtures() {
            for format in [Format::PrometheusText, Format::OpenMetrics] {
                let text = if format == Format::OpenMetrics {
                    to_openmetrics(&text)
                } else {
                    text.clone()
                };
                let via_iter: Result<Vec<Sample>, ParseError> = Parser::new(&text, format)
                    .filter_map(|e| match e {
                        Ok(Entry::Sample(s)) => Some(Ok(s)),
                        Ok(Entry::Metadata(_)) => None,
                        Err(e) => Some(Err(e)),
                    })
                    .collect();
                let via_cb = samples(&text, format);
                match (via_iter, via_cb) {
                    (Ok(a), Ok(b)) => assert_eq!(a.len(), b.len(), "{name}"),
                    (Err(a), Err(b)) => assert_eq!(a, b, "{name}"),
                    (a, b) => panic!("{name}: {a:?} vs {b:?}"),
                }
            }
        }
    }

    /// Small deterministic PRNG (xorshift64*), so the robustness test needs no
    /// dependencies and is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Runs every entry point over `text`: nothing may panic, and every cache
    /// key produced must be accepted by parse_series.
    fn exercise(text: &str) {
        for format in [Format::PrometheusText, Format::OpenMetrics] {
            for ws in [false, true] {
                let mut n = 0usize;
                for entry in Parser::new(text, format).allow_label_whitespace(ws) {
                    match entry {
                        Ok(Entry::Sample(s)) => {
                            if let Err(e) = parse_series(s.series) {
                                // Only duplicate/reserved label names may be refused.
                                assert!(
                                    e.message.contains("duplicate")
                                        || e.message.contains("reserved"),
                                    "parse_series({:?}) failed: {e}",
                                    s.series
                                );
                            }
                            let _ = s.metric_name();
                        }
                        Ok(Entry::Metadata(m)) => {
                            if let MetadataKind::Help(h) = m.kind {
                                let _ = unescape_help(h, format);
                            }
                        }
                        Err(e) => {
                            let _ = e.to_string();
                            assert!(e.line >= 1 && e.column >= 1);
                        }
                    }
                    n += 1;
                    assert!(n <= text.len() + 2, "parser does not advance");
                }
            }
        }
        let _ = parse_series(text);
    }

    #[test]
    fn robustness_truncations_of_fixtures() {
        let extra =
            "m{a=\"x\\\"y}z\",b=\"\u{e9}\"} 1 123 # {t=\"1\"} 2 3.5\r\n# HELP m h\\n\n# EOF\n"
                .to_string();
        let mut corpus: Vec<(Format, String)> = fixtures()
            .into_iter()
            .map(|(_, t)| (Format::PrometheusText, t))
            .collect();
        let om: Vec<(Format, String)> = corpus
            .iter()
            .map(|(_, t)| (Format::OpenMetrics, to_openmetrics(t)))
            .collect();
        corpus.extend(om);
        corpus.push((Format::OpenMetrics, extra));
        for (format, text) in &corpus {
            // The whole payload cut at every offset, in its own format.
            for cut in 0..=text.len() {
                if text.is_char_boundary(cut) {
                    let n = Parser::new(&text[..cut], *format).count();
                    assert!(n <= cut + 2);
                }
            }
            // Every pair of adjacent lines cut at every offset, through every
            // entry point, format and mode.
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for i in 0..lines.len() {
                let window = lines[i.saturating_sub(1)..=i].concat();
                for cut in 0..=window.len() {
                    if window.is_char_boundary(cut) {
                        exercise(&window[..cut]);
                    }
                }
            }
        }
    }

    #[test]
    fn robustness_random_bytes_and_mutations() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Random strings over an alphabet rich in syntax characters.
        let alphabet: Vec<char> = "ab_:{}=\",\\ \t\n\r#.+-eE019InfNaHELPTYPUO\u{e9}\u{0}"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let len = rng.below(64);
            let s: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            exercise(&s);
        }
        // Fully random bytes, lossily made UTF-8.
        for _ in 0..5_000 {
            let len = rng.below(128);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            exercise(&String::from_utf8_lossy(&bytes));
        }
        // Mutations of fixtures: replace, insert or delete a few characters.
        let corpus: Vec<String> = fixtures().into_iter().map(|(_, t)| t).collect();
        for text in &corpus {
            for _ in 0..100 {
                let mut chars: Vec<char> = text.chars().collect();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(chars.len().max(1));
                    let c = alphabet[rng.below(alphabet.len())];
                    match rng.below(3) {
                        0 if at < chars.len() => chars[at] = c,
                        1 => chars.insert(at.min(chars.len()), c),
                        _ if at < chars.len() => {
                            chars.remove(at);
                        }
                        _ => {}
                    }
                }
                let s: String = chars.into_iter().collect();
                exercise(&s);
                exercise(&to_openmetrics(&s));
            }
        }
    }

    #[test]
    fn swar_scanners_match_scalar() {
        let mut rng = Rng(42);
        let alphabet = b"ab\"\\\n x";
        for _ in 0..5_000 {
            let len = rng.below(40);
            let b: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            for from in 0..=b.len() {
                let nl = b[from..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |i| from + i);
                assert_eq!(find_newline(&b, from), nl);
                let stop = b[from..]
                    .iter()
                    .position(|&c| matches!(c, b'"' | b'\\' | b'\n'))
                    .map_or(b.len(), |i| from + i);
                assert_eq!(find_lval_stop(&b, from), stop);
            }
        }
    }
}
