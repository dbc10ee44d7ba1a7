//! The event log: the one module through which events are stored and read.
//!
//! Commands are persisted through [`EventLog`], which implements cqrs-es'
//! [`PersistedEventRepository`] on top of the sqlite-es repository; the projector and the audit
//! trail read the log in commit (`rowid`) order through [`EventLog::read_after`]. Nothing else in
//! the workspace names the `events` table, so encryption of personal data, or a PostgreSQL
//! backend, is a change to this file only.

use std::collections::HashMap;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

/// Stores and reads events. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct EventLog {
    pool: SqlitePool,
}

/// One event as it sits in the log, with its commit position.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// `rowid`: the commit order of the whole log.
    pub position: i64,
    /// `User`, `Cv`, …
    pub aggregate_type: String,
    /// The aggregate's id (a UUID).
    pub aggregate_id: String,
    /// 1 for the aggregate's first event, then one more per event.
    pub sequence: i64,
    /// Stable name, such as `UserRegistered`.
    pub event_type: String,
    /// Version of the payload's shape.
    pub event_version: String,
    /// The event itself, as serde wrote it.
    pub payload: Value,
    /// Who, from where, when: see [`EventMetadata`].
    pub metadata: Value,
}

impl StoredEvent {
    /// The metadata, or an empty record if it cannot be read (older or foreign events).
    pub fn metadata(&self) -> EventMetadata {
        serde_json::from_value(self.metadata.clone()).unwrap_or_default()
    }
}

/// What every command carries besides itself: who asked, from where, and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The logged-in user who caused the event; `None` for anonymous requests and the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Uuid>,
    /// Client IP address as the server saw it (after trusted proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's `User-Agent`, truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The `X-Request-Id` of the request (or `cli-…` for the command line).
    #[serde(default)]
    pub request_id: String,
    /// When the command was accepted, UTC.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
}

impl EventMetadata {
    /// Metadata stamped now (UTC) for a request.
    pub fn now(request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            at: Some(OffsetDateTime::now_utc()),
            ..Self::default()
        }
    }

    /// The map form cqrs-es stores with each event.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        if let Some(actor) = self.actor {
            map.insert("actor".to_owned(), actor.to_string());
        }
        if let Some(ip) = &self.ip {
            map.insert("ip".to_owned(), ip.clone());
        }
        if let Some(user_agent) = &self.user_agent {
            map.insert("user_agent".to_owned(), user_agent.clone());
        }
        map.insert("request_id".to_owned(), self.request_id.clone());
        if let Some(at) = self.at.and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }) {
            map.insert("at".to_owned(), at);
        }
        map
    }
}

impl EventLog {
    /// The event log in the database behind `pool` (migrated by [`crate::database::open`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The sqlite-es repository that does the actual storing. It is built per call because it
    /// is only a pool handle plus prepared SQL text, and keeping it out of the struct keeps this
    /// type `Clone`.
    fn repository(&self) -> SqliteEventRepository {
        SqliteEventRepository::new(self.pool.clone())
    }

    /// Up to `limit` events committed after `position`, in commit order.
    pub async fn read_after(
        &self,
        position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT rowid, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata
               FROM events
              WHERE rowid > ?
              ORDER BY rowid
              LIMIT ?",
        )
        .bind(position)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| stored_event(&row)).collect()
    }

    /// Every event of one aggregate, oldest first.
    pub async fn read_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT rowid, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata
               FROM events
              WHERE aggregate_type = ? AND aggregate_id = ?
              ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| stored_event(&row)).collect()
    }

    /// The position of the newest event (0 for an empty log).
    pub async fn head(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM events")
            .fetch_one(&self.pool)
            .await
    }
}

fn stored_event(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, sqlx::Error> {
    let json = |column: &str| -> Result<Value, sqlx::Error> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|error| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(error),
        })
    };
    Ok(StoredEvent {
        position: row.try_get(0)?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: json("payload")?,
        metadata: json("metadata")?,
    })
}

impl PersistedEventRepository for EventLog {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.repository().get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.repository()
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.repository().get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        // sqlite-es opens a deferred transaction whose first statement is the INSERT, so the
        // transaction never upgrades from a read lock (which would fail at once with BUSY).
        self.repository()
            .persist::<A>(events, snapshot_update)
            .await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.repository().stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.repository().stream_all_events::<A>().await
    }
}
