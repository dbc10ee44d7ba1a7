//! Password hashing with argon2id (the crate's defaults: m=19 MiB, t=2, p=1).
//!
//! Hashing is deliberately slow, so it runs on the blocking thread pool (never on the async
//! workers, where it would stall every other request) behind a semaphore that caps how many run
//! at once: a login flood then queues instead of exhausting memory (19 MiB each) and threads.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    PasswordHash as PhcHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::Argon2;
use async_trait::async_trait;
use domain::{HashingError, Password, PasswordHash, PasswordHasher};
use tokio::sync::Semaphore;

/// Argon2id hashing off the async runtime with bounded concurrency.
#[derive(Clone)]
pub struct Argon2Hasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when an email is unknown so that the
    /// answer takes as long as a wrong password does.
    dummy: Arc<PasswordHash>,
}

impl Argon2Hasher {
    /// A hasher allowing `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Result<Self, HashingError> {
        let dummy = hash_blocking(&uuid::Uuid::new_v4().to_string())?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(dummy),
        })
    }

    /// Spends the time of one verification without an account: the defence against telling
    /// unknown emails from wrong passwords by timing.
    pub async fn verify_dummy(&self, candidate: &str) {
        let _ = self.verify(&self.dummy, candidate).await;
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashingError("hashing is shut down".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| HashingError(error.to_string()))
    }
}

pub(crate) fn hash_blocking(password: &str) -> Result<PasswordHash, HashingError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| PasswordHash::new(hash.to_string()))
        .map_err(|error| HashingError(error.to_string()))
}

fn verify_blocking(hash: &str, candidate: &str) -> bool {
    PhcHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashingError> {
        let plain = password.expose().to_owned();
        self.run(move || hash_blocking(&plain)).await?
    }

    async fn verify(&self, hash: &PasswordHash, candidate: &str) -> bool {
        let hash = hash.as_str().to_owned();
        let candidate = candidate.to_owned();
        self.run(move || verify_blocking(&hash, &candidate))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::new(2).unwrap();
        let password =
            Password::parse("correct horse battery", "alice", "alice@example.com").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(hasher.verify(&hash, "correct horse battery").await);
        assert!(!hasher.verify(&hash, "correct horse battery!").await);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_never_verifies() {
        let hasher = Argon2Hasher::new(1).unwrap();
        assert!(
            !hasher
                .verify(&PasswordHash::new("garbage".into()), "anything")
                .await
        );
    }
}
