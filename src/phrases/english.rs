//! English: word for word what the server said before calls had a language.

use super::{CallFacts, Message, Words};
use crate::domain::language::Language;
use crate::domain::spoken;

pub(super) static WORDS: Words = Words {
    apology_technical:
        "Sorry, we are having a technical problem and will call back later. Goodbye.",
    apology_limit: "Sorry, I have to end the call now. Thank you for your time. Goodbye.",
    sentence_gap: " ",
    recording_notice: "This call is recorded.",
    disclosure: |customer| {
        format!("Hello, this is an automated assistant calling on behalf of {customer}.")
    },
    party: |n| n.to_string(),
    callback: |cb| format!("You can call back on {cb}."),
    request: |party, when| format!("I would like to book a table for {party} on {when}."),
    voicemail: message,
};

/// The brief's language rule for an English call.
pub(super) const LANGUAGE_RULE: &str = "Use the language the host speaks.";

fn message(m: &Message<'_>) -> String {
    format!(
        "Hello, this is an automated assistant calling on behalf of {customer}, to book a table for {party} at \"{restaurant}\" on {when}.{callback} No booking has been made yet. Goodbye.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
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
    use std::collections::HashMap;

    use super::super::{CallFacts, Phrases};
    use crate::agent::Brief;
    use crate::domain::reservation::{Reservation, DEFAULT_MAX_PARTY};
    use crate::domain::Language;
    use chrono::{TimeZone, Utc};

    /// The English words are checked against the code that speaks them
    /// today, so they cannot drift apart before they are merged.
    #[test]
    fn voicemail_instructions_and_language_rule_match_todays_code() {
        let text = include_str!("../../tests/fixtures/protocol/twilio_start.json");
        let start: serde_json::Value = serde_json::from_str(text).expect("fixture");
        let mut params: HashMap<String, String> =
            serde_json::from_value(start["start"]["customParameters"].clone()).expect("params");
        for callback in [None, Some("+15557654321")] {
            if let Some(cb) = callback {
                params.insert("callback".into(), cb.into());
            }
            let r = Reservation::from_parameters(&params, DEFAULT_MAX_PARTY).expect("reservation");
            assert_eq!(r.callback.as_ref().map(|c| c.as_str()), callback);
            let facts = CallFacts {
                customer: r.customer_name.as_str(),
                restaurant: r.restaurant_name.as_str(),
                party_size: r.party_size.get(),
                slot: &r.slot,
                callback,
            };
            let en = Phrases::new(Language::ENGLISH);
            let told = en.voicemail_instructions(&facts);
            assert!(told.starts_with("An answering machine took this call and its beep has sounded: no person is listening."), "{told}");
            assert!(told.contains("no booking has been made yet"), "{told}");
            assert_eq!(
                told.contains(" Give the callback number "),
                callback.is_some(),
                "{told}"
            );
            let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
            let brief = Brief::new(&r, now);
            assert!(brief
                .as_str()
                .contains(&format!(" {}\n", en.brief_language_rule(&r.slot))));
        }
    }
}
