//! What the restaurant hears from the server itself, in the call's language.
//!
//! Most of a call is the model speaking, steered by its brief (written in
//! English, which the model follows best). But some sentences are the
//! server's own: the apology `<Say>` when the model is unavailable or the
//! server shuts down, the goodbye at a call limit, the voicemail message the
//! model is told to leave, the disclosure it opens with. Those must be said
//! in the restaurant's language, and said the way people say them there.
//!
//! One file per language holds its words ([`english`], [`french`], …), so a
//! reviewer who speaks one language reads one file. English is word for word
//! what the server said before languages existed.

use crate::domain::language::{BaseLanguage, Language};
use crate::domain::reservation::Slot;
use crate::domain::spoken;

mod english;
mod french;
mod german;
mod italian;
mod japanese;
mod portuguese;
mod spanish;

/// The facts a spoken sentence may mention, already validated elsewhere
/// (kept apart from `Reservation` so the words do not depend on how the
/// reservation is stored).
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    /// Name the booking is under: the person the agent speaks for.
    pub customer: &'a str,
    /// The restaurant's name.
    pub restaurant: &'a str,
    /// Number of guests.
    pub party_size: u32,
    /// The requested slot.
    pub slot: &'a Slot,
    /// A number the restaurant may call back (E.164), if the person gave one.
    pub callback: Option<&'a str>,
}

/// The pieces of a message, already said in the language: a language file
/// only puts them in its own order.
struct Message<'a> {
    customer: &'a str,
    restaurant: &'a str,
    /// "4 personnes", "4名".
    party: String,
    /// The slot, e.g. "samedi 28 novembre à 19 h".
    when: String,
    /// The callback sentence with the gap before it, or "" without a number.
    callback: String,
}

/// One language's words (a `static` in each language's file).
struct Words {
    apology_technical: &'static str,
    apology_limit: &'static str,
    recording_notice: &'static str,
    /// What separates two sentences: a space, or nothing in Japanese.
    sentence_gap: &'static str,
    /// The opening disclosure, given the customer's name.
    disclosure: fn(&str) -> String,
    /// "4 personnes": a party of `n`.
    party: fn(u32) -> String,
    /// "You can call back on +1…": the callback sentence, given the number.
    callback: fn(&str) -> String,
    /// "I would like to book a table for 4 on …": the request, given the
    /// party and the slot as said in the language.
    request: fn(&str, &str) -> String,
    /// The voicemail message, said after the beep.
    voicemail: fn(&Message<'_>) -> String,
}

/// "1 personne" / "4 personnes": `n` and the noun in the right number (every
/// shipped language with a plural treats only 1 as singular in a party size).
fn counted(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn words(base: BaseLanguage) -> &'static Words {
    match base {
        BaseLanguage::English => &english::WORDS,
        BaseLanguage::French => &french::WORDS,
        BaseLanguage::Spanish => &spanish::WORDS,
        BaseLanguage::German => &german::WORDS,
        BaseLanguage::Italian => &italian::WORDS,
        BaseLanguage::Portuguese => &portuguese::WORDS,
        BaseLanguage::Japanese => &japanese::WORDS,
    }
}

/// The server's sentences for one call, in that call's language.
#[derive(Clone, Copy)]
pub struct Phrases {
    language: Language,
    words: &'static Words,
}

impl std::fmt::Debug for Phrases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phrases({})", self.language)
    }
}

impl Phrases {
    /// The phrases of `language` (every [`Language`] has them).
    pub fn new(language: Language) -> Phrases {
        Phrases {
            language,
            words: words(language.base()),
        }
    }

    /// The language these phrases are in.
    pub fn language(&self) -> Language {
        self.language
    }

    /// Said (`<Say>`) when the call must end because the model is
    /// unavailable or was lost: we will call back.
    pub fn apology_technical(&self) -> &'static str {
        self.words.apology_technical
    }

    /// Said when a limit (call length, silence) ends the call.
    pub fn apology_limit(&self) -> &'static str {
        self.words.apology_limit
    }

    /// Said when the server shuts down with the call still live. To the
    /// restaurant that is a technical problem, so the words are the same.
    pub fn apology_shutdown(&self) -> &'static str {
        self.words.apology_technical
    }

    /// The sentence the agent opens with: an automated assistant, calling on
    /// behalf of `customer` (and, when `recorded`, that the call is recorded).
    pub fn disclosure(&self, customer: &str, recorded: bool) -> String {
        let mut said = (self.words.disclosure)(customer);
        if recorded {
            said.push_str(self.words.sentence_gap);
            said.push_str(self.words.recording_notice);
        }
        said
    }

    /// The table asked for, said the local way: "Je voudrais réserver une
    /// table pour 4 personnes le samedi 28 novembre à 19 h."
    pub fn request(&self, party_size: u32, slot: &Slot) -> String {
        (self.words.request)(
            &(self.words.party)(party_size),
            &spoken::slot_date_and_time(slot, self.language),
        )
    }

    /// How the agent opens the call in this language: the disclosure, then
    /// the request (the brief gives it to the model as an example, so the
    /// first words the restaurant hears are said the way people say them).
    pub fn opening(&self, customer: &str, recorded: bool, party_size: u32, slot: &Slot) -> String {
        format!(
            "{}{}{}",
            self.disclosure(customer, recorded),
            self.words.sentence_gap,
            self.request(party_size, slot)
        )
    }

    /// The message left on an answering machine: who calls, for whom, the
    /// table wanted, the callback number if any, and that nothing is booked.
    pub fn voicemail_message(&self, facts: &CallFacts<'_>) -> String {
        (self.words.voicemail)(&Message {
            customer: facts.customer,
            restaurant: facts.restaurant,
            party: (self.words.party)(facts.party_size),
            when: spoken::slot_date_and_time(facts.slot, self.language),
            callback: facts
                .callback
                .map(|cb| format!("{}{}", self.words.sentence_gap, (self.words.callback)(cb)))
                .unwrap_or_default(),
        })
    }

    /// The system message that makes the model leave the voicemail message
    /// once the beep has sounded. English is the instruction the server has
    /// always sent; other languages give the model the message itself, in
    /// that language, so what is left on the machine is exactly
    /// [`Phrases::voicemail_message`].
    pub fn voicemail_instructions(&self, facts: &CallFacts<'_>) -> String {
        if self.language.base() == BaseLanguage::English {
            return english::voicemail_instructions(facts);
        }
        format!(
            "An answering machine took this call and its beep has sounded: no person is listening. Leave one short voicemail message now, in {language}, in one turn, then stop. Say this message: \"{message}\" Do not ask questions and do not call any tool.",
            language = self.language.english_name(),
            message = self.voicemail_message(facts),
        )
    }

    /// The brief's rule about which language to speak. English keeps the
    /// rule the brief has always had; any other language is spoken from the
    /// first word, unless the host clearly prefers another, and the slot is
    /// given as people say it there.
    pub fn brief_language_rule(&self, slot: &Slot) -> String {
        if self.language.base() == BaseLanguage::English {
            return english::LANGUAGE_RULE.to_string();
        }
        let language = self.language.english_name();
        format!(
            "Speak {language} from your first word. If the host clearly prefers another language (they answer in it or ask for it), switch to that language for the rest of the call. In {language}, say the date and time the way people say them there: \"{when}\".",
            when = spoken::slot_date_and_time(slot, self.language),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime};

    fn slot() -> Slot {
        Slot {
            date: NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"),
            time: NaiveTime::from_hms_opt(19, 0, 0).expect("time"),
            timezone: chrono_tz::Tz::Europe__Paris,
        }
    }

    fn facts<'a>(slot: &'a Slot, callback: Option<&'static str>) -> CallFacts<'a> {
        CallFacts {
            customer: "Alex Doe",
            restaurant: "Chez Demo",
            party_size: 4,
            slot,
            callback,
        }
    }

    fn phrases(tag: &str) -> Phrases {
        Phrases::new(Language::parse(tag).expect("tag"))
    }

    #[test]
    fn english_is_word_for_word_what_the_server_has_always_said() {
        let en = phrases("en");
        assert_eq!(
            en.apology_technical(),
            "Sorry, we are having a technical problem and will call back later. Goodbye."
        );
        assert_eq!(
            en.apology_limit(),
            "Sorry, I have to end the call now. Thank you for your time. Goodbye."
        );
        assert_eq!(en.apology_shutdown(), en.apology_technical());
    }

    #[test]
    fn the_voicemail_message_in_french() {
        let s = slot();
        let fr = phrases("fr");
        assert_eq!(
            fr.voicemail_message(&facts(&s, Some("+33612345678"))),
            "Bonjour, je suis un assistant automatisé et j'appelle de la part de Alex Doe pour réserver une table pour 4 personnes au restaurant « Chez Demo » le samedi 28 novembre à 19 h. Vous pouvez rappeler au +33612345678. Aucune réservation n'a encore été faite. Merci, au revoir."
        );
        let without = fr.voicemail_message(&facts(&s, None));
        assert!(!without.contains("rappeler"), "{without}");
        let told = fr.voicemail_instructions(&facts(&s, None));
        assert!(told.contains("in French"), "{told}");
        assert!(told.contains(&without), "{told}");
    }

    #[test]
    fn every_language_says_who_for_whom_when_and_that_nothing_is_booked() {
        let s = slot();
        let f = facts(&s, Some("+33612345678"));
        for (tag, party, when, nothing_booked) in [
            (
                "en",
                "table for 4",
                "Saturday 28 November at 7 PM",
                "No booking has been made",
            ),
            (
                "fr",
                "4 personnes",
                "samedi 28 novembre à 19 h",
                "Aucune réservation",
            ),
            (
                "es",
                "4 personas",
                "sábado 28 de noviembre a las 7 de la tarde",
                "ninguna reserva",
            ),
            (
                "de",
                "4 Personen",
                "Samstag, 28. November, um 19 Uhr",
                "noch nichts reserviert",
            ),
            (
                "it",
                "4 persone",
                "sabato 28 novembre alle 19",
                "nessuna prenotazione",
            ),
            (
                "pt-BR",
                "4 pessoas",
                "sábado, 28 de novembro, às 19h",
                "Nenhuma reserva",
            ),
            (
                "ja",
                "4名",
                "11月28日土曜日の19時",
                "まだ予約は完了しておりません",
            ),
        ] {
            let p = phrases(tag);
            let m = p.voicemail_message(&f);
            for want in [
                "Alex Doe",
                "Chez Demo",
                party,
                when,
                nothing_booked,
                "+33612345678",
            ] {
                assert!(m.contains(want), "{tag}: {want:?} missing from {m}");
            }
            let d = p.disclosure("Alex Doe", false);
            assert!(d.contains("Alex Doe"), "{tag}: {d}");
            let recorded = p.disclosure("Alex Doe", true);
            assert!(
                recorded.starts_with(&d) && recorded.len() > d.len() + 5,
                "{tag}: {recorded}"
            );
            for apology in [p.apology_technical(), p.apology_limit()] {
                assert!(!apology.is_empty() && apology.len() < 300, "{tag}");
            }
            assert_ne!(p.apology_technical(), p.apology_limit(), "{tag}");
        }
    }

    #[test]
    fn the_request_is_said_the_local_way() {
        let s = slot();
        for (tag, want) in [
            ("en", "I would like to book a table for 4 on Saturday 28 November at 7 PM."),
            ("fr", "Je voudrais réserver une table pour 4 personnes le samedi 28 novembre à 19 h."),
            ("es", "Quisiera reservar una mesa para 4 personas el sábado 28 de noviembre a las 7 de la tarde."),
            ("de", "Ich möchte am Samstag, 28. November, um 19 Uhr einen Tisch für 4 Personen reservieren."),
            ("it", "Vorrei prenotare un tavolo per 4 persone per sabato 28 novembre alle 19."),
            ("pt-BR", "Gostaria de reservar uma mesa para 4 pessoas, para sábado, 28 de novembro, às 19h."),
            ("ja", "11月28日土曜日の19時に4名で予約をお願いしたいのですが。"),
        ] {
            assert_eq!(phrases(tag).request(4, &s), want, "{tag}");
        }
        assert_eq!(
            phrases("fr").opening("Alex Doe", true, 1, &s),
            "Bonjour, je suis un assistant automatisé et j'appelle de la part de Alex Doe. Cet appel est enregistré. Je voudrais réserver une table pour 1 personne le samedi 28 novembre à 19 h."
        );
        assert!(!phrases("ja")
            .opening("Alex Doe", false, 2, &s)
            .contains("。 "));
    }

    #[test]
    fn japanese_sentences_follow_each_other_without_a_space() {
        let ja = phrases("ja");
        let d = ja.disclosure("Alex Doe", true);
        assert!(
            d.ends_with("アシスタントです。この通話は録音されています。"),
            "{d}"
        );
        let s = slot();
        let m = ja.voicemail_message(&facts(&s, Some("+81312345678")));
        assert!(!m.contains("。 "), "{m}");
        assert!(
            m.contains("お電話いたしました。折り返しのお電話は+81312345678まで"),
            "{m}"
        );
    }

    #[test]
    fn non_english_apologies_are_not_english() {
        let en = phrases("en");
        for tag in ["fr", "es", "de", "it", "pt", "ja"] {
            let p = phrases(tag);
            assert_ne!(p.apology_technical(), en.apology_technical(), "{tag}");
            assert_ne!(p.apology_limit(), en.apology_limit(), "{tag}");
            assert_ne!(p.disclosure("A", true), en.disclosure("A", true), "{tag}");
        }
        assert_eq!(
            phrases("fr").apology_technical(),
            "Désolé, nous rencontrons un problème technique et nous vous rappellerons plus tard. Au revoir."
        );
    }

    #[test]
    fn the_brief_asks_for_the_language_and_allows_a_switch() {
        let s = slot();
        let fr = phrases("fr-FR").brief_language_rule(&s);
        assert!(fr.starts_with("Speak French from your first word."), "{fr}");
        assert!(fr.contains("switch to that language"), "{fr}");
        assert!(fr.contains("\"samedi 28 novembre à 19 h\""), "{fr}");
        let ja = phrases("ja").brief_language_rule(&s);
        assert!(ja.contains("Speak Japanese") && ja.contains("11月28日土曜日の19時"));
        assert_eq!(
            phrases("en-GB").brief_language_rule(&s),
            "Use the language the host speaks."
        );
    }
}
