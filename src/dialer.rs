//! Placing a call: from a person's request to a call Twilio is dialling and a
//! record in the call store.
//!
//! `POST /api/calls` is one way in; the web page and tests are others. They
//! all come here, so a call is placed one way: the reservation is checked,
//! written into the TwiML as `<Parameter>`s with a fresh call token, Twilio
//! is asked to dial (with status callbacks and answering-machine detection),
//! and the record is stored. When Twilio refuses, the attempt is recorded
//! too, so `calls` lists it with the reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use rand::distributions::{Alphanumeric, DistString};
use tracing::{info, warn};

use crate::config::Settings;
use crate::domain::reservation::param;
use crate::domain::{
    CallRecord, CallStatus, FieldError, Outcome, OutcomeStatus, OutcomeWrite, Reservation,
    ReservationRequest,
};
use crate::server::metrics::Metrics;
use crate::store::{CallStore, StoreError};
use crate::twilio::rest::{CreateCall, TwilioClient, TwilioError};
use crate::twilio::twiml;

/// Status-callback events we ask Twilio for.
const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];
/// Seconds the restaurant's phone rings before Twilio gives up.
const RING_TIMEOUT_SECS: u32 = 30;

/// Why a call was not placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The server is draining before it stops.
    #[error("the server is shutting down and places no new calls")]
    ShuttingDown,
    /// The request is not a valid reservation: one message per field.
    #[error("invalid reservation request")]
    Invalid(Vec<FieldError>),
    /// Twilio did not place the call. The attempt is recorded (`record`,
    /// when the store could write it).
    #[error("{message}")]
    Refused {
        /// Twilio's words (or why it could not be reached).
        message: String,
        /// Twilio's error code, when it gave one.
        twilio_code: Option<i64>,
        /// The recorded attempt (status `failed`).
        record: Option<Box<CallRecord>>,
    },
    /// The call store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record was written but could not be read back.
    #[error("call {0} was placed but its record is missing")]
    RecordMissing(String),
}

/// Places calls (cheap to clone).
#[derive(Clone, Debug)]
pub struct Dialer {
    /// Limits, the public URL the TwiML points at, the number calls come from.
    pub settings: Arc<Settings>,
    /// Where records go.
    pub store: CallStore,
    /// Twilio's REST API.
    pub twilio: TwilioClient,
    /// Counts placed and refused calls.
    pub metrics: Arc<Metrics>,
    /// Set once the server drains before it stops: nothing new is placed.
    pub draining: Arc<AtomicBool>,
}

impl Dialer {
    /// Check `request` (every field, the date and time resolved now) and place
    /// the call. Returns the stored record (`queued`).
    pub async fn place(&self, request: ReservationRequest) -> Result<CallRecord, PlaceError> {
        self.open_for_calls()?;
        let rules = self.settings.request_rules();
        let reservation = request
            .into_reservation(&rules, Utc::now())
            .map_err(PlaceError::Invalid)?;
        self.place_reservation(reservation).await
    }

    /// Place a call for a reservation already checked.
    pub async fn place_reservation(
        &self,
        reservation: Reservation,
    ) -> Result<CallRecord, PlaceError> {
        self.open_for_calls()?;
        let call_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        let create = self.create_request(&reservation, &call_token)?;
        info!(to = %reservation.restaurant_phone.masked(), "placing a call: {}", reservation.summary());
        let call = match self.twilio.create_call(&create).await {
            Ok(call) => call,
            Err(e) => return Err(self.refused(e, &reservation, &call_token).await),
        };
        self.metrics.calls_placed.fetch_add(1, Ordering::Relaxed);
        info!(call_sid = %call.sid, "Twilio accepted the call");
        self.store
            .insert(&call.sid, &reservation, &call_token, CallStatus::Queued)
            .await?;
        self.store
            .get(&call.sid)
            .await?
            .ok_or(PlaceError::RecordMissing(call.sid))
    }

    /// Refuse while the server drains before it stops.
    fn open_for_calls(&self) -> Result<(), PlaceError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(PlaceError::ShuttingDown);
        }
        Ok(())
    }

    /// Twilio's create-call request: TwiML that opens the Media Stream with
    /// the reservation and the call token as parameters, status callbacks,
    /// asynchronous answering-machine detection.
    fn create_request(
        &self,
        reservation: &Reservation,
        call_token: &str,
    ) -> Result<CreateCall, PlaceError> {
        let mut parameters = reservation.to_parameters();
        parameters.push((param::CALL_TOKEN.to_string(), call_token.to_string()));
        let public = &self.settings.public_url;
        let twiml = twiml::connect_stream(
            &public.stream_url(),
            Some(&public.stream_status_callback()),
            &parameters,
        )
        .map_err(|e| {
            PlaceError::Invalid(vec![FieldError {
                field: "notes".into(),
                message: format!("the reservation is too long to send: {e}"),
            }])
        })?;
        Ok(CreateCall {
            to: reservation.restaurant_phone.as_str().to_string(),
            from: self.settings.twilio.from_number.as_str().to_string(),
            twiml,
            status_callback: Some(public.status_callback()),
            status_callback_events: STATUS_EVENTS.iter().map(|s| s.to_string()).collect(),
            timeout_secs: Some(RING_TIMEOUT_SECS),
            // Asynchronous AMD: the stream starts at once; Twilio posts who answered
            // (after a machine's beep) to /twilio/amd, and the session reads it from the store.
            machine_detection: Some("DetectMessageEnd".to_string()),
            async_amd: true,
            async_amd_status_callback: Some(public.amd_callback()),
        })
    }

    /// Count and record a call Twilio did not place, so `calls` shows it and why.
    async fn refused(
        &self,
        e: TwilioError,
        reservation: &Reservation,
        call_token: &str,
    ) -> PlaceError {
        self.metrics.calls_refused.fetch_add(1, Ordering::Relaxed);
        warn!(error = %e, "Twilio did not place the call");
        let twilio_code = match &e {
            TwilioError::Api { code, .. } => *code,
            _ => None,
        };
        let id = format!("RF{:032x}", rand::random::<u128>());
        let message = e.to_string();
        let recorded = async {
            self.store
                .insert(&id, reservation, call_token, CallStatus::Failed)
                .await?;
            self.store.set_error(&id, &message).await?;
            self.store
                .set_outcome(
                    &id,
                    &Outcome::bare(OutcomeStatus::Failed, Some(message.clone())),
                    OutcomeWrite::Report,
                )
                .await?;
            self.store.get(&id).await
        }
        .await;
        let record = recorded.unwrap_or_else(|e| {
            warn!(error = %e, "cannot record the refused call");
            None
        });
        let record = record.map(Box::new);
        PlaceError::Refused {
            message,
            twilio_code,
            record,
        }
    }
}
