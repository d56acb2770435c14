//! Helpers shared by the end-to-end test files.

use std::time::Duration;

#[allow(dead_code)] // only the fleet tests start several processes
pub mod fleet;
#[allow(dead_code)] // only the PostgreSQL tests cut their database
pub mod proxy;
#[allow(dead_code)] // only the key-press tests switch instances
pub mod switch;

use reservoice::cli::client::ApiClient;
use reservoice::cli::render;
use reservoice::domain::{CallRecord, ReservationRequest};
use reservoice::sim::rig::Rig;
use serde_json::Value;

/// Place `request` through the API and follow the call to its end: returns
/// the record as placed and the final record.
#[allow(dead_code)] // not every test file uses it
pub async fn place_and_follow(rig: &Rig, request: &ReservationRequest) -> (CallRecord, CallRecord) {
    let client = ApiClient::new(&rig.server_url, None).unwrap();
    let placed = client.create_call(request).await.expect("call placed");
    let done = tokio::time::timeout(
        Duration::from_secs(90),
        render::follow(&client, &placed.id, true),
    )
    .await
    .expect("call finishes within 90 s")
    .expect("events followed");
    assert!(done.is_finished(), "{done:?}");
    (placed, done)
}

/// Every client event of the call's one model session.
#[allow(dead_code)] // not every test file uses it
pub fn model_events(rig: &Rig) -> Vec<Value> {
    let sessions = rig.model.as_ref().expect("stand-in model").sessions();
    assert_eq!(sessions.len(), 1, "one model session per call");
    sessions[0].client_events.clone()
}

/// Poll `store` until `ready` holds for call `id` (at most 30 s).
#[allow(dead_code)] // only the tests that watch a shared store use it
pub async fn wait_for(
    store: &reservoice::store::CallStore,
    id: &str,
    what: &str,
    ready: impl Fn(&CallRecord) -> bool,
) -> CallRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(r)) = store.get(id).await {
            if ready(&r) {
                return r;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines `speaker` said, in order.
#[allow(dead_code)] // not every test binary reads transcripts
pub fn said_by(
    transcript: &[reservoice::domain::TranscriptLine],
    speaker: reservoice::domain::Speaker,
) -> Vec<&str> {
    transcript
        .iter()
        .filter(|l| l.speaker == speaker)
        .map(|l| l.text.as_str())
        .collect()
}

/// The transcript says exactly what was said, once, in order: the host's
/// lines as the telephone played them (`call`), the agent's as `script` has
/// them, on a clock that never goes back.
#[allow(dead_code)] // only the tests that check a whole transcript use it
pub fn assert_everything_said_is_written(
    call: &reservoice::sim::telephone::SimCall,
    script: &reservoice::sim::scenario::Scenario,
    record: &CallRecord,
) {
    use reservoice::domain::Speaker;
    let callee = said_by(&record.transcript, Speaker::Callee);
    let host: Vec<&str> = call
        .host_lines_spoken
        .iter()
        .map(|c| reservoice::sim::scenario::clip_text(c))
        .collect();
    assert_eq!(callee, host, "every host line, once, in order");
    let agent = said_by(&record.transcript, Speaker::Agent);
    let said: Vec<&str> = script
        .agent
        .iter()
        .filter_map(|r| r.say.as_deref())
        .collect();
    assert_eq!(agent, said, "every agent line, once, in order");
    let t = &record.transcript;
    assert!(t.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "{t:?}");
}
