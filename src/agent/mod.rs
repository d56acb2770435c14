//! What the agent is told and what it may do: the brief and the voicemail
//! message built from a reservation, every other sentence the server says or
//! tells the model ([`Phrases`]), and the tools (`finish_call`, `send_dtmf`)
//! with their schemas and the parsing of the model's calls to them.
//!
//! No sentence meant for the model or the callee is written anywhere else,
//! so a call in another language needs another brief and `Phrases`, not a
//! change to the call core.

pub mod brief;
pub mod phrases;
pub mod tools;

pub use brief::{Brief, BriefOptions};
pub use phrases::Phrases;
pub use tools::{ToolCall, ToolError};
