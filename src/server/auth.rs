//! Who may knock: the bearer token on `/api/*`, and Twilio's request signatures.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use super::AppState;
use crate::contract::ApiError;
use crate::crypto::constant_time_eq;
use crate::twilio::signature;

/// `/api/*` needs `Authorization: Bearer <RESERVOICE_API_TOKEN>` when a token is set.
pub async fn require_api_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.settings.api_token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.trim(), expected.expose_secret()) {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// Check `X-Twilio-Signature` for a request to `url` (the URL we published,
/// never one rebuilt from request headers) with form `params`.
pub fn twilio_signed(
    state: &AppState,
    headers: &HeaderMap,
    url: &str,
    params: &[(String, String)],
) -> bool {
    if state.settings.skip_signature {
        return true;
    }
    let Some(sig) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    signature::validate(
        state.settings.twilio.auth_token.expose_secret(),
        url,
        params,
        None,
        sig,
    )
}
