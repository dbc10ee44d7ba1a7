//! Profile use cases: personal information and the profile picture.
//!
//! A new picture is decoded and re-encoded off the async runtime (`avatars`), its files are
//! written, and only then is the event recorded; the old picture's files go once the event
//! is stored. If the command fails the new files are removed again, so the pictures folder
//! holds exactly the pictures the read model names.

use std::sync::Arc;

use domain::{Profile, ProfileInput, UserCommand, UserError, UserEvent};
use projections::profiles::{self, ProfileRow};
use projections::EventMetadata;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::accounts::FieldErrors;
use crate::avatars::{self, AvatarError, AvatarLimits, AvatarStore};
use crate::commands::{CommandBus, CommandError};

/// Why a profile could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Input to correct, one message per field.
    #[error("invalid profile: {0:?}")]
    Invalid(FieldErrors),
    /// The picture was refused (size, type, dimensions, corrupt).
    #[error("picture refused: {0}")]
    Picture(AvatarError),
    /// Storage failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Profile use cases.
pub struct Profiles {
    pool: SqlitePool,
    commands: Arc<CommandBus>,
    store: AvatarStore,
    limits: AvatarLimits,
}

impl Profiles {
    /// Profile use cases storing pictures with `store`.
    pub fn new(
        pool: SqlitePool,
        commands: Arc<CommandBus>,
        store: AvatarStore,
        limits: AvatarLimits,
    ) -> Self {
        Self {
            pool,
            commands,
            store,
            limits,
        }
    }

    /// The largest picture accepted, in bytes.
    pub fn max_picture_bytes(&self) -> usize {
        self.limits.max_bytes
    }

    /// The profile of `user_id`.
    pub async fn find(&self, user_id: Uuid) -> anyhow::Result<ProfileRow> {
        Ok(profiles::find(&self.pool, user_id)
            .await?
            .unwrap_or_default())
    }

    /// Validates and saves the form; `Ok(false)` when nothing changed.
    pub async fn update(
        &self,
        user_id: Uuid,
        input: &ProfileInput,
        metadata: &EventMetadata,
    ) -> Result<bool, ProfileError> {
        let profile = Profile::parse(input)
            .map_err(|errors| ProfileError::Invalid(errors.0.into_iter().collect()))?;
        let events = self
            .commands
            .user(user_id, UserCommand::UpdateProfile { profile }, metadata)
            .await
            .map_err(internal)?;
        Ok(!events.is_empty())
    }

    /// Decodes, re-encodes and stores a new picture, then records it.
    pub async fn change_picture(
        &self,
        user_id: Uuid,
        bytes: Vec<u8>,
        metadata: &EventMetadata,
    ) -> Result<(), ProfileError> {
        let previous = self.find(user_id).await?.avatar_hash;
        let avatar =
            avatars::process(bytes, self.limits.clone())
                .await
                .map_err(|error| match error {
                    AvatarError::Encoding(detail) => {
                        ProfileError::Internal(anyhow::anyhow!("re-encoding failed: {detail}"))
                    }
                    refused => ProfileError::Picture(refused),
                })?;
        self.store
            .save(user_id, &avatar)
            .await
            .map_err(anyhow::Error::from)?;
        let command = UserCommand::ChangeAvatar {
            content_hash: avatar.content_hash.clone(),
            width: avatar.width,
            height: avatar.height,
        };
        match self.commands.user(user_id, command, metadata).await {
            Ok(events) => {
                let replaced = events
                    .iter()
                    .any(|event| matches!(event, UserEvent::AvatarChanged { .. }));
                if let Some(old) = previous.filter(|old| replaced && *old != avatar.content_hash) {
                    self.remove_files(user_id, &old).await;
                }
                Ok(())
            }
            Err(error) => {
                // Nothing refers to the new files: take them away again.
                if previous.as_deref() != Some(avatar.content_hash.as_str()) {
                    self.remove_files(user_id, &avatar.content_hash).await;
                }
                Err(internal(error))
            }
        }
    }

    /// Removes the picture; `Ok(false)` if there was none.
    pub async fn remove_picture(
        &self,
        user_id: Uuid,
        metadata: &EventMetadata,
    ) -> Result<bool, ProfileError> {
        let previous = self.find(user_id).await?.avatar_hash;
        match self
            .commands
            .user(user_id, UserCommand::RemoveAvatar, metadata)
            .await
        {
            Ok(_) => {
                if let Some(old) = previous {
                    self.remove_files(user_id, &old).await;
                }
                Ok(true)
            }
            Err(CommandError::Rejected(UserError::NoAvatar)) => Ok(false),
            Err(error) => Err(internal(error)),
        }
    }

    /// The stored picture of `user_id` (or its thumbnail), with its content hash.
    pub async fn picture(
        &self,
        user_id: Uuid,
        thumb: bool,
    ) -> anyhow::Result<Option<(String, Vec<u8>)>> {
        let Some(hash) = self.find(user_id).await?.avatar_hash else {
            return Ok(None);
        };
        Ok(self
            .store
            .read(user_id, &hash, thumb)
            .await?
            .map(|bytes| (hash, bytes)))
    }

    async fn remove_files(&self, user_id: Uuid, content_hash: &str) {
        if let Err(error) = self.store.remove(user_id, content_hash).await {
            tracing::error!(%user_id, ?error, "could not remove an old picture");
        }
    }
}

fn internal(error: CommandError<UserError>) -> ProfileError {
    ProfileError::Internal(anyhow::anyhow!("profile command failed: {error}"))
}
