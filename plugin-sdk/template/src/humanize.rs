//! Prometheus' `humanize*` template functions, output for output.
//!
//! These are ported from Prometheus 2.42 `template/template.go`, including
//! its quirks (`u` rather than `µ` for micro, `ki` rather than `Ki`, integer
//! seconds once a duration reaches a minute), because operators paste
//! annotation templates from their Prometheus rules and expect the same text.

use std::fmt::Write as _;

use super::gofmt::format_g;

/// Go's `fmt.Sprintf("%.4g", v)`: the precision Prometheus humanizes with.
fn g4(v: f64) -> String {
    format_g(v, Some(4))
}

/// Scales `v` (with `|v| < 1`, non-zero) up by 1000 per step, returning the
/// scaled value and the prefix of the last step.
fn small_prefix(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

/// `humanize`: SI prefixes (`k M G T P E Z Y`, `m u n p f a z y`) and four
/// significant digits: 1234567 -> `1.235M`, 0.000123 -> `123u`.
pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return g4(v) + prefix;
    }
    let (v, prefix) = small_prefix(v);
    g4(v) + prefix
}

/// `humanize1024`: binary prefixes (`ki Mi Gi ...`) and four significant
/// digits; values with `|v| <= 1` are printed plainly.
pub(crate) fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    g4(v) + prefix
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s` (whole seconds once the
/// duration reaches a minute), `4.5s` below a minute, and SI-prefixed
/// seconds below one second (`123.5ms`).
pub(crate) fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return g4(v) + "s";
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        // Go's int64(v) truncates toward zero; `as` does too (and saturates
        // where Go's result is unspecified).
        let whole = v as i64;
        let seconds = whole % 60;
        let minutes = (whole / 60) % 60;
        let hours = (whole / 60 / 60) % 24;
        let days = whole / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let (v, prefix) = small_prefix(v);
    format!("{}{prefix}s", g4(v))
}

/// `humanizePercentage`: a ratio as a percentage, 0.0537 -> `5.37%`.
pub(crate) fn humanize_percentage(v: f64) -> String {
    g4(v * 100.0) + "%"
}

/// `humanizeTimestamp`: Unix seconds as Go prints a UTC `time.Time`
/// (`2023-03-01 12:00:00.5 +0000 UTC`), truncated to milliseconds as
/// Prometheus' `model.Time` does.
pub(crate) fn humanize_timestamp(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Ok(g4(v));
    }
    let nanos = v * 1e9;
    if nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            super::gofmt::format_v(v)
        ));
    }
    Ok(go_time_string((nanos as i64) / 1_000_000))
}

/// Go's `time.Time.String()` of a UTC instant given in Unix milliseconds.
pub(crate) fn go_time_string(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(40);
    if year < 0 {
        out.push('-');
    }
    let _ = write!(
        out,
        "{:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        year.unsigned_abs(),
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if millis != 0 {
        // Go's ".999999999" layout: fractional digits without trailing zeros.
        let frac = format!("{millis:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected outputs are those of Prometheus 2.42's template tests
    // (template/template_test.go) and of running its functions in Go.

    #[test]
    fn humanize_golden() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (1234567.0, "1.235M"),
            (1234.0, "1.234k"),
            (12.5, "12.5"),
            (0.1, "100m"),
            (0.000123, "123u"),
            (0.0000012345, "1.234u"),
            (1e-12, "1p"),
            (1e24, "1Y"),
            (1e27, "1000Y"),
            (-1234567.0, "-1.235M"),
            (-0.5, "-500m"),
            (999.9, "999.9"),
            (999_999.0, "1000k"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(humanize(v), want, "humanize {v:?}");
        }
    }

    #[test]
    fn humanize1024_golden() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (1023.0, "1023"),
            (1024.0, "1ki"),
            (1048576.0, "1Mi"),
            (1_500_000.0, "1.431Mi"),
            (1099511627776.0, "1Ti"),
            (f64::INFINITY, "+Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(humanize_1024(v), want, "humanize1024 {v:?}");
        }
    }

    #[test]
    fn humanize_duration_golden() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0s"),
            (1.0, "1s"),
            (1.5, "1.5s"),
            (59.999, "60s"),
            (60.0, "1m 0s"),
            (61.9, "1m 1s"),
            (3600.0, "1h 0m 0s"),
            (86400.0, "1d 0h 0m 0s"),
            (93784.0, "1d 2h 3m 4s"),
            (123456.789, "1d 10h 17m 36s"),
            (-93784.0, "-1d 2h 3m 4s"),
            (-1.5, "-1.5s"),
            (0.1234567, "123.5ms"),
            (0.000001, "1us"),
            (-0.002, "-2ms"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ];
        for &(v, want) in cases {
            assert_eq!(humanize_duration(v), want, "humanizeDuration {v:?}");
        }
    }

    #[test]
    fn humanize_percentage_golden() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0%"),
            (0.0537, "5.37%"),
            (0.1234567, "12.35%"),
            (1.0, "100%"),
            (12.5, "1250%"),
            (-0.25, "-25%"),
        ];
        for &(v, want) in cases {
            assert_eq!(humanize_percentage(v), want, "humanizePercentage {v:?}");
        }
    }

    #[test]
    fn humanize_timestamp_golden() {
        let ok = |v: f64| humanize_timestamp(v).unwrap_or_else(|e| e);
        assert_eq!(ok(0.0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(ok(1435065584.128), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(ok(1677672000.5), "2023-03-01 12:00:00.5 +0000 UTC");
        assert_eq!(ok(951782400.0), "2000-02-29 00:00:00 +0000 UTC");
        assert_eq!(ok(-1.0), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(ok(f64::NAN), "NaN");
        assert!(humanize_timestamp(1e19).is_err());
    }
}
