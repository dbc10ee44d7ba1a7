//! The CV read models: `cvs` (one row per CV, for lists and counts) and `cv_documents` (each
//! CV's current state, for rendering). The document is advanced with the aggregate's own
//! `apply`, so a page shows exactly what the write side decided.

use std::collections::{BTreeMap, HashMap};

use cqrs_es::Aggregate;
use domain::{Cv, CvEvent};
use serde::Serialize;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event_log::{EventMetadata, StoredEvent};
use crate::time_format::{from_sql, to_sql};

/// The tables this module owns.
pub const TABLES: &[&str] = &["cvs", "cv_documents"];

/// A CV in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvSummary {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
    pub entry_count: i64,
    pub section_counts: BTreeMap<String, i64>,
}

/// The CVs a batch of events changed, kept in memory while the batch runs and written once by
/// [`flush`]: a CV's events come in runs, and each would otherwise read and rewrite the whole
/// document.
#[derive(Debug, Default)]
pub struct Pending {
    documents: HashMap<String, Document>,
    /// Stored documents of CVs the batch continues, read together by [`prefetch`] and taken
    /// out by the first event of each.
    stored: HashMap<String, Cv>,
}

#[derive(Debug)]
struct Document {
    cv: Cv,
    /// Time of the first event applied in this batch (the row's `created_at` if it is new).
    first_at: String,
    /// Time of the last event applied in this batch.
    last_at: String,
}

/// Rows per multi-row INSERT.
const ROWS_PER_STATEMENT: usize = 200;

/// Applies one Cv event (to the CV in `pending`); returns the event described against the CV
/// as it was before it (for the audit trail).
pub async fn apply(
    conn: &mut SqliteConnection,
    pending: &mut Pending,
    stored: &StoredEvent,
    metadata: &EventMetadata,
    event: &CvEvent,
) -> Result<String, sqlx::Error> {
    let id = stored.aggregate_id.as_str();
    let at = metadata
        .at
        .or(match event {
            CvEvent::Created { created_at, .. } => Some(*created_at),
            _ => None,
        })
        .map(to_sql)
        .unwrap_or_default();
    if !pending.documents.contains_key(id) {
        // A creation starts from nothing; anything else continues the stored document.
        let cv = if matches!(event, CvEvent::Created { .. }) {
            Cv::default()
        } else if let Some(cv) = pending.stored.remove(id) {
            cv
        } else {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM cv_documents WHERE cv_id = ?")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            state
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default()
        };
        let document = Document {
            cv,
            first_at: at.clone(),
            last_at: at.clone(),
        };
        pending.documents.insert(id.to_owned(), document);
    }
    let document = pending.documents.get_mut(id).expect("inserted just above");
    let description = event.describe(&document.cv);
    document.cv.apply(event.clone());
    document.last_at = at;
    Ok(description)
}

/// Reads, in one statement, the stored documents of the CVs that `events` continue (a batch's
/// CVs would otherwise be read one statement each, a round trip to sqlx's worker thread per CV).
pub async fn prefetch(
    conn: &mut SqliteConnection,
    pending: &mut Pending,
    events: &[StoredEvent],
) -> Result<(), sqlx::Error> {
    let ids: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|event| event.aggregate_type == <Cv as Aggregate>::TYPE && !event.erased)
        .map(|event| event.aggregate_id.as_str())
        .filter(|id| !pending.documents.contains_key(*id))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let states: Option<String> = sqlx::query_scalar(
        "SELECT json_group_object(cv_id, json(state)) FROM cv_documents
          WHERE cv_id IN (SELECT value FROM json_each(?))",
    )
    .bind(crate::database::json_param(&ids)?)
    .fetch_one(&mut *conn)
    .await?;
    let states: HashMap<String, serde_json::Value> =
        serde_json::from_str(states.as_deref().unwrap_or("{}"))
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    // A document that cannot be read starts again from nothing, as when read alone.
    pending.stored = states
        .into_iter()
        .map(|(id, state)| (id, serde_json::from_value(state).unwrap_or_default()))
        .collect();
    Ok(())
}

/// Forgets the prefetched documents (an erasure deletes stored documents mid-batch).
pub fn forget_prefetched(pending: &mut Pending) {
    pending.stored.clear();
}

/// Writes every CV the batch changed to both tables.
pub async fn flush(conn: &mut SqliteConnection, pending: &mut Pending) -> Result<(), sqlx::Error> {
    let documents: Vec<(String, Document)> = pending.documents.drain().collect();
    for chunk in documents.chunks(ROWS_PER_STATEMENT) {
        let mut rows = Vec::with_capacity(chunk.len());
        for (id, document) in chunk {
            let cv = &document.cv;
            let state =
                serde_json::to_string(cv).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
            let counts: BTreeMap<&str, usize> = cv
                .content
                .sections
                .iter()
                .filter(|(_, entries)| !entries.is_empty())
                .map(|(section, entries)| (section.as_str(), entries.len()))
                .collect();
            let counts = serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into());
            let owner = cv.owner.map(|o| o.to_string()).unwrap_or_default();
            let status = if cv.archived { "archived" } else { "active" };
            rows.push((id, document, state, counts, owner, status));
        }
        QueryBuilder::<Sqlite>::new("INSERT INTO cv_documents (cv_id, version, state) ")
            .push_values(&rows, |mut values, (id, document, state, ..)| {
                values
                    .push_bind(*id)
                    .push_bind(document.cv.version as i64)
                    .push_bind(state);
            })
            .push(
                " ON CONFLICT (cv_id) DO UPDATE SET version = excluded.version, \
                 state = excluded.state",
            )
            .build()
            .execute(&mut *conn)
            .await?;
        QueryBuilder::<Sqlite>::new(
            "INSERT INTO cvs (id, owner_id, title, status, created_at, updated_at, version, \
             entry_count, section_counts) ",
        )
        .push_values(
            &rows,
            |mut values, (id, document, _, counts, owner, status)| {
                values
                    .push_bind(*id)
                    .push_bind(owner)
                    .push_bind(&document.cv.title)
                    .push_bind(*status)
                    .push_bind(&document.first_at)
                    .push_bind(&document.last_at)
                    .push_bind(document.cv.version as i64)
                    .push_bind(document.cv.content.entry_count() as i64)
                    .push_bind(counts);
            },
        )
        .push(
            " ON CONFLICT (id) DO UPDATE SET title = excluded.title, status = excluded.status, \
             updated_at = excluded.updated_at, version = excluded.version, \
             entry_count = excluded.entry_count, section_counts = excluded.section_counts",
        )
        .build()
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Removes every CV of an erased user, archived or not, with its document.
pub async fn erase(conn: &mut SqliteConnection, owner_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cv_documents WHERE cv_id IN (SELECT id FROM cvs WHERE owner_id = ?)")
        .bind(owner_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM cvs WHERE owner_id = ?")
        .bind(owner_id)
        .execute(conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "id, owner_id, title, status, created_at, updated_at, version, entry_count,
                       section_counts";

fn summary(row: &sqlx::sqlite::SqliteRow) -> Result<CvSummary, sqlx::Error> {
    let decode = |column: &str| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: "malformed value".into(),
    };
    let uuid = |column: &str| -> Result<Uuid, sqlx::Error> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text).map_err(|_| decode(column))
    };
    let time = |column: &str| -> Result<OffsetDateTime, sqlx::Error> {
        let text: String = row.try_get(column)?;
        from_sql(&text).ok_or_else(|| decode(column))
    };
    let status: String = row.try_get("status")?;
    let counts: String = row.try_get("section_counts")?;
    Ok(CvSummary {
        id: uuid("id")?,
        owner_id: uuid("owner_id")?,
        title: row.try_get("title")?,
        archived: status == "archived",
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        version: row.try_get("version")?,
        entry_count: row.try_get("entry_count")?,
        section_counts: serde_json::from_str(&counts).unwrap_or_default(),
    })
}

/// The CVs of `owner`, most recently updated first.
pub async fn list_for_owner(pool: &SqlitePool, owner: Uuid) -> Result<Vec<CvSummary>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM cvs WHERE owner_id = ? ORDER BY updated_at DESC, id"
    ))
    .bind(owner.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter().map(summary).collect()
}

/// One CV's summary.
pub async fn find(pool: &SqlitePool, id: Uuid) -> Result<Option<CvSummary>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM cvs WHERE id = ?"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(summary).transpose()
}

/// A CV with its current state, in one query (a CV page needs both).
pub async fn find_with_document(
    pool: &SqlitePool,
    id: Uuid,
) -> Result<Option<(CvSummary, Cv)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.id, c.owner_id, c.title, c.status, c.created_at, c.updated_at, c.version,
                c.entry_count, c.section_counts, d.state
           FROM cvs AS c JOIN cv_documents AS d ON d.cv_id = c.id
          WHERE c.id = ?",
    )
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let state: &str = row.try_get("state")?;
    let cv = serde_json::from_str(state).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(Some((summary(&row)?, cv)))
}

/// The titles of those of `ids` that (still) exist, in one query per 500 ids.
pub async fn titles(
    pool: &SqlitePool,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, String>, sqlx::Error> {
    crate::users::names_by_id(pool, "SELECT id, title FROM cvs WHERE id IN", ids).await
}

/// One CV's current state.
pub async fn document(pool: &SqlitePool, id: Uuid) -> Result<Option<Cv>, sqlx::Error> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM cv_documents WHERE cv_id = ?")
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?;
    state
        .map(|json| {
            serde_json::from_str(&json).map_err(|error| sqlx::Error::Decode(Box::new(error)))
        })
        .transpose()
}

/// Number of CVs (active and archived).
pub async fn count(pool: &SqlitePool) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(status = 'active'), 0), COALESCE(SUM(status = 'archived'), 0) FROM cvs",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// A row of the admin CV list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminCvRow {
    pub id: String,
    pub title: String,
    pub owner_id: String,
    pub owner: String,
    pub archived: bool,
    pub updated_at: String,
    pub version: i64,
}

/// Rows per page of the admin CV list.
pub const PAGE_SIZE: u32 = 50;

/// One page of every CV whose title or owner (username or email) contains `q`, most recently
/// updated first, and how many match in all.
pub async fn search_all(
    pool: &SqlitePool,
    q: &str,
    page: u32,
) -> Result<(Vec<AdminCvRow>, i64), sqlx::Error> {
    let pattern = format!(
        "%{}%",
        q.trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let filter = "FROM cvs c LEFT JOIN users u ON u.id = c.owner_id
        WHERE (? = '%%' OR lower(c.title) LIKE ? ESCAPE '\\' OR u.username_canonical LIKE ? ESCAPE '\\'
               OR u.email LIKE ? ESCAPE '\\')";
    fn bind<'q>(
        sql: &'q str,
        pattern: &str,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
        sqlx::query(sql)
            .bind(pattern.to_owned())
            .bind(pattern.to_owned())
            .bind(pattern.to_owned())
            .bind(pattern.to_owned())
    }
    let count_sql = format!("SELECT COUNT(*) {filter}");
    let total: i64 = bind(&count_sql, &pattern)
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    let rows_sql = format!(
        "SELECT c.id, c.title, c.owner_id, COALESCE(u.username, '') AS owner, c.status,
                c.updated_at, c.version
         {filter} ORDER BY c.updated_at DESC, c.id LIMIT {PAGE_SIZE} OFFSET ?"
    );
    let rows = bind(&rows_sql, &pattern)
        .bind(i64::from(page) * i64::from(PAGE_SIZE))
        .fetch_all(pool)
        .await?;
    let rows = rows
        .iter()
        .map(|row| {
            Ok(AdminCvRow {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                owner_id: row.try_get("owner_id")?,
                owner: row.try_get("owner")?,
                archived: row.try_get::<String, _>("status")? == "archived",
                updated_at: row
                    .try_get::<String, _>("updated_at")?
                    .chars()
                    .take(16)
                    .collect::<String>()
                    .replace('T', " "),
                version: row.try_get("version")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((rows, total))
}
