//! Answering machines: telling the live session who answered.
//!
//! Twilio's asynchronous AMD result is a webhook (`POST /twilio/amd`) that may
//! reach any server instance, not necessarily the one holding the Media
//! Stream. So the webhook only writes the verdict ([`AnsweredBy`]) to the call
//! store, and the session holding the stream polls that one column (a
//! primary-key lookup) until it is known. Memory shared between requests is
//! never relied on. What the call does with the verdict is the core's
//! decision (`state.rs`); what the agent leaves after the beep is written in
//! `agent/brief.rs`.

use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{debug, Instrument};

use crate::domain::AnsweredBy;
use crate::store::CallStore;

/// How often the session looks for the AMD result.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// Stop looking after this long (Twilio's AMD gives up after 30 s by default).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(75);
/// After deciding to leave a message: hang up anyway if it has not finished
/// playing by then (a message is ~15 s of speech).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(45);

/// Poll the store for `call_sid`'s verdict; the receiver gets the first one
/// seen. The task ends once a verdict is sent, when the receiver is dropped
/// (the call ended), or after [`GIVE_UP_AFTER`].
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
