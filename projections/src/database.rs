//! Opening the SQLite database that holds the event log, the claims and the read models.
//!
//! One file, in WAL mode so that readers never block the writer, with `synchronous=FULL` so an
//! acknowledged command survives a power cut, foreign keys on, and a busy timeout so that the CLI
//! and the server can write to the same file at once (SQLite serialises writers; with the timeout
//! a second writer waits instead of failing with "database is locked").

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The migrations of the event log, claims and read models (`migrations/` at the workspace root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connection options for a database file: WAL, `synchronous=FULL`, foreign keys, busy timeout.
pub fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        // Deleted content is overwritten, not left in free pages (erasure must leave no bytes).
        .pragma("secure_delete", "ON")
        // 8 MiB of page cache per connection (SQLite's default is 2 MiB), eight connections.
        // Measured under bench/: 32 MiB each peaked at 299 MB; 8 MiB at 192–219 MB with
        // 562–662 durable edits/s; 4 MiB at 155–169 MB but only 456–476 edits/s. Long
        // catch-ups take more while they run (`CATCH_UP_CACHE_SIZE`).
        .pragma("cache_size", POOL_CACHE_SIZE)
}

/// `PRAGMA cache_size` of pooled connections (negative: KiB).
pub const POOL_CACHE_SIZE: &str = "-8192";
/// `PRAGMA cache_size` of the connection a catch-up runs on, while it runs: a rebuild reads
/// and rewrites read-model pages all over the file (the random-id indexes most of all), and
/// pages that do not fit are spilled to the WAL mid-batch and written again at the commit.
/// Only a catch-up longer than one batch (a rebuild, a start after downtime) raises it, and
/// it drops back to [`POOL_CACHE_SIZE`] afterwards. Measured on a 10,000-user log (135k
/// events, 233 MB file): 64 MiB rebuilt 5,539 events/s, 256 MiB 13,841 events/s. In the
/// server, [`SERVER_SQLITE_HEAP`] caps it with the rest (only the start's catch-up runs first).
pub const CATCH_UP_CACHE_SIZE: &str = "-262144";

/// The server's budget for SQLite's memory in the whole process, shared by every connection's
/// page cache ([`limit_page_caches`]).
///
/// Each pooled connection may cache [`POOL_CACHE_SIZE`], but a write by one connection makes
/// every other one drop its cache at its next read and fill it again, so under durable edits
/// all eight held copies of the same hot pages. Measured under bench/ on the aged 100,000-user
/// database (its benchmark CVs ~2,000 events each), cv_edit 1 × 10 s, two rounds: no limit
/// peaked at 158 and 165 MB (VmHWM) with 1,137 and 846 edits/s; 48 MiB at 128 and 134 MB;
/// 32 MiB at 122 and 116 MB with 1,286 and 1,089 edits/s; 24 MiB at 112 and 113 MB. The CV
/// page, CV list and filtered audit trail served as fast with 32 MiB as without.
pub const SERVER_SQLITE_HEAP: i64 = 32 << 20;

/// Caps what SQLite holds in this process at [`SERVER_SQLITE_HEAP`]. It is a soft limit:
/// beyond it a connection's page cache recycles its own least recently used pages instead of
/// growing. The limit is process-wide (`sqlite3_soft_heap_limit64`), so the server sets it
/// once it has caught up at start; the CLI does not, and a rebuild keeps its large cache.
pub async fn limit_page_caches(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("PRAGMA soft_heap_limit = {SERVER_SQLITE_HEAP}"))
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether a pool pings a connection before lending it: not for SQLite. A connection to a
/// local file does not go stale, and the ping is a round trip to the connection's worker
/// thread (two thread wake-ups) before every query made on the pool: as many as the queries.
const NO_PING: bool = false;

/// Opens (creating if needed) the database at `path` and applies every migration.
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        .test_before_acquire(NO_PING)
        .connect_with(connect_options(path))
        .await?;
    MIGRATOR.run(&pool).await?;
    // A rebuild that stopped half way left the big tables without some of their indexes.
    let made = crate::deferred_indexes::restore_all(&pool).await?;
    if made > 0 {
        tracing::info!(
            indexes = made,
            "made the indexes an interrupted rebuild had dropped"
        );
    }
    Ok(pool)
}

/// A private in-memory database with every migration applied, for tests (one connection, so
/// every query sees the same database).
pub async fn open_memory() -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Opens the sessions database: WAL and a busy timeout like the event log, but
/// `synchronous=NORMAL` — a session lost to a power cut only means logging in again, and
/// sessions are written far more often than events.
///
/// One connection: sessions are read from memory once loaded (the server's cache), so the
/// database mostly sees writes, and writers on several connections meet in SQLite's write
/// lock, where the loser sleeps in the busy handler (1, 2, 5, 10 ms…) however soon it frees.
/// Under 32 parallel CV edits (each flashes "saved") the server slept 1.3 s in every 5 s there
/// (strace); on one connection they queue in the pool instead, in order.
pub async fn open_sessions(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(NO_PING)
        .connect_with(connect_options(path).synchronous(SqliteSynchronous::Normal))
        .await
}

/// `value` as a JSON text parameter, for statements that take a whole batch of rows as one
/// bound value through `json_each` (one round trip to sqlx's worker thread, whatever the size).
pub(crate) fn json_param(value: &impl serde::Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}
