//! The body of every error answer from `/api/*`, and its HTTP status.
//!
//! On the wire: `{"error": "<words for a person>", "code": "<kind>", …}`,
//! with the kind's details beside them (`errors` for an invalid request;
//! `twilio_code` and `call` when Twilio refused the call). `error` is always
//! there, so a client that knows nothing else can still show it; `code` lets a
//! program (the CLI, the web page) act on the kind without reading words.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::domain::{CallRecord, FieldError};

/// What the server answers instead of what was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{error}")]
pub struct ApiError {
    /// What went wrong, in words a person can act on.
    pub error: String,
    /// Which kind of failure, with its details (`code` on the wire); it sets
    /// the HTTP status.
    #[serde(flatten)]
    pub kind: ErrorKind,
}

/// The kinds of failure, each with its HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ErrorKind {
    /// `422`: not a valid reservation request (or not JSON at all); one
    /// message per field, so a person can fix them all at once.
    InvalidRequest {
        /// The fields at fault (`to`, `party_size`, …; `body` when the body
        /// itself does not read).
        errors: Vec<FieldError>,
    },
    /// `401`: the API token is missing or wrong.
    Unauthorized,
    /// `403`: refused whoever asks this way: a page on another site, a
    /// signed-in page without its CSRF token, a tokenless server reached by
    /// a name other than loopback.
    Forbidden,
    /// `404`: no such call (or no recording of it).
    NotFound,
    /// `503`: the server is draining before it stops and places no new calls.
    ShuttingDown,
    /// `502`: Twilio refused to place the call. The attempt is recorded, so
    /// `calls` lists it with the reason.
    CallNotPlaced {
        /// Twilio's error code (e.g. 21211, an invalid `To`), when it gave one.
        twilio_code: Option<i64>,
        /// The record of the refused attempt, when it could be stored.
        call: Option<Box<CallRecord>>,
    },
    /// `500`: something on the server failed (the store, most likely).
    Internal,
    /// A kind this version does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    /// The HTTP status this kind of failure is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::CallNotPlaced { .. } => StatusCode::BAD_GATEWAY,
            ErrorKind::Internal | ErrorKind::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// The request is invalid: one message per field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        ApiError {
            error: "invalid reservation request".into(),
            kind: ErrorKind::InvalidRequest { errors },
        }
    }

    /// No API token, or the wrong one.
    pub fn unauthorized() -> Self {
        ApiError {
            error: "missing or wrong API token (Authorization: Bearer …)".into(),
            kind: ErrorKind::Unauthorized,
        }
    }

    /// Refused, and `why` (no token will change that).
    pub fn forbidden(why: impl Into<String>) -> Self {
        ApiError {
            error: why.into(),
            kind: ErrorKind::Forbidden,
        }
    }

    /// `what` does not exist ("no call with id CA…").
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError {
            error: what.into(),
            kind: ErrorKind::NotFound,
        }
    }

    /// The server is draining.
    pub fn shutting_down() -> Self {
        ApiError {
            error: "the server is shutting down and places no new calls".into(),
            kind: ErrorKind::ShuttingDown,
        }
    }

    /// Twilio refused the call: its words, its code, and the recorded attempt.
    pub fn call_not_placed(
        message: impl Into<String>,
        twilio_code: Option<i64>,
        call: Option<Box<CallRecord>>,
    ) -> Self {
        ApiError {
            error: message.into(),
            kind: ErrorKind::CallNotPlaced { twilio_code, call },
        }
    }

    /// Something on the server failed; logged here, since the person only
    /// sees the message.
    pub fn internal(problem: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %problem, "request failed");
        ApiError {
            error: problem.to_string(),
            kind: ErrorKind::Internal,
        }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Read an error answer: its `status` and its `body` as received. A body
    /// that is not ours (a proxy's page, an empty answer) still gives an error
    /// of the kind its status means, with the body's text as its words.
    pub fn from_response(status: StatusCode, body: &[u8]) -> Self {
        if let Ok(error) = serde_json::from_slice::<ApiError>(body) {
            return error;
        }
        let kind = match status {
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
            StatusCode::FORBIDDEN => ErrorKind::Forbidden,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::SERVICE_UNAVAILABLE => ErrorKind::ShuttingDown,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                ErrorKind::InvalidRequest { errors: Vec::new() }
            }
            _ => ErrorKind::Unknown,
        };
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        ApiError {
            error: if text.is_empty() {
                format!("the server answered {status}")
            } else {
                text.chars().take(300).collect()
            },
            kind,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<ApiError> {
        let all = vec![
            ApiError::invalid(vec![
                FieldError {
                    field: "to".into(),
                    message: "not an international number".into(),
                },
                FieldError {
                    field: "party_size".into(),
                    message: "party size must be between 1 and 20".into(),
                },
            ]),
            ApiError::unauthorized(),
            ApiError::not_found("no call with id CAx"),
            ApiError::shutting_down(),
            ApiError::call_not_placed(
                "Twilio refused the call (21211): invalid To",
                Some(21211),
                Some(Box::new(crate::contract::events::tests::record())),
            ),
            ApiError::call_not_placed("Twilio is unreachable", None, None),
            ApiError::internal("call store: reading a call: disk I/O error"),
            ApiError::forbidden("missing or wrong CSRF token (X-CSRF-Token)"),
        ];
        // Every kind the server sends is here (the compiler lists new ones).
        for e in &all {
            match e.kind {
                ErrorKind::InvalidRequest { .. }
                | ErrorKind::Unauthorized
                | ErrorKind::Forbidden
                | ErrorKind::NotFound
                | ErrorKind::ShuttingDown
                | ErrorKind::CallNotPlaced { .. }
                | ErrorKind::Internal => {}
                ErrorKind::Unknown => unreachable!("the server never sends it"),
            }
        }
        all
    }

    async fn over_the_wire(error: ApiError) -> ApiError {
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        ApiError::from_response(status, &body)
    }

    #[tokio::test]
    async fn every_error_reads_back_as_sent() {
        for error in one_of_each() {
            assert_eq!(over_the_wire(error.clone()).await, error);
        }
    }

    #[test]
    fn the_body_keeps_the_shape_clients_already_read() {
        let body = |e: ApiError| serde_json::to_value(e).unwrap();
        let invalid = body(one_of_each().remove(0));
        assert_eq!(invalid["error"], "invalid reservation request");
        assert_eq!(invalid["code"], "invalid_request");
        assert_eq!(invalid["errors"][1]["field"], "party_size");
        let refused = body(one_of_each().remove(4));
        assert_eq!(refused["twilio_code"], 21211);
        assert_eq!(refused["call"]["reservation"]["customer_name"], "Alex Doe");
        assert!(refused["error"]
            .as_str()
            .unwrap()
            .starts_with("Twilio refused"));
        let unplaced = body(one_of_each().remove(5));
        assert!(unplaced["twilio_code"].is_null() && unplaced["call"].is_null());
        assert_eq!(
            body(ApiError::unauthorized()),
            serde_json::json!({"error": "missing or wrong API token (Authorization: Bearer …)", "code": "unauthorized"})
        );
    }

    #[test]
    fn a_body_that_is_not_ours_still_reads() {
        let e = ApiError::from_response(StatusCode::BAD_GATEWAY, b"<html>Bad Gateway</html>");
        assert_eq!(e.kind, ErrorKind::Unknown);
        assert_eq!(e.error, "<html>Bad Gateway</html>");
        let e = ApiError::from_response(StatusCode::UNAUTHORIZED, b"");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.error, "the server answered 401 Unauthorized");
        // A kind from a newer server: its words still reach the person.
        let e = ApiError::from_response(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"error": "slow down", "code": "rate_limited", "retry_after": 3}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unknown);
        assert_eq!(e.error, "slow down");
    }
}
