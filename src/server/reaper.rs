//! The reaper: every instance looks for calls whose server stopped (their
//! lease expired, see `store::lease`), finishes their records and hangs up
//! their phone lines through Twilio's REST API, in case a line is still open.
//! The store makes sure only one instance reaps a given call.

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};

use super::AppState;

/// Run the reaper of this instance until the server shuts down.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    let timings = state.settings.store.lease;
    let span = tracing::info_span!("reaper", instance = %state.store.instance());
    tokio::spawn(
        async move {
            // When this instance's database connection last started working.
            let mut up_since: Option<Instant> = None;
            let mut tick = tokio::time::interval(timings.reap_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = state.store.closed() => return,
                }
                // After a database outage, every holder first gets the time
                // to renew its leases: they expired for lack of a database,
                // not of a server.
                let steady = up_since.is_some_and(|t| t.elapsed() >= timings.reap_grace);
                if !steady {
                    match state.store.ping().await {
                        Ok(()) => {
                            up_since.get_or_insert_with(Instant::now);
                        }
                        Err(e) => {
                            debug!(error = %e, "database unreachable; not reaping");
                            up_since = None;
                        }
                    }
                    continue;
                }
                match state.store.reap_expired().await {
                    Ok(reaped) => {
                        for call in reaped {
                            state.metrics.calls_reaped.fetch_add(1, Ordering::Relaxed);
                            if call.was_live {
                                hang_up(&state, &call.id).await;
                            }
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "cannot look for expired leases; not reaping");
                        up_since = None;
                    }
                }
            }
        }
        .instrument(span),
    )
}

async fn hang_up(state: &AppState, call_sid: &str) {
    match state.twilio.hang_up(call_sid).await {
        Ok(_) => info!(call_sid, "hung up the call of a stopped server"),
        Err(e) => {
            warn!(call_sid, error = %e, "could not hang up the call of a stopped server (it may have ended already)")
        }
    }
}
