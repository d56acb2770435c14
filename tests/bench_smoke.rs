//! The load benchmark, tiny: the real server in-process (exactly what
//! `serve` builds), the bench's stand-ins, 5 calls for 3 s. Every call must
//! connect and be bridged, and no frame may be lost. No timing is asserted:
//! performance is measured with `reservoice bench`, never by a test.

use std::time::Duration;

use reservoice::bench::standins::{FakeTwilio, ModelEcho};
use reservoice::bench::{self, LoadConfig, Target, ACCOUNT_SID, FROM_NUMBER};
use reservoice::config::SettingsArgs;
use reservoice::server::Application;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_calls_round_trip_every_frame() {
    let model = ModelEcho::start(0).await.unwrap();
    let twilio = FakeTwilio::start(0).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_url = format!("http://{}", listener.local_addr().unwrap());
    let auth_token = "bench-smoke-auth-token-0123456789".to_string();
    let args = SettingsArgs {
        twilio_account_sid: Some(ACCOUNT_SID.into()),
        twilio_auth_token: Some(auth_token.clone()),
        twilio_from_number: Some(FROM_NUMBER.into()),
        twilio_api_base: twilio.api_base(),
        openai_api_key: Some("bench".into()),
        openai_realtime_url: model.url(),
        openai_realtime_model: "gpt-realtime-2.1".into(),
        openai_transcription_model: "gpt-4o-mini-transcribe".into(),
        voice: "marin".into(),
        public_url: Some(server_url.clone()),
        bind: server_url.trim_start_matches("http://").to_string(),
        api_token: None,
        database_url: Some(format!(
            "sqlite://{}",
            data.path().join("reservoice.db").display()
        )),
        data_dir: Some(data.path().to_path_buf()),
        timezone: Some("UTC".into()),
        ..SettingsArgs::default()
    };
    let app = Application::build(args.resolve().unwrap(), Some(listener))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let config = LoadConfig {
        calls: 5,
        duration: Duration::from_secs(3),
        ramp: Duration::from_millis(500),
        auth_token,
        server_pid: Some(std::process::id()),
        drain: Duration::from_secs(2),
    };
    let report = bench::run(
        &config,
        Target::Server {
            api_base: &server_url,
            api_token: None,
            twilio: &twilio,
        },
    )
    .await
    .unwrap();
    println!("{}", report.render());

    assert_eq!(report.calls_failed, 0, "{:?}", report.failures);
    assert_eq!(report.calls_connected, 5);
    assert_eq!(report.calls_bridged, 5);
    assert!(report.frames_sent >= 5 * 100, "{}", report.frames_sent);
    assert_eq!(report.frames_lost, 0);
    assert_eq!(report.frames_unexpected, 0);
    assert_eq!(report.bad_messages, 0);
    assert!(report.marks_echoed > 0);
    assert!(report.server.is_some());
    let line: serde_json::Value = serde_json::from_str(&report.json_line()).unwrap();
    assert_eq!(line["bench"]["frames_lost"], 0);

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    twilio.shutdown().await;
    model.shutdown().await;
}
