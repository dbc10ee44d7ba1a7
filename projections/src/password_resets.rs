//! The `password_resets` read model: which user a reset token (by its hash) belongs to, until
//! when, and whether it was used. The User aggregate has the final word on validity; this table
//! only finds the aggregate for a token and lets a purge job forget old links.

use domain::UserEvent;
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event_log::StoredEvent;
use crate::time_format::{from_sql, to_sql};

/// The tables this module owns.
pub const TABLES: &[&str] = &["password_resets"];

/// A reset link as the read side knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResetRow {
    pub user_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub used: bool,
}

/// Applies one User event.
pub async fn apply(
    conn: &mut SqliteConnection,
    stored: &StoredEvent,
    event: &UserEvent,
) -> Result<(), sqlx::Error> {
    let id = stored.aggregate_id.as_str();
    match event {
        UserEvent::PasswordResetRequested {
            token_hash,
            expires_at,
        } => {
            sqlx::query(
                "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (token_hash) DO NOTHING",
            )
            .bind(token_hash)
            .bind(id)
            .bind(to_sql(*expires_at))
            .execute(conn)
            .await?;
        }
        // Any new password uses up every link of the user, as the aggregate decides.
        UserEvent::PasswordReset { .. } | UserEvent::PasswordChanged { .. } => {
            sqlx::query("UPDATE password_resets SET used = 1 WHERE user_id = ?")
                .bind(id)
                .execute(conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Removes an erased user's reset links.
pub async fn erase(conn: &mut SqliteConnection, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM password_resets WHERE user_id = ?")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The link with this token hash, if any.
pub async fn find(pool: &SqlitePool, token_hash: &str) -> Result<Option<ResetRow>, sqlx::Error> {
    let row =
        sqlx::query("SELECT user_id, expires_at, used FROM password_resets WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let user_id: String = row.try_get("user_id")?;
    let expires_at: String = row.try_get("expires_at")?;
    Ok(match (Uuid::parse_str(&user_id), from_sql(&expires_at)) {
        (Ok(user_id), Some(expires_at)) => Some(ResetRow {
            user_id,
            expires_at,
            used: row.try_get("used")?,
        }),
        _ => None,
    })
}

/// Forgets links that expired before `now` (they can never be used). Returns how many.
/// `Projector::verify` compares only unexpired rows, so a purged table still matches a replay.
pub async fn purge_expired(pool: &SqlitePool, now: OffsetDateTime) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM password_resets WHERE expires_at <= ?")
        .bind(to_sql(now))
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}
