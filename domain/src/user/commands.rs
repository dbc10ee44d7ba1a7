//! `UserCommand`: the requests a `User` aggregate can be asked to handle.
//!
//! Times are passed in rather than read from a clock so the domain stays pure
//! and tests are deterministic.

use std::fmt;

use time::OffsetDateTime;

use super::email::Email;
use super::password::Password;
use super::profile::Profile;
use super::role::Role;
use super::username::Username;

/// A request to a `User` aggregate.
#[derive(Clone)]
pub enum UserCommand {
    /// Create the account. Inputs are already-validated value types.
    Register {
        /// The name to sign in with.
        username: Username,
        /// The contact address.
        email: Email,
        /// The password to hash and store.
        password: Password,
        /// The initial role.
        role: Role,
        /// When the registration happened (UTC).
        at: OffsetDateTime,
    },
    /// Attempt to log in. Succeeds or fails by emitting `LoggedIn` or
    /// `LoginFailed`; both are recorded.
    LogIn {
        /// The password as typed. Deliberately not a `Password`: the current
        /// rules must not stop someone logging in with an older password.
        password: String,
        /// When the attempt happened (UTC).
        at: OffsetDateTime,
    },
    /// Give the user a different role.
    ChangeRole {
        /// The new role.
        role: Role,
    },
    /// Stop the user from logging in.
    Deactivate,
    /// Allow a deactivated user to log in again.
    Activate,
    /// Replaces the personal information; records only the fields that changed.
    UpdateProfile { profile: Profile },
    /// Sets a new profile picture (already decoded and stored by the application).
    ChangeAvatar {
        content_hash: String,
        width: u32,
        height: u32,
    },
    /// Removes the profile picture.
    RemoveAvatar,
    /// Changes the password after checking the current one.
    ChangePassword {
        current_password: String,
        new_password: Password,
    },
    /// Records that a reset link was sent; only the token's hash is kept.
    RequestPasswordReset {
        token_hash: String,
        expires_at: OffsetDateTime,
    },
    /// Sets a new password with a reset token (single use, before it expires).
    ResetPassword {
        token_hash: String,
        new_password: Password,
        at: OffsetDateTime,
    },
    /// Erases the account: records that it happened and ends the account for good. The
    /// application then destroys the personal data (the event log's key for this user, the
    /// pictures). `password` is the owner's password when they erase their own account; `None`
    /// when someone the application already authorised (a superuser, the CLI) does it.
    Erase { password: Option<String> },
}

impl fmt::Debug for UserCommand {
    // Hand-written so the plain-text login password never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserCommand::Register {
                username,
                email,
                password,
                role,
                at,
            } => f
                .debug_struct("Register")
                .field("username", username)
                .field("email", email)
                .field("password", password)
                .field("role", role)
                .field("at", at)
                .finish(),
            UserCommand::LogIn { password: _, at } => f
                .debug_struct("LogIn")
                .field("password", &"***")
                .field("at", at)
                .finish(),
            UserCommand::ChangeRole { role } => {
                f.debug_struct("ChangeRole").field("role", role).finish()
            }
            UserCommand::Deactivate => f.write_str("Deactivate"),
            UserCommand::Activate => f.write_str("Activate"),
            UserCommand::UpdateProfile { .. } => f.write_str("UpdateProfile { .. }"),
            UserCommand::ChangeAvatar {
                content_hash,
                width,
                height,
            } => f
                .debug_struct("ChangeAvatar")
                .field("content_hash", content_hash)
                .field("width", width)
                .field("height", height)
                .finish(),
            UserCommand::RemoveAvatar => f.write_str("RemoveAvatar"),
            UserCommand::ChangePassword { .. } => f.write_str("ChangePassword { *** }"),
            UserCommand::RequestPasswordReset { expires_at, .. } => f
                .debug_struct("RequestPasswordReset")
                .field("token_hash", &"***")
                .field("expires_at", expires_at)
                .finish(),
            UserCommand::ResetPassword { at, .. } => f
                .debug_struct("ResetPassword")
                .field("token_hash", &"***")
                .field("at", at)
                .finish(),
            UserCommand::Erase { password } => f
                .debug_struct("Erase")
                .field("password", &password.as_ref().map(|_| "***"))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_login_command_debug_output_hides_the_password() {
        let command = UserCommand::LogIn {
            password: "hunter2-secret-value".to_owned(),
            at: datetime!(2024-05-01 12:00 UTC),
        };
        let debug = format!("{command:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"), "{debug}");
    }

    #[test]
    fn a_register_command_debug_output_hides_the_password() {
        let command = UserCommand::Register {
            username: Username::parse("alice").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            password: Password::parse("tangerine kayak forty seven", "alice", "alice@example.com")
                .unwrap(),
            role: Role::User,
            at: datetime!(2024-05-01 12:00 UTC),
        };
        let debug = format!("{command:?}");
        assert!(!debug.contains("tangerine"), "{debug}");
    }
}
