//! `GET /media-stream`: Twilio's WebSocket upgrade, signature first.

use std::sync::atomic::Ordering;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::auth::twilio_signed;
use super::metrics::StreamGuard;
use super::AppState;
use crate::call::session;

/// Largest Media Stream message accepted (Twilio frames are ~300 bytes; a
/// cap keeps a misbehaving peer from making us buffer megabytes).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Read buffer of a Media Stream socket. tungstenite's default (128 KiB) is
/// allocated per socket and zero-filled on every read: with Twilio's ~400-byte
/// frames that memset was a third of the server's CPU and 128 KiB of RSS per
/// call (docs/PERFORMANCE.md). 4 KiB holds several frames; larger messages
/// are still read whole, in more than one read.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Accept the upgrade only with a valid signature over the `<Stream url>` we
/// published: no Realtime session is ever opened for a forged request.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let url = state.settings.public_url.stream_url();
    if !twilio_signed(&state, &headers, &url, &[]) {
        state.metrics.bad_signatures.fetch_add(1, Ordering::Relaxed);
        warn!("refused a media stream upgrade with a missing or invalid X-Twilio-Signature");
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    let ctx = state.call_context();
    let guard = StreamGuard::new(state.metrics.clone());
    // Counted from now, so the drain on shutdown waits for this call.
    let tracked = state.calls.token();
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            let _guard = guard;
            let _tracked = tracked;
            session::run(ctx, socket).await;
        })
}
