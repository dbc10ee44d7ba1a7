//! Uniqueness claims on values that must be unique across aggregates (usernames, emails).
//!
//! A claim is taken before the command that needs the value runs, and released if the command
//! fails. The table's primary key decides races: of twenty registrations with one email exactly
//! one `INSERT` succeeds. Read models are never used for this (a lookup followed by a write races).

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use time::OffsetDateTime;

use crate::time_format::to_sql;

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
    let now = to_sql(OffsetDateTime::now_utc());
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

/// Claims many values in one transaction (bulk loading); fails, claiming none, if any is held
/// already or named twice.
///
/// The rows go in multi-row INSERTs of [`CLAIM_ROWS`], in key order: one statement per row
/// cost a round trip to the connection's worker thread each (the 74,000-user seed spent 9 s
/// claiming its 148,002 names that way).
pub async fn claim_all(
    pool: &SqlitePool,
    claims: &[(ClaimKind, String, String)],
) -> Result<(), sqlx::Error> {
    let now = to_sql(OffsetDateTime::now_utc());
    let mut sorted: Vec<&(ClaimKind, String, String)> = claims.iter().collect();
    sorted.sort_unstable_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for chunk in sorted.chunks(CLAIM_ROWS) {
        QueryBuilder::<Sqlite>::new("INSERT INTO claims (kind, value, owner_id, claimed_at) ")
            .push_values(chunk, |mut row, (kind, value, owner_id)| {
                row.push_bind(kind.as_str())
                    .push_bind(value)
                    .push_bind(owner_id)
                    .push_bind(&now);
            })
            .build()
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Claims per INSERT of [`claim_all`] (4 parameters each, far below SQLite's limit).
const CLAIM_ROWS: usize = 500;

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

/// Gives up every claim of `owner_id` (an erased user's names become free to register again).
pub async fn release_all_for(pool: &SqlitePool, owner_id: &str) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM claims WHERE owner_id = ?")
        .bind(owner_id)
        .execute(pool)
        .await?;
    Ok(result.rows_affected())
}

/// Releases claims whose owner never got an event, taken before `claimed_before`, and every
/// claim of an erased owner (whose erasure stopped before it released them). A claim is
/// taken before its command runs, so a crash (or `kill -9`) between the two leaves a name that
/// no account holds; this frees it. Recent claims are left alone: their command may still be
/// running (password hashing takes a moment). Returns how many were released.
///
/// Only claims taken since the previous sweep's cutoff are judged (`claim_sweeps`): an older
/// claim was judged then, and one whose owner had an event still has it (the log only grows;
/// erasure is the second rule). So the sweep costs what was claimed since, not every account.
/// It reads the `events` table only to ask whether an aggregate exists, through the table's
/// primary-key index.
pub async fn release_orphans(
    pool: &SqlitePool,
    claimed_before: OffsetDateTime,
) -> Result<u64, sqlx::Error> {
    let cutoff = to_sql(claimed_before);
    let mut tx = pool.begin().await?;
    // The first statement writes, so the transaction takes the write lock at once.
    sqlx::query(
        "INSERT INTO claim_sweeps (id, swept_before) VALUES (1, '')
         ON CONFLICT (id) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    let since: String = sqlx::query_scalar("SELECT swept_before FROM claim_sweeps WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let orphans = sqlx::query(
        "DELETE FROM claims
          WHERE claimed_at >= ? AND claimed_at < ?
            AND NOT EXISTS (SELECT 1 FROM events e
                             WHERE e.aggregate_type = 'User' AND e.aggregate_id = claims.owner_id)",
    )
    .bind(&since)
    .bind(&cutoff)
    .execute(&mut *tx)
    .await?;
    let erased = sqlx::query(
        "DELETE FROM claims
          WHERE owner_id IN (SELECT subject_id FROM data_keys WHERE erased_at IS NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE claim_sweeps SET swept_before = MAX(swept_before, ?) WHERE id = 1")
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(orphans.rows_affected() + erased.rows_affected())
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

    #[tokio::test]
    async fn an_old_claim_without_an_account_is_released_and_a_recent_one_kept() {
        let pool = open_memory().await.unwrap();
        claim(&pool, ClaimKind::Email, "ghost@example.com", "nobody")
            .await
            .unwrap();
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let earlier = OffsetDateTime::now_utc() - time::Duration::minutes(1);

        assert_eq!(
            release_orphans(&pool, earlier).await.unwrap(),
            0,
            "too recent"
        );
        assert_eq!(release_orphans(&pool, later).await.unwrap(), 1);
        assert!(
            claim(&pool, ClaimKind::Email, "ghost@example.com", "someone")
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_sweep_judges_only_claims_taken_since_the_previous_one() {
        let pool = open_memory().await.unwrap();
        let now = OffsetDateTime::now_utc();
        let claim_at = |value: &'static str, at: OffsetDateTime| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO claims (kind, value, owner_id, claimed_at)
                     VALUES ('email', ?, ?, ?)",
                )
                .bind(value)
                .bind(value)
                .bind(to_sql(at))
                .execute(&pool)
                .await
                .unwrap();
            }
        };
        claim_at("old@example.com", now - time::Duration::hours(2)).await;
        assert_eq!(
            release_orphans(&pool, now - time::Duration::hours(1))
                .await
                .unwrap(),
            1
        );
        // Taken after that cutoff, but stamped earlier (as a clock could): not judged again.
        claim_at("late@example.com", now - time::Duration::hours(3)).await;
        claim_at("new@example.com", now - time::Duration::minutes(30)).await;
        assert_eq!(release_orphans(&pool, now).await.unwrap(), 1, "the new one");
        let left: Vec<String> = sqlx::query_scalar("SELECT value FROM claims")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(left, ["late@example.com"]);
        // An earlier cutoff does not move the mark back.
        release_orphans(&pool, now - time::Duration::days(1))
            .await
            .unwrap();
        let mark: String = sqlx::query_scalar("SELECT swept_before FROM claim_sweeps")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mark, to_sql(now));
    }

    #[tokio::test]
    async fn a_claim_whose_account_exists_is_kept() {
        let pool = open_memory().await.unwrap();
        claim(&pool, ClaimKind::Username, "alice", "a1")
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('User', 'a1', 1, 'UserRegistered', '1.0', '{}', '{}')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        assert_eq!(release_orphans(&pool, later).await.unwrap(), 0);
    }

    /// `count` users' username and email claims, as the seed makes them.
    fn bulk_claims(count: usize) -> Vec<(ClaimKind, String, String)> {
        (0..count)
            .flat_map(|n| {
                [
                    (ClaimKind::Username, format!("user{n:06}"), format!("id{n}")),
                    (
                        ClaimKind::Email,
                        format!("user{n:06}@example.com"),
                        format!("id{n}"),
                    ),
                ]
            })
            .collect()
    }

    #[tokio::test]
    async fn a_bulk_claim_takes_every_value_for_its_owner_across_many_statements() {
        let pool = open_memory().await.unwrap();
        let claims = bulk_claims(CLAIM_ROWS + 101);
        claim_all(&pool, &claims).await.unwrap();

        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM claims")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(held, claims.len() as i64);
        let owner: String =
            sqlx::query_scalar("SELECT owner_id FROM claims WHERE kind = 'email' AND value = ?")
                .bind(format!("user{:06}@example.com", CLAIM_ROWS + 100))
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(owner, format!("id{}", CLAIM_ROWS + 100));
        assert!(!claim(&pool, ClaimKind::Username, "user000007", "someone")
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_bulk_claim_with_one_value_held_already_claims_nothing() {
        let pool = open_memory().await.unwrap();
        claim(&pool, ClaimKind::Email, "user000900@example.com", "earlier")
            .await
            .unwrap();
        assert!(claim_all(&pool, &bulk_claims(1_000)).await.is_err());

        let held: Vec<String> = sqlx::query_scalar("SELECT owner_id FROM claims")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(held, ["earlier"]);
    }

    #[tokio::test]
    async fn a_bulk_claim_naming_one_value_twice_claims_nothing() {
        let pool = open_memory().await.unwrap();
        let mut claims = bulk_claims(10);
        claims.push((ClaimKind::Username, "user000003".into(), "twin".into()));
        assert!(claim_all(&pool, &claims).await.is_err());

        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM claims")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(held, 0);
    }
}
