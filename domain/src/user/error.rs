//! `UserError`: why a command against a `User` was refused.

/// Why a command against a `User` was refused. Messages are shown to people,
/// so they are written as sentences.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// `Register` was sent to a user that already exists.
    #[error("This user is already registered.")]
    AlreadyRegistered,
    /// Any command other than `Register` was sent to a user that does not exist.
    #[error("No such user.")]
    NotFound,
    /// `ChangeRole` asked for the role the user already has.
    #[error("The user already has that role.")]
    RoleUnchanged,
    /// `Deactivate` was sent to an already deactivated user.
    #[error("This account is already deactivated.")]
    AlreadyDeactivated,
    /// `Activate` was sent to an already active user.
    #[error("This account is already active.")]
    AlreadyActive,
    /// The password could not be hashed; the detail is for logs.
    #[error("The password could not be processed: {0}")]
    Hashing(String),
    #[error("The current password is not correct.")]
    WrongPassword,
    #[error("There is no profile picture to remove.")]
    NoAvatar,
    #[error("This password reset link is not valid. It may have been used already.")]
    ResetTokenInvalid,
    #[error("This password reset link has expired. Please ask for a new one.")]
    ResetTokenExpired,
    #[error("This account is deactivated.")]
    AccountDeactivated,
}
