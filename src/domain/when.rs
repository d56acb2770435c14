//! Dates and times in the forms people type, resolved to an absolute slot.
//!
//! "tomorrow at 7pm" means nothing to a restaurant host on another day; the
//! agent must say "Wednesday 25 November at 7 PM". So every relative form is
//! resolved once, before the call, against "now" in the restaurant's zone.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

/// Why a date or time could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// The date text matched no known form.
    #[error("'{0}' is not a date I understand (try 'tomorrow', 'friday' or 2026-12-03)")]
    BadDate(String),
    /// The time text matched no known form.
    #[error("'{0}' is not a time I understand (try 7pm, 19:30 or 7:30pm)")]
    BadTime(String),
}

/// Parse a date relative to `today`: `today`, `tomorrow`, a weekday name
/// (`fri`, `friday`, `next friday`: the next such day, today included),
/// ISO `2026-12-03`, `12/03` or `12/03/2026` (month/day), `3 dec`, `dec 3`.
pub fn parse_date(input: &str, today: NaiveDate) -> Result<NaiveDate, WhenError> {
    let bad = || WhenError::BadDate(input.trim().to_string());
    let text = input.trim().to_lowercase();
    let text = text.trim_start_matches("on ").trim();
    match text {
        "today" | "tonight" => return Ok(today),
        "tomorrow" | "tmrw" | "tomorrow night" => return Ok(today + Duration::days(1)),
        _ => {}
    }
    let weekday_text = text
        .strip_prefix("next ")
        .or_else(|| text.strip_prefix("this "))
        .unwrap_or(text);
    if let Some(weekday) = parse_weekday(weekday_text) {
        let ahead = (7 + weekday.num_days_from_monday() as i64
            - today.weekday().num_days_from_monday() as i64)
            % 7;
        return Ok(today + Duration::days(ahead));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%m/%d/%Y") {
        return Ok(date);
    }
    // Month and day without a year: the next such date, today included.
    let month_day = parse_month_day(text).ok_or_else(bad)?;
    let (month, day) = month_day;
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day);
    match this_year {
        Some(d) if d >= today => Ok(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day).ok_or_else(bad),
    }
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    let day = match text {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

fn parse_month(text: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let t = text.trim_end_matches('.');
    if t.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| t.starts_with(m) && (t.len() == 3 || full_month(m).starts_with(t)))
        .map(|i| i as u32 + 1)
}

fn full_month(abbrev: &str) -> &'static str {
    match abbrev {
        "jan" => "january",
        "feb" => "february",
        "mar" => "march",
        "apr" => "april",
        "may" => "may",
        "jun" => "june",
        "jul" => "july",
        "aug" => "august",
        "sep" => "september",
        "oct" => "october",
        "nov" => "november",
        _ => "december",
    }
}

fn parse_day(text: &str) -> Option<u32> {
    let t = text
        .trim_end_matches("st")
        .trim_end_matches("nd")
        .trim_end_matches("rd")
        .trim_end_matches("th");
    t.parse().ok().filter(|d| (1..=31).contains(d))
}

fn parse_month_day(text: &str) -> Option<(u32, u32)> {
    if let Some((m, d)) = text.split_once('/') {
        return Some((m.parse().ok()?, d.parse().ok()?));
    }
    let words: Vec<&str> = text.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        [a, b] => {
            if let (Some(m), Some(d)) = (parse_month(a), parse_day(b)) {
                Some((m, d))
            } else {
                Some((parse_month(b)?, parse_day(a)?))
            }
        }
        _ => None,
    }
}

/// Parse a time of day: `7pm`, `7 pm`, `7:30pm`, `19:30`, `1930`, `noon`.
/// A bare hour from 1 to 10 is read as evening (`7` → 19:00): people booking
/// dinner rarely mean 7 in the morning.
pub fn parse_time(input: &str) -> Result<NaiveTime, WhenError> {
    let bad = || WhenError::BadTime(input.trim().to_string());
    let text: String = input
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    match text.as_str() {
        "noon" | "midday" => return NaiveTime::from_hms_opt(12, 0, 0).ok_or_else(bad),
        "midnight" => return NaiveTime::from_hms_opt(0, 0, 0).ok_or_else(bad),
        _ => {}
    }
    let (body, meridiem) =
        if let Some(b) = text.strip_suffix("pm").or_else(|| text.strip_suffix('p')) {
            (b, Some(true))
        } else if let Some(b) = text.strip_suffix("am").or_else(|| text.strip_suffix('a')) {
            (b, Some(false))
        } else {
            (text.as_str(), None)
        };
    let (hour, minute): (u32, u32) = if let Some((h, m)) = body.split_once([':', 'h']) {
        let m = if m.is_empty() { "0" } else { m };
        (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?)
    } else if body.len() == 4 && meridiem.is_none() {
        (
            body[..2].parse().map_err(|_| bad())?,
            body[2..].parse().map_err(|_| bad())?,
        )
    } else {
        (body.parse().map_err(|_| bad())?, 0)
    };
    if minute > 59 {
        return Err(bad());
    }
    let hour = match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&hour) {
                return Err(bad());
            }
            match (pm, hour) {
                (true, 12) => 12,
                (true, h) => h + 12,
                (false, 12) => 0,
                (false, h) => h,
            }
        }
        None if (1..=10).contains(&hour) && !body.contains(':') && body.len() <= 2 => hour + 12,
        None => hour,
    };
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// Parse how far from the requested time the person accepts: `30m`, `1h`,
/// `1h30m`, `90` (minutes), `0`.
pub fn parse_flexibility(input: &str) -> Option<u32> {
    let text: String = input.trim().to_lowercase().split_whitespace().collect();
    let text = text.trim_start_matches('±').trim_start_matches("+-");
    if let Ok(minutes) = text.parse::<u32>() {
        return Some(minutes);
    }
    let mut total = 0u32;
    let mut number = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let c = rest.chars().next()?;
        if c.is_ascii_digit() {
            number.push(c);
            rest = &rest[1..];
            continue;
        }
        let unit_len = rest
            .find(|ch: char| ch.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let n: u32 = number.parse().ok()?;
        number.clear();
        total += match unit {
            "h" | "hr" | "hrs" | "hour" | "hours" => n * 60,
            "m" | "min" | "mins" | "minute" | "minutes" => n,
            _ => return None,
        };
        rest = &rest[unit_len..];
    }
    if !number.is_empty() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn relative_dates_resolve_against_today() {
        let today = d(2026, 11, 24); // a Tuesday
        assert_eq!(parse_date("today", today).unwrap(), today);
        assert_eq!(parse_date("tomorrow", today).unwrap(), d(2026, 11, 25));
        assert_eq!(parse_date("Wednesday", today).unwrap(), d(2026, 11, 25));
        assert_eq!(parse_date("fri", today).unwrap(), d(2026, 11, 27));
        assert_eq!(parse_date("next monday", today).unwrap(), d(2026, 11, 30));
        assert_eq!(parse_date("tuesday", today).unwrap(), today);
    }

    #[test]
    fn absolute_dates() {
        let today = d(2026, 11, 24);
        assert_eq!(parse_date("2026-12-03", today).unwrap(), d(2026, 12, 3));
        assert_eq!(parse_date("12/03", today).unwrap(), d(2026, 12, 3));
        assert_eq!(parse_date("12/03/2027", today).unwrap(), d(2027, 12, 3));
        assert_eq!(parse_date("3 dec", today).unwrap(), d(2026, 12, 3));
        assert_eq!(parse_date("December 3rd", today).unwrap(), d(2026, 12, 3));
        assert_eq!(parse_date("jan 5", today).unwrap(), d(2027, 1, 5));
        assert!(parse_date("someday", today).is_err());
        assert!(parse_date("2026-02-30", today).is_err());
        assert!(parse_date("13/45", today).is_err());
    }

    #[test]
    fn times_people_type() {
        assert_eq!(parse_time("7pm").unwrap(), t(19, 0));
        assert_eq!(parse_time("7 PM").unwrap(), t(19, 0));
        assert_eq!(parse_time("7:30pm").unwrap(), t(19, 30));
        assert_eq!(parse_time("19:30").unwrap(), t(19, 30));
        assert_eq!(parse_time("1930").unwrap(), t(19, 30));
        assert_eq!(parse_time("12pm").unwrap(), t(12, 0));
        assert_eq!(parse_time("12am").unwrap(), t(0, 0));
        assert_eq!(parse_time("11:30 a.m.").unwrap(), t(11, 30));
        assert_eq!(parse_time("7").unwrap(), t(19, 0));
        assert_eq!(parse_time("noon").unwrap(), t(12, 0));
        assert!(parse_time("25:00").is_err());
        assert!(parse_time("13pm").is_err());
        assert!(parse_time("7:75").is_err());
        assert!(parse_time("dinner").is_err());
    }

    #[test]
    fn flexibility_forms() {
        assert_eq!(parse_flexibility("30m"), Some(30));
        assert_eq!(parse_flexibility("1h"), Some(60));
        assert_eq!(parse_flexibility("1h30m"), Some(90));
        assert_eq!(parse_flexibility("45"), Some(45));
        assert_eq!(parse_flexibility("0"), Some(0));
        assert_eq!(parse_flexibility("soon"), None);
        assert_eq!(parse_flexibility("30x"), None);
    }
}
