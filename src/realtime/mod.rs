//! The OpenAI Realtime API (GA): wire types, the session configuration for a
//! phone call, and the WebSocket connection.
//!
//! Beta-shaped server events (`response.audio.delta`, …) are accepted too, as
//! aliases, so compatible servers still work; we only ever send GA events.

pub mod client;
pub mod events;

pub use client::{connect, RealtimeConnection, RealtimeError};
pub use events::ServerEvent;
