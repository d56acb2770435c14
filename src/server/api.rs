//! `/api/calls`: place a call, read records, follow a call live (SSE).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use futures_util::Stream;
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::AppState;
use crate::domain::reservation::RequestRules;
use crate::domain::{CallStatus, FieldError, Outcome, OutcomeStatus, ReservationRequest};
use crate::store::CallEvent;
use crate::twilio::rest::{CreateCall, TwilioError};
use crate::twilio::twiml;

/// Status-callback events we ask Twilio for.
const STATUS_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];
/// Seconds the restaurant's phone rings before Twilio gives up.
const RING_TIMEOUT_SECS: u32 = 30;

fn unprocessable(errors: Vec<FieldError>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": "invalid reservation request", "errors": errors})),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    warn!(error = %e, "request failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

/// `POST /api/calls`: validate, place the Twilio call with the reservation in
/// the TwiML's stream parameters, store the record, answer `201` with it.
pub async fn create_call(
    State(state): State<AppState>,
    body: Result<Json<ReservationRequest>, JsonRejection>,
) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "the server is shutting down and places no new calls"})),
        )
            .into_response();
    }
    let request = match body {
        Ok(Json(r)) => r,
        Err(rejection) => {
            return unprocessable(vec![FieldError {
                field: "body".into(),
                message: rejection.body_text(),
            }])
        }
    };
    let settings = &state.settings;
    let rules = RequestRules {
        default_timezone: settings.timezone,
        max_party_size: settings.max_party_size,
        dial_policy: settings.dial_policy.clone(),
    };
    let reservation = match request.into_reservation(&rules, Utc::now()) {
        Ok(r) => r,
        Err(errors) => return unprocessable(errors),
    };
    let call_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
    let mut parameters = reservation.to_parameters();
    parameters.push(("call_token".to_string(), call_token.clone()));
    let public = &settings.public_url;
    let doc = match twiml::connect_stream(
        &public.stream_url(),
        Some(&public.stream_status_callback()),
        &parameters,
    ) {
        Ok(doc) => doc,
        Err(e) => {
            return unprocessable(vec![FieldError {
                field: "notes".into(),
                message: format!("the reservation is too long to send: {e}"),
            }])
        }
    };
    let create = CreateCall {
        to: reservation.restaurant_phone.as_str().to_string(),
        from: settings.twilio.from_number.as_str().to_string(),
        twiml: doc,
        status_callback: Some(public.status_callback()),
        status_callback_events: STATUS_EVENTS.iter().map(|s| s.to_string()).collect(),
        timeout_secs: Some(RING_TIMEOUT_SECS),
        // Asynchronous AMD: the stream starts at once; Twilio posts who answered
        // (after a machine's beep) to /twilio/amd, and the session reads it from the store.
        machine_detection: Some("DetectMessageEnd".to_string()),
        async_amd: true,
        async_amd_status_callback: Some(public.amd_callback()),
    };
    info!(to = %reservation.restaurant_phone.masked(), "placing a call: {}", reservation.summary());
    let call = match state.twilio.create_call(&create).await {
        Ok(call) => call,
        Err(e) => {
            state.metrics.calls_refused.fetch_add(1, Ordering::Relaxed);
            warn!(error = %e, "Twilio did not place the call");
            let code = match &e {
                TwilioError::Api { code, .. } => *code,
                _ => None,
            };
            // Keep a record of the attempt, so `calls` shows it and why it failed.
            let id = format!("RF{:032x}", rand::random::<u128>());
            let message = e.to_string();
            let recorded = async {
                state
                    .store
                    .insert(&id, &reservation, &call_token, CallStatus::Failed)
                    .await?;
                state.store.set_error(&id, &message).await?;
                state
                    .store
                    .set_outcome(
                        &id,
                        &Outcome::bare(OutcomeStatus::Failed, Some(message.clone())),
                        crate::domain::OutcomeWrite::Report,
                    )
                    .await?;
                state.store.get(&id).await
            }
            .await;
            let record = match recorded {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "cannot record the refused call");
                    None
                }
            };
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": message, "twilio_code": code, "call": record})),
            )
                .into_response();
        }
    };
    state.metrics.calls_placed.fetch_add(1, Ordering::Relaxed);
    info!(call_sid = %call.sid, "Twilio accepted the call");
    if let Err(e) = state
        .store
        .insert(&call.sid, &reservation, &call_token, CallStatus::Queued)
        .await
    {
        return internal(e);
    }
    match state.store.get(&call.sid).await {
        Ok(Some(record)) => (StatusCode::CREATED, Json(record)).into_response(),
        Ok(None) => internal("the call record vanished"),
        Err(e) => internal(e),
    }
}

/// Query of `GET /api/calls`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// How many (default 50, at most 500).
    pub limit: Option<u32>,
}

/// `GET /api/calls`: newest first.
pub async fn list_calls(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    match state.store.list(q.limit.unwrap_or(50).min(500)).await {
        Ok(calls) => Json(calls).into_response(),
        Err(e) => internal(e),
    }
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no call with id {id}")})),
    )
        .into_response()
}

/// The recording of call `id` on this server, if there is one.
fn recording_file(state: &AppState, id: &str) -> Option<std::path::PathBuf> {
    crate::audio::recording::recording_path(&state.settings.data_dir, id).filter(|p| p.is_file())
}

/// `GET /api/calls/{id}`: the record with its transcript (and where its
/// recording is, when there is one).
pub async fn get_call(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.store.get(&id).await {
        Ok(Some(mut r)) => {
            r.recording = recording_file(&state, &id).map(|p| p.display().to_string());
            Json(r).into_response()
        }
        Ok(None) => not_found(&id),
        Err(e) => internal(e),
    }
}

/// `GET /api/calls/{id}/recording`: the call's stereo WAV (left: the
/// restaurant, right: the agent), 404 when the call was not recorded.
pub async fn get_recording(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(path) = recording_file(&state, &id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no recording for call {id}")})),
        )
            .into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "audio/wav")], bytes).into_response(),
        Err(e) => internal(e),
    }
}

/// `GET /api/calls/{id}/events`: Server-Sent Events. First `snapshot` (the
/// record so far), then `status`, `transcript`, `outcome` as they happen, and
/// `finished` (with the final record) when the call is over.
///
/// Events come from this process's broadcast (instant) and from reading the
/// call store every second (so a call handled by another server instance,
/// sharing the database, is followed too); each line is sent once.
pub async fn call_events(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let mut rx = state.store.subscribe(&id);
    let record = match state.store.get(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&id),
        Err(e) => return internal(e),
    };
    let store = state.store.clone();
    let stream = async_stream(move |tx| async move {
        let mut follower = Follower::new(&record);
        let _ = tx.send(snapshot_event("snapshot", &record)).await;
        if record.is_finished() {
            let _ = tx.send(snapshot_event("finished", &record)).await;
            return;
        }
        let mut poll = tokio::time::interval(Duration::from_secs(1));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let catch_up = tokio::select! {
                event = rx.recv() => match event {
                    Ok(CallEvent::Finished) | Err(RecvError::Closed) | Err(RecvError::Lagged(_)) => true,
                    Ok(event) => match follower.admit(event) {
                        Admit::Send(event) => {
                            if tx.send(live_event(&event)).await.is_err() {
                                return;
                            }
                            false
                        }
                        Admit::Skip => false,
                        Admit::CatchUp => true,
                    },
                },
                _ = poll.tick() => true,
            };
            if !catch_up {
                continue;
            }
            let Ok(Some(record)) = store.get(&id).await else {
                continue;
            };
            for event in follower.missing(&record) {
                if tx.send(live_event(&event)).await.is_err() {
                    return;
                }
            }
            if record.is_finished() {
                let _ = tx.send(snapshot_event("finished", &record)).await;
                return;
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}

/// What one follower has been sent so far.
struct Follower {
    lines: u64,
    status: CallStatus,
    outcome: Option<Outcome>,
}

/// What to do with a broadcast event.
enum Admit {
    Send(CallEvent),
    Skip,
    /// A line is missing before this one: read the store.
    CatchUp,
}

impl Follower {
    fn new(record: &crate::domain::CallRecord) -> Self {
        Follower {
            lines: record.transcript.len() as u64,
            status: record.status,
            outcome: record.outcome.clone(),
        }
    }

    fn admit(&mut self, event: CallEvent) -> Admit {
        match &event {
            CallEvent::Transcript { seq, .. } if *seq == self.lines + 1 => {
                self.lines = *seq;
                Admit::Send(event)
            }
            CallEvent::Transcript { seq, .. } if *seq <= self.lines => Admit::Skip,
            CallEvent::Transcript { .. } => Admit::CatchUp,
            CallEvent::Status { status } if *status == self.status => Admit::Skip,
            CallEvent::Status { status } => {
                self.status = *status;
                Admit::Send(event)
            }
            CallEvent::Outcome { outcome } if self.outcome.as_ref() == Some(outcome) => Admit::Skip,
            CallEvent::Outcome { outcome } => {
                self.outcome = Some(outcome.clone());
                Admit::Send(event)
            }
            CallEvent::Finished => Admit::CatchUp,
        }
    }

    /// Events for whatever the store has that this follower was not sent.
    fn missing(&mut self, record: &crate::domain::CallRecord) -> Vec<CallEvent> {
        let mut out = Vec::new();
        if record.status != self.status {
            self.status = record.status;
            out.push(CallEvent::Status {
                status: record.status,
            });
        }
        for (ix, line) in record
            .transcript
            .iter()
            .enumerate()
            .skip(self.lines as usize)
        {
            out.push(CallEvent::Transcript {
                line: line.clone(),
                seq: ix as u64 + 1,
            });
        }
        self.lines = self.lines.max(record.transcript.len() as u64);
        if record.outcome.is_some() && record.outcome != self.outcome {
            self.outcome = record.outcome.clone();
            if let Some(outcome) = &record.outcome {
                out.push(CallEvent::Outcome {
                    outcome: outcome.clone(),
                });
            }
        }
        out
    }
}

fn live_event(event: &CallEvent) -> Event {
    Event::default()
        .event(event.name())
        .json_data(event)
        .unwrap_or_default()
}

fn snapshot_event(name: &str, record: &crate::domain::CallRecord) -> Event {
    Event::default()
        .event(name)
        .json_data(record)
        .unwrap_or_default()
}

/// A stream fed by a task through a small channel.
fn async_stream<F, Fut>(producer: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(producer(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
