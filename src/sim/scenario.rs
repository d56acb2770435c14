//! The script a simulated call follows: the restaurant host's lines (clips and
//! when to say them) and the stand-in agent's responses, one per model response.

use serde_json::json;

/// The facts of the reservation as the stand-in "agent" would speak them (kept
/// free of product types on purpose, so the simulators do not share the
/// product's bugs).
#[derive(Clone, Debug)]
pub struct Booking {
    /// Restaurant name, as the agent would say it.
    pub restaurant: String,
    /// Number of guests.
    pub party_size: u32,
    /// Requested date, `YYYY-MM-DD`.
    pub date: String,
    /// Requested time, `HH:MM` (24 h). The scripts assume `19:00`: the host clips say "seven".
    pub time: String,
    /// The date as spoken, e.g. "Wednesday 25 November".
    pub spoken_date: String,
    /// Name the booking is under (the customer the agent calls for).
    pub name: String,
}

impl Booking {
    /// The booking every demo/test uses unless it needs another: 4 people at
    /// Chez Demo, Wednesday 25 November 2026 at 19:00, for Alex Doe.
    pub fn demo() -> Self {
        Booking {
            restaurant: "Chez Demo".into(),
            party_size: 4,
            date: "2026-11-25".into(),
            time: "19:00".into(),
            spoken_date: "Wednesday 25 November".into(),
            name: "Alex Doe".into(),
        }
    }

    /// The demo booking on `day` (the rig and the tests book tomorrow in
    /// the restaurant's zone, so "in the past" never trips them).
    pub fn demo_on(day: chrono::NaiveDate) -> Self {
        Booking {
            date: day.format("%Y-%m-%d").to_string(),
            spoken_date: day.format("%A %-d %B").to_string(),
            ..Booking::demo()
        }
    }
}

/// One thing the host says: which clip, its words (the stand-in ASR's
/// transcript), and the cue that makes the host say it.
#[derive(Clone, Debug)]
pub struct HostLine {
    /// Clip id, see [`clip`].
    pub clip: &'static str,
    /// The words of the clip; the Realtime stand-in returns them as the transcript.
    pub text: String,
    /// When the host says it.
    pub cue: Cue,
}

/// When the host says its next line. Cues are evaluated on the stream's audio
/// clock (20 ms frames), never while the host is still speaking.
#[derive(Clone, Debug)]
pub enum Cue {
    /// `after_ms` after the stream starts (the host picks up and greets).
    Answer {
        /// Milliseconds after the stream starts.
        after_ms: u64,
    },
    /// After the agent's audio stopped playing for this long (the agent must
    /// have played some audio since the host's previous line ended).
    AfterAgent {
        /// Milliseconds of empty playback buffer required.
        silence_ms: u64,
    },
    /// While the agent is talking, after this much of its audio played in the
    /// current turn: the host talks over it (barge-in).
    Interrupt {
        /// Milliseconds of agent audio heard in the current turn.
        after_heard_ms: u64,
    },
    /// After the telephone heard `digit` pressed (a DTMF tone detected in the
    /// agent audio it played since the host's previous line) and the line
    /// then stayed quiet for `silence_ms`: a phone menu connecting to a person.
    AfterDtmf {
        /// The key the menu waits for.
        digit: char,
        /// Milliseconds of empty playback buffer required after it.
        silence_ms: u64,
    },
}

/// One scripted model response: optional speech, optional tool call (in that order).
#[derive(Clone, Debug)]
pub struct AgentResponse {
    /// Text the agent speaks (synthesised by [`crate::sim::voice::speak`]).
    pub say: Option<String>,
    /// `(function name, arguments object)` of a function call after the speech.
    pub tool_call: Option<(String, serde_json::Value)>,
}

impl AgentResponse {
    /// A response that only speaks.
    pub fn say(text: impl Into<String>) -> Self {
        AgentResponse {
            say: Some(text.into()),
            tool_call: None,
        }
    }

    /// A response that only calls a tool.
    pub fn call(name: &str, arguments: serde_json::Value) -> Self {
        AgentResponse {
            say: None,
            tool_call: Some((name.to_string(), arguments)),
        }
    }
}

/// The script of one call: host lines (consumed one per cue) and agent
/// responses (consumed one per model response).
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short name for logs and reports.
    pub name: &'static str,
    /// The host's lines, in order.
    pub host: Vec<HostLine>,
    /// The agent's responses, in order.
    pub agent: Vec<AgentResponse>,
    /// `(keyword, response)`: once the product adds a `system` message
    /// containing `keyword` (e.g. its answering-machine instructions), the
    /// next response plays this instead of the next scripted one.
    pub on_system: Option<(&'static str, AgentResponse)>,
    /// The language the restaurant speaks, when it is not English: the
    /// Realtime stand-in refuses a session whose brief does not ask for it.
    pub language: Option<HostLanguage>,
}

/// A restaurant that speaks another language than English, and what the
/// stand-in model insists on finding in the product's `session.update`
/// before it plays the script (otherwise it fails the call loudly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLanguage {
    /// English name the brief must use to ask for the language ("French").
    pub name: &'static str,
    /// ISO 639-1 code expected as the transcription hint
    /// (`audio.input.transcription.language`), e.g. `fr`.
    pub code: &'static str,
    /// The slot as people say it in that language ("jeudi 26 novembre à
    /// 19 h"), which the brief must contain so the agent says it that way.
    pub spoken_slot: String,
}

impl HostLanguage {
    /// French, for `booking`'s slot.
    pub fn french(booking: &Booking) -> HostLanguage {
        HostLanguage {
            name: "French",
            code: "fr",
            spoken_slot: french_slot(&booking.date, &booking.time),
        }
    }

    /// What a session configured with `instructions` and the transcription
    /// settings `transcription` (the `audio.input.transcription` object, or
    /// `null` when off) lacks for a call in this language; empty when
    /// nothing is missing.
    pub fn missing(&self, instructions: &str, transcription: &serde_json::Value) -> Vec<String> {
        let mut missing = Vec::new();
        if !instructions.contains(self.name) {
            missing.push(format!("the instructions never ask for {}", self.name));
        }
        if !instructions.contains(&self.spoken_slot) {
            missing.push(format!(
                "the instructions do not say the slot as \"{}\"",
                self.spoken_slot
            ));
        }
        if transcription.is_object() {
            let hint = transcription.get("language").and_then(|l| l.as_str());
            if hint != Some(self.code) {
                missing.push(format!(
                    "audio.input.transcription.language is {hint:?}, not \"{}\"",
                    self.code
                ));
            }
        }
        missing
    }
}

/// "2026-11-26" + "19:00" → "jeudi 26 novembre à 19 h": how a French host
/// says a slot (the simulator's own wording, independent of the product's).
pub fn french_slot(date: &str, time: &str) -> String {
    let Ok(day) = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
        return format!("{date} à {time}");
    };
    let first = if chrono::Datelike::day(&day) == 1 {
        "1er".to_string()
    } else {
        chrono::Datelike::day(&day).to_string()
    };
    let fr = chrono::Locale::fr_FR;
    let (h, m) = time.split_once(':').unwrap_or((time, "00"));
    let h = h.trim_start_matches('0');
    let h = if h.is_empty() { "0" } else { h };
    let clock = if m == "00" {
        format!("{h} h")
    } else {
        format!("{h} h {m}")
    };
    format!(
        "{} {first} {} à {clock}",
        day.format_localized("%A", fr),
        day.format_localized("%B", fr)
    )
}

/// Clip ids and their words, as generated by `scripts/make-sim-clips.sh`
/// (`fr_*`: the French host, spoken by espeak-ng's French voice).
pub const CLIP_TEXTS: &[(&str, &str)] = &[
    ("greeting", "Good evening, Chez Demo, how can I help you?"),
    ("booked_confirm", "Let me check. Yes, we have a table at seven. You're all set, your confirmation number is four two one seven."),
    ("alt_offer", "I'm sorry, seven o'clock is fully booked. The closest I have is seven thirty. Would that work?"),
    ("alt_confirm", "Perfect, you're booked for seven thirty. See you then."),
    ("interrupt", "Sorry, how many people was that?"),
    ("barge_confirm", "Great, a table for four at seven. You're booked. See you then."),
    ("menu", "Thank you for calling Chez Demo. For opening hours, press one. For reservations, press two."),
    ("voicemail", "You have reached Chez Demo. We can't take your call right now. Please leave a message after the tone."),
    ("fr_greeting", "Bonsoir, Chez Demo, je vous écoute."),
    ("fr_booked_confirm", "Je regarde. Oui, nous avons une table à dix-neuf heures. C'est noté, votre numéro de confirmation est le quatre deux un sept."),
];

/// The raw mu-law bytes of a host clip (8 kHz mono, no header), embedded at
/// build time so nothing at run time needs espeak-ng; `None` for an unknown id.
pub fn clip(id: &str) -> Option<&'static [u8]> {
    Some(match id {
        "greeting" => include_bytes!("../../assets/sim/host/greeting.ulaw"),
        "booked_confirm" => include_bytes!("../../assets/sim/host/booked_confirm.ulaw"),
        "alt_offer" => include_bytes!("../../assets/sim/host/alt_offer.ulaw"),
        "alt_confirm" => include_bytes!("../../assets/sim/host/alt_confirm.ulaw"),
        "interrupt" => include_bytes!("../../assets/sim/host/interrupt.ulaw"),
        "barge_confirm" => include_bytes!("../../assets/sim/host/barge_confirm.ulaw"),
        "menu" => include_bytes!("../../assets/sim/host/menu.ulaw"),
        "voicemail" => include_bytes!("../../assets/sim/host/voicemail.ulaw"),
        "fr_greeting" => include_bytes!("../../assets/sim/host/fr_greeting.ulaw"),
        "fr_booked_confirm" => include_bytes!("../../assets/sim/host/fr_booked_confirm.ulaw"),
        _ => return None,
    })
}

/// The words of a clip (empty for an unknown id).
pub fn clip_text(id: &str) -> &'static str {
    CLIP_TEXTS
        .iter()
        .find(|(c, _)| *c == id)
        .map(|(_, t)| *t)
        .unwrap_or("")
}

/// What the host actually plays for a clip id: the clip, plus for `voicemail`
/// 300 ms of silence and the 1000 Hz, 500 ms beep. Unknown ids play 1 s of
/// silence (and are logged) rather than failing a call.
pub fn host_audio(id: &str) -> Vec<u8> {
    match clip(id) {
        Some(bytes) => {
            let mut out = bytes.to_vec();
            if id == "voicemail" {
                out.extend(std::iter::repeat_n(crate::audio::mulaw::SILENCE, 300 * 8));
                out.extend(crate::sim::voice::tone(1000.0, 500, 0.3));
            }
            out
        }
        None => {
            tracing::warn!(clip = id, "unknown host clip; playing silence");
            vec![crate::audio::mulaw::SILENCE; 8000]
        }
    }
}

fn line(clip: &'static str, cue: Cue) -> HostLine {
    HostLine {
        clip,
        text: clip_text(clip).to_string(),
        cue,
    }
}

/// `HH:MM` plus `minutes`, wrapping at midnight; unparsable input is returned unchanged.
pub fn add_minutes(hhmm: &str, minutes: u32) -> String {
    let mut parts = hhmm.splitn(2, ':');
    let (Some(h), Some(m)) = (parts.next(), parts.next()) else {
        return hhmm.to_string();
    };
    let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) else {
        return hhmm.to_string();
    };
    let total = (h * 60 + m + minutes) % (24 * 60);
    format!("{:02}:{:02}", total / 60, total % 60)
}

/// "19:00" → "7 PM", "19:30" → "7:30 PM": how a person says a time.
pub fn spoken_time(hhmm: &str) -> String {
    let (h, m) = hhmm.split_once(':').unwrap_or((hhmm, "00"));
    let (h, m): (u32, u32) = (h.parse().unwrap_or(0), m.parse().unwrap_or(0));
    let suffix = if h >= 12 { "PM" } else { "AM" };
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    if m == 0 {
        format!("{h12} {suffix}")
    } else {
        format!("{h12}:{m:02} {suffix}")
    }
}

fn intro(b: &Booking) -> String {
    format!(
        "Hello, this is an automated assistant calling on behalf of {}. I'd like to book a table for {} on {} at {}.",
        b.name, b.party_size, b.spoken_date, spoken_time(&b.time)
    )
}

fn finish(b: &Booking, status: &str, time: &str, confirmation: Option<&str>) -> AgentResponse {
    let mut args = json!({
        "status": status,
        "date": b.date,
        "time": time,
        "party_size": b.party_size,
        "name": b.name,
    });
    if let (Some(c), Some(obj)) = (confirmation, args.as_object_mut()) {
        obj.insert("confirmation".into(), json!(c));
    }
    AgentResponse::call("finish_call", args)
}

/// Pause the host leaves after the agent stops before answering, in ms.
const HOST_REPLY_SILENCE_MS: u64 = 600;
/// When the host picks up and greets, in ms after the stream starts.
const HOST_GREETING_AFTER_MS: u64 = 400;

impl Scenario {
    /// The happy path: greeting → agent intro (discloses it is an automated
    /// assistant calling on behalf of the customer, asks for the table) →
    /// `booked_confirm` → agent calls `finish_call{status:"booked", …,
    /// confirmation:"4217"}` without speech → agent says a short goodbye.
    pub fn booked(b: &Booking) -> Self {
        Scenario {
            name: "booked",
            host: vec![
                line(
                    "greeting",
                    Cue::Answer {
                        after_ms: HOST_GREETING_AFTER_MS,
                    },
                ),
                line(
                    "booked_confirm",
                    Cue::AfterAgent {
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
            ],
            agent: vec![
                AgentResponse::say(intro(b)),
                finish(b, "booked", &b.time, Some("4217")),
                AgentResponse::say("Thank you very much. Goodbye!"),
            ],
            on_system: None,
            language: None,
        }
    }

    /// The requested time is full: greeting → intro → `alt_offer` → agent
    /// accepts 30 minutes later → `alt_confirm` → `finish_call{status:
    /// "alternative_booked", time: requested + 30 min}` → goodbye.
    pub fn alternative(b: &Booking) -> Self {
        let alt = add_minutes(&b.time, 30);
        Scenario {
            name: "alternative",
            host: vec![
                line(
                    "greeting",
                    Cue::Answer {
                        after_ms: HOST_GREETING_AFTER_MS,
                    },
                ),
                line(
                    "alt_offer",
                    Cue::AfterAgent {
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
                line(
                    "alt_confirm",
                    Cue::AfterAgent {
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
            ],
            agent: vec![
                AgentResponse::say(intro(b)),
                AgentResponse::say(format!(
                    "Yes, {} works for us. Please book it.",
                    spoken_time(&alt)
                )),
                finish(b, "alternative_booked", &alt, None),
                AgentResponse::say("Thank you very much. Goodbye!"),
            ],
            on_system: None,
            language: None,
        }
    }

    /// Barge-in: greeting → a long intro (well over 5 s of speech) → the host
    /// interrupts after hearing 1.5 s of it ("how many people?") → agent "For
    /// four people." → `barge_confirm` → `finish_call` booked → goodbye.
    /// The product must `clear` Twilio's buffer and truncate the intro.
    pub fn barge_in(b: &Booking) -> Self {
        let long_intro = format!(
            "Hello, this is an automated assistant calling on behalf of {}. I would like to book a table for {} people on {} at {}, ideally somewhere quiet by the window, and I also wanted to ask whether you have parking nearby.",
            b.name, b.party_size, b.spoken_date, spoken_time(&b.time)
        );
        Scenario {
            name: "barge_in",
            host: vec![
                line(
                    "greeting",
                    Cue::Answer {
                        after_ms: HOST_GREETING_AFTER_MS,
                    },
                ),
                line(
                    "interrupt",
                    Cue::Interrupt {
                        after_heard_ms: 1500,
                    },
                ),
                line(
                    "barge_confirm",
                    Cue::AfterAgent {
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
            ],
            agent: vec![
                AgentResponse::say(long_intro),
                AgentResponse::say(format!("For {} people.", number_word(b.party_size))),
                finish(b, "booked", &b.time, None),
                AgentResponse::say("Thank you very much. Goodbye!"),
            ],
            on_system: None,
            language: None,
        }
    }
}

impl Scenario {
    /// A phone menu answers: `menu` ("… For reservations, press two.") → the
    /// agent calls `send_dtmf{"digits":"2"}` without speaking → once the
    /// telephone hears the "2" tone, the host picks up with `greeting` → intro
    /// → `booked_confirm` → `finish_call` booked → goodbye.
    pub fn menu(b: &Booking) -> Self {
        Scenario {
            name: "menu",
            host: vec![
                line(
                    "menu",
                    Cue::Answer {
                        after_ms: HOST_GREETING_AFTER_MS,
                    },
                ),
                line(
                    "greeting",
                    Cue::AfterDtmf {
                        digit: '2',
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
                line(
                    "booked_confirm",
                    Cue::AfterAgent {
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
            ],
            agent: vec![
                AgentResponse::call("send_dtmf", json!({"digits": "2"})),
                AgentResponse::say(intro(b)),
                finish(b, "booked", &b.time, Some("4217")),
                AgentResponse::say("Thank you very much. Goodbye!"),
            ],
            on_system: None,
            language: None,
        }
    }

    /// An answering machine: `voicemail` (greeting + beep). The stand-in
    /// model stays silent on its own (no scripted reply to the greeting); when
    /// the product, told by AMD, adds its answering-machine instructions, it
    /// speaks the message.
    pub fn voicemail(b: &Booking) -> Self {
        let message = format!(
            "Hello, this is an automated assistant calling on behalf of {}, to book a table for {} on {} at {}. No booking has been made. Goodbye.",
            b.name, b.party_size, b.spoken_date, spoken_time(&b.time)
        );
        Scenario {
            name: "voicemail",
            host: vec![line(
                "voicemail",
                Cue::Answer {
                    after_ms: HOST_GREETING_AFTER_MS,
                },
            )],
            agent: vec![],
            on_system: Some(("answering machine", AgentResponse::say(message))),
            language: None,
        }
    }
}

impl Scenario {
    /// A restaurant in France, booked in French: `fr_greeting` → the agent
    /// introduces itself in French (an automated assistant calling on behalf
    /// of the customer) and asks for the table with the slot said the French
    /// way → `fr_booked_confirm` → `finish_call{status:"booked", …,
    /// confirmation:"4217"}` → a French goodbye. The stand-in model plays it
    /// only for a session whose brief asks for French ([`HostLanguage`]).
    pub fn french(b: &Booking) -> Self {
        let language = HostLanguage::french(b);
        let intro = format!(
            "Bonjour, je suis un assistant automatisé et j'appelle de la part de {}. Je voudrais réserver une table pour {} personnes le {}.",
            b.name, b.party_size, language.spoken_slot
        );
        Scenario {
            name: "french",
            host: vec![
                line(
                    "fr_greeting",
                    Cue::Answer {
                        after_ms: HOST_GREETING_AFTER_MS,
                    },
                ),
                line(
                    "fr_booked_confirm",
                    Cue::AfterAgent {
                        silence_ms: HOST_REPLY_SILENCE_MS,
                    },
                ),
            ],
            agent: vec![
                AgentResponse::say(intro),
                finish(b, "booked", &b.time, Some("4217")),
                AgentResponse::say("Merci beaucoup, bonne soirée. Au revoir !"),
            ],
            on_system: None,
            language: Some(language),
        }
    }
}

fn number_word(n: u32) -> String {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    WORDS
        .get(n as usize)
        .map(|w| w.to_string())
        .unwrap_or_else(|| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clip_is_embedded_and_sized() {
        for (id, text) in CLIP_TEXTS {
            let bytes = clip(id).expect("clip embedded");
            // between 1 s and 10 s of speech
            assert!(
                bytes.len() > 8_000 && bytes.len() < 80_000,
                "{id}: {}",
                bytes.len()
            );
            assert!(!text.is_empty());
        }
        assert!(clip("nope").is_none());
        assert!(host_audio("voicemail").len() > clip("voicemail").unwrap().len() + 6000);
    }

    #[test]
    fn scenarios_follow_the_booking() {
        let b = Booking::demo();
        let s = Scenario::booked(&b);
        assert_eq!(s.host.len(), 2);
        let intro = s.agent[0].say.clone().unwrap();
        assert!(intro.contains("automated assistant calling on behalf of Alex Doe"));
        assert!(intro.contains("table for 4 on Wednesday 25 November at 7 PM"));
        let (name, args) = s.agent[1].tool_call.clone().unwrap();
        assert_eq!(name, "finish_call");
        assert_eq!(args["status"], "booked");
        assert_eq!(args["confirmation"], "4217");
        assert_eq!(args["party_size"], 4);
        assert!(s.agent[1].say.is_none());

        let a = Scenario::alternative(&b);
        assert_eq!(a.agent[2].tool_call.as_ref().unwrap().1["time"], "19:30");
        assert_eq!(
            a.agent[2].tool_call.as_ref().unwrap().1["status"],
            "alternative_booked"
        );

        let bi = Scenario::barge_in(&b);
        let long = bi.agent[0].say.clone().unwrap();
        // >= 5 s of synthesised speech
        assert!(crate::sim::voice::speak(&long).len() >= 5 * 8000);
        assert!(matches!(
            bi.host[1].cue,
            Cue::Interrupt {
                after_heard_ms: 1500
            }
        ));
        assert_eq!(bi.agent[1].say.as_deref(), Some("For four people."));
    }

    #[test]
    fn times_are_spoken_as_people_say_them() {
        assert_eq!(spoken_time("19:00"), "7 PM");
        assert_eq!(spoken_time("19:30"), "7:30 PM");
        assert_eq!(spoken_time("00:15"), "12:15 AM");
        assert_eq!(spoken_time("12:00"), "12 PM");
    }

    #[test]
    fn the_french_scenario_speaks_french_and_expects_a_french_brief() {
        let b = Booking {
            date: "2026-11-26".into(),
            ..Booking::demo()
        };
        let s = Scenario::french(&b);
        assert_eq!(s.host[0].clip, "fr_greeting");
        assert!(s.host[0].text.starts_with("Bonsoir"));
        let intro = s.agent[0].say.clone().unwrap();
        assert!(intro.contains("assistant automatisé et j'appelle de la part de Alex Doe"));
        assert!(intro.contains("table pour 4 personnes le jeudi 26 novembre à 19 h."));
        assert_eq!(
            s.agent[1].tool_call.as_ref().unwrap().1["confirmation"],
            "4217"
        );
        let lang = s.language.clone().unwrap();
        assert_eq!(lang.spoken_slot, "jeudi 26 novembre à 19 h");
        let hint = serde_json::json!({"model": "gpt-4o-mini-transcribe", "language": "fr"});
        let good = "Speak French from your first word. Say \"jeudi 26 novembre à 19 h\".";
        assert!(lang.missing(good, &hint).is_empty());
        assert!(lang.missing(good, &serde_json::Value::Null).is_empty());
        let english = "You are calling to book a table on Thursday 26 November at 7 PM. Use the language the host speaks.";
        let missing = lang.missing(
            english,
            &serde_json::json!({"model": "m", "language": null}),
        );
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(missing[0].contains("never ask for French"));
        assert!(missing[2].contains("transcription.language is None"));
    }

    #[test]
    fn the_french_host_says_slots_the_french_way() {
        assert_eq!(
            french_slot("2026-11-28", "19:00"),
            "samedi 28 novembre à 19 h"
        );
        assert_eq!(
            french_slot("2026-11-01", "19:30"),
            "dimanche 1er novembre à 19 h 30"
        );
        assert_eq!(french_slot("2026-06-09", "09:05"), "mardi 9 juin à 9 h 05");
    }

    #[test]
    fn add_minutes_wraps() {
        assert_eq!(add_minutes("19:00", 30), "19:30");
        assert_eq!(add_minutes("23:45", 30), "00:15");
        assert_eq!(add_minutes("bad", 30), "bad");
    }
}
