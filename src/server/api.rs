//! `/api/calls`: place a call, read records, follow a call live (SSE).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use super::AppState;
use crate::contract::{ApiError, LineSpoken, LiveEvent, OutcomeRecorded, StatusChanged};
use crate::dialer::PlaceError;
use crate::domain::{CallRecord, CallStatus, FieldError, Outcome, ReservationRequest};
use crate::store::{CallEvent, StoreError};

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
/// `finished` (with the final record) when the call is over.
///
/// Events come from this process's broadcast (instant) and from reading the
/// call store every second (so a call handled by another server instance,
/// sharing the database, is followed too); each line is sent once.
pub async fn call_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut rx = state.store.subscribe(&id);
    let record = state
        .store
        .get(&id)
        .await?
        .ok_or_else(|| no_such_call(&id))?;
    let store = state.store.clone();
    let stream = async_stream(move |tx| async move {
        let send = |event: LiveEvent| {
            let tx = tx.clone();
            async move { tx.send(sse_event(&event)).await.is_ok() }
        };
        let mut follower = Follower::new(&record);
        if !send(LiveEvent::Snapshot(Box::new(record.clone()))).await {
            return;
        }
        if record.is_finished() {
            send(LiveEvent::Finished(Box::new(record))).await;
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
                            if !send(event).await {
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
                if !send(event).await {
                    return;
                }
            }
            if record.is_finished() {
                send(LiveEvent::Finished(Box::new(record))).await;
                return;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}

/// What one follower has been sent so far.
struct Follower {
    lines: u64,
    status: CallStatus,
    outcome: Option<Outcome>,
}

/// What to do with a broadcast event.
enum Admit {
    Send(LiveEvent),
    Skip,
    /// A line is missing before this one, or the call finished: read the store.
    CatchUp,
}

impl Follower {
    fn new(record: &CallRecord) -> Self {
        Follower {
            lines: record.transcript.len() as u64,
            status: record.status,
            outcome: record.outcome.clone(),
        }
    }

    fn admit(&mut self, event: CallEvent) -> Admit {
        match event {
            CallEvent::Transcript { line, seq } if seq == self.lines + 1 => {
                self.lines = seq;
                Admit::Send(LiveEvent::Transcript(LineSpoken { line, seq }))
            }
            CallEvent::Transcript { seq, .. } if seq <= self.lines => Admit::Skip,
            CallEvent::Transcript { .. } => Admit::CatchUp,
            CallEvent::Status { status } if status == self.status => Admit::Skip,
            CallEvent::Status { status } => {
                self.status = status;
                Admit::Send(LiveEvent::Status(StatusChanged { status }))
            }
            CallEvent::Outcome { outcome } if self.outcome.as_ref() == Some(&outcome) => {
                Admit::Skip
            }
            CallEvent::Outcome { outcome } => {
                self.outcome = Some(outcome.clone());
                Admit::Send(LiveEvent::Outcome(OutcomeRecorded { outcome }))
            }
            CallEvent::Finished => Admit::CatchUp,
        }
    }

    /// Events for whatever the store has that this follower was not sent.
    fn missing(&mut self, record: &CallRecord) -> Vec<LiveEvent> {
        let mut out = Vec::new();
        if record.status != self.status {
            self.status = record.status;
            out.push(LiveEvent::Status(StatusChanged {
                status: record.status,
            }));
        }
        for (ix, line) in record
            .transcript
            .iter()
            .enumerate()
            .skip(self.lines as usize)
        {
            out.push(LiveEvent::Transcript(LineSpoken {
                line: line.clone(),
                seq: ix as u64 + 1,
            }));
        }
        self.lines = self.lines.max(record.transcript.len() as u64);
        if record.outcome.is_some() && record.outcome != self.outcome {
            self.outcome = record.outcome.clone();
            if let Some(outcome) = &record.outcome {
                out.push(LiveEvent::Outcome(OutcomeRecorded {
                    outcome: outcome.clone(),
                }));
            }
        }
        out
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
