//! `reservoice bench`: size a machine. Starts the Realtime and Twilio REST
//! stand-ins on fixed loopback ports, prints the `serve` command line that
//! uses them, waits for that server, then runs N simulated calls against it
//! (or, with `--floor`, against the bridge-less floor) in echo or realistic
//! traffic and reports the audio latencies and, with `--pid`, the server's
//! (or the floor's) CPU and memory. `--serve-floor PORT` runs only the
//! floor, so that it can be pinned and measured as a process of its own.
//! With `--also-server`, the calls are spread over several servers sharing
//! one call store, and `--database` reports what that store costs per call.
//! See docs/PERFORMANCE.md.

use std::time::Duration;

use super::render::exit;
use super::ServerArgs;
use crate::bench::standins::{floor_url, FakeTwilio, Floor, ModelStandIn};
use crate::bench::{self, LoadConfig, Target, Traffic, ACCOUNT_SID, FROM_NUMBER};

/// Arguments of `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent calls
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// Seconds every call streams once all have started
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Seconds over which the calls start, evenly spread
    #[arg(long, default_value_t = 5.0)]
    pub ramp: f64,
    /// The server's TWILIO_AUTH_TOKEN: the key of every X-Twilio-Signature
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Port of the Realtime stand-in (the server's OPENAI_REALTIME_URL)
    #[arg(long, default_value_t = 8091)]
    pub realtime_port: u16,
    /// Port of the Twilio REST stand-in (the server's TWILIO_API_BASE)
    #[arg(long, default_value_t = 8092)]
    pub twilio_port: u16,
    /// The server's (or the floor's) process id: report its CPU time and memory (Linux /proc);
    /// repeat it for every server of --also-server (their costs are added up)
    #[arg(long)]
    pub pid: Vec<u32>,
    /// Another server sharing the first one's call store (repeatable): the
    /// calls are placed on the servers in turn
    #[arg(long, value_name = "URL")]
    pub also_server: Vec<String>,
    /// The servers' DATABASE_URL: with postgres://, report its transactions per
    /// call and the CPU of its backends per call-minute (Linux /proc)
    #[arg(long, value_name = "DATABASE_URL")]
    pub database: Option<String>,
    /// Seconds to wait for the server to answer /healthz
    #[arg(long, default_value_t = 120.0)]
    pub wait: f64,
    /// What the callee and the model do: echo every frame (full duplex, the
    /// worst case) or talk in turns (realistic)
    #[arg(long, value_enum, default_value_t = Traffic::Echo)]
    pub traffic: Traffic,
    /// Measure the floor: the same load against a bridge-less floor, no server
    #[arg(long)]
    pub floor: bool,
    /// With --floor: use the floor already running on this loopback port
    /// (`--serve-floor`) instead of one inside the bench
    #[arg(long, requires = "floor")]
    pub floor_port: Option<u16>,
    /// Run only the floor on this loopback port, until Ctrl-C or SIGTERM
    #[arg(long, value_name = "PORT", conflicts_with_all = ["floor", "news"])]
    pub serve_floor: Option<u16>,
    /// Measure instead the call news delay between two instances sharing
    /// this PostgreSQL server (a user who may create databases; a scratch
    /// database is created and dropped): --calls live calls, a line every --line-every
    #[arg(long, value_name = "POSTGRES_URL")]
    pub news: Option<String>,
    /// With --news: seconds between two transcript lines of a call
    #[arg(long, default_value_t = 2.0)]
    pub line_every: f64,
    /// Where the server is (and its API token)
    #[command(flatten)]
    pub server: ServerArgs,
}

fn seconds(what: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{what} must be a number of seconds ≥ 0"))
}

/// Run the bench; exit 0 when every call connected and no frame was lost.
pub async fn run(args: BenchArgs) -> i32 {
    super::init_logging("warn");
    crate::crypto::install_tls_provider();
    let (duration, ramp, wait) = match (
        seconds("duration", args.duration),
        seconds("ramp", args.ramp),
        seconds("wait", args.wait),
    ) {
        (Ok(d), Ok(r), Ok(w)) => (d, r, w),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("reservoice bench: {e}");
            return exit::INVALID;
        }
    };
    if let Some(port) = args.serve_floor {
        return serve_floor(port, args.traffic).await;
    }
    if args.calls == 0 {
        eprintln!("reservoice bench: --calls must be at least 1");
        return exit::INVALID;
    }
    if let Some(url) = &args.news {
        let line_every = match seconds("line-every", args.line_every) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                eprintln!("reservoice bench: --line-every must be a number of seconds > 0");
                return exit::INVALID;
            }
        };
        return run_news(url, args.calls, duration, ramp, line_every).await;
    }
    let auth_token = match (&args.auth_token, args.floor) {
        (Some(t), _) if !t.trim().is_empty() => t.trim().to_string(),
        (_, true) => "floor".to_string(),
        _ => {
            eprintln!("reservoice bench: missing --auth-token (the server's TWILIO_AUTH_TOKEN)");
            return exit::INVALID;
        }
    };
    let config = LoadConfig {
        calls: args.calls,
        duration,
        ramp,
        auth_token,
        server_pids: args.pid.clone(),
        database: args.database.as_deref().map(bench::database::Database::new),
        drain: Duration::from_secs(2),
        traffic: args.traffic,
    };
    let result = if args.floor {
        run_floor(&config, args.floor_port).await
    } else {
        run_server(&args, &config, wait).await
    };
    conclude(result.map(|r| {
        let clean = r.calls_failed == 0 && r.frames_lost == 0 && r.turns_unanswered == 0;
        (r.render(), r.json_line(), clean)
    }))
}

/// `--serve-floor PORT`: the floor alone, until Ctrl-C or SIGTERM.
async fn serve_floor(port: u16, traffic: Traffic) -> i32 {
    let floor = match Floor::start(port, traffic).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("reservoice bench: {e:#}");
            return exit::ERROR;
        }
    };
    eprintln!(
        "floor ({} traffic) listening at {}",
        traffic.name(),
        floor.stream_url()
    );
    let stop = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    stop.await;
    floor.shutdown().await;
    exit::BOOKED
}

/// Print a report (text, then one JSON line); exit 0 when `clean`.
fn conclude(result: anyhow::Result<(String, String, bool)>) -> i32 {
    match result {
        Ok((text, json, clean)) => {
            print!("{text}");
            println!("{json}");
            if clean {
                exit::BOOKED
            } else {
                exit::ERROR
            }
        }
        Err(e) => {
            eprintln!("reservoice bench: {e:#}");
            exit::ERROR
        }
    }
}

async fn run_news(
    admin_url: &str,
    calls: usize,
    duration: Duration,
    ramp: Duration,
    line_every: Duration,
) -> i32 {
    let config = bench::news::NewsConfig {
        calls,
        duration,
        ramp,
        line_every,
    };
    eprintln!(
        "call news: {calls} calls on two instances of one PostgreSQL database, a line every {line_every:?} per call, {ramp:?} ramp + {duration:?}…"
    );
    conclude(bench::news::run(admin_url, &config).await.map(|r| {
        let clean = r.lines_lost == 0 && r.lines_unexpected == 0;
        (r.render(), r.json_line(), clean)
    }))
}

async fn run_floor(config: &LoadConfig, port: Option<u16>) -> anyhow::Result<bench::Report> {
    if let Some(port) = port {
        let stream_url = floor_url(port);
        eprintln!(
            "floor: {} calls ({} traffic) against the floor at {stream_url}",
            config.calls,
            config.traffic.name()
        );
        return bench::run(config, Target::Floor { stream_url }).await;
    }
    let floor = Floor::start(0, config.traffic).await?;
    eprintln!(
        "floor: {} calls ({} traffic) against the built-in floor at {}",
        config.calls,
        config.traffic.name(),
        floor.stream_url()
    );
    let report = bench::run(
        config,
        Target::Floor {
            stream_url: floor.stream_url(),
        },
    )
    .await;
    floor.shutdown().await;
    report
}

async fn run_server(
    args: &BenchArgs,
    config: &LoadConfig,
    wait: Duration,
) -> anyhow::Result<bench::Report> {
    let model = ModelStandIn::start(args.realtime_port, config.traffic).await?;
    let twilio = FakeTwilio::start(args.twilio_port).await?;
    let servers: Vec<String> = std::iter::once(&args.server.server)
        .chain(&args.also_server)
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    // Several servers must share a call store: the one --database names.
    let database = match &args.database {
        Some(_) => " DATABASE_URL=<the --database>",
        None => "",
    };
    eprintln!("Start the servers against the stand-ins (e.g. pinned to core 0), then this bench waits for them:\n");
    for server in &servers {
        let bind = server
            .split_once("://")
            .map_or(server.as_str(), |(_, rest)| rest);
        eprintln!(
            "  PUBLIC_URL={server} RESERVOICE_BIND={bind} OPENAI_REALTIME_URL={} OPENAI_API_KEY=bench \\\n  TWILIO_ACCOUNT_SID={ACCOUNT_SID} TWILIO_AUTH_TOKEN=<the --auth-token> TWILIO_FROM_NUMBER={FROM_NUMBER} \\\n  TWILIO_API_BASE={}{database} RESERVOICE_DATA_DIR=$(mktemp -d) RUST_LOG=warn taskset -c 0 reservoice serve\n",
            model.url(),
            twilio.api_base()
        );
    }
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + wait;
    for server in &servers {
        let health = format!("{server}/healthz");
        loop {
            if let Ok(r) = http.get(&health).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("no answer from {health} within {wait:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    eprintln!(
        "{} up; {} calls over a {:?} ramp, then {:?} of audio…",
        if servers.len() > 1 {
            "servers are"
        } else {
            "server is"
        },
        config.calls,
        config.ramp,
        config.duration
    );
    let report = bench::run(
        config,
        Target::Server {
            api_bases: &servers,
            api_token: args.server.api_token.as_deref(),
            twilio: &twilio,
            model: model.stats(),
        },
    )
    .await;
    twilio.shutdown().await;
    model.shutdown().await;
    report
}
