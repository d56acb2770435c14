//! German (Deutsch).

use super::{Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical: "Entschuldigung, wir haben ein technisches Problem und rufen Sie später zurück. Auf Wiederhören.",
    apology_limit: "Entschuldigung, ich muss das Gespräch jetzt beenden. Vielen Dank für Ihre Zeit. Auf Wiederhören.",
    recording_notice: "Dieses Gespräch wird aufgezeichnet.",
    disclosure: |customer| {
        format!("Guten Tag, hier spricht ein automatischer Assistent im Auftrag von {customer}.")
    },
    party: |n| {
        if n == 1 {
            "1 Person".to_string()
        } else {
            format!("{n} Personen")
        }
    },
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    let callback = match m.callback {
        Some(cb) => format!(" Sie können unter {cb} zurückrufen."),
        None => String::new(),
    };
    // Every weekday is masculine in German: "am Samstag".
    format!(
        "Guten Tag, hier spricht ein automatischer Assistent im Auftrag von {customer}. Ich möchte am {when} einen Tisch für {party} im Restaurant „{restaurant}“ reservieren.{callback} Es wurde noch nichts reserviert. Vielen Dank und auf Wiederhören.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
    )
}
