//! News from PostgreSQL: one listening connection per instance turns the
//! database's notifications (sent by triggers at commit, whoever wrote) into
//! [`News`] for this process's followers.
//!
//! Notifications are not stored: those sent while the connection is down are
//! gone. So whenever the listener (re)connects, it first listens again and
//! then tells every follower to resync, i.e. to read from the store whatever
//! comes after what it already has; nothing is lost and, since followers
//! count lines by `seq`, nothing is repeated. A heartbeat query on the
//! listening connection finds a connection that died silently.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::events::{EventHub, News};

/// How the listening connection appears in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "reservoice-news";
/// The channel the triggers notify (migrations/postgres).
pub const CHANNEL: &str = "reservoice_call_news";
/// How often the listening connection is checked when it is quiet.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long the heartbeat query may take before the connection counts as dead.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest pause between attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Listen on `pool`'s database until `stop`, publishing news to `hub`.
/// `pool`'s settings are reused for a dedicated connection, so the listener
/// never takes a connection the store's queries need.
pub(crate) fn spawn_listener(
    pool: &PgPool,
    hub: EventHub,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(
            (*pool.connect_options())
                .clone()
                .application_name(APPLICATION_NAME),
        );
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        let mut down_since: Option<tokio::time::Instant> = None;
        loop {
            let mut listener = tokio::select! {
                _ = stop.cancelled() => break,
                l = listen(&own) => match l {
                    Ok(l) => l,
                    Err(e) => {
                        if down_since.is_none() {
                            warn!(error = %e, "cannot listen for call news; retrying");
                            down_since = Some(tokio::time::Instant::now());
                        }
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            if let Some(since) = down_since.take() {
                info!(
                    down_ms = since.elapsed().as_millis() as u64,
                    "listening for call news again; followers catch up from the store"
                );
            }
            backoff = Duration::from_millis(100);
            // Whatever was announced while nobody listened is in the store.
            hub.resync_all();
            if let Err(e) = relay(&mut listener, &hub, &stop).await {
                warn!(error = %e, "lost the connection that listens for call news");
                down_since = Some(tokio::time::Instant::now());
            } else {
                break;
            }
        }
        own.close().await;
    })
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Relay notifications until `stop` (`Ok`) or until the connection is lost
/// and cannot be restored at once (`Err`).
async fn relay(
    listener: &mut PgListener,
    hub: &EventHub,
    stop: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.reset();
    loop {
        // `try_recv` is cancel-safe while it waits for a message.
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            received = listener.try_recv() => match received? {
                Some(n) => {
                    heartbeat.reset();
                    match News::parse(n.payload()) {
                        Some((id, news)) => hub.publish(id, news),
                        None => debug!(payload = n.payload(), "unknown call news ignored"),
                    }
                }
                // The connection dropped and sqlx listened again at once.
                None => {
                    info!("the connection listening for call news was restored; followers catch up");
                    hub.resync_all();
                }
            },
            _ = heartbeat.tick() => {
                let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(HEARTBEAT_TIMEOUT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the listening connection did not answer a heartbeat",
                    ))),
                }
            }
        }
    }
}
