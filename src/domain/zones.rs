//! The restaurant's time zone guessed from its phone number, for countries
//! that have a single zone: "tomorrow at 7pm" must mean 7pm where the table is,
//! not where the server runs. Countries spanning several zones (US, CA, AU, BR,
//! RU, MX, …) are deliberately absent: a wrong guess is worse than the
//! server's configured default.

use chrono_tz::Tz;

/// ISO 3166 region → its one IANA zone.
const SINGLE_ZONE: &[(&str, Tz)] = &[
    ("AT", Tz::Europe__Vienna),
    ("BE", Tz::Europe__Brussels),
    ("CH", Tz::Europe__Zurich),
    ("CZ", Tz::Europe__Prague),
    ("DE", Tz::Europe__Berlin),
    ("DK", Tz::Europe__Copenhagen),
    ("FI", Tz::Europe__Helsinki),
    ("FR", Tz::Europe__Paris),
    ("GB", Tz::Europe__London),
    ("GR", Tz::Europe__Athens),
    ("HU", Tz::Europe__Budapest),
    ("IE", Tz::Europe__Dublin),
    ("IT", Tz::Europe__Rome),
    ("LU", Tz::Europe__Luxembourg),
    ("MC", Tz::Europe__Monaco),
    ("NL", Tz::Europe__Amsterdam),
    ("NO", Tz::Europe__Oslo),
    ("PL", Tz::Europe__Warsaw),
    ("SE", Tz::Europe__Stockholm),
    ("SG", Tz::Asia__Singapore),
    ("HK", Tz::Asia__Hong_Kong),
    ("IL", Tz::Asia__Jerusalem),
    ("IN", Tz::Asia__Kolkata),
    ("JP", Tz::Asia__Tokyo),
    ("KR", Tz::Asia__Seoul),
    ("NZ", Tz::Pacific__Auckland),
    ("ZA", Tz::Africa__Johannesburg),
];

/// The one zone of `region` (an ISO 3166 alpha-2 code), if it has only one.
/// Spain and Portugal are listed by their mainland zone: their islands
/// (Canaries, Azores, Madeira) have their own numbering ranges, but a
/// restaurant on them is rare enough that the mainland is the better guess.
pub fn single_zone_of(region: &str) -> Option<Tz> {
    match region {
        "ES" => return Some(Tz::Europe__Madrid),
        "PT" => return Some(Tz::Europe__Lisbon),
        _ => {}
    }
    SINGLE_ZONE
        .iter()
        .find(|(r, _)| *r == region)
        .map(|(_, tz)| *tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_zone_countries_only() {
        assert_eq!(single_zone_of("FR"), Some(Tz::Europe__Paris));
        assert_eq!(single_zone_of("JP"), Some(Tz::Asia__Tokyo));
        assert_eq!(single_zone_of("ES"), Some(Tz::Europe__Madrid));
        assert_eq!(single_zone_of("US"), None);
        assert_eq!(single_zone_of("CA"), None);
        assert_eq!(single_zone_of("AU"), None);
        assert_eq!(single_zone_of("RU"), None);
        assert_eq!(single_zone_of("BR"), None);
    }
}
