//! The command line: one file per subcommand, plus the API client and the
//! terminal rendering of a live call.

pub mod bench;
pub mod call;
pub mod calls;
pub mod client;
pub mod demo;
pub mod render;
pub mod serve;

use clap::{Parser, Subcommand};

use crate::config::SettingsArgs;

/// reservoice — an AI voice agent that phones a restaurant and books your table.
#[derive(Debug, Parser)]
#[command(name = "reservoice", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the client commands find the server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The reservoice server to talk to
    #[arg(
        long,
        env = "RESERVOICE_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// Bearer token for the server's API
    #[arg(
        long,
        env = "RESERVOICE_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub api_token: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: REST API, Twilio webhooks and the Media Stream endpoint
    Serve(Box<SettingsArgs>),
    /// Place a reservation call and follow it live
    Call(call::CallArgs),
    /// List past calls, or show one with `calls show ID`
    Calls(calls::CallsArgs),
    /// Run a whole simulated call on this machine (no accounts, no network)
    Demo(demo::DemoArgs),
    /// Load-test a running server: N simulated calls, audio round trip per frame
    Bench(bench::BenchArgs),
}

/// Run the parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Call(args) => call::run(args).await,
        Command::Calls(args) => calls::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Set up logging once: `RUST_LOG` wins; otherwise `default` (e.g. "info").
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
