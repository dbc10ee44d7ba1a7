//! A typed wrapper over the tower-sessions session: the keys live here, nowhere else.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

use crate::http::error::Result;

const USER_ID: &str = "user_id";
const LOGGED_IN_AT: &str = "logged_in_at";
const SESSION_EPOCH: &str = "session_epoch";
const CSRF_TOKEN: &str = "csrf_token";
const FLASH: &str = "flash";
const SEEN_AT: &str = "seen_at";

/// How stale the stored "last seen" time may get before a request refreshes it. A session is
/// written to the store only when something in it changes; without this, a page view would
/// either rewrite the session every time (a database write per GET) or never push its idle
/// expiry forward. Refreshing once a minute keeps the idle timeout accurate to a minute.
const KEEP_ALIVE_EVERY: i64 = 60;

/// Who is logged in to a session, since when, and in which session epoch.
#[derive(Debug, Clone, Copy)]
pub struct SessionLogin {
    pub user_id: Uuid,
    pub logged_in_at: OffsetDateTime,
    pub epoch: i64,
}

/// A one-time message shown on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `success`, `info` or `error` (a CSS class).
    pub level: String,
    /// What to say.
    pub message: String,
}

/// The visitor's server-side session.
#[derive(Clone)]
pub struct AppSession(pub Session);

impl std::fmt::Debug for AppSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session id is a credential: never print it.
        f.write_str("AppSession(..)")
    }
}

impl AppSession {
    /// The logged-in user, if any.
    pub async fn login(&self) -> Result<Option<SessionLogin>> {
        let user_id: Option<Uuid> = self.0.get(USER_ID).await?;
        let at: Option<i64> = self.0.get(LOGGED_IN_AT).await?;
        let epoch: Option<i64> = self.0.get(SESSION_EPOCH).await?;
        Ok(match (user_id, at) {
            (Some(user_id), Some(at)) => {
                OffsetDateTime::from_unix_timestamp(at)
                    .ok()
                    .map(|logged_in_at| SessionLogin {
                        user_id,
                        logged_in_at,
                        epoch: epoch.unwrap_or(0),
                    })
            }
            _ => None,
        })
    }

    /// Starts an authenticated session: a new session id first (so a planted id is worthless),
    /// then the user, the user's current session epoch and a fresh CSRF token.
    pub async fn log_in(&self, user_id: Uuid, epoch: i64) -> Result<()> {
        self.0.cycle_id().await?;
        self.0.insert(USER_ID, user_id).await?;
        self.0
            .insert(LOGGED_IN_AT, OffsetDateTime::now_utc().unix_timestamp())
            .await?;
        self.0.insert(SESSION_EPOCH, epoch).await?;
        self.0.insert(CSRF_TOKEN, new_token()).await?;
        self.0
            .insert(SEEN_AT, OffsetDateTime::now_utc().unix_timestamp())
            .await?;
        Ok(())
    }

    /// Keeps this session alive across an epoch change it caused itself (a password change
    /// ends every *other* session), with a fresh id.
    pub async fn move_to_epoch(&self, epoch: i64) -> Result<()> {
        self.0.cycle_id().await?;
        self.0.insert(SESSION_EPOCH, epoch).await?;
        Ok(())
    }

    /// Ends the session server-side (the stored record is deleted, the cookie expired).
    pub async fn log_out(&self) -> Result<()> {
        self.0.flush().await?;
        Ok(())
    }

    /// The session's CSRF token, created on first use.
    pub async fn csrf_token(&self) -> Result<String> {
        if let Some(token) = self.0.get::<String>(CSRF_TOKEN).await? {
            return Ok(token);
        }
        let token = new_token();
        self.0.insert(CSRF_TOKEN, &token).await?;
        Ok(token)
    }

    /// The token a POST must echo, without creating one.
    pub async fn expected_csrf_token(&self) -> Result<Option<String>> {
        Ok(self.0.get(CSRF_TOKEN).await?)
    }

    /// Queues a message for the next page.
    pub async fn flash(&self, level: &str, message: impl Into<String>) -> Result<()> {
        let mut flashes: Vec<Flash> = self.0.get(FLASH).await?.unwrap_or_default();
        flashes.push(Flash {
            level: level.to_owned(),
            message: message.into(),
        });
        self.0.insert(FLASH, flashes).await?;
        Ok(())
    }

    /// Takes the queued messages (each is shown once). Looks before it takes: removing marks
    /// the session changed, and an unchanged session is not written back.
    pub async fn take_flashes(&self) -> Result<Vec<Flash>> {
        if self.0.get_value(FLASH).await?.is_none() {
            return Ok(Vec::new());
        }
        Ok(self.0.remove(FLASH).await?.unwrap_or_default())
    }

    /// Marks the session as in use, so that its idle expiry moves forward; writes only when
    /// the last mark is over a minute old (see [`KEEP_ALIVE_EVERY`]).
    pub async fn keep_alive(&self) -> Result<()> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let seen: Option<i64> = self.0.get(SEEN_AT).await?;
        if seen.is_none_or(|seen| now - seen >= KEEP_ALIVE_EVERY) {
            self.0.insert(SEEN_AT, now).await?;
        }
        Ok(())
    }
}

/// 256 random bits from the OS generator, hex-encoded.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    // uuid's v4 generator draws from the OS RNG (getrandom); two of them give 244 random bits,
    // and we take the full 32 bytes of both.
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two tokens in time that does not depend on where they differ.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "abcd"));
        assert!(!tokens_match("abc", ""));
    }
}
