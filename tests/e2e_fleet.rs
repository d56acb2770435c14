//! Proof with real processes: three `reservoice serve` instances (the built
//! binary) on one PostgreSQL database, behind one public address. The
//! telephone sends status callbacks to A, opens the Media Stream on B and
//! posts the answering-machine callback to C, each signed for the public
//! address; `reservoice call` places the call on C and follows it there.
//! Then B dies (SIGKILL) in the middle of a call, and a survivor finishes it.
//!
//! Each test makes its own database and drops it afterwards. Without a
//! PostgreSQL server they are skipped with a note (they fail under `CI=true`).

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use reservoice::cli::client::ApiClient;
use reservoice::cli::render;
use reservoice::domain::{CallStatus, OutcomeStatus, ReservationRequest};
use reservoice::sim::telephone::{Route, Routes, SimCall};
use reservoice::store::CallStore;

mod common;
use common::fleet::{Fleet, HoldingRelay, RESTAURANT};
use common::wait_for;

/// `reservoice call` for the scenario's booking (tomorrow at 7pm, 4 people).
const CALL: &[&str] = &[
    "call",
    "--to",
    RESTAURANT,
    "--restaurant",
    "Chez Demo",
    "--party-size",
    "4",
    "--date",
    "tomorrow",
    "--time",
    "7pm",
    "--name",
    "Alex Doe",
    "--flexibility",
    "30m",
    "--timezone",
    "UTC",
];

/// The same request through the API.
fn request() -> ReservationRequest {
    ReservationRequest {
        to: RESTAURANT.into(),
        restaurant: "Chez Demo".into(),
        party_size: 4,
        date: "tomorrow".into(),
        time: "7pm".into(),
        name: "Alex Doe".into(),
        flexibility: Some("30m".into()),
        timezone: Some("UTC".into()),
        ..Default::default()
    }
}

/// Run `test`; if it fails, print every instance's log first.
async fn with_logs(fleet: &Fleet, test: impl Future<Output = ()>) {
    if let Err(panic) = std::panic::AssertUnwindSafe(test).catch_unwind().await {
        eprintln!("{}", fleet.logs());
        std::panic::resume_unwind(panic);
    }
}

/// Every request of `call` of `kind` went to `addr`, and there was one.
fn all_routed(call: &SimCall, kind: Route, addr: std::net::SocketAddr) {
    let went: Vec<_> = call
        .routed
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, a)| *a)
        .collect();
    assert!(!went.is_empty(), "no {kind:?} request: {:?}", call.routed);
    assert!(went.iter().all(|a| *a == addr), "{kind:?}: {went:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_spread_over_three_instances_is_followed_once_in_order() {
    let Some(fleet) = Fleet::start(&["A", "B", "C"], 20).await else {
        return;
    };
    let (a, b, c) = (
        fleet.instance("A"),
        fleet.instance("B"),
        fleet.instance("C"),
    );
    fleet.route(Routes {
        status: Some(a.addr),
        stream: Some(b.addr),
        amd: Some(c.addr),
    });
    with_logs(&fleet, async {
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
                .args(CALL)
                .env("RESERVOICE_SERVER", &c.url)
                .env_remove("RESERVOICE_API_TOKEN")
                .env("NO_COLOR", "1")
                .output(),
        )
        .await
        .expect("the call ends within 120 s")
        .expect("reservoice call runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "booked (an alternative): exit 0\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );

        let calls = fleet.phone.calls();
        assert_eq!(calls.len(), 1, "one call placed");
        let call = fleet
            .phone
            .wait_ended(&calls[0].call_sid, Duration::from_secs(20))
            .await
            .expect("the telephone ended the call");
        let observer = CallStore::open(fleet.db.url()).await.expect("store opens");
        let record = observer
            .get(&call.call_sid)
            .await
            .expect("readable")
            .expect("stored");
        assert!(record.is_finished(), "{record:?}");
        assert_eq!(record.status, CallStatus::Completed);
        assert_eq!(
            record.outcome.as_ref().map(|o| o.status),
            Some(OutcomeStatus::AlternativeBooked)
        );

        // The terminal on C printed the whole transcript, each line once, in
        // order: exactly what is stored.
        let printed: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
        let stored: Vec<String> = record.transcript.iter().map(render::line_text).collect();
        assert_eq!(printed, stored, "stdout:\n{stdout}");
        // And what is stored is what was said: every host line as the
        // telephone played it, every agent line as the script has it.
        common::assert_everything_said_is_written(&call, &fleet.scenario, &record);

        // Each kind of request reached its instance and was accepted there.
        all_routed(&call, Route::Status, a.addr);
        all_routed(&call, Route::Stream, b.addr);
        all_routed(&call, Route::Amd, c.addr);
        assert!(
            call.status_callbacks
                .iter()
                .all(|(_, code)| (200..300).contains(code)),
            "{:?}",
            call.status_callbacks
        );
        assert_eq!(call.amd_callbacks.len(), 1, "{:?}", call.amd_callbacks);
        assert!((200..300).contains(&call.amd_callbacks[0].1));
        assert_eq!(call.streams.len(), 1);
        assert_eq!(call.streams[0].upgrade_status, Some(101));
        assert_eq!(c.metric("reservoice_calls_placed_total").await, 1);
        assert_eq!(b.metric("reservoice_media_streams_total").await, 1);
        assert_eq!(a.metric("reservoice_media_streams_total").await, 0);
        assert_eq!(c.metric("reservoice_media_streams_total").await, 0);

        // The verdict C received reached the session on B through the store.
        assert_eq!(record.answered_by.as_deref(), Some("human"));
        assert!(
            b.log().contains("answering machine detection"),
            "the session on B heard the verdict"
        );
        observer.close().await;
    })
    .await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_call_is_finished_by_a_survivor() {
    // Short leases: a dead instance's call is found in seconds.
    let Some(mut fleet) = Fleet::start(&["A", "B", "C"], 3).await else {
        return;
    };
    let (a, c) = (fleet.instance("A").addr, fleet.instance("C").addr);
    // B's machine vanishes without closing anything: Twilio's side of the
    // stream stays open, so only a REST request can end the call.
    let relay = HoldingRelay::start(fleet.instance("B").addr).await;
    fleet.route(Routes {
        status: Some(a),
        stream: Some(relay.addr),
        amd: Some(c),
    });
    let observer = CallStore::open(fleet.db.url()).await.expect("store opens");
    let c_url = fleet.instance("C").url.clone();
    let id = ApiClient::new(&c_url, None)
        .expect("client")
        .create_call(&request())
        .await
        .expect("call placed")
        .id;
    let before = wait_for(&observer, &id, "two lines", |r| r.transcript.len() >= 2).await;
    fleet.instance_mut("B").kill().await;

    with_logs(&fleet, async {
        let reaped = wait_for(&observer, &id, "a survivor to finish the call", |r| {
            r.is_finished()
        })
        .await;
        assert_eq!(reaped.status, CallStatus::Failed, "{reaped:?}");
        let outcome = reaped.outcome.clone().expect("an outcome");
        assert_eq!(outcome.status, OutcomeStatus::Failed);
        assert_eq!(
            outcome.notes.as_deref(),
            Some("the server handling the call stopped")
        );
        assert!(
            reaped.transcript.starts_with(&before.transcript),
            "every line written before the crash is kept"
        );

        // The survivor ended the call through REST; Twilio's `completed`
        // then reached A, late, and changed nothing.
        let call = fleet
            .phone
            .wait_ended(&id, Duration::from_secs(30))
            .await
            .expect("the call ended");
        assert!(call.hangup_requests >= 1, "hung up through REST");
        assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
        let last = call.status_callbacks.last().expect("callbacks");
        assert_eq!(last.0, "completed");
        assert!((200..300).contains(&last.1), "A took it: {last:?}");
        assert_eq!(observer.get(&id).await.unwrap().unwrap(), reaped);
        let a = fleet.instance("A").metric("reservoice_calls_reaped_total");
        let c = fleet.instance("C").metric("reservoice_calls_reaped_total");
        assert_eq!(a.await + c.await, 1, "exactly one survivor finished it");
    })
    .await;
    observer.close().await;
    drop(relay);
    fleet.shutdown().await;
}
