//! The HTTP contract, end to end: what the real server sends (live events,
//! error bodies) reaches the CLI's client as the same typed values; and a
//! call is placed by `Dialer`, with or without HTTP in front of it.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use reservoice::cli::client::{ApiClient, ClientError};
use reservoice::contract::{
    ApiError, ErrorKind, LineSpoken, LiveEvent, OutcomeRecorded, StatusChanged,
};
use reservoice::dialer::PlaceError;
use reservoice::domain::{
    CallStatus, Outcome, OutcomeStatus, Reservation, ReservationRequest, Speaker, TranscriptLine,
};
use reservoice::sim::rig::{Rig, RigOptions, RESTAURANT_NUMBER};
use reservoice::sim::telephone::Line;

fn reservation(rig: &Rig) -> Reservation {
    let settings = &rig.state.settings;
    rig.request()
        .into_reservation(&settings.request_rules(), Utc::now())
        .expect("the rig's request is valid")
}

/// The next live event, within ten seconds.
async fn next<S>(events: &mut S) -> LiveEvent
where
    S: futures_util::Stream<Item = Result<LiveEvent, ClientError>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event in time")
        .expect("the stream is open")
        .expect("a readable event")
}

fn status(status: CallStatus) -> LiveEvent {
    LiveEvent::Status(StatusChanged { status })
}

/// Every kind of live event, made by the real server from real store
/// changes, arrives at the client as the value the server meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_live_event_the_server_sends_reaches_the_client_typed() {
    let rig = Rig::start(RigOptions::default()).await.unwrap();
    let store = rig.store().clone();
    let id = "CAcontract0000000000000000000000001";
    store
        .insert(id, &reservation(&rig), "token", CallStatus::Queued)
        .await
        .unwrap();
    let client = ApiClient::new(&rig.server_url, None).unwrap();
    let mut events = Box::pin(client.events(id).await.unwrap());
    let mut seen = Vec::new();

    let LiveEvent::Snapshot(snapshot) = next(&mut events).await else {
        panic!("the first event is the snapshot")
    };
    assert_eq!(snapshot.id, id);
    assert_eq!(snapshot.reservation, reservation(&rig));
    seen.push("snapshot");

    store
        .apply_status(id, CallStatus::Ringing, Some(1))
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, status(CallStatus::Ringing));
    seen.push("status");

    let line = TranscriptLine {
        speaker: Speaker::Callee,
        text: "Chez Demo, « bonsoir » & welcome".into(),
        at_ms: 640,
    };
    store.add_line(id, &line).await.unwrap();
    assert_eq!(
        next(&mut events).await,
        LiveEvent::Transcript(LineSpoken { line, seq: 1 })
    );
    seen.push("transcript");

    let mut booked = Outcome::bare(OutcomeStatus::Booked, Some("table by the window".into()));
    booked.confirmation = Some("A-17".into());
    store
        .set_outcome(id, &booked, reservoice::domain::OutcomeWrite::Report)
        .await
        .unwrap();
    assert_eq!(
        next(&mut events).await,
        LiveEvent::Outcome(OutcomeRecorded {
            outcome: booked.clone()
        })
    );
    seen.push("outcome");

    store
        .apply_status(id, CallStatus::Completed, Some(2))
        .await
        .unwrap();
    assert_eq!(next(&mut events).await, status(CallStatus::Completed));
    let last = next(&mut events).await;
    let LiveEvent::Finished(record) = last else {
        panic!("the call ended: {last:?}")
    };
    assert_eq!(record.outcome, Some(booked));
    assert_eq!(record.status, CallStatus::Completed);
    seen.push("finished");

    assert_eq!(seen, LiveEvent::NAMES, "every event name the server sends");
    rig.shutdown().await;
}

/// The server's error answers arrive as their typed kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_reach_the_client_typed() {
    let rig = Rig::start(RigOptions::default()).await.unwrap();
    let client = ApiClient::new(&rig.server_url, None).unwrap();

    let bad = ReservationRequest {
        party_size: 0,
        name: "Alex\u{7}".into(),
        ..rig.request()
    };
    match client.create_call(&bad).await {
        Err(ClientError::Invalid(errors)) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["name", "party_size"]);
        }
        other => panic!("expected the fields at fault, got {other:?}"),
    }
    assert!(matches!(
        client.get_call("CAnope").await,
        Err(ClientError::NotFound(id)) if id == "CAnope"
    ));
    assert!(matches!(
        client.events("CAnope").await.map(|_| ()),
        Err(ClientError::NotFound(_))
    ));

    // The same answers, read as the contract's type by any HTTP client.
    let http = reqwest::Client::new();
    let answer = |response: reqwest::Response| async move {
        let status = response.status();
        let body = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice::<ApiError>(&body).expect("an ApiError body"),
        )
    };
    let (status, error) = answer(
        http.get(format!("{}/api/calls?limit=many", rig.server_url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        matches!(&error.kind, ErrorKind::InvalidRequest { errors } if errors[0].field == "limit"),
        "{error:?}"
    );
    let (status, error) = answer(
        http.get(format!("{}/api/calls/CAnope/recording", rig.server_url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error.kind),
        (reqwest::StatusCode::NOT_FOUND, ErrorKind::NotFound)
    );
    assert!(rig.phone.calls().is_empty(), "nothing reached Twilio");
    rig.shutdown().await;
}

/// Placing a call needs no HTTP request: the dialer does it all (TwiML with
/// the reservation and a call token, Twilio's request, the record), and
/// refuses what the API refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialer_places_a_call_without_http() {
    let rig = Rig::start(RigOptions {
        lines: HashMap::from([(RESTAURANT_NUMBER.to_string(), Line::Busy)]),
        ..Default::default()
    })
    .await
    .unwrap();
    let dialer = rig.state.dialer();

    let refused = dialer
        .place(ReservationRequest {
            flexibility: Some("13h".into()),
            ..rig.request()
        })
        .await;
    assert!(
        matches!(&refused, Err(PlaceError::Invalid(errors)) if errors[0].field == "flexibility"),
        "{refused:?}"
    );
    assert!(rig.phone.calls().is_empty());

    let record = dialer.place(rig.request()).await.expect("placed");
    // Twilio's first callbacks can beat its REST answer; the record then
    // carries them (they are applied with the insert), so `queued` is not
    // guaranteed, only that the call has not been answered.
    assert!(
        matches!(
            record.status,
            CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing | CallStatus::Busy
        ),
        "{:?}",
        record.status
    );
    assert_eq!(record.reservation, reservation(&rig));
    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(20))
        .await
        .expect("the network saw the call");
    let params: HashMap<_, _> = call.parameters.iter().cloned().collect();
    assert_eq!(
        Reservation::from_parameters(&params, rig.state.settings.max_party_size).unwrap(),
        record.reservation,
        "the reservation travels in the TwiML"
    );
    assert_eq!(
        rig.store().call_token(&record.id).await.unwrap().as_ref(),
        params.get(reservoice::domain::reservation::param::CALL_TOKEN),
        "the stored token is the one in the TwiML"
    );

    rig.state
        .draining
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        dialer.place(rig.request()).await,
        Err(PlaceError::ShuttingDown)
    ));
    assert_eq!(rig.phone.calls().len(), 1);
    rig.shutdown().await;
}
