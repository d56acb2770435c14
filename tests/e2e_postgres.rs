//! Whole calls on PostgreSQL: a call that goes on while its database is away,
//! a follower on another instance across a lost database link, and the call
//! of an instance that dies, finished by a survivor.
//!
//! Each test makes its own database and drops it afterwards. Without a
//! PostgreSQL server they are skipped with a note (they fail under `CI=true`).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use reservoice::cli::client::ApiClient;
use reservoice::cli::render;
use reservoice::config::Settings;
use reservoice::contract::LiveEvent;
use reservoice::domain::{CallRecord, CallStatus, OutcomeStatus};
use reservoice::server::Application;
use reservoice::sim::rig::{Rig, RigOptions, ScenarioKind};
use reservoice::sim::scenario::Scenario;
use reservoice::sim::telephone::SimCall;
use reservoice::store::scratch::ScratchDatabase;
use reservoice::store::{CallStore, LeaseTimings};

mod common;
use common::proxy::{upstream, CuttableProxy};
use common::wait_for;

/// Leases short enough to see a dead instance's call reaped in seconds.
fn quick_leases() -> LeaseTimings {
    LeaseTimings {
        ttl: Duration::from_secs(2),
        renew_every: Duration::from_millis(300),
        retry_every: Duration::from_millis(100),
        reap_every: Duration::from_millis(250),
        reap_grace: Duration::from_millis(500),
    }
}

async fn rig(database_url: &str) -> Rig {
    Rig::start(RigOptions {
        scenario: ScenarioKind::Alternative,
        database_url: Some(database_url.to_string()),
        lease: Some(quick_leases()),
        ..Default::default()
    })
    .await
    .expect("rig starts")
}

/// What the telephone knows of call `id` so far.
fn sim_call(rig: &Rig, id: &str) -> SimCall {
    rig.phone
        .calls()
        .into_iter()
        .find(|c| c.call_sid == id)
        .expect("the telephone placed the call")
}

/// The transcript says exactly what was said (the alternative scenario).
fn assert_everything_said_is_written(rig: &Rig, record: &CallRecord) {
    let call = sim_call(rig, &record.id);
    common::assert_everything_said_is_written(&call, &Scenario::alternative(&rig.booking), record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_goes_on_while_its_database_is_away() {
    let Some(db) = ScratchDatabase::for_test().await else {
        return;
    };
    let proxy = CuttableProxy::start(upstream(db.url())).await;
    let rig = rig(&proxy.url(db.url())).await;
    let observer = CallStore::open(db.url()).await.unwrap();
    let client = ApiClient::new(&rig.server_url, None).unwrap();
    let id = client.create_call(&rig.request()).await.unwrap().id;
    wait_for(&observer, &id, "the first line", |r| {
        !r.transcript.is_empty()
    })
    .await;

    // The database goes away until the restaurant has said something more
    // (and its transcription had time to arrive): that line can only be
    // written once the database is back.
    let audio_before = sim_call(&rig, &id).agent_audio.len();
    let host_before = sim_call(&rig, &id).host_lines_spoken.len();
    proxy.cut();
    let cut_at = tokio::time::Instant::now();
    while sim_call(&rig, &id).host_lines_spoken.len() == host_before {
        assert!(
            cut_at.elapsed() < Duration::from_secs(30),
            "the host never spoke again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored_during = observer.get(&id).await.unwrap().unwrap().transcript.len();
    assert!(
        sim_call(&rig, &id).agent_audio.len() > audio_before,
        "the agent kept talking while the database was away"
    );
    proxy.restore();

    let done = tokio::time::timeout(Duration::from_secs(90), render::follow(&client, &id, true))
        .await
        .expect("the call finishes")
        .expect("followed");
    assert_eq!(
        done.outcome.as_ref().unwrap().status,
        OutcomeStatus::AlternativeBooked,
        "{done:?}"
    );
    assert!(
        done.transcript.len() > stored_during,
        "lines said while the database was away were written once it was back"
    );
    assert_eq!(observer.get(&id).await.unwrap().unwrap(), done);
    assert_everything_said_is_written(&rig, &done);
    observer.close().await;
    rig.shutdown().await;
}

/// Another instance of the rig's world, on a runtime of its own: dropping
/// that runtime ends all its tasks and closes all its sockets at once, as
/// `kill -9` does to a process.
struct Peer {
    url: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Peer {
    async fn start(settings_for: impl FnOnce(SocketAddr) -> Settings) -> Peer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let settings = settings_for(addr);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .spawn(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Application::build(settings, Some(listener))
                    .await
                    .expect("peer starts");
                tokio::spawn(app.run_until(std::future::pending()));
            })
            .await
            .unwrap();
        Peer {
            url: format!("http://{addr}"),
            runtime: Some(runtime),
        }
    }

    fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_on_another_instance_gets_every_line_once_across_a_lost_link() {
    let Some(db) = ScratchDatabase::for_test().await else {
        return;
    };
    let rig = rig(db.url()).await;
    let proxy = CuttableProxy::start(upstream(db.url())).await;
    let through_proxy = proxy.url(db.url());
    let peer = Peer::start(|addr| rig.peer_settings(addr, &through_proxy).unwrap()).await;

    // The call runs on the rig's server; it is followed on the peer.
    let id = ApiClient::new(&rig.server_url, None)
        .unwrap()
        .create_call(&rig.request())
        .await
        .unwrap()
        .id;
    let events = ApiClient::new(&peer.url, None)
        .unwrap()
        .events(&id)
        .await
        .unwrap();
    let mut events = Box::pin(events);
    let mut received = Vec::new();
    let mut cut_done = false;
    let finished: CallRecord = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(event) = events.next().await {
            let event = event.expect("the stream stays up");
            if matches!(event, LiveEvent::Transcript(_)) && !cut_done {
                // The peer loses its database until the call is over: what
                // it was told meanwhile is lost, what it missed is in the store.
                cut_done = true;
                proxy.cut();
                wait_for(rig.store(), &id, "the end of the call", |r| r.is_finished()).await;
                proxy.restore();
            }
            if let LiveEvent::Finished(record) = event {
                return *record;
            }
            received.push(event);
        }
        panic!("the stream ended before `finished`")
    })
    .await
    .expect("the call finishes");
    assert!(cut_done);
    let LiveEvent::Snapshot(snapshot) = &received[0] else {
        panic!("snapshot first: {received:?}")
    };
    let seqs: Vec<u64> = received
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Transcript(spoken) => Some(spoken.seq),
            _ => None,
        })
        .collect();
    let from = snapshot.transcript.len() as u64 + 1;
    let to = finished.transcript.len() as u64;
    assert_eq!(
        seqs,
        (from..=to).collect::<Vec<_>>(),
        "each line once, in order"
    );
    assert_eq!(finished.status, CallStatus::Completed);
    assert_everything_said_is_written(&rig, &finished);
    peer.kill();
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_call_is_finished_by_a_survivor() {
    let Some(db) = ScratchDatabase::for_test().await else {
        return;
    };
    let rig = rig(db.url()).await;
    let peer = Peer::start(|addr| rig.peer_settings(addr, db.url()).unwrap()).await;
    // Placed through the peer: Twilio streams the call's audio to the peer.
    let id = ApiClient::new(&peer.url, None)
        .unwrap()
        .create_call(&rig.request())
        .await
        .unwrap()
        .id;
    let observer = rig.store().clone();
    let before = wait_for(&observer, &id, "two lines", |r| r.transcript.len() >= 2).await;
    peer.kill();

    let reaped = wait_for(&observer, &id, "the survivor to finish the call", |r| {
        r.is_finished()
    })
    .await;
    assert_eq!(reaped.status, CallStatus::Failed);
    let outcome = reaped.outcome.clone().unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(
        outcome.notes.as_deref(),
        Some("the server handling the call stopped")
    );
    assert!(
        reaped.transcript.starts_with(&before.transcript),
        "every line written before the crash is kept"
    );
    let call = rig
        .phone
        .wait_ended(&id, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        call.hangup_requests >= 1,
        "the survivor hung up through REST"
    );
    assert_eq!(
        rig.state
            .metrics
            .calls_reaped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Twilio's `completed`, arriving late at the survivor, changes nothing.
    let url = format!("{}/twilio/status", rig.server_url);
    let body = format!("CallSid={id}&CallStatus=completed&SequenceNumber=9");
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    let signature = reservoice::twilio::signature::compute(&rig.auth_token, &url, &params);
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(observer.get(&id).await.unwrap().unwrap(), reaped);
    rig.shutdown().await;
}
