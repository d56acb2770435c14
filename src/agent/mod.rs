//! What the agent is told and what it may do: the brief built from a
//! reservation, and the tools (`finish_call`, `send_dtmf`) with their schemas
//! and the parsing of the model's calls to them.

pub mod brief;
pub mod tools;

pub use brief::{Brief, BriefOptions};
pub use tools::{ToolCall, ToolError};
