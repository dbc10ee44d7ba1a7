//! Test doubles for the domain's services, public so that other crates'
//! tests can use them too. Never use these in production: they do not hash.

use async_trait::async_trait;

use crate::user::{HashingError, Password, PasswordHash, PasswordHasher};

/// Prefix that marks a "hash" made by [`PlainTextHasher`].
const PLAIN_PREFIX: &str = "plain:";

/// A fake hasher whose "hash" is `"plain:" + password`. Fast and
/// deterministic, so tests can write expected events literally.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainTextHasher;

impl PlainTextHasher {
    /// The hash this fake produces for `password`, for building expected events.
    pub fn hash_of(password: &str) -> PasswordHash {
        PasswordHash::new(format!("{PLAIN_PREFIX}{password}"))
    }
}

#[async_trait]
impl PasswordHasher for PlainTextHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashingError> {
        Ok(Self::hash_of(password.expose()))
    }

    async fn verify(&self, hash: &PasswordHash, candidate: &str) -> bool {
        hash.as_str()
            .strip_prefix(PLAIN_PREFIX)
            .is_some_and(|stored| stored == candidate)
    }
}

/// A fake hasher that always fails to hash and never verifies, for testing
/// how callers handle hashing errors.
#[derive(Debug, Clone, Default)]
pub struct FailingHasher {
    /// The message carried by the returned [`HashingError`].
    pub message: String,
}

#[async_trait]
impl PasswordHasher for FailingHasher {
    async fn hash(&self, _password: &Password) -> Result<PasswordHash, HashingError> {
        Err(HashingError(self.message.clone()))
    }

    async fn verify(&self, _hash: &PasswordHash, _candidate: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> Password {
        Password::parse("tangerine kayak forty seven", "alice", "alice@example.com").unwrap()
    }

    #[tokio::test]
    async fn the_plain_text_hasher_prefixes_the_password() {
        let hash = PlainTextHasher.hash(&password()).await.unwrap();
        assert_eq!(hash.as_str(), "plain:tangerine kayak forty seven");
    }

    #[tokio::test]
    async fn the_plain_text_hasher_verifies_the_right_password() {
        let hash = PlainTextHasher.hash(&password()).await.unwrap();
        assert!(
            PlainTextHasher
                .verify(&hash, "tangerine kayak forty seven")
                .await
        );
    }

    #[tokio::test]
    async fn the_plain_text_hasher_rejects_a_wrong_password() {
        let hash = PlainTextHasher.hash(&password()).await.unwrap();
        assert!(!PlainTextHasher.verify(&hash, "something else").await);
    }

    #[tokio::test]
    async fn the_failing_hasher_returns_its_message() {
        let hasher = FailingHasher {
            message: "out of memory".to_owned(),
        };
        assert_eq!(
            hasher.hash(&password()).await,
            Err(HashingError("out of memory".to_owned()))
        );
    }
}
