//! Everything Twilio.
pub mod stream;
