//! Audio: G.711 mu-law and DTMF tones.
pub mod dtmf;
pub mod mulaw;
