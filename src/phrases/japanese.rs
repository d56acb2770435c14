//! Japanese (日本語), in polite phone register.

use super::{Message, Words};

pub(super) static WORDS: Words = Words {
    apology_technical: "申し訳ございません。技術的な問題が発生したため、後ほどおかけ直しいたします。失礼いたします。",
    apology_limit: "申し訳ございませんが、これで通話を終了させていただきます。お時間をいただき、ありがとうございました。失礼いたします。",
    sentence_gap: "",
    recording_notice: "この通話は録音されています。",
    disclosure: |customer| {
        format!("もしもし、{customer}様の代理でお電話しております、自動音声アシスタントです。")
    },
    party: |n| format!("{n}名"),
    callback: |cb| format!("折り返しのお電話は{cb}までお願いいたします。"),
    request: |party, when| format!("{when}に{party}で予約をお願いしたいのですが。"),
    voicemail: message,
};

fn message(m: &Message<'_>) -> String {
    format!(
        "もしもし、{customer}様の代理でお電話しております、自動音声アシスタントです。{when}に{party}で、「{restaurant}」の席を予約させていただきたく、お電話いたしました。{callback}まだ予約は完了しておりません。失礼いたします。",
        customer = m.customer,
        party = m.party,
        restaurant = m.restaurant,
        when = m.when,
        callback = m.callback,
    )
}
