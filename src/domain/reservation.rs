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

use super::phone::PhoneNumber;
use super::when;

/// Longest restaurant or guest name accepted (characters).
pub const MAX_NAME_CHARS: usize = 100;
/// Longest free-text note accepted (characters); keeps each TwiML parameter
/// well under Twilio's 500-character limit.
pub const MAX_NOTES_CHARS: usize = 300;
/// Largest party accepted unless configured otherwise.
pub const DEFAULT_MAX_PARTY: u32 = 20;

/// Number of guests, 1..=max.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartySize(u32);

impl PartySize {
    /// Accept a party size within `1..=max`.
    pub fn parse(n: i64, max: u32) -> Result<Self, String> {
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

/// How far from the requested time the person accepts another slot, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Flexibility(u32);

impl Flexibility {
    /// A window of `minutes` either side of the requested time.
    pub fn minutes(minutes: u32) -> Self {
        Flexibility(minutes)
    }
    /// Minutes either side of the requested time.
    pub fn get(self) -> u32 {
        self.0
    }
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
    pub restaurant_name: String,
    /// The number the agent calls.
    pub restaurant_phone: PhoneNumber,
    /// Number of guests.
    pub party_size: PartySize,
    /// Requested date and time, resolved.
    pub slot: Slot,
    /// Name the booking goes under (the person the agent speaks for).
    pub customer_name: String,
    /// A number the restaurant may call back, if the person gave one.
    pub callback: Option<PhoneNumber>,
    /// Free-text wishes ("window seat").
    pub notes: Option<String>,
    /// Acceptable distance from the requested time.
    pub flexibility: Flexibility,
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
}

fn check_text(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        if required {
            errors.push(FieldError {
                field: field.into(),
                message: "must not be empty".into(),
            });
        }
        return None;
    }
    if trimmed.chars().any(char::is_control) {
        errors.push(FieldError {
            field: field.into(),
            message: "must not contain control characters".into(),
        });
        return None;
    }
    if trimmed.chars().count() > max {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be at most {max} characters"),
        });
        return None;
    }
    Some(trimmed.to_string())
}

impl ReservationRequest {
    /// Validate every field and resolve the date and time against `now`.
    /// Returns one message per bad field, so a person can fix them all at once.
    pub fn into_reservation(
        self,
        rules: &RequestRules,
        now: DateTime<Utc>,
    ) -> Result<Reservation, Vec<FieldError>> {
        let mut errors = Vec::new();
        let err = |errors: &mut Vec<FieldError>, field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        let phone = PhoneNumber::parse(&self.to)
            .map_err(|e| e.to_string())
            .and_then(|p| rules.dial_policy.check(&p).map(|()| p))
            .map_err(|m| err(&mut errors, "to", m))
            .ok();
        let restaurant = check_text(
            "restaurant",
            &self.restaurant,
            MAX_NAME_CHARS,
            true,
            &mut errors,
        );
        let name = check_text("name", &self.name, MAX_NAME_CHARS, true, &mut errors);
        let notes = self
            .notes
            .as_deref()
            .and_then(|n| check_text("notes", n, MAX_NOTES_CHARS, false, &mut errors));
        let party = PartySize::parse(self.party_size, rules.max_party_size)
            .map_err(|m| err(&mut errors, "party_size", m))
            .ok();
        let callback = match self
            .callback
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(c) => PhoneNumber::parse(c)
                .map_err(|e| err(&mut errors, "callback", e.to_string()))
                .ok(),
            None => None,
        };
        let flexibility = match self
            .flexibility
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(f) => match when::parse_flexibility(f) {
                Some(m) if m <= 12 * 60 => Some(Flexibility::minutes(m)),
                _ => {
                    err(
                        &mut errors,
                        "flexibility",
                        format!("'{f}' is not a duration like 30m or 1h (at most 12h)"),
                    );
                    None
                }
            },
            None => Some(Flexibility::default()),
        };
        let timezone = match self
            .timezone
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(z) => z
                .parse::<Tz>()
                .map_err(|_| {
                    err(
                        &mut errors,
                        "timezone",
                        format!("'{z}' is not an IANA time zone like Europe/Paris"),
                    )
                })
                .ok(),
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
            let date = when::parse_date(&self.date, today)
                .map_err(|e| err(&mut errors, "date", e.to_string()))
                .ok();
            let time = when::parse_time(&self.time)
                .map_err(|e| err(&mut errors, "time", e.to_string()))
                .ok();
            if let (Some(date), Some(time)) = (date, time) {
                let s = Slot {
                    date,
                    time,
                    timezone: tz,
                };
                match s.instant() {
                    Some(at) if at > now => slot = Some(s),
                    Some(_) => err(
                        &mut errors,
                        "date",
                        format!("{} at {} is in the past", date, time.format("%H:%M")),
                    ),
                    None => err(
                        &mut errors,
                        "time",
                        "that time does not exist on that day (clock change)".into(),
                    ),
                }
            }
        }
        match (phone, restaurant, name, party, slot, flexibility) {
            (
                Some(restaurant_phone),
                Some(restaurant_name),
                Some(customer_name),
                Some(party_size),
                Some(slot),
                Some(flexibility),
            ) if errors.is_empty() => Ok(Reservation {
                restaurant_name,
                restaurant_phone,
                party_size,
                slot,
                customer_name,
                callback,
                notes,
                flexibility,
            }),
            _ => Err(errors),
        }
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
                self.restaurant_name.clone(),
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
            (param::CUSTOMER_NAME.to_string(), self.customer_name.clone()),
            (
                param::FLEXIBILITY_MINUTES.to_string(),
                self.flexibility.get().to_string(),
            ),
        ];
        if let Some(cb) = &self.callback {
            p.push((param::CALLBACK.to_string(), cb.as_str().to_string()));
        }
        if let Some(notes) = &self.notes {
            p.push((param::NOTES.to_string(), notes.clone()));
        }
        p
    }

    /// Rebuild the reservation from `start.customParameters` alone.
    /// `timezone` and `flexibility_minutes` are optional (UTC and 0 when absent),
    /// so a stream opened by older TwiML still works.
    pub fn from_parameters(
        params: &HashMap<String, String>,
        max_party: u32,
    ) -> Result<Self, ParameterError> {
        fn get<'a>(
            params: &'a HashMap<String, String>,
            name: &'static str,
        ) -> Result<&'a str, ParameterError> {
            params
                .get(name)
                .map(|s| s.as_str())
                .filter(|s| !s.trim().is_empty())
                .ok_or(ParameterError {
                    name,
                    problem: "missing".into(),
                })
        }
        let bad = |name: &'static str, problem: String| ParameterError { name, problem };
        let restaurant_name = get(params, param::RESTAURANT_NAME)?.to_string();
        let restaurant_phone = PhoneNumber::parse(get(params, param::RESTAURANT_PHONE)?)
            .map_err(|e| bad(param::RESTAURANT_PHONE, e.to_string()))?;
        let party_size = get(params, param::PARTY_SIZE)?
            .parse::<i64>()
            .map_err(|e| bad(param::PARTY_SIZE, e.to_string()))
            .and_then(|n| PartySize::parse(n, max_party).map_err(|m| bad(param::PARTY_SIZE, m)))?;
        let date = NaiveDate::parse_from_str(get(params, param::DATE)?, "%Y-%m-%d")
            .map_err(|e| bad(param::DATE, e.to_string()))?;
        let time = NaiveTime::parse_from_str(get(params, param::TIME)?, "%H:%M")
            .map_err(|e| bad(param::TIME, e.to_string()))?;
        let timezone = match params.get(param::TIMEZONE).filter(|s| !s.is_empty()) {
            Some(z) => z
                .parse::<Tz>()
                .map_err(|e| bad(param::TIMEZONE, e.to_string()))?,
            None => Tz::UTC,
        };
        let customer_name = get(params, param::CUSTOMER_NAME)?.to_string();
        let callback = match params.get(param::CALLBACK).filter(|s| !s.is_empty()) {
            Some(c) => {
                Some(PhoneNumber::parse(c).map_err(|e| bad(param::CALLBACK, e.to_string()))?)
            }
            None => None,
        };
        let notes = params
            .get(param::NOTES)
            .filter(|s| !s.trim().is_empty())
            .cloned();
        let flexibility =
            match params
                .get(param::FLEXIBILITY_MINUTES)
                .filter(|s| !s.is_empty())
            {
                Some(m) => Flexibility::minutes(m.parse().map_err(|_| {
                    bad(param::FLEXIBILITY_MINUTES, format!("'{m}' is not a number"))
                })?),
                None => Flexibility::default(),
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
        ] {
            assert!(fields.contains(&f), "missing error for {f}: {errors:?}");
        }
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
        assert_eq!(r.restaurant_name, "Bob & Sue's \"Grill\" <Downtown>");
        assert_eq!(r.party_size.get(), 4);
        assert_eq!(r.slot.spoken_date(), "Wednesday 25 November");
        assert_eq!(r.customer_name, "Alex Doe");
    }

    #[test]
    fn missing_parameters_are_named() {
        let mut params: HashMap<String, String> = HashMap::new();
        params.insert("restaurant_name".into(), "X".into());
        let e = Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).unwrap_err();
        assert_eq!(e.name, "restaurant_phone");
    }

    #[test]
    fn window_is_clamped_to_the_day() {
        let slot = Slot {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            time: NaiveTime::from_hms_opt(19, 0, 0).unwrap(),
            timezone: Tz::UTC,
        };
        let (a, b) = slot.window(Flexibility::minutes(30));
        assert_eq!(
            (a.format("%H:%M").to_string(), b.format("%H:%M").to_string()),
            ("18:30".into(), "19:30".into())
        );
        let late = Slot {
            time: NaiveTime::from_hms_opt(23, 30, 0).unwrap(),
            ..slot
        };
        assert_eq!(
            late.window(Flexibility::minutes(60))
                .1
                .format("%H:%M")
                .to_string(),
            "23:59"
        );
    }
}
