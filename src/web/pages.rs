//! The page's HTML: the list of calls, one call, the form, sign-in.
//!
//! Every status is shown in words (with an icon), never by colour alone.
//! Parts the script refreshes while a call runs carry `data-part` and an id:
//! the script re-reads the page and swaps the parts whose HTML changed.

use chrono::{DateTime, NaiveTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::assets::{SCRIPT, STYLE};
use super::{DemoForm, Visitor};
use crate::domain::{
    CallRecord, CallStatus, Language, Outcome, OutcomeStatus, Reservation, Speaker, TranscriptLine,
};
use crate::store::CallPage;

/// What every page's frame needs to know.
pub struct Layout<'a> {
    /// Who is looking.
    pub visitor: &'a Visitor,
    /// The telephone network is simulated: say so on every page.
    pub demo: bool,
    /// The server asks for its API token.
    pub token_required: bool,
}

/// Which tab of the navigation is current.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Tab {
    Calls,
    NewCall,
    None,
}

const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='8' fill='%232f4acb'/%3E%3Cpath d='M11 8c1 0 2 2 3 4s0 2-1 3c1 2 2 3 4 4 1-1 1-2 3-1s4 2 4 3-2 4-4 4C13 25 7 19 7 12c0-2 3-4 4-4z' fill='white'/%3E%3C/svg%3E";

/// The handset of the brand mark (inline, so it needs no request).
fn handset() -> Markup {
    html! {
        svg class="mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false" {
            rect width="32" height="32" rx="8" {}
            path d="M11 8c1 0 2 2 3 4s0 2-1 3c1 2 2 3 4 4 1-1 1-2 3-1s4 2 4 3-2 4-4 4C13 25 7 19 7 12c0-2 3-4 4-4z" {}
        }
    }
}

fn shell(layout: &Layout, title: &str, tab: Tab, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · reservoice" }
                @if let Some(csrf) = &layout.visitor.csrf {
                    meta name="csrf-token" content=(csrf);
                }
                link rel="icon" href=(FAVICON);
                link rel="stylesheet" href=(STYLE.href());
                script src=(SCRIPT.href()) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to the content" }
                header class="top" {
                    div class="wrap bar" {
                        a class="brand" href="/" { (handset()) span { "reservoice" } }
                        nav aria-label="Main" {
                            a href="/" aria-current=[(tab == Tab::Calls).then_some("page")] { "Calls" }
                            a class="button small" href="/calls/new" aria-current=[(tab == Tab::NewCall).then_some("page")] { "Place a call" }
                        }
                        @if layout.visitor.signed_in {
                            form class="sign-out" method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(layout.visitor.csrf.as_deref().unwrap_or(""));
                                button class="link" type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                @if layout.demo {
                    div class="demo-note" role="note" {
                        div class="wrap" {
                            strong { "Simulation." }
                            " Calls go to simulated restaurants on this machine; no real phone call is made."
                        }
                    }
                }
                main id="main" class="wrap" tabindex="-1" { (main) }
            }
        }
    }
}

/// How a status looks: a tone (colour) and an icon, always with words.
#[derive(Clone, Copy)]
enum Tone {
    Good,
    Warn,
    Bad,
    Live,
    Quiet,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Good => "tone-good",
            Tone::Warn => "tone-warn",
            Tone::Bad => "tone-bad",
            Tone::Live => "tone-live",
            Tone::Quiet => "tone-quiet",
        }
    }
    fn icon(self) -> &'static str {
        match self {
            Tone::Good => "✓",
            Tone::Warn => "!",
            Tone::Bad => "✕",
            Tone::Live => "●",
            Tone::Quiet => "■",
        }
    }
}

fn badge(tone: Tone, words: &str) -> Markup {
    html! {
        span class={ "badge " (tone.class()) } {
            span class="icon" aria-hidden="true" { (tone.icon()) }
            (words)
        }
    }
}

/// A call's status in a person's words.
fn status_words(status: CallStatus) -> (&'static str, Tone) {
    match status {
        CallStatus::Queued => ("Placing", Tone::Live),
        CallStatus::Initiated => ("Dialling", Tone::Live),
        CallStatus::Ringing => ("Ringing", Tone::Live),
        CallStatus::InProgress => ("In call", Tone::Live),
        CallStatus::Completed => ("Ended", Tone::Quiet),
        CallStatus::Busy => ("Busy", Tone::Warn),
        CallStatus::NoAnswer => ("No answer", Tone::Warn),
        CallStatus::Failed => ("Failed", Tone::Bad),
        CallStatus::Canceled => ("Cancelled", Tone::Bad),
    }
}

/// An outcome in a person's words.
fn outcome_words(status: OutcomeStatus) -> (&'static str, Tone) {
    match status {
        OutcomeStatus::Booked => ("Booked", Tone::Good),
        OutcomeStatus::AlternativeBooked => ("Booked another time", Tone::Good),
        OutcomeStatus::DeclinedAlternative => ("Only other times", Tone::Warn),
        OutcomeStatus::Unavailable => ("Nothing free", Tone::Warn),
        OutcomeStatus::NoReservationsTaken => ("No reservations", Tone::Warn),
        OutcomeStatus::Voicemail => ("Voicemail", Tone::Warn),
        OutcomeStatus::NoAnswer => ("No answer", Tone::Warn),
        OutcomeStatus::Busy => ("Busy", Tone::Warn),
        OutcomeStatus::Failed => ("Failed", Tone::Bad),
        OutcomeStatus::InProgress => ("In progress", Tone::Live),
    }
}

fn status_badge(status: CallStatus) -> Markup {
    let (words, tone) = status_words(status);
    badge(tone, words)
}

fn outcome_badge(outcome: Option<OutcomeStatus>) -> Markup {
    match outcome {
        Some(o) => {
            let (words, tone) = outcome_words(o);
            badge(tone, words)
        }
        None => {
            html! { span class="none" { "—" span class="visually-hidden" { "no outcome yet" } } }
        }
    }
}

/// A moment, in UTC for the server; the script shows it in the reader's zone.
fn moment(t: DateTime<Utc>, style: &str) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) data-local=(style) {
            (t.format("%Y-%m-%d %H:%M UTC"))
        }
    }
}

fn people(n: u32) -> String {
    if n == 1 {
        "1 person".into()
    } else {
        format!("{n} people")
    }
}

/// "4 people · Wed 25 Nov, 7 PM"
fn table_words(r: &Reservation) -> String {
    format!(
        "{} · {}, {}",
        people(r.party_size.get()),
        r.slot.date.format("%a %-d %b"),
        r.slot.spoken_time()
    )
}

/// `GET /`.
pub fn calls(layout: &Layout, page: &CallPage, older_page: bool) -> Markup {
    let main = html! {
        div class="page-head" {
            h1 { "Calls" }
            p class="sub" {
                @if older_page { "Older calls" } @else { "Newest first · updates live" }
            }
        }
        section id="calls" class="card flush" data-part data-live-list[!older_page] aria-label="Calls" {
            @if page.calls.is_empty() {
                div class="empty" {
                    @if older_page {
                        p { "No older calls." }
                    } @else {
                        p { "No calls yet." }
                        a class="button" href="/calls/new" { "Place a call" }
                    }
                }
            } @else {
                table class="calls" {
                    thead {
                        tr {
                            th scope="col" { "When" }
                            th scope="col" { "Restaurant" }
                            th scope="col" { "Table" }
                            th scope="col" { "Status" }
                            th scope="col" { "Outcome" }
                        }
                    }
                    tbody {
                        @for c in &page.calls {
                            @let s = &c.summary;
                            tr id={ "row-" (s.id) } {
                                td class="when" data-label="When" { (moment(s.created_at, "datetime")) }
                                td class="who" data-label="Restaurant" {
                                    a class="row-link" href={ "/calls/" (s.id) } { (s.restaurant) }
                                    span class="number" { (s.to) }
                                }
                                td data-label="Table" {
                                    @match &c.reservation {
                                        Some(r) => (table_words(r)),
                                        None => "—",
                                    }
                                }
                                td data-label="Status" { (status_badge(s.status)) }
                                td data-label="Outcome" { (outcome_badge(s.outcome)) }
                            }
                        }
                    }
                }
            }
            @if older_page || page.older.is_some() {
                nav class="pager" aria-label="More calls" {
                    @if older_page { a href="/" { "← Newest calls" } }
                    @if let Some(cursor) = &page.older {
                        a rel="next" href={ "/?before=" (cursor.encode()) } { "Older calls →" }
                    }
                }
            }
        }
    };
    shell(layout, "Calls", Tab::Calls, main)
}

/// The steps of a call as far as the record tells them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Done,
    Now,
    Next,
    Skipped,
}

impl Step {
    fn class(self) -> &'static str {
        match self {
            Step::Done => "done",
            Step::Now => "now",
            Step::Next => "next",
            Step::Skipped => "skipped",
        }
    }
    fn icon(self) -> &'static str {
        match self {
            Step::Done => "✓",
            Step::Now => "●",
            Step::Next => "○",
            Step::Skipped => "–",
        }
    }
    fn words(self) -> &'static str {
        match self {
            Step::Done => "done",
            Step::Now => "now",
            Step::Next => "not yet",
            Step::Skipped => "did not happen",
        }
    }
}

/// Who answered, from Twilio's answering-machine detection.
fn answered_by_words(who: &str) -> &'static str {
    match who {
        "human" => "A person answered",
        "machine_end_beep" | "machine_end_silence" | "machine_end_other" | "machine_start" => {
            "An answering machine answered"
        }
        "fax" => "A fax machine answered",
        _ => "Could not tell who answered",
    }
}

/// How a call ended, and why (Twilio's reason, or how long it lasted).
fn ended_words(record: &CallRecord) -> (String, Option<String>) {
    let head = match record.status {
        CallStatus::Completed => "Call ended",
        CallStatus::Busy => "The line was busy",
        CallStatus::NoAnswer => "Nobody answered",
        CallStatus::Failed => "The call could not be placed",
        CallStatus::Canceled => "The call was cancelled",
        _ => "Ended",
    };
    let detail = match (record.started_at, record.ended_at) {
        (Some(start), Some(end)) => {
            let secs = (end - start).num_seconds().max(0);
            Some(format!("{}:{:02} on the line", secs / 60, secs % 60))
        }
        _ => record
            .outcome
            .as_ref()
            .and_then(|o| o.notes.clone())
            .filter(|n| !n.is_empty()),
    };
    (head.to_string(), detail)
}

struct TimelineEntry {
    step: Step,
    what: String,
    detail: Option<String>,
    when: Option<DateTime<Utc>>,
}

fn timeline_entries(record: &CallRecord) -> Vec<TimelineEntry> {
    let status = record.status;
    let terminal = status.is_terminal();
    let answered = record.started_at.is_some() || status == CallStatus::InProgress;
    let rang = answered
        || matches!(
            status,
            CallStatus::Ringing | CallStatus::Busy | CallStatus::NoAnswer | CallStatus::Completed
        );
    let mut out = vec![TimelineEntry {
        step: if status == CallStatus::Queued {
            Step::Now
        } else {
            Step::Done
        },
        what: "Placed".into(),
        detail: None,
        when: Some(record.created_at),
    }];
    out.push(TimelineEntry {
        step: match status {
            CallStatus::Initiated | CallStatus::Ringing => Step::Now,
            _ if rang => Step::Done,
            _ if terminal => Step::Skipped,
            _ => Step::Next,
        },
        what: "Ringing".into(),
        detail: None,
        when: None,
    });
    out.push(TimelineEntry {
        step: if answered {
            Step::Done
        } else if terminal {
            Step::Skipped
        } else {
            Step::Next
        },
        what: "Answered".into(),
        detail: None,
        when: record.started_at,
    });
    if answered || record.answered_by.is_some() {
        out.push(match &record.answered_by {
            Some(who) => TimelineEntry {
                step: Step::Done,
                what: answered_by_words(who).into(),
                detail: None,
                when: None,
            },
            None => TimelineEntry {
                step: if terminal { Step::Skipped } else { Step::Now },
                what: if terminal {
                    "No answering-machine verdict".into()
                } else {
                    "Answering-machine check".into()
                },
                detail: None,
                when: None,
            },
        });
    }
    let (what, detail) = if terminal {
        ended_words(record)
    } else if answered {
        ("Talking".to_string(), None)
    } else {
        ("Ended".to_string(), None)
    };
    out.push(TimelineEntry {
        step: if terminal {
            Step::Done
        } else if answered {
            Step::Now
        } else {
            Step::Next
        },
        what,
        detail,
        when: record.ended_at,
    });
    out
}

fn timeline(record: &CallRecord) -> Markup {
    html! {
        section id="timeline" class="card" data-part aria-labelledby="timeline-h" {
            h2 id="timeline-h" { "Timeline" }
            ol class="timeline" {
                @for e in timeline_entries(record) {
                    li class={ "step " (e.step.class()) } {
                        span class="dot" aria-hidden="true" { (e.step.icon()) }
                        div {
                            p class="what" {
                                (e.what)
                                span class="visually-hidden" { " (" (e.step.words()) ")" }
                                @if e.step == Step::Now { " " span class="now-tag" aria-hidden="true" { "now" } }
                            }
                            @if let Some(d) = &e.detail { p class="detail" { (d) } }
                            @if let Some(t) = e.when { p class="when" { (moment(t, "time")) } }
                        }
                    }
                }
            }
        }
    }
}

/// "00:03", as the terminal prints a line's time.
pub fn clock(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

fn speaker_words(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "Agent",
        Speaker::Callee => "Restaurant",
    }
}

fn speaker_key(s: Speaker) -> &'static str {
    match s {
        Speaker::Agent => "agent",
        Speaker::Callee => "callee",
    }
}

fn line(l: &TranscriptLine) -> Markup {
    html! {
        li class="line" data-speaker=(speaker_key(l.speaker)) {
            span class="at" { (clock(l.at_ms)) }
            span class="who" { (speaker_words(l.speaker)) }
            p class="text" { (l.text) }
        }
    }
}

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

fn outcome_card(record: &CallRecord) -> Markup {
    let settled = record
        .outcome
        .as_ref()
        .filter(|o| o.status != OutcomeStatus::InProgress);
    let tone = settled
        .map(|o| outcome_words(o.status).1)
        .unwrap_or(Tone::Live);
    html! {
        section id="outcome" class={ "card outcome " (tone.class()) } data-part aria-labelledby="outcome-h" {
            h2 id="outcome-h" { "Outcome" }
            @match settled {
                Some(o) => {
                    p class="summary" {
                        span class="icon" aria-hidden="true" { (tone.icon()) }
                        (o.describe())
                    }
                    (outcome_details(o))
                }
                None => {
                    p class="waiting" {
                        span class="pulse" aria-hidden="true" {}
                        @if record.status.is_terminal() { "The call is over; its outcome is being written." }
                        @else { "The outcome appears here when the agent has finished." }
                    }
                }
            }
            @if let Some(e) = &record.error {
                p class="problem" { strong { "Problem: " } (e) }
            }
        }
    }
}

fn outcome_details(o: &Outcome) -> Markup {
    html! {
        @if o.date.is_some() || o.time.is_some() || o.party_size.is_some() || o.name.is_some() || o.confirmation.is_some() {
            dl class="facts" {
                @if let Some(d) = o.date { div { dt { "Date" } dd { (d.format("%a %-d %b %Y")) } } }
                @if let Some(t) = o.time { div { dt { "Time" } dd { (hhmm(t)) } } }
                @if let Some(n) = o.party_size { div { dt { "Party" } dd { (people(n)) } } }
                @if let Some(n) = &o.name { div { dt { "Name" } dd { (n) } } }
                @if let Some(c) = &o.confirmation { div { dt { "Confirmation" } dd class="code" { (c) } } }
            }
        }
        @if !o.alternatives.is_empty() {
            h3 { "Times offered" }
            ul class="offers" { @for a in &o.alternatives { li { (a) } } }
        }
        // Other outcomes already carry their notes in the summary sentence.
        @if let Some(n) = o.notes.as_deref().filter(|n| !n.is_empty() && o.status.is_booking()) {
            h3 { "Notes" }
            p class="notes" { (n) }
        }
    }
}

fn recording(record: &CallRecord, recorded: bool) -> Markup {
    let finished = record.is_finished();
    html! {
        section id="recording" class="card" data-part hidden[!recorded] aria-labelledby="recording-h" {
            h2 id="recording-h" { "Recording" }
            @if recorded && finished {
                audio controls preload="metadata" src={ "/api/calls/" (record.id) "/recording" } {
                    a href={ "/api/calls/" (record.id) "/recording" } { "Download the recording (WAV)" }
                }
                p class="hint" { "Stereo: the restaurant on the left, the agent on the right. "
                    a href={ "/api/calls/" (record.id) "/recording" } download { "Download (WAV)" } }
            } @else if recorded {
                p class="waiting" { span class="pulse" aria-hidden="true" {} "Recording… it can be played when the call ends." }
            }
        }
    }
}

fn flexibility_words(minutes: u32) -> String {
    match minutes {
        0 => "Only that time".into(),
        m if m % 60 == 0 => format!("Up to {} h either side", m / 60),
        m => format!("Up to {m} min either side"),
    }
}

fn reservation_card(record: &CallRecord) -> Markup {
    let r = &record.reservation;
    html! {
        section class="card" aria-labelledby="reservation-h" {
            h2 id="reservation-h" { "Reservation" }
            dl class="facts stacked" {
                div { dt { "Restaurant" } dd { (r.restaurant_name) br; span class="number" { (r.restaurant_phone.as_str()) } } }
                div { dt { "Table for" } dd { (people(r.party_size.get())) } }
                div { dt { "When" } dd { (r.slot.spoken_date()) ", " (r.slot.spoken_time()) br; span class="muted" { (r.slot.timezone.name()) } } }
                div { dt { "Flexibility" } dd { (flexibility_words(r.flexibility.get())) } }
                div { dt { "Name" } dd { (r.customer_name) } }
                div { dt { "Language" } dd { (r.language.english_name()) " " span class="muted" { "(" (r.language) ")" } } }
                @if let Some(cb) = &r.callback { div { dt { "Callback" } dd class="number" { (cb.as_str()) } } }
                @if let Some(n) = &r.notes { div { dt { "Notes" } dd { (n) } } }
                div { dt { "Placed" } dd { (moment(record.created_at, "datetime")) } }
            }
        }
    }
}

fn call_state(record: &CallRecord) -> Markup {
    let live = !record.is_finished();
    html! {
        div id="call-state" class="badges" data-part data-finished=(if live { "false" } else { "true" }) {
            (status_badge(record.status))
            // "No answer" twice says nothing more.
            @if let Some(o) = record.outcome.as_ref().filter(|o| {
                o.status != OutcomeStatus::InProgress && outcome_words(o.status).0 != status_words(record.status).0
            }) {
                (outcome_badge(Some(o.status)))
            }
            @if live { span class="live-tag" { span class="pulse" aria-hidden="true" {} "Following live" } }
        }
    }
}

/// `GET /calls/{id}`.
pub fn call(layout: &Layout, record: &CallRecord, recorded: bool) -> Markup {
    let r = &record.reservation;
    let main = html! {
        div class="page-head call-head" {
            p class="crumbs" { a href="/" { "← All calls" } }
            h1 { (r.restaurant_name) }
            p class="lede" {
                "Table for " (r.party_size.get()) " · " (r.slot.spoken_date()) " at " (r.slot.spoken_time()) " · under " (r.customer_name)
            }
            (call_state(record))
        }
        div class="call-grid" data-call=(record.id) {
            div class="main-col" {
                (outcome_card(record))
                section class="card transcript" aria-labelledby="transcript-h" {
                    h2 id="transcript-h" { "Transcript" }
                    ol id="transcript-lines" class="lines" aria-live="polite" aria-relevant="additions" {
                        @for l in &record.transcript { (line(l)) }
                    }
                    p id="no-lines" class="no-lines" data-part {
                        @if record.is_finished() { "Nobody spoke on this call." } @else { "Nobody has spoken yet." }
                    }
                    template id="line-template" {
                        li class="line" {
                            span class="at" {}
                            span class="who" {}
                            p class="text" {}
                        }
                    }
                }
                (recording(record, recorded))
            }
            aside class="side-col" aria-label="About this call" {
                (reservation_card(record))
                (timeline(record))
            }
        }
    };
    shell(layout, r.restaurant_name.as_str(), Tab::None, main)
}

struct Field<'a> {
    name: &'static str,
    label: &'static str,
    hint: Option<String>,
    kind: &'static str,
    required: bool,
    value: Option<&'a str>,
    autocomplete: Option<&'static str>,
}

fn field(f: Field) -> Markup {
    let id = format!("f-{}", f.name);
    let described = match f.hint {
        Some(_) => format!("hint-{} err-{}", f.name, f.name),
        None => format!("err-{}", f.name),
    };
    html! {
        div class="field" data-field=(f.name) {
            label for=(id) {
                (f.label)
                @if !f.required { span class="optional" { " (optional)" } }
            }
            @if f.kind == "textarea" {
                textarea id=(id) name=(f.name) rows="2" aria-describedby=(described) { (f.value.unwrap_or("")) }
            } @else {
                input id=(id) name=(f.name) type=(f.kind) value=[f.value] required[f.required]
                    autocomplete=[f.autocomplete] aria-describedby=(described)
                    inputmode=[(f.kind == "number").then_some("numeric")] min=[(f.kind == "number").then_some("1")];
            }
            @if let Some(h) = &f.hint { p class="hint" id={ "hint-" (f.name) } { (h) } }
            p class="field-error" id={ "err-" (f.name) } hidden {}
        }
    }
}

/// `GET /calls/new`: the same fields as `reservoice call`.
///
/// `server_language` is the server's `RESERVOICE_LANGUAGE`, if set: the
/// language of calls whose form leaves the language empty.
pub fn new_call(
    layout: &Layout,
    demo: Option<&DemoForm>,
    server_zone: &str,
    server_language: Option<Language>,
    max_party: u32,
) -> Markup {
    let language_default = match server_language {
        Some(l) => format!("{} ({l}), this server's setting", l.english_name()),
        None => "the main language of the number's country".to_string(),
    };
    let ex = demo.map(|d| &d.example);
    let party = ex.map(|e| e.party_size.to_string());
    let text = |f: fn(&crate::domain::ReservationRequest) -> &str| ex.map(f);
    let main = html! {
        div class="page-head" {
            h1 { "Place a call" }
            p class="sub" { "The agent phones the restaurant, books the table and reports back. You can follow the call live." }
        }
        form class="card call-form" data-place-call novalidate {
            div id="form-problems" class="problems" role="alert" tabindex="-1" hidden {}
            @match demo {
                Some(d) => {
                    div class="field" data-field="to" {
                        label for="f-to" { "Simulated restaurant" }
                        select id="f-to" name="to" aria-describedby="hint-to err-to" {
                            @for r in &d.restaurants {
                                option value=(r.number) selected[Some(r.number.as_str()) == text(|e| e.to.as_str())] { (r.label) " — " (r.number) }
                            }
                        }
                        p class="hint" id="hint-to" { "Each simulated restaurant behaves differently (the demo's scenarios)." }
                        p class="field-error" id="err-to" hidden {}
                    }
                }
                None => {
                    (field(Field { name: "to", label: "Restaurant's phone number", hint: Some("International form, e.g. +33 1 42 68 53 00".into()), kind: "tel", required: true, value: None, autocomplete: Some("off") }))
                }
            }
            (field(Field { name: "restaurant", label: "Restaurant", hint: None, kind: "text", required: true, value: text(|e| e.restaurant.as_str()), autocomplete: Some("off") }))
            div class="row" {
                (field(Field { name: "party_size", label: "Party size", hint: Some(format!("1 to {max_party}")), kind: "number", required: true, value: party.as_deref(), autocomplete: Some("off") }))
                (field(Field { name: "date", label: "Date", hint: Some("tomorrow, friday, 2026-12-03, dec 3".into()), kind: "text", required: true, value: text(|e| e.date.as_str()), autocomplete: Some("off") }))
                (field(Field { name: "time", label: "Time", hint: Some("7pm, 19:30".into()), kind: "text", required: true, value: text(|e| e.time.as_str()), autocomplete: Some("off") }))
            }
            (field(Field { name: "name", label: "Name for the booking", hint: None, kind: "text", required: true, value: text(|e| e.name.as_str()), autocomplete: Some("name") }))
            div class="row" {
                (field(Field { name: "flexibility", label: "Flexibility", hint: Some("How far from that time is fine: 30m, 1h. Empty: only that time.".into()), kind: "text", required: false, value: ex.and_then(|e| e.flexibility.as_deref()), autocomplete: Some("off") }))
                (field(Field { name: "callback", label: "Callback number", hint: Some("Given to the restaurant if they ask.".into()), kind: "tel", required: false, value: ex.and_then(|e| e.callback.as_deref()), autocomplete: Some("tel") }))
            }
            (field(Field { name: "notes", label: "Notes for the restaurant", hint: Some("Window seat, high chair, an anniversary…".into()), kind: "textarea", required: false, value: ex.and_then(|e| e.notes.as_deref()), autocomplete: None }))
            (field(Field { name: "timezone", label: "Restaurant's time zone", hint: Some(format!("IANA name, e.g. Europe/Paris. Default: from the number, else {server_zone}.")), kind: "text", required: false, value: None, autocomplete: Some("off") }))
            (field(Field { name: "language", label: "Language spoken to the restaurant", hint: Some(format!("A language tag: fr, es-MX, de, it, pt-BR, ja, en. Empty: {language_default}.")), kind: "text", required: false, value: ex.and_then(|e| e.language.as_deref()), autocomplete: Some("off") }))
            div class="actions" {
                button class="button primary" type="submit" { "Place the call" }
                noscript { p class="hint" { "Placing a call from this page needs JavaScript; `reservoice call` does the same from a terminal." } }
            }
        }
    };
    shell(layout, "Place a call", Tab::NewCall, main)
}

/// `GET /sign-in`, and the answer to a wrong token.
pub fn sign_in(layout: &Layout, next: &str, problem: Option<&str>) -> Markup {
    let main = html! {
        div class="narrow" {
            form class="card sign-in" method="post" action="/sign-in" {
                h1 { "Sign in" }
                p { "This server asks for its API token (" code { "RESERVOICE_API_TOKEN" } ")." }
                input type="hidden" name="next" value=(next);
                div class="field" {
                    label for="f-token" { "API token" }
                    input id="f-token" name="token" type="password" autocomplete="current-password" required autofocus
                        aria-invalid=[problem.map(|_| "true")] aria-describedby="err-token";
                    p class="field-error" id="err-token" role="alert" hidden[problem.is_none()] { (problem.unwrap_or("")) }
                }
                button class="button primary" type="submit" { "Sign in" }
            }
        }
    };
    shell(layout, "Sign in", Tab::None, main)
}

/// A page that could not be shown.
pub fn trouble(layout: &Layout, status: axum::http::StatusCode, what: &str) -> Markup {
    let main = html! {
        div class="narrow" {
            div class="card" {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p { (what) }
                p { a href="/" { "See all calls" } }
            }
        }
    };
    shell(layout, "Error", Tab::None, main)
}
