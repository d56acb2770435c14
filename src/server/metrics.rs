//! `/metrics`: a few counters in Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;

use super::AppState;

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Calls Twilio accepted.
    pub calls_placed: AtomicU64,
    /// Calls Twilio refused.
    pub calls_refused: AtomicU64,
    /// Media streams currently open.
    pub active_streams: AtomicU64,
    /// Media streams ever accepted.
    pub streams_total: AtomicU64,
    /// Requests refused for a bad or missing Twilio signature.
    pub bad_signatures: AtomicU64,
    /// Calls of a stopped instance this instance finished (expired leases).
    pub calls_reaped: AtomicU64,
}

/// Decrements `active_streams` when a stream ends, however it ends.
pub struct StreamGuard(pub Arc<Metrics>);

impl StreamGuard {
    /// Count a stream in.
    pub fn new(m: Arc<Metrics>) -> Self {
        m.active_streams.fetch_add(1, Ordering::Relaxed);
        m.streams_total.fetch_add(1, Ordering::Relaxed);
        StreamGuard(m)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.active_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Render the counters.
pub async fn render(State(state): State<AppState>) -> String {
    let m = &state.metrics;
    let line = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
        format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
            v.load(Ordering::Relaxed)
        )
    };
    [
        line(
            "reservoice_calls_placed_total",
            "counter",
            "Calls accepted by Twilio.",
            &m.calls_placed,
        ),
        line(
            "reservoice_calls_refused_total",
            "counter",
            "Calls refused by Twilio.",
            &m.calls_refused,
        ),
        line(
            "reservoice_media_streams_active",
            "gauge",
            "Media streams open now.",
            &m.active_streams,
        ),
        line(
            "reservoice_media_streams_total",
            "counter",
            "Media streams accepted.",
            &m.streams_total,
        ),
        line(
            "reservoice_bad_signatures_total",
            "counter",
            "Twilio requests refused for their signature.",
            &m.bad_signatures,
        ),
        line(
            "reservoice_calls_reaped_total",
            "counter",
            "Calls of a stopped server finished by this one.",
            &m.calls_reaped,
        ),
    ]
    .concat()
}
