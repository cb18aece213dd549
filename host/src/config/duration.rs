//! Durations in Prometheus syntax: `250ms`, `30s`, `1m30s`, `1h`, `7d`, `2w`, `1y`.

use std::time::Duration;

/// Units from the largest down, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 60 * 60 * 1000),
    ("w", 7 * 24 * 60 * 60 * 1000),
    ("d", 24 * 60 * 60 * 1000),
    ("h", 60 * 60 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// The longest duration Prometheus accepts (the largest `i64` of
/// nanoseconds, about 292 years); it also keeps `Instant + duration` from
/// overflowing.
const MAX_MILLIS: u64 = (i64::MAX / 1_000_000) as u64;

/// Parses a duration in Prometheus syntax: whole numbers each followed by a
/// unit (`ms`, `s`, `m`, `h`, `d`, `w`, `y`), units in descending order and
/// each at most once, as in `1h30m` or `1s500ms`. A bare `0` is zero. A year
/// is 365 days.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration \"{s}\": {why}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("invalid duration \"\": expected a number and a unit, like \"30s\"".into());
    }
    let mut rest = s;
    let mut total: u64 = 0;
    // Index into UNITS of the last unit seen; the next one must come later.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(invalid(
                "expected whole numbers each followed by a unit, like \"1m30s\"",
            ));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.len()
            - tail
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, tail) = tail.split_at(unit_len);
        match tail.chars().next() {
            _ if !unit.is_empty() => {}
            None => return Err(invalid("missing unit (ms, s, m, h, d, w or y)")),
            Some('.') => {
                return Err(invalid(
                    "fractions are not allowed: use a smaller unit, like \"1s500ms\"",
                ));
            }
            Some(c) if c.is_whitespace() => return Err(invalid("spaces are not allowed")),
            Some(c) => return Err(invalid(&format!("unexpected `{c}`"))),
        }
        let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(invalid(&format!(
                "unknown unit \"{unit}\" (use ms, s, m, h, d, w or y)"
            )));
        };
        if last.is_some_and(|last| index <= last) {
            return Err(invalid(
                "units must each appear once, largest first, like \"1h30m\"",
            ));
        }
        last = Some(index);
        let millis = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[index].1))
            .and_then(|ms| total.checked_add(ms))
            .filter(|ms| *ms <= MAX_MILLIS);
        total = millis.ok_or_else(|| invalid("too large (at most about 292y)"))?;
        rest = tail;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way Prometheus does: `1m30s`, `250ms`, `0s`.
/// Years and weeks are used only when they divide the duration exactly
/// (`90d`, not `12w6d`). Precision below a millisecond is dropped.
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (i, (unit, size)) in UNITS.iter().enumerate() {
        let exact_only = i < 2;
        if exact_only && ms % size != 0 {
            continue;
        }
        let n = ms / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms -= n * size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("30s"), Ok(ms(30_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1s500ms"), Ok(ms(1_500)));
        assert_eq!(parse_duration("2d"), Ok(ms(2 * 86_400_000)));
        assert_eq!(parse_duration("1w"), Ok(ms(7 * 86_400_000)));
        assert_eq!(parse_duration("1y"), Ok(ms(365 * 86_400_000)));
        assert_eq!(parse_duration("292y"), Ok(ms(292 * 365 * 86_400_000)));
        assert_eq!(
            parse_duration("1y2w3d4h5m6s7ms"),
            Ok(ms(
                ((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7
            ))
        );
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "",
            "s",
            "15",
            "1.5s",
            "-1s",
            "1x",
            "1S",
            " 1s",
            "1s ",
            "1s1m",
            "1m1m",
            "1ms1s",
            "1h 2m",
            "99999999999999999999s",
            "584942418y",
            "293y",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |s| parse_duration(s).unwrap_err();
        assert_eq!(
            err("15"),
            "invalid duration \"15\": missing unit (ms, s, m, h, d, w or y)"
        );
        assert_eq!(
            err("1x"),
            "invalid duration \"1x\": unknown unit \"x\" (use ms, s, m, h, d, w or y)"
        );
        assert_eq!(
            err("1.5s"),
            "invalid duration \"1.5s\": fractions are not allowed: use a smaller unit, like \"1s500ms\""
        );
        assert_eq!(
            err("30 m"),
            "invalid duration \"30 m\": spaces are not allowed"
        );
        assert_eq!(
            err("5s+1m"),
            "invalid duration \"5s+1m\": expected whole numbers each followed by a unit, like \"1m30s\""
        );
        assert_eq!(
            err("1s1m"),
            "invalid duration \"1s1m\": units must each appear once, largest first, like \"1h30m\""
        );
    }

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(ms(90_000)), "1m30s");
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(ms(1_500)), "1s500ms");
        assert_eq!(format_duration(ms(14 * 86_400_000)), "2w");
        assert_eq!(format_duration(ms(90 * 86_400_000)), "90d");
        assert_eq!(format_duration(ms(365 * 86_400_000)), "1y");
        assert_eq!(format_duration(Duration::from_micros(1_500)), "1ms");
    }

    #[test]
    fn format_then_parse_round_trips() {
        for s in [
            "0s", "250ms", "15s", "1m30s", "1h", "1d2h", "2w", "1y", "1h0m1ms",
        ] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{s}");
        }
    }
}
