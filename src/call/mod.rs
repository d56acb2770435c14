//! One live call: the call core that decides everything (`state.rs`, no I/O,
//! no clock), which of the callee's frames may wait to be joined into one
//! append (`joining.rs`), the session that drives it between a Twilio Media Stream and a
//! Realtime connection, playback tracking for barge-in, and the
//! answering-machine verdict, and the registry that hands a call's next
//! stream (after a key press through Twilio) to the session holding it.

pub mod joining;
pub mod playback;
pub mod rejoin;
pub mod session;
pub mod state;
pub mod voicemail;
pub mod wakes;

use std::sync::Arc;

use crate::config::Settings;
use crate::store::CallStore;
use crate::twilio::rest::TwilioClient;

/// What every live call needs from the server (cheap to clone).
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Settings (Realtime endpoint, timings, limits).
    pub settings: Arc<Settings>,
    /// Where records, transcripts and outcomes go.
    pub store: CallStore,
    /// To hang up or redirect the call.
    pub twilio: TwilioClient,
    /// Cancelled when the drain time after a shutdown signal is over: live
    /// calls then end politely.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// This instance's sessions waiting for their call's next stream.
    pub rejoins: rejoin::Rejoins,
}
