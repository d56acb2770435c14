//! German (Deutsch).

use super::{counted, Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical: "Entschuldigung, wir haben ein technisches Problem und rufen Sie später zurück. Auf Wiederhören.",
    apology_limit: "Entschuldigung, ich muss das Gespräch jetzt beenden. Vielen Dank für Ihre Zeit. Auf Wiederhören.",
    sentence_gap: " ",
    recording_notice: "Dieses Gespräch wird aufgezeichnet.",
    disclosure: |customer| {
        format!("Guten Tag, hier spricht ein automatischer Assistent im Auftrag von {customer}.")
    },
    party: |n| counted(n, "Person", "Personen"),
    callback: |cb| format!("Sie können unter {cb} zurückrufen."),
    request: |party, when| format!("Ich möchte am {when} einen Tisch für {party} reservieren."),
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    // Every weekday is masculine in German: "am Samstag".
    format!(
        "Guten Tag, hier spricht ein automatischer Assistent im Auftrag von {customer}. Ich möchte am {when} einen Tisch für {party} im Restaurant „{restaurant}“ reservieren.{callback} Es wurde noch nichts reserviert. Vielen Dank und auf Wiederhören.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
    )
}
