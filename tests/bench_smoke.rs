//! The load benchmark, tiny: the real server in-process (exactly what
//! `serve` builds), the bench's stand-ins, 5 calls for a few seconds, in
//! both traffic modes. Every call must connect and be bridged; in the echo
//! mode no frame may be lost (also with frames joined into fewer appends and
//! fewer marks), in the realistic mode every callee turn must be answered.
//! No timing is asserted: performance is measured with `reservoice bench`,
//! never by a test. Then two servers sharing one PostgreSQL database: the
//! calls are spread over both and the database's cost is read.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reservoice::bench::database::Database;
use reservoice::bench::standins::{FakeTwilio, Floor, ModelStandIn};
use reservoice::bench::{self, LoadConfig, Report, Target, Traffic, ACCOUNT_SID, FROM_NUMBER};
use reservoice::config::SettingsArgs;
use reservoice::server::metrics::Metrics;
use reservoice::server::Application;
use reservoice::store::scratch::ScratchDatabase;
use tokio::net::TcpListener;

const AUTH_TOKEN: &str = "bench-smoke-auth-token-0123456789";

fn load(traffic: Traffic, seconds: u64) -> LoadConfig {
    LoadConfig {
        calls: 5,
        duration: Duration::from_secs(seconds),
        ramp: Duration::from_millis(500),
        auth_token: AUTH_TOKEN.to_string(),
        server_pids: vec![std::process::id()],
        database: None,
        drain: Duration::from_secs(2),
        traffic,
    }
}

/// A server in this process against the stand-ins.
struct Server {
    url: String,
    metrics: Arc<Metrics>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Start one with `append_ms` and `mark_ms`, its data in `data`, its call
    /// store at `database_url` (default: SQLite in `data`).
    async fn start(
        model: &ModelStandIn,
        twilio: &FakeTwilio,
        data: &std::path::Path,
        database_url: Option<&str>,
        append_ms: u64,
        mark_ms: u64,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let args = SettingsArgs {
            twilio_account_sid: Some(ACCOUNT_SID.into()),
            twilio_auth_token: Some(AUTH_TOKEN.into()),
            twilio_from_number: Some(FROM_NUMBER.into()),
            twilio_api_base: twilio.api_base(),
            openai_api_key: Some("bench".into()),
            openai_realtime_url: model.url(),
            openai_realtime_model: "gpt-realtime-2.1".into(),
            openai_transcription_model: "gpt-4o-mini-transcribe".into(),
            voice: "marin".into(),
            public_url: Some(url.clone()),
            bind: url.trim_start_matches("http://").to_string(),
            api_token: None,
            database_url: Some(database_url.map_or_else(
                || format!("sqlite://{}", data.join("reservoice.db").display()),
                str::to_string,
            )),
            data_dir: Some(data.to_path_buf()),
            timezone: Some("UTC".into()),
            append_ms,
            mark_ms,
            ..SettingsArgs::default()
        };
        let app = Application::build(args.resolve().unwrap(), Some(listener))
            .await
            .unwrap();
        let metrics = app.state().metrics.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Server {
            url,
            metrics,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Run 5 calls against the server started with `append_ms` and `mark_ms`.
async fn against_the_server(
    traffic: Traffic,
    seconds: u64,
    append_ms: u64,
    mark_ms: u64,
) -> Report {
    let model = ModelStandIn::start(0, traffic).await.unwrap();
    let twilio = FakeTwilio::start(0).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&model, &twilio, data.path(), None, append_ms, mark_ms).await;
    let servers = [server.url.clone()];
    let report = bench::run(
        &load(traffic, seconds),
        Target::Server {
            api_bases: &servers,
            api_token: None,
            twilio: &twilio,
            model: model.stats(),
        },
    )
    .await
    .unwrap();
    println!("{}", report.render());
    assert_eq!(report.servers, 1);

    server.stop().await;
    twilio.shutdown().await;
    model.shutdown().await;
    report
}

fn every_call_bridged(report: &Report) {
    assert_eq!(report.calls_failed, 0, "{:?}", report.failures);
    assert_eq!(report.calls_connected, 5);
    assert_eq!(report.calls_bridged, 5);
    assert_eq!(report.frames_unexpected, 0);
    assert_eq!(report.bad_messages, 0);
    assert!(report.marks_echoed > 0);
    assert!(report.server.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_calls_round_trip_every_frame() {
    let report = against_the_server(Traffic::Echo, 3, 20, 0).await;
    every_call_bridged(&report);
    assert!(report.frames_sent >= 5 * 100, "{}", report.frames_sent);
    assert_eq!(report.frames_lost, 0);
    assert_eq!(report.frames_excused, 0, "20 ms appends hold nothing back");
    // One append per frame, each seen by the model.
    assert!(report.to_model.count > 0);
    assert!(report.appends >= report.frames_sent - 5);
    let line: serde_json::Value = serde_json::from_str(&report.json_line()).unwrap();
    assert_eq!(line["bench"]["frames_lost"], 0);
    assert_eq!(line["bench"]["traffic"], "echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_appends_and_fewer_marks_lose_no_frame() {
    let report = against_the_server(Traffic::Echo, 3, 60, 100).await;
    every_call_bridged(&report);
    assert_eq!(report.frames_lost, 0);
    // Three frames per append: the model got a third as many messages.
    assert!(
        report.appends * 2 < report.frames_sent,
        "{} appends for {} frames",
        report.appends,
        report.frames_sent
    );
    // A mark per 100 ms of echoed audio, not per 20 ms frame.
    assert!(
        report.marks_echoed * 3 < report.frames_returned,
        "{} marks",
        report.marks_echoed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_calls_answer_every_turn() {
    let report = against_the_server(Traffic::Realistic, 8, 20, 0).await;
    every_call_bridged(&report);
    // Each call ends at least one 1.2-2.8 s turn in 8 s, and each is answered
    // (but for the last, which the end of the run may cut).
    assert!(report.turns >= 5, "{} turns", report.turns);
    assert!(report.turns_answered + 5 >= report.turns, "{report:?}");
    assert_eq!(report.turns_unanswered, 0);
    assert!(report.deltas > report.turns_answered);
    assert!(report.turn_end_to_model.count > 0);
}

/// The defaults join the callee's frames where the model decides nothing
/// from them: fewer appends than frames, and still every frame reaches the
/// model and every turn is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_calls_with_the_default_joining_lose_nothing() {
    let report = against_the_server(
        Traffic::Realistic,
        8,
        reservoice::config::DEFAULT_APPEND_MS,
        reservoice::config::DEFAULT_MARK_MS,
    )
    .await;
    every_call_bridged(&report);
    assert!(report.turns >= 5, "{} turns", report.turns);
    assert!(report.turns_answered + 5 >= report.turns, "{report:?}");
    assert_eq!(report.turns_unanswered, 0);
    // Joined: fewer appends than frames (silence past the turn window and
    // speech past its start wait for their append).
    assert!(
        report.appends * 4 < report.frames_sent * 3,
        "{} appends for {} frames",
        report.appends,
        report.frames_sent
    );
    // Every turn's end reached the model.
    assert!(report.turn_end_to_model.count > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_answers_turns_too() {
    let floor = Floor::start(0, Traffic::Realistic).await.unwrap();
    let mut config = load(Traffic::Realistic, 6);
    config.server_pids = Vec::new();
    let report = bench::run(
        &config,
        Target::Floor {
            stream_url: floor.stream_url(),
        },
    )
    .await
    .unwrap();
    println!("{}", report.render());
    floor.shutdown().await;
    assert_eq!(report.calls_failed, 0, "{:?}", report.failures);
    assert_eq!(report.calls_bridged, 5);
    assert!(report.turns_answered >= 5, "{report:?}");
    assert_eq!(report.turns_unanswered, 0);
    assert_eq!(report.frames_unexpected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_two_servers_on_postgres_and_its_cost_is_read() {
    let Some(db) = ScratchDatabase::for_test().await else {
        return;
    };
    let model = ModelStandIn::start(0, Traffic::Echo).await.unwrap();
    let twilio = FakeTwilio::start(0).await.unwrap();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(&model, &twilio, data_a.path(), Some(db.url()), 20, 0).await;
    let b = Server::start(&model, &twilio, data_b.path(), Some(db.url()), 20, 0).await;
    let servers = [a.url.clone(), b.url.clone()];
    let mut config = load(Traffic::Echo, 3);
    config.database = Some(Database::new(db.url()));
    let report = bench::run(
        &config,
        Target::Server {
            api_bases: &servers,
            api_token: None,
            twilio: &twilio,
            model: model.stats(),
        },
    )
    .await
    .unwrap();
    println!("{}", report.render());
    every_call_bridged(&report);
    assert_eq!(report.frames_lost, 0);
    assert_eq!(report.servers, 2);
    // In turn: 3 calls on the first, 2 on the second.
    assert_eq!(a.metrics.calls_placed.load(Ordering::Relaxed), 3);
    assert_eq!(b.metrics.calls_placed.load(Ordering::Relaxed), 2);
    let cost = report.database.clone().expect("the database's cost");
    assert_eq!(cost.kind, "postgres");
    // Each call is at least placed, started, leased and finished.
    assert!(
        cost.transactions_per_call.is_some_and(|t| t >= 4.0),
        "{cost:?}"
    );
    if cfg!(target_os = "linux") && is_local(db.url()) {
        assert!(cost.backends > 0, "{cost:?}");
        assert!(cost.cpu_ms_per_call_minute.is_some(), "{cost:?}");
    }

    a.stop().await;
    b.stop().await;
    twilio.shutdown().await;
    model.shutdown().await;
    let _ = db.drop_now().await;
}

/// Whether the database server runs on this machine (its processes can be read).
fn is_local(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h == "127.0.0.1" || h == "localhost"))
        .unwrap_or(false)
}
