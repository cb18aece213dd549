//! Prometheus-style durations ("90s", "4h", "1h30m", "500ms") for
//! parameters, parsed while the parameters are deserialized so a bad one is
//! reported by `configure` with the field's name:
//!
//! ```
//! use vigil_plugin_sdk::duration::Duration;
//! #[derive(serde::Deserialize)]
//! struct P { stale_after: Duration }
//! let p: P = vigil_plugin_sdk::parse_params(r#"{"stale_after": "1h30m"}"#).unwrap();
//! assert_eq!(p.stale_after.ms, 5_400_000);
//! assert_eq!(p.stale_after.to_string(), "1h30m");
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A non-negative duration in milliseconds, written like a Prometheus
/// duration: units `y` (365d), `w`, `d`, `h`, `m`, `s`, `ms`, largest first,
/// each at most once (`"1h30m"`), or a bare `"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration {
    /// The length in milliseconds.
    pub ms: i64,
}

impl Duration {
    /// `ms` milliseconds.
    pub const fn from_ms(ms: i64) -> Self {
        Duration { ms }
    }

    /// The length in seconds.
    pub fn secs(self) -> f64 {
        self.ms as f64 / 1000.0
    }
}

/// Units in the only order they may appear, with their length in ms.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus-style duration.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        Err(format!(
            "invalid duration {text:?}: {why} (expected e.g. \"30s\", \"5m\", \"1h30m\"; units y, w, d, h, m, s, ms)"
        ))
    };
    if text == "0" {
        return Ok(Duration::from_ms(0));
    }
    if text.is_empty() {
        return bad("empty");
    }
    let mut rest = text;
    let mut total: i64 = 0;
    // Index into UNITS of the next unit allowed (units strictly decrease).
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return bad("expected a number");
        }
        let (number, tail) = rest.split_at(digits);
        let Ok(number) = number.parse::<i64>() else {
            return bad("number too large");
        };
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return match (unit, tail.chars().next()) {
                ("", None) => bad("missing unit"),
                ("", Some(c)) => bad(&format!("unexpected {c:?}")),
                (_, _) => bad(&format!("unknown unit {unit:?}")),
            };
        };
        if pos < next_unit {
            return bad("units must go from largest to smallest, each at most once");
        }
        next_unit = pos + 1;
        let Some(sum) = number
            .checked_mul(UNITS[pos].1)
            .and_then(|ms| total.checked_add(ms))
        else {
            return bad("too long");
        };
        total = sum;
        rest = tail;
    }
    Ok(Duration::from_ms(total))
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Prometheus-style: largest units first, zero parts left out ("7m12s",
/// "1d2h", "0s"); whole weeks at most, no years.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ms == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.ms;
        if rest < 0 {
            f.write_str("-")?;
            rest = rest.saturating_neg();
        }
        for (unit, len) in &UNITS[1..] {
            let n = rest / len;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest -= n * len;
            }
        }
        Ok(())
    }
}

/// A duration given in (possibly fractional) seconds, for messages: whole
/// seconds from one second up, milliseconds below; saturates when huge.
pub fn human_secs(secs: f64) -> Duration {
    let ms = if secs.abs() >= 1.0 {
        (secs.round() * 1000.0).clamp(-9e18, 9e18)
    } else {
        (secs * 1000.0).round()
    };
    // In range after the clamp; NaN becomes 0.
    Duration::from_ms(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        let ms = |t| parse(t).map(|d| d.ms);
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("5m"), Ok(300_000));
        assert_eq!(ms("4h"), Ok(14_400_000));
        assert_eq!(ms("1d"), Ok(86_400_000));
        assert_eq!(ms("2w"), Ok(14 * 86_400_000));
        assert_eq!(ms("1y"), Ok(365 * 86_400_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("1m0s500ms"), Ok(60_500));
    }

    #[test]
    fn rejects_bad_durations() {
        for (text, why) in [
            ("", "empty"),
            ("5", "missing unit"),
            ("5x", "unknown unit \"x\""),
            ("h", "expected a number"),
            ("-5m", "expected a number"),
            ("1.5h", "unexpected '.'"),
            ("30m1h", "largest to smallest"),
            ("1m1m", "largest to smallest"),
            ("99999999999999999999s", "number too large"),
            ("9999999999999999s", "too long"),
            ("5m ", "expected a number"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn formats_like_prometheus() {
        let f = |ms| Duration::from_ms(ms).to_string();
        assert_eq!(f(0), "0s");
        assert_eq!(f(432_000), "7m12s");
        assert_eq!(f(93_600_000), "1d2h");
        assert_eq!(f(1_500), "1s500ms");
        assert_eq!(f(-60_000), "-1m");
        assert_eq!(human_secs(432.4).to_string(), "7m12s");
        assert_eq!(human_secs(0.25).to_string(), "250ms");
        assert_eq!(human_secs(f64::INFINITY).ms, 9_000_000_000_000_000_000);
        assert_eq!(human_secs(f64::NAN).ms, 0);
    }
}
