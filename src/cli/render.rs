//! The terminal rendering of a live call: a spinner while it rings, each
//! transcript line as it is spoken, then the outcome in plain words.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::client::{ApiClient, ClientError};
use crate::contract::{LineSpoken, LiveEvent, StatusChanged};
use crate::domain::{CallRecord, CallStatus, OutcomeStatus, Speaker, TranscriptLine};

/// Exit codes of `call` and `demo` (documented in the README).
pub mod exit {
    /// Booked (or an alternative inside the window).
    pub const BOOKED: i32 = 0;
    /// Anything unexpected.
    pub const ERROR: i32 = 1;
    /// Invalid input.
    pub const INVALID: i32 = 2;
    /// The call happened, no booking.
    pub const NOT_BOOKED: i32 = 3;
    /// The call did not happen (no answer, busy, failed, refused).
    pub const NOT_COMPLETED: i32 = 4;
    /// The person stopped following with Ctrl-C (the call goes on).
    pub const INTERRUPTED: i32 = 130;
}

/// The exit code a finished record means, from its outcome (the README's
/// table): a booking is 0; an answered call that booked nothing is 3; a call
/// that never reached anyone, or that failed on our side or the network's
/// (`failed`, whatever the call status), is 4, so a script can retry on 4 and
/// give up on 3. A record without an ending yet (no outcome, or
/// `in_progress`) is judged by whether the restaurant answered.
pub fn exit_code(record: &CallRecord) -> i32 {
    match record.outcome.as_ref().map(|o| o.status) {
        Some(OutcomeStatus::Booked | OutcomeStatus::AlternativeBooked) => exit::BOOKED,
        Some(
            OutcomeStatus::DeclinedAlternative
            | OutcomeStatus::Unavailable
            | OutcomeStatus::NoReservationsTaken
            | OutcomeStatus::Voicemail,
        ) => exit::NOT_BOOKED,
        Some(OutcomeStatus::NoAnswer | OutcomeStatus::Busy | OutcomeStatus::Failed) => {
            exit::NOT_COMPLETED
        }
        Some(OutcomeStatus::InProgress) | None if record.status == CallStatus::Completed => {
            exit::NOT_BOOKED
        }
        Some(OutcomeStatus::InProgress) | None => exit::NOT_COMPLETED,
    }
}

fn who(speaker: Speaker) -> &'static str {
    match speaker {
        Speaker::Agent => "Agent     ",
        Speaker::Callee => "Restaurant",
    }
}

/// One transcript line as printed.
pub fn line_text(line: &TranscriptLine) -> String {
    let secs = line.at_ms / 1000;
    format!(
        "[{:02}:{:02}] {}  {}",
        secs / 60,
        secs % 60,
        who(line.speaker),
        line.text
    )
}

/// What a status means to a person waiting.
fn status_words(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Queued => "Placing the call…",
        CallStatus::Initiated => "Dialling…",
        CallStatus::Ringing => "Ringing…",
        CallStatus::InProgress => "Connected.",
        CallStatus::Completed => "Call ended.",
        CallStatus::Busy => "Line busy.",
        CallStatus::NoAnswer => "No answer.",
        CallStatus::Failed => "Call failed.",
        CallStatus::Canceled => "Call cancelled.",
    }
}

/// Follow a call to its end, printing as it goes (unless `quiet`); returns the final record.
pub async fn follow(client: &ApiClient, id: &str, quiet: bool) -> Result<CallRecord, ClientError> {
    let spinner = if quiet {
        ProgressBar::hidden()
    } else {
        let s = ProgressBar::new_spinner();
        s.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        s.enable_steady_tick(Duration::from_millis(100));
        s.set_message("Placing the call…");
        s
    };
    let mut printed = 0usize;
    let print_line = |line: &TranscriptLine, spinner: &ProgressBar| {
        if !quiet {
            spinner.suspend(|| {
                println!("{}", line_text(line));
                let _ = std::io::stdout().flush();
            });
        }
    };
    let mut failures = 0u32;
    let last = 'follow: loop {
        let mut events = match client.events(id).await {
            Ok(events) => Box::pin(events),
            Err(e) => {
                failures += 1;
                if failures > RECONNECT_ATTEMPTS
                    || matches!(e, ClientError::NotFound(_) | ClientError::Unauthorized)
                {
                    spinner.finish_and_clear();
                    return Err(e);
                }
                spinner.set_message("Lost the server; reconnecting…");
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            failures = 0;
            let finished = matches!(event, LiveEvent::Finished(_));
            match event {
                LiveEvent::Snapshot(record) | LiveEvent::Finished(record) => {
                    for line in record.transcript.iter().skip(printed) {
                        print_line(line, &spinner);
                    }
                    printed = printed.max(record.transcript.len());
                    if record.transcript.is_empty() {
                        spinner.set_message(status_words(record.status));
                    }
                    if finished {
                        break 'follow *record;
                    }
                }
                LiveEvent::Status(StatusChanged { status }) => {
                    if status == CallStatus::InProgress {
                        spinner.set_message("Connected — listening…");
                    } else {
                        spinner.set_message(status_words(status));
                    }
                }
                LiveEvent::Transcript(LineSpoken { line, seq }) => {
                    // `seq` is the line's position: after a reconnection the
                    // server may repeat lines this terminal already shows.
                    if seq as usize > printed {
                        print_line(&line, &spinner);
                        printed = seq as usize;
                    }
                }
                LiveEvent::Outcome(_) => {}
            }
        }
        // The stream ended before the call did: the server restarted or the
        // network dropped. The call goes on; follow it again.
        failures += 1;
        if failures > RECONNECT_ATTEMPTS {
            spinner.finish_and_clear();
            return Err(ClientError::Other(format!(
                "lost the live events of call {id}; the call may still be going on: see `reservoice calls show {id}`"
            )));
        }
        spinner.set_message("Lost the server; reconnecting…");
        tokio::time::sleep(RECONNECT_PAUSE).await;
    };
    spinner.finish_and_clear();
    if last.is_finished() {
        Ok(last)
    } else {
        client.get_call(id).await
    }
}

/// How often `follow` tries again after losing the server.
const RECONNECT_ATTEMPTS: u32 = 15;
/// Pause between those attempts.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The outcome paragraph printed after the transcript. The record's error
/// is added only when the outcome does not already say it: a refused call or
/// an unreachable model carries the same words in both places.
pub fn outcome_text(record: &CallRecord) -> String {
    let mut out = match &record.outcome {
        Some(o) => o.describe(),
        None => format!("No outcome recorded (call {}).", record.status.as_str()),
    };
    if let Some(e) = record.error.as_deref().map(str::trim) {
        if !e.is_empty() && !out.contains(e) {
            out.push_str(&format!("\nProblem: {e}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Outcome;
    use serde_json::json;

    /// Every outcome status, and a match that stops compiling when one is added
    /// without a decision about its exit code.
    const EVERY_OUTCOME: [OutcomeStatus; 10] = [
        OutcomeStatus::Booked,
        OutcomeStatus::AlternativeBooked,
        OutcomeStatus::DeclinedAlternative,
        OutcomeStatus::Unavailable,
        OutcomeStatus::NoReservationsTaken,
        OutcomeStatus::Voicemail,
        OutcomeStatus::NoAnswer,
        OutcomeStatus::Busy,
        OutcomeStatus::Failed,
        OutcomeStatus::InProgress,
    ];
    const _: fn(OutcomeStatus) = |s| match s {
        OutcomeStatus::Booked
        | OutcomeStatus::AlternativeBooked
        | OutcomeStatus::DeclinedAlternative
        | OutcomeStatus::Unavailable
        | OutcomeStatus::NoReservationsTaken
        | OutcomeStatus::Voicemail
        | OutcomeStatus::NoAnswer
        | OutcomeStatus::Busy
        | OutcomeStatus::Failed
        | OutcomeStatus::InProgress => {}
    };
    const EVERY_CALL_STATUS: [CallStatus; 9] = [
        CallStatus::Queued,
        CallStatus::Initiated,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    fn record(status: CallStatus, outcome: Option<Outcome>, error: Option<&str>) -> CallRecord {
        let mut r: CallRecord = serde_json::from_value(json!({
            "id": "CAexit",
            "status": "completed",
            "reservation": {
                "restaurant_name": "Chez Demo", "restaurant_phone": "+12125550123", "party_size": 2,
                "slot": {"date": "2099-01-01", "time": "19:00:00", "timezone": "UTC"},
                "customer_name": "Alex Doe", "callback": null, "notes": null, "flexibility": 0
            },
            "outcome": null, "transcript": [], "answered_by": null, "error": error,
            "created_at": "2099-01-01T00:00:00Z", "updated_at": "2099-01-01T00:00:00Z",
            "started_at": null, "ended_at": null
        }))
        .expect("a valid record");
        r.status = status;
        r.outcome = outcome;
        r
    }

    /// The README's exit-code table: the row of `code`.
    fn readme_row(code: i32) -> &'static str {
        include_str!("../../README.md")
            .lines()
            .find(|l| l.starts_with(&format!("| {code} |")))
            .unwrap_or_else(|| panic!("the README's exit-code table has no row for {code}"))
    }

    #[test]
    fn every_outcome_has_the_exit_code_the_readme_gives_it_whatever_the_call_status() {
        for outcome in EVERY_OUTCOME {
            let want = match outcome {
                OutcomeStatus::Booked | OutcomeStatus::AlternativeBooked => 0,
                OutcomeStatus::DeclinedAlternative
                | OutcomeStatus::Unavailable
                | OutcomeStatus::NoReservationsTaken
                | OutcomeStatus::Voicemail => 3,
                OutcomeStatus::NoAnswer | OutcomeStatus::Busy | OutcomeStatus::Failed => 4,
                OutcomeStatus::InProgress => continue, // not an ending: below
            };
            let name = format!("`{}`", outcome.as_str());
            assert!(
                readme_row(want).contains(&name),
                "README row {want} should list {name}"
            );
            for other in [0, 3, 4].into_iter().filter(|c| *c != want) {
                assert!(
                    !readme_row(other).contains(&name),
                    "README row {other} lists {name}"
                );
            }
            for status in EVERY_CALL_STATUS {
                let r = record(status, Some(Outcome::bare(outcome, None)), None);
                assert_eq!(exit_code(&r), want, "outcome {outcome}, call {status:?}");
            }
        }
    }

    #[test]
    fn the_model_out_of_reach_is_a_failed_call_not_a_refusal() {
        // The restaurant answered and heard the apology: the call completed,
        // but nothing was asked. A script retries on 4.
        let r = record(
            CallStatus::Completed,
            Some(Outcome::bare(
                OutcomeStatus::Failed,
                Some("the AI model could not be reached".into()),
            )),
            Some("the AI model could not be reached"),
        );
        assert_eq!(exit_code(&r), exit::NOT_COMPLETED);
    }

    #[test]
    fn a_record_without_an_ending_is_judged_by_whether_the_call_completed() {
        for status in EVERY_CALL_STATUS {
            let want = if status == CallStatus::Completed {
                3
            } else {
                4
            };
            for outcome in [None, Some(Outcome::bare(OutcomeStatus::InProgress, None))] {
                let r = record(status, outcome, None);
                assert_eq!(exit_code(&r), want, "call {status:?}");
            }
        }
    }

    #[test]
    fn an_error_the_outcome_already_tells_is_printed_once() {
        let refusal = "Twilio refused the call (20003): Authenticate";
        let r = record(
            CallStatus::Failed,
            Some(Outcome::bare(OutcomeStatus::Failed, Some(refusal.into()))),
            Some(refusal),
        );
        let text = outcome_text(&r);
        assert_eq!(text.matches(refusal).count(), 1, "{text}");
        assert_eq!(text, format!("Call failed — {refusal}"));
        // An error the outcome does not tell is still shown.
        let r = record(
            CallStatus::Completed,
            Some(Outcome::bare(OutcomeStatus::Unavailable, None)),
            Some("the recording could not be written"),
        );
        assert_eq!(
            outcome_text(&r),
            "Not booked: nothing available\nProblem: the recording could not be written"
        );
    }
}
