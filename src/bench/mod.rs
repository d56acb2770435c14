//! The load benchmark behind `reservoice bench`: how many calls one server
//! carries, and what the bridge adds to each 20 ms frame of audio.
//!
//! The server under test is a separate `reservoice serve` process (or, in the
//! smoke test, the same [`crate::server::Application`] in-process). The bench
//! plays everyone else on loopback:
//!
//! - Twilio's REST API ([`standins::FakeTwilio`]): calls are placed through
//!   the server's real `POST /api/calls`, so each call has a real record and
//!   call token; the stand-in answers `201` and hands the TwiML to the bench;
//! - Twilio's Media Streams ([`caller`]): a signed upgrade to the TwiML's
//!   `<Stream url>`, `start` with its `<Parameter>`s, a numbered frame every
//!   20 ms (each call on its own phase of the 20 ms period), agent audio
//!   played in real time with marks echoed when their audio has played, `stop`;
//! - the Realtime API ([`standins::ModelStandIn`]), in one of two
//!   [`Traffic`] modes. Echo: every appended chunk comes straight back as the
//!   agent's audio, so each frame makes the full trip Twilio → server →
//!   model → server → Twilio and its round trip is timed. Realistic: the
//!   callee talks in turns and the model answers each turn faster than real
//!   time ([`wire`]); the time from the end of a turn to the first audio of
//!   its answer is timed, and how late each frame reached the model.
//!
//! `--floor` points the same load at [`standins::Floor`], which does the
//! model's part itself without any bridge: what loopback and the load
//! generator cost by themselves. `scripts/bench.sh` runs it in its own
//! process on the server's core, so its CPU is measured the same way.
//!
//! Several servers sharing one call store (`--also-server`, e.g. two
//! instances on PostgreSQL) share the calls in turn; `--database` reads what
//! that store costs per call ([`database`]).
//!
//! `--news POSTGRES_URL` measures something else: how long call news takes
//! from one instance to another through PostgreSQL ([`news`]).

pub mod caller;
pub mod database;
pub mod news;
pub mod procstat;
pub mod standins;
pub mod wire;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use caller::{StreamPlan, Tally, Timeline, FRAME};
use procstat::ProcSample;
use standins::{FakeTwilio, ModelStats, TwimlBook};
pub use wire::Traffic;

/// The account SID the bench tells the server to use (any well-formed SID:
/// the REST stand-in accepts every account).
pub const ACCOUNT_SID: &str = "ACbe0c0000000000000000000000000000";
/// Caller ID the bench tells the server to use.
pub const FROM_NUMBER: &str = "+12125550100";
/// The number every bench call is placed to.
pub const TO_NUMBER: &str = "+12125550101";

/// How much load, for how long.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Concurrent calls.
    pub calls: usize,
    /// Steady state: every call streams for this long after the ramp.
    pub duration: Duration,
    /// Calls start evenly spread over this time.
    pub ramp: Duration,
    /// The server's Twilio auth token (the signature key).
    pub auth_token: String,
    /// The servers' process ids, to read their CPU time and memory from
    /// `/proc` (added up).
    pub server_pids: Vec<u32>,
    /// The call store the servers share, to read what it costs.
    pub database: Option<database::Database>,
    /// How long to wait for frames in flight when the calls end.
    pub drain: Duration,
    /// What the callee and the model do.
    pub traffic: Traffic,
}

/// What the load is pointed at.
pub enum Target<'a> {
    /// Reservoice servers sharing one call store: calls are placed through
    /// their APIs, in turn.
    Server {
        /// `http://127.0.0.1:8080`, and any more servers.
        api_bases: &'a [String],
        /// Bearer token for `/api/*`, if the server requires one.
        api_token: Option<&'a str>,
        /// The REST stand-in the server was started with.
        twilio: &'a FakeTwilio,
        /// What the Realtime stand-in saw of the callee's audio.
        model: Arc<ModelStats>,
    },
    /// The bridge-less floor (`--floor`): its `<Stream url>`.
    Floor {
        /// `ws://127.0.0.1:PORT/media-stream`
        stream_url: String,
    },
}

/// Round-trip percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Frames measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest frame.
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// A process's cost over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessCost {
    /// CPU seconds over the whole run (ramp, steady state, hang-ups).
    pub cpu_s: f64,
    /// CPU milliseconds per call-minute in steady state.
    pub cpu_ms_per_call_minute: Option<f64>,
    /// RSS before the first call (KiB).
    pub rss_before_kib: u64,
    /// RSS with every call connected (KiB).
    pub rss_connected_kib: u64,
    /// (connected − before) / calls bridged (KiB).
    pub rss_per_call_kib: Option<f64>,
    /// Peak RSS (VmHWM, KiB).
    pub peak_rss_kib: u64,
}

/// Everything a run measured; printed for people, and as one JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `server` or `floor`.
    pub mode: &'static str,
    /// `echo` or `realistic`.
    pub traffic: Traffic,
    /// Calls asked for.
    pub calls_requested: usize,
    /// Calls whose stream was upgraded and started.
    pub calls_connected: u64,
    /// Calls that got at least one frame back.
    pub calls_bridged: u64,
    /// Calls that never connected.
    pub calls_failed: u64,
    /// The first few reasons calls failed.
    pub failures: Vec<String>,
    /// Steady-state seconds.
    pub duration_s: f64,
    /// Ramp seconds.
    pub ramp_s: f64,
    /// Media frames sent.
    pub frames_sent: u64,
    /// Frames that came back.
    pub frames_returned: u64,
    /// sent − returned.
    pub frames_lost: u64,
    /// Outbound audio that was not an expected frame (duplicate, wrong call, late).
    pub frames_unexpected: u64,
    /// Outbound messages that were malformed or named another stream.
    pub bad_messages: u64,
    /// Marks echoed to the server.
    pub marks_echoed: u64,
    /// Round trips of frames sent after the ramp.
    pub round_trip: Percentiles,
    /// Round trips of every frame, ramp included.
    pub round_trip_all: Percentiles,
    /// Servers the calls were spread over.
    pub servers: usize,
    /// Frames still in the server's append buffer when their call ended
    /// (sent in its last 100 ms): neither returned nor lost.
    pub frames_excused: u64,
    /// Realistic mode: callee turns, those answered, those left unanswered.
    pub turns: u64,
    /// Realistic mode: turns answered.
    pub turns_answered: u64,
    /// Realistic mode: turns with no answer for 15 s.
    pub turns_unanswered: u64,
    /// Realistic mode: agent audio deltas received.
    pub deltas: u64,
    /// Realistic mode: end of a callee turn → first audio of the answer at
    /// Twilio (turns ended in steady state).
    pub reply: Percentiles,
    /// Server mode: frame sent by Twilio → received by the model (steady state).
    pub to_model: Percentiles,
    /// Server mode: the same for the last frame of each turn (realistic).
    pub turn_end_to_model: Percentiles,
    /// Server mode: `input_audio_buffer.append`s the model received.
    pub appends: u64,
    /// The server (or, with `--pid` on a floor run, the floor) process.
    pub server: Option<ProcessCost>,
    /// The call store's database (with `--database`).
    pub database: Option<database::DatabaseCost>,
    /// The bench process itself (load generator and stand-ins).
    pub load_cpu_s: Option<f64>,
}

impl Report {
    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let p = &self.round_trip;
        s.push_str(&format!(
            "mode {} ({} traffic): {} calls, {:.1} s steady after a {:.1} s ramp\n",
            self.mode,
            self.traffic.name(),
            self.calls_requested,
            self.duration_s,
            self.ramp_s
        ));
        if self.servers > 1 {
            s.push_str(&format!(
                "servers {} sharing one call store, calls placed in turn\n",
                self.servers
            ));
        }
        s.push_str(&format!(
            "calls   requested {}  connected {}  bridged {}  failed {}\n",
            self.calls_requested, self.calls_connected, self.calls_bridged, self.calls_failed
        ));
        for f in &self.failures {
            s.push_str(&format!("        failure: {f}\n"));
        }
        s.push_str(&format!(
            "frames  sent {}  returned {}  lost {}  excused {}  unexpected {}  bad messages {}  marks echoed {}\n",
            self.frames_sent,
            self.frames_returned,
            self.frames_lost,
            self.frames_excused,
            self.frames_unexpected,
            self.bad_messages,
            self.marks_echoed
        ));
        let line = |s: &mut String, what: String, p: &Percentiles| {
            s.push_str(&format!(
                "{what}  p50 {:.3} ms  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
                p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
            ));
        };
        match self.traffic {
            Traffic::Echo => {
                line(
                    &mut s,
                    format!("round trip (steady, {} frames)", p.count),
                    p,
                );
                let a = &self.round_trip_all;
                s.push_str(&format!(
                    "round trip (all, ramp included)  p99 {:.3} ms  p99.9 {:.3}  max {:.3}\n",
                    a.p99_ms, a.p999_ms, a.max_ms
                ));
            }
            Traffic::Realistic => {
                s.push_str(&format!(
                    "turns   ended {}  answered {}  unanswered {}  agent deltas {}\n",
                    self.turns, self.turns_answered, self.turns_unanswered, self.deltas
                ));
                line(
                    &mut s,
                    format!(
                        "reply (end of turn → first audio, steady, {} turns)",
                        self.reply.count
                    ),
                    &self.reply,
                );
            }
        }
        if self.to_model.count > 0 {
            line(
                &mut s,
                format!(
                    "to model (steady, {} frames in {} appends)",
                    self.to_model.count, self.appends
                ),
                &self.to_model,
            );
        }
        if self.turn_end_to_model.count > 0 {
            line(
                &mut s,
                "to model, last frame of a turn".to_string(),
                &self.turn_end_to_model,
            );
        }
        if let Some(c) = &self.server {
            s.push_str(&format!(
                "{:<7} CPU {:.2} s ({} CPU-ms per call-minute)  RSS {} KiB before, {} KiB connected ({} KiB per call), peak {} KiB\n",
                self.mode,
                c.cpu_s,
                c.cpu_ms_per_call_minute.map_or("?".into(), |v| format!("{v:.1}")),
                c.rss_before_kib,
                c.rss_connected_kib,
                c.rss_per_call_kib.map_or("?".into(), |v| format!("{v:.1}")),
                c.peak_rss_kib,
            ));
        }
        if let Some(d) = &self.database {
            match d.kind {
                "postgres" => s.push_str(&format!(
                    "database PostgreSQL: {} transactions per call, {} backends, {} CPU-ms per call-minute\n",
                    d.transactions_per_call.map_or("?".into(), |v| format!("{v:.1}")),
                    d.backends,
                    d.cpu_ms_per_call_minute.map_or("?".into(), |v| format!("{v:.1}")),
                )),
                _ => s.push_str(
                    "database SQLite: inside the server process (its cost is in the server's CPU)\n",
                ),
            }
        }
        if let Some(cpu) = self.load_cpu_s {
            s.push_str(&format!(
                "bench   CPU {cpu:.2} s (load generator and stand-ins)\n"
            ));
        }
        // One line for scripts (scripts/bench.sh reads it): the figures the
        // floor and the server are compared on.
        let headline = match self.traffic {
            Traffic::Echo => &self.round_trip,
            Traffic::Realistic => &self.reply,
        };
        s.push_str(&format!(
            "headline {} {} calls {} cpu_ms_per_call_minute {} p99_ms {:.3}\n",
            self.mode,
            self.calls_requested,
            self.traffic.name(),
            self.server
                .as_ref()
                .and_then(|c| c.cpu_ms_per_call_minute)
                .map_or("?".into(), |v| format!("{v:.1}")),
            headline.p99_ms
        ));
        s
    }

    /// One line of JSON: `{"bench": {…}}`.
    pub fn json_line(&self) -> String {
        serde_json::json!({ "bench": self }).to_string()
    }
}

/// The reservation each bench call asks for (valid, so the server places it).
fn reservation_request(index: usize) -> serde_json::Value {
    serde_json::json!({
        "to": TO_NUMBER,
        "restaurant": format!("Bench Bistro {index}"),
        "party_size": 2,
        "date": "tomorrow",
        "time": "7pm",
        "name": "Bench Caller",
        "flexibility": "30m",
    })
}

/// Place call `index` through the server's API and read the stream to open
/// from the TwiML the server gave Twilio.
async fn place_call(
    http: &reqwest::Client,
    api_base: &str,
    api_token: Option<&str>,
    twiml_book: &TwimlBook,
    index: usize,
    tick_origin: Instant,
) -> Result<StreamPlan, String> {
    let url = format!("{}/api/calls", api_base.trim_end_matches('/'));
    let mut req = http.post(&url).json(&reservation_request(index));
    if let Some(token) = api_token {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("POST /api/calls: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| format!("POST /api/calls answered {status} without JSON: {e}"))?;
    if status.as_u16() != 201 {
        return Err(format!("POST /api/calls answered {status}: {body}"));
    }
    let sid = body
        .get("id")
        .and_then(|v| v.as_str())
        .ok_or("the call record has no id")?;
    let twiml = twiml_book
        .take(sid)
        .ok_or_else(|| format!("Twilio stand-in never saw call {sid}"))?;
    let parsed = crate::sim::telephone::parse_twiml(&twiml)?;
    let stream = parsed.stream.ok_or("the TwiML has no <Connect><Stream>")?;
    Ok(StreamPlan {
        url: stream.url,
        call_sid: sid.to_string(),
        parameters: stream.parameters,
        index: index as u32,
        tick_origin,
    })
}

/// A plan for the floor: no call record, the same kind of parameters.
fn floor_plan(stream_url: &str, index: usize, tick_origin: Instant) -> StreamPlan {
    StreamPlan {
        url: stream_url.to_string(),
        call_sid: format!("CA{:032x}", rand::random::<u128>()),
        parameters: vec![
            ("restaurant_name".into(), format!("Bench Bistro {index}")),
            ("call_token".into(), format!("floor{index}")),
        ],
        index: index as u32,
        tick_origin,
    }
}

/// Where call `index` of `calls` ticks in the 20 ms frame period: spread
/// evenly (a golden-ratio sequence), so that streams started on the same
/// millisecond of the period (e.g. 500 calls over 10 s: one every 20 ms)
/// still send at different moments. Streams that all tick together
/// measure bursts, not the bridge.
pub fn frame_phase(index: usize) -> Duration {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    FRAME.mul_f64((index as f64 * GOLDEN).fract())
}

/// Run the load against `target` and measure it.
pub async fn run(config: &LoadConfig, target: Target<'_>) -> anyhow::Result<Report> {
    let tally = Arc::new(Tally::new().context("cannot make the histograms")?);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let calls = config.calls.max(1);
    let t0 = Instant::now() + Duration::from_millis(100);
    let steady_from = t0 + config.ramp;
    let timeline = Timeline {
        steady_from,
        until: steady_from + config.duration,
        drain: config.drain,
        traffic: config.traffic,
    };
    if let Target::Server { model, .. } = &target {
        let ahead = steady_from.saturating_duration_since(Instant::now());
        model.count_from(wire::clock_us() + ahead.as_micros() as u64);
    }
    let pids = config.server_pids.as_slice();
    let db = config.database.as_ref();
    let db_before = match db {
        Some(d) => d.sample().await,
        None => Default::default(),
    };
    let server_before = procstat::sample_all(pids);
    let load_before = procstat::sample(None);

    let mut tasks = tokio::task::JoinSet::new();
    let mut plans_failed: Vec<String> = Vec::new();
    let (mode, servers) = match &target {
        Target::Server { api_bases, .. } => ("server", api_bases.len()),
        Target::Floor { .. } => ("floor", 1),
    };
    // One task per call on this runtime: place the call (or not), then stream.
    for index in 0..calls {
        let at = t0 + config.ramp.mul_f64(index as f64 / calls as f64);
        let tick_origin = t0 + frame_phase(index);
        let plan_fut: std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<StreamPlan, String>> + Send>,
        > = match &target {
            Target::Server {
                api_bases,
                api_token,
                twilio,
                ..
            } => {
                // Placed calls need the stand-in's TwiML: fetch it before spawning.
                let http = http.clone();
                let api_base = api_bases[index % api_bases.len().max(1)].clone();
                let api_token = api_token.map(str::to_string);
                let twiml_of = twilio.handle();
                Box::pin(async move {
                    tokio::time::sleep_until(at).await;
                    place_call(
                        &http,
                        &api_base,
                        api_token.as_deref(),
                        &twiml_of,
                        index,
                        tick_origin,
                    )
                    .await
                })
            }
            Target::Floor { stream_url } => {
                let plan = floor_plan(stream_url, index, tick_origin);
                Box::pin(async move {
                    tokio::time::sleep_until(at).await;
                    Ok(plan)
                })
            }
        };
        let tally = tally.clone();
        let auth_token = config.auth_token.clone();
        tasks.spawn(async move {
            let plan = plan_fut.await?;
            caller::run(plan, &auth_token, ACCOUNT_SID, timeline, &tally).await
        });
    }

    // Memory with every call connected: a second after the ramp.
    tokio::time::sleep_until(steady_from + Duration::from_secs(1)).await;
    let server_connected = procstat::sample_all(pids);
    let db_connected = match db {
        Some(d) => d.sample().await,
        None => Default::default(),
    };
    tokio::time::sleep_until(timeline.until).await;
    let server_steady_end = procstat::sample_all(pids);
    let db_steady_end = match db {
        Some(d) => d.sample().await,
        None => Default::default(),
    };

    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(why)) => plans_failed.push(why),
            Err(e) => plans_failed.push(format!("call task failed: {e}")),
        }
    }
    // Give the server a moment to close its sessions before the last
    // reading (and PostgreSQL to publish its counts: about once a second).
    tokio::time::sleep(Duration::from_millis(match db {
        Some(_) => 1500,
        None => 500,
    }))
    .await;
    let server_after = procstat::sample_all(pids);
    let db_after = match db {
        Some(d) => d.sample().await,
        None => Default::default(),
    };
    let load_after = procstat::sample(None);

    let sent = tally.sent.load(Ordering::Relaxed);
    let returned = tally.returned.load(Ordering::Relaxed);
    let connected = tally.connected.load(Ordering::Relaxed);
    let bridged = tally.bridged.load(Ordering::Relaxed);
    let steady = tally
        .steady
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let all = tally
        .all
        .lock()
        .map(|h| Percentiles::of(&h))
        .unwrap_or_default();
    let steady_secs = config.duration.saturating_sub(Duration::from_secs(1));
    let excused = tally.excused.load(Ordering::Relaxed);
    let percentiles =
        |h: &Mutex<Histogram<u64>>| h.lock().map(|h| Percentiles::of(&h)).unwrap_or_default();
    let (to_model, turn_end_to_model, appends) = match &target {
        Target::Server { model, .. } => (
            percentiles(&model.to_model),
            percentiles(&model.turn_end),
            model.appends.load(Ordering::Relaxed),
        ),
        Target::Floor { .. } => (Percentiles::default(), Percentiles::default(), 0),
    };
    let realistic = config.traffic == Traffic::Realistic;
    let server = match (
        server_before,
        server_connected,
        server_steady_end,
        server_after,
    ) {
        (Some(b), Some(c), Some(e), Some(a)) => Some(server_cost(b, c, e, a, bridged, steady_secs)),
        _ => None,
    };
    let mut failures = plans_failed;
    let failed = failures.len() as u64;
    failures.sort();
    failures.dedup();
    failures.truncate(5);
    Ok(Report {
        mode,
        traffic: config.traffic,
        calls_requested: calls,
        calls_connected: connected,
        calls_bridged: bridged,
        calls_failed: failed,
        failures,
        duration_s: config.duration.as_secs_f64(),
        ramp_s: config.ramp.as_secs_f64(),
        frames_sent: sent,
        frames_returned: returned,
        // In the realistic mode frames are not returned: turns are answered.
        frames_lost: if realistic {
            0
        } else {
            sent.saturating_sub(returned).saturating_sub(excused)
        },
        frames_excused: excused,
        turns: tally.turns.load(Ordering::Relaxed),
        turns_answered: tally.turns_answered.load(Ordering::Relaxed),
        turns_unanswered: tally.turns_unanswered.load(Ordering::Relaxed),
        deltas: tally.deltas.load(Ordering::Relaxed),
        reply: percentiles(&tally.reply),
        to_model,
        turn_end_to_model,
        appends,
        frames_unexpected: tally.unexpected.load(Ordering::Relaxed),
        bad_messages: tally.bad_messages.load(Ordering::Relaxed),
        marks_echoed: tally.marks_echoed.load(Ordering::Relaxed),
        round_trip: steady,
        round_trip_all: all,
        servers,
        server,
        database: db.map(|d| {
            d.cost(
                [db_before, db_connected, db_steady_end, db_after],
                connected,
                bridged,
                steady_secs,
            )
        }),
        load_cpu_s: match (load_before, load_after) {
            (Some(b), Some(a)) => Some(a.cpu.saturating_sub(b.cpu).as_secs_f64()),
            _ => None,
        },
    })
}

/// CPU per call-minute over the steady window (from a second after the ramp
/// to the end), and memory per call from before the first call to all connected.
fn server_cost(
    before: ProcSample,
    connected: ProcSample,
    steady_end: ProcSample,
    after: ProcSample,
    bridged: u64,
    steady: Duration,
) -> ProcessCost {
    let call_minutes = bridged as f64 * steady.as_secs_f64() / 60.0;
    let steady_cpu_ms = steady_end.cpu.saturating_sub(connected.cpu).as_secs_f64() * 1000.0;
    let round1 = |v: f64| (v * 10.0).round() / 10.0;
    ProcessCost {
        cpu_s: after.cpu.saturating_sub(before.cpu).as_secs_f64(),
        cpu_ms_per_call_minute: (call_minutes > 0.0).then(|| round1(steady_cpu_ms / call_minutes)),
        rss_before_kib: before.rss_kib,
        rss_connected_kib: connected.rss_kib,
        rss_per_call_kib: (bridged > 0).then(|| {
            round1(connected.rss_kib.saturating_sub(before.rss_kib) as f64 / bridged as f64)
        }),
        peak_rss_kib: after.hwm_kib,
    }
}
