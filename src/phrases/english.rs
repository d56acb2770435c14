//! English: word for word what the server said before calls had a language.

use super::{CallFacts, Message, Words};
use crate::domain::language::Language;
use crate::domain::spoken;

pub(super) static WORDS: Words = Words {
    apology_technical:
        "Sorry, we are having a technical problem and will call back later. Goodbye.",
    apology_limit: "Sorry, I have to end the call now. Thank you for your time. Goodbye.",
    recording_notice: "This call is recorded.",
    disclosure: |customer| {
        format!("Hello, this is an automated assistant calling on behalf of {customer}.")
    },
    party: |n| n.to_string(),
    voicemail: message,
};

/// The brief's language rule for an English call.
pub(super) const LANGUAGE_RULE: &str = "Use the language the host speaks.";

fn message(m: &Message<'_>) -> String {
    let callback = match m.callback {
        Some(cb) => format!(" You can call back on {cb}."),
        None => String::new(),
    };
    format!(
        "Hello, this is an automated assistant calling on behalf of {customer}, to book a table for {party} at \"{restaurant}\" on {when}.{callback} No booking has been made yet. Goodbye.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
    )
}

/// The instruction the server sends when the beep has sounded, as it always has.
pub(super) fn voicemail_instructions(f: &CallFacts<'_>) -> String {
    let callback = match f.callback {
        Some(cb) => format!(" Give the callback number {cb}, digit by digit."),
        None => String::new(),
    };
    format!(
        "An answering machine took this call and its beep has sounded: no person is listening. Leave one short voicemail message now, in one turn, then stop: say you are an automated assistant calling on behalf of {name} to book a table for {party} at \"{restaurant}\" on {date} at {time}.{callback} Say clearly that no booking has been made yet. End with a short goodbye. Do not ask questions and do not call any tool.",
        name = f.customer,
        party = f.party_size,
        restaurant = f.restaurant,
        date = spoken::slot_date(f.slot, Language::ENGLISH),
        time = spoken::slot_time(f.slot, Language::ENGLISH),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{CallFacts, Phrases};
    use crate::agent::Brief;
    use crate::call::voicemail;
    use crate::domain::reservation::{RequestRules, ReservationRequest};
    use crate::domain::Language;
    use chrono::{TimeZone, Utc};

    /// The English words are checked against the code that speaks them
    /// today, so they cannot drift apart before they are merged.
    #[test]
    fn voicemail_instructions_and_language_rule_match_todays_code() {
        for callback in [Some("+15557654321"), None] {
            let r = ReservationRequest {
                to: "+12125550123".into(),
                restaurant: "Chez Demo".into(),
                party_size: 4,
                date: "2026-11-25".into(),
                time: "19:30".into(),
                name: "Alex Doe".into(),
                callback: callback.map(Into::into),
                ..Default::default()
            }
            .into_reservation(
                &RequestRules {
                    default_timezone: chrono_tz::Tz::UTC,
                    max_party_size: 20,
                    dial_policy: Default::default(),
                },
                Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(),
            )
            .unwrap();
            let callback = r.callback.as_ref().map(|c| c.as_str());
            let facts = CallFacts {
                customer: &r.customer_name,
                restaurant: &r.restaurant_name,
                party_size: r.party_size.get(),
                slot: &r.slot,
                callback,
            };
            let en = Phrases::new(Language::ENGLISH);
            assert_eq!(
                en.voicemail_instructions(&facts),
                voicemail::message_instructions(&r)
            );
            let brief = Brief::new(&r, Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
            assert!(brief
                .as_str()
                .contains(&format!(" {}\n", en.brief_language_rule(&r.slot))));
        }
    }
}
