//! French (français).

use super::{counted, Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical: "Désolé, nous rencontrons un problème technique et nous vous rappellerons plus tard. Au revoir.",
    apology_limit: "Désolé, je dois mettre fin à l'appel maintenant. Merci pour votre temps. Au revoir.",
    sentence_gap: " ",
    recording_notice: "Cet appel est enregistré.",
    disclosure: |customer| {
        format!("Bonjour, je suis un assistant automatisé et j'appelle de la part de {customer}.")
    },
    party: |n| counted(n, "personne", "personnes"),
    callback: |cb| format!("Vous pouvez rappeler au {cb}."),
    request: |party, when| format!("Je voudrais réserver une table pour {party} le {when}."),
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    format!(
        "Bonjour, je suis un assistant automatisé et j'appelle de la part de {customer} pour réserver une table pour {party} au restaurant « {restaurant} » le {when}.{callback} Aucune réservation n'a encore été faite. Merci, au revoir.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
    )
}
