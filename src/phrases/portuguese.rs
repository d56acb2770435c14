//! Portuguese (português), in Brazilian wording: understood in Portugal too.

use super::{counted, Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical:
        "Desculpe, estamos com um problema técnico e ligaremos de volta mais tarde. Até logo.",
    apology_limit: "Desculpe, preciso encerrar a ligação agora. Obrigado pelo seu tempo. Até logo.",
    sentence_gap: " ",
    recording_notice: "Esta chamada está sendo gravada.",
    disclosure: |customer| {
        format!("Olá, sou um assistente automático e estou ligando em nome de {customer}.")
    },
    party: |n| counted(n, "pessoa", "pessoas"),
    callback: |cb| format!("O número para retorno é {cb}."),
    request: |party, when| format!("Gostaria de reservar uma mesa para {party}, para {when}."),
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    // "para" before the day: weekdays differ in gender ("no sábado", "na segunda").
    format!(
        "Olá, sou um assistente automático e estou ligando em nome de {customer} para reservar uma mesa para {party} no restaurante «{restaurant}», para {when}.{callback} Nenhuma reserva foi feita ainda. Obrigado, até logo.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
    )
}
