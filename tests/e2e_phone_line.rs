//! End-to-end: a real phone line. Phone menus (keypad tones heard by the
//! simulated telephone), answering machines (Twilio's async AMD callback
//! reaching the live session through the call store), and recordings.

use std::time::Duration;

use common::model_events;
use reservoice::config::VoicemailPolicy;
use reservoice::domain::{CallRecord, CallStatus, OutcomeStatus};
use reservoice::sim::rig::{Rig, RigOptions, ScenarioKind};
use serde_json::Value;

mod common;

async fn place_and_finish(rig: &Rig) -> CallRecord {
    common::place_and_follow(rig, &rig.request()).await.1
}

fn form_value<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn system_texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "conversation.item.create" && e["item"]["role"] == "system")
        .map(|e| {
            e["item"]["content"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn menu_key_press_is_heard_then_the_host_books_and_the_call_is_recorded() {
    // In-band tones (`RESERVOICE_DTMF=inband`); through Twilio: e2e_key_press.rs.
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::Menu,
        dtmf: reservoice::config::DtmfMode::Inband,
        record: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let record = place_and_finish(&rig).await;
    assert_eq!(record.status, CallStatus::Completed);
    let outcome = record.outcome.clone().unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Booked, "{outcome:?}");
    // The key press is on the transcript, after the menu and before the person.
    let texts: Vec<&str> = record.transcript.iter().map(|l| l.text.as_str()).collect();
    let pressed = texts
        .iter()
        .position(|t| *t == "(pressed 2)")
        .expect("key press on the transcript");
    assert!(
        texts[..pressed].iter().any(|t| t.contains("press two")),
        "{texts:?}"
    );
    assert!(
        texts[pressed + 1..]
            .iter()
            .any(|t| t.contains("Good evening")),
        "{texts:?}"
    );

    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(10))
        .await
        .unwrap();
    // The telephone heard exactly the key "2" in the audio it played: a real
    // dual tone of about 100 ms.
    assert_eq!(call.dtmf_detected, "2");
    assert!(
        (80..=120).contains(&call.dtmf_tones[0].duration_ms),
        "{:?}",
        call.dtmf_tones
    );
    // …and only then did a person pick up.
    assert_eq!(
        call.host_lines_spoken,
        vec!["menu", "greeting", "booked_confirm"]
    );
    // The key press was reported to the model as done, without asking it to talk.
    let events = model_events(&rig);
    let ix = events
        .iter()
        .position(|e| {
            e["type"] == "conversation.item.create"
                && e["item"]["type"] == "function_call_output"
                && e["item"]["output"]
                    .as_str()
                    .unwrap_or("")
                    .contains("\"pressed\":\"2\"")
        })
        .expect("send_dtmf output");
    assert!(events[ix]["item"]["output"]
        .as_str()
        .unwrap()
        .contains("\"done\":true"));
    assert_ne!(
        events.get(ix + 1).map(|e| e["type"].clone()),
        Some(Value::from("response.create")),
        "no reply is forced after pressing keys"
    );

    // Async AMD was asked for, and the "human" result reached the record.
    assert_eq!(
        form_value(&call.create_form, "MachineDetection"),
        Some("DetectMessageEnd")
    );
    assert_eq!(form_value(&call.create_form, "AsyncAmd"), Some("true"));
    assert_eq!(
        form_value(&call.create_form, "AsyncAmdStatusCallback"),
        Some(format!("{}/twilio/amd", rig.server_url).as_str())
    );
    assert_eq!(call.amd_callbacks, vec![("human".to_string(), 204)]);

    // The recording: served as a stereo 8 kHz WAV, both sides present and the
    // agent's side holding the keypad tone where it played.
    let client = reqwest::Client::new();
    let url = format!("{}/api/calls/{}", rig.server_url, record.id);
    let shown: CallRecord = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown.answered_by.as_deref(), Some("human"));
    let path = shown.recording.expect("recording path in the record");
    assert!(
        path.ends_with(&format!("recordings/{}.wav", record.id)),
        "{path}"
    );
    let resp = client.get(format!("{url}/recording")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let wav = resp.bytes().await.unwrap();
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<u8> = samples
        .iter()
        .step_by(2)
        .map(|&s| reservoice::audio::mulaw::encode(s))
        .collect();
    let right: Vec<u8> = samples
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&s| reservoice::audio::mulaw::encode(s))
        .collect();
    assert!(
        reservoice::audio::mulaw::rms(&left) > 300.0,
        "the restaurant is on the left"
    );
    let keys = reservoice::sim::dtmf_detect::detect(&right);
    assert_eq!(
        keys.iter().map(|k| k.key).collect::<String>(),
        "2",
        "the agent side holds the key press"
    );
    assert!(
        reservoice::sim::dtmf_detect::detect(&left).is_empty(),
        "the tones are not on the restaurant's side"
    );
    // The key sounded after the menu ended (left is loud before, right is the tone).
    let menu_len_ms = reservoice::sim::scenario::clip("menu").unwrap().len() as u64 / 8;
    assert!(keys[0].start_ms > menu_len_ms, "{keys:?}");
    assert_eq!(
        client
            .get(format!("{}/api/calls/CAnope/recording", rig.server_url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_machine_gets_a_short_message_then_the_call_ends() {
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::Voicemail,
        ..Default::default()
    })
    .await
    .unwrap();
    let record = place_and_finish(&rig).await;
    let outcome = record.outcome.clone().unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Voicemail, "{outcome:?}");
    assert!(outcome.notes.unwrap_or_default().contains("left a message"));
    assert_eq!(record.answered_by.as_deref(), Some("machine_end_beep"));

    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        call.amd_callbacks,
        vec![("machine_end_beep".to_string(), 204)]
    );
    // The message told the model who, for whom, when, the callback number and
    // that nothing was booked…
    let events = model_events(&rig);
    let texts = system_texts(&events);
    assert_eq!(texts.len(), 1, "{texts:?}");
    for want in [
        "Alex Doe",
        "table for 4",
        &rig.booking.spoken_date,
        "+12125550199",
        "no booking",
    ] {
        assert!(texts[0].contains(want), "{want}: {}", texts[0]);
    }
    // …it was spoken after the beep and heard to its end, then we hung up.
    assert!(
        call.agent_audio.len() > 5 * 8000,
        "{} bytes played",
        call.agent_audio.len()
    );
    assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
    assert!(record
        .transcript
        .iter()
        .any(|l| l.text.contains("No booking has been made")));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_machine_with_hangup_policy_ends_at_once_saying_nothing() {
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::Voicemail,
        voicemail: VoicemailPolicy::Hangup,
        ..Default::default()
    })
    .await
    .unwrap();
    let record = place_and_finish(&rig).await;
    let outcome = record.outcome.clone().unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Voicemail, "{outcome:?}");
    assert!(outcome
        .notes
        .unwrap_or_default()
        .contains("without leaving a message"));
    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
    assert!(
        call.agent_audio.is_empty(),
        "nothing was said to the machine"
    );
    assert!(system_texts(&model_events(&rig)).is_empty());
    // Hung up within about a second of the beep (AMD poll every 500 ms).
    let beep_end_ms = reservoice::sim::scenario::host_audio("voicemail").len() as u64 / 8 + 400;
    let frames_ms = call.media_frames_sent * 20;
    assert!(
        frames_ms < beep_end_ms + 2000,
        "stream lasted {frames_ms} ms, beep ended at {beep_end_ms} ms"
    );
    rig.shutdown().await;
}
