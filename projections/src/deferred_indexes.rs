//! Secondary indexes that a full rebuild drops while it replays the log and makes again at its
//! end, one sort each, instead of inserting every row into them at a random place.
//!
//! The trail's indexes by actor and by aggregate are keyed by random ids: during a replay each
//! new row lands on another page of them, and each batch rewrote most of their pages. Measured
//! on the 1,350,011-event bench database: the rebuild took 104 s with them in place, 53 s
//! without them plus 7.7 s to make them afterwards.
//!
//! Nothing is lost if the rebuild stops half way: each dropped index is recorded, with its
//! definition, in `deferred_indexes` in the transaction that drops it, and [`restore`] (at the
//! end of the rebuild, at every open of the database, and before an erasure, which looks rows
//! up through them) makes every recorded index again and forgets it in one transaction.

use sqlx::SqliteConnection;

/// The indexes a rebuild defers: those of the tables that grow with the log (the trail, the
/// activity days) and of the CV list, whose keys arrive in random order.
pub(crate) const DEFERRED: &[&str] = &[
    "audit_log_by_actor",
    "audit_log_by_aggregate",
    "audit_log_by_event_type",
    "audit_log_by_at",
    "activity_by_day",
    "cvs_by_owner",
    "cvs_by_updated",
];

/// Records and drops every index of [`DEFERRED`] that exists, in the caller's transaction.
pub(crate) async fn defer(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let list = crate::database::json_param(&DEFERRED)?;
    let names: Vec<String> = sqlx::query_scalar(
        "INSERT OR REPLACE INTO deferred_indexes (name, sql)
         SELECT name, sql FROM sqlite_master
          WHERE type = 'index' AND sql IS NOT NULL
            AND name IN (SELECT value FROM json_each(?))
         RETURNING name",
    )
    .bind(list)
    .fetch_all(&mut *conn)
    .await?;
    for name in names {
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Makes every recorded index again and forgets it, in the caller's transaction; returns how
/// many were made. Cheap when none is recorded (one lookup in an empty table).
pub(crate) async fn restore(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
    let pending: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sql FROM deferred_indexes ORDER BY name")
            .fetch_all(&mut *conn)
            .await?;
    let mut made = 0;
    for (name, sql) in pending {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?)",
        )
        .bind(&name)
        .fetch_one(&mut *conn)
        .await?;
        if !exists {
            sqlx::query(&sql).execute(&mut *conn).await?;
            made += 1;
        }
        sqlx::query("DELETE FROM deferred_indexes WHERE name = ?")
            .bind(&name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(made)
}

/// [`restore`] in a transaction of its own on a connection of `pool` (at open, after a rebuild).
pub async fn restore_all(pool: &sqlx::SqlitePool) -> Result<u64, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // Making an index is mostly sorting the table's keys, which SQLite can spread over helper
    // threads; it uses none unless asked. Only while the indexes are made: the connection
    // goes back to the pool, whose sorts stay on one thread.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    sqlx::query(&format!("PRAGMA threads = {}", threads.min(4)))
        .execute(&mut *conn)
        .await?;
    let made = restore_in_own_transaction(&mut conn).await;
    sqlx::query("PRAGMA threads = 0")
        .execute(&mut *conn)
        .await?;
    made
}

async fn restore_in_own_transaction(conn: &mut SqliteConnection) -> Result<u64, sqlx::Error> {
    // A write transaction from the start: two processes restoring at once queue for the lock.
    let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
    let made = restore(&mut tx).await?;
    tx.commit().await?;
    Ok(made)
}
