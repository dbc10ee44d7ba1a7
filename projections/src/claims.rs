//! Uniqueness claims on values that must be unique across aggregates (usernames, emails).
//!
//! A claim is taken before the command that needs the value runs, and released if the command
//! fails. The table's primary key decides races: of twenty registrations with one email exactly
//! one `INSERT` succeeds. Read models are never used for this (a lookup followed by a write races).

use sqlx::SqlitePool;
use time::OffsetDateTime;

/// What kind of value is claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// A username, in its canonical (lower-case) form.
    Username,
    /// An email address (already lower-cased by `Email::parse`).
    Email,
}

impl ClaimKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
        }
    }
}

/// Claims `value` for `owner_id`. `Ok(false)` if someone else holds it already.
pub async fn claim(
    pool: &SqlitePool,
    kind: ClaimKind,
    value: &str,
    owner_id: &str,
) -> Result<bool, sqlx::Error> {
    let now = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    // A plain INSERT is a write from its first statement: no read lock to upgrade.
    let result = sqlx::query(
        "INSERT INTO claims (kind, value, owner_id, claimed_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(value)
    .bind(owner_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives up `owner_id`'s claim on `value` (nothing happens if someone else holds it).
pub async fn release(
    pool: &SqlitePool,
    kind: ClaimKind,
    value: &str,
    owner_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM claims WHERE kind = ? AND value = ? AND owner_id = ?")
        .bind(kind.as_str())
        .bind(value)
        .bind(owner_id)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::open_memory;

    #[tokio::test]
    async fn a_second_claim_on_the_same_value_is_refused() {
        let pool = open_memory().await.unwrap();
        assert!(claim(&pool, ClaimKind::Email, "a@example.com", "one")
            .await
            .unwrap());
        assert!(!claim(&pool, ClaimKind::Email, "a@example.com", "two")
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn the_same_value_may_be_claimed_as_a_different_kind() {
        let pool = open_memory().await.unwrap();
        assert!(claim(&pool, ClaimKind::Email, "alice", "one")
            .await
            .unwrap());
        assert!(claim(&pool, ClaimKind::Username, "alice", "one")
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_released_value_can_be_claimed_again() {
        let pool = open_memory().await.unwrap();
        claim(&pool, ClaimKind::Username, "alice", "one")
            .await
            .unwrap();
        release(&pool, ClaimKind::Username, "alice", "one")
            .await
            .unwrap();
        assert!(claim(&pool, ClaimKind::Username, "alice", "two")
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn only_the_owner_can_release_a_claim() {
        let pool = open_memory().await.unwrap();
        claim(&pool, ClaimKind::Username, "alice", "one")
            .await
            .unwrap();
        release(&pool, ClaimKind::Username, "alice", "two")
            .await
            .unwrap();
        assert!(!claim(&pool, ClaimKind::Username, "alice", "three")
            .await
            .unwrap());
    }
}
