//! Dates and times in the forms people type, resolved to an absolute slot.
//!
//! "tomorrow at 7pm" means nothing to a restaurant host on another day; the
//! agent must say "Wednesday 25 November at 7 PM". So every relative form is
//! resolved once, before the call, against "today" in the restaurant's zone
//! (the caller passes that date: nothing here reads a clock or a zone).
//!
//! A hand parser rather than a natural-date crate: the forms are few, and the
//! rules that matter here are the product's own — "next friday" said on a
//! Friday, a bare "7" meaning the evening, a weekday that must match the date
//! it is written with, a date in the past kept as a date so the person is told
//! it is in the past. The English-date crates (interim, chrono-english) decide
//! these differently and know no spoken times ("half past seven").

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveTime, Weekday};

/// Why a date or time could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhenError {
    /// The date text matched no known form.
    #[error(
        "'{0}' is not a date I understand (try 'tomorrow', 'friday', 'in 3 days' or 2026-12-03)"
    )]
    BadDate(String),
    /// The time text matched no known form.
    #[error("'{0}' is not a time I understand (try 7pm, 19:30, 7:30pm or half past seven)")]
    BadTime(String),
    /// A weekday written with a date that falls on another day ("friday 3 december" when the 3rd is a Thursday).
    #[error("'{text}': {date} is a {actual}, not a {said}")]
    WrongWeekday {
        /// What was typed.
        text: String,
        /// The date it names.
        date: NaiveDate,
        /// The weekday of that date.
        actual: String,
        /// The weekday that was typed.
        said: String,
    },
}

/// Parse a date relative to `today` (the restaurant's today). The forms:
///
/// - `today`, `tonight`, `tomorrow`, `the day after tomorrow`; `yesterday`
///   (a past date: the request is then refused as in the past);
/// - `in 3 days`, `in a week`, `in 2 weeks`, `in a month`, `3 days from now`,
///   `2 days ago`;
/// - a weekday: `friday` and `this friday` mean the coming one, today
///   included; `next friday` means the first one after today (said on a
///   Friday: a week later); `friday next week` means the one in next week
///   (weeks start on Monday); `last friday` the one before today;
/// - a date: `2026-12-03`, `12/03/2026` and `12/03` (month/day), `3 dec`,
///   `december 3rd`, `3 december 2026`, `the 3rd of december`, `the 5th`
///   (the next 5th of a month); without a year, the next such date, today
///   included. A weekday may stand before a date (`friday 4 december`) and
///   must then be that date's weekday.
pub fn parse_date(input: &str, today: NaiveDate) -> Result<NaiveDate, WhenError> {
    let bad = || WhenError::BadDate(input.trim().to_string());
    let text = normalize(input);
    let mut words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    if words.first() == Some(&"on") {
        words.remove(0);
    }
    if words.first() == Some(&"the") {
        words.remove(0);
    }
    if let Some(offset) = named_day(&words) {
        return Ok(today + Duration::days(offset));
    }
    if let Some(date) = relative(&words, today) {
        return date.ok_or_else(bad);
    }
    if let Some(date) = weekday_date(&words, today) {
        return Ok(date);
    }
    if let Some(date) = calendar_date(&words, today) {
        return date.ok_or_else(bad);
    }
    // A weekday before a calendar date: both must agree.
    if let [first, rest @ ..] = words.as_slice() {
        if let (Some(said), Some(Some(date))) = (parse_weekday(first), calendar_date(rest, today)) {
            if date.weekday() != said {
                return Err(WhenError::WrongWeekday {
                    text: input.trim().to_string(),
                    date,
                    actual: weekday_name(date.weekday()).to_string(),
                    said: weekday_name(said).to_string(),
                });
            }
            return Ok(date);
        }
    }
    Err(bad())
}

/// Lower case, commas as spaces, single spaces.
fn normalize(input: &str) -> String {
    input
        .to_lowercase()
        .replace(',', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Days from today of a day with a name of its own.
fn named_day(words: &[&str]) -> Option<i64> {
    let offset = match words {
        ["today" | "tonight"] | ["this", "evening" | "afternoon"] => 0,
        ["tomorrow" | "tmrw" | "tmr"] | ["tomorrow", "night" | "evening" | "afternoon"] => 1,
        ["day", "after", "tomorrow"] | ["overmorrow"] => 2,
        ["yesterday"] | ["last", "night"] => -1,
        ["day", "before", "yesterday"] => -2,
        _ => return None,
    };
    Some(offset)
}

/// `in 3 days`, `2 weeks from now`, `a month from today`, `3 days ago`: the
/// outer `None` when the words are not of this form, the inner one when the
/// date would be out of range.
fn relative(words: &[&str], today: NaiveDate) -> Option<Option<NaiveDate>> {
    let (count, unit, sign) = match words {
        ["in", count @ .., unit] => (count, *unit, 1),
        [count @ .., unit, "from", "now" | "today"] => (count, *unit, 1),
        [count @ .., unit, "ago"] => (count, *unit, -1),
        _ => return None,
    };
    let n = match count {
        ["a" | "an"] => 1,
        _ => i64::from(number(count)?),
    };
    let n = n * sign;
    let date = match unit {
        "day" | "days" => today.checked_add_signed(Duration::days(n)),
        "week" | "weeks" => today.checked_add_signed(Duration::weeks(n)),
        "fortnight" | "fortnights" => today.checked_add_signed(Duration::weeks(2 * n)),
        "month" | "months" => {
            let months = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
            if n >= 0 {
                today.checked_add_months(months)
            } else {
                today.checked_sub_months(months)
            }
        }
        _ => return None,
    };
    Some(date)
}

/// A weekday word, with what comes before or after it.
fn weekday_date(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    // Days from today to the next `day`, 0 when today is that day.
    let ahead = |day: Weekday| {
        i64::from((7 + day.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7)
    };
    let date = match words {
        [day] | ["this" | "coming", day] | ["this", "coming", day] => {
            let day = parse_weekday(day)?;
            today + Duration::days(ahead(day))
        }
        ["next", day] => {
            let day = parse_weekday(day)?;
            let days = match ahead(day) {
                0 => 7,
                n => n,
            };
            today + Duration::days(days)
        }
        [day, "next", "week"] | ["next", "week", day] => {
            let day = parse_weekday(day)?;
            let monday_next_week =
                today + Duration::days(7 - i64::from(today.weekday().num_days_from_monday()));
            monday_next_week + Duration::days(i64::from(day.num_days_from_monday()))
        }
        ["last" | "past", day] => {
            let day = parse_weekday(day)?;
            let back = match (7 - ahead(day)) % 7 {
                0 => 7,
                n => n,
            };
            today - Duration::days(back)
        }
        _ => return None,
    };
    Some(date)
}

/// ISO, month/day and month-name dates: the outer `None` when the words are
/// not a date, the inner one when they name a day that does not exist.
fn calendar_date(words: &[&str], today: NaiveDate) -> Option<Option<NaiveDate>> {
    let [first, ..] = words else { return None };
    if words.len() == 1 {
        if let Ok(date) = NaiveDate::parse_from_str(first, "%Y-%m-%d") {
            return Some(Some(date));
        }
        if let Ok(date) = NaiveDate::parse_from_str(first, "%m/%d/%Y") {
            return Some(Some(date));
        }
        if let Some((m, d)) = first.split_once('/') {
            let (m, d) = (m.parse().ok()?, d.parse().ok()?);
            return Some(next_month_day(today, m, d));
        }
    }
    // "3 dec", "dec 3rd", "3rd of december 2026", "december 3 2026", "5th".
    let words: Vec<&str> = words.iter().copied().filter(|w| *w != "of").collect();
    let (month, day, year) = match words.as_slice() {
        [d] => {
            let day = parse_day(d).filter(|_| !d.chars().all(|c| c.is_ascii_digit()))?;
            return Some(next_day_of_month(today, day));
        }
        [a, b] => {
            let (m, d) = month_and_day(a, b)?;
            (m, d, None)
        }
        [a, b, y] => {
            let (m, d) = month_and_day(a, b)?;
            let year: i32 = y.parse().ok().filter(|y| (2000..=2999).contains(y))?;
            (m, d, Some(year))
        }
        _ => return None,
    };
    Some(match year {
        Some(y) => NaiveDate::from_ymd_opt(y, month, day),
        None => next_month_day(today, month, day),
    })
}

/// A month and a day in either order.
fn month_and_day(a: &str, b: &str) -> Option<(u32, u32)> {
    match (parse_month(a), parse_day(b)) {
        (Some(m), Some(d)) => Some((m, d)),
        _ => Some((parse_month(b)?, parse_day(a)?)),
    }
}

/// The next `month`/`day`, today included (this year's, else next year's).
fn next_month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    match NaiveDate::from_ymd_opt(today.year(), month, day) {
        Some(d) if d >= today => Some(d),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day),
    }
}

/// The next `day` of a month, today included, skipping months too short for it.
fn next_day_of_month(today: NaiveDate, day: u32) -> Option<NaiveDate> {
    (0..12).find_map(|ahead| {
        let first = today.with_day(1)?.checked_add_months(Months::new(ahead))?;
        NaiveDate::from_ymd_opt(first.year(), first.month(), day).filter(|d| *d >= today)
    })
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    let day = match text {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "weds" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    };
    Some(day)
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn parse_month(text: &str) -> Option<u32> {
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
    let t = text.trim_end_matches('.');
    if t.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(t) || (t == "sept" && *m == "september"))
        .map(|i| i as u32 + 1)
}

fn parse_day(text: &str) -> Option<u32> {
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|s| text.strip_suffix(s))
        .unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

/// A number written in digits or words, up to fifty-nine: `7`, `seven`,
/// `twenty five` (hyphens are spaces by now).
fn number(words: &[&str]) -> Option<u32> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [(&str, u32); 4] = [("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50)];
    let one = |w: &str| ONES.iter().position(|o| *o == w).map(|n| n as u32);
    let ten = |w: &str| TENS.iter().find(|(t, _)| *t == w).map(|(_, n)| *n);
    match words {
        [w] if !w.is_empty() && w.len() <= 3 && w.chars().all(|c| c.is_ascii_digit()) => {
            w.parse().ok()
        }
        [w] => one(w).or_else(|| ten(w)),
        [t, u] => Some(ten(t)? + one(u).filter(|u| (1..=9).contains(u))?),
        _ => None,
    }
}

/// Morning or afternoon, when the person said which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Am,
    Pm,
}

/// A time as read, before am/pm is settled.
struct Reading {
    hour: u32,
    minute: u32,
    /// Read on a 12-hour clock with nothing saying which half (`7`, `half
    /// past seven`): 1 to 10 is then the evening.
    twelve_hour: bool,
    /// The half written onto the digits (`7pm`).
    half: Option<Half>,
}

/// Parse a time of day: `7pm`, `7 pm`, `7:30pm`, `7.30pm`, `19:30`, `19h30`,
/// `1930`, `noon`, `midnight`, `seven`, `seven thirty`, `half past seven`,
/// `quarter past 8`, `quarter to eight`, `ten past seven`, `twenty to nine`,
/// `half seven` (British: 7:30), with `at` before and `am`, `pm`, `o'clock`,
/// `in the evening`, `at night` or `in the morning` after.
///
/// A bare hour from 1 to 10, or a spoken time, without am or pm is read as
/// the evening (`7` and `half past seven` are 19:00 and 19:30): people booking
/// dinner rarely mean the morning. Written with a colon it is a 24-hour clock
/// (`7:30` is 07:30, `19:30` the evening).
pub fn parse_time(input: &str) -> Result<NaiveTime, WhenError> {
    let bad = || WhenError::BadTime(input.trim().to_string());
    let text = input.to_lowercase().replace('’', "'").replace('-', " ");
    let text = normalize(&text.replace("o'clock", " ").replace("oclock", " "));
    let mut words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
    if matches!(words.first(), Some(&"at") | Some(&"@")) {
        words.remove(0);
    }
    let (words, half) = split_half(&words);
    let reading = match words {
        [] => return Err(bad()),
        ["noon" | "midday"] | ["12" | "twelve", "noon"] if half.is_none() => Reading {
            hour: 12,
            minute: 0,
            twelve_hour: false,
            half: None,
        },
        ["midnight"] | ["12" | "twelve", "midnight"] if half.is_none() => Reading {
            hour: 0,
            minute: 0,
            twelve_hour: false,
            half: None,
        },
        [one] if !one.chars().all(char::is_alphabetic) => written(one).ok_or_else(bad)?,
        _ => spoken(words).ok_or_else(bad)?,
    };
    let Reading {
        hour,
        minute,
        twelve_hour,
        half: written_half,
    } = reading;
    let half = match (half, written_half) {
        (Some(a), Some(b)) if a != b => return Err(bad()),
        (a, b) => a.or(b),
    };
    if minute > 59 {
        return Err(bad());
    }
    let hour = match half {
        Some(half) => {
            if !(1..=12).contains(&hour) {
                return Err(bad());
            }
            match (half, hour) {
                (Half::Pm, 12) => 12,
                (Half::Pm, h) => h + 12,
                (Half::Am, 12) => 0,
                (Half::Am, h) => h,
            }
        }
        None if twelve_hour && (1..=10).contains(&hour) => hour + 12,
        None => hour,
    };
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// Strip the words that say which half of the day (`pm`, `in the evening`).
fn split_half<'a, 'w>(words: &'a [&'w str]) -> (&'a [&'w str], Option<Half>) {
    const SUFFIXES: [(&[&str], Half); 12] = [
        (&["pm"], Half::Pm),
        (&["p.m."], Half::Pm),
        (&["p", "m"], Half::Pm),
        (&["in", "the", "evening"], Half::Pm),
        (&["in", "the", "afternoon"], Half::Pm),
        (&["at", "night"], Half::Pm),
        (&["tonight"], Half::Pm),
        (&["this", "evening"], Half::Pm),
        (&["am"], Half::Am),
        (&["a.m."], Half::Am),
        (&["a", "m"], Half::Am),
        (&["in", "the", "morning"], Half::Am),
    ];
    for (suffix, half) in SUFFIXES {
        if let Some(rest) = words.strip_suffix(suffix) {
            return (rest, Some(half));
        }
    }
    (words, None)
}

/// A time written in digits: `7`, `7pm`, `7:30`, `7.30pm`, `19h30`, `1930`, `730pm`.
fn written(text: &str) -> Option<Reading> {
    // A dot between digits is a separator (7.30); any other is an abbreviation (p.m.).
    let chars: Vec<char> = text.chars().collect();
    let text: String = chars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            '.' if i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()) =>
            {
                Some(':')
            }
            '.' => None,
            c => Some(*c),
        })
        .collect();
    let (body, half) = [
        ("pm", Half::Pm),
        ("am", Half::Am),
        ("p", Half::Pm),
        ("a", Half::Am),
    ]
    .iter()
    .find_map(|(s, half)| Some((text.strip_suffix(s)?, Some(*half))))
    .unwrap_or((&text, None));
    let with_half = half.is_some();
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.chars().all(|c| c.is_ascii_digit());
    if let Some((h, m)) = body.split_once([':', 'h']) {
        let m = if m.is_empty() { "00" } else { m };
        if !digits(h) || !digits(m) || m.len() != 2 {
            return None;
        }
        return Some(Reading {
            hour: h.parse().ok()?,
            minute: m.parse().ok()?,
            twelve_hour: false,
            half,
        });
    }
    if !body.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    match body.len() {
        1 | 2 => Some(Reading {
            hour: body.parse().ok()?,
            minute: 0,
            twelve_hour: true,
            half,
        }),
        // 730, 730pm: hour and minutes run together.
        3 => Some(Reading {
            hour: body[..1].parse().ok()?,
            minute: body[1..].parse().ok()?,
            twelve_hour: true,
            half,
        }),
        // 1930 is a 24-hour clock; 1130pm is not.
        4 => Some(Reading {
            hour: body[..2].parse().ok()?,
            minute: body[2..].parse().ok()?,
            twelve_hour: with_half,
            half,
        }),
        _ => None,
    }
}

/// A time in words: `seven`, `seven thirty`, `7 30`, `seven oh five`, `half
/// past seven`, `quarter to eight`, `ten past 7`, `twenty five to nine`, `half seven`.
fn spoken(words: &[&str]) -> Option<Reading> {
    let hour = |w: &[&str]| match w {
        [h] => number(&[h]).filter(|h| (1..=12).contains(h)),
        _ => None,
    };
    let relation = words
        .iter()
        .position(|w| matches!(*w, "past" | "after" | "to" | "of" | "before"));
    let (hour, minute) = if let Some(at) = relation {
        let (before, after) = (&words[..at], &words[at + 1..]);
        let h = hour(after)?;
        let m = match before {
            ["half"] => 30,
            ["quarter"] | ["a", "quarter"] => 15,
            [n @ .., "minutes" | "minute" | "mins" | "min"] | n => {
                number(n).filter(|m| (1..=59).contains(m))?
            }
        };
        if words[at] == "past" || words[at] == "after" {
            (h, m)
        } else if m == 30 && before == ["half"] {
            return None; // "half to eight" is not said
        } else {
            (if h == 1 { 12 } else { h - 1 }, 60 - m)
        }
    } else {
        match words {
            ["half", h] => (hour(&[h])?, 30),
            [h] => (hour(&[h])?, 0),
            [h, "oh", m] => (hour(&[h])?, number(&[m]).filter(|m| (1..=9).contains(m))?),
            [h, m @ ..] => {
                let minute = match m {
                    // Minutes in digits are two of them: "7 05", "7 30".
                    [d] if d.len() == 2 && d.chars().all(|c| c.is_ascii_digit()) => {
                        d.parse().ok()?
                    }
                    _ if m.iter().all(|w| w.chars().all(char::is_alphabetic)) => {
                        number(m).filter(|m| (10..=59).contains(m))?
                    }
                    _ => return None,
                };
                (hour(&[h])?, minute)
            }
            [] => return None,
        }
    };
    Some(Reading {
        hour,
        minute,
        twelve_hour: true,
        half: None,
    })
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
    fn weekday_words_on_the_same_weekday() {
        let friday = d(2026, 11, 27);
        assert_eq!(friday.weekday(), Weekday::Fri);
        // "next friday" said on a Friday is a week later; "friday" and "this friday" are today.
        assert_eq!(parse_date("next friday", friday).unwrap(), d(2026, 12, 4));
        assert_eq!(parse_date("Next Fri", friday).unwrap(), d(2026, 12, 4));
        assert_eq!(parse_date("friday", friday).unwrap(), friday);
        assert_eq!(parse_date("this friday", friday).unwrap(), friday);
        assert_eq!(parse_date("on friday", friday).unwrap(), friday);
        assert_eq!(
            parse_date("friday next week", friday).unwrap(),
            d(2026, 12, 4)
        );
        assert_eq!(parse_date("last friday", friday).unwrap(), d(2026, 11, 20));
        // On other days "next" is the first one after today, "this" the coming one.
        let tuesday = d(2026, 11, 24);
        assert_eq!(parse_date("next friday", tuesday).unwrap(), d(2026, 11, 27));
        assert_eq!(
            parse_date("this saturday", tuesday).unwrap(),
            d(2026, 11, 28)
        );
        assert_eq!(
            parse_date("coming sunday", tuesday).unwrap(),
            d(2026, 11, 29)
        );
        assert_eq!(parse_date("next tuesday", tuesday).unwrap(), d(2026, 12, 1));
        assert_eq!(
            parse_date("friday next week", tuesday).unwrap(),
            d(2026, 12, 4)
        );
        assert_eq!(
            parse_date("next week monday", tuesday).unwrap(),
            d(2026, 11, 30)
        );
        assert_eq!(parse_date("last monday", tuesday).unwrap(), d(2026, 11, 23));
        // Every weekday, every starting day: "next" is 1 to 7 days ahead,
        // plain and "this" 0 to 6, "last" 1 to 7 back, and all land on that weekday.
        for start in 0..7 {
            let today = d(2026, 11, 23) + Duration::days(start);
            for name in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
                let day = parse_weekday(name).unwrap();
                let plain = parse_date(name, today).unwrap();
                let this = parse_date(&format!("this {name}"), today).unwrap();
                let next = parse_date(&format!("next {name}"), today).unwrap();
                let last = parse_date(&format!("last {name}"), today).unwrap();
                assert_eq!(plain, this);
                assert!((0..7).contains(&(plain - today).num_days()));
                assert!((1..=7).contains(&(next - today).num_days()));
                assert!((1..=7).contains(&(today - last).num_days()));
                for date in [plain, next, last] {
                    assert_eq!(date.weekday(), day);
                }
            }
        }
    }

    #[test]
    fn past_days_resolve_to_past_dates_so_they_are_refused_as_past() {
        let today = d(2026, 11, 24);
        for (text, want) in [
            ("yesterday", d(2026, 11, 23)),
            ("Yesterday", d(2026, 11, 23)),
            ("the day before yesterday", d(2026, 11, 22)),
            ("2 days ago", d(2026, 11, 22)),
            ("2020-01-01", d(2020, 1, 1)),
        ] {
            assert_eq!(parse_date(text, today).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn days_and_weeks_from_today() {
        let today = d(2026, 11, 24);
        for (text, want) in [
            ("in 3 days", d(2026, 11, 27)),
            ("in three days", d(2026, 11, 27)),
            ("in a day", d(2026, 11, 25)),
            ("in 1 day", d(2026, 11, 25)),
            ("in a week", d(2026, 12, 1)),
            ("in 2 weeks", d(2026, 12, 8)),
            ("in two weeks", d(2026, 12, 8)),
            ("in a fortnight", d(2026, 12, 8)),
            ("in a month", d(2026, 12, 24)),
            ("10 days from now", d(2026, 12, 4)),
            ("a week from today", d(2026, 12, 1)),
            ("the day after tomorrow", d(2026, 11, 26)),
            ("tonight", today),
        ] {
            assert_eq!(parse_date(text, today).unwrap(), want, "{text}");
        }
        assert!(parse_date("in days", today).is_err());
        assert!(parse_date("in 3 parsecs", today).is_err());
    }

    #[test]
    fn more_written_dates() {
        let today = d(2026, 11, 24);
        for (text, want) in [
            ("3 December 2026", d(2026, 12, 3)),
            ("December 3rd, 2027", d(2027, 12, 3)),
            ("the 3rd of December", d(2026, 12, 3)),
            ("Sept 4", d(2027, 9, 4)),
            ("the 30th", d(2026, 11, 30)),
            ("the 24th", today),
            ("23rd", d(2026, 12, 23)),
            ("Friday, 4 December", d(2026, 12, 4)),
            ("fri dec 4", d(2026, 12, 4)),
        ] {
            assert_eq!(parse_date(text, today).unwrap(), want, "{text}");
        }
        // February has no 31st: the next one is in March.
        assert_eq!(parse_date("31st", d(2027, 2, 3)).unwrap(), d(2027, 3, 31));
        let wrong = parse_date("thursday 4 december", today).unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "'thursday 4 december': 2026-12-04 is a Friday, not a Thursday"
        );
        assert!(
            parse_date("4", today).is_err(),
            "a bare number is not a date"
        );
        assert!(parse_date("december 3 1999", today).is_err());
    }

    #[test]
    fn spoken_times() {
        for (text, want) in [
            ("half past seven", t(19, 30)),
            ("half past 7", t(19, 30)),
            ("Half seven", t(19, 30)),
            ("quarter past eight", t(20, 15)),
            ("a quarter to eight", t(19, 45)),
            ("quarter of eight", t(19, 45)),
            ("ten past seven", t(19, 10)),
            ("twenty-five to nine", t(20, 35)),
            ("20 minutes past 6", t(18, 20)),
            ("quarter to one", t(12, 45)),
            ("half past eleven in the morning", t(11, 30)),
            ("half past twelve", t(12, 30)),
            ("seven", t(19, 0)),
            ("seven o'clock", t(19, 0)),
            ("7 o’clock", t(19, 0)),
            ("seven thirty", t(19, 30)),
            ("seven forty-five pm", t(19, 45)),
            ("seven oh five", t(19, 5)),
            ("7 30", t(19, 30)),
            ("7 05 pm", t(19, 5)),
            ("eight in the evening", t(20, 0)),
            ("8 at night", t(20, 0)),
            ("9 in the morning", t(9, 0)),
            ("at 7pm", t(19, 0)),
            ("at noon", t(12, 0)),
            ("12 noon", t(12, 0)),
            ("Midday", t(12, 0)),
            ("midnight", t(0, 0)),
            ("twelve midnight", t(0, 0)),
            ("7.30pm", t(19, 30)),
            ("7.30 p.m.", t(19, 30)),
            ("19h30", t(19, 30)),
            ("730pm", t(19, 30)),
            ("1130pm", t(23, 30)),
            ("0730", t(7, 30)),
        ] {
            assert_eq!(parse_time(text).unwrap(), want, "{text}");
        }
        for bad in [
            "half to eight",
            "quarter past thirteen",
            "seven five",
            "7 3",
            "noon pm",
            "7pm in the morning",
            "seventy",
            "at",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_an_answer_not_a_panic(text in "\\PC{0,40}") {
            let _ = parse_date(&text, d(2026, 11, 24));
            let _ = parse_time(&text);
        }

        #[test]
        fn every_24_hour_time_reads_back(h in 0u32..24, m in 0u32..60) {
            proptest::prop_assert_eq!(parse_time(&format!("{h:02}:{m:02}")).unwrap(), t(h, m));
        }

        #[test]
        fn in_n_days_is_n_days_ahead(n in 0i64..400) {
            let today = d(2026, 11, 24);
            proptest::prop_assert_eq!(parse_date(&format!("in {n} days"), today).unwrap(), today + Duration::days(n));
        }
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
