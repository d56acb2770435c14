//! The CLI's view of the server: `POST /api/calls`, records, and live events.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;

use crate::contract::events::EventError;
use crate::contract::{ApiError, ErrorKind, LiveEvent};
use crate::domain::{CallRecord, CallSummary, FieldError, ReservationRequest};

/// Something went wrong talking to the server; each kind maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server is not there.
    #[error("cannot reach the reservoice server at {server} ({problem}); is `reservoice serve` running? (set RESERVOICE_SERVER or --server)")]
    Unreachable {
        /// Base URL tried.
        server: String,
        /// What failed.
        problem: String,
    },
    /// Wrong or missing API token.
    #[error("the server refused the API token (set RESERVOICE_API_TOKEN or --api-token)")]
    Unauthorized,
    /// The request was invalid (exit code 2).
    #[error("invalid request:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
    /// Twilio refused to place the call (exit code 4).
    #[error("{0}")]
    CallNotPlaced(String),
    /// No such call.
    #[error("no call with id {0}")]
    NotFound(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// What the server's error answer means here (`id`: the call asked about).
    fn answered(status: StatusCode, error: ApiError, id: Option<&str>) -> Self {
        match error.kind {
            ErrorKind::Unauthorized => ClientError::Unauthorized,
            ErrorKind::NotFound => ClientError::NotFound(id.unwrap_or("?").to_string()),
            ErrorKind::InvalidRequest { errors } if errors.is_empty() => {
                ClientError::Invalid(vec![FieldError {
                    field: "request".into(),
                    message: error.error,
                }])
            }
            ErrorKind::InvalidRequest { errors } => ClientError::Invalid(errors),
            ErrorKind::CallNotPlaced { .. } => ClientError::CallNotPlaced(error.error),
            ErrorKind::Forbidden
            | ErrorKind::ShuttingDown
            | ErrorKind::Internal
            | ErrorKind::Unknown => {
                ClientError::Other(format!("the server answered {status}: {}", error.error))
            }
        }
    }
}

/// A small typed client for the server's API.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        crate::crypto::install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(ApiClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        let problem = if e.is_connect() {
            "connection refused".to_string()
        } else if e.is_timeout() {
            "timed out".to_string()
        } else {
            e.to_string()
        };
        ClientError::Unreachable {
            server: self.base.clone(),
            problem,
        }
    }

    async fn check(
        &self,
        response: reqwest::Response,
        id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(ClientError::answered(
            status,
            ApiError::from_response(status, &body),
            id,
        ))
    }

    /// Send a request and read its JSON answer (`what` names it in errors).
    async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        id: Option<&str>,
        what: &str,
    ) -> Result<T, ClientError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let response = self.check(response, id).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Other(format!("unreadable {what}: {e}")))
    }

    /// Ask the server to place a reservation call.
    pub async fn create_call(
        &self,
        request: &ReservationRequest,
    ) -> Result<CallRecord, ClientError> {
        self.fetch(
            self.request(reqwest::Method::POST, "/api/calls")
                .json(request),
            None,
            "call record",
        )
        .await
    }

    /// One call's record.
    pub async fn get_call(&self, id: &str) -> Result<CallRecord, ClientError> {
        self.fetch(
            self.request(reqwest::Method::GET, &format!("/api/calls/{id}")),
            Some(id),
            "call record",
        )
        .await
    }

    /// Recent calls.
    pub async fn list_calls(&self, limit: u32) -> Result<Vec<CallSummary>, ClientError> {
        self.fetch(
            self.request(reqwest::Method::GET, &format!("/api/calls?limit={limit}")),
            None,
            "call list",
        )
        .await
    }

    /// Follow a call's live events. Events this version does not know (from
    /// a newer server) are skipped.
    pub async fn events(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<LiveEvent, ClientError>>, ClientError> {
        let response = self
            .request(reqwest::Method::GET, &format!("/api/calls/{id}/events"))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let response = self.check(response, Some(id)).await?;
        Ok(response
            .bytes_stream()
            .eventsource()
            .filter_map(|e| async move {
                match e {
                    Ok(frame) => match LiveEvent::from_frame(&frame.event, &frame.data) {
                        Ok(event) => Some(Ok(event)),
                        Err(EventError::Unknown(_)) => None,
                        Err(e) => Some(Err(ClientError::Other(e.to_string()))),
                    },
                    Err(e) => Some(Err(ClientError::Other(format!(
                        "lost the live events: {e}"
                    )))),
                }
            }))
    }
}
