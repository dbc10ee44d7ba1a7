//! What superusers do to other accounts and CVs: change roles, deactivate and activate
//! accounts, archive any CV — with the rules that keep the system administrable.
//!
//! "Never remove the last active superuser" spans every User aggregate, so no single
//! aggregate can decide it. The check runs here, against the read model, under a lock that
//! serialises these changes within the process; two servers on one database could still race
//! (documented in the README), which one process — the supported setup — cannot.

use std::sync::Arc;

use domain::{CvCommand, CvError, Role, UserCommand, UserError};
use projections::users::{self, UserRow};
use projections::EventMetadata;
use sqlx::SqlitePool;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::commands::{CommandBus, CommandError};

/// Why an administrative change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No such user or CV.
    #[error("not found")]
    NotFound,
    /// It would leave no active superuser (409).
    #[error("This is the last active superuser; promote someone else first.")]
    LastSuperuser,
    /// A superuser acting on their own account must say they mean it (`confirm=yes`).
    #[error("You are changing your own account: tick the confirmation to go ahead.")]
    NeedsConfirmation,
    /// The owner's password did not match (erasing one's own account).
    #[error("That is not your password.")]
    WrongPassword,
    /// Nothing to do (already that role, already active, …).
    #[error("{0}")]
    Unchanged(String),
    /// Storage failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Administrative use cases.
pub struct Administration {
    pool: SqlitePool,
    commands: Arc<CommandBus>,
    superuser_changes: Mutex<()>,
}

impl Administration {
    /// Administration over the database behind `pool`.
    pub fn new(pool: SqlitePool, commands: Arc<CommandBus>) -> Self {
        Self {
            pool,
            commands,
            superuser_changes: Mutex::new(()),
        }
    }

    async fn target(&self, id: Uuid) -> Result<UserRow, AdminError> {
        users::find_by_id(&self.pool, id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or(AdminError::NotFound)
    }

    /// Refuses a change that takes `target` out of the active superusers if it is the last.
    async fn keep_one_superuser(&self, target: &UserRow) -> Result<(), AdminError> {
        if target.is_superuser() && target.active {
            let remaining = users::active_superusers(&self.pool)
                .await
                .map_err(anyhow::Error::from)?;
            if remaining <= 1 {
                return Err(AdminError::LastSuperuser);
            }
        }
        Ok(())
    }

    async fn run(
        &self,
        id: Uuid,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<(), AdminError> {
        self.commands
            .user(id, command, metadata)
            .await
            .map(|_| ())
            .map_err(|error| match error {
                CommandError::Rejected(UserError::NotFound) => AdminError::NotFound,
                CommandError::Rejected(rule) => AdminError::Unchanged(rule.to_string()),
                other => AdminError::Internal(anyhow::anyhow!("{other}")),
            })
    }

    /// Gives `target` the role `role`.
    pub async fn change_role(
        &self,
        admin: &UserRow,
        target: Uuid,
        role: Role,
        confirmed: bool,
        metadata: &EventMetadata,
    ) -> Result<(), AdminError> {
        let _one_at_a_time = self.superuser_changes.lock().await;
        let user = self.target(target).await?;
        if user.role == role {
            return Err(AdminError::Unchanged(format!(
                "{} is already a {role}.",
                user.username
            )));
        }
        if role == Role::User {
            if user.id == admin.id && !confirmed {
                return Err(AdminError::NeedsConfirmation);
            }
            self.keep_one_superuser(&user).await?;
        }
        self.run(target, UserCommand::ChangeRole { role }, metadata)
            .await
    }

    /// Deactivates `target`: they cannot log in and their sessions end.
    pub async fn deactivate(
        &self,
        admin: &UserRow,
        target: Uuid,
        confirmed: bool,
        metadata: &EventMetadata,
    ) -> Result<(), AdminError> {
        let _one_at_a_time = self.superuser_changes.lock().await;
        let user = self.target(target).await?;
        if !user.active {
            return Err(AdminError::Unchanged(format!(
                "{} is already deactivated.",
                user.username
            )));
        }
        if user.id == admin.id && !confirmed {
            return Err(AdminError::NeedsConfirmation);
        }
        self.keep_one_superuser(&user).await?;
        self.run(target, UserCommand::Deactivate, metadata).await
    }

    /// Lets `target` log in again.
    pub async fn activate(&self, target: Uuid, metadata: &EventMetadata) -> Result<(), AdminError> {
        let user = self.target(target).await?;
        if user.active {
            return Err(AdminError::Unchanged(format!(
                "{} is already active.",
                user.username
            )));
        }
        self.run(target, UserCommand::Activate, metadata).await
    }

    /// Records the erasure of `target` (an account must keep one active superuser). `password`
    /// is the owner's when they erase their own account; `None` when a superuser or the CLI
    /// does. The caller removes what lies outside the event log (see [`crate::privacy`]).
    pub async fn erase(
        &self,
        target: &UserRow,
        password: Option<String>,
        metadata: &EventMetadata,
    ) -> Result<(), AdminError> {
        let _one_at_a_time = self.superuser_changes.lock().await;
        let user = self.target(target.id).await?;
        self.keep_one_superuser(&user).await?;
        self.commands
            .user(user.id, UserCommand::Erase { password }, metadata)
            .await
            .map(|_| ())
            .map_err(|error| match error {
                CommandError::Rejected(UserError::NotFound) => AdminError::NotFound,
                CommandError::Rejected(UserError::WrongPassword) => AdminError::WrongPassword,
                CommandError::Rejected(rule) => AdminError::Unchanged(rule.to_string()),
                other => AdminError::Internal(anyhow::anyhow!("{other}")),
            })
    }

    /// Archives any CV, recorded with the superuser as actor.
    pub async fn archive_cv(
        &self,
        admin: &UserRow,
        cv: Uuid,
        metadata: &EventMetadata,
    ) -> Result<(), AdminError> {
        self.commands
            .cv(
                cv,
                CvCommand::Archive {
                    actor: admin.id,
                    by_admin: true,
                },
                metadata,
            )
            .await
            .map(|_| ())
            .map_err(|error| match error {
                CommandError::Rejected(CvError::NotFound) => AdminError::NotFound,
                CommandError::Rejected(rule) => AdminError::Unchanged(rule.to_string()),
                other => AdminError::Internal(anyhow::anyhow!("{other}")),
            })
    }
}
