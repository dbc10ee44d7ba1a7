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
use projections::password_resets;
use projections::users::{self, UserRow};
use projections::EventMetadata;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::{CommandBus, CommandError};
use crate::mail::{Mailer, OutgoingMail};
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

/// Why a password change failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// Input to correct, one message per field.
    #[error("invalid password change: {0:?}")]
    Invalid(FieldErrors),
    /// Storage or hashing failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a password reset through a link failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The link is unknown, used, expired, or the account is deactivated: say so.
    #[error("{0}")]
    Link(&'static str),
    /// The new password needs correcting.
    #[error("invalid new password: {0:?}")]
    Invalid(FieldErrors),
    /// Storage or hashing failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How password-reset links are made and sent.
pub struct ResetLinks {
    /// Sends the link.
    pub mailer: Mailer,
    /// The public URL the link starts with.
    pub public_url: String,
    /// How long a link is valid.
    pub ttl: Duration,
}

/// The account use cases.
pub struct Accounts {
    pool: SqlitePool,
    commands: Arc<CommandBus>,
    hasher: Argon2Hasher,
    throttle: LoginThrottle,
    reset_links: ResetLinks,
}

impl Accounts {
    /// Account use cases over the database behind `pool`.
    pub fn new(
        pool: SqlitePool,
        commands: Arc<CommandBus>,
        hasher: Argon2Hasher,
        throttle: LoginThrottle,
        reset_links: ResetLinks,
    ) -> Self {
        Self {
            pool,
            commands,
            hasher,
            throttle,
            reset_links,
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
                // blocked by mistake is released by `claims::release_orphans` (at startup and
                // by the purge job), a duplicate account could not be undone.
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

    /// Changes the password of `user` after checking the current one. Every other session of
    /// the user ends (the projector moves the user to a new session epoch, returned here so the
    /// caller can keep its own session).
    pub async fn change_password(
        &self,
        user: &UserRow,
        current: &str,
        new: &str,
        new_confirm: &str,
        metadata: &EventMetadata,
    ) -> Result<i64, PasswordChangeError> {
        let mut errors = FieldErrors::new();
        if current.is_empty() {
            errors.insert("current_password", "Enter your current password.".into());
        }
        let password = Password::parse(new, &user.username, &user.email)
            .map_err(|error| errors.insert("new_password", error.to_string()))
            .ok();
        if new != new_confirm {
            errors.insert(
                "new_password_confirm",
                "The two passwords do not match.".into(),
            );
        }
        let (Some(password), true) = (password, errors.is_empty()) else {
            return Err(PasswordChangeError::Invalid(errors));
        };
        let command = UserCommand::ChangePassword {
            current_password: current.to_owned(),
            new_password: password,
        };
        match self.commands.user(user.id, command, metadata).await {
            Ok(_) => {}
            Err(CommandError::Rejected(UserError::WrongPassword)) => {
                errors.insert("current_password", UserError::WrongPassword.to_string());
                return Err(PasswordChangeError::Invalid(errors));
            }
            Err(error) => {
                return Err(anyhow::anyhow!("password change failed: {error}").into());
            }
        }
        let row = users::find_by_id(&self.pool, user.id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| anyhow::anyhow!("user vanished after a password change"))?;
        Ok(row.session_epoch)
    }

    /// Sends a reset link to `email` if it belongs to an active account; otherwise does nothing.
    /// Returns at once either way: the work runs in the background so that the answer, and
    /// its timing, cannot tell whether the email is registered.
    pub fn request_password_reset(self: &Arc<Self>, email: &str, metadata: EventMetadata) {
        let email = email.trim().to_lowercase();
        let accounts = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(error) = accounts.send_reset_link(&email, &metadata).await {
                tracing::error!(?error, "password reset link could not be sent");
            }
        });
    }

    async fn send_reset_link(&self, email: &str, metadata: &EventMetadata) -> anyhow::Result<()> {
        let Some(user) = users::find_by_email(&self.pool, email).await? else {
            return Ok(());
        };
        if !user.active {
            return Ok(());
        }
        let token = reset_token();
        let expires_at = OffsetDateTime::now_utc() + self.reset_links.ttl;
        let command = UserCommand::RequestPasswordReset {
            token_hash: token_hash(&token),
            expires_at,
        };
        self.commands
            .user(user.id, command, metadata)
            .await
            .map_err(|error| anyhow::anyhow!("reset request refused: {error}"))?;
        let link = format!(
            "{}/password-reset/{token}",
            self.reset_links.public_url.trim_end_matches('/')
        );
        let minutes = self.reset_links.ttl.as_secs() / 60;
        let body = format!(
            "Hello {},\n\n\
             Someone (hopefully you) asked to reset the password of your CV Manager account.\n\
             To choose a new password, open this link within {minutes} minutes:\n\n\
             {link}\n\n\
             The link works once. If you did not ask for this, ignore this message: your\n\
             password stays as it is.\n",
            user.username
        );
        self.reset_links
            .mailer
            .send(&OutgoingMail {
                to: user.email.clone(),
                subject: "Reset your CV Manager password".into(),
                body,
            })
            .await?;
        tracing::info!(user_id = %user.id, "password reset link sent");
        Ok(())
    }

    /// The reset link for `token`, if it exists and can still be used.
    pub async fn reset_link_status(
        &self,
        token: &str,
    ) -> Result<Result<(), &'static str>, anyhow::Error> {
        let Some(link) = password_resets::find(&self.pool, &token_hash(token)).await? else {
            return Ok(Err(INVALID_LINK));
        };
        if link.used {
            return Ok(Err(INVALID_LINK));
        }
        if link.expires_at <= OffsetDateTime::now_utc() {
            return Ok(Err(EXPIRED_LINK));
        }
        Ok(Ok(()))
    }

    /// Sets a new password through a reset link. Every session of the user ends.
    pub async fn reset_password(
        &self,
        token: &str,
        new: &str,
        new_confirm: &str,
        metadata: &EventMetadata,
    ) -> Result<(), ResetError> {
        let hash = token_hash(token);
        let link = password_resets::find(&self.pool, &hash)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or(ResetError::Link(INVALID_LINK))?;
        let user = users::find_by_id(&self.pool, link.user_id)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or(ResetError::Link(INVALID_LINK))?;
        let mut errors = FieldErrors::new();
        let password = Password::parse(new, &user.username, &user.email)
            .map_err(|error| errors.insert("new_password", error.to_string()))
            .ok();
        if new != new_confirm {
            errors.insert(
                "new_password_confirm",
                "The two passwords do not match.".into(),
            );
        }
        let (Some(password), true) = (password, errors.is_empty()) else {
            return Err(ResetError::Invalid(errors));
        };
        let command = UserCommand::ResetPassword {
            token_hash: hash,
            new_password: password,
            at: OffsetDateTime::now_utc(),
        };
        match self.commands.user(user.id, command, metadata).await {
            Ok(_) => {
                tracing::info!(user_id = %user.id, "password reset through a link");
                Ok(())
            }
            Err(CommandError::Rejected(UserError::ResetTokenExpired)) => {
                Err(ResetError::Link(EXPIRED_LINK))
            }
            Err(CommandError::Rejected(
                UserError::ResetTokenInvalid | UserError::AccountDeactivated,
            )) => Err(ResetError::Link(INVALID_LINK)),
            Err(error) => Err(anyhow::anyhow!("password reset failed: {error}").into()),
        }
    }
}

const INVALID_LINK: &str =
    "This password reset link is not valid. It may have been used already; you can ask for a new one.";
const EXPIRED_LINK: &str = "This password reset link has expired. Please ask for a new one.";

/// 244 random bits (two v4 UUIDs from the OS generator), hex: the secret part of a reset link.
fn reset_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    hex(&bytes)
}

/// Only the SHA-256 of a token is stored: someone who reads the database or the event log
/// cannot use a link that is still valid.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
