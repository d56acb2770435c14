//! Spanish (español).

use super::{counted, Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical:
        "Lo sentimos, tenemos un problema técnico y les volveremos a llamar más tarde. Adiós.",
    apology_limit: "Lo siento, tengo que terminar la llamada ahora. Gracias por su tiempo. Adiós.",
    sentence_gap: " ",
    recording_notice: "Esta llamada se está grabando.",
    disclosure: |customer| {
        format!("Hola, soy un asistente automático y llamo de parte de {customer}.")
    },
    party: |n| counted(n, "persona", "personas"),
    callback: |cb| format!("Pueden devolver la llamada al {cb}."),
    request: |party, when| format!("Quisiera reservar una mesa para {party} el {when}."),
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    // Every weekday is masculine in Spanish: "el sábado", "el lunes".
    format!(
        "Hola, soy un asistente automático y llamo de parte de {customer} para reservar una mesa para {party} en el restaurante «{restaurant}» el {when}.{callback} Todavía no se ha hecho ninguna reserva. Gracias, adiós.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
    )
}
