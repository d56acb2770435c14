//! French (français).

use super::{Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical: "Désolé, nous rencontrons un problème technique et nous vous rappellerons plus tard. Au revoir.",
    apology_limit: "Désolé, je dois mettre fin à l'appel maintenant. Merci pour votre temps. Au revoir.",
    recording_notice: "Cet appel est enregistré.",
    disclosure: |customer| {
        format!("Bonjour, je suis un assistant automatisé et j'appelle de la part de {customer}.")
    },
    party: |n| {
        if n == 1 {
            "1 personne".to_string()
        } else {
            format!("{n} personnes")
        }
    },
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    let callback = match m.callback {
        Some(cb) => format!(" Vous pouvez rappeler au {cb}."),
        None => String::new(),
    };
    format!(
        "Bonjour, je suis un assistant automatisé et j'appelle de la part de {customer} pour réserver une table pour {party} au restaurant « {restaurant} » le {when}.{callback} Aucune réservation n'a encore été faite. Merci, au revoir.",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
    )
}
