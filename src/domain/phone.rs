//! Telephone numbers in E.164, the only form Twilio dials.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A telephone number known to be in E.164 form (`+15551234567`).
///
/// Parsed with the `phonenumber` crate (libphonenumber's metadata) so that
/// spaces, dashes and brackets people type are accepted and normalised.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a string is not a dialable number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Not a number at all, or not in international form.
    #[error("'{0}' is not a phone number in international form (e.g. +15551234567)")]
    Unparseable(String),
    /// A number that must never be dialled by a robot (emergency, short codes).
    #[error("'{0}' is an emergency or short code number and will not be called")]
    Refused(String),
}

/// Emergency and service numbers that are never dialled, whatever the country.
const NEVER_DIAL: &[&str] = &[
    "911", "112", "999", "000", "110", "119", "100", "101", "102", "108", "118", "122", "15", "17",
    "18",
];

impl PhoneNumber {
    /// Parse a number a person typed. International form (`+` and country
    /// code) is required: the server cannot guess the country of the restaurant.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        let digits: String = trimmed.chars().filter(|c| c.is_ascii_digit()).collect();
        if NEVER_DIAL.contains(&digits.as_str()) {
            return Err(PhoneError::Refused(trimmed.to_string()));
        }
        if !trimmed.starts_with('+') {
            return Err(PhoneError::Unparseable(trimmed.to_string()));
        }
        let parsed = phonenumber::parse(None, trimmed)
            .map_err(|_| PhoneError::Unparseable(trimmed.to_string()))?;
        let national = parsed.national().value();
        if national.to_string().len() < 6 {
            return Err(PhoneError::Refused(trimmed.to_string()));
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        if e164.len() < 8 || e164.len() > 16 {
            return Err(PhoneError::Unparseable(trimmed.to_string()));
        }
        Ok(PhoneNumber(e164))
    }

    /// The number's time zone when its area code (or, for a mobile, its
    /// country) settles it: libphonenumber's per-prefix zones (`domain::zones`).
    pub fn single_timezone(&self) -> Option<chrono_tz::Tz> {
        super::zones::zone_of_number(&self.0, chrono::Utc::now()).single()
    }

    /// The E.164 string, for Twilio and the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A partly masked form for logs: `+1555•••4567` keeps enough to recognise
    /// a call without writing a whole number into log files.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Mask any number-like string for logging (keeps the first 5 and last 2 characters).
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 7 {
        return "•".repeat(chars.len());
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}•••{tail}")
}

/// Which numbers the agent may dial: never premium-rate, shared-cost,
/// voicemail-access or pager numbers, nor anything libphonenumber does not
/// know as a real number; optionally only some countries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialPolicy {
    /// Country calling codes allowed (`[1, 33]`); `None` allows every country.
    pub allowed_country_codes: Option<Vec<u16>>,
}

impl DialPolicy {
    /// Parse an allow-list like `+1, +33,44` (empty: every country).
    pub fn parse_allow_list(text: &str) -> Result<Self, String> {
        let codes: Result<Vec<u16>, String> = text
            .split([',', ' '])
            .map(|c| c.trim().trim_start_matches('+'))
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<u16>()
                    .ok()
                    .filter(|n| (1..=999).contains(n))
                    .ok_or_else(|| format!("'{c}' is not a country calling code like 1 or 33"))
            })
            .collect();
        let codes = codes?;
        Ok(DialPolicy {
            allowed_country_codes: if codes.is_empty() { None } else { Some(codes) },
        })
    }

    /// May the agent call this number? `Err` says why not, for the person.
    pub fn check(&self, number: &PhoneNumber) -> Result<(), String> {
        use phonenumber::Type;
        let parsed = phonenumber::parse(None, number.as_str())
            .map_err(|_| format!("{} is not a phone number", number.as_str()))?;
        if let Some(allowed) = &self.allowed_country_codes {
            let code = parsed.country().code();
            if !allowed.contains(&code) {
                return Err(format!(
                    "calls to country code +{code} are not allowed on this server"
                ));
            }
        }
        if !phonenumber::is_valid(&parsed) {
            return Err(format!("{} is not a dialable number", number.as_str()));
        }
        match parsed.number_type(&phonenumber::metadata::DATABASE) {
            Type::PremiumRate => Err(format!(
                "{} is a premium-rate number and will not be called",
                number.as_str()
            )),
            Type::SharedCost => Err(format!(
                "{} is a shared-cost number and will not be called",
                number.as_str()
            )),
            Type::Voicemail | Type::Pager => Err(format!(
                "{} is not a number a restaurant answers",
                number.as_str()
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_international_forms_and_normalises() {
        assert_eq!(
            PhoneNumber::parse("+1 555 123 4567").unwrap().as_str(),
            "+15551234567"
        );
        assert_eq!(
            PhoneNumber::parse("+1 (555) 123-4567").unwrap().as_str(),
            "+15551234567"
        );
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn refuses_national_garbage_and_emergency_numbers() {
        assert!(matches!(
            PhoneNumber::parse("5551234567"),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(PhoneNumber::parse("+1555").is_err());
        assert!(PhoneNumber::parse("hello").is_err());
        assert!(matches!(
            PhoneNumber::parse("911"),
            Err(PhoneError::Refused(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("112"),
            Err(PhoneError::Refused(_))
        ));
    }

    #[test]
    fn dial_policy_refuses_premium_invalid_and_foreign_numbers() {
        let open = DialPolicy::default();
        let n = |s: &str| PhoneNumber::parse(s).unwrap();
        assert!(open.check(&n("+12125550123")).is_ok());
        assert!(open.check(&n("+33142685300")).is_ok());
        assert!(
            open.check(&n("+18005551234")).is_ok(),
            "toll-free restaurants exist"
        );
        assert!(open
            .check(&n("+19005551234"))
            .unwrap_err()
            .contains("premium-rate"));
        assert!(open
            .check(&n("+33899123456"))
            .unwrap_err()
            .contains("premium-rate"));
        assert!(open
            .check(&n("+15551234567"))
            .unwrap_err()
            .contains("not a dialable number"));
        let us_only = DialPolicy::parse_allow_list("+1").unwrap();
        assert!(us_only.check(&n("+12125550123")).is_ok());
        assert!(us_only
            .check(&n("+33142685300"))
            .unwrap_err()
            .contains("+33"));
        assert_eq!(
            DialPolicy::parse_allow_list(" ").unwrap(),
            DialPolicy::default()
        );
        assert!(DialPolicy::parse_allow_list("1,x").is_err());
    }

    #[test]
    fn masks_for_logs() {
        let n = PhoneNumber::parse("+15551234567").unwrap();
        assert_eq!(n.masked(), "+1555•••67");
        assert!(!format!("{n:?}").contains("1234567"));
    }
}
