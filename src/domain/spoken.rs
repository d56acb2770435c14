//! Dates and times said the way people say them in the call's language:
//! "samedi 28 novembre à 19 h", "Samstag, 28. November, um 19 Uhr",
//! "11月28日土曜日の19時" — not "Saturday 28 November at 7 PM" read out in
//! a French voice.
//!
//! Weekday and month names come from the GNU C library's locale data
//! (chrono's `unstable-locales`, i.e. `pure-rust-locales`); what is left is
//! grammar the locale data does not hold: "1er" in French, "de" in Spanish,
//! the clock people use (24 h with "h" in French, "Uhr" in German; the
//! 12-hour clock with the part of the day in Spanish, "a las 7 de la tarde")
//! and the preposition that joins date and time. English is exactly what
//! [`Slot::spoken_date`] and [`Slot::spoken_time`] say, as it always was.

use chrono::{Datelike, Locale, NaiveDate, NaiveTime, Timelike};

use super::language::{BaseLanguage, Language};
use super::reservation::Slot;

/// glibc locale whose weekday and month names a language uses.
fn locale(language: Language) -> Locale {
    match language.base() {
        BaseLanguage::English => Locale::en_GB,
        BaseLanguage::French => Locale::fr_FR,
        BaseLanguage::Spanish => Locale::es_ES,
        BaseLanguage::German => Locale::de_DE,
        BaseLanguage::Italian => Locale::it_IT,
        BaseLanguage::Portuguese => Locale::pt_BR,
        BaseLanguage::Japanese => Locale::ja_JP,
    }
}

fn weekday(date: NaiveDate, language: Language) -> String {
    date.format_localized("%A", locale(language)).to_string()
}

fn month(date: NaiveDate, language: Language) -> String {
    date.format_localized("%B", locale(language)).to_string()
}

/// The day of the month as said before the month: the first is an ordinal
/// in French ("1er"), Italian ("1º") and Brazilian Portuguese ("1º"), not
/// in Portugal ("1 de novembro").
fn day_number(date: NaiveDate, language: Language) -> String {
    let day = date.day();
    let ordinal_first = match language.base() {
        BaseLanguage::French => Some("1er"),
        BaseLanguage::Italian => Some("1º"),
        BaseLanguage::Portuguese if !matches!(language.region(), Some("PT" | "AO" | "MZ")) => {
            Some("1º")
        }
        _ => None,
    };
    match ordinal_first {
        Some(first) if day == 1 => first.to_string(),
        _ => day.to_string(),
    }
}

/// The date as the agent says it, without the year: "Wednesday 25 November",
/// "samedi 28 novembre", "sábado 28 de noviembre", "Samstag, 28. November",
/// "sabato 28 novembre", "sábado, 28 de novembro", "11月28日土曜日".
pub fn date(date: NaiveDate, language: Language) -> String {
    let (day, weekday, month) = (
        day_number(date, language),
        weekday(date, language),
        month(date, language),
    );
    match language.base() {
        BaseLanguage::English | BaseLanguage::French | BaseLanguage::Italian => {
            format!("{weekday} {day} {month}")
        }
        BaseLanguage::Spanish => format!("{weekday} {day} de {month}"),
        BaseLanguage::German => format!("{weekday}, {day}. {month}"),
        BaseLanguage::Portuguese => format!("{weekday}, {day} de {month}"),
        BaseLanguage::Japanese => format!("{month}{day}日{weekday}"),
    }
}

/// The part of the day Spanish speakers put after a 12-hour time.
fn spanish_part_of_day(hour: u32) -> &'static str {
    match hour {
        0 | 21..=23 => "de la noche",
        1..=5 => "de la madrugada",
        6..=11 => "de la mañana",
        12 => "del mediodía",
        _ => "de la tarde",
    }
}

/// The time as a phrase of its own, the way a person answers "what time?":
/// "7 PM", "19 h 30", "las 7 y media de la tarde", "19:30 Uhr", "le 19:30",
/// "19h30", "19時30分". Italian and Spanish times carry their article.
pub fn time(time: NaiveTime, language: Language) -> String {
    let (h, m) = (time.hour(), time.minute());
    match language.base() {
        BaseLanguage::English => {
            let (pm, hour) = time.hour12();
            let suffix = if pm { "PM" } else { "AM" };
            if m == 0 {
                format!("{hour} {suffix}")
            } else {
                format!("{hour}:{m:02} {suffix}")
            }
        }
        BaseLanguage::French if m == 0 => format!("{h} h"),
        BaseLanguage::French => format!("{h} h {m:02}"),
        BaseLanguage::Spanish => {
            let hour = match h % 12 {
                0 => 12,
                x => x,
            };
            let article = if hour == 1 { "la" } else { "las" };
            let minutes = match m {
                0 => String::new(),
                15 => " y cuarto".to_string(),
                30 => " y media".to_string(),
                m => format!(":{m:02}"),
            };
            format!("{article} {hour}{minutes} {}", spanish_part_of_day(h))
        }
        BaseLanguage::German if m == 0 => format!("{h} Uhr"),
        BaseLanguage::German => format!("{h}:{m:02} Uhr"),
        BaseLanguage::Italian => {
            let article = if h == 1 { "l'" } else { "le " };
            if m == 0 {
                format!("{article}{h}")
            } else {
                format!("{article}{h}:{m:02}")
            }
        }
        BaseLanguage::Portuguese if m == 0 => format!("{h}h"),
        BaseLanguage::Portuguese => format!("{h}h{m:02}"),
        BaseLanguage::Japanese if m == 0 => format!("{h}時"),
        BaseLanguage::Japanese => format!("{h}時{m}分"),
    }
}

/// "at" + the time, as joined to a date: "à 19 h", "a las 7 de la tarde",
/// "um 19 Uhr", "alle 19", "all'1", "às 19h", "à 1h".
fn at_time(t: NaiveTime, language: Language) -> String {
    let said = time(t, language);
    match language.base() {
        BaseLanguage::English => format!("at {said}"),
        BaseLanguage::French => format!("à {said}"),
        BaseLanguage::Spanish => format!("a {said}"),
        BaseLanguage::German => format!("um {said}"),
        // a + le = alle, a + l' = all'
        BaseLanguage::Italian => format!("al{said}"),
        // a + as = às, a + a = à (before "uma" and "zero hora")
        BaseLanguage::Portuguese if t.hour() <= 1 => format!("à {said}"),
        BaseLanguage::Portuguese => format!("às {said}"),
        BaseLanguage::Japanese => format!("{said}に"),
    }
}

/// A date and a time as one phrase: "Wednesday 25 November at 7 PM",
/// "samedi 28 novembre à 19 h", "sábado 28 de noviembre a las 7 de la tarde",
/// "Samstag, 28. November, um 19 Uhr", "sabato 28 novembre alle 19",
/// "sábado, 28 de novembro, às 19h", "11月28日土曜日の19時".
pub fn date_and_time(d: NaiveDate, t: NaiveTime, language: Language) -> String {
    let day = date(d, language);
    match language.base() {
        BaseLanguage::German | BaseLanguage::Portuguese => {
            format!("{day}, {}", at_time(t, language))
        }
        BaseLanguage::Japanese => format!("{day}の{}", time(t, language)),
        _ => format!("{day} {}", at_time(t, language)),
    }
}

/// The slot's date in `language` (see [`date`]).
pub fn slot_date(slot: &Slot, language: Language) -> String {
    date(slot.date, language)
}

/// The slot's time in `language` (see [`time`]).
pub fn slot_time(slot: &Slot, language: Language) -> String {
    time(slot.time, language)
}

/// The whole slot in `language` (see [`date_and_time`]).
pub fn slot_date_and_time(slot: &Slot, language: Language) -> String {
    date_and_time(slot.date, slot.time, language)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(tag: &str) -> Language {
        Language::parse(tag).expect("tag")
    }
    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }
    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }
    fn slot(date: NaiveDate, time: NaiveTime) -> Slot {
        Slot {
            date,
            time,
            timezone: chrono_tz::Tz::Europe__Paris,
        }
    }

    #[test]
    fn a_slot_is_said_the_way_people_say_it() {
        let s = slot(d(2026, 11, 28), t(19, 0));
        for (tag, want) in [
            ("en", "Saturday 28 November at 7 PM"),
            ("fr", "samedi 28 novembre à 19 h"),
            ("es", "sábado 28 de noviembre a las 7 de la tarde"),
            ("de", "Samstag, 28. November, um 19 Uhr"),
            ("it", "sabato 28 novembre alle 19"),
            ("pt-BR", "sábado, 28 de novembro, às 19h"),
            ("ja", "11月28日土曜日の19時"),
        ] {
            assert_eq!(slot_date_and_time(&s, lang(tag)), want, "{tag}");
        }
    }

    #[test]
    fn times_follow_each_languages_clock() {
        for (tag, h, m, want) in [
            ("fr", 19, 30, "19 h 30"),
            ("fr", 12, 5, "12 h 05"),
            ("fr", 0, 30, "0 h 30"),
            ("es", 19, 30, "las 7 y media de la tarde"),
            ("es", 13, 15, "la 1 y cuarto de la tarde"),
            ("es", 21, 0, "las 9 de la noche"),
            ("es", 12, 0, "las 12 del mediodía"),
            ("es", 9, 45, "las 9:45 de la mañana"),
            ("es", 0, 0, "las 12 de la noche"),
            ("de", 19, 30, "19:30 Uhr"),
            ("it", 19, 30, "le 19:30"),
            ("it", 1, 0, "l'1"),
            ("pt", 19, 30, "19h30"),
            ("ja", 19, 30, "19時30分"),
            ("en", 19, 30, "7:30 PM"),
            ("en", 0, 15, "12:15 AM"),
        ] {
            assert_eq!(time(t(h, m), lang(tag)), want, "{tag} {h}:{m}");
        }
        assert_eq!(
            date_and_time(d(2026, 11, 28), t(1, 0), lang("it")),
            "sabato 28 novembre all'1"
        );
        assert_eq!(
            date_and_time(d(2026, 11, 28), t(1, 30), lang("pt")),
            "sábado, 28 de novembro, à 1h30"
        );
        assert_eq!(
            date_and_time(d(2026, 11, 28), t(13, 0), lang("pt")),
            "sábado, 28 de novembro, às 13h"
        );
    }

    #[test]
    fn the_first_of_the_month_is_an_ordinal_where_people_say_so() {
        let first = d(2026, 11, 1);
        for (tag, want) in [
            ("fr", "dimanche 1er novembre"),
            ("it", "domenica 1º novembre"),
            ("pt-BR", "domingo, 1º de novembro"),
            ("pt-PT", "domingo, 1 de novembro"),
            ("es", "domingo 1 de noviembre"),
            ("de", "Sonntag, 1. November"),
            ("en", "Sunday 1 November"),
            ("ja", "11月1日日曜日"),
        ] {
            assert_eq!(date(first, lang(tag)), want, "{tag}");
        }
    }

    #[test]
    fn english_is_what_the_slot_has_always_said() {
        let en = Language::ENGLISH;
        for (day, h, m) in [(25, 19, 0), (1, 0, 0), (31, 12, 30), (3, 23, 59), (9, 7, 5)] {
            let s = slot(d(2026, 12, day), t(h, m));
            assert_eq!(slot_date(&s, en), s.spoken_date());
            assert_eq!(slot_time(&s, en), s.spoken_time());
            assert_eq!(
                slot_date_and_time(&s, en),
                format!("{} at {}", s.spoken_date(), s.spoken_time())
            );
        }
    }

    #[test]
    fn every_month_and_weekday_has_a_name_in_every_language() {
        for base in BaseLanguage::ALL {
            let l = Language::new(base);
            let mut names = std::collections::HashSet::new();
            for m in 1..=12 {
                let day = d(2026, m, 10);
                let said = date(day, l);
                assert!(!said.contains('%'), "{base:?} {said}");
                names.insert(month(day, l));
            }
            assert_eq!(names.len(), 12, "{base:?}: {names:?}");
            let weekdays: std::collections::HashSet<String> =
                (1..=7).map(|x| weekday(d(2026, 6, x), l)).collect();
            assert_eq!(weekdays.len(), 7, "{base:?}: {weekdays:?}");
        }
    }
}
