//! The services the `User` aggregate needs from the outside world, expressed
//! as traits so the domain stays pure and tests can use fakes.

use std::fmt;
use std::sync::Arc;

use super::password::{Password, PasswordHash};

/// Hashes and verifies passwords. The application implements this with
/// argon2id; tests use [`crate::testing::PlainTextHasher`].
#[async_trait::async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a validated password (argon2id in the application; anything in tests).
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashingError>;
    /// Whether `candidate` matches `hash`.
    async fn verify(&self, hash: &PasswordHash, candidate: &str) -> bool;
}

/// Hashing failed for a reason outside the domain's control.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
#[error("password hashing failed: {0}")]
pub struct HashingError(pub String);

/// Everything the `User` aggregate's command handler may call out to.
#[derive(Clone)]
pub struct UserServices {
    /// Password hashing and verification.
    pub passwords: Arc<dyn PasswordHasher>,
}

impl UserServices {
    /// Bundles the services for the `User` aggregate.
    pub fn new(passwords: Arc<dyn PasswordHasher>) -> Self {
        Self { passwords }
    }
}

impl fmt::Debug for UserServices {
    // The hasher is a trait object without `Debug`; naming the struct is
    // enough for diagnostics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserServices").finish_non_exhaustive()
    }
}
