//! The event log: the one module through which events are stored and read.
//!
//! Commands are persisted through [`EventLog`], which implements cqrs-es'
//! [`PersistedEventRepository`] on top of the sqlite-es repository; the projector and the audit
//! trail read the log in commit (`rowid`) order through [`EventLog::read_after`]. Nothing else in
//! the workspace reads or writes event payloads, so a PostgreSQL backend is a change here only.
//!
//! Personal data is encrypted here and nowhere else (crypto-shredding): on the way in, each
//! event's personal fields are sealed with the data key of the person it is about
//! ([`sealing`], [`keys`]); on the way out they are opened again, so the domain, the projector
//! and the audit trail see plain events. Once a person is erased their data key is gone: their
//! events come out with only their non-personal fields and [`StoredEvent::erased`] set. The
//! database enforces the two rules that must hold whoever writes (migration
//! `20261202000001_data_keys.sql`): recording `UserErased` destroys that user's data key in the
//! same transaction, and no event about an erased person can be added afterwards.

mod group_commit;
pub mod keys;
mod sealing;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chacha20poly1305::aead::Generate;
use chacha20poly1305::Key;
use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistenceError, ReplayStream,
    SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures_util::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) use group_commit::WriteGate;
use keys::DataKey;
pub use keys::{KeyError, Keyring, MasterKey, Rotation};
use sealing::Position;

use crate::database::CATCH_UP_CACHE_SIZE;

/// Events sealed per transaction when a database from before encryption is upgraded.
const UPGRADE_BATCH: i64 = 500;

/// Wraps a query for event rows (columns `position, aggregate_type, aggregate_id, sequence,
/// event_type, event_version, payload, metadata`) so that SQLite returns them as JSON arrays of
/// up to 256 events each ([`EventRow`]), in no particular order.
///
/// sqlx-sqlite runs SQLite on a worker thread and hands every result row to the async caller
/// on its own, a thread wake-up each: reading the log a row at a time put a quarter of a
/// rebuild's profile in futex wake-ups (perf, 135k events), more than SQLite's own work.
///
/// The arrays are put together as text: `payload` and `metadata` are JSON text already (every
/// writer stores `serde_json` output), so they go in as they are; `json_array(…, json(payload))`
/// parsed and printed both again inside SQLite, 2% of a rebuild's profile (perf, 1M events).
/// A stored value that is not JSON still fails, when Rust parses the array.
macro_rules! event_rows {
    ($query:literal) => {
        concat!(
            "SELECT '[' || group_concat('[' || position || ',' || json_quote(aggregate_type)
                                        || ',' || json_quote(aggregate_id) || ',' || sequence
                                        || ',' || json_quote(event_type)
                                        || ',' || json_quote(event_version)
                                        || ',' || payload || ',' || metadata || ']', ',') || ']'
               FROM (",
            $query,
            ") GROUP BY position / 256"
        )
    };
}

/// One event as [`event_rows!`] returns it.
type EventRow = (i64, String, String, i64, String, String, Value, Value);

impl From<EventRow> for StoredEvent {
    fn from(
        (
            position,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
            payload,
            metadata,
        ): EventRow,
    ) -> Self {
        StoredEvent {
            position,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
            payload,
            metadata,
            erased: false,
        }
    }
}

/// Stores and reads events, sealing and opening their personal data. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    pool: SqlitePool,
    keyring: Arc<Keyring>,
    writes: WriteGate,
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
    /// The person this event is about was erased: `payload` holds only the event's
    /// non-personal fields (and `metadata` no IP or user agent).
    pub erased: bool,
}

impl StoredEvent {
    /// The metadata, or an empty record if it cannot be read (older or foreign events).
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata::deserialize(&self.metadata).unwrap_or_default()
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
    /// The event log in the database behind `pool` (migrated by [`crate::database::open`]),
    /// with the master keys of `keyring`.
    pub fn new(pool: SqlitePool, keyring: Arc<Keyring>) -> Self {
        Self {
            pool,
            keyring,
            writes: WriteGate::default(),
        }
    }

    /// The gate this process's writers to the log's database pass one at a time.
    pub(crate) fn write_gate(&self) -> &WriteGate {
        &self.writes
    }

    /// The database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The master keys.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
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
        let mut conn = self.pool.acquire().await?;
        self.read_after_on(&mut conn, position, limit).await
    }

    /// As [`Self::read_after`], on the connection `conn` (the projector keeps one connection
    /// for a whole catch-up, so that its page cache stays warm).
    pub async fn read_after_on(
        &self,
        conn: &mut SqliteConnection,
        position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        self.read(
            conn,
            sqlx::query(event_rows!(
                "SELECT rowid AS position, aggregate_type, aggregate_id, sequence, event_type,
                        event_version, payload, metadata
                   FROM events
                  WHERE rowid > ?
                  ORDER BY rowid
                  LIMIT ?"
            ))
            .bind(position)
            .bind(limit),
        )
        .await
    }

    /// Every event of one aggregate, oldest first.
    pub async fn read_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        // Sequences start at 1; SQLite reads a negative LIMIT as none.
        self.read_aggregate_page(aggregate_type, aggregate_id, 0, -1)
            .await
    }

    /// Up to `limit` events of one aggregate after `after_sequence`, oldest first.
    pub async fn read_aggregate_page(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        self.read(
            &mut conn,
            sqlx::query(event_rows!(
                "SELECT rowid AS position, aggregate_type, aggregate_id, sequence, event_type,
                        event_version, payload, metadata
                   FROM events
                  WHERE aggregate_type = ? AND aggregate_id = ? AND sequence > ?
                  ORDER BY sequence
                  LIMIT ?"
            ))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after_sequence)
            .bind(limit),
        )
        .await
    }

    /// Runs a query made by [`event_rows!`] and opens its events, reading the data keys they
    /// need in the same transaction (one snapshot: an erasure cannot fall between the events
    /// and their keys). Returns them in commit order.
    async fn read<'q>(
        &self,
        conn: &mut SqliteConnection,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        let mut sealed = Vec::new();
        {
            // Each array is parsed as it arrives, while SQLite (on sqlx's worker thread) makes
            // the next one.
            let mut rows = query.fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let text: &str = row.try_get(0)?;
                let events: Vec<EventRow> =
                    serde_json::from_str(text).map_err(|error| sqlx::Error::ColumnDecode {
                        index: "events".to_owned(),
                        source: Box::new(error),
                    })?;
                sealed.extend(events.into_iter().map(StoredEvent::from));
            }
        }
        sealed.sort_unstable_by_key(|event| event.position);
        let events = self.open_all(&mut tx, sealed).await?;
        tx.commit().await?;
        Ok(events)
    }

    /// Opens stored events: their personal fields decrypted, or dropped where the person was
    /// erased.
    async fn open_all(
        &self,
        conn: &mut SqliteConnection,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let owners: BTreeSet<String> = events
            .iter()
            .filter_map(|event| sealing::key_owners(&event.metadata))
            .flat_map(|(subject, sealed_by)| std::iter::once(subject).chain(sealed_by))
            .collect();
        let owners: Vec<String> = owners.into_iter().collect();
        let keys = self
            .keyring
            .data_keys(conn, &owners)
            .await
            .map_err(key_error)?;
        events
            .into_iter()
            .map(|event| open_event(event, &keys).map_err(key_error))
            .collect()
    }

    /// The position of the newest event (0 for an empty log).
    pub async fn head(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM events")
            .fetch_one(&self.pool)
            .await
    }

    /// Whether the person `subject` was erased (their data key destroyed).
    pub async fn is_erased(&self, subject: Uuid) -> Result<bool, sqlx::Error> {
        self.keyring
            .is_erased(&self.pool, &subject.to_string())
            .await
            .map_err(key_error)
    }

    /// The person the events of aggregate `aggregate_id` are about: a user is about
    /// themselves, a CV about its owner (named by its first event).
    async fn subject_of(&self, event: &SerializedEvent) -> Result<String, sqlx::Error> {
        if let Some(subject) = sealing::subject_named_by(&event.aggregate_type, &event.payload) {
            return Ok(subject);
        }
        let Some(path) = sealing::subject_path(&event.aggregate_type) else {
            return Ok(event.aggregate_id.clone());
        };
        // The subject's field is public, so it is readable in the stored first event.
        let subject: Option<Option<String>> = sqlx::query_scalar(
            "SELECT json_extract(payload, ?) FROM events
              WHERE aggregate_type = ? AND aggregate_id = ? AND sequence = 1",
        )
        .bind(path)
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(subject
            .flatten()
            .unwrap_or_else(|| event.aggregate_id.clone()))
    }

    /// `event` as it is stored: payload sealed for its subject, metadata for its actor.
    /// `Ok(None)` when the subject was erased.
    async fn seal(
        &self,
        event: &SerializedEvent,
        subject: &str,
    ) -> Result<Option<SerializedEvent>, sqlx::Error> {
        let Some(subject_key) = self.write_key(subject).await? else {
            return Ok(None);
        };
        let actor = event
            .metadata
            .get("actor")
            .and_then(Value::as_str)
            .unwrap_or(subject)
            .to_owned();
        let at = Position {
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            sequence: event.sequence as i64,
        };
        let payload = sealing::seal_payload(event.payload.clone(), &at, &subject_key);
        let metadata = if actor == subject {
            sealing::seal_metadata(event.metadata.clone(), &at, subject, subject, &subject_key)
        } else if let Some(actor_key) = self.write_key(&actor).await? {
            sealing::seal_metadata(event.metadata.clone(), &at, subject, &actor, &actor_key)
        } else {
            // An erased actor's IP address and user agent are not recorded at all.
            sealing::strip_metadata(event.metadata.clone(), subject)
        };
        Ok(Some(SerializedEvent {
            payload,
            metadata,
            ..event.clone()
        }))
    }

    async fn write_key(&self, subject: &str) -> Result<Option<Key>, sqlx::Error> {
        self.keyring
            .data_key_for_writing(&self.pool, subject)
            .await
            .map_err(key_error)
    }

    /// Encrypts the personal data of every event stored before encryption existed (a database
    /// created by an earlier version), in batches, each in one transaction; returns how many
    /// were sealed. Run at every start: on an upgraded database it costs one row read.
    pub async fn seal_plaintext_events(&self) -> Result<u64, sqlx::Error> {
        let mut sealed_total = 0;
        loop {
            let (through, done): (i64, i64) =
                sqlx::query_as("SELECT plaintext_through, sealed_through FROM plaintext_events")
                    .fetch_one(&self.pool)
                    .await?;
            if done >= through {
                return Ok(sealed_total);
            }
            let rows = sqlx::query(
                "SELECT rowid, aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata
                   FROM events WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
            )
            .bind(done)
            .bind(through)
            .bind(UPGRADE_BATCH)
            .fetch_all(&self.pool)
            .await?;
            let mut updates = Vec::with_capacity(rows.len());
            let mut last = through;
            for row in &rows {
                let event = stored_event(row)?;
                last = event.position;
                if sealing::key_owners(&event.metadata).is_some() {
                    continue;
                }
                let serialized = SerializedEvent::new(
                    event.aggregate_id.clone(),
                    event.sequence.max(0) as usize,
                    event.aggregate_type.clone(),
                    event.event_type.clone(),
                    event.event_version.clone(),
                    event.payload.clone(),
                    event.metadata.clone(),
                );
                let subject = self.subject_of(&serialized).await?;
                // Erasure came with encryption, so no person of an older database is erased.
                let stored = self.seal(&serialized, &subject).await?.ok_or_else(|| {
                    sqlx::Error::Protocol(format!("event {} is about an erased person", last))
                })?;
                updates.push((event.position, stored.payload, stored.metadata));
            }
            if rows.is_empty() {
                last = through;
            }
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            // The append-only rule is lifted inside this transaction only, for these rows.
            sqlx::query("DROP TRIGGER events_are_append_only_update")
                .execute(&mut *tx)
                .await?;
            for (position, payload, metadata) in &updates {
                sqlx::query("UPDATE events SET payload = ?, metadata = ? WHERE rowid = ?")
                    .bind(payload)
                    .bind(metadata)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(APPEND_ONLY_UPDATE_TRIGGER)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE plaintext_events SET sealed_through = ?")
                .bind(last)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            sealed_total += updates.len() as u64;
        }
    }
}

/// Appends events in large transactions, for bulk loading (`cvm seed`): the same sealing and
/// the same rows as commands produce, without a round trip per command. Data keys are made
/// for new subjects inside the batch's transaction and kept in memory for later batches.
pub struct BulkAppender {
    log: EventLog,
    keys: HashMap<String, Key>,
    /// Subject of every aggregate seen so far (a CV's owner, named by its creation).
    subjects: HashMap<String, String>,
}

impl BulkAppender {
    /// An appender writing to `log`.
    pub fn new(log: EventLog) -> Self {
        Self {
            log,
            keys: HashMap::new(),
            subjects: HashMap::new(),
        }
    }

    /// Seals `events` for one transaction, in the order given, making data keys for subjects
    /// it has not met (stored with the events by [`SealedBatch::write`]). Each aggregate's
    /// events must continue its sequence; an aggregate's subject must be named (by its first
    /// event) in this batch or an earlier one, and batches must be written in the order sealed.
    ///
    /// Sealing is CPU work and writing is the database's, on its connection's worker thread:
    /// the seed seals each next batch while the previous one is written (measured on the
    /// 1,350,011-event bench seed: see `cvm::seed`).
    pub fn seal(&mut self, events: Vec<SerializedEvent>) -> SealedBatch {
        let master = self.log.keyring.current();
        let mut new_keys: Vec<(String, Vec<u8>)> = Vec::new();
        let mut rows = Vec::with_capacity(events.len());
        for mut event in events {
            let subject = match self.subjects.get(&event.aggregate_id) {
                Some(subject) => subject.clone(),
                None => {
                    let subject = sealing::subject_named_by(&event.aggregate_type, &event.payload)
                        .unwrap_or_else(|| event.aggregate_id.clone());
                    self.subjects
                        .insert(event.aggregate_id.clone(), subject.clone());
                    subject
                }
            };
            let actor = event
                .metadata
                .get("actor")
                .and_then(Value::as_str)
                .unwrap_or(&subject)
                .to_owned();
            for owner in [&subject, &actor] {
                if !self.keys.contains_key(owner) {
                    let key = Key::generate();
                    new_keys.push((owner.clone(), master.wrap(owner, &key)));
                    self.keys.insert(owner.clone(), key);
                }
            }
            let at = Position {
                aggregate_type: &event.aggregate_type,
                aggregate_id: &event.aggregate_id,
                sequence: event.sequence as i64,
            };
            let payload = sealing::seal_payload(
                std::mem::take(&mut event.payload),
                &at,
                &self.keys[&subject],
            );
            let metadata = sealing::seal_metadata(
                std::mem::take(&mut event.metadata),
                &at,
                &subject,
                &actor,
                &self.keys[&actor],
            );
            rows.push((event, payload.to_string(), metadata.to_string()));
        }
        SealedBatch {
            master_key_id: master.id().to_owned(),
            new_keys,
            rows,
        }
    }

    /// The log it appends to.
    pub fn log(&self) -> &EventLog {
        &self.log
    }
}

/// Events sealed by [`BulkAppender::seal`], with the data keys made for them: ready to store.
pub struct SealedBatch {
    master_key_id: String,
    new_keys: Vec<(String, Vec<u8>)>,
    /// Each event (its payload and metadata taken out) with them sealed, as JSON text.
    rows: Vec<(SerializedEvent, String, String)>,
}

impl SealedBatch {
    /// Stores the batch in `log` in one transaction: its new data keys, then its events.
    pub async fn write(self, log: &EventLog) -> Result<(), sqlx::Error> {
        let now = crate::time_format::to_sql(OffsetDateTime::now_utc());
        let mut tx = log.pool.begin_with("BEGIN IMMEDIATE").await?;
        // A bulk load inserts into the events' unique index at random places (aggregate ids
        // are random): give its connection the catch-up's large cache, or the index pages are
        // spilled and written again within each batch. Only the seed, an offline command,
        // appends in bulk, so the connection's size matters only for the rest of that run.
        sqlx::query(&format!("PRAGMA cache_size = {CATCH_UP_CACHE_SIZE}"))
            .execute(&mut *tx)
            .await?;
        for chunk in self.new_keys.chunks(BULK_ROWS) {
            sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO data_keys (subject_id, wrapped_key, master_key_id, created_at) ",
            )
            .push_values(chunk, |mut values, (subject, wrapped)| {
                values
                    .push_bind(subject)
                    .push_bind(wrapped)
                    .push_bind(&self.master_key_id)
                    .push_bind(&now);
            })
            .build()
            .execute(&mut *tx)
            .await?;
        }
        for chunk in self.rows.chunks(BULK_ROWS) {
            insert_events(&mut tx, chunk).await?;
        }
        tx.commit().await
    }
}

/// Rows per multi-row INSERT of the bulk appender.
const BULK_ROWS: usize = 500;

/// Stores `rows` (each an event with its sealed payload and metadata as JSON text) with one
/// multi-row INSERT: all of them, or none if the database refuses one.
async fn insert_events<E: std::borrow::Borrow<SerializedEvent>>(
    conn: &mut SqliteConnection,
    rows: &[(E, String, String)],
) -> Result<(), sqlx::Error> {
    sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) ",
    )
    .push_values(rows, |mut values, (event, payload, metadata)| {
        let event = event.borrow();
        values
            .push_bind(&event.aggregate_type)
            .push_bind(&event.aggregate_id)
            .push_bind(event.sequence as i64)
            .push_bind(&event.event_type)
            .push_bind(&event.event_version)
            .push_bind(payload)
            .push_bind(metadata);
    })
    .build()
    .execute(conn)
    .await
    .map(|_| ())
}

/// The trigger of migration `20261128000001_event_log.sql`, recreated after an upgrade.
const APPEND_ONLY_UPDATE_TRIGGER: &str =
    "CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END";

fn key_error(error: KeyError) -> sqlx::Error {
    match error {
        KeyError::Database(error) => error,
        other => sqlx::Error::Decode(Box::new(other)),
    }
}

/// Opens one stored event with the data keys in `keys`.
fn open_event(
    mut event: StoredEvent,
    keys: &HashMap<String, DataKey>,
) -> Result<StoredEvent, KeyError> {
    let Some((subject, sealed_by)) = sealing::key_owners(&event.metadata) else {
        // Stored before encryption existed (and not yet upgraded): plain already.
        return Ok(event);
    };
    // `Ok(None)`: erased. A sealed part whose key row is missing altogether is corruption.
    let key_of = |owner: &str| -> Result<Option<&Key>, KeyError> {
        match keys.get(owner) {
            Some(DataKey::Active(key)) => Ok(Some(key)),
            Some(DataKey::Erased) => Ok(None),
            None => Err(KeyError::Authentication),
        }
    };
    let at = Position {
        aggregate_type: &event.aggregate_type,
        aggregate_id: &event.aggregate_id,
        sequence: event.sequence,
    };
    let payload_key = if sealing::is_sealed(&event.payload) {
        key_of(&subject)?
    } else {
        None
    };
    event.erased = matches!(keys.get(&subject), Some(DataKey::Erased));
    let metadata_key = match &sealed_by {
        Some(owner) => key_of(owner)?,
        None => None,
    };
    let payload = std::mem::take(&mut event.payload);
    event.payload = sealing::open_payload(payload, &at, payload_key)?;
    let metadata = std::mem::take(&mut event.metadata);
    event.metadata = sealing::open_metadata(metadata, &at, metadata_key)?;
    Ok(event)
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
        erased: false,
    })
}

fn persistence_error(error: sqlx::Error) -> PersistenceError {
    PersistenceError::UnknownError(Box::new(error))
}

/// What a command gets when it acts on an erased person's aggregate (it raced the erasure).
#[derive(Debug, thiserror::Error)]
#[error("the person this record is about was erased")]
pub struct SubjectErased;

/// Events an aggregate is replayed from per read ([`EventLog::replay`]).
pub const REPLAY_PAGE: i64 = 256;

impl EventLog {
    /// The state of aggregate `aggregate_id` and the sequence of its last event, replayed from
    /// the log [`REPLAY_PAGE`] events at a time, each page dropped once applied: what cqrs-es'
    /// `load_aggregate` gives, without the whole opened history in memory at once (32 edits on
    /// CVs of ~2,600 events each, loaded together, took the server from 48 to 240 MB).
    /// An erased person's aggregate is the default state at sequence 0, as cqrs-es would load
    /// it from no events (a command on it then fails to append).
    pub async fn replay<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<EventStoreAggregateContext<A>, PersistenceError> {
        let mut aggregate = A::default();
        let mut sequence = 0;
        loop {
            let page = self
                .read_aggregate_page(A::TYPE, aggregate_id, sequence, REPLAY_PAGE)
                .await
                .map_err(persistence_error)?;
            if page.iter().any(|event| event.erased) {
                aggregate = A::default();
                sequence = 0;
                break;
            }
            let full = page.len() as i64 == REPLAY_PAGE;
            for event in page {
                sequence = event.sequence;
                let event: A::Event = serde_json::from_value(event.payload)
                    .map_err(|error| PersistenceError::DeserializationError(Box::new(error)))?;
                aggregate.apply(event);
            }
            if !full {
                break;
            }
        }
        Ok(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate,
            current_sequence: sequence.max(0) as usize,
            current_snapshot: None,
        })
    }
}

impl EventLog {
    /// The events of `aggregate_id` as cqrs-es wants them; none for an erased person, whose
    /// aggregates are gone for every purpose but the audit trail.
    async fn serialized_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .read_aggregate(aggregate_type, aggregate_id)
            .await
            .map_err(persistence_error)?;
        if events.iter().any(|event| event.erased) {
            return Ok(Vec::new());
        }
        Ok(events
            .into_iter()
            .filter(|event| event.sequence > after_sequence)
            .map(|event| {
                SerializedEvent::new(
                    event.aggregate_id,
                    event.sequence.max(0) as usize,
                    event.aggregate_type,
                    event.event_type,
                    event.event_version,
                    event.payload,
                    event.metadata,
                )
            })
            .collect())
    }
}

impl PersistedEventRepository for EventLog {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.serialized_events(A::TYPE, aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.serialized_events(A::TYPE, aggregate_id, last_sequence as i64)
            .await
    }

    /// Snapshots are not used: aggregates are rebuilt from their events.
    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        // One command's events are all about one aggregate, hence one subject.
        let subject = self.subject_of(first).await.map_err(persistence_error)?;
        let mut sealed = Vec::with_capacity(events.len());
        for event in events {
            match self
                .seal(event, &subject)
                .await
                .map_err(persistence_error)?
            {
                Some(event) => sealed.push(event),
                None => return Err(PersistenceError::UnknownError(Box::new(SubjectErased))),
            }
        }
        if snapshot_update.is_some() {
            // Snapshots are not used (see `get_snapshot`); sqlite-es would store one.
            let _one_writer_at_a_time = self.writes.enter().await;
            return self
                .repository()
                .persist::<A>(&sealed, snapshot_update)
                .await;
        }
        // Committed with the other appends waiting at the gate (group commit): the
        // transaction's first statement is an INSERT, so it never upgrades from a read lock
        // (which would fail at once with BUSY).
        self.writes.append(&self.pool, sealed).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(aggregate_id).await?;
        replay(events).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let mut events = Vec::new();
        let mut position = 0;
        loop {
            let batch = self
                .read_after(position, 1_000)
                .await
                .map_err(persistence_error)?;
            let Some(last) = batch.last() else { break };
            position = last.position;
            events.extend(
                batch
                    .into_iter()
                    .filter(|event| event.aggregate_type == A::TYPE && !event.erased)
                    .map(|event| {
                        SerializedEvent::new(
                            event.aggregate_id,
                            event.sequence.max(0) as usize,
                            event.aggregate_type,
                            event.event_type,
                            event.event_version,
                            event.payload,
                            event.metadata,
                        )
                    }),
            );
        }
        replay(events).await
    }
}

/// A replay stream over events already read (cqrs-es replays; the application does not use
/// them, but the trait asks for them and they must not hand out sealed payloads).
async fn replay(events: Vec<SerializedEvent>) -> Result<ReplayStream, PersistenceError> {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        feed.push(Ok(event)).await?;
    }
    Ok(stream)
}
