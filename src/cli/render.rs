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

/// The exit code a finished record means.
pub fn exit_code(record: &CallRecord) -> i32 {
    if record
        .outcome
        .as_ref()
        .is_some_and(|o| o.status.is_booking())
    {
        return exit::BOOKED;
    }
    match record.status {
        CallStatus::Completed => exit::NOT_BOOKED,
        CallStatus::InProgress
            if record
                .outcome
                .as_ref()
                .is_some_and(|o| o.status != OutcomeStatus::InProgress) =>
        {
            exit::NOT_BOOKED
        }
        _ => exit::NOT_COMPLETED,
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

/// The outcome paragraph printed after the transcript.
pub fn outcome_text(record: &CallRecord) -> String {
    let mut out = String::new();
    match &record.outcome {
        Some(o) => out.push_str(&o.describe()),
        None => out.push_str(&format!(
            "No outcome recorded (call {}).",
            record.status.as_str()
        )),
    }
    if let Some(e) = &record.error {
        out.push_str(&format!("\nProblem: {e}"));
    }
    out
}
