//! The CV manager's domain: the `User` aggregate with its commands, events,
//! errors and value types, plus the services the aggregate needs.
//!
//! This crate is deliberately pure: no I/O, no runtime, no database. Anything
//! that touches the outside world (hashing passwords, clocks) is passed in,
//! either as a service trait or as a value on the command.

pub mod testing;
pub mod user;

pub use user::{
    is_common_password, Email, EmailError, HashingError, LoginFailureReason, Password,
    PasswordError, PasswordHash, PasswordHasher, Profile, ProfileChanges, ProfileErrors,
    ProfileInput, Role, UnknownRole, User, UserCommand, UserError, UserEvent, UserServices,
    Username, UsernameError,
};
