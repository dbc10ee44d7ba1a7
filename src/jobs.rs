//! Scheduled background jobs (tokio-cron-scheduler). Each run logs what it did and records
//! its outcome in `job_runs` (shown on the admin dashboard); a failing run logs the error and
//! the job simply runs again at its next time — nothing here can take the server down.

use std::future::Future;
use std::sync::Arc;

use projections::{job_runs, password_resets, Projector};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use tokio_cron_scheduler::{Job, JobScheduler};
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::SqliteStore;

use crate::config::ServeConfig;

/// The running scheduler.
pub struct Jobs {
    scheduler: JobScheduler,
}

/// Runs `work` as the job `name` on `schedule`, logging and recording every outcome. An error
/// (or a panic, which the scheduler contains) is logged and recorded; the job runs again at
/// its next time.
pub async fn add<F, Fut>(
    scheduler: &JobScheduler,
    pool: &SqlitePool,
    name: &'static str,
    schedule: &str,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<(bool, String)>> + Send + 'static,
{
    let pool = pool.clone();
    let work = Arc::new(work);
    let job = Job::new_async(schedule, move |_, _| {
        let pool = pool.clone();
        let work = Arc::clone(&work);
        Box::pin(async move {
            let (ok, detail) = match work().await {
                Ok(outcome) => outcome,
                Err(error) => (false, format!("failed: {error:#}")),
            };
            if ok {
                tracing::info!(job = name, detail, "job ran");
            } else {
                tracing::warn!(job = name, detail, "job ran with a problem");
            }
            if let Err(error) = job_runs::record(&pool, name, ok, &detail).await {
                tracing::error!(job = name, ?error, "could not record the job run");
            }
        })
    })
    .map_err(|error| anyhow::anyhow!("invalid schedule {schedule:?} for job {name}: {error}"))?;
    scheduler.add(job).await?;
    Ok(())
}

/// Deletes expired sessions and expired password-reset links.
pub async fn purge_expired(
    sessions: &SqliteStore,
    pool: &SqlitePool,
) -> anyhow::Result<(bool, String)> {
    sessions
        .delete_expired()
        .await
        .map_err(|error| anyhow::anyhow!("sessions: {error}"))?;
    let links = password_resets::purge_expired(pool, OffsetDateTime::now_utc()).await?;
    Ok((
        true,
        format!("expired sessions deleted; {links} expired reset link(s) forgotten"),
    ))
}

/// Compares the event log's head with the read models' checkpoint; if they lag, catches up.
pub async fn check_projection_lag(projector: &Projector) -> anyhow::Result<(bool, String)> {
    let head = projector.log().head().await?;
    let checkpoint = projector.checkpoint().await?;
    let lag = head - checkpoint;
    if lag <= 0 {
        return Ok((
            true,
            format!("read models are up to date (position {head})"),
        ));
    }
    let applied = projector.catch_up().await?;
    Ok((
        false,
        format!(
            "read models were {lag} event(s) behind the log (head {head}); caught up {applied}"
        ),
    ))
}

/// The daily roll-up: yesterday's figures, checked two ways (daily row against the sum of its
/// hourly rows). The counters themselves are kept by the projector as events arrive, so there
/// is nothing to recompute; a disagreement means a bug, and `rebuild-projections` repairs it.
pub async fn analytics_rollup(pool: &SqlitePool) -> anyhow::Result<(bool, String)> {
    let yesterday = OffsetDateTime::now_utc()
        .date()
        .previous_day()
        .unwrap_or(time::Date::MIN);
    let (daily, hourly) = projections::analytics::day_check(pool, yesterday).await?;
    let totals = projections::analytics::totals(pool).await?;
    let summary = format!(
        "{yesterday}: {} sign-up(s), {} login(s), {} CV(s) created, {} CV edit(s); {} users, {} CVs in all",
        daily.signups, daily.logins, daily.cvs_created, daily.cv_edits, totals.users, totals.cvs
    );
    if daily == hourly {
        Ok((true, summary))
    } else {
        Ok((
            false,
            format!("{summary}; hourly rows disagree ({hourly:?}): run `cvm rebuild-projections`"),
        ))
    }
}

impl Jobs {
    /// Schedules every job and starts the scheduler.
    pub async fn start(
        config: &ServeConfig,
        sessions: SqliteStore,
        pool: SqlitePool,
        projector: Arc<Projector>,
    ) -> anyhow::Result<Self> {
        let scheduler = JobScheduler::new().await?;
        {
            let pool_for_job = pool.clone();
            add(
                &scheduler,
                &pool,
                "purge-expired",
                &config.session_purge_schedule,
                move || {
                    let sessions = sessions.clone();
                    let pool = pool_for_job.clone();
                    async move { purge_expired(&sessions, &pool).await }
                },
            )
            .await?;
        }
        {
            add(
                &scheduler,
                &pool,
                "projection-lag",
                &config.lag_check_schedule,
                move || {
                    let projector = Arc::clone(&projector);
                    async move { check_projection_lag(&projector).await }
                },
            )
            .await?;
        }
        {
            let pool_for_job = pool.clone();
            add(
                &scheduler,
                &pool,
                "analytics-rollup",
                &config.analytics_schedule,
                move || {
                    let pool = pool_for_job.clone();
                    async move { analytics_rollup(&pool).await }
                },
            )
            .await?;
        }
        scheduler.start().await?;
        Ok(Self { scheduler })
    }

    /// Stops the scheduler (at shutdown).
    pub async fn stop(mut self) {
        if let Err(error) = self.scheduler.shutdown().await {
            tracing::warn!(?error, "scheduler did not stop cleanly");
        }
    }
}
