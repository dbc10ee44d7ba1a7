//! The read side of CV Manager, and the one module that touches the event log.
//!
//! - [`event_log`] stores and reads events (the only code that knows the `events` table), so that
//!   encryption or another backend can be added in one place later.
//! - [`projector`] reads the log in commit order from a checkpoint and applies every event to the
//!   read models in one transaction together with the new checkpoint.
//! - One module per read model ([`users`], …) owns its table's SQL: how events change it and the
//!   queries that pages and the CLI run against it.

pub mod analytics;
pub mod audit;
pub mod claims;
pub mod cvs;
pub mod database;
pub mod deferred_indexes;
pub mod event_log;
pub mod job_runs;
pub mod password_resets;
pub mod profiles;
pub mod projector;
pub mod time_format;
pub mod users;

pub use event_log::{EventLog, EventMetadata, KeyError, Keyring, MasterKey, StoredEvent};
pub use projector::{ProjectionError, Projector};
