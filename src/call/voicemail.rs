//! Answering machines: telling the live session who answered, and what the
//! agent leaves after the beep.
//!
//! Twilio's asynchronous AMD result is a webhook (`POST /twilio/amd`) that may
//! reach any server instance, not necessarily the one holding the Media
//! Stream. So the webhook only writes the verdict (`AnsweredBy`) to the call store, and the
//! session holding the stream polls that one column (a primary-key lookup)
//! until it is known. Memory shared between requests is never relied on.

use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{debug, Instrument};

use crate::domain::{AnsweredBy, Reservation};
use crate::store::CallStore;

/// How often the session looks for the AMD result.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// Stop looking after this long (Twilio's AMD gives up after 30 s by default).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(75);
/// After deciding to leave a message: hang up anyway if it has not finished
/// playing by then (a message is ~15 s of speech).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(45);

/// The hint the agent gets when the detector is unsure.
pub const UNSURE_HINT: &str = "The phone network's detector thinks a machine may have answered. If you are hearing a voicemail greeting, follow your instructions for voicemail. If it is a phone menu, keep navigating it with send_dtmf. If a person is talking, carry on normally.";

/// Poll the store for `call_sid`'s verdict; the receiver gets the first one
/// seen. The task ends once a value is sent, when the receiver is
/// dropped (the call ended), or after [`GIVE_UP_AFTER`].
pub fn watch_answered_by(store: CallStore, call_sid: String) -> oneshot::Receiver<AnsweredBy> {
    let (mut tx, rx) = oneshot::channel();
    tokio::spawn(
        async move {
            let deadline = tokio::time::Instant::now() + GIVE_UP_AFTER;
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                match store.answered_by(&call_sid).await {
                    Ok(Some(who)) => {
                        let _ = tx.send(who);
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => debug!(error = %e, "cannot read who answered yet"),
                }
            }
        }
        .in_current_span(),
    );
    rx
}

/// The system message that makes the agent leave its message after the beep:
/// who is calling, for whom, the requested slot, the callback number if any,
/// and that nothing was booked.
pub fn message_instructions(r: &Reservation) -> String {
    let callback = match &r.callback {
        Some(cb) => format!(" Give the callback number {}, digit by digit.", cb.as_str()),
        None => String::new(),
    };
    format!(
        "An answering machine took this call and its beep has sounded: no person is listening. Leave one short voicemail message now, in one turn, then stop: say you are an automated assistant calling on behalf of {name} to book a table for {party} at \"{restaurant}\" on {date} at {time}.{callback} Say clearly that no booking has been made yet. End with a short goodbye. Do not ask questions and do not call any tool.",
        name = r.customer_name,
        party = r.party_size.get(),
        restaurant = r.restaurant_name,
        date = r.slot.spoken_date(),
        time = r.slot.spoken_time(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{RequestRules, ReservationRequest};
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_message_says_who_for_whom_when_and_that_nothing_was_booked() {
        let r = ReservationRequest {
            to: "+12125550123".into(),
            restaurant: "Chez Demo".into(),
            party_size: 4,
            date: "2026-11-25".into(),
            time: "19:00".into(),
            name: "Alex Doe".into(),
            callback: Some("+15557654321".into()),
            ..Default::default()
        }
        .into_reservation(
            &RequestRules {
                default_timezone: chrono_tz::Tz::UTC,
                max_party_size: 20,
                dial_policy: Default::default(),
            },
            Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(),
        )
        .unwrap();
        let m = message_instructions(&r);
        for want in [
            "automated assistant",
            "Alex Doe",
            "table for 4",
            "Chez Demo",
            "Wednesday 25 November",
            "7 PM",
            "+15557654321",
            "no booking has been made",
        ] {
            assert!(m.contains(want), "{want}: {m}");
        }
    }
}
