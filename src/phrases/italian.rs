//! Italian (italiano).

use super::{counted, Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical:
        "Ci scusi, abbiamo un problema tecnico e la richiameremo più tardi. Arrivederci.",
    apology_limit:
        "Mi scusi, devo chiudere la chiamata adesso. Grazie per il suo tempo. Arrivederci.",
    sentence_gap: " ",
    recording_notice: "La chiamata viene registrata.",
    disclosure: |customer| {
        format!("Buongiorno, sono un assistente automatico e chiamo per conto di {customer}.")
    },
    party: |n| counted(n, "persona", "persone"),
    callback: |cb| format!("Potete richiamare al numero {cb}."),
    request: |party, when| format!("Vorrei prenotare un tavolo per {party} per {when}."),
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    format!(
        "Buongiorno, sono un assistente automatico e chiamo per conto di {customer} per prenotare un tavolo per {party} al ristorante «{restaurant}» per {when}.{callback} Per ora non è stata fatta nessuna prenotazione. Grazie, arrivederci.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
    )
}
