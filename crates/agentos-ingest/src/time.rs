//! Timestamps: a fast parser for the ISO-8601 stamps the sources write, time ranges and calendar
//! bucketing in a time zone.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use crate::error::IngestError;

/// Milliseconds since the Unix epoch, UTC.
pub type EpochMs = i64;

/// Days from 1970-01-01 to the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` without allocation; anything else goes through
/// jiff. Returns `None` for text that is not a timestamp.
pub fn parse_iso_ms(s: &str) -> Option<EpochMs> {
    let b = s.as_bytes();
    if b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') {
        let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        let (h, mi, se) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        let mut i = 19;
        let mut ms = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    ms = ms * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            for _ in (i - start)..3 {
                ms *= 10;
            }
        }
        let off_s: i64 = match &b[i..] {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), hh1, hh2, b':', mm1, mm2] => {
                let hh = digits(&[*hh1, *hh2])?;
                let mm = digits(&[*mm1, *mm2])?;
                let v = i64::from(hh * 3600 + mm * 60);
                if *sign == b'-' { -v } else { v }
            }
            _ => return s.parse::<Timestamp>().ok().map(|t| t.as_millisecond()),
        };
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let days = days_from_civil(i64::from(y), mo, d);
        let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + se) - off_s;
        return Some(secs * 1000 + i64::from(ms));
    }
    s.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn format_ms(ms: EpochMs) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => ms.to_string(),
    }
}

/// A half-open time range `[since, until)` in epoch milliseconds; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub since: Option<EpochMs>,
    /// Exclusive upper bound.
    pub until: Option<EpochMs>,
}

impl TimeRange {
    /// True when no bound is set.
    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// True when `ms` lies inside the range.
    pub fn contains(&self, ms: EpochMs) -> bool {
        self.since.is_none_or(|s| ms >= s) && self.until.is_none_or(|u| ms < u)
    }

    /// Builds a range from user dates (`YYYY-MM-DD` or `YYYYMMDD`, whole days in `tz`; `until` is
    /// inclusive of its day) or full RFC 3339 timestamps.
    pub fn from_user(
        since: Option<&str>,
        until: Option<&str>,
        tz: &TimeZone,
    ) -> Result<TimeRange, String> {
        let parse = |s: &str, end_of_day: bool| -> Result<EpochMs, String> {
            let norm = if s.len() == 8 && s.bytes().all(|c| c.is_ascii_digit()) {
                format!("{}-{}-{}", &s[0..4], &s[4..6], &s[6..8])
            } else {
                s.to_string()
            };
            if let Ok(date) = norm.parse::<jiff::civil::Date>() {
                let date = if end_of_day {
                    date.tomorrow().map_err(|e| format!("date {s:?}: {e}"))?
                } else {
                    date
                };
                let z = date
                    .to_zoned_datetime(tz.clone())
                    .map_err(|e| format!("date {s:?}: {e}"))?;
                return Ok(z.timestamp().as_millisecond());
            }
            parse_iso_ms(&norm).ok_or_else(|| {
                format!("{s:?} is neither a date (YYYY-MM-DD, YYYYMMDD) nor an RFC 3339 timestamp")
            })
        };
        Ok(TimeRange {
            since: since.map(|s| parse(s, false)).transpose()?,
            until: until.map(|s| parse(s, true)).transpose()?,
        })
    }
}

/// Resolves a user time zone name (`UTC`, `Europe/Berlin`, `local`).
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, IngestError> {
    match name {
        None | Some("UTC") | Some("utc") => Ok(TimeZone::UTC),
        Some("local") => Ok(TimeZone::system()),
        Some(n) => TimeZone::get(n).map_err(|_| IngestError::TimeZone {
            name: n.to_string(),
        }),
    }
}

/// Resolves the zone of a report and the name it prints: an IANA name, `UTC`, or `local` /
/// nothing for the system zone (`TZ`, else `/etc/localtime`), printed by its IANA name so the
/// reader knows which zone "local" was.
pub fn resolve_zone(name: Option<&str>) -> Result<(TimeZone, String), IngestError> {
    let tz = match name {
        None | Some("local") => match system_utc_name() {
            // Asking jiff for the system zone loads its zoneinfo database (a directory walk),
            // which costs more than a warm re-run of a report; a UTC system zone is common
            // (servers, containers) and also keeps the aggregator on its UTC fast path.
            Some(shown) => return Ok((TimeZone::UTC, shown)),
            None => TimeZone::system(),
        },
        Some(n) => time_zone(Some(n))?,
    };
    let shown = match tz.iana_name() {
        Some(iana) => iana.to_string(),
        // A zone without a name (a POSIX `TZ` rule, a fixed offset): its current offset.
        None => format!(
            "{} (UTC{})",
            name.unwrap_or("local"),
            tz.to_offset(Timestamp::now())
        ),
    };
    Ok((tz, shown))
}

/// Names under which the tz database spells UTC itself (not zones that merely sit at +00:00).
const UTC_NAMES: [&str; 8] = [
    "UTC",
    "Etc/UTC",
    "Etc/Universal",
    "Universal",
    "Etc/Zulu",
    "Zulu",
    "Etc/UCT",
    "UCT",
];

/// The system zone's name when it is UTC, read the way jiff reads it (`TZ`, else the
/// `/etc/localtime` link), without loading the zone database; `None` when it is not UTC or
/// cannot be told cheaply.
fn system_utc_name() -> Option<String> {
    let from_env = std::env::var_os("TZ");
    let name = match &from_env {
        // POSIX: an empty TZ is UTC.
        Some(v) if v.is_empty() => return Some("UTC".to_string()),
        Some(v) => v.to_str()?.trim_start_matches(':').to_string(),
        None => {
            let target = std::fs::read_link("/etc/localtime").ok()?;
            let target = target.to_str()?;
            let (_, name) = target.split_once("zoneinfo/")?;
            name.to_string()
        }
    };
    is_utc_name(&name).then_some(name)
}

/// Whether `name` (a `TZ` value or a zoneinfo path tail) is one of the tz database's names for
/// UTC itself.
fn is_utc_name(name: &str) -> bool {
    UTC_NAMES.contains(&name)
}

/// Parses a day of the week: an English name or its first three letters, any case.
pub fn parse_weekday(s: &str) -> Result<Weekday, IngestError> {
    let l = s.trim().to_ascii_lowercase();
    let days = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    days.iter()
        .find(|(n, _)| l == *n || (l.len() == 3 && n.starts_with(&l)))
        .map(|(_, d)| *d)
        .ok_or_else(|| IngestError::Weekday {
            name: s.to_string(),
        })
}

/// First day (day number) of the week holding day `day`, weeks starting on `start`.
pub fn week_start(day: i64, start: Weekday) -> i64 {
    // Day 0 (1970-01-01) was a Thursday, three days after a Monday.
    let weekday = (day + 3).rem_euclid(7);
    day - (weekday - i64::from(start.to_monday_zero_offset())).rem_euclid(7)
}

/// Local offset in seconds of `ms` in `tz`.
pub fn offset_seconds(tz: &TimeZone, ms: EpochMs) -> i64 {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => i64::from(tz.to_offset(t).seconds()),
        Err(_) => 0,
    }
}

/// Local day number (days since 1970-01-01 in `tz`) of `ms`.
pub fn local_day(tz: &TimeZone, ms: EpochMs) -> i64 {
    (ms / 1000 + offset_seconds(tz, ms)).div_euclid(86_400)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_string(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_names_are_utc_and_zones_at_zero_offset_are_not() {
        for n in ["UTC", "Etc/UTC", "Zulu", "Etc/Universal"] {
            assert!(is_utc_name(n), "{n}");
            // Each spelling jiff knows must really be UTC, or the shortcut would change days.
            if let Ok(tz) = TimeZone::get(n) {
                let jan = "2026-01-15T12:00:00Z".parse::<Timestamp>().expect("time");
                let jul = "2026-07-15T12:00:00Z".parse::<Timestamp>().expect("time");
                assert_eq!(tz.to_offset(jan).seconds(), 0, "{n}");
                assert_eq!(tz.to_offset(jul).seconds(), 0, "{n}");
            }
        }
        // London sits at +00:00 in winter only; GMT-0 style names go through jiff as before.
        for n in [
            "Europe/London",
            "Africa/Abidjan",
            "posix/Etc/UTC",
            "utc0",
            "",
        ] {
            assert!(!is_utc_name(n), "{n}");
        }
    }

    #[test]
    fn iso_fast_path_agrees_with_jiff() {
        for s in [
            "2026-09-01T00:00:00Z",
            "2026-09-01T12:34:56.789Z",
            "2025-10-19T16:05:00Z",
            "2024-02-29T23:59:59.5+02:00",
            "1999-12-31T23:59:59.123456Z",
        ] {
            let want = s.parse::<Timestamp>().expect("valid").as_millisecond();
            assert_eq!(parse_iso_ms(s), Some(want), "{s}");
        }
        assert_eq!(parse_iso_ms("not a time"), None);
    }

    #[test]
    fn civil_round_trip() {
        for d in [-1000, 0, 1, 19_000, 20_697] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn weeks_start_on_the_given_day() {
        // 2026-09-09 is a Wednesday.
        let wed = days_from_civil(2026, 9, 9);
        assert_eq!(day_string(week_start(wed, Weekday::Monday)), "2026-09-07");
        assert_eq!(day_string(week_start(wed, Weekday::Sunday)), "2026-09-06");
        assert_eq!(
            day_string(week_start(wed, Weekday::Wednesday)),
            "2026-09-09"
        );
        assert_eq!(day_string(week_start(wed, Weekday::Thursday)), "2026-09-03");
        // Every day maps into the 7 days up to itself, onto the right weekday.
        for d in wed - 20..wed + 20 {
            for start in [Weekday::Monday, Weekday::Sunday, Weekday::Saturday] {
                let s = week_start(d, start);
                assert!((0..7).contains(&(d - s)), "{d} {start:?}");
                let (y, m, dd) = civil_from_days(s);
                let date = jiff::civil::date(y as i16, m as i8, dd as i8);
                assert_eq!(date.weekday(), start);
            }
        }
    }

    #[test]
    fn weekdays_parse_by_name_or_abbreviation() {
        assert_eq!(parse_weekday("sunday").expect("ok"), Weekday::Sunday);
        assert_eq!(parse_weekday("Mon").expect("ok"), Weekday::Monday);
        assert_eq!(parse_weekday("SAT").expect("ok"), Weekday::Saturday);
        assert!(parse_weekday("someday").is_err());
        assert!(parse_weekday("mo").is_err());
    }

    #[test]
    fn named_zones_print_their_iana_name() {
        let (_, name) = resolve_zone(Some("Europe/Berlin")).expect("known zone");
        assert_eq!(name, "Europe/Berlin");
        let (tz, name) = resolve_zone(Some("UTC")).expect("utc");
        assert_eq!(tz, TimeZone::UTC);
        assert_eq!(name, "UTC");
        assert!(resolve_zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn until_date_includes_its_whole_day() {
        let r = TimeRange::from_user(Some("2026-09-02"), Some("20260902"), &TimeZone::UTC)
            .expect("valid range");
        assert!(r.contains(parse_iso_ms("2026-09-02T23:59:59Z").expect("ts")));
        assert!(!r.contains(parse_iso_ms("2026-09-03T00:00:00Z").expect("ts")));
        assert!(!r.contains(parse_iso_ms("2026-09-01T23:59:59Z").expect("ts")));
    }
}
