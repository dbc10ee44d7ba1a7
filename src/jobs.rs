//! Scheduled background jobs (tokio-cron-scheduler). Each run logs what it did; a failing run
//! logs the error and the job simply runs again at its next time — nothing here can take the
//! server down.

use tokio_cron_scheduler::{Job, JobScheduler};
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::SqliteStore;

use crate::config::ServeConfig;

/// The running scheduler.
pub struct Jobs {
    scheduler: JobScheduler,
}

impl Jobs {
    /// Schedules every job and starts the scheduler.
    pub async fn start(config: &ServeConfig, sessions: SqliteStore) -> anyhow::Result<Self> {
        let scheduler = JobScheduler::new().await?;
        let purge = Job::new_async(config.session_purge_schedule.as_str(), move |_, _| {
            let sessions = sessions.clone();
            Box::pin(async move {
                match sessions.delete_expired().await {
                    Ok(()) => tracing::info!(job = "purge-expired-sessions", "done"),
                    Err(error) => {
                        tracing::error!(job = "purge-expired-sessions", ?error, "failed")
                    }
                }
            })
        })
        .map_err(|error| {
            anyhow::anyhow!(
                "invalid CVM_SESSION_PURGE_SCHEDULE {:?}: {error}",
                config.session_purge_schedule
            )
        })?;
        scheduler.add(purge).await?;
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
