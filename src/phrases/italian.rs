//! Italian (italiano).

use super::{Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical:
        "Ci scusi, abbiamo un problema tecnico e la richiameremo più tardi. Arrivederci.",
    apology_limit:
        "Mi scusi, devo chiudere la chiamata adesso. Grazie per il suo tempo. Arrivederci.",
    recording_notice: "La chiamata viene registrata.",
    disclosure: |customer| {
        format!("Buongiorno, sono un assistente automatico e chiamo per conto di {customer}.")
    },
    party: |n| {
        if n == 1 {
            "1 persona".to_string()
        } else {
            format!("{n} persone")
        }
    },
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    let callback = match m.callback {
        Some(cb) => format!(" Potete richiamare al numero {cb}."),
        None => String::new(),
    };
    format!(
        "Buongiorno, sono un assistente automatico e chiamo per conto di {customer} per prenotare un tavolo per {party} al ristorante «{restaurant}» per {when}.{callback} Per ora non è stata fatta nessuna prenotazione. Grazie, arrivederci.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
    )
}
