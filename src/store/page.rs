//! Calls a page at a time, newest first, for the dashboard.
//!
//! Keyset pagination: a page starts strictly after the last row of the page
//! before it, by `(created_at, id)` (ties on the timestamp are broken by id),
//! so reading the 400th page costs what reading the first does — no OFFSET
//! walking over skipped rows. The `calls_newest_first` index (SQLite:
//! `migrations/sqlite/0002_calls_newest_first.sql`; PostgreSQL: the first
//! migration) serves both the order and the cursor's range. The SQL is the
//! same on both databases; only the cursor's time is bound as each stores it.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::db::{with_db, Db};
use super::{db, CallStore, StoreError};
use crate::domain::{CallStatus, CallSummary, Outcome, Reservation};

/// A page after a cursor: binds `created_at`, `id`, row count.
const PAGE_AFTER: &str =
    "SELECT id, created_at, restaurant, to_number, status, outcome, reservation FROM calls \
     WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3";
/// The first (newest) page: binds the row count.
const FIRST_PAGE: &str =
    "SELECT id, created_at, restaurant, to_number, status, outcome, reservation FROM calls \
     ORDER BY created_at DESC, id DESC LIMIT $1";

/// Where a page starts: every call on it is older than this `(created_at, id)`.
/// Opaque to clients (URL-safe text), exact to the store: the time is the
/// RFC 3339 text the store writes (on SQLite, the stored text itself; on
/// PostgreSQL, to the microsecond it keeps), so no rounding can skip or
/// repeat a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    created_at: String,
    id: String,
}

impl PageCursor {
    /// URL-safe text for a link (`?before=…`).
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}|{}", self.created_at, self.id))
    }

    /// Read a cursor from a link; `None` if it was not made by [`PageCursor::encode`].
    pub fn decode(text: &str) -> Option<PageCursor> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (created_at, id) = raw.split_once('|')?;
        DateTime::parse_from_rfc3339(created_at).ok()?;
        (!id.is_empty()).then(|| PageCursor {
            created_at: created_at.to_string(),
            id: id.to_string(),
        })
    }

    fn instant(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.created_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// One call as a list shows it: the summary plus what was asked for (party
/// and slot). `reservation` is `None` only if the stored one is unreadable, so
/// one bad row cannot hide the others.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedCall {
    /// Id, time, restaurant, number, status, outcome.
    pub summary: CallSummary,
    /// The reservation as asked.
    pub reservation: Option<Reservation>,
}

/// One page of calls, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPage {
    /// The calls on this page.
    pub calls: Vec<ListedCall>,
    /// Where the next (older) page starts; `None` on the last page.
    pub older: Option<PageCursor>,
}

/// The columns of `calls` a list shows (both databases decode them alike).
#[derive(sqlx::FromRow)]
pub(super) struct SummaryRow {
    id: String,
    created_at: DateTime<Utc>,
    restaurant: String,
    to_number: String,
    status: String,
    outcome: Option<Json<Value>>,
}

impl SummaryRow {
    pub(super) fn into_summary(self) -> CallSummary {
        CallSummary {
            created_at: self.created_at,
            restaurant: self.restaurant,
            to: self.to_number,
            status: CallStatus::parse(&self.status).unwrap_or(CallStatus::Failed),
            outcome: self
                .outcome
                .and_then(|o| serde_json::from_value::<Outcome>(o.0).ok())
                .map(|o| o.status),
            id: self.id,
        }
    }
}

#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    reservation: Json<Value>,
}

impl CallStore {
    /// Up to `limit` calls older than `before` (the newest when `None`),
    /// newest first, and the cursor of the page after them.
    pub async fn list_page(
        &self,
        limit: u32,
        before: Option<&PageCursor>,
    ) -> Result<CallPage, StoreError> {
        let limit = limit.max(1);
        // One row more than asked tells whether an older page exists.
        let fetch = i64::from(limit) + 1;
        let rows: Vec<PageRow> = match (&self.db, before) {
            (Db::Sqlite(pool), Some(c)) => {
                sqlx::query_as(PAGE_AFTER)
                    .bind(&c.created_at)
                    .bind(&c.id)
                    .bind(fetch)
                    .fetch_all(pool)
                    .await
            }
            (Db::Postgres(pool), Some(c)) => {
                sqlx::query_as(PAGE_AFTER)
                    .bind(c.instant())
                    .bind(&c.id)
                    .bind(fetch)
                    .fetch_all(pool)
                    .await
            }
            (db, None) => with_db!(db, pool => {
                sqlx::query_as(FIRST_PAGE).bind(fetch).fetch_all(pool).await
            }),
        }
        .map_err(db("listing a page of calls"))?;
        let more = rows.len() > limit as usize;
        let mut calls = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last = None;
        for row in rows.into_iter().take(limit as usize) {
            let summary = row.summary.into_summary();
            let reservation = serde_json::from_value::<Reservation>(row.reservation.0)
                .map_err(|e| tracing::warn!(call = %summary.id, error = %e, "unreadable reservation in the call store"))
                .ok();
            last = Some(PageCursor {
                created_at: summary.created_at.to_rfc3339(),
                id: summary.id.clone(),
            });
            calls.push(ListedCall {
                summary,
                reservation,
            });
        }
        Ok(CallPage {
            calls,
            older: if more { last } else { None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::reservation;
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use sqlx::Row;

    /// `n` calls in one transaction: ten calls per instant (ties broken by
    /// id), ids deliberately not in time order.
    async fn fill(store: &CallStore, n: u32) {
        let start = Utc
            .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
            .single()
            .expect("time");
        let booking = reservation();
        with_db!(&store.db, pool => {
            let mut tx = pool.begin().await.expect("tx");
            for i in 0..n {
                let at = start + Duration::milliseconds(i64::from(i / 10) * 1500);
                let id = format!("CA{:032x}", (u128::from(i) * 7919) % 100_003);
                sqlx::query("INSERT INTO calls (id, created_at, updated_at, status, to_number, restaurant, reservation, call_token) VALUES ($1, $2, $2, 'completed', '+12125550123', $3, $4, 't')")
                    .bind(&id)
                    .bind(at)
                    .bind(format!("Restaurant {i}"))
                    .bind(Json(&booking))
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
            tx.commit().await.expect("commit");
        });
    }

    async fn store_with_calls(n: u32) -> (CallStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("calls.db").display());
        let store = CallStore::open(&url).await.expect("store opens");
        fill(&store, n).await;
        (store, dir)
    }

    #[tokio::test]
    async fn ten_thousand_calls_page_newest_first_each_exactly_once() {
        let (store, _dir) = store_with_calls(10_000).await;
        every_call_once_newest_first(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_calls_page_the_same_on_postgres() {
        let Some(db) = super::super::scratch::ScratchDatabase::for_test().await else {
            return;
        };
        let store = CallStore::open(db.url()).await.expect("store opens");
        fill(&store, 10_000).await;
        every_call_once_newest_first(&store).await;
        store.close().await;
    }

    async fn every_call_once_newest_first(store: &CallStore) {
        let mut seen = std::collections::HashSet::new();
        let mut keys: Vec<(chrono::DateTime<Utc>, String)> = Vec::new();
        let mut before: Option<PageCursor> = None;
        let mut pages = 0;
        loop {
            let page = store.list_page(25, before.as_ref()).await.expect("page");
            pages += 1;
            assert!(page.calls.len() <= 25);
            for c in &page.calls {
                assert!(
                    seen.insert(c.summary.id.clone()),
                    "{} listed twice",
                    c.summary.id
                );
                assert_eq!(c.reservation.as_ref().map(|r| r.party_size.get()), Some(2));
                keys.push((c.summary.created_at, c.summary.id.clone()));
            }
            // The cursor survives the trip through a link.
            match page.older {
                Some(cursor) => {
                    assert_eq!(page.calls.len(), 25, "only the last page is short");
                    before = Some(PageCursor::decode(&cursor.encode()).expect("round trip"));
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 10_000, "every call listed");
        assert_eq!(
            pages, 400,
            "10,000 / 25: the last full page says there is no more"
        );
        assert!(
            keys.windows(2).all(|w| w[0] > w[1]),
            "strictly newest first, ties by id"
        );
    }

    #[tokio::test]
    async fn the_page_query_walks_the_index_without_sorting() {
        let (store, _dir) = store_with_calls(50).await;
        for (sql, binds) in [(PAGE_AFTER, 3), (FIRST_PAGE, 1)] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut q = sqlx::query(&explain);
            if binds == 3 {
                q = q.bind("2026-01-01T12:00:03+00:00").bind("CA").bind(26_i64);
            } else {
                q = q.bind(26_i64);
            }
            let Db::Sqlite(pool) = &store.db else {
                unreachable!("a SQLite store")
            };
            let plan: Vec<String> = q
                .fetch_all(pool)
                .await
                .expect("plan")
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
            let plan = plan.join("; ");
            assert!(plan.contains("calls_newest_first"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "no sort step: {plan}");
        }
    }

    #[test]
    fn a_cursor_not_made_by_us_is_refused() {
        assert_eq!(PageCursor::decode("not base64 !"), None);
        assert_eq!(PageCursor::decode(""), None);
        let no_separator = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("abc");
        assert_eq!(PageCursor::decode(&no_separator), None);
    }

    #[tokio::test]
    async fn an_empty_store_has_one_empty_page() {
        let (store, _dir) = store_with_calls(0).await;
        let page = store.list_page(25, None).await.expect("page");
        assert!(page.calls.is_empty());
        assert_eq!(page.older, None);
    }
}
