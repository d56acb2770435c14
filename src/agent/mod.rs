//! What the agent is told and what it may do: the brief built from a
//! reservation, what the model is told during the call ([`Prompts`]), and
//! the tools (`finish_call`, `send_dtmf`) with their schemas and the parsing
//! of the model's calls to them.
//!
//! With [`crate::phrases`] (what the restaurant hears from the server
//! itself, in the call's language) these are every sentence of a call: the
//! call core writes none of its own.

pub mod brief;
pub mod prompts;
pub mod tools;

pub use brief::{Brief, BriefOptions};
pub use prompts::Prompts;
pub use tools::{ToolCall, ToolError};
