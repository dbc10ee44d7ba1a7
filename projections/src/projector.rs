//! The projector: turns the event log into read models.
//!
//! It reads events in commit (`rowid`) order after its checkpoint and, for each batch, opens a
//! transaction whose first statement moves the checkpoint forward (a write, so the transaction
//! never has to upgrade from a read lock), applies every event to every read model, and commits.
//! Hence after a crash nothing is lost or applied twice, and a rebuild is the same code path run
//! from position 0 on emptied tables.
//!
//! The checkpoint move is a compare-and-set (`WHERE position = ?`): if another process (the CLI
//! beside the server) applied the batch first, this one rolls back and reads again.

use cqrs_es::Aggregate;
use domain::UserEvent;
use serde::Deserialize;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

use crate::database::{CATCH_UP_CACHE_SIZE, MIGRATOR, POOL_CACHE_SIZE};
use crate::event_log::{EventLog, StoredEvent};
use crate::{analytics, audit, cvs, deferred_indexes, password_resets, profiles, users};

/// The name of the one checkpoint that all read models share (they are applied together).
pub(crate) const CHECKPOINT: &str = "read_models";

/// Events applied per transaction: large enough to make a rebuild fast (each transaction
/// rewrites the index pages it touches, so fewer, larger ones write far less), small enough that
/// a catch-up holds the write lock for a fraction of a second.
const BATCH: i64 = 10_000;

/// Events applied per transaction by a rebuild. The read models are being made from nothing
/// (and the server shows them empty meanwhile), so holding the write lock longer costs no one
/// a wait that matters, and each commit rewrites the pages it touched once for five times the
/// events. Measured on the 1,350,011-event bench database, with a 2 GiB cache: 10,000 per
/// transaction rebuilt in 118 s, 50,000 in 78 s.
const REBUILD_BATCH: i64 = 50_000;

/// How long a long catch-up waits for a second connection to read ahead on.
const READER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The read models by name, with their tables (`rebuild-projections --only NAME`).
pub const READ_MODELS: &[(&str, &[&str])] = &[
    ("users", users::TABLES),
    ("profiles", profiles::TABLES),
    ("password_resets", password_resets::TABLES),
    ("cvs", cvs::TABLES),
    ("analytics", analytics::TABLES),
    ("audit", audit::TABLES),
];

/// Every table a rebuild empties and `--verify` compares.
pub fn read_model_tables() -> Vec<&'static str> {
    [
        users::TABLES,
        profiles::TABLES,
        password_resets::TABLES,
        cvs::TABLES,
        analytics::TABLES,
        audit::TABLES,
    ]
    .concat()
}

/// Why the read models could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// `--only` named no read model.
    #[error("no read model is called {0:?}; known: {1}")]
    UnknownReadModel(String, String),
    /// The live read models moved on while one was being rebuilt (a server is catching up).
    #[error("the read models moved on during the rebuild; stop the server or run it again")]
    MovedOn,
    /// An event in the log could not be read as the event type it claims to be.
    #[error("event at position {position} ({event_type}) cannot be read: {source}")]
    Corrupt {
        /// Its `rowid`.
        position: i64,
        /// Its stored type name.
        event_type: String,
        /// The deserialisation error.
        source: serde_json::Error,
    },
}

/// Applies the event log to the read models. Share one per process (it serialises its own
/// catch-ups; other processes are handled by the checkpoint compare-and-set).
pub struct Projector {
    pool: SqlitePool,
    log: EventLog,
    running: Mutex<()>,
    /// Catch-up tickets handed out ([`Projector::ticket`]).
    issued: AtomicU64,
    /// Every ticket up to this one is covered by a finished catch-up.
    served: AtomicU64,
}

/// A claim, taken after appending events, that the read models will include them; redeemed
/// with [`Projector::catch_up_for`]. Many writers waiting together are served by one catch-up:
/// under parallel edits each command no longer pays for a catch-up of its own (measured with
/// bench/: durable CV edits went from one catch-up per edit to a few per batch of edits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// A read-model table whose rows differ from a fresh rebuild of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDifference {
    /// The table's name.
    pub table: String,
    /// Rows in the live table that a rebuild does not produce.
    pub only_live: i64,
    /// Rows a rebuild produces that the live table lacks.
    pub only_rebuilt: i64,
}

/// How far the read models have read: the position of the last event they include. Every
/// change to a read model moves it, so it can key caches of what is computed from them.
pub async fn read_position(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = ?")
        .bind(CHECKPOINT)
        .fetch_one(pool)
        .await
}

impl Projector {
    /// A projector reading `log` into the read models of the same database.
    pub fn new(log: EventLog) -> Self {
        Self {
            pool: log.pool().clone(),
            log,
            running: Mutex::new(()),
            issued: AtomicU64::new(0),
            served: AtomicU64::new(0),
        }
    }

    /// A ticket for the events this task has appended so far (take it after the append).
    pub fn ticket(&self) -> Ticket {
        Ticket(self.issued.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Returns once the read models include every event appended before `ticket` was taken:
    /// at once if a catch-up that began after it has finished, else after one more catch-up.
    /// Returns how many events this call applied itself.
    pub async fn catch_up_for(&self, ticket: Ticket) -> Result<u64, ProjectionError> {
        if self.served.load(Ordering::Acquire) >= ticket.0 {
            return Ok(0);
        }
        let guard = self.running.lock().await;
        if self.served.load(Ordering::Acquire) >= ticket.0 {
            return Ok(0);
        }
        // Every ticket issued by now was taken after its events were committed, and the
        // catch-up below reads the log after this point: it covers them all.
        let covers = self.issued.load(Ordering::Acquire);
        let applied = self.catch_up_locked(guard, &mut |_| {}, BATCH).await?;
        self.served.fetch_max(covers, Ordering::AcqRel);
        Ok(applied)
    }

    /// The event log it reads.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// How far the read models have read.
    pub async fn checkpoint(&self) -> Result<i64, sqlx::Error> {
        read_position(&self.pool).await
    }

    /// Applies every event committed after the checkpoint; returns how many were applied.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        self.catch_up_with_progress(|_| {}).await
    }

    /// As [`Self::catch_up`], calling `progress` with the running total after each batch.
    pub async fn catch_up_with_progress(
        &self,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<u64, ProjectionError> {
        let guard = self.running.lock().await;
        self.catch_up_locked(guard, &mut progress, BATCH).await
    }

    /// The catch-up, by the holder of `running`.
    async fn catch_up_locked(
        &self,
        _only_one_catch_up_per_process: tokio::sync::MutexGuard<'_, ()>,
        progress: &mut (impl FnMut(u64) + Send),
        batch: i64,
    ) -> Result<u64, ProjectionError> {
        // One connection for the whole catch-up: reads and writes share its page cache, which
        // stays warm from batch to batch (a pooled connection that another one wrote behind
        // starts cold).
        let mut conn = self.pool.acquire().await?;
        // Read models need not be durable, only consistent: what a power cut takes away goes
        // together with the checkpoint that covered it, and the next catch-up applies it
        // again. So the projector's commits skip the fsync (commands, on other connections,
        // keep `synchronous=FULL`, and their fsync covers these frames too).
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let result = self.apply_pending(&mut conn, progress, batch).await;
        // The connection goes back to the pool, where commands use it: durable again, and
        // with a pooled connection's cache if a long catch-up enlarged it (shrinking frees the
        // pages; doing it after every catch-up emptied the cache each time, measured by perf).
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        if matches!(result, Ok(applied) if applied >= batch as u64) || result.is_err() {
            sqlx::query(&format!("PRAGMA cache_size = {POOL_CACHE_SIZE}"))
                .execute(&mut *conn)
                .await?;
        }
        result
    }

    /// The catch-up loop of [`Self::catch_up_with_progress`], on `conn`.
    ///
    /// A long catch-up reads each next batch on a second connection while `conn` writes the
    /// current one: the two run on their own sqlx worker threads at once, and the log's pages
    /// (most of the file) no longer pass through, and push read-model pages out of, the
    /// writer's page cache.
    async fn apply_pending(
        &self,
        conn: &mut SqliteConnection,
        progress: &mut (impl FnMut(u64) + Send),
        batch: i64,
    ) -> Result<u64, ProjectionError> {
        let mut applied = 0;
        let mut reader = None;
        // The batch read ahead, with the position it was read after.
        let mut ahead: Option<(i64, Vec<StoredEvent>)> = None;
        // The batch just applied. The read-ahead task frees it before reading the next one:
        // its events were allocated on that side, and freed on the applying side (a free
        // across threads, for mimalloc) their memory went back to the kernel and was faulted
        // in again for the next batch (perf: page faults under `mi_page_free_list_extend`
        // were 8% of a 1M-event rebuild). Freed here, a rebuild of 999,144 events took a
        // median of 19.4 s instead of 20.2 s (3 runs each).
        let mut spent: Vec<StoredEvent> = Vec::new();
        loop {
            let position: i64 =
                sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = ?")
                    .bind(CHECKPOINT)
                    .fetch_one(&mut *conn)
                    .await?;
            let events = match ahead.take() {
                Some((after, events)) if after == position => events,
                _ => self.log.read_after_on(conn, position, batch).await?,
            };
            let Some(last) = events.last().map(|event| event.position) else {
                return Ok(applied);
            };
            // A short batch was the end of the log when it was read; what was committed
            // since is for the next catch-up (its writer holds a ticket for it).
            let more = events.len() == batch as usize;
            if more && reader.is_none() {
                reader = Some(self.reader().await?);
            }
            let moved = match reader.take() {
                Some(Some(mut connection)) if more => {
                    // A task of its own, so that opening the next batch (decrypting and
                    // parsing it) runs on the other core while this one applies the batch.
                    let log = self.log.clone();
                    let spent = std::mem::take(&mut spent);
                    let read_ahead = tokio::spawn(async move {
                        // The batch before this one, freed by the side that allocated it
                        // (see `spent`).
                        drop(spent);
                        let next = log.read_after_on(&mut connection, last, batch).await;
                        (connection, next)
                    });
                    let moved = self.apply_batch(conn, position, &events).await;
                    let (connection, next) = match read_ahead.await {
                        Ok(done) => done,
                        Err(failure) => std::panic::resume_unwind(failure.into_panic()),
                    };
                    reader = Some(Some(connection));
                    ahead = Some((last, next?));
                    moved?
                }
                other => {
                    reader = other;
                    self.apply_batch(conn, position, &events).await?
                }
            };
            if !moved {
                // Another process applied these events first; read again from its checkpoint.
                continue;
            }
            applied += events.len() as u64;
            spent = events;
            progress(applied);
            if !more {
                return Ok(applied);
            }
            if applied == batch as u64 {
                // A long catch-up (a rebuild, a start after downtime) reads and rewrites
                // read-model pages all over the file: give it a larger cache while it runs.
                sqlx::query(&format!("PRAGMA cache_size = {CATCH_UP_CACHE_SIZE}"))
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }

    /// A second connection for reading ahead, if the pool has one to spare soon; else the
    /// catch-up reads on its own connection (a pool of one, as the scratch database of
    /// `--verify`, or one that others hold).
    async fn reader(&self) -> Result<Option<PoolConnection<Sqlite>>, sqlx::Error> {
        if self.pool.options().get_max_connections() < 2 {
            return Ok(None);
        }
        match tokio::time::timeout(READER_WAIT, self.pool.acquire()).await {
            Ok(connection) => connection.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Applies `events`, read after `position`, in one transaction that first moves the
    /// checkpoint from `position` to the last of them. Returns `false`, having changed nothing,
    /// if the checkpoint was no longer at `position` (another process applied them).
    async fn apply_batch(
        &self,
        conn: &mut SqliteConnection,
        position: i64,
        events: &[StoredEvent],
    ) -> Result<bool, ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(true);
        };
        let _one_writer_at_a_time = self.log.write_gate().enter().await;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let moved = sqlx::query(
            "UPDATE projection_checkpoints SET position = ? WHERE name = ? AND position = ?",
        )
        .bind(last.position)
        .bind(CHECKPOINT)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut pending = Pending::default();
        cvs::prefetch(&mut tx, &mut pending.cvs, events).await?;
        for event in events {
            apply(&mut tx, &mut pending, event).await?;
        }
        pending.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Empties every read model, resets the checkpoint and replays the whole log, with the
    /// big tables' secondary indexes dropped meanwhile and made again at the end
    /// ([`deferred_indexes`]).
    pub async fn rebuild(
        &self,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<u64, ProjectionError> {
        let running = self.running.lock().await;
        {
            let mut tx = self.pool.begin().await?;
            sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = ?")
                .bind(CHECKPOINT)
                .execute(&mut *tx)
                .await?;
            // Dropped before the rows go: emptying them would first rewrite every index page.
            deferred_indexes::defer(&mut tx).await?;
            for table in read_model_tables() {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        let applied = self
            .catch_up_locked(running, &mut progress, REBUILD_BATCH)
            .await?;
        deferred_indexes::restore_all(&self.pool).await?;
        Ok(applied)
    }

    /// Rebuilds the read model `name` alone: every read model is rebuilt from the log in a
    /// scratch database (some need others' state, e.g. the audit trail describes a CV change
    /// against the CV before it), then that model's live tables are replaced in one
    /// transaction, provided the live checkpoint has not moved meanwhile. Returns the number of
    /// events replayed.
    pub async fn rebuild_only(&self, name: &str) -> Result<u64, ProjectionError> {
        let Some((_, tables)) = READ_MODELS.iter().find(|(model, _)| *model == name) else {
            let known: Vec<&str> = READ_MODELS.iter().map(|(model, _)| *model).collect();
            return Err(ProjectionError::UnknownReadModel(
                name.to_owned(),
                known.join(", "),
            ));
        };
        let (scratch, position) = self.scratch_rebuild(false).await?;
        sqlx::query("ATTACH DATABASE ? AS live")
            .bind(self.live_path().await?)
            .execute(&scratch)
            .await?;
        let mut tx = scratch.begin().await?;
        // The first statement writes, so the transaction holds the live write lock from the
        // start; the checkpoint test then cannot be overtaken.
        let unchanged = sqlx::query(
            "UPDATE live.projection_checkpoints SET position = position
              WHERE name = ? AND position = ?",
        )
        .bind(CHECKPOINT)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        if unchanged.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(ProjectionError::MovedOn);
        }
        for table in *tables {
            sqlx::query(&format!("DELETE FROM live.{table}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "INSERT INTO live.{table} SELECT * FROM main.{table}"
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(position.max(0) as u64)
    }

    async fn live_path(&self) -> Result<String, sqlx::Error> {
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&self.pool)
            .await
    }

    /// A scratch database holding the log up to the live checkpoint and every read model
    /// rebuilt from it, with (when `keep_live` is set) a copy of each live table as
    /// `live_<table>`, all taken in one consistent snapshot. Returns it and the checkpoint.
    async fn scratch_rebuild(&self, keep_live: bool) -> Result<(SqlitePool, i64), ProjectionError> {
        let scratch = scratch_database().await?;
        sqlx::query("ATTACH DATABASE ? AS live")
            .bind(self.live_path().await?)
            .execute(&scratch)
            .await?;
        // One transaction takes a consistent snapshot of the live side: its checkpoint, the
        // events up to it, and a copy of every read-model table. A server catching up meanwhile
        // cannot make the comparison see tables and checkpoint from different moments.
        // The copy is of events already accepted: the rules about recording new events
        // (erasure destroys a key, nothing after an erasure) must not run on it again.
        for trigger in [
            "erasure_destroys_the_data_key",
            "events_about_erased_people_are_refused",
        ] {
            sqlx::query(&format!("DROP TRIGGER main.{trigger}"))
                .execute(&scratch)
                .await?;
        }
        let mut snapshot = scratch.begin().await?;
        let position: i64 =
            sqlx::query_scalar("SELECT position FROM live.projection_checkpoints WHERE name = ?")
                .bind(CHECKPOINT)
                .fetch_one(&mut *snapshot)
                .await?;
        sqlx::query(
            "INSERT INTO main.events (rowid, aggregate_type, aggregate_id, sequence, event_type,
                                      event_version, payload, metadata)
             SELECT rowid, aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata
               FROM live.events WHERE rowid <= ? ORDER BY rowid",
        )
        .bind(position)
        .execute(&mut *snapshot)
        .await?;
        // The data keys open the events in the scratch copy as they open in the live database
        // (wrapped, as they are stored; the copy is a private temporary file).
        sqlx::query("INSERT INTO main.data_keys SELECT * FROM live.data_keys")
            .execute(&mut *snapshot)
            .await?;
        if keep_live {
            for table in read_model_tables() {
                sqlx::query(&format!(
                    "CREATE TABLE main.live_{table} AS SELECT * FROM live.{table}"
                ))
                .execute(&mut *snapshot)
                .await?;
            }
        }
        snapshot.commit().await?;
        sqlx::query("DETACH DATABASE live")
            .execute(&scratch)
            .await?;
        // Replayed as a rebuild, without the deferred indexes; they are not made again: the
        // scratch tables are only compared or copied whole, then dropped with the file.
        deferred_indexes::defer(&mut *scratch.acquire().await?).await?;
        let projector = Projector::new(EventLog::new(scratch.clone(), self.log.keyring().clone()));
        let running = projector.running.lock().await;
        projector
            .catch_up_locked(running, &mut |_| {}, REBUILD_BATCH)
            .await?;
        Ok((scratch, position))
    }

    /// Rebuilds the read models from the log into a private temporary database (the live tables
    /// are not touched) and names every table whose rows differ from the live one.
    pub async fn verify(&self) -> Result<Vec<TableDifference>, ProjectionError> {
        let (scratch, _) = self.scratch_rebuild(true).await?;
        let now = crate::time_format::to_sql(time::OffsetDateTime::now_utc());
        let mut differences = Vec::new();
        for table in read_model_tables() {
            // Expired reset links may be purged from the live table by a scheduled job; a
            // replay brings them back, so only links that can still be used are compared.
            let rows = |from: &str| {
                if table == "password_resets" {
                    format!("SELECT * FROM {from} WHERE expires_at > '{now}'")
                } else {
                    format!("SELECT * FROM {from}")
                }
            };
            let count = |from: &str, minus: &str| {
                format!(
                    "SELECT COUNT(*) FROM ({} EXCEPT {})",
                    rows(from),
                    rows(minus)
                )
            };
            let live = format!("live_{table}");
            let only_live: i64 = sqlx::query_scalar(&count(&live, table))
                .fetch_one(&scratch)
                .await?;
            let only_rebuilt: i64 = sqlx::query_scalar(&count(table, &live))
                .fetch_one(&scratch)
                .await?;
            if only_live != 0 || only_rebuilt != 0 {
                differences.push(TableDifference {
                    table: table.to_owned(),
                    only_live,
                    only_rebuilt,
                });
            }
        }
        Ok(differences)
    }
}

/// A migrated private temporary database on a single connection (ATTACH is per connection).
/// The empty filename asks SQLite for an anonymous on-disk temp file; a true in-memory database
/// (`SQLITE_OPEN_MEMORY`) would open every ATTACHed file in memory too, i.e. empty.
async fn scratch_database() -> Result<SqlitePool, sqlx::Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(SqliteConnectOptions::new().filename(""))
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The stored type of [`UserEvent::Erased`].
const USER_ERASED: &str = "UserErased";

/// Writes of one batch that the read models gather and make together at the end of the batch
/// (in the batch's transaction): one statement per row would cost more than the rows do.
#[derive(Debug, Default)]
struct Pending {
    users: users::Pending,
    profiles: profiles::Pending,
    cvs: cvs::Pending,
    analytics: analytics::Pending,
    audit: audit::Pending,
}

impl Pending {
    async fn flush(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        users::flush(conn, &mut self.users).await?;
        profiles::flush(conn, &mut self.profiles).await?;
        cvs::flush(conn, &mut self.cvs).await?;
        analytics::flush(conn, &mut self.analytics).await?;
        audit::flush(conn, &mut self.audit).await
    }
}

/// Applies one event to every read model that cares about its aggregate type.
///
/// An erased person's events arrive with their personal fields gone ([`StoredEvent::erased`]):
/// only the facts are applied — the per-day counters and an audit row saying "erased user" —
/// which is also all that is left in the read models of such an event once the erasure itself
/// has been applied. So live read models and a rebuild agree after an erasure.
async fn apply(
    conn: &mut SqliteConnection,
    pending: &mut Pending,
    event: &StoredEvent,
) -> Result<(), ProjectionError> {
    let corrupt = |source| ProjectionError::Corrupt {
        position: event.position,
        event_type: event.event_type.clone(),
        source,
    };
    let is_user = event.aggregate_type == <domain::User as Aggregate>::TYPE;
    let metadata = event.metadata();
    if is_user && event.event_type == USER_ERASED {
        // The erasure reads and rewrites rows the batch may still hold back: write them first.
        pending.flush(conn).await?;
        // It finds a person's rows through the indexes a rebuild defers: make them first.
        deferred_indexes::restore(conn).await?;
        cvs::forget_prefetched(&mut pending.cvs);
        erase(conn, &mut pending.analytics, &event.aggregate_id).await?;
        analytics::count_event(&mut pending.analytics, event, &metadata);
        audit::record(
            &mut pending.audit,
            event,
            &metadata,
            &UserEvent::Erased.describe(),
        );
    } else if event.erased {
        analytics::count_event(&mut pending.analytics, event, &metadata);
        audit::record(&mut pending.audit, event, &metadata, audit::ERASED_SUMMARY);
    } else if is_user {
        let user_event = UserEvent::deserialize(&event.payload).map_err(corrupt)?;
        users::apply(conn, &mut pending.users, event, &user_event).await?;
        profiles::apply(&mut pending.profiles, event, &metadata, &user_event);
        password_resets::apply(conn, event, &user_event).await?;
        analytics::count_event(&mut pending.analytics, event, &metadata);
        analytics::apply_user(&mut pending.analytics, &user_event);
        audit::record(&mut pending.audit, event, &metadata, &user_event.describe());
    } else if event.aggregate_type == <domain::Cv as Aggregate>::TYPE {
        let cv_event = domain::CvEvent::deserialize(&event.payload).map_err(corrupt)?;
        let description = cvs::apply(conn, &mut pending.cvs, event, &metadata, &cv_event).await?;
        analytics::count_event(&mut pending.analytics, event, &metadata);
        analytics::apply_cv(&mut pending.analytics, &cv_event);
        audit::record(&mut pending.audit, event, &metadata, &description);
    } else {
        tracing::debug!(
            aggregate_type = event.aggregate_type,
            "no read model for this aggregate type"
        );
    }
    Ok(())
}

/// Removes an erased user from every read model. The trail and the totals go first: both are
/// rewritten from rows (their CVs, their account) that the later steps delete.
async fn erase(
    conn: &mut SqliteConnection,
    analytics: &mut analytics::Pending,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    audit::erase(conn, user_id).await?;
    analytics::erase(conn, analytics, user_id).await?;
    cvs::erase(conn, user_id).await?;
    password_resets::erase(conn, user_id).await?;
    profiles::erase(conn, user_id).await?;
    users::erase(conn, user_id).await?;
    Ok(())
}
