//! Who answered the call, per Twilio's answering-machine detection (AMD).

use std::fmt;

/// Twilio's `AnsweredBy` verdict, parsed once where it arrives (the
/// `/twilio/amd` webhook) and kept as this type through the store to the
/// live call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// A person.
    Human,
    /// A machine, detected at the start of its greeting (`MachineDetection=Enable`).
    MachineStart,
    /// A machine whose greeting ended with a beep.
    MachineEndBeep,
    /// A machine whose greeting ended with silence.
    MachineEndSilence,
    /// A machine whose greeting ended some other way.
    MachineEndOther,
    /// A fax machine.
    Fax,
    /// The detector could not tell.
    Unknown,
}

impl AnsweredBy {
    /// Every verdict, in Twilio's documentation order.
    pub const ALL: [AnsweredBy; 7] = [
        AnsweredBy::Human,
        AnsweredBy::MachineStart,
        AnsweredBy::MachineEndBeep,
        AnsweredBy::MachineEndSilence,
        AnsweredBy::MachineEndOther,
        AnsweredBy::Fax,
        AnsweredBy::Unknown,
    ];

    /// The wire value (`machine_end_beep`).
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::MachineStart => "machine_start",
            AnsweredBy::MachineEndBeep => "machine_end_beep",
            AnsweredBy::MachineEndSilence => "machine_end_silence",
            AnsweredBy::MachineEndOther => "machine_end_other",
            AnsweredBy::Fax => "fax",
            AnsweredBy::Unknown => "unknown",
        }
    }

    /// Parse Twilio's value; `None` for one it does not document.
    pub fn parse(s: &str) -> Option<AnsweredBy> {
        AnsweredBy::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// No person is listening.
    pub fn is_machine(self) -> bool {
        !matches!(self, AnsweredBy::Human | AnsweredBy::Unknown)
    }

    /// Certain enough to act on without the agent's own judgement.
    /// `machine_end_other` and `machine_start` are also what a phone menu
    /// can look like to the detector, so for those the agent is only told,
    /// and decides from what it hears (leave the message, or press keys).
    pub fn is_certain_machine(self) -> bool {
        matches!(
            self,
            AnsweredBy::MachineEndBeep | AnsweredBy::MachineEndSilence | AnsweredBy::Fax
        )
    }
}

impl fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_and_people() {
        for a in AnsweredBy::ALL {
            assert_eq!(AnsweredBy::parse(a.as_str()), Some(a));
        }
        assert_eq!(AnsweredBy::parse("robot"), None);
        assert_eq!(AnsweredBy::parse(""), None);
        let machines: Vec<&str> = AnsweredBy::ALL
            .into_iter()
            .filter(|a| a.is_machine())
            .map(AnsweredBy::as_str)
            .collect();
        assert_eq!(
            machines,
            [
                "machine_start",
                "machine_end_beep",
                "machine_end_silence",
                "machine_end_other",
                "fax"
            ]
        );
        let certain: Vec<&str> = AnsweredBy::ALL
            .into_iter()
            .filter(|a| a.is_certain_machine())
            .map(AnsweredBy::as_str)
            .collect();
        assert_eq!(certain, ["machine_end_beep", "machine_end_silence", "fax"]);
    }
}
