//! A whole telephone world on loopback: the real server (exactly what `serve`
//! builds), the simulated Twilio network with its restaurant host, and the
//! Realtime stand-in (or the real Realtime API when a key is given).
//! `reservoice demo` and the end-to-end tests start one of these.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chrono::{Duration, Utc};
use chrono_tz::Tz;
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::realtime::RealtimeSim;
use super::scenario::{Booking, Scenario};
use super::switchboard::Switchboard;
use super::telephone::{KeyPressUpdate, Line, TelephoneConfig, TelephoneSim};
use crate::config::SettingsArgs;
use crate::domain::ReservationRequest;
use crate::server::{AppState, Application};
use crate::store::CallStore;
use crate::web::{DemoForm, DemoRestaurant, WebOptions};

/// Which conversation the restaurant and the stand-in model play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioKind {
    /// The table is free: booked.
    Booked,
    /// 19:00 is full, 19:30 is offered and taken.
    Alternative,
    /// The host talks over the agent's long introduction.
    BargeIn,
    /// A phone menu answers ("for reservations, press two"); the agent presses 2, then the host books.
    Menu,
    /// An answering machine answers: greeting, beep, then Twilio's async AMD
    /// callback (`machine_end_beep`).
    Voicemail,
    /// A restaurant in Paris (a +33 number) whose host speaks French: the
    /// call is held in French, the number's language, and a table is booked.
    French,
}

impl ScenarioKind {
    /// The script of this conversation for `booking`.
    pub fn script(self, booking: &Booking) -> Scenario {
        match self {
            ScenarioKind::Booked => Scenario::booked(booking),
            ScenarioKind::Alternative => Scenario::alternative(booking),
            ScenarioKind::BargeIn => Scenario::barge_in(booking),
            ScenarioKind::Menu => Scenario::menu(booking),
            ScenarioKind::Voicemail => Scenario::voicemail(booking),
            ScenarioKind::French => Scenario::french(booking),
        }
    }
}

/// How to build the rig.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// The conversation.
    pub scenario: ScenarioKind,
    /// Numbers that are busy, unanswered or failing.
    pub lines: HashMap<String, Line>,
    /// The restaurants' zone (the reservation is "tomorrow at 7pm" there).
    pub timezone: Tz,
    /// Use the real Realtime API with this key instead of the stand-in.
    pub openai_api_key: Option<String>,
    /// Require this bearer token on `/api/*`.
    pub api_token: Option<String>,
    /// Ring time before the simulated restaurant answers (ms).
    pub ring_ms: u64,
    /// Call length limit (seconds).
    pub max_call_secs: u64,
    /// Silence limit (seconds).
    pub max_silence_secs: u64,
    /// Drain time on shutdown (seconds).
    pub drain_secs: u64,
    /// Play this script instead of `scenario`'s.
    pub custom_scenario: Option<Scenario>,
    /// Point the server at this Realtime URL instead of the stand-in (e.g. a closed port).
    pub realtime_url_override: Option<String>,
    /// Give the server this Twilio auth token instead of the network's (to provoke refusals).
    pub server_auth_token_override: Option<String>,
    /// What the server does on reaching an answering machine.
    pub voicemail: crate::config::VoicemailPolicy,
    /// Record calls (`--record`).
    pub record: bool,
    /// The call store (`postgres://…` to share one with other instances);
    /// default: a SQLite file in a temporary directory.
    pub database_url: Option<String>,
    /// Leases of live calls (tests shorten them to see a dead instance's
    /// calls reaped quickly).
    pub lease: Option<crate::store::LeaseTimings>,
    /// Several simulated restaurants, one per scenario (plus a busy line and
    /// one nobody answers), each call scripted for the reservation it
    /// carries; the web page's form offers them (`demo --web`).
    pub restaurants: bool,
    /// Listen on this loopback port (0: any free port; a taken one falls back to any).
    pub port: u16,
    /// How the server presses keys (`--dtmf`).
    pub dtmf: crate::config::DtmfMode,
    /// What the simulated Twilio does with a call update that presses keys.
    pub key_press_update: KeyPressUpdate,
    /// The server's `RESERVOICE_LANGUAGE` (None: the number's language).
    pub language: Option<String>,
    /// Where Twilio reaches the server (`--public-url`); default: the
    /// server's own address. A test puts a proxy here to send some of
    /// Twilio's connections (a call's next stream) to another instance.
    pub public_url: Option<String>,
    /// `RESERVOICE_APPEND_MS`: the callee's audio per message to the model.
    pub append_ms: u64,
    /// `RESERVOICE_APPEND_JOIN`: which of the callee's frames may wait.
    pub append_join: crate::config::AppendJoin,
    /// `RESERVOICE_MARK_MS`: agent audio between two Twilio marks.
    pub mark_ms: u64,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            scenario: ScenarioKind::Booked,
            lines: HashMap::new(),
            timezone: Tz::UTC,
            openai_api_key: None,
            api_token: None,
            ring_ms: 1200,
            max_call_secs: 600,
            max_silence_secs: 60,
            drain_secs: 120,
            custom_scenario: None,
            realtime_url_override: None,
            server_auth_token_override: None,
            voicemail: crate::config::VoicemailPolicy::Leave,
            record: false,
            database_url: None,
            lease: None,
            restaurants: false,
            port: 0,
            dtmf: crate::config::DtmfMode::default(),
            key_press_update: KeyPressUpdate::default(),
            language: None,
            public_url: None,
            append_ms: crate::config::DEFAULT_APPEND_MS,
            append_join: crate::config::AppendJoin::default(),
            mark_ms: crate::config::DEFAULT_MARK_MS,
        }
    }
}

/// A running simulated world.
pub struct Rig {
    /// `http://127.0.0.1:PORT` of the server.
    pub server_url: String,
    /// The server's address.
    pub server_addr: SocketAddr,
    /// The simulated Twilio.
    pub phone: TelephoneSim,
    /// The Realtime stand-in (None when the real API is used).
    pub model: Option<RealtimeSim>,
    /// The reservation facts the scenario expects.
    pub booking: Booking,
    /// The restaurant's number (E.164): French for the French scenario.
    pub restaurant_number: &'static str,
    /// The server's state (its call store).
    pub state: AppState,
    /// The Twilio auth token the world shares (to sign forged requests in tests).
    pub auth_token: String,
    /// The server's call store URL (to reopen it after the server stopped).
    pub database_url: String,
    /// The settings the server was started with (another instance is
    /// started from them, see [`Rig::peer_settings`]).
    args: SettingsArgs,
    lease: Option<crate::store::LeaseTimings>,
    /// The restaurant's zone (the scenario's "tomorrow" is counted there).
    timezone: Tz,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

/// What the web page offers in a simulated world: the restaurants to call
/// and a reservation that suits their recorded hosts.
fn demo_page(switchboard: &Switchboard, booking: &Booking) -> WebOptions {
    WebOptions {
        demo: Some(DemoForm {
            restaurants: switchboard
                .restaurants()
                .iter()
                .map(|r| DemoRestaurant {
                    number: r.number.clone(),
                    label: r.label.to_string(),
                })
                .collect(),
            example: ReservationRequest {
                to: RESTAURANT_NUMBER.into(),
                restaurant: booking.restaurant.clone(),
                party_size: i64::from(booking.party_size),
                date: "tomorrow".into(),
                time: "7pm".into(),
                name: booking.name.clone(),
                flexibility: Some("30m".into()),
                callback: Some("+12125550199".into()),
                notes: None,
                timezone: None,
                language: None,
            },
        }),
    }
}

/// The simulated restaurant's number.
pub const RESTAURANT_NUMBER: &str = "+12125550123";
/// The simulated French restaurant's number (Paris; in the 01 99 00 range
/// France keeps for fiction).
pub const FRENCH_RESTAURANT_NUMBER: &str = "+33199001234";

impl Rig {
    /// Start everything on loopback ports chosen by the OS.
    pub async fn start(options: RigOptions) -> anyhow::Result<Rig> {
        let data_dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
        let auth_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        let account_sid = format!("AC{:032x}", rand::thread_rng().gen::<u128>());
        let tomorrow =
            (Utc::now().with_timezone(&options.timezone) + Duration::days(1)).date_naive();
        let booking = Booking::demo_on(tomorrow);
        let scenario = options
            .custom_scenario
            .clone()
            .unwrap_or_else(|| options.scenario.script(&booking));
        let restaurant_number = match options.scenario {
            ScenarioKind::French => FRENCH_RESTAURANT_NUMBER,
            _ => RESTAURANT_NUMBER,
        };
        let mut lines = options.lines.clone();
        if options.scenario == ScenarioKind::Voicemail {
            lines
                .entry(restaurant_number.to_string())
                .or_insert(Line::Voicemail);
        }
        let model_key = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        let (model, realtime_url, key) = match &options.openai_api_key {
            Some(real) => (
                None,
                "wss://api.openai.com/v1/realtime".to_string(),
                real.clone(),
            ),
            None => {
                let sim = RealtimeSim::start(scenario.clone(), Some(model_key.clone())).await?;
                let url = options
                    .realtime_url_override
                    .clone()
                    .unwrap_or_else(|| sim.url());
                (Some(sim), url, model_key)
            }
        };
        let phone = TelephoneSim::start(TelephoneConfig {
            account_sid: account_sid.clone(),
            auth_token: auth_token.clone(),
            scenario,
            lines,
            ring_ms: options.ring_ms,
            key_press_update: options.key_press_update.clone(),
        })
        .await?;
        let listener = match TcpListener::bind(("127.0.0.1", options.port)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot bind a loopback port")?,
        };
        let server_addr = listener.local_addr()?;
        let server_url = format!("http://{server_addr}");
        let args = SettingsArgs {
            twilio_account_sid: Some(account_sid),
            twilio_auth_token: Some(
                options
                    .server_auth_token_override
                    .clone()
                    .unwrap_or_else(|| auth_token.clone()),
            ),
            twilio_from_number: Some("+12125550100".into()),
            twilio_api_base: phone.api_base(),
            openai_api_key: Some(key),
            openai_realtime_url: realtime_url,
            openai_realtime_model: "gpt-realtime-2.1".into(),
            openai_transcription_model: "gpt-4o-mini-transcribe".into(),
            voice: "marin".into(),
            public_url: Some(
                options
                    .public_url
                    .clone()
                    .unwrap_or_else(|| server_url.clone()),
            ),
            bind: server_addr.to_string(),
            api_token: options.api_token.clone(),
            database_url: Some(options.database_url.clone().unwrap_or_else(|| {
                format!(
                    "sqlite://{}",
                    data_dir.path().join("reservoice.db").display()
                )
            })),
            data_dir: Some(data_dir.path().to_path_buf()),
            timezone: Some(options.timezone.name().to_string()),
            language: options.language.clone(),
            insecure_skip_signature: false,
            max_party_size: 20,
            allowed_countries: String::new(),
            max_call_secs: options.max_call_secs,
            max_silence_secs: options.max_silence_secs,
            drain_secs: options.drain_secs,
            voicemail: options.voicemail,
            record: options.record,
            dtmf: options.dtmf,
            append_ms: options.append_ms,
            append_join: options.append_join,
            mark_ms: options.mark_ms,
            lease_secs: crate::config::DEFAULT_LEASE_SECS,
        };
        let mut settings = args.clone().resolve().context("simulated settings")?;
        if let Some(lease) = options.lease {
            settings.store.lease = lease;
        }
        let database_url = settings.database_url.expose().to_string();
        let mut app = Application::build(settings, Some(listener)).await?;
        if options.restaurants {
            let switchboard = Arc::new(Switchboard::demo(
                RESTAURANT_NUMBER,
                options.scenario,
                booking.clone(),
            ));
            phone.use_switchboard(switchboard.clone());
            if let Some(model) = &model {
                model.use_switchboard(switchboard.clone());
            }
            app = app.with_web(demo_page(&switchboard, &booking));
        }
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Ok(Rig {
            server_url,
            server_addr,
            phone,
            model,
            booking,
            restaurant_number,
            state,
            auth_token,
            database_url,
            args,
            lease: options.lease,
            timezone: options.timezone,
            stop: Some(stop),
            server: Some(server),
            _data_dir: data_dir,
        })
    }

    /// The request a person would make for the scenario's booking
    /// (tomorrow at 7pm, 4 people, 30 minutes of flexibility).
    pub fn request(&self) -> ReservationRequest {
        ReservationRequest {
            to: self.restaurant_number.into(),
            restaurant: self.booking.restaurant.clone(),
            party_size: i64::from(self.booking.party_size),
            date: "tomorrow".into(),
            time: "7pm".into(),
            name: self.booking.name.clone(),
            flexibility: Some("30m".into()),
            callback: Some("+12125550199".into()),
            notes: Some("a quiet table if possible".into()),
            // Named, not guessed from the number: the scenario's date is
            // "tomorrow" in this zone, whatever zone the number is in.
            timezone: Some(self.timezone.name().to_string()),
            // Not named: the number's country decides (French for the
            // French restaurant), as for a person who leaves it out.
            language: None,
        }
    }

    /// Settings for another server instance in the same world (same Twilio
    /// account, same model), listening on `addr`, reached by Twilio at
    /// `http://addr`, using the call store at `database_url`.
    pub fn peer_settings(
        &self,
        addr: SocketAddr,
        database_url: &str,
    ) -> anyhow::Result<crate::config::Settings> {
        let mut args = self.args.clone();
        args.public_url = Some(format!("http://{addr}"));
        args.bind = addr.to_string();
        args.database_url = Some(database_url.to_string());
        let mut settings = args.resolve().context("peer settings")?;
        if let Some(lease) = self.lease {
            settings.store.lease = lease;
        }
        Ok(settings)
    }

    /// [`Rig::request`] resolved now, as the server would (to store calls directly).
    pub fn reservation(&self) -> anyhow::Result<crate::domain::Reservation> {
        let rules = self.state.settings.request_rules();
        self.request()
            .into_reservation(&rules, Utc::now())
            .map_err(|errors| anyhow::anyhow!("the rig's own request is invalid: {errors:?}"))
    }

    /// The call store.
    pub fn store(&self) -> &CallStore {
        &self.state.store
    }

    /// Send the server its shutdown signal and wait until it has drained and
    /// stopped (the simulators keep running).
    pub async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), server).await;
        }
    }

    /// Stop the server and the simulators.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        }
        if let Some(model) = self.model.take() {
            model.shutdown().await;
        }
        self.phone.shutdown().await;
    }
}
