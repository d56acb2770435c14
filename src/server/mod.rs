//! The HTTP surface: the router, start-up and shutdown.
//!
//! [`Application::build`] is the one function that makes the server from
//! settings; `serve`, `demo` and the end-to-end tests all start exactly this.

pub mod api;
pub mod auth;
pub mod media;
pub mod metrics;
pub mod reaper;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::call::CallContext;
use crate::config::Settings;
use crate::store::CallStore;
use crate::twilio::rest::TwilioClient;

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Settings, typed.
    pub settings: Arc<Settings>,
    /// Call records.
    pub store: CallStore,
    /// Twilio REST.
    pub twilio: TwilioClient,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Set once a shutdown signal arrived: no new calls are placed.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Cancelled when the drain time is over: live calls end politely.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Every live call session: the drain waits on exactly these.
    pub calls: tokio_util::task::TaskTracker,
    /// Sessions waiting for their call's next stream (a key press through
    /// Twilio): a stream that lands here is handed to its session.
    pub rejoins: crate::call::rejoin::Rejoins,
}

impl AppState {
    /// What placing a call needs (`POST /api/calls`, and any other way in).
    pub fn dialer(&self) -> crate::dialer::Dialer {
        crate::dialer::Dialer {
            settings: self.settings.clone(),
            store: self.store.clone(),
            twilio: self.twilio.clone(),
            metrics: self.metrics.clone(),
            draining: self.draining.clone(),
        }
    }

    /// What a live call session needs.
    pub fn call_context(&self) -> CallContext {
        CallContext {
            settings: self.settings.clone(),
            store: self.store.clone(),
            twilio: self.twilio.clone(),
            shutdown: self.shutdown.clone(),
            rejoins: self.rejoins.clone(),
        }
    }
}

/// A built server, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Open the call store and build the router. `listener`: an already bound
    /// socket (tests and `demo` bind port 0 first, so the public URL can name
    /// the port); `None` binds `settings.bind`.
    pub async fn build(
        settings: Settings,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<Application> {
        use anyhow::Context;
        crate::crypto::install_tls_provider();
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(settings.bind)
                .await
                .with_context(|| format!("cannot listen on {}", settings.bind))?,
        };
        let store = CallStore::open_with(settings.database_url.expose(), settings.store.clone())
            .await
            .context("cannot open the call store")?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("reservoice/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        let twilio = TwilioClient::new(
            http,
            &settings.twilio.api_base,
            &settings.twilio.account_sid,
            settings.twilio.auth_token.clone(),
        );
        let state = AppState {
            settings: Arc::new(settings),
            store,
            twilio,
            metrics: Arc::new(metrics::Metrics::default()),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            shutdown: tokio_util::sync::CancellationToken::new(),
            calls: tokio_util::task::TaskTracker::new(),
            rejoins: crate::call::rejoin::Rejoins::default(),
        };
        let router = router(state.clone());
        reaper::spawn(state.clone());
        Ok(Application {
            listener,
            router,
            state,
        })
    }

    /// Serve the web page with these options (`demo --web` offers the
    /// simulated restaurants in its form).
    pub fn with_web(mut self, web: crate::web::WebOptions) -> Application {
        self.router = router_with(self.state.clone(), web);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (tests use the store directly).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves; then drain: refuse new calls (503),
    /// let live calls finish for up to the drain timeout (webhooks and media
    /// streams are still served meanwhile), end the rest politely, wait for
    /// their records to be written, and stop.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        use std::time::Duration;
        use tokio::time::timeout;
        let state = self.state.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        // TCP_NODELAY on every accepted socket: a Media Stream is a steady
        // trickle of small latency-bound writes, which Nagle's algorithm holds
        // back until the previous one is acknowledged (tens of ms under load,
        // docs/PERFORMANCE.md).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        let server = tokio::spawn(async move { serve.await });
        shutdown.await;
        state.draining.store(true, Ordering::SeqCst);
        // Closed: `wait` resolves once no call is left (streams that still
        // arrive during the drain are served, and waited for, too).
        state.calls.close();
        if !state.calls.is_empty() {
            tracing::info!(
                live_calls = state.calls.len(),
                drain_secs = state.settings.drain_timeout.as_secs(),
                "draining: no new calls; waiting for live calls to finish"
            );
        }
        if timeout(state.settings.drain_timeout, state.calls.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                live_calls = state.calls.len(),
                "drain time over: ending the remaining calls politely"
            );
            state.shutdown.cancel();
            let _ = timeout(Duration::from_secs(10), state.calls.wait()).await;
        }
        let _ = stop_tx.send(());
        let result = match server.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        };
        state.store.close().await;
        result
    }
}

/// The routes (see PRODUCT.md, HTTP surface).
pub fn router(state: AppState) -> Router {
    router_with(state, crate::web::WebOptions::default())
}

/// The routes, with the web page's options.
fn router_with(state: AppState, web: crate::web::WebOptions) -> Router {
    let api = Router::new()
        .route("/calls", post(api::create_call).get(api::list_calls))
        .route("/calls/{id}", get(api::get_call))
        .route("/calls/{id}/events", get(api::call_events))
        .route("/calls/{id}/recording", get(api::get_recording))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_token,
        ));
    Router::new()
        .nest("/api", api)
        .route("/twilio/status", post(webhooks::call_status))
        .route("/twilio/stream-status", post(webhooks::stream_status))
        .route("/twilio/amd", post(webhooks::amd_result))
        .route("/media-stream", get(media::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::render))
        .with_state(state.clone())
        .merge(crate::web::routes(state, web))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
}

/// The span every HTTP request runs in: its method and path. Not the query
/// string, the headers or the body, which may carry a token or a phone
/// number; call ids in paths are no secret.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn request_spans_name_the_path_but_never_the_query() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let request = axum::http::Request::post("/api/calls?to=%2B12125550123&token=s3cret")
                .body(())
                .expect("a request");
            let _inside = super::request_span(&request).entered();
            tracing::info!("handled");
        });
        let text = String::from_utf8_lossy(&captured.0.lock().expect("log")).to_string();
        assert!(
            text.contains("http{method=POST path=/api/calls}: "),
            "{text}"
        );
        assert!(
            !text.contains("s3cret") && !text.contains("2125550123"),
            "{text}"
        );
    }
}
