//! Who may knock: the bearer token (or the web page's session) on `/api/*`,
//! and Twilio's request signatures.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use super::AppState;
use crate::contract::ApiError;
use crate::crypto::constant_time_eq;
use crate::twilio::signature;

/// `/api/*` needs `Authorization: Bearer <RESERVOICE_API_TOKEN>` when a token is
/// set, or the web page's session cookie (plus its CSRF token on requests that
/// change something). Without a token only requests addressed to loopback
/// are answered. Whatever the token, a browser request from another site's
/// page may read nothing and change nothing.
pub async fn require_api_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    use crate::web::session::{self, Session};
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if session::from_another_site(request.headers()) {
        return ApiError::forbidden("requests from another site's page are refused")
            .into_response();
    }
    let Some(expected) = &state.settings.api_token else {
        if !session::addressed_to_loopback(request.headers()) {
            return ApiError::forbidden(session::LOOPBACK_ONLY).into_response();
        }
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.trim(), expected.expose_secret()) {
        return next.run(request).await;
    }
    if let Some(signed_in) = Session::from_headers(expected, request.headers(), chrono::Utc::now())
    {
        let csrf = request
            .headers()
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !changes || signed_in.csrf_matches(expected, csrf) {
            return next.run(request).await;
        }
        return ApiError::forbidden("missing or wrong CSRF token (X-CSRF-Token)").into_response();
    }
    ApiError::unauthorized().into_response()
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
