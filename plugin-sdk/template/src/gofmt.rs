//! Go's `fmt` and `strconv` number formatting, reproduced digit for digit.
//!
//! Alert annotations written for Prometheus print numbers through Go's
//! `fmt` (`{{ $value }}` is `%v`, `humanize` is `%.4g`, `printf` is
//! `fmt.Sprintf`). Users compare our notifications with the ones Prometheus
//! sent, so we reproduce Go's choices exactly: shortest round-trip digits for
//! `%v`, the `%e`/`%f` switch of `%g`, two-digit exponents, `+Inf` and `NaN`.
//!
//! Rust's float formatting gives us correctly rounded decimal digits (ties
//! to even on the exact binary value, as Go's `strconv` does); this module
//! only lays those digits out the way Go does.

use std::fmt::Write as _;

/// The decimal digits of `|v|`: `0.d1d2d3... x 10^dp`, without trailing
/// zeros; no digits at all for zero. This is strconv's `decimalSlice`.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

impl Digits {
    /// Parses Rust's `{:e}` output (`1.2345e6`, `0e0`, `5.00e-3`).
    fn from_sci(s: &str) -> Digits {
        let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits { d, dp: exp + 1 }
    }

    /// The shortest digits that read back as the same `f64`.
    fn shortest(v: f64) -> Digits {
        Digits::from_sci(&format!("{:e}", v.abs()))
    }

    /// `v` correctly rounded to `sig` significant digits (`sig >= 1`).
    fn significant(v: f64, sig: usize) -> Digits {
        Digits::from_sci(&format!("{:.*e}", sig.saturating_sub(1), v.abs()))
    }

    fn nd(&self) -> i64 {
        self.d.len() as i64
    }

    /// strconv's `fmtE`: `d.ddde±XX` with `prec` digits after the point.
    fn fmt_e(&self, out: &mut String, prec: i64, upper: bool) {
        out.push(char::from(self.d.first().copied().unwrap_or(b'0')));
        if prec > 0 {
            out.push('.');
            let end = self.nd().min(prec + 1);
            let mut i = 1;
            while i < end {
                out.push(char::from(self.d[i as usize]));
                i += 1;
            }
            while i <= prec {
                out.push('0');
                i += 1;
            }
        }
        out.push(if upper { 'E' } else { 'e' });
        let exp = if self.d.is_empty() { 0 } else { self.dp - 1 };
        out.push(if exp < 0 { '-' } else { '+' });
        let exp = exp.unsigned_abs();
        if exp < 10 {
            out.push('0');
        }
        let _ = write!(out, "{exp}");
    }

    /// strconv's `fmtF`: integer part, then `prec` digits after the point.
    fn fmt_f(&self, out: &mut String, prec: i64) {
        if self.dp > 0 {
            let m = self.nd().min(self.dp);
            for &b in &self.d[..m as usize] {
                out.push(char::from(b));
            }
            for _ in m..self.dp {
                out.push('0');
            }
        } else {
            out.push('0');
        }
        if prec > 0 {
            out.push('.');
            for i in 1..=prec {
                let j = self.dp + i - 1;
                let c = if (0..self.nd()).contains(&j) {
                    self.d[j as usize]
                } else {
                    b'0'
                };
                out.push(char::from(c));
            }
        }
    }
}

/// `NaN` / `+Inf` / `-Inf` as strconv spells them, or `None` for a finite `v`.
fn special(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("+Inf")
    } else if v == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Go's `strconv.FormatFloat(v, 'g', prec, 64)`; `None` is precision -1
/// (shortest round-trip digits), which is also what `%v` prints.
pub(crate) fn format_g(v: f64, prec: Option<usize>) -> String {
    let mut out = String::new();
    write_g(&mut out, v, prec, false);
    out
}

/// Go's `%v` of a `float64`.
pub(crate) fn format_v(v: f64) -> String {
    format_g(v, None)
}

fn write_g(out: &mut String, v: f64, prec: Option<usize>, upper: bool) {
    if let Some(s) = special(v) {
        out.push_str(s);
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    let (digs, prec, shortest) = match prec {
        None => {
            let d = Digits::shortest(v);
            let n = d.nd();
            (d, n, true)
        }
        Some(p) => {
            let p = p.max(1);
            (Digits::significant(v, p), p as i64, false)
        }
    };
    let mut eprec = prec;
    if eprec > digs.nd() && digs.nd() >= digs.dp {
        eprec = digs.nd();
    }
    // Go: "if precision was the shortest possible, use precision 6 for this
    // decision" -- which is why `%v` prints 100000 but 1e+06.
    if shortest {
        eprec = 6;
    }
    let exp = digs.dp - 1;
    if exp < -4 || exp >= eprec {
        let p = prec.min(digs.nd());
        digs.fmt_e(out, (p - 1).max(0), upper);
        return;
    }
    let p = if prec > digs.dp { digs.nd() } else { prec };
    digs.fmt_f(out, (p - digs.dp).max(0));
}

/// Go's `strconv.FormatFloat(v, 'e', prec, 64)`.
fn write_e(out: &mut String, v: f64, prec: usize, upper: bool) {
    if let Some(s) = special(v) {
        out.push_str(s);
        return;
    }
    if v.is_sign_negative() {
        out.push('-');
    }
    Digits::significant(v, prec + 1).fmt_e(out, prec as i64, upper);
}

/// Go's `strconv.FormatFloat(v, 'f', prec, 64)`.
fn write_f(out: &mut String, v: f64, prec: usize) {
    if let Some(s) = special(v) {
        out.push_str(s);
        return;
    }
    // Exact decimal expansion rounded half-to-even, as strconv's bigFtoa.
    let s = format!("{:.*}", prec, v.abs());
    if v.is_sign_negative() {
        out.push('-');
    }
    out.push_str(&s);
}

/// One argument to [`sprintf`], typed the way Go's `fmt` sees it.
#[derive(Clone, Debug)]
pub(crate) enum Arg<'a> {
    /// A Go `string`.
    Str(&'a str),
    /// A Go `int`.
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A Go `bool`.
    Bool(bool),
    /// Anything else, already printed with `%v`, with its Go type name.
    Other {
        type_name: &'static str,
        text: String,
    },
}

impl Arg<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Arg::Str(_) => "string",
            Arg::Int(_) => "int",
            Arg::Float(_) => "float64",
            Arg::Bool(_) => "bool",
            Arg::Other { type_name, .. } => type_name,
        }
    }

    /// `%v` of the argument.
    fn default_text(&self) -> String {
        match self {
            Arg::Str(s) => (*s).to_string(),
            Arg::Int(i) => i.to_string(),
            Arg::Float(f) => format_v(*f),
            Arg::Bool(b) => b.to_string(),
            Arg::Other { text, .. } => text.clone(),
        }
    }
}

/// The flags, width and precision of one `%` directive.
#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    /// Pads `body` (which may start with a sign) to the width, as fmt does;
    /// zero padding goes after the sign and only applies to numbers.
    fn pad(&self, out: &mut String, body: &str, numeric: bool) {
        let len = body.chars().count();
        let width = self.width.unwrap_or(0);
        if len >= width {
            out.push_str(body);
            return;
        }
        let fill = width - len;
        if self.minus {
            out.push_str(body);
            out.extend(std::iter::repeat_n(' ', fill));
        } else if self.zero && numeric {
            let (sign, digits) = match body.as_bytes().first() {
                Some(b'-' | b'+' | b' ') => body.split_at(1),
                _ => ("", body),
            };
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', fill));
            out.push_str(digits);
        } else {
            out.extend(std::iter::repeat_n(' ', fill));
            out.push_str(body);
        }
    }

    /// Adds the `+` or space sign flag to a non-negative number.
    fn signed(&self, body: String) -> String {
        if body.starts_with('-') {
            body
        } else if self.plus {
            format!("+{body}")
        } else if self.space {
            format!(" {body}")
        } else {
            body
        }
    }
}

/// Go's `fmt.Sprintf` for the verbs alert templates use: `%v %s %q %d %x %X
/// %f %F %e %E %g %G %t %%`, with flags `-+ 0#`, width and precision.
///
/// Mismatches print the way Go prints them (`%!d(float64=1.5)`,
/// `%!s(MISSING)`, `%!(EXTRA int=1)`), so a wrong template shows what went
/// wrong in the notification instead of failing it.
pub(crate) fn sprintf(format: &str, args: &[Arg<'_>]) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut next = 0usize;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = read_number(&mut chars);
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            spec.prec = Some(read_number(&mut chars).unwrap_or(0));
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        format_one(&mut out, &spec, verb, arg);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", a.type_name(), a.default_text());
        }
        out.push(')');
    }
    out
}

fn read_number(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        let Some(v) = d.to_digit(10) else { break };
        // Go caps widths at 1e6; we cap to keep a hostile template small.
        n = Some((n.unwrap_or(0) * 10 + v as usize).min(10_000));
        chars.next();
    }
    n
}

fn format_one(out: &mut String, spec: &Spec, verb: char, arg: &Arg<'_>) {
    match (verb, arg) {
        ('v', Arg::Float(f)) => float_verb(out, spec, 'g', *f),
        ('v', Arg::Int(i)) | ('d', Arg::Int(i)) => {
            spec.pad(out, &spec.signed(i.to_string()), true);
        }
        ('v' | 's', Arg::Str(s)) => {
            let s: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => (*s).to_string(),
            };
            spec.pad(out, &s, false);
        }
        ('v' | 't', Arg::Bool(b)) => spec.pad(out, &b.to_string(), false),
        ('v' | 's', Arg::Other { text, .. }) => spec.pad(out, text, false),
        ('q', Arg::Str(s)) => spec.pad(out, &go_quote(s), false),
        ('x' | 'X', Arg::Int(i)) => {
            let body = if verb == 'x' {
                format!("{:x}", i.unsigned_abs())
            } else {
                format!("{:X}", i.unsigned_abs())
            };
            let body = if spec.sharp {
                format!("0{verb}{body}")
            } else {
                body
            };
            let body = if *i < 0 { format!("-{body}") } else { body };
            spec.pad(out, &spec.signed(body), true);
        }
        ('x' | 'X', Arg::Str(s)) => {
            let mut body = String::with_capacity(s.len() * 2);
            for b in s.bytes() {
                let _ = if verb == 'x' {
                    write!(body, "{b:02x}")
                } else {
                    write!(body, "{b:02X}")
                };
            }
            spec.pad(out, &body, false);
        }
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Arg::Float(f)) => float_verb(out, spec, verb, *f),
        _ => {
            let _ = write!(out, "%!{verb}({}={})", arg.type_name(), arg.default_text());
        }
    }
}

fn float_verb(out: &mut String, spec: &Spec, verb: char, f: f64) {
    let mut body = String::new();
    match verb {
        'e' | 'E' => write_e(&mut body, f, spec.prec.unwrap_or(6), verb == 'E'),
        'f' | 'F' => write_f(&mut body, f, spec.prec.unwrap_or(6)),
        _ => write_g(&mut body, f, spec.prec, verb == 'G'),
    }
    if f.is_nan() || f.is_infinite() {
        // fmt never zero-pads these, keeps the sign strconv gave infinities
        // ("+Inf" even for %v) and signs NaN only when asked to.
        let body = if f.is_nan() && spec.plus {
            "+NaN".to_string()
        } else if f.is_nan() && spec.space {
            " NaN".to_string()
        } else {
            body
        };
        let unpadded = Spec {
            zero: false,
            ..*spec
        };
        unpadded.pad(out, &body, false);
        return;
    }
    spec.pad(out, &spec.signed(body), true);
}

/// Go's `strconv.Quote`: double-quoted with Go escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings are what Go 1.20's fmt prints for the same input.
    #[test]
    fn percent_v_matches_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (0.05, "0.05"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.0 / 3.0, "0.3333333333333333"),
            (123456.789, "123456.789"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (-2.5, "-2.5"),
        ];
        for &(v, want) in cases {
            assert_eq!(format_v(v), want, "%v of {v:?}");
        }
    }

    #[test]
    fn percent_4g_matches_go() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (1.234567, "1.235"),
            (1234.0, "1234"),
            (12345.0, "1.234e+04"),
            (12355.0, "1.236e+04"),
            (100.0, "100"),
            (1000.0, "1000"),
            (10000.0, "1e+04"),
            (0.5, "0.5"),
            (0.0001234, "0.0001234"),
            (0.00001234, "1.234e-05"),
            (5.37, "5.37"),
            (999.94, "999.9"),
            // 999.95 is 999.950000000000045... in binary: rounds up.
            (999.95, "1000"),
            (999.96, "1000"),
            (-1.5, "-1.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(format_g(v, Some(4)), want, "%.4g of {v:?}");
        }
        // Ties round half to even on the exact binary value, like strconv.
        assert_eq!(format_g(0.125, Some(2)), "0.12");
        assert_eq!(format_g(0.375, Some(2)), "0.38");
        assert_eq!(format_g(123.0, Some(2)), "1.2e+02");
    }

    #[test]
    fn sprintf_verbs() {
        let f = |fmt: &str, args: &[Arg<'_>]| sprintf(fmt, args);
        assert_eq!(f("%.2f", &[Arg::Float(2.675)]), "2.67");
        assert_eq!(f("%.0f", &[Arg::Float(2.5)]), "2");
        assert_eq!(f("%f", &[Arg::Float(1.0)]), "1.000000");
        assert_eq!(f("%e", &[Arg::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(f("%.3g", &[Arg::Float(1234.5678)]), "1.23e+03");
        assert_eq!(f("%g", &[Arg::Float(1e6)]), "1e+06");
        assert_eq!(f("%v", &[Arg::Float(0.1)]), "0.1");
        assert_eq!(f("%d%%", &[Arg::Int(42)]), "42%");
        assert_eq!(
            f("%5d|%-5d|%05d", &[Arg::Int(1), Arg::Int(2), Arg::Int(-3)]),
            "    1|2    |-0003"
        );
        assert_eq!(f("%+d %+.1f", &[Arg::Int(1), Arg::Float(2.0)]), "+1 +2.0");
        assert_eq!(
            f("%s=%q", &[Arg::Str("a"), Arg::Str("b\"c")]),
            "a=\"b\\\"c\""
        );
        assert_eq!(f("%.2s", &[Arg::Str("abc")]), "ab");
        assert_eq!(
            f("%x %X %#x", &[Arg::Int(255), Arg::Int(255), Arg::Int(255)]),
            "ff FF 0xff"
        );
        assert_eq!(f("%t", &[Arg::Bool(true)]), "true");
        assert_eq!(f("%8.3f|", &[Arg::Float(1.23456)]), "   1.235|");
        assert_eq!(f("%f", &[Arg::Float(f64::INFINITY)]), "+Inf");
        assert_eq!(f("%05f", &[Arg::Float(f64::NAN)]), "  NaN");
    }

    #[test]
    fn sprintf_mismatches_print_like_go() {
        assert_eq!(sprintf("%d", &[Arg::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%.2f", &[Arg::Int(1)]), "%!f(int=1)");
        assert_eq!(sprintf("%s %s", &[Arg::Str("a")]), "a %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &[Arg::Str("a"), Arg::Int(1)]),
            "a%!(EXTRA int=1)"
        );
        assert_eq!(sprintf("100%", &[]), "100%!(NOVERB)");
    }
}
