//! Opening a Realtime session over WebSocket and configuring it for a phone call.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::RealtimeSettings;
use crate::domain::Language;

/// Read buffer of the Realtime socket. tungstenite's default (128 KiB) is
/// allocated per connection and zero-filled on every read, which cost more CPU
/// than the bridge itself and 128 KiB of RSS per call (docs/PERFORMANCE.md).
/// Audio deltas are a few KiB; bigger events are still read whole.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// A connected Realtime WebSocket.
pub type RealtimeConnection = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The Realtime API could not be reached or refused us.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// The server answered the upgrade with an HTTP error (bad key, unknown model…).
    #[error("the Realtime API refused the connection (HTTP {status})")]
    Refused {
        /// HTTP status of the refusal.
        status: u16,
    },
    /// Network trouble, TLS, timeout.
    #[error("cannot reach the Realtime API at {host}: {problem}")]
    Unreachable {
        /// Host we tried (never the key).
        host: String,
        /// What went wrong.
        problem: String,
    },
    /// The configured URL is unusable.
    #[error("OPENAI_REALTIME_URL is invalid: {0}")]
    BadUrl(String),
}

/// `<url>?model=<model>` (or `&model=` when the URL already has a query).
pub fn session_url(base: &str, model: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{sep}model={}",
        url::form_urlencoded::byte_serialize(model.as_bytes()).collect::<String>()
    )
}

/// Connect, authenticated with the API key as a bearer token.
pub async fn connect(settings: &RealtimeSettings) -> Result<RealtimeConnection, RealtimeError> {
    let url = session_url(&settings.url, &settings.model);
    let host = url::Url::parse(&url)
        .map_err(|e| RealtimeError::BadUrl(e.to_string()))?
        .host_str()
        .unwrap_or("?")
        .to_string();
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| RealtimeError::BadUrl(e.to_string()))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", settings.api_key.expose_secret()))
        .map_err(|_| {
            RealtimeError::BadUrl("the API key contains characters not allowed in a header".into())
        })?;
    request.headers_mut().insert("Authorization", bearer);
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES);
    // TCP_NODELAY: every event is one small, latency-bound write.
    let attempt = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Err(_) => Err(RealtimeError::Unreachable {
            host,
            problem: "timed out after 10 s".into(),
        }),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            Err(RealtimeError::Refused {
                status: response.status().as_u16(),
            })
        }
        Ok(Err(e)) => Err(RealtimeError::Unreachable {
            host,
            problem: e.to_string(),
        }),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// The model's `server_vad` silence window: this much silence after speech
/// ends the callee's turn. The bridge sends audio around it frame by frame
/// (`call::joining`).
pub const SILENCE_DURATION_MS: u64 = 600;
/// The audio `server_vad` keeps from before a detected speech start.
pub const PREFIX_PADDING_MS: u64 = 300;

/// The `session.update` that sets a call up for telephony: mu-law both ways
/// (Twilio's bytes pass through untouched), server VAD that interrupts the
/// agent when the callee talks, transcripts of the callee (with the call's
/// language as the transcription hint, ISO 639-1), the voice, the brief as
/// instructions and the agent's tools.
pub fn session_update(
    settings: &RealtimeSettings,
    instructions: &str,
    tools: serde_json::Value,
    language: Language,
) -> String {
    json!({
        "type": "session.update",
        "event_id": "client_session_update_1",
        "session": {
            "type": "realtime",
            "model": settings.model,
            "output_modalities": ["audio"],
            "instructions": instructions,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {
                        "model": settings.transcription_model,
                        "language": language.transcription_code()
                    },
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": PREFIX_PADDING_MS,
                        "silence_duration_ms": SILENCE_DURATION_MS,
                        "create_response": true,
                        "interrupt_response": true
                    }
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": settings.voice}
            },
            "tools": tools,
            "tool_choice": "auto"
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings() -> RealtimeSettings {
        RealtimeSettings {
            api_key: SecretString::from("sk-x".to_string()),
            url: "wss://api.openai.com/v1/realtime".into(),
            model: "gpt-realtime-2.1".into(),
            voice: "marin".into(),
            transcription_model: "gpt-4o-mini-transcribe".into(),
        }
    }

    #[test]
    fn url_carries_the_model() {
        assert_eq!(
            session_url("wss://api.openai.com/v1/realtime", "gpt-realtime-2.1"),
            "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"
        );
        assert_eq!(
            session_url("wss://x/realtime?api-version=1", "m"),
            "wss://x/realtime?api-version=1&model=m"
        );
    }

    #[test]
    fn session_update_has_the_fixture_shape() {
        let fixture: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/protocol/openai_session_update.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let ours: serde_json::Value = serde_json::from_str(&session_update(
            &settings(),
            "brief",
            json!([]),
            Language::ENGLISH,
        ))
        .unwrap();
        assert_eq!(
            ours["session"]["audio"]["input"]["transcription"],
            fixture["session"]["audio"]["input"]["transcription"]
        );
        assert_eq!(ours["type"], fixture["type"]);
        assert_eq!(ours["session"]["type"], "realtime");
        assert_eq!(
            ours["session"]["audio"]["input"]["format"],
            fixture["session"]["audio"]["input"]["format"]
        );
        assert_eq!(
            ours["session"]["audio"]["output"]["format"],
            fixture["session"]["audio"]["output"]["format"]
        );
        assert_eq!(
            ours["session"]["audio"]["input"]["turn_detection"]["type"],
            "server_vad"
        );
        assert_eq!(
            ours["session"]["audio"]["input"]["turn_detection"]["interrupt_response"],
            true
        );
        assert_eq!(
            ours["session"]["output_modalities"],
            fixture["session"]["output_modalities"]
        );
        // every key we send exists in the validated fixture (no invented fields)
        for key in ours["session"].as_object().unwrap().keys() {
            assert!(
                fixture["session"].get(key).is_some(),
                "unexpected session key {key}"
            );
        }
    }

    #[test]
    fn the_transcription_hint_is_the_calls_language() {
        for (tag, hint) in [
            ("fr-FR", "fr"),
            ("es-MX", "es"),
            ("ja", "ja"),
            ("en-GB", "en"),
        ] {
            let update: serde_json::Value = serde_json::from_str(&session_update(
                &settings(),
                "brief",
                json!([]),
                Language::parse(tag).unwrap(),
            ))
            .unwrap();
            assert_eq!(
                update["session"]["audio"]["input"]["transcription"]["language"], hint,
                "{tag}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_server_is_a_clear_error() {
        let mut s = settings();
        s.url = "ws://127.0.0.1:9/v1/realtime".into();
        let err = connect(&s).await.unwrap_err();
        assert!(matches!(err, RealtimeError::Unreachable { .. }), "{err}");
        assert!(!err.to_string().contains("sk-x"));
    }
}
