//! The restaurant's time zone read from its phone number: "tomorrow at 7pm"
//! must mean 7pm where the table is, not where the server runs.
//!
//! The data is libphonenumber's time zones per number prefix (the table behind
//! its `PhoneNumberToTimeZonesMapper`), generated into `zones_data.rs` by
//! `scripts/gen-zone-data.py`. Area codes settle the countries that span
//! several zones: +1 415 is Los Angeles, +61 2 Sydney, +7 495 Moscow. As in
//! the mapper, a number that is not tied to a place (a mobile outside the
//! countries whose mobiles have area codes, a toll-free or premium number)
//! gets its country's zones, not its prefix's. Where that still spans several
//! zones (a US toll-free number, an Australian mobile) nothing is guessed: a
//! wrong guess is worse than the server's configured default, and the CLI
//! says which zone it used. Zones that keep the same clock all year (London,
//! Jersey, Guernsey) count as one.

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use phonenumber::Type;

// Generated: the data and its licence, in a file of its own beside this one.
#[path = "zones_data.rs"]
mod data;

/// What a phone number says about where the restaurant is in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberZone {
    /// The number lies in one zone.
    One(Tz),
    /// The number may be in any of these zones (as libphonenumber lists
    /// them); the zone must come from elsewhere (`--timezone`, the server's default).
    Several(Vec<Tz>),
    /// libphonenumber knows no zone for the number.
    Unknown,
}

impl NumberZone {
    /// The zone, when the number settles it.
    pub fn single(&self) -> Option<Tz> {
        match self {
            NumberZone::One(tz) => Some(*tz),
            _ => None,
        }
    }
}

/// Countries whose mobile numbers carry an area code, so the mapper reads
/// their prefixes like landlines (libphonenumber's `GEO_MOBILE_COUNTRIES`:
/// Mexico, Argentina, Brazil, Indonesia, China).
const GEO_MOBILE_COUNTRIES: [u16; 5] = [52, 54, 55, 62, 86];

/// The zones of an E.164 number (`+14155550123`). `now` starts the year over
/// which zones listed together must keep the same clock to count as one.
pub fn zone_of_number(e164: &str, now: DateTime<Utc>) -> NumberZone {
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    let parsed = phonenumber::parse(None, e164).ok();
    let country = parsed
        .as_ref()
        .map(|n| n.code().value())
        .filter(|code| digits.starts_with(&code.to_string()));
    // A number of unknown type still has its area code: only numbers known
    // not to be tied to a place fall back to their country's zones.
    let longest = match (&parsed, country) {
        (Some(number), Some(code)) if !is_geographical(number, code) => code.to_string().len(),
        _ => digits.len().min(data::LONGEST_PREFIX),
    };
    let Some(set) = (1..=longest).rev().find_map(|len| {
        let prefix = &digits[..len];
        data::PREFIXES
            .binary_search_by(|(p, _)| (*p).cmp(prefix))
            .ok()
            .map(|i| data::PREFIXES[i].1)
    }) else {
        return NumberZone::Unknown;
    };
    let zones: Vec<Tz> = data::ZONE_SETS
        .get(usize::from(set))
        .into_iter()
        .flat_map(|names| names.iter())
        .filter_map(|name| name.parse().ok())
        .collect();
    match zones.as_slice() {
        [] => NumberZone::Unknown,
        [one] => NumberZone::One(*one),
        _ if same_clock_all_year(&zones, now) => {
            let country = country.map(|c| c.to_string()).unwrap_or_default();
            NumberZone::One(most_listed(&zones, &country))
        }
        _ => NumberZone::Several(zones),
    }
}

/// libphonenumber's `isNumberGeographical`, with an unknown type counted as
/// geographical (a number the metadata cannot classify still has an area code).
fn is_geographical(number: &phonenumber::PhoneNumber, country: u16) -> bool {
    match number.number_type(&phonenumber::metadata::DATABASE) {
        Type::FixedLine | Type::FixedLineOrMobile | Type::Unknown => true,
        Type::Mobile => GEO_MOBILE_COUNTRIES.contains(&country),
        _ => false,
    }
}

/// Whether every zone shows the same UTC offset every day of the coming year.
fn same_clock_all_year(zones: &[Tz], now: DateTime<Utc>) -> bool {
    let offset = |tz: &Tz, at: DateTime<Utc>| {
        tz.offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc()
    };
    (0..=366).all(|day| {
        let at = now + Duration::days(day);
        let first = offset(&zones[0], at);
        zones.iter().all(|tz| offset(tz, at) == first)
    })
}

/// Of interchangeable zones, the one the country's own prefixes name most
/// often on their own (London rather than Guernsey for a UK mobile).
fn most_listed(zones: &[Tz], country: &str) -> Tz {
    let alone = |tz: &Tz| {
        data::PREFIXES
            .iter()
            .filter(|(p, set)| {
                p.starts_with(country)
                    && data::ZONE_SETS.get(usize::from(*set)) == Some(&&[tz.name()][..])
            })
            .count()
    };
    zones
        .iter()
        .copied()
        .max_by_key(|tz| alone(tz))
        .unwrap_or(Tz::UTC)
}

/// The libphonenumber release the prefix data comes from.
pub fn data_version() -> &'static str {
    data::VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn zone(number: &str) -> NumberZone {
        zone_of_number(number, now())
    }

    fn one(number: &str) -> Tz {
        match zone(number) {
            NumberZone::One(tz) => tz,
            other => panic!("{number}: {other:?}"),
        }
    }

    #[test]
    fn area_codes_settle_countries_with_several_zones() {
        // United States.
        assert_eq!(one("+14155550123"), Tz::America__Los_Angeles);
        assert_eq!(one("+1 (415) 555-0199"), Tz::America__Los_Angeles);
        assert_eq!(one("+12125550123"), Tz::America__New_York);
        assert_eq!(one("+13125550123"), Tz::America__Chicago);
        assert_eq!(one("+13035550123"), Tz::America__Denver);
        assert_eq!(one("+16025550123"), Tz::America__Phoenix);
        assert_eq!(one("+18085550123"), Tz::Pacific__Honolulu);
        // Canada.
        assert_eq!(one("+16045550123"), Tz::America__Vancouver);
        assert_eq!(one("+14165550123"), Tz::America__Toronto);
        // Australia: Sydney, Melbourne (Sydney's clock), Brisbane.
        assert_eq!(one("+61292345678"), Tz::Australia__Sydney);
        assert_eq!(one("+61392345678"), Tz::Australia__Sydney);
        assert_eq!(one("+61732345678"), Tz::Australia__Brisbane);
        // Brazil: São Paulo, Manaus (landline and mobile: Brazil's mobiles have area codes).
        assert_eq!(one("+551123456789"), Tz::America__Sao_Paulo);
        assert_eq!(one("+5511987654321"), Tz::America__Sao_Paulo);
        assert_eq!(one("+559232345678"), Tz::America__Manaus);
        // Russia: Moscow, Novosibirsk, Vladivostok.
        assert_eq!(one("+74951234567"), Tz::Europe__Moscow);
        assert_eq!(one("+73832345678"), Tz::Asia__Novosibirsk);
        assert_eq!(one("+74232345678"), Tz::Asia__Vladivostok);
        // Mexico: Mexico City, Tijuana.
        assert_eq!(one("+525512345678"), Tz::America__Mexico_City);
        assert_eq!(one("+526641234567"), Tz::America__Tijuana);
    }

    #[test]
    fn single_zone_countries_and_islands() {
        assert_eq!(one("+33142685300"), Tz::Europe__Paris);
        assert_eq!(one("+33612345678"), Tz::Europe__Paris);
        assert_eq!(one("+81312345678"), Tz::Asia__Tokyo);
        assert_eq!(one("+442079460018"), Tz::Europe__London);
        assert_eq!(one("+34912345678"), Tz::Europe__Madrid);
        // The Canaries have their own numbers, and their own zone.
        assert_eq!(one("+34928123456"), Tz::Atlantic__Canary);
        // A UK mobile may be in London, Jersey, Guernsey or the Isle of Man:
        // one clock all year, so one zone, the one the UK's prefixes name most.
        assert_eq!(one("+447912345678"), Tz::Europe__London);
    }

    #[test]
    fn a_number_spanning_several_zones_guesses_nothing() {
        // A US toll-free number: anywhere in the country.
        match zone("+18005550123") {
            NumberZone::Several(zones) => {
                assert!(zones.contains(&Tz::America__New_York));
                assert!(zones.contains(&Tz::America__Los_Angeles));
            }
            other => panic!("{other:?}"),
        }
        // Western and South Australia share the 08 area code.
        assert_eq!(
            zone("+61892345678"),
            NumberZone::Several(vec![Tz::Australia__Adelaide, Tz::Australia__Perth])
        );
        // Mobiles are not tied to a place: an Australian or a Russian mobile
        // gets its country's zones (the prefix table alone says Sydney, Moscow).
        for mobile in ["+61412345678", "+79161234567"] {
            match zone(mobile) {
                NumberZone::Several(zones) => assert!(zones.len() > 2, "{mobile}: {zones:?}"),
                other => panic!("{mobile}: {other:?}"),
            }
        }
        assert_eq!(zone("+18005550123").single(), None);
        assert_eq!(zone("+999").single(), None);
        assert_eq!(zone(""), NumberZone::Unknown);
    }

    #[test]
    fn the_generated_table_is_sorted_and_every_zone_is_known() {
        assert!(data::PREFIXES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(data::PREFIXES
            .iter()
            .all(|(p, set)| p.len() <= data::LONGEST_PREFIX
                && p.chars().all(|c| c.is_ascii_digit())
                && usize::from(*set) < data::ZONE_SETS.len()));
        for name in data::ZONE_SETS.iter().flat_map(|s| s.iter()) {
            assert!(
                name.parse::<Tz>().is_ok(),
                "{name} is not a zone chrono-tz knows"
            );
        }
        assert!(data_version().starts_with("9."));
    }
}
