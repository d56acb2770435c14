//! Twilio's webhooks: call status, stream status and answering-machine results.
//! Each is signed; a request that does not verify changes nothing.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tracing::{info, warn};

use super::auth::twilio_signed;
use super::AppState;
use crate::domain::{AnsweredBy, CallStatus};

fn form(body: &Bytes) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).ok()
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn verified(
    state: &AppState,
    headers: &HeaderMap,
    url: &str,
    body: &Bytes,
) -> Result<Vec<(String, String)>, StatusCode> {
    let Some(params) = form(body) else {
        return Err(StatusCode::BAD_REQUEST);
    };
    if !twilio_signed(state, headers, url, &params) {
        state.metrics.bad_signatures.fetch_add(1, Ordering::Relaxed);
        warn!(
            url,
            "refused a webhook with a missing or invalid X-Twilio-Signature"
        );
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(params)
}

/// `POST /twilio/status`: call progress (initiated, ringing, answered, completed…).
pub async fn call_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let params = match verified(
        &state,
        &headers,
        &state.settings.public_url.status_callback(),
        &body,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (Some(call_sid), Some(status_text)) = (get(&params, "CallSid"), get(&params, "CallStatus"))
    else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(status) = CallStatus::parse(status_text) else {
        warn!(
            call_sid,
            status = status_text,
            "unknown call status ignored"
        );
        return StatusCode::NO_CONTENT;
    };
    let sequence = get(&params, "SequenceNumber").and_then(|s| s.parse::<i64>().ok());
    let sip = get(&params, "SipResponseCode").unwrap_or("");
    // Only an unanswered call needs the reason; an answered one ends with 200.
    let reason = match status {
        CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Failed => {
            crate::twilio::sip::reason(sip)
        }
        _ => None,
    };
    match state
        .store
        .apply_status_with_reason(call_sid, status, sequence, reason)
        .await
    {
        Ok(true) => {
            info!(
                call_sid,
                status = status.as_str(),
                sequence,
                sip,
                "call status"
            );
            StatusCode::NO_CONTENT
        }
        Ok(false) => StatusCode::NO_CONTENT,
        Err(e) => {
            warn!(call_sid, error = %e, "cannot record a call status");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `POST /twilio/stream-status`: stream lifecycle; the only place a failed
/// handshake (error 31920) becomes visible.
pub async fn stream_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let params = match verified(
        &state,
        &headers,
        &state.settings.public_url.stream_status_callback(),
        &body,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let call_sid = get(&params, "CallSid").unwrap_or("?");
    let event = get(&params, "StreamEvent").unwrap_or("?");
    match get(&params, "StreamError") {
        Some(err) => {
            warn!(
                call_sid,
                event,
                error = err,
                "media stream error reported by Twilio"
            );
            let _ = state
                .store
                .set_error(call_sid, &format!("Twilio media stream error: {err}"))
                .await;
        }
        None => info!(call_sid, event, "media stream status"),
    }
    StatusCode::NO_CONTENT
}

/// `POST /twilio/amd`: asynchronous answering-machine detection result.
pub async fn amd_result(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let params = match verified(
        &state,
        &headers,
        &state.settings.public_url.amd_callback(),
        &body,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (Some(call_sid), Some(text)) = (get(&params, "CallSid"), get(&params, "AnsweredBy")) else {
        return StatusCode::NO_CONTENT;
    };
    // Parsed here, once: the store and the live call only see the enum.
    let Some(answered_by) = AnsweredBy::parse(text) else {
        warn!(
            call_sid,
            answered_by = text,
            "unknown answering machine verdict ignored"
        );
        return StatusCode::NO_CONTENT;
    };
    info!(call_sid, %answered_by, "answering machine detection");
    if let Err(e) = state.store.set_answered_by(call_sid, answered_by).await {
        warn!(call_sid, error = %e, "cannot record who answered");
    }
    StatusCode::NO_CONTENT
}
