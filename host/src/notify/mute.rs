//! Time intervals for `mute_time_intervals` and `active_time_intervals`, in
//! Alertmanager 0.25's `time_intervals` format.
//!
//! Pure: [`TimeInterval::contains`] takes `now` (Unix milliseconds). The
//! parsing functions take one value as written and return an error string
//! without position; the config layer adds file, line and column.
//!
//! The semantics are `timeinterval/timeinterval.go`: an interval contains an
//! instant when, on the wall clock of its `location`, every field that is
//! given has a range containing it (`times` by minute of the day, end
//! exclusive; the others inclusive). A named interval is a list of them and
//! contains an instant when any of them does.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `start_time` to `end_time` as minutes of the day: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u16,
    pub end_minute: u16,
}

/// Days of the week, inclusive, Sunday = 0 as in Alertmanager (so a range
/// cannot wrap from Saturday to Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayRange {
    pub begin: u8,
    pub end: u8,
}

/// Days of the month, inclusive; negative counts from the month's end
/// (-1 is the last day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOfMonthRange {
    pub begin: i8,
    pub end: i8,
}

/// Months, inclusive, January = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    pub begin: u8,
    pub end: u8,
}

/// Years, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearRange {
    pub begin: i32,
    pub end: i32,
}

/// One entry of a named interval's list. An empty field places no
/// condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeInterval {
    pub times: Vec<TimeRange>,
    pub weekdays: Vec<WeekdayRange>,
    pub days_of_month: Vec<DayOfMonthRange>,
    pub months: Vec<MonthRange>,
    pub years: Vec<YearRange>,
    /// The zone whose wall clock the fields describe (`location`).
    pub location: TimeZone,
}

impl Default for TimeInterval {
    /// No conditions, in UTC: contains every instant.
    fn default() -> Self {
        TimeInterval {
            times: Vec::new(),
            weekdays: Vec::new(),
            days_of_month: Vec::new(),
            months: Vec::new(),
            years: Vec::new(),
            location: TimeZone::UTC,
        }
    }
}

/// A `[[time_intervals]]` entry: a name that routes refer to and a list of
/// intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTimeInterval {
    pub name: String,
    pub intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether any of its intervals contains `now`.
    pub fn contains(&self, now: i64) -> bool {
        self.intervals.iter().any(|i| i.contains(now))
    }
}

/// Whether a route sends nothing at `now`: inside any of its
/// `mute_time_intervals`, or outside all of its `active_time_intervals` when
/// it has some (Alertmanager's `TimeMuteStage` and `TimeActiveStage`).
pub fn route_muted(now: i64, mute: &[&NamedTimeInterval], active: &[&NamedTimeInterval]) -> bool {
    mute.iter().any(|i| i.contains(now))
        || (!active.is_empty() && !active.iter().any(|i| i.contains(now)))
}

impl TimeInterval {
    /// Whether `now` (Unix milliseconds) falls in the interval, read on the
    /// wall clock of its location. Seconds are ignored, as in Alertmanager:
    /// `times` compare the minute of the day.
    pub fn contains(&self, now: i64) -> bool {
        let Ok(ts) = Timestamp::from_millisecond(now) else {
            return false;
        };
        let t = self.location.to_datetime(ts);
        let minute = u16::from(t.hour().unsigned_abs()) * 60 + u16::from(t.minute().unsigned_abs());
        if !self.times.is_empty()
            && !self
                .times
                .iter()
                .any(|r| r.start_minute <= minute && minute < r.end_minute)
        {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let days = i32::from(t.days_in_month());
            let day = i32::from(t.day());
            let resolve = |d: i8| {
                let d = i32::from(d);
                if d < 0 { days + d + 1 } else { d }
            };
            let inside = self.days_of_month.iter().any(|r| {
                let begin = resolve(r.begin);
                // A range starting past this month's end is skipped.
                if begin > days {
                    return false;
                }
                let end = resolve(r.end).clamp(-days, days);
                begin.clamp(-days, days) <= day && day <= end
            });
            if !inside {
                return false;
            }
        }
        let month = t.month().unsigned_abs();
        if !self.months.is_empty()
            && !self
                .months
                .iter()
                .any(|r| r.begin <= month && month <= r.end)
        {
            return false;
        }
        let weekday = t.weekday().to_sunday_zero_offset().unsigned_abs();
        if !self.weekdays.is_empty()
            && !self
                .weekdays
                .iter()
                .any(|r| r.begin <= weekday && weekday <= r.end)
        {
            return false;
        }
        let year = i32::from(t.year());
        if !self.years.is_empty() && !self.years.iter().any(|r| r.begin <= year && year <= r.end) {
            return false;
        }
        true
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Splits `VALUE` or `START:END`, parsing each side with `member`.
fn range<T: Copy>(
    s: &str,
    what: &str,
    member: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), String> {
    let s = s.trim();
    let mut parts = s.split(':');
    let (Some(a), b, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "invalid {what} range {s:?}: expected a value or START:END"
        ));
    };
    let begin = member(a.trim())?;
    let end = match b {
        Some(b) => member(b.trim())?,
        None => begin,
    };
    Ok((begin, end))
}

/// Parses one `HH:MM` (00:00 to 24:00) into minutes of the day.
fn parse_clock(s: &str) -> Result<u16, String> {
    let err = || format!("invalid time {s:?}: expected HH:MM from 00:00 to 24:00");
    let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(err());
    }
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

impl TimeRange {
    /// Parses `start_time` and `end_time` ("HH:MM", end exclusive, "24:00"
    /// for the end of the day).
    pub fn parse(start: &str, end: &str) -> Result<TimeRange, String> {
        let start_minute = parse_clock(start)?;
        let end_minute = parse_clock(end)?;
        if start_minute >= end_minute {
            return Err(format!(
                "start time {start:?} must be before end time {end:?} \
                 (a range cannot cross midnight: write two ranges, one ending at \"24:00\")"
            ));
        }
        Ok(TimeRange {
            start_minute,
            end_minute,
        })
    }
}

impl WeekdayRange {
    /// Parses `monday:friday` or `saturday` (case-insensitive).
    pub fn parse(s: &str) -> Result<WeekdayRange, String> {
        let (begin, end) = range(s, "weekday", |d| {
            let lower = d.to_ascii_lowercase();
            WEEKDAYS
                .iter()
                .position(|w| *w == lower)
                .map(|i| i as u8)
                .ok_or_else(|| {
                    format!("invalid weekday {d:?}: expected a day name like \"monday\"")
                })
        })?;
        if begin > end {
            return Err(format!(
                "weekday range {:?}: the start day comes after the end day \
                 (weeks run sunday to saturday: write two ranges)",
                s.trim()
            ));
        }
        Ok(WeekdayRange { begin, end })
    }
}

impl DayOfMonthRange {
    /// Parses `1:5`, `15` or `-3:-1` (days 1 to 31, or -31 to -1 from the
    /// month's end).
    pub fn parse(s: &str) -> Result<DayOfMonthRange, String> {
        let (begin, end) = range(s, "day of month", |d| {
            d.parse::<i8>()
                .ok()
                .filter(|n| *n != 0 && (-31..=31).contains(n))
                .ok_or_else(|| {
                    format!(
                        "invalid day of month {d:?}: expected 1 to 31, or -31 to -1 \
                         counting from the month's end"
                    )
                })
        })?;
        if begin < 0 && end > 0 {
            return Err(format!(
                "day of month range {:?}: the end must be negative when the start is",
                s.trim()
            ));
        }
        // Catch ranges that are empty in every month (shortest: 28 days).
        let shortest = |d: i8| if d < 0 { 28 + d } else { d };
        if shortest(begin) > shortest(end) {
            return Err(format!(
                "day of month range {:?}: the end day is always before the start day",
                s.trim()
            ));
        }
        Ok(DayOfMonthRange { begin, end })
    }
}

impl MonthRange {
    /// Parses `1:3`, `january:march` or `december` (case-insensitive).
    pub fn parse(s: &str) -> Result<MonthRange, String> {
        let (begin, end) = range(s, "month", |m| {
            let lower = m.to_ascii_lowercase();
            MONTHS
                .iter()
                .position(|n| *n == lower)
                .map(|i| i as u8 + 1)
                .or_else(|| m.parse::<u8>().ok().filter(|n| (1..=12).contains(n)))
                .ok_or_else(|| {
                    format!("invalid month {m:?}: expected 1 to 12 or a name like \"january\"")
                })
        })?;
        if begin > end {
            return Err(format!(
                "month range {:?}: the end month is before the start month \
                 (write two ranges to wrap the year)",
                s.trim()
            ));
        }
        Ok(MonthRange { begin, end })
    }
}

impl YearRange {
    /// Parses `2026:2027` or `2026`.
    pub fn parse(s: &str) -> Result<YearRange, String> {
        let (begin, end) = range(s, "year", |y| {
            y.parse::<i32>()
                .map_err(|_| format!("invalid year {y:?}: expected a number like 2026"))
        })?;
        if begin > end {
            return Err(format!(
                "year range {:?}: the end year is before the start year",
                s.trim()
            ));
        }
        Ok(YearRange { begin, end })
    }
}

/// Looks up a `location`: an IANA time zone name like `Europe/Berlin`,
/// `UTC`, or `Local` for this machine's zone (as Go's `LoadLocation`).
pub fn parse_location(s: &str) -> Result<TimeZone, String> {
    match s {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        name => TimeZone::get(name).map_err(|_| {
            format!("unknown time zone {name:?}: expected an IANA name like \"Europe/Berlin\"")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const H: i64 = 60 * MIN;
    const D: i64 = 24 * H;

    /// Unix milliseconds of an RFC 3339 time.
    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn tz(name: &str) -> TimeZone {
        parse_location(name).unwrap()
    }

    #[test]
    fn times_have_an_exclusive_end_and_ignore_seconds() {
        let i = TimeInterval {
            times: vec![TimeRange::parse("09:00", "17:00").unwrap()],
            ..Default::default()
        };
        assert!(!i.contains(at("2026-03-02T08:59:59.999Z")));
        assert!(i.contains(at("2026-03-02T09:00:00Z")));
        assert!(i.contains(at("2026-03-02T16:59:59.999Z")));
        assert!(!i.contains(at("2026-03-02T17:00:00Z")));
        let late = TimeInterval {
            times: vec![
                TimeRange::parse("22:00", "24:00").unwrap(),
                TimeRange::parse("00:00", "06:00").unwrap(),
            ],
            ..Default::default()
        };
        assert!(late.contains(at("2026-03-02T23:59:59Z")));
        assert!(late.contains(at("2026-03-03T00:00:00Z")));
        assert!(late.contains(at("2026-03-03T05:59:00Z")));
        assert!(!late.contains(at("2026-03-03T06:00:00Z")));
        assert!(!late.contains(at("2026-03-02T21:59:00Z")));
    }

    #[test]
    fn weekdays_and_business_hours_in_a_zone() {
        // Monday to Friday, 09:00 to 17:00 in Berlin (CET = UTC+1 in March).
        let i = TimeInterval {
            times: vec![TimeRange::parse("09:00", "17:00").unwrap()],
            weekdays: vec![WeekdayRange::parse("Monday:FRIDAY").unwrap()],
            location: tz("Europe/Berlin"),
            ..Default::default()
        };
        assert!(i.contains(at("2026-03-06T08:00:00Z")), "Fri 09:00 CET");
        assert!(!i.contains(at("2026-03-06T07:59:00Z")), "Fri 08:59 CET");
        assert!(!i.contains(at("2026-03-06T16:00:00Z")), "Fri 17:00 CET");
        assert!(!i.contains(at("2026-03-07T10:00:00Z")), "Saturday");
        // Sunday 23:30 UTC is Monday 00:30 in Berlin: the day is the zone's.
        let monday = TimeInterval {
            weekdays: vec![WeekdayRange::parse("monday").unwrap()],
            location: tz("Europe/Berlin"),
            ..Default::default()
        };
        assert!(monday.contains(at("2026-03-08T23:30:00Z")));
        assert!(!monday.contains(at("2026-03-08T22:30:00Z")));
        let weekend = TimeInterval {
            weekdays: vec![
                WeekdayRange::parse("saturday").unwrap(),
                WeekdayRange::parse("sunday").unwrap(),
            ],
            ..Default::default()
        };
        assert!(weekend.contains(at("2026-03-07T12:00:00Z")));
        assert!(weekend.contains(at("2026-03-08T12:00:00Z")));
        assert!(!weekend.contains(at("2026-03-09T12:00:00Z")));
    }

    #[test]
    fn business_hours_follow_daylight_saving_time() {
        // Berlin switches to CEST (UTC+2) at 2026-03-29 01:00 UTC.
        let i = TimeInterval {
            times: vec![TimeRange::parse("09:00", "17:00").unwrap()],
            location: tz("Europe/Berlin"),
            ..Default::default()
        };
        assert!(i.contains(at("2026-03-27T08:00:00Z")), "09:00 CET");
        assert!(!i.contains(at("2026-03-27T07:30:00Z")), "08:30 CET");
        assert!(i.contains(at("2026-03-27T15:30:00Z")), "16:30 CET");
        assert!(i.contains(at("2026-03-30T07:00:00Z")), "09:00 CEST");
        assert!(!i.contains(at("2026-03-30T15:30:00Z")), "17:30 CEST");
        assert!(!i.contains(at("2026-03-30T06:30:00Z")), "08:30 CEST");
    }

    /// Minutes of a UTC day that an interval contains.
    fn minutes_in(i: &TimeInterval, day_start: i64) -> usize {
        (0..24 * 60)
            .filter(|m| i.contains(day_start + m * MIN))
            .count()
    }

    #[test]
    fn a_skipped_hour_never_happens_and_a_repeated_one_happens_twice() {
        let two_to_three = TimeInterval {
            times: vec![TimeRange::parse("02:00", "03:00").unwrap()],
            location: tz("Europe/Berlin"),
            ..Default::default()
        };
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        assert_eq!(minutes_in(&two_to_three, at("2026-03-29T00:00:00Z")), 0);
        assert_eq!(minutes_in(&two_to_three, at("2026-03-28T00:00:00Z")), 60);
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET.
        assert_eq!(minutes_in(&two_to_three, at("2026-10-25T00:00:00Z")), 120);
        // A whole local day is 23 or 25 hours long on those days.
        let sunday = TimeInterval {
            weekdays: vec![WeekdayRange::parse("sunday").unwrap()],
            location: tz("Europe/Berlin"),
            ..Default::default()
        };
        let count = |from: &str| {
            let start = at(from) - D;
            (0..3 * 24 * 60)
                .filter(|m| sunday.contains(start + m * MIN))
                .count()
        };
        assert_eq!(count("2026-03-29T00:00:00Z"), 23 * 60);
        assert_eq!(count("2026-10-25T00:00:00Z"), 25 * 60);
    }

    #[test]
    fn negative_days_count_from_the_months_end() {
        let last_three = TimeInterval {
            days_of_month: vec![DayOfMonthRange::parse("-3:-1").unwrap()],
            ..Default::default()
        };
        let days = |i: &TimeInterval, month_start: &str, n: i64| -> Vec<i64> {
            let start = at(month_start);
            (0..n)
                .filter(|d| i.contains(start + d * D + 12 * H))
                .map(|d| d + 1)
                .collect()
        };
        assert_eq!(
            days(&last_three, "2026-02-01T00:00:00Z", 28),
            vec![26, 27, 28]
        );
        assert_eq!(
            days(&last_three, "2028-02-01T00:00:00Z", 29),
            vec![27, 28, 29],
            "leap year"
        );
        assert_eq!(
            days(&last_three, "2026-04-01T00:00:00Z", 30),
            vec![28, 29, 30]
        );
        assert_eq!(
            days(&last_three, "2026-01-01T00:00:00Z", 31),
            vec![29, 30, 31]
        );
        let whole = TimeInterval {
            days_of_month: vec![DayOfMonthRange::parse("1:-1").unwrap()],
            ..Default::default()
        };
        assert_eq!(days(&whole, "2026-02-01T00:00:00Z", 28).len(), 28);
        // Past a short month's end: clamped, or skipped if it starts past it.
        let late = TimeInterval {
            days_of_month: vec![DayOfMonthRange::parse("27:31").unwrap()],
            ..Default::default()
        };
        assert_eq!(days(&late, "2026-02-01T00:00:00Z", 28), vec![27, 28]);
        assert!(!late.contains(at("2026-03-01T12:00:00Z")), "not into March");
        let thirtieth = TimeInterval {
            days_of_month: vec![DayOfMonthRange::parse("30").unwrap()],
            ..Default::default()
        };
        assert!(days(&thirtieth, "2026-02-01T00:00:00Z", 28).is_empty());
        // The month's end is the zone's: Jan 31 23:30 UTC is Feb 1 in Berlin.
        let first = TimeInterval {
            days_of_month: vec![DayOfMonthRange::parse("1").unwrap()],
            location: tz("Europe/Berlin"),
            ..Default::default()
        };
        assert!(first.contains(at("2026-01-31T23:30:00Z")));
    }

    #[test]
    fn months_and_years() {
        let i = TimeInterval {
            months: vec![
                MonthRange::parse("january:March").unwrap(),
                MonthRange::parse("12").unwrap(),
            ],
            years: vec![YearRange::parse("2026:2027").unwrap()],
            ..Default::default()
        };
        assert!(i.contains(at("2026-01-01T00:00:00Z")));
        assert!(i.contains(at("2027-03-31T23:59:00Z")));
        assert!(!i.contains(at("2027-04-01T00:00:00Z")));
        assert!(i.contains(at("2027-12-15T00:00:00Z")));
        assert!(!i.contains(at("2028-01-15T00:00:00Z")));
        assert!(!i.contains(at("2025-12-31T23:59:00Z")));
        // New Year arrives earlier in Auckland.
        let y = TimeInterval {
            years: vec![YearRange::parse("2026").unwrap()],
            location: tz("Pacific/Auckland"),
            ..Default::default()
        };
        assert!(y.contains(at("2025-12-31T12:00:00Z")));
    }

    #[test]
    fn named_intervals_and_routes() {
        let nights = NamedTimeInterval {
            name: "nights".into(),
            intervals: vec![
                TimeInterval {
                    times: vec![TimeRange::parse("00:00", "06:00").unwrap()],
                    ..Default::default()
                },
                TimeInterval {
                    times: vec![TimeRange::parse("22:00", "24:00").unwrap()],
                    ..Default::default()
                },
            ],
        };
        let weekdays = NamedTimeInterval {
            name: "weekdays".into(),
            intervals: vec![TimeInterval {
                weekdays: vec![WeekdayRange::parse("monday:friday").unwrap()],
                ..Default::default()
            }],
        };
        let mon_noon = at("2026-03-02T12:00:00Z");
        let mon_night = at("2026-03-02T23:00:00Z");
        let sat_noon = at("2026-03-07T12:00:00Z");
        assert!(nights.contains(mon_night) && !nights.contains(mon_noon));
        assert!(!route_muted(mon_noon, &[], &[]));
        assert!(route_muted(mon_night, &[&nights], &[]));
        assert!(!route_muted(mon_noon, &[&nights], &[&weekdays]));
        assert!(route_muted(sat_noon, &[], &[&weekdays]), "outside active");
        assert!(
            route_muted(mon_night, &[&nights], &[&weekdays]),
            "mute wins"
        );
        assert!(
            !NamedTimeInterval {
                name: "empty".into(),
                intervals: vec![]
            }
            .contains(mon_noon)
        );
        assert!(
            TimeInterval::default().contains(mon_noon),
            "no conditions: always"
        );
    }

    #[test]
    fn parses_what_alertmanager_accepts() {
        assert_eq!(
            TimeRange::parse("00:00", "24:00").unwrap(),
            TimeRange {
                start_minute: 0,
                end_minute: 1440
            }
        );
        assert_eq!(
            WeekdayRange::parse("tuesday").unwrap(),
            WeekdayRange { begin: 2, end: 2 }
        );
        assert_eq!(
            WeekdayRange::parse("sunday:saturday").unwrap(),
            WeekdayRange { begin: 0, end: 6 }
        );
        assert_eq!(
            DayOfMonthRange::parse("-7:-1").unwrap(),
            DayOfMonthRange { begin: -7, end: -1 }
        );
        assert_eq!(
            DayOfMonthRange::parse("1:-1").unwrap(),
            DayOfMonthRange { begin: 1, end: -1 }
        );
        assert_eq!(
            MonthRange::parse("September:12").unwrap(),
            MonthRange { begin: 9, end: 12 }
        );
        assert_eq!(
            YearRange::parse(" 2030 ").unwrap(),
            YearRange {
                begin: 2030,
                end: 2030
            }
        );
        assert_eq!(parse_location("UTC").unwrap(), TimeZone::UTC);
        assert!(parse_location("America/New_York").is_ok());
        assert!(parse_location("Local").is_ok());
    }

    #[test]
    fn rejects_with_clear_messages() {
        let cases: Vec<(Result<(), String>, &str)> = vec![
            (
                TimeRange::parse("9:00", "17:00").map(drop),
                r#"invalid time "9:00": expected HH:MM from 00:00 to 24:00"#,
            ),
            (
                TimeRange::parse("09:00", "24:01").map(drop),
                r#"invalid time "24:01": expected HH:MM from 00:00 to 24:00"#,
            ),
            (
                TimeRange::parse("09:60", "10:00").map(drop),
                r#"invalid time "09:60": expected HH:MM from 00:00 to 24:00"#,
            ),
            (
                TimeRange::parse("22:00", "06:00").map(drop),
                r#"start time "22:00" must be before end time "06:00" (a range cannot cross midnight: write two ranges, one ending at "24:00")"#,
            ),
            (
                TimeRange::parse("10:00", "10:00").map(drop),
                r#"start time "10:00" must be before end time "10:00" (a range cannot cross midnight: write two ranges, one ending at "24:00")"#,
            ),
            (
                WeekdayRange::parse("funday").map(drop),
                r#"invalid weekday "funday": expected a day name like "monday""#,
            ),
            (
                WeekdayRange::parse("1:5").map(drop),
                r#"invalid weekday "1": expected a day name like "monday""#,
            ),
            (
                WeekdayRange::parse("saturday:sunday").map(drop),
                r#"weekday range "saturday:sunday": the start day comes after the end day (weeks run sunday to saturday: write two ranges)"#,
            ),
            (
                WeekdayRange::parse("monday:tuesday:friday").map(drop),
                r#"invalid weekday range "monday:tuesday:friday": expected a value or START:END"#,
            ),
            (
                DayOfMonthRange::parse("0").map(drop),
                r#"invalid day of month "0": expected 1 to 31, or -31 to -1 counting from the month's end"#,
            ),
            (
                DayOfMonthRange::parse("1:32").map(drop),
                r#"invalid day of month "32": expected 1 to 31, or -31 to -1 counting from the month's end"#,
            ),
            (
                DayOfMonthRange::parse("-3:5").map(drop),
                r#"day of month range "-3:5": the end must be negative when the start is"#,
            ),
            (
                DayOfMonthRange::parse("10:5").map(drop),
                r#"day of month range "10:5": the end day is always before the start day"#,
            ),
            (
                DayOfMonthRange::parse("-1:-3").map(drop),
                r#"day of month range "-1:-3": the end day is always before the start day"#,
            ),
            (
                MonthRange::parse("13").map(drop),
                r#"invalid month "13": expected 1 to 12 or a name like "january""#,
            ),
            (
                MonthRange::parse("december:january").map(drop),
                r#"month range "december:january": the end month is before the start month (write two ranges to wrap the year)"#,
            ),
            (
                YearRange::parse("2027:2026").map(drop),
                r#"year range "2027:2026": the end year is before the start year"#,
            ),
            (
                YearRange::parse("next").map(drop),
                r#"invalid year "next": expected a number like 2026"#,
            ),
            (
                parse_location("Mars/Olympus").map(drop),
                r#"unknown time zone "Mars/Olympus": expected an IANA name like "Europe/Berlin""#,
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, Err(want.to_string()));
        }
    }

    /// SplitMix64: a small deterministic generator for property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// Against a straightforward reading of the wall clock with jiff's
    /// `Zoned`, for random instants, zones and positive day ranges.
    #[test]
    fn contains_agrees_with_the_wall_clock() {
        let mut rng = Rng(3);
        let zones = [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ];
        for _ in 0..3_000 {
            let zone = zones[(rng.next() % zones.len() as u64) as usize];
            let a = (rng.next() % 1440) as u16;
            let b = (rng.next() % 1440) as u16 + 1;
            let (s, e) = (a.min(b), a.max(b).max(a.min(b) + 1));
            let d1 = (rng.next() % 31) as i8 + 1;
            let d2 = (rng.next() % 31) as i8 + 1;
            let w1 = (rng.next() % 7) as u8;
            let w2 = (rng.next() % 7) as u8;
            let i = TimeInterval {
                times: vec![TimeRange {
                    start_minute: s,
                    end_minute: e,
                }],
                weekdays: vec![WeekdayRange {
                    begin: w1.min(w2),
                    end: w1.max(w2),
                }],
                days_of_month: vec![DayOfMonthRange {
                    begin: d1.min(d2),
                    end: d1.max(d2),
                }],
                location: tz(zone),
                ..Default::default()
            };
            // 2020 to 2030.
            let now = 1_577_836_800_000 + (rng.next() % (11 * 365 * D as u64)) as i64;
            let z = Timestamp::from_millisecond(now).unwrap().to_zoned(tz(zone));
            let minute = i64::from(z.hour()) * 60 + i64::from(z.minute());
            let wd = z.weekday().to_sunday_zero_offset() as u8;
            let day = z.day();
            let want = (i64::from(s)..i64::from(e)).contains(&minute)
                && (w1.min(w2)..=w1.max(w2)).contains(&wd)
                && (d1.min(d2)..=d1.max(d2)).contains(&day);
            assert_eq!(i.contains(now), want, "{z} in {i:?}");
        }
    }
}
