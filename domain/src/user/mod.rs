//! Everything about user accounts: the `User` aggregate and the value types
//! that make invalid account data unrepresentable.

mod aggregate;
mod commands;
mod email;
mod error;
mod events;
mod password;
mod profile;
mod role;
mod services;
mod username;

pub use aggregate::User;
pub use commands::UserCommand;
pub use email::{Email, EmailError};
pub use error::UserError;
pub use events::{LoginFailureReason, UserEvent};
pub use password::{is_common_password, Password, PasswordError, PasswordHash};
pub use profile::{Profile, ProfileChanges, ProfileErrors, ProfileInput};
pub use role::{Role, UnknownRole};
pub use services::{HashingError, PasswordHasher, UserServices};
pub use username::{Username, UsernameError};
