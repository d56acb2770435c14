//! `reservoice demo`: a whole reservation call on this machine, simulated.

use super::client::ApiClient;
use super::render::exit;
use crate::sim::rig::{Rig, RigOptions, ScenarioKind};

/// Arguments of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Which conversation to simulate
    #[arg(long, value_enum, default_value = "booked")]
    pub scenario: ScenarioKind,
    /// Print the final call record as JSON
    #[arg(long)]
    pub json: bool,
    /// Also show the server's logs
    #[arg(long, short)]
    pub verbose: bool,
    /// OpenAI key: use the real Realtime API instead of the stand-in
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,
    /// Serve the web page instead: place calls to simulated restaurants from
    /// a browser and watch them live, until Ctrl-C
    #[arg(long)]
    pub web: bool,
    /// With --web: the loopback port of the page (another free one if taken)
    #[arg(long, default_value_t = 8080, requires = "web")]
    pub port: u16,
    /// How the agent's key presses reach the simulated phone menu: Twilio
    /// plays them (a call update, then a new stream) or tones in the stream
    #[arg(long, env = "RESERVOICE_DTMF", value_enum, default_value_t = crate::config::DtmfMode::Twilio)]
    pub dtmf: crate::config::DtmfMode,
}

/// Run the demo; the exit code is what `call` would return.
pub async fn run(args: DemoArgs) -> i32 {
    super::init_logging(if args.verbose { "info" } else { "warn" });
    let real_model = args
        .openai_api_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty());
    if args.web {
        return run_web(args, real_model).await;
    }
    if !args.json {
        println!("SIMULATION — no real phone call is made.");
        println!(
            "A simulated telephone network and restaurant host (recorded speech) talk to the real reservoice server on this machine; the agent is {}.",
            agent_words(real_model)
        );
        println!();
    }
    let Some(rig) = start(world(&args)).await else {
        return exit::ERROR;
    };
    let code = match ApiClient::new(&rig.server_url, None) {
        Ok(client) => {
            match super::call::place_and_follow(&client, &rig.request(), args.json, false).await {
                Ok((_, code)) => code,
                Err(e) => {
                    eprintln!("reservoice: {e}");
                    super::call::error_code(&e)
                }
            }
        }
        Err(e) => {
            eprintln!("reservoice: {e}");
            exit::ERROR
        }
    };
    if !args.json {
        println!();
        println!("(That was a simulation: the restaurant, the phone network{} were simulated on this machine.)", if real_model { "" } else { " and the AI model" });
    }
    rig.shutdown().await;
    code
}

/// `demo --web`: the server with its page, the simulated telephone network
/// with one restaurant per scenario, until Ctrl-C.
async fn run_web(args: DemoArgs, real_model: bool) -> i32 {
    let stop = super::serve::shutdown_signal();
    let options = RigOptions {
        restaurants: true,
        record: true,
        port: args.port,
        ..world(&args)
    };
    let Some(rig) = start(options).await else {
        return exit::ERROR;
    };
    println!("SIMULATION — no real phone call is made.");
    println!();
    println!("  The reservoice page: {}/", rig.server_url);
    println!();
    println!(
        "Open it in a browser and place calls from its form. They go to simulated restaurants on this machine (each behaves differently: booked, another time offered, interrupted, a phone menu, an answering machine, busy, no answer, and a restaurant in Paris whose host speaks French); the agent is {}. Calls are recorded, and kept until the demo stops.",
        agent_words(real_model)
    );
    println!("Press Ctrl-C to stop.");
    stop.await;
    rig.shutdown().await;
    exit::BOOKED
}

/// The simulated world the demo asks for.
fn world(args: &DemoArgs) -> RigOptions {
    RigOptions {
        scenario: args.scenario,
        timezone: crate::config::local_timezone(),
        openai_api_key: args.openai_api_key.clone().filter(|k| !k.trim().is_empty()),
        dtmf: args.dtmf,
        ..Default::default()
    }
}

/// Start the world, or say why not.
async fn start(options: RigOptions) -> Option<Rig> {
    match Rig::start(options).await {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("reservoice: cannot start the simulation: {e:#}");
            None
        }
    }
}

/// Who plays the agent, as the demo says it.
fn agent_words(real_model: bool) -> &'static str {
    if real_model {
        "the real OpenAI Realtime model (OPENAI_API_KEY is set)"
    } else {
        "a scripted stand-in for the OpenAI Realtime API"
    }
}
