//! The `profiles` read model: each user's personal information and current picture.

use std::collections::HashMap;

use domain::UserEvent;
use serde::Serialize;
use sqlx::{Row, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::database::json_param;
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

/// What a batch of events changes in the table, merged per user in memory and written by
/// [`flush`] in two statements: a registration and its profile edit would otherwise be a
/// statement each, and with sqlx every statement is a round trip to its worker thread.
#[derive(Debug, Default)]
pub struct Pending {
    /// Users registered in this batch (their row is inserted before the changes apply).
    new: Vec<String>,
    /// The merged changes of each user's profile, later events over earlier ones.
    changes: HashMap<String, Change>,
}

/// The changes of one profile in a batch: `None` leaves a field as it is.
#[derive(Debug, Default, Serialize)]
struct Change {
    full_name: Option<String>,
    headline: Option<String>,
    phone: Option<String>,
    location: Option<String>,
    website: Option<String>,
    bio: Option<String>,
    /// The picture was changed or removed (then the three fields below are what it is now).
    avatar_set: bool,
    avatar_hash: Option<String>,
    avatar_width: Option<i64>,
    avatar_height: Option<i64>,
    updated_at: Option<String>,
}

/// Applies one User event (to `pending`).
pub fn apply(
    pending: &mut Pending,
    stored: &StoredEvent,
    metadata: &EventMetadata,
    event: &UserEvent,
) {
    let id = stored.aggregate_id.as_str();
    let at = metadata.at.map(to_sql);
    fn change<'p>(pending: &'p mut Pending, id: &str, at: &Option<String>) -> &'p mut Change {
        let change = pending.changes.entry(id.to_owned()).or_default();
        if at.is_some() {
            change.updated_at.clone_from(at);
        }
        change
    }
    match event {
        UserEvent::Registered { .. } => pending.new.push(id.to_owned()),
        UserEvent::ProfileUpdated { changes } => {
            let change = change(pending, id, &at);
            let fields = [
                (&mut change.full_name, &changes.full_name),
                (&mut change.headline, &changes.headline),
                (&mut change.phone, &changes.phone),
                (&mut change.location, &changes.location),
                (&mut change.website, &changes.website),
                (&mut change.bio, &changes.bio),
            ];
            for (field, new) in fields {
                if new.is_some() {
                    field.clone_from(new);
                }
            }
        }
        UserEvent::AvatarChanged {
            content_hash,
            width,
            height,
        } => {
            let change = change(pending, id, &at);
            change.avatar_set = true;
            change.avatar_hash = Some(content_hash.clone());
            change.avatar_width = Some(i64::from(*width));
            change.avatar_height = Some(i64::from(*height));
        }
        UserEvent::AvatarRemoved => {
            let change = change(pending, id, &at);
            change.avatar_set = true;
            change.avatar_hash = None;
            change.avatar_width = None;
            change.avatar_height = None;
        }
        _ => {}
    }
}

/// Writes the batch's new profiles, then its changes.
pub async fn flush(conn: &mut SqliteConnection, pending: &mut Pending) -> Result<(), sqlx::Error> {
    let new = std::mem::take(&mut pending.new);
    let changes = std::mem::take(&mut pending.changes);
    if !new.is_empty() {
        sqlx::query("INSERT INTO profiles (user_id) SELECT value FROM json_each(?)")
            .bind(json_param(&new)?)
            .execute(&mut *conn)
            .await?;
    }
    if !changes.is_empty() {
        sqlx::query(
            "UPDATE profiles SET
                full_name = COALESCE(c.value ->> 'full_name', full_name),
                headline = COALESCE(c.value ->> 'headline', headline),
                phone = COALESCE(c.value ->> 'phone', phone),
                location = COALESCE(c.value ->> 'location', location),
                website = COALESCE(c.value ->> 'website', website),
                bio = COALESCE(c.value ->> 'bio', bio),
                avatar_hash = iif(c.value ->> 'avatar_set', c.value ->> 'avatar_hash', avatar_hash),
                avatar_width = iif(c.value ->> 'avatar_set', c.value ->> 'avatar_width',
                                   avatar_width),
                avatar_height = iif(c.value ->> 'avatar_set', c.value ->> 'avatar_height',
                                    avatar_height),
                updated_at = COALESCE(c.value ->> 'updated_at', updated_at)
               FROM json_each(?) AS c
              WHERE profiles.user_id = c.key",
        )
        .bind(json_param(&changes)?)
        .execute(conn)
        .await?;
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
