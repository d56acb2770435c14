//! `reservoice serve`.

use tracing::{error, info, warn};

use super::render::exit;
use crate::config::SettingsArgs;
use crate::server::Application;

/// Resolve settings, start the server, run until Ctrl-C / SIGTERM.
pub async fn run(args: SettingsArgs) -> i32 {
    super::init_logging("info");
    let settings = match args.resolve() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reservoice: {e}");
            return exit::INVALID;
        }
    };
    if settings.skip_signature {
        warn!("--insecure-skip-signature is ON: anyone can post fake Twilio callbacks and open media streams. Use it only for local experiments.");
    }
    let public = settings.public_url.clone();
    let app = match Application::build(settings, None).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("reservoice: {e:#}");
            return exit::ERROR;
        }
    };
    match app.local_addr() {
        Ok(addr) => {
            info!(%addr, public_url = public.as_str(), stream_url = %public.stream_url(), "reservoice is listening")
        }
        Err(e) => warn!(error = %e, "cannot read the bound address"),
    }
    match app.run_until(shutdown_signal()).await {
        Ok(()) => {
            info!("stopped");
            exit::BOOKED
        }
        Err(e) => {
            error!(error = %e, "server failed");
            exit::ERROR
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    info!("shutting down");
}
