//! `reservoice bench --news`: how long call news takes from one instance to
//! another through PostgreSQL (docs/PERFORMANCE.md).
//!
//! Two call stores on one database play two instances: each has its own
//! pool and its own listening connection, as two `serve` processes would.
//! Instance A runs N live calls, each writing a transcript line every few
//! seconds through the same ordered writer a live call uses; instance B
//! follows every call with [`CallStore::follow`], the code behind
//! `GET /api/calls/{id}/events`. Each line carries the moment it was said;
//! the delay is from then until B's follower has the line: A's write and
//! commit, the notification, B's read of the row. Every line must arrive
//! once, in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::domain::reservation::{RequestRules, ReservationRequest};
use crate::domain::{CallStatus, Outcome, OutcomeStatus, OutcomeWrite, Speaker, TranscriptLine};
use crate::store::scratch::ScratchDatabase;
use crate::store::{spawn_writer, CallEvent, CallStore, CallWrite, Followed, StoreOptions};

/// The load.
#[derive(Debug, Clone)]
pub struct NewsConfig {
    /// Live calls at once.
    pub calls: usize,
    /// How long every call talks once all have started.
    pub duration: Duration,
    /// Over how long the calls start.
    pub ramp: Duration,
    /// A line every this often, per call (a conversation's pace).
    pub line_every: Duration,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct NewsReport {
    /// Calls.
    pub calls: usize,
    /// Lines written by instance A.
    pub lines_written: u64,
    /// Lines instance B's followers received (each once, in order).
    pub lines_delivered: u64,
    /// Lines B never received.
    pub lines_lost: u64,
    /// Lines B received twice or out of order.
    pub lines_unexpected: u64,
    /// Lines per second over the steady state.
    pub lines_per_sec: f64,
    /// Delay from a line being said on A to B's follower having it (ms).
    pub delay_p50_ms: f64,
    /// 90th percentile (ms).
    pub delay_p90_ms: f64,
    /// 99th percentile (ms).
    pub delay_p99_ms: f64,
    /// 99.9th percentile (ms).
    pub delay_p999_ms: f64,
    /// Slowest (ms).
    pub delay_max_ms: f64,
    /// Transactions the database committed over the whole run, from
    /// `pg_stat_database`: both instances, placing the calls, their statuses,
    /// lines and outcomes, and every follower's reads (the bench's calls hold
    /// no leases).
    pub db_transactions: u64,
}

impl NewsReport {
    /// For people.
    pub fn render(&self) -> String {
        format!(
            "call news, instance A → PostgreSQL → instance B, {} calls\n  \
             lines: {} written, {} delivered once in order, {} lost, {} unexpected ({:.0}/s)\n  \
             delay said→followed: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms\n  \
             database: {} transactions ({:.1} per call, {:.2} per line)\n",
            self.calls,
            self.lines_written,
            self.lines_delivered,
            self.lines_lost,
            self.lines_unexpected,
            self.lines_per_sec,
            self.delay_p50_ms,
            self.delay_p90_ms,
            self.delay_p99_ms,
            self.delay_p999_ms,
            self.delay_max_ms,
            self.db_transactions,
            self.db_transactions as f64 / self.calls.max(1) as f64,
            self.db_transactions as f64 / self.lines_written.max(1) as f64,
        )
    }

    /// One JSON line, for scripts.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What one follower saw.
#[derive(Default)]
struct Seen {
    delivered: u64,
    unexpected: u64,
}

/// Run the load on a scratch database of the PostgreSQL server at
/// `admin_url` (dropped afterwards).
pub async fn run(admin_url: &str, config: &NewsConfig) -> anyhow::Result<NewsReport> {
    let scratch = ScratchDatabase::create_on(admin_url).await?;
    let result = async {
        let before = committed(scratch.url()).await?;
        let mut report = run_on(scratch.url(), config).await?;
        // Backends report their counts when they exit; the stores are closed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        report.db_transactions = committed(scratch.url()).await?.saturating_sub(before);
        anyhow::Ok(report)
    }
    .await;
    scratch.drop_now().await?;
    result
}

/// Transactions committed in the database at `url` so far (this query's own
/// connection counts one or two).
async fn committed(url: &str) -> anyhow::Result<u64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(n.max(0) as u64)
}

async fn run_on(url: &str, config: &NewsConfig) -> anyhow::Result<NewsReport> {
    let options = StoreOptions {
        max_connections: 20,
        ..StoreOptions::default()
    };
    let a = CallStore::open_with(url, options.clone())
        .await
        .context("instance A")?;
    let b = CallStore::open_with(url, options)
        .await
        .context("instance B")?;
    let reservation = ReservationRequest {
        to: "+12125550123".into(),
        restaurant: "Chez Bench".into(),
        party_size: 2,
        date: "2099-01-01".into(),
        time: "19:00".into(),
        name: "Alex Doe".into(),
        ..Default::default()
    }
    .into_reservation(
        &RequestRules {
            default_timezone: chrono_tz::Tz::UTC,
            max_party_size: 20,
            dial_policy: Default::default(),
            default_language: None,
        },
        chrono::Utc::now(),
    )
    .map_err(|e| anyhow::anyhow!("bench reservation: {e:?}"))?;

    let ids: Vec<String> = (0..config.calls).map(|i| format!("CAnews{i:05}")).collect();
    for id in &ids {
        a.insert(id, &reservation, "bench", CallStatus::Queued)
            .await?;
        a.apply_status(id, CallStatus::InProgress, Some(2)).await?;
        a.stream_started(id).await?;
    }
    let delays = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?,
    ));
    let start = Instant::now();
    let mut followers = Vec::new();
    for id in &ids {
        let follow = b.follow(id).await?.context("the call exists")?;
        let delays = delays.clone();
        followers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut expected = 1u64;
            let mut follow = Box::pin(follow);
            while let Some(f) = follow.next().await {
                let Followed::Event(CallEvent::Transcript { line, seq }) = f else {
                    continue;
                };
                let now = start.elapsed().as_micros() as u64;
                if seq != expected {
                    seen.unexpected += 1;
                    continue;
                }
                expected += 1;
                seen.delivered += 1;
                if let Some(said) = line.text.strip_prefix("said at us ") {
                    if let Ok(said) = said.parse::<u64>() {
                        let mut h = delays.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = h.record(now.saturating_sub(said).max(1));
                    }
                }
            }
            seen
        }));
    }

    let steady_from = start + config.ramp;
    let end = steady_from + config.duration;
    let mut talkers = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let offset = config.ramp.mul_f64(i as f64 / config.calls.max(1) as f64);
        let (writes, writer) = spawn_writer(a.clone(), id.clone());
        let line_every = config.line_every;
        talkers.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + offset).await;
            let mut tick = tokio::time::interval(line_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut written = 0u64;
            loop {
                tick.tick().await;
                if Instant::now() >= end {
                    break;
                }
                let said = start.elapsed().as_micros() as u64;
                let speaker = if written.is_multiple_of(2) {
                    Speaker::Callee
                } else {
                    Speaker::Agent
                };
                let line = TranscriptLine {
                    speaker,
                    text: format!("said at us {said}"),
                    at_ms: said / 1000,
                };
                if writes.send(CallWrite::Line(line)).is_err() {
                    break;
                }
                written += 1;
            }
            let _ = writes.send(CallWrite::Outcome(
                Outcome::bare(OutcomeStatus::Booked, None),
                OutcomeWrite::Report,
            ));
            drop(writes);
            let _ = writer.await;
            written
        }));
    }
    let mut lines_written = 0;
    for t in talkers {
        lines_written += t.await.unwrap_or(0);
    }
    for id in &ids {
        a.apply_status(id, CallStatus::Completed, Some(3)).await?;
    }
    let mut seen = Seen::default();
    for f in followers {
        let s = tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .context("a follower never finished")?
            .unwrap_or_default();
        seen.delivered += s.delivered;
        seen.unexpected += s.unexpected;
    }
    a.close().await;
    b.close().await;
    let h = delays.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(NewsReport {
        calls: config.calls,
        lines_written,
        lines_delivered: seen.delivered,
        lines_lost: lines_written.saturating_sub(seen.delivered),
        lines_unexpected: seen.unexpected,
        lines_per_sec: lines_written as f64
            / (config.duration + config.ramp).as_secs_f64().max(0.001),
        delay_p50_ms: ms(h.value_at_quantile(0.50)),
        delay_p90_ms: ms(h.value_at_quantile(0.90)),
        delay_p99_ms: ms(h.value_at_quantile(0.99)),
        delay_p999_ms: ms(h.value_at_quantile(0.999)),
        delay_max_ms: ms(h.max()),
        db_transactions: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_delivers_every_line_once() {
        let Some(db) = ScratchDatabase::for_test().await else {
            return;
        };
        let report = run_on(
            db.url(),
            &NewsConfig {
                calls: 8,
                duration: Duration::from_secs(2),
                ramp: Duration::from_millis(200),
                line_every: Duration::from_millis(200),
            },
        )
        .await
        .unwrap();
        assert!(report.lines_written >= 8 * 5, "{report:?}");
        assert_eq!(report.lines_delivered, report.lines_written, "{report:?}");
        assert_eq!(report.lines_unexpected, 0);
        assert!(report.delay_p50_ms > 0.0 && report.delay_max_ms >= report.delay_p99_ms);
        assert!(report.render().contains("8 calls"));
    }
}
