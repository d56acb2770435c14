//! The call core, driven faster than real time: each test is a table of
//! (time, input) rows with the actions each row must produce.
//!
//! Inputs are written as the wire frames Twilio and the model send; actions
//! are summarised in a line each ("twilio mark item_a1:100:m1", "model
//! truncate item_a1@150", "line agent@1000: …") and compared with the
//! expected ones, in order, by prefix (so long sentences can be named by
//! their beginning).

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::agent::prompts;
use crate::domain::Language;

/// The stream id every test call has.
const SID: &str = "MZ1";
/// The voicemail message the test calls are given.
const MESSAGE: &str = "VOICEMAIL MESSAGE";

/// One input, as the test writes it.
#[derive(Debug, Clone)]
enum In {
    /// Twilio `media` with this `timestamp` (20 ms of audio).
    Media(u64),
    /// Twilio echoes this mark.
    Mark(&'static str),
    /// The restaurant pressed this key (Twilio `dtmf`).
    Key(&'static str),
    /// Twilio `stop`.
    Stop,
    /// A Twilio frame that is not JSON.
    Garbage,
    /// Twilio's socket closed without `stop`.
    TwilioClosed,
    /// `input_audio_buffer.speech_started` (callee item, `audio_start_ms`).
    SpeechStarted(&'static str, u64),
    /// `input_audio_buffer.speech_stopped`.
    SpeechStopped(&'static str),
    /// The callee's words (`…input_audio_transcription.completed`).
    CalleeSaid(&'static str, &'static str),
    /// `response.created`.
    Created(&'static str),
    /// An audio delta of this many ms (response, item, ms).
    Delta(&'static str, &'static str, u64),
    /// `response.output_audio.done` (response, item).
    AudioDone(&'static str, &'static str),
    /// `response.output_audio_transcript.done` (response, item, words).
    AgentSaid(&'static str, &'static str, &'static str),
    /// A completed function call item (response, call id, tool, arguments).
    Tool(&'static str, &'static str, &'static str, &'static str),
    /// `response.done` with no output.
    Done(&'static str),
    /// `response.done` with this `output` array (JSON).
    DoneWith(&'static str, &'static str),
    /// The model connection dropped.
    ModelLost,
    /// The new model session is open.
    Reconnected,
    /// It could not be opened.
    ReconnectFailed,
    /// The answering-machine verdict.
    Amd(AnsweredBy),
    /// The drain time is over.
    Shutdown,
    /// Another instance reaped the call (its lease was lost).
    LeaseLost,
    /// The core's deadline (or any time: the core checks).
    Timeout,
    /// Twilio accepted the key-press update.
    KeysAccepted,
    /// Twilio refused it (a 4xx: the call goes on as it was).
    KeysRefused,
    /// No clear answer to it (a 5xx, the network).
    KeysUnknown,
    /// It found the call over.
    KeysCallOver,
    /// The call's new stream reached the session (its `streamSid`).
    Rejoined(&'static str),
    /// The call's new stream reached another instance.
    Moved,
}

/// A row of a conversation.
enum Step {
    /// At this many ms after the call started, this input must produce
    /// exactly these actions (each named by a prefix of its summary).
    At(u64, In, &'static [&'static str]),
    /// The core's next deadline, in ms after the start.
    Next(Option<u64>),
    /// The phase's name.
    Is(&'static str),
}
use Step::{At, Is, Next};

fn audio(ms: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(vec![0xFFu8; (ms * 8) as usize])
}

/// The wire frame of an input; `None` for inputs that are not frames.
fn frame(input: &In) -> Option<String> {
    let v = match input {
        In::Media(ts) => json!({"event": "media", "streamSid": SID, "sequenceNumber": "3",
            "media": {"track": "inbound", "chunk": "2", "timestamp": ts.to_string(), "payload": audio(20)}}),
        In::Mark(name) => {
            json!({"event": "mark", "streamSid": SID, "sequenceNumber": "4", "mark": {"name": name}})
        }
        In::Key(digit) => json!({"event": "dtmf", "streamSid": SID, "sequenceNumber": "5",
            "dtmf": {"track": "inbound_track", "digit": digit}}),
        In::Stop => json!({"event": "stop", "streamSid": SID, "sequenceNumber": "6",
            "stop": {"accountSid": "AC1", "callSid": "CA1"}}),
        In::Garbage => return Some("{not json".to_string()),
        In::SpeechStarted(item, at) => json!({"type": "input_audio_buffer.speech_started",
            "event_id": "event_1", "audio_start_ms": at, "item_id": item}),
        In::SpeechStopped(item) => json!({"type": "input_audio_buffer.speech_stopped",
            "event_id": "event_2", "audio_end_ms": 0, "item_id": item}),
        In::CalleeSaid(item, words) => {
            json!({"type": "conversation.item.input_audio_transcription.completed",
            "event_id": "event_3", "item_id": item, "content_index": 0, "transcript": words})
        }
        In::Created(resp) => json!({"type": "response.created", "event_id": "event_4",
            "response": {"object": "realtime.response", "id": resp, "status": "in_progress", "output": []}}),
        In::Delta(resp, item, ms) => {
            json!({"type": "response.output_audio.delta", "event_id": "event_5",
            "response_id": resp, "item_id": item, "output_index": 0, "content_index": 0, "delta": audio(*ms)})
        }
        In::AudioDone(resp, item) => {
            json!({"type": "response.output_audio.done", "event_id": "event_6",
            "response_id": resp, "item_id": item, "output_index": 0, "content_index": 0})
        }
        In::AgentSaid(resp, item, words) => json!({"type": "response.output_audio_transcript.done",
            "event_id": "event_7", "response_id": resp, "item_id": item, "output_index": 0,
            "content_index": 0, "transcript": words}),
        In::Tool(resp, call_id, name, arguments) => json!({"type": "response.output_item.done",
            "event_id": "event_8", "response_id": resp, "output_index": 1,
            "item": {"id": "item_fc", "type": "function_call", "status": "completed",
                "name": name, "call_id": call_id, "arguments": arguments}}),
        In::Done(resp) => json!({"type": "response.done", "event_id": "event_9",
            "response": {"object": "realtime.response", "id": resp, "status": "completed", "output": []}}),
        In::DoneWith(resp, output) => json!({"type": "response.done", "event_id": "event_9",
            "response": {"object": "realtime.response", "id": resp, "status": "completed",
                "output": serde_json::from_str::<Value>(output).expect("output JSON")}}),
        _ => return None,
    };
    Some(v.to_string())
}

fn input<'a>(given: &In, frame: &'a Option<String>) -> Input<'a> {
    let text = || frame.as_deref().expect("a frame");
    match given {
        In::Media(_) | In::Mark(_) | In::Key(_) | In::Stop | In::Garbage => Input::Twilio(text()),
        In::TwilioClosed => Input::TwilioClosed,
        In::ModelLost => Input::ModelLost("the model connection ended".into()),
        In::Reconnected => Input::ModelReconnected,
        In::ReconnectFailed => Input::ModelReconnectFailed,
        In::Amd(who) => Input::AnsweredBy(*who),
        In::Shutdown => Input::Shutdown,
        In::LeaseLost => Input::LeaseLost,
        In::Timeout => Input::Timeout,
        In::KeysAccepted => Input::KeysAccepted,
        In::KeysRefused => Input::KeysFailed(UpdateFailure::Refused, "Too Many Requests".into()),
        In::KeysUnknown => Input::KeysFailed(UpdateFailure::Unknown, "HTTP 503".into()),
        In::KeysCallOver => Input::KeysFailed(UpdateFailure::CallOver, "21220".into()),
        In::Rejoined(sid) => Input::StreamRejoined(sid.to_string()),
        In::Moved => Input::StreamMoved,
        _ => Input::Model(text()),
    }
}

/// Tool outputs as `key=value` pairs in key order (strings bare).
fn fields(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return v.to_string();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| match &map[k.as_str()] {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per action.
fn summary(action: &Action) -> String {
    let json = |text: &str| serde_json::from_str::<Value>(text).expect("actions carry JSON");
    match action {
        Action::Twilio(text) => {
            let v = json(text);
            // Frames to a later stream name it.
            let to = match v["streamSid"].as_str() {
                Some(SID) => "twilio".to_string(),
                Some(other) => format!("twilio@{other}"),
                None => panic!("no streamSid: {text}"),
            };
            match v["event"].as_str().unwrap_or("") {
                "media" => {
                    let payload = v["media"]["payload"].as_str().unwrap_or("");
                    format!("{to} media {}ms", rt::base64_decoded_len(payload) / 8)
                }
                "mark" => format!("{to} mark {}", v["mark"]["name"].as_str().unwrap_or("")),
                other => format!("{to} {other}"),
            }
        }
        Action::Model(text) => {
            let v = json(text);
            match v["type"].as_str().unwrap_or("") {
                "input_audio_buffer.append" => "model append".into(),
                "response.create" => match v["response"]["instructions"].as_str() {
                    Some(i) => format!("model response.create: {i}"),
                    None => "model response.create".into(),
                },
                "conversation.item.truncate" => format!(
                    "model truncate {}@{}",
                    v["item_id"].as_str().unwrap_or(""),
                    v["audio_end_ms"]
                ),
                "conversation.item.create" => {
                    let item = &v["item"];
                    match item["type"].as_str().unwrap_or("") {
                        "function_call_output" => format!(
                            "model output {}: {}",
                            item["call_id"].as_str().unwrap_or(""),
                            fields(&json(item["output"].as_str().unwrap_or("")))
                        ),
                        _ => format!(
                            "model {}: {}",
                            item["role"].as_str().unwrap_or(""),
                            item["content"][0]["text"].as_str().unwrap_or("")
                        ),
                    }
                }
                other => format!("model {other}"),
            }
        }
        Action::Store(Write::Line(line)) => {
            let who = match line.speaker {
                Speaker::Agent => "agent",
                Speaker::Callee => "callee",
            };
            format!("line {who}@{}: {}", line.at_ms, line.text)
        }
        Action::Store(Write::Outcome(o, how)) => format!(
            "outcome {} ({how:?}): {}",
            o.status,
            o.notes.as_deref().unwrap_or("")
        ),
        Action::Store(Write::Error(e)) => format!("error: {e}"),
        Action::Record(Audio::Inbound(at, _)) => format!("record inbound@{at}"),
        Action::Record(Audio::Outbound(at, _)) => format!("record outbound@{at}"),
        Action::Record(Audio::OutboundMulaw(at, bytes)) => {
            format!("record keys@{at} {}ms", bytes.len() / 8)
        }
        Action::Record(Audio::Clear(at)) => format!("record clear@{at}"),
        Action::HangUp => "hang up".into(),
        Action::Apologise(text) => format!("apologise: {text}"),
        Action::ReconnectModel => "reconnect model".into(),
        Action::PressKeys(k) => format!(
            "press keys {} for stream {} at {}",
            k.digits, k.stream_number, k.call_clock_ms
        ),
        Action::Close => "close".into(),
    }
}

/// The tables read frame by frame: every frame its own append and a mark
/// after every delta (joining and sparser marks have tables of their own,
/// `tuned`).
fn setup() -> CallSetup {
    CallSetup {
        stream_sid: SID.into(),
        timings: CallTimings {
            append_ms: 20,
            mark_ms: 0,
            ..CallTimings::default()
        },
        voicemail: VoicemailPolicy::Leave,
        record: false,
        spoken: Phrases::new(Language::ENGLISH),
        prompts: &prompts::ENGLISH,
        voicemail_message: MESSAGE.into(),
        dtmf: DtmfMode::Inband,
    }
}

/// A call whose keys Twilio presses (the default mode).
fn twilio_keys() -> CallSetup {
    CallSetup {
        dtmf: DtmfMode::Twilio,
        ..setup()
    }
}

/// Play `steps` on a call set up by `setup`; the core's state at the end.
fn play(setup: CallSetup, steps: &[Step]) -> CallState {
    let t0 = Instant::now();
    play_on(CallState::new(setup, t0), t0, steps)
}

/// Play `steps` on `call`, which started at `t0`.
fn play_on(mut call: CallState, t0: Instant, steps: &[Step]) -> CallState {
    let mut out = Vec::new();
    let ms = |t: Instant| t.duration_since(t0).as_millis() as u64;
    for (row, step) in steps.iter().enumerate() {
        match step {
            At(at, given, want) => {
                let wire = frame(given);
                call.handle(
                    input(given, &wire),
                    t0 + Duration::from_millis(*at),
                    &mut out,
                );
                let got: Vec<String> = out.drain(..).map(|a| summary(&a)).collect();
                let matches = got.len() == want.len()
                    && got.iter().zip(want.iter()).all(|(g, w)| g.starts_with(w));
                assert!(
                    matches,
                    "row {row} ({at} ms, {given:?}):\n  want {want:#?}\n  got  {got:#?}"
                );
            }
            Next(want) => assert_eq!(
                call.poll_timeout().map(ms),
                *want,
                "row {row}: next deadline"
            ),
            Is(want) => {
                let phase = format!("{:?}", call.phase());
                assert!(
                    phase.starts_with(want),
                    "row {row}: phase {phase}, want {want}"
                );
            }
        }
    }
    call
}

const GOODBYE: &str = "model output call_1: next=Say a short goodbye now. The call ends after your goodbye., recorded=true";
const BOOKED: &str =
    r#"{"status":"booked","date":"2026-11-25","time":"19:00","party_size":4,"name":"Alex Doe"}"#;
const ENDED: &str =
    "outcome failed (Fallback): the call ended before the agent reported an outcome";
const TECHNICAL: &str = "apologise: Sorry, we are having a technical problem";
/// The model is lost for good: said, recorded, apologised for.
const LOST: &[&str] = &[
    "error: the AI model connection dropped: the model connection ended",
    "outcome failed (Fallback): the AI model connection dropped mid-call",
    TECHNICAL,
];
const LIMIT: &str = "apologise: Sorry, I have to end the call now.";

#[test]
#[rustfmt::skip]
fn the_callee_speaks_first_and_the_agent_line_is_written_once_heard() {
    play(
        setup(),
        &[
            Is("Greeting"),
            Next(Some(3000)),
            At(20, In::Media(20), &["model append"]),
            // Nothing is playing: speech is no barge-in.
            At(300, In::SpeechStarted("item_c1", 300), &[]),
            Is("Talking"),
            Next(Some(60_300)),
            At(1200, In::SpeechStopped("item_c1"), &[]),
            At(1400, In::CalleeSaid("item_c1", "Chez Demo, hello?"), &["line callee@300: Chez Demo, hello?"]),
            At(1500, In::Media(1500), &["model append"]),
            At(1500, In::Created("resp_1"), &[]),
            At(1520, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1"]),
            // Its words wait for its audio to be heard.
            At(1530, In::AgentSaid("resp_1", "item_a1", "Hello, I am an automated assistant."), &[]),
            At(1540, In::AudioDone("resp_1", "item_a1"), &[]),
            At(1550, In::Done("resp_1"), &[]),
            At(2500, In::Mark("item_a1:1000:m1"), &["line agent@1500: Hello, I am an automated assistant."]),
            // The greeting wait is over: nothing happens at its old deadline.
            At(3000, In::Timeout, &[]),
            // The same words again (response.done carries them) are not written twice.
            At(2600, In::DoneWith("resp_1", r#"[{"id":"item_a1","type":"message","content":[{"type":"output_audio","transcript":"Hello, I am an automated assistant."}]}]"#), &[]),
            Next(Some(61_520)),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn without_a_greeting_the_agent_speaks_first() {
    play(
        setup(),
        &[
            At(20, In::Media(20), &["model append"]),
            At(2999, In::Timeout, &[]),
            At(3000, In::Timeout, &["model response.create"]),
            Is("Talking"),
            Next(Some(60_000)),
        ],
    );
    // A reply already under way is not asked for twice.
    play(
        setup(),
        &[
            At(100, In::Created("resp_1"), &[]),
            At(3000, In::Timeout, &[]),
            Is("Talking"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn barge_in_before_any_mark_counts_from_when_the_audio_was_sent() {
    play(
        setup(),
        &[
            At(2000, In::Media(2000), &["model append"]),
            At(2000, In::Created("resp_1"), &[]),
            At(2000, In::Delta("resp_1", "item_a1", 500), &["twilio media 500ms", "twilio mark item_a1:500:m1"]),
            At(2010, In::AgentSaid("resp_1", "item_a1", "one two three four five six seven eight nine ten"), &[]),
            At(2240, In::Media(2240), &["model append"]),
            At(2240, In::SpeechStarted("item_c1", 2200), &[
                "twilio clear",
                "model truncate item_a1@240",
                "line agent@2000: one two three four…",
            ]),
            // The rest of the cut reply is dropped, and the flushed mark ignored.
            At(2260, In::Delta("resp_1", "item_a1", 100), &[]),
            At(2300, In::Mark("item_a1:500:m1"), &[]),
            At(2400, In::Done("resp_1"), &[]),
            // A new reply plays again.
            At(2500, In::Delta("resp_2", "item_a2", 100), &["twilio media 100ms", "twilio mark item_a2:100:m2"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn barge_in_between_marks_extrapolates_from_the_last_echo() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms", "twilio mark item_a1:100:m1"]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms", "twilio mark item_a1:200:m2"]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms", "twilio mark item_a1:300:m3"]),
            At(1100, In::Media(1100), &["model append"]),
            At(1100, In::Mark("item_a1:100:m1"), &[]),
            At(1150, In::Media(1150), &["model append"]),
            At(1150, In::SpeechStarted("item_c1", 1150), &["twilio clear", "model truncate item_a1@150"]),
            // The words come after the cut: only those heard are written.
            At(1200, In::AgentSaid("resp_1", "item_a1", "one two three four"), &["line agent@1000: one two…"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn speech_after_every_mark_came_back_cuts_nothing() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms", "twilio mark item_a1:100:m1"]),
            At(1010, In::AgentSaid("resp_1", "item_a1", "Hello there."), &[]),
            At(1020, In::AudioDone("resp_1", "item_a1"), &[]),
            At(1030, In::Done("resp_1"), &[]),
            At(1100, In::Media(1100), &["model append"]),
            At(1100, In::Mark("item_a1:100:m1"), &["line agent@1000: Hello there."]),
            At(1200, In::SpeechStarted("item_c1", 1200), &[]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn finish_call_during_playback_then_the_goodbye_then_the_hang_up() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 2000), &["twilio media 2000ms", "twilio mark item_a1:2000:m1"]),
            At(1010, In::AgentSaid("resp_1", "item_a1", "So that is Wednesday at 7 for 4."), &[]),
            At(1020, In::AudioDone("resp_1", "item_a1"), &[]),
            // The tool call arrives while its reply is still going: the
            // goodbye is asked for once that reply is done.
            At(1030, In::Tool("resp_1", "call_1", "finish_call", BOOKED), &["outcome booked (Report)", GOODBYE]),
            Is("Finishing"),
            Next(Some(9030)),
            // Listed again in response.done: handled once.
            At(1040, In::DoneWith("resp_1", r#"[{"id":"item_fc","type":"function_call","status":"completed","name":"finish_call","call_id":"call_1","arguments":"{\"status\":\"booked\",\"date\":\"2026-11-25\",\"time\":\"19:00\"}"}]"#), &["model response.create"]),
            At(1050, In::Created("resp_2"), &[]),
            At(1060, In::Delta("resp_2", "item_a2", 1000), &["twilio media 1000ms", "twilio mark item_a2:1000:m2"]),
            At(1070, In::AgentSaid("resp_2", "item_a2", "Thank you, goodbye!"), &[]),
            At(1080, In::AudioDone("resp_2", "item_a2"), &[]),
            // The goodbye is sent: its playback decides (3 s of audio
            // unplayed, plus the grace).
            At(1090, In::Done("resp_2"), &[]),
            Next(Some(7090)),
            At(3000, In::Media(3000), &["model append"]),
            At(3000, In::Mark("item_a1:2000:m1"), &["line agent@1000: So that is Wednesday at 7 for 4."]),
            Next(Some(7000)),
            At(4000, In::Media(4000), &["model append"]),
            At(4000, In::Mark("item_a2:1000:m2"), &["line agent@1000: Thank you, goodbye!"]),
            // Everything played: hang up after the last words.
            Next(Some(4300)),
            At(4300, In::Timeout, &["hang up"]),
            Is("HungUp"),
            Next(Some(14_300)),
            At(4500, In::Stop, &[ENDED, "close"]),
            Is("Closed"),
            At(4600, In::Media(4600), &[]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_goodbye_whose_mark_never_comes_back_still_ends_the_call() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Tool("resp_1", "call_1", "finish_call", BOOKED), &["outcome booked (Report)", GOODBYE, "model response.create"]),
            At(1050, In::Created("resp_2"), &[]),
            At(1060, In::Delta("resp_2", "item_a2", 1000), &["twilio media 1000ms", "twilio mark item_a2:1000:m1"]),
            At(1070, In::AgentSaid("resp_2", "item_a2", "Thank you, goodbye!"), &[]),
            At(1100, In::Done("resp_2"), &[]),
            // Grace (3 s) plus the second still unplayed.
            Next(Some(5100)),
            At(3000, In::Media(3000), &["model append"]),
            At(5100, In::Timeout, &["hang up"]),
            // Twilio never ends the stream either: close it ourselves, with
            // the goodbye (played by the clock) on the transcript.
            Next(Some(15_100)),
            At(6000, In::Media(6000), &["model append"]),
            At(15_100, In::Timeout, &["line agent@1000: Thank you, goodbye!", ENDED, "close"]),
        ],
    );
    // The model never says goodbye: the goodbye timeout hangs up.
    play(
        setup(),
        &[
            At(1000, In::Tool("resp_1", "call_1", "finish_call", BOOKED), &["outcome booked (Report)", GOODBYE, "model response.create"]),
            Next(Some(9000)),
            At(9000, In::Timeout, &["hang up"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_reconnected_model_gets_the_conversation_so_far() {
    play(
        setup(),
        &[
            At(20, In::Media(20), &["model append"]),
            At(300, In::SpeechStarted("item_c1", 300), &[]),
            At(1400, In::CalleeSaid("item_c1", "Chez Demo, hello?"), &["line callee@300: Chez Demo, hello?"]),
            At(1500, In::Media(1500), &["model append"]),
            At(1500, In::Created("resp_1"), &[]),
            At(1500, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1"]),
            At(1510, In::AgentSaid("resp_1", "item_a1", "Hi, a table for four?"), &[]),
            At(1600, In::ModelLost, &["reconnect model"]),
            // The line still playing is written before the history is sent.
            At(1700, In::Reconnected, &[
                "line agent@1500: Hi, a table for four?",
                "model system: The connection was interrupted and restored. The phone call is still going on. The conversation so far:\nRestaurant: Chez Demo, hello?\nYou: Hi, a table for four?\nContinue the call",
                "model response.create",
            ]),
            // The new session counts its audio from the reconnect.
            At(3000, In::Media(3000), &["model append"]),
            At(3000, In::SpeechStarted("item_c2", 1000), &[]),
            At(3500, In::CalleeSaid("item_c2", "Yes, for when?"), &["line callee@2500: Yes, for when?"]),
            // The old session's mark means nothing now.
            At(3600, In::Mark("item_a1:1000:m1"), &[]),
            // Lost again: one reconnection per call.
            At(4000, In::ModelLost, LOST),
            Is("Apologising"),
            Next(Some(9000)),
            At(4100, In::Media(4100), &[]),
            At(4200, In::Stop, &["close"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_failed_reconnect_or_a_loss_while_hanging_up_ends_the_call() {
    play(
        setup(),
        &[
            At(100, In::ModelLost, &["reconnect model"]),
            At(700, In::ReconnectFailed, LOST),
            At(5700, In::Timeout, &["close"]),
        ],
    );
    play(
        setup(),
        &[
            At(100, In::Amd(AnsweredBy::Fax), &["outcome voicemail (Report)", "hang up"]),
            // No reconnect, and no apology: the call is hanging up anyway.
            At(200, In::ModelLost, &["error: the AI model connection dropped", "outcome failed (Fallback)", "close"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_certain_answering_machine_gets_the_message_then_the_call_ends() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 2000), &["twilio media 2000ms", "twilio mark item_a1:2000:m1"]),
            At(1500, In::Media(1500), &["model append"]),
            // The agent was talking to the machine: stop, then leave the message.
            At(1500, In::Amd(AnsweredBy::MachineEndBeep), &[
                "outcome voicemail (Report): answered by a machine (machine_end_beep); left a message, nothing booked",
                "model response.cancel",
                "twilio clear",
                "model truncate item_a1@500",
                "model system: VOICEMAIL MESSAGE",
            ]),
            Is("Finishing"),
            Next(Some(46_500)),
            At(1550, In::Delta("resp_1", "item_a1", 100), &[]),
            At(1600, In::Done("resp_1"), &["model response.create"]),
            At(1700, In::Created("resp_2"), &[]),
            At(1700, In::Delta("resp_2", "item_a2", 1000), &["twilio media 1000ms", "twilio mark item_a2:1000:m2"]),
            At(1800, In::Done("resp_2"), &[]),
            Next(Some(5800)),
            At(2500, In::Media(2500), &["model append"]),
            At(2500, In::Mark("item_a2:1000:m2"), &[]),
            Next(Some(2800)),
            At(2800, In::Timeout, &["hang up"]),
            // A later verdict changes nothing.
            At(2900, In::Amd(AnsweredBy::MachineEndSilence), &[]),
        ],
    );
    // Nothing playing: the message is asked for at once.
    play(
        setup(),
        &[At(4000, In::Amd(AnsweredBy::MachineEndSilence), &[
            "outcome voicemail (Report): answered by a machine (machine_end_silence); left a message",
            "model system: VOICEMAIL MESSAGE",
            "model response.create: Leave the voicemail message now.",
        ])],
    );
}

#[test]
#[rustfmt::skip]
fn hang_up_policy_and_fax_hang_up_at_once() {
    let hang_up = CallSetup {
        voicemail: VoicemailPolicy::Hangup,
        ..setup()
    };
    play(
        hang_up,
        &[
            At(4000, In::Amd(AnsweredBy::MachineEndBeep), &[
                "outcome voicemail (Report): answered by a machine (machine_end_beep); hung up without leaving a message",
                "hang up",
            ]),
            Is("HungUp"),
            Next(Some(14_000)),
        ],
    );
    // A fax is never left a message, whatever the policy.
    play(
        setup(),
        &[At(4000, In::Amd(AnsweredBy::Fax), &[
            "outcome voicemail (Report): answered by a machine (fax); hung up without leaving a message",
            "hang up",
        ])],
    );
    // The agent itself reports the machine under the hang-up policy.
    play(
        CallSetup {
            voicemail: VoicemailPolicy::Hangup,
            ..setup()
        },
        &[At(4000, In::Tool("resp_1", "call_1", "finish_call", r#"{"status":"voicemail"}"#), &["outcome voicemail (Report)", "hang up"])],
    );
    // …and under the leave policy it gets the message as its next step.
    play(
        setup(),
        &[
            At(4000, In::Tool("resp_1", "call_1", "finish_call", r#"{"status":"voicemail"}"#), &[
                "outcome voicemail (Report)",
                "model output call_1: next=VOICEMAIL MESSAGE, recorded=true",
                "model response.create",
            ]),
            Next(Some(49_000)),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn an_unsure_verdict_is_a_hint_and_a_person_changes_nothing() {
    play(
        setup(),
        &[
            At(4000, In::Amd(AnsweredBy::MachineEndOther), &["model system: The phone network's detector thinks a machine may have answered."]),
            At(4100, In::Amd(AnsweredBy::MachineStart), &["model system: The phone network's detector"]),
            At(4200, In::Amd(AnsweredBy::Human), &[]),
            At(4300, In::Amd(AnsweredBy::Unknown), &[]),
            // Nothing changes in the call itself.
            Is("Greeting"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn the_silence_limit_ends_the_call_politely() {
    play(
        setup(),
        &[
            At(20, In::Media(20), &["model append"]),
            At(3000, In::Timeout, &["model response.create"]),
            Next(Some(60_000)),
            // Speech moves the limit.
            At(30_000, In::SpeechStopped("item_c1"), &[]),
            Next(Some(90_000)),
            At(89_999, In::Timeout, &[]),
            At(90_000, In::Timeout, &["outcome failed (Fallback): the call was ended: nobody spoke for 60 s", LIMIT]),
            Is("Apologising"),
            Next(Some(95_000)),
            At(91_000, In::Media(91_000), &[]),
            At(95_000, In::Timeout, &["close"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn the_call_limit_ends_the_call_politely_and_not_after_a_hang_up() {
    let short = || CallSetup {
        timings: CallTimings {
            max_call: Duration::from_secs(120),
            ..setup().timings
        },
        ..setup()
    };
    play(
        short(),
        &[
            At(50_000, In::SpeechStarted("item_c1", 50_000), &[]),
            At(100_000, In::SpeechStopped("item_c1"), &[]),
            Next(Some(120_000)),
            At(120_000, In::Timeout, &["outcome failed (Fallback): the call was ended: the call reached its 120 s limit", LIMIT]),
        ],
    );
    // Once hung up, only Twilio's end of the stream (or giving up on it) counts.
    play(
        short(),
        &[
            At(50_000, In::SpeechStarted("item_c1", 50_000), &[]),
            At(100_000, In::SpeechStopped("item_c1"), &[]),
            At(115_000, In::Amd(AnsweredBy::Fax), &["outcome voicemail", "hang up"]),
            Next(Some(125_000)),
            At(120_000, In::Timeout, &[]),
            At(125_000, In::Timeout, &[ENDED, "close"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn the_agent_presses_keys_in_band_after_what_it_said() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Tool("resp_1", "call_1", "send_dtmf", r#"{"digits":"2"}"#), &[
                "line agent@1000: (pressed 2)",
                "twilio media 160ms",
                "twilio mark dtmf_2_1000_1:160:m1",
                "model output call_1: done=true, next=The keys were played on the line, in order, after anything you said. Say nothing now; wait for whoever answers., pressed=2",
            ]),
            // No reply is asked for: the agent waits for the line.
            At(1010, In::Done("resp_1"), &[]),
        ],
    );
    // During speech the keys play after it; a barge-in truncates the
    // speech, not the tones.
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1"]),
            At(1000, In::Tool("resp_1", "call_1", "send_dtmf", r#"{"digits":"2 #"}"#), &[
                "line agent@2000: (pressed 2#)",
                "twilio media 320ms",
                "twilio mark dtmf_2#_1000_1:320:m2",
                "model output call_1: done=true",
            ]),
            At(1500, In::Media(1500), &["model append"]),
            At(1500, In::SpeechStarted("item_c1", 1500), &["twilio clear", "model truncate item_a1@500"]),
            At(1550, In::Done("resp_1"), &[]),
            // Keys the model got wrong go back to it as an error.
            At(1600, In::Tool("resp_2", "call_2", "send_dtmf", r#"{"digits":"12a"}"#), &[
                "model output call_2: error='a' is not a key on a phone keypad",
                "model response.create",
            ]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn the_restaurants_key_presses_reach_the_transcript_and_the_model() {
    let call = play(
        setup(),
        &[
            At(2000, In::Media(2000), &["model append"]),
            At(2000, In::Key("5"), &[
                "line callee@2000: (pressed 5)",
                "model user: (The restaurant pressed key 5 on the phone keypad.)",
            ]),
            At(2100, In::Key("x"), &[]),
            At(2200, In::Key("55"), &[]),
            At(2300, In::Garbage, &[]),
        ],
    );
    assert_eq!(call.bad_frames(), 3);
}

#[test]
#[rustfmt::skip]
fn shutdown_ends_a_live_call_politely_but_not_one_hanging_up() {
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1"]),
            At(1010, In::AgentSaid("resp_1", "item_a1", "one two three four"), &[]),
            At(1500, In::Media(1500), &["model append"]),
            // What was heard of the line still playing is kept.
            At(1500, In::Shutdown, &[
                "line agent@1000: one two…",
                "outcome failed (Fallback): the call was ended because the server shut down",
                TECHNICAL,
            ]),
            At(1600, In::Stop, &["close"]),
        ],
    );
    play(
        setup(),
        &[
            At(1000, In::Amd(AnsweredBy::Fax), &["outcome voicemail", "hang up"]),
            At(1100, In::Shutdown, &[]),
            At(1200, In::TwilioClosed, &[ENDED, "close"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_lost_lease_closes_the_call_without_writing_over_the_reapers_record() {
    // Mid-conversation, with a line still playing: no line, no outcome, no
    // apology (the reaper has finished the record and hung up).
    play(
        setup(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1"]),
            At(1010, In::AgentSaid("resp_1", "item_a1", "one two three four"), &[]),
            At(1500, In::LeaseLost, &["close"]),
            Is("Closed"),
            Next(None),
            At(1600, In::Stop, &[]),
            At(1700, In::Shutdown, &[]),
        ],
    );
    // While hanging up after an answering machine: closed at once, the
    // voicemail outcome already written stays the only one.
    play(
        setup(),
        &[
            At(1000, In::Amd(AnsweredBy::Fax), &["outcome voicemail", "hang up"]),
            At(1100, In::LeaseLost, &["close"]),
            At(1200, In::TwilioClosed, &[]),
        ],
    );
    // While apologising (waiting for Twilio to end the stream): closed at
    // once, not at the apology's deadline.
    play(
        setup(),
        &[
            At(1000, In::Shutdown, &[
                "outcome failed (Fallback): the call was ended because the server shut down",
                TECHNICAL,
            ]),
            Is("Apologising"),
            At(1100, In::LeaseLost, &["close"]),
            Is("Closed"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_recorded_call_hands_every_sound_to_the_recorder() {
    play(
        CallSetup {
            record: true,
            ..setup()
        },
        &[
            At(1000, In::Media(1000), &["model append", "record inbound@1000"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1", "record outbound@1000"]),
            At(1000, In::Tool("resp_1", "call_1", "send_dtmf", r#"{"digits":"9"}"#), &["record keys@1000 160ms", "line agent@2000: (pressed 9)", "twilio media 160ms", "twilio mark", "model output call_1"]),
            At(1200, In::Media(1200), &["model append", "record inbound@1200"]),
            At(1200, In::SpeechStarted("item_c1", 1200), &["twilio clear", "record clear@1200", "model truncate item_a1@200"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn twilio_closing_without_stop_writes_the_fallback_outcome() {
    play(
        setup(),
        &[
            At(100, In::TwilioClosed, &[ENDED, "close"]),
            Is("Closed"),
            Next(None),
            At(200, In::Timeout, &[]),
        ],
    );
}

#[test]
fn cut_lines_keep_the_heard_words() {
    assert_eq!(cut_text("one two three four", 500, 1000), "one two…");
    assert_eq!(
        cut_text("one two three four", 1000, 1000),
        "one two three four"
    );
    assert_eq!(cut_text("one two, three four", 100, 1000), "");
    assert_eq!(cut_text("one two, three four", 600, 1000), "one two…");
}

/// `send_dtmf` pressing `2`, as the model calls it.
const PRESS_2: In = In::Tool("resp_1", "call_1", "send_dtmf", r#"{"digits":"2"}"#);
const PRESSED_2: &str = "model output call_1: done=true, next=The keys were played on the line, in order, after anything you said. Say nothing now; wait for whoever answers., pressed=2";
const NO_NEW_STREAM: &str =
    "the call's audio did not come back within 10 s after the keys were pressed";

#[test]
#[rustfmt::skip]
fn the_agent_presses_keys_through_twilio_and_the_call_goes_on_over_the_new_stream() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 1000), &["twilio media 1000ms", "twilio mark item_a1:1000:m1"]),
            // What the agent said plays out first: the keys wait for its mark.
            At(1100, PRESS_2, &[]),
            Is("PressingKeys { update_sent: false"),
            Next(Some(1100 + 1000 + 2000)),
            At(1150, In::AudioDone("resp_1", "item_a1"), &[]),
            At(1150, In::AgentSaid("resp_1", "item_a1", "Pressing two for reservations."), &[]),
            At(1160, In::Done("resp_1"), &[]),
            At(2000, In::Media(2000), &["model append"]),
            At(2000, In::Mark("item_a1:1000:m1"), &[
                "line agent@1000: Pressing two for reservations.",
                "press keys w2 for stream 2 at 2000",
            ]),
            Is("PressingKeys { update_sent: true"),
            Next(Some(12_000)),
            // Accepted: the key press goes on the transcript once, where the
            // update was sent; the agent is told to wait for the line.
            At(2300, In::KeysAccepted, &["line agent@2000: (pressed 2)", PRESSED_2]),
            Is("Rejoining"),
            Next(Some(12_300)),
            // The old stream's last audio still counts; its end does not end the call.
            At(2320, In::Media(2320), &["model append"]),
            At(2400, In::Stop, &[]),
            Is("Rejoining"),
            // The new stream: its timestamps start at 0, the call's clock goes on
            // (1400 ms after the update was sent at 2000).
            At(3400, In::Rejoined("MZ2"), &[]),
            Is("Talking"),
            At(3420, In::Media(20), &["model append"]),
            // The model heard nothing in the gap (1080 ms): its clock is put right.
            At(3500, In::SpeechStarted("item_c2", 2400), &[]),
            At(4000, In::CalleeSaid("item_c2", "Reservations, how can I help?"), &["line callee@3480: Reservations, how can I help?"]),
            At(4000, In::Media(600), &["model append"]),
            At(4000, In::Created("resp_2"), &[]),
            // The agent speaks on the new stream, named by its streamSid.
            At(4000, In::Delta("resp_2", "item_a2", 500), &["twilio@MZ2 media 500ms", "twilio@MZ2 mark item_a2:500"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_refused_key_press_is_told_to_the_agent_and_the_next_one_plays_in_band() {
    let call = play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            // Nothing queued: the update goes at once.
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysRefused, &[
                "model output call_1: error=Twilio did not press the keys: Too Many Requests, next=The phone network did not press the keys, so nothing was pressed. To try again, call send_dtmf again",
                "model response.create",
            ]),
            Is("Talking"),
            At(1300, In::Created("resp_2"), &[]),
            At(1300, In::Tool("resp_2", "call_2", "send_dtmf", r#"{"digits":"2"}"#), &[
                "line agent@1000: (pressed 2)",
                "twilio media 160ms",
                "twilio mark dtmf_2_1000_2",
                "model output call_2: done=true",
            ]),
        ],
    );
    assert_eq!(call.stream_number(), 1);
}

#[test]
#[rustfmt::skip]
fn a_new_stream_that_never_comes_ends_the_call_as_failed_within_the_deadline() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysAccepted, &["line agent@1000: (pressed 2)", PRESSED_2]),
            At(1300, In::Stop, &[]),
            Next(Some(11_200)),
            At(5000, In::Timeout, &[]),
            // No stream to wait for: the apology replaces the TwiML, and the call ends.
            At(11_200, In::Timeout, &[
                "error: the call's audio did not come back within 10 s",
                "outcome failed (Fallback): the call's audio did not come back within 10 s after the keys were pressed",
                TECHNICAL,
                "close",
            ]),
            Is("Closed"),
        ],
    );
    assert!(NO_NEW_STREAM.contains("10 s"));
}

#[test]
#[rustfmt::skip]
fn an_unclear_answer_waits_for_the_stream_to_tell() {
    // The old stream ended: the update landed, the keys are being played.
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysUnknown, &[]),
            Is("Rejoining"),
            At(1300, In::TwilioClosed, &["line agent@1000: (pressed 2)", PRESSED_2]),
            At(2500, In::Rejoined("MZ2"), &[]),
            Is("Talking"),
        ],
    );
    // The old stream went on: the update did not land; the agent is told.
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysUnknown, &[]),
            At(5000, In::Media(5000), &["model append"]),
            At(11_200, In::Timeout, &[
                "model output call_1: error=Twilio did not press the keys: Twilio did not apply the call update",
                "model response.create",
            ]),
            Is("Talking"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn the_stream_may_end_before_twilio_answers_the_update() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1100, In::Stop, &[]),
            Is("PressingKeys { update_sent: true"),
            At(1200, In::KeysAccepted, &["line agent@1000: (pressed 2)", PRESSED_2]),
            At(2000, In::Rejoined("MZ2"), &[]),
            Is("Talking"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn the_new_stream_may_come_before_twilios_answer() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1100, In::Stop, &[]),
            // Its arrival proves the update landed: the keys are told once.
            At(1900, In::Rejoined("MZ2"), &["line agent@1000: (pressed 2)", PRESSED_2]),
            Is("Talking"),
            // The answer, late, changes nothing.
            At(2000, In::KeysAccepted, &[]),
            At(2000, In::KeysRefused, &[]),
            Is("Talking"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_key_press_that_finds_the_call_over_ends_it() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysCallOver, &[ENDED, "close"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_stream_that_reached_another_instance_makes_this_session_yield() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysAccepted, &["line agent@1000: (pressed 2)", PRESSED_2]),
            At(1300, In::Stop, &[]),
            // No outcome, no apology: the call goes on elsewhere.
            At(2000, In::Moved, &["close"]),
            Is("Closed"),
        ],
    );
    // The instance the new stream reached took the lease: the same, no outcome.
    play(
        twilio_keys(),
        &[
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 0"]),
            At(1200, In::KeysAccepted, &["line agent@0: (pressed 2)", PRESSED_2]),
            At(1300, In::Stop, &[]),
            At(1900, In::LeaseLost, &["close"]),
            Is("Closed"),
        ],
    );
    // Once the call went on over its new stream here, news of another is stale.
    play(
        twilio_keys(),
        &[
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 0"]),
            At(1200, In::KeysAccepted, &["line agent@0: (pressed 2)", PRESSED_2]),
            At(2000, In::Rejoined("MZ2"), &[]),
            At(2100, In::Moved, &[]),
            Is("Talking"),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn keys_asked_for_while_others_are_pressed_wait() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1100, In::Tool("resp_1", "call_2", "send_dtmf", r#"{"digits":"3"}"#), &[
                "model output call_2: error=The keys you asked for before are still being pressed.",
            ]),
            // Keys Twilio's <Play digits> refuses are the tool's error, as in-band.
            At(1100, In::Tool("resp_1", "call_3", "send_dtmf", r#"{"digits":"2x"}"#), &[
                "model output call_3: error='x' is not a key on a phone keypad",
                "model response.create",
            ]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn agent_audio_between_two_streams_is_dropped_and_not_written() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysAccepted, &["line agent@1000: (pressed 2)", PRESSED_2]),
            At(1300, In::Created("resp_2"), &[]),
            At(1300, In::Delta("resp_2", "item_a2", 500), &["model response.cancel"]),
            At(1310, In::Delta("resp_2", "item_a2", 500), &[]),
            At(1400, In::AgentSaid("resp_2", "item_a2", "Hello? Hello?"), &[]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn limits_and_shutdown_still_end_a_call_between_streams() {
    play(
        twilio_keys(),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysAccepted, &["line agent@1000: (pressed 2)", PRESSED_2]),
            At(1300, In::Stop, &[]),
            At(1400, In::Shutdown, &[
                "outcome failed (Fallback): the call was ended because the server shut down",
                "apologise:",
                "close",
            ]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_recorded_key_press_through_twilio_records_its_tones_where_twilio_plays_them() {
    play(
        CallSetup { record: true, ..twilio_keys() },
        &[
            At(1000, In::Media(1000), &["model append", "record inbound@1000"]),
            At(1000, PRESS_2, &["press keys w2 for stream 2 at 1000"]),
            At(1200, In::KeysAccepted, &["record keys@1500 160ms", "line agent@1000: (pressed 2)", PRESSED_2]),
            At(1300, In::Stop, &[]),
            At(2600, In::Rejoined("MZ2"), &[]),
            // The new stream's audio lands on the call's clock, after the gap.
            At(2620, In::Media(20), &["model append", "record inbound@2620"]),
        ],
    );
}

#[test]
#[rustfmt::skip]
fn a_call_resumed_on_another_instance_gets_the_conversation_and_keeps_its_clock() {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let call = CallState::resume(
        twilio_keys(),
        Resume {
            stream_number: 2,
            call_clock_ms: 48_260,
            history: vec![
                (Speaker::Callee, "For reservations, press two.".into()),
                (Speaker::Agent, "(pressed 2)".into()),
            ],
        },
        t0,
        &mut out,
    );
    let got: Vec<String> = out.iter().map(summary).collect();
    assert_eq!(got, ["model system: The connection was interrupted and restored. The phone call is still going on. The conversation so far:\nRestaurant: For reservations, press two.\nYou: (pressed 2)\nContinue the call from where it stopped; do not start over."]);
    let call = play_on(
        call,
        t0,
        &[
            Is("Talking"),
            At(20, In::Media(20), &["model append"]),
            At(300, In::SpeechStarted("item_c1", 100), &[]),
            At(900, In::CalleeSaid("item_c1", "Reservations."), &["line callee@48360: Reservations."]),
            // Its own next key press opens the call's third stream.
            At(1000, In::Media(740), &["model append"]),
            At(1000, In::Tool("resp_1", "call_9", "send_dtmf", r##"{"digits":"#"}"##), &["press keys w# for stream 3 at 49000"]),
        ],
    );
    assert_eq!(call.stream_number(), 2);
}

fn tuned(append_ms: u64, mark_ms: u64) -> CallSetup {
    CallSetup {
        timings: CallTimings {
            append_ms,
            append_join: crate::config::AppendJoin::Always,
            mark_ms,
            ..CallTimings::default()
        },
        ..setup()
    }
}

#[test]
#[rustfmt::skip]
fn frames_are_joined_into_one_append_per_append_ms() {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut call = CallState::new(tuned(60, 0), t0);
    let mut appends = Vec::new();
    for n in 0..7u64 {
        let f = frame(&In::Media(n * 20)).unwrap();
        call.handle(Input::Twilio(&f), t0, &mut out);
        for a in out.drain(..) {
            let Action::Model(text) = a else { panic!("{a:?}") };
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["type"], "input_audio_buffer.append");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v["audio"].as_str().unwrap())
                .unwrap();
            appends.push((n, bytes));
        }
    }
    // Three 20 ms frames per append: after the 3rd and the 6th; the 7th waits.
    assert_eq!(appends.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![2, 5]);
    assert!(appends.iter().all(|(_, b)| b.len() == 480 && b.iter().all(|&x| x == 0xFF)));
    // A payload that is not base64 is refused without spoiling the next append.
    let bad = json!({"event": "media", "streamSid": SID, "media": {"timestamp": "140", "payload": "A==="}})
        .to_string();
    call.handle(Input::Twilio(&bad), t0, &mut out);
    assert!(out.is_empty());
    assert_eq!(call.bad_frames(), 1);
}

/// The default joining: appends of up to 100 ms where the model decides nothing.
fn safe_joining() -> CallSetup {
    CallSetup {
        timings: CallTimings {
            append_ms: 100,
            append_join: crate::config::AppendJoin::Safe,
            ..CallTimings::default()
        },
        ..setup()
    }
}

#[test]
fn safe_joining_sends_the_turn_window_frame_by_frame_and_joins_the_rest() {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut call = CallState::new(safe_joining(), t0);
    let mut per_frame = Vec::new();
    for n in 0..100u64 {
        let f = frame(&In::Media(n * 20)).unwrap();
        call.handle(Input::Twilio(&f), t0, &mut out);
        per_frame.push(
            out.drain(..)
                .filter(|a| matches!(a, Action::Model(_)))
                .count(),
        );
    }
    // Silence: its first 400 ms one append per five frames, then where the
    // model's 600 ms window may close (400 to 800 ms) frame by frame, then
    // (a still line) one append per second.
    let joined = [0, 0, 0, 0, 1];
    assert_eq!(&per_frame[..20], &joined.repeat(4)[..]);
    assert_eq!(&per_frame[20..40], &[1; 20]);
    assert_eq!(per_frame[40..].iter().sum::<usize>(), 1);
    assert_eq!(per_frame[89], 1, "the 50th frame past the window");
}

#[test]
#[rustfmt::skip]
fn marks_every_200_ms_and_at_the_end_of_the_item_keep_the_barge_in_exact() {
    play(
        tuned(20, 200),
        &[
            At(1000, In::Media(1000), &["model append"]),
            At(1000, In::Created("resp_1"), &[]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms"]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms", "twilio mark item_a1:200:m1"]),
            At(1000, In::Delta("resp_1", "item_a1", 100), &["twilio media 100ms"]),
            At(1010, In::AudioDone("resp_1", "item_a1"), &["twilio mark item_a1:300:m2"]),
            At(1200, In::Media(1200), &["model append"]),
            At(1200, In::Mark("item_a1:200:m1"), &[]),
            At(1260, In::Media(1260), &["model append"]),
            At(1260, In::SpeechStarted("item_c1", 1260), &["twilio clear", "model truncate item_a1@260"]),
            At(1300, In::Mark("item_a1:300:m2"), &[]),
            At(1400, In::Delta("resp_2", "item_a2", 100), &["twilio media 100ms"]),
            // No `output_audio.done`: `response.done` marks the end.
            At(1410, In::Done("resp_2"), &["twilio mark item_a2:100:m3"]),
        ],
    );
}

#[test]
fn the_models_speech_events_end_the_frame_by_frame_stretches() {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let mut call = CallState::new(safe_joining(), t0);
    // A loud 20 ms frame (a square wave at about -15 dBFS).
    let loud = base64::engine::general_purpose::STANDARD.encode(
        (0..160)
            .map(|i| crate::audio::mulaw::encode(if i % 8 < 4 { 6000 } else { -6000 }))
            .collect::<Vec<u8>>(),
    );
    let appends = |call: &mut CallState, n: u64, from: u64, loud_audio: bool| {
        let mut out = Vec::new();
        let mut per_frame = Vec::new();
        for k in 0..n {
            let ts = (from + k) * 20;
            let f = if loud_audio {
                json!({"event": "media", "streamSid": SID, "media": {"timestamp": ts.to_string(), "payload": loud}})
                    .to_string()
            } else {
                frame(&In::Media(ts)).unwrap()
            };
            call.handle(Input::Twilio(&f), t0, &mut out);
            per_frame.push(
                out.drain(..)
                    .filter(|a| matches!(a, Action::Model(_)))
                    .count(),
            );
        }
        per_frame
    };
    // Speech: frame by frame until the model says it heard it, then joined.
    assert_eq!(appends(&mut call, 3, 0, true), [1, 1, 1]);
    let started = frame(&In::SpeechStarted("item_c1", 0)).unwrap();
    call.handle(Input::Model(&started), t0, &mut out);
    assert_eq!(appends(&mut call, 10, 3, true).iter().sum::<usize>(), 2);
    // The silence after it: frame by frame from 400 ms until the model
    // ends the turn, then a still line is held.
    let sent = appends(&mut call, 25, 13, false);
    assert_eq!(&sent[19..], &[1; 6]);
    let stopped = frame(&In::SpeechStopped("item_c1")).unwrap();
    call.handle(Input::Model(&stopped), t0, &mut out);
    assert_eq!(appends(&mut call, 20, 38, false), [0; 20]);
}
