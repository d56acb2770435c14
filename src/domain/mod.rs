//! The nouns of the problem, valid by construction ("parse, don't validate").
//!
//! Everything that arrives from a person or a wire is parsed into one of these
//! types once, at the edge; code further in trusts the type and never re-checks.

pub mod answered_by;
pub mod continuation;
pub mod language;
pub mod outcome;
pub mod phone;
pub mod record;
pub mod reservation;
pub mod spoken;
pub mod when;
pub mod zones;

pub use answered_by::AnsweredBy;
pub use continuation::StreamContinuation;
pub use language::{BaseLanguage, Language, LanguageError};
pub use outcome::{Outcome, OutcomeStatus, OutcomeWrite};
pub use phone::PhoneNumber;
pub use record::{CallRecord, CallStatus, CallSummary, Speaker, TranscriptLine};
pub use reservation::{
    FieldError, Flexibility, Name, Notes, PartySize, Reservation, ReservationRequest, Slot,
};
