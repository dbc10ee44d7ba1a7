//! The `profiles` read model: each user's personal information and current picture.

use domain::UserEvent;
use sqlx::{Row, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::event_log::{EventMetadata, StoredEvent};
use crate::time_format::{from_sql, to_sql};

/// The tables this module owns.
pub const TABLES: &[&str] = &["profiles"];

/// A user's profile as pages show it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ProfileRow {
    pub full_name: String,
    pub headline: String,
    pub phone: String,
    pub location: String,
    pub website: String,
    pub bio: String,
    /// Content hash of the current picture (names its files and serves as its ETag).
    pub avatar_hash: Option<String>,
    pub avatar_width: Option<i64>,
    pub avatar_height: Option<i64>,
    /// When the profile last changed (RFC 3339), if ever.
    pub updated_at: Option<String>,
}

/// Applies one User event.
pub async fn apply(
    conn: &mut SqliteConnection,
    stored: &StoredEvent,
    metadata: &EventMetadata,
    event: &UserEvent,
) -> Result<(), sqlx::Error> {
    let id = stored.aggregate_id.as_str();
    let at = metadata.at.map(to_sql);
    match event {
        UserEvent::Registered { .. } => {
            sqlx::query("INSERT INTO profiles (user_id) VALUES (?)")
                .bind(id)
                .execute(conn)
                .await?;
        }
        UserEvent::ProfileUpdated { changes } => {
            // COALESCE keeps fields the event does not mention.
            sqlx::query(
                "UPDATE profiles SET
                    full_name = COALESCE(?, full_name), headline = COALESCE(?, headline),
                    phone = COALESCE(?, phone), location = COALESCE(?, location),
                    website = COALESCE(?, website), bio = COALESCE(?, bio),
                    updated_at = COALESCE(?, updated_at)
                 WHERE user_id = ?",
            )
            .bind(&changes.full_name)
            .bind(&changes.headline)
            .bind(&changes.phone)
            .bind(&changes.location)
            .bind(&changes.website)
            .bind(&changes.bio)
            .bind(at)
            .bind(id)
            .execute(conn)
            .await?;
        }
        UserEvent::AvatarChanged {
            content_hash,
            width,
            height,
        } => {
            sqlx::query(
                "UPDATE profiles SET avatar_hash = ?, avatar_width = ?, avatar_height = ?,
                        updated_at = COALESCE(?, updated_at)
                  WHERE user_id = ?",
            )
            .bind(content_hash)
            .bind(i64::from(*width))
            .bind(i64::from(*height))
            .bind(at)
            .bind(id)
            .execute(conn)
            .await?;
        }
        UserEvent::AvatarRemoved => {
            sqlx::query(
                "UPDATE profiles SET avatar_hash = NULL, avatar_width = NULL, avatar_height = NULL,
                        updated_at = COALESCE(?, updated_at)
                  WHERE user_id = ?",
            )
            .bind(at)
            .bind(id)
            .execute(conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Removes an erased user's profile.
pub async fn erase(conn: &mut SqliteConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM profiles WHERE user_id = ?")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The profile of `user_id` (every registered user has one).
pub async fn find(pool: &SqlitePool, user_id: Uuid) -> Result<Option<ProfileRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT full_name, headline, phone, location, website, bio, avatar_hash, avatar_width,
                avatar_height, updated_at
           FROM profiles WHERE user_id = ?",
    )
    .bind(user_id.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(ProfileRow {
            full_name: row.try_get("full_name")?,
            headline: row.try_get("headline")?,
            phone: row.try_get("phone")?,
            location: row.try_get("location")?,
            website: row.try_get("website")?,
            bio: row.try_get("bio")?,
            avatar_hash: row.try_get("avatar_hash")?,
            avatar_width: row.try_get("avatar_width")?,
            avatar_height: row.try_get("avatar_height")?,
            updated_at: row
                .try_get::<Option<String>, _>("updated_at")?
                .filter(|text| from_sql(text).is_some()),
        })
    })
    .transpose()
}
