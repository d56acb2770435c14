//! What the model is told during a call, beyond its brief: the next step
//! after each tool, the nudge to leave the voicemail message, the unsure
//! answering-machine hint, the restaurant's key presses, the conversation
//! restored after a reconnect; and how key presses read on the transcript.
//!
//! The call core never writes a sentence of its own: it gets these
//! [`Prompts`] and, for what the restaurant hears from the server itself
//! (the apologies, the voicemail message), the call's
//! [`crate::phrases::Phrases`]. Prompts stay in English, the language the
//! model follows best, whatever language the call is in (as the brief does).

use std::fmt::Display;

use crate::domain::Speaker;

/// The prompts of one language. Templates name their blank in braces
/// (`{key}`, `{keys}`), so another wording can put it where it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompts {
    /// The "next" of `finish_call`'s output: what the agent does now.
    pub say_goodbye_now: &'static str,
    /// The "next" of `send_dtmf`'s output.
    pub keys_played_wait: &'static str,
    /// `send_dtmf`'s error while earlier keys are still being pressed
    /// through Twilio.
    pub keys_busy: &'static str,
    /// What the agent may do when Twilio did not press its keys: its next
    /// `send_dtmf` plays them as tones on the line.
    pub keys_refused_try_tones: &'static str,
    /// Instructions for the reply that leaves the voicemail message.
    pub leave_message_now: &'static str,
    /// System note when the answering-machine detector is unsure.
    pub machine_maybe: &'static str,
    /// User note when the restaurant presses a key (`{key}`).
    pub callee_pressed_key: &'static str,
    /// Transcript line of a key press, by either side (`{keys}`).
    pub pressed_keys: &'static str,
    /// Opening of the conversation restored after a model reconnect.
    pub restore_intro: &'static str,
    /// How the restored conversation names the agent's lines.
    pub restore_agent: &'static str,
    /// How the restored conversation names the restaurant's lines.
    pub restore_callee: &'static str,
    /// End of the restored conversation: what the agent does next.
    pub restore_outro: &'static str,
}

/// English.
pub static ENGLISH: Prompts = Prompts {
    say_goodbye_now: "Say a short goodbye now. The call ends after your goodbye.",
    keys_played_wait: "The keys were played on the line, in order, after anything you said. Say nothing now; wait for whoever answers.",
    keys_busy: "The keys you asked for before are still being pressed. Wait for them, then for whoever answers.",
    keys_refused_try_tones: "The phone network did not press the keys, so nothing was pressed. To try again, call send_dtmf again: the keys will then be played as tones on the line.",
    leave_message_now: "Leave the voicemail message now.",
    machine_maybe: "The phone network's detector thinks a machine may have answered. If you are hearing a voicemail greeting, follow your instructions for voicemail. If it is a phone menu, keep navigating it with send_dtmf. If a person is talking, carry on normally.",
    callee_pressed_key: "(The restaurant pressed key {key} on the phone keypad.)",
    pressed_keys: "(pressed {keys})",
    restore_intro: "The connection was interrupted and restored. The phone call is still going on. The conversation so far:",
    restore_agent: "You",
    restore_callee: "Restaurant",
    restore_outro: "Continue the call from where it stopped; do not start over.",
};

impl Prompts {
    /// What the model is told when the restaurant presses `key`.
    pub fn callee_pressed(&self, key: impl Display) -> String {
        self.callee_pressed_key.replace("{key}", &key.to_string())
    }

    /// The transcript line of pressing `keys`.
    pub fn pressed(&self, keys: impl Display) -> String {
        self.pressed_keys.replace("{keys}", &keys.to_string())
    }

    /// The conversation so far, for a new model session after a reconnect.
    pub fn restore(&self, history: &[(Speaker, String)]) -> String {
        let mut text = format!("{}\n", self.restore_intro);
        for (speaker, line) in history {
            let who = match speaker {
                Speaker::Agent => self.restore_agent,
                Speaker::Callee => self.restore_callee,
            };
            text.push_str(&format!("{who}: {line}\n"));
        }
        text.push_str(self.restore_outro);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_their_blanks() {
        assert_eq!(
            ENGLISH.callee_pressed('5'),
            "(The restaurant pressed key 5 on the phone keypad.)"
        );
        assert_eq!(ENGLISH.pressed("2#"), "(pressed 2#)");
    }

    #[test]
    fn the_restored_conversation_names_both_sides_in_order() {
        let text = ENGLISH.restore(&[
            (Speaker::Callee, "Chez Demo, hello?".into()),
            (Speaker::Agent, "Hi, a table for four?".into()),
        ]);
        assert_eq!(
            text,
            "The connection was interrupted and restored. The phone call is still going on. The conversation so far:\n\
             Restaurant: Chez Demo, hello?\n\
             You: Hi, a table for four?\n\
             Continue the call from where it stopped; do not start over."
        );
    }
}
