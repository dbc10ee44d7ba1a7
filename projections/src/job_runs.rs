//! The last run of each scheduled job (`job_runs`), written by the jobs and shown on the admin
//! dashboard. Not rebuilt from the event log: it describes the server, not the domain.

use serde::Serialize;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;

use crate::time_format::to_sql;

/// One job's last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    /// The job's name, e.g. `projection-lag`.
    pub name: String,
    /// When it last ran (fixed-width UTC text).
    pub last_run_at: String,
    /// Whether that run succeeded (for `projection-lag`: whether the lag was zero).
    pub ok: bool,
    /// What it did or found, in a sentence.
    pub detail: String,
}

/// Records a run of `name`.
pub async fn record(
    pool: &SqlitePool,
    name: &str,
    ok: bool,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_runs (name, last_run_at, ok, detail) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, ok = excluded.ok,
                                          detail = excluded.detail",
    )
    .bind(name)
    .bind(to_sql(OffsetDateTime::now_utc()))
    .bind(ok)
    .bind(detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every job's last run, by name.
pub async fn all(pool: &SqlitePool) -> Result<Vec<JobRun>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, last_run_at, ok, detail FROM job_runs ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(JobRun {
                name: row.try_get("name")?,
                last_run_at: row.try_get("last_run_at")?,
                ok: row.try_get("ok")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}
