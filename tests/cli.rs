//! The `reservoice` binary as a person uses it: output, JSON and exit codes,
//! against the real server and the simulators on loopback.

use std::collections::HashMap;
use std::process::Output;

use reservoice::sim::rig::{Rig, RigOptions};
use reservoice::sim::telephone::Line;
use serde_json::Value;

async fn reservoice(args: &[&str], server: &str) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .args(args)
        .env("RESERVOICE_SERVER", server)
        .env_remove("RESERVOICE_API_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("the binary runs")
}

/// Send `signal` (`-TERM`, `-INT`) to a running `reservoice` and wait for its exit code.
async fn stop(child: &mut tokio::process::Child, signal: &str) -> Option<i32> {
    let pid = child.id().expect("still running").to_string();
    std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs");
    tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s")
        .expect("exit status")
        .code()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

const CALL: &[&str] = &[
    "call",
    "--to",
    "+12125550123",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_the_live_transcript_and_the_outcome_then_calls_shows_it() {
    let rig = Rig::start(RigOptions::default()).await.unwrap();
    let out = reservoice(CALL, &rig.server_url).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("Calling Chez Demo (+12125550123) in English (en-US) for a table for 4 on"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Restaurant  Good evening, Chez Demo"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Agent       Hello, this is an automated assistant calling on behalf of Alex Doe"
        ),
        "{stdout}"
    );
    let outcome_line = format!(
        "Booked: table for 4, {}, 19:00, under Alex Doe (confirmation 4217)",
        rig.booking.spoken_date
    );
    assert!(stdout.contains(&outcome_line), "{stdout}");

    let list = reservoice(&["calls"], &rig.server_url).await;
    assert_eq!(list.status.code(), Some(0));
    let table = text(&list.stdout);
    let id = table
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("one row")
        .to_string();
    assert!(
        id.starts_with("CA") && table.contains("booked") && table.contains("+1212•••23"),
        "{table}"
    );

    let show = reservoice(&["calls", "show", &id], &rig.server_url).await;
    let shown = text(&show.stdout);
    assert!(
        shown.contains("Restaurant  Good evening") && shown.contains(&outcome_line),
        "{shown}"
    );

    let json = reservoice(&["calls", "show", &id, "--json"], &rig.server_url).await;
    let record: Value = serde_json::from_slice(&json.stdout).expect("JSON record");
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["outcome"]["status"], "booked");
    assert_eq!(record["outcome"]["time"], "19:00");
    assert!(record["transcript"].as_array().unwrap().len() >= 4);
    assert_eq!(record["transcript"][0]["speaker"], "callee");

    let missing = reservoice(&["calls", "show", "CAnope"], &rig.server_url).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no call with id CAnope"));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_tell_what_happened() {
    let mut lines = HashMap::new();
    lines.insert("+12125550101".to_string(), Line::Busy);
    lines.insert("+12125550103".to_string(), Line::Fail);
    let rig = Rig::start(RigOptions {
        lines,
        ring_ms: 200,
        ..Default::default()
    })
    .await
    .unwrap();

    // Busy: not completed (4); --json prints only the record.
    let mut args = CALL.to_vec();
    args[2] = "+12125550101";
    args.push("--json");
    let out = reservoice(&args, &rig.server_url).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON record");
    assert_eq!(record["status"], "busy");
    assert_eq!(record["outcome"]["status"], "busy");

    // Failed to place: 4.
    let mut args = CALL.to_vec();
    args[2] = "+12125550103";
    let out = reservoice(&args, &rig.server_url).await;
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stdout).contains("Call failed"),
        "{}",
        text(&out.stdout)
    );

    // Invalid input: 2, one message per field, nothing dialled.
    let before = rig.phone.calls().len();
    let out = reservoice(
        &[
            "call",
            "--to",
            "12345",
            "--restaurant",
            "X",
            "--party-size",
            "99",
            "--date",
            "someday",
            "--time",
            "7pm",
            "--name",
            "A",
        ],
        &rig.server_url,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("to:")
            && err.contains("party_size: party size must be between 1 and 20")
            && err.contains("date:"),
        "{err}"
    );
    assert_eq!(rig.phone.calls().len(), before);

    // An unsupported --language: 2, the supported languages listed, nothing dialled.
    let mut args = CALL.to_vec();
    args.extend(["--language", "tlh"]);
    let out = reservoice(&args, &rig.server_url).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("'tlh' is not a supported language; supported: en (English), fr (French), es (Spanish), de (German), it (Italian), pt (Portuguese), ja (Japanese)"),
        "{err}"
    );
    assert_eq!(rig.phone.calls().len(), before);

    // --language overrides the number's: the call is held in Mexican Spanish.
    let mut args = CALL.to_vec();
    args.extend(["--language", "es-MX", "--no-wait", "--json"]);
    let out = reservoice(&args, &rig.server_url).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
    assert_eq!(record["reservation"]["language"], "es-MX");

    // --no-wait prints the id and returns at once.
    let mut args = CALL.to_vec();
    args.push("--no-wait");
    let out = reservoice(&args, &rig.server_url).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).trim().starts_with("CA"));
    rig.shutdown().await;

    // Nobody listening: one clear line, exit 1, no stack trace.
    let out = reservoice(CALL, "http://127.0.0.1:9").await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach the reservoice server at http://127.0.0.1:9"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_a_whole_simulated_call() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .arg("demo")
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.starts_with("SIMULATION"), "{stdout}");
    assert!(stdout.contains("Restaurant  Good evening, Chez Demo"));
    assert!(stdout.contains("Booked: table for 4"));
    assert!(stdout.contains("That was a simulation"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_menu_books_with_keys_pressed_by_twilio_or_in_band() {
    for mode in [None, Some("inband")] {
        let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"));
        demo.args(["demo", "--scenario", "menu", "--json"])
            .env_remove("OPENAI_API_KEY")
            .env_remove("RESERVOICE_DTMF");
        if let Some(mode) = mode {
            demo.env("RESERVOICE_DTMF", mode);
        }
        let out = demo.output().await.unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode:?}: {stdout}\n{}",
            text(&out.stderr)
        );
        let record: serde_json::Value = serde_json::from_str(&stdout).expect("the record as JSON");
        assert_eq!(record["outcome"]["status"], "booked", "{mode:?}: {record}");
        let pressed = record["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["text"] == "(pressed 2)")
            .count();
        assert_eq!(pressed, 1, "{mode:?}: {record}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_french_books_a_table_in_french() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .args(["demo", "--scenario", "french"])
        .env_remove("OPENAI_API_KEY")
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    // The person reads English; the restaurant hears French.
    assert!(
        stdout.contains("Calling Chez Demo (+33199001234) in French (fr-FR) for a table for 4 on"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Restaurant  Bonsoir, Chez Demo"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Agent       Bonjour, je suis un assistant automatisé"),
        "{stdout}"
    );
    assert!(stdout.contains("Booked: table for 4"), "{stdout}");
}

/// `reservoice serve` in `dir` (also its data dir) with every setting it
/// needs, and nothing else from this environment.
fn serve_with_every_setting(dir: &std::path::Path) -> tokio::process::Command {
    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"));
    serve
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TWILIO_ACCOUNT_SID", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .env("TWILIO_AUTH_TOKEN", "12345678901234567890123456789012")
        .env("TWILIO_FROM_NUMBER", "+12125550100")
        .env("OPENAI_API_KEY", "sk-never-printed")
        .env("PUBLIC_URL", "https://reservoice.example.com")
        .env("RESERVOICE_BIND", "127.0.0.1:0")
        .env("RESERVOICE_DATA_DIR", dir);
    serve
}

#[tokio::test]
async fn serve_names_the_missing_setting_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.trim(), "reservoice: missing TWILIO_ACCOUNT_SID: set it in the environment, in .env, or with --twilio-account-sid");

    // With everything set it serves, and SIGTERM stops it cleanly.
    let mut child = serve_with_every_setting(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let listening = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        while !seen.contains("reservoice is listening") {
            let n = stderr.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(
        listening.is_ok() && seen.contains("reservoice is listening"),
        "{seen}"
    );
    assert!(
        seen.contains("wss://reservoice.example.com/media-stream"),
        "{seen}"
    );
    assert_eq!(stop(&mut child, "-TERM").await, Some(0));
    let mut rest = String::new();
    use tokio::io::AsyncReadExt;
    let _ = stderr.read_to_string(&mut rest).await;
    seen.push_str(&rest);
    assert!(
        !seen.contains("sk-never-printed") && !seen.contains("12345678901234567890123456789012"),
        "secrets leaked: {seen}"
    );
    assert!(
        dir.path().join("reservoice.db").exists(),
        "the call store lives in the data dir"
    );
}

#[tokio::test]
async fn serve_refuses_an_unsupported_default_language() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_with_every_setting(dir.path())
        .env("RESERVOICE_LANGUAGE", "tlh")
        .output()
        .await
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("RESERVOICE_LANGUAGE is invalid: 'tlh' is not a supported language; supported: en (English)"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_exits_1_naming_an_unreachable_postgres_but_never_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        serve_with_every_setting(dir.path())
            .env(
                "DATABASE_URL",
                format!("postgres://calls:pw-never-printed@127.0.0.1:{port}/reservoice_calls"),
            )
            .output(),
    )
    .await
    .expect("serve gives up within 30 s")
    .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("PostgreSQL at 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("database \"reservoice_calls\""), "{err}");
    assert!(!err.contains("pw-never-printed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_exits_4_even_when_the_restaurant_answered() {
    // The model cannot be reached: the restaurant answers and hears the
    // apology, the call completes, the outcome is `failed`. A script retries on 4.
    let rig = Rig::start(RigOptions {
        realtime_url_override: Some("ws://127.0.0.1:9/v1/realtime".into()),
        ring_ms: 200,
        ..Default::default()
    })
    .await
    .unwrap();
    let out = reservoice(CALL, &rig.server_url).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("Call failed — the AI model could not be reached"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("the AI model could not be reached").count(),
        1,
        "the reason is told once: {stdout}"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_numbers_area_code_sets_the_zone_and_the_first_line_names_it() {
    let mut lines = HashMap::new();
    lines.insert("+14155550123".to_string(), Line::Busy);
    lines.insert("+18005550123".to_string(), Line::Busy);
    let rig = Rig::start(RigOptions {
        lines,
        ring_ms: 100,
        ..Default::default() // the server's default zone: UTC
    })
    .await
    .unwrap();
    let without_zone = |to: &'static str| {
        let mut args: Vec<&str> = CALL[..CALL.len() - 2].to_vec();
        assert_eq!(CALL[CALL.len() - 2], "--timezone");
        args[2] = to;
        args
    };
    // San Francisco: resolved in Los Angeles' zone, and said so.
    let out = reservoice(&without_zone("+14155550123"), &rig.server_url).await;
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "Calling Chez Demo (+14155550123) in English (en-US) for a table for 4 on"
        ) && first.ends_with("at 7 PM (America/Los_Angeles time), under Alex Doe."),
        "{stdout}"
    );
    // Toll-free: anywhere in the US, so the server's default, and why.
    let out = reservoice(&without_zone("+18005550123"), &rig.server_url).await;
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains(
            "(UTC time: the server's default, as this number may be in several time zones; choose with --timezone)"
        ),
        "{stdout}"
    );
    // --timezone still wins.
    let mut named = without_zone("+14155550123");
    named.extend(["--timezone", "Asia/Tokyo"]);
    let out = reservoice(&named, &rig.server_url).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("at 7 PM (Asia/Tokyo time)"), "{stdout}");

    // Yesterday is in the past (as 2020-01-01 is), not "not a date".
    for past in ["yesterday", "2020-01-01"] {
        let mut args = CALL.to_vec();
        args[8] = past;
        assert_eq!(CALL[7], "--date");
        let out = reservoice(&args, &rig.server_url).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("date:") && err.contains("is in the past"),
            "{err}"
        );
    }
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_web_serves_the_page_with_the_simulated_restaurants_until_ctrl_c() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .args(["demo", "--web", "--port", "0"])
        .env_remove("OPENAI_API_KEY")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            printed.push_str(&line);
            printed.push('\n');
            if let Some(at) = line.find("http://127.0.0.1:") {
                return Some(line[at..].trim().trim_end_matches('/').to_string());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no address printed:\n{printed}"));
    assert!(printed.starts_with("SIMULATION"), "{printed}");

    // The form offers the simulated restaurants; each behaves as labelled.
    let http = reqwest::Client::new();
    let form = http.get(format!("{url}/calls/new")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let html = form.text().await.unwrap();
    assert!(html.contains("Simulated restaurant"), "{html}");
    let busy_at = html.find("The line is busy").expect("a busy restaurant");
    let number = html[..busy_at]
        .rsplit("value=\"")
        .next()
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let client = reservoice::cli::client::ApiClient::new(&url, None).unwrap();
    let request = reservoice::domain::ReservationRequest {
        to: number,
        restaurant: "Chez Demo".into(),
        party_size: 4,
        date: "tomorrow".into(),
        time: "7pm".into(),
        name: "Alex Doe".into(),
        ..Default::default()
    };
    let placed = client.create_call(&request).await.unwrap();
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        reservoice::cli::render::follow(&client, &placed.id, true),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        done.outcome.map(|o| o.status),
        Some(reservoice::domain::OutcomeStatus::Busy)
    );

    // Ctrl-C stops it.
    assert_eq!(stop(&mut child, "-INT").await, Some(0));
}
