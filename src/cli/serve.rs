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
    let stop = shutdown_signal();
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
    match app.run_until(stop).await {
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
///
/// The handlers are installed when this is called, not when the future is
/// first polled: a SIGTERM that arrives between "listening" and the first
/// poll must start the drain, not kill the process with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {},
                _ = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        info!("shutting down");
    }
}
