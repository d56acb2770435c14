//! `reservoice call` keeps following a call when the live event stream drops
//! (a server restart, a proxy timeout): it reconnects and does not repeat lines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::Router;
use reservoice::cli::client::ApiClient;
use reservoice::cli::render;
use serde_json::json;

fn record(lines: usize, finished: bool) -> serde_json::Value {
    let transcript: Vec<_> = (0..lines)
        .map(|i| json!({"speaker": if i % 2 == 0 { "callee" } else { "agent" }, "text": format!("line {}", i + 1), "at_ms": i * 1000}))
        .collect();
    json!({
        "id": "CAfollow",
        "status": if finished { "completed" } else { "in-progress" },
        "reservation": {
            "restaurant_name": "Chez Demo", "restaurant_phone": "+12125550123", "party_size": 2,
            "slot": {"date": "2099-01-01", "time": "19:00:00", "timezone": "UTC"},
            "customer_name": "Alex Doe", "callback": null, "notes": null, "flexibility": 0
        },
        "outcome": if finished { json!({"status": "booked", "date": "2099-01-01", "time": "19:00", "party_size": 2, "name": "Alex Doe"}) } else { json!({"status": "in_progress"}) },
        "transcript": transcript,
        "answered_by": null, "error": null,
        "created_at": "2099-01-01T00:00:00Z", "updated_at": "2099-01-01T00:00:00Z",
        "started_at": null, "ended_at": null
    })
}

#[tokio::test]
async fn following_survives_a_dropped_event_stream() {
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let app = Router::new().route(
        "/api/calls/{id}/events",
        get(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let events: Vec<Result<Event, std::convert::Infallible>> = if n == 0 {
                    // First connection: the call so far, one live line, then the stream drops.
                    vec![
                        Ok(Event::default().event("snapshot").json_data(record(1, false)).unwrap()),
                        Ok(Event::default().event("transcript").json_data(json!({"type": "transcript", "seq": 2, "line": {"speaker": "agent", "text": "line 2", "at_ms": 1000}})).unwrap()),
                    ]
                } else {
                    vec![
                        Ok(Event::default().event("snapshot").json_data(record(3, false)).unwrap()),
                        Ok(Event::default().event("finished").json_data(record(3, true)).unwrap()),
                    ]
                };
                Sse::new(futures_util::stream::iter(events))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = ApiClient::new(&url, None).unwrap();
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        render::follow(&client, "CAfollow", true),
    )
    .await
    .expect("follow ends")
    .expect("follow reconnects instead of failing");
    assert!(done.is_finished());
    assert_eq!(done.transcript.len(), 3);
    assert_eq!(render::exit_code(&done), 0);
    assert_eq!(connections.load(Ordering::SeqCst), 2, "reconnected once");
    server.abort();
}
