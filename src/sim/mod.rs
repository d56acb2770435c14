//! Loopback simulators that let tests and `reservoice demo` run whole calls
//! without the internet.
//!
//! Three pieces play the parts the product normally talks to:
//!
//! * [`telephone::TelephoneSim`] stands in for **Twilio**: its REST API
//!   (create/update/hang up calls, signed status callbacks) and the Media
//!   Stream it opens to our server as a WebSocket *client* (signed upgrade,
//!   `connected`/`start`/`media`/`mark`/`stop`, real-time 20 ms frames,
//!   a playback buffer for our outbound audio with `mark`/`clear` semantics).
//!   The callee on the line is a scripted restaurant **host** who speaks
//!   pre-recorded clips when cued.
//! * [`realtime::RealtimeSim`] stands in for the **OpenAI Realtime API** (GA):
//!   it runs an energy VAD over the audio our server forwards, emits the
//!   `input_audio_buffer.*` turn events, "transcribes" each utterance as the
//!   next host line, and plays a scripted **agent** (speech synthesised by
//!   [`voice::speak`], tool calls such as `finish_call`) faster than real time,
//!   like the real service.
//! * [`scenario::Scenario`] is the script both follow: what the host says and
//!   when ([`scenario::Cue`]), and what the agent answers, response by response.
//!
//! * [`switchboard::Switchboard`] lets one simulated world hold several
//!   restaurants (`demo --web`): each number plays its own scenario, written
//!   for the reservation its call carries.
//!
//! The product sits in the middle exactly as in production: Twilio audio in,
//! model audio out. The simulators parse wire messages with their own code
//! (`serde_json::Value`, not the product's types) so they catch bugs in the
//! product's wire types instead of sharing them.

pub mod dtmf_detect;
pub mod realtime;
pub mod rig;
pub mod scenario;
pub mod switchboard;
pub mod telephone;
pub mod vad;
pub mod voice;
