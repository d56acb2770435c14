//! The HTTP contract of `/api/*`: the types both sides of the wire use.
//!
//! The server (`server::api`) sends these and the CLI's client
//! (`cli::client`) reads them back into the same types, so neither side
//! spells an event name or a JSON key by hand, and a change to the wire is a
//! change to one type that both sides (and the tests) see. Another client
//! (the web page) reads the JSON these types make:
//!
//! - [`events`]: the live event stream of one call (`GET /api/calls/{id}/events`):
//!   `snapshot`, `status`, `transcript`, `outcome`, `finished`.
//! - [`error`]: the body of every error answer, `{"error": "...", "code": "...", ...}`,
//!   and the HTTP status each kind of error is sent with.
//!
//! The request body of `POST /api/calls` is [`crate::domain::ReservationRequest`]
//! and the records are [`crate::domain::CallRecord`] / [`crate::domain::CallSummary`]:
//! domain types whose serde form is their wire form.

pub mod error;
pub mod events;

pub use error::{ApiError, ErrorKind};
pub use events::{LineSpoken, LiveEvent, OutcomeRecorded, SseFrame, StatusChanged};
