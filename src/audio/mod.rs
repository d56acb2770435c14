//! Audio helpers shared by the product and the simulators.
//!
//! Twilio Media Streams and the OpenAI Realtime API (`audio/pcmu`) both carry
//! G.711 mu-law at 8 kHz, so the bytes pass through unchanged; decoding is
//! only needed for DTMF tones, level meters, VADs and synthesised test audio.

pub mod dtmf;
pub mod mulaw;
pub mod recording;
