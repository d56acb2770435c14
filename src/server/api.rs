//! `/api/calls`: place a call, read records, follow a call live (SSE).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tracing::warn;

use super::AppState;
use crate::contract::{ApiError, LineSpoken, LiveEvent, OutcomeRecorded, StatusChanged};
use crate::dialer::PlaceError;
use crate::domain::{CallRecord, FieldError, ReservationRequest};
use crate::store::{CallEvent, Followed, StoreError};

impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> Self {
        match e {
            PlaceError::ShuttingDown => ApiError::shutting_down(),
            PlaceError::Invalid(errors) => ApiError::invalid(errors),
            PlaceError::Refused {
                message,
                twilio_code,
                record,
            } => ApiError::call_not_placed(message, twilio_code, record),
            e @ (PlaceError::Store(_) | PlaceError::RecordMissing(_)) => ApiError::internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

/// The body did not read as the JSON expected: a `422` naming the body.
fn unreadable(field: &str, message: String) -> ApiError {
    ApiError::invalid(vec![FieldError {
        field: field.into(),
        message,
    }])
}

/// `POST /api/calls`: place the call (`dialer::Dialer::place`), answer `201`
/// with its record.
pub async fn create_call(
    State(state): State<AppState>,
    body: Result<Json<ReservationRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(request) = body.map_err(|r| unreadable("body", r.body_text()))?;
    let record = state.dialer().place(request).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Query of `GET /api/calls`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// How many (default 50, at most 500).
    pub limit: Option<u32>,
}

/// `GET /api/calls`: newest first.
pub async fn list_calls(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|r| unreadable("limit", r.body_text()))?;
    Ok(Json(
        state.store.list(q.limit.unwrap_or(50).min(500)).await?,
    ))
}

fn no_such_call(id: &str) -> ApiError {
    ApiError::not_found(format!("no call with id {id}"))
}

/// The recording of call `id` on this server, if there is one.
fn recording_file(state: &AppState, id: &str) -> Option<std::path::PathBuf> {
    crate::audio::recording::recording_path(&state.settings.data_dir, id).filter(|p| p.is_file())
}

/// `GET /api/calls/{id}`: the record with its transcript (and where its
/// recording is, when there is one).
pub async fn get_call(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CallRecord>, ApiError> {
    let mut record = state
        .store
        .get(&id)
        .await?
        .ok_or_else(|| no_such_call(&id))?;
    record.recording = recording_file(&state, &id).map(|p| p.display().to_string());
    Ok(Json(record))
}

/// `GET /api/calls/{id}/recording`: the call's stereo WAV (left: the
/// restaurant, right: the agent), 404 when the call was not recorded.
pub async fn get_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let path = recording_file(&state, &id)
        .ok_or_else(|| ApiError::not_found(format!("no recording for call {id}")))?;
    let bytes = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
    Ok(([(axum::http::header::CONTENT_TYPE, "audio/wav")], bytes))
}

/// `GET /api/calls/{id}/events`: Server-Sent Events. First `snapshot` (the
/// record so far), then `status`, `transcript`, `outcome` as they happen, and
/// `finished` (with the final record) when the call is over. Whichever
/// instance handles the call, each line is sent once, in order
/// ([`crate::store::CallStore::follow`]).
pub async fn call_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let follow = state
        .store
        .follow(&id)
        .await?
        .ok_or_else(|| no_such_call(&id))?;
    let stream = follow.map(|followed| Ok(sse_event(&live_event(followed))));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}

/// What the store's follower says, as the HTTP contract says it.
fn live_event(followed: Followed) -> LiveEvent {
    match followed {
        Followed::Snapshot(record) => LiveEvent::Snapshot(Box::new(record)),
        Followed::Finished(record) => LiveEvent::Finished(Box::new(record)),
        Followed::Event(CallEvent::Transcript { line, seq }) => {
            LiveEvent::Transcript(LineSpoken { line, seq })
        }
        Followed::Event(CallEvent::Status { status }) => {
            LiveEvent::Status(StatusChanged { status })
        }
        Followed::Event(CallEvent::Outcome { outcome }) => {
            LiveEvent::Outcome(OutcomeRecorded { outcome })
        }
    }
}

/// One live event as an SSE frame (`contract::LiveEvent::to_frame`).
fn sse_event(event: &LiveEvent) -> Event {
    match event.to_frame() {
        Ok(frame) => Event::default().event(frame.event).data(frame.data),
        Err(e) => {
            warn!(error = %e, event = event.name(), "cannot write a live event");
            Event::default().comment("an event could not be written")
        }
    }
}
