//! reservoice: an AI voice agent that phones a restaurant on someone's behalf
//! and books the table.
//!
//! Twilio places the call and streams its audio to our server over a Media
//! Stream; the OpenAI Realtime model listens and speaks; the agent books (or
//! negotiates within the limits it was given), hangs up, and the person gets a
//! structured outcome and a transcript.
//!
//! # Module map
//!
//! - [`cli`]: the command line: `serve`, `call`, `calls`, `demo`; the API
//!   client and the live rendering of a call (spinner, transcript, outcome).
//! - [`config`]: settings from flags, environment and `.env`; secrets typed so
//!   they cannot be printed; [`config::PublicUrl`], the one source of every URL
//!   Twilio is given (and so of every URL its signatures are checked against).
//! - [`crypto`]: a leaf: constant-time comparison of secrets, the TLS provider.
//! - [`domain`]: the nouns, valid by construction: phone numbers, the
//!   reservation and its round trip through TwiML parameters, what marks a
//!   later stream of the same call, dates people type, the restaurant's time
//!   zone and language from its number (the language a request, the
//!   server's setting or the number chooses travels with the call), dates and
//!   times said in that language, the outcome, who answered (AMD), the call
//!   record.
//! - [`contract`]: the HTTP contract of `/api/*` shared by the server and its
//!   clients: the live events of a call and the error bodies.
//! - [`dialer`]: placing a call (TwiML with the reservation, Twilio's create
//!   request, the record; a refusal recorded too), whoever asks for it.
//! - [`phrases`]: what the restaurant hears from the server itself (apologies,
//!   disclosure, the opening request, voicemail message, the brief's language
//!   rule), per language; a call uses its own language's.
//! - [`twilio`]: REST client, TwiML (the stream, the key press, the
//!   apology), Media Stream wire types, signatures.
//! - [`realtime`]: the OpenAI Realtime (GA) wire types and connection.
//! - [`agent`]: what the model is told (the brief, [`agent::Prompts`]) and the
//!   tools it may call.
//! - [`call`]: one live call: the call core ([`call::state::CallState`], all
//!   decisions, no I/O, no clock), the session that drives it between Twilio
//!   and the model (key presses through Twilio included: the call's next
//!   stream is handed to its session by [`call::rejoin`], or carried on from
//!   the store on another instance), the playback bookkeeping behind
//!   barge-in, which of the callee's frames may be joined into one append
//!   ([`call::joining`]) and the per-source wakers that let a wake-up poll
//!   only what woke it ([`call::wakes`]).
//! - [`audio`]: mu-law, keypad keys and their tones, call recordings.
//! - [`store`]: the call store (SQLite, or PostgreSQL shared by several
//!   instances), live call news and following, the ordered writer of a live
//!   call (its transcript lines written with every other call's, one
//!   statement per 50 ms at most), and leases that let a survivor finish a dead instance's calls.
//! - [`server`]: the HTTP surface, built by [`server::Application::build`] for
//!   `serve`, `demo` and the tests alike.
//! - [`web`]: the web page at `/`: every call, one call live (transcript,
//!   outcome, recording), a form to place one; sign-in with the API token.
//! - [`sim`]: Twilio, the restaurant and the Realtime API, simulated on
//!   loopback for `demo` and the tests; the telephone can route each kind of
//!   request to a different instance of a fleet (`tests/e2e_fleet.rs`).
//! - [`bench`]: the load benchmark behind `reservoice bench` (stand-ins for
//!   Twilio and the model in echo or realistic traffic, a bridge-less floor,
//!   N simulated Media Streams, latency percentiles; the call news delay
//!   between instances on PostgreSQL).
//!
//! `docs/ARCHITECTURE.md` walks through one call from command to outcome.

pub mod agent;
pub mod audio;
pub mod bench;
pub mod call;
pub mod cli;
pub mod config;
pub mod contract;
pub mod crypto;
pub mod dialer;
pub mod domain;
pub mod phrases;
pub mod realtime;
pub mod server;
pub mod sim;
pub mod store;
pub mod twilio;
pub mod web;
