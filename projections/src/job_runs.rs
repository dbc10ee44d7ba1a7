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

/// A job run as [`all_with_position`] reads it: name, last run, ok, detail.
type JobRunRow = (String, String, bool, String);

/// How far the read models have read ([`crate::projector::read_position`]) and every job's
/// last run, in one statement: the admin dashboard needs both on every view, and each statement
/// is a round trip to sqlx's worker thread (two thread wake-ups), a good part of a view served
/// from memory.
pub async fn all_with_position(pool: &SqlitePool) -> Result<(i64, Vec<JobRun>), sqlx::Error> {
    let (position, runs): (i64, sqlx::types::Json<Vec<JobRunRow>>) =
        sqlx::query_as(
            "SELECT (SELECT position FROM projection_checkpoints WHERE name = ?),
                    (SELECT json_group_array(json_array(name, last_run_at, json(iif(ok, 'true', 'false')), detail))
                       FROM (SELECT * FROM job_runs ORDER BY name))",
        )
        .bind(crate::projector::CHECKPOINT)
        .fetch_one(pool)
        .await?;
    let runs = runs
        .0
        .into_iter()
        .map(|(name, last_run_at, ok, detail)| JobRun {
            name,
            last_run_at,
            ok,
            detail,
        })
        .collect();
    Ok((position, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_runs_with_the_position_are_the_runs_and_the_position() {
        let pool = crate::database::open_memory().await.unwrap();
        assert_eq!(all_with_position(&pool).await.unwrap(), (0, Vec::new()));

        record(&pool, "z-last", false, "it failed, with \"quotes\"")
            .await
            .unwrap();
        record(&pool, "a-first", true, "done").await.unwrap();
        sqlx::query("UPDATE projection_checkpoints SET position = 42")
            .execute(&pool)
            .await
            .unwrap();

        let (position, runs) = all_with_position(&pool).await.unwrap();
        assert_eq!(position, 42);
        assert_eq!(runs, all(&pool).await.unwrap());
        let names: Vec<(&str, bool)> = runs.iter().map(|run| (run.name.as_str(), run.ok)).collect();
        assert_eq!(names, [("a-first", true), ("z-last", false)]);
    }
}
