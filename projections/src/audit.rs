//! The audit trail read model: one row per event of the log, for `/admin/audit`.
//!
//! Each row names when (metadata time), who (actor), what (event type and the domain's own
//! sentence for it), on what (aggregate) and from where (IP, user agent, request id). The row is
//! a pure function of the event and of the events before it, so a rebuild reproduces it exactly.
//! Payload and metadata are not copied: the detail view and the exports read them from the log
//! by position through [`EventLog`], and every value they show passes through [`redact`].
//!
//! Pages are walked newest first with a keyset cursor (`position < before`), never `OFFSET`, so
//! the millionth row costs what the first does. Every equality filter has an index on
//! `(column, position)`; date ranges are discussed at [`page`].

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::event_log::{EventLog, EventMetadata, StoredEvent};
use crate::time_format::{from_sql, to_sql};

/// The tables this module owns (emptied by a rebuild, compared by `--verify`).
pub const TABLES: &[&str] = &["audit_log", "audit_event_types"];

/// What replaces a secret in anything shown or exported.
pub const REDACTED: &str = "[redacted]";

/// Keys whose values are secrets wherever they appear in a payload or metadata.
const SECRET_KEYS: &[&str] = &["password_hash", "token_hash", "password", "token"];

/// A date range matching at most this many rows is read through the `at` index and sorted;
/// a wider one is read in position order, skipping rows outside it (see [`page`]).
const NARROW_RANGE_ROWS: i64 = 10_000;

/// One event as the audit trail shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// The event's position in the log (`events.rowid`): its id in URLs and the page cursor.
    pub position: i64,
    /// When the command was accepted (UTC), if the event's metadata says.
    pub at: Option<OffsetDateTime>,
    /// The logged-in user who caused it; `None` for anonymous requests and the command line.
    pub actor_id: Option<Uuid>,
    /// `User`, `Cv`, …
    pub aggregate_type: String,
    /// The id of the user or CV the event happened to.
    pub aggregate_id: String,
    /// Stable event name, such as `UserLoginFailed`.
    pub event_type: String,
    /// The event in words, e.g. "role changed from user to superuser".
    pub summary: String,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client user agent (already truncated when recorded).
    pub user_agent: Option<String>,
    /// The request that caused it (`X-Request-Id`, or `cli-…`).
    pub request_id: Option<String>,
}

/// Which events to list. Every field narrows; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events caused by this user.
    pub actor: Option<Uuid>,
    /// Only events of this aggregate (a user or CV id).
    pub aggregate_id: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events on or after this day (UTC).
    pub from: Option<Date>,
    /// Only events on or before this day (UTC), inclusive.
    pub to: Option<Date>,
}

impl AuditFilter {
    /// The `at` text bounds `[lower, upper)` of the date filters, if any. `at` is fixed-width
    /// text, so a bare day `YYYY-MM-DD` sorts before every time of that day. With only an upper
    /// bound the lower one is still set, so events of unknown time (`''`) never match a date.
    fn time_bounds(&self) -> Option<(String, Option<String>)> {
        if self.from.is_none() && self.to.is_none() {
            return None;
        }
        let lower = self.from.map(day_text).unwrap_or_else(|| "0000".to_owned());
        // `to` is inclusive: stop before the next day. The last representable day has none.
        let upper = self.to.and_then(Date::next_day).map(day_text);
        Some((lower, upper))
    }
}

fn day_text(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// Rows of the trail made by one batch of events, written together by [`flush`]: the trail
/// grows by one row per event, and a statement per row would cost more than the rows do.
#[derive(Debug, Default)]
pub struct Pending {
    rows: Vec<PendingRow>,
    event_types: std::collections::BTreeSet<String>,
}

#[derive(Debug)]
struct PendingRow {
    position: i64,
    at: String,
    actor_id: Option<String>,
    aggregate_type: String,
    aggregate_id: String,
    event_type: String,
    summary: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

/// Rows per INSERT: ten values each, well under SQLite's limit on parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// Records one event of any aggregate, with its human description (written at [`flush`]).
pub fn record(
    pending: &mut Pending,
    stored: &StoredEvent,
    metadata: &EventMetadata,
    summary: &str,
) {
    let request_id = Some(metadata.request_id.clone()).filter(|id| !id.is_empty());
    // Where an erased person's event came from is gone with them, whoever made the request.
    let (ip, user_agent) = if stored.erased {
        (None, None)
    } else {
        (metadata.ip.clone(), metadata.user_agent.clone())
    };
    pending.rows.push(PendingRow {
        position: stored.position,
        at: metadata.at.map(to_sql).unwrap_or_default(),
        actor_id: metadata.actor.map(|actor| actor.to_string()),
        aggregate_type: stored.aggregate_type.clone(),
        aggregate_id: stored.aggregate_id.clone(),
        event_type: stored.event_type.clone(),
        summary: summary.to_owned(),
        ip,
        user_agent,
        request_id,
    });
    if !pending.event_types.contains(&stored.event_type) {
        pending.event_types.insert(stored.event_type.clone());
    }
}

/// Writes the recorded rows. A row is a pure function of its event, so writing it again (a
/// replay over a table that was not emptied) gives the same row, not an error.
pub async fn flush(conn: &mut SqliteConnection, pending: &mut Pending) -> Result<(), sqlx::Error> {
    let rows = std::mem::take(&mut pending.rows);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO audit_log (position, at, actor_id, aggregate_type, \
             aggregate_id, event_type, summary, ip, user_agent, request_id) ",
        )
        .push_values(chunk, |mut values, row| {
            values
                .push_bind(row.position)
                .push_bind(&row.at)
                .push_bind(&row.actor_id)
                .push_bind(&row.aggregate_type)
                .push_bind(&row.aggregate_id)
                .push_bind(&row.event_type)
                .push_bind(&row.summary)
                .push_bind(&row.ip)
                .push_bind(&row.user_agent)
                .push_bind(&row.request_id);
        })
        .build()
        .execute(&mut *conn)
        .await?;
    }
    let event_types = std::mem::take(&mut pending.event_types);
    if !event_types.is_empty() {
        QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO audit_event_types (event_type) ")
            .push_values(&event_types, |mut values, event_type| {
                values.push_bind(event_type);
            })
            .build()
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Every row of the trail about the aggregates `ids` (a user and their CVs), oldest first: a
/// person's own history for the export of their data.
pub async fn trail_about(pool: &SqlitePool, ids: &[String]) -> Result<Vec<AuditRow>, sqlx::Error> {
    let list = crate::database::json_param(&ids)?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log
          WHERE aggregate_id IN (SELECT value FROM json_each(?))
          ORDER BY position"
    ))
    .bind(list)
    .fetch_all(pool)
    .await?;
    rows.iter().map(audit_row).collect()
}

/// The summary of every event of an erased person: what happened to them is gone, that
/// something happened (its type and time) stays.
pub const ERASED_SUMMARY: &str = "erased user";

/// Rewrites the trail of an erased user as a rebuild would write it: their events (and their
/// CVs') keep type, time and ids but say only [`ERASED_SUMMARY`], and no row keeps an IP address
/// or user agent of theirs — neither on events about them nor on what they did to others. Runs
/// before their CVs leave the `cvs` read model.
pub async fn erase(conn: &mut SqliteConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_log SET summary = ?, ip = NULL, user_agent = NULL
          WHERE aggregate_id = ?
             OR aggregate_id IN (SELECT id FROM cvs WHERE owner_id = ?)",
    )
    .bind(ERASED_SUMMARY)
    .bind(user_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_log SET ip = NULL, user_agent = NULL WHERE actor_id = ?")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "position, at, actor_id, aggregate_type, aggregate_id, event_type, summary, \
                       ip, user_agent, request_id";

fn audit_row(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRow, sqlx::Error> {
    let at: String = row.try_get("at")?;
    let actor_id: Option<String> = row.try_get("actor_id")?;
    let actor_id = actor_id
        .map(|id| {
            Uuid::parse_str(&id).map_err(|_| sqlx::Error::ColumnDecode {
                index: "actor_id".to_owned(),
                source: "not a UUID".into(),
            })
        })
        .transpose()?;
    Ok(AuditRow {
        position: row.try_get("position")?,
        at: from_sql(&at),
        actor_id,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        event_type: row.try_get("event_type")?,
        summary: row.try_get("summary")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        request_id: row.try_get("request_id")?,
    })
}

/// Up to `limit` events matching `filter`, newest first, all older than position `before`
/// (the last position of the previous page) when given.
///
/// Equality filters walk their `(column, position)` index backwards from the cursor. A date
/// range needs a choice, because no single index serves both "time between" and "newest
/// first": a narrow range (at most [`NARROW_RANGE_ROWS`] events, counted on the covering `at`
/// index with a capped count) is read through that index and sorted, which is cheap at that
/// size; a wide range is read in position order, where matching rows are dense, with the index
/// on `at` switched off (`+at`) so that SQLite does not sort a million rows to return fifty.
/// `INDEXED BY` and `+` are SQLite dialect; a PostgreSQL backend would plan this itself.
pub async fn page(
    pool: &SqlitePool,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let bounds = filter.time_bounds();
    let narrow = match &bounds {
        Some((lower, upper)) => {
            let mut count = QueryBuilder::<Sqlite>::new(
                "SELECT COUNT(*) FROM (SELECT 1 FROM audit_log INDEXED BY audit_log_by_at WHERE ",
            );
            push_time_range(&mut count, "at", lower, upper.as_deref());
            if let Some(before) = before {
                count.push(" AND position < ").push_bind(before);
            }
            count
                .push(" LIMIT ")
                .push_bind(NARROW_RANGE_ROWS + 1)
                .push(")");
            let rows: i64 = count.build_query_scalar().fetch_one(pool).await?;
            rows <= NARROW_RANGE_ROWS
        }
        None => false,
    };

    let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM audit_log"));
    if narrow {
        query.push(" INDEXED BY audit_log_by_at");
    }
    query.push(" WHERE 1 = 1");
    if let Some(actor) = filter.actor {
        query.push(" AND actor_id = ").push_bind(actor.to_string());
    }
    if let Some(aggregate_id) = &filter.aggregate_id {
        query
            .push(" AND aggregate_id = ")
            .push_bind(aggregate_id.clone());
    }
    if let Some(event_type) = &filter.event_type {
        query
            .push(" AND event_type = ")
            .push_bind(event_type.clone());
    }
    if let Some((lower, upper)) = &bounds {
        query.push(" AND ");
        push_time_range(
            &mut query,
            if narrow { "at" } else { "+at" },
            lower,
            upper.as_deref(),
        );
    }
    if let Some(before) = before {
        query.push(" AND position < ").push_bind(before);
    }
    query
        .push(" ORDER BY position DESC LIMIT ")
        .push_bind(i64::from(limit));
    let rows = query.build().fetch_all(pool).await?;
    rows.iter().map(audit_row).collect()
}

fn push_time_range(
    query: &mut QueryBuilder<'_, Sqlite>,
    column: &str,
    lower: &str,
    upper: Option<&str>,
) {
    query
        .push(format!("{column} >= "))
        .push_bind(lower.to_owned());
    if let Some(upper) = upper {
        query
            .push(format!(" AND {column} < "))
            .push_bind(upper.to_owned());
    }
}

/// Every event type recorded so far, alphabetically (for the filter's choices).
pub async fn event_types(pool: &SqlitePool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT event_type FROM audit_event_types ORDER BY event_type")
        .fetch_all(pool)
        .await
}

/// The event at `position` with its payload and metadata, both already passed through
/// [`redact`] (so no caller can show a secret by forgetting to). `None` if there is no such
/// event, or the projector has not reached it yet.
pub async fn entry(
    log: &EventLog,
    position: i64,
) -> Result<Option<(AuditRow, Value, Value)>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE position = ?"
    ))
    .bind(position)
    .fetch_optional(log.pool())
    .await?;
    let Some(row) = row.as_ref().map(audit_row).transpose()? else {
        return Ok(None);
    };
    let Some(mut event) = event_at(log, position).await? else {
        return Ok(None);
    };
    redact(&mut event.payload);
    redact(&mut event.metadata);
    Ok(Some((row, event.payload, event.metadata)))
}

/// The event at `position`, read through the event log module (the one place that knows how
/// events are stored).
async fn event_at(log: &EventLog, position: i64) -> Result<Option<StoredEvent>, sqlx::Error> {
    let Some(after) = position.checked_sub(1) else {
        return Ok(None);
    };
    let events = log.read_after(after, 1).await?;
    Ok(events.into_iter().find(|event| event.position == position))
}

/// The redacted payloads of the events at `positions` (for exports), by position.
///
/// The log is read in position ranges: one read covers a run of positions when they lie close
/// together (as they do unfiltered), and sparse positions are read one by one, so a sparse
/// filter never drags thousands of unrelated payloads through memory.
pub async fn payloads(
    log: &EventLog,
    positions: &[i64],
) -> Result<HashMap<i64, Value>, sqlx::Error> {
    let mut wanted: Vec<i64> = positions.iter().copied().filter(|p| *p > 0).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = HashMap::with_capacity(wanted.len());
    let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
        return Ok(found);
    };
    let span = last - first + 1;
    let dense = span <= 4 * wanted.len() as i64;
    let events = if dense {
        log.read_after(first - 1, span).await?
    } else {
        let mut events = Vec::with_capacity(wanted.len());
        for &position in &wanted {
            events.extend(event_at(log, position).await?);
        }
        events
    };
    for mut event in events {
        if wanted.binary_search(&event.position).is_ok() {
            redact(&mut event.payload);
            found.insert(event.position, event.payload);
        }
    }
    Ok(found)
}

/// Replaces the value of every key named `password_hash`, `token_hash`, `password` or `token`,
/// at any depth, with `"[redacted]"`. Hashes are secrets too: a leaked argon2 hash can be
/// attacked offline, and a reset token's hash is what the reset link is checked against.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *inner = Value::String(REDACTED.to_owned());
                } else {
                    redact(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut value = json!({
            "Registered": {
                "username": "alice",
                "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$abc$def",
                "nested": [{"token": "t0k3n", "keep": 1}, {"password": "hunter2"}],
            },
            "PasswordReset": {"token_hash": "abc123", "password_hash": {"odd": "shape"}},
        });
        redact(&mut value);
        assert_eq!(
            value,
            json!({
                "Registered": {
                    "username": "alice",
                    "password_hash": REDACTED,
                    "nested": [{"token": REDACTED, "keep": 1}, {"password": REDACTED}],
                },
                "PasswordReset": {"token_hash": REDACTED, "password_hash": REDACTED},
            })
        );
    }

    #[test]
    fn values_that_merely_mention_a_secret_key_are_kept() {
        let mut value = json!({"summary": "password", "tokens": ["token"], "hash": "h"});
        let before = value.clone();
        redact(&mut value);
        assert_eq!(value, before);
    }

    #[test]
    fn the_to_day_is_inclusive() {
        let filter = AuditFilter {
            from: Some(date!(2026 - 11 - 01)),
            to: Some(date!(2026 - 11 - 30)),
            ..AuditFilter::default()
        };
        let (lower, upper) = filter.time_bounds().unwrap();
        assert_eq!(lower, "2026-11-01");
        assert_eq!(upper.as_deref(), Some("2026-12-01"));
        let last_moment = "2026-11-30T23:59:59.999999Z";
        assert!(lower.as_str() <= last_moment && last_moment < upper.unwrap().as_str());
    }

    #[test]
    fn an_upper_bound_alone_still_excludes_events_of_unknown_time() {
        let filter = AuditFilter {
            to: Some(date!(2026 - 11 - 30)),
            ..AuditFilter::default()
        };
        let (lower, _) = filter.time_bounds().unwrap();
        assert!("" < lower.as_str());
        assert!(lower.as_str() <= "0001-01-01T00:00:00.000000Z");
        assert_eq!(AuditFilter::default().time_bounds(), None);
    }

    mod queries {
        use super::*;
        use crate::database::open_memory;
        use crate::EventMetadata;
        use time::macros::datetime;
        use time::Duration;

        const ALICE: Uuid = Uuid::from_u128(0xA11CE);
        const BOB: Uuid = Uuid::from_u128(0xB0B);

        /// Event `position` happens `position` minutes after the start, except that every
        /// seventh one was stamped a little before its predecessor (commits race), and every
        /// hundredth has no time at all.
        fn event(position: i64) -> StoredEvent {
            let start = datetime!(2026-01-01 00:00 UTC);
            let minutes = if position % 7 == 0 {
                position - 3
            } else {
                position
            };
            let metadata = EventMetadata {
                actor: Some(if position % 3 == 0 { ALICE } else { BOB }),
                ip: Some("192.0.2.1".into()),
                user_agent: None,
                request_id: format!("req-{position}"),
                at: (position % 100 != 0).then(|| start + Duration::minutes(minutes)),
            };
            StoredEvent {
                position,
                aggregate_type: "User".into(),
                aggregate_id: format!("aggregate-{}", position % 10),
                sequence: position,
                event_type: if position % 2 == 0 { "Even" } else { "Odd" }.into(),
                event_version: "1.0".into(),
                payload: Value::Null,
                metadata: serde_json::to_value(metadata).unwrap(),
                erased: false,
            }
        }

        async fn trail(count: i64) -> (SqlitePool, Vec<StoredEvent>) {
            let pool = open_memory().await.unwrap();
            let events: Vec<StoredEvent> = (1..=count).map(event).collect();
            let mut tx = pool.begin().await.unwrap();
            let mut pending = Pending::default();
            for stored in &events {
                let metadata = stored.metadata();
                record(
                    &mut pending,
                    stored,
                    &metadata,
                    &format!("event {}", stored.position),
                );
            }
            flush(&mut tx, &mut pending).await.unwrap();
            tx.commit().await.unwrap();
            (pool, events)
        }

        /// Every position `filter` matches, walked page by page.
        async fn walk(pool: &SqlitePool, filter: &AuditFilter, limit: u32) -> Vec<i64> {
            let mut positions = Vec::new();
            let mut before = None;
            loop {
                let rows = page(pool, filter, before, limit).await.unwrap();
                assert!(rows.len() <= limit as usize);
                let Some(last) = rows.last() else { break };
                before = Some(last.position);
                positions.extend(rows.iter().map(|row| row.position));
            }
            positions
        }

        /// The same filter applied by hand, newest first.
        fn expected(events: &[StoredEvent], filter: &AuditFilter) -> Vec<i64> {
            events
                .iter()
                .rev()
                .filter(|event| {
                    let metadata = event.metadata();
                    let day = metadata.at.map(|at| at.date());
                    filter
                        .actor
                        .is_none_or(|actor| metadata.actor == Some(actor))
                        && filter
                            .aggregate_id
                            .as_ref()
                            .is_none_or(|id| *id == event.aggregate_id)
                        && filter
                            .event_type
                            .as_ref()
                            .is_none_or(|t| *t == event.event_type)
                        && filter
                            .from
                            .is_none_or(|from| day.is_some_and(|day| day >= from))
                        && filter.to.is_none_or(|to| day.is_some_and(|day| day <= to))
                })
                .map(|event| event.position)
                .collect()
        }

        #[tokio::test]
        async fn rows_keep_what_the_metadata_says() {
            let (pool, _) = trail(3).await;
            let rows = page(&pool, &AuditFilter::default(), None, 10)
                .await
                .unwrap();
            assert_eq!(
                rows.iter().map(|row| row.position).collect::<Vec<_>>(),
                [3, 2, 1]
            );
            assert_eq!(rows[0].actor_id, Some(ALICE));
            assert_eq!(rows[0].at, Some(datetime!(2026-01-01 00:03 UTC)));
            assert_eq!(rows[0].request_id.as_deref(), Some("req-3"));
            assert_eq!(rows[0].summary, "event 3");
            assert_eq!(event_types(&pool).await.unwrap(), ["Even", "Odd"]);
        }

        #[tokio::test]
        async fn every_filter_and_date_range_pages_like_a_plain_scan() {
            // More events than NARROW_RANGE_ROWS, so both ways of reading a date range run.
            let (pool, events) = trail(NARROW_RANGE_ROWS + 2_500).await;
            let day = |n: i64| (datetime!(2026-01-01 00:00 UTC) + Duration::days(n)).date();
            let filters = [
                AuditFilter::default(),
                AuditFilter {
                    actor: Some(ALICE),
                    ..AuditFilter::default()
                },
                AuditFilter {
                    aggregate_id: Some("aggregate-4".into()),
                    event_type: Some("Even".into()),
                    ..AuditFilter::default()
                },
                // Narrow: one day.
                AuditFilter {
                    from: Some(day(3)),
                    to: Some(day(3)),
                    ..AuditFilter::default()
                },
                // Wide: everything from day 1 on, and everything up to day 7.
                AuditFilter {
                    from: Some(day(1)),
                    ..AuditFilter::default()
                },
                AuditFilter {
                    to: Some(day(7)),
                    actor: Some(BOB),
                    ..AuditFilter::default()
                },
                AuditFilter {
                    from: Some(day(30)),
                    ..AuditFilter::default()
                },
            ];
            for filter in &filters {
                let want = expected(&events, filter);
                assert_eq!(walk(&pool, filter, 997).await, want, "{filter:?}");
            }
        }
    }
}
