//! Settings from flags, environment and `.env`, typed once at start-up.
//!
//! Secrets (the Twilio auth token, the OpenAI key, the API token) are held as
//! `SecretString` so that `Debug` and logs can never show them. The public URL
//! Twilio reaches us at is held in one place, [`PublicUrl`], from which both the
//! TwiML we publish and the URLs we verify Twilio's signatures against derive.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use secrecy::SecretString;

use crate::domain::{Language, PhoneNumber};

/// A setting is missing or malformed; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required setting has no value.
    #[error("missing {var}: set it in the environment, in .env, or with --{flag}")]
    Missing {
        /// Environment variable name.
        var: &'static str,
        /// Equivalent flag.
        flag: &'static str,
    },
    /// A setting has a value that cannot be used.
    #[error("{var} is invalid: {problem}")]
    Invalid {
        /// Environment variable name.
        var: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// The public base URL at which Twilio reaches this server (e.g. a tunnel).
///
/// Every URL handed to Twilio — and so every URL a Twilio signature is checked
/// against — is derived here, never from request headers an attacker controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    base: url::Url,
}

impl PublicUrl {
    /// Parse `https://host[:port][/prefix]` (http is accepted for local runs).
    pub fn parse(input: &str) -> Result<Self, ConfigError> {
        let invalid = |problem: String| ConfigError::Invalid {
            var: "PUBLIC_URL",
            problem,
        };
        let mut base =
            url::Url::parse(input.trim()).map_err(|e| invalid(format!("'{input}': {e}")))?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(invalid(format!(
                "'{input}' must start with https:// (or http:// for local tests)"
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("must not have a query string or fragment".into()));
        }
        if base.host_str().is_none_or(|h| h.contains('_')) {
            return Err(invalid(
                "needs a host name without '_' (Twilio refuses those)".into(),
            ));
        }
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        Ok(PublicUrl { base })
    }

    fn join(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// `https://host/twilio/status`: call progress callbacks.
    pub fn status_callback(&self) -> String {
        self.join("/twilio/status")
    }

    /// `https://host/twilio/stream-status`: Media Stream lifecycle callbacks.
    pub fn stream_status_callback(&self) -> String {
        self.join("/twilio/stream-status")
    }

    /// `https://host/twilio/amd`: asynchronous answering-machine detection results.
    pub fn amd_callback(&self) -> String {
        self.join("/twilio/amd")
    }

    /// `wss://host/media-stream` (or `ws://` for an `http` base): the `<Stream url>`,
    /// exactly as written in the TwiML and as signed by Twilio on the upgrade.
    pub fn stream_url(&self) -> String {
        let https = self.base.scheme() == "https";
        let rest = self.join("/media-stream");
        let without_scheme = rest.split_once("://").map(|x| x.1).unwrap_or(&rest);
        format!("{}://{}", if https { "wss" } else { "ws" }, without_scheme)
    }

    /// The base as given (for messages).
    pub fn as_str(&self) -> &str {
        self.base.as_str()
    }
}

/// Twilio account and REST settings.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// `AC…` account SID.
    pub account_sid: String,
    /// The account's auth token: REST auth and signature key.
    pub auth_token: SecretString,
    /// Caller id for our calls (a Twilio number or verified caller id).
    pub from_number: PhoneNumber,
    /// REST base URL (`https://api.twilio.com`, or a simulator).
    pub api_base: String,
}

/// OpenAI Realtime settings.
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// Bearer key.
    pub api_key: SecretString,
    /// WebSocket endpoint, without `?model=`.
    pub url: String,
    /// Model name, sent as `?model=`.
    pub model: String,
    /// Output voice.
    pub voice: String,
    /// Model used to transcribe the callee.
    pub transcription_model: String,
}

/// Timings of a live call.
#[derive(Debug, Clone)]
pub struct CallTimings {
    /// If the callee says nothing for this long after answering, the agent speaks first.
    pub greeting_wait: Duration,
    /// After `finish_call`, hang up at the latest this long after the goodbye
    /// audio was sent (when its mark never comes back).
    pub goodbye_grace: Duration,
    /// After `finish_call`, if the model says nothing for this long, hang up anyway.
    pub goodbye_timeout: Duration,
    /// Longest call; past it the call is ended politely.
    pub max_call: Duration,
    /// Longest stretch with nobody speaking; past it the call is ended politely.
    pub max_silence: Duration,
    /// Most milliseconds of the callee's audio per
    /// `input_audio_buffer.append` (`RESERVOICE_APPEND_MS`, 20..=100).
    /// Twilio sends 20 ms frames; above 20, frames are joined where
    /// [`CallTimings::append_join`] allows, so fewer messages reach the
    /// model. docs/PERFORMANCE.md has the figures behind the default.
    pub append_ms: u64,
    /// Which frames may wait to be joined (`RESERVOICE_APPEND_JOIN`), when
    /// `append_ms` is above 20.
    pub append_join: AppendJoin,
    /// Milliseconds of agent audio between two Twilio `mark`s
    /// (`RESERVOICE_MARK_MS`; 0: one mark after every model audio delta).
    /// The end of each item is always marked; between marks the playback
    /// position is extrapolated on the call's audio clock, so barge-in stays
    /// exact (docs/PERFORMANCE.md).
    pub mark_ms: u64,
}

/// Default of [`CallTimings::append_ms`]: up to 100 ms per append, joined
/// only where the model decides nothing from the audio ([`AppendJoin::Safe`]):
/// about 6× fewer appends in a conversation, none later where it matters.
pub const DEFAULT_APPEND_MS: u64 = 100;
/// Default of [`CallTimings::mark_ms`]: a mark per 200 ms of agent audio
/// (and at the end of each item); between marks the playback position is
/// extrapolated, as it is between per-delta marks.
pub const DEFAULT_MARK_MS: u64 = 200;

impl Default for CallTimings {
    fn default() -> Self {
        CallTimings {
            greeting_wait: Duration::from_secs(3),
            goodbye_grace: Duration::from_secs(3),
            goodbye_timeout: Duration::from_secs(8),
            max_call: Duration::from_secs(600),
            max_silence: Duration::from_secs(60),
            append_ms: DEFAULT_APPEND_MS,
            append_join: AppendJoin::default(),
            mark_ms: DEFAULT_MARK_MS,
        }
    }
}

/// Which of the callee's frames may wait to be joined into one append
/// (`RESERVOICE_APPEND_JOIN`; `call::joining` has the rules).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AppendJoin {
    /// Only frames the model decides nothing from: not a speech start
    /// (until the model's `speech_started`), not the silence where the
    /// model's turn window may close (until its `speech_stopped`); a still
    /// line past the window waits up to a second. Speech starts (barge-in)
    /// and turn ends reach the model as soon as with 20 ms appends.
    #[default]
    Safe,
    /// Every frame: each append waits for `RESERVOICE_APPEND_MS` of audio, so
    /// the model hears everything up to that minus 20 ms later.
    Always,
}

/// What to do when an answering machine takes the call (`--voicemail`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum VoicemailPolicy {
    /// Leave a short message after the beep (who calls, for whom, the slot,
    /// that nothing was booked), so the restaurant knows why it was called.
    #[default]
    Leave,
    /// Hang up at once: nothing is said to a machine.
    Hangup,
}

/// How `send_dtmf` presses keys on the restaurant's line (`--dtmf`,
/// `RESERVOICE_DTMF`).
///
/// The Media Stream has no message for keys, so there are two ways, each with
/// its cost (docs/protocol/twilio.md 5.9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DtmfMode {
    /// Twilio plays the keys: the call is updated with TwiML that plays them
    /// (`<Play digits>`) and then opens a new Media Stream. The keys reach the
    /// line the way the carrier sends keys, at the cost of a short gap in the
    /// conversation while the stream reconnects.
    #[default]
    Twilio,
    /// The keys are played as tones inside the Media Stream, like any other
    /// audio: no gap, but audio processing on some lines distorts tones so
    /// that a phone menu may not hear them.
    Inband,
}

/// Everything `serve` needs, typed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Twilio side.
    pub twilio: TwilioSettings,
    /// Model side.
    pub realtime: RealtimeSettings,
    /// Where Twilio reaches us.
    pub public_url: PublicUrl,
    /// Listen address.
    pub bind: SocketAddr,
    /// Bearer token required on `/api/*` when set.
    pub api_token: Option<SecretString>,
    /// Call store URL (`sqlite://…` or `postgres://…`, which may carry a password).
    pub database_url: DatabaseUrl,
    /// How the call store uses its database (pool, leases of live calls).
    pub store: crate::store::StoreOptions,
    /// Database and recordings live here.
    pub data_dir: PathBuf,
    /// Zone for reservations that name none.
    pub timezone: Tz,
    /// Language of calls whose request names none (`RESERVOICE_LANGUAGE`);
    /// `None`: the main language of the restaurant's country.
    pub language: Option<Language>,
    /// Turn off Twilio signature checks (local experiments only).
    pub skip_signature: bool,
    /// Largest party accepted.
    pub max_party_size: u32,
    /// Which numbers may be dialled.
    pub dial_policy: crate::domain::phone::DialPolicy,
    /// Live-call timings.
    pub timings: CallTimings,
    /// On shutdown, how long live calls may go on before they are ended politely.
    pub drain_timeout: Duration,
    /// Answering machines: leave a message or hang up.
    pub voicemail: VoicemailPolicy,
    /// Record each call to `data_dir/recordings/{CallSid}.wav` (needs consent in many places).
    pub record: bool,
    /// How the agent's key presses reach the line.
    pub dtmf: DtmfMode,
}

/// The call store's URL. A PostgreSQL URL may carry a password, so `Debug`
/// and `Display` show it with the password masked; [`DatabaseUrl::expose`]
/// is for opening the store only.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL as given, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                f.write_str(u.as_str())
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The raw settings as flags and environment give them (see `cli::serve`).
/// `Default` gives the same values as the command line's defaults, with no
/// credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Twilio account SID (AC…)
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// The Twilio number calls come from (E.164)
    #[arg(long, env = "TWILIO_FROM_NUMBER")]
    pub twilio_from_number: Option<String>,
    /// Twilio REST base URL
    #[arg(
        long,
        env = "TWILIO_API_BASE",
        default_value = "https://api.twilio.com"
    )]
    pub twilio_api_base: String,
    /// OpenAI API key
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    /// OpenAI Realtime WebSocket endpoint
    #[arg(
        long,
        env = "OPENAI_REALTIME_URL",
        default_value = "wss://api.openai.com/v1/realtime"
    )]
    pub openai_realtime_url: String,
    /// Realtime model
    #[arg(
        long,
        env = "OPENAI_REALTIME_MODEL",
        default_value = "gpt-realtime-2.1"
    )]
    pub openai_realtime_model: String,
    /// Transcription model for the callee's speech
    #[arg(
        long,
        env = "OPENAI_TRANSCRIPTION_MODEL",
        default_value = "gpt-4o-mini-transcribe"
    )]
    pub openai_transcription_model: String,
    /// Agent voice
    #[arg(long, env = "RESERVOICE_VOICE", default_value = "marin")]
    pub voice: String,
    /// Public https URL at which Twilio reaches this server (e.g. a tunnel)
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Listen address
    #[arg(long, env = "RESERVOICE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Bearer token required on /api/* (required on a non-loopback address)
    #[arg(long, env = "RESERVOICE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Call store: sqlite://PATH or postgres://USER@HOST/DB (several instances); default: reservoice.db in the data dir
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the database and recordings
    #[arg(long, env = "RESERVOICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// IANA time zone of restaurants when a request names none (default: this machine's)
    #[arg(long, env = "RESERVOICE_TIMEZONE")]
    pub timezone: Option<String>,
    /// Language restaurants are spoken to in when a request names none, as a BCP 47 tag (fr, es-MX); default: the main language of the number's country
    #[arg(long, env = "RESERVOICE_LANGUAGE")]
    pub language: Option<String>,
    /// Accept Twilio requests without a valid signature (local experiments only)
    #[arg(long, env = "RESERVOICE_INSECURE_SKIP_SIGNATURE")]
    pub insecure_skip_signature: bool,
    /// Longest call in seconds before it is ended politely
    #[arg(long, env = "RESERVOICE_MAX_CALL_SECS", default_value_t = 600)]
    pub max_call_secs: u64,
    /// Seconds with nobody speaking before the call is ended politely
    #[arg(long, env = "RESERVOICE_MAX_SILENCE_SECS", default_value_t = 60)]
    pub max_silence_secs: u64,
    /// On shutdown, seconds live calls may go on before they are ended politely
    #[arg(long, env = "RESERVOICE_DRAIN_SECS", default_value_t = 120)]
    pub drain_secs: u64,
    /// Only call these country calling codes (e.g. "1,33"); empty: any country
    #[arg(long, env = "RESERVOICE_ALLOWED_COUNTRIES", default_value = "")]
    pub allowed_countries: String,
    /// Largest party size accepted
    #[arg(long, env = "RESERVOICE_MAX_PARTY_SIZE", default_value_t = crate::domain::reservation::DEFAULT_MAX_PARTY)]
    pub max_party_size: u32,
    /// When an answering machine answers: leave a short message, or hang up
    #[arg(long, env = "RESERVOICE_VOICEMAIL", value_enum, default_value_t = VoicemailPolicy::Leave)]
    pub voicemail: VoicemailPolicy,
    /// Record every call to a stereo WAV in the data dir (recording calls needs consent in many places)
    #[arg(long, env = "RESERVOICE_RECORD")]
    pub record: bool,
    /// How key presses reach the line: Twilio plays them (a short gap while the stream reconnects), or tones inside the stream (some lines do not carry them)
    #[arg(long, env = "RESERVOICE_DTMF", value_enum, default_value_t = DtmfMode::Twilio)]
    pub dtmf: DtmfMode,
    /// Most milliseconds of the callee's audio per message to the model (20..=100): Twilio's 20 ms frames are joined where the model decides nothing from them (see --append-join)
    #[arg(long, env = "RESERVOICE_APPEND_MS", default_value_t = DEFAULT_APPEND_MS, value_parser = clap::value_parser!(u64).range(20..=100))]
    pub append_ms: u64,
    /// Which frames may wait to be joined: safe (not a speech start, not the silence where a turn may end, until the model has decided) or always (every frame waits, the model hears everything later)
    #[arg(long, env = "RESERVOICE_APPEND_JOIN", value_enum, default_value_t = AppendJoin::Safe)]
    pub append_join: AppendJoin,
    /// Milliseconds of agent audio between two Twilio marks (0: a mark after every model audio delta); barge-in stays exact either way
    #[arg(long, env = "RESERVOICE_MARK_MS", default_value_t = DEFAULT_MARK_MS, value_parser = clap::value_parser!(u64).range(0..=2000))]
    pub mark_ms: u64,
    /// Seconds after which the live call of a server that stopped renewing its lease (it died) is finished by another instance; renewals come every quarter of this
    #[arg(long, env = "RESERVOICE_LEASE_SECS", default_value_t = DEFAULT_LEASE_SECS)]
    pub lease_secs: u64,
}

/// A live call's lease lasts this long by default (seconds): with renewals
/// every 5 s, a holder must miss three before another instance takes over.
pub const DEFAULT_LEASE_SECS: u64 = 20;

impl Default for SettingsArgs {
    fn default() -> Self {
        SettingsArgs {
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from_number: None,
            twilio_api_base: "https://api.twilio.com".into(),
            openai_api_key: None,
            openai_realtime_url: "wss://api.openai.com/v1/realtime".into(),
            openai_realtime_model: "gpt-realtime-2.1".into(),
            openai_transcription_model: "gpt-4o-mini-transcribe".into(),
            voice: "marin".into(),
            public_url: None,
            bind: "127.0.0.1:8080".into(),
            api_token: None,
            database_url: None,
            data_dir: None,
            timezone: None,
            language: None,
            insecure_skip_signature: false,
            max_call_secs: 600,
            max_silence_secs: 60,
            drain_secs: 120,
            allowed_countries: String::new(),
            max_party_size: crate::domain::reservation::DEFAULT_MAX_PARTY,
            voicemail: VoicemailPolicy::default(),
            record: false,
            dtmf: DtmfMode::default(),
            lease_secs: DEFAULT_LEASE_SECS,
            append_ms: DEFAULT_APPEND_MS,
            append_join: AppendJoin::default(),
            mark_ms: DEFAULT_MARK_MS,
        }
    }
}

#[cfg(test)]
mod default_tests {
    use super::SettingsArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SettingsArgs,
    }

    #[test]
    fn default_matches_the_command_line_defaults() {
        let parsed = Wrapper::try_parse_from(["serve"]).unwrap().args;
        let d = SettingsArgs::default();
        let key = |a: &SettingsArgs| {
            format!(
                "{:?}",
                (
                    a.max_call_secs,
                    a.max_silence_secs,
                    a.drain_secs,
                    a.max_party_size,
                    a.voicemail,
                    a.record,
                    a.dtmf,
                    a.append_ms,
                    a.append_join,
                    a.mark_ms,
                    a.lease_secs
                )
            )
        };
        assert_eq!(key(&d), key(&parsed));
        assert_eq!(d.twilio_api_base, parsed.twilio_api_base);
        assert_eq!(d.openai_realtime_model, parsed.openai_realtime_model);
    }

    #[test]
    fn the_lease_setting_keeps_the_default_timings_and_scales_them() {
        use crate::store::LeaseTimings;
        use std::time::Duration;
        let parse = |argv: &[&str]| Wrapper::try_parse_from(argv).map(|w| w.args);
        let mut args = parse(&["serve"]).unwrap();
        assert_eq!(args.lease_secs, 20);
        args.twilio_account_sid = Some("AC1".into());
        args.twilio_auth_token = Some("token".into());
        args.twilio_from_number = Some("+15557654321".into());
        args.openai_api_key = Some("sk-test".into());
        args.public_url = Some("https://reservoice.example.com".into());
        let settings = args.resolve().unwrap();
        assert_eq!(settings.store.lease, LeaseTimings::default());
        assert_eq!(settings.store.lease.renew_every, Duration::from_secs(5));
        assert_eq!(settings.store.lease.reap_grace, Duration::from_secs(10));
        args.lease_secs = 4;
        let short = args.resolve().unwrap().store.lease;
        assert_eq!(short.ttl, Duration::from_secs(4));
        assert_eq!(short.renew_every, Duration::from_secs(1));
        assert_eq!(short.retry_every, Duration::from_millis(400));
        args.lease_secs = 1;
        let refused = args.resolve().unwrap_err().to_string();
        assert!(refused.contains("RESERVOICE_LEASE_SECS"), "{refused}");
    }

    #[test]
    fn dtmf_defaults_to_twilio_and_takes_either_mode() {
        use super::DtmfMode;
        let parse = |argv: &[&str]| Wrapper::try_parse_from(argv).map(|w| w.args.dtmf);
        assert_eq!(parse(&["serve"]).unwrap(), DtmfMode::Twilio);
        assert_eq!(
            parse(&["serve", "--dtmf", "inband"]).unwrap(),
            DtmfMode::Inband
        );
        assert_eq!(
            parse(&["serve", "--dtmf", "twilio"]).unwrap(),
            DtmfMode::Twilio
        );
        let refused = parse(&["serve", "--dtmf", "rfc2833"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("twilio") && refused.contains("inband"),
            "{refused}"
        );
    }
}

/// `RESERVOICE_LEASE_SECS` as a duration: at least 2 s (renewals every half
/// second), at most an hour.
fn lease_ttl(secs: u64) -> Result<Duration, ConfigError> {
    if !(2..=3600).contains(&secs) {
        return Err(ConfigError::Invalid {
            var: "RESERVOICE_LEASE_SECS",
            problem: format!("{secs}: must be between 2 and 3600 seconds"),
        });
    }
    Ok(Duration::from_secs(secs))
}

fn required(
    value: &Option<String>,
    var: &'static str,
    flag: &'static str,
) -> Result<String, ConfigError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or(ConfigError::Missing { var, flag })
}

/// This machine's IANA zone, or UTC when it cannot be told.
pub fn local_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// The platform data directory (`~/.local/share/reservoice` on Linux).
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "reservoice")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".reservoice"))
}

impl Settings {
    /// The limits a reservation request is checked against on this server
    /// (zone, party size, dialling, language), so every door (the API, the
    /// web page, the simulator's helpers) checks the same way.
    pub fn request_rules(&self) -> crate::domain::reservation::RequestRules {
        crate::domain::reservation::RequestRules {
            default_timezone: self.timezone,
            max_party_size: self.max_party_size,
            dial_policy: self.dial_policy.clone(),
            default_language: self.language,
        }
    }
}

impl SettingsArgs {
    /// Check and type every setting; the first missing or bad one is named.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let account_sid = required(
            &self.twilio_account_sid,
            "TWILIO_ACCOUNT_SID",
            "twilio-account-sid",
        )?;
        let auth_token = required(
            &self.twilio_auth_token,
            "TWILIO_AUTH_TOKEN",
            "twilio-auth-token",
        )?;
        let from = required(
            &self.twilio_from_number,
            "TWILIO_FROM_NUMBER",
            "twilio-from-number",
        )?;
        let from_number = PhoneNumber::parse(&from).map_err(|e| ConfigError::Invalid {
            var: "TWILIO_FROM_NUMBER",
            problem: e.to_string(),
        })?;
        let api_key = required(&self.openai_api_key, "OPENAI_API_KEY", "openai-api-key")?;
        let public_url =
            PublicUrl::parse(&required(&self.public_url, "PUBLIC_URL", "public-url")?)?;
        let bind: SocketAddr = self.bind.parse().map_err(|e| ConfigError::Invalid {
            var: "RESERVOICE_BIND",
            problem: format!("'{}': {e} (expected e.g. 127.0.0.1:8080)", self.bind),
        })?;
        let api_token = self
            .api_token
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_string()));
        if api_token.is_none() && !bind.ip().is_loopback() {
            return Err(ConfigError::Missing {
                var: "RESERVOICE_API_TOKEN",
                flag: "api-token (required when binding a non-loopback address)",
            });
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let database_url = match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_string(),
            _ => format!("sqlite://{}", data_dir.join("reservoice.db").display()),
        };
        if !database_url.starts_with("sqlite:") && !crate::store::is_postgres(&database_url) {
            return Err(ConfigError::Invalid {
                var: "DATABASE_URL",
                problem: "use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".into(),
            });
        }
        let timezone = match self
            .timezone
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(z) => z.parse().map_err(|_| ConfigError::Invalid {
                var: "RESERVOICE_TIMEZONE",
                problem: format!("'{z}' is not an IANA zone"),
            })?,
            None => local_timezone(),
        };
        let language = self
            .language
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Language::parse)
            .transpose()
            .map_err(|e| ConfigError::Invalid {
                var: "RESERVOICE_LANGUAGE",
                problem: e.to_string(),
            })?;
        let largest = crate::domain::PartySize::LARGEST;
        if !(1..=largest).contains(&self.max_party_size) {
            return Err(ConfigError::Invalid {
                var: "RESERVOICE_MAX_PARTY_SIZE",
                problem: format!("must be between 1 and {largest}"),
            });
        }
        Ok(Settings {
            twilio: TwilioSettings {
                account_sid,
                auth_token: SecretString::from(auth_token),
                from_number,
                api_base: self.twilio_api_base.trim_end_matches('/').to_string(),
            },
            realtime: RealtimeSettings {
                api_key: SecretString::from(api_key),
                url: self.openai_realtime_url.clone(),
                model: self.openai_realtime_model.clone(),
                voice: self.voice.clone(),
                transcription_model: self.openai_transcription_model.clone(),
            },
            public_url,
            bind,
            api_token,
            database_url: DatabaseUrl(database_url),
            store: crate::store::StoreOptions {
                lease: crate::store::LeaseTimings::lasting(lease_ttl(self.lease_secs)?),
                ..crate::store::StoreOptions::default()
            },
            data_dir,
            timezone,
            language,
            skip_signature: self.insecure_skip_signature,
            max_party_size: self.max_party_size,
            dial_policy: crate::domain::phone::DialPolicy::parse_allow_list(
                &self.allowed_countries,
            )
            .map_err(|problem| ConfigError::Invalid {
                var: "RESERVOICE_ALLOWED_COUNTRIES",
                problem,
            })?,
            timings: CallTimings {
                max_call: Duration::from_secs(self.max_call_secs.max(10)),
                max_silence: Duration::from_secs(self.max_silence_secs.max(5)),
                append_ms: self.append_ms,
                append_join: self.append_join,
                mark_ms: self.mark_ms,
                ..CallTimings::default()
            },
            drain_timeout: Duration::from_secs(self.drain_secs),
            voicemail: self.voicemail,
            record: self.record,
            dtmf: self.dtmf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SettingsArgs {
        SettingsArgs {
            twilio_account_sid: Some("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into()),
            twilio_auth_token: Some("12345678901234567890123456789012".into()),
            twilio_from_number: Some("+15557654321".into()),
            twilio_api_base: "https://api.twilio.com/".into(),
            openai_api_key: Some("sk-test-secret".into()),
            openai_realtime_url: "wss://api.openai.com/v1/realtime".into(),
            openai_realtime_model: "gpt-realtime-2.1".into(),
            openai_transcription_model: "gpt-4o-mini-transcribe".into(),
            voice: "marin".into(),
            public_url: Some("https://reservoice.example.com/".into()),
            bind: "127.0.0.1:0".into(),
            max_party_size: 20,
            timezone: Some("Europe/Paris".into()),
            max_call_secs: 600,
            max_silence_secs: 60,
            drain_secs: 120,
            ..Default::default()
        }
    }

    #[test]
    fn urls_derive_from_the_public_base() {
        let s = args().resolve().unwrap();
        assert_eq!(
            s.public_url.stream_url(),
            "wss://reservoice.example.com/media-stream"
        );
        assert_eq!(
            s.public_url.status_callback(),
            "https://reservoice.example.com/twilio/status"
        );
        assert_eq!(s.twilio.api_base, "https://api.twilio.com");
        let local = PublicUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(local.stream_url(), "ws://127.0.0.1:8080/media-stream");
        assert!(PublicUrl::parse("ftp://x").is_err());
        assert!(PublicUrl::parse("https://x.example.com/?a=1").is_err());
    }

    #[test]
    fn missing_credentials_name_the_variable() {
        let mut a = args();
        a.twilio_auth_token = None;
        assert_eq!(a.resolve().unwrap_err().to_string(), "missing TWILIO_AUTH_TOKEN: set it in the environment, in .env, or with --twilio-auth-token");
        let mut a = args();
        a.openai_api_key = Some("  ".into());
        assert!(a
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("OPENAI_API_KEY"));
    }

    #[test]
    fn the_dtmf_mode_reaches_the_settings() {
        assert_eq!(args().resolve().unwrap().dtmf, DtmfMode::Twilio);
        let mut a = args();
        a.dtmf = DtmfMode::Inband;
        assert_eq!(a.resolve().unwrap().dtmf, DtmfMode::Inband);
    }

    #[test]
    fn the_servers_call_language_is_a_supported_tag_or_none() {
        assert_eq!(args().resolve().unwrap().language, None);
        let mut a = args();
        a.language = Some(" ".into());
        assert_eq!(a.resolve().unwrap().language, None);
        a.language = Some("es-MX".into());
        assert_eq!(
            a.resolve().unwrap().language.map(|l| l.to_string()),
            Some("es-MX".into())
        );
        a.language = Some("tlh".into());
        let e = a.resolve().unwrap_err().to_string();
        assert!(
            e.starts_with("RESERVOICE_LANGUAGE is invalid: 'tlh' is not a supported language; supported: en (English), fr (French)"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = args().resolve().unwrap();
        let dump = format!("{s:?}");
        assert!(!dump.contains("12345678901234567890123456789012"));
        assert!(!dump.contains("sk-test-secret"));
        let mut a = args();
        a.database_url = Some("postgres://calls:pw-secret@db.internal:5432/calls".into());
        let s = a.resolve().unwrap();
        assert_eq!(
            s.database_url.expose(),
            "postgres://calls:pw-secret@db.internal:5432/calls"
        );
        let dump = format!("{s:?} {}", s.database_url);
        assert!(!dump.contains("pw-secret"), "{dump}");
        assert!(
            dump.contains("postgres://calls:***@db.internal:5432/calls"),
            "{dump}"
        );
    }

    #[test]
    fn the_call_store_is_sqlite_or_postgres() {
        for ok in [
            "sqlite:///tmp/x.db",
            "postgres://a@h/d",
            "postgresql://a@h/d",
        ] {
            let mut a = args();
            a.database_url = Some(ok.into());
            assert!(a.resolve().is_ok(), "{ok}");
        }
        let mut a = args();
        a.database_url = Some("mysql://a@h/d".into());
        assert!(a
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("DATABASE_URL"));
    }

    #[test]
    fn public_bind_needs_an_api_token() {
        let mut a = args();
        a.bind = "0.0.0.0:8080".into();
        assert!(a
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("RESERVOICE_API_TOKEN"));
        a.api_token = Some("tok".into());
        assert!(a.resolve().is_ok());
    }
}
