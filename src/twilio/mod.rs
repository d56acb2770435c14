//! The Twilio side of a call: placing and ending it over REST, the TwiML that
//! opens the Media Stream, the Media Stream's wire format, and webhook
//! signature checks.

pub mod rest;
pub mod signature;
pub mod sip;
pub mod stream;
pub mod twiml;
