//! What the person asked for: the reservation, and how it travels with the call.
//!
//! A `Reservation` is built twice in a call's life: from the person's request
//! when the call is placed, and from the Media Stream's `start.customParameters`
//! when the audio arrives (possibly on another server instance). The two must
//! agree exactly, so the conversion both ways lives here, next to the type.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::language::Language;
use super::phone::PhoneNumber;
use super::when;

/// Longest restaurant or guest name accepted (characters).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest free-text note accepted (characters); keeps each TwiML parameter
/// well under Twilio's 500-character limit.
pub const MAX_NOTES_CHARS: usize = 300;
/// Largest party accepted unless configured otherwise.
pub const DEFAULT_MAX_PARTY: u32 = 20;

/// Number of guests: at least one, at most [`PartySize::LARGEST`].
///
/// Deserialising goes through the same check (a stored or received record
/// cannot hold a party of 0); the server's own, possibly lower, limit is
/// applied where a request or a stream is parsed ([`PartySize::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct PartySize(u32);

impl PartySize {
    /// The largest party any server may be configured to accept.
    pub const LARGEST: u32 = 100;

    /// Accept a party size within `1..=max` (`max` is capped at [`Self::LARGEST`]).
    pub fn parse(n: i64, max: u32) -> Result<Self, String> {
        let max = max.min(Self::LARGEST);
        if n < 1 || n > i64::from(max) {
            return Err(format!("party size must be between 1 and {max}"));
        }
        Ok(PartySize(n as u32))
    }
    /// The number of guests.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for PartySize {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, String> {
        PartySize::parse(n, PartySize::LARGEST)
    }
}

impl From<PartySize> for u32 {
    fn from(p: PartySize) -> u32 {
        p.0
    }
}

/// How far from the requested time the person accepts another slot, in
/// minutes either side: at most [`Flexibility::MAX_MINUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "u32", into = "u32")]
pub struct Flexibility(u32);

impl Flexibility {
    /// The widest window accepted: 12 hours either side covers a whole
    /// service; anything wider is not a preference for a time at all.
    pub const MAX_MINUTES: u32 = 12 * 60;
    /// The requested time only.
    pub const EXACT: Flexibility = Flexibility(0);

    /// A window of `minutes` either side of the requested time.
    pub fn minutes(minutes: u32) -> Result<Self, String> {
        if minutes > Self::MAX_MINUTES {
            return Err(format!(
                "must be at most {}h ({} minutes)",
                Self::MAX_MINUTES / 60,
                Self::MAX_MINUTES
            ));
        }
        Ok(Flexibility(minutes))
    }
    /// A window as people write it: `30m`, `1h`, `1h30m`, `45` (minutes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let minutes = when::parse_flexibility(text.trim())
            .ok_or_else(|| format!("'{text}' is not a duration like 30m or 1h"))?;
        Flexibility::minutes(minutes)
    }
    /// Minutes either side of the requested time.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Flexibility {
    type Error = String;
    fn try_from(minutes: u32) -> Result<Self, String> {
        Flexibility::minutes(minutes)
    }
}

impl From<Flexibility> for u32 {
    fn from(f: Flexibility) -> u32 {
        f.0
    }
}

/// Text a person typed that the agent will say and that travels in TwiML:
/// trimmed, without control characters, at most `max` characters.
fn clean_text(value: &str, max: usize) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(trimmed.to_string())
}

/// A restaurant's or a person's name: non-empty, one line, at most
/// [`MAX_NAME_CHARS`] characters. The agent says it aloud and it travels as a
/// `<Parameter>`, so a control character or a novel has no business in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Accept a name (surrounding blanks are dropped).
    pub fn parse(value: &str) -> Result<Self, String> {
        clean_text(value, MAX_NAME_CHARS).map(Name)
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-text wishes ("window seat"): non-empty, no control characters, at
/// most [`MAX_NOTES_CHARS`] characters (a TwiML parameter must stay short).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Notes(String);

impl Notes {
    /// Accept notes (surrounding blanks are dropped).
    pub fn parse(value: &str) -> Result<Self, String> {
        clean_text(value, MAX_NOTES_CHARS).map(Notes)
    }
    /// The notes as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_newtype_conversions {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                $t::parse(&value)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
text_newtype_conversions!(Name);
text_newtype_conversions!(Notes);

/// An optional field as given: absent and blank both mean "not given".
fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|s| !s.is_empty())
}

/// The requested slot: a local date and time in the restaurant's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Local date at the restaurant.
    pub date: NaiveDate,
    /// Local time at the restaurant.
    pub time: NaiveTime,
    /// The restaurant's IANA time zone.
    #[serde(with = "tz_serde")]
    pub timezone: Tz,
}

mod tz_serde {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl Slot {
    /// "Wednesday 25 November" — how the agent says the date.
    pub fn spoken_date(&self) -> String {
        self.date.format("%A %-d %B").to_string()
    }
    /// "7 PM" / "7:30 PM" — how the agent says the time.
    pub fn spoken_time(&self) -> String {
        let (pm, hour) = self.time.hour12();
        let suffix = if pm { "PM" } else { "AM" };
        if self.time.minute() == 0 {
            format!("{hour} {suffix}")
        } else {
            format!("{hour}:{:02} {suffix}", self.time.minute())
        }
    }
    /// The slot as an instant, for "is it in the past?" checks.
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        self.timezone
            .from_local_datetime(&NaiveDateTime::new(self.date, self.time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }
    /// Earliest and latest acceptable times given a flexibility window.
    pub fn window(&self, flexibility: Flexibility) -> (NaiveTime, NaiveTime) {
        let delta = chrono::Duration::minutes(i64::from(flexibility.get()));
        let earliest = if self.time.signed_duration_since(NaiveTime::MIN) < delta {
            NaiveTime::MIN
        } else {
            self.time - delta
        };
        let latest = self.time.overflowing_add_signed(delta);
        let latest = if latest.1 != 0 {
            NaiveTime::from_hms_opt(23, 59, 0).unwrap_or(self.time)
        } else {
            latest.0
        };
        (earliest, latest)
    }
}

/// A reservation the agent is to make: valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The restaurant's name as the person wrote it.
    pub restaurant_name: Name,
    /// The number the agent calls.
    pub restaurant_phone: PhoneNumber,
    /// Number of guests.
    pub party_size: PartySize,
    /// Requested date and time, resolved.
    pub slot: Slot,
    /// Name the booking goes under (the person the agent speaks for).
    pub customer_name: Name,
    /// A number the restaurant may call back, if the person gave one.
    pub callback: Option<PhoneNumber>,
    /// Free-text wishes ("window seat").
    pub notes: Option<Notes>,
    /// Acceptable distance from the requested time.
    pub flexibility: Flexibility,
    /// The language the call is held in: what the restaurant hears (the
    /// person still reads English). Records stored before calls had a
    /// language read as English, the only language they were held in.
    #[serde(default)]
    pub language: Language,
}

/// One problem with one field of a request, for a `422` or exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The request field (`to`, `party_size`, …).
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The JSON body of `POST /api/calls`, as a person (or the CLI) sends it:
/// dates and times still in the forms people type.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ReservationRequest {
    /// Restaurant phone number (international form).
    pub to: String,
    /// Restaurant name.
    pub restaurant: String,
    /// Number of guests.
    pub party_size: i64,
    /// `tomorrow`, `friday`, `2026-12-03`, …
    pub date: String,
    /// `7pm`, `19:30`, …
    pub time: String,
    /// Name for the booking.
    pub name: String,
    /// `30m`, `1h`, … (default: the exact time only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flexibility: Option<String>,
    /// Callback number to give the restaurant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// Free-text wishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// IANA zone of the restaurant (default: the server's zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// BCP 47 tag of the language the restaurant is spoken to in (`fr`,
    /// `es-MX`); default: the server's `RESERVOICE_LANGUAGE`, else the main
    /// language of the number's country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Limits applied while turning a request into a reservation.
#[derive(Debug, Clone)]
pub struct RequestRules {
    /// Zone used when the request names none.
    pub default_timezone: Tz,
    /// Largest party accepted.
    pub max_party_size: u32,
    /// Which numbers may be dialled.
    pub dial_policy: super::phone::DialPolicy,
    /// The language of calls whose request names none (`RESERVOICE_LANGUAGE`);
    /// `None`: the main language of the number's country.
    pub default_language: Option<Language>,
}

impl ReservationRequest {
    /// Validate every field and resolve the date and time against `now`.
    /// Returns one message per bad field, so a person can fix them all at once.
    pub fn into_reservation(
        self,
        rules: &RequestRules,
        now: DateTime<Utc>,
    ) -> Result<Reservation, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let phone = errors.check(
            "to",
            PhoneNumber::parse(&self.to)
                .map_err(|e| e.to_string())
                .and_then(|p| rules.dial_policy.check(&p).map(|()| p)),
        );
        let restaurant = errors.check("restaurant", Name::parse(&self.restaurant));
        let name = errors.check("name", Name::parse(&self.name));
        let notes =
            given(self.notes.as_deref()).and_then(|n| errors.check("notes", Notes::parse(n)));
        let party = errors.check(
            "party_size",
            PartySize::parse(self.party_size, rules.max_party_size),
        );
        let callback = given(self.callback.as_deref()).and_then(|c| {
            errors.check("callback", PhoneNumber::parse(c).map_err(|e| e.to_string()))
        });
        let flexibility = match given(self.flexibility.as_deref()) {
            Some(f) => errors.check("flexibility", Flexibility::parse(f)),
            None => Some(Flexibility::EXACT),
        };
        let timezone = match given(self.timezone.as_deref()) {
            Some(z) => errors.check(
                "timezone",
                z.parse::<Tz>()
                    .map_err(|_| format!("'{z}' is not an IANA time zone like Europe/Paris")),
            ),
            // No zone named: the number's country when it has one zone, else the server's.
            None => Some(
                phone
                    .as_ref()
                    .and_then(PhoneNumber::single_timezone)
                    .unwrap_or(rules.default_timezone),
            ),
        };
        let mut slot = None;
        if let Some(tz) = timezone {
            let today = now.with_timezone(&tz).date_naive();
            let date = errors.check(
                "date",
                when::parse_date(&self.date, today).map_err(|e| e.to_string()),
            );
            let time = errors.check(
                "time",
                when::parse_time(&self.time).map_err(|e| e.to_string()),
            );
            if let (Some(date), Some(time)) = (date, time) {
                let s = Slot {
                    date,
                    time,
                    timezone: tz,
                };
                match s.instant() {
                    Some(at) if at > now => slot = Some(s),
                    Some(_) => errors.push(
                        "date",
                        format!("{} at {} is in the past", date, time.format("%H:%M")),
                    ),
                    None => errors.push(
                        "time",
                        "that time does not exist on that day (clock change)".into(),
                    ),
                }
            }
        }
        // Precedence: the request's tag, else the server's setting, else the
        // number's country ([`Language::for_number`]).
        let language = match given(self.language.as_deref()) {
            Some(tag) => errors.check("language", Language::parse(tag).map_err(|e| e.to_string())),
            None => rules
                .default_language
                .or_else(|| phone.as_ref().map(Language::for_number)),
        };
        match (phone, restaurant, name, party, slot, flexibility, language) {
            (
                Some(restaurant_phone),
                Some(restaurant_name),
                Some(customer_name),
                Some(party_size),
                Some(slot),
                Some(flexibility),
                Some(language),
            ) if errors.0.is_empty() => Ok(Reservation {
                restaurant_name,
                restaurant_phone,
                party_size,
                slot,
                customer_name,
                callback,
                notes,
                flexibility,
                language,
            }),
            _ => Err(errors.0),
        }
    }
}

/// The problems found so far in one request, one per field.
#[derive(Default)]
struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Note a problem with `field`.
    fn push(&mut self, field: &str, message: String) {
        self.0.push(FieldError {
            field: field.into(),
            message,
        });
    }
    /// The value if `result` holds one, else note its problem under `field`.
    fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.push(field, message)).ok()
    }
}

/// Names of the `<Parameter>`s that carry a reservation through Twilio.
pub mod param {
    /// Restaurant name.
    pub const RESTAURANT_NAME: &str = "restaurant_name";
    /// Restaurant phone (E.164).
    pub const RESTAURANT_PHONE: &str = "restaurant_phone";
    /// Party size (decimal).
    pub const PARTY_SIZE: &str = "party_size";
    /// Local date, `YYYY-MM-DD`.
    pub const DATE: &str = "date";
    /// Local time, `HH:MM`.
    pub const TIME: &str = "time";
    /// IANA zone.
    pub const TIMEZONE: &str = "timezone";
    /// Name for the booking.
    pub const CUSTOMER_NAME: &str = "customer_name";
    /// Callback number (E.164), optional.
    pub const CALLBACK: &str = "callback";
    /// Notes, optional.
    pub const NOTES: &str = "notes";
    /// Flexibility in minutes.
    pub const FLEXIBILITY_MINUTES: &str = "flexibility_minutes";
    /// The call's language as a BCP 47 tag (`fr-FR`), optional.
    pub const LANGUAGE: &str = "language";
    /// Not part of the reservation but beside it: the per-call secret the
    /// stream must present, checked against the call store.
    pub const CALL_TOKEN: &str = "call_token";
    /// Beside them on a stream that continues a call after Twilio pressed
    /// keys ([`crate::domain::StreamContinuation`]): which stream of the call
    /// it is (2, 3, …).
    pub const STREAM_NUMBER: &str = "stream_number";
    /// The call's clock (ms) when the call was updated.
    pub const CALL_CLOCK_MS: &str = "call_clock_ms";
    /// When the call was updated (RFC 3339, UTC).
    pub const UPDATED_AT: &str = "updated_at";
    /// Every continuation parameter: a stream carries all of them or none.
    pub const CONTINUATION: [&str; 3] = [STREAM_NUMBER, CALL_CLOCK_MS, UPDATED_AT];
}

/// Why custom parameters could not be turned back into a reservation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream parameter '{name}': {problem}")]
pub struct ParameterError {
    /// The parameter at fault.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Reservation {
    /// The reservation as `<Parameter>` name/value pairs (order is stable).
    pub fn to_parameters(&self) -> Vec<(String, String)> {
        let mut p = vec![
            (
                param::RESTAURANT_NAME.to_string(),
                self.restaurant_name.to_string(),
            ),
            (
                param::RESTAURANT_PHONE.to_string(),
                self.restaurant_phone.as_str().to_string(),
            ),
            (
                param::PARTY_SIZE.to_string(),
                self.party_size.get().to_string(),
            ),
            (
                param::DATE.to_string(),
                self.slot.date.format("%Y-%m-%d").to_string(),
            ),
            (
                param::TIME.to_string(),
                self.slot.time.format("%H:%M").to_string(),
            ),
            (
                param::TIMEZONE.to_string(),
                self.slot.timezone.name().to_string(),
            ),
            (
                param::CUSTOMER_NAME.to_string(),
                self.customer_name.to_string(),
            ),
            (
                param::FLEXIBILITY_MINUTES.to_string(),
                self.flexibility.get().to_string(),
            ),
        ];
        if let Some(cb) = &self.callback {
            p.push((param::CALLBACK.to_string(), cb.as_str().to_string()));
        }
        if let Some(notes) = &self.notes {
            p.push((param::NOTES.to_string(), notes.to_string()));
        }
        p.push((param::LANGUAGE.to_string(), self.language.to_string()));
        p
    }

    /// Rebuild the reservation from `start.customParameters` alone, through
    /// the same constructors as the API's request ([`Name`], [`Notes`],
    /// [`PartySize`], [`Flexibility`], [`PhoneNumber`]): whatever the API
    /// refuses, a stream is refused too (a stream may come from TwiML we did not
    /// write). `timezone`, `flexibility_minutes` and `language` are optional
    /// (UTC, 0 and the number's language, as for a request that names none),
    /// so a stream opened by older TwiML still works.
    pub fn from_parameters(
        params: &HashMap<String, String>,
        max_party: u32,
    ) -> Result<Self, ParameterError> {
        let optional = |name: &'static str| given(params.get(name).map(String::as_str));
        let required = |name: &'static str| {
            optional(name).ok_or(ParameterError {
                name,
                problem: "missing".into(),
            })
        };
        let bad = |name: &'static str| move |problem: String| ParameterError { name, problem };
        // The same constructors as `ReservationRequest::into_reservation`: a
        // value the API would refuse is refused here too.
        let restaurant_name =
            Name::parse(required(param::RESTAURANT_NAME)?).map_err(bad(param::RESTAURANT_NAME))?;
        let restaurant_phone = PhoneNumber::parse(required(param::RESTAURANT_PHONE)?)
            .map_err(|e| bad(param::RESTAURANT_PHONE)(e.to_string()))?;
        let party_size = required(param::PARTY_SIZE)?
            .parse::<i64>()
            .map_err(|e| e.to_string())
            .and_then(|n| PartySize::parse(n, max_party))
            .map_err(bad(param::PARTY_SIZE))?;
        let date = NaiveDate::parse_from_str(required(param::DATE)?, "%Y-%m-%d")
            .map_err(|e| bad(param::DATE)(e.to_string()))?;
        let time = NaiveTime::parse_from_str(required(param::TIME)?, "%H:%M")
            .map_err(|e| bad(param::TIME)(e.to_string()))?;
        let timezone = match optional(param::TIMEZONE) {
            Some(z) => z
                .parse::<Tz>()
                .map_err(|e| bad(param::TIMEZONE)(e.to_string()))?,
            None => Tz::UTC,
        };
        let customer_name =
            Name::parse(required(param::CUSTOMER_NAME)?).map_err(bad(param::CUSTOMER_NAME))?;
        let callback = optional(param::CALLBACK)
            .map(|c| PhoneNumber::parse(c).map_err(|e| bad(param::CALLBACK)(e.to_string())))
            .transpose()?;
        let notes = optional(param::NOTES)
            .map(Notes::parse)
            .transpose()
            .map_err(bad(param::NOTES))?;
        let flexibility = match optional(param::FLEXIBILITY_MINUTES) {
            Some(m) => m
                .parse::<u32>()
                .map_err(|_| format!("'{m}' is not a number of minutes"))
                .and_then(Flexibility::minutes)
                .map_err(bad(param::FLEXIBILITY_MINUTES))?,
            None => Flexibility::EXACT,
        };
        let language = match optional(param::LANGUAGE) {
            Some(tag) => Language::parse(tag).map_err(|e| bad(param::LANGUAGE)(e.to_string()))?,
            None => Language::for_number(&restaurant_phone),
        };
        Ok(Reservation {
            restaurant_name,
            restaurant_phone,
            party_size,
            slot: Slot {
                date,
                time,
                timezone,
            },
            customer_name,
            callback,
            notes,
            flexibility,
            language,
        })
    }

    /// One line for logs and the CLI: "table for 4 at Chez Demo, Wednesday 25 November 19:00, under Alex Doe".
    pub fn summary(&self) -> String {
        format!(
            "table for {} at {}, {} {}, under {}",
            self.party_size.get(),
            self.restaurant_name,
            self.slot.spoken_date(),
            self.slot.time.format("%H:%M"),
            self.customer_name
        )
    }

    /// The weekday of the requested date (for the brief: "Wednesday").
    pub fn weekday(&self) -> chrono::Weekday {
        self.slot.date.weekday()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RequestRules {
        RequestRules {
            default_timezone: Tz::Europe__Paris,
            max_party_size: DEFAULT_MAX_PARTY,
            dial_policy: Default::default(),
            default_language: None,
        }
    }
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }
    fn request() -> ReservationRequest {
        ReservationRequest {
            // Toll-free: no one zone, so the server's default applies.
            to: "+18005550123".into(),
            restaurant: "Bob & Sue's \"Grill\" <Downtown>".into(),
            party_size: 4,
            date: "tomorrow".into(),
            time: "7pm".into(),
            name: "Alex Doe".into(),
            flexibility: Some("30m".into()),
            callback: Some("+15557654321".into()),
            notes: Some("Window seat if possible; one guest uses a wheelchair.".into()),
            timezone: None,
            language: None,
        }
    }

    #[test]
    fn request_resolves_to_an_absolute_slot() {
        let r = request().into_reservation(&rules(), now()).unwrap();
        assert_eq!(r.slot.date, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        assert_eq!(r.slot.time, NaiveTime::from_hms_opt(19, 0, 0).unwrap());
        assert_eq!(r.slot.timezone, Tz::Europe__Paris);
        assert_eq!(r.slot.spoken_date(), "Wednesday 25 November");
        assert_eq!(r.slot.spoken_time(), "7 PM");
        assert_eq!(r.flexibility.get(), 30);
    }

    #[test]
    fn the_numbers_country_sets_the_zone_when_it_has_one() {
        // A Tokyo number, server default Paris: "tomorrow 7pm" is 7pm in Tokyo,
        // and "tomorrow" is counted from Tokyo's date.
        let mut req = request();
        req.to = "+81 3-1234-5678".into();
        let r = req.into_reservation(&rules(), now()).unwrap();
        assert_eq!(r.slot.timezone, Tz::Asia__Tokyo);
        assert_eq!(r.slot.date, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        let mut late = request();
        late.to = "+81 3-1234-5678".into();
        let r = late
            .into_reservation(
                &rules(),
                Utc.with_ymd_and_hms(2026, 11, 24, 16, 0, 0).unwrap(),
            )
            .unwrap();
        assert_eq!(
            r.slot.date,
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            "01:00 on the 25th in Tokyo"
        );
        // A UK number: London; a San Francisco one: Los Angeles. A US
        // toll-free number (several zones): the server default.
        let mut sf = request();
        sf.to = "+1 415 555 0123".into();
        assert_eq!(
            sf.into_reservation(&rules(), now()).unwrap().slot.timezone,
            Tz::America__Los_Angeles
        );
        let mut uk = request();
        uk.to = "+44 20 7946 0018".into();
        assert_eq!(
            uk.into_reservation(&rules(), now()).unwrap().slot.timezone,
            Tz::Europe__London
        );
        assert_eq!(
            request()
                .into_reservation(&rules(), now())
                .unwrap()
                .slot
                .timezone,
            Tz::Europe__Paris
        );
        // A named zone always wins.
        let mut named = request();
        named.to = "+81 3-1234-5678".into();
        named.timezone = Some("America/Chicago".into());
        assert_eq!(
            named
                .into_reservation(&rules(), now())
                .unwrap()
                .slot
                .timezone,
            Tz::America__Chicago
        );
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let req = ReservationRequest {
            to: "12".into(),
            restaurant: " ".into(),
            party_size: 0,
            date: "2020-01-01".into(),
            time: "7pm".into(),
            name: "x".repeat(101),
            flexibility: Some("soon".into()),
            callback: Some("nope".into()),
            notes: Some("bad\u{7}bell".into()),
            timezone: None,
            language: Some("klingon".into()),
        };
        let errors = req.into_reservation(&rules(), now()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "to",
            "restaurant",
            "party_size",
            "date",
            "name",
            "flexibility",
            "callback",
            "notes",
            "language",
        ] {
            assert!(fields.contains(&f), "missing error for {f}: {errors:?}");
        }
    }

    #[test]
    fn the_language_is_the_requests_else_the_servers_else_the_numbers() {
        let to = |number: &str, tag: Option<&str>| ReservationRequest {
            to: number.into(),
            language: tag.map(Into::into),
            ..request()
        };
        let lang = |req: ReservationRequest, rules: &RequestRules| {
            req.into_reservation(rules, now())
                .map(|r| r.language.to_string())
        };
        let plain = rules();
        for (number, want) in [
            ("+33 1 42 68 53 00", "fr-FR"),
            ("+49 30 1234567", "de-DE"),
            ("+39 06 1234 5678", "it-IT"),
            ("+34 912 345 678", "es-ES"),
            ("+81 3-1234-5678", "ja-JP"),
            ("+55 11 2345 6789", "pt-BR"),
            ("+1 212 555 0123", "en-US"),
            ("+41 22 123 45 67", "de-CH"),
            ("+46 8 123 456 78", "en"),
        ] {
            assert_eq!(lang(to(number, None), &plain).unwrap(), want, "{number}");
            assert_eq!(
                lang(to(number, Some(" ")), &plain).unwrap(),
                want,
                "{number}"
            );
        }
        // The server's setting beats the number; the request beats both.
        let french_server = RequestRules {
            default_language: Some(Language::parse("fr").unwrap()),
            ..rules()
        };
        assert_eq!(
            lang(to("+1 212 555 0123", None), &french_server).unwrap(),
            "fr"
        );
        assert_eq!(
            lang(to("+49 30 1234567", None), &french_server).unwrap(),
            "fr"
        );
        assert_eq!(
            lang(to("+49 30 1234567", Some("es-MX")), &french_server).unwrap(),
            "es-MX"
        );
        assert_eq!(
            lang(to("+33 1 42 68 53 00", Some("en")), &plain).unwrap(),
            "en"
        );
        // A bad tag is the language field's error, listing what is supported.
        let errors = lang(to("+33 1 42 68 53 00", Some("tlh")), &plain).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "language");
        assert_eq!(
            errors[0].message,
            "'tlh' is not a supported language; supported: en (English), fr (French), es (Spanish), de (German), it (Italian), pt (Portuguese), ja (Japanese)"
        );
    }

    #[test]
    fn the_language_travels_in_the_parameters() {
        let mut req = request();
        req.to = "+33 1 42 68 53 00".into();
        req.language = Some("fr-CA".into());
        let r = req.into_reservation(&rules(), now()).unwrap();
        let mut params: HashMap<String, String> = r.to_parameters().into_iter().collect();
        assert_eq!(params["language"], "fr-CA");
        assert_eq!(
            Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).unwrap(),
            r
        );
        // TwiML written before calls had a language: the number's.
        params.remove("language");
        assert_eq!(
            Reservation::from_parameters(&params, DEFAULT_MAX_PARTY)
                .unwrap()
                .language
                .to_string(),
            "fr-FR"
        );
        params.insert("language".into(), "xx-invalid-".into());
        let e = Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).unwrap_err();
        assert_eq!(e.name, "language");
        // A record stored before calls had a language reads as English.
        let mut v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["language"], "fr-CA");
        v.as_object_mut().unwrap().remove("language");
        assert_eq!(
            serde_json::from_value::<Reservation>(v).unwrap().language,
            Language::ENGLISH
        );
    }

    #[test]
    fn unknown_timezone_and_past_time_are_refused() {
        let mut req = request();
        req.timezone = Some("Mars/Olympus".into());
        let errors = req.into_reservation(&rules(), now()).unwrap_err();
        assert_eq!(errors[0].field, "timezone");
        let mut req = request();
        req.date = "today".into();
        req.time = "9am".into();
        let errors = req.into_reservation(&rules(), now()).unwrap_err();
        assert!(errors[0].message.contains("past"), "{errors:?}");
    }

    #[test]
    fn parameters_round_trip() {
        let r = request().into_reservation(&rules(), now()).unwrap();
        let params: HashMap<String, String> = r.to_parameters().into_iter().collect();
        assert_eq!(
            Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).unwrap(),
            r
        );
        for (name, value) in r.to_parameters() {
            assert!(
                name.len() + value.len() < 500,
                "{name} too long for a TwiML parameter"
            );
        }
    }

    #[test]
    fn fixture_start_parameters_build_a_reservation() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protocol/twilio_start.json"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let params: HashMap<String, String> =
            serde_json::from_value(v["start"]["customParameters"].clone()).unwrap();
        let r = Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).unwrap();
        assert_eq!(
            r.restaurant_name.as_str(),
            "Bob & Sue's \"Grill\" <Downtown>"
        );
        assert_eq!(r.party_size.get(), 4);
        assert_eq!(r.slot.spoken_date(), "Wednesday 25 November");
        assert_eq!(r.customer_name.as_str(), "Alex Doe");
    }

    #[test]
    fn missing_parameters_are_named() {
        let mut params: HashMap<String, String> = HashMap::new();
        params.insert("restaurant_name".into(), "X".into());
        let e = Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).unwrap_err();
        assert_eq!(e.name, "restaurant_phone");
    }

    #[test]
    fn deserialising_goes_through_the_constructors() {
        use serde_json::from_str;
        assert_eq!(from_str::<PartySize>("4").unwrap().get(), 4);
        assert_eq!(
            from_str::<PartySize>(&PartySize::LARGEST.to_string())
                .unwrap()
                .get(),
            PartySize::LARGEST
        );
        for bad in ["0", "-3", "101", "4294967300", "\"4\""] {
            assert!(from_str::<PartySize>(bad).is_err(), "party size {bad}");
        }
        assert_eq!(from_str::<Flexibility>("720").unwrap().get(), 720);
        assert!(from_str::<Flexibility>("721").is_err());
        assert!(from_str::<Flexibility>("-1").is_err());
        assert_eq!(
            from_str::<Name>("\"  Chez Demo \"").unwrap().as_str(),
            "Chez Demo"
        );
        for bad in ["\"\"", "\"   \"", "\"bell\\u0007\"", "\"two\\nlines\""] {
            assert!(from_str::<Name>(bad).is_err(), "name {bad}");
        }
        assert!(from_str::<Name>(&format!("\"{}\"", "x".repeat(MAX_NAME_CHARS + 1))).is_err());
        assert!(from_str::<Notes>(&format!("\"{}\"", "x".repeat(MAX_NOTES_CHARS))).is_ok());
        assert!(from_str::<Notes>(&format!("\"{}\"", "x".repeat(MAX_NOTES_CHARS + 1))).is_err());
        // Serialised as plain values: the stored records and the API keep their shape.
        let r = request().into_reservation(&rules(), now()).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["party_size"], 4);
        assert_eq!(v["flexibility"], 30);
        assert_eq!(v["customer_name"], "Alex Doe");
        assert_eq!(serde_json::from_value::<Reservation>(v.clone()).unwrap(), r);
        let mut tampered = v;
        tampered["party_size"] = 0.into();
        assert!(serde_json::from_value::<Reservation>(tampered).is_err());
    }

    #[test]
    fn window_is_clamped_to_the_day() {
        let slot = Slot {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            time: NaiveTime::from_hms_opt(19, 0, 0).unwrap(),
            timezone: Tz::UTC,
        };
        let (a, b) = slot.window(Flexibility::minutes(30).unwrap());
        assert_eq!(
            (a.format("%H:%M").to_string(), b.format("%H:%M").to_string()),
            ("18:30".into(), "19:30".into())
        );
        let late = Slot {
            time: NaiveTime::from_hms_opt(23, 30, 0).unwrap(),
            ..slot
        };
        assert_eq!(
            late.window(Flexibility::minutes(60).unwrap())
                .1
                .format("%H:%M")
                .to_string(),
            "23:59"
        );
    }
}
