//! Account use cases shared by the web pages and the CLI: registration (also used to create
//! superusers and, later, accounts made by an admin) and login.
//!
//! Handlers stay thin: they turn forms into calls here and results into pages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use domain::{
    Email, LoginFailureReason, Password, Role, UserCommand, UserError, UserEvent, Username,
};
use projections::claims::{self, ClaimKind};
use projections::users::{self, UserRow};
use projections::EventMetadata;
use sqlx::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{CommandBus, CommandError};
use crate::passwords::Argon2Hasher;
use crate::throttle::{LoginThrottle, ThrottleKey};

/// Messages for form fields, by field name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// What a registration form sends.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub password_confirm: String,
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Input to correct, one message per field.
    #[error("invalid registration: {0:?}")]
    Invalid(FieldErrors),
    /// Storage or hashing failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown email or wrong password: one answer for both.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Right password, but the account is deactivated.
    #[error("account deactivated")]
    Deactivated,
    /// Too many failures; try again after this long.
    #[error("too many failed logins")]
    Throttled(Duration),
    /// Storage failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The account use cases.
pub struct Accounts {
    pool: SqlitePool,
    commands: Arc<CommandBus>,
    hasher: Argon2Hasher,
    throttle: LoginThrottle,
}

impl Accounts {
    /// Account use cases over the database behind `pool`.
    pub fn new(
        pool: SqlitePool,
        commands: Arc<CommandBus>,
        hasher: Argon2Hasher,
        throttle: LoginThrottle,
    ) -> Self {
        Self {
            pool,
            commands,
            hasher,
            throttle,
        }
    }

    /// Validates the form, claims the username and email, and records the registration.
    /// Returns the new user's id.
    pub async fn register(
        &self,
        form: &Registration,
        role: Role,
        metadata: &EventMetadata,
    ) -> Result<Uuid, RegistrationError> {
        let mut errors = FieldErrors::new();
        let username = Username::parse(&form.username)
            .map_err(|error| errors.insert("username", error.to_string()))
            .ok();
        let email = Email::parse(&form.email)
            .map_err(|error| errors.insert("email", error.to_string()))
            .ok();
        let password = Password::parse(&form.password, form.username.trim(), form.email.trim())
            .map_err(|error| errors.insert("password", error.to_string()))
            .ok();
        if form.password != form.password_confirm {
            errors.insert("password_confirm", "The two passwords do not match.".into());
        }
        let (Some(username), Some(email), Some(password), true) =
            (username, email, password, errors.is_empty())
        else {
            return Err(RegistrationError::Invalid(errors));
        };

        let id = Uuid::new_v4();
        let owner = id.to_string();
        let canonical = username.canonical();
        let username_free = claims::claim(&self.pool, ClaimKind::Username, &canonical, &owner)
            .await
            .map_err(anyhow::Error::from)?;
        let email_free = claims::claim(&self.pool, ClaimKind::Email, email.as_str(), &owner)
            .await
            .map_err(anyhow::Error::from)?;
        if !username_free || !email_free {
            if !username_free {
                errors.insert("username", "This username is already taken.".into());
            }
            if !email_free {
                errors.insert("email", "An account with this email already exists.".into());
            }
            self.release_claims(&canonical, email.as_str(), &owner)
                .await;
            return Err(RegistrationError::Invalid(errors));
        }

        let command = UserCommand::Register {
            username,
            email: email.clone(),
            password,
            role,
            at: OffsetDateTime::now_utc(),
        };
        match self.commands.user(id, command, metadata).await {
            Ok(_) => Ok(id),
            Err(error) => {
                // A refused command recorded nothing and gives its claims back. After a storage
                // failure the events may or may not be stored, so the claims are kept: a name
                // blocked by mistake is repairable, a duplicate account is not.
                if !matches!(error, CommandError::Infrastructure(_)) {
                    self.release_claims(&canonical, email.as_str(), &owner)
                        .await;
                }
                Err(RegistrationError::Internal(anyhow::anyhow!(
                    "registration failed: {error}"
                )))
            }
        }
    }

    async fn release_claims(&self, username: &str, email: &str, owner: &str) {
        for (kind, value) in [(ClaimKind::Username, username), (ClaimKind::Email, email)] {
            if let Err(error) = claims::release(&self.pool, kind, value, owner).await {
                tracing::error!(?error, ?kind, "could not release a claim");
            }
        }
    }

    /// Checks the credentials and records the attempt. On success returns the account (the
    /// caller starts the session).
    pub async fn log_in(
        &self,
        email: &str,
        password: &str,
        client_ip: &str,
        metadata: &EventMetadata,
    ) -> Result<UserRow, LoginError> {
        let email = email.trim().to_lowercase();
        let account_key = ThrottleKey::account(&email);
        let keys = [account_key.clone(), ThrottleKey::ip(client_ip)];
        self.throttle.check(&keys).map_err(LoginError::Throttled)?;

        let Some(user) = users::find_by_email(&self.pool, &email)
            .await
            .map_err(anyhow::Error::from)?
        else {
            self.hasher.verify_dummy(password).await;
            self.throttle.record_failure(&keys);
            return Err(LoginError::InvalidCredentials);
        };

        let command = UserCommand::LogIn {
            password: password.to_owned(),
            at: OffsetDateTime::now_utc(),
        };
        let events = self
            .commands
            .user(user.id, command, metadata)
            .await
            .map_err(|error| match error {
                CommandError::Rejected(UserError::NotFound) => LoginError::InvalidCredentials,
                other => LoginError::Internal(anyhow::anyhow!("login failed: {other}")),
            })?;
        match events.first() {
            Some(UserEvent::LoggedIn { .. }) => {
                self.throttle.clear(&account_key);
                Ok(user)
            }
            Some(UserEvent::LoginFailed {
                reason: LoginFailureReason::AccountDeactivated,
                ..
            }) => Err(LoginError::Deactivated),
            _ => {
                self.throttle.record_failure(&keys);
                Err(LoginError::InvalidCredentials)
            }
        }
    }
}
