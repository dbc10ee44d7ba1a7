//! The CV manager's domain: the `User` aggregate with its commands, events,
//! errors and value types, plus the services the aggregate needs.
//!
//! This crate is deliberately pure: no I/O, no runtime, no database. Anything
//! that touches the outside world (hashing passwords, clocks) is passed in,
//! either as a service trait or as a value on the command.

pub mod cv;
pub mod testing;
pub mod user;

pub use cv::{
    check_entry, dates_in_order, from_json_resume, is_partial_date, is_web_url, parse_basics,
    parse_entry, parse_json_resume, to_json_resume, CvContent, CvTitle, CvTitleError, Entry,
    EntryFields, FieldErrors, FieldKind, FieldSpec, FieldValue, ImportError, ImportedCv, Section,
    UnknownSection, BASICS_FIELDS, ENTRIES_MAX, LIST_ITEMS_MAX, LONG_TEXT_MAX, TEXT_MAX, TITLE_MAX,
};
pub use cv::{Cv, CvCommand, CvError, CvEvent, CvOrigin, MoveDirection};
pub use user::{
    is_common_password, Email, EmailError, HashingError, LoginFailureReason, Password,
    PasswordError, PasswordHash, PasswordHasher, Profile, ProfileChanges, ProfileErrors,
    ProfileInput, Role, UnknownRole, User, UserCommand, UserError, UserEvent, UserServices,
    Username, UsernameError,
};
