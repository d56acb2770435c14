//! Answering machines: telling the live session who answered.
//!
//! Twilio's asynchronous AMD result is a webhook (`POST /twilio/amd`) that may
//! reach any server instance, not necessarily the one holding the Media
//! Stream. So the webhook only writes the verdict ([`AnsweredBy`]) to the call
//! store, and the session holding the stream waits for it through the store's
//! news ([`CallStore::answered_by_verdict`]): on PostgreSQL the verdict's
//! notification wakes it, whichever instance wrote it; on SQLite (one machine)
//! this process's news does, and the process reads the verdicts of all its
//! waiting calls in one statement every half second (for another process's).
//! Memory shared between requests is never relied on. What the call does with the verdict is the
//! core's decision (`state.rs`); what the agent leaves after the beep is
//! written in `agent/brief.rs`.

use std::time::Duration;

use tokio::sync::oneshot;
use tracing::Instrument;

use crate::domain::AnsweredBy;
use crate::store::CallStore;

/// Stop waiting after this long (Twilio's AMD gives up after 30 s by default).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(75);
/// After deciding to leave a message: hang up anyway if it has not finished
/// playing by then (a message is ~15 s of speech).
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(45);

/// Wait for `call_sid`'s verdict in the store's news; the receiver gets it
/// once known. The task ends once a verdict is sent, when the receiver is
/// dropped (the call ended), or after [`GIVE_UP_AFTER`] (the sender is then
/// dropped, and the receiver sees no verdict).
pub fn watch_answered_by(store: CallStore, call_sid: String) -> oneshot::Receiver<AnsweredBy> {
    let (mut tx, rx) = oneshot::channel();
    tokio::spawn(
        async move {
            tokio::select! {
                who = store.answered_by_verdict(&call_sid, GIVE_UP_AFTER) => {
                    if let Some(who) = who {
                        let _ = tx.send(who);
                    }
                }
                _ = tx.closed() => {}
            }
        }
        .in_current_span(),
    );
    rx
}
