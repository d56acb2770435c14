//! The agent's instructions for one call, built from the reservation alone.
//!
//! The brief is written in English, the language the model follows best,
//! whatever language the call is held in; it tells the model which language
//! to speak ([`Phrases::brief_language_rule`]) and, for a call in another
//! language than English, how the opening and the slot are said there.

use chrono::{DateTime, Utc};

use crate::config::VoicemailPolicy;
use crate::domain::language::BaseLanguage;
use crate::domain::{spoken, Reservation};
use crate::phrases::Phrases;

/// The system instructions the model is given for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief(String);

/// Server settings that change what the agent must say or do, so the brief
/// and the server's behaviour never disagree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BriefOptions {
    /// The call is recorded: the disclosure must say so.
    pub recording: bool,
    /// What to do on reaching an answering machine.
    pub voicemail: VoicemailPolicy,
}

impl Brief {
    /// Build the brief with default options (not recorded, leave a message).
    /// `now` lets the agent know what "today" is at the restaurant, so it can
    /// answer "which Wednesday?" correctly.
    pub fn new(r: &Reservation, now: DateTime<Utc>) -> Brief {
        Brief::with_options(r, now, BriefOptions::default())
    }

    /// Build the brief for a call placed under `options`.
    pub fn with_options(r: &Reservation, now: DateTime<Utc>, options: BriefOptions) -> Brief {
        let slot = &r.slot;
        let language = r.language;
        let phrases = Phrases::new(language);
        // The slot's time and date as the agent says them in the call's
        // language (English: "7 PM", "Wednesday 25 November", as always).
        let said_time = spoken::slot_time(slot, language);
        let said_date = spoken::slot_date(slot, language);
        let today = now.with_timezone(&slot.timezone).date_naive();
        let date_long = slot.date.format("%A %-d %B %Y").to_string();
        let time_24 = slot.time.format("%H:%M").to_string();
        let party = r.party_size.get();
        let flex = r.flexibility.get();
        let window = if flex == 0 {
            format!(
                "Only {time} is acceptable. If it is not available, do not book another time: ask which times they could offer, decline politely, and report those times as alternatives.",
                time = said_time
            )
        } else {
            let (earliest, latest) = slot.window(r.flexibility);
            format!(
                "If {time} is not available, ask for the closest time on the same day between {a} and {b} and accept it (that is the person's window, {flex} minutes either side). If only times outside that window are offered, decline politely and report them as alternatives.",
                time = said_time,
                a = earliest.format("%H:%M"),
                b = latest.format("%H:%M"),
            )
        };
        let callback = match &r.callback {
            Some(cb) => format!("The callback number for {} is {} (read it digit by digit if asked).", r.customer_name, cb.as_str()),
            None => "You have no callback number; if asked for a phone number, say the person will call back if needed.".to_string(),
        };
        let notes = match &r.notes {
            Some(n) => format!(
                "Special requests from {}: {}. Mention them once the booking is agreed.",
                r.customer_name, n
            ),
            None => "There are no special requests.".to_string(),
        };
        let recorded = if options.recording {
            ", and that the call is recorded"
        } else {
            ""
        };
        // English keeps the brief it always had; another language gets the
        // opening as people say it there (disclosure, request, slot).
        let opening = if language.base() == BaseLanguage::English {
            String::new()
        } else {
            format!(
                " In {}, open like this: \"{}\"",
                language.english_name(),
                phrases.opening(
                    r.customer_name.as_str(),
                    options.recording,
                    r.party_size.get(),
                    slot
                )
            )
        };
        let language_rule = phrases.brief_language_rule(slot);
        let voicemail = match options.voicemail {
            VoicemailPolicy::Leave => "If an answering machine or voicemail greeting answers (a recording asking you to leave a message after the tone), wait for the beep, call finish_call with status voicemail, and then leave one short message as your goodbye: who you are and for whom you call, the table you wanted (party size, day, time), the callback number if you have one, and that no booking has been made.",
            VoicemailPolicy::Hangup => "If an answering machine or voicemail greeting answers (a recording asking you to leave a message after the tone), do not leave a message: call finish_call with status voicemail and say nothing more.",
        };
        let text = format!(
            "You are an automated assistant making a phone call on behalf of {name}. You are calling the restaurant \"{restaurant}\" to book a table for {party} on {date_long} at {spoken_time} ({time_24}). Today at the restaurant is {today}.\n\
\n\
How to behave:\n\
- This is an outbound phone call: the restaurant answers and speaks first. Wait for their greeting; if you hear nothing, greet them yourself.\n\
- In your first sentence, say plainly that you are an automated assistant calling on behalf of {name}{recorded}.{opening}\n\
- Speak naturally and briefly: one or two short sentences per turn. {language_rule}\n\
- Say the date as a day and date (\"{spoken_date}\"), never as \"tomorrow\".\n\
- {window}\n\
- The booking is under the name {name}. {callback} {notes}\n\
- Never invent details you were not given (phone numbers, email addresses, card numbers, allergies, occasions). If asked for something you do not know, say you do not have it.\n\
- If a phone menu answers (\"for reservations, press 2\"), listen to all the options first, then press the key for reservations, or else the one for speaking to a person or the host, with the send_dtmf tool. After pressing, say nothing and wait for whoever answers next.\n\
- If you are put on hold or hear music or a recorded announcement, stay silent and wait: never talk over hold music. Speak again only when a person speaks to you.\n\
- {voicemail}\n\
- When the outcome is clear, repeat the booking back once (day, time, party size, name) if a table was booked, then call finish_call with the outcome, and then say a short goodbye. Do not keep talking after the goodbye; the call ends when your goodbye has played.\n\
- If the restaurant does not take reservations, or nothing is available, thank them, call finish_call with that status, and say goodbye.",
            name = r.customer_name,
            restaurant = r.restaurant_name,
            spoken_time = slot.spoken_time(),
            spoken_date = said_date,
            today = today.format("%A %-d %B %Y"),
        );
        Brief(text)
    }

    /// The instructions text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{RequestRules, ReservationRequest};
    use chrono::TimeZone;

    fn reservation(flex: Option<&str>, callback: Option<&str>) -> Reservation {
        ReservationRequest {
            to: "+12125550123".into(),
            restaurant: "Chez Demo".into(),
            party_size: 4,
            date: "tomorrow".into(),
            time: "7pm".into(),
            name: "Alex Doe".into(),
            flexibility: flex.map(Into::into),
            callback: callback.map(Into::into),
            notes: Some("window seat".into()),
            timezone: Some("America/New_York".into()),
            language: None,
        }
        .into_reservation(
            &RequestRules {
                default_timezone: chrono_tz::Tz::UTC,
                max_party_size: 20,
                dial_policy: Default::default(),
                default_language: None,
            },
            now(),
        )
        .unwrap()
    }
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 15, 0, 0).unwrap()
    }

    #[test]
    fn brief_states_the_resolved_slot_and_the_disclosure() {
        let b = Brief::new(&reservation(Some("30m"), Some("+15557654321")), now());
        let t = b.as_str();
        assert!(
            t.contains("Wednesday 25 November 2026 at 7 PM (19:00)"),
            "{t}"
        );
        assert!(t.contains("automated assistant calling on behalf of Alex Doe"));
        assert!(t.contains("between 18:30 and 19:30"));
        assert!(t.contains("+15557654321"));
        assert!(t.contains("window seat"));
        assert!(t.contains("Today at the restaurant is Tuesday 24 November 2026"));
        assert!(!t.contains("tomorrow\n"));
    }

    #[test]
    fn options_change_the_disclosure_and_the_voicemail_rule() {
        let r = reservation(None, None);
        let plain = Brief::new(&r, now()).as_str().to_string();
        assert!(!plain.contains("recorded,"));
        assert!(!plain.contains("call is recorded"));
        assert!(plain.contains("wait for the beep"));
        assert!(plain.contains("never talk over hold music"));
        assert!(plain.contains("press the key for reservations"));
        let t = Brief::with_options(
            &r,
            now(),
            BriefOptions {
                recording: true,
                voicemail: VoicemailPolicy::Hangup,
            },
        )
        .as_str()
        .to_string();
        assert!(t.contains("calling on behalf of Alex Doe, and that the call is recorded"));
        assert!(t.contains("do not leave a message"));
        assert!(!t.contains("wait for the beep"));
    }

    #[test]
    fn a_call_to_paris_is_briefed_to_speak_french_the_french_way() {
        let mut r = reservation(Some("30m"), None);
        r.language = crate::domain::Language::parse("fr-FR").unwrap();
        let t = Brief::with_options(
            &r,
            now(),
            BriefOptions {
                recording: true,
                voicemail: VoicemailPolicy::Leave,
            },
        )
        .as_str()
        .to_string();
        assert!(t.contains("Speak French from your first word."), "{t}");
        assert!(
            t.contains("switch to that language for the rest of the call"),
            "{t}"
        );
        assert!(t.contains("\"mercredi 25 novembre à 19 h\""), "{t}");
        assert!(
            t.contains("Say the date as a day and date (\"mercredi 25 novembre\")"),
            "{t}"
        );
        assert!(t.contains("If 19 h is not available"), "{t}");
        assert!(
            t.contains("In French, open like this: \"Bonjour, je suis un assistant automatisé et j'appelle de la part de Alex Doe. Cet appel est enregistré. Je voudrais réserver une table pour 4 personnes le mercredi 25 novembre à 19 h.\"\n"),
            "{t}"
        );
        assert!(!t.contains("Use the language the host speaks."), "{t}");
        // An English call's brief is the one it always was.
        let en = Brief::new(&reservation(Some("30m"), None), now());
        assert!(en.as_str().contains(" Use the language the host speaks.\n"));
        assert!(!en.as_str().contains("open like this"));
    }

    #[test]
    fn no_flexibility_and_no_callback_are_explicit() {
        let t = Brief::new(&reservation(None, None), now())
            .as_str()
            .to_string();
        assert!(t.contains("Only 7 PM is acceptable"));
        assert!(t.contains("You have no callback number"));
    }
}
