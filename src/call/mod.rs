//! One live call: the session that joins a Twilio Media Stream to a Realtime
//! connection, playback tracking for barge-in, and the end of the call.
pub mod playback;
