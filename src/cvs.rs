//! CV use cases: creating, editing through the aggregate, reading (with access rules),
//! history and time travel, duplication, JSON Resume import and export.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::Aggregate;
use domain::{Cv, CvCommand, CvContent, CvError, CvEvent, CvOrigin, CvTitle};
use projections::cvs::{self, CvSummary};
use projections::users::{self, UserRow};
use projections::{EventLog, EventMetadata};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{CommandBus, CommandError};

/// A CV as one viewer may see it.
#[derive(Debug, Clone)]
pub struct CvAccess {
    pub summary: CvSummary,
    pub cv: Cv,
    /// Only the owner edits; a superuser who is not the owner reads.
    pub is_owner: bool,
}

/// One line of a CV's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryItem {
    pub version: u64,
    pub at: String,
    pub actor: String,
    pub description: String,
}

/// Why a CV command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CvFailure {
    /// A rule of the aggregate (stale version, archived, invalid entry, …).
    #[error(transparent)]
    Rejected(CvError),
    /// Storage failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<CommandError<CvError>> for CvFailure {
    fn from(error: CommandError<CvError>) -> Self {
        match error {
            CommandError::Rejected(rule) => CvFailure::Rejected(rule),
            other => CvFailure::Internal(anyhow::anyhow!("CV command failed: {other}")),
        }
    }
}

/// CV use cases.
pub struct Cvs {
    pool: SqlitePool,
    commands: Arc<CommandBus>,
    log: EventLog,
}

impl Cvs {
    /// CV use cases over `log` and the read models of its database.
    pub fn new(log: EventLog, commands: Arc<CommandBus>) -> Self {
        Self {
            pool: log.pool().clone(),
            log,
            commands,
        }
    }

    /// The CVs of `owner`, most recently updated first.
    pub async fn list(&self, owner: Uuid) -> anyhow::Result<Vec<CvSummary>> {
        Ok(cvs::list_for_owner(&self.pool, owner).await?)
    }

    /// The CV `id` if `viewer` may see it: its owner, or any superuser. `None` otherwise —
    /// a CV someone may not see does not exist for them.
    pub async fn access(&self, viewer: &UserRow, id: Uuid) -> anyhow::Result<Option<CvAccess>> {
        let Some((summary, cv)) = cvs::find_with_document(&self.pool, id).await? else {
            return Ok(None);
        };
        let is_owner = summary.owner_id == viewer.id;
        if !is_owner && !viewer.is_superuser() {
            return Ok(None);
        }
        Ok(Some(CvAccess {
            summary,
            cv,
            is_owner,
        }))
    }

    /// Creates a CV for `owner`; returns its id.
    pub async fn create(
        &self,
        owner: Uuid,
        title: CvTitle,
        content: CvContent,
        origin: CvOrigin,
        metadata: &EventMetadata,
    ) -> Result<Uuid, CvFailure> {
        let id = Uuid::new_v4();
        let command = CvCommand::Create {
            owner,
            title,
            content,
            origin,
            at: OffsetDateTime::now_utc(),
        };
        self.commands.cv(id, command, metadata).await?;
        Ok(id)
    }

    /// Runs an edit command on the CV `id`.
    pub async fn execute(
        &self,
        id: Uuid,
        command: CvCommand,
        metadata: &EventMetadata,
    ) -> Result<(), CvFailure> {
        self.commands.cv(id, command, metadata).await?;
        Ok(())
    }

    async fn events(&self, id: Uuid) -> anyhow::Result<Vec<(EventMetadata, CvEvent)>> {
        let stored = self
            .log
            .read_aggregate(<Cv as Aggregate>::TYPE, &id.to_string())
            .await?;
        stored
            .into_iter()
            .map(|event| {
                let payload: CvEvent = serde_json::from_value(event.payload.clone())?;
                Ok((event.metadata(), payload))
            })
            .collect()
    }

    /// The CV exactly as it was at `version` (1 = as created), if it had that version.
    pub async fn at_version(&self, id: Uuid, version: u64) -> anyhow::Result<Option<(Cv, String)>> {
        if version == 0 {
            return Ok(None);
        }
        let events = self.events(id).await?;
        if version as usize > events.len() {
            return Ok(None);
        }
        let mut cv = Cv::default();
        let mut change = String::new();
        for (_, event) in events.into_iter().take(version as usize) {
            change = event.describe(&cv);
            cv.apply(event);
        }
        Ok(Some((cv, change)))
    }

    /// Every version of the CV, newest first: who, when, what changed.
    pub async fn history(&self, id: Uuid) -> anyhow::Result<Vec<HistoryItem>> {
        let events = self.events(id).await?;
        let mut names: HashMap<Uuid, String> = HashMap::new();
        let mut cv = Cv::default();
        let mut items = Vec::with_capacity(events.len());
        for (metadata, event) in events {
            let description = event.describe(&cv);
            cv.apply(event);
            let actor = match metadata.actor {
                Some(actor) => match names.get(&actor) {
                    Some(name) => name.clone(),
                    None => {
                        let name = users::find_by_id(&self.pool, actor)
                            .await?
                            .map(|user| user.username)
                            .unwrap_or_else(|| "erased user".to_owned());
                        names.insert(actor, name.clone());
                        name
                    }
                },
                None => "the system".to_owned(),
            };
            items.push(HistoryItem {
                version: cv.version,
                at: metadata
                    .at
                    .map(|at| format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute()))
                    .unwrap_or_default(),
                actor,
                description,
            });
        }
        items.reverse();
        Ok(items)
    }
}
