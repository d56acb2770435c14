//! Twilio Media Stream wire types (JSON text frames over the WebSocket).
//!
//! Inbound frames are parsed into borrowed structs: the `media` payload stays a
//! `&str` slice of the frame and is forwarded to the model without decoding.
//! Numeric-looking fields arrive as JSON strings and are parsed as `u64`.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

/// A message from Twilio. Unknown events become [`StreamEvent::Other`].
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum StreamEvent<'a> {
    /// First message; nothing can be sent yet.
    Connected {
        /// `Call`.
        #[serde(borrow, default)]
        protocol: Option<Cow<'a, str>>,
    },
    /// Second message: ids and the custom parameters.
    Start {
        /// The stream's metadata.
        start: Start,
        /// The stream id (also inside `start`).
        #[serde(rename = "streamSid", default)]
        stream_sid: Option<String>,
    },
    /// 20 ms (typically) of the callee's audio.
    Media {
        /// The audio chunk.
        #[serde(borrow)]
        media: Media<'a>,
    },
    /// Echo of a mark we sent: playback reached it (or it was cleared).
    Mark {
        /// The mark.
        #[serde(borrow)]
        mark: MarkName<'a>,
    },
    /// The callee pressed a key.
    Dtmf {
        /// The key.
        #[serde(borrow)]
        dtmf: Dtmf<'a>,
    },
    /// The stream ended (the call ended or the stream was stopped).
    Stop {},
    /// Anything else: ignored.
    #[serde(other)]
    Other,
}

/// `start` metadata.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// `AC…`
    #[serde(default)]
    pub account_sid: String,
    /// `MZ…`: every message we send names it.
    pub stream_sid: String,
    /// `CA…`: the call record's id.
    pub call_sid: String,
    /// `<Parameter>` pairs, XML-unescaped.
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
    /// Audio format (always mu-law 8 kHz mono).
    #[serde(default)]
    pub media_format: Option<MediaFormat>,
}

/// The stream's audio format.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw`
    pub encoding: String,
    /// 8000
    pub sample_rate: u32,
    /// 1
    pub channels: u32,
}

/// A `media` payload.
#[derive(Debug, Deserialize)]
pub struct Media<'a> {
    /// Milliseconds since the stream started, as a decimal string: the call's audio clock.
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    /// Base64 mu-law.
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
}

impl Media<'_> {
    /// The timestamp as a number (0 when absent or malformed).
    pub fn timestamp_ms(&self) -> Option<u64> {
        self.timestamp.as_deref().and_then(|t| t.parse().ok())
    }
}

/// A mark's name.
#[derive(Debug, Deserialize)]
pub struct MarkName<'a> {
    /// Exactly what we sent.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// A key press.
#[derive(Debug, Deserialize)]
pub struct Dtmf<'a> {
    /// `0-9`, `*`, `#`.
    #[serde(borrow)]
    pub digit: Cow<'a, str>,
}

impl<'a> StreamEvent<'a> {
    /// Parse one text frame.
    pub fn parse(frame: &'a str) -> Result<Self, serde_json::Error> {
        // Hot path: `media` and `mark` arrive 50 times a second each per call.
        // An internally tagged enum makes serde buffer every field of the
        // frame (its private `Content` tree) before choosing the variant;
        // this flat struct reads them straight, borrowed. Anything else, or
        // anything it cannot read, takes the general path below.
        if let Ok(hot) = serde_json::from_str::<HotFrame<'a>>(frame) {
            match (hot.event.as_ref(), hot.media, hot.mark) {
                ("media", Some(media), _) => return Ok(StreamEvent::Media { media }),
                ("mark", _, Some(mark)) => return Ok(StreamEvent::Mark { mark }),
                _ => {}
            }
        }
        serde_json::from_str(frame)
    }
}

/// The fields of the two frequent frames, read without the enum's buffering.
#[derive(Deserialize)]
struct HotFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<Media<'a>>,
    #[serde(borrow, default)]
    mark: Option<MarkName<'a>>,
}

fn push_json_str(out: &mut String, s: &str) {
    // Stream SIDs and mark names are ours or Twilio's ids: nearly always
    // plain, so written as is (no allocation per frame); escaped otherwise.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// `{"event":"media","streamSid":…,"media":{"payload":…}}` around a base64
/// payload the caller checked (written by hand: hot path).
pub fn media(stream_sid: &str, payload_b64: &str, out: &mut String) {
    out.clear();
    out.push_str(r#"{"event":"media","streamSid":"#);
    push_json_str(out, stream_sid);
    out.push_str(r#","media":{"payload":""#);
    out.push_str(payload_b64);
    out.push_str(r#""}}"#);
}

/// `{"event":"mark",…}`: ask Twilio to tell us when playback reaches this point.
pub fn mark(stream_sid: &str, name: &str) -> String {
    let mut out = String::with_capacity(96);
    out.push_str(r#"{"event":"mark","streamSid":"#);
    push_json_str(&mut out, stream_sid);
    out.push_str(r#","mark":{"name":"#);
    push_json_str(&mut out, name);
    out.push_str("}}");
    out
}

/// `{"event":"clear",…}`: drop every buffered byte of agent audio (barge-in).
pub fn clear(stream_sid: &str) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(r#"{"event":"clear","streamSid":"#);
    push_json_str(&mut out, stream_sid);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/protocol/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }
    fn json(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn every_twilio_fixture_parses() {
        let t = fixture("twilio_connected.json");
        assert!(matches!(
            StreamEvent::parse(&t).unwrap(),
            StreamEvent::Connected { .. }
        ));
        let t = fixture("twilio_start.json");
        match StreamEvent::parse(&t).unwrap() {
            StreamEvent::Start { start, stream_sid } => {
                assert_eq!(start.call_sid, "CAcccccccccccccccccccccccccccccccc");
                assert_eq!(start.stream_sid, "MZbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
                assert_eq!(
                    stream_sid.as_deref(),
                    Some("MZbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
                );
                assert_eq!(
                    start.custom_parameters["restaurant_name"],
                    "Bob & Sue's \"Grill\" <Downtown>"
                );
                let f = start.media_format.unwrap();
                assert_eq!(
                    (f.encoding.as_str(), f.sample_rate, f.channels),
                    ("audio/x-mulaw", 8000, 1)
                );
            }
            other => panic!("{other:?}"),
        }
        let t = fixture("twilio_media.json");
        match StreamEvent::parse(&t).unwrap() {
            StreamEvent::Media { media } => {
                assert!(matches!(media.payload, Cow::Borrowed(_)));
                assert_eq!(media.timestamp_ms(), Some(20));
                assert_eq!(
                    crate::realtime::events::base64_decoded_len(&media.payload),
                    160
                );
            }
            other => panic!("{other:?}"),
        }
        let t = fixture("twilio_mark.json");
        match StreamEvent::parse(&t).unwrap() {
            StreamEvent::Mark { mark } => assert_eq!(mark.name, "item_3kQ9:1480:m12"),
            other => panic!("{other:?}"),
        }
        let t = fixture("twilio_dtmf.json");
        match StreamEvent::parse(&t).unwrap() {
            StreamEvent::Dtmf { dtmf } => assert_eq!(dtmf.digit, "5"),
            other => panic!("{other:?}"),
        }
        let t = fixture("twilio_stop.json");
        assert!(matches!(
            StreamEvent::parse(&t).unwrap(),
            StreamEvent::Stop {}
        ));
    }

    #[test]
    fn hot_path_and_general_path_agree() {
        let media = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"2","timestamp":"20","payload":"/7mr"},"streamSid":"MZ1"}"#;
        match StreamEvent::parse(media).unwrap() {
            StreamEvent::Media { media } => {
                assert!(matches!(media.payload, Cow::Borrowed("/7mr")));
                assert_eq!(media.timestamp_ms(), Some(20));
            }
            other => panic!("{other:?}"),
        }
        let escaped = r#"{"event":"mark","mark":{"name":"a\"b"},"streamSid":"MZ1"}"#;
        match StreamEvent::parse(escaped).unwrap() {
            StreamEvent::Mark { mark } => assert_eq!(mark.name, "a\"b"),
            other => panic!("{other:?}"),
        }
        // A media event without media is an error on both paths.
        assert!(StreamEvent::parse(r#"{"event":"media","mark":{"name":"x"}}"#).is_err());
        // A mark field on a stop frame does not make it a mark.
        assert!(matches!(
            StreamEvent::parse(r#"{"event":"stop","mark":{"name":"x"}}"#).unwrap(),
            StreamEvent::Stop {}
        ));
        let t = fixture("twilio_start.json");
        assert!(matches!(
            StreamEvent::parse(&t).unwrap(),
            StreamEvent::Start { .. }
        ));
    }

    #[test]
    fn outgoing_ids_are_escaped_only_when_needed() {
        assert_eq!(json(&mark("MZ1", "a\"b\\c"))["mark"]["name"], "a\"b\\c");
        assert_eq!(json(&clear("MZ\n1"))["streamSid"], "MZ\n1");
        assert_eq!(clear("MZ1"), r#"{"event":"clear","streamSid":"MZ1"}"#);
    }

    #[test]
    fn garbage_and_unknown_events() {
        assert!(matches!(
            StreamEvent::parse(r#"{"event":"future","x":1}"#).unwrap(),
            StreamEvent::Other
        ));
        assert!(StreamEvent::parse("{").is_err());
        assert!(StreamEvent::parse(r#"{"event":"start","start":{}}"#).is_err());
        assert!(StreamEvent::parse(r#"{"event":"media"}"#).is_err());
    }

    #[test]
    fn outgoing_messages_match_fixtures() {
        let sid = "MZbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let m = json(&fixture("to_twilio_media.json"));
        let mut out = String::new();
        media(sid, m["media"]["payload"].as_str().unwrap(), &mut out);
        assert_eq!(json(&out), m);
        assert_eq!(
            json(&mark(sid, "item_3kQ9:1480:m12")),
            json(&fixture("to_twilio_mark.json"))
        );
        assert_eq!(json(&clear(sid)), json(&fixture("to_twilio_clear.json")));
    }
}
