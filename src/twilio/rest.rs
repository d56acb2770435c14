//! A minimal Twilio REST client: place the outbound call, then hang it up, cancel it or replace its TwiML (docs sections 1-2).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

/// How long one REST request may take, connection included; Twilio answers
/// in well under a second, and a stuck request must not hold a call open.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The Twilio API version every path starts with.
const API_VERSION: &str = "2010-04-01";

/// Longest stretch of a non-JSON error body kept in an error message.
const MAX_ERROR_TEXT: usize = 300;

/// Talks to Twilio's Calls API with one account's credentials. Cheap to
/// clone (the HTTP client is shared); `Debug` never shows the auth token.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    http: reqwest::Client,
    /// The API base as given, without trailing slashes (for messages).
    api_base: String,
    /// The parsed base, or why it could not be parsed (reported per request
    /// so that construction stays infallible).
    base_url: Result<url::Url, String>,
    account_sid: String,
    auth_token: SecretString,
}

/// What to dial and what to run when answered: the form parameters of
/// `POST /Calls.json` that a phone agent uses (docs section 1.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateCall {
    /// Number to call, E.164 (`+15551234567`).
    pub to: String,
    /// Caller ID: a Twilio number or verified caller ID of the account.
    pub from: String,
    /// TwiML run when the call connects (e.g. [`super::twiml::connect_stream`]);
    /// at most 4000 characters.
    pub twiml: String,
    /// Absolute URL for call-progress events; sent with `StatusCallbackMethod=POST`.
    pub status_callback: Option<String>,
    /// Any of `initiated`, `ringing`, `answered`, `completed`; one
    /// `StatusCallbackEvent` parameter per entry, in this order.
    pub status_callback_events: Vec<String>,
    /// Seconds to ring before giving up (Twilio default 60, max 600).
    pub timeout_secs: Option<u32>,
    /// `Enable` or `DetectMessageEnd` to get answering-machine detection.
    pub machine_detection: Option<String>,
    /// Report AMD asynchronously (`AsyncAmd=true`) so the stream starts at
    /// once; `false` sends nothing (Twilio's default).
    pub async_amd: bool,
    /// Where the async AMD result is POSTed; sent with
    /// `AsyncAmdStatusCallbackMethod=POST`.
    pub async_amd_status_callback: Option<String>,
}

/// The Call resource Twilio returns, read leniently: only `sid` is required,
/// unknown fields are ignored, so Twilio adding or nulling fields cannot
/// break a call in progress.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct CallResource {
    /// `CA` + 32 hex digits.
    pub sid: String,
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `no-answer`,
    /// `failed` or `canceled`.
    #[serde(default)]
    pub status: Option<String>,
    /// The called party.
    #[serde(default)]
    pub to: Option<String>,
    /// The caller ID used.
    #[serde(default)]
    pub from: Option<String>,
    /// `outbound-api` for calls we create.
    #[serde(default)]
    pub direction: Option<String>,
    /// AMD result (`human`, `machine_start`, ...) once known.
    #[serde(default)]
    pub answered_by: Option<String>,
    /// Call length in seconds (a string in Twilio's JSON; numbers accepted).
    #[serde(default, deserialize_with = "string_or_number")]
    pub duration: Option<String>,
    /// Estimated queueing delay in ms (a string in Twilio's JSON; numbers accepted).
    #[serde(default, deserialize_with = "string_or_number")]
    pub queue_time: Option<String>,
}

/// Accepts a JSON string, number or null as an optional string.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(Option::<Loose>::deserialize(d)?.map(|v| match v {
        Loose::Text(s) => s,
        Loose::Int(n) => n.to_string(),
        Loose::Float(n) => n.to_string(),
    }))
}

/// Why a Twilio REST request failed; the message is meant for the operator.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with a non-2xx status (bad number, auth failure, rate
    /// limit...). `code` is Twilio's error code, documented at `more_info`.
    #[error("{}", api_message(*.status, *.code, .message))]
    Api {
        /// HTTP status.
        status: u16,
        /// Twilio error code (e.g. 21211 invalid `To`), when the body had one.
        code: Option<i64>,
        /// Twilio's message, or the start of a non-JSON body.
        message: String,
        /// Link to Twilio's documentation of the error.
        more_info: Option<String>,
    },
    /// Network, TLS or timeout failure; names the API host but never the token.
    #[error("{0}")]
    Transport(String),
    /// Twilio answered 2xx with a body that is not a Call resource.
    #[error("{0}")]
    Decode(String),
}

/// Twilio's code for an operation on a call that is no longer in progress
/// ("Calls that have completed cannot be recorded or redirected").
pub const CODE_CALL_NOT_IN_PROGRESS: i64 = 21220;
/// Twilio's code for a resource it does not know (e.g. a call SID).
pub const CODE_NOT_FOUND: i64 = 20404;

/// What a failed call update (new TwiML, [`TwilioClient::redirect_twiml`])
/// means for the call, so the caller can choose what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFailure {
    /// The call has ended (21220: not in progress) or Twilio does not know
    /// it (20404): nothing more can be done on it.
    CallOver,
    /// Twilio answered that it will not apply the update (any other 4xx,
    /// e.g. 12100 TwiML it cannot parse, 20003 authentication): the call goes
    /// on as it was, its stream included.
    Refused,
    /// No clear answer (network, timeout, a 5xx, an unreadable body): the
    /// update may or may not have been applied, so watch the stream (a `stop`
    /// means it was).
    Unknown,
}

impl TwilioError {
    /// Twilio's error code, when Twilio answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            TwilioError::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// What this error means for a call update (see [`UpdateFailure`]).
    pub fn update_failure(&self) -> UpdateFailure {
        match self {
            TwilioError::Api { code, .. }
                if matches!(*code, Some(CODE_CALL_NOT_IN_PROGRESS | CODE_NOT_FOUND)) =>
            {
                UpdateFailure::CallOver
            }
            TwilioError::Api { status: 404, .. } => UpdateFailure::CallOver,
            TwilioError::Api { status, .. } if (400..500).contains(status) => {
                UpdateFailure::Refused
            }
            // A 5xx (Twilio's trouble, whatever it did), a request that got
            // no answer, or a 2xx we cannot read: the update may have landed.
            TwilioError::Api { .. } | TwilioError::Transport(_) | TwilioError::Decode(_) => {
                UpdateFailure::Unknown
            }
        }
    }
}

fn api_message(status: u16, code: Option<i64>, message: &str) -> String {
    match code {
        Some(code) => format!("Twilio refused the call ({code}): {message}"),
        None => format!("Twilio answered HTTP {status}: {message}"),
    }
}

impl TwilioClient {
    /// A client for one account. `api_base` like `"https://api.twilio.com"`
    /// (a trailing slash is tolerated; a path prefix is kept), configurable
    /// so tests and the simulator can stand in for Twilio. An unparsable
    /// base is reported as [`TwilioError::Transport`] by each request.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        account_sid: &str,
        auth_token: SecretString,
    ) -> Self {
        let trimmed = api_base.trim().trim_end_matches('/').to_owned();
        let base_url = url::Url::parse(&trimmed)
            .map_err(|e| e.to_string())
            .and_then(|u| {
                if u.cannot_be_a_base() {
                    Err("not a base URL".to_owned())
                } else {
                    Ok(u)
                }
            });
        Self {
            http,
            api_base: trimmed,
            base_url,
            account_sid: account_sid.to_owned(),
            auth_token,
        }
    }

    /// Places the outbound call: `POST /2010-04-01/Accounts/{sid}/Calls.json`.
    /// Twilio answers `201` with the call `queued`.
    pub async fn create_call(&self, req: &CreateCall) -> Result<CallResource, TwilioError> {
        let url = self.url(&["Calls.json"])?;
        self.post(url, &create_call_form(req)).await
    }

    /// Hangs up a call in progress (`Status=completed`).
    pub async fn hang_up(&self, call_sid: &str) -> Result<CallResource, TwilioError> {
        self.update(call_sid, &[("Status", "completed")]).await
    }

    /// Cancels a call still `queued` or `ringing` (`Status=canceled`);
    /// Twilio only defines cancel for those states.
    pub async fn cancel(&self, call_sid: &str) -> Result<CallResource, TwilioError> {
        self.update(call_sid, &[("Status", "canceled")]).await
    }

    /// Replaces the TwiML the call is running (e.g. with
    /// [`super::twiml::say_and_hangup`], or
    /// [`super::twiml::play_digits_then_connect_stream`] to press keys); this
    /// leaves `<Connect>`, so the media stream stops. On failure,
    /// [`TwilioError::update_failure`] tells whether the call went on
    /// unchanged, is over, or cannot be told.
    pub async fn redirect_twiml(
        &self,
        call_sid: &str,
        twiml: &str,
    ) -> Result<CallResource, TwilioError> {
        self.update(call_sid, &[("Twiml", twiml)]).await
    }

    /// `POST /2010-04-01/Accounts/{sid}/Calls/{call_sid}.json`.
    async fn update(
        &self,
        call_sid: &str,
        form: &[(&str, &str)],
    ) -> Result<CallResource, TwilioError> {
        let file = format!("{call_sid}.json");
        let url = self.url(&["Calls", &file])?;
        self.post(url, form).await
    }

    /// `{base}/2010-04-01/Accounts/{AccountSid}/` + `tail`, each segment
    /// percent-encoded so a malformed SID cannot change the path.
    fn url(&self, tail: &[&str]) -> Result<url::Url, TwilioError> {
        let mut url = self.base_url.clone().map_err(|e| {
            TwilioError::Transport(format!(
                "invalid Twilio API base URL {:?}: {e}",
                self.api_base
            ))
        })?;
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend([API_VERSION, "Accounts", &self.account_sid])
                .extend(tail);
        }
        Ok(url)
    }

    /// Host (and port) of the API base, for error messages.
    fn host(&self) -> String {
        match &self.base_url {
            Ok(url) => match (url.host_str(), url.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => self.api_base.clone(),
            },
            Err(_) => self.api_base.clone(),
        }
    }

    async fn post<F: Serialize + ?Sized>(
        &self,
        url: url::Url,
        form: &F,
    ) -> Result<CallResource, TwilioError> {
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| {
                TwilioError::Decode(format!(
                    "Twilio at {} answered HTTP {} with a body that is not a Call resource: {e}",
                    self.host(),
                    status.as_u16()
                ))
            })
        } else {
            Err(api_error(status, &body))
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> TwilioError {
        let what = if error.is_timeout() {
            format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
        } else if error.is_connect() {
            "cannot connect".to_owned()
        } else {
            "request failed".to_owned()
        };
        // The URL carries no secret, but the host alone is enough and keeps
        // the message short; the token only ever travels in a header.
        let error = error.without_url();
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        TwilioError::Transport(format!("Twilio API at {}: {what} ({detail})", self.host()))
    }
}

/// Form pairs for `POST /Calls.json`, in the order twilio-python sends them
/// (`http/rest_create_call_request.json`); absent options are left out.
fn create_call_form(req: &CreateCall) -> Vec<(&'static str, String)> {
    let mut form = vec![("To", req.to.clone()), ("From", req.from.clone())];
    if let Some(callback) = &req.status_callback {
        form.push(("StatusCallback", callback.clone()));
    }
    for event in &req.status_callback_events {
        form.push(("StatusCallbackEvent", event.clone()));
    }
    if req.status_callback.is_some() {
        form.push(("StatusCallbackMethod", "POST".to_owned()));
    }
    if let Some(timeout) = req.timeout_secs {
        form.push(("Timeout", timeout.to_string()));
    }
    if let Some(amd) = &req.machine_detection {
        form.push(("MachineDetection", amd.clone()));
    }
    if req.async_amd {
        form.push(("AsyncAmd", "true".to_owned()));
    }
    if let Some(callback) = &req.async_amd_status_callback {
        form.push(("AsyncAmdStatusCallback", callback.clone()));
        form.push(("AsyncAmdStatusCallbackMethod", "POST".to_owned()));
    }
    form.push(("Twiml", req.twiml.clone()));
    form
}

/// Twilio's classic error body and the RFC 9457 style; every field optional.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<serde_json::Value>,
    message: Option<String>,
    more_info: Option<String>,
    title: Option<String>,
    detail: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Builds [`TwilioError::Api`] from a non-2xx answer, whatever its body.
fn api_error(status: reqwest::StatusCode, body: &[u8]) -> TwilioError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let fallback = || {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            let mut short: String = text.chars().take(MAX_ERROR_TEXT).collect();
            if short.len() < text.len() {
                short.push('…');
            }
            short
        }
    };
    match parsed {
        Some(b) => {
            let code = b.code.as_ref().and_then(|c| match c {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
            let message = match (b.message, b.title, b.detail) {
                (Some(m), _, _) if !m.is_empty() => m,
                (_, Some(t), Some(d)) if !t.is_empty() && !d.is_empty() => format!("{t}: {d}"),
                (_, _, Some(d)) if !d.is_empty() => d,
                (_, Some(t), _) if !t.is_empty() => t,
                _ => fallback(),
            };
            let more_info = b.more_info.or(b.kind.filter(|k| k.starts_with("http")));
            TwilioError::Api {
                status: status.as_u16(),
                code,
                message,
                more_info,
            }
        }
        None => TwilioError::Api {
            status: status.as_u16(),
            code: None,
            message: fallback(),
            more_info: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol/");
    const ACCOUNT_SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const CALL_SID: &str = "CAcccccccccccccccccccccccccccccccc";
    const TOKEN: &str = "12345678901234567890123456789012";

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}{name}")).expect("fixture readable")
    }

    fn json_fixture(name: &str) -> serde_json::Value {
        serde_json::from_str(&fixture(name)).expect("fixture is JSON")
    }

    #[derive(Debug, Clone)]
    struct Captured {
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    /// A stand-in for api.twilio.com on 127.0.0.1:0 that records every
    /// request and answers each with `status` and `body`.
    async fn fake_twilio(
        status: StatusCode,
        content_type: &'static str,
        body: String,
    ) -> (String, Arc<Mutex<Vec<Captured>>>) {
        let captured: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let sink = captured.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, raw: Bytes| {
                let sink = sink.clone();
                let body = body.clone();
                async move {
                    sink.lock().expect("lock").push(Captured {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        body: raw.to_vec(),
                    });
                    (status, [("content-type", content_type)], body).into_response()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        (format!("http://{addr}/"), captured)
    }

    fn client(base: &str) -> TwilioClient {
        TwilioClient::new(
            reqwest::Client::new(),
            base,
            ACCOUNT_SID,
            SecretString::from(TOKEN),
        )
    }

    fn fixture_create_call() -> CreateCall {
        let request = json_fixture("http/rest_create_call_request.json");
        let twiml = request["form"]
            .as_array()
            .expect("form")
            .iter()
            .find(|p| p[0] == "Twiml")
            .and_then(|p| p[1].as_str())
            .expect("Twiml")
            .to_owned();
        CreateCall {
            to: "+15551234567".into(),
            from: "+15557654321".into(),
            twiml,
            status_callback: Some("https://reservoice.example.com/twilio/status".into()),
            status_callback_events: ["initiated", "ringing", "answered", "completed"]
                .map(String::from)
                .to_vec(),
            timeout_secs: Some(30),
            machine_detection: Some("Enable".into()),
            async_amd: true,
            async_amd_status_callback: Some("https://reservoice.example.com/twilio/amd".into()),
        }
    }

    fn check_request(got: &Captured, fixture_name: &str) {
        let expected = json_fixture(fixture_name);
        assert_eq!(got.method, Method::POST);
        let expected_path = expected["url"]
            .as_str()
            .expect("url")
            .trim_start_matches("https://api.twilio.com");
        assert_eq!(got.path, expected_path);
        assert_eq!(
            std::str::from_utf8(&got.body).expect("utf8"),
            expected["body"].as_str().expect("body")
        );
        for name in ["Authorization", "Accept", "Content-Type"] {
            assert_eq!(
                got.headers.get(name).and_then(|v| v.to_str().ok()),
                expected["headers"][name].as_str(),
                "{name}"
            );
        }
        // The form decodes back to the fixture's ordered pairs.
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&got.body).expect("form decodes");
        let expected_pairs: Vec<(String, String)> =
            serde_json::from_value(expected["form"].clone()).expect("pairs");
        assert_eq!(pairs, expected_pairs);
    }

    #[test]
    fn create_call_form_order_and_omissions() {
        let minimal = CreateCall {
            to: "+1".into(),
            from: "+2".into(),
            twiml: "<Response/>".into(),
            ..CreateCall::default()
        };
        let keys: Vec<&str> = create_call_form(&minimal).iter().map(|p| p.0).collect();
        assert_eq!(keys, ["To", "From", "Twiml"]);
    }

    #[tokio::test]
    async fn create_call_sends_fixture_request_and_parses_201() {
        let (base, captured) = fake_twilio(
            StatusCode::CREATED,
            "application/json",
            fixture("http/rest_create_call_response_201.json"),
        )
        .await;
        let call = client(&base)
            .create_call(&fixture_create_call())
            .await
            .expect("created");
        assert_eq!(call.sid, CALL_SID);
        assert_eq!(call.status.as_deref(), Some("queued"));
        assert_eq!(call.direction.as_deref(), Some("outbound-api"));
        assert_eq!(call.to.as_deref(), Some("+15551234567"));
        assert_eq!(call.from.as_deref(), Some("+15557654321"));
        assert_eq!(call.queue_time.as_deref(), Some("0"));
        assert_eq!(call.duration, None);
        assert_eq!(call.answered_by, None);
        let got = captured.lock().expect("lock").clone();
        assert_eq!(got.len(), 1);
        check_request(&got[0], "http/rest_create_call_request.json");
    }

    #[tokio::test]
    async fn hang_up_cancel_redirect_and_key_press_send_fixture_bodies() {
        let (base, captured) = fake_twilio(
            StatusCode::OK,
            "application/json",
            fixture("http/rest_create_call_response_201.json"),
        )
        .await;
        let client = client(base.trim_end_matches('/'));
        client.hang_up(CALL_SID).await.expect("hang up");
        let redirect = json_fixture("http/rest_redirect_twiml_request.json");
        let twiml = redirect["form"][0][1].as_str().expect("twiml");
        client
            .redirect_twiml(CALL_SID, twiml)
            .await
            .expect("redirect");
        client.cancel(CALL_SID).await.expect("cancel");
        // The key press is a call update too.
        let key_press = json_fixture("http/rest_update_play_digits_request.json");
        let twiml = key_press["form"][0][1].as_str().expect("twiml");
        client
            .redirect_twiml(CALL_SID, twiml)
            .await
            .expect("key press");
        let got = captured.lock().expect("lock").clone();
        assert_eq!(got.len(), 4);
        check_request(&got[0], "http/rest_hangup_request.json");
        check_request(&got[1], "http/rest_redirect_twiml_request.json");
        assert_eq!(got[2].body, b"Status=canceled");
        assert_eq!(got[2].path, got[0].path);
        check_request(&got[3], "http/rest_update_play_digits_request.json");
    }

    /// The error a call update gets when Twilio answers `status` with `body`.
    async fn update_error(status: StatusCode, body: &str) -> TwilioError {
        let (base, _) = fake_twilio(status, "application/json", body.to_owned()).await;
        client(&base)
            .redirect_twiml(CALL_SID, "<Response><Play digits=\"w2\" /></Response>")
            .await
            .expect_err("refused")
    }

    #[tokio::test]
    async fn update_failures_tell_the_caller_what_became_of_the_call() {
        let not_in_progress = update_error(
            StatusCode::BAD_REQUEST,
            r#"{"code": 21220, "message": "Call is not in-progress. Cannot redirect.", "more_info": "https://www.twilio.com/docs/errors/21220", "status": 400}"#,
        )
        .await;
        assert_eq!(not_in_progress.code(), Some(CODE_CALL_NOT_IN_PROGRESS));
        assert_eq!(not_in_progress.update_failure(), UpdateFailure::CallOver);
        let unknown_call = update_error(
            StatusCode::NOT_FOUND,
            r#"{"code": 20404, "message": "The requested resource was not found", "status": 404}"#,
        )
        .await;
        assert_eq!(unknown_call.update_failure(), UpdateFailure::CallOver);
        let bad_twiml = update_error(
            StatusCode::BAD_REQUEST,
            r#"{"code": 12100, "message": "Document parse failure", "status": 400}"#,
        )
        .await;
        assert_eq!(bad_twiml.code(), Some(12100));
        assert_eq!(bad_twiml.update_failure(), UpdateFailure::Refused);
        let rate_limited = update_error(StatusCode::TOO_MANY_REQUESTS, "").await;
        assert_eq!(rate_limited.code(), None);
        assert_eq!(rate_limited.update_failure(), UpdateFailure::Refused);
        let outage = update_error(StatusCode::SERVICE_UNAVAILABLE, "").await;
        assert_eq!(outage.update_failure(), UpdateFailure::Unknown);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let unreachable = client(&format!("http://{addr}"))
            .redirect_twiml(CALL_SID, "<Response/>")
            .await
            .expect_err("unreachable");
        assert_eq!(unreachable.update_failure(), UpdateFailure::Unknown);
        assert_eq!(
            TwilioError::Decode("x".into()).update_failure(),
            UpdateFailure::Unknown
        );
    }

    #[tokio::test]
    async fn call_sid_cannot_escape_the_path() {
        let (base, captured) = fake_twilio(
            StatusCode::OK,
            "application/json",
            fixture("http/rest_create_call_response_201.json"),
        )
        .await;
        client(&base).hang_up("../../x?y").await.expect("answered");
        let got = captured.lock().expect("lock").clone();
        assert_eq!(
            got[0].path,
            format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/..%2F..%2Fx%3Fy.json")
        );
    }

    #[tokio::test]
    async fn error_400_becomes_api_error_with_code() {
        let (base, _) = fake_twilio(
            StatusCode::BAD_REQUEST,
            "application/json",
            fixture("http/rest_error_400.json"),
        )
        .await;
        let err = client(&base)
            .create_call(&fixture_create_call())
            .await
            .expect_err("refused");
        match &err {
            TwilioError::Api {
                status,
                code,
                message,
                more_info,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(*code, Some(21211));
                assert_eq!(
                    message,
                    "The 'To' number +1555 is not a valid phone number."
                );
                assert_eq!(
                    more_info.as_deref(),
                    Some("https://www.twilio.com/docs/errors/21211")
                );
            }
            other => panic!("expected Api, got {other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with("Twilio refused the call (21211):"));
    }

    #[test]
    fn error_bodies_rfc9457_and_non_json() {
        let rfc = br#"{"type":"https://www.twilio.com/docs/errors/20003","title":"Authenticate","status":401,"code":20003,"detail":"Invalid credentials","instance":"/x"}"#;
        match api_error(reqwest::StatusCode::UNAUTHORIZED, rfc) {
            TwilioError::Api {
                status,
                code,
                message,
                more_info,
            } => {
                assert_eq!(status, 401);
                assert_eq!(code, Some(20003));
                assert_eq!(message, "Authenticate: Invalid credentials");
                assert_eq!(
                    more_info.as_deref(),
                    Some("https://www.twilio.com/docs/errors/20003")
                );
            }
            other => panic!("{other:?}"),
        }
        let html = api_error(
            reqwest::StatusCode::BAD_GATEWAY,
            b"<html>Bad gateway</html>",
        );
        assert_eq!(
            html.to_string(),
            "Twilio answered HTTP 502: <html>Bad gateway</html>"
        );
        let empty = api_error(reqwest::StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(
            empty.to_string(),
            "Twilio answered HTTP 503: Service Unavailable"
        );
        let long = api_error(
            reqwest::StatusCode::BAD_GATEWAY,
            "é".repeat(1000).as_bytes(),
        );
        assert!(long.to_string().chars().count() < MAX_ERROR_TEXT + 40);
    }

    #[tokio::test]
    async fn non_json_2xx_is_decode_error() {
        let (base, _) = fake_twilio(StatusCode::OK, "text/plain", "ok".into()).await;
        let err = client(&base).hang_up(CALL_SID).await.expect_err("decode");
        assert!(matches!(err, TwilioError::Decode(_)), "{err:?}");
    }

    #[tokio::test]
    async fn unreachable_base_is_transport_error_without_token() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = client(&format!("http://{addr}"))
            .create_call(&fixture_create_call())
            .await
            .expect_err("unreachable");
        let TwilioError::Transport(message) = &err else {
            panic!("expected Transport, got {err:?}");
        };
        assert!(message.contains(&addr.to_string()), "{message}");
        assert!(!message.contains(TOKEN), "{message}");
        assert!(!format!("{err:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn invalid_base_is_transport_error() {
        let err = client("not a url")
            .hang_up(CALL_SID)
            .await
            .expect_err("invalid");
        assert!(matches!(err, TwilioError::Transport(_)), "{err:?}");
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", client("https://api.twilio.com/"));
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains(ACCOUNT_SID));
    }

    #[test]
    fn call_resource_is_lenient() {
        let call: CallResource =
            serde_json::from_str(r#"{"sid":"CA1","duration":12,"queue_time":null,"new":1}"#)
                .expect("lenient");
        assert_eq!(call.duration.as_deref(), Some("12"));
        assert_eq!(call.queue_time, None);
        assert!(serde_json::from_str::<CallResource>(r#"{"status":"queued"}"#).is_err());
    }
}
